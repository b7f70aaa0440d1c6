/*
 * test_range: a plain file read as byte ranges (reader_range) gives the
 * lines of the file read whole, each exactly once, for every range size
 * from 1 byte up to past the file's size: on short lines, CRLF, empty
 * lines, a last line without a newline, overlong lines, NUL bytes, one
 * line with no newline at all, and files past the reader's buffer with
 * lines longer than it. The ranges' owned bytes add up to the file, each
 * range ends where the next one that owns a line starts, and bytes appended
 * after the size a range was given are never read. A file cut into ranges
 * that is gzip when it is read (the job's listing did not know it) is
 * read whole by its range at 0, and by none of the others.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "analysis.h"
#include "counts.h"
#include "filter.h"
#include "logformat.h"
#include "reader.h"
#include "tap.h"

static char	 tmpl[] = "/tmp/test_range.XXXXXX";
static char	 path[64];

struct text {
	char	*s;
	size_t	 len, cap;
};

static void
put(struct text *t, const char *s, size_t len, char mark)
{
	while (t->len + len + 1 > t->cap) {
		t->cap = t->cap * 2 + 4096;
		if ((t->s = realloc(t->s, t->cap)) == NULL)
			abort();
	}
	memcpy(t->s + t->len, s, len);
	t->len += len;
	t->s[t->len++] = mark;
}

static void
write_file(const char *data, size_t len)
{
	FILE	*f;

	if ((f = fopen(path, "wb")) == NULL ||
	    (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		abort();
}

/* The lines of the file read whole; -1 on a reader error. */
static int
read_whole(size_t line_max, struct text *t)
{
	struct reader	 r;
	const char	*line;
	size_t		 len;
	int		 rc;

	if (reader_open(&r, path, NULL, line_max, 0) == -1)
		abort();
	while ((rc = reader_next(&r, &line, &len)) > 0)
		if (rc == READER_LINE)
			put(t, line, len, '\n');
		else
			put(t, "", 0, '!');
	reader_close(&r);
	return rc;
}

/*
 * The lines of [a, b) of the file's first z bytes, added to t; first and
 * tell get where its first line started and where it stopped. -1 on a
 * reader error.
 */
static int
read_range(size_t line_max, uint64_t a, uint64_t b, uint64_t z,
    struct text *t, uint64_t *first, uint64_t *tell)
{
	struct reader	 r;
	const char	*line;
	size_t		 len;
	int		 rc;

	if (reader_open(&r, path, NULL, line_max, 0) == -1 ||
	    reader_range(&r, a, b, z) == -1)
		abort();
	while ((rc = reader_next(&r, &line, &len)) > 0)
		if (rc == READER_LINE)
			put(t, line, len, '\n');
		else
			put(t, "", 0, '!');
	*tell = reader_tell(&r);
	*first = r.align ? *tell : r.first;
	reader_close(&r);
	return rc;
}

/*
 * Every range size in sizes (0 ends the list; 1..n when sizes is NULL):
 * the ranges' lines are the whole file's, and their bytes tile it. With
 * tail, the file is written with tail appended and the ranges given the
 * size without it. Returns the number of sizes that failed.
 */
static int
check(const char *what, const char *data, size_t n, size_t line_max,
    const uint64_t *sizes, const char *tail)
{
	struct text	 whole = { NULL, 0, 0 }, parts = { NULL, 0, 0 };
	uint64_t	 s, a, b, first, tell, prev, sum;
	size_t		 k;
	int		 bad = 0, wrc, rc;
	char		*buf;

	write_file(data, n);
	wrc = read_whole(line_max, &whole);
	if (tail != NULL) {
		if ((buf = malloc(n + strlen(tail))) == NULL)
			abort();
		memcpy(buf, data, n);
		memcpy(buf + n, tail, strlen(tail));
		write_file(buf, n + strlen(tail));
		free(buf);
	}
	for (k = 0;; k++) {
		s = sizes != NULL ? sizes[k] : k + 1;
		if (s == 0 || (sizes == NULL && s > n + 2))
			break;
		parts.len = 0;
		sum = 0;
		prev = 0;
		rc = READER_END;
		for (a = 0; a < n && rc == READER_END; a = b) {
			b = a + s < n ? a + s : n;
			rc = read_range(line_max, a, b, n, &parts, &first,
			    &tell);
			/*
			 * Each range starts where the one before stopped,
			 * but one that owns nothing (inside a long line).
			 */
			if (tell == first)
				continue;
			if (first != prev || tell < first) {
				diag("%s: size %llu: range [%llu, %llu) "
				    "owns [%llu, %llu), the one before "
				    "stopped at %llu", what,
				    (unsigned long long)s,
				    (unsigned long long)a,
				    (unsigned long long)b,
				    (unsigned long long)first,
				    (unsigned long long)tell,
				    (unsigned long long)prev);
				rc = READER_ERROR;
			}
			sum += tell - first;
			prev = tell;
		}
		if (rc != wrc || sum != n || parts.len != whole.len ||
		    memcmp(parts.s, whole.s, whole.len) != 0) {
			if (bad++ < 3)
				diag("%s: range size %llu: %zu bytes of lines "
				    "(whole: %zu), %llu bytes owned of %zu",
				    what, (unsigned long long)s, parts.len,
				    whole.len, (unsigned long long)sum, n);
		}
	}
	free(whole.s);
	free(parts.s);
	return bad;
}

/* A pseudo-random byte source, the same on every run. */
static uint32_t	seed = 12345;

static uint32_t
rnd(void)
{
	seed = seed * 1103515245 + 12345;
	return seed >> 8;
}

/* Lines of random lengths and content, some CRLF, NULs, empty lines. */
static char *
nasty(size_t n, size_t longest)
{
	char	*d;
	size_t	 i = 0, len, j;

	if ((d = malloc(n)) == NULL)
		abort();
	while (i < n) {
		switch (rnd() % 8) {
		case 0:
			len = 0;
			break;
		case 1:
			len = rnd() % (longest + 1);
			break;
		default:
			len = rnd() % 40;
			break;
		}
		for (j = 0; j < len && i < n; j++)
			d[i++] = rnd() % 16 == 0 ? '\0' : (char)('a' + rnd() % 26);
		if (i < n && rnd() % 4 == 0)
			d[i++] = '\r';
		if (i < n)
			d[i++] = '\n';
	}
	return d;
}

/*
 * The worker's own check, on which the counts rely whatever the listing
 * said: a gzip file given as three byte ranges counts its lines once, all
 * of them in the range at 0, the others ANALYSIS_NOTHING.
 */
static void
test_gzip_ranges(void)
{
	struct analysis_opts	 o;
	struct analysis_range	 rg;
	struct file_stats	 st;
	struct logformat	*lf;
	struct filter		*flt;
	struct counts		*c;
	struct stat		 sb;
	gzFile			 gz;
	char			 err[256];
	uint64_t		 step;
	int			 i, rc[3], nlines = 500;
	uint64_t		 lines[3], total[3];

	if ((gz = gzopen(path, "wb")) == NULL)
		abort();
	for (i = 0; i < nlines; i++)
		gzprintf(gz, "10.0.0.%d - - [10/Oct/2023:13:55:36 +0000] "
		    "\"GET /g/%d HTTP/1.1\" 200 12 \"-\" \"t/1.0\"\n", i % 250,
		    i % 7);
	if (gzclose(gz) != Z_OK || stat(path, &sb) == -1 ||
	    (lf = logformat_compile(NULL, err, sizeof err)) == NULL ||
	    (flt = filter_from_json(NULL, err, sizeof err)) == NULL ||
	    (c = counts_new()) == NULL)
		abort();
	memset(&o, 0, sizeof o);
	o.fmt = lf;
	o.flt = flt;
	o.range = &rg;
	rg.size = (uint64_t)sb.st_size;
	rg.dev = (uint64_t)sb.st_dev;
	rg.ino = (uint64_t)sb.st_ino;
	rg.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
	    sb.st_mtim.tv_nsec;
	step = rg.size / 3;
	for (i = 0; i < 3; i++) {
		rg.off = (uint64_t)i * step;
		rg.end = i < 2 ? (uint64_t)(i + 1) * step : rg.size;
		memset(&st, 0, sizeof st);
		rc[i] = analysis_file(path, &o, c, &st, NULL);
		lines[i] = st.lines;
		total[i] = counts_total(c);
	}
	ok(rc[0] == 0 && lines[0] == (uint64_t)nlines && total[0] ==
	    (uint64_t)nlines, "a gzip file in ranges: the range at 0 reads "
	    "it whole (%d lines)", nlines);
	ok(rc[1] == ANALYSIS_NOTHING && rc[2] == ANALYSIS_NOTHING &&
	    lines[1] == 0 && lines[2] == 0 && total[2] == (uint64_t)nlines,
	    "a gzip file in ranges: the others read nothing, count nothing");
	counts_free(c);
	filter_free(flt);
	logformat_free(lf);
}

int
main(void)
{
	static const struct {
		const char	*what;
		const char	*data;
		size_t		 line_max;
	} cases[] = {
		{ "short lines", "a\nbb\nccc\ndddd\neeeee\n", 64 },
		{ "CRLF", "GET /a\r\nGET /bb\r\n\r\nx\r\n", 64 },
		{ "no final newline", "one\ntwo\nthree", 64 },
		{ "empty lines", "\n\n\na\n\n\nb\n\n", 64 },
		{ "one newline", "\n", 64 },
		{ "one byte", "x", 64 },
		{ "one line, no newline", "0123456789abcdefghij", 64 },
		{ "overlong lines", "short\n0123456789abcdef0123\nok\n"
		    "0123456789abcdef\r\n0123456789abcdefg\r\nend", 16 },
		{ "overlong last line", "a\n0123456789abcdef0123456789", 8 },
		{ "a lone CR", "a\rb\n\r\n\r", 64 },
	};
	uint64_t	 big[] = { 4093, 65536, 65537, 262143,
			    1048576, 1048577, 1500000, 4194304, 0 };
	uint64_t	 some[] = { 4096, 0 };
	char		*d;
	size_t		 i, n;
	int		 fd;

	if ((fd = mkstemp(tmpl)) == -1)
		abort();
	close(fd);
	snprintf(path, sizeof path, "%s", tmpl);

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		n = strlen(cases[i].data);
		ok(check(cases[i].what, cases[i].data, n, cases[i].line_max,
		    NULL, NULL) == 0, "%s: every range size from 1 to %zu",
		    cases[i].what, n + 2);
		ok(check(cases[i].what, cases[i].data, n, cases[i].line_max,
		    NULL, "appended\nafter\n") == 0, "%s: grown after "
		    "listing: nothing past the size read", cases[i].what);
	}
	/* NUL bytes inside (strlen would stop at them). */
	ok(check("NUL bytes", "a\0b\n\0\n\0\0\0\nz\0", 12, 64, NULL,
	    NULL) == 0, "NUL bytes: every range size");

	/* Many short nasty lines: every size up to the file's. */
	d = nasty(3000, 200);
	ok(check("nasty 3000", d, 3000, 64, NULL, NULL) == 0,
	    "random lines (overlong, CRLF, NUL, empty), 3000 bytes: every "
	    "range size from 1 to 3002");
	free(d);

	/* Past the reader's buffers: refills, lines longer than them. */
	n = 3 * 1048576 + 12345;
	d = nasty(n, 3000);
	memset(d + 1048570, 'L', 1500000);	/* one line of 1.5 MB */
	d[1048569] = '\n';
	ok(check("big", d, n, 65536, big, NULL) == 0,
	    "3 MB, a line longer than the buffer: range sizes from 4093 bytes "
	    "to 4 MB");
	ok(check("big, grown", d, n, 65536, some, "grown\n") == 0,
	    "3 MB grown after listing (4096-byte ranges): nothing past the size read");
	d[n - 1] = 'x';
	ok(check("big, no final newline", d, n, 1 << 20, big, NULL) == 0,
	    "3 MB, no final newline, a line over line_max: range sizes "
	    "from 4093 bytes");
	free(d);

	/* Ranges are refused on gzip files and when they make no sense. */
	{
		static const unsigned char gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0,
		    0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
		struct reader	r;

		write_file((const char *)gz, sizeof gz);
		ok(reader_open(&r, path, NULL, 64, 0) == 0 &&
		    reader_range(&r, 0, 10, 20) == -1 && errno == EINVAL,
		    "a gzip file: no range");
		reader_close(&r);
		write_file("abc\n", 4);
		ok(reader_open(&r, path, NULL, 64, 0) == 0 &&
		    reader_range(&r, 2, 2, 4) == -1 &&
		    reader_range(&r, 0, 5, 4) == -1,
		    "an empty range, or one past its size: refused");
		reader_close(&r);
	}
	test_gzip_ranges();

	unlink(path);
	return tap_done();
}
