//! The last step: rewrite the request head for the upstream (marked with this process's
//! `Via`, see [`crate::decide::via`]) and send it on this worker's pool. Bodies stream both ways;
//! nothing is buffered; a request that reached the wire is never sent again.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue, OccupiedEntry};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri, Version};

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Kind, NonCanonicalPaths};

use super::Forwarding;
use super::body::{ProxyBody, UpstreamBody};
use super::conn::Conn;
use super::pool::ConnectError;
use super::rescue::ProxyError;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// How many connections a request may be offered to when each one turns out closed before
/// a byte of the request was written. Past that, the upstream is treated as broken.
const UNSENT_ATTEMPTS: usize = 3;

/// Sends requests upstream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Forward;

type BoxResponse = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

impl tower::Service<Forwarding> for Forward {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = BoxResponse;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, fwd: Forwarding) -> BoxResponse {
        Box::pin(forward(fwd))
    }
}

async fn forward(mut fwd: Forwarding) -> Result<Response<ProxyBody>, ProxyError> {
    read_form(&mut fwd).await?;
    head(&mut fwd)?;
    let upstream = fwd.upstream();
    let Forwarding {
        mut req,
        view,
        conn,
        ..
    } = fwd;
    let pool = &view.pools[upstream];
    let target = pool.target();
    let sent = Instant::now();
    let timeout = target.config.response_timeout;
    let client = conn.upstream.clone();
    let connect_timeout = target.config.connect_timeout;
    let exchange = async {
        let mut attempt = 1;
        loop {
            let permit = client_permit(&client, connect_timeout).await?;
            let conn = pool.acquire().await.map_err(|err| match err {
                ConnectError::Busy(_, waited) => ProxyError::Busy(waited),
                err => ProxyError::Connect(err),
            })?;
            match conn.send(pool.clone(), req, permit).await {
                Ok(response) => return Ok(response),
                Err(mut err) => match err.take_message() {
                    // Not a byte was written: another connection may carry it.
                    Some(unsent) if attempt < UNSENT_ATTEMPTS => {
                        req = unsent;
                        attempt += 1;
                    }
                    _ => return Err(ProxyError::Upstream(err.into_error())),
                },
            }
        }
    };
    let mut response = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return Err(ProxyError::Timeout(timeout)),
        Ok(result) => result?,
    };
    view.loaded.latency[upstream].observe(sent.elapsed().as_secs_f64());
    strip_hop_by_hop(response.headers_mut());
    Ok(response.map(ProxyBody::Upstream))
}

/// The request the upstream gets for `fwd`: a form body read whole first (see below), the
/// head rewritten for the upstream and marked with this process's `Via`. `explain` shows
/// what this makes.
///
/// # Errors
/// The body read whole failed (400, 408, 413, 499), or the target cannot be forwarded.
pub(crate) async fn outbound(mut fwd: Forwarding) -> Result<Request<UpstreamBody>, ProxyError> {
    read_form(&mut fwd).await?;
    head(&mut fwd)?;
    Ok(fwd.req)
}

/// Reads a form body whole, in place, before an upstream connection is taken: forms are a
/// few KB, and a client that drips its body then holds no connection (it would hold one
/// for as long as it likes). The whole body within `body_read_timeout`. Any other body is
/// left to stream. (A future of its own, borrowing the request, so that the forward's
/// future, moved whole into its box, does not carry this one's state as well.)
///
/// # Errors
/// The body read whole failed (400, 408, 413, 499).
async fn read_form(fwd: &mut Forwarding) -> Result<(), ProxyError> {
    let config = &fwd.view.loaded.snapshot.config;
    if reads_whole(config.routes[fwd.route].kind)
        && matches!(
            fwd.req.body(),
            UpstreamBody::Stream { .. } | UpstreamBody::Tapped { .. }
        )
        && !http_body::Body::is_end_stream(fwd.req.body())
    {
        let within = config.server.body_read_timeout;
        let body = std::mem::replace(fwd.req.body_mut(), UpstreamBody::full(Bytes::new()));
        *fwd.req.body_mut() = UpstreamBody::full(read_whole(body, within).await?);
    }
    Ok(())
}

/// Rewrites `fwd`'s request head, in place, for the upstream (its body already read whole
/// if it is a form), and marks it with this process's `Via`.
///
/// # Errors
/// The target cannot be forwarded.
fn head(fwd: &mut Forwarding) -> Result<(), ProxyError> {
    let config = &fwd.view.loaded.snapshot.config;
    let target = fwd.view.pools[fwd.upstream()].target();
    // As received from the client: `prepare` sets the upstream's.
    let version = fwd.req.version();
    // A path the decision found canonical as it is needs no second look.
    let make_canonical =
        config.server.non_canonical_paths == NonCanonicalPaths::ForwardCanonical && !fwd.canonical;
    prepare(&mut fwd.req, &target.host, &fwd.conn, make_canonical)?;
    fwd.view.shared.via.append(fwd.req.headers_mut(), version);
    Ok(())
}

/// Whether requests on a route of `kind` have their body read whole before they are sent:
/// the API's and the notifications' forms, of a few KB (see [`outbound`]). That read is
/// bounded in time as a whole, so the body needs no bound between frames as well.
#[must_use]
pub(crate) fn reads_whole(kind: Kind) -> bool {
    matches!(kind, Kind::Api | Kind::Notification)
}

/// One of the client connection's `server.max_upstream_per_client` upstream exchanges:
/// at once when one is free, else when one frees up within `wait`.
///
/// # Errors
/// None freed up in time: 503, as when the upstream's own connections are all busy.
async fn client_permit(
    client: &Arc<Semaphore>,
    wait: std::time::Duration,
) -> Result<OwnedSemaphorePermit, ProxyError> {
    if let Ok(permit) = client.clone().try_acquire_owned() {
        return Ok(permit);
    }
    match tokio::time::timeout(wait, client.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        // The semaphore is never closed; a closed one would be as good as busy.
        Ok(Err(_)) | Err(_) => Err(ProxyError::Busy(wait)),
    }
}

/// Reads a request body whole, within `within`.
///
/// # Errors
/// It broke, passed `server.max_request_body`, or did not end in time (408).
async fn read_whole(body: UpstreamBody, within: std::time::Duration) -> Result<Bytes, ProxyError> {
    match tokio::time::timeout(within, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) => Err(ProxyError::Failed(super::rescue::body_failure(&*err))),
        Err(_) => Err(ProxyError::Failed(super::rescue::Failure::BodyTimeout)),
    }
}

/// Turns the client's request head into the upstream's: origin-form target (the canonical
/// path when `make_canonical`, path parameters kept), HTTP/1.1, no hop-by-hop fields, `Host` of
/// the upstream, `X-Forwarded-*`. (The caller adds `Via`.)
fn prepare(
    req: &mut Request<UpstreamBody>,
    host: &HeaderValue,
    conn: &Conn,
    make_canonical: bool,
) -> Result<(), ProxyError> {
    let original_host = req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let mut path_and_query = req
        .uri()
        .path_and_query()
        .cloned()
        .ok_or(ProxyError::BadRequest)?;
    if make_canonical
        && let Ok(c) = crate::decide::path::canonicalize(path_and_query.path())
        && c.with_params != path_and_query.path()
    {
        let rebuilt = match path_and_query.query() {
            Some(query) => format!("{}?{query}", c.with_params),
            None => c.with_params.into_owned(),
        };
        path_and_query = PathAndQuery::try_from(rebuilt).map_err(|_| ProxyError::BadRequest)?;
    }
    *req.uri_mut() = Uri::from(path_and_query);
    // The upstream connection's version is the pool's business, not the client's.
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    headers.insert(header::HOST, host.clone());
    append_forwarded_for(headers, &conn.forwarded_for);
    headers.insert(X_FORWARDED_PROTO, conn.proto.clone());
    if let Some(host) = original_host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    Ok(())
}

/// RFC 9110 §7.6.1 connection-specific fields, plus the legacy ones proxies still see and
/// `Upgrade` (WebSockets are not part of the gateway's protocol). They describe one hop
/// and are not forwarded, in either direction.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// The index in [`HOP_BY_HOP`] of a lowercase field name. A match on the text compiles to
/// a length switch and a few compares; comparing the `HeaderName` with each of the array's
/// costs about 850 more instructions per pass-through (callgrind).
fn hop_by_hop(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "te" => 1,
        "trailer" => 2,
        "transfer-encoding" => 3,
        "upgrade" => 4,
        "proxy-authenticate" => 5,
        "proxy-authorization" => 6,
        "keep-alive" => 7,
        "proxy-connection" => 8,
        _ => return None,
    })
}

/// Whether a `Connection` option needs no removal of its own: a hop-by-hop field (removed
/// anyway) or `close` (an option, not a field; the name is reserved in the field registry).
/// Options are case-insensitive; they are compared lowercased, on the stack.
fn removed_anyway(option: &str) -> bool {
    let mut lower = [0u8; 19];
    let Some(buf) = lower.get_mut(..option.len()) else {
        return false;
    };
    buf.copy_from_slice(option.as_bytes());
    buf.make_ascii_lowercase();
    matches!(std::str::from_utf8(buf), Ok(o) if o == "close" || hop_by_hop(o).is_some())
}

/// Removes hop-by-hop fields and every field named in `Connection`. One look at each field
/// name; most requests have none of them, and then nothing else is done. Nothing is
/// allocated, and the usual `Connection: keep-alive` of an upstream's response (this runs
/// on every pass-through) costs one lookup, which also removes it: the options that name
/// hop-by-hop fields need no removal of their own, and known names are removed by their
/// `HeaderName`, never parsed from a string.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop(name.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0
        && let Entry::Occupied(lines) = headers.entry(header::CONNECTION)
        && only_keep_alive(&lines)
    {
        // Read and removed with the one lookup.
        lines.remove();
        present &= !1;
    }
    if present & 1 != 0 {
        // The names each `Connection` line lists. A value is a handle on the parsed bytes
        // (no copy); the lines stay in place until every one has been read.
        let mut line = 0;
        while let Some(value) = headers
            .get_all(header::CONNECTION)
            .iter()
            .nth(line)
            .cloned()
        {
            line += 1;
            for option in value.to_str().unwrap_or_default().split(',') {
                let option = option.trim();
                if !option.is_empty() && !removed_anyway(option) {
                    headers.remove(option);
                }
            }
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// Whether the message's one `Connection` line is `keep-alive` or `close`, as an upstream's
/// answer almost always is: no other field to remove, and nothing to parse (about 450
/// instructions of each pass-through, callgrind).
fn only_keep_alive(lines: &OccupiedEntry<'_, HeaderValue>) -> bool {
    let mut lines = lines.iter();
    match (lines.next(), lines.next()) {
        (Some(line), None) => {
            let line = line.as_bytes();
            line.eq_ignore_ascii_case(b"keep-alive") || line.eq_ignore_ascii_case(b"close")
        }
        _ => false,
    }
}

/// Adds the peer to `X-Forwarded-For`, folding several lines into one list. One lookup
/// of the field, whether the request has it or not.
fn append_forwarded_for(headers: &mut HeaderMap, peer: &HeaderValue) {
    let mut lines = match headers.entry(X_FORWARDED_FOR) {
        Entry::Vacant(vacant) => {
            vacant.insert(peer.clone());
            return;
        }
        Entry::Occupied(lines) => lines,
    };
    let mut prior = lines
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .peekable();
    if prior.peek().is_none() {
        lines.insert(peer.clone());
        return;
    }
    let mut value = prior.collect::<Vec<_>>().join(", ");
    value.push_str(", ");
    value.push_str(peer.to_str().unwrap_or("unknown"));
    if let Ok(value) = HeaderValue::from_str(&value) {
        lines.insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_fields_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn every_connection_line_counts_even_one_naming_connection() {
        let mut h = HeaderMap::new();
        h.append(
            header::CONNECTION,
            HeaderValue::from_static("Connection, x-first"),
        );
        h.append(
            header::CONNECTION,
            HeaderValue::from_static(" , x-second ,"),
        );
        h.append(
            header::CONNECTION,
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        for name in ["x-first", "x-second", "x-kept"] {
            h.insert(name, HeaderValue::from_static("1"));
        }
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn connection_options_are_case_insensitive_and_close_names_no_field() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Close, Keep-Alive, X-Upper"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-upper", HeaderValue::from_static("1"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn a_lone_keep_alive_or_close_line_goes_with_its_keep_alive_field() {
        for line in ["keep-alive", "Keep-Alive", "close"] {
            let mut h = HeaderMap::new();
            h.insert(header::CONNECTION, HeaderValue::from_static(line));
            h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            h.insert("x-kept", HeaderValue::from_static("1"));
            strip_hop_by_hop(&mut h);
            assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"], "{line}");
        }
        // Two lines, or another option, take the general way.
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn forwarded_for_appends_and_folds() {
        let peer = HeaderValue::from_static("127.0.0.1");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &peer);
        assert_eq!(h.get(X_FORWARDED_FOR).unwrap(), "127.0.0.1");
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.1"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.2"));
        append_forwarded_for(&mut h, &peer);
        assert_eq!(
            h.get_all(X_FORWARDED_FOR).iter().collect::<Vec<_>>(),
            ["192.0.2.1, 198.51.100.2, 127.0.0.1"]
        );
    }
}
