//! OS signals: SIGTERM/SIGINT become the shutdown future, SIGHUP a reload.

use std::sync::Arc;

use crate::state::Shared;

/// A future that resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives in between is not
/// lost to the default action (which would kill the process without a drain).
///
/// Call it inside the runtime.
pub fn shutdown() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    if term.is_err() || int.is_err() {
        tracing::warn!("Cannot install the SIGTERM/SIGINT handlers; stop the shim with SIGKILL.");
    }
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(term) => {},
            () = wait(int) => {},
        }
    }
}

/// Reloads on every SIGHUP, for as long as the process runs.
/// Installed when called (see [`shutdown`]).
pub fn reload_on_hangup(shared: Arc<Shared>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("Cannot install the SIGHUP handler.");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received; reloading.");
            let shared = shared.clone();
            let _ = tokio::task::spawn_blocking(move || shared.reload()).await;
        }
    });
}
