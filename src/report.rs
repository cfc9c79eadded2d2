//! Human-readable output of `check` (the timeline) and `explain` (one decision and its exact
//! answer). Pure functions of a snapshot and an instant: no network, no clock reads.

use std::fmt::Write as _;
use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use http::{HeaderMap, Method};

use crate::config::{Kind, PathMatch};
use crate::decide::{Action, Pass, RequestInfo, decide};
use crate::response::{self, window_text};
use crate::snapshot::Snapshot;

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
        let next: Vec<_> = r.occurrences(now, now + crate::snapshot::Snapshot::HORIZON);
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
        let _ = writeln!(
            out,
            "  {:<24} {:<6} {:<11} service={} upstream={} ({}) windows=[{}]\n    {path}",
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
    let action = decide(
        snapshot,
        RequestInfo {
            method,
            path,
            headers,
            peer: client_ip,
        },
        at,
    );
    let mut out = String::new();
    let _ = writeln!(out, "request:  {method} {path} from {client_ip}");
    match crate::path::canonicalize(path) {
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
        Action::Refuse(refusal) => {
            let why = match refusal {
                crate::decide::Refusal::BadPath(problem) => problem.reason(),
                crate::decide::Refusal::Method => "CONNECT and TRACE are never forwarded",
            };
            let _ = writeln!(out, "decision: {} ({why})", action.label());
            let _ = writeln!(out, "upstream: not contacted");
            Some(response::refusal(refusal))
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
        } => {
            let upstream = config.upstream_of(&config.routes[route]);
            let reason = match why {
                Pass::Outside => "no window covers this route now".to_string(),
                Pass::PassthroughRoute => "the route's kind is passthrough".to_string(),
                Pass::Head => "HEAD requests are never blocked".to_string(),
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
                "upstream: {} {}{target}\n          the response is the upstream's, minus hop-by-hop headers",
                method,
                upstream.url.to_string().trim_end_matches('/'),
            );
            None
        }
    };
    if let Some(answer) = answer {
        let _ = writeln!(out, "response:\n{}", answer.to_http_text());
    }
    out
}
