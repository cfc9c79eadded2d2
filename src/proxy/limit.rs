//! The request body limits, applied in this one place for every forwarded request, the
//! notification relay included: a declared `Content-Length` past `server.max_request_body`
//! is refused (413) before anything is read or sent; any other body is bounded as it
//! streams, in size (413) and in the time between frames, `server.body_read_timeout` (408).
//! (Short-circuited requests are not forwarded: their bodies are drained within
//! `[maintenance]`'s own bounds.)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tower::Service;

use super::Forwarding;
use super::body::{ProxyBody, RequestBody, UpstreamBody, declared_length};
use super::rescue::ProxyError;

/// Bounds the request body of each forwarded request.
#[derive(Debug, Clone)]
pub(crate) struct Limit<S>(pub S);

impl<S> Service<Forwarding<RequestBody>> for Limit<S>
where
    S: Service<Forwarding, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut fwd: Forwarding<RequestBody>) -> Self::Future {
        let server = &fwd.view.loaded.snapshot.config.server;
        if declared_length(fwd.req.headers()).is_some_and(|n| n > server.max_request_body) {
            return ResponseFuture::TooLarge;
        }
        let limit = usize::try_from(server.max_request_body).unwrap_or(usize::MAX);
        // A form read whole is bounded in time as a whole (`forward::outbound`); a second
        // timer between its frames would only cost a registration.
        let kind = fwd.view.loaded.snapshot.config.routes[fwd.route].kind;
        let stall = (!super::forward::reads_whole(kind)).then_some(server.body_read_timeout);
        let tap = fwd.tap.take();
        let fwd = fwd.map_body(|body| UpstreamBody::bounded(body, limit, stall, tap));
        ResponseFuture::Inner {
            future: self.0.call(fwd),
        }
    }
}

pin_project! {
    /// Response future of [`Limit`].
    #[project = Proj]
    pub(crate) enum ResponseFuture<F> {
        /// Refused by its declared length.
        TooLarge,
        /// Bounded and passed on.
        Inner { #[pin] future: F },
    }
}

opaque_debug!(ResponseFuture);

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::TooLarge => Poll::Ready(Err(ProxyError::BodyTooLarge)),
            Proj::Inner { future } => future.poll(cx),
        }
    }
}
