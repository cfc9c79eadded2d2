//! A report from journal records: traffic, retries, recovery, leaks, a timeline and
//! verdicts, for one window occurrence, one drill, or a time range. Pure: the same records
//! give the same report, whichever replica or process builds it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, SubsecRound as _, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::Record;
use crate::config::Thresholds;
use crate::schedule::covers;

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SubjectKind {
    /// A `[[windows]]` entry (one occurrence of a recurring one).
    Window,
    /// An ad-hoc drill.
    Drill,
    /// A time range, every service.
    Range,
}

/// The window, drill or range a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Subject {
    /// Window, drill or range.
    pub(crate) kind: SubjectKind,
    /// The window's or drill's id (none for a range).
    pub(crate) id: Option<String>,
    /// Its title.
    pub(crate) title: String,
    /// First instant in maintenance (drill time).
    pub(crate) start: DateTime<FixedOffset>,
    /// First instant after it.
    pub(crate) end: DateTime<FixedOffset>,
    /// Services covered; empty for a range (every service).
    pub(crate) services: Vec<String>,
}

impl Subject {
    fn covers(&self, record: &Record) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| covers(s, &record.service))
    }
}

/// The drill-time span a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Span {
    /// `start - [report] before`.
    pub(crate) from: DateTime<FixedOffset>,
    /// `end + [report] after`.
    pub(crate) to: DateTime<FixedOffset>,
    /// Where the report stops looking: `to`, or now if that is earlier. Orders with no
    /// success before it are stranded.
    pub(crate) horizon: DateTime<FixedOffset>,
}

/// Request counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Requests {
    /// Every record in the span.
    pub(crate) total: u64,
    /// Those inside the window, on services it covers.
    pub(crate) in_window: u64,
    /// By decision, over the span.
    pub(crate) by_decision: BTreeMap<String, u64>,
    /// By service, then decision.
    pub(crate) by_service: BTreeMap<String, BTreeMap<String, u64>>,
    /// By `function_div` (`-` when the body had none).
    pub(crate) by_function_div: BTreeMap<String, u64>,
}

/// One order (`trader_code` + `order_no`) attempted during the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReportedOrder {
    /// `order_no`.
    pub(crate) order_no: String,
    /// `trader_code` (empty when the body had none).
    pub(crate) trader_code: String,
    /// Requests for it during the window.
    pub(crate) attempts: u64,
    /// Its first success after the window started, if any.
    pub(crate) first_success: Option<DateTime<FixedOffset>>,
}

/// Orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Orders {
    /// Distinct orders in the span.
    pub(crate) distinct: u64,
    /// Distinct traders in the span.
    pub(crate) traders: u64,
    /// Orders attempted more than once during the window.
    pub(crate) retried: u64,
    /// The most attempts of one order during the window.
    pub(crate) max_attempts: u64,
    /// Every order attempted during the window, most attempts first.
    pub(crate) attempted: Vec<ReportedOrder>,
    /// Attempted during the window, successful after it.
    pub(crate) recovered: Vec<ReportedOrder>,
    /// Attempted during the window, no success before the horizon.
    pub(crate) stranded: Vec<ReportedOrder>,
    /// Successful during the window (through a bypass, the drill header or report mode).
    pub(crate) succeeded_in_window: Vec<ReportedOrder>,
}

/// A trader's busiest minute of the window: a hammering signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Trader {
    /// `trader_code`.
    pub(crate) trader_code: String,
    /// Its requests during the window.
    pub(crate) requests: u64,
    /// The minute with the most of them.
    pub(crate) busiest_minute: DateTime<FixedOffset>,
    /// How many in that minute.
    pub(crate) busiest_minute_requests: u64,
}

/// A service's recovery after the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recovery {
    /// Service.
    pub(crate) service: String,
    /// Its first success at or after the window's end, before the horizon.
    pub(crate) first_success: Option<DateTime<FixedOffset>>,
    /// How long after the end, in seconds of drill time.
    pub(crate) after_end_seconds: Option<f64>,
}

/// A request that reached an upstream while its service was in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Leak {
    /// When (drill time).
    pub(crate) at: DateTime<FixedOffset>,
    /// Replica.
    pub(crate) replica: String,
    /// Request id.
    pub(crate) request_id: String,
    /// Route.
    pub(crate) route: String,
    /// Service.
    pub(crate) service: String,
    /// Method.
    pub(crate) method: String,
    /// The decision that let it through.
    pub(crate) decision: String,
    /// Why, in words.
    pub(crate) reason: String,
    /// Status the client got.
    pub(crate) status: u16,
    /// `trader_code`, if any.
    pub(crate) trader_code: Option<String>,
    /// `order_no`, if any.
    pub(crate) order_no: Option<String>,
}

/// Requests per bucket, by decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RequestTimeline {
    /// Width of a bucket in seconds of drill time (60, or more for long spans).
    pub(crate) bucket_seconds: i64,
    /// Buckets from the span's start to the horizon, in order.
    pub(crate) buckets: Vec<Bucket>,
}

/// One bucket of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bucket {
    /// Its first instant.
    pub(crate) start: DateTime<FixedOffset>,
    /// Requests by decision (only decisions seen).
    pub(crate) by_decision: BTreeMap<String, u64>,
}

/// A pass/fail judgement with its threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `stranded`, `attempts_per_order`, `leaks` or `complete`.
    pub name: String,
    /// Passed.
    pub(crate) ok: bool,
    /// What was measured against what.
    pub(crate) detail: String,
    /// The orders or requests that fail it.
    pub(crate) offenders: Vec<String>,
}

/// A report: the JSON of `GET /report` and `webcollect-shim report --format json`
/// (docs/reports.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What it is about.
    pub(crate) subject: Subject,
    /// The span read.
    pub(crate) span: Span,
    /// The zone times are shown in (`clock.timezone`).
    pub(crate) timezone: String,
    /// True until the horizon reaches `span.to`: orders not yet successful count as
    /// stranded, but may still recover. Ask again after `span.to` for the final report.
    pub(crate) provisional: bool,
    /// False when records were dropped or a replica did not answer.
    pub(crate) complete: bool,
    /// Why it is incomplete.
    pub(crate) incomplete: Vec<String>,
    /// Replicas whose records it holds.
    pub(crate) replicas: Vec<String>,
    /// The thresholds of the verdicts.
    pub(crate) thresholds: Thresholds,
    /// Request counts.
    pub(crate) requests: Requests,
    /// Orders.
    pub(crate) orders: Orders,
    /// Traders seen during the window, busiest first.
    pub(crate) traders: Vec<Trader>,
    /// Per service, the first success after the window.
    pub(crate) recovery: Vec<Recovery>,
    /// Requests that reached an upstream while their service was in the window.
    pub(crate) leaks: Vec<Leak>,
    /// Requests over time.
    pub(crate) timeline: RequestTimeline,
    /// Verdicts; the report passes when every one is `ok`.
    pub(crate) verdicts: Vec<Verdict>,
}

/// What a report is built from.
#[derive(Debug, Clone)]
pub(crate) struct Input<'a> {
    /// What it is about.
    pub(crate) subject: Subject,
    /// The span read.
    pub(crate) span: Span,
    /// Every record available (those outside the span are ignored; duplicates, by
    /// [`Record::key`], counted once).
    pub(crate) records: &'a [Record],
    /// Verdict thresholds.
    pub(crate) thresholds: Thresholds,
    /// Zone for the times shown.
    pub(crate) timezone: Tz,
    /// Why the records may be incomplete (drops, replicas that did not answer).
    pub(crate) incomplete: Vec<String>,
}

/// The most buckets a timeline has: long ranges get wider buckets.
const MAX_BUCKETS: i64 = 720;

/// Leak decisions and how a report explains them.
const LEAK_REASONS: [(&str, &str); 3] = [
    ("bypass", "client in drill.bypass_cidrs"),
    ("drill-pass", "drill header `pass`"),
    ("would-maintain", "maintenance.mode = report"),
];

impl Report {
    /// Builds the report.
    #[must_use]
    pub(crate) fn build(input: Input<'_>) -> Self {
        let Input {
            subject,
            span,
            records,
            thresholds,
            timezone,
            incomplete,
        } = input;
        // Milliseconds are plenty for a reader, and what `/status` shows.
        let tz = |t: DateTime<Utc>| t.with_timezone(&timezone).fixed_offset().trunc_subsecs(3);
        let (from, horizon) = (span.from.to_utc(), span.horizon.to_utc());
        let (start, end) = (subject.start.to_utc(), subject.end.to_utc());
        let mut seen = BTreeSet::new();
        let mut records: Vec<&Record> = records
            .iter()
            .filter(|r| from <= r.drill_time && r.drill_time < horizon)
            .filter(|r| seen.insert(r.key()))
            .collect();
        records.sort_by_key(|r| (r.drill_time, r.real_time));
        let in_window =
            |r: &Record| start <= r.drill_time && r.drill_time < end && subject.covers(r);

        let mut requests = Requests::default();
        let mut replicas = BTreeSet::new();
        let mut all_orders = BTreeSet::new();
        let mut all_traders = BTreeSet::new();
        for r in &records {
            requests.total += 1;
            requests.in_window += u64::from(in_window(r));
            *requests
                .by_decision
                .entry(r.decision.to_string())
                .or_default() += 1;
            *requests
                .by_service
                .entry(r.service.to_string())
                .or_default()
                .entry(r.decision.to_string())
                .or_default() += 1;
            let div = r.function_div.clone().unwrap_or_else(|| "-".into());
            *requests.by_function_div.entry(div).or_default() += 1;
            replicas.insert(r.replica.to_string());
            if let Some(order) = order_key(r) {
                all_orders.insert(order);
            }
            if let Some(trader) = &r.trader_code {
                all_traders.insert(trader.clone());
            }
        }

        // Orders attempted during the window, and what became of them.
        let mut attempts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for r in records.iter().filter(|r| in_window(r)) {
            if let Some(key) = order_key(r) {
                *attempts.entry(key).or_default() += 1;
            }
        }
        let mut orders = Orders {
            distinct: all_orders.len() as u64,
            traders: all_traders.len() as u64,
            ..Orders::default()
        };
        for ((trader_code, order_no), n) in &attempts {
            let successes = records.iter().filter(|r| {
                r.succeeded()
                    && r.drill_time >= start
                    && order_key(r).is_some_and(|(t, o)| &t == trader_code && &o == order_no)
            });
            let (mut during, mut after) = (None, None);
            for r in successes {
                if r.drill_time < end {
                    during.get_or_insert(r.drill_time);
                } else {
                    after.get_or_insert(r.drill_time);
                }
            }
            let order = |first: Option<DateTime<Utc>>| ReportedOrder {
                order_no: order_no.clone(),
                trader_code: trader_code.clone(),
                attempts: *n,
                first_success: first.map(tz),
            };
            orders.attempted.push(order(during.or(after)));
            if let Some(at) = during {
                orders.succeeded_in_window.push(order(Some(at)));
            } else if let Some(at) = after {
                orders.recovered.push(order(Some(at)));
            } else {
                orders.stranded.push(order(None));
            }
        }
        orders.retried = attempts.values().filter(|n| **n > 1).count() as u64;
        orders.max_attempts = attempts.values().copied().max().unwrap_or(0);
        orders.attempted.sort_by(|a, b| {
            b.attempts
                .cmp(&a.attempts)
                .then(a.order_no.cmp(&b.order_no))
        });

        // Each trader's busiest minute of the window.
        let mut per_minute: BTreeMap<&str, BTreeMap<i64, u64>> = BTreeMap::new();
        for r in records.iter().filter(|r| in_window(r)) {
            if let Some(trader) = &r.trader_code {
                let minute = r.drill_time.timestamp().div_euclid(60);
                *per_minute
                    .entry(trader)
                    .or_default()
                    .entry(minute)
                    .or_default() += 1;
            }
        }
        let mut traders: Vec<Trader> = per_minute
            .into_iter()
            .map(|(trader, minutes)| {
                let (minute, most) = minutes
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map_or((0, 0), |(m, n)| (*m, *n));
                Trader {
                    trader_code: trader.to_string(),
                    requests: minutes.values().sum(),
                    busiest_minute: tz(DateTime::from_timestamp(minute * 60, 0).unwrap_or(start)),
                    busiest_minute_requests: most,
                }
            })
            .collect();
        traders.sort_by(|a, b| {
            b.busiest_minute_requests
                .cmp(&a.busiest_minute_requests)
                .then(a.trader_code.cmp(&b.trader_code))
        });

        // Per service seen in the window: the first success at or after its end.
        let services: BTreeSet<&str> = records
            .iter()
            .filter(|r| in_window(r))
            .map(|r| &*r.service)
            .collect();
        let recovery = services
            .into_iter()
            .map(|service| {
                let first = records
                    .iter()
                    .find(|r| &*r.service == service && r.drill_time >= end && r.succeeded())
                    .map(|r| r.drill_time);
                Recovery {
                    service: service.to_string(),
                    first_success: first.map(tz),
                    after_end_seconds: first.map(|t| (t - end).num_milliseconds() as f64 / 1000.0),
                }
            })
            .collect();

        let leaks: Vec<Leak> = records
            .iter()
            .filter(|r| r.reached && &*r.kind != "notification" && r.window.is_some())
            .filter(|r| in_window(r))
            .filter_map(|r| {
                let reason = LEAK_REASONS.iter().find(|(d, _)| *d == &*r.decision)?.1;
                Some(Leak {
                    at: tz(r.drill_time),
                    replica: r.replica.to_string(),
                    request_id: r.request_id.clone(),
                    route: r.route.to_string(),
                    service: r.service.to_string(),
                    method: r.method.to_string(),
                    decision: r.decision.to_string(),
                    reason: reason.to_string(),
                    status: r.status,
                    trader_code: r.trader_code.clone(),
                    order_no: r.order_no.clone(),
                })
            })
            .collect();

        let timeline = timeline(&records, from, horizon, tz);
        let complete = incomplete.is_empty();
        let provisional = horizon < span.to.to_utc();
        let mut verdicts = verdicts(&orders, &leaks, &incomplete, thresholds);
        if provisional {
            verdicts[0].detail.push_str(&format!(
                " (provisional: orders may still recover until {})",
                span.to
            ));
        }
        Self {
            subject,
            span,
            timezone: timezone.name().to_string(),
            provisional,
            complete,
            incomplete,
            replicas: replicas.into_iter().collect(),
            thresholds,
            requests,
            orders,
            traders,
            recovery,
            leaks,
            timeline,
            verdicts,
        }
    }

    /// True when every verdict passed.
    #[must_use]
    pub(crate) fn passed(&self) -> bool {
        self.failed().next().is_none()
    }

    /// The verdicts that failed, in order.
    pub fn failed(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.ok)
    }
}

/// An order's identity: trader and order number (records without `order_no` have none).
fn order_key(r: &Record) -> Option<(String, String)> {
    let order = r.order_no.as_ref()?;
    Some((r.trader_code.clone().unwrap_or_default(), order.clone()))
}

fn order_label(o: &ReportedOrder) -> String {
    if o.trader_code.is_empty() {
        o.order_no.clone()
    } else {
        format!("{}/{}", o.trader_code, o.order_no)
    }
}

fn timeline(
    records: &[&Record],
    from: DateTime<Utc>,
    horizon: DateTime<Utc>,
    tz: impl Fn(DateTime<Utc>) -> DateTime<FixedOffset>,
) -> RequestTimeline {
    let span = (horizon - from).num_seconds().max(0);
    let minutes = (span + 59) / 60;
    let bucket_seconds = 60 * ((minutes + MAX_BUCKETS - 1) / MAX_BUCKETS).max(1);
    let count = (span + bucket_seconds - 1) / bucket_seconds;
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start: tz(from + TimeDelta::seconds(i * bucket_seconds)),
            by_decision: BTreeMap::new(),
        })
        .collect();
    for r in records {
        let i = (r.drill_time - from).num_seconds() / bucket_seconds;
        if let Some(bucket) = usize::try_from(i).ok().and_then(|i| buckets.get_mut(i)) {
            *bucket
                .by_decision
                .entry(r.decision.to_string())
                .or_default() += 1;
        }
    }
    RequestTimeline {
        bucket_seconds,
        buckets,
    }
}

fn verdicts(orders: &Orders, leaks: &[Leak], incomplete: &[String], t: Thresholds) -> Vec<Verdict> {
    let over: Vec<String> = orders
        .attempted
        .iter()
        .filter(|o| o.attempts > t.max_attempts_per_order)
        .map(|o| format!("{} ({} attempts)", order_label(o), o.attempts))
        .collect();
    vec![
        Verdict {
            name: "stranded".into(),
            ok: orders.stranded.len() as u64 <= t.max_stranded,
            detail: format!(
                "{} stranded order(s), at most {} allowed",
                orders.stranded.len(),
                t.max_stranded
            ),
            offenders: orders.stranded.iter().map(order_label).collect(),
        },
        Verdict {
            name: "attempts_per_order".into(),
            ok: over.is_empty(),
            detail: format!(
                "at most {} attempt(s) of one order during the window, {} allowed",
                orders.max_attempts, t.max_attempts_per_order
            ),
            offenders: over,
        },
        Verdict {
            name: "leaks".into(),
            ok: leaks.len() as u64 <= t.max_leaks,
            detail: format!(
                "{} request(s) reached the gateway during the window, at most {} allowed",
                leaks.len(),
                t.max_leaks
            ),
            offenders: leaks
                .iter()
                .map(|l| format!("{} ({})", l.request_id, l.reason))
                .collect(),
        },
        Verdict {
            name: "complete".into(),
            ok: incomplete.is_empty(),
            detail: if incomplete.is_empty() {
                "every record of every replica asked".into()
            } else {
                incomplete.join("; ")
            },
            offenders: Vec::new(),
        },
    ]
}

#[cfg(test)]
mod tests;
