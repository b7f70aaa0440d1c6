#!/usr/bin/env python3
"""Equivalence: engine-run's counts equal those of the reference analysis
(tests/refcount.py, the seed's semantics) exactly, on generated logs
(tests/genlogs.py: several seeds, gzip and plain, with and without junk
lines), hand-made tricky lines and their mutations, and the real logs;
default format <-> seed --any, combined <-> plain seed, under=/book <->
--book."""
import glob, os, subprocess, sys, tempfile, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_util import Tap, engine, seed, diff, GEN_LOGS, REAL

t = Tap()
tmp = tempfile.mkdtemp(prefix='clfd-equiv-')
try:
    sets = [(1, False, None), (2, True, None), (3, False, '0.01'),
            (4, True, '0.01'), (5, False, '0.05')]
    for s, plain, junk in sets:
        d = os.path.join(tmp, 'set%d' % s)
        args = [sys.executable, GEN_LOGS, d, '3', '3000', '--seed', str(s)]
        if plain:
            args.append('--plain')
        if junk:
            args += ['--junk', junk]
        subprocess.run(args, check=True)
        files = sorted(glob.glob(os.path.join(d, 'access-*')))
        what = 'seed %d %s%s' % (s, 'plain' if plain else 'gzip',
                                 ' junk ' + junk if junk else '')
        for fmt, flags in (('default', ['--any']), ('combined', [])):
            for under in (None, '/book'):
                eargs = ['--format', fmt] + (['--under', under] if under else [])
                sflags = flags + (['--book'] if under else [])
                doc, err = engine(files, *eargs)
                ref = seed(files, *sflags)
                got = doc['counts'] if doc else None
                t.ok(got == ref and sum(ref.values()) > 0,
                     '%s: %s%s equals seed %s' % (what, fmt,
                     ' under ' + under if under else '', ' '.join(sflags)),
                     diff(got or {}, ref) or err)
                if doc:
                    tot = doc['totals']
                    t.ok(tot['counted'] == sum(ref.values()) and
                         tot['lines'] == 9000 and
                         tot['lines'] == tot['malformed'] + tot['matched'] and
                         tot['matched'] == tot['filtered'] + tot['counted'],
                         '%s: %s figures add up' % (what, fmt), tot)
    # Hand-made tricky lines, then random mutations of them (fixed seed):
    # every byte class the regexes, the request split, urlsplit and
    # strptime treat specially.
    tricky = [
        '1.2.3.4 - - [01/Mar/2024:00:00:01 -0400] "GET /a HTTP/1.1" 200 1 "-" "ua"',
        '::1 - - [29/Feb/2024:23:59:59 +0000] "GET http://h/p?q HTTP/1.1" 200 1',
        'h l u [31/Feb/2023:00:00:00 +0000] "GET /bad-date HTTP/1.1" 200 1 "-" "ua"',
        'h l u [1/mar/2024:1:2:3 Z] "GET //x/y#f HTTP/1.1" 200 1 "-" "ua"',
        'h l u [ 1/Mar/2024:00:00:00 +01:00] "GET  /sp  aces  HTTP/1.0" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /r HTTP/1.1" 200 1 "http://[::1/" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /r6 HTTP/1.1" 200 1 "http://[::1]/" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET http://[1.2.3.4]/v4 HTTP/1.1" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /q\\"uote HTTP/1.1" 200 1 "-" "u\\"a"',
        'h\x1cl\x1du\x1f[01/Mar/2024:00:00:00 +0100]\x1e"GET /sep HTTP/1.1" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /\xff\xfe\xc3\xa9 HTTP/1.1" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "\x01//ctl/p HTTP/1.1" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET mailto:a@b HTTP/1.1" 200 1 "" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /a\rb HTTP/1.1" 200 1 "-" "ua"\r',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /x] [y HTTP/1.1" 200 1 "-" "ua" extra',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /book/ch1 HTTP/1.1" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET /book HTTP/1.1" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +2400] "GET /tz HTTP/1.1" 200 1 "-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +0100] "GET  /two  spaces  HTTP/1.0" 200 1 "[-" "ua"',
        'h l u [01/Mar/2024:00:00:00 +01:00:30.5] "GET /tz2 HTTP/1.1" 200 1 "-" "ua"',
    ]
    import random
    rng = random.Random(42)
    noise = ' \t\x0b\x0c\x1c"[]/?#:%\\\x00\x01\x80\xff0aZ+-.'
    lines = list(tricky)
    for _ in range(4000):
        line = list(rng.choice(tricky))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(line) + 1)
            op = rng.random()
            if op < 0.4:
                line.insert(i, rng.choice(noise))
            elif op < 0.7 and i < len(line):
                del line[i]
            elif i < len(line):
                line[i] = rng.choice(noise)
        lines.append(''.join(line))
    path = os.path.join(tmp, 'tricky.log')
    with open(path, 'wb') as fh:
        fh.write('\n'.join(lines).encode('latin-1'))
    for fmt, flags in (('default', ['--any']), ('combined', [])):
        for under in (None, '/book'):
            eargs = ['--format', fmt] + (['--under', under] if under else [])
            sflags = flags + (['--book'] if under else [])
            doc, err = engine([path], *eargs)
            ref = seed([path], *sflags)
            got = doc['counts'] if doc else None
            t.ok(got == ref and sum(ref.values()) > 0,
                 'tricky and mutated lines: %s%s equals seed %s' % (fmt,
                 ' under ' + under if under else '', ' '.join(sflags)),
                 diff(got or {}, ref) or err)

    # The real logs, each alone and all together.
    real = sorted(f for f in glob.glob(os.path.join(REAL, '*'))
                  if not f.endswith('.md'))
    for f in real + [None]:
        files = [f] if f else real
        name = os.path.basename(f) if f else 'all real logs'
        for fmt, flags in (('default', ['--any']), ('combined', [])):
            doc, err = engine(files, '--format', fmt)
            ref = seed(files, *flags)
            got = doc['counts'] if doc else None
            t.ok(got == ref, '%s: %s equals seed %s' % (name, fmt,
                 ' '.join(flags)), diff(got or {}, ref) or err)
    doc, err = engine(real, '--under', '/book')
    t.ok(doc is not None and doc['counts'] == seed(real, '--any', '--book'),
         'all real logs under /book equal seed --any --book')
finally:
    shutil.rmtree(tmp)
t.done()
