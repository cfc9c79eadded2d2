#!/usr/bin/env bash
# What issue 10's pass-through targets ask of hyper itself. Six pass-through proxies in front of
# the same upstream, in one run:
#
#   nginx      proxy_pass with upstream keep-alive (run.sh's competitor, the same config)
#   nginx-h    the same plus what it lacks of the contract's header work: the loop check,
#              X-Forwarded-Host, Via, and an X-Request-Id kept or generated, forwarded and echoed
#              (nginx strips hop-by-hop fields and sets Host and X-Forwarded-For in both). The
#              generated id is pid-connection-request, as cheap as the shim's counter; nginx's
#              random $request_id would cost it far more.
#   bare       bench/calibration: the shim's threading model (a current_thread runtime per
#              worker, SO_REUSEPORT, per-worker hyper http1 pools) and nothing else
#   headers    bare plus the header work the contract requires of every forwarded request and
#              answer (loop check, hop-by-hop, Host, X-Forwarded-*, Via, X-Request-Id)
#   tower      headers behind the shape issue 10 asks for: eight tower layers (tower-http's
#              CatchPanic, then seven that only pass things on) and hyper-util's tower glue
#   shim       webcollect-shim (SHIM=path, or target/profiling as in run.sh)
#
#   bench/calibrate.sh wall        req/s and CPU per request at full load (wrk -t2 -c64),
#                                  ROUNDS (5) interleaved rounds of DUR (5) s; medians and ratios
#   bench/calibrate.sh callgrind   user-space instructions per request, each server under
#                                  valgrind --tool=callgrind with one worker (nginx:
#                                  master_process off, one worker process), wrk -t1 -c8 for DUR s
#                                  after a 3 s warm-up, as profile.sh counts the shim: GETs,
#                                  then the 300-byte form POST (lib.sh's FORM, as a merchant
#                                  posts to the API) to nginx, nginx-h, tower and the shim;
#                                  the short-circuit (below) with GETs and with the POST
#   bench/calibrate.sh             both
#
# The short-circuit's targets: nginx-return (nginx's `return 200` with the 158-byte XML),
# tower-short (bench/calibration's eight layers answering it, after reading a request body to
# its end as the shim does) and shim-short (the shim in a window). The upstream answers POSTs
# with the same 1 KiB as GETs (lib.sh's nginx_upstream_conf).
#
# CPU per request is the server's utime + stime (the process and its children) over the round,
# divided by the requests wrk counted; failed requests are wrk's non-2xx answers and socket
# errors (summarize.py). Workers: SHIM_WORKERS (default: the cores), for every server.
# Loopback only; every process started here is stopped on exit. KEEP=1 keeps the temp dir.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
MODE="${1:-all}"
ROUNDS="${ROUNDS:-5}"
DUR="${DUR:-5}"
WORKERS="${SHIM_WORKERS:-$(nproc)}"
export RUST_LOG="${RUST_LOG:-warn}"
export PATH="$HOME/.cargo/bin:$PATH"
TARGETS=(nginx nginx-h bare headers tower shim)
P_UP=28281; P_SINK=28289   # the shim's config names a sink route; nothing here uses it
P_SHORT=28291               # tower-short
declare -A PORT=([nginx]=28282 [nginx-h]=28287 [bare]=28283 [headers]=28284 [tower]=28286 [shim]=28285)

case "$MODE" in wall | callgrind | all) ;; *) die "unknown mode '$MODE' (wall, callgrind)" ;; esac
for tool in nginx wrk curl python3; do command -v "$tool" >/dev/null || die "$tool missing"; done
[[ "$MODE" == wall ]] || command -v valgrind >/dev/null || die "valgrind missing (apt-get install valgrind)"

bench_tmpdir webcollect-calibrate
bench_binaries
log "cargo build --release (bench/calibration)"
(cd "$HERE/calibration" && cargo build --release --quiet)
cp "$HERE/calibration/target/release/webcollect-shim-calibration" "$T/bin/calibration"
# nginx's short-circuit server block (unused here) listens on its port + 100.
ports_free $P_UP $P_SHORT "${PORT[@]}" $((PORT[shim] + 10)) $((PORT[nginx] + 100)) $((PORT[nginx-h] + 100))
bench_bodies
form_lua "$T/post.lua"
start_nginx nginx-up nginx_upstream_conf
SHIM_WORKERS=$WORKERS shim_config "${PORT[shim]}" "" >"$T/shim-$WORKERS.toml"
SHIM_WORKERS=1 shim_config "${PORT[shim]}" "" >"$T/shim-1.toml"
SHIM_WORKERS=1 shim_config "${PORT[shim]}" "$WINDOW_NOW" >"$T/shim-short.toml"
wait_port $P_UP

# Sets CMD to the command line of target $1 with $2 workers. Under callgrind ($2 = 1) nginx
# runs as one process (no master) with one worker, in the foreground.
command_of() {
  case "$1" in
    nginx | nginx-h)
      local dir="$T/$1-$2" conf=nginx_proxy_conf processes="worker_processes $2;"
      [[ $1 == nginx ]] || conf=nginx_headers_conf
      [[ $2 != 1 ]] || processes="worker_processes 1; master_process off;"
      mkdir -p "$dir"
      "$conf" "$dir" "${PORT[$1]}" "$((PORT[$1] + 100))" >"$dir/nginx.conf"
      sed -i "s/^worker_processes auto;/$processes/" "$dir/nginx.conf"
      CMD=(nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;') ;;
    bare) CMD=("$T/bin/calibration" "127.0.0.1:${PORT[bare]}" "127.0.0.1:$P_UP" "$2") ;;
    headers | tower) CMD=("$T/bin/calibration" "127.0.0.1:${PORT[$1]}" "127.0.0.1:$P_UP" "$2" "$1") ;;
    shim) CMD=("$SHIM_BIN" run --config "$T/shim-$2.toml") ;;
  esac
}

# ---------------------------------------------------------------- wall clock
wall() {
  local t
  for t in "${TARGETS[@]}"; do
    command_of "$t" "$WORKERS"
    start "$t" "${CMD[@]}"
  done
  for t in "${TARGETS[@]}"; do wait_port "${PORT[$t]}"; done
  : >"$T/wall.tsv"
  for t in "${TARGETS[@]}"; do wrk -t2 -c64 -d2s "http://127.0.0.1:${PORT[$t]}$PATH_API" >/dev/null; done
  local round a b out v
  for round in $(seq 1 "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
      out="$T/wrk-$t-r$round.txt"
      a=$(group_ticks "${PID[$t]}")
      timeout $((DUR + 30)) wrk -t2 -c64 -d"${DUR}s" --latency "http://127.0.0.1:${PORT[$t]}$PATH_API" >"$out"
      b=$(group_ticks "${PID[$t]}")
      # req/s p50 p99 errors requests
      read -r -a v <<<"$(python3 "$HERE/summarize.py" wrk "$out")"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$t" "${v[4]}" "${v[0]}" \
        "$(((b - a) * 1000000 / HZ))" "${v[3]}" >>"$T/wall.tsv"
      log "round $round $t: ${v[0]} req/s"
    done
  done
  for t in "${TARGETS[@]}"; do stop "$t"; done
  echo "### Pass-through at full load: $WORKERS workers each, wrk -t2 -c64, $ROUNDS rounds of ${DUR}s, targets interleaved"
  echo
  python3 - "$T/wall.tsv" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines() if line]
targets = ["nginx", "nginx-h", "bare", "headers", "tower", "shim"]
rps, cpu, ratio, cpu_ratio = {}, {}, {}, {}
by_round = {}
errors = {}
for rnd, t, reqs, rate, cpu_us, failed in rows:
    by_round.setdefault(rnd, {})[t] = (float(rate), int(cpu_us) / int(reqs))
    errors[t] = errors.get(t, 0) + int(failed)
for rnd, got in by_round.items():
    for t, (rate, per) in got.items():
        rps.setdefault(t, []).append(rate)
        cpu.setdefault(t, []).append(per)
        if "nginx" in got:
            ratio.setdefault(t, []).append(rate / got["nginx"][0])
            cpu_ratio.setdefault(t, []).append(per / got["nginx"][1])
print("| target | req/s (median) | req/s vs nginx (median of rounds) | range of rounds | CPU µs/req (median) | CPU vs nginx | failed requests |")
print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
for t in targets:
    if t not in rps:
        continue
    r = ratio[t]
    print(f"| {t} | {statistics.median(rps[t]):,.0f} | {statistics.median(r):.2f}× | "
          f"{min(r):.2f}–{max(r):.2f}× | {statistics.median(cpu[t]):.1f} | {statistics.median(cpu_ratio[t]):.2f}× | "
          f"{errors[t]:,} |")
PY
  echo
}

# ---------------------------------------------------------------- callgrind
# One target under callgrind, one worker; a line "target requests instructions" in $3. $2 is
# GET or POST (the form, through wrk's Lua script).
callgrind_one() { # $1 target, $2 method, $3 TSV
  local t=$1 name=$1 port
  case "$t" in
    nginx-return) command_of nginx 1; port=$((PORT[nginx] + 100)) ;;
    tower-short)
      CMD=("$T/bin/calibration" "127.0.0.1:$P_SHORT" "127.0.0.1:$P_UP" 1 tower-short)
      port=$P_SHORT ;;
    shim-short) CMD=("$SHIM_BIN" run --config "$T/shim-short.toml"); port=${PORT[shim]} ;;
    *) command_of "$t" 1; port=${PORT[$t]} ;;
  esac
  WRK_SCRIPT=""
  if [[ "$2" == POST ]]; then name+="-post"; WRK_SCRIPT="$T/post.lua"; fi
  callgrind_measure "$name" "$T/callgrind-$name.out" "$port" "http://127.0.0.1:$port$PATH_API" "${CMD[@]}"
  WRK_SCRIPT=""
  [[ "$CG_FAILED" == 0 ]] || die "callgrind $name: $CG_FAILED failed requests (see $T/wrk-cg-$name.txt)"
  printf '%s\t%s\t%s\n' "$t" "$CG_REQS" "$CG_IR" >>"$3"
  log "callgrind $name: $((CG_IR / CG_REQS)) instructions per request"
}
# The pass-through table of a TSV: instructions per request, vs nginx, and what each target
# adds to the one it is built on (tower to nginx-h when headers is not in the table).
pass_table() { # $1 TSV
  python3 - "$1" <<'PY'
import sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines() if line]
per = {t: int(ir) / int(reqs) for t, reqs, ir in rows}
base = {"nginx-h": "nginx", "bare": "nginx", "headers": "bare", "tower": "headers", "shim": "tower"}
if "headers" not in per:
    base["tower"] = "nginx-h"
print("| target | requests | instructions per request | vs nginx | added to |")
print("| --- | ---: | ---: | ---: | --- |")
for t, reqs, _ in rows:
    b = base.get(t)
    added = f"{per[t] - per[b]:+,.0f} over {b}" if b in per else ""
    print(f"| {t} | {int(reqs):,} | {per[t]:,.0f} | {per[t] / per['nginx']:.2f}× | {added} |")
PY
}
short_table() { # $1 TSV
  python3 - "$1" <<'PY'
import sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines() if line]
per = {t: int(ir) / int(reqs) for t, reqs, ir in rows}
print("| target | requests | instructions per request | vs nginx-return | vs tower-short |")
print("| --- | ---: | ---: | ---: | ---: |")
for t, reqs, _ in rows:
    print(f"| {t} | {int(reqs):,} | {per[t]:,.0f} | {per[t] / per['nginx-return']:.2f}× | {per[t] / per['tower-short']:.2f}× |")
PY
}
CG_HOW="callgrind, one worker, wrk -t1 -c8, ${DUR}s after a 3 s warm-up"
callgrind_all() {
  local t
  : >"$T/cg.tsv"
  for t in "${TARGETS[@]}"; do callgrind_one "$t" GET "$T/cg.tsv"; done
  : >"$T/cg-post.tsv"
  for t in nginx nginx-h tower shim; do callgrind_one "$t" POST "$T/cg-post.tsv"; done
  echo "### Pass-through, GET, user-space instructions per request ($CG_HOW)"
  echo
  pass_table "$T/cg.tsv"
  echo
  echo "### Pass-through, 300-byte form POST, user-space instructions per request ($CG_HOW)"
  echo
  pass_table "$T/cg-post.tsv"
  echo
}

# The short-circuit: what answering the 158 bytes costs each, one worker, GET and POST.
callgrind_short() {
  local t m
  for m in GET POST; do
    : >"$T/cg-short-$m.tsv"
    for t in nginx-return tower-short shim-short; do callgrind_one "$t" "$m" "$T/cg-short-$m.tsv"; done
  done
  echo "### Short-circuit, GET, user-space instructions per request ($CG_HOW)"
  echo
  short_table "$T/cg-short-GET.tsv"
  echo
  echo "### Short-circuit, 300-byte form POST, user-space instructions per request ($CG_HOW)"
  echo
  short_table "$T/cg-short-POST.tsv"
  echo
}

echo "shim: $SHIM_DESC"
echo "calibration: bench/calibration at $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); $(nginx -v 2>&1); $(nproc) cores"
echo
[[ "$MODE" == callgrind ]] || wall
[[ "$MODE" == wall ]] || callgrind_all
[[ "$MODE" == wall ]] || callgrind_short
