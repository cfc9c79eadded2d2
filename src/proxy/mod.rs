//! The merchant-facing request path: one tower stack of small layers, one concern each (see
//! [`stack`] for the order). It never fails: every error becomes an answer in [`rescue`].
//!
//! Between the layers a request travels as a [`Call`] (before the decision) or a
//! [`Forwarding`] (on its way upstream), and comes back as an [`Answer`]: the response plus
//! the [`Outcome`]. The access log writes each request's outcome once, for the log line, the
//! metrics and the drill journal alike, from the decision ([`Decided`]) and that outcome.

pub mod body;
pub mod conn;
pub mod decide;
pub mod forward;
pub mod log;
pub mod panic;
pub mod pool;
pub mod request_id;
pub mod rescue;
pub mod sensitive;
pub mod settle;
pub mod worker;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Response};
use hyper::body::Incoming;
use tower::{Layer as _, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;

use crate::decide::{Action, Rewrite};
use crate::proxy::worker::{View, Worker};
use crate::response::{BoxError, Canned};
use body::{ProxyBody, UpstreamBody};
use conn::Conn;
use rescue::Failure;

/// Body of the answers the stack gives hyper (catch-panic boxes every body once).
pub type ClientBody = tower_http::body::UnsyncBoxBody<Bytes, BoxError>;

/// A request with what the shim knows about it before the decision.
#[derive(Debug)]
pub struct Call {
    /// The client's request.
    pub req: Request<Incoming>,
    /// The config it is decided and served on, start to end.
    pub view: Arc<View>,
    /// The shim's now for this request (read once).
    pub now: DateTime<Utc>,
    /// The client connection.
    pub conn: Arc<Conn>,
}

/// A request on its way upstream.
#[derive(Debug)]
pub struct Forwarding {
    /// The request, its body bounded by `server.max_request_body`.
    pub req: Request<UpstreamBody>,
    /// The config it is served on.
    pub view: Arc<View>,
    /// The client connection.
    pub conn: Arc<Conn>,
    /// The route it matched.
    pub route: usize,
    /// What the settleMethod drill does to it.
    pub rewrite: Rewrite,
}

impl Forwarding {
    /// Index of the route's upstream.
    #[must_use]
    pub fn upstream(&self) -> usize {
        self.view.loaded.snapshot.config.routes[self.route].upstream
    }
}

/// What happened to a request below the decision, for the access log, the one writer of a
/// request's outcome (the decision itself it reads from [`Decided`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Why forwarding failed, if it did.
    pub failure: Option<Failure>,
}

/// What the layer below the access log decided, readable as soon as its `call` returns, so
/// that the access log, the one writer of a request's outcome, knows it even when the
/// client leaves before the answer.
pub trait Decided {
    /// The decision, if one was made.
    fn action(&self) -> Option<Action>;
    /// The drill journal's capture of the request, if it is journalled (taken once).
    fn take_capture(&mut self) -> Option<Arc<crate::journal::capture::Capture>>;
}

/// A response and what happened to get it.
#[derive(Debug)]
pub struct Answer {
    /// The response for the client.
    pub response: Response<ProxyBody>,
    /// What happened.
    pub outcome: Outcome,
}

impl Answer {
    /// An answer made by the shim itself.
    #[must_use]
    pub fn canned(canned: Canned, outcome: Outcome) -> Self {
        Self {
            response: into_response(canned),
            outcome,
        }
    }

    /// The answer to a request that failed before or while it was forwarded.
    #[must_use]
    pub fn failed(failure: Failure) -> Self {
        Self::canned(
            failure.to_canned(),
            Outcome {
                failure: Some(failure),
            },
        )
    }
}

/// A canned answer as a response.
#[must_use]
pub fn into_response(canned: Canned) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(canned.body));
    *response.status_mut() = canned.status;
    *response.headers_mut() = canned.headers;
    response
}

/// The merchant-facing service for one client connection served by `worker`.
pub fn stack(
    worker: Arc<Worker>,
    conn: Arc<Conn>,
) -> impl Service<
    Request<Incoming>,
    Response = Response<ClientBody>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    build(worker, conn, rescue::RescueLayer.layer(forward::Forward))
}

/// The stack around `upstream` (the rescued forward step; tests put others there). Outermost
/// first, as `ServiceBuilder` runs them:
///
/// 1. a panic below becomes `500` (`X-Webcollect-Shim: internal-error`); the worker and
///    the connection survive;
/// 2. `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie` are marked
///    sensitive, so no debug output shows them;
/// 3. the request id: the client's `X-Request-Id`, else a generated one; it is forwarded
///    upstream (it is a request header) and echoed on every answer;
/// 4. the access log line and the metrics, once per request whatever the outcome;
/// 5. the decision: short-circuit with the maintenance (or 404) answer, or forward;
/// 6. the settleMethod rewrite of the exchanges the decision picked;
/// 7. (in `upstream`) rescue: every forwarding error becomes its canned answer;
/// 8. (in `upstream`) forward, on this worker's pool.
pub fn build<S>(
    worker: Arc<Worker>,
    conn: Arc<Conn>,
    upstream: S,
) -> impl Service<
    Request<Incoming>,
    Response = Response<ClientBody>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static
where
    S: Service<Forwarding, Response = Answer, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(panic::PanicAnswer))
        .layer(sensitive::SensitiveHeadersLayer)
        .layer(request_id::RequestIdLayer::new(worker.clone()))
        .layer(log::AccessLogLayer::new(worker, conn))
        .layer(decide::DecideLayer)
        .layer(settle::SettleLayer)
        .service(upstream)
}

#[cfg(test)]
mod tests;
