/*
 * fuzz_partial.c: the partial format (partial.c), which cache entries and
 * spool files use, and the MERGE step (merge.c) over damaged inputs.
 *
 * The first byte picks a mode:
 *   bit 0 clear: the other bytes are a partial. partial_parse must refuse
 *	them with an error text or accept them whole: every key inside the
 *	buffer, strictly increasing, as many as the trailer says, summing
 *	to its total; every source's path inside the buffer. With bit 1
 *	set the settings digest and the checksum are put right first, so
 *	that the checks behind them are reached. A partial accepted with
 *	its checksum as it came is written again from what was read and
 *	must give the same bytes.
 *   bit 0 set: the other bytes are a recipe: settings, up to three
 *	sources, up to 64 keys (encoded as counts_json_key encodes them),
 *	then up to four edits (flip a bit, set, insert or delete a byte,
 *	truncate). The partial is written with partial_writer_new /
 *	partial_put / partial_finish, edited, and parsed: unedited it must
 *	give exactly the records written, edited it must be refused (with
 *	bit 1 set the checksum is put right after the edits, and then it
 *	is only checked as above). With bit 2 set the edited partial is
 *	merged (merge_run, bit 3: a final merge) after an unedited one
 *	with the same keys and other source names: refused with bad 1
 *	when it was damaged, else merged to the keys with twice the
 *	counts (a final result is loaded back with jansson). A forged
 *	checksum may hide keys that are not UTF-8, which a final merge
 *	writes as they are: only crashes are looked for then.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "counts.h"
#include "merge.h"
#include "partial.h"

#define FZ_HDR		32		/* the header's fixed part */
#define FZ_KEYS		64
#define FZ_SOURCES	3

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

static char	fz_dir[PATH_MAX];

static void
fz_cleanup(void)
{
	char	path[PATH_MAX + 16];
	int	i;

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%d", fz_dir, i);
		unlink(path);
	}
	rmdir(fz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*t = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(fz_dir, sizeof fz_dir, "%s/fuzz_partial.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(fz_dir) == NULL)
		abort();
	atexit(fz_cleanup);
	return 0;
}

static void
fz_path(char *buf, size_t len, int i)
{
	snprintf(buf, len, "%s/%d", fz_dir, i);
}

/* The bytes of a recipe, read in turn; zeros once they are used up. */
struct fz_in {
	const uint8_t	*p;
	size_t		 left;
};

static uint8_t
fz_byte(struct fz_in *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static uint64_t
fz_u64(struct fz_in *in, int nbytes)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < nbytes; i++)
		v = v << 8 | fz_byte(in);
	return v;
}

static void
fz_bytes(struct fz_in *in, char *out, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		out[i] = (char)fz_byte(in);
}

/*
 * Whatever partial_parse accepted must hold together: sources and keys
 * inside the buffer, keys strictly increasing, the trailer's count and
 * sum right.
 */
static void
fz_walk(const struct partial *p, const uint8_t *buf, size_t len)
{
	struct partial_cursor	 c;
	const uint8_t		*end = buf + len;
	const char		*prev = NULL;
	size_t			 i, prev_len = 0;
	uint64_t		 n = 0, total = 0;

	if (p->base != buf || p->size != len || p->version != PARTIAL_VERSION)
		abort();
	if ((const uint8_t *)p->settings < buf || p->settings_len >
	    (size_t)(end - (const uint8_t *)p->settings))
		abort();
	for (i = 0; i < p->nsources; i++) {
		const struct partial_source *s = &p->sources[i];

		if (s->path_len > 0 && ((const uint8_t *)s->path < buf ||
		    s->path_len > (size_t)(end - (const uint8_t *)s->path)))
			abort();
		if (memchr(s->st.error, '\0', sizeof s->st.error) == NULL)
			abort();
	}
	if (p->keys < buf || p->keys > p->keys_end || p->keys_end > end)
		abort();
	partial_cursor_init(&c, p);
	while (partial_cursor_next(&c)) {
		if ((const uint8_t *)c.key < p->keys ||
		    c.len > (size_t)(p->keys_end - (const uint8_t *)c.key))
			abort();
		if (prev != NULL &&
		    partial_keycmp(prev, prev_len, c.key, c.len) >= 0)
			abort();
		prev = c.key;
		prev_len = c.len;
		n++;
		total += c.n;
	}
	if (c.p != p->keys_end || n != p->nkeys || total != p->total)
		abort();
}

/* Put the settings digest (when the header says where) and checksum right. */
static void
fz_fixup(uint8_t *buf, size_t len)
{
	uint64_t	v;
	uint32_t	slen;
	int		i;

	if (len < FZ_HDR + 28)
		return;
	slen = (uint32_t)buf[24] | (uint32_t)buf[25] << 8 |
	    (uint32_t)buf[26] << 16 | (uint32_t)buf[27] << 24;
	if (slen <= len - FZ_HDR - 28) {
		v = XXH3_64bits(buf + FZ_HDR, slen);
		for (i = 0; i < 8; i++)
			buf[16 + i] = (uint8_t)(v >> (8 * i));
	}
	v = XXH3_64bits(buf, len - 8);
	for (i = 0; i < 8; i++)
		buf[len - 8 + i] = (uint8_t)(v >> (8 * i));
}

/* The bytes of a file (exactly sized, so ASan sees a read past them). */
static uint8_t *
fz_slurp(const char *path, size_t *lenp)
{
	struct stat	 st;
	uint8_t		*buf;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &st) == -1)
		abort();
	if ((buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL)
		abort();
	if ((n = pread(fd, buf, (size_t)st.st_size, 0)) != st.st_size)
		abort();
	close(fd);
	*lenp = (size_t)st.st_size;
	return buf;
}

static void
fz_spit(const char *path, const uint8_t *buf, size_t len)
{
	int	fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (len > 0 && write(fd, buf, len) != (ssize_t)len))
		abort();
	close(fd);
}

/* Write p again, from what was read, to file i. */
static void
fz_rewrite(const struct partial *p, int i)
{
	struct partial_writer	*w;
	struct partial_cursor	 c;
	char			 path[PATH_MAX + 16];
	int			 fd;

	fz_path(path, sizeof path, i);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (w = partial_writer_new(fd, p->settings, p->settings_len,
	    p->sources, p->nsources)) == NULL)
		abort();
	partial_cursor_init(&c, p);
	while (partial_cursor_next(&c))
		if (partial_put(w, c.key, c.len, c.n) == -1)
			abort();
	if (partial_finish(w, NULL) == -1)
		abort();
	close(fd);
}

/* Mode 0: arbitrary bytes, the checksum put right or not. */
static void
fz_raw(const uint8_t *data, size_t size, int fix)
{
	struct partial	*p;
	uint8_t		*buf, *again;
	char		 err[200], path[PATH_MAX + 16];
	size_t		 i, len;
	int		 same;

	if ((buf = malloc(size ? size : 1)) == NULL)
		abort();
	memcpy(buf, data, size);
	if (fix)
		fz_fixup(buf, size);
	err[0] = '\0';
	if ((p = partial_parse(buf, size, err, sizeof err)) == NULL) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
			abort();
		free(buf);
		return;
	}
	fz_walk(p, buf, size);
	/*
	 * Written again it is the same bytes, but for what the reader
	 * leaves out: the header's flags, an error text after a NUL.
	 */
	same = buf[12] == 0 && buf[13] == 0 && buf[14] == 0 && buf[15] == 0;
	for (i = 0; i < p->nsources; i++)
		if (p->sources[i].st.error[0] != '\0')
			same = 0;
	if (same) {
		fz_rewrite(p, 0);
		fz_path(path, sizeof path, 0);
		again = fz_slurp(path, &len);
		if (len != size || memcmp(again, buf, size) != 0)
			abort();
		free(again);
	}
	partial_close(p);
	free(buf);
}

struct fz_key {
	char		*key;
	size_t		 len;
	uint64_t	 n;
};

static int
fz_keycmp(const void *x, const void *y)
{
	const struct fz_key	*a = x, *b = y;

	return partial_keycmp(a->key, a->len, b->key, b->len);
}

struct fz_recipe {
	char			 settings[64];
	size_t			 settings_len;
	struct partial_source	 src[FZ_SOURCES];
	char			 paths[FZ_SOURCES][24];
	size_t			 nsources;
	struct fz_key		 keys[FZ_KEYS];
	size_t			 nkeys;
};

static void
fz_recipe(struct fz_in *in, struct fz_recipe *r)
{
	struct file_stats	*st;
	char			 raw[16];
	size_t			 i, n, k;

	memset(r, 0, sizeof *r);
	r->settings_len = fz_byte(in) % sizeof r->settings;
	fz_bytes(in, r->settings, r->settings_len);
	r->nsources = fz_byte(in) % (FZ_SOURCES + 1);
	for (i = 0; i < r->nsources; i++) {
		n = fz_byte(in) % 16;
		/* "A0", "A1": each source once, apart from the other
		 * partial's "B0", "B1" */
		r->paths[i][0] = 'A';
		r->paths[i][1] = (char)('0' + i);
		fz_bytes(in, r->paths[i] + 2, n);
		r->src[i].path = r->paths[i];
		r->src[i].path_len = n + 2;
		r->src[i].id.dev = fz_u64(in, 2);
		r->src[i].id.ino = fz_u64(in, 8);
		r->src[i].id.size = fz_u64(in, 8);
		r->src[i].id.mtime_ns = (int64_t)fz_u64(in, 8);
		r->src[i].id.ctime_ns = (int64_t)fz_u64(in, 8);
		r->src[i].id.off = fz_u64(in, 2);
		r->src[i].id.end = r->src[i].id.off + fz_u64(in, 2);
		r->src[i].id.fingerprint = fz_u64(in, 8);
		r->src[i].id.digest = fz_u64(in, 8);
		st = &r->src[i].st;
		st->bytes = fz_u64(in, 4);
		st->raw_bytes = fz_u64(in, 4);
		st->lines = fz_u64(in, 4);
		st->matched = fz_u64(in, 4);
		st->malformed = fz_u64(in, 4);
		st->filtered = fz_u64(in, 4);
		st->counted = fz_u64(in, 4);
		st->flags = (uint32_t)fz_u64(in, 4);
		n = fz_byte(in) % 40;
		fz_bytes(in, st->error, n);
		st->error[n] = '\0';
		st->not_request = fz_u64(in, 4);
		st->sample_len = (uint32_t)fz_u64(in, 2);
		fz_bytes(in, st->sample, st->sample_len < STATS_SAMPLE ?
		    st->sample_len : STATS_SAMPLE);
	}
	n = fz_byte(in) % (FZ_KEYS + 1);
	for (i = 0; i < n; i++) {
		k = fz_byte(in) % sizeof raw;
		fz_bytes(in, raw, k);
		r->keys[i].key = counts_json_key(raw, k, &r->keys[i].len);
		if (r->keys[i].key == NULL)
			abort();
		/* below 2^62: twice it is still a JSON integer */
		r->keys[i].n = fz_u64(in, 8) >> 2;
	}
	qsort(r->keys, n, sizeof r->keys[0], fz_keycmp);
	for (i = 0, k = 0; i < n; i++) {
		if (k > 0 && fz_keycmp(&r->keys[k - 1], &r->keys[i]) == 0) {
			free(r->keys[i].key);
			continue;
		}
		r->keys[k++] = r->keys[i];
	}
	r->nkeys = k;
}

/* The recipe as a partial in file i, its sources' names starting with c. */
static void
fz_write(struct fz_recipe *r, int i, char c)
{
	struct partial_writer	*w;
	char			 path[PATH_MAX + 16];
	size_t			 k;
	int			 fd;

	for (k = 0; k < r->nsources; k++)
		r->paths[k][0] = c;
	fz_path(path, sizeof path, i);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (w = partial_writer_new(fd, r->settings, r->settings_len, r->src,
	    r->nsources)) == NULL)
		abort();
	for (k = 0; k < r->nkeys; k++)
		if (partial_put(w, r->keys[k].key, r->keys[k].len,
		    r->keys[k].n) == -1)
			abort();
	if (partial_finish(w, NULL) == -1)
		abort();
	close(fd);
}

/* p holds exactly the recipe's records, counts times mul. */
static void
fz_same(const struct partial *p, const struct fz_recipe *r, uint64_t mul)
{
	struct partial_cursor	 c;
	const struct partial_source *a, *b;
	size_t			 i, k;
	uint64_t		 total = 0;

	if (p->settings_len != r->settings_len || (r->settings_len > 0 &&
	    memcmp(p->settings, r->settings, r->settings_len) != 0) ||
	    p->digest != partial_digest(r->settings, r->settings_len) ||
	    p->nkeys != r->nkeys)
		abort();
	if (mul == 1) {
		if (p->nsources != r->nsources)
			abort();
		for (i = 0; i < r->nsources; i++) {
			a = &p->sources[i];
			b = &r->src[i];
			if (a->path_len != b->path_len ||
			    memcmp(a->path, b->path, a->path_len) != 0 ||
			    memcmp(&a->id, &b->id, sizeof a->id) != 0 ||
			    a->st.bytes != b->st.bytes ||
			    a->st.raw_bytes != b->st.raw_bytes ||
			    a->st.lines != b->st.lines ||
			    a->st.matched != b->st.matched ||
			    a->st.malformed != b->st.malformed ||
			    a->st.filtered != b->st.filtered ||
			    a->st.counted != b->st.counted ||
			    a->st.flags != b->st.flags ||
			    strcmp(a->st.error, b->st.error) != 0 ||
			    a->st.not_request != b->st.not_request ||
			    a->st.sample_len != b->st.sample_len ||
			    memcmp(a->st.sample, b->st.sample,
			    b->st.sample_len < STATS_SAMPLE ?
			    b->st.sample_len : STATS_SAMPLE) != 0)
				abort();
		}
	} else if (p->nsources != 2 * r->nsources)
		abort();
	partial_cursor_init(&c, p);
	for (k = 0; partial_cursor_next(&c); k++) {
		if (k >= r->nkeys || c.len != r->keys[k].len ||
		    (c.len > 0 && memcmp(c.key, r->keys[k].key, c.len) != 0) ||
		    c.n != mul * r->keys[k].n)
			abort();
		total += c.n;
	}
	if (k != r->nkeys || total != p->total)
		abort();
}

/* Up to four edits of buf (of *lenp bytes, room for 4 more). */
static void
fz_edit(struct fz_in *in, uint8_t *buf, size_t *lenp)
{
	size_t	n, i, at, len = *lenp;
	uint8_t	op, v;

	n = fz_byte(in) % 5;
	for (i = 0; i < n; i++) {
		op = fz_byte(in) % 5;
		at = (size_t)fz_u64(in, 2);
		v = fz_byte(in);
		switch (op) {
		case 0:		/* flip a bit */
			if (len > 0)
				buf[at % len] ^= (uint8_t)(1u << (v & 7));
			break;
		case 1:		/* set a byte */
			if (len > 0)
				buf[at % len] = v;
			break;
		case 2:		/* insert a byte */
			at %= len + 1;
			memmove(buf + at + 1, buf + at, len - at);
			buf[at] = v;
			len++;
			break;
		case 3:		/* delete a byte */
			if (len > 0) {
				at %= len;
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
			}
			break;
		default:	/* truncate */
			len = len > 0 ? at % len : 0;
			break;
		}
	}
	*lenp = len;
}

/* Mode 1: a partial written from a recipe, edited, parsed and merged. */
static void
fz_recipe_run(const uint8_t *data, size_t size, uint8_t mode)
{
	struct fz_in		 in = { data, size };
	struct fz_recipe	 r;
	struct partial		*p;
	struct merge_opts	 o;
	struct merge_result	 mr;
	uint8_t			*orig, *buf, *out;
	char			 err[200], path[3][PATH_MAX + 16], *inputs[2];
	size_t			 i, olen, len, outlen;
	int			 fd, same, rc;
	json_t			*doc, *counts;
	json_error_t		 jerr;

	fz_recipe(&in, &r);
	fz_write(&r, 1, 'B');
	for (i = 0; i < 3; i++)
		fz_path(path[i], sizeof path[i], (int)i + 1);
	orig = fz_slurp(path[0], &olen);
	if ((buf = malloc(olen + 4)) == NULL)
		abort();
	memcpy(buf, orig, olen);
	len = olen;
	fz_edit(&in, buf, &len);
	if (mode & 2)
		fz_fixup(buf, len);
	same = len == olen && memcmp(buf, orig, len) == 0;
	/* (an exact copy for the parse, so ASan sees a read past it) */
	free(orig);
	if ((orig = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(orig, buf, len);
	err[0] = '\0';
	p = partial_parse(orig, len, err, sizeof err);
	if (p == NULL && (err[0] == '\0' ||
	    memchr(err, '\0', sizeof err) == NULL))
		abort();
	if (same) {
		if (p == NULL)
			abort();
		fz_same(p, &r, 1);
	} else if (p != NULL) {
		/* (only when the checksum was put right after the edits) */
		if (!(mode & 2))
			abort();
		fz_walk(p, orig, len);
	}
	partial_close(p);
	free(orig);

	if (mode & 4) {
		/* After a sound partial with other source names. */
		fz_write(&r, 2, 'A');
		fz_spit(path[0], buf, len);
		inputs[0] = path[1];
		inputs[1] = path[0];
		if ((fd = open(path[2], O_WRONLY | O_CREAT | O_TRUNC,
		    0600)) == -1)
			abort();
		memset(&o, 0, sizeof o);
		o.inputs = inputs;
		o.ninputs = 2;
		o.fd = fd;
		o.final = (mode & 8) != 0;
		o.top = (mode >> 4) % 4;
		rc = merge_run(&o, &mr);
		close(fd);
		if (rc != 0 && rc != -1)
			abort();
		if (rc == -1 && memchr(mr.error, '\0', sizeof mr.error) ==
		    NULL)
			abort();
		if (same && rc != 0)
			abort();
		if (!same && !(mode & 2) && (rc != -1 || mr.bad != 1))
			abort();
		if (rc == -1 && mr.bad != SIZE_MAX && mr.bad != 1)
			abort();
		if (same && !o.final) {
			out = fz_slurp(path[2], &outlen);
			if ((p = partial_parse(out, outlen, err,
			    sizeof err)) == NULL)
				abort();
			fz_walk(p, out, outlen);
			fz_same(p, &r, 2);
			partial_close(p);
			free(out);
		} else if (same && o.final) {
			/* (a forged checksum may hide keys that are not
			 * UTF-8: only a sound input must give JSON) */
			out = fz_slurp(path[2], &outlen);
			doc = json_loadb((const char *)out, outlen, 0, &jerr);
			counts = json_object_get(doc, "counts");
			if (doc == NULL || !json_is_object(counts)) {
				fprintf(stderr, "result: %s\n", jerr.text);
				abort();
			}
			if (json_object_size(counts) != (o.top > 0 &&
			    o.top < r.nkeys ? o.top : r.nkeys))
				abort();
			json_decref(doc);
			free(out);
		}
	}
	free(buf);
	for (i = 0; i < r.nkeys; i++)
		free(r.keys[i].key);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fz_recipe_run(data + 1, size - 1, data[0]);
	else
		fz_raw(data + 1, size - 1, (data[0] & 2) != 0);
	return 0;
}
