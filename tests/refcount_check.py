#!/usr/bin/env python3
"""refcount_check: the project's reference analysis (tests/refcount.py)
against the team's seed_ref.py, the spec it was written to, when the
shared/ directory is beside the checkout (or at CLFD_SHARED); skipped with
the reason otherwise. Both must print the same counts, with and without
--book and --any, on:
- shared's generator (bench/gen_logs.py): gzip, plain, with junk lines;
- the project's generator (tests/genlogs.py): gzip, plain, with junk;
- the real logs (tests/data/real), each alone and all together;
- hand-made odd lines and thousands of random mutations of them.
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402
clfdtest.need_shared()

FLAGS = ([], ["--any"], ["--book"], ["--any", "--book"])

ODD = [
    '1.2.3.4 - - [01/Mar/2024:00:00:01 -0400] "GET /book/a.html HTTP/1.1" 200 1 "-" "ua"',
    '2001:db8::1 - - [29/Feb/2024:23:59:59 +0000] "GET http://h/book/p?q HTTP/1.1" 200 1',
    'h l u [31/Feb/2023:00:00:00 +0000] "GET /no-such-day HTTP/1.1" 200 1 "-" "ua"',
    'h l u [29/Feb/1900:00:00:00 +0000] "GET /not-leap HTTP/1.1" 200 1 "-" "ua"',
    'h l u [ 1/mar/2024:1:2:3 Z] "GET //x/y#f HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:60 +0000] "GET /leap-second HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/0000:00:00:00 +0000] "GET /year-0 HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +01:00:30.5] "GET /zone-seconds HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +01:0030] "GET /zone-colons HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 -2359] "GET /far-west HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +2400] "GET /a-day-off HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /r HTTP/1.1" 200 1 "http://[::1/" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /r6 HTTP/1.1" 200 1 "http://[::1]:80/" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET http://[1.2.3.4]/v4 HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET http://[v7.x]/fut HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET http://[fe80::1%eth0]/s HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET http://[::ffff:10.0.0.1]/m HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /q\\"uote HTTP/1.1" 200 1 "-" "u\\"a"',
    'h\x1cl\x1du\x1f[01/Mar/2024:00:00:00 +0100]\x1e"GET /sep HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /\xff\xfe\xc3\xa9 HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET \x01\x02/ctl/p HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET mailto:a@b HTTP/1.1" 200 1 "" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET a+b.c-d:/x HTTP/1.1" 200 1 "" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /x] [y HTTP/1.1" 200 1 "-" "ua" extra',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /book HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /book//x;p=1 HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /a.png/ HTTP/1.1" 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET  /two  spaces  HTTP/1.0" 200 1 "[-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "   " 200 1 "-" "ua"',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /x HTTP/1.1" 200 1 "-" ""',
    'h l u [01/Mar/2024:00:00:00 +0100] "GET /y HTTP/1.1" 200 1 "-" "ua\t',
]


def mutated(rng, n):
    """The odd lines and n random mutations of them."""
    noise = ' \t\x0b\x0c\x1c"[]/?#:%\\\x00\x01\x80\xff0aZv+-.'
    lines = list(ODD)
    for _ in range(n):
        line = list(rng.choice(ODD))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(line) + 1)
            op = rng.random()
            if op < 0.4:
                line.insert(i, rng.choice(noise))
            elif op < 0.7 and i < len(line):
                del line[i]
            elif i < len(line):
                line[i] = rng.choice(noise)
        lines.append("".join(line))
    return lines


def interpreter_rules():
    """Whether this Python's urlsplit takes a bracketed address next to
    other text in an authority ("//a[::1]/p"), as 3.11.7 and refcount.py
    do. Later security releases refuse it (and check other forms), so
    seed_ref.py's answer on such lines depends on the interpreter."""
    import urllib.parse
    try:
        urllib.parse.urlsplit("//a[::1]/p")
        return True
    except ValueError:
        return False


def run(script, files, flags):
    out = subprocess.run([sys.executable, script] + flags + files,
                         stdout=subprocess.PIPE, check=True, timeout=600).stdout
    return json.loads(out)


def compare(t, files, what, nonempty=True):
    """Both references on files under each set of flags; nonempty: the
    counts without --book must hold something."""
    for flags in FLAGS:
        mine = run(clfdtest.SEED_REF, files, flags)
        spec = run(clfdtest.SHARED_SEED_REF, files, flags)
        diff = ["%r: %r != %r" % (k, mine.get(k), spec.get(k))
                for k in sorted(set(mine) | set(spec)) if mine.get(k) != spec.get(k)]
        t.ok(mine == spec and (sum(spec.values()) > 0 or "--book" in flags
                               or not nonempty),
             "%s%s: refcount.py equals seed_ref.py (%d paths, %d requests)"
             % (what, "".join(" " + f for f in flags), len(spec), sum(spec.values())),
             "\n".join(diff[:10]) or "no request counted")


def main():
    t = clfdtest.Tap()
    tmp = tempfile.mkdtemp(prefix="clfd-refcheck-")
    try:
        for n, (seed, plain, junk) in enumerate(((7, False, None), (8, True, "0.03"),
                                                  (9, False, "0.1"))):
            d = os.path.join(tmp, "shared%d" % n)
            argv = [sys.executable, clfdtest.SHARED_GEN_LOGS, d, "2", "3000",
                    "--seed", str(seed)] + (["--plain"] if plain else []) + \
                   (["--junk", junk] if junk else [])
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            files = sorted(os.path.join(d, f) for f in os.listdir(d))
            compare(t, files, "gen_logs.py --seed %d%s%s" % (
                seed, " --plain" if plain else "", " --junk " + junk if junk else ""))
        for seed, plain, junk in ((7, False, None), (8, True, 0.03), (9, False, 0.1)):
            d = os.path.join(tmp, "own%d" % seed)
            files = clfdtest.gen_logs(d, 2, 3000, seed=seed, plain=plain, junk=junk)
            compare(t, files, "genlogs.py --seed %d%s%s" % (
                seed, " --plain" if plain else "", " --junk %s" % junk if junk else ""))
        real = clfdtest.real_logs()
        t.ok(len(real) >= 5, "the real logs are there (%d files)" % len(real))
        for f in real:
            compare(t, [f], os.path.basename(f), nonempty=False)
        compare(t, real, "all real logs")
        lines = mutated(random.Random(11), 12000)
        if not interpreter_rules():
            authority = re.compile(r'//[^/?#"]*[\[\]]')
            kept = [x for x in lines if not authority.search(x)]
            t.diag("this Python (%s) checks bracketed hosts as later releases do: "
                   "%d of %d lines with brackets in an authority left out"
                   % (sys.version.split()[0], len(lines) - len(kept), len(lines)))
            lines = kept
        path = os.path.join(tmp, "odd.log")
        with open(path, "wb") as f:
            f.write("\n".join(lines).encode("latin-1"))
        compare(t, [path], "odd lines and their mutations")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
