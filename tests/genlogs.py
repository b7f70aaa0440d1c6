#!/usr/bin/env python3
"""genlogs: deterministic Combined Log Format access logs for clfd's tests.

usage: genlogs.py OUTDIR NFILES NLINES [--seed S] [--plain] [--junk F]

Writes OUTDIR/access-000.log.gz, access-001.log.gz, ... (with --plain:
access-000.log, ...), NLINES lines each. The same arguments always give
the same bytes. A fraction F (0 to 1, default 0) of the lines are
malformed: empty, garbage, binary, cut short, or with a time that is not
a real date.

Every other line is a Combined line, as Apache and nginx write them,
with the variety the analysis has to get right: paths over a site of a
few thousand pages drawn with a Zipf-like law (/book/... pages and
others), excluded names and extensions (favicon.ico, _images, .png, .js,
.css, ...) next to near misses (.PNG, .json, a name as a prefix), query
strings and fragments, targets in absolute form (http://host/p, with a
bracketed IPv6 host too), targets starting with "//", ";params", "%XX"
escapes, raw UTF-8 and Latin-1 bytes, Apache's backslash escapes (\\",
\\\\, \\xhh) in the request and the user agent, requests with no target
("-", a TLS hello), CONNECT and OPTIONS *, several methods, protocols and
statuses, IPv4, IPv6 and named hosts, users, time zones east and west of
UTC (29 February included), and now and then an extra field at the end or
a referer whose bracketed host is not an address.
"""
import datetime
import gzip
import os
import random
import sys

SECTIONS = ("intro", "functions", "iterators", "generators", "decorators",
            "recursion", "itertools", "functools", "multiprocessing")


def site(rng):
    """The site's paths, most popular first after a shuffle."""
    pages = []
    for ch in range(30):
        for sec in range(12):
            pages.append("/book/ch%02d/%s-%d.html" % (ch, rng.choice(SECTIONS), sec))
        pages.append("/book/ch%02d/" % ch)
        pages.append("/book/ch%02d/figures/fig-%d.svg" % (ch, ch))
    pages += ["/book/index.html", "/book/", "/book", "/book/_images/cover.jpg",
              "/book/errata;v=2", "/book/caf%C3%A9.html", "/bookshelf/list",
              "/Book/ch01/intro-0.html", "/book//ch01//", "/book/search.html",
              "/book/ch01/Search.html"]
    for y in range(2012, 2025):
        for n in range(25):
            pages.append("/blog/%d/%02d/post-%d" % (y, n % 12 + 1, y * 100 + n))
    for n in range(250):
        pages.append("/static/css/theme-%d.css" % n)
        pages.append("/static/js/bundle-%d.js" % n)
        pages.append("/img/photo-%d.png" % n)
        pages.append("/api/v2/orders/%d" % n)
    pages += ["/", "//", "/favicon.ico", "/robots.txt", "/humans.txt",
              "/crossdomain.xml", "/search.html", "/genindex.html",
              "/searchindex.js", "/modindex.html", "/py-modindex.html",
              "/_images/logo.svg", "/docs/_images", "/img/LOGO.PNG",
              "/static/data.json", "/static/app.js.map", "/img/a.png/",
              "/favicon.ico.bak", "/robots.txt/", "/xfavicon.ico",
              "/wp-login.php", "/.env", "/cgi-bin/test.cgi",
              "/search.html.orig", "/~alice/notes.txt", "/a%2Fb/c%20d",
              "/caf\u00e9/menu", "/stra\u00dfe", "/Gr\u00fc\u00dfe.html"]
    rng.shuffle(pages)
    return pages


HOSTS = ("example.org", "www.example.org", "cdn.example.net:8080",
         "[2001:db8::17]", "[::1]:8443")
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Wget/1.21.4", "python-requests/2.31.0", "-",
    "Mozilla/5.0 (compatible; \\\"SiteCheck\\\" 1.0)",
    "curl/8.7.1 \\\\ probe",
)
REFERERS = ("-",) * 40 + ("", "https://www.example.org/book/",
            "https://search.example.com/?q=python+book",
            "http://[2001:db8::1]/links", "android-app://org.example.reader/",
            "https://example.org/a b", "http://[::1/broken")
METHODS = ("GET",) * 85 + ("POST",) * 6 + ("HEAD",) * 4 + \
          ("PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND")
PROTOCOLS = ("HTTP/1.1",) * 8 + ("HTTP/1.0", "HTTP/2.0")
STATUSES = (200,) * 75 + (304,) * 9 + (404,) * 7 + (301, 302, 302) + \
           (500, 503, 206, 403, 400)
USERS = ("-",) * 40 + ("alice", "bob", "r%C3%A9mi")
ZONES = (datetime.timedelta(hours=-4), datetime.timedelta(0),
         datetime.timedelta(hours=5, minutes=30), datetime.timedelta(hours=-9, minutes=-30),
         datetime.timedelta(hours=13, minutes=45))
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
          "Nov", "Dec")


def stamp(t, zone):
    """Apache's %t, without brackets, for UTC time t shown in zone."""
    lt = t + zone
    minutes = int(zone.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return "%02d/%s/%04d:%02d:%02d:%02d %s%02d%02d" % (
        lt.day, MONTHS[lt.month - 1], lt.year, lt.hour, lt.minute, lt.second,
        sign, minutes // 60, minutes % 60)


def client(rng):
    r = rng.random()
    if r < 0.05:
        return "2001:db8:%x::%x" % (rng.randrange(1, 0xffff), rng.randrange(1, 0xffff))
    if r < 0.06:
        return "::1"
    if r < 0.08:
        return "crawl-%d.search.example.com" % rng.randrange(100)
    return "%d.%d.%d.%d" % (rng.randrange(1, 224), rng.randrange(256),
                            rng.randrange(256), rng.randrange(1, 255))


def target(rng, path, popular):
    """A request target for path; now and then, for a popular page, in
    absolute form or with odd bytes (new keys for a few pages only, so that
    results keep about the size of a real site's)."""
    r = rng.random() if popular else 1.0
    if r < 0.04:
        path = "http://%s%s" % (rng.choice(HOSTS), path)
    elif r < 0.05:
        path = "/" + path if path.startswith("/") else path
    elif r < 0.06:
        path = path + "\\\"x"
    elif r < 0.065:
        path = path + "\\xe9"
    r = rng.random()
    if r < 0.06:
        path += "?q=%d&page=%d" % (rng.randrange(1000), rng.randrange(1, 10))
    elif r < 0.08:
        path += "#sec-%d" % rng.randrange(20)
    elif r < 0.09:
        path += "?a=/b?c#d?e"
    return path


def request(rng, path, popular):
    r = rng.random()
    if r < 0.004:
        return "-", 408
    if r < 0.007:
        return "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03", 400
    if r < 0.009:
        return "CONNECT example.org:443 HTTP/1.1", 405
    if r < 0.011:
        return "OPTIONS * HTTP/1.1", 200
    return "%s %s %s" % (rng.choice(METHODS), target(rng, path, popular),
                         rng.choice(PROTOCOLS)), rng.choice(STATUSES)


def junk(rng, t, zone):
    kind = rng.randrange(8)
    if kind == 0:
        return b""
    if kind == 1:
        return b"this is not an access log line"
    if kind == 2:
        return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(5, 40))
                     ).replace(b"\n", b"\x01")
    if kind == 3:   # a time that is no real date
        when = rng.choice(("31/Feb/2023:10:00:00 +0000", "30/Feb/2024:00:00:00 +0000",
                           "29/Feb/2023:12:00:00 +0100", "15/Foo/2024:00:00:00 +0000",
                           "01/Mar/2024:24:00:00 +0000", "01/Mar/2024:00:60:00 +0000",
                           "01/Mar/2024:00:00:60 +0000", "00/Mar/2024:00:00:00 +0000",
                           "01/Mar/2024:00:00:00 +2400"))
        return ('10.1.2.3 - - [%s] "GET /book/ch01/intro-0.html HTTP/1.1" 200 5 '
                '"-" "ua"' % when).encode()
    if kind == 4:   # cut short before the status
        return ('10.1.2.3 - - [%s] "GET /book/cut HTTP/1.1"' % stamp(t, zone)).encode()
    if kind == 5:   # no brackets around the time
        return ('10.1.2.3 - - %s "GET /book/nobracket HTTP/1.1" 200 5 "-" "ua"'
                % stamp(t, zone)).encode()
    if kind == 6:   # a letter where the status goes
        return ('10.1.2.3 - - [%s] "GET /book/status HTTP/1.1" OK 5 "-" "ua"'
                % stamp(t, zone)).encode()
    return b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"


def line(rng, pages, cum, t, zone):
    k = pick(rng, cum)
    odd = k < 40 or not pages[k].isascii()
    req, status = request(rng, pages[k], odd)
    size = "-" if status in (304, 408) or rng.random() < 0.02 else str(rng.randrange(100000))
    text = '%s - %s [%s] "%s" %d %s "%s" "%s"' % (
        client(rng), rng.choice(USERS), stamp(t, zone), req, status, size,
        rng.choice(REFERERS), rng.choice(AGENTS))
    if rng.random() < 0.01:
        text += ' "203.0.113.%d"' % rng.randrange(1, 255)
    # a few pages hold non-ASCII characters: written as UTF-8, or now and
    # then as Latin-1 (a byte that is not UTF-8)
    return text.encode("latin-1" if odd and rng.random() < 0.3 else "utf-8")


def pick(rng, cum):
    """An index drawn with the weights whose running sums are cum."""
    x = rng.random() * cum[-1]
    lo, hi = 0, len(cum) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def usage():
    sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
    sys.exit(2)


def main(argv):
    seed, plain, junk_frac = 1, False, 0.0
    pos = []
    it = iter(argv)
    for a in it:
        if a == "--plain":
            plain = True
        elif a == "--seed":
            seed = int(next(it, "x"))
        elif a == "--junk":
            junk_frac = float(next(it, "x"))
        elif a.startswith("--"):
            usage()
        else:
            pos.append(a)
    if len(pos) != 3 or not 0.0 <= junk_frac <= 1.0:
        usage()
    outdir, nfiles, nlines = pos[0], int(pos[1]), int(pos[2])
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(seed)
    pages = site(rng)
    cum, total = [], 0.0
    for k in range(len(pages)):
        total += 1.0 / (k + 1)
        cum.append(total)
    # from the evening of 28 February 2024 on: 29 February comes soon
    t = datetime.datetime(2024, 2, 28, 22, 0, 0) + \
        datetime.timedelta(minutes=37 * (seed % 41))
    for f in range(nfiles):
        zone = ZONES[f % len(ZONES)]
        out = []
        for _ in range(nlines):
            t += datetime.timedelta(milliseconds=rng.randrange(1, 500))
            if junk_frac and rng.random() < junk_frac:
                out.append(junk(rng, t, zone))
            else:
                out.append(line(rng, pages, cum, t, zone))
        data = b"\n".join(out) + b"\n" if out else b""
        name = os.path.join(outdir, "access-%03d.log" % f)
        if plain:
            with open(name, "wb") as fh:
                fh.write(data)
        else:
            with open(name + ".gz", "wb") as raw:
                # no name or time in the header: the same bytes every run
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                   compresslevel=6, mtime=0) as fh:
                    fh.write(data)


if __name__ == "__main__":
    main(sys.argv[1:])
