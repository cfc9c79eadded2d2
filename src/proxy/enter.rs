//! Entering a request, and rendering its answer: the one step that builds a request's
//! context ([`Call`]: the request id, the worker's view of the config, the shim's now, the
//! connection) and the one place an [`Answer`] becomes the response the client gets.
//!
//! The request id is the client's `X-Request-Id`, else one from the worker's sequence (no
//! syscall); it is set on the request, so it is forwarded upstream and logged, and echoed on
//! the answer unless the answer already carries one. tower-http's `SetRequestId` and
//! `PropagateRequestId` do the same, and this stack used them at first; they also store the
//! id in the request's and the response's extensions, which nothing here reads: six of the
//! fourteen allocations of a short-circuited request and 2,100 of its 19,600 instructions
//! (callgrind, `bench/profile.sh`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{CONNECTION, Entry, HeaderName, HeaderValue};
use http::{Request, Response, Version};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::body::{ProxyBody, request_body};
use super::conn::Conn;
use super::{Answer, Call};
use crate::proxy::worker::Worker;
use crate::response::BoxError;

/// The header that carries the id, both ways.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Adds [`Enter`].
#[derive(Debug, Clone)]
pub(crate) struct EnterLayer {
    worker: Arc<Worker>,
    conn: Arc<Conn>,
}

impl EnterLayer {
    /// Requests of `conn`, served by `worker`.
    #[must_use]
    pub(crate) fn new(worker: Arc<Worker>, conn: Arc<Conn>) -> Self {
        Self { worker, conn }
    }
}

impl<S> Layer<S> for EnterLayer {
    type Service = Enter<S>;

    fn layer(&self, inner: S) -> Enter<S> {
        Enter {
            inner,
            worker: self.worker.clone(),
            conn: self.conn.clone(),
        }
    }
}

/// Enters each request and renders its answer.
#[derive(Debug, Clone)]
pub(crate) struct Enter<S> {
    inner: S,
    worker: Arc<Worker>,
    conn: Arc<Conn>,
}

impl<S, B> Service<Request<B>> for Enter<S>
where
    S: Service<Call, Response = Answer, Error = Infallible>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // One lookup of the field, whether the client sent it or not.
        let id = match req.headers_mut().entry(X_REQUEST_ID) {
            Entry::Occupied(id) => id.get().clone(),
            Entry::Vacant(slot) => slot.insert(self.worker.next_request_id()).clone(),
        };
        let version = req.version();
        let call = Call {
            req: req.map(request_body),
            id: id.clone(),
            view: self.worker.view(),
            now: self.worker.shared.clock.now(),
            conn: self.conn.clone(),
        };
        ResponseFuture {
            inner: self.inner.call(call),
            id: Some(id),
            version,
        }
    }
}

pin_project! {
    /// Renders the answer.
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
        version: Version,
    }
}

opaque_debug!(ResponseFuture);

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Answer, Infallible>>,
{
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(answer) = ready!(this.inner.poll(cx));
        let Some(id) = this.id.take() else {
            panic!("future polled after completion");
        };
        Poll::Ready(Ok(render(answer, id, *this.version)))
    }
}

/// The answer as the client gets it: the request id echoed, and `Connection: close` when
/// the connection must close, on HTTP/1.x only (HTTP/2 has no such field).
fn render(answer: Answer, id: HeaderValue, version: Version) -> Response<ProxyBody> {
    let Answer {
        mut response,
        close,
        ..
    } = answer;
    let headers = response.headers_mut();
    match headers.entry(X_REQUEST_ID) {
        // The slot a cached answer keeps for the id (`View::maintenance_answer`): filled in
        // place, the header map does not grow.
        Entry::Occupied(mut slot) if slot.get().is_empty() => *slot.get_mut() = id,
        // An upstream's own id is left as it is, as tower-http's layer leaves it.
        Entry::Occupied(_) => {}
        Entry::Vacant(slot) => {
            slot.insert(id);
        }
    }
    if close && version <= Version::HTTP_11 {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
