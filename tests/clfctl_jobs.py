#!/usr/bin/env python3
"""clfctl and the life of a job: --no-wait then wait ID, progress events (lines
on a pipe with --progress, a bar on a terminal, nothing by default on a pipe),
cancel, ^C while waiting (the job goes on), a daemon stopping under a waiting
clfctl, and a daemon that closes mid-reply."""
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402
from clfctl_util import (Tap, start_daemon, clfctl, clean_env, gen_logs, seed_ref, raw_request,
                         mkdtemp, rmtree, CLFCTL, SRCDIR)


def big_job(tmp, n):
    """n copies of the 10000-line real log: a job that takes a while (copies,
    not hard links: links to one file are one file, counted once)."""
    d = os.path.join(tmp, "big")
    os.makedirs(d)
    src = os.path.join(SRCDIR, "samples", "real-apache.log.gz")
    for i in range(n):
        shutil.copy(src, os.path.join(d, "r%03d.log.gz" % i))
    return os.path.join(d, "*.log.gz")


def job_state(sock, job):
    return raw_request(sock, {"op": "status", "job": job}).get("state")


def fake_daemon(path, reply):
    """A listener that answers any request line with reply bytes, then closes."""
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(4)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            with c:
                buf = b""
                while b"\n" not in buf:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                if reply:
                    c.sendall(reply)
    threading.Thread(target=serve, daemon=True).start()
    return ls


def idle_workers(d):
    """Wait until no job is in flight and every worker is idle; their pids."""
    def idle():
        st = d.request({"op": "stats"})
        q = st["queue"]
        w = st["workers"]
        if q["jobs_expanding"] or q["jobs_queued"] or q["jobs_running"] or \
                w["busy"] or w["alive"] != w["configured"] or \
                w["expander"]["state"] != "idle":
            return None
        return [x["pid"] for x in w["slots"]] + [w["expander"]["pid"]]
    return clfdtest.wait_until(idle, 30, "idle workers")


def main():
    t = Tap()
    tmp = mkdtemp()
    d = None
    try:
        data = os.path.join(tmp, "data")
        files = gen_logs(data, 4, 1500, seed=11)
        want = seed_ref(files, any_=True)
        big = big_job(tmp, 120)
        d = start_daemon(tmp)
        s = d.sock
        pat = os.path.join(data, "*.gz")

        # --no-wait, then wait ID
        r = clfctl(["submit", "--no-wait", pat], s)
        rep = json.loads(r.stdout) if r.returncode == 0 else {}
        job = rep.get("job")
        t.ok(isinstance(job, int) and rep.get("files_total") == 4 and "ok" not in rep,
             "--no-wait prints {job, files_total} and exits 0", r.stdout + r.stderr)
        r = clfctl(["wait", str(job)], s)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(res.get("job") == job and res.get("counts") == want, "wait ID: the job's result",
             r.stderr)
        r = clfctl(["wait", "-o", "tsv", str(job)], s)
        t.eq(r.stdout.splitlines(), ["%d\t%s" % (v, k) for k, v in
                                     sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))],
             "wait -o tsv on a finished job")

        # progress: lines with --progress on a pipe, none by default
        r = clfctl(["submit", "--progress", "-o", "compact", pat], s)
        prog = [l for l in r.stderr.splitlines() if " files, " in l]
        t.ok(r.returncode == 0 and len(prog) >= 1 and
             all(l.startswith("clfctl: job ") and l.endswith(" bytes") for l in prog),
             "--progress on a pipe: progress lines on stderr", r.stderr)
        done = [int(l.split(": ")[2].split("/")[0]) for l in prog]
        t.ok(done == sorted(done) and all(0 < n < 4 for n in done) and
             all("/4 files" in l for l in prog), "progress lines: files done of 4, growing")
        t.eq(json.loads(r.stdout).get("counts") if r.returncode == 0 else None, want,
             "--progress: same result on stdout")
        r = clfctl(["submit", "-o", "compact", pat], s)
        t.ok(r.returncode == 0 and r.stderr == "", "no progress on a pipe by default", r.stderr)

        # progress bar on a terminal (stderr a pty), cleared before the result
        master, slave = pty.openpty()
        p = subprocess.Popen([CLFCTL, "-s", s, "submit", "-o", "compact", pat],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                             env=clean_env())
        os.close(slave)
        tty = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            tty += chunk
        out = p.communicate(timeout=60)[0]
        os.close(master)
        t.ok(p.returncode == 0 and b"\r\x1b[K" in tty and b"/4 files" in tty and
             b"] " in tty and tty.endswith(b"\r\x1b[K"), "terminal: a bar redrawn in place, "
             "then cleared", repr(tty[-300:]))
        t.eq(json.loads(out).get("counts") if p.returncode == 0 else None, want,
             "terminal: the result on stdout")
        r = subprocess.run([CLFCTL, "-s", s, "submit", "--no-progress", "-o", "compact", pat],
                           capture_output=True, env=clean_env(), timeout=60)
        t.ok(r.returncode == 0 and r.stderr == b"", "--no-progress: quiet")

        # cancel a running job; wait on it then says cancelled, exit 1
        r = clfctl(["submit", "--no-wait", big], s)
        job = json.loads(r.stdout).get("job") if r.returncode == 0 else None
        r = clfctl(["cancel", str(job)], s)
        rep = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(rep.get("job") == job and rep.get("state") == "cancelled",
             "cancel a running job", r.stdout + r.stderr)
        r = clfctl(["wait", "-o", "compact", str(job)], s)
        res = json.loads(r.stdout) if r.stdout else {}
        t.ok(r.returncode == 1 and ("clfctl: job %d was cancelled: partial, the counts of the "
                                    "%s of 120 files done before" % (job, res.get("files_done")))
             in r.stderr and res.get("partial") is True and res.get("state") == "cancelled",
             "wait on a cancelled job: its partial result, a warning, exit 1",
             "rc=%d %s" % (r.returncode, r.stderr))
        r = clfctl(["status", str(job)], s)
        t.ok(r.returncode == 0 and json.loads(r.stdout).get("state") == "cancelled",
             "status: cancelled")
        r = clfctl(["result", str(job)], s)
        t.ok(r.returncode == 1 and "was cancelled: partial" in r.stderr,
             "result of a cancelled job: the partial result, exit 1", r.stderr)

        # ^C while waiting ends the wait, not the job
        p = subprocess.Popen([CLFCTL, "-s", s, "submit", "--progress", big],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=clean_env())
        line = p.stderr.readline().decode()	# the first progress line: the job runs
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        err = line + err.decode()
        job = int(line.split()[2].rstrip(":")) if line.startswith("clfctl: job ") else None
        t.ok(p.returncode == 130 and "'clfctl -s %s wait %s'" % (s, job) in err and
             out == b"", "^C while waiting: exit 130, says how to wait again (with -s)", err)
        st = job_state(s, job) if job else None
        t.ok(st in ("queued", "running", "done"), "^C: the job goes on (%s)" % st)
        r = clfctl(["wait", "-o", "compact", str(job)], s)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(res.get("state") == "done" and res.get("totals", {}).get("files") == 120,
             "^C: wait ID later gets the whole result", r.stderr)

        # a submit is answered only after its expansion: with the workers
        # and the expander stopped for 3 times the (reduced) reply timeout,
        # clfctl keeps waiting and gets the result after SIGCONT
        pids = idle_workers(d)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            env = clean_env(CLFCTL_REPLY_TIMEOUT="400")
            p = subprocess.Popen([CLFCTL, "-s", s, "submit", "-o", "compact", pat],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env)
            clfdtest.wait_until(lambda: raw_request(s, {"op": "stats"})
                                ["queue"]["jobs_expanding"] == 1, 30, "the submit expanding")
            time.sleep(1.2)
            waiting = p.poll() is None
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        out, err = p.communicate(timeout=60)
        res = json.loads(out) if p.returncode == 0 else {}
        t.ok(waiting and res.get("counts") == want,
             "submit held up in its expansion beyond the reply timeout: still its result",
             "waiting=%s rc=%d %s" % (waiting, p.returncode, err.decode()))

        # the daemon stops under a waiting clfctl: shutting_down, exit 3
        p = subprocess.Popen([CLFCTL, "-s", s, "submit", "--progress", big],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=clean_env())
        line = p.stderr.readline().decode()
        d.proc.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        err = line + err.decode()
        t.ok(p.returncode == 3 and ("shutting_down" in err or "closed" in err),
             "daemon stopping while we wait: exit 3", "rc=%d %s" % (p.returncode, err))
        # its own exit, without a second SIGTERM from d.stop()
        try:
            rc = d.proc.wait(30)
        except subprocess.TimeoutExpired:
            rc = d.stop()
        d.logf.close()
        t.eq(rc, 0, "clfd exits 0 on SIGTERM")
        d = None

        # a daemon that closes mid-reply, or before any reply: exit 3
        for name, reply in (("half", b'{"ok":true,"version":"0.1'), ("none", b"")):
            path = os.path.join(tmp, name + ".sock")
            ls = fake_daemon(path, reply)
            r = clfctl(["ping"], path)
            t.ok(r.returncode == 3 and "closed the connection" in r.stderr and r.stdout == "",
                 "daemon closes %s: exit 3" % ("mid-reply" if reply else "without a reply"),
                 r.stderr)
            ls.close()
        # a daemon that never answers: ping gives up after the reply timeout
        path = os.path.join(tmp, "mute.sock")
        ls = socket.socket(socket.AF_UNIX)
        ls.bind(path)
        ls.listen(4)
        t0 = time.monotonic()
        r = clfctl(["ping"], path, env=clean_env(CLFCTL_REPLY_TIMEOUT="300"))
        secs = time.monotonic() - t0
        t.ok(r.returncode == 3 and "no reply within 0.300 s" in r.stderr and secs < 20,
             "no reply to ping: exit 3 after $CLFCTL_REPLY_TIMEOUT", r.stderr)
        ls.close()
        path = os.path.join(tmp, "junk.sock")
        ls = fake_daemon(path, b"this is not json\n")
        r = clfctl(["ping"], path)
        t.ok(r.returncode == 3 and "bad reply" in r.stderr, "garbage reply: exit 3", r.stderr)
        ls.close()
    finally:
        if d is not None:
            d.stop()
            d.logf.close()
        rmtree(tmp)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
