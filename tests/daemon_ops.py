"""daemon_ops: every op of the client protocol against a real clfd, and
results equal to the reference (tests/refcount.py) on generated and real
logs."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def check_result(t, ev, files, want, desc):
    """The done event of a finished job: ok, every file, counts as wanted."""
    t.ok(ev is not None and ev.get("event") == "done" and ev.get("ok") is True,
         desc + ": done event, ok", ev if ev is None else {k: ev.get(k) for k in ("ok", "error", "state")})
    if ev is None:
        return
    t.eq([f["path"] for f in ev["files"]], sorted(files), desc + ": files sorted by path")
    t.eq(ev["counts"], want, desc + ": counts equal the reference")
    vals = list(ev["counts"].items())
    t.ok(all((a[1] > b[1]) or (a[1] == b[1] and a[0] < b[0])
             for a, b in zip(vals, vals[1:])), desc + ": counts ordered by count, then path")
    tot = ev["totals"]
    t.eq(tot["counted"], sum(want.values()), desc + ": totals.counted is the sum of counts")
    t.eq(tot["distinct"], len(want), desc + ": totals.distinct")
    t.eq(tot["lines"], sum(f["lines"] for f in ev["files"]), desc + ": totals.lines")


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-ops-")
    d = None
    try:
        gz = clfdtest.gen_logs(os.path.join(tmp, "gz"), 5, 3000, seed=11)
        plain = clfdtest.gen_logs(os.path.join(tmp, "plain"), 3, 2000, seed=12,
                                  plain=True, junk=0.02)
        d = clfdtest.Daemon(workers=2)

        r = d.request({"op": "ping"})
        t.ok(r["ok"] is True and r["protocol"] == 1 and r["pid"] == d.pid
             and isinstance(r["version"], str), "ping: version, protocol 1, pid", r)

        # submit + wait on gzip logs, with and without under=/book
        r, ev = d.submit([os.path.join(tmp, "gz", "*.gz")])
        t.ok(r["ok"] and r["files_total"] == 5 and r["job"] >= 1, "submit: job id, files_total", r)
        check_result(t, ev, gz, clfdtest.seed_ref(gz), "gzip logs")
        job1 = r["job"]
        r, ev = d.submit([os.path.join(tmp, "gz", "*.gz")], filter={"under": "/book"})
        check_result(t, ev, gz, clfdtest.seed_ref(gz, book=True), "gzip logs, under /book")
        t.eq(ev["filter"].get("under"), "/book", "result: effective filter keeps under")
        t.ok(isinstance(ev["filter"].get("exclude_names"), list) and
             "favicon.ico" in ev["filter"]["exclude_names"],
             "result: effective filter has the default exclude_names filled in", ev["filter"])

        # plain logs with junk, brace patterns, a pattern matching nothing
        pats = [os.path.join(tmp, "plain", "access-00{0,1,2}.log"), "/nonexistent-clfd/*.log",
                os.path.join(tmp, "plain", "*.log")]
        r, ev = d.submit(pats)
        check_result(t, ev, plain, clfdtest.seed_ref(plain), "plain logs with junk, braces, dedupe")
        t.eq(ev["unmatched"], ["/nonexistent-clfd/*.log"], "unmatched patterns reported")
        t.ok(ev["totals"]["malformed"] > 0, "junk lines counted as malformed", ev["totals"])

        # real logs
        real = clfdtest.real_logs()
        if real:
            r, ev = d.submit(real)
            check_result(t, ev, real, clfdtest.seed_ref(real, any_=True), "real logs (--any)")
        else:
            t.ok(True, "real logs # SKIP none found")

        # top N
        r, ev = d.submit([os.path.join(tmp, "gz", "*.gz")], top=5)
        full = clfdtest.seed_ref(gz)
        best = sorted(full.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        t.eq(list(ev["counts"].items()), best, "top 5 keeps the first five")
        t.eq(ev["totals"]["distinct"], len(full), "top: totals still count every path")

        # result, status, list
        c = d.client()
        r = c.request({"op": "result", "job": job1})
        t.ok(r["ok"] is True and r["job"] == job1 and r["state"] == "done" and
             "event" not in r, "result: finished job", {k: r.get(k) for k in ("ok", "job", "state")})
        t.eq(r["counts"], clfdtest.seed_ref(gz), "result: same counts as the done event")
        r = c.request({"op": "status", "job": job1})
        t.ok(r["ok"] and r["state"] == "done" and r["files_total"] == 5 and
             r["files_done"] == 5 and r["files_failed"] == 0 and r["bytes_done"] > 0 and
             isinstance(r["finished"], int) and isinstance(r["submitted"], int),
             "status: finished job", r)
        r = c.request({"op": "list"})
        t.ok(r["ok"] and job1 in [j["job"] for j in r["jobs"]] and
             all(set(j) >= {"job", "state", "files_total", "files_done", "submitted"}
                 for j in r["jobs"]), "list: every job with its fields", r)
        r2 = c.request({"op": "status"})
        t.eq(r2.get("jobs"), r["jobs"], "status without job = list")
        r = c.request({"op": "result", "job": 999999})
        t.eq(r["error"]["code"], "not_found", "result: unknown job -> not_found")
        r = c.request({"op": "status", "job": 999999})
        t.eq(r["error"]["code"], "not_found", "status: unknown job -> not_found")
        r = c.request({"op": "cancel", "job": 999999})
        t.eq(r["error"]["code"], "not_found", "cancel: unknown job -> not_found")
        r = c.request({"op": "wait", "job": 999999})
        t.eq(r["error"]["code"], "not_found", "wait: unknown job -> not_found")
        r = c.request({"op": "cancel", "job": job1})
        t.ok(r["ok"] is False and r["error"]["code"] == "finished" and
             r["error"]["message"] == "job %d is already done" % job1,
             "cancel: a finished job -> finished, its own code", r)
        r = c.request({"op": "status", "job": job1})
        t.eq(r.get("state"), "done", "cancel: the finished job keeps its state")

        # submit without wait, then wait on another connection, with progress
        many = clfdtest.gen_logs(os.path.join(tmp, "many"), 12, 20000, seed=13)
        r = c.request({"op": "submit", "patterns": [os.path.join(tmp, "many", "*")]})
        t.ok(r["ok"] and r["files_total"] == 12, "submit without wait", r)
        job = r["job"]
        st = c.request({"op": "status", "job": job})
        res = c.request({"op": "result", "job": job})
        t.ok(st["state"] in ("queued", "running", "done"), "status: a state", st)
        t.ok(res["ok"] or res["error"]["code"] == "not_finished",
             "result while running -> not_finished (or already done)", res)
        c2 = d.client()
        c2.send({"op": "wait", "job": job, "progress": True})
        evs = []
        while True:
            ev = c2.recv()
            evs.append(ev)
            if ev is None or ev.get("event") == "done":
                break
        prog = [e for e in evs[:-1]]
        t.ok(all(e["event"] == "progress" and e["job"] == job and e["files_total"] == 12
                 and 0 <= e["files_done"] <= 12 for e in prog), "wait: progress events well-formed", prog)
        t.ok(len(prog) <= 4 * 30, "progress events at most a few per second", len(prog))
        check_result(t, evs[-1], many, clfdtest.seed_ref(many), "wait on another connection")
        r = c2.request({"op": "ping"})
        t.ok(r["ok"], "connection usable after its wait")
        c2.close()

        # stats
        r = c.request({"op": "stats"})
        t.ok(r["ok"] and r["pid"] == d.pid and r["workers"]["configured"] == 2 and
             r["workers"]["alive"] == 2 and r["jobs"]["submitted"] >= 6 and
             r["totals"]["files"] >= 30 and r["connections"] >= 1 and
             set(r["queue"]) == {"jobs_expanding", "jobs_queued", "jobs_running",
                                 "tasks_pending"} and
             r["workers"]["expander"]["state"] in ("starting", "idle") and
             r["uptime"] >= 0, "stats: workers, queue, jobs, totals, connections", r)

        # cancel a running job
        big = clfdtest.gen_logs(os.path.join(tmp, "big"), 40, 20000, seed=14)
        # a fresh connection: making the logs may outlast idle_timeout
        # (60 s) on a loaded machine, and c would have been let go
        c.close()
        c = d.client()
        c3 = d.client()
        r = c3.request({"op": "submit", "patterns": [os.path.join(tmp, "big", "*")], "wait": True})
        job = r["job"]
        r = c.request({"op": "cancel", "job": job})
        t.ok(r["ok"] and r["job"] == job and r["state"] == "cancelled", "cancel: running job", r)
        ev = c3.recv()
        done = [f["path"] for f in ev.get("files", [])]
        t.ok(ev["event"] == "done" and ev["ok"] is True and ev["state"] == "cancelled" and
             ev.get("partial") is True and ev.get("files_total") == 40 and
             ev.get("files_done") == len(done) < 40,
             "cancel: the waiting client gets done, cancelled, partial (%d of 40 files)"
             % len(done), {k: v for k, v in ev.items() if k not in ("files", "counts")})
        t.ok(ev.get("counts") == (clfdtest.seed_ref(done) if done else {}),
             "cancel: the counts are those of the files done, exact")
        r = clfdtest.wait_until(lambda: c.request({"op": "result", "job": job}), 10, "result")
        t.ok(r["ok"] is True and r["state"] == "cancelled" and r.get("counts") == ev.get("counts"),
             "result of a cancelled job: the same partial result", r.get("error"))
        r = c.request({"op": "status", "job": job})
        t.eq(r["state"], "cancelled", "status of a cancelled job")
        c3.close()
        r, ev = d.submit([os.path.join(tmp, "gz", "*.gz")])
        t.eq(ev["counts"], clfdtest.seed_ref(gz), "after a cancel, the next job is exact")
        c.close()

        # pipelined requests on one connection come back in order
        c = d.client()
        c.send_raw(b"".join(b'{"op":"status","job":%d}\n' % j for j in range(1, 6)))
        got = [c.recv() for _ in range(5)]
        t.eq([g.get("job") for g in got], [1, 2, 3, 4, 5], "pipelined requests answered in order")
        c.close()
        t.eq(d.stop(), 0, "SIGTERM: exit 0")
        t.ok(not os.path.exists(d.sock), "socket removed at exit")
    except Exception as e:  # report, never hang
        t.ok(False, "unexpected exception", repr(e) + "\n" + (d.log_text()[-3000:] if d else ""))
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
