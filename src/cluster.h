/*
 * cluster.h: the MAP and MERGE steps without a daemon (clfctl map, merge).
 *
 * A scheduler (a Slurm job array, see contrib/slurm/clfd-sbatch) runs
 * `clfctl map` on chunks of the files, each writing one partial, then
 * `clfctl merge` on the partials: the same engine and partial codec as
 * clfd's workers, so the result is the one `clfctl submit` gives.
 */
#ifndef CLFD_CLUSTER_H
#define CLFD_CLUSTER_H

#include <stddef.h>

#include <jansson.h>

/* What cluster_map and cluster_merge return (clfctl's exit codes). */
#define CLUSTER_OK	0	/* done, every file read */
#define CLUSTER_FILES	1	/* done, a file failed; or nothing written */
#define CLUSTER_REFUSED	4	/* bad settings, or partials refused */

struct cluster_map_opts {
	const char	*format;	/* NULL: "default", as clfd's */
	const json_t	*filter;	/* the filter options; NULL: none */
	char *const	*files;
	size_t		 nfiles;
	const char	*out;		/* the partial to write */
	unsigned	 jobs;		/* processes; 0 or 1: this one */
};

/*
 * Analyse the files into one partial at o->out, written to a temporary
 * name and renamed when whole. The filter gets clfd's default
 * exclusions where the options name none, as a submit's does. With jobs
 * > 1 the files are spread over that many processes by size, and their
 * partials merged. Every file is listed in the partial, a failed one
 * too (then CLUSTER_FILES); errors and failed files are told on stderr.
 */
int	cluster_map(const struct cluster_map_opts *);

/*
 * Merge partials into a final result (the compact JSON `submit` gives),
 * top N counts (0: all), in a malloc'd *text of *len bytes. The head's
 * job is null, patterns the partials merged, submitted the merge's start
 * (format and filter are the partials'). CLUSTER_REFUSED, with the
 * partial named on stderr, when one is damaged, of a foreign version,
 * made with other settings, or holds a source another one holds too.
 */
int	cluster_merge(char *const *partials, size_t n, size_t top, char **text,
	    size_t *len);

/*
 * Read a list of files, one path a line (empty lines skipped), into a
 * NULL-terminated malloc'd array of malloc'd paths. -1 with errno.
 */
int	cluster_read_list(const char *path, char ***files, size_t *n);
void	cluster_free_list(char **files);

#endif
