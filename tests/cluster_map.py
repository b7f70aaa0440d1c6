#!/usr/bin/env python3
"""clfctl map and merge without a scheduler: map + merge gives what a
daemon's submit gives for the same files and options (files, totals,
counts and their order; one map, maps of parts, -j N, --top, -o tsv), and
merge refuses, naming the file, partials made with other settings, a
damaged one, one of a foreign version, the same source twice."""
import json
import os
import shutil
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clfctl_util import (Tap, start_daemon, clfctl, gen_logs, mkdtemp, rmtree)  # noqa: E402
from clfdtest import real_logs  # noqa: E402

# What a merge's result may differ in from a submit's (clfctl(1)); and
# each file's "cache".
OWN = ("job", "submitted", "finished", "elapsed", "patterns")


def same_result(t, got, want, desc):
    """got (a merge's compact JSON text) is want (a submit's) but for OWN:
    the same members in the same order, counts in the same order."""
    try:
        g = json.loads(got)
        w = json.loads(want)
    except ValueError as e:
        t.ok(False, desc, "not JSON: %s" % e)
        return
    # a file's "cache" says how this run read it: "off" for a map
    for f in g.get("files", []):
        if f.pop("cache", None) != "off":
            f["cache"] = "not off"
    for f in w.get("files", []):
        f.pop("cache", None)
    diff = [k for k in w if k not in OWN and g.get(k) != w.get(k)]
    t.ok(list(g) == list(w) and not diff and
         list(g.get("counts", {}).items()) == list(w.get("counts", {}).items()) and
         json.dumps(g.get("filter")) == json.dumps(w.get("filter")) and
         g.get("job") is None and g.get("unmatched") == [],
         desc, "members %s / %s, differ: %s" % (list(g), list(w), diff))


def main():
    t = Tap()
    tmp = mkdtemp()
    d = None
    try:
        gz = gen_logs(os.path.join(tmp, "gen"), 6, 3000, seed=11)
        real = []
        os.makedirs(os.path.join(tmp, "real"))
        for f in real_logs():
            real.append(shutil.copy(f, os.path.join(tmp, "real", os.path.basename(f))))
        files = gz + real
        d = start_daemon(tmp)
        s = d.sock

        def submit(args, pats):
            r = clfctl(["submit", "-o", "compact", "--no-progress"] + args + pats, s)
            if r.returncode not in (0, 1):
                t.diag("submit: %d %s" % (r.returncode, r.stderr))
            return r

        def part(name):
            return os.path.join(tmp, name)

        for args, what in (([], "no filter"), (["--under", "/book"], "--under /book"),
                           (["--status", "200,304", "--method", "GET"], "status and method")):
            want = submit(args, files)
            r = clfctl(["map"] + args + ["-O", part("all.part")] + files)
            t.ok(r.returncode == 0 and os.path.isfile(part("all.part")),
                 "map (%s): exit 0, the partial written" % what, r.stderr)
            m = clfctl(["merge", "-o", "compact", part("all.part")])
            t.eq(m.returncode, want.returncode, "merge (%s): submit's exit code" % what)
            same_result(t, m.stdout, want.stdout, "map + merge (%s) = submit" % what)

            # two maps of parts, then -j 3: the same
            half = len(files) // 2
            r1 = clfctl(["map"] + args + ["-O", part("a.part")] + files[:half])
            r2 = clfctl(["map"] + args + ["-O", part("b.part")] + files[half:])
            m = clfctl(["merge", "-o", "compact", part("b.part"), part("a.part")])
            t.ok(r1.returncode == 0 and r2.returncode == 0 and m.returncode == want.returncode,
                 "two maps, one merge (%s): exit 0, merge submit's" % what, r1.stderr + r2.stderr + m.stderr)
            same_result(t, m.stdout, want.stdout, "two maps + merge (%s) = submit" % what)
            r = clfctl(["map", "-j", "3"] + args + ["-O", part("j.part")] + files)
            m = clfctl(["merge", "-o", "compact", part("j.part")])
            t.ok(r.returncode == 0 and m.returncode == want.returncode,
                 "map -j 3 (%s): exit 0, merge submit's" % what,
                 r.stderr + m.stderr)
            same_result(t, m.stdout, want.stdout, "map -j 3 + merge (%s) = submit" % what)
            left = [f for f in os.listdir(tmp) if ".tmp" in f or "-" in f and f.endswith(".part")]
            t.eq(left, [], "map -j 3 (%s): no temporary file left" % what)

        # --top, tsv and the indented output are submit's (no filter again)
        clfctl(["map", "-O", part("a.part")] + files[:half])
        clfctl(["map", "-O", part("b.part")] + files[half:])
        want = submit(["--top", "7"], files)
        m = clfctl(["merge", "--top", "7", "-o", "compact", part("a.part"), part("b.part")])
        same_result(t, m.stdout, want.stdout, "merge --top 7 = submit --top 7")
        want = clfctl(["submit", "-o", "tsv", "--no-progress"] + files, s)
        m = clfctl(["merge", "-o", "tsv", part("a.part"), part("b.part")])
        t.ok(m.returncode == want.returncode and m.stdout == want.stdout and
             m.stdout.count("\n") > 10,
             "merge -o tsv = submit -o tsv", m.stderr)
        m = clfctl(["merge", part("a.part"), part("b.part")])
        t.ok(m.returncode == want.returncode and
             m.stdout.startswith('{\n  "ok": true,\n  "job": null,'),
             "merge: indented JSON by default, job null", m.stdout[:80])

        # a file that cannot be read: listed as failed, exit 1, as submit
        gone = os.path.join(tmp, "gen", "gone.log")
        r = clfctl(["map", "-O", part("f.part"), files[0], gone])
        t.ok(r.returncode == 1 and gone in r.stderr and os.path.isfile(part("f.part")),
             "map: an unreadable file named, exit 1, the partial still written", r.stderr)
        m = clfctl(["merge", "-o", "compact", part("f.part")])
        res = json.loads(m.stdout) if m.stdout else {}
        t.ok(m.returncode == 1 and res.get("totals", {}).get("failed") == 1 and gone in m.stderr,
             "merge of it: the file failed in the result, exit 1", m.stderr)

        # the same file twice to one map: counted once, as clfd names it once
        want = submit([], files[:2])
        r = clfctl(["map", "-O", part("d.part"), files[0], files[1], files[0]])
        m = clfctl(["merge", "-o", "compact", part("d.part")])
        same_result(t, m.stdout, want.stdout, "map of a file named twice: counted once")

        # refusals, each naming the file, exit 4
        clfctl(["map", "--under", "/book", "-O", part("u.part")] + files[half:])
        m = clfctl(["merge", part("a.part"), part("u.part")])
        t.ok(m.returncode == 4 and part("u.part") in m.stderr and "settings" in m.stderr and
             m.stdout == "", "other settings: refused, the file named", m.stderr)
        m = clfctl(["merge", part("a.part"), part("a.part")])
        t.ok(m.returncode == 4 and part("a.part") in m.stderr and "same source" in m.stderr and
             m.stdout == "", "the same partial twice: refused, named", m.stderr)
        clfctl(["map", "-O", part("o.part"), files[0]])
        m = clfctl(["merge", part("o.part"), part("a.part")])
        t.ok(m.returncode == 4 and "same source" in m.stderr and part("o.part") in m.stderr and
             part("a.part") in m.stderr, "a source in two partials: both named", m.stderr)
        with open(part("a.part"), "rb") as f:
            data = bytearray(f.read())
        bad = bytearray(data)
        bad[len(bad) // 2] ^= 0x40
        with open(part("bad.part"), "wb") as f:
            f.write(bad)
        m = clfctl(["merge", part("b.part"), part("bad.part")])
        t.ok(m.returncode == 4 and part("bad.part") in m.stderr and m.stdout == "",
             "a damaged partial: refused, named", m.stderr)
        with open(part("cut.part"), "wb") as f:
            f.write(data[:len(data) - 20])
        m = clfctl(["merge", part("cut.part"), part("b.part")])
        t.ok(m.returncode == 4 and part("cut.part") in m.stderr, "a truncated partial: refused, "
             "named", m.stderr)
        foreign = bytearray(data)
        foreign[8:12] = struct.pack("<I", 99)
        with open(part("v99.part"), "wb") as f:
            f.write(foreign)
        m = clfctl(["merge", part("b.part"), part("v99.part")])
        t.ok(m.returncode == 4 and part("v99.part") in m.stderr and "version" in m.stderr,
             "a foreign version: refused, named", m.stderr)
        m = clfctl(["merge", part("b.part"), part("nothere.part")])
        t.ok(m.returncode == 4 and part("nothere.part") in m.stderr,
             "a missing partial: refused, named", m.stderr)

        # usage
        r = clfctl(["map", files[0]])
        t.ok(r.returncode == 2 and "-O" in r.stderr, "map without -O: usage, exit 2", r.stderr)
        r = clfctl(["map", "--format", "%Q nonsense (", "-O", part("x.part"), files[0]])
        t.ok(r.returncode == 4 and "format" in r.stderr and not os.path.exists(part("x.part")),
             "map with a bad format: refused, exit 4, nothing written", r.stderr)
        r = clfctl(["merge"])
        t.ok(r.returncode == 2, "merge without a partial: usage, exit 2", r.stderr)
        listf = part("list")
        with open(listf, "w") as f:
            f.write("\n".join(files) + "\n")
        want = submit([], files)
        r = clfctl(["map", "-j", "2", "--files-from", listf, "-O", part("l.part")])
        m = clfctl(["merge", "-o", "compact", part("l.part")])
        same_result(t, m.stdout, want.stdout, "map --files-from -j 2 + merge = submit")
    finally:
        if d is not None:
            d.cleanup()
        rmtree(tmp)
    t.done()


if __name__ == "__main__":
    main()
