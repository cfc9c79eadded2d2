#!/usr/bin/env python3
"""Helpers for bench/run.sh.

  summarize.py wrk FILE    -> "req_s p50_us p99_us errors" from `wrk --latency` output
  summarize.py oha FILE    -> "req_s p50_us p99_us p999_us errors" from `oha --output-format json`
  summarize.py table TSV   -> Markdown tables of medians and ratios, and the issue's targets

The TSV has one line per run: scenario, target, round, values... (see run.sh).
"""

import json
import re
import statistics
import sys
from collections import defaultdict

UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNITS_US[m.group(2)]


def parse_wrk(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = {}
    for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", text, re.M):
        pct[p] = to_us(v)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    total = int(re.search(r"(\d+) requests in", text).group(1))
    print(f"{rps:.0f} {pct['50']:.0f} {pct['99']:.0f} {errors} {total}")


def parse_oha(path):
    data = json.load(open(path))
    lp = data["latencyPercentiles"]
    rps = data["summary"]["requestsPerSec"]
    ok = sum(v for k, v in data.get("statusCodeDistribution", {}).items() if k.startswith("2"))
    total = ok + sum(v for k, v in data.get("statusCodeDistribution", {}).items() if not k.startswith("2"))
    errors = (total - ok) + sum(data.get("errorDistribution", {}).values())
    total = sum(data.get("statusCodeDistribution", {}).values())
    print(f"{rps:.0f} {lp['p50'] * 1e6:.0f} {lp['p99'] * 1e6:.0f} {lp['p99.9'] * 1e6:.0f} {errors} {total}")


def med(values):
    return statistics.median(values) if values else float("nan")


def fmt(x, digits=0):
    if x != x:  # NaN
        return "–"
    return f"{x:,.{digits}f}"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def table(path):
    runs = defaultdict(list)  # (scenario, target) -> list of value lists
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 4:
            continue
        scen, target, _round = parts[0], parts[1], parts[2]
        vals = []
        for v in parts[3:]:
            try:
                vals.append(float(v))
            except ValueError:
                vals.append(float("nan"))
        runs[(scen, target)].append(vals)

    def col(scen, target, i):
        return med([v[i] for v in runs.get((scen, target), []) if len(v) > i])

    def rounds(scen, target, i, digits=0):
        return " / ".join(fmt(v[i], digits) for v in runs.get((scen, target), []))

    targets = []

    # Scenario 1
    if any(s == "s1" for s, _ in runs):
        print("### 1. Pass-through, HTTP/1.1 keep-alive, 64 connections (wrk -t2 -c64)\n")
        print("| target | req/s (median) | req/s per round | p50 µs | p99 µs | errors | server CPU µs/req | req/s vs nginx | p99 vs nginx |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        n_rps, n_p99 = col("s1", "nginx", 0), col("s1", "nginx", 2)
        for t in ["shim", "nginx", "haproxy", "direct"]:
            if ("s1", t) not in runs:
                continue
            rps, p50, p99, cpu = col("s1", t, 0), col("s1", t, 1), col("s1", t, 2), col("s1", t, 5)
            errs = sum(v[3] for v in runs[("s1", t)])
            print(f"| {t} | {fmt(rps)} | {rounds('s1', t, 0)} | {fmt(p50)} | {fmt(p99)} | {fmt(errs)} | {fmt(cpu, 1)} "
                  f"| {rps / n_rps:.2f} | {p99 / n_p99:.2f} |")
        print("\nserver CPU: user + system time of the proxy's processes (for direct: the upstream nginx) per request.")
        print()
        s_rps, s_p99 = col("s1", "shim", 0), col("s1", "shim", 2)
        targets.append(("pass-through throughput ≥ nginx", s_rps >= n_rps,
                        f"shim {fmt(s_rps)} req/s vs nginx {fmt(n_rps)} ({s_rps / n_rps:.2f}×)"))
        targets.append(("pass-through p99 ≤ nginx", s_p99 <= n_p99,
                        f"shim {fmt(s_p99)} µs vs nginx {fmt(n_p99)} µs ({s_p99 / n_p99:.2f}×)"))

    # Scenario 2
    if any(s == "s2" for s, _ in runs):
        print("### 2. Short-circuit: 158-byte maintenance XML, 64 connections (wrk -t2 -c64)\n")
        print("| target | req/s (median) | req/s per round | p50 µs | p99 µs | errors | server CPU µs/req | req/s vs nginx |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        n_rps = col("s2", "nginx", 0)
        for t in ["shim", "nginx", "haproxy"]:
            if ("s2", t) not in runs:
                continue
            rps, p50, p99, cpu = col("s2", t, 0), col("s2", t, 1), col("s2", t, 2), col("s2", t, 5)
            errs = sum(v[3] for v in runs[("s2", t)])
            print(f"| {t} | {fmt(rps)} | {rounds('s2', t, 0)} | {fmt(p50)} | {fmt(p99)} | {fmt(errs)} | {fmt(cpu, 1)} | {rps / n_rps:.2f} |")
        print()
        s_rps = col("s2", "shim", 0)
        targets.append(("short-circuit throughput ≥ nginx", s_rps >= n_rps,
                        f"shim {fmt(s_rps)} req/s vs nginx {fmt(n_rps)} ({s_rps / n_rps:.2f}×)"))

    # Scenario 3
    if any(s == "s3" for s, _ in runs):
        print("### 3. Fixed rate (oha -q RATE -c 32 --latency-correction -w): latency and added latency over direct\n")
        print("| target | achieved req/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | added p99.9 µs | errors | server CPU µs/req |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        d = [col("s3", "direct", i) for i in range(4)]
        for t in ["direct", "shim", "nginx", "haproxy"]:
            if ("s3", t) not in runs:
                continue
            v = [col("s3", t, i) for i in range(4)]
            errs = sum(x[4] for x in runs[("s3", t)])
            added = "| – | – | – " if t == "direct" else f"| {fmt(v[1] - d[1])} | {fmt(v[2] - d[2])} | {fmt(v[3] - d[3])} "
            print(f"| {t} | {fmt(v[0])} | {fmt(v[1])} | {fmt(v[2])} | {fmt(v[3])} {added}| {fmt(errs)} | {fmt(col('s3', t, 6), 1)} |")
        print()
        print("Per round p50 / p99 / p99.9 (µs):\n")
        for t in ["direct", "shim", "nginx", "haproxy"]:
            if ("s3", t) in runs:
                print(f"- {t}: " + "; ".join(f"{fmt(x[1])} / {fmt(x[2])} / {fmt(x[3])}" for x in runs[("s3", t)]))
        print()
        s = [col("s3", "shim", i) for i in range(4)]
        targets.append(("fixed rate: added p50 ≤ 100 µs", s[1] - d[1] <= 100,
                        f"shim p50 {fmt(s[1])} µs − direct {fmt(d[1])} µs = {fmt(s[1] - d[1])} µs"))
        targets.append(("fixed rate: added p99 ≤ 400 µs", s[2] - d[2] <= 400,
                        f"shim p99 {fmt(s[2])} µs − direct {fmt(d[2])} µs = {fmt(s[2] - d[2])} µs"))

    # Scenario 4
    if any(s == "s4" for s, _ in runs):
        print("### 4. Streaming (curl, one connection; nginx and HAProxy unbuffered, as a reference)\n")
        print("| direction | direct MiB/s | shim MiB/s | nginx MiB/s | haproxy MiB/s | shim / direct | nginx / direct | haproxy / direct |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        ratios = {}
        for d in ["download", "upload"]:
            v = {t: col("s4", f"{d}-{t}", 0) for t in ["direct", "shim", "nginx", "haproxy"]}
            ratios[d] = v["shim"] / v["direct"]
            print(f"| {d} | {fmt(v['direct'])} | {fmt(v['shim'])} | {fmt(v['nginx'])} | {fmt(v['haproxy'])} "
                  f"| {v['shim'] / v['direct']:.0%} | {v['nginx'] / v['direct']:.0%} | {v['haproxy'] / v['direct']:.0%} |")
        print("\nPer round (MiB/s):\n")
        for d in ["download", "upload"]:
            for t in ["direct", "shim", "nginx", "haproxy"]:
                if (f"s4", f"{d}-{t}") in runs:
                    print(f"- {d} {t}: {rounds('s4', d + '-' + t, 0)}")
        hwm = col("s4-rss", "shim", 0)
        print(f"\nShim peak RSS over the streaming runs (VmHWM of a fresh process): {hwm / 1024:.1f} MiB\n")
        for d in ["download", "upload"]:
            targets.append((f"streaming {d} ≥ 90 % of direct", ratios[d] >= 0.9, f"{ratios[d]:.0%}"))
        targets.append(("streaming peak RSS < 64 MiB", hwm < 64 * 1024, f"{hwm / 1024:.1f} MiB"))

    # Scenario 5
    if any(s == "s5" for s, _ in runs):
        v = runs[("s5", "shim")][0]
        idle_start, idle_one, held, hwm, cpu, fds, opened, alive = v[:8]
        print("### 5. Idle keep-alive connections (fresh shim process)\n")
        print("| idle RSS at start | after 1 request | RSS holding conns | peak RSS | CPU while holding | fds | conns opened | still open at end |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        print(f"| {idle_start / 1024:.1f} MiB | {idle_one / 1024:.1f} MiB | {held / 1024:.1f} MiB | {hwm / 1024:.1f} MiB "
              f"| {cpu:.2f} % of a core | {fmt(fds)} | {fmt(opened)} | {fmt(alive)} |")
        print()
        n = opened or 1
        print(f"Shim memory per held connection: {(held - idle_one) / n:.1f} KiB.")
        for t in ["nginx", "haproxy"]:
            if ("s5-ref", t) in runs:
                before, held_t, cpu_t, opened_t = runs[("s5-ref", t)][0][:4]
                print(f"Reference {t} (master + workers, already warm): RSS {before / 1024:.1f} MiB before, "
                      f"{held_t / 1024:.1f} MiB holding {fmt(opened_t)} connections "
                      f"({(held_t - before) / (opened_t or 1):.1f} KiB per connection), CPU {cpu_t:.2f} % of a core.")
        print()
        targets.append(("idle RSS < 16 MiB", idle_start < 16 * 1024, f"{idle_start / 1024:.1f} MiB at start"))

    if targets:
        print("### Targets\n")
        print("| target | result | numbers |")
        print("| --- | --- | --- |")
        for name, ok, numbers in targets:
            print(f"| {name} | {verdict(ok)} | {numbers} |")


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    {"wrk": parse_wrk, "oha": parse_oha, "table": table}[cmd](path)


if __name__ == "__main__":
    main()
