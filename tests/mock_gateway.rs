//! The stand-in gateway on its own (error and success shapes, token libraries, link-method
//! settlement with a notification), and end to end behind the shim on config/drill.toml.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use webcollect_shim::clock::ManualClock;
use webcollect_shim::mock_gateway::{self, MockOptions};

use crate::support::*;

/// A stand-in gateway on 127.0.0.1:0 with a manual clock.
struct Mock {
    addr: std::net::SocketAddr,
    clock: ManualClock,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Mock {
    async fn start(at: &str, notify_url: Option<String>) -> Self {
        let clock = ManualClock::new(t(at));
        let options = MockOptions {
            notify_url,
            clock: Some(Arc::new(clock.clone())),
            ..MockOptions::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(mock_gateway::serve(listener, options, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            clock,
            stop: Some(tx),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits (re-raising a panic of its task).
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn from_mock(res: &RawResponse) -> bool {
    res.header("x-webcollect-mock-gateway") == Some("1")
}

/// The text of every `<name>` element, in order (flat: the stand-in writes one per line).
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.lines()
        .filter_map(|l| l.strip_prefix(open.as_str())?.strip_suffix(close.as_str()))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn stand_in_rejects_non_post_and_missing_function_div_like_the_gateway() {
    let mock = Mock::start("2020-04-20T01:23:45+09:00", None).await;

    for path in [
        "/api/creditToken",
        "/api/xp/tradeInfoXp",
        "/test_gateway/creditToken.api",
        "/test_gateway/xp/tradeInfoXp.api",
    ] {
        let res = raw(mock.addr, &get(path)).await;
        // HTTP 200 whatever returnCode says: clients treat any other status as transport failure.
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some("text/xml; charset=UTF-8"));
        assert!(from_mock(&res), "{path}");
        assert_eq!(
            res.text(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z012000001</errorCode>\n<returnDate>20200420012345</returnDate>\n</return>\n",
            "{path}"
        );
    }

    // returnDate follows the injected clock, in JST whatever the clock's zone.
    mock.clock.set(t("2020-04-19T17:30:00Z"));
    for body in [
        "trader_code=123456789&order_no=1",
        "function_div=&order_no=1",
        "",
    ] {
        let res = raw(mock.addr, &post("/api/creditToken", body)).await;
        assert_eq!(res.status, 200);
        assert!(from_mock(&res));
        assert_eq!(
            res.text(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z012000002</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n",
            "{body:?}"
        );
    }

    // Paths that are not the gateway's are 404s, still marked as the stand-in's.
    for request in [
        post("/api/noSuchFunction", "function_div=A08"),
        post("/test_gateway/creditToken", "function_div=A08"),
        get("/"),
    ] {
        let res = raw(mock.addr, &request).await;
        assert_eq!(res.status, 404);
        assert!(from_mock(&res));
    }
    mock.stop().await;
}

#[tokio::test]
async fn stand_in_answers_success_in_the_gateway_shape() {
    let mock = Mock::start("2020-04-20T01:00:00+09:00", None).await;
    let ok = |res: &RawResponse| {
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("text/xml; charset=UTF-8"));
        assert!(from_mock(res));
    };

    // A08 (token settlement): the common elements, then the approval number.
    for path in ["/api/creditToken", "/test_gateway/creditToken.api"] {
        let res = raw(
            mock.addr,
            &post(
                path,
                "function_div=A08&trader_code=123456789&order_no=ORDER-1&token=abcdefghijklmnop&settle_price=1500",
            ),
        )
        .await;
        ok(&res);
        assert_eq!(
            res.text(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n<crdCResCd>020200420010000</crdCResCd>\n</return>\n",
            "{path}"
        );
    }

    // E04 and F04 (trade-info inquiry), both families: resultCount and that many resultData.
    for (path, div) in [
        ("/api/tradeInfo", "E04"),
        ("/test_gateway/tradeInfo.api", "E04"),
        ("/api/xp/tradeInfoXp", "F04"),
        ("/test_gateway/xp/tradeInfoXp.api", "F04"),
    ] {
        let res = raw(
            mock.addr,
            &post(
                path,
                &format!("function_div={div}&trader_code=123456789&order_no=ORDER-%3C1%3E"),
            ),
        )
        .await;
        ok(&res);
        let xml = res.text();
        assert!(xml.starts_with(XML_DECL), "{xml}");
        assert_eq!(elements(&xml, "returnCode"), ["0"], "{xml}");
        assert_eq!(elements(&xml, "errorCode"), [""], "{xml}");
        assert_eq!(elements(&xml, "returnDate"), ["20200420010000"], "{xml}");
        assert_eq!(elements(&xml, "resultCount"), ["2"], "{xml}");
        assert_eq!(xml.matches("<resultData>").count(), 2, "{xml}");
        assert_eq!(xml.matches("</resultData>").count(), 2, "{xml}");
        // The order number is echoed, escaped.
        assert_eq!(
            elements(&xml, "orderNo"),
            ["ORDER-&lt;1&gt;", "ORDER-&lt;1&gt;"]
        );
        assert_eq!(elements(&xml, "settleMethodDiv"), ["0", "0"]);
        assert_eq!(elements(&xml, "settleMethod"), ["3", "9"]);
        assert_eq!(elements(&xml, "statusInfo"), ["4", "40"]);
        assert_eq!(elements(&xml, "settlePrice"), ["1000", "1000"]);
        assert!(xml.ends_with("</resultData>\n</return>\n"), "{xml}");
    }

    // H01: the gateway's address (a documentation address: clearly not real).
    let res = raw(
        mock.addr,
        &post("/api/traderIp", "function_div=H01&trader_code=123456789"),
    )
    .await;
    ok(&res);
    assert_eq!(
        res.text(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n<ipAddress>203.0.113.10</ipAddress>\n</return>\n"
    );

    // E01: the slip URL.
    let res = raw(
        mock.addr,
        &post(
            "/test_gateway/shipmentEntry.api",
            "function_div=E01&order_no=A+1",
        ),
    )
    .await;
    ok(&res);
    assert_eq!(
        elements(&res.text(), "slipUrlPc"),
        ["https://stand-in-gateway.invalid/slip?order_no=A+1"]
    );

    // Any other known function: a plain success.
    let res = raw(mock.addr, &post("/api/cvs1", "function_div=B01")).await;
    ok(&res);
    assert_eq!(
        res.text(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>0</returnCode>\n<errorCode></errorCode>\n<returnDate>20200420010000</returnDate>\n</return>\n"
    );

    // 後払い KAAAU0010 (credit request): accepted, 審査結果 0 (ご利用可).
    let res = raw(
        mock.addr,
        &post(
            "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
            "ycfStrCode=12345678901&orderNo=ATO-1&requestDate=20200420&password=secret",
        ),
    )
    .await;
    ok(&res);
    assert_eq!(
        res.text(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<results>\n<returnCode>0</returnCode>\n<returnDate>20200420010000</returnDate>\n<orderNo>ATO-1</orderNo>\n<result>0</result>\n<errors></errors>\n</results>\n"
    );
    mock.stop().await;
}

#[tokio::test]
async fn stand_in_token_libraries_issue_tokens() {
    let mock = Mock::start("2020-04-20T01:00:00+09:00", None).await;
    for (path, modal) in [
        ("/api/token/js/embeddedTokenLib.js", false),
        ("/api/token/js/tokenlib.js", true),
        ("/test_gateway/token/js/embeddedTokenLib.js", false),
        ("/test_gateway/token/js/tokenlib.js", true),
    ] {
        let res = raw(mock.addr, &get(path)).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(
            res.header("content-type"),
            Some("application/javascript; charset=UTF-8")
        );
        assert!(from_mock(&res));
        let js = res.text();
        assert!(js.contains("STAND-IN"), "{js}");
        assert!(js.contains("window.WebcollectTokenLib = lib;"), "{js}");
        assert!(
            js.contains("function createToken(createTokenInfo, success, failure)"),
            "{js}"
        );
        // Asynchronous success with a 16-character token.
        assert!(js.contains("success({ token: newToken() })"), "{js}");
        assert!(js.contains("for (i = 0; i < 16; i++)"), "{js}");
        assert!(js.contains("var DELAY_MS = 0;"), "{js}");
        assert!(!js.contains("__"), "placeholder left in {path}");
        assert!(
            js.contains(&format!("var MODAL = {modal};")),
            "{path}: {js}"
        );
        assert!(js.contains("create-token-launch"), "{js}");
        assert!(js.contains("webcollect-token"), "{js}");
    }
    // Scripts are fetched, never posted to.
    let res = raw(mock.addr, &post("/api/token/js/tokenlib.js", "a=1")).await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
    mock.stop().await;
}

/// A merchant's notification receiver that records every request body.
async fn receiver() -> (Upstream, Arc<Mutex<Vec<(String, String)>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let upstream = Upstream::start(move |req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let content_type = req
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            seen.lock()
                .unwrap()
                .push((content_type, String::from_utf8(body.to_vec()).unwrap()));
            Response::new(full("OK"))
        }
    })
    .await;
    (upstream, bodies)
}

#[tokio::test]
async fn link_settlement_sends_a_payment_result_notification() {
    let (merchant, bodies) = receiver().await;
    let mock = Mock::start(
        "2020-04-20T01:30:00+09:00",
        Some(format!("{}/yamato/notify", merchant.url())),
    )
    .await;

    // The merchant's checkout form, as a browser posts it.
    let checkout = "TRS_MAP=V_W02&trader_code=123456789&order_no=ORDER-7&goods_name=Tea&settle_price=1500&buyer_name_kanji=Yamada&success_url=https%3A%2F%2Fshop.example%2Fdone&failure_url=https%3A%2F%2Fshop.example%2Ffail&cancel_url=https%3A%2F%2Fshop.example%2Fcart";
    let landing = raw(
        mock.addr,
        &post("/webcollect/settleSelectAction.gw", checkout),
    )
    .await;
    assert_eq!(landing.status, 200);
    assert_eq!(
        landing.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert!(from_mock(&landing));
    let html = landing.text();
    assert!(html.contains("stand-in gateway, NOT Yamato"), "{html}");
    assert!(html.contains("<dd>ORDER-7</dd>"), "{html}");
    assert!(html.contains("<dd>1500円</dd>"), "{html}");
    assert!(
        html.contains("<input type=\"hidden\" name=\"mock_step\" value=\"settle\">"),
        "{html}"
    );
    assert!(
        html.contains(
            "<input type=\"hidden\" name=\"success_url\" value=\"https://shop.example/done\">"
        ),
        "{html}"
    );
    assert!(html.contains("<option value=\"14\">"), "{html}");
    assert!(
        html.contains("href=\"https://shop.example/cart\""),
        "{html}"
    );
    // Showing the page notifies nobody.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(bodies.lock().unwrap().is_empty());

    // The buyer presses 決済する, having picked 楽天カード (settle_method 14, the notice's new value).
    mock.clock.set(t("2020-04-20T01:31:00+09:00"));
    let settle = "mock_step=settle&trader_code=123456789&order_no=ORDER-7&goods_name=Tea&settle_price=1500&success_url=https%3A%2F%2Fshop.example%2Fdone&settle_method=14";
    let done = raw(
        mock.addr,
        &post("/webcollect/settleSelectAction.gw", settle),
    )
    .await;
    assert_eq!(done.status, 200);
    assert!(from_mock(&done));
    let html = done.text();
    assert!(html.contains("決済が完了しました"), "{html}");
    assert!(
        html.contains("決済結果通知を加盟店へ送信しています"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://shop.example/done\" id=\"mock-return\">"),
        "{html}"
    );

    // The notification arrives in the background.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bodies.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = bodies.lock().unwrap().clone();
    assert_eq!(
        got,
        [(
            "application/x-www-form-urlencoded".to_string(),
            "trader_code=123456789&order_no=ORDER-7&settle_price=1500&settle_date=20200420013100&settle_result=1&settle_detail=4&settle_method=14".to_string()
        )]
    );
    let seen = merchant.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/yamato/notify");

    // A GET never settles, and an unknown settle_method falls back to VISA (9).
    let res = raw(
        mock.addr,
        &get("/test_gateway/settleSelectAction.gw?mock_step=settle&order_no=X"),
    )
    .await;
    assert!(res.text().contains("決済する（スタンドイン）"));
    let res = raw(
        mock.addr,
        &post(
            "/test_gateway/settleSelectAction.gw",
            "mock_step=settle&trader_code=123456789&order_no=ORDER-8&settle_price=1&settle_method=99",
        ),
    )
    .await;
    assert!(res.text().contains("settle_method: 9"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bodies.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no second notification"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(bodies.lock().unwrap()[1].1.ends_with("&settle_method=9"));
    assert_eq!(merchant.seen().len(), 2);
    mock.stop().await;
}

#[tokio::test]
async fn without_a_notify_url_settlement_notifies_nobody() {
    let mock = Mock::start("2020-04-20T01:30:00+09:00", None).await;
    let res = raw(
        mock.addr,
        &post(
            "/webcollect/settleSelectAction.gw",
            "mock_step=settle&order_no=1&settle_price=100",
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.text().contains("送信先が設定されていません"));
    mock.stop().await;
}

/// config/drill.toml with its stand-in upstream replaced by `mock` and ephemeral listeners.
fn drill_config(mock: &str) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/drill.toml"),
    )
    .unwrap();
    assert!(text.contains("\"http://127.0.0.1:8081\""));
    let text = text
        .replace("\"http://127.0.0.1:8081\"", &format!("\"{mock}\""))
        .replace("\"127.0.0.1:8080\"", "\"127.0.0.1:0\"")
        .replace("\"127.0.0.1:9090\"", "\"127.0.0.1:0\"");
    format!("{text}\n[server]\nwatch_config = false\n")
}

const A08: &str = "function_div=A08&trader_code=123456789&order_no=ORDER-1&token=abcdefghijklmnop&settle_price=1500&device_div=2&pay_way=1";
const E04: &str = "function_div=E04&trader_code=123456789&order_no=ORDER-1";
const LINK: &str = "TRS_MAP=V_W02&trader_code=123456789&order_no=ORDER-1&goods_name=Tea&settle_price=1500&success_url=https%3A%2F%2Fshop.example%2Fdone";

/// End to end: a merchant-like client runs A08, E04 and a link-method POST through the shim
/// (on the shipped drill config) in front of the stand-in, before, during and after the drill
/// window, and sees success, maintenance, success.
#[tokio::test]
async fn merchant_sees_success_then_maintenance_then_success_through_the_shim() {
    let mock = Mock::start("2020-04-20T01:00:00+09:00", None).await;
    // Real time is 2026; drill.toml's clock starts at 2020-04-20 01:00 JST and runs 60×.
    let shim = TestShim::start(&drill_config(&mock.url()), t("2026-11-27T12:00:00Z")).await;

    let merchant = || {
        let addr = shim.addr;
        async move {
            let a08 = raw(addr, &post("/api/creditToken", A08)).await;
            let e04 = raw(addr, &post("/api/tradeInfo", E04)).await;
            let f04 = raw(
                addr,
                &post(
                    "/test_gateway/xp/tradeInfoXp.api",
                    &E04.replace("E04", "F04"),
                ),
            )
            .await;
            let link = raw(addr, &post("/webcollect/settleSelectAction.gw", LINK)).await;
            let token = raw(addr, &get("/api/token/js/embeddedTokenLib.js")).await;
            (a08, e04, f04, link, token)
        }
    };
    type Answers = (
        RawResponse,
        RawResponse,
        RawResponse,
        RawResponse,
        RawResponse,
    );
    let passes = |phase: &str, (a08, e04, f04, link, token): &Answers| {
        for res in [a08, e04, f04, link, token] {
            assert_eq!(res.status, 200, "{phase}: {}", res.text());
            assert!(from_mock(res), "{phase}: not from the stand-in");
            assert_eq!(res.header("x-webcollect-shim"), None, "{phase}");
        }
        assert_eq!(elements(&a08.text(), "returnCode"), ["0"], "{phase}");
        assert_eq!(elements(&a08.text(), "crdCResCd").len(), 1, "{phase}");
        assert_eq!(elements(&e04.text(), "resultCount"), ["2"], "{phase}");
        assert_eq!(elements(&f04.text(), "settleMethod"), ["3", "9"], "{phase}");
        assert!(link.text().contains("<dd>ORDER-1</dd>"), "{phase}");
        assert!(
            token.text().contains("success({ token: newToken() })"),
            "{phase}"
        );
    };

    // 01:00 JST (drill): before the window, everything reaches the stand-in.
    passes("before", &merchant().await);

    // 90 real seconds later the drill clock reads 02:30 JST: inside the window.
    shim.clock.advance(TimeDelta::seconds(90));
    let (a08, e04, f04, link, token) = merchant().await;
    let maintenance_xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n";
    for res in [&a08, &e04, &f04] {
        assert_eq!(res.status, 200);
        assert!(
            !from_mock(res),
            "the stand-in was contacted during the window"
        );
        assert_eq!(res.header("x-webcollect-shim"), Some("maintenance"));
        assert_eq!(res.text(), maintenance_xml);
    }
    assert_eq!(link.status, 503);
    assert!(!from_mock(&link));
    assert!(
        link.text()
            .contains("クロネコwebコレクト メンテナンスのお知らせ")
    );
    assert!(link.text().contains("4月20日(月) 2時00分～6時00分"));
    // 3h30m of drill time left at 60×: 210 real seconds.
    assert_eq!(link.header("retry-after"), Some("210"));
    assert_eq!(token.status, 200);
    assert!(!from_mock(&token));
    assert!(token.text().contains("Z01000000"));

    // The 後払い API is not in the notice's window: it still reaches the stand-in.
    let atobarai = raw(
        shim.addr,
        &post(
            "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
            "ycfStrCode=12345678901&orderNo=ATO-1",
        ),
    )
    .await;
    assert!(from_mock(&atobarai));
    assert_eq!(elements(&atobarai.text(), "returnCode"), ["0"]);

    // 210 more real seconds: 06:00 JST, the window's (exclusive) end. Success again.
    shim.clock.advance(TimeDelta::seconds(210));
    passes("after", &merchant().await);

    shim.stop().await;
    mock.stop().await;
}

/// Every path family of kuroneko-webcollect.md §1 is routed by config/drill.toml to the
/// stand-in, which answers it (outside the window).
#[tokio::test]
async fn drill_config_routes_every_path_family_to_the_stand_in() {
    let mock = Mock::start("2020-04-20T01:00:00+09:00", None).await;
    let shim = TestShim::start(&drill_config(&mock.url()), t("2026-11-27T12:00:00Z")).await;
    for request in [
        post("/api/credit", "function_div=A01"),
        post("/api/creditToken", "function_div=A08"),
        post("/api/cvs1", "function_div=B01"),
        post("/api/e_money1", "function_div=C01"),
        post("/api/bank1", "function_div=D01"),
        post("/api/shipmentEntry", "function_div=E01"),
        post("/api/tradeInfo", "function_div=E04"),
        post("/api/regular", "function_div=G01"),
        post("/api/traderIp", "function_div=H01"),
        post("/api/paypaySettle", "function_div=L01"),
        post("/api/xp/authXp", "function_div=F01"),
        post("/api/xp/tradeInfoXp", "function_div=F04"),
        post("/test_gateway/creditToken.api", "function_div=A08"),
        post("/test_gateway/tradeInfo.api", "function_div=E04"),
        post("/test_gateway/xp/shipmentEntryXp.api", "function_div=F02"),
        post("/webcollect/settleSelectAction.gw", LINK),
        post("/test_gateway/settleSelectAction.gw", LINK),
        get("/api/token/js/embeddedTokenLib.js"),
        get("/api/token/js/tokenlib.js"),
        get("/test_gateway/token/js/embeddedTokenLib.js"),
        get("/test_gateway/token/js/tokenlib.js"),
        post(
            "/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action",
            "orderNo=1",
        ),
        post(
            "/kuroneko-atobarai-api/KAAST0010APIAction_execute.action",
            "orderNo=1",
        ),
    ] {
        let res = raw(shim.addr, &request).await;
        let line =
            String::from_utf8_lossy(&request[..request.iter().position(|b| *b == b'\r').unwrap()])
                .into_owned();
        assert_eq!(res.status, 200, "{line}: {}", res.text());
        assert!(from_mock(&res), "{line}");
        if res.header("content-type") == Some("text/xml; charset=UTF-8") {
            assert_eq!(elements(&res.text(), "returnCode"), ["0"], "{line}");
        }
    }
    shim.stop().await;
    mock.stop().await;
}
