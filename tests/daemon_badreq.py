"""daemon_badreq: every kind of bad request gets its own error, and the
daemon goes on serving everyone else without losing a job."""
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def code(r):
    return r.get("error", {}).get("code") if isinstance(r, dict) else None


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-bad-")
    d = d2 = None
    try:
        files = clfdtest.gen_logs(os.path.join(tmp, "logs"), 16, 15000, seed=21)
        want = clfdtest.seed_ref(files)
        d = clfdtest.Daemon(workers=2, config={"idle_timeout": 1})

        # A job in flight the whole time: it must come out exact.
        keeper = d.client()
        r = keeper.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")],
                            "wait": True})
        t.ok(r["ok"], "a job is running while bad clients come and go", r)

        c = d.client()
        cases = [
            (b'{"op":', "bad_json", "truncated JSON"),
            (b'not json at all', "bad_json", "not JSON"),
            (b'', "bad_json", "empty line"),
            (b'[1,2,3]', "bad_request", "an array, not an object"),
            (b'{"x":1}', "bad_request", "no op"),
            (b'{"op":5}', "bad_request", "op not a string"),
            (b'{"op":"frobnicate"}', "unknown_op", "unknown op"),
            (b'{"op":"submit"}', "bad_field", "submit: no patterns"),
            (b'{"op":"submit","patterns":"/x/*"}', "bad_field", "submit: patterns a string"),
            (b'{"op":"submit","patterns":[]}', "bad_field", "submit: no pattern"),
            (b'{"op":"submit","patterns":[5]}', "bad_field", "submit: pattern a number"),
            (b'{"op":"submit","patterns":["rel/*.log"]}', "bad_field", "submit: relative pattern"),
            (b'{"op":"submit","patterns":["/x"],"filter":[1]}', "bad_field", "submit: filter an array"),
            (b'{"op":"submit","patterns":["/x"],"filter":{"under":7}}', "bad_field",
             "submit: filter.under a number"),
            (b'{"op":"submit","patterns":["/x"],"filter":{"status":["9zz"]}}', "bad_field",
             "submit: bad status class"),
            (b'{"op":"submit","patterns":["/x"],"filter":{"since":"yesterday"}}', "bad_field",
             "submit: bad since"),
            (b'{"op":"submit","patterns":["/x"],"format":"%h %Q"}', "bad_field",
             "submit: unknown LogFormat directive"),
            (b'{"op":"submit","patterns":["/x"],"format":"regex:(unclosed"}', "bad_field",
             "submit: bad regex"),
            (b'{"op":"submit","patterns":["/x"],"format":7}', "bad_field", "submit: format a number"),
            (b'{"op":"submit","patterns":["/x"],"top":-1}', "bad_field", "submit: negative top"),
            (b'{"op":"submit","patterns":["/x"],"top":"5"}', "bad_field", "submit: top a string"),
            (b'{"op":"submit","patterns":["/x"],"wait":"yes"}', "bad_field", "submit: wait a string"),
            (b'{"op":"status","job":"1"}', "bad_field", "status: job a string"),
            (b'{"op":"result","job":0}', "bad_field", "result: job 0"),
            (b'{"op":"result"}', "bad_field", "result: no job"),
            (b'{"op":"wait","job":1.5}', "bad_field", "wait: job a float"),
            (b'{"op":"cancel","job":-3}', "bad_field", "cancel: negative job"),
        ]
        for line, want_code, desc in cases:
            c.send_raw(line + b"\n")
            r = c.recv()
            t.ok(r is not None and r.get("ok") is False and code(r) == want_code and
                 isinstance(r["error"].get("message"), str),
                 "%s -> %s" % (desc, want_code), r)
        # a bad_field message names the field once, with its checker's words
        msgs = [
            ({"filter": {"status": ["9zz"]}}, "filter.status[0]: "),
            ({"filter": {"under": 7}}, "filter.under: "),
            ({"filter": {"colour": 1}}, "filter.colour: unknown field"),
            ({"filter": [1]}, "filter: "),
            ({"format": "nosuchpreset"}, "format \"nosuchpreset\": "),
            ({"format": "%h %Q"}, "format: LogFormat: "),
            ({"format": 7}, "format: "),
        ]
        for extra, prefix in msgs:
            req = {"op": "submit", "patterns": ["/x"]}
            req.update(extra)
            r = c.request(req)
            m = r.get("error", {}).get("message", "") if r else ""
            t.ok(code(r) == "bad_field" and m.startswith(prefix) and
                 not re.match(r"(\w+)\W.*?\b\1\b[.\[: ]", m[:len(prefix) + 20]),
                 "%s: message %r starts %r, the field named once" % (extra, m, prefix), r)
        # an unknown top-level field is refused, for every op, naming it and
        # what the op takes (the op is not run: the misspelt "fromat" does
        # not count files under the default format)
        unknown = [
            ({"op": "submit", "patterns": ["/x"], "fromat": "combined"},
             "fromat: unknown field (submit takes patterns, filter, format, top, cache, "
             "wait, progress)"),
            ({"op": "ping", "verbose": True}, "verbose: unknown field (ping takes none but op)"),
            ({"op": "stats", "job": 1}, "job: unknown field (stats takes none but op)"),
            ({"op": "list", "all": True}, "all: unknown field (list takes none but op)"),
            ({"op": "cache_clear", "x": 1}, "x: unknown field (cache_clear takes none but op)"),
            ({"op": "wait", "job": 1, "progres": True},
             "progres: unknown field (wait takes job, progress)"),
            ({"op": "result", "job": 1, "id": 1}, "id: unknown field (result takes job)"),
            ({"op": "status", "jobs": 1}, "jobs: unknown field (status takes job)"),
            ({"op": "cancel", "job": 1, "force": True},
             "force: unknown field (cancel takes job)"),
        ]
        before = d.request({"op": "stats"}).get("jobs", {}).get("submitted")
        for req, msg in unknown:
            r = c.request(req)
            t.ok(code(r) == "bad_field" and r["error"].get("message") == msg,
                 "%s with an unknown field: bad_field, %r" % (req["op"], msg), r)
        t.eq(d.request({"op": "stats"}).get("jobs", {}).get("submitted"), before,
             "the submit with \"fromat\" made no job")
        r = c.request({"op": "submit", "patterns": ["/x/{a,b}"],
                       "filter": {"under": "/book"}, "wait": False})
        t.ok(r["ok"], "the same connection still works after every error", r)

        # binary garbage, NUL bytes included, on one line
        rnd = random.Random(5)
        junk = bytes(rnd.randrange(256) for _ in range(8192)).replace(b"\n", b"\x00")
        c.send_raw(junk + b"\n")
        r = c.recv()
        t.eq(code(r), "bad_json", "binary garbage -> bad_json")
        t.ok(c.request({"op": "ping"})["ok"], "connection survives binary garbage")

        c.close()

        # half a line, then silence: idle_timeout (1 s here), then closed
        c = d.client()
        c.send_raw(b'{"op":"pi')
        t0 = time.monotonic()
        r = c.recv()
        el = time.monotonic() - t0
        t.eq(code(r), "idle_timeout", "half a line then silence -> idle_timeout")
        t.ok(0.5 < el < 10, "idle_timeout after about idle_timeout seconds", el)
        t.ok(c.eof(), "connection closed after idle_timeout")
        c.close()

        # a line trickled a byte at a time is still timed out from its start
        c = d.client()
        t0 = time.monotonic()
        closed = False
        for b in b'{"op":"ping","pad":"' + b"x" * 200:
            try:
                c.send_raw(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if time.monotonic() - t0 > 6:
                break
            time.sleep(0.2)
        r = c.recv()
        el = time.monotonic() - t0
        t.eq(code(r), "idle_timeout", "a line trickled byte by byte -> idle_timeout")
        t.ok(el < 5, "within a few idle_timeouts of its first byte, not reset by each byte",
             (el, closed))
        c.close()

        # idle between requests: the clock restarts with each request, and
        # silence longer than idle_timeout closes the connection too
        c = d.client()
        for _ in range(4):
            t.ok(c.request({"op": "ping"})["ok"], "ping, then a pause shorter than idle_timeout")
            time.sleep(0.4)
        t0 = time.monotonic()
        r = c.recv()
        el = time.monotonic() - t0
        t.eq(code(r), "idle_timeout", "a client silent after its last reply -> idle_timeout")
        t.ok(el < 5, "within about idle_timeout of its last request", el)
        t.ok(c.eof(), "connection closed after idle_timeout")
        c.close()

        # disconnect while waiting: the job is not lost
        big = clfdtest.gen_logs(os.path.join(tmp, "big"), 8, 20000, seed=22)
        c = d.client()
        r = c.request({"op": "submit", "patterns": [os.path.join(tmp, "big", "*")],
                       "wait": True, "progress": True})
        jid = r["job"]
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        t.ok(d.request({"op": "ping"})["ok"], "daemon serves others after a waiter vanished")
        c = d.client(timeout=300)
        c.send({"op": "wait", "job": jid})
        ev = c.recv()
        t.eq(ev.get("counts"), clfdtest.seed_ref(big), "the vanished waiter's job finishes exact")
        c.close()

        # the job that ran through all of this
        ev = keeper.recv()
        t.ok(ev["event"] == "done" and ev["ok"], "the first job finished", ev.get("error"))
        t.eq(ev["counts"], want, "the first job's counts are exact")
        keeper.close()

        # connections_max: the next connection gets limit and is closed
        d2 = clfdtest.Daemon(workers=1, config={"connections_max": 3})
        # The big requests go to d2, whose idle_timeout is the default
        # 60 s: sending them can take longer than d's 1 s on a loaded
        # machine, and the answer must be about their size, not the clock.
        c = d2.client()
        # 100000 patterns
        r = c.request({"op": "submit", "patterns": ["/p"] * 100000})
        t.eq(code(r), "limit", "100000 patterns -> limit")
        c.close()

        # a 10 MB line: too_large, then the connection is closed
        c = d2.client()
        try:
            c.send_raw(b'{"op":"ping","pad":"' + b"x" * (10 << 20) + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.recv()
        t.eq(code(r), "too_large", "10 MB line -> too_large")
        t.ok(c.eof(), "connection closed after too_large")
        c.close()
        held = [d2.client() for _ in range(3)]
        for h in held:
            h.request({"op": "ping"})
        c = d2.client()
        r = c.recv()
        t.eq(code(r), "limit", "connection over connections_max -> limit")
        t.ok(c.eof(), "and closed")
        c.close()
        held.pop().close()
        t.ok(clfdtest.wait_until(lambda: d2.request({"op": "ping"}).get("ok"), 10, "a free slot"),
             "a freed connection slot is usable again")
        for h in held:
            h.close()
        t.eq(d.stop(), 0, "clfd exits 0 after all that")
        t.eq(d2.stop(), 0, "second clfd exits 0")
    except Exception as e:
        t.ok(False, "unexpected exception", repr(e) + "\n" + (d.log_text()[-3000:] if d else ""))
    finally:
        for x in (d, d2):
            if x is not None:
                x.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
