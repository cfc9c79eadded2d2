//! The process's own sections: `[listen]`, `[admin]` (its bearer token from the
//! environment), `[clock]` and `[server]`.

use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;
use toml::Spanned;

use super::Checker;
use crate::config::raw::{RawAdmin, RawClock, RawListen, RawServer, Str};
use crate::config::{Admin, ClockConfig, EnvLookup, Listen, Secret, Server};

impl Checker<'_> {
    pub(super) fn listen(&mut self, raw: &RawListen) -> Listen {
        Listen {
            proxy: self.addr(raw.proxy.as_ref(), "0.0.0.0:8080"),
            admin: self.addr(raw.admin.as_ref(), "127.0.0.1:9090"),
            tls: raw
                .tls
                .as_ref()
                .map(|tls| self.addr(Some(tls), "0.0.0.0:8443")),
        }
    }

    /// `[admin]`; `listen_admin` is where `[listen] admin` was written (or nothing), for the
    /// error that a non-loopback admin listener needs a token.
    pub(super) fn admin(
        &mut self,
        raw: &RawAdmin,
        admin_addr: SocketAddr,
        listen_admin: Option<&Str>,
        env: &EnvLookup,
    ) -> Admin {
        let mut admin = Admin {
            allowed_origins: self.origins(raw.allowed_origins.as_deref()),
            token_env: raw.token_env.as_ref().map(|s| s.get_ref().clone()),
            token: None,
            state_dir: raw.state_dir.as_ref().and_then(|dir| {
                if dir.get_ref().trim().is_empty() {
                    self.err(dir.span(), "`state_dir` must be a directory path");
                    return None;
                }
                Some(self.base_dir.join(dir.get_ref()))
            }),
            max_drills: self.count(raw.max_drills.as_ref(), crate::config::DEFAULT_MAX_DRILLS),
            max_drill_duration: self.max_drill_duration(raw.max_drill_duration.as_ref()),
        };
        if let Some(var) = &raw.token_env {
            admin.token = self.token(var, env);
        }
        if admin.token_env.is_none() && !admin_addr.ip().is_loopback() {
            let span = listen_admin.map_or(0..0, Spanned::span);
            self.err(
                span,
                format!(
                    "admin listener {admin_addr} is not on a loopback address, so \
                     `admin.token_env` must name a bearer token"
                ),
            );
        }
        admin
    }

    /// `[admin] max_drill_duration`: from 1s to the ceiling the fleet CLI also checks.
    fn max_drill_duration(&mut self, raw: Option<&Str>) -> Duration {
        let ceiling = crate::config::MAX_DRILL_DURATION;
        let value = self.duration(raw, ceiling);
        if let Some(raw) = raw
            && (value < Duration::from_secs(1) || value > ceiling)
        {
            self.err(raw.span(), "`max_drill_duration` must be from 1s to 7d");
            return ceiling;
        }
        value
    }

    /// The bearer token in the environment variable `var` names.
    fn token(&mut self, var: &Str, env: &EnvLookup) -> Option<Secret> {
        let name = var.get_ref();
        if name.is_empty() || name.contains('=') {
            self.err(
                var.span(),
                "`token_env` must be an environment variable name",
            );
            return None;
        }
        match env(name) {
            Some(token) if token.trim().len() >= 16 => Some(Secret::new(token.trim().to_string())),
            Some(_) => {
                self.err(
                    var.span(),
                    format!("environment variable {name} holds a token shorter than 16 characters"),
                );
                None
            }
            None => {
                self.err(
                    var.span(),
                    format!("`token_env` names {name}, but that environment variable is not set"),
                );
                None
            }
        }
    }

    pub(super) fn clock(&mut self, raw: &RawClock) -> ClockConfig {
        let timezone = match &raw.timezone {
            None => chrono_tz::Asia::Tokyo,
            Some(tz) => tz.get_ref().parse::<Tz>().unwrap_or_else(|_| {
                self.err(
                    tz.span(),
                    format!(
                        "unknown time zone {:?} (use an IANA name such as \"Asia/Tokyo\")",
                        tz.get_ref()
                    ),
                );
                chrono_tz::Asia::Tokyo
            }),
        };
        let start_at = raw.start_at.as_ref().and_then(|v| self.time(v, timezone));
        let speed = match &raw.speed {
            None => 1.0,
            Some(s) if s.get_ref().is_finite() && *s.get_ref() > 0.0 => *s.get_ref(),
            Some(s) => {
                self.err(s.span(), "`speed` must be a positive number");
                1.0
            }
        };
        let anchor = raw.anchor.as_ref().and_then(|v| self.time(v, timezone));
        if raw.start_at.is_none() {
            for (key, span) in [
                ("speed", raw.speed.as_ref().map(Spanned::span)),
                ("anchor", raw.anchor.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    self.err(
                        span,
                        format!("`{key}` needs `start_at` (the drill clock's starting instant)"),
                    );
                }
            }
        }
        ClockConfig {
            timezone,
            start_at,
            speed,
            anchor,
        }
    }

    pub(super) fn server(&mut self, raw: &RawServer) -> Server {
        Server {
            shutdown_grace: self.duration(raw.shutdown_grace.as_ref(), Duration::from_secs(30)),
            header_read_timeout: self
                .duration(raw.header_read_timeout.as_ref(), Duration::from_secs(30)),
            watch_config: raw.watch_config.unwrap_or(true),
            max_header_bytes: self.bytes(raw.max_header_bytes.as_ref(), 64 * 1024, 8192),
            max_request_body: self.bytes(raw.max_request_body.as_ref(), 64 << 20, 1) as u64,
            worker_threads: raw.worker_threads.as_ref().map(|n| {
                usize::try_from(*n.get_ref())
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .unwrap_or_else(|| {
                        self.err(n.span(), "`worker_threads` must be between 1 and 256");
                        1
                    })
            }),
            body_read_timeout: self
                .duration(raw.body_read_timeout.as_ref(), Duration::from_secs(30)),
            keepalive_timeout: self
                .duration(raw.keepalive_timeout.as_ref(), Duration::from_secs(30)),
            max_connections: self.count(raw.max_connections.as_ref(), 10_000),
            max_upstream_per_client: self.count(raw.max_upstream_per_client.as_ref(), 8),
            non_canonical_paths: raw.non_canonical_paths.unwrap_or_default(),
        }
    }
}
