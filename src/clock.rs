//! Time source of the shim: every decision reads "now" through [`Clock`], never the OS directly.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

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

/// A drill clock: starts at `start_at` when created and runs `speed` times as fast as `base`.
#[derive(Debug)]
pub struct DrillClock {
    base: SharedClock,
    base_origin: DateTime<Utc>,
    start_at: DateTime<Utc>,
    speed: f64,
}

impl DrillClock {
    /// Starts a drill clock now (as read from `base`).
    #[must_use]
    pub fn new(base: SharedClock, start_at: DateTime<Utc>, speed: f64) -> Self {
        let base_origin = base.now();
        Self {
            base,
            base_origin,
            start_at,
            speed,
        }
    }
}

impl Clock for DrillClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.base.now() - self.base_origin;
        let real_nanos = real.num_nanoseconds().unwrap_or(i64::MAX) as f64;
        // f64 keeps ~15 significant digits: sub-microsecond precision for years of drill time.
        let scaled = TimeDelta::nanoseconds((real_nanos * self.speed) as i64);
        self.start_at + scaled
    }
}

/// The shim's clock for a configuration: `base`, or a drill clock on top of it when
/// `start_at` is set.
#[must_use]
pub fn configured(base: SharedClock, start_at: Option<DateTime<Utc>>, speed: f64) -> SharedClock {
    match start_at {
        Some(start_at) => Arc::new(DrillClock::new(base, start_at, speed)),
        None => base,
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
}
