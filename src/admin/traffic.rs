//! `GET /traffic`: the console's traffic table. Per route of the config in use, plus one
//! entry (`"route": null`) for requests no route took: counts by decision since start, per
//! minute over the last 30 minutes, and whether the route is in maintenance now (so a drill
//! that no merchant request reaches stands out).

use serde_json::{Map, Value, json};

use crate::metrics::Decision;
use crate::metrics::traffic::{Counts, MINUTES};
use crate::state::Shared;

/// The `/traffic` document.
#[must_use]
pub(crate) fn traffic(shared: &Shared) -> Value {
    let now = shared.clock.now();
    let current = shared.current();
    let snapshot = &current.snapshot;
    let board = &shared.metrics.traffic;
    let mut routes: Vec<Value> = snapshot
        .config
        .routes
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let mut entry = counts_json(&board.counts(Some(&route.id)));
            entry.insert("route".into(), json!(route.id));
            entry.insert("service".into(), json!(route.service));
            entry.insert("kind".into(), json!(route.kind.as_str()));
            entry.insert(
                "maintenance_now".into(),
                json!(snapshot.timeline(i).active_at(now).is_some()),
            );
            Value::Object(entry)
        })
        .collect();
    let mut no_route = counts_json(&board.counts(None));
    no_route.insert("route".into(), Value::Null);
    no_route.insert("maintenance_now".into(), json!(false));
    routes.push(Value::Object(no_route));
    json!({
        "minutes": MINUTES,
        "mode": snapshot.config.maintenance.mode.as_str(),
        "routes": routes,
    })
}

/// `{"total": {decision: n}, "per_minute": {decision: [n; MINUTES]}}`, keyed by the
/// metrics' decision labels.
fn counts_json(counts: &Counts) -> Map<String, Value> {
    let mut total = Map::new();
    let mut per_minute = Map::new();
    for d in Decision::ALL {
        total.insert(d.as_str().into(), json!(counts.total[d as usize]));
        per_minute.insert(d.as_str().into(), json!(counts.per_minute[d as usize]));
    }
    let mut entry = Map::new();
    entry.insert("total".into(), Value::Object(total));
    entry.insert("per_minute".into(), Value::Object(per_minute));
    entry
}
