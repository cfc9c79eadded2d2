#!/usr/bin/env python3
"""Helpers for bench/run.sh.

  summarize.py wrk FILE    -> "req_s p50_us p99_us errors requests" from `wrk --latency` output
  summarize.py oha FILE    -> "req_s p50_us p99_us p999_us errors requests" from `oha --output-format json`
  summarize.py h2load FILE -> "req_s nan nan errors requests" from h2load's report (it has no
                              percentiles)
  summarize.py table TSV   -> Markdown: first one overview table of every scenario with the
                              shim / peer ratios and issue 28's verdicts, then each scenario's
                              medians and ratios, issue 10's targets, and the shim vs before
                              ratios when the run has the target `before`

The TSV has one line per run: scenario, target, round, values... (see run.sh).
"""

import contextlib
import io
import json
import os
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


def parse_h2load(path):
    text = open(path).read()
    rps = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", text).group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text)
    done, succeeded = int(m.group(3)), int(m.group(4))
    errors = sum(int(m.group(i)) for i in (5, 6, 7))
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    errors += sum(int(codes.group(i)) for i in (2, 3, 4))
    ok = int(codes.group(1))
    print(f"{rps:.0f} nan nan {errors} {min(ok, succeeded, done)}")


def med(values):
    return statistics.median(values) if values else float("nan")


def isnan(x):
    return x != x


def fmt(x, digits=0):
    if isnan(x):
        return "–"
    return f"{x:,.{digits}f}"


def signed(x):
    """An added latency: +308 or −42 (a negative one is noise: faster than direct)."""
    if isnan(x):
        return "–"
    return f"+{x:,.0f}" if x >= 0 else f"−{-x:,.0f}"


def ratio(a, b):
    """a / b, NaN when either is missing or negative, or b is zero (added latencies can be < 0)."""
    if isnan(a) or isnan(b) or a < 0 or b <= 0:
        return float("nan")
    return a / b


def fx(r):
    return "–" if isnan(r) else f"{r:.2f}×"


def pct(r):
    return "–" if isnan(r) else f"{r:.0%}"


def verdict(ok, informational=False):
    if ok is None:
        return "no data"
    word = "met" if ok else "missed"
    return f"{word} (informational)" if informational else f"**{word}**"


def check(a, op, b):
    """a op b, or None when either side is missing."""
    if isnan(a) or isnan(b):
        return None
    return a <= b if op == "<=" else a >= b if op == ">=" else a < b


# Targets by scenario, in the order run.sh runs them; `before` (the previous build, BEFORE=...)
# and the others only where the run has them.
S1 = ["shim", "before", "nginx", "nginx-h", "haproxy", "caddy", "direct"]
S2 = ["shim", "before", "nginx", "haproxy", "caddy"]
S3 = ["direct", "shim", "before", "nginx", "haproxy", "caddy"]
S4 = ["direct", "shim", "before", "nginx", "haproxy", "caddy"]
STLS = ["shim", "before", "nginx"]
SHIMS = ["shim", "before"]
RATE_NAME = f"{int(os.environ.get('RATE', '2000')):,} req/s"
PEERS = ["haproxy", "caddy"]
NAMES = {"nginx": "nginx", "nginx-h": "nginx-h", "haproxy": "HAProxy", "caddy": "Caddy"}


def table(path):
    details = io.StringIO()
    with contextlib.redirect_stdout(details):
        runs = details_tables(path)
    overview(runs)
    print(details.getvalue(), end="")


def details_tables(path):
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

    def present(scen, order):
        return [t for t in order if (scen, t) in runs]

    has_before = any(t == "before" or t.endswith("-before") for _, t in runs)
    targets = []  # (name, ok or None, numbers, informational)
    versus = []  # (measure, shim, before, digits): the shim vs before comparison

    # Scenarios 1 and 2: wrk at full load.
    def wrk_scenario(scen, heading, order, path, nginx_name, min_ratio, note="", targets_too=True,
                     tool="wrk -t2 -c64", unit="req"):
        if not any(s == scen for s, _ in runs):
            return
        refs = ["nginx"] + (["nginx-h"] if ("nginx-h" in order and (scen, "nginx-h") in runs) else [])
        print(f"### {heading} ({tool})\n")
        print(f"| target | {unit}/s (median) | {unit}/s per round | p50 µs | p99 µs | errors | server CPU µs/{unit} | "
              + " | ".join(f"{unit}/s vs {r} | p99 vs {r} | CPU vs {r}" for r in refs) + " |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | " + " | ".join("---: | ---: | ---:" for _ in refs) + " |")
        for t in present(scen, order):
            rps, p50, p99, cpu = col(scen, t, 0), col(scen, t, 1), col(scen, t, 2), col(scen, t, 5)
            errs = sum(v[3] for v in runs[(scen, t)])
            vs = " | ".join(f"{fx(ratio(rps, col(scen, r, 0)))} | {fx(ratio(p99, col(scen, r, 2)))} | "
                            f"{fx(ratio(cpu, col(scen, r, 5)))}" for r in refs)
            print(f"| {t} | {fmt(rps)} | {rounds(scen, t, 0)} | {fmt(p50)} | {fmt(p99)} | {fmt(errs)} | {fmt(cpu, 1)} "
                  f"| {vs} |")
        print(f"\n{note}\n" if note else "")
        n_rps, n_cpu = col(scen, "nginx", 0), col(scen, "nginx", 5)
        if not targets_too:
            versus.extend([(f"{path} {unit}/s", col(scen, "shim", 0), col(scen, "before", 0), 0),
                           (f"{path} server CPU µs/{unit}", col(scen, "shim", 5), col(scen, "before", 5), 1)])
            return
        s_rps, s_cpu = col(scen, "shim", 0), col(scen, "shim", 5)
        r = ratio(s_rps, n_rps)
        times = f"{min_ratio:.2f}".rstrip("0")
        times += "0" if times.endswith(".") else ""
        aim = "" if min_ratio >= 1.0 or isnan(r) else f" (aim 1.0×: {'reached' if r >= 1.0 else 'not yet'})"
        targets.append((f"{path} req/s ≥ {times}× nginx {nginx_name}" + ("" if min_ratio >= 1.0 else " (aim 1.0×)"),
                        check(r, ">=", min_ratio), f"shim {fmt(s_rps)} vs nginx {fmt(n_rps)} req/s = {fx(r)}{aim}", False))
        r = ratio(s_cpu, n_cpu)
        targets.append((f"{path} server CPU per request ≤ 1.1× nginx's", check(r, "<=", 1.1),
                        f"shim {fmt(s_cpu, 1)} vs nginx {fmt(n_cpu, 1)} µs/req = {fx(r)}", False))
        versus.extend([(f"{path} req/s", s_rps, col(scen, "before", 0), 0),
                       (f"{path} p99 µs", col(scen, "shim", 2), col(scen, "before", 2), 0),
                       (f"{path} server CPU µs/req", s_cpu, col(scen, "before", 5), 1)])

    wrk_scenario("s1", "1. Pass-through, HTTP/1.1 keep-alive, 64 connections", S1, "pass-through", "`proxy_pass`", 0.95,
                 "server CPU: user + system time of the proxy's processes (for direct: the upstream nginx) per request.")
    wrk_scenario("s2", "2. Short-circuit: 158-byte maintenance XML, 64 connections", S2, "short-circuit", "`return`", 1.0)
    wrk_scenario("s6", "6. Pass-through, 300-byte form POST, HTTP/1.1 keep-alive, 64 connections", S1,
                 "POST pass-through", "`proxy_pass`", 0.95, targets_too=False)
    wrk_scenario("s7", "7. Short-circuit, 300-byte form POST, 64 connections", S2, "POST short-circuit", "`return`",
                 1.0, targets_too=False)
    wrk_scenario("s8", "8. TLS handshakes: a new TLS 1.3 connection per request, never resumed", STLS,
                 "TLS handshakes", "", 0, targets_too=False,
                 tool=f"tls-handshakes, {os.environ.get('TLS_CONNS', '16')} clients",
                 unit="handshake", note="p50/p99: connect to last byte of the answer. server CPU: user + system "
                 "time of the server's processes per handshake (with its one request).")
    wrk_scenario("s9", "9. TLS, HTTP/1.1 keep-alive, 64 connections", STLS, "TLS h1", "", 0, targets_too=False,
                 tool="wrk -t2 -c64, https")
    wrk_scenario("s10", "10. TLS, h2 keep-alive", STLS, "TLS h2", "", 0, targets_too=False,
                 tool=f"h2load -t1 -c{os.environ.get('H2_CONNS', '8')} -m{os.environ.get('H2_STREAMS', '8')}; "
                 "it reports no percentiles")

    # Scenario 3
    if any(s == "s3" for s, _ in runs):
        print("### 3. Fixed rate (oha -q RATE -c 32 --latency-correction -w): latency and added latency over direct\n")
        print("| target | achieved req/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | added p99.9 µs | errors | server CPU µs/req |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        d = [col("s3", "direct", i) for i in range(4)]
        for t in present("s3", S3):
            v = [col("s3", t, i) for i in range(4)]
            errs = sum(x[4] for x in runs[("s3", t)])
            added = "| – | – | – " if t == "direct" else f"| {fmt(v[1] - d[1])} | {fmt(v[2] - d[2])} | {fmt(v[3] - d[3])} "
            print(f"| {t} | {fmt(v[0])} | {fmt(v[1])} | {fmt(v[2])} | {fmt(v[3])} {added}| {fmt(errs)} | {fmt(col('s3', t, 6), 1)} |")
        print()
        print("Per round p50 / p99 / p99.9 (µs):\n")
        for t in present("s3", S3):
            print(f"- {t}: " + "; ".join(f"{fmt(x[1])} / {fmt(x[2])} / {fmt(x[3])}" for x in runs[("s3", t)]))
        print()

        def added(t, i):
            return col("s3", t, i) - d[i]

        for i, name in [(1, "p50"), (2, "p99")]:
            s_add, n_add = added("shim", i), added("nginx", i)
            targets.append((f"fixed rate: added {name} ≤ nginx's", check(s_add, "<=", n_add),
                            f"shim {signed(s_add)} µs vs nginx {signed(n_add)} µs over direct {fmt(d[i])} µs", False))
            versus.append((f"fixed rate: added {name} µs", s_add, added("before", i), 0))
        versus.append(("fixed rate: server CPU µs/req", col("s3", "shim", 6), col("s3", "before", 6), 1))

    # Scenario 4
    if any(s == "s4" for s, _ in runs):
        cols = [t for t in S4 if ("s4", f"download-{t}") in runs or ("s4", f"upload-{t}") in runs]
        shown = [t for t in cols if t != "direct"]
        print("### 4. Streaming (curl, one connection; nginx, HAProxy and Caddy unbuffered, as a reference)\n")
        print("| direction | " + " | ".join(f"{t} MiB/s" for t in cols) + " | "
              + " | ".join(f"{t} / direct" for t in shown) + " |")
        print("| --- | " + " | ".join("---:" for _ in cols + shown) + " |")
        share = {}  # (direction, target) -> share of direct
        for dr in ["download", "upload"]:
            v = {t: col("s4", f"{dr}-{t}", 0) for t in cols}
            for t in shown:
                share[(dr, t)] = ratio(v[t], v.get("direct", float("nan")))
            print(f"| {dr} | " + " | ".join(fmt(v[t]) for t in cols) + " | "
                  + " | ".join(pct(share[(dr, t)]) for t in shown) + " |")
        print("\nPer round (MiB/s):\n")
        for dr in ["download", "upload"]:
            for t in cols:
                if ("s4", f"{dr}-{t}") in runs:
                    print(f"- {dr} {t}: {rounds('s4', dr + '-' + t, 0)}")
        print()
        hwm = {s: col("s4-rss", s, 0) for s in SHIMS if ("s4-rss", s) in runs}
        for s, kib in hwm.items():
            print(f"Peak RSS of `{s}` over the streaming runs (VmHWM of a fresh process): {kib / 1024:.1f} MiB")
        print()
        for dr in ["download", "upload"]:
            s_share = share.get((dr, "shim"), float("nan"))
            if has_before:
                b_share = share.get((dr, "before"), float("nan"))
                targets.append((f"streaming {dr}: share of direct ≥ before's", check(s_share, ">=", b_share),
                                f"shim {pct(s_share)} vs before {pct(b_share)}", False))
            else:
                targets.append((f"streaming {dr}: ≥ 90 % of direct (no BEFORE given)", check(s_share, ">=", 0.9),
                                f"shim {pct(s_share)}", True))
            versus.append((f"streaming {dr} MiB/s", col("s4", f"{dr}-shim", 0), col("s4", f"{dr}-before", 0), 0))
        s_hwm = hwm.get("shim", float("nan"))
        targets.append(("streaming peak RSS < 64 MiB", check(s_hwm, "<", 64 * 1024), f"{s_hwm / 1024:.1f} MiB", False))
        versus.append(("streaming peak RSS MiB", s_hwm / 1024, hwm.get("before", float("nan")) / 1024, 1))

    # Scenario 5
    if any(s == "s5" for s, _ in runs):
        print("### 5. Idle keep-alive connections (a fresh process per shim binary)\n")
        print("| target | idle RSS at start | after 1 request | RSS holding conns | peak RSS | CPU while holding | fds | conns opened | still open at end | KiB per conn |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        idle = {}
        for s in present("s5", SHIMS):
            idle_start, idle_one, held, hwm, cpu, fds, opened, alive = runs[("s5", s)][0][:8]
            idle[s] = (idle_start, held)
            print(f"| {s} | {idle_start / 1024:.1f} MiB | {idle_one / 1024:.1f} MiB | {held / 1024:.1f} MiB | {hwm / 1024:.1f} MiB "
                  f"| {cpu:.2f} % of a core | {fmt(fds)} | {fmt(opened)} | {fmt(alive)} | {(held - idle_one) / (opened or 1):.1f} |")
        print()
        for t in ["nginx", "haproxy", "caddy"]:
            if ("s5-ref", t) in runs:
                rss0, held_t, cpu_t, opened_t = runs[("s5-ref", t)][0][:4]
                print(f"Reference {t} (all its processes, already warm): RSS {rss0 / 1024:.1f} MiB before, "
                      f"{held_t / 1024:.1f} MiB holding {fmt(opened_t)} connections "
                      f"({(held_t - rss0) / (opened_t or 1):.1f} KiB per connection), CPU {cpu_t:.2f} % of a core.")
        print()
        nan2 = (float("nan"), float("nan"))
        s_idle, b_idle = idle.get("shim", nan2), idle.get("before", nan2)
        targets.append(("idle RSS < 16 MiB", check(s_idle[0], "<", 16 * 1024), f"{s_idle[0] / 1024:.1f} MiB at start", False))
        versus += [("idle RSS at start MiB", s_idle[0] / 1024, b_idle[0] / 1024, 1),
                   ("RSS holding the idle connections MiB", s_idle[1] / 1024, b_idle[1] / 1024, 1)]

    if targets:
        print("### Targets (issue 10)\n")
        print("| target | result | numbers |")
        print("| --- | --- | --- |")
        for name, ok, numbers, informational in targets:
            print(f"| {name} | {verdict(ok, informational)} | {numbers} |")
        print()

    if has_before and versus:
        print("### shim vs before (same run)\n")
        print("| measure | shim | before | shim / before |")
        print("| --- | ---: | ---: | ---: |")
        for measure, s, b, digits in versus:
            print(f"| {measure} | {fmt(s, digits)} | {fmt(b, digits)} | {fx(ratio(s, b))} |")
        print("\nFor req/s and MiB/s higher is better; for latency, CPU and RSS lower is better.")
    return runs


def overview(runs):
    """One table with every scenario the run has: the shim and its peers, shim / peer, and
    issue 28's goals with a verdict each. Rows of scenarios the run did not have are left out."""

    def col(scen, target, i):
        return med([v[i] for v in runs.get((scen, target), []) if len(v) > i])

    def has(scen):
        return any(s == scen for s, _ in runs)

    rows = []  # (scenario, {column: value}, format, goal, verdict)
    lower = "lower is better"

    def words(ok):
        return "no data" if ok is None else ("**met**" if ok else "**missed**")

    def throughput(scen, label, ref, min_ratio, ref_name):
        if not has(scen):
            return
        v = {"shim": col(scen, "shim", 0), "nginx": col(scen, ref, 0)}
        v.update({p: col(scen, p, 0) for p in PEERS})
        ok_ref = check(ratio(v["shim"], v["nginx"]), ">=", min_ratio)
        behind = [NAMES[p] for p in PEERS if not isnan(v[p]) and not isnan(v["shim"]) and v["shim"] <= v[p]]
        missing = any(isnan(v[p]) for p in PEERS) or isnan(v["shim"])
        ahead = None if missing else not behind
        times = f"{min_ratio:.2f}".rstrip("0").rstrip(".")
        goal = f"≥ {times}× {ref_name}; ahead of HAProxy and Caddy"
        verdict = (f"{ref_name}: {words(ok_ref)}; ahead: {words(ahead)}"
                   + (f" (behind {', '.join(behind)})" if behind else ""))
        rows.append((f"{label}, req/s ({ref_name})", v, 0, goal, verdict))

    throughput("s1", "GET pass-through", "nginx-h", 0.95, "nginx-h")
    throughput("s6", "POST pass-through (300-byte form)", "nginx-h", 0.95, "nginx-h")
    throughput("s2", "GET short-circuit", "nginx", 1.0, "nginx `return`")
    throughput("s7", "POST short-circuit (300-byte form)", "nginx", 1.0, "nginx `return`")

    if has("s3"):
        direct = [col("s3", "direct", i) for i in (1, 2)]
        for i, name in [(1, "p50"), (2, "p99")]:
            v = {t: col("s3", t, i) - direct[i - 1] for t in ["shim", "nginx"] + PEERS}
            rows.append((f"{RATE_NAME}: added {name} over direct ({fmt(direct[i - 1])} µs), µs; {lower}", v, "signed",
                         "≤ nginx's", words(check(v["shim"], "<=", v["nginx"]))))
    if has("s8"):
        rows.append(("TLS handshakes/s (new TLS 1.3 connection per request)",
                     {t: col("s8", t, 0) for t in ["shim", "nginx"]}, 0, "–", "–"))
        rows.append((f"TLS server CPU per handshake, µs; {lower}",
                     {t: col("s8", t, 5) for t in ["shim", "nginx"]}, 1, "–", "–"))
    if has("s9"):
        rows.append(("TLS HTTP/1.1 keep-alive, req/s", {t: col("s9", t, 0) for t in ["shim", "nginx"]}, 0, "–", "–"))
    if has("s10"):
        rows.append(("TLS h2 keep-alive, req/s", {t: col("s10", t, 0) for t in ["shim", "nginx"]}, 0, "–", "–"))
    if has("s4"):
        for dr in ["download", "upload"]:
            d = col("s4", f"{dr}-direct", 0)
            v = {t: ratio(col("s4", f"{dr}-{t}", 0), d) for t in ["shim", "nginx"] + PEERS}
            rows.append((f"streaming {dr}, share of direct ({fmt(d)} MiB/s)", v, "pct", "–", "–"))
    if has("s5") or has("s5-ref"):
        v = {}
        if ("s5", "shim") in runs:
            _, idle_one, held, _, _, _, opened = runs[("s5", "shim")][0][:7]
            v["shim"] = (held - idle_one) / (opened or 1)
        for t in ["nginx"] + PEERS:
            if ("s5-ref", t) in runs:
                rss0, held_t, _, opened_t = runs[("s5-ref", t)][0][:4]
                v[t] = (held_t - rss0) / (opened_t or 1)
        rows.append((f"memory per idle keep-alive connection, KiB; {lower}", v, 1, "–", "–"))
    if not rows:
        return

    def cell(x, how):
        if x is None or isnan(x):
            return "–"
        return signed(x) if how == "signed" else pct(x) if how == "pct" else fmt(x, how)

    cols = ["shim", "nginx"] + PEERS
    print("### Overview: every scenario (medians over rounds)\n")
    print("| scenario | shim | nginx | HAProxy | Caddy | shim / nginx | shim / HAProxy | shim / Caddy | issue 28 goal | verdict |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for label, v, how, goal, verdict in rows:
        nan = float("nan")
        vals = [v.get(c, nan) for c in cols]
        ratios = [fx(ratio(vals[0], x)) for x in vals[1:]]
        print(f"| {label} | " + " | ".join(cell(x, how) for x in vals) + " | " + " | ".join(ratios)
              + f" | {goal} | {verdict} |")
    print("\nThe nginx column is nginx-h (proxy_pass plus the shim's header work) where the row says so, "
          "else nginx `proxy_pass` (or `return` for the short-circuit); over TLS, nginx-h's pass-through on a "
          "TLS listener. shim / peer above 1 is better for req/s and shares, below 1 for latency, CPU and memory; "
          "a ratio of added latencies is shown only when both are positive.\n")


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    {"wrk": parse_wrk, "oha": parse_oha, "h2load": parse_h2load, "table": table}[cmd](path)


if __name__ == "__main__":
    main()
