/*
 * jobqueue.c: jobs and their per-file tasks.
 *
 * submit validates a request and queues an expansion task: a worker
 * expands the patterns into a sorted, deduplicated file list (glob(3)
 * may be slow; the supervisor must never wait on the filesystem), and
 * when the list comes back the job is made, one task per file, and the
 * submitter told its id. Expansions are handed out before file tasks. Tasks are handed out
 * round-robin over the jobs that still have pending tasks, so a small job
 * behind a big one is not starved. A file's task (MAP) leaves its counts
 * in a partial in the spool and sends back its statistics only; the
 * job's partials are merged by workers (MERGE tasks), a few at a time
 * while files are still being read, and at the end into the job's
 * result file, which the control side streams to clients. Nothing here
 * grows with the counts: the job queue only names files. A task whose
 * worker died is retried once, then reported failed; a partial found
 * damaged has its files analysed again. A finished job's result file is
 * kept for result_ttl, bounded by result_disk, its bookkeeping by
 * result_memory.
 *
 * Depends on: request (a submit's settings), analysis, cache, proto,
 * config, log. Used by: pool (pulls tasks, hands back answers), control
 * (jobs), reply (its plain data), supervisor (setup). Calls none of
 * them: a cancel reaches the pool, and a result's text is made by reply,
 * through jobqueue_hooks. No JSON: what it tells is plain data (struct
 * jq_info, jq_stats), made into replies above. No libevent: time passes
 * for it in jobqueue_tick, called by the top.
 */
#include "jobqueue.h"

#include "analysis.h"
#include "cache.h"
#include "config.h"
#include "log.h"
#include "proto.h"
#include "request.h"

#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define JQ_PROGRESS_USEC	250000	/* at most 4 progress events a second */
#define JQ_RETRIES		1	/* a lost task is retried once */
#define JQ_FANIN		8	/* partials a merge waits for, files going */
#define JQ_FANIN_MAX		64	/* partials one merge takes at most */
#define JQ_RANGES_MAX		1024	/* tasks one big file is split into */
#define JQ_ID_BLOCK		100	/* job ids reserved in the id file at once */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_CANCELLED,
    JOB_EXPANDING };
enum task_state { TASK_PENDING, TASK_RUNNING, TASK_DONE };
enum task_kind { TASK_EXPAND, TASK_MAP, TASK_MERGE };

static const char *const job_state_names[] = {
	"queued", "running", "done", "cancelled", "expanding"
};

/*
 * A partial in the spool waiting to be merged: the task that wrote it
 * (its file is named for the task's run id) and the MAP tasks (files)
 * whose counts it holds, to be read again should it prove damaged.
 */
struct part {
	uint64_t	 id;
	size_t		*maps;		/* indexes into the job's tasks */
	size_t		 nmaps;
	/*
	 * ref: no file in the spool but a cache entry (a hit, one MAP
	 * task): key (the settings' digest), dev and ino name it, and its
	 * checksum was sum.
	 */
	int		 ref;
	uint64_t	 key, dev, ino, sum;
};

struct task {
	struct job		*job;
	char			*path;		/* MAP: the file */
	enum task_state		 state;
	enum task_kind		 kind;
	int			 lost;		/* times its worker died */
	int			 redone;	/* times its partial was damaged */
	uint64_t		 run;		/* id of its last hand-over */
	int			 has_part;	/* MAP: its partial is in a part */
	int			 no_ref;	/* MAP: its entry changed: copy */
	/*
	 * MAP: a byte range of a big plain file (ranged), one of the
	 * file's nranges consecutive tasks from tasks[file]; that first
	 * task counts its file's ranges still to finish (left) and whether
	 * the finished file is failed (every range failed).
	 */
	int			 ranged;
	struct analysis_range	 range;
	size_t			 file;
	size_t			 nranges;
	size_t			 left;
	int			 file_failed;
	struct file_stats	*st;		/* MAP: once done */
	/* MERGE: the partials it takes; final: into the result. */
	struct part		*in;
	size_t			 nin;
	int			 final;
	TAILQ_ENTRY(task)	 retry;		/* a job's retries, or merges */
};
TAILQ_HEAD(taskq, task);

struct jobqueue_waiter {
	struct job			*job;
	int				 progress;
	jobqueue_cb			 cb;
	void				*arg;
	TAILQ_ENTRY(jobqueue_waiter)	 entry;
};

/*
 * A user (a uid that submitted): the jobs it may see, its jobs with
 * tasks to hand out, and how many of its jobs are active. Workers go
 * round the users with pending tasks first, then round each user's jobs,
 * so that many jobs of one user do not outweigh one job of another.
 * Kept while a job of the uid is.
 */
struct jq_user {
	uid_t				 uid;
	size_t				 refs;		/* jobs of the uid */
	size_t				 active;	/* expanding, queued, running */
	TAILQ_HEAD(, job)		 jobs;		/* with an id */
	TAILQ_HEAD(, job)		 runq;		/* with pending tasks */
	int				 in_runq;	/* in jq.urunq */
	TAILQ_ENTRY(jq_user)		 entry;		/* jq.users */
	TAILQ_ENTRY(jq_user)		 runq_entry;	/* jq.urunq */
};

struct job {
	int64_t				 id;
	enum job_state			 state;
	uid_t				 uid;
	pid_t				 pid;
	struct jq_user			*user;
	struct submit_req		 req;		/* patterns, filter... */
	char				**unmatched;	/* of req.patterns */
	size_t				 nunmatched;
	char				**roots;
	size_t				 line_max;
	size_t				 files_max;
	uint64_t			 split_size;	/* 0: files go whole */

	/* While expanding: the task, and whom to tell. */
	struct task			 xtask;
	jobqueue_submit_cb		 submit_cb;
	void				*submit_arg;

	struct task			*tasks;		/* sorted by path, then
							   range */
	size_t				 ntasks;
	size_t				 nfiles;	/* (a file may be many
							   tasks: its ranges) */
	size_t				 files_done;
	size_t				 next;		/* first never-run task */
	struct taskq			 retryq;
	size_t				 running;
	size_t				 mapping;	/* MAP tasks of running */
	int				 cancelling;	/* merging what is done */
	size_t				 done;
	size_t				 failed;
	uint64_t			 bytes_done;
	uint64_t			 lines, counted;	/* files done */

	/* Partials not yet merged, and merges not yet answered. */
	struct part			*ready;
	size_t				 nready, ready_cap;
	size_t				 nready_refs;	/* of them, refs */
	size_t				 merging;
	int				 final_made;

	time_t				 submitted, finished;
	struct timeval			 start;
	double				 elapsed;
	struct timeval			 last_progress;
	/* The result: a file in the spool, or a short text made here. */
	char				*result_path;
	uint64_t			 result_size;
	char				*result_text;
	size_t				 result_len;
	int				 result_oom;	/* neither could be made */
	size_t				 cost;		/* heap bytes kept */
	int				 dropped;	/* result expired */
	int				 in_runq;

	TAILQ_HEAD(, jobqueue_waiter)	 waiters;
	TAILQ_ENTRY(job)		 entry;		/* all jobs, or expanding */
	TAILQ_ENTRY(job)		 runq;		/* its user's, pending tasks */
	TAILQ_ENTRY(job)		 uentry;	/* its user's jobs */
	TAILQ_ENTRY(job)		 kept;		/* finished, by age */
};
TAILQ_HEAD(jobq, job);

static struct {
	const struct config	*cfg;
	const char		*spool;
	struct jobqueue_hooks	 hooks;
	struct taskq		 mergeq;	/* merges waiting for a worker */
	struct jobq		 jobs;		/* with an id */
	struct jobq		 expanding;	/* submits not answered yet */
	TAILQ_HEAD(, jq_user)	 users;
	TAILQ_HEAD(, jq_user)	 urunq;		/* users with pending tasks */
	struct jobq		 kept;
	int64_t			 next_id;
	int64_t			 id_reserved;	/* the id file's number */
	char			*id_path;	/* the id file, or NULL */
	int			 id_warned;
	size_t			 active;	/* expanding, queued or running */
	int			 stopping;
	size_t			 kept_bytes;	/* heap of kept jobs */
	uint64_t		 kept_disk;	/* their result files */
	size_t			 nkept;
	size_t			 ncancelling;	/* merging a cancelled job */
	/* So that no op walks the jobs: an index by id, and counters. */
	struct job		**byid;		/* byid[id - byid_base] */
	size_t			 byid_len, byid_cap;
	int64_t			 byid_base;
	size_t			 nstate[5];	/* jobs with an id, by state */
	size_t			 nexpanding;
	size_t			 pending;	/* file tasks waiting */
	uint64_t		 submitted, ndone, ncancelled;
	uint64_t		 files, lines, bytes;
	/* What the workers' caches did (they count; nothing is read here). */
	uint64_t		 cache[8];	/* by status (3 bits) */
	uint64_t		 cache_stored, cache_evicted;
} jq;

static void	jobqueue_finish(struct job *, enum errcode, const char *);
static void	jq_schedule(struct job *);

static void
jq_seterr(struct jq_error *err, enum errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
jq_seterr(struct jq_error *err, enum errcode code, const char *fmt, ...)
{
	va_list	ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

static char **
jq_strv_dup(char *const *v)
{
	size_t	  n = 0, i;
	char	**r;

	if (v == NULL)
		return NULL;
	while (v[n] != NULL)
		n++;
	if ((r = calloc(n + 1, sizeof *r)) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((r[i] = strdup(v[i])) == NULL) {
			while (i > 0)
				free(r[--i]);
			free(r);
			return NULL;
		}
	}
	return r;
}

static void
jq_strv_free(char **v)
{
	size_t	i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/*
 * The job with an id, in O(1): ids are handed out in order, so the index
 * is an array from the oldest id still known, holes where jobs went.
 */
static struct job *
jq_find(int64_t id)
{
	struct job	*j;

	if (id < jq.byid_base || id - jq.byid_base >= (int64_t)jq.byid_len)
		return NULL;
	j = jq.byid[id - jq.byid_base];
	return j != NULL && !j->dropped ? j : NULL;
}

/* Index a job that just got its id (the next one). -1 on ENOMEM. */
static int
jq_index_add(struct job *j)
{
	struct job	**n;
	size_t		  cap;

	if (jq.byid_len == 0)
		jq.byid_base = j->id;
	if (j->id - jq.byid_base != (int64_t)jq.byid_len)
		return -1;		/* not reached: ids come in order */
	if (jq.byid_len == jq.byid_cap) {
		cap = jq.byid_cap * 2 + 64;
		if ((n = reallocarray(jq.byid, cap, sizeof *n)) == NULL)
			return -1;
		jq.byid = n;
		jq.byid_cap = cap;
	}
	jq.byid[jq.byid_len++] = j;
	return 0;
}

/* Forget a job's id; the array's head moves past the ids gone. */
static void
jq_index_del(const struct job *j)
{
	size_t	k = 0;

	if (j->id < jq.byid_base ||
	    j->id - jq.byid_base >= (int64_t)jq.byid_len)
		return;
	jq.byid[j->id - jq.byid_base] = NULL;
	while (k < jq.byid_len && jq.byid[k] == NULL)
		k++;
	if (k > 0 && (k == jq.byid_len || k >= jq.byid_len / 2)) {
		/* (moved by at most half the array: amortised O(1)) */
		memmove(jq.byid, jq.byid + k, (jq.byid_len - k) * sizeof *jq.byid);
		jq.byid_len -= k;
		jq.byid_base += (int64_t)k;
	}
}

static void
jq_set_state(struct job *j, enum job_state st)
{
	if (j->id > 0)
		jq.nstate[j->state]--;
	j->state = st;
	if (j->id > 0)
		jq.nstate[st]++;
}

/*
 * The user of a uid, made if need be; NULL on ENOMEM. A list: as long as
 * the number of uids with jobs, which the socket's mode bounds.
 */
static struct jq_user *
jq_user_find(uid_t uid, int make)
{
	struct jq_user	*u;

	TAILQ_FOREACH(u, &jq.users, entry)
		if (u->uid == uid)
			return u;
	if (!make || (u = calloc(1, sizeof *u)) == NULL)
		return NULL;
	u->uid = uid;
	TAILQ_INIT(&u->jobs);
	TAILQ_INIT(&u->runq);
	TAILQ_INSERT_TAIL(&jq.users, u, entry);
	return u;
}

static void
jq_user_put(struct jq_user *u)
{
	if (--u->refs > 0)
		return;
	TAILQ_REMOVE(&jq.users, u, entry);
	free(u);
}

/* A job has pending tasks: in its user's run queue, the user in ours. */
static void
jq_runq_add(struct job *j, int first)
{
	struct jq_user	*u = j->user;

	if (j->in_runq)
		return;
	if (first)
		TAILQ_INSERT_HEAD(&u->runq, j, runq);
	else
		TAILQ_INSERT_TAIL(&u->runq, j, runq);
	j->in_runq = 1;
	if (u->in_runq)
		return;
	if (first)
		TAILQ_INSERT_HEAD(&jq.urunq, u, runq_entry);
	else
		TAILQ_INSERT_TAIL(&jq.urunq, u, runq_entry);
	u->in_runq = 1;
}

static void
jq_runq_del(struct job *j)
{
	struct jq_user	*u = j->user;

	if (!j->in_runq)
		return;
	TAILQ_REMOVE(&u->runq, j, runq);
	j->in_runq = 0;
	if (u->in_runq && TAILQ_EMPTY(&u->runq)) {
		TAILQ_REMOVE(&jq.urunq, u, runq_entry);
		u->in_runq = 0;
	}
}

/* A job becomes active (expanding, queued, running), or stops being. */
static void
jq_active(struct job *j, int on)
{
	if (on) {
		jq.active++;
		j->user->active++;
	} else {
		jq.active--;
		j->user->active--;
	}
}

/*
 * The job with an id as uid may see it: its own, or any for root. Others'
 * jobs are not found, exactly as jobs that do not exist.
 */
static struct job *
jq_find_for(int64_t id, uid_t uid, struct jq_error *err)
{
	struct job	*j = jq_find(id);

	if (j == NULL || (uid != 0 && j->uid != uid)) {
		jq_seterr(err, ERRC_NOT_FOUND, "no job %lld", (long long)id);
		return NULL;
	}
	return j;
}

/* 1 once the job has a result (finished or cancelled). */
static int
jq_has_result(const struct job *j)
{
	return j->result_path != NULL || j->result_text != NULL ||
	    j->result_oom;
}

static void
jq_part_free(struct part *p)
{
	free(p->maps);
	p->maps = NULL;
	p->nmaps = 0;
}

/* Remove a task's spool file (a partial, or a final merge's result). */
static void
jq_unlink(uint64_t run, int result)
{
	char	path[PATH_MAX];

	if (jq.spool != NULL &&
	    proto_spool_path(path, sizeof path, jq.spool, run, result) == 0 &&
	    unlink(path) == -1 && errno != ENOENT)
		log_warn("%s", path);
}

/* Remove a partial's file from the spool (a cache entry stays). */
static void
jq_part_unlink(const struct part *p)
{
	if (!p->ref)
		jq_unlink(p->id, 0);
}

/* Free a merge task, and remove the partials it still holds. */
static void
jq_merge_free(struct task *t)
{
	size_t	i;

	for (i = 0; i < t->nin; i++) {
		jq_part_unlink(&t->in[i]);
		jq_part_free(&t->in[i]);
	}
	free(t->in);
	free(t);
}

/*
 * A MAP task of a cancelled job that will not be read: no statistics, so
 * that the final merge does not list it.
 */
static void
jq_map_drop(struct task *t)
{
	t->state = TASK_DONE;
	t->has_part = 0;
	free(t->st);
	t->st = NULL;
}

/*
 * The per-file tasks and the partials of a job that has its result (or
 * is being freed): nothing of them is needed any more once no worker
 * holds one of its tasks.
 */
static void
jq_tasks_free(struct job *j)
{
	size_t	i;

	for (i = 0; i < j->nready; i++) {
		jq_part_unlink(&j->ready[i]);
		jq_part_free(&j->ready[i]);
	}
	free(j->ready);
	j->ready = NULL;
	j->nready = j->ready_cap = j->nready_refs = 0;
	for (i = 0; j->tasks != NULL && i < j->ntasks; i++) {
		free(j->tasks[i].path);
		free(j->tasks[i].st);
	}
	free(j->tasks);
	j->tasks = NULL;
}

static void
jq_job_free(struct job *j)
{
	struct jobqueue_waiter	*w;

	while ((w = TAILQ_FIRST(&j->waiters)) != NULL) {
		TAILQ_REMOVE(&j->waiters, w, entry);
		free(w);
	}
	jq_tasks_free(j);
	request_free(&j->req);
	free(j->unmatched);
	jq_strv_free(j->roots);
	if (j->result_path != NULL && unlink(j->result_path) == -1 &&
	    errno != ENOENT)
		log_warn("%s", j->result_path);
	free(j->result_path);
	free(j->result_text);
	if (j->user != NULL)
		jq_user_put(j->user);
	free(j);
}

/* Forget a finished job whose result expired, once no worker holds a task. */
static void
jq_drop(struct job *j)
{
	if (!j->dropped) {
		j->dropped = 1;
		TAILQ_REMOVE(&jq.kept, j, kept);
		jq.kept_bytes -= j->cost;
		jq.kept_disk -= j->result_size;
		jq.nkept--;
	}
	if (j->running > 0)
		return;
	TAILQ_REMOVE(&jq.jobs, j, entry);
	TAILQ_REMOVE(&j->user->jobs, j, uentry);
	jq_index_del(j);
	jq.nstate[j->state]--;
	jq_job_free(j);
}

/*
 * Drop the oldest results past result_ttl, or beyond result_memory (the
 * kept jobs' bookkeeping) or result_disk (their result files). keep (the
 * job that just finished, still in use by the caller) is left to the
 * next tick.
 */
static void
jq_expire(const struct job *keep)
{
	struct job	*j, *next;
	time_t		 now = time(NULL);

	for (j = TAILQ_FIRST(&jq.kept); j != NULL; j = next) {
		next = TAILQ_NEXT(j, kept);
		if (j == keep)
			break;
		if (jq.kept_bytes > jq.cfg->result_memory ||
		    jq.kept_disk > jq.cfg->result_disk ||
		    now - j->finished >= jq.cfg->result_ttl) {
			log_debug("job %lld: result dropped", (long long)j->id);
			jq_drop(j);
		} else
			break;
	}
}

void
jobqueue_tick(void)
{
	jq_expire(NULL);
}

void
jobqueue_init(const struct config *cfg, const char *spool)
{
	memset(&jq, 0, sizeof jq);
	TAILQ_INIT(&jq.jobs);
	TAILQ_INIT(&jq.expanding);
	TAILQ_INIT(&jq.users);
	TAILQ_INIT(&jq.urunq);
	TAILQ_INIT(&jq.kept);
	TAILQ_INIT(&jq.mergeq);
	jq.cfg = cfg;
	jq.spool = spool;
	jq.next_id = 1;
}

void
jobqueue_ids(const char *path)
{
	struct stat	 st;
	char		 buf[32], *end;
	long long	 v;
	ssize_t		 n;
	int		 fd;

	free(jq.id_path);
	if ((jq.id_path = strdup(path)) == NULL)
		fatalx("out of memory");
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			log_warn("job ids: %s", path);
		return;
	}
	n = -1;
	/* Only a file of ours: another user's could make us repeat ids. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid())
		n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		errno = 0;
		v = strtoll(buf, &end, 10);
		if (errno == 0 && v > 0 && v < INT64_MAX / 2 &&
		    (*end == '\n' || *end == '\0')) {
			jq.next_id = jq.id_reserved = v;
			log_debug("job ids: from %lld (%s)", v, path);
			return;
		}
	}
	log_warnx("job ids: %s: not a job id file of ours; ids start from 1",
	    path);
}

/*
 * Write to the id file that ids up to next_id + JQ_ID_BLOCK may be in
 * use, atomically (a new file renamed over it). A failure is logged once:
 * ids then go on, but a later daemon may give them out again.
 */
static void
jq_ids_reserve(void)
{
	char		 tmp[PATH_MAX], buf[32];
	int64_t		 v = jq.next_id + JQ_ID_BLOCK;
	int		 fd, n, ok = 0;

	jq.id_reserved = v;
	if (jq.id_path == NULL)
		return;
	n = snprintf(buf, sizeof buf, "%lld\n", (long long)v);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", jq.id_path) <
	    sizeof tmp && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) != -1) {
		ok = write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
		ok = ok && rename(tmp, jq.id_path) == 0;
		if (!ok)
			(void)unlink(tmp);
	}
	if (!ok && !jq.id_warned) {
		log_warn("job ids: cannot write %s: a later clfd on this "
		    "socket may give out ids this one did", jq.id_path);
		jq.id_warned = 1;
	}
}

size_t
jobqueue_kept(void)
{
	return jq.nkept + jq.ncancelling;
}

void
jobqueue_set_hooks(const struct jobqueue_hooks *hooks)
{
	jq.hooks = *hooks;
}

void
jobqueue_set_config(const struct config *cfg)
{
	jq.cfg = cfg;
}

void
jobqueue_free(void)
{
	struct job	*j;
	struct task	*t;

	while ((j = TAILQ_FIRST(&jq.jobs)) != NULL) {
		TAILQ_REMOVE(&jq.jobs, j, entry);
		TAILQ_REMOVE(&j->user->jobs, j, uentry);
		jq_job_free(j);
	}
	free(jq.id_path);
	jq.id_path = NULL;
	free(jq.byid);
	jq.byid = NULL;
	jq.byid_len = jq.byid_cap = 0;
	while ((j = TAILQ_FIRST(&jq.expanding)) != NULL) {
		TAILQ_REMOVE(&jq.expanding, j, entry);
		jq_job_free(j);
	}
	while ((t = TAILQ_FIRST(&jq.mergeq)) != NULL) {
		TAILQ_REMOVE(&jq.mergeq, t, retry);
		jq_merge_free(t);
	}
}

int
jobqueue_admit(uid_t uid, struct jq_error *err)
{
	struct jq_user	*u;

	if (jq.stopping) {
		jq_seterr(err, ERRC_SHUTTING_DOWN, "clfd is stopping");
		return -1;
	}
	if (jq.active >= jq.cfg->jobs_max) {
		jq_seterr(err, ERRC_LIMIT, "%zu job%s queued or running "
		    "(jobs_max)", jq.active, jq.active == 1 ? "" : "s");
		return -1;
	}
	if ((u = jq_user_find(uid, 0)) != NULL &&
	    u->active >= jq.cfg->jobs_per_user) {
		jq_seterr(err, ERRC_LIMIT, "%zu job%s of uid %lu queued or running "
		    "(jobs_per_user)", u->active, u->active == 1 ? "" : "s",
		    (unsigned long)uid);
		return -1;
	}
	return 0;
}

struct job *
jobqueue_submit(struct submit_req *req, uid_t uid, pid_t pid,
    jobqueue_submit_cb cb, void *arg, struct jq_error *err)
{
	const struct config	*cfg = jq.cfg;
	struct job		*j;
	struct jq_user		*u;

	if (jobqueue_admit(uid, err) == -1) {
		request_free(req);
		return NULL;
	}
	if ((j = calloc(1, sizeof *j)) == NULL ||
	    (u = jq_user_find(uid, 1)) == NULL) {
		free(j);
		request_free(req);
		jq_seterr(err, ERRC_INTERNAL, "out of memory");
		return NULL;
	}
	TAILQ_INIT(&j->retryq);
	TAILQ_INIT(&j->waiters);
	j->user = u;
	u->refs++;
	j->uid = uid;
	j->pid = pid;
	j->req = *req;
	memset(req, 0, sizeof *req);
	j->split_size = cfg->split_size;
	j->line_max = cfg->line_max;
	/* (unmatched: at most every pattern, and the NULL) */
	if ((cfg->roots != NULL && (j->roots = jq_strv_dup(cfg->roots)) ==
	    NULL) || (j->unmatched = calloc(j->req.npatterns + 1,
	    sizeof *j->unmatched)) == NULL) {
		jq_seterr(err, ERRC_INTERNAL, "out of memory");
		goto fail;
	}
	j->state = JOB_EXPANDING;
	j->files_max = cfg->files_max;
	j->submitted = time(NULL);
	gettimeofday(&j->start, NULL);
	j->xtask.job = j;
	j->xtask.kind = TASK_EXPAND;
	j->xtask.state = TASK_PENDING;
	j->submit_cb = cb;
	j->submit_arg = arg;
	TAILQ_INSERT_TAIL(&jq.expanding, j, entry);
	jq.nexpanding++;
	jq_active(j, 1);
	log_debug("submit by uid %lu pid %ld: expanding %zu pattern%s",
	    (unsigned long)uid, (long)pid, j->req.npatterns,
	    j->req.npatterns == 1 ? "" : "s");
	return j;
fail:
	jq_job_free(j);
	return NULL;
}

void
jobqueue_submit_forget(struct job *j)
{
	if (j == NULL)
		return;
	j->submit_cb = NULL;
	j->submit_arg = NULL;
}

/* An expanding job is over: no longer expanding, nor active. */
static void
jq_expand_end(struct job *j)
{
	TAILQ_REMOVE(&jq.expanding, j, entry);
	jq.nexpanding--;
	jq_active(j, 0);
}

/* The submit failed after all: tell the submitter and forget the job. */
static void
jq_submit_fail(struct job *j, const struct jq_error *err)
{
	log_info("submit by uid %lu pid %ld refused: %s: %s",
	    (unsigned long)j->uid, (long)j->pid, errcode_name(err->code),
	    err->message);
	jq_expand_end(j);
	if (j->submit_cb != NULL)
		j->submit_cb(-1, 0, err, j->submit_arg);
	jq_job_free(j);
}

/* The file list is in: the job gets its id and tasks; tell the submitter. */
static void
jq_submit_made(struct job *j)
{
	jobqueue_submit_cb	 cb = j->submit_cb;
	void			*arg = j->submit_arg;
	int64_t			 id;
	size_t			 n = j->nfiles;
	char			 ranges[48] = "";

	jq_expand_end(j);
	j->submit_cb = NULL;
	j->submit_arg = NULL;
	if (jq.next_id >= jq.id_reserved)
		jq_ids_reserve();
	j->id = id = jq.next_id++;
	if (jq_index_add(j) == -1) {
		struct jq_error	e;

		j->id = 0;
		jq.next_id--;
		jq_seterr(&e, ERRC_INTERNAL, "out of memory");
		jq_active(j, 1);	/* (jq_submit_fail takes it back) */
		TAILQ_INSERT_TAIL(&jq.expanding, j, entry);
		jq.nexpanding++;
		j->submit_cb = cb;
		j->submit_arg = arg;
		jq_submit_fail(j, &e);
		return;
	}
	j->state = JOB_QUEUED;
	jq.nstate[JOB_QUEUED]++;
	jq.pending += j->ntasks;
	TAILQ_INSERT_TAIL(&jq.jobs, j, entry);
	TAILQ_INSERT_TAIL(&j->user->jobs, j, uentry);
	jq_active(j, 1);
	jq.submitted++;
	if (j->ntasks != j->nfiles)
		snprintf(ranges, sizeof ranges, " (%zu tasks)", j->ntasks);
	log_info("job %lld: submitted by uid %lu pid %ld: %zu pattern%s, "
	    "%zu file%s%s, %zu unmatched%s", (long long)j->id,
	    (unsigned long)j->uid, (long)j->pid, j->req.npatterns,
	    j->req.npatterns == 1 ? "" : "s", j->nfiles,
	    j->nfiles == 1 ? "" : "s", ranges, j->nunmatched,
	    cb == NULL ? " (its client is gone)" : "");
	if (j->ntasks == 0)
		jq_schedule(j);		/* the final merge: an empty result */
	else
		jq_runq_add(j, 0);
	/* (j may be finished, but is kept: jq_expire spares it) */
	if (cb != NULL)
		cb(id, n, NULL, arg);
}

/*
 * The MAP tasks of a listed file: one, or for a plain file bigger than
 * the job's split_size as the expansion saw it, one per split_size bytes
 * (at most JQ_RANGES_MAX, the ranges made bigger past that), *step
 * bytes each but the last. A file the expansion found to be gzip is one
 * task. The worker checks again (the file may have changed since): a
 * gzip file's ranges but the first read nothing.
 */
static size_t
jq_ranges(const struct job *j, const struct expand_id *id, uint64_t *step)
{
	uint64_t	n;

	*step = 0;
	if (j->split_size == 0 || id->size <= j->split_size ||
	    (id->flags & EXPAND_GZIP))
		return 1;
	*step = j->split_size;
	n = (id->size + *step - 1) / *step;
	if (n > JQ_RANGES_MAX) {
		*step = (id->size + JQ_RANGES_MAX - 1) / JQ_RANGES_MAX;
		n = (id->size + *step - 1) / *step;
	}
	return (size_t)n;
}

/*
 * 1 when a worker's file list makes sense for the expansion task t: at
 * most files_max + 1 absolute paths, sorted and unique, and unmatched
 * pattern indexes in range and increasing.
 */
static int
jq_expanded_valid(const struct task *t, const struct proto_expanded *x)
{
	const struct job	*j = t->job;
	const char		*p, *prev = NULL;
	size_t			 np = j->req.npatterns, i;
	uint32_t		 k, last = 0;

	if (t->kind != TASK_EXPAND || t->state != TASK_RUNNING ||
	    x->f.npaths > (uint64_t)j->files_max + 1)
		return 0;
	for (i = 0; i < x->f.nunmatched; i++) {
		memcpy(&k, x->unmatched + i * sizeof k, sizeof k);
		if (k >= np || (i > 0 && k <= last))
			return 0;
		last = k;
	}
	for (i = 0, p = x->paths; i < x->f.npaths; i++, p += strlen(p) + 1) {
		if (p[0] != '/' || (prev != NULL && strcmp(prev, p) >= 0))
			return 0;
		prev = p;
	}
	return 1;
}

int
jobqueue_task_expanded(struct task *t, const struct proto_expanded *x)
{
	struct job	*j = t->job;
	struct jq_error	 err;
	struct expand_id id;
	const char	*p;
	size_t		 i, n, r, nr, total;
	uint64_t	 step;
	uint32_t	 k;

	/* The worker's list is checked whole before any of it is used. */
	if (!jq_expanded_valid(t, x)) {
		log_warnx("submit by uid %lu pid %ld: malformed file list from "
		    "a worker", (unsigned long)j->uid, (long)j->pid);
		return -1;
	}
	t->state = TASK_DONE;
	if (jq.stopping) {
		jq_expand_end(j);
		jq_job_free(j);
		return 0;
	}
	if (x->f.error_len > 0 && x->f.code == PROTO_X_FORMAT) {
		char	msg[200];

		snprintf(msg, sizeof msg, "%.*s", (int)x->f.error_len, x->error);
		err.code = ERRC_BAD_FIELD;
		request_field_msg(err.message, sizeof err.message, "format",
		    msg);
		jq_submit_fail(j, &err);
		return 0;
	}
	if (x->f.error_len > 0) {
		if (x->f.limit)
			jq_seterr(&err, ERRC_LIMIT, "%.*s", (int)x->f.error_len,
			    x->error);
		else
			jq_seterr(&err, ERRC_INTERNAL, "expanding patterns: %.*s",
			    (int)x->f.error_len, x->error);
		jq_submit_fail(j, &err);
		return 0;
	}
	if (x->f.npaths > j->files_max) {
		jq_seterr(&err, ERRC_LIMIT, "more than %zu file%s (files_max)",
		    j->files_max, j->files_max == 1 ? "" : "s");
		jq_submit_fail(j, &err);
		return 0;
	}
	for (i = 0; i < x->f.nunmatched; i++) {
		memcpy(&k, x->unmatched + i * sizeof k, sizeof k);
		j->unmatched[j->nunmatched++] = j->req.patterns[k];
	}
	n = x->f.npaths;
	for (i = 0, total = 0; i < n; i++) {
		memcpy(&id, x->ids + i * sizeof id, sizeof id);
		total += jq_ranges(j, &id, &step);
	}
	if (total > 0 && (j->tasks = calloc(total, sizeof *j->tasks)) == NULL)
		goto nomem;
	for (i = 0, p = x->paths; i < n; i++, p += strlen(p) + 1) {
		memcpy(&id, x->ids + i * sizeof id, sizeof id);
		nr = jq_ranges(j, &id, &step);
		for (r = 0; r < nr; r++) {
			struct task	*mt = &j->tasks[j->ntasks];

			mt->job = j;
			mt->kind = TASK_MAP;
			mt->state = TASK_PENDING;
			mt->file = j->ntasks - r;
			mt->nranges = mt->left = nr;
			if (nr > 1) {
				mt->ranged = 1;
				mt->range.off = r * step;
				mt->range.end = r + 1 < nr ? (r + 1) * step :
				    id.size;
				mt->range.size = id.size;
				mt->range.dev = id.dev;
				mt->range.ino = id.ino;
				mt->range.mtime_ns = id.mtime_ns;
			}
			if ((mt->path = strdup(p)) == NULL)
				goto nomem;
			j->ntasks++;
		}
		j->nfiles++;
	}
	jq_submit_made(j);
	return 0;
nomem:
	jq_seterr(&err, ERRC_INTERNAL, "out of memory");
	jq_submit_fail(j, &err);
	return 0;
}

/*
 * A task whose file failed: nothing of it counted. The flag decides, not
 * the error text, which a partial file has too; FAILED wins over PARTIAL.
 */
static int
jq_task_failed(const struct task *t)
{
	return t->st != NULL && (t->st->flags & STATS_FAILED) != 0;
}

/* What the job is, for the modules above (pointers into the job). */
static void
jq_info_of(const struct job *j, struct jq_info *info)
{
	memset(info, 0, sizeof *info);
	info->id = j->id;
	info->state = job_state_names[j->state];
	info->has_result = jq_has_result(j);
	info->cancelling = j->cancelling;
	info->files_total = j->nfiles;
	info->files_done = j->files_done;
	info->files_failed = j->failed;
	info->bytes_done = j->bytes_done;
	info->submitted = j->submitted;
	info->finished = j->finished;
	info->elapsed = j->elapsed;
	info->patterns = j->req.patterns;
	info->unmatched = j->unmatched;
	info->format = j->req.format;
	info->filter = j->req.filter;
}

/*
 * The final merge's head: the result's opening members without the
 * closing brace, from the hook; the merge writes the rest. NULL on
 * ENOMEM.
 */
static char *
jq_result_head(const struct job *j)
{
	struct jq_info	info;

	if (jq.hooks.result_head == NULL)
		return NULL;
	jq_info_of(j, &info);
	return jq.hooks.result_head(&info);
}

/*
 * A result made here, with no counts: a cancelled job (how far it got),
 * or one whose merging failed. 0, or -1 on ENOMEM.
 */
static int
jq_text_result(struct job *j, enum errcode code, const char *msg)
{
	struct jq_info	info;

	if (jq.hooks.result_text == NULL)
		return -1;
	jq_info_of(j, &info);
	if ((j->result_text = jq.hooks.result_text(&info, code, msg)) == NULL)
		return -1;
	j->result_len = strlen(j->result_text);
	return 0;
}

static void
jq_result_of(const struct job *j, struct jq_result *res)
{
	memset(res, 0, sizeof *res);
	res->text = j->result_text;
	res->len = j->result_len;
	res->path = j->result_path;
	res->size = j->result_size;
}

/* Send the "done" event to every waiter and forget them. */
static void
jq_notify_done(struct job *j)
{
	struct jobqueue_waiter	*w;
	struct jq_result	 res;
	struct jq_info		 info;

	jq_result_of(j, &res);
	jq_info_of(j, &info);
	while ((w = TAILQ_FIRST(&j->waiters)) != NULL) {
		TAILQ_REMOVE(&j->waiters, w, entry);
		w->cb(JQ_DONE, &info, &res, w->arg);
		free(w);
	}
}

/*
 * The job is over: its final merge wrote the result file, or it was
 * cancelled, or its merging failed (code and msg say how). Tell the
 * waiters, keep the result, free what only the running job needed.
 */
static void
jobqueue_finish(struct job *j, enum errcode code, const char *msg)
{
	struct timeval	 now, d;
	struct task	*t, *next;

	jq_runq_del(j);
	/* Merges still waiting for a worker will not be needed. */
	for (t = TAILQ_FIRST(&jq.mergeq); t != NULL; t = next) {
		next = TAILQ_NEXT(t, retry);
		if (t->job == j) {
			TAILQ_REMOVE(&jq.mergeq, t, retry);
			j->merging--;
			jq_merge_free(t);
		}
	}
	while ((t = TAILQ_FIRST(&j->retryq)) != NULL) {
		TAILQ_REMOVE(&j->retryq, t, retry);
		t->state = TASK_DONE;
		jq.pending--;
	}
	jq.pending -= j->ntasks - j->next;
	j->next = j->ntasks;
	if (j->state != JOB_CANCELLED)
		jq_set_state(j, JOB_DONE);
	if (!j->cancelling)
		jq_active(j, 0);
	else
		jq.ncancelling--;
	j->finished = time(NULL);
	gettimeofday(&now, NULL);
	timersub(&now, &j->start, &d);
	j->elapsed = (double)d.tv_sec + (double)d.tv_usec / 1e6;
	if (j->state == JOB_DONE)
		jq.ndone++;
	else
		jq.ncancelled++;

	if (j->state == JOB_DONE && code == ERRC_NONE)
		log_info("job %lld: done: %zu file%s (%zu failed), %llu line%s, "
		    "%llu counted, %.3fs, result %llu bytes", (long long)j->id,
		    j->nfiles, j->nfiles == 1 ? "" : "s", j->failed,
		    (unsigned long long)j->lines, j->lines == 1 ? "" : "s",
		    (unsigned long long)j->counted, j->elapsed,
		    (unsigned long long)j->result_size);
	else if (j->state == JOB_CANCELLED)
		log_info("job %lld: cancelled after %zu of %zu file%s, %.3fs",
		    (long long)j->id, j->files_done, j->nfiles,
		    j->nfiles == 1 ? "" : "s", j->elapsed);
	else if (code != ERRC_NONE)
		log_warnx("job %lld: failed: %s", (long long)j->id, msg);
	if (j->result_path == NULL && (j->state == JOB_CANCELLED ||
	    code != ERRC_NONE) && jq_text_result(j, j->state == JOB_CANCELLED ?
	    ERRC_CANCELLED : code, j->state == JOB_CANCELLED ?
	    "job was cancelled" : msg) == -1) {
		log_warnx("job %lld: out of memory building the result",
		    (long long)j->id);
		free(j->result_text);
		j->result_text = NULL;
	}
	if (!jq_has_result(j))
		j->result_oom = 1;
	if (j->running == 0)
		jq_tasks_free(j);
	j->cost = sizeof *j + j->result_len + (j->result_path != NULL ?
	    strlen(j->result_path) + 1 : 0) + (j->req.filter != NULL ?
	    3 * strlen(j->req.filter) : 0) + 3 * (j->req.format != NULL ?
	    strlen(j->req.format) : 0) + 256 * (j->req.npatterns +
	    j->nunmatched);
	TAILQ_INSERT_TAIL(&jq.kept, j, kept);
	jq.kept_bytes += j->cost;
	jq.kept_disk += j->result_size;
	jq.nkept++;
	jq_notify_done(j);
	jq_expire(j);
}

int
jobqueue_result(int64_t id, uid_t uid, struct jq_result *res,
    struct jq_error *err)
{
	struct job	*j;

	if ((j = jq_find_for(id, uid, err)) == NULL)
		return -1;
	if (!jq_has_result(j)) {
		jq_seterr(err, ERRC_NOT_FINISHED, "job %lld is %s%s", (long long)id,
		    job_state_names[j->state], j->cancelling ? ": its files "
		    "done are being merged" : "");
		return -1;
	}
	jq_result_of(j, res);
	return 0;
}

struct jobqueue_waiter *
jobqueue_wait(int64_t id, uid_t uid, int progress, jobqueue_cb cb,
    void *arg, struct jq_error *err)
{
	struct jobqueue_waiter	*w;
	struct job		*j;

	if ((j = jq_find_for(id, uid, err)) == NULL)
		return NULL;
	if (jq_has_result(j)) {
		jq_seterr(err, ERRC_INTERNAL, "job %lld already finished",
		    (long long)id);
		return NULL;
	}
	if ((w = calloc(1, sizeof *w)) == NULL) {
		jq_seterr(err, ERRC_INTERNAL, "out of memory");
		return NULL;
	}
	w->job = j;
	w->progress = progress;
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&j->waiters, w, entry);
	return w;
}

void
jobqueue_unwait(struct jobqueue_waiter *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(&w->job->waiters, w, entry);
	free(w);
}

/* Send a progress event to waiters that asked, at most every 250 ms. */
static void
jq_progress(struct job *j)
{
	struct jobqueue_waiter	*w, *next;
	struct timeval		 now, d;
	struct jq_info		 info;

	gettimeofday(&now, NULL);
	timersub(&now, &j->last_progress, &d);
	if (d.tv_sec == 0 && d.tv_usec < JQ_PROGRESS_USEC)
		return;
	j->last_progress = now;
	jq_info_of(j, &info);
	for (w = TAILQ_FIRST(&j->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->progress)
			w->cb(JQ_PROGRESS, &info, NULL, w->arg);
	}
}

int
jobqueue_info(int64_t id, uid_t uid, struct jq_info *info,
    struct jq_error *err)
{
	struct job	*j;

	if ((j = jq_find_for(id, uid, err)) == NULL)
		return -1;
	jq_info_of(j, info);
	return 0;
}

const struct job *
jobqueue_list(uid_t uid, const struct job *prev, struct jq_info *info)
{
	const struct job	*j;
	struct jq_user		*u;

	/* Only the uid's own jobs, without walking anyone else's. */
	if (prev != NULL)
		j = uid == 0 ? TAILQ_NEXT(prev, entry) :
		    TAILQ_NEXT(prev, uentry);
	else if (uid == 0)
		j = TAILQ_FIRST(&jq.jobs);
	else
		j = (u = jq_user_find(uid, 0)) != NULL ?
		    TAILQ_FIRST(&u->jobs) : NULL;
	while (j != NULL && j->dropped)
		j = uid == 0 ? TAILQ_NEXT(j, entry) : TAILQ_NEXT(j, uentry);
	if (j != NULL)
		jq_info_of(j, info);
	return j;
}

int
jobqueue_cancel(int64_t id, uid_t uid, pid_t pid, struct jq_error *err)
{
	struct job	*j;
	struct task	*t;

	if ((j = jq_find_for(id, uid, err)) == NULL)
		return -1;
	/* Too late: the result is what it is (and a script should know). */
	if (jq_has_result(j) || j->cancelling) {
		jq_seterr(err, ERRC_FINISHED, "job %lld is already %s",
		    (long long)j->id, job_state_names[j->state]);
		return -1;
	}
	if (j->final_made) {
		jq_seterr(err, ERRC_FINISHED, "job %lld is already merging its "
		    "result: every file is done", (long long)j->id);
		return -1;
	}
	log_info("job %lld: cancelled by uid %lu pid %ld after %zu of %zu "
	    "file%s", (long long)id, (unsigned long)uid, (long)pid, j->done,
	    j->ntasks, j->ntasks == 1 ? "" : "s");
	/*
	 * Files not started are dropped, files being read are stopped; the
	 * files done are merged into the result, which says it is partial.
	 * Merges under way go on: they hold files done.
	 */
	jq_set_state(j, JOB_CANCELLED);
	j->cancelling = 1;
	/* No longer a job of the limits: its merge is short and bounded. */
	jq_active(j, 0);
	jq.ncancelling++;
	jq_runq_del(j);
	while ((t = TAILQ_FIRST(&j->retryq)) != NULL) {
		TAILQ_REMOVE(&j->retryq, t, retry);
		jq_map_drop(t);
		jq.pending--;
	}
	jq.pending -= j->ntasks - j->next;
	j->next = j->ntasks;
	if (jq.hooks.cancelled != NULL)
		jq.hooks.cancelled(j->id);
	jq_schedule(j);
	return 0;
}

void
jobqueue_stats(struct jq_stats *st)
{
	/* Counters only: stats costs the same with a million jobs kept. */
	memset(st, 0, sizeof *st);
	st->jobs_expanding = jq.nexpanding;
	st->jobs_queued = jq.nstate[JOB_QUEUED];
	st->jobs_running = jq.nstate[JOB_RUNNING];
	st->tasks_pending = jq.pending;
	st->submitted = jq.submitted;
	st->done = jq.ndone;
	st->cancelled = jq.ncancelled;
	st->kept = jq.nkept;
	st->files = jq.files;
	st->lines = jq.lines;
	st->bytes = jq.bytes;
	st->cache_hits = jq.cache[STATS_CACHE_HIT];
	st->cache_content = jq.cache[STATS_CACHE_CONTENT];
	st->cache_resumed = jq.cache[STATS_CACHE_RESUMED];
	st->cache_misses = jq.cache[STATS_CACHE_MISS];
	st->cache_off = jq.cache[STATS_CACHE_OFF];
	st->cache_stored = jq.cache_stored;
	st->cache_evicted = jq.cache_evicted;
}

int
jobqueue_cache_clear(struct jq_error *err)
{
	/* A rename: the workers remove what was set aside. */
	if (cache_clear(jq.cfg->cache_dir) == -1) {
		jq_seterr(err, ERRC_INTERNAL, "clearing the cache: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

size_t
jobqueue_active(void)
{
	return jq.active;
}

size_t
jobqueue_waiting(void)
{
	return jq.pending;
}

void
jobqueue_shutdown(void)
{
	struct job	*j, *next;
	struct jq_error	 err;
	struct jq_info	 info;

	/*
	 * Submits still expanding get shutting_down; a job whose expansion
	 * is on a worker is freed when that worker stops.
	 */
	jq.stopping = 1;
	jq_seterr(&err, ERRC_SHUTTING_DOWN, "clfd is stopping");
	for (j = TAILQ_FIRST(&jq.expanding); j != NULL; j = next) {
		next = TAILQ_NEXT(j, entry);
		if (j->submit_cb != NULL)
			j->submit_cb(-1, 0, &err, j->submit_arg);
		j->submit_cb = NULL;
		if (j->xtask.state == TASK_PENDING) {
			jq_expand_end(j);
			jq_job_free(j);
		}
	}
	TAILQ_FOREACH(j, &jq.jobs, entry) {
		struct jobqueue_waiter *w;

		if (jq_has_result(j) || TAILQ_EMPTY(&j->waiters))
			continue;
		jq_info_of(j, &info);
		while ((w = TAILQ_FIRST(&j->waiters)) != NULL) {
			TAILQ_REMOVE(&j->waiters, w, entry);
			w->cb(JQ_DONE, &info, NULL, w->arg);
			free(w);
		}
	}
}

struct task *
jobqueue_next_expansion(void)
{
	struct job	*j;

	TAILQ_FOREACH(j, &jq.expanding, entry) {
		if (j->xtask.state == TASK_PENDING) {
			j->xtask.state = TASK_RUNNING;
			return &j->xtask;
		}
	}
	return NULL;
}

/* Add a partial to the job's list of partials to merge. -1 on ENOMEM. */
static int
jq_ready_add(struct job *j, struct part *p)
{
	struct part	*r;
	size_t		 cap;

	if (j->nready == j->ready_cap) {
		cap = j->ready_cap * 2 + 16;
		if ((r = reallocarray(j->ready, cap, sizeof *r)) == NULL)
			return -1;
		j->ready = r;
		j->ready_cap = cap;
	}
	if (p->ref)
		j->nready_refs++;
	j->ready[j->nready++] = *p;
	memset(p, 0, sizeof *p);
	return 0;
}

/*
 * A merge of the job's first n ready partials (n may be 0 for the final
 * merge of a job with no partial). -1 on ENOMEM (nothing changed).
 */
static int
jq_merge_new(struct job *j, size_t n, int final)
{
	struct task	*t;
	size_t		 i;

	if ((t = calloc(1, sizeof *t)) == NULL ||
	    (n > 0 && (t->in = calloc(n, sizeof *t->in)) == NULL)) {
		free(t);
		return -1;
	}
	t->job = j;
	t->kind = TASK_MERGE;
	t->state = TASK_PENDING;
	t->final = final;
	t->nin = n;
	if (n > 0)
		memcpy(t->in, j->ready, n * sizeof *t->in);
	for (i = 0; i < n; i++)
		if (t->in[i].ref)
			j->nready_refs--;
	if (j->nready > n)
		memmove(j->ready, j->ready + n, (j->nready - n) *
		    sizeof *j->ready);
	j->nready -= n;
	j->merging++;
	if (final)
		j->final_made = 1;
	TAILQ_INSERT_TAIL(&jq.mergeq, t, retry);
	return 0;
}

/*
 * Make the merges the job's partials call for: while files are still
 * being read, one for every JQ_FANIN partials in the spool (cache
 * entries take no room there: they wait for the final merge); once every
 * file is done and no merge is out, the final one (after intermediate
 * ones while more than JQ_FANIN_MAX partials are left).
 */
static void
jq_schedule(struct job *j)
{
	/* (a cancelled job's files are all in once none is being read) */
	int	all = j->done == j->ntasks || (j->cancelling && j->mapping == 0);

	if (jq_has_result(j) || j->final_made)
		return;
	while (all ? j->nready >= JQ_FANIN_MAX + 1 :
	    j->nready - j->nready_refs >= JQ_FANIN)
		if (jq_merge_new(j, j->nready < JQ_FANIN_MAX ? j->nready :
		    JQ_FANIN_MAX, 0) == -1)
			goto nomem;
	if (all && j->merging == 0 && jq_merge_new(j, j->nready, 1) == -1)
		goto nomem;
	return;
nomem:
	jobqueue_finish(j, ERRC_INTERNAL, "out of memory scheduling a merge");
}

struct task *
jobqueue_next_task(void)
{
	struct jq_user	*u;
	struct job	*j;
	struct task	*t;

	/* Expansions first: short, and a client waits for each. */
	if ((t = jobqueue_next_expansion()) != NULL)
		return t;
	/* Then merges: they free the spool and finish jobs. */
	if ((t = TAILQ_FIRST(&jq.mergeq)) != NULL) {
		TAILQ_REMOVE(&jq.mergeq, t, retry);
		t->state = TASK_RUNNING;
		t->job->running++;
		return t;
	}
	/* The next user's turn, then the next of its jobs'. */
	if ((u = TAILQ_FIRST(&jq.urunq)) == NULL)
		return NULL;
	j = TAILQ_FIRST(&u->runq);
	jq_runq_del(j);
	if (u->in_runq) {
		TAILQ_REMOVE(&jq.urunq, u, runq_entry);
		TAILQ_INSERT_TAIL(&jq.urunq, u, runq_entry);
	}
	if ((t = TAILQ_FIRST(&j->retryq)) != NULL)
		TAILQ_REMOVE(&j->retryq, t, retry);
	else if (j->next < j->ntasks)
		t = &j->tasks[j->next++];
	else
		return NULL;	/* not reached: jobs in runq have pending tasks */
	jq.pending--;
	t->state = TASK_RUNNING;
	j->running++;
	j->mapping++;
	if (j->state == JOB_QUEUED)
		jq_set_state(j, JOB_RUNNING);
	if (!TAILQ_EMPTY(&j->retryq) || j->next < j->ntasks)
		jq_runq_add(j, 0);
	return t;
}

/* The PROTO_MERGE message of a merge task. */
static uint8_t *
jq_merge_message(struct task *t, uint64_t id, size_t *lenp)
{
	struct job			*j = t->job;
	struct proto_merge_fixed	 f;
	struct proto_extra		*extra = NULL;
	struct proto_ref		*refs = NULL;
	const struct task		*m;
	uint64_t			*inputs = NULL;
	uint8_t				*msg = NULL;
	char				*head = NULL;
	size_t				 i, n = 0;

	memset(&f, 0, sizeof f);
	f.task = id;
	f.final = (uint32_t)t->final;
	f.ninputs = (uint32_t)t->nin;
	if ((inputs = calloc(t->nin + 1, sizeof *inputs)) == NULL ||
	    (refs = calloc(t->nin + 1, sizeof *refs)) == NULL)
		goto out;
	for (i = 0; i < t->nin; i++) {
		inputs[i] = t->in[i].id;
		if (!t->in[i].ref)
			continue;
		/* A cache entry, named for its file as the job sees it. */
		m = &j->tasks[t->in[i].maps[0]];
		refs[f.nrefs].f.input = (uint32_t)i;
		refs[f.nrefs].f.path_len = (uint32_t)strlen(m->path);
		refs[f.nrefs].f.key = t->in[i].key;
		refs[f.nrefs].f.dev = t->in[i].dev;
		refs[f.nrefs].f.ino = t->in[i].ino;
		refs[f.nrefs].f.sum = t->in[i].sum;
		refs[f.nrefs].f.off = m->range.off;
		refs[f.nrefs].f.end = m->range.end;
		refs[f.nrefs].f.st = *m->st;
		refs[f.nrefs].path = m->path;
		f.nrefs++;
	}
	if (t->final) {
		/* Files with no partial (lost twice) are listed from here. */
		if ((extra = calloc(j->ntasks + 1, sizeof *extra)) == NULL)
			goto out;
		for (i = 0; i < j->ntasks; i++) {
			if (j->tasks[i].has_part || j->tasks[i].st == NULL)
				continue;
			extra[n].path = j->tasks[i].path;
			extra[n].path_len = strlen(j->tasks[i].path);
			extra[n].off = j->tasks[i].range.off;
			extra[n].end = j->tasks[i].range.end;
			extra[n++].st = *j->tasks[i].st;
		}
		f.nextra = (uint32_t)n;
		f.top = j->req.top;
		f.start_usec = (int64_t)j->start.tv_sec * 1000000 +
		    j->start.tv_usec;
		if ((head = jq_result_head(j)) == NULL)
			goto out;
	}
	msg = proto_merge_encode(&f, inputs, extra, refs, head, lenp);
out:
	free(inputs);
	free(extra);
	free(refs);
	free(head);
	return msg;
}

uint8_t *
jobqueue_task_message(struct task *t, uint64_t id, int ahead,
    size_t *lenp)
{
	struct proto_task	 pt;
	struct proto_expand	 x;

	t->run = id;
	if (t->kind == TASK_MERGE)
		return jq_merge_message(t, id, lenp);
	if (t->kind == TASK_EXPAND) {
		memset(&x, 0, sizeof x);
		x.patterns = t->job->req.patterns;
		x.task = id;
		x.files_max = t->job->files_max;
		x.split_size = t->job->split_size;
		x.roots = t->job->roots;
		x.format = t->job->req.format;
		x.needs = t->job->req.needs;
		x.npatterns = (uint32_t)t->job->req.npatterns;
		return proto_expand_encode(&x, lenp);
	}
	memset(&pt, 0, sizeof pt);
	pt.task = id;
	pt.line_max = t->job->line_max > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)t->job->line_max;
	pt.flags = (t->job->req.no_cache ? PROTO_TASK_NO_CACHE : 0) |
	    (t->no_ref ? PROTO_TASK_NO_REF : 0) |
	    (ahead ? PROTO_TASK_AHEAD : 0);
	if (t->ranged) {
		pt.flags |= PROTO_TASK_RANGE;
		pt.range = t->range;
	}
	pt.path = t->path;
	pt.format = t->job->req.format;
	pt.filter = t->job->req.filter;
	pt.roots = t->job->roots;
	return proto_task_encode(&pt, lenp);
}

int
jobqueue_task_kind(const struct task *t)
{
	switch (t->kind) {
	case TASK_EXPAND:
		return JQ_TASK_EXPAND;
	case TASK_MERGE:
		return JQ_TASK_MERGE;
	default:
		return JQ_TASK_MAP;
	}
}

const char *
jobqueue_task_path(const struct task *t)
{
	return t->kind == TASK_MAP ? t->path : NULL;
}

int64_t
jobqueue_task_job(const struct task *t)
{
	return t->job->id;
}

uid_t
jobqueue_task_uid(const struct task *t)
{
	return t->job->uid;
}

/*
 * A task of a job that has its result (cancelled, failed, expired) came
 * back: forget it, and whatever it wrote.
 */
static int
jq_task_orphan(struct task *t)
{
	struct job	*j = t->job;

	if (!jq_has_result(j) && !j->dropped)
		return 0;
	t->state = TASK_DONE;
	if (t->kind == TASK_MERGE)
		jq_merge_free(t);
	if (j->running == 0) {
		if (j->dropped)
			jq_drop(j);
		else
			jq_tasks_free(j);
	}
	return 1;
}

/*
 * One more range of a file is finished (delta 1) or to be read again
 * (-1): the file is done when all its ranges are, and failed when every
 * one of them failed (a range that failed beside others that counted
 * makes it partial, as the merge says).
 */
static void
jq_file_range(struct task *t, int delta)
{
	struct job	*j = t->job;
	struct task	*f = &j->tasks[t->file];
	size_t		 i;

	if (delta < 0) {
		if (f->left++ == 0) {
			j->files_done--;
			if (f->file_failed)
				j->failed--;
		}
		return;
	}
	if (--f->left > 0)
		return;
	j->files_done++;
	f->file_failed = 1;
	for (i = 0; i < f->nranges; i++)
		if (!jq_task_failed(&j->tasks[t->file + i]))
			f->file_failed = 0;
	if (f->file_failed)
		j->failed++;
	jq.files++;
}

/* One more task of a file is finished (counted or failed). */
static void
jq_task_finished(struct task *t)
{
	struct job	*j = t->job;

	t->state = TASK_DONE;
	j->done++;
	j->bytes_done += t->st->bytes;
	j->lines += t->st->lines;
	j->counted += t->st->counted;
	jq_file_range(t, 1);
	jq.lines += t->st->lines;
	jq.bytes += t->st->bytes;
	jq_schedule(j);
	if (!jq_has_result(j))
		jq_progress(j);
}

/*
 * A MAP task's result: its statistics, and its partial, now in the spool
 * under the task's run id (none when the worker could not write it: the
 * file is then failed, and listed by the final merge).
 */
int
jobqueue_task_done(struct task *t, const struct proto_result *r)
{
	struct job	*j = t->job;
	struct part	 p;
	size_t		 idx;

	if (t->kind != TASK_MAP)
		return -1;
	j->running--;
	j->mapping--;
	jq.cache[STATS_CACHE(r->st.flags)]++;
	jq.cache_stored += r->cache_stored;
	jq.cache_evicted += r->cache_evicted;
	if (jq_task_orphan(t)) {
		if (r->size > 0 && !r->ref)
			jq_unlink(r->task, 0);
		return 0;
	}
	if (t->st == NULL && (t->st = malloc(sizeof *t->st)) == NULL)
		goto nomem;
	*t->st = r->st;
	if (jq_task_failed(t))
		t->st->flags &= ~STATS_PARTIAL;
	t->has_part = 0;
	if (r->size > 0) {
		idx = (size_t)(t - j->tasks);
		memset(&p, 0, sizeof p);
		p.id = r->task;
		if ((p.maps = malloc(sizeof *p.maps)) == NULL)
			goto nomem;
		p.maps[0] = idx;
		p.nmaps = 1;
		if (r->ref) {
			p.ref = 1;
			p.key = r->ref_key;
			p.dev = r->id.dev;
			p.ino = r->id.ino;
			p.sum = r->ref_sum;
		}
		if (jq_ready_add(j, &p) == -1) {
			jq_part_free(&p);
			goto nomem;
		}
		t->has_part = 1;
	}
	jq_task_finished(t);
	return 0;
nomem:
	/* Not counted and not listed as it should be: fail the job. */
	if (r->size > 0 && !r->ref)
		jq_unlink(r->task, 0);
	t->state = TASK_DONE;
	jobqueue_finish(j, ERRC_INTERNAL, "out of memory keeping a file's result");
	return 0;
}

/*
 * Queue the job's MAP task idx again (its partial was lost). A cache
 * entry that changed since its hit is no damage: the file is read again
 * (its partial written to the spool this time), and that is no retry.
 */
static void
jq_redo_map(struct job *j, size_t idx, const char *why, int entry)
{
	struct task	*t = &j->tasks[idx];

	t->has_part = 0;
	j->done--;
	jq_file_range(t, -1);
	j->bytes_done -= t->st->bytes;
	j->lines -= t->st->lines;
	j->counted -= t->st->counted;
	if (j->cancelling) {
		/* Not read again for a cancelled job: left out of its result. */
		log_warnx("job %lld: %s: %s, left out (cancelled)",
		    (long long)j->id, t->path, why);
		jq_map_drop(t);
		return;
	}
	if (entry && !t->no_ref) {
		t->no_ref = 1;
		log_info("job %lld: %s: its cache entry changed, reading it "
		    "again", (long long)j->id, t->path);
		goto again;
	}
	if (t->redone++ >= JQ_RETRIES) {
		/* Damaged twice: the file is failed, not counted. */
		log_warnx("job %lld: %s: %s again, giving up", (long long)j->id,
		    t->path, why);
		t->st->flags = (t->st->flags | STATS_FAILED) & ~STATS_PARTIAL;
		t->st->counted = 0;
		snprintf(t->st->error, sizeof t->st->error, "%s (twice)", why);
		j->done++;
		jq_file_range(t, 1);
		j->bytes_done += t->st->bytes;
		j->lines += t->st->lines;
		return;
	}
	log_warnx("job %lld: %s: %s, reading it again", (long long)j->id,
	    t->path, why);
again:
	t->state = TASK_PENDING;
	TAILQ_INSERT_TAIL(&j->retryq, t, retry);
	jq.pending++;
	jq_runq_add(j, 1);
}

/*
 * A merge was refused an input (a damaged partial): that partial is
 * dropped and the files in it are read again; the other inputs go back
 * to the job's ready partials. -1 on ENOMEM.
 */
static int
jq_merge_bad_input(struct task *t, size_t bad, const char *why)
{
	struct job	*j = t->job;
	size_t		 i, k;

	for (i = 0; i < t->nin; i++) {
		if (i == bad) {
			jq_part_unlink(&t->in[i]);
			for (k = 0; k < t->in[i].nmaps; k++)
				jq_redo_map(j, t->in[i].maps[k], why,
				    t->in[i].ref);
			jq_part_free(&t->in[i]);
		} else if (jq_ready_add(j, &t->in[i]) == -1)
			return -1;
	}
	t->nin = 0;
	return 0;
}

/*
 * A merge's answer. Written: its inputs are removed, and its output is a
 * partial for the next merge or the job's result. Refused an input: see
 * jq_merge_bad_input. Failed otherwise (disk full, out of memory): tried
 * once more, then the job fails.
 */
int
jobqueue_task_merged(struct task *t, const struct proto_merged *m)
{
	struct job	*j = t->job;
	struct part	 p;
	char		 path[PATH_MAX], why[300];
	size_t		 i, k, n;
	int		 final = t->final;

	if (t->kind != TASK_MERGE ||
	    (m->f.bad != PROTO_NO_INPUT && m->f.bad >= t->nin))
		return -1;
	j->running--;
	j->merging--;
	if (jq_task_orphan(t)) {
		if (m->f.error_len == 0)
			jq_unlink(m->f.task, final);
		return 0;
	}
	snprintf(why, sizeof why, "%.*s", (int)(m->f.error_len > 250 ? 250 :
	    m->f.error_len), m->error);
	if (m->f.error_len > 0 && m->f.bad != PROTO_NO_INPUT) {
		log_warnx("job %lld: merge: %s", (long long)j->id, why);
		j->final_made = 0;
		if (jq_merge_bad_input(t, m->f.bad, "its partial was damaged") == -1)
			goto nomem;
		jq_merge_free(t);
		jq_schedule(j);
		return 0;
	}
	if (m->f.error_len > 0) {
		if (t->lost++ < JQ_RETRIES) {
			log_warnx("job %lld: merge: %s, retrying",
			    (long long)j->id, why);
			t->state = TASK_PENDING;
			j->merging++;
			TAILQ_INSERT_HEAD(&jq.mergeq, t, retry);
			return 0;
		}
		jobqueue_finish(j, ERRC_INTERNAL, why);
		jq_merge_free(t);
		return 0;
	}
	if (t->final) {
		if (proto_spool_path(path, sizeof path, jq.spool, m->f.task,
		    1) == -1 || (j->result_path = strdup(path)) == NULL)
			goto nomem;
		j->result_size = m->f.size;
		jq_merge_free(t);
		jobqueue_finish(j, ERRC_NONE, NULL);
		return 0;
	}
	/* The output holds all the inputs' files. */
	memset(&p, 0, sizeof p);
	p.id = m->f.task;
	for (i = 0, n = 0; i < t->nin; i++)
		n += t->in[i].nmaps;
	if ((p.maps = calloc(n + 1, sizeof *p.maps)) == NULL)
		goto nomem;
	for (i = 0, n = 0; i < t->nin; i++)
		for (k = 0; k < t->in[i].nmaps; k++)
			p.maps[n++] = t->in[i].maps[k];
	p.nmaps = n;
	if (jq_ready_add(j, &p) == -1) {
		jq_part_free(&p);
		goto nomem;
	}
	jq_merge_free(t);
	jq_schedule(j);
	return 0;
nomem:
	jq_unlink(m->f.task, t->final);
	jq_merge_free(t);
	jobqueue_finish(j, ERRC_INTERNAL, "out of memory merging");
	return 0;
}

void
jobqueue_task_lost(struct task *t, const char *why)
{
	struct job	*j = t->job;
	struct jq_error	 err;

	if (t->kind == TASK_EXPAND) {
		t->state = TASK_PENDING;
		if (jq.stopping) {
			jq_expand_end(j);
			jq_job_free(j);
		} else if (t->lost++ < JQ_RETRIES)
			log_warnx("submit by uid %lu pid %ld: worker %s expanding "
			    "the patterns, retrying", (unsigned long)j->uid,
			    (long)j->pid, why);
		else {
			jq_seterr(&err, ERRC_INTERNAL, "expanding patterns: worker "
			    "%s (twice)", why);
			jq_submit_fail(j, &err);
		}
		return;
	}
	j->running--;
	if (t->kind == TASK_MERGE)
		j->merging--;
	else
		j->mapping--;
	if (jq_task_orphan(t))
		return;
	if (j->cancelling && t->kind == TASK_MAP) {
		/* Stopped by the cancel: not read, not in the result. */
		jq_map_drop(t);
		jq_schedule(j);
		return;
	}
	if (jq.stopping) {
		/* Stopped with the daemon, on purpose: not a crash to retry. */
		log_info("job %lld: %s: stopping, left unfinished",
		    (long long)j->id, t->kind == TASK_MERGE ? "merge" : t->path);
		t->state = TASK_PENDING;
		if (t->kind == TASK_MERGE)
			jq_merge_free(t);
		return;
	}
	if (t->kind == TASK_MERGE) {
		/* Its inputs are still there: the merge is simply run again. */
		if (t->lost++ < JQ_RETRIES) {
			log_warnx("job %lld: merge: worker %s, retrying",
			    (long long)j->id, why);
			t->state = TASK_PENDING;
			j->merging++;
			TAILQ_INSERT_HEAD(&jq.mergeq, t, retry);
			return;
		}
		snprintf(err.message, sizeof err.message, "merging: worker %s "
		    "(twice)", why);
		jobqueue_finish(j, ERRC_INTERNAL, err.message);
		jq_merge_free(t);
		return;
	}
	if (t->lost++ < JQ_RETRIES) {
		log_warnx("job %lld: %s: worker %s, retrying", (long long)j->id,
		    t->path, why);
		t->state = TASK_PENDING;
		TAILQ_INSERT_TAIL(&j->retryq, t, retry);
		jq.pending++;
		/* A retry goes first: the job already waited its turn. */
		jq_runq_add(j, 1);
		return;
	}
	log_warnx("job %lld: %s: worker %s again, giving up", (long long)j->id,
	    t->path, why);
	if (t->st == NULL && (t->st = calloc(1, sizeof *t->st)) == NULL) {
		t->state = TASK_DONE;
		jobqueue_finish(j, ERRC_INTERNAL, "out of memory");
		return;
	}
	memset(t->st, 0, sizeof *t->st);
	t->st->flags = STATS_FAILED;
	snprintf(t->st->error, sizeof t->st->error, "worker %s (twice)", why);
	jq_task_finished(t);
}
