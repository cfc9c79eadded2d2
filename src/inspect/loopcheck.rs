//! `check`'s look for upstreams that lead back to the shim itself: each upstream's address
//! (its `connect_to`, else its host resolved the way the shim would resolve it) compared with
//! the shim's own listeners. The DNS override that sends merchants to the shim, applied to
//! the shim's machine too, is the usual cause; at run time such requests are answered 508
//! (see [`crate::decide::via`]), and this says so before the first one is sent.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use http::uri::Scheme;

use crate::config::Config;

/// An upstream whose address is one of the shim's listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfLoop {
    /// The upstream's name.
    pub(crate) upstream: String,
    /// The address it connects to.
    pub(crate) addr: SocketAddr,
    /// Which listener answers there: `proxy`, `tls` or `admin`.
    pub(crate) listener: &'static str,
}

/// Upstreams of `config` that would connect to one of its listeners. A host that does not
/// resolve within `timeout` (or at all) is skipped: that is not a loop.
pub async fn find(config: &Config, timeout: Duration) -> Vec<SelfLoop> {
    let listeners: Vec<(&'static str, SocketAddr)> = [
        ("proxy", Some(config.listen.proxy)),
        ("tls", config.listen.tls),
        ("admin", Some(config.listen.admin)),
    ]
    .into_iter()
    .filter_map(|(name, addr)| addr.map(|a| (name, a)))
    .collect();
    // Spawned, so the lookups (each up to `timeout`) run side by side.
    let lookups: Vec<_> = config
        .upstreams
        .iter()
        .map(|u| {
            let (name, url, connect_to) = (u.name.clone(), u.url.clone(), u.connect_to);
            tokio::spawn(async move {
                let addrs = match connect_to {
                    Some(addr) => vec![addr],
                    None => resolve(&url, timeout).await,
                };
                (name, addrs)
            })
        })
        .collect();
    let mut found = Vec::new();
    for lookup in lookups {
        let Ok((upstream, addrs)) = lookup.await else {
            continue;
        };
        for addr in addrs {
            if let Some((listener, _)) = listeners.iter().find(|(_, l)| reaches(*l, addr)) {
                found.push(SelfLoop {
                    upstream: upstream.clone(),
                    addr,
                    listener,
                });
            }
        }
    }
    found
}

async fn resolve(url: &http::Uri, timeout: Duration) -> Vec<SocketAddr> {
    let https = url.scheme() == Some(&Scheme::HTTPS);
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host = url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![SocketAddr::new(ip, port)];
    }
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => addrs.collect(),
        _ => Vec::new(),
    }
}

/// True when a connection to `addr` would reach `listener`: same port, and the listener's
/// address, or (listening on all interfaces) any address of this machine.
fn reaches(listener: SocketAddr, addr: SocketAddr) -> bool {
    listener.port() == addr.port()
        && (listener.ip().to_canonical() == addr.ip().to_canonical()
            || listener.ip().is_unspecified() && is_local(addr.ip()))
}

/// True for an address of this machine: binding to it succeeds only if an interface has it.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_listener_is_reached_on_its_port_and_addresses_only() {
        assert!(reaches(a("0.0.0.0:8443"), a("127.0.0.1:8443")));
        assert!(reaches(a("127.0.0.1:8443"), a("127.0.0.1:8443")));
        assert!(reaches(a("[::]:443"), a("127.0.0.1:443")));
        assert!(!reaches(a("0.0.0.0:8443"), a("127.0.0.1:443")));
        assert!(!reaches(a("127.0.0.2:8443"), a("127.0.0.1:8443")));
        // Documentation addresses belong to no interface.
        assert!(!reaches(a("0.0.0.0:443"), a("203.0.113.10:443")));
    }
}
