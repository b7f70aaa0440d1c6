/*
 * jobqueue.h: jobs, their tasks (expansion, a MAP per file, MERGEs of
 * the partials), fair dispatch, and retention of finished results.
 *
 * A job is a set of files (its patterns expanded with glob(3) by a
 * worker, as an expansion task); each file is one task. The supervisor asks for the next task whenever a worker is
 * idle and hands back the worker's result (or the news that the worker
 * died). Clients wait on jobs through callbacks.
 *
 * Below the pool and control in the daemon's modules: the pool pulls
 * tasks from it, control submits and asks for jobs; it calls neither,
 * nor the supervisor above them, only what they register (struct
 * jobqueue_hooks, and the callbacks of submit and wait). It needs no
 * event loop: the top calls jobqueue_tick once a second.
 */
#ifndef CLFD_JOBQUEUE_H
#define CLFD_JOBQUEUE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "errcode.h"

struct config;
struct job;
struct proto_expanded;
struct proto_merged;
struct proto_result;
struct task;
struct jobqueue_waiter;

/* An error for the client: a protocol error code and a message. */
struct jq_error {
	enum errcode	 code;
	char		 message[256];
};

/* spool: the directory of the workers' partials and results. */
void	 jobqueue_init(const struct config *, const char *spool);
/*
 * Once a second: drop kept results past result_ttl or beyond
 * result_memory or result_disk.
 */
void	 jobqueue_tick(void);
/*
 * Job ids from the file path on: its number is the first id this daemon
 * may give out, and before giving out ids beyond what it last wrote the
 * daemon writes a higher one, so that a daemon started later on the same
 * socket never gives out an id a client of this one may still hold.
 * Without a call ids start from 1.
 */
void	 jobqueue_ids(const char *path);
/*
 * Jobs whose results are kept (a client may still fetch them), or being
 * made of the files a cancelled job had done.
 */
size_t	 jobqueue_kept(void);
/*
 * What the job queue tells the modules above it (each may be NULL); set
 * after jobqueue_init.
 */
struct jobqueue_hooks {
	/* A job was cancelled: its running tasks need not run on. */
	void	(*cancelled)(int64_t job);
};
void	 jobqueue_set_hooks(const struct jobqueue_hooks *);
/* Settings for jobs submitted from now on (after a reload). */
void	 jobqueue_set_config(const struct config *);
void	 jobqueue_free(void);

/*
 * A submit in two steps. jobqueue_submit validates the request and
 * queues the expansion of its patterns for a worker (glob(3) never runs
 * in the supervisor); it returns NULL with err filled in when the
 * request is refused at once. Otherwise cb is called once, later: with
 * the new job's id (> 0) and its number of files, or with -1 and an
 * error (limit: too many files; internal: the expansion failed;
 * shutting_down). The job has no id, and is in no list, until then.
 * It does not start the expansion: the caller stores the job, then calls
 * pool_kick(), whose failing to hand the expansion to a worker may
 * already call cb (and free the job).
 */
typedef void	(*jobqueue_submit_cb)(int64_t id, size_t files_total,
		    const struct jq_error *err, void *arg);
struct job	*jobqueue_submit(const json_t *req, uid_t, pid_t,
		    jobqueue_submit_cb, void *arg, struct jq_error *err);
/* The submitter went away: the job goes on, cb is not called. */
void	 jobqueue_submit_forget(struct job *);

/*
 * A finished job's RESULT: one JSON object with "ok" first, no newline,
 * either as a short text made by the job queue (a cancelled or failed
 * job) or as a file in the spool (size bytes) that a worker wrote.
 */
struct jq_result {
	const char	*text;		/* NULL: see path */
	size_t		 len;
	const char	*path;
	uint64_t	 size;
};

/* 0 with res filled in; -1 with err (not_found, not_finished). */
int	 jobqueue_result(int64_t id, uid_t, struct jq_result *res,
	    struct jq_error *err);

#define JQ_PROGRESS	1
#define JQ_DONE		2
/*
 * Called with a serialized event line (newline included), or for JQ_DONE
 * with the job's result in res (line NULL; or, when the daemon stops,
 * res NULL and a line). After JQ_DONE the waiter is gone: do not unwait
 * it.
 */
typedef void	(*jobqueue_cb)(int kind, const char *line, size_t len,
		    const struct jq_result *res, void *arg);

/* Wait for an unfinished job (check jobqueue_result first). */
struct jobqueue_waiter *jobqueue_wait(int64_t id, uid_t, int progress,
	    jobqueue_cb, void *arg, struct jq_error *err);
void	 jobqueue_unwait(struct jobqueue_waiter *);

/*
 * Replies for status (id > 0), list, cancel; NULL with err filled in.
 * These, jobqueue_result and jobqueue_wait take the asking uid: a job
 * is visible only to the uid that submitted it, and to root; anyone
 * else's is not_found, word for word as a job that does not exist.
 * cancel logs the uid and pid that asked.
 */
json_t	*jobqueue_status(int64_t id, uid_t, struct jq_error *err);
json_t	*jobqueue_list(uid_t);
json_t	*jobqueue_cancel(int64_t id, uid_t, pid_t, struct jq_error *err);
/* Add "queue", "jobs" and "totals" to a stats reply. */
void	 jobqueue_stats(json_t *reply);
/* Empty the cache (a rename; workers remove the rest). */
json_t	*jobqueue_cache_clear(struct jq_error *err);
/* Jobs queued or running. */
size_t	 jobqueue_active(void);

/* Tell every waiting client that the daemon is stopping. */
void	 jobqueue_shutdown(void);

/*
 * For the supervisor: the next task to run, or NULL. Expansions come
 * first (a client waits for each), then merges, then files: fairly
 * across users first, then across each user's jobs.
 */
struct task *jobqueue_next_task(void);
/* The next expansion only (for the slot that runs nothing else). */
struct task *jobqueue_next_expansion(void);
/*
 * The PROTO_EXPAND, PROTO_TASK or PROTO_MERGE message for a task handed
 * over as run id (its spool file is named for it), malloc'd; NULL on
 * ENOMEM or EMSGSIZE. ahead: a core is free for the task's second
 * inflating thread (PROTO_TASK_AHEAD).
 */
uint8_t	*jobqueue_task_message(struct task *, uint64_t id, int ahead,
	    size_t *lenp);
/* MAP tasks waiting for a worker, over every job. */
size_t	 jobqueue_waiting(void);
/* What a task is, so which answer it takes. */
#define JQ_TASK_EXPAND	1	/* answered by PROTO_EXPANDED */
#define JQ_TASK_MAP	2	/* PROTO_RESULT */
#define JQ_TASK_MERGE	3	/* PROTO_MERGED */
int	 jobqueue_task_kind(const struct task *);
/* The file's path; NULL for an expansion or a merge. */
const char *jobqueue_task_path(const struct task *);
/* The task's job id; 0 for an expansion (its job has no id yet). */
int64_t	 jobqueue_task_job(const struct task *);
/* The uid that submitted the task's job. */
uid_t	 jobqueue_task_uid(const struct task *);
/*
 * An expansion's file list; -1 (task still running) when the list does
 * not add up (too long, unsorted, a relative path, a bad index).
 */
int	 jobqueue_task_expanded(struct task *, const struct proto_expanded *);
/* A MAP task's result; -1 (task still running) when it is not one. */
int	 jobqueue_task_done(struct task *, const struct proto_result *);
/* A MERGE task's answer; -1 (task still running) when it makes no sense. */
int	 jobqueue_task_merged(struct task *, const struct proto_merged *);
/* The worker running the task died; why: "killed by signal 9" etc. */
void	 jobqueue_task_lost(struct task *, const char *why);

#endif
