/*
 * merge.c: the MERGE step (see merge.h).
 *
 * Inputs are mapped and checked whole by partial_open before any key is
 * looked at, so a damaged input is refused, named by its index, and
 * nothing of it is merged. Keys come out of a heap of cursors in key
 * order, equal keys summed. An intermediate merge streams them into a new
 * partial; the final merge keeps them (pointers into the mapped inputs)
 * to order them by count, or keeps only the best N in a heap, then writes
 * the result through a plain buffer, never a tree of JSON nodes.
 */
#include <config.h>

#include "merge.h"

#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define MW_BUF	(1u << 20)

/* A buffered writer to a file descriptor; the first error sticks. */
struct mw {
	int		 fd;
	int		 err;
	char		*buf;
	size_t		 len;
	uint64_t	 total;
};

static void
mw_flush(struct mw *w)
{
	size_t	off = 0;
	ssize_t	n;

	while (w->err == 0 && off < w->len) {
		n = write(w->fd, w->buf + off, w->len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->err = n == 0 ? EIO : errno;
			break;
		}
		off += (size_t)n;
	}
	w->total += off;
	w->len = 0;
}

/* Room for n more bytes at w->buf + w->len (n <= MW_BUF). */
static char *
mw_room(struct mw *w, size_t n)
{
	if (MW_BUF - w->len < n)
		mw_flush(w);
	return w->buf + w->len;
}

static void
mw_put(struct mw *w, const void *p, size_t n)
{
	const char	*s = p;
	size_t		 k;

	while (n > 0) {
		k = n < MW_BUF ? n : MW_BUF;
		memcpy(mw_room(w, k), s, k);
		w->len += k;
		s += k;
		n -= k;
	}
}

static void
mw_str(struct mw *w, const char *s)
{
	mw_put(w, s, strlen(s));
}

/* Decimal digits of v at out; the length. */
static size_t
mw_u64(char *out, uint64_t v)
{
	char	tmp[24];
	size_t	n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* A jansson value, compact, as json_dumps writes it. */
static void
mw_json(struct mw *w, json_t *v)
{
	char	*s;

	if (v == NULL || (s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(6))) == NULL) {
		if (w->err == 0)
			w->err = ENOMEM;
		json_decref(v);
		return;
	}
	mw_str(w, s);
	free(s);
	json_decref(v);
}

size_t
merge_json_escape(char *out, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		out[o++] = '\\';
		switch (c) {
		case '"':  out[o++] = '"'; break;
		case '\\': out[o++] = '\\'; break;
		case '\b': out[o++] = 'b'; break;
		case '\f': out[o++] = 'f'; break;
		case '\n': out[o++] = 'n'; break;
		case '\r': out[o++] = 'r'; break;
		case '\t': out[o++] = 't'; break;
		default:
			out[o++] = 'u';
			out[o++] = '0';
			out[o++] = '0';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		}
	}
	return o;
}

/* --- the k-way merge --- */

struct mcur {
	struct partial_cursor	c;
	size_t			idx;
};

struct mheap {
	struct mcur	**h;
	size_t		  n;
};

static int
mcur_less(const struct mcur *a, const struct mcur *b)
{
	int	r = partial_keycmp(a->c.key, a->c.len, b->c.key, b->c.len);

	return r < 0 || (r == 0 && a->idx < b->idx);
}

static void
mheap_down(struct mheap *h, size_t i)
{
	struct mcur	*t;
	size_t		 l, m;

	for (;;) {
		l = 2 * i + 1;
		if (l >= h->n)
			return;
		m = l + 1 < h->n && mcur_less(h->h[l + 1], h->h[l]) ? l + 1 : l;
		if (!mcur_less(h->h[m], h->h[i]))
			return;
		t = h->h[i];
		h->h[i] = h->h[m];
		h->h[m] = t;
		i = m;
	}
}

/*
 * The next merged key: the smallest key of the cursors, with the sum of
 * its counts. 0 at the end.
 */
static int
mheap_next(struct mheap *h, const char **key, size_t *len, uint64_t *n)
{
	struct mcur	*top;
	uint64_t	 sum;

	if (h->n == 0)
		return 0;
	top = h->h[0];
	*key = top->c.key;
	*len = top->c.len;
	if (h->n == 1) {
		/* One input: its keys are strictly increasing (checked). */
		*n = top->c.n;
		if (!partial_cursor_next(&top->c))
			h->n = 0;
		return 1;
	}
	sum = 0;
	for (;;) {
		top = h->h[0];
		if (partial_keycmp(top->c.key, top->c.len, *key, *len) != 0)
			break;
		sum += top->c.n;
		if (!partial_cursor_next(&top->c)) {
			h->h[0] = h->h[--h->n];
			if (h->n == 0)
				break;
		}
		mheap_down(h, 0);
	}
	*n = sum;
	return 1;
}

/* --- ordering for the final merge --- */

struct oentry {
	const char	*key;
	size_t		 len;
	uint64_t	 n;
};

/*
 * Count descending, keeping the key order of equal counts: a stable LSD
 * radix sort of the entries (already in key order) on ~count, 16 bits a
 * pass, skipping passes where every entry has the same digit.
 */
static int
order_by_count(struct oentry *e, size_t n)
{
	struct oentry	*tmp, *src = e, *dst;
	size_t		*cnt, i, pass;
	uint64_t	 any = 0, all = ~(uint64_t)0;
	int		 rc = -1;

	if (n < 2)
		return 0;
	/* The bits where counts differ: a digit with none needs no pass. */
	for (i = 0; i < n; i++) {
		any |= e[i].n;
		all &= e[i].n;
	}
	if (any == all)
		return 0;
	if ((cnt = malloc(65537 * sizeof *cnt)) == NULL)
		return -1;
	tmp = dst = NULL;	/* made by the first pass that moves entries */
	for (pass = 0; pass < 4; pass++) {
		unsigned	shift = (unsigned)pass * 16;

		if ((((any ^ all) >> shift) & 0xffff) == 0)
			continue;
		memset(cnt, 0, 65537 * sizeof *cnt);
		for (i = 0; i < n; i++)
			cnt[((~src[i].n >> shift) & 0xffff) + 1]++;
		if (tmp == NULL) {
			if ((tmp = malloc(n * sizeof *tmp)) == NULL)
				goto out;
			dst = tmp;
		}
		for (i = 1; i <= 65536; i++)
			cnt[i] += cnt[i - 1];
		for (i = 0; i < n; i++)
			dst[cnt[(~src[i].n >> shift) & 0xffff]++] = src[i];
		struct oentry *t = src;
		src = dst;
		dst = t;
	}
	if (src != e)
		memcpy(e, src, n * sizeof *e);
	rc = 0;
out:
	free(tmp);
	free(cnt);
	return rc;
}

/* Worse for the top N: fewer hits, or as many and a later key. */
static int
oentry_worse(const struct oentry *a, const struct oentry *b)
{
	if (a->n != b->n)
		return a->n < b->n;
	return partial_keycmp(a->key, a->len, b->key, b->len) > 0;
}

static int
oentry_cmp_out(const void *x, const void *y)
{
	const struct oentry	*a = x, *b = y;

	if (a->n != b->n)
		return a->n < b->n ? 1 : -1;
	return partial_keycmp(a->key, a->len, b->key, b->len);
}

/* Min-heap on "worse" at the root, of at most top entries. */
static void
top_down(struct oentry *h, size_t n, size_t i)
{
	struct oentry	t;
	size_t		l, m;

	for (;;) {
		l = 2 * i + 1;
		if (l >= n)
			return;
		m = l + 1 < n && oentry_worse(&h[l + 1], &h[l]) ? l + 1 : l;
		if (!oentry_worse(&h[m], &h[i]))
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void
top_up(struct oentry *h, size_t i)
{
	struct oentry	t;

	while (i > 0 && oentry_worse(&h[i], &h[(i - 1) / 2])) {
		t = h[i];
		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/* --- sources --- */

struct msrc {
	const struct partial_source	*s;
};

static int
msrc_cmp(const void *x, const void *y)
{
	const struct partial_source	*a = ((const struct msrc *)x)->s;
	const struct partial_source	*b = ((const struct msrc *)y)->s;
	int				 r;

	if ((r = partial_keycmp(a->path, a->path_len, b->path,
	    b->path_len)) != 0)
		return r;
	return (a->id.off > b->id.off) - (a->id.off < b->id.off);
}

static void
merr(struct merge_result *mr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
merr(struct merge_result *mr, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(mr->error, sizeof mr->error, fmt, ap);
	va_end(ap);
}

/*
 * The input whose sources hold all[k] (the inputs' sources come first in
 * all, in input order); SIZE_MAX for an extra source.
 */
static size_t
merge_input_of(struct partial *const *in, size_t n, size_t k)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (k < in[i]->nsources)
			return i;
		k -= in[i]->nsources;
	}
	return SIZE_MAX;
}

/* Add a range's statistics to its file's: counts, flags, first error. */
static void
stats_add(struct file_stats *a, const struct file_stats *b)
{
	uint32_t	ca, cb;

	analysis_stats_add(a, b);
	ca = STATS_CACHE(a->flags);
	cb = STATS_CACHE(b->flags);
	/* Failed beside a range that counted: the file is partial. */
	if ((a->flags & STATS_FAILED) != (b->flags & STATS_FAILED))
		a->flags = (a->flags & ~STATS_FAILED) | STATS_PARTIAL;
	else
		a->flags |= b->flags & STATS_FAILED;
	a->flags |= b->flags & ~STATS_FAILED;
	/* The cache status is a value: the least cached of the ranges. */
	a->flags = STATS_CACHE_SET(a->flags, ca == 0 || (cb != 0 && cb < ca) ?
	    cb : ca);
	if (a->error[0] == '\0')
		memcpy(a->error, b->error, sizeof a->error);
}

/* The per-file entries, totals and counts of a final result. */
static void
merge_write_result(struct mw *w, const struct merge_opts *o,
    struct msrc *src, size_t nsrc, const struct oentry *e, size_t ne,
    uint64_t distinct)
{
	uint64_t	 sum[7] = { 0 };
	size_t		 i, k, nfiles, failed = 0, partial = 0, cap = 0;
	char		*esc = NULL, *path, *p;
	struct timeval	 now;

	if (o->head != NULL) {
		gettimeofday(&now, NULL);
		mw_str(w, o->head);
		mw_str(w, ",\"finished\":");
		mw_json(w, json_integer((json_int_t)now.tv_sec));
		mw_str(w, ",\"elapsed\":");
		mw_json(w, json_real((double)((int64_t)now.tv_sec * 1000000 +
		    now.tv_usec - o->start_usec) / 1e6));
	} else
		mw_str(w, "{\"ok\":true");
	mw_str(w, ",\"files\":[");
	for (i = 0, nfiles = 0; i < nsrc; i = k) {
		struct file_stats	 st = src[i].s->st;
		const char		*fp = src[i].s->path;
		size_t			 plen = src[i].s->path_len;

		/*
		 * A file analysed as several byte ranges (or grown, in
		 * parts) is one entry: its ranges' statistics summed, failed
		 * or partial if any range was, the first error kept.
		 */
		for (k = i + 1; k < nsrc && src[k].s->path_len == plen &&
		    memcmp(src[k].s->path, fp, plen) == 0; k++)
			stats_add(&st, &src[k].s->st);
		if ((path = strndup(fp, plen)) == NULL) {
			w->err = ENOMEM;
			return;
		}
		if (nfiles++ > 0)
			mw_put(w, ",", 1);
		mw_json(w, analysis_stats_json(path, &st));
		free(path);
		sum[0] += st.bytes;
		sum[1] += st.raw_bytes;
		sum[2] += st.lines;
		sum[3] += st.matched;
		sum[4] += st.malformed;
		sum[5] += st.filtered;
		sum[6] += st.counted;
		if (st.flags & STATS_FAILED)
			failed++;
		else if (st.flags & STATS_PARTIAL)
			partial++;
	}
	mw_str(w, "],\"totals\":");
	mw_json(w, json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
	    "files", (json_int_t)nfiles, "failed", (json_int_t)failed,
	    "partial", (json_int_t)partial,
	    "bytes", (json_int_t)sum[0], "raw_bytes", (json_int_t)sum[1],
	    "lines", (json_int_t)sum[2], "matched", (json_int_t)sum[3],
	    "malformed", (json_int_t)sum[4], "filtered", (json_int_t)sum[5],
	    "counted", (json_int_t)sum[6], "distinct", (json_int_t)distinct));
	mw_str(w, ",\"counts\":{");
	for (i = 0; i < ne && w->err == 0; i++) {
		if (e[i].len * 6 + 32 > cap) {
			free(esc);
			cap = e[i].len * 6 + 32;
			if ((esc = malloc(cap)) == NULL) {
				w->err = ENOMEM;
				break;
			}
		}
		p = esc;
		if (i > 0)
			*p++ = ',';
		*p++ = '"';
		p += merge_json_escape(p, e[i].key, e[i].len);
		*p++ = '"';
		*p++ = ':';
		p += mw_u64(p, e[i].n);
		mw_put(w, esc, (size_t)(p - esc));
	}
	free(esc);
	mw_str(w, "}}");
}

/* The trailer's checksum of a partial read whole. */
static uint64_t
merge_sum(const struct partial *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p->base[p->size - 8 + (size_t)i];
	return v;
}

/*
 * A cache entry as an input: the one the MAP task found (same checksum,
 * one source), its source now named as the job names the file. -1 when
 * it is not.
 */
static int
merge_entry_use(struct partial *p, const struct merge_entry *e)
{
	if (p->nsources != 1 || merge_sum(p) != e->sum)
		return -1;
	p->sources[0].path = e->path;
	p->sources[0].path_len = e->path_len;
	p->sources[0].st = e->st;
	return 0;
}

int
merge_run(const struct merge_opts *o, struct merge_result *mr)
{
	struct partial		**in = NULL;
	struct mcur		 *cur = NULL;
	struct mheap		  heap = { NULL, 0 };
	struct msrc		 *src = NULL;
	struct oentry		 *e = NULL, t;
	struct partial_source	 *all = NULL;
	struct partial_writer	 *pw = NULL;
	struct mw		  w;
	const char		 *settings = o->settings, *key;
	size_t			  settings_len = o->settings_len, i, j, k;
	size_t			  nsrc = 0, ne = 0, cap = 0, len;
	uint64_t		  n, distinct = 0;
	char			  why[200];
	int			  rc = -1;

	memset(mr, 0, sizeof *mr);
	mr->bad = SIZE_MAX;
	memset(&w, 0, sizeof w);
	w.fd = o->fd;
	if ((in = calloc(o->ninputs + 1, sizeof *in)) == NULL ||
	    (cur = calloc(o->ninputs + 1, sizeof *cur)) == NULL ||
	    (heap.h = calloc(o->ninputs + 1, sizeof *heap.h)) == NULL)
		goto nomem;
	for (i = 0; i < o->ninputs; i++) {
		if ((in[i] = partial_open(o->inputs[i], why, sizeof why)) == NULL) {
			mr->bad = i;
			merr(mr, "%s: %s", o->inputs[i], why);
			goto out;
		}
		if (o->entries != NULL && o->entries[i].on &&
		    merge_entry_use(in[i], &o->entries[i]) == -1) {
			mr->bad = i;
			merr(mr, "%s: the cache entry changed", o->inputs[i]);
			goto out;
		}
		if (o->entries != NULL && o->entries[i].memo) {
			if (in[i]->nsources != 1 ||
			    in[i]->sources[0].path_len != 0 ||
			    in[i]->sources[0].id.digest != o->entries[i].sum) {
				mr->bad = i;
				merr(mr, "%s: not the memo of its entries",
				    o->inputs[i]);
				goto out;
			}
			in[i]->nsources = 0;
		}
		if (o->no_sources)
			in[i]->nsources = 0;
		if (settings == NULL) {
			settings = in[i]->settings;
			settings_len = in[i]->settings_len;
		} else if (in[i]->settings_len != settings_len ||
		    memcmp(in[i]->settings, settings, settings_len) != 0) {
			mr->bad = i;
			merr(mr, "%s: made with other analysis settings",
			    o->inputs[i]);
			goto out;
		}
		nsrc += in[i]->nsources;
	}
	if (settings == NULL) {
		settings = "";
		settings_len = 0;
	}
	nsrc += o->nextra;
	if ((all = calloc(nsrc + 1, sizeof *all)) == NULL ||
	    (src = calloc(nsrc + 1, sizeof *src)) == NULL)
		goto nomem;
	for (i = 0, k = 0; i < o->ninputs; i++)
		for (j = 0; j < in[i]->nsources; j++)
			all[k++] = in[i]->sources[j];
	for (i = 0; i < o->nextra; i++)
		all[k++] = o->extra[i];
	for (i = 0; i < nsrc; i++)
		src[i].s = &all[i];
	qsort(src, nsrc, sizeof *src, msrc_cmp);
	for (i = 1; i < nsrc; i++) {
		const struct partial_source *a = src[i - 1].s, *b = src[i].s;

		if (a->path_len == b->path_len &&
		    memcmp(a->path, b->path, a->path_len) == 0 &&
		    b->id.off < a->id.end + (a->id.end == a->id.off)) {
			size_t ia = merge_input_of(in, o->ninputs,
			    (size_t)(a - all));
			size_t ib = merge_input_of(in, o->ninputs,
			    (size_t)(b - all));
			/* named by the later input that holds it (mr->bad is
			 * for a damaged input, which this is not) */
			size_t later = ia == SIZE_MAX || (ib != SIZE_MAX &&
			    ib > ia) ? ib : ia;

			if (later != SIZE_MAX && ia != SIZE_MAX &&
			    ib != SIZE_MAX && ia != ib)
				merr(mr, "%s: the same source twice, %s has it "
				    "too: %.*s", o->inputs[later],
				    o->inputs[later == ia ? ib : ia],
				    (int)(a->path_len > 150 ? 150 : a->path_len),
				    a->path);
			else if (later != SIZE_MAX)
				merr(mr, "%s: the same source twice: %.*s",
				    o->inputs[later],
				    (int)(a->path_len > 150 ? 150 : a->path_len),
				    a->path);
			else
				merr(mr, "the same source twice: %.*s",
				    (int)(a->path_len > 200 ? 200 : a->path_len),
				    a->path);
			goto out;
		}
	}

	for (i = 0; i < o->ninputs; i++) {
		partial_cursor_init(&cur[i].c, in[i]);
		cur[i].idx = i;
		if (partial_cursor_next(&cur[i].c))
			heap.h[heap.n++] = &cur[i];
	}
	for (i = heap.n; i-- > 0;)
		mheap_down(&heap, i);

	if (!o->final) {
		if ((pw = partial_writer_new(o->fd, settings, settings_len, all,
		    nsrc)) == NULL)
			goto nomem;
		while (mheap_next(&heap, &key, &len, &n))
			if (partial_put(pw, key, len, n) == -1)
				break;
		rc = partial_finish(pw, &mr->nkeys);
		pw = NULL;
		if (rc == -1)
			merr(mr, "writing the partial: %s", strerror(errno));
		goto out;
	}

	if ((w.buf = malloc(MW_BUF)) == NULL)
		goto nomem;
	if (o->top == 0) {
		/* Room for every key at once: at most the inputs' sum. */
		for (i = 0, cap = 0; i < o->ninputs; i++)
			cap += in[i]->nkeys < SIZE_MAX - cap ? in[i]->nkeys :
			    SIZE_MAX - cap;
		if (cap > 0 && (e = reallocarray(NULL, cap, sizeof *e)) == NULL)
			cap = 0;	/* grown as it goes instead */
	}
	while (mheap_next(&heap, &key, &len, &n)) {
		distinct++;
		t.key = key;
		t.len = len;
		t.n = n;
		if (o->top > 0) {
			if (ne < o->top) {
				if (ne == cap) {
					cap = cap * 2 + 64 < o->top ? cap * 2 + 64 :
					    o->top;
					if ((e = reallocarray(e, cap, sizeof *e)) ==
					    NULL)
						goto nomem;
				}
				e[ne] = t;
				top_up(e, ne++);
			} else if (oentry_worse(&e[0], &t)) {
				e[0] = t;
				top_down(e, ne, 0);
			}
			continue;
		}
		if (ne == cap) {
			struct oentry *ne_ = reallocarray(e, cap * 2 + 1024,
			    sizeof *e);

			if (ne_ == NULL)
				goto nomem;
			e = ne_;
			cap = cap * 2 + 1024;
		}
		e[ne++] = t;
	}
	if (o->top > 0) {
		/* (no keys: e is NULL, which qsort may not be given) */
		if (ne > 1)
			qsort(e, ne, sizeof *e, oentry_cmp_out);
	} else if (order_by_count(e, ne) == -1)
		goto nomem;
	mr->nkeys = distinct;
	merge_write_result(&w, o, src, nsrc, e, ne, distinct);
	mw_flush(&w);
	if (w.err != 0) {
		merr(mr, "writing the result: %s", strerror(w.err));
		goto out;
	}
	mr->bytes = w.total;
	rc = 0;
	goto out;
nomem:
	merr(mr, "out of memory");
out:
	partial_abort(pw);
	for (i = 0; in != NULL && i < o->ninputs; i++)
		partial_close(in[i]);
	free(in);
	free(cur);
	free(heap.h);
	free(src);
	free(all);
	free(e);
	free(w.buf);
	return rc;
}
