//! The answer to a panic below the catch-panic layer: `500` with
//! `X-Webcollect-Shim: internal-error`. The panic is logged; the worker and the client's
//! connection carry on.

use std::any::Any;

use http::Response;

use super::body::ProxyBody;
use super::into_response;
use crate::response;

/// tower-http's `ResponseForPanic` for the shim.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PanicAnswer;

impl tower_http::catch_panic::ResponseForPanic for PanicAnswer {
    type ResponseBody = ProxyBody;

    fn response_for_panic(&mut self, err: Box<dyn Any + Send + 'static>) -> Response<ProxyBody> {
        // Panic messages come from the shim's own code, never from request data.
        let message = err
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| err.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        tracing::error!(panic = message, "Request handler panicked; answered 500.");
        into_response(response::internal_error())
    }
}
