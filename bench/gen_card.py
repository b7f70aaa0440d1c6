#!/usr/bin/env python3
"""gen_card.py: a deterministic high-cardinality access log (every path distinct).

usage: gen_card.py OUT [--lines N] [--seed S] [--files K [--copy]] [--level L]

Writes N Combined Log Format lines (default 2,000,000), each with its own
path, /item/<id>/<hex>.html (a few with a cache-busting query string, which
the path drops), with realistic hosts, times, methods, statuses, referers
and user agents:

  OUT                       one gzip file (no --files)
  OUT/card-KK.log.gz        --files K: the same lines, in order, split over
                            K files (K nearly equal runs of lines)
  OUT/card-KK-copy.log.gz   --copy: a byte-for-byte copy of each part, so a
                            job over all 2K files counts every path twice

The lines depend only on N and the seed, not on K; the gzip bytes carry
no name or time, so a machine makes the same files each time. Compression
runs in a gzip process beside the generator when there is one (level L,
default 6), else in zlib here.
"""
import argparse
import datetime
import os
import random
import shutil
import subprocess
import sys
import zlib

BATCH = 1 << 16		# lines per write

# Mostly crawlers, scanners and tools, as on a site with an item per page.
AGENTS = [
    (10, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
    (4, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"),
    (3, "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
    (10, "Googlebot/2.1 (+http://www.google.com/bot.html)"),
    (6, "bingbot/2.0 (+http://www.bing.com/bingbot.htm)"),
    (5, "AhrefsBot/7.0"),
    (20, "curl/8.4.0"),
    (15, "python-requests/2.31.0"),
    (12, "Go-http-client/1.1"),
    (5, "Wget/1.21.4"),
    (10, "-"),
]
REFERERS = [
    (80, "-"),
    (6, "https://www.google.com/"),
    (2, "https://www.bing.com/"),
    (2, "https://duckduckgo.com/"),
    (10, None),		# another item page of the same site
]
METHODS = [(92, "GET"), (4, "HEAD"), (4, "POST")]
STATUS = [(84, "200"), (7, "304"), (5, "404"), (2, "301"), (1, "500"), (1, "206")]
SECTIONS = ["item"] * 15 + ["p"]


def table(pairs, size):
    """A list of size entries in which each value appears about weight/total
    of the time: a weighted choice is then one index with random bits."""
    total = sum(w for w, _ in pairs)
    out = []
    for w, v in pairs:
        out += [v] * round(w * size / total)
    while len(out) < size:
        out.append(pairs[0][1])
    return out[:size]


class Sink:
    """One gzip output file: a gzip -n process beside us, or zlib here."""

    def __init__(self, path, level, use_gzip):
        self.path = path
        self.f = open(path, "wb")
        self.proc = None
        if use_gzip:
            self.proc = subprocess.Popen(["gzip", "-n", "-c", f"-{level}"],
                                         stdin=subprocess.PIPE, stdout=self.f)
        else:
            self.z = zlib.compressobj(level, zlib.DEFLATED, 16 + 15)

    def write(self, data):
        if self.proc:
            self.proc.stdin.write(data)
        else:
            self.f.write(self.z.compress(data))

    def close(self):
        if self.proc:
            self.proc.stdin.close()
            if self.proc.wait() != 0:
                sys.exit(f"gen_card.py: gzip failed writing {self.path}")
        else:
            self.f.write(self.z.flush())
        self.f.close()


def lines(n, seed):
    """Yield the lines in batches (bytes, count), the same for a seed."""
    rng = random.Random(seed)
    # Item ids, from 1, each used once: rising over the log, but shuffled
    # within each run of 256 lines, as when several crawlers interleave.
    perm = list(range(256))
    rng.shuffle(perm)
    agents = table(AGENTS, 256)
    referers = table(REFERERS, 128)
    methods = table(METHODS, 128)
    status = table(STATUS, 128)
    tz = datetime.timezone(datetime.timedelta(hours=-4))
    t0 = datetime.datetime(2024, 3, 1, 0, 0, 0, tzinfo=tz)
    # The lines span about a day, whatever n.
    step = max(1, 2 * 86400000 // max(n, 1))
    ms = 0
    last_sec, stamp = -1, ""
    # Clients: a pool of addresses, a few of them IPv6, some busy.
    pool = []
    for i in range(1024):
        if rng.random() < 0.04:
            pool.append(f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}")
        else:
            pool.append(f"{rng.randint(1, 223)}.{rng.randint(0, 255)}."
                        f"{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    # Page sizes: a few hundred templates' worth.
    sizes = [str(int(rng.lognormvariate(9.5, 0.8))) for _ in range(256)]
    buf = []
    getrandbits = rng.getrandbits
    for i in range(n):
        r = getrandbits(80)
        ms += (r & 0xffffff) % step
        r >>= 24
        sec = ms // 1000
        if sec != last_sec:
            last_sec = sec
            stamp = (t0 + datetime.timedelta(seconds=sec)).strftime("%d/%b/%Y:%H:%M:%S %z")
        # A busy client for a quarter of the lines.
        host = pool[(r >> 2) & 63] if r & 3 == 0 else pool[(r >> 2) & 1023]
        r >>= 14
        st = status[r & 127]
        r >>= 7
        method = methods[r & 127]
        r >>= 7
        agent = agents[r & 255]
        r >>= 8
        ref = referers[r & 127]
        h = getrandbits(64)
        item = (i & ~255) + perm[i & 255] + 1
        if ref is None:		# an item page a little older
            ref = f"https://shop.example.com/item/{max(1, item - (r >> 7))}/"
        path = f"/{SECTIONS[h & 15]}/{item}/{h >> 32:08x}.html"
        if (h >> 4) & 127 == 0:
            path += f"?v={(h >> 19) & 0xfffff}"
        size = "-" if st == "304" else sizes[(h >> 11) & 255]
        buf.append(f'{host} - - [{stamp}] "{method} {path} HTTP/1.1" {st} {size} '
                   f'"{ref}" "{agent}"\n')
        if len(buf) == BATCH:
            yield "".join(buf).encode("ascii"), len(buf)
            buf = []
    if buf:
        yield "".join(buf).encode("ascii"), len(buf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=2000000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", type=int, default=0,
                    help="split the lines over this many files in OUT/")
    ap.add_argument("--copy", action="store_true",
                    help="with --files: also write a copy of each file")
    ap.add_argument("--level", type=int, default=6, choices=range(1, 10))
    args = ap.parse_args()
    if args.lines < 1:
        ap.error("--lines: at least 1")
    if args.copy and not args.files:
        ap.error("--copy needs --files")
    if args.files < 0 or args.files > args.lines:
        ap.error("--files: from 1 to the number of lines")
    use_gzip = shutil.which("gzip") is not None

    if args.files:
        os.makedirs(args.out, exist_ok=True)
        names = [os.path.join(args.out, f"card-{k:02d}.log.gz") for k in range(args.files)]
        # File k holds lines [bounds[k], bounds[k + 1]).
        bounds = [k * args.lines // args.files for k in range(args.files + 1)]
    else:
        names = [args.out]
        bounds = [0, args.lines]

    k, done = 0, 0
    sink = Sink(names[0], args.level, use_gzip)
    for data, count in lines(args.lines, args.seed):
        # A batch may straddle file boundaries: cut it at line ends.
        while done + count > bounds[k + 1]:
            take = bounds[k + 1] - done
            cut = 0
            for _ in range(take):
                cut = data.index(b"\n", cut) + 1
            sink.write(data[:cut])
            sink.close()
            data, count, done, k = data[cut:], count - take, bounds[k + 1], k + 1
            sink = Sink(names[k], args.level, use_gzip)
        sink.write(data)
        done += count
    sink.close()
    if args.copy:
        for name in names:
            shutil.copyfile(name, name[:-len(".log.gz")] + "-copy.log.gz")


if __name__ == "__main__":
    main()
