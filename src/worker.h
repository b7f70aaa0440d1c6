/*
 * worker.h: a worker process: a blocking loop that takes one file task at
 * a time from the supervisor, runs the analysis and sends the result.
 */
#ifndef CLFD_WORKER_H
#define CLFD_WORKER_H

struct config;

/* Exit code of a worker that failed its own setup: do not respawn. */
#define WORKER_EXIT_SETUP	2

/* Run the worker on fd (its end of the socketpair); never returns. */
void	worker_main(int fd, int slot, const struct config *) __attribute__((noreturn));

#endif
