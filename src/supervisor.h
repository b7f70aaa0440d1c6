/*
 * supervisor.h: clfd's main process: the event loop, the worker slots
 * (spawn, reap, respawn with back-off), signals, reload and shutdown.
 */
#ifndef CLFD_SUPERVISOR_H
#define CLFD_SUPERVISOR_H

#include <sys/types.h>

#include <stdint.h>
#include <jansson.h>

struct config;

struct supervisor_opts {
	const char	*config_file;	/* for SIGHUP; NULL: defaults only */
	const char	*socket_path;	/* NULL: config, then the default */
	int		 workers;	/* 0: config, then CPUs; -1: CPUs */
	int		 idle_exit;	/* seconds, 0: config's exit_idle */
};

/* Run the daemon until it stops; returns the exit code. Takes cfg. */
int	supervisor_main(struct config *cfg, const struct supervisor_opts *);

/* Hand pending tasks to idle workers. */
void	supervisor_kick(void);
/*
 * Stop the workers reading files of a cancelled job (they are replaced);
 * its merges run on.
 */
void	supervisor_cancel_job(int64_t job);
/*
 * The "workers" object of a stats reply for uid: which job and file a
 * worker is on only when the job is uid's (any, for root).
 */
json_t	*supervisor_workers_json(uid_t);
/* Seconds since start. */
double	supervisor_uptime(void);
/* Begin a graceful stop (as SIGTERM). */
void	supervisor_stop(const char *why);
/* 1 once stopping. */
int	supervisor_stopping(void);

#endif
