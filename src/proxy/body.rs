//! The two body types of the request path, as enums rather than boxes: the common cases
//! (a streamed body, a canned one) cost no allocation and no dynamic dispatch.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Limited;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;

use super::pool::PooledBody;
use crate::response::BoxError;

/// A response body on its way to the client.
#[derive(Debug)]
pub enum ProxyBody {
    /// A complete body made by the shim (`None` once sent).
    Full(Option<Bytes>),
    /// The upstream's body, streaming; its connection goes back to the pool at the end.
    Upstream(PooledBody),
    /// Anything else (rewrites that pass a partly read body on).
    Boxed(BoxBody<Bytes, BoxError>),
}

impl ProxyBody {
    /// A complete body.
    #[must_use]
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::Full((!bytes.is_empty()).then_some(bytes))
    }
}

/// A request body on its way to the upstream.
#[derive(Debug)]
pub enum UpstreamBody {
    /// The client's body, streaming, cut off at `server.max_request_body`.
    Stream(Limited<Incoming>),
    /// A complete body (a rewritten notification).
    Full(Option<Bytes>),
    /// Anything else (a notification read past the rewrite bound, passed on as it streams).
    Boxed(BoxBody<Bytes, BoxError>),
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
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.is_none(),
            Self::Upstream(body) => body.is_end_stream(),
            Self::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => full_hint(bytes.as_ref()),
            Self::Upstream(body) => body.size_hint(),
            Self::Boxed(body) => body.size_hint(),
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
        match self.get_mut() {
            Self::Stream(body) => Pin::new(body).poll_frame(cx),
            Self::Full(bytes) => full_frame(bytes),
            Self::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Stream(body) => body.is_end_stream(),
            Self::Full(bytes) => bytes.is_none(),
            Self::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Stream(body) => body.size_hint(),
            Self::Full(bytes) => full_hint(bytes.as_ref()),
            Self::Boxed(body) => body.size_hint(),
        }
    }
}
