#!/usr/bin/env python3
"""service_trust: what clfd reads and who may talk to it.

- only files under `roots`, checked after resolving symlinks: a file
  outside, a symlink from inside a root to outside, and a `..` escape are
  left out of the job and not counted anywhere (their pattern is
  unmatched, as if nothing matched), never named, neither the path
  matched nor its resolved target; a symlink within the root is followed,
  and a file it reaches that another pattern matched too counts once;
  FIFOs and directories are refused with an error on their entry, the job
  still finishes;
- the socket's mode and group are what clfd was told; as root, a user who
  is neither owner nor in the group cannot connect, one in the group can.
"""
import grp
import json
import os
import pwd
import signal
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_util import (CLFD, Tap, Tmp, gen_log, read, request,  # noqa: E402
                          start_clfd, stop, submit_wait, wait_ping)


def entry(done, path):
    for f in done.get("files", []):
        if f.get("path") == path or \
                os.path.normpath(f.get("path", "")) == os.path.normpath(path):
            return f
    return None


def test_roots(t, tmp):
    root = tmp.join("root")
    outside = tmp.join("outside")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(outside)
    inside_counts = gen_log(os.path.join(root, "in.log"), 50)
    gen_log(os.path.join(outside, "secret.log"), 30)
    os.symlink(os.path.join(outside, "secret.log"), os.path.join(root, "escape.log"))
    os.symlink(os.path.join(root, "in.log"), os.path.join(root, "sub", "inner.log"))
    os.symlink(outside, os.path.join(root, "dirlink"))
    os.mkfifo(os.path.join(root, "fifo.log"))
    os.makedirs(os.path.join(root, "adir.log"))
    sock = tmp.join("roots.sock")
    conf = tmp.write("roots.conf", "workers = 2\nroots = %s\n" % root)
    proc = start_clfd(["-f", conf, "-s", sock], tmp, stderr_name="roots.err")
    errf = tmp.join("roots.err")
    try:
        t.ok(wait_ping(sock, proc) is not None, "clfd up with roots = %s" % root,
             read(errf))

        def refused(pattern, path, what):
            _, done = submit_wait(sock, [pattern], timeout=30)
            e = done and entry(done, path)
            t.ok(e is not None and e.get("error") and e.get("counted") == 0
                 and e.get("lines") == 0 and not done.get("counts"),
                 "%s refused with an error on its entry" % what,
                 done)
            if e is not None and e.get("error"):
                t.diag("%s: %s" % (what, e["error"]))
            return e

        def left_out(pattern, what):
            _, done = submit_wait(sock, [pattern], timeout=30)
            text = json.dumps(done)
            t.ok(done is not None and done.get("ok") and done.get("files") == [] and
                 not done.get("totals", {}).get("outside_roots") and
                 done.get("unmatched") == [pattern] and not done.get("counts"),
                 "%s: left out, not counted, pattern unmatched" % what, done)
            t.ok(done is not None and "secret" not in text.replace(pattern, "") and
                 outside not in text.replace(pattern, ""),
                 "%s: the result names nothing the pattern did not" % what, text)

        left_out(os.path.join(outside, "secret.log"), "a file outside the roots")
        left_out(os.path.join(outside, "*"), "a glob outside the roots")
        left_out(os.path.join(root, "escape.log"), "a symlink from inside the root to outside")
        left_out(os.path.join(root, "dirlink", "*.log"),
                 "a file under a symlinked directory pointing outside")
        left_out(os.path.join(root, "..", "outside", "secret.log"), "a '..' escape")
        refused(os.path.join(root, "fifo.log"), os.path.join(root, "fifo.log"), "a FIFO")
        refused(os.path.join(root, "adir.log"), os.path.join(root, "adir.log"),
                "a directory")
        # Mixed: the good files count, the bad ones fail, the job completes.
        _, done = submit_wait(sock, [os.path.join(root, "*.log"),
                                     os.path.join(root, "sub", "*.log")], timeout=30)
        t.ok(done is not None and done.get("counts") == inside_counts,
             "a symlink within the root is followed; its file counted once, "
             "only inside files counted", done and done.get("counts"))
        t.ok(done is not None and done.get("totals", {}).get("failed") == 2 and
             not done["totals"].get("outside_roots") and
             entry(done, os.path.join(root, "escape.log")) is None,
             "fifo.log and adir.log failed, escape.log left out, the job completed",
             done and done.get("totals"))
        t.ok(proc.poll() is None, "clfd still running")
    finally:
        rc = stop(proc)
    t.ok(rc == 0, "clfd stops cleanly (%s)" % rc, read(errf))


def test_socket_perms(t, tmp):
    for mode in (0o600, 0o660):
        d = tmp.join("perm%o" % mode)
        os.makedirs(d, mode=0o755)
        sock = os.path.join(d, "clfd.sock")
        conf = tmp.write("perm.conf", "workers = 1\nsocket_mode = %04o\n" % mode)
        proc = start_clfd(["-f", conf, "-s", sock], tmp, stderr_name="perm.err")
        try:
            up = wait_ping(sock, proc) is not None
            m = stat.S_IMODE(os.stat(sock).st_mode) if up else None
            t.ok(up and m == mode, "socket_mode %04o honoured (%s)"
                 % (mode, "%04o" % m if m is not None else None), read(tmp.join("perm.err")))
        finally:
            stop(proc)
    if os.geteuid() != 0:
        t.skip("socket_group and access by others", "needs root to switch users")
        return
    # As root: a socket of group "adm", mode 0660; nobody may not connect,
    # nobody with adm as a supplementary group may.
    try:
        gid = grp.getgrnam("adm").gr_gid
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        t.skip("socket_group and access by others", "no adm group or nobody user")
        return
    d = tmp.join("grp")
    os.makedirs(d)
    os.chmod(d, 0o755)
    os.chmod(tmp.path, 0o755)
    sock = os.path.join(d, "clfd.sock")
    conf = tmp.write("grp.conf", "workers = 1\nsocket_mode = 0660\nsocket_group = adm\n")
    proc = start_clfd(["-f", conf, "-s", sock], tmp, stderr_name="grp.err")
    try:
        up = wait_ping(sock, proc) is not None
        st = os.stat(sock) if up else None
        t.ok(st is not None and st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o660,
             "socket_group adm and mode 0660 honoured", read(tmp.join("grp.err")))

        def try_as(groups):
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    os.setgroups(groups)
                    os.setgid(nobody.pw_gid)
                    os.setuid(nobody.pw_uid)
                    r = request(sock, {"op": "ping"}, timeout=5)
                    code = 0 if r.get("ok") else 2
                except PermissionError:
                    code = 1
                except BaseException:
                    code = 3
                os._exit(code)
            return os.waitpid(pid, 0)[1] >> 8

        t.ok(try_as([]) == 1, "a user outside the group is refused (EACCES)")
        t.ok(try_as([gid]) == 0, "a member of the group may connect and ping")
    finally:
        os.chmod(tmp.path, 0o700)
        stop(proc, signal.SIGTERM)


def main():
    if not os.access(CLFD, os.X_OK):
        print("1..0 # SKIP clfd not built")
        return
    t = Tap()
    tmp = Tmp()
    try:
        test_roots(t, tmp)
        test_socket_perms(t, tmp)
    finally:
        tmp.cleanup()
    t.done()


if __name__ == "__main__":
    main()
