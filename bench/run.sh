#!/usr/bin/env bash
# Benchmarks for webcollect-shim against nginx and HAProxy (issue 7, "Benchmarks").
#
#   bench/run.sh            full run: ROUNDS=3 rounds of 10 s per scenario and target
#   QUICK=1 bench/run.sh    development run: 2 rounds of 2 s, 256 MiB streaming
#
# Knobs (environment): ROUNDS, DUR (seconds per run), RATE (scenario 3, req/s), CONNS
# (scenario 1/2 connections), IDLE_CONNS (scenario 5), STREAM_MIB and STREAM_ROUNDS (scenario 4),
# SCENARIOS (e.g. "1 2"), SHIM_WORKERS (tokio worker threads of the shim), KEEP=1 (keep the
# temp dir with configs and raw outputs),
# NO_INSTALL=1 (never call apt-get / cargo install), NO_BUILD=1 (use the existing binary).
#
# Everything runs on 127.0.0.1 with configs generated in a temp dir; every process started
# here is stopped on exit (trap EXIT), each load run is bounded in time. Nothing is pinned:
# load generators, proxies and the upstream share the machine's cores.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

if [[ "${QUICK:-0}" == 1 ]]; then
  ROUNDS="${ROUNDS:-2}"; DUR="${DUR:-2}"; STREAM_MIB="${STREAM_MIB:-256}"; HOLD="${HOLD:-4}"
else
  ROUNDS="${ROUNDS:-3}"; DUR="${DUR:-10}"; STREAM_MIB="${STREAM_MIB:-1024}"; HOLD="${HOLD:-10}"
fi
# A 1 GiB transfer takes about half a second here, so streaming gets more rounds.
STREAM_ROUNDS="${STREAM_ROUNDS:-$((ROUNDS < 5 ? (ROUNDS > 2 ? 5 : ROUNDS) : ROUNDS))}"
RATE="${RATE:-2000}"
CONNS="${CONNS:-64}"
IDLE_CONNS="${IDLE_CONNS:-5000}"
SCENARIOS="${SCENARIOS:-1 2 3 4 5}"
WARMUP="${WARMUP:-2}"
export RUST_LOG="${RUST_LOG:-warn}"   # per-request info logs cost throughput; see RESULTS.md

# Ports (loopback only).
P_UP=28081        # nginx upstream: 1 KiB static body on every path, /big.bin
P_NGX=28082       # nginx proxy_pass (upstream keepalive)
P_HAP=28083       # HAProxy pass-through
P_SHIM=28084      # shim, pass-through config
P_SHIM_SC=28085   # shim, window covering now (short-circuit)
P_NGX_SC=28086    # nginx return 200 <maintenance XML>
P_HAP_SC=28087    # HAProxy http-request return <maintenance XML>
P_SHIM_ST=28088   # shim for streaming (fresh process: its VmHWM is the streaming peak)
P_SINK=28089      # upload sink (reads the whole body, then answers)
P_SHIM_IDLE=28090 # shim for the idle-connections scenario (fresh process)
PATH_API=/api/creditToken

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need_install=()
for tool in nginx:nginx haproxy:haproxy wrk:wrk curl:curl python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need_install+=("${tool#*:}")
done
if ((${#need_install[@]})); then
  [[ "${NO_INSTALL:-0}" == 1 ]] && die "missing: ${need_install[*]}"
  log "apt-get install ${need_install[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # On a systemd machine the packages may start the system nginx/haproxy (port 80, idle); the
  # check below reports such daemons. Ours run from generated configs on other ports.
  apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
# Debian has neither oha nor wrk2; oha (crates.io) does fixed-rate runs with latency
# correction (no coordinated omission).
export PATH="$HOME/.cargo/bin:$PATH"
if [[ " $SCENARIOS " == *" 3 "* ]] && ! command -v oha >/dev/null 2>&1; then
  [[ "${NO_INSTALL:-0}" == 1 ]] && die "missing: oha (cargo install oha --locked)"
  log "cargo install oha --locked (a few minutes)"
  cargo install oha --locked --quiet
fi
# Other nginx/haproxy processes (a system service, someone else's test) compete for the CPU.
for svc in nginx haproxy; do
  if pgrep -x "$svc" >/dev/null 2>&1; then
    log "note: a '$svc' process was already running before this script (not ours; left alone)"
  fi
done

# ---------------------------------------------------------------- build
cd "$ROOT"
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  log "cargo build --release"
  cargo build --release --quiet
fi
SHIM="$ROOT/target/release/webcollect-shim"
[[ -x "$SHIM" ]] || die "no $SHIM"
# SHIM_WORKERS=N runs the shim with N tokio worker threads (TOKIO_WORKER_THREADS, for the shim
# only: oha is a tokio program too). Default: tokio's default, one per core.
SHIM_RUN=("$SHIM")
[[ -n "${SHIM_WORKERS:-}" ]] && SHIM_RUN=(env "TOKIO_WORKER_THREADS=$SHIM_WORKERS" "$SHIM")

T="$(mktemp -d /tmp/webcollect-bench.XXXXXX)"
chmod 755 "$T"   # nginx workers run as www-data and must read the bodies
RAW="$T/raw"; mkdir -p "$RAW"
RES="$T/results.tsv"; : >"$RES"
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$T/www/big.bin"
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in $P_UP $P_NGX $P_HAP $P_SHIM $P_SHIM_SC $P_NGX_SC $P_HAP_SC $P_SHIM_ST $P_SINK $P_SHIM_IDLE \
         $((P_SHIM + 10)) $((P_SHIM_SC + 10)) $((P_SHIM_ST + 10)) $((P_SHIM_IDLE + 10)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is busy"; fi
done

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
log "open files limit: $(ulimit -n); load: $LOAD_START"

# ---------------------------------------------------------------- bodies
mkdir -p "$T/www" "$T/up" "$T/ngx" "$T/hap"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 >"$T/www/1k.bin"
# The shim's maintenance answer is 158 bytes; nginx and HAProxy send the same bytes.
printf '<?xml version="1.0" encoding="UTF-8"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n' >"$T/maint.xml"
[[ $(wc -c <"$T/maint.xml") == 158 ]] || die "maintenance XML is not 158 bytes"
MAINT_NGINX="$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$T/maint.xml" | awk '{printf "%s\\n", $0}')"
if [[ " $SCENARIOS " == *" 4 "* ]]; then
  log "writing a ${STREAM_MIB} MiB file for streaming"
  head -c "$((STREAM_MIB * 1024 * 1024))" /dev/urandom >"$T/www/big.bin"
fi
chmod -R a+rX "$T/www"

# ---------------------------------------------------------------- configs
nginx_common() { # $1 = dir
  cat <<EOF
worker_processes auto;
worker_rlimit_nofile 20000;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
EOF
}
{
  nginx_common "$T/up"
  cat <<EOF
http {
  access_log off;
  client_body_temp_path $T/up/body;
  proxy_temp_path $T/up/proxy;
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 300s; keepalive_requests 100000000;
  open_file_cache max=16 inactive=300s;
  server {
    listen 127.0.0.1:$P_UP backlog=4096;
    root $T/www;
    location = /big.bin { }
    location / { try_files /1k.bin =404; }
  }
}
EOF
} >"$T/up/nginx.conf"
{
  nginx_common "$T/ngx"
  cat <<EOF
http {
  access_log off;
  client_body_temp_path $T/ngx/body;
  proxy_temp_path $T/ngx/proxy;
  keepalive_timeout 300s; keepalive_requests 100000000;
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
    listen 127.0.0.1:$P_NGX backlog=4096;
    location / { proxy_pass http://up; }
    # Streaming reference (scenario 4): no buffering to temp files in either direction.
    location = /big.bin { proxy_pass http://up; proxy_buffering off; }
    location /upload/ {
      proxy_pass http://sink; proxy_request_buffering off; client_max_body_size 0;
    }
  }
  server {
    listen 127.0.0.1:$P_NGX_SC backlog=4096;
    location / {
      default_type "text/xml; charset=UTF-8";
      add_header Cache-Control no-store;
      return 200 "$MAINT_NGINX";
    }
  }
}
EOF
} >"$T/ngx/nginx.conf"
cat >"$T/hap/haproxy.cfg" <<EOF
global
  maxconn 9000
defaults
  mode http
  maxconn 9000
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  option http-keep-alive
frontend fe_pass
  bind 127.0.0.1:$P_HAP
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  use_backend be_sink if { path_beg /upload/ }
  default_backend be_up
backend be_sink
  server sink 127.0.0.1:$P_SINK
backend be_up
  http-reuse safe
  server up 127.0.0.1:$P_UP
frontend fe_sc
  bind 127.0.0.1:$P_HAP_SC
  http-request return status 200 content-type "text/xml; charset=UTF-8" hdr Cache-Control no-store file $T/maint.xml
EOF
shim_config() { # $1 = port, $2 = extra TOML, $3 = extra [server] keys
  cat <<EOF
[listen]
proxy = "127.0.0.1:$1"
admin = "127.0.0.1:$(($1 + 10))"

[server]
watch_config = false
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
kind = "api"
service = "bench.upload"
upstream = "sink"

[[routes]]
id = "bench"
path_prefix = "/"
kind = "api"
service = "bench.api"
upstream = "up"
$2
EOF
}
WINDOW_NOW='
[[windows]]
id = "bench-now"
start = "2000-01-01T00:00:00+09:00"
end = "2100-01-01T00:00:00+09:00"
services = ["bench.api"]'
shim_config $P_SHIM "" >"$T/shim-pass.toml"
shim_config $P_SHIM_SC "$WINDOW_NOW" >"$T/shim-sc.toml"
# The shim refuses request bodies over server.max_request_body (64 MiB by default) with 413;
# raise it for the streaming upload. Older builds without the key stream without a limit.
shim_config $P_SHIM_ST "" "max_request_body = $((4 * 1024 * 1024 * 1024))" >"$T/shim-stream.toml"
"$SHIM" check --config "$T/shim-stream.toml" >/dev/null 2>&1 ||
  shim_config $P_SHIM_ST "" >"$T/shim-stream.toml"
shim_config $P_SHIM_IDLE "" >"$T/shim-idle.toml"
for c in pass sc stream idle; do
  "$SHIM" check --config "$T/shim-$c.toml" >/dev/null || die "shim config $c invalid"
done

# ---------------------------------------------------------------- start
wait_port() { # $1 port
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listens on $1"
}
start() { # $1 = name, rest = command; records the PID
  local name=$1; shift
  "$@" >"$T/$name.out" 2>&1 &
  PIDS+=("$!")
  eval "PID_${name//-/_}=$!"
}
start nginx-up nginx -p "$T/up" -e "$T/up/error.log" -c "$T/up/nginx.conf" -g 'daemon off;'
start nginx-proxy nginx -p "$T/ngx" -e "$T/ngx/error.log" -c "$T/ngx/nginx.conf" -g 'daemon off;'
start haproxy haproxy -db -f "$T/hap/haproxy.cfg"
rustc -O --edition 2021 -o "$T/sink" "$HERE/sink.rs"
start sink "$T/sink" "127.0.0.1:$P_SINK"
start shim "${SHIM_RUN[@]}" run --config "$T/shim-pass.toml"
start shim-sc "${SHIM_RUN[@]}" run --config "$T/shim-sc.toml"
for p in $P_UP $P_NGX $P_HAP $P_NGX_SC $P_HAP_SC $P_SINK $P_SHIM $P_SHIM_SC; do wait_port "$p"; done
log "started: nginx upstream, nginx proxy, haproxy, sink, shim (pass), shim (short-circuit)"

# ---------------------------------------------------------------- sanity checks
check_body() { # $1 url, $2 expected status, $3 expected size
  local got
  got="$(curl -s -o "$T/check.body" -w '%{http_code} %{size_download} %{content_type}' --max-time 5 "$1")"
  [[ "${got%% *}" == "$2" ]] || die "$1: got '$got', expected status $2"
  local size; size="$(echo "$got" | cut -d' ' -f2)"
  [[ "$size" == "$3" ]] || die "$1: body is $size bytes, expected $3"
  echo "$got"
}
for url in "http://127.0.0.1:$P_UP$PATH_API" "http://127.0.0.1:$P_NGX$PATH_API" \
           "http://127.0.0.1:$P_HAP$PATH_API" "http://127.0.0.1:$P_SHIM$PATH_API"; do
  check_body "$url" 200 1024 >/dev/null
  cmp -s "$T/check.body" "$T/www/1k.bin" || die "$url: body differs from the upstream's"
done
for url in "http://127.0.0.1:$P_SHIM_SC$PATH_API" "http://127.0.0.1:$P_NGX_SC$PATH_API" \
           "http://127.0.0.1:$P_HAP_SC$PATH_API"; do
  ct="$(check_body "$url" 200 158 | cut -d' ' -f3-)"
  [[ "${ct,,}" == "text/xml; charset=utf-8" ]] || die "$url: content-type '$ct'"
done
cmp -s "$T/check.body" "$T/maint.xml" || die "HAProxy short-circuit body differs"
log "sanity checks passed (1 KiB pass-through bodies identical; 158-byte XML everywhere)"

# ---------------------------------------------------------------- helpers
SUM="python3 $HERE/summarize.py"
record() { printf '%s\n' "$*" | tr ' ' '\t' >>"$RES"; }

rss_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
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
# Columns recorded per run: the load generator's numbers (see summarize.py), then the
# server's CPU microseconds per request.
cpu_us_per_req() { # $1 ticks, $2 requests
  awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN{ if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "nan" }'
}
run_wrk() { # $1 scenario, $2 target, $3 round, $4 url, $5 server pid
  local out="$RAW/s$1-$2-r$3.wrk" c0 c1
  c0=$(group_ticks "$5")
  timeout $((DUR + 30)) wrk -t2 -c"$CONNS" -d"${DUR}s" --timeout 10s --latency "$4" >"$out" 2>&1 ||
    die "wrk failed: $(tail -3 "$out")"
  c1=$(group_ticks "$5")
  local vals cpu; vals="$($SUM wrk "$out")"
  cpu="$(cpu_us_per_req $((c1 - c0)) "$(echo "$vals" | cut -d' ' -f5)")"
  record "s$1" "$2" "$3" $vals "$cpu"
  log "  s$1 $2 round $3: req/s p50 p99 errors requests = $vals; server CPU $cpu us/req"
}
run_oha() { # $1 target, $2 round, $3 url, $4 server pid
  local out="$RAW/s3-$1-r$2.json" c0 c1
  c0=$(group_ticks "$4")
  timeout $((DUR + 30)) oha -z "${DUR}s" -q "$RATE" -c 32 --latency-correction -w --no-tui \
    --output-format json "$3" >"$out" 2>"$out.err" || die "oha failed: $(tail -3 "$out.err")"
  c1=$(group_ticks "$4")
  local vals cpu; vals="$($SUM oha "$out")"
  cpu="$(cpu_us_per_req $((c1 - c0)) "$(echo "$vals" | cut -d' ' -f6)")"
  record s3 "$1" "$2" $vals "$cpu"
  log "  s3 $1 round $2: req/s p50 p99 p99.9 errors requests = $vals; server CPU $cpu us/req"
}

# ---------------------------------------------------------------- scenario 1
declare -A PASS=([shim]=$P_SHIM [nginx]=$P_NGX [haproxy]=$P_HAP [direct]=$P_UP)
declare -A SC=([shim]=$P_SHIM_SC [nginx]=$P_NGX_SC [haproxy]=$P_HAP_SC)
declare -A PASS_PID=([shim]=$PID_shim [nginx]=$PID_nginx_proxy [haproxy]=$PID_haproxy [direct]=$PID_nginx_up)
declare -A SC_PID=([shim]=$PID_shim_sc [nginx]=$PID_nginx_proxy [haproxy]=$PID_haproxy)
if [[ " $SCENARIOS " == *" 1 "* ]]; then
  log "scenario 1: pass-through, HTTP/1.1 keep-alive, $CONNS connections, ${DUR}s x $ROUNDS rounds"
  for t in shim nginx haproxy direct; do
    timeout $((WARMUP + 20)) wrk -t2 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:${PASS[$t]}$PATH_API" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in shim nginx haproxy direct; do
      run_wrk 1 "$t" "$r" "http://127.0.0.1:${PASS[$t]}$PATH_API" "${PASS_PID[$t]}"
    done
  done
fi

# ---------------------------------------------------------------- scenario 2
if [[ " $SCENARIOS " == *" 2 "* ]]; then
  log "scenario 2: short-circuit (158-byte maintenance XML), $CONNS connections, ${DUR}s x $ROUNDS rounds"
  for t in shim nginx haproxy; do
    timeout $((WARMUP + 20)) wrk -t2 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:${SC[$t]}$PATH_API" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in shim nginx haproxy; do
      run_wrk 2 "$t" "$r" "http://127.0.0.1:${SC[$t]}$PATH_API" "${SC_PID[$t]}"
    done
  done
fi

# ---------------------------------------------------------------- scenario 3
if [[ " $SCENARIOS " == *" 3 "* ]]; then
  log "scenario 3: fixed rate $RATE req/s (oha, latency-corrected), ${DUR}s x $ROUNDS rounds"
  for t in direct shim nginx haproxy; do
    timeout $((WARMUP + 20)) oha -z "${WARMUP}s" -q "$RATE" -c 32 --no-tui --output-format json \
      "http://127.0.0.1:${PASS[$t]}$PATH_API" >/dev/null 2>&1
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in direct shim nginx haproxy; do
      run_oha "$t" "$r" "http://127.0.0.1:${PASS[$t]}$PATH_API" "${PASS_PID[$t]}"
    done
  done
fi

# Scenarios 4 and 5 use fresh shim processes; stop the others so they do not compete.
kill -TERM "$PID_shim" "$PID_shim_sc" 2>/dev/null || true

# ---------------------------------------------------------------- scenario 4
if [[ " $SCENARIOS " == *" 4 "* ]]; then
  log "scenario 4: streaming ${STREAM_MIB} MiB download and upload, $STREAM_ROUNDS rounds"
  start shim-stream "${SHIM_RUN[@]}" run --config "$T/shim-stream.toml"
  wait_port $P_SHIM_ST
  bytes=$((STREAM_MIB * 1024 * 1024))
  # Warm the page cache and the connections.
  curl -s -o /dev/null --max-time 120 "http://127.0.0.1:$P_UP/big.bin"
  declare -A DL=([direct]=$P_UP [shim]=$P_SHIM_ST [nginx]=$P_NGX [haproxy]=$P_HAP)
  declare -A UL=([direct]=$P_SINK [shim]=$P_SHIM_ST [nginx]=$P_NGX [haproxy]=$P_HAP)
  mib_s() { awk -v s="$1" 'BEGIN{printf "%.1f", s/1048576}'; }
  # nginx and HAProxy (streaming, unbuffered) are a reference for what a proxy costs here.
  for r in $(seq 1 "$STREAM_ROUNDS"); do
    for t in direct shim nginx haproxy; do
      read -r code size speed secs < <(curl -s -o /dev/null --max-time 300 \
        -w '%{http_code} %{size_download} %{speed_download} %{time_total}\n' "http://127.0.0.1:${DL[$t]}/big.bin")
      [[ "$code" == 200 && "$size" == "$bytes" ]] || die "download via $t: status $code, $size bytes"
      record s4 "download-$t" "$r" "$(mib_s "$speed")" "$secs"
      log "  s4 download $t round $r: $(mib_s "$speed") MiB/s (${secs}s)"
    done
    for t in direct shim nginx haproxy; do
      read -r code size speed secs < <(curl -s -o "$T/upload.out" --max-time 300 -H 'Expect:' \
        -T "$T/www/big.bin" -w '%{http_code} %{size_upload} %{speed_upload} %{time_total}\n' \
        "http://127.0.0.1:${UL[$t]}/upload/big.bin")
      [[ "$code" == 200 && "$(tr -d '\n' <"$T/upload.out")" == "$bytes" ]] ||
        die "upload via $t: status $code, sink saw $(cat "$T/upload.out")"
      record s4 "upload-$t" "$r" "$(mib_s "$speed")" "$secs"
      log "  s4 upload $t round $r: $(mib_s "$speed") MiB/s (${secs}s)"
    done
  done
  record s4-rss shim 1 "$(rss_kib "$PID_shim_stream" VmHWM)" "$(rss_kib "$PID_shim_stream" VmRSS)"
  log "  s4 shim peak RSS (VmHWM): $(rss_kib "$PID_shim_stream" VmHWM) KiB"
  kill -TERM "$PID_shim_stream" 2>/dev/null || true
  rm -f "$T/www/big.bin"
fi

# ---------------------------------------------------------------- scenario 5
if [[ " $SCENARIOS " == *" 5 "* ]]; then
  log "scenario 5: $IDLE_CONNS idle keep-alive connections held ${HOLD}s"
  start shim-idle "${SHIM_RUN[@]}" run --config "$T/shim-idle.toml"
  wait_port $P_SHIM_IDLE
  sleep 1
  idle_start=$(rss_kib "$PID_shim_idle" VmRSS)
  curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$P_SHIM_IDLE$PATH_API"
  sleep 0.5
  idle_one=$(rss_kib "$PID_shim_idle" VmRSS)
  log "  idle RSS at start: $idle_start KiB; after one request: $idle_one KiB"
  python3 "$HERE/hold_conns.py" 127.0.0.1 $P_SHIM_IDLE "$IDLE_CONNS" "$PATH_API" "$((HOLD + 4))" \
    >"$RAW/s5-hold.out" 2>&1 &
  HOLDER=$!; PIDS+=("$HOLDER")
  for _ in $(seq 1 600); do grep -qs "^ready" "$RAW/s5-hold.out" && break; sleep 0.1; done
  grep -q '^ready' "$RAW/s5-hold.out" || die "holder not ready: $(cat "$RAW/s5-hold.out")"
  sleep 2
  hz=$(getconf CLK_TCK)
  c0=$(cpu_ticks "$PID_shim_idle"); t0=$(date +%s.%N)
  sleep "$HOLD"
  c1=$(cpu_ticks "$PID_shim_idle"); t1=$(date +%s.%N)
  held_rss=$(rss_kib "$PID_shim_idle" VmRSS); held_hwm=$(rss_kib "$PID_shim_idle" VmHWM)
  fds=$(ls "/proc/$PID_shim_idle/fd" | wc -l)
  cpu_pct=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)/hz/(e-s)*100}')
  wait "$HOLDER" || true
  ready_line=$(grep '^ready' "$RAW/s5-hold.out"); done_line=$(grep '^done' "$RAW/s5-hold.out" || echo "done alive=?")
  record s5 shim 1 "$idle_start" "$idle_one" "$held_rss" "$held_hwm" "$cpu_pct" "$fds" \
    "$(echo "$ready_line" | awk '{print $2}')" "$(echo "$done_line" | sed 's/.*alive=\([0-9?]*\).*/\1/')"
  log "  held: RSS $held_rss KiB (peak $held_hwm), CPU ${cpu_pct}% of one core, $fds fds; $ready_line; $done_line"
  kill -TERM "$PID_shim_idle" 2>/dev/null || true
  # Reference: what nginx and HAProxy (already running, warm) add for the same connections.
  group_rss() { local total=0 p; for p in "$1" $(pgrep -P "$1" || true); do total=$((total + $(rss_kib "$p" VmRSS))); done; echo "$total"; }
  for t in nginx haproxy; do
    pid=${PASS_PID[$t]}; port=${PASS[$t]}
    before=$(group_rss "$pid")
    python3 "$HERE/hold_conns.py" 127.0.0.1 "$port" "$IDLE_CONNS" "$PATH_API" 6 >"$RAW/s5-hold-$t.out" 2>&1 &
    HOLDER=$!; PIDS+=("$HOLDER")
    for _ in $(seq 1 600); do grep -qs "^ready" "$RAW/s5-hold-$t.out" && break; sleep 0.1; done
    sleep 2
    c0=$(group_ticks "$pid"); sleep 3; c1=$(group_ticks "$pid")
    held=$(group_rss "$pid")
    wait "$HOLDER" || true
    record s5-ref "$t" 1 "$before" "$held" "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)/hz/3*100}')" \
      "$(grep '^ready' "$RAW/s5-hold-$t.out" | awk '{print $2}')"
    log "  reference $t: RSS (master + workers) $before KiB before, $held KiB holding; $(grep '^ready' "$RAW/s5-hold-$t.out")"
  done
fi

# ---------------------------------------------------------------- report
for f in "$T"/shim*.out; do
  if grep -qiE 'error|panic' "$f"; then log "note: $(basename "$f") logged errors:"; grep -iE 'error|panic' "$f" | head -5 >&2; fi
done
echo
echo "## webcollect-shim benchmarks"
echo
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r); load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "shim: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (modified)'), $("$SHIM" --version 2>/dev/null)"
echo "ROUNDS=$ROUNDS DUR=${DUR}s CONNS=$CONNS RATE=$RATE STREAM_MIB=$STREAM_MIB STREAM_ROUNDS=$STREAM_ROUNDS IDLE_CONNS=$IDLE_CONNS RUST_LOG=$RUST_LOG SHIM_WORKERS=${SHIM_WORKERS:-default}; medians over rounds"
echo
$SUM table "$RES"
