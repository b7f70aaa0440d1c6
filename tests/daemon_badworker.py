"""daemon_badworker: a worker that sends a bad message is killed, logged,
and its task retried, as soon as the message's header (and fixed part)
is in: the supervisor never waits for the payload of a message it can
already tell is wrong.

The test writes the bad bytes itself, into the supervisor's end of the
channel of a worker busy on a never-ending file (a 1 TB sparse file):
pidfd_getfd(2) gives it a copy of the worker's socket (fd 3). A real log
is renamed over the never-ending file first, so that the retry counts
it. Skipped where pidfd_getfd is not available."""
import ctypes
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

# A never-ending sparse file is one task, not split into ranges
# (daemon_split tests the ranges).
ONE_TASK = {"split_size": "0"}

PROTO_READY, PROTO_TASK, PROTO_RESULT, PROTO_EXPAND, PROTO_EXPANDED = 1, 2, 3, 4, 5
PROTO_MERGE, PROTO_MERGED = 6, 7
PROTO_MSG_MAX = 512 << 20
SYS_PIDFD_GETFD = 438       # the same on x86_64 and arm64


def hdr(typ, length):
    return struct.pack("=II", typ, length)


def merged_fixed(task, error_len):
    return struct.pack("=3Q2I", task, 0, 0, 0xffffffff, error_len)


# (what is sent, what the log says)
CASES = [
    ("an unknown message type", hdr(99, 16), "sent a garbled message header"),
    ("a length over PROTO_MSG_MAX", hdr(PROTO_RESULT, PROTO_MSG_MAX + 1),
     "sent an oversized message"),
    ("a result shorter than its fixed part", hdr(PROTO_RESULT, 8),
     "sent a garbled message header"),
    # A file's result has one size: its counts stay in the spool.
    ("a 256 MB result (payload never sent)", hdr(PROTO_RESULT, 256 << 20),
     "sent a garbled message header"),
    ("a merge answer for a file task", hdr(PROTO_MERGED, 32) + merged_fixed(1, 8),
     "sent an unexpected merge answer"),
    ("READY while busy", hdr(PROTO_READY, 8) + b"\0" * 8, "sent an unexpected READY"),
    ("a file list for a file task", hdr(PROTO_EXPANDED, 32) + b"\0" * 32,
     "sent an unexpected file list"),
]


def steal_fd(pid, fd):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        r = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if r < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return r
    finally:
        os.close(pidfd)


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-badworker-")
    d = None
    try:
        logs = clfdtest.gen_logs(os.path.join(tmp, "logs"), 1 + len(CASES), 2000, seed=91)
        want = clfdtest.seed_ref(logs[:1])
        slow = os.path.join(tmp, "slow.log")
        d = clfdtest.Daemon(workers=1, config=ONE_TASK)
        pid = d.wait_workers()[0]
        try:
            os.close(steal_fd(pid, 3))
        except (OSError, AttributeError) as e:
            t.skip("bad messages from a worker", "pidfd_getfd: %s" % e)
            return t.done()

        for i, (desc, data, logged) in enumerate(CASES):
            with open(slow, "wb") as f:
                f.truncate(1 << 40)
            c = d.client()
            r = c.request({"op": "submit", "patterns": [slow, logs[0]], "wait": True})
            pid = clfdtest.wait_until(
                lambda: [s["pid"] for s in d.request({"op": "stats"})["workers"]["slots"]
                         if s.get("path") == slow], 30, "a worker on the never-ending file")[0]
            expect = clfdtest.seed_ref([logs[1 + i], logs[0]])
            os.rename(logs[1 + i], slow)     # the retry reads a real log
            fd = steal_fd(pid, 3)
            os.write(fd, data)
            os.close(fd)
            gone = clfdtest.wait_until(lambda: not clfdtest.pid_alive(pid), 30,
                                       "the worker to be killed")
            t.ok(gone, "%s: the worker is killed" % desc)
            ev = c.recv()
            c.close()
            e = [f for f in ev["files"] if f["path"] == slow][0] if ev else {}
            t.ok(ev is not None and ev["ok"] and e.get("error") is None and
                 ev["counts"] == expect,
                 "%s: the task is retried, the job exact" % desc, e)
            t.ok(logged in d.log_text(), "%s: logged (%s)" % (desc, logged))
        r, ev = d.submit(logs[:1])
        t.ok(ev is not None and ev["counts"] == want, "the daemon goes on serving")
        t.eq(d.stop(), 0, "clfd exits 0")
    except Exception as e:
        t.ok(False, "unexpected exception", repr(e) + "\n" + (d.log_text()[-3000:] if d else ""))
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
