//! The config file watch: a Kubernetes ConfigMap update (the kubelet's `..data` symlink
//! swap), a file renamed over the config, an edit in place.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";

/// The debounce plus a generous margin for a loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(10);

fn watched(upstream: &str) -> String {
    config(upstream).replace("watch_config = false", "watch_config = true")
}

/// `watched` plus a window over `2020-04-20 00:00–01:30` JST (before the notice's window).
fn with_early_window(base: &str, id: &str) -> String {
    format!(
        "{base}\n[[windows]]\nid = \"{id}\"\nstart = \"2020-04-20 00:00\"\nend = \"2020-04-20 01:30\"\nservices = [\"webcollect.api\"]\n"
    )
}

async fn version(shim: &TestShim) -> Value {
    let status: Value =
        serde_json::from_slice(&admin_read(shim, "/status").await.body).expect("/status is JSON");
    status["config"]["version"].clone()
}

/// Returns once the config watch is on: the admin listener is served after the watch is
/// installed, so one answer over its socket means it is on (the admin service, called
/// without the socket, could answer before).
async fn watching(shim: &TestShim) {
    assert_eq!(raw(shim.admin, &admin_get("/healthz")).await.status, 200);
}

async fn reaches_version(shim: &TestShim, want: u64) -> Duration {
    eventually(WITHIN, &format!("config version {want}"), || async {
        version(shim).await == want
    })
    .await
}

async fn is_maintained(shim: &TestShim) -> bool {
    raw(shim.addr, &post("/api/creditToken", "a=1"))
        .await
        .header("x-webcollect-shim")
        == Some("maintenance")
}

#[tokio::test]
async fn a_configmap_update_is_reloaded() {
    let upstream = Upstream::fixed(OK_XML).await;
    let base = watched(&upstream.url());
    let mut cm = ConfigMapDir::new(&fresh_dir("configmap"), "webcollect-shim.toml", &base);
    let shim = TestShim::start_file(&cm.path(), t("2020-04-20T01:00:00+09:00")).await;
    watching(&shim).await;
    assert_eq!(version(&shim).await, 1);
    assert!(!is_maintained(&shim).await);

    cm.update(&with_early_window(&base, "early"));
    let took = reaches_version(&shim, 2).await;
    assert!(is_maintained(&shim).await);
    assert!(
        took < webcollect_shim::state::reload::DEBOUNCE + Duration::from_secs(2),
        "picked up after {took:?}"
    );

    // Again, now that the directory the first `..data` pointed at is gone.
    cm.update(&base);
    reaches_version(&shim, 3).await;
    assert!(!is_maintained(&shim).await);
    let status: Value = serde_json::from_slice(&admin_read(&shim, "/status").await.body).unwrap();
    assert_eq!(
        status["config"]["sha256"],
        webcollect_shim::config::digest(base.as_bytes())
    );
}

#[tokio::test]
async fn a_file_renamed_over_the_config_is_reloaded() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("rename");
    let path = dir.join("shim.toml");
    let base = watched(&upstream.url());
    std::fs::write(&path, &base).unwrap();
    let shim = TestShim::start_file(&path, t("2020-04-20T01:00:00+09:00")).await;
    watching(&shim).await;
    assert_eq!(version(&shim).await, 1);

    // What editors and `install` do: write a new file beside it, rename it over the old.
    let temp = dir.join(".shim.toml.swp");
    std::fs::write(&temp, with_early_window(&base, "early")).unwrap();
    std::fs::rename(&temp, &path).unwrap();
    reaches_version(&shim, 2).await;
    assert!(is_maintained(&shim).await);
}

#[tokio::test]
async fn rewriting_the_same_bytes_or_another_file_reloads_nothing() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("same-bytes");
    let path = dir.join("shim.toml");
    let base = watched(&upstream.url());
    std::fs::write(&path, &base).unwrap();
    let shim = TestShim::start_file(&path, t("2020-04-20T01:00:00+09:00")).await;
    watching(&shim).await;
    assert_eq!(version(&shim).await, 1);

    std::fs::write(&path, &base).unwrap();
    std::fs::write(dir.join("notes.txt"), "unrelated").unwrap();
    // What is tested is an absence, so there is no condition to poll: give the watch three
    // debounce periods to (wrongly) reload.
    tokio::time::sleep(webcollect_shim::state::reload::DEBOUNCE * 3).await;
    assert_eq!(version(&shim).await, 1);
    let metrics = admin_read(&shim, "/metrics").await.text();
    assert!(
        !metrics.contains("webcollect_shim_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );

    // A real edit in place still reloads.
    std::fs::write(&path, with_early_window(&base, "early")).unwrap();
    reaches_version(&shim, 2).await;
    assert!(is_maintained(&shim).await);
}
