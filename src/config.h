/*
 * config.h: clfd's settings. Every key has a default (config_defaults), so
 * clfd runs with no config file at all; clfd.conf(5) documents each key.
 */
#ifndef CLFD_CONFIG_H
#define CLFD_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

struct config {
	char	 *file;			/* file loaded, NULL for defaults */
	int	  workers;		/* 0: number of CPUs */
	char	 *socket_path;		/* NULL: per-user default */
	mode_t	  socket_mode;		/* 0600 */
	char	 *socket_group;		/* NULL: the daemon's group */
	char	**roots;		/* NULL-terminated; "/" by default */
	char	 *format;		/* default log format spec, "default" */
	char	**exclude_names;	/* NULL-terminated; the seed's list */
	char	**exclude_exts;		/* NULL-terminated; the seed's list */
	size_t	  line_max;		/* longest line parsed, bytes */
	size_t	  request_max;		/* longest request line, bytes */
	size_t	  patterns_max;		/* patterns per job */
	size_t	  files_max;		/* files per job */
	size_t	  walk_max;		/* directory entries one expansion reads */
	size_t	  jobs_max;		/* jobs queued or running */
	size_t	  jobs_per_user;	/* of them, one uid's */
	size_t	  connections_max;	/* client connections */
	int	  idle_timeout;		/* seconds a client may stall mid-request */
	int	  result_ttl;		/* seconds a finished result is kept */
	size_t	  result_memory;	/* heap bytes of finished jobs kept */
	size_t	  result_disk;		/* bytes of their result files */
	char	 *spool_dir;		/* NULL: $TMPDIR, else /tmp */
	char	 *cache_dir;		/* NULL: $XDG_CACHE_HOME/clfd, ~/.cache/clfd */
	size_t	  cache_max;		/* bytes of cached partials, 0: no cache */
	size_t	  split_size;		/* a bigger plain file goes in ranges */
	size_t	  worker_memory;	/* address space per worker, 0: no limit */
	size_t	  inflate_ahead;	/* gzip this big: inflated in a thread */
	int	  refuse_hardlinks;	/* refuse files with more than one link */
	int	  task_timeout;		/* seconds per file task, 0: none */
	int	  exit_idle;		/* exit after so many idle seconds, 0: never */
};

void	config_defaults(struct config *);
/* Load path over the defaults; -1 with "file:line: why" in err. */
int	config_load(struct config *, const char *path, char *err, size_t errlen);
void	config_free(struct config *);

#endif
