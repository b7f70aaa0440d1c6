#!/usr/bin/env python3
"""clfctl's autostart: with no -s and no $CLFD_SOCKET, and nothing answering on
the per-user default socket (here: $XDG_RUNTIME_DIR inside our temp dir), clfctl
starts `clfd -s SOCKET -i 300` detached, waits for it and goes on; later calls
reuse it; a stale socket file is no obstacle; a missing clfd is exit 3. Every
autostarted clfd is stopped by the pid its ping reports."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clfctl_util import (Tap, clfctl, clean_env, gen_logs, seed_ref, pid_gone, procs_with_arg,
                         mkdtemp, rmtree, CLFCTL)


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def session_id(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[3])
    except OSError:
        return None


def main():
    t = Tap()
    tmp = mkdtemp()
    started = []
    try:
        run = os.path.join(tmp, "run")
        os.mkdir(run, 0o700)
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        env = clean_env(HOME=home, XDG_RUNTIME_DIR=run)
        sock = os.path.join(run, "clfd.sock")

        # the first call starts a daemon
        r = clfctl(["ping"], env=env)
        rep = json.loads(r.stdout) if r.returncode == 0 else {}
        pid = rep.get("pid")
        if isinstance(pid, int):
            started.append(pid)
        t.ok(r.returncode == 0 and rep.get("ok") is True, "autostart: ping answered",
             r.stdout + r.stderr)
        argv = cmdline(pid) if pid else []
        t.ok(argv[1:] == ["-s", sock, "-i", "300"] and argv[0].endswith("clfd"),
             "autostart: clfd -s SOCKET -i 300", argv)
        t.ok(os.path.exists(sock), "autostart: socket at $XDG_RUNTIME_DIR/clfd.sock")
        t.ok(pid is not None and session_id(pid) == pid, "autostart: clfd leads its own session")
        t.ok(os.path.exists(os.path.join(run, "clfd.log")), "autostart: clfd.log beside the socket")
        t.eq(r.stderr, "clfctl: started clfd pid %s on %s, log %s; it exits after 300 s idle "
             "with no result kept\n" % (pid, sock, os.path.join(run, "clfd.log")),
             "autostart: says so on stderr, with the pid and the log")
        # its log has times (no journal here), RFC 3339
        with open(os.path.join(run, "clfd.log")) as f:
            logl = [l for l in f.read().splitlines() if l]
        t.ok(logl and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
                                   r"clfd(\[\d+\]| \S+):", l) for l in logl),
             "autostart: each line of clfd.log starts with the time", logl[:3])

        # later calls reuse it, and say nothing about it
        r = clfctl(["ping"], env=env)
        t.eq(json.loads(r.stdout).get("pid") if r.returncode == 0 else None, pid,
             "second call: the same daemon")
        t.eq(r.stderr, "", "second call: nothing on stderr")
        data = os.path.join(tmp, "data")
        files = gen_logs(data, 2, 800, seed=5)
        r = clfctl(["submit", "-o", "compact", "*.gz"], env=env, cwd=data)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.eq(res.get("counts"), seed_ref(files, any_=True), "submit through the autostarted daemon")
        r = clfctl(["stats"], env=env)
        t.eq(json.loads(r.stdout).get("pid") if r.returncode == 0 else None, pid,
             "stats: the same daemon")

        # stop it by its pid; the socket it leaves is unlinked
        os.kill(pid, signal.SIGTERM)
        t.ok(pid_gone(pid), "autostarted clfd stopped by pid")
        started.remove(pid)

        # a stale socket file at the default path: a new daemon replaces it
        if os.path.exists(sock):
            os.unlink(sock)
        ls = socket.socket(socket.AF_UNIX)
        ls.bind(sock)
        ls.close()
        r = clfctl(["ping"], env=env)
        rep = json.loads(r.stdout) if r.returncode == 0 else {}
        pid2 = rep.get("pid")
        if isinstance(pid2, int):
            started.append(pid2)
        t.ok(r.returncode == 0 and pid2 not in (None, pid), "stale default socket: autostart",
             r.stderr)
        r = clfctl(["submit", "-o", "compact", "*.gz"], env=env, cwd=data)
        job2 = json.loads(r.stdout).get("job") if r.returncode == 0 else None
        t.ok(isinstance(job2, int) and isinstance(res.get("job"), int) and job2 > res["job"],
             "the new daemon's job ids are above the last one's (%s after %s)"
             % (job2, res.get("job")), r.stderr)
        if pid2:
            os.kill(pid2, signal.SIGTERM)
            t.ok(pid_gone(pid2), "second autostarted clfd stopped by pid")
            started.remove(pid2)

        # clfctls racing to start a daemon: they all end up with the same one
        procs = [subprocess.Popen([CLFCTL, "ping", "-o", "compact"], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(6)]
        outs = [p.communicate(timeout=60) for p in procs]
        pids = set()
        for out, _ in outs:
            try:
                pids.add(json.loads(out).get("pid"))
            except ValueError:
                pids.add(None)
        started += [p for p in pids if isinstance(p, int)]
        t.ok(all(p.returncode == 0 for p in procs) and len(pids) == 1 and None not in pids,
             "6 clfctls at once: one daemon for all", [o[1] for o in outs])
        said = [e for _, e in outs if b"started clfd pid" in e]
        t.ok(len(said) == 1 and (b"pid %d " % next(iter(pids))) in said[0],
             "6 clfctls at once: the one whose clfd won says it started it", said)
        if len(pids) == 1 and None not in pids:
            pid3 = pids.pop()
            # a clfd that lost the race exits by itself ("already running")
            others = [p for p in procs_with_arg(sock) if p != pid3 and ppid(p) != pid3]
            t.ok(all(pid_gone(p) for p in others), "6 clfctls at once: no second clfd left "
                 "running", others)
            os.kill(pid3, signal.SIGTERM)
            t.ok(pid_gone(pid3), "that clfd stopped by pid")
            started.remove(pid3)

        # never with -s or $CLFD_SOCKET, even where the default would be
        r = clfctl(["ping"], sock=sock, env=env)
        t.ok(r.returncode == 3 and "cannot connect" in r.stderr, "-s default path: no autostart")
        r = clfctl(["ping"], env=clean_env(HOME=home, XDG_RUNTIME_DIR=run, CLFD_SOCKET=sock))
        t.ok(r.returncode == 3, "CLFD_SOCKET: no autostart")
        t.ok(procs_with_arg(sock) == [], "no clfd running on the socket")

        # no clfd to start (clfctl alone, nothing in PATH): exit 3, quickly
        lone = os.path.join(tmp, "lone")
        os.mkdir(lone)
        shutil.copy(CLFCTL, os.path.join(lone, "clfctl"))
        r2 = None
        try:
            r2 = subprocess.run([os.path.join(lone, "clfctl"), "ping"], capture_output=True,
                                text=True, env=dict(env, PATH=lone), timeout=30)
        except subprocess.TimeoutExpired:
            pass
        t.ok(r2 is not None and r2.returncode == 3 and "does not answer" in r2.stderr,
             "no clfd binary: exit 3", r2.stderr if r2 else "timed out")
        started += [p for p in procs_with_arg(sock) if ppid(p) not in procs_with_arg(sock)]
    finally:
        for p in started:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
            pid_gone(p)
        rmtree(tmp)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
