"""service_util: small helpers for the service tests (tests/service_*.py).

TAP output, the paths the build passes in (CLFD_BUILDDIR, CLFD_SRCDIR),
starting clfd on a private socket in a temporary directory and talking to
it; readiness is always waited for by connecting and pinging, never by
sleeping a fixed time.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILDDIR = os.environ.get("CLFD_BUILDDIR", os.getcwd())
SRCDIR = os.environ.get("CLFD_SRCDIR",
                        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLFD = os.path.join(BUILDDIR, "clfd")
CLFCTL = os.path.join(BUILDDIR, "clfctl")


class Tap:
    """Numbered TAP results with the plan printed at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc))
        if not cond:
            self.failed += 1
            if diag is not None:
                for line in str(diag).splitlines()[:40]:
                    print("# " + line)
        sys.stdout.flush()
        return cond

    def skip(self, desc, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, why))
        sys.stdout.flush()

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


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


def connect(sock_path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    return s


def request(sock_path, obj, timeout=30.0):
    """Send one request, return the first reply line as a dict."""
    s = connect(sock_path, timeout)
    try:
        s.sendall((json.dumps(obj) + "\n").encode())
        return read_json_line(s)
    finally:
        s.close()


def read_json_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-reply: %r" % buf[:200])
        buf += chunk
        if b"\n" in buf:
            buf = buf[:buf.index(b"\n") + 1]
    return json.loads(buf)


def submit_wait(sock_path, patterns, timeout=60.0, **extra):
    """Submit a job with wait:true; return (first reply, done event)."""
    s = connect(sock_path, timeout)
    try:
        req = {"op": "submit", "patterns": patterns, "wait": True}
        req.update(extra)
        s.sendall((json.dumps(req) + "\n").encode())
        f = s.makefile("rb")
        first = json.loads(f.readline())
        if not first.get("ok"):
            return first, None
        while True:
            line = f.readline()
            if not line:
                raise ConnectionError("closed before the done event")
            ev = json.loads(line)
            if ev.get("event") == "done":
                return first, ev
    finally:
        s.close()


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
