//! `check` and `explain`: what the shim would do, printed. `explain` uses no network;
//! `check` resolves the upstreams' host names, to warn about one that leads back to the shim.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use webcollect_shim::clock::{self, SharedClock, SystemClock};
use webcollect_shim::config::{self, CertSource, Config};
use webcollect_shim::decide::snapshot::Snapshot;
use webcollect_shim::inspect::explain::Explained;
use webcollect_shim::inspect::{self, loopcheck};

/// How long `check` waits for each upstream's host to resolve (the loop warning).
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The shim's clock as `run` would build it: the drill clock if configured.
fn shim_clock(config: &Config) -> SharedClock {
    clock::configured(Arc::new(SystemClock), &config.clock)
}

fn parse_at(text: &str, config: &Config) -> anyhow::Result<DateTime<Utc>> {
    config::parse_time(text, config.clock.timezone).map_err(|msg| anyhow::anyhow!("--at: {msg}"))
}

pub(crate) fn check(config: Config, at: Option<&str>) -> anyhow::Result<()> {
    let now = match at {
        Some(text) => parse_at(text, &config)?,
        None => shim_clock(&config).now(),
    };
    let ca_present = match &config.tls.source {
        Some(CertSource::LocalCa(dir)) => {
            Some(dir.join(webcollect_shim::tls::ca::CERT_FILE).exists())
        }
        _ => None,
    };
    let loops = super::control_runtime()?.block_on(loopcheck::find(&config, LOOKUP_TIMEOUT));
    let snapshot = Snapshot::new(Arc::new(config), &[], 1, now);
    print!("{}", inspect::timeline(&snapshot, now));
    print!("{}", inspect::tls(&snapshot.config, ca_present));
    print!("{}", inspect::self_loops(&snapshot.config, &loops));
    Ok(())
}

pub(crate) fn explain(config: Config, args: &super::ExplainArgs) -> anyhow::Result<()> {
    let at = parse_at(&args.at, &config)?;
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("invalid method {:?}", args.method))?;
    anyhow::ensure!(
        args.path.starts_with('/'),
        "path {:?} must start with '/'",
        args.path
    );
    let mut headers = HeaderMap::new();
    for h in &args.headers {
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
    let request = Explained {
        method,
        target: args.path.clone(),
        headers,
        body: args.body.clone().into(),
        client_ip: args.client_ip,
    };
    print!(
        "{}",
        inspect::explain::explain(config, at, &request, args.upstream)?
    );
    Ok(())
}
