//! Test harness: recording upstreams and a shim on 127.0.0.1:0, a raw HTTP/1.1 client, the
//! shim's admin service called without a socket, and config helpers. Every server hands over
//! an already-bound listener: no port races.

#![allow(dead_code)]

// Headless Chromium: tabs, merchant checkout pages, what a shopper sees.
pub mod browser;
// The stand-in gateway on port 0, and config/drill.toml in front of it.
pub mod gateway;
// TLS clients that trust a given CA, and an https upstream that records SNI and Host.
pub mod tls;
// Admin requests: through a shim's admin service (`oneshot`), or as bytes for a socket.
pub mod admin;

pub use admin::*;

use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use webcollect_shim::admin::Admin;
use webcollect_shim::clock::ManualClock;
use webcollect_shim::config::Config;
use webcollect_shim::state::Shared;
use webcollect_shim::{Listeners, Shim};

pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
type HandlerFuture = Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> HandlerFuture + Send + Sync>;

/// An RFC 3339 instant.
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

pub fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body fed chunk by chunk through a channel, so a test controls when bytes exist.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// What an upstream saw of one request (head only; handlers record bodies they need).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query exactly as received.
    pub target: String,
    pub version: Version,
    pub headers: HeaderMap,
}

/// A loopback upstream that records every request head and every accepted connection.
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Serves HTTP/1.1 with `handler`.
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen2, conns2) = (seen.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns2.fetch_add(1, Ordering::SeqCst);
                let (handler, seen) = (handler.clone(), seen2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        seen.lock().unwrap().push(Seen {
                            method: req.method().to_string(),
                            target: req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default(),
                            version: req.version(),
                            headers: req.headers().clone(),
                        });
                        let fut = handler(req);
                        async move { Ok::<_, Infallible>(fut.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            seen,
            connections,
            task,
        }
    }

    /// Answers 200 `text/xml` with `body` and a few response headers, after reading the body.
    pub async fn fixed(body: &'static str) -> Self {
        Self::start(move |req: Request<Incoming>| async move {
            let _ = req.into_body().collect().await;
            Response::builder()
                .header("content-type", "text/xml; charset=UTF-8")
                .body(full(body))
                .unwrap()
        })
        .await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running shim on 127.0.0.1:0 (proxy and admin) with an injected clock.
pub struct TestShim {
    pub addr: SocketAddr,
    /// The TLS listener, when the config sets `[listen] tls` (bound on 127.0.0.1:0).
    pub tls_addr: Option<SocketAddr>,
    pub tls: Option<Arc<webcollect_shim::tls::Frontend>>,
    /// The admin listener (for tests of the wire; others call [`TestShim::admin_service`]).
    pub admin: SocketAddr,
    pub clock: ManualClock,
    pub shared: Arc<Shared>,
    admin_service: Admin,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// An environment with only `WEBCOLLECT_SHIM_ADMIN_TOKEN` set (to [`ADMIN_TOKEN`]).
pub fn test_env(name: &str) -> Option<String> {
    (name == "WEBCOLLECT_SHIM_ADMIN_TOKEN").then(|| ADMIN_TOKEN.to_string())
}

/// The admin token [`test_env`] provides.
pub const ADMIN_TOKEN: &str = "test-token-0123456789abcdef";

impl TestShim {
    /// Starts a shim on `toml` (which must be valid) at `now`. The file is not watched.
    pub async fn start(toml: &str, now: DateTime<Utc>) -> Self {
        let config = Config::from_toml_with_env(std::path::Path::new("test.toml"), toml, &test_env)
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
        Self::start_config(config, now).await
    }

    /// Starts a shim on the config file at `path` (reloads re-read it).
    pub async fn start_file(path: &std::path::Path, now: DateTime<Utc>) -> Self {
        let config = Config::load_with_env(path, &test_env)
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
        Self::start_config(config, now).await
    }

    pub async fn start_config(config: Config, now: DateTime<Utc>) -> Self {
        Self::start_workers(config, now, 1).await
    }

    /// Starts a shim with `workers` worker threads, each with its own listener on one port
    /// (and one on another port for TLS when the config sets `[listen] tls`).
    pub async fn start_workers(config: Config, now: DateTime<Utc>, workers: usize) -> Self {
        let tls = if config.listen.tls.is_some() {
            bind(workers)
        } else {
            Vec::new()
        };
        Self::start_on(config, now, bind(workers), tls).await
    }

    /// Starts a shim on listeners bound beforehand (see [`bind`]), for configs that must
    /// name the shim's own addresses. Returns once every worker serves (`/readyz`).
    pub async fn start_on(
        config: Config,
        now: DateTime<Utc>,
        proxy: Vec<std::net::TcpListener>,
        tls: Vec<std::net::TcpListener>,
    ) -> Self {
        let shim = Self::spawn_on(config, now, proxy, tls).await;
        let shared = shim.shared.clone();
        eventually(Duration::from_secs(10), "every worker serving", || {
            let ready = shared.readiness().check().is_ok();
            async move { ready }
        })
        .await;
        shim
    }

    /// [`TestShim::start_on`] without waiting for the workers (a test of `/readyz`).
    pub async fn spawn_on(
        config: Config,
        now: DateTime<Utc>,
        proxy: Vec<std::net::TcpListener>,
        tls: Vec<std::net::TcpListener>,
    ) -> Self {
        let clock = ManualClock::new(now);
        let shim = Shim::with_env(config, Arc::new(clock.clone()), Arc::new(test_env)).unwrap();
        let shared = shim.shared();
        let admin_service = shim.admin();
        let tls_frontend = shim.tls();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = proxy[0].local_addr().unwrap();
        let tls_addr = tls.first().map(|l| l.local_addr().unwrap());
        let admin_addr = admin.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let listeners = Listeners {
            proxy,
            tls,
            admin: Some(admin),
        };
        let task = tokio::spawn(async move {
            shim.run(listeners, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            tls_addr,
            tls: tls_frontend,
            admin: admin_addr,
            clock,
            shared,
            admin_service,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts shutdown without waiting for it.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Stops the shim and re-raises a panic from its task.
    pub async fn stop(mut self) {
        self.signal_shutdown();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Waits for the shim's task to end (after [`TestShim::signal_shutdown`]).
    pub async fn join(mut self) {
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for TestShim {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Reads until the peer closes (or the stream fails); the time it took, or `None` when it is
/// still open after `limit`.
pub async fn closed_within<S>(stream: &mut S, limit: Duration) -> Option<Duration>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// `workers` SO_REUSEPORT listeners on one new port of 127.0.0.1.
pub fn bind(workers: usize) -> Vec<std::net::TcpListener> {
    webcollect_shim::runtime::bind_proxy("127.0.0.1:0".parse().unwrap(), workers).unwrap()
}

/// The harness's listeners (ephemeral ports), server and `gw` upstream at `upstream`, from
/// `tests/fixtures/base.toml`: the part every harness config shares.
pub fn base_config(upstream: &str) -> String {
    include_str!("../fixtures/base.toml").replace("{upstream}", upstream)
}

/// A minimal config: one upstream, API/page/token routes, the 2020-04-20 window
/// ([`base_config`] and `tests/fixtures/notice.toml`).
pub fn config(upstream: &str) -> String {
    format!(
        "{}\n{}",
        base_config(upstream),
        include_str!("../fixtures/notice.toml")
    )
}

/// `toml` (from [`config`]) with a TLS listener on an ephemeral port.
pub fn with_tls_listener(toml: &str) -> String {
    toml.replacen("[listen]\n", "[listen]\ntls = \"127.0.0.1:0\"\n", 1)
}

/// The harness config with a TLS listener and a local CA in `ca_dir`, plus `tls_extra` in
/// `[tls]`.
pub fn tls_config(upstream: &str, ca_dir: &std::path::Path, tls_extra: &str) -> String {
    format!(
        "{}\n[tls]\nca_dir = {:?}\n{tls_extra}\n",
        with_tls_listener(&config(upstream)),
        ca_dir.display().to_string()
    )
}

/// `toml` (from [`config`]) with `keys` (lines) added to `[upstreams.gw]`.
pub fn with_upstream_keys(toml: &str, keys: &str) -> String {
    toml.replacen(
        "response_timeout = \"2s\"\n",
        &format!("response_timeout = \"2s\"\n{keys}\n"),
        1,
    )
}

/// Before, during and after the notice's window.
pub const BEFORE: &str = "2020-04-20T01:00:00+09:00";
pub const DURING: &str = "2020-04-20T02:30:00+09:00";
pub const AFTER: &str = "2020-04-20T06:00:00+09:00";

/// A parsed HTTP/1.1 response read off a raw socket (or a service's, read whole).
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// A raw HTTP/1.1 connection: exact request bytes in, parsed responses out.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The last request was HEAD: its response has no body whatever the headers say.
    head: bool,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            head: false,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.head = bytes.starts_with(b"HEAD ");
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("timed out reading from the shim")
            .unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads one response (Content-Length or chunked framing, or until close).
    pub async fn read_response(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            assert!(
                self.fill().await,
                "connection closed before a response head"
            );
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let body = if self.head || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                assert!(self.fill().await, "connection closed mid-body");
            }
            self.buf.drain(..len).collect()
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    assert!(self.fill().await);
                };
                let size_text = String::from_utf8(self.buf[..line_end].to_vec()).unwrap();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    assert!(self.fill().await);
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            while self.fill().await {}
            std::mem::take(&mut self.buf)
        };
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// The socket, for tests that read raw bytes.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// True when the peer has closed the connection (reads EOF).
    pub async fn is_closed(&mut self) -> bool {
        !self.fill().await
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    conn.send(request).await;
    conn.read_response().await
}

/// The JSON body of a response.
pub fn json(res: &RawResponse) -> serde_json::Value {
    serde_json::from_slice(&res.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", res.text()))
}

/// `POST path` with a small form body, as a merchant's server would send it.
pub fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: shim.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: shim.test\r\n\r\n").into_bytes()
}

/// Status of a response built by a handler.
pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

pub fn executor() -> TokioExecutor {
    TokioExecutor::new()
}

/// The real binary running on a config file; its stderr lines are collected.
pub struct ShimProcess {
    pub pid: u32,
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ShimProcess {
    pub fn start(
        config: &std::path::Path,
        format_json: bool,
    ) -> (Self, std::net::SocketAddr, std::net::SocketAddr) {
        Self::start_with_env(config, format_json, &[])
    }

    /// [`ShimProcess::start`] with extra environment variables.
    pub fn start_with_env(
        config: &std::path::Path,
        format_json: bool,
        env: &[(&str, &str)],
    ) -> (Self, std::net::SocketAddr, std::net::SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "debug,webcollect_shim=trace")
            .env_remove("WEBCOLLECT_SHIM_CONFIG")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut running = Self {
            pid: child.id(),
            child,
            lines,
            seen: Vec::new(),
        };
        let serving = running.wait_for("Serving merchant traffic.");
        let field = |name: &str| -> std::net::SocketAddr {
            let value = if format_json {
                let v: serde_json::Value = serde_json::from_str(&serving).unwrap();
                v[name].as_str().unwrap().to_string()
            } else {
                serving
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{name}=")))
                    .unwrap()
                    .to_string()
            };
            value.parse().unwrap()
        };
        let (proxy, admin) = (field("proxy"), field("admin"));
        (running, proxy, admin)
    }

    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| {
                    panic!(
                        "no log line with {needle:?}; saw:\n{}",
                        self.seen.join("\n")
                    )
                });
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The log lines read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Open file descriptors of the process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, Iterator::count)
    }

    /// Kills the process and returns every line it logged. For tests about what happens at
    /// start: a SIGTERM right after start can beat the shim's signal handlers.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }

    pub fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "shim exited with {status} after SIGTERM");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for ShimProcess {
    /// A test that panics does not leave its shim running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 20 ms until it holds; panics naming `what` when it still does not
/// after `within`. Returns how long it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{what}: still not so after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh, empty directory under the system temp dir, unique to this process and `name`.
pub fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("webcollect-shim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A directory laid out like a mounted Kubernetes ConfigMap: `NAME → ..data/NAME` and
/// `..data → ..<timestamp>`, where only the timestamped directory holds the file.
/// [`ConfigMapDir::update`] changes it the way the kubelet does.
pub struct ConfigMapDir {
    pub dir: std::path::PathBuf,
    name: String,
    generation: u32,
}

impl ConfigMapDir {
    pub fn new(dir: &std::path::Path, name: &str, text: &str) -> Self {
        let cm = Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            generation: 0,
        };
        std::fs::create_dir_all(dir).unwrap();
        let payload = cm.payload_dir();
        std::fs::create_dir(dir.join(&payload)).unwrap();
        std::fs::write(dir.join(&payload).join(name), text).unwrap();
        std::os::unix::fs::symlink(&payload, dir.join("..data")).unwrap();
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        cm
    }

    /// The config file as a pod sees it (`NAME`, a symlink through `..data`).
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.join(&self.name)
    }

    fn payload_dir(&self) -> String {
        format!(
            "..2026_11_27_12_00_{:02}.{}",
            self.generation,
            std::process::id()
        )
    }

    /// The kubelet's atomic update: the new payload goes into a new timestamped directory,
    /// a `..data_tmp` symlink to it is renamed over `..data`, and the old directory is
    /// removed. `NAME` itself is never touched.
    pub fn update(&mut self, text: &str) {
        let old = self.payload_dir();
        self.generation += 1;
        let new = self.payload_dir();
        std::fs::create_dir(self.dir.join(&new)).unwrap();
        std::fs::write(self.dir.join(&new).join(&self.name), text).unwrap();
        std::os::unix::fs::symlink(&new, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.join(old)).unwrap();
    }
}
