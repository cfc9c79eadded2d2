//! Where the journal keeps its records: SQLite ([`super::sqlite`]) with `[admin] state_dir`
//! or `[report] path`, memory otherwise. One writer (the journal's thread) appends in
//! batches; readers (the admin API) query at the same time.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Record;

/// A store's failure, with its cause (SQLite's message, an I/O error).
pub(crate) type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// An ad-hoc drill as the journal remembers it, after it has closed too: reports about it
/// need its span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DrillSpan {
    /// Id (ids may be reused once a drill has closed; `start` tells them apart).
    pub(crate) id: String,
    /// Title.
    pub(crate) title: String,
    /// Services covered.
    pub(crate) services: Vec<String>,
    /// When it opened (drill time).
    pub(crate) start: DateTime<Utc>,
    /// When it ended or was closed (drill time).
    pub(crate) end: DateTime<Utc>,
}

/// A change to the drills the journal remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DrillEvent {
    /// A drill opened (or was restored at start: the same `(id, start)` is kept once).
    Opened(DrillSpan),
    /// The drill `(id, start)` was closed early, at `end`.
    Closed {
        /// Id.
        id: String,
        /// When it opened.
        start: DateTime<Utc>,
        /// When it was closed.
        end: DateTime<Utc>,
    },
}

/// Records dropped because the journal's queue was full, counted when the writer noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    /// Real time of the count.
    pub(crate) real_time: DateTime<Utc>,
    /// Drill time of the count.
    pub(crate) drill_time: DateTime<Utc>,
    /// How many records were lost since the previous count.
    pub(crate) dropped: u64,
}

/// What one write adds.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// New records.
    pub(crate) records: Vec<Record>,
    /// Drill changes.
    pub(crate) drills: Vec<DrillEvent>,
    /// Records lost since the last batch, if any.
    pub(crate) gap: Option<Gap>,
}

impl Batch {
    /// Nothing to write.
    #[must_use]
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty() && self.drills.is_empty() && self.gap.is_none()
    }
}

/// A place for records.
pub(crate) trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Appends `batch` atomically. It is taken by value: the memory store keeps its records
    /// as they are, where a clone of each cost the writer about 2,200 instructions per
    /// record and dropping the batch 1,600 more (callgrind, a short-circuit in a window).
    ///
    /// # Errors
    /// When it cannot be written; the batch is lost (and counted as dropped).
    fn append(&self, batch: Batch) -> Result<(), StoreError>;

    /// Records whose drill time is in `[from, to)`, oldest first.
    ///
    /// # Errors
    /// When they cannot be read.
    fn records(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Record>, StoreError>;

    /// Records lost (queue full, failed writes) with a drill time in `[from, to)`.
    ///
    /// # Errors
    /// When the count cannot be read.
    fn dropped(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Every drill remembered, oldest first.
    ///
    /// # Errors
    /// When they cannot be read.
    fn drills(&self) -> Result<Vec<DrillSpan>, StoreError>;

    /// Deletes records (and gaps and drills) older than `before` in real time, then the
    /// oldest records past `max_records`. Returns how many records went.
    ///
    /// # Errors
    /// When the deletion fails.
    fn prune(&self, before: DateTime<Utc>, max_records: usize) -> Result<u64, StoreError>;

    /// Where it is, for logs and `/status` (`memory` or the file's path).
    fn location(&self) -> String;
}

/// The store without `state_dir`: bounded, lost at exit.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    inner: Mutex<MemoryInner>,
    max_records: usize,
}

#[derive(Debug, Default)]
struct MemoryInner {
    records: Chunks,
    gaps: Vec<Gap>,
    drills: Vec<DrillSpan>,
}

/// Records oldest first, kept in the batches they were written in. Appending a batch moves
/// one `Vec`: a deque of records copied every record it held each time it grew, which cost
/// each of the first 200,000 records of a short-circuit about 330 instructions (callgrind).
/// Each batch is a deque too (made from its `Vec` without a copy), so that dropping the
/// oldest records of a batch at the cap moves none of the rest.
#[derive(Debug, Default)]
struct Chunks {
    chunks: VecDeque<VecDeque<Record>>,
    len: usize,
}

impl Chunks {
    fn append(&mut self, mut batch: Vec<Record>) {
        if batch.is_empty() {
            return;
        }
        // A batch grew by doubling: keep no more than a quarter of it spare.
        if batch.capacity() - batch.len() > batch.len() / 4 {
            batch.shrink_to_fit();
        }
        self.len += batch.len();
        self.chunks.push_back(VecDeque::from(batch));
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = &Record> {
        self.chunks.iter().flatten()
    }

    /// Drops the oldest `n` records.
    fn drop_oldest(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                self.len -= front.len();
                self.chunks.pop_front();
            } else {
                front.drain(..n);
                self.len -= n;
                n = 0;
            }
        }
    }

    /// Keeps the records `keep` holds true of.
    fn retain(&mut self, mut keep: impl FnMut(&Record) -> bool) {
        for chunk in &mut self.chunks {
            chunk.retain(&mut keep);
        }
        self.chunks.retain(|c| !c.is_empty());
        self.len = self.chunks.iter().map(VecDeque::len).sum();
    }
}

/// Most drills a memory store remembers.
const MEMORY_DRILLS: usize = 1_000;

impl Memory {
    /// A memory store of at most `max_records` records (the oldest go first).
    #[must_use]
    pub(crate) fn new(max_records: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_records: max_records.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies drill events to a list of drills (shared by the stores' tests and `Memory`).
pub(crate) fn apply_drill_event(drills: &mut Vec<DrillSpan>, event: &DrillEvent) {
    match event {
        DrillEvent::Opened(span) => {
            if !drills
                .iter()
                .any(|d| d.id == span.id && d.start == span.start)
            {
                drills.push(span.clone());
            }
        }
        DrillEvent::Closed { id, start, end } => {
            if let Some(d) = drills.iter_mut().find(|d| &d.id == id && &d.start == start) {
                d.end = (*end).min(d.end);
            }
        }
    }
}

impl Store for Memory {
    fn append(&self, batch: Batch) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.records.append(batch.records);
        let excess = inner.records.len().saturating_sub(self.max_records);
        // The size cap: the oldest records go first.
        inner.records.drop_oldest(excess);
        for event in &batch.drills {
            apply_drill_event(&mut inner.drills, event);
        }
        let drills = inner.drills.len();
        if drills > MEMORY_DRILLS {
            inner.drills.drain(..drills - MEMORY_DRILLS);
        }
        if let Some(gap) = batch.gap {
            inner.gaps.push(gap);
        }
        Ok(())
    }

    fn records(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Record>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<Record> = inner
            .records
            .iter()
            .filter(|r| from <= r.drill_time && r.drill_time < to)
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.drill_time, r.real_time));
        Ok(out)
    }

    fn dropped(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .gaps
            .iter()
            .filter(|g| from <= g.drill_time && g.drill_time < to)
            .map(|g| g.dropped)
            .sum())
    }

    fn drills(&self) -> Result<Vec<DrillSpan>, StoreError> {
        Ok(self.lock().drills.clone())
    }

    fn prune(&self, before: DateTime<Utc>, max_records: usize) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let len = inner.records.len();
        inner.records.retain(|r| r.real_time >= before);
        let excess = inner
            .records
            .len()
            .saturating_sub(max_records.min(self.max_records));
        inner.records.drop_oldest(excess);
        inner.gaps.retain(|g| g.real_time >= before);
        Ok((len - inner.records.len()) as u64)
    }

    fn location(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> Record {
        let at = DateTime::<Utc>::from_timestamp(i64::from(n), 0).expect("a time");
        Record {
            real_time: at,
            drill_time: at,
            replica: "r".into(),
            request_id: n.to_string(),
            route: "api".into(),
            service: "api".into(),
            kind: "api".into(),
            method: "POST".into(),
            function_div: None,
            trader_code: None,
            order_no: None,
            decision: "pass".into(),
            window: None,
            error: None,
            status: 200,
            return_code: None,
            error_code: None,
            latency_us: 1,
            reached: true,
        }
    }

    /// Appends one batch of the records numbered `ids`.
    fn append(store: &Memory, ids: std::ops::Range<u32>) {
        let batch = Batch {
            records: ids.map(record).collect(),
            ..Batch::default()
        };
        store.append(batch).expect("memory stores do not fail");
    }

    fn ids(store: &Memory) -> Vec<String> {
        let all = store
            .records(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC)
            .expect("memory stores do not fail");
        all.into_iter().map(|r| r.request_id).collect()
    }

    #[test]
    fn memory_keeps_the_newest_records_across_batches() {
        let store = Memory::new(5);
        append(&store, 0..3);
        append(&store, 3..4);
        append(&store, 0..0);
        assert_eq!(ids(&store), ["0", "1", "2", "3"]);
        // Past the cap, the oldest go first: a whole batch, then part of the next.
        append(&store, 4..8);
        assert_eq!(ids(&store), ["3", "4", "5", "6", "7"]);
        append(&store, 8..9);
        assert_eq!(ids(&store), ["4", "5", "6", "7", "8"]);
    }

    #[test]
    fn memory_prunes_by_age_then_by_count() {
        let store = Memory::new(100);
        append(&store, 0..4);
        append(&store, 4..10);
        let before = DateTime::<Utc>::from_timestamp(3, 0).expect("a time");
        assert_eq!(store.prune(before, 100).expect("prune"), 3);
        assert_eq!(ids(&store), ["3", "4", "5", "6", "7", "8", "9"]);
        assert_eq!(store.prune(before, 2).expect("prune"), 5);
        assert_eq!(ids(&store), ["8", "9"]);
        // Everything older than the newest: nothing is left, and appending starts over.
        let all = DateTime::<Utc>::from_timestamp(100, 0).expect("a time");
        assert_eq!(store.prune(all, 100).expect("prune"), 2);
        assert!(ids(&store).is_empty());
        append(&store, 10..11);
        assert_eq!(ids(&store), ["10"]);
    }
}
