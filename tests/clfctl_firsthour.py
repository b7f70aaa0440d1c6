#!/usr/bin/env python3
"""clfctl's answers that must not be silently empty or surprising: every
pattern unmatched is an error (exit 5), a file mostly malformed is warned
about with an example line (exit 6), the homepage rule, refused filters.
"""
import calendar
import json
import os
import pty
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clfctl_util import (Tap, start_daemon, clfctl, gen_logs, seed_ref,  # noqa: E402
                         raw_request, clean_env, mkdtemp, rmtree, CLFCTL)

COMBINED = ('203.0.113.%d - - [10/Oct/2024:13:55:%02d +0000] "GET /book/p%d HTTP/1.1" '
            '200 512 "-" "curl/8"\n')
COMMON = '198.51.100.%d - - [10/Oct/2024:13:55:%02d +0000] "GET /doc/p%d HTTP/1.1" 200 512\n'


def write(path, text):
    with open(path, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    return path


def load(r):
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def on_pty(args, sock, env=None):
    """clfctl with its stdout on a pseudo-terminal: (exit status, output)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([CLFCTL, "-s", sock] + args, stdin=subprocess.DEVNULL,
                             stdout=slave, stderr=subprocess.PIPE, env=env or clean_env())
    finally:
        os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:         # EIO: the other end is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    p.stderr.read()
    p.stderr.close()
    return p.wait(timeout=60), out.decode(errors="replace").replace("\r\n", "\n")


def main():
    t = Tap()
    tmp = mkdtemp()
    d = None
    try:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        good = write(os.path.join(data, "good.log"),
                     "".join(COMBINED % (i, i % 60, i % 7) for i in range(50)))
        d = start_daemon(tmp)
        s = d.sock
        est = clean_env(TZ="EST+5")     # local time: 5 h behind UTC, no DST

        # item 5: nothing matched is not success
        typo = os.path.join(data, "ngnix", "*.log")
        r = clfctl(["submit", "-o", "compact", typo], s)
        t.ok(r.returncode == 5 and "no file matches " + typo in r.stderr and
             "no pattern matched" in r.stderr,
             "every pattern unmatched: an error, exit 5", (r.returncode, r.stderr))
        t.eq(load(r).get("unmatched"), [typo], "the result still names the pattern")
        r = clfctl(["submit", "-o", "compact", typo, os.path.join(data, "none-*")], s)
        t.eq(r.returncode, 5, "two patterns, both unmatched: exit 5")
        r = clfctl(["submit", "-o", "compact", typo, good], s)
        t.ok(r.returncode == 0 and "no file matches" in r.stderr,
             "one matched, one not: warned, exit 0", (r.returncode, r.stderr))
        r = clfctl(["submit", "--no-wait", typo], s)
        job = load(r).get("job")
        t.ok(r.returncode == 5 and job is not None and "no pattern matched" in r.stderr,
             "--no-wait with nothing matched: the job id, exit 5", (r.returncode, r.stdout,
                                                                   r.stderr))
        r = clfctl(["wait", str(job)], s)
        t.eq(r.returncode, 5, "wait on that job: exit 5")
        r = clfctl(["result", str(job)], s)
        t.eq(r.returncode, 5, "result of that job: exit 5")

        # item 2: a file mostly malformed under the format is warned about
        first = ('198.51.100.1 - - [10/Oct/2024:13:55:00 +0000] "GET /doc/\x01' + "a" * 200 +
                 ' HTTP/1.1" 200 512\n')
        common = write(os.path.join(data, "common.log"),
                       first + "".join(COMMON % (i, i % 60, i % 5) for i in range(40)))
        r = clfctl(["submit", "-o", "compact", "--format", "combined", common], s)
        res = load(r)
        f = (res.get("files") or [{}])[0]
        t.ok(r.returncode == 6, "a Common log under combined: exit 6", (r.returncode, r.stderr))
        t.ok(f.get("lines") == 41 and f.get("malformed") == 41 and f.get("matched") == 0,
             "every line malformed", f)
        ex = f.get("malformed_example") or ""
        t.ok(ex.encode() == first.encode()[:120], "the result keeps the first 120 bytes of "
             "the first malformed line", ex)
        want = ('%s: 41 of 41 lines malformed for format "combined"; the first: '
                '"198.51.100.1 - - [10/Oct/2024:13:55:00 +0000] \\"GET /doc/\\x01a' % common)
        line = [x for x in r.stderr.splitlines() if "malformed" in x]
        t.ok(len(line) == 1 and line[0].startswith("clfctl: " + want) and
             line[0].endswith('aaa..."') and "\x01" not in line[0],
             "stderr names the file, the format, the line (escaped, cut)", r.stderr)
        r = clfctl(["submit", "-o", "compact", common], s)
        t.ok(r.returncode == 0 and "malformed" not in r.stderr and
             load(r)["files"][0]["malformed_example"] is None,
             "the same file under the default format: no warning, exit 0",
             (r.returncode, r.stderr))
        # item 3: \" and \\ in a LogFormat stand for " and \, as Apache has it
        r = clfctl(["submit", "-o", "compact", "--format", '%h %l %u %t \\"%r\\" %>s %b',
                    common], s)
        f = (load(r).get("files") or [{}])[0]
        t.ok(r.returncode == 0 and f.get("malformed") == 0 and f.get("counted") == 41,
             '--format with \\" as an Apache config writes it: every line matches',
             (r.returncode, r.stderr, f))
        # half malformed is not most
        half = write(os.path.join(data, "half.log"),
                     "".join(COMBINED % (i, i, i) for i in range(5)) + "junk\n" * 5)
        r = clfctl(["submit", "-o", "compact", half], s)
        t.ok(r.returncode == 0 and "malformed" not in r.stderr,
             "5 malformed lines of 10: not most, exit 0", (r.returncode, r.stderr))
        r = clfctl(["submit", "-o", "compact", half, common, "--format", "combined"], s)
        t.ok(r.returncode == 6 and "half.log" not in r.stderr and "common.log" in r.stderr,
             "two files: only the mostly malformed one is named", r.stderr)
        # lines whose request is not METHOD TARGET PROTOCOL: their own counter
        nr = write(os.path.join(data, "notreq.log"),
                   '203.0.113.9 - - [10/Oct/2024:13:55:00 +0000] "-" 400 0 "-" "-"\n'
                   '203.0.113.9 - - [10/Oct/2024:13:55:01 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"\n'
                   + "".join(COMBINED % (i, i, i) for i in range(3)) +
                   '203.0.113.9 - - [10/Oct/2024:13:55:02 +0000] "GET /robots.txt HTTP/1.1"'
                   ' 200 1 "-" "-"\n')
        r = clfctl(["submit", "-o", "compact", nr], s)
        f = (load(r).get("files") or [{}])[0]
        t.ok(r.returncode == 0 and f.get("not_request") == 2 and f.get("filtered") == 3 and
             f.get("counted") == 3, "not METHOD TARGET PROTOCOL: not_request 2 of filtered 3", f)
        keys = list(f)
        t.eq(keys[:keys.index("partial") + 3] if "partial" in keys else keys,
             ["path", "bytes", "raw_bytes", "lines", "matched", "malformed", "filtered",
              "counted", "error", "partial", "not_request", "malformed_example"],
             "a file's entry: the fields it had, then the new ones")

        # item 1: the root path is a rule of its own
        gen = gen_logs(os.path.join(data, "gen"), 2, 600, seed=11, plain=True, junk=0.02)
        req = '203.0.113.5 - - [10/Oct/2024:13:55:00 +0000] "%s" 200 5 "-" "-"\n'
        gen.append(write(os.path.join(data, "home.log"), "".join(
            req % r for r in ["GET / HTTP/1.1"] * 3 + ["GET // HTTP/1.1", "GET /?q=1 HTTP/1.1",
                                                      "GET http://h.example HTTP/1.1",
                                                      "GET /favicon.ico HTTP/1.1", "-"])))
        want = seed_ref(gen, any_=True)
        r = clfctl(["submit", "-o", "compact"] + gen, s)
        t.ok(r.returncode == 0 and load(r).get("counts") == want and "/" not in want,
             "by default the root path is not counted (the seed's rule)", r.stderr)
        want_root = seed_ref(gen, any_=True, count_root=True)
        r = clfctl(["submit", "-o", "compact", "--count-root"] + gen, s)
        res = load(r)
        t.ok(r.returncode == 0 and res.get("counts") == want_root and
             want_root.get("/") == 4 and want_root.get("//") == 1 and
             "/favicon.ico" not in want_root and "" not in want_root,
             "--count-root: / (and //) counted, the other excludes kept, as refcount.py "
             "--count-root", {k: want_root.get(k) for k in ("/", "//")})
        t.eq(res.get("filter", {}).get("exclude_root"), False,
             "the job's filter says exclude_root false")
        r = clfctl(["submit", "-o", "compact", "--no-default-excludes"] + gen, s)
        c = load(r).get("counts", {})
        t.ok(r.returncode == 0 and c.get("/") == want_root["/"] and "/favicon.ico" in c,
             "--no-default-excludes counts / and every excluded name", c.get("/"))

        # item 4: a filter the format cannot serve is refused at submit
        r = clfctl(["submit", "--format", "regex:^(?<request>[^\\n]*)$", "--status", "2xx",
                    good], s)
        t.ok(r.returncode == 4 and "no status field" in r.stderr and r.stdout == "",
             "--status on a format without status: refused, exit 4", (r.returncode, r.stderr))
        r = clfctl(["submit", "--format", "referer", "--since", "0", good], s)
        t.ok(r.returncode == 4 and "no time field" in r.stderr,
             "--since on a format without time: refused, exit 4", (r.returncode, r.stderr))
        r = clfctl(["submit", "-o", "compact", "--format", "common", "--status", "2xx", common],
                   s)
        t.ok(r.returncode == 0 and load(r).get("totals", {}).get("counted") == 41,
             "--status on a format with status: counted", (r.returncode, r.stderr))
        r = clfctl(["submit", "-o", "compact", "--format", "nginx", good], s)
        t.ok(r.returncode == 0 and load(r).get("totals", {}).get("counted") == 50,
             "nginx: an alias of combined", (r.returncode, r.stderr))
        r = clfctl(["submit", "--format", "agent", good], s)
        t.ok(r.returncode == 4 and "referer), a LogFormat or regex:PATTERN" in r.stderr,
             "agent is no preset; the error lists them all", r.stderr)

        # item 11: a name with a '/' in it is refused, by clfctl and by clfd
        r = clfctl(["submit", "--exclude-name", "/api", good], s)
        t.ok(r.returncode == 2 and "--exclude-name" in r.stderr and "/api" in r.stderr,
             "--exclude-name /api: a usage error, exit 2", (r.returncode, r.stderr))
        rep = raw_request(s, {"op": "submit", "patterns": [good],
                              "filter": {"exclude_names": ["/api"]}})
        t.ok(rep.get("error", {}).get("code") == "bad_field" and
             "exclude_names[0]" in rep["error"].get("message", ""),
             "the daemon refuses it too: bad_field", rep)

        # the README's --no-wait example, run as printed (its job id and file
        # count are this run's)
        readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                   "README.md")).read()
        ex = readme.split("$ clfctl submit --no-wait 'big/*.gz'\n", 1)[-1].split("$ ", 1)
        big = gen_logs(os.path.join(data, "big"), 2, 300, seed=4)
        r = clfctl(["submit", "--no-wait", "big/*.gz"], s, cwd=data)
        job = load(r).get("job")
        t.ok(len(ex) == 2 and r.returncode == 0 and job is not None and
             r.stdout == ex[0].replace('"job": 3', '"job": %d' % job).replace(
                 '"files_total": 2000', '"files_total": %d' % len(big)),
             "README: submit --no-wait prints what it shows", (ex[0], r.stdout))
        r = clfctl(ex[1].split("\n")[0].replace(" 3 >", " %d >" % job).split()[1:3], s,
                   cwd=data) if len(ex) == 2 else None
        t.ok(r is not None and r.returncode == 0 and load(r).get("job") == job and
             load(r).get("counts") == seed_ref(big, any_=True),
             "README: then clfctl wait ID has the result", r and r.stderr)

        # item 8: a table on a terminal, JSON elsewhere or with -o json
        rc, out = on_pty(["submit", good], s)
        lines = out.splitlines()
        t.ok(rc == 0 and lines[:2] == ["COUNT  PATH", "    8  /book/p0"] and len(lines) == 9 and
             lines[-1] == "1 file, 50 lines: 50 counted, 0 malformed, 0 excluded; 7 paths",
             "submit on a terminal: the paths as a table, then the totals", out)
        rc, out = on_pty(["submit", "-o", "json", good], s)
        t.ok(rc == 0 and json.loads(out).get("totals", {}).get("counted") == 50,
             "-o json on a terminal: JSON", out[:300])
        gen_out = on_pty(["submit"] + gen, s)[1].splitlines()
        t.ok(len(gen_out) == 23 and gen_out[21].startswith("  ...  (") and
             "more paths: -o json or -o tsv for all)" in gen_out[21],
             "a long result: 20 rows, then how many more", gen_out[-3:])
        r = clfctl(["submit", good], s)
        t.ok(r.returncode == 0 and json.loads(r.stdout).get("totals", {}).get("counted") == 50,
             "stdout not a terminal: JSON")
        r = clfctl(["ping", "-o", "table"], s)
        t.ok(r.returncode == 2 and "-o table is for" in r.stderr, "ping -o table: usage error",
             r.stderr)
        # list and status: a table on a terminal, with local ISO times and the
        # job's patterns (here TZ=EST+5); JSON elsewhere, TSV for one job too
        r = clfctl(["submit", "--no-wait", "-o", "compact", good], s)
        job = load(r).get("job")
        r = clfctl(["wait", "-o", "compact", str(job)], s)
        st = json.loads(clfctl(["status", str(job)], s).stdout)
        t.ok(st.get("patterns") == [good] and isinstance(st.get("finished"), int) and
             st["finished"] >= st.get("submitted", 1 << 62), "status JSON: its patterns, "
             "submitted and finished as UTC seconds", st)
        lst = json.loads(clfctl(["list"], s).stdout).get("jobs", [])
        mine = [j for j in lst if j.get("job") == job]
        t.ok(len(mine) == 1 and mine[0].get("patterns") == [good] and
             mine[0].get("finished") == st["finished"], "list JSON: the same", mine)

        def local(secs):
            z = time.strftime("%z", time.localtime(secs))
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(secs)) + z[:3] + ":" + z[3:]
        os.environ["TZ"] = "EST+5"
        time.tzset()
        try:
            sub, fin = local(st["submitted"]), local(st["finished"])
        finally:
            del os.environ["TZ"]
            time.tzset()
        rc, out = on_pty(["list"], s, env=est)
        rows = out.splitlines()
        want = "%*d  %-9s  %*s  %s  %s" % (max(3, len(str(lst[-1]["job"]))), job, "done",
                                           max(5, max(len("%d/%d" % (j["files_done"],
                                                                     j["files_total"]))
                                                      for j in lst)), "1/1", sub, good)
        t.ok(rc == 0 and rows[0].split() == ["JOB", "STATE", "FILES", "SUBMITTED", "PATTERNS"]
             and want in rows and sub.endswith("-05:00") and len(rows) == len(lst) + 1,
             "list on a terminal: a table, the time local ISO 8601, the patterns", (out, want))
        rc, out = on_pty(["status", str(job)], s, env=est)
        t.ok(rc == 0 and ("state      done\nfiles      1 of 1 done, 0 failed\n"
                          "bytes      %s\nsubmitted  %s\nfinished   %s\npatterns   %s\n"
                          % ("{:,}".format(st["bytes_done"]), sub, fin, good)) in out,
             "status on a terminal: one field a line, local times, the patterns", out)
        r = clfctl(["status", "-o", "tsv", str(job)], s)
        t.ok(r.returncode == 0 and r.stdout == "%d\tdone\t1\t1\t%d\n" % (job, st["submitted"]),
             "status -o tsv ID: the list's line for that job", (r.returncode, r.stdout, r.stderr))
        r = clfctl(["status", "-o", "tsv"], s)
        t.ok(r.returncode == 0 and len(r.stdout.splitlines()) == len(lst),
             "status -o tsv without an ID: the list", r.stderr)

        # item 6: --literal names files, glob characters and all
        lit = os.path.join(data, "lit")
        os.makedirs(lit)
        one = COMBINED % (1, 1, 1)
        for name, n in (("access[1].log", 1), ("access1.log", 2), ("a*b{c,d}?.log", 3)):
            write(os.path.join(lit, name), one * n)
        r = clfctl(["submit", "-o", "compact", "--literal", "access[1].log", "a*b{c,d}?.log"],
                   s, cwd=lit)
        res = load(r)
        t.ok(r.returncode == 0 and sorted(os.path.basename(f["path"]) for f in res["files"]) ==
             ["a*b{c,d}?.log", "access[1].log"] and res["totals"]["counted"] == 4,
             "--literal: names with [ ] * { } ? are those files, relative ones too", r.stderr)
        r = clfctl(["submit", "-o", "compact", "--literal", os.path.join(lit, "access[1].log")], s)
        t.ok(r.returncode == 0 and load(r)["totals"]["counted"] == 1,
             "--literal: an absolute name", r.stderr)
        r = clfctl(["submit", "-o", "compact", os.path.join(lit, "access[1].log")], s)
        t.ok(r.returncode == 0 and load(r)["totals"]["counted"] == 2,
             "without it the name is a pattern (it matches access1.log)", r.stderr)
        r = clfctl(["submit", "--no-wait"] + [os.path.join(lit, "f%d.log" % i)
                                             for i in range(1100)], s)
        t.ok(r.returncode == 4 and "patterns_max" in r.stderr and "quote it" in r.stderr,
             "more patterns than patterns_max: a hint that the shell expanded a glob",
             r.stderr)

        # item 7 (part): filters checked by clfctl, usage status 2
        r = clfctl(["submit", "--since", "2024-03-02T00:00:00Z", "--until", "1709251200", good],
                   s)
        t.ok(r.returncode == 2 and "--since is later than --until" in r.stderr,
             "--since later than --until: a usage error, exit 2", (r.returncode, r.stderr))
        r = clfctl(["submit", "--since", "tomorrow", "--until", "today", good], s)
        t.ok(r.returncode == 2 and "--since is later than --until" in r.stderr,
             "--since tomorrow --until today: a usage error, exit 2", (r.returncode, r.stderr))
        # --since/--until take what journalctl takes; a time without a zone is
        # local time (here TZ=EST+5, no DST); clfctl sends UTC to the daemon

        def since(arg):
            r = clfctl(["submit", "-o", "compact", "--since", arg, good], s, env=est)
            return r.returncode, load(r).get("filter", {}).get("since"), r.stderr
        for arg, want in (("2024-03-01", "2024-03-01T05:00:00Z"),
                          ("2024-03-01 10:20", "2024-03-01T15:20:00Z"),
                          ("2024-03-01T10:20:30", "2024-03-01T15:20:30Z"),
                          ("2024-03-01T10:20:30Z", "2024-03-01T10:20:30Z"),
                          ("2024-03-01 10:20:30 UTC", "2024-03-01T10:20:30Z"),
                          ("2024-03-01T10:20:30+02:00", "2024-03-01T08:20:30Z"),
                          ("2024-03-01 10:20:30 -0130", "2024-03-01T11:50:30Z"),
                          ("2024-03-01 10:20:30.250Z", "2024-03-01T10:20:30Z"),
                          ("@1709251200", "2024-03-01T00:00:00Z"),
                          ("1709251200", 1709251200)):
            rc, got, err = since(arg)
            t.ok(rc == 0 and got == want, "--since %r: %r" % (arg, want), (rc, got, err))
        for arg, delta in (("now", 0), ("-1h", -3600), ("-30min", -1800), ("+2d", 2 * 86400),
                           ("-1h30min", -5400), ("1 week ago", -7 * 86400)):
            t0 = int(time.time())
            rc, got, err = since(arg)
            t1 = int(time.time())
            try:
                v = calendar.timegm(time.strptime(got, "%Y-%m-%dT%H:%M:%SZ"))
            except (TypeError, ValueError):
                v = None
            t.ok(rc == 0 and v is not None and t0 + delta <= v <= t1 + delta,
                 "--since %r: now %+d s" % (arg, delta), (rc, got, err))
        day = (int(time.time()) - 5 * 3600) // 86400 * 86400 + 5 * 3600   # EST midnight
        for arg, k in (("today", 0), ("yesterday", -1), ("tomorrow", 1)):
            rc, got, err = since(arg)
            want = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day + k * 86400))
            t.ok(rc == 0 and got == want, "--since %s: local midnight" % arg, (rc, got, want,
                                                                               err))
        # the filter applies in local time: good.log's lines are 13:55:00..49 UTC
        r = clfctl(["submit", "-o", "compact", "--since", "2024-10-10 08:55:40", "--until",
                    "2024-10-10 08:55:45", good], s, env=est)
        t.ok(r.returncode == 0 and load(r).get("totals", {}).get("counted") == 5,
             "--since/--until in local time: the 5 lines of [13:55:40, 13:55:45) UTC",
             (r.returncode, r.stderr, load(r).get("totals")))
        for bad in ("bogus", "2024-02-30", "24:00", "-1x", "@-5", "2024-03-01T"):
            r = clfctl(["submit", "--until", bad, good], s)
            t.ok(r.returncode == 2 and r.stdout == "" and
                 ('--until: not a time: "%s"' % bad) in r.stderr,
                 "--until %r: a usage error in clfctl's words, exit 2" % bad,
                 (r.returncode, r.stderr))
        r = clfctl(["submit", "-o", "compact", "--status", "2xx, 3xx", good], s)
        t.ok(r.returncode == 0 and load(r).get("filter", {}).get("status") == ["2xx", "3xx"] and
             load(r)["totals"]["counted"] == 50, "--status '2xx, 3xx': spaces accepted",
             (r.returncode, r.stderr))
        r = clfctl(["submit", "--top", "-1", good], s)
        t.ok(r.returncode == 2 and "--top: a number of paths, 0 for all, not -1" in r.stderr,
             "--top -1: the range in plain words", r.stderr)

        # item 10: --help, and the closest option to a misspelt one
        for args in (["--help"], ["submit", "--help"], ["list", "--help"]):
            r = clfctl(args)
            t.ok(r.returncode == 0 and r.stdout.startswith("usage: clfctl"),
                 "clfctl %s: the usage, exit 0" % " ".join(args), r.stderr)
        r = clfctl(["submit", "--stauts", "2xx", good], s)
        t.ok(r.returncode == 2 and "did you mean --status?" in r.stderr,
             "submit --stauts: did you mean --status?", r.stderr)
        r = clfctl(["--sokcet", s, "ping"])
        t.ok(r.returncode == 2 and "did you mean --socket?" in r.stderr,
             "--sokcet: did you mean --socket?", r.stderr)
        r = clfctl(["submit", "--zzzzzz", good], s)
        t.ok(r.returncode == 2 and "unknown option: --zzzzzz" in r.stderr and
             "did you mean" not in r.stderr, "nothing close: no suggestion", r.stderr)
        r = clfctl(["ping", "--under", "/x"], s)
        t.ok(r.returncode == 2 and "--under is not an option of ping" in r.stderr,
             "an option of another command is named as such", r.stderr)
    finally:
        if d is not None:
            rc = d.stop()
            d.logf.close()
            t.ok(rc == 0, "clfd stopped cleanly", d.log_text() if rc else None)
        rmtree(tmp)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
