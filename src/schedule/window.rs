//! Maintenance windows as the schedule knows them: one-off, recurring (a cron pattern and a
//! duration) and ad-hoc drills, and how a recurring window expands into occurrences.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Where a window comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Source {
    /// A one-off `[[windows]]` entry.
    #[default]
    Config,
    /// An occurrence of a recurring `[[windows]]` entry.
    Recurring,
    /// An ad-hoc drill opened through the admin API.
    Drill,
}

impl Source {
    /// Lowercase name for JSON and logs.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Recurring => "recurring",
            Self::Drill => "drill",
        }
    }
}

/// A maintenance window `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Unique id.
    pub(crate) id: String,
    /// Human title.
    pub(crate) title: String,
    /// First instant in maintenance.
    pub(crate) start: DateTime<Utc>,
    /// First instant after maintenance.
    pub(crate) end: DateTime<Utc>,
    /// Dotted service names covered (a name covers itself and its dotted descendants).
    pub(crate) services: Vec<String>,
    /// Where it comes from.
    pub(crate) source: Source,
}

/// A window that recurs: it starts at each match of a cron pattern (read in `timezone`) and
/// lasts `duration` of real time.
///
/// Daylight saving: a start that falls in a skipped hour moves to the first valid minute
/// after the gap; a start in a repeated hour happens once, at its first occurrence (croner's
/// fixed-time rules, as in Vixie cron).
#[derive(Debug, Clone)]
pub(crate) struct Recurring {
    /// Unique id, shared by all occurrences.
    pub(crate) id: String,
    /// Human title.
    pub(crate) title: String,
    /// The pattern as written, e.g. `0 2 * * MON`.
    pub(crate) pattern: String,
    /// The parsed pattern.
    pub(crate) cron: croner::Cron,
    /// Zone the pattern is read in.
    pub(crate) timezone: Tz,
    /// Length of each occurrence.
    pub(crate) duration: chrono::TimeDelta,
    /// No occurrence starts before this.
    pub(crate) from: Option<DateTime<Utc>>,
    /// No occurrence starts at or after this.
    pub(crate) until: Option<DateTime<Utc>>,
    /// Dotted service names covered.
    pub(crate) services: Vec<String>,
}

/// Upper bound on the occurrences one recurring window expands to per compilation.
pub(crate) const MAX_OCCURRENCES: usize = 10_000;

impl Recurring {
    /// Occurrences that overlap `[from, to)`, at most [`MAX_OCCURRENCES`].
    #[must_use]
    pub(crate) fn occurrences(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Window> {
        let mut search = from - self.duration;
        if let Some(lower) = self.from {
            search = search.max(lower - chrono::TimeDelta::seconds(1));
        }
        let start = search.with_timezone(&self.timezone);
        self.cron
            .iter_after(start)
            .map(|t| t.to_utc())
            .take_while(|t| *t < to && self.until.is_none_or(|u| *t < u))
            .filter(|t| self.from.is_none_or(|f| *t >= f))
            .take(MAX_OCCURRENCES)
            .map(|t| Window {
                id: self.id.clone(),
                title: self.title.clone(),
                start: t,
                end: t + self.duration,
                services: self.services.clone(),
                source: Source::Recurring,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recurring(pattern: &str, tz: Tz, duration: chrono::TimeDelta) -> Recurring {
        Recurring {
            id: "r".into(),
            title: "r".into(),
            pattern: pattern.into(),
            cron: croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Disallowed)
                .build()
                .parse(pattern)
                .unwrap(),
            timezone: tz,
            duration,
            from: None,
            until: None,
            services: vec!["webcollect".into()],
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn starts(r: &Recurring, from: &str, to: &str) -> Vec<String> {
        r.occurrences(t(from), t(to))
            .iter()
            .map(|w| w.start.with_timezone(&r.timezone).to_rfc3339())
            .collect()
    }

    #[test]
    fn weekly_occurrences_in_tokyo() {
        let r = recurring(
            "0 2 * * MON",
            chrono_tz::Asia::Tokyo,
            chrono::TimeDelta::hours(4),
        );
        assert_eq!(
            starts(&r, "2020-04-13T00:00:00+09:00", "2020-05-01T00:00:00+09:00"),
            [
                "2020-04-13T02:00:00+09:00",
                "2020-04-20T02:00:00+09:00",
                "2020-04-27T02:00:00+09:00"
            ]
        );
        let w = &r.occurrences(
            t("2020-04-20T03:00:00+09:00"),
            t("2020-04-21T00:00:00+09:00"),
        )[0];
        // An occurrence already running at `from` is included.
        assert_eq!(w.start, t("2020-04-20T02:00:00+09:00"));
        assert_eq!(w.end, t("2020-04-20T06:00:00+09:00"));
    }

    #[test]
    fn dst_gap_moves_the_start_after_the_gap() {
        // 2020-03-08 02:30 does not exist in New York: the occurrence starts at 03:00 EDT.
        let r = recurring(
            "30 2 * * SUN",
            chrono_tz::America::New_York,
            chrono::TimeDelta::hours(4),
        );
        assert_eq!(
            starts(&r, "2020-03-01T00:00:00-05:00", "2020-03-16T00:00:00-04:00"),
            [
                "2020-03-01T02:30:00-05:00",
                "2020-03-08T03:00:00-04:00",
                "2020-03-15T02:30:00-04:00"
            ]
        );
    }

    #[test]
    fn dst_overlap_starts_once_and_lasts_real_time() {
        // 2020-11-01 01:30 happens twice in New York; the window starts once, at the first.
        let r = recurring(
            "30 1 * * SUN",
            chrono_tz::America::New_York,
            chrono::TimeDelta::hours(4),
        );
        let ws = r.occurrences(
            t("2020-10-31T00:00:00-04:00"),
            t("2020-11-02T00:00:00-05:00"),
        );
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].start, t("2020-11-01T01:30:00-04:00"));
        // Four real hours: 01:30 EDT + 4h = 04:30 EST.
        assert_eq!(ws[0].end, t("2020-11-01T04:30:00-05:00"));
    }

    #[test]
    fn windows_spanning_midnight_and_month_end() {
        // Last day of each month at 22:00, for 4 hours: crosses midnight into the next month.
        let r = recurring(
            "0 22 L * *",
            chrono_tz::Asia::Tokyo,
            chrono::TimeDelta::hours(4),
        );
        let ws = r.occurrences(
            t("2020-01-15T00:00:00+09:00"),
            t("2020-04-01T00:00:00+09:00"),
        );
        let got: Vec<(String, String)> = ws
            .iter()
            .map(|w| {
                (
                    w.start.with_timezone(&r.timezone).to_rfc3339(),
                    w.end.with_timezone(&r.timezone).to_rfc3339(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "2020-01-31T22:00:00+09:00".to_string(),
                    "2020-02-01T02:00:00+09:00".to_string()
                ),
                (
                    "2020-02-29T22:00:00+09:00".to_string(),
                    "2020-03-01T02:00:00+09:00".to_string()
                ),
                (
                    "2020-03-31T22:00:00+09:00".to_string(),
                    "2020-04-01T02:00:00+09:00".to_string()
                ),
            ]
        );
        assert_eq!(
            crate::response::page::window_text(ws[1].start, ws[1].end, r.timezone),
            "2月29日(土) 22時00分～3月1日(日) 2時00分"
        );
    }

    #[test]
    fn first_sunday_of_the_month_and_bounds() {
        let mut r = recurring(
            "0 2 * * SUN#1",
            chrono_tz::Asia::Tokyo,
            chrono::TimeDelta::hours(4),
        );
        r.from = Some(t("2020-05-01T00:00:00+09:00"));
        r.until = Some(t("2020-08-01T00:00:00+09:00"));
        assert_eq!(
            starts(&r, "2020-01-01T00:00:00+09:00", "2021-01-01T00:00:00+09:00"),
            [
                "2020-05-03T02:00:00+09:00",
                "2020-06-07T02:00:00+09:00",
                "2020-07-05T02:00:00+09:00"
            ]
        );
    }
}
