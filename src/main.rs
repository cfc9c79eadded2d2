//! The `webcollect-shim` binary: parse arguments, load and check the config before binding
//! anything, then serve, check or explain.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use webcollect_shim::clock::{self, SharedClock, SystemClock};
use webcollect_shim::config::{self, Config, LogFormat};
use webcollect_shim::snapshot::Snapshot;
use webcollect_shim::{Listeners, Shim, fleet, reload, report};

/// Exit status for an invalid configuration (sysexits' EX_CONFIG).
const EX_CONFIG: u8 = 78;

/// Reverse proxy that rehearses クロネコwebコレクト maintenance windows: inside a window it
/// answers as the gateway does during maintenance; outside, it passes traffic through.
#[derive(Debug, Parser)]
#[command(name = "webcollect-shim", version, about, long_about = None)]
struct Cli {
    /// Config file [default: $WEBCOLLECT_SHIM_CONFIG, else config/webcollect-shim.toml]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "WEBCOLLECT_SHIM_CONFIG",
        value_name = "PATH"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve merchant traffic (the default when no command is given).
    Run,
    /// Validate the config; print windows (local and UTC), routes and the next transitions.
    Check {
        /// Instant to compute "next transitions" from (RFC 3339) [default: the shim's now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Send a payment-result notification the way the gateway does (form POST; accepted on
    /// 2xx/3xx; else up to 4 retries 1 s apart; 15 s per attempt). No config needed.
    Notify(NotifyArgs),
    /// Run a stand-in for the gateway (API, link page, token libraries) for QA without the
    /// real test gateway. No config needed.
    MockGateway {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Merchant receiver for the payment-result notification sent after a link-method
        /// settlement.
        #[arg(long, value_name = "URL")]
        notify_url: Option<String>,
    },
    /// Exit 0 if the running shim's admin `/healthz` answers 200 (for container HEALTHCHECKs).
    Healthcheck,
    /// Open, list or close ad-hoc drills on every replica's admin API. No config needed.
    Drills {
        #[command(subcommand)]
        command: fleet::DrillsCommand,
    },
    /// One line per replica: config version and sha256, drill now, active windows. No
    /// config needed.
    Status(fleet::FleetArgs),
    /// Print the decision for one request at one instant, and the exact answer. No network.
    Explain {
        /// Instant of the request, RFC 3339, e.g. 2020-04-20T02:30:00+09:00.
        #[arg(long, value_name = "TIME")]
        at: String,
        /// Request header, repeatable, e.g. -H 'x-webcollect-shim-drill: maintenance'.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Address the request comes from (for drill.bypass_cidrs).
        #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
        client_ip: IpAddr,
        /// Request method, e.g. POST.
        method: String,
        /// Request path, optionally with a query, e.g. /api/creditToken.
        path: String,
    },
}

#[derive(Debug, clap::Args)]
struct NotifyArgs {
    /// The merchant's receiver, e.g. http://localhost:8000/yamato/notify.
    #[arg(long, value_name = "URL")]
    to: String,
    /// trader_code (9 digits).
    #[arg(long)]
    trader_code: String,
    /// order_no.
    #[arg(long)]
    order_no: String,
    /// settle_method (決済手段); 14 is the value the 2020 notice adds.
    #[arg(long, default_value = "14")]
    settle_method: String,
    /// settle_result: 1 ok, 2 error.
    #[arg(long, default_value = "1")]
    settle_result: String,
    /// settle_detail (statusInfo code; 4 = authorised).
    #[arg(long, default_value = "4")]
    settle_detail: String,
    /// settle_price.
    #[arg(long, default_value = "1000")]
    settle_price: String,
    /// settle_date, yyyyMMddHHmmss [default: now in Asia/Tokyo].
    #[arg(long, value_name = "yyyyMMddHHmmss")]
    settle_date: Option<String>,
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // `notify`, `mock-gateway`, `drills` and `status` need no config file.
    let standalone = match cli.command.take() {
        Some(Command::Notify(args)) => Some(notify(args)),
        Some(Command::MockGateway { listen, notify_url }) => {
            Some(mock_gateway(listen, notify_url).map(|()| true))
        }
        Some(Command::Drills { command }) => Some(fleet::drills(command).map_err(Into::into)),
        Some(Command::Status(args)) => Some(fleet::status(&args).map_err(Into::into)),
        other => {
            cli.command = other;
            None
        }
    };
    if let Some(result) = standalone {
        return match result {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(err) => {
                eprintln!("webcollect-shim: {err:#}");
                ExitCode::FAILURE
            }
        };
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
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(config),
        Command::Check { at } => check(config, at.as_deref()),
        Command::Healthcheck => healthcheck(&config),
        Command::Notify(_)
        | Command::MockGateway { .. }
        | Command::Drills { .. }
        | Command::Status(_) => Ok(()),
        Command::Explain {
            at,
            headers,
            client_ip,
            method,
            path,
        } => explain(config, &at, &headers, client_ip, &method, &path),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webcollect-shim: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    init_tracing(config.log_format);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.server.worker_threads {
        // Fewer workers mean fewer cross-thread wake-ups: lower latency at low load on small
        // machines (bench/RESULTS.md), at the cost of peak throughput.
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let bind = |addr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))
        };
        let proxy = bind(config.listen.proxy).await?;
        let admin = bind(config.listen.admin).await?;
        let shim = Shim::new(config, Arc::new(SystemClock))?;
        tracing::info!(
            proxy = %proxy.local_addr()?,
            admin = %admin.local_addr()?,
            "Serving merchant traffic."
        );
        reload::reload_on_sighup(shim.shared());
        let listeners = Listeners {
            proxy,
            admin: Some(admin),
        };
        shim.run(listeners, shutdown_signal()).await;
        tracing::info!("Stopped.");
        Ok(())
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn init_tracing(format: LogFormat) {
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

/// The shim's clock as `run` would build it: the drill clock if configured.
fn shim_clock(config: &Config) -> SharedClock {
    clock::configured(Arc::new(SystemClock), &config.clock)
}

fn mock_gateway(listen: std::net::SocketAddr, notify_url: Option<String>) -> anyhow::Result<()> {
    init_tracing(LogFormat::Text);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(addr = %listener.local_addr()?, "Stand-in gateway serving (not Yamato's gateway).");
        let options = webcollect_shim::mock_gateway::MockOptions {
            notify_url,
            ..Default::default()
        };
        webcollect_shim::mock_gateway::serve(listener, options, shutdown_signal()).await;
        Ok(())
    })
}

/// Sends the notification; `Ok(false)` when no attempt was accepted.
fn notify(args: NotifyArgs) -> anyhow::Result<bool> {
    use webcollect_shim::clock::Clock as _;
    use webcollect_shim::notify::{self, Notification, RetryPolicy};
    let settle_date = args.settle_date.unwrap_or_else(|| {
        SystemClock
            .now()
            .with_timezone(&chrono_tz::Asia::Tokyo)
            .format("%Y%m%d%H%M%S")
            .to_string()
    });
    anyhow::ensure!(
        settle_date.len() == 14 && settle_date.bytes().all(|b| b.is_ascii_digit()),
        "--settle-date must be yyyyMMddHHmmss"
    );
    let n = Notification {
        trader_code: args.trader_code,
        order_no: args.order_no,
        settle_price: args.settle_price,
        settle_date,
        settle_result: args.settle_result,
        settle_detail: args.settle_detail,
        settle_method: args.settle_method,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    println!("POST {} {}", args.to, n.to_form());
    let attempts = runtime.block_on(notify::send(&args.to, &n, RetryPolicy::GATEWAY, |a| {
        println!("{a}");
    }))?;
    let accepted = attempts.last().is_some_and(notify::Attempt::accepted);
    if accepted {
        println!("delivered after {} attempt(s)", attempts.len());
    } else {
        println!(
            "not delivered: {} attempt(s), none accepted",
            attempts.len()
        );
    }
    Ok(accepted)
}

fn healthcheck(config: &Config) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    let mut addr = config.listen.admin;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to the admin listener {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    anyhow::ensure!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{addr}/healthz did not answer 200"
    );
    println!("ok");
    Ok(())
}

fn parse_at(text: &str, config: &Config) -> anyhow::Result<DateTime<Utc>> {
    config::parse_time(text, config.clock.timezone).map_err(|msg| anyhow::anyhow!("--at: {msg}"))
}

fn check(config: Config, at: Option<&str>) -> anyhow::Result<()> {
    let now = match at {
        Some(text) => parse_at(text, &config)?,
        None => shim_clock(&config).now(),
    };
    let snapshot = Snapshot::new(Arc::new(config), &[], 1, now);
    print!("{}", report::timeline(&snapshot, now));
    Ok(())
}

fn explain(
    config: Config,
    at: &str,
    raw_headers: &[String],
    client_ip: IpAddr,
    method: &str,
    path: &str,
) -> anyhow::Result<()> {
    let at = parse_at(at, &config)?;
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("invalid method {method:?}"))?;
    anyhow::ensure!(path.starts_with('/'), "path {path:?} must start with '/'");
    let mut headers = HeaderMap::new();
    for h in raw_headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("header {h:?} must look like 'Name: value'"))?;
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("invalid header name {name:?}"))?,
            HeaderValue::from_str(value.trim())
                .with_context(|| format!("invalid header value in {h:?}"))?,
        );
    }
    let snapshot = Snapshot::new(Arc::new(config), &[], 1, at);
    print!(
        "{}",
        report::explain(&snapshot, at, &method, path, &headers, client_ip)
    );
    Ok(())
}
