//! Shared runtime state: the current compiled config behind an `ArcSwap` (one atomic load per
//! request, never a lock), plus the things that change it: reloads, ad-hoc drills and the
//! periodic recompile of recurring windows. Every change is load → validate → compile →
//! swap; a failure leaves the running config untouched.

pub(crate) mod drills;
pub mod input;
pub(crate) mod readiness;
pub mod reload;

pub use input::DrillRequest;
pub(crate) use readiness::Readiness;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::clock::SharedClock;
use crate::config::{Config, ConfigError, EnvLookup};
use crate::journal::Journal;
use crate::schedule::{Source, Window};
use crate::state::drills::DrillStore;
use prometheus_client::metrics::histogram::Histogram;

use crate::decide::snapshot::Snapshot;
use crate::decide::via::ViaMark;
use crate::metrics::{Metrics, RequestCounters};
use crate::upstream::Target;

/// A snapshot plus the upstream targets and metric handles built for its config.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// Compiled config.
    pub(crate) snapshot: Snapshot,
    /// How to reach each `config.upstreams` entry (same index). Workers keep one
    /// connection pool per target.
    pub(crate) targets: Vec<Arc<Target>>,
    /// Request counters by route, resolved once each.
    pub(crate) counters: Arc<RequestCounters>,
    /// One latency histogram per `config.upstreams` entry.
    pub(crate) latency: Vec<Histogram>,
}

impl Loaded {
    fn new(snapshot: Snapshot, targets: Vec<Arc<Target>>, metrics: &Metrics) -> Self {
        let config = &snapshot.config;
        Self {
            counters: Arc::new(RequestCounters::new(config.routes.len())),
            latency: metrics.upstream_histograms(config.upstreams.iter().map(|u| u.name.as_str())),
            snapshot,
            targets,
        }
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid.
    #[error("invalid config:\n{0}")]
    Invalid(ConfigError),
    /// Settings that only a restart can change were changed.
    #[error(
        "{} in {}: restart the shim to apply; nothing was changed",
        changed.join("; "),
        path.display()
    )]
    NeedsRestart {
        /// What changed, e.g. `server.max_connections changed`.
        changed: Vec<String>,
        /// The config file.
        path: PathBuf,
    },
    /// TLS client setup failed.
    #[error("cannot build TLS client configuration")]
    Tls(#[from] rustls::Error),
}

impl ReloadError {
    /// One line per problem, for logs and the admin API.
    #[must_use]
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            Self::Invalid(e) => e.lines().collect(),
            other => vec![crate::error::Chain(other).to_string()],
        }
    }
}

/// Why an ad-hoc drill was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DrillError {
    /// A drill with this id is open already (409).
    #[error("a drill with id {0:?} is already open")]
    Duplicate(String),
    /// `[admin] max_drills` drills are open already (409).
    #[error("{0} drills are open already ([admin] max_drills); close one first")]
    TooMany(usize),
    /// The input breaks a rule that needs no config (400).
    #[error(transparent)]
    Invalid(#[from] input::InputError),
    /// The running config refuses it: an unknown service or too long (400).
    #[error(transparent)]
    Refused(#[from] input::ConfigRefusal),
}

/// State shared by every connection and the admin API.
pub struct Shared {
    /// Current configuration, read through [`Shared::current`]. Private: only
    /// `Shared::publish` stores into it, because a store must also bump the generation or
    /// the workers keep serving the config their view was built from.
    current: ArcSwap<Loaded>,
    /// Bumped after every change of `current`: workers compare it with the one their
    /// cached view was built from (a read of a rarely written word, never a lock).
    generation: AtomicU64,
    /// The shim's clock (the drill clock when configured).
    pub(crate) clock: SharedClock,
    /// The real clock underneath.
    pub(crate) real_clock: SharedClock,
    /// Metrics registry.
    pub(crate) metrics: Metrics,
    /// The `Via` mark of this process: added to every forwarded request, and a request
    /// that arrives with it is a loop.
    pub via: ViaMark,
    /// The drill journal.
    pub journal: Journal,
    /// Whether every worker serves (`/readyz`).
    readiness: Readiness,
    /// Open ad-hoc drills. Also serialises every rebuild, so two changes never race.
    drills: Mutex<Vec<Window>>,
    next_version: AtomicU64,
    next_drill: AtomicU64,
    env: Arc<EnvLookup>,
    config_path: PathBuf,
    /// Where open drills are persisted (`[admin] state_dir`), read at start only.
    store: Option<DrillStore>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Compiles `config` as version 1.
    ///
    /// # Errors
    /// When an upstream's TLS client cannot be built.
    pub(crate) fn new(
        config: Config,
        clock: SharedClock,
        real_clock: SharedClock,
        env: Arc<EnvLookup>,
    ) -> Result<Self, rustls::Error> {
        let config_path = config.path.clone();
        let store = DrillStore::for_config(&config, &*env);
        let now = clock.now();
        let drills = store
            .as_ref()
            .map(|s| drills::admit(s.load(now), &config))
            .unwrap_or_default();
        let next_drill = crate::state::drills::next_generated_id(&drills);
        let config = Arc::new(config);
        let metrics = Metrics::new();
        let via = ViaMark::random();
        let journal = Journal::open(
            &config.report,
            store.as_ref().map(DrillStore::dir),
            via.pseudonym(),
            clock.clone(),
            real_clock.clone(),
            &metrics,
        );
        for drill in &drills {
            journal.drill_opened(drill);
        }
        let loaded = Loaded::new(
            Snapshot::new(config.clone(), &drills, 1, now),
            targets(&config, &[])?,
            &metrics,
        );
        let shared = Self {
            current: ArcSwap::from_pointee(loaded),
            generation: AtomicU64::new(1),
            clock,
            real_clock,
            metrics,
            via,
            journal,
            readiness: Readiness::default(),
            drills: Mutex::new(drills),
            next_version: AtomicU64::new(2),
            next_drill: AtomicU64::new(next_drill),
            env,
            config_path,
            store,
        };
        shared.update_gauges();
        Ok(shared)
    }

    /// The config file reloads read.
    #[must_use]
    pub(crate) fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// The directory open drills are persisted in, if any.
    #[must_use]
    pub(crate) fn state_dir(&self) -> Option<&std::path::Path> {
        self.store.as_ref().map(DrillStore::dir)
    }

    /// Re-reads the config file; swaps it in only if it is valid and changes nothing that
    /// needs a restart. In-flight requests finish on the config they started with.
    ///
    /// # Errors
    /// The reason it was refused; the old config keeps running.
    pub fn reload(&self) -> Result<u64, ReloadError> {
        let result = self.try_reload();
        self.metrics.reload(result.is_ok());
        match &result {
            Ok(version) => {
                tracing::info!(version, path = %self.config_path.display(), "Config reloaded.")
            }
            Err(err) => {
                for line in err.lines() {
                    tracing::error!(error = %line, "Config reload refused; the previous config keeps running.");
                }
            }
        }
        result
    }

    fn try_reload(&self) -> Result<u64, ReloadError> {
        let config =
            Config::load_with_env(&self.config_path, &*self.env).map_err(ReloadError::Invalid)?;
        let drills = self.lock_drills();
        let current = self.current.load();
        let old = &current.snapshot.config;
        let mut restart = Vec::new();
        if config.listen != old.listen {
            restart.push(format!(
                "listen addresses changed (proxy {} → {}, admin {} → {})",
                old.listen.proxy, config.listen.proxy, old.listen.admin, config.listen.admin
            ));
        }
        if config.tls != old.tls {
            restart.push("[tls] changed".to_string());
        }
        if config.clock.start_at != old.clock.start_at
            || config.clock.speed != old.clock.speed
            || config.clock.anchor != old.clock.anchor
        {
            restart.push("the drill clock ([clock] start_at/speed/anchor) changed".to_string());
        }
        if config.admin.state_dir != old.admin.state_dir {
            restart.push("admin.state_dir changed".to_string());
        }
        if config.log_format != old.log_format {
            restart.push("log.format changed".to_string());
        }
        let (new, was) = (&config.server, &old.server);
        // These shape the listeners and their connections, built once at start.
        for (changed, key) in [
            (new.worker_threads != was.worker_threads, "worker_threads"),
            (
                new.max_connections != was.max_connections,
                "max_connections",
            ),
            (
                new.max_upstream_per_client != was.max_upstream_per_client,
                "max_upstream_per_client",
            ),
            (
                new.header_read_timeout != was.header_read_timeout,
                "header_read_timeout",
            ),
            (
                new.keepalive_timeout != was.keepalive_timeout,
                "keepalive_timeout",
            ),
            (
                new.max_header_bytes != was.max_header_bytes,
                "max_header_bytes",
            ),
            (new.shutdown_grace != was.shutdown_grace, "shutdown_grace"),
        ] {
            if changed {
                restart.push(format!("server.{key} changed"));
            }
        }
        if !restart.is_empty() {
            return Err(ReloadError::NeedsRestart {
                changed: restart,
                path: self.config_path.clone(),
            });
        }
        let config = Arc::new(config);
        let targets = targets(&config, &current.targets)?;
        let version = self.next_version.fetch_add(1, Ordering::SeqCst);
        let snapshot = Snapshot::new(config, &drills, version, self.clock.now());
        self.publish(Loaded::new(snapshot, targets, &self.metrics));
        drop(drills);
        self.update_gauges();
        Ok(version)
    }

    /// Opens an ad-hoc window now; it expires by itself. Survives reloads.
    ///
    /// # Errors
    /// A duplicate id or bad input.
    pub(crate) fn open_drill(&self, req: DrillRequest) -> Result<Window, DrillError> {
        req.check()?;
        let now = self.clock.now();
        let mut drills = self.lock_drills();
        drills.retain(|w| w.end > now);
        if let Some(id) = &req.id
            && drills.iter().any(|w| w.id == *id)
        {
            return Err(DrillError::Duplicate(id.clone()));
        }
        let config = self.current.load().snapshot.config.clone();
        if drills.len() >= config.admin.max_drills {
            return Err(DrillError::TooMany(drills.len()));
        }
        input::check_against(&config, &req.services, req.duration)?;
        let id = req
            .id
            .unwrap_or_else(|| format!("drill-{}", self.next_drill.fetch_add(1, Ordering::SeqCst)));
        // A generated id may still meet a restored drill that was given the same one by hand.
        if drills.iter().any(|w| w.id == id) {
            return Err(DrillError::Duplicate(id));
        }
        let window = Window {
            title: req.title.unwrap_or_else(|| format!("ad-hoc drill {id}")),
            id,
            start: now,
            end: now + req.duration,
            services: req.services,
            source: Source::Drill,
        };
        drills.push(window.clone());
        self.journal.drill_opened(&window);
        self.recompile_locked(&drills, now);
        self.persist(&drills);
        drop(drills);
        self.update_gauges();
        tracing::info!(drill = %window.id, services = ?window.services, until = %window.end, "Drill opened.");
        Ok(window)
    }

    /// Closes an ad-hoc drill; false when no open drill has that id.
    pub(crate) fn close_drill(&self, id: &str) -> bool {
        let now = self.clock.now();
        let mut drills = self.lock_drills();
        drills.retain(|w| w.end > now);
        let before = drills.len();
        drills.retain(|w| {
            let closing = w.id == id;
            if closing {
                self.journal.drill_closed(w, now);
            }
            !closing
        });
        let found = drills.len() != before;
        if found {
            self.recompile_locked(&drills, now);
            self.persist(&drills);
            tracing::info!(drill = id, "Drill closed.");
        }
        drop(drills);
        self.update_gauges();
        found
    }

    /// Open (unexpired) ad-hoc drills.
    #[must_use]
    pub(crate) fn drills(&self) -> Vec<Window> {
        let now = self.clock.now();
        self.lock_drills()
            .iter()
            .filter(|w| w.end > now)
            .cloned()
            .collect()
    }

    /// Recompiles the current config if recurring windows need expanding further, or the
    /// clock moved backwards past the compiled range. Called periodically off the request path.
    pub(crate) fn recompile_if_needed(&self) {
        let now = self.clock.now();
        if self.current.load().snapshot.needs_recompile(now) {
            let mut drills = self.lock_drills();
            drills.retain(|w| w.end > now);
            self.recompile_locked(&drills, now);
            tracing::info!("Recurring windows recompiled.");
        }
        self.update_gauges();
    }

    /// Rebuilds the snapshot from the current config (same version, same upstream pools).
    fn recompile_locked(&self, drills: &[Window], now: DateTime<Utc>) {
        let current = self.current.load();
        let snapshot = Snapshot::new(
            current.snapshot.config.clone(),
            drills,
            current.snapshot.version,
            now,
        );
        // Same config: keep the targets (so the workers keep their pools) and the counters.
        self.publish(Loaded {
            snapshot,
            targets: current.targets.clone(),
            counters: current.counters.clone(),
            latency: current.latency.clone(),
        });
    }

    /// Makes `loaded` the config in use. Requests already running finish on the one they
    /// started with; each worker picks the new one up on its next request.
    fn publish(&self, loaded: Loaded) {
        self.current.store(Arc::new(loaded));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The config in use now: one atomic load, never a lock. Hold the guard for one request
    /// or one admin answer, not across a long wait (it pins this version in memory).
    #[must_use]
    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Loaded>> {
        self.current.load()
    }

    /// Whether every worker serves: set by the workers, read by `/readyz`.
    #[must_use]
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Changes every time the config in use changes.
    #[must_use]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Writes the open drills to the state directory, under the drills lock so writes land in
    /// the order of the changes. A failure is logged: the drill stays open in memory.
    fn persist(&self, drills: &[Window]) {
        if let Some(store) = &self.store
            && let Err(err) = store.save(drills)
        {
            let error = crate::error::Chain(&err);
            tracing::error!(%error, "Cannot persist open drills; they will not survive a restart.");
        }
    }

    /// Refreshes the state gauges (also done before each /metrics scrape).
    pub(crate) fn update_gauges(&self) {
        let now = self.clock.now();
        let current = self.current.load();
        let active = current.snapshot.active_windows(now).count();
        let drills = self.lock_drills().iter().filter(|w| w.end > now).count();
        self.metrics
            .set_state(active, drills, current.snapshot.version);
    }

    fn lock_drills(&self) -> std::sync::MutexGuard<'_, Vec<Window>> {
        // A panic while holding the lock leaves the Vec consistent (every mutation is a
        // single push/retain), so poisoning is safe to ignore.
        self.drills
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The targets of `config`'s upstreams, reusing any of `previous` whose settings did not
/// change (so the workers keep those pools across a reload).
fn targets(config: &Config, previous: &[Arc<Target>]) -> Result<Vec<Arc<Target>>, rustls::Error> {
    config
        .upstreams
        .iter()
        .map(|u| match previous.iter().find(|t| t.config == *u) {
            Some(same) => Ok(same.clone()),
            None => Target::new(u).map(Arc::new),
        })
        .collect()
}
