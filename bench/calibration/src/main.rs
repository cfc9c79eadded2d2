//! The least a hyper pass-through can do: the calibration behind issue 10's speed targets.
//!
//! The shim's threading model without the shim: one `current_thread` runtime per worker, each
//! with its own `SO_REUSEPORT` listener and its own pool of `hyper::client::conn::http1`
//! connections, so a request never leaves the thread that accepted it. Every request goes to
//! the one upstream. Nothing else: no routing, no maintenance decision, no timeouts, no access
//! log or metrics, no tower layers, no error answers (an upstream failure drops the
//! connection).
//!
//! With `headers`, it also does the header work the contract requires of every forwarded
//! request and answer: the loop check on `Via`, hop-by-hop fields stripped both ways (and the
//! fields `Connection` names), `Host` set to the upstream's, `X-Forwarded-For`, `-Proto` and
//! `-Host`, this process's `Via` entry, and an `X-Request-Id` kept or generated, forwarded and
//! echoed. The stripping and the `Via` mark are the shim's own code (`src/proxy/forward.rs`,
//! `src/decide/via.rs`); the inserts are the ones `forward.rs` makes.
//!
//! With `tower`, it does that behind the shape issue 10 asks of the shim: a
//! `tower::ServiceBuilder` stack of eight layers (tower-http's `CatchPanic` outermost, then
//! seven that only pass the request and the answer on), joined to hyper by hyper-util's
//! `TowerToHyperService`. It measures what the shape costs when the layers do no work.
//!
//! With `tower-short`, the same eight layers answer every request themselves with the shim's
//! 158-byte maintenance XML and the headers the shim's canned answer carries (`Content-Type`,
//! `Cache-Control`, `X-Webcollect-Shim`, the request id kept or generated and echoed), never
//! touching the upstream: the floor for the shim's short-circuit. A request with a body (a
//! form POST) is answered once its body has been read to the end and thrown away, as the
//! shim drains a short-circuited body so the keep-alive connection stays usable; a request
//! without one is answered at once, as the shim's is.
//!
//! ```text
//! webcollect-shim-calibration LISTEN UPSTREAM WORKERS [headers|tower|tower-short]
//! ```
//!
//! `bench/calibrate.sh` runs it beside nginx and the shim. It is a measuring stick, not a
//! proxy: it trusts its upstream and its clients.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer, DefaultResponseForPanic};
use webcollect_shim::decide::via::ViaMark;
use webcollect_shim::proxy::forward::strip_hop_by_hop;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// This process's `Via` mark: the loop check and the entry, as the shim's.
static VIA: std::sync::LazyLock<ViaMark> =
    std::sync::LazyLock::new(|| ViaMark::named("calibration"));

fn main() {
    let mut args = std::env::args().skip(1);
    let mut next = |what: &str| args.next().unwrap_or_else(|| usage(what));
    let listen: SocketAddr = next("LISTEN").parse().unwrap_or_else(|_| usage("LISTEN"));
    let upstream: SocketAddr = next("UPSTREAM")
        .parse()
        .unwrap_or_else(|_| usage("UPSTREAM"));
    let workers: usize = next("WORKERS").parse().unwrap_or_else(|_| usage("WORKERS"));
    let mode = match args.next().as_deref() {
        None => Mode::Bare,
        Some("headers") => Mode::Headers,
        Some("tower") => Mode::Tower,
        Some("tower-short") => Mode::TowerShort,
        Some(_) => usage("the mode"),
    };
    let threads: Vec<_> = (0..workers)
        .map(|_| std::thread::spawn(move || worker(listen, upstream, mode)))
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

fn usage(what: &str) -> ! {
    eprintln!("bad or missing {what}");
    eprintln!(
        "usage: webcollect-shim-calibration LISTEN UPSTREAM WORKERS [headers|tower|tower-short]"
    );
    std::process::exit(2);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bare,
    Headers,
    Tower,
    TowerShort,
}

/// The shim's maintenance answer for the API (SPEC §4.1), 158 bytes.
const MAINTENANCE_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n";

/// `tower-short`'s answer: the maintenance XML with the shim's canned headers and the
/// request id, kept or made from the worker's counter.
fn short_circuit(req: &Request<Incoming>, ids: &Cell<u64>) -> Response<Full<Bytes>> {
    let id = match req.headers().get(X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => next_id(ids),
    };
    let mut res = Response::new(Full::new(Bytes::from_static(MAINTENANCE_XML.as_bytes())));
    let headers = res.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=UTF-8"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        HeaderName::from_static("x-webcollect-shim"),
        HeaderValue::from_static("maintenance"),
    );
    headers.insert(X_REQUEST_ID, id);
    res
}

/// `tower-short`'s answer future, shaped as the shim's short-circuit: the answer at once when
/// the request has no body; otherwise a boxed future that reads the body to its end, throws
/// it away, then answers (a body that fails to arrive still gets the answer, and hyper closes
/// the connection).
enum ShortFuture {
    Answered(Option<Response<Full<Bytes>>>),
    Draining(Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>),
}

impl Future for ShortFuture {
    type Output = Result<Response<Full<Bytes>>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Answered(answer) => {
                Poll::Ready(Ok(answer.take().expect("future polled after completion")))
            }
            Self::Draining(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

fn answer_short(req: Request<Incoming>, ids: &Cell<u64>) -> ShortFuture {
    let answer = short_circuit(&req, ids);
    let mut body = req.into_body();
    if body.is_end_stream() {
        return ShortFuture::Answered(Some(answer));
    }
    ShortFuture::Draining(Box::pin(async move {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
        answer
    }))
}

/// This worker's idle upstream connections (most recently used last). Only its thread
/// touches them; a `Mutex` because tower-http's `CatchPanic` wants `Send` bodies (the shim's
/// pool is one too).
type Pool = Arc<Mutex<Vec<SendRequest<Incoming>>>>;

fn lock(pool: &Pool) -> std::sync::MutexGuard<'_, Vec<SendRequest<Incoming>>> {
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

fn worker(listen: SocketAddr, upstream: SocketAddr, mode: Mode) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = reuseport_listener(listen).expect("the listener");
        let pool = Pool::default();
        let upstream_host = HeaderValue::from_str(&upstream.to_string()).expect("a host value");
        let ids = Rc::new(Cell::new(0u64));
        loop {
            let Ok((client, peer)) = listener.accept().await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let peer = HeaderValue::from_str(&peer.ip().to_string()).expect("an address value");
            if mode == Mode::TowerShort {
                let ids = ids.clone();
                let io = TokioIo::new(client);
                let http1 = hyper::server::conn::http1::Builder::new();
                let answer =
                    tower::service_fn(move |req: Request<Incoming>| answer_short(req, &ids));
                tokio::task::spawn_local(async move {
                    let stack = eight_layers(answer);
                    let _ = http1
                        .serve_connection(io, TowerToHyperService::new(stack))
                        .await;
                });
                continue;
            }
            let (pool, upstream_host, ids) = (pool.clone(), upstream_host.clone(), ids.clone());
            let handle = move |req: Request<Incoming>| {
                let (pool, upstream_host) = (pool.clone(), upstream_host.clone());
                let edit = (mode != Mode::Bare).then(|| Edit {
                    peer: peer.clone(),
                    upstream_host,
                    id: next_id(&ids),
                });
                exchange(pool, upstream, req, edit)
            };
            let io = TokioIo::new(client);
            let http1 = hyper::server::conn::http1::Builder::new();
            tokio::task::spawn_local(async move {
                let _ = if mode == Mode::Tower {
                    let stack = eight_layers(tower::service_fn(handle));
                    http1
                        .serve_connection(io, TowerToHyperService::new(stack))
                        .await
                } else {
                    http1
                        .serve_connection(io, hyper::service::service_fn(handle))
                        .await
                };
            });
        }
    });
}

/// Issue 10's shape around `service`: tower-http's `CatchPanic` outermost, then seven
/// layers that only pass things on.
type EightLayers<S> =
    CatchPanic<Pass<Pass<Pass<Pass<Pass<Pass<Pass<S>>>>>>>, DefaultResponseForPanic>;

fn eight_layers<S>(service: S) -> EightLayers<S> {
    ServiceBuilder::new()
        .layer(CatchPanicLayer::new())
        .layer(PassLayer)
        .layer(PassLayer)
        .layer(PassLayer)
        .layer(PassLayer)
        .layer(PassLayer)
        .layer(PassLayer)
        .layer(PassLayer)
        .service(service)
}

/// A layer that passes the request and the answer on, as each of the shim's layers does
/// around its own work.
#[derive(Debug, Clone, Copy)]
struct PassLayer;

impl<S> Layer<S> for PassLayer {
    type Service = Pass<S>;

    fn layer(&self, inner: S) -> Pass<S> {
        Pass { inner }
    }
}

#[derive(Debug, Clone)]
struct Pass<S> {
    inner: S,
}

impl<S, R> Service<R> for Pass<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = PassFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> PassFuture<S::Future> {
        PassFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    struct PassFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for PassFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// What the `headers` mode adds to a request.
struct Edit {
    peer: HeaderValue,
    upstream_host: HeaderValue,
    /// Used when the client sent none: 16 hex digits from a per-worker counter.
    id: HeaderValue,
}

fn next_id(ids: &Cell<u64>) -> HeaderValue {
    let n = ids.get().wrapping_add(1);
    ids.set(n);
    let mut hex = [0u8; 16];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&hex).expect("hex digits")
}

async fn exchange(
    pool: Pool,
    upstream: SocketAddr,
    req: Request<Incoming>,
    edit: Option<Edit>,
) -> Result<Response<Returning>, hyper::Error> {
    let mut sender = loop {
        let idle = lock(&pool).pop();
        match idle {
            Some(sender) if sender.is_ready() => break sender,
            Some(_) => {}
            None => {
                let stream = tokio::net::TcpStream::connect(upstream)
                    .await
                    .expect("the upstream accepts");
                let _ = stream.set_nodelay(true);
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::task::spawn_local(conn);
                break sender;
            }
        }
    };
    let (mut parts, body) = req.into_parts();
    parts.uri = match parts.uri.path_and_query() {
        Some(origin_form) => origin_form.clone().into(),
        None => "/".parse().expect("a path"),
    };
    let version = parts.version;
    let id = edit.map(|edit| {
        let headers = &mut parts.headers;
        assert!(!VIA.is_in(headers), "the request came back around");
        strip_hop_by_hop(headers);
        let original_host = headers.get(HOST).cloned();
        headers.insert(HOST, edit.upstream_host);
        let forwarded_for = match headers.get(X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
            None => edit.peer,
            Some(prior) => {
                let folded = [prior, b", ", edit.peer.as_bytes()].concat();
                HeaderValue::from_bytes(&folded).unwrap_or(edit.peer)
            }
        };
        headers.insert(X_FORWARDED_FOR, forwarded_for);
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        if let Some(host) = original_host {
            headers.insert(X_FORWARDED_HOST, host);
        }
        VIA.append(headers, version);
        let id = headers.get(X_REQUEST_ID).cloned().unwrap_or(edit.id);
        headers.insert(X_REQUEST_ID, id.clone());
        id
    });
    let mut response = sender
        .send_request(Request::from_parts(parts, body))
        .await?;
    if let Some(id) = id {
        strip_hop_by_hop(response.headers_mut());
        response.headers_mut().insert(X_REQUEST_ID, id);
    }
    Ok(response.map(|body| Returning::new(body, sender, pool)))
}

/// The upstream's answer body; its connection goes back to the pool when the body ends (not
/// before, so the next request never finds it busy).
struct Returning {
    body: Incoming,
    back: Option<(SendRequest<Incoming>, Pool)>,
}

impl Returning {
    fn new(body: Incoming, sender: SendRequest<Incoming>, pool: Pool) -> Self {
        let mut this = Self {
            body,
            back: Some((sender, pool)),
        };
        if this.body.is_end_stream() {
            this.release();
        }
        this
    }

    fn release(&mut self) {
        if let Some((sender, pool)) = self.back.take() {
            lock(&pool).push(sender);
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        match &frame {
            None => self.release(),
            Some(Ok(_)) if self.body.is_end_stream() => self.release(),
            Some(Ok(_)) => {}
            Some(Err(_)) => self.back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
