# shellcheck shell=bash
# What bench/run.sh, bench/calibrate.sh and bench/profile.sh share: logging, the temp dir and
# the process cleanup trap, starting servers, the binaries under test, the 1 KiB body, the
# 158-byte maintenance XML and the 300-byte form POST, the nginx configs (plain, with the
# shim's header work, over TLS), Caddy's config, the test certificate and the shim config.
# Sourced, not run; it defines functions and a few constants and starts nothing by itself.
#
# Variables the callers set before using these functions: P_UP (upstream nginx port), P_SINK
# (upload sink port), DUR (callgrind_measure's load, seconds). Environment read here: SHIM,
# BEFORE, NO_BUILD, SHIM_WORKERS, KEEP.

BENCH_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_LIB/.." && pwd)"
PATH_API=/api/creditToken

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- temp dir and processes
PIDS=()            # every process started here; stopped by bench_cleanup
declare -A PID=()  # name -> PID of what `start` started

# Creates the temp dir $T (readable by nginx workers, which run as www-data) and installs the
# trap that stops every recorded process on exit. KEEP=1 keeps the dir (configs, raw outputs).
bench_tmpdir() { # $1 = mktemp prefix
  T="$(mktemp -d "/tmp/$1.XXXXXX")"
  chmod 755 "$T"
  mkdir -p "$T/www" "$T/bin"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$T/www/big.bin" "$T"/bin/*   # large; never worth keeping
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}

# Starts a server in the background, output in $T/NAME.out; PID[NAME] is its PID.
start() { # $1 = name, rest = command
  local name=$1; shift
  "$@" >"$T/$name.out" 2>&1 &
  PIDS+=("$!")
  PID[$name]=$!
}
# Stops what `start` started under NAME and waits for it.
stop() { # $1 = name
  kill -TERM "${PID[$1]}" 2>/dev/null || true
  wait "${PID[$1]}" 2>/dev/null || true
}

wait_port() { # $1 port; up to 30 s (a shim under valgrind starts slowly)
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listens on $1"
}
ports_free() { # ports...
  local p
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is busy"; fi
  done
}

# ---------------------------------------------------------------- CPU time
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# CPU time (user + system, in clock ticks) of a server: the process and its children (nginx
# workers).
group_ticks() { # $1 = pid
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(cpu_ticks "$p" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# ---------------------------------------------------------------- callgrind
# Instructions per request of one server, whole process. It runs under callgrind with its
# threads summed (--separate-threads=no); the counters are zeroed after a 3 s warm-up
# (wrk -t1 -c8) and dumped right after DUR s of the same load, so start-up and warm-up are
# not counted. Sets CG_REQS (requests wrk counted), CG_FAILED (non-2xx answers and socket
# errors among them), CG_IR (instructions in the dump) and CG_THREADS (the process's threads
# at the end). Logs go to $T/cg-NAME.*, wrk's report to $T/wrk-cg-NAME.txt.
# WRK_SCRIPT=path (a wrk Lua script, e.g. a form POST) applies to both loads.
callgrind_measure() { # $1 name, $2 callgrind output file, $3 port, $4 url, rest = command
  local name=$1 out=$2 port=$3 url=$4; shift 4
  valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no --separate-threads=no \
    "$@" >"$T/cg-$name.log" 2>&1 &
  local pid=$!; PIDS+=("$pid"); wait_port "$port"
  wrk -t1 -c8 -d3s ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "$url" >/dev/null
  callgrind_control -z "$pid" >"$T/cg-$name.ctl" 2>&1 || die "callgrind_control -z: $(cat "$T/cg-$name.ctl")"
  timeout $((DUR + 30)) wrk -t1 -c8 -d"${DUR}s" --latency ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "$url" \
    >"$T/wrk-cg-$name.txt"
  callgrind_control -d "$pid" >>"$T/cg-$name.ctl" 2>&1 || die "callgrind_control -d: $(cat "$T/cg-$name.ctl")"
  CG_THREADS=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  # req/s p50 p99 errors requests
  read -r _ _ _ CG_FAILED CG_REQS <<<"$(python3 "$BENCH_LIB/summarize.py" wrk "$T/wrk-cg-$name.txt")"
  # `-d` writes OUT.1; OUT itself is written at exit and holds only what came after the dump.
  [[ -s "$out.1" ]] || die "no callgrind dump $out.1 (files: $(ls "$T" | grep callgrind-))"
  CG_IR=$(awk -F': ' '$1 == "summary" || $1 == "totals" {print $2; exit}' "$out.1")
  [[ -n "$CG_IR" && -n "$CG_REQS" && "$CG_REQS" -gt 0 ]] ||
    die "callgrind $name: $CG_IR instructions, '$CG_REQS' requests"
}

# ---------------------------------------------------------------- binaries under test
# SHIM=path benchmarks that binary as it is; otherwise `cargo build --profile profiling` (unless
# NO_BUILD=1) and target/profiling/webcollect-shim: the release build with debug info and
# symbols (Cargo.toml), which perf and callgrind need and the shipped release binary lacks. BEFORE=path adds a second binary, the previous commit's
# build, as the target `before`. Both are copied into $T/bin first, so a rebuild during the run
# cannot swap a binary between scenarios. Sets SHIM_BIN, BEFORE_BIN (empty without BEFORE),
# and SHIM_DESC / BEFORE_DESC (one line each, for the report).
bench_binaries() {
  local src="${SHIM:-}"
  if [[ -z "$src" ]]; then
    if [[ "${NO_BUILD:-0}" != 1 ]]; then
      log "cargo build --profile profiling"
      (cd "$BENCH_ROOT" && cargo build --profile profiling --quiet)
    fi
    src="$BENCH_ROOT/target/profiling/webcollect-shim"
    local rev dirty=""
    rev="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    git -C "$BENCH_ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || dirty=" (modified)"
    SHIM_DESC="$rev$dirty, "
  else
    SHIM_DESC="$src, "
  fi
  [[ -x "$src" ]] || die "no executable shim at $src"
  cp "$src" "$T/bin/webcollect-shim"
  SHIM_BIN="$T/bin/webcollect-shim"
  SHIM_DESC+="$("$SHIM_BIN" --version 2>/dev/null), sha256 $(sha256sum "$SHIM_BIN" | cut -c1-12)"
  BEFORE_BIN=""
  BEFORE_DESC=""
  if [[ -n "${BEFORE:-}" ]]; then
    [[ -x "$BEFORE" ]] || die "BEFORE=$BEFORE is not an executable"
    cp "$BEFORE" "$T/bin/webcollect-shim-before"
    BEFORE_BIN="$T/bin/webcollect-shim-before"
    BEFORE_DESC="$BEFORE, $("$BEFORE_BIN" --version 2>/dev/null), sha256 $(sha256sum "$BEFORE_BIN" | cut -c1-12)"
  fi
}

# ---------------------------------------------------------------- bodies
# $T/www/1k.bin: the upstream's 1 KiB answer on every path. $T/maint.xml: the shim's 158-byte
# maintenance answer, which nginx and HAProxy send too; MAINT_NGINX is it escaped for `return`.
bench_bodies() {
  head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 >"$T/www/1k.bin"
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n' >"$T/maint.xml"
  [[ $(wc -c <"$T/maint.xml") == 158 ]] || die "maintenance XML is not 158 bytes"
  MAINT_NGINX="$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$T/maint.xml" | awk '{printf "%s\\n", $0}')"
  chmod -R a+rX "$T/www"
}

# ---------------------------------------------------------------- nginx
# Both nginx configs up to the inside of their `http` block.
nginx_common() { # $1 = dir
  cat <<EOF
worker_processes auto;
worker_rlimit_nofile 20000;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $1/body;
  proxy_temp_path $1/proxy;
  keepalive_timeout 300s; keepalive_requests 100000000;
EOF
}
# The upstream: 1 KiB static body on every path, /big.bin for streaming (sendfile).
nginx_upstream_conf() { # $1 = dir
  nginx_common "$1"
  cat <<EOF
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  open_file_cache max=16 inactive=300s;
  server {
    listen 127.0.0.1:$P_UP backlog=4096;
    root $T/www;
    location = /big.bin { }
    # POSTs (bench/journal.sh's forms) get the same 1 KiB: error_page turns the static
    # module's 405 into the file, as a GET.
    location / { try_files /1k.bin =404; error_page 405 =200 /1k.bin; }
  }
}
EOF
}
# The competitor: proxy_pass to the upstream with keep-alive (and to the sink for uploads) on
# port $2, and `return 200 <maintenance XML>` on port $3. Needs bench_bodies first.
nginx_proxy_conf() { # $1 = dir, $2 = pass-through port, $3 = short-circuit port
  nginx_common "$1"
  cat <<EOF
  tcp_nodelay on;
  upstream up {
    server 127.0.0.1:$P_UP;
    keepalive 64; keepalive_requests 100000000; keepalive_timeout 300s;
  }
  upstream sink { server 127.0.0.1:$P_SINK; keepalive 8; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto http;
  server {
    listen 127.0.0.1:$2 backlog=4096;
    location / { proxy_pass http://up; }
    # Streaming reference (scenario 4): no buffering to temp files in either direction.
    location = /big.bin { proxy_pass http://up; proxy_buffering off; }
    location /upload/ {
      proxy_pass http://sink; proxy_request_buffering off; client_max_body_size 0;
    }
  }
  server {
    listen 127.0.0.1:$3 backlog=4096;
    location / {
      default_type "text/xml; charset=UTF-8";
      add_header Cache-Control no-store;
      return 200 "$MAINT_NGINX";
    }
  }
}
EOF
}
# nginx_proxy_conf plus the header work it leaves out of the shim's contract (calibrate.sh's
# and run.sh's target nginx-h): the loop check, X-Forwarded-Host, Via, and an X-Request-Id
# kept or generated, forwarded and echoed (nginx strips hop-by-hop fields and sets Host and
# X-Forwarded-For in both). The generated id is pid-connection-request, as cheap as the shim's
# counter; nginx's random $request_id would cost it far more.
nginx_headers_conf() { # $1 = dir, $2 = pass-through port, $3 = short-circuit port
  # shellcheck disable=SC2016 # nginx variables
  nginx_proxy_conf "$@" | sed \
    -e '/proxy_set_header X-Forwarded-Proto http;/a\
  map $http_via $via_out { "" "1.1 nginx-calibration"; default "$http_via, 1.1 nginx-calibration"; }\
  map $http_x_request_id $rid { "" "$pid-$connection-$connection_requests"; default $http_x_request_id; }\
  proxy_set_header X-Forwarded-Host $host;\
  proxy_set_header Via $via_out;\
  proxy_set_header X-Request-Id $rid;\
  add_header X-Request-Id $rid always;' \
    -e "/listen 127.0.0.1:$2 backlog=4096;/a\\
    if (\$http_via ~ \"nginx-calibration\") { return 508; }"
}
# The TLS competitor: nginx_headers_conf's pass-through (the shim's header work,
# X-Forwarded-Proto https) on a TLS listener with the shim's certificate, TLS 1.2 and 1.3
# (rustls' safe defaults, which the shim uses) and ALPN h2 and http/1.1, as the shim offers.
# Session cache and tickets stay nginx's defaults: bench/calibration's tls-handshakes client
# never resumes a session, so every handshake is a full one on both.
nginx_tls_conf() { # $1 = dir, $2 = TLS port, $3 = an unused plain port, $4 = cert, $5 = key
  nginx_headers_conf "$1" "$2" "$3" | sed \
    -e 's/proxy_set_header X-Forwarded-Proto http;/proxy_set_header X-Forwarded-Proto https;/' \
    -e "s|listen 127.0.0.1:$2 backlog=4096;|listen 127.0.0.1:$2 ssl http2 backlog=4096;\\
    ssl_certificate $4; ssl_certificate_key $5; ssl_protocols TLSv1.2 TLSv1.3;|"
}
# Writes $T/NAME/nginx.conf with CONF_FN and starts nginx on it in the foreground as NAME.
start_nginx() { # $1 = name, $2 = config function, rest = its arguments after the dir
  local name=$1 fn=$2; shift 2
  mkdir -p "$T/$name"
  "$fn" "$T/$name" "$@" >"$T/$name/nginx.conf"
  start "$name" nginx -p "$T/$name" -e "$T/$name/error.log" -c "$T/$name/nginx.conf" -g 'daemon off;'
}

# ---------------------------------------------------------------- Caddy
# Caddy (Debian's package) as a competitor, JSON config on stdout: reverse_proxy to the
# upstream with keep-alive (as many idle connections as nginx keeps) and to the sink for
# uploads, on $2 (Caddy streams request bodies and copies answers through a small buffer by
# default: nothing to switch off for scenario 4); a static_response with the maintenance XML and the
# same Content-Type and Cache-Control on $3. No admin endpoint, no autosave, no automatic
# HTTPS, HTTP/1.1 only, logs at ERROR. Needs bench_bodies first.
caddy_conf() { # $1 = dir, $2 = pass-through port, $3 = short-circuit port
  python3 - "$1" "$2" "$3" "$T/maint.xml" "$P_UP" "$P_SINK" <<'PY'
import json, sys
d, p_pass, p_sc, maint, p_up, p_sink = sys.argv[1:]
def proxy(port):
    return {"handler": "reverse_proxy", "upstreams": [{"dial": f"127.0.0.1:{port}"}],
            "transport": {"protocol": "http", "keep_alive": {
                "enabled": True, "max_idle_conns": 128, "max_idle_conns_per_host": 64,
                "idle_timeout": "300s"}}}
server = {"automatic_https": {"disable": True}, "protocols": ["h1"], "idle_timeout": "300s"}
print(json.dumps({
    "admin": {"disabled": True, "config": {"persist": False}},
    "logging": {"logs": {"default": {"level": "ERROR"}}},
    "storage": {"module": "file_system", "root": f"{d}/data"},
    "apps": {"http": {"servers": {
        "pass": {**server, "listen": [f"127.0.0.1:{p_pass}"], "routes": [
            {"match": [{"path": ["/upload/*"]}], "handle": [proxy(p_sink)]},
            {"handle": [proxy(p_up)]}]},
        "sc": {**server, "listen": [f"127.0.0.1:{p_sc}"], "routes": [
            {"handle": [{"handler": "static_response", "status_code": 200,
                         "headers": {"Content-Type": ["text/xml; charset=UTF-8"],
                                     "Cache-Control": ["no-store"]},
                         "body": open(maint).read()}]}]},
    }}},
}, indent=1))
PY
}
# Writes $T/NAME/caddy.json with caddy_conf and starts Caddy on it as NAME, with HOME and the
# XDG dirs in $T/NAME so it writes nothing outside the temp dir.
start_caddy() { # $1 = name, $2 = pass-through port, $3 = short-circuit port
  local dir="$T/$1"
  mkdir -p "$dir"
  caddy_conf "$dir" "$2" "$3" >"$dir/caddy.json"
  HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
    start "$1" caddy run --config "$dir/caddy.json"
}

# ---------------------------------------------------------------- form POST and TLS
# The A08 of the stand-in's tests (bench/journal.sh's), padded to exactly 300 bytes: what a
# merchant's server posts to the API. form_lua writes a wrk Lua script that sends it.
FORM='function_div=A08&trader_code=888888709&device_div=2&order_no=BENCH-000001&settle_price=1500&buyer_name_kanji=%E5%B1%B1%E7%94%B0&buyer_tel=0312345678&buyer_email=bench%40example.jp&pay_way=1&token=tokentokentoken1&reserve_1=x'
while [[ ${#FORM} -lt 300 ]]; do FORM+=x; done
form_lua() { # $1 = output file
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = "$FORM"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
}
# The TLS listener's name: the gateway's API host, which the shim's [tls] hosts lists and the
# test certificate covers. Clients connect to 127.0.0.1 and send it as SNI (the shim refuses
# a handshake without one).
TLS_HOST=api.kuronekoyamato.co.jp
# A self-signed ECDSA P-256 certificate for TLS_HOST (the key type the shim's own local CA
# issues) in $T/tls: cert.pem and key.pem, for the shim and nginx alike.
bench_cert() {
  mkdir -p "$T/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=$TLS_HOST" -addext "subjectAltName=DNS:$TLS_HOST" \
    -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" >"$T/tls/openssl.log" 2>&1 ||
    die "openssl req: $(cat "$T/tls/openssl.log")"
  chmod 644 "$T/tls/cert.pem" "$T/tls/key.pem"   # nginx's workers (www-data) read them too
}
# A wrk Lua script ($1) that connects to 127.0.0.1 whatever the URL's host, so an https URL
# naming TLS_HOST sends it as SNI and Host while the connections stay on loopback.
loopback_lua() { # $1 = output file
  cat >"$1" <<'LUA'
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
LUA
}

# ---------------------------------------------------------------- shim
# A window covering every instant of a run: the short-circuit config.
WINDOW_NOW='
[[windows]]
id = "bench-now"
start = "2000-01-01T00:00:00+09:00"
end = "2100-01-01T00:00:00+09:00"
services = ["bench.api"]'

# The shim's config: proxy on $1, admin on $1 + 10; `/upload/` goes to the sink (kind
# passthrough: an `api` route reads a form whole before forwarding it, so a 1 GiB upload there
# would be held in memory, which is what it is for, not streaming), everything else to the
# upstream (kind api, service bench.api). SHIM_WORKERS=N sets `[server] worker_threads`,
# which both the thread-per-core shim and the older multi-thread one read (TOKIO_WORKER_THREADS
# only sized the old one's runtime).
shim_config() { # $1 = port, $2 = extra TOML (e.g. $WINDOW_NOW), $3 = extra [server] keys
  cat <<EOF
[listen]
proxy = "127.0.0.1:$1"
admin = "127.0.0.1:$(($1 + 10))"
${SHIM_TLS:+tls = \"127.0.0.1:$SHIM_TLS\"}

[server]
watch_config = false
${SHIM_WORKERS:+worker_threads = $SHIM_WORKERS}
${3:-}

[log]
format = "text"

[upstreams.up]
url = "http://127.0.0.1:$P_UP"
response_timeout = "300s"

[upstreams.sink]
url = "http://127.0.0.1:$P_SINK"
response_timeout = "300s"

[[routes]]
id = "upload"
path_prefix = "/upload/"
kind = "passthrough"
service = "bench.upload"
upstream = "sink"

[[routes]]
id = "bench"
path_prefix = "/"
kind = "api"
service = "bench.api"
upstream = "up"
${2:-}
EOF
}
# The streaming config: the shim refuses bodies over server.max_request_body (64 MiB by default)
# with 413, so it is raised for the 1 GiB upload. Builds without the key stream without a limit.
shim_stream_config() { # $1 = binary, $2 = port, $3 = output file
  shim_config "$2" "" "max_request_body = $((4 * 1024 * 1024 * 1024))" >"$3"
  "$1" check --config "$3" >/dev/null 2>&1 || shim_config "$2" "" >"$3"
}

# ---------------------------------------------------------------- upload sink
# bench/sink.rs (standard library only) on P_SINK: reads the whole body, then answers with the
# byte count.
start_sink() {
  rustc -O --edition 2021 -o "$T/sink" "$BENCH_LIB/sink.rs"
  start sink "$T/sink" "127.0.0.1:$P_SINK"
}
