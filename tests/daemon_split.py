"""daemon_split: big plain files split into byte ranges (split_size).

With a tiny split_size every plain file is many MAP tasks: the counts
and each file's statistics (one entry per file) equal the same files
read whole and the reference counts (tests/refcount.py), on generated
logs with junk and on a file of CRLF lines, empty lines, an overlong
line and a last line without its newline. A gzip file over the size is
read once, whole. A worker killed in the middle of a range: the range
is read again, nothing counted twice. Jobs that use the cache read big
files whole (the cache keeps whole files): a split job, then a cached
one (a miss), then a hit, all equal."""
import os
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
    d = None
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 3, 4000, seed=41,
                                 plain=True, junk=0.05)
        gz = clfdtest.gen_logs(os.path.join(tmp, "gz"), 1, 4000, seed=42)
        odd = os.path.join(tmp, "logs", "odd.log")
        nasty(odd)
        files = sorted(logs + [odd]) + gz
        want = clfdtest.seed_ref(files, any_=True)
        d = clfdtest.Daemon(workers=2, config={"split_size": "1000",
                                               "line_max": "4096"})

        # 1. split (no cache) against whole (the cache's jobs are not split)
        r, split = d.submit(files, cache=False)
        t.ok(split is not None and split.get("ok"), "split job done", r)
        ntasks = sum(-(-os.path.getsize(f) // 1000) for f in files)
        t.ok("%d files (%d tasks)" % (len(files), ntasks) in d.log_text(),
             "each file is split_size-byte ranges: %d tasks" % ntasks)
        r, whole = d.submit(files)
        t.ok(whole is not None and whole.get("ok"), "whole (cached) job done", r)
        t.ok("%d files (%d tasks)" % (len(files), len(files)) in d.log_text(),
             "a job using the cache reads each file whole")
        t.eq(split["counts"], want, "split: counts equal the reference")
        t.eq(whole["counts"], want, "whole: counts equal the reference")
        t.eq(files_of(split), files_of(whole),
             "one entry per file, its ranges' statistics summed, equal to the whole file's")
        t.eq(split["totals"], whole["totals"], "totals equal")
        e = [f for f in split["files"] if f["path"] == odd][0]
        t.ok(e["bytes"] == os.path.getsize(odd) and e["malformed"] >= 1,
             "the odd file: every byte owned once, its overlong line malformed", e)
        t.eq({f["path"]: f["bytes"] for f in split["files"]},
             {f: os.path.getsize(f) for f in files},
             "each file's bytes add up to its size")

        # 2. cache after a split job: a miss was stored; now a hit, equal
        r, hit = d.submit(files)
        t.eq(sorted(set(f.get("cache") for f in hit["files"])), ["hit"],
             "after the split job and a cached one: every file a hit")
        t.eq((hit["counts"], files_of(hit)), (want, files_of(split)),
             "the hit equals the split computation")

        # 3. a worker killed mid-range: the range is read again
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
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
