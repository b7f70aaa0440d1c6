#!/usr/bin/env python3
"""pingwatch.py: how long clfd takes to answer ping while it works.

usage: pingwatch.py SOCKET [--interval SECONDS] [--out FILE]

Every interval (default 0.02 s) after the last answer, connects to SOCKET,
sends {"op":"ping"} and waits for the reply line, as clfctl ping does.
Runs until SIGTERM or SIGINT; a ping under way then still gets its answer
(up to 60 s). Prints (to FILE, else stdout) one line:

  max_ms MAX n N failed F

MAX the longest connect-to-reply time in milliseconds, N the pings
answered, F those refused or answered with an error.
"""
import argparse
import json
import signal
import socket
import sys
import time

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def ping(path):
    """One ping: the seconds from connect to the reply, or None on failure."""
    t0 = time.monotonic()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(60)
            s.connect(path)
            s.sendall(b'{"op":"ping"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    return None
                buf += chunk
    except OSError:
        return None
    t = time.monotonic() - t0
    try:
        if not json.loads(buf).get("ok"):
            return None
    except ValueError:
        return None
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("socket")
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--out")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worst, n, failed = 0.0, 0, 0
    while not stop:
        t = ping(args.socket)
        if t is None:
            failed += 1
        else:
            n += 1
            worst = max(worst, t)
        # Sleep in short steps, so a stop is seen at once.
        until = time.monotonic() + args.interval
        while not stop and time.monotonic() < until:
            time.sleep(min(0.005, args.interval))
    line = "max_ms %.1f n %d failed %d\n" % (worst * 1000, n, failed)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line)
    else:
        sys.stdout.write(line)


if __name__ == "__main__":
    main()
