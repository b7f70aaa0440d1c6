/*
 * test_jobqueue.c: how the job queue takes a worker's result (jobqueue.c),
 * as a table of malformed counts buffers.
 *
 * A result whose counts do not add up must leave the job's counts alone
 * and be refused, so that the supervisor kills the worker and the task is
 * retried; the retried task's good result must then be counted exactly
 * once. The supervisor's side is played here by the two functions the
 * job queue calls back.
 */
#include "../../src/config.h"	/* (the build's config.h has the name) */
#include "counts.h"
#include "jobqueue.h"
#include "log.h"
#include "proto.h"
#include "supervisor.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

/* The supervisor's part: no workers here, the test hands out tasks. */
void
supervisor_kick(void)
{
}

void
supervisor_cancel_job(int64_t job)
{
	(void)job;
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
		id = jobqueue_submit(req, 0, 0, &files, &err);
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

	json_decref(req);
	json_decref(want);
	free(good);
	jobqueue_free();
	config_free(&cfg);
	event_base_free(base);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
