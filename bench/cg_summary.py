#!/usr/bin/env python3
"""Per-request instruction counts from a callgrind dump (used by bench/profile.sh).

callgrind splits one function into several rows when code from other files is inlined into it
("file:function" per source file). Exclusive counts of those rows are summed; for inclusive
counts the largest row is taken (the outer row already contains the inlined parts). Counts are
divided by the number of requests measured.

Usage: cg_summary.py DUMP REQUESTS [inclusive|exclusive] [TOP] [REGEX]
"""
import re
import subprocess
import sys
from collections import defaultdict

dump, reqs = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "inclusive"
top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
regex = re.compile(sys.argv[5]) if len(sys.argv) > 5 else None
out = subprocess.run(
    ["callgrind_annotate", f"--inclusive={'yes' if mode == 'inclusive' else 'no'}", "--threshold=100",
     "--auto=no", dump], capture_output=True, text=True, check=True).stdout
total = None
sums = defaultdict(int)
row = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$")
for line in out.splitlines():
    m = row.match(line)
    if not m:
        continue
    count, rest = int(m.group(1).replace(",", "")), m.group(2)
    if rest.startswith("PROGRAM TOTALS"):
        total = count
        continue
    rest = re.sub(r" \[[^\]]*\]$", "", rest)
    func = rest.split(":", 1)[1] if ":" in rest and not rest.startswith("???") else rest
    sums[func] = sums[func] + count if mode == "exclusive" else max(sums[func], count)
rows = sorted(sums.items(), key=lambda kv: -kv[1])
# Frames that were on the stack when the counters were zeroed show their inclusive cost as
# self cost in callgrind_annotate's exclusive view; drop anything near 100 %.
rows = [(f, c) for f, c in rows if total is None or c < 0.95 * total]
if regex:
    rows = [(f, c) for f, c in rows if regex.search(f)]
for func, count in rows[:top]:
    print(f"{count / reqs:9.0f}/req {count / total:6.1%}  {func[:170]}")
