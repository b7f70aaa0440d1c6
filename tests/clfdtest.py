"""clfdtest: the shared harness of clfd's integration tests.

Starts a real clfd on a private socket inside its own tempfile.mkdtemp()
directory, waits for it to be ready by connecting and sending "ping" (never
by sleeping a fixed time), talks JSON lines to it, stops it by pid and
removes the directory. Also: TAP output, generated logs and the Python
reference counts (tests/genlogs.py, tests/refcount.py, both in the
checkout; shared/bench's gen_logs.py and seed_ref.py are only for the
cross-check in tests/refcount_check.py).
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
SHARED = os.environ.get("CLFD_SHARED", os.path.join(SRCDIR, "..", "shared"))
CLFD = os.path.join(BUILDDIR, "clfd")
CLFCTL = os.path.join(BUILDDIR, "clfctl")
# "yes" in an --enable-sanitizers build (configure passes it through make check)
SANITIZERS = os.environ.get("CLFD_SANITIZERS", "")
TESTS = os.path.join(SRCDIR, "tests")
GEN_LOGS = os.path.join(TESTS, "genlogs.py")
SEED_REF = os.path.join(TESTS, "refcount.py")
SHARED_GEN_LOGS = os.path.join(SHARED, "bench", "gen_logs.py")
SHARED_SEED_REF = os.path.join(SHARED, "bench", "seed_ref.py")


class Tap:
    """Numbered TAP results, the plan printed at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc))
        if not cond:
            self.failed += 1
            if diag is not None:
                self.diag(diag)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, desc):
        return self.ok(got == want, desc,
                       "got:  %s\nwant: %s" % (str(got)[:2000], str(want)[:2000]))

    def skip(self, desc, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, why))
        sys.stdout.flush()

    def diag(self, text):
        for line in str(text).splitlines()[:60]:
            print("# " + line)
        sys.stdout.flush()

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        return 1 if self.failed else 0


def wait_until(cond, timeout=30.0, what="condition"):
    """Poll cond() until it returns a true value; raise on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Client:
    """One connection speaking JSON lines."""

    def __init__(self, path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv_line(self):
        """The next line (bytes, without newline); None on EOF. Linear in
        the line's length: a 60 MB result is read in big chunks, each
        looked at once."""
        if b"\n" not in self.buf:
            parts = [self.buf]
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    self.buf = b""
                    line = b"".join(parts)
                    return line if line else None
                parts.append(chunk)
                if b"\n" in chunk:
                    break
            self.buf = b"".join(parts)
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self):
        line = self.recv_line()
        return None if line is None else json.loads(line)

    def request(self, obj):
        self.send(obj)
        return self.recv()

    def eof(self):
        """True when the daemon closed the connection (after any data)."""
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Daemon:
    """A clfd of our own in a private temporary directory."""

    def __init__(self, workers=2, config=None, args=(), env=None, tmp=None,
                 sock=None, wait=True, pass_socket=True, preexec=None):
        """pass_socket=False: no -s, clfd finds sock by itself (env);
        workers=None: no -w, the config (or the CPUs) decides."""
        self.dir = tmp or tempfile.mkdtemp(prefix="clfdtest-")
        self.own_dir = tmp is None
        self.sock = sock or os.path.join(self.dir, "clfd.sock")
        self.log = os.path.join(self.dir, "clfd.log")
        argv = [CLFD] + (["-w", str(workers)] if workers else [])
        if pass_socket:
            argv += ["-s", self.sock]
        if config is not None:
            conf = os.path.join(self.dir, "clfd.conf")
            with open(conf, "w") as f:
                for k, v in config.items():
                    f.write("%s = %s\n" % (k, v))
            argv += ["-f", conf]
        argv += list(args)
        e = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC",
                  "CLFD_SOCKET", "JOURNAL_STREAM", "CACHE_DIRECTORY"):
            e.pop(k, None)
        e["TMPDIR"] = self.dir     # the daemon's spool: ours, removed with us
        e["XDG_CACHE_HOME"] = os.path.join(self.dir, "cache")  # its cache too
        if env:
            e.update(env)
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=e,
                                     preexec_fn=preexec)
        self.pid = self.proc.pid
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=60.0):
        """Connect and ping until clfd answers (or has exited)."""
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("clfd exited with %d:\n%s" %
                                   (self.proc.returncode, self.log_text()))
            try:
                c = Client(self.sock, timeout=5)
            except (FileNotFoundError, ConnectionRefusedError):
                return False
            try:
                r = c.request({"op": "ping"})
            finally:
                c.close()
            return r is not None and r.get("ok") and r.get("pid") == self.pid
        wait_until(ready, timeout, "clfd to answer ping")

    def wait_workers(self, n=None, timeout=60.0):
        """Wait until n workers (default: all) are up; return their pids."""
        def up():
            w = self.request({"op": "stats"})["workers"]
            want = w["configured"] if n is None else n
            return [s["pid"] for s in w["slots"] if s["state"] in ("idle", "busy")] \
                if w["alive"] >= want else None
        return wait_until(up, timeout, "workers")

    def client(self, timeout=60.0):
        return Client(self.sock, timeout)

    def request(self, obj):
        c = self.client()
        try:
            return c.request(obj)
        finally:
            c.close()

    def submit(self, patterns, **kw):
        """Submit with wait; return (reply, done event)."""
        c = self.client(timeout=300)
        try:
            req = {"op": "submit", "patterns": patterns, "wait": True}
            req.update(kw)
            r = c.request(req)
            if not r.get("ok"):
                return r, None
            while True:
                ev = c.recv()
                if ev is None or ev.get("event") == "done":
                    return r, ev
        finally:
            c.close()

    def worker_pids(self):
        """Pids of the clfd's children, from /proc."""
        pids = []
        for t in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/children" % (self.pid, t)) as f:
                    pids += [int(p) for p in f.read().split()]
            except FileNotFoundError:
                pass
        return pids

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, timeout=15.0):
        """SIGTERM, wait; the exit code (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def cleanup(self):
        self.stop()
        if not self.logf.closed:
            self.logf.close()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def need_shared():
    """Skip the whole test (a TAP plan of 0) when the team's shared/
    directory, with its bench/gen_logs.py and bench/seed_ref.py, is not
    beside the checkout (or at CLFD_SHARED). Only the cross-check of the
    project's reference against seed_ref.py needs it."""
    if not (os.path.isfile(SHARED_GEN_LOGS) and os.path.isfile(SHARED_SEED_REF)):
        print("1..0 # SKIP no bench/gen_logs.py and bench/seed_ref.py under "
              "CLFD_SHARED=%s" % SHARED)
        sys.stdout.flush()
        sys.exit(0)


def gen_logs(outdir, nfiles, nlines, seed=1, plain=False, junk=None):
    """Generated logs (tests/genlogs.py; junk: the fraction of malformed
    lines); the sorted file list."""
    argv = [sys.executable, GEN_LOGS, outdir, str(nfiles), str(nlines),
            "--seed", str(seed)]
    if plain:
        argv.append("--plain")
    if junk is not None:
        argv += ["--junk", str(junk)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return sorted(os.path.join(outdir, f) for f in os.listdir(outdir))


def seed_ref(files, book=False, any_=False, count_root=False):
    """The reference counts for files (tests/refcount.py), keys as clfd
    writes them."""
    argv = [sys.executable, SEED_REF, "--clfd-keys"]
    if count_root:
        argv.append("--count-root")
    if book:
        argv.append("--book")
    if any_:
        argv.append("--any")
    out = subprocess.run(argv + list(files), check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out)


def real_logs():
    """The bundled real logs: tests/data/real, else shared/data/real."""
    for d in (os.path.join(SRCDIR, "tests", "data", "real"),
              os.path.join(SHARED, "data", "real")):
        if os.path.isdir(d):
            files = sorted(os.path.join(d, f) for f in os.listdir(d)
                           if not f.endswith(".md"))
            if files:
                return files
    return []
