/*
 * test_partial.c: the partial codec (partial.c) and the MERGE step
 * (merge.c).
 *
 * Partials round-trip, and every byte flipped, every truncation, a
 * foreign version and keys out of order are refused whole. Merging k
 * partials of random tables gives the counts of one table of everything,
 * and the final result is byte for byte what jansson writes for the same
 * counts (counts_json): the order, the top N, the escaping of every byte.
 */
#include "analysis.h"
#include "counts.h"
#include "merge.h"
#include "partial.h"
#include "tap.h"

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

static char	dir[] = "/tmp/clfd-test-partial-XXXXXX";

static uint64_t	rng = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Write a table as a partial with one source; the file's path. */
static char *
write_table(struct counts *c, const char *name, const char *settings)
{
	struct partial_source	 src;
	struct partial_writer	*w;
	struct counts_sorted	 cs;
	struct counts_entry	 ce;
	char			 path[PATH_MAX];
	size_t			 i;
	int			 fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	memset(&src, 0, sizeof src);
	src.path = name;
	src.path_len = strlen(name);
	src.id.ino = 7;
	src.id.end = 1234;
	src.st.lines = counts_total(c);
	src.st.counted = counts_total(c);
	/* a first malformed line longer than what is kept of it */
	src.st.not_request = 3;
	src.st.sample_len = 500;
	memset(src.st.sample, 'm', sizeof src.st.sample);
	src.st.sample[0] = '\x01';
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    counts_sort(c, &cs) == -1 ||
	    (w = partial_writer_new(fd, settings, strlen(settings), &src,
	    1)) == NULL)
		return NULL;
	for (i = 0; i < cs.n; i++) {
		counts_sorted_at(&cs, i, &ce);
		partial_put(w, ce.key, ce.len, ce.n);
	}
	counts_sorted_free(&cs);
	if (partial_finish(w, NULL) == -1)
		return NULL;
	close(fd);
	return strdup(path);
}

/* A random key: mostly paths, some bytes that need escaping or %XX. */
static size_t
rnd_key(char *k)
{
	static const char	abc[] = "/abcxyz.-_\"\\\t\x01\x7f\xc3\xa9\xff";
	size_t			n = 1 + rnd() % 12, i;

	k[0] = '/';
	for (i = 1; i < n; i++)
		k[i] = abc[rnd() % (sizeof abc - 1)];
	return n;
}

static void
test_codec(void)
{
	struct counts		*c = counts_new();
	struct partial		*p;
	struct partial_cursor	 cur;
	struct partial_writer	*w;
	struct stat		 st;
	char			*path, err[200], key[16];
	uint8_t			*buf, *bad;
	size_t			 i, n, refused = 0, cut;
	uint64_t		 total = 0;
	FILE			*f;
	int			 fd, order = 1;

	for (i = 0; i < 200; i++)
		counts_add(c, key, rnd_key(key), 1 + rnd() % 5);
	path = write_table(c, "one", "format default\n");
	p = partial_open(path, err, sizeof err);
	ok(p != NULL && p->nsources == 1 && p->sources[0].id.ino == 7 &&
	    p->sources[0].id.end == 1234 && p->settings_len == 15 &&
	    p->total == counts_total(c), "round trip: header and source");
	ok(p != NULL && p->sources[0].st.not_request == 3 &&
	    p->sources[0].st.sample_len == 500 &&
	    p->sources[0].st.sample[0] == '\x01' &&
	    p->sources[0].st.sample[STATS_SAMPLE - 1] == 'm',
	    "round trip: not_request and the malformed example");
	if (p != NULL) {
		const char *prev = NULL;
		size_t plen = 0;

		partial_cursor_init(&cur, p);
		for (n = 0; partial_cursor_next(&cur); n++) {
			total += cur.n;
			if (prev != NULL && partial_keycmp(prev, plen, cur.key,
			    cur.len) >= 0)
				order = 0;
			prev = cur.key;
			plen = cur.len;
		}
		ok(n == p->nkeys && total == counts_total(c) && order,
		    "round trip: %zu keys in order, the sum kept", n);
		partial_close(p);
	} else
		diag("%s", err);

	/* Every byte flipped, every cut: refused, never half read. */
	stat(path, &st);
	buf = malloc((size_t)st.st_size);
	bad = malloc((size_t)st.st_size);
	f = fopen(path, "rb");
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	for (i = 0; i < n; i++) {
		memcpy(bad, buf, n);
		bad[i] ^= (uint8_t)(1 + rnd() % 255);
		if ((p = partial_parse(bad, n, err, sizeof err)) == NULL)
			refused++;
		partial_close(p);
	}
	ok(refused == n, "every one of %zu bytes flipped: refused (%zu)", n,
	    refused);
	refused = 0;
	for (cut = 0; cut < n; cut++) {
		if ((p = partial_parse(buf, cut, err, sizeof err)) == NULL)
			refused++;
		partial_close(p);
	}
	ok(refused == n, "every truncation refused");
	free(buf);
	free(bad);

	/* The writer refuses keys out of order. */
	snprintf(err, sizeof err, "%s/order", dir);
	fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	w = partial_writer_new(fd, "s", 1, NULL, 0);
	partial_put(w, "/b", 2, 1);
	ok(partial_put(w, "/a", 2, 1) == -1 && partial_finish(w, NULL) == -1 &&
	    errno == EINVAL, "writer: a key out of order is refused");
	close(fd);
	unlink(err);
	unlink(path);
	free(path);
	counts_free(c);
}

/* The final result's counts (and totals.distinct) for a table and top. */
static char *
want_counts(const struct counts *all, size_t top)
{
	json_t	*o = counts_json(all, top);
	char	*s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

static char *
slurp(const char *path)
{
	struct stat	 st;
	char		*s;
	FILE		*f;

	if (stat(path, &st) == -1 || (f = fopen(path, "rb")) == NULL)
		return NULL;
	s = calloc(1, (size_t)st.st_size + 1);
	if (fread(s, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

static void
test_merge(void)
{
	static const size_t	 tops[] = { 0, 1, 7, 100000 };
	struct counts		*part[5], *all = counts_new();
	struct merge_opts	 o;
	struct merge_result	 mr;
	char			*in[6], *twice[2], name[16], key[16];
	char			 out[PATH_MAX];
	char			*got, *want, *cs;
	json_t			*doc, *tot, *ex;
	json_error_t		 jerr;
	size_t			 i, k, t, len;
	int			 fd;

	for (k = 0; k < 5; k++) {
		part[k] = counts_new();
		for (i = 0; i < 300; i++) {
			len = rnd_key(key);
			/* some counts past 2^16 and 2^32: every radix pass */
			t = 1 + rnd() % 3;
			if (i % 7 == 0)
				t += (size_t)(rnd() % 3) << 40 |
				    (size_t)(rnd() % 2) << 20;
			counts_add(part[k], key, len, t);
			counts_add(all, key, len, t);
		}
		snprintf(name, sizeof name, "p%zu", k);
		in[k] = write_table(part[k], name, "s\n");
	}
	/* A tree: merge 0-2 into a partial, then it and 3-4 into results. */
	snprintf(out, sizeof out, "%s/mid", dir);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	memset(&o, 0, sizeof o);
	o.inputs = in;
	o.ninputs = 3;
	o.fd = fd;
	ok(merge_run(&o, &mr) == 0, "intermediate merge of 3: %s", mr.error);
	close(fd);
	in[5] = strdup(out);
	for (t = 0; t < sizeof tops / sizeof tops[0]; t++) {
		char *top[3] = { in[5], in[3], in[4] };

		snprintf(out, sizeof out, "%s/result", dir);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		memset(&o, 0, sizeof o);
		o.inputs = top;
		o.ninputs = 3;
		o.fd = fd;
		o.final = 1;
		o.top = tops[t];
		o.head = "{\"ok\":true,\"job\":1";
		ok(merge_run(&o, &mr) == 0 && mr.nkeys == counts_size(all),
		    "final merge, top %zu: %s", tops[t], mr.error);
		close(fd);
		got = slurp(out);
		want = want_counts(all, tops[t]);
		cs = got != NULL ? strstr(got, ",\"counts\":") : NULL;
		ok(cs != NULL && want != NULL && strncmp(cs + 10, want,
		    strlen(want)) == 0 && strcmp(cs + 10 + strlen(want), "}") == 0,
		    "top %zu: counts byte for byte as jansson writes them",
		    tops[t]);
		doc = got != NULL ? json_loads(got, 0, &jerr) : NULL;
		tot = json_object_get(doc, "totals");
		ok(doc != NULL && json_array_size(json_object_get(doc,
		    "files")) == 5 && (uint64_t)json_integer_value(
		    json_object_get(tot, "counted")) == counts_total(all) &&
		    (size_t)json_integer_value(json_object_get(tot,
		    "distinct")) == counts_size(all) &&
		    json_integer_value(json_object_get(doc, "job")) == 1,
		    "top %zu: files, totals, head", tops[t]);
		ex = json_object_get(json_array_get(json_object_get(doc,
		    "files"), 0), "malformed_example");
		ok(json_string_length(ex) == STATS_SAMPLE &&
		    json_string_value(ex)[0] == '\x01' &&
		    json_integer_value(json_object_get(json_array_get(
		    json_object_get(doc, "files"), 0), "not_request")) == 3,
		    "top %zu: a file's not_request and malformed example",
		    tops[t]);
		json_decref(doc);
		free(got);
		free(want);
		unlink(out);
	}

	/* Settings that differ, the same source twice: refused, named. */
	snprintf(out, sizeof out, "%s/other", dir);
	free(in[4]);
	in[4] = write_table(part[4], "p4", "other settings\n");
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	memset(&o, 0, sizeof o);
	o.inputs = in + 3;
	o.ninputs = 2;
	o.fd = fd;
	ok(merge_run(&o, &mr) == -1 && mr.bad == 1 &&
	    strstr(mr.error, "other analysis settings") != NULL,
	    "other settings refused: %s", mr.error);
	twice[0] = twice[1] = in[0];
	o.inputs = twice;
	o.ninputs = 2;
	ok(merge_run(&o, &mr) == -1 && strstr(mr.error, "the same source "
	    "twice") != NULL, "the same source twice refused: %s", mr.error);
	close(fd);
	unlink(out);
	for (k = 0; k < 6; k++) {
		unlink(in[k]);
		free(in[k]);
		if (k < 5)
			counts_free(part[k]);
	}
	counts_free(all);
}

/* No key at all, top N: nothing to order (nor to hand qsort). */
static void
test_merge_empty(void)
{
	struct counts		*none = counts_new();
	struct merge_opts	 o;
	struct merge_result	 mr;
	char			*empty, *got, out[PATH_MAX];
	int			 fd;

	empty = write_table(none, "none", "s\n");
	snprintf(out, sizeof out, "%s/result", dir);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	memset(&o, 0, sizeof o);
	o.inputs = &empty;
	o.ninputs = 1;
	o.fd = fd;
	o.final = 1;
	o.top = 5;
	ok(empty != NULL && merge_run(&o, &mr) == 0 && mr.nkeys == 0,
	    "final merge of no keys, top 5: %s", mr.error);
	close(fd);
	got = slurp(out);
	ok(got != NULL && strstr(got, ",\"counts\":{}}") != NULL,
	    "no keys, top 5: an empty counts object");
	free(got);
	unlink(out);
	if (empty != NULL)
		unlink(empty);
	free(empty);
	counts_free(none);
}

/* Escaping: every byte as jansson writes it in a string. */
static void
test_escape(void)
{
	char	 s[2], out[16], *j;
	json_t	*v;
	size_t	 n, bad = 0;
	int	 c;

	for (c = 1; c < 0x80; c++) {
		s[0] = (char)c;
		n = merge_json_escape(out, s, 1);
		v = json_stringn(s, 1);
		j = json_dumps(v, JSON_ENCODE_ANY);
		if (j == NULL || strlen(j) != n + 2 ||
		    memcmp(j + 1, out, n) != 0)
			bad++;
		free(j);
		json_decref(v);
	}
	ok(bad == 0, "escaping: every ASCII byte as jansson (%zu differ)", bad);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 99;
	test_codec();
	test_merge();
	test_merge_empty();
	test_escape();
	rmdir(dir);
	return tap_done();
}
