#!/usr/bin/env python3
"""clfctl's answers that must not be silently empty or surprising: every
pattern unmatched is an error (exit 5), a file mostly malformed is warned
about with an example line (exit 6), the homepage rule, refused filters.
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clfctl_util import Tap, start_daemon, clfctl, mkdtemp, rmtree  # noqa: E402

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
    finally:
        if d is not None:
            rc = d.stop()
            d.logf.close()
            t.ok(rc == 0, "clfd stopped cleanly", d.log_text() if rc else None)
        rmtree(tmp)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
