//! Inside a window the shim answers as the gateway does and never contacts the upstream.

use chrono::TimeDelta;

use crate::support::*;

const OK_XML: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return><returnCode>0</returnCode></return>\n";

#[tokio::test]
async fn api_answer_is_the_exact_xml_and_the_upstream_is_not_contacted() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;

    let res = raw(
        shim.addr,
        &post(
            "/api/creditToken?x=1",
            "function_div=A08&trader_code=123456789&order_no=1",
        ),
    )
    .await;

    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/xml; charset=UTF-8"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(
        res.text(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n"
    );
    assert_eq!(upstream.connections(), 0);
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn return_date_follows_the_clock_and_error_code_follows_config() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = config(&upstream.url()).replace(
        "[upstreams.gw]",
        "[maintenance]\nerror_code = \"Z010000000\"\n\n[upstreams.gw]",
    );
    let shim = TestShim::start(&toml, t("2020-04-20T05:59:59.999+09:00")).await;
    let res = raw(shim.addr, &post("/api/xp/tradeInfoXp", "function_div=F04")).await;
    let body = res.text();
    assert!(body.contains("<errorCode>Z010000000</errorCode>"), "{body}");
    assert!(
        body.contains("<returnDate>20200420055959</returnDate>"),
        "{body}"
    );
}

#[tokio::test]
async fn window_boundaries_are_half_open() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t("2020-04-20T01:59:59.999+09:00")).await;
    let ms = TimeDelta::milliseconds(1);
    let mut expected_upstream = 0;
    for (at, maintained) in [
        (t("2020-04-20T01:59:59.999+09:00"), false),
        (t("2020-04-20T02:00:00+09:00"), true),
        (t("2020-04-20T06:00:00+09:00") - ms, true),
        (t("2020-04-20T06:00:00+09:00"), false),
    ] {
        shim.clock.set(at);
        let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
        assert_eq!(
            res.header("x-webcollect-shim") == Some("maintenance"),
            maintained,
            "at {at}"
        );
        if !maintained {
            expected_upstream += 1;
            assert_eq!(res.text(), OK_XML);
        }
        assert_eq!(upstream.seen().len(), expected_upstream, "at {at}");
    }
}

#[tokio::test]
async fn link_page_shows_the_window_contact_and_retry_after() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    let res = raw(
        shim.addr,
        &post(
            "/webcollect/settleSelectAction.gw",
            "TRS_MAP=V_W02&trader_code=123456789",
        ),
    )
    .await;
    assert_eq!(res.status, 503);
    assert_eq!(res.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    // 02:30 → 06:00 is 3.5 hours.
    assert_eq!(res.header("retry-after"), Some("12600"));
    let page = res.text();
    for needle in [
        "<title>クロネコwebコレクト メンテナンスのお知らせ</title>",
        "サーバーメンテナンス日時",
        "4月20日(月) 2時00分～6時00分",
        "ヤマトフィナンシャル株式会社 カスタマーサービスセンター",
        "0120-69-5090",
        "03-6671-8080",
        "9:00-18:00",
        "payment@kuronekoyamato.co.jp",
    ] {
        assert!(page.contains(needle), "page lacks {needle:?}");
    }
    assert!(!page.contains("{{"), "unrendered placeholder");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "page must be self-contained"
    );
    assert_eq!(upstream.connections(), 0);
}

#[tokio::test]
async fn token_libraries_get_the_stand_in() {
    let upstream = Upstream::fixed("real library").await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    for (path, modal) in [
        ("/api/token/js/embeddedTokenLib.js", "var MODAL = false;"),
        ("/api/token/js/tokenlib.js", "var MODAL = true;"),
    ] {
        let res = raw(shim.addr, &get(path)).await;
        assert_eq!(res.status, 200);
        assert_eq!(
            res.header("content-type"),
            Some("application/javascript; charset=UTF-8")
        );
        let js = res.text();
        assert!(js.contains("WebcollectTokenLib"));
        assert!(js.contains("var ERROR_CODE = \"Z01000000\";"));
        assert!(js.contains(
            "var ERROR_MSG = \"メンテナンス中です。時間をおいて再度アクセスしてください。\";"
        ));
        assert!(js.contains(modal), "{path}");
    }
    assert_eq!(upstream.connections(), 0);
}

#[tokio::test]
async fn short_circuited_post_leaves_the_connection_usable() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    let mut conn = RawConn::connect(shim.addr).await;
    let body = "x".repeat(64 * 1024);
    conn.send(&post("/api/creditToken", &body)).await;
    let first = conn.read_response().await;
    assert_eq!(first.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(first.header("connection"), None);

    // Same connection, after the window: reaches the upstream.
    shim.clock.set(t(AFTER));
    conn.send(&post("/api/creditToken", "a=1")).await;
    let second = conn.read_response().await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), OK_XML);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn oversized_short_circuited_body_closes_the_connection() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = config(&upstream.url()).replace(
        "[upstreams.gw]",
        "[maintenance]\ndrain_limit = 1024\n\n[upstreams.gw]",
    );
    let shim = TestShim::start(&toml, t(DURING)).await;
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(&post("/api/creditToken", &"x".repeat(4096)))
        .await;
    let res = conn.read_response().await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(res.header("connection"), Some("close"));
    assert!(conn.is_closed().await);
}

#[tokio::test]
async fn services_outside_the_window_pass_through() {
    // atobarai.api is not in the window's services.
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    let res = raw(
        shim.addr,
        &post(
            "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
            "ycfStrCode=1",
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), OK_XML);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn drill_header_forces_maintenance_or_pass() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    let forced = raw(
        shim.addr,
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nX-Webcollect-Shim-Drill: maintenance\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(forced.text().contains("<errorCode>Z01000000</errorCode>"));
    assert!(upstream.seen().is_empty());

    shim.clock.set(t(DURING));
    let passed = raw(
        shim.addr,
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nx-webcollect-shim-drill: pass\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(passed.text(), OK_XML);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn finding_14_head_in_a_window_gets_the_maintenance_head_and_no_body() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    let get = raw(
        shim.addr,
        b"GET /webcollect/settleSelectAction.gw HTTP/1.1\r\nHost: s\r\n\r\n",
    )
    .await;
    let mut conn = RawConn::connect(shim.addr).await;
    conn.send(b"HEAD /webcollect/settleSelectAction.gw HTTP/1.1\r\nHost: s\r\n\r\n")
        .await;
    let head = conn.read_response().await;
    assert!(head.body.is_empty());
    assert_eq!(head.status, 503);
    assert_eq!(head.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(head.header("retry-after"), get.header("retry-after"));
    // No body follows the head: the next request on the connection is answered at once.
    conn.send(b"HEAD /api/creditToken HTTP/1.1\r\nHost: s\r\n\r\n")
        .await;
    let api = conn.read_response().await;
    assert_eq!(api.status, 200);
    assert_eq!(api.header("content-type"), Some("text/xml; charset=UTF-8"));
    assert!(upstream.seen().is_empty(), "HEAD reached the upstream");
}

#[tokio::test]
async fn finding_14_a_method_override_is_decided_as_its_method_and_never_forwarded() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    // Inside the window a HEAD that says POST is a POST: maintenance, nothing forwarded.
    let res = raw(
        shim.addr,
        b"GET /api/creditToken HTTP/1.1\r\nHost: s\r\nX-HTTP-Method-Override: POST\r\n\r\n",
    )
    .await;
    assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
    // A POST that says TRACE is refused like a TRACE.
    let res = raw(
        shim.addr,
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nX-Method-Override: trace\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 405);
    assert!(upstream.seen().is_empty());
    // Outside the window it passes, without the override.
    shim.clock.set(t(AFTER));
    let res = raw(
        shim.addr,
        b"POST /api/creditToken HTTP/1.1\r\nHost: s\r\nX-HTTP-Method-Override: PUT\r\nX-Method-Override: PUT\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 200);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert!(!seen[0].headers.contains_key("x-http-method-override"));
    assert!(!seen[0].headers.contains_key("x-method-override"));
}

#[tokio::test]
async fn report_mode_passes_and_marks_the_response() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = config(&upstream.url()).replace(
        "[upstreams.gw]",
        "[maintenance]\nmode = \"report\"\n\n[upstreams.gw]",
    );
    let shim = TestShim::start(&toml, t(DURING)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.text(), OK_XML);
    assert_eq!(res.header("x-webcollect-shim"), Some("would-maintain"));
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn bypass_cidrs_let_testers_through() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = format!(
        "{}\n[drill]\nbypass_cidrs = [\"127.0.0.0/8\"]\n",
        config(&upstream.url())
    );
    let shim = TestShim::start(&toml, t(DURING)).await;
    let res = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(res.text(), OK_XML);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn unknown_paths_get_404_from_the_shim() {
    let upstream = Upstream::fixed(OK_XML).await;
    let shim = TestShim::start(&config(&upstream.url()), t(BEFORE)).await;
    for path in ["/", "/admin", "/apix", "http://evil.example/api/credit"] {
        let res = raw(shim.addr, &get(path)).await;
        if path.starts_with("http://") {
            // Absolute-form targets are routed by their path; the upstream is still ours.
            assert_eq!(res.status, 200, "{path}");
            continue;
        }
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(res.header("x-webcollect-shim"), Some("no-route"));
    }
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(
        upstream.seen()[0].headers["host"],
        upstream.addr.to_string().as_str()
    );
}

#[tokio::test]
async fn custom_page_template_is_rendered_with_escaped_values() {
    let dir = std::env::temp_dir().join(format!("webcollect-shim-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = dir.join("page.html");
    std::fs::write(
        &template,
        "<h1>{{title}}</h1><p>{{ window }}</p><p>{{contact_name}}</p>",
    )
    .unwrap();
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = config(&upstream.url()).replace(
        "[upstreams.gw]",
        &format!(
            "[maintenance]\npage_template = {:?}\n\n[maintenance.contact]\nname = \"A & B <support>\"\n\n[upstreams.gw]",
            template.display().to_string()
        ),
    );
    let shim = TestShim::start(&toml, t(DURING)).await;
    let res = raw(shim.addr, &get("/webcollect/settleSelectAction.gw")).await;
    assert_eq!(
        res.text(),
        "<h1>クロネコwebコレクト メンテナンスのお知らせ</h1><p>4月20日(月) 2時00分～6時00分</p><p>A &amp; B &lt;support&gt;</p>"
    );
}

#[tokio::test]
async fn answer_statuses_follow_config() {
    let upstream = Upstream::fixed(OK_XML).await;
    let toml = config(&upstream.url()).replace(
        "[upstreams.gw]",
        "[maintenance]\napi_status = 503\npage_status = 500\n\n[upstreams.gw]",
    );
    let shim = TestShim::start(&toml, t(DURING)).await;
    let api = raw(shim.addr, &post("/api/creditToken", "a=1")).await;
    assert_eq!(api.status, 503);
    assert!(api.text().contains("<errorCode>Z01000000</errorCode>"));
    let page = raw(shim.addr, &get("/webcollect/settleSelectAction.gw")).await;
    assert_eq!(page.status, 500);
    assert_eq!(page.header("retry-after"), Some("12600"));
}
