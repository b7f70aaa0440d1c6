/*
 * test_jobqueue.c: how the job queue takes its workers' answers
 * (jobqueue.c, expand.c, with the real partials and merges of
 * partial.c and merge.c), as tables of malformed messages and files.
 *
 * A submit is answered once a worker has expanded its patterns: the test
 * plays that worker through the real messages. A file list that does not
 * add up (unsorted, too long, a relative path, a bad pattern index) must
 * be refused so that the supervisor kills the worker and the expansion
 * is retried; twice lost, the submit fails. The test plays the MAP and
 * MERGE workers too, writing real partials into a spool and merging them
 * as a worker does: a partial damaged in any way must be refused by the
 * merge and its file read again, counted exactly once; a merge whose
 * worker dies is run again; many files merge as a tree. The supervisor's
 * side is played here by the two functions the job queue calls back.
 */
#include "../../src/config.h"	/* (the build's config.h has the name) */
#include "counts.h"
#include "expand.h"
#include "jobqueue.h"
#include "log.h"
#include "merge.h"
#include "partial.h"
#include "proto.h"
#include "pool.h"
#include "reply.h"
#include "request.h"
#include "tap.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

/*
 * The supervisor's part: no workers here, the test hands out tasks. A
 * kick counts itself and, while kick_fails says so, fails to send the
 * tasks it takes, as the supervisor's hand-over does when a message
 * cannot be queued (too large, out of memory).
 */
static int	kicks, kick_fails;

void
pool_kick(void)
{
	struct task	*t;

	kicks++;
	while (kick_fails > 0 && (t = jobqueue_next_task()) != NULL) {
		kick_fails--;
		jobqueue_task_lost(t, "could not be sent the task");
	}
}

/* The limits of an expansion: files_max, and the walk and memory caps. */
static const struct expand_limits *
xlim(size_t files_max)
{
	static struct expand_limits	l;

	l.files_max = files_max;
	l.walk_max = 1000000;
	l.memory_max = EXPAND_MEMORY_MAX;
	return &l;
}

static char	spool[PATH_MAX];
static uint64_t	next_run = 100;

/*
 * Play a MAP worker: write the task's partial (keys /a x3 and /b x2, or
 * none for a failed file) under a fresh run id, and answer with flags
 * and error. The run id, or 0.
 */
static uint64_t
play_map(struct task *t, uint32_t flags, const char *error)
{
	struct proto_result	 r;
	struct partial_source	 src;
	struct partial_writer	*w;
	uint8_t			*msg;
	size_t			 len;
	char			 path[PATH_MAX];
	uint64_t		 run = ++next_run;
	int			 fd;

	if (t == NULL || jobqueue_task_kind(t) != JQ_TASK_MAP ||
	    (msg = jobqueue_task_message(t, run, 0, &len)) == NULL)
		return 0;
	free(msg);
	memset(&r, 0, sizeof r);
	r.task = run;
	r.st.flags = flags;
	snprintf(r.st.error, sizeof r.st.error, "%s", error);
	if (!(flags & STATS_FAILED))
		r.st.lines = r.st.matched = r.st.counted = 5;
	memset(&src, 0, sizeof src);
	src.path = jobqueue_task_path(t);
	src.path_len = strlen(src.path);
	src.st = r.st;
	proto_spool_path(path, sizeof path, spool, run, 0);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (w = partial_writer_new(fd, "s", 1, &src, 1)) == NULL)
		return 0;
	if (!(flags & STATS_FAILED)) {
		partial_put(w, "/a", 2, 3);
		partial_put(w, "/b", 2, 2);
	}
	if (partial_finish(w, &r.nkeys) == -1)
		return 0;
	r.size = (uint64_t)lseek(fd, 0, SEEK_END);
	close(fd);
	return jobqueue_task_done(t, &r) == 0 ? run : 0;
}

/*
 * Play a MERGE worker as worker.c does: merge the inputs the message
 * names into the task's own spool file, answer with what merge_run said.
 * 0 when the answer was taken, -1 when refused (or not a merge).
 */
static int
play_merge(struct task *t)
{
	struct proto_hdr		 h;
	struct proto_merge		 m;
	struct proto_merged_fixed	 mf;
	struct proto_merged		 md;
	struct merge_opts		 o;
	struct merge_result		 mr;
	struct partial_source		*extra;
	char				**inputs, path[PATH_MAX];
	uint8_t				*msg, *ans;
	size_t				 len, i;
	uint64_t			 run = ++next_run;
	int				 fd, rc;

	if (t == NULL || jobqueue_task_kind(t) != JQ_TASK_MERGE ||
	    (msg = jobqueue_task_message(t, run, 0, &len)) == NULL)
		return -1;
	memcpy(&h, msg, sizeof h);
	if (h.type != PROTO_MERGE ||
	    proto_merge_decode(msg + sizeof h, h.len, &m) == -1) {
		free(msg);
		return -1;
	}
	/* (msg is kept: the extra sources' paths point into it) */
	inputs = calloc(m.f.ninputs + 1, sizeof *inputs);
	extra = calloc(m.f.nextra + 1, sizeof *extra);
	for (i = 0; i < m.f.ninputs; i++) {
		proto_spool_path(path, sizeof path, spool, m.inputs[i], 0);
		inputs[i] = strdup(path);
	}
	for (i = 0; i < m.f.nextra; i++) {
		extra[i].path = m.extra[i].path;
		extra[i].path_len = m.extra[i].path_len;
		extra[i].st = m.extra[i].st;
	}
	proto_spool_path(path, sizeof path, spool, run, (int)m.f.final);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	memset(&o, 0, sizeof o);
	o.inputs = inputs;
	o.ninputs = m.f.ninputs;
	o.extra = extra;
	o.nextra = m.f.nextra;
	o.fd = fd;
	o.final = m.f.final != 0;
	o.top = (size_t)m.f.top;
	o.head = m.f.head_len > 0 ? m.head : NULL;
	o.start_usec = m.f.start_usec;
	if (merge_run(&o, &mr) == -1)
		unlink(path);		/* as the worker does */
	close(fd);
	for (i = 0; i < m.f.ninputs; i++)
		free(inputs[i]);
	free(inputs);
	free(extra);
	memset(&mf, 0, sizeof mf);
	mf.task = run;
	mf.nkeys = mr.nkeys;
	mf.size = mr.bytes;
	mf.bad = mr.bad < m.f.ninputs ? (uint32_t)mr.bad : PROTO_NO_INPUT;
	proto_merge_clear(&m);
	free(msg);
	ans = proto_merged_encode(&mf, mr.error[0] != '\0' ? mr.error : NULL,
	    &len);
	if (ans == NULL)
		return -1;
	memcpy(&h, ans, sizeof h);
	rc = proto_merged_decode(ans + sizeof h, h.len, &md) == 0 ?
	    jobqueue_task_merged(t, &md) : -1;
	free(ans);
	return rc;
}

/* Play every merge queued, until none is left. */
static int
play_merges(void)
{
	struct task	*t;
	int		 n = 0;

	while ((t = jobqueue_next_task()) != NULL &&
	    jobqueue_task_kind(t) == JQ_TASK_MERGE) {
		if (play_merge(t) == -1)
			return -1;
		n++;
	}
	if (t != NULL)
		jobqueue_task_lost(t, "put back");	/* not a merge */
	return n;
}

/* A finished job's result, parsed; NULL when there is none. */
static json_t *
result_json(int64_t id)
{
	struct jq_result	 res;
	struct jq_error		 err;
	json_error_t		 jerr;

	if (jobqueue_result(id, 0, &res, &err) == -1)
		return NULL;
	if (res.text != NULL)
		return json_loadb(res.text, res.len, 0, &jerr);
	return json_load_file(res.path, 0, &jerr);
}

/* Ways to damage a partial on disk. */
enum damage { FLIP_FIRST, FLIP_KEY, FLIP_LAST, CUT_LAST, CUT_HALF, EMPTY,
    SWAPPED };

static const struct {
	const char	*name;
	enum damage	 how;
} cases[] = {
	{ "first byte flipped (magic)", FLIP_FIRST },
	{ "a key byte flipped", FLIP_KEY },
	{ "last byte flipped (checksum)", FLIP_LAST },
	{ "last byte cut", CUT_LAST },
	{ "cut in half", CUT_HALF },
	{ "emptied", EMPTY },
	{ "replaced by another file's bytes", SWAPPED },
};

/* Damage the partial of run id in place. */
static void
damage(uint64_t run, enum damage how)
{
	char		 path[PATH_MAX];
	struct stat	 st;
	unsigned char	 b;
	FILE		*f;
	int		 fd;

	proto_spool_path(path, sizeof path, spool, run, 0);
	if (stat(path, &st) == -1 || (fd = open(path, O_RDWR)) == -1)
		return;
	switch (how) {
	case FLIP_FIRST:
	case FLIP_KEY:
	case FLIP_LAST: {
		off_t at = how == FLIP_FIRST ? 0 : how == FLIP_LAST ?
		    st.st_size - 1 : st.st_size - 28 - 3;

		if (pread(fd, &b, 1, at) == 1) {
			b ^= 0x20;
			(void)pwrite(fd, &b, 1, at);
		}
		break;
	}
	case CUT_LAST:
		(void)ftruncate(fd, st.st_size - 1);
		break;
	case CUT_HALF:
		(void)ftruncate(fd, st.st_size / 2);
		break;
	case EMPTY:
		(void)ftruncate(fd, 0);
		break;
	case SWAPPED:
		if ((f = fdopen(dup(fd), "w")) != NULL) {
			fputs("{\"not\":\"a partial\"}", f);
			fclose(f);
		}
		break;
	}
	close(fd);
}

/* What the submit callback was told. */
static struct {
	int	called;
	int64_t	id;
	size_t	files;
	char	code[32];
	char	message[256];
} sub;

static void
submitted(int64_t id, size_t files, const struct jq_error *err, void *arg)
{
	(void)arg;
	sub.called++;
	sub.id = id;
	sub.files = files;
	snprintf(sub.code, sizeof sub.code, "%s", err != NULL ?
	    errcode_name(err->code) : "");
	snprintf(sub.message, sizeof sub.message, "%s", err != NULL ?
	    err->message : "");
}

/* The config the test's jobs are submitted under (as control's). */
static const struct config	*test_cfg;

/*
 * A submit as control makes it: the request checked (request.c), then
 * handed to the job queue; NULL with err when either refuses it.
 */
static struct job *
submit_json(const json_t *req, uid_t uid, jobqueue_submit_cb cb, void *arg,
    struct jq_error *err)
{
	struct submit_req	sr;

	if ((err->code = request_submit(req, test_cfg, &sr, err->message,
	    sizeof err->message)) != ERRC_NONE)
		return NULL;
	return jobqueue_submit(&sr, uid, 0, cb, arg, err);
}

/* The submit callback of a submitter that holds the job, as control.c. */
static void
submitted_held(int64_t id, size_t files, const struct jq_error *err,
    void *arg)
{
	struct job	**held = arg;

	*held = NULL;
	submitted(id, files, err, NULL);
}

/*
 * Play the worker on an expansion task: decode its message, expand, and
 * encode and decode the answer into x (its buffer in *bufp, to free).
 */
static int
play_expand(struct task *t, uint64_t id, uint8_t **bufp,
    struct proto_expanded *x)
{
	struct proto_hdr	 h;
	struct proto_expand	 pe;
	struct expand_result	 r;
	struct expand_limits	 lim;
	uint8_t			*msg, *out;
	size_t			 len, olen;
	int			 rc = -1;

	*bufp = NULL;
	if (t == NULL || jobqueue_task_kind(t) != JQ_TASK_EXPAND ||
	    (msg = jobqueue_task_message(t, id, 0, &len)) == NULL)
		return -1;
	memcpy(&h, msg, sizeof h);
	if (h.type != PROTO_EXPAND || proto_hdr_check(&h) == -1 ||
	    proto_expand_decode(msg + sizeof h, h.len, &pe) == -1) {
		free(msg);
		return -1;
	}
	free(msg);
	lim = *xlim((size_t)pe.files_max);
	lim.split_size = pe.split_size;
	(void)expand_patterns(pe.patterns, pe.npatterns, pe.roots, &lim, &r);
	out = proto_expanded_encode(pe.task, r.paths, r.ids, r.npaths, r.unmatched,
	    r.nunmatched, r.limit, r.error[0] != '\0' ? r.error : NULL, &olen);
	expand_result_clear(&r);
	proto_expand_clear(&pe);
	if (out == NULL)
		return -1;
	memcpy(&h, out, sizeof h);
	if (h.type == PROTO_EXPANDED && proto_hdr_check(&h) == 0 &&
	    proto_expanded_decode(out + sizeof h, h.len, x) == 0)
		rc = 0;
	*bufp = out;
	return rc;
}

/* Submit as uid and play the worker: the job id, or -1 (sub says why). */
static int64_t
submit_as(const json_t *req, uid_t uid, size_t *files)
{
	struct proto_expanded	 x;
	struct jq_error		 err;
	struct task		*t;
	uint8_t			*buf;

	memset(&sub, 0, sizeof sub);
	if (submit_json(req, uid, submitted, NULL, &err) == NULL) {
		snprintf(sub.code, sizeof sub.code, "%s", errcode_name(err.code));
		return -1;
	}
	t = jobqueue_next_task();
	if (play_expand(t, 7, &buf, &x) == -1 ||
	    jobqueue_task_expanded(t, &x) == -1 || sub.called != 1) {
		free(buf);
		return -1;
	}
	free(buf);
	*files = sub.files;
	return sub.id;
}

static int64_t
submit_now(const json_t *req, size_t *files)
{
	return submit_as(req, 0, files);
}

/*
 * A file's fate in the totals is its flags': FAILED is failed (also with
 * PARTIAL set, also without an error text), PARTIAL alone is partial,
 * and an error text alone fails nothing.
 */
static const struct {
	const char	*name;
	uint32_t	 flags;
	const char	*error;
	int		 failed, partial;
} flag_cases[] = {
	{ "failed, with its error", STATS_FAILED, "Permission denied", 1, 0 },
	{ "failed, no error text", STATS_FAILED, "", 1, 0 },
	{ "failed and partial", STATS_FAILED | STATS_PARTIAL, "gzip: bad", 1,
	    0 },
	{ "partial, with its error", STATS_PARTIAL, "gzip: truncated", 0, 1 },
	{ "an error text, no flag", 0, "a note", 0, 0 },
	{ "clean", 0, "", 0, 0 },
};

static void
test_flags(const json_t *req)
{
	struct task	*t;
	json_t		*res, *tot, *file;
	size_t		 i, files;
	int64_t		 id;

	for (i = 0; i < sizeof flag_cases / sizeof flag_cases[0]; i++) {
		if ((id = submit_now(req, &files)) <= 0 ||
		    (t = jobqueue_next_task()) == NULL) {
			ok(0, "%s: job made", flag_cases[i].name);
			continue;
		}
		(void)play_map(t, flag_cases[i].flags, flag_cases[i].error);
		(void)play_merges();
		res = result_json(id);
		tot = json_object_get(res, "totals");
		file = json_array_get(json_object_get(res, "files"), 0);
		ok(json_integer_value(json_object_get(tot, "failed")) ==
		    flag_cases[i].failed && json_integer_value(json_object_get(
		    tot, "partial")) == flag_cases[i].partial &&
		    json_is_true(json_object_get(file, "partial")) ==
		    (flag_cases[i].partial && !flag_cases[i].failed),
		    "%s: %d failed, %d partial", flag_cases[i].name,
		    flag_cases[i].failed, flag_cases[i].partial);
		json_decref(res);
	}
}

static void
mkfile(const char *dir, const char *name)
{
	char	 p[256];
	FILE	*f;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	if ((f = fopen(p, "w")) != NULL)
		fclose(f);
}

static void
rmfile(const char *dir, const char *name)
{
	char	p[256];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	unlink(p);
}

static const char *const xfiles[] = { "x1", "x2", "x3", "x4", "x5" };

/*
 * Roots: matches outside (a file, a symlink inside pointing out) are left
 * out and counted; a pattern with nothing left is unmatched.
 */
static void
test_expand_roots(const char *dir)
{
	struct expand_result	 r;
	char			 in[128], out[128], p[3][160], link[160];
	char			*pv[3], *roots[2];

	snprintf(in, sizeof in, "%s/rin", dir);
	snprintf(out, sizeof out, "%s/rout", dir);
	if (mkdir(in, 0700) == -1 || mkdir(out, 0700) == -1) {
		ok(0, "expand roots: set up");
		return;
	}
	mkfile(in, "a.log");
	mkfile(out, "secret.log");
	snprintf(link, sizeof link, "%s/b.log", in);
	snprintf(p[0], sizeof p[0], "%s/secret.log", out);
	if (symlink(p[0], link) == -1) {
		ok(0, "expand roots: symlink");
		return;
	}
	snprintf(p[0], sizeof p[0], "%s/*.log", in);
	snprintf(p[1], sizeof p[1], "%s/*", out);
	snprintf(p[2], sizeof p[2], "%s/../rout/secret.log", in);
	pv[0] = p[0];
	pv[1] = p[1];
	pv[2] = p[2];
	roots[0] = in;
	roots[1] = NULL;
	ok(expand_patterns(pv, 3, roots, xlim(10), &r) == 0 && r.npaths == 1 &&
	    strcmp(r.paths[0] + strlen(in), "/a.log") == 0,
	    "expand roots: only the file inside listed");
	ok(r.nunmatched == 2 && r.unmatched[0] == 1 && r.unmatched[1] == 2,
	    "expand roots: patterns with all matches outside are unmatched");
	expand_result_clear(&r);
	ok(expand_patterns(pv, 3, NULL, xlim(10), &r) == 0 && r.npaths == 2 &&
	    strcmp(r.paths[0] + strlen(in), "/a.log") == 0 &&
	    strcmp(r.paths[1] + strlen(in), "/b.log") == 0,
	    "expand roots: no roots, every file listed once (the secret by "
	    "its first path of the fewest components)");
	expand_result_clear(&r);
	unlink(link);
	rmfile(in, "a.log");
	rmfile(out, "secret.log");
	rmdir(in);
	rmdir(out);
}

/* Write n bytes to dir/name, gzip's magic first when gz. */
static void
mkbytes(const char *dir, const char *name, size_t n, int gz)
{
	char	 p[256];
	FILE	*f;
	size_t	 i;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	if ((f = fopen(p, "w")) == NULL)
		return;
	for (i = 0; i < n; i++)
		fputc(gz && i == 0 ? 0x1f : gz && i == 1 ? 0x8b : 'a', f);
	fclose(f);
}

/* The EXPAND_* flags of the file named name in r, or -1 when not listed. */
static int
xflags(const struct expand_result *r, const char *name)
{
	size_t	i, n = strlen(name);

	for (i = 0; i < r->npaths; i++)
		if (strlen(r->paths[i]) > n &&
		    strcmp(r->paths[i] + strlen(r->paths[i]) - n, name) == 0 &&
		    r->paths[i][strlen(r->paths[i]) - n - 1] == '/')
			return (int)r->ids[i].flags;
	return -1;
}

/*
 * Files over split_size are looked at for gzip's magic: a big gzip file
 * is flagged (also one reached through a symlink inside the roots), a
 * big plain one, a small gzip one, one that cannot be read and, with
 * no_hardlinks, one of two links are not; with split_size 0 nothing is.
 */
static void
test_expand_gzip(const char *dir)
{
	struct expand_result	 r;
	struct expand_limits	 lim;
	char			 g[128], t[128], pat[160], p[3][256];
	char			*pv[1], *roots[2];
	int			 root = geteuid() == 0;

	snprintf(g, sizeof g, "%s/gz", dir);
	snprintf(t, sizeof t, "%s/gzt", dir);
	if (mkdir(g, 0700) == -1 || mkdir(t, 0700) == -1) {
		ok(0, "expand gzip: set up");
		return;
	}
	mkbytes(g, "big.gz", 101, 1);
	mkbytes(g, "big.log", 101, 0);
	mkbytes(g, "small.gz", 100, 1);
	mkbytes(g, "shut.gz", 101, 1);
	mkbytes(g, "two.gz", 101, 1);
	mkbytes(t, "target.gz", 200, 1);
	snprintf(p[0], sizeof p[0], "%s/shut.gz", g);
	chmod(p[0], 0);
	snprintf(p[0], sizeof p[0], "%s/two.gz", g);
	snprintf(p[1], sizeof p[1], "%s/two", t);
	snprintf(p[2], sizeof p[2], "%s/target.gz", t);
	snprintf(pat, sizeof pat, "%s/link.gz", g);
	if (link(p[0], p[1]) == -1 || symlink(p[2], pat) == -1) {
		ok(0, "expand gzip: links");
		return;
	}
	snprintf(pat, sizeof pat, "%s/*", g);
	pv[0] = pat;
	roots[0] = (char *)(uintptr_t)dir;
	roots[1] = NULL;
	lim = *xlim(10);
	lim.split_size = 100;
	ok(expand_patterns(pv, 1, roots, &lim, &r) == 0 && r.npaths == 6 &&
	    xflags(&r, "big.gz") == EXPAND_GZIP &&
	    xflags(&r, "link.gz") == EXPAND_GZIP &&
	    xflags(&r, "two.gz") == EXPAND_GZIP &&
	    xflags(&r, "big.log") == 0 && xflags(&r, "small.gz") == 0,
	    "expand gzip: over split_size 100, gzip flagged (through a "
	    "symlink too), plain and 100 bytes not");
	if (root)
		diag("as root every file opens: the unreadable one is not "
		    "tested");
	else
		ok(xflags(&r, "shut.gz") == 0, "expand gzip: a file that "
		    "cannot be opened is listed, not flagged");
	expand_result_clear(&r);
	lim.no_hardlinks = 1;
	ok(expand_patterns(pv, 1, roots, &lim, &r) == 0 && r.npaths == 6 &&
	    xflags(&r, "big.gz") == EXPAND_GZIP && xflags(&r, "two.gz") == 0,
	    "expand gzip: with no_hardlinks, a file of two links not opened");
	expand_result_clear(&r);
	lim.no_hardlinks = 0;
	lim.split_size = 0;
	ok(expand_patterns(pv, 1, roots, &lim, &r) == 0 && r.npaths == 6 &&
	    xflags(&r, "big.gz") == 0 && xflags(&r, "link.gz") == 0,
	    "expand gzip: split_size 0, nothing flagged");
	expand_result_clear(&r);
	snprintf(pat, sizeof pat, "%s/link.gz", g);
	unlink(pat);
	unlink(p[1]);
	rmfile(g, "big.gz");
	rmfile(g, "big.log");
	rmfile(g, "small.gz");
	rmfile(g, "shut.gz");
	rmfile(g, "two.gz");
	rmfile(t, "target.gz");
	rmdir(g);
	rmdir(t);
}

/* expand.c on its own: braces, order, repeats, unmatched, the cap. */
static void
test_expand(const char *dir)
{
	struct expand_result	 r;
	char			 p[4][128];
	char			*pv[4];
	size_t			 i;

	for (i = 0; i < 5; i++)
		mkfile(dir, xfiles[i]);
	snprintf(p[0], sizeof p[0], "%s/x{5,1,3}", dir);
	snprintf(p[1], sizeof p[1], "%s/x[13]", dir);
	snprintf(p[2], sizeof p[2], "%s/nothing{a,b}", dir);
	snprintf(p[3], sizeof p[3], "%s/x*", dir);
	for (i = 0; i < 4; i++)
		pv[i] = p[i];

	ok(expand_patterns(pv, 3, NULL, xlim(10), &r) == 0 && r.npaths == 3 &&
	    strcmp(r.paths[0] + strlen(dir), "/x1") == 0 &&
	    strcmp(r.paths[1] + strlen(dir), "/x3") == 0 &&
	    strcmp(r.paths[2] + strlen(dir), "/x5") == 0,
	    "expand: braces and a class, sorted, each path once");
	ok(r.nunmatched == 1 && r.unmatched[0] == 2,
	    "expand: the pattern matching nothing is listed by index");
	expand_result_clear(&r);
	ok(expand_patterns(pv, 4, NULL, xlim(2), &r) == 0 && r.npaths == 3 &&
	    strcmp(r.paths[2] + strlen(dir), "/x5") == 0,
	    "expand: over files_max 2, exactly 3 paths come back");
	expand_result_clear(&r);
	pv[1] = p[0];
	pv[2] = p[0];
	ok(expand_patterns(pv, 3, NULL, xlim(3), &r) == 0 && r.npaths == 3,
	    "expand: 9 paths, 3 distinct: within files_max 3");
	expand_result_clear(&r);
	test_expand_roots(dir);
	test_expand_gzip(dir);
}

/* A file list from a worker, made by hand. */
struct badlist {
	const char	*name;
	const char	*paths[6];	/* relative to the test dir unless '!' */
	uint32_t	 unmatched[2];
	size_t		 nunmatched;
};

static const struct badlist badlists[] = {
	{ "unsorted", { "/x2", "/x1", NULL }, { 0 }, 0 },
	{ "a path twice", { "/x1", "/x1", NULL }, { 0 }, 0 },
	{ "a relative path", { "!x1", NULL }, { 0 }, 0 },
	{ "an empty path", { "!", NULL }, { 0 }, 0 },
	{ "more than files_max + 1 paths",
	    { "/x1", "/x2", "/x3", "/x4", "/x5", NULL }, { 0 }, 0 },
	{ "an unmatched index past the patterns", { NULL }, { 2 }, 1 },
	{ "unmatched indexes out of order", { NULL }, { 1, 0 }, 2 },
};

/* Encode and decode a hand-made list into x; its buffer, to free. */
static uint8_t *
badlist_msg(const char *dir, const struct badlist *b, uint64_t id,
    struct proto_expanded *x)
{
	struct proto_hdr	 h;
	char			 paths[6][128];
	char			*pv[6];
	struct expand_id	 ids[6];
	uint8_t			*out;
	size_t			 n, len;

	for (n = 0; b->paths[n] != NULL; n++) {
		if (b->paths[n][0] == '!')
			snprintf(paths[n], sizeof paths[n], "%s", b->paths[n] + 1);
		else
			snprintf(paths[n], sizeof paths[n], "%s%s", dir,
			    b->paths[n]);
		pv[n] = paths[n];
	}
	memset(ids, 0, sizeof ids);
	if ((out = proto_expanded_encode(id, pv, ids, n, b->unmatched,
	    b->nunmatched, 0, NULL, &len)) == NULL)
		return NULL;
	memcpy(&h, out, sizeof h);
	if (proto_expanded_decode(out + sizeof h, h.len, x) == -1) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * The submit's expansion: malformed lists refused and retried, a worker
 * lost twice, files_max, an error from the worker, expansions before file
 * tasks, a submitter gone, and a shutdown with expansions in flight.
 */
static void
test_expansion(const char *dir, struct config *cfg)
{
	struct proto_expanded	 x;
	struct jq_error		 err;
	struct task		*t, *t2;
	struct job		*held;
	const struct job	*jl, *last;
	struct jq_info		 info;
	struct jq_stats		 st;
	json_t			*req;
	uint8_t			*buf;
	char			 p0[128], p1[128];
	size_t			 i, files, lastfiles = 0;
	int64_t			 id;

	snprintf(p0, sizeof p0, "%s/x*", dir);
	snprintf(p1, sizeof p1, "%s/nothing", dir);
	req = json_pack("{s:s,s:[s,s]}", "op", "submit", "patterns", p0, p1);
	cfg->files_max = 3;
	rmfile(dir, "x4");
	rmfile(dir, "x5");

	for (i = 0; i < sizeof badlists / sizeof badlists[0]; i++) {
		memset(&sub, 0, sizeof sub);
		if (!ok(submit_json(req, 0, submitted, NULL, &err) != NULL,
		    "%s: submit queued", badlists[i].name))
			continue;
		t = jobqueue_next_task();
		buf = badlist_msg(dir, &badlists[i], 1, &x);
		ok(t != NULL && buf != NULL && jobqueue_task_expanded(t, &x) == -1 &&
		    sub.called == 0, "%s: list refused, nobody told", badlists[i].name);
		free(buf);
		jobqueue_task_lost(t, "killed by signal 9");
		t2 = jobqueue_next_task();
		ok(t2 == t && sub.called == 0, "%s: the expansion is handed out "
		    "again", badlists[i].name);
		if (t2 != t)
			continue;
		ok(play_expand(t2, 2, &buf, &x) == 0 &&
		    jobqueue_task_expanded(t2, &x) == 0 && sub.called == 1 &&
		    sub.id > 0 && sub.files == 3, "%s: the retry's list makes "
		    "the job", badlists[i].name);
		free(buf);
		/* (its file tasks stay pending: cancel them) */
		(void)jobqueue_cancel(sub.id, 0, 0, &err);
	}

	/* Lost twice: the submit fails with internal, naming why. */
	memset(&sub, 0, sizeof sub);
	(void)submit_json(req, 0, submitted, NULL, &err);
	t = jobqueue_next_task();
	jobqueue_task_lost(t, "killed by signal 9");
	t2 = jobqueue_next_task();
	jobqueue_task_lost(t2, "killed by signal 9");
	ok(t2 == t && sub.called == 1 && sub.id == -1 &&
	    strcmp(sub.code, "internal") == 0 && strcmp(sub.message,
	    "expanding patterns: worker killed by signal 9 (twice)") == 0,
	    "expansion lost twice: internal error naming why (%s)", sub.message);
	ok(jobqueue_active() == 0, "expansion lost twice: no job left active");

	/*
	 * The expansion cannot be sent, twice, in the first kick: the
	 * submitter must hold the job before that kick, which frees it.
	 */
	memset(&sub, 0, sizeof sub);
	kicks = 0;
	kick_fails = 2;
	held = submit_json(req, 0, submitted_held, &held, &err);
	ok(held != NULL && kicks == 0 && sub.called == 0,
	    "submit: the job is returned before any kick (%d)", kicks);
	pool_kick();
	ok(held == NULL && sub.called == 1 && sub.id == -1 &&
	    strcmp(sub.code, "internal") == 0 && strstr(sub.message,
	    "could not be sent") != NULL,
	    "expansion not sent twice: the submitter told once (%s)",
	    sub.message);
	jobqueue_submit_forget(held);
	ok(kick_fails == 0 && jobqueue_active() == 0,
	    "expansion not sent twice: no job left active");
	kick_fails = 0;

	/* files_max: the worker's files_max + 1 paths mean limit. */
	cfg->files_max = 2;
	ok(submit_now(req, &files) == -1 && sub.called == 1 &&
	    strcmp(sub.code, "limit") == 0, "3 files over files_max 2: limit");
	cfg->files_max = 3;

	/* An error from the worker: internal, with its text. */
	memset(&sub, 0, sizeof sub);
	(void)submit_json(req, 0, submitted, NULL, &err);
	t = jobqueue_next_task();
	buf = proto_expanded_encode(3, NULL, NULL, 0, NULL, 0, 0, "out of memory "
	    "expanding patterns", &files);
	if (buf != NULL)
		(void)proto_expanded_decode(buf + sizeof(struct proto_hdr),
		    files - sizeof(struct proto_hdr), &x);
	ok(buf != NULL && jobqueue_task_expanded(t, &x) == 0 &&
	    sub.called == 1 && strcmp(sub.code, "internal") == 0 &&
	    strstr(sub.message, "out of memory") != NULL,
	    "the worker's error fails the submit: %s", sub.message);
	free(buf);

	/* Expansions go ahead of pending file tasks. */
	id = submit_now(req, &files);
	ok(id > 0 && files == 3, "job with 3 pending files made");
	memset(&sub, 0, sizeof sub);
	(void)submit_json(req, 0, submitted, NULL, &err);
	t = jobqueue_next_task();
	ok(t != NULL && jobqueue_task_kind(t) == JQ_TASK_EXPAND &&
	    jobqueue_task_job(t) == 0 && jobqueue_task_path(t) == NULL,
	    "the new submit's expansion comes before the files");

	/* The submitter goes away: the job is made all the same. */
	memset(&sub, 0, sizeof sub);
	jobqueue_submit_forget(submit_json(req, 0, submitted, NULL, &err));
	t2 = jobqueue_next_task();
	if (play_expand(t2, 9, &buf, &x) == 0)
		(void)jobqueue_task_expanded(t2, &x);
	free(buf);
	for (jl = NULL, last = NULL; (jl = jobqueue_list(0, jl, &info)) !=
	    NULL; last = jl)
		lastfiles = info.files_total;
	ok(sub.called == 0 && last != NULL && lastfiles == 3,
	    "submitter gone: the job is made, nobody called");

	/* Shutdown: both submits told shutting_down (t still on a worker). */
	memset(&sub, 0, sizeof sub);
	(void)submit_json(req, 0, submitted, NULL, &err);
	jobqueue_shutdown();
	ok(sub.called == 2 && strcmp(sub.code, "shutting_down") == 0,
	    "shutdown: both submits expanding get shutting_down");
	ok(submit_json(req, 0, submitted, NULL, &err) == NULL &&
	    err.code == ERRC_SHUTTING_DOWN,
	    "shutdown: a new submit is refused");
	/* The worker running the first expansion is stopped. */
	jobqueue_task_lost(t, "killed by signal 15");
	jobqueue_stats(&st);
	ok(st.jobs_expanding == 0 && sub.called == 2,
	    "shutdown: the lost expansion is dropped, not retried");
	json_decref(req);
	(void)id;
}

/* The counts and totals of a job whose one file was counted once. */
static int
counted_once(json_t *res, const json_t *want)
{
	json_t	*tot = json_object_get(res, "totals");

	return res != NULL && json_equal(json_object_get(res, "counts"), want) &&
	    json_integer_value(json_object_get(tot, "failed")) == 0 &&
	    json_integer_value(json_object_get(tot, "counted")) == 5 &&
	    json_array_size(json_object_get(res, "files")) == 1;
}

/*
 * A damaged partial: the final merge refuses it, naming it; its file is
 * read again and counted exactly once. Damaged twice, the file is failed.
 */
static void
test_damaged(const json_t *req, const json_t *want)
{
	struct task	*t;
	json_t		*res;
	size_t		 i, files;
	uint64_t	 run;
	int64_t		 id;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		id = submit_now(req, &files);
		if (!ok(id > 0 && files == 1, "%s: job submitted", cases[i].name))
			continue;
		t = jobqueue_next_task();
		run = play_map(t, 0, "");
		damage(run, cases[i].how);
		t = jobqueue_next_task();
		ok(t != NULL && jobqueue_task_kind(t) == JQ_TASK_MERGE &&
		    play_merge(t) == 0, "%s: the merge answers", cases[i].name);
		res = result_json(id);
		ok(res == NULL, "%s: the job is not finished by it",
		    cases[i].name);
		json_decref(res);
		t = jobqueue_next_task();
		ok(t != NULL && jobqueue_task_kind(t) == JQ_TASK_MAP,
		    "%s: the file is read again", cases[i].name);
		(void)play_map(t, 0, "");
		(void)play_merges();
		res = result_json(id);
		if (!ok(counted_once(res, want), "%s: counts exact, the file "
		    "counted once", cases[i].name) && res != NULL) {
			char *txt = json_dumps(res, JSON_COMPACT);

			diag("%s", txt != NULL ? txt : "?");
			free(txt);
		}
		json_decref(res);
	}

	/* Damaged again after the second reading: failed, nothing counted. */
	id = submit_now(req, &files);
	t = jobqueue_next_task();
	damage(play_map(t, 0, ""), FLIP_KEY);
	(void)play_merges();
	t = jobqueue_next_task();
	damage(play_map(t, 0, ""), CUT_HALF);
	(void)play_merges();
	res = result_json(id);
	ok(res != NULL && json_object_size(json_object_get(res, "counts")) == 0 &&
	    json_integer_value(json_object_get(json_object_get(res, "totals"),
	    "failed")) == 1, "damaged twice: the file is failed, not counted");
	json_decref(res);
}

/* A merge whose worker dies is run again; nothing is counted twice. */
static void
test_merge_lost(const json_t *req, const json_t *want)
{
	struct task	*t, *t2;
	json_t		*res;
	size_t		 files;
	int64_t		 id;

	id = submit_now(req, &files);
	(void)play_map(jobqueue_next_task(), 0, "");
	t = jobqueue_next_task();
	ok(t != NULL && jobqueue_task_kind(t) == JQ_TASK_MERGE,
	    "merge lost: a merge is handed out");
	if (t == NULL)
		return;
	jobqueue_task_lost(t, "killed by signal 9");
	t2 = jobqueue_next_task();
	ok(t2 == t, "merge lost: the merge is handed out again");
	ok(play_merge(t2) == 0, "merge lost: the retry's answer is taken");
	res = result_json(id);
	ok(counted_once(res, want), "merge lost: counts exact, counted once");
	json_decref(res);

	/* Lost twice: the job fails with why, it does not hang. */
	id = submit_now(req, &files);
	(void)play_map(jobqueue_next_task(), 0, "");
	t = jobqueue_next_task();
	jobqueue_task_lost(t, "killed by signal 9");
	t = jobqueue_next_task();
	jobqueue_task_lost(t, "killed by signal 9");
	res = result_json(id);
	ok(res != NULL && json_is_false(json_object_get(res, "ok")) &&
	    strstr(json_string_value(json_object_get(json_object_get(res,
	    "error"), "message")), "merging: worker killed") != NULL,
	    "merge lost twice: the job fails, saying why");
	json_decref(res);
}

/*
 * Many files merge as a tree, a merge for every few partials while files
 * are read; the result counts each file once.
 */
static void
test_tree(const char *dir)
{
	struct task	*t;
	json_t		*req, *res, *want;
	char		 pat[PATH_MAX], name[32];
	size_t		 i, files, nfiles = 70, maps = 0, merges = 0;
	int64_t		 id;

	for (i = 0; i < nfiles; i++) {
		snprintf(name, sizeof name, "tree%03zu", i);
		mkfile(dir, name);
	}
	snprintf(pat, sizeof pat, "%s/tree*", dir);
	req = json_pack("{s:s,s:[s]}", "op", "submit", "patterns", pat);
	id = submit_now(req, &files);
	ok(id > 0 && files == nfiles, "tree: %zu files", nfiles);
	while ((t = jobqueue_next_task()) != NULL) {
		if (jobqueue_task_kind(t) == JQ_TASK_MAP) {
			(void)play_map(t, 0, "");
			maps++;
		} else if (play_merge(t) == 0)
			merges++;
		else
			break;
	}
	res = result_json(id);
	want = json_pack("{s:I,s:I}", "/a", (json_int_t)(3 * nfiles), "/b",
	    (json_int_t)(2 * nfiles));
	ok(res != NULL && json_equal(json_object_get(res, "counts"), want) &&
	    json_array_size(json_object_get(res, "files")) == nfiles,
	    "tree: counts of every file, each once");
	ok(maps == nfiles && merges > 2, "tree: %zu maps, %zu merges", maps,
	    merges);
	json_decref(res);
	json_decref(want);
	json_decref(req);
	for (i = 0; i < nfiles; i++) {
		snprintf(name, sizeof name, "tree%03zu", i);
		rmfile(dir, name);
	}
}

/* The number of jobs uid may list, and whether id is one. */
static size_t
list_has(uid_t uid, int64_t id, int *found)
{
	const struct job	*j = NULL;
	struct jq_info		 info;
	size_t			 n = 0;

	*found = 0;
	while ((j = jobqueue_list(uid, j, &info)) != NULL) {
		if (info.id == id)
			*found = 1;
		n++;
	}
	return n;
}

/*
 * Users: files are handed out round the users first, then round each
 * user's jobs; a job is seen and cancelled only by its uid and root,
 * anyone else's answering exactly as a job that does not exist;
 * jobs_per_user bounds one uid's active jobs.
 */
static void
test_users(const char *dir, struct config *cfg)
{
	struct task	*t[8];
	struct jq_error	 err, err2;
	struct jq_info	 info;
	json_t		*reqa, *reqc;
	char		 pa[PATH_MAX], pc[PATH_MAX], name[32];
	size_t		 i, files, nc = 0, sz;
	int64_t		 a, b, c, jobs[8];
	int		 found, alternate = 1, both = 0;

	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof name, "userA%zu", i);
		mkfile(dir, name);
	}
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "userC%zu", i);
		mkfile(dir, name);
	}
	snprintf(pa, sizeof pa, "%s/userA*", dir);
	snprintf(pc, sizeof pc, "%s/userC*", dir);
	reqa = json_pack("{s:s,s:[s]}", "op", "submit", "patterns", pa);
	reqc = json_pack("{s:s,s:[s]}", "op", "submit", "patterns", pc);
	/* uid 1000: two big jobs, then uid 1001: a small one. */
	a = submit_as(reqa, 1000, &files);
	b = submit_as(reqa, 1000, &files);
	c = submit_as(reqc, 1001, &files);
	ok(a > 0 && b > 0 && c > 0, "users: three jobs made");
	for (i = 0; i < 6; i++) {
		t[i] = jobqueue_next_task();
		jobs[i] = t[i] != NULL ? jobqueue_task_job(t[i]) : 0;
		if (jobs[i] == c)
			nc++;
		/* uid 1000 and 1001 take turns while both have files */
		if (i < 4 && (i % 2 == 0) != (jobs[i] != c))
			alternate = 0;
	}
	ok(alternate && nc == 2, "users: the small job's 2 files go 2nd and "
	    "4th, not after the other user's 12");
	both = (jobs[0] == a || jobs[2] == a) && (jobs[0] == b || jobs[2] == b);
	ok(both, "users: within a user, its jobs take turns");

	/* Ownership. */
	ok(jobqueue_info(a, 1001, &info, &err) == -1 &&
	    jobqueue_info(INT64_MAX / 2, 1001, &info, &err2) == -1 &&
	    err.code == ERRC_NOT_FOUND &&
	    strncmp(err.message, "no job ", 7) == 0 &&
	    err2.code == ERRC_NOT_FOUND,
	    "users: another uid's job is not_found, as a job that is not there");
	ok(jobqueue_cancel(a, 1001, 4242, &err) == -1 &&
	    err.code == ERRC_NOT_FOUND,
	    "users: another uid cannot cancel it");
	ok(jobqueue_wait(a, 1001, 0, NULL, NULL, &err) == NULL &&
	    err.code == ERRC_NOT_FOUND &&
	    jobqueue_result(a, 1001, NULL, &err) == -1 &&
	    err.code == ERRC_NOT_FOUND,
	    "users: nor wait for it, nor read its result");
	ok(jobqueue_info(a, 1000, &info, &err) == 0 && info.id == a,
	    "users: its own uid sees it");
	ok(jobqueue_info(c, 0, &info, &err) == 0 && info.id == c,
	    "users: root sees anyone's");
	sz = list_has(1001, c, &found);
	ok(sz == 1 && found, "users: uid 1001 lists its one job only");
	sz = list_has(0, a, &found);
	ok(sz >= 3 && found, "users: root lists them all");

	/* jobs_per_user: uid 1000 has 2 active, uid 1001 may still submit. */
	cfg->jobs_per_user = 2;
	memset(&err, 0, sizeof err);
	ok(submit_json(reqa, 1000, submitted, NULL, &err) == NULL &&
	    err.code == ERRC_LIMIT &&
	    strstr(err.message, "jobs_per_user") != NULL,
	    "users: a third job of uid 1000 over jobs_per_user 2 -> limit");
	cfg->jobs_per_user = 64;

	/* Cancelled: the tasks handed out come back as their workers die. */
	(void)jobqueue_cancel(a, 1000, 1, &err);
	(void)jobqueue_cancel(b, 0, 1, &err);
	(void)jobqueue_cancel(c, 1001, 1, &err);
	for (i = 0; i < 6; i++)
		if (t[i] != NULL)
			jobqueue_task_lost(t[i], "killed by signal 9");
	json_decref(reqa);
	json_decref(reqc);
	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof name, "userA%zu", i);
		rmfile(dir, name);
	}
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof name, "userC%zu", i);
		rmfile(dir, name);
	}
}

int
main(void)
{
	/* (the supervisor's: results are made by reply.c) */
	static const struct jobqueue_hooks hooks = { NULL, reply_result_head,
	    reply_result_text };
	struct config		 cfg;
	json_t			*req, *want;
	size_t			 i;
	char			 dir[] = "/tmp/clfd-test-jq-XXXXXX", path[64];
	FILE			*f;
	DIR			*d;
	struct dirent		*e;

	log_init("test_jobqueue", 0);
	if (mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof path, "%s/access.log", dir);
	snprintf(spool, sizeof spool, "%s/spool", dir);
	if (mkdir(spool, 0700) == -1 || (f = fopen(path, "w")) == NULL)
		return 99;
	fputs("one line is enough: the results are made here\n", f);
	fclose(f);
	config_defaults(&cfg);
	test_cfg = &cfg;
	jobqueue_init(&cfg, spool);
	jobqueue_set_hooks(&hooks);

	want = json_pack("{s:i,s:i}", "/a", 3, "/b", 2);
	req = json_pack("{s:s,s:[s]}", "op", "submit", "patterns", path);
	test_damaged(req, want);
	test_merge_lost(req, want);
	test_flags(req);
	test_tree(dir);
	test_users(dir, &cfg);
	json_decref(req);
	json_decref(want);

	test_expand(dir);
	test_expansion(dir, &cfg);
	jobqueue_free();
	for (i = 0; i < sizeof xfiles / sizeof xfiles[0]; i++)
		rmfile(dir, xfiles[i]);
	/* Freed jobs take their files with them: the spool is empty. */
	if ((d = opendir(spool)) != NULL) {
		size_t left = 0;

		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.') {
				left++;
				diag("left: %s", e->d_name);
			}
		closedir(d);
		ok(left == 0, "the spool is left empty (%zu files)", left);
	}
	rmdir(spool);
	config_free(&cfg);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
