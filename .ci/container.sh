#!/usr/bin/env bash
# CI: builds the image from the repository's Dockerfile, unchanged, and runs the QA kit
# (examples/compose) against it, with a faster drill clock. Asserts, against the containers:
#
# - compose.yaml: pass-through, then the maintenance answers (Z01000000 on the API, the 503
#   maintenance page), then pass-through again; the health check; uid 10001; a read-only root
#   where only [admin] state_dir (a volume) is writable; a clean stop well within
#   shutdown_grace (exit 0, not a kill);
# - compose.unmodified.yaml: the merchant, which knows only https://api.kuronekoyamato.co.jp,
#   reaches the shim under that name (TLS, the shim's CA trusted) and gets the maintenance
#   answer;
# - the image: HEALTHCHECK kept, user 10001, at most 100 MB.
#
# The engine: docker when `docker info` works (a developer's machine, with a registry: the
# real base images are pulled), else podman. With podman (CI: no container registry) the
# script installs podman, runc and debootstrap (apt) and podman-compose (pinned, from PyPI,
# into .ci/.venv), and makes the Dockerfile's two base images locally, under their real names:
#
# - debian:bookworm-slim: `debootstrap --variant=minbase bookworm`, slimmed as Debian's
#   official image is (no docs, man pages or locales; apt's docker-clean), `podman import`ed;
# - rust:<the Dockerfile's tag>: that base plus the toolchain rust-toolchain.toml pins,
#   installed by rustup as the official image does (rustup-init, sha256-checked, profile
#   minimal); when static.rust-lang.org cannot be reached, a copy of this machine's own
#   toolchain of that version (`rustc --print sysroot`, without its docs).
#
# Both are made once and kept (podman's storage); so is the layer cache, so later runs build
# nothing that did not change. `podman rmi debian:bookworm-slim rust:1.95-slim-bookworm`
# makes them again (e.g. for Debian's security updates).
#
# Behind a TLS-inspecting proxy, $SSL_CERT_FILE (when set) is passed to the builds as the
# BuildKit secret `extra-ca`; it is never copied into an image.
#
# Knobs: CONTAINER_ENGINE=docker|podman (skip the detection), KEEP=1 (leave the stacks
# running on failure, for a look; `… compose -p PROJECT down -v` afterwards),
# RUST_BASE_SOURCE=local (make the rust base from this machine's toolchain, not rustup).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

IMAGE=webcollect-shim:qa                    # the tag both compose files use
MERCHANT_IMAGE=webcollect-shim-qa-merchant  # compose.unmodified.yaml's merchant
PROJECT=webcollect-shim-ci
PODMAN_COMPOSE_VERSION=1.5.0
# The drill clock, faster than the kit's 60×: 30 real seconds of pass-through before the
# 4-hour window (02:00-06:00 JST), 30 in it, then pass-through again.
SPEED=480
START_AT=2020-04-19T22:00:00+09:00          # 02:00 JST minus 30 s × 480
# The shim's [server] shutdown_grace (the compose configs keep the default).
SHUTDOWN_GRACE=30
MAX_IMAGE_BYTES=100000000                   # 100 MB

log() { printf '[container.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
  log "FAIL: $*"
  exit 1
}
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

work=$(mktemp -d)
stacks=()
cleanup() {
  local status=$?
  for stack in "${stacks[@]}"; do
    if [ "$status" -ne 0 ]; then
      log "logs of $stack:"
      compose_cmd "$stack" logs 2>&1 | tail -n 60 >&2 || true
    fi
    if [ "$status" -ne 0 ] && [ "${KEEP:-0}" = 1 ]; then
      log "KEEP=1: $stack left running"
    else
      compose_cmd "$stack" down -v >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# ---- the engine --------------------------------------------------------------------------
engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi
log "engine: $engine"

if [ "$engine" = podman ]; then
  # dnsname: the compose services find each other by name (CNI, podman 4.3's network
  # backend here; harmless with netavark, which has aardvark-dns instead).
  missing=()
  for tool in podman runc debootstrap curl /usr/lib/cni/dnsname; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ "$(id -u)" -ne 0 ]; then
    # Rootless podman (CI runs as root; this path is untested): user namespaces and networking.
    for tool in newuidmap slirp4netns; do
      command -v "$tool" >/dev/null || missing+=("$tool")
    done
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install (missing: ${missing[*]})"
    packages=(podman runc debootstrap curl ca-certificates golang-github-containernetworking-plugin-dnsname)
    if [ "$(id -u)" -ne 0 ]; then packages+=(uidmap slirp4netns); fi
    apt_install "${packages[@]}"
  fi
  # runc, not crun (which fails on some kernels' cgroups); cgroupfs and file events, for
  # machines without systemd. Podman raises the containers' open-file and process limits to
  # values a root without CAP_SYS_RESOURCE may not set: keep nofile at the current limits and
  # nproc at most kernel.pid_max.
  nproc=$(ulimit -Hu)
  pid_max=$(cat /proc/sys/kernel/pid_max)
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
  cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Sn):$(ulimit -Hn)", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF="$work/containers.conf"
  # Debian bookworm's podman-compose (1.0.3) ignores ipam subnets, ipv4_address and
  # healthcheck.disable, which compose.unmodified.yaml needs.
  venv=.ci/.venv
  if [ ! -x "$venv/bin/pip" ]; then python3 -m venv "$venv"; fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "podman-compose==$PODMAN_COMPOSE_VERSION"
  compose_cmd() {
    local project=$1
    shift
    "$ROOT/.ci/.venv/bin/podman-compose" -p "$project" "${compose_files[@]}" "$@"
  }
else
  docker compose version >/dev/null || die "docker compose (v2) is needed"
  compose_cmd() {
    local project=$1
    shift
    docker compose -p "$project" "${compose_files[@]}" "$@"
  }
fi
ctr() { "$engine" "$@"; }

build_args=()
secret=()
if [ -n "${SSL_CERT_FILE:-}" ]; then
  [ -s "$SSL_CERT_FILE" ] || die "SSL_CERT_FILE=$SSL_CERT_FILE is not a file"
  secret=(--secret "id=extra-ca,src=$SSL_CERT_FILE")
  log "extra-ca: $SSL_CERT_FILE"
fi
if [ "$engine" = podman ]; then
  # --format docker keeps HEALTHCHECK (OCI images have no such field); never pull: the
  # base images are the local ones.
  build_args=(--format docker --pull=never)
fi

# ---- the base images (podman) ------------------------------------------------------------
rust_tag=$(sed -n 's/^FROM rust:\([^ ]*\) AS builder$/\1/p' Dockerfile)
[ -n "$rust_tag" ] || die "no 'FROM rust:… AS builder' line in the Dockerfile"
rust_version=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
case "$rust_tag" in
  "${rust_version%.*}"-slim-bookworm) ;;
  *) die "Dockerfile's rust:$rust_tag does not match rust-toolchain.toml's $rust_version" ;;
esac
DEBIAN_BASE=docker.io/library/debian:bookworm-slim
RUST_BASE=docker.io/library/rust:$rust_tag

# The Debian archive this machine's apt uses (a mirror that works here), else deb.debian.org.
debian_mirror() {
  local suffix=$1 uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE '(https?|ftp)://[^ ]+' | sed 's:/*$::' | grep -E "/$suffix\$" | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/$suffix}"
}

make_debian_base() {
  local rootfs=$work/rootfs mirror security
  mirror=$(debian_mirror debian)
  security=$(debian_mirror debian-security)
  log "making $DEBIAN_BASE: debootstrap --variant=minbase bookworm $mirror"
  as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  # What Debian's official slim images do (debuerreotype): no docs, man pages, info or
  # locales, now or in later installs; apt keeps no package cache or lists.
  as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  as_root tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  as_root tee "$rootfs/etc/apt/apt.conf.d/docker-no-languages" >/dev/null <<'EOF'
Acquire::Languages "none";
EOF
  as_root rm -f "$rootfs/etc/apt/sources.list"
  as_root tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  as_root find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  as_root find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  as_root rm -rf "$rootfs"/usr/share/{info,linda,man,locale}/* "$rootfs"/usr/share/lintian/overrides/* \
    "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*
  as_root tar -C "$rootfs" --numeric-owner -c . |
    ctr import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' - "$DEBIAN_BASE" >/dev/null
  as_root rm -rf "$rootfs"
}

make_rust_base() {
  local dir=$work/rust-base
  mkdir -p "$dir"
  # The official image's recipe (docker-library/rust): rustup 1.28.2, checked by sha256.
  local rustup_url=https://static.rust-lang.org/rustup/archive/1.28.2/x86_64-unknown-linux-gnu/rustup-init
  local rustup_sha=20a06e644b0d9bd2fbdbfd52d42540bdde820ea7df86e92e533c073da0cdd43c
  if [ "${RUST_BASE_SOURCE:-rustup}" = rustup ] &&
    curl -fsSL --retry 2 -o "$dir/rustup-init" "$rustup_url" 2>"$work/rustup.err" &&
    echo "$rustup_sha  $dir/rustup-init" | sha256sum -c --quiet - &&
    curl -fsSI "https://static.rust-lang.org/dist/channel-rust-$rust_version.toml" >/dev/null; then
    log "making $RUST_BASE: $DEBIAN_BASE + rustup $rust_version (profile minimal)"
    cat >"$dir/Containerfile" <<EOF
FROM $DEBIAN_BASE
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=$rust_version
COPY rustup-init /tmp/rustup-init
RUN --mount=type=secret,id=extra-ca set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev; \
    rm -rf /var/lib/apt/lists/*; \
    if [ -s /run/secrets/extra-ca ]; then \
      cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra-ca > /tmp/ca.pem; \
      export SSL_CERT_FILE=/tmp/ca.pem; \
    fi; \
    chmod +x /tmp/rustup-init; \
    /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain \$RUST_VERSION \
      --default-host x86_64-unknown-linux-gnu; \
    rm -f /tmp/rustup-init /tmp/ca.pem; \
    chmod -R a+w \$RUSTUP_HOME \$CARGO_HOME; \
    rustc --version
EOF
  else
    # No rustup here: this machine's own toolchain of the pinned version, as rustup
    # installed it (without its docs and tools the build does not use).
    log "no rustup (RUST_BASE_SOURCE=${RUST_BASE_SOURCE:-rustup}; $(tr '\n' ' ' 2>/dev/null <"$work/rustup.err")): making $RUST_BASE from this machine's rustc $rust_version"
    local sysroot
    sysroot=$(rustc --print sysroot)
    rustc --version | grep -q "^rustc $rust_version " || die "rustc here is not $rust_version: $(rustc --version)"
    mkdir -p "$dir/toolchain/bin"
    cp -a "$sysroot"/bin/{cargo,rustc,rustdoc} "$dir/toolchain/bin/"
    cp -a "$sysroot/lib" "$dir/toolchain/"
    cat >"$dir/Containerfile" <<EOF
FROM $DEBIAN_BASE
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=$rust_version
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rustup/toolchains/$rust_version-x86_64-unknown-linux-gnu
RUN mkdir -p /usr/local/cargo/bin \
    && for tool in cargo rustc rustdoc; do \
         ln -s /usr/local/rustup/toolchains/$rust_version-x86_64-unknown-linux-gnu/bin/\$tool /usr/local/cargo/bin/\$tool; \
       done \
    && chmod -R a+w /usr/local/rustup /usr/local/cargo \
    && rustc --version
EOF
  fi
  ctr build "${build_args[@]}" "${secret[@]}" -t "$RUST_BASE" "$dir" >"$work/rust-base.log" 2>&1 ||
    { tail -n 30 "$work/rust-base.log" >&2; die "building $RUST_BASE failed"; }
}

if [ "$engine" = podman ]; then
  if ctr image exists "$DEBIAN_BASE"; then
    log "$DEBIAN_BASE: kept from an earlier run"
  else
    make_debian_base
  fi
  if ctr image exists "$RUST_BASE"; then
    log "$RUST_BASE: kept from an earlier run"
  else
    make_rust_base
  fi
fi

# ---- the images --------------------------------------------------------------------------
log "building $IMAGE from the Dockerfile"
ctr build "${build_args[@]}" "${secret[@]}" -t "$IMAGE" -f Dockerfile . >"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; die "building the Dockerfile failed"; }
log "building $MERCHANT_IMAGE from examples/compose/merchant"
ctr build "${build_args[@]}" -t "$MERCHANT_IMAGE" examples/compose/merchant >"$work/merchant.log" 2>&1 ||
  { tail -n 40 "$work/merchant.log" >&2; die "building the merchant image failed"; }

# The image: HEALTHCHECK kept, its user, its size.
health=$(ctr image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
case "$health" in
  *'"webcollect-shim","healthcheck"'*) ;;
  *) die "the image has no HEALTHCHECK running webcollect-shim healthcheck: $health" ;;
esac
user=$(ctr image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = 10001:10001 ] || die "the image's user is '$user', not 10001:10001"
size=$(ctr image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(ctr image inspect --format '{{.Size}}' "$DEBIAN_BASE" 2>/dev/null || echo 0)
log "image $IMAGE: $((size / 1000000)) MB ($((base_size / 1000000)) MB of it debian:bookworm-slim); binary: $(ctr run --rm --no-healthcheck --entrypoint /bin/sh "$IMAGE" -c 'wc -c </usr/local/bin/webcollect-shim') bytes"
[ "$size" -le "$MAX_IMAGE_BYTES" ] || die "the image is $size bytes, more than $MAX_IMAGE_BYTES"

# ---- helpers for the drills --------------------------------------------------------------
# The drill's config: the kit's, with the faster clock.
fast_config() {
  local src=$1 dest=$2
  sed -e "s/^start_at = .*/start_at = \"$START_AT\"/" -e "s/^speed = .*/speed = $SPEED/" "$src" >"$dest"
  if ! grep -q "^speed = $SPEED\$" "$dest" || ! grep -q "^start_at = \"$START_AT\"\$" "$dest"; then
    die "$src has no [clock] start_at/speed to speed up"
  fi
  chmod 0644 "$dest"
}

container_of() { # project service
  local id
  id=$(ctr ps -a -q --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2")
  [ -n "$id" ] || die "no container for $2 in $1"
  echo "$id"
}

# H01 (global IP address inquiry) through the shim's plain port: prints "CODE ERROR WHO".
api() {
  local headers body
  headers=$(mktemp -p "$work")
  body=$(curl -s --max-time 5 -D "$headers" -X POST -d 'function_div=H01&trader_code=123456789' \
    http://127.0.0.1:8080/api/traderIp) || {
    echo "- - unreachable"
    return
  }
  local code error who='?'
  code=$(sed -n 's:.*<returnCode>\(.*\)</returnCode>.*:\1:p' <<<"$body")
  error=$(sed -n 's:.*<errorCode>\(.*\)</errorCode>.*:\1:p' <<<"$body")
  if grep -qi '^x-webcollect-shim: maintenance' "$headers"; then
    who=shim
  elif grep -qi '^x-webcollect-mock-gateway:' "$headers"; then
    who=stand-in
  fi
  echo "${code:--} ${error:--} $who"
}

# The link method's page: the HTTP status.
page() {
  curl -s --max-time 5 -o "$work/page.html" -w '%{http_code}' -X POST \
    -d 'trader_code=123456789&order_no=1&settle_price=1000' \
    http://127.0.0.1:8080/webcollect/settleSelectAction.gw || echo 000
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every second until it succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what: not within ${seconds}s"
    sleep 1
  done
}

# ---- compose.yaml ------------------------------------------------------------------------
check_ports_free() {
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "127.0.0.1:$port is in use; the kit publishes it"
    fi
  done
}

fast_config examples/compose/shim.toml "$work/shim.toml"
cat >"$work/compose.ci.yaml" <<EOF
services:
  shim:
    volumes:
      - $work/shim.toml:/etc/webcollect-shim/webcollect-shim.toml:ro
EOF
compose_files=(-f "$ROOT/examples/compose/compose.yaml" -f "$work/compose.ci.yaml")
check_ports_free 8080 9090
stacks+=("$PROJECT")
log "compose.yaml: up (drill clock ${SPEED}×: pass-through, the window from ~30 s, pass-through from ~60 s)"
compose_cmd "$PROJECT" up -d >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; die "compose up failed"; }
started=$SECONDS
shim=$(container_of "$PROJECT" shim)

# 1. Pass-through: the stand-in answers through the shim, returnCode 0, and its payment page
#    (200). (The shim answers 502 until the stand-in listens.)
passing() {
  read -r code error who <<<"$(api)"
  [ "$who" != shim ] || die "the maintenance answer before pass-through: the drill started late ($((SECONDS - started)) s after up)"
  [ "$code $who" = "0 stand-in" ]
}
wait_for 20 "returnCode 0 from the stand-in through the shim" passing
[ "$(page)" = 200 ] || die "before the window: the link page is not the stand-in's 200"
log "pass-through: returnCode 0 from the stand-in, link page 200"

# 2. The window: Z01000000 from the shim on the API, the maintenance page (503).
in_window() {
  read -r code error who <<<"$(api)"
  [ "$code $error $who" = "1 Z01000000 shim" ]
}
wait_for 60 "the maintenance answer (returnCode 1, Z01000000)" in_window
status=$(page)
[ "$status" = 503 ] || die "in the window: the link page answered $status, not 503"
grep -q 'メンテナンス' "$work/page.html" || die "in the window: the 503 is not the maintenance page"
log "window: returnCode 1 / Z01000000 from the shim, maintenance page 503 ($((SECONDS - started)) s after up)"

# 3. After the window: the payment page, then the API, pass through again.
page_back() { [ "$(page)" = 200 ]; }
wait_for 60 "the link page passing through again after the window" page_back
read -r code error who <<<"$(api)"
[ "$code $who" = "0 stand-in" ] || die "after the window: expected returnCode 0 from the stand-in, got '$code $error $who'"
log "after the window: link page 200, returnCode 0 from the stand-in ($((SECONDS - started)) s after up)"

# 4. The health check (the image's and compose's: webcollect-shim healthcheck).
if [ "$engine" = podman ]; then
  # Without systemd podman runs no periodic checks: run one.
  ctr healthcheck run "$shim" >/dev/null || die "the shim's health check fails"
else
  healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$shim")" = healthy ]; }
  wait_for 40 "the shim healthy" healthy
fi
log "health check: healthy"

# 5. The user: uid 10001, for the shim process itself (PID 1) too.
[ "$(ctr exec "$shim" id -u)" = 10001 ] || die "exec in the shim does not run as uid 10001"
ctr exec "$shim" grep -Eq '^Uid:[[:space:]]+10001[[:space:]]+10001' /proc/1/status ||
  die "the shim process is not uid 10001: $(ctr exec "$shim" grep ^Uid /proc/1/status)"
log "uid: 10001"

# 6. A read-only root; [admin] state_dir (the volume) writable: an ad-hoc drill is kept there.
[ "$(ctr inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$shim")" = true ] || die "the shim's root is not read-only"
if ctr exec "$shim" sh -c ': >/etc/webcollect-shim/probe' 2>/dev/null; then die "the shim could write to its root"; fi
state_dir=$(ctr exec "$shim" printenv WEBCOLLECT_SHIM_STATE_DIR)
token=qa-kit-admin-token-change-me
drill=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"services": ["webcollect.trade_info"], "duration": "2h"}' \
  http://127.0.0.1:9090/drills)
[ "${drill:0:1}" = 2 ] || die "POST /drills answered $drill"
ctr exec "$shim" test -s "$state_dir/drills.json" || die "no drills.json in $state_dir"
log "read-only root; $state_dir (volume) holds drills.json"

# 7. A clean stop: SIGTERM, exit 0 within shutdown_grace (the engine's own kill comes later).
if grep -q '^shutdown_grace' examples/compose/shim.toml; then die "shim.toml sets shutdown_grace: update SHUTDOWN_GRACE here"; fi
t0=$(date +%s%N)
# (podman, without systemd, complains about the health check's timer: noise unless it fails)
ctr stop -t $((SHUTDOWN_GRACE + 30)) "$shim" >/dev/null 2>"$work/stop.err" || { cat "$work/stop.err" >&2; die "stop failed"; }
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
exit_code=$(ctr inspect -f '{{.State.ExitCode}}' "$shim")
[ "$exit_code" = 0 ] || die "the shim exited $exit_code on SIGTERM"
[ "$elapsed_ms" -lt $((SHUTDOWN_GRACE * 1000)) ] || die "the shim took ${elapsed_ms} ms to stop"
log "stop: exit 0 after ${elapsed_ms} ms (shutdown_grace ${SHUTDOWN_GRACE}s)"
compose_cmd "$PROJECT" down -v >/dev/null 2>&1
stacks=()

# ---- compose.unmodified.yaml -------------------------------------------------------------
fast_config examples/compose/shim-unmodified.toml "$work/shim-unmodified.toml"
cat >"$work/compose.unmodified.ci.yaml" <<EOF
services:
  shim:
    volumes:
      - $work/shim-unmodified.toml:/etc/webcollect-shim/webcollect-shim.toml:ro
EOF
compose_files=(-f "$ROOT/examples/compose/compose.unmodified.yaml" -f "$work/compose.unmodified.ci.yaml")
check_ports_free 8080 8443 9090
stacks+=("$PROJECT-unmodified")
log "compose.unmodified.yaml: up"
compose_cmd "$PROJECT-unmodified" up -d >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; die "compose up failed"; }
shim=$(container_of "$PROJECT-unmodified" shim)
merchant=$(container_of "$PROJECT-unmodified" merchant)

# The merchant resolves the gateway's name to the shim.
shim_ip=$(ctr inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$shim")
resolved=$(ctr exec "$merchant" getent hosts api.kuronekoyamato.co.jp | awk '{print $1}')
[ "$resolved" = "$shim_ip" ] || die "the merchant resolves api.kuronekoyamato.co.jp to '$resolved', the shim is $shim_ip"
# Its integration.php (https://api.kuronekoyamato.co.jp/api/traderIp every 10 s) logs
# returnCode 0 (the stand-in, through the shim's TLS listener), then 1 / Z01000000 (the shim).
merchant_saw() { ctr logs "$merchant" 2>&1 | grep -q -- "$1"; }
wait_for 45 "the merchant's first answer through the shim (returnCode=0)" merchant_saw 'returnCode=0 '
wait_for 75 "the merchant getting the maintenance answer" merchant_saw 'returnCode=1 errorCode=Z01000000'
if merchant_saw 'transport failure'; then die "the merchant had a transport failure: $(ctr logs "$merchant" 2>&1 | grep 'transport failure' | head -n 1)"; fi
ctr exec "$shim" test -s /etc/webcollect-shim/ca/ca.pem || die "no CA in the shim's ca volume"
[ "$(ctr inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$shim")" = true ] || die "the unmodified kit's shim root is not read-only"
log "merchant: api.kuronekoyamato.co.jp → the shim ($shim_ip), returnCode 0 then 1 / Z01000000 over TLS"
compose_cmd "$PROJECT-unmodified" down -v >/dev/null 2>&1
stacks=()

log "ok"
