//! The renderers' tests: escaping, the CSP hash, well-formed XML, determinism.

use chrono::TimeDelta;
use quick_xml::Reader;
use quick_xml::events::Event;

use super::html::{STYLE, csp_hash};
use super::svg::tick_times;
use super::*;
use crate::config::Thresholds;
use crate::journal::Record;
use crate::journal::report::{Input, Span, Subject};

const HOSTILE: &str = "<img src=x onerror=alert(1)>\u{1b}[2J";

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("a test time")
}

/// A request at `at` (Tokyo time) for `order`.
fn record(at: &str, n: u32, decision: &str, order: Option<(&str, &str)>) -> Record {
    let when = t(at).to_utc();
    let reached = !decision.contains("maintenance");
    Record {
        real_time: when + TimeDelta::milliseconds(i64::from(n)),
        drill_time: when,
        replica: "r1".into(),
        request_id: format!("req-{n}"),
        route: "credit-api".into(),
        service: "credit".into(),
        kind: "api".into(),
        method: "POST".into(),
        function_div: Some("A08".into()),
        trader_code: order.map(|(t, _)| t.to_string()),
        order_no: order.map(|(_, o)| o.to_string()),
        decision: decision.into(),
        window: None,
        error: None,
        status: if reached { 200 } else { 503 },
        return_code: reached.then(|| "0".into()),
        error_code: None,
        latency_us: 1000,
        reached,
    }
}

fn in_window(mut r: Record) -> Record {
    r.window = Some("nightly".into());
    r
}

fn report(incomplete: Vec<String>) -> Report {
    let retried = Some(("T001", "20200420-0001"));
    let stranded = Some(("T002", HOSTILE));
    let leaked = Some(("T003", "20200420-0003"));
    let records = vec![
        record("2020-04-20T01:45:00+09:00", 1, "pass", None),
        // Four attempts (three retries) during the window, success after it.
        in_window(record(
            "2020-04-20T02:10:00+09:00",
            2,
            "maintenance",
            retried,
        )),
        in_window(record(
            "2020-04-20T02:10:20+09:00",
            3,
            "maintenance",
            retried,
        )),
        in_window(record(
            "2020-04-20T02:10:40+09:00",
            4,
            "maintenance",
            retried,
        )),
        in_window(record(
            "2020-04-20T02:11:00+09:00",
            5,
            "maintenance",
            retried,
        )),
        // Never successful.
        in_window(record(
            "2020-04-20T03:00:00+09:00",
            6,
            "maintenance",
            stranded,
        )),
        // Let through by the drill header: a leak, and a success in the window.
        in_window(record("2020-04-20T04:00:00+09:00", 7, "drill-pass", leaked)),
        record("2020-04-20T06:05:00+09:00", 8, "pass", retried),
    ];
    Report::build(Input {
        subject: Subject {
            kind: SubjectKind::Window,
            id: Some("nightly".into()),
            title: "定期メンテナンス <b>\"&'</b>".into(),
            start: t("2020-04-20T02:00:00+09:00"),
            end: t("2020-04-20T06:00:00+09:00"),
            services: vec!["credit".into()],
        },
        span: Span {
            from: t("2020-04-20T01:30:00+09:00"),
            to: t("2020-04-20T06:30:00+09:00"),
            horizon: t("2020-04-20T06:30:00+09:00"),
        },
        records: &records,
        thresholds: Thresholds::default(),
        timezone: chrono_tz::Asia::Tokyo,
        incomplete,
    })
}

/// Reads a whole XML document, failing on any ill-formed part; returns its events'
/// element names with their attributes, in order.
fn elements(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut depth = 0_i32;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                depth += 1;
                out.push(attributes(&e));
            }
            Event::Empty(e) => out.push(attributes(&e)),
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unclosed elements");
    out
}

fn attributes(e: &quick_xml::events::BytesStart<'_>) -> (String, Vec<(String, String)>) {
    let name = e.name().as_ref().to_string();
    let attrs = e
        .attributes()
        .map(|a| {
            let a = a.expect("an attribute");
            (
                a.key.as_ref().to_string(),
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("an attribute value")
                    .into_owned(),
            )
        })
        .collect();
    (name, attrs)
}

fn attr<'a>(element: &'a (String, Vec<(String, String)>), key: &str) -> Option<&'a str> {
    element
        .1
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_fixture_has_what_the_tests_rely_on() {
    let r = report(Vec::new());
    assert_eq!(r.orders.max_attempts, 4);
    assert_eq!(r.orders.recovered.len(), 1);
    assert_eq!(r.orders.stranded.len(), 1);
    assert_eq!(r.orders.stranded[0].order_no, HOSTILE);
    assert_eq!(r.leaks.len(), 1);
    let failing: Vec<&str> = r.failed().map(|v| v.name.as_str()).collect();
    assert_eq!(failing, ["stranded", "attempts_per_order", "leaks"]);
}

#[test]
fn the_html_allows_only_its_own_style_and_has_no_script() {
    let html = html(&report(Vec::new()));
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"ja\">"));
    assert_eq!(html.matches("<style").count(), 1);
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(style, _)| style)
        .expect("a style element");
    assert_eq!(style, STYLE);
    let meta = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src '{}'\" />",
        csp_hash(style)
    );
    assert!(html.contains(&meta), "{meta}");
    // The policy must come before the style it governs.
    assert!(html.find(&meta) < html.find("<style>"));
    assert!(!html.to_ascii_lowercase().contains("<script"));
    // No inline style attribute (the policy would block it), no handler, nothing loaded.
    let outside_values = html.replace("&lt;img src=x onerror=alert(1)&gt;", "");
    for forbidden in [
        " style=",
        " onerror=",
        " onload=",
        "src=",
        "href=",
        "url(",
        "@import",
    ] {
        assert!(!outside_values.contains(forbidden), "{forbidden}");
    }
}

#[test]
fn the_html_escapes_every_value() {
    let html = html(&report(Vec::new()));
    assert!(!html.contains("<img"));
    assert!(!html.contains('\u{1b}'));
    assert!(html.contains("<code>&lt;img src=x onerror=alert(1)&gt;[2J</code>"));
    assert!(html.contains("定期メンテナンス &lt;b&gt;&quot;&amp;&#39;&lt;/b&gt;"));
    assert!(!html.contains("<b>"));
    // Well-formed as XML too: every element closed, no stray markup from a value.
    let elements = elements(&html);
    assert!(elements.iter().any(|e| e.0 == "svg"));
}

#[test]
fn the_html_shows_every_verdict_and_fails_the_stranded_one() {
    let html = html(&report(Vec::new()));
    let row = |name: &str| {
        let start = html
            .find(&format!("<tr class=\"fail\" data-key=\"{name}\">"))
            .or_else(|| html.find(&format!("<tr data-key=\"{name}\">")))
            .expect("a verdict row");
        let end = start + html[start..].find("</tr>").expect("the row's end");
        html[start..end].to_string()
    };
    let stranded = row("stranded");
    assert!(stranded.contains("FAIL"), "{stranded}");
    assert!(stranded.contains("T002/&lt;img"), "{stranded}");
    assert!(row("complete").contains("PASS"));
    assert!(row("leaks").contains("FAIL"));
    for heading in [
        "判定 <span class=\"en\">/ Verdicts</span>",
        "通信量 <span class=\"en\">/ Traffic</span>",
        "再試行 <span class=\"en\">/ Retries</span>",
        "復旧 <span class=\"en\">/ Recovery</span>",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    assert!(!html.contains("class=\"warning\""));
    assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(html.contains("@media print"));
}

#[test]
fn an_incomplete_report_says_so_and_why() {
    let why = "replica r2 did not answer <timeout>".to_string();
    let r = report(vec![why]);
    let html = html(&r);
    assert!(html.contains("class=\"warning\""));
    assert!(html.contains("replica r2 did not answer &lt;timeout&gt;"));
    let md = markdown(&r);
    assert!(md.contains("Incomplete report"));
    assert!(md.contains("| replica r2 did not answer &lt;timeout&gt; |"));
}

#[test]
fn junit_has_one_testcase_per_verdict_and_counts_the_failures() {
    let r = report(Vec::new());
    let xml = junit(&r);
    let elements = elements(&xml);
    let suites: Vec<_> = elements.iter().filter(|e| e.0 == "testsuite").collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    let failing = r.verdicts.iter().filter(|v| !v.ok).count();
    assert_eq!(failing, 3);
    assert_eq!(attr(suite, "failures"), Some(failing.to_string().as_str()));
    assert_eq!(
        attr(suite, "tests"),
        Some(r.verdicts.len().to_string().as_str())
    );
    assert!(
        attr(suite, "name").is_some_and(|n| n.starts_with("webcollect-shim report: ")),
        "{suite:?}"
    );
    let cases: Vec<&str> = elements
        .iter()
        .filter(|e| e.0 == "testcase")
        .map(|e| {
            assert_eq!(attr(e, "classname"), Some("webcollect-shim.report"));
            attr(e, "name").expect("a name")
        })
        .collect();
    let names: Vec<&str> = r.verdicts.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(cases, names);
    let failures: Vec<_> = elements.iter().filter(|e| e.0 == "failure").collect();
    assert_eq!(failures.len(), failing);
    assert_eq!(
        attr(failures[0], "message"),
        Some(r.verdicts[0].detail.as_str())
    );
    // The hostile order number survives as text, minus its escape sequence.
    assert!(xml.contains("\n- T002/&lt;img src=x onerror=alert(1)&gt;[2J</failure>"));
    assert!(!xml.contains('\u{1b}'));
    // The title's quotes are escaped in the attribute.
    assert!(xml.contains("value=\"定期メンテナンス &lt;b&gt;&quot;&amp;&#39;&lt;/b&gt;\""));
}

#[test]
fn the_svg_is_xml_with_one_bar_per_bucket_with_requests() {
    let r = report(Vec::new());
    let svg = timeline_svg(&r);
    let elements = elements(&svg);
    assert_eq!(elements[0].0, "svg");
    assert_eq!(
        attr(&elements[0], "xmlns"),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(elements[1].0, "title");
    let bars = elements
        .iter()
        .filter(|e| e.0 == "g" && attr(e, "class") == Some("bar"))
        .count();
    let non_empty = r
        .timeline
        .buckets
        .iter()
        .filter(|b| b.by_decision.values().sum::<u64>() > 0)
        .count();
    // 01:45, 02:10 (three), 02:11, 03:00, 04:00, 06:05.
    assert_eq!(non_empty, 6);
    assert_eq!(bars, non_empty);
    // The window, shaded, and the busiest bucket's count on the y axis.
    assert!(svg.contains("<g class=\"window\"><rect"));
    assert!(svg.contains("fill=\"#ffebee\""));
    assert!(svg.contains("<text class=\"y-max\""));
    assert!(svg.contains(">3</text>"));
    // Times in the report's offset, decisions in their colours.
    assert!(svg.contains(">02:00</text>"));
    assert!(svg.contains("fill=\"#c62828\""));
    assert!(svg.contains("fill=\"#00838f\""));
    assert!(!svg.contains("<img"));
}

#[test]
fn an_empty_timeline_still_renders() {
    let mut r = report(Vec::new());
    r.timeline.buckets.clear();
    let svg = timeline_svg(&r);
    assert!(svg.contains("no records"));
    let elements = elements(&svg);
    assert!(!elements.iter().any(|e| attr(e, "class") == Some("bar")));
    assert!(markdown(&r).contains("no records"));
}

#[test]
fn markdown_has_the_verdict_table_and_escapes_cells() {
    let md = markdown(&report(Vec::new()));
    assert!(md.contains("## 判定 / Verdicts\n"));
    assert!(md.contains("| 判定 / verdict | 結果 / result | 詳細 / detail | 該当 / offenders |\n| --- | --- | --- | --- |\n"));
    assert!(md.contains("| stranded | **FAIL** 不合格 |"));
    assert!(md.contains("| complete | **PASS** 合格 |"));
    assert!(!md.contains("<img"));
    assert!(!md.contains('\u{1b}'));
    assert!(md.contains("T002/&lt;img src=x onerror=alert(1)&gt;\\[2J"));
    assert!(md.contains("定期メンテナンス &lt;b&gt;\"&amp;'&lt;/b&gt;"));
    // Every table row has as many cells as its header.
    for block in md.split("\n\n") {
        let lines: Vec<&str> = block.lines().filter(|l| l.starts_with('|')).collect();
        if let Some(head) = lines.first() {
            let cells = |l: &str| l.replace("\\|", "").matches('|').count();
            assert!(lines.iter().all(|l| cells(l) == cells(head)), "{block}");
        }
    }
}

#[test]
fn markdown_cells_cannot_break_the_table() {
    assert_eq!(md("a|b\nc\r\td"), "a\\|b c  d");
    assert_eq!(
        md("*x* [y](z) `c` ~~s~~ $m$"),
        "\\*x\\* \\[y\\](z) \\`c\\` \\~\\~s\\~\\~ \\$m\\$"
    );
    assert_eq!(esc("a\u{202E}b\u{1b}c\u{7f}\u{FFFF}"), "abc");
}

#[test]
fn ticks_fall_on_local_time_and_stay_few() {
    // 01:40 in Tokyo, five hours: 30-minute labels at :00 and :30 local, not UTC.
    let t0 = t("2020-04-20T01:40:00+09:00");
    let ticks = tick_times(&t0, 5 * 3600);
    let first = DateTime::from_timestamp(ticks[0], 0).expect("a time");
    assert_eq!(hhmm(&first.with_timezone(t0.offset())), "02:00");
    assert_eq!(ticks.len(), 10);
    assert!(ticks.windows(2).all(|w| w[1] - w[0] == 1800));
    // Nepal's +05:45: a 30-minute step still lands on local :00 and :30.
    let t0 = t("2020-04-20T01:40:00+05:45");
    let first = DateTime::from_timestamp(tick_times(&t0, 5 * 3600)[0], 0).expect("a time");
    assert_eq!(hhmm(&first.with_timezone(t0.offset())), "02:00");
    // A year: whole-day steps, still about a dozen labels.
    let year = tick_times(&t0, 366 * 86_400);
    assert!((10..=14).contains(&year.len()), "{}", year.len());
}

#[test]
fn formats_parse_by_name() {
    assert_eq!("json".parse(), Ok(Format::Json));
    assert_eq!("html".parse(), Ok(Format::Html));
    assert_eq!("md".parse(), Ok(Format::Markdown));
    assert_eq!("markdown".parse(), Ok(Format::Markdown));
    assert_eq!("JUnit".parse(), Ok(Format::Junit));
    assert_eq!("pdf".parse::<Format>(), Err(UnknownFormat("pdf".into())));
    for f in [Format::Json, Format::Html, Format::Markdown, Format::Junit] {
        assert_eq!(f.to_string().parse(), Ok(f));
    }
}

#[test]
fn json_is_the_report_pretty_printed() {
    let r = report(Vec::new());
    let text = render(&r, Format::Json);
    assert!(text.ends_with("}\n"));
    assert!(text.contains("\n  \"subject\": {"));
    let back: Report = serde_json::from_str(&text).expect("the report back");
    assert_eq!(back, r);
}

#[test]
fn rendering_is_deterministic() {
    let (a, b) = (report(Vec::new()), report(Vec::new()));
    for f in [Format::Json, Format::Html, Format::Markdown, Format::Junit] {
        assert_eq!(render(&a, f), render(&b, f), "{f}");
        assert_eq!(render(&a, f), render(&a, f), "{f}");
    }
    assert_eq!(timeline_svg(&a), timeline_svg(&b));
}
