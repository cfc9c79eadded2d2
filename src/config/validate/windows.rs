//! `[[windows]]`: one-off windows (`start`, `end`) and recurring ones (`cron`, `duration`,
//! optional `timezone`, `from`, `until`), and the service names they cover.

use std::collections::HashSet;

use chrono::TimeDelta;
use chrono_tz::Tz;
use croner::Cron;
use toml::Spanned;

use super::Checker;
use crate::config::parse_duration;
use crate::config::raw::{RawWindow, Str};
use crate::schedule::{Recurring, Source, Window};

impl Checker<'_> {
    /// Every window, one-off and recurring; ids are unique across both.
    pub(super) fn windows(&mut self, raw: &[RawWindow], tz: Tz) -> (Vec<Window>, Vec<Recurring>) {
        let mut seen = HashSet::new();
        let mut once = Vec::new();
        let mut recurring = Vec::new();
        for w in raw {
            let id = w.id.get_ref();
            if !seen.insert(id.as_str()) {
                self.err(w.id.span(), format!("duplicate window id {id:?}"));
            }
            if w.services.get_ref().is_empty() {
                self.err(
                    w.services.span(),
                    format!("window {id:?} covers no services"),
                );
            }
            for s in w.services.get_ref() {
                self.service_name(s);
            }
            let services: Vec<String> = w
                .services
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect();
            let title = w.title.clone().unwrap_or_else(|| id.clone());
            if let Some(pattern) = &w.cron {
                recurring.extend(self.recurring(w, pattern, tz, title, services));
            } else {
                once.extend(self.one_off(w, tz, title, services));
            }
        }
        (once, recurring)
    }

    /// A window with `cron`: `duration` instead of `start`/`end`, in its own zone if it
    /// names one, between `from` and `until` if given.
    fn recurring(
        &mut self,
        w: &RawWindow,
        pattern: &Str,
        tz: Tz,
        title: String,
        services: Vec<String>,
    ) -> Option<Recurring> {
        let id = w.id.get_ref();
        for (key, present) in [("start", w.start.as_ref()), ("end", w.end.as_ref())] {
            if let Some(v) = present {
                self.err(
                    v.span(),
                    format!("window {id:?} recurs (`cron`), so it takes `duration`, not `{key}`"),
                );
            }
        }
        let zone = match &w.timezone {
            None => tz,
            Some(name) => name.get_ref().parse::<Tz>().unwrap_or_else(|_| {
                self.err(
                    name.span(),
                    format!("unknown time zone {:?}", name.get_ref()),
                );
                tz
            }),
        };
        let cron = self.cron(pattern);
        let duration = self.recurring_duration(w, pattern);
        let from = w.from.as_ref().and_then(|v| self.time(v, zone));
        let until = w.until.as_ref().and_then(|v| self.time(v, zone));
        if let (Some(f), Some(u), Some(span)) = (from, until, w.until.as_ref().map(Spanned::span))
            && u <= f
        {
            self.err(span, format!("window {id:?}: `until` must be after `from`"));
        }
        Some(Recurring {
            id: id.clone(),
            title,
            pattern: pattern.get_ref().clone(),
            cron: cron?,
            timezone: zone,
            duration: duration?,
            from,
            until,
            services,
        })
    }

    /// A five-field cron pattern (no seconds).
    fn cron(&mut self, pattern: &Str) -> Option<Cron> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .build()
            .parse(pattern.get_ref());
        cron.map_err(|e| {
            self.err(
                pattern.span(),
                format!(
                    "invalid cron pattern {:?}: {e} (five fields: minute hour day-of-month month \
                     day-of-week, e.g. \"0 2 * * MON\")",
                    pattern.get_ref()
                ),
            );
        })
        .ok()
    }

    /// A recurring window's `duration`: required, longer than zero.
    fn recurring_duration(&mut self, w: &RawWindow, pattern: &Str) -> Option<TimeDelta> {
        let Some(d) = &w.duration else {
            self.err(
                pattern.span(),
                format!(
                    "window {:?} recurs (`cron`) and needs a `duration`, e.g. \"4h\"",
                    w.id.get_ref()
                ),
            );
            return None;
        };
        match parse_duration(d.get_ref()) {
            Ok(d) if !d.is_zero() => TimeDelta::from_std(d).ok(),
            Ok(_) => {
                self.err(d.span(), "`duration` must be longer than zero");
                None
            }
            Err(msg) => {
                self.err(d.span(), msg);
                None
            }
        }
    }

    /// A window without `cron`: `start` and `end`, nothing that only recurring ones take.
    fn one_off(
        &mut self,
        w: &RawWindow,
        tz: Tz,
        title: String,
        services: Vec<String>,
    ) -> Option<Window> {
        let id = w.id.get_ref();
        for (key, present) in [
            ("duration", w.duration.as_ref().map(Spanned::span)),
            ("timezone", w.timezone.as_ref().map(Spanned::span)),
            ("from", w.from.as_ref().map(Spanned::span)),
            ("until", w.until.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = present {
                self.err(
                    span,
                    format!("`{key}` only applies to recurring windows (with `cron`)"),
                );
            }
        }
        let (Some(start_v), Some(end_v)) = (&w.start, &w.end) else {
            self.err(
                w.id.span(),
                format!("window {id:?} needs `start` and `end`, or `cron` and `duration`"),
            );
            return None;
        };
        let start = self.time(start_v, tz);
        let end = self.time(end_v, tz);
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            self.err(
                end_v.span(),
                format!("window {id:?} ends before it starts (end must be after start)"),
            );
        }
        Some(Window {
            id: id.clone(),
            title,
            start: start.unwrap_or_default(),
            end: end.unwrap_or_default(),
            services,
            source: Source::Config,
        })
    }

    pub(super) fn service_name(&mut self, name: &Str) {
        if !is_valid_service(name.get_ref()) {
            self.err(
                name.span(),
                format!(
                    "invalid service name {:?}: use dot-separated words of letters, digits, '_' or '-', such as \"webcollect.credit_card\"",
                    name.get_ref()
                ),
            );
        }
    }
}

/// A service name: dot-separated words of ASCII letters, digits, `_` or `-`.
#[must_use]
pub(crate) fn is_valid_service(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        })
}
