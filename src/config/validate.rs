//! `RawConfig` → [`Config`]: parse addresses, times, URLs and durations, resolve references,
//! and collect every problem instead of stopping at the first.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use http::{HeaderName, Method, StatusCode, Uri};
use ipnet::IpNet;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use toml::Spanned;

use super::error::Diagnostic;
use super::raw::{Mode, RawConfig, RawUpstream, Str};
use super::{
    Admin, ClockConfig, Config, Contact, Drill, Listen, Maintenance, PathMatch, Route, Server,
    Upstream,
};
use crate::schedule::Window;

const DEFAULT_ERROR_CODE: &str = "Z01000000";
const DEFAULT_TOKEN_MESSAGE: &str = "メンテナンス中です。時間をおいて再度アクセスしてください。";
const DEFAULT_DRILL_HEADER: &str = "x-webcollect-shim-drill";

/// Collects diagnostics while turning raw values into checked ones.
pub(super) struct Checker<'a> {
    pub(super) diags: &'a mut Vec<Diagnostic>,
    pub(super) base_dir: PathBuf,
}

/// Validates `raw`; returns `None` (with `diags` non-empty) when something is wrong.
pub(super) fn validate(
    path: &Path,
    raw: RawConfig,
    env: &super::EnvLookup,
    diags: &mut Vec<Diagnostic>,
) -> Option<Config> {
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut c = Checker { diags, base_dir };

    let listen = Listen {
        proxy: c.addr(raw.listen.proxy.as_ref(), "0.0.0.0:8080"),
        admin: c.addr(raw.listen.admin.as_ref(), "127.0.0.1:9090"),
        tls: raw
            .listen
            .tls
            .as_ref()
            .map(|tls| c.addr(Some(tls), "0.0.0.0:8443")),
    };
    let tls = c.tls(&raw.tls, raw.listen.tls.as_ref(), &listen);
    let mut admin = Admin {
        allowed_origins: c.origins(raw.admin.allowed_origins.as_deref()),
        token_env: raw.admin.token_env.as_ref().map(|s| s.get_ref().clone()),
        token: None,
        state_dir: raw.admin.state_dir.as_ref().and_then(|dir| {
            if dir.get_ref().trim().is_empty() {
                c.err(dir.span(), "`state_dir` must be a directory path");
                return None;
            }
            Some(c.base_dir.join(dir.get_ref()))
        }),
    };
    if let Some(var) = &raw.admin.token_env {
        let name = var.get_ref();
        if name.is_empty() || name.contains('=') {
            c.err(
                var.span(),
                "`token_env` must be an environment variable name",
            );
        } else {
            match env(name) {
                Some(token) if token.trim().len() >= 16 => {
                    admin.token = Some(super::Secret::new(token.trim().to_string()));
                }
                Some(_) => c.err(
                    var.span(),
                    format!("environment variable {name} holds a token shorter than 16 characters"),
                ),
                None => c.err(
                    var.span(),
                    format!("`token_env` names {name}, but that environment variable is not set"),
                ),
            }
        }
    }
    if admin.token_env.is_none() && !listen.admin.ip().is_loopback() {
        let span = raw.listen.admin.as_ref().map_or(0..0, Spanned::span);
        c.err(
            span,
            format!(
                "admin listener {} is not on a loopback address, so `admin.token_env` must name \
                 a bearer token",
                listen.admin
            ),
        );
    }

    let timezone = match &raw.clock.timezone {
        None => chrono_tz::Asia::Tokyo,
        Some(tz) => tz.get_ref().parse::<Tz>().unwrap_or_else(|_| {
            c.err(
                tz.span(),
                format!(
                    "unknown time zone {:?} (use an IANA name such as \"Asia/Tokyo\")",
                    tz.get_ref()
                ),
            );
            chrono_tz::Asia::Tokyo
        }),
    };
    let start_at = raw
        .clock
        .start_at
        .as_ref()
        .and_then(|v| c.time(v, timezone));
    let speed = match &raw.clock.speed {
        None => 1.0,
        Some(s) if s.get_ref().is_finite() && *s.get_ref() > 0.0 => *s.get_ref(),
        Some(s) => {
            c.err(s.span(), "`speed` must be a positive number");
            1.0
        }
    };
    let anchor = raw.clock.anchor.as_ref().and_then(|v| c.time(v, timezone));
    if raw.clock.start_at.is_none() {
        for (key, span) in [
            ("speed", raw.clock.speed.as_ref().map(Spanned::span)),
            ("anchor", raw.clock.anchor.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                c.err(
                    span,
                    format!("`{key}` needs `start_at` (the drill clock's starting instant)"),
                );
            }
        }
    }
    let clock = ClockConfig {
        timezone,
        start_at,
        speed,
        anchor,
    };

    let maintenance = c.maintenance(&raw);
    let (upstreams, upstream_index) = c.upstreams(raw.upstreams);
    let (windows, recurring) = c.windows(&raw.windows, timezone);
    let routes = c.routes(&raw.routes, &upstream_index);
    let drill = c.drill(&raw.drill);
    let server = Server {
        shutdown_grace: c.duration(raw.server.shutdown_grace.as_ref(), Duration::from_secs(30)),
        header_read_timeout: c.duration(
            raw.server.header_read_timeout.as_ref(),
            Duration::from_secs(30),
        ),
        watch_config: raw.server.watch_config.unwrap_or(true),
        max_header_bytes: c.bytes(raw.server.max_header_bytes.as_ref(), 64 * 1024, 8192),
        max_request_body: c.bytes(raw.server.max_request_body.as_ref(), 64 << 20, 1) as u64,
        worker_threads: raw.server.worker_threads.as_ref().map(|n| {
            usize::try_from(*n.get_ref())
                .ok()
                .filter(|n| (1..=256).contains(n))
                .unwrap_or_else(|| {
                    c.err(n.span(), "`worker_threads` must be between 1 and 256");
                    1
                })
        }),
        body_read_timeout: c.duration(
            raw.server.body_read_timeout.as_ref(),
            Duration::from_secs(30),
        ),
        keepalive_timeout: c.duration(
            raw.server.keepalive_timeout.as_ref(),
            Duration::from_secs(30),
        ),
        max_connections: c.count(raw.server.max_connections.as_ref(), 10_000),
        non_canonical_paths: raw.server.non_canonical_paths.unwrap_or_default(),
    };

    let settle_drill = c.settle_drill(&raw.settle_method_drill, &windows, &recurring);

    if raw.routes.is_empty() {
        c.err(
            0..0,
            "no [[routes]] defined: the shim would answer 404 to everything",
        );
    }

    let config = Config {
        path: path.to_owned(),
        digest: String::new(),
        listen,
        admin,
        clock,
        maintenance,
        upstreams,
        windows,
        recurring,
        routes,
        drill,
        server,
        log_format: raw.log.format.unwrap_or_default(),
        settle_drill,
        tls,
    };
    c.diags.is_empty().then_some(config)
}

impl Checker<'_> {
    pub(super) fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diagnostic::at(span, message));
    }

    fn addr(&mut self, value: Option<&Str>, default: &str) -> SocketAddr {
        let fallback = || {
            default
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
        };
        let Some(value) = value else {
            return fallback();
        };
        value.get_ref().parse().unwrap_or_else(|_| {
            self.err(
                value.span(),
                format!(
                    "invalid listen address {:?}: expected IP:PORT such as \"0.0.0.0:8080\"",
                    value.get_ref()
                ),
            );
            fallback()
        })
    }

    /// `[admin] allowed_origins`: each a `scheme://host[:port]` origin.
    fn origins(&mut self, values: Option<&[Str]>) -> Vec<super::Origin> {
        values
            .unwrap_or_default()
            .iter()
            .filter_map(|value| {
                let origin = super::Origin::parse(value.get_ref());
                if origin.is_none() {
                    self.err(
                        value.span(),
                        format!(
                            "invalid origin {:?}: expected http:// or https:// with a host and \
                             an optional port, nothing after it, such as \"https://shim-admin.example\"",
                            value.get_ref()
                        ),
                    );
                }
                origin
            })
            .collect()
    }

    /// A byte count of at least `min`.
    fn bytes(&mut self, value: Option<&Spanned<i64>>, default: usize, min: usize) -> usize {
        let Some(value) = value else {
            return default;
        };
        usize::try_from(*value.get_ref())
            .ok()
            .filter(|n| *n >= min)
            .unwrap_or_else(|| {
                self.err(
                    value.span(),
                    format!("must be a number of bytes, at least {min}"),
                );
                default
            })
    }

    /// A positive count (connections), at most a million.
    fn count(&mut self, value: Option<&Spanned<i64>>, default: usize) -> usize {
        let Some(value) = value else {
            return default;
        };
        usize::try_from(*value.get_ref())
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .unwrap_or_else(|| {
                self.err(value.span(), "must be a whole number from 1 to 1000000");
                default
            })
    }

    pub(super) fn duration(&mut self, value: Option<&Str>, default: Duration) -> Duration {
        let Some(value) = value else {
            return default;
        };
        super::parse_duration(value.get_ref()).unwrap_or_else(|msg| {
            self.err(value.span(), msg);
            default
        })
    }

    /// An RFC 3339 time, or `YYYY-MM-DD HH:MM[:SS]` read in `tz`; strings or bare TOML datetimes.
    fn time(&mut self, value: &Spanned<toml::Value>, tz: Tz) -> Option<DateTime<Utc>> {
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            other => {
                self.err(
                    value.span(),
                    format!("expected a time, found {}", other.type_str()),
                );
                return None;
            }
        };
        match parse_time(&text, tz) {
            Ok(t) => Some(t),
            Err(msg) => {
                self.err(value.span(), msg);
                None
            }
        }
    }

    fn status(&mut self, value: Option<&Spanned<i64>>, default: StatusCode) -> StatusCode {
        let Some(value) = value else {
            return default;
        };
        u16::try_from(*value.get_ref())
            .ok()
            .filter(|s| (200..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or_else(|| {
                self.err(value.span(), "status must be between 200 and 599");
                default
            })
    }

    fn maintenance(&mut self, raw: &RawConfig) -> Maintenance {
        let m = &raw.maintenance;
        let error_code = match &m.error_code {
            None => DEFAULT_ERROR_CODE.to_string(),
            Some(code) => {
                let s = code.get_ref();
                if s.is_empty() || !s.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                    self.err(code.span(), "`error_code` must be non-empty ASCII letters and digits, such as \"Z01000000\"");
                }
                s.clone()
            }
        };
        let token_message = match &m.token_message {
            None => DEFAULT_TOKEN_MESSAGE.to_string(),
            Some(msg) => {
                if msg.get_ref().trim().is_empty() {
                    self.err(msg.span(), "`token_message` must not be empty");
                }
                msg.get_ref().clone()
            }
        };
        let page = match &m.page_template {
            None => crate::response::page::Template::built_in(),
            Some(file) => {
                let path = self.base_dir.join(file.get_ref());
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read page template {}: {e}", path.display()))
                    .and_then(|text| {
                        crate::response::page::Template::parse(&text)
                            .map_err(|e| format!("page template {}: {e}", path.display()))
                    });
                parsed.unwrap_or_else(|msg| {
                    self.err(file.span(), msg);
                    crate::response::page::Template::built_in()
                })
            }
        };
        let drain_limit = match &m.drain_limit {
            None => 1 << 20,
            Some(v) => u64::try_from(*v.get_ref()).unwrap_or_else(|_| {
                self.err(
                    v.span(),
                    "`drain_limit` must be a number of bytes, 0 or more",
                );
                0
            }),
        };
        let c = &m.contact;
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        Maintenance {
            error_code,
            mode: m.mode.unwrap_or(Mode::Enforce),
            api_status: self.status(m.api_status.as_ref(), StatusCode::OK),
            page_status: self.status(m.page_status.as_ref(), StatusCode::SERVICE_UNAVAILABLE),
            token_message,
            contact: Contact {
                name: or(
                    &c.name,
                    "ヤマトフィナンシャル株式会社 カスタマーサービスセンター",
                ),
                free_dial: or(&c.free_dial, "0120-69-5090"),
                phone: or(&c.phone, "03-6671-8080"),
                hours: or(&c.hours, "9:00-18:00"),
                email: or(&c.email, "payment@kuronekoyamato.co.jp"),
            },
            page: std::sync::Arc::new(page),
            drain_limit,
            drain_timeout: self.duration(m.drain_timeout.as_ref(), Duration::from_secs(5)),
        }
    }

    fn upstreams(
        &mut self,
        raw: BTreeMap<String, (Range<usize>, RawUpstream)>,
    ) -> (Vec<Upstream>, BTreeMap<String, usize>) {
        let mut out = Vec::new();
        let mut index = BTreeMap::new();
        for (name, (name_span, u)) in raw {
            let url = self.upstream_url(&u.url);
            let ca_certs = match &u.ca_file {
                None => Vec::new(),
                Some(file) => {
                    if url
                        .as_ref()
                        .is_some_and(|u| u.scheme_str() != Some("https"))
                    {
                        self.err(file.span(), "`ca_file` only applies to https upstreams");
                    }
                    self.certificates(file)
                }
            };
            let upstream = Upstream {
                name: name.clone(),
                url: url.unwrap_or_default(),
                connect_timeout: self.duration(u.connect_timeout.as_ref(), Duration::from_secs(5)),
                response_timeout: self
                    .duration(u.response_timeout.as_ref(), Duration::from_secs(30)),
                pool_idle_timeout: self
                    .duration(u.pool_idle_timeout.as_ref(), Duration::from_secs(60)),
                ca_certs,
                max_connections: self.count(u.max_connections.as_ref(), 256),
                connect_to: u.connect_to.as_ref().and_then(|to| {
                    to.get_ref().parse().map_err(|_| {
                        self.err(
                            to.span(),
                            format!(
                                "invalid `connect_to` {:?}: expected IP:PORT such as \"203.0.113.10:443\"",
                                to.get_ref()
                            ),
                        );
                    })
                    .ok()
                }),
            };
            if name.is_empty() {
                self.err(name_span, "upstream name must not be empty");
            }
            index.insert(name, out.len());
            out.push(upstream);
        }
        (out, index)
    }

    fn upstream_url(&mut self, value: &Str) -> Option<Uri> {
        let text = value.get_ref();
        let problem = match text.parse::<Uri>() {
            Err(err) => format!("invalid upstream url {text:?}: {err}"),
            Ok(uri) => match (uri.scheme_str(), uri.authority()) {
                (Some("http" | "https"), Some(_))
                    if matches!(uri.path(), "" | "/") && uri.query().is_none() =>
                {
                    let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
                    let scheme = uri.scheme_str().unwrap_or("http");
                    return Uri::builder()
                        .scheme(scheme)
                        .authority(authority)
                        .path_and_query("/")
                        .build()
                        .ok();
                }
                (Some("http" | "https"), Some(_)) => format!(
                    "upstream url {text:?} must not have a path or query: the request's own path \
                     is forwarded unchanged"
                ),
                _ => format!(
                    "upstream url {text:?} must be http:// or https:// with a host, such as \
                     \"https://api.kuronekoyamato.co.jp\""
                ),
            },
        };
        self.err(value.span(), problem);
        None
    }

    fn certificates(&mut self, file: &Str) -> Vec<CertificateDer<'static>> {
        let path = self.base_dir.join(file.get_ref());
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>());
        match certs {
            Ok(certs) if !certs.is_empty() => certs,
            Ok(_) => {
                self.err(
                    file.span(),
                    format!("no PEM certificate found in {}", path.display()),
                );
                Vec::new()
            }
            Err(err) => {
                self.err(
                    file.span(),
                    format!("cannot read CA certificates from {}: {err}", path.display()),
                );
                Vec::new()
            }
        }
    }

    fn windows(
        &mut self,
        raw: &[super::raw::RawWindow],
        tz: Tz,
    ) -> (Vec<Window>, Vec<crate::schedule::Recurring>) {
        let mut seen = HashSet::new();
        let mut once = Vec::new();
        let mut recurring = Vec::new();
        for w in raw {
            let id = w.id.get_ref();
            if !seen.insert(id.as_str()) {
                self.err(w.id.span(), format!("duplicate window id {id:?}"));
            }
            if w.services.get_ref().is_empty() {
                self.err(
                    w.services.span(),
                    format!("window {id:?} covers no services"),
                );
            }
            for s in w.services.get_ref() {
                self.service_name(s);
            }
            let services: Vec<String> = w
                .services
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect();
            let title = w.title.clone().unwrap_or_else(|| id.clone());
            if let Some(pattern) = &w.cron {
                for (key, present) in [("start", w.start.as_ref()), ("end", w.end.as_ref())] {
                    if let Some(v) = present {
                        self.err(
                            v.span(),
                            format!(
                                "window {id:?} recurs (`cron`), so it takes `duration`, not `{key}`"
                            ),
                        );
                    }
                }
                let zone = match &w.timezone {
                    None => tz,
                    Some(name) => name.get_ref().parse::<Tz>().unwrap_or_else(|_| {
                        self.err(
                            name.span(),
                            format!("unknown time zone {:?}", name.get_ref()),
                        );
                        tz
                    }),
                };
                let cron = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Disallowed)
                    .build()
                    .parse(pattern.get_ref());
                let cron = match cron {
                    Ok(c) => Some(c),
                    Err(e) => {
                        self.err(
                            pattern.span(),
                            format!("invalid cron pattern {:?}: {e} (five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * MON\")", pattern.get_ref()),
                        );
                        None
                    }
                };
                let duration = match &w.duration {
                    None => {
                        self.err(
                            pattern.span(),
                            format!(
                                "window {id:?} recurs (`cron`) and needs a `duration`, e.g. \"4h\""
                            ),
                        );
                        None
                    }
                    Some(d) => match super::parse_duration(d.get_ref()) {
                        Ok(d) if !d.is_zero() => chrono::TimeDelta::from_std(d).ok(),
                        Ok(_) => {
                            self.err(d.span(), "`duration` must be longer than zero");
                            None
                        }
                        Err(msg) => {
                            self.err(d.span(), msg);
                            None
                        }
                    },
                };
                let from = w.from.as_ref().and_then(|v| self.time(v, zone));
                let until = w.until.as_ref().and_then(|v| self.time(v, zone));
                if let (Some(f), Some(u), Some(span)) =
                    (from, until, w.until.as_ref().map(Spanned::span))
                    && u <= f
                {
                    self.err(span, format!("window {id:?}: `until` must be after `from`"));
                }
                if let (Some(cron), Some(duration)) = (cron, duration) {
                    recurring.push(crate::schedule::Recurring {
                        id: id.clone(),
                        title,
                        pattern: pattern.get_ref().clone(),
                        cron,
                        timezone: zone,
                        duration,
                        from,
                        until,
                        services,
                    });
                }
                continue;
            }
            for (key, present) in [
                ("duration", w.duration.as_ref().map(Spanned::span)),
                ("timezone", w.timezone.as_ref().map(Spanned::span)),
                ("from", w.from.as_ref().map(Spanned::span)),
                ("until", w.until.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = present {
                    self.err(
                        span,
                        format!("`{key}` only applies to recurring windows (with `cron`)"),
                    );
                }
            }
            let (Some(start_v), Some(end_v)) = (&w.start, &w.end) else {
                self.err(
                    w.id.span(),
                    format!("window {id:?} needs `start` and `end`, or `cron` and `duration`"),
                );
                continue;
            };
            let start = self.time(start_v, tz);
            let end = self.time(end_v, tz);
            if let (Some(s), Some(e)) = (start, end)
                && e <= s
            {
                self.err(
                    end_v.span(),
                    format!("window {id:?} ends before it starts (end must be after start)"),
                );
            }
            once.push(Window {
                id: id.clone(),
                title,
                start: start.unwrap_or_default(),
                end: end.unwrap_or_default(),
                services,
                source: crate::schedule::Source::Config,
            });
        }
        (once, recurring)
    }

    fn service_name(&mut self, name: &Str) {
        if !is_valid_service(name.get_ref()) {
            self.err(
                name.span(),
                format!(
                    "invalid service name {:?}: use dot-separated words of letters, digits, '_' or '-', such as \"webcollect.credit_card\"",
                    name.get_ref()
                ),
            );
        }
    }

    fn routes(
        &mut self,
        raw: &[super::raw::RawRoute],
        upstreams: &BTreeMap<String, usize>,
    ) -> Vec<Route> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in raw {
            if !seen.insert(r.id.get_ref().as_str()) {
                self.err(
                    r.id.span(),
                    format!("duplicate route id {:?}", r.id.get_ref()),
                );
            }
            let given = [r.path.is_some(), r.paths.is_some(), r.path_prefix.is_some()];
            let path = match (&r.path, &r.paths, &r.path_prefix) {
                (Some(p), None, None) => {
                    self.route_path(p);
                    PathMatch::Exact(vec![p.get_ref().clone()])
                }
                (None, Some(ps), None) => {
                    if ps.get_ref().is_empty() {
                        self.err(ps.span(), "`paths` must list at least one path");
                    }
                    ps.get_ref().iter().for_each(|p| self.route_path(p));
                    PathMatch::Exact(ps.get_ref().iter().map(|p| p.get_ref().clone()).collect())
                }
                (None, None, Some(p)) => {
                    self.route_path(p);
                    PathMatch::Prefix(p.get_ref().clone())
                }
                _ => {
                    let n = given.iter().filter(|g| **g).count();
                    let what = if n == 0 {
                        "needs"
                    } else {
                        "must have only one of"
                    };
                    self.err(
                        r.id.span(),
                        format!(
                            "route {:?} {what} `path`, `paths` or `path_prefix`",
                            r.id.get_ref()
                        ),
                    );
                    PathMatch::Exact(Vec::new())
                }
            };
            let methods = r.methods.as_ref().map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        let text = m.get_ref();
                        let valid = !text.is_empty() && text.chars().all(|c| c.is_ascii_uppercase());
                        match Method::from_bytes(text.as_bytes()) {
                            Ok(method) if valid => Some(method),
                            _ => {
                                self.err(m.span(), format!("invalid method {text:?}: use upper-case names such as \"POST\""));
                                None
                            }
                        }
                    })
                    .collect()
            });
            self.service_name(&r.service);
            let host = r.host.as_ref().map(|h| self.route_host(h));
            let upstream = upstreams
                .get(r.upstream.get_ref())
                .copied()
                .unwrap_or_else(|| {
                    let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
                    self.err(
                        r.upstream.span(),
                        format!(
                            "unknown upstream {:?} (defined: {})",
                            r.upstream.get_ref(),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                    0
                });
            out.push(Route {
                id: r.id.get_ref().clone(),
                path,
                methods,
                host,
                kind: r.kind,
                service: r.service.get_ref().clone(),
                upstream,
            });
        }
        out
    }

    /// A route's `host`: a DNS name or an IP address, without a port; kept lowercase.
    fn route_host(&mut self, host: &Str) -> String {
        let text = host.get_ref().trim_end_matches('.').to_ascii_lowercase();
        match text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            // As a Host header writes it.
            Ok(IpAddr::V6(ip)) => return format!("[{ip}]"),
            Ok(IpAddr::V4(ip)) => return ip.to_string(),
            Err(_) => {}
        }
        if !super::tls::is_dns_name(&text) {
            self.err(
                host.span(),
                format!(
                    "invalid route host {:?}: a host name such as \"api.kuronekoyamato.co.jp\" (no scheme, port or path)",
                    host.get_ref()
                ),
            );
        }
        text
    }

    fn route_path(&mut self, path: &Str) {
        let p = path.get_ref();
        if !p.starts_with('/') || p.contains(['?', '#']) || p.chars().any(char::is_whitespace) {
            self.err(path.span(), format!("invalid route path {p:?}: must start with '/' and hold no query, fragment or spaces"));
        }
    }

    fn settle_drill(
        &mut self,
        raw: &super::raw::RawSettleDrill,
        windows: &[Window],
        recurring: &[crate::schedule::Recurring],
    ) -> super::SettleDrill {
        let value = match &raw.value {
            None => "14".to_string(),
            Some(v) => {
                let text = v.get_ref();
                if text.is_empty() || text.len() > 3 || !text.chars().all(|c| c.is_ascii_digit()) {
                    self.err(v.span(), format!("invalid settleMethod value {text:?}: use the code's digits, e.g. \"14\""));
                }
                text.clone()
            }
        };
        let paths = match &raw.paths {
            None => super::TRADE_INFO_PATHS
                .iter()
                .map(|p| (*p).to_string())
                .collect(),
            Some(paths) => {
                paths.iter().for_each(|p| self.route_path(p));
                paths.iter().map(|p| p.get_ref().clone()).collect()
            }
        };
        let when = raw.when.unwrap_or_default();
        let ids: Vec<String> = raw
            .windows
            .iter()
            .flatten()
            .map(|w| w.get_ref().clone())
            .collect();
        for w in raw.windows.iter().flatten() {
            let known = windows.iter().any(|k| &k.id == w.get_ref())
                || recurring.iter().any(|k| &k.id == w.get_ref());
            if !known {
                self.err(
                    w.span(),
                    format!(
                        "unknown window {:?} (settle_method_drill.windows lists [[windows]] ids)",
                        w.get_ref()
                    ),
                );
            }
        }
        if when == super::SettleWhen::InWindows && ids.is_empty() {
            self.err(
                0..0,
                "settle_method_drill: `when = \"in_windows\"` needs `windows = [...]` (window ids)",
            );
        }
        let max_body = match &raw.max_body {
            None => 1 << 20,
            Some(v) => usize::try_from(*v.get_ref())
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| {
                    self.err(v.span(), "`max_body` must be a positive number of bytes");
                    1 << 20
                }),
        };
        super::SettleDrill {
            when,
            value,
            paths,
            windows: ids,
            max_body,
        }
    }

    fn drill(&mut self, raw: &super::raw::RawDrill) -> Drill {
        let header = match &raw.header {
            None => HeaderName::from_static(DEFAULT_DRILL_HEADER),
            Some(h) => HeaderName::from_bytes(h.get_ref().to_ascii_lowercase().as_bytes())
                .unwrap_or_else(|_| {
                    self.err(h.span(), format!("invalid header name {:?}", h.get_ref()));
                    HeaderName::from_static(DEFAULT_DRILL_HEADER)
                }),
        };
        Drill {
            header,
            bypass_cidrs: self.networks(&raw.bypass_cidrs),
            trusted_proxies: self.networks(&raw.trusted_proxies),
            header_clients: raw.header_clients.as_deref().map(|n| self.networks(n)),
        }
    }

    fn networks(&mut self, raw: &[Str]) -> Vec<IpNet> {
        raw.iter()
            .filter_map(|n| {
                let text = n.get_ref();
                let parsed = text
                    .parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
                match parsed {
                    Ok(net) => Some(net.trunc()),
                    Err(_) => {
                        self.err(n.span(), format!("invalid network {text:?}: expected CIDR such as \"192.0.2.0/24\" or an IP address"));
                        None
                    }
                }
            })
            .collect()
    }
}

/// A service name: dot-separated words of ASCII letters, digits, `_` or `-`.
#[must_use]
pub fn is_valid_service(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        })
}

/// Parses RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` (also with `T`) read in `tz`.
///
/// # Errors
/// A lowercase message, also for local times that a DST change skips or repeats.
pub fn parse_time(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    let formats = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ];
    let naive = formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!(
                "invalid time {text:?}: expected RFC 3339 (\"2020-04-20T02:00:00+09:00\") or \
                 \"YYYY-MM-DD HH:MM[:SS]\" in the configured time zone"
            )
        })?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.to_utc()),
        LocalResult::Ambiguous(..) => Err(format!(
            "time {text:?} happens twice in {tz} (daylight saving ends); write it with an offset"
        )),
        LocalResult::None => Err(format!(
            "time {text:?} does not exist in {tz} (daylight saving skips it); write it with an offset"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsetless_times_read_in_the_zone() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let want = DateTime::parse_from_rfc3339("2020-04-20T02:00:00+09:00")
            .unwrap()
            .to_utc();
        assert_eq!(parse_time("2020-04-20 02:00", tokyo), Ok(want));
        assert_eq!(parse_time("2020-04-20 02:00:00", tokyo), Ok(want));
        assert_eq!(parse_time("2020-04-20T02:00:00", tokyo), Ok(want));
        assert_eq!(parse_time("2020-04-19T17:00:00Z", tokyo), Ok(want));
    }

    #[test]
    fn dst_gaps_and_folds_are_errors() {
        let ny = chrono_tz::America::New_York;
        assert!(
            parse_time("2020-03-08 02:30", ny)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            parse_time("2020-11-01 01:30", ny)
                .unwrap_err()
                .contains("happens twice")
        );
    }
}
