"""daemon_limits: jobs_max, files_max, patterns_max, result retention by
time and memory, and a client that never reads its replies."""
import os
import resource
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def code(r):
    return r.get("error", {}).get("code") if isinstance(r, dict) else None


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-limits-")
    ds = []
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 4, 1500, seed=61)
        slow = os.path.join(tmp, "slow.log")
        with open(slow, "wb") as f:
            f.truncate(1 << 40)

        # files_max, patterns_max, jobs_max
        # split_size 0: the never-ending file is one task, not 1024 ranges
        d = clfdtest.Daemon(workers=1, config={"files_max": 3, "patterns_max": 2,
                                               "jobs_max": 2, "split_size": 0})
        ds.append(d)
        r = d.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")]})
        t.eq(code(r), "limit", "4 files over files_max 3 -> limit")
        r = d.request({"op": "submit", "patterns": ["/a", "/b", "/c"]})
        t.eq(code(r), "limit", "3 patterns over patterns_max 2 -> limit")
        r1 = d.request({"op": "submit", "patterns": [slow]})
        r2 = d.request({"op": "submit", "patterns": [logs[0]]})
        r3 = d.request({"op": "submit", "patterns": [logs[1]]})
        t.ok(r1["ok"] and r2["ok"], "two jobs accepted")
        t.eq(code(r3), "limit", "a third job over jobs_max 2 -> limit")
        def one_and_one():
            q = d.request({"op": "stats"})["queue"]
            return q if q["jobs_running"] == 1 and q["jobs_queued"] == 1 else None
        try:
            st = clfdtest.wait_until(one_and_one, 30, "one running, one queued")
        except TimeoutError:
            st = d.request({"op": "stats"})["queue"]
        t.ok(st["jobs_running"] == 1 and st["jobs_queued"] == 1, "one running, one queued", st)
        r = d.request({"op": "cancel", "job": r2["job"]})
        t.eq(r.get("state"), "cancelled", "cancel the queued job")
        r3 = d.request({"op": "submit", "patterns": [logs[1]]})
        t.ok(r3["ok"], "a slot is free again after a cancel", r3)
        pid = d.wait_workers()[0]
        r = d.request({"op": "cancel", "job": r1["job"]})
        t.eq(r.get("state"), "cancelled", "cancel the running job (a never-ending file)")
        r, ev = d.submit([logs[2]])
        t.ok(ev is not None and ev["ok"] and ev["counts"] == clfdtest.seed_ref([logs[2]]),
             "the only worker, busy with the cancelled job, is freed for the next one")
        t.ok(pid not in d.wait_workers(), "by replacing it")
        r = d.request({"op": "status", "job": r3["job"]})
        t.eq(r.get("state"), "done", "the job queued behind it ran too")

        # a client that never reads: bounded memory, others served
        c = d.client()
        base = rss_kb(d.pid)
        c.sock.setblocking(False)
        sent = 0
        try:
            while sent < (64 << 20):
                sent += c.sock.send(b'{"op":"stats"}\n' * 4096)
        except BlockingIOError:
            pass
        t.ok(d.request({"op": "ping"})["ok"], "others are served while a client does not read")
        grow = rss_kb(d.pid) - base
        t.ok(grow < 64 * 1024, "daemon memory stays bounded (%d KB more)" % grow)
        c.close()
        t.ok(d.request({"op": "ping"})["ok"], "still serving after the non-reader left")
        t.eq(d.stop(), 0, "exit 0")

        # out of descriptors: every client gets an answer, served or
        # limit (a descriptor is kept in reserve to refuse with), never
        # silence; once clients leave, new ones are served
        d4 = clfdtest.Daemon(workers=1, preexec=lambda: resource.setrlimit(
            resource.RLIMIT_NOFILE, (48, 48)))
        ds.append(d4)
        conns = [d4.client(timeout=30) for _ in range(80)]
        answers = []
        for c in conns:
            try:
                c.send({"op": "ping"})
            except (BrokenPipeError, ConnectionResetError):
                pass        # refused already: its answer is waiting
        for c in conns:
            try:
                answers.append(c.recv())
            except ConnectionResetError:
                answers.append(None)
        t.ok(all(r is not None and (r.get("ok") or code(r) == "limit")
                 for r in answers),
             "out of descriptors: each of 80 clients answered, served or limit",
             answers)
        nlimit = sum(1 for r in answers if r and code(r) == "limit")
        t.ok(answers[0] and answers[0].get("ok") and nlimit > 0,
             "the first are served, the rest refused with limit (%d)" % nlimit)
        for c in conns:
            c.close()
        t.ok(clfdtest.wait_until(lambda: d4.request({"op": "ping"}).get("ok"), 30,
                                 "a ping served"),
             "once they left, a new client is served")
        t.ok("out of file descriptors" in d4.log_text(),
             "running out of descriptors is logged")
        t.eq(d4.stop(), 0, "exit 0")

        # result_ttl: a finished result goes away after its time
        d2 = clfdtest.Daemon(workers=1, config={"result_ttl": 1})
        ds.append(d2)
        r, ev = d2.submit([logs[0]])
        job = r["job"]
        t.ok(clfdtest.wait_until(
            lambda: code(d2.request({"op": "result", "job": job})) == "not_found", 10, "expiry"),
            "result_ttl: the result expires")
        t.eq(d2.request({"op": "stats"})["jobs"]["kept"], 0, "stats: no result kept")
        t.eq(d2.stop(), 0, "exit 0")

        # result_memory: the oldest results are dropped first
        d3 = clfdtest.Daemon(workers=1, config={"result_memory": "1K"})
        ds.append(d3)
        ids = [d3.submit([f])[0]["job"] for f in logs[:3]]
        t.eq(code(d3.request({"op": "result", "job": ids[0]})), "not_found",
             "result_memory: the oldest result is dropped")
        r = d3.request({"op": "result", "job": ids[2]})
        t.ok(r["ok"] and r["counts"] == clfdtest.seed_ref([logs[2]]),
             "result_memory: the newest is kept", code(r))
        t.eq(d3.stop(), 0, "exit 0")
    except Exception as e:
        t.ok(False, "unexpected exception",
             repr(e) + "\n" + "\n".join(x.log_text()[-2000:] for x in ds))
    finally:
        for x in ds:
            x.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
