//! The fleet commands, `status` and `drills open|list|close`: the same admin API calls on
//! every replica named by `--admin` (a host name that resolves to several addresses, such as
//! a Kubernetes headless Service, means every one of them), one line per replica, and failure
//! when any replica failed.
//!
//! A replica may be hostile or broken: everything it sends is escaped before it reaches the
//! terminal ([`escape`]), and an action that succeeded is reported as done even when the
//! `/status` read after it fails (issue 25, findings 5 and 6).

use std::io::{self, Write as _};
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
use serde_json::{Value, json};

mod url;

pub use url::AdminUrl;

use crate::clock::{Clock as _, SystemClock};
use crate::config::{Secret, is_valid_service, parse_duration};
use crate::state::input;

/// Where the bearer token every request sends is read from, unless `--token-env` says
/// otherwise. (The config's `admin.token_env` names the variable the *server* reads; the CLI
/// has no config, so it has its own, and the default is the name the shipped configs use.)
pub const TOKEN_ENV: &str = "WEBCOLLECT_SHIM_ADMIN_TOKEN";

/// Largest admin answer read: `/status` with `[admin] max_drills` drills of 200-character
/// titles fits many times over.
const MAX_ANSWER: usize = 16 << 20;

/// How many hex digits of the config's sha256 a line shows (enough to tell replicas apart).
const DIGEST_SHOWN: usize = 12;

/// The replicas to talk to, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    /// A replica's admin API, e.g. http://webcollect-shim-admin:9090 (repeatable). A host
    /// name that resolves to several addresses (a headless Service) means every address.
    #[arg(long = "admin", value_name = "URL", required = true, value_parser = AdminUrl::parse)]
    pub admin: Vec<AdminUrl>,
    /// Environment variable holding the bearer token sent with every request (reads under a
    /// DNS name need it too: the admin's guard against DNS rebinding).
    #[arg(long, value_name = "NAME", default_value = TOKEN_ENV)]
    pub token_env: String,
    /// How long each replica may take to answer, e.g. 5s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `drills …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DrillsCommand {
    /// Open an ad-hoc drill, with the same id, on every replica.
    Open(OpenArgs),
    /// Show every replica's open drills.
    List(FleetArgs),
    /// Close a drill on every replica (one where it is not open counts as done).
    Close {
        #[command(flatten)]
        fleet: FleetArgs,
        /// The drill's id.
        #[arg(value_parser = parse_id)]
        id: String,
    },
}

/// `drills open`
#[derive(Debug, Clone, clap::Args)]
pub struct OpenArgs {
    #[command(flatten)]
    fleet: FleetArgs,
    /// Service the drill covers (repeatable), e.g. webcollect.credit_card.
    #[arg(long = "service", value_name = "SERVICE", required = true, value_parser = parse_service)]
    services: Vec<String>,
    /// How long it lasts, in the shim's (drill) time, e.g. 15m.
    #[arg(long, value_name = "DURATION", value_parser = parse_drill_duration)]
    duration: String,
    /// Human title (at most 200 characters, no control characters).
    #[arg(long, value_parser = parse_title)]
    title: Option<String>,
    /// Id, the same on every replica [default: drill-YYYYMMDDTHHMMSSZ, the UTC time now].
    #[arg(long, value_parser = parse_id)]
    id: Option<String>,
}

fn parse_service(text: &str) -> Result<String, String> {
    if is_valid_service(text) {
        Ok(text.to_string())
    } else {
        Err("use dot-separated words of letters, digits, '_' or '-', such as webcollect.credit_card".into())
    }
}

/// The same rules the admin API applies ([`input`]): checked here too, so a bad drill is
/// refused before any replica is asked, not by each of them.
fn parse_drill_duration(text: &str) -> Result<String, String> {
    input::parse_drill_duration(text, input::MAX_DURATION_CEILING)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

fn parse_title(text: &str) -> Result<String, String> {
    input::check_title(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// Ids travel in the `DELETE /drills/{id}` path unencoded: the one id alphabet keeps them
/// URL-safe.
fn parse_id(text: &str) -> Result<String, String> {
    input::check_id(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// What is done on each replica before its status is read.
#[derive(Debug)]
enum Action {
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

/// Largest answer [`fetch`] reads: a report with its records (about 400 bytes each).
const MAX_FETCHED: usize = 512 << 20;

/// `GET path` on every replica: its name and its answer's body (UTF-8), or what went wrong.
/// Used by `webcollect-shim report` to gather each replica's records.
///
/// # Errors
/// When the async runtime cannot start.
pub fn fetch(fleet: &FleetArgs, path: &str) -> io::Result<Vec<(String, Result<String, String>)>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ask = Ask {
        action: Action::Fetch {
            path: path.to_string(),
        },
        token: token(fleet),
        token_env: fleet.token_env.clone(),
        timeout: fleet.timeout,
    };
    let reports = runtime.block_on(ask_all(&fleet.admin, Arc::new(ask)));
    Ok(reports.into_iter().map(|r| (r.name, r.outcome)).collect())
}

/// `webcollect-shim status`: prints one line per replica; `Ok(false)` when any failed.
///
/// # Errors
/// When the async runtime cannot start or stdout cannot be written.
pub fn status(fleet: &FleetArgs) -> io::Result<bool> {
    run(fleet, Action::Status)
}

/// `webcollect-shim drills …`: prints one line per replica; `Ok(false)` when any failed.
///
/// # Errors
/// When the async runtime cannot start or stdout cannot be written.
pub fn drills(command: DrillsCommand) -> io::Result<bool> {
    match command {
        DrillsCommand::List(fleet) => run(&fleet, Action::List),
        DrillsCommand::Close { fleet, id } => run(&fleet, Action::Close { id }),
        DrillsCommand::Open(args) => {
            if let Err(err) = input::check_services(&args.services) {
                eprintln!("webcollect-shim: {err}");
                return Ok(false);
            }
            // One id for the whole fleet, so `drills close ID` reaches the same drill
            // everywhere; replicas would each generate their own.
            let id = args
                .id
                .unwrap_or_else(|| format!("drill-{}", SystemClock.now().format("%Y%m%dT%H%M%SZ")));
            let mut body = json!({
                "id": id,
                "services": args.services,
                "duration": args.duration,
            });
            if let Some(title) = args.title {
                body["title"] = Value::String(title);
            }
            let body = Bytes::from(body.to_string());
            run(&args.fleet, Action::Open { id, body })
        }
    }
}

/// The token in `fleet.token_env`, if set and not blank.
fn token(fleet: &FleetArgs) -> Option<Secret> {
    std::env::var(&fleet.token_env)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .map(Secret::new)
}

fn run(fleet: &FleetArgs, action: Action) -> io::Result<bool> {
    let token = token(fleet);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ask = Ask {
        action,
        token,
        token_env: fleet.token_env.clone(),
        timeout: fleet.timeout,
    };
    let reports = runtime.block_on(ask_all(&fleet.admin, Arc::new(ask)));
    let mut out = io::stdout().lock();
    for report in &reports {
        writeln!(out, "{}", escape(&report.line()))?;
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.outcome.is_err())
        .map(|r| r.name.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "webcollect-shim: {} of {} replica(s) failed: {}",
            failed.len(),
            reports.len(),
            escape(&failed.join(", "))
        );
    }
    Ok(failed.is_empty())
}

/// One replica's line: its name, then what it said or what went wrong.
#[derive(Debug)]
struct Report {
    name: String,
    outcome: Result<String, String>,
}

impl Report {
    fn line(&self) -> String {
        match &self.outcome {
            Ok(text) => format!("{}  {text}", self.name),
            Err(err) => format!("{}  FAILED: {err}", self.name),
        }
    }
}

/// A replica to ask: one address of an `--admin` URL.
#[derive(Debug, Clone)]
struct Replica {
    name: String,
    addr: SocketAddr,
    url: AdminUrl,
}

/// Expands `--admin` URLs into replicas, given each URL's resolved addresses: every
/// address of a name, each address once. A URL that resolved to nothing is a failed report.
fn expand(
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
struct Ask {
    action: Action,
    token: Option<Secret>,
    token_env: String,
    timeout: Duration,
}

/// Asks every replica; one report per replica (or per URL that named none).
async fn ask_all(urls: &[AdminUrl], ask: Arc<Ask>) -> Vec<Report> {
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

/// `text` safe for a terminal: control characters (C0 such as ESC and CR, DEL, C1 such as
/// CSI) and the bidirectional overrides that reorder what is shown become `\u{…}` escapes,
/// so a replica's answer cannot move the cursor, clear the screen, set the title (OSC) or
/// disguise one id as another.
#[must_use]
pub fn escape(text: &str) -> String {
    escape_keeping(text, false)
}

/// [`escape`], keeping line breaks: for multi-line output such as a rendered report.
#[must_use]
pub fn escape_lines(text: &str) -> String {
    escape_keeping(text, true)
}

fn escape_keeping(text: &str, newlines: bool) -> String {
    let hostile = |c: char| {
        (c.is_control() && c != '\t' && !(newlines && c == '\n'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !text.contains(hostile) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if hostile(c) {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
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
        .map_err(|e| crate::error::Chain(&e).to_string())?;
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
fn summarize(status: &Value, with_drills: bool) -> String {
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

#[cfg(test)]
mod tests;
