#!/usr/bin/env python3
"""service_systemd: clfd under systemd's protocols, with real tools.

- socket activation through systemd-socket-activate: clfd answers on the
  passed socket, uses that very fd (no socket of its own), logs that
  socket's path as passed by systemd, and leaves the socket file in place
  when it stops; a passed socket it cannot use (a
  datagram socket, two sockets) is logged and clfd listens on its own;
- sd_notify on a real NOTIFY_SOCKET (a datagram socket bound in the temp
  dir): READY=1 once the workers are up, STATUS=, WATCHDOG=1 at half of
  WATCHDOG_USEC when WATCHDOG_PID names clfd (none when it names another
  process), RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP,
  STOPPING=1 on SIGTERM.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_util import (CLFD, Tap, Tmp, gen_log, have_systemd,  # noqa: E402
                          read, request, start_clfd, stop, submit_wait,
                          wait_for, wait_ping)


class Notify:
    """A NOTIFY_SOCKET: collects the messages clfd sends, in order."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.msgs = []		# (monotonic time received, [lines])

    def poll(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        self.msgs.append((time.monotonic(), data.decode().split("\n")))
        return True

    def lines(self):
        return [l for _, ls in self.msgs for l in ls if l]

    def wait_line(self, pred, timeout=20.0, start=0):
        """Index of the first message from start with a line matching pred."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.msgs):
                if any(pred(l) for l in self.msgs[i][1]):
                    return i
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.poll(left)

    def drain(self, seconds):
        """Collect what arrives during the next seconds."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.poll(left)

    def close(self):
        self.sock.close()


def unix_listeners():
    """{inode: path} of the listening unix sockets, from /proc/net/unix."""
    r = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(parts) >= 7 and int(parts[3], 16) & 0x10000:   # __SO_ACCEPTCON
                r[int(parts[6])] = parts[7] if len(parts) > 7 else ""
    return r


def socket_fds(pid):
    """{fd: inode} of the sockets open in process pid."""
    r = {}
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            link = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", link)
        if m:
            r[int(fd)] = int(m.group(1))
    return r


def test_socket_activation(t, tmp):
    if shutil.which("systemd-socket-activate") is None:
        t.skip("socket activation", "systemd-socket-activate not installed")
        return
    sock = tmp.join("activated.sock")
    logdir = tmp.join("logs")
    os.makedirs(logdir, exist_ok=True)
    counts = gen_log(os.path.join(logdir, "a.log"), 300)
    conf = tmp.write("sa.conf", "workers = 2\nroots = %s\n" % logdir)
    env = dict(os.environ)
    for k in ("LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET", "WATCHDOG_USEC",
              "WATCHDOG_PID", "CLFD_SOCKET"):
        env.pop(k, None)
    env["XDG_RUNTIME_DIR"] = tmp.join("xdg")
    env["XDG_CACHE_HOME"] = tmp.join("cache")
    os.makedirs(env["XDG_RUNTIME_DIR"])
    err = open(tmp.join("sa.err"), "wb")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", sock, CLFD, "-f", conf],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
    err.close()
    try:
        have = wait_for(lambda: os.path.exists(sock) or proc.poll() is not None)
        t.ok(have and os.path.exists(sock), "systemd-socket-activate listens on the socket",
             read(tmp.join("sa.err")))
        ino_before = os.stat(sock).st_ino if os.path.exists(sock) else None
        # The first connection makes systemd-socket-activate exec clfd.
        pong = wait_ping(sock, proc)
        t.ok(pong is not None and pong.get("pid") == proc.pid,
             "clfd answers ping on the passed socket (pid %s)" % proc.pid,
             read(tmp.join("sa.err")))
        if pong is None:
            return
        _, done = submit_wait(sock, [os.path.join(logdir, "*.log")])
        t.ok(done is not None and done.get("counts") == counts,
             "a job over the activated socket gives the right counts", done)
        # clfd's listening socket is the very one systemd-socket-activate made.
        listeners = unix_listeners()
        fds = socket_fds(proc.pid)
        mine = {fd: ino for fd, ino in fds.items() if ino in listeners}
        t.ok(list(mine.keys()) == [3] and listeners[mine[3]] == sock,
             "clfd listens only on fd 3, the passed socket at %s" % sock,
             "listening fds: %r, listeners: %r" % (mine, listeners))
        t.ok(os.stat(sock).st_ino == ino_before,
             "the socket file was not replaced")
        t.ok(not os.path.exists(os.path.join(env["XDG_RUNTIME_DIR"], "clfd.sock")),
             "no socket of its own at the default path")
        # The socket answers before every worker is up: wait for both.
        up = wait_for(lambda: request(sock, {"op": "stats"})
                      .get("workers", {}).get("alive") == 2, 15, 0.05)
        t.ok(up, "two workers alive", request(sock, {"op": "stats"}))
        rc = stop(proc)
        t.ok(rc == 0, "clfd exits 0 on SIGTERM (%s)" % rc, read(tmp.join("sa.err")))
        t.ok(os.path.exists(sock) and os.stat(sock).st_ino == ino_before,
             "a passed socket is left in place on exit")
        # The log names the socket in use (getsockname on fd 3), not the
        # default path it never made, and says where it came from.
        log = read(tmp.join("sa.err"))
        t.ok(("listening on %s (passed by systemd)," % sock) in log and
             os.path.join(env["XDG_RUNTIME_DIR"], "clfd.sock") not in log,
             "the log names the passed socket, from systemd", log)
    finally:
        stop(proc)


def test_bad_passed_sockets(t, tmp):
    """A passed socket clfd cannot use (datagram, or more than one) is
    logged and ignored: clfd listens on a socket of its own instead."""
    if shutil.which("systemd-socket-activate") is None:
        t.skip("unusable passed sockets", "systemd-socket-activate not installed")
        return
    cases = [
        ("a datagram socket", ["--datagram", "-l", tmp.join("dgram.sock")],
         "not a listening unix stream socket"),
        ("two sockets", ["-l", tmp.join("two-a.sock"), "-l", tmp.join("two-b.sock")],
         "passed 2 sockets"),
    ]
    for what, sa_args, msg in cases:
        own = tmp.join("own.sock")
        errpath = tmp.join("badsa.err")
        env = dict(os.environ)
        for k in ("LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET", "CLFD_SOCKET"):
            env.pop(k, None)
        env["XDG_CACHE_HOME"] = tmp.join("cache")
        err = open(errpath, "wb")
        proc = subprocess.Popen(["systemd-socket-activate"] + sa_args +
                                [CLFD, "-w", "1", "-s", own],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
        err.close()
        first = sa_args[-1]
        try:
            wait_for(lambda: os.path.exists(first) or proc.poll() is not None)
            # Activity on the passed socket makes systemd-socket-activate exec clfd.
            if "--datagram" in sa_args:
                d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                d.sendto(b"x", first)
                d.close()
            else:
                # (the file is there once bound, before it listens: retry)
                def knock():
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        c.connect(first)
                        return True
                    except ConnectionRefusedError:
                        return proc.poll() is not None
                    finally:
                        c.close()
                wait_for(knock)
            up = wait_ping(own, proc) is not None
            log = read(errpath)
            t.ok(up and msg in log, "%s is refused (logged) and clfd uses its own socket"
                 % what, log)
        finally:
            stop(proc)


def test_notify(t, tmp):
    n = Notify(tmp.join("notify.sock"))
    sock = tmp.join("n.sock")
    conf = tmp.write("n.conf", "workers = 2\n")
    # exec from a shell so that WATCHDOG_PID can name clfd's own pid.
    env = {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"}
    e = dict(os.environ)
    for k in ("LISTEN_FDS", "LISTEN_PID", "WATCHDOG_PID", "CLFD_SOCKET"):
        e.pop(k, None)
    e.update(env)
    e["XDG_RUNTIME_DIR"] = tmp.path
    e["XDG_CACHE_HOME"] = tmp.join("cache")
    err = open(tmp.join("n.err"), "wb")
    proc = subprocess.Popen(["sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; '
                             'exec "$0" "$@"', CLFD, "-f", conf, "-s", sock],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=e)
    err.close()
    try:
        i_ready = n.wait_line(lambda l: l == "READY=1")
        t.ok(i_ready is not None, "READY=1 received", read(tmp.join("n.err")))
        if i_ready is None:
            return
        st = request(sock, {"op": "stats"})
        t.ok(st.get("ok") and st["workers"]["alive"] == st["workers"]["configured"] == 2,
             "at READY=1 the workers are up", st)
        i_status = n.wait_line(lambda l: l.startswith("STATUS="))
        t.ok(i_status is not None, "STATUS= received: %s" %
             next((l for l in n.lines() if l.startswith("STATUS=")), None))
        # Pings at half of 400 ms: collect for 1.2 s, expect about 6.
        t0 = time.monotonic()
        n.drain(1.2)
        pings = [ts for ts, ls in n.msgs if "WATCHDOG=1" in ls and ts >= t0]
        t.ok(3 <= len(pings) <= 12,
             "WATCHDOG=1 sent repeatedly with WATCHDOG_USEC=400000 (%d in 1.2 s)" % len(pings))
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        t.ok(gaps and max(gaps) < 0.4,
             "watchdog pings come faster than WATCHDOG_USEC (max gap %.3f s)"
             % (max(gaps) if gaps else -1))
        # Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 again, once
        # the workers are back (a new task_timeout replaces them).
        before = sorted(s["pid"] for s in request(sock, {"op": "stats"})["workers"]["slots"])
        with open(conf, "w") as f:
            f.write("workers = 2\ntask_timeout = 600\n")
        start = len(n.msgs)
        now_us = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        os.kill(proc.pid, signal.SIGHUP)
        i_rel = n.wait_line(lambda l: l == "RELOADING=1", start=start)
        t.ok(i_rel is not None, "RELOADING=1 on SIGHUP", read(tmp.join("n.err")))
        if i_rel is not None:
            mono = [l for l in n.msgs[i_rel][1] if l.startswith("MONOTONIC_USEC=")]
            ok = len(mono) == 1 and abs(int(mono[0].split("=")[1]) - now_us) < 10e6
            t.ok(ok, "RELOADING=1 carries MONOTONIC_USEC of CLOCK_MONOTONIC", mono)
            i_r2 = n.wait_line(lambda l: l == "READY=1", start=i_rel)
            t.ok(i_r2 is not None and i_r2 >= i_rel,
                 "READY=1 follows RELOADING=1")
            w = request(sock, {"op": "stats"})["workers"]
            up = [s["pid"] for s in w["slots"] if s["state"] in ("idle", "busy")]
            t.ok(i_r2 is not None and len(up) == 2 and not set(up) & set(before),
                 "at READY=1 after the reload both workers are new ones, up", (before, w))
        t.ok(wait_ping(sock, proc) is not None, "clfd still serves after the reload")
        start = len(n.msgs)
        os.kill(proc.pid, signal.SIGTERM)
        i_stop = n.wait_line(lambda l: l == "STOPPING=1", start=start)
        t.ok(i_stop is not None, "STOPPING=1 on SIGTERM")
        rc = stop(proc)
        t.ok(rc == 0, "clfd exits 0 (%s)" % rc, read(tmp.join("n.err")))
    finally:
        stop(proc)
        n.close()


def test_no_watchdog_for_others(t, tmp):
    """WATCHDOG_PID naming another process: no pings (that process's job)."""
    n = Notify(tmp.join("notify2.sock"))
    sock = tmp.join("n2.sock")
    proc = start_clfd(["-w", "1", "-s", sock], tmp,
                      env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "200000",
                           "WATCHDOG_PID": str(os.getpid())},
                      stderr_name="n2.err")
    try:
        i_ready = n.wait_line(lambda l: l == "READY=1")
        t.ok(i_ready is not None, "READY=1 without a watchdog for us",
             read(tmp.join("n2.err")))
        # Ten intervals of 200 ms would hold at least 5 pings.
        n.drain(1.0)
        t.ok("WATCHDOG=1" not in n.lines(),
             "no WATCHDOG=1 when WATCHDOG_PID names another process")
    finally:
        stop(proc)
        n.close()


def test_no_notify_socket(t, tmp):
    """Without NOTIFY_SOCKET nothing breaks (plain foreground run)."""
    sock = tmp.join("plain.sock")
    proc = start_clfd(["-w", "1", "-s", sock], tmp, stderr_name="plain.err")
    try:
        t.ok(wait_ping(sock, proc) is not None, "clfd runs without NOTIFY_SOCKET",
             read(tmp.join("plain.err")))
        os.kill(proc.pid, signal.SIGHUP)
        t.ok(wait_ping(sock, proc) is not None, "and reloads without it")
        rc = stop(proc)
        t.ok(rc == 0, "and stops with 0 (%s)" % rc, read(tmp.join("plain.err")))
        t.ok(not os.path.exists(sock), "its own socket is removed on exit")
    finally:
        stop(proc)


def test_journal_logging(t, tmp):
    """Lines carry <N> priorities when JOURNAL_STREAM names our stderr,
    and job lines carry the job id."""
    logs = tmp.join("jlogs")
    os.makedirs(logs, exist_ok=True)
    gen_log(os.path.join(logs, "a.log"), 20)
    errpath = tmp.join("journal.err")
    sock = tmp.join("j.sock")
    err = open(errpath, "wb")
    st = os.fstat(err.fileno())
    e = dict(os.environ)
    for k in ("LISTEN_FDS", "LISTEN_PID", "NOTIFY_SOCKET", "WATCHDOG_USEC",
              "WATCHDOG_PID", "CLFD_SOCKET"):
        e.pop(k, None)
    e["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    e["XDG_RUNTIME_DIR"] = tmp.path
    e["XDG_CACHE_HOME"] = tmp.join("cache")
    proc = subprocess.Popen([CLFD, "-w", "1", "-s", sock], stdin=subprocess.DEVNULL,
                            stdout=err, stderr=err, env=e)
    err.close()
    try:
        t.ok(wait_ping(sock, proc) is not None, "clfd up with JOURNAL_STREAM", read(errpath))
        first, done = submit_wait(sock, [os.path.join(logs, "*.log")])
        job = first.get("job")
        t.ok(done is not None, "a job ran")
    finally:
        rc = stop(proc)
    lines = [l for l in read(errpath).splitlines() if l]
    bad = [l for l in lines if not re.match(r"<[0-7]>", l)]
    t.ok(lines and not bad, "every line starts with a <N> priority (%d lines)" % len(lines),
         bad[:5])
    t.ok(any(re.match(r"<[0-7]>job %s\b" % job, l) for l in lines),
         "job lines start with the job id (job %s)" % job, lines)
    t.ok(rc == 0, "clfd stopped (%s)" % rc)
    # Without JOURNAL_STREAM: "clfd[pid]: " prefixes instead.
    sock2 = tmp.join("j2.sock")
    proc = start_clfd(["-w", "1", "-s", sock2], tmp, stderr_name="plain2.err")
    try:
        t.ok(wait_ping(sock2, proc) is not None, "clfd up without JOURNAL_STREAM")
        pid = proc.pid
    finally:
        stop(proc)
    lines = [l for l in read(tmp.join("plain2.err")).splitlines() if l]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
    t.ok(lines and all(re.match(stamp + r"(clfd\[%d\]: |clfd worker )" % pid, l)
                       for l in lines),
         "without the journal lines start with the time (RFC 3339), then clfd[pid]:",
         lines[:5])


def main():
    if not os.access(CLFD, os.X_OK):
        print("1..0 # SKIP clfd not built")
        return
    if not have_systemd():
        print("1..0 # SKIP built --without-systemd")
        return
    t = Tap()
    tmp = Tmp()
    try:
        test_socket_activation(t, tmp)
        test_bad_passed_sockets(t, tmp)
        test_notify(t, tmp)
        test_no_watchdog_for_others(t, tmp)
        test_no_notify_socket(t, tmp)
        test_journal_logging(t, tmp)
    finally:
        tmp.cleanup()
    t.done()


if __name__ == "__main__":
    main()
