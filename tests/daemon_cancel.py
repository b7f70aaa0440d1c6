"""daemon_cancel: workers killed by `cancel` are replaced at once.

A cancel stops the workers running the cancelled job's tasks; that is
not a crash: no back-off, no "restarts" (they are counted in "replaced").
With one worker, eight cancels in a row of a job on a never-ending file
(a 1 TB sparse file) would add up to seconds of crash back-off (0.1 s
doubling to 10 s); then a new job must be served at once."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

CANCELS = 8


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-cancel-")
    d = None
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 2, 2000, seed=81)
        slow = os.path.join(tmp, "slow.log")
        with open(slow, "wb") as f:
            f.truncate(1 << 40)
        d = clfdtest.Daemon(workers=1)
        c = d.client()
        killed = []
        for i in range(CANCELS):
            pid = d.wait_workers()[0]
            r = c.request({"op": "submit", "patterns": [slow]})
            clfdtest.wait_until(
                lambda: d.request({"op": "stats"})["workers"]["slots"][0].get("path") == slow,
                30, "the worker on the never-ending file")
            r = c.request({"op": "cancel", "job": r["job"]})
            clfdtest.wait_until(lambda: not clfdtest.pid_alive(pid), 30, "the worker to go")
            killed.append(r.get("state") == "cancelled")
        t.ok(all(killed), "%d jobs cancelled, each on the only worker" % CANCELS)
        w = d.request({"op": "stats"})["workers"]
        t.eq(w["restarts"], 0, "stats: cancels are not counted as restarts (crashes)")
        t.eq(w["replaced"], CANCELS, "stats: the cancelled jobs' workers were replaced")
        t.eq(w["slots"][0]["crashes"], 0, "the slot has no crash to back off from")
        t0 = time.monotonic()
        r, ev = d.submit(logs)
        secs = time.monotonic() - t0
        t.ok(ev is not None and ev["counts"] == clfdtest.seed_ref(logs),
             "a new job after the cancels is exact")
        # with the cancels taken for crashes the slot would wait 10 s to respawn
        t.ok(secs < 5, "and served at once, not after a back-off (%.2f s)" % secs)
        t.ok("killed by signal 9" not in d.log_text(), "no crash warning was logged")
        c.close()
        t.eq(d.stop(), 0, "clfd exits 0")
    except Exception as e:
        t.ok(False, "unexpected exception", repr(e) + "\n" + (d.log_text()[-3000:] if d else ""))
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
