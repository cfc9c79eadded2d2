//! Forwarding failures, and the one place that turns them into answers (400, 408, 413, 499,
//! 502, 503, 504): the body limit's, the settleMethod drill's and the forward's alike.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::Response;
use pin_project_lite::pin_project;
use tower::Service;

use super::body::{ProxyBody, RequestBody};
use super::pool::ConnectError;
use super::{Answer, Forwarding};
use crate::metrics::Decision;
use crate::proxy::worker::View;
use crate::response::{self, Canned};

/// Why a forward failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// TCP or TLS connection to the upstream failed.
    #[error("upstream unreachable")]
    Connect(#[source] ConnectError),
    /// No response headers within `response_timeout`.
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The exchange broke after connecting (reset, malformed response), or the request
    /// body failed while it was being sent.
    #[error("upstream exchange failed")]
    Upstream(#[source] hyper::Error),
    /// The declared request body is larger than `server.max_request_body`.
    #[error("request body larger than server.max_request_body")]
    BodyTooLarge,
    /// Every connection `max_connections` allows was busy for `connect_timeout`.
    #[error("upstream connection limit reached; waited {0:?}")]
    Busy(Duration),
    /// The request could not be turned into an upstream request.
    #[error("request cannot be forwarded")]
    BadRequest,
    /// A failure already classified: a request body read whole that failed (too large,
    /// stalled, malformed), or a rewritten answer that did not arrive in time.
    #[error("{}", .0.label())]
    Failed(Failure),
}

/// What kind of failure it was: the label in logs and the answer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 502: the upstream could not be reached.
    Unreachable,
    /// 504: no answer in time.
    Timeout,
    /// 502: the exchange broke.
    Upstream,
    /// 413: the request body is too large.
    BodyTooLarge,
    /// 408: the request body stalled.
    BodyTimeout,
    /// 400: the request body is malformed (bad chunked framing).
    BadBody,
    /// 503: the upstream's connection limit was reached.
    UpstreamBusy,
    /// 400: the request cannot be forwarded.
    BadRequest,
    /// 499 (nginx's "client closed request"): the client closed the connection while its
    /// body was being read. Nobody reads the answer; the log, the metrics and the journal
    /// say what happened.
    ClientGone,
}

impl Failure {
    /// Short label for logs.
    #[must_use]
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Unreachable => "upstream-unreachable",
            Self::Timeout => "upstream-timeout",
            Self::Upstream => "upstream-error",
            Self::BodyTooLarge => "request-body-too-large",
            Self::BodyTimeout => "request-body-timeout",
            Self::BadBody => "bad-request-body",
            Self::UpstreamBusy => "upstream-busy",
            Self::BadRequest => "bad-request",
            Self::ClientGone => "client-gone",
        }
    }

    /// The metrics' `decision` label.
    #[must_use]
    pub(crate) fn decision(self) -> Decision {
        match self {
            Self::Unreachable | Self::Timeout | Self::Upstream | Self::UpstreamBusy => {
                Decision::UpstreamError
            }
            Self::BodyTooLarge
            | Self::BodyTimeout
            | Self::BadBody
            | Self::BadRequest
            | Self::ClientGone => Decision::BadRequest,
        }
    }

    /// The answer the client gets.
    #[must_use]
    pub(crate) fn to_canned(self) -> Canned {
        match self {
            Self::Unreachable => response::bad_gateway("upstream unreachable"),
            Self::Timeout => response::gateway_timeout(),
            Self::Upstream => {
                response::bad_gateway("upstream closed the connection without a valid response")
            }
            Self::BodyTooLarge => response::payload_too_large(),
            Self::BodyTimeout => response::request_timeout(),
            Self::BadBody => response::bad_request("malformed request body"),
            Self::UpstreamBusy => response::upstream_busy(),
            Self::BadRequest => response::bad_request("request target cannot be forwarded"),
            Self::ClientGone => response::client_gone(),
        }
    }
}

impl ProxyError {
    /// What kind of failure it is.
    #[must_use]
    pub(crate) fn failure(&self) -> Failure {
        match self {
            // The body hyper was sending is the client's: its failure is the client's.
            Self::Upstream(err) if err.is_user() => body_failure(err),
            Self::Upstream(_) => Failure::Upstream,
            Self::Connect(_) => Failure::Unreachable,
            Self::Timeout(_) => Failure::Timeout,
            Self::BodyTooLarge => Failure::BodyTooLarge,
            Self::Busy(_) => Failure::UpstreamBusy,
            Self::BadRequest => Failure::BadRequest,
            Self::Failed(failure) => *failure,
        }
    }
}

/// Why the client's request body failed while it was read (see
/// [`super::body::BoundedBody`]): too large, stalled, or malformed.
#[must_use]
pub(crate) fn body_failure(err: &(dyn std::error::Error + 'static)) -> Failure {
    use crate::error::caused_by;
    if caused_by::<http_body_util::LengthLimitError>(err) {
        Failure::BodyTooLarge
    } else if caused_by::<super::stall::Stalled>(err) {
        Failure::BodyTimeout
    } else if crate::error::cause::<std::io::Error>(err)
        .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof)
    {
        // hyper reads the connection's end before the body's (a length or chunk not met):
        // the client left.
        Failure::ClientGone
    } else {
        Failure::BadBody
    }
}

/// Turns the errors of the steps below into canned answers, and logs each once.
#[derive(Debug, Clone)]
pub(crate) struct Rescue<S>(pub S);

impl<S> Service<Forwarding<RequestBody>> for Rescue<S>
where
    S: Service<Forwarding<RequestBody>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Answer;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The forward step is always ready; map its (impossible) error away.
        self.0.poll_ready(cx).map(|_| Ok(()))
    }

    fn call(&mut self, fwd: Forwarding<RequestBody>) -> Self::Future {
        let about = (fwd.view.clone(), fwd.route);
        ResponseFuture {
            future: self.0.call(fwd),
            about,
        }
    }
}

pin_project! {
    /// Response future of [`Rescue`].
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        future: F,
        // For the warning: the config and the route (their names are not copied up front).
        about: (Arc<View>, usize),
    }
}

opaque_debug!(ResponseFuture);

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
{
    type Output = Result<Answer, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = match ready!(this.future.poll(cx)) {
            Ok(response) => Answer::forwarded(response),
            Err(err) => {
                let failure = err.failure();
                let (view, route) = &*this.about;
                let config = &view.loaded.snapshot.config;
                let route = &config.routes[*route];
                let upstream = config.upstreams[route.upstream].name.as_str();
                let cause = crate::error::Chain(&err);
                if failure.decision() == crate::metrics::Decision::BadRequest {
                    // The client's doing; the access log line says it already.
                    tracing::debug!(route = route.id.as_str(), upstream, error = failure.label(), %cause, "Request refused.");
                } else {
                    tracing::warn!(route = route.id.as_str(), upstream, error = failure.label(), %cause, "Forward failed.");
                }
                Answer::failed(failure)
            }
        };
        Poll::Ready(Ok(answer))
    }
}
