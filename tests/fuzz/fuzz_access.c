/*
 * fuzz_access.c: access_request(), access_time(), access_status(),
 * access_url_ok() and access_iso_time() on arbitrary bytes. Each gets an
 * exact-size copy (and an exact-size scratch) so that ASan sees any read
 * or write past the end; the results are checked for consistency.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* 1 when [p, p + n) lies inside [base, base + len). */
static int
fuzz_inside(const char *p, size_t n, const char *base, size_t len)
{
	return p >= base && p <= base + len && n <= (size_t)(base + len - p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request	 r;
	struct tm	 tm;
	char		*s, *scratch;
	int64_t		 t, t2;
	time_t		 tt;
	int		 st;

	if ((s = malloc(size ? size : 1)) == NULL)
		return 0;
	if ((scratch = malloc(size ? size : 1)) == NULL) {
		free(s);
		return 0;
	}
	memcpy(s, data, size);

	memset(&r, 0, sizeof r);
	if (access_request(s, size, scratch, &r) == 0) {
		if (r.method == NULL || !fuzz_inside(r.method, r.method_len,
		    s, size) || r.method_len == 0)
			abort();
		if (r.path == NULL || (!fuzz_inside(r.path, r.path_len, s,
		    size) && !fuzz_inside(r.path, r.path_len, scratch, size)))
			abort();
		/* A path never keeps its ?query or #fragment. */
		if (memchr(r.path, '?', r.path_len) != NULL ||
		    memchr(r.path, '#', r.path_len) != NULL)
			abort();
	}

	if (access_time(s, size, &t) == 0) {
		/* Whatever the zone, the UTC time is a real instant. */
		if (t < -62135596800LL - 86400 || t > 253402300800LL + 86400)
			abort();
		tt = (time_t)t;
		if (gmtime_r(&tt, &tm) == NULL)
			abort();
	}

	st = access_status(s, size);
	if (st < -1 || (st >= 0 && (size == 0 || size > 9)))
		abort();

	(void)access_url_ok(s, size, scratch);

	if (access_iso_time(s, size, &t2) == 0) {
		/* Round trip through gmtime. */
		char	 back[32];

		tt = (time_t)t2;
		if (gmtime_r(&tt, &tm) == NULL ||
		    snprintf(back, sizeof back, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec) != 20 || size != 20 ||
		    memcmp(back, s, 20) != 0)
			abort();
	}
	free(scratch);
	free(s);
	return 0;
}
