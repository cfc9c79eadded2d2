//! A stand-in for the クロネコwebコレクト gateway, for QA stacks that cannot reach the real test
//! gateway: plausible success XML for every API path family, a link-method landing page that
//! can send a payment-result notification, and token libraries that issue fake tokens.
//!
//! It is **not** Yamato's gateway and checks nothing but the basics the real one checks
//! (POST only → `Z012000001`, missing `function_div` → `Z012000002`), so merchants' error
//! handling can be seen too. Every answer carries `X-Webcollect-Mock-Gateway: 1` so nobody
//! mistakes it for the real thing. Paths and shapes follow `kuroneko-webcollect.md` §1–§6.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono_tz::Asia::Tokyo;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::notify::{self, Notification, RetryPolicy};
use crate::page::html_escape;
use crate::response::{Body, full};
use crate::server::{self, ServeOptions};

/// `X-Webcollect-Mock-Gateway: 1`, set on every answer of the stand-in gateway.
pub const X_WEBCOLLECT_MOCK_GATEWAY: HeaderName =
    HeaderName::from_static("x-webcollect-mock-gateway");

/// How the stand-in gateway behaves. `MockOptions::default()` is a plain stand-in on the
/// system clock that sends no notifications.
#[derive(Debug, Clone, Default)]
pub struct MockOptions {
    /// Merchant URL that receives a payment-result notification (form POST, gateway retry
    /// policy) after each link-method settlement; `None` sends none.
    pub notify_url: Option<String>,
    /// How long the stand-in token libraries wait before calling `success` (zero: on the
    /// next tick, still asynchronously as the real library does).
    pub token_delay: Duration,
    /// Time source for `returnDate` and `settle_date` (rendered in JST); `None` reads the
    /// system clock.
    pub clock: Option<SharedClock>,
    /// Delivery policy for notifications; `None` is [`RetryPolicy::GATEWAY`].
    pub notify_policy: Option<RetryPolicy>,
}

/// Serves the stand-in gateway on `listener` until `shutdown` resolves (then lets in-flight
/// requests finish for a few seconds). HTTP/1.1 and HTTP/2 (prior knowledge), like the shim.
pub async fn serve(
    listener: TcpListener,
    options: MockOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mock = Arc::new(Mock::new(options));
    let handler = move |req, _peer| {
        let mock = mock.clone();
        async move { mock.respond(req).await }
    };
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(30),
        grace: Duration::from_secs(5),
        max_header_bytes: 64 * 1024,
    };
    server::serve(listener, handler, shutdown, options).await;
}

/// Largest request body read: gateway forms are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

const TEXT_XML: &str = "text/xml; charset=UTF-8";
const TEXT_HTML: &str = "text/html; charset=UTF-8";
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
const APPLICATION_JS: &str = "application/javascript; charset=UTF-8";

/// `function_div` names of the API family (`/api/<name>`, `/test_gateway/<name>.api`).
const API_NAMES: &[&str] = &[
    "credit",
    "credit3D",
    "creditInfoGet",
    "creditInfoUpdate",
    "creditInfoDelete",
    "creditCancel",
    "creditChangePrice",
    "creditToken",
    "creditToken3D",
    "reAuth",
    "cvs1",
    "cvs2",
    "cvs3",
    "e_money1",
    "e_money2",
    "e_money3",
    "e_money4",
    "e_money5",
    "e_money6",
    "bank1",
    "shipmentEntry",
    "shipmentCancel",
    "changeDate",
    "tradeInfo",
    "regular",
    "regular3D",
    "regularInfo",
    "regularUpdate",
    "regularDelete",
    "traderIp",
    "paypaySettle",
    "paypaySettleCancel",
    "paypayChangePrice",
];

/// The XP (切売) family (`/api/xp/<name>`, `/test_gateway/xp/<name>.api`).
const XP_NAMES: &[&str] = &[
    "authXp",
    "shipmentEntryXp",
    "shipmentCancelXp",
    "tradeInfoXp",
];

/// クロネコ代金後払い codes (`/kuroneko-atobarai-api/<CODE>APIAction_execute.action`).
const ATOBARAI_CODES: &[&str] = &[
    "KAAAU0010",
    "KAARS0010",
    "KAASL0010",
    "KAAST0010",
    "KAACL0010",
    "KAASD0010",
    "KAARA0010",
    "KAAKK0010",
    "KAARR0010",
    "KAASA0020",
];

/// Card brands offered on the stand-in settlement page (`settle_method` codes; 14 is the
/// value the 2020 notice adds, so merchants can see it arrive in a notification).
const SETTLE_METHODS: &[(&str, &str)] = &[
    ("9", "VISA"),
    ("10", "MASTER"),
    ("3", "JCB"),
    ("12", "AMEX"),
    ("2", "Diners"),
    ("14", "楽天カード"),
];

/// What a path is, by the gateway's path families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// An XML API function (the XP family included).
    Api(&'static str),
    /// A 後払い API code.
    Atobarai(&'static str),
    /// The link method's landing page.
    Link,
    /// A token library; `modal` for `tokenlib.js`.
    TokenJs { modal: bool },
}

fn known(names: &'static [&'static str], name: &str) -> Option<&'static str> {
    names.iter().copied().find(|n| *n == name)
}

fn classify(path: &str) -> Option<Target> {
    match path {
        "/api/token/js/embeddedTokenLib.js" | "/test_gateway/token/js/embeddedTokenLib.js" => {
            return Some(Target::TokenJs { modal: false });
        }
        "/api/token/js/tokenlib.js" | "/test_gateway/token/js/tokenlib.js" => {
            return Some(Target::TokenJs { modal: true });
        }
        "/webcollect/settleSelectAction.gw" | "/test_gateway/settleSelectAction.gw" => {
            return Some(Target::Link);
        }
        _ => {}
    }
    // Unknown function names are 404s rather than a generic success, so a typo in a
    // merchant's gateway URL shows up here instead of in production.
    if let Some(name) = path.strip_prefix("/api/xp/") {
        return known(XP_NAMES, name).map(Target::Api);
    }
    if let Some(name) = path.strip_prefix("/api/") {
        return known(API_NAMES, name).map(Target::Api);
    }
    if let Some(name) = path
        .strip_prefix("/test_gateway/xp/")
        .and_then(|p| p.strip_suffix(".api"))
    {
        return known(XP_NAMES, name).map(Target::Api);
    }
    if let Some(name) = path
        .strip_prefix("/test_gateway/")
        .and_then(|p| p.strip_suffix(".api"))
    {
        return known(API_NAMES, name).map(Target::Api);
    }
    if let Some(code) = path
        .strip_prefix("/kuroneko-atobarai-api/")
        .and_then(|p| p.strip_suffix("APIAction_execute.action"))
    {
        return known(ATOBARAI_CODES, code).map(Target::Atobarai);
    }
    None
}

#[derive(Debug)]
struct Mock {
    clock: SharedClock,
    notify_url: Option<String>,
    notify_policy: RetryPolicy,
    token_delay: Duration,
}

/// A decoded `application/x-www-form-urlencoded` body or query.
#[derive(Debug, Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(bytes: &[u8]) -> Self {
        Self(
            bytes
                .split(|b| *b == b'&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = match pair.iter().position(|b| *b == b'=') {
                        Some(i) => (&pair[..i], &pair[i + 1..]),
                        None => (pair, &b""[..]),
                    };
                    (form_decode(k), form_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `name`, if present and not empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Percent-decodes a form component (`+` is a space). Bytes that are not UTF-8 (link forms
/// are posted as Shift_JIS) are replaced rather than rejected: the stand-in only displays them.
fn form_decode(raw: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Broken,
}

async fn read_form(req: Request<Incoming>) -> Result<Form, BodyError> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(Form::parse(&collected.to_bytes())),
        Err(err) if err.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

fn body_error(err: &BodyError) -> Response<Body> {
    match err {
        BodyError::TooLarge => plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "mock gateway: request body too large\n",
        ),
        BodyError::Broken => plain(
            StatusCode::BAD_REQUEST,
            "mock gateway: request body could not be read\n",
        ),
    }
}

impl Mock {
    fn new(options: MockOptions) -> Self {
        Self {
            clock: options.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            notify_url: options.notify_url,
            notify_policy: options.notify_policy.unwrap_or(RetryPolicy::GATEWAY),
            token_delay: options.token_delay,
        }
    }

    /// Now in JST as `yyyyMMddHHmmss`, the gateway's date format.
    fn date(&self) -> String {
        self.clock
            .now()
            .with_timezone(&Tokyo)
            .format("%Y%m%d%H%M%S")
            .to_string()
    }

    async fn respond(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let target = classify(&path);
        let response = match target {
            Some(Target::Api(name)) => self.api(req, name).await,
            Some(Target::Atobarai(code)) => self.atobarai(req, code).await,
            Some(Target::Link) => self.link(req).await,
            Some(Target::TokenJs { modal }) => self.token_js(req.method(), modal),
            None => plain(
                StatusCode::NOT_FOUND,
                "mock gateway: no such gateway path\n",
            ),
        };
        // Path without query, never bodies: API forms can carry card numbers.
        tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            "Mock gateway answered."
        );
        response
    }

    /// API and XP functions (§3): errors as the real gateway words them, else success.
    async fn api(&self, req: Request<Incoming>, name: &'static str) -> Response<Body> {
        if req.method() != Method::POST {
            return xml(api_error("Z012000001", &self.date()));
        }
        let form = match read_form(req).await {
            Ok(form) => form,
            Err(err) => return body_error(&err),
        };
        if form.get("function_div").is_none() {
            return xml(api_error("Z012000002", &self.date()));
        }
        let date = self.date();
        xml(api_success(name, &form, &date))
    }

    /// クロネコ代金後払い: a success in the 後払い API's own shape.
    async fn atobarai(&self, req: Request<Incoming>, code: &'static str) -> Response<Body> {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        let form = match read_form(req).await {
            Ok(form) => form,
            Err(err) => return body_error(&err),
        };
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<results>\n");
        body.push_str(&element("returnCode", "0"));
        body.push_str(&element("returnDate", &self.date()));
        body.push_str(&element("orderNo", form.get("orderNo").unwrap_or("")));
        if code == "KAAAU0010" {
            // 審査結果 0: ご利用可 (the credit request was accepted).
            body.push_str(&element("result", "0"));
        }
        body.push_str("<errors></errors>\n</results>\n");
        xml(body)
    }

    /// The link method's hosted page: a landing page, and a settle step that POSTs back to
    /// the same path (so the shim routes both steps identically) with `mock_step=settle`.
    async fn link(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let form = match method {
            Method::POST => match read_form(req).await {
                Ok(form) => form,
                Err(err) => return body_error(&err),
            },
            Method::GET | Method::HEAD => Form::parse(req.uri().query().unwrap_or("").as_bytes()),
            _ => return method_not_allowed("GET, HEAD, POST"),
        };
        // Only a POST settles: a GET must have no side effects.
        if method == Method::POST && form.get("mock_step") == Some("settle") {
            return self.settle(&form);
        }
        html(StatusCode::OK, landing_page(&form))
    }

    fn settle(&self, form: &Form) -> Response<Body> {
        let settle_method = form
            .get("settle_method")
            .filter(|m| SETTLE_METHODS.iter().any(|(code, _)| code == m))
            .unwrap_or("9");
        let n = Notification {
            trader_code: form.get("trader_code").unwrap_or("").to_string(),
            order_no: form.get("order_no").unwrap_or("").to_string(),
            settle_price: form.get("settle_price").unwrap_or("").to_string(),
            settle_date: self.date(),
            settle_result: "1".to_string(),
            // statusInfo 4: 与信完了 (card authorised).
            settle_detail: "4".to_string(),
            settle_method: settle_method.to_string(),
        };
        let notified = match &self.notify_url {
            Some(url) => {
                let (url, policy) = (url.clone(), self.notify_policy);
                // In the background, as the gateway does: the buyer's page does not wait
                // for the merchant's receiver (which may take 15 s per attempt).
                tokio::spawn(async move {
                    let report = |a: &notify::Attempt| {
                        tracing::info!(attempt = %a, "Mock gateway notification attempt.");
                    };
                    match notify::send(&url, &n, policy, report).await {
                        Ok(attempts) if attempts.last().is_some_and(notify::Attempt::accepted) => {}
                        Ok(_) => tracing::warn!("Mock gateway notification was not accepted."),
                        Err(err) => {
                            tracing::warn!(error = %err, "Mock gateway notification not sent.");
                        }
                    }
                });
                true
            }
            None => false,
        };
        html(StatusCode::OK, done_page(form, settle_method, notified))
    }

    fn token_js(&self, method: &Method, modal: bool) -> Response<Body> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return method_not_allowed("GET, HEAD");
        }
        let delay = u64::try_from(self.token_delay.as_millis()).unwrap_or(u64::MAX);
        let body = TOKEN_JS
            .replace("__DELAY_MS__", &delay.to_string())
            .replace("__MODAL__", if modal { "true" } else { "false" });
        answer(StatusCode::OK, APPLICATION_JS, body)
    }
}

/// The gateway's XML: declaration, `return`, the three common elements, then `extra`.
fn api_xml(return_code: &str, error_code: &str, date: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>{return_code}</returnCode>\n<errorCode>{error_code}</errorCode>\n<returnDate>{date}</returnDate>\n{extra}</return>\n"
    )
}

fn api_error(code: &str, date: &str) -> String {
    api_xml("1", code, date, "")
}

fn api_success(name: &str, form: &Form, date: &str) -> String {
    let order_no = form.get("order_no").unwrap_or("1");
    // 与信承認番号: made up, but stable for a given instant.
    let approval = format!("0{date}");
    let extra = match name {
        "credit" | "creditToken" | "credit3D" | "creditToken3D" | "reAuth" => {
            element("crdCResCd", &approval)
        }
        // `.invalid` (RFC 6761): a slip URL that can never be mistaken for a real one.
        "shipmentEntry" | "shipmentEntryXp" => element(
            "slipUrlPc",
            &format!(
                "https://stand-in-gateway.invalid/slip?order_no={}",
                notify::form_encode(order_no)
            ),
        ),
        "tradeInfo" | "tradeInfoXp" => {
            // Two rows with different card brands, so the settleMethod drill (§5) and
            // clients that loop over resultData both have something to do.
            let price = "1000";
            let row = |method: &str, status: &str| {
                [
                    element("orderNo", order_no),
                    element("deviceDiv", "2"),
                    element("settleDate", date),
                    element("settlePrice", price),
                    element("settleMethodDiv", "0"),
                    element("settleMethod", method),
                    element("statusInfo", status),
                    element("payWay", "1"),
                    element("crdCResCd", &approval),
                ]
                .concat()
            };
            format!(
                "{}<resultData>\n{}</resultData>\n<resultData>\n{}</resultData>\n",
                element("resultCount", "2"),
                // 3 JCB, authorised; 9 VISA, cancelled.
                row("3", "4"),
                row("9", "40"),
            )
        }
        // TEST-NET-3 (RFC 5737): clearly not a real gateway address.
        "traderIp" => element("ipAddress", "203.0.113.10"),
        _ => String::new(),
    };
    api_xml("0", "", date, &extra)
}

/// `<name>value</name>` and a newline, value escaped.
fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>\n", html_escape(value))
}

/// A merchant URL that is safe to put in a link: http(s) only (no `javascript:`).
fn safe_url(url: Option<&str>) -> Option<&str> {
    url.filter(|u| {
        let lower = u.to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    })
}

const PAGE_HEAD: &str = r#"<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Kaku Gothic ProN", "Meiryo", sans-serif; margin: 0; background: #f4f4f4; color: #222; }
.banner { background: #7a3b00; color: #fff; padding: 8px 16px; font-size: 14px; }
main { max-width: 560px; margin: 24px auto; background: #fff; border: 1px solid #ccc; padding: 16px 24px; }
dl { display: grid; grid-template-columns: 8em 1fr; gap: 4px 12px; }
dt { color: #555; }
dd { margin: 0; word-break: break-all; }
button { font-size: 16px; padding: 8px 24px; }
</style>
</head>
<body>
<div class="banner">webcollect-shim スタンドインゲートウェイ — これはヤマトの決済画面ではありません (stand-in gateway, NOT Yamato's payment page)</div>
<main>
"#;

const PAGE_FOOT: &str = "</main>\n</body>\n</html>\n";

fn page(title: &str, content: &str) -> String {
    format!(
        "{}{content}{PAGE_FOOT}",
        PAGE_HEAD.replace("__TITLE__", &html_escape(title))
    )
}

fn order_summary(form: &Form) -> String {
    let row = |label: &str, value: Option<&str>| {
        format!(
            "<dt>{label}</dt><dd>{}</dd>\n",
            html_escape(value.unwrap_or("（未指定）"))
        )
    };
    [
        "<dl>\n".to_string(),
        row("加盟店コード", form.get("trader_code")),
        row("受付番号", form.get("order_no")),
        row("商品名", form.get("goods_name")),
        row(
            "決済金額",
            form.get("settle_price")
                .map(|p| format!("{p}円"))
                .as_deref(),
        ),
        "</dl>\n".to_string(),
    ]
    .concat()
}

fn landing_page(form: &Form) -> String {
    let mut content = String::from("<h1>お支払い（スタンドイン）</h1>\n");
    content.push_str(&order_summary(form));
    // The settle step posts back here; the merchant's fields ride along as hidden inputs.
    content.push_str("<form method=\"post\" accept-charset=\"UTF-8\">\n");
    content.push_str("<input type=\"hidden\" name=\"mock_step\" value=\"settle\">\n");
    for name in [
        "trader_code",
        "order_no",
        "goods_name",
        "settle_price",
        "success_url",
        "failure_url",
        "cancel_url",
    ] {
        if let Some(value) = form.get(name) {
            content.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                html_escape(value)
            ));
        }
    }
    content.push_str("<p><label>カードブランド (settle_method) <select name=\"settle_method\">\n");
    for (code, label) in SETTLE_METHODS {
        content.push_str(&format!(
            "<option value=\"{code}\">{} ({code})</option>\n",
            html_escape(label)
        ));
    }
    content.push_str("</select></label></p>\n");
    content.push_str("<p><button type=\"submit\" id=\"mock-settle\">決済する（スタンドイン）</button></p>\n</form>\n");
    if let Some(cancel) = safe_url(form.get("cancel_url")) {
        content.push_str(&format!(
            "<p><a href=\"{}\">キャンセルしてショップに戻る</a></p>\n",
            html_escape(cancel)
        ));
    }
    page("クロネコwebコレクト お支払い（スタンドイン）", &content)
}

fn done_page(form: &Form, settle_method: &str, notified: bool) -> String {
    let mut content = String::from("<h1>決済が完了しました（スタンドイン）</h1>\n");
    content.push_str(&order_summary(form));
    content.push_str(&format!(
        "<p>settle_method: {}</p>\n",
        html_escape(settle_method)
    ));
    content.push_str(if notified {
        "<p id=\"mock-notified\">決済結果通知を加盟店へ送信しています。</p>\n"
    } else {
        "<p id=\"mock-notified\">決済結果通知の送信先が設定されていません（--notify-url）。</p>\n"
    });
    if let Some(success) = safe_url(form.get("success_url")) {
        content.push_str(&format!(
            "<p><a href=\"{}\" id=\"mock-return\">ショップに戻る</a></p>\n",
            html_escape(success)
        ));
    }
    page("クロネコwebコレクト 決済完了（スタンドイン）", &content)
}

/// The stand-in token library: `createToken` always succeeds with a fake 16-character token.
/// The modal variant issues one when `#create-token-launch` is clicked, writes it into the
/// `webcollect-token` input and calls the `data-callback` function, like the real library.
const TOKEN_JS: &str = r#"/*
 * webcollect-shim STAND-IN gateway token library. This is NOT Yamato's library: it issues
 * fake tokens that only the stand-in gateway accepts, and sends card data nowhere.
 */
(function (window, document) {
  "use strict";

  var DELAY_MS = __DELAY_MS__;
  var MODAL = __MODAL__;
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

  function newToken() {
    var out = "", i, bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (i = 0; i < 16; i++) { bytes[i] = Math.floor(Math.random() * 256); }
    }
    for (i = 0; i < 16; i++) { out += ALPHABET.charAt(bytes[i] % ALPHABET.length); }
    return out;
  }

  function createToken(createTokenInfo, success, failure) {
    // Asynchronous like the real library, so merchants' code sees the same ordering.
    window.setTimeout(function () {
      if (typeof success === "function") { success({ token: newToken() }); }
    }, DELAY_MS);
  }

  var lib = window.WebcollectTokenLib || {};
  lib.createToken = createToken;
  window.WebcollectTokenLib = lib;

  if (!MODAL || !document) { return; }

  var script = document.currentScript || document.querySelector("script.webcollect-token-api");
  var callbackName = script ? script.getAttribute("data-callback") : null;

  function onLaunch(event) {
    if (event) { event.preventDefault(); }
    var launch = document.getElementById("create-token-launch");
    createToken({}, function (response) {
      var input = document.querySelector("input[name='webcollect-token']") ||
        document.getElementById("webcollect-token");
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = "webcollect-token";
        ((launch && launch.form) || document.forms[0] || document.body).appendChild(input);
      }
      input.value = response.token;
      var callback = callbackName ? window[callbackName] : null;
      if (typeof callback === "function") { callback(); }
    });
  }

  function bind() {
    var launch = document.getElementById("create-token-launch");
    if (launch) { launch.addEventListener("click", onLaunch); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})(window, window.document);
"#;

/// Any answer: content type, no caching, and the stand-in's mark.
fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_WEBCOLLECT_MOCK_GATEWAY, HeaderValue::from_static("1"));
    res
}

/// API answers are HTTP 200 whatever `returnCode` says, as the gateway's are.
fn xml(body: String) -> Response<Body> {
    answer(StatusCode::OK, TEXT_XML, body)
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    answer(status, TEXT_HTML, body)
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    answer(status, TEXT_PLAIN, body)
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut res = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "mock gateway: method not allowed\n",
    );
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_every_family_are_classified() {
        assert_eq!(
            classify("/api/creditToken"),
            Some(Target::Api("creditToken"))
        );
        assert_eq!(
            classify("/api/xp/tradeInfoXp"),
            Some(Target::Api("tradeInfoXp"))
        );
        assert_eq!(
            classify("/test_gateway/tradeInfo.api"),
            Some(Target::Api("tradeInfo"))
        );
        assert_eq!(
            classify("/test_gateway/xp/authXp.api"),
            Some(Target::Api("authXp"))
        );
        assert_eq!(
            classify("/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action"),
            Some(Target::Atobarai("KAAAU0010"))
        );
        assert_eq!(
            classify("/test_gateway/settleSelectAction.gw"),
            Some(Target::Link)
        );
        assert_eq!(
            classify("/test_gateway/token/js/tokenlib.js"),
            Some(Target::TokenJs { modal: true })
        );
        assert_eq!(classify("/api/nope"), None);
        assert_eq!(classify("/api/xp/creditToken"), None);
        assert_eq!(classify("/test_gateway/creditToken"), None);
        assert_eq!(classify("/"), None);
    }

    #[test]
    fn forms_decode_percent_and_plus() {
        let form = Form::parse(b"a=1+2&b=%E3%81%82&c=&d&e=%zz%4");
        assert_eq!(form.get("a"), Some("1 2"));
        assert_eq!(form.get("b"), Some("あ"));
        assert_eq!(form.get("c"), None);
        assert_eq!(form.get("d"), None);
        assert_eq!(form.get("e"), Some("%zz%4"));
    }

    #[test]
    fn link_pages_escape_merchant_input_and_refuse_script_urls() {
        let form = Form::parse(
            b"order_no=%3Cscript%3E&success_url=javascript%3Aalert(1)&cancel_url=https%3A%2F%2Fshop.example%2F%3Fa%3D1%26b%3D%22",
        );
        let landing = landing_page(&form);
        assert!(!landing.contains("<script>"), "{landing}");
        assert!(landing.contains("&lt;script&gt;"), "{landing}");
        assert!(
            landing.contains("href=\"https://shop.example/?a=1&amp;b=&quot;\""),
            "{landing}"
        );
        let done = done_page(&form, "9", false);
        assert!(!done.contains("javascript:"), "{done}");
    }
}
