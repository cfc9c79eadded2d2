//! The report builder's tests: duplicates, the horizon, coverage, busiest minutes, bucket widths.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_utc()
}

fn jst(s: &str) -> DateTime<FixedOffset> {
    t(s).with_timezone(&chrono_tz::Asia::Tokyo).fixed_offset()
}

fn record(at: &str, order: Option<&str>, decision: &str, ok: bool) -> Record {
    Record {
        real_time: t(at),
        drill_time: t(at),
        replica: "a".into(),
        request_id: format!("{at}-{}", order.unwrap_or("-")),
        route: "api".into(),
        service: "webcollect.api".into(),
        kind: "api".into(),
        method: "POST".into(),
        function_div: Some("A08".into()),
        trader_code: Some("888".into()),
        order_no: order.map(str::to_string),
        decision: decision.into(),
        window: (decision != "pass").then(|| "w".into()),
        error: None,
        status: 200,
        return_code: Some(if ok { "0" } else { "1" }.into()),
        error_code: None,
        latency_us: 100,
        reached: decision != "maintenance",
    }
}

fn window() -> Subject {
    Subject {
        kind: SubjectKind::Window,
        id: Some("w".into()),
        title: "w".into(),
        start: jst("2020-04-20T02:00:00+09:00"),
        end: jst("2020-04-20T06:00:00+09:00"),
        services: vec!["webcollect".into()],
    }
}

fn build(subject: Subject, records: &[Record], horizon: &str) -> Report {
    let span = Span {
        from: jst("2020-04-20T01:45:00+09:00"),
        to: jst("2020-04-20T07:00:00+09:00"),
        horizon: jst(horizon),
    };
    Report::build(Input {
        subject,
        span,
        records,
        thresholds: Thresholds::default(),
        timezone: chrono_tz::Asia::Tokyo,
        incomplete: Vec::new(),
    })
}

#[test]
fn a_request_seen_twice_counts_once() {
    let r = record("2020-04-20T02:10:00+09:00", Some("R"), "maintenance", false);
    let report = build(window(), &[r.clone(), r], "2020-04-20T07:00:00+09:00");
    assert_eq!(report.requests.total, 1);
    assert_eq!(report.orders.attempted[0].attempts, 1);
}

#[test]
fn before_the_horizon_an_order_is_stranded_and_a_late_success_recovers_it() {
    let records = [
        record("2020-04-20T02:10:00+09:00", Some("R"), "maintenance", false),
        record("2020-04-20T06:30:00+09:00", Some("R"), "pass", true),
    ];
    let early = build(window(), &records, "2020-04-20T06:10:00+09:00");
    assert_eq!(early.orders.stranded.len(), 1);
    assert!(early.provisional);
    assert!(early.verdicts[0].detail.contains("provisional"));
    assert!(!early.passed());
    let late = build(window(), &records, "2020-04-20T07:00:00+09:00");
    assert!(!late.provisional);
    assert_eq!(late.orders.recovered.len(), 1);
    assert_eq!(late.recovery[0].after_end_seconds, Some(1800.0));
    assert!(late.passed(), "{:?}", late.verdicts);
}

#[test]
fn a_failed_answer_after_the_window_is_no_recovery() {
    let records = [
        record("2020-04-20T02:10:00+09:00", Some("R"), "maintenance", false),
        record("2020-04-20T06:30:00+09:00", Some("R"), "pass", false),
    ];
    let report = build(window(), &records, "2020-04-20T07:00:00+09:00");
    assert_eq!(report.orders.stranded.len(), 1);
    assert_eq!(report.recovery[0].first_success, None);
}

#[test]
fn only_services_the_window_covers_are_in_it() {
    let mut other = record("2020-04-20T02:10:00+09:00", Some("X"), "pass", true);
    other.service = "atobarai.api".into();
    other.window = None;
    let report = build(window(), &[other], "2020-04-20T07:00:00+09:00");
    assert_eq!(report.requests.total, 1);
    assert_eq!(report.requests.in_window, 0);
    assert!(report.orders.attempted.is_empty());
    assert!(report.leaks.is_empty());
}

#[test]
fn the_busiest_minute_of_a_trader_is_found() {
    let mut records: Vec<Record> = (0..5)
        .map(|i| {
            record(
                &format!("2020-04-20T03:00:{:02}+09:00", i * 10),
                Some("H"),
                "maintenance",
                false,
            )
        })
        .collect();
    records.push(record(
        "2020-04-20T02:10:00+09:00",
        Some("H"),
        "maintenance",
        false,
    ));
    let report = build(window(), &records, "2020-04-20T07:00:00+09:00");
    assert_eq!(
        report.traders[0].busiest_minute,
        jst("2020-04-20T03:00:00+09:00")
    );
    assert_eq!(report.traders[0].busiest_minute_requests, 5);
    assert_eq!(report.traders[0].requests, 6);
    let verdict = &report.verdicts[1];
    assert_eq!(verdict.name, "attempts_per_order");
    assert!(!verdict.ok);
    assert_eq!(verdict.offenders, ["888/H (6 attempts)"]);
}

#[test]
fn long_ranges_get_wider_buckets() {
    let subject = Subject {
        kind: SubjectKind::Range,
        id: None,
        title: "range".into(),
        start: jst("2020-04-01T00:00:00+09:00"),
        end: jst("2020-04-08T00:00:00+09:00"),
        services: Vec::new(),
    };
    let report = Report::build(Input {
        span: Span {
            from: subject.start,
            to: subject.end,
            horizon: subject.end,
        },
        subject,
        records: &[record("2020-04-02T00:00:30+09:00", None, "pass", true)],
        thresholds: Thresholds::default(),
        timezone: chrono_tz::Asia::Tokyo,
        incomplete: Vec::new(),
    });
    assert!(report.timeline.buckets.len() as i64 <= MAX_BUCKETS);
    assert_eq!(report.timeline.bucket_seconds, 840);
    let counted: u64 = report
        .timeline
        .buckets
        .iter()
        .flat_map(|b| b.by_decision.values())
        .sum();
    assert_eq!(counted, 1);
}
