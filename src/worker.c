/*
 * worker.c: a worker process.
 *
 * A blocking loop with no event library: read a task, run the analysis
 * pipeline on its file with a cached compiled format and the task's
 * filter, send back one result message (statistics + encoded counts).
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
#include "proto.h"

#include <sys/resource.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKER_FORMATS	16	/* compiled formats cached */

struct worker {
	int			 fd;
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

/* Run one task and send its result; -1 when the supervisor is gone. */
static int
worker_task(struct worker *w, const struct proto_task *t)
{
	struct proto_result_fixed	 rf;
	struct analysis_opts		 opts;
	struct file_stats		 st;
	uint8_t				*counts = NULL, *msg = NULL;
	size_t				 clen = 0, mlen;
	char				 err[256];
	int				 rc = -1;

	memset(&st, 0, sizeof st);
	memset(&opts, 0, sizeof opts);
	counts_clear(w->counts);
	err[0] = '\0';
	opts.line_max = t->line_max;
	opts.roots = (const char *const *)t->roots;
	opts.no_hardlinks = w->no_hardlinks;
	if ((opts.fmt = logformat_cache_get(w->formats, t->format, err,
	    sizeof err)) == NULL ||
	    (opts.flt = worker_filter(w, t->filter, err, sizeof err)) == NULL) {
		st.failed = 1;
		snprintf(st.error, sizeof st.error, "%s", err);
	} else {
		if (w->timeout > 0)
			alarm((unsigned)w->timeout);
		(void)analysis_file(t->path, &opts, w->counts, &st);
		alarm(0);
	}

	memset(&rf, 0, sizeof rf);
	rf.task = t->task;
	rf.bytes = st.bytes;
	rf.raw_bytes = st.raw_bytes;
	rf.lines = st.lines;
	rf.matched = st.matched;
	rf.malformed = st.malformed;
	rf.filtered = st.filtered;
	rf.counted = st.counted;
	rf.flags = (st.gzip ? PROTO_F_GZIP : 0) |
	    (st.partial ? PROTO_F_PARTIAL : 0) |
	    (st.failed ? PROTO_F_FAILED : 0);
	if (counts_size(w->counts) > 0 &&
	    (counts = counts_encode(w->counts, &clen)) == NULL) {
		/*
		 * Report the file failed rather than send wrong counts; not
		 * partial, since none of its lines are counted.
		 */
		rf.flags = (rf.flags | PROTO_F_FAILED) & ~PROTO_F_PARTIAL;
		snprintf(st.error, sizeof st.error, "out of memory encoding "
		    "counts (%zu path%s)", counts_size(w->counts),
		    counts_size(w->counts) == 1 ? "" : "s");
		rf.counted = 0;
		clen = 0;
	}
	st.error[sizeof st.error - 1] = '\0';
	if ((msg = proto_result_encode(&rf, st.error, counts, clen,
	    &mlen)) == NULL) {
		log_warn("%s: result", t->path);
		goto out;
	}
	if (proto_write(w->fd, msg, mlen) == -1)
		goto out;
	rc = 0;
out:
	free(counts);
	free(msg);
	counts_clear(w->counts);
	return rc;
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
	uint8_t			*msg;
	size_t			 mlen;
	int			 rc;

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
worker_main(int fd, int slot, pid_t parent, const struct config *cfg)
{
	struct worker		 w;
	struct proto_ready	 ready;
	struct proto_hdr	 h;
	struct proto_task	 t;
	struct proto_expand	 x;
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
