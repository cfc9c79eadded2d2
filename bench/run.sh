#!/usr/bin/env bash
# Benchmarks for webcollect-shim against nginx and HAProxy (issue 7, "Benchmarks"), and against
# the shim's previous build (issue 10, before/after in one run).
#
#   bench/run.sh            full run: ROUNDS=3 rounds of 10 s per scenario and target
#   QUICK=1 bench/run.sh    development run: 2 rounds of 2 s, 256 MiB streaming
#   BEFORE=/path/to/old/webcollect-shim bench/run.sh
#                           adds the target `before` (the previous commit's build) to every
#                           scenario, interleaved with the others; the current build is `shim`
#
# Knobs (environment): ROUNDS, DUR (seconds per run), RATE (scenario 3, req/s), CONNS
# (scenario 1/2 connections), IDLE_CONNS (scenario 5), STREAM_MIB and STREAM_ROUNDS (scenario 4),
# SCENARIOS (e.g. "1 2"), SHIM_WORKERS (`[server] worker_threads` of every shim), KEEP=1 (keep
# the temp dir with configs and raw outputs), NO_INSTALL=1 (never call apt-get / cargo install),
# NO_BUILD=1 (use the existing target/profiling binary), SHIM=path (benchmark that binary; no
# build), BEFORE=path.
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
SCENARIOS="${SCENARIOS:-1 2 3 4 5}"
WARMUP="${WARMUP:-2}"
export RUST_LOG="${RUST_LOG:-warn}"   # per-request info logs cost throughput; see RESULTS.md
has_scenario() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# Ports (loopback only). Every shim's admin listener is on its proxy port + 10.
P_UP=28081        # nginx upstream: 1 KiB static body on every path, /big.bin
P_NGX=28082       # nginx proxy_pass (upstream keepalive)
P_HAP=28083       # HAProxy pass-through
P_NGX_SC=28086    # nginx return 200 <maintenance XML>
P_HAP_SC=28087    # HAProxy http-request return <maintenance XML>
P_SINK=28089      # upload sink (reads the whole body, then answers)
# Per shim binary: pass-through config; window covering now (short-circuit); streaming (fresh
# process: its VmHWM is the streaming peak); idle connections (fresh process).
declare -A P_PASS_OF=([shim]=28084 [before]=28064)
declare -A P_SC_OF=([shim]=28085 [before]=28065)
declare -A P_ST_OF=([shim]=28088 [before]=28068)
declare -A P_IDLE_OF=([shim]=28090 [before]=28069)

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
if has_scenario 3 && ! command -v oha >/dev/null 2>&1; then
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

# ---------------------------------------------------------------- binaries
bench_tmpdir webcollect-bench
RAW="$T/raw"; mkdir -p "$RAW"
RES="$T/results.tsv"; : >"$RES"
bench_binaries
SHIMS=(shim)
declare -A BIN=([shim]=$SHIM_BIN)
if [[ -n "$BEFORE_BIN" ]]; then SHIMS+=(before); BIN[before]=$BEFORE_BIN; fi

busy=($P_UP $P_NGX $P_HAP $P_NGX_SC $P_HAP_SC $P_SINK)
for s in "${SHIMS[@]}"; do
  for p in ${P_PASS_OF[$s]} ${P_SC_OF[$s]} ${P_ST_OF[$s]} ${P_IDLE_OF[$s]}; do busy+=("$p" $((p + 10))); done
done
ports_free "${busy[@]}"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
log "open files limit: $(ulimit -n); load: $LOAD_START; targets: ${SHIMS[*]} nginx haproxy direct"

# ---------------------------------------------------------------- bodies and configs
bench_bodies
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

# ---------------------------------------------------------------- start
start_nginx nginx-up nginx_upstream_conf
start_nginx nginx-proxy nginx_proxy_conf $P_NGX $P_NGX_SC
start haproxy haproxy -db -f "$T/hap/haproxy.cfg"
start_sink
for s in "${SHIMS[@]}"; do
  start "$s" "${BIN[$s]}" run --config "$T/$s-pass.toml"
  start "$s-sc" "${BIN[$s]}" run --config "$T/$s-sc.toml"
done
for p in $P_UP $P_NGX $P_HAP $P_NGX_SC $P_HAP_SC $P_SINK; do wait_port "$p"; done
for s in "${SHIMS[@]}"; do wait_port "${P_PASS_OF[$s]}"; wait_port "${P_SC_OF[$s]}"; done
log "started: nginx upstream, nginx proxy, haproxy, sink; pass-through and short-circuit of: ${SHIMS[*]}"

# ---------------------------------------------------------------- sanity checks
check_body() { # $1 url, $2 expected status, $3 expected size
  local got
  got="$(curl -s -o "$T/check.body" -w '%{http_code} %{size_download} %{content_type}' --max-time 5 "$1")"
  [[ "${got%% *}" == "$2" ]] || die "$1: got '$got', expected status $2"
  local size; size="$(echo "$got" | cut -d' ' -f2)"
  [[ "$size" == "$3" ]] || die "$1: body is $size bytes, expected $3"
  echo "$got"
}
pass_urls=("http://127.0.0.1:$P_UP$PATH_API" "http://127.0.0.1:$P_NGX$PATH_API" "http://127.0.0.1:$P_HAP$PATH_API")
sc_urls=("http://127.0.0.1:$P_NGX_SC$PATH_API" "http://127.0.0.1:$P_HAP_SC$PATH_API")
for s in "${SHIMS[@]}"; do
  pass_urls+=("http://127.0.0.1:${P_PASS_OF[$s]}$PATH_API")
  sc_urls+=("http://127.0.0.1:${P_SC_OF[$s]}$PATH_API")
done
for url in "${pass_urls[@]}"; do
  check_body "$url" 200 1024 >/dev/null
  cmp -s "$T/check.body" "$T/www/1k.bin" || die "$url: body differs from the upstream's"
done
for url in "${sc_urls[@]}"; do
  ct="$(check_body "$url" 200 158 | cut -d' ' -f3-)"
  [[ "${ct,,}" == "text/xml; charset=utf-8" ]] || die "$url: content-type '$ct'"
  # The shims' returnDate is the current time; everything else is the same bytes.
  sed 's|<returnDate>[0-9]\{14\}</returnDate>|<returnDate>20200420023000</returnDate>|' "$T/check.body" |
    cmp -s - "$T/maint.xml" || die "$url: body differs from the maintenance XML"
done
log "sanity checks passed (1 KiB pass-through bodies identical; the 158-byte XML everywhere, returnDate aside)"

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
# Holds IDLE_CONNS idle keep-alive connections for HOLD seconds; waits until all are open.
hold_conns() { # $1 port, $2 seconds, $3 output file; sets HOLDER
  python3 "$HERE/hold_conns.py" 127.0.0.1 "$1" "$IDLE_CONNS" "$PATH_API" "$2" >"$3" 2>&1 &
  HOLDER=$!; PIDS+=("$HOLDER")
  for _ in $(seq 1 600); do grep -qs "^ready" "$3" && break; sleep 0.1; done
  grep -q '^ready' "$3" || die "holder not ready: $(cat "$3")"
}

# Targets by scenario, in the order each round runs them.
declare -A PASS=([nginx]=$P_NGX [haproxy]=$P_HAP [direct]=$P_UP)
declare -A PASS_PID=([nginx]=${PID[nginx-proxy]} [haproxy]=${PID[haproxy]} [direct]=${PID[nginx-up]})
declare -A SC=([nginx]=$P_NGX_SC [haproxy]=$P_HAP_SC)
declare -A SC_PID=([nginx]=${PID[nginx-proxy]} [haproxy]=${PID[haproxy]})
for s in "${SHIMS[@]}"; do
  PASS[$s]=${P_PASS_OF[$s]}; PASS_PID[$s]=${PID[$s]}
  SC[$s]=${P_SC_OF[$s]}; SC_PID[$s]=${PID[$s-sc]}
done

# ---------------------------------------------------------------- scenario 1
if has_scenario 1; then
  log "scenario 1: pass-through, HTTP/1.1 keep-alive, $CONNS connections, ${DUR}s x $ROUNDS rounds"
  for t in "${SHIMS[@]}" nginx haproxy direct; do
    timeout $((WARMUP + 20)) wrk -t2 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:${PASS[$t]}$PATH_API" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in "${SHIMS[@]}" nginx haproxy direct; do
      run_wrk 1 "$t" "$r" "http://127.0.0.1:${PASS[$t]}$PATH_API" "${PASS_PID[$t]}"
    done
  done
fi

# ---------------------------------------------------------------- scenario 2
if has_scenario 2; then
  log "scenario 2: short-circuit (158-byte maintenance XML), $CONNS connections, ${DUR}s x $ROUNDS rounds"
  for t in "${SHIMS[@]}" nginx haproxy; do
    timeout $((WARMUP + 20)) wrk -t2 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:${SC[$t]}$PATH_API" >/dev/null
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in "${SHIMS[@]}" nginx haproxy; do
      run_wrk 2 "$t" "$r" "http://127.0.0.1:${SC[$t]}$PATH_API" "${SC_PID[$t]}"
    done
  done
fi

# ---------------------------------------------------------------- scenario 3
if has_scenario 3; then
  log "scenario 3: fixed rate $RATE req/s (oha, latency-corrected), ${DUR}s x $ROUNDS rounds"
  for t in direct "${SHIMS[@]}" nginx haproxy; do
    timeout $((WARMUP + 20)) oha -z "${WARMUP}s" -q "$RATE" -c 32 --no-tui --output-format json \
      "http://127.0.0.1:${PASS[$t]}$PATH_API" >/dev/null 2>&1
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in direct "${SHIMS[@]}" nginx haproxy; do
      run_oha "$t" "$r" "http://127.0.0.1:${PASS[$t]}$PATH_API" "${PASS_PID[$t]}"
    done
  done
fi

# Scenarios 4 and 5 use fresh shim processes; stop the others so they do not compete.
for s in "${SHIMS[@]}"; do stop "$s"; stop "$s-sc"; done

# ---------------------------------------------------------------- scenario 4
if has_scenario 4; then
  log "scenario 4: streaming ${STREAM_MIB} MiB download and upload, $STREAM_ROUNDS rounds"
  declare -A DL=([direct]=$P_UP [nginx]=$P_NGX [haproxy]=$P_HAP)
  declare -A UL=([direct]=$P_SINK [nginx]=$P_NGX [haproxy]=$P_HAP)
  for s in "${SHIMS[@]}"; do
    start "$s-stream" "${BIN[$s]}" run --config "$T/$s-stream.toml"
    DL[$s]=${P_ST_OF[$s]}; UL[$s]=${P_ST_OF[$s]}
  done
  for s in "${SHIMS[@]}"; do wait_port "${P_ST_OF[$s]}"; done
  bytes=$((STREAM_MIB * 1024 * 1024))
  # Warm the page cache and the connections.
  curl -s -o /dev/null --max-time 120 "http://127.0.0.1:$P_UP/big.bin"
  mib_s() { awk -v s="$1" 'BEGIN{printf "%.1f", s/1048576}'; }
  # nginx and HAProxy (streaming, unbuffered) are a reference for what a proxy costs here.
  for r in $(seq 1 "$STREAM_ROUNDS"); do
    for t in direct "${SHIMS[@]}" nginx haproxy; do
      read -r code size speed secs < <(curl -s -o /dev/null --max-time 300 \
        -w '%{http_code} %{size_download} %{speed_download} %{time_total}\n' "http://127.0.0.1:${DL[$t]}/big.bin")
      [[ "$code" == 200 && "$size" == "$bytes" ]] || die "download via $t: status $code, $size bytes"
      record s4 "download-$t" "$r" "$(mib_s "$speed")" "$secs"
      log "  s4 download $t round $r: $(mib_s "$speed") MiB/s (${secs}s)"
    done
    for t in direct "${SHIMS[@]}" nginx haproxy; do
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
  # Reference: what nginx and HAProxy (already running, warm) add for the same connections.
  for t in nginx haproxy; do
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
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r); load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "shim: $SHIM_DESC"
[[ -n "$BEFORE_DESC" ]] && echo "before: $BEFORE_DESC"
echo "ROUNDS=$ROUNDS DUR=${DUR}s CONNS=$CONNS RATE=$RATE STREAM_MIB=$STREAM_MIB STREAM_ROUNDS=$STREAM_ROUNDS IDLE_CONNS=$IDLE_CONNS RUST_LOG=$RUST_LOG SHIM_WORKERS=${SHIM_WORKERS:-default}; medians over rounds"
echo
$SUM table "$RES"
