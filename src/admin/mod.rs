//! The admin listener (separate from merchant traffic, so a window never blocks it):
//!
//! - `GET /`: the console, a page to watch and steer a drill from (`console`).
//! - `GET /healthz`: the process is up.
//! - `GET /readyz`: 200 while every worker serves merchant traffic; 503 before they all
//!   do and from the moment one stops (shutdown included), with the reason in the body
//!   (`crate::state::Readiness`).
//! - `GET /status`: JSON: drill and real now, zone, mode, drill clock (with its anchor),
//!   active windows, next transition, config version, load time and sha256, open drills and
//!   where they are persisted.
//! - `GET /timeline`: JSON: windows from a day back to a week ahead, recurring patterns,
//!   services and their state now (`timeline`).
//! - `GET /traffic`: JSON: per route, requests by decision since start and per minute over
//!   the last 30 minutes (`traffic`).
//! - `GET /report`: the drill-evidence report of a window, drill or range (`report`).
//! - `GET /metrics`: Prometheus text.
//! - `POST /reload`: re-read the config file (the old one keeps running if the new is invalid).
//! - `GET /drills`, `POST /drills`: list or open ad-hoc windows; `DELETE /drills/{id}`.
//!
//! [`Admin`] is the whole API as one tower `Service` (linkerd's `Admin<M>`): the admin
//! listener serves it, and tests call it with `oneshot`, no socket needed.
//!
//! Every request's `Host` must name the admin (an IP literal, `localhost`, an allowed
//! origin's host, or anything when a token is configured), so DNS rebinding reads nothing.
//! Mutating endpoints need `Authorization: Bearer <token>` when `admin.token_env` is set,
//! and refuse cross-site requests with or without one (`guard`: 403 for another `Origin`,
//! 415 for a `POST /drills` body that is not `application/json`).

pub(crate) mod console;
pub(crate) mod guard;
pub(crate) mod report;
pub(crate) mod timeline;
pub(crate) mod traffic;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};

use crate::response::{Body, BoxError, full};
use crate::schedule::Window;
use crate::state::{DrillError, DrillRequest, Shared};

/// Largest admin request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// The admin API as a tower `Service`: every endpoint of the module doc, behind the
/// `guard`s. It never fails: every refusal and every error is an answer. Cloning is cheap
/// (one `Arc`), and it is always ready.
#[derive(Debug, Clone)]
pub struct Admin {
    shared: Arc<Shared>,
}

impl Admin {
    /// The admin API over `shared`.
    #[must_use]
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl<B> tower::Service<Request<B>> for Admin
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(respond(shared, req).await) })
    }
}

/// Handles one admin request.
async fn respond<B>(shared: Arc<Shared>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let mutating = !matches!(method, Method::GET | Method::HEAD);
    // Before anything is read or written: DNS rebinding must not read what needs no token.
    if let Some(refused) = guard::host(&shared.current().snapshot.config.admin, &req) {
        return refused;
    }
    if mutating
        && let Some(refused) = guard::same_origin(&shared.current().snapshot.config.admin, &req)
    {
        return refused;
    }
    if mutating && let Some(denied) = guard::bearer(&shared.current().snapshot.config.admin, &req) {
        return denied;
    }
    if method == Method::POST
        && path == "/drills"
        && let Some(refused) = guard::json_only(&req)
    {
        return refused;
    }
    match (method.as_str(), path.as_str()) {
        ("GET" | "HEAD", "/") => console::page(),
        ("GET" | "HEAD", "/timeline") => {
            json_response(StatusCode::OK, &timeline::timeline(&shared))
        }
        ("GET" | "HEAD", "/traffic") => json_response(StatusCode::OK, &traffic::traffic(&shared)),
        ("GET" | "HEAD", "/report") => match report::report(shared, req.uri().query()).await {
            Ok((body, content_type)) => {
                let mut res = Response::new(full(body));
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                res
            }
            Err((status, error)) => json_response(status, &json!({ "error": error })),
        },
        ("GET" | "HEAD", "/healthz") => text(StatusCode::OK, "ok\n"),
        ("GET" | "HEAD", "/readyz") => match shared.readiness().check() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(not_ready) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{not_ready}\n")),
        },
        ("GET" | "HEAD", "/status") => json_response(StatusCode::OK, &status(&shared)),
        ("GET" | "HEAD", "/metrics") => {
            shared.update_gauges();
            let mut res = Response::new(full(shared.metrics.encode()));
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            res
        }
        ("POST", "/reload") => {
            let shared2 = shared.clone();
            match tokio::task::spawn_blocking(move || shared2.reload()).await {
                Ok(Ok(version)) => {
                    json_response(StatusCode::OK, &json!({"result": "ok", "version": version}))
                }
                Ok(Err(err)) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"result": "error", "errors": err.lines()}),
                ),
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "reload task failed\n"),
            }
        }
        ("GET" | "HEAD", "/drills") => {
            let now = shared.clock.now();
            let drills: Vec<Value> = shared
                .drills()
                .iter()
                .map(|w| window_json(w, now))
                .collect();
            json_response(StatusCode::OK, &json!({ "drills": drills }))
        }
        ("POST", "/drills") => open_drill(shared, req).await,
        ("DELETE", p) if p.starts_with("/drills/") => {
            let id = p["/drills/".len()..].to_owned();
            // Closing rewrites the state file (fsync): off the async workers.
            let shared2 = shared.clone();
            let closing = id.clone();
            let Ok(closed) =
                tokio::task::spawn_blocking(move || shared2.close_drill(&closing)).await
            else {
                return text(StatusCode::INTERNAL_SERVER_ERROR, "drill task failed\n");
            };
            if closed {
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(full(""))
                    .unwrap_or_default()
            } else {
                json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"error": format!("no open drill {id:?}")}),
                )
            }
        }
        (
            _,
            "/" | "/timeline" | "/traffic" | "/healthz" | "/readyz" | "/status" | "/metrics"
            | "/reload" | "/drills" | "/report",
        ) => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn open_drill<B>(shared: Arc<Shared>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": "body too large or unreadable"}),
            );
        }
    };
    // The one parse the fleet CLI's checks and restore share (crate::state::input).
    let request = match DrillRequest::parse(&bytes) {
        Ok(request) => request,
        Err(err) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({"error": err.to_string()}));
        }
    };
    // Opening rewrites the state file (fsync): off the async workers.
    let shared2 = shared.clone();
    let Ok(opened) = tokio::task::spawn_blocking(move || shared2.open_drill(request)).await else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "drill task failed\n");
    };
    match opened {
        Ok(window) => json_response(
            StatusCode::CREATED,
            &window_json(&window, shared.clock.now()),
        ),
        Err(err @ (DrillError::Duplicate(_) | DrillError::TooMany(_))) => {
            json_response(StatusCode::CONFLICT, &json!({"error": err.to_string()}))
        }
        Err(err @ (DrillError::Invalid(_) | DrillError::Refused(_))) => {
            json_response(StatusCode::BAD_REQUEST, &json!({"error": err.to_string()}))
        }
    }
}

fn rfc3339(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn window_json(w: &Window, now: DateTime<Utc>) -> Value {
    json!({
        "id": w.id,
        "title": w.title,
        "source": w.source.as_str(),
        "start": w.start.to_rfc3339_opts(SecondsFormat::Millis, true),
        "end": w.end.to_rfc3339_opts(SecondsFormat::Millis, true),
        "services": w.services,
        "active": w.start <= now && now < w.end,
    })
}

/// The `/status` document.
#[must_use]
pub(crate) fn status(shared: &Shared) -> Value {
    let now = shared.clock.now();
    let real_now = shared.real_clock.now();
    let current = shared.current();
    let snapshot = &current.snapshot;
    let config = &snapshot.config;
    let tz = config.clock.timezone;
    let active: Vec<Value> = snapshot
        .active_windows(now)
        .map(|w| window_json(w, now))
        .collect();
    let drills: Vec<Value> = shared
        .drills()
        .iter()
        .map(|w| window_json(w, now))
        .collect();
    json!({
        "now": rfc3339(now, tz),
        "real_now": rfc3339(real_now, tz),
        "timezone": tz.name(),
        "drill_clock": config.clock.start_at.map(|s| json!({
            "start_at": rfc3339(s, tz),
            "speed": config.clock.speed,
            "anchor": config.clock.anchor.map(|a| rfc3339(a, tz)),
        })),
        "mode": config.maintenance.mode.as_str(),
        "active_windows": active,
        "next_transition": snapshot.next_transition(now).map(|t| rfc3339(t, tz)),
        "drills": drills,
        "state_dir": shared.state_dir().map(|d| d.display().to_string()),
        "config": {
            "path": config.path.display().to_string(),
            "version": snapshot.version,
            "loaded_at": rfc3339(snapshot.loaded_at, tz),
            "sha256": config.digest,
        },
    })
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    res
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
