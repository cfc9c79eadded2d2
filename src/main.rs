//! The `webcollect-shim` binary: parse arguments, load and check the config before binding
//! anything, then run the command (see [`cli`]).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};
use webcollect_shim::config::{self, Config};

/// Exit status for an invalid configuration (sysexits' EX_CONFIG).
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    // These need no config file.
    let standalone = match &command {
        Command::Notify(args) => Some(cli::notify(args.clone())),
        Command::MockGateway {
            listen,
            notify_url,
            state_file,
            max_orders,
            max_state_bytes,
            strict_tokens,
        } => {
            let options = webcollect_shim::qa::gateway::GatewayOptions {
                notify_url: notify_url.clone(),
                state_file: state_file.clone(),
                max_orders: *max_orders,
                max_state_bytes: *max_state_bytes,
                strict_tokens: *strict_tokens,
                ..Default::default()
            };
            Some(cli::mock_gateway(*listen, options).map(|()| true))
        }
        Command::Drills { command } => {
            Some(cli::fleet::drills(command.clone()).map_err(Into::into))
        }
        Command::Status(args) => Some(cli::fleet::status(args).map_err(Into::into)),
        Command::Report(args) => Some(cli::report(args)),
        _ => None,
    };
    if let Some(result) = standalone {
        return exit(result.map(|accepted| accepted.then_some(())));
    }
    let path = cli
        .config
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(err) => {
            for line in err.lines() {
                eprintln!("{line}");
            }
            eprintln!(
                "{}: {} error(s); nothing started",
                err.path().display(),
                err.len()
            );
            return ExitCode::from(EX_CONFIG);
        }
    };
    let result = match command {
        Command::Run => cli::run(config),
        Command::Check { at } => cli::check(config, at.as_deref()),
        Command::Healthcheck => cli::healthcheck(&config),
        Command::Ca { action } => cli::ca(&config, action),
        Command::Explain(args) => cli::explain(config, &args),
        Command::Notify(_)
        | Command::MockGateway { .. }
        | Command::Drills { .. }
        | Command::Status(_)
        | Command::Report(_) => Ok(()),
    };
    exit(result.map(Some))
}

/// `Ok(Some(()))` succeeds, `Ok(None)` fails quietly (the command said why), `Err` prints.
fn exit(result: anyhow::Result<Option<()>>) -> ExitCode {
    match result {
        Ok(Some(())) => ExitCode::SUCCESS,
        Ok(None) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("webcollect-shim: {err:#}");
            ExitCode::FAILURE
        }
    }
}
