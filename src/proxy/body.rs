//! The body types of the request path, as enums rather than boxes: the common cases (hyper's
//! body, a streamed body, a canned one) cost no allocation and no dynamic dispatch.
//!
//! - [`RequestBody`]: the client's request body as the stack takes it, any
//!   `http_body::Body` (hyper's `Incoming` unboxed);
//! - [`UpstreamBody`]: the request body on its way upstream, bounded;
//! - [`ProxyBody`]: the response body on its way to the client.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Limited;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt as _, Either};
use hyper::body::Incoming;
use pin_project_lite::pin_project;

use super::pool::PooledBody;
use super::stall::StallTimeout;
use crate::journal::capture::Capture;
use crate::response::BoxError;

/// A response body on its way to the client.
#[derive(Debug)]
pub(crate) enum ProxyBody {
    /// A complete body made by the shim (`None` once sent).
    Full(Option<Bytes>),
    /// The upstream's body, streaming; its connection goes back to the pool at the end.
    Upstream(PooledBody),
    /// Anything else (rewrites that pass a partly read body on).
    Boxed(BoxBody<Bytes, BoxError>),
    /// An answer the drill journal reads the start of as it streams past.
    Tapped(Box<(ProxyBody, Arc<Capture>)>),
}

impl ProxyBody {
    /// This body, its start read by `capture` as it streams.
    #[must_use]
    pub(crate) fn tapped(self, capture: Arc<Capture>) -> Self {
        Self::Tapped(Box::new((self, capture)))
    }

    /// A complete body.
    #[must_use]
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::Full((!bytes.is_empty()).then_some(bytes))
    }
}

/// The client's request body: hyper's own, unboxed (the common case), or any other body (a
/// test's, `explain`'s), boxed. http-body-util's `Either` is the enum and its `Body`.
pub(crate) type RequestBody = Either<Incoming, UnsyncBoxBody<Bytes, BoxError>>;

/// `body` as a [`RequestBody`]: hyper's `Incoming` is kept as it is (a type check, no
/// allocation); any other body is boxed.
pub(crate) fn request_body<B>(body: B) -> RequestBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut slot = Some(body);
    if let Some(incoming) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Incoming>>() {
        return Either::Left(incoming.take().expect("taken once"));
    }
    let body = slot.expect("not taken");
    Either::Right(body.map_err(Into::into).boxed_unsync())
}

/// The client's body as forwarded: cut off past `server.max_request_body`
/// (`LengthLimitError`) and when it stalls past `server.body_read_timeout`
/// ([`super::stall::Stalled`]).
pub(crate) type BoundedBody = Limited<StallTimeout<RequestBody>>;

pin_project! {
    /// A request body on its way to the upstream.
    #[project = UpstreamProj]
    pub(crate) enum UpstreamBody {
        /// The client's body, streaming, bounded in size and time.
        Stream { #[pin] body: BoundedBody },
        /// The same, its start read by the drill journal as it streams past.
        Tapped { #[pin] body: BoundedBody, capture: Arc<Capture> },
        /// A complete body (a rewritten notification).
        Full { bytes: Option<Bytes> },
        /// Anything else (a notification read past the rewrite bound, passed on as it streams).
        Boxed { body: UnsyncBoxBody<Bytes, BoxError> },
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stream { .. } => "UpstreamBody::Stream",
            Self::Tapped { .. } => "UpstreamBody::Tapped",
            Self::Full { .. } => "UpstreamBody::Full",
            Self::Boxed { .. } => "UpstreamBody::Boxed",
        })
    }
}

impl UpstreamBody {
    /// The client's `body`, bounded by `limit` bytes and `stall` between frames (no stall
    /// bound: the caller bounds the whole body in time), its start read by `tap` as it
    /// streams past (the drill journal).
    #[must_use]
    pub(crate) fn bounded(
        body: RequestBody,
        limit: usize,
        stall: Option<Duration>,
        tap: Option<Arc<Capture>>,
    ) -> Self {
        // No body (a GET): nothing to bound, and the upstream request says so.
        if body.is_end_stream() {
            return Self::Full { bytes: None };
        }
        let body = Limited::new(StallTimeout::new(body, stall), limit);
        match tap {
            None => Self::Stream { body },
            Some(capture) => Self::Tapped { body, capture },
        }
    }

    /// A complete body.
    #[must_use]
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self::Full { bytes: Some(bytes) }
    }
}

fn full_frame(bytes: &mut Option<Bytes>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
}

fn full_hint(bytes: Option<&Bytes>) -> SizeHint {
    SizeHint::with_exact(bytes.map_or(0, |b| b.len() as u64))
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Full(bytes) => full_frame(bytes),
            Self::Upstream(body) => Pin::new(body).poll_frame(cx),
            Self::Boxed(body) => Pin::new(body).poll_frame(cx),
            Self::Tapped(tapped) => {
                let (body, capture) = &mut **tapped;
                let frame = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &frame
                    && let Some(data) = frame.data_ref()
                {
                    capture.answer_data(data);
                }
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.is_none(),
            Self::Upstream(body) => body.is_end_stream(),
            Self::Boxed(body) => body.is_end_stream(),
            Self::Tapped(tapped) => tapped.0.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => full_hint(bytes.as_ref()),
            Self::Upstream(body) => body.size_hint(),
            Self::Boxed(body) => body.size_hint(),
            Self::Tapped(tapped) => tapped.0.size_hint(),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            UpstreamProj::Stream { body } => body.poll_frame(cx),
            UpstreamProj::Tapped { body, capture } => {
                let frame = body.poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &frame
                    && let Some(data) = frame.data_ref()
                {
                    capture.request_data(data);
                }
                frame
            }
            UpstreamProj::Full { bytes } => full_frame(bytes),
            UpstreamProj::Boxed { body } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Stream { body } | Self::Tapped { body, .. } => body.is_end_stream(),
            Self::Full { bytes } => bytes.is_none(),
            Self::Boxed { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Stream { body } | Self::Tapped { body, .. } => body.size_hint(),
            Self::Full { bytes } => full_hint(bytes.as_ref()),
            Self::Boxed { body } => body.size_hint(),
        }
    }
}

/// The request's declared `Content-Length`, if it has a valid one.
#[must_use]
pub(crate) fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
