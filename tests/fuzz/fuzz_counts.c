/*
 * fuzz_counts.c: the count table (counts.c) on arbitrary keys.
 *
 * Input: records of a length byte (modulo 64), that many key bytes and a
 * count byte. The keys go into one table with counts_add and into
 * another with counts_add_batch: the two must be equal, add up (size,
 * total, counts_foreach, counts_get), merge into an empty table
 * unchanged, and sort (counts_sort) into strictly increasing encoded keys
 * (counts_json_key: encoded again they stay as they are) whose counts
 * sum to the total, a key that needs no encoding with at least its
 * count (other keys may encode to it). counts_json() of the table must
 * give JSON that jansson can dump and load again, and a cleared table is
 * empty and usable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"

/*
 * The result must load the way clfctl loads it (jansson refuses a NUL
 * byte in an object key, whatever the flags); build with -DFUZZ_ALLOW_NUL
 * to look past keys holding NUL bytes (counts_json_key encodes NUL, so
 * none should come).
 */
#ifdef FUZZ_ALLOW_NUL
#define FUZZ_SKIP_LOAD(text)	(strstr((text), "\\u0000") != NULL)
#else
#define FUZZ_SKIP_LOAD(text)	0
#endif

#define FUZZ_KEYS	256

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Every entry of one table is in the other with the same count. */
static int
fuzz_same(const char *key, size_t len, uint64_t n, void *arg)
{
	return counts_get(arg, key, len) != n;
}

struct fuzz_sum {
	size_t		n;
	uint64_t	total;
};

static int
fuzz_sum(const char *key, size_t len, uint64_t n, void *arg)
{
	struct fuzz_sum	*s = arg;

	(void)key;
	(void)len;
	s->n++;
	s->total += n;
	return 0;
}

/* memcmp order, shorter first on a common prefix (as a partial's keys). */
static int
fuzz_keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t	l = alen < blen ? alen : blen;
	int	r;

	if (l > 0 && (r = memcmp(a, b, l)) != 0)
		return r;
	return (alen > blen) - (alen < blen);
}

/* The table as equal tables must be: c and d hold the same entries. */
static void
fuzz_equal(const struct counts *c, const struct counts *d)
{
	if (counts_size(c) != counts_size(d) ||
	    counts_total(c) != counts_total(d) ||
	    counts_foreach(c, fuzz_same, (void *)(uintptr_t)d) != 0 ||
	    counts_foreach(d, fuzz_same, (void *)(uintptr_t)c) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct counts		*c, *d, *e;
	struct counts_key	 k[FUZZ_KEYS];
	struct counts_sorted	 cs;
	struct counts_entry	 ce, prev;
	struct fuzz_sum		 s = { 0, 0 };
	uint8_t			*buf;
	size_t			 nk = 0, i, len, done, elen;
	uint64_t		 sum;
	json_t			*j, *back;
	char			*text, *enc;

	/* (a copy, so that ASan sees a key read past its end) */
	if ((buf = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	for (i = 0; i < size && nk < FUZZ_KEYS; i += len + 2) {
		len = buf[i] % 64;
		if (size - i - 1 < len + 1)
			break;
		k[nk].key = (const char *)buf + i + 1;
		k[nk].len = len;
		k[nk].n = buf[i + 1 + len];
		nk++;
	}
	if ((c = counts_new()) == NULL || (d = counts_new()) == NULL ||
	    (e = counts_new()) == NULL)
		abort();
	for (i = 0; i < nk; i++)
		if (counts_add(c, k[i].key, k[i].len, k[i].n) == -1)
			abort();
	if (counts_add_batch(d, k, nk, &done) == -1 || done != nk)
		abort();
	fuzz_equal(c, d);
	if (counts_foreach(c, fuzz_sum, &s) != 0 || s.n != counts_size(c) ||
	    s.total != counts_total(c))
		abort();
	if (counts_merge(e, c) == -1)
		abort();
	fuzz_equal(c, e);

	/* Sorted: encoded keys strictly increasing, the counts all there. */
	if (counts_sort(c, &cs) == -1 || cs.n > counts_size(c))
		abort();
	for (i = 0, sum = 0; i < cs.n; i++) {
		counts_sorted_at(&cs, i, &ce);
		if (i > 0 && fuzz_keycmp(prev.key, prev.len, ce.key,
		    ce.len) >= 0)
			abort();
		if ((enc = counts_json_key(ce.key, ce.len, &elen)) == NULL)
			abort();
		/* an encoded key encodes to itself */
		if (elen != ce.len || memcmp(enc, ce.key, elen) != 0)
			abort();
		free(enc);
		sum += ce.n;
		prev = ce;
	}
	if (sum != counts_total(c))
		abort();
	for (i = 0; i < nk; i++) {
		if ((enc = counts_json_key(k[i].key, k[i].len, &elen)) == NULL)
			abort();
		/* a key that needs no encoding keeps its count */
		if (elen == k[i].len && memcmp(enc, k[i].key, elen) == 0) {
			size_t	lo = 0, hi = cs.n, mid;

			while (lo < hi) {
				mid = lo + (hi - lo) / 2;
				counts_sorted_at(&cs, mid, &ce);
				if (fuzz_keycmp(ce.key, ce.len, enc, elen) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == cs.n)
				abort();
			counts_sorted_at(&cs, lo, &ce);
			if (ce.len != elen || memcmp(ce.key, enc, elen) != 0 ||
			    ce.n < counts_get(c, k[i].key, k[i].len))
				abort();
		}
		free(enc);
	}
	counts_sorted_free(&cs);
	/* The table is whole after the sort. */
	fuzz_equal(c, d);

	if (counts_size(c) <= 64) {
		if ((j = counts_json(c, 0)) == NULL)
			abort();
		if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
			abort();
		if (!FUZZ_SKIP_LOAD(text)) {
			if ((back = json_loads(text, 0, NULL)) == NULL)
				abort();
			json_decref(back);
		}
		free(text);
		json_decref(j);
		if ((j = counts_json(c, 1)) == NULL || json_object_size(j) > 1)
			abort();
		json_decref(j);
	}
	/* Clearing and reusing the table works. */
	counts_clear(c);
	if (counts_size(c) != 0 || counts_total(c) != 0 ||
	    counts_merge(c, d) == -1)
		abort();
	fuzz_equal(c, d);
	counts_free(c);
	counts_free(d);
	counts_free(e);
	free(buf);
	return 0;
}
