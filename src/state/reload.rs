//! Reload triggers besides `POST /reload` and SIGHUP ([`crate::runtime::signal`]): a debounced watch
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

/// Watches the config file's directory and reloads after each burst of changes that changed
/// the file's content. Returns the watcher, which must be kept alive, or `None` when watching
/// is unavailable (logged).
///
/// Any change in the directory counts, not only events naming the file: a Kubernetes
/// ConfigMap volume updates `NAME → ..data/NAME` by renaming a new `..data` symlink over the
/// old one, so the file's own name never appears in an event; editors replace the file by
/// renaming too. After the debounce the file is read through its symlinks and reloaded only
/// if its sha256 differs from the running config's, so unrelated files in the directory
/// cost one read and never a reload.
pub(crate) fn watch_config(shared: Arc<Shared>) -> Option<notify::RecommendedWatcher> {
    let path = shared.config_path().to_path_buf();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reads (ours included) are not changes.
        if let Ok(event) = event
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
    if let Err(err) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(error = %err, dir = %dir.display(), "Cannot watch the config directory; reload with SIGHUP or POST /reload.");
        return None;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until no event arrived for DEBOUNCE.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            let shared = shared.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if changed_on_disk(shared.config_path(), &current_digest(&shared)) {
                    let _ = shared.reload();
                }
            })
            .await;
        }
    });
    Some(watcher)
}

fn current_digest(shared: &Shared) -> String {
    shared.current().snapshot.config.digest.clone()
}

/// Whether the file at `path` (symlinks followed) differs from the config whose digest is
/// `running`. An unreadable file counts as changed, so the reload reports why.
fn changed_on_disk(path: &Path, running: &str) -> bool {
    // Capped and never blocking (a FIFO or /dev/zero swapped in must not stall the watcher,
    // finding 9); what cannot be read so counts as changed, and the reload says why.
    crate::safe_file::read_config(path, crate::safe_file::CONFIG_CAP)
        .map_or(true, |bytes| crate::config::digest(&bytes) != running)
}

/// Periodically re-expands recurring windows and refreshes the state gauges.
pub(crate) fn spawn_recompile(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECOMPILE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            shared.recompile_if_needed();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_different_content_counts_as_a_change() {
        let dir =
            std::env::temp_dir().join(format!("webcollect-shim-changed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shim.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let running = crate::config::digest(b"a = 1\n");
        assert!(!changed_on_disk(&path, &running));
        std::fs::write(&path, "a = 2\n").unwrap();
        assert!(changed_on_disk(&path, &running));
        std::fs::remove_file(&path).unwrap();
        assert!(
            changed_on_disk(&path, &running),
            "a missing file must be reported by a reload"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
