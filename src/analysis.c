/*
 * analysis.c: one file task, the whole pipeline.
 *
 * reader (lines) -> logformat (fields) -> access (request path, time) ->
 * filter -> counts. Every line ends in exactly one of malformed, filtered
 * or counted; matched = filtered + counted. The first malformed line is
 * kept, cut to STATS_SAMPLE bytes, to show what the format did not match. The only allocations are per
 * file (the reader's buffers, one scratch line and a batch of paths); the
 * last time string and its value are remembered, as consecutive lines
 * mostly share it. Paths are counted COUNTS_BATCH at a time (copied, as a
 * line's path lives only until the next line), which lets the table
 * fetch their slots from memory together.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

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

/*
 * s and c equal, len > 0: in words, as a %t is short and mostly the
 * same as the line before's, and a call to memcmp costs more.
 */
static inline int
analysis_same(const char *s, const char *c, size_t len)
{
	uint64_t	 a, b;
	size_t		 i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&a, s + i, 8);
		memcpy(&b, c + i, 8);
		if (a != b)
			return 0;
	}
	if (i == len)
		return 1;
	/* the last 8 bytes, overlapping (len < 8: byte by byte) */
	if (len >= 8) {
		memcpy(&a, s + len - 8, 8);
		memcpy(&b, c + len - 8, 8);
		return a == b;
	}
	for (; i < len; i++)
		if (s[i] != c[i])
			return 0;
	return 1;
}

/* access_time() through the cache; -1 when the time is invalid. */
static int
analysis_time(struct time_cache *tc, const char *s, size_t len, int64_t *t)
{
	if (len == tc->len && len > 0 && analysis_same(s, tc->s, len)) {
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

/* A malformed line: counted, and kept if it is the first. */
static void
analysis_malformed(struct file_stats *st, const char *line, size_t len)
{
	st->malformed++;
	if (st->sample_len > 0 || len == 0)
		return;
	st->sample_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	memcpy(st->sample, line, len < STATS_SAMPLE ? len : STATS_SAMPLE);
}

/*
 * Whether a request has the three words METHOD TARGET PROTOCOL; "-" and
 * the bytes of a TLS handshake sent to a plain HTTP port do not.
 */
static int
analysis_three_words(const char *s, size_t len)
{
	size_t	i, words = 0;

	for (i = 0; i < len && words < 3; i++)
		if (!ACCESS_IS_WS(s[i]) && (i == 0 || ACCESS_IS_WS(s[i - 1])))
			words++;
	return words >= 3;
}

/*
 * The identity of the file the reader has open: as fstat saw it at the
 * open, the range read [off, end), and a fingerprint of the bytes before
 * fp (the end of what was read).
 */
static void
analysis_identity(const struct reader *r, uint64_t off, uint64_t end,
    uint64_t fp, struct source_id *id)
{
	unsigned char	 buf[ANALYSIS_FPRINT];
	uint64_t	 from;
	ssize_t		 n;

	id->dev = (uint64_t)r->st.st_dev;
	id->ino = (uint64_t)r->st.st_ino;
	id->size = (uint64_t)r->st.st_size;
	id->mtime_ns = (int64_t)r->st.st_mtim.tv_sec * 1000000000 +
	    r->st.st_mtim.tv_nsec;
	id->ctime_ns = (int64_t)r->st.st_ctim.tv_sec * 1000000000 +
	    r->st.st_ctim.tv_nsec;
	id->off = off;
	id->end = end;
	from = fp > sizeof buf ? fp - sizeof buf : 0;
	do
		n = pread(r->fd, buf, (size_t)(fp - from), (off_t)from);
	while (n == -1 && errno == EINTR);
	id->fingerprint = n == (ssize_t)(fp - from) ?
	    XXH3_64bits(buf, (size_t)n) : 0;
}

/*
 * Whether the open file is still the one a range was listed as; -1 with
 * the error in st (the range is then partial: nothing of it read).
 */
static int
analysis_range_check(const struct reader *r, const struct analysis_range *rg,
    struct file_stats *st)
{
	int64_t	mtime = (int64_t)r->st.st_mtim.tv_sec * 1000000000 +
	    r->st.st_mtim.tv_nsec;

	if ((uint64_t)r->st.st_dev != rg->dev ||
	    (uint64_t)r->st.st_ino != rg->ino)
		snprintf(st->error, sizeof st->error, "replaced since the job "
		    "listed it (another inode)");
	else if ((uint64_t)r->st.st_size < rg->size)
		snprintf(st->error, sizeof st->error, "shrank since the job "
		    "listed it (%llu of %llu bytes)",
		    (unsigned long long)r->st.st_size,
		    (unsigned long long)rg->size);
	else if ((uint64_t)r->st.st_size == rg->size && mtime != rg->mtime_ns)
		snprintf(st->error, sizeof st->error, "modified since the job "
		    "listed it");
	else
		return 0;
	st->flags |= STATS_PARTIAL;
	return -1;
}

#define ANALYSIS_BATCH_BYTES	(64u << 10)	/* longer paths go alone */

/* Paths waiting to be counted, their bytes in buf. */
struct abatch {
	struct counts_key	 k[COUNTS_BATCH];
	size_t			 n;
	char			*buf;
	size_t			 used;
};

/* Count the batch's paths; -1 with st's error set. */
static int
analysis_flush(struct counts *out, struct abatch *b, struct file_stats *st)
{
	size_t	done;
	int	rc = 0;

	if (b->n == 0)
		return 0;
	if (counts_add_batch(out, b->k, b->n, &done) == -1) {
		snprintf(st->error, sizeof st->error, "counts: %s",
		    strerror(errno));
		st->flags |= STATS_PARTIAL;
		rc = -1;
	}
	st->counted += done;
	b->n = b->used = 0;
	return rc;
}

int
analysis_file(const char *path, const struct analysis_opts *o,
    struct counts *out, struct file_stats *st, struct source_id *id)
{
	struct reader		 r;
	struct access		 a;
	struct request		 req;
	struct time_cache	 tc;
	struct analysis_plan	 plan;
	struct filter		*own = NULL;
	const struct filter	*flt = o->flt;
	XXH3_state_t		*hs = NULL;
	const struct analysis_range *rg = o->range;
	const char		*line;
	char			*scratch = NULL, err[128];
	struct abatch		 b;
	size_t			 len, line_max;
	uint64_t		 first = 0, done = UINT64_MAX;
	int64_t			 t;
	int			 rc, status, need_status, ret = -1, ranged = 0;
	int			 defer = o->opened != NULL && rg == NULL;

	memset(st, 0, sizeof *st);
	memset(&b, 0, sizeof b);
	if (id != NULL)
		memset(id, 0, sizeof *id);
	memset(&tc, 0, sizeof tc);
	memset(&plan, 0, sizeof plan);
	line_max = o->line_max != 0 ? o->line_max : ANALYSIS_LINE_MAX;
	/* (with opened(), nothing is read before it has had its say) */
	if (reader_open(&r, path, o->roots, line_max,
	    (o->no_hardlinks ? READER_NO_HARDLINKS : 0) |
	    (o->no_ahead ? READER_NO_AHEAD : 0) |
	    (defer ? READER_DEFER : 0)) == -1) {
		snprintf(st->error, sizeof st->error, "%s", r.error);
		st->flags |= STATS_FAILED;
		goto out;
	}
	if (rg != NULL) {
		if (analysis_range_check(&r, rg, st) == -1)
			goto out;
		if (r.gzip && rg->off > 0) {
			/* Read whole by its range at 0: nothing of it here. */
			reader_close(&r);
			return ANALYSIS_NOTHING;
		}
		if (r.gzip)
			rg = NULL;	/* its range at 0 is the whole file */
		else if (reader_range(&r, rg->off, rg->end, rg->size) == -1) {
			snprintf(st->error, sizeof st->error, "seek: %s",
			    strerror(errno));
			st->flags |= STATS_FAILED;
			goto out;
		} else
			ranged = 1;
	}
	if (o->opened != NULL && (rc = o->opened(o->arg, r.fd, &r.st, r.gzip,
	    &plan)) == ANALYSIS_SERVED) {
		reader_close(&r);
		return ANALYSIS_SERVED;
	}
	if (defer && reader_start(&r) == -1) {
		plan.off = 0;
		snprintf(st->error, sizeof st->error, "%s", r.error);
		st->flags |= STATS_FAILED;
		goto out;
	}
	/*
	 * Resumed: a range from plan.off (a line start, where the cached
	 * lines end), or a grown file from its old end.
	 */
	if (ranged && plan.off >= rg->end) {
		done = plan.off;	/* the cached lines are all it owns */
		ret = 0;
		goto out;
	}
	if (plan.off > 0 && (ranged ? reader_range(&r, plan.off, rg->end,
	    rg->size) : reader_seek(&r, plan.off)) == -1) {
		snprintf(st->error, sizeof st->error, "seek: %s",
		    strerror(errno));
		st->flags |= STATS_FAILED;
		goto out;
	}
	/* The digest of the decompressed content: what open read, then on. */
	if ((o->digest || plan.digest || plan.hash_only) && plan.off == 0 &&
	    !ranged) {
		if ((hs = XXH3_createState()) == NULL ||
		    XXH3_64bits_reset(hs) == XXH_ERROR) {
			snprintf(st->error, sizeof st->error, "out of memory");
			st->flags |= STATS_FAILED;
			goto out;
		}
		(void)XXH3_64bits_update(hs, r.o.buf + r.o.start,
		    r.o.end - r.o.start);
		r.hash = hs;
	}
	if (plan.hash_only) {
		while ((rc = reader_next(&r, &line, &len)) > 0)
			st->lines++;
		goto end;
	}
	if (flt == NULL && (flt = own = filter_from_json(NULL, err,
	    sizeof err)) == NULL) {
		snprintf(st->error, sizeof st->error, "%s", err);
		st->flags |= STATS_FAILED;
		goto out;
	}
	/* Two halves: the rebuilt request target, then the referer. */
	if ((scratch = malloc(2 * (line_max + 1))) == NULL ||
	    (b.buf = malloc(ANALYSIS_BATCH_BYTES)) == NULL) {
		snprintf(st->error, sizeof st->error, "%s", strerror(errno));
		st->flags |= STATS_FAILED;
		goto out;
	}
	need_status = (filter_needs(flt) & FILTER_NEEDS_STATUS) != 0;
	if (r.gzip)
		st->flags |= STATS_GZIP;
	while ((rc = reader_next(&r, &line, &len)) > 0) {
		st->lines++;
		if (rc == READER_OVERLONG) {
			/* not buffered: nothing to show of it */
			st->malformed++;
			continue;
		}
		if (logformat_match(o->fmt, line, len, &a) != 1) {
			analysis_malformed(st, line, len);
			continue;
		}
		if (a.request == NULL && a.path == NULL) {
			/* A regex whose request group took no part. */
			analysis_malformed(st, line, len);
			continue;
		}
		if (a.request != NULL) {
			if (access_request(a.request, a.request_len, scratch,
			    &req) == -1) {
				analysis_malformed(st, line, len);
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
			analysis_malformed(st, line, len);
			continue;
		}
		t = INT64_MIN;
		if (a.time != NULL && analysis_time(&tc, a.time, a.time_len,
		    &t) == -1) {
			analysis_malformed(st, line, len);
			continue;
		}
		st->matched++;
		status = need_status ? access_status(a.status, a.status_len) :
		    -1;
		if (!filter_path(flt, req.path, req.path_len) ||
		    !filter_line(flt, req.method, req.method_len, status, t)) {
			st->filtered++;
			if (req.path_len == 0 && a.request != NULL &&
			    !analysis_three_words(a.request, a.request_len))
				st->not_request++;
			continue;
		}
		if ((b.n == COUNTS_BATCH ||
		    req.path_len > ANALYSIS_BATCH_BYTES - b.used) &&
		    analysis_flush(out, &b, st) == -1)
			goto out;
		if (req.path_len > ANALYSIS_BATCH_BYTES) {
			if (counts_add(out, req.path, req.path_len, 1) == -1) {
				snprintf(st->error, sizeof st->error,
				    "counts: %s", strerror(errno));
				st->flags |= STATS_PARTIAL;
				goto out;
			}
			st->counted++;
			continue;
		}
		memcpy(b.buf + b.used, req.path, req.path_len);
		b.k[b.n].key = b.buf + b.used;
		b.k[b.n].len = req.path_len;
		b.k[b.n++].n = 1;
		b.used += req.path_len;
	}
	if (analysis_flush(out, &b, st) == -1)
		goto out;
end:
	if (rc == READER_ERROR) {
		snprintf(st->error, sizeof st->error, "%s", r.error);
		st->flags |= STATS_PARTIAL;
		goto out;
	}
	/*
	 * A plain file ending before its size at the open was truncated (a
	 * range: before its end, or before the size it was listed with).
	 */
	if (ranged && !r.stopped && r.bytes < rg->size) {
		snprintf(st->error, sizeof st->error, "file shrank while being "
		    "read (%llu of %llu bytes)", (unsigned long long)r.bytes,
		    (unsigned long long)rg->size);
		st->flags |= STATS_PARTIAL;
		goto out;
	}
	if (!ranged && !r.gzip && r.bytes < (uint64_t)r.st.st_size) {
		snprintf(st->error, sizeof st->error, "file shrank while being "
		    "read (%llu of %llu bytes)", (unsigned long long)r.bytes,
		    (unsigned long long)r.st.st_size);
		st->flags |= STATS_PARTIAL;
		goto out;
	}
	ret = 0;
out:
	reader_join(&r);
	if (ranged) {
		/* The bytes of the lines it owns, not what was read ahead. */
		if (done == UINT64_MAX) {
			done = reader_tell(&r);
			first = r.align ? done : r.first;
		} else
			first = done;
		st->bytes = st->raw_bytes = done > first ? done - first : 0;
	} else if (rg != NULL) {
		st->bytes = st->raw_bytes = 0;
	} else {
		st->bytes = r.bytes - plan.off;
		st->raw_bytes = r.raw_bytes - plan.off;
	}
	if (id != NULL && r.st.st_mode != 0) {
		if (rg != NULL) {
			analysis_identity(&r, rg->off, rg->end, ranged ? done :
			    r.bytes, id);
			id->digest = ranged ? done : 0;
		} else
			analysis_identity(&r, plan.off, r.bytes, r.bytes, id);
		if (hs != NULL && ret == 0)
			id->digest = XXH3_64bits_digest(hs) | 1;
	}
	XXH3_freeState(hs);
	reader_close(&r);
	filter_free(own);
	free(scratch);
	free(b.buf);
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
	static const char *const cache_names[] = { NULL, "off", "miss",
	    "resumed", "content", "hit", NULL, NULL };
	const char	*cache = cache_names[STATS_CACHE(st->flags)];
	json_t		*j, *sample = json_null();
	char		*enc;
	size_t		 len;

	if (st->sample_len > 0 && (enc = counts_json_key(st->sample,
	    st->sample_len < STATS_SAMPLE ? st->sample_len : STATS_SAMPLE,
	    &len)) != NULL) {
		sample = json_stringn_nocheck(enc, len);
		free(enc);
	}
	j = json_pack("{s:o*,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:b,s:I,s:o*}",
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
	    "partial", (st->flags & (STATS_PARTIAL | STATS_FAILED)) ==
	    STATS_PARTIAL,
	    "not_request", (json_int_t)st->not_request,
	    "malformed_example", sample);
	if (j != NULL && cache != NULL &&
	    json_object_set_new(j, "cache", json_string(cache)) == -1) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void
analysis_stats_add(struct file_stats *a, const struct file_stats *b)
{
	a->bytes += b->bytes;
	a->raw_bytes += b->raw_bytes;
	a->lines += b->lines;
	a->matched += b->matched;
	a->malformed += b->malformed;
	a->filtered += b->filtered;
	a->counted += b->counted;
	a->not_request += b->not_request;
	if (a->sample_len == 0) {
		a->sample_len = b->sample_len;
		memcpy(a->sample, b->sample, sizeof a->sample);
	}
}
