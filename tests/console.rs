//! The admin console (`GET /` on the admin listener): its JSON (`/timeline`, `/traffic`),
//! then the page itself in headless Chromium: timeline positions, opening and closing
//! drills, following drills opened elsewhere, reload errors, the report panel, layout, and
//! no request leaving the admin origin.
//!
//! With `CI` set a missing Chromium fails the browser tests; elsewhere they print a
//! `SKIPPED` line. `WEBCOLLECT_SHIM_SCREENSHOTS=<dir>` also writes `console-1280.png`.

use std::time::{Duration, Instant};

use chromiumoxide::layout::Point;
use serde::Deserialize;
use serde_json::Value;

use crate::journal::a08;
use crate::support::browser::*;
use crate::support::gateway::StandIn;
use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";

/// The harness config with the notice's full service list (後払い's credit card,
/// convenience store and クロネコペイ down; auかんたん決済 and 銀行振込 up), a nightly recurring
/// window on the link page, and a route to an upstream that is never there.
fn console_config(upstream: &str) -> String {
    config(upstream).replace(
        "services = [\"webcollect\"]",
        "services = [\"webcollect\", \"atobarai.credit_card\", \"atobarai.cvs_online\", \"atobarai.kuroneko_pay\"]",
    ) + r#"
[[windows]]
id = "nightly"
title = "夜間リンク訓練"
cron = "0 3 * * *"
duration = "2h"
services = ["webcollect.link"]

[upstreams.gone]
url = "http://127.0.0.1:1"
connect_timeout = "1s"

[[routes]]
id = "gone"
path_prefix = "/gone/"
kind = "passthrough"
service = "merchant.gone"
upstream = "gone"
"#
}

async fn admin_json(shim: &TestShim, path: &str) -> Value {
    json(&admin_read(shim, path).await)
}

/// Opens a drill the way the CLI or another replica's console would: no Origin.
async fn open_drill(shim: &TestShim, body: &str) -> Value {
    let res = admin(shim, "POST", "/drills", body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    json(&res)
}

fn route<'a>(traffic: &'a Value, id: Option<&str>) -> &'a Value {
    traffic["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"].as_str() == id)
        .unwrap_or_else(|| panic!("no route {id:?} in {traffic}"))
}

fn service<'a>(timeline: &'a Value, name: &str) -> &'a Value {
    timeline["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {timeline}"))
}

fn sum(v: &Value) -> u64 {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

// === JSON ===

#[tokio::test]
async fn timeline_lists_a_week_of_windows_and_each_services_state() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&console_config(&upstream.url()), t(DURING)).await;
    open_drill(
        &shim,
        r#"{"id": "qa", "services": ["atobarai.api"], "duration": "1h", "title": "後払い drill"}"#,
    )
    .await;
    let tl = admin_json(&shim, "/timeline").await;
    assert_eq!(tl["now"], "2020-04-20T02:30:00.000+09:00");
    assert_eq!(tl["from"], "2020-04-19T02:30:00.000+09:00");
    assert_eq!(tl["to"], "2020-04-27T02:30:00.000+09:00");
    assert_eq!(tl["timezone"], "Asia/Tokyo");
    assert_eq!(tl["truncated"], false);
    let windows = tl["windows"].as_array().unwrap();
    let ids: Vec<(&str, &str)> = windows
        .iter()
        .map(|w| (w["id"].as_str().unwrap(), w["start"].as_str().unwrap()))
        .collect();
    // 03:00 JST every day from 04-19 (ends 05:00, after `from`) to 04-26: 8 occurrences.
    let nightly: Vec<&str> = ids
        .iter()
        .filter(|(id, _)| *id == "nightly")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(nightly.len(), 8, "{ids:?}");
    assert_eq!(nightly[0], "2020-04-18T18:00:00.000Z");
    assert_eq!(nightly[7], "2020-04-25T18:00:00.000Z");
    assert!(ids.contains(&("2020-04-20", "2020-04-19T17:00:00.000Z")));
    assert!(ids.contains(&("qa", "2020-04-19T17:30:00.000Z")));
    let qa = windows.iter().find(|w| w["id"] == "qa").unwrap();
    assert_eq!(
        (qa["source"].as_str(), qa["active"].as_bool()),
        (Some("drill"), Some(true))
    );
    // Sorted by start.
    let starts: Vec<&str> = ids.iter().map(|(_, s)| *s).collect();
    assert!(starts.is_sorted(), "{starts:?}");
    assert_eq!(tl["recurring"][0]["id"], "nightly");
    assert_eq!(tl["recurring"][0]["cron"], "0 3 * * *");
    assert_eq!(tl["recurring"][0]["duration"], "2h");

    // Now: the notice's window takes webコレクト and three 後払い services down …
    for name in ["webcollect.api", "webcollect.link", "atobarai.credit_card"] {
        let m = &service(&tl, name)["maintenance"];
        assert_eq!(m["window"], "2020-04-20", "{name}");
        assert_eq!(m["until"], "2020-04-20T06:00:00.000+09:00", "{name}");
    }
    // … the drill takes the 後払い API down …
    assert_eq!(service(&tl, "atobarai.api")["maintenance"]["window"], "qa");
    assert_eq!(
        service(&tl, "atobarai.api")["maintenance"]["source"],
        "drill"
    );
    // … and auかんたん決済 and 銀行振込 stay up, though no route or window names them.
    for (name, label) in [
        ("atobarai.au_easy", "auかんたん決済"),
        ("atobarai.bank_transfer", "銀行振込"),
    ] {
        let s = service(&tl, name);
        assert_eq!(s["maintenance"], Value::Null, "{name}");
        assert_eq!(s["ja"], label);
        assert_eq!(s["configured"], false, "{name} is not in the config");
    }
    assert_eq!(service(&tl, "webcollect")["family"], true);
    assert_eq!(service(&tl, "webcollect")["configured"], true);
    assert_eq!(service(&tl, "webcollect.api")["family"], false);
    assert_eq!(service(&tl, "webcollect.api")["routes"][0], "api");
    assert_eq!(service(&tl, "merchant.gone")["maintenance"], Value::Null);
    // A service no catalog knows keeps its name only.
    assert_eq!(service(&tl, "merchant.gone")["ja"], Value::Null);
}

#[tokio::test]
async fn traffic_counts_each_decision_per_route() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&console_config(&upstream.url()), t(DURING)).await;
    for _ in 0..3 {
        raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    }
    raw(shim.addr, &get("/nope")).await;
    raw(shim.addr, &get("/nope/either")).await;
    assert_eq!(raw(shim.addr, &get("/gone/x")).await.status, 502);
    raw(shim.addr, &post("/kuroneko-atobarai-api/x", "a=1")).await;
    shim.clock.set(t(AFTER));
    raw(shim.addr, &post("/api/creditToken", "a=1")).await;

    let traffic = admin_json(&shim, "/traffic").await;
    assert_eq!(traffic["minutes"], 30);
    let api = route(&traffic, Some("api"));
    assert_eq!(api["service"], "webcollect.api");
    assert_eq!(api["kind"], "api");
    assert_eq!(api["total"]["maintenance"], 3);
    assert_eq!(api["total"]["pass"], 1);
    assert_eq!(api["total"]["report"], 0);
    assert_eq!(api["maintenance_now"], false);
    // Every request of this test falls in the last 30 minutes.
    assert_eq!(
        api["per_minute"]["maintenance"].as_array().unwrap().len(),
        30
    );
    assert_eq!(sum(&api["per_minute"]["maintenance"]), 3);
    assert_eq!(sum(&api["per_minute"]["pass"]), 1);
    assert_eq!(route(&traffic, Some("gone"))["total"]["upstream_error"], 1);
    assert_eq!(route(&traffic, Some("atobarai"))["total"]["pass"], 1);
    let none = route(&traffic, None);
    assert_eq!(none["total"]["not_found"], 2);
    assert_eq!(sum(&none["per_minute"]["not_found"]), 2);
    assert_eq!(route(&traffic, Some("link"))["total"]["pass"], 0);

    // Counts carry over a reload (by route id) and a route in maintenance is flagged.
    let path = std::env::temp_dir().join(format!(
        "webcollect-shim-console-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, console_config(&upstream.url())).unwrap();
    let shim2 = TestShim::start_file(&path, t(DURING)).await;
    raw(shim2.addr, &post("/api/creditToken", "a=1")).await;
    let reload = admin_req("POST", "/reload").body(String::new()).unwrap();
    assert_eq!(call_admin(&shim2, reload).await.status, 200);
    raw(shim2.addr, &post("/api/creditToken", "a=1")).await;
    let api = route(&admin_json(&shim2, "/traffic").await, Some("api")).clone();
    assert_eq!(api["total"]["maintenance"], 2);
    assert_eq!(api["maintenance_now"], true);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn traffic_counts_would_maintain_in_report_mode() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = console_config(&upstream.url())
        .replace("[server]", "[maintenance]\nmode = \"report\"\n\n[server]");
    let shim = TestShim::start(&toml, t(DURING)).await;
    raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    let traffic = admin_json(&shim, "/traffic").await;
    assert_eq!(traffic["mode"], "report");
    let api = route(&traffic, Some("api"));
    assert_eq!(api["total"]["report"], 1);
    assert_eq!(api["total"]["maintenance"], 0);
    assert_eq!(sum(&api["per_minute"]["report"]), 1);
}

// === The page, in Chromium ===

/// Records CSP violations from before the page's first script runs.
const WATCH_CSP: &str = "window.__csp = []; document.addEventListener('securitypolicyviolation', \
     e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

/// Fails when the page broke its Content-Security-Policy (a blocked script, style or fetch).
async fn assert_no_csp_violation(tab: &Tab) {
    let violations: Vec<String> = tab.eval("window.__csp").await;
    assert!(violations.is_empty(), "CSP violations: {violations:?}");
}

async fn open_console(chromium: &Chromium, shim: &TestShim, width: i64) -> Tab {
    let tab = chromium.tab(width, 900, width < 500).await;
    tab.page.evaluate_on_new_document(WATCH_CSP).await.unwrap();
    tab.goto(&format!("http://{}/", shim.admin)).await;
    tab.wait_for(
        "the console's first refresh",
        "document.querySelector('#tl-svg') && document.querySelectorAll('#traffic-rows tr').length > 0",
    )
    .await;
    tab
}

#[derive(Debug, Deserialize)]
struct Bar {
    x: f64,
    width: f64,
    start: String,
    end: String,
}

#[derive(Debug, Deserialize)]
struct Geometry {
    from: f64,
    to: f64,
    x0: f64,
    x1: f64,
    now: f64,
    bars: Vec<Bar>,
}

const GEOMETRY: &str = "(svg => ({ from: +svg.dataset.from, to: +svg.dataset.to, x0: +svg.dataset.x0, \
     x1: +svg.dataset.x1, now: +document.getElementById('tl-now').getAttribute('x1'), \
     bars: Array.from(svg.querySelectorAll('rect.occ')).map(r => ({ id: r.dataset.id, \
     x: +r.getAttribute('x'), width: +r.getAttribute('width'), start: r.dataset.start, end: r.dataset.end })) \
     }))(document.getElementById('tl-svg'))";

/// The middle of the element the JS expression `element` gives, in viewport coordinates.
async fn middle(tab: &Tab, element: &str) -> Point {
    let (x, y): (f64, f64) = tab
        .eval(&format!(
            "(r => {{ const b = r.getBoundingClientRect(); return [b.left + b.width / 2, b.top + b.height / 2]; }})({element})"
        ))
        .await;
    Point::new(x, y)
}

fn ms(rfc3339: &str) -> f64 {
    t(rfc3339).timestamp_millis() as f64
}

#[tokio::test]
async fn the_timeline_places_one_off_and_recurring_windows_in_time() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = Upstream::fixed(OK_XML).await;
    // Half a day before the notice's window.
    let now = "2020-04-19T12:00:00+09:00";
    let shim = TestShim::start(&console_config(&upstream.url()), t(now)).await;
    let tab = open_console(&chromium, &shim, 1280).await;

    let g: Geometry = tab.eval(GEOMETRY).await;
    assert_eq!(g.from, ms("2020-04-18T12:00:00+09:00"));
    assert_eq!(g.to, ms("2020-04-26T12:00:00+09:00"));
    assert!(g.x0 < 20.0 && g.x1 > 1200.0, "{g:?}");
    let x_of = |at: f64| g.x0 + (at - g.from) / (g.to - g.from) * (g.x1 - g.x0);
    // The now line is one day into the eight.
    assert!((g.now - (g.x0 + (g.x1 - g.x0) / 8.0)).abs() < 0.5, "{g:?}");

    let one_off: Vec<&Bar> = g
        .bars
        .iter()
        .filter(|b| b.start == "2020-04-19T17:00:00.000Z")
        .collect();
    assert_eq!(one_off.len(), 1, "{:?}", g.bars);
    let bar = one_off[0];
    assert!(
        (bar.x - x_of(ms("2020-04-20T02:00:00+09:00"))).abs() < 0.5,
        "{bar:?}"
    );
    let four_hours = x_of(ms("2020-04-20T06:00:00+09:00")) - x_of(ms("2020-04-20T02:00:00+09:00"));
    assert!((bar.width - four_hours).abs() < 0.5, "{bar:?}");

    // The nightly window: each occurrence from 04-19 to 04-26 at 03:00 JST, two hours long.
    let nightly: Vec<&Bar> = g
        .bars
        .iter()
        .filter(|b| ms(&b.end) - ms(&b.start) == 2.0 * 3600.0 * 1000.0)
        .collect();
    assert_eq!(nightly.len(), 8, "{:?}", g.bars);
    for (day, bar) in nightly.iter().enumerate() {
        let start = ms("2020-04-19T03:00:00+09:00") + day as f64 * 86_400_000.0;
        assert!((bar.x - x_of(start)).abs() < 0.5, "day {day}: {bar:?}");
        assert!((bar.width - (x_of(start + 7_200_000.0) - x_of(start))).abs() < 0.5);
    }
    // In the page, not only in the attributes: the one-off bar is drawn where its x says.
    let drawn: f64 = tab
        .eval("(r => r.getBoundingClientRect().left - document.getElementById('tl-svg').getBoundingClientRect().left)(document.querySelector('rect.occ[data-id=\"2020-04-20\"]'))")
        .await;
    assert!((drawn - bar.x).abs() < 1.0, "drawn at {drawn}, x {}", bar.x);

    // Hovering an occurrence shows its id, title, times in the zone and services; so does a tap.
    let point = middle(
        &tab,
        "document.querySelector('rect.occ[data-id=\"2020-04-20\"]')",
    )
    .await;
    tab.page.move_mouse(point).await.unwrap();
    tab.wait_for(
        "the hover details",
        "!document.getElementById('tl-detail').hidden",
    )
    .await;
    let detail: String = tab
        .eval("document.getElementById('tl-detail').innerText")
        .await;
    for needle in [
        "2020-04-20",
        "クロネコwebコレクト 臨時システムメンテナンス",
        "2020-04-20 02:00:00 (Asia/Tokyo)",
        "2020-04-20 06:00:00 (Asia/Tokyo)",
        "webcollect, atobarai.credit_card",
    ] {
        assert!(
            detail.contains(needle),
            "details lack {needle:?}:\n{detail}"
        );
    }
    let point = middle(
        &tab,
        "document.querySelectorAll('rect.occ[data-id=\"nightly\"]')[2]",
    )
    .await;
    tab.page.click(point).await.unwrap();
    tab.wait_for(
        "the tapped occurrence's details",
        "document.getElementById('tl-detail').innerText.includes('2020-04-21 03:00:00')",
    )
    .await;
    let detail: String = tab
        .eval("document.getElementById('tl-detail').innerText")
        .await;
    assert!(
        detail.contains("夜間リンク訓練") && detail.contains("webcollect.link"),
        "{detail}"
    );
    assert_no_csp_violation(&tab).await;
    chromium.close().await;
}

#[tokio::test]
async fn a_drill_opened_from_the_form_needs_the_token_and_then_appears() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&with_token(&console_config(&upstream.url())), t(BEFORE)).await;
    let mut tab = open_console(&chromium, &shim, 1280).await;
    tab.wait_for(
        "the service choices",
        "document.querySelector('form#open-drill input[name=services][value=\"webcollect.api\"]')",
    )
    .await;
    // The choices come from the config: routes' and windows' services and their families.
    let choices: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('form#open-drill input[name=services]')).map(i => i.value)")
        .await;
    for name in [
        "webcollect",
        "webcollect.api",
        "webcollect.link",
        "atobarai.api",
        "merchant.gone",
    ] {
        assert!(
            choices.iter().any(|c| c == name),
            "{name} not offered: {choices:?}"
        );
    }
    assert!(
        !choices.iter().any(|c| c == "atobarai.au_easy"),
        "{choices:?}"
    );

    tab.click("form#open-drill input[name=services][value=\"webcollect.api\"]")
        .await;
    tab.eval::<bool>("(document.getElementById('drill-duration').value = '', true)")
        .await;
    tab.type_into("#drill-duration", "10m").await;
    tab.type_into("#drill-title", "QA form drill").await;
    let submit = "form#open-drill button[type=submit]";
    tab.click(submit).await;
    // No token yet: refused, and the page says why.
    tab.wait_for(
        "the missing-token message",
        "document.getElementById('drill-result').innerText.includes('トークンが必要です')",
    )
    .await;
    assert_eq!(
        admin_json(&shim, "/drills").await["drills"],
        Value::Array(vec![])
    );

    // The operator types the token once.
    tab.type_into("#token", ADMIN_TOKEN).await;
    tab.click("#token-form button[type=submit]").await;
    tab.wait_for(
        "the token to be kept",
        &format!("sessionStorage.getItem('webcollect-shim.admin-token') === {ADMIN_TOKEN:?}"),
    )
    .await;
    assert_eq!(
        tab.eval::<String>("document.getElementById('token').value")
            .await,
        ""
    );
    assert_eq!(tab.eval::<u32>("localStorage.length").await, 0);

    tab.click(submit).await;
    tab.wait_for(
        "the drill's row",
        "document.querySelector('#drill-rows tr[data-id]')",
    )
    .await;
    let drills = admin_json(&shim, "/drills").await;
    let drill = &drills["drills"][0];
    assert_eq!(drill["services"], serde_json::json!(["webcollect.api"]));
    assert_eq!(drill["title"], "QA form drill");
    assert_eq!(drill["end"], "2020-04-19T16:10:00.000Z");
    let id = drill["id"].as_str().unwrap();
    let row: String = tab
        .eval(&format!(
            "document.querySelector('#drill-rows tr[data-id=\"{id}\"]').innerText"
        ))
        .await;
    assert!(
        row.contains("QA form drill") && row.contains("webcollect.api") && row.contains("10m"),
        "{row}"
    );
    // It is in force, and the page says so.
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    tab.wait_for(
        "the service in maintenance",
        &format!("document.querySelector('#now-down li[data-window=\"{id}\"] [data-service=\"webcollect.api\"]')"),
    )
    .await;
    // The token never reached a URL.
    for url in tab.request_urls().await {
        assert!(!url.contains(ADMIN_TOKEN), "{url}");
    }
    assert_no_csp_violation(&tab).await;
    chromium.close().await;
}

#[tokio::test]
async fn a_drill_opened_elsewhere_appears_within_five_seconds_and_closes_from_the_page() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&console_config(&upstream.url()), t(BEFORE)).await;
    let tab = open_console(&chromium, &shim, 1280).await;
    assert_eq!(
        tab.eval::<u32>("document.querySelectorAll('#drill-rows tr').length")
            .await,
        0
    );

    // From the CLI, another tab or another replica's console: no reload of this page.
    open_drill(
        &shim,
        r#"{"id": "from-cli", "services": ["webcollect.link"], "duration": "30m", "title": "CLI drill"}"#,
    )
    .await;
    let opened = Instant::now();
    tab.wait_for(
        "the drill opened elsewhere",
        "document.querySelector('#drill-rows tr[data-id=\"from-cli\"]')",
    )
    .await;
    let seen_after = opened.elapsed();
    assert!(seen_after < Duration::from_secs(5), "took {seen_after:?}");
    tab.wait_for(
        "the drill on the timeline",
        "document.querySelector('rect.occ.src-drill[data-id=\"from-cli\"]')",
    )
    .await;
    // No merchant request has reached it: the page says so.
    let answered: String = tab
        .eval("document.querySelector('#drill-rows tr[data-id=\"from-cli\"]').innerText")
        .await;
    assert!(answered.contains("未到達"), "{answered}");
    raw(shim.addr, &get("/webcollect/settleSelectAction.gw")).await;
    tab.wait_for(
        "the answered count",
        "!document.querySelector('#drill-rows tr[data-id=\"from-cli\"]').innerText.includes('未到達')",
    )
    .await;

    // Close it from the page (no token configured: loopback admin).
    tab.click("button.close-drill[data-id=\"from-cli\"]").await;
    tab.wait_for(
        "the drill to go",
        "!document.querySelector('#drill-rows tr[data-id=\"from-cli\"]')",
    )
    .await;
    assert_eq!(
        admin_json(&shim, "/drills").await["drills"],
        Value::Array(vec![])
    );
    let res = raw(shim.addr, &get("/webcollect/settleSelectAction.gw")).await;
    assert_eq!(
        res.header("x-webcollect-shim"),
        None,
        "the closed drill still answers"
    );
    chromium.close().await;
}

#[tokio::test]
async fn the_clock_panel_and_reload_errors_with_line_and_column() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = Upstream::fixed(OK_XML).await;
    let dir = std::env::temp_dir().join(format!(
        "webcollect-shim-console-reload-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shim.toml");
    // A drill clock anchored at 12:00 UTC, running 60 times as fast.
    let good = format!(
        "[clock]\nstart_at = \"2020-04-20T01:00:00+09:00\"\nspeed = 60\nanchor = \"2026-11-27T12:00:00Z\"\n{}",
        console_config(&upstream.url())
    );
    std::fs::write(&path, &good).unwrap();
    let shim = TestShim::start_file(&path, t("2026-11-27T12:01:00Z")).await;
    let tab = open_console(&chromium, &shim, 1280).await;

    // The clock panel: one real minute is an hour of drill time.
    let text = |id: &str| format!("document.getElementById('{id}').innerText");
    for (id, shown) in [
        ("clock-now", "2020-04-20 02:00:00"),
        ("clock-real", "2026-11-27 21:01:00"),
        ("clock-tz", "Asia/Tokyo"),
        ("clock-speed", "60×"),
        ("clock-anchor", "2026-11-27 21:00:00"),
        ("config-version", "1"),
    ] {
        assert_eq!(tab.eval::<String>(&text(id)).await, shown, "#{id}");
    }
    let digest = webcollect_shim::config::digest(good.as_bytes());
    assert_eq!(
        tab.eval::<String>("document.getElementById('config-digest').title")
            .await,
        digest
    );
    assert!(
        tab.eval::<String>(&text("config-digest"))
            .await
            .starts_with(&digest[..16])
    );

    std::fs::write(&path, format!("{good}\n[bogus]\nx = 1\n")).unwrap();
    tab.click("#reload").await;
    tab.wait_for(
        "the reload errors",
        "document.querySelectorAll('#reload-errors li').length > 0",
    )
    .await;
    let errors: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#reload-errors li')).map(li => li.innerText)")
        .await;
    let line = good.lines().count() + 2;
    let expected = format!("{}:{line}:2: unknown section `bogus`", path.display());
    assert!(errors[0].starts_with(&expected), "{errors:?} vs {expected}");
    let result: String = tab
        .eval("document.getElementById('reload-result').innerText")
        .await;
    assert!(result.contains("以前の設定で動作中"), "{result}");

    // Fixed: the reload goes through, and the clock panel shows the new version.
    std::fs::write(&path, &good).unwrap();
    tab.click("#reload").await;
    tab.wait_for(
        "the reload result",
        "document.getElementById('reload-result').innerText.includes('バージョン 2')",
    )
    .await;
    assert_eq!(
        tab.eval::<u32>("document.querySelectorAll('#reload-errors li').length")
            .await,
        0
    );
    tab.wait_for(
        "version 2",
        "document.getElementById('config-version').innerText === '2'",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    chromium.close().await;
}

#[tokio::test]
async fn the_console_is_self_contained_strict_and_reads_from_390_to_1440_px() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&console_config(&upstream.url()), t(DURING)).await;
    open_drill(
        &shim,
        r#"{"id": "qa-afterpay", "services": ["atobarai.api"], "duration": "45m", "title": "後払い API drill"}"#,
    )
    .await;
    for path in [
        "/api/creditToken",
        "/api/creditToken",
        "/kuroneko-atobarai-api/x",
        "/nope",
    ] {
        raw(shim.addr, &post(path, "a=1")).await;
    }
    let mut tab = open_console(&chromium, &shim, 1280).await;
    let origin = format!("http://{}", shim.admin);

    // Strict headers on the page.
    let page_url = format!("{origin}/");
    tab.settle().await;
    let res = tab.response(&page_url);
    let csp = header(&res.response.headers, "content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(
        header(&res.response.headers, "x-frame-options").as_deref(),
        Some("DENY")
    );

    // The clock, the now panel and the traffic table read what the server said.
    let text: String = tab.eval("document.body.innerText").await;
    for needle in [
        "2020-04-20 02:30:00",
        "Asia/Tokyo",
        "enforce",
        "管理コンソール",
        "タイムライン",
    ] {
        assert!(text.contains(needle), "page lacks {needle:?}");
    }
    // A field this shim's /status lacks shows as a dash, not as "undefined".
    assert!(
        !text.contains("undefined") && !text.contains("NaN") && !text.contains("[object"),
        "{text}"
    );
    let up: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#now-up [data-service]')).map(e => e.dataset.service)")
        .await;
    for name in ["atobarai.au_easy", "atobarai.bank_transfer"] {
        assert!(
            up.iter().any(|u| u == name),
            "{name} not shown as up: {up:?}"
        );
    }
    let down: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#now-down li[data-window=\"2020-04-20\"] [data-service]')).map(e => e.dataset.service)")
        .await;
    assert!(
        down.iter().any(|d| d == "atobarai.credit_card")
            && down.iter().any(|d| d == "webcollect.link"),
        "{down:?}"
    );
    let drilled: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#now-down li[data-window=\"qa-afterpay\"] [data-service]')).map(e => e.dataset.service)")
        .await;
    assert_eq!(drilled, ["atobarai.api"]);
    let api_row: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#traffic-rows tr[data-route=\"api\"] td.num')).map(td => td.innerText)")
        .await;
    assert_eq!(
        api_row,
        ["0", "2", "0", "0", "0"],
        "pass, maintenance, would, 404, upstream errors"
    );
    let no_route: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#traffic-rows tr[data-route=\"\"] td.num')).map(td => td.innerText)")
        .await;
    assert_eq!(no_route[3], "1");
    // A route in maintenance that no request reached stands out; one that was reached does not.
    assert!(tab.eval::<bool>("document.querySelector('#traffic-rows tr[data-route=\"link\"]').classList.contains('idle')").await);
    assert!(!tab.eval::<bool>("document.querySelector('#traffic-rows tr[data-route=\"api\"]').classList.contains('idle')").await);

    for (width, height, shot) in [
        (1440, 900, None),
        (1280, 900, Some("console-1280.png")),
        (768, 1024, None),
        (390, 844, None),
    ] {
        tab.viewport(width, height, width < 500).await;
        // The timeline redraws for the new width.
        tab.wait_for(
            "the timeline at this width",
            "Math.abs(+document.getElementById('tl-svg').getAttribute('width') - document.getElementById('tl-chart').clientWidth) < 2",
        )
        .await;
        let scroll_width: i64 = tab.eval("document.documentElement.scrollWidth").await;
        if scroll_width > width {
            let wide: Vec<String> = tab
                .eval(&format!(
                    "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > {width}) \
                     .map(e => e.tagName + '#' + e.id + '.' + e.getAttribute('class') + ' ' + e.getBoundingClientRect().right)"
                ))
                .await;
            panic!("horizontal overflow at {width}px: scrollWidth {scroll_width}: {wide:?}");
        }
        if let Some(name) = shot {
            tab.screenshot(name, width, height, false).await;
        }
    }

    // Nothing but the admin origin, even after a few more refreshes (three fetches each).
    tab.wait_for(
        "three more refreshes",
        &format!(
            "performance.getEntriesByType('resource').length >= {}",
            3 * 4
        ),
    )
    .await;
    let urls = tab.request_urls().await;
    assert!(urls.len() >= 4, "{urls:?}");
    for url in &urls {
        assert!(
            url.starts_with(&format!("{origin}/")),
            "a request left the admin origin: {url}"
        );
    }
    let resources: Vec<String> = tab
        .eval("performance.getEntriesByType('resource').map(e => e.name)")
        .await;
    assert!(
        resources.iter().all(|r| r.starts_with(&origin)),
        "{resources:?}"
    );
    assert_no_csp_violation(&tab).await;
    chromium.close().await;
}

/// The report panel's timeline: where the window is shaded, and its maintenance bars.
#[derive(Debug, Deserialize)]
struct ReportChart {
    /// `x` and `width` of the window's shading.
    shade: (f64, f64),
    /// `x` and `data-count` of each maintenance bar.
    maintenance: Vec<(f64, u64)>,
}

/// JS giving a [`ReportChart`].
const REPORT_CHART: &str = "(svg => ({ \
     shade: (r => [+r.getAttribute('x'), +r.getAttribute('width')])(svg.querySelector('rect.window-shade')), \
     maintenance: Array.from(svg.querySelectorAll('rect.bar[data-decision=\"maintenance\"]')) \
       .map(r => [+r.getAttribute('x'), +r.dataset.count]) }))(document.querySelector('#report #rp-svg'))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_panel_shows_the_last_windows_verdicts_orders_and_timeline() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let gateway = StandIn::start(BEFORE).await;
    let shim = TestShim::start(&config(&gateway.url()), t(BEFORE)).await;
    let tab = open_console(&chromium, &shim, 1280).await;
    // No window has started yet: a quiet line, no empty tables.
    tab.wait_for(
        "the report panel's first answer",
        "document.getElementById('rp-none').innerText.includes('まだありません')",
    )
    .await;
    assert!(
        tab.eval::<bool>("document.getElementById('rp-body').hidden")
            .await
    );

    // A merchant retries one order during the window and never again.
    for (i, when) in ["02:10", "02:12"].iter().enumerate() {
        shim.clock.set(t(&format!("2020-04-20T{when}:00+09:00")));
        let res = raw(
            shim.addr,
            &a08("PANEL-1", &format!("tokenP{i}xxxxxxxxx"), ""),
        )
        .await;
        assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    }
    // After the window and its report span: the panel follows without a reload.
    shim.clock.set(t("2020-04-20T07:30:00+09:00"));
    tab.wait_for(
        "the report of the window",
        "document.querySelector('#rp-stranded-rows tr[data-order=\"PANEL-1\"]')",
    )
    .await;
    let text = |selector: &str| format!("document.querySelector({selector:?}).innerText");
    let subject: String = tab.eval(&text("#rp-subject")).await;
    assert!(
        subject.contains("2020-04-20")
            && subject.contains("クロネコwebコレクト 臨時システムメンテナンス")
            && subject.contains("不合格"),
        "{subject}"
    );
    let window: String = tab.eval(&text("#rp-window")).await;
    assert!(
        window.contains("2020-04-20 02:00:00 \u{2192} 2020-04-20 06:00:00 (Asia/Tokyo)"),
        "{window}"
    );

    // The verdicts: one order stranded fails, two attempts of it pass.
    let stranded: String = tab
        .eval(&text("#rp-verdicts li[data-verdict=\"stranded\"]"))
        .await;
    assert!(
        stranded.contains("不合格") && stranded.contains("FAIL"),
        "{stranded}"
    );
    assert!(stranded.contains("888888709/PANEL-1"), "{stranded}");
    assert!(
        tab.eval::<bool>("document.querySelector('#rp-verdicts li[data-verdict=\"stranded\"]').classList.contains('fail')")
            .await
    );
    let attempts: String = tab
        .eval(&text(
            "#rp-verdicts li[data-verdict=\"attempts_per_order\"]",
        ))
        .await;
    assert!(
        attempts.contains("合格") && attempts.contains("PASS") && !attempts.contains("FAIL"),
        "{attempts}"
    );

    // The stranded table holds the order, with its trader and its two attempts.
    let row: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#rp-stranded-rows tr[data-order=\"PANEL-1\"] td')).map(td => td.innerText)")
        .await;
    assert_eq!(row, ["PANEL-1", "888888709", "2", "\u{2013}"]);
    assert!(
        tab.eval::<bool>("document.getElementById('rp-recovered').hidden")
            .await,
        "no order recovered"
    );
    let decisions: Vec<String> = tab
        .eval("Array.from(document.querySelectorAll('#rp-decision-rows tr')).map(tr => tr.dataset.decision + ' ' + tr.lastChild.innerText)")
        .await;
    assert_eq!(decisions, ["maintenance 2"]);

    // The timeline: maintenance bars, inside the shaded window, counting both requests.
    let chart: ReportChart = tab.eval(REPORT_CHART).await;
    assert!(!chart.maintenance.is_empty(), "{chart:?}");
    let (shade_x, shade_width) = chart.shade;
    for (x, _) in &chart.maintenance {
        assert!(*x >= shade_x && *x <= shade_x + shade_width, "{chart:?}");
    }
    assert_eq!(
        chart.maintenance.iter().map(|(_, n)| n).sum::<u64>(),
        2,
        "{chart:?}"
    );
    assert_no_csp_violation(&tab).await;
    chromium.close().await;
}
