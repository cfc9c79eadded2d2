//! A stand-in for the クロネコwebコレクト gateway, for QA stacks that cannot reach the real test
//! gateway, that real merchant integrations accept: stateful orders behind the XML API,
//! stored cards, single-use tokens minted by token libraries that behave like the real ones,
//! a link-method page that sends the payment-result notification, and a plain merchant admin
//! screen. Paths and shapes follow `kuroneko-webcollect.md` §1–§6.
//!
//! It is **not** Yamato's gateway. Every answer carries `X-Webcollect-Mock-Gateway: 1` so
//! nobody mistakes it for the real thing, and nothing it logs carries a body, token or query.
//! This module routes; `api` answers the XML functions, `link` the hosted page, `tokens`,
//! `orders` and `cards` hold the rules, `store` the bounded and persistent state.

mod api;
mod cards;
mod form;
mod link;
mod orders;
mod page;
mod store;
mod testcards;
mod tokens;

use std::future::Future;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use chrono_tz::Asia::Tokyo;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::clock::{SharedClock, SystemClock};
use crate::qa::notify::RetryPolicy;
use crate::response::{Body, full};
use crate::runtime::server::{self, ServeOptions};

use form::Form;
pub(crate) use store::StateFileError;
use store::Store;

/// `X-Webcollect-Mock-Gateway: 1`, set on every answer of the stand-in gateway.
pub(crate) const X_WEBCOLLECT_MOCK_GATEWAY: HeaderName =
    HeaderName::from_static("x-webcollect-mock-gateway");

/// The default for [`GatewayOptions::max_state_bytes`]: 64 MiB.
pub const DEFAULT_MAX_STATE_BYTES: NonZeroUsize = NonZeroUsize::new(64 << 20).unwrap();

/// The default for [`GatewayOptions::max_orders`].
pub const DEFAULT_MAX_ORDERS: NonZeroUsize = NonZeroUsize::new(10_000).unwrap();

/// How the stand-in gateway behaves. `GatewayOptions::default()` is a stand-in on the system
/// clock that keeps its state in memory only and sends no notifications.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Merchant URL that receives a payment-result notification (form POST, gateway retry
    /// policy) after each link-method settlement; `None` sends none.
    pub notify_url: Option<String>,
    /// Time source for `returnDate`, `settle_date` and token expiry (dates rendered in JST);
    /// `None` reads the system clock.
    pub clock: Option<SharedClock>,
    /// Delivery policy for notifications; `None` is [`RetryPolicy::GATEWAY`].
    pub notify_policy: Option<RetryPolicy>,
    /// File that keeps orders, stored cards and tokens across restarts (read at start,
    /// rewritten atomically after every change); `None` keeps them in memory only.
    pub state_file: Option<PathBuf>,
    /// Most orders remembered; past it the oldest are forgotten. Members with stored cards
    /// and tokens are bounded by the same number.
    pub max_orders: NonZeroUsize,
    /// Most bytes orders, stored cards and tokens take together (as saved, JSON); past it
    /// the oldest orders are forgotten first. An order can hold about 157 KB of form fields,
    /// so a count alone does not bound memory.
    pub max_state_bytes: NonZeroUsize,
    /// Accept only tokens the stand-in minted (within 30 minutes); otherwise any unspent
    /// 16-character token authorises, so scripts need no browser.
    pub strict_tokens: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            notify_url: None,
            clock: None,
            notify_policy: None,
            state_file: None,
            max_orders: DEFAULT_MAX_ORDERS,
            max_state_bytes: DEFAULT_MAX_STATE_BYTES,
            strict_tokens: false,
        }
    }
}

/// Serves the stand-in gateway on `listener` until `shutdown` resolves (then lets in-flight
/// requests finish for a few seconds). HTTP/1.1 and HTTP/2 (prior knowledge), like the shim.
///
/// # Errors
/// The state file exists but cannot be read or is not a state file: nothing is served.
pub async fn serve(
    listener: TcpListener,
    options: GatewayOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StateFileError> {
    let gateway = Arc::new(Gateway::new(options)?);
    let service = tower::service_fn(move |req| {
        let gateway = gateway.clone();
        async move { Ok::<_, std::convert::Infallible>(gateway.respond(req).await) }
    });
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(60),
        grace: Duration::from_secs(5),
        max_header_bytes: 64 * 1024,
        // Not a proxy: no upstream.
        max_upstream_per_client: 1,
    };
    server::serve(listener, service, shutdown, options).await;
    Ok(())
}

/// Largest request body read: gateway forms are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

const TEXT_XML: &str = "text/xml; charset=UTF-8";
const TEXT_HTML: &str = "text/html; charset=UTF-8";
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
const APPLICATION_JS: &str = "application/javascript; charset=UTF-8";

/// The stand-in's token library; `/*__TOKEN_FORM__*/` takes the card form shared with the
/// shim's maintenance library.
const TOKEN_JS: &str = include_str!("../../../assets/qa/tokenlib.js");
const TOKEN_FORM_JS: &str = include_str!("../../../assets/token-form.js");

/// Where the merchant admin screen stands in. The real one has a per-merchant access URL;
/// the shipped configs' commented `admin-screen` route uses this path.
const ADMIN_SCREEN: &str = "/webcollect-admin/";

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

/// Which host family a token path belongs to: its library mints tokens in the same family,
/// so the shim routes both the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `/api/token/…`
    Production,
    /// `/test_gateway/token/…`
    TestGateway,
}

impl Family {
    fn issue_path(self) -> &'static str {
        match self {
            Self::Production => "/api/token/issue",
            Self::TestGateway => "/test_gateway/token/issue",
        }
    }
}

/// What a path is, by the gateway's path families.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// An XML API function (the XP family included).
    Api(&'static api::Function),
    /// A 後払い API code.
    Atobarai(&'static str),
    /// The link method's hosted page.
    Link,
    /// A token library; `modal` for `tokenlib.js`.
    TokenJs { modal: bool, family: Family },
    /// Where the stand-in's token libraries mint tokens (the real endpoint is not public).
    TokenIssue,
    /// The merchant admin screen.
    AdminScreen,
    /// `POST /_stand-in/reset`: the stand-in forgets everything (not a gateway path).
    Reset,
}

/// Where the stand-in is reset; outside every gateway path family, so no route of the
/// shipped configs forwards it.
const RESET: &str = "/_stand-in/reset";

fn classify(path: &str) -> Option<Endpoint> {
    match path {
        "/api/token/js/embeddedTokenLib.js" | "/test_gateway/token/js/embeddedTokenLib.js" => {
            return Some(Endpoint::TokenJs {
                modal: false,
                family: family(path),
            });
        }
        "/api/token/js/tokenlib.js" | "/test_gateway/token/js/tokenlib.js" => {
            return Some(Endpoint::TokenJs {
                modal: true,
                family: family(path),
            });
        }
        "/api/token/issue" | "/test_gateway/token/issue" => return Some(Endpoint::TokenIssue),
        RESET => return Some(Endpoint::Reset),
        "/webcollect/settleSelectAction.gw" | "/test_gateway/settleSelectAction.gw" => {
            return Some(Endpoint::Link);
        }
        _ => {}
    }
    if path.starts_with(ADMIN_SCREEN) {
        return Some(Endpoint::AdminScreen);
    }
    // Unknown function names are 404s rather than a generic success, so a typo in a
    // merchant's gateway URL shows up here instead of in production.
    if let Some(name) = path.strip_prefix("/api/xp/") {
        return api::find(api::XP, name).map(Endpoint::Api);
    }
    if let Some(name) = path.strip_prefix("/api/") {
        return api::find(api::API, name).map(Endpoint::Api);
    }
    if let Some(name) = path
        .strip_prefix("/test_gateway/xp/")
        .and_then(|p| p.strip_suffix(".api"))
    {
        return api::find(api::XP, name).map(Endpoint::Api);
    }
    if let Some(name) = path
        .strip_prefix("/test_gateway/")
        .and_then(|p| p.strip_suffix(".api"))
    {
        return api::find(api::API, name).map(Endpoint::Api);
    }
    if let Some(code) = path
        .strip_prefix("/kuroneko-atobarai-api/")
        .and_then(|p| p.strip_suffix("APIAction_execute.action"))
    {
        return ATOBARAI_CODES
            .iter()
            .copied()
            .find(|c| *c == code)
            .map(Endpoint::Atobarai);
    }
    None
}

fn family(path: &str) -> Family {
    if path.starts_with("/test_gateway/") {
        Family::TestGateway
    } else {
        Family::Production
    }
}

/// `yyyyMMddHHmmss` in JST, the gateway's date format.
fn jst(at: DateTime<Utc>) -> String {
    at.with_timezone(&Tokyo).format("%Y%m%d%H%M%S").to_string()
}

/// The stand-in's configuration and state, shared by every connection.
#[derive(Debug)]
pub(crate) struct Gateway {
    clock: SharedClock,
    notify_url: Option<String>,
    notify_policy: RetryPolicy,
    strict_tokens: bool,
    store: Store,
}

/// Why a request body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Broken,
}

/// The form a request carries: its body for a POST, its query otherwise.
async fn read_form(req: Request<Incoming>) -> Result<Form, BodyError> {
    if req.method() != Method::POST {
        return Ok(Form::parse(
            req.uri().query().unwrap_or("").as_bytes(),
            None,
        ));
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(Form::parse(&collected.to_bytes(), content_type.as_deref())),
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

impl Gateway {
    fn new(options: GatewayOptions) -> Result<Self, StateFileError> {
        Ok(Self {
            clock: options.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            notify_url: options.notify_url,
            notify_policy: options.notify_policy.unwrap_or(RetryPolicy::GATEWAY),
            strict_tokens: options.strict_tokens,
            store: Store::open(
                options.state_file,
                options.max_orders.get(),
                options.max_state_bytes.get(),
            )?,
        })
    }

    fn date(&self) -> String {
        jst(self.clock.now())
    }

    async fn respond(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let response = match classify(&path) {
            Some(Endpoint::Api(function)) => self.api(req, function).await,
            Some(Endpoint::Atobarai(code)) => self.atobarai(req, code).await,
            Some(Endpoint::Link) => self.link(req).await,
            Some(Endpoint::TokenJs { modal, family }) => token_js(&method, modal, family),
            Some(Endpoint::TokenIssue) => self.issue_token(req).await,
            Some(Endpoint::AdminScreen) => self.admin_screen(&method, &path),
            Some(Endpoint::Reset) => self.reset(&req).await,
            None => plain(
                StatusCode::NOT_FOUND,
                "mock gateway: no such gateway path\n",
            ),
        };
        // Path without query, never bodies: API forms can carry card numbers and tokens.
        tracing::info!(
            %method,
            %path,
            status = response.status().as_u16(),
            "Mock gateway answered."
        );
        response
    }

    /// API and XP functions (§3): the gateway's basic checks (POST only → `Z012000001`,
    /// `function_div` required → `Z012000002`), then the function's answer.
    async fn api(
        &self,
        req: Request<Incoming>,
        function: &'static api::Function,
    ) -> Response<Body> {
        if req.method() != Method::POST {
            return xml(api::xml("1", "Z012000001", &self.date(), ""));
        }
        let form = match read_form(req).await {
            Ok(form) => form,
            Err(err) => return body_error(&err),
        };
        if form.get("function_div").is_none() {
            return xml(api::xml("1", "Z012000002", &self.date(), ""));
        }
        xml(api::answer(self, function, &form).await)
    }

    /// Mints a token for the stand-in's libraries: the gateway's XML shape plus `token`.
    /// Readable from any origin: the libraries run on merchants' pages.
    async fn issue_token(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST {
            return cors(xml(api::xml("1", "Z012000001", &self.date(), "")));
        }
        let form = match read_form(req).await {
            Ok(form) => form,
            Err(err) => return body_error(&err),
        };
        let now = self.clock.now();
        let date = jst(now);
        let body = match tokens::mint() {
            Ok(token) => {
                let answer = api::element("token", &token);
                // The library sends the first six digits and the masked number, never the
                // whole number; the member fields only for the option service.
                let card = tokens::CardHint {
                    masking_card_no: form.get("masking_card_no").map(str::to_string),
                    card_exp: form.get("card_exp").map(str::to_string),
                    card_owner: form.get("card_owner").map(str::to_string),
                    card_key: form.get("card_key").map(str::to_string),
                    card_code_api: form
                        .get("card_bin")
                        .map(|bin| orders::card_brand(Some(bin)).to_string()),
                    member_id: form.get("member_id").map(str::to_string),
                    test_card: form
                        .get("card_bin")
                        .zip(form.get("masking_card_no"))
                        .and_then(|(bin, masked)| testcards::by_parts(bin, masked))
                        .map(|card| card.tail.to_string()),
                };
                let record = tokens::Token {
                    token,
                    issued_at: Some(now),
                    used: false,
                    card,
                };
                let Ok(()) = self
                    .store
                    .write(|s| {
                        s.tokens.insert(record);
                        Ok::<_, std::convert::Infallible>(())
                    })
                    .await;
                api::xml("0", "", &date, &answer)
            }
            Err(err) => {
                tracing::warn!(error = %err, "Mock gateway cannot mint a token.");
                api::xml("1", api::SYSTEM_ERROR, &date, "")
            }
        };
        cors(xml(body))
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
        body.push_str(&api::element("returnCode", "0"));
        body.push_str(&api::element("returnDate", &self.date()));
        body.push_str(&api::element("orderNo", form.get("orderNo").unwrap_or("")));
        if code == "KAAAU0010" {
            // 審査結果 0: ご利用可 (the credit request was accepted).
            body.push_str(&api::element("result", "0"));
        }
        body.push_str("<errors></errors>\n</results>\n");
        xml(body)
    }

    async fn link(&self, req: Request<Incoming>) -> Response<Body> {
        let post = match *req.method() {
            Method::POST => true,
            Method::GET | Method::HEAD => false,
            _ => return method_not_allowed("GET, HEAD, POST"),
        };
        match read_form(req).await {
            Ok(form) => link::respond(self, &form, post).await,
            Err(err) => body_error(&err),
        }
    }

    /// `POST /_stand-in/reset`: forgets orders, tokens and stored cards and truncates the
    /// state file. A browser form from another site must not wipe a QA run: a request whose
    /// `Origin` is not this listener's own is refused (a script without `Origin` is not).
    async fn reset(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        if !same_origin(req) {
            return plain(
                StatusCode::FORBIDDEN,
                "mock gateway: a reset must come from the stand-in's own pages\n",
            );
        }
        if let Err(err) = self.store.reset().await {
            tracing::warn!(error = %err, "Stand-in gateway state file not truncated.");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "mock gateway: state forgotten, but the state file could not be truncated\n",
            );
        }
        tracing::info!("Stand-in gateway reset: orders, tokens and stored cards forgotten.");
        html(StatusCode::OK, page::reset_done(ADMIN_SCREEN))
    }

    fn admin_screen(&self, method: &Method, path: &str) -> Response<Body> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return method_not_allowed("GET, HEAD");
        }
        html(StatusCode::OK, page::admin_screen(path, &self.date()))
    }
}

/// No `Origin`, or one whose host and port are the request's `Host`.
fn same_origin<B>(req: &Request<B>) -> bool {
    let Some(origin) = req.headers().get(http::header::ORIGIN) else {
        return true;
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// The stand-in token library for `family`.
fn token_js(method: &Method, modal: bool, family: Family) -> Response<Body> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return method_not_allowed("GET, HEAD");
    }
    let body = TOKEN_JS
        .replace("__MODAL__", if modal { "true" } else { "false" })
        .replace("__ISSUE_PATH__", &format!("\"{}\"", family.issue_path()))
        // Last, so that the form's text is never searched for placeholders.
        .replace("/*__TOKEN_FORM__*/", TOKEN_FORM_JS);
    answer(StatusCode::OK, APPLICATION_JS, body)
}

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

fn cors(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
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
mod tests;
