//! Human-readable output of `check` (the timeline, TLS, warnings), pure functions of their
//! inputs, and [`explain`] (one request through the real stack, and its exact answer).

pub mod explain;
pub mod loopcheck;

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use http::Method;

use crate::config::{CertSource, Config, Kind, PathMatch};
use crate::decide::snapshot::Snapshot;
use crate::inspect::loopcheck::SelfLoop;
use crate::response::window_text;

/// The instance id `explain` stands in for a running shim's random one: a request whose
/// `Via` carries `webcollect-shim-explain` shows the loop answer.
pub(crate) const EXPLAIN_VIA_ID: &str = "explain";

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The drill clock's settings in words, or `None` on real time.
fn drill_clock(config: &crate::config::Config) -> Option<String> {
    let clock = &config.clock;
    let tz = clock.timezone;
    let start = clock.start_at?;
    let from = match clock.anchor {
        Some(anchor) => format!(
            "at the real instant {} ({})",
            local(anchor, tz),
            utc(anchor)
        ),
        None => "when the process starts".to_string(),
    };
    Some(format!(
        "reads {} {from} and runs at {}x",
        local(start, tz),
        clock.speed
    ))
}

/// `check`'s report: windows (local and UTC), routes, and the next transitions after `now`.
#[must_use]
pub fn timeline(snapshot: &Snapshot, now: DateTime<Utc>) -> String {
    let config = &snapshot.config;
    let tz = config.clock.timezone;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok ({} routes, {} windows, {} recurring windows, {} upstreams)",
        config.path.display(),
        config.routes.len(),
        config.windows.len(),
        config.recurring.len(),
        config.upstreams.len()
    );
    let _ = writeln!(
        out,
        "time zone: {tz}; now: {} ({})",
        local(now, tz),
        utc(now)
    );
    let _ = writeln!(out, "sha256: {}", config.digest);
    if let Some(clock) = drill_clock(config) {
        let _ = writeln!(out, "drill clock: {clock}");
    }
    let _ = writeln!(
        out,
        "mode: {}; error code: {}",
        config.maintenance.mode.as_str(),
        config.maintenance.error_code
    );

    let _ = writeln!(out, "\nwindows:");
    if config.windows.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for w in &config.windows {
        let _ = writeln!(out, "  {}  {}", w.id, w.title);
        let _ = writeln!(
            out,
            "    {} ({} → {})",
            window_text(w.start, w.end, tz),
            local(w.start, tz),
            local(w.end, tz)
        );
        let _ = writeln!(out, "    UTC {} → {}", utc(w.start), utc(w.end));
        let _ = writeln!(out, "    services: {}", w.services.join(", "));
    }

    if !config.recurring.is_empty() {
        let _ = writeln!(out, "\nrecurring windows:");
    }
    for r in &config.recurring {
        let _ = writeln!(out, "  {}  {}", r.id, r.title);
        let _ = writeln!(
            out,
            "    cron \"{}\" in {}, each lasting {}",
            r.pattern,
            r.timezone,
            crate::config::format_duration(r.duration)
        );
        let _ = writeln!(out, "    services: {}", r.services.join(", "));
        let next: Vec<_> = r.occurrences(now, now + crate::decide::snapshot::Snapshot::HORIZON);
        if next.is_empty() {
            let _ = writeln!(out, "    no occurrence in the next 400 days");
        }
        for w in next.iter().take(5) {
            let _ = writeln!(
                out,
                "    next: {} ({} → {}; UTC {} → {})",
                window_text(w.start, w.end, r.timezone),
                local(w.start, r.timezone),
                local(w.end, r.timezone),
                utc(w.start),
                utc(w.end)
            );
        }
    }

    let _ = writeln!(out, "\nroutes (first match wins):");
    for r in &config.routes {
        let methods = r.methods.as_ref().map_or_else(
            || "*".to_string(),
            |ms| ms.iter().map(Method::as_str).collect::<Vec<_>>().join(","),
        );
        let path = match &r.path {
            PathMatch::Exact(ps) => ps.join(" "),
            PathMatch::Prefix(p) => format!("{p}*"),
        };
        let upstream = config.upstream_of(r);
        let covered: Vec<&str> = config
            .windows
            .iter()
            .map(|w| (w.id.as_str(), &w.services))
            .chain(
                config
                    .recurring
                    .iter()
                    .map(|w| (w.id.as_str(), &w.services)),
            )
            .filter(|(_, services)| {
                r.kind != Kind::Passthrough
                    && services
                        .iter()
                        .any(|s| crate::schedule::covers(s, &r.service))
            })
            .map(|(id, _)| id)
            .collect();
        let host = r
            .host
            .as_ref()
            .map(|h| format!("host {h}: "))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<24} {:<6} {:<11} service={} upstream={} ({}) windows=[{}]\n    {host}{path}",
            r.id,
            methods,
            r.kind.as_str(),
            r.service,
            upstream.name,
            upstream.url.to_string().trim_end_matches('/'),
            covered.join(", "),
        );
    }

    let _ = writeln!(out, "\nnext transitions:");
    let mut events: Vec<(DateTime<Utc>, &str, &str)> = snapshot
        .windows
        .iter()
        .flat_map(|w| {
            [
                (w.start, "starts", w.id.as_str()),
                (w.end, "ends", w.id.as_str()),
            ]
        })
        .filter(|(t, _, _)| *t > now)
        .collect();
    events.sort();
    if events.is_empty() {
        let _ = writeln!(out, "  (none after now)");
    }
    for (t, what, id) in events.iter().take(10) {
        let _ = writeln!(
            out,
            "  {}  ({})  window {id} {what}",
            local(*t, tz),
            utc(*t)
        );
    }
    out
}

/// `check`'s TLS paragraph. `ca_present` says whether `[tls] ca_dir` already holds a CA
/// (`None` when certificates come from files or no source is set).
#[must_use]
pub fn tls(config: &Config, ca_present: Option<bool>) -> String {
    let tls = &config.tls;
    let mut out = String::new();
    let Some(addr) = config.listen.tls else {
        let _ = writeln!(out, "\ntls: off ([listen] tls is not set)");
        return out;
    };
    let _ = writeln!(out, "\ntls: {addr} (HTTP/1.1 and h2 by ALPN)");
    match &tls.source {
        Some(CertSource::LocalCa(dir)) => {
            let state = if ca_present == Some(true) {
                "present"
            } else {
                "created on first start"
            };
            let _ = writeln!(
                out,
                "  certificates: local CA in {} ({state}); leaves valid {}, reissued at two thirds",
                dir.display(),
                crate::config::format_duration(
                    TimeDelta::from_std(tls.leaf_validity).unwrap_or_default()
                )
            );
        }
        Some(CertSource::Files { cert, key }) => {
            let _ = writeln!(
                out,
                "  certificates: {} with key {}",
                cert.display(),
                key.display()
            );
        }
        None => {}
    }
    let _ = writeln!(out, "  hosts: {}", tls.hosts.join(", "));
    out
}

/// `check`'s warnings about upstreams that lead back to the shim ([`crate::inspect::loopcheck`]).
#[must_use]
pub fn self_loops(config: &Config, loops: &[SelfLoop]) -> String {
    let mut out = String::new();
    if loops.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nwarnings:");
    for l in loops {
        let url = config
            .upstreams
            .iter()
            .find(|u| u.name == l.upstream)
            .map_or_else(String::new, |u| {
                u.url.to_string().trim_end_matches('/').to_string()
            });
        let _ = writeln!(
            out,
            "  upstream {} ({url}) connects to {}, this shim's own {} listener: its requests \
             would come back here (answered 508). Set its `connect_to` to the real host's address.",
            l.upstream, l.addr, l.listener
        );
    }
    out
}
