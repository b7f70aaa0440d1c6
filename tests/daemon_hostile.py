"""daemon_hostile: patterns and files a client may aim at clfd to make it
walk for ever, name what lies outside its roots, count a file twice or
read what is not a log.

- the 8-level glob (`*/*/*/*/*/*/*/*`) over a deep tree made here answers
  `limit` quickly, by walk_max and by files_max, with the expander's
  memory bounded;
- a tree of symlinks looping back on each other is walked once per
  directory: each real file counted once, quickly;
- a pattern whose fixed part lies outside the roots is not walked at all
  (a big directory there would go over walk_max if it were), and it
  answers exactly as a pattern matching nothing does;
- a dangling symlink is never named;
- one file matched by several spellings (`..`, `//`, a symlinked
  directory) is one task, counted once;
- a /proc file is refused with an error naming the pseudo-filesystem, and
  /proc is never listed;
- refuse_hardlinks = yes refuses a file with two links; by default it is
  counted (once).

Every bound is generous (tens of seconds, hundreds of megabytes): the
tests fail on an unbounded walk, not on a slow machine."""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

FAST = 60.0             # seconds: a bounded expansion answers well within
MEMORY_MAX = 512 << 20  # bytes of the expander's peak resident memory


def gen_log(path, n, tag):
    """A Combined log of n lines with known counts: {request path: n}."""
    counts = {}
    with open(path, "w") as f:
        for i in range(n):
            p = "/%s/p%d" % (tag, i % 5)
            counts[p] = counts.get(p, 0) + 1
            f.write('10.0.0.%d - - [10/Oct/2023:13:55:%02d +0000] "GET %s HTTP/1.1" '
                    '200 %d "-" "test"\n' % (i % 250, i % 60, p, 100 + i))
    return counts


def add(*cs):
    r = {}
    for c in cs:
        for k, v in c.items():
            r[k] = r.get(k, 0) + v
    return r


def tree(top, fanout, depth):
    """Directories fanout wide and depth deep, a file in each leaf."""
    n = 0
    level = [top]
    for _ in range(depth - 1):
        nxt = []
        for d in level:
            for i in range(fanout):
                p = os.path.join(d, "d%d" % i)
                os.mkdir(p)
                nxt.append(p)
        level = nxt
    for d in level:
        for i in range(fanout):
            with open(os.path.join(d, "f%d.log" % i), "w"):
                n += 1
    return n


def expander_hwm(d):
    """The expander's peak resident memory in bytes, from /proc."""
    pid = d.request({"op": "stats"})["workers"]["expander"]["pid"]
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def timed_submit(d, patterns):
    t0 = time.monotonic()
    r = d.request({"op": "submit", "patterns": patterns})
    return r, time.monotonic() - t0


def strip(ev):
    """A result without what differs between any two jobs."""
    return {k: v for k, v in ev.items()
            if k not in ("job", "patterns", "unmatched", "submitted", "finished",
                         "elapsed")}


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-hostile-")
    ds = []
    try:
        root = os.path.join(tmp, "root")
        outside = os.path.join(tmp, "outside")
        os.mkdir(root)
        os.mkdir(outside)

        # 1. the 8-level glob over a deep tree: 4^8 = 65536 files, 21845
        #    directories; walk_max and files_max well below that
        deep = os.path.join(root, "deep")
        os.mkdir(deep)
        nfiles = tree(deep, 4, 8)
        glob8 = os.path.join(deep, *(["*"] * 8))
        d = clfdtest.Daemon(workers=1, config={"roots": root, "walk_max": 20000,
                                               "files_max": 1000000})
        ds.append(d)
        before = expander_hwm(d)
        r, secs = timed_submit(d, [glob8])
        t.ok(r.get("error", {}).get("code") == "limit" and
             "walk_max" in r["error"].get("message", ""),
             "8-level glob over %d files: limit by walk_max" % nfiles, r)
        t.ok(secs < FAST, "answered in %.2f s" % secs)
        hwm = expander_hwm(d)
        t.ok(hwm is not None and hwm < MEMORY_MAX,
             "expander peak memory %.1f MB (%.1f MB before)" %
             (hwm / 1e6, before / 1e6))
        d.stop()
        d = clfdtest.Daemon(workers=1, config={"roots": root, "files_max": 1000})
        ds.append(d)
        r, secs = timed_submit(d, [glob8])
        t.ok(r.get("error", {}).get("code") == "limit" and
             "files_max" in r["error"].get("message", ""),
             "8-level glob: limit by files_max 1000", r)
        t.ok(secs < FAST, "answered in %.2f s" % secs)
        # the whole tree within the defaults: listed, not refused
        r, secs = timed_submit(d, [os.path.join(deep, "d0", "d1", "d2", "d3",
                                                *(["*"] * 4))])
        t.ok(r.get("ok") and r.get("files_total") == 4 ** 4,
             "a part of the tree within files_max: %d files in %.2f s" %
             (r.get("files_total", 0), secs), r)
        d.request({"op": "cancel", "job": r.get("job", 0)})
        d.stop()
        shutil.rmtree(deep)

        # 2. symlink loops: five directories, each with links to all five
        loop = os.path.join(root, "loop")
        os.mkdir(loop)
        want = {}
        for i in range(5):
            os.mkdir(os.path.join(loop, "d%d" % i))
            want = add(want, gen_log(os.path.join(loop, "d%d" % i, "f.log"), 10 + i,
                                     "loop%d" % i))
        for i in range(5):
            for j in range(5):
                os.symlink(os.path.join(loop, "d%d" % j),
                           os.path.join(loop, "d%d" % i, "l%d" % j))
            os.symlink("..", os.path.join(loop, "d%d" % i, "up"))
        d = clfdtest.Daemon(workers=2, config={"roots": root})
        ds.append(d)
        t0 = time.monotonic()
        r, ev = d.submit([os.path.join(loop, *(["*"] * 7 + ["*.log"]))])
        secs = time.monotonic() - t0
        t.ok(r.get("ok") and r.get("files_total") == 5 and ev is not None and
             ev["counts"] == want,
             "symlink loops, 8 levels deep: the 5 files counted once each", r)
        t.ok(secs < FAST, "in %.2f s" % secs)

        # 3. outside the roots: a big directory there is never walked
        big = os.path.join(outside, "big")
        os.mkdir(big)
        for i in range(3000):
            os.symlink("nowhere", os.path.join(big, "e%d" % i))
        gen_log(os.path.join(outside, "secret.log"), 5, "secret")
        d2 = clfdtest.Daemon(workers=1, config={"roots": root, "walk_max": 1000})
        ds.append(d2)
        gen_log(os.path.join(root, "in.log"), 5, "in")
        for pat in (os.path.join(big, "*"), os.path.join(outside, "*", "*"),
                    os.path.join(tmp, "*", "big", "*")):
            r, ev = d2.submit([pat])
            t.ok(r.get("ok") and r.get("files_total") == 0 and ev is not None and
                 ev["unmatched"] == [pat],
                 "not walked (under walk_max 1000): %s" % os.path.relpath(pat, tmp),
                 r)
        # the same answer as for a pattern matching nothing
        pairs = [(os.path.join(outside, "secret.log"), os.path.join(root, "none.log")),
                 (os.path.join(outside, "*.log"), os.path.join(root, "none*.log")),
                 (os.path.join(root, "..", "outside", "*.log"),
                  os.path.join(root, "..", "root", "none*.log")),
                 ("/etc/*", os.path.join(root, "nothing", "*"))]
        for out, none in pairs:
            ra, ea = d2.submit([out])
            rb, eb = d2.submit([none])
            t.ok(ea is not None and eb is not None and ea["unmatched"] == [out] and
                 eb["unmatched"] == [none] and strip(ea) == strip(eb) and
                 {k: v for k, v in ra.items() if k != "job"} ==
                 {k: v for k, v in rb.items() if k != "job"},
                 "%s answers as %s" % (os.path.relpath(out, tmp),
                                       os.path.relpath(none, tmp)),
                 (ra, ea, rb, eb))
            text = json.dumps([ra, ea]).replace(out, "").replace('"outside_roots"', "")
            t.ok("secret" not in text and "outside" not in text,
                 "and names nothing of it", text)

        # 4. a dangling symlink is never named
        os.symlink(os.path.join(root, "gone.log"), os.path.join(root, "dangling.log"))
        r, ev = d2.submit([os.path.join(root, "*.log")])
        t.ok(ev is not None and [f["path"] for f in ev["files"]] ==
             [os.path.join(root, "in.log")] and "dangling" not in json.dumps(ev),
             "a dangling symlink is not named", ev)
        r, ev = d2.submit([os.path.join(root, "dangling.log")])
        t.ok(ev is not None and ev["files"] == [] and
             ev["unmatched"] == [os.path.join(root, "dangling.log")],
             "matched alone, it is unmatched", ev)

        # 5. three spellings of three files: three tasks, counted once
        s = os.path.join(root, "s")
        os.mkdir(s)
        three = add(*[gen_log(os.path.join(s, "%s.log" % c), 7, c) for c in "abc"])
        os.symlink(s, os.path.join(root, "link"))
        pats = [os.path.join(root, "s", "*.log"),
                root + "//s//*.log",
                os.path.join(root, "s", "..", "s", "*.log"),
                os.path.join(root, "link", "*.log")]
        r, ev = d.submit(pats)
        t.ok(r.get("ok") and r.get("files_total") == 3 and ev is not None and
             ev["counts"] == three and ev["unmatched"] == [],
             "4 spellings of 3 files: 3 tasks, each counted once", (r, ev))
        names = sorted(f["path"] for f in ev["files"]) if ev else []
        t.eq(names, [os.path.join(root, "link", "%s.log" % c) for c in "abc"],
             "each named once: the fewest components, then byte order")

        # 6. /proc: a file there refused, the directory never listed
        dp = clfdtest.Daemon(workers=1)
        ds.append(dp)
        r, ev = dp.submit(["/proc/self/status", "/proc/self/pagemap"])
        errs = sorted(f.get("error") or "" for f in ev["files"]) if ev else []
        t.ok(r.get("ok") and ev is not None and
             errs == ["on a pseudo-filesystem (proc)"] * 2 and
             ev["totals"]["failed"] == 2 and ev["counts"] == {},
             "/proc files refused: on a pseudo-filesystem (proc)", ev)
        r, ev = dp.submit(["/proc/*/status", "/sys/*/*"])
        t.ok(ev is not None and ev["files"] == [] and
             ev["unmatched"] == ["/proc/*/status", "/sys/*/*"],
             "/proc and /sys are never listed", (r, ev))

        # 7. hard links: counted once by default, refused when asked
        gen_log(os.path.join(root, "h1.log"), 3, "h")
        os.link(os.path.join(root, "h1.log"), os.path.join(root, "h2.log"))
        r, ev = d.submit([os.path.join(root, "h?.log")])
        t.ok(ev is not None and len(ev["files"]) == 1 and ev["totals"]["failed"] == 0
             and ev["totals"]["counted"] == 3,
             "two hard links: one file, counted once", ev)
        dh = clfdtest.Daemon(workers=1, config={"roots": root, "refuse_hardlinks": "yes"})
        ds.append(dh)
        r, ev = dh.submit([os.path.join(root, "h?.log"), os.path.join(root, "in.log")])
        errs = [f.get("error") for f in ev["files"]] if ev else []
        t.ok(ev is not None and errs == ["has 2 hard links (refuse_hardlinks)", None]
             and ev["totals"]["counted"] == 5,
             "refuse_hardlinks = yes: the linked file refused, the other counted", ev)
        for x in ds:
            t.eq(x.stop(), 0, "clfd exits 0")
    except Exception as e:
        t.ok(False, "unexpected exception",
             repr(e) + "\n" + "\n".join(x.log_text()[-3000:] for x in ds))
    finally:
        for x in ds:
            x.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
