/*
 * counts.c: the path -> count table.
 *
 * Open addressing with linear probing over a power-of-two slot array; each
 * slot holds the key's hash, its offset and length in a byte arena, and its
 * count. Keys never move inside the arena (offsets, not pointers, so the
 * arena may be reallocated), and adding an existing key touches no memory
 * outside its slot. counts_sort hands the entries out in key order, keys
 * encoded as a result writes them, for a partial (partial.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"

#define COUNTS_MIN_SLOTS	1024
#define COUNTS_KEY_MAX		0xffffffffu
#define COUNTS_KEEP_SLOTS	65536		/* kept by counts_clear */
#define COUNTS_KEEP_ARENA	(4 << 20)

struct slot {
	uint64_t	hash;		/* 0: empty slot */
	uint64_t	n;
	size_t		off;
	uint32_t	len;
};

struct counts {
	struct slot	*slots;
	size_t		 mask;		/* slots - 1 */
	size_t		 used;
	uint64_t	 total;
	char		*arena;
	size_t		 arena_len;
	size_t		 arena_cap;
};

/*
 * A fast 64-bit hash: eight bytes at a time, multiply and fold, then a
 * final avalanche. Never returns 0, which marks an empty slot.
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
	return h == 0 ? 1 : h;
}

struct counts *
counts_new(void)
{
	struct counts	*c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if ((c->slots = calloc(COUNTS_MIN_SLOTS, sizeof *c->slots)) == NULL) {
		free(c);
		return NULL;
	}
	c->mask = COUNTS_MIN_SLOTS - 1;
	return c;
}

void
counts_free(struct counts *c)
{
	if (c == NULL)
		return;
	free(c->slots);
	free(c->arena);
	free(c);
}

/*
 * Forget every key, keeping the memory for the next use unless it grew
 * large (a long-lived worker should not keep one huge task's table).
 */
void
counts_clear(struct counts *c)
{
	struct slot	*ns;

	if (c->mask + 1 > COUNTS_KEEP_SLOTS &&
	    (ns = calloc(COUNTS_MIN_SLOTS, sizeof *ns)) != NULL) {
		free(c->slots);
		c->slots = ns;
		c->mask = COUNTS_MIN_SLOTS - 1;
	}
	if (c->arena_cap > COUNTS_KEEP_ARENA) {
		free(c->arena);
		c->arena = NULL;
		c->arena_cap = 0;
	}
	memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
	c->used = 0;
	c->total = 0;
	c->arena_len = 0;
}

/* Double the slot array and re-insert every entry by its stored hash. */
static int
counts_grow(struct counts *c)
{
	size_t		 nslots = (c->mask + 1) * 2, i, j;
	struct slot	*ns;

	if (nslots > SIZE_MAX / sizeof *ns) {
		errno = ENOMEM;
		return -1;
	}
	if ((ns = calloc(nslots, sizeof *ns)) == NULL)
		return -1;
	for (i = 0; i <= c->mask; i++) {
		if (c->slots[i].hash == 0)
			continue;
		for (j = c->slots[i].hash & (nslots - 1); ns[j].hash != 0;
		    j = (j + 1) & (nslots - 1))
			;
		ns[j] = c->slots[i];
	}
	free(c->slots);
	c->slots = ns;
	c->mask = nslots - 1;
	return 0;
}

/* Copy a key into the arena; its offset in *off. */
static int
counts_store(struct counts *c, const char *key, size_t len, size_t *off)
{
	size_t	 ncap;
	char	*na;

	/* Allocated even for an empty key: arena + off must be a pointer. */
	if (c->arena == NULL || len > c->arena_cap - c->arena_len) {
		ncap = c->arena_cap ? c->arena_cap : 65536;
		while (len > ncap - c->arena_len) {
			if (ncap > SIZE_MAX / 2) {
				errno = ENOMEM;
				return -1;
			}
			ncap *= 2;
		}
		if ((na = realloc(c->arena, ncap)) == NULL)
			return -1;
		c->arena = na;
		c->arena_cap = ncap;
	}
	if (len > 0)
		memcpy(c->arena + c->arena_len, key, len);
	*off = c->arena_len;
	c->arena_len += len;
	return 0;
}

/* The slot holding key, or the empty slot where it belongs. */
static struct slot *
counts_find(const struct counts *c, const char *key, size_t len, uint64_t h)
{
	size_t		 i;
	struct slot	*s;

	for (i = h & c->mask;; i = (i + 1) & c->mask) {
		s = &c->slots[i];
		if (s->hash == 0)
			return s;
		if (s->hash == h && s->len == len &&
		    memcmp(c->arena + s->off, key, len) == 0)
			return s;
	}
}

int
counts_add(struct counts *c, const char *key, size_t len, uint64_t n)
{
	uint64_t	 h;
	struct slot	*s;
	size_t		 off;

	if (len > COUNTS_KEY_MAX) {
		errno = EINVAL;
		return -1;
	}
	h = counts_hash(key, len);
	s = counts_find(c, key, len, h);
	if (s->hash != 0) {
		s->n += n;
		c->total += n;
		return 0;
	}
	/* Keep the load under 1/2 so probes stay short. */
	if ((c->used + 1) * 2 > c->mask + 1) {
		if (counts_grow(c) == -1)
			return -1;
		s = counts_find(c, key, len, h);
	}
	if (counts_store(c, key, len, &off) == -1)
		return -1;
	s->hash = h;
	s->off = off;
	s->len = (uint32_t)len;
	s->n = n;
	c->used++;
	c->total += n;
	return 0;
}

int
counts_merge(struct counts *dst, const struct counts *src)
{
	size_t	 i;

	for (i = 0; i <= src->mask; i++) {
		const struct slot *s = &src->slots[i];

		if (s->hash == 0)
			continue;
		if (counts_add(dst, src->arena + s->off, s->len, s->n) == -1)
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
	const struct slot	*s;

	if (len > COUNTS_KEY_MAX)
		return 0;
	s = counts_find(c, key, len, counts_hash(key, len));
	return s->hash != 0 ? s->n : 0;
}

size_t
counts_memory(const struct counts *c)
{
	return sizeof *c + (c->mask + 1) * sizeof *c->slots + c->arena_cap;
}

int
counts_foreach(const struct counts *c, counts_fn fn, void *arg)
{
	size_t	 i;
	int	 rc;

	for (i = 0; i <= c->mask; i++) {
		const struct slot *s = &c->slots[i];

		if (s->hash == 0)
			continue;
		if ((rc = fn(c->arena + s->off, s->len, s->n, arg)) != 0)
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

static int
counts_cmp_entry(const void *a, const void *b)
{
	const struct counts_entry	*x = a, *y = b;
	size_t				 l = x->len < y->len ? x->len : y->len;
	int				 r;

	if (l > 0 && (r = memcmp(x->key, y->key, l)) != 0)
		return r;
	return (x->len > y->len) - (x->len < y->len);
}

/*
 * Sort entries by key bytes: an MSD radix sort on the byte at depth
 * (keys that end there first), buckets finished with qsort when small or
 * deep. Paths share long prefixes ("/item/1234..."), where comparison
 * sorts spend their time in memcmp; this reads each key's byte once a
 * level. tmp has room for n entries.
 */
#define CS_SMALL	64	/* buckets this small go to qsort */
#define CS_DEPTH	32	/* and any bucket this deep */

static void
counts_radix(struct counts_entry *e, struct counts_entry *tmp, size_t n,
    size_t depth)
{
	size_t	cnt[257], pos[257], i, b;

	if (n < CS_SMALL || depth >= CS_DEPTH) {
		qsort(e, n, sizeof *e, counts_cmp_entry);
		return;
	}
	memset(cnt, 0, sizeof cnt);
	for (i = 0; i < n; i++)
		cnt[e[i].len > depth ? (unsigned char)e[i].key[depth] + 1 : 0]++;
	for (i = 0, b = 0; b < 257; b++) {
		pos[b] = i;
		i += cnt[b];
	}
	for (i = 0; i < n; i++)
		tmp[pos[e[i].len > depth ?
		    (unsigned char)e[i].key[depth] + 1 : 0]++] = e[i];
	memcpy(e, tmp, n * sizeof *e);
	/* Bucket 0: keys that end here, all equal; the others go deeper. */
	for (i = cnt[0], b = 1; b < 257; i += cnt[b++])
		if (cnt[b] > 1)
			counts_radix(e + i, tmp, cnt[b], depth + 1);
}

int
counts_sort(const struct counts *c, struct counts_sorted *out)
{
	struct counts_entry	*e, *tmp;
	size_t			 i, k = 0, w, cap = 0;
	char			*enc;

	memset(out, 0, sizeof *out);
	if ((out->e = e = calloc(c->used + 1, sizeof *e)) == NULL)
		return -1;
	for (i = 0; i <= c->mask; i++) {
		const struct slot *s = &c->slots[i];

		if (s->hash == 0)
			continue;
		e[k].key = c->arena + s->off;
		e[k].len = s->len;
		e[k].n = s->n;
		if (!counts_key_plain((const unsigned char *)e[k].key,
		    e[k].len)) {
			if (out->nown == cap) {
				char **o = reallocarray(out->own, cap * 2 + 16,
				    sizeof *o);

				if (o == NULL)
					goto fail;
				out->own = o;
				cap = cap * 2 + 16;
			}
			if ((enc = counts_json_key(e[k].key, e[k].len,
			    &e[k].len)) == NULL)
				goto fail;
			out->own[out->nown++] = enc;
			e[k].key = enc;
		}
		k++;
	}
	if (k >= CS_SMALL && (tmp = malloc(k * sizeof *tmp)) != NULL) {
		counts_radix(e, tmp, k, 0);
		free(tmp);
	} else
		qsort(e, k, sizeof *e, counts_cmp_entry);
	for (i = 0, w = 0; i < k; i++) {
		if (w > 0 && counts_cmp_entry(&e[w - 1], &e[i]) == 0)
			e[w - 1].n += e[i].n;
		else
			e[w++] = e[i];
	}
	out->n = w;
	return 0;
fail:
	counts_sorted_free(out);
	errno = ENOMEM;
	return -1;
}

void
counts_sorted_free(struct counts_sorted *s)
{
	size_t	i;

	for (i = 0; i < s->nown; i++)
		free(s->own[i]);
	free(s->own);
	free(s->e);
	memset(s, 0, sizeof *s);
}

json_t *
counts_json(const struct counts *c, size_t top)
{
	struct jentry	*e;
	json_t		*obj = NULL;
	size_t		 i, k = 0, w;

	if ((e = calloc(c->used + 1, sizeof *e)) == NULL)
		return NULL;
	for (i = 0; i <= c->mask; i++) {
		const struct slot *s = &c->slots[i];

		if (s->hash == 0)
			continue;
		e[k].key = counts_json_key(c->arena + s->off, s->len,
		    &e[k].len);
		if (e[k].key == NULL)
			goto out;
		e[k++].n = s->n;
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
