//! The binary's commands. Each takes its parsed arguments (and the loaded config where it
//! needs one) and returns `anyhow::Result`: the only place anyhow is used.

mod args;
mod ca;
mod escape;
pub(crate) mod fleet;
mod inspect;
mod report;
mod run;
mod tools;

pub(crate) use args::{Cli, Command, ExplainArgs};
pub(crate) use ca::ca;
pub(crate) use inspect::{check, explain};
pub(crate) use report::{ReportArgs, report};
pub(crate) use run::run;
pub(crate) use tools::{healthcheck, mock_gateway, notify};

use webcollect_shim::config::LogFormat;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or JSON.
pub(crate) fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: `docker logs` and log shippers get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// The control runtime: admin, config and signals. One thread is plenty; merchant traffic
/// runs on the worker threads.
pub(crate) fn control_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
