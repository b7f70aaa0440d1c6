"""daemon_workers: workers and the expander named for ps, workers killed
mid-task, a crash-looping task, and a supervisor killed outright.

A file that never ends is a 1 TB sparse file: a worker reading it stays
busy on it for as long as the test needs, and `stats` says which worker
(pid) is busy on which path, so the kills are deterministic."""
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

# A never-ending sparse file is one task, not split into ranges
# (daemon_split tests the ranges).
ONE_TASK = {"split_size": "0"}


def sparse(path):
    with open(path, "wb") as f:
        f.truncate(1 << 40)


def busy_on(d, path, not_pid=None):
    """Wait until a worker is busy on path; its pid."""
    def find():
        for s in d.request({"op": "stats"})["workers"]["slots"]:
            if s["state"] == "busy" and s.get("path") == path and s["pid"] != not_pid:
                return s["pid"]
        return None
    return clfdtest.wait_until(find, 60, "a worker busy on " + path)


def entry(ev, path):
    return [f for f in ev["files"] if f["path"] == path][0]


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-workers-")
    d = d2 = d3 = None
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 6, 5000, seed=31)
        extra = clfdtest.gen_logs(os.path.join(tmp, "extra"), 1, 3000, seed=32, plain=True)[0]
        slow = os.path.join(tmp, "logs", "slow.log")
        d = clfdtest.Daemon(workers=2, config=ONE_TASK)
        before = d.wait_workers()

        # 0. named for ps: the workers and the expander, not the supervisor
        def proc(pid, what):
            with open("/proc/%d/%s" % (pid, what), "rb") as f:
                return f.read()
        xpid = d.request({"op": "stats"})["workers"]["expander"]["pid"]
        t.eq([proc(p, "comm") for p in before], [b"clfd-worker\n"] * 2,
             "workers' comm is clfd-worker")
        t.eq(proc(xpid, "comm"), b"clfd-expander\n", "the expander's comm is clfd-expander")
        t.eq(proc(d.pid, "comm"), b"clfd\n", "the supervisor's comm stays clfd")
        slots = d.request({"op": "stats"})["workers"]["slots"]
        want = sorted(b"clfd: worker %d" % s["slot"] for s in slots)
        t.eq(sorted(proc(s["pid"], "cmdline").rstrip(b"\0") for s in slots), want,
             "workers' command line is clfd: worker N")
        t.eq(proc(xpid, "cmdline").rstrip(b"\0"), b"clfd: expander",
             "the expander's command line is clfd: expander")
        t.ok(proc(d.pid, "cmdline").startswith(clfdtest.CLFD.encode() + b"\0"),
             "the supervisor's command line is left alone")

        # 1. killed once: the task is retried on a fresh worker and counted once
        sparse(slow)
        c = d.client(timeout=120)
        r = c.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")], "wait": True})
        t.ok(r["ok"] and r["files_total"] == 7, "job with a never-ending file submitted", r)
        pid = busy_on(d, slow)
        t.ok(pid in before, "stats names the busy worker's pid")
        os.rename(extra, slow)  # the retry will read a real log
        os.kill(pid, signal.SIGKILL)
        ev = c.recv()
        c.close()
        t.ok(ev["ok"] and ev["state"] == "done", "job done after its worker was killed",
             ev.get("error"))
        t.eq(entry(ev, slow)["error"], None, "the retried file has no error")
        t.eq(ev["counts"], clfdtest.seed_ref(logs + [slow]),
             "every file counted exactly once after a retry")
        t.ok("killed by signal 9" in d.log_text(), "the worker's death is logged with its signal")
        after = d.wait_workers()
        t.ok(pid not in after and len(after) == 2, "the killed worker was replaced", after)
        st = d.request({"op": "stats"})["workers"]
        t.ok(st["restarts"] >= 1, "stats counts the restart", st)

        # 2. killed twice: the file is reported failed, the rest is exact
        os.unlink(slow)
        sparse(slow)
        c = d.client(timeout=120)
        r = c.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")], "wait": True})
        p1 = busy_on(d, slow)
        os.kill(p1, signal.SIGKILL)
        p2 = busy_on(d, slow, not_pid=p1)
        t.ok(p2 != p1, "the retry runs on another worker")
        os.kill(p2, signal.SIGKILL)
        ev = c.recv()
        c.close()
        e = entry(ev, slow)
        t.ok(ev["ok"] and ev["state"] == "done", "job done after two kills", ev.get("error"))
        t.eq(e["error"], "worker killed by signal 9 (twice)", "the file's error says why")
        t.ok(e["counted"] == 0 and e["lines"] == 0, "the failed file has zero counts", e)
        t.eq(ev["totals"]["failed"], 1, "totals.failed is 1")
        t.eq(ev["counts"], clfdtest.seed_ref(logs), "every other file counted exactly once")
        t.ok(d.request({"op": "ping"})["ok"], "daemon still serving")
        r, ev = d.submit([os.path.join(tmp, "logs", "access-*")])
        t.eq(ev["counts"], clfdtest.seed_ref(logs), "the next job is exact")

        # 3. a crash-looping task: task_timeout kills the worker each time
        d2 = clfdtest.Daemon(workers=2, config=dict(ONE_TASK, task_timeout=1))
        r, ev = d2.submit([os.path.join(tmp, "logs", "*")])
        e = entry(ev, slow)
        t.ok(ev["ok"] and ev["state"] == "done", "crash-looping task: job completes", ev.get("error"))
        t.eq(e["error"], "worker killed by signal 14 (twice)", "crash-looping task: retried once, then failed")
        t.eq(ev["counts"], clfdtest.seed_ref(logs), "crash-looping task: the others are exact")
        w = d2.wait_workers()
        t.eq(len(w), 2, "workers respawned after the crashes")
        r, ev = d2.submit([os.path.join(tmp, "logs", "access-*")])
        t.eq(ev["counts"], clfdtest.seed_ref(logs), "crash-looping task: later jobs are exact")
        t.eq(d2.stop(), 0, "clfd exits 0")

        # 4. the supervisor killed outright: its workers go too
        d3 = clfdtest.Daemon(workers=2, config=ONE_TASK)
        pids = d3.wait_workers()
        c = d3.client()
        c.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")]})
        busy_on(d3, slow)
        os.kill(d3.pid, signal.SIGKILL)
        d3.proc.wait()
        gone = clfdtest.wait_until(lambda: not any(clfdtest.pid_alive(p) for p in pids), 20,
                                   "workers to exit")
        t.ok(gone, "supervisor SIGKILLed: every worker exits (idle and busy)")
        c.close()
        t.ok(os.path.exists(d3.sock), "a killed daemon leaves its socket file behind")
        d4 = clfdtest.Daemon(workers=1, tmp=d3.dir, sock=d3.sock, config=ONE_TASK)
        t.ok(d4.request({"op": "ping"})["pid"] == d4.pid, "the stale socket is replaced")
        t.eq(d4.stop(), 0, "the new daemon exits 0")
        d4.logf.close()
        t.eq(d.stop(), 0, "first clfd exits 0")
    except Exception as e:
        t.ok(False, "unexpected exception", repr(e) + "\n" + (d.log_text()[-3000:] if d else ""))
    finally:
        for x in (d, d2, d3):
            if x is not None:
                x.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
