/*
 * partial.c: the partial-result codec (see partial.h for the layout).
 *
 * Writing streams: a header and the sources, then keys as they come (a
 * merge never holds its output), then a trailer with the key count and a
 * checksum kept up to date as the buffer is flushed. Reading reads the
 * file (maps a big one) and checks all of it, checksum first, before
 * handing out anything, so a damaged partial is refused whole and never
 * half merged.
 */
#include <config.h>

#include "partial.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#define PW_BUF		(256u << 10)
#define PW_END		0xffffffffu	/* the length that marks the trailer */
#define HDR_LEN		(8 + 4 + 4 + 8 + 4 + 4)
#define SRC_FIXED	(4 + 9 * 8 + 7 * 8 + 4 + 4 + 8 + 4)
#define TRAILER_LEN	(4 + 8 + 8 + 8)
/*
 * Partials up to this size are read into memory rather than mapped: a
 * munmap costs a TLB shootdown on every CPU the process ran on, which on
 * a virtual machine is dearer than copying a few hundred kilobytes.
 */
#define PR_READ_MAX	(8u << 20)

struct partial_writer {
	int		 fd;
	int		 err;		/* errno of the first failure */
	XXH3_state_t	*xs;
	uint8_t		*buf;
	size_t		 len;
	uint64_t	 nkeys, total;
	char		*last;		/* the previous key, for the order */
	size_t		 last_len, last_cap;
	int		 have_last;
};

int
partial_keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t	l = alen < blen ? alen : blen;
	int	r;

	if (l > 0 && (r = memcmp(a, b, l)) != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

char *
partial_settings(const char *format, const char *filter_json, size_t line_max)
{
	json_t		*f;
	json_error_t	 jerr;
	char		*ftext, *s;
	size_t		 n;

	/* The filter with its keys sorted, whoever wrote it. */
	if ((f = json_loads(filter_json, 0, &jerr)) == NULL) {
		errno = EINVAL;
		return NULL;
	}
	ftext = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(f);
	if (ftext == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	n = strlen(format) + strlen(ftext) + 64;
	if ((s = malloc(n)) != NULL)
		snprintf(s, n, "format %s\nfilter %s\nline_max %zu\n", format,
		    ftext, line_max);
	free(ftext);
	return s;
}

uint64_t
partial_digest(const char *settings, size_t len)
{
	return XXH3_64bits(settings, len);
}

/* --- writing --- */

static void
pw_flush(struct partial_writer *w)
{
	size_t	off = 0;
	ssize_t	n;

	if (w->err == 0 && w->len > 0 &&
	    XXH3_64bits_update(w->xs, w->buf, w->len) != XXH_OK)
		w->err = ENOMEM;
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
	w->len = 0;
}

static void
pw_bytes(struct partial_writer *w, const void *p, size_t n)
{
	const uint8_t	*b = p;
	size_t		 k;

	while (n > 0 && w->err == 0) {
		if (w->len == PW_BUF)
			pw_flush(w);
		k = PW_BUF - w->len < n ? PW_BUF - w->len : n;
		memcpy(w->buf + w->len, b, k);
		w->len += k;
		b += k;
		n -= k;
	}
}

static void
pw_u32(struct partial_writer *w, uint32_t v)
{
	uint8_t	b[4];
	int	i;

	for (i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	pw_bytes(w, b, 4);
}

static void
pw_u64(struct partial_writer *w, uint64_t v)
{
	uint8_t	b[8];
	int	i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	pw_bytes(w, b, 8);
}

struct partial_writer *
partial_writer_new(int fd, const char *settings, size_t settings_len,
    const struct partial_source *srcs, size_t nsources)
{
	struct partial_writer	*w;
	const struct file_stats	*st;
	size_t			 i, elen, slen;

	if (settings_len > UINT32_MAX || nsources > UINT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((w = calloc(1, sizeof *w)) == NULL ||
	    (w->buf = malloc(PW_BUF)) == NULL ||
	    (w->xs = XXH3_createState()) == NULL ||
	    XXH3_64bits_reset(w->xs) != XXH_OK) {
		partial_abort(w);
		errno = ENOMEM;
		return NULL;
	}
	w->fd = fd;
	pw_bytes(w, PARTIAL_MAGIC, 8);
	pw_u32(w, PARTIAL_VERSION);
	pw_u32(w, 0);
	pw_u64(w, partial_digest(settings, settings_len));
	pw_u32(w, (uint32_t)settings_len);
	pw_u32(w, (uint32_t)nsources);
	pw_bytes(w, settings, settings_len);
	for (i = 0; i < nsources; i++) {
		st = &srcs[i].st;
		elen = strnlen(st->error, sizeof st->error);
		if (srcs[i].path_len > UINT32_MAX) {
			w->err = EINVAL;
			break;
		}
		pw_u32(w, (uint32_t)srcs[i].path_len);
		pw_bytes(w, srcs[i].path, srcs[i].path_len);
		pw_u64(w, srcs[i].id.dev);
		pw_u64(w, srcs[i].id.ino);
		pw_u64(w, srcs[i].id.size);
		pw_u64(w, (uint64_t)srcs[i].id.mtime_ns);
		pw_u64(w, (uint64_t)srcs[i].id.ctime_ns);
		pw_u64(w, srcs[i].id.off);
		pw_u64(w, srcs[i].id.end);
		pw_u64(w, srcs[i].id.fingerprint);
		pw_u64(w, srcs[i].id.digest);
		pw_u64(w, st->bytes);
		pw_u64(w, st->raw_bytes);
		pw_u64(w, st->lines);
		pw_u64(w, st->matched);
		pw_u64(w, st->malformed);
		pw_u64(w, st->filtered);
		pw_u64(w, st->counted);
		pw_u32(w, st->flags);
		pw_u32(w, (uint32_t)elen);
		pw_bytes(w, st->error, elen);
		slen = st->sample_len < STATS_SAMPLE ? st->sample_len :
		    STATS_SAMPLE;
		pw_u64(w, st->not_request);
		pw_u32(w, st->sample_len);
		pw_bytes(w, st->sample, slen);
	}
	return w;
}

int
partial_put(struct partial_writer *w, const char *key, size_t len, uint64_t n)
{
	char	*p;

	if (w->err != 0)
		return -1;
	if (len > PARTIAL_KEY_MAX || (w->have_last &&
	    partial_keycmp(w->last, w->last_len, key, len) >= 0)) {
		w->err = EINVAL;
		return -1;
	}
	if (len > w->last_cap) {
		if ((p = realloc(w->last, len * 2)) == NULL) {
			w->err = ENOMEM;
			return -1;
		}
		w->last = p;
		w->last_cap = len * 2;
	}
	if (len > 0)
		memcpy(w->last, key, len);
	w->last_len = len;
	w->have_last = 1;
	pw_u32(w, (uint32_t)len);
	pw_u64(w, n);
	pw_bytes(w, key, len);
	w->nkeys++;
	w->total += n;
	return w->err == 0 ? 0 : -1;
}

int
partial_finish(struct partial_writer *w, uint64_t *nkeys)
{
	int	err;

	pw_u32(w, PW_END);
	pw_u64(w, w->nkeys);
	pw_u64(w, w->total);
	pw_flush(w);
	if (w->err == 0)
		pw_u64(w, XXH3_64bits_digest(w->xs));
	/* (the checksum itself is not part of what it sums) */
	if (w->err == 0) {
		size_t	off = 0;
		ssize_t	n;

		while (off < w->len) {
			n = write(w->fd, w->buf + off, w->len - off);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				w->err = n == 0 ? EIO : errno;
				break;
			}
			off += (size_t)n;
		}
	}
	if (nkeys != NULL)
		*nkeys = w->nkeys;
	err = w->err;
	partial_abort(w);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

void
partial_abort(struct partial_writer *w)
{
	if (w == NULL)
		return;
	if (w->xs != NULL)
		XXH3_freeState(w->xs);
	free(w->buf);
	free(w->last);
	free(w);
}

/* --- reading --- */

static uint32_t
rd_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
rd_u64(const uint8_t *p)
{
	return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}

static void
perr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
perr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct partial *
partial_parse(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct partial		*p;
	struct partial_source	*s;
	const uint8_t		*q, *end, *prev = NULL;
	size_t			 i, prev_len = 0;
	uint64_t		 nkeys = 0, total = 0, n;
	uint32_t		 klen, elen, slen;

	if (len < HDR_LEN + TRAILER_LEN || memcmp(buf, PARTIAL_MAGIC, 8) != 0) {
		perr(err, errlen, "not a partial (bad magic)");
		return NULL;
	}
	if (rd_u32(buf + 8) != PARTIAL_VERSION) {
		perr(err, errlen, "partial version %u, not %u", rd_u32(buf + 8),
		    PARTIAL_VERSION);
		return NULL;
	}
	if (XXH3_64bits(buf, len - 8) != rd_u64(buf + len - 8)) {
		perr(err, errlen, "checksum mismatch (damaged partial)");
		return NULL;
	}
	if ((p = calloc(1, sizeof *p)) == NULL) {
		perr(err, errlen, "out of memory");
		return NULL;
	}
	p->base = buf;
	p->size = len;
	p->version = rd_u32(buf + 8);
	p->digest = rd_u64(buf + 16);
	p->settings_len = rd_u32(buf + 24);
	p->nsources = rd_u32(buf + 28);
	end = buf + len - TRAILER_LEN;
	q = buf + HDR_LEN;
	if ((size_t)(end - q) < p->settings_len)
		goto short_;
	p->settings = (const char *)q;
	q += p->settings_len;
	if (partial_digest(p->settings, p->settings_len) != p->digest) {
		perr(err, errlen, "settings digest mismatch");
		goto fail;
	}
	/* Each source takes at least SRC_FIXED bytes: bound the count first. */
	if (p->nsources > (size_t)(end - q) / SRC_FIXED)
		goto short_;
	if (p->nsources > 0 &&
	    (p->sources = calloc(p->nsources, sizeof *p->sources)) == NULL) {
		perr(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < p->nsources; i++) {
		s = &p->sources[i];
		if ((size_t)(end - q) < 4)
			goto short_;
		s->path_len = rd_u32(q);
		q += 4;
		if ((size_t)(end - q) < s->path_len + SRC_FIXED - 4)
			goto short_;
		s->path = (const char *)q;
		q += s->path_len;
		s->id.dev = rd_u64(q);
		s->id.ino = rd_u64(q + 8);
		s->id.size = rd_u64(q + 16);
		s->id.mtime_ns = (int64_t)rd_u64(q + 24);
		s->id.ctime_ns = (int64_t)rd_u64(q + 32);
		s->id.off = rd_u64(q + 40);
		s->id.end = rd_u64(q + 48);
		s->id.fingerprint = rd_u64(q + 56);
		s->id.digest = rd_u64(q + 64);
		q += 72;
		s->st.bytes = rd_u64(q);
		s->st.raw_bytes = rd_u64(q + 8);
		s->st.lines = rd_u64(q + 16);
		s->st.matched = rd_u64(q + 24);
		s->st.malformed = rd_u64(q + 32);
		s->st.filtered = rd_u64(q + 40);
		s->st.counted = rd_u64(q + 48);
		s->st.flags = rd_u32(q + 56);
		elen = rd_u32(q + 60);
		q += 64;
		if (elen >= sizeof s->st.error || (size_t)(end - q) < elen) {
			perr(err, errlen, "source %zu: bad error length", i);
			goto fail;
		}
		memcpy(s->st.error, q, elen);
		s->st.error[elen] = '\0';
		q += elen;
		if ((size_t)(end - q) < 12)
			goto short_;
		s->st.not_request = rd_u64(q);
		s->st.sample_len = rd_u32(q + 8);
		q += 12;
		slen = s->st.sample_len < STATS_SAMPLE ? s->st.sample_len :
		    STATS_SAMPLE;
		if ((size_t)(end - q) < slen)
			goto short_;
		memcpy(s->st.sample, q, slen);
		q += slen;
	}
	p->keys = q;
	for (;;) {
		if ((size_t)(end + TRAILER_LEN - q) < 4)
			goto short_;
		klen = rd_u32(q);
		if (klen == PW_END)
			break;
		if ((size_t)(end - q) < 12 || (size_t)(end - q) - 12 < klen)
			goto short_;
		n = rd_u64(q + 4);
		if (prev != NULL && partial_keycmp((const char *)prev, prev_len,
		    (const char *)q + 12, klen) >= 0) {
			perr(err, errlen, "keys out of order");
			goto fail;
		}
		prev = q + 12;
		prev_len = klen;
		nkeys++;
		total += n;
		q += 12 + (size_t)klen;
	}
	if (q != end) {
		perr(err, errlen, "trailer not at the end");
		goto fail;
	}
	p->keys_end = q;
	p->nkeys = rd_u64(q + 4);
	p->total = rd_u64(q + 12);
	if (p->nkeys != nkeys || p->total != total) {
		perr(err, errlen, "key count or sum does not add up");
		goto fail;
	}
	return p;
short_:
	perr(err, errlen, "truncated partial");
fail:
	free(p->sources);
	free(p);
	return NULL;
}

/* Read all len bytes of fd from offset 0 into buf; -1 with errno. */
static int
pr_read_all(int fd, uint8_t *buf, size_t len)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < len) {
		n = pread(fd, buf + off, len - off, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;	/* shrank under us: never half a partial */
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

struct partial *
partial_open(const char *path, char *err, size_t errlen)
{
	struct partial	*p;
	struct stat	 st;
	void		*m;
	char		 why[160];
	int		 fd, mapped;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		perr(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		perr(err, errlen, "%s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		perr(err, errlen, "%s", S_ISREG(st.st_mode) ?
		    "truncated partial" : "not a regular file");
		close(fd);
		return NULL;
	}
	mapped = (uint64_t)st.st_size > PR_READ_MAX;
	if (mapped) {
		/* (read whole at once: the checksum reads every byte anyway) */
#ifdef MAP_POPULATE
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE |
		    MAP_POPULATE, fd, 0);
#else
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
		    0);
#endif
		if (m == MAP_FAILED) {
			perr(err, errlen, "mmap: %s", strerror(errno));
			close(fd);
			return NULL;
		}
	} else {
		if ((m = malloc((size_t)st.st_size)) == NULL) {
			perr(err, errlen, "out of memory");
			close(fd);
			return NULL;
		}
		if (pr_read_all(fd, m, (size_t)st.st_size) == -1) {
			perr(err, errlen, "read: %s", strerror(errno));
			free(m);
			close(fd);
			return NULL;
		}
	}
	close(fd);
	if ((p = partial_parse(m, (size_t)st.st_size, why, sizeof why)) == NULL) {
		perr(err, errlen, "%s", why);
		if (mapped)
			munmap(m, (size_t)st.st_size);
		else
			free(m);
		return NULL;
	}
	if (mapped) {
		(void)madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
		p->mapped = 1;
	} else
		p->owned = 1;
	return p;
}

void
partial_close(struct partial *p)
{
	if (p == NULL)
		return;
	if (p->mapped)
		munmap((void *)(uintptr_t)p->base, p->size);
	else if (p->owned)
		free((void *)(uintptr_t)p->base);
	free(p->sources);
	free(p);
}

void
partial_cursor_init(struct partial_cursor *c, const struct partial *p)
{
	c->p = p->keys;
	c->end = p->keys_end;
	c->key = NULL;
	c->len = 0;
	c->n = 0;
}

int
partial_cursor_next(struct partial_cursor *c)
{
	if (c->p >= c->end)
		return 0;
	c->len = rd_u32(c->p);
	c->n = rd_u64(c->p + 4);
	c->key = (const char *)c->p + 12;
	c->p += 12 + c->len;
	return 1;
}
