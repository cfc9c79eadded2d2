//! One journalled request, as stored and as exchanged between replicas for a fleet report.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What one request on a journalled route did. Identifiers and outcomes only: no body, no
/// query string, no header value but the request id (see [`super::fields`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// When it arrived, by the real clock.
    pub(crate) real_time: DateTime<Utc>,
    /// When it arrived, by the shim's (drill) clock: what windows are decided on.
    pub(crate) drill_time: DateTime<Utc>,
    /// The replica that served it (its `Via` pseudonym).
    pub(crate) replica: String,
    /// `X-Request-Id` (the client's, else the shim's).
    pub(crate) request_id: String,
    /// Route id.
    pub(crate) route: String,
    /// The route's service.
    pub(crate) service: String,
    /// The route's kind: `api`, `page`, `token_js` or `notification`.
    pub(crate) kind: String,
    /// Request method.
    pub(crate) method: String,
    /// `function_div` of the form body, if any.
    pub(crate) function_div: Option<String>,
    /// `trader_code` of the form body, if any.
    pub(crate) trader_code: Option<String>,
    /// `order_no` of the form body, if any.
    pub(crate) order_no: Option<String>,
    /// The decision: `pass`, `maintenance`, `drill-maintenance`, `would-maintain`,
    /// `bypass`, `drill-pass`.
    pub(crate) decision: String,
    /// The window or drill that was in force for the route's service, if any.
    pub(crate) window: Option<String>,
    /// Why forwarding failed, if it did (`upstream-timeout`, …; `client-gone` for 499).
    pub(crate) error: Option<String>,
    /// Status the client got (499 when it left before the answer).
    pub(crate) status: u16,
    /// The upstream answer's `returnCode`, for XML answers.
    pub(crate) return_code: Option<String>,
    /// The upstream answer's `errorCode`, for XML answers.
    pub(crate) error_code: Option<String>,
    /// From arrival to the answer's head, in microseconds.
    pub(crate) latency_us: u64,
    /// Whether the request reached an upstream.
    pub(crate) reached: bool,
}

impl Record {
    /// Identifies the request across replicas and repeated answers: a fleet report counts
    /// each key once.
    #[must_use]
    pub(crate) fn key(&self) -> (&str, &str, DateTime<Utc>) {
        (&self.replica, &self.request_id, self.real_time)
    }

    /// A successful exchange with the gateway: it reached the upstream and got a 2xx, and
    /// for an XML API answer `returnCode` 0.
    #[must_use]
    pub(crate) fn succeeded(&self) -> bool {
        self.reached
            && (200..300).contains(&self.status)
            && match self.kind.as_str() {
                "api" => self.return_code.as_deref() == Some("0"),
                _ => self.return_code.as_deref().is_none_or(|c| c == "0"),
            }
    }
}
