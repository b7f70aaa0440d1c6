/*
 * expand.h: a job's patterns into its file list, in a worker.
 *
 * A big brace pattern or a slow filesystem may take seconds, so the
 * expansion runs in a worker (the expander), never in the supervisor.
 */
#ifndef CLFD_EXPAND_H
#define CLFD_EXPAND_H

#include <stddef.h>
#include <stdint.h>

/* Memory an expansion may hold (paths, directory listings, bookkeeping). */
#define EXPAND_MEMORY_MAX	((size_t)256 << 20)

/*
 * What an expansion may do. A regular file bigger than split_size (0:
 * none) is opened to read its first two bytes: such a file is split
 * into byte ranges unless it is gzip. With no_hardlinks
 * (refuse_hardlinks) one with more than one link is not opened.
 */
struct expand_limits {
	size_t		 files_max;	/* files (by device and inode) */
	size_t		 walk_max;	/* directory entries and names looked up */
	size_t		 memory_max;	/* bytes held */
	uint64_t	 split_size;	/* bigger files are looked at for gzip */
	int		 no_hardlinks;
};

#define EXPAND_GZIP	0x1	/* over split_size, gzip's magic first */
#define EXPAND_FLAGS	EXPAND_GZIP	/* every flag there is */

/*
 * A listed file as stat(2) saw it (a big file's ranges are cut by it).
 * EXPAND_GZIP is what the expansion saw: the file may have changed since.
 */
struct expand_id {
	uint64_t	 dev;
	uint64_t	 ino;
	uint64_t	 size;
	int64_t		 mtime_ns;
	uint32_t	 flags;		/* EXPAND_* */
	uint32_t	 pad;
};

struct expand_result {
	char		**paths;	/* sorted, each once */
	struct expand_id *ids;		/* paths[i]'s file */
	size_t		  npaths;	/* at most files_max + 1 */
	uint32_t	 *unmatched;	/* indexes of patterns matching nothing */
	size_t		  nunmatched;
	int		  limit;	/* error is a limit the expansion reached */
	char		  error[128];	/* set when the expansion stopped */
};

/*
 * Expand n patterns into r: brace groups as glob(3) with GLOB_BRACE
 * expands them, then each path component matched with fnmatch(3)
 * (FNM_PERIOD: a leading dot is matched only by a dot), walking down from
 * the roots (NULL-terminated; NULL: any path, from "/") only: a pattern
 * whose leading components cannot lead into a root is never walked, a
 * symlink is followed only to a directory or file inside a root, "."
 * and ".." entries are never matched by a wildcard, and the directories
 * of pseudo-filesystems are never listed. A match is named once per
 * file (device and inode), by its path with the fewest components (the
 * first in byte order among those); a match whose symlinks cannot be
 * resolved is left out. A pattern that names no file is listed in
 * unmatched. A regular file over split_size is opened as the walk
 * reached it (never through a symlink the walk would not follow) and
 * flagged EXPAND_GZIP when it starts with gzip's magic; one that cannot
 * be opened or read is not flagged.
 *
 * Once more than files_max files are found it stops with exactly
 * files_max + 1 paths listed: the job is over its limit. Past walk_max
 * entries looked at or memory_max bytes held it stops with r->limit set
 * and r->error saying which. -1 with r->error set on failure (out of
 * memory, a limit).
 */
int	expand_patterns(char *const *patterns, size_t n, char *const *roots,
	    const struct expand_limits *, struct expand_result *r);
void	expand_result_clear(struct expand_result *);

#endif
