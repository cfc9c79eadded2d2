//! The maintenance page: a template split once at load, rendered per request with the
//! active window in Japanese (`4月20日(月) 2時00分～6時00分`).

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Title and heading of the built-in page.
pub(crate) const PAGE_TITLE: &str = "クロネコwebコレクト メンテナンスのお知らせ";

const BUILT_IN: &str = include_str!("../../assets/maintenance.html");

/// `4月20日(月) 2時00分～6時00分`; both dates when the window spans days, years when it spans
/// years.
#[must_use]
pub(crate) fn window_text(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> String {
    let (s, e) = (
        tz.from_utc_datetime(&start.naive_utc()),
        tz.from_utc_datetime(&end.naive_utc()),
    );
    let date = |t: &DateTime<Tz>, year: bool| {
        let wd =
            ["月", "火", "水", "木", "金", "土", "日"][t.weekday().num_days_from_monday() as usize];
        let y = if year {
            format!("{}年", t.year())
        } else {
            String::new()
        };
        format!("{y}{}月{}日({wd})", t.month(), t.day())
    };
    let clock = |t: &DateTime<Tz>| format!("{}時{:02}分", t.hour(), t.minute());
    let years = s.year() != e.year();
    if s.date_naive() == e.date_naive() {
        format!("{} {}～{}", date(&s, false), clock(&s), clock(&e))
    } else {
        format!(
            "{} {}～{} {}",
            date(&s, years),
            clock(&s),
            date(&e, years),
            clock(&e)
        )
    }
}

/// Contact details shown on the maintenance page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contact {
    /// Who to contact.
    pub(crate) name: String,
    /// Toll-free number.
    pub(crate) free_dial: String,
    /// Number for mobile and IP phones.
    pub(crate) phone: String,
    /// Opening hours.
    pub(crate) hours: String,
    /// E-mail address.
    pub(crate) email: String,
}

/// Values substituted into the page (HTML-escaped).
#[derive(Debug)]
pub(crate) struct PageValues<'a> {
    /// Page title and heading.
    pub(crate) title: &'a str,
    /// Rendered window, e.g. `4月20日(月) 2時00分～6時00分`.
    pub(crate) window: &'a str,
    /// Contact block.
    pub(crate) contact: &'a Contact,
}

/// A placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub(crate) enum Var {
    Title,
    Window,
    ContactName,
    ContactFreeDial,
    ContactPhone,
    ContactHours,
    ContactEmail,
}

/// Every placeholder a template may use.
pub(crate) const PLACEHOLDERS: &[(&str, Var)] = &[
    ("title", Var::Title),
    ("window", Var::Window),
    ("contact_name", Var::ContactName),
    ("contact_free_dial", Var::ContactFreeDial),
    ("contact_phone", Var::ContactPhone),
    ("contact_hours", Var::ContactHours),
    ("contact_email", Var::ContactEmail),
];

#[derive(Debug)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A page template split once (at config load) into text and `{{placeholder}}` segments.
#[derive(Debug)]
pub(crate) struct Template {
    segments: Vec<Piece>,
}

impl Template {
    /// The built-in page (`assets/maintenance.html`).
    #[must_use]
    pub(crate) fn built_in() -> Self {
        Self::parse(BUILT_IN).unwrap_or_else(|e| Self {
            segments: vec![Piece::Text(e)],
        })
    }

    /// Splits `text` into segments.
    ///
    /// # Errors
    /// An unknown or unclosed placeholder, with its line in the template.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            segments.push(Piece::Text(rest[..open].to_string()));
            let after = &rest[open + 2..];
            let line = text.len() - rest.len() + open;
            let line = text[..line].matches('\n').count() + 1;
            let close = after
                .find("}}")
                .ok_or_else(|| format!("template line {line}: unclosed {{{{"))?;
            let name = after[..close].trim();
            let var = PLACEHOLDERS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let known: Vec<String> = PLACEHOLDERS
                        .iter()
                        .map(|(n, _)| format!("{{{{{n}}}}}"))
                        .collect();
                    format!(
                        "template line {line}: unknown placeholder {{{{{name}}}}} (known: {})",
                        known.join(", ")
                    )
                })?;
            segments.push(Piece::Var(var));
            rest = &after[close + 2..];
        }
        segments.push(Piece::Text(rest.to_string()));
        Ok(Self { segments })
    }

    /// Renders the page.
    #[must_use]
    pub(crate) fn render(&self, v: &PageValues<'_>) -> String {
        let mut out = String::with_capacity(8 * 1024);
        for seg in &self.segments {
            match seg {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(var) => html_escape_into(
                    &mut out,
                    match var {
                        Var::Title => v.title,
                        Var::Window => v.window,
                        Var::ContactName => &v.contact.name,
                        Var::ContactFreeDial => &v.contact.free_dial,
                        Var::ContactPhone => &v.contact.phone,
                        Var::ContactHours => &v.contact.hours,
                        Var::ContactEmail => &v.contact.email,
                    },
                ),
            }
        }
        out
    }
}

/// Escapes text for HTML and XML content and quoted attributes.
#[must_use]
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    html_escape_into(&mut out, text);
    out
}

fn html_escape_into(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn window_text_matches_the_notice() {
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(
            window_text(
                t("2020-04-20T02:00:00+09:00"),
                t("2020-04-20T06:00:00+09:00"),
                tokyo
            ),
            "4月20日(月) 2時00分～6時00分"
        );
        assert_eq!(
            window_text(
                t("2020-04-20T22:30:00+09:00"),
                t("2020-04-21T06:00:00+09:00"),
                tokyo
            ),
            "4月20日(月) 22時30分～4月21日(火) 6時00分"
        );
        assert_eq!(
            window_text(
                t("2020-12-31T23:00:00+09:00"),
                t("2021-01-01T01:00:00+09:00"),
                tokyo
            ),
            "2020年12月31日(木) 23時00分～2021年1月1日(金) 1時00分"
        );
    }

    #[test]
    fn built_in_page_has_every_placeholder_and_no_unknown_one() {
        let template = Template::parse(BUILT_IN).unwrap();
        for (_, var) in PLACEHOLDERS {
            assert!(
                template
                    .segments
                    .iter()
                    .any(|s| matches!(s, Piece::Var(v) if v == var))
            );
        }
        assert!(
            Template::parse("{{nope}}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(Template::parse("{{title").is_err());
    }
}
