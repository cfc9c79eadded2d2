//! The stand-in gateway (`webcollect-shim mock-gateway`) on 127.0.0.1:0 with a manual clock,
//! and the shipped drill config pointed at it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use webcollect_shim::clock::ManualClock;
use webcollect_shim::qa::gateway::{self, GatewayOptions};

use super::{RawResponse, t};

/// A running stand-in gateway.
pub struct StandIn {
    pub addr: SocketAddr,
    pub clock: ManualClock,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl StandIn {
    /// A stand-in with default options whose clock reads `at`.
    pub async fn start(at: &str) -> Self {
        Self::with_options(at, GatewayOptions::default()).await
    }

    /// A stand-in with `options` (its clock replaced by a manual one reading `at`).
    pub async fn with_options(at: &str, options: GatewayOptions) -> Self {
        Self::with_clock(ManualClock::new(t(at)), options).await
    }

    /// A stand-in on `clock` (e.g. one shared with a previous run).
    pub async fn with_clock(clock: ManualClock, options: GatewayOptions) -> Self {
        let options = GatewayOptions {
            clock: Some(Arc::new(clock.clone())),
            ..options
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            gateway::serve(listener, options, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            clock,
            stop: Some(tx),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits (re-raising a panic of its task).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer came from the stand-in (not from the shim, not from anything else).
pub fn from_stand_in(res: &RawResponse) -> bool {
    res.header("x-webcollect-mock-gateway") == Some("1")
}

/// The text of every `<name>` element, in order (flat: the stand-in writes one per line).
pub fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.lines()
        .filter_map(|l| l.strip_prefix(open.as_str())?.strip_suffix(close.as_str()))
        .map(str::to_string)
        .collect()
}

/// config/drill.toml with its stand-in upstream replaced by `stand_in` and ephemeral
/// listeners. Its drill clock starts at 2020-04-20 01:00 JST and runs 60× fast: 60 real
/// seconds to the window, which lasts 240 real seconds.
pub fn drill_config(stand_in: &str) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/drill.toml"),
    )
    .unwrap();
    assert!(text.contains("\"http://127.0.0.1:8081\""));
    let text = text
        .replace("\"http://127.0.0.1:8081\"", &format!("\"{stand_in}\""))
        .replace("\"127.0.0.1:8080\"", "\"127.0.0.1:0\"")
        .replace("\"127.0.0.1:9090\"", "\"127.0.0.1:0\"");
    format!("{text}\n[server]\nwatch_config = false\n")
}

/// `text` with the commented example block that starts at the line `# {first}` uncommented
/// (every following line that starts with `# `, up to the first that does not).
pub fn uncomment_block(text: &str, first: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    let mut found = false;
    for line in text.lines() {
        if line == format!("# {first}") {
            inside = true;
            found = true;
        }
        match line.strip_prefix("# ") {
            Some(code) if inside => out.push_str(code),
            _ => {
                inside = false;
                out.push_str(line);
            }
        }
        out.push('\n');
    }
    assert!(found, "no commented block starting with `# {first}`");
    out
}
