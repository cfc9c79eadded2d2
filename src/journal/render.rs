//! Renderers of a drill-evidence [`Report`]: JSON, one self-contained printable HTML page,
//! GitHub-flavoured Markdown, JUnit XML, and the SVG timeline the page embeds.
//!
//! Every string in a report may come from a merchant's request (order numbers, trader
//! codes, request ids) or from configuration (titles): each renderer escapes it for its
//! format and drops control characters first, so a value can neither break the markup nor
//! repaint a terminal that `cat`s the file. The HTML page has no script and loads nothing:
//! its Content-Security-Policy allows its one inline style, by sha256, as the admin console
//! does. Output depends on the report alone (no clock, no randomness): the same report
//! renders to the same bytes.
//!
//! HTML and Markdown are written from one intermediate model (sections of facts and
//! tables), so the two always carry the same content.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use base64::Engine as _;
use chrono::{DateTime, Datelike as _, FixedOffset};
use sha2::Digest as _;

use super::report::{Order, Report, SubjectKind};

/// Appends formatted text to a `String`. Writing into a `String` cannot fail, so the
/// `fmt::Result` carries nothing worth handling.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

// ---------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------

/// A report's output format (`GET /report?format=…`, `webcollect-shim report --format …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The [`Report`] itself, pretty-printed: the machine-readable contract.
    Json,
    /// One self-contained, printable HTML page (see [`html`]).
    Html,
    /// GitHub-flavoured Markdown (see [`markdown`]).
    Markdown,
    /// JUnit XML, one test case per verdict (see [`junit`]).
    Junit,
}

impl Format {
    /// The media type to serve the rendered report with.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Html => "text/html; charset=UTF-8",
            Self::Markdown => "text/markdown; charset=UTF-8",
            Self::Junit => "application/xml; charset=UTF-8",
        }
    }
}

/// Lets `{}` print a format by the name [`Format::from_str`] takes back.
impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Html => "html",
            Self::Markdown => "md",
            Self::Junit => "junit",
        })
    }
}

/// A format name [`Format::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: expected json, html, md (or markdown) or junit")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    /// `json`, `html`, `md` or `markdown`, `junit`; ASCII case is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            "md" | "markdown" => Ok(Self::Markdown),
            "junit" => Ok(Self::Junit),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// Renders `report` in `format`.
#[must_use]
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => json(report),
        Format::Html => html(report),
        Format::Markdown => markdown(report),
        Format::Junit => junit(report),
    }
}

/// The report as pretty-printed JSON, newline-terminated.
fn json(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Unreachable in practice (string keys, no custom serializer); still, a reader of
        // the output must get JSON that says what went wrong rather than nothing.
        Err(err) => format!(
            "{}\n",
            serde_json::json!({ "error": format!("cannot serialize the report: {err}") })
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------------------

/// Characters dropped from every value: controls (an ESC could repaint the terminal of
/// whoever `cat`s a Markdown or JUnit file, and XML 1.0 forbids most of them), bidi
/// overrides (they make `ABC/123` display as something else) and the two non-characters
/// XML forbids.
fn unwanted(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FFFE}'
                | '\u{FFFF}'
        )
}

/// A value fit for one line: line breaks and tabs become spaces (a Markdown table row or
/// an XML attribute ends at a newline), other unwanted characters go.
fn clean(s: &str) -> Cow<'_, str> {
    let breaks = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}');
    if !s.chars().any(|c| unwanted(c) || breaks(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .filter_map(|c| {
                if breaks(c) {
                    Some(' ')
                } else if unwanted(c) {
                    None
                } else {
                    Some(c)
                }
            })
            .collect(),
    )
}

/// Escapes a value for HTML or XML text and (double- or single-quoted) attributes.
fn esc(s: &str) -> String {
    let s = clean(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for a Markdown table cell: no raw HTML (`<`, `>` and `&` become
/// entities, which GFM shows as the characters), no emphasis, link, strike-through,
/// math or code span, no `|` ending the cell early, no `#` closing a heading. Values
/// appear in table cells (and the title in the top heading), where block syntax (`-`,
/// `1.`, `>`) means nothing.
fn md(s: &str) -> String {
    let s = clean(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '$' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Decisions and their colours
// ---------------------------------------------------------------------------------------

/// How a decision is shown. The colours are the admin console's Material tones: its
/// maintenance red (`.spark .hit`, one-off windows), its drill purple, its pass greens
/// (`.chips`), its grey for everything else (`.spark .other`); light tones for what only
/// looks like its dark sibling (report mode, HEAD, the drill header), blue for the bypass,
/// the one colour that means "someone was let through on purpose".
#[derive(Debug, Clone, Copy)]
struct Look {
    decision: &'static str,
    color: &'static str,
    /// CSS class of the page's swatch (inline `style` attributes would need
    /// `'unsafe-hashes'`; classes need nothing).
    class: &'static str,
    ja: &'static str,
}

/// Known decisions, in stacking order (bottom first): answers the window gave, then what
/// got through anyway, then ordinary passes. The colours are the console's
/// (`assets/admin/console.css`, `.dec-*`), so a printed report and the Report panel agree.
const LOOKS: [Look; 6] = [
    Look {
        decision: "maintenance",
        color: "#c62828",
        class: "d-maintenance",
        ja: "メンテ応答",
    },
    Look {
        decision: "drill-maintenance",
        color: "#6a1b9a",
        class: "d-drill-maintenance",
        ja: "ドリルのメンテ応答",
    },
    Look {
        decision: "would-maintain",
        color: "#ef6c00",
        class: "d-would-maintain",
        ja: "擬似メンテ",
    },
    Look {
        decision: "bypass",
        color: "#1565c0",
        class: "d-bypass",
        ja: "バイパス",
    },
    Look {
        decision: "drill-pass",
        color: "#00838f",
        class: "d-drill-pass",
        ja: "ドリル通過",
    },
    Look {
        decision: "pass",
        color: "#9e9e9e",
        class: "d-pass",
        ja: "通過",
    },
];

/// Any other decision.
const OTHER: Look = Look {
    decision: "other",
    color: "#555555",
    class: "d-other",
    ja: "その他",
};

/// The window's shading and edges in the timeline (the console's "in maintenance" list).
const WINDOW_FILL: &str = "#ffebee";
const WINDOW_EDGE: &str = "#c62828";

fn look(decision: &str) -> Look {
    LOOKS
        .iter()
        .find(|l| l.decision == decision)
        .copied()
        .unwrap_or(OTHER)
}

/// Decisions in display order: known ones as [`LOOKS`], then others alphabetically.
fn ordered<'a>(decisions: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let rank = |d: &str| {
        LOOKS
            .iter()
            .position(|l| l.decision == d)
            .unwrap_or(LOOKS.len())
    };
    let mut all: Vec<&str> = decisions
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    all.sort_by_key(|d| (rank(d), *d));
    all
}

// ---------------------------------------------------------------------------------------
// Times and numbers
// ---------------------------------------------------------------------------------------

/// A time in its own offset (the report's zone: [`Report::build`] converts them).
fn at(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

fn minute(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%d %H:%M %:z").to_string()
}

fn hhmm(t: &DateTime<FixedOffset>) -> String {
    t.format("%H:%M").to_string()
}

/// `4/20(月)`, as the console labels its days.
fn day(t: &DateTime<FixedOffset>) -> String {
    const WEEKDAYS: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];
    let weekday = WEEKDAYS
        .get(t.weekday().num_days_from_monday() as usize)
        .copied()
        .unwrap_or("");
    format!("{}/{}({weekday})", t.month(), t.day())
}

/// `4 h 30 min`, `90 s`.
fn duration(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut parts = Vec::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "min"), (s, "s")] {
        if n > 0 {
            parts.push(format!("{n} {unit}"));
        }
    }
    if parts.is_empty() {
        return "0 s".into();
    }
    format!("{sign}{}", parts.join(" "))
}

// ---------------------------------------------------------------------------------------
// Timeline SVG
// ---------------------------------------------------------------------------------------

/// The SVG's geometry, in user units (the page scales it to its width).
const SVG_W: f64 = 960.0;
const PLOT_LEFT: f64 = 56.0;
const PLOT_RIGHT: f64 = 28.0;
const PLOT_TOP: f64 = 44.0;
const PLOT_H: f64 = 200.0;
const FONT: &str =
    "'Noto Sans CJK JP', 'Noto Sans JP', 'Hiragino Kaku Gothic ProN', Meiryo, sans-serif";

/// Tick steps in seconds: the first that gives at most [`MAX_TICKS`] labels is used.
const TICK_STEPS: [i64; 14] = [
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800,
];
const MAX_TICKS: i64 = 12;

/// Past the longest of [`TICK_STEPS`] (spans of months): `seconds` rounded up to whole
/// days, so labels stay few and fall on midnights.
fn whole_days(seconds: i64) -> i64 {
    (seconds.max(0) / 86_400 + 1) * 86_400
}

/// Two decimals: enough for a crisp chart, few enough to keep the file small, and the
/// same digits on every platform.
fn num(v: f64) -> String {
    format!("{v:.2}")
}

/// Rough width of a label, to lay the legend out without a font engine: CJK glyphs are
/// about one em, Latin ones about 0.6.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|c| if c.is_ascii() { 0.6 } else { 1.0 })
        .sum::<f64>()
        * size
}

/// A name for a bucket width: `1 min`, `2 h`.
fn bucket_name(seconds: i64) -> String {
    duration(seconds.max(1))
}

/// Label instants, in Unix seconds: the shortest of [`TICK_STEPS`] that gives at most
/// [`MAX_TICKS`] labels over `seconds`, aligned on `t0`'s offset (a 15-minute step falls
/// on :00, :15, … of local time, not of UTC).
fn tick_times(t0: &DateTime<FixedOffset>, seconds: i64) -> Vec<i64> {
    let step = TICK_STEPS
        .iter()
        .copied()
        .find(|s| seconds / s <= MAX_TICKS)
        .unwrap_or_else(|| whole_days(seconds / MAX_TICKS));
    let offset = i64::from(t0.offset().local_minus_utc());
    let local0 = t0.timestamp() + offset;
    let mut local = local0.div_euclid(step) * step;
    if local < local0 {
        local += step;
    }
    let mut ticks = Vec::new();
    while local <= local0 + seconds {
        ticks.push(local - offset);
        local += step;
    }
    ticks
}

/// A stacked-bar chart of [`Report::timeline`]: one `<g class="bar">` per bucket with
/// requests, stacked by decision in fixed colours, the report's window (or drill, or
/// range) shaded behind, `HH:MM` labels in the report's own offset, the highest bucket's
/// count on the y axis, a legend and a `<title>`. A standalone SVG document (it also
/// inlines into HTML); deterministic.
#[must_use]
pub fn timeline_svg(report: &Report) -> String {
    let tl = &report.timeline;
    let buckets = &tl.buckets;
    let width = tl.bucket_seconds.max(1);
    let n = buckets.len();
    let t0 = buckets.first().map_or(report.span.from, |b| b.start);
    let seconds = if n == 0 {
        (report.span.horizon - report.span.from).num_seconds()
    } else {
        n as i64 * width
    }
    .max(1);
    let plot_w = SVG_W - PLOT_LEFT - PLOT_RIGHT;
    let base = PLOT_TOP + PLOT_H;
    let x = |t: &DateTime<FixedOffset>| {
        let s = (*t - t0).num_milliseconds() as f64 / 1000.0;
        PLOT_LEFT + (s / seconds as f64).clamp(0.0, 1.0) * plot_w
    };
    let totals: Vec<u64> = buckets
        .iter()
        .map(|b| b.by_decision.values().sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let scale = max.max(1) as f64;
    let y = |count: u64| base - count as f64 / scale * PLOT_H;
    let subject = &report.subject;
    let (window_ja, window_en) = match subject.kind {
        SubjectKind::Window => ("メンテナンス枠", "window"),
        SubjectKind::Drill => ("ドリル", "drill"),
        SubjectKind::Range => ("対象期間", "range"),
    };

    let mut body = String::new();
    // Heading line.
    w!(
        body,
        "<text x=\"{}\" y=\"16\" font-size=\"13\" fill=\"#222\">{} / requests per {}</text>\n",
        num(PLOT_LEFT),
        esc(&format!("{} ごとのリクエスト数", bucket_name(width))),
        esc(&bucket_name(width)),
    );

    // The window, behind everything.
    let (wx0, wx1) = (x(&subject.start), x(&subject.end));
    if wx1 > wx0 {
        w!(
            body,
            "<g class=\"window\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{WINDOW_FILL}\"/>",
            num(wx0),
            num(PLOT_TOP),
            num(wx1 - wx0),
            num(PLOT_H),
        );
        for edge in [wx0, wx1] {
            w!(
                body,
                "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{WINDOW_EDGE}\" stroke-width=\"1\" stroke-dasharray=\"4 3\"/>",
                num(edge),
                num(PLOT_TOP),
                num(base),
            );
        }
        // HH:MM alone is ambiguous once the chart spans more than one day.
        let same_day = [subject.end, t0 + chrono::TimeDelta::seconds(seconds)]
            .iter()
            .all(|t| t.date_naive() == subject.start.date_naive());
        let label = if same_day {
            format!(
                "{window_ja} {window_en} {}–{}",
                hhmm(&subject.start),
                hhmm(&subject.end)
            )
        } else {
            format!(
                "{window_ja} {window_en} {} {}–{} {}",
                day(&subject.start),
                hhmm(&subject.start),
                day(&subject.end),
                hhmm(&subject.end)
            )
        };
        // Keep the label inside the chart when the window starts near its right edge.
        let lx = wx0
            .min(SVG_W - PLOT_RIGHT - text_width(&label, 11.0))
            .max(0.0);
        w!(
            body,
            "<text x=\"{}\" y=\"{}\" fill=\"{WINDOW_EDGE}\">{}</text></g>\n",
            num(lx + 2.0),
            num(PLOT_TOP - 6.0),
            esc(&label),
        );
    }

    // Grid and time labels.
    let mut last_day = String::new();
    for tick in tick_times(&t0, seconds) {
        let index = usize::try_from((tick - t0.timestamp()) / width)
            .unwrap_or(0)
            .min(n.saturating_sub(1));
        let offset = buckets
            .get(index)
            .map_or(*t0.offset(), |b| *b.start.offset());
        let Some(t) = DateTime::from_timestamp(tick, 0).map(|t| t.with_timezone(&offset)) else {
            continue;
        };
        let tx = x(&t);
        w!(
            body,
            "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#e0e0e0\" stroke-width=\"1\"/>",
            num(tx),
            num(PLOT_TOP),
            num(base),
        );
        w!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(tx),
            num(base + 14.0),
            esc(&hhmm(&t)),
        );
        let d = day(&t);
        if d != last_day {
            w!(
                body,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
                num(tx),
                num(base + 27.0),
                esc(&d),
            );
            last_day = d;
        }
        body.push('\n');
    }

    // Axes and the y scale: 0 and the highest bucket.
    w!(
        body,
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#e0e0e0\" stroke-width=\"1\" stroke-dasharray=\"2 2\"/>\
         <line x1=\"{0}\" x2=\"{0}\" y1=\"{2}\" y2=\"{3}\" stroke=\"#999\" stroke-width=\"1\"/>\
         <line x1=\"{0}\" x2=\"{1}\" y1=\"{3}\" y2=\"{3}\" stroke=\"#999\" stroke-width=\"1\"/>\
         <text class=\"y-max\" x=\"{4}\" y=\"{5}\" text-anchor=\"end\">{6}</text>\
         <text x=\"{4}\" y=\"{3}\" text-anchor=\"end\">0</text>\n",
        num(PLOT_LEFT),
        num(SVG_W - PLOT_RIGHT),
        num(PLOT_TOP),
        num(base),
        num(PLOT_LEFT - 6.0),
        num(PLOT_TOP + 4.0),
        max,
    );

    // Bars: one group per bucket with requests, its tooltip listing the counts.
    let bar_w = plot_w / n.max(1) as f64;
    let gap = if bar_w >= 4.0 { 1.0 } else { 0.0 };
    let mut seen = BTreeSet::new();
    for (i, (bucket, total)) in buckets.iter().zip(&totals).enumerate() {
        if *total == 0 {
            continue;
        }
        let decisions = ordered(bucket.by_decision.keys().map(String::as_str));
        let counts: Vec<String> = decisions
            .iter()
            .map(|d| format!("{d} {}", bucket.by_decision.get(*d).copied().unwrap_or(0)))
            .collect();
        w!(
            body,
            "<g class=\"bar\" data-start=\"{}\"><title>{}–{} · {}</title>",
            esc(&bucket.start.to_rfc3339()),
            esc(&hhmm(&bucket.start)),
            esc(&hhmm(&(bucket.start + chrono::TimeDelta::seconds(width)))),
            esc(&counts.join(", ")),
        );
        let bx = PLOT_LEFT + i as f64 * bar_w;
        let mut below = 0;
        for d in decisions {
            let count = bucket.by_decision.get(d).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let look = look(d);
            seen.insert(look.decision);
            let (top, bottom) = (y(below + count), y(below));
            w!(
                body,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
                num(bx),
                num(top),
                num((bar_w - gap).max(0.5)),
                num(bottom - top),
                look.color,
            );
            below += count;
        }
        body.push_str("</g>\n");
    }
    if max == 0 {
        w!(
            body,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#777\">記録なし / no records</text>\n",
            num(PLOT_LEFT + plot_w / 2.0),
            num(PLOT_TOP + PLOT_H / 2.0),
        );
    }

    // Legend: the window, then each decision drawn; wraps at the chart's width.
    let mut items = vec![(
        format!("{window_ja} {window_en}"),
        WINDOW_FILL,
        Some(WINDOW_EDGE),
    )];
    for l in LOOKS.iter().chain([&OTHER]) {
        if seen.contains(l.decision) {
            items.push((format!("{} {}", l.ja, l.decision), l.color, None));
        }
    }
    let (mut lx, mut ly) = (PLOT_LEFT, base + 48.0);
    body.push_str("<g class=\"legend\">");
    for (label, fill, stroke) in items {
        let item_w = 18.0 + text_width(&label, 11.0);
        if lx + item_w > SVG_W - PLOT_RIGHT && lx > PLOT_LEFT {
            lx = PLOT_LEFT;
            ly += 18.0;
        }
        let stroke = stroke.map_or(String::new(), |s| format!(" stroke=\"{s}\""));
        w!(
            body,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"10\" fill=\"{fill}\"{stroke}/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            num(lx),
            num(ly - 9.0),
            num(lx + 18.0),
            num(ly),
            esc(&label),
        );
        lx += item_w + 16.0;
    }
    body.push_str("</g>\n");
    let height = ly + 10.0;

    let what = match &subject.id {
        Some(id) => format!("{id} {}", subject.title),
        None => subject.title.clone(),
    };
    let mut svg = String::new();
    w!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{0}\" height=\"{1}\" \
         viewBox=\"0 0 {0} {1}\" role=\"img\" aria-labelledby=\"timeline-title timeline-desc\" \
         font-family=\"{2}\" font-size=\"11\" fill=\"#444\">\n\
         <title id=\"timeline-title\">{3}</title>\n<desc id=\"timeline-desc\">{4}</desc>\n",
        num(SVG_W),
        num(height),
        esc(FONT),
        esc(&format!("タイムライン / Timeline: {what}")),
        esc(&format!(
            "Requests per {} from {} to {}, stacked by decision; {window_en} shaded from {} to {}; \
             the busiest bucket has {max}.",
            bucket_name(width),
            at(&report.span.from),
            at(&report.span.horizon),
            at(&subject.start),
            at(&subject.end),
        )),
    );
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}

// ---------------------------------------------------------------------------------------
// The model HTML and Markdown share
// ---------------------------------------------------------------------------------------

/// One table cell, before it is written as HTML or Markdown.
#[derive(Debug, Clone)]
enum Cell {
    /// Plain text.
    Text(String),
    /// An identifier (order number, request id, service): monospace on the page.
    Code(String),
    /// A number or duration: right-aligned.
    Num(String),
    /// A PASS/FAIL badge.
    Verdict(bool),
    /// A decision with its colour.
    Decision(String),
    /// Several values (a verdict's offenders).
    List(Vec<String>),
    /// Text that needs attention (a count over its threshold, a service not recovered).
    Warn(String),
    /// Nothing to show.
    Empty,
}

/// A column heading.
#[derive(Debug, Clone)]
struct Col {
    ja: String,
    en: String,
    num: bool,
}

fn col(ja: &str, en: &str) -> Col {
    Col {
        ja: ja.into(),
        en: en.into(),
        num: false,
    }
}

fn num_col(ja: &str, en: &str) -> Col {
    Col {
        num: true,
        ..col(ja, en)
    }
}

/// A table row; `fail` rows are highlighted (failed verdicts).
#[derive(Debug, Clone)]
struct Row {
    /// `data-key` on the page: lets a reader (or a test) find a verdict's row.
    key: Option<String>,
    fail: bool,
    cells: Vec<Cell>,
}

fn row(cells: Vec<Cell>) -> Row {
    Row {
        key: None,
        fail: false,
        cells,
    }
}

#[derive(Debug, Clone)]
struct Table {
    /// The `id` of the table on the page.
    id: &'static str,
    cols: Vec<Col>,
    rows: Vec<Row>,
}

/// One labelled value of a facts list.
#[derive(Debug, Clone)]
struct Fact {
    ja: &'static str,
    en: &'static str,
    value: Cell,
}

fn fact(ja: &'static str, en: &'static str, value: Cell) -> Fact {
    Fact { ja, en, value }
}

#[derive(Debug, Clone)]
enum Block {
    /// A sub-heading.
    H3(&'static str, &'static str),
    Facts(Vec<Fact>),
    Table(Table),
    /// The completeness warning with its reasons.
    Warning(Vec<String>),
    /// The timeline: the SVG on the page, a coarser table in Markdown.
    Timeline,
}

#[derive(Debug, Clone)]
struct Section {
    id: &'static str,
    ja: &'static str,
    en: &'static str,
    blocks: Vec<Block>,
}

fn kind_label(kind: SubjectKind) -> (&'static str, &'static str) {
    match kind {
        SubjectKind::Window => ("メンテナンス枠", "window"),
        SubjectKind::Drill => ("ドリル", "drill"),
        SubjectKind::Range => ("期間", "range"),
    }
}

fn count(n: u64) -> Cell {
    Cell::Num(n.to_string())
}

fn time_cell(t: Option<&DateTime<FixedOffset>>) -> Cell {
    t.map_or(Cell::Empty, |t| Cell::Text(at(t)))
}

fn orders_table(id: &'static str, orders: &[Order], limit: u64) -> Table {
    Table {
        id,
        cols: vec![
            col("加盟店コード", "trader_code"),
            col("受付番号", "order_no"),
            num_col("試行回数", "attempts"),
            col("最初の成功", "first success"),
        ],
        rows: orders
            .iter()
            .map(|o| {
                let attempts = if o.attempts > limit {
                    Cell::Warn(o.attempts.to_string())
                } else {
                    count(o.attempts)
                };
                row(vec![
                    if o.trader_code.is_empty() {
                        Cell::Empty
                    } else {
                        Cell::Code(o.trader_code.clone())
                    },
                    Cell::Code(o.order_no.clone()),
                    attempts,
                    time_cell(o.first_success.as_ref()),
                ])
            })
            .collect(),
    }
}

/// The report as sections of facts and tables, in reading order.
fn sections(report: &Report) -> Vec<Section> {
    let s = &report.subject;
    let t = &report.thresholds;
    let (kind_ja, kind_en) = kind_label(s.kind);
    let mut out = Vec::new();

    // Subject.
    let mut subject = vec![
        fact("種類", "kind", Cell::Text(format!("{kind_ja} / {kind_en}"))),
        fact("ID", "id", s.id.clone().map_or(Cell::Empty, Cell::Code)),
        fact("タイトル", "title", Cell::Text(s.title.clone())),
        fact("開始", "start", Cell::Text(at(&s.start))),
        fact("終了", "end", Cell::Text(at(&s.end))),
        fact(
            "長さ",
            "length",
            Cell::Text(duration((s.end - s.start).num_seconds())),
        ),
        fact(
            "サービス",
            "services",
            if s.services.is_empty() {
                Cell::Text("全サービス / every service".into())
            } else {
                Cell::List(s.services.clone())
            },
        ),
        fact(
            "タイムゾーン",
            "time zone",
            Cell::Code(report.timezone.clone()),
        ),
        fact("集計開始", "span from", Cell::Text(at(&report.span.from))),
        fact("集計終了", "span to", Cell::Text(at(&report.span.to))),
        fact(
            "打ち切り",
            "horizon",
            Cell::Text(if report.provisional {
                format!(
                    "{} (暫定 / provisional: orders may still recover until {})",
                    at(&report.span.horizon),
                    at(&report.span.to)
                )
            } else {
                at(&report.span.horizon)
            }),
        ),
        fact(
            "レプリカ",
            "replicas",
            if report.replicas.is_empty() {
                Cell::Empty
            } else {
                Cell::List(report.replicas.clone())
            },
        ),
        fact(
            "許容値",
            "thresholds",
            Cell::Text(format!(
                "stranded ≤ {}, attempts per order ≤ {}, leaks ≤ {}",
                t.max_stranded, t.max_attempts_per_order, t.max_leaks
            )),
        ),
    ];
    let failed = report.verdicts.iter().filter(|v| !v.ok).count();
    subject.splice(
        0..0,
        [
            fact("総合判定", "overall", Cell::Verdict(report.passed())),
            fact(
                "不合格の判定",
                "verdicts failed",
                Cell::Text(format!("{failed} / {}", report.verdicts.len())),
            ),
        ],
    );
    let mut blocks = vec![Block::Facts(subject)];
    if !report.complete {
        blocks.push(Block::Warning(report.incomplete.clone()));
    }
    out.push(Section {
        id: "subject",
        ja: "対象",
        en: "Subject",
        blocks,
    });

    // Verdicts.
    out.push(Section {
        id: "verdicts",
        ja: "判定",
        en: "Verdicts",
        blocks: vec![Block::Table(Table {
            id: "verdict-table",
            cols: vec![
                col("判定", "verdict"),
                col("結果", "result"),
                col("詳細", "detail"),
                col("該当", "offenders"),
            ],
            rows: report
                .verdicts
                .iter()
                .map(|v| Row {
                    key: Some(v.name.clone()),
                    fail: !v.ok,
                    cells: vec![
                        Cell::Code(v.name.clone()),
                        Cell::Verdict(v.ok),
                        Cell::Text(v.detail.clone()),
                        if v.offenders.is_empty() {
                            Cell::Empty
                        } else {
                            Cell::List(v.offenders.clone())
                        },
                    ],
                })
                .collect(),
        })],
    });

    out.push(Section {
        id: "timeline",
        ja: "タイムライン",
        en: "Timeline",
        blocks: vec![Block::Timeline],
    });

    // Traffic.
    let r = &report.requests;
    let decisions = ordered(r.by_decision.keys().map(String::as_str));
    let by_decision = Table {
        id: "by-decision",
        cols: vec![
            col("判定", "decision"),
            col("意味", "meaning"),
            num_col("件数", "requests"),
            num_col("割合", "share"),
        ],
        rows: decisions
            .iter()
            .map(|d| {
                let n = r.by_decision.get(*d).copied().unwrap_or(0);
                let share = n as f64 * 100.0 / r.total.max(1) as f64;
                row(vec![
                    Cell::Decision((*d).to_string()),
                    Cell::Text(look(d).ja.into()),
                    count(n),
                    Cell::Num(format!("{share:.1}%")),
                ])
            })
            .collect(),
    };
    let service_decisions = ordered(
        r.by_service
            .values()
            .flat_map(|m| m.keys().map(String::as_str)),
    );
    let mut service_cols = vec![col("サービス", "service")];
    service_cols.extend(service_decisions.iter().map(|d| Col {
        ja: look(d).ja.into(),
        en: (*d).to_string(),
        num: true,
    }));
    service_cols.push(num_col("計", "total"));
    let by_service = Table {
        id: "by-service",
        cols: service_cols,
        rows: r
            .by_service
            .iter()
            .map(|(service, m)| {
                let mut cells = vec![Cell::Code(service.clone())];
                cells.extend(
                    service_decisions
                        .iter()
                        .map(|d| count(m.get(*d).copied().unwrap_or(0))),
                );
                cells.push(count(m.values().sum()));
                row(cells)
            })
            .collect(),
    };
    let by_function_div = Table {
        id: "by-function-div",
        cols: vec![col("機能区分", "function_div"), num_col("件数", "requests")],
        rows: r
            .by_function_div
            .iter()
            .map(|(div, n)| row(vec![Cell::Code(div.clone()), count(*n)]))
            .collect(),
    };
    out.push(Section {
        id: "traffic",
        ja: "通信量",
        en: "Traffic",
        blocks: vec![
            Block::Facts(vec![
                fact("全リクエスト", "requests in the span", count(r.total)),
                fact("枠内", "in the window", count(r.in_window)),
                fact("注文数", "distinct orders", count(report.orders.distinct)),
                fact("加盟店数", "distinct traders", count(report.orders.traders)),
            ]),
            Block::H3("判定別", "By decision"),
            Block::Table(by_decision),
            Block::H3("サービス別", "By service and decision"),
            Block::Table(by_service),
            Block::H3("機能区分別", "By function_div"),
            Block::Table(by_function_div),
        ],
    });

    // Retries.
    let o = &report.orders;
    let limit = t.max_attempts_per_order;
    out.push(Section {
        id: "retries",
        ja: "再試行",
        en: "Retries",
        blocks: vec![
            Block::Facts(vec![
                fact("再試行された注文", "orders retried", count(o.retried)),
                fact(
                    "1注文の最多試行",
                    "most attempts of one order",
                    if o.max_attempts > limit {
                        Cell::Warn(o.max_attempts.to_string())
                    } else {
                        count(o.max_attempts)
                    },
                ),
                fact("許容", "allowed", count(limit)),
            ]),
            Block::H3("枠内に試行された注文", "Orders attempted during the window"),
            Block::Table(orders_table("attempted", &o.attempted, limit)),
            Block::H3("加盟店の最繁忙分", "Traders' busiest minute"),
            Block::Table(Table {
                id: "traders",
                cols: vec![
                    col("加盟店コード", "trader_code"),
                    num_col("枠内の件数", "requests in the window"),
                    col("最繁忙分", "busiest minute"),
                    num_col("その分の件数", "requests that minute"),
                ],
                rows: report
                    .traders
                    .iter()
                    .map(|tr| {
                        row(vec![
                            Cell::Code(tr.trader_code.clone()),
                            count(tr.requests),
                            Cell::Text(minute(&tr.busiest_minute)),
                            count(tr.busiest_minute_requests),
                        ])
                    })
                    .collect(),
            }),
        ],
    });

    // Recovery.
    out.push(Section {
        id: "recovery",
        ja: "復旧",
        en: "Recovery",
        blocks: vec![Block::Table(Table {
            id: "recovery-table",
            cols: vec![
                col("サービス", "service"),
                col("終了後の最初の成功", "first success after the end"),
                num_col("終了からの秒数", "seconds after the end"),
            ],
            rows: report
                .recovery
                .iter()
                .map(|rec| {
                    row(vec![
                        Cell::Code(rec.service.clone()),
                        rec.first_success
                            .as_ref()
                            .map_or(Cell::Warn("未復旧 / none yet".into()), |t| {
                                Cell::Text(at(t))
                            }),
                        rec.after_end_seconds.map_or(Cell::Empty, |s| {
                            Cell::Num(if s >= 60.0 {
                                format!("{s} s ({})", duration(s as i64))
                            } else {
                                format!("{s} s")
                            })
                        }),
                    ])
                })
                .collect(),
        })],
    });

    // What became of the orders.
    out.push(Section {
        id: "orders",
        ja: "注文の行方",
        en: "Orders",
        blocks: vec![
            Block::H3(
                "取り残された注文",
                "Stranded: no success before the horizon",
            ),
            Block::Table(orders_table("stranded", &o.stranded, limit)),
            Block::H3(
                "枠の後に成功した注文",
                "Recovered: successful after the window",
            ),
            Block::Table(orders_table("recovered", &o.recovered, limit)),
            Block::H3("枠内に成功した注文", "Successful during the window"),
            Block::Table(orders_table(
                "succeeded-in-window",
                &o.succeeded_in_window,
                limit,
            )),
        ],
    });

    // Leaks.
    out.push(Section {
        id: "leaks",
        ja: "漏れ",
        en: "Leaks: requests that reached the gateway during the window",
        blocks: vec![Block::Table(Table {
            id: "leak-table",
            cols: vec![
                col("時刻", "at"),
                col("レプリカ", "replica"),
                col("リクエストID", "request id"),
                col("ルート", "route"),
                col("サービス", "service"),
                col("メソッド", "method"),
                col("判定", "decision"),
                col("理由", "reason"),
                num_col("ステータス", "status"),
                col("加盟店コード", "trader_code"),
                col("受付番号", "order_no"),
            ],
            rows: report
                .leaks
                .iter()
                .map(|l| {
                    row(vec![
                        Cell::Text(at(&l.at)),
                        Cell::Code(l.replica.clone()),
                        Cell::Code(l.request_id.clone()),
                        Cell::Code(l.route.clone()),
                        Cell::Code(l.service.clone()),
                        Cell::Code(l.method.clone()),
                        Cell::Decision(l.decision.clone()),
                        Cell::Text(l.reason.clone()),
                        count(u64::from(l.status)),
                        l.trader_code.clone().map_or(Cell::Empty, Cell::Code),
                        l.order_no.clone().map_or(Cell::Empty, Cell::Code),
                    ])
                })
                .collect(),
        })],
    });
    out
}

// ---------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------

/// The page's one stylesheet: the admin console's look, on paper as on screen. Its sha256
/// is the page's whole style policy, so it must stay a constant (no value interpolated).
const STYLE: &str = r#"
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
fn csp_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `ja <span class="en">/ en</span>`: reads "判定 / Verdicts" as plain text too.
fn bilingual(ja: &str, en: &str) -> String {
    format!("{} <span class=\"en\">/ {}</span>", esc(ja), esc(en))
}

fn html_list(items: &[String]) -> String {
    let mut out = String::from("<ul>");
    for item in items {
        w!(out, "<li><code>{}</code></li>", esc(item));
    }
    out.push_str("</ul>");
    out
}

/// A cell's content on the page (for the `<td>` or `<dd>` around it).
fn html_cell(cell: &Cell) -> String {
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

fn html_table(out: &mut String, table: &Table) {
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
pub fn html(report: &Report) -> String {
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

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

fn md_cell(cell: &Cell) -> String {
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

fn md_table(out: &mut String, table: &Table) {
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
const MD_ROWS: i64 = 48;

/// The timeline for Markdown, where no SVG shows: requests per coarser step (about
/// [`MD_ROWS`] rows at most, aligned like the chart's labels), by decision, with the rows the window
/// touches marked.
fn md_timeline(out: &mut String, report: &Report) {
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
pub fn markdown(report: &Report) -> String {
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

// ---------------------------------------------------------------------------------------
// JUnit
// ---------------------------------------------------------------------------------------

/// The report as JUnit XML for CI: one `<testsuite>` with one `<testcase>` per verdict,
/// in the verdicts' order; a failed verdict has a `<failure>` whose message is its detail
/// and whose text lists the offenders. The subject is in the suite's `<properties>`.
#[must_use]
pub fn junit(report: &Report) -> String {
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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use quick_xml::Reader;
    use quick_xml::events::Event;

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
        let failing: Vec<&str> = r
            .verdicts
            .iter()
            .filter(|v| !v.ok)
            .map(|v| v.name.as_str())
            .collect();
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
}
