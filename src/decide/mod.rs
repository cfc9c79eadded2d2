//! The maintenance decision: loop mark + route + windows + drills + now → [`Action`]. Pure:
//! no I/O, no clock reads; the caller passes `now`.

pub mod path;
pub(crate) mod router;
pub mod snapshot;
pub mod via;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use http::{HeaderMap, Method};
use ipnet::IpNet;

use crate::config::{Kind, Mode, NonCanonicalPaths};
use crate::decide::path::Problem;
use crate::decide::snapshot::Snapshot;
use crate::decide::via::ViaMark;

/// What the request looks like, as far as the decision cares.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Path as the client sent it, without the query.
    pub path: &'a str,
    /// Request headers (drill header, `X-Forwarded-For`).
    pub headers: &'a HeaderMap,
    /// Address of the TCP peer.
    pub peer: IpAddr,
    /// The host the request is for, without port (see `request_host`), if known.
    pub host: Option<&'a str>,
    /// This process's `Via` mark: a request carrying it has looped back.
    pub mark: &'a ViaMark,
}

/// The host a request is for, without the port: the request target's authority (absolute
/// form, or h2's `:authority`), else the `Host` header (RFC 9112 §3.2.2). Case as sent.
#[must_use]
pub(crate) fn request_host<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let authority = match uri.authority() {
        Some(a) => a.as_str(),
        None => headers.get(http::header::HOST)?.to_str().ok()?,
    };
    // Userinfo is not allowed in `Host`; in an absolute target it is ignored (RFC 9110 §4.2.4).
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        // IPv6 literal: the port follows the closing bracket.
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority.split_once(':').map_or(authority, |(h, _)| h)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// A maintenance answer and what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maintain {
    /// Index of the window shown (active, or for a forced drill the next one), if any.
    pub(crate) window: Option<usize>,
    /// When the maintenance ends, if a window is active.
    pub(crate) until: Option<DateTime<Utc>>,
    /// Forced by the drill header rather than by a window.
    pub(crate) forced: bool,
}

/// Why a request is passed through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// No window covers the route now.
    Outside,
    /// The route's kind is `passthrough`.
    PassthroughRoute,
    /// The client is in `drill.bypass_cidrs`.
    Bypass,
    /// The drill header said `pass`.
    DrillHeader,
    /// `report` mode: it would have been answered with maintenance.
    WouldMaintain(Maintain),
}

/// Why the shim refuses a request outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The path is not one the shim can decide on safely (SPEC §4.5): `400`.
    BadPath(Problem),
    /// `CONNECT` or `TRACE` (SPEC §4.6): `405`.
    Method,
}

impl Refusal {
    /// The shim's answer to it.
    #[must_use]
    pub(crate) fn answer(self) -> crate::response::Canned {
        match self {
            Self::BadPath(problem) => crate::response::bad_path(problem.reason()),
            Self::Method => crate::response::method_not_allowed(),
        }
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The request carries this process's own `Via` mark: it has looped back. The shim
    /// answers 508 itself and forwards nothing.
    Loop,
    /// Refused by the shim; nothing goes upstream.
    Refuse(Refusal),
    /// No route matches: the shim answers 404 itself.
    NoRoute,
    /// Forward to the route's upstream.
    Forward {
        /// Route index.
        route: usize,
        /// Why.
        why: Pass,
        /// What the settleMethod drill does to this exchange.
        rewrite: Rewrite,
        /// The request carries a method-override header, which is not forwarded.
        overridden: bool,
        /// The request's path, its parameters kept, is canonical as it is: forwarding
        /// sends it unchanged, without canonicalizing it a second time.
        canonical: bool,
        /// The request carries the drill header (whatever its value), which is not
        /// forwarded.
        drilled: bool,
    },
    /// Answer as the gateway does during maintenance.
    Maintain {
        /// Route index.
        route: usize,
        /// Which window.
        maintain: Maintain,
    },
}

impl Action {
    /// Short label for logs and `explain`.
    #[must_use]
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Loop => "loop",
            Self::Refuse(Refusal::BadPath(_)) => "bad-path",
            Self::Refuse(Refusal::Method) => "method-not-allowed",
            Self::NoRoute => "no-route",
            Self::Maintain { .. } => "maintenance",
            Self::Forward { why, .. } => match why {
                Pass::Outside | Pass::PassthroughRoute => "pass",
                Pass::Bypass => "bypass",
                Pass::DrillHeader => "drill-pass",
                Pass::WouldMaintain(_) => "would-maintain",
            },
        }
    }

    /// The matched route, if any.
    #[must_use]
    pub fn route(&self) -> Option<usize> {
        match self {
            Self::Loop | Self::Refuse(_) | Self::NoRoute => None,
            Self::Forward { route, .. } | Self::Maintain { route, .. } => Some(*route),
        }
    }
}

/// Decides what to do with `req` at `now`, including whether the settleMethod drill
/// rewrites a forwarded exchange. Routes and windows see the canonical path
/// ([`crate::decide::path`]), never the raw one.
#[must_use]
pub fn action(snapshot: &Snapshot, req: RequestInfo<'_>, now: DateTime<Utc>) -> Action {
    let config = &snapshot.config;
    // Before anything else: a looped request is refused whatever it asks for.
    if req.mark.is_in(req.headers) {
        return Action::Loop;
    }
    // A method override is what a framework behind the gateway would act on, so it is what
    // the request is decided as (the header itself is never forwarded: see `OVERRIDES`).
    let (overridden, override_method) = method_override(req.headers);
    let method = override_method.as_ref().unwrap_or(req.method);
    if method == Method::CONNECT || method == Method::TRACE {
        return Action::Refuse(Refusal::Method);
    }
    let (path, canonical) = match crate::decide::path::canonicalize(req.path) {
        Ok(c) if c.rewritten && config.server.non_canonical_paths == NonCanonicalPaths::Refuse => {
            return Action::Refuse(Refusal::BadPath(Problem::NotCanonical));
        }
        Ok(c) => {
            let canonical = c.with_params == req.path;
            (c.path, canonical)
        }
        Err(problem) => return Action::Refuse(Refusal::BadPath(problem)),
    };
    let Some(route) = snapshot.router.find(method, req.host, &path) else {
        return Action::NoRoute;
    };
    // The client, worked out at most once (it may walk X-Forwarded-For).
    let client = std::cell::OnceCell::new();
    let client = || *client.get_or_init(|| client_ip(req, &config.drill.trusted_proxies));
    let drill_line = req.headers.get(&config.drill.header);
    let drilled = drill_line.is_some();
    let drill = drill_line.and_then(drill_value).filter(|_| {
        config
            .drill
            .header_clients
            .as_deref()
            .is_none_or(|nets| in_any(nets, client()))
    });
    let forward = |why| Action::Forward {
        route,
        why,
        rewrite: settle_rewrite(snapshot, route, &path, drill, now),
        overridden,
        canonical,
        drilled,
    };
    if matches!(
        config.routes[route].kind,
        Kind::Passthrough | Kind::Notification
    ) {
        return forward(Pass::PassthroughRoute);
    }
    let timeline = snapshot.timeline(route);
    let active = timeline.active_at(now);
    match drill {
        Some(DrillValue::Pass) => return forward(Pass::DrillHeader),
        Some(DrillValue::Maintenance) => {
            let maintain = Maintain {
                window: active
                    .map(|a| a.window)
                    .or_else(|| timeline.next_window(now)),
                until: active.map(|a| a.until),
                forced: true,
            };
            return Action::Maintain { route, maintain };
        }
        Some(DrillValue::SettleMethod | DrillValue::NoSettleMethod) | None => {}
    }
    let Some(active) = active else {
        return forward(Pass::Outside);
    };
    if !config.drill.bypass_cidrs.is_empty() && in_any(&config.drill.bypass_cidrs, client()) {
        return forward(Pass::Bypass);
    }
    let maintain = Maintain {
        window: Some(active.window),
        until: Some(active.until),
        forced: false,
    };
    match config.maintenance.mode {
        Mode::Enforce => Action::Maintain { route, maintain },
        Mode::Report => forward(Pass::WouldMaintain(maintain)),
    }
}

/// Headers with which a client asks a server to act as if the request had another method.
/// The shim decides on that method and removes them before forwarding.
pub(crate) const OVERRIDES: [http::HeaderName; 2] = [
    http::HeaderName::from_static("x-http-method-override"),
    http::HeaderName::from_static("x-method-override"),
];

/// Whether a method-override header is present, and the method the first one names (if it
/// names a valid one). One pass over the field names, comparing lengths first: cheaper
/// than hashing both names for every request, which almost never has either.
#[must_use]
pub(crate) fn method_override(headers: &HeaderMap) -> (bool, Option<Method>) {
    let mut present = false;
    let mut method = None;
    for (name, value) in headers {
        let name = name.as_str();
        if (name.len() == 22 || name.len() == 17) && OVERRIDES.iter().any(|o| o == name) {
            present = true;
            if method.is_none() {
                method = value.to_str().ok().and_then(|v| {
                    Method::from_bytes(v.trim().to_ascii_uppercase().as_bytes()).ok()
                });
            }
        }
    }
    (present, method)
}

/// What the drill header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillValue {
    /// `maintenance`: answer with maintenance.
    Maintenance,
    /// `pass`: pass through.
    Pass,
    /// `settle-method`: apply the settleMethod drill to this request.
    SettleMethod,
    /// `no-settle-method`: do not apply it.
    NoSettleMethod,
}

/// Reads the drill header (case-insensitive values).
#[must_use]
pub fn drill_header(headers: &HeaderMap, name: &http::HeaderName) -> Option<DrillValue> {
    drill_value(headers.get(name)?)
}

/// The drill header's value (case-insensitive), if it is one of the four.
fn drill_value(value: &http::HeaderValue) -> Option<DrillValue> {
    let value = value.as_bytes();
    [
        (b"maintenance".as_slice(), DrillValue::Maintenance),
        (b"pass", DrillValue::Pass),
        (b"settle-method", DrillValue::SettleMethod),
        (b"no-settle-method", DrillValue::NoSettleMethod),
    ]
    .into_iter()
    .find(|(name, _)| value.eq_ignore_ascii_case(name))
    .map(|(_, v)| v)
}

/// What the settleMethod drill does to one forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Nothing.
    None,
    /// Rewrite `resultData/settleMethod` in the response (E04/F04).
    Response,
    /// Rewrite `settle_method` in the request body (payment-result notification).
    Request,
}

/// Whether the settleMethod drill applies to a request for `route` (canonical `path`) at
/// `now`, given what the (trusted) drill header said.
#[must_use]
pub fn settle_rewrite(
    snapshot: &Snapshot,
    route: usize,
    path: &str,
    drill: Option<DrillValue>,
    now: DateTime<Utc>,
) -> Rewrite {
    let config = &snapshot.config;
    let kind = if config.routes[route].kind == Kind::Notification {
        Rewrite::Request
    } else if snapshot.is_trade_info_path(path) {
        Rewrite::Response
    } else {
        return Rewrite::None;
    };
    let on = match drill {
        Some(DrillValue::SettleMethod) => true,
        Some(DrillValue::NoSettleMethod) => false,
        _ => match config.settle_drill.when {
            crate::config::SettleWhen::Never => false,
            crate::config::SettleWhen::Always => true,
            crate::config::SettleWhen::InWindows => {
                snapshot.settle_timeline().active_at(now).is_some()
            }
        },
    };
    if on { kind } else { Rewrite::None }
}

fn in_any(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
#[must_use]
pub(crate) fn client_ip(req: RequestInfo<'_>, trusted: &[IpNet]) -> IpAddr {
    let mut client = req.peer.to_canonical();
    if !in_any(trusted, client) {
        return client;
    }
    let hops = req
        .headers
        .get_all(http::header::HeaderName::from_static("x-forwarded-for"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !in_any(trusted, client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}
