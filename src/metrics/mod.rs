//! Prometheus metrics. Label values come from fixed sets (decision, status class, result) or
//! from ids written in the config (route, window, upstream): never from request data.

pub(crate) mod traffic;

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Content type of [`Metrics::encode`]'s output.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What happened to a request, for the `decision` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Decision {
    /// Forwarded (no window, passthrough route, HEAD).
    Pass,
    /// Answered with the maintenance response.
    Maintenance,
    /// Report mode: forwarded, would have been answered with maintenance.
    Report,
    /// Forwarded because of `bypass_cidrs` or the drill header's `pass`.
    Bypass,
    /// No route: 404.
    NotFound,
    /// Forwarding failed: 502/504.
    UpstreamError,
    /// The request came back around (its `Via` carries this shim's mark): 508.
    Loop,
    /// Refused by the shim as malformed or too large (400/413).
    BadRequest,
}

impl Decision {
    /// How many values there are.
    pub(crate) const COUNT: usize = 8;

    /// Every value, in `as usize` order.
    pub(crate) const ALL: [Self; Self::COUNT] = [
        Self::Pass,
        Self::Maintenance,
        Self::Report,
        Self::Bypass,
        Self::NotFound,
        Self::UpstreamError,
        Self::Loop,
        Self::BadRequest,
    ];

    /// The `decision` label value.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Maintenance => "maintenance",
            Self::Report => "report",
            Self::Bypass => "bypass",
            Self::NotFound => "not_found",
            Self::UpstreamError => "upstream_error",
            Self::Loop => "loop",
            Self::BadRequest => "bad_request",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    decision: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WouldMaintainLabels {
    route: String,
    window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RewriteLabels {
    route: String,
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~52 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

const DECISIONS: usize = Decision::COUNT;

/// Request counters of one config, resolved lazily per (route, decision, status class).
#[derive(Debug)]
pub(crate) struct RequestCounters {
    slots: Vec<std::sync::OnceLock<Counter>>,
}

impl RequestCounters {
    /// Slots for `routes` routes plus "no route".
    #[must_use]
    pub(crate) fn new(routes: usize) -> Self {
        Self {
            slots: (0..(routes + 1) * DECISIONS * 5)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        }
    }
}

/// Every metric the shim exports, registered once.
pub(crate) struct Metrics {
    /// Per-route counts for the admin console (not exported to Prometheus).
    pub(crate) traffic: crate::metrics::traffic::Board,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_latency: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    would_maintain: Family<WouldMaintainLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    rewrites: Family<RewriteLabels, Counter>,
    active_windows: Gauge,
    drills_open: Gauge,
    config_version: Gauge,
    /// Journal records lost because the journal's queue was full or a write failed.
    pub(crate) journal_dropped: Counter,
    /// Journal records written.
    pub(crate) journal_records: Counter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `webcollect_shim` prefix.
    #[must_use]
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("webcollect_shim");
        let m = Self {
            requests: Family::default(),
            upstream_latency: Family::new_with_constructor(latency_histogram),
            would_maintain: Family::default(),
            reloads: Family::default(),
            rewrites: Family::default(),
            active_windows: Gauge::default(),
            drills_open: Gauge::default(),
            config_version: Gauge::default(),
            journal_dropped: Counter::default(),
            journal_records: Counter::default(),
            traffic: crate::metrics::traffic::Board::new(),
            registry: Registry::default(),
        };
        // One line a metric, in the order `/metrics` lists them: `field => name, help`. The
        // registry adds the prefix, and `_total` to a counter's name.
        macro_rules! register {
            ($($field:ident => $name:literal, $help:literal;)*) => {
                $(registry.register($name, $help, m.$field.clone());)*
            };
        }
        register! {
            requests => "requests", "Requests by route id, decision and status class";
            upstream_latency => "upstream_response_seconds", "Time from forwarding a request to the upstream's response headers";
            would_maintain => "would_maintain", "Report mode: requests that would have been answered with maintenance";
            reloads => "config_reloads", "Config reloads by result";
            rewrites => "settle_method_rewrites", "settleMethod drill rewrites by route and result";
            active_windows => "active_windows", "Maintenance windows active now (by the shim's clock)";
            drills_open => "drills_open", "Ad-hoc drills not yet expired";
            config_version => "config_version", "Version of the config in use";
            journal_dropped => "journal_dropped", "Drill journal records lost (queue full or write failed); reports say they are incomplete";
            journal_records => "journal_records", "Drill journal records written";
        }
        Self { registry, ..m }
    }

    /// Counts one request. `cache` belongs to the config in use; after the first request of
    /// a kind, counting neither allocates nor takes the family's lock.
    pub(crate) fn request(
        &self,
        cache: &RequestCounters,
        route: Option<(usize, &str)>,
        decision: Decision,
        status: u16,
    ) {
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        let slot = (route.map_or(0, |(i, _)| i + 1) * DECISIONS + decision as usize) * 5 + class;
        let create = || {
            self.requests
                .get_or_create(&RequestLabels {
                    route: route.map_or("-", |(_, id)| id).to_owned(),
                    decision: decision.as_str(),
                    status: ["1xx", "2xx", "3xx", "4xx", "5xx"][class],
                })
                .clone()
        };
        match cache.slots.get(slot) {
            Some(counter) => counter.get_or_init(create).inc(),
            None => create().inc(),
        };
    }

    /// The latency histogram of each upstream, created up front for a config.
    #[must_use]
    pub(crate) fn upstream_histograms<'a>(
        &self,
        upstreams: impl Iterator<Item = &'a str>,
    ) -> Vec<Histogram> {
        upstreams
            .map(|name| {
                self.upstream_latency
                    .get_or_create(&UpstreamLabels {
                        upstream: name.to_owned(),
                    })
                    .clone()
            })
            .collect()
    }

    /// Counts a report-mode request that would have been short-circuited.
    pub(crate) fn would_maintain(&self, route: &str, window: &str) {
        self.would_maintain
            .get_or_create(&WouldMaintainLabels {
                route: route.to_owned(),
                window: window.to_owned(),
            })
            .inc();
    }

    /// Counts a reload attempt.
    pub(crate) fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Counts a settleMethod rewrite attempt (`result`: fixed set chosen by the caller).
    pub(crate) fn rewrite(&self, route: &str, result: &'static str) {
        self.rewrites
            .get_or_create(&RewriteLabels {
                route: route.to_owned(),
                result,
            })
            .inc();
    }

    /// Sets the gauges that describe the current state.
    pub(crate) fn set_state(&self, active_windows: usize, drills_open: usize, version: u64) {
        self.active_windows
            .set(i64::try_from(active_windows).unwrap_or(i64::MAX));
        self.drills_open
            .set(i64::try_from(drills_open).unwrap_or(i64::MAX));
        self.config_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// Prometheus text exposition.
    #[must_use]
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric's name, help and type, in order: dashboards, `docs/admin.md` and the
    /// tests that read `/metrics` rely on them.
    #[test]
    fn every_metric_is_named_described_and_typed_as_documented() {
        let m = Metrics::new();
        // A family shows only once it has a member.
        m.request(
            &RequestCounters::new(1),
            Some((0, "r")),
            Decision::Pass,
            200,
        );
        let _ = m.upstream_histograms(["u"].into_iter());
        m.would_maintain("r", "w");
        m.reload(true);
        m.rewrite("r", "ok");
        let text = m.encode();
        let described: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
        assert_eq!(described, EXPECTED.lines().collect::<Vec<_>>());
    }

    const EXPECTED: &str = "\
# HELP webcollect_shim_requests_total Requests by route id, decision and status class.
# TYPE webcollect_shim_requests_total counter
# HELP webcollect_shim_upstream_response_seconds Time from forwarding a request to the upstream's response headers.
# TYPE webcollect_shim_upstream_response_seconds histogram
# HELP webcollect_shim_would_maintain_total Report mode: requests that would have been answered with maintenance.
# TYPE webcollect_shim_would_maintain_total counter
# HELP webcollect_shim_config_reloads_total Config reloads by result.
# TYPE webcollect_shim_config_reloads_total counter
# HELP webcollect_shim_settle_method_rewrites_total settleMethod drill rewrites by route and result.
# TYPE webcollect_shim_settle_method_rewrites_total counter
# HELP webcollect_shim_active_windows Maintenance windows active now (by the shim's clock).
# TYPE webcollect_shim_active_windows gauge
# HELP webcollect_shim_drills_open Ad-hoc drills not yet expired.
# TYPE webcollect_shim_drills_open gauge
# HELP webcollect_shim_config_version Version of the config in use.
# TYPE webcollect_shim_config_version gauge
# HELP webcollect_shim_journal_dropped_total Drill journal records lost (queue full or write failed); reports say they are incomplete.
# TYPE webcollect_shim_journal_dropped_total counter
# HELP webcollect_shim_journal_records_total Drill journal records written.
# TYPE webcollect_shim_journal_records_total counter";
}
