//! `explain`: one request, at a chosen instant, run through the real merchant-facing stack
//! (`crate::proxy::build`) with a stand-in in place of the network: the stand-in records
//! the request the upstream would have received and answers as told (its answer, or a
//! connection failure, or a timeout). What the stack answers is printed as it would go on
//! the wire, so `explain` cannot disagree with a running shim: there is no second mapping
//! from decision to answer. Only the reasons are described here, from the same decision.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use http_body_util::{BodyExt as _, Full};
use tower::{Service, ServiceExt as _};

use super::{EXPLAIN_VIA_ID, drill_clock, local, utc};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::decide::snapshot::Snapshot;
use crate::decide::via::ViaMark;
use crate::decide::{Action, Pass, Refusal, RequestInfo, Rewrite, request_host};
use crate::proxy::body::ProxyBody;
use crate::proxy::conn::{Activity, Conn};
use crate::proxy::rescue::{Failure, ProxyError, body_failure};
use crate::proxy::worker::Worker;
use crate::proxy::{Forwarding, forward};
use crate::response::window_text;
use crate::state::Shared;

/// What the stand-in upstream does with a forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StandIn {
    /// Answers `200` with a short text body (the upstream's answer, whatever it is).
    #[default]
    Answers,
    /// Cannot be reached (what a refused connection gets).
    Unreachable,
    /// Does not answer within the route's `response_timeout`.
    Timeout,
}

/// The request to explain.
#[derive(Debug, Clone)]
pub struct Explained {
    /// Method.
    pub method: Method,
    /// Origin-form target, path and query.
    pub target: String,
    /// Header fields, in order.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Where it comes from.
    pub client_ip: IpAddr,
}

/// The body the stand-in upstream answers with.
const STAND_IN_BODY: &str = "(the upstream's answer)\n";

/// `explain`'s report: the decision for `request` at `at` with its reasons, what the
/// upstream would receive, and the exact answer.
///
/// # Errors
/// When the request cannot be built from the given parts, or the runtime cannot start.
pub fn explain(
    mut config: Config,
    at: DateTime<Utc>,
    request: &Explained,
    stand_in: StandIn,
) -> anyhow::Result<String> {
    // Nothing of the running shim's state is read or written: no drills restored, no
    // journal kept.
    config.admin.state_dir = None;
    config.report.enabled = false;
    let clock = Arc::new(ManualClock::new(at));
    let mut shared = Shared::new(config, clock.clone(), clock, Arc::new(|_: &str| None))?;
    shared.via = ViaMark::named(EXPLAIN_VIA_ID);
    let shared = Arc::new(shared);
    let mut out = describe(&shared.current().snapshot, at, request);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let (sent, response) = runtime.block_on(run(shared, request, stand_in))?;
    match sent {
        None => {
            let _ = writeln!(out, "upstream: not contacted");
        }
        Some(sent) => {
            let _ = writeln!(
                out,
                "upstream: would receive (a running shim marks `Via` with a random id instead \
                 of `{EXPLAIN_VIA_ID}`):\n{sent}"
            );
            if stand_in == StandIn::Answers {
                let _ = writeln!(
                    out,
                    "          and the stand-in answers 200 with {STAND_IN_BODY:?}"
                );
            } else {
                let _ = writeln!(out, "          and the stand-in is {stand_in:?}");
            }
        }
    }
    let _ = writeln!(out, "response:\n{response}");
    Ok(out)
}

/// Runs `request` through the stack; returns what the upstream received, if it was
/// contacted, and the response as text.
async fn run(
    shared: Arc<Shared>,
    request: &Explained,
    stand_in: StandIn,
) -> anyhow::Result<(Option<String>, String)> {
    let worker = Arc::new(Worker::new(shared, 0));
    let max_upstream = worker
        .shared
        .current()
        .snapshot
        .config
        .server
        .max_upstream_per_client;
    let conn = Arc::new(Conn::http(
        SocketAddr::new(request.client_ip, 0),
        Activity::detached(),
        max_upstream,
    ));
    let upstream = StandInUpstream {
        sent: Arc::new(Mutex::new(None)),
        stand_in,
    };
    let sent = upstream.sent.clone();
    let mut req = http::Request::builder()
        .method(request.method.clone())
        .uri(&request.target)
        .version(Version::HTTP_11)
        .body(Full::new(request.body.clone()))?;
    *req.headers_mut() = request.headers.clone();
    if !request.body.is_empty() && !req.headers().contains_key(CONTENT_LENGTH) {
        req.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
    }
    let Ok(response) = crate::proxy::build(worker, conn, upstream)
        .oneshot(req)
        .await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_or_else(
        |err| format!("(the body failed: {err})").into(),
        http_body_util::Collected::to_bytes,
    );
    let sent = sent
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    Ok((sent, wire_text(&parts, &body)))
}

/// The stand-in upstream: records the request as the real forward step would send it.
#[derive(Debug, Clone)]
struct StandInUpstream {
    sent: Arc<Mutex<Option<String>>>,
    stand_in: StandIn,
}

impl Service<Forwarding> for StandInUpstream {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, fwd: Forwarding) -> Self::Future {
        let (sent, stand_in) = (self.sent.clone(), self.stand_in);
        Box::pin(async move {
            let timeout = fwd.view.pools[fwd.upstream()]
                .target()
                .config
                .response_timeout;
            let req = forward::outbound(fwd).await?;
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|err| ProxyError::Failed(body_failure(&*err)))?
                .to_bytes();
            let mut text = format!("{} {} HTTP/1.1\r\n", parts.method, parts.uri);
            for (name, value) in &parts.headers {
                let _ = write!(
                    text,
                    "{name}: {}\r\n",
                    String::from_utf8_lossy(value.as_bytes())
                );
            }
            let _ = write!(text, "\r\n{}", String::from_utf8_lossy(&body));
            *sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text);
            match stand_in {
                StandIn::Answers => {
                    let mut response = Response::new(ProxyBody::full(STAND_IN_BODY));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    Ok(response)
                }
                StandIn::Unreachable => Err(ProxyError::Failed(Failure::Unreachable)),
                StandIn::Timeout => Err(ProxyError::Timeout(timeout)),
            }
        })
    }
}

/// A response as hyper writes it on an HTTP/1.1 connection, but for the `date` field (the
/// server's clock, not the shim's answer).
#[must_use]
pub(crate) fn wire_text(parts: &http::response::Parts, body: &[u8]) -> String {
    let status: StatusCode = parts.status;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        let _ = write!(
            out,
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    if !parts.headers.contains_key(CONTENT_LENGTH) {
        let _ = write!(out, "content-length: {}\r\n", body.len());
    }
    let _ = write!(out, "\r\n{}", String::from_utf8_lossy(body));
    out
}

/// The decision's reasons, in words: the request, its canonical path, the instant, the
/// route, the decision and why, and the settleMethod drill.
fn describe(snapshot: &Snapshot, at: DateTime<Utc>, request: &Explained) -> String {
    let config = &snapshot.config;
    let tz = config.clock.timezone;
    let (method, headers, client_ip) = (&request.method, &request.headers, request.client_ip);
    let target = request.target.as_str();
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let mark = ViaMark::named(EXPLAIN_VIA_ID);
    // `explain` takes an origin-form path: the host can only come from a `Host` header.
    let origin_form = http::Uri::default();
    let host = request_host(&origin_form, headers);
    let action = crate::decide::action(
        snapshot,
        RequestInfo {
            method,
            path,
            headers,
            peer: client_ip,
            host,
            mark: &mark,
        },
        at,
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "request:  {method} {path} from {client_ip}{}",
        host.map(|h| format!(" for host {h}")).unwrap_or_default()
    );
    match crate::decide::path::canonicalize(path) {
        Ok(c) if c.path != path => {
            let note = if c.rewritten {
                "differs from the request's"
            } else {
                "the request's without path parameters"
            };
            let _ = writeln!(out, "path:     {} (canonical; {note})", c.path);
        }
        Ok(_) => {}
        Err(problem) => {
            let _ = writeln!(out, "path:     refused: {}", problem.reason());
        }
    }
    let _ = writeln!(out, "at:       {} ({})", local(at, tz), utc(at));
    if let Some(clock) = drill_clock(config) {
        // --at is the shim's (drill) now: say which clock that is.
        let _ = writeln!(out, "clock:    drill clock {clock}");
    }
    if let Some(r) = action.route() {
        let route = &config.routes[r];
        let upstream = config.upstream_of(route);
        let _ = writeln!(
            out,
            "route:    {} (kind {}, service {}, upstream {} {}{})",
            route.id,
            route.kind.as_str(),
            route.service,
            upstream.name,
            upstream.url.to_string().trim_end_matches('/'),
            upstream
                .connect_to
                .map(|to| format!(", connecting to {to}"))
                .unwrap_or_default(),
        );
    } else {
        let _ = writeln!(out, "route:    none");
    }
    let window_line = |w: Option<usize>, until: Option<DateTime<Utc>>| {
        let mut s = String::new();
        if let Some(w) = w {
            let w = &snapshot.windows[w];
            let _ = write!(s, " window {} ({})", w.id, window_text(w.start, w.end, tz));
        }
        if let Some(until) = until {
            let _ = write!(s, " until {}", local(until, tz));
        }
        s
    };
    let reason = match action {
        Action::Loop => format!(
            "loop (the request's Via carries this shim's own mark, {}: it has been here before)",
            mark.pseudonym()
        ),
        Action::Refuse(refusal) => {
            let why = match refusal {
                Refusal::BadPath(problem) => problem.reason(),
                Refusal::Method => "CONNECT and TRACE are never forwarded",
            };
            format!("{} ({why})", action.label())
        }
        Action::NoRoute => "no-route (the shim answers 404 itself)".to_string(),
        Action::Maintain { maintain, .. } => {
            let forced = if maintain.forced {
                " (forced by the drill header)"
            } else {
                ""
            };
            format!(
                "maintenance{forced}{}",
                window_line(maintain.window, maintain.until)
            )
        }
        Action::Forward { why, .. } => {
            let reason = match why {
                Pass::Outside => "no window covers this route now".to_string(),
                Pass::PassthroughRoute => "the route's kind is passthrough".to_string(),
                Pass::Bypass => "the client is in drill.bypass_cidrs".to_string(),
                Pass::DrillHeader => format!("the {} header says pass", config.drill.header),
                Pass::WouldMaintain(m) => format!(
                    "report mode: would have answered maintenance{}; the response carries X-Webcollect-Shim: would-maintain",
                    window_line(m.window, m.until)
                ),
            };
            format!("{} ({reason})", action.label())
        }
    };
    let _ = writeln!(out, "decision: {reason}");
    if let Action::Forward { rewrite, .. } = action {
        let drill = &config.settle_drill;
        let settle = match rewrite {
            Rewrite::Response => format!(
                "applies: resultData/settleMethod in the response becomes {} (bodies up to {} bytes)",
                drill.value, drill.max_body
            ),
            Rewrite::Request => format!(
                "applies: settle_method in the relayed notification becomes {}",
                drill.value
            ),
            Rewrite::None => format!("does not apply (when = {})", drill.when.as_str()),
        };
        let _ = writeln!(out, "settleMethod drill: {settle}");
    }
    out
}
