//! The access log, the request metrics and the drill journal's record: a request's outcome,
//! written once per request whatever it was, by one writer (`Pending`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderValue, Method, Uri};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::body::ProxyBody;
use super::rescue::Failure;
use super::{Answer, Call, Decided};
use crate::decide::{Action, Pass};
use crate::journal::capture::{Capture, End};
use crate::metrics::Decision;
use crate::proxy::conn::InFlight;
use crate::proxy::worker::{View, Worker};

/// Adds [`AccessLog`].
#[derive(Debug, Clone)]
pub(crate) struct AccessLogLayer {
    worker: Arc<Worker>,
}

impl AccessLogLayer {
    /// Logs and counts the requests served by `worker`.
    #[must_use]
    pub(crate) fn new(worker: Arc<Worker>) -> Self {
        Self { worker }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            worker: self.worker.clone(),
        }
    }
}

/// Logs and counts each request after its answer is known.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog<S> {
    inner: S,
    worker: Arc<Worker>,
}

/// The parts of the request the log line shows, kept only when info logging is on.
#[derive(Debug)]
struct LineHead {
    method: Method,
    uri: Uri,
    request_id: Option<HeaderValue>,
}

impl<S> Service<Call> for AccessLog<S>
where
    S: Service<Call, Response = Answer, Error = Infallible>,
    S::Future: Decided,
{
    type Response = Answer;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let started = Instant::now();
        let version = call.req.version();
        let view = call.view.clone();
        let in_flight = call.conn.activity.begin(version);
        let head = tracing::enabled!(tracing::Level::INFO).then(|| LineHead {
            method: call.req.method().clone(),
            uri: call.req.uri().clone(),
            request_id: Some(call.id.clone()),
        });
        let mut future = self.inner.call(call);
        let action = future.action();
        let capture = future.take_capture();
        ResponseFuture {
            future,
            record: Some(Pending {
                worker: self.worker.clone(),
                view,
                started,
                head,
                action,
                capture,
                _in_flight: in_flight,
            }),
        }
    }
}

pin_project! {
    /// Response future of [`AccessLog`]. Dropped before the answer (the client left), it
    /// still writes the request's line: status 499.
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        future: F,
        record: Option<Pending>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(record) = this.project().record.take() {
                record.abandon();
            }
        }
    }
}

opaque_debug!(ResponseFuture);

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Answer, Infallible>>,
{
    type Output = Result<Answer, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(answer) = ready!(this.future.poll(cx));
        let answer = match this.record.take() {
            Some(record) => record.write(answer),
            None => answer,
        };
        Poll::Ready(Ok(answer))
    }
}

#[derive(Debug)]
struct Pending {
    worker: Arc<Worker>,
    view: Arc<View>,
    started: Instant,
    head: Option<LineHead>,
    /// The decision, as the layer below made it.
    action: Option<Action>,
    /// The drill journal's record of it, if it is journalled.
    capture: Option<Arc<Capture>>,
    // Ends the request for the connection's idle timer, whether written or dropped.
    _in_flight: InFlight,
}

impl Pending {
    /// The one place a request's outcome is written: the access log line, the metrics and
    /// the drill journal all read it from here. Returns the answer, its body tapped for the
    /// journal when it reads the upstream's answer.
    fn write(mut self, mut answer: Answer) -> Answer {
        let outcome = answer.outcome;
        let status = answer.response.status().as_u16();
        // Read once, for the journal and the log line alike.
        let latency_us = self.latency_us();
        if let Some(capture) = self.capture.take() {
            // A timeout or a broken exchange may have been acted on upstream; a request that
            // never left, or whose body failed (the upstream got no complete request), was not.
            let reached = capture.forwarded()
                && matches!(
                    outcome.failure,
                    None | Some(Failure::Timeout | Failure::Upstream)
                );
            capture.end(End {
                status,
                error: outcome.failure.map(Failure::label),
                latency_us,
                reached,
            });
            if reached && outcome.failure.is_none() && capture.wants_answer() {
                let body = std::mem::replace(answer.response.body_mut(), ProxyBody::full(""));
                *answer.response.body_mut() = body.tapped(capture);
            }
        }
        self.log(status, outcome.failure, None, latency_us);
        answer
    }

    /// The client left (or a panic unwound) before the answer: the line says so.
    fn abandon(mut self) {
        let (status, error) = if std::thread::panicking() {
            (500, "internal-error")
        } else {
            (499, "client-gone")
        };
        let latency_us = self.latency_us();
        if let Some(capture) = self.capture.take() {
            capture.end(End {
                status,
                error: Some(error),
                latency_us,
                // Forwarded and gone: it may well have reached the upstream.
                reached: capture.forwarded(),
            });
        }
        self.log(status, None, Some(error), latency_us);
    }

    fn latency_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn log(
        self,
        status: u16,
        failure: Option<Failure>,
        gone: Option<&'static str>,
        latency_us: u64,
    ) {
        let action = self.action;
        let loaded = &self.view.loaded;
        let snapshot = &loaded.snapshot;
        let config = &snapshot.config;
        let route = action.and_then(|a| a.route());
        let route_id = route.map_or("-", |r| config.routes[r].id.as_str());
        let decision = failure.map_or_else(|| decision(action), |f| f.decision());
        let metrics = &self.worker.shared.metrics;
        metrics.request(
            &loaded.counters,
            route.map(|r| (r, route_id)),
            decision,
            status,
        );
        // The console's per-route counts: this worker's own cells, the last being "no route".
        let cells = route.unwrap_or(config.routes.len());
        if let Some(cells) = self.view.traffic.get(cells) {
            cells.record(decision, metrics.traffic.minute(self.started));
        }
        let maintain = match action {
            Some(
                Action::Maintain { maintain, .. }
                | Action::Forward {
                    why: Pass::WouldMaintain(maintain),
                    ..
                },
            ) => Some(maintain),
            _ => None,
        };
        let window = maintain
            .and_then(|m| m.window)
            .map_or("-", |w| snapshot.windows[w].id.as_str());
        if let Some(Action::Forward {
            why: Pass::WouldMaintain(_),
            ..
        }) = action
            && failure.is_none()
        {
            metrics.would_maintain(route_id, window);
        }
        let Some(head) = self.head else { return };
        let upstream = match action {
            Some(Action::Forward { route, .. }) => config.upstreams[config.routes[route].upstream]
                .name
                .as_str(),
            _ => "-",
        };
        // Path only: the query string can carry order numbers and tokens. No header values
        // but the request id.
        Line {
            method: head.method.as_str(),
            path: path_for_log(&crate::decide::path::as_decided(head.uri.path())),
            route: route_id,
            decision: action.map_or("-", |a| a.label()),
            window,
            status,
            latency_us,
            upstream,
            error: failure.map_or(gone.unwrap_or("-"), |f| f.label()),
            request_id: head
                .request_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map_or("-", |id| path_for_log(id)),
        }
        .write();
    }
}

/// One access-log line: every request's, whichever way it ended.
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    route: &'a str,
    decision: &'a str,
    window: &'a str,
    status: u16,
    latency_us: u64,
    upstream: &'a str,
    error: &'a str,
    request_id: &'a str,
}

impl Line<'_> {
    fn write(&self) {
        tracing::info!(
            method = self.method,
            path = self.path,
            route = self.route,
            decision = self.decision,
            window = self.window,
            status = self.status,
            latency_us = self.latency_us,
            upstream = self.upstream,
            error = self.error,
            request_id = self.request_id,
            "Request."
        );
    }
}

/// The line and the count of a request head that never became a request: hyper refused it
/// (`400 bad-head`, `431 head-too-large`) or its client left while sending it
/// (`499 client-gone`). Nothing of it was read, so nothing of it is shown: no method, no
/// path, a request id of its own. Counted as a `bad_request` with no route.
pub(crate) fn unfinished_head(
    worker: &Worker,
    status: u16,
    error: &'static str,
    accepted: tokio::time::Instant,
) {
    let view = worker.view();
    worker
        .shared
        .metrics
        .request(&view.loaded.counters, None, Decision::BadRequest, status);
    if let Some(cells) = view.traffic.get(view.loaded.snapshot.config.routes.len()) {
        cells.record(
            Decision::BadRequest,
            worker.shared.metrics.traffic.minute(Instant::now()),
        );
    }
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let id = worker.next_request_id();
    Line {
        method: "-",
        path: "-",
        route: "-",
        decision: "-",
        window: "-",
        status,
        latency_us: u64::try_from(accepted.elapsed().as_micros()).unwrap_or(u64::MAX),
        upstream: "-",
        error,
        request_id: id.to_str().unwrap_or("-"),
    }
    .write();
}

/// The metrics' `decision` label for a request that did not fail.
fn decision(action: Option<Action>) -> Decision {
    match action {
        None | Some(Action::Refuse(_)) => Decision::BadRequest,
        Some(Action::Loop) => Decision::Loop,
        Some(Action::NoRoute) => Decision::NotFound,
        Some(Action::Maintain { .. }) => Decision::Maintenance,
        Some(Action::Forward { why, .. }) => match why {
            Pass::Outside | Pass::PassthroughRoute => Decision::Pass,
            Pass::Bypass | Pass::DrillHeader => Decision::Bypass,
            Pass::WouldMaintain(_) => Decision::Report,
        },
    }
}

/// A request value for the log line, capped so junk from scanners cannot bloat the log.
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
