//! `run`: bind the listeners (one proxy socket per worker), then serve until SIGTERM/SIGINT.

use std::sync::Arc;

use anyhow::Context as _;

use webcollect_shim::clock::SystemClock;
use webcollect_shim::config::Config;
use webcollect_shim::{Listeners, Shim, runtime, signal};

/// Serves `config` until a shutdown signal, then drains within `server.shutdown_grace`.
pub(crate) fn run(config: Config) -> anyhow::Result<()> {
    super::init_tracing(config.log_format);
    let workers = config
        .server
        .worker_threads
        .unwrap_or_else(runtime::default_workers);
    super::control_runtime()?.block_on(async move {
        let proxy_addr = config.listen.proxy;
        let proxy = runtime::bind_proxy(proxy_addr, workers)
            .with_context(|| format!("cannot listen on {proxy_addr}"))?;
        let admin_addr = config.listen.admin;
        let admin = tokio::net::TcpListener::bind(admin_addr)
            .await
            .with_context(|| format!("cannot listen on {admin_addr}"))?;
        let proxy_addr = proxy[0].local_addr()?;
        let shim = Shim::new(config, Arc::new(SystemClock))?;
        // Before the line tests and operators wait for: a signal from then on is handled.
        let stop = signal::shutdown();
        signal::reload_on_hangup(shim.shared());
        tracing::info!(
            proxy = %proxy_addr,
            admin = %admin.local_addr()?,
            workers,
            "Serving merchant traffic."
        );
        let listeners = Listeners {
            proxy,
            admin: Some(admin),
        };
        shim.run(listeners, stop).await?;
        tracing::info!("Stopped.");
        Ok(())
    })
}
