# webcollect-shim container image.
#
#   docker build -t webcollect-shim .
#   podman build --format docker -t webcollect-shim .    # podman: keep the HEALTHCHECK
#   docker run -p 8080:8080 \
#     -v $PWD/config/webcollect-shim.toml:/etc/webcollect-shim/webcollect-shim.toml:ro \
#     webcollect-shim
#
# Behind a TLS-inspecting proxy (cargo fails with "self-signed certificate in certificate
# chain"), hand the proxy's CA to the build as the BuildKit secret `extra-ca` (docker and
# podman alike). Only the step that downloads crates reads it; it is never copied into a layer:
#
#   docker build --secret id=extra-ca,src=/path/to/proxy-ca.pem -t webcollect-shim .
#
# The image runs with a read-only root filesystem: it writes only to [admin] state_dir
# (/var/lib/webcollect-shim, when WEBCOLLECT_SHIM_STATE_DIR or the config names it) and to
# [tls] ca_dir (/etc/webcollect-shim/ca); mount a volume there (examples/compose/compose.yaml).

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# rust-toolchain.toml is deliberately not copied: it pins an exact patch release and asks for
# rustfmt and clippy, which would make rustup download another toolchain inside the build.
# The image's own 1.95 compiler is what we build with.

# 1. Dependencies only, so they are cached until Cargo.toml or Cargo.lock changes. The crate
#    has a library (src/lib.rs) and a binary (src/main.rs); build both as empty stand-ins.
#    This is the only step that downloads (crates.io, over HTTPS). With the secret `extra-ca`
#    its CA is added to the system's in a bundle that this same step deletes, so no layer
#    holds it; without the secret the mount is simply absent.
COPY Cargo.toml Cargo.lock ./
RUN --mount=type=secret,id=extra-ca \
    if [ -s /run/secrets/extra-ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra-ca > /tmp/extra-ca-bundle.pem \
        && export CARGO_HTTP_CAINFO=/tmp/extra-ca-bundle.pem; \
    fi \
    && mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src /tmp/extra-ca-bundle.pem

# 2. The real sources. The crate include_str!s the maintenance page, the token library
#    stand-ins, the console and the stand-in gateway's pages from assets/, so assets/ is needed
#    at compile time (tests/compose.rs checks that every file src/ compiles in is copied, and
#    .ci/container.sh builds this image). --offline: everything was downloaded in step 1.
COPY src ./src
COPY assets ./assets
# COPY keeps the files' own timestamps, which can be older than the stand-ins built above;
# touch them so cargo rebuilds the crate itself.
RUN touch src/lib.rs src/main.rs \
    && cargo build --release --locked --offline \
    && cp target/release/webcollect-shim /usr/local/bin/webcollect-shim

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim

# The shim trusts the public web roots compiled into it (webpki-roots) and each upstream's
# `ca_file`, never the system store. The image has no other TLS client, so no ca-certificates
# package (with the openssl it pulls in, 9.6 MB of the 100 MB budget); only its bundle, from
# the builder, in the usual place for a tool added on top of this image.
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

RUN groupadd --system --gid 10001 shim \
    && useradd --system --uid 10001 --gid shim --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin shim

COPY --from=builder /usr/local/bin/webcollect-shim /usr/local/bin/webcollect-shim
# The shipped config (2020-04-20 window in front of the production hosts). Mount your own
# over it. A relative `ca_file` in the config is read relative to the config file's
# directory, i.e. /etc/webcollect-shim/.
COPY config/webcollect-shim.toml /etc/webcollect-shim/webcollect-shim.toml
ENV WEBCOLLECT_SHIM_CONFIG=/etc/webcollect-shim/webcollect-shim.toml
# The directories the shim writes to, owned by its user, owner-only; a named volume mounted
# on one starts with that owner (docker and podman copy it up), so the read-only root needs
# nothing else:
# - /etc/webcollect-shim/ca, the shipped config's [tls] ca_dir: where the local CA is created
#   when [listen] tls is set. A volume here keeps the CA across container restarts (clients
#   trust it once).
# - /var/lib/webcollect-shim, for [admin] state_dir (open drills, the drill journal): unused
#   unless the config or WEBCOLLECT_SHIM_STATE_DIR names it.
RUN install -d -o 10001 -g 10001 -m 0700 /etc/webcollect-shim/ca /var/lib/webcollect-shim

USER 10001:10001

# 8080: merchant traffic ([listen] proxy, default 0.0.0.0:8080).
# 8443: merchant traffic over TLS, when the config sets [listen] tls (commented out in the
#       shipped config).
# 9090: admin listener ([listen] admin). It defaults to 127.0.0.1:9090, i.e. loopback inside
#       the container, so publishing the port reaches nothing unless the config sets
#       `admin = "0.0.0.0:9090"` (which also requires `[admin] token_env`).
EXPOSE 8080 8443 9090

# The image has no curl: the binary itself asks the admin listener's /healthz (on loopback
# inside the container, whatever [listen] admin's interface).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["webcollect-shim", "healthcheck"]

# Runs as PID 1 and handles SIGTERM: stops accepting, lets in-flight requests finish for up
# to [server] shutdown_grace (default 30s).
ENTRYPOINT ["webcollect-shim"]
CMD ["run"]
