"""daemon_hardening: the findings of the adversarial run stay fixed.

- a brace bomb is refused with `limit` at submit time, before any glob;
- an error message never cuts a UTF-8 character in half;
- a top-level JSON scalar is bad_request, not bad_json;
- silent clients and clients that stop reading are closed after
  idle_timeout; clients waiting on a job are not;
- after too_large the client reads the reply and then a clean EOF.
"""
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def code(r):
    return r.get("error", {}).get("code") if isinstance(r, dict) else None


def reply(d, obj, timeout=10.0):
    """One request on a fresh connection; None when no reply in time."""
    c = d.client(timeout=timeout)
    try:
        return c.request(obj)
    except socket.timeout:
        return None
    finally:
        c.close()


def test_brace_bomb(t, tmp):
    logs = os.path.join(tmp, "braces")
    os.makedirs(logs)
    for n in ("a.log", "b.log", "c.log"):
        with open(os.path.join(logs, n), "w") as f:
            f.write('1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET /%s HTTP/1.1" '
                    '200 5\n' % n)
    d = clfdtest.Daemon(workers=1, config={"patterns_max": 8})
    try:
        bomb = "/" + "{a,b}" * 28
        t0 = time.monotonic()
        r = reply(d, {"op": "submit", "patterns": [bomb]})
        el = time.monotonic() - t0
        t.ok(code(r) == "limit" and "patterns_max" in r["error"]["message"],
             "a 2^28 brace bomb is refused with limit", r)
        t.ok(el < 5, "at once, before any glob", el)
        r = reply(d, {"op": "submit", "patterns": ["/x/{a,{b,{c,d}}}{e,f,g}"]})
        t.eq(code(r), "limit", "nested braces: (1+1+2)*3 = 12 > 8 -> limit")
        r = reply(d, {"op": "submit", "patterns": ["/x/" + "{" * 100 + "a" + "}" * 100]})
        t.eq(code(r), "limit", "braces nested 100 deep -> limit")
        pat = os.path.join(logs, "{a,{b,c}}.lo{g,x}")
        r = reply(d, {"op": "submit", "patterns": [pat, os.path.join(logs, "{a,b}.log")],
                      "wait": True})
        t.ok(r is not None and r.get("ok") and r.get("files_total") == 3,
             "(1+2)*2 + 2 = 8 alternatives is within patterns_max=8", r)
        r = reply(d, {"op": "submit", "patterns": [os.path.join(logs, "\\{a,b,c,d,e,f,g,h,i}")]})
        t.ok(r is not None and r.get("ok"), "an escaped brace is no alternative", r)
        t.ok(reply(d, {"op": "ping"}).get("ok"), "the daemon still answers")
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        d.cleanup()


def test_utf8_cut(t, tmp):
    d = clfdtest.Daemon(workers=1)
    try:
        c = d.client(timeout=10)
        cases = [
            ({"op": "a" * 63 + "\u00e9"}, "unknown_op", "op name cut inside a character"),
            ({"op": "a" * 62 + "\u20ac\u20ac"}, "unknown_op",
             "op name cut inside a three-byte character"),
            ({"op": "submit", "patterns": ["/x"], "format": "\u00e9" * 100}, "bad_field",
             "a long non-ASCII format"),
            ({"op": "submit", "patterns": ["/x"], "format": "%{" + "\u00e9" * 300 + "}i %Q"},
             "bad_field", "a long non-ASCII directive"),
        ]
        for req, want, desc in cases:
            r = c.request(req)
            t.ok(code(r) == want and isinstance(r["error"]["message"], str),
                 "%s -> %s" % (desc, want), r)
        t.ok(c.request({"op": "ping"}).get("ok"), "connection still fine")
        c.close()
    finally:
        d.cleanup()


def test_scalar(t, tmp):
    d = clfdtest.Daemon(workers=1)
    try:
        c = d.client(timeout=10)
        for line in (b'"ping"', b"1", b"null", b"true", b"-2.5"):
            c.send_raw(line + b"\n")
            r = c.recv()
            t.eq(code(r), "bad_request", "a top-level %s -> bad_request" % line.decode())
        c.send_raw(b'"ping" x\n')
        t.eq(code(c.recv()), "bad_json", "a scalar followed by junk is still bad_json")
        c.close()
    finally:
        d.cleanup()


def test_idle(t, tmp):
    files = clfdtest.gen_logs(os.path.join(tmp, "idle-logs"), 2, 2000, seed=31)
    d = clfdtest.Daemon(workers=1, config={"connections_max": 4, "idle_timeout": 1})
    stopped = []
    try:
        # A waiting client is exempt: its job is held up (the workers are
        # stopped) for longer than idle_timeout.
        waiter = d.client(timeout=300)
        r = waiter.request({"op": "submit", "patterns": [os.path.join(tmp, "idle-logs", "*")],
                            "wait": True, "progress": True})
        t.ok(r is not None and r.get("ok"), "a job is submitted with wait", r)
        for pid in d.worker_pids():
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        # Three silent connections fill the remaining slots.
        silent = [d.client(timeout=10) for _ in range(3)]
        t0 = time.monotonic()
        for s in silent:
            r = s.recv()
            t.eq(code(r), "idle_timeout", "a silent connection gets idle_timeout")
            t.ok(s.eof(), "and is closed")
            s.close()
        el = time.monotonic() - t0
        t.ok(0.5 < el < 5, "after about idle_timeout", el)
        t.ok(clfdtest.wait_until(lambda: reply(d, {"op": "ping"}, 5).get("ok"), 10, "a slot"),
             "the silent connections' slots are free again")
        # A client that sends requests but never reads its replies.
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(d.sock)
        stuck.settimeout(10)
        try:
            stuck.sendall(b'{"op":"stats"}\n' * 5000)
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass

        def conns():
            r = reply(d, {"op": "stats"}, 5)
            return r is not None and r["connections"] <= 2
        t.ok(clfdtest.wait_until(conns, 15, "the stuck client dropped"),
             "a client that stops reading is dropped after idle_timeout")
        stuck.close()
        waiter.sock.settimeout(0.1)
        try:
            data = waiter.sock.recv(1 << 16)
            state = "closed" if data == b"" else "data"
            waiter.buf += data
        except socket.timeout:
            state = "open"
        t.ok(state in ("open", "data") and time.monotonic() - t0 > 1.5,
             "the waiting client is still connected after %.1f s" % (time.monotonic() - t0),
             state)
        waiter.sock.settimeout(60)
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        stopped = []
        ev = waiter.recv()
        while ev is not None and ev.get("event") == "progress":
            ev = waiter.recv()
        t.ok(ev is not None and ev.get("event") == "done" and ev.get("ok"),
             "the waiting client got its done event", ev and ev.get("error"))
        t.eq(ev and ev.get("counts"), clfdtest.seed_ref(files), "with exact counts")
        waiter.close()
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        d.cleanup()


def test_too_large_eof(t, tmp):
    d = clfdtest.Daemon(workers=1, config={"request_max": 4096})
    try:
        c = d.client(timeout=10)
        errs = []

        def send():
            try:
                c.sock.sendall(b'{"op":"ping","pad":"' + b"x" * (1 << 20) + b'"}\n')
            except OSError as e:
                errs.append(e)
        th = threading.Thread(target=send)
        th.start()
        r = c.recv()
        t.eq(code(r), "too_large", "an oversized line -> too_large")
        try:
            data = c.sock.recv(4096)
            got = "eof" if data == b"" else "data %r" % data[:80]
        except ConnectionResetError:
            got = "reset"
        except socket.timeout:
            got = "timeout"
        t.eq(got, "eof", "then a clean EOF, not a reset")
        th.join(30)
        t.ok(not th.is_alive(), "the sender was not left blocked", errs)
        c.close()
    finally:
        d.cleanup()


TESTS = [test_brace_bomb, test_utf8_cut, test_scalar, test_idle, test_too_large_eof]


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-hard-")
    only = sys.argv[1:]
    try:
        for fn in TESTS:
            if only and fn.__name__ not in only:
                continue
            try:
                fn(t, tmp)
            except Exception as e:
                t.ok(False, "%s: unexpected exception" % fn.__name__, repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
