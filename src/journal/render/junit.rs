//! The report's verdicts as JUnit XML, one test case each.

use super::model::kind_label;
use super::*;

// ---------------------------------------------------------------------------------------
// JUnit
// ---------------------------------------------------------------------------------------

/// The report as JUnit XML for CI: one `<testsuite>` with one `<testcase>` per verdict,
/// in the verdicts' order; a failed verdict has a `<failure>` whose message is its detail
/// and whose text lists the offenders. The subject is in the suite's `<properties>`.
#[must_use]
pub(crate) fn junit(report: &Report) -> String {
    let s = &report.subject;
    let tests = report.verdicts.len();
    let failures = report.verdicts.iter().filter(|v| !v.ok).count();
    let (_, kind) = kind_label(s.kind);
    let name = match &s.id {
        Some(id) => format!(
            "webcollect-shim report: {kind} {id} {}/{}",
            s.start.to_rfc3339(),
            s.end.to_rfc3339()
        ),
        None => format!(
            "webcollect-shim report: {kind} {}/{}",
            s.start.to_rfc3339(),
            s.end.to_rfc3339()
        ),
    };
    let mut out = String::new();
    w!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"webcollect-shim\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n\
         <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n\
         <properties>\n",
        esc(&name),
    );
    let mut props = vec![
        ("kind", kind.to_string()),
        ("id", s.id.clone().unwrap_or_default()),
        ("title", s.title.clone()),
        ("start", s.start.to_rfc3339()),
        ("end", s.end.to_rfc3339()),
        ("services", s.services.join(",")),
        ("timezone", report.timezone.clone()),
        ("span.from", report.span.from.to_rfc3339()),
        ("span.horizon", report.span.horizon.to_rfc3339()),
        ("complete", report.complete.to_string()),
    ];
    props.extend(
        report
            .incomplete
            .iter()
            .map(|why| ("incomplete", why.clone())),
    );
    for (key, value) in props {
        w!(
            out,
            "<property name=\"{key}\" value=\"{}\"/>\n",
            esc(&value)
        );
    }
    out.push_str("</properties>\n");
    for v in &report.verdicts {
        w!(
            out,
            "<testcase classname=\"webcollect-shim.report\" name=\"{}\"",
            esc(&v.name)
        );
        if v.ok {
            w!(
                out,
                ">\n<system-out>{}</system-out>\n</testcase>\n",
                esc(&v.detail)
            );
            continue;
        }
        w!(
            out,
            ">\n<failure message=\"{}\" type=\"{}\">{}",
            esc(&v.detail),
            esc(&v.name),
            esc(&v.detail)
        );
        for offender in &v.offenders {
            w!(out, "\n- {}", esc(offender));
        }
        out.push_str("</failure>\n</testcase>\n");
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}
