/*
 * counts.h: the path -> count table.
 *
 * Keys are raw path bytes (any byte, NUL included) copied into an arena;
 * adding a key that is already present allocates nothing. Tables merge,
 * and hand out their entries sorted by key (counts_sort) for a worker to
 * write as a partial (partial.h).
 */
#ifndef CLFD_COUNTS_H
#define CLFD_COUNTS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct counts;

struct counts	*counts_new(void);
void		 counts_free(struct counts *);
void		 counts_clear(struct counts *);

/* Add n to key; -1 (errno ENOMEM) when the table cannot grow. */
int		 counts_add(struct counts *, const char *key, size_t len, uint64_t n);
int		 counts_merge(struct counts *dst, const struct counts *src);

/*
 * Add n keys at once, the same as n counts_add calls, faster: the slots
 * of a few keys are fetched from memory together. *done is how many
 * were added; -1 as counts_add, for key *done.
 */
#define COUNTS_BATCH	16
struct counts_key {
	const char	*key;
	size_t		 len;
	uint64_t	 n;
};
int		 counts_add_batch(struct counts *, const struct counts_key *,
		    size_t n, size_t *done);

size_t		 counts_size(const struct counts *);	/* distinct keys */
uint64_t	 counts_total(const struct counts *);	/* sum of counts */
uint64_t	 counts_get(const struct counts *, const char *key, size_t len);
size_t		 counts_memory(const struct counts *);	/* bytes held */

/* Visit every entry in table order; a non-zero return from fn stops. */
typedef int	(*counts_fn)(const char *key, size_t len, uint64_t n, void *arg);
int		 counts_foreach(const struct counts *, counts_fn, void *arg);

/*
 * JSON object path -> count, ordered by count descending then by path
 * bytes; top > 0 keeps only the first top entries. Bytes that are not
 * valid UTF-8 are percent-encoded (%XX), so the JSON is always valid.
 */
json_t		*counts_json(const struct counts *, size_t top);

/*
 * s/len as counts_json writes a key: bytes that are not valid UTF-8, and
 * NUL, become %XX. A malloc'd string of *outlen bytes, NUL-terminated;
 * NULL on ENOMEM. For any other text from a log or a file name.
 */
char		*counts_json_key(const char *s, size_t len, size_t *outlen);

/*
 * The table's entries in key order, keys as counts_json writes them
 * (counts_json_key), keys that became equal once encoded summed: what a
 * partial holds. counts_sorted_at gives entry i (i < n); its key points
 * into the table, or into the list for the few keys that needed
 * encoding: the table must outlive the list, and not be added to while
 * the list is in use. The sort borrows the table's index as scratch
 * space; the table stays whole (counts_get walks it, the next
 * counts_add indexes it again). -1 on ENOMEM.
 */
struct counts_entry {
	const char	*key;
	size_t		 len;
	uint64_t	 n;
};

struct counts_sorted {
	void			*e;		/* the entries, private */
	size_t			 n;
	size_t			 cap;
	void			**own;		/* encoded keys, malloc'd */
	size_t			 nown;
};

int		 counts_sort(struct counts *, struct counts_sorted *);
void		 counts_sorted_at(const struct counts_sorted *, size_t i,
		    struct counts_entry *);
void		 counts_sorted_free(struct counts_sorted *);

#endif
