#!/usr/bin/env bash
# Profiles the shim on the two hot paths of bench/run.sh (pass-through of a 1 KiB body, and the
# 158-byte short-circuit), for the targets RESULTS.md reports as missed.
#
#   bench/profile.sh perf        sampling (perf record -e cpu-clock) at full load (wrk -c64)
#   bench/profile.sh callgrind   instruction counts (valgrind --tool=callgrind) under light load
#   bench/profile.sh syscalls    syscalls, context switches, CPU per request: shim vs nginx
#   bench/profile.sh stream      streaming 1 GiB each way: syscalls, bytes per syscall, top symbols
#   bench/profile.sh             perf, callgrind and syscalls (not stream)
#
# `perf stat -e instructions` is not supported on this VM (no hardware counters), so perf
# samples the cpu-clock software event. callgrind counts instructions per request: its counters
# are zeroed after a warm-up and dumped after the measured load, so start-up is excluded.
# Output: a report on stdout; raw data stays in the printed temp dir. Loopback only; bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MODE="${1:-all}"
DUR="${DUR:-10}"
export RUST_LOG="${RUST_LOG:-warn}"
export PATH="$HOME/.cargo/bin:$PATH"
P_UP=28181; P_PASS=28184; P_SC=28185
SHIM="$ROOT/target/release/webcollect-shim"
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

command -v perf >/dev/null || { [[ "$MODE" == callgrind ]] || { log "perf missing (apt-get install linux-perf)"; exit 1; }; }
command -v valgrind >/dev/null || { [[ "$MODE" == perf ]] || { log "valgrind missing (apt-get install valgrind)"; exit 1; }; }
if [[ "${NO_BUILD:-0}" != 1 ]]; then (cd "$ROOT" && cargo build --release --quiet); fi

T="$(mktemp -d /tmp/webcollect-profile.XXXXXX)"; chmod 755 "$T"
PIDS=()
cleanup() {
  trap - EXIT
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  log "raw data kept in $T"
}
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; log "no listener on $1"; exit 1; }

mkdir -p "$T/up" "$T/www"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 >"$T/www/1k.bin"; chmod -R a+rX "$T/www"
cat >"$T/up/nginx.conf" <<EOF
worker_processes auto;
pid $T/up/nginx.pid;
error_log $T/up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $T/up/body;
  proxy_temp_path $T/up/proxy;
  keepalive_timeout 300s; keepalive_requests 100000000;
  open_file_cache max=16 inactive=300s;
  sendfile on;
  server {
    listen 127.0.0.1:$P_UP backlog=4096; root $T/www;
    location = /big.bin { }
    location / { try_files /1k.bin =404; }
  }
}
EOF
nginx -p "$T/up" -e "$T/up/error.log" -c "$T/up/nginx.conf" -g 'daemon off;' >"$T/nginx.out" 2>&1 &
UP_PID=$!; PIDS+=("$UP_PID")
# nginx as the competitor (same settings as run.sh), for the syscall comparison.
P_NGX=28182; P_NGX_SC=28186
mkdir -p "$T/ngx"
printf '<?xml version="1.0" encoding="UTF-8"?>\n<return>\n<returnCode>1</returnCode>\n<errorCode>Z01000000</errorCode>\n<returnDate>20200420023000</returnDate>\n</return>\n' >"$T/maint.xml"
MAINT_NGINX="$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$T/maint.xml" | awk '{printf "%s\\n", $0}')"
cat >"$T/ngx/nginx.conf" <<EOF
worker_processes auto;
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $T/ngx/body;
  proxy_temp_path $T/ngx/proxy;
  keepalive_timeout 300s; keepalive_requests 100000000;
  upstream up { server 127.0.0.1:$P_UP; keepalive 64; keepalive_requests 100000000; keepalive_timeout 300s; }
  server {
    listen 127.0.0.1:$P_NGX backlog=4096;
    location / {
      proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto http;
    }
  }
  server {
    listen 127.0.0.1:$P_NGX_SC backlog=4096;
    location / { default_type "text/xml; charset=UTF-8"; add_header Cache-Control no-store; return 200 "$MAINT_NGINX"; }
  }
}
EOF
nginx -p "$T/ngx" -e "$T/ngx/error.log" -c "$T/ngx/nginx.conf" -g 'daemon off;' >"$T/nginx-proxy.out" 2>&1 &
NGX_PID=$!; PIDS+=("$NGX_PID")
shim_config() { # $1 port, $2 extra
  cat <<EOF
[listen]
proxy = "127.0.0.1:$1"
admin = "127.0.0.1:$(($1 + 10))"
[server]
watch_config = false
[upstreams.up]
url = "http://127.0.0.1:$P_UP"
[[routes]]
id = "bench"
path_prefix = "/"
kind = "api"
service = "bench.api"
upstream = "up"
$2
EOF
}
shim_config $P_PASS "" >"$T/pass.toml"
shim_config $P_SC '
[[windows]]
id = "bench-now"
start = "2000-01-01T00:00:00+09:00"
end = "2100-01-01T00:00:00+09:00"
services = ["bench.api"]' >"$T/sc.toml"
wait_port $P_UP
set +o pipefail   # report pipelines end in `head`

perf_one() { # $1 name, $2 port, $3 config
  "$SHIM" run --config "$3" >"$T/shim-$1.out" 2>&1 &
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

callgrind_one() { # $1 name, $2 port, $3 config
  local out="$T/callgrind-$1.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no --separate-threads=no \
    "$SHIM" run --config "$3" >"$T/shim-cg-$1.out" 2>&1 &
  local pid=$!; PIDS+=("$pid"); wait_port "$2"
  wrk -t1 -c8 -d3s "http://127.0.0.1:$2/api/creditToken" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  timeout $((DUR + 30)) wrk -t1 -c8 -d"${DUR}s" "http://127.0.0.1:$2/api/creditToken" >"$T/wrk-cg-$1.txt"
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local reqs dump ir
  reqs=$(awk '/requests in/ {print $1}' "$T/wrk-cg-$1.txt")
  dump=$(ls -t "$out".* 2>/dev/null | grep -v '\.out$' | head -1 || true)
  [[ -n "$dump" ]] || dump=$(ls -t "$out"* | head -1)
  ir=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
  echo "### callgrind ($1): $reqs requests measured, $ir instructions, $(awk -v a="$ir" -v b="$reqs" 'BEGIN{printf "%.0f", a/b}') instructions per request (user space, shim process)"
  echo
  echo '```'
  echo "# exclusive (self) instructions per request, top 20"
  python3 "$HERE/cg_summary.py" "$dump" "$reqs" exclusive 20
  echo
  echo "# inclusive instructions per request: the shim's functions and the main library calls"
  python3 "$HERE/cg_summary.py" "$dump" "$reqs" inclusive 22 \
    'webcollect_shim::(proxy|response|metrics|decide|routes|clock)|DelayedFormat<I> as|Checkout<T,K> as|UpgradeableConnection<I,B> as|Client as hyper::proto::h1::Http1Transaction|Server as hyper::proto::h1::Http1Transaction|send_request::|HeaderMap<T>::remove'
  echo '```'
  echo
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
  "$SHIM" run --config "$T/pass.toml" >"$T/shim-sys-pass.out" 2>&1 & local p1=$!; PIDS+=("$p1")
  "$SHIM" run --config "$T/sc.toml" >"$T/shim-sys-sc.out" 2>&1 & local p2=$!; PIDS+=("$p2")
  wait_port $P_PASS; wait_port $P_SC; wait_port $P_NGX; wait_port $P_NGX_SC
  local ngx; ngx=$(pgrep -P "$NGX_PID" | paste -sd, -)
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
    syscalls_one "direct (upstream nginx) at 2000 rps" $P_UP "$(pgrep -P "$UP_PID" | paste -sd, -)" 2000
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
  local mib=${STREAM_MIB:-1024} P_ST=28188 P_SINK=28189
  head -c $((mib * 1024 * 1024)) /dev/urandom >"$T/www/big.bin"; chmod a+r "$T/www/big.bin"
  rustc -O --edition 2021 -o "$T/sink" "$HERE/sink.rs"
  "$T/sink" 127.0.0.1:$P_SINK >/dev/null 2>&1 & PIDS+=("$!")
  cat >"$T/stream.toml" <<EOF
[listen]
proxy = "127.0.0.1:$P_ST"
admin = "127.0.0.1:$((P_ST + 10))"
[server]
watch_config = false
max_request_body = 4294967296
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
EOF
  "$SHIM" run --config "$T/stream.toml" >"$T/shim-stream.out" 2>&1 & local pid=$!; PIDS+=("$pid")
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
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
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
  callgrind_one pass $P_PASS "$T/pass.toml"
  callgrind_one short-circuit $P_SC "$T/sc.toml"
fi
