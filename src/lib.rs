//! webcollect-shim: a reverse proxy that rehearses クロネコwebコレクト maintenance windows.
//!
//! [`Shim::new`] checks and compiles a [`config::Config`]; [`Shim::run`] serves it on
//! listeners the caller has already bound (so tests can use port 0).

pub mod clock;
pub mod config;
pub mod decide;
pub mod page;
pub mod proxy;
pub mod report;
pub mod response;
pub mod routes;
pub mod schedule;
pub mod server;
pub mod snapshot;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use clock::SharedClock;
use config::Config;
use proxy::{Loaded, Shared};

/// A configured shim, ready to serve.
#[derive(Debug)]
pub struct Shim {
    shared: Arc<Shared>,
}

/// Errors that stop the shim from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An upstream's TLS client could not be built.
    #[error("cannot build TLS client configuration")]
    Tls(#[from] rustls::Error),
}

impl Shim {
    /// Compiles `config`. `base` is the real clock; a drill clock is layered on it when
    /// `clock.start_at` is set.
    ///
    /// # Errors
    /// When an upstream client cannot be built.
    pub fn new(config: Config, base: SharedClock) -> Result<Self, Error> {
        let clock = clock::configured(base, config.clock.start_at, config.clock.speed);
        let speed = config.clock.effective_speed();
        let loaded = Loaded::new(config, 1, clock.now())?;
        Ok(Self {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(loaded),
                clock,
                speed,
            }),
        })
    }

    /// The shim's clock (the drill clock when one is configured).
    #[must_use]
    pub fn clock(&self) -> SharedClock {
        self.shared.clock.clone()
    }

    /// Serves merchant traffic on `proxy` until `shutdown` resolves, then drains.
    pub async fn run(self, proxy: TcpListener, shutdown: impl Future<Output = ()>) {
        let server = self.shared.current.load().snapshot.config.server.clone();
        server::serve(
            proxy,
            self.shared,
            shutdown,
            server.header_read_timeout,
            server.shutdown_grace,
        )
        .await;
    }
}
