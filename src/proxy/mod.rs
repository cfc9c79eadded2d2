//! The merchant-facing service: decide, then short-circuit with the gateway's maintenance
//! answer or forward upstream. Never fails: every error becomes an answer (see [`rescue`]).

pub mod forward;
pub mod rescue;
pub mod rewrite;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderValue, Request, Response, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};

use crate::config::{Config, Kind};
use crate::decide::{Action, Maintain, Pass, RequestInfo, Rewrite, decide, settle_rewrite};
use crate::metrics::Decision;
use crate::response::{self, Body, Canned, X_WEBCOLLECT_SHIM};
use crate::snapshot::Snapshot;
use crate::state::Shared;

/// Handles one request. Infallible by construction.
pub async fn handle(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    // One load per request: the request finishes on the config it started with.
    let loaded = shared.current.load_full();
    let now = shared.clock.now();
    let snapshot = &loaded.snapshot;
    let config = &snapshot.config;
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let action = decide(
        snapshot,
        RequestInfo {
            method: &method,
            path: &path,
            headers: req.headers(),
            peer: peer.ip(),
        },
        now,
    );
    let route_id = action.route().map_or("-", |r| config.routes[r].id.as_str());
    let window = match action {
        Action::Maintain { maintain, .. }
        | Action::Forward {
            why: Pass::WouldMaintain(maintain),
            ..
        } => maintain.window.map(|w| snapshot.windows[w].id.as_str()),
        _ => None,
    };
    let mut failure = None;
    let mut upstream_name = "-";
    let response = match action {
        Action::NoRoute => drain_and_answer(req, config, response::no_route()).await,
        Action::Maintain { route, maintain } => {
            let canned = maintenance_answer(snapshot, route, maintain, &path, now);
            drain_and_answer(req, config, canned).await
        }
        Action::Forward { route, why } => {
            let upstream = config.routes[route].upstream;
            upstream_name = &config.upstreams[upstream].name;
            let limit = config.server.max_request_body;
            let declared = req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit) {
                // Refused before anything is sent upstream.
                let response = into_response(response::payload_too_large());
                let counted = Some((route, route_id));
                shared
                    .metrics
                    .request(&loaded.counters, counted, Decision::BadRequest, 413);
                tracing::info!(method = %method, path = path_for_log(&path), route = route_id, decision = "body-too-large", status = 413, "Request refused.");
                return response;
            }
            let rewrite = settle_rewrite(snapshot, route, &path, req.headers(), now);
            // The drill header is for the shim; the gateway never sees it.
            req.headers_mut().remove(&config.drill.header);
            let drill = &config.settle_drill;
            let req = match rewrite {
                Rewrite::Request => rewrite::request(req, drill, &shared.metrics, route_id).await,
                Rewrite::Response => {
                    // Ask for a body the rewrite can read; gzip is still handled if sent.
                    req.headers_mut().insert(
                        http::header::ACCEPT_ENCODING,
                        HeaderValue::from_static("identity"),
                    );
                    req.map(|b| Limited::new(b, clamp(limit)).boxed())
                }
                Rewrite::None => req.map(|b| Limited::new(b, clamp(limit)).boxed()),
            };
            let sent = Instant::now();
            match loaded.upstreams[upstream].forward(req, peer.ip()).await {
                Ok(resp) => {
                    loaded.latency[upstream].observe(sent.elapsed().as_secs_f64());
                    let mut resp = match rewrite {
                        Rewrite::Response => {
                            rewrite::response(resp, drill, &shared.metrics, route_id).await
                        }
                        Rewrite::Request | Rewrite::None => resp.map(boxed),
                    };
                    if let Pass::WouldMaintain(_) = why {
                        shared
                            .metrics
                            .would_maintain(route_id, window.unwrap_or("-"));
                        resp.headers_mut().insert(
                            X_WEBCOLLECT_SHIM,
                            HeaderValue::from_static("would-maintain"),
                        );
                    }
                    resp
                }
                Err(err) => {
                    let canned = err.to_canned();
                    failure = Some(err);
                    into_response(canned)
                }
            }
        }
    };
    let status = response.status().as_u16();
    let counted = action.route().map(|r| (r, route_id));
    let decision = metric_decision(&action, failure.as_ref());
    shared
        .metrics
        .request(&loaded.counters, counted, decision, status);
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    // Path only: the query string can carry order numbers and tokens. No header values.
    tracing::info!(
        method = %method,
        path = path_for_log(&path),
        route = route_id,
        decision = action.label(),
        window = window.unwrap_or("-"),
        status,
        latency_us,
        upstream = upstream_name,
        error = failure.as_ref().map_or("-", rescue::ProxyError::label),
        "Request."
    );
    if let Some(err) = &failure {
        tracing::warn!(route = route_id, upstream = upstream_name, error = err.label(), cause = %err.cause(), "Forward failed.");
    }
    response
}

fn metric_decision(action: &Action, failure: Option<&rescue::ProxyError>) -> Decision {
    if let Some(err) = failure {
        return if err.body_too_large() {
            Decision::BadRequest
        } else {
            Decision::UpstreamError
        };
    }
    match action {
        Action::NoRoute => Decision::NotFound,
        Action::Maintain { .. } => Decision::Maintenance,
        Action::Forward { why, .. } => match why {
            Pass::Outside | Pass::PassthroughRoute | Pass::Head => Decision::Pass,
            Pass::Bypass | Pass::DrillHeader => Decision::Bypass,
            Pass::WouldMaintain(_) => Decision::Report,
        },
    }
}

fn clamp(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// The request path for the log line: never the query, and capped so junk paths from
/// scanners cannot bloat the log.
fn path_for_log(path: &str) -> &str {
    const MAX: usize = 256;
    if path.len() <= MAX {
        return path;
    }
    let mut end = MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// The answer for a request in maintenance, by route kind.
#[must_use]
pub fn maintenance_answer(
    snapshot: &Snapshot,
    route: usize,
    maintain: Maintain,
    path: &str,
    now: DateTime<Utc>,
) -> Canned {
    let config = &snapshot.config;
    let tz = config.clock.timezone;
    match config.routes[route].kind {
        Kind::Page => response::page_maintenance(
            &config.maintenance,
            tz,
            maintain.window.map(|w| &snapshot.windows[w]),
            maintain.until,
            now,
            config.clock.effective_speed(),
        ),
        Kind::TokenJs => response::token_js(snapshot.token_js(path.ends_with("/tokenlib.js"))),
        Kind::Api | Kind::Passthrough | Kind::Notification => {
            response::api_maintenance(&config.maintenance, tz, now)
        }
    }
}

/// Reads and discards the request body (bounded in size and time) so an HTTP/1.1 connection
/// can carry the next request, then answers. If the body was not fully read, the connection
/// is closed after the answer instead.
async fn drain_and_answer(
    req: Request<Incoming>,
    config: &Config,
    canned: Canned,
) -> Response<Body> {
    let version = req.version();
    let body = req.into_body();
    let drained = body.is_end_stream()
        || drain(
            body,
            config.maintenance.drain_limit,
            config.maintenance.drain_timeout,
        )
        .await;
    let mut response = into_response(canned);
    if !drained && version <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn drain(mut body: Incoming, limit: u64, timeout: Duration) -> bool {
    let read = async {
        let mut seen: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > limit {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(timeout, read).await.unwrap_or(false)
}

/// A canned answer as a response.
#[must_use]
pub fn into_response(canned: Canned) -> Response<Body> {
    let mut response = Response::new(response::full(canned.body));
    *response.status_mut() = canned.status;
    *response.headers_mut() = canned.headers;
    response
}

/// Boxes a streamed body into the proxy's body type.
pub(crate) fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    body.map_err(Into::into).boxed()
}
