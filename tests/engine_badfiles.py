#!/usr/bin/env python3
"""Bad and odd files: corrupt and truncated gzip, empty files, concatenated
gzip members, CRLF, NUL bytes, a 10 MB line, a FIFO, a directory, a symlink
to /dev/zero, an unreadable file, and files outside the allowed roots."""
import gzip, os, shutil, stat, subprocess, sys, tempfile, zlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_util import Tap, engine, GEN_LOGS

t = Tap()
tmp = tempfile.mkdtemp(prefix='clfd-bad-')


def write(name, data):
    path = os.path.join(tmp, name)
    with open(path, 'wb') as fh:
        fh.write(data)
    return path


def one(path, *args, **kw):
    """engine-run on one file: (file stats, counts, stderr)."""
    doc, err = engine([path], *args, **kw)
    if doc is None:
        return None, None, err
    return doc['files'][0], doc['counts'], err


def line(path, ua='ua'):
    return ('1.2.3.4 - - [01/Mar/2024:00:00:00 +0000] "GET %s HTTP/1.1" '
            '200 1 "-" "%s"' % (path, ua)).encode()


try:
    subprocess.run([sys.executable, GEN_LOGS, tmp, '1', '20000', '--plain',
                    '--seed', '11'], check=True)
    plain_path = os.path.join(tmp, 'access-000.log')
    raw = open(plain_path, 'rb').read()
    full, full_counts, _ = one(plain_path)
    t.ok(full['lines'] == 20000 and full['counted'] > 0, 'plain reference file')
    gz = gzip.compress(raw, 6)

    # A flipped byte in the middle of the deflate stream: the first from
    # the middle on that inflate itself refuses (a flip can also decode to
    # other bytes, found out only by the trailer's check).
    for flip in range(len(gz) // 2, len(gz) - 8):
        bad = bytearray(gz)
        bad[flip] ^= 0xff
        try:
            zlib.decompressobj(16 + 15).decompress(bytes(bad))
        except zlib.error as e:
            if 'check' not in str(e):
                break
    p = write('corrupt.gz', bytes(bad))
    st, counts, err = one(p)
    off = None
    if st and st['error'] and 'at compressed byte offset ' in st['error']:
        off = int(st['error'].rsplit(' ', 1)[1])
    t.ok(st is not None and st['partial'] and st['error'].startswith('gzip: ')
         and off is not None and flip <= off <= len(gz),
         'corrupt gzip: error names the offset, partial', st)
    t.ok(st is not None and 0 < st['lines'] < 20000 and st['counted'] > 0,
         'corrupt gzip: lines before the error counted', st)

    # Truncated: every whole line before the cut, and the incomplete last.
    cut = gz[:len(gz) // 3]
    p = write('truncated.gz', cut)
    dec = zlib.decompressobj(16 + 15).decompress(cut)
    want = dec.count(b'\n') + (0 if dec.endswith(b'\n') or not dec else 1)
    st, counts, err = one(p)
    t.ok(st is not None and st['partial'] and st['error'] ==
         'gzip: truncated stream at compressed byte offset %d' % len(cut),
         'truncated gzip: error names the end offset', st)
    t.ok(st is not None and st['lines'] == want and st['raw_bytes'] == len(dec)
         and st['counted'] > 0, 'truncated gzip: %d lines decoded' % want, st)

    # Empty files: plain, zero-byte .gz, and a gzip of nothing.
    for name, data in (('empty.log', b''), ('zero.gz', b''),
                       ('nothing.gz', gzip.compress(b''))):
        st, counts, err = one(write(name, data))
        t.ok(st is not None and st['lines'] == 0 and st['error'] is None
             and not st['partial'] and counts == {}, '%s: 0 lines, no error'
             % name, st)

    # Concatenated members, zero padding after the last.
    half = raw.index(b'\n', len(raw) // 2) + 1
    multi = gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + b'\0' * 64
    st, counts, err = one(write('multi.gz', multi))
    t.ok(st is not None and st['error'] is None and counts == full_counts and
         st['lines'] == 20000 and st['bytes'] == len(multi),
         'concatenated gzip members with zero padding', st)
    gz3 = gzip.compress(b'') + gzip.compress(raw) + gzip.compress(b'')
    st, counts, err = one(write('multi3.gz', gz3))
    t.ok(st is not None and counts == full_counts,
         'empty members around a full one')
    # The gzip magic decides, not the name.
    st, counts, err = one(write('disguised.log', gz))
    t.ok(st is not None and counts == full_counts and st['raw_bytes'] ==
         len(raw), 'gzip content named .log is inflated')
    st, counts, err = one(write('plain.gz', raw))
    t.ok(st is not None and counts == full_counts, 'plain content named .gz')
    # Trailing garbage after a member is an error, not silence.
    st, counts, err = one(write('garbage.gz', gz + b'garbage'))
    off = None
    if st and 'at compressed byte offset ' in (st['error'] or ''):
        off = int(st['error'].rsplit(' ', 1)[1])
    t.ok(st is not None and st['partial'] and counts == full_counts and
         off is not None and len(gz) <= off <= len(gz) + 7,
         'garbage after the last member: error at its offset', st)

    # The trailer is checked: a wrong CRC-32 or length is an error naming
    # the trailer's offset; the member's lines still count, it is partial.
    for pos, what, at in ((-8, 'data', len(gz) - 8), (-4, 'length',
                                                      len(gz) - 4)):
        bad = bytearray(gz)
        bad[pos] ^= 0x01
        st, counts, err = one(write('trailer%d.gz' % -pos, bytes(bad)))
        t.ok(st is not None and st['partial'] and counts == full_counts and
             st['error'] == 'gzip: incorrect %s check at compressed byte '
             'offset %d' % (what, at), 'gzip trailer: wrong %s check' % what,
             st)
    # A header with FHCRC: a right header CRC reads as usual, a wrong one
    # is an error at the header (nothing decoded), as zlib reports it.
    import struct, zlib
    hdr = bytes([0x1f, 0x8b, 8, 0x02, 0, 0, 0, 0, 0, 3])
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    member = co.compress(raw) + co.flush() + struct.pack(
        '<II', zlib.crc32(raw), len(raw) & 0xffffffff)
    hcrc = zlib.crc32(hdr) & 0xffff
    st, counts, err = one(write('fhcrc-good.gz', hdr + struct.pack('<H', hcrc) +
                                member))
    t.ok(st is not None and st['error'] is None and counts == full_counts,
         'gzip header CRC (FHCRC) right: read as usual', st)
    st, counts, err = one(write('fhcrc-bad.gz', hdr +
                                struct.pack('<H', hcrc ^ 1) + member))
    t.ok(st is not None and st['partial'] and st['lines'] == 0 and
         st['error'] == 'gzip: header crc mismatch at compressed byte offset 12',
         'gzip header CRC (FHCRC) wrong: an error naming the offset', st)

    # A member whose trailer straddles the reader's 256 KiB reads (stored
    # blocks make the size exact), then a second member.
    first = raw[:100000]
    for n in range(262148 - 80, 262148):
        body = raw[:n]
        m1 = gzip.compress(body, 0)
        if len(m1) == 262148:
            break
    st, counts, err = one(write('straddle.gz', m1 + gzip.compress(first)))
    ref, ref_counts, _ = one(write('straddle.log', body + first))
    t.ok(len(m1) == 262148 and st is not None and st['error'] is None and
         counts == ref_counts and st['lines'] == ref['lines'],
         'trailer across two reads', (len(m1), st))

    # CRLF: same counts as LF; a last line without newline still counts.
    crlf = raw.replace(b'\n', b'\r\n').rstrip(b'\n')
    st, counts, err = one(write('crlf.log', crlf))
    t.ok(st is not None and counts == full_counts and st['lines'] == 20000,
         'CRLF file, no final newline', st)
    st, counts, err = one(write('crlf.gz', gzip.compress(crlf)))
    t.ok(st is not None and counts == full_counts, 'CRLF gzip file')

    # NUL bytes: in a path (kept, percent-encoded as %00) and as junk lines.
    data = b'\n'.join([line(b'/a\0b'.decode()), b'\0\0\0', line('/ok'),
                       b'\0' * 100 + line('/x')])
    st, counts, err = one(write('nul.log', data))
    # NUL is not white space: a host of NUL bytes is a host, as in the seed.
    t.ok(st is not None and st['lines'] == 4 and st['malformed'] == 1 and
         counts == {'/a%00b': 1, '/ok': 1, '/x': 1}, 'NUL bytes',
         (st, counts))

    # A 10 MB line that begins as a valid line: malformed, not truncated.
    big = line('/big') + b' ' + b'x' * (10 * 1024 * 1024)
    data = line('/before') + b'\n' + big + b'\n' + line('/after') + b'\n'
    for name in ('big.log', 'big.gz'):
        p = write(name, gzip.compress(data, 1) if name.endswith('gz') else data)
        st, counts, err = one(p)
        t.ok(st is not None and st['lines'] == 3 and st['malformed'] == 1 and
             counts == {'/before': 1, '/after': 1},
             '%s: 10 MB line is malformed, neighbours counted' % name,
             (st, counts))
    p = write('big-last.log', line('/before') + b'\n' + big)
    st, counts, err = one(p)
    t.ok(st is not None and st['lines'] == 2 and st['malformed'] == 1 and
         counts == {'/before': 1}, '10 MB last line without newline', st)
    # The cap is configurable; a line exactly at the cap is fine.
    l = line('/cap')
    st, counts, err = one(write('cap.log', l + b'\n' + l + b'\r\n'),
                          '--line-max', str(len(l)))
    t.ok(st is not None and counts == {'/cap': 2}, 'line of exactly line-max')
    st, counts, err = one(write('cap2.log', l + b'\n'), '--line-max',
                          str(len(l) - 1))
    t.ok(st is not None and st['malformed'] == 1 and counts == {},
         'line one byte over line-max')

    # Not regular files: refused at once, never blocking.
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    st, counts, err = one(fifo, timeout=20)
    t.ok(st is not None and st['error'] == 'not a regular file (fifo)' and
         st['lines'] == 0, 'FIFO refused without blocking', st)
    d = os.path.join(tmp, 'dir.log')
    os.mkdir(d)
    st, counts, err = one(d)
    t.ok(st is not None and st['error'] == 'not a regular file (directory)',
         'directory refused', st)
    z = os.path.join(tmp, 'zero.log')
    os.symlink('/dev/zero', z)
    st, counts, err = one(z, timeout=20)
    t.ok(st is not None and
         st['error'] == 'not a regular file (character device)',
         'symlink to /dev/zero refused', st)
    st, counts, err = one(os.path.join(tmp, 'missing.log'))
    t.ok(st is not None and st['error'] == 'No such file or directory',
         'missing file', st)

    # Unreadable (mode 000): as root, read it as nobody.
    p = write('secret.log', raw)
    os.chmod(p, 0)
    os.chmod(tmp, 0o755)
    if os.geteuid() == 0:
        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        try:
            st, counts, err = one(p, preexec=drop)
            t.ok(st is not None and st['error'] == 'Permission denied' and
                 st['lines'] == 0, 'mode 000 file, read as nobody', (st, err))
        except (PermissionError, subprocess.SubprocessError, OSError) as e:
            t.skip('mode 000 file', 'cannot run as nobody: %s' % e)
    else:
        st, counts, err = one(p)
        t.ok(st is not None and st['error'] == 'Permission denied',
             'mode 000 file', st)
    os.chmod(tmp, 0o700)

    # A regex whose request group may take no part: such a line is
    # malformed (there is no path), the others count.
    p = write('optional-request.log', b'x\n"GET /a/b HTTP/1.0"x\n')
    st, counts, err = one(p, '--format', 'regex:(?:"(?<request>[^"]*)")?x')
    t.ok(st is not None and st['lines'] == 2 and st['malformed'] == 1 and
         counts == {'/a/b': 1}, 'regex with an optional request group',
         (st, err))

    # A regex that backtracks without end: PCRE2 gives up after a bounded
    # number of steps, the line is malformed, the next one still counts.
    p = write('backtrack.log', b'a' * 40 + b'b\n' + b'a' * 40 + b'\n')
    st, counts, err = one(p, '--format', 'regex:^(?<request>(a+)+)$')
    t.ok(st is not None and st['lines'] == 2 and st['malformed'] == 1 and
         st['matched'] == 1, 'catastrophic backtracking: malformed',
         (st, err))

    # File names in results follow the rule of counts keys: valid UTF-8
    # stays as it is, other bytes become %XX.
    p = write(os.fsdecode('caf\xc3\xa9-\xff.log'.encode('latin-1')), line('/n') + b'\n')
    st, counts, err = one(p)
    t.ok(st is not None and st['path'] == os.path.join(tmp, 'caf\u00e9-%FF.log') and
         counts == {'/n': 1}, 'file name: UTF-8 kept, invalid byte as %XX',
         (st, err))

    # Roots: after resolving symlinks, component by component.
    inside = os.path.join(tmp, 'inside')
    os.mkdir(inside)
    os.mkdir(inside + '2')
    write('inside/a.log', line('/in') + b'\n')
    write('inside2/b.log', line('/in2') + b'\n')
    out = write('outside.log', line('/out') + b'\n')
    os.symlink(out, os.path.join(inside, 'link.log'))
    os.symlink(os.path.join(inside, 'a.log'), os.path.join(tmp, 'in-link.log'))
    roots = '--roots', inside + ':/nonexistent'
    st, counts, err = one(os.path.join(inside, 'a.log'), *roots)
    t.ok(st is not None and counts == {'/in': 1} and st['error'] is None,
         'file under a root', st)
    for name, what in ((out, 'file outside the roots'),
                       (os.path.join(inside, 'link.log'),
                        'symlink inside a root to a file outside'),
                       (os.path.join(inside + '2', 'b.log'),
                        'sibling directory sharing the prefix'),
                       (os.path.join(inside, '..', 'outside.log'),
                        'dot-dot out of a root')):
        st, counts, err = one(name, *roots)
        t.ok(st is not None and counts == {} and st['lines'] == 0 and
             st['error'] == 'outside the allowed roots', what, st)
    st, counts, err = one(os.path.join(tmp, 'in-link.log'), *roots)
    t.ok(st is not None and counts == {'/in': 1},
         'symlink outside a root to a file inside', st)
finally:
    os.chmod(tmp, 0o700)
    shutil.rmtree(tmp)
t.done()
