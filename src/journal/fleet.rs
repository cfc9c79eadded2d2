//! A fleet's report: every replica's records (from `GET /report?…&records=1`) merged and
//! the report built again over all of them, each request counted once.

use serde::Deserialize;

use super::Record;
use super::report::{Input, Report};

/// One replica's answer: the report it built, and its records.
#[derive(Debug, Deserialize)]
struct ReplicaAnswer {
    #[serde(flatten)]
    report: Report,
    #[serde(default)]
    records: Vec<Record>,
}

/// Merges the answers of `GET /report?…&records=1` (replica name, body or failure). A
/// replica that did not answer, or that reports another subject, makes the report
/// incomplete (its `complete` verdict fails).
///
/// # Errors
/// When no replica gave a usable answer.
pub fn merge(answers: Vec<(String, Result<String, String>)>) -> Result<Report, String> {
    let mut first: Option<Report> = None;
    let mut records = Vec::new();
    let mut incomplete = Vec::new();
    let mut failures = Vec::new();
    for (name, body) in answers {
        let answer = body.and_then(|text| {
            serde_json::from_str::<ReplicaAnswer>(&text).map_err(|e| format!("not a report: {e}"))
        });
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                incomplete.push(format!("replica {name} did not answer: {err}"));
                failures.push(format!("{name}: {err}"));
                continue;
            }
        };
        match &mut first {
            None => first = Some(answer.report.clone()),
            Some(report) => {
                if answer.report.subject != report.subject {
                    incomplete.push(format!(
                        "replica {name} reports another window ({} {}–{}); its records are left out",
                        answer.report.subject.id.as_deref().unwrap_or("range"),
                        answer.report.subject.start,
                        answer.report.subject.end
                    ));
                    continue;
                }
                // The furthest any replica has seen.
                report.span.horizon = report.span.horizon.max(answer.report.span.horizon);
            }
        }
        for reason in answer.report.incomplete {
            if !incomplete.contains(&reason) {
                incomplete.push(reason);
            }
        }
        records.extend(answer.records);
    }
    let Some(report) = first else {
        return Err(format!("no replica answered: {}", failures.join("; ")));
    };
    let timezone = report
        .timezone
        .parse()
        .map_err(|_| format!("unknown time zone {:?} in the report", report.timezone))?;
    Ok(Report::build(Input {
        subject: report.subject,
        span: report.span,
        records: &records,
        thresholds: report.thresholds,
        timezone,
        incomplete,
    }))
}
