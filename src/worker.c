/*
 * worker.c: a worker process.
 *
 * A blocking loop with no event library: read a task and run it. A MAP
 * task runs the analysis pipeline on its file with a cached compiled
 * format and the task's filter, writes the counts as a partial into the
 * spool and sends back the statistics only. A MERGE task merges earlier
 * tasks' partials into a partial or into the job's result file.
 * A job's patterns are expanded here too (glob(3) may block on a slow
 * filesystem; the supervisor must not), answered with the file list.
 * The worker dies with the supervisor (PR_SET_PDEATHSIG, or EOF on the
 * socketpair). worker_memory caps its address space, task_timeout arms
 * alarm(2) so that a task that runs too long kills the worker, which the
 * supervisor sees, retries once and then reports.
 */
#include <config.h>

#include "worker.h"

#include "analysis.h"
#include "config.h"
#include "counts.h"
#include "expand.h"
#include "filter.h"
#include "log.h"
#include "logformat.h"
#include "merge.h"
#include "partial.h"
#include "proto.h"

#include <sys/resource.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKER_FORMATS	16	/* compiled formats cached */

struct worker {
	int			 fd;
	const char		*spool;		/* where partials and results go */
	int			 timeout;
	size_t			 walk_max;	/* expansions: entries read */
	int			 no_hardlinks;	/* refuse_hardlinks */
	struct logformat_cache	*formats;
	struct counts		*counts;
	char			*filter_text;	/* the cached filter's spec */
	struct filter		*filter;
};

/*
 * The supervisor's argument strings (contiguous, as the kernel lays them
 * out), which a worker overwrites with its own title for ps(1).
 */
static char	*worker_argv_area;
static size_t	 worker_argv_len;

void
worker_title_init(int argc, char **argv)
{
	char	*end;
	int	 i;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc && argv[i] == end; i++)
		end += strlen(argv[i]) + 1;
	worker_argv_area = argv[0];
	worker_argv_len = (size_t)(end - argv[0]);
}

/*
 * Name the process: comm (ps -o comm, top) as comm, and the command line
 * (ps -o args) as title when it fits in the supervisor's arguments, the
 * rest of them cleared; else the command line is left as it was.
 */
static void
worker_title(const char *comm, const char *title)
{
	size_t	n = strlen(title);

#ifdef HAVE_PRCTL
	if (prctl(PR_SET_NAME, comm, 0, 0, 0) == -1)
		log_warn("prctl PR_SET_NAME");
#else
	(void)comm;
#endif
	if (worker_argv_area == NULL || n >= worker_argv_len)
		return;
	memcpy(worker_argv_area, title, n);
	memset(worker_argv_area + n, '\0', worker_argv_len - n);
}

/* Set up the process: signals, parent death, limits. -1 on failure. */
static int
worker_setup(pid_t parent, const struct config *cfg)
{
	signal(SIGINT, SIG_IGN);	/* ^C is for the supervisor */
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
#ifdef HAVE_PRCTL
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) {
		log_warn("prctl");
		return -1;
	}
#endif
	/* The supervisor may have died before prctl took effect. */
	if (getppid() != parent)
		return -1;
	if (cfg->worker_memory > 0) {
#ifdef __SANITIZE_ADDRESS__
		/* ASan reserves terabytes of address space: a limit breaks it. */
		log_debug("worker_memory ignored in a sanitizer build");
#else
		struct rlimit	rl;

		rl.rlim_cur = rl.rlim_max = cfg->worker_memory;
		if (setrlimit(RLIMIT_AS, &rl) == -1) {
			log_warn("setrlimit");
			return -1;
		}
#endif
	}
	return 0;
}

/* The filter for a task: the cached one when the spec is the same. */
static struct filter *
worker_filter(struct worker *w, const char *text, char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*spec;
	struct filter	*f;
	char		*copy;

	if (w->filter != NULL && strcmp(w->filter_text, text) == 0)
		return w->filter;
	if ((spec = json_loads(text, 0, &jerr)) == NULL) {
		snprintf(err, errlen, "filter: %s", jerr.text);
		return NULL;
	}
	f = filter_from_json(spec, err, errlen);
	json_decref(spec);
	if (f == NULL)
		return NULL;
	/* (the copy first: out of memory leaves the cached pair as it was) */
	if ((copy = strdup(text)) == NULL) {
		filter_free(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	filter_free(w->filter);
	free(w->filter_text);
	w->filter = f;
	w->filter_text = copy;
	return f;
}

/*
 * Write the task's counts as a partial, to a temporary name renamed into
 * place once complete: a partial under its task's name is always whole.
 * -1 with st's error set (the file is then failed: none of its counts
 * reach the job).
 */
static int
worker_write_partial(struct worker *w, const struct proto_task *t,
    struct proto_result *r)
{
	struct partial_source	 src;
	struct partial_writer	*pw;
	struct counts_sorted	 cs;
	char			 path[PATH_MAX], tmp[PATH_MAX + 8];
	char			*settings;
	size_t			 i;
	int			 fd = -1, rc = -1, e;

	memset(&cs, 0, sizeof cs);
	settings = partial_settings(t->format, t->filter, t->line_max);
	if (settings == NULL || counts_sort(w->counts, &cs) == -1) {
		e = errno;
		goto fail;
	}
	if (proto_spool_path(path, sizeof path, w->spool, t->task, 0) == -1) {
		e = ENAMETOOLONG;
		goto fail;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		e = errno;
		goto fail;
	}
	memset(&src, 0, sizeof src);
	src.path = t->path;
	src.path_len = strlen(t->path);
	src.id = r->id;
	src.st = r->st;
	if ((pw = partial_writer_new(fd, settings, strlen(settings), &src,
	    1)) == NULL) {
		e = errno;
		goto fail;
	}
	for (i = 0; i < cs.n; i++)
		if (partial_put(pw, cs.e[i].key, cs.e[i].len, cs.e[i].n) == -1)
			break;
	if (partial_finish(pw, &r->nkeys) == -1) {
		e = errno;
		goto fail;
	}
	r->size = (uint64_t)lseek(fd, 0, SEEK_CUR);
	if (close(fd) == -1) {
		fd = -1;
		e = errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		e = errno;
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	r->st.flags = (r->st.flags | STATS_FAILED) & ~STATS_PARTIAL;
	r->st.counted = 0;
	r->nkeys = r->size = 0;
	snprintf(r->st.error, sizeof r->st.error, "writing its partial "
	    "(%zu path%s): %s", counts_size(w->counts),
	    counts_size(w->counts) == 1 ? "" : "s", strerror(e));
out:
	counts_sorted_free(&cs);
	free(settings);
	return rc;
}

/* Run one MAP task and send its result; -1 when the supervisor is gone. */
static int
worker_task(struct worker *w, const struct proto_task *t)
{
	struct proto_result		 r;
	struct analysis_opts		 opts;
	uint8_t				*msg = NULL;
	size_t				 mlen;
	char				 err[256];
	int				 rc = -1;

	memset(&r, 0, sizeof r);
	memset(&opts, 0, sizeof opts);
	counts_clear(w->counts);
	err[0] = '\0';
	r.task = t->task;
	opts.line_max = t->line_max;
	opts.roots = (const char *const *)t->roots;
	opts.no_hardlinks = w->no_hardlinks;
	if ((opts.fmt = logformat_cache_get(w->formats, t->format, err,
	    sizeof err)) == NULL ||
	    (opts.flt = worker_filter(w, t->filter, err, sizeof err)) == NULL) {
		r.st.flags = STATS_FAILED;
		snprintf(r.st.error, sizeof r.st.error, "%s", err);
	} else {
		if (w->timeout > 0)
			alarm((unsigned)w->timeout);
		(void)analysis_file(t->path, &opts, w->counts, &r.st, &r.id);
		alarm(0);
	}
	if (r.st.flags & STATS_FAILED)
		r.st.flags &= ~STATS_PARTIAL;
	/* Every file gets a partial, a failed one too: it lists the file. */
	(void)worker_write_partial(w, t, &r);
	if ((msg = proto_result_encode(&r, &mlen)) == NULL) {
		log_warn("%s: result", t->path);
		goto out;
	}
	if (proto_write(w->fd, msg, mlen) == -1)
		goto out;
	rc = 0;
out:
	free(msg);
	counts_clear(w->counts);
	return rc;
}

/*
 * Run one MERGE task: its inputs are earlier tasks' partials, its output
 * this task's file, a partial or (final) the job's result, written to a
 * temporary name and renamed when whole. -1 when the supervisor is gone.
 */
static int
worker_merge(struct worker *w, const struct proto_merge *m)
{
	struct proto_merged_fixed	 mf;
	struct merge_opts		 o;
	struct merge_result		 mr;
	struct partial_source		*extra = NULL;
	char				**inputs = NULL, path[PATH_MAX];
	char				 tmp[PATH_MAX + 8];
	uint8_t				*msg;
	size_t				 mlen, i;
	int				 fd = -1, rc;

	memset(&o, 0, sizeof o);
	memset(&mr, 0, sizeof mr);
	mr.bad = SIZE_MAX;
	if ((inputs = calloc((size_t)m->f.ninputs + 1, sizeof *inputs)) == NULL ||
	    (extra = calloc((size_t)m->f.nextra + 1, sizeof *extra)) == NULL) {
		snprintf(mr.error, sizeof mr.error, "out of memory");
		goto reply;
	}
	for (i = 0; i < m->f.ninputs; i++) {
		if (proto_spool_path(path, sizeof path, w->spool,
		    m->inputs[i], 0) == -1 ||
		    (inputs[i] = strdup(path)) == NULL) {
			snprintf(mr.error, sizeof mr.error, "out of memory");
			goto reply;
		}
	}
	for (i = 0; i < m->f.nextra; i++) {
		extra[i].path = m->extra[i].path;
		extra[i].path_len = m->extra[i].path_len;
		extra[i].st = m->extra[i].st;
	}
	if (proto_spool_path(path, sizeof path, w->spool, m->f.task,
	    m->f.final) == -1) {
		snprintf(mr.error, sizeof mr.error, "spool path too long");
		goto reply;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		snprintf(mr.error, sizeof mr.error, "creating the output in the "
		    "spool: %s", strerror(errno));
		goto reply;
	}
	o.inputs = inputs;
	o.ninputs = m->f.ninputs;
	o.extra = extra;
	o.nextra = m->f.nextra;
	o.fd = fd;
	o.final = m->f.final != 0;
	o.top = (size_t)m->f.top;
	o.head = m->f.head_len > 0 ? m->head : NULL;
	o.start_usec = m->f.start_usec;
	if (w->timeout > 0)
		alarm((unsigned)w->timeout);
	rc = merge_run(&o, &mr);
	alarm(0);
	if (rc == 0) {
		rc = close(fd);
		fd = -1;
		if (rc == 0)
			rc = rename(tmp, path);
		if (rc == -1) {
			snprintf(mr.error, sizeof mr.error, "writing the output "
			    "in the spool: %s", strerror(errno));
			unlink(tmp);
		}
	}
	else if (mr.error[0] == '\0')
		snprintf(mr.error, sizeof mr.error, "merge failed");
reply:
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	for (i = 0; inputs != NULL && i < m->f.ninputs; i++)
		free(inputs[i]);
	free(inputs);
	free(extra);
	memset(&mf, 0, sizeof mf);
	mf.task = m->f.task;
	mf.nkeys = mr.nkeys;
	mf.size = mr.bytes;
	mf.bad = mr.bad < m->f.ninputs ? (uint32_t)mr.bad : PROTO_NO_INPUT;
	if (mr.error[0] != '\0')
		log_warnx("merge: %s", mr.error);
	if ((msg = proto_merged_encode(&mf, mr.error[0] != '\0' ? mr.error :
	    NULL, &mlen)) == NULL)
		return -1;
	rc = proto_write(w->fd, msg, mlen);
	free(msg);
	return rc;
}

/*
 * Whether a format yields what the job's filters need: a status filter
 * on a format with no status field would drop every line, and a time
 * range on one with no time the same. -1 with the reason in err.
 */
static int
worker_format_serves(const struct logformat *lf, uint32_t needs, char *err,
    size_t errlen)
{
	if ((needs & FILTER_NEEDS_STATUS) && !logformat_has_status(lf)) {
		snprintf(err, errlen, "it has no status field (%%>s, or a "
		    "regex: group named status): the status filter cannot "
		    "apply");
		return -1;
	}
	if ((needs & FILTER_NEEDS_TIME) && !logformat_has_time(lf)) {
		snprintf(err, errlen, "it has no time field (%%t, or a regex: "
		    "group named time): since and until cannot apply");
		return -1;
	}
	return 0;
}

/*
 * Expand a job's patterns and send the file list; an expansion that
 * fails, or whose list is too big for one message, sends its error.
 * -1 when the supervisor is gone.
 */
static int
worker_expand(struct worker *w, const struct proto_expand *x)
{
	struct expand_result	 r;
	struct expand_limits	 lim;
	struct logformat	*lf = NULL;
	uint8_t			*msg;
	size_t			 mlen;
	char			 ferr[256];
	int			 rc;

	if (x->format != NULL && ((lf = logformat_cache_get(w->formats,
	    x->format, ferr, sizeof ferr)) == NULL ||
	    worker_format_serves(lf, x->needs, ferr, sizeof ferr) == -1)) {
		/* Refused with the compiler's words, before any file is read. */
		if ((msg = proto_expanded_format_error(x->task, ferr,
		    &mlen)) == NULL)
			return -1;
		rc = proto_write(w->fd, msg, mlen);
		free(msg);
		return rc;
	}
	if (w->timeout > 0)
		alarm((unsigned)w->timeout);
	lim.files_max = (size_t)(x->files_max > SIZE_MAX / 4 ? SIZE_MAX / 4 :
	    x->files_max);
	lim.walk_max = w->walk_max;
	lim.memory_max = EXPAND_MEMORY_MAX;
	(void)expand_patterns(x->patterns, x->npatterns, x->roots, &lim, &r);
	alarm(0);
	msg = proto_expanded_encode(x->task, r.paths, r.npaths, r.unmatched,
	    r.nunmatched, r.limit, r.error[0] != '\0' ? r.error : NULL,
	    &mlen);
	if (msg == NULL) {
		log_warn("expanding %u pattern%s", x->npatterns,
		    x->npatterns == 1 ? "" : "s");
		snprintf(r.error, sizeof r.error, "%s (%zu path%s)", errno ==
		    EMSGSIZE ? "file list too long for one message" :
		    "out of memory sending the file list", r.npaths,
		    r.npaths == 1 ? "" : "s");
		if ((msg = proto_expanded_encode(x->task, NULL, 0, NULL, 0, 0,
		    r.error, &mlen)) == NULL) {
			expand_result_clear(&r);
			return -1;
		}
	}
	expand_result_clear(&r);
	rc = proto_write(w->fd, msg, mlen);
	free(msg);
	return rc;
}

void
worker_main(int fd, int slot, pid_t parent, const struct config *cfg,
    const char *spool)
{
	struct worker		 w;
	struct proto_ready	 ready;
	struct proto_hdr	 h;
	struct proto_task	 t;
	struct proto_expand	 x;
	struct proto_merge	 m;
	uint8_t			*payload, *msg;
	char			 name[32], title[48];
	int			 r, code = 0;

	if (slot < 0)
		snprintf(name, sizeof name, "expander");
	else
		snprintf(name, sizeof name, "worker %d", slot);
	log_procname(name);
	snprintf(title, sizeof title, "clfd: %s", name);
	worker_title(slot < 0 ? "clfd-expander" : "clfd-worker", title);
	memset(&w, 0, sizeof w);
	w.fd = fd;
	w.spool = spool;
	w.timeout = cfg->task_timeout;
	w.walk_max = cfg->walk_max;
	w.no_hardlinks = cfg->refuse_hardlinks;
	if (worker_setup(parent, cfg) == -1)
		_exit(WORKER_EXIT_SETUP);
	if ((w.formats = logformat_cache_new(WORKER_FORMATS)) == NULL ||
	    (w.counts = counts_new()) == NULL) {
		log_warnx("out of memory");
		_exit(WORKER_EXIT_SETUP);
	}

	memset(&h, 0, sizeof h);
	h.type = PROTO_READY;
	h.len = sizeof ready;
	ready.version = PROTO_VERSION;
	ready.pid = (uint32_t)getpid();
	if ((msg = malloc(sizeof h + sizeof ready)) == NULL)
		_exit(WORKER_EXIT_SETUP);
	memcpy(msg, &h, sizeof h);
	memcpy(msg + sizeof h, &ready, sizeof ready);
	r = proto_write(fd, msg, sizeof h + sizeof ready);
	free(msg);
	if (r == -1)
		goto out;

	for (;;) {
		if ((r = proto_read(fd, &h, &payload)) == 0)
			break;		/* supervisor closed: exit quietly */
		if (r == -1) {
			log_warn("read from supervisor");
			code = 1;
			break;
		}
		if (h.type == PROTO_EXPAND &&
		    proto_expand_decode(payload, h.len, &x) == 0) {
			free(payload);
			r = worker_expand(&w, &x);
			proto_expand_clear(&x);
		} else if (h.type == PROTO_TASK &&
		    proto_task_decode(payload, h.len, &t) == 0) {
			free(payload);
			r = worker_task(&w, &t);
			proto_task_clear(&t);
		} else if (h.type == PROTO_MERGE &&
		    proto_merge_decode(payload, h.len, &m) == 0) {
			/* (its extra sources' paths point into the payload) */
			r = worker_merge(&w, &m);
			proto_merge_clear(&m);
			free(payload);
		} else {
			log_warnx("bad message from supervisor (type %u, %u "
			    "bytes)", h.type, h.len);
			free(payload);
			code = 1;
			break;
		}
		if (r == -1)
			break;
	}
out:
	logformat_cache_free(w.formats);
	counts_free(w.counts);
	filter_free(w.filter);
	free(w.filter_text);
	close(fd);
	exit(code);
}
