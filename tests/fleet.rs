//! A fleet of real shim processes on one ConfigMap-style directory, each with its own state
//! directory: a `..data` swap reaches all of them, an anchored drill clock agrees across
//! starts seconds apart, `drills open` reaches every replica, a restarted replica comes back
//! with the drill and the drill time, and a replica that is down is named. Also: a corrupt
//! state file is logged and set aside.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use serde_json::Value;
use webcollect_shim::clock::{Clock as _, SystemClock};

use crate::support::*;

/// Drill time read at the anchor.
const START_AT: &str = "2020-04-20T01:00:00+09:00";

struct Replica {
    process: ShimProcess,
    proxy: SocketAddr,
    admin: SocketAddr,
}

fn start(config: &Path, state: &Path) -> Replica {
    let (process, proxy, admin) = ShimProcess::start_with_env(
        config,
        false,
        &[
            ("WEBCOLLECT_SHIM_ADMIN_TOKEN", ADMIN_TOKEN),
            ("WEBCOLLECT_SHIM_STATE_DIR", state.to_str().unwrap()),
        ],
    );
    Replica {
        process,
        proxy,
        admin,
    }
}

/// The fleet CLI, with the token in the environment as an operator would have it.
fn cli(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
        .args(args)
        .env("WEBCOLLECT_SHIM_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("WEBCOLLECT_SHIM_CONFIG")
        .output()
        .unwrap()
}

fn admin_args(command: &[&str], replicas: &[SocketAddr]) -> Vec<String> {
    let mut args: Vec<String> = command.iter().map(ToString::to_string).collect();
    for admin in replicas {
        args.push("--admin".into());
        args.push(format!("http://{admin}"));
    }
    args
}

async fn status(admin: SocketAddr) -> Value {
    let res = raw(admin, &admin_get("/status")).await;
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("{e}: {}", res.text()))
}

/// Drill now minus real now, in milliseconds, as one replica reports them.
fn offset_ms(status: &Value) -> i64 {
    let at = |key: &str| DateTime::parse_from_rfc3339(status[key].as_str().unwrap()).unwrap();
    (at("now") - at("real_now")).num_milliseconds()
}

async fn in_maintenance(proxy: SocketAddr, path: &str) -> bool {
    raw(proxy, &post(path, "a=1"))
        .await
        .header("x-webcollect-shim")
        == Some("maintenance")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn three_replicas_share_a_configmap_a_clock_and_drills() {
    let root = fresh_dir("fleet");
    // Drill time START_AT at the real instant the test starts, at real speed: the notice's
    // window (02:00) is an hour away for the whole test.
    let anchor = SystemClock.now();
    let expected_offset =
        (DateTime::parse_from_rfc3339(START_AT).unwrap().to_utc() - anchor).num_milliseconds();
    let base = format!(
        "[admin]\ntoken_env = \"WEBCOLLECT_SHIM_ADMIN_TOKEN\"\n[clock]\nstart_at = \"{START_AT}\"\nanchor = \"{}\"\n{}",
        anchor.to_rfc3339_opts(SecondsFormat::Millis, true),
        config("http://127.0.0.1:9").replace("watch_config = false", "watch_config = true"),
    );
    let mut cm = ConfigMapDir::new(&root.join("configmap"), "webcollect-shim.toml", &base);
    let states: Vec<PathBuf> = (0..3).map(|i| root.join(format!("state-{i}"))).collect();

    // --- Started seconds apart, one anchor: the same drill time. ---------------------------
    let mut replicas = Vec::new();
    for state in &states {
        if !replicas.is_empty() {
            // The gap is the condition under test (an unanchored clock would be off by it),
            // not a wait for something.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        replicas.push(start(&cm.path(), state));
    }
    for r in &replicas {
        let s = status(r.admin).await;
        let off = offset_ms(&s);
        eprintln!(
            "{}: drill now - real now = {off} ms (expected {expected_offset} ms)",
            r.admin
        );
        assert!(
            (off - expected_offset).abs() <= 100,
            "{}: drill now - real now = {off} ms, expected {expected_offset} ms (±100)",
            r.admin
        );
        assert_eq!(
            s["config"]["sha256"],
            webcollect_shim::config::digest(base.as_bytes())
        );
    }

    // --- A kubelet `..data` swap that adds a window: all three within debounce + 1 s. ------
    // (Each replica answered /status above, so each one's watch is installed.)
    let with_window = format!(
        "{base}\n[[windows]]\nid = \"fleet-window\"\nstart = \"2020-04-20 00:30\"\nend = \"2020-04-20 01:30\"\nservices = [\"webcollect.link\"]\n"
    );
    let swapped = Instant::now();
    cm.update(&with_window);
    // When each replica first answered from the new config (one after the other, so a
    // later one's time is an upper bound).
    let mut took = Vec::new();
    for r in &replicas {
        eventually(
            Duration::from_secs(10),
            "maintenance after the swap",
            || async { in_maintenance(r.proxy, "/webcollect/settleSelectAction.gw").await },
        )
        .await;
        took.push(swapped.elapsed());
    }
    let limit = webcollect_shim::state::reload::DEBOUNCE + Duration::from_secs(1);
    eprintln!("..data swap to maintenance, per replica: {took:?}");
    for (r, took) in replicas.iter().zip(took) {
        assert!(took <= limit, "{} took {took:?} (limit {limit:?})", r.admin);
    }

    // --- `drills open` with three --admin URLs: the drill is open on all three. ------------
    let admins: Vec<SocketAddr> = replicas.iter().map(|r| r.admin).collect();
    let out = cli(&admin_args(
        &[
            "drills",
            "open",
            "--id",
            "fleet-drill",
            "--service",
            "webcollect.api",
            "--duration",
            "1h",
            "--title",
            "fleet drill",
        ],
        &admins,
    ));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, admin) in lines.iter().zip(&admins) {
        assert!(
            line.starts_with(&format!("{admin}  opened fleet-drill until ")),
            "{line}"
        );
        assert!(line.contains("active: fleet-window, fleet-drill"), "{line}");
    }
    for (r, state) in replicas.iter().zip(&states) {
        assert!(in_maintenance(r.proxy, "/api/creditToken").await);
        let stored = std::fs::read_to_string(state.join("drills.json")).unwrap();
        assert!(stored.contains("\"id\": \"fleet-drill\""), "{stored}");
    }
    let listed = cli(&admin_args(&["drills", "list"], &admins));
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(
        stdout(&listed)
            .lines()
            .filter(|l| l.contains("drills: fleet-drill until ") && l.ends_with("[webcollect.api]"))
            .count(),
        3,
        "{}",
        stdout(&listed)
    );

    // --- A restarted replica: back with the drill and the same drill time. -----------------
    let before = status(replicas[1].admin).await;
    let old = replicas.remove(1);
    old.process.stop();
    let restarted = start(&cm.path(), &states[1]);
    let s = status(restarted.admin).await;
    assert_eq!(s["drills"][0]["id"], "fleet-drill");
    // Each replica opened it at its own now, so ends differ by the CLI's request skew: the
    // restarted one keeps its own.
    assert_eq!(s["drills"][0]["end"], before["drills"][0]["end"]);
    let reference = status(replicas[0].admin).await;
    assert!(
        (offset_ms(&s) - offset_ms(&reference)).abs() <= 100,
        "restarted: {} ms, others: {} ms",
        offset_ms(&s),
        offset_ms(&reference)
    );
    assert!(in_maintenance(restarted.proxy, "/api/creditToken").await);
    replicas.insert(1, restarted);

    // --- One replica down: the CLI names it and exits non-zero. ---------------------------
    let admins: Vec<SocketAddr> = replicas.iter().map(|r| r.admin).collect();
    let down = replicas.pop().unwrap();
    down.process.stop();
    let out = cli(&admin_args(&["status"], &admins));
    assert!(!out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    let dead = admins[2].to_string();
    for admin in &admins[..2] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&admin.to_string()))
            .unwrap_or_else(|| panic!("no line for {admin}: {text}"));
        assert!(
            line.contains(" sha256:") && !line.contains("FAILED"),
            "{line}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{dead}  FAILED: "))),
        "{text}"
    );
    assert!(
        stderr(&out).contains(&format!("1 of 3 replica(s) failed: {dead}")),
        "{}",
        stderr(&out)
    );

    // The drill is closed on the two that are up.
    let out = cli(&admin_args(
        &["drills", "close", "fleet-drill"],
        &admins[..2],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    for r in &replicas {
        assert!(!in_maintenance(r.proxy, "/api/creditToken").await);
    }
    for r in replicas {
        r.process.stop();
    }
}

#[tokio::test]
async fn a_corrupt_state_file_is_logged_and_set_aside_and_the_shim_serves() {
    let root = fresh_dir("fleet-corrupt");
    let path = root.join("shim.toml");
    std::fs::write(&path, config("http://127.0.0.1:9")).unwrap();
    let state = root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("drills.json"), "{\"format\": 1, \"drills\": [{").unwrap();
    let (process, _, admin) = ShimProcess::start_with_env(
        &path,
        false,
        &[("WEBCOLLECT_SHIM_STATE_DIR", state.to_str().unwrap())],
    );
    assert_eq!(status(admin).await["drills"], serde_json::json!([]));
    let lines = process.kill();
    let line = lines
        .iter()
        .find(|l| l.contains("Drills file is invalid; starting without its drills."))
        .unwrap_or_else(|| panic!("not logged:\n{}", lines.join("\n")));
    assert!(line.contains(" ERROR "), "{line}");
    assert!(
        line.contains("not a drills file: EOF while parsing"),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "set_aside={}",
            state.join("drills.json.corrupt").display()
        )),
        "{line}"
    );
    assert!(state.join("drills.json.corrupt").exists());
}
