//! Serde mirror of the TOML file: what the user wrote, with spans, before any checking.
//!
//! Every struct denies unknown keys. Fields that are checked after parsing keep their
//! [`Spanned`] position so validation errors can point at `line:column`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A string as written, with its position.
pub(crate) type Str = Spanned<String>;

/// `[listen]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListen {
    pub(crate) proxy: Option<Str>,
    pub(crate) admin: Option<Str>,
    pub(crate) tls: Option<Str>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) allowed_origins: Option<Vec<Str>>,
    pub(crate) token_env: Option<Str>,
    pub(crate) state_dir: Option<Str>,
    pub(crate) max_drills: Option<Spanned<i64>>,
    pub(crate) max_drill_duration: Option<Str>,
}

/// `[clock]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClock {
    pub(crate) timezone: Option<Str>,
    /// A string, or a bare TOML datetime.
    pub(crate) start_at: Option<Spanned<toml::Value>>,
    pub(crate) speed: Option<Spanned<f64>>,
    /// A string, or a bare TOML datetime.
    pub(crate) anchor: Option<Spanned<toml::Value>>,
}

/// `maintenance.mode`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Answer as the gateway does during maintenance.
    Enforce,
    /// Pass through, but log and count what would have been answered.
    Report,
}

/// `[maintenance]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaintenance {
    pub(crate) error_code: Option<Str>,
    pub(crate) mode: Option<Mode>,
    pub(crate) api_status: Option<Spanned<i64>>,
    pub(crate) page_status: Option<Spanned<i64>>,
    pub(crate) token_message: Option<Str>,
    pub(crate) page_template: Option<Str>,
    pub(crate) drain_limit: Option<Spanned<i64>>,
    pub(crate) drain_timeout: Option<Str>,
    #[serde(default)]
    pub(crate) contact: RawContact,
}

/// `[maintenance.contact]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContact {
    pub(crate) name: Option<String>,
    pub(crate) free_dial: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) hours: Option<String>,
    pub(crate) email: Option<String>,
}

/// `[upstreams.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub(crate) url: Str,
    pub(crate) connect_timeout: Option<Str>,
    pub(crate) response_timeout: Option<Str>,
    pub(crate) pool_idle_timeout: Option<Str>,
    pub(crate) ca_file: Option<Str>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) connect_to: Option<Str>,
}

/// `[[windows]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    pub(crate) id: Str,
    pub(crate) title: Option<String>,
    /// One-off window: `start` and `end`.
    pub(crate) start: Option<Spanned<toml::Value>>,
    pub(crate) end: Option<Spanned<toml::Value>>,
    /// Recurring window: a cron pattern for the starts, and how long each lasts.
    pub(crate) cron: Option<Str>,
    pub(crate) duration: Option<Str>,
    /// Zone the cron pattern is read in (default: `clock.timezone`).
    pub(crate) timezone: Option<Str>,
    /// Recurring window: no occurrence starts before `from` or at/after `until`.
    pub(crate) from: Option<Spanned<toml::Value>>,
    pub(crate) until: Option<Spanned<toml::Value>>,
    pub(crate) services: Spanned<Vec<Str>>,
}

/// `routes[].kind`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// Server-to-server XML API: maintenance answers the gateway's error XML.
    Api,
    /// Token JavaScript library: maintenance serves a stand-in that fails every token.
    TokenJs,
    /// Browser page (link method): maintenance serves the notice page.
    Page,
    /// Never in maintenance.
    Passthrough,
    /// The gateway's payment-result POST notification to the merchant's receiver: never in
    /// maintenance; `settle_method` is rewritten when the settleMethod drill applies.
    Notification,
}

impl Kind {
    /// The name used in the config file.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::TokenJs => "token_js",
            Self::Page => "page",
            Self::Passthrough => "passthrough",
            Self::Notification => "notification",
        }
    }
}

impl Mode {
    /// The name used in the config file.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Report => "report",
        }
    }
}

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) id: Str,
    pub(crate) path: Option<Str>,
    pub(crate) paths: Option<Spanned<Vec<Str>>>,
    pub(crate) path_prefix: Option<Str>,
    pub(crate) methods: Option<Vec<Str>>,
    pub(crate) host: Option<Str>,
    pub(crate) kind: Kind,
    pub(crate) service: Str,
    pub(crate) upstream: Str,
}

/// `[drill]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrill {
    pub(crate) header: Option<Str>,
    #[serde(default)]
    pub(crate) bypass_cidrs: Vec<Str>,
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<Str>,
    /// Who may use the drill header; absent = anyone.
    pub(crate) header_clients: Option<Vec<Str>>,
}

/// `settle_method_drill.when`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SettleWhen {
    /// Off (the drill header can still switch it on per request).
    #[default]
    Never,
    /// On for every eligible request.
    Always,
    /// On while one of `settle_method_drill.windows` is active.
    InWindows,
}

impl SettleWhen {
    /// The name used in the config file.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Always => "always",
            Self::InWindows => "in_windows",
        }
    }
}

/// `[settle_method_drill]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettleDrill {
    pub(crate) when: Option<SettleWhen>,
    pub(crate) value: Option<Str>,
    pub(crate) paths: Option<Vec<Str>>,
    pub(crate) windows: Option<Vec<Str>>,
    pub(crate) max_body: Option<Spanned<i64>>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) shutdown_grace: Option<Str>,
    pub(crate) header_read_timeout: Option<Str>,
    pub(crate) watch_config: Option<bool>,
    pub(crate) max_header_bytes: Option<Spanned<i64>>,
    pub(crate) max_request_body: Option<Spanned<i64>>,
    pub(crate) worker_threads: Option<Spanned<i64>>,
    pub(crate) body_read_timeout: Option<Str>,
    pub(crate) keepalive_timeout: Option<Str>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) max_upstream_per_client: Option<Spanned<i64>>,
    pub(crate) non_canonical_paths: Option<NonCanonicalPaths>,
}

/// `server.non_canonical_paths`: what happens to a request whose path is not canonical but
/// unambiguous (escapes servers read differently are refused whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NonCanonicalPaths {
    /// Answer `400` (`X-Webcollect-Shim: bad-path`); nothing goes upstream.
    Refuse,
    /// Treat it as its canonical form: the maintenance answer inside a window, the canonical
    /// form (path parameters kept) forwarded outside it. The default, because that is what
    /// the gateway's own web server does with `//api/creditToken` (a base URL ending in `/`):
    /// a rehearsal should show what the night would.
    #[default]
    ForwardCanonical,
}

/// `[tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) ca_dir: Option<Str>,
    pub(crate) cert_file: Option<Str>,
    pub(crate) key_file: Option<Str>,
    pub(crate) hosts: Option<Spanned<Vec<Str>>>,
    pub(crate) leaf_validity: Option<Str>,
}

/// `[report]`: the drill journal and the verdicts of its reports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReport {
    pub(crate) enabled: Option<bool>,
    pub(crate) before: Option<Str>,
    pub(crate) after: Option<Str>,
    pub(crate) always: Option<bool>,
    pub(crate) keep: Option<Str>,
    pub(crate) max_records: Option<Spanned<i64>>,
    pub(crate) path: Option<Str>,
    pub(crate) max_stranded: Option<Spanned<i64>>,
    pub(crate) max_attempts_per_order: Option<Spanned<i64>>,
    pub(crate) max_leaks: Option<Spanned<i64>>,
}

/// `log.format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub(crate) format: Option<LogFormat>,
}

/// The whole file. Each section is deserialized on its own so one bad section does not hide
/// the errors of the others.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub(crate) listen: RawListen,
    pub(crate) admin: RawAdmin,
    pub(crate) clock: RawClock,
    pub(crate) maintenance: RawMaintenance,
    pub(crate) upstreams: BTreeMap<String, (std::ops::Range<usize>, RawUpstream)>,
    pub(crate) windows: Vec<RawWindow>,
    pub(crate) routes: Vec<RawRoute>,
    pub(crate) drill: RawDrill,
    pub(crate) server: RawServer,
    pub(crate) log: RawLog,
    pub(crate) settle_method_drill: RawSettleDrill,
    pub(crate) tls: RawTls,
    pub(crate) report: RawReport,
}
