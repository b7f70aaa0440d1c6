#!/usr/bin/env python3
"""refcount: clfd's reference analysis, in plain Python, for the tests.

usage: refcount.py [--book] [--any] [--count-root] [--clfd-keys] FILE...

Counts the request paths of access-log FILEs the way clfd must count them
(clfd(8), "The analysis"), and prints {path: count} as JSON, sorted by
path. It is written from the rules, byte by byte, and shares no code with
clfd: the tests compare clfd's counts with these.

The rules, as this file applies them:
- A FILE whose name ends in ".gz" is inflated, any other is read as it
  is. Lines end at "\\n"; white space at the end of a line is dropped.
  White space here is the bytes 09-0D, 1C-1F and 20.
- A Combined line: host, ident and user (tokens without white space),
  "[" time "]", "request", status (digits), bytes (a token), "referer",
  "user agent"; fields apart by white space, anything may follow. Where a
  line can be cut into fields in more than one way, the time is the
  shortest that works, then the request, then the referer. With --any the
  referer and user agent may be missing (a Common line).
- The time is DD/Mon/YYYY:HH:MM:SS ZONE, a real date and time (no day 0,
  no 31/Feb, no year 0, no second 60), the zone "Z" or +-HH[:]MM with
  optional seconds and a fraction, less than a day off UTC.
- The request is cut at white space: the first word is the method, the
  last the protocol, the words between (joined by one space) the target.
  A request with no word at all does not count.
- The path: a target starting with "//" is a path up to its first "?" or
  "#". Any other target loses leading control bytes and spaces, tabs and
  line ends anywhere, a leading "scheme:" and a "//authority", then the
  rest up to the first "?" or "#" is the path. An authority with an
  unmatched bracket, or with a bracketed host that is not an IPv6 address
  (or "vHEX.x"), makes the line not count; so does such a referer.
- Filters: a path whose segments are all empty (with --count-root, only
  an empty path: "/" and "//" count), a path with an excluded
  name among its segments, or whose last segment ends in an excluded
  extension does not count. --book keeps only paths whose first two
  non-empty segments exist and the first is "book".
- Keys are the path bytes, as a str where each byte over 7F is the lone
  surrogate U+DC80+byte; --clfd-keys prints them as clfd does instead:
  valid UTF-8 as it is, other bytes and NUL as %XX.
"""
import gzip
import json
import sys

WS = frozenset(b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ")
DIGITS = frozenset(b"0123456789")
HEX = frozenset(b"0123456789abcdefABCDEF")
SCHEME = frozenset(b"abcdefghijklmnopqrstuvwxyz"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
TO_SPACE = bytes(0x20 if c in WS else c for c in range(256))
LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
QUOTE = 0x22
MONTHS = {m: i + 1 for i, m in enumerate(
    b"jan feb mar apr may jun jul aug sep oct nov dec".split())}
EXCLUDED_NAMES = frozenset([
    b"favicon.ico", b"robots.txt", b"humans.txt", b"crossdomain.xml",
    b"_images", b"search.html", b"genindex.html", b"searchindex.js",
    b"modindex.html", b"py-modindex.html"])
EXCLUDED_EXTS = (b".png", b".js", b".css")


class NoCount(Exception):
    """The line parses but does not count (bad time, target or referer)."""


# --- scanning helpers: positions in a bytes line ---

def skip_ws(s, i):
    n = len(s)
    while i < n and s[i] in WS:
        i += 1
    return i


def skip_token(s, i):
    n = len(s)
    while i < n and s[i] not in WS:
        i += 1
    return i


def skip_digits(s, i):
    n = len(s)
    while i < n and s[i] in DIGITS:
        i += 1
    return i


def gap_then(s, i, byte):
    """Past white space (at least one byte) and then `byte`: the position
    after it, or -1."""
    j = skip_ws(s, i)
    if j == i or j >= len(s) or s[j] != byte:
        return -1
    return j + 1


def quotes_from(s, i):
    """Positions of '"' in s at i or later."""
    while True:
        i = s.find(b'"', i)
        if i < 0:
            return
        yield i
        i += 1


def status_and_bytes(s, i):
    """After the request's closing quote: gap, digits, gap, a token. The
    position after the token, or -1."""
    j = skip_ws(s, i)
    if j == i:
        return -1
    k = skip_digits(s, j)
    if k == j:
        return -1
    m = skip_ws(s, k)
    if m == k:
        return -1
    e = skip_token(s, m)
    if e == m:
        return -1
    return e


def referer_and_agent(s, i):
    """At i: gap, "referer", gap, "agent" (the agent not empty). The
    referer's bytes, or None."""
    a = gap_then(s, i, QUOTE)
    if a < 0:
        return None
    last = s.rfind(b'"')
    for q in quotes_from(s, a):
        b = gap_then(s, q + 1, QUOTE)
        # the agent: at least one byte, then a quote somewhere after it
        if b >= 0 and last >= b + 1:
            return s[a:q]
    return None


def split_line(s, any_format):
    """(time, request, referer) of a line, or None when it does not match.
    The referer is None for a Common line (any_format only)."""
    i = skip_token(s, 0)                         # host
    if i == 0:
        return None
    for _ in range(2):                           # ident, user
        j = skip_ws(s, i)
        if j == i:
            return None
        i = skip_token(s, j)
        if i == j:
            return None
    t0 = gap_then(s, i, ord("["))
    if t0 < 0:
        return None
    pos = t0 + 1                                 # the time: one byte at least
    while True:
        t1 = s.find(b"]", pos)
        if t1 < 0:
            return None
        pos = t1 + 1
        r0 = gap_then(s, t1 + 1, QUOTE)
        if r0 < 0:
            continue
        for r1 in quotes_from(s, r0 + 1):        # the request: one byte at least
            e = status_and_bytes(s, r1 + 1)
            if e < 0:
                continue
            ref = referer_and_agent(s, e)
            if ref is not None or any_format:
                return s[t0:t1], s[r0:r1], ref


# --- the time ---

def leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def num(text, lo, hi, widths):
    """text as a decimal in [lo, hi] written with one of `widths` digits."""
    if len(text) not in widths or not all(c in DIGITS for c in text):
        raise NoCount
    v = int(text)
    if not lo <= v <= hi:
        raise NoCount
    return v


def zone_offset(z):
    """Offset of a zone in microseconds; NoCount unless well formed."""
    if z == b"Z":
        return 0
    if len(z) < 5 or z[0] not in b"+-":
        raise NoCount
    body = z[1:]
    colon = body[2:3] == b":"
    if colon:
        body = body[:2] + body[3:]
    hh, mm, rest = body[:2], body[2:4], body[4:]
    h = num(hh, 0, 99, (2,))
    m = num(mm, 0, 59, (2,))
    sec = frac = 0
    if rest:
        if colon:
            if rest[:1] != b":":
                raise NoCount
            rest = rest[1:]
        sec = num(rest[:2], 0, 59, (2,))
        rest = rest[2:]
        if rest:
            digits = rest[1:]
            if rest[:1] != b"." or not 1 <= len(digits) <= 6 or \
                    not all(c in DIGITS for c in digits):
                raise NoCount
            frac = int(digits.ljust(6, b"0"))
    total = ((h * 60 + m) * 60 + sec) * 1000000 + frac
    if total >= 86400 * 1000000:
        raise NoCount
    return -total if z[0] == ord("-") else total


def check_time(t):
    """NoCount unless t is a real DD/Mon/YYYY:HH:MM:SS ZONE."""
    parts = t.split(b"/", 2)
    if len(parts) != 3:
        raise NoCount
    day_text, mon, rest = parts
    # a day of one digit may have a space before it
    if len(day_text) == 2 and day_text[0] == 0x20:
        day_text = day_text[1:]
    day = num(day_text, 1, 31, (1, 2))
    month = MONTHS.get(mon.lower())
    if month is None:
        raise NoCount
    year = num(rest[:4], 1, 9999, (4,))
    if rest[4:5] != b":":
        raise NoCount
    clock = rest[5:]
    # HH:MM:SS, then white space, then the zone
    fields = clock.split(b":", 2)
    if len(fields) != 3:
        raise NoCount
    num(fields[0], 0, 23, (1, 2))                # hour
    num(fields[1], 0, 59, (1, 2))                # minute
    sec_text = fields[2]
    k = skip_digits(sec_text, 0)
    num(sec_text[:k], 0, 59, (1, 2))             # second
    z0 = skip_ws(sec_text, k)
    if z0 == k:
        raise NoCount
    zone_offset(sec_text[z0:])
    last = MONTH_DAYS[month - 1] + (1 if month == 2 and leap(year) else 0)
    if day > last:
        raise NoCount


# --- the target and the referer ---

def ipv4_ok(text):
    parts = text.split(b".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not 1 <= len(p) <= 3 or not all(c in DIGITS for c in p):
            return False
        if len(p) > 1 and p[0] == 0x30:
            return False
        if int(p) > 255:
            return False
    return True


def hex_groups(text):
    """Number of ':'-separated groups of 1-4 hex digits in text (empty
    text: none), or -1."""
    if not text:
        return 0
    groups = text.split(b":")
    for g in groups:
        if not 1 <= len(g) <= 4 or not all(c in HEX for c in g):
            return -1
    return len(groups)


def ipv6_ok(text):
    if b"/" in text:
        return False
    pct = text.find(b"%")
    if pct >= 0:
        scope = text[pct + 1:]
        if not scope or b"%" in scope:
            return False
        text = text[:pct]
    if text.count(b":") < 2:
        return False
    head, _, tail = text.rpartition(b":")
    if b"." in tail:
        if not ipv4_ok(tail):
            return False
        text = head + b":0:0"            # the same as two groups
    if b"::" in text:
        left, _, right = text.partition(b"::")
        if b"::" in right:
            return False
        a, b = hex_groups(left), hex_groups(right)
        return a >= 0 and b >= 0 and a + b <= 7
    return hex_groups(text) == 8


def ipvfuture_ok(text):
    dot = text.find(b".")
    if dot < 2 or dot == len(text) - 1:
        return False
    return all(c in HEX for c in text[1:dot])


def check_authority(auth):
    """NoCount for an authority with an unmatched or bad bracketed host."""
    o, c = auth.find(b"["), auth.find(b"]")
    if o < 0 and c < 0:
        return
    if o < 0 or c < 0:
        raise NoCount
    end = auth.find(b"]", o + 1)
    host = auth[o + 1:] if end < 0 else auth[o + 1:end]
    if host[:1] == b"v":
        ok = ipvfuture_ok(host)
    else:
        ok = ipv6_ok(host)
    if not ok:
        raise NoCount


def cut_query(u):
    """u up to its first '?' or '#'."""
    end = len(u)
    for ch in (b"?", b"#"):
        k = u.find(ch)
        if 0 <= k < end:
            end = k
    return u[:end]


def url_rest(u):
    """After the clean-up, scheme and authority: the rest of u (NoCount
    for a bad authority)."""
    k = 0
    while k < len(u) and u[k] <= 0x20:
        k += 1
    u = u[k:]
    if b"\t" in u or b"\r" in u or b"\n" in u:
        u = u.replace(b"\t", b"").replace(b"\r", b"").replace(b"\n", b"")
    colon = u.find(b":")
    if colon > 0 and u[0] in LETTERS and all(c in SCHEME for c in u[:colon]):
        u = u[colon + 1:]
    if u[:2] == b"//":
        end = len(u)
        for ch in (b"/", b"?", b"#"):
            k = u.find(ch, 2)
            if 0 <= k < end:
                end = k
        check_authority(u[2:end])
        u = u[end:]
    return u


def target_path(target):
    if target[:2] == b"//":
        return cut_query(target)
    return cut_query(url_rest(target))


# --- one line, one file, many files ---

def counted_path(line, any_format, book, count_root=False):
    """The path a line counts for, or None."""
    fields = split_line(line, any_format)
    if fields is None:
        return None
    time, request, referer = fields
    words = [w for w in request.translate(TO_SPACE).split(b" ") if w]
    if not words:
        return None
    target = b" ".join(words[1:-1])
    try:
        check_time(time)
        path = target_path(target)
        if referer:
            url_rest(referer)
    except NoCount:
        return None
    segments = path.split(b"/")
    if not any(segments) and not (count_root and path):
        return None
    if any(seg in EXCLUDED_NAMES for seg in segments):
        return None
    if segments[-1].endswith(EXCLUDED_EXTS):
        return None
    if book:
        named = [seg for seg in segments if seg]
        if len(named) < 2 or named[0] != b"book":
            return None
    return path


def read_lines(name):
    """The lines of a file, each with its "\\n" if it had one."""
    opener = gzip.open if name.endswith(".gz") else open
    with opener(name, "rb") as f:
        yield from f


def rstrip_ws(line):
    end = len(line)
    while end and line[end - 1] in WS:
        end -= 1
    return line[:end]


def count_files(names, any_format=False, book=False, count_root=False):
    """{path bytes: count} over the files."""
    counts = {}
    for name in names:
        for line in read_lines(name):
            path = counted_path(rstrip_ws(line), any_format, book, count_root)
            if path is not None:
                counts[path] = counts.get(path, 0) + 1
    return counts


def seed_key(path):
    return path.decode("ascii", "surrogateescape")


def clfd_key(path):
    out = []
    i = 0
    while i < len(path):
        try:
            rest = path[i:].decode("utf-8")
            out.append(rest)
            break
        except UnicodeDecodeError as e:
            out.append(path[i:i + e.start].decode("utf-8"))
            out.append("".join("%%%02X" % b for b in path[i + e.start:i + e.end]))
            i += e.end
    return "".join(out).replace("\0", "%00")


def main(argv):
    book = any_format = clfd = count_root = False
    files = []
    for a in argv:
        if a == "--book":
            book = True
        elif a == "--any":
            any_format = True
        elif a == "--clfd-keys":
            clfd = True
        elif a == "--count-root":
            count_root = True
        elif a.startswith("--"):
            sys.stderr.write("refcount.py: unknown option %s\n" % a)
            return 2
        else:
            files.append(a)
    counts = count_files(files, any_format, book, count_root)
    key = clfd_key if clfd else seed_key
    out = {}
    for path, n in counts.items():
        k = key(path)
        out[k] = out.get(k, 0) + n
    json.dump(dict(sorted(out.items())), sys.stdout, indent=0)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
