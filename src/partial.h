/*
 * partial.h: a partial result, the one format of the wire, the spool, the
 * cache and the cluster.
 *
 * A partial is the analysis of one or more sources (files, or byte ranges
 * of files) under one set of analysis settings: the settings' text and
 * digest, every source's identity and statistics, and the counts sorted by
 * key bytes, so that partials merge as a streaming k-way merge and a merge
 * of partials is a partial again. Keys are stored as a result writes them
 * (counts_json_key: bytes that are not valid UTF-8, and NUL, as %XX), so a
 * merge never has to look at two keys that differ only in encoding.
 *
 * Layout, all integers little-endian, every length checked on reading:
 *
 *	header	"CLFDPART" u32 version u32 flags u64 settings digest
 *		u32 settings length, u32 number of sources, settings text
 *	source	u32 path length, path, u64 dev ino size, i64 mtime_ns
 *		ctime_ns, u64 off end fingerprint digest, the statistics
 *		(u64 bytes raw_bytes lines matched malformed filtered
 *		counted, u32 flags, u32 error length, error text,
 *		u64 not_request, u32 length of the first malformed line,
 *		its first min(length, STATS_SAMPLE) bytes)
 *	key	u32 length, u64 count, key bytes (strictly increasing)
 *	trailer	u32 0xffffffff, u64 number of keys, u64 sum of counts,
 *		u64 XXH3-64 of every byte before it
 *
 * Bump PARTIAL_VERSION if any of this changes.
 */
#ifndef CLFD_PARTIAL_H
#define CLFD_PARTIAL_H

#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

#define PARTIAL_MAGIC	"CLFDPART"
#define PARTIAL_VERSION	2
#define PARTIAL_KEY_MAX	0xfffffffeu	/* 0xffffffff marks the trailer */

/* One source of a partial: its name, its identity, what was found. */
struct partial_source {
	const char		*path;
	size_t			 path_len;
	struct source_id	 id;
	struct file_stats	 st;
};

/*
 * The settings text of an analysis (format, filter JSON with sorted keys,
 * line cap), written into every partial and compared on merging; its
 * digest is what a cache is keyed on. A malloc'd string; NULL on ENOMEM.
 */
char	*partial_settings(const char *format, const char *filter_json,
	    size_t line_max);
uint64_t partial_digest(const char *settings, size_t len);

/*
 * Writing to fd: create, put the keys in strictly increasing order,
 * finish. The writer buffers; the first error sticks and is returned by
 * finish (-1 with errno: EINVAL for keys out of order). partial_abort
 * frees a writer without finishing it. NULL from new on ENOMEM.
 */
struct partial_writer;

struct partial_writer *partial_writer_new(int fd, const char *settings,
	    size_t settings_len, const struct partial_source *, size_t nsources);
int	 partial_put(struct partial_writer *, const char *key, size_t len,
	    uint64_t n);
int	 partial_finish(struct partial_writer *, uint64_t *nkeys);
void	 partial_abort(struct partial_writer *);

/*
 * Reading: a whole partial, read (mapped when large) and checked (magic, version, every
 * length, key order, checksum) before any of it is used. NULL with a
 * reason in err when it is not a sound partial.
 */
struct partial {
	const uint8_t		*base;
	size_t			 size;
	uint32_t		 version;
	uint64_t		 digest;
	const char		*settings;	/* not NUL-terminated */
	size_t			 settings_len;
	struct partial_source	*sources;
	size_t			 nsources;
	uint64_t		 nkeys;
	uint64_t		 total;
	const uint8_t		*keys;		/* the first key record */
	const uint8_t		*keys_end;
	int			 mapped;	/* base is ours to unmap */
	int			 owned;		/* base is ours to free */
};

struct partial	*partial_open(const char *path, char *err, size_t errlen);
/* The same for bytes in memory (not copied: they must outlive it). */
struct partial	*partial_parse(const uint8_t *buf, size_t len, char *err,
	    size_t errlen);
void		 partial_close(struct partial *);

/* A cursor over the keys of a partial that partial_open checked. */
struct partial_cursor {
	const uint8_t	*p, *end;
	const char	*key;
	size_t		 len;
	uint64_t	 n;
};

void	 partial_cursor_init(struct partial_cursor *, const struct partial *);
/* 1 with the next key in key/len/n, 0 at the end. */
int	 partial_cursor_next(struct partial_cursor *);

/* memcmp order, shorter first on a common prefix. */
int	 partial_keycmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
