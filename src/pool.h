/*
 * pool.h: the worker slots. Each slot is one pre-forked worker process
 * on a socketpair, with its state written down (dead, starting, idle,
 * busy, exiting), whether it may be respawned, the task it runs, how
 * often it crashed and when it may be spawned again; and a role, which
 * says which tasks it takes: a worker takes any (expansions first, then
 * merges, then files), the one expander nothing but pattern expansions,
 * so that a submit is answered promptly even while every worker is on a
 * long file.
 *
 * The pool pulls its tasks from the job queue and hands their answers
 * back to it. It never calls up into the module that runs it: what that
 * module needs to hear about (see struct pool_hooks) it registers at
 * pool_init.
 */
#ifndef CLFD_POOL_H
#define CLFD_POOL_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>
#include <jansson.h>

struct config;
struct event_base;

struct pool_hooks {
	/* Workers sent messages or were reaped: counts may have changed. */
	void	(*changed)(void);
	/* Not one worker can be started (each failed its setup). */
	void	(*no_workers)(void);
};

/*
 * Set up the pool on the loop and spawn the expander; the workers come
 * with pool_resize. cfg must live until pool_set_config replaces it;
 * spool is the directory the workers write to. -1 when out of memory.
 */
int	pool_init(struct event_base *, const struct config *,
	    const char *spool, const struct pool_hooks *);
/*
 * n workers: new slots are spawned at once, slots beyond n removed
 * (once their task is over). -1 when out of memory.
 */
int	pool_resize(int n);
/* The workers configured; the number of worker slots (removed ones too). */
int	pool_want(void);
int	pool_nworkers(void);
/*
 * New settings (reload): the workers are replaced, once idle, when a
 * setting that they take at their start changed. 1 when they are.
 */
int	pool_set_config(const struct config *);
/* Hand pending tasks to idle slots. */
void	pool_kick(void);
/*
 * Stop the workers reading files of a cancelled job (they are replaced);
 * its merges run on.
 */
void	pool_cancel_job(int64_t job);
/* SIGCHLD: reap every worker that is gone. */
void	pool_reap(void);
/* Once a second: kill workers past their task's deadline. */
void	pool_tick(time_t now);
/* Stopping: no more tasks or respawns; every worker is asked to go. */
void	pool_stop(void);
/* Worker processes still there. */
int	pool_alive(void);
/* SIGKILL the workers still there; with reap, wait for them too. */
void	pool_kill(int reap);
/* Release every slot (their processes gone). */
void	pool_free(void);
/* Workers up (idle or busy), and busy. */
void	pool_counts(int *alive, int *busy);
/*
 * 1 once every worker slot's worker is up or has failed its setup for
 * good; *up is how many are up.
 */
int	pool_started(int *up);
/*
 * The "workers" object of a stats reply for uid: which job and file a
 * worker is on only when the job is uid's (any, for root).
 */
json_t	*pool_workers_json(uid_t);

#endif
