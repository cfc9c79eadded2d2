#!/usr/bin/env bash
# Benchmarks for webcollect-shim against nginx, HAProxy and Caddy (issue 7, "Benchmarks";
# issue 28's scenarios), and against the shim's previous build (issue 10, before/after in one
# run). One run prints one overview table with every scenario, then each scenario's details.
#
#   bench/run.sh            full run: ROUNDS=3 rounds of 10 s per scenario and target, about
#                           20 minutes on 2 cores (plus the shim's build)
#   QUICK=1 bench/run.sh    development run: 2 rounds of 2 s, 256 MiB streaming, 4 s idle hold
#   BEFORE=/path/to/old/webcollect-shim bench/run.sh
#                           adds the target `before` (the previous commit's build) to every
#                           scenario, interleaved with the others; the current build is `shim`
#
# Scenarios (SCENARIOS="1 2 ...", default all), targets in the order each round runs them:
#   1  pass-through GET, HTTP/1.1 keep-alive, wrk -t2 -cCONNS: shim, nginx (proxy_pass),
#      nginx-h (the same plus the shim's header work, calibrate.sh's), HAProxy, Caddy, direct
#   2  short-circuit GET: the 158-byte maintenance XML: shim (in a window), nginx `return`,
#      HAProxy `http-request return`, Caddy `static_response`
#   3  fixed rate RATE req/s (oha, latency-corrected), GET pass-through: direct, shim, nginx,
#      HAProxy, Caddy; latency added over direct
#   4  streaming STREAM_MIB MiB download and upload, one connection: direct, shim, nginx,
#      HAProxy, Caddy (all unbuffered)
#   5  IDLE_CONNS idle keep-alive connections: the shim (fresh process), nginx, HAProxy and
#      Caddy as references
#   6  pass-through form POST: the 300-byte A08 form (lib.sh's FORM, application/
#      x-www-form-urlencoded) to the API path, the targets of 1
#   7  short-circuit form POST: the targets of 2 (the shim drains the body, then answers)
#   8  TLS handshakes: a new TLS 1.3 connection per request (bench/tlsload's tls-handshakes,
#      TLS_CONNS clients, never resuming), server CPU per handshake: shim, nginx
#   9  TLS HTTP/1.1 keep-alive: wrk -t2 -cCONNS over https: shim, nginx
#   10 TLS h2 keep-alive: h2load -t1 -cH2_CONNS -mH2_STREAMS: shim, nginx
# TLS (8-10): the shim's [listen] tls and nginx with the same self-signed ECDSA P-256
# certificate for api.kuronekoyamato.co.jp, TLS 1.2 and 1.3, ALPN h2 and http/1.1, both
# passing through to the plain upstream with the shim's header work (nginx-h's config).
#
# Knobs (environment): ROUNDS, DUR (seconds per run), RATE (scenario 3, req/s), CONNS
# (scenarios 1, 2, 6, 7, 9 connections), IDLE_CONNS (scenario 5), STREAM_MIB and STREAM_ROUNDS
# (scenario 4), TLS_CONNS (scenario 8, 16), H2_CONNS and H2_STREAMS (scenario 10, 8 and 8),
# SCENARIOS (e.g. "1 2" or "6 7 8 9 10"), SHIM_WORKERS (`[server] worker_threads` of every
# shim), KEEP=1 (keep the temp dir with configs and raw outputs), NO_INSTALL=1 (never call
# apt-get / cargo install), NO_BUILD=1 (use the existing target/profiling binary), SHIM=path
# (benchmark that binary; no build), BEFORE=path.
#
# Everything runs on 127.0.0.1 with configs generated in a temp dir; every process started
# here is stopped on exit (trap EXIT), each load run is bounded in time. Nothing is pinned:
# load generators, proxies and the upstream share the machine's cores.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

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
TLS_CONNS="${TLS_CONNS:-16}"
H2_CONNS="${H2_CONNS:-8}"
H2_STREAMS="${H2_STREAMS:-8}"
SCENARIOS="${SCENARIOS:-1 2 3 4 5 6 7 8 9 10}"
WARMUP="${WARMUP:-2}"
export RUST_LOG="${RUST_LOG:-warn}"   # per-request info logs cost throughput; see RESULTS.md
has_scenario() { [[ " $SCENARIOS " == *" $1 "* ]]; }
has_tls() { has_scenario 8 || has_scenario 9 || has_scenario 10; }

# Ports (loopback only). Every shim's admin listener is on its proxy port + 10.
P_UP=28081        # nginx upstream: 1 KiB static body on every path, /big.bin
P_NGX=28082       # nginx proxy_pass (upstream keepalive)
P_HAP=28083       # HAProxy pass-through
P_NGX_SC=28086    # nginx return 200 <maintenance XML>
P_HAP_SC=28087    # HAProxy http-request return <maintenance XML>
P_SINK=28089      # upload sink (reads the whole body, then answers)
P_NGX_H=28091     # nginx-h: proxy_pass plus the shim's header work (its unused return: 28191)
P_CADDY=28092     # Caddy reverse_proxy
P_CADDY_SC=28093  # Caddy static_response <maintenance XML>
P_NGX_TLS=28099   # nginx over TLS, nginx-h's pass-through (its unused plain port: 28199)
# Per shim binary: pass-through config; window covering now (short-circuit); streaming (fresh
# process: its VmHWM is the streaming peak); idle connections (fresh process).
declare -A P_PASS_OF=([shim]=28084 [before]=28064)
declare -A P_SC_OF=([shim]=28085 [before]=28065)
declare -A P_ST_OF=([shim]=28088 [before]=28068)
declare -A P_IDLE_OF=([shim]=28090 [before]=28069)
# The TLS process per shim binary: [listen] tls on P_TLS_OF, its plain proxy on P_TLSP_OF.
declare -A P_TLS_OF=([shim]=28097 [before]=28067)
declare -A P_TLSP_OF=([shim]=28096 [before]=28066)

# ---------------------------------------------------------------- tools
need_install=()
tools=(nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk curl:curl python3:python3 openssl:openssl)
has_scenario 10 && tools+=(h2load:nghttp2-client)
for tool in "${tools[@]}"; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need_install+=("${tool#*:}")
done
if ((${#need_install[@]})); then
  [[ "${NO_INSTALL:-0}" == 1 ]] && die "missing: ${need_install[*]}"
  log "apt-get install ${need_install[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # On a systemd machine the packages may start the system nginx/haproxy/caddy (port 80, idle);
  # the check below reports such daemons. Ours run from generated configs on other ports.
  apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
# Debian has neither oha nor wrk2; oha (crates.io) does fixed-rate runs with latency
# correction (no coordinated omission).
export PATH="$HOME/.cargo/bin:$PATH"
if has_scenario 3 && ! command -v oha >/dev/null 2>&1; then
  [[ "${NO_INSTALL:-0}" == 1 ]] && die "missing: oha (cargo install oha --locked)"
  log "cargo install oha --locked (a few minutes)"
  cargo install oha --locked --quiet
fi
# Other nginx/haproxy processes (a system service, someone else's test) compete for the CPU.
for svc in nginx haproxy caddy; do
  if pgrep -x "$svc" >/dev/null 2>&1; then
    log "note: a '$svc' process was already running before this script (not ours; left alone)"
  fi
done

# ---------------------------------------------------------------- binaries
bench_tmpdir webcollect-bench
RAW="$T/raw"; mkdir -p "$RAW"
RES="$T/results.tsv"; : >"$RES"
bench_binaries
SHIMS=(shim)
declare -A BIN=([shim]=$SHIM_BIN)
if [[ -n "$BEFORE_BIN" ]]; then SHIMS+=(before); BIN[before]=$BEFORE_BIN; fi
if has_scenario 8; then
  # bench/tlsload: its own small crate (rustls and tokio only), built in a minute the first time.
  log "cargo build --release (bench/tlsload)"
  (cd "$HERE/tlsload" && cargo build --release --locked --quiet)
  cp "$HERE/tlsload/target/release/tls-handshakes" "$T/bin/tls-handshakes"
fi

busy=($P_UP $P_NGX $P_HAP $P_NGX_SC $P_HAP_SC $P_SINK)
busy+=("$P_NGX_H" $((P_NGX_H + 100)) "$P_CADDY" "$P_CADDY_SC")
has_tls && busy+=("$P_NGX_TLS" $((P_NGX_TLS + 100)))
for s in "${SHIMS[@]}"; do
  for p in ${P_PASS_OF[$s]} ${P_SC_OF[$s]} ${P_ST_OF[$s]} ${P_IDLE_OF[$s]}; do busy+=("$p" $((p + 10))); done
  has_tls && busy+=("${P_TLS_OF[$s]}" "${P_TLSP_OF[$s]}" $((P_TLSP_OF[$s] + 10)))
done
ports_free "${busy[@]}"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
log "open files limit: $(ulimit -n); load: $LOAD_START; targets: ${SHIMS[*]} nginx nginx-h haproxy caddy direct"

# ---------------------------------------------------------------- bodies and configs
bench_bodies
form_lua "$T/post.lua"
loopback_lua "$T/loopback.lua"
if has_scenario 4; then
  log "writing a ${STREAM_MIB} MiB file for streaming"
  head -c "$((STREAM_MIB * 1024 * 1024))" /dev/urandom >"$T/www/big.bin"
  chmod a+r "$T/www/big.bin"
fi
mkdir -p "$T/hap"
cat >"$T/hap/haproxy.cfg" <<CFG
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
CFG
for s in "${SHIMS[@]}"; do
  shim_config "${P_PASS_OF[$s]}" "" >"$T/$s-pass.toml"
  shim_config "${P_SC_OF[$s]}" "$WINDOW_NOW" >"$T/$s-sc.toml"
  shim_stream_config "${BIN[$s]}" "${P_ST_OF[$s]}" "$T/$s-stream.toml"
  shim_config "${P_IDLE_OF[$s]}" "" >"$T/$s-idle.toml"
  for c in pass sc stream idle; do
    "${BIN[$s]}" check --config "$T/$s-$c.toml" >/dev/null || die "$s: shim config $c invalid"
  done
done
# TLS: one more process per shim binary, the certificate from lib.sh's bench_cert. A build
# without the TLS listener (an old BEFORE) is left out of scenarios 8-10.
TLS_SHIMS=()
if has_tls; then
  bench_cert
  for s in "${SHIMS[@]}"; do
    SHIM_TLS=${P_TLS_OF[$s]} shim_config "${P_TLSP_OF[$s]}" "
[tls]
cert_file = \"$T/tls/cert.pem\"
key_file = \"$T/tls/key.pem\"
hosts = [\"$TLS_HOST\"]" >"$T/$s-tls.toml"
    if "${BIN[$s]}" check --config "$T/$s-tls.toml" >"$T/$s-tls.check" 2>&1; then
      TLS_SHIMS+=("$s")
    else
      [[ "$s" == shim ]] && die "shim: TLS config invalid: $(tail -3 "$T/$s-tls.check")"
      log "note: $s does not take the TLS config; left out of scenarios 8-10"
    fi
  done
fi

# ---------------------------------------------------------------- start
start_nginx nginx-up nginx_upstream_conf
start_nginx nginx-proxy nginx_proxy_conf $P_NGX $P_NGX_SC
start_nginx nginx-h nginx_headers_conf $P_NGX_H $((P_NGX_H + 100))
start haproxy haproxy -db -f "$T/hap/haproxy.cfg"
start_caddy caddy $P_CADDY $P_CADDY_SC
start_sink
for s in "${SHIMS[@]}"; do
  start "$s" "${BIN[$s]}" run --config "$T/$s-pass.toml"
  start "$s-sc" "${BIN[$s]}" run --config "$T/$s-sc.toml"
done
if has_tls; then
  start_nginx nginx-tls nginx_tls_conf $P_NGX_TLS $((P_NGX_TLS + 100)) "$T/tls/cert.pem" "$T/tls/key.pem"
  for s in "${TLS_SHIMS[@]}"; do start "$s-tls" "${BIN[$s]}" run --config "$T/$s-tls.toml"; done
fi
for p in $P_UP $P_NGX $P_HAP $P_NGX_SC $P_HAP_SC $P_SINK $P_NGX_H $P_CADDY $P_CADDY_SC; do wait_port "$p"; done
for s in "${SHIMS[@]}"; do wait_port "${P_PASS_OF[$s]}"; wait_port "${P_SC_OF[$s]}"; done
if has_tls; then
  wait_port $P_NGX_TLS
  for s in "${TLS_SHIMS[@]}"; do wait_port "${P_TLS_OF[$s]}"; done
fi
log "started: nginx upstream, nginx proxy, nginx-h, haproxy, caddy, sink; pass-through and short-circuit of: ${SHIMS[*]}${TLS_SHIMS[*]:+; TLS: nginx ${TLS_SHIMS[*]}}"

# ---------------------------------------------------------------- sanity checks
check_body() { # $1 url, $2 expected status, $3 expected size, rest = more curl options
  local got url=$1 status=$2 want=$3; shift 3
  got="$(curl -s -o "$T/check.body" -w '%{http_code} %{size_download} %{content_type}' --max-time 5 "$@" "$url")"
  [[ "${got%% *}" == "$status" ]] || die "$url $*: got '$got', expected status $status"
  local size; size="$(echo "$got" | cut -d' ' -f2)"
  [[ "$size" == "$want" ]] || die "$url $*: body is $size bytes, expected $want"
  echo "$got"
}
# The form POST, as wrk's Lua script sends it.
POST_ARGS=(-H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$FORM")
pass_urls=("http://127.0.0.1:$P_UP$PATH_API" "http://127.0.0.1:$P_NGX$PATH_API" "http://127.0.0.1:$P_HAP$PATH_API"
  "http://127.0.0.1:$P_NGX_H$PATH_API" "http://127.0.0.1:$P_CADDY$PATH_API")
sc_urls=("http://127.0.0.1:$P_NGX_SC$PATH_API" "http://127.0.0.1:$P_HAP_SC$PATH_API" "http://127.0.0.1:$P_CADDY_SC$PATH_API")
for s in "${SHIMS[@]}"; do
  pass_urls+=("http://127.0.0.1:${P_PASS_OF[$s]}$PATH_API")
  sc_urls+=("http://127.0.0.1:${P_SC_OF[$s]}$PATH_API")
done
for url in "${pass_urls[@]}"; do
  for how in GET POST; do
    args=(); [[ $how == GET ]] || args=("${POST_ARGS[@]}")
    check_body "$url" 200 1024 "${args[@]}" >/dev/null
    cmp -s "$T/check.body" "$T/www/1k.bin" || die "$url ($how): body differs from the upstream's"
  done
done
for url in "${sc_urls[@]}"; do
  for how in GET POST; do
    args=(); [[ $how == GET ]] || args=("${POST_ARGS[@]}")
    ct="$(check_body "$url" 200 158 "${args[@]}" | cut -d' ' -f3-)"
    [[ "${ct,,}" == "text/xml; charset=utf-8" ]] || die "$url ($how): content-type '$ct'"
    # The shims' returnDate is the current time; everything else is the same bytes.
    sed 's|<returnDate>[0-9]\{14\}</returnDate>|<returnDate>20200420023000</returnDate>|' "$T/check.body" |
      cmp -s - "$T/maint.xml" || die "$url ($how): body differs from the maintenance XML"
  done
done
# TLS: both protocols by ALPN, SNI and Host the gateway's name, on loopback.
tls_ports=()
if has_tls; then
  tls_ports=("$P_NGX_TLS")
  for s in "${TLS_SHIMS[@]}"; do tls_ports+=("${P_TLS_OF[$s]}"); done
fi
for p in "${tls_ports[@]}"; do
  for v in --http1.1 --http2; do
    check_body "https://$TLS_HOST:$p$PATH_API" 200 1024 -k "$v" --resolve "$TLS_HOST:$p:127.0.0.1" >/dev/null
    cmp -s "$T/check.body" "$T/www/1k.bin" || die "TLS $p $v: body differs from the upstream's"
  done
done
log "sanity checks passed (1 KiB pass-through bodies identical, GET and form POST${tls_ports[*]:+, TLS h1 and h2}; the 158-byte XML everywhere, returnDate aside)"

# ---------------------------------------------------------------- helpers
SUM="python3 $HERE/summarize.py"
record() { printf '%s\n' "$*" | tr ' ' '\t' >>"$RES"; }

rss_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
group_rss() { # $1 = pid; KiB, the process and its children
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do total=$((total + $(rss_kib "$p" VmRSS))); done
  echo "$total"
}
# Columns recorded per run: the load generator's numbers (see summarize.py), then the
# server's CPU microseconds per request.
cpu_us_per_req() { # $1 ticks, $2 requests
  awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN{ if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "nan" }'
}
# $6: a wrk Lua script (the form POST, the loopback resolver for https URLs), or none.
run_wrk() { # $1 scenario, $2 target, $3 round, $4 url, $5 server pid, $6 script
  local out="$RAW/s$1-$2-r$3.wrk" c0 c1
  c0=$(group_ticks "$5")
  timeout $((DUR + 30)) wrk -t2 -c"$CONNS" -d"${DUR}s" --timeout 10s --latency ${6:+-s "$6"} "$4" >"$out" 2>&1 ||
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
# Scenario 10: h2 keep-alive over TLS, H2_CONNS connections with H2_STREAMS streams each.
run_h2load() { # $1 target, $2 round, $3 port, $4 server pid
  local out="$RAW/s10-$1-r$2.h2load" c0 c1
  c0=$(group_ticks "$4")
  timeout $((DUR + 30)) h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$DUR" \
    --connect-to="127.0.0.1:$3" "https://$TLS_HOST:$3$PATH_API" >"$out" 2>&1 ||
    die "h2load failed: $(tail -3 "$out")"
  c1=$(group_ticks "$4")
  local vals cpu; vals="$($SUM h2load "$out")"
  cpu="$(cpu_us_per_req $((c1 - c0)) "$(echo "$vals" | cut -d' ' -f5)")"
  record s10 "$1" "$2" $vals "$cpu"
  log "  s10 $1 round $2: req/s p50 p99 errors requests = $vals; server CPU $cpu us/req"
}
# Scenario 8: a full TLS handshake per request, TLS_CONNS clients; CPU per handshake.
run_handshakes() { # $1 target, $2 round, $3 port, $4 server pid
  local out="$RAW/s8-$1-r$2.txt" c0 c1 ok failed secs p50 p99
  c0=$(group_ticks "$4")
  timeout $((DUR + 30)) "$T/bin/tls-handshakes" "127.0.0.1:$3" "$TLS_HOST" "$PATH_API" "$DUR" "$TLS_CONNS" \
    >"$out" 2>&1 || die "tls-handshakes failed: $(tail -3 "$out")"
  c1=$(group_ticks "$4")
  read -r ok failed secs p50 p99 <"$out"
  local rate cpu
  rate=$(awk -v n="$ok" -v s="$secs" 'BEGIN{printf "%.0f", n / s}')
  cpu="$(cpu_us_per_req $((c1 - c0)) "$ok")"
  record s8 "$1" "$2" "$rate" "$p50" "$p99" "$failed" "$ok" "$cpu"
  log "  s8 $1 round $2: $rate handshakes/s, p50 $p50 us, p99 $p99 us, $failed failed; server CPU $cpu us/handshake"
}
# Holds IDLE_CONNS idle keep-alive connections for HOLD seconds; waits until all are open.
hold_conns() { # $1 port, $2 seconds, $3 output file; sets HOLDER
  python3 "$HERE/hold_conns.py" 127.0.0.1 "$1" "$IDLE_CONNS" "$PATH_API" "$2" >"$3" 2>&1 &
  HOLDER=$!; PIDS+=("$HOLDER")
  for _ in $(seq 1 600); do grep -qs "^ready" "$3" && break; sleep 0.1; done
  grep -q '^ready' "$3" || die "holder not ready: $(cat "$3")"
}

# Targets by scenario, in the order each round runs them.
# shellcheck disable=SC2034 # the tables are read through wrk_scenario's namerefs
declare -A PASS=([nginx]=$P_NGX [nginx-h]=$P_NGX_H [haproxy]=$P_HAP [caddy]=$P_CADDY [direct]=$P_UP)
declare -A PASS_PID=([nginx]=${PID[nginx-proxy]} [nginx-h]=${PID[nginx-h]} [haproxy]=${PID[haproxy]}
  [caddy]=${PID[caddy]} [direct]=${PID[nginx-up]})
# shellcheck disable=SC2034
declare -A SC=([nginx]=$P_NGX_SC [haproxy]=$P_HAP_SC [caddy]=$P_CADDY_SC)
declare -A SC_PID=([nginx]=${PID[nginx-proxy]} [haproxy]=${PID[haproxy]} [caddy]=${PID[caddy]})
declare -A TLS=() TLS_PID=()
if has_tls; then TLS[nginx]=$P_NGX_TLS; TLS_PID[nginx]=${PID[nginx-tls]}; fi
# shellcheck disable=SC2034
for s in "${SHIMS[@]}"; do
  PASS[$s]=${P_PASS_OF[$s]}; PASS_PID[$s]=${PID[$s]}
  SC[$s]=${P_SC_OF[$s]}; SC_PID[$s]=${PID[$s-sc]}
done
for s in "${TLS_SHIMS[@]}"; do TLS[$s]=${P_TLS_OF[$s]}; TLS_PID[$s]=${PID[$s-tls]}; done
PASS_T=("${SHIMS[@]}" nginx nginx-h haproxy caddy direct)
SC_T=("${SHIMS[@]}" nginx haproxy caddy)
TLS_T=("${TLS_SHIMS[@]}" nginx)

# Scenarios 1, 2, 6, 7 and 9: wrk at full load, a warm-up per target, then ROUNDS rounds with
# the targets interleaved.
wrk_scenario() { # $1 scenario, $2 name of the port table, $3 of the PID table, $4 wrk script,
                 # $5 URL prefix (http or https and host), rest = targets
  local scen=$1 script=$4 prefix=$5 t r
  local -n ports=$2 pids=$3
  shift 5
  for t in "$@"; do
    timeout $((WARMUP + 20)) wrk -t2 -c"$CONNS" -d"${WARMUP}s" ${script:+-s "$script"} \
      "$prefix:${ports[$t]}$PATH_API" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in "$@"; do
      run_wrk "$scen" "$t" "$r" "$prefix:${ports[$t]}$PATH_API" "${pids[$t]}" "$script"
    done
  done
}

# ---------------------------------------------------------------- scenario 1
if has_scenario 1; then
  log "scenario 1: pass-through, HTTP/1.1 keep-alive, $CONNS connections, ${DUR}s x $ROUNDS rounds"
  wrk_scenario 1 PASS PASS_PID "" http://127.0.0.1 "${PASS_T[@]}"
fi

# ---------------------------------------------------------------- scenario 2
if has_scenario 2; then
  log "scenario 2: short-circuit (158-byte maintenance XML), $CONNS connections, ${DUR}s x $ROUNDS rounds"
  wrk_scenario 2 SC SC_PID "" http://127.0.0.1 "${SC_T[@]}"
fi

# ---------------------------------------------------------------- scenarios 6 and 7
if has_scenario 6; then
  log "scenario 6: pass-through, 300-byte form POST, $CONNS connections, ${DUR}s x $ROUNDS rounds"
  wrk_scenario 6 PASS PASS_PID "$T/post.lua" http://127.0.0.1 "${PASS_T[@]}"
fi
if has_scenario 7; then
  log "scenario 7: short-circuit, 300-byte form POST, $CONNS connections, ${DUR}s x $ROUNDS rounds"
  wrk_scenario 7 SC SC_PID "$T/post.lua" http://127.0.0.1 "${SC_T[@]}"
fi

# ---------------------------------------------------------------- scenarios 8, 9 and 10
if has_scenario 8; then
  log "scenario 8: TLS handshakes, a new connection per request, $TLS_CONNS clients, ${DUR}s x $ROUNDS rounds"
  for t in "${TLS_T[@]}"; do
    timeout $((WARMUP + 20)) "$T/bin/tls-handshakes" "127.0.0.1:${TLS[$t]}" "$TLS_HOST" "$PATH_API" \
      "$WARMUP" "$TLS_CONNS" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in "${TLS_T[@]}"; do run_handshakes "$t" "$r" "${TLS[$t]}" "${TLS_PID[$t]}"; done
  done
fi
if has_scenario 9; then
  log "scenario 9: TLS HTTP/1.1 keep-alive, $CONNS connections, ${DUR}s x $ROUNDS rounds"
  wrk_scenario 9 TLS TLS_PID "$T/loopback.lua" "https://$TLS_HOST" "${TLS_T[@]}"
fi
if has_scenario 10; then
  log "scenario 10: TLS h2 keep-alive, $H2_CONNS connections x $H2_STREAMS streams, ${DUR}s x $ROUNDS rounds"
  for t in "${TLS_T[@]}"; do
    timeout $((WARMUP + 20)) h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$WARMUP" \
      --connect-to="127.0.0.1:${TLS[$t]}" "https://$TLS_HOST:${TLS[$t]}$PATH_API" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in "${TLS_T[@]}"; do run_h2load "$t" "$r" "${TLS[$t]}" "${TLS_PID[$t]}"; done
  done
fi

# ---------------------------------------------------------------- scenario 3
if has_scenario 3; then
  log "scenario 3: fixed rate $RATE req/s (oha, latency-corrected), ${DUR}s x $ROUNDS rounds"
  for t in direct "${SHIMS[@]}" nginx haproxy caddy; do
    timeout $((WARMUP + 20)) oha -z "${WARMUP}s" -q "$RATE" -c 32 --no-tui --output-format json \
      "http://127.0.0.1:${PASS[$t]}$PATH_API" >/dev/null 2>&1
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in direct "${SHIMS[@]}" nginx haproxy caddy; do
      run_oha "$t" "$r" "http://127.0.0.1:${PASS[$t]}$PATH_API" "${PASS_PID[$t]}"
    done
  done
fi

# Scenarios 4 and 5 use fresh shim processes; stop the others so they do not compete.
for s in "${SHIMS[@]}"; do stop "$s"; stop "$s-sc"; done
for s in "${TLS_SHIMS[@]}"; do stop "$s-tls"; done
has_tls && stop nginx-tls

# ---------------------------------------------------------------- scenario 4
if has_scenario 4; then
  log "scenario 4: streaming ${STREAM_MIB} MiB download and upload, $STREAM_ROUNDS rounds"
  declare -A DL=([direct]=$P_UP [nginx]=$P_NGX [haproxy]=$P_HAP [caddy]=$P_CADDY)
  declare -A UL=([direct]=$P_SINK [nginx]=$P_NGX [haproxy]=$P_HAP [caddy]=$P_CADDY)
  for s in "${SHIMS[@]}"; do
    start "$s-stream" "${BIN[$s]}" run --config "$T/$s-stream.toml"
    DL[$s]=${P_ST_OF[$s]}; UL[$s]=${P_ST_OF[$s]}
  done
  for s in "${SHIMS[@]}"; do wait_port "${P_ST_OF[$s]}"; done
  bytes=$((STREAM_MIB * 1024 * 1024))
  # Warm the page cache and the connections.
  curl -s -o /dev/null --max-time 120 "http://127.0.0.1:$P_UP/big.bin"
  mib_s() { awk -v s="$1" 'BEGIN{printf "%.1f", s/1048576}'; }
  # nginx, HAProxy and Caddy (streaming, unbuffered) are a reference for what a proxy costs here.
  for r in $(seq 1 "$STREAM_ROUNDS"); do
    for t in direct "${SHIMS[@]}" nginx haproxy caddy; do
      read -r code size speed secs < <(curl -s -o /dev/null --max-time 300 \
        -w '%{http_code} %{size_download} %{speed_download} %{time_total}\n' "http://127.0.0.1:${DL[$t]}/big.bin")
      [[ "$code" == 200 && "$size" == "$bytes" ]] || die "download via $t: status $code, $size bytes"
      record s4 "download-$t" "$r" "$(mib_s "$speed")" "$secs"
      log "  s4 download $t round $r: $(mib_s "$speed") MiB/s (${secs}s)"
    done
    for t in direct "${SHIMS[@]}" nginx haproxy caddy; do
      read -r code size speed secs < <(curl -s -o "$T/upload.out" --max-time 300 -H 'Expect:' \
        -T "$T/www/big.bin" -w '%{http_code} %{size_upload} %{speed_upload} %{time_total}\n' \
        "http://127.0.0.1:${UL[$t]}/upload/big.bin")
      [[ "$code" == 200 && "$(tr -d '\n' <"$T/upload.out")" == "$bytes" ]] ||
        die "upload via $t: status $code, sink saw $(cat "$T/upload.out")"
      record s4 "upload-$t" "$r" "$(mib_s "$speed")" "$secs"
      log "  s4 upload $t round $r: $(mib_s "$speed") MiB/s (${secs}s)"
    done
  done
  for s in "${SHIMS[@]}"; do
    pid=${PID[$s-stream]}
    record s4-rss "$s" 1 "$(rss_kib "$pid" VmHWM)" "$(rss_kib "$pid" VmRSS)"
    log "  s4 $s peak RSS (VmHWM): $(rss_kib "$pid" VmHWM) KiB"
    stop "$s-stream"
  done
  rm -f "$T/www/big.bin"
fi

# ---------------------------------------------------------------- scenario 5
if has_scenario 5; then
  log "scenario 5: $IDLE_CONNS idle keep-alive connections held ${HOLD}s"
  # One fresh process per shim binary, one after the other (each holds every connection).
  for s in "${SHIMS[@]}"; do
    port=${P_IDLE_OF[$s]}
    start "$s-idle" "${BIN[$s]}" run --config "$T/$s-idle.toml"
    pid=${PID[$s-idle]}
    wait_port "$port"
    sleep 1
    idle_start=$(rss_kib "$pid" VmRSS)
    curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port$PATH_API"
    sleep 0.5
    idle_one=$(rss_kib "$pid" VmRSS)
    log "  $s idle RSS at start: $idle_start KiB; after one request: $idle_one KiB"
    hold_conns "$port" "$((HOLD + 4))" "$RAW/s5-hold-$s.out"
    sleep 2
    c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
    sleep "$HOLD"
    c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
    held_rss=$(rss_kib "$pid" VmRSS); held_hwm=$(rss_kib "$pid" VmHWM)
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    cpu_pct=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz/(e-s)*100}')
    wait "$HOLDER" || true
    ready_line=$(grep '^ready' "$RAW/s5-hold-$s.out")
    done_line=$(grep '^done' "$RAW/s5-hold-$s.out" || echo "done alive=?")
    record s5 "$s" 1 "$idle_start" "$idle_one" "$held_rss" "$held_hwm" "$cpu_pct" "$fds" \
      "$(echo "$ready_line" | awk '{print $2}')" "$(echo "$done_line" | sed 's/.*alive=\([0-9?]*\).*/\1/')"
    log "  $s held: RSS $held_rss KiB (peak $held_hwm), CPU ${cpu_pct}% of one core, $fds fds; $ready_line; $done_line"
    stop "$s-idle"
  done
  # Reference: what nginx, HAProxy and Caddy (already running, warm) add for the same connections.
  for t in nginx haproxy caddy; do
    pid=${PASS_PID[$t]}
    rss0=$(group_rss "$pid")
    hold_conns "${PASS[$t]}" 6 "$RAW/s5-hold-$t.out"
    sleep 2
    c0=$(group_ticks "$pid"); sleep 3; c1=$(group_ticks "$pid")
    held=$(group_rss "$pid")
    wait "$HOLDER" || true
    record s5-ref "$t" 1 "$rss0" "$held" "$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz/3*100}')" \
      "$(grep '^ready' "$RAW/s5-hold-$t.out" | awk '{print $2}')"
    log "  reference $t: RSS (master + workers) $rss0 KiB before, $held KiB holding; $(grep '^ready' "$RAW/s5-hold-$t.out")"
  done
fi

# ---------------------------------------------------------------- report
for s in "${SHIMS[@]}"; do
  for f in "$T/$s".out "$T/$s"-*.out; do
    [[ -f "$f" ]] || continue
    if grep -qiE 'error|panic' "$f"; then log "note: $(basename "$f") logged errors:"; grep -iE 'error|panic' "$f" | head -5 >&2; fi
  done
done
echo
echo "## webcollect-shim benchmarks"
echo
versions="$(nginx -v 2>&1 | sed 's|.*nginx/|nginx |'), HAProxy $(haproxy -v | awk 'NR == 1 {print $3}'), Caddy $(caddy version | awk '{print $1}'), $({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $1, $2}')"
command -v oha >/dev/null && versions+=", $(oha --version 2>/dev/null)"
command -v h2load >/dev/null && versions+=", $(h2load --version 2>/dev/null | sed 's|^h2load nghttp2/|h2load |')"
versions+=", $(openssl version | awk '{print $1, $2}')"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r); $versions; load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "shim: $SHIM_DESC"
[[ -n "$BEFORE_DESC" ]] && echo "before: $BEFORE_DESC"
echo "SCENARIOS=\"$SCENARIOS\" ROUNDS=$ROUNDS DUR=${DUR}s CONNS=$CONNS RATE=$RATE STREAM_MIB=$STREAM_MIB STREAM_ROUNDS=$STREAM_ROUNDS IDLE_CONNS=$IDLE_CONNS TLS_CONNS=$TLS_CONNS H2_CONNS=$H2_CONNS H2_STREAMS=$H2_STREAMS RUST_LOG=$RUST_LOG SHIM_WORKERS=${SHIM_WORKERS:-default}; medians over rounds"
echo
RATE="$RATE" TLS_CONNS="$TLS_CONNS" H2_CONNS="$H2_CONNS" H2_STREAMS="$H2_STREAMS" $SUM table "$RES"
