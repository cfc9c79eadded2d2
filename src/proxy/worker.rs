//! One worker thread's share of the shim: its cached view of the config in use, its
//! upstream connection pools and its request-id sequence. Nothing here is shared with
//! another worker, so the request path never waits on, or bounces a cache line with, one.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderValue;

use crate::config::Kind;
use crate::decide::Maintain;
use crate::metrics::traffic::{Cells, Shard};
use crate::proxy::enter::X_REQUEST_ID;
use crate::proxy::pool::Pool;
use crate::response::Canned;
use crate::state::{Loaded, Shared};

/// How often idle pooled connections past `pool_idle_timeout` are closed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// One worker's state, shared by the connections it serves.
#[derive(Debug)]
pub(crate) struct Worker {
    /// The shim's shared state (config, clock, metrics).
    pub(crate) shared: Arc<Shared>,
    // The lock is only ever taken by this worker's thread: never contended.
    view: Mutex<Arc<View>>,
    request_ids: RequestIds,
    /// This worker's traffic counters for the console; only this thread writes them.
    traffic: Arc<Shard>,
}

impl Worker {
    /// Worker number `index` of `shared`.
    #[must_use]
    pub(crate) fn new(shared: Arc<Shared>, index: usize) -> Self {
        let traffic = shared.metrics.traffic.shard();
        let view = View::build(&shared, &[], &traffic);
        Self {
            shared,
            view: Mutex::new(Arc::new(view)),
            request_ids: RequestIds::new(index),
            traffic,
        }
    }

    /// The config in use, with this worker's pools for its upstreams. A request keeps the
    /// view it started with until it ends, even across a reload.
    pub(crate) fn view(&self) -> Arc<View> {
        let generation = self.shared.generation();
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if view.generation != generation {
            *view = Arc::new(View::build(&self.shared, &view.pools, &self.traffic));
        }
        view.clone()
    }

    /// A new request id, unique for the life of the process (no syscall, no lock).
    pub(crate) fn next_request_id(&self) -> HeaderValue {
        self.request_ids.next()
    }

    /// Closes expired idle connections every few seconds, until the runtime stops.
    pub(crate) fn spawn_sweeper(self: &Arc<Self>) {
        let worker = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(worker) = worker.upgrade() else {
                    return;
                };
                for pool in &worker.view().pools {
                    pool.evict_expired();
                }
            }
        });
    }
}

/// A loaded config as one worker sees it.
#[derive(Debug)]
pub(crate) struct View {
    /// The shim's shared state.
    pub(crate) shared: Arc<Shared>,
    /// The config.
    pub(crate) loaded: Arc<Loaded>,
    /// This worker's pool for each of `loaded.targets` (same index).
    pub(crate) pools: Vec<Arc<Pool>>,
    /// This worker's traffic cells for each of `config.routes` (same index), then one for
    /// requests no route took.
    pub(crate) traffic: Vec<Arc<Cells>>,
    generation: u64,
    /// The API maintenance answer of the current second: `returnDate` changes once a
    /// second, so the XML is built once a second, not once a request.
    api_answer: Mutex<Option<(i64, Canned)>>,
}

impl View {
    fn build(shared: &Arc<Shared>, previous: &[Arc<Pool>], traffic: &Shard) -> Self {
        // The generation is read before the config: if another change lands in between,
        // the next request sees a newer generation and builds again.
        let generation = shared.generation();
        let loaded = Arc::clone(&shared.current());
        let pools = loaded
            .targets
            .iter()
            .map(|target| {
                previous
                    .iter()
                    .find(|p| Arc::ptr_eq(p.target(), target))
                    .cloned()
                    .unwrap_or_else(|| Pool::new(target.clone()))
            })
            .collect();
        let traffic = traffic.cells(loaded.snapshot.config.routes.iter().map(|r| r.id.as_str()));
        Self {
            shared: shared.clone(),
            loaded,
            pools,
            traffic,
            generation,
            api_answer: Mutex::new(None),
        }
    }

    /// [`crate::decide::snapshot::Snapshot::maintenance_answer`], with the API answer cached per
    /// second (the same bytes).
    #[must_use]
    pub(crate) fn maintenance_answer(
        &self,
        route: usize,
        maintain: Maintain,
        path: &str,
        now: DateTime<Utc>,
    ) -> Canned {
        let snapshot = &self.loaded.snapshot;
        if snapshot.config.routes[route].kind != Kind::Api {
            return snapshot.maintenance_answer(route, maintain, path, now);
        }
        let second = now.timestamp();
        let mut cached = self
            .api_answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((at, canned)) if *at == second => canned.clone(),
            _ => {
                let mut canned = snapshot.maintenance_answer(route, maintain, path, now);
                // An empty slot for the request id, which `enter::render` fills. A
                // clone's header map is exactly full: adding the id would reallocate it
                // (about 580 instructions of a short-circuit's 15,400, callgrind).
                canned
                    .headers
                    .insert(X_REQUEST_ID, HeaderValue::from_static(""));
                *cached = Some((second, canned.clone()));
                canned
            }
        }
    }
}

/// Request ids: 32 lowercase hex digits, a random per-worker prefix then a counter.
#[derive(Debug)]
struct RequestIds {
    /// The prefix's 16 digits, written once.
    prefix: [u8; 16],
    next: AtomicU64,
}

impl RequestIds {
    fn new(index: usize) -> Self {
        // RandomState is seeded from the OS once per thread; mixing in the worker index
        // keeps workers apart even if two threads drew the same seed.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(index);
        Self {
            prefix: hex(hasher.finish()),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&self.prefix);
        out[16..].copy_from_slice(&hex(n));
        // Owned by a shared array: the request and its answer each hold a clone, and a
        // clone of a `Vec`-backed `Bytes` (`copy_from_slice`) allocates a second time to
        // share it (callgrind).
        HeaderValue::from_maybe_shared(Bytes::from_owner(out))
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// `n` as 16 lowercase hex digits.
fn hex(n: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_hex() {
        let ids = RequestIds::new(0);
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 32);
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        }
        assert_eq!(a.as_bytes()[..16], b.as_bytes()[..16]);
        assert_eq!(&hex(0x0123_4567_89ab_cdef), b"0123456789abcdef");
        assert_eq!(&hex(1), b"0000000000000001");
    }
}
