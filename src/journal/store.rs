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
    records: VecDeque<Record>,
    gaps: Vec<Gap>,
    drills: Vec<DrillSpan>,
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
        inner.records.extend(batch.records);
        let excess = inner.records.len().saturating_sub(self.max_records);
        // The size cap: the oldest records go first.
        inner.records.drain(..excess);
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
        inner.records.drain(..excess);
        inner.gaps.retain(|g| g.real_time >= before);
        Ok((len - inner.records.len()) as u64)
    }

    fn location(&self) -> String {
        "memory".into()
    }
}
