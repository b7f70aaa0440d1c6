"""clfctl_util: helpers for the clfctl end-to-end tests (tests/clfctl_*.py),
on top of the daemon's harness tests/clfdtest.py (TAP, a clfd of our own on a
private socket in a mkdtemp() dir, ready when it answers ping, stopped by its
pid; generated logs and seed_ref.py counts): running clfctl with a bounded
time and a clean environment, raw requests, watching processes by pid.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clfdtest import Tap, Daemon, gen_logs, seed_ref, BUILDDIR, SRCDIR  # noqa: E402,F401

CLFCTL = os.path.join(BUILDDIR, "clfctl")
TIMEOUT = 120


def bail(why):
    print("Bail out! " + why)
    sys.exit(1)


def clean_env(**extra):
    """The environment for clfd/clfctl: no CLFD_SOCKET unless asked."""
    env = dict(os.environ)
    env.pop("CLFD_SOCKET", None)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    if "HOME" in extra:
        # a clfd started with this HOME keeps its cache there
        env.pop("XDG_CACHE_HOME", None)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def raw_request(sock, obj, timeout=10):
    """Send one request on a fresh connection, return the first reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall((json.dumps(obj) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a reply")
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])


def start_daemon(tmp, workers=2):
    """clfdtest's Daemon on tmp/clfd.sock; bail out when it does not start."""
    try:
        return Daemon(workers=workers, tmp=tmp)
    except (RuntimeError, TimeoutError) as e:
        bail("clfd does not start: %s" % e)


def clfctl(args, sock=None, env=None, cwd=None, stdin=subprocess.DEVNULL, timeout=TIMEOUT):
    """Run clfctl (with -s sock when given); CompletedProcess, text output."""
    argv = [CLFCTL] + (["-s", sock] if sock else []) + list(args)
    return subprocess.run(argv, stdin=stdin, capture_output=True, env=env or clean_env(),
                          cwd=cwd, timeout=timeout, text=True, errors="replace")


def counts_ordered(counts):
    """True when a counts object is in count-descending, then path, order."""
    items = list(counts.items())
    return items == sorted(items, key=lambda kv: (-kv[1], kv[0]))


def pid_gone(pid, timeout=10):
    """Wait until pid is gone (or a zombie); True if it went in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def procs_with_arg(arg):
    """Pids of processes whose command line has arg in it."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if arg.encode() in argv:
            pids.append(int(d))
    return pids


def mkdtemp():
    return tempfile.mkdtemp(prefix="clfctl-test-")


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
