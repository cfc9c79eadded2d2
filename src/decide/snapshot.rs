//! One loaded configuration compiled for the request path: router, per-route timelines and
//! pre-rendered bodies. Built once per (re)load, shared read-only by every request.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use chrono::TimeDelta;

use crate::config::{Config, Kind};
use crate::decide::Maintain;
use crate::decide::router::Router;
use crate::response::{self, Canned};
use crate::schedule::Timeline;
use crate::schedule::Window;

/// A compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Path router.
    pub router: Router,
    /// Every window in force: one-off, recurring occurrences near `loaded_at`, ad-hoc drills.
    /// Decisions refer to windows by index into this list.
    pub windows: Vec<Window>,
    /// The ids of [`Snapshot::windows`], shared: the drill journal's records name the window
    /// without copying its id.
    pub(crate) window_ids: Box<[Arc<str>]>,
    /// Recurring windows were expanded up to here; recompile before the clock gets close.
    horizon: DateTime<Utc>,
    /// Per route (same index as `config.routes`), its service's maintenance timeline.
    timelines: Vec<Arc<Timeline>>,
    /// Windows during which `settle_method_drill.when = "in_windows"` applies.
    settle_timeline: Timeline,
    /// `settle_method_drill.paths`.
    /// Sorted, for a binary search: a few string compares cost less than SipHashing the
    /// path on every forwarded request (about 200 instructions, callgrind).
    trade_info_paths: Box<[String]>,
    /// When the drill journal records (`[report]`).
    recording: Recording,
    /// Token library stand-ins: embedded, modal.
    token_js: [Bytes; 2],
    /// Per window in [`Snapshot::windows`], then one for "no window": its maintenance page,
    /// rendered on first use and kept for the life of the snapshot.
    pages: Vec<OnceLock<Bytes>>,
    /// Increases by one on every successful load.
    pub(crate) version: u64,
    /// When it was loaded, by the shim's clock.
    pub(crate) loaded_at: DateTime<Utc>,
}

impl Snapshot {
    /// How far ahead recurring windows are expanded at each compilation.
    pub(crate) const HORIZON: TimeDelta = TimeDelta::days(400);

    /// Compiles `config` plus ad-hoc `drills` at `now`. Routes sharing a service share one
    /// timeline.
    #[must_use]
    pub fn new(config: Arc<Config>, drills: &[Window], version: u64, now: DateTime<Utc>) -> Self {
        let router = Router::new(&config.routes);
        let horizon = now + Self::HORIZON;
        let mut windows = config.windows.clone();
        for r in &config.recurring {
            windows.extend(r.occurrences(now - TimeDelta::days(1), horizon));
        }
        windows.extend(drills.iter().cloned());
        let mut by_service: HashMap<&str, Arc<Timeline>> = HashMap::new();
        let timelines = config
            .routes
            .iter()
            .map(|r| {
                by_service
                    .entry(r.service.as_str())
                    .or_insert_with(|| Arc::new(Timeline::build(&windows, &r.service)))
                    .clone()
            })
            .collect();
        let settle_ids = &config.settle_drill.windows;
        let settle_timeline = Timeline::build_with(&windows, |w| settle_ids.contains(&w.id));
        let mut trade_info_paths = config.settle_drill.paths.clone();
        trade_info_paths.sort_unstable();
        trade_info_paths.dedup();
        let trade_info_paths = trade_info_paths.into_boxed_slice();
        let m = &config.maintenance;
        let token_js = [
            response::token_js_body(&m.error_code, &m.token_message, false),
            response::token_js_body(&m.error_code, &m.token_message, true),
        ];
        let pages = (0..=windows.len()).map(|_| OnceLock::new()).collect();
        let recording = Recording::new(&config.report, &windows);
        let window_ids = windows.iter().map(|w| Arc::from(w.id.as_str())).collect();
        Self {
            recording,
            window_ids,
            config,
            router,
            pages,
            windows,
            horizon,
            timelines,
            settle_timeline,
            trade_info_paths,
            token_js,
            version,
            loaded_at: now,
        }
    }

    /// True when recurring windows must be re-expanded to stay correct past `now`.
    #[must_use]
    pub(crate) fn needs_recompile(&self, now: DateTime<Utc>) -> bool {
        !self.config.recurring.is_empty() && now + TimeDelta::days(30) > self.horizon
            || now < self.loaded_at - TimeDelta::days(1)
    }

    /// Windows active at `now` (indexes into [`Snapshot::windows`]).
    pub(crate) fn active_windows(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Window> {
        self.windows
            .iter()
            .filter(move |w| w.start <= now && now < w.end)
    }

    /// Whether the drill journal records at `now` (`[report]`): around every window,
    /// occurrence and drill, or always.
    #[must_use]
    pub(crate) fn recording_at(&self, now: DateTime<Utc>) -> bool {
        self.recording.at(now)
    }

    /// The maintenance timeline of route `route`.
    #[must_use]
    pub(crate) fn timeline(&self, route: usize) -> &Timeline {
        &self.timelines[route]
    }

    /// Windows of the settleMethod drill's `in_windows` mode.
    #[must_use]
    pub(crate) fn settle_timeline(&self) -> &Timeline {
        &self.settle_timeline
    }

    /// True when responses to `path` are candidates for the settleMethod rewrite.
    #[must_use]
    pub(crate) fn is_trade_info_path(&self, path: &str) -> bool {
        self.trade_info_paths
            .binary_search_by(|p| p.as_str().cmp(path))
            .is_ok()
    }

    /// The pre-rendered token library stand-in.
    #[must_use]
    pub(crate) fn token_js(&self, modal: bool) -> Bytes {
        self.token_js[usize::from(modal)].clone()
    }

    /// The maintenance page for `window` (index into [`Snapshot::windows`]).
    #[must_use]
    pub(crate) fn page_body(&self, window: Option<usize>) -> Bytes {
        let slot = window.unwrap_or(self.windows.len());
        self.pages[slot]
            .get_or_init(|| {
                let config = &self.config;
                response::page_body(
                    &config.maintenance.page,
                    &config.maintenance.contact,
                    config.clock.timezone,
                    window.map(|w| &self.windows[w]),
                )
            })
            .clone()
    }

    /// The answer for a request to `route` (raw `path`) in maintenance, by route kind
    /// (SPEC §4.1–4.3).
    #[must_use]
    pub(crate) fn maintenance_answer(
        &self,
        route: usize,
        maintain: Maintain,
        path: &str,
        now: DateTime<Utc>,
    ) -> Canned {
        let config = &self.config;
        match config.routes[route].kind {
            Kind::Page => response::page_answer(
                config.maintenance.page_status,
                self.page_body(maintain.window),
                maintain.until,
                now,
                config.clock.effective_speed(),
            ),
            Kind::TokenJs => {
                // The route was found on the canonical path; so is the modal library.
                let path = crate::decide::path::as_decided(path);
                response::token_js(self.token_js(path.ends_with("/tokenlib.js")))
            }
            Kind::Api | Kind::Passthrough | Kind::Notification => {
                let m = &config.maintenance;
                response::api_maintenance(&m.error_code, m.api_status, config.clock.timezone, now)
            }
        }
    }

    /// The earliest instant after `now` at which any route enters or leaves maintenance.
    #[must_use]
    pub(crate) fn next_transition(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.timelines
            .iter()
            .filter_map(|t| t.next_transition(now))
            .min()
    }
}

/// When the journal records: `[start - before, end + after)` of every window, merged.
#[derive(Debug)]
struct Recording {
    enabled: bool,
    always: bool,
    /// Sorted, disjoint.
    spans: Box<[(DateTime<Utc>, DateTime<Utc>)]>,
}

impl Recording {
    fn new(report: &crate::config::Reporting, windows: &[Window]) -> Self {
        let before = TimeDelta::from_std(report.before).unwrap_or(TimeDelta::MAX);
        let after = TimeDelta::from_std(report.after).unwrap_or(TimeDelta::MAX);
        let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = windows
            .iter()
            .map(|w| {
                (
                    w.start
                        .checked_sub_signed(before)
                        .unwrap_or(DateTime::<Utc>::MIN_UTC),
                    w.end
                        .checked_add_signed(after)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                )
            })
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Self {
            enabled: report.enabled,
            always: report.always,
            spans: merged.into_boxed_slice(),
        }
    }

    fn at(&self, now: DateTime<Utc>) -> bool {
        if !self.enabled {
            return false;
        }
        if self.always {
            return true;
        }
        let i = self.spans.partition_point(|s| s.1 <= now);
        self.spans.get(i).is_some_and(|s| s.0 <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_info_paths_are_found_in_any_order_and_only_they() {
        let text = r#"
[listen]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"

[upstreams.gw]
url = "http://127.0.0.1:9"

[[routes]]
id = "api"
path_prefix = "/"
kind = "api"
service = "webcollect.api"
upstream = "gw"

[settle_method_drill]
paths = ["/z/tradeInfo", "/b/tradeInfo", "/m/tradeInfo", "/b/tradeInfo", "/a/tradeInfo"]
"#;
        let config = Config::from_toml_with_env(std::path::Path::new("t.toml"), text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let now = DateTime::parse_from_rfc3339("2020-04-20T01:00:00+09:00")
            .unwrap()
            .to_utc();
        let snapshot = Snapshot::new(Arc::new(config), &[], 1, now);
        for path in [
            "/z/tradeInfo",
            "/b/tradeInfo",
            "/m/tradeInfo",
            "/a/tradeInfo",
        ] {
            assert!(snapshot.is_trade_info_path(path), "{path}");
        }
        for path in ["/c/tradeInfo", "/", "/z/tradeInfo/", "/api/tradeInfo"] {
            assert!(!snapshot.is_trade_info_path(path), "{path}");
        }
    }
}
