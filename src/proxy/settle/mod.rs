//! The settleMethod drill on the wire, as a layer: for the exchanges the decision picked,
//! buffer (bounded) the body it rewrites and pass everything it cannot rewrite through
//! unmodified, with a warning and a metric. Every other exchange passes straight through.

pub mod rewrite;

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderValue};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use tower::Service;

use super::Forwarding;
use super::body::{ProxyBody, UpstreamBody, declared_length};
use super::rescue::{Failure, ProxyError, body_failure};
use crate::config::SettleDrill;
use crate::decide::Rewrite;
use crate::metrics::Metrics;
use crate::response::BoxError;

/// Applies the settleMethod rewrite the decision chose ([`Forwarding::rewrite`]).
#[derive(Debug, Clone)]
pub(crate) struct Settle<S>(pub S);

type BoxResponse = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

impl<S> Service<Forwarding> for Settle<S>
where
    S: Service<Forwarding, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut fwd: Forwarding) -> Self::Future {
        if fwd.rewrite == Rewrite::None {
            return ResponseFuture::Pass {
                future: self.0.call(fwd),
            };
        }
        // The inner services are always ready (their poll_ready never waits), so a clone
        // can be called later from the boxed future.
        let mut inner = self.0.clone();
        // Failures are returned, not answered: rescue, above, answers them all.
        let future: BoxResponse = Box::pin(async move {
            let view = fwd.view.clone();
            let config = &view.loaded.snapshot.config;
            let route = config.routes[fwd.route].id.as_str();
            let drill = &config.settle_drill;
            let metrics = &view.shared.metrics;
            match fwd.rewrite {
                Rewrite::Request => {
                    // The body is bounded already (the limit step); the whole notification
                    // within body_read_timeout: 408 otherwise. Nothing was sent on a
                    // failure: a broken or oversized notification is never relayed in part.
                    let (parts, body) = fwd.req.into_parts();
                    let within = config.server.body_read_timeout;
                    fwd.req = request(parts, body, drill, within, metrics, route)
                        .await
                        .map_err(ProxyError::Failed)?;
                    inner.call(fwd).await
                }
                Rewrite::Response | Rewrite::None => {
                    // Ask for a body the rewrite can read; gzip is still handled if sent.
                    fwd.req
                        .headers_mut()
                        .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
                    let within = view.pools[fwd.upstream()].target().config.response_timeout;
                    let (parts, body) = inner.call(fwd).await?.into_parts();
                    response(parts, body, drill, within, metrics, route)
                        .await
                        .map_err(ProxyError::Failed)
                }
            }
        });
        ResponseFuture::Rewrite { future }
    }
}

pin_project! {
    /// Response future of [`Settle`].
    #[project = Proj]
    pub(crate) enum ResponseFuture<F> {
        /// No rewrite: the inner future as it is.
        Pass { #[pin] future: F },
        /// A rewrite around the exchange.
        Rewrite { future: BoxResponse },
    }
}

opaque_debug!(ResponseFuture);

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
{
    type Output = Result<Response<ProxyBody>, ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Proj::Pass { future } => future.poll(cx),
            Proj::Rewrite { future } => future.as_mut().poll(cx),
        }
    }
}

/// Where reading a body up to the bound ended.
enum Buffered<B> {
    /// The whole body.
    Complete(Bytes),
    /// The bound was passed: what was read, and the rest still streaming.
    Partial(Bytes, B),
    /// The body broke: what was read, and the error.
    Failed(Bytes, BoxError),
    /// It did not end within the time allowed (a sender dripping bytes beats a timeout
    /// between frames, not this one).
    TimedOut,
}

async fn buffer<B>(body: B, max: usize, within: Duration) -> Buffered<B>
where
    B: HttpBody<Data = Bytes, Error = BoxError> + Unpin,
{
    tokio::time::timeout(within, read_up_to(body, max))
        .await
        .unwrap_or(Buffered::TimedOut)
}

async fn read_up_to<B>(mut body: B, max: usize) -> Buffered<B>
where
    B: HttpBody<Data = Bytes, Error = BoxError> + Unpin,
{
    let mut buf = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Buffered::Complete(buf.freeze()),
            Some(Err(err)) => return Buffered::Failed(buf.freeze(), err),
            Some(Ok(frame)) => {
                // Trailers are not part of the gateway's protocol; only data is kept.
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if buf.len() > max {
                        return Buffered::Partial(buf.freeze(), body);
                    }
                }
            }
        }
    }
}

/// Rewrites `resultData/settleMethod` in an upstream response (E04/F04), whose body must
/// arrive within `within` (the upstream's `response_timeout`).
///
/// # Errors
/// The body did not arrive in time: the client gets 504, as for a head that did not.
async fn response(
    mut parts: http::response::Parts,
    body: ProxyBody,
    drill: &SettleDrill,
    within: Duration,
    metrics: &Metrics,
    route: &str,
) -> Result<Response<ProxyBody>, Failure> {
    let gzip = match content_encoding(&parts.headers) {
        Encoding::Identity => false,
        Encoding::Gzip => true,
        Encoding::Other => {
            record(metrics, route, "unsupported_encoding");
            return Ok(Response::from_parts(parts, body));
        }
    };
    if declared_length(&parts.headers).is_some_and(|n| n > drill.max_body as u64) {
        record(metrics, route, "oversize");
        return Ok(Response::from_parts(parts, body));
    }
    let raw = match buffer(body, drill.max_body, within).await {
        Buffered::Complete(raw) => raw,
        Buffered::Partial(read, rest) => {
            record(metrics, route, "oversize");
            return Ok(Response::from_parts(
                parts,
                ProxyBody::Boxed(Prefixed::new(read, rest).boxed()),
            ));
        }
        Buffered::Failed(read, err) => {
            // The client sees the same broken body it would have seen without the drill.
            return Ok(Response::from_parts(
                parts,
                ProxyBody::Boxed(failed_body(read, err)),
            ));
        }
        Buffered::TimedOut => return Err(Failure::Timeout),
    };
    let xml = if gzip {
        gunzip(&raw, drill.max_body)
    } else {
        Ok(raw.to_vec())
    };
    let rewritten = match xml {
        Err(result) => {
            record(metrics, route, result);
            None
        }
        Ok(xml) => match rewrite::rewrite_xml(&xml, &drill.value) {
            Ok(Some(out)) => {
                record(metrics, route, "rewritten");
                Some(if gzip { gzip_bytes(&out) } else { out })
            }
            Ok(None) => {
                record(metrics, route, "unchanged");
                None
            }
            Err(err) => {
                tracing::warn!(route, error = %err, "settleMethod drill: body is not well-formed XML; passed through unmodified.");
                record(metrics, route, "malformed");
                None
            }
        },
    };
    let body = rewritten.map_or(raw, Bytes::from);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Ok(Response::from_parts(parts, ProxyBody::full(body)))
}

/// Rewrites `settle_method` in a payment-result notification before it is relayed.
///
/// # Errors
/// The client's body failed while it was read (too large, stalled, malformed).
async fn request(
    mut parts: http::request::Parts,
    body: UpstreamBody,
    drill: &SettleDrill,
    within: Duration,
    metrics: &Metrics,
    route: &str,
) -> Result<Request<UpstreamBody>, Failure> {
    if declared_length(&parts.headers).is_some_and(|n| n > drill.max_body as u64) {
        record(metrics, route, "oversize");
        return Ok(Request::from_parts(parts, body));
    }
    let raw = match buffer(Box::pin(body), drill.max_body, within).await {
        Buffered::Complete(raw) => raw,
        Buffered::Partial(read, rest) => {
            record(metrics, route, "oversize");
            let rest = Prefixed::new(read, rest).boxed_unsync();
            return Ok(Request::from_parts(
                parts,
                UpstreamBody::Boxed { body: rest },
            ));
        }
        Buffered::Failed(_, err) => return Err(body_failure(&*err)),
        Buffered::TimedOut => return Err(Failure::BodyTimeout),
    };
    let body = match rewrite::rewrite_form(&raw, &drill.value) {
        Some(out) => {
            record(metrics, route, "rewritten");
            Bytes::from(out)
        }
        None => {
            record(metrics, route, "unchanged");
            raw
        }
    };
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Ok(Request::from_parts(parts, UpstreamBody::full(body)))
}

fn record(metrics: &Metrics, route: &str, result: &'static str) {
    if result == "oversize" || result == "unsupported_encoding" || result == "bad_gzip" {
        tracing::warn!(
            route,
            result,
            "settleMethod drill: body passed through unmodified."
        );
    }
    metrics.rewrite(route, result);
}

enum Encoding {
    Identity,
    Gzip,
    Other,
}

fn content_encoding(headers: &HeaderMap) -> Encoding {
    match headers
        .get(CONTENT_ENCODING)
        .map(|v| v.as_bytes().trim_ascii().to_ascii_lowercase())
    {
        None => Encoding::Identity,
        Some(v) if v.is_empty() || v == b"identity" => Encoding::Identity,
        Some(v) if v == b"gzip" || v == b"x-gzip" => Encoding::Gzip,
        Some(_) => Encoding::Other,
    }
}

/// Decompresses at most `max` bytes (a gzip bomb is treated as oversize).
fn gunzip(raw: &[u8], max: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(raw)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| "bad_gzip")?;
    if out.len() > max {
        return Err("oversize");
    }
    Ok(out)
}

fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn failed_body(
    read: Bytes,
    err: BoxError,
) -> http_body_util::combinators::BoxBody<Bytes, BoxError> {
    Failing {
        data: Some(read),
        err: Some(err),
    }
    .boxed()
}

/// Bytes already read, then the error that broke the body.
struct Failing {
    data: Option<Bytes>,
    err: Option<BoxError>,
}

impl HttpBody for Failing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.err.take().map(Err))
    }
}

/// Bytes already read, then the rest of the body as it streams.
struct Prefixed<B> {
    prefix: Option<Bytes>,
    rest: B,
}

impl<B> Prefixed<B> {
    fn new(prefix: Bytes, rest: B) -> Self {
        Self {
            prefix: Some(prefix),
            rest,
        }
    }
}

impl<B> HttpBody for Prefixed<B>
where
    B: HttpBody<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.size_hint();
        if let Some(p) = &self.prefix {
            let n = p.len() as u64;
            hint.set_lower(hint.lower() + n);
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper + n);
            }
        }
        hint
    }
}
