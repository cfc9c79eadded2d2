//! `run`: bind the listeners (one proxy socket, and one TLS socket when configured, per
//! worker), then serve until SIGTERM/SIGINT.

use std::sync::Arc;

use anyhow::Context as _;

use webcollect_shim::clock::SystemClock;
use webcollect_shim::config::Config;
use webcollect_shim::runtime::{self, signal};
use webcollect_shim::{Listeners, Shim};

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
        let tls = match config.listen.tls {
            Some(addr) => runtime::bind_proxy(addr, workers)
                .with_context(|| format!("cannot listen on {addr}"))?,
            None => Vec::new(),
        };
        let proxy_addr = proxy[0].local_addr()?;
        let tls_addr = tls
            .first()
            .map(std::net::TcpListener::local_addr)
            .transpose()?;
        warn_if_few_descriptors(&config);
        let shim = Shim::new(config, Arc::new(SystemClock))?;
        // Before the line tests and operators wait for: a signal from then on is handled.
        let stop = signal::shutdown();
        signal::reload_on_hangup(shim.shared());
        tracing::info!(
            proxy = %proxy_addr,
            tls = %tls_addr.map_or_else(|| "-".to_string(), |a| a.to_string()),
            admin = %admin.local_addr()?,
            workers,
            via = %shim.shared().via.pseudonym(),
            "Serving merchant traffic."
        );
        let listeners = Listeners {
            proxy,
            tls,
            admin: Some(admin),
        };
        shim.run(listeners, stop).await?;
        tracing::info!("Stopped.");
        Ok(())
    })
}

/// Past the open-file limit, accepts and upstream connects fail (EMFILE) before
/// `max_connections` can queue anyone: say so at start, when it can still be fixed.
fn warn_if_few_descriptors(config: &Config) {
    let upstreams: usize = config.upstreams.iter().map(|u| u.max_connections).sum();
    let needed = (config.server.max_connections + upstreams + 64) as u64;
    if let Some(limit) = runtime::open_file_limit()
        && limit < needed
    {
        tracing::warn!(
            open_file_limit = limit,
            needed,
            "The open-file limit is below server.max_connections plus the upstreams' max_connections; raise it (ulimit -n, LimitNOFILE=) or lower those."
        );
    }
}
