//! The one integration-test binary (one link step on 2-core CI).

#![allow(unreachable_pub, clippy::unwrap_used)]

// Harness: recording upstreams, a shim on port 0, a raw HTTP/1.1 client.
mod support;

// Maintenance answers: exact bytes, page, token stand-in, boundaries, drills, keep-alive.
mod maintenance;
// Pass-through fidelity: bytes, headers, streaming, HTTP/2, upstream failures.
mod passthrough;
// The binary: check, explain, config errors with line and column, the shipped config.
mod cli;
// TLS to https upstreams with a private CA.
mod tls;
// The gateway's own host names: TLS listener and local CA, host routes, connect_to, loops.
mod front;
// Browser fidelity: token stand-ins and the maintenance page in headless Chromium.
mod browser;
// Admin API: health, status, metrics, auth, ad-hoc drills, reload.
mod admin;
// Drill clock, recurring windows end to end, trusted proxies.
mod drills;
// The config file watch: ConfigMap `..data` swaps, renames, edits.
mod watch;
// Replicas agree: anchored drill clock, drills persisted in state_dir, config sha256.
mod replicas;
// Three real processes on one ConfigMap: reload, clock, fleet CLI, restart, a replica down.
mod fleet;
// deploy/kubernetes/ agrees with the pods' config and the image.
mod kubernetes;
// Graceful shutdown.
mod shutdown;
// Logs and metrics carry no secrets (runs the real binary).
mod logs;
// The settleMethod 14 drill: trade-info rewrite, notification relay, notify.
mod settle;
// The stand-in gateway alone, and end to end behind the shim on config/drill.toml.
mod qa_gateway;
// Merchant integrations against the stand-in through the shim: API flows, token libraries.
mod integrations;
// QA kit consistency: shipped configs pass `check`, compose file vs repository and binary.
mod compose;
// Robustness: load, faults, bad input (WEBCOLLECT_SHIM_HEAVY=1 for heavier runs).
mod robustness;
// docs/config.md matches the keys the parser accepts.
mod docs;
// Every relative link and #anchor in the README, CONTRIBUTING.md and docs/ resolves.
mod links;
// Worker threads on one port, request ids, per-worker upstream pools.
mod workers;
// Hardening: canonical paths, connection and body bounds, upstream caps, methods.
mod hardening;
// The admin API refuses cross-site mutations: foreign Origin 403, non-JSON drill body 415.
mod cross_site;
// The admin console: /timeline and /traffic, and the page in headless Chromium.
mod console;
// The library's top-level modules form no cycle.
mod layout;
// Drill evidence: the journal, reports, the report command.
mod journal;
// Issue 25 beyond the request path: admin limits, fleet CLI, files, local CA, TLS logs.
mod admin_hardening;
// `explain` runs the real stack: its bytes are the wire's for every answer kind.
mod explain;
// Issue 25's load test: the admin hammered during merchant load and reloads.
mod admin_load;
