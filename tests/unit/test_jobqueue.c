/*
 * test_jobqueue.c: how the job queue takes a worker's answers
 * (jobqueue.c, expand.c), as tables of malformed messages.
 *
 * A submit is answered once a worker has expanded its patterns: the test
 * plays that worker through the real messages. A file list that does not
 * add up (unsorted, too long, a relative path, a bad pattern index) must
 * be refused so that the supervisor kills the worker and the expansion
 * is retried; twice lost, the submit fails. A result whose counts do not
 * add up must leave the job's counts alone and be refused; the retried
 * task's good result must then be counted exactly once. The supervisor's
 * side is played here by the two functions the job queue calls back.
 */
#include "../../src/config.h"	/* (the build's config.h has the name) */
#include "counts.h"
#include "expand.h"
#include "jobqueue.h"
#include "log.h"
#include "proto.h"
#include "supervisor.h"
#include "tap.h"

#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

/*
 * The supervisor's part: no workers here, the test hands out tasks. A
 * kick counts itself and, while kick_fails says so, fails to send the
 * tasks it takes, as the supervisor's hand-over does when a message
 * cannot be queued (too large, out of memory).
 */
static int	kicks, kick_fails;

void
supervisor_kick(void)
{
	struct task	*t;

	kicks++;
	while (kick_fails > 0 && (t = jobqueue_next_task()) != NULL) {
		kick_fails--;
		jobqueue_task_lost(t, "could not be sent the task");
	}
}

void
supervisor_cancel_job(int64_t job)
{
	(void)job;
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

enum damage { CUT_LAST, BAD_MAGIC, TOO_MANY, TRAILING, KEY_TOO_LONG };

static const struct {
	const char	*name;
	enum damage	 how;
} cases[] = {
	{ "last byte cut (first entry already decoded)", CUT_LAST },
	{ "wrong magic", BAD_MAGIC },
	{ "more entries than the buffer holds", TOO_MANY },
	{ "a byte past the last entry", TRAILING },
	{ "a key length past the end", KEY_TOO_LONG },
};

/* A damaged copy of the good buffer; *lenp is its length. */
static uint8_t *
damage(const uint8_t *good, size_t len, enum damage how, size_t *lenp)
{
	uint8_t	*b;

	*lenp = 0;
	if ((b = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(b, good, len);
	*lenp = len;
	switch (how) {
	case CUT_LAST:
		*lenp = len - 1;
		break;
	case BAD_MAGIC:
		b[0] ^= 0xff;
		break;
	case TOO_MANY:
		b[4] = 0x7f;		/* the entry count, little end first */
		break;
	case TRAILING:
		b[len] = 0;
		*lenp = len + 1;
		break;
	case KEY_TOO_LONG:
		memset(b + 12, 0xff, 4);	/* first entry's key length */
		break;
	}
	return b;
}

static void
result_of(uint64_t task, const uint8_t *counts, size_t len,
    struct proto_result *r)
{
	memset(r, 0, sizeof *r);
	r->f.task = task;
	r->f.lines = r->f.matched = r->f.counted = 5;
	r->f.counts_len = (uint32_t)len;
	r->counts = counts;
	r->error = "";
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
	snprintf(sub.code, sizeof sub.code, "%s", err != NULL ? err->code : "");
	snprintf(sub.message, sizeof sub.message, "%s", err != NULL ?
	    err->message : "");
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
	uint8_t			*msg, *out;
	size_t			 len, olen;
	int			 rc = -1;

	*bufp = NULL;
	if (t == NULL || !jobqueue_task_expands(t) ||
	    (msg = jobqueue_task_message(t, id, &len)) == NULL)
		return -1;
	memcpy(&h, msg, sizeof h);
	if (h.type != PROTO_EXPAND || proto_hdr_check(&h) == -1 ||
	    proto_expand_decode(msg + sizeof h, h.len, &pe) == -1) {
		free(msg);
		return -1;
	}
	free(msg);
	(void)expand_patterns(pe.patterns, pe.npatterns, pe.roots,
	    xlim((size_t)pe.files_max), &r);
	out = proto_expanded_encode(pe.task, r.paths, r.npaths, r.unmatched,
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

/* Submit and play the worker: the job id, or -1 (sub says why). */
static int64_t
submit_now(const json_t *req, size_t *files)
{
	struct proto_expanded	 x;
	struct jq_error		 err;
	struct task		*t;
	uint8_t			*buf;

	memset(&sub, 0, sizeof sub);
	if (jobqueue_submit(req, 0, 0, submitted, NULL, &err) == NULL) {
		snprintf(sub.code, sizeof sub.code, "%s", err.code);
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
	{ "failed, with its error", PROTO_F_FAILED, "Permission denied", 1, 0 },
	{ "failed, no error text", PROTO_F_FAILED, "", 1, 0 },
	{ "failed and partial", PROTO_F_FAILED | PROTO_F_PARTIAL, "gzip: bad", 1,
	    0 },
	{ "partial, with its error", PROTO_F_PARTIAL, "gzip: truncated", 0, 1 },
	{ "an error text, no flag", 0, "a note", 0, 0 },
	{ "clean", 0, "", 0, 0 },
};

static void
test_flags(const json_t *req)
{
	struct proto_result	 r;
	struct jq_error		 err;
	struct task		*t;
	json_t			*res, *tot, *file;
	json_error_t		 jerr;
	const char		*text;
	size_t			 i, files, len;
	int64_t			 id;

	for (i = 0; i < sizeof flag_cases / sizeof flag_cases[0]; i++) {
		if ((id = submit_now(req, &files)) <= 0 ||
		    (t = jobqueue_next_task()) == NULL) {
			ok(0, "%s: job made", flag_cases[i].name);
			continue;
		}
		result_of(1, NULL, 0, &r);
		r.f.flags = flag_cases[i].flags;
		r.error = flag_cases[i].error;
		r.f.error_len = (uint32_t)strlen(r.error);
		(void)jobqueue_task_done(t, &r);
		text = jobqueue_result(id, &len, &err);
		res = text != NULL ? json_loadb(text, len, 0, &jerr) : NULL;
		tot = json_object_get(res, "totals");
		file = json_array_get(json_object_get(res, "files"), 0);
		ok(json_integer_value(json_object_get(tot, "failed")) ==
		    flag_cases[i].failed && json_integer_value(json_object_get(
		    tot, "partial")) == flag_cases[i].partial &&
		    json_is_true(json_object_get(file, "partial")) ==
		    (flag_cases[i].partial && !flag_cases[i].failed),
		    "%s: %d failed, %d partial", flag_cases[i].name,
		    flag_cases[i].failed, flag_cases[i].partial);
		if (res == NULL)
			diag("no result: %s", text != NULL ? text : err.code);
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
	if ((out = proto_expanded_encode(id, pv, n, b->unmatched,
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
	json_t			*req, *l;
	uint8_t			*buf;
	char			 p0[128], p1[128];
	size_t			 i, files;
	int64_t			 id;

	snprintf(p0, sizeof p0, "%s/x*", dir);
	snprintf(p1, sizeof p1, "%s/nothing", dir);
	req = json_pack("{s:s,s:[s,s]}", "op", "submit", "patterns", p0, p1);
	cfg->files_max = 3;
	rmfile(dir, "x4");
	rmfile(dir, "x5");

	for (i = 0; i < sizeof badlists / sizeof badlists[0]; i++) {
		memset(&sub, 0, sizeof sub);
		if (!ok(jobqueue_submit(req, 0, 0, submitted, NULL, &err) != NULL,
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
		json_decref(jobqueue_cancel(sub.id, &err));
	}

	/* Lost twice: the submit fails with internal, naming why. */
	memset(&sub, 0, sizeof sub);
	(void)jobqueue_submit(req, 0, 0, submitted, NULL, &err);
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
	held = jobqueue_submit(req, 0, 0, submitted_held, &held, &err);
	ok(held != NULL && kicks == 0 && sub.called == 0,
	    "submit: the job is returned before any kick (%d)", kicks);
	supervisor_kick();
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
	(void)jobqueue_submit(req, 0, 0, submitted, NULL, &err);
	t = jobqueue_next_task();
	buf = proto_expanded_encode(3, NULL, 0, NULL, 0, 0, "out of memory "
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
	(void)jobqueue_submit(req, 0, 0, submitted, NULL, &err);
	t = jobqueue_next_task();
	ok(t != NULL && jobqueue_task_expands(t) &&
	    jobqueue_task_job(t) == 0 && jobqueue_task_path(t) == NULL,
	    "the new submit's expansion comes before the files");

	/* The submitter goes away: the job is made all the same. */
	memset(&sub, 0, sizeof sub);
	jobqueue_submit_forget(jobqueue_submit(req, 0, 0, submitted, NULL,
	    &err));
	t2 = jobqueue_next_task();
	if (play_expand(t2, 9, &buf, &x) == 0)
		(void)jobqueue_task_expanded(t2, &x);
	free(buf);
	l = jobqueue_list();
	ok(sub.called == 0 && l != NULL && json_array_size(json_object_get(l,
	    "jobs")) > 0 && json_integer_value(json_object_get(json_array_get(
	    json_object_get(l, "jobs"), json_array_size(json_object_get(l,
	    "jobs")) - 1), "files_total")) == 3,
	    "submitter gone: the job is made, nobody called");
	json_decref(l);

	/* Shutdown: both submits told shutting_down (t still on a worker). */
	memset(&sub, 0, sizeof sub);
	(void)jobqueue_submit(req, 0, 0, submitted, NULL, &err);
	jobqueue_shutdown();
	ok(sub.called == 2 && strcmp(sub.code, "shutting_down") == 0,
	    "shutdown: both submits expanding get shutting_down");
	ok(jobqueue_submit(req, 0, 0, submitted, NULL, &err) == NULL &&
	    strcmp(err.code, "shutting_down") == 0,
	    "shutdown: a new submit is refused");
	/* The worker running the first expansion is stopped. */
	jobqueue_task_lost(t, "killed by signal 15");
	l = json_object();
	jobqueue_stats(l);
	ok(json_integer_value(json_object_get(json_object_get(l, "queue"),
	    "jobs_expanding")) == 0 && sub.called == 2,
	    "shutdown: the lost expansion is dropped, not retried");
	json_decref(l);
	json_decref(req);
	(void)id;
}

int
main(void)
{
	struct event_base	*base;
	struct config		 cfg;
	struct counts		*c;
	struct proto_result	 r;
	struct jq_error		 err;
	struct task		*t, *t2;
	json_t			*req, *res, *want;
	json_error_t		 jerr;
	const char		*text;
	uint8_t			*good, *bad;
	size_t			 glen, blen, files, len, i;
	int64_t			 id;
	char			 dir[] = "/tmp/clfd-test-jq-XXXXXX", path[64];
	FILE			*f;

	log_init("test_jobqueue", 0);
	if ((base = event_base_new()) == NULL || mkdtemp(dir) == NULL)
		return 99;
	snprintf(path, sizeof path, "%s/access.log", dir);
	if ((f = fopen(path, "w")) == NULL)
		return 99;
	fputs("one line is enough: the results are made here\n", f);
	fclose(f);
	config_defaults(&cfg);
	jobqueue_init(base, &cfg);

	/* The good result: /a 3 times, /b twice. */
	if ((c = counts_new()) == NULL || counts_add(c, "/a", 2, 3) == -1 ||
	    counts_add(c, "/b", 2, 2) == -1 ||
	    (good = counts_encode(c, &glen)) == NULL)
		return 99;
	counts_free(c);
	want = json_pack("{s:i,s:i}", "/a", 3, "/b", 2);
	req = json_pack("{s:s,s:[s]}", "op", "submit", "patterns", path);

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		id = submit_now(req, &files);
		if (!ok(id > 0 && files == 1, "%s: job submitted", cases[i].name))
			continue;
		t = jobqueue_next_task();
		bad = damage(good, glen, cases[i].how, &blen);
		result_of(1, bad, blen, &r);
		ok(t != NULL && jobqueue_task_done(t, &r) == -1,
		    "%s: result refused", cases[i].name);
		free(bad);
		ok(jobqueue_result(id, &len, &err) == NULL &&
		    strcmp(err.code, "not_finished") == 0,
		    "%s: the job is not finished by it", cases[i].name);
		if (t == NULL)
			continue;

		/* The supervisor kills the worker: the task is lost, retried. */
		jobqueue_task_lost(t, "killed by signal 9");
		t2 = jobqueue_next_task();
		ok(t2 == t, "%s: the task is handed out again", cases[i].name);
		if (t2 == NULL)
			continue;
		result_of(2, good, glen, &r);
		ok(jobqueue_task_done(t2, &r) == 0, "%s: the retry's result "
		    "is taken", cases[i].name);
		text = jobqueue_result(id, &len, &err);
		res = text != NULL ? json_loadb(text, len, 0, &jerr) : NULL;
		ok(res != NULL && json_equal(json_object_get(res, "counts"),
		    want), "%s: counts exact, nothing of the bad result in them",
		    cases[i].name);
		if (res != NULL && !json_equal(json_object_get(res, "counts"),
		    want))
			diag("%s", text);
		ok(res != NULL && json_integer_value(json_object_get(
		    json_object_get(res, "totals"), "failed")) == 0 &&
		    json_integer_value(json_object_get(json_object_get(res,
		    "totals"), "counted")) == 5,
		    "%s: the file counted once, not failed", cases[i].name);
		json_decref(res);
	}

	test_flags(req);
	json_decref(req);
	json_decref(want);
	free(good);

	test_expand(dir);
	test_expansion(dir, &cfg);
	jobqueue_free();
	for (i = 0; i < sizeof xfiles / sizeof xfiles[0]; i++)
		rmfile(dir, xfiles[i]);
	config_free(&cfg);
	event_base_free(base);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
