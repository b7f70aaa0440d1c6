"""daemon_hostile2: clients that stall a worker, spy on or cancel others'
jobs, crowd out other users, or pile up connections.

- a worker stopped with SIGSTOP on its task is killed by clfd's own
  deadline (task_timeout + a grace): the job finishes, the file retried
  then failed, and the daemon goes on serving;
- a job is seen and cancelled only by the uid that submitted it, and by
  root: another uid's status, result, wait and cancel answer not_found
  exactly as for a job that does not exist, its list holds its own jobs
  only; a cancel is logged with the uid and pid that asked;
- fairness across users first: one user's many jobs do not make another
  user's small job wait its turn behind each of them; jobs_per_user
  bounds one uid's jobs;
- over connections_max a client is answered `limit`, never reset, and
  clfctl exits 4; a client clfd is closing after an error does not count;
- a file truncated while it is read is reported partial, "file shrank
  while being read".

The second uid is nobody's (65534), a child process that drops root
first: the tests that need it are skipped when not run as root. Every
bound is generous: a test fails on a worker held for ever or a job served
last, not on a slow machine."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

NOBODY = 65534
BOUND = 60.0    # seconds: what takes a few must finish within this

def client_run(sock, reqs):
    """Send each request in turn on one connection; a submit with wait,
    or a wait, reads up to its done event. The pid and the replies."""
    out = {"pid": os.getpid(), "replies": []}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(BOUND * 2)
    s.connect(sock)
    f = s.makefile("rb")
    for req in reqs:
        s.sendall(json.dumps(req).encode() + b"\n")
        waits = req.get("op") == "wait" or (req.get("op") == "submit" and
                                             req.get("wait"))
        while True:
            line = f.readline()
            if not line:
                break
            r = json.loads(line)
            out["replies"].append(r)
            if not waits or r.get("event") == "done" or r.get("ok") is False:
                break
    s.close()
    return out


class AsNobody:
    """client_run in a child process that dropped root for nobody's uid."""

    def __init__(self, sock, reqs):
        rfd, wfd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(rfd)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                data = json.dumps(client_run(sock, reqs)).encode()
                while data:
                    data = data[os.write(wfd, data):]
                code = 0
            finally:
                os._exit(code)
        os.close(wfd)
        self.rfd = rfd

    def result(self):
        chunks = []
        while True:
            b = os.read(self.rfd, 1 << 16)
            if not b:
                break
            chunks.append(b)
        os.close(self.rfd)
        _, status = os.waitpid(self.pid, 0)
        if status != 0:
            raise RuntimeError("the client as nobody failed (%#x)" % status)
        return json.loads(b"".join(chunks))


def as_nobody(sock, reqs):
    return AsNobody(sock, reqs).result()


def gen_log(path, n, tag):
    """A Combined log of n lines; its counts {request path: n}."""
    counts = {}
    with open(path, "w") as f:
        for i in range(n):
            p = "/%s/p%d" % (tag, i % 5)
            counts[p] = counts.get(p, 0) + 1
            f.write('10.0.0.%d - - [10/Oct/2023:13:55:%02d +0000] "GET %s HTTP/1.1" '
                    '200 %d "-" "test"\n' % (i % 250, i % 60, p, 100 + i))
    return counts


def err_of(r):
    e = (r or {}).get("error") or {}
    return e.get("code"), e.get("message")


def test_deadline(t, tmp):
    """A SIGSTOPped worker is killed by the supervisor's deadline."""
    slow = os.path.join(tmp, "never-ending.log")
    with open(slow, "wb") as f:
        f.truncate(1 << 40)     # 1 TB of nothing: reading it never ends
    small = os.path.join(tmp, "after.log")
    want = gen_log(small, 100, "after")
    # (split_size 0: the never-ending file is one task, not ranges)
    d = clfdtest.Daemon(workers=1, config={"roots": tmp, "task_timeout": 2,
                                           "split_size": 0})
    try:
        c = d.client(timeout=BOUND * 2)
        t0 = time.monotonic()
        r = c.request({"op": "submit", "patterns": [slow], "wait": True})
        job = r.get("job")
        # stop each worker found on the file: the first for sure, the
        # retry's too if we are quick enough (else its own alarm kills it)
        stopped = []

        def on_slow():
            for s in d.request({"op": "stats"})["workers"]["slots"]:
                if s.get("path") == slow and s["pid"] not in stopped:
                    os.kill(s["pid"], signal.SIGSTOP)
                    stopped.append(s["pid"])
                    return True
            return False
        clfdtest.wait_until(on_slow, 30, "the worker on the never-ending file")
        ev = c.recv()
        while ev is not None and ev.get("event") != "done":
            ev = c.recv()
        secs = time.monotonic() - t0
        c.close()
        t.ok(ev is not None and ev.get("totals", {}).get("failed") == 1,
             "the job on a stopped worker finishes, its file failed",
             json.dumps(ev)[:1000])
        t.ok(secs < BOUND, "within %d s (%.1f s; task_timeout 2)" % (BOUND, secs))
        log = d.log_text()
        t.ok("no answer 2 s after task_timeout; killing it" in log and
             ("job %d: %s: worker gave no answer within task_timeout (2 s), "
              "killed, retrying" % (job, slow)) in log,
             "the log says the worker was killed for its silence, and the "
             "file retried", log[-2000:])
        files = (ev or {}).get("files") or [{}]
        t.ok("(twice)" in (files[0].get("error") or ""),
             "the file's error says its worker was lost twice (%s)" %
             files[0].get("error"))
        t.ok(all(not clfdtest.pid_alive(p) for p in stopped),
             "the stopped worker is gone (%d stopped)" % len(stopped))
        r, ev = d.submit([small])
        t.ok(ev is not None and ev.get("counts") == want,
             "a job after it is served, exact")
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        for p in stopped if "stopped" in dir() else []:
            if clfdtest.pid_alive(p):
                os.kill(p, signal.SIGCONT)
        d.cleanup()


def test_users(t, tmp):
    """Ownership, fairness across users, jobs_per_user."""
    logs = os.path.join(tmp, "users")
    os.mkdir(logs)
    os.chmod(tmp, 0o755)
    os.chmod(logs, 0o755)
    njobs, nfiles = 10, 5
    for i in range(njobs * nfiles):
        gen_log(os.path.join(logs, "root-%02d.log" % i), 50, "r%d" % i)
    small = os.path.join(logs, "nobody-small.log")
    want_small = gen_log(small, 200, "small")
    other = os.path.join(logs, "nobody-other.log")
    gen_log(other, 10, "other")
    slow = os.path.join(logs, "root-never-ending.log")
    with open(slow, "wb") as f:
        f.truncate(1 << 40)
    d = clfdtest.Daemon(workers=1, args=["-d"],
                        config={"roots": tmp, "socket_mode": "0666",
                                "jobs_per_user": njobs + 1})
    os.chmod(d.dir, 0o711)
    try:
        # The only worker held on a never-ending file (the expander still
        # takes submits): nothing else is read until that job is cancelled.
        r = d.request({"op": "submit", "patterns": [slow]})
        held = r.get("job")
        clfdtest.wait_until(
            lambda: d.request({"op": "stats"})["workers"]["slots"][0].get("path") == slow,
            30, "the worker on the never-ending file")
        ids = []
        for j in range(njobs):
            pats = [os.path.join(logs, "root-%02d.log" % (j * nfiles + k))
                    for k in range(nfiles)]
            r = d.request({"op": "submit", "patterns": pats})
            ids.append(r.get("job"))
        t.ok(all(isinstance(i, int) for i in ids), "root: %d jobs of %d files "
             "queued" % (njobs, nfiles))
        r = d.request({"op": "submit", "patterns": [small]})
        t.eq(err_of(r)[0], "limit", "root: one more job over jobs_per_user "
             "%d -> limit" % (njobs + 1))
        t.ok("jobs_per_user" in (err_of(r)[1] or ""), "which names jobs_per_user")

        # nobody: its own job, then every op on root's
        missing = ids[-1] + 1000
        out = as_nobody(d.sock, [
            {"op": "submit", "patterns": [other]},
            {"op": "status", "job": ids[0]},
            {"op": "status", "job": missing},
            {"op": "result", "job": ids[0]},
            {"op": "wait", "job": ids[0]},
            {"op": "cancel", "job": ids[0]},
            {"op": "list"},
            {"op": "stats"},
        ])
        rs = out["replies"]
        own = rs[0].get("job")
        t.ok(rs[0].get("ok") and isinstance(own, int),
             "nobody: a job of its own, though root has %d" % njobs)
        t.eq([err_of(x) for x in rs[1:6]],
             [("not_found", "no job %d" % ids[0]), ("not_found", "no job %d" % missing)] +
             [("not_found", "no job %d" % ids[0])] * 3,
             "nobody: root's job is not_found for status, result, wait, cancel, "
             "word for word as a job that does not exist")
        t.eq([j["job"] for j in rs[6].get("jobs", [])], [own],
             "nobody: list holds its own job only")
        slot = rs[7]["workers"]["slots"][0]
        t.ok(slot.get("state") == "busy" and "path" not in slot and "job" not in slot,
             "nobody: stats shows the worker busy, not on which job or file", slot)
        slot = d.request({"op": "stats"})["workers"]["slots"][0]
        t.ok(slot.get("path") == slow and slot.get("job") == held,
             "root: stats names the job and file", slot)
        r = d.request({"op": "status", "job": ids[0]})
        t.ok(r.get("state") in ("queued", "running"),
             "root's job is still there, not cancelled (%s)" % r.get("state"))
        r = d.request({"op": "list"})
        t.ok(own in [j["job"] for j in r.get("jobs", [])] and
             set(ids) <= set(j["job"] for j in r.get("jobs", [])),
             "root lists everyone's jobs")
        out = as_nobody(d.sock, [{"op": "cancel", "job": own}])
        t.eq(out["replies"][0].get("state"), "cancelled", "nobody cancels its own job")
        t.ok("job %d: cancelled by uid %d pid %d" % (own, NOBODY, out["pid"])
             in d.log_text(), "the log names who cancelled (uid, pid)")

        # Fairness: nobody's one file goes before root's other jobs.
        p = AsNobody(d.sock, [{"op": "submit", "patterns": [small], "wait": True}])
        clfdtest.wait_until(
            lambda: "submitted by uid %d" % NOBODY in d.log_text().split(
                "cancelled by uid")[-1], 30, "nobody's submit")
        t0 = time.monotonic()
        d.request({"op": "cancel", "job": held})
        done = p.result()["replies"][-1]
        secs = time.monotonic() - t0
        t.ok(done.get("event") == "done" and done.get("counts") == want_small,
             "nobody's small job is exact (%.1f s)" % secs)
        for i in ids:
            c = d.client(timeout=BOUND * 2)
            r = c.request({"op": "wait", "job": i})
            c.close()
        # The order files were handed out in, from the debug log.
        order = re.findall(r"worker 0: job \d+: (/\S+)", d.log_text())
        pos = order.index(small) if small in order else len(order)
        # after root's never-ending file: with turns taken by jobs,
        # nobody's would come after one file of each of root's 10 jobs; by
        # users, after one of root's at most.
        t.ok(pos <= 2, "nobody's file was handed out %s of %d (not after "
             "each of root's %d jobs)" % (pos + 1, len(order), njobs),
             "\n".join(order[:15]))
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        d.cleanup()


def has_open(pid, path):
    """True when process pid has path open."""
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == path:
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def test_shrink(t, tmp):
    """A file truncated while it is read is partial, and says so."""
    path = os.path.join(tmp, "shrinking.log")
    with open(path, "wb") as f:
        f.truncate(1 << 40)     # far more than is read before the truncate
    d = clfdtest.Daemon(workers=1, config={"roots": tmp})
    try:
        c = d.client(timeout=BOUND * 2)
        c.request({"op": "submit", "patterns": [path], "wait": True})
        pid = clfdtest.wait_until(
            lambda: next((s["pid"] for s in d.request({"op": "stats"})["workers"]["slots"]
                          if s.get("path") == path), None), 30, "the worker on the file")
        clfdtest.wait_until(lambda: has_open(pid, path), 30, "the file open")
        os.truncate(path, 0)
        ev = c.recv()
        while ev is not None and ev.get("event") != "done":
            ev = c.recv()
        c.close()
        tot = (ev or {}).get("totals") or {}
        f = ((ev or {}).get("files") or [{}])[0]
        t.ok(tot.get("partial") == 1 and tot.get("failed") == 0 and
             f.get("partial") is True and
             "file shrank while being read" in (f.get("error") or ""),
             "a file truncated while read is partial: %s" % f.get("error"),
             json.dumps(ev)[:1000])
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        d.cleanup()


def answer(c, req):
    """Send req and read the answer, as a client refused early must: the
    send may find the connection closed, the answer is there all the same."""
    try:
        c.send(req)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return c.recv()


def test_connections(t, tmp):
    """Over connections_max: limit, never a reset; clfctl exits 4."""
    d = clfdtest.Daemon(workers=1, config={"connections_max": 5,
                                           "request_max": 4096})
    held = []
    try:
        for _ in range(5):
            c = d.client(timeout=BOUND)
            c.request({"op": "ping"})
            held.append(c)
        codes = {}
        for _ in range(200):
            c = d.client(timeout=BOUND)
            try:
                r = answer(c, {"op": "ping"})
                k = err_of(r)[0] if r and not r.get("ok") else repr(r)
            except ConnectionResetError:
                k = "reset"
            finally:
                c.close()
            codes[k] = codes.get(k, 0) + 1
        t.eq(codes, {"limit": 200}, "200 clients over connections_max 5: "
             "each answered limit, none reset")
        p = subprocess.run([clfdtest.CLFCTL, "-s", d.sock, "ping"],
                           capture_output=True, text=True, timeout=BOUND)
        t.ok(p.returncode == 4 and "limit" in p.stderr,
             "clfctl over connections_max exits 4, saying limit (%d: %s)" %
             (p.returncode, p.stderr.strip()))
        # a client dropped by clfd (a request over request_max) and still
        # connected no longer counts: another takes its place
        held.pop().close()
        clfdtest.wait_until(lambda: d.request({"op": "stats"})["connections"] == 5,
                            30, "the held client's place")
        bad = d.client(timeout=BOUND)
        bad.send_raw(b"x" * 5000)
        r = bad.recv()
        t.eq(err_of(r)[0], "too_large", "a request over request_max is refused")
        r = d.request({"op": "ping"})
        t.ok(r.get("ok"), "a dropped client, still connected, leaves its place "
             "to another at once", r)
        bad.close()
        for c in held:
            c.close()
        held = []
        ok = clfdtest.wait_until(lambda: subprocess.run(
            [clfdtest.CLFCTL, "-s", d.sock, "ping"], capture_output=True,
            timeout=BOUND).returncode == 0, 30, "clfctl ping")
        t.ok(ok, "once they left, clfctl is served")
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        for c in held:
            c.close()
        d.cleanup()


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-hostile2-")
    try:
        try:
            test_deadline(t, tmp)
        except Exception:
            t.ok(False, "deadline: unexpected exception", traceback.format_exc())
        try:
            test_shrink(t, tmp)
        except Exception:
            t.ok(False, "shrink: unexpected exception", traceback.format_exc())
        try:
            test_connections(t, tmp)
        except Exception:
            t.ok(False, "connections: unexpected exception", traceback.format_exc())
        if os.geteuid() != 0:
            t.skip("users: ownership, fairness, jobs_per_user",
                   "needs root to run a client as another uid")
        else:
            try:
                test_users(t, tmp)
            except Exception:
                t.ok(False, "users: unexpected exception", traceback.format_exc())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
