/*
 * analysis.c: one file task, the whole pipeline.
 *
 * reader (lines) -> logformat (fields) -> access (request path, time) ->
 * filter -> counts. Every line ends in exactly one of malformed, filtered
 * or counted; matched = filtered + counted. The only allocations are per
 * file (the reader's buffers and one scratch line); the last time string
 * and its value are remembered, as consecutive lines mostly share it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "analysis.h"
#include "counts.h"
#include "filter.h"
#include "logformat.h"
#include "reader.h"

/* The last %t string seen and what it parsed to. */
struct time_cache {
	char	 s[64];
	size_t	 len;		/* 0: empty */
	int	 ok;
	int64_t	 t;
};

/* access_time() through the cache; -1 when the time is invalid. */
static int
analysis_time(struct time_cache *tc, const char *s, size_t len, int64_t *t)
{
	if (len == tc->len && len > 0 && memcmp(s, tc->s, len) == 0) {
		*t = tc->t;
		return tc->ok ? 0 : -1;
	}
	tc->ok = access_time(s, len, &tc->t) == 0;
	if (len < sizeof tc->s) {
		memcpy(tc->s, s, len);
		tc->len = len;
	} else
		tc->len = 0;
	*t = tc->t;
	return tc->ok ? 0 : -1;
}

int
analysis_file(const char *path, const struct analysis_opts *o,
    struct counts *out, struct file_stats *st)
{
	struct reader		 r;
	struct access		 a;
	struct request		 req;
	struct time_cache	 tc;
	struct filter		*own = NULL;
	const struct filter	*flt = o->flt;
	const char		*line;
	char			*scratch = NULL, err[128];
	size_t			 len, line_max;
	int64_t			 t;
	int			 rc, status, need_status, ret = -1;

	memset(st, 0, sizeof *st);
	memset(&tc, 0, sizeof tc);
	line_max = o->line_max != 0 ? o->line_max : ANALYSIS_LINE_MAX;
	if (reader_open(&r, path, o->roots, line_max,
	    o->no_hardlinks ? READER_NO_HARDLINKS : 0) == -1) {
		snprintf(st->error, sizeof st->error, "%s", r.error);
		st->failed = 1;
		goto out;
	}
	if (flt == NULL && (flt = own = filter_from_json(NULL, err,
	    sizeof err)) == NULL) {
		snprintf(st->error, sizeof st->error, "%s", err);
		st->failed = 1;
		goto out;
	}
	/* Two halves: the rebuilt request target, then the referer. */
	if ((scratch = malloc(2 * (line_max + 1))) == NULL) {
		snprintf(st->error, sizeof st->error, "%s", strerror(errno));
		st->failed = 1;
		goto out;
	}
	need_status = (filter_needs(flt) & FILTER_NEEDS_STATUS) != 0;
	st->gzip = r.gzip;
	while ((rc = reader_next(&r, &line, &len)) > 0) {
		st->lines++;
		if (rc == READER_OVERLONG ||
		    logformat_match(o->fmt, line, len, &a) != 1) {
			st->malformed++;
			continue;
		}
		if (a.request == NULL && a.path == NULL) {
			/* A regex whose request group took no part. */
			st->malformed++;
			continue;
		}
		if (a.request != NULL) {
			if (access_request(a.request, a.request_len, scratch,
			    &req) == -1) {
				st->malformed++;
				continue;
			}
		} else {
			req.method = NULL;
			req.method_len = 0;
			req.path = a.path;
			req.path_len = a.path_len;
		}
		/* The seed parses the referer as a URL too, and may fail. */
		if (a.referer != NULL && !access_url_ok(a.referer,
		    a.referer_len, scratch + line_max + 1)) {
			st->malformed++;
			continue;
		}
		t = INT64_MIN;
		if (a.time != NULL && analysis_time(&tc, a.time, a.time_len,
		    &t) == -1) {
			st->malformed++;
			continue;
		}
		st->matched++;
		status = need_status ? access_status(a.status, a.status_len) :
		    -1;
		if (!filter_path(flt, req.path, req.path_len) ||
		    !filter_line(flt, req.method, req.method_len, status, t)) {
			st->filtered++;
			continue;
		}
		if (counts_add(out, req.path, req.path_len, 1) == -1) {
			snprintf(st->error, sizeof st->error, "counts: %s",
			    strerror(errno));
			st->partial = 1;
			goto out;
		}
		st->counted++;
	}
	if (rc == READER_ERROR) {
		snprintf(st->error, sizeof st->error, "%s", r.error);
		st->partial = 1;
		goto out;
	}
	ret = 0;
out:
	st->bytes = r.bytes;
	st->raw_bytes = r.raw_bytes;
	reader_close(&r);
	filter_free(own);
	free(scratch);
	return ret;
}

/* A file name (or message) as JSON: invalid UTF-8 as %XX, like counts keys. */
static json_t *
analysis_name(const char *s)
{
	json_t	*j;
	char	*enc;
	size_t	 len;

	if ((enc = counts_json_key(s, strlen(s), &len)) == NULL)
		return NULL;
	j = json_stringn_nocheck(enc, len);
	free(enc);
	return j;
}

json_t *
analysis_stats_json(const char *path, const struct file_stats *st)
{
	return json_pack("{s:o*,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:b}",
	    "path", analysis_name(path),
	    "bytes", (json_int_t)st->bytes,
	    "raw_bytes", (json_int_t)st->raw_bytes,
	    "lines", (json_int_t)st->lines,
	    "matched", (json_int_t)st->matched,
	    "malformed", (json_int_t)st->malformed,
	    "filtered", (json_int_t)st->filtered,
	    "counted", (json_int_t)st->counted,
	    "error", st->error[0] != '\0' ? analysis_name(st->error) :
	    json_null(),
	    "partial", st->partial);
}
