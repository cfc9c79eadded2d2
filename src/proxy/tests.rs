//! Each layer alone (`ServiceExt::oneshot`), and the whole stack on a real connection.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::{Layer as _, Service, ServiceExt as _};

use super::body::ProxyBody;
use super::conn::Conn;
use super::rescue::{Failure, ProxyError, RescueLayer};
use super::{Answer, Call, Decided as _, Forwarding, Outcome};
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

/// A real `Request<Incoming>` (hyper has no public constructor): `raw` is parsed by a hyper
/// server on an in-memory pipe, whose connection stays alive as long as the test needs it.
async fn incoming(raw: &'static [u8]) -> Request<Incoming> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(req);
            }
            // Never answers: the request (and its body) stay usable.
            std::future::pending::<Result<Response<ProxyBody>, Infallible>>()
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    tokio::spawn(async move {
        let mut client = client;
        client.write_all(raw).await.unwrap();
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink).await;
    });
    rx.await.unwrap()
}

fn conn() -> Arc<Conn> {
    Arc::new(Conn::http(
        "192.0.2.7:40000".parse().unwrap(),
        crate::proxy::conn::Activity::detached(),
        8,
    ))
}

async fn call(worker: &Worker, raw: &'static [u8], at: &str) -> Call {
    Call {
        req: incoming(raw).await,
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

impl Service<Forwarding> for Recorder {
    type Response = Answer;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Answer, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _fwd: Forwarding) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Answer {
            response: Response::new(ProxyBody::full("upstream")),
            outcome: Outcome::default(),
        }))
    }
}

async fn body(response: Response<ProxyBody>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn decide_answers_maintenance_without_calling_inner() {
    let worker = worker(DURING);
    let inner = Recorder::default();
    let mut decide = super::decide::DecideLayer.layer(inner.clone());
    let req = b"POST /api/creditToken HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=1";
    let future = decide.call(call(&worker, req, DURING).await);
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
async fn decide_forwards_with_the_route_and_the_settle_choice() {
    let worker = worker(BEFORE);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let inner = tower::service_fn(move |fwd: Forwarding| {
        *seen2.lock().unwrap() = Some((fwd.route, fwd.rewrite, fwd.req.headers().clone()));
        std::future::ready(Ok::<_, Infallible>(Answer {
            response: Response::new(ProxyBody::full("")),
            outcome: Outcome::default(),
        }))
    });
    let mut decide = super::decide::DecideLayer.layer(inner);
    let req = b"POST /test_gateway/tradeInfo.api HTTP/1.1\r\nHost: x\r\nX-Webcollect-Shim-Drill: pass\r\nContent-Length: 0\r\n\r\n";
    let future = decide.call(call(&worker, req, BEFORE).await);
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

impl Service<Forwarding> for Fails {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = std::future::Ready<Result<Response<ProxyBody>, ProxyError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _fwd: Forwarding) -> Self::Future {
        std::future::ready(Err((self.0)()))
    }
}

async fn forwarding(worker: &Worker, raw: &'static [u8], rewrite: Rewrite) -> Forwarding {
    let req = incoming(raw)
        .await
        .map(|b| super::body::UpstreamBody::client(b, 1 << 20, std::time::Duration::from_secs(5)));
    Forwarding {
        req,
        view: worker.view(),
        conn: conn(),
        route: 0,
        rewrite,
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
        let rescue = RescueLayer.layer(Fails(error));
        let fwd = forwarding(
            &worker,
            b"GET /api/x HTTP/1.1\r\nHost: x\r\n\r\n",
            Rewrite::None,
        )
        .await;
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
        std::future::ready(Ok::<_, Infallible>(Answer {
            response: Response::builder()
                .header(
                    "x-saw-accept-encoding",
                    identity.unwrap_or(http::HeaderValue::from_static("-")),
                )
                .body(ProxyBody::full(E04))
                .unwrap(),
            outcome: Outcome::default(),
        }))
    });
    let req = b"POST /test_gateway/tradeInfo.api HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    let settle = super::settle::SettleLayer.layer(upstream);
    let Ok(answer) = settle
        .clone()
        .oneshot(forwarding(&worker, req, Rewrite::Response).await)
        .await;
    assert_eq!(
        answer.response.headers()["x-saw-accept-encoding"],
        "identity"
    );
    let rewritten = body(answer.response).await;
    assert_eq!(rewritten, E04.replace(">3<", ">14<").as_bytes());
    let Ok(answer) = settle
        .oneshot(forwarding(&worker, req, Rewrite::None).await)
        .await;
    assert_eq!(body(answer.response).await, E04.as_bytes());
}

#[tokio::test]
async fn credentials_are_marked_sensitive_both_ways_and_nothing_else() {
    use super::sensitive::SensitiveHeadersLayer;
    // The inner service reports which request fields it got marked, and answers with a
    // cookie and a plain field.
    let service = SensitiveHeadersLayer.layer(tower::service_fn(|req: Request<()>| async move {
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
async fn request_id_is_kept_or_made_set_on_the_request_and_echoed() {
    use super::request_id::{RequestIdLayer, X_REQUEST_ID};
    let worker = worker(BEFORE);
    // The inner service answers with the id it saw, in the body; with `own`, it also sets
    // an id of its own on the answer, as an upstream may.
    let service = |own: Option<&'static str>| {
        RequestIdLayer::new(worker.clone()).layer(tower::service_fn(
            move |req: Request<()>| async move {
                let seen = req.headers().get(X_REQUEST_ID).cloned();
                let mut res = Response::new(seen);
                if let Some(own) = own {
                    res.headers_mut().insert(X_REQUEST_ID, own.parse().unwrap());
                }
                Ok::<_, Infallible>(res)
            },
        ))
    };
    let kept = Request::builder()
        .header(X_REQUEST_ID, "merchant-42")
        .body(())
        .unwrap();
    let res = service(None).oneshot(kept).await.unwrap();
    assert_eq!(res.body().as_ref().unwrap(), "merchant-42");
    assert_eq!(res.headers()[X_REQUEST_ID], "merchant-42");

    let res = service(None).oneshot(Request::new(())).await.unwrap();
    let made = res.body().clone().expect("a made id is set on the request");
    assert_eq!(made.len(), 32);
    assert_eq!(res.headers()[X_REQUEST_ID], made);
    let next = service(None).oneshot(Request::new(())).await.unwrap();
    assert_ne!(next.headers()[X_REQUEST_ID], made);

    let res = service(Some("upstream-7"))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(res.headers().get_all(X_REQUEST_ID).iter().count(), 1);
    assert_eq!(res.headers()[X_REQUEST_ID], "upstream-7");

    // An empty one is the slot a cached maintenance answer keeps: it is filled.
    let kept = Request::builder()
        .header(X_REQUEST_ID, "merchant-43")
        .body(())
        .unwrap();
    let res = service(Some("")).oneshot(kept).await.unwrap();
    assert_eq!(res.headers().get_all(X_REQUEST_ID).iter().count(), 1);
    assert_eq!(res.headers()[X_REQUEST_ID], "merchant-43");
}

#[tokio::test]
async fn access_log_counts_each_outcome_once() {
    let worker = worker(DURING);
    let service = super::log::AccessLogLayer::new(worker.clone(), conn())
        .layer(super::decide::DecideLayer.layer(Recorder::default()));
    let req = incoming(b"GET /api/creditToken HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let Ok(response) = service.oneshot(req).await;
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
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, fwd: Forwarding) -> Self::Future {
        let panics = fwd.req.uri().path() == "/api/panic";
        Box::pin(async move {
            assert!(!panics, "test layer panics on purpose");
            Ok(Answer {
                response: Response::new(ProxyBody::full("ok")),
                outcome: Outcome::default(),
            })
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
