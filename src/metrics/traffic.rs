//! Per-route traffic for the admin console: counts by decision since start, and per minute
//! over the last [`MINUTES`] minutes.
//!
//! Built for the request path, which is benchmarked against nginx: each worker thread owns
//! its own cells (a [`Shard`]), so counting a request is a load and a store on memory no
//! other thread writes (no atomic read-modify-write, no lock, no allocation, no cache line
//! bounced between workers). The admin listener reads every shard and adds them up.
//!
//! Minutes are counted on the monotonic clock from the board's creation: the sparkline
//! shows real minutes, whatever speed a drill clock runs at.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::metrics::Decision;

/// How many minutes the per-minute series covers (the current one included).
pub(crate) const MINUTES: usize = 30;

/// One route's counters in one shard.
///
/// `ring[decision][minute % MINUTES]` packs the minute number (high 32 bits) with that
/// minute's count (low 32 bits), so a slot left over from an older lap is recognised
/// without a separate stamp. When a slot is reused, its count moves to `retired`, so
/// `retired + ring` is the total since start. A count never reaches 2³² in one minute on
/// one worker (that would be 71 million requests a second).
#[derive(Debug)]
pub(crate) struct Cells {
    ring: [[AtomicU64; MINUTES]; Decision::COUNT],
    retired: [AtomicU64; Decision::COUNT],
}

impl Default for Cells {
    fn default() -> Self {
        Self {
            ring: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            retired: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Cells {
    /// Counts one request in `minute`. Only the shard's own worker thread may call this:
    /// with a single writer a relaxed load and store are exact, and readers on other
    /// threads see each word whole.
    pub(crate) fn record(&self, decision: Decision, minute: u32) {
        let d = decision as usize;
        let slot = &self.ring[d][minute as usize % MINUTES];
        let word = slot.load(Ordering::Relaxed);
        // A newer minute in the slot: the request began a lap ago (a long stream); count it
        // in the newer minute rather than wipe that minute out.
        if (word >> 32) as u32 >= minute {
            slot.store(word + 1, Ordering::Relaxed);
        } else {
            // First request of this minute in this slot: retire the old lap's count.
            let retired = &self.retired[d];
            retired.store(
                retired.load(Ordering::Relaxed) + (word & 0xFFFF_FFFF),
                Ordering::Relaxed,
            );
            slot.store((u64::from(minute) << 32) | 1, Ordering::Relaxed);
        }
    }

    /// Adds this shard's counts into `into`: totals since start, and the series of the
    /// [`MINUTES`] minutes ending with `minute` (oldest first).
    fn add_to(&self, into: &mut Counts, minute: u32) {
        for d in 0..Decision::COUNT {
            let mut total = self.retired[d].load(Ordering::Relaxed);
            for word in &self.ring[d] {
                let word = word.load(Ordering::Relaxed);
                let (stamp, count) = ((word >> 32) as u32, word & 0xFFFF_FFFF);
                total += count;
                // Which position of the series this slot's minute is, if it is in it.
                let age = minute.wrapping_sub(stamp) as usize;
                if age < MINUTES {
                    into.per_minute[d][MINUTES - 1 - age] += count;
                }
            }
            into.total[d] += total;
        }
    }
}

/// Counts of one route (or of "no route"), summed over the workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Since start, by decision (index: `Decision as usize`).
    pub(crate) total: [u64; Decision::COUNT],
    /// Per minute by decision, the last [`MINUTES`] minutes, oldest first; the last entry
    /// is the current minute.
    pub(crate) per_minute: [[u64; MINUTES]; Decision::COUNT],
}

/// One worker's cells: by route id, plus one for requests no route took. Route ids, not
/// indexes, so counts carry over a reload that reorders or adds routes.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    // Locked when a worker builds a new view (config changes) and when the console reads.
    routes: Mutex<HashMap<String, Arc<Cells>>>,
    no_route: Arc<Cells>,
}

impl Shard {
    /// The cells of each route id (same order), then the "no route" cells last.
    #[must_use]
    pub(crate) fn cells<'a>(&self, route_ids: impl Iterator<Item = &'a str>) -> Vec<Arc<Cells>> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cells: Vec<Arc<Cells>> = route_ids
            .map(|id| routes.entry(id.to_owned()).or_default().clone())
            .collect();
        cells.push(self.no_route.clone());
        cells
    }
}

/// Every worker's shard, and the start of the minute count.
#[derive(Debug)]
pub(crate) struct Board {
    origin: Instant,
    shards: Mutex<Vec<Arc<Shard>>>,
}

impl Default for Board {
    fn default() -> Self {
        Self::new()
    }
}

impl Board {
    /// An empty board; minute 0 starts now.
    #[must_use]
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            shards: Mutex::new(Vec::new()),
        }
    }

    /// A new shard for one worker thread, which alone writes to it.
    #[must_use]
    pub(crate) fn shard(&self) -> Arc<Shard> {
        let shard = Arc::new(Shard::default());
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shard.clone());
        shard
    }

    /// The minute `at` falls in, counted from the board's creation.
    #[must_use]
    pub(crate) fn minute(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.origin).as_secs() / 60).unwrap_or(u32::MAX)
    }

    /// The counts of `route` (`None`: requests no route took), summed over every shard,
    /// with the series ending at the current minute. Not a snapshot: a request counted
    /// meanwhile may show in one number and not yet in another.
    #[must_use]
    pub(crate) fn counts(&self, route: Option<&str>) -> Counts {
        let minute = self.minute(Instant::now());
        let mut counts = Counts::default();
        for shard in self
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            match route {
                None => shard.no_route.add_to(&mut counts, minute),
                Some(id) => {
                    let cells = shard
                        .routes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(id)
                        .cloned();
                    if let Some(cells) = cells {
                        cells.add_to(&mut counts, minute);
                    }
                }
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(cells: &Cells, minute: u32) -> Counts {
        let mut c = Counts::default();
        cells.add_to(&mut c, minute);
        c
    }

    #[test]
    fn counts_per_minute_and_since_start() {
        let cells = Cells::default();
        let (pass, maint) = (Decision::Pass as usize, Decision::Maintenance as usize);
        for _ in 0..3 {
            cells.record(Decision::Pass, 5);
        }
        cells.record(Decision::Maintenance, 6);
        cells.record(Decision::Pass, 7);
        let c = counts(&cells, 7);
        assert_eq!(c.total[pass], 4);
        assert_eq!(c.total[maint], 1);
        assert_eq!(c.per_minute[pass][MINUTES - 1], 1);
        assert_eq!(c.per_minute[maint][MINUTES - 2], 1);
        assert_eq!(c.per_minute[pass][MINUTES - 3], 3);
        assert_eq!(c.per_minute[pass].iter().sum::<u64>(), 4);
    }

    #[test]
    fn a_reused_slot_keeps_the_total_and_drops_out_of_the_series() {
        let cells = Cells::default();
        let pass = Decision::Pass as usize;
        cells.record(Decision::Pass, 1);
        cells.record(Decision::Pass, 1);
        // Same slot, one lap later.
        let later = 1 + MINUTES as u32;
        cells.record(Decision::Pass, later);
        let c = counts(&cells, later);
        assert_eq!(c.total[pass], 3);
        assert_eq!(c.per_minute[pass][MINUTES - 1], 1);
        assert_eq!(c.per_minute[pass].iter().sum::<u64>(), 1);
        // Read a while later with no traffic: the series is empty, the total stays.
        let c = counts(&cells, later + MINUTES as u32);
        assert_eq!(c.total[pass], 3);
        assert_eq!(c.per_minute[pass], [0; MINUTES]);
    }

    #[test]
    fn minutes_at_the_edge_of_the_series() {
        let cells = Cells::default();
        let pass = Decision::Pass as usize;
        cells.record(Decision::Pass, 100);
        let oldest = 100 + MINUTES as u32 - 1;
        assert_eq!(counts(&cells, oldest).per_minute[pass][0], 1);
        assert_eq!(counts(&cells, oldest + 1).per_minute[pass], [0; MINUTES]);
        // A request that began a lap ago counts in the newer minute its slot holds.
        cells.record(Decision::Pass, 100 - MINUTES as u32);
        assert_eq!(counts(&cells, 100).per_minute[pass][MINUTES - 1], 2);
        // A slot from the future (a late reader) stays out of the series.
        assert_eq!(counts(&cells, 99).per_minute[pass], [0; MINUTES]);
        assert_eq!(counts(&cells, 99).total[pass], 2);
    }

    #[test]
    fn shards_add_up_by_route_id_across_reloads() {
        let board = Board::new();
        let (a, b) = (board.shard(), board.shard());
        let minute = board.minute(Instant::now());
        let a_cells = a.cells(["x", "y"].into_iter());
        assert_eq!(a_cells.len(), 3);
        a_cells[0].record(Decision::Pass, minute);
        a_cells[2].record(Decision::NotFound, minute);
        // A reload that reorders the routes finds the same cells by id.
        let reordered = a.cells(["y", "x"].into_iter());
        reordered[1].record(Decision::Pass, minute);
        b.cells(["x"].into_iter())[0].record(Decision::UpstreamError, minute);
        let x = board.counts(Some("x"));
        assert_eq!(x.total[Decision::Pass as usize], 2);
        assert_eq!(x.total[Decision::UpstreamError as usize], 1);
        assert_eq!(board.counts(Some("y")), Counts::default());
        assert_eq!(board.counts(None).total[Decision::NotFound as usize], 1);
        assert_eq!(board.counts(Some("gone")), Counts::default());
    }
}
