/*
 * fuzz_gzip.c: the reader's gzip decoding against zlib's as the oracle.
 *
 * The input is either a recipe or raw bytes behind the gzip magic (first
 * byte odd). A recipe builds one to four members, each with its own
 * header flags (FTEXT, FHCRC right or wrong, FEXTRA, FNAME, FCOMMENT,
 * sometimes reserved bits), raw deflate at some level, window and flush
 * pattern, a trailer that may be wrong, then zero padding and garbage;
 * then flips a few bytes and maybe truncates. The oracle inflates the
 * same bytes member by member with inflateInit2(16 + 15) and its own
 * checks on (zero padding between members skipped, as gzip does).
 * Checks: a stream the oracle decodes gives exactly its lines and ends
 * without error; a stream the oracle rejects ends in READER_ERROR with a
 * message, after lines that are a prefix of what the oracle decoded.
 * Build with -DFUZZ_GZIP_SKIP_HCRC to leave out streams whose only fault
 * is a wrong header CRC, which the reader does not check.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "reader.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_OUT_MAX	(4u << 20)	/* oracle output limit */
#define FUZZ_LINE_MAX	(4u << 20)	/* no line is ever overlong */
#define FUZZ_STREAM_MAX	(4u << 20)

struct fuzz_in {
	const uint8_t	*p;
	size_t		 n;
};

struct fuzz_buf {
	uint8_t		*p;
	size_t		 len, cap;
};

static char	 fuzz_dir[] = "/tmp/fuzz_gzip.XXXXXX";
static char	 fuzz_file[64];

static void
fuzz_cleanup(void)
{
	unlink(fuzz_file);
	rmdir(fuzz_dir);
}

/* The next input byte, 0 once the input is used up. */
static uint8_t
fuzz_byte(struct fuzz_in *in)
{
	uint8_t	 b;

	if (in->n == 0)
		return 0;
	b = *in->p++;
	in->n--;
	return b;
}

static void
fuzz_put(struct fuzz_buf *b, const void *p, size_t n)
{
	if (n > b->cap - b->len)
		abort();
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
fuzz_put_le(struct fuzz_buf *b, uint32_t v, size_t n)
{
	uint8_t	 t[4];
	size_t	 i;

	for (i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	fuzz_put(b, t, n);
}

/* n bytes taken from the input (a pattern once it runs out). */
static void
fuzz_put_input(struct fuzz_buf *b, struct fuzz_in *in, size_t n, int nonul)
{
	uint8_t	 c;
	size_t	 i;

	for (i = 0; i < n; i++) {
		c = in->n > 0 ? fuzz_byte(in) : (uint8_t)("ab\n"[i % 3]);
		if (nonul && c == 0)
			c = 'x';
		fuzz_put(b, &c, 1);
	}
}

/* One member from the recipe. */
static void
fuzz_member(struct fuzz_buf *b, struct fuzz_in *in, uint8_t *scratch)
{
	z_stream	 zs;
	uint8_t		 flg, opt, c;
	size_t		 hstart = b->len, n, plen, pieces, i, done, step;
	uint32_t	 crc;
	int		 rc;

	flg = fuzz_byte(in);
	opt = fuzz_byte(in);
	if ((opt & 0xc0) != 0xc0)
		flg &= 0x1f;	/* reserved bits only now and then */
	fuzz_put(b, "\x1f\x8b\x08", 3);
	fuzz_put(b, &flg, 1);
	fuzz_put_le(b, 0x5a0f1e2d, 4);
	c = fuzz_byte(in);
	fuzz_put(b, &c, 1);	/* XFL */
	c = 3;
	fuzz_put(b, &c, 1);	/* OS */
	if (flg & 4) {
		n = fuzz_byte(in);
		if (opt & 0x20)
			n = n * 257;	/* a long extra field */
		fuzz_put_le(b, (uint32_t)n, 2);
		fuzz_put_input(b, in, n, 0);
	}
	if (flg & 8) {
		fuzz_put_input(b, in, fuzz_byte(in) % 64, 1);
		fuzz_put(b, "", 1);
	}
	if (flg & 16) {
		fuzz_put_input(b, in, fuzz_byte(in) % 64, 1);
		fuzz_put(b, "", 1);
	}
	if (flg & 2) {
		crc = (uint32_t)crc32(0, b->p + hstart, (uInt)(b->len - hstart));
		if ((opt & 0x18) == 0x18)
			crc ^= 1u << (fuzz_byte(in) % 16);
		fuzz_put_le(b, crc & 0xffff, 2);
	}

	/* The data: its length, then the bytes, deflated in pieces. */
	plen = fuzz_byte(in);
	plen = plen << 4 | (fuzz_byte(in) & 15);
	if (opt & 4)
		plen *= 64;	/* long outputs: many reads */
	for (i = 0; i < plen; i++)
		scratch[i] = in->n > 0 ? fuzz_byte(in) :
		    (uint8_t)("GET /a HTTP/1.1\r\n"[i % 17]);
	crc = (uint32_t)crc32(0, scratch, (uInt)plen);

	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, opt & 1 ? 1 : (opt & 2 ? 9 : 0), Z_DEFLATED,
	    -(9 + (int)(fuzz_byte(in) % 7)), 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	pieces = 1 + fuzz_byte(in) % 4;
	step = plen / pieces + 1;
	zs.next_in = scratch;
	zs.next_out = b->p + b->len;
	zs.avail_out = (uInt)(b->cap - b->len);
	for (done = 0; ; ) {
		n = plen - done < step ? plen - done : step;
		zs.avail_in = (uInt)n;
		done += n;
		rc = deflate(&zs, done == plen ? Z_FINISH : Z_SYNC_FLUSH);
		if (done == plen) {
			if (rc != Z_STREAM_END)
				abort();
			break;
		}
		if (rc != Z_OK)
			abort();
	}
	b->len = b->cap - zs.avail_out;
	deflateEnd(&zs);

	/* The trailer, sometimes wrong. */
	if ((opt & 0x18) == 0x08)
		crc ^= 1u << (fuzz_byte(in) % 32);
	fuzz_put_le(b, crc, 4);
	fuzz_put_le(b, (uint32_t)plen + ((opt & 0x18) == 0x10 ?
	    (uint32_t)1 << (fuzz_byte(in) % 32) : 0), 4);
}

/* The stream from the recipe. */
static void
fuzz_recipe(struct fuzz_buf *b, struct fuzz_in *in, uint8_t *scratch)
{
	uint8_t	 mode, nflip, x;
	size_t	 members, i, n, pos;

	mode = fuzz_byte(in);
	members = 1 + (mode >> 1 & 3);
	for (i = 0; i < members; i++) {
		fuzz_member(b, in, scratch);
		/* Zero padding between members too, now and then. */
		if (mode & 0x80) {
			n = fuzz_byte(in) % 8;
			while (n-- > 0)
				fuzz_put(b, "", 1);
		}
	}
	n = mode & 8 ? fuzz_byte(in) % 32 : 0;
	while (n-- > 0)
		fuzz_put(b, "", 1);
	if (mode & 16) {
		n = fuzz_byte(in) % 16;
		fuzz_put_input(b, in, n, 0);
	}
	nflip = mode & 32 ? 1 + fuzz_byte(in) % 3 : 0;
	for (i = 0; i < nflip && b->len > 0; i++) {
		pos = ((size_t)fuzz_byte(in) << 8 | fuzz_byte(in)) % b->len;
		x = fuzz_byte(in);
		b->p[pos] ^= x != 0 ? x : 1;
	}
	if ((mode & 64) && b->len > 0)
		b->len = ((size_t)fuzz_byte(in) << 8 | fuzz_byte(in)) % b->len;
}

/*
 * The oracle: inflate members with zlib's checks until the end or an
 * error; zero bytes between members skipped. 0 for a good stream, -1
 * for a bad one, -2 when the output is too large to compare; *msg is
 * zlib's message for a bad stream.
 */
static int
fuzz_oracle(const uint8_t *s, size_t len, struct fuzz_buf *out,
    const char **msg)
{
	z_stream	 zs;
	size_t		 pos = 0;
	int		 rc, first = 1, ret = 0;

	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, 16 + 15) != Z_OK)
		abort();
	*msg = "";
	for (;;) {
		if (!first) {
			while (pos < len && s[pos] == 0)
				pos++;
			if (pos == len)
				break;
			inflateReset(&zs);
		}
		first = 0;
		zs.next_in = (Bytef *)(uintptr_t)(s + pos);
		zs.avail_in = (uInt)(len - pos);
		zs.next_out = out->p + out->len;
		zs.avail_out = (uInt)(out->cap - out->len);
		rc = inflate(&zs, Z_NO_FLUSH);
		out->len = out->cap - zs.avail_out;
		pos = len - zs.avail_in;
		if (rc == Z_STREAM_END)
			continue;
		if (zs.avail_out == 0) {
			ret = -2;
		} else {
			ret = -1;
			*msg = zs.msg != NULL ? zs.msg : "truncated";
		}
		break;
	}
	inflateEnd(&zs);
	return ret;
}

/* Split [p, p + n) into lines the way the reader does; the count. */
static size_t
fuzz_lines(const uint8_t *p, size_t n, const uint8_t **lp, size_t *ll,
    size_t max)
{
	const uint8_t	*nl;
	size_t		 k = 0, m;

	while (n > 0) {
		if (k == max)
			abort();
		nl = memchr(p, '\n', n);
		m = nl != NULL ? (size_t)(nl - p) : n;
		lp[k] = p;
		ll[k] = m > 0 && p[m - 1] == '\r' ? m - 1 : m;
		k++;
		if (nl == NULL)
			break;
		p += m + 1;
		n -= m + 1;
	}
	return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 init;
	static uint8_t		*scratch;
	static struct fuzz_buf	 st, out;
	static const uint8_t	**lp;
	static size_t		*ll;
	struct fuzz_in		 in = { data, size };
	struct reader		 r;
	const char		*line, *msg;
	size_t			 len, nlines, k = 0;
	int			 fd, oracle, rc;

	if (!init) {
		if (mkdtemp(fuzz_dir) == NULL)
			abort();
		snprintf(fuzz_file, sizeof fuzz_file, "%s/log.gz", fuzz_dir);
		atexit(fuzz_cleanup);
		st.cap = FUZZ_STREAM_MAX;
		out.cap = FUZZ_OUT_MAX;
		if ((scratch = malloc(256 * 16 * 64)) == NULL ||
		    (st.p = malloc(st.cap)) == NULL ||
		    (out.p = malloc(out.cap)) == NULL ||
		    (lp = calloc(FUZZ_OUT_MAX + 1, sizeof *lp)) == NULL ||
		    (ll = calloc(FUZZ_OUT_MAX + 1, sizeof *ll)) == NULL)
			abort();
		init = 1;
	}
	if (size < 1)
		return 0;
	st.len = 0;
	out.len = 0;
	if (data[0] & 1) {
		fuzz_put(&st, "\x1f\x8b", 2);
		fuzz_put(&st, data + 1, size - 1 < st.cap - 2 ? size - 1 :
		    st.cap - 2);
	} else {
		in.p++;
		in.n--;
		fuzz_recipe(&st, &in, scratch);
	}
	/* Without the magic the reader sees a plain file: not our case. */
	if (st.len < 2 || st.p[0] != 0x1f || st.p[1] != 0x8b)
		return 0;
	oracle = fuzz_oracle(st.p, st.len, &out, &msg);
	if (oracle == -2)
		return 0;
#ifdef FUZZ_GZIP_SKIP_HCRC
	if (oracle == -1 && strcmp(msg, "header crc mismatch") == 0)
		return 0;
#endif
	nlines = fuzz_lines(out.p, out.len, lp, ll, FUZZ_OUT_MAX + 1);

	if ((fd = open(fuzz_file, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, st.p, st.len) != (ssize_t)st.len || close(fd) == -1)
		abort();
	if (reader_open(&r, fuzz_file, NULL, FUZZ_LINE_MAX, 0) == -1)
		abort();
	while ((rc = reader_next(&r, &line, &len)) == READER_LINE) {
		if (k >= nlines) {
			fprintf(stderr, "reader: line %zu beyond the oracle's "
			    "%zu\n", k, nlines);
			abort();
		}
		/* A line cut by an error may be shorter, nothing else. */
		if (len > ll[k] || memcmp(line, lp[k], len) != 0 ||
		    (oracle == 0 && len != ll[k])) {
			fprintf(stderr, "reader: line %zu differs (%zu vs "
			    "%zu bytes; oracle %d %s)\n", k, len, ll[k],
			    oracle, msg);
			abort();
		}
		k++;
	}
	if (rc == READER_OVERLONG)
		abort();
	if (oracle == 0 && (rc != READER_END || k != nlines)) {
		fprintf(stderr, "reader: rc %d (%s) after %zu of %zu lines on "
		    "a stream zlib decodes\n", rc, r.error, k, nlines);
		abort();
	}
	if (oracle == -1 && rc != READER_ERROR) {
		fprintf(stderr, "reader: no error after %zu lines on a stream "
		    "zlib rejects (%s)\n", k, msg);
		abort();
	}
	if (rc == READER_ERROR && r.error[0] == '\0')
		abort();
	reader_close(&r);
	return 0;
}
