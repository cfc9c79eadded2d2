//! Payment-result notifications sent the way the gateway sends them: a form-urlencoded POST,
//! accepted on 2xx/3xx, otherwise retried (15 s timeout per attempt, then up to 4 retries
//! 1 s apart). Used by `webcollect-shim notify` and the stand-in gateway.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::response::Body;

/// The fields of a payment-result notification, in the gateway's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `trader_code` (9 digits).
    pub trader_code: String,
    /// `order_no`.
    pub order_no: String,
    /// `settle_price`.
    pub settle_price: String,
    /// `settle_date`, `yyyyMMddHHmmss`.
    pub settle_date: String,
    /// `settle_result`: 1 ok, 2 error.
    pub settle_result: String,
    /// `settle_detail` (statusInfo codes).
    pub settle_detail: String,
    /// `settle_method` (決済手段; 14 is the value the 2020 notice adds).
    pub settle_method: String,
}

impl Notification {
    /// `application/x-www-form-urlencoded` body, fields in the gateway's order.
    #[must_use]
    pub fn to_form(&self) -> String {
        [
            ("trader_code", &self.trader_code),
            ("order_no", &self.order_no),
            ("settle_price", &self.settle_price),
            ("settle_date", &self.settle_date),
            ("settle_result", &self.settle_result),
            ("settle_detail", &self.settle_detail),
            ("settle_method", &self.settle_method),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// Percent-encodes a form value (space as `+`).
#[must_use]
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Retry policy; [`RetryPolicy::GATEWAY`] is what the gateway does.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Time allowed for one attempt (connect to end of response).
    timeout: Duration,
    /// Retries after the first attempt.
    retries: u32,
    /// Pause between attempts.
    interval: Duration,
}

impl RetryPolicy {
    /// 15 s per attempt, then up to 4 retries 1 s apart.
    pub const GATEWAY: Self = Self {
        timeout: Duration::from_secs(15),
        retries: 4,
        interval: Duration::from_secs(1),
    };
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The receiver answered with this status.
    Status(StatusCode),
    /// No answer: connection failure or timeout (the message says which).
    Failed(String),
}

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1-based.
    number: u32,
    /// What happened.
    outcome: Delivery,
    /// How long it took.
    elapsed: Duration,
}

impl Attempt {
    /// 2xx and 3xx count as processed, as for the gateway.
    #[must_use]
    pub fn accepted(&self) -> bool {
        matches!(&self.outcome, Delivery::Status(s) if s.is_success() || s.is_redirection())
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.accepted() {
            "accepted"
        } else {
            "not accepted"
        };
        match &self.outcome {
            Delivery::Status(s) => write!(
                f,
                "attempt {}: HTTP {} ({verdict}) in {:?}",
                self.number,
                s.as_u16(),
                self.elapsed
            ),
            Delivery::Failed(msg) => write!(
                f,
                "attempt {}: {msg} ({verdict}) in {:?}",
                self.number, self.elapsed
            ),
        }
    }
}

/// Why a notification could not be sent at all.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The URL is not http(s) with a host.
    #[error("invalid receiver URL {0:?}: expected http:// or https:// with a host")]
    Url(String),
    /// TLS client setup failed.
    #[error("cannot build TLS client configuration")]
    Tls(#[from] rustls::Error),
}

/// Sends `n` to `url` with `policy`, calling `report` after each attempt. Returns every
/// attempt; the last one is accepted if delivery succeeded.
///
/// # Errors
/// An unusable URL or TLS setup.
pub async fn send(
    url: &str,
    n: &Notification,
    policy: RetryPolicy,
    mut report: impl FnMut(&Attempt),
) -> Result<Vec<Attempt>, NotifyError> {
    let uri: Uri = url.parse().map_err(|_| NotifyError::Url(url.to_string()))?;
    let authority = match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(a)) => a.as_str().to_string(),
        _ => return Err(NotifyError::Url(url.to_string())),
    };
    let client = client(policy.timeout)?;
    let body = Bytes::from(n.to_form());
    let mut attempts = Vec::new();
    for number in 1..=policy.retries + 1 {
        if number > 1 {
            tokio::time::sleep(policy.interval).await;
        }
        let started = Instant::now();
        let mut req = Request::new(crate::response::full(body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri.clone();
        let headers = req.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Ok(host) = HeaderValue::from_str(&authority) {
            headers.insert(HOST, host);
        }
        let exchange = async {
            let res = client.request(req).await?;
            let status = res.status();
            // Read the answer so the attempt ends when the receiver is done.
            let _ = res.into_body().collect().await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        let outcome = match tokio::time::timeout(policy.timeout, exchange).await {
            Ok(Ok(status)) => Delivery::Status(status),
            Ok(Err(err)) => {
                Delivery::Failed(format!("request failed: {}", crate::error::Chain(&err)))
            }
            Err(_) => Delivery::Failed(format!("no answer within {:?}", policy.timeout)),
        };
        let attempt = Attempt {
            number,
            outcome,
            elapsed: started.elapsed(),
        };
        report(&attempt);
        let accepted = attempt.accepted();
        attempts.push(attempt);
        if accepted {
            break;
        }
    }
    Ok(attempts)
}

/// A client for notifications: rustls with the public web roots, HTTP/1.1 or HTTP/2 by
/// ALPN, and no retries of its own (the retry policy is [`RetryPolicy`]'s).
fn client(
    connect_timeout: Duration,
) -> Result<Client<HttpsConnector<HttpConnector>, Body>, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .retry_canceled_requests(false)
        .build(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_is_in_gateway_order_and_encoded() {
        let n = Notification {
            trader_code: "123456789".into(),
            order_no: "A 1&2".into(),
            settle_price: "1000".into(),
            settle_date: "20200420013000".into(),
            settle_result: "1".into(),
            settle_detail: "4".into(),
            settle_method: "14".into(),
        };
        assert_eq!(
            n.to_form(),
            "trader_code=123456789&order_no=A+1%262&settle_price=1000&settle_date=20200420013000&settle_result=1&settle_detail=4&settle_method=14"
        );
    }
}
