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
