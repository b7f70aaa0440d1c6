/*
 * counts.c: the path -> count table.
 *
 * Each key lives in a record in a byte arena: its count, its length, the
 * low half of its hash, then its bytes, padded to eight. Records are
 * appended and never move inside the arena (offsets, not pointers, so
 * the arena may be reallocated), and are walked in the order they were
 * added. The index over them is open addressing with linear probing on a
 * power-of-two array of 8-byte slots: the high half of the key's hash
 * (a tag) beside the record's offset in 8-byte units. A slot's position
 * is taken from the top bits of the hash, the bits the tag holds, so the
 * table doubles by one pass over the old slots with no key or record
 * read. Adding a key that is present reads its slot and its record;
 * adding a new one writes a slot and appends a record. counts_sort hands
 * the entries out in key order, keys encoded as a result writes them, for
 * a partial (partial.c).
 */
#include <config.h>

#include <sys/mman.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"

#define COUNTS_MIN_BITS		10
#define COUNTS_MAX_BITS		32		/* a tag holds the position */
#define COUNTS_KEY_MAX		0xffffffffu
#define COUNTS_REF_MAX		0xffffffffu	/* arena offsets / 8, + 1 */
#define COUNTS_KEEP_SLOTS	65536		/* kept by counts_clear */
#define COUNTS_KEEP_ARENA	(1 << 20)
#define COUNTS_BIG		((size_t)2 << 20)	/* mapped from here up */

/* A record's head in the arena; the key's bytes follow. */
struct rec {
	uint64_t	n;
	uint32_t	len;
	uint32_t	hlo;		/* low half of the hash */
};

struct counts {
	uint64_t	*slots;		/* tag << 32 | ref; 0: empty */
	unsigned	 bits;		/* log2 of the number of slots */
	size_t		 used;
	uint64_t	 total;
	char		*arena;		/* records, 8-aligned */
	size_t		 arena_len;
	size_t		 arena_cap;
	int		 stale;		/* slots lent to counts_sort */
};

#define REC_SIZE(len)	(sizeof(struct rec) + (((size_t)(len) + 7) & ~(size_t)7))
#define SLOT_REF(s)	((uint32_t)(s))
#define SLOT_TAG(s)	((uint32_t)((s) >> 32))

static inline struct rec *
counts_rec(const struct counts *c, uint32_t ref)
{
	return (struct rec *)(void *)(c->arena + ((size_t)ref - 1) * 8);
}

static inline const char *
rec_key(const struct rec *r)
{
	return (const char *)(r + 1);
}

/*
 * A fast 64-bit hash: eight bytes at a time, multiply and fold, then a
 * final avalanche (every bit of the result depends on every input bit:
 * the table uses the top bits for the position, the bottom ones to check).
 */
static uint64_t
counts_hash(const char *key, size_t len)
{
	const uint64_t	 m = 0x9e3779b97f4a7c15ULL;
	uint64_t	 h = 0x243f6a8885a308d3ULL ^ (len * m);
	uint64_t	 k;
	size_t		 i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&k, key + i, 8);
		h = (h ^ k) * m;
		h ^= h >> 32;
	}
	if (i < len) {
		k = 0;
		memcpy(&k, key + i, len - i);
		h = (h ^ k) * m;
		h ^= h >> 32;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h;
}

/*
 * Memory for the slots, the arena and the sort: zeroed. From COUNTS_BIG
 * up it is mapped on its own and asked for huge pages: a table of
 * millions of keys is touched at random, and with small pages nearly
 * every probe is a TLB miss and every fourth kilobyte a page fault. A
 * mapping grows in place or is moved by the kernel (mremap), not copied.
 * Whether a block is mapped follows from its size alone.
 */
static void *
counts_map(size_t size)
{
	void	*p;

	if (size < COUNTS_BIG)
		return calloc(1, size);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, size, MADV_HUGEPAGE);
#endif
	return p;
}

static void
counts_unmap(void *p, size_t size)
{
	if (p == NULL)
		return;
	if (size < COUNTS_BIG)
		free(p);
	else
		munmap(p, size);
}

/* p (size old, may be NULL) grown to size new; NULL leaves p as it was. */
static void *
counts_remap(void *p, size_t old, size_t new)
{
	void	*q;

	if (new < COUNTS_BIG)
		return realloc(p, new);
#ifdef MREMAP_MAYMOVE
	if (p != NULL && old >= COUNTS_BIG) {
		if ((q = mremap(p, old, new, MREMAP_MAYMOVE)) == MAP_FAILED)
			return NULL;
#ifdef MADV_HUGEPAGE
		(void)madvise(q, new, MADV_HUGEPAGE);
#endif
		return q;
	}
#endif
	if ((q = counts_map(new)) == NULL)
		return NULL;
	if (old > 0)
		memcpy(q, p, old);
	counts_unmap(p, old);
	return q;
}

struct counts *
counts_new(void)
{
	struct counts	*c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if ((c->slots = calloc((size_t)1 << COUNTS_MIN_BITS,
	    sizeof *c->slots)) == NULL) {
		free(c);
		return NULL;
	}
	c->bits = COUNTS_MIN_BITS;
	return c;
}

void
counts_free(struct counts *c)
{
	if (c == NULL)
		return;
	counts_unmap(c->slots, ((size_t)1 << c->bits) * sizeof *c->slots);
	counts_unmap(c->arena, c->arena_cap);
	free(c);
}

/*
 * Forget every key, keeping the memory for the next use unless it grew
 * large (a long-lived worker should not keep one huge task's table).
 */
void
counts_clear(struct counts *c)
{
	uint64_t	*ns;

	if (((size_t)1 << c->bits) > COUNTS_KEEP_SLOTS &&
	    (ns = calloc((size_t)1 << COUNTS_MIN_BITS, sizeof *ns)) != NULL) {
		counts_unmap(c->slots, ((size_t)1 << c->bits) * sizeof *ns);
		c->slots = ns;
		c->bits = COUNTS_MIN_BITS;
	}
	if (c->arena_cap > COUNTS_KEEP_ARENA) {
		counts_unmap(c->arena, c->arena_cap);
		c->arena = NULL;
		c->arena_cap = 0;
	}
	memset(c->slots, 0, ((size_t)1 << c->bits) * sizeof *c->slots);
	c->stale = 0;
	c->used = 0;
	c->total = 0;
	c->arena_len = 0;
}

/*
 * Double the slot array. A slot's home is the top bits of its tag, so
 * the old slots, read in order, land in order in the new array: one
 * sequential pass, no record read.
 */
static int
counts_grow(struct counts *c)
{
	unsigned	 nbits = c->bits + 1;
	size_t		 nslots = (size_t)1 << nbits, i, j;
	size_t		 mask = nslots - 1;
	uint64_t	*ns, s;

	if (nbits > COUNTS_MAX_BITS || nslots > SIZE_MAX / sizeof *ns) {
		errno = ENOMEM;
		return -1;
	}
	if ((ns = counts_map(nslots * sizeof *ns)) == NULL)
		return -1;
	for (i = 0; i < ((size_t)1 << c->bits); i++) {
		if ((s = c->slots[i]) == 0)
			continue;
		for (j = SLOT_TAG(s) >> (32 - nbits); ns[j] != 0;
		    j = (j + 1) & mask)
			;
		ns[j] = s;
	}
	counts_unmap(c->slots, ((size_t)1 << c->bits) * sizeof *ns);
	c->slots = ns;
	c->bits = nbits;
	return 0;
}

/* Append a record for key; its reference in *ref. */
static int
counts_store(struct counts *c, const char *key, size_t len, uint64_t h,
    uint64_t n, uint32_t *ref)
{
	size_t		 need = REC_SIZE(len), ncap;
	struct rec	*r;
	char		*na;

	if (c->arena_len / 8 + 1 > COUNTS_REF_MAX) {
		errno = ENOMEM;
		return -1;
	}
	if (need > c->arena_cap - c->arena_len) {
		ncap = c->arena_cap ? c->arena_cap : 65536;
		while (need > ncap - c->arena_len) {
			if (ncap > SIZE_MAX / 2) {
				errno = ENOMEM;
				return -1;
			}
			ncap *= 2;
		}
		if ((na = counts_remap(c->arena, c->arena_cap, ncap)) == NULL)
			return -1;
		c->arena = na;
		c->arena_cap = ncap;
	}
	r = (struct rec *)(void *)(c->arena + c->arena_len);
	r->n = n;
	r->len = (uint32_t)len;
	r->hlo = (uint32_t)h;
	if (len > 0)
		memcpy(r + 1, key, len);
	*ref = (uint32_t)(c->arena_len / 8 + 1);
	c->arena_len += need;
	return 0;
}

/*
 * The position of the slot holding key, with its record in *rp; or of
 * the empty slot where it belongs, with *rp NULL.
 */
static size_t
counts_find(const struct counts *c, const char *key, size_t len, uint64_t h,
    struct rec **rp)
{
	size_t		 mask = ((size_t)1 << c->bits) - 1, i;
	uint32_t	 tag = (uint32_t)(h >> 32);
	uint64_t	 s;
	struct rec	*r;

	for (i = tag >> (32 - c->bits);; i = (i + 1) & mask) {
		if ((s = c->slots[i]) == 0) {
			*rp = NULL;
			return i;
		}
		if (SLOT_TAG(s) != tag)
			continue;
		r = counts_rec(c, SLOT_REF(s));
		if (r->len == len && r->hlo == (uint32_t)h &&
		    (len == 0 || memcmp(r + 1, key, len) == 0)) {
			*rp = r;
			return i;
		}
	}
}

/* The record of each key, all distinct, in the order they were added. */
static inline const struct rec *counts_at(const struct counts *, size_t,
    size_t *);

/*
 * Index the records again: counts_sort used the slots as scratch space
 * (a table is seldom added to once sorted, so this is rare).
 */
static void
counts_reindex(struct counts *c)
{
	size_t			 mask = ((size_t)1 << c->bits) - 1, i, off, next;
	const struct rec	*r;
	uint64_t		 h;

	memset(c->slots, 0, (mask + 1) * sizeof *c->slots);
	for (off = 0; off < c->arena_len; off = next) {
		r = counts_at(c, off, &next);
		h = counts_hash(rec_key(r), r->len);
		for (i = (uint32_t)(h >> 32) >> (32 - c->bits); c->slots[i] != 0;
		    i = (i + 1) & mask)
			;
		c->slots[i] = (h >> 32) << 32 | (off / 8 + 1);
	}
	c->stale = 0;
}

/* Add n to key, whose hash is h. */
static int
counts_add_hashed(struct counts *c, const char *key, size_t len, uint64_t h,
    uint64_t n)
{
	struct rec	*r;
	size_t		 i;
	uint32_t	 ref;

	if (len > COUNTS_KEY_MAX) {
		errno = EINVAL;
		return -1;
	}
	i = counts_find(c, key, len, h, &r);
	if (r != NULL) {
		r->n += n;
		c->total += n;
		return 0;
	}
	/* Keep the load under 1/2 so probes stay short. */
	if ((c->used + 1) * 2 > ((size_t)1 << c->bits)) {
		if (counts_grow(c) == -1)
			return -1;
		i = counts_find(c, key, len, h, &r);
	}
	if (counts_store(c, key, len, h, n, &ref) == -1)
		return -1;
	c->slots[i] = (h >> 32) << 32 | ref;
	c->used++;
	c->total += n;
	return 0;
}

int
counts_add(struct counts *c, const char *key, size_t len, uint64_t n)
{
	if (len > COUNTS_KEY_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (c->stale)
		counts_reindex(c);
	return counts_add_hashed(c, key, len, counts_hash(key, len), n);
}

int
counts_add_batch(struct counts *c, const struct counts_key *k, size_t n,
    size_t *done)
{
	uint64_t	h[COUNTS_BATCH];
	size_t		i, j, m;

	for (i = 0; i < n; i += m) {
		m = n - i < COUNTS_BATCH ? n - i : COUNTS_BATCH;
		if (c->stale)
			counts_reindex(c);
		/* Every slot asked for first, then each key added. */
		for (j = 0; j < m; j++) {
			h[j] = k[i + j].len > COUNTS_KEY_MAX ? 0 :
			    counts_hash(k[i + j].key, k[i + j].len);
			__builtin_prefetch(&c->slots[(uint32_t)(h[j] >> 32) >>
			    (32 - c->bits)]);
		}
		for (j = 0; j < m; j++) {
			if (counts_add_hashed(c, k[i + j].key, k[i + j].len,
			    h[j], k[i + j].n) == -1) {
				*done = i + j;
				return -1;
			}
		}
	}
	*done = n;
	return 0;
}

/* The record at arena offset off, and the offset of the next. */
static inline const struct rec *
counts_at(const struct counts *c, size_t off, size_t *next)
{
	const struct rec	*r = (const struct rec *)(const void *)
	    (c->arena + off);

	*next = off + REC_SIZE(r->len);
	return r;
}

int
counts_merge(struct counts *dst, const struct counts *src)
{
	const struct rec	*r;
	size_t			 off, next;

	for (off = 0; off < src->arena_len; off = next) {
		r = counts_at(src, off, &next);
		if (counts_add(dst, rec_key(r), r->len, r->n) == -1)
			return -1;
	}
	return 0;
}

size_t
counts_size(const struct counts *c)
{
	return c->used;
}

uint64_t
counts_total(const struct counts *c)
{
	return c->total;
}

uint64_t
counts_get(const struct counts *c, const char *key, size_t len)
{
	const struct rec	*r;
	struct rec		*f;
	size_t			 off, next;

	if (len > COUNTS_KEY_MAX)
		return 0;
	if (c->stale) {
		/* No index until the next add: a walk of the records. */
		for (off = 0; off < c->arena_len; off = next) {
			r = counts_at(c, off, &next);
			if (r->len == len && (len == 0 ||
			    memcmp(rec_key(r), key, len) == 0))
				return r->n;
		}
		return 0;
	}
	(void)counts_find(c, key, len, counts_hash(key, len), &f);
	return f != NULL ? f->n : 0;
}

size_t
counts_memory(const struct counts *c)
{
	return sizeof *c + ((size_t)1 << c->bits) * sizeof *c->slots +
	    c->arena_cap;
}

int
counts_foreach(const struct counts *c, counts_fn fn, void *arg)
{
	const struct rec	*r;
	size_t			 off, next;
	int			 rc;

	for (off = 0; off < c->arena_len; off = next) {
		r = counts_at(c, off, &next);
		if ((rc = fn(rec_key(r), r->len, r->n, arg)) != 0)
			return rc;
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 when invalid. */
static size_t
counts_utf8_len(const unsigned char *p, size_t left)
{
	unsigned char	 c = p[0];
	size_t		 n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if (c == 0xe0 && p[1] < 0xa0)
		return 0;
	if (c == 0xed && p[1] > 0x9f)
		return 0;
	if (c == 0xf0 && p[1] < 0x90)
		return 0;
	if (c == 0xf4 && p[1] > 0x8f)
		return 0;
	return n;
}

/* One output entry: the encoded key (malloc'd) and its count. */
struct jentry {
	char		*key;
	size_t		 len;
	uint64_t	 n;
};

/* Order by key bytes, shorter first on a common prefix. */
static int
counts_cmp_key(const void *a, const void *b)
{
	const struct jentry	*x = a, *y = b;
	size_t			 l = x->len < y->len ? x->len : y->len;
	int			 r;

	if (l > 0 && (r = memcmp(x->key, y->key, l)) != 0)
		return r;
	return (x->len > y->len) - (x->len < y->len);
}

/* Order by count descending, then key. */
static int
counts_cmp_out(const void *a, const void *b)
{
	const struct jentry	*x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return counts_cmp_key(a, b);
}

/*
 * Percent-encode the bytes of key that are not valid UTF-8, and NUL: JSON
 * can carry "\u0000" in a key, but most readers (jansson among them)
 * refuse it, and a result nobody can load is lost.
 */
char *
counts_json_key(const char *key, size_t len, size_t *outlen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)key;
	char			*out;
	size_t			 i, o = 0, n;

	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	if ((out = malloc(len * 3 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i += n) {
		if (p[i] == '\0' || (n = counts_utf8_len(p + i, len - i)) == 0) {
			out[o++] = '%';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 0xf];
			n = 1;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* 1 when key is written as it is: valid UTF-8 with no NUL. */
static int
counts_key_plain(const unsigned char *p, size_t len)
{
	size_t	i = 0, n;

	while (i < len) {
		if (p[i] >= 0x01 && p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] == 0 || (n = counts_utf8_len(p + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/*
 * Sorting by key bytes (memcmp order, a prefix first). An entry is a
 * record and eight bytes of its key from the current depth, big-endian
 * and padded with zeros, so an MSD radix sort reads the entries, not the
 * keys, and the records are read again only once per eight bytes of
 * depth, by the entries still tied there. Paths share long prefixes
 * ("/item/1234..."), where a comparison sort would spend its time in
 * memcmp, and the records are scattered over the arena, where every read
 * of one is a cache miss. Keys that need encoding get records of their
 * own (counts_sorted.own) holding the encoded key.
 */
struct sent {
	uint64_t	 pfx;		/* key bytes [depth, depth + 8) */
	struct rec	*r;
};

#define CS_SMALL	24	/* sorted by insertion below this */

static inline uint64_t
key_pfx(const struct rec *r, size_t depth)
{
	unsigned char	 b[8] = { 0 };
	const char	*key = rec_key(r);

	if (depth < r->len)
		memcpy(b, key + depth, r->len - depth < 8 ? r->len - depth : 8);
	return (uint64_t)b[0] << 56 | (uint64_t)b[1] << 48 |
	    (uint64_t)b[2] << 40 | (uint64_t)b[3] << 32 |
	    (uint64_t)b[4] << 24 | (uint64_t)b[5] << 16 |
	    (uint64_t)b[6] << 8 | (uint64_t)b[7];
}

/* Key order of two entries equal before depth. */
static inline int
sent_cmp(const struct sent *a, const struct sent *b, size_t depth)
{
	size_t	l;
	int	r;

	if (a->pfx != b->pfx)
		return a->pfx < b->pfx ? -1 : 1;
	l = a->r->len < b->r->len ? a->r->len : b->r->len;
	if (l > depth + 8 && (r = memcmp(rec_key(a->r) + depth + 8,
	    rec_key(b->r) + depth + 8, l - depth - 8)) != 0)
		return r;
	return (a->r->len > b->r->len) - (a->r->len < b->r->len);
}

static void
sent_insertion(struct sent *e, size_t n, size_t depth)
{
	struct sent	t;
	size_t		i, j;

	for (i = 1; i < n; i++) {
		t = e[i];
		for (j = i; j > 0 && sent_cmp(&t, &e[j - 1], depth) < 0; j--)
			e[j] = e[j - 1];
		e[j] = t;
	}
}

static int
sent_cmp_len(const void *x, const void *y)
{
	const struct sent	*a = x, *b = y;

	return (a->r->len > b->r->len) - (a->r->len < b->r->len);
}

/*
 * Sort e (n entries equal before depth, and in the first byte bytes of
 * their pfx) by key. tmp has room for n entries. Buckets smaller than the
 * largest are sorted by recursion, the largest by the loop, so the stack
 * holds at most log2(n) frames whatever the keys.
 */
static void
sent_radix(struct sent *e, struct sent *tmp, size_t n, size_t depth,
    unsigned byte)
{
	size_t		cnt[256], pos[256], i, k, big;
	unsigned	sh, b;

	for (;;) {
		if (n < CS_SMALL) {
			sent_insertion(e, n, depth);
			return;
		}
		if (byte == 8) {
			/*
			 * All tied on these eight bytes: the keys that end
			 * within them are prefixes of the others, so they come
			 * first, shorter first; the others go on at depth + 8.
			 */
			for (i = 0, k = 0; i < n; i++)
				if (e[i].r->len <= depth + 8)
					tmp[k++] = e[i];
			if (k > 0) {
				for (i = 0, big = k; i < n; i++)
					if (e[i].r->len > depth + 8)
						tmp[big++] = e[i];
				memcpy(e, tmp, n * sizeof *e);
				qsort(e, k, sizeof *e, sent_cmp_len);
				e += k;
				n -= k;
			}
			depth += 8;
			for (i = 0; i < n; i++)
				e[i].pfx = key_pfx(e[i].r, depth);
			byte = 0;
			continue;
		}
		sh = 56 - 8 * byte;
		memset(cnt, 0, sizeof cnt);
		for (i = 0; i < n; i++)
			cnt[(e[i].pfx >> sh) & 0xff]++;
		byte++;
		if (cnt[(e[0].pfx >> sh) & 0xff] == n)
			continue;	/* one bucket: the next byte */
		for (i = 0, b = 0, big = 0; b < 256; b++) {
			pos[b] = i;
			i += cnt[b];
			if (cnt[b] > cnt[big])
				big = b;
		}
		for (i = 0; i < n; i++)
			tmp[pos[(e[i].pfx >> sh) & 0xff]++] = e[i];
		memcpy(e, tmp, n * sizeof *e);
		/* pos[b] is now the end of bucket b. */
		for (b = 0; b < 256; b++)
			if (b != big && cnt[b] > 1)
				sent_radix(e + pos[b] - cnt[b], tmp, cnt[b],
				    depth, byte);
		e += pos[big] - cnt[big];
		n = cnt[big];
	}
}

/* Whether r is one of the table's records (not an encoded copy). */
static int
counts_owns(const struct counts *c, const struct rec *r)
{
	uintptr_t	p = (uintptr_t)r, a = (uintptr_t)c->arena;

	return c->arena != NULL && p >= a && p < a + c->arena_len;
}

/* A record of its own for r's key, encoded; NULL on ENOMEM. */
static struct rec *
counts_rec_encoded(const struct rec *r)
{
	struct rec	*o;
	char		*enc;
	size_t		 len;

	if ((enc = counts_json_key(rec_key(r), r->len, &len)) == NULL)
		return NULL;
	if (len > COUNTS_KEY_MAX ||
	    (o = malloc(sizeof *o + len + 1)) == NULL) {
		free(enc);
		return NULL;
	}
	o->n = r->n;
	o->len = (uint32_t)len;
	o->hlo = 0;
	memcpy(o + 1, enc, len + 1);
	free(enc);
	return o;
}

int
counts_sort(struct counts *c, struct counts_sorted *out)
{
	struct sent		*e, *tmp;
	struct rec		*r;
	size_t			 i, k = 0, w, cap = 0, off, next, run;

	memset(out, 0, sizeof *out);
	out->cap = c->used + 1;
	if ((out->e = e = counts_map(out->cap * sizeof *e)) == NULL)
		return -1;
	/* The records in the order they were added: one pass, in order. */
	for (off = 0; off < c->arena_len; off = next) {
		r = (struct rec *)(uintptr_t)counts_at(c, off, &next);
		if (!counts_key_plain((const unsigned char *)rec_key(r),
		    r->len)) {
			if (out->nown == cap) {
				void **o = reallocarray(out->own, cap * 2 + 16,
				    sizeof *o);

				if (o == NULL)
					goto fail;
				out->own = o;
				cap = cap * 2 + 16;
			}
			if ((r = counts_rec_encoded(r)) == NULL)
				goto fail;
			out->own[out->nown++] = r;
		}
		e[k].r = r;
		e[k].pfx = key_pfx(r, 0);
		k++;
	}
	if (k >= CS_SMALL && ((size_t)1 << c->bits) * sizeof *c->slots >=
	    k * sizeof *tmp) {
		/*
		 * The slots, at most half full, have room for k entries:
		 * the sort's scratch space, rather than as much fresh
		 * memory. The index is made again if the table is used.
		 */
		c->stale = 1;
		sent_radix(e, (struct sent *)(void *)c->slots, k, 0, 0);
	} else if (k >= CS_SMALL) {
		if ((tmp = counts_map(k * sizeof *tmp)) == NULL)
			goto fail;
		sent_radix(e, tmp, k, 0, 0);
		counts_unmap(tmp, k * sizeof *tmp);
	} else
		sent_insertion(e, k, 0);
	/*
	 * Keys that became equal once encoded are summed. The table's keys
	 * are distinct, so a run of equal keys holds at most one that is
	 * the table's: the sum goes to an encoded one, which is ours.
	 */
	for (i = 0, w = 0; out->nown > 0 && i < k; i = run) {
		struct rec	*keep = e[i].r;
		size_t		 j;

		for (run = i + 1; run < k && e[run].r->len == e[i].r->len &&
		    memcmp(rec_key(e[run].r), rec_key(e[i].r),
		    e[i].r->len) == 0; run++)
			if (counts_owns(c, keep))
				keep = e[run].r;
		for (j = i; j < run; j++)
			if (e[j].r != keep)
				keep->n += e[j].r->n;
		e[w++].r = keep;
	}
	out->n = out->nown > 0 ? w : k;
	return 0;
fail:
	counts_sorted_free(out);
	errno = ENOMEM;
	return -1;
}

void
counts_sorted_at(const struct counts_sorted *s, size_t i,
    struct counts_entry *ce)
{
	const struct sent	*e = s->e;
	const struct rec	*r = e[i].r;

	/* Lists are read in order: ask for a record a few entries ahead. */
	if (i + 8 < s->n)
		__builtin_prefetch(e[i + 8].r);
	ce->key = rec_key(r);
	ce->len = r->len;
	ce->n = r->n;
}

void
counts_sorted_free(struct counts_sorted *s)
{
	size_t	i;

	for (i = 0; i < s->nown; i++)
		free(s->own[i]);
	free(s->own);
	counts_unmap(s->e, s->cap * sizeof(struct sent));
	memset(s, 0, sizeof *s);
}

json_t *
counts_json(const struct counts *c, size_t top)
{
	struct jentry	*e;
	json_t		*obj = NULL;
	size_t		 i, k = 0, w, off, next;

	if ((e = calloc(c->used + 1, sizeof *e)) == NULL)
		return NULL;
	for (off = 0; off < c->arena_len; off = next) {
		const struct rec *r = counts_at(c, off, &next);

		e[k].key = counts_json_key(rec_key(r), r->len, &e[k].len);
		if (e[k].key == NULL)
			goto out;
		e[k++].n = r->n;
	}
	/* Keys that became equal once encoded are summed. */
	qsort(e, k, sizeof *e, counts_cmp_key);
	for (i = 0, w = 0; i < k; i++) {
		if (w > 0 && counts_cmp_key(&e[w - 1], &e[i]) == 0) {
			e[w - 1].n += e[i].n;
			free(e[i].key);
			e[i].key = NULL;
			continue;
		}
		e[w] = e[i];
		if (w != i)
			e[i].key = NULL;
		w++;
	}
	k = w;
	qsort(e, k, sizeof *e, counts_cmp_out);
	if (top > 0 && top < k)
		w = top;
	if ((obj = json_object()) == NULL)
		goto out;
	for (i = 0; i < w; i++) {
		if (json_object_setn_new_nocheck(obj, e[i].key, e[i].len,
		    json_integer((json_int_t)e[i].n)) == -1) {
			json_decref(obj);
			obj = NULL;
			goto out;
		}
	}
out:
	for (i = 0; i < c->used; i++)
		free(e[i].key);
	free(e);
	return obj;
}
