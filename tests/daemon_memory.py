"""daemon_memory: worker_memory (RLIMIT_AS on each worker).

A file whose counts fill the limit stops there: it is reported partial
with an out-of-memory error, and the paths of the lines read until then
are counted, each exactly once (its partial result is written from the
table as it is, which needs little more memory); the worker survives it,
and the other files of the job are counted exactly. ASan reserves terabytes of address
space, so a sanitizer build does not apply the limit: the test skips there
(configure says which build this is in CLFD_SANITIZERS)."""
import gzip
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

LIMIT = 64 << 20


def many_paths(path, n, keylen):
    """A gzip log of n requests, each to its own long path (compresses well)."""
    pad = "p" * keylen
    with gzip.open(path, "wt", compresslevel=1) as f:
        for i in range(n):
            f.write('10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /%s/%d HTTP/1.1" '
                    '200 1 "-" "t"\n' % (pad, i))


def main():
    if clfdtest.SANITIZERS != "no":
        print("1..0 # SKIP worker_memory is not applied in a sanitizer build "
              "(CLFD_SANITIZERS=%r)" % clfdtest.SANITIZERS)
        return 0
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-mem-")
    d = None
    try:
        small = clfdtest.gen_logs(os.path.join(tmp, "small"), 2, 3000, seed=81)
        big = os.path.join(tmp, "big.log.gz")
        # about 3 * LIMIT of distinct path bytes
        many_paths(big, 3 * LIMIT // 4000, 4000)
        want = clfdtest.seed_ref(small, any_=True)

        d = clfdtest.Daemon(workers=1, config={"worker_memory": "64M"})
        pid = d.wait_workers()[0]
        r, ev = d.submit(small + [big])
        t.ok(ev is not None and ev.get("ok"), "the job finishes", (r, ev))
        files = {f["path"]: f for f in ev["files"]} if ev else {}
        fb = files.get(big, {})
        t.ok(fb.get("error") is not None and "memory" in fb["error"],
             "the file over worker_memory has an out-of-memory error", fb)
        k = fb.get("counted", 0)
        t.ok(fb.get("partial") is True and 0 < k < fb.get("lines", 0),
             "partial, the paths before the limit counted (%d)" % k, fb)
        pad = "p" * 4000
        want_all = dict(want)
        for i in range(k):
            want_all["/%s/%d" % (pad, i)] = 1
        t.eq(ev["counts"] if ev else None, want_all,
             "the other files exactly (reference), the big one's paths read "
             "before the limit once each")
        t.eq((ev["totals"]["failed"], ev["totals"]["partial"]) if ev else None,
             (0, 1), "totals: one file partial, none failed")
        st = d.request({"op": "stats"})["workers"]
        t.ok(st["restarts"] == 0 and pid in st["pids"],
             "the worker survived its out-of-memory (no restart)", st)
        r, ev = d.submit(small)
        t.eq(ev["counts"] if ev else None, want, "the same worker goes on counting")
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
