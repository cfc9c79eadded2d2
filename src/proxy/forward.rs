//! Forwarding to an upstream: pooled keep-alive client (TLS via rustls), URI and header
//! rewriting, response timeout. Bodies stream both ways; nothing is buffered; nothing retried.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::rescue::ProxyError;
use crate::config::Upstream;
use crate::response::Body;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// RFC 9110 §7.6.1 connection-specific fields, plus the legacy ones proxies still see. They
/// describe one hop and must not be forwarded, in either direction.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// A pooled client for one upstream.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
    response_timeout: Duration,
}

impl Forwarder {
    /// Builds the client for `upstream`. No connection is opened until the first request.
    ///
    /// # Errors
    /// When the TLS configuration cannot be built.
    pub fn new(upstream: &Upstream) -> Result<Self, rustls::Error> {
        let client = client(
            upstream.connect_timeout,
            upstream.pool_idle_timeout,
            &upstream.ca_certs,
        )?;
        let authority = upstream
            .url
            .authority()
            .cloned()
            .unwrap_or_else(|| Authority::from_static("invalid"));
        Ok(Self {
            client,
            scheme: upstream.url.scheme().cloned().unwrap_or(Scheme::HTTP),
            host: HeaderValue::from_str(authority.as_str())
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            authority,
            response_timeout: upstream.response_timeout,
        })
    }

    /// Sends `req` upstream once and returns the response head with its body still streaming.
    ///
    /// # Errors
    /// Connect failure, timeout before response headers, or a broken exchange.
    pub async fn forward(
        &self,
        req: Request<Body>,
        peer: IpAddr,
    ) -> Result<Response<Incoming>, ProxyError> {
        let (mut parts, body) = req.into_parts();
        let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| ProxyError::BadRequest)?;
        // The upstream connection's version is the pool's business, not the client's.
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(header::HOST, self.host.clone());
        append_forwarded_for(&mut parts.headers, peer);
        parts
            .headers
            .insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        if let Some(host) = original_host {
            parts.headers.insert(X_FORWARDED_HOST, host);
        }
        let req = Request::from_parts(parts, body);
        let mut response =
            match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
                Err(_) => return Err(ProxyError::Timeout(self.response_timeout)),
                Ok(Err(err)) if err.is_connect() => return Err(ProxyError::Connect(err)),
                Ok(Err(err)) => return Err(ProxyError::Upstream(err)),
                Ok(Ok(response)) => response,
            };
        strip_hop_by_hop(response.headers_mut());
        Ok(response)
    }
}

/// A pooled HTTP/HTTPS client that never retries: rustls with the public web roots plus
/// `ca_certs`, HTTP/1.1 or HTTP/2 by ALPN.
///
/// # Errors
/// When the TLS configuration cannot be built.
pub fn client(
    connect_timeout: Duration,
    pool_idle_timeout: Duration,
    ca_certs: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<Client<HttpsConnector<HttpConnector>, Body>, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(ca_certs.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(pool_idle_timeout)
        // A payment request must never be sent twice: no retry, even on a pooled
        // connection the upstream closed before reading the request.
        .retry_canceled_requests(false)
        .set_host(false)
        .build(connector))
}

/// Removes hop-by-hop fields and every field named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    // `Upgrade` is hop-by-hop too; WebSockets are not part of the gateway's protocol.
    headers.remove(header::UPGRADE);
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    let peer = peer.to_canonical().to_string();
    let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {peer}"),
        _ => peer,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        // Several X-Forwarded-For lines are folded into one list.
        headers.insert(X_FORWARDED_FOR, value);
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
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.1"));
        append_forwarded_for(&mut h, "::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(h.get(X_FORWARDED_FOR).unwrap(), "192.0.2.1, 127.0.0.1");
    }
}
