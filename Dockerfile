# webcollect-shim container image.
#
#   docker build -t webcollect-shim .
#   docker run -p 8080:8080 \
#     -v $PWD/config/webcollect-shim.toml:/etc/webcollect-shim/webcollect-shim.toml:ro \
#     webcollect-shim

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# rust-toolchain.toml is deliberately not copied: it pins an exact patch release and asks for
# rustfmt and clippy, which would make rustup download another toolchain inside the build.
# The image's own 1.95 compiler is what we build with.

# 1. Dependencies only, so they are cached until Cargo.toml or Cargo.lock changes. The crate
#    has a library (src/lib.rs) and a binary (src/main.rs); build both as empty stand-ins.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# 2. The real sources. src/response.rs include_str!s the maintenance page and the token
#    library stand-in from assets/, so assets/ is needed at compile time.
COPY src ./src
COPY assets ./assets
# COPY keeps the files' own timestamps, which can be older than the stand-ins built above;
# touch them so cargo rebuilds the crate itself.
RUN touch src/lib.rs src/main.rs \
    && cargo build --release --locked \
    && cp target/release/webcollect-shim /usr/local/bin/webcollect-shim

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim

# The shim trusts the public web roots compiled into it (webpki-roots); ca-certificates is
# here for anything else in the image and for operators debugging TLS from a shell.
# DL3008 (pin apt package versions) is ignored on purpose: Debian replaces a package in the
# bookworm archive when it ships a security fix, so a pinned version stops installing and the
# build breaks; unpinned, each build gets the current fixed ca-certificates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 shim \
    && useradd --system --uid 10001 --gid shim --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin shim

COPY --from=builder /usr/local/bin/webcollect-shim /usr/local/bin/webcollect-shim
# The shipped config (2020-04-20 window in front of the production hosts). Mount your own
# over it. A relative `ca_file` in the config is read relative to the config file's
# directory, i.e. /etc/webcollect-shim/.
COPY config/webcollect-shim.toml /etc/webcollect-shim/webcollect-shim.toml
ENV WEBCOLLECT_SHIM_CONFIG=/etc/webcollect-shim/webcollect-shim.toml

USER 10001:10001

# 8080: merchant traffic ([listen] proxy, default 0.0.0.0:8080).
# 9090: admin listener ([listen] admin). It defaults to 127.0.0.1:9090, i.e. loopback inside
#       the container, so publishing the port reaches nothing unless the config sets
#       `admin = "0.0.0.0:9090"` (which also requires `[admin] token_env`).
EXPOSE 8080 9090

# The image has no curl: the binary itself asks the admin listener's /healthz (on loopback
# inside the container, whatever [listen] admin's interface).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["webcollect-shim", "healthcheck"]

# Runs as PID 1 and handles SIGTERM: stops accepting, lets in-flight requests finish for up
# to [server] shutdown_grace (default 30s).
ENTRYPOINT ["webcollect-shim"]
CMD ["run"]
