"""service_util: small helpers for the service tests (tests/service_*.py).

Built on tests/clfdtest.py (TAP, the build's paths, the JSON-lines
client): starting clfd with the service's own arguments in a temporary
directory and talking to it by socket path; readiness is always waited for by connecting and pinging, never by
sleeping a fixed time.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402
from clfdtest import BUILDDIR, CLFCTL, CLFD, SRCDIR, Client  # noqa: E402,F401


class Tap(clfdtest.Tap):
    """clfdtest's TAP writer; done() ends the script with its status."""

    def done(self):
        sys.exit(super().done())


def skip_all(why):
    print("1..0 # SKIP " + why)
    sys.exit(0)


class Tmp:
    """A private temporary directory, removed on exit."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="clfd-service-")

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def write(self, name, text, mode=0o644):
        p = self.join(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def _reply(r):
    if r is None:
        raise ConnectionError("connection closed mid-reply")
    return r


def request(sock_path, obj, timeout=30.0):
    """Send one request, return the first reply line as a dict."""
    c = Client(sock_path, timeout)
    try:
        return _reply(c.request(obj))
    finally:
        c.close()


def submit_wait(sock_path, patterns, timeout=60.0, **extra):
    """Submit a job with wait:true; return (first reply, done event)."""
    c = Client(sock_path, timeout)
    try:
        req = {"op": "submit", "patterns": patterns, "wait": True}
        req.update(extra)
        first = _reply(c.request(req))
        if not first.get("ok"):
            return first, None
        while True:
            ev = c.recv()
            if ev is None:
                raise ConnectionError("closed before the done event")
            if ev.get("event") == "done":
                return first, ev
    finally:
        c.close()


def wait_ping(sock_path, proc=None, timeout=20.0):
    """Wait until clfd answers ping on sock_path; the reply, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return None
        try:
            r = request(sock_path, {"op": "ping"}, timeout=5.0)
            if r.get("ok"):
                return r
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return None


def start_clfd(args, tmp, env=None, stderr_name="clfd.err"):
    """Start clfd with args; stderr goes to a file in tmp."""
    e = dict(os.environ)
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
              "WATCHDOG_USEC", "WATCHDOG_PID", "CLFD_SOCKET"):
        e.pop(k, None)
    e["XDG_RUNTIME_DIR"] = tmp.path
    e["XDG_CACHE_HOME"] = tmp.join("cache")
    if env:
        e.update(env)
    err = open(tmp.join(stderr_name), "wb")
    try:
        return subprocess.Popen([CLFD] + list(args), stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err, env=e)
    finally:
        err.close()


def stop(proc, sig=signal.SIGTERM, timeout=15.0):
    """Signal a process we started and wait for it; its exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_for(cond, timeout=10.0, step=0.02):
    """Poll cond() until it is true or timeout; its last value."""
    deadline = time.monotonic() + timeout
    v = cond()
    while not v and time.monotonic() < deadline:
        time.sleep(step)
        v = cond()
    return v


def have_systemd():
    """True when the build uses libsystemd (config.h of the build tree)."""
    try:
        with open(os.path.join(BUILDDIR, "config.h")) as f:
            return "#define HAVE_SYSTEMD 1" in f.read()
    except OSError:
        return False


def config_keys():
    """The keys clfd accepts, read from the table in src/config.c."""
    keys = []
    with open(os.path.join(SRCDIR, "src", "config.c")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("K(") and "," in line:
                keys.append(line[2:line.index(",")].strip())
    return keys


def gen_log(path, lines):
    """A small Combined-format log with known counts: {path: count}."""
    counts = {}
    with open(path, "w") as f:
        for i in range(lines):
            p = "/book/ch%d.html" % (i % 7)
            counts[p] = counts.get(p, 0) + 1
            f.write('10.0.0.%d - - [10/Oct/2023:13:55:%02d +0000] "GET %s HTTP/1.1" '
                    '200 %d "-" "test"\n' % (i % 250, i % 60, p, 100 + i))
    return counts
