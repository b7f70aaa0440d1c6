#!/usr/bin/env python3
"""clfctl end to end against a real clfd: every command, json/compact/tsv
output, relative and ~ patterns (glob characters in the working directory),
filters, exit codes (usage 2, unreachable 3, rejected 4, file errors 1)."""
import json
import os
import shutil
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clfctl_util import (Tap, start_daemon, clfctl, clean_env, gen_logs, seed_ref,
                         counts_ordered, procs_with_arg, mkdtemp, rmtree, SRCDIR)

RESULT_KEYS = {"job", "state", "patterns", "unmatched", "files", "totals", "counts"}


def main():
    t = Tap()
    tmp = mkdtemp()
    d = None
    try:
        data = os.path.join(tmp, "data")
        gz = gen_logs(os.path.join(data, "gz"), 3, 1000, seed=3)
        plain = gen_logs(os.path.join(data, "plain"), 1, 400, seed=4, plain=True, junk=0.02)
        os.makedirs(os.path.join(data, "real"))
        real = []
        for name in ("real-apache.log.gz", "real-nginx-access.log"):
            real.append(shutil.copy(os.path.join(SRCDIR, "samples", name),
                                    os.path.join(data, "real", name)))
        files = gz + plain + real
        want = seed_ref(files, any_=True)
        d = start_daemon(tmp)
        s = d.sock

        # ping, -V, -h
        r = clfctl(["ping"], s)
        ping = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(r.returncode == 0 and ping.get("ok") is True and ping.get("protocol") == 1,
             "ping: ok, protocol 1", r.stdout + r.stderr)
        t.eq(ping.get("pid"), d.proc.pid, "ping: the daemon's pid")
        r = clfctl(["-V"])
        t.ok(r.returncode == 0 and r.stdout.startswith("clfctl ") and
             r.stdout.split()[1] == ping.get("version"), "-V: clfctl and clfd versions agree",
             r.stdout)
        r = clfctl(["-h"])
        t.ok(r.returncode == 0 and "submit" in r.stdout and "exit:" in r.stdout, "-h: usage")
        r = clfctl(["--help"])
        t.ok(r.returncode == 0 and "submit" in r.stdout, "--help: usage")
        r = clfctl(["--bogus", "ping"])
        t.ok(r.returncode == 2 and "unknown option: --bogus" in r.stderr,
             "an unknown option is named, exit 2", r.stderr)
        r = clfctl(["ping", "-o", "tsv"], s)
        t.ok(r.returncode == 2 and "-o tsv is for" in r.stderr and r.stdout == "",
             "ping -o tsv: a usage error, not JSON in disguise", r.stderr)
        r = clfctl(["-s"])
        t.ok(r.returncode == 2 and "-s needs an argument" in r.stderr,
             "-s without its argument, exit 2", r.stderr)

        # submit: absolute patterns, JSON result equal to the seed's counts
        pats = [os.path.join(data, "gz", "*.gz"), os.path.join(data, "plain", "*"),
                os.path.join(data, "real", "real-{apache.log.gz,nginx-access.log}")]
        r = clfctl(["submit"] + pats, s)
        res = json.loads(r.stdout) if r.stdout.strip() else {}
        t.ok(r.returncode == 0, "submit: exit 0", r.stderr)
        t.ok(RESULT_KEYS <= set(res), "submit: result has job, state, patterns, unmatched, "
             "files, totals, counts", sorted(res))
        t.eq(res.get("state"), "done", "submit: state done")
        t.eq(res.get("patterns"), pats, "submit: patterns echoed")
        t.eq(sorted(f["path"] for f in res.get("files", [])), sorted(files),
             "submit: one entry per file (braces expanded)")
        t.eq(res.get("counts"), want, "submit: counts equal seed_ref --any")
        t.ok(counts_ordered(res.get("counts", {})), "submit: counts by count descending, then path")
        t.ok(r.stdout.count("\n") > 10 and r.stdout.startswith("{\n  "),
             "submit: json output is indented")
        full = res.get("counts", {})
        job1 = res.get("job")

        # -o compact and -o tsv
        r = clfctl(["submit", "-o", "compact"] + pats, s)
        t.ok(r.returncode == 0 and r.stdout.count("\n") == 1 and
             json.loads(r.stdout)["counts"] == want, "submit -o compact: one line, same counts")
        r = clfctl(["submit", "-o", "tsv"] + pats, s)
        lines = r.stdout.splitlines()
        tsv = [(int(l.split("\t", 1)[0]), l.split("\t", 1)[1]) for l in lines]
        t.eq(tsv, [(v, k) for k, v in full.items()], "submit -o tsv: count<TAB>path in order")

        # a NUL byte and invalid UTF-8 in a logged path: the result still
        # loads (the key is percent-encoded), in JSON and in TSV
        odd = os.path.join(tmp, "odd.log")
        with open(odd, "wb") as f:
            f.write(b'1.2.3.4 - - [01/Mar/2024:00:00:00 +0000] '
                    b'"GET /a\0b\xff HTTP/1.1" 200 1 "-" "ua"\n')
        r = clfctl(["submit", "-o", "compact", odd], s)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.eq(res.get("counts"), {"/a%00b%FF": 1}, "NUL and invalid UTF-8 in a path: "
             "percent-encoded, the result loads")
        r = clfctl(["submit", "-o", "tsv", odd], s)
        t.eq(r.stdout, "1\t/a%00b%FF\n", "NUL in a path: TSV")

        # relative patterns, and glob characters in the working directory
        r = clfctl(["submit", "-o", "compact", "gz/*.gz", "./plain/*"], s, cwd=data)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.eq(res.get("patterns"), [os.path.join(data, "gz/*.gz"), os.path.join(data, "plain/*")],
             "relative patterns made absolute against the cwd")
        t.eq(res.get("counts"), seed_ref(gz + plain, any_=True), "relative patterns: counts")
        weird = os.path.join(tmp, "we[ir]d*{x}")
        decoy = os.path.join(tmp, "weidx")	# what the unescaped cwd would match
        os.makedirs(weird)
        os.makedirs(decoy)
        shutil.copy(gz[0], os.path.join(weird, "a.log.gz"))
        shutil.copy(gz[1], os.path.join(decoy, "b.log.gz"))
        r = clfctl(["submit", "-o", "compact", "*.gz"], s, cwd=weird)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok([f["path"] for f in res.get("files", [])] == [os.path.join(weird, "a.log.gz")],
             "glob characters of the cwd are escaped", r.stdout[:500] + r.stderr)
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        os.symlink(os.path.join(data, "gz"), os.path.join(home, "logs"))
        r = clfctl(["submit", "-o", "compact", "~/logs/*.gz"], s, env=clean_env(HOME=home))
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(res.get("patterns") == [os.path.join(home, "logs/*.gz")], "~/ is $HOME",
             r.stdout[:500] + r.stderr)
        t.eq(len(res.get("files", [])), 3, "~/ pattern matches")

        # filters
        r = clfctl(["submit", "-o", "compact", "--under", "/book"] + pats, s)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.eq(res.get("counts"), seed_ref(files, book=True, any_=True), "--under /book equals seed_ref --book")
        r = clfctl(["submit", "-o", "compact", "--top", "5"] + pats, s)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        t.eq(list(res.get("counts", {}).items()), list(full.items())[:5], "--top 5: the first 5")
        r = clfctl(["submit", "-o", "compact", "--status", "404", "--method", "GET,HEAD"] + pats, s)
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        f = res.get("filter", {})
        t.ok(r.returncode == 0 and f.get("status") == [404] and f.get("methods") == ["GET", "HEAD"],
             "--status/--method (comma list) reach the daemon", r.stdout[:500] + r.stderr)
        c = res.get("counts", {})
        t.ok(0 < sum(c.values()) < sum(full.values()) and
             all(v <= full.get(k, 0) for k, v in c.items()), "--status 404 counts fewer")
        r = clfctl(["submit", "-o", "compact", "--exclude-name", "robots.txt"] + pats, s)
        c = json.loads(r.stdout).get("counts", {}) if r.returncode == 0 else {}
        t.ok("/favicon.ico" in c and "/robots.txt" not in c and "/favicon.ico" not in full,
             "--exclude-name replaces the default name list")
        r = clfctl(["submit", "-o", "compact", "--no-default-excludes"] + pats, s)
        c = json.loads(r.stdout).get("counts", {}) if r.returncode == 0 else {}
        t.ok("/favicon.ico" in c and any(k.endswith(".png") for k in c),
             "--no-default-excludes counts every path")
        r = clfctl(["submit", "-o", "compact", "--until", "1"] + pats, s)
        c = json.loads(r.stdout).get("counts") if r.returncode == 0 else None
        t.eq(c, {}, "--until 1 (1970): nothing counted")
        r = clfctl(["submit", "-o", "compact", "--since", "1970-01-01T00:00:01Z"] + pats, s)
        c = json.loads(r.stdout).get("counts") if r.returncode == 0 else None
        t.eq(c, full, "--since 1970-01-01T00:00:01Z: everything counted")

        # the other commands
        r = clfctl(["status", str(job1)], s)
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(st.get("job") == job1 and st.get("state") == "done" and
             st.get("files_done") == len(files), "status ID", r.stdout + r.stderr)
        r = clfctl(["result", str(job1)], s)
        t.ok(r.returncode == 0 and json.loads(r.stdout).get("counts") == want, "result ID")
        r = clfctl(["result", "-o", "tsv", str(job1)], s)
        t.eq(r.stdout.splitlines(), lines, "result -o tsv")
        r = clfctl(["list"], s)
        jobs = json.loads(r.stdout).get("jobs", []) if r.returncode == 0 else []
        t.ok(job1 in [j.get("job") for j in jobs], "list has the job")
        r2 = clfctl(["status"], s)
        t.ok(r2.returncode == 0 and json.loads(r2.stdout).get("jobs") is not None,
             "status without ID lists")
        r = clfctl(["list", "-o", "tsv"], s)
        row = [l.split("\t") for l in r.stdout.splitlines() if l.startswith("%d\t" % job1)]
        t.ok(len(row) == 1 and row[0][1] == "done" and row[0][2] == row[0][3] == str(len(files)),
             "list -o tsv: job state done total", r.stdout)
        r = clfctl(["cancel", str(job1)], s)
        t.ok(r.returncode == 4 and r.stdout == "" and
             "finished: job %d is already done" % job1 in r.stderr,
             "cancel of a finished job: the error finished, exit 4", r.stdout + r.stderr)
        r = clfctl(["status", str(job1)], s)
        t.eq(json.loads(r.stdout).get("state") if r.returncode == 0 else None, "done",
             "and its state is unchanged")
        r = clfctl(["stats"], s)
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(st.get("workers", {}).get("configured") == 2 and
             st.get("jobs", {}).get("submitted", 0) >= 10, "stats", r.stdout)

        # exit 2: usage
        for args in ([], ["frob"], ["-x", "ping"], ["submit"], ["submit", "--top", "-1", "x"],
                     ["submit", "--bogus", "/x"], ["submit", "-o", "xml", "/x"], ["wait"],
                     ["wait", "abc"], ["result", "1", "2"], ["cancel", "0"], ["ping", "extra"],
                     ["list", "--under", "/x"], ["-s"], ["-s", "", "ping"]):
            r = clfctl(args, s if args[:1] != ["-s"] else None)
            t.ok(r.returncode == 2 and r.stdout == "" and r.stderr.startswith("clfctl: "),
                 "usage error exits 2: clfctl %s" % " ".join(args), r.stderr)

        # exit 3: unreachable, and never an autostart for -s or $CLFD_SOCKET
        gone = os.path.join(tmp, "nobody.sock")
        r = clfctl(["ping"], gone)
        t.ok(r.returncode == 3 and "cannot connect" in r.stderr, "-s nobody: exit 3", r.stderr)
        r = clfctl(["submit", "/x"], env=clean_env(CLFD_SOCKET=gone))
        t.ok(r.returncode == 3 and "cannot connect" in r.stderr, "CLFD_SOCKET nobody: exit 3")
        t.ok(not os.path.exists(gone) and procs_with_arg(gone) == [],
             "no daemon started for a named socket")
        stale = os.path.join(tmp, "stale.sock")
        ls = socket.socket(socket.AF_UNIX)
        ls.bind(stale)
        ls.close()
        r = clfctl(["ping"], stale)
        t.ok(r.returncode == 3 and procs_with_arg(stale) == [], "stale named socket: exit 3")

        # exit 4: rejected
        r = clfctl(["submit", "--format", "regex:(", "/x"], s)
        t.ok(r.returncode == 4 and r.stderr.startswith("clfctl: bad_field: "),
             "bad format: exit 4, clfctl: bad_field: ...", r.stderr)
        r = clfctl(["result", "987654"], s)
        t.ok(r.returncode == 4 and r.stderr.startswith("clfctl: not_found: "),
             "result of no such job: exit 4 not_found", r.stderr)
        r = clfctl(["wait", "987654"], s)
        t.ok(r.returncode == 4 and "not_found" in r.stderr, "wait no such job: exit 4")
        r = clfctl(["submit", "--since", "last tuesday", "/x"], s)
        t.ok(r.returncode == 2 and '--since: not a time: "last tuesday"' in r.stderr,
             "bad --since: clfctl's usage error, exit 2", r.stderr)

        # exit 1: file errors (a directory and a corrupt gzip), the rest counted
        bad = os.path.join(tmp, "bad")
        os.makedirs(os.path.join(bad, "adir"))
        shutil.copy(gz[0], os.path.join(bad, "good.log.gz"))
        with open(gz[1], "rb") as f:
            blob = f.read()
        with open(os.path.join(bad, "corrupt.log.gz"), "wb") as f:
            f.write(blob[:len(blob) // 2] + b"\xff" * 64 + blob[len(blob) // 2:])
        r = clfctl(["submit", "-o", "compact", os.path.join(bad, "*"),
                    os.path.join(bad, "none-*.log")], s)
        res = json.loads(r.stdout) if r.stdout.strip() else {}
        byname = {os.path.basename(f["path"]): f for f in res.get("files", [])}
        t.eq(r.returncode, 1, "file errors: exit 1")
        t.ok(byname.get("adir", {}).get("error") and byname.get("corrupt.log.gz", {}).get("partial")
             and byname.get("good.log.gz", {}).get("error") is None,
             "file errors: a directory fails, a corrupt gzip is partial", json.dumps(byname)[:800])
        t.ok("adir" in r.stderr and "corrupt.log.gz" in r.stderr, "file errors named on stderr")
        t.ok(res.get("unmatched") == [os.path.join(bad, "none-*.log")] and
             "no file matches" in r.stderr, "unmatched pattern reported, warned")
        r = clfctl(["submit", "-o", "compact", os.path.join(bad, "good.log.gz"),
                    os.path.join(bad, "none-*.log")], s)
        t.eq(r.returncode, 0, "an unmatched pattern alone is not an error")
    finally:
        if d is not None:
            rc = d.stop()
            d.logf.close()
            t.ok(rc == 0, "clfd stopped cleanly", d.log_text() if rc else None)
        rmtree(tmp)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
