//! Time source of the shim: every decision reads "now" through [`Clock`], never the OS directly.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::ClockConfig;

/// Where the shim's "now" comes from. Injected so tests and drills control time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // This is the one place allowed to read the OS clock (see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    // Nanoseconds since the epoch; an atomic so reads on the request path never lock.
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `at`.
    #[must_use]
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            nanos: Arc::new(AtomicI64::new(to_nanos(at))),
        }
    }

    /// Moves the clock to `at` (backwards is allowed).
    pub fn set(&self, at: DateTime<Utc>) {
        self.nanos.store(to_nanos(at), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        let delta = by.num_nanoseconds().unwrap_or(i64::MAX);
        self.nanos.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A drill clock: reads `start_at` at the real instant `anchor` and runs `speed` times as
/// fast as `base`: now = `start_at` + (`base.now()` − `anchor`) × `speed`.
#[derive(Debug)]
pub(crate) struct DrillClock {
    base: SharedClock,
    anchor: DateTime<Utc>,
    start_at: DateTime<Utc>,
    speed: f64,
}

impl DrillClock {
    /// A drill clock anchored now (as read from `base`): it starts when it is created, so
    /// two processes started apart disagree by that much.
    #[must_use]
    pub(crate) fn new(base: SharedClock, start_at: DateTime<Utc>, speed: f64) -> Self {
        let anchor = base.now();
        Self::anchored(base, start_at, speed, anchor)
    }

    /// A drill clock that reads `start_at` at the real instant `anchor`, whenever it is
    /// created: every process (and every restart) with the same settings reads the same time.
    #[must_use]
    pub(crate) fn anchored(
        base: SharedClock,
        start_at: DateTime<Utc>,
        speed: f64,
        anchor: DateTime<Utc>,
    ) -> Self {
        Self {
            base,
            anchor,
            start_at,
            speed,
        }
    }
}

impl Clock for DrillClock {
    fn now(&self) -> DateTime<Utc> {
        // Negative before the anchor: the drill clock then reads earlier than `start_at`.
        let real = self.base.now() - self.anchor;
        let real_nanos = real
            .num_nanoseconds()
            .map_or_else(|| real.num_milliseconds() as f64 * 1e6, |n| n as f64);
        // f64 keeps ~15 significant digits: sub-microsecond precision for years of drill time.
        let scaled = real_nanos * self.speed;
        let delta = if scaled.abs() < 9.0e18 {
            TimeDelta::nanoseconds(scaled as i64)
        } else {
            // Beyond ±292 years of drill time (an anchor decades away at a high speed),
            // milliseconds; past TimeDelta's range the casts and the sum saturate: never a
            // panic on the request path.
            TimeDelta::try_milliseconds((scaled / 1e6) as i64).unwrap_or(TimeDelta::MIN)
        };
        self.start_at
            .checked_add_signed(delta)
            .unwrap_or(if delta > TimeDelta::zero() {
                DateTime::<Utc>::MAX_UTC
            } else {
                DateTime::<Utc>::MIN_UTC
            })
    }
}

/// The shim's clock for a `[clock]` section: `base`, or a drill clock on top of it when
/// `start_at` is set (anchored at `anchor`, else at the moment this is called).
#[must_use]
pub fn configured(base: SharedClock, config: &ClockConfig) -> SharedClock {
    match (config.start_at, config.anchor) {
        (Some(start_at), Some(anchor)) => {
            Arc::new(DrillClock::anchored(base, start_at, config.speed, anchor))
        }
        (Some(start_at), None) => Arc::new(DrillClock::new(base, start_at, config.speed)),
        (None, _) => base,
    }
}

fn to_nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(t("2020-04-20T01:59:59+09:00"));
        assert_eq!(clock.now(), t("2020-04-20T01:59:59+09:00"));
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(clock.now(), t("2020-04-20T02:00:00+09:00"));
    }

    #[test]
    fn drill_clock_replays_at_speed() {
        let base = ManualClock::new(t("2026-11-27T12:00:00Z"));
        let drill = DrillClock::new(Arc::new(base.clone()), t("2020-04-20T01:59:30+09:00"), 60.0);
        assert_eq!(drill.now(), t("2020-04-20T01:59:30+09:00"));
        base.advance(TimeDelta::seconds(4 * 60));
        assert_eq!(drill.now(), t("2020-04-20T05:59:30+09:00"));
    }

    #[test]
    fn anchored_drill_clocks_agree_whenever_they_start() {
        let base = ManualClock::new(t("2026-11-27T12:00:00Z"));
        let anchor = t("2026-11-27T11:59:00Z");
        let start_at = t("2020-04-20T01:59:00+09:00");
        let first = DrillClock::anchored(Arc::new(base.clone()), start_at, 2.0, anchor);
        base.advance(TimeDelta::seconds(90));
        let second = DrillClock::anchored(Arc::new(base.clone()), start_at, 2.0, anchor);
        // 150 real seconds after the anchor, at twice the speed: five drill minutes.
        assert_eq!(first.now(), t("2020-04-20T02:04:00+09:00"));
        assert_eq!(second.now(), first.now());
        // An unanchored clock started now reads start_at instead.
        assert_eq!(
            DrillClock::new(Arc::new(base), start_at, 2.0).now(),
            start_at
        );
    }

    #[test]
    fn before_its_anchor_the_drill_clock_reads_earlier_than_start_at() {
        let base = ManualClock::new(t("2026-11-27T12:00:00Z"));
        let drill = DrillClock::anchored(
            Arc::new(base.clone()),
            t("2020-04-20T02:00:00+09:00"),
            1.0,
            t("2026-11-27T12:01:00Z"),
        );
        assert_eq!(drill.now(), t("2020-04-20T01:59:00+09:00"));
        base.advance(TimeDelta::seconds(60));
        assert_eq!(drill.now(), t("2020-04-20T02:00:00+09:00"));
    }

    #[test]
    fn an_extreme_anchor_saturates_instead_of_panicking() {
        let base = ManualClock::new(t("2026-11-27T12:00:00Z"));
        let drill = DrillClock::anchored(
            Arc::new(base),
            t("2020-04-20T02:00:00+09:00"),
            1e12,
            t("1970-01-01T00:00:00Z"),
        );
        assert_eq!(drill.now(), DateTime::<Utc>::MAX_UTC);
    }
}
