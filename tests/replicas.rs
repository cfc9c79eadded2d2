//! What lets replicas agree: the anchored drill clock, open drills persisted in
//! `[admin] state_dir`, and the config's sha256 in `/status`.

use std::path::Path;

use chrono::TimeDelta;
use serde_json::Value;

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";

async fn status(shim: &TestShim) -> Value {
    serde_json::from_slice(&admin_read(shim, "/status").await.body).unwrap()
}

async fn is_maintained(shim: &TestShim) -> bool {
    raw(shim.addr, &post("/api/creditToken", "a=1"))
        .await
        .header("x-webcollect-shim")
        == Some("maintenance")
}

fn with_state_dir(upstream: &str, dir: &Path) -> String {
    format!(
        "[admin]\nstate_dir = \"{}\"\n{}",
        dir.display(),
        config(upstream)
    )
}

#[tokio::test]
async fn an_anchored_drill_clock_reads_the_same_time_whenever_it_starts() {
    let upstream = Upstream::fixed(OK_XML).await;
    // The drill clock read 01:59 JST at the real instant 11:59 UTC, one minute ago.
    let toml = format!(
        "[clock]\nstart_at = \"2020-04-20T01:59:00+09:00\"\nanchor = \"2026-11-27T11:59:00Z\"\n{}",
        config(&upstream.url())
    );
    let first = TestShim::start(&toml, t("2026-11-27T12:00:00Z")).await;
    // Started 90 real seconds later; both read the same drill time.
    let second = TestShim::start(&toml, t("2026-11-27T12:01:30Z")).await;
    first.clock.advance(TimeDelta::seconds(90));
    for shim in [&first, &second] {
        let status = status(shim).await;
        assert_eq!(status["now"], "2020-04-20T02:01:30.000+09:00");
        assert_eq!(
            status["drill_clock"]["anchor"],
            "2026-11-27T20:59:00.000+09:00"
        );
        assert_eq!(
            status["config"]["sha256"],
            webcollect_shim::config::digest(toml.as_bytes())
        );
        assert!(is_maintained(shim).await, "02:01:30 is inside the window");
    }
}

#[tokio::test]
async fn a_reload_that_moves_the_anchor_is_refused() {
    let upstream = Upstream::fixed(OK_XML).await;
    let path = fresh_dir("anchor-reload").join("shim.toml");
    let clock =
        "[clock]\nstart_at = \"2020-04-20T01:59:00+09:00\"\nanchor = \"2026-11-27T11:59:00Z\"\n";
    std::fs::write(&path, format!("{clock}{}", config(&upstream.url()))).unwrap();
    let shim = TestShim::start_file(&path, t("2026-11-27T12:00:00Z")).await;
    std::fs::write(
        &path,
        format!(
            "{}{}",
            clock.replace("11:59:00Z", "11:58:00Z"),
            config(&upstream.url())
        ),
    )
    .unwrap();
    let res = admin(&shim, "POST", "/reload", "").await;
    assert_eq!(res.status, 422);
    assert!(
        res.text()
            .contains("the drill clock ([clock] start_at/speed/anchor) changed"),
        "{}",
        res.text()
    );
    assert_eq!(status(&shim).await["now"], "2020-04-20T02:00:00.000+09:00");
}

#[tokio::test]
async fn open_drills_survive_a_restart_until_they_end() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("state-restart").join("state");
    let toml = with_state_dir(&upstream.url(), &dir);
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let opened = admin(
        &shim,
        "POST",
        "/drills",
        r#"{"services": ["webcollect.api"], "duration": "30m", "title": "QA"}"#,
    )
    .await;
    assert_eq!(opened.status, 201, "{}", opened.text());
    assert_eq!(status(&shim).await["state_dir"], dir.display().to_string());
    shim.stop().await;
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.join("drills.json")).unwrap()).unwrap();
    assert_eq!(stored["drills"][0]["id"], "drill-1");
    assert_eq!(stored["drills"][0]["end"], "2020-04-19T16:30:00Z");

    // Restarted 15 minutes later: the drill is back, with its end unchanged.
    let shim = TestShim::start(&toml, t("2020-04-20T01:15:00+09:00")).await;
    let drills = status(&shim).await["drills"].clone();
    assert_eq!(drills[0]["id"], "drill-1");
    assert_eq!(drills[0]["title"], "QA");
    assert_eq!(drills[0]["end"], "2020-04-19T16:30:00.000Z");
    assert!(is_maintained(&shim).await);
    // Generated ids go on after the restored ones.
    let next = admin(
        &shim,
        "POST",
        "/drills",
        r#"{"services": ["webcollect.api"], "duration": "1m"}"#,
    )
    .await;
    assert!(
        next.text().contains("\"id\": \"drill-2\""),
        "{}",
        next.text()
    );
    shim.stop().await;

    // Restarted when it ends: gone (windows are half-open).
    let shim = TestShim::start(&toml, t("2020-04-20T01:30:00+09:00")).await;
    assert_eq!(status(&shim).await["drills"], Value::Array(vec![]));
    assert!(!is_maintained(&shim).await);
}

#[tokio::test]
async fn a_closed_drill_stays_closed_after_a_restart() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("state-close");
    let toml = with_state_dir(&upstream.url(), &dir);
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let body = r#"{"id": "qa", "services": ["webcollect.api"], "duration": "1h"}"#;
    assert_eq!(admin(&shim, "POST", "/drills", body).await.status, 201);
    assert_eq!(admin(&shim, "DELETE", "/drills/qa", "").await.status, 204);
    shim.stop().await;
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    assert_eq!(status(&shim).await["drills"], Value::Array(vec![]));
    assert!(!is_maintained(&shim).await);
}

#[tokio::test]
async fn a_corrupt_drills_file_is_set_aside_and_the_shim_starts() {
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = fresh_dir("state-corrupt");
    std::fs::write(dir.join("drills.json"), "{\"format\": 1, \"drills\": [{").unwrap();
    let shim = TestShim::start(&with_state_dir(&upstream.url(), &dir), t(BEFORE)).await;
    assert_eq!(status(&shim).await["drills"], Value::Array(vec![]));
    assert!(!dir.join("drills.json").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("drills.json.corrupt")).unwrap(),
        "{\"format\": 1, \"drills\": [{"
    );
    // And it persists again from then on.
    let body = r#"{"id": "qa", "services": ["webcollect.api"], "duration": "1h"}"#;
    assert_eq!(admin(&shim, "POST", "/drills", body).await.status, 201);
    assert!(dir.join("drills.json").exists());
}

/// The fleet CLI against one replica: the token comes from the variable `--token-env`
/// names, and a refusal says which variable was missing (never the token itself).
#[tokio::test]
async fn the_fleet_cli_reads_the_token_from_the_named_variable() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = format!(
        "[admin]\ntoken_env = \"WEBCOLLECT_SHIM_ADMIN_TOKEN\"\n{}",
        config(&upstream.url())
    );
    let shim = TestShim::start(&toml, t(BEFORE)).await;
    let admin = format!("http://{}", shim.admin);
    let run = |token: Option<&'static str>| {
        let admin = admin.clone();
        // The CLI blocks; the shim serves on this test's runtime meanwhile.
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_webcollect-shim"));
            cmd.args([
                "drills",
                "open",
                "--admin",
                &admin,
                "--token-env",
                "QA_SHIM_TOKEN",
                "--id",
                "qa",
                "--service",
                "webcollect.api",
                "--duration",
                "5m",
            ])
            .env_remove("QA_SHIM_TOKEN")
            .env_remove("WEBCOLLECT_SHIM_ADMIN_TOKEN");
            if let Some(token) = token {
                cmd.env("QA_SHIM_TOKEN", token);
            }
            cmd.output().unwrap()
        })
    };
    let refused = run(None).await.unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let text = String::from_utf8(refused.stdout).unwrap();
    assert_eq!(
        text,
        format!(
            "{}  FAILED: HTTP 401 Unauthorized: a valid Authorization: Bearer token is required (no token sent: $QA_SHIM_TOKEN is not set)\n",
            shim.admin
        )
    );
    assert!(!is_maintained(&shim).await);

    let opened = run(Some(ADMIN_TOKEN)).await.unwrap();
    let text = String::from_utf8(opened.stdout).unwrap();
    assert!(opened.status.success(), "{text}");
    assert!(
        text.starts_with(&format!(
            "{}  opened qa until 2020-04-19T16:05:00.000Z  config v1 sha256:{}  now 2020-04-20T01:00:00.000+09:00  active: qa",
            shim.admin,
            &webcollect_shim::config::digest(toml.as_bytes())[..12]
        )),
        "{text}"
    );
    assert!(!text.contains(ADMIN_TOKEN));
    assert!(is_maintained(&shim).await);
}
