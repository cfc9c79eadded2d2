//! The drill journal: while recording is on (`[report]`), one `Record` per request on an
//! `api`, `page`, `token_js` or `notification` route, whatever its outcome. The request
//! path only fills a `capture::Capture`, reads the kept fields from the bodies' starts when
//! the request ends, and pushes the entry onto a bounded queue (never waiting: a full queue
//! drops and counts); one writer thread builds the records and appends them in batches to
//! the `store::Store`: SQLite under `state_dir`, memory otherwise. Reports (`report`) are
//! built from what it holds.

pub(crate) mod capture;
pub mod fields;
pub mod fleet;
pub(crate) mod record;
pub mod render;
pub(crate) mod report;
pub(crate) mod sqlite;
pub(crate) mod store;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use prometheus_client::metrics::counter::Counter;

pub(crate) use record::Record;

use crate::clock::SharedClock;
use crate::config::{self, Kind};
use crate::decide::snapshot::Snapshot;
use crate::decide::{Action, Pass};
use capture::{Capture, Entry, Head};
use store::{Batch, DrillEvent, DrillSpan, Gap, Store, StoreError};

/// How many finished requests may wait for the writer; past it they are dropped and counted.
/// An entry is about 470 bytes, held in the queue itself: under 4 MiB (twice that with the
/// writer's spare).
pub(crate) const QUEUE: usize = 8 * 1024;

/// A batch this large is written at once, without waiting for [`FLUSH_EVERY`].
const BATCH: usize = 1024;

/// How long a record may wait in a batch before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// While records wait for the writer, how long it naps between takes from the queue. At
/// [`QUEUE`] entries, that keeps up with 800,000 requests a second.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// How often retention (`keep`, `max_records`) is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Most records a memory journal keeps.
pub(crate) const MEMORY_RECORDS: usize = 200_000;

/// The journal: a handle to its queue and its store. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    /// The writer's queue.
    queue: Arc<Queue>,
    store: Arc<dyn Store>,
    replica: String,
    real_clock: SharedClock,
    clock: SharedClock,
    /// There is no drill clock: the real time of a request is its drill time, not read again.
    one_clock: bool,
    /// Records lost and not yet written down as a gap.
    unrecorded: AtomicU64,
    /// Drill changes waiting for the writer. Beside the queue rather than in it, so opening
    /// or closing a drill never waits for a full queue to drain.
    drills: Mutex<Vec<DrillEvent>>,
    dropped: Counter,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("store", &self.inner.store.location())
            .finish_non_exhaustive()
    }
}

/// What waits for the writer thread. Finished requests wait in one `Vec` that the writer
/// swaps for its empty spare whenever it takes them: a request pays one uncontended lock
/// and one move of its entry. A channel (`std::sync::mpsc`) cost it the send's slot
/// protocol and two more moves, and the writer a receive per entry (callgrind). Entries
/// travel by value: boxing one would allocate on the worker thread and free on the
/// writer's, which costs the worker's allocator more than the copy.
#[derive(Default)]
struct Queue {
    entries: Mutex<Vec<Entry>>,
    /// Flushes asked for, answered once what was queued before them is written.
    flushes: Mutex<Vec<SyncSender<()>>>,
    /// The writer sleeps until a record arrives: the first one of a quiet spell wakes it.
    /// While it naps between takes, nobody does.
    idle: AtomicBool,
    /// The last handle is gone: write what is queued and end.
    closed: AtomicBool,
    writer: OnceLock<Thread>,
}

impl Queue {
    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::SeqCst);
        self.queue.wake();
    }
}

/// Retention, as `[report]` sets it.
#[derive(Debug, Clone, Copy)]
struct Retention {
    keep: Duration,
    max_records: usize,
}

impl Journal {
    /// Opens the store `[report]` names (`path`, else `state_dir/journal.sqlite`, else
    /// memory) and starts the writer thread. A SQLite file that cannot be opened is set
    /// aside or, failing that, replaced by memory, with a log line: never fatal.
    #[must_use]
    pub(crate) fn open(
        report: &config::Reporting,
        state_dir: Option<&Path>,
        replica: &str,
        clock: SharedClock,
        real_clock: SharedClock,
        metrics: &crate::metrics::Metrics,
    ) -> Self {
        let path = report
            .path
            .clone()
            .or_else(|| state_dir.map(|d| d.join("journal.sqlite")));
        let memory = || -> Arc<dyn Store> {
            Arc::new(store::Memory::new(report.max_records.min(MEMORY_RECORDS)))
        };
        let store: Arc<dyn Store> = match path {
            None => memory(),
            Some(path) => match sqlite::Sqlite::open(&path, &*real_clock) {
                Ok(db) => Arc::new(db),
                Err(err) => {
                    let error = crate::error::Chain(&*err);
                    tracing::error!(path = %path.display(), %error,
                        "Cannot open the drill journal; recording in memory instead.");
                    memory()
                }
            },
        };
        Self::with_store(
            store,
            replica,
            clock,
            real_clock,
            metrics,
            Retention {
                keep: report.keep,
                max_records: report.max_records,
            },
        )
    }

    fn with_store(
        store: Arc<dyn Store>,
        replica: &str,
        clock: SharedClock,
        real_clock: SharedClock,
        metrics: &crate::metrics::Metrics,
        retention: Retention,
    ) -> Self {
        let queue = Arc::new(Queue::default());
        let inner = Arc::new(Inner {
            queue: queue.clone(),
            store,
            one_clock: Arc::ptr_eq(&clock, &real_clock),
            replica: replica.to_string(),
            real_clock,
            clock,
            unrecorded: AtomicU64::new(0),
            drills: Mutex::default(),
            dropped: metrics.journal_dropped.clone(),
        });
        let writer = Writer {
            queue: queue.clone(),
            journal: Arc::downgrade(&inner),
            store: inner.store.clone(),
            replica: inner.replica.clone(),
            written: metrics.journal_records.clone(),
            dropped: metrics.journal_dropped.clone(),
            retention,
        };
        // Detached: it ends when the last handle is dropped, after writing what was queued.
        match std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run())
        {
            Ok(handle) => {
                let _ = queue.writer.set(handle.thread().clone());
            }
            Err(err) => {
                tracing::error!(error = %err, "Cannot start the drill journal's writer; nothing will be recorded.");
            }
        }
        Self { inner }
    }

    /// This process's name in records (its `Via` pseudonym).
    #[must_use]
    pub(crate) fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// Starts the record of a request decided as `action` at `now`, if it is journalled:
    /// a route of kind `api`, `page`, `token_js` or `notification`, while recording is on
    /// (or when the drill header sent it to maintenance or through: a targeted drill is
    /// always recorded). `request_id` is the request's `X-Request-Id`, as entered.
    #[must_use]
    pub(crate) fn begin<B: http_body::Body>(
        &self,
        snapshot: &Snapshot,
        action: Action,
        req: &http::Request<B>,
        request_id: &http::HeaderValue,
        now: DateTime<Utc>,
    ) -> Option<Arc<Capture>> {
        let route = action.route()?;
        let config = &snapshot.config;
        let kind = config.routes[route].kind;
        if kind == Kind::Passthrough || !config.report.enabled {
            return None;
        }
        // A request the drill header steered is a targeted drill: always evidence. That is
        // read off the decision, not the header (no lookup for every request).
        let steered = matches!(
            action,
            Action::Maintain { maintain, .. } if maintain.forced
        ) || matches!(
            action,
            Action::Forward {
                why: Pass::DrillHeader,
                ..
            }
        );
        if !steered && !snapshot.recording_at(now) {
            return None;
        }
        let (decision, window, forwarded) = match action {
            Action::Maintain { maintain, .. } => (
                if maintain.forced {
                    "drill-maintenance"
                } else {
                    "maintenance"
                },
                maintain.window,
                false,
            ),
            Action::Forward { why, .. } => (
                action.label(),
                match why {
                    Pass::WouldMaintain(m) => m.window,
                    _ => snapshot.timeline(route).active_at(now).map(|a| a.window),
                },
                true,
            ),
            Action::Loop | Action::Refuse(_) | Action::NoRoute => return None,
        };
        // A form is read as its body streams past; with no body, the header is not looked up.
        let form = !req.body().is_end_stream()
            && req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| {
                    let v = v.as_bytes();
                    let name = b"application/x-www-form-urlencoded";
                    v.len() >= name.len() && v[..name.len()].eq_ignore_ascii_case(name)
                });
        Some(Capture::new(
            self.clone(),
            Head {
                config: config.clone(),
                route,
                real_time: if self.inner.one_clock {
                    now
                } else {
                    self.inner.real_clock.now()
                },
                drill_time: now,
                request_id: fields::Ident::new(request_id.to_str().unwrap_or_default()),
                method: req.method().clone(),
                decision,
                window: window.map(|w| snapshot.window_ids[w].clone()),
                forwarded,
                form,
                answer: forwarded && kind == Kind::Api,
            },
        ))
    }

    /// Queues a finished request; never waits (but for the queue's lock, which the writer
    /// holds only to swap it). A full queue drops it and counts the drop.
    pub(crate) fn submit(&self, entry: Entry) {
        let queue = &*self.inner.queue;
        let mut entries = queue.entries();
        if entries.len() >= QUEUE {
            drop(entries);
            self.inner.unrecorded.fetch_add(1, Ordering::Relaxed);
            self.inner.dropped.inc();
            return;
        }
        let first = entries.is_empty();
        entries.push(entry);
        drop(entries);
        if first && queue.idle.swap(false, Ordering::SeqCst) {
            queue.wake();
        }
    }

    /// Remembers a drill that opened (or was restored at start).
    pub(crate) fn drill_opened(&self, drill: &crate::schedule::Window) {
        self.send_drill(DrillEvent::Opened(DrillSpan {
            id: drill.id.clone(),
            title: drill.title.clone(),
            services: drill.services.clone(),
            start: drill.start,
            end: drill.end,
        }));
    }

    /// Remembers that a drill was closed at `at`.
    pub(crate) fn drill_closed(&self, drill: &crate::schedule::Window, at: DateTime<Utc>) {
        self.send_drill(DrillEvent::Closed {
            id: drill.id.clone(),
            start: drill.start,
            end: at,
        });
    }

    fn send_drill(&self, event: DrillEvent) {
        self.inner
            .drills
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        self.inner.queue.wake();
    }

    /// Waits (at most `timeout`) until everything queued so far is written. False when it
    /// was not: the writer is slow (its store cannot keep up; records that found the queue
    /// full were dropped, and a report says so).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        let queue = &*self.inner.queue;
        queue
            .flushes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        queue.wake();
        rx.recv_timeout(timeout).is_ok()
    }

    /// Records with a drill time in `[from, to)`, and how many were lost in that span.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub(crate) fn records(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Vec<Record>, u64), StoreError> {
        let store = &self.inner.store;
        let mut dropped = store.dropped(from, to)?;
        // Drops not yet written down count against any span that is still open.
        if to > self.inner.clock.now() - TimeDelta::minutes(1) {
            dropped += self.inner.unrecorded.load(Ordering::Relaxed);
        }
        Ok((store.records(from, to)?, dropped))
    }

    /// Every drill remembered, oldest first.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub(crate) fn drills(&self) -> Result<Vec<DrillSpan>, StoreError> {
        self.inner.store.drills()
    }
}

/// The writer thread's side.
struct Writer {
    queue: Arc<Queue>,
    journal: std::sync::Weak<Inner>,
    store: Arc<dyn Store>,
    replica: String,
    written: Counter,
    dropped: Counter,
    retention: Retention,
}

impl Writer {
    /// Sleeps until the first record of a quiet spell; while records are waiting, naps
    /// [`DRAIN_EVERY`] and takes everything queued meanwhile. Waking for each record made
    /// every request wake this thread: the wake, the waker registration and the timed wait
    /// cost the request path's process about 2,900 instructions per short-circuited
    /// request, more than recording it (callgrind, `bench/profile.sh`). A flush, a drill
    /// change and the last handle's drop wake it at once.
    fn run(self) {
        let queue = &*self.queue;
        let mut batch = Batch::default();
        let mut spare: Vec<Entry> = Vec::new();
        let mut flushes = Vec::new();
        let mut oldest: Option<Instant> = None;
        let mut pruned = Instant::now();
        let mut texts = record::Texts::new(&self.replica);
        loop {
            if oldest.is_none() {
                // Idle first, then look: a record queued in between is seen here, or wakes
                // the park (an unpark before it makes it return at once).
                queue.idle.store(true, Ordering::SeqCst);
                if queue.entries().is_empty() {
                    std::thread::park_timeout(FLUSH_EVERY);
                }
                queue.idle.store(false, Ordering::SeqCst);
            } else {
                std::thread::park_timeout(DRAIN_EVERY);
            }
            // Flushes first: what was queued before one is in the take that follows.
            flushes.append(&mut queue.flushes.lock().unwrap_or_else(PoisonError::into_inner));
            let done = queue.closed.load(Ordering::SeqCst);
            std::mem::swap(&mut *queue.entries(), &mut spare);
            let got = !spare.is_empty() || self.drills_waiting();
            if batch.records.capacity() == 0 && !spare.is_empty() {
                // A batch fills over several takes; grown take by take, it was reallocated,
                // its records copied, at every doubling (callgrind).
                batch.records.reserve(BATCH.max(spare.len()));
            }
            batch
                .records
                .extend(spare.drain(..).map(|entry| texts.record(entry)));
            if got {
                oldest.get_or_insert_with(Instant::now);
            }
            let due = done
                || !flushes.is_empty()
                || batch.records.len() >= BATCH
                || oldest.is_some_and(|t| t.elapsed() >= FLUSH_EVERY);
            if !due {
                continue;
            }
            self.write(&mut batch);
            oldest = None;
            for reply in flushes.drain(..) {
                let _ = reply.try_send(());
            }
            if done {
                return;
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                self.prune();
            }
        }
    }

    /// Drill changes wait to be written.
    fn drills_waiting(&self) -> bool {
        self.journal.upgrade().is_some_and(|journal| {
            !journal
                .drills
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
        })
    }

    fn write(&self, batch: &mut Batch) {
        if let Some(journal) = self.journal.upgrade() {
            batch.drills.extend(
                journal
                    .drills
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .drain(..),
            );
            let lost = journal.unrecorded.swap(0, Ordering::Relaxed);
            if lost > 0 {
                batch.gap = Some(Gap {
                    real_time: journal.real_clock.now(),
                    drill_time: journal.clock.now(),
                    dropped: lost,
                });
            }
        }
        if batch.is_empty() {
            return;
        }
        let taken = std::mem::take(batch);
        let records = taken.records.len() as u64;
        let gap = taken.gap.map_or(0, |g| g.dropped);
        match self.store.append(taken) {
            Ok(()) => {
                self.written.inc_by(records);
            }
            Err(err) => {
                let error = crate::error::Chain(&*err);
                tracing::error!(%error, records,
                    "Cannot write to the drill journal; these records are lost.");
                self.dropped.inc_by(records);
                if let Some(journal) = self.journal.upgrade() {
                    journal
                        .unrecorded
                        .fetch_add(records + gap, Ordering::Relaxed);
                }
            }
        }
    }

    fn prune(&self) {
        let Some(journal) = self.journal.upgrade() else {
            return;
        };
        let keep = TimeDelta::from_std(self.retention.keep).unwrap_or(TimeDelta::MAX);
        let before = journal
            .real_clock
            .now()
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if let Err(err) = self.store.prune(before, self.retention.max_records) {
            let error = crate::error::Chain(&*err);
            tracing::warn!(%error, "Cannot apply the drill journal's retention.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` as docs write it: `8,192`.
    fn thousands(n: usize) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn the_docs_state_the_queue_and_the_batch_as_they_are() {
        // Read, not `include_str!`: the page is not part of the binary.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reports.md");
        let doc = std::fs::read_to_string(path)
            .expect("docs/reports.md")
            .replace("\n  ", " ");
        let queue = format!("bounded queue ({} entries)", thousands(QUEUE));
        assert!(doc.contains(&queue), "docs/reports.md lacks {queue:?}");
        let batch = format!("as soon as {} records wait", thousands(BATCH));
        assert!(doc.contains(&batch), "docs/reports.md lacks {batch:?}");
        let flush = format!("every {} ms", FLUSH_EVERY.as_millis());
        assert!(doc.contains(&flush), "docs/reports.md lacks {flush:?}");
        let memory = format!("at most {} records", thousands(MEMORY_RECORDS));
        assert!(doc.contains(&memory), "docs/reports.md lacks {memory:?}");
    }
}
