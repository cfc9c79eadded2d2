//! Human-readable output of `check` (the timeline, TLS, warnings) and `explain` (one decision
//! and its exact answer). Pure functions of their inputs: no network, no clock reads.

pub mod loopcheck;

use std::fmt::Write as _;
use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use http::{HeaderMap, Method};

use crate::config::{CertSource, Config, Kind, PathMatch};
use crate::decide::snapshot::Snapshot;
use crate::decide::via::ViaMark;
use crate::decide::{Action, Pass, RequestInfo, decide, request_host};
use crate::inspect::loopcheck::SelfLoop;
use crate::response::{self, window_text};

/// The instance id `explain` stands in for a running shim's random one: a request whose
/// `Via` carries `webcollect-shim-explain` shows the loop answer.
pub const EXPLAIN_VIA_ID: &str = "explain";

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

/// `explain`'s report: the decision for one request at `at`, and the exact answer.
#[must_use]
pub fn explain(
    snapshot: &Snapshot,
    at: DateTime<Utc>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    client_ip: IpAddr,
) -> String {
    let config = &snapshot.config;
    let tz = config.clock.timezone;
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let mark = ViaMark::named(EXPLAIN_VIA_ID);
    // `explain` takes an origin-form path: the host can only come from a `Host` header.
    let origin_form = http::Uri::default();
    let host = request_host(&origin_form, headers);
    let action = decide(
        snapshot,
        RequestInfo {
            method,
            path,
            headers,
            peer: client_ip,
            host,
            mark: &mark,
        },
        at,
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "request:  {method} {path} from {client_ip}{}",
        host.map(|h| format!(" for host {h}")).unwrap_or_default()
    );
    match crate::decide::path::canonicalize(path) {
        Ok(c) if c.path != path => {
            let note = if c.rewritten {
                "differs from the request's"
            } else {
                "the request's without path parameters"
            };
            let _ = writeln!(out, "path:     {} (canonical; {note})", c.path);
        }
        Ok(_) => {}
        Err(problem) => {
            let _ = writeln!(out, "path:     refused: {}", problem.reason());
        }
    }
    let _ = writeln!(out, "at:       {} ({})", local(at, tz), utc(at));
    if let Some(clock) = drill_clock(config) {
        // --at is the shim's (drill) now: say which clock that is.
        let _ = writeln!(out, "clock:    drill clock {clock}");
    }
    if let Some(r) = action.route() {
        let route = &config.routes[r];
        let upstream = config.upstream_of(route);
        let _ = writeln!(
            out,
            "route:    {} (kind {}, service {}, upstream {} {})",
            route.id,
            route.kind.as_str(),
            route.service,
            upstream.name,
            upstream.url.to_string().trim_end_matches('/')
        );
    } else {
        let _ = writeln!(out, "route:    none");
    }
    let window_line = |w: Option<usize>, until: Option<DateTime<Utc>>| {
        let mut s = String::new();
        if let Some(w) = w {
            let w = &snapshot.windows[w];
            let _ = write!(s, " window {} ({})", w.id, window_text(w.start, w.end, tz));
        }
        if let Some(until) = until {
            let _ = write!(s, " until {}", local(until, tz));
        }
        s
    };
    let answer = match action {
        Action::Loop => {
            let _ = writeln!(
                out,
                "decision: loop (the request's Via carries this shim's own mark, {}: it has \
                 been here before)",
                mark.pseudonym()
            );
            let _ = writeln!(out, "upstream: not contacted");
            Some(response::loop_detected())
        }
        Action::Refuse(refusal) => {
            let why = match refusal {
                crate::decide::Refusal::BadPath(problem) => problem.reason(),
                crate::decide::Refusal::Method => "CONNECT and TRACE are never forwarded",
            };
            let _ = writeln!(out, "decision: {} ({why})", action.label());
            let _ = writeln!(out, "upstream: not contacted");
            Some(refusal.answer())
        }
        Action::NoRoute => {
            let _ = writeln!(out, "decision: no-route (the shim answers 404 itself)");
            Some(response::no_route())
        }
        Action::Maintain { route, maintain } => {
            let forced = if maintain.forced {
                " (forced by the drill header)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "decision: maintenance{forced}{}",
                window_line(maintain.window, maintain.until)
            );
            let _ = writeln!(out, "upstream: not contacted");
            Some(snapshot.maintenance_answer(route, maintain, path, at))
        }
        Action::Forward {
            route,
            why,
            rewrite,
            ..
        } => {
            let upstream = config.upstream_of(&config.routes[route]);
            let reason = match why {
                Pass::Outside => "no window covers this route now".to_string(),
                Pass::PassthroughRoute => "the route's kind is passthrough".to_string(),
                Pass::Bypass => "the client is in drill.bypass_cidrs".to_string(),
                Pass::DrillHeader => format!("the {} header says pass", config.drill.header),
                Pass::WouldMaintain(m) => format!(
                    "report mode: would have answered maintenance{}; the response carries X-Webcollect-Shim: would-maintain",
                    window_line(m.window, m.until)
                ),
            };
            let _ = writeln!(out, "decision: {} ({reason})", action.label());
            let drill = &config.settle_drill;
            let settle = match rewrite {
                crate::decide::Rewrite::Response => format!(
                    "applies: resultData/settleMethod in the response becomes {} (bodies up to {} bytes)",
                    drill.value, drill.max_body
                ),
                crate::decide::Rewrite::Request => format!(
                    "applies: settle_method in the relayed notification becomes {}",
                    drill.value
                ),
                crate::decide::Rewrite::None => {
                    format!("does not apply (when = {})", drill.when.as_str())
                }
            };
            let _ = writeln!(out, "settleMethod drill: {settle}");
            let _ = writeln!(
                out,
                "upstream: {} {}{target}{}\n          marked `Via: {}` (a running shim uses a random id \
                 instead of `{EXPLAIN_VIA_ID}`)\n          the response is the upstream's, minus hop-by-hop headers",
                method,
                upstream.url.to_string().trim_end_matches('/'),
                upstream
                    .connect_to
                    .map(|to| format!(" (connecting to {to})"))
                    .unwrap_or_default(),
                mark.entry(http::Version::HTTP_11)
                    .to_str()
                    .unwrap_or_default(),
            );
            None
        }
    };
    if let Some(answer) = answer {
        let _ = writeln!(out, "response:\n{}", answer.to_http_text());
    }
    out
}
