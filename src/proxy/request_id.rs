//! The request id: the client's `X-Request-Id`, else one from the worker's sequence (no
//! syscall); set on the request, so it is forwarded upstream and logged, and echoed on the
//! answer unless the answer already carries one.
//!
//! tower-http's `SetRequestId` / `PropagateRequestId` do the same, and this stack used them
//! at first. They also store the id in the request's and the response's extensions, which
//! nothing here reads. That was six of the fourteen allocations of a short-circuited request
//! and 2,100 of its 19,600 instructions (callgrind, `bench/profile.sh`). This layer keeps
//! their behaviour without the extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::proxy::worker::Worker;

/// The header that carries the id, both ways.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Adds [`RequestId`].
#[derive(Debug, Clone)]
pub struct RequestIdLayer {
    worker: Arc<Worker>,
}

impl RequestIdLayer {
    /// Ids made from `worker`'s sequence (see [`Worker::next_request_id`]).
    #[must_use]
    pub fn new(worker: Arc<Worker>) -> Self {
        Self { worker }
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> RequestId<S> {
        RequestId {
            inner,
            worker: self.worker.clone(),
        }
    }
}

/// Keeps or makes the request id and echoes it.
#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
    worker: Arc<Worker>,
}

impl<S, B, R> Service<Request<B>> for RequestId<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = self.worker.next_request_id();
                req.headers_mut().insert(X_REQUEST_ID, id.clone());
                id
            }
        };
        ResponseFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project! {
    /// Echoes the id on the answer.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            let headers = response.headers_mut();
            match headers.get_mut(X_REQUEST_ID) {
                // The slot a cached answer keeps for the id (`View::maintenance_answer`):
                // filled in place, the header map does not grow.
                Some(slot) if slot.is_empty() => *slot = id,
                // An upstream's own id is left as it is, as tower-http's layer leaves it.
                Some(_) => {}
                None => {
                    headers.insert(X_REQUEST_ID, id);
                }
            }
        }
        Poll::Ready(Ok(response))
    }
}
