"""daemon_lifecycle: options, the socket (default path, stale, live, not a
socket), SIGTERM with jobs in flight, idle exit, SIGHUP reload."""
import grp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402


def run(argv, env=None, timeout=30):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env)


def slots(d):
    return d.request({"op": "stats"})["workers"]


def reload_counts(t, tmp, ds, logs):
    """SIGHUP applies a new workers count, socket mode and group."""
    conf = os.path.join(tmp, "workers.conf")
    sock = os.path.join(tmp, "w.sock")

    def write(**kw):
        kw.setdefault("split_size", 0)  # a never-ending file is one task
        with open(conf, "w") as f:
            for k, v in kw.items():
                f.write("%s = %s\n" % (k, v))

    def reload(d, n):
        d.signal(signal.SIGHUP)
        clfdtest.wait_until(lambda: d.log_text().count("reloaded") == n, 20, "reload")

    slow = os.path.join(tmp, "slow.log")
    with open(slow, "wb") as f:
        f.truncate(1 << 40)
    write(workers=3, socket_mode="0600")
    d = clfdtest.Daemon(workers=None, args=["-f", conf], sock=sock, pass_socket=False,
                        env={"CLFD_SOCKET": sock})
    ds.append(d)
    d.wait_workers()
    t.eq(slots(d)["configured"], 3, "workers = 3 from the config file")
    # two never-ending tasks keep two workers busy
    j1 = d.request({"op": "submit", "patterns": [slow]})["job"]
    j2 = d.request({"op": "submit", "patterns": [slow + "*"]})["job"]
    busy = clfdtest.wait_until(
        lambda: (lambda w: w if w["busy"] == 2 else None)(slots(d)), 20, "two busy")
    busy_pids = sorted(s["pid"] for s in busy["slots"] if s["state"] == "busy")

    other = [g for g in grp.getgrall() if g.gr_gid != os.getegid()]
    group = other[0] if os.geteuid() == 0 and other else None
    kw = {"workers": 1, "socket_mode": "0660"}
    if group is not None:
        kw["socket_group"] = group.gr_name
    write(**kw)
    reload(d, 1)
    st = os.stat(sock)
    t.eq(oct(st.st_mode & 0o7777), oct(0o660), "reload: socket_mode applied to our socket")
    if group is not None:
        t.eq(st.st_gid, group.gr_gid, "reload: socket_group applied to our socket")
    w = slots(d)
    t.eq(w["configured"], 1, "reload: workers = 1 is the new count")
    still = sorted(s["pid"] for s in w["slots"] if s["state"] in ("busy", "exiting")
                   and s.get("job") is not None)
    t.ok(still == busy_pids, "reload: busy workers are not cut short", (busy_pids, w))
    # once their tasks end (cancelled here) only one slot is left
    d.request({"op": "cancel", "job": j2})
    d.request({"op": "cancel", "job": j1})
    w = clfdtest.wait_until(
        lambda: (lambda w: w if len(w["slots"]) == 1 and w["alive"] == 1 else None)(
            slots(d)), 20, "one slot")
    t.ok(w["pids"][0] not in busy_pids, "reload: shrunk to one fresh worker", w)
    r, ev = d.submit([logs[0]])
    t.eq(ev["counts"], clfdtest.seed_ref([logs[0]], any_=True), "one worker counts right")
    # one of a thing is singular in the log
    log = d.log_text()
    t.ok("reload: 1 worker, was 3\n" in log and
         re.search(r"job %d: submitted by .*: 1 pattern, 1 file, 0 unmatched\n" % r["job"],
                   log) and re.search(r"job %d: done: 1 file \(" % r["job"], log),
         "log: 1 worker, 1 pattern, 1 file (singular)", log[-3000:])

    write(workers=3, socket_mode="0640", socket_path=os.path.join(tmp, "elsewhere.sock"))
    reload(d, 2)
    w = clfdtest.wait_until(
        lambda: (lambda w: w if w["alive"] == 3 else None)(slots(d)), 20, "three alive")
    t.ok(w["configured"] == 3 and len(w["slots"]) == 3, "reload: grown back to 3 workers", w)
    t.eq(oct(os.stat(sock).st_mode & 0o7777), oct(0o640), "reload: socket_mode again")
    t.ok("restart is needed" in d.log_text() and d.request({"op": "ping"})["ok"],
         "reload: a socket_path change is logged as needing a restart; the old socket serves")
    t.ok(not os.path.exists(os.path.join(tmp, "elsewhere.sock")), "and nothing listens there")
    t.ok("killing it" not in d.log_text(), "no worker was taken for a broken one",
         d.log_text()[-3000:])
    t.eq(d.stop(), 0, "exit 0")


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-life-")
    ds = []
    try:
        C = clfdtest.CLFD
        r = run([C, "-V"])
        t.ok(r.returncode == 0 and r.stdout.startswith(b"clfd "), "-V prints the version", r)
        r = run([C, "-h"])
        t.ok(r.returncode == 0 and b"usage" in r.stdout, "-h prints usage", r)
        r = run([C, "-x"])
        t.ok(r.returncode == 2, "an unknown option exits 2", r)
        r = run([C, "-w", "zero"])
        t.ok(r.returncode == 2, "a bad -w exits 2", r)
        # (-t without -f would check sysconfdir's file: name one)
        good = os.path.join(tmp, "good.conf")
        with open(good, "w") as f:
            f.write("workers = 1\nidle_timeout = 5\n")
        r = run([C, "-w", "257", "-t", "-f", good])
        t.ok(r.returncode == 2, "-w over 256 (the config's bound) exits 2", r)
        r = run([C, "-w", "256", "-t", "-f", good])
        t.ok(r.returncode == 0, "-w 256 is accepted", r)
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("workers = 1\nno_such_key = 3\n")
        r = run([C, "-t", "-f", good])
        t.ok(r.returncode == 0, "-t on a good config exits 0", r)
        r = run([C, "-t", "-f", bad])
        t.ok(r.returncode == 1 and b"bad.conf:2" in r.stderr, "-t on a bad config exits 1 naming file:line", r)

        # the default socket: $XDG_RUNTIME_DIR/clfd.sock
        xdg = os.path.join(tmp, "xdg")
        os.mkdir(xdg, 0o700)
        # split_size 0: the never-ending file of the SIGTERM checks below is
        # one task that a worker is busy with, not 1024 ranges
        d = clfdtest.Daemon(workers=1, sock=os.path.join(xdg, "clfd.sock"), pass_socket=False,
                            env={"XDG_RUNTIME_DIR": xdg}, config={"split_size": 0})
        ds.append(d)
        t.ok(d.request({"op": "ping"})["pid"] == d.pid, "no -s: listens on $XDG_RUNTIME_DIR/clfd.sock")
        d.wait_workers()
        t.ok(re.search(r"listening on %s, 1 worker\n" % re.escape(d.sock), d.log_text()) and
             "1 worker ready\n" in d.log_text(), "log: listening ..., 1 worker; 1 worker ready",
             d.log_text())
        # $CLFD_SOCKET wins over it
        env = dict(os.environ, XDG_RUNTIME_DIR=xdg, CLFD_SOCKET=os.path.join(tmp, "env.sock"))
        d2 = clfdtest.Daemon(workers=1, sock=os.path.join(tmp, "env.sock"), pass_socket=False,
                             env=env)
        ds.append(d2)
        t.ok(d2.request({"op": "ping"})["pid"] == d2.pid, "$CLFD_SOCKET names the socket")
        t.eq(d2.stop(), 0, "exit 0")

        # a live daemon's socket is never stolen
        r = run([C, "-s", d.sock, "-w", "1"])
        t.ok(r.returncode == 1 and ("clfd already running on " + d.sock).encode() in r.stderr,
             "a second clfd on a live socket exits 1, saying so", r)
        t.ok(d.request({"op": "ping"})["pid"] == d.pid, "the first daemon still owns its socket")
        # two clfds starting at once: the one that finds SOCKET.lock held
        # leaves the socket alone, even a stale-looking one (bound, not yet
        # listening, as a starting clfd's is for a moment)
        import fcntl
        racing = os.path.join(tmp, "race.sock")
        held = open(racing + ".lock", "w")
        fcntl.flock(held, fcntl.LOCK_EX)
        half = socket.socket(socket.AF_UNIX)
        half.bind(racing)
        r = run([C, "-s", racing, "-w", "1"])
        t.ok(r.returncode == 1 and b"already running" in r.stderr and
             os.path.exists(racing), "SOCKET.lock held: a second clfd exits 1 and "
             "leaves the socket", r)
        half.close()
        held.close()
        dr = clfdtest.Daemon(workers=1, sock=racing)
        ds.append(dr)
        t.ok(dr.request({"op": "ping"})["pid"] == dr.pid,
             "lock released: a stale socket is replaced as before")
        t.eq(dr.stop(), 0, "exit 0")
        # a path that is not a socket is left alone
        notsock = os.path.join(tmp, "file.sock")
        with open(notsock, "w") as f:
            f.write("keep me\n")
        r = run([C, "-s", notsock, "-w", "1"])
        t.ok(r.returncode == 1 and b"not a socket" in r.stderr, "a non-socket file is refused", r)
        with open(notsock) as f:
            t.eq(f.read(), "keep me\n", "and left untouched")

        # SIGTERM with jobs in flight
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 3, 2000, seed=41)
        slow = os.path.join(tmp, "logs", "slow.log")
        with open(slow, "wb") as f:
            f.truncate(1 << 40)
        pids = d.wait_workers()
        w1 = d.client()
        r1 = w1.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")],
                         "wait": True})
        w2 = d.client()
        r2 = w2.request({"op": "submit", "patterns": [os.path.join(tmp, "logs", "*")],
                         "wait": True, "progress": True})
        t.ok(r1["ok"] and r2["ok"], "two jobs in flight")
        clfdtest.wait_until(lambda: d.request({"op": "stats"})["workers"]["busy"] == 1, 30,
                            "a busy worker")
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        evs = []
        for w in (w1, w2):
            while True:
                ev = w.recv()
                if ev is None or ev.get("event") == "done":
                    break
            evs.append(ev)
        t.ok(all(ev is not None and ev["ok"] is False and ev["error"]["code"] == "shutting_down"
                 for ev in evs), "waiting clients are told shutting_down", evs)
        t.ok(w1.eof() and w2.eof(), "and their connections closed")
        rc = d.proc.wait(20)
        el = time.monotonic() - t0
        t.eq(rc, 0, "SIGTERM: exit 0")
        t.ok(el < 6, "SIGTERM: gone within a few seconds", el)
        t.ok(not any(clfdtest.pid_alive(p) for p in pids), "no worker left behind (busy included)")
        t.ok(not os.path.exists(d.sock), "socket removed")
        log = d.log_text()
        t.ok("stopping: SIGTERM" in log, "stopping is logged", log[-3000:])
        # the busy worker's file is left as part of an orderly stop, not a crash
        t.ok("retrying" not in log and "killed by signal" not in log and
             "left unfinished" in log,
             "SIGTERM with a busy worker: no crash or retry logged", log[-3000:])
        w1.close()
        w2.close()

        # idle exit (-i): gone after the last client and job
        d3 = clfdtest.Daemon(workers=1, args=["-i", "1"])
        ds.append(d3)
        t0 = time.monotonic()
        rc = d3.proc.wait(30)
        t.eq(rc, 0, "-i 1: exits 0 by itself when idle")
        t.ok(not os.path.exists(d3.sock), "-i: socket removed")

        # a client connected keeps an idle-exit daemon alive
        d4 = clfdtest.Daemon(workers=1, args=["-i", "1"])
        ds.append(d4)
        c = d4.client()
        c.request({"op": "ping"})
        time.sleep(2.5)  # more than the idle time, on purpose
        t.ok(d4.proc.poll() is None, "-i: a connected client keeps it running")
        c.close()
        t.eq(d4.proc.wait(30), 0, "-i: exits after the client leaves")

        # a result kept keeps it alive too, until result_ttl drops it: a
        # client may come back for it
        d6 = clfdtest.Daemon(workers=1, args=["-i", "1"], config={"result_ttl": 4})
        ds.append(d6)
        r, ev = d6.submit([logs[0]])
        job6 = r.get("job")
        t0 = time.monotonic()
        time.sleep(2.5)  # more than the idle time, on purpose
        t.ok(d6.proc.poll() is None, "-i: a result kept keeps it running")
        res = d6.request({"op": "result", "job": job6})
        t.ok(res.get("ok") and res.get("counts") == ev.get("counts"),
             "-i: and the result is there to fetch", res.get("error"))
        rc = d6.proc.wait(30)
        el = time.monotonic() - t0
        t.ok(rc == 0 and el >= 4 - 1, "-i: exits once the result is dropped (%.1f s after "
             "the job, result_ttl 4)" % el, d6.log_text()[-2000:])
        t.ok("stopping: idle" in d6.log_text(), "-i: the idle stop is logged",
             d6.log_text()[-2000:])

        # job ids go on across restarts on the same socket: the next daemon
        # never gives out an id a client of the last one may still hold
        d7 = clfdtest.Daemon(workers=1, tmp=d6.dir, sock=d6.sock)
        ds.append(d7)
        res = d7.request({"op": "result", "job": job6})
        t.eq(res.get("error", {}).get("code"), "not_found",
             "restarted: the old job id is not found")
        ids = [d7.submit([logs[0]])[0].get("job") for _ in range(3)]
        t.ok(all(isinstance(i, int) and i > job6 for i in ids) and ids == sorted(set(ids)),
             "restarted: new ids are above the last daemon's (%s after %s)" % (ids, job6))
        with open(d6.sock + ".jobid") as f:
            reserved = int(f.read())
        t.ok(reserved > ids[-1], "the id file %s.jobid reserves past the ids given out (%d)"
             % (os.path.basename(d6.sock), reserved))
        d7.signal(signal.SIGKILL)    # no orderly stop: the file was written before
        d7.proc.wait(30)
        d8 = clfdtest.Daemon(workers=1, tmp=d6.dir, sock=d6.sock)
        ds.append(d8)
        i8 = d8.submit([logs[0]])[0].get("job")
        t.ok(isinstance(i8, int) and i8 > ids[-1],
             "after a kill -9 too: id %s above %s" % (i8, ids[-1]))
        t.eq(d8.stop(), 0, "exit 0")

        # SIGHUP reload: new jobs use the new config, a bad one is refused
        conf = os.path.join(tmp, "reload.conf")
        with open(conf, "w") as f:
            f.write("exclude_exts = .png\n")
        d5 = clfdtest.Daemon(workers=2, args=["-f", conf])
        ds.append(d5)
        before = d5.wait_workers()
        r, ev = d5.submit([logs[0]])
        t.eq(ev["filter"]["exclude_exts"], [".png"], "config file used for the job defaults")
        with open(conf, "w") as f:
            f.write("exclude_exts = .html\n")
        d5.signal(signal.SIGHUP)
        clfdtest.wait_until(lambda: "reloaded" in d5.log_text(), 20, "reload")
        r, ev = d5.submit([logs[0]])
        t.eq(ev["filter"]["exclude_exts"], [".html"], "after SIGHUP, new jobs use the new config")
        t.eq(sorted(d5.wait_workers()), sorted(before),
             "a reload that changes nothing the workers hold keeps them")
        with open(conf, "w") as f:
            f.write("exclude_exts = .html\ntask_timeout = 600\n")
        d5.signal(signal.SIGHUP)
        clfdtest.wait_until(lambda: d5.log_text().count("reloaded") == 2, 20, "reload")
        after = clfdtest.wait_until(
            lambda: (lambda p: p if len(p) == 2 and not set(p) & set(before) else None)(
                d5.wait_workers()), 20, "workers replaced")
        t.ok(after, "idle workers are replaced after a reload that changes "
             "task_timeout", (before, after))
        with open(conf, "w") as f:
            f.write("exclude_exts = .css\nbogus key\n")
        d5.signal(signal.SIGHUP)
        clfdtest.wait_until(lambda: "reload failed" in d5.log_text(), 20, "failed reload")
        t.ok("reload.conf:2" in d5.log_text(), "a bad config's error is logged with file:line")
        r, ev = d5.submit([logs[0]])
        t.eq(ev["filter"]["exclude_exts"], [".html"], "a bad config keeps the old one")
        t.eq(d5.stop(), 0, "exit 0")
        reload_counts(t, tmp, ds, logs)
    except Exception as e:
        t.ok(False, "unexpected exception",
             repr(e) + "\n" + "\n".join(x.log_text()[-2000:] for x in ds))
    finally:
        for x in ds:
            x.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
