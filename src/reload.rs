//! Reload triggers besides `POST /reload` and SIGHUP ([`crate::signal`]): a debounced watch
//! on the config file, and the periodic recompile that keeps recurring windows expanded
//! ahead of the clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::state::Shared;

/// File events are coalesced until the file has been quiet this long: editors write a file
/// in several steps (truncate, write, rename), and reading it halfway would log a bogus error.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// How often the recompile check runs.
const RECOMPILE_EVERY: Duration = Duration::from_secs(30);

/// Watches the config file and reloads after each burst of changes. Returns the watcher,
/// which must be kept alive, or `None` when watching is unavailable (logged).
pub fn watch_config(shared: Arc<Shared>) -> Option<notify::RecommendedWatcher> {
    let path = shared.config_path().to_path_buf();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let name = path.file_name()?.to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event.paths.iter().any(|p| p.file_name() == Some(&name))
            && !event.kind.is_access()
        {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(err) => {
            tracing::warn!(error = %err, "Cannot watch the config file; reload with SIGHUP or POST /reload.");
            return None;
        }
    };
    // The directory, not the file: editors and ConfigMaps replace the file by renaming.
    if let Err(err) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(error = %err, dir = %dir.display(), "Cannot watch the config directory; reload with SIGHUP or POST /reload.");
        return None;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until no event arrived for DEBOUNCE.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            let shared = shared.clone();
            let _ = tokio::task::spawn_blocking(move || shared.reload()).await;
        }
    });
    Some(watcher)
}

/// Periodically re-expands recurring windows and refreshes the state gauges.
pub fn spawn_recompile(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECOMPILE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            shared.recompile_if_needed();
        }
    })
}
