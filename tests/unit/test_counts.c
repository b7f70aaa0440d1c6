/*
 * test_counts.c: the path -> count table: add, get, growth, merge, the
 * wire form (including malformed buffers), JSON order, percent-encoding
 * of bytes that are not UTF-8, collisions after encoding, and top.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"
#include "tap.h"

/* A JSON dump of counts_json(c, top), malloc'd. */
static char *
dump(const struct counts *c, size_t top)
{
	json_t	*j = counts_json(c, top);
	char	*s;

	if (j == NULL)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static int
check_json(const struct counts *c, size_t top, const char *want,
    const char *name)
{
	char	*got = dump(c, top);
	int	 r;

	r = ok(got != NULL && strcmp(got, want) == 0, "%s", name);
	if (!r)
		diag("got %s, want %s", got ? got : "(null)", want);
	free(got);
	return r;
}

/* Keys whose JSON form is checked: raw bytes -> encoded text. */
static const struct {
	const char	*raw;
	size_t		 len;
	const char	*json;
} encodings[] = {
	{ "/plain", 6, "{\"/plain\":1}" },
	{ "/caf\xc3\xa9", 6, "{\"/café\":1}" },
	{ "/\xe2\x82\xac", 4, "{\"/€\":1}" },
	{ "/\xf0\x9f\x98\x80", 5, "{\"/😀\":1}" },
	{ "/\xff", 2, "{\"/%FF\":1}" },
	{ "/\xc3", 2, "{\"/%C3\":1}" },
	{ "/\xc0\x80", 3, "{\"/%C0%80\":1}" },
	{ "/\xe0\x80\xaf", 4, "{\"/%E0%80%AF\":1}" },
	{ "/\xed\xa0\x80", 4, "{\"/%ED%A0%80\":1}" },
	{ "/\xf4\x90\x80\x80", 5, "{\"/%F4%90%80%80\":1}" },
	{ "/\xf5\x80", 3, "{\"/%F5%80\":1}" },
	{ "/\x80x", 3, "{\"/%80x\":1}" },
	{ "/a\0b", 4, "{\"/a%00b\":1}" },
	{ "", 0, "{\"\":1}" },
	{ "/%41", 4, "{\"/%41\":1}" },
};

/* Sum the counts into *arg; stop (return 1) once it passes 100. */
static int
visit(const char *key, size_t len, uint64_t n, void *arg)
{
	uint64_t *sum = arg;

	(void)key;
	(void)len;
	*sum += n;
	return *sum > 100;
}

int
main(void)
{
	struct counts	*a, *b, *d;
	size_t		 i, len;
	char		 key[64];
	int		 good = 1;

	a = counts_new();
	b = counts_new();
	d = counts_new();
	if (a == NULL || b == NULL || d == NULL)
		return 1;

	/* Basic add and get. */
	ok(counts_add(a, "/x", 2, 1) == 0 && counts_add(a, "/x", 2, 2) == 0 &&
	    counts_add(a, "/y", 2, 5) == 0, "add");
	ok(counts_get(a, "/x", 2) == 3 && counts_get(a, "/y", 2) == 5 &&
	    counts_get(a, "/z", 2) == 0, "get");
	ok(counts_size(a) == 2 && counts_total(a) == 8, "size 2, total 8");
	ok(counts_get(a, "/x\0", 3) == 0, "a longer key with a NUL differs");

	/* Growth: many keys, all still found. */
	for (i = 0; i < 100000; i++) {
		len = (size_t)snprintf(key, sizeof key, "/k/%zu", i);
		if (counts_add(b, key, len, i + 1) == -1)
			good = 0;
	}
	for (i = 0; i < 100000; i++) {
		len = (size_t)snprintf(key, sizeof key, "/k/%zu", i);
		if (counts_get(b, key, len) != i + 1)
			good = 0;
	}
	ok(good && counts_size(b) == 100000, "100000 keys added and found");
	ok(counts_total(b) == 100000ULL * 100001 / 2, "total of 100000 keys");
	ok(counts_memory(b) > 100000 * 8, "memory accounts for the keys");

	/* Clearing a big table gives its memory back and leaves it usable. */
	{
		struct counts *e = counts_new();

		if (e == NULL)
			return 1;
		counts_merge(e, b);
		counts_clear(e);
		ok(counts_size(e) == 0 && counts_total(e) == 0 &&
		    counts_memory(e) < counts_memory(b) / 4 &&
		    counts_get(e, "/k/1", 4) == 0 &&
		    counts_add(e, "/k/1", 4, 7) == 0 &&
		    counts_get(e, "/k/1", 4) == 7, "clear shrinks a big table");
		counts_free(e);
	}

	/* Merge. */
	ok(counts_merge(a, b) == 0 && counts_size(a) == 100002 &&
	    counts_get(a, "/k/9", 4) == 10 && counts_get(a, "/x", 2) == 3,
	    "merge");

	/* Sorted for a partial: key order, every key once, sums kept. */
	{
		struct counts_sorted	cs;
		size_t			k, inorder = 1;

		ok(counts_sort(a, &cs) == 0 && cs.n == counts_size(a),
		    "sort: every key once");
		for (k = 1; k < cs.n; k++) {
			size_t l = cs.e[k - 1].len < cs.e[k].len ?
			    cs.e[k - 1].len : cs.e[k].len;
			int r = memcmp(cs.e[k - 1].key, cs.e[k].key, l);

			if (r > 0 || (r == 0 && cs.e[k - 1].len >= cs.e[k].len))
				inorder = 0;
		}
		ok(inorder, "sort: by key bytes, a prefix first");
		counts_sorted_free(&cs);
	}
	counts_clear(d);

	/* JSON: count descending, then path bytes. */
	counts_clear(d);
	counts_add(d, "/b", 2, 2);
	counts_add(d, "/a", 2, 2);
	counts_add(d, "/c", 2, 7);
	counts_add(d, "/a/b", 4, 1);
	counts_add(d, "/", 1, 2);
	check_json(d, 0, "{\"/c\":7,\"/\":2,\"/a\":2,\"/b\":2,\"/a/b\":1}",
	    "json order: count descending, then path");
	check_json(d, 2, "{\"/c\":7,\"/\":2}", "top 2");
	check_json(d, 99, "{\"/c\":7,\"/\":2,\"/a\":2,\"/b\":2,\"/a/b\":1}",
	    "top larger than the table");
	counts_clear(d);
	check_json(d, 0, "{}", "empty table is {}");

	/* Percent-encoding of bytes that are not UTF-8. */
	for (i = 0; i < sizeof encodings / sizeof encodings[0]; i++) {
		counts_clear(d);
		counts_add(d, encodings[i].raw, encodings[i].len, 1);
		check_json(d, 0, encodings[i].json, encodings[i].json);
	}
	/* counts_json_key: the same text, for file names and messages. */
	for (i = 0; i < sizeof encodings / sizeof encodings[0]; i++) {
		const char	*want = encodings[i].json + 2;
		size_t		 wlen = strlen(want) - 4;
		char		*enc;

		enc = counts_json_key(encodings[i].raw, encodings[i].len, &len);
		ok(enc != NULL && len == wlen && memcmp(enc, want, wlen) == 0 &&
		    enc[len] == '\0', "counts_json_key gives %s", encodings[i].json);
		free(enc);
	}
	/* Keys equal once encoded are summed, then ordered. */
	counts_clear(d);
	counts_add(d, "/%FF", 4, 2);
	counts_add(d, "/\xff", 2, 3);
	counts_add(d, "/z", 2, 4);
	check_json(d, 0, "{\"/%FF\":5,\"/z\":4}", "colliding keys summed");
	check_json(d, 1, "{\"/%FF\":5}", "top after summing");

	/* The empty key, first in a fresh table, added twice and merged. */
	{
		struct counts *e = counts_new(), *f = counts_new();

		if (e == NULL || f == NULL)
			return 1;
		ok(counts_add(e, "", 0, 1) == 0 && counts_add(e, "", 0, 2) == 0 &&
		    counts_merge(f, e) == 0 && counts_merge(f, e) == 0 &&
		    counts_get(e, "", 0) == 3 && counts_get(f, "", 0) == 6 &&
		    counts_size(f) == 1, "empty key in a fresh table");
		counts_free(e);
		counts_free(f);
	}

	/* counts_foreach visits every entry and stops on request. */
	{
		uint64_t sum = 0;

		ok(counts_foreach(d, visit, &sum) == 0 && sum == 9,
		    "foreach visits every entry");
		sum = 100;
		ok(counts_foreach(d, visit, &sum) == 1, "foreach stops");
	}
	counts_free(a);
	counts_free(b);
	counts_free(d);
	return tap_done();
}
