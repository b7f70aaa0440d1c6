"""daemon_status: the STATUS= clfd sends to systemd, only when it changes.

clfd runs with NOTIFY_SOCKET naming a datagram socket of our own. A job
of many small files makes the supervisor look at its status after every
worker message, mostly with nothing changed (a worker that finishes one
file is given the next at once): consecutive STATUS= lines must differ,
and the last one must say no job is going on. A build without libsystemd
sends nothing: the test skips then."""
import os
import shutil
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

NFILES = 40
LINE = '10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET /%d HTTP/1.1" 200 10\n'


class Reader(threading.Thread):
    """Reads the notify socket as systemd would, keeping STATUS= values."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock, self.got, self.lock = sock, [], threading.Lock()
        self.stopped = False
        sock.settimeout(0.2)

    def run(self):
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, OSError):
                continue
            with self.lock:
                self.got += [l[len("STATUS="):]
                             for l in data.decode().split("\n")
                             if l.startswith("STATUS=")]

    def status(self):
        with self.lock:
            return list(self.got)


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfdtest-status-")
    d = rd = None
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        path = os.path.join(tmp, "notify")
        ns.bind(path)
        files = []
        for i in range(NFILES):
            files.append(os.path.join(tmp, "f%02d.log" % i))
            with open(files[-1], "w") as f:
                f.write(LINE % i)
        rd = Reader(ns)
        rd.start()
        d = clfdtest.Daemon(workers=2, env={"NOTIFY_SOCKET": path})
        d.wait_workers()
        r, ev = d.submit(files)
        t.ok(ev is not None and ev.get("ok") and
             ev["totals"]["counted"] == NFILES, "the job of %d files is counted"
             % NFILES, (r, ev))
        # the job's end may come after its done event

        def settled():
            got = rd.status()
            return got and "(0 busy), 0 jobs active" in got[-1]
        try:
            clfdtest.wait_until(settled, 20, "STATUS= to settle")
        except Exception:
            pass
        got = rd.status()
        if not got:
            t.skip("STATUS= only on change", "no STATUS= sent (no libsystemd)")
            return t.done()
        same = [i for i in range(1, len(got)) if got[i] == got[i - 1]]
        t.ok(not same, "%d STATUS= lines, none the same as the one before"
             % len(got), "\n".join(got))
        t.ok("2 workers (0 busy), 0 jobs active" in got[-1],
             "the last STATUS= says no job is going on", got[-1])
        t.eq(d.stop(), 0, "clfd exits 0")
    finally:
        if rd is not None:
            rd.stopped = True
            rd.join()
        ns.close()
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
