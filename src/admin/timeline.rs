//! `GET /timeline`: what the console's timeline and "now" panel draw. Every window the
//! shim enforces from one day back to seven days ahead of its now (one-off windows, each
//! occurrence of recurring ones, open drills: the compiled snapshot's list, so the page
//! shows what the decisions use), the recurring patterns, and each known service's state.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::{rfc3339, window_json};
use crate::config::format_duration;
use crate::decide::snapshot::Snapshot;
use crate::schedule::{Source, Window};
use crate::schedule::{Timeline, covers};
use crate::state::Shared;

/// How far back the timeline starts.
pub(crate) const BACK: TimeDelta = TimeDelta::days(1);
/// How far ahead it ends.
pub(crate) const AHEAD: TimeDelta = TimeDelta::days(7);
/// At most this many occurrences are listed (a cron firing every few minutes would
/// otherwise make the page fetch megabytes every few seconds); `truncated` says so.
const MAX_WINDOWS: usize = 2_000;

/// Services of the real gateway with their names in the notice, so the "now" panel can say
/// which stay up (auかんたん決済 and 銀行振込 during the 2020-04-20 window) even when no route
/// or window names them. Only the families the config uses (`webcollect`, `atobarai`) are
/// shown.
const CATALOG: &[(&str, &str, &str)] = &[
    ("webcollect", "クロネコwebコレクト", "Kuroneko webCollect"),
    (
        "webcollect.credit_card",
        "クレジットカード決済",
        "Credit card",
    ),
    (
        "webcollect.credit_card.token",
        "カード トークン",
        "Card tokens",
    ),
    (
        "webcollect.cvs_online",
        "コンビニ(オンライン払い)",
        "Convenience store (online)",
    ),
    ("webcollect.e_money", "電子マネー", "E-money"),
    ("webcollect.net_bank", "ネットバンク", "Net bank"),
    (
        "webcollect.trade_info",
        "取引情報照会",
        "Trade-info inquiry",
    ),
    ("webcollect.shipment", "出荷情報登録", "Shipment entry"),
    ("webcollect.paypay", "PayPay", "PayPay"),
    (
        "webcollect.trader_ip",
        "グローバルIPアドレス照会",
        "Global IP address inquiry",
    ),
    ("webcollect.xp", "切売 (XP)", "XP"),
    (
        "webcollect.link",
        "リンク方式 (決済画面)",
        "Link method (payment page)",
    ),
    ("webcollect.api", "その他のAPI", "Other API functions"),
    (
        "webcollect.admin_screen",
        "加盟店管理画面",
        "Merchant admin screen",
    ),
    (
        "atobarai",
        "クロネコ代金後払い",
        "Kuroneko deferred payment",
    ),
    ("atobarai.api", "後払い API", "Deferred payment API"),
    (
        "atobarai.credit_card",
        "後払い クレジットカード",
        "Deferred: credit card",
    ),
    (
        "atobarai.cvs_online",
        "後払い コンビニ払い",
        "Deferred: convenience store",
    ),
    ("atobarai.kuroneko_pay", "クロネコペイ", "Kuroneko Pay"),
    ("atobarai.au_easy", "auかんたん決済", "au Easy Payment"),
    ("atobarai.bank_transfer", "銀行振込", "Bank transfer"),
];

/// The `/timeline` document.
#[must_use]
pub(crate) fn timeline(shared: &Shared) -> Value {
    let now = shared.clock.now();
    let current = shared.current();
    let snapshot = &current.snapshot;
    let config = &snapshot.config;
    let tz = config.clock.timezone;
    let (from, to) = (now - BACK, now + AHEAD);
    let mut shown: Vec<&Window> = snapshot
        .windows
        .iter()
        .filter(|w| w.start < to && w.end > from)
        .collect();
    // Stable: windows starting together keep file order.
    shown.sort_by_key(|w| w.start);
    let truncated = shown.len() > MAX_WINDOWS;
    shown.truncate(MAX_WINDOWS);
    let recurring: Vec<Value> = config
        .recurring
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "title": r.title,
                "cron": r.pattern,
                "timezone": r.timezone.name(),
                "duration": format_duration(r.duration),
                "services": r.services,
            })
        })
        .collect();
    json!({
        "now": rfc3339(now, tz),
        "from": rfc3339(from, tz),
        "to": rfc3339(to, tz),
        "timezone": tz.name(),
        "windows": shown.iter().map(|w| window_json(w, now)).collect::<Vec<_>>(),
        "truncated": truncated,
        "recurring": recurring,
        "services": services(snapshot, now),
    })
}

/// Every service the config names (routes, windows, drills, and their dotted ancestors),
/// plus the catalog's services of the same families, each with its state now.
fn services(snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<Value> {
    let config = &snapshot.config;
    let windows = &snapshot.windows;
    let tz = config.clock.timezone;
    // name → routes whose service it is.
    let mut names: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for route in &config.routes {
        names
            .entry(route.service.clone())
            .or_default()
            .push(&route.id);
    }
    let named = config
        .windows
        .iter()
        .chain(windows.iter().filter(|w| w.source == Source::Drill))
        .flat_map(|w| &w.services)
        .chain(config.recurring.iter().flat_map(|r| &r.services));
    for service in named {
        names.entry(service.clone()).or_default();
    }
    for name in names.keys().cloned().collect::<Vec<_>>() {
        for (i, _) in name.match_indices('.') {
            names.entry(name[..i].to_owned()).or_default();
        }
    }
    // What the config names: the choices for a new drill.
    let configured: Vec<String> = names.keys().cloned().collect();
    for (name, _, _) in CATALOG {
        let family = name.split('.').next().unwrap_or(name);
        if names.contains_key(family) {
            names.entry((*name).to_owned()).or_default();
        }
    }
    let all: Vec<&String> = names.keys().collect();
    names
        .iter()
        .map(|(name, routes)| {
            let label = CATALOG.iter().find(|(n, _, _)| n == name);
            // Only the windows that matter for this service now: its timeline from them
            // gives the responsible window and where chained windows end.
            let relevant: Vec<Window> = windows
                .iter()
                .filter(|w| w.end > now && w.services.iter().any(|s| covers(s, name)))
                .cloned()
                .collect();
            let maintenance = Timeline::build(&relevant, name).active_at(now).map(|a| {
                let w = &relevant[a.window];
                json!({
                    "window": w.id,
                    "title": w.title,
                    "source": w.source.as_str(),
                    "until": rfc3339(a.until, tz),
                })
            });
            json!({
                "name": name,
                "ja": label.map(|l| l.1),
                "en": label.map(|l| l.2),
                "routes": routes,
                "configured": configured.contains(name),
                // A top-level name that groups others (`webcollect`): offered when opening
                // a drill, not listed as a service of its own.
                "family": !name.contains('.')
                    && all.iter().any(|other| other.len() > name.len() && covers(name, other)),
                "maintenance": maintenance,
            })
        })
        .collect()
}
