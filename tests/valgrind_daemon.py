#!/usr/bin/env python3
"""valgrind_daemon: clfd (supervisor and forked workers) under valgrind.

Not part of `make check` (sanitizer builds cannot run under valgrind):
.ci/run runs it on the plain build. One clfd runs under memcheck with two
workers; a job over real, generated, corrupt and refused files, then every
read-only op, a cancel, a bad request and SIGTERM. Every process valgrind
watched (the supervisor and each worker) must report no error and no
definitely or indirectly lost block.
"""
import glob
import gzip
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402
from clfdtest import Client, Tap, wait_until  # noqa: E402


def main():
    t = Tap()
    tmp = tempfile.mkdtemp(prefix="clfd-vg-")
    proc = None
    try:
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        for f in clfdtest.real_logs()[:4]:
            shutil.copy(f, data)
        clfdtest.gen_logs(os.path.join(data, "gen"), 2, 2000, seed=3)
        with open(os.path.join(data, "gen", "access-000.log.gz"), "rb") as f:
            raw = bytearray(f.read())
        raw[len(raw) // 2] ^= 0xFF
        with open(os.path.join(data, "corrupt.log.gz"), "wb") as f:
            f.write(raw)
        with gzip.open(os.path.join(data, "trunc.log.gz"), "wb") as f:
            f.write(b'1.2.3.4 - - [01/Mar/2024:00:00:00 +0000] "GET /a HTTP/1.1" 200 1\n' * 500)
        with open(os.path.join(data, "trunc.log.gz"), "r+b") as f:
            f.truncate(40)
        os.mkfifo(os.path.join(data, "fifo.log"))

        sock = os.path.join(tmp, "clfd.sock")
        argv = ["valgrind", "-q", "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect",
                "--log-file=" + os.path.join(tmp, "vg.%p"),
                clfdtest.CLFD, "-w", "2", "-s", sock]
        log = open(os.path.join(tmp, "clfd.log"), "wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, env=dict(os.environ, XDG_CACHE_HOME=os.path.join(
                                    tmp, "cache")))

        def ready():
            if proc.poll() is not None:
                raise RuntimeError("clfd exited with %d" % proc.returncode)
            try:
                c = Client(sock, timeout=60)
            except (FileNotFoundError, ConnectionRefusedError):
                return False
            try:
                return c.request({"op": "ping"}).get("ok")
            finally:
                c.close()
        wait_until(ready, 120, "clfd under valgrind to answer ping")
        t.ok(True, "clfd under valgrind answers ping")

        c = Client(sock, timeout=300)
        r = c.request({"op": "submit", "patterns": [data + "/*", data + "/gen/*.gz",
                                                    data + "/none-*"],
                       "filter": {"under": "/book"}, "wait": True,
                       "progress": True})
        t.ok(r.get("ok"), "job accepted", r)
        ev = c.recv()
        while ev is not None and ev.get("event") == "progress":
            ev = c.recv()
        t.ok(ev is not None and ev.get("state") == "done", "job done", ev)
        job = ev.get("job") if ev else 0
        files = {os.path.basename(f["path"]): f for f in ev.get("files", [])} if ev else {}
        t.ok(files.get("corrupt.log.gz", {}).get("partial") is True,
             "corrupt gzip is partial")
        t.ok(files.get("fifo.log", {}).get("error") is not None, "fifo refused")
        # the same again: answered from the cache
        r = c.request({"op": "submit", "patterns": [data + "/*", data + "/gen/*.gz"],
                       "filter": {"under": "/book"}, "wait": True})
        ev2 = c.recv()
        t.ok(ev2 is not None and ev2.get("counts") == ev.get("counts") and
             any(f.get("cache") == "hit" for f in ev2.get("files", [])),
             "the same job again: hits, the same counts")
        for op in ({"op": "status", "job": job}, {"op": "result", "job": job},
                   {"op": "list"}, {"op": "stats"}, {"op": "cancel", "job": job},
                   {"op": "nope"}):
            r = c.request(op)
            t.ok(r is not None and "ok" in r, "%s answered" % op["op"])
        c.send_raw(b"{not json\n")
        r = c.recv()
        t.ok(r is not None and r["error"]["code"] == "bad_json", "bad json refused")
        c.close()

        proc.terminate()
        t.ok(proc.wait(120) == 0, "clfd exits 0 on SIGTERM")
        log.close()
        reports = glob.glob(os.path.join(tmp, "vg.*"))
        t.ok(len(reports) >= 3, "valgrind watched the supervisor and the workers (%d)"
             % len(reports))
        for rep in sorted(reports):
            with open(rep, errors="replace") as f:
                text = f.read()
            t.ok(text.strip() == "", "no valgrind report in %s" % os.path.basename(rep),
                 text)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
