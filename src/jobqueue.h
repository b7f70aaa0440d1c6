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
 * jobqueue_hooks, and the callbacks of submit and wait). It speaks no
 * JSON: it answers with plain data (struct jq_info, struct jq_stats),
 * which the modules above turn into replies (reply.c), and takes a
 * request already checked (request.c). It needs no event loop: the top
 * calls jobqueue_tick once a second.
 */
#ifndef CLFD_JOBQUEUE_H
#define CLFD_JOBQUEUE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "errcode.h"

struct config;
struct job;
struct proto_expanded;
struct proto_merged;
struct proto_result;
struct submit_req;
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
 * A job as the job queue tells of it (status, list, the hooks, a
 * waiter's events): plain data; the pointers are the job's, valid until
 * the job queue is next called.
 */
struct jq_info {
	int64_t		 id;
	const char	*state;		/* "expanding", "queued", "running",
					   "done", "cancelled" */
	int		 has_result;	/* finished: see finished, elapsed */
	int		 cancelling;	/* cancelled; its files done merge */
	size_t		 files_total;
	size_t		 files_done;
	size_t		 files_failed;
	uint64_t	 bytes_done;
	time_t		 submitted;
	time_t		 finished;
	double		 elapsed;	/* seconds */
	char *const	*patterns;	/* NULL-terminated */
	char *const	*unmatched;	/* NULL-terminated: those that matched
					   no file, in order */
	const char	*format;
	const char	*filter;	/* canonical JSON text (request.h) */
};

/* The job queue's counters, for stats (no walk over the jobs). */
struct jq_stats {
	size_t		 jobs_expanding, jobs_queued, jobs_running;
	size_t		 tasks_pending;
	uint64_t	 submitted, done, cancelled, kept;	/* jobs */
	uint64_t	 files, lines, bytes;			/* totals */
	uint64_t	 cache_hits, cache_content, cache_resumed;
	uint64_t	 cache_misses, cache_off;
	uint64_t	 cache_stored, cache_evicted;		/* bytes, entries */
};

/*
 * What the job queue tells the modules above it, or asks of them; set
 * after jobqueue_init. cancelled may be NULL; without result_head and
 * result_text no result can be made (every job ends "out of memory").
 */
struct jobqueue_hooks {
	/* A job was cancelled: its running tasks need not run on. */
	void	(*cancelled)(int64_t job);
	/*
	 * The text of a result's opening members, without the closing
	 * brace, for the final merge to go on from; malloc'd, NULL on
	 * ENOMEM.
	 */
	char	*(*result_head)(const struct jq_info *);
	/*
	 * The whole text of a result with no counts: a cancelled job
	 * (code cancelled), or one whose merging failed; malloc'd, NULL on
	 * ENOMEM.
	 */
	char	*(*result_text)(const struct jq_info *, enum errcode,
		    const char *msg);
};
void	 jobqueue_set_hooks(const struct jobqueue_hooks *);
/* Settings for jobs submitted from now on (after a reload). */
void	 jobqueue_set_config(const struct config *);
void	 jobqueue_free(void);

/*
 * Whether uid may submit a job now: 0, or -1 with err (shutting_down,
 * limit). jobqueue_submit asks again; control asks first, so that a
 * daemon at its limits says so before it checks the request.
 */
int	 jobqueue_admit(uid_t, struct jq_error *err);
/*
 * A submit in two steps. jobqueue_submit takes a checked request
 * (request_submit) and queues the expansion of its patterns for a
 * worker (glob(3) never runs in the supervisor). It takes over what req
 * holds, whether it succeeds or not: req is left empty. It returns NULL
 * with err filled in when the submit is refused at once (shutting_down,
 * limit, internal). Otherwise cb is called once, later: with
 * the new job's id (> 0) and its number of files, or with -1 and an
 * error (limit: too many files; internal: the expansion failed;
 * shutting_down). The job has no id, and is in no list, until then.
 * It does not start the expansion: the caller stores the job, then calls
 * pool_kick(), whose failing to hand the expansion to a worker may
 * already call cb (and free the job).
 */
typedef void	(*jobqueue_submit_cb)(int64_t id, size_t files_total,
		    const struct jq_error *err, void *arg);
struct job	*jobqueue_submit(struct submit_req *req, uid_t, pid_t,
		    jobqueue_submit_cb, void *arg, struct jq_error *err);
/* The submitter went away: the job goes on, cb is not called. */
void	 jobqueue_submit_forget(struct job *);

/*
 * A finished job's RESULT: one JSON object with "ok" first, no newline,
 * either as a short text (result_text: a cancelled or failed job) or as
 * a file in the spool (size bytes) that a worker wrote; neither when it
 * could not be made (out of memory).
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
 * Called with the job as it is (info): for JQ_PROGRESS, at most every
 * 250 ms; for JQ_DONE with its result in res, or when the daemon stops
 * with res NULL (the job did not finish). After JQ_DONE the waiter is
 * gone: do not unwait it.
 */
typedef void	(*jobqueue_cb)(int kind, const struct jq_info *info,
		    const struct jq_result *res, void *arg);

/* Wait for an unfinished job (check jobqueue_result first). */
struct jobqueue_waiter *jobqueue_wait(int64_t id, uid_t, int progress,
	    jobqueue_cb, void *arg, struct jq_error *err);
void	 jobqueue_unwait(struct jobqueue_waiter *);

/*
 * A job (status): 0 with info filled in, or -1 with err. This, list,
 * cancel, jobqueue_result and jobqueue_wait take the asking uid: a job
 * is visible only to the uid that submitted it, and to root; anyone
 * else's is not_found, word for word as a job that does not exist.
 */
int	 jobqueue_info(int64_t id, uid_t, struct jq_info *info,
	    struct jq_error *err);
/*
 * The jobs uid may see, in the order they got their ids: the one after
 * prev (NULL: the first) with info filled in, or NULL after the last.
 * Hold prev only while the job queue is not called otherwise.
 */
const struct job *jobqueue_list(uid_t, const struct job *prev,
	    struct jq_info *info);
/*
 * Cancel a job: 0, or -1 with err (not_found, finished). It logs the
 * uid and pid that asked.
 */
int	 jobqueue_cancel(int64_t id, uid_t, pid_t, struct jq_error *err);
void	 jobqueue_stats(struct jq_stats *);
/* Empty the cache (a rename; workers remove the rest): 0, or -1 with err. */
int	 jobqueue_cache_clear(struct jq_error *err);
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
