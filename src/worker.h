/*
 * worker.h: a worker process: a blocking loop that takes one file task at
 * a time from the supervisor, runs the analysis and sends the result.
 */
#ifndef CLFD_WORKER_H
#define CLFD_WORKER_H

#include <sys/types.h>

struct config;

/* Exit code of a worker that failed its own setup: do not respawn. */
#define WORKER_EXIT_SETUP	2

/*
 * Note where main()'s argument strings are, before anything reorders
 * argv: a worker writes its title ("clfd: worker 2") there for ps(1).
 */
void	worker_title_init(int argc, char **argv);

/*
 * Run the worker on fd (its end of the socketpair), slot -1 for the
 * expander (which is only sent expansions); parent is the
 * supervisor's pid, to notice that it died before PR_SET_PDEATHSIG was
 * set; spool is the directory its partials and results go to. Never
 * returns.
 */
void	worker_main(int fd, int slot, pid_t parent, const struct config *,
	    const char *spool) __attribute__((noreturn));

#endif
