//! What the stand-in remembers (orders, stored cards, tokens), each list bounded by count
//! (past the bound the oldest entry is dropped, so a long QA run cannot grow it without
//! limit) and all of them by bytes (`--max-state-bytes`: the oldest orders go first, since
//! one order can hold about 157 KB of form fields; issue 25, finding 12), and
//! optionally kept in a state file across restarts. The file is written atomically after
//! every change (temporary file, fsync, rename, fsync of the directory): a crash leaves the
//! old state or the new one, never half of one. A reset empties the state and truncates the
//! file; an empty file reads as an empty state.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::cards::Member;
use super::orders::Order;
use super::tokens::Token;

/// Largest state file read back; a bigger one was not written by the stand-in.
pub(super) const MAX_FILE_BYTES: u64 = 1 << 30;

/// A record that knows its own key.
pub(crate) trait Keyed {
    /// The key the record is found by.
    type Key: Eq + Hash + Clone;
    /// This record's key.
    fn key(&self) -> Self::Key;
}

/// A map that keeps at most `cap` records, dropping the oldest insertion first, and knows
/// how many bytes its records take (as saved: their JSON).
#[derive(Debug)]
pub(crate) struct Bounded<V: Keyed> {
    map: HashMap<V::Key, V>,
    /// Keys in insertion order. Records are never removed but by eviction, so this holds
    /// exactly the map's keys.
    order: VecDeque<V::Key>,
    cap: usize,
    /// Each record's JSON size when last measured, and their sum.
    sizes: HashMap<V::Key, usize>,
    bytes: usize,
    /// Records handed out mutably since the last [`Bounded::settle`]: measured again there.
    dirty: Vec<V::Key>,
}

/// Counts what is written to it: a record's JSON size without building the JSON.
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn measure(value: &impl Serialize) -> usize {
    let mut count = Count(0);
    // Plain data: serialising cannot fail; a failure would only undercount.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

impl<V: Keyed + Serialize> Bounded<V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            sizes: HashMap::new(),
            bytes: 0,
            dirty: Vec::new(),
        }
    }

    /// Bytes the records take, as of the last change or [`Bounded::settle`].
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Measures again the records handed out mutably since the last call.
    pub(crate) fn settle(&mut self) {
        for key in std::mem::take(&mut self.dirty) {
            if let Some(size) = self.map.get(&key).map(measure) {
                self.set_size(key, size);
            }
        }
    }

    fn set_size(&mut self, key: V::Key, size: usize) {
        let old = self.sizes.insert(key, size).unwrap_or(0);
        self.bytes = self.bytes - old + size;
    }

    /// Drops the oldest record, unless it is the only one (the newest is always kept: the
    /// request that made it is being answered); false when nothing was dropped.
    fn evict_oldest(&mut self) -> bool {
        if self.order.len() <= 1 {
            return false;
        }
        let Some(oldest) = self.order.pop_front() else {
            return false;
        };
        self.map.remove(&oldest);
        self.bytes -= self.sizes.remove(&oldest).unwrap_or(0);
        true
    }

    pub(crate) fn get(&self, key: &V::Key) -> Option<&V> {
        self.map.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &V::Key) -> Option<&mut V> {
        if self.map.contains_key(key) {
            self.dirty.push(key.clone());
        }
        self.map.get_mut(key)
    }

    pub(crate) fn contains(&self, key: &V::Key) -> bool {
        self.map.contains_key(key)
    }

    /// Inserts or replaces `value`; a new key may evict the oldest one.
    pub(crate) fn insert(&mut self, value: V) {
        let key = value.key();
        self.admit(&key);
        self.set_size(key.clone(), measure(&value));
        self.map.insert(key, value);
    }

    /// The record under `key`, made by `make` (possibly evicting the oldest) if missing.
    pub(crate) fn get_or_insert_with(&mut self, key: V::Key, make: impl FnOnce() -> V) -> &mut V {
        self.admit(&key);
        self.dirty.push(key.clone());
        self.map.entry(key).or_insert_with(make)
    }

    /// Makes room for `key` in the insertion order if it is new.
    fn admit(&mut self, key: &V::Key) {
        if self.map.contains_key(key) {
            return;
        }
        while self.order.len() >= self.cap {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
            self.bytes -= self.sizes.remove(&oldest).unwrap_or(0);
        }
        self.order.push_back(key.clone());
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Records, oldest first.
    fn values(&self) -> impl Iterator<Item = &V> {
        self.order.iter().filter_map(|k| self.map.get(k))
    }

    fn from_records(records: Vec<V>, cap: usize) -> Self {
        let mut bounded = Self::new(cap);
        for record in records {
            bounded.insert(record);
        }
        bounded
    }
}

/// Everything the stand-in remembers.
#[derive(Debug)]
pub(crate) struct State {
    /// Orders by trader_code and order_no.
    pub(crate) orders: Bounded<Order>,
    /// Stored cards by trader_code and member_id.
    pub(crate) members: Bounded<Member>,
    /// Minted and spent tokens.
    pub(crate) tokens: Bounded<Token>,
    /// Most bytes the three lists take together (their JSON).
    max_bytes: usize,
}

/// The state file's layout (`version` 1). Lists are oldest first.
#[derive(Debug, Serialize)]
struct SavedRef<'a> {
    version: u32,
    orders: Vec<&'a Order>,
    members: Vec<&'a Member>,
    tokens: Vec<&'a Token>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    version: u32,
    orders: Vec<Order>,
    members: Vec<Member>,
    tokens: Vec<Token>,
}

const VERSION: u32 = 1;

impl State {
    fn new(cap: usize, max_bytes: usize) -> Self {
        Self {
            orders: Bounded::new(cap),
            members: Bounded::new(cap),
            tokens: Bounded::new(cap),
            max_bytes,
        }
    }

    /// Bytes the lists take together.
    pub(crate) fn bytes(&self) -> usize {
        self.orders.bytes() + self.members.bytes() + self.tokens.bytes()
    }

    /// Measures what changed, then drops records until the lists fit `max_bytes`: the
    /// oldest orders first (they are the bulk), then the oldest tokens, then stored cards;
    /// the newest of each stays. Returns how many were dropped.
    fn fit(&mut self) -> usize {
        self.orders.settle();
        self.members.settle();
        self.tokens.settle();
        let mut dropped = 0;
        while self.bytes() > self.max_bytes
            && (self.orders.evict_oldest()
                || self.tokens.evict_oldest()
                || self.members.evict_oldest())
        {
            dropped += 1;
        }
        dropped
    }

    fn to_json(&self) -> Vec<u8> {
        let saved = SavedRef {
            version: VERSION,
            orders: self.orders.values().collect(),
            members: self.members.values().collect(),
            tokens: self.tokens.values().collect(),
        };
        // Plain data with string keys: serialising it cannot fail. Compact: the whole file is
        // rewritten after every change.
        serde_json::to_vec(&saved).unwrap_or_default()
    }
}

/// The state file could not be loaded: the stand-in does not start on state it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading failed (other than the file not existing yet).
    #[error("cannot read state file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state file of this version.
    #[error("state file {} is not a stand-in gateway state (version {VERSION})", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The state behind a lock, and the file it is saved to.
#[derive(Debug)]
pub(crate) struct Store {
    inner: Mutex<Book>,
    file: Option<StateFile>,
    /// The bound of each list, for a fresh state after a reset.
    cap: usize,
}

#[derive(Debug)]
struct Book {
    state: State,
    /// Bumped by every change, so that a slower save never overwrites a newer one.
    generation: u64,
}

#[derive(Debug)]
struct StateFile {
    path: PathBuf,
    /// The generation on disk; held while saving, so saves happen one at a time.
    written: tokio::sync::Mutex<u64>,
}

impl Store {
    /// An empty store, or the one saved in `path` (a missing file is an empty store).
    pub(crate) fn open(
        path: Option<PathBuf>,
        cap: usize,
        max_bytes: usize,
    ) -> Result<Self, StateFileError> {
        let mut state = match &path {
            Some(path) => load(path, cap, max_bytes)?,
            None => State::new(cap, max_bytes),
        };
        state.fit();
        Ok(Self {
            inner: Mutex::new(Book {
                state,
                generation: 0,
            }),
            file: path.map(|path| StateFile {
                path,
                written: tokio::sync::Mutex::new(0),
            }),
            cap,
        })
    }

    /// Forgets every order, token and stored card, and truncates the state file (an empty
    /// file reads as an empty state), so a test can run again without a restart.
    ///
    /// # Errors
    /// The state file could not be truncated; the state in memory is empty all the same.
    pub(crate) async fn reset(&self) -> std::io::Result<()> {
        // Held across the truncation: no save of the old state can land after it.
        let written = match &self.file {
            Some(file) => Some(file.written.lock().await),
            None => None,
        };
        let generation = {
            let mut inner = self.lock();
            inner.state = State::new(self.cap, inner.state.max_bytes);
            inner.generation += 1;
            inner.generation
        };
        if let (Some(file), Some(mut written)) = (&self.file, written) {
            let path = file.path.clone();
            tokio::task::spawn_blocking(move || write_atomically(&path, b""))
                .await
                .map_err(std::io::Error::other)??;
            *written = generation;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state without changing it.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock().state)
    }

    /// Runs `f` on the state; when it succeeds (an `Err` must leave the state untouched) the
    /// change is saved before this returns, so the answer is sent after the state is on disk.
    pub(crate) async fn write<R, E>(
        &self,
        f: impl FnOnce(&mut State) -> Result<R, E>,
    ) -> Result<R, E> {
        let (result, generation) = {
            let mut inner = self.lock();
            let result = f(&mut inner.state);
            let dropped = inner.state.fit();
            if dropped > 0 {
                tracing::debug!(
                    dropped,
                    bytes = inner.state.bytes(),
                    "Stand-in state past --max-state-bytes: the oldest records were forgotten."
                );
            }
            if result.is_ok() {
                inner.generation += 1;
            }
            (result, inner.generation)
        };
        if result.is_ok()
            && let Some(file) = &self.file
        {
            self.save(file, generation).await;
        }
        result
    }

    /// Saves a state at least as new as `generation`. Changes that arrive while a save runs
    /// share the next one: each save writes the whole state as it is when the save starts.
    async fn save(&self, file: &StateFile, generation: u64) {
        let mut written = file.written.lock().await;
        if *written >= generation {
            return;
        }
        let (current, json) = {
            let inner = self.lock();
            (inner.generation, inner.state.to_json())
        };
        let path = file.path.clone();
        let result = tokio::task::spawn_blocking(move || write_atomically(&path, &json)).await;
        match result {
            Ok(Ok(())) => *written = current,
            // The answer still goes out: a stand-in that stops answering helps nobody. The
            // path is the only detail logged (the state holds order numbers and tokens).
            Ok(Err(err)) => tracing::warn!(
                path = %file.path.display(),
                error = %err,
                "Stand-in gateway state not saved."
            ),
            Err(err) => tracing::warn!(error = %err, "Stand-in gateway state not saved."),
        }
    }
}

fn load(path: &Path, cap: usize, max_bytes: usize) -> Result<State, StateFileError> {
    // No symbolic link, FIFO or device, and a size cap (crate::safe_file): a FIFO planted as
    // the state file used to hang the stand-in before it could answer SIGTERM (finding 7).
    let bytes = match crate::safe_file::read_state(path, MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(State::new(cap, max_bytes));
        }
        Err(source) => {
            return Err(StateFileError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // What a reset leaves behind.
    if bytes.is_empty() {
        return Ok(State::new(cap, max_bytes));
    }
    let parse_error = |source| StateFileError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let saved: Saved = serde_json::from_slice(&bytes).map_err(parse_error)?;
    if saved.version != VERSION {
        return Err(parse_error(serde::de::Error::custom(format!(
            "unknown version {}",
            saved.version
        ))));
    }
    Ok(State {
        orders: Bounded::from_records(saved.orders, cap),
        members: Bounded::from_records(saved.members, cap),
        tokens: Bounded::from_records(saved.tokens, cap),
        max_bytes,
    })
}

/// Replaces `path` with `bytes` so that a crash at any point leaves either file whole; the
/// temporary file has an unpredictable name and is created exclusively with mode 0600 (tokens
/// and order numbers: readable by the stand-in's user only), so a link planted under a
/// guessable name is never written through.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::safe_file::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize)]
    struct Rec(u32, &'static str);

    impl Keyed for Rec {
        type Key = u32;
        fn key(&self) -> u32 {
            self.0
        }
    }

    #[test]
    fn bytes_are_counted_and_the_oldest_go_first() {
        let mut b = Bounded::new(10);
        b.insert(Rec(1, "aaaa"));
        b.insert(Rec(2, "bb"));
        // [1,"aaaa"] is 10 bytes, [2,"bb"] 8.
        assert_eq!(b.bytes(), 18);
        if let Some(r) = b.get_mut(&2) {
            r.1 = "bbbbbbbb";
        }
        b.settle();
        assert_eq!(b.bytes(), 24);
        assert!(b.evict_oldest());
        assert_eq!((b.len(), b.bytes()), (1, 14));
        // The newest stays.
        assert!(!b.evict_oldest());
    }

    #[test]
    fn bounded_drops_the_oldest_insertion() {
        let mut b = Bounded::new(2);
        b.insert(Rec(1, "a"));
        b.insert(Rec(2, "b"));
        // Replacing keeps the place in line.
        b.insert(Rec(1, "a2"));
        assert_eq!(b.len(), 2);
        b.insert(Rec(3, "c"));
        assert_eq!(b.len(), 2);
        assert!(!b.contains(&1));
        assert_eq!(b.get(&2), Some(&Rec(2, "b")));
        assert_eq!(
            b.values().cloned().collect::<Vec<_>>(),
            [Rec(2, "b"), Rec(3, "c")]
        );
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let dir = std::env::temp_dir().join(format!("wcs-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
