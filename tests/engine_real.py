#!/usr/bin/env python3
"""Each real log (tests/data/real, see SOURCES.md) with its exact figures,
in the default format and the combined preset, cross-checked against the
reference analysis, tests/refcount.py (default <-> --any, combined <->
plain seed).

Figures: (lines, matched, malformed, filtered, counted). Why they are so:
- beats-apache-darwin.log: six Common lines. Default: "GET /" twice has
  the path "/" whose segments are all empty, the favicon is an excluded
  name, and the request "-" has no target (path ""): 4 filtered; /notfound
  and /hmm counted. Combined: no line has referer and agent: 6 malformed.
- beats-apache-test.log: the vhost-prefixed line has "-" where "[" must
  be (malformed in both). Default: favicon and the two "-" requests are
  filtered; /hello, /stringpatch (extra trailing field ignored) and
  /status (a host name, not an address) counted. Combined: the two Common
  lines are malformed too, leaving the Combined "-" request filtered.
- beats-nginx-access.log: the vhost-prefixed line is malformed; "/" four
  times and the favicon twice are filtered; /adsasd, /test x2, /test1 x2,
  /taga counted.
- beats-nginx-test.log: X-Forwarded-For lists ("10.0.0.2, 10.0.0.1, ...")
  put a comma-separated list where the host is (3 lines), one line starts
  with a quoted list, and the request "" is empty (the regex needs at least
  one character): 5 malformed; /stringpatch and /ocelot counted.
- elastic-apache_logs.log: 10000 lines. Line 8899 lacks the user agent's
  closing quote: the default format still matches it (referer and agent
  are optional) and counts its path, Combined does not (1 malformed).
  5603 lines are dropped by the default path filter (favicon, .css, .js,
  .png, "/", robots.txt, ...).
- lnav-access_log.0: three Combined lines, all counted (.gz is not an
  excluded extension). lnav-access_log.1: the request "-" gives the empty
  path: filtered.
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_util import Tap, engine, seed, REAL

FIGURES = {
    # file: {format: (lines, matched, malformed, filtered, counted)}
    'beats-apache-darwin.log': {'default': (6, 6, 0, 4, 2),
                                'combined': (6, 0, 6, 0, 0)},
    'beats-apache-test.log': {'default': (7, 6, 1, 3, 3),
                              'combined': (7, 4, 3, 1, 3)},
    'beats-nginx-access.log': {'default': (13, 12, 1, 6, 6),
                               'combined': (13, 12, 1, 6, 6)},
    'beats-nginx-test.log': {'default': (7, 2, 5, 0, 2),
                             'combined': (7, 2, 5, 0, 2)},
    'elastic-apache_logs.log': {'default': (10000, 10000, 0, 5603, 4397),
                                'combined': (10000, 9999, 1, 5603, 4396)},
    'lnav-access_log.0': {'default': (3, 3, 0, 0, 3),
                          'combined': (3, 3, 0, 0, 3)},
    'lnav-access_log.1': {'default': (1, 1, 0, 1, 0),
                          'combined': (1, 1, 0, 1, 0)},
}
# A few exact counts, read off the files by hand.
SPOT = {
    'beats-nginx-access.log': {'/test': 2, '/test1': 2, '/adsasd': 1,
                               '/taga': 1},
    'beats-apache-darwin.log': {'/notfound': 1, '/hmm': 1},
    'lnav-access_log.0': {'/vmw/cgi/tramp': 1,
                          '/vmw/vSphere/default/vmkboot.gz': 1,
                          '/vmw/vSphere/default/vmkernel.gz': 1},
}

t = Tap()
for name, byfmt in sorted(FIGURES.items()):
    path = os.path.join(REAL, name)
    for fmt, want in sorted(byfmt.items()):
        doc, err = engine([path], '--format', fmt)
        if not t.ok(doc is not None, '%s %s: engine-run ran' % (name, fmt),
                    err):
            continue
        st = doc['files'][0]
        got = (st['lines'], st['matched'], st['malformed'], st['filtered'],
               st['counted'])
        t.ok(got == want, '%s %s: lines, matched, malformed, filtered, '
             'counted = %s' % (name, fmt, want), 'got %s' % (got,))
        t.ok(st['error'] is None and not st['partial'] and
             st['bytes'] == os.path.getsize(path) == st['raw_bytes'],
             '%s %s: whole file read, no error' % (name, fmt), st)
        ref = seed([path], *(['--any'] if fmt == 'default' else []))
        t.ok(doc['counts'] == ref and sum(ref.values()) == want[4],
             '%s %s: counts equal the seed' % (name, fmt))
    if name in SPOT:
        doc, err = engine([path])
        t.ok(doc is not None and doc['counts'] == SPOT[name],
             '%s: exact counts' % name, doc and doc['counts'])
t.done()
