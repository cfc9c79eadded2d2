//! The report as one self-contained, printable HTML page (no script, a hash-pinned style).

use super::model::*;
use super::*;

// ---------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------

/// The page's one stylesheet: the admin console's look, on paper as on screen. Its sha256
/// is the page's whole style policy, so it must stay a constant (no value interpolated).
pub(super) const STYLE: &str = r#"
  *, *::before, *::after { box-sizing: border-box; }
  html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
  body {
    margin: 0;
    background: #f4f4f4;
    color: #333;
    font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Kaku Gothic ProN", "Hiragino Sans", "Meiryo", "Yu Gothic", sans-serif;
    font-size: 15px;
    line-height: 1.6;
    overflow-wrap: anywhere;
  }
  .en { color: #777; font-size: 0.85em; font-weight: normal; }
  .muted { color: #777; }
  code { font-family: "Noto Sans Mono CJK JP", "DejaVu Sans Mono", monospace; font-size: 0.92em; }
  .top {
    display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between;
    gap: 8px 16px; padding: 12px 16px; background: #222; color: #fff;
  }
  .top .en { color: #bbb; }
  .brand { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; }
  .wordmark { font-weight: bold; font-size: 18px; letter-spacing: 0.04em; }
  .wordmark .accent { color: #ffcc00; }
  .brand-title { font-size: 16px; }
  .overall { margin: 0; }
  main { display: grid; gap: 16px; max-width: 1100px; margin: 0 auto; padding: 16px; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 16px; min-width: 0; }
  h1 { font-size: 22px; margin: 0 0 12px; color: #222; }
  h2 { font-size: 18px; margin: 0 0 12px; color: #222; border-bottom: 2px solid #222; padding-bottom: 4px; }
  h3 { font-size: 15px; margin: 16px 0 8px; color: #444; }
  .facts { margin: 0; display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 220px), 1fr)); gap: 8px 16px; }
  .facts dt { font-size: 12px; color: #555; }
  .facts dd { margin: 0; font-weight: bold; }
  .facts > div:first-child { grid-column: 1 / -1; }
  .facts ul, td ul { margin: 0; padding-left: 1.2em; }
  .facts ul { font-weight: normal; }
  .warning {
    border-left: 4px solid #c62828; background: #fff5f5; color: #222;
    padding: 8px 12px; margin: 12px 0 0;
  }
  .warning strong { color: #c62828; }
  .warning ul { margin: 4px 0 0; padding-left: 1.2em; }
  .badge {
    display: inline-block; padding: 0 8px; border: 1px solid; border-radius: 3px;
    font-weight: bold; font-size: 13px; white-space: nowrap;
  }
  .badge.pass { color: #2e7d32; background: #e8f5e9; border-color: #a5d6a7; }
  .badge.fail { color: #c62828; background: #fff5f5; border-color: #ef9a9a; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
  th { font-size: 12px; color: #555; }
  th .en { display: block; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.fail td { background: #fff5f5; }
  .warn { color: #b26a00; font-weight: bold; }
  .none { color: #777; }
  .swatch { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: baseline; }
  .d-maintenance { background: #c62828; }
  .d-drill-maintenance { background: #6a1b9a; }
  .d-would-maintain { background: #ef6c00; }
  .d-bypass { background: #1565c0; }
  .d-drill-pass { background: #00838f; }
  .d-pass { background: #9e9e9e; }
  .d-other { background: #555555; }
  .chart svg { display: block; width: 100%; height: auto; }
  footer { max-width: 1100px; margin: 0 auto; padding: 0 16px 16px; font-size: 12px; color: #777; }
  @page { size: A4; margin: 12mm; }
  @media print {
    * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
    body { background: #fff; font-size: 10pt; line-height: 1.45; }
    .top { background: #fff; color: #000; border-bottom: 2px solid #222; padding: 0 0 6px; }
    .top .en { color: #555; }
    .wordmark .accent { color: #000; }
    main { display: block; max-width: none; padding: 0; }
    .card { border: 0; border-radius: 0; padding: 0; margin: 12px 0 0; }
    h2 { break-after: avoid; page-break-after: avoid; }
    h3 { break-after: avoid; page-break-after: avoid; }
    .chart, tr, .facts > div, .warning { break-inside: avoid; page-break-inside: avoid; }
    thead { display: table-header-group; }
    .scroll { overflow: visible; }
    table { font-size: 8.5pt; }
    th, td { padding: 2px 4px; }
    footer { padding: 12px 0 0; }
  }
"#;

/// A CSP hash source for an inline element's exact text (as the admin console does).
pub(super) fn csp_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `ja <span class="en">/ en</span>`: reads "判定 / Verdicts" as plain text too.
pub(super) fn bilingual(ja: &str, en: &str) -> String {
    format!("{} <span class=\"en\">/ {}</span>", esc(ja), esc(en))
}

pub(super) fn html_list(items: &[String]) -> String {
    let mut out = String::from("<ul>");
    for item in items {
        w!(out, "<li><code>{}</code></li>", esc(item));
    }
    out.push_str("</ul>");
    out
}

/// A cell's content on the page (for the `<td>` or `<dd>` around it).
pub(super) fn html_cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) | Cell::Num(s) => esc(s),
        Cell::Code(s) => format!("<code>{}</code>", esc(s)),
        Cell::Verdict(true) => "<span class=\"badge pass\">PASS 合格</span>".into(),
        Cell::Verdict(false) => "<span class=\"badge fail\">FAIL 不合格</span>".into(),
        Cell::Decision(d) => format!(
            "<span class=\"swatch {}\"></span><code>{}</code>",
            look(d).class,
            esc(d)
        ),
        Cell::List(items) => html_list(items),
        Cell::Warn(s) => format!("<span class=\"warn\">{}</span>", esc(s)),
        Cell::Empty => "<span class=\"none\">—</span>".into(),
    }
}

pub(super) fn html_table(out: &mut String, table: &Table) {
    if table.rows.is_empty() {
        w!(
            out,
            "<p class=\"none\" id=\"{}\">なし <span class=\"en\">/ none</span></p>\n",
            table.id
        );
        return;
    }
    w!(
        out,
        "<div class=\"scroll\"><table id=\"{}\">\n<thead><tr>",
        table.id
    );
    for c in &table.cols {
        w!(
            out,
            "<th{}>{}<span class=\"en\">{}</span></th>",
            if c.num { " class=\"num\"" } else { "" },
            esc(&c.ja),
            esc(&c.en)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &table.rows {
        out.push_str("<tr");
        if r.fail {
            out.push_str(" class=\"fail\"");
        }
        if let Some(key) = &r.key {
            w!(out, " data-key=\"{}\"", esc(key));
        }
        out.push('>');
        for (c, cell) in table.cols.iter().zip(&r.cells) {
            let numeric = c.num || matches!(cell, Cell::Num(_));
            w!(
                out,
                "<td{}>{}</td>",
                if numeric { " class=\"num\"" } else { "" },
                html_cell(cell)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// The report as one self-contained, printable HTML page, in Japanese and English: the
/// subject, completeness, verdicts, the timeline (inline SVG), traffic, retries, recovery,
/// what became of the orders, and leaks. No script, nothing loaded from anywhere: a
/// `Content-Security-Policy` meta element allows only the page's one inline `<style>`, by
/// its sha256. Every report value is escaped.
#[must_use]
pub(crate) fn html(report: &Report) -> String {
    let s = &report.subject;
    let mut out = String::with_capacity(64 * 1024);
    w!(
        out,
        "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"UTF-8\" />\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src '{}'\" />\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n\
         <meta name=\"robots\" content=\"noindex, nofollow\" />\n\
         <meta name=\"referrer\" content=\"no-referrer\" />\n\
         <meta name=\"generator\" content=\"webcollect-shim {}\" />\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        csp_hash(STYLE),
        env!("CARGO_PKG_VERSION"),
        esc(&format!("訓練レポート / Drill report: {}", s.title)),
    );
    w!(
        out,
        "<header class=\"top\">\n<div class=\"brand\"><span class=\"wordmark\">webcollect<span class=\"accent\">-shim</span></span>\
         <span class=\"brand-title\">訓練レポート <span class=\"en\">Drill evidence report</span></span></div>\n\
         <p class=\"overall\">{}</p>\n</header>\n<main>\n",
        html_cell(&Cell::Verdict(report.passed())),
    );
    let (kind_ja, kind_en) = kind_label(s.kind);
    for (i, section) in sections(report).iter().enumerate() {
        w!(
            out,
            "<section id=\"{}\" class=\"card\" aria-labelledby=\"{}-h\">\n",
            section.id,
            section.id
        );
        if i == 0 {
            // The first card carries the title of the whole page.
            w!(
                out,
                "<h1>{}</h1>\n<p class=\"muted\">{} · {}–{}</p>\n",
                esc(&s.title),
                bilingual(kind_ja, kind_en),
                esc(&at(&s.start)),
                esc(&at(&s.end)),
            );
        }
        w!(
            out,
            "<h2 id=\"{}-h\">{}</h2>\n",
            section.id,
            bilingual(section.ja, section.en)
        );
        for block in &section.blocks {
            match block {
                Block::H3(ja, en) => w!(out, "<h3>{}</h3>\n", bilingual(ja, en)),
                Block::Facts(facts) => {
                    out.push_str("<dl class=\"facts\">\n");
                    for f in facts {
                        w!(
                            out,
                            "<div><dt>{} <span class=\"en\">{}</span></dt><dd>{}</dd></div>\n",
                            esc(f.ja),
                            esc(f.en),
                            html_cell(&f.value)
                        );
                    }
                    out.push_str("</dl>\n");
                }
                Block::Table(table) => html_table(&mut out, table),
                Block::Warning(reasons) => {
                    w!(
                        out,
                        "<div class=\"warning\" role=\"alert\"><strong>不完全なレポート</strong> \
                         <span class=\"en\">/ Incomplete report: records are missing, the figures \
                         below may be too low.</span>{}</div>\n",
                        html_list(reasons)
                    );
                }
                Block::Timeline => {
                    out.push_str("<div class=\"chart\">\n");
                    out.push_str(&timeline_svg(report));
                    out.push_str("</div>\n");
                }
            }
        }
        out.push_str("</section>\n");
    }
    w!(
        out,
        "</main>\n<footer>webcollect-shim {} が作成 <span class=\"en\">/ generated by \
         webcollect-shim {}</span></footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION"),
    );
    out
}
