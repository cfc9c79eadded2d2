#!/usr/bin/env bash
# Memory per idle keep-alive HTTP/1.1 connection (issue 28 item 4), alone: bench/run.sh's
# scenario 5 without the rest of the run. The shim (2 workers, pass-through to a local nginx
# answering 1 KiB) gets IDLE_CONNS connections from bench/hold_conns.py, each sending one GET,
# reading the answer, then staying idle; memory per connection = (RSS holding them − RSS
# before) / IDLE_CONNS. Also printed: the peak (VmHWM), and the RSS once the connections are
# closed again (what the process keeps after they are gone: allocator caches, fragmentation).
#
#   bench/idle.sh                 the current tree's target/profiling build
#   SHIM=path bench/idle.sh       that binary; BEFORE=path adds a second one, measured after
#   VALGRIND=dhat bench/idle.sh   under valgrind's dhat (or VALGRIND=massif), with
#                                 IDLE_CONNS=500 unless set: heap per connection while held
#
# Knobs: IDLE_CONNS (5000), HOLD (seconds held after all are open, 4), SHIM_WORKERS (2),
# NO_BUILD=1, KEEP=1 (keep the temp dir: configs, outputs, valgrind files). The shim's
# keepalive_timeout and header_read_timeout are 300 s, so nothing closes during the hold.
# Loopback only; bounded in time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
VALGRIND="${VALGRIND:-}"
IDLE_CONNS="${IDLE_CONNS:-$([[ -n "$VALGRIND" ]] && echo 500 || echo 5000)}"
HOLD="${HOLD:-4}"
SHIM_WORKERS="${SHIM_WORKERS:-2}"
export RUST_LOG="${RUST_LOG:-warn}"
P_UP=28481; P_SINK=28489; P_IDLE=28490
case "$VALGRIND" in "" | dhat | massif) ;; *) die "VALGRIND must be dhat or massif" ;; esac
[[ -z "$VALGRIND" ]] || command -v valgrind >/dev/null || die "valgrind missing"

bench_tmpdir webcollect-idle
bench_binaries
ports_free $P_UP $P_IDLE $((P_IDLE + 10))
ulimit -n "$(ulimit -Hn)"
((IDLE_CONNS + 200 <= $(ulimit -n))) || die "IDLE_CONNS=$IDLE_CONNS needs more open files than $(ulimit -n)"
bench_bodies
start_nginx up nginx_upstream_conf
wait_port $P_UP
shim_config $P_IDLE "" 'keepalive_timeout = "300s"
header_read_timeout = "300s"' >"$T/idle.toml"

rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

measure() { # $1 = name, $2 = binary
  local name=$1 bin=$2 pid before held hwm after hold_out="$T/hold-$1.out"
  local cmd=("$bin" run --config "$T/idle.toml")
  if [[ -n "$VALGRIND" ]]; then
    cmd=(valgrind --tool="$VALGRIND" "--$VALGRIND-out-file=$T/$VALGRIND-$name.out" "${cmd[@]}")
  fi
  start "shim-$name" "${cmd[@]}"
  pid=${PID[shim-$name]}
  wait_port $P_IDLE
  sleep 1
  # Two requests first: the upstream connection, lazy statics and the first buffers are
  # there before the baseline.
  curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$P_IDLE$PATH_API"
  curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$P_IDLE$PATH_API"
  sleep 0.5
  before=$(rss "$pid" VmRSS)
  python3 "$HERE/hold_conns.py" 127.0.0.1 $P_IDLE "$IDLE_CONNS" "$PATH_API" "$((HOLD + 2))" >"$hold_out" 2>&1 &
  local holder=$!; PIDS+=("$holder")
  for _ in $(seq 1 3000); do grep -qs '^ready' "$hold_out" && break; sleep 0.1; done
  grep -q '^ready' "$hold_out" || die "holder not ready: $(cat "$hold_out")"
  sleep "$HOLD"
  held=$(rss "$pid" VmRSS); hwm=$(rss "$pid" VmHWM)
  wait "$holder" || true
  sleep 1
  after=$(rss "$pid" VmRSS)
  log "$name: $(grep '^ready' "$hold_out"); $(grep '^done' "$hold_out" || echo 'done ?')"
  if [[ -n "$VALGRIND" ]]; then
    # The dhat/massif file is written at exit; the peak is while the connections are held.
    stop "shim-$name"
    echo "$name under $VALGRIND: $T/$VALGRIND-$name.out (RSS under valgrind is not comparable)"
  else
    stop "shim-$name"
    awk -v n="$IDLE_CONNS" -v b="$before" -v h="$held" -v p="$hwm" -v a="$after" -v s="$name" 'BEGIN {
      printf "%s: RSS before %d KiB, holding %d KiB (peak %d), after closing %d KiB; per connection %.1f KiB\n",
        s, b, h, p, a, (h - b) / n }'
  fi
}

echo "IDLE_CONNS=$IDLE_CONNS HOLD=${HOLD}s SHIM_WORKERS=$SHIM_WORKERS; shim: $SHIM_DESC"
measure shim "$SHIM_BIN"
if [[ -n "$BEFORE_BIN" ]]; then
  echo "before: $BEFORE_DESC"
  measure before "$BEFORE_BIN"
fi
