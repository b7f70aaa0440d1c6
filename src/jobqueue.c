/*
 * jobqueue.c: jobs and their per-file tasks.
 *
 * submit validates a request and queues an expansion task: a worker
 * expands the patterns into a sorted, deduplicated file list (glob(3)
 * may be slow; the supervisor must never wait on the filesystem), and
 * when the list comes back the job is made, one task per file, and the
 * submitter told its id. Expansions are handed out before file tasks. Tasks are handed out
 * round-robin over the jobs that still have pending tasks, so a small job
 * behind a big one is not starved. Each task's result arrives whole, in
 * one message: its counts are merged into the job's table and its
 * statistics kept for the per-file entry; a task whose worker died is
 * retried once, then reported failed. A finished job's RESULT is kept as
 * serialized JSON, bounded by result_ttl and result_memory.
 */
#include "jobqueue.h"

#include "analysis.h"
#include "config.h"
#include "counts.h"
#include "filter.h"
#include "log.h"
#include "logformat.h"
#include "proto.h"
#include "supervisor.h"

#include <sys/queue.h>
#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#define JQ_PROGRESS_USEC	250000	/* at most 4 progress events a second */
#define JQ_RETRIES		1	/* a lost task is retried once */
#define JQ_BRACE_DEPTH		32	/* braces nested deeper are refused */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_CANCELLED,
    JOB_EXPANDING };
enum task_state { TASK_PENDING, TASK_RUNNING, TASK_DONE };

static const char *const job_state_names[] = {
	"queued", "running", "done", "cancelled", "expanding"
};

struct task {
	struct job		*job;
	char			*path;
	enum task_state		 state;
	int			 expand;	/* the job's expansion, no file */
	int			 lost;		/* times its worker died */
	uint64_t		 bytes, raw_bytes, lines, matched, malformed;
	uint64_t		 filtered, counted;
	uint32_t		 flags;		/* PROTO_F_* */
	char			*error;		/* NULL: none */
	TAILQ_ENTRY(task)	 retry;
};
TAILQ_HEAD(taskq, task);

struct jobqueue_waiter {
	struct job			*job;
	int				 progress;
	jobqueue_cb			 cb;
	void				*arg;
	TAILQ_ENTRY(jobqueue_waiter)	 entry;
};

struct job {
	int64_t				 id;
	enum job_state			 state;
	uid_t				 uid;
	pid_t				 pid;
	json_t				*patterns;
	json_t				*unmatched;
	json_t				*filter;	/* effective */
	char				*filter_text;
	char				*format;
	char				**roots;
	size_t				 line_max;
	size_t				 top;
	size_t				 files_max;
	size_t				 noutside;	/* matches outside roots */

	/* While expanding: the task, and whom to tell. */
	struct task			 xtask;
	jobqueue_submit_cb		 submit_cb;
	void				*submit_arg;

	struct task			*tasks;		/* sorted by path */
	size_t				 ntasks;
	size_t				 next;		/* first never-run task */
	struct taskq			 retryq;
	size_t				 running;
	size_t				 done;
	size_t				 failed;
	uint64_t			 bytes_done;
	struct counts			*counts;

	time_t				 submitted, finished;
	struct timeval			 start;
	double				 elapsed;
	struct timeval			 last_progress;
	char				*result;	/* serialized RESULT */
	size_t				 result_len;
	int				 dropped;	/* result expired */
	int				 in_runq;

	TAILQ_HEAD(, jobqueue_waiter)	 waiters;
	TAILQ_ENTRY(job)		 entry;		/* all jobs, or expanding */
	TAILQ_ENTRY(job)		 runq;		/* with pending tasks */
	TAILQ_ENTRY(job)		 kept;		/* finished, by age */
};
TAILQ_HEAD(jobq, job);

static struct {
	const struct config	*cfg;
	struct event		*expire;
	struct jobq		 jobs;		/* with an id */
	struct jobq		 expanding;	/* submits not answered yet */
	struct jobq		 runq;
	struct jobq		 kept;
	int64_t			 next_id;
	size_t			 active;	/* expanding, queued or running */
	int			 stopping;
	struct counts		*scratch;	/* a result's counts, checked */
	size_t			 kept_bytes;
	size_t			 nkept;
	uint64_t		 submitted, ndone, ncancelled;
	uint64_t		 files, lines, bytes;
} jq;

static void	jobqueue_finish(struct job *);

static void
jq_seterr(struct jq_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
jq_seterr(struct jq_error *err, const char *code, const char *fmt, ...)
{
	va_list	ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

/*
 * bad_field for a request field whose checker wrote msg: msg as it is when
 * it names the field already ("filter.status[0]: ...", "format \"x\": ..."),
 * else "field: msg", so the field is named once.
 */
static void
jq_field_err(struct jq_error *err, const char *field, const char *msg)
{
	size_t	n = strlen(field);

	if (strncmp(msg, field, n) == 0 && strchr(":.[ ", msg[n]) != NULL &&
	    msg[n] != '\0')
		jq_seterr(err, "bad_field", "%s", msg);
	else
		jq_seterr(err, "bad_field", "%s: %s", field, msg);
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

static json_t *
jq_strv_json(char *const *v)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; a != NULL && v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static struct job *
jq_find(int64_t id)
{
	struct job	*j;

	TAILQ_FOREACH_REVERSE(j, &jq.jobs, jobq, entry)
		if (j->id == id && !j->dropped)
			return j;
	return NULL;
}

static void
jq_job_free(struct job *j)
{
	struct jobqueue_waiter	*w;
	size_t			 i;

	while ((w = TAILQ_FIRST(&j->waiters)) != NULL) {
		TAILQ_REMOVE(&j->waiters, w, entry);
		free(w);
	}
	for (i = 0; i < j->ntasks; i++) {
		free(j->tasks[i].path);
		free(j->tasks[i].error);
	}
	free(j->tasks);
	json_decref(j->patterns);
	json_decref(j->unmatched);
	json_decref(j->filter);
	free(j->filter_text);
	free(j->format);
	jq_strv_free(j->roots);
	counts_free(j->counts);
	free(j->result);
	free(j);
}

/* Forget a finished job whose result expired, once no worker holds a task. */
static void
jq_drop(struct job *j)
{
	if (!j->dropped) {
		j->dropped = 1;
		TAILQ_REMOVE(&jq.kept, j, kept);
		jq.kept_bytes -= j->result_len;
		jq.nkept--;
	}
	if (j->running > 0)
		return;
	TAILQ_REMOVE(&jq.jobs, j, entry);
	jq_job_free(j);
}

/*
 * Drop the oldest results past result_ttl or beyond result_memory. keep
 * (the job that just finished, still in use by the caller) is left to the
 * next round of the timer.
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
		    now - j->finished >= jq.cfg->result_ttl) {
			log_debug("job %lld: result dropped", (long long)j->id);
			jq_drop(j);
		} else
			break;
	}
}

static void
jq_expire_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	jq_expire(NULL);
}

void
jobqueue_init(struct event_base *base, const struct config *cfg)
{
	struct timeval	tv = { 1, 0 };

	memset(&jq, 0, sizeof jq);
	TAILQ_INIT(&jq.jobs);
	TAILQ_INIT(&jq.expanding);
	TAILQ_INIT(&jq.runq);
	TAILQ_INIT(&jq.kept);
	jq.cfg = cfg;
	jq.next_id = 1;
	if ((jq.scratch = counts_new()) == NULL)
		fatalx("jobqueue: out of memory");
	if ((jq.expire = event_new(base, -1, EV_PERSIST, jq_expire_cb,
	    NULL)) == NULL || event_add(jq.expire, &tv) == -1)
		fatalx("jobqueue: cannot set the expiry timer");
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

	while ((j = TAILQ_FIRST(&jq.jobs)) != NULL) {
		TAILQ_REMOVE(&jq.jobs, j, entry);
		jq_job_free(j);
	}
	while ((j = TAILQ_FIRST(&jq.expanding)) != NULL) {
		TAILQ_REMOVE(&jq.expanding, j, entry);
		jq_job_free(j);
	}
	if (jq.expire != NULL)
		event_free(jq.expire);
	jq.expire = NULL;
	counts_free(jq.scratch);
	jq.scratch = NULL;
}

/* a + b and a * b, at most max (a, b >= 1). */
static size_t
jq_sat_add(size_t a, size_t b, size_t max)
{
	return a >= max || b >= max - a ? max : a + b;
}

static size_t
jq_sat_mul(size_t a, size_t b, size_t max)
{
	return a >= max || b >= max || a > max / b ? max : a * b;
}

/*
 * The number of patterns glob(3) makes of p with GLOB_BRACE, up to max:
 * a brace group is the sum of its alternatives, a sequence the product
 * of its groups (glob expands each one, whether or not files exist, so
 * a pattern like "{a,b}{a,b}..." costs 2^N globs). A backslash quotes the
 * next byte; an unclosed brace is counted as if closed at the end (too
 * many at worst). -1 when braces nest deeper than JQ_BRACE_DEPTH.
 */
static ssize_t
jq_brace_count(const char *p, size_t max)
{
	size_t	outer[JQ_BRACE_DEPTH], sum[JQ_BRACE_DEPTH], cur = 1;
	size_t	depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '{') {
			if (depth == JQ_BRACE_DEPTH)
				return -1;
			outer[depth] = cur;
			sum[depth++] = 0;
			cur = 1;
		} else if (*p == ',' && depth > 0) {
			sum[depth - 1] = jq_sat_add(sum[depth - 1], cur, max);
			cur = 1;
		} else if (*p == '}' && depth > 0) {
			depth--;
			cur = jq_sat_mul(outer[depth],
			    jq_sat_add(sum[depth], cur, max), max);
		}
	}
	while (depth > 0) {
		depth--;
		cur = jq_sat_mul(outer[depth], jq_sat_add(sum[depth], cur, max),
		    max);
	}
	return (ssize_t)cur;
}

/* Check the request's fields and fill in the job's settings. */
static int
jq_parse(struct job *j, const json_t *req, struct jq_error *err)
{
	const struct config	*cfg = jq.cfg;
	json_t			*v, *f = NULL;
	struct filter		*flt;
	struct logformat	*lf;
	size_t			 i, total = 0, max;
	ssize_t			 n;
	char			 msg[200];

	v = json_object_get(req, "patterns");
	if (!json_is_array(v) || json_array_size(v) == 0) {
		jq_seterr(err, "bad_field", "patterns: a non-empty array of "
		    "strings is required");
		return -1;
	}
	if (json_array_size(v) > cfg->patterns_max) {
		jq_seterr(err, "limit", "patterns: more than %zu "
		    "(patterns_max)", cfg->patterns_max);
		return -1;
	}
	for (i = 0; i < json_array_size(v); i++) {
		const char *s = json_string_value(json_array_get(v, i));

		if (s == NULL || s[0] != '/' ||
		    strlen(s) != json_string_length(json_array_get(v, i))) {
			jq_seterr(err, "bad_field", "patterns[%zu]: an absolute "
			    "path pattern is required", i);
			return -1;
		}
	}
	/*
	 * Brace expansion multiplies patterns before glob(3) looks at a
	 * single file: count what it would make, here, where it is cheap.
	 */
	max = cfg->patterns_max + 1;
	for (i = 0; i < json_array_size(v); i++) {
		n = jq_brace_count(json_string_value(json_array_get(v, i)), max);
		if (n == -1) {
			jq_seterr(err, "limit", "patterns[%zu]: braces nested "
			    "more than %d deep", i, JQ_BRACE_DEPTH);
			return -1;
		}
		total = jq_sat_add(total, (size_t)n, max);
	}
	if (total > cfg->patterns_max) {
		jq_seterr(err, "limit", "patterns: brace expansion makes more "
		    "than %zu pattern%s (patterns_max)", cfg->patterns_max,
		    cfg->patterns_max == 1 ? "" : "s");
		return -1;
	}
	j->patterns = json_incref(v);

	v = json_object_get(req, "filter");
	if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
		jq_seterr(err, "bad_field", "filter: an object is required");
		return -1;
	}
	f = json_is_object(v) ? json_deep_copy(v) : json_object();
	if (f == NULL)
		goto nomem;
	if (json_object_get(f, "exclude_names") == NULL)
		json_object_set_new(f, "exclude_names",
		    jq_strv_json(cfg->exclude_names));
	if (json_object_get(f, "exclude_exts") == NULL)
		json_object_set_new(f, "exclude_exts",
		    jq_strv_json(cfg->exclude_exts));
	if ((flt = filter_from_json(f, msg, sizeof msg)) == NULL) {
		jq_field_err(err, "filter", msg);
		json_decref(f);
		return -1;
	}
	filter_free(flt);
	j->filter = f;
	if ((j->filter_text = json_dumps(f, JSON_COMPACT)) == NULL)
		goto nomem;

	v = json_object_get(req, "format");
	if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
		jq_seterr(err, "bad_field", "format: a string is required");
		return -1;
	}
	if ((j->format = strdup(json_is_string(v) ? json_string_value(v) :
	    cfg->format)) == NULL)
		goto nomem;
	if ((lf = logformat_compile(j->format, msg, sizeof msg)) == NULL) {
		jq_field_err(err, "format", msg);
		return -1;
	}
	logformat_free(lf);

	v = json_object_get(req, "top");
	if (v != NULL && !json_is_null(v) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0)) {
		jq_seterr(err, "bad_field", "top: an integer >= 0 is required");
		return -1;
	}
	j->top = json_is_integer(v) ? (size_t)json_integer_value(v) : 0;
	j->line_max = cfg->line_max;
	if (cfg->roots != NULL && (j->roots = jq_strv_dup(cfg->roots)) == NULL)
		goto nomem;
	return 0;
nomem:
	jq_seterr(err, "internal", "out of memory");
	return -1;
}

struct job *
jobqueue_submit(const json_t *req, uid_t uid, pid_t pid, jobqueue_submit_cb cb,
    void *arg, struct jq_error *err)
{
	struct job	*j;

	if (jq.stopping) {
		jq_seterr(err, "shutting_down", "clfd is stopping");
		return NULL;
	}
	if (jq.active >= jq.cfg->jobs_max) {
		jq_seterr(err, "limit", "%zu job%s queued or running "
		    "(jobs_max)", jq.active, jq.active == 1 ? "" : "s");
		return NULL;
	}
	if ((j = calloc(1, sizeof *j)) == NULL) {
		jq_seterr(err, "internal", "out of memory");
		return NULL;
	}
	TAILQ_INIT(&j->retryq);
	TAILQ_INIT(&j->waiters);
	j->uid = uid;
	j->pid = pid;
	if (jq_parse(j, req, err) == -1)
		goto fail;
	if ((j->unmatched = json_array()) == NULL ||
	    (j->counts = counts_new()) == NULL) {
		jq_seterr(err, "internal", "out of memory");
		goto fail;
	}
	j->state = JOB_EXPANDING;
	j->files_max = jq.cfg->files_max;
	j->submitted = time(NULL);
	gettimeofday(&j->start, NULL);
	j->xtask.job = j;
	j->xtask.expand = 1;
	j->xtask.state = TASK_PENDING;
	j->submit_cb = cb;
	j->submit_arg = arg;
	TAILQ_INSERT_TAIL(&jq.expanding, j, entry);
	jq.active++;
	log_debug("submit by uid %lu pid %ld: expanding %zu pattern%s",
	    (unsigned long)uid, (long)pid, json_array_size(j->patterns),
	    json_array_size(j->patterns) == 1 ? "" : "s");
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
	jq.active--;
}

/* The submit failed after all: tell the submitter and forget the job. */
static void
jq_submit_fail(struct job *j, const struct jq_error *err)
{
	log_info("submit by uid %lu pid %ld refused: %s: %s",
	    (unsigned long)j->uid, (long)j->pid, err->code, err->message);
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
	size_t			 n = j->ntasks;

	jq_expand_end(j);
	j->submit_cb = NULL;
	j->submit_arg = NULL;
	j->id = id = jq.next_id++;
	j->state = JOB_QUEUED;
	TAILQ_INSERT_TAIL(&jq.jobs, j, entry);
	jq.active++;
	jq.submitted++;
	log_info("job %lld: submitted by uid %lu pid %ld: %zu pattern%s, "
	    "%zu file%s, %zu unmatched%s", (long long)j->id,
	    (unsigned long)j->uid, (long)j->pid, json_array_size(j->patterns),
	    json_array_size(j->patterns) == 1 ? "" : "s", j->ntasks,
	    j->ntasks == 1 ? "" : "s", json_array_size(j->unmatched),
	    cb == NULL ? " (its client is gone)" : "");
	if (j->ntasks == 0)
		jobqueue_finish(j);
	else {
		TAILQ_INSERT_TAIL(&jq.runq, j, runq);
		j->in_runq = 1;
	}
	/* (j may be finished, but is kept: jq_expire spares it) */
	if (cb != NULL)
		cb(id, n, NULL, arg);
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
	size_t			 np = json_array_size(j->patterns), i;
	uint32_t		 k, last = 0;

	if (!t->expand || t->state != TASK_RUNNING ||
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
	const char	*p;
	size_t		 i, n;
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
	if (x->f.error_len > 0) {
		if (x->f.limit)
			jq_seterr(&err, "limit", "%.*s", (int)x->f.error_len,
			    x->error);
		else
			jq_seterr(&err, "internal", "expanding patterns: %.*s",
			    (int)x->f.error_len, x->error);
		jq_submit_fail(j, &err);
		return 0;
	}
	if (x->f.npaths > j->files_max) {
		jq_seterr(&err, "limit", "more than %zu file%s (files_max)",
		    j->files_max, j->files_max == 1 ? "" : "s");
		jq_submit_fail(j, &err);
		return 0;
	}
	for (i = 0; i < x->f.nunmatched; i++) {
		memcpy(&k, x->unmatched + i * sizeof k, sizeof k);
		json_array_append(j->unmatched, json_array_get(j->patterns, k));
	}
	j->noutside = x->f.noutside;
	if (j->noutside > 0)
		log_info("submit by uid %lu pid %ld: %zu match%s outside the "
		    "allowed roots left out", (unsigned long)j->uid,
		    (long)j->pid, j->noutside, j->noutside == 1 ? "" : "es");
	n = x->f.npaths;
	if (n > 0 && (j->tasks = calloc(n, sizeof *j->tasks)) == NULL)
		goto nomem;
	for (i = 0, p = x->paths; i < n; i++, p += strlen(p) + 1) {
		j->tasks[i].job = j;
		j->tasks[i].state = TASK_PENDING;
		if ((j->tasks[i].path = strdup(p)) == NULL)
			goto nomem;
		j->ntasks++;
	}
	jq_submit_made(j);
	return 0;
nomem:
	jq_seterr(&err, "internal", "out of memory");
	jq_submit_fail(j, &err);
	return 0;
}

/* The per-file entry of a task. */
static json_t *
jq_task_json(const struct task *t)
{
	struct file_stats	st;

	memset(&st, 0, sizeof st);
	st.bytes = t->bytes;
	st.raw_bytes = t->raw_bytes;
	st.lines = t->lines;
	st.matched = t->matched;
	st.malformed = t->malformed;
	st.filtered = t->filtered;
	st.counted = t->counted;
	st.gzip = (t->flags & PROTO_F_GZIP) != 0;
	st.partial = (t->flags & PROTO_F_PARTIAL) != 0;
	st.failed = (t->flags & PROTO_F_FAILED) != 0;
	if (t->error != NULL)
		snprintf(st.error, sizeof st.error, "%s", t->error);
	return analysis_stats_json(t->path, &st);
}

/*
 * A task whose file failed: nothing of it counted. The flag decides, not
 * the error text, which a partial file has too (and which may be missing
 * when memory ran out); FAILED wins over PARTIAL.
 */
static int
jq_task_failed(const struct task *t)
{
	return (t->flags & PROTO_F_FAILED) != 0;
}

/* Build and keep the RESULT of a job that just finished or was cancelled. */
static int
jq_build_result(struct job *j)
{
	json_t		*r, *files, *tot;
	uint64_t	 sum[7] = { 0 };
	size_t		 i, failed = 0, partial = 0;
	int		 cancelled = j->state == JOB_CANCELLED;

	if ((r = json_object()) == NULL)
		return -1;
	json_object_set_new(r, "ok", json_boolean(!cancelled));
	if (cancelled)
		json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code",
		    "cancelled", "message", "job was cancelled"));
	json_object_set_new(r, "job", json_integer(j->id));
	json_object_set_new(r, "state", json_string(job_state_names[j->state]));
	json_object_set(r, "patterns", j->patterns);
	json_object_set(r, "unmatched", j->unmatched);
	json_object_set_new(r, "format", json_string(j->format));
	json_object_set(r, "filter", j->filter);
	json_object_set_new(r, "submitted", json_integer(j->submitted));
	json_object_set_new(r, "finished", json_integer(j->finished));
	json_object_set_new(r, "elapsed", json_real(j->elapsed));
	if (!cancelled) {
		files = json_array();
		for (i = 0; i < j->ntasks; i++) {
			const struct task *t = &j->tasks[i];

			json_array_append_new(files, jq_task_json(t));
			sum[0] += t->bytes;
			sum[1] += t->raw_bytes;
			sum[2] += t->lines;
			sum[3] += t->matched;
			sum[4] += t->malformed;
			sum[5] += t->filtered;
			sum[6] += t->counted;
			if (jq_task_failed(t))
				failed++;
			else if (t->flags & PROTO_F_PARTIAL)
				partial++;
		}
		json_object_set_new(r, "files", files);
		tot = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		    "files", (json_int_t)j->ntasks, "failed", (json_int_t)failed,
		    "partial", (json_int_t)partial,
		    "bytes", (json_int_t)sum[0], "raw_bytes", (json_int_t)sum[1],
		    "lines", (json_int_t)sum[2], "matched", (json_int_t)sum[3],
		    "malformed", (json_int_t)sum[4], "filtered", (json_int_t)sum[5],
		    "counted", (json_int_t)sum[6],
		    "distinct", (json_int_t)counts_size(j->counts));
		if (tot != NULL)
			json_object_set_new(tot, "outside_roots",
			    json_integer((json_int_t)j->noutside));
		json_object_set_new(r, "totals", tot);
		json_object_set_new(r, "counts", counts_json(j->counts, j->top));
		log_info("job %lld: done: %zu file%s (%zu failed, %zu partial), "
		    "%llu line%s, %llu counted, %.3fs", (long long)j->id,
		    j->ntasks, j->ntasks == 1 ? "" : "s", failed, partial,
		    (unsigned long long)sum[2], sum[2] == 1 ? "" : "s",
		    (unsigned long long)sum[6], j->elapsed);
	} else {
		json_object_set_new(r, "files_total", json_integer(
		    (json_int_t)j->ntasks));
		json_object_set_new(r, "files_done", json_integer(
		    (json_int_t)j->done));
		log_info("job %lld: cancelled after %zu of %zu file%s, %.3fs",
		    (long long)j->id, j->done, j->ntasks,
		    j->ntasks == 1 ? "" : "s", j->elapsed);
	}
	j->result = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(r);
	if (j->result == NULL)
		return -1;
	j->result_len = strlen(j->result);
	return 0;
}

/* Send the "done" event to every waiter and forget them. */
static void
jq_notify_done(struct job *j, const char *line, size_t len)
{
	struct jobqueue_waiter	*w;

	while ((w = TAILQ_FIRST(&j->waiters)) != NULL) {
		TAILQ_REMOVE(&j->waiters, w, entry);
		w->cb(JQ_DONE, line, len, w->arg);
		free(w);
	}
}

/* The job is done or cancelled: build its result, tell waiters, keep it. */
static void
jobqueue_finish(struct job *j)
{
	struct timeval	 now, d;
	char		*line;
	size_t		 len;

	if (j->in_runq) {
		TAILQ_REMOVE(&jq.runq, j, runq);
		j->in_runq = 0;
	}
	if (j->state != JOB_CANCELLED)
		j->state = JOB_DONE;
	jq.active--;
	j->finished = time(NULL);
	gettimeofday(&now, NULL);
	timersub(&now, &j->start, &d);
	j->elapsed = (double)d.tv_sec + (double)d.tv_usec / 1e6;
	if (j->state == JOB_DONE)
		jq.ndone++;
	else
		jq.ncancelled++;

	if (jq_build_result(j) == -1) {
		log_warnx("job %lld: out of memory building the result",
		    (long long)j->id);
		free(j->result);
		j->result = strdup("{\"ok\":false,\"error\":{\"code\":\"internal\","
		    "\"message\":\"out of memory building the result\"}}");
		if (j->result == NULL)
			fatalx("out of memory");
		j->result_len = strlen(j->result);
	}
	/* The counts live on only in the serialized result. */
	counts_free(j->counts);
	j->counts = NULL;

	TAILQ_INSERT_TAIL(&jq.kept, j, kept);
	jq.kept_bytes += j->result_len;
	jq.nkept++;

	len = j->result_len + 32;
	if ((line = malloc(len)) != NULL) {
		/* {"ok":...} -> {"event":"done","ok":...}\n */
		len = (size_t)snprintf(line, len, "{\"event\":\"done\",%s\n",
		    j->result + 1);
		jq_notify_done(j, line, len);
		free(line);
	} else {
		static const char oom[] = "{\"event\":\"done\",\"ok\":false,"
		    "\"error\":{\"code\":\"internal\",\"message\":"
		    "\"out of memory\"}}\n";

		jq_notify_done(j, oom, sizeof oom - 1);
	}
	jq_expire(j);
}

const char *
jobqueue_result(int64_t id, size_t *lenp, struct jq_error *err)
{
	struct job	*j;

	if ((j = jq_find(id)) == NULL) {
		jq_seterr(err, "not_found", "no job %lld", (long long)id);
		return NULL;
	}
	if (j->result == NULL) {
		jq_seterr(err, "not_finished", "job %lld is %s", (long long)id,
		    job_state_names[j->state]);
		return NULL;
	}
	*lenp = j->result_len;
	return j->result;
}

struct jobqueue_waiter *
jobqueue_wait(int64_t id, int progress, jobqueue_cb cb, void *arg,
    struct jq_error *err)
{
	struct jobqueue_waiter	*w;
	struct job		*j;

	if ((j = jq_find(id)) == NULL) {
		jq_seterr(err, "not_found", "no job %lld", (long long)id);
		return NULL;
	}
	if (j->result != NULL) {
		jq_seterr(err, "internal", "job %lld already finished",
		    (long long)id);
		return NULL;
	}
	if ((w = calloc(1, sizeof *w)) == NULL) {
		jq_seterr(err, "internal", "out of memory");
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
	char			 line[256];
	int			 n;

	gettimeofday(&now, NULL);
	timersub(&now, &j->last_progress, &d);
	if (d.tv_sec == 0 && d.tv_usec < JQ_PROGRESS_USEC)
		return;
	j->last_progress = now;
	n = snprintf(line, sizeof line, "{\"event\":\"progress\",\"job\":%lld,"
	    "\"files_done\":%zu,\"files_total\":%zu,\"bytes_done\":%llu}\n",
	    (long long)j->id, j->done, j->ntasks,
	    (unsigned long long)j->bytes_done);
	for (w = TAILQ_FIRST(&j->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->progress)
			w->cb(JQ_PROGRESS, line, (size_t)n, w->arg);
	}
}

static json_t *
jq_status_json(const struct job *j, int full)
{
	json_t	*o;

	o = json_pack("{s:I,s:s,s:I,s:I}", "job", (json_int_t)j->id,
	    "state", job_state_names[j->state],
	    "files_total", (json_int_t)j->ntasks,
	    "files_done", (json_int_t)j->done);
	if (o == NULL)
		return NULL;
	if (full) {
		json_object_set_new(o, "files_failed",
		    json_integer((json_int_t)j->failed));
		json_object_set_new(o, "bytes_done",
		    json_integer((json_int_t)j->bytes_done));
	}
	json_object_set_new(o, "submitted", json_integer(j->submitted));
	if (full)
		json_object_set_new(o, "finished", j->result != NULL ?
		    json_integer(j->finished) : json_null());
	return o;
}

json_t *
jobqueue_status(int64_t id, struct jq_error *err)
{
	struct job	*j;
	json_t		*o, *r;

	if ((j = jq_find(id)) == NULL) {
		jq_seterr(err, "not_found", "no job %lld", (long long)id);
		return NULL;
	}
	if ((r = json_pack("{s:b}", "ok", 1)) == NULL ||
	    (o = jq_status_json(j, 1)) == NULL) {
		json_decref(r);
		jq_seterr(err, "internal", "out of memory");
		return NULL;
	}
	json_object_update(r, o);
	json_decref(o);
	return r;
}

json_t *
jobqueue_list(void)
{
	struct job	*j;
	json_t		*r, *a;

	if ((r = json_pack("{s:b,s:[]}", "ok", 1, "jobs")) == NULL)
		return NULL;
	a = json_object_get(r, "jobs");
	TAILQ_FOREACH(j, &jq.jobs, entry)
		if (!j->dropped)
			json_array_append_new(a, jq_status_json(j, 0));
	return r;
}

json_t *
jobqueue_cancel(int64_t id, struct jq_error *err)
{
	struct job	*j;
	struct task	*t;

	if ((j = jq_find(id)) == NULL) {
		jq_seterr(err, "not_found", "no job %lld", (long long)id);
		return NULL;
	}
	if (j->result == NULL) {
		/* Pending tasks are dropped; running ones are ignored on return. */
		while ((t = TAILQ_FIRST(&j->retryq)) != NULL) {
			TAILQ_REMOVE(&j->retryq, t, retry);
			t->state = TASK_DONE;
		}
		j->next = j->ntasks;
		j->state = JOB_CANCELLED;
		id = j->id;
		jobqueue_finish(j);
		supervisor_cancel_job(id);
		return json_pack("{s:b,s:I,s:s}", "ok", 1, "job",
		    (json_int_t)id, "state", "cancelled");
	}
	return json_pack("{s:b,s:I,s:s}", "ok", 1, "job", (json_int_t)j->id,
	    "state", job_state_names[j->state]);
}

void
jobqueue_stats(json_t *reply)
{
	struct job	*j;
	size_t		 queued = 0, running = 0, pending = 0, expanding = 0;

	TAILQ_FOREACH(j, &jq.jobs, entry) {
		if (j->state == JOB_QUEUED)
			queued++;
		else if (j->state == JOB_RUNNING)
			running++;
		if (j->result == NULL) {
			struct task *t;

			pending += j->ntasks - j->next;
			TAILQ_FOREACH(t, &j->retryq, retry)
				pending++;
		}
	}
	TAILQ_FOREACH(j, &jq.expanding, entry)
		expanding++;
	json_object_set_new(reply, "queue", json_pack("{s:I,s:I,s:I,s:I}",
	    "jobs_expanding", (json_int_t)expanding,
	    "jobs_queued", (json_int_t)queued, "jobs_running",
	    (json_int_t)running, "tasks_pending", (json_int_t)pending));
	json_object_set_new(reply, "jobs", json_pack("{s:I,s:I,s:I,s:I}",
	    "submitted", (json_int_t)jq.submitted, "done", (json_int_t)jq.ndone,
	    "cancelled", (json_int_t)jq.ncancelled, "kept",
	    (json_int_t)jq.nkept));
	json_object_set_new(reply, "totals", json_pack("{s:I,s:I,s:I}",
	    "files", (json_int_t)jq.files, "lines", (json_int_t)jq.lines,
	    "bytes", (json_int_t)jq.bytes));
}

size_t
jobqueue_active(void)
{
	return jq.active;
}

void
jobqueue_shutdown(void)
{
	struct job	*j, *next;
	struct jq_error	 err;
	char		 line[512];
	int		 n;

	/*
	 * Submits still expanding get shutting_down; a job whose expansion
	 * is on a worker is freed when that worker stops.
	 */
	jq.stopping = 1;
	jq_seterr(&err, "shutting_down", "clfd is stopping");
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
		if (j->result != NULL || TAILQ_EMPTY(&j->waiters))
			continue;
		n = snprintf(line, sizeof line, "{\"event\":\"done\",\"ok\":false,"
		    "\"error\":{\"code\":\"shutting_down\",\"message\":"
		    "\"clfd is stopping\"},\"job\":%lld,\"state\":\"%s\"}\n",
		    (long long)j->id, job_state_names[j->state]);
		jq_notify_done(j, line, (size_t)n);
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

struct task *
jobqueue_next_task(void)
{
	struct job	*j;
	struct task	*t;

	/* Expansions first: short, and a client waits for each. */
	if ((t = jobqueue_next_expansion()) != NULL)
		return t;
	if ((j = TAILQ_FIRST(&jq.runq)) == NULL)
		return NULL;
	TAILQ_REMOVE(&jq.runq, j, runq);
	j->in_runq = 0;
	if ((t = TAILQ_FIRST(&j->retryq)) != NULL)
		TAILQ_REMOVE(&j->retryq, t, retry);
	else if (j->next < j->ntasks)
		t = &j->tasks[j->next++];
	else
		return NULL;	/* not reached: jobs in runq have pending tasks */
	t->state = TASK_RUNNING;
	j->running++;
	if (j->state == JOB_QUEUED)
		j->state = JOB_RUNNING;
	if (!TAILQ_EMPTY(&j->retryq) || j->next < j->ntasks) {
		TAILQ_INSERT_TAIL(&jq.runq, j, runq);
		j->in_runq = 1;
	}
	return t;
}

uint8_t *
jobqueue_task_message(const struct task *t, uint64_t id, size_t *lenp)
{
	struct proto_task	 pt;
	struct proto_expand	 x;
	uint8_t			*msg;
	size_t			 i, n;

	if (t->expand) {
		memset(&x, 0, sizeof x);
		n = json_array_size(t->job->patterns);
		if ((x.patterns = calloc(n + 1, sizeof *x.patterns)) == NULL)
			return NULL;
		for (i = 0; i < n; i++)
			x.patterns[i] = (char *)(uintptr_t)json_string_value(
			    json_array_get(t->job->patterns, i));
		x.task = id;
		x.files_max = t->job->files_max;
		x.roots = t->job->roots;
		x.npatterns = (uint32_t)n;
		msg = proto_expand_encode(&x, lenp);
		free(x.patterns);
		return msg;
	}
	memset(&pt, 0, sizeof pt);
	pt.task = id;
	pt.line_max = t->job->line_max > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)t->job->line_max;
	pt.path = t->path;
	pt.format = t->job->format;
	pt.filter = t->job->filter_text;
	pt.roots = t->job->roots;
	return proto_task_encode(&pt, lenp);
}

int
jobqueue_task_expands(const struct task *t)
{
	return t->expand;
}

const char *
jobqueue_task_path(const struct task *t)
{
	return t->path;
}

int64_t
jobqueue_task_job(const struct task *t)
{
	return t->job->id;
}

/* A task of a cancelled or expired job came back: forget it. */
static int
jq_task_orphan(struct task *t)
{
	struct job	*j = t->job;

	if (j->state != JOB_CANCELLED && !j->dropped)
		return 0;
	t->state = TASK_DONE;
	if (j->dropped && j->running == 0)
		jq_drop(j);
	return 1;
}

/* One more task of the job is finished (counted or failed). */
static void
jq_task_finished(struct task *t)
{
	struct job	*j = t->job;

	t->state = TASK_DONE;
	j->done++;
	j->bytes_done += t->bytes;
	if (jq_task_failed(t))
		j->failed++;
	jq.files++;
	jq.lines += t->lines;
	jq.bytes += t->bytes;
	if (j->done == j->ntasks)
		jobqueue_finish(j);
	else
		jq_progress(j);
}

/*
 * A worker's result for a task. Its counts are decoded into a scratch
 * table first and merged only when the whole buffer adds up, so that a
 * malformed result never leaves part of itself in the job's counts; it
 * returns -1 then, with the task still running: the caller treats the
 * worker as broken (kills it) and the task is retried as a lost one.
 */
int
jobqueue_task_done(struct task *t, const struct proto_result *r)
{
	struct job	*j = t->job;
	int		 oom = 0;

	/* (jq.scratch is empty between calls) */
	if (j->state != JOB_CANCELLED && !j->dropped && r->f.counts_len > 0) {
		if (counts_decode_merge(jq.scratch, r->counts,
		    r->f.counts_len) == -1) {
			if (errno != ENOMEM) {
				log_warnx("job %lld: %s: malformed counts from "
				    "worker", (long long)j->id, t->path);
				counts_clear(jq.scratch);
				return -1;
			}
			oom = 1;
		}
	}
	j->running--;
	if (jq_task_orphan(t))
		return 0;
	t->bytes = r->f.bytes;
	t->raw_bytes = r->f.raw_bytes;
	t->lines = r->f.lines;
	t->matched = r->f.matched;
	t->malformed = r->f.malformed;
	t->filtered = r->f.filtered;
	t->counted = r->f.counted;
	t->flags = r->f.flags;
	if (jq_task_failed(t))
		t->flags &= ~PROTO_F_PARTIAL;
	if (r->f.error_len > 0 &&
	    (t->error = strndup(r->error, r->f.error_len)) == NULL)
		log_warnx("job %lld: out of memory", (long long)j->id);
	if (r->f.counts_len > 0 &&
	    (oom || counts_merge(j->counts, jq.scratch) == -1)) {
		/* Out of memory: the file's counts are not all there. */
		log_warnx("job %lld: %s: out of memory merging counts",
		    (long long)j->id, t->path);
		free(t->error);
		t->error = strdup("out of memory merging counts");
		if (oom) {
			t->flags = (t->flags | PROTO_F_FAILED) &
			    ~PROTO_F_PARTIAL;
			t->counted = 0;
		} else if (!jq_task_failed(t))
			t->flags |= PROTO_F_PARTIAL;
	}
	counts_clear(jq.scratch);
	jq_task_finished(t);
	return 0;
}

void
jobqueue_task_lost(struct task *t, const char *why)
{
	struct job	*j = t->job;
	struct jq_error	 err;
	char		 msg[128];

	if (t->expand) {
		t->state = TASK_PENDING;
		if (jq.stopping) {
			jq_expand_end(j);
			jq_job_free(j);
		} else if (t->lost++ < JQ_RETRIES)
			log_warnx("submit by uid %lu pid %ld: worker %s expanding "
			    "the patterns, retrying", (unsigned long)j->uid,
			    (long)j->pid, why);
		else {
			jq_seterr(&err, "internal", "expanding patterns: worker "
			    "%s (twice)", why);
			jq_submit_fail(j, &err);
		}
		return;
	}
	j->running--;
	if (jq_task_orphan(t))
		return;
	if (jq.stopping) {
		/* Stopped with the daemon, on purpose: not a crash to retry. */
		log_info("job %lld: %s: stopping, left unfinished",
		    (long long)j->id, t->path);
		t->state = TASK_PENDING;
		return;
	}
	if (t->lost++ < JQ_RETRIES) {
		log_warnx("job %lld: %s: worker %s, retrying", (long long)j->id,
		    t->path, why);
		t->state = TASK_PENDING;
		TAILQ_INSERT_TAIL(&j->retryq, t, retry);
		if (!j->in_runq) {
			/* A retry goes first: the job already waited its turn. */
			TAILQ_INSERT_HEAD(&jq.runq, j, runq);
			j->in_runq = 1;
		}
		return;
	}
	log_warnx("job %lld: %s: worker %s again, giving up", (long long)j->id,
	    t->path, why);
	snprintf(msg, sizeof msg, "worker %s (twice)", why);
	t->bytes = t->raw_bytes = t->lines = t->matched = t->malformed = 0;
	t->filtered = t->counted = 0;
	t->flags = PROTO_F_FAILED;
	free(t->error);
	t->error = strdup(msg);
	jq_task_finished(t);
}
