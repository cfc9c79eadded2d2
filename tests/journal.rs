//! Drill evidence end to end: a scripted merchant through the shim against the stand-in
//! gateway, the journal's records and the report (admin API and `webcollect-shim report`),
//! restarts from SQLite, two replicas merged, secrets kept out, and a load in a window.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::gateway::StandIn;
use crate::support::{
    RawResponse, TestShim, admin, admin_read, config, fresh_dir, json, raw, t, with_token,
};

/// The window of [`config`]: 2020-04-20 02:00–06:00 JST, on `webcollect`.
const WINDOW: &str = "2020-04-20";

/// An A08 (token authorisation) for `order_no`, with a token used once (the console's report
/// panel test sends it too).
pub(crate) fn a08(order_no: &str, token: &str, extra_headers: &str) -> Vec<u8> {
    let body = format!(
        "function_div=A08&trader_code=888888709&device_div=2&order_no={order_no}&settle_price=1500&buyer_name_kanji=%E5%B1%B1%E7%94%B0&pay_way=1&token={token}"
    );
    format!(
        "POST /api/creditToken HTTP/1.1\r\nHost: shim.test\r\n{extra_headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `config` (pointed at `upstream`) with `[admin] state_dir` and a bearer token.
fn journalled(upstream: &str, state_dir: Option<&std::path::Path>) -> String {
    let mut text = with_token(&config(upstream));
    if let Some(dir) = state_dir {
        text = text.replacen(
            "[admin]\n",
            &format!("[admin]\nstate_dir = {:?}\n", dir.display().to_string()),
            1,
        );
    }
    text
}

/// Plays the merchant of the issue: order R three times during the window and once after,
/// S once during it, T during it with the drill header `pass`.
async fn rehearse(shim: &TestShim) -> Vec<RawResponse> {
    let mut answers = Vec::new();
    let at = |when: &str| shim.clock.set(t(when));
    for (i, when) in ["02:10", "02:11", "02:12"].iter().enumerate() {
        at(&format!("2020-04-20T{when}:00+09:00"));
        answers.push(raw(shim.addr, &a08("R-1", &format!("tokenR{i}xxxxxxxxx"), "")).await);
    }
    at("2020-04-20T02:20:00+09:00");
    answers.push(raw(shim.addr, &a08("S-1", "tokenSxxxxxxxxxx", "")).await);
    at("2020-04-20T02:30:00+09:00");
    answers.push(
        raw(
            shim.addr,
            &a08(
                "T-1",
                "tokenTxxxxxxxxxx",
                "X-Request-Id: leak-T\r\nX-Webcollect-Shim-Drill: pass\r\n",
            ),
        )
        .await,
    );
    at("2020-04-20T06:05:00+09:00");
    answers.push(raw(shim.addr, &a08("R-1", "tokenR9xxxxxxxxx", "")).await);
    // Past the report's horizon (06:00 + 60 min): the report is final.
    at("2020-04-20T07:30:00+09:00");
    answers
}

async fn report(shim: &TestShim, query: &str) -> Value {
    let res = admin_read(shim, &format!("/report?{query}")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    json(&res)
}

fn orders(report: &Value, list: &str) -> Vec<(String, u64, Option<String>)> {
    report["orders"][list]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["order_no"].as_str().unwrap().to_string(),
                o["attempts"].as_u64().unwrap(),
                o["first_success"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn verdict(report: &Value, name: &str) -> bool {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no verdict {name}"))["ok"]
        .as_bool()
        .unwrap()
}

/// Runs the binary's `report` command off the async runtime.
async fn cli_report(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
            .arg("report")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_says_who_recovered_who_was_stranded_and_what_leaked() {
    let gateway = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = TestShim::start(
        &journalled(&gateway.url(), None),
        t("2020-04-20T01:00:00+09:00"),
    )
    .await;
    let answers = rehearse(&shim).await;
    // The rehearsal itself: three maintenance answers, then the stand-in's.
    for res in &answers[..4] {
        assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    }
    assert!(
        answers[4].text().contains("<returnCode>0</returnCode>"),
        "{}",
        answers[4].text()
    );
    assert!(
        answers[5].text().contains("<returnCode>0</returnCode>"),
        "{}",
        answers[5].text()
    );

    let report = report(&shim, &format!("window={WINDOW}")).await;
    assert_eq!(report["subject"]["id"], WINDOW);
    assert_eq!(report["span"]["from"], "2020-04-20T01:45:00+09:00");
    assert_eq!(report["span"]["horizon"], "2020-04-20T07:00:00+09:00");
    assert_eq!(report["requests"]["total"], 6);
    assert_eq!(report["requests"]["by_decision"]["maintenance"], 4);
    assert_eq!(report["requests"]["by_decision"]["drill-pass"], 1);
    assert_eq!(report["requests"]["by_decision"]["pass"], 1);
    assert_eq!(report["requests"]["by_function_div"]["A08"], 6);
    assert_eq!(
        orders(&report, "recovered"),
        [("R-1".into(), 3, Some("2020-04-20T06:05:00+09:00".into()))]
    );
    assert_eq!(orders(&report, "stranded"), [("S-1".into(), 1, None)]);
    assert_eq!(
        orders(&report, "succeeded_in_window"),
        [("T-1".into(), 1, Some("2020-04-20T02:30:00+09:00".into()))]
    );
    assert_eq!(report["orders"]["retried"], 1);
    assert_eq!(report["orders"]["max_attempts"], 3);
    let leaks = report["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(leaks[0]["request_id"], "leak-T");
    assert_eq!(leaks[0]["decision"], "drill-pass");
    assert_eq!(leaks[0]["order_no"], "T-1");
    let recovery = report["recovery"].as_array().unwrap();
    assert_eq!(recovery.len(), 1);
    assert_eq!(recovery[0]["service"], "webcollect.api");
    assert_eq!(recovery[0]["first_success"], "2020-04-20T06:05:00+09:00");
    assert_eq!(recovery[0]["after_end_seconds"], 300.0);
    assert!(!verdict(&report, "stranded"));
    assert!(verdict(&report, "attempts_per_order"));
    assert!(!verdict(&report, "leaks"));
    assert!(verdict(&report, "complete"));
    assert_eq!(report["complete"], true);

    // The CLI says the same, and fails the pipeline.
    let out = cli_report(vec![
        "--admin".into(),
        shim.admin.to_string(),
        "--window".into(),
        WINDOW.into(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "orders", "leaks", "recovery", "verdicts", "requests", "subject",
    ] {
        assert_eq!(merged[key], report[key], "{key}");
    }
    let junit = cli_report(vec![
        "--admin".into(),
        shim.admin.to_string(),
        "--window".into(),
        WINDOW.into(),
        "--format".into(),
        "junit".into(),
    ])
    .await;
    assert_eq!(junit.status.code(), Some(1));
    let junit = String::from_utf8(junit.stdout).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 4, "{junit}");
    assert_eq!(junit.matches("<failure").count(), 2, "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_the_same_after_a_restart() {
    let dir = fresh_dir("journal-restart");
    let gateway = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let text = journalled(&gateway.url(), Some(&dir));
    let shim = TestShim::start(&text, t("2020-04-20T01:00:00+09:00")).await;
    rehearse(&shim).await;
    let before = report(&shim, &format!("window={WINDOW}")).await;
    assert_eq!(before["requests"]["total"], 6);
    shim.stop().await;
    assert!(dir.join("journal.sqlite").is_file());

    let shim = TestShim::start(&text, t("2020-04-20T07:30:00+09:00")).await;
    let after = report(&shim, &format!("window={WINDOW}")).await;
    assert_eq!(after, before);
    shim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_one_drill_are_merged_counting_each_request_once() {
    let gateway = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let text = journalled(&gateway.url(), None);
    let at = t("2026-12-07T10:00:00+09:00");
    let a = TestShim::start(&text, at).await;
    let b = TestShim::start(&text, at).await;
    for shim in [&a, &b] {
        let res = admin(
            shim,
            "POST",
            "/drills",
            r#"{"id": "fleet-drill", "services": ["webcollect.api"], "duration": "10m"}"#,
        )
        .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    for i in 0..10 {
        let shim = if i % 2 == 0 { &a } else { &b };
        let res = raw(shim.addr, &a08(&format!("F-{i}"), "tokenFxxxxxxxxxx", "")).await;
        assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    }
    for shim in [&a, &b] {
        shim.clock.set(at + chrono::TimeDelta::minutes(90));
    }
    let mut args = Vec::new();
    // `a` twice: the same replica named again must not count twice.
    for shim in [&a, &b, &a] {
        args.extend(["--admin".to_string(), shim.admin.to_string()]);
    }
    args.extend(["--drill", "fleet-drill", "--format", "json"].map(String::from));
    let out = cli_report(args).await;
    let merged: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(merged["requests"]["total"], 10, "{merged}");
    assert_eq!(merged["requests"]["by_decision"]["maintenance"], 10);
    assert_eq!(merged["replicas"].as_array().unwrap().len(), 2);
    assert_eq!(merged["orders"]["stranded"].as_array().unwrap().len(), 10);
    assert_eq!(merged["complete"], true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "ten stranded orders fail the verdict"
    );

    // A replica that does not answer makes the report incomplete, and says which.
    let mut args = vec!["--admin".to_string(), a.admin.to_string()];
    args.extend(
        [
            "--admin",
            "127.0.0.1:9",
            "--drill",
            "fleet-drill",
            "--format",
            "json",
        ]
        .map(String::from),
    );
    let out = cli_report(args).await;
    let partial: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(partial["complete"], false);
    assert_eq!(partial["requests"]["total"], 5);
    assert!(
        partial["incomplete"][0]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:9"),
        "{partial}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_journal_or_a_report() {
    let dir = fresh_dir("journal-secrets");
    let gateway = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = TestShim::start(
        &journalled(&gateway.url(), Some(&dir)),
        t("2020-04-20T02:10:00+09:00"),
    )
    .await;
    let secrets = [
        ("token", "SECRETtoken0123456789"),
        ("card_no", "4111111111111111"),
        ("security_code", "7373"),
        ("card_exp", "1299"),
        ("card_owner", "SECRETOWNER"),
        ("authentication_key", "SECRETauthkey"),
        ("check_sum", "SECRETchecksum0f0f"),
        ("buyer_name_kanji", "%E7%A7%98%E5%AF%86%E5%A4%AA%E9%83%8E"),
        ("buyer_name_kana", "SECRETKANA"),
        ("buyer_tel", "0399998888"),
        ("buyer_email", "secret-buyer%40example.jp"),
        ("member_id", "SECRETmember"),
    ];
    let form: Vec<String> = secrets.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let body = format!(
        "function_div=A01&trader_code=888888709&order_no=SEC-1&{}",
        form.join("&")
    );
    let request = |path: &str| {
        format!(
            "POST {path}?token=SECRETquery HTTP/1.1\r\nHost: shim.test\r\nCookie: sid=SECRETcookie\r\nAuthorization: Bearer SECRETbearer\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // In the window (answered by the shim) and, with the drill header, forwarded.
    raw(shim.addr, &request("/api/credit")).await;
    let mut forwarded = request("/api/credit");
    let at = forwarded.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    forwarded.splice(
        at + 2..at + 2,
        b"X-Webcollect-Shim-Drill: pass\r\n".iter().copied(),
    );
    raw(shim.addr, &forwarded).await;
    shim.clock.set(t("2020-04-20T07:30:00+09:00"));
    let report = report(&shim, &format!("window={WINDOW}&records=1")).await;
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{report}");
    assert!(
        records
            .iter()
            .all(|r| r["order_no"] == "SEC-1" && r["function_div"] == "A01")
    );
    shim.stop().await;

    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("journal.sqlite")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!stored.is_empty());
    let report_text = report.to_string();
    let mut values: Vec<String> = secrets
        .iter()
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
        .collect();
    values.extend(["SECRETquery", "SECRETcookie", "SECRETbearer"].map(String::from));
    for value in values {
        assert!(!report_text.contains(&value), "report holds {value}");
        assert!(
            !stored.windows(value.len()).any(|w| w == value.as_bytes()),
            "the journal file holds {value}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_the_answer_is_recorded_as_499() {
    // An upstream that never answers in time.
    let upstream = crate::support::Upstream::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        http::Response::new(crate::support::full("late"))
    })
    .await;
    let shim = TestShim::start(
        &journalled(&upstream.url(), None),
        t("2020-04-20T06:10:00+09:00"),
    )
    .await;
    let mut conn = crate::support::RawConn::connect(shim.addr).await;
    conn.send(&a08("GONE-1", "tokenGxxxxxxxxxx", "")).await;
    crate::support::eventually(Duration::from_secs(5), "the upstream saw it", || async {
        !upstream.seen().is_empty()
    })
    .await;
    drop(conn);
    shim.clock.set(t("2020-04-20T07:30:00+09:00"));
    let mut record = Value::Null;
    for _ in 0..250 {
        let report = report(&shim, &format!("window={WINDOW}&records=1")).await;
        record = report["records"][0].clone();
        if !record.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record["status"], 499, "{record}");
    assert_eq!(record["error"], "client-gone");
    assert_eq!(record["order_no"], "GONE-1");
    assert_eq!(record["reached"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_in_a_window_are_all_journalled_or_counted() {
    let gateway = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = TestShim::start(
        &journalled(&gateway.url(), None),
        t("2020-04-20T02:30:00+09:00"),
    )
    .await;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(crate::support::executor()).build_http();
    let url = shim.url("/api/creditToken");
    let mut tasks = Vec::new();
    for worker in 0..32 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for n in (worker..10_000).step_by(32) {
                let body = format!("function_div=A08&trader_code=888888709&order_no=L-{n}");
                let req = http::Request::post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap();
                let res = client.request(req).await.unwrap();
                assert_eq!(res.status(), 200);
                http_body_util::BodyExt::collect(res.into_body())
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    shim.clock.set(t("2020-04-20T07:30:00+09:00"));
    let report = report(&shim, &format!("window={WINDOW}")).await;
    let total = report["requests"]["total"].as_u64().unwrap();
    let metrics = admin(&shim, "GET", "/metrics", "").await.text();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("webcollect_shim_journal_dropped_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        total + dropped,
        10_000,
        "{total} recorded, {dropped} dropped"
    );
    assert_eq!(report["complete"], dropped == 0);
    assert_eq!(report["orders"]["distinct"].as_u64().unwrap(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_journal_is_set_aside_and_recording_goes_on() {
    let dir = fresh_dir("journal-corrupt");
    std::fs::write(dir.join("journal.sqlite"), vec![0x5a; 8192]).unwrap();
    let gateway = StandIn::start("2020-04-20T01:00:00+09:00").await;
    let shim = TestShim::start(
        &journalled(&gateway.url(), Some(&dir)),
        t("2020-04-20T02:10:00+09:00"),
    )
    .await;
    let res = raw(shim.addr, &a08("C-1", "tokenCxxxxxxxxxx", "")).await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    shim.clock.set(t("2020-04-20T07:30:00+09:00"));
    let report = report(&shim, &format!("window={WINDOW}")).await;
    assert_eq!(report["requests"]["total"], 1);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("journal.sqlite.corrupt-")),
        "{names:?}"
    );
    assert_eq!(
        std::fs::read(
            dir.join(
                names
                    .iter()
                    .find(|n| n.starts_with("journal.sqlite.corrupt-"))
                    .unwrap()
            )
        )
        .unwrap(),
        vec![0x5a; 8192],
        "the corrupt file is kept as it was, for a post-mortem"
    );
    shim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frequent_recurring_window_reports_its_latest_occurrence() {
    // Every minute for 30 s, for years: far more occurrences than one expansion holds.
    let text = format!(
        "{}\n[[windows]]\nid = \"minutely\"\ncron = \"* * * * *\"\nduration = \"30s\"\nfrom = \"2018-01-01 00:00\"\nservices = [\"webcollect.api\"]\n",
        journalled("http://127.0.0.1:9", None)
    );
    let shim = TestShim::start(&text, t("2020-04-20T07:30:10+09:00")).await;
    let latest = report(&shim, "window=minutely").await;
    assert_eq!(latest["subject"]["start"], "2020-04-20T07:30:00+09:00");
    assert_eq!(latest["subject"]["end"], "2020-04-20T07:30:30+09:00");
    // And an earlier one by `at`.
    let earlier = report(&shim, "window=minutely&at=2020-04-20T07:00:45%2B09:00").await;
    assert_eq!(earlier["subject"]["start"], "2020-04-20T07:00:00+09:00");
}
