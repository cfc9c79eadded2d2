//! Asking the replicas: resolving each `--admin` URL into its addresses, one HTTP call (and
//! then a `/status` read) per replica, all at once, and a report per replica in
//! `--admin` order.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use webcollect_shim::config::Secret;
use webcollect_shim::error::Chain;

use super::AdminUrl;

/// Largest admin answer read: `/status` with `[admin] max_drills` drills of 200-character
/// titles fits many times over.
const MAX_ANSWER: usize = 16 << 20;

/// Largest answer [`super::fetch`] reads: a report with its records (about 400 bytes each).
const MAX_FETCHED: usize = 512 << 20;

/// How many hex digits of the config's sha256 a line shows (enough to tell replicas apart).
const DIGEST_SHOWN: usize = 12;

/// What is done on each replica before its status is read.
#[derive(Debug)]
pub(super) enum Action {
    Status,
    List,
    Open {
        id: String,
        body: Bytes,
    },
    Close {
        id: String,
    },
    /// `GET path`: the answer's body, whole.
    Fetch {
        path: String,
    },
}

/// One replica's line: its name, then what it said or what went wrong.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) name: String,
    pub(super) outcome: Result<String, String>,
}

impl Report {
    pub(super) fn line(&self) -> String {
        match &self.outcome {
            Ok(text) => format!("{}  {text}", self.name),
            Err(err) => format!("{}  FAILED: {err}", self.name),
        }
    }
}

/// A replica to ask: one address of an `--admin` URL.
#[derive(Debug, Clone)]
pub(super) struct Replica {
    pub(super) name: String,
    addr: SocketAddr,
    url: AdminUrl,
}

/// Expands `--admin` URLs into replicas, given each URL's resolved addresses: every
/// address of a name, each address once. A URL that resolved to nothing is a failed report.
pub(super) fn expand(
    urls: &[AdminUrl],
    resolved: Vec<io::Result<Vec<SocketAddr>>>,
) -> Vec<Result<Replica, Report>> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (url, addrs) in urls.iter().zip(resolved) {
        let addrs = match addrs {
            Ok(addrs) if !addrs.is_empty() => addrs,
            Ok(_) => {
                out.push(Err(Report {
                    name: url.given.clone(),
                    outcome: Err("resolves to no address".into()),
                }));
                continue;
            }
            Err(err) => {
                out.push(Err(Report {
                    name: url.given.clone(),
                    outcome: Err(format!("cannot resolve {}: {err}", url.host)),
                }));
                continue;
            }
        };
        for addr in addrs {
            if seen.contains(&addr) {
                continue;
            }
            seen.push(addr);
            let name = match url.host_name() {
                Some(host) => format!("{addr} ({host})"),
                None => addr.to_string(),
            };
            out.push(Ok(Replica {
                name,
                addr,
                url: url.clone(),
            }));
        }
    }
    out
}

async fn resolve(url: &AdminUrl) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    Ok(tokio::net::lookup_host((url.host.as_str(), url.port))
        .await?
        .collect())
}

/// The action and what every replica gets with it.
#[derive(Debug)]
pub(super) struct Ask {
    pub(super) action: Action,
    pub(super) token: Option<Secret>,
    pub(super) token_env: String,
    pub(super) timeout: Duration,
}

/// Asks every replica; one report per replica (or per URL that named none).
pub(super) async fn ask_all(urls: &[AdminUrl], ask: Arc<Ask>) -> Vec<Report> {
    let mut resolved = Vec::with_capacity(urls.len());
    for url in urls {
        resolved.push(
            tokio::time::timeout(ask.timeout, resolve(url))
                .await
                .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))),
        );
    }
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(ask.timeout));
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    // Every replica is asked at once; the reports are then collected in `--admin` order.
    let pending: Vec<_> = expand(urls, resolved)
        .into_iter()
        .map(|target| {
            target.map(|replica| {
                let (ask, client) = (ask.clone(), client.clone());
                let name = replica.name.clone();
                let task = tokio::spawn(async move {
                    tokio::time::timeout(ask.timeout, ask_one(&client, &replica, &ask))
                        .await
                        .unwrap_or_else(|_| Err(format!("no answer within {:?}", ask.timeout)))
                });
                (name, task)
            })
        })
        .collect();
    let mut reports = Vec::with_capacity(pending.len());
    for target in pending {
        reports.push(match target {
            Err(report) => report,
            Ok((name, task)) => Report {
                name,
                outcome: task
                    .await
                    .unwrap_or_else(|err| Err(format!("task failed: {err}"))),
            },
        });
    }
    reports
}

/// The action on one replica, then its `/status` in one line.
async fn ask_one(
    client: &Client<HttpConnector, Full<Bytes>>,
    replica: &Replica,
    ask: &Ask,
) -> Result<String, String> {
    let send = |method: Method, path: String, body: Option<Bytes>| {
        call(client, replica, ask, method, path, body)
    };
    let done = match &ask.action {
        Action::Fetch { path } => {
            let (status, answer) = send(Method::GET, path.clone(), None).await?;
            if status != StatusCode::OK {
                return Err(refusal(ask, status, &answer));
            }
            return String::from_utf8(answer.to_vec())
                .map_err(|_| "the answer is not UTF-8".to_string());
        }
        Action::Status | Action::List => None,
        Action::Open { id, body } => {
            let (status, answer) = send(Method::POST, "/drills".into(), Some(body.clone())).await?;
            if status != StatusCode::CREATED {
                return Err(refusal(ask, status, &answer));
            }
            let end = json_of(&answer)?["end"].as_str().unwrap_or("?").to_string();
            Some(format!("opened {id} until {end}"))
        }
        Action::Close { id } => {
            let (status, answer) = send(Method::DELETE, format!("/drills/{id}"), None).await?;
            match status {
                StatusCode::NO_CONTENT => Some(format!("closed {id}")),
                // The end state is what was asked for (it expired, or never reached this one).
                StatusCode::NOT_FOUND => Some(format!("{id} was not open")),
                _ => return Err(refusal(ask, status, &answer)),
            }
        }
    };
    let summary = async {
        let (status, answer) = send(Method::GET, "/status".into(), None).await?;
        if status != StatusCode::OK {
            return Err(refusal(ask, status, &answer));
        }
        Ok(summarize(
            &json_of(&answer)?,
            matches!(ask.action, Action::List),
        ))
    }
    .await;
    match (done, summary) {
        (Some(done), Ok(summary)) => Ok(format!("{done}  {summary}")),
        // The action is what was asked, and it happened: a status that cannot be read after
        // it does not undo it (finding 5: a close was reported as a failure).
        (Some(done), Err(err)) => Ok(format!("{done}  (status unreadable: {err})")),
        (None, summary) => summary,
    }
}

async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    replica: &Replica,
    ask: &Ask,
    method: Method,
    path: String,
    body: Option<Bytes>,
) -> Result<(StatusCode, Bytes), String> {
    let uri = format!("http://{}{}{path}", replica.addr, replica.url.prefix);
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(HOST, &replica.url.authority)
        .header(
            USER_AGENT,
            concat!("webcollect-shim/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(token) = &ask.token {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| format!("${} holds characters a header cannot carry", ask.token_env))?;
        value.set_sensitive(true);
        req = req.header(AUTHORIZATION, value);
    }
    if body.is_some() {
        req = req.header(CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let res = client
        .request(req)
        .await
        .map_err(|e| Chain(&e).to_string())?;
    let status = res.status();
    let max = match ask.action {
        Action::Fetch { .. } => MAX_FETCHED,
        _ => MAX_ANSWER,
    };
    let answer = Limited::new(res.into_body(), max)
        .collect()
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?
        .to_bytes();
    Ok((status, answer))
}

fn json_of(answer: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(answer).map_err(|e| format!("the answer is not JSON: {e}"))
}

/// A refused call: the status and the server's own explanation.
fn refusal(ask: &Ask, status: StatusCode, answer: &[u8]) -> String {
    let explanation = serde_json::from_slice::<Value>(answer)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(answer).trim().to_string());
    let hint = if status == StatusCode::UNAUTHORIZED && ask.token.is_none() {
        format!(" (no token sent: ${} is not set)", ask.token_env)
    } else {
        String::new()
    };
    format!("HTTP {status}: {explanation}{hint}")
}

/// A `/status` document in one line: config version and digest, drill now, active windows
/// (and, for `drills list`, the open drills).
pub(super) fn summarize(status: &Value, with_drills: bool) -> String {
    let config = &status["config"];
    let digest = config["sha256"].as_str().unwrap_or("?");
    let ids = |list: &Value, detail: bool| -> String {
        let items: Vec<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                let id = w["id"].as_str().unwrap_or("?");
                if detail {
                    let services: Vec<&str> = w["services"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    format!(
                        "{id} until {} [{}]",
                        w["end"].as_str().unwrap_or("?"),
                        services.join(" ")
                    )
                } else {
                    id.to_string()
                }
            })
            .collect();
        if items.is_empty() {
            "none".into()
        } else {
            items.join(", ")
        }
    };
    let mut line = format!(
        "config v{} sha256:{}  now {}  active: {}",
        config["version"],
        digest.get(..DIGEST_SHOWN).unwrap_or(digest),
        status["now"].as_str().unwrap_or("?"),
        ids(&status["active_windows"], false),
    );
    if with_drills {
        line.push_str(&format!("  drills: {}", ids(&status["drills"], true)));
    }
    line
}
