//! Admin requests: to a [`TestShim`]'s admin service with `oneshot` (no socket), or as the
//! bytes of an HTTP/1.1 request for the tests of the admin listener itself and of the real
//! binary.

use http::{Request, Response};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use webcollect_shim::admin::Admin;

use super::{ADMIN_TOKEN, RawResponse, TestShim};

/// An admin API request with a JSON body and, when given, a bearer token.
pub fn admin_request(method: &str, path: &str, token: Option<&str>, body: &str) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    // An IP literal, as curl sends for `curl 127.0.0.1:9090/…`: a loopback admin without a
    // token answers only IP literals, `localhost` and the hosts of allowed origins.
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An admin API request to `shim` with [`ADMIN_TOKEN`], through its admin service.
pub async fn admin(shim: &TestShim, method: &str, path: &str, body: &str) -> RawResponse {
    let req = admin_req(method, path)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    call_admin(shim, req).await
}

/// `GET path` to `shim`'s admin service with `Host: 127.0.0.1` and no token.
pub async fn admin_read(shim: &TestShim, path: &str) -> RawResponse {
    call_admin(shim, admin_req("GET", path).body(String::new()).unwrap()).await
}

/// A request to the admin with `Host: 127.0.0.1` (see [`admin_request`]).
pub fn admin_req(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
}

/// Sends `req` to `shim`'s admin service with `oneshot` (no socket); the answer read whole.
pub async fn call_admin(shim: &TestShim, req: Request<String>) -> RawResponse {
    let res = shim.admin_service().oneshot(req).await.unwrap();
    RawResponse::from_response(res).await
}

/// `toml` with `[admin] token_env` naming the variable [`test_env`](super::test_env) sets to [`ADMIN_TOKEN`].
pub fn with_token(toml: &str) -> String {
    format!("[admin]\ntoken_env = \"WEBCOLLECT_SHIM_ADMIN_TOKEN\"\n{toml}")
}

/// `GET path` to an admin listener, with `Host: 127.0.0.1` (see [`admin_request`]).
pub fn admin_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

impl TestShim {
    /// The admin service this shim serves on its admin listener, to call with `oneshot`.
    pub fn admin_service(&self) -> Admin {
        self.admin_service.clone()
    }
}

impl RawResponse {
    /// A response a service returned, read whole (as a socket client would see it, minus
    /// what hyper adds on the wire: `content-length`, `date`).
    pub async fn from_response<B>(res: Response<B>) -> Self
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        let (head, body) = res.into_parts();
        let headers = head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        Self {
            status: head.status.as_u16(),
            headers,
            body,
        }
    }
}
