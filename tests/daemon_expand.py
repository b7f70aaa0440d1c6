"""daemon_expand: a submit's patterns are expanded by a worker, never by
the supervisor's loop.

The workers and the expander (the worker that runs nothing but
expansions) are stopped (SIGSTOP) before a submit, so its expansion is
held in a worker for as long as the test needs: `stats` shows it there,
another client's ping is answered, and the submit has no reply yet, with
no timing involved. Then: a huge brace pattern (2^18 patterns inside one
string) running free while pings are answered;
a client gone before its reply; a cancel and SIGTERM during an
expansion; an expansion whose worker is killed (retried) and one that
times out twice (the submit fails with `internal`)."""
import os
import select
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def brace(n):
    return "{a,b}" * n


def stop(pids, sig):
    for p in pids:
        os.kill(p, sig)


def expanding(d):
    """The pid of a worker (or the expander) expanding patterns, else None."""
    st = d.request({"op": "stats"})
    x = st["workers"]["expander"]
    if x["state"] == "busy" and x["expanding"]:
        return x["pid"]
    for s in st["workers"]["slots"]:
        if s["state"] == "busy" and s.get("expanding"):
            return s["pid"]
    return None


def idle_workers(d):
    """Wait until no job is in flight and every worker is idle; their pids."""
    def idle():
        st = d.request({"op": "stats"})
        q = st["queue"]
        w = st["workers"]
        if q["jobs_expanding"] or q["jobs_queued"] or q["jobs_running"] or \
                w["busy"] or w["alive"] != w["configured"] or \
                w["expander"]["state"] != "idle":
            return None
        return [s["pid"] for s in w["slots"]] + [w["expander"]["pid"]]
    return clfdtest.wait_until(idle, 30, "idle workers")


def replied(c):
    """True when the daemon has sent c something (without reading it)."""
    return bool(c.buf) or bool(select.select([c.sock], [], [], 0)[0])


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-expand-")
    ds = []
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 2, 2000, seed=71)
        want = clfdtest.seed_ref(logs)
        # two files named by 18 letters each: the brace pattern matches both
        bdir = os.path.join(tmp, "b")
        os.mkdir(bdir)
        for name in ("a" * 18, "b" * 18):
            shutil.copy(logs[0] if name[0] == "a" else logs[1], os.path.join(bdir, name))
        big = os.path.join(bdir, brace(18))
        bigwant = want

        # patterns_max counts brace alternatives: let 2^18 of them through
        # split_size 0: a never-ending file below is one task, not 1024 ranges
        d = clfdtest.Daemon(workers=2, config={"patterns_max": 1 << 19,
                                               "split_size": 0})
        ds.append(d)
        pids = idle_workers(d)

        # 1. expansion held in a stopped worker: ping answered, no reply yet
        stop(pids, signal.SIGSTOP)
        a = d.client()
        a.send({"op": "submit", "patterns": [big], "wait": True})
        xpid = clfdtest.wait_until(lambda: expanding(d), 30, "an expansion on a worker")
        t.ok(xpid == pids[-1], "stats shows the expander expanding the submit's patterns")
        st = d.request({"op": "stats"})
        t.eq(st["queue"]["jobs_expanding"], 1, "stats: one job expanding")
        t.eq(d.request({"op": "list"})["jobs"], [], "the expanding job is in no list yet")
        b = d.client()
        r = b.request({"op": "ping"})
        t.ok(r["ok"] and r["pid"] == d.pid, "another client's ping is answered during the expansion")
        t.ok(not replied(a), "the submit has no reply while its expansion runs")
        # requests pipelined behind the submit wait for its reply
        a.send({"op": "ping"})
        t.ok(not replied(a), "a request behind the submit waits its turn")
        t0 = time.monotonic()
        stop(pids, signal.SIGCONT)
        r = a.recv()
        secs = time.monotonic() - t0
        t.ok(r["ok"] and r["files_total"] == 2 and r["job"] >= 1,
             "the submit reply comes with the file list", r)
        t.diag("expansion of %d brace alternatives in a worker: %.2f s" % (1 << 18, secs))
        ev = a.recv()
        t.ok(ev.get("event") == "done" and ev["counts"] == bigwant and ev["unmatched"] == [],
             "the job's result is exact", {k: ev.get(k) for k in ("ok", "error", "unmatched")})
        r = a.recv()
        t.ok(r["ok"] and "version" in r, "then the pipelined ping is answered")
        a.close()
        b.close()

        # 2. the same expansion running free: pings answered while it runs
        a = d.client()
        a.send({"op": "submit", "patterns": [big]})
        b = d.client()
        during = worst = 0
        while not replied(a):
            p0 = time.monotonic()
            r = b.request({"op": "ping"})
            worst = max(worst, time.monotonic() - p0)
            if r["ok"] and not replied(a):
                during += 1
        r = a.recv()
        t.ok(r["ok"] and r["files_total"] == 2, "free-running huge brace pattern expanded", r)
        t.ok(during > 0, "%d pings answered during the expansion" % during)
        t.diag("slowest ping during the expansion: %.1f ms" % (worst * 1000))
        a.close()
        b.close()

        # 3. the submitter disconnects before its reply: the job is made anyway
        pids = idle_workers(d)
        seen = max([j["job"] for j in d.request({"op": "list"})["jobs"]] + [0])
        stop(pids, signal.SIGSTOP)
        a = d.client()
        a.send({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")]})
        clfdtest.wait_until(lambda: expanding(d), 30, "an expansion on a worker")
        a.close()
        # (the supervisor has seen it go: only the stats client is connected)
        clfdtest.wait_until(lambda: d.request({"op": "stats"})["connections"] == 1, 30,
                            "the disconnect to be seen")
        stop(pids, signal.SIGCONT)
        jobs = clfdtest.wait_until(lambda: [j for j in d.request({"op": "list"})["jobs"]
                                            if j["job"] > seen and j["files_total"] == 2
                                            and j["state"] == "done"],
                                   30, "the job of a gone client to finish")
        r = d.request({"op": "result", "job": jobs[-1]["job"]})
        t.ok(r["ok"] and r["counts"] == want, "a client gone before its reply: its job runs, exact")
        t.ok("(its client is gone)" in d.log_text(), "and the log says the client was gone")

        # 4. every worker on a long file: a submit is answered all the same;
        #    and a cancel meanwhile leaves the expansion alone
        slow = os.path.join(tmp, "slow.log")
        with open(slow, "wb") as f:
            f.truncate(1 << 40)
        pids = idle_workers(d)
        c = d.client()
        jobs = [c.request({"op": "submit", "patterns": [slow]})["job"] for _ in range(2)]
        busy = clfdtest.wait_until(lambda: [s["pid"] for s in d.request({"op": "stats"})
                                            ["workers"]["slots"] if s.get("path") == slow]
                                   if d.request({"op": "stats"})["workers"]["busy"] == 2
                                   else None, 30, "both workers on never-ending files")
        r = c.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")]})
        t.ok(r["ok"] and r["files_total"] == 2,
             "with every worker on a long file, a submit is answered (the expander)", r)
        t.ok(all(clfdtest.pid_alive(p) for p in busy), "the workers were left on their files")
        os.kill(pids[-1], signal.SIGSTOP)
        a = d.client()
        a.send({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")], "wait": True})
        t.eq(clfdtest.wait_until(lambda: expanding(d), 30, "expansion"), pids[-1],
             "the next expansion is on the (stopped) expander")
        for j in jobs:
            r = c.request({"op": "cancel", "job": j})
            t.eq(r.get("state"), "cancelled", "cancel a never-ending job meanwhile")
        clfdtest.wait_until(lambda: not any(clfdtest.pid_alive(p) for p in busy), 30,
                            "the cancelled jobs' workers")
        t.eq(expanding(d), pids[-1], "the expander is left alone by the cancels")
        os.kill(pids[-1], signal.SIGCONT)
        r = a.recv()
        ev = a.recv()
        t.ok(r["ok"] and r["files_total"] == 2 and ev["counts"] == want,
             "the submit expanded during the cancels completes, exact")
        a.close()
        c.close()

        # 5. the expanding worker killed: retried on a fresh worker
        pids = idle_workers(d)
        stop(pids, signal.SIGSTOP)
        a = d.client()
        a.send({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")], "wait": True})
        xpid = clfdtest.wait_until(lambda: expanding(d), 30, "expansion")
        os.kill(xpid, signal.SIGKILL)
        stop([p for p in pids if p != xpid], signal.SIGCONT)
        r = a.recv()
        ev = a.recv()
        t.ok(r["ok"] and r["files_total"] == 2 and ev["counts"] == want,
             "expansion retried after its worker was killed; job exact", r)
        t.ok("expanding the patterns, retrying" in d.log_text(), "the retry is logged")
        a.close()

        # 6. SIGTERM during an expansion: the submit gets shutting_down
        pids = idle_workers(d)
        stop(pids, signal.SIGSTOP)
        a = d.client()
        a.send({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")], "wait": True})
        clfdtest.wait_until(lambda: expanding(d), 30, "expansion")
        d.signal(signal.SIGTERM)
        r = a.recv()
        t.eq(r.get("error", {}).get("code"), "shutting_down",
             "SIGTERM during an expansion: the submit gets shutting_down")
        stop(pids, signal.SIGCONT)
        t.eq(d.proc.wait(15), 0, "clfd exits 0")
        t.ok(not any(clfdtest.pid_alive(p) for p in pids), "no worker left behind")
        a.close()

        # 7. an expansion that times out twice: the submit fails, internal
        # (10^6 alternatives, the most patterns_max allows, each listing a
        # directory: seconds of walking, with walk_max raised to allow it)
        d2 = clfdtest.Daemon(workers=1, config={"task_timeout": 1,
                                                "patterns_max": 1000000,
                                                "walk_max": 1000000000})
        ds.append(d2)
        r = d2.request({"op": "submit", "patterns": [os.path.join(
            bdir, "*", "{0,1,2,3,4,5,6,7,8,9}" * 6)]})
        t.ok(r.get("error", {}).get("code") == "internal", "an expansion killed twice: internal", r)
        t.eq(r.get("error", {}).get("message"),
             "expanding patterns: worker killed by signal 14 (twice)", "the error names why")
        r, ev = d2.submit([os.path.join(tmp, "logs", "*")])
        t.ok(ev is not None and ev["counts"] == want, "the daemon serves the next submit")
        t.eq(d2.stop(), 0, "clfd exits 0")
    except Exception as e:
        t.ok(False, "unexpected exception",
             repr(e) + "\n" + "\n".join(x.log_text()[-3000:] for x in ds))
    finally:
        for x in ds:
            try:
                for p in x.worker_pids():
                    os.kill(p, signal.SIGCONT)
            except OSError:
                pass
            x.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
