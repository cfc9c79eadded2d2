//! The settleMethod drill on the wire: buffer (bounded) only the bodies it rewrites, and pass
//! everything it cannot rewrite through unmodified, with a warning and a metric.

use std::io::{Read as _, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderValue};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::config::SettleDrill;
use crate::metrics::Metrics;
use crate::response::{Body, BoxError, full};
use crate::settle;

/// Where reading a body up to the bound ended.
enum Buffered {
    /// The whole body.
    Complete(Bytes),
    /// The bound was passed: what was read, and the rest still streaming.
    Partial(Bytes, Incoming),
    /// The body broke: what was read, and the error.
    Failed(Bytes, hyper::Error),
}

async fn buffer(mut body: Incoming, max: usize) -> Buffered {
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

/// Rewrites `resultData/settleMethod` in an upstream response (E04/F04).
pub async fn response(
    resp: Response<Incoming>,
    drill: &SettleDrill,
    metrics: &Metrics,
    route: &str,
) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let gzip = match content_encoding(&parts.headers) {
        Encoding::Identity => false,
        Encoding::Gzip => true,
        Encoding::Other => {
            record(metrics, route, "unsupported_encoding");
            return Response::from_parts(parts, super::boxed(body));
        }
    };
    if declared_length(&parts.headers).is_some_and(|n| n > drill.max_body) {
        record(metrics, route, "oversize");
        return Response::from_parts(parts, super::boxed(body));
    }
    let raw = match buffer(body, drill.max_body).await {
        Buffered::Complete(raw) => raw,
        Buffered::Partial(read, rest) => {
            record(metrics, route, "oversize");
            return Response::from_parts(parts, Prefixed::new(read, rest).boxed());
        }
        Buffered::Failed(read, err) => {
            // The client sees the same broken body it would have seen without the drill.
            return Response::from_parts(parts, failed_body(read, err));
        }
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
        Ok(xml) => match settle::rewrite_xml(&xml, &drill.value) {
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
    Response::from_parts(parts, full(body))
}

/// Rewrites `settle_method` in a payment-result notification before it is relayed.
pub async fn request(
    req: Request<Incoming>,
    drill: &SettleDrill,
    metrics: &Metrics,
    route: &str,
) -> Request<Body> {
    let (mut parts, body) = req.into_parts();
    if declared_length(&parts.headers).is_some_and(|n| n > drill.max_body) {
        record(metrics, route, "oversize");
        return Request::from_parts(parts, super::boxed(body));
    }
    let raw = match buffer(body, drill.max_body).await {
        Buffered::Complete(raw) => raw,
        Buffered::Partial(read, rest) => {
            record(metrics, route, "oversize");
            return Request::from_parts(parts, Prefixed::new(read, rest).boxed());
        }
        Buffered::Failed(read, err) => return Request::from_parts(parts, failed_body(read, err)),
    };
    let body = match settle::rewrite_form(&raw, &drill.value) {
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
    Request::from_parts(parts, full(body))
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

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
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

fn failed_body(read: Bytes, err: hyper::Error) -> Body {
    Failing {
        data: Some(read),
        err: Some(err),
    }
    .boxed()
}

/// Bytes already read, then the error that broke the body.
struct Failing {
    data: Option<Bytes>,
    err: Option<hyper::Error>,
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
        Poll::Ready(self.err.take().map(|e| Err(e.into())))
    }
}

/// Bytes already read, then the rest of the body as it streams.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: Incoming,
}

impl Prefixed {
    fn new(prefix: Bytes, rest: Incoming) -> Self {
        Self {
            prefix: Some(prefix),
            rest,
        }
    }
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx).map_err(Into::into)
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
