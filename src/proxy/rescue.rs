//! Forwarding failures and the one place that turns them into answers (502/504/400).

use std::time::Duration;

use crate::response::{self, Canned};

/// Why a forward failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// TCP or TLS connection to the upstream failed.
    #[error("upstream unreachable")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// No response headers within `response_timeout`.
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The exchange broke after connecting (reset, malformed response).
    #[error("upstream exchange failed")]
    Upstream(#[source] hyper_util::client::legacy::Error),
    /// The request could not be turned into an upstream request.
    #[error("request cannot be forwarded")]
    BadRequest,
}

impl ProxyError {
    /// True when the request body passed `server.max_request_body` while streaming.
    #[must_use]
    pub fn body_too_large(&self) -> bool {
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            if err.is::<http_body_util::LengthLimitError>() {
                return true;
            }
            cause = err.source();
        }
        false
    }

    /// The answer the client gets.
    #[must_use]
    pub fn to_canned(&self) -> Canned {
        if self.body_too_large() {
            return response::payload_too_large();
        }
        match self {
            Self::Connect(_) => response::bad_gateway("upstream unreachable"),
            Self::Timeout(_) => response::gateway_timeout(),
            Self::Upstream(_) => {
                response::bad_gateway("upstream closed the connection without a valid response")
            }
            Self::BadRequest => response::bad_request("request target cannot be forwarded"),
        }
    }

    /// The underlying error's message (no request data in it), or `-`.
    #[must_use]
    pub fn cause(&self) -> String {
        let mut cause = std::error::Error::source(self);
        let mut out = String::new();
        while let Some(err) = cause {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&err.to_string());
            cause = err.source();
        }
        if out.is_empty() { "-".to_string() } else { out }
    }

    /// Short label for logs.
    #[must_use]
    pub fn label(&self) -> &'static str {
        if self.body_too_large() {
            return "request-body-too-large";
        }
        match self {
            Self::Connect(_) => "upstream-unreachable",
            Self::Timeout(_) => "upstream-timeout",
            Self::Upstream(_) => "upstream-error",
            Self::BadRequest => "bad-request",
        }
    }
}
