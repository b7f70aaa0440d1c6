"""daemon_results: results that grow with the data stay off the supervisor.

Logs where every request path is distinct (2 M of them, as IDs in paths,
scanners and cache-busting make real logs): the counts are checked against
the paths the test wrote, for one file and for the same lines split over 8
files plus a copy of each (every count 2). While the big job runs, ping is
sampled: the supervisor answers in milliseconds because counts never pass
through it. Its memory stays small with 30 clients fetching the 60 MB
result at once (one file, streamed to each). A worker killed while merging
has its merge run again, nothing counted twice; a partial damaged in the
spool is detected and its file read again. A client that goes away
mid-stream, or reads slowly, holds up no one; a steady slow reader is not
cut off by idle_timeout; a result over the old 64 MB output cap can still
be fetched with "result"."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

NLINES = int(os.environ.get("CLFD_TEST_CARD_LINES", "2000000"))


def write_lines(path, first, n):
    """Combined lines first..first+n-1, each with its own path."""
    with open(path, "w") as f:
        out = []
        for i in range(first, first + n):
            out.append('10.%d.%d.%d - - [10/Oct/2023:13:%02d:36 +0000] '
                       '"GET /item/%d/%08x.html HTTP/1.1" 200 %d "-" '
                       '"probe/1.0"\n' % (i >> 16 & 255, i >> 8 & 255,
                                          i & 255, i % 60, i,
                                          (i * 2654435761) & 0xffffffff,
                                          100 + i % 900))
            if len(out) == 50000:
                f.write("".join(out))
                out = []
        f.write("".join(out))


def want_counts(n, times):
    return {"/item/%d/%08x.html" % (i, (i * 2654435761) & 0xffffffff): times
            for i in range(n)}


def result_doc(d, job):
    """Fetch a result with a raw client; the parsed document."""
    c = d.client(timeout=300)
    try:
        c.send({"op": "result", "job": job})
        line = c.recv_line()
        return json.loads(line), len(line)
    finally:
        c.close()


PINGER = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
worst, n, buf = 0.0, 0, b""
sys.stdout.write("up\n")
sys.stdout.flush()
while True:
    t0 = time.monotonic()
    s.sendall(b'{"op":"ping"}\n')
    while b"\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("closed")
        buf += chunk
    line, buf = buf.split(b"\n", 1)
    if not json.loads(line).get("ok"):
        raise SystemExit("not ok")
    worst = max(worst, time.monotonic() - t0)
    n += 1
    sys.stdout.write("%d %.6f\n" % (n, worst))
    sys.stdout.flush()
    time.sleep(0.01)
"""


class PingSampler:
    """Ping every 10 ms from a process of its own (no lock shared with
    the test's threads); keep the longest answer."""

    def __init__(self, d):
        self.p = subprocess.Popen([sys.executable, "-c", PINGER, d.sock],
                                  stdout=subprocess.PIPE, text=True)
        self.p.stdout.readline()

    def finish(self):
        """(pings, longest in s, error or None)."""
        self.p.send_signal(signal.SIGTERM)
        out, _ = self.p.communicate(timeout=30)
        last = [ln for ln in out.splitlines() if ln.strip()]
        n, worst = (int(last[-1].split()[0]), float(last[-1].split()[1])) \
            if last else (0, 0.0)
        err = None if self.p.returncode == -signal.SIGTERM else \
            "pinger exited %s" % self.p.returncode
        return n, worst, err


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def spool_of(d):
    subs = [os.path.join(d.dir, "spool", s)
            for s in os.listdir(os.path.join(d.dir, "spool"))
            if s.startswith("clfd.")]
    return subs[0] if subs else None


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-results-")
    d = None
    try:
        one = os.path.join(tmp, "card.log")
        write_lines(one, 0, NLINES)
        parts = []
        per = NLINES // 8
        for k in range(8):
            p = os.path.join(tmp, "split", "part%d.log" % k)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            write_lines(p, k * per, per if k < 7 else NLINES - 7 * per)
            c = os.path.join(tmp, "split", "copy%d.log" % k)
            shutil.copyfile(p, c)
            parts += [p, c]
        want1 = want_counts(NLINES, 1)

        # A spool left by a clfd that died (its pid is gone) is swept at
        # start; one whose pid lives (ours, here) is left alone.
        spools = os.path.join(tmp, "spool")
        dead = subprocess.Popen(["true"])
        dead.wait()
        for name, pid in (("clfd.Stale1", dead.pid), ("clfd.Alive1", os.getpid())):
            os.makedirs(os.path.join(spools, name))
            with open(os.path.join(spools, name, "pid"), "w") as f:
                f.write("%d\n" % pid)
            open(os.path.join(spools, name, "t1.json"), "w").close()
        d = clfdtest.Daemon(workers=2, tmp=tmp, config={
            "spool_dir": spools, "idle_timeout": 2})
        d.wait_workers()
        left = sorted(os.listdir(spools))
        t.ok("clfd.Stale1" not in left and "clfd.Alive1" in left,
             "a dead daemon's spool swept at start, a live one's kept", left)
        shutil.rmtree(os.path.join(spools, "clfd.Alive1"))

        # One file, every path distinct; ping sampled meanwhile.
        ps = PingSampler(d)
        r, ev = d.submit([one])
        npings, worst, perr = ps.finish()
        t.ok(ev is not None and ev.get("ok") is True, "one file: done", ev and ev.get("error"))
        job1 = r.get("job")
        t.ok(ev is not None and ev["counts"] == want1,
             "one file: %d distinct paths, each counted once" % NLINES)
        t.ok(ev is not None and ev["totals"]["distinct"] == NLINES and
             ev["totals"]["counted"] == NLINES, "one file: totals")
        t.ok(perr is None and npings > 0 and worst < 0.5,
             "ping answered throughout, longest %.1f ms over %d pings"
             % (worst * 1000, npings), perr)
        t.diag("longest ping during the job: %.1f ms" % (worst * 1000))
        ev = None

        # The result is over the old 64 MB output cap for a single reply
        # only for big N; whatever its size, "result" returns it whole.
        doc, size = result_doc(d, job1)
        t.ok(doc.get("ok") is True and len(doc["counts"]) == NLINES,
             "result: the %.1f MB result fetched whole" % (size / 1e6))
        doc = None

        # 30 clients ask for it at once and read nothing yet: the
        # supervisor does not hold 30 copies.
        before = rss_kb(d.pid)
        socks = []
        for _ in range(30):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            s.sendall(b'{"op":"result","job":%d}\n' % job1)
            socks.append(s)
        time.sleep(0.5)
        grown = rss_kb(d.pid) - before
        t.ok(grown < 32 * 1024, "30 readers of one big result: supervisor "
             "grew %d kB" % grown)
        # One goes away mid-stream, 25 go away without reading; one reads
        # steadily but slowly (past idle_timeout, 2 s); three read fast;
        # a ping is answered meanwhile.
        socks[0].recv(65536)
        socks[0].close()
        for s in socks[5:]:
            s.close()
        got = {"n": 0, "err": None}

        def slow_reader(s):
            try:
                s.settimeout(30)
                while True:
                    chunk = s.recv(1 << 18)
                    if not chunk:
                        got["eof"] = True
                        break
                    got["n"] += len(chunk)
                    if chunk.endswith(b"\n"):
                        break
                    time.sleep(0.03)
            except Exception as e:  # noqa: BLE001
                got["err"] = e
        fast = {}

        def fast_reader(k, s):
            n, tail = 0, b""
            try:
                s.settimeout(60)
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    n += len(chunk)
                    tail = (tail + chunk)[-2:]
                    if chunk.endswith(b"\n"):
                        break
            finally:
                fast[k] = (n, tail == b"}\n")
        th = [threading.Thread(target=slow_reader, args=(socks[1],))]
        th += [threading.Thread(target=fast_reader, args=(k, socks[k]))
               for k in (2, 3, 4)]
        ps = PingSampler(d)
        t0 = time.monotonic()
        for x in th:
            x.start()
        for x in th:
            x.join(120)
        npings, worst, perr = ps.finish()
        t.ok(perr is None and npings > 0 and worst < 0.5,
             "ping answered while the result streams, longest %.1f ms"
             % (worst * 1000), perr)
        t.ok(all(fast.get(k) == (size + 1, True) for k in (2, 3, 4)),
             "three fast readers got the whole result", fast)
        t.ok(got["err"] is None and got["n"] == size + 1,
             "a slow steady reader (%.1f s, idle_timeout 2 s) got it all"
             % (time.monotonic() - t0), got)
        for s in socks[1:5]:
            s.close()

        # A worker killed while merging: the merge is run again.
        killed = {"pid": None}
        stop = threading.Event()

        def killer():
            while not stop.is_set() and killed["pid"] is None:
                try:
                    w = d.request({"op": "stats"})["workers"]
                except Exception:  # noqa: BLE001
                    return
                for s in w["slots"]:
                    if s.get("merging") and s["pid"] > 0:
                        os.kill(s["pid"], signal.SIGKILL)
                        killed["pid"] = s["pid"]
                        break
                time.sleep(0.005)
        kt = threading.Thread(target=killer)
        kt.start()
        r, ev = d.submit(parts)
        stop.set()
        kt.join()
        want2 = want_counts(NLINES, 2)
        t.ok(ev is not None and ev.get("ok") is True and ev["counts"] == want2,
             "8 files and a copy of each: every path counted twice")
        t.ok(ev is not None and ev["totals"]["files"] == 16 and
             ev["totals"]["counted"] == 2 * NLINES, "16 files: totals")
        t.ok(killed["pid"] is not None and
             "merge: worker killed by signal 9, retrying" in d.log_text(),
             "a worker killed while merging: the merge was run again",
             killed)
        ev = None

        # A partial damaged in the spool: detected, its file read again
        # (without the cache, whose entries are merged from the cache)
        small = os.path.join(tmp, "small.log")
        write_lines(small, 0, 1000)
        endless = os.path.join(tmp, "endless.log")
        with open(endless, "wb") as f:
            f.truncate(1 << 40)        # sparse: read until truncated
        res = {}

        def submit_bg():
            res["r"], res["ev"] = d.submit([small, endless], cache=False)
        bt = threading.Thread(target=submit_bg)
        bt.start()
        spool = clfdtest.wait_until(lambda: spool_of(d), 30, "the spool")

        def small_partial():
            for name in os.listdir(spool):
                p = os.path.join(spool, name)
                if name.endswith(".part") and os.path.getsize(p) < 1 << 20:
                    return p
            return None
        p = clfdtest.wait_until(small_partial, 60, "the small file's partial")
        with open(p, "r+b") as f:
            f.seek(os.path.getsize(p) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x5a]))
        with open(endless, "r+b") as f:
            f.truncate(0)
        bt.join(120)
        ev = res.get("ev")
        t.ok(ev is not None and ev.get("ok") is True and
             ev["counts"] == want_counts(1000, 1),
             "a damaged partial: the file read again, its counts exact",
             ev and {k: ev.get(k) for k in ("ok", "error", "totals")})
        t.ok("its partial was damaged, reading it again" in d.log_text(),
             "the damaged partial is logged")

        t.eq(d.request({"op": "ping"}).get("ok"), True, "still answering")
        t.eq(d.stop(), 0, "clean exit")
        t.eq(os.listdir(os.path.join(tmp, "spool")), [],
             "the spool is removed at exit")
    except Exception as e:  # noqa: BLE001
        t.ok(False, "unexpected exception", repr(e))
    finally:
        if d is not None:
            d.stop()
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
