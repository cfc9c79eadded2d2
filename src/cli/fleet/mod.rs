//! The fleet commands, `status` and `drills open|list|close`: the same admin API calls on
//! every replica named by `--admin` (a host name that resolves to several addresses, such as
//! a Kubernetes headless Service, means every one of them), one line per replica, and failure
//! when any replica failed. The binary's, not the library's: a client of the admin API with
//! clap arguments and terminal output, which nothing on the request path needs.
//!
//! A replica may be hostile or broken: everything it sends is escaped before it reaches the
//! terminal ([`escape`]), and an action that succeeded is reported as done even when the
//! `/status` read after it fails (issue 25, findings 5 and 6).

use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use webcollect_shim::clock::{Clock as _, SystemClock};
use webcollect_shim::config::{Secret, parse_duration};
use webcollect_shim::state::DrillRequest;
use webcollect_shim::state::input::{self, InputError};

mod ask;
mod url;

pub(crate) use url::AdminUrl;

use super::escape::escape;
use ask::{Action, Ask, ask_all};

/// Where the bearer token every request sends is read from, unless `--token-env` says
/// otherwise. (The config's `admin.token_env` names the variable the *server* reads; the CLI
/// has no config, so it has its own, and the default is the name the shipped configs use.)
const TOKEN_ENV: &str = "WEBCOLLECT_SHIM_ADMIN_TOKEN";

/// The replicas to talk to, and how.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FleetArgs {
    /// A replica's admin API, e.g. http://webcollect-shim-admin:9090 (repeatable). A host
    /// name that resolves to several addresses (a headless Service) means every address.
    #[arg(long = "admin", value_name = "URL", required = true, value_parser = AdminUrl::parse)]
    pub(crate) admin: Vec<AdminUrl>,
    /// Environment variable holding the bearer token sent with every request (reads under a
    /// DNS name need it too: the admin's guard against DNS rebinding).
    #[arg(long, value_name = "NAME", default_value = TOKEN_ENV)]
    pub(crate) token_env: String,
    /// How long each replica may take to answer, e.g. 5s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
}

/// `drills …`
#[derive(Debug, Clone, clap::Subcommand)]
pub(crate) enum DrillsCommand {
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
pub(crate) struct OpenArgs {
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

// Each argument is checked by the rule the admin API applies to it ([`input`]), so a bad
// drill is refused before any replica is asked, not by each of them; `drills open` then
// checks the whole body with the admin's own parse.

fn parse_service(text: &str) -> Result<String, String> {
    accept(text, input::check_services(&[text.to_string()]))
}

fn parse_drill_duration(text: &str) -> Result<String, String> {
    accept(
        text,
        input::parse_drill_duration(text, input::MAX_DURATION_CEILING),
    )
}

fn parse_title(text: &str) -> Result<String, String> {
    accept(text, input::check_title(text))
}

/// Ids travel in the `DELETE /drills/{id}` path unencoded: the one id alphabet keeps them
/// URL-safe.
fn parse_id(text: &str) -> Result<String, String> {
    accept(text, input::check_id(text))
}

/// A clap value parser's answer: the argument as given, or the rule it broke.
fn accept<T>(text: &str, checked: Result<T, InputError>) -> Result<String, String> {
    checked.map(|_| text.to_string()).map_err(|e| e.to_string())
}

/// `GET path` on every replica: its name and its answer's body (UTF-8), or what went wrong.
/// Used by `webcollect-shim report` to gather each replica's records.
///
/// # Errors
/// When the async runtime cannot start.
pub(crate) fn fetch(
    fleet: &FleetArgs,
    path: &str,
) -> io::Result<Vec<(String, Result<String, String>)>> {
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
pub(crate) fn status(fleet: &FleetArgs) -> io::Result<bool> {
    run(fleet, Action::Status)
}

/// `webcollect-shim drills …`: prints one line per replica; `Ok(false)` when any failed.
///
/// # Errors
/// When the async runtime cannot start or stdout cannot be written.
pub(crate) fn drills(command: DrillsCommand) -> io::Result<bool> {
    match command {
        DrillsCommand::List(fleet) => run(&fleet, Action::List),
        DrillsCommand::Close { fleet, id } => run(&fleet, Action::Close { id }),
        DrillsCommand::Open(args) => match open_body(&args) {
            Ok((id, body)) => run(&args.fleet, Action::Open { id, body }),
            Err(err) => {
                eprintln!("webcollect-shim: {err}");
                Ok(false)
            }
        },
    }
}

/// The `POST /drills` body for `drills open`, and the drill's id.
///
/// # Errors
/// The first rule the body breaks: it is parsed here by the same function every replica
/// will parse it with ([`DrillRequest::parse`]), so the whole is refused before any replica
/// is asked (the arguments were checked one by one).
fn open_body(args: &OpenArgs) -> Result<(String, Bytes), InputError> {
    // One id for the whole fleet, so `drills close ID` reaches the same drill everywhere;
    // replicas would each generate their own.
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("drill-{}", SystemClock.now().format("%Y%m%dT%H%M%SZ")));
    let mut body = json!({
        "id": id,
        "services": args.services,
        "duration": args.duration,
    });
    if let Some(title) = &args.title {
        body["title"] = Value::String(title.clone());
    }
    let body = Bytes::from(body.to_string());
    DrillRequest::parse(&body)?;
    Ok((id, body))
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

#[cfg(test)]
mod tests;
