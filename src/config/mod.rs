//! Validated, immutable configuration and the function that loads it from TOML.
//!
//! Loading is two steps, as in ripgrep's low/high args: `raw` mirrors the file with spans,
//! then `validate` turns it into [`Config`], collecting every problem as a `Diagnostic`.

pub(crate) mod certs;
mod error;
pub mod keys;
mod origin;
mod parse;
pub(crate) mod raw;
mod tls;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use http::{HeaderName, Method, StatusCode, Uri};
use ipnet::IpNet;
use rustls_pki_types::CertificateDer;

pub(crate) use crate::response::page::Contact;
use crate::schedule::{Recurring, Window};

pub(crate) use error::{ConfigError, Diagnostic};
pub(crate) use origin::Origin;
pub use raw::LogFormat;
pub(crate) use raw::{Kind, Mode, NonCanonicalPaths, SettleWhen};
pub(crate) use validate::is_valid_service;
pub use validate::parse_time;

/// Config file used when neither `--config` nor `$WEBCOLLECT_SHIM_CONFIG` is given.
pub const DEFAULT_PATH: &str = "config/webcollect-shim.toml";

/// A complete, checked configuration. Built once per load; never mutated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Lowercase hex sha256 of the file's bytes, so replicas can compare what they loaded.
    pub(crate) digest: String,
    /// `[listen]`
    pub listen: Listen,
    /// `[admin]`
    pub admin: Admin,
    /// `[clock]`
    pub clock: ClockConfig,
    /// `[maintenance]`
    pub maintenance: Maintenance,
    /// `[upstreams.*]`, sorted by name.
    pub upstreams: Vec<Upstream>,
    /// One-off `[[windows]]` (with `start`/`end`) in file order.
    pub windows: Vec<Window>,
    /// Recurring `[[windows]]` (with `cron`/`duration`) in file order.
    pub(crate) recurring: Vec<Recurring>,
    /// `[[routes]]` in file order (first match wins).
    pub routes: Vec<Route>,
    /// `[drill]`
    pub drill: Drill,
    /// `[server]`
    pub server: Server,
    /// `log.format`
    pub log_format: LogFormat,
    /// `[settle_method_drill]`
    pub settle_drill: SettleDrill,
    /// `[tls]`
    pub tls: Tls,
    /// `[report]`
    pub report: Reporting,
}

/// `[report]`: when the drill journal records, where it keeps its records and for how long,
/// and the thresholds of a report's verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporting {
    /// Journal at all.
    pub(crate) enabled: bool,
    /// Recording starts this long (drill time) before a window, occurrence or drill starts.
    pub(crate) before: Duration,
    /// ... and ends this long after it ends; also how far a report looks for recoveries.
    pub(crate) after: Duration,
    /// Record every request of a journalled route kind, window or not.
    pub(crate) always: bool,
    /// Records older than this (real time) are deleted.
    pub(crate) keep: Duration,
    /// At most this many records are kept; the oldest go first.
    pub(crate) max_records: usize,
    /// SQLite file; `None` means `state_dir/journal.sqlite`, or memory without `state_dir`.
    pub(crate) path: Option<PathBuf>,
    /// Verdict thresholds.
    pub(crate) verdicts: Thresholds,
}

/// The thresholds of a report's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Thresholds {
    /// Orders attempted in the window and never successful afterwards.
    pub(crate) max_stranded: u64,
    /// Attempts of one order during the window.
    pub(crate) max_attempts_per_order: u64,
    /// Requests that reached an upstream while their service was in the window.
    pub(crate) max_leaks: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_stranded: 0,
            max_attempts_per_order: 3,
            max_leaks: 0,
        }
    }
}

/// The gateway's host names (production, XP, link method, test gateway, 後払い and its test
/// host and older host): the default `[tls] hosts`.
pub const GATEWAY_HOSTS: [&str; 7] = [
    "api.kuronekoyamato.co.jp",
    "apixp.kuronekoyamato.co.jp",
    "payment.kuronekoyamato.co.jp",
    "ptwebcollect.jp",
    "atobarai.kuronekoyamato.co.jp",
    "atobarai-test.kuronekoyamato.co.jp",
    "yamato-credit-finance.jp",
];

/// `[tls]`: the certificates of the TLS listener (`listen.tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Where certificates come from; `None` when `[tls]` names no source.
    pub source: Option<CertSource>,
    /// Host names served, lowercase; a client asking for another name is refused.
    pub hosts: Vec<String>,
    /// Lifetime of the leaf certificates the local CA issues.
    pub(crate) leaf_validity: Duration,
}

/// Where the TLS listener's certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// A local CA in this directory (`ca.pem`, `ca-key.pem`), created on first use; leaf
    /// certificates for `hosts` are issued at start and reissued before they expire.
    LocalCa(PathBuf),
    /// The user's own certificate chain and private key (PEM).
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// The settleMethod drill: the value 14 the 2020 notice announced, before the gateway sends it.
#[derive(Debug, Clone)]
pub struct SettleDrill {
    /// When it applies.
    pub(crate) when: SettleWhen,
    /// The value written into `settleMethod` / `settle_method` (default `14`).
    pub(crate) value: String,
    /// Request paths whose responses are rewritten (default: E04 and F04, both gateways).
    pub(crate) paths: Vec<String>,
    /// For `in_windows`: the ids of the windows during which it applies.
    pub(crate) windows: Vec<String>,
    /// Larger bodies pass through unmodified (with a warning and a metric).
    pub(crate) max_body: usize,
}

/// Default `settle_method_drill.paths`: E04 and F04, production and test gateway.
pub(crate) const TRADE_INFO_PATHS: [&str; 4] = [
    "/api/tradeInfo",
    "/api/xp/tradeInfoXp",
    "/test_gateway/tradeInfo.api",
    "/test_gateway/xp/tradeInfoXp.api",
];

/// Listener addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Merchant traffic.
    pub proxy: SocketAddr,
    /// Admin endpoints.
    pub admin: SocketAddr,
    /// Merchant traffic over TLS (HTTP/1.1 and h2 by ALPN); `None` serves none.
    pub tls: Option<SocketAddr>,
}

/// Admin API settings.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Origins besides the admin listener's own whose pages may call mutating endpoints.
    pub(crate) allowed_origins: Vec<Origin>,
    /// Name of the environment variable holding the bearer token, if any.
    pub token_env: Option<String>,
    /// The token read from that variable at load time.
    pub(crate) token: Option<Secret>,
    /// Where open ad-hoc drills are kept across restarts (`None`: in memory only).
    pub state_dir: Option<PathBuf>,
    /// At most this many ad-hoc drills are open at once (`POST /drills` past it: 409).
    pub(crate) max_drills: usize,
    /// The longest ad-hoc drill (at most [`MAX_DRILL_DURATION`]).
    pub(crate) max_drill_duration: std::time::Duration,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            token_env: None,
            token: None,
            state_dir: None,
            max_drills: DEFAULT_MAX_DRILLS,
            max_drill_duration: MAX_DRILL_DURATION,
        }
    }
}

/// The longest ad-hoc drill any config allows; `[admin] max_drill_duration` may only lower
/// it, so the fleet CLI, which has no config, can check it too.
pub const MAX_DRILL_DURATION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// `[admin] max_drills` when not set: open drills are kept in memory, listed in every
/// `/status` and rewritten to `drills.json` on each change, so their number is bounded.
pub(crate) const DEFAULT_MAX_DRILLS: usize = 100;

/// A value that must never be printed (Debug shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for comparison only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Looks up environment variables; injected so tests never touch the process environment.
pub(crate) type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The process environment.
#[must_use]
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Time zone and drill clock.
#[derive(Debug, Clone)]
pub struct ClockConfig {
    /// Renders dates and reads offset-less times.
    pub timezone: Tz,
    /// Drill clock start; `None` runs on real time.
    pub(crate) start_at: Option<DateTime<Utc>>,
    /// Drill clock speed (1.0 = real time).
    pub(crate) speed: f64,
    /// The real instant at which the drill clock reads `start_at`; `None` = when the process
    /// starts.
    pub(crate) anchor: Option<DateTime<Utc>>,
}

impl ClockConfig {
    /// The drill clock's speed, or 1.0 when no drill clock is configured.
    #[must_use]
    pub(crate) fn effective_speed(&self) -> f64 {
        if self.start_at.is_some() {
            self.speed
        } else {
            1.0
        }
    }
}

/// What the shim answers during maintenance.
#[derive(Debug, Clone)]
pub struct Maintenance {
    /// `errorCode` of the API answer and the token stand-in.
    pub(crate) error_code: String,
    /// Enforce or only report.
    pub(crate) mode: Mode,
    /// Status of the API answer.
    pub(crate) api_status: StatusCode,
    /// Status of the maintenance page.
    pub(crate) page_status: StatusCode,
    /// Message of the token stand-in.
    pub(crate) token_message: String,
    /// Contact block of the page.
    pub(crate) contact: Contact,
    /// The page template (built-in, or `page_template`), parsed once at load.
    pub(crate) page: std::sync::Arc<crate::response::page::Template>,
    /// At most this many request-body bytes are read and discarded before a short-circuit.
    pub(crate) drain_limit: u64,
    /// At most this long is spent draining a short-circuited request's body.
    pub(crate) drain_timeout: Duration,
}

/// An upstream the shim forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its key in `[upstreams]`.
    pub(crate) name: String,
    /// `scheme://authority` only; the request's path and query are appended unchanged.
    pub(crate) url: Uri,
    /// TCP (and TLS) connect timeout.
    pub(crate) connect_timeout: Duration,
    /// Time allowed from sending the request to receiving response headers.
    pub(crate) response_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub(crate) pool_idle_timeout: Duration,
    /// Extra trust anchors (from `ca_file`) on top of the public web roots.
    pub(crate) ca_certs: Vec<CertificateDer<'static>>,
    /// At most this many connections to it at once, over all workers.
    pub max_connections: usize,
    /// Connect here instead of resolving the URL's host, which still gives SNI, the
    /// certificate name and `Host` (curl's `--connect-to`).
    pub(crate) connect_to: Option<SocketAddr>,
}

/// How a route matches a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathMatch {
    /// Any of these exact paths.
    Exact(Vec<String>),
    /// Any path starting with this.
    Prefix(String),
}

/// A route: which requests it takes, what they are, and where they go.
#[derive(Debug, Clone)]
pub struct Route {
    /// Unique id.
    pub(crate) id: String,
    /// Path matcher.
    pub(crate) path: PathMatch,
    /// Methods accepted; `None` = any.
    pub(crate) methods: Option<Vec<Method>>,
    /// Host (lowercase, no port) the request must be for; `None` = any.
    pub(crate) host: Option<String>,
    /// What the maintenance answer looks like.
    pub(crate) kind: Kind,
    /// Dotted service name, matched against windows.
    pub(crate) service: String,
    /// Index into [`Config::upstreams`].
    pub(crate) upstream: usize,
}

/// Targeted drills.
#[derive(Debug, Clone)]
pub struct Drill {
    /// Request header that forces `maintenance` or `pass`.
    pub header: HeaderName,
    /// Clients in these networks always pass through.
    pub(crate) bypass_cidrs: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` is believed when deciding bypass.
    pub(crate) trusted_proxies: Vec<IpNet>,
    /// Clients whose drill header is obeyed; `None` = any client.
    pub(crate) header_clients: Option<Vec<IpNet>>,
}

/// Listener behaviour.
#[derive(Debug, Clone)]
pub struct Server {
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_grace: Duration,
    /// How long a client may take to send request headers.
    pub(crate) header_read_timeout: Duration,
    /// Reload when the config file changes.
    pub watch_config: bool,
    /// Largest request head accepted (HTTP/1.1 read buffer; HTTP/2 header list); larger → 431.
    pub(crate) max_header_bytes: usize,
    /// Largest request body forwarded; larger → 413, and nothing more is sent upstream.
    pub(crate) max_request_body: u64,
    /// Worker threads; `None` = one per core. Read at start only.
    pub worker_threads: Option<usize>,
    /// A request body that sends nothing for this long is cut off (408).
    pub(crate) body_read_timeout: Duration,
    /// An idle keep-alive client connection is closed after this long.
    pub(crate) keepalive_timeout: Duration,
    /// At most this many client connections at once; more wait in the backlog.
    pub max_connections: usize,
    /// At most this many upstream exchanges at once for one client connection (its HTTP/2
    /// streams); more wait up to the upstream's `connect_timeout`, then 503. Read at start.
    pub(crate) max_upstream_per_client: usize,
    /// What happens to a request whose path is not canonical.
    pub(crate) non_canonical_paths: NonCanonicalPaths,
}

impl Config {
    /// Reads, parses and validates `path`.
    ///
    /// # Errors
    /// Every problem found, each with its line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, &process_env)
    }

    /// [`Config::load`] with an injected environment.
    ///
    /// # Errors
    /// Every problem found, each with its line and column.
    pub fn load_with_env(path: &Path, env: &EnvLookup) -> Result<Self, ConfigError> {
        // A regular file under a size cap, opened without blocking: a FIFO or /dev/zero
        // swapped in for the config cannot hang the watcher or exhaust memory (finding 9).
        // Links are followed: a ConfigMap mounts each key as one.
        match crate::safe_file::read_config_string(path, crate::safe_file::CONFIG_CAP) {
            Ok(text) => Self::from_toml_with_env(path, &text, env),
            Err(err) => Err(ConfigError::new(
                path,
                "",
                vec![Diagnostic {
                    span: None,
                    message: format!("cannot read config file: {err}"),
                }],
            )),
        }
    }

    /// Parses and validates `text`, as if read from `path`, with an injected environment.
    /// Relative paths inside the file (`ca_file`) are resolved against `path`'s directory, so
    /// a config and its CA file can move together.
    ///
    /// # Errors
    /// Every problem found, each with its line and column.
    pub fn from_toml_with_env(
        path: &Path,
        text: &str,
        env: &EnvLookup,
    ) -> Result<Self, ConfigError> {
        let (raw, mut diags) = parse::parse(text);
        let config = validate::validate(path, raw, env, &mut diags);
        match config {
            Some(config) if diags.is_empty() => Ok(Self {
                digest: digest(text.as_bytes()),
                ..config
            }),
            _ => Err(ConfigError::new(path, text, diags)),
        }
    }

    /// The upstream a route forwards to.
    #[must_use]
    pub(crate) fn upstream_of(&self, route: &Route) -> &Upstream {
        &self.upstreams[route.upstream]
    }
}

/// Lowercase hex sha256 of a config file's bytes (what `/status` shows as `config.sha256`).
#[must_use]
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses `"5s"`, `"250ms"`, `"4h"`, `"1h30m"` (units: ms, s, m, h, d).
///
/// # Errors
/// A lowercase message naming what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {text:?}: expected a number"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "d" => Duration::from_secs(value.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ms, s, m, h, d)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h, d)"
                ));
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration the way config files write them (`4h`, `1h30m`, `90s`).
#[must_use]
pub(crate) fn format_duration(d: chrono::TimeDelta) -> String {
    let mut secs = d.num_seconds();
    if secs <= 0 {
        return format!("{}ms", d.num_milliseconds());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_lowercase_hex_sha256() {
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
    }
}
