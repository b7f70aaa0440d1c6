"""daemon_load: fairness (a 2-file job behind a 2000-file job finishes long
before it), and 200 concurrent clients each getting its own answer."""
import os
import shutil
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

NCLIENTS = 200


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-load-")
    d = None
    try:
        big = clfdtest.gen_logs(os.path.join(tmp, "big"), 2000, 40, seed=51, plain=True)
        small = clfdtest.gen_logs(os.path.join(tmp, "small"), 2, 2000, seed=52)
        # 200 clients of one uid at once: room for all of them under the
        # per-user limit (jobs_per_user is daemon_hostile2's to test)
        d = clfdtest.Daemon(workers=2, config={"jobs_per_user": 256})

        # fairness
        c = d.client(timeout=300)
        r = c.request({"op": "submit", "patterns": [os.path.join(tmp, "big", "*.log")]})
        t.ok(r["ok"] and r["files_total"] == 2000, "2000-file job submitted", r)
        bigjob = r["job"]
        r, ev = d.submit([os.path.join(tmp, "small", "*")])
        st = c.request({"op": "status", "job": bigjob})
        t.ok(ev["ok"] and ev["counts"] == clfdtest.seed_ref(small),
             "the 2-file job behind it is exact", ev.get("error"))
        t.ok(st["state"] != "done" and st["files_done"] < 1900,
             "the 2-file job finished long before the 2000-file job", st)
        c.send({"op": "wait", "job": bigjob})
        ev = c.recv()
        t.ok(ev["ok"] and ev["totals"]["files"] == 2000, "the 2000-file job completes")
        t.eq(ev["counts"], clfdtest.seed_ref(big), "the 2000-file job is exact")
        c.close()

        # 200 concurrent clients, 16 different questions
        sets = clfdtest.gen_logs(os.path.join(tmp, "sets"), 8, 1500, seed=53)
        want = {}
        for i in range(16):
            f = sets[i % 8]
            want[i] = clfdtest.seed_ref([f], book=i >= 8)
        results = [None] * NCLIENTS
        conns = [d.client(timeout=300) for _ in range(NCLIENTS)]
        barrier = threading.Barrier(NCLIENTS)

        def one(k):
            q = k % 16
            req = {"op": "submit", "patterns": [sets[q % 8]], "wait": True}
            if q >= 8:
                req["filter"] = {"under": "/book"}
            barrier.wait()
            try:
                r = conns[k].request(req)
                ev = conns[k].recv()
                results[k] = (r, ev)
            except Exception as e:  # recorded, reported below
                results[k] = (repr(e), None)

        threads = [threading.Thread(target=one, args=(k,)) for k in range(NCLIENTS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        bad = [k for k in range(NCLIENTS)
               if results[k] is None or results[k][1] is None or
               results[k][1].get("counts") != want[k % 16] or
               results[k][1].get("job") != results[k][0].get("job")]
        t.ok(not bad, "%d concurrent clients each got its own correct answer" % NCLIENTS,
             [results[k] and str(results[k][0])[:200] for k in bad[:5]])
        ids = [results[k][0]["job"] for k in range(NCLIENTS) if results[k] and results[k][1]]
        t.eq(len(set(ids)), NCLIENTS, "200 distinct jobs")
        for c in conns:
            c.close()
        st = d.request({"op": "stats"})
        t.ok(st["jobs"]["done"] >= NCLIENTS + 2 and st["queue"]["tasks_pending"] == 0,
             "stats: every job done, nothing pending", st)
        t.eq(d.stop(), 0, "exit 0")
    except Exception as e:
        t.ok(False, "unexpected exception", repr(e) + "\n" + (d.log_text()[-3000:] if d else ""))
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
