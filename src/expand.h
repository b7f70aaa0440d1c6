/*
 * expand.h: a job's patterns into its file list, in a worker.
 *
 * glob(3) with brace expansion may take seconds on a big brace pattern or
 * a slow filesystem, so it runs in a worker, never in the supervisor.
 */
#ifndef CLFD_EXPAND_H
#define CLFD_EXPAND_H

#include <stddef.h>
#include <stdint.h>

struct expand_result {
	char		**paths;	/* sorted, each once */
	size_t		  npaths;	/* at most files_max + 1 */
	uint32_t	 *unmatched;	/* indexes of patterns matching nothing */
	size_t		  nunmatched;
	size_t		  noutside;	/* matches left out: outside the roots */
	char		  error[128];	/* set when the expansion failed */
};

/*
 * Expand n patterns (GLOB_BRACE) into r: the paths sorted and
 * deduplicated across patterns, the patterns that matched nothing. With
 * roots (NULL-terminated; NULL: any path), a match that is not under one
 * of them once symlinks are resolved is left out and only counted, and a
 * pattern all of whose matches are left out is one that matched nothing:
 * the list never names a file outside the roots. Once
 * more than files_max distinct paths are found it stops, with exactly
 * files_max + 1 paths listed: the job is over its limit. -1 with
 * r->error set on failure (out of memory).
 */
int	expand_patterns(char *const *patterns, size_t n, char *const *roots,
	    size_t files_max, struct expand_result *r);
void	expand_result_clear(struct expand_result *);

#endif
