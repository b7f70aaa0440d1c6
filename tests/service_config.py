#!/usr/bin/env python3
"""service_config: clfd.conf handling.

Every key is accepted with a good value and refused with a bad one (the
error names file:line, the exit status is non-zero, for `clfd -t` and for
a real start); the settings take effect in a running daemon; SIGHUP
applies a good new file to new jobs and keeps the old settings running
when the new file is bad.
"""
import grp
import os
import re
import signal
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_util import (CLFD, Client, Tap, Tmp, config_keys, gen_log,  # noqa: E402
                          read, request, start_clfd, stop,
                          submit_wait, wait_for, wait_ping)

# key: (good values, bad values)
CASES = {
    "workers": (["0", "3", "256"], ["-1", "abc", "257", ""]),
    "socket_path": (["/tmp/x/clfd.sock"], ["relative.sock", ""]),
    "socket_mode": (["0640", "660", "0777"], ["999", "0x1", "01000", "", "+600", "-600"]),
    "socket_group": ([grp.getgrgid(os.getgid()).gr_name], ["no-such-group-clfd", ""]),
    "roots": (["/var/log", "/var/log /srv/www/logs"], ["var/log", "/var/log srv", ""]),
    "format": (["combined", "common", "vhost_combined", '%h %l %u %t "%r" %>s %b',
                '%h %l %u %t \\"%r\\" %>s %b', '"%h %l %u %t \\"%r\\" %>s %b"',
                '"combined" # a comment', "regex:^(?<request>.*)$"],
               ["regex:(unclosed", "nosuchpreset", '"combined', '"combined" x',
                '"regex:(unclosed"']),
    "exclude_names": (["favicon.ico", "a b c", ""], ["a /api"]),
    "exclude_exts": ([".gif .png", "", ".png .js .css .jpg .gif .ico .svg .woff .woff2"],
                     [".x/y"]),
    "line_max": (["256", "128K", "1M"], ["255", "12X", "2G", "-1"]),
    "request_max": (["4096", "2M", "64M"], ["1", "1T", "65M"]),
    "patterns_max": (["1", "10"], ["0", "1.5"]),
    "files_max": (["1", "1000000"], ["0", "x"]),
    "walk_max": (["1000", "50000000"], ["999", "2000000000", "many"]),
    "jobs_max": (["1", "5"], ["-3", "0"]),
    "jobs_per_user": (["1", "64"], ["0", "-1", "lots"]),
    "connections_max": (["1", "5"], ["x", "0"]),
    "idle_timeout": (["1", "86400"], ["0", "86401", "1m"]),
    "result_ttl": (["0", "600"], ["1.5", "-1"]),
    "result_memory": (["0", "1G", "64m"], ["1T", "-1"]),
    "result_disk": (["0", "1G", "4096G"], ["-1", "lots"]),
    "spool_dir": (["/var/tmp", "/srv/clfd spool"], ["var/tmp", ""]),
    "cache_dir": (["/var/cache/clfd", "/srv/clfd cache"], ["var/cache", ""]),
    "cache_max": (["0", "1G", "4096G"], ["-1", "lots"]),
    "split_size": (["0", "1", "32M", "4096G"], ["-1", "big"]),
    "worker_memory": (["0", "512M"], ["-1", "lots"]),
    "inflate_ahead": (["0", "16M", "1"], ["-1", "lots"]),
    "refuse_hardlinks": (["yes", "no"], ["1", "true", "Yes", ""]),
    "task_timeout": (["0", "30"], ["abc", "86401"]),
    "exit_idle": (["0", "10"], ["1e3", "-5"]),
}


def run_t(path):
    return subprocess.run([CLFD, "-t", "-f", path], capture_output=True,
                          text=True, timeout=30)


def test_keys(t, tmp):
    keys = config_keys()
    t.ok(sorted(keys) == sorted(CASES),
         "the test covers exactly the keys of config.c",
         "config.c: %s\ntest: %s" % (sorted(keys), sorted(CASES)))
    bad_accepted, good_refused, unnamed = [], [], []
    for key, (goods, bads) in sorted(CASES.items()):
        for v in goods:
            p = tmp.write("good.conf", "# a comment\n\n%s = %s\n" % (key, v))
            r = run_t(p)
            if r.returncode != 0:
                good_refused.append("%s = %r: %s" % (key, v, r.stderr.strip()))
        for v in bads:
            p = tmp.write("bad.conf", "# a comment\nworkers = 1\n  %s =   %s  \n" % (key, v))
            r = run_t(p)
            if r.returncode == 0:
                bad_accepted.append("%s = %r" % (key, v))
            elif "%s:3" % p not in r.stderr:
                unnamed.append("%s = %r: %s" % (key, v, r.stderr.strip()))
    t.ok(not good_refused, "clfd -t accepts a good value of every key", good_refused)
    t.ok(not bad_accepted, "clfd -t refuses every bad value", bad_accepted)
    t.ok(not unnamed, "each refusal names file:line", unnamed)


def test_syntax(t, tmp):
    cases = [
        ("unknown key", "workers = 2\n\nfrobnicate = 1\n", 3),
        ("no '='", "# x\nworkers 2\n", 2),
        ("key only", "workers\n", 1),
        ("value after a good line", "workers = 2\nsocket_mode = 0600\njobs_max = many\n", 3),
    ]
    for what, text, line in cases:
        p = tmp.write("syn.conf", text)
        r = run_t(p)
        t.ok(r.returncode != 0 and ("%s:%d" % (p, line)) in r.stderr,
             "clfd -t: %s is an error naming %s:%d" % (what, "syn.conf", line),
             "rc %d: %s" % (r.returncode, r.stderr))
    p = tmp.write("ok.conf", "# only comments\n\n   # indented comment\n"
                  "workers = 2   \n\troots = /  \nline_max = 1M # a comment\n"
                  "exclude_exts = #none\n")
    r = run_t(p)
    t.ok(r.returncode == 0, "clfd -t: comments, blank lines and white space are fine",
         r.stderr)
    r = run_t(tmp.join("missing.conf"))
    t.ok(r.returncode != 0 and "missing.conf" in r.stderr,
         "clfd -t: a missing file is an error naming it", r.stderr)
    # A real start with a bad file fails too, naming file:line, without a socket.
    p = tmp.write("start-bad.conf", "workers = 1\nline_max = tiny\n")
    sock = tmp.join("never.sock")
    proc = start_clfd(["-f", p, "-s", sock], tmp, stderr_name="start-bad.err")
    try:
        rc = proc.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    err = read(tmp.join("start-bad.err"))
    t.ok(rc not in (None, 0) and "%s:2" % p in err,
         "clfd with a bad file exits non-zero naming file:line (%s)" % rc, err)
    t.ok(not os.path.exists(sock), "and leaves no socket behind")
    stop(proc)


def test_effects(t, tmp):
    logs = tmp.join("eff-logs")
    os.makedirs(logs)
    counts = {}
    for i in range(3):
        for k, v in gen_log(os.path.join(logs, "l%d.log" % i), 70).items():
            counts[k] = counts.get(k, 0) + v
    sock = tmp.join("eff", "clfd.sock")
    os.makedirs(os.path.dirname(sock), mode=0o700)
    conf = tmp.write("eff.conf", "\n".join([
        "workers = 3",
        "socket_path = %s" % sock,
        "socket_mode = 0640",
        "roots = %s" % logs,
        "exclude_names = ch1.html",
        "patterns_max = 2",
        "files_max = 3   # a comment after a value",
        "# a LogFormat line as an Apache config has it",
        'format = "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\""',
        "request_max = 4096",
        ""]))
    proc = start_clfd(["-f", conf], tmp, stderr_name="eff.err")
    try:
        t.ok(wait_ping(sock, proc) is not None, "clfd listens on socket_path",
             read(tmp.join("eff.err")))
        st = os.stat(sock)
        t.ok(stat.S_IMODE(st.st_mode) == 0o640, "socket_mode 0640 applied (%o)"
             % stat.S_IMODE(st.st_mode))
        s = request(sock, {"op": "stats"})
        t.ok(s.get("workers", {}).get("configured") == 3, "workers = 3 applied", s)
        _, done = submit_wait(sock, [os.path.join(logs, "*.log")])
        want = {k: v for k, v in counts.items() if k != "/book/ch1.html"}
        t.ok(done is not None and done.get("counts") == want,
             "exclude_names = ch1.html applied", done and done.get("counts"))
        t.ok(done is not None and done.get("totals", {}).get("malformed") == 0 and
             done.get("format", "").startswith('%h %l %u %t "%r"'),
             'a quoted format with \\" read as Apache reads it', done and done.get("totals"))
        r = request(sock, {"op": "submit", "patterns": [logs + "/l0.log", logs + "/l1.log",
                                                         logs + "/l2.log"]})
        t.ok(r.get("error", {}).get("code") == "limit", "patterns_max = 2 applied", r)
        # (a fourth file: a hard link to l0.log would be the same file)
        gen_log(os.path.join(logs, "l3.log"), 5)
        r = request(sock, {"op": "submit", "patterns": [logs + "/*.log"]})
        os.unlink(os.path.join(logs, "l3.log"))
        t.ok(r.get("error", {}).get("code") == "limit", "files_max = 3 applied", r)
        c = Client(sock)
        try:
            r = c.request({"op": "ping", "pad": "x" * 5000}) or {}
        finally:
            c.close()
        t.ok(r.get("error", {}).get("code") == "too_large", "request_max = 4096 applied", r)
    finally:
        rc = stop(proc)
    t.ok(rc == 0, "clfd stopped (%s)" % rc, read(tmp.join("eff.err")))
    # exit_idle: the daemon leaves by itself when nobody uses it.
    sock2 = tmp.join("idle.sock")
    conf2 = tmp.write("idle.conf", "workers = 1\nexit_idle = 1\n")
    proc = start_clfd(["-f", conf2, "-s", sock2], tmp, stderr_name="idle.err")
    try:
        up = wait_ping(sock2, proc) is not None
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            rc = None
        t.ok(up and rc == 0, "exit_idle = 1: clfd exits 0 by itself (%s)" % rc,
             read(tmp.join("idle.err")))
    finally:
        stop(proc)


def test_reload(t, tmp):
    logs = tmp.join("rl-logs")
    os.makedirs(logs)
    counts = gen_log(os.path.join(logs, "a.log"), 140)
    sock = tmp.join("rl.sock")
    conf = tmp.write("rl.conf", "workers = 2\nexclude_names = ch2.html\n")
    proc = start_clfd(["-f", conf, "-s", sock], tmp, stderr_name="rl.err")
    errf = tmp.join("rl.err")
    try:
        t.ok(wait_ping(sock, proc) is not None, "reload: clfd up", read(errf))
        pattern = [os.path.join(logs, "*.log")]

        def counted():
            _, d = submit_wait(sock, pattern)
            return d and d.get("counts")

        old = {k: v for k, v in counts.items() if k != "/book/ch2.html"}
        t.ok(counted() == old, "reload: first settings in force")
        # A bad file: logged naming file:line, the old settings stay.
        with open(conf, "w") as f:
            f.write("workers = 2\nexclude_names = ch3.html\nworkers = lots\n")
        pid_before = request(sock, {"op": "ping"}).get("pid")
        os.kill(proc.pid, signal.SIGHUP)
        logged = wait_for(lambda: "%s:3" % conf in read(errf), 15)
        t.ok(logged, "reload with a bad file logs file:line", read(errf))
        p = request(sock, {"op": "ping"})
        t.ok(proc.poll() is None and p.get("pid") == pid_before,
             "the daemon keeps running after a bad reload")
        t.ok(counted() == old, "and keeps the old settings (ch2.html excluded)")
        # A good file: new jobs use it.
        with open(conf, "w") as f:
            f.write("workers = 2\nexclude_names = ch3.html\n")
        os.kill(proc.pid, signal.SIGHUP)
        new = {k: v for k, v in counts.items() if k != "/book/ch3.html"}
        got = wait_for(lambda: counted() == new, 15, 0.1)
        t.ok(got, "after a good reload new jobs use the new settings")
        # Workers are replaced once idle: wait for both replacements.
        alive = wait_for(lambda: request(sock, {"op": "stats"})
                         .get("workers", {}).get("alive") == 2, 15, 0.05)
        t.ok(alive, "both workers alive again after the reloads",
             request(sock, {"op": "stats"}))
    finally:
        rc = stop(proc)
    t.ok(rc == 0, "clfd stops cleanly after reloads (%s)" % rc, read(errf))
    t.ok(not re.search(r"AddressSanitizer|runtime error", read(errf)),
         "no sanitizer report in the log")


def default_config():
    """configure's sysconfdir/clfd.conf, from the build's Makefile."""
    v = {}
    with open(os.path.join(os.path.dirname(CLFD), "Makefile")) as f:
        for line in f:
            m = re.match(r"(prefix|sysconfdir) = (.*)$", line)
            if m:
                v[m.group(1)] = m.group(2).strip()
    return v["sysconfdir"].replace("${prefix}", v["prefix"]) + "/clfd.conf"


def test_cli(t, tmp):
    # clfd -t without -f checks the default file, as nginx -t does
    conf = default_config()
    r = subprocess.run([CLFD, "-t"], capture_output=True, text=True, timeout=30)
    r2 = run_t(conf)
    t.ok(conf in r.stdout + r.stderr and r.returncode == r2.returncode and
         r.stdout == r2.stdout and r.returncode == (0 if os.path.exists(conf) else 1),
         "clfd -t without -f checks %s" % conf, (r.returncode, r.stdout, r.stderr))
    for args in (["--help"], ["-h"]):
        r = subprocess.run([CLFD] + args, capture_output=True, text=True, timeout=30)
        t.ok(r.returncode == 0 and r.stdout.startswith("usage: clfd") and "-t" in r.stdout,
             "clfd %s: the usage on stdout, exit 0" % args[0], r.stderr)
    r = subprocess.run([CLFD, "-w", "300"], capture_output=True, text=True, timeout=30)
    t.ok(r.returncode == 2 and '"300" is not a number from 0 to 256' in r.stderr,
         "clfd -w 300: the error states the range", r.stderr)
    r = subprocess.run([CLFD, "--hlep"], capture_output=True, text=True, timeout=30)
    t.ok(r.returncode == 2 and "did you mean --help?" in r.stderr,
         "clfd --hlep: the closest option suggested", r.stderr)
    p = tmp.write("range.conf", "workers = 1\njobs_max = 0\n")
    r = run_t(p)
    t.ok(r.returncode != 0 and "from 1 to 1000000" in r.stderr,
         "a config value out of range: the error states the range", r.stderr)
    # -w 0 is workers = 0: one per CPU, whatever the file says
    sock = tmp.join("w0.sock")
    conf = tmp.write("w0.conf", "workers = 1\n")
    proc = start_clfd(["-f", conf, "-s", sock, "-w", "0"], tmp, stderr_name="w0.err")
    try:
        wait_ping(sock, proc)
        s = request(sock, {"op": "stats"})
        t.eq(s.get("workers", {}).get("configured"), os.cpu_count(),
             "-w 0 overrides workers = 1 with one per CPU")
    finally:
        rc = stop(proc)
    t.ok(rc == 0, "clfd -w 0 stopped (%s)" % rc, read(tmp.join("w0.err")))


def main():
    if not os.access(CLFD, os.X_OK):
        print("1..0 # SKIP clfd not built")
        return
    t = Tap()
    tmp = Tmp()
    try:
        test_keys(t, tmp)
        test_syntax(t, tmp)
        test_cli(t, tmp)
        test_effects(t, tmp)
        test_reload(t, tmp)
    finally:
        tmp.cleanup()
    t.done()


if __name__ == "__main__":
    main()
