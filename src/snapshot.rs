//! One loaded configuration compiled for the request path: router, per-route timelines and
//! pre-rendered bodies. Built once per (re)load, shared read-only by every request.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::response;
use crate::routes::Router;
use crate::schedule::Timeline;

/// A compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Path router.
    pub router: Router,
    /// Per route (same index as `config.routes`), its service's maintenance timeline.
    timelines: Vec<Arc<Timeline>>,
    /// Token library stand-ins: embedded, modal.
    token_js: [Bytes; 2],
    /// Increases by one on every successful load.
    pub version: u64,
    /// When it was loaded, by the shim's clock.
    pub loaded_at: DateTime<Utc>,
}

impl Snapshot {
    /// Compiles `config`. Routes sharing a service share one timeline.
    #[must_use]
    pub fn new(config: Config, version: u64, loaded_at: DateTime<Utc>) -> Self {
        let router = Router::new(&config.routes);
        let mut by_service: HashMap<&str, Arc<Timeline>> = HashMap::new();
        let timelines = config
            .routes
            .iter()
            .map(|r| {
                by_service
                    .entry(r.service.as_str())
                    .or_insert_with(|| Arc::new(Timeline::build(&config.windows, &r.service)))
                    .clone()
            })
            .collect();
        let token_js = [
            response::token_js_body(&config.maintenance, false),
            response::token_js_body(&config.maintenance, true),
        ];
        Self {
            config: Arc::new(config),
            router,
            timelines,
            token_js,
            version,
            loaded_at,
        }
    }

    /// The maintenance timeline of route `route`.
    #[must_use]
    pub fn timeline(&self, route: usize) -> &Timeline {
        &self.timelines[route]
    }

    /// The pre-rendered token library stand-in.
    #[must_use]
    pub fn token_js(&self, modal: bool) -> Bytes {
        self.token_js[usize::from(modal)].clone()
    }

    /// The earliest instant after `now` at which any route enters or leaves maintenance.
    #[must_use]
    pub fn next_transition(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.timelines
            .iter()
            .filter_map(|t| t.next_transition(now))
            .min()
    }
}
