/*
 * supervisor.h: clfd's main process: the event loop, signals, reload
 * and shutdown (the worker slots are in pool.h).
 */
#ifndef CLFD_SUPERVISOR_H
#define CLFD_SUPERVISOR_H

struct config;

struct supervisor_opts {
	const char	*config_file;	/* for SIGHUP; NULL: defaults only */
	const char	*socket_path;	/* NULL: config, then the default */
	int		 workers;	/* 0: config, then CPUs; -1: CPUs */
	int		 idle_exit;	/* seconds, 0: config's exit_idle */
};

/* Run the daemon until it stops; returns the exit code. Takes cfg. */
int	supervisor_main(struct config *cfg, const struct supervisor_opts *);

/* Begin a graceful stop (as SIGTERM). */
void	supervisor_stop(const char *why);

#endif
