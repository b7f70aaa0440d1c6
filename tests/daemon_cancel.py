"""daemon_cancel: workers killed by `cancel` are replaced at once.

A cancel stops the workers running the cancelled job's tasks; that is
not a crash: no back-off, no "restarts" (they are counted in "replaced").
With one worker, eight cancels in a row of a job on a never-ending file
(a 1 TB sparse file) would add up to seconds of crash back-off (0.1 s
doubling to 10 s); then a new job must be served at once."""
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

# A never-ending sparse file is one task, not split into ranges
# (daemon_split tests the ranges).
ONE_TASK = {"split_size": "0"}

CANCELS = 8


def partial_result(t, d, tmp, slow):
    """A cancelled job's result: the counts of the files done before the
    cancel (merged as the job would have; several merges, 20 files), marked
    partial, to its waiting client and to result; the file being read is
    stopped and left out; a job cancelled before any file: empty counts."""
    small = clfdtest.gen_logs(os.path.join(tmp, "small"), 20, 300, seed=82)
    # sorted after the small ones: the last file handed out, and never done
    never = os.path.join(tmp, "small", "zz-never.log")
    with open(never, "wb") as f:
        f.truncate(1 << 40)
    w = d.client()
    r = w.request({"op": "submit", "patterns": [os.path.join(tmp, "small", "*")], "wait": True})
    job = r.get("job")
    t.eq(r.get("files_total"), 21, "partial: 21 files, the last never ending")
    clfdtest.wait_until(lambda: d.request({"op": "status", "job": job})["files_done"] == 20,
                        60, "the 20 small files done")
    r = d.request({"op": "cancel", "job": job})
    t.eq(r.get("state"), "cancelled", "partial: cancelled with 20 of 21 files done")
    ev = w.recv()
    w.close()
    files = [f["path"] for f in ev.get("files", [])]
    t.ok(ev.get("event") == "done" and ev.get("ok") is True and
         ev.get("state") == "cancelled" and ev.get("partial") is True and
         ev.get("files_done") == 20 and ev.get("files_total") == 21,
         "partial: the waiting client gets the result: ok, cancelled, partial, 20 of 21",
         {k: ev.get(k) for k in ("ok", "state", "partial", "files_done", "files_total", "error")})
    t.ok(files == small and never not in files and ev.get("totals", {}).get("files") == 20,
         "partial: its files are the 20 done, the one being read left out", files[-3:])
    want = clfdtest.seed_ref(small)
    t.ok(ev.get("counts") == want, "partial: the counts of those 20 files, exact "
         "(%d paths)" % len(want))
    r = d.request({"op": "result", "job": job})
    t.ok(r.get("ok") is True and r.get("state") == "cancelled" and r.get("partial") is True and
         r.get("counts") == want, "partial: result gives the same", r.get("error"))
    r = d.request({"op": "cancel", "job": job})
    t.eq((r.get("error") or {}).get("code"), "finished", "partial: a second cancel: finished")
    t.ok("job %d: cancelled after 20 of 21 files" % job in d.log_text(),
         "partial: logged with how far it got")

    # cancelled before any file is read (queued behind a job on the only
    # worker): an empty result, still partial
    hold = d.request({"op": "submit", "patterns": [slow]})
    clfdtest.wait_until(
        lambda: d.request({"op": "stats"})["workers"]["slots"][0].get("path") == slow,
        30, "the worker on the never-ending file")
    r = d.request({"op": "submit", "patterns": small[:3]})
    q = r.get("job")
    r = d.request({"op": "cancel", "job": q})
    t.eq(r.get("state"), "cancelled", "partial: a queued job cancelled")
    # (its merge, of nothing, waits for a worker like any task)
    d.request({"op": "cancel", "job": hold.get("job")})
    res = clfdtest.wait_until(
        lambda: (lambda x: x if x.get("ok") is not False or
                 x["error"]["code"] != "not_finished" else None)(
            d.request({"op": "result", "job": q})), 30, "the queued job's result")
    t.ok(res.get("ok") is True and res.get("state") == "cancelled" and
         res.get("partial") is True and res.get("files") == [] and res.get("counts") == {} and
         res.get("files_done") == 0 and res.get("files_total") == 3,
         "partial: a job cancelled while queued: no file, empty counts, partial", res)


def ranged_result(t, tmp):
    """A cancelled job of files read as byte ranges counts files, not the
    ranges: a file in 9 ranges done, a never-ending one in 1024 being read,
    is 1 of 2 files done, its counts exact."""
    d = clfdtest.Daemon(workers=1, config={"split_size": "4096"})
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "ranged"), 1, 200, seed=83, plain=True)
        never = os.path.join(tmp, "ranged", "zz-never.log")
        with open(never, "wb") as f:
            f.truncate(1 << 40)
        w = d.client()
        r = w.request({"op": "submit", "patterns": [os.path.join(tmp, "ranged", "*")],
                       "wait": True})
        job = r.get("job")
        m = re.search(r"job %d: submitted [^\n]*, 2 files \((\d+) tasks\)" % job,
                      d.log_text())
        t.ok(r.get("files_total") == 2 and m is not None and int(m.group(1)) > 1025,
             "ranges: 2 files, both in ranges", m.group(0) if m else d.log_text()[-500:])
        clfdtest.wait_until(lambda: d.request({"op": "status", "job": job})["files_done"] == 1,
                            60, "the small file's ranges done")
        d.request({"op": "cancel", "job": job})
        ev = w.recv()
        w.close()
        t.ok(ev is not None and ev.get("state") == "cancelled" and
             ev.get("partial") is True and ev.get("files_done") == 1 and
             ev.get("files_total") == 2 and ev.get("counts") == clfdtest.seed_ref(logs),
             "ranges: the cancelled job's result says 1 of 2 files, with the first's counts",
             {k: ev.get(k) for k in ("state", "partial", "files_done", "files_total")}
             if ev else None)
    finally:
        d.cleanup()


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-cancel-")
    d = None
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 2, 2000, seed=81)
        slow = os.path.join(tmp, "slow.log")
        with open(slow, "wb") as f:
            f.truncate(1 << 40)
        d = clfdtest.Daemon(workers=1, config=ONE_TASK)
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
        partial_result(t, d, tmp, slow)
        ranged_result(t, tmp)
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
