//! The report as GitHub-flavoured Markdown, every value in a table cell.

use super::model::*;
use super::svg::{TICK_STEPS, whole_days};
use super::*;

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

pub(super) fn md_cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) | Cell::Num(s) | Cell::Code(s) => md(s),
        Cell::Verdict(true) => "**PASS** 合格".into(),
        Cell::Verdict(false) => "**FAIL** 不合格".into(),
        Cell::Decision(d) => md(d),
        // `<br>` is the one way to break a line inside a GFM table cell.
        Cell::List(items) => items.iter().map(|i| md(i)).collect::<Vec<_>>().join("<br>"),
        Cell::Warn(s) => format!("**{}**", md(s)),
        Cell::Empty => "—".into(),
    }
}

pub(super) fn md_table(out: &mut String, table: &Table) {
    if table.rows.is_empty() {
        out.push_str("_なし / none_\n\n");
        return;
    }
    out.push('|');
    for c in &table.cols {
        w!(out, " {} / {} |", md(&c.ja), md(&c.en));
    }
    out.push_str("\n|");
    for c in &table.cols {
        out.push_str(if c.num { " ---: |" } else { " --- |" });
    }
    out.push('\n');
    for r in &table.rows {
        out.push('|');
        for cell in &r.cells {
            w!(out, " {} |", md_cell(cell));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// Rows the Markdown timeline aims to stay under.
pub(super) const MD_ROWS: i64 = 48;

/// The timeline for Markdown, where no SVG shows: requests per coarser step (about
/// [`MD_ROWS`] rows at most, aligned like the chart's labels), by decision, with the rows the window
/// touches marked.
pub(super) fn md_timeline(out: &mut String, report: &Report) {
    let tl = &report.timeline;
    let Some(first) = tl.buckets.first() else {
        out.push_str("_記録なし / no records_\n\n");
        return;
    };
    let width = tl.bucket_seconds.max(1);
    let seconds = tl.buckets.len() as i64 * width;
    let step = TICK_STEPS
        .iter()
        .copied()
        .find(|s| *s >= width && seconds / s < MD_ROWS)
        .unwrap_or_else(|| whole_days(seconds / MD_ROWS).max(width));
    let decisions = ordered(
        tl.buckets
            .iter()
            .flat_map(|b| b.by_decision.keys().map(String::as_str)),
    );
    // Rows keyed by the step they fall in, in the first bucket's offset (one key per row
    // even across a DST change).
    let offset = i64::from(first.start.offset().local_minus_utc());
    let mut rows: Vec<(i64, DateTime<FixedOffset>, Vec<u64>)> = Vec::new();
    for b in &tl.buckets {
        let key = (b.start.timestamp() + offset).div_euclid(step);
        if rows.last().is_none_or(|(k, _, _)| *k != key) {
            let start = DateTime::from_timestamp(key * step - offset, 0)
                .map_or(b.start, |t| t.with_timezone(b.start.offset()));
            rows.push((key, start, vec![0; decisions.len()]));
        }
        if let Some((_, _, counts)) = rows.last_mut() {
            for (slot, d) in counts.iter_mut().zip(&decisions) {
                *slot += b.by_decision.get(*d).copied().unwrap_or(0);
            }
        }
    }
    let mut cols = vec![col("時刻", "from"), col("枠", "window")];
    cols.extend(decisions.iter().map(|d| Col {
        ja: look(d).ja.into(),
        en: (*d).to_string(),
        num: true,
    }));
    cols.push(num_col("計", "total"));
    let (start, end) = (report.subject.start, report.subject.end);
    let table = Table {
        id: "timeline-table",
        cols,
        rows: rows
            .into_iter()
            .map(|(_, from, counts)| {
                let to = from + chrono::TimeDelta::seconds(step);
                let mut cells = vec![
                    Cell::Text(from.format("%m-%d %H:%M").to_string()),
                    if from < end && to > start {
                        Cell::Text("●".into())
                    } else {
                        Cell::Empty
                    },
                ];
                cells.extend(counts.iter().map(|n| count(*n)));
                cells.push(count(counts.iter().sum()));
                row(cells)
            })
            .collect(),
    };
    w!(
        out,
        "{} ごとのリクエスト数 / requests per {} ({}). \
         ●: 枠にかかる行 / rows the window overlaps.\n\n",
        md(&duration(step)),
        md(&duration(step)),
        md(&report.timezone)
    );
    md_table(out, &table);
}

/// The report as GitHub-flavoured Markdown, in Japanese and English: the same content as
/// [`html`], every value in a table cell, escaped (`|`, line breaks, markup). The timeline
/// is a table of coarser steps.
#[must_use]
pub(crate) fn markdown(report: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    w!(
        out,
        "# 訓練レポート / Drill evidence report: {}\n\n",
        md(&report.subject.title)
    );
    w!(
        out,
        "**総合判定 / Overall: {}**\n\n",
        if report.passed() {
            "PASS 合格"
        } else {
            "FAIL 不合格"
        }
    );
    for section in sections(report) {
        w!(out, "## {} / {}\n\n", section.ja, section.en);
        for block in &section.blocks {
            match block {
                Block::H3(ja, en) => w!(out, "### {ja} / {en}\n\n"),
                Block::Facts(facts) => {
                    let table = Table {
                        id: "facts",
                        cols: vec![col("項目", "field"), col("値", "value")],
                        rows: facts
                            .iter()
                            .map(|f| {
                                row(vec![
                                    Cell::Text(format!("{} / {}", f.ja, f.en)),
                                    f.value.clone(),
                                ])
                            })
                            .collect(),
                    };
                    md_table(&mut out, &table);
                }
                Block::Table(table) => md_table(&mut out, table),
                Block::Warning(reasons) => {
                    out.push_str(
                        "> **不完全なレポート / Incomplete report**: records are missing, \
                         the figures below may be too low.\n\n",
                    );
                    let table = Table {
                        id: "incomplete",
                        cols: vec![col("理由", "reason")],
                        rows: reasons
                            .iter()
                            .map(|r| row(vec![Cell::Text(r.clone())]))
                            .collect(),
                    };
                    md_table(&mut out, &table);
                }
                Block::Timeline => md_timeline(&mut out, report),
            }
        }
    }
    out
}
