#!/usr/bin/env python3
"""Scenario 5 of bench/run.sh: open N HTTP/1.1 keep-alive connections to HOST:PORT, send one
GET on each and read its response (so every connection has served a request), then hold them
all idle for HOLD seconds. Prints "ready N" once all are open, and at the end how many are
still open (the server may close idle connections on its own timeout).

Usage: hold_conns.py HOST PORT N PATH HOLD_SECONDS
Loopback only; bounded in time (connect/read timeouts of 10 s, then HOLD seconds).
"""

import resource
import socket
import sys
import time


def read_response(s):
    """Reads one response with a Content-Length body; returns the status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before response head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    return status


def main():
    host, port, n, path, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 100))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: hold_conns\r\n\r\n".encode()
    socks = []
    failed = 0
    non200 = 0
    started = time.monotonic()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect((host, port))
            s.sendall(request)
            if read_response(s) != 200:
                non200 += 1
        except OSError as e:
            failed += 1
            s.close()
            if failed == 1:
                print(f"first failure: {e!r}", flush=True)
            continue
        socks.append(s)
    print(f"ready {len(socks)} failed={failed} non200={non200} open_s={time.monotonic() - started:.1f}", flush=True)
    time.sleep(hold)
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += 0 if s.recv(1, socket.MSG_PEEK) == b"" else 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print(f"done alive={alive} of {len(socks)}", flush=True)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
