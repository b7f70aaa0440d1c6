/*
 * cache.h: the persistent cache of per-file partials, on disk.
 *
 * One directory (cache_dir, mode 0700) holding v1/, where each entry is a
 * partial named by its settings' digest and its source's device and inode.
 * Only workers read and write it: an entry is checked whole (partial_open)
 * before use, written to a locked temporary name and renamed, touched
 * when used, and evicted least recently used first once the entries pass
 * cache_max bytes. Clearing renames v1/ aside (cheap enough for the
 * supervisor); workers remove what was set aside.
 */
#ifndef CLFD_CACHE_H
#define CLFD_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct partial;
struct cache;

/*
 * The cache in dir (NULL: the per-user default) bounded by max bytes;
 * NULL when max is 0 or the directory cannot be used (logged).
 */
struct cache	*cache_new(const char *dir, uint64_t max);
void		 cache_free(struct cache *);

/*
 * The entry for a source, checked and touched; NULL when there is none.
 * An entry that is not a sound partial is logged and removed.
 */
struct partial	*cache_get(struct cache *, uint64_t sdigest, uint64_t dev,
		    uint64_t ino);
/*
 * The name of the entry for a source into buf (for a merge to read it as
 * it is, checked by partial_open); -1 when it does not fit.
 */
int		 cache_entry_path(const struct cache *, uint64_t sdigest,
		    uint64_t dev, uint64_t ino, char *buf, size_t len);
/* Remove an entry that did not belong where it was found. */
void		 cache_drop(struct cache *, uint64_t sdigest, uint64_t dev,
		    uint64_t ino);
/*
 * Store an entry for a source, atomically: begin gives a temporary of
 * the entry's, locked, to write the partial into (cp->fd, read and
 * write); commit renames it into place (evicting when the cache is over
 * its bound); abort removes it. begin is -1 when another worker is
 * storing the same entry, or (logged) when it cannot be stored: the file
 * is then only a miss.
 */
struct cache_put {
	int		fd;
	char		tmp[4096];
	char		path[4096];
};

int		 cache_put_begin(struct cache *, uint64_t sdigest,
		    uint64_t dev, uint64_t ino, struct cache_put *);
int		 cache_put_commit(struct cache *, struct cache_put *,
		    uint64_t bytes);
void		 cache_put_abort(struct cache_put *);
/*
 * The content index: a second name for the entry of the last file stored
 * with the same low 32 bits of its decompressed size (a hard link: it
 * outlives the entry's replacement), so that the same content under
 * another inode (a copy, a file compressed by logrotate) can be found
 * and its digest compared. get is checked and touched like cache_get.
 */
int		 cache_index_put(struct cache *, uint64_t sdigest,
		    uint32_t raw_low, uint64_t dev, uint64_t ino);
struct partial	*cache_index_get(struct cache *, uint64_t sdigest,
		    uint32_t raw_low);
/*
 * A gzip file's entry's companion: the XXH3 of the file's compressed
 * bytes, tied to the entry by the entry's checksum, so that a renamed
 * gzip file is checked by hashing its bytes, not inflating them. get:
 * 0 with the sum when the companion belongs to the entry, else -1.
 */
int		 cache_rawsum_put(struct cache *, uint64_t sdigest,
		    uint64_t dev, uint64_t ino, uint64_t entry_sum,
		    uint64_t rawsum);
int		 cache_rawsum_get(struct cache *, uint64_t sdigest,
		    uint64_t dev, uint64_t ino, uint64_t entry_sum,
		    uint64_t *rawsum);
/*
 * Memos: the merged counts of a set of entries (named by the settings'
 * digest and a digest of the entries' checksums), so that a query of the
 * same unchanged files merges one partial, not every entry again. path:
 * the memo's name into buf (-1 when it does not fit). open_tmp: a new
 * temporary to write one to (-1, logged, when none can be made); commit
 * renames it into place (accounted as stored, evicting when over the
 * bound), abort removes it. Memos are evicted like entries.
 */
int		 cache_memo_path(const struct cache *, uint64_t sdigest,
		    uint64_t set, char *buf, size_t len);
int		 cache_memo_open_tmp(struct cache *, uint64_t sdigest,
		    uint64_t set, char *tmp, size_t len);
int		 cache_memo_commit(struct cache *, const char *tmp,
		    uint64_t sdigest, uint64_t set, uint64_t bytes);
/* Bytes stored and entries evicted since the last call. */
void		 cache_take_counts(struct cache *, uint64_t *stored,
		    uint64_t *evicted);

/* The per-user default directory into buf; -1 when there is none. */
int		 cache_default_dir(char *buf, size_t len);
/* Empty the cache in dir (NULL: default): v1/ is renamed aside. */
int		 cache_clear(const char *dir);

#endif
