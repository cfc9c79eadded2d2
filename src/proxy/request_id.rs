//! Request ids for tower-http's request-id layers, made by the worker without a syscall.

use std::sync::Arc;

use http::Request;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::proxy::worker::Worker;

/// Makes ids from the worker's sequence (see [`Worker::next_request_id`]).
#[derive(Debug, Clone)]
pub struct MakeId(Arc<Worker>);

impl MakeId {
    /// Ids from `worker`.
    #[must_use]
    pub fn new(worker: Arc<Worker>) -> Self {
        Self(worker)
    }
}

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(self.0.next_request_id()))
    }
}
