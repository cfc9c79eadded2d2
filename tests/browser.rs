//! Browser fidelity (SPEC §4.2–4.3): the token-library stand-ins and the maintenance page as a
//! shopper's browser runs them, in Debian's headless Chromium (`/usr/bin/chromium`) driven over
//! CDP by chromiumoxide. Merchant pages come from a harness server on their own port.
//!
//! With `CI` set a missing Chromium fails these tests; elsewhere they print a `SKIPPED` line.
//! `WEBCOLLECT_SHIM_SCREENSHOTS=<dir>` also writes `page-390.png`, `page-1280.png` and
//! `modal.png` there (the README's screenshots come from `docs/screenshots/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::network::{
    EventRequestWillBeSent, EventResponseReceived, GetResponseBodyParams, Headers,
};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::stream::{BoxStream, StreamExt};
use http::{Request, Response};
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const SCREENSHOTS_ENV: &str = "WEBCOLLECT_SHIM_SCREENSHOTS";
const MESSAGE: &str = "メンテナンス中です。時間をおいて再度アクセスしてください。";
const CARD_NO: &str = "4111111111111111";
/// How long the network log must stay quiet before it is read: requests the page would make
/// late (lazy resources, timers, a callback) have that long to show up.
const QUIET: Duration = Duration::from_millis(300);
/// Upper bound for anything the page is expected to do.
const PATIENCE: Duration = Duration::from_secs(10);

const EMBEDDED_PATHS: [&str; 2] = [
    "/api/token/js/embeddedTokenLib.js",
    "/test_gateway/token/js/embeddedTokenLib.js",
];
const PAGE_PATH: &str = "/webcollect/settleSelectAction.gw";

/// What the upstream ("the real gateway") serves for the token libraries outside a window.
const UPSTREAM_JS: &str = "/* upstream token library */\nwindow.WebcollectTokenLib = {\n  origin: \"upstream\",\n  createToken: function (info, success, failure) {\n    setTimeout(function () { success({ token: \"UPSTREAMTOKEN001\" }); }, 0);\n  }\n};\n";
/// What the upstream serves for the link-method page outside a window.
const UPSTREAM_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"UTF-8\"><title>クロネコwebコレクト お支払い方法の選択</title></head>\n<body><h1 id=\"upstream\">お支払い方法の選択</h1></body></html>\n";

// === Chromium ===

/// `CI` set to anything but empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// A headless Chromium with a fresh profile; one per test.
struct Chromium {
    browser: Browser,
    handler: JoinHandle<()>,
    profile: Profile,
}

/// The temporary `--user-data-dir`, removed when dropped.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Chromium {
    /// Launches Chromium, or returns `None` (after saying so) when it is not installed outside CI.
    async fn launch() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() {
            assert!(
                !in_ci(),
                "{CHROMIUM} is missing: CI must run the browser tests (.ci/run installs chromium and fonts-noto-cjk)"
            );
            // Straight to stderr: libtest would swallow eprintln! for a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: chromium not installed (apt-get install chromium fonts-noto-cjk)"
            );
            return None;
        }
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        // Under target/tmp: a profile left behind by a test that panicked goes with `cargo clean`.
        let profile = Profile(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "chromium-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        )));
        let _ = std::fs::remove_dir_all(&profile.0);
        std::fs::create_dir_all(&profile.0).unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .user_data_dir(&profile.0)
            // Root in a container: Chromium's sandbox cannot start.
            .no_sandbox()
            // Each tab sets its own device metrics.
            .viewport(None)
            // Every load must reach the shim: a cached library would hide a window edge.
            .disable_cache()
            // Generous: CI's two cores also run the rest of the suite.
            .launch_timeout(PATIENCE * 3)
            .args([
                "headless",
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "disable-default-apps",
                "disable-features=Translate,OptimizationHints,MediaRouter",
            ])
            // No network but loopback: any name lookup fails, so nothing can leave the machine
            // (and an external request still shows up in the network log as a failure).
            .arg((
                "host-resolver-rules",
                "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            ))
            .build()
            .unwrap();
        let (browser, mut handler) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("cannot launch {CHROMIUM}: {e}"));
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if event.is_err() {
                    break;
                }
            }
        });
        Some(Self {
            browser,
            handler,
            profile,
        })
    }

    /// A blank tab of `width`×`height` CSS pixels that records its network traffic.
    async fn tab(&self, width: i64, height: i64, mobile: bool) -> Tab {
        let page = self.browser.new_page("about:blank").await.unwrap();
        let requests = page
            .event_listener::<EventRequestWillBeSent>()
            .await
            .unwrap()
            .map(Net::Request);
        let responses = page
            .event_listener::<EventResponseReceived>()
            .await
            .unwrap()
            .map(Net::Response);
        let tab = Tab {
            page,
            events: futures::stream::select(requests, responses).boxed(),
            requests: Vec::new(),
            responses: Vec::new(),
        };
        tab.viewport(width, height, mobile).await;
        tab
    }

    async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        let _ = self.handler.await;
        drop(self.profile);
    }
}

enum Net {
    Request(Arc<EventRequestWillBeSent>),
    Response(Arc<EventResponseReceived>),
}

/// One page plus everything it sent and received (CDP Network domain).
struct Tab {
    page: Page,
    events: BoxStream<'static, Net>,
    requests: Vec<Arc<EventRequestWillBeSent>>,
    responses: Vec<Arc<EventResponseReceived>>,
}

impl Tab {
    async fn viewport(&self, width: i64, height: i64, mobile: bool) {
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(
                width, height, 1.0, mobile,
            ))
            .await
            .unwrap();
    }

    async fn goto(&self, url: &str) {
        self.page
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// Evaluates a JS expression (promises are awaited) and deserialises its value.
    async fn eval<T: DeserializeOwned>(&self, js: &str) -> T {
        self.page
            .evaluate_expression(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("result of {js}: {e}"))
    }

    /// Waits (bounded) until the JS expression `condition` is truthy.
    async fn wait_for(&self, what: &str, condition: &str) {
        let js = format!(
            "new Promise(resolve => {{ const t0 = Date.now(); (function poll() {{ let ok = false; \
             try {{ ok = !!({condition}); }} catch (e) {{}} \
             if (ok) resolve(true); else if (Date.now() - t0 > {}) resolve(false); \
             else setTimeout(poll, 20); }})(); }})",
            PATIENCE.as_millis()
        );
        assert!(self.eval::<bool>(&js).await, "timed out waiting for {what}");
    }

    /// Collects network events until none has arrived for [`QUIET`].
    async fn settle(&mut self) {
        while let Ok(Some(event)) = tokio::time::timeout(QUIET, self.events.next()).await {
            match event {
                Net::Request(r) => self.requests.push(r),
                Net::Response(r) => self.responses.push(r),
            }
        }
    }

    /// URLs of every request the tab has made so far, in order.
    async fn request_urls(&mut self) -> Vec<String> {
        self.settle().await;
        self.requests
            .iter()
            .map(|r| r.request.url.clone())
            .collect()
    }

    fn response(&self, url: &str) -> Arc<EventResponseReceived> {
        self.responses
            .iter()
            .find(|r| r.response.url == url)
            .cloned()
            .unwrap_or_else(|| panic!("no response for {url}"))
    }

    /// The body the browser received for `url`, exactly.
    async fn response_body(&mut self, url: &str) -> String {
        self.settle().await;
        let id = self.response(url).request_id.clone();
        let body = self
            .page
            .execute(GetResponseBodyParams::new(id))
            .await
            .unwrap()
            .result;
        assert!(!body.base64_encoded, "{url}: expected a text body");
        body.body
    }

    /// Writes a full-page PNG to `$WEBCOLLECT_SHIM_SCREENSHOTS/name` when that is set.
    async fn screenshot(&self, name: &str, width: i64, height: i64, mobile: bool) {
        let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) else {
            return;
        };
        // Grow the viewport to the document so the whole page is in one frame.
        let full: i64 = self
            .eval("Math.ceil(document.documentElement.scrollHeight)")
            .await;
        self.viewport(width, full.max(height), mobile).await;
        let png = self
            .page
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .build(),
            )
            .await
            .unwrap();
        self.viewport(width, height, mobile).await;
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

fn header(headers: &Headers, name: &str) -> Option<String> {
    headers
        .inner()
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str().map(str::to_string))
}

/// Parses `rgb(r, g, b)` / `rgba(r, g, b, a)`.
fn rgb(css: &str) -> (u8, u8, u8) {
    let inner = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')');
    let c: Vec<u8> = inner
        .split(',')
        .take(3)
        .map(|n| n.trim().parse().unwrap_or_else(|_| panic!("colour {css}")))
        .collect();
    (c[0], c[1], c[2])
}

fn assert_red(what: &str, css: &str) {
    let (r, g, b) = rgb(css);
    assert!(r >= 160 && g <= 80 && b <= 80, "{what} is {css}, not red");
}

// === Harness servers ===

/// The shim's harness config plus the test gateway's token paths (same upstream).
fn config_with_test_gateway(upstream: &str) -> String {
    format!(
        "{}\n[[routes]]\nid = \"test-token-js\"\npaths = [\"/test_gateway/token/js/embeddedTokenLib.js\", \"/test_gateway/token/js/tokenlib.js\"]\nkind = \"token_js\"\nservice = \"webcollect.credit_card.token\"\nupstream = \"gw\"\n",
        config(upstream)
    )
}

fn html(body: String) -> Response<TestBody> {
    Response::builder()
        .header("content-type", "text/html; charset=UTF-8")
        .body(full(body))
        .unwrap()
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

/// A merchant's checkout pages, loading the token libraries from `shim`:
/// `/embedded?lib=PATH` calls `createToken` at once, `/modal?lib=PATH` is a modal checkout.
async fn merchant(shim: String) -> Upstream {
    Upstream::start(move |req: Request<Incoming>| {
        let shim = shim.clone();
        async move {
            let lib = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("lib="))
                .unwrap_or_default()
                .to_string();
            match req.uri().path() {
                "/embedded" => html(embedded_page(&shim, &lib)),
                "/modal" => html(modal_page(&shim, &lib)),
                _ => Response::builder()
                    .status(status(404))
                    .body(full("not found"))
                    .unwrap(),
            }
        }
    })
    .await
}

fn embedded_page(shim: &str, lib: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="ja"><head><meta charset="UTF-8"><link rel="icon" href="data:,"><title>checkout</title>
<script src="{shim}{lib}"></script></head>
<body><h1>ご注文手続き</h1>
<script>
  window.shimTest = {{ success: [], failure: [], failureBeforeReturn: null, origin: null }};
  window.shimTest.origin = window.WebcollectTokenLib.origin || null;
  var returned = false;
  WebcollectTokenLib.createToken(
    {{ traderCode: "123456789", authDiv: "2", optServDiv: "00", checkSum: "0",
       cardNo: "{CARD_NO}", cardOwner: "TARO YAMATO", cardExp: "1230", securityCode: "123" }},
    function (response) {{ shimTest.success.push(response.token || ""); }},
    function (response) {{
      if (shimTest.failureBeforeReturn === null) {{ shimTest.failureBeforeReturn = !returned; }}
      shimTest.failure.push(response);
    }});
  returned = true;
</script></body></html>
"#
    )
}

fn modal_page(shim: &str, lib: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="ja"><head><meta charset="UTF-8">
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ご注文手続き</title>
<style>
  body {{ font-family: "Noto Sans CJK JP", sans-serif; margin: 0; padding: 24px 16px; color: #333; }}
  #create-token-launch {{ font: inherit; padding: 10px 16px; }}
</style></head>
<body>
<h1>ご注文手続き</h1>
<p>お支払い方法：クレジットカード</p>
<form id="order" action="/order" method="post">
  <input type="hidden" name="webcollect-token" value="">
  <button type="button" id="create-token-launch">カード情報を入力する</button>
</form>
<script class="webcollect-token-api" src="{shim}{lib}"
  data-trader-cd="123456789" data-auth-div="2" data-opt-serv-div="00"
  data-check-sum="0" data-callback="onToken"></script>
<script>
  window.tokenCalls = 0;
  function onToken() {{ window.tokenCalls += 1; document.getElementById("order").submit(); }}
</script>
</body></html>
"#
    )
}

/// JS: the deepest element whose own text is `text`, or null.
fn element_with_text(text: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll('body *')).filter(e => e.textContent.trim() === {text:?} \
         && !Array.from(e.children).some(c => c.textContent.trim() === {text:?}))[0] || null"
    )
}

/// JS: is element expression `el` rendered and visible?
fn visible(el: &str) -> String {
    format!(
        "(e => !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden' \
         && e.getBoundingClientRect().height > 0)({el})"
    )
}

/// JS: the input or select labelled by a `<label>` containing `text`.
fn labelled(text: &str) -> String {
    format!(
        "(l => l && document.getElementById(l.htmlFor))(Array.from(document.querySelectorAll('label')).find(l => l.textContent.includes({text:?})))"
    )
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

    // Open the form the way a shopper does: a real click on the merchant's button.
    tab.page
        .find_element("#create-token-launch")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let card_no = labelled("カード番号");
    tab.wait_for("the card form", &visible(&card_no)).await;
    let form_text: String = tab.eval("document.body.innerText").await;
    for label in [
        "カード番号",
        "Card Number",
        "カード名義人",
        "Card holder's name",
        "有効期限",
        "Expiration date (Month/Year)",
        "セキュリティコード",
        "Security Code",
        "カード情報入力完了",
        "Continue",
        "戻る",
        "Back",
    ] {
        assert!(
            form_text.contains(label),
            "form lacks {label:?}:\n{form_text}"
        );
    }
    assert!(
        !tab.eval::<bool>(&visible(&element_with_text(MESSAGE)))
            .await,
        "the message shows before the shopper presses continue"
    );

    // Fill the form with keystrokes, as a shopper would.
    for (label, text) in [
        ("カード番号", CARD_NO),
        ("カード名義人", "TARO YAMATO"),
        ("セキュリティコード", "123"),
    ] {
        tab.eval::<bool>(&format!("(e => (e.focus(), true))({})", labelled(label)))
            .await;
        tab.page
            .find_element(":focus")
            .await
            .unwrap()
            .type_str(text)
            .await
            .unwrap();
    }
    let expiry_set: bool = tab
        .eval(&format!(
            "(m => {{ const y = m.parentNode.querySelectorAll('select'); if (y.length !== 2) return false; \
             y[0].value = '12'; y[1].selectedIndex = Math.min(3, y[1].options.length - 1); \
             y.forEach(s => s.dispatchEvent(new Event('change', {{ bubbles: true }}))); return true; }})({})",
            labelled("有効期限")
        ))
        .await;
    assert!(expiry_set, "expiry month and year selects not found");
    let typed: String = tab.eval(&format!("{card_no}.value")).await;
    assert_eq!(typed, CARD_NO, "the card number was not typed in");

    tab.page
        .find_xpath("//button[contains(normalize-space(.), 'カード情報入力完了')]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
    tab.page
        .find_xpath("//button[contains(normalize-space(.), '戻る')]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
    tab.page
        .find_element("#create-token-launch")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tab.wait_for("the card form again", &visible(&card_no))
        .await;
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
