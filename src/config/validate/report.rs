//! `[report]`: the drill journal's recording span, retention and storage, and the verdicts'
//! thresholds.

use std::time::Duration;

use toml::Spanned;

use super::Checker;
use crate::config::raw::RawReport;
use crate::config::{Reporting, Thresholds};

/// A day, for `keep`'s default.
const DAY: Duration = Duration::from_secs(86_400);

impl Checker<'_> {
    pub(super) fn report(&mut self, raw: &RawReport) -> Reporting {
        let defaults = Thresholds::default();
        let keep = self.duration(raw.keep.as_ref(), 30 * DAY);
        if keep < Duration::from_secs(60)
            && let Some(span) = raw.keep.as_ref().map(Spanned::span)
        {
            self.err(span, "`keep` must be at least 1m");
        }
        let path = raw.path.as_ref().and_then(|p| {
            if p.get_ref().trim().is_empty() {
                self.err(p.span(), "`path` must be a file path");
                return None;
            }
            Some(self.base_dir.join(p.get_ref()))
        });
        Reporting {
            enabled: raw.enabled.unwrap_or(true),
            before: self.duration(raw.before.as_ref(), Duration::from_secs(15 * 60)),
            after: self.duration(raw.after.as_ref(), Duration::from_secs(60 * 60)),
            always: raw.always.unwrap_or(false),
            keep,
            max_records: self.count(raw.max_records.as_ref(), 1_000_000),
            path,
            verdicts: Thresholds {
                max_stranded: self.threshold(raw.max_stranded.as_ref(), defaults.max_stranded),
                max_attempts_per_order: self.threshold(
                    raw.max_attempts_per_order.as_ref(),
                    defaults.max_attempts_per_order,
                ),
                max_leaks: self.threshold(raw.max_leaks.as_ref(), defaults.max_leaks),
            },
        }
    }

    fn threshold(&mut self, value: Option<&Spanned<i64>>, default: u64) -> u64 {
        let Some(value) = value else {
            return default;
        };
        u64::try_from(*value.get_ref()).unwrap_or_else(|_| {
            self.err(value.span(), "must be a whole number, 0 or more");
            default
        })
    }
}
