"""Helpers for the engine's integration tests: TAP output, running
bench/engine-run, the project's reference analysis and log generator
(tests/refcount.py, tests/genlogs.py), and a seed_ref.py's keys mapped to
the engine's (raw path bytes, bytes that are not UTF-8 as %XX)."""
import codecs, json, os, subprocess, sys

BUILDDIR = os.environ.get('CLFD_BUILDDIR', '.')
SRCDIR = os.environ.get('CLFD_SRCDIR', '.')
SHARED = os.environ.get('CLFD_SHARED', os.path.join(SRCDIR, '..', 'shared'))
ENGINE_RUN = os.path.join(BUILDDIR, 'bench', 'engine-run')
TESTS = os.path.dirname(os.path.abspath(__file__))
SEED_REF = os.path.join(TESTS, 'refcount.py')
GEN_LOGS = os.path.join(TESTS, 'genlogs.py')
REAL = os.path.join(SRCDIR, 'tests', 'data', 'real')


class Tap:
    """Numbered ok / not ok lines, then the plan."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=None):
        self.n += 1
        print(('ok' if cond else 'not ok') + ' %d - %s' % (self.n, name))
        if not cond:
            self.failed += 1
            if detail is not None:
                for line in str(detail).splitlines()[:20]:
                    print('# ' + line)
        sys.stdout.flush()
        return cond

    def skip(self, name, why):
        self.n += 1
        print('ok %d - %s # SKIP %s' % (self.n, name, why))

    def done(self):
        print('1..%d' % self.n)
        sys.exit(1 if self.failed else 0)


def engine(files, *args, preexec=None, timeout=120):
    """Run engine-run; the parsed JSON document (or None) and stderr."""
    p = subprocess.run([ENGINE_RUN, *args, '--', *files], capture_output=True,
                       timeout=timeout, preexec_fn=preexec)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        doc = None
    return doc, p.stderr.decode(errors='replace')


def seed(files, *flags, ref=SEED_REF):
    """The reference counts (tests/refcount.py, or another implementation
    of the same command line) with the keys in the engine's form."""
    out = subprocess.run([sys.executable, ref, *flags, *files],
                         capture_output=True, check=True, timeout=300).stdout
    return engine_keys(json.loads(out))


def _pct(err):
    bad = err.object[err.start:err.end]
    return ''.join('%%%02X' % b for b in bad), err.end


codecs.register_error('clfd_pct', _pct)


def engine_keys(counts):
    """Seed str keys (surrogateescape) -> the engine's JSON keys, summed:
    bytes that are not UTF-8, and NUL, percent-encoded."""
    out = {}
    for k, v in counts.items():
        raw = k.encode('utf-8', 'surrogateescape')
        key = raw.decode('utf-8', 'clfd_pct').replace('\0', '%00')
        out[key] = out.get(key, 0) + v
    return out


def diff(a, b, limit=10):
    """A short text showing where two count tables differ."""
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            lines.append('%r: %r != %r' % (k, a.get(k), b.get(k)))
            if len(lines) >= limit:
                break
    return '\n'.join(lines)
