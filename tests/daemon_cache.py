"""daemon_cache: the persistent cache of per-file partials.

Every result is checked against the reference counts (tests/refcount.py)
of the files as they are at that moment, and every file's "cache" status
against what was done to it: a re-query hits, a rename is served from the
cache, growth resumes (a last line without its newline included, and
completed later), a same-size edit with its mtime put back is a miss,
copytruncate and logrotate's compression of access.log.1 are content
hits. Entries damaged byte by byte, truncated, swapped and replaced by a
symlink are misses with exact counts; two jobs on cold files at once,
eviction under cache_max, a restart, --no-cache and cache clear. A hit's
entry is merged from where it is: one damaged between the hit and the
merge has its file read again (against a --no-cache run). Memos (the
merged counts of a set of entries) damaged, or another set's in their
place, are never used."""
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def line(i, path=None):
    return ('10.0.%d.%d - - [10/Oct/2023:13:%02d:36 +0000] "GET %s HTTP/1.1" '
            '200 %d "-" "t/1.0"\n' % (i >> 8 & 255, i & 255, i % 60,
                                      path or "/p/%d.html" % (i % 37), 100 + i))


def write(path, first, n, mode="w"):
    with open(path, mode) as f:
        f.write("".join(line(i) for i in range(first, first + n)))


def run(d, pats, **kw):
    """A job to its end: (done event, {path: cache status})."""
    r, ev = d.submit(pats, **kw)
    if ev is None or ev.get("event") != "done":
        return r if ev is None else ev, {}
    return ev, {f["path"]: f.get("cache") for f in ev["files"]}


def entries(d, prefix=None):
    """The cache's entries (prefix "m": its memos)."""
    sub = os.path.join(d.dir, "cache", "clfd", "v1")
    try:
        return sorted(os.path.join(sub, n) for n in os.listdir(sub)
                      if (n.startswith(prefix) if prefix else n[0] not in "im") and
                      not n.endswith((".tmp", ".r")))
    except FileNotFoundError:
        return []


def flip(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x20]))


def entry_of(d, path):
    st = os.stat(path)
    suffix = "-%x-%x" % (st.st_dev, st.st_ino)
    m = [e for e in entries(d) if e.endswith(suffix)]
    return m[0] if len(m) == 1 else None


def snapshot(d):
    sub = os.path.join(d.dir, "cache", "clfd")
    out = []
    for root, _, files in os.walk(sub):
        for n in files:
            st = os.lstat(os.path.join(root, n))
            out.append((os.path.join(root, n), st.st_size, st.st_mtime_ns,
                        st.st_atime_ns))
    return sorted(out)


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-cache-")
    top = os.path.join(tmp, "d")
    os.makedirs(top)
    d = None
    try:
        gz = clfdtest.gen_logs(os.path.join(tmp, "gz"), 4, 3000, seed=31)
        plain = os.path.join(tmp, "plain")
        os.makedirs(plain)
        d = clfdtest.Daemon(workers=2, tmp=top)
        pat = [os.path.join(tmp, "gz", "*")]

        # -- cold, then warm
        ev, st = run(d, pat)
        want = clfdtest.seed_ref(gz)
        t.eq(ev.get("counts"), want, "cold: counts equal the reference")
        t.eq(sorted(st.values()), ["miss"] * 4, "cold: every file a miss")
        t.eq(len(entries(d)), 4, "cold: four entries stored")
        cold_files = ev["files"]
        ev, st = run(d, pat)
        t.eq(ev.get("counts"), want, "re-query: counts equal the reference")
        t.eq(sorted(st.values()), ["hit"] * 4, "re-query: every file a hit")
        strip = [{k: v for k, v in f.items() if k != "cache"} for f in ev["files"]]
        t.eq(strip, [{k: v for k, v in f.items() if k != "cache"} for f in cold_files],
             "re-query: per-file statistics as when read")
        s = d.request({"op": "stats"})["cache"]
        t.ok(s["hits"] == 4 and s["misses"] == 4 and s["bytes_stored"] > 0,
             "stats: hits, misses, bytes stored", s)

        # -- memos: the merged counts of a set of entries
        off, _ = run(d, pat, cache=False)
        offf = off.get("files")
        t.eq(len(entries(d, "m")), 1, "re-query: a memo of the four entries made")
        ev, st = run(d, pat)
        t.ok(ev.get("counts") == want and ev.get("totals") == off.get("totals") and
             sorted(st.values()) == ["hit"] * 4 and
             [{k: v for k, v in f.items() if k != "cache"} for f in ev["files"]] ==
             [{k: v for k, v in f.items() if k != "cache"} for f in offf],
             "merged from the memo: as --no-cache", st)
        memo = entries(d, "m")[0]
        msize = os.path.getsize(memo)
        bad = []
        for pos in sorted(set([0, 9, 40, msize // 3, msize // 2, msize - 30, msize - 9,
                               msize - 1])):
            flip(memo, pos)
            ev, st = run(d, pat)
            if ev.get("counts") != want or sorted(st.values()) != ["hit"] * 4:
                bad.append((pos, st))
        t.ok(not bad, "a memo damaged at 8 places: exact each time", bad)
        ev, st = run(d, gz[:3])
        t.ok(ev.get("counts") == clfdtest.seed_ref(gz[:3]) and
             len(entries(d, "m")) == 2, "three of the files: a memo of their own, exact",
             st)
        other = [m for m in entries(d, "m") if m != memo][0]
        shutil.copyfile(other, memo)
        ev, st = run(d, pat)
        t.ok(ev.get("counts") == want and sorted(st.values()) == ["hit"] * 4,
             "another set's memo under this one's name: not used, exact", st)
        extra = os.path.join(tmp, "extra.log")
        write(extra, 0, 300)
        ev, st = run(d, pat + [extra])
        off, _ = run(d, pat + [extra], cache=False)
        t.ok(ev.get("counts") == off.get("counts") and st.get(extra) == "miss" and
             ev["counts"] != want, "a memo beside a file read: as --no-cache", st)
        os.unlink(extra)

        # -- rename: same inode
        moved = os.path.join(tmp, "gz", "moved.log.gz")
        os.rename(gz[0], moved)
        files = sorted(gz[1:] + [moved])
        ev, st = run(d, pat)
        t.eq(ev.get("counts"), clfdtest.seed_ref(files), "rename: counts")
        t.ok(st.get(moved) in ("hit", "content"), "rename: served from the cache",
             st)
        # the rename again, its entry's bytes damaged after the first:
        # whatever is left beside it, never wrong counts
        os.rename(moved, moved + ".gz")
        ev, st = run(d, pat)
        t.ok(ev.get("counts") == clfdtest.seed_ref(sorted(gz[1:] + [moved + ".gz"])) and
             st.get(moved + ".gz") in ("hit", "content"), "renamed twice: served, exact", st)
        os.rename(moved + ".gz", moved)
        e = entry_of(d, moved)
        with open(e, "r+b") as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 1]))
        os.rename(moved, moved + ".gz")
        ev, st = run(d, pat)
        t.ok(ev.get("counts") == clfdtest.seed_ref(sorted(gz[1:] + [moved + ".gz"])),
             "renamed with its entry damaged: exact", st)
        os.rename(moved + ".gz", moved)
        os.rename(moved, gz[0])

        # -- growth of a plain file, a last line without newline
        log = os.path.join(plain, "access.log")
        write(log, 0, 2000)
        ppat = [os.path.join(plain, "*")]
        ev, st = run(d, ppat)
        t.ok(ev.get("counts") == clfdtest.seed_ref([log]) and st[log] == "miss",
             "plain: miss, exact", st)
        write(log, 2000, 50, "a")
        ev, st = run(d, ppat)
        t.ok(ev.get("counts") == clfdtest.seed_ref([log]) and st[log] == "resumed",
             "growth: resumed, exact", st)
        t.eq(ev["files"][0]["bytes"], os.path.getsize(log), "growth: bytes of the whole file")
        t.eq(ev["files"][0]["lines"], 2050, "growth: lines of the whole file")
        half = line(7777, "/half/line.html")
        with open(log, "a") as f:
            f.write(line(2050) + half[:40])
        ev, st = run(d, ppat)
        t.ok(ev.get("counts") == clfdtest.seed_ref([log]) and st[log] == "resumed",
             "growth ending in half a line: resumed, exact", st)
        with open(log, "a") as f:
            f.write(half[40:])
        ev, st = run(d, ppat)
        t.ok(ev.get("counts") == clfdtest.seed_ref([log]) and
             ev["counts"].get("/half/line.html") == 1 and st[log] in ("miss", "resumed"),
             "the half line completed: counted once, exact", st)
        t.eq(ev["files"][0]["lines"], 2052, "the half line completed: lines")
        ev, st = run(d, ppat)
        t.eq(st, {log: "hit"}, "then a hit")

        # -- same size, in place, mtime put back
        stt = os.stat(log)
        with open(log, "r+") as f:
            data = f.read()
            i = data.index("/p/3.html")
            f.seek(i)
            f.write("/q/3.html")
        os.utime(log, ns=(stt.st_atime_ns, stt.st_mtime_ns))
        ev, st = run(d, ppat)
        t.ok(ev.get("counts") == clfdtest.seed_ref([log]) and st[log] == "miss" and
             ev["counts"].get("/q/3.html") == 1,
             "same-size edit, mtime restored: a miss, fresh counts", st)

        # -- copytruncate, then logrotate's delaycompress
        one = log + ".1"
        shutil.copyfile(log, one)
        with open(log, "w") as f:
            f.write(line(9000) + line(9001))
        ev, st = run(d, ppat)
        t.ok(ev.get("counts") == clfdtest.seed_ref([log, one]) and
             st[log] == "miss" and st[one] == "content",
             "copytruncate: the copy a content hit, the truncated a miss, exact", st)
        two = log + ".2.gz"
        with open(one, "rb") as f, gzip.open(two, "wb") as g:
            g.write(f.read())
        os.unlink(one)
        ev, st = run(d, ppat)
        t.ok(ev.get("counts") == clfdtest.seed_ref([log, two]) and
             st[two] == "content" and st[log] == "hit",
             "access.log.1 -> access.log.2.gz: a content hit, exact", st)
        gzf = [f for f in ev["files"] if f["path"] == two][0]
        t.eq(gzf["bytes"], os.path.getsize(two), "the .gz's bytes are its own")

        # -- a damaged copy of a cached gzip file (its trailer, so its
        # decompressed size, intact): the hash pass fails, it is read as
        # without a cache
        bad = os.path.join(tmp, "bad")
        os.makedirs(bad)
        with open(gz[1], "rb") as f:
            blob = f.read()
        with open(os.path.join(bad, "corrupt.log.gz"), "wb") as f:
            f.write(blob[:len(blob) // 2] + b"\xff" * 64 + blob[len(blob) // 2:])
        bpat = [os.path.join(bad, "*")]
        ev, st = run(d, bpat)
        off, _ = run(d, bpat, cache=False)
        f0 = ev["files"][0] if ev.get("files") else {}
        t.ok(ev.get("counts") == off.get("counts") and f0.get("partial") is True and
             f0.get("counted", 0) > 0 and
             {k: v for k, v in f0.items() if k != "cache"} ==
             {k: v for k, v in off["files"][0].items() if k != "cache"},
             "a damaged copy of a cached gzip: partial, as without the cache", f0)

        # -- damaged entries: every byte flipped, truncated, swapped, symlink
        small = os.path.join(tmp, "small")
        os.makedirs(small)
        s1 = os.path.join(small, "a.log")
        s2 = os.path.join(small, "b.log")
        write(s1, 0, 3)
        write(s2, 100, 4)
        spat = [os.path.join(small, "*")]
        swant = clfdtest.seed_ref([s1, s2])
        run(d, spat)
        e1 = entry_of(d, s1)
        size = os.path.getsize(e1) if e1 else 0
        bad = []
        for i in range(size):
            e1 = entry_of(d, s1)
            if e1 is None:
                bad.append((i, "no entry"))
                break
            flip(e1, i)
            ev, st = run(d, spat)
            if ev.get("counts") != swant or st.get(s1) != "miss" or st.get(s2) != "hit":
                bad.append((i, st))
        t.ok(size > 0 and not bad, "each of the %d bytes of an entry flipped: a miss, "
             "counts exact" % size, bad[:5])
        e1 = entry_of(d, s1)
        with open(e1, "r+b") as f:
            f.truncate(size // 2)
        ev, st = run(d, spat)
        t.ok(ev.get("counts") == swant and st[s1] == "miss", "truncated entry: a miss", st)
        e1, e2 = entry_of(d, s1), entry_of(d, s2)
        os.rename(e1, e1 + ".x")
        os.rename(e2, e1)
        os.rename(e1 + ".x", e2)
        ev, st = run(d, spat)
        # (not theirs: dropped; the content index may still find each's own)
        t.ok(ev.get("counts") == swant and st[s1] in ("miss", "content") and
             st[s2] in ("miss", "content"), "entries swapped: not served, exact", st)
        e1, e2 = entry_of(d, s1), entry_of(d, s2)
        os.unlink(e1)
        os.symlink(e2, e1)
        ev, st = run(d, spat)
        t.ok(ev.get("counts") == swant and st[s1] in ("miss", "content") and
             not os.path.islink(e1), "a symlink planted: not followed, removed", st)
        ev, st = run(d, spat)
        t.eq(st, {s1: "hit", s2: "hit"}, "then hits again")

        # -- two jobs at once on cold files
        d.request({"op": "cache_clear"})
        cold = clfdtest.gen_logs(os.path.join(tmp, "cold"), 6, 4000, seed=32)
        cpat = [os.path.join(tmp, "cold", "*")]
        cwant = clfdtest.seed_ref(cold)
        outs = [None, None]

        def job(k):
            outs[k] = run(d, cpat)
        ths = [threading.Thread(target=job, args=(k,)) for k in range(2)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        t.ok(all(o is not None and o[0].get("counts") == cwant for o in outs),
             "two jobs at once on cold files: both exact")
        ev, st = run(d, cpat)
        t.ok(ev.get("counts") == cwant and set(st.values()) == {"hit"},
             "then every file a hit", st)

        # -- --no-cache leaves the cache as it was
        before = snapshot(d)
        ev, st = run(d, cpat, cache=False)
        t.ok(ev.get("counts") == cwant and set(st.values()) == {"off"},
             "cache false: off, exact", st)
        t.eq(snapshot(d), before, "cache false: the cache untouched")
        p = subprocess.run([clfdtest.CLFCTL, "-s", d.sock, "submit", "--no-cache",
                            "-o", "compact"] + cpat, capture_output=True, text=True,
                           timeout=120)
        t.ok(p.returncode == 0 and '"cache":"off"' in p.stdout and snapshot(d) == before,
             "clfctl submit --no-cache", p.stderr)

        # -- a restart keeps it
        d.stop()
        d.cleanup()
        d = clfdtest.Daemon(workers=2, tmp=top)
        ev, st = run(d, cpat)
        t.ok(ev.get("counts") == cwant and set(st.values()) == {"hit"},
             "after a restart: hits, exact", st)

        # -- cache clear
        p = subprocess.run([clfdtest.CLFCTL, "-s", d.sock, "cache", "clear"],
                           capture_output=True, text=True, timeout=60)
        t.ok(p.returncode == 0 and entries(d) == [], "clfctl cache clear empties it",
             p.stderr)
        ev, st = run(d, cpat)
        t.ok(ev.get("counts") == cwant and set(st.values()) == {"miss"},
             "after a clear: misses, exact", st)
        d.stop()
        d.cleanup()

        # -- bounded by cache_max
        d = clfdtest.Daemon(workers=2, tmp=top, config={"cache_max": "40K"})
        d.request({"op": "cache_clear"})
        many = clfdtest.gen_logs(os.path.join(tmp, "many"), 12, 800, seed=33)
        mpat = [os.path.join(tmp, "many", "*")]
        mwant = clfdtest.seed_ref(many)
        ev, st = run(d, mpat)
        total = sum(os.path.getsize(e) for e in entries(d))
        s = d.request({"op": "stats"})["cache"]
        t.ok(ev.get("counts") == mwant and total <= 40 * 1024 and s["evictions"] > 0,
             "cache_max: evicted down to the bound (%d bytes, %d evictions)" %
             (total, s["evictions"]), s)
        kept = [f for f in many if entry_of(d, f) is not None]
        ev, st = run(d, kept)
        t.ok(ev.get("counts") == clfdtest.seed_ref(kept) and 0 < len(kept) < len(many) and
             all(st[f] == "hit" for f in kept),
             "cache_max: what was kept hits, exact", st)
        d.stop()
        d.cleanup()

        # -- an entry changed between its hit and the merge: with one
        # worker, a's hit (its entry, left where it is) waits for the
        # merge while b, touched, is read whole; a's entry is damaged
        # meanwhile, so the merge refuses it and a is read again
        d = clfdtest.Daemon(workers=1, tmp=top)
        d.request({"op": "cache_clear"})
        race = os.path.join(tmp, "race")
        os.makedirs(race)
        ra, rb = os.path.join(race, "a.log"), os.path.join(race, "b.log")
        write(ra, 0, 500)
        block = "".join(line(i) for i in range(2000))
        with open(rb, "w") as f:
            for _ in range(150):
                f.write(block)
        rpat = [os.path.join(race, "*")]
        run(d, rpat)
        seen = False
        for attempt in range(3):
            with open(rb, "w") as f:    # (other bytes: read whole)
                f.write(line(5000 + attempt))
                for _ in range(150):
                    f.write(block)
            c = d.client(timeout=300)
            try:
                r = c.request({"op": "submit", "patterns": rpat, "wait": True})
                done = 0
                deadline = time.time() + 60
                while done < 1 and time.time() < deadline:
                    s = d.request({"op": "status", "job": r["job"]})
                    done = s.get("files_done", 0)
                    if s.get("state") in ("done", "cancelled"):
                        break
                    time.sleep(0.002)
                e = entry_of(d, ra)
                if e is not None:
                    flip(e, os.path.getsize(e) - 20)
                ev = c.recv()
                while ev is not None and ev.get("event") != "done":
                    ev = c.recv()
            finally:
                c.close()
            st = {f["path"]: f.get("cache") for f in ev["files"]} if ev else {}
            rwant = run(d, rpat, cache=False)[0].get("counts")
            t.ok(ev is not None and ev.get("counts") == rwant and
                 st.get(ra) in ("hit", "miss") and st.get(rb) == "miss",
                 "entry damaged during the job (try %d): exact" % (attempt + 1), st)
            if "its cache entry changed" in d.log_text():
                seen = st.get(ra) == "miss"
                break
        t.ok(seen, "the merge refused the changed entry and its file was read "
             "again: a miss")
        ev, st = run(d, rpat)
        t.ok(ev.get("counts") == rwant and st == {ra: "hit", rb: "hit"},
             "then hits again, exact", st)
    except Exception as e:  # noqa: BLE001
        t.ok(False, "no exception", repr(e))
        raise
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == "__main__":
    main()
