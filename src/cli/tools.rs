//! Stand-alone tools: the stand-in gateway, the notification sender, the health check.

use anyhow::Context as _;

use webcollect_shim::clock::SystemClock;
use webcollect_shim::config::{Config, LogFormat};
use webcollect_shim::runtime::signal;

use super::args::NotifyArgs;

pub(crate) fn mock_gateway(
    listen: std::net::SocketAddr,
    options: webcollect_shim::qa::gateway::GatewayOptions,
) -> anyhow::Result<()> {
    super::init_tracing(LogFormat::Text);
    // Unlike the shim, the stand-in is an ordinary multi-threaded server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(addr = %listener.local_addr()?, "Stand-in gateway serving (not Yamato's gateway).");
        webcollect_shim::qa::gateway::serve(listener, options, signal::shutdown()).await?;
        Ok(())
    })
}

/// Sends the notification; `Ok(false)` when no attempt was accepted.
pub(crate) fn notify(args: NotifyArgs) -> anyhow::Result<bool> {
    use webcollect_shim::clock::Clock as _;
    use webcollect_shim::qa::notify::{self, Notification, RetryPolicy};
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
    let runtime = super::control_runtime()?;
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

pub(crate) fn healthcheck(config: &Config) -> anyhow::Result<()> {
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
