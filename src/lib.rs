//! webcollect-shim: a reverse proxy that rehearses クロネコwebコレクト maintenance windows.
//!
//! [`Shim::new`] checks and compiles a [`config::Config`]; [`Shim::run`] serves it on
//! listeners the caller has already bound (so tests can use port 0): the proxy listeners (and
//! TLS listeners, [`tls`]) on worker threads ([`runtime`]), the admin listener on the
//! caller's runtime.
//!
//! # Public API
//!
//! The library has three users outside it: the `webcollect-shim` binary (`src/main.rs`,
//! `src/cli`), the integration tests (`tests/`) and the fuzz targets (`fuzz/`); the speed
//! calibration (`bench/calibration`) borrows two header helpers. What is `pub` is what they
//! use, and no more: everything else is `pub(crate)`, and `unreachable_pub` keeps it so. It
//! is not a stable interface for other crates.
//!
//! # Modules
//!
//! - The request path: [`runtime`] accepts connections and runs the [`proxy`] stack, which
//!   asks [`decide`] (on `schedule`'s timelines) what to do, forwards through
//!   `upstream` or answers with `response`, and records into [`journal`] and
//!   `metrics`; TLS listeners are [`tls`].
//! - Control: [`config`] (load and check), [`state`] (the config in use, reloads, drills),
//!   [`clock`] (the one "now"), the [`admin`] listener, [`inspect`] (`check`, `explain`).
//! - Shared helpers: [`error`], `safe_file`.
//! - A separate product: [`qa`], the stand-in gateway for offline QA. It is not on the
//!   request path and nothing in the library depends on it (`tests/layout.rs` checks).

#![deny(unreachable_pub)]

pub mod admin;
pub mod clock;
pub mod config;
pub mod decide;
pub mod error;
pub mod inspect;
pub mod journal;
pub(crate) mod metrics;
pub mod proxy;
/// A separate product sharing the crate: the stand-in gateway (and the gateway-style
/// notification sender) that QA runs instead of the real test gateway, offline. It is not on
/// the request path. It builds on `response`, [`runtime`] (its listener), [`clock`],
/// `safe_file` and [`error`]; only the binary's `mock-gateway` and `notify` commands use
/// it, and nothing in the library may (`tests/layout.rs` checks).
pub mod qa;
pub(crate) mod response;
pub mod runtime;
pub(crate) mod safe_file;
pub(crate) mod schedule;
pub mod state;
pub mod tls;
pub(crate) mod upstream;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use clock::SharedClock;
use config::{Config, EnvLookup};
use runtime::server::{self, ServeOptions};
use state::Shared;

/// How long shutdown waits for the drill journal to write what is queued.
const JOURNAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// A configured shim, ready to serve.
#[derive(Debug)]
pub struct Shim {
    shared: Arc<Shared>,
    tls: Option<Arc<tls::Frontend>>,
}

/// Errors that stop the shim from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An upstream's TLS client could not be built.
    #[error("cannot build TLS client configuration")]
    Tls(#[from] rustls::Error),
    /// A worker thread could not be started.
    #[error("cannot start a worker thread")]
    Worker(#[source] std::io::Error),
    /// The TLS listener's certificates could not be set up.
    #[error("cannot set up the TLS listener")]
    TlsListener(#[from] tls::Error),
    /// TLS listeners were passed, but the config has no `[listen] tls`, or their number
    /// differs from the proxy listeners' (one of each per worker).
    #[error("{0} TLS listener(s) for {1} proxy listener(s) and [listen] tls {2}")]
    TlsListeners(usize, usize, &'static str),
}

/// The listeners to serve on, already bound.
#[derive(Debug, Default)]
pub struct Listeners {
    /// Merchant traffic: one listener per worker thread, normally all on one port with
    /// SO_REUSEPORT (see [`runtime::bind_proxy`]).
    pub proxy: Vec<std::net::TcpListener>,
    /// Merchant traffic over TLS (`[listen] tls`): none, or one per proxy listener, bound
    /// like them.
    pub tls: Vec<std::net::TcpListener>,
    /// Admin endpoints; `None` serves none.
    pub admin: Option<TcpListener>,
}

impl Shim {
    /// Compiles `config` with the process environment. `base` is the real clock; a drill
    /// clock is layered on it when `clock.start_at` is set.
    ///
    /// # Errors
    /// When an upstream client cannot be built.
    pub fn new(config: Config, base: SharedClock) -> Result<Self, Error> {
        Self::with_env(config, base, Arc::new(config::process_env))
    }

    /// [`Shim::new`] with an injected environment (used again by reloads). With
    /// `[listen] tls`, also loads the TLS certificates, creating the local CA on first use.
    ///
    /// # Errors
    /// When an upstream client or the TLS listener's certificates cannot be set up.
    pub fn with_env(config: Config, base: SharedClock, env: Arc<EnvLookup>) -> Result<Self, Error> {
        let clock = clock::configured(base.clone(), &config.clock);
        let tls = match config.listen.tls {
            Some(_) => Some(Arc::new(tls::Frontend::new(&config.tls, base.clone())?)),
            None => None,
        };
        let shared = Shared::new(config, clock, base, env)?;
        Ok(Self {
            shared: Arc::new(shared),
            tls,
        })
    }

    /// The TLS side, when `[listen] tls` is set (for tests and the `ca` commands).
    #[must_use]
    pub fn tls(&self) -> Option<Arc<tls::Frontend>> {
        self.tls.clone()
    }

    /// The shared state (for signal handlers and tests).
    #[must_use]
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The admin API as a `Service`: the one [`Shim::run`] serves on the admin listener, to
    /// call without a socket (tests, embedding).
    #[must_use]
    pub fn admin(&self) -> admin::Admin {
        admin::Admin::new(self.shared.clone())
    }

    /// Serves until `shutdown` resolves, then stops accepting and drains every listener
    /// within `server.shutdown_grace`. The proxy listeners (each with its TLS listener, if
    /// any) are served by one worker thread each; the admin listener, the config watch, the
    /// recompile timer and the renewal of TLS certificates run on the caller's runtime.
    /// Watches the config file when `server.watch_config`.
    ///
    /// # Errors
    /// When a worker thread cannot be started, or the TLS listeners do not fit.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let admin = self.admin();
        let shared = self.shared;
        let config = shared.current().snapshot.config.clone();
        let options = ServeOptions {
            header_read_timeout: config.server.header_read_timeout,
            keepalive_timeout: config.server.keepalive_timeout,
            grace: config.server.shutdown_grace,
            max_header_bytes: config.server.max_header_bytes,
            max_upstream_per_client: config.server.max_upstream_per_client,
        };
        let tls = match (&self.tls, listeners.tls.len()) {
            (_, 0) => None,
            (Some(frontend), n) if n == listeners.proxy.len() => {
                Some((listeners.tls, frontend.acceptor()))
            }
            (Some(_), n) => return Err(Error::TlsListeners(n, listeners.proxy.len(), "set")),
            (None, n) => return Err(Error::TlsListeners(n, listeners.proxy.len(), "not set")),
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        // The client connections all workers may hold at once: a connection holds a permit.
        let max_connections = config.server.max_connections.min(Semaphore::MAX_PERMITS);
        let limit = Arc::new(Semaphore::new(max_connections));
        let workers =
            runtime::Workers::spawn(&shared, listeners.proxy, tls, &limit, &stop_rx, options)
                .map_err(Error::Worker)?;
        let renewal = self.tls.as_ref().and_then(tls::Frontend::spawn_renewal);
        let _watcher = if config.server.watch_config {
            state::reload::watch_config(shared.clone())
        } else {
            None
        };
        let recompile = state::reload::spawn_recompile(shared.clone());
        let admin = listeners.admin.map(|listener| {
            let mut stop = stop_rx.clone();
            let stopped = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            tokio::spawn(server::serve(listener, admin, stopped, options))
        });
        shutdown.await;
        tracing::info!("Shutting down: no new connections; finishing in-flight requests.");
        let _ = stop_tx.send(true);
        workers.join().await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        recompile.abort();
        // What the last requests recorded reaches the journal's store before the process ends.
        let journal = shared.journal.clone();
        let _ = tokio::task::spawn_blocking(move || journal.flush(JOURNAL_FLUSH)).await;
        if let Some(renewal) = renewal {
            renewal.abort();
        }
        Ok(())
    }
}
