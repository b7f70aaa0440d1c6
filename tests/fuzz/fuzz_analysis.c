/*
 * fuzz_analysis.c: analysis_file() on arbitrary file contents.
 *
 * The first input byte picks the log format, the line limit and the
 * filter; the rest is the file. It is analysed three ways: as a plain
 * file, as the same bytes deflated into gzip (one member, or two members
 * split at a point the input picks, with zero padding), and as raw bytes
 * behind the gzip magic (mostly corrupt). Checks: every line ends in
 * exactly one of malformed, filtered, counted; the counted lines are the
 * table's total; plain and gzip give the same statistics and counts.
 */
#include <errno.h>
#include <fcntl.h>
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

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const fuzz_formats[] = {
	"default", "common", "combined", "vhost_combined", "referer",
	"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\"",
	"regex:(?<host>\\S+) (?<request>[^|]*)\\|(?<time>[^|]*)\\|(?<status>\\d*)",
	"%t %r",
};
#define FUZZ_NFORMATS	(sizeof fuzz_formats / sizeof fuzz_formats[0])

static struct logformat	*fuzz_lf[FUZZ_NFORMATS];
static struct filter	*fuzz_flt[2];
static char		 fuzz_dir[] = "/tmp/fuzz_analysis.XXXXXX";
static char		 fuzz_file[64];

/* Remove the temporary file and directory when the fuzzer exits. */
static void
fuzz_cleanup(void)
{
	unlink(fuzz_file);
	rmdir(fuzz_dir);
}

static void
fuzz_init(void)
{
	json_t	*spec;
	char	 err[256];
	size_t	 i;

	if (mkdtemp(fuzz_dir) == NULL)
		abort();
	snprintf(fuzz_file, sizeof fuzz_file, "%s/log", fuzz_dir);
	atexit(fuzz_cleanup);
	for (i = 0; i < FUZZ_NFORMATS; i++)
		if ((fuzz_lf[i] = logformat_compile(fuzz_formats[i], err,
		    sizeof err)) == NULL)
			abort();
	spec = json_pack("{s:s,s:[s,i],s:[s],s:s}", "under", "/book",
	    "status", "2xx", 404, "methods", "GET", "since",
	    "2000-01-01T00:00:00Z");
	if (spec == NULL || (fuzz_flt[1] = filter_from_json(spec, err,
	    sizeof err)) == NULL)
		abort();
	json_decref(spec);
}

static void
fuzz_write(const void *a, size_t alen, const void *b, size_t blen)
{
	int	 fd;

	if ((fd = open(fuzz_file, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		abort();
	if ((alen > 0 && write(fd, a, alen) != (ssize_t)alen) ||
	    (blen > 0 && write(fd, b, blen) != (ssize_t)blen))
		abort();
	close(fd);
}

/* One gzip member of data into out (capacity cap); its length. */
static size_t
fuzz_gzip(const uint8_t *data, size_t len, uint8_t *out, size_t cap)
{
	z_stream	 zs;

	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zs.next_in = (Bytef *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	deflateEnd(&zs);
	return cap - zs.avail_out;
}

/* Run the pipeline on the file; check the statistics add up. */
static int
fuzz_run(const struct analysis_opts *o, struct counts *c,
    struct file_stats *st)
{
	int	 rc;

	rc = analysis_file(fuzz_file, o, c, st, NULL);
	if (rc != 0 && rc != -1)
		abort();
	if (st->flags & STATS_FAILED)
		abort();	/* a regular file always opens */
	if (st->lines != st->malformed + st->filtered + st->counted ||
	    st->matched != st->filtered + st->counted ||
	    counts_total(c) != st->counted)
		abort();
	if (rc == -1 && st->error[0] == '\0')
		abort();
	if (memchr(st->error, '\0', sizeof st->error) == NULL)
		abort();
	return rc;
}

static int
fuzz_same(const char *key, size_t len, uint64_t n, void *arg)
{
	return counts_get(arg, key, len) != n;
}

static void
fuzz_compare(const struct file_stats *a, struct counts *ca,
    const struct file_stats *b, struct counts *cb)
{
	if (a->lines != b->lines || a->matched != b->matched ||
	    a->malformed != b->malformed || a->filtered != b->filtered ||
	    a->counted != b->counted || a->raw_bytes != b->raw_bytes ||
	    counts_size(ca) != counts_size(cb) ||
	    counts_foreach(ca, fuzz_same, cb) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 init;
	static const size_t	 line_maxes[4] = { 0, 1, 40, 200 };
	struct analysis_opts	 o;
	struct file_stats	 st1, st2;
	struct counts		*c1, *c2;
	uint8_t			*gz, sel, split;
	size_t			 cap, n1, n2;
	json_t			*j;

	if (!init) {
		fuzz_init();
		init = 1;
	}
	if (size < 2)
		return 0;
	sel = data[0];
	split = data[1];
	data += 2;
	size -= 2;
	memset(&o, 0, sizeof o);
	o.fmt = fuzz_lf[sel % FUZZ_NFORMATS];
	o.line_max = line_maxes[(sel >> 3) & 3];
	o.flt = fuzz_flt[(sel >> 5) & 1];
	if ((c1 = counts_new()) == NULL || (c2 = counts_new()) == NULL)
		abort();

	/* Plain. */
	fuzz_write(data, size, NULL, 0);
	fuzz_run(&o, c1, &st1);
	if ((j = analysis_stats_json(fuzz_file, &st1)) == NULL)
		abort();
	json_decref(j);
	/* Raw bytes behind the gzip magic have no reason to be a stream. */
	if (size == 0 || data[0] != 0x1f) {
		cap = 2 * size + 256;
		if ((gz = malloc(cap)) == NULL)
			abort();
		/* One member: the same result as the plain file. */
		n1 = fuzz_gzip(data, size, gz, cap);
		fuzz_write(gz, n1, NULL, 0);
		if (fuzz_run(&o, c2, &st2) != 0 || !(st2.flags & STATS_GZIP))
			abort();
		fuzz_compare(&st1, c1, &st2, c2);
		/* Two members and zero padding: the same again. */
		n1 = fuzz_gzip(data, split % (size + 1), gz, cap);
		n2 = fuzz_gzip(data + split % (size + 1),
		    size - split % (size + 1), gz + n1, cap - n1);
		memset(gz + n1 + n2, 0, 7);
		fuzz_write(gz, n1 + n2 + 7, NULL, 0);
		counts_clear(c2);
		if (fuzz_run(&o, c2, &st2) != 0)
			abort();
		fuzz_compare(&st1, c1, &st2, c2);
		/* Truncated: partial, never more than the whole. */
		if (n1 + n2 > 1) {
			fuzz_write(gz, (n1 + n2) / 2, NULL, 0);
			counts_clear(c2);
			if (fuzz_run(&o, c2, &st2) == 0 && (n1 + n2) / 2 != n1)
				abort();
			if (st2.counted > st1.counted + 1)
				abort();
		}
		free(gz);
	}
	/* Raw bytes behind the magic. */
	fuzz_write("\x1f\x8b", 2, data, size);
	counts_clear(c2);
	fuzz_run(&o, c2, &st2);

	counts_free(c1);
	counts_free(c2);
	return 0;
}
