//! Renderers of a drill-evidence `Report`: JSON, one self-contained printable HTML page,
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

use super::report::{Report, ReportedOrder, SubjectKind};

/// Appends formatted text to a `String`. Writing into a `String` cannot fail, so the
/// `fmt::Result` carries nothing worth handling.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

mod html;
mod junit;
mod markdown;
mod model;
mod svg;
#[cfg(test)]
mod tests;

pub(crate) use html::html;
pub(crate) use junit::junit;
pub(crate) use markdown::markdown;
pub(crate) use svg::timeline_svg;

// ---------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------

/// A report's output format (`GET /report?format=…`, `webcollect-shim report --format …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The `Report` itself, pretty-printed: the machine-readable contract.
    Json,
    /// One self-contained, printable HTML page (see `html`).
    Html,
    /// GitHub-flavoured Markdown (see `markdown`).
    Markdown,
    /// JUnit XML, one test case per verdict (see `junit`).
    Junit,
}

impl Format {
    /// The media type to serve the rendered report with.
    #[must_use]
    pub(crate) fn content_type(self) -> &'static str {
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
