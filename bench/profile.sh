#!/usr/bin/env bash
# Profiles the shim on the two hot paths of bench/run.sh (pass-through of a 1 KiB body, and the
# 158-byte short-circuit), for the targets RESULTS.md reports as missed.
#
#   bench/profile.sh perf        sampling (perf record -e cpu-clock) at full load (wrk -c64)
#   bench/profile.sh callgrind   instruction counts per request (valgrind --tool=callgrind) under
#                                light load; with BEFORE=path, the previous build's counts too,
#                                and a before/after table
#   bench/profile.sh syscalls    syscalls, context switches, CPU per request: shim vs nginx
#   bench/profile.sh stream      streaming 1 GiB each way: syscalls, bytes per syscall, top symbols
#   bench/profile.sh             perf, callgrind and syscalls (not stream)
#
# The binary: SHIM=path (no build), else `cargo build --profile profiling` unless NO_BUILD=1. DUR (seconds
# per measurement, 10), CG_PATHS (callgrind's paths: "pass short-circuit pass-post
# short-circuit-post", the -post ones a 300-byte form POST), STREAM_MIB (1024), SHIM_WORKERS (`[server] worker_threads`, except in
# callgrind mode, which always uses 1), KEEP=0 (remove the raw data).
#
# `perf stat -e instructions` is not supported on this VM (no hardware counters), so perf
# samples the cpu-clock software event. callgrind counts instructions per request: its counters
# are zeroed after a warm-up and dumped after the measured load, so start-up is excluded.
# Output: a report on stdout; raw data stays in the printed temp dir. Loopback only; bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
MODE="${1:-all}"
DUR="${DUR:-10}"
KEEP="${KEEP:-1}"   # the report refers to the raw data
export RUST_LOG="${RUST_LOG:-warn}"
export PATH="$HOME/.cargo/bin:$PATH"
# Ports (admin listeners on port + 10).
P_UP=28181; P_NGX=28182; P_PASS=28184; P_SC=28185; P_NGX_SC=28186; P_ST=28188; P_SINK=28189
P_CG=28164   # callgrind: one shim at a time (pass-through, then short-circuit; shim, then before)
# callgrind's paths: GETs, and the 300-byte form POST (lib.sh's FORM) as `-post`.
CG_PATHS="${CG_PATHS:-pass short-circuit pass-post short-circuit-post}"

case "$MODE" in perf | callgrind | syscalls | stream | all) ;; *) die "unknown mode '$MODE'" ;; esac
command -v perf >/dev/null || [[ "$MODE" == callgrind ]] || die "perf missing (apt-get install linux-perf)"
command -v valgrind >/dev/null || [[ "$MODE" == perf ]] || die "valgrind missing (apt-get install valgrind)"

bench_tmpdir webcollect-profile
bench_binaries
ports_free $P_UP $P_NGX $P_PASS $P_SC $P_NGX_SC $P_ST $P_SINK $P_CG \
  $((P_PASS + 10)) $((P_SC + 10)) $((P_ST + 10)) $((P_CG + 10))
bench_bodies
start_nginx nginx-up nginx_upstream_conf
# nginx as the competitor (the same config as run.sh), for the syscall comparison.
start_nginx nginx-proxy nginx_proxy_conf $P_NGX $P_NGX_SC
shim_config $P_PASS "" >"$T/pass.toml"
shim_config $P_SC "$WINDOW_NOW" >"$T/sc.toml"
wait_port $P_UP
set +o pipefail   # report pipelines end in `head`

perf_one() { # $1 name, $2 port, $3 config
  "$SHIM_BIN" run --config "$3" >"$T/shim-$1.out" 2>&1 &
  local pid=$!; PIDS+=("$pid"); wait_port "$2"
  wrk -t2 -c64 -d2s "http://127.0.0.1:$2/api/creditToken" >/dev/null
  timeout $((DUR + 30)) wrk -t2 -c64 -d"$((DUR + 2))s" --latency "http://127.0.0.1:$2/api/creditToken" >"$T/wrk-perf-$1.txt" &
  local wrk=$!
  sleep 1
  perf record -q -e cpu-clock -F 1999 -p "$pid" -o "$T/perf-$1.data" -- sleep "$DUR" 2>/dev/null
  wait "$wrk"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  echo "### perf ($1): $(grep Requests/sec "$T/wrk-perf-$1.txt" | tr -s ' ') under wrk -t2 -c64"
  echo
  echo '```'
  echo "# by shared object (self time)"
  perf report -i "$T/perf-$1.data" --stdio --no-children --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
  echo "# top symbols (self time)"
  perf report -i "$T/perf-$1.data" --stdio --no-children --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
  echo '```'
  echo
}

# Instructions per request on one path of one binary, whole process (callgrind_measure in
# lib.sh). callgrind runs a program's threads one at a time, and the dump is the sum over all
# of them (the workers, the new shim's control thread, tokio's blocking pool); callgrind_all
# also gives the config `worker_threads = 1`.
callgrind_one() { # $1 target (shim|before), $2 binary, $3 path (pass|short-circuit[-post]), $4 config
  local name="$1-$3" out="$T/callgrind-$1-$3.out" dump="$T/callgrind-$1-$3.out.1"
  local WRK_SCRIPT=""
  [[ "$3" != *-post ]] || WRK_SCRIPT="$T/post.lua"
  callgrind_measure "$name" "$out" $P_CG "http://127.0.0.1:$P_CG$PATH_API" "$2" run --config "$4"
  local reqs=$CG_REQS ir=$CG_IR threads=$CG_THREADS
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$reqs" "$ir" "$threads" >>"$T/cg.tsv"
  {
    echo "### callgrind ($1, $3): $reqs requests measured, $ir instructions, $(awk -v a="$ir" -v b="$reqs" 'BEGIN{printf "%.0f", a/b}') instructions per request"
    echo
    echo '```'
    echo "# exclusive (self) instructions per request, top 20"
    python3 "$HERE/cg_summary.py" "$dump" "$reqs" exclusive 20
    echo
    echo "# inclusive instructions per request: the shim's functions and the main library calls"
    python3 "$HERE/cg_summary.py" "$dump" "$reqs" inclusive 22 \
      'webcollect_shim::|tower_http::|DelayedFormat<I> as|Checkout<T,K> as|UpgradeableConnection<I,B> as|Client as hyper::proto::h1::Http1Transaction|Server as hyper::proto::h1::Http1Transaction|send_request::|HeaderMap<T>::remove'
    echo '```'
    echo
  } >>"$T/cg-details.md"
}
callgrind_all() {
  SHIM_WORKERS=1 shim_config $P_CG "" >"$T/cg-pass.toml"
  SHIM_WORKERS=1 shim_config $P_CG "$WINDOW_NOW" >"$T/cg-short-circuit.toml"
  form_lua "$T/post.lua"
  : >"$T/cg.tsv"; : >"$T/cg-details.md"
  local path
  for path in $CG_PATHS; do
    callgrind_one shim "$SHIM_BIN" "$path" "$T/cg-${path%-post}.toml"
    [[ -z "$BEFORE_BIN" ]] || callgrind_one before "$BEFORE_BIN" "$path" "$T/cg-${path%-post}.toml"
  done
  echo "### callgrind: instructions per request (whole process, all threads summed; worker_threads = 1; wrk -t1 -c8, ${DUR}s after a 3 s warm-up)"
  echo
  echo "shim: $SHIM_DESC"
  [[ -z "$BEFORE_DESC" ]] || echo "before: $BEFORE_DESC"
  echo
  python3 - "$T/cg.tsv" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
per = {}
print("| binary | path | requests | instructions | per request | threads |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for target, path, reqs, ir, threads in rows:
    per[(target, path)] = int(ir) / int(reqs)
    print(f"| {target} | {path} | {int(reqs):,} | {int(ir):,} | {per[(target, path)]:,.0f} | {threads} |")
if any(t == "before" for t, _ in per):
    print()
    print("| path | shim instr/req | before instr/req | shim / before |")
    print("| --- | ---: | ---: | ---: |")
    for path in ["pass", "short-circuit", "pass-post", "short-circuit-post"]:
        s, b = per.get(("shim", path)), per.get(("before", path))
        if s and b:
            print(f"| {path} | {s:,.0f} | {b:,.0f} | {s / b:.2f}× |")
PY
  echo
  echo "threads: the process's threads at the end of the measurement; all of them are counted."
  echo
  cat "$T/cg-details.md"
}

# Syscalls, context switches and CPU per request, shim vs nginx, under the same load.
syscalls_one() { # $1 name, $2 port, $3 pids (comma-separated), $4 "wrk" or a fixed rate (req/s)
  local url="http://127.0.0.1:$2/api/creditToken" load="${4:-wrk}" gen f="${1// /_}"
  if [[ "$load" == wrk ]]; then
    wrk -t2 -c64 -d2s "$url" >/dev/null
    timeout $((DUR + 30)) wrk -t2 -c64 -d"$((DUR + 2))s" "$url" >"$T/load-$f.txt" &
  else
    timeout $((DUR + 30)) oha -z "$((DUR + 2))s" -q "$load" -c 32 --latency-correction -w --no-tui \
      --output-format json "$url" >"$T/load-$f.txt" 2>/dev/null &
  fi
  gen=$!
  sleep 1
  perf stat -x, -e raw_syscalls:sys_enter,context-switches,cpu-clock -p "$3" -o "$T/stat-$f.csv" -- sleep "$DUR" 2>/dev/null
  wait "$gen"
  local rps
  if [[ "$load" == wrk ]]; then rps=$(awk '/Requests\/sec/ {print $2}' "$T/load-$f.txt"); else rps=$load; fi
  awk -F, -v name="$1" -v rps="$rps" -v dur="$DUR" '
    $3 == "raw_syscalls:sys_enter" {sc = $1} $3 == "context-switches" {cs = $1} $3 == "cpu-clock" {cpu = $1}
    END { n = rps * dur; printf "| %s | %.0f | %.2f | %.3f | %.1f |\n", name, rps, sc / n, cs / n, cpu * 1000 / n }' "$T/stat-$f.csv"
}
syscalls_all() {
  "$SHIM_BIN" run --config "$T/pass.toml" >"$T/shim-sys-pass.out" 2>&1 & local p1=$!; PIDS+=("$p1")
  "$SHIM_BIN" run --config "$T/sc.toml" >"$T/shim-sys-sc.out" 2>&1 & local p2=$!; PIDS+=("$p2")
  wait_port $P_PASS; wait_port $P_SC; wait_port $P_NGX; wait_port $P_NGX_SC
  local ngx; ngx=$(pgrep -P "${PID[nginx-proxy]}" | paste -sd, -)
  echo "### syscalls and context switches per request (perf stat, ${DUR}s; wrk -t2 -c64 unless noted)"
  echo
  echo "| server | req/s | syscalls/req | context switches/req | CPU µs/req (cpu-clock) |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  syscalls_one shim-pass $P_PASS "$p1"
  syscalls_one nginx-pass $P_NGX "$ngx"
  syscalls_one shim-short-circuit $P_SC "$p2"
  syscalls_one nginx-short-circuit $P_NGX_SC "$ngx"
  if command -v oha >/dev/null; then
    syscalls_one "shim-pass at 2000 rps" $P_PASS "$p1" 2000
    syscalls_one "nginx-pass at 2000 rps" $P_NGX "$ngx" 2000
    syscalls_one "direct (upstream nginx) at 2000 rps" $P_UP "$(pgrep -P "${PID[nginx-up]}" | paste -sd, -)" 2000
  fi
  echo
  echo "(at 2000 rps: oha at a fixed rate, 32 connections, instead of wrk.)"
  echo
  for pair in "shim-pass:$P_PASS:$p1" "nginx-pass:$P_NGX:$ngx"; do
    IFS=: read -r name port pids <<<"$pair"
    echo "Syscall mix of $name (perf trace -s, 2 s under wrk -t2 -c64; counts, not rates):"
    echo
    echo '```'
    wrk -t2 -c64 -d4s "http://127.0.0.1:$port/api/creditToken" >/dev/null &
    local gen=$!
    sleep 1
    perf trace -s -p "$pids" -o "$T/trace-$name.txt" -- sleep 2 >/dev/null 2>&1 || true
    awk '$2 ~ /^[0-9]+$/ && NF >= 7 {calls[$1] += $2} END {for (s in calls) printf "%10d  %s\n", calls[s], s}' \
      "$T/trace-$name.txt" | sort -rn | head -10
    wait "$gen" || true
    echo '```'
    echo
  done
  kill -TERM "$p1" "$p2"; wait "$p1" "$p2" 2>/dev/null || true
}

# Streaming: syscalls (and so bytes per syscall) and CPU of the shim for one transfer each way
# (STREAM_MIB, 1 GiB by default), plus its top symbols.
stream_all() {
  local mib=${STREAM_MIB:-1024}
  head -c $((mib * 1024 * 1024)) /dev/urandom >"$T/www/big.bin"; chmod a+r "$T/www/big.bin"
  start_sink
  shim_stream_config "$SHIM_BIN" $P_ST "$T/stream.toml"
  start shim-stream "$SHIM_BIN" run --config "$T/stream.toml"
  local pid=${PID[shim-stream]}
  wait_port $P_ST; wait_port $P_SINK
  local dl=(curl -s -o /dev/null --max-time 300 -w '%{speed_download}' "http://127.0.0.1:$P_ST/big.bin")
  local ul=(curl -s -o /dev/null --max-time 300 -w '%{speed_upload}' -H 'Expect:' -T "$T/www/big.bin" "http://127.0.0.1:$P_ST/upload/big.bin")
  "${dl[@]}" >/dev/null   # warm the page cache
  echo "### streaming ${mib} MiB through the shim: syscalls (perf stat) and speed"
  echo
  echo "| direction | MiB/s | shim CPU s | recvfrom/read calls | KiB per read | writev/write/sendto calls | KiB per write |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  local ev=syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_sendto,cpu-clock
  local dir speed ps
  for dir in download upload; do
    perf stat -x, -e "$ev" -p "$pid" -o "$T/stream-$dir.csv" &
    ps=$!
    sleep 0.5
    if [[ $dir == download ]]; then speed=$("${dl[@]}"); else speed=$("${ul[@]}"); fi
    kill -INT "$ps"; wait "$ps" 2>/dev/null || true
    awk -F, -v dir="$dir" -v sp="$speed" -v mib="$mib" '
      $3 ~ /recvfrom|sys_enter_read$/ {r += $1} $3 ~ /writev|sys_enter_write$|sendto/ {w += $1} $3 == "cpu-clock" {c = $1}
      END { printf "| %s | %.0f | %.2f | %d | %.1f | %d | %.1f |\n", dir, sp / 1048576, c / 1000, r, mib * 1024 / r, w, mib * 1024 / w }' "$T/stream-$dir.csv"
  done
  echo
  for dir in download upload; do
    perf record -q -e cpu-clock -F 1999 -p "$pid" -o "$T/perf-stream-$dir.data" 2>/dev/null &
    ps=$!
    sleep 0.5
    if [[ $dir == download ]]; then "${dl[@]}" >/dev/null; else "${ul[@]}" >/dev/null; fi
    kill -INT "$ps"; wait "$ps" 2>/dev/null || true
    echo "#### perf, $dir: top symbols (self time)"
    echo
    echo '```'
    perf report -i "$T/perf-stream-$dir.data" --stdio --no-children --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
    echo '```'
    echo
  done
  stop shim-stream
  rm -f "$T/www/big.bin"
}

if [[ "$MODE" == stream ]]; then
  stream_all
fi
if [[ "$MODE" == syscalls || "$MODE" == all ]]; then
  syscalls_all
fi
if [[ "$MODE" == perf || "$MODE" == all ]]; then
  perf_one pass $P_PASS "$T/pass.toml"
  perf_one short-circuit $P_SC "$T/sc.toml"
fi
if [[ "$MODE" == callgrind || "$MODE" == all ]]; then
  callgrind_all
fi
