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

struct expand_limits {
	size_t		 files_max;	/* files (by device and inode) */
	size_t		 walk_max;	/* directory entries and names looked up */
	size_t		 memory_max;	/* bytes held */
};

/* A listed file as stat(2) saw it (a big file's ranges are cut by it). */
struct expand_id {
	uint64_t	 dev;
	uint64_t	 ino;
	uint64_t	 size;
	int64_t		 mtime_ns;
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
 * unmatched.
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
