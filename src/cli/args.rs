//! Command-line arguments (clap): the commands and their options.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Reverse proxy that rehearses クロネコwebコレクト maintenance windows: inside a window it
/// answers as the gateway does during maintenance; outside, it passes traffic through.
#[derive(Debug, Parser)]
#[command(name = "webcollect-shim", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Config file [default: $WEBCOLLECT_SHIM_CONFIG, else config/webcollect-shim.toml]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "WEBCOLLECT_SHIM_CONFIG",
        value_name = "PATH"
    )]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        /// Keep orders, stored cards and tokens in this file across restarts.
        #[arg(long, value_name = "PATH")]
        state_file: Option<PathBuf>,
        /// Most orders remembered (oldest forgotten first).
        #[arg(long, value_name = "N", default_value_t = webcollect_shim::qa::gateway::DEFAULT_MAX_ORDERS)]
        max_orders: std::num::NonZeroUsize,
        /// Most bytes of orders, stored cards and tokens (as saved, JSON) kept; past it the
        /// oldest orders are forgotten first.
        #[arg(long, value_name = "BYTES", default_value_t = webcollect_shim::qa::gateway::DEFAULT_MAX_STATE_BYTES)]
        max_state_bytes: std::num::NonZeroUsize,
        /// Accept only tokens the stand-in's token libraries minted.
        #[arg(long)]
        strict_tokens: bool,
    },
    /// Exit 0 if the running shim's admin `/healthz` answers 200 (for container HEALTHCHECKs).
    Healthcheck,
    /// The local CA of `[tls] ca_dir`, which signs the TLS listener's certificates.
    Ca {
        #[command(subcommand)]
        action: CaAction,
    },
    /// Open, list or close ad-hoc drills on every replica's admin API. No config needed.
    Drills {
        #[command(subcommand)]
        command: super::fleet::DrillsCommand,
    },
    /// One line per replica: config version and sha256, drill now, active windows. No
    /// config needed.
    Status(super::fleet::FleetArgs),
    /// Drill evidence: what the merchant's integration did in a window, drill or time
    /// range, merged over every replica; exit 1 when a verdict fails. No config needed.
    Report(super::ReportArgs),
    /// Run one request through the shim at one instant, against a stand-in upstream, and
    /// print the decision, what the upstream would receive and the exact answer. No network.
    Explain(ExplainArgs),
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum CaAction {
    /// Create the CA in `[tls] ca_dir` unless it exists; print where it is and its key hash.
    Init,
    /// Print the CA certificate (ca.pem) to stdout.
    Export,
    /// Print the commands that make clients trust the CA: Debian/Ubuntu, Alpine, RHEL, Java,
    /// Node, Chromium/NSS and headless Chromium.
    InstallHint,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NotifyArgs {
    /// The merchant's receiver, e.g. http://localhost:8000/yamato/notify.
    #[arg(long, value_name = "URL")]
    pub(crate) to: String,
    /// trader_code (9 digits).
    #[arg(long)]
    pub(crate) trader_code: String,
    /// order_no.
    #[arg(long)]
    pub(crate) order_no: String,
    /// settle_method (決済手段); 14 is the value the 2020 notice adds.
    #[arg(long, default_value = "14")]
    pub(crate) settle_method: String,
    /// settle_result: 1 ok, 2 error.
    #[arg(long, default_value = "1")]
    pub(crate) settle_result: String,
    /// settle_detail (statusInfo code; 4 = authorised).
    #[arg(long, default_value = "4")]
    pub(crate) settle_detail: String,
    /// settle_price.
    #[arg(long, default_value = "1000")]
    pub(crate) settle_price: String,
    /// settle_date, yyyyMMddHHmmss [default: now in Asia/Tokyo].
    #[arg(long, value_name = "yyyyMMddHHmmss")]
    pub(crate) settle_date: Option<String>,
}

/// `explain`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ExplainArgs {
    /// Instant of the request, RFC 3339, e.g. 2020-04-20T02:30:00+09:00.
    #[arg(long, value_name = "TIME")]
    pub(crate) at: String,
    /// Request header, repeatable, e.g. -H 'x-webcollect-shim-drill: maintenance'.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Address the request comes from (for drill.bypass_cidrs).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub(crate) client_ip: IpAddr,
    /// Request body, e.g. 'function_div=A08&trader_code=888' (Content-Length is set
    /// from it unless given with -H).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub(crate) body: String,
    /// What the stand-in upstream does when the request is forwarded: answers 200, is
    /// unreachable (502) or does not answer in time (504).
    #[arg(long, value_name = "WHAT", value_enum, default_value = "answers")]
    pub(crate) upstream: webcollect_shim::inspect::explain::StandIn,
    /// Request method, e.g. POST.
    pub(crate) method: String,
    /// Request path, optionally with a query, e.g. /api/creditToken.
    pub(crate) path: String,
}
