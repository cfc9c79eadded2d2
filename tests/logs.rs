//! Logs and metrics never carry bodies, query strings, card numbers, tokens or
//! Authorization values. Runs the real binary and greps everything it printed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::*;

const SECRETS: [&str; 6] = [
    "4111111111111111",
    "SECRETQUERYTOKEN0001",
    "SECRETBODYTOKEN0002",
    "SECRETAUTHVALUE0003",
    "SECRETCOOKIE0004",
    "SECRETORDER0005",
];

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(
        config: &std::path::Path,
        format_json: bool,
    ) -> (Self, std::net::SocketAddr, std::net::SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webcollect-shim"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "debug,webcollect_shim=trace")
            .env_remove("WEBCOLLECT_SHIM_CONFIG")
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

    fn wait_for(&mut self, needle: &str) -> String {
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

    fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "shim exited with {status} after SIGTERM");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen
    }
}

async fn exercise(proxy: std::net::SocketAddr, admin: std::net::SocketAddr) -> String {
    let secret_request = |path: &str, extra: &str| {
        let body = "card_no=4111111111111111&token=SECRETBODYTOKEN0002&order_no=SECRETORDER0005";
        format!(
            "POST {path}?token=SECRETQUERYTOKEN0001&card_no=4111111111111111 HTTP/1.1\r\nHost: s\r\n\
             Authorization: Bearer SECRETAUTHVALUE0003\r\nCookie: session=SECRETCOOKIE0004\r\n{extra}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // Pass-through, forced maintenance, no route, and an unreachable upstream.
    assert_eq!(
        raw(proxy, &secret_request("/api/creditToken", ""))
            .await
            .status,
        200
    );
    let forced = raw(
        proxy,
        &secret_request(
            "/api/creditToken",
            "x-webcollect-shim-drill: maintenance\r\n",
        ),
    )
    .await;
    assert_eq!(forced.header("x-webcollect-shim"), Some("maintenance"));
    assert_eq!(
        raw(proxy, &secret_request("/nowhere", "")).await.status,
        404
    );
    assert_eq!(raw(proxy, &secret_request("/down/x", "")).await.status, 502);
    raw(admin, &get("/metrics")).await.text()
}

fn shim_config(upstream: &str, format: &str) -> std::path::PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let text = format!(
        "{}\n[log]\nformat = \"{format}\"\n\n[upstreams.down]\nurl = \"http://{down}\"\n\n[[routes]]\nid = \"down\"\npath_prefix = \"/down/\"\nkind = \"api\"\nservice = \"other\"\nupstream = \"down\"\n",
        config(upstream)
    );
    let dir = std::env::temp_dir().join(format!(
        "webcollect-shim-logs-{format}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shim.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn no_secrets_in(format: &str) {
    let upstream = Upstream::fixed("<return/>").await;
    let path = shim_config(&upstream.url(), format);
    let (running, proxy, admin) = Running::start(&path, format == "json");
    let metrics = exercise(proxy, admin).await;
    let lines = running.stop();
    let all = lines.join("\n");
    // The request lines are there, with the path and no query.
    let request_lines: Vec<&String> = lines.iter().filter(|l| l.contains("Request")).collect();
    assert_eq!(request_lines.len(), 4, "{all}");
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("/api/creditToken") && l.contains("maintenance")),
        "{all}"
    );
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("upstream-unreachable")),
        "{all}"
    );
    for secret in SECRETS {
        assert!(
            !all.contains(secret),
            "{secret} leaked into the logs:\n{all}"
        );
        assert!(
            !metrics.contains(secret),
            "{secret} leaked into the metrics:\n{metrics}"
        );
    }
    assert!(!all.contains("token="), "a query string leaked:\n{all}");
}

#[tokio::test]
async fn no_secrets_in_text_logs_or_metrics() {
    no_secrets_in("text").await;
}

#[tokio::test]
async fn no_secrets_in_json_logs() {
    no_secrets_in("json").await;
}
