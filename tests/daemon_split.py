"""daemon_split: big plain files split into byte ranges (split_size).

With a tiny split_size every plain file is many MAP tasks: the counts
and each file's statistics (one entry per file) equal the same files
read whole and the reference counts (tests/refcount.py), on generated
logs with junk and on a file of CRLF lines, empty lines, an overlong
line and a last line without its newline. A gzip file over the size is
one task (the expansion reads its magic), read once, whole, its counts
those of a daemon that splits nothing; a plain file beside it is still
split. A worker killed in the middle of a range: the range
is read again, nothing counted twice. The cache keeps each range: a
miss, then a hit; a file grown within its last range resumes it, one
grown past it has new ranges; every cached answer equal to a fresh
one."""
import os
import re
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

STATS = ("path", "bytes", "raw_bytes", "lines", "matched", "malformed",
         "filtered", "counted", "error", "partial", "not_request",
         "malformed_example")


def files_of(ev):
    return [{k: f.get(k) for k in STATS} for f in ev["files"]]


def tasks_of(d, job):
    """(files, tasks) of job, from its "submitted" log line; None when
    the line is not there."""
    m = re.search(r"job %d: submitted by [^\n]*?: \d+ patterns?, (\d+) files?"
                  r"(?: \((\d+) tasks\))?, " % job, d.log_text())
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2) or m.group(1))


def nasty(path):
    ok = ('10.0.0.%d - - [10/Oct/2023:13:55:36 +0000] "GET /a/%d.html HTTP/1.1" '
          '200 12 "-" "t/1.0"')
    with open(path, "wb") as f:
        for i in range(400):
            f.write((ok % (i % 250, i % 7)).encode() + (b"\r\n" if i % 3 == 0 else b"\n"))
            if i % 50 == 0:
                f.write(b"\n\n")
            if i == 200:
                f.write(b"x" * 5000 + b"\n")    # over line_max 4096
        f.write((ok % (1, 1)).encode())         # no final newline


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-split-")
    d = w = None
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 3, 4000, seed=41,
                                 plain=True, junk=0.05)
        gz = clfdtest.gen_logs(os.path.join(tmp, "gz"), 1, 4000, seed=42)
        odd = os.path.join(tmp, "logs", "odd.log")
        nasty(odd)
        files = sorted(logs + [odd]) + gz
        want = clfdtest.seed_ref(files, any_=True)
        conf = {"split_size": "1000", "line_max": "4096"}
        d = clfdtest.Daemon(workers=2, config=conf)
        w = clfdtest.Daemon(workers=2, config=dict(conf, split_size="0"))

        # 1. split (no cache) against whole (split_size 0) and the reference
        r, split = d.submit(files, cache=False)
        t.ok(split is not None and split.get("ok"), "split job done", r)
        t.ok(all(os.path.getsize(f) > 1000 for f in gz), "the gzip file is over "
             "split_size", [os.path.getsize(f) for f in gz])
        ntasks = sum(-(-os.path.getsize(f) // 1000) for f in files if f not in gz) + len(gz)
        t.eq(tasks_of(d, split["job"]), (len(files), ntasks),
             "each plain file is split_size-byte ranges, the gzip file one task: "
             "%d tasks" % ntasks)
        r, whole = w.submit(files, cache=False)
        t.ok(whole is not None and whole.get("ok"), "whole job (split_size 0) done", r)
        t.eq(split["counts"], want, "split: counts equal the reference")
        t.eq(whole["counts"], want, "whole: counts equal the reference")
        t.eq(files_of(split), files_of(whole),
             "one entry per file, its ranges' statistics summed, equal to the whole file's")
        t.eq(split["totals"], whole["totals"], "totals equal")
        t.eq(sorted(set(f.get("cache") for f in split["files"])), ["off"],
             "--no-cache: the cache is neither read nor written")
        e = [f for f in split["files"] if f["path"] == odd][0]
        t.ok(e["bytes"] == os.path.getsize(odd) and e["malformed"] >= 1,
             "the odd file: every byte owned once, its overlong line malformed", e)
        t.eq({f["path"]: f["bytes"] for f in split["files"]},
             {f: os.path.getsize(f) for f in files},
             "each file's bytes add up to its size")

        # 1b. the gzip file alone: one task, the whole daemon's counts; a
        # plain file alone: still its ranges
        r, g1 = d.submit(gz, cache=False)
        r, g0 = w.submit(gz, cache=False)
        t.ok(g1 is not None and g0 is not None and g1.get("ok") and g0.get("ok"),
             "the gzip file alone: done, split_size 1000 and 0")
        t.eq(tasks_of(d, g1["job"]), (1, 1),
             "a gzip file of %d bytes over split_size 1000: one task" %
             os.path.getsize(gz[0]))
        t.eq((g1["counts"], files_of(g1)), (g0["counts"], files_of(g0)),
             "its counts and statistics equal the daemon's that splits nothing")
        t.eq(g1["counts"], clfdtest.seed_ref(gz, any_=True),
             "and the reference counts")
        t.ok(g1["files"][0]["bytes"] == os.path.getsize(gz[0]) and
             g1["files"][0]["raw_bytes"] > g1["files"][0]["bytes"],
             "read whole and inflated, every byte once", g1["files"][0])
        r, p1 = d.submit([logs[0]], cache=False)
        t.eq(tasks_of(d, p1["job"]) if p1 else None,
             (1, -(-os.path.getsize(logs[0]) // 1000)),
             "a plain file alone: still split_size-byte ranges")

        # 2. the cache keeps each range: a miss, then a hit, equal
        r, miss = d.submit(files)
        t.eq(sorted(set(f.get("cache") for f in miss["files"])), ["miss"],
             "split with the cache, first time: every file a miss")
        r, hit = d.submit(files)
        t.eq(sorted(set(f.get("cache") for f in hit["files"])), ["hit"],
             "split with the cache, again: every range a hit, every file a hit")
        t.eq((miss["counts"], files_of(miss)), (want, files_of(split)),
             "the miss equals the fresh computation")
        t.eq((hit["counts"], files_of(hit)), (want, files_of(split)),
             "the hit equals the fresh computation")

        # 3. growth: within the last range (resumed), and past it (new ranges)
        small = '1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET /g/%d HTTP/1.1" 200 1\n'
        room = [(1000 - os.path.getsize(f) % 1000, f) for f in logs]
        room.sort()
        grow_in, grow_past = room[-1][1], room[0][1]
        with open(grow_in, "a") as f:
            f.write(small % 1)
        with open(grow_past, "a") as f:
            f.write("".join(small % i for i in range(40)))
        want2 = clfdtest.seed_ref(files, any_=True)
        r, fresh = d.submit(files, cache=False)
        r, grown = d.submit(files)
        st = {f["path"]: f.get("cache") for f in grown["files"]}
        t.eq((st[grow_in], st[grow_past], st[odd]), ("resumed", "miss", "hit"),
             "grown within its last range: resumed; past it: new ranges, a miss; "
             "untouched: a hit")
        t.eq((grown["counts"], files_of(grown)), (want2, files_of(fresh)),
             "after growth: counts equal the reference, statistics the fresh computation")
        r, again = d.submit(files)
        t.eq(sorted(set(f.get("cache") for f in again["files"])), ["hit"],
             "after growth, again: every file a hit")
        t.eq((again["counts"], files_of(again)), (want2, files_of(fresh)),
             "and equal to the fresh computation")
        w.cleanup()
        w = None

        # 4. a worker killed mid-range: the range is read again
        big = os.path.join(tmp, "big")
        os.makedirs(big)
        bigf = clfdtest.gen_logs(big, 1, 60000, seed=43, plain=True, junk=0.02)
        bwant = clfdtest.seed_ref(bigf, any_=True)
        d.stop()
        d = clfdtest.Daemon(workers=2, config={"split_size": "65536"})
        c = d.client(timeout=300)
        c.send({"op": "submit", "patterns": bigf, "wait": True, "cache": False})
        c.recv()

        def busy():
            for s in d.request({"op": "stats"})["workers"]["slots"]:
                if s["state"] == "busy" and s.get("path") == bigf[0]:
                    return s["pid"]
            return None
        pid = clfdtest.wait_until(busy, 60, "a worker busy on a range")
        os.kill(pid, signal.SIGKILL)
        ev = c.recv()
        while ev is not None and ev.get("event") != "done":
            ev = c.recv()
        c.close()
        t.ok(ev is not None and ev.get("ok"), "job done after a worker died in a range")
        t.ok("worker killed by signal 9, retrying" in d.log_text(),
             "the killed range was retried")
        t.eq(ev["counts"], bwant, "counts equal the reference: nothing counted twice or lost")
        f = ev["files"][0]
        t.ok(f["bytes"] == os.path.getsize(bigf[0]) and f["error"] is None and
             not f["partial"], "one entry, every byte owned once, no error", f)
    finally:
        for x in (d, w):
            if x is not None:
                x.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
