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

/* memcmp order, a prefix first: what counts_sort must give. */
static int
cmp_bytes(const void *x, const void *y)
{
	const struct counts_entry	*a = x, *b = y;
	size_t				 l = a->len < b->len ? a->len : b->len;
	int				 r;

	if (l > 0 && (r = memcmp(a->key, b->key, l)) != 0)
		return r;
	return (a->len > b->len) - (a->len < b->len);
}

/*
 * Sort c and check the result against qsort of the same keys: the same
 * keys in the same order with the same counts. Every key of c must be
 * written as it is (valid UTF-8, no NUL).
 */
static int
sort_matches_qsort(struct counts *c, const char *name)
{
	struct counts_sorted	 cs;
	struct counts_entry	*want, got;
	size_t			 i, bad = 0;

	if (counts_sort(c, &cs) == -1)
		return ok(0, "%s: sort failed", name);
	if ((want = calloc(cs.n + 1, sizeof *want)) == NULL)
		return 0;
	for (i = 0; i < cs.n; i++)
		counts_sorted_at(&cs, i, &want[i]);
	qsort(want, cs.n, sizeof *want, cmp_bytes);
	for (i = 0; i < cs.n; i++) {
		counts_sorted_at(&cs, i, &got);
		/* (a sample of gets: each walks the table while sorted) */
		if (want[i].key != got.key || want[i].n != got.n ||
		    (i % 997 == 0 && counts_get(c, got.key, got.len) != got.n))
			bad++;
	}
	i = cs.n;
	free(want);
	counts_sorted_free(&cs);
	if (!ok(bad == 0 && i == counts_size(c), "%s", name))
		diag("%zu of %zu out of place", bad, i);
	return bad == 0;
}

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

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
			struct counts_entry x, y;

			counts_sorted_at(&cs, k - 1, &x);
			counts_sorted_at(&cs, k, &y);
			size_t l = x.len < y.len ? x.len : y.len;
			int r = memcmp(x.key, y.key, l);

			if (r > 0 || (r == 0 && x.len >= y.len))
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

	/*
	 * The same in the sorted list of a partial: one entry each, summed,
	 * in order, the table's own counts untouched.
	 */
	{
		struct counts		*q = counts_new();
		struct counts_sorted	 cs;
		struct counts_entry	 x[3];

		if (q == NULL)
			return 1;
		counts_add(q, "/z", 2, 1);
		counts_add(q, "/a%00", 5, 6);
		counts_add(q, "/%FF", 4, 3);
		counts_add(q, "/\xff", 2, 4);
		counts_add(q, "/a\0", 3, 5);
		ok(counts_sort(q, &cs) == 0 && cs.n == 3, "sort: 5 keys, "
		    "3 once encoded");
		for (i = 0; i < 3 && i < cs.n; i++)
			counts_sorted_at(&cs, i, &x[i]);
		ok(cs.n == 3 && x[0].len == 4 && memcmp(x[0].key, "/%FF", 4) == 0 &&
		    x[0].n == 7 && x[1].len == 5 &&
		    memcmp(x[1].key, "/a%00", 5) == 0 && x[1].n == 11 &&
		    x[2].len == 2 && memcmp(x[2].key, "/z", 2) == 0 &&
		    x[2].n == 1, "sort: keys equal once encoded summed");
		ok(counts_get(q, "/%FF", 4) == 3 && counts_get(q, "/a%00", 5) == 6,
		    "sort: the table's counts unchanged");
		counts_sorted_free(&cs);
		counts_free(q);
	}

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
	/*
	 * Growth past the size where the slots and the arena are mapped
	 * (and the arena grows by remapping), then cleared and filled
	 * again. With a million slots, neighbouring keys often share a
	 * slot's 32-bit tag: the records are told apart by their bytes.
	 */
	{
		struct counts	*g = counts_new();
		size_t		 n = 400000, bad = 0, round;

		if (g == NULL)
			return 1;
		for (round = 0; round < 2; round++) {
			for (i = 0; i < n; i++) {
				len = (size_t)snprintf(key, sizeof key,
				    "/item/%zu/%016llx.html", i * 7919 % n,
				    (unsigned long long)(i * 0x9e3779b97f4a7c15ULL));
				if (counts_add(g, key, len, 1) == -1 ||
				    counts_add(g, key, len, i) == -1)
					bad++;
			}
			for (i = 0; i < n; i++) {
				len = (size_t)snprintf(key, sizeof key,
				    "/item/%zu/%016llx.html", i * 7919 % n,
				    (unsigned long long)(i * 0x9e3779b97f4a7c15ULL));
				if (counts_get(g, key, len) != i + 1)
					bad++;
				key[len - 1] = 'm';	/* a near miss */
				if (counts_get(g, key, len) != 0)
					bad++;
			}
			ok(bad == 0 && counts_size(g) == n &&
			    counts_total(g) == n + (uint64_t)n * (n - 1) / 2 &&
			    counts_memory(g) > n * 16,
			    "round %zu: %zu keys through growth, all found", round,
			    n);
			if (round == 0) {
				sort_matches_qsort(g, "sort: 400000 keys as qsort "
				    "orders them");
				/*
				 * The sort borrowed the index: the table is
				 * indexed again by the next add.
				 */
				len = (size_t)snprintf(key, sizeof key,
				    "/item/%zu/%016llx.html", (size_t)0,
				    (unsigned long long)0);
				ok(counts_get(g, key, len) == 1 &&
				    counts_add(g, key, len, 5) == 0 &&
				    counts_add(g, "/new", 4, 2) == 0 &&
				    counts_get(g, key, len) == 6 &&
				    counts_get(g, "/new", 4) == 2 &&
				    counts_size(g) == n + 1,
				    "sorted table: found, added to, indexed again");
				for (i = 0; i < n; i++) {
					len = (size_t)snprintf(key, sizeof key,
					    "/item/%zu/%016llx.html", i * 7919 % n,
					    (unsigned long long)(i *
					    0x9e3779b97f4a7c15ULL));
					if (counts_get(g, key, len) != i + 1 +
					    (i == 0 ? 5 : 0))
						bad++;
				}
				ok(bad == 0, "sorted table: every key found after "
				    "indexing again");
				sort_matches_qsort(g, "sort: sorted again after adds");
			}
			counts_clear(g);
			ok(counts_size(g) == 0 && counts_get(g, "/item/1", 7) == 0,
			    "round %zu: cleared", round);
		}
		counts_free(g);
	}

	/*
	 * A batch adds as one call per key would: repeats within a batch,
	 * growth in the middle of one, any batch size.
	 */
	{
		struct counts		*one = counts_new(), *bat = counts_new();
		struct counts_key	 kb[40];
		char			 kbuf[40][32];
		size_t			 bad = 0, done, m, j;

		if (one == NULL || bat == NULL)
			return 1;
		for (i = 0; i < 50000; i += m) {
			m = 1 + rng() % 40;
			for (j = 0; j < m; j++) {
				/* a fifth repeat a recent key */
				size_t id = rng() % 5 == 0 && i + j > 0 ?
				    i + j - 1 - rng() % (i + j < 20 ? i + j : 20) :
				    i + j;

				len = (size_t)snprintf(kbuf[j], sizeof kbuf[j],
				    "/b/%zu", id);
				kb[j].key = kbuf[j];
				kb[j].len = len;
				kb[j].n = 1 + j % 3;
				counts_add(one, kbuf[j], len, 1 + j % 3);
			}
			if (counts_add_batch(bat, kb, m, &done) == -1 ||
			    done != m)
				bad++;
		}
		for (i = 0; i < 50000; i++) {
			len = (size_t)snprintf(key, sizeof key, "/b/%zu", i);
			if (counts_get(one, key, len) != counts_get(bat, key, len))
				bad++;
		}
		ok(bad == 0 && counts_size(one) == counts_size(bat) &&
		    counts_total(one) == counts_total(bat) &&
		    counts_size(bat) > 1000, "batches add as single adds "
		    "(%zu keys)", counts_size(bat));
		counts_free(one);
		counts_free(bat);
	}

	/*
	 * NUL bytes: keys that differ only by NULs, or by a trailing NUL,
	 * are distinct in the table (and summed once encoded only where
	 * the encodings meet).
	 */
	{
		static const struct { const char *k; size_t len; } nul[] = {
			{ "", 0 }, { "\0", 1 }, { "\0\0", 2 }, { "a", 1 },
			{ "a\0", 2 }, { "a\0\0", 3 }, { "\0a", 2 },
			{ "a\0b", 3 }, { "a\0\0\0\0\0\0\0\0", 9 },
			{ "a\0\0\0\0\0\0\0\0b", 10 },
		};
		struct counts	*z = counts_new();
		size_t		 bad = 0, nk = sizeof nul / sizeof nul[0];

		if (z == NULL)
			return 1;
		for (i = 0; i < nk; i++)
			if (counts_add(z, nul[i].k, nul[i].len, i + 1) == -1)
				bad++;
		for (i = 0; i < nk; i++)
			if (counts_get(z, nul[i].k, nul[i].len) != i + 1)
				bad++;
		ok(bad == 0 && counts_size(z) == nk,
		    "keys with NUL bytes are all distinct");
		check_json(z, 3, "{\"a%00%00%00%00%00%00%00%00b\":10,"
		    "\"a%00%00%00%00%00%00%00%00\":9,\"a%00b\":8}",
		    "keys with NUL bytes in the result");
		counts_free(z);
	}

	/*
	 * The radix sort against qsort: keys from a small alphabet (long
	 * shared prefixes, keys that are prefixes of others, lengths on
	 * both sides of every 8-byte step), then keys sharing 1000 bytes.
	 */
	{
		struct counts	*r = counts_new();
		char		 big[1100];
		size_t		 k, l;

		if (r == NULL)
			return 1;
		for (i = 0; i < 30000; i++) {
			l = rng() % 41;
			for (k = 0; k < l; k++)
				key[k] = "\001ab/"[rng() % 4];
			counts_add(r, key, l, 1 + rng() % 3);
		}
		sort_matches_qsort(r, "sort: short keys as qsort orders them");
		counts_clear(r);
		memset(big, 'x', sizeof big);
		for (i = 0; i < 500; i++) {
			l = 1000 + rng() % 100;
			for (k = 1000; k < l; k++)
				big[k] = "xy"[rng() % 2];
			counts_add(r, big, l, 1);
		}
		counts_add(r, big, 999, 1);
		counts_add(r, big, 1000, 1);
		sort_matches_qsort(r, "sort: keys sharing 1000 bytes as qsort "
		    "orders them");
		counts_free(r);
	}

	/*
	 * Huge keys: several megabytes each (an arena grown past its
	 * doubling by one record), equal but for their last byte or their
	 * length; found, told apart and sorted.
	 */
	{
		struct counts	*h = counts_new();
		size_t		 hl = (size_t)3 << 20, bad = 0;
		char		*hk = malloc(hl + 1);

		if (h == NULL || hk == NULL)
			return 1;
		memset(hk, 'h', hl + 1);
		if (counts_add(h, hk, hl, 1) == -1 ||
		    counts_add(h, hk, hl + 1, 2) == -1 ||
		    counts_add(h, hk, hl - 1, 3) == -1)
			bad++;
		hk[hl - 1] = 'g';
		if (counts_add(h, hk, hl, 4) == -1 ||
		    counts_add(h, "/small", 6, 5) == -1)
			bad++;
		if (counts_get(h, hk, hl) != 4)
			bad++;
		hk[hl - 1] = 'h';
		if (counts_get(h, hk, hl) != 1 || counts_get(h, hk, hl + 1) != 2 ||
		    counts_get(h, hk, hl - 1) != 3 || counts_size(h) != 5 ||
		    counts_memory(h) < 4 * hl)
			bad++;
		ok(bad == 0, "huge keys added, found and told apart");
		sort_matches_qsort(h, "sort: huge keys as qsort orders them");
		free(hk);
		counts_free(h);
	}

	counts_free(a);
	counts_free(b);
	counts_free(d);
	return tap_done();
}
