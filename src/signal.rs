//! OS signals: SIGTERM/SIGINT become the shutdown future, SIGHUP a reload.

use std::sync::Arc;

use crate::state::Shared;

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Reloads on every SIGHUP, for as long as the process runs.
pub fn reload_on_hangup(shared: Arc<Shared>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("Cannot install the SIGHUP handler.");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received; reloading.");
            let shared = shared.clone();
            let _ = tokio::task::spawn_blocking(move || shared.reload()).await;
        }
    });
    #[cfg(not(unix))]
    let _ = shared;
}
