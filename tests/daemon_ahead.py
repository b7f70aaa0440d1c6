#!/usr/bin/env python3
"""daemon_ahead: gzip inflated in a second thread (inflate_ahead) changes
nothing. Two daemons of our own, one with inflate_ahead = 1 and one
worker (every gzip file gets the thread, a core being free for it on a
machine of two or more) and one with 0 (never), answer the same job over
intact, multi-member, truncated and damaged gzip files and a plain one:
the same counts, the same per-file statistics and errors, and for the
intact files the reference counts. With the cache on, a content hit (the
hash pass is the thread's) is served by the threaded daemon, and a
damaged copy is not. A third, with two workers, gives the thread only when
a core is free for it: not to two files read at once on two cores, as
the debug log says of each task handed out."""

import gzip
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def line(i):
    return ('10.1.%d.%d - - [10/Oct/2023:13:%02d:36 +0000] "GET /a/%d/%s.html '
            'HTTP/1.1" 200 %d "-" "t/1.0"\n' % (i >> 8 & 255, i & 255, i % 60,
                                                 i % 997, "x" * (i % 13), i))


STATS = ("lines", "matched", "malformed", "filtered", "counted", "bytes",
         "raw_bytes", "error", "partial", "failed", "gzip")


def handed(d, job):
    """The files of a job in the order handed out, each with whether a core
    was free for its thread, from the daemon's debug log."""
    pat = re.compile(r"worker \d+: job %d: (/.*?)( \(a core free\))?$" % job)
    out = []
    for ln in d.log_text().splitlines():
        m = pat.search(ln)
        if m:
            out.append((m.group(1), m.group(2) is not None))
    return out


def stats(ev):
    return {f["path"]: {k: f.get(k) for k in STATS} for f in ev["files"]}


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfd-ahead-")
    daemons = []
    try:
        logs = os.path.join(tmp, "logs")
        os.mkdir(logs)
        text = "".join(line(i) for i in range(60000)).encode()
        intact = []
        for k in range(3):
            p = os.path.join(logs, "a%d.log.gz" % k)
            with gzip.open(p, "wb", compresslevel=1 + k) as f:
                f.write(text[k * 1000:])
            intact.append(p)
        multi = os.path.join(logs, "multi.log.gz")
        with open(multi, "wb") as f:
            for k in range(4):
                f.write(gzip.compress(text[k * 50000:(k + 1) * 50000 + 7]))
        intact.append(multi)
        plain = os.path.join(logs, "plain.log")
        with open(plain, "wb") as f:
            f.write(text[:300000])
        intact.append(plain)
        with open(intact[0], "rb") as f:
            whole = f.read()
        cut = os.path.join(logs, "cut.log.gz")
        with open(cut, "wb") as f:
            f.write(whole[:len(whole) * 2 // 3])
        bad = os.path.join(logs, "bad.log.gz")
        damaged = bytearray(whole)
        damaged[len(damaged) // 2] ^= 0x5a
        with open(bad, "wb") as f:
            f.write(damaged)
        pats = [os.path.join(logs, "*")]

        d1 = os.path.join(tmp, "ahead")
        d0 = os.path.join(tmp, "inline")
        os.mkdir(d1)
        os.mkdir(d0)
        ahead = clfdtest.Daemon(workers=1, tmp=d1, args=("-d",),
                                config={"inflate_ahead": "1"})
        daemons.append(ahead)
        inline = clfdtest.Daemon(workers=2, tmp=d0, config={"inflate_ahead": "0"})
        daemons.append(inline)

        r1, e1 = ahead.submit(pats, cache=False)
        _, e0 = inline.submit(pats, cache=False)
        if not t.ok(e1 is not None and e0 is not None and
                    e1.get("event") == "done" and e0.get("event") == "done",
                    "both daemons finish the job", (e1, e0)):
            return t.done()
        t.ok(e1["counts"] == e0["counts"], "the same counts with and without "
             "the inflating thread (%d paths)" % len(e1["counts"]))
        cpus = len(os.sched_getaffinity(0))
        given = handed(ahead, r1["job"])
        t.ok(len(given) == len(e0["files"]) and
             all(free == (cpus >= 2) for _, free in given),
             "one worker on %d CPUs: each of the %d files is handed out %s a "
             "core free for the thread" % (cpus, len(given), "with" if cpus >= 2
                                           else "without"), given)
        s1, s0 = stats(e1), stats(e0)
        t.eq(s1, s0, "the same statistics and errors for each of %d files"
             % len(s0))
        t.ok(s1.get(cut, {}).get("error", "").startswith("gzip: truncated")
             and s1[cut]["partial"], "the truncated file is partial, with "
             "the error", s1.get(cut))
        t.ok((s1.get(bad, {}).get("error") or "").startswith("gzip: ")
             and "compressed byte offset" in s1[bad]["error"],
             "the damaged file names the compressed offset", s1.get(bad))
        _, ref = ahead.submit([os.path.join(logs, "a*"), multi, plain],
                              cache=False)
        t.eq(ref["counts"] if ref else None, clfdtest.seed_ref(sorted(intact)),
             "the intact files' counts equal the reference")

        # The cache: a plain file, compressed by a logrotate with
        # delaycompress, is a content hit; its hash pass is the thread's.
        rot = os.path.join(tmp, "rot")
        os.mkdir(rot)
        log1 = os.path.join(rot, "access.log.1")
        with open(log1, "wb") as f:
            f.write(text)
        _, c1 = ahead.submit([log1])
        log2 = os.path.join(rot, "access.log.2.gz")
        with gzip.open(log2, "wb") as f:
            f.write(text)
        os.unlink(log1)
        _, c2 = ahead.submit([log2])
        t.ok(c1 is not None and c2 is not None and
             c1["files"][0].get("cache") == "miss" and
             c2["files"][0].get("cache") == "content" and
             c2["counts"] == c1["counts"], "access.log.1 compressed to "
             "access.log.2.gz is a content hit, with the same counts",
             (c1["files"] if c1 else None, c2["files"] if c2 else None))
        with open(log2, "r+b") as f:
            f.seek(-20, os.SEEK_END)
            b = f.read(1)
            f.seek(-20, os.SEEK_END)
            f.write(bytes([b[0] ^ 0x10]))
        _, c3 = ahead.submit([log2])
        _, c4 = inline.submit([log2], cache=False)
        t.ok(c3 is not None and c4 is not None and
             c3["files"][0].get("cache") == "miss" and
             c3["counts"] == c4["counts"] and
             stats(c3) == stats(c4), "damaged near its end, it is a miss, "
             "counted as a fresh read counts it", c3["files"] if c3 else None)

        # Two workers: a core free only when no other file waits for one.
        d2 = os.path.join(tmp, "two")
        os.mkdir(d2)
        two = clfdtest.Daemon(workers=2, tmp=d2, args=("-d",),
                              config={"inflate_ahead": "1"})
        daemons.append(two)
        two.wait_workers()
        r3, e3 = two.submit(intact[:3], cache=False)
        given = handed(two, r3["job"]) if e3 else []
        t.ok(len(given) == 3 and given[0][1] == (cpus > 2) and
             given[1][1] == (cpus > 2), "two workers on %d CPUs: the first "
             "two of three gzip files are handed out %s a core free"
             % (cpus, "with" if cpus > 2 else "without"), given)
        t.eq(e3["counts"] if e3 else None, clfdtest.seed_ref(intact[:3]),
             "and counted as the reference")
        r4, e4 = two.submit(intact[:1], cache=False)
        given = handed(two, r4["job"]) if e4 else []
        t.ok(len(given) == 1 and given[0][1] == (cpus >= 2), "a file alone "
             "is handed out %s a core free" % ("with" if cpus >= 2 else
                                               "without"), given)
    finally:
        for d in daemons:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
