//! Browser fidelity (SPEC §4.2–4.3): the token-library stand-ins and the maintenance page as a
//! shopper's browser runs them, in Debian's headless Chromium (`/usr/bin/chromium`) driven over
//! CDP by chromiumoxide. Merchant pages come from a harness server on their own port.
//!
//! With `CI` set a missing Chromium fails these tests; elsewhere they print a `SKIPPED` line.
//! `WEBCOLLECT_SHIM_SCREENSHOTS=<dir>` also writes `page-390.png`, `page-1280.png` and
//! `modal.png` there (the README's screenshots come from `docs/screenshots/`).

use http::{Request, Response};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::support::browser::*;
use crate::support::*;

const MESSAGE: &str = "メンテナンス中です。時間をおいて再度アクセスしてください。";

const EMBEDDED_PATHS: [&str; 2] = [
    "/api/token/js/embeddedTokenLib.js",
    "/test_gateway/token/js/embeddedTokenLib.js",
];
const PAGE_PATH: &str = "/webcollect/settleSelectAction.gw";

/// What the upstream ("the real gateway") serves for the token libraries outside a window.
const UPSTREAM_JS: &str = "/* upstream token library */\nwindow.WebcollectTokenLib = {\n  origin: \"upstream\",\n  createToken: function (info, success, failure) {\n    setTimeout(function () { success({ token: \"UPSTREAMTOKEN001\" }); }, 0);\n  }\n};\n";
/// What the upstream serves for the link-method page outside a window.
const UPSTREAM_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"UTF-8\"><title>クロネコwebコレクト お支払い方法の選択</title></head>\n<body><h1 id=\"upstream\">お支払い方法の選択</h1></body></html>\n";

// === Harness servers ===

/// The shim's harness config plus the test gateway's token paths (same upstream).
fn config_with_test_gateway(upstream: &str) -> String {
    format!(
        "{}\n[[routes]]\nid = \"test-token-js\"\npaths = [\"/test_gateway/token/js/embeddedTokenLib.js\", \"/test_gateway/token/js/tokenlib.js\"]\nkind = \"token_js\"\nservice = \"webcollect.credit_card.token\"\nupstream = \"gw\"\n",
        config(upstream)
    )
}

/// The gateway as it is outside a window: a token library and a link-method page.
async fn gateway() -> Upstream {
    Upstream::start(|req: Request<Incoming>| async move {
        let path = req.uri().path().to_string();
        if path.ends_with(".js") {
            Response::builder()
                .header("content-type", "application/javascript; charset=UTF-8")
                .body(full(UPSTREAM_JS))
                .unwrap()
        } else if path.starts_with("/webcollect/") {
            html(UPSTREAM_PAGE.to_string())
        } else {
            Response::builder()
                .status(status(404))
                .body(full("not found"))
                .unwrap()
        }
    })
    .await
}

// === Tests ===

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbeddedOutcome {
    success: Vec<String>,
    failure: Vec<Failure>,
    failure_before_return: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    error_info: Vec<ErrorInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorInfo {
    error_item: String,
    error_code: String,
    error_msg: String,
}

#[tokio::test]
async fn embedded_stand_in_calls_failure_with_the_maintenance_error() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = gateway().await;
    let shim = TestShim::start(&config_with_test_gateway(&upstream.url()), t(DURING)).await;
    let merchant = merchant(shim.url("")).await;

    for lib in EMBEDDED_PATHS {
        let mut tab = chromium.tab(1280, 800, false).await;
        let page_url = format!("{}/embedded?lib={lib}", merchant.url());
        tab.goto(&page_url).await;
        tab.wait_for("the failure callback", "shimTest.failure.length > 0")
            .await;
        // Let a stray success or second failure show up before reading the outcome.
        tokio::time::sleep(QUIET).await;
        let outcome: EmbeddedOutcome = tab.eval("window.shimTest").await;

        assert!(outcome.success.is_empty(), "{lib}: success was called");
        assert_eq!(outcome.failure.len(), 1, "{lib}: {outcome:?}");
        assert_eq!(
            outcome.failure_before_return,
            Some(false),
            "{lib}: failure must be called asynchronously"
        );
        let info = &outcome.failure[0].error_info;
        assert_eq!(info.len(), 1, "{lib}: {outcome:?}");
        assert_eq!(info[0].error_code, "Z01000000", "{lib}");
        assert_eq!(info[0].error_msg, MESSAGE, "{lib}");
        assert_eq!(info[0].error_item, "", "{lib}");

        let lib_url = shim.url(lib);
        assert_eq!(tab.request_urls().await, [page_url, lib_url.clone()]);
        let res = tab.response(&lib_url);
        assert_eq!(res.response.status, 200);
        assert_eq!(
            header(&res.response.headers, "x-webcollect-shim").as_deref(),
            Some("maintenance")
        );
        assert_eq!(
            header(&res.response.headers, "content-type").as_deref(),
            Some("application/javascript; charset=UTF-8")
        );
        tab.page.close().await.unwrap();
    }
    assert_eq!(upstream.connections(), 0);
    chromium.close().await;
}

#[derive(Debug, Deserialize)]
struct MessageBox {
    visible: bool,
    color: String,
    bottom: f64,
    #[serde(rename = "cardTop")]
    card_top: f64,
}

#[tokio::test]
async fn modal_stand_in_shows_the_message_in_red_and_issues_no_token() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = gateway().await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    let merchant = merchant(shim.url("")).await;
    let (width, height) = (390, 844);
    let mut tab = chromium.tab(width, height, true).await;
    let page_url = format!("{}/modal?lib=/api/token/js/tokenlib.js", merchant.url());
    tab.goto(&page_url).await;

    // Open the form and fill it in, the way a shopper does.
    tab.open_card_form().await;
    let card_no = labelled("カード番号");
    assert!(
        !tab.eval::<bool>(&visible(&element_with_text(MESSAGE)))
            .await,
        "the message shows before the shopper presses continue"
    );
    tab.fill_card_form().await;
    tab.press("カード情報入力完了").await;
    let message = element_with_text(MESSAGE);
    tab.wait_for("the maintenance message", &visible(&message))
        .await;
    let shown: MessageBox = tab
        .eval(&format!(
            "(e => ({{ visible: {}, color: getComputedStyle(e).color, \
             bottom: e.getBoundingClientRect().bottom, cardTop: {card_no}.getBoundingClientRect().top }}))({message})",
            visible("e")
        ))
        .await;
    assert!(shown.visible);
    assert_red("the message", &shown.color);
    assert!(
        shown.bottom <= shown.card_top,
        "the message must sit above the fields: {shown:?}"
    );
    tab.screenshot("modal.png", width, height, true).await;

    // No token, no callback, no request: not even a late one.
    tokio::time::sleep(QUIET).await;
    let token: String = tab
        .eval("document.getElementsByName('webcollect-token')[0].value")
        .await;
    assert_eq!(token, "", "a token was written");
    assert_eq!(
        tab.eval::<u32>("window.tokenCalls").await,
        0,
        "onToken was called"
    );
    let lib_url = shim.url("/api/token/js/tokenlib.js");
    assert_eq!(tab.request_urls().await, [page_url.clone(), lib_url]);
    for request in &tab.requests {
        assert!(
            !format!("{request:?}").contains(CARD_NO),
            "a request carried the card number: {request:?}"
        );
    }
    let resources: Vec<String> = tab.eval("performance.getEntries().map(e => e.name)").await;
    assert!(
        resources.iter().all(|r| !r.contains(CARD_NO)),
        "{resources:?}"
    );

    // 「戻る」 closes the form, and no card data stays in the page.
    tab.press("戻る").await;
    tab.wait_for("the form to close", &format!("!{}", visible(&card_no)))
        .await;
    assert!(!tab.eval::<bool>(&visible(&message)).await);
    let lingering: bool = tab
        .eval(&format!(
            "Array.from(document.querySelectorAll('input')).some(i => i.value.includes({CARD_NO:?}))"
        ))
        .await;
    assert!(
        !lingering,
        "the card number stays in the page after 「戻る」"
    );

    // Opening it again starts afresh.
    tab.open_card_form().await;
    assert_eq!(tab.eval::<String>(&format!("{card_no}.value")).await, "");
    assert!(!tab.eval::<bool>(&visible(&message)).await);

    assert_eq!(tab.request_urls().await.len(), 2, "{:?}", tab.requests);
    assert_eq!(upstream.connections(), 0);
    chromium.close().await;
}

#[derive(Debug, Deserialize)]
struct WindowBox {
    border: String,
    width: f64,
}

#[tokio::test]
async fn maintenance_page_reads_correctly_at_phone_and_desktop_width() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = gateway().await;
    let shim = TestShim::start(&config(&upstream.url()), t(DURING)).await;
    let url = shim.url(PAGE_PATH);
    let mut tab = chromium.tab(1280, 800, false).await;
    tab.goto(&url).await;

    let text: String = tab.eval("document.body.innerText").await;
    for needle in [
        "クロネコwebコレクト メンテナンスのお知らせ",
        "サーバーメンテナンス日時",
        "4月20日(月) 2時00分～6時00分",
        "0120-69-5090",
    ] {
        assert!(text.contains(needle), "page text lacks {needle:?}:\n{text}");
    }
    assert_eq!(
        tab.eval::<String>("document.title").await,
        "クロネコwebコレクト メンテナンスのお知らせ"
    );
    assert_eq!(tab.eval::<String>("document.characterSet").await, "UTF-8");

    // The window is shown in a red-bordered box.
    let boxed: WindowBox = tab
        .eval(&format!(
            "(e => {{ while (e && parseFloat(getComputedStyle(e).borderTopWidth) === 0) e = e.parentElement; \
             return e && {{ border: getComputedStyle(e).borderTopColor, width: parseFloat(getComputedStyle(e).borderTopWidth) }}; }})({})",
            element_with_text("4月20日(月) 2時00分～6時00分")
        ))
        .await;
    assert!(boxed.width >= 1.0, "{boxed:?}");
    assert_red("the window's border", &boxed.border);

    // Self-contained: the page is the only request, and nothing else loads afterwards.
    assert_eq!(tab.request_urls().await, std::slice::from_ref(&url));
    let res = tab.response(&url);
    assert_eq!(res.response.status, 503);
    assert_eq!(
        header(&res.response.headers, "x-webcollect-shim").as_deref(),
        Some("maintenance")
    );
    let resources: u32 = tab
        .eval("performance.getEntriesByType('resource').length")
        .await;
    assert_eq!(resources, 0);

    for (width, height, mobile, shot) in [
        (1280, 800, false, Some("page-1280.png")),
        (768, 1024, true, None),
        (390, 844, true, Some("page-390.png")),
        (320, 640, true, None),
    ] {
        tab.viewport(width, height, mobile).await;
        let scroll_width: i64 = tab.eval("document.documentElement.scrollWidth").await;
        assert!(
            scroll_width <= width,
            "horizontal overflow at {width}px: scrollWidth {scroll_width}"
        );
        if let Some(name) = shot {
            tab.screenshot(name, width, height, mobile).await;
        }
    }
    assert_eq!(tab.request_urls().await, [url]);
    assert_eq!(upstream.connections(), 0);
    chromium.close().await;
}

#[derive(Debug, Deserialize)]
struct UpstreamOutcome {
    origin: Option<String>,
    success: Vec<String>,
    failure: Vec<Failure>,
}

#[tokio::test]
async fn outside_a_window_the_browser_gets_the_upstream_bytes() {
    let Some(chromium) = Chromium::launch().await else {
        return;
    };
    let upstream = gateway().await;
    let shim = TestShim::start(&config_with_test_gateway(&upstream.url()), t(AFTER)).await;
    let merchant = merchant(shim.url("")).await;
    let mut expected_upstream = 0;

    for at in [AFTER, BEFORE] {
        shim.clock.set(t(at));
        for lib in EMBEDDED_PATHS
            .into_iter()
            .chain(["/api/token/js/tokenlib.js"])
        {
            let mut tab = chromium.tab(1280, 800, false).await;
            let page_url = format!("{}/embedded?lib={lib}", merchant.url());
            tab.goto(&page_url).await;
            tab.wait_for("the success callback", "shimTest.success.length > 0")
                .await;
            let outcome: UpstreamOutcome = tab.eval("window.shimTest").await;
            assert_eq!(outcome.origin.as_deref(), Some("upstream"), "{at} {lib}");
            assert_eq!(outcome.success, ["UPSTREAMTOKEN001"], "{at} {lib}");
            assert!(outcome.failure.is_empty(), "{at} {lib}");

            let lib_url = shim.url(lib);
            assert_eq!(tab.response_body(&lib_url).await, UPSTREAM_JS, "{at} {lib}");
            let res = tab.response(&lib_url);
            assert_eq!(header(&res.response.headers, "x-webcollect-shim"), None);
            expected_upstream += 1;
            tab.page.close().await.unwrap();
        }

        let mut tab = chromium.tab(1280, 800, false).await;
        let url = shim.url(PAGE_PATH);
        tab.goto(&url).await;
        assert_eq!(tab.response_body(&url).await, UPSTREAM_PAGE, "{at}");
        assert_eq!(tab.response(&url).response.status, 200);
        assert_eq!(
            tab.eval::<String>("document.title").await,
            "クロネコwebコレクト お支払い方法の選択"
        );
        expected_upstream += 1;
        tab.page.close().await.unwrap();
    }

    let seen = upstream.seen();
    assert_eq!(seen.len(), expected_upstream, "{seen:?}");
    assert!(
        seen.iter()
            .any(|s| s.target == "/test_gateway/token/js/embeddedTokenLib.js")
    );
    chromium.close().await;
}
