#!/usr/bin/env bash
# What the drill journal (issue 23) costs a request: the shim serving a 300-byte A08 form POST,
# passed through and short-circuited, with recording off and on, in one run.
#
#   bench/journal.sh callgrind   user-space instructions per request, one worker under
#                                valgrind --tool=callgrind, wrk -t1 -c8 for DUR s after a warm-up
#                                (as profile.sh and calibrate.sh count): pass-off, pass-on,
#                                sc-off, sc-on
#   bench/journal.sh wall        req/s, p50 and p99 under wrk -t2 -c64, ROUNDS (3) interleaved
#                                rounds of DUR (5) s, of the same four plus sc-full: recording on
#                                with the journal's queue kept full (another process holds the
#                                SQLite write lock, so the writer waits and every record past the
#                                queue is dropped): a full queue must cost no latency
#   bench/journal.sh             both
#
# "on" is `[report] always = true` with the journal in SQLite under a state_dir (the same work
# a request inside a recorded window does); "off" is `[report] enabled = false`. The binary:
# SHIM=path, else `cargo build --profile profiling` (NO_BUILD=1 skips it). Loopback only; every process
# started here is stopped on exit. KEEP=1 keeps the temp dir.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
MODE="${1:-all}"
ROUNDS="${ROUNDS:-3}"
DUR="${DUR:-5}"
export RUST_LOG="${RUST_LOG:-warn}"
P_UP=28381; P_SINK=28389
TARGETS=(pass-off pass-on sc-off sc-on sc-full)
declare -A PORT=([pass-off]=28382 [pass-on]=28383 [sc-off]=28384 [sc-on]=28385 [sc-full]=28386)

case "$MODE" in wall | callgrind | all) ;; *) die "unknown mode '$MODE' (wall, callgrind)" ;; esac
for tool in nginx wrk curl python3; do command -v "$tool" >/dev/null || die "$tool missing"; done
[[ "$MODE" == wall ]] || command -v valgrind >/dev/null || die "valgrind missing (apt-get install valgrind)"

bench_tmpdir webcollect-journal
bench_binaries
ports_free $P_UP "${PORT[@]}" $((PORT[pass-off] + 10)) $((PORT[pass-on] + 10)) \
  $((PORT[sc-off] + 10)) $((PORT[sc-on] + 10)) $((PORT[sc-full] + 10))
bench_bodies
start_nginx nginx-up nginx_upstream_conf
wait_port $P_UP

# The A08 of the stand-in's tests, padded to 300 bytes: what a merchant's server posts.
FORM='function_div=A08&trader_code=888888709&device_div=2&order_no=BENCH-000001&settle_price=1500&buyer_name_kanji=%E5%B1%B1%E7%94%B0&buyer_tel=0312345678&buyer_email=bench%40example.jp&pay_way=1&token=tokentokentoken1&reserve_1=x'
while [[ ${#FORM} -lt 300 ]]; do FORM+=x; done
cat >"$T/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "$FORM"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
WRK_SCRIPT="$T/post.lua"

config() { # $1 target, $2 port: the target's config on stdout
  local window="" report
  [[ "$1" == sc-* ]] && window="$WINDOW_NOW"
  case "$1" in
    *-off) report=$'[report]\nenabled = false' ;;
    *) report=$'[report]\nalways = true' ;;
  esac
  mkdir -p "$T/state-$1-$2"
  shim_config "$2" "$window
$report" | sed "s|^\[server\]|[admin]\nstate_dir = \"$T/state-$1-$2\"\n\n[server]|"
}

# Holds the SQLite write lock of a journal until killed: its writer can append nothing.
hold_lock() { # $1 journal file
  python3 - "$1" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(3600)
PY
  PIDS+=("$!")
}

# One target under callgrind, one file per thread, so the journal's writer thread (off the
# request path) is counted apart from the threads that serve requests. Sets CG_PATH (request
# path: worker, control and any other thread) and CG_WRITER (the journal thread),
# instructions per request, and CG_REQS.
measure() { # $1 target
  local name=$1 out="$T/callgrind-$1.out" pid f ir
  SHIM_WORKERS=1 config "$name" 28390 >"$T/cg-$name.toml"
  valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no --separate-threads=yes \
    "$SHIM_BIN" run --config "$T/cg-$name.toml" >"$T/cg-$name.log" 2>&1 &
  pid=$!; PIDS+=("$pid"); wait_port 28390
  wrk -t1 -c8 -d3s -s "$WRK_SCRIPT" "http://127.0.0.1:28390$PATH_API" >/dev/null
  sleep 1   # the journal writes the warm-up's records before the counters are zeroed
  callgrind_control -z "$pid" >"$T/cg-$name.ctl" 2>&1 || die "callgrind_control -z: $(cat "$T/cg-$name.ctl")"
  timeout $((DUR + 30)) wrk -t1 -c8 -d"${DUR}s" --latency -s "$WRK_SCRIPT" \
    "http://127.0.0.1:28390$PATH_API" >"$T/wrk-cg-$name.txt"
  sleep 1   # and the measured load's, before the dump
  callgrind_control -d "$pid" >>"$T/cg-$name.ctl" 2>&1 || die "callgrind_control -d: $(cat "$T/cg-$name.ctl")"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  read -r _ _ _ _ CG_REQS <<<"$(python3 "$BENCH_LIB/summarize.py" wrk "$T/wrk-cg-$name.txt")"
  local path=0 writer=0
  # `-d` writes OUT.1-TT, one per thread.
  for f in "$out".1-*; do
    ir=$(awk -F': ' '$1 == "summary" || $1 == "totals" {print $2; exit}' "$f")
    if grep -qE 'journal::(Writer|store::Batch)' "$f"; then writer=$((writer + ${ir:-0})); else path=$((path + ${ir:-0})); fi
  done
  [[ "$path" -gt 0 && "${CG_REQS:-0}" -gt 0 ]] || die "callgrind $name: $path instructions, '$CG_REQS' requests"
  CG_PATH=$((path / CG_REQS)); CG_WRITER=$((writer / CG_REQS))
}

callgrind() {
  echo "### callgrind: instructions per request (one worker; wrk -t1 -c8, ${DUR} s; 300-byte form POST)"
  echo
  echo "| target | request path | vs recording off | journal writer thread | requests |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  local target base
  declare -A IR=()
  for target in pass-off pass-on sc-off sc-on; do
    measure "$target"
    IR[$target]=$CG_PATH
    base=${IR[${target%-*}-off]}
    printf '| %s | %s | %s | %s | %s |\n' "$target" "$CG_PATH" \
      "$(python3 -c "print(f'{$CG_PATH / $base:.3f}x')")" "$CG_WRITER" "$CG_REQS"
  done
  echo
  echo "The request path is every thread but the journal's writer (worker, control, runtime"
  echo "threads); the writer parses the captured body starts and inserts the records into SQLite,"
  echo "in batches, off the request path."
  echo
}

wall() {
  local target round
  for target in "${TARGETS[@]}"; do
    config "$target" "${PORT[$target]}" >"$T/$target.toml"
    start "$target" "$SHIM_BIN" run --config "$T/$target.toml"
  done
  for target in "${TARGETS[@]}"; do wait_port "${PORT[$target]}"; done
  # sc-full: lock its journal, then fill its queue (16,384) before measuring.
  curl -s -o /dev/null -X POST -d "$FORM" "http://127.0.0.1:${PORT[sc-full]}$PATH_API"
  sleep 1
  hold_lock "$T/state-sc-full-${PORT[sc-full]}/journal.sqlite"
  sleep 1
  wrk -t2 -c64 -d5s -s "$WRK_SCRIPT" "http://127.0.0.1:${PORT[sc-full]}$PATH_API" >/dev/null
  : >"$T/wall.tsv"
  for round in $(seq 1 "$ROUNDS"); do
    for target in "${TARGETS[@]}"; do
      wrk -t2 -c64 -d"${DUR}s" --latency -s "$WRK_SCRIPT" "http://127.0.0.1:${PORT[$target]}$PATH_API" \
        >"$T/wrk-$target-$round.txt"
      read -r rps p50 p99 errors _ <<<"$(python3 "$BENCH_LIB/summarize.py" wrk "$T/wrk-$target-$round.txt")"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$round" "$rps" "$p50" "$p99" "$errors" >>"$T/wall.tsv"
    done
  done
  local dropped
  dropped=$(curl -s "http://127.0.0.1:$((PORT[sc-full] + 10))/metrics" |
    awk '$1 == "webcollect_shim_journal_dropped_total" {print $2}')
  echo "### wall clock: wrk -t2 -c64, $ROUNDS interleaved rounds of ${DUR} s; medians"
  echo
  python3 - "$T/wall.tsv" "$dropped" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    target, _, rps, p50, p99, errors = line.split("\t")
    rows[target].append((float(rps), float(p50), float(p99), int(errors)))
print("| target | req/s | p50 µs | p99 µs | failed | req/s vs off |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
med = {t: [statistics.median(x[i] for x in v) for i in range(3)] for t, v in rows.items()}
for t, v in rows.items():
    base = med[t.split("-")[0] + "-off"][0]
    print(f"| {t} | {med[t][0]:.0f} | {med[t][1]:.0f} | {med[t][2]:.0f} | {sum(x[3] for x in v)} | {med[t][0] / base:.3f}x |")
print()
print(f"sc-full: {sys.argv[2]} records dropped (webcollect_shim_journal_dropped_total) while its journal was locked.")
PY
  echo
}

echo "## bench/journal.sh — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "shim: $SHIM_DESC"
echo "machine: $(nproc) cores, $(uname -r)"
echo
[[ "$MODE" == wall ]] || callgrind
[[ "$MODE" == callgrind ]] || wall
