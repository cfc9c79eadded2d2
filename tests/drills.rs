//! Drill clock, targeted drills behind proxies.

use chrono::TimeDelta;
use serde_json::Value;

use crate::support::*;

const OK_XML: &str = "<return><returnCode>0</returnCode></return>";

fn drill_clock(toml: &str, start_at: &str, speed: f64) -> String {
    format!(
        "[clock]\ntimezone = \"Asia/Tokyo\"\nstart_at = \"{start_at}\"\nspeed = {speed}\n{toml}"
    )
}

#[tokio::test]
async fn drill_clock_replays_the_2020_window_at_speed() {
    let upstream = Upstream::fixed(OK_XML).await;
    // Real time is 2026; the drill clock starts just before the 2020 window and runs 3600×.
    let toml = drill_clock(
        &config(&upstream.url()),
        "2020-04-20T01:59:58+09:00",
        3600.0,
    );
    let shim = TestShim::start(&toml, t("2026-11-27T12:00:00Z")).await;
    let maintained = |res: &RawResponse| res.header("x-webcollect-shim") == Some("maintenance");

    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert!(!maintained(&res));
    // One real second later the drill clock is at 02:59:58: inside the window.
    shim.clock.advance(TimeDelta::seconds(1));
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert!(maintained(&res));
    assert!(
        res.text()
            .contains("<returnDate>20200420025958</returnDate>"),
        "{}",
        res.text()
    );
    // Retry-After counts real seconds: 3h00m02s of drill time is ~3 real seconds.
    let page = raw(shim.addr, &get("/webcollect/settleSelectAction.gw")).await;
    assert_eq!(page.header("retry-after"), Some("4"));

    let status: Value = serde_json::from_slice(&admin_read(&shim, "/status").await.body).unwrap();
    assert_eq!(status["now"], "2020-04-20T02:59:58.000+09:00");
    assert_eq!(status["real_now"], "2026-11-27T21:00:01.000+09:00");
    assert_eq!(status["drill_clock"]["speed"], 3600.0);

    // Four more real seconds: 06:59:58, after the window.
    shim.clock.advance(TimeDelta::seconds(4));
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert!(!maintained(&res));
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let upstream = Upstream::fixed(OK_XML).await;
    let base = format!(
        "{}\n[drill]\nbypass_cidrs = [\"192.0.2.0/24\"]\n",
        config(&upstream.url())
    );
    let request = b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nX-Forwarded-For: 198.51.100.9, 192.0.2.5\r\nContent-Length: 0\r\n\r\n";

    // The peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is ignored.
    let shim = TestShim::start(&base, t(DURING)).await;
    let res = raw(shim.addr, request).await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));

    // Behind a trusted proxy, the rightmost untrusted hop (192.0.2.5) is the client.
    let trusted = format!("{base}trusted_proxies = [\"127.0.0.1/32\"]\n");
    let shim = TestShim::start(&trusted, t(DURING)).await;
    let res = raw(shim.addr, request).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), OK_XML);
    // A spoofed leftmost entry does not help a client that is not in the bypass range.
    let spoofed = b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nX-Forwarded-For: 192.0.2.5, 198.51.100.9\r\nContent-Length: 0\r\n\r\n";
    let res = raw(shim.addr, spoofed).await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
}

#[tokio::test]
async fn recurring_window_drives_maintenance() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = format!(
        "{}\n[[windows]]\nid = \"weekly\"\ncron = \"0 2 * * MON\"\nduration = \"4h\"\nservices = [\"webcollect.link\"]\n",
        config(&upstream.url())
    );
    // Monday 2026-11-30 03:00 JST is inside the weekly window.
    let shim = TestShim::start(&toml, t("2026-11-30T03:00:00+09:00")).await;
    let res = raw(shim.addr, &get("/webcollect/settleSelectAction.gw")).await;
    assert_eq!(res.status, 503);
    assert!(res.text().contains("11月30日(月) 2時00分～6時00分"));
    assert_eq!(res.header("retry-after"), Some("10800"));
    shim.clock.set(t("2026-11-30T06:00:00+09:00"));
    assert_eq!(
        raw(shim.addr, &get("/webcollect/settleSelectAction.gw"))
            .await
            .status,
        200
    );
    // A week later, again.
    shim.clock.set(t("2026-12-07T02:00:00+09:00"));
    assert_eq!(
        raw(shim.addr, &get("/webcollect/settleSelectAction.gw"))
            .await
            .status,
        503
    );
}
