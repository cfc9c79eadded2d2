//! The merchant-facing request path: one tower stack of small layers, one concern each (see
//! `build` for the order), generic over the request body: hyper's `Incoming` on a real
//! connection, any `http_body::Body` in a test or in `explain`. It never fails: every
//! forwarding error becomes an answer in `rescue`, the one place that does so.
//!
//! Between the layers a request travels as a `Call` (entered, before the decision) or a
//! `Forwarding` (on its way upstream), and comes back as an `Answer`: the response, the
//! `Outcome` and whether the connection must close. The access log writes each request's
//! outcome once, for the log line, the metrics and the drill journal alike, from the
//! decision (`Decided`) and that outcome; `enter` renders the answer once.

/// `Debug` for a layer's response future, whose inner future need not be `Debug`.
macro_rules! opaque_debug {
    ($future:ident) => {
        impl<F> std::fmt::Debug for $future<F> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($future)).finish_non_exhaustive()
            }
        }
    };
}

pub(crate) mod body;
pub(crate) mod conn;
pub(crate) mod enter;
pub mod forward;
pub(crate) mod limit;
pub(crate) mod log;
pub(crate) mod panic;
pub(crate) mod pool;
pub(crate) mod rescue;
pub(crate) mod sensitive;
pub mod settle;
pub(crate) mod short_circuit;
pub(crate) mod stall;
pub(crate) mod worker;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderValue, Request, Response};
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;

use crate::decide::{Action, Rewrite};
use crate::journal::capture::Capture;
use crate::proxy::worker::{View, Worker};
use crate::response::{BoxError, Canned};
use body::{ProxyBody, RequestBody, UpstreamBody};
use conn::Conn;
use rescue::{Failure, ProxyError};

/// Body of the stack's responses, as hyper gets them (catch-panic boxes every body once).
pub(crate) type ResponseBody = tower_http::body::UnsyncBoxBody<Bytes, BoxError>;

/// A request entered into the shim: what it knows about it before the decision.
#[derive(Debug)]
pub(crate) struct Call {
    /// The client's request (its `X-Request-Id` set: the client's or a generated one).
    pub(crate) req: Request<RequestBody>,
    /// That `X-Request-Id`, so that no later step looks it up again.
    pub(crate) id: HeaderValue,
    /// The config it is decided and served on, start to end.
    pub(crate) view: Arc<View>,
    /// The shim's now for this request (read once).
    pub(crate) now: DateTime<Utc>,
    /// The client connection.
    pub(crate) conn: Arc<Conn>,
}

/// A request on its way upstream: with the client's body (`B` = [`RequestBody`]) until
/// [`limit`] bounds it, then with an [`UpstreamBody`].
#[derive(Debug)]
pub(crate) struct Forwarding<B = UpstreamBody> {
    /// The request.
    pub(crate) req: Request<B>,
    /// The config it is served on.
    pub(crate) view: Arc<View>,
    /// The client connection.
    pub(crate) conn: Arc<Conn>,
    /// The route it matched.
    pub(crate) route: usize,
    /// What the settleMethod drill does to it.
    pub(crate) rewrite: Rewrite,
    /// The drill journal's capture, when it reads the request body (taken by [`limit`],
    /// which puts it in the body).
    pub(crate) tap: Option<Arc<Capture>>,
    /// The request's path is canonical as it is (the decision found it so): the forward
    /// step need not canonicalize it again.
    pub(crate) canonical: bool,
}

impl<B> Forwarding<B> {
    /// Index of the route's upstream.
    #[must_use]
    pub(crate) fn upstream(&self) -> usize {
        self.view.loaded.snapshot.config.routes[self.route].upstream
    }

    /// The same forwarding with the body `f` makes of this one's.
    #[must_use]
    pub(crate) fn map_body<C>(self, f: impl FnOnce(B) -> C) -> Forwarding<C> {
        Forwarding {
            req: self.req.map(f),
            view: self.view,
            conn: self.conn,
            route: self.route,
            rewrite: self.rewrite,
            tap: self.tap,
            canonical: self.canonical,
        }
    }
}

/// What happened to a request below the decision, for the access log, the one writer of a
/// request's outcome (the decision itself it reads from [`Decided`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Why forwarding failed, if it did.
    pub(crate) failure: Option<Failure>,
}

/// What the layer below the access log decided, readable as soon as its `call` returns, so
/// that the access log, the one writer of a request's outcome, knows it even when the
/// client leaves before the answer.
pub(crate) trait Decided {
    /// The decision, if one was made.
    fn action(&self) -> Option<Action>;
    /// The drill journal's capture of the request, if it is journalled (taken once).
    fn take_capture(&mut self) -> Option<Arc<Capture>>;
}

/// A response and what happened to get it.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The response for the client.
    pub(crate) response: Response<ProxyBody>,
    /// What happened.
    pub(crate) outcome: Outcome,
    /// The connection cannot carry another request (a body was left unread): `enter`
    /// renders it as `Connection: close`, on HTTP/1.x only, as linkerd's
    /// `SyntheticHttpResponse { close_connection }`.
    pub(crate) close: bool,
}

impl Answer {
    /// An answer made by the shim itself.
    #[must_use]
    pub(crate) fn canned(canned: Canned, outcome: Outcome) -> Self {
        let close = canned.close;
        Self {
            response: into_response(canned),
            outcome,
            close,
        }
    }

    /// The upstream's answer (or what the settleMethod drill made of it).
    #[must_use]
    pub(crate) fn forwarded(response: Response<ProxyBody>) -> Self {
        Self {
            response,
            outcome: Outcome::default(),
            close: false,
        }
    }

    /// The answer to a request that failed before or while it was forwarded.
    #[must_use]
    pub(crate) fn failed(failure: Failure) -> Self {
        Self::canned(
            failure.to_canned(),
            Outcome {
                failure: Some(failure),
            },
        )
    }
}

/// A canned answer as a response (its `close` flag is the [`Answer`]'s business).
#[must_use]
pub(crate) fn into_response(canned: Canned) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(canned.body));
    *response.status_mut() = canned.status;
    *response.headers_mut() = canned.headers;
    response
}

/// `wait` after `start`, or as far as the clock goes: durations in the config have no upper
/// bound, and `Instant + Duration` panics past it (as `tokio::time::timeout` does not).
#[must_use]
pub(crate) fn deadline(
    start: tokio::time::Instant,
    wait: std::time::Duration,
) -> tokio::time::Instant {
    start
        .checked_add(wait)
        .unwrap_or_else(|| start + std::time::Duration::from_secs(86_400 * 365 * 30))
}

/// The merchant-facing service for one client connection served by `worker`, like
/// tower-http's `fn app()`: it takes any request body, so a test sends a request with
/// `oneshot` and no socket. `forward` is the step that sends a request upstream:
/// [`forward::Forward`] when serving, a stand-in in `explain` and tests. Outermost first, as
/// `ServiceBuilder` runs them:
///
/// 1. a panic below becomes `500` (`X-Webcollect-Shim: internal-error`); the worker and
///    the connection survive;
/// 2. `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie` are marked
///    sensitive, so no debug output shows them;
/// 3. enter: the request id (the client's `X-Request-Id`, else a generated one, forwarded
///    upstream), the config view, now and the connection; on the way back the answer is
///    rendered once: the id echoed, `Connection: close` on HTTP/1.x when it must close;
/// 4. the access log line, the metrics and the drill journal, once per request whatever
///    the outcome;
/// 5. short-circuit: the decision; the maintenance (or 404, 405, 400, 508) answer, or on;
/// 6. rescue: every failure below becomes its answer (400, 408, 413, 499, 502, 503, 504);
/// 7. limit: the request body bounded in size and time, the one place it is;
/// 8. the settleMethod rewrite of the exchanges the decision picked;
/// 9. forward, on this worker's pool.
pub(crate) fn build<B, F>(
    worker: Arc<Worker>,
    conn: Arc<Conn>,
    forward: F,
) -> impl Service<
    Request<B>,
    Response = Response<ResponseBody>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    F: Service<Forwarding, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    F::Future: Send + 'static,
{
    ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(panic::PanicAnswer))
        .layer_fn(sensitive::SensitiveHeaders)
        .layer(enter::EnterLayer::new(worker.clone(), conn))
        .layer(log::AccessLogLayer::new(worker))
        .layer_fn(short_circuit::ShortCircuit)
        .layer_fn(rescue::Rescue)
        .layer_fn(limit::Limit)
        .layer_fn(settle::Settle)
        .service(forward)
}

/// The layers of `build`, outermost first, by the name `docs/architecture.md` gives them
/// (a test checks the doc against this list).
pub const LAYERS: [&str; 9] = [
    "catch-panic",
    "sensitive",
    "enter",
    "access-log",
    "short-circuit",
    "rescue",
    "limit",
    "settle",
    "forward",
];

#[cfg(test)]
mod tests;
