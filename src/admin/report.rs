//! `GET /report`: this replica's drill-evidence report for one window occurrence, one drill
//! or a time range, built from its journal (docs/reports.md). With `records=1` the answer
//! also carries the records themselves, so `webcollect-shim report` can merge a fleet's.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use chrono_tz::Tz;
use http::StatusCode;
use serde_json::{Value, json};

use crate::journal::render::{self, Format};
use crate::journal::report::{Input, Report, Span, Subject, SubjectKind};
use crate::journal::store::DrillSpan;
use crate::schedule::{Recurring, Window};
use crate::state::Shared;

/// How far back `window=ID` looks for a recurring window's occurrence, and the default
/// report looks for the last window.
const LOOK_BACK: TimeDelta = TimeDelta::days(400);

/// How long a report waits for the journal's queue to be written.
const FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// What a `/report` query asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    /// `window=ID`.
    window: Option<String>,
    /// `drill=ID`.
    drill: Option<String>,
    /// `from=TIME`.
    from: Option<String>,
    /// `to=TIME`.
    to: Option<String>,
    /// `at=TIME`: which occurrence of a recurring window (the one covering or last before it).
    at: Option<String>,
    /// `records=1`: include the records.
    records: bool,
    /// `format=json|html|md|junit`.
    format: Option<String>,
}

impl Query {
    /// Parses a query string; unknown parameters are errors (a typo must not give a report
    /// about something else).
    ///
    /// # Errors
    /// The parameter that is not understood.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut out = Self::default();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8()
                .map_err(|_| format!("{key}: not UTF-8"))?
                .into_owned();
            match key {
                "window" => out.window = Some(value),
                "drill" => out.drill = Some(value),
                "from" => out.from = Some(value),
                "to" => out.to = Some(value),
                "at" => out.at = Some(value),
                "records" => out.records = matches!(value.as_str(), "1" | "true" | ""),
                "format" => out.format = Some(value),
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        let chosen = [
            out.window.is_some(),
            out.drill.is_some(),
            out.from.is_some() || out.to.is_some(),
        ];
        if chosen.iter().filter(|c| **c).count() > 1 {
            return Err("give one of window=ID, drill=ID, or from=TIME&to=TIME".into());
        }
        if out.from.is_some() != out.to.is_some() {
            return Err("from and to go together".into());
        }
        Ok(out)
    }
}

/// A refusal: status and message.
pub(crate) type Refusal = (StatusCode, String);

/// Answers `GET /report?…`: the body and its content type.
///
/// # Errors
/// A bad query (400), an unknown window or drill (404), or a journal that cannot be read
/// (500).
pub(crate) async fn report(
    shared: Arc<Shared>,
    query: Option<&str>,
) -> Result<(Vec<u8>, &'static str), Refusal> {
    let query = Query::parse(query).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let format = match &query.format {
        None => Format::Json,
        Some(f) => f
            .parse::<Format>()
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?,
    };
    let journal = shared.journal.clone();
    let with_records = query.records;
    let task = tokio::task::spawn_blocking(
        move || -> Result<(Report, Vec<crate::journal::Record>), Refusal> {
            journal.flush(FLUSH);
            let current = shared.current();
            let config = &current.snapshot.config;
            let tz = config.clock.timezone;
            let now = shared.clock.now();
            let drills = journal.drills().map_err(|e| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the journal: {e}"),
                )
            })?;
            let subject = subject(&shared, &query, &drills, now, tz)?;
            let (before, after) = match subject.kind {
                SubjectKind::Range => (TimeDelta::zero(), TimeDelta::zero()),
                _ => (
                    TimeDelta::from_std(config.report.before).unwrap_or(TimeDelta::zero()),
                    TimeDelta::from_std(config.report.after).unwrap_or(TimeDelta::zero()),
                ),
            };
            let at = |t: DateTime<Utc>| t.with_timezone(&tz).fixed_offset();
            let from = subject.start.to_utc() - before;
            let to = subject.end.to_utc() + after;
            // Half-open: a record made at this very instant is in.
            let horizon = to.min(now + TimeDelta::milliseconds(1)).max(from);
            let (records, dropped) = journal.records(from, horizon).map_err(|e| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the journal: {e}"),
                )
            })?;
            let mut incomplete = Vec::new();
            if dropped > 0 {
                incomplete.push(format!(
                    "{dropped} record(s) dropped by {} (journal queue full or write failed)",
                    journal.replica()
                ));
            }
            let report = Report::build(Input {
                subject,
                span: Span {
                    from: at(from),
                    to: at(to),
                    horizon: at(horizon),
                },
                records: &records,
                thresholds: config.report.verdicts,
                timezone: tz,
                incomplete,
            });
            Ok((report, records))
        },
    );
    let (report, records) = task.await.map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "report task failed".to_string(),
        )
    })??;
    if format != Format::Json || !with_records {
        let text = render::render(&report, format);
        return Ok((text.into_bytes(), format.content_type()));
    }
    let mut value = serde_json::to_value(&report).unwrap_or(Value::Null);
    value["records"] = json!(records);
    let mut body = serde_json::to_vec_pretty(&value).unwrap_or_default();
    body.push(b'\n');
    Ok((body, Format::Json.content_type()))
}

/// The last occurrence of `recurring` to start at or before `at`, within [`LOOK_BACK`]. The
/// narrowest span that holds one is searched first: a frequent pattern then neither builds
/// thousands of occurrences for every console refresh nor loses its latest occurrence to
/// the expansion's cap ([`crate::schedule::MAX_OCCURRENCES`], oldest first). The latest
/// start is also the latest end: every occurrence lasts the same.
fn last_occurrence(recurring: &Recurring, at: DateTime<Utc>) -> Option<Window> {
    [TimeDelta::days(1), TimeDelta::days(31), LOOK_BACK]
        .into_iter()
        .find_map(|back| {
            recurring
                .occurrences(at - back, at + TimeDelta::seconds(1))
                .into_iter()
                .filter(|w| w.start <= at)
                .max_by_key(|w| w.start)
        })
}

/// What the query names, or else the window or drill in force now, or else the last one.
fn subject(
    shared: &Shared,
    query: &Query,
    drills: &[DrillSpan],
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<Subject, Refusal> {
    let config = shared.current().snapshot.config.clone();
    let time = |text: &str, name: &str| {
        crate::config::parse_time(text, tz)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("{name}: {e}")))
    };
    let at = |t: DateTime<Utc>| t.with_timezone(&tz).fixed_offset().trunc_subsecs(3);
    let from_window = |w: &Window| Subject {
        kind: SubjectKind::Window,
        id: Some(w.id.clone()),
        title: w.title.clone(),
        start: at(w.start),
        end: at(w.end),
        services: w.services.clone(),
    };
    let from_drill = |d: &DrillSpan| Subject {
        kind: SubjectKind::Drill,
        id: Some(d.id.clone()),
        title: d.title.clone(),
        start: at(d.start),
        end: at(d.end),
        services: d.services.clone(),
    };
    if let (Some(from), Some(to)) = (&query.from, &query.to) {
        let (from, to) = (time(from, "from")?, time(to, "to")?);
        if to <= from {
            return Err((StatusCode::BAD_REQUEST, "to must be after from".into()));
        }
        return Ok(Subject {
            kind: SubjectKind::Range,
            id: None,
            title: "time range".into(),
            start: at(from),
            end: at(to),
            services: Vec::new(),
        });
    }
    let at_time = match &query.at {
        Some(t) => time(t, "at")?,
        None => now,
    };
    // Every window that started at or before `at_time`, within the look-back.
    let mut windows: Vec<Window> = config
        .windows
        .iter()
        .filter(|w| w.start <= at_time)
        .cloned()
        .collect();
    for recurring in &config.recurring {
        windows.extend(last_occurrence(recurring, at_time));
    }
    if let Some(id) = &query.window {
        return windows
            .iter()
            .filter(|w| &w.id == id)
            .max_by_key(|w| w.start)
            .map(from_window)
            .ok_or_else(|| {
                (
                    StatusCode::NOT_FOUND,
                    format!("no window {id:?} has started by {}", at(at_time)),
                )
            });
    }
    if let Some(id) = &query.drill {
        return drills
            .iter()
            .filter(|d| &d.id == id && d.start <= at_time)
            .max_by_key(|d| d.start)
            .map(from_drill)
            .ok_or_else(|| {
                (
                    StatusCode::NOT_FOUND,
                    format!("no drill {id:?} in the journal"),
                )
            });
    }
    // No subject named: what is in force now (the latest to start), else what ended last.
    let candidates = windows
        .iter()
        .map(from_window)
        .chain(drills.iter().filter(|d| d.start <= at_time).map(from_drill));
    let (active, ended): (Vec<Subject>, Vec<Subject>) =
        candidates.partition(|s| s.end.to_utc() > at_time);
    active
        .into_iter()
        .max_by_key(|s| s.start)
        .or_else(|| ended.into_iter().max_by_key(|s| s.end))
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                "no window or drill has started yet: name one (window=, drill=) or a range (from=, to=)"
                    .into(),
            )
        })
}
