//! Each layer alone and the whole stack, with `ServiceExt::oneshot` and no socket; the
//! whole stack on a real connection where the connection itself is the subject.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tower::{Layer as _, Service, ServiceExt as _};

use super::body::{ProxyBody, RequestBody, request_body};
use super::conn::Conn;
use super::enter::{EnterLayer, X_REQUEST_ID};
use super::limit::Limit;
use super::rescue::{Failure, ProxyError, Rescue};
use super::settle::Settle;
use super::short_circuit::ShortCircuit;
use super::{Answer, Call, Decided as _, Forwarding};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::decide::{Action, Rewrite};
use crate::proxy::worker::Worker;
use crate::state::Shared;

const CONFIG: &str = r#"
[listen]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"

[upstreams.gw]
url = "http://127.0.0.1:9"

[[windows]]
id = "2020-04-20"
start = "2020-04-20 02:00"
end = "2020-04-20 06:00"
services = ["webcollect"]

[[routes]]
id = "api"
path_prefix = "/api/"
kind = "api"
service = "webcollect.api"
upstream = "gw"

[[routes]]
id = "trade-info"
paths = ["/test_gateway/tradeInfo.api"]
kind = "passthrough"
service = "webcollect.api"
upstream = "gw"

[settle_method_drill]
when = "always"
"#;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

const BEFORE: &str = "2020-04-20T01:00:00+09:00";
const DURING: &str = "2020-04-20T02:30:00+09:00";

fn worker(at: &str) -> Arc<Worker> {
    let config = Config::from_toml_with_env(std::path::Path::new("t.toml"), CONFIG, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(t(at)));
    let shared = Shared::new(config, clock.clone(), clock, Arc::new(|_: &str| None)).unwrap();
    Arc::new(Worker::new(Arc::new(shared), 0))
}

/// A request with a complete body, as any `http_body::Body` can be sent to the stack.
fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "x");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if !body.is_empty() {
        req = req.header("content-length", body.len());
    }
    req.body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn conn() -> Arc<Conn> {
    Arc::new(Conn::http(
        "192.0.2.7:40000".parse().unwrap(),
        crate::proxy::conn::Activity::detached(),
        8,
    ))
}

fn call(worker: &Worker, req: Request<Full<Bytes>>, at: &str) -> Call {
    let id = req
        .headers()
        .get("x-request-id")
        .cloned()
        .unwrap_or(http::HeaderValue::from_static("test"));
    Call {
        req: req.map(request_body),
        id,
        view: worker.view(),
        now: t(at),
        conn: conn(),
    }
}

/// An inner service that records the forwarded requests and answers 200 "upstream".
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<AtomicUsize>,
}

impl Service<Forwarding<RequestBody>> for Recorder {
    type Response = Answer;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Answer, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _fwd: Forwarding<RequestBody>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Answer::forwarded(Response::new(ProxyBody::full(
            "upstream",
        )))))
    }
}

async fn body(response: Response<ProxyBody>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn short_circuit_answers_maintenance_without_calling_inner() {
    let worker = worker(DURING);
    let inner = Recorder::default();
    let mut short = ShortCircuit(inner.clone());
    let req = request("POST", "/api/creditToken", &[], "a=1");
    let future = short.call(call(&worker, req, DURING));
    // The decision is known as soon as `call` returns, before any answer.
    assert!(matches!(future.action(), Some(Action::Maintain { .. })));
    let Ok(answer) = future.await;
    assert_eq!(inner.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        answer.response.headers()["x-webcollect-shim"],
        "maintenance"
    );
    let xml = body(answer.response).await;
    assert!(xml.ends_with(b"<returnDate>20200420023000</returnDate>\n</return>\n"));
}

#[tokio::test]
async fn short_circuit_forwards_with_the_route_and_the_settle_choice() {
    let worker = worker(BEFORE);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let inner = tower::service_fn(move |fwd: Forwarding<RequestBody>| {
        *seen2.lock().unwrap() = Some((fwd.route, fwd.rewrite, fwd.req.headers().clone()));
        std::future::ready(Ok::<_, Infallible>(Answer::forwarded(Response::new(
            ProxyBody::full(""),
        ))))
    });
    let mut short = ShortCircuit(inner);
    let req = request(
        "POST",
        "/test_gateway/tradeInfo.api",
        &[("x-webcollect-shim-drill", "pass")],
        "",
    );
    let future = short.call(call(&worker, req, BEFORE));
    let action = future.action();
    let Ok(_answer) = future.await;
    let (route, rewrite, headers) = seen.lock().unwrap().take().unwrap();
    assert_eq!(route, 1);
    assert_eq!(rewrite, Rewrite::Response);
    // The drill header is the shim's; the gateway never sees it.
    assert!(!headers.contains_key("x-webcollect-shim-drill"));
    assert!(matches!(action, Some(Action::Forward { route: 1, .. })));
}

/// A forward step that fails, or answers, as told.
#[derive(Clone)]
struct Fails(fn() -> ProxyError);

impl<B> Service<Forwarding<B>> for Fails {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = std::future::Ready<Result<Response<ProxyBody>, ProxyError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _fwd: Forwarding<B>) -> Self::Future {
        std::future::ready(Err((self.0)()))
    }
}

fn forwarding(
    worker: &Worker,
    req: Request<Full<Bytes>>,
    rewrite: Rewrite,
) -> Forwarding<RequestBody> {
    Forwarding {
        req: req.map(request_body),
        view: worker.view(),
        conn: conn(),
        route: 0,
        rewrite,
        tap: None,
        canonical: false,
    }
}

#[tokio::test]
async fn rescue_turns_every_error_into_its_answer() {
    let worker = worker(BEFORE);
    type Case = (fn() -> ProxyError, u16, Failure);
    let cases: [Case; 3] = [
        (
            || ProxyError::Timeout(std::time::Duration::from_secs(1)),
            504,
            Failure::Timeout,
        ),
        (|| ProxyError::BodyTooLarge, 413, Failure::BodyTooLarge),
        (|| ProxyError::BadRequest, 400, Failure::BadRequest),
    ];
    for (error, status, failure) in cases {
        let rescue = Rescue(Fails(error));
        let fwd = forwarding(&worker, request("GET", "/api/x", &[], ""), Rewrite::None);
        let Ok(answer) = rescue.oneshot(fwd).await;
        assert_eq!(answer.response.status().as_u16(), status);
        assert_eq!(answer.outcome.failure, Some(failure));
        assert!(answer.response.headers().contains_key("x-webcollect-shim"));
    }
}

#[tokio::test]
async fn settle_rewrites_only_what_the_decision_chose() {
    let worker = worker(BEFORE);
    const E04: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return><returnCode>0</returnCode><resultData><settleMethod>3</settleMethod></resultData></return>\n";
    let upstream = tower::service_fn(|fwd: Forwarding| {
        // The rewrite asks for a body it can read.
        let identity = fwd.req.headers().get("accept-encoding").cloned();
        std::future::ready(Ok::<_, ProxyError>(
            Response::builder()
                .header(
                    "x-saw-accept-encoding",
                    identity.unwrap_or(http::HeaderValue::from_static("-")),
                )
                .body(ProxyBody::full(E04))
                .unwrap(),
        ))
    });
    let settle = Rescue(Limit(Settle(upstream)));
    let req = || request("POST", "/test_gateway/tradeInfo.api", &[], "");
    let Ok(answer) = settle
        .clone()
        .oneshot(forwarding(&worker, req(), Rewrite::Response))
        .await;
    assert_eq!(
        answer.response.headers()["x-saw-accept-encoding"],
        "identity"
    );
    let rewritten = body(answer.response).await;
    assert_eq!(rewritten, E04.replace(">3<", ">14<").as_bytes());
    let Ok(answer) = settle
        .oneshot(forwarding(&worker, req(), Rewrite::None))
        .await;
    assert_eq!(body(answer.response).await, E04.as_bytes());
}

#[tokio::test]
async fn credentials_are_marked_sensitive_both_ways_and_nothing_else() {
    use super::sensitive::SensitiveHeaders;
    // The inner service reports which request fields it got marked, and answers with a
    // cookie and a plain field.
    let service = SensitiveHeaders(tower::service_fn(|req: Request<()>| async move {
        let mut marked: Vec<String> = req
            .headers()
            .iter()
            .filter(|(_, v)| v.is_sensitive())
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        marked.sort();
        let mut res = Response::new(marked);
        res.headers_mut()
            .append(http::header::SET_COOKIE, "a=1".parse().unwrap());
        res.headers_mut()
            .append(http::header::SET_COOKIE, "b=2".parse().unwrap());
        res.headers_mut().insert("x-plain", "1".parse().unwrap());
        Ok::<_, Infallible>(res)
    }));
    let req = Request::builder()
        .header("authorization", "Bearer t")
        .header("proxy-authorization", "Basic p")
        .header("cookie", "s=1")
        .header("cookie", "s=2")
        .header("x-plain", "1")
        .body(())
        .unwrap();
    let res = service.oneshot(req).await.unwrap();
    assert_eq!(
        res.body(),
        &[
            "authorization: Bearer t",
            "cookie: s=1",
            "cookie: s=2",
            "proxy-authorization: Basic p",
        ]
    );
    let cookies = res.headers().get_all(http::header::SET_COOKIE);
    assert!(cookies.iter().all(http::HeaderValue::is_sensitive));
    assert_eq!(cookies.iter().count(), 2);
    assert!(!res.headers()["x-plain"].is_sensitive());
}

#[tokio::test]
async fn enter_keeps_or_makes_the_request_id_sets_it_and_echoes_it() {
    let worker = worker(BEFORE);
    // The inner service answers with the id it saw, in a header; with `own`, it also sets
    // an id of its own on the answer, as an upstream may.
    let service = |own: Option<&'static str>| {
        EnterLayer::new(worker.clone(), conn()).layer(tower::service_fn(
            move |call: Call| async move {
                let seen = call.req.headers()[X_REQUEST_ID].clone();
                let mut response = Response::new(ProxyBody::full(""));
                response.headers_mut().insert("x-seen", seen);
                if let Some(own) = own {
                    response
                        .headers_mut()
                        .insert(X_REQUEST_ID, own.parse().unwrap());
                }
                Ok::<_, Infallible>(Answer::forwarded(response))
            },
        ))
    };
    let kept = request("GET", "/", &[("x-request-id", "merchant-42")], "");
    let res = service(None).oneshot(kept).await.unwrap();
    assert_eq!(res.headers()["x-seen"], "merchant-42");
    assert_eq!(res.headers()[X_REQUEST_ID], "merchant-42");

    let res = service(None)
        .oneshot(request("GET", "/", &[], ""))
        .await
        .unwrap();
    let made = res.headers()["x-seen"].clone();
    assert_eq!(made.len(), 32);
    assert_eq!(res.headers()[X_REQUEST_ID], made);
    let next = service(None)
        .oneshot(request("GET", "/", &[], ""))
        .await
        .unwrap();
    assert_ne!(next.headers()[X_REQUEST_ID], made);

    let res = service(Some("upstream-7"))
        .oneshot(request("GET", "/", &[], ""))
        .await
        .unwrap();
    assert_eq!(res.headers().get_all(X_REQUEST_ID).iter().count(), 1);
    assert_eq!(res.headers()[X_REQUEST_ID], "upstream-7");

    // An empty one is the slot a cached maintenance answer keeps: it is filled.
    let kept = request("GET", "/", &[("x-request-id", "merchant-43")], "");
    let res = service(Some("")).oneshot(kept).await.unwrap();
    assert_eq!(res.headers().get_all(X_REQUEST_ID).iter().count(), 1);
    assert_eq!(res.headers()[X_REQUEST_ID], "merchant-43");
}

#[tokio::test]
async fn connection_close_is_rendered_once_and_only_on_http_1() {
    let worker = worker(BEFORE);
    // A refused request with a body: the body is left unread, so HTTP/1 must close.
    for (version, close) in [
        (http::Version::HTTP_11, true),
        (http::Version::HTTP_10, true),
        (http::Version::HTTP_2, false),
    ] {
        let mut req = request("POST", "/api/%2Fx", &[], "a=1");
        *req.version_mut() = version;
        let stack = super::build(worker.clone(), conn(), Fails(|| ProxyError::BadRequest));
        let Ok(res) = stack.oneshot(req).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{version:?}");
        let values: Vec<_> = res.headers().get_all("connection").iter().collect();
        assert_eq!(values.len(), usize::from(close), "{version:?}: {values:?}");
    }
}

#[tokio::test]
async fn the_body_limit_is_applied_once_before_the_settle_relay_and_the_forward() {
    let worker = worker(BEFORE);
    let limit = worker.view().loaded.snapshot.config.server.max_request_body;
    let forwarded = Arc::new(AtomicUsize::new(0));
    let counted = forwarded.clone();
    let upstream = tower::service_fn(move |_fwd: Forwarding| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, ProxyError>(Response::new(ProxyBody::full("ok"))))
    });
    let too_large = (limit + 1).to_string();
    for rewrite in [Rewrite::None, Rewrite::Request, Rewrite::Response] {
        let req = request("POST", "/api/x", &[("content-length", &too_large)], "");
        let stack = Rescue(Limit(Settle(upstream.clone())));
        let Ok(answer) = stack.oneshot(forwarding(&worker, req, rewrite)).await;
        assert_eq!(answer.response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.outcome.failure, Some(Failure::BodyTooLarge));
        assert!(answer.close, "the body is left unread");
    }
    assert_eq!(forwarded.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn access_log_counts_each_outcome_once() {
    let worker = worker(DURING);
    let service = EnterLayer::new(worker.clone(), conn()).layer(
        super::log::AccessLogLayer::new(worker.clone()).layer(ShortCircuit(Recorder::default())),
    );
    let Ok(response) = service
        .oneshot(request("GET", "/api/creditToken", &[], ""))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = worker.shared.metrics.encode();
    assert!(
        metrics.contains(
            "webcollect_shim_requests_total{route=\"api\",decision=\"maintenance\",status=\"2xx\"} 1"
        ),
        "{metrics}"
    );
}

/// Panics on `/panic`, answers 200 otherwise.
#[derive(Clone)]
struct PanicsOnPath;

impl Service<Forwarding> for PanicsOnPath {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, fwd: Forwarding) -> Self::Future {
        let panics = fwd.req.uri().path() == "/api/panic";
        Box::pin(async move {
            assert!(!panics, "test layer panics on purpose");
            Ok(Response::new(ProxyBody::full("ok")))
        })
    }
}

#[tokio::test]
async fn a_panic_answers_500_and_the_connection_carries_on() {
    let worker = worker(BEFORE);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_worker = worker.clone();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let stack = super::build(
            server_worker,
            Arc::new(Conn::http(
                peer,
                crate::proxy::conn::Activity::detached(),
                8,
            )),
            PanicsOnPath,
        );
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(stack),
            )
            .await;
    });
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let get = |path: &str| {
        Request::get(path)
            .header("host", "shim.test")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap()
    };
    let panicked = sender.send_request(get("/api/panic")).await.unwrap();
    assert_eq!(panicked.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(panicked.headers()["x-webcollect-shim"], "internal-error");
    let _ = panicked.into_body().collect().await.unwrap();
    // Same connection, next request.
    sender.ready().await.unwrap();
    let next = sender.send_request(get("/api/fine")).await.unwrap();
    assert_eq!(next.status(), StatusCode::OK);
    assert!(next.headers().contains_key("x-request-id"));
    assert_eq!(next.into_body().collect().await.unwrap().to_bytes(), "ok");
}
