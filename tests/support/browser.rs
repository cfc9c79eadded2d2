//! Real headless Chromium for the browser tests: Debian's `/usr/bin/chromium` driven over CDP
//! by chromiumoxide, one fresh profile per test, tabs that record their network traffic, JS
//! helpers to find what a shopper sees, and a merchant's checkout pages that load a token
//! library from a given origin.
//!
//! With `CI` set a missing Chromium fails the tests; elsewhere they print a `SKIPPED` line.
//! `WEBCOLLECT_SHIM_SCREENSHOTS=<dir>` makes [`Tab::screenshot`] write PNGs there.

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
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::{TestBody, Upstream, full, status};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const SCREENSHOTS_ENV: &str = "WEBCOLLECT_SHIM_SCREENSHOTS";
/// The test card the merchant pages and the card form use.
pub const CARD_NO: &str = "4111111111111111";

/// How long the network log must stay quiet before it is read: requests the page would make
/// late (lazy resources, timers, a callback) have that long to show up.
pub const QUIET: Duration = Duration::from_millis(300);
/// Upper bound for anything the page is expected to do.
pub const PATIENCE: Duration = Duration::from_secs(10);

// === Chromium ===

/// `CI` set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// A headless Chromium with a fresh profile; one per test.
pub struct Chromium {
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

/// What a test adds to Chromium's launch flags.
#[derive(Debug, Default)]
pub struct LaunchOptions {
    /// Host names sent to a given address instead of failing to resolve:
    /// `--host-resolver-rules` `MAP host addr` entries, ahead of the default rules.
    pub map: Vec<(String, std::net::SocketAddr)>,
    /// Public-key hashes (base64 SHA-256 of a SubjectPublicKeyInfo) whose certificate chains
    /// are accepted: `--ignore-certificate-errors-spki-list`.
    pub trust_spki: Vec<String>,
}

impl Chromium {
    /// Launches Chromium, or returns `None` (after saying so) when it is not installed outside CI.
    pub async fn launch() -> Option<Self> {
        Self::launch_with(LaunchOptions::default()).await
    }

    /// [`Chromium::launch`] with host mappings and trusted keys.
    pub async fn launch_with(options: LaunchOptions) -> Option<Self> {
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
        let rules = options
            .map
            .iter()
            .map(|(host, addr)| format!("MAP {host} {addr}, "))
            .collect::<String>()
            + "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1";
        let spki = options.trust_spki.join(",");
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
            // (and an external request still shows up in the network log as a failure). The
            // first matching MAP wins, so a test's own mappings go first.
            .arg(("host-resolver-rules", rules.as_str()));
        let config = if options.trust_spki.is_empty() {
            config
        } else {
            config.arg(("ignore-certificate-errors-spki-list", spki.as_str()))
        }
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
    pub async fn tab(&self, width: i64, height: i64, mobile: bool) -> Tab {
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

    pub async fn close(mut self) {
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
pub struct Tab {
    pub page: Page,
    events: BoxStream<'static, Net>,
    pub requests: Vec<Arc<EventRequestWillBeSent>>,
    pub responses: Vec<Arc<EventResponseReceived>>,
}

impl Tab {
    pub async fn viewport(&self, width: i64, height: i64, mobile: bool) {
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(
                width, height, 1.0, mobile,
            ))
            .await
            .unwrap();
    }

    pub async fn goto(&self, url: &str) {
        self.page
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// Clicks the element `selector` finds, as a user would (a real mouse click).
    pub async fn click(&self, selector: &str) -> chromiumoxide::Element {
        let element = self
            .page
            .find_element(selector)
            .await
            .unwrap_or_else(|e| panic!("no element {selector}: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
        element
    }

    /// Clicks into the field `selector` finds and types `text` there, key by key (ASCII).
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector)
            .await
            .type_str(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {selector}: {e}"));
    }

    /// Evaluates a JS expression (promises are awaited) and deserialises its value.
    pub async fn eval<T: DeserializeOwned>(&self, js: &str) -> T {
        self.page
            .evaluate_expression(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("result of {js}: {e}"))
    }

    /// Waits (bounded) until the JS expression `condition` is truthy.
    pub async fn wait_for(&self, what: &str, condition: &str) {
        let js = format!(
            "new Promise(resolve => {{ const t0 = Date.now(); (function poll() {{ let ok = false; \
             try {{ ok = !!({condition}); }} catch (e) {{}} \
             if (ok) resolve(true); else if (Date.now() - t0 > {}) resolve(false); \
             else setTimeout(poll, 20); }})(); }})",
            PATIENCE.as_millis()
        );
        assert!(self.eval::<bool>(&js).await, "timed out waiting for {what}");
    }

    /// Evaluates `js` (bounded) until it gives something other than null, in whatever page the
    /// tab shows: unlike [`Tab::wait_for`] this survives the page being replaced meanwhile (a
    /// form submission), by evaluating again after an evaluation fails.
    pub async fn eval_across_navigation<T: DeserializeOwned>(&self, what: &str, js: &str) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let attempt = tokio::time::timeout(PATIENCE, self.page.evaluate_expression(js)).await;
            if let Ok(Ok(result)) = attempt
                && let Some(value) = result.into_value::<Option<T>>().ok().flatten()
            {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Collects network events until none has arrived for [`QUIET`].
    pub async fn settle(&mut self) {
        while let Ok(Some(event)) = tokio::time::timeout(QUIET, self.events.next()).await {
            match event {
                Net::Request(r) => self.requests.push(r),
                Net::Response(r) => self.responses.push(r),
            }
        }
    }

    /// URLs of every request the tab has made so far, in order.
    pub async fn request_urls(&mut self) -> Vec<String> {
        self.settle().await;
        self.requests
            .iter()
            .map(|r| r.request.url.clone())
            .collect()
    }

    pub fn response(&self, url: &str) -> Arc<EventResponseReceived> {
        self.responses
            .iter()
            .find(|r| r.response.url == url)
            .cloned()
            .unwrap_or_else(|| panic!("no response for {url}"))
    }

    /// The body the browser received for `url`, exactly.
    pub async fn response_body(&mut self, url: &str) -> String {
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
    pub async fn screenshot(&self, name: &str, width: i64, height: i64, mobile: bool) {
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

// === The modal card form (shared by the shim's stand-in and the stand-in gateway's) ===

/// Labels the real library's card form shows.
pub const CARD_FORM_LABELS: [&str; 12] = [
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
];

impl Tab {
    /// Opens the card form the way a shopper does (a real click on `#create-token-launch`)
    /// and checks that it shows every label of the real form.
    pub async fn open_card_form(&self) {
        self.click("#create-token-launch").await;
        self.wait_for("the card form", &visible(&labelled("カード番号")))
            .await;
        let form_text: String = self.eval("document.body.innerText").await;
        for label in CARD_FORM_LABELS {
            assert!(
                form_text.contains(label),
                "form lacks {label:?}:\n{form_text}"
            );
        }
    }

    /// Fills the open card form with keystrokes, as a shopper would: [`CARD_NO`], a holder
    /// name, a security code, and an expiry (December, a few years on).
    pub async fn fill_card_form(&self) {
        for (label, text) in [
            ("カード番号", CARD_NO),
            ("カード名義人", "TARO YAMATO"),
            ("セキュリティコード", "123"),
        ] {
            self.eval::<bool>(&format!("(e => (e.focus(), true))({})", labelled(label)))
                .await;
            self.page
                .find_element(":focus")
                .await
                .unwrap()
                .type_str(text)
                .await
                .unwrap();
        }
        let expiry_set: bool = self
            .eval(&format!(
                "(m => {{ const y = m.parentNode.querySelectorAll('select'); if (y.length !== 2) return false; \
                 y[0].value = '12'; y[1].selectedIndex = Math.min(3, y[1].options.length - 1); \
                 y.forEach(s => s.dispatchEvent(new Event('change', {{ bubbles: true }}))); return true; }})({})",
                labelled("有効期限")
            ))
            .await;
        assert!(expiry_set, "expiry month and year selects not found");
        let typed: String = self
            .eval(&format!("{}.value", labelled("カード番号")))
            .await;
        assert_eq!(typed, CARD_NO, "the card number was not typed in");
    }

    /// Clicks the button whose text contains `text` (e.g. 「カード情報入力完了」).
    pub async fn press(&self, text: &str) {
        self.page
            .find_xpath(format!("//button[contains(normalize-space(.), '{text}')]"))
            .await
            .unwrap_or_else(|e| panic!("no button {text:?}: {e}"))
            .click()
            .await
            .unwrap();
    }
}

pub fn header(headers: &Headers, name: &str) -> Option<String> {
    headers
        .inner()
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str().map(str::to_string))
}

/// Parses `rgb(r, g, b)` / `rgba(r, g, b, a)`.
pub fn rgb(css: &str) -> (u8, u8, u8) {
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

pub fn assert_red(what: &str, css: &str) {
    let (r, g, b) = rgb(css);
    assert!(r >= 160 && g <= 80 && b <= 80, "{what} is {css}, not red");
}

// === Merchant pages ===

pub fn html(body: String) -> Response<TestBody> {
    Response::builder()
        .header("content-type", "text/html; charset=UTF-8")
        .body(full(body))
        .unwrap()
}

/// A merchant's checkout pages, loading the token libraries from `shim`:
/// - `/embedded?lib=PATH` calls `createToken` at once and records what it got in `shimTest`;
/// - `/modal?lib=PATH` is a modal checkout whose form has a `name="webcollect-token"` input
///   (no id), `/modal-bare?lib=PATH` the same without any such input;
/// - `POST /order` (where the modal pages' `data-callback` submits) echoes the form it got
///   in `<pre id="received">`, as a merchant's server would receive it.
pub async fn merchant(shim: String) -> Upstream {
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
                "/modal" => html(modal_page(&shim, &lib, true)),
                "/modal-bare" => html(modal_page(&shim, &lib, false)),
                "/order" => {
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let body = String::from_utf8_lossy(&body).replace('<', "&lt;");
                    html(format!(
                        "<!DOCTYPE html><html><head><meta charset=\"UTF-8\"><link rel=\"icon\" href=\"data:,\"></head><body><pre id=\"received\">{body}</pre></body></html>"
                    ))
                }
                _ => Response::builder()
                    .status(status(404))
                    .body(full("not found"))
                    .unwrap(),
            }
        }
    })
    .await
}

pub fn embedded_page(shim: &str, lib: &str) -> String {
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

/// The modal checkout. `data-callback="onToken"` records what `#webcollect-token` holds
/// (`type:name:length of value`, the way a plugin reads it) in the `seen` field, then submits.
pub fn modal_page(shim: &str, lib: &str, with_token_input: bool) -> String {
    let token_input = if with_token_input {
        r#"<input type="hidden" name="webcollect-token" value="">"#
    } else {
        ""
    };
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
  {token_input}
  <input type="hidden" id="seen" name="seen" value="">
  <button type="button" id="create-token-launch">カード情報を入力する</button>
</form>
<script class="webcollect-token-api" src="{shim}{lib}"
  data-trader-cd="123456789" data-auth-div="2" data-opt-serv-div="00"
  data-check-sum="0" data-callback="onToken"></script>
<script>
  window.tokenCalls = 0;
  function onToken() {{
    window.tokenCalls += 1;
    var input = document.getElementById("webcollect-token");
    document.getElementById("seen").value =
      input ? input.type + ":" + input.name + ":" + input.value.length : "missing";
    document.getElementById("order").submit();
  }}
</script>
</body></html>
"#
    )
}

// === What a shopper sees ===

/// JS: the deepest element whose own text is `text`, or null.
pub fn element_with_text(text: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll('body *')).filter(e => e.textContent.trim() === {text:?} \
         && !Array.from(e.children).some(c => c.textContent.trim() === {text:?}))[0] || null"
    )
}

/// JS: is element expression `el` rendered and visible?
pub fn visible(el: &str) -> String {
    format!(
        "(e => !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden' \
         && e.getBoundingClientRect().height > 0)({el})"
    )
}

/// JS: the input or select labelled by a `<label>` containing `text`.
pub fn labelled(text: &str) -> String {
    format!(
        "(l => l && document.getElementById(l.htmlFor))(Array.from(document.querySelectorAll('label')).find(l => l.textContent.includes({text:?})))"
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedOutcome {
    pub success: Vec<String>,
    pub failure: Vec<Failure>,
    pub failure_before_return: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub error_info: Vec<ErrorInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    pub error_item: String,
    pub error_code: String,
    pub error_msg: String,
}
