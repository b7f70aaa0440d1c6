/*
 * test_proto.c: the supervisor <-> worker messages (proto.c) and the
 * default socket path (paths.c), as tables of cases.
 *
 * Every message must round-trip, and every truncated, extended or
 * corrupted length must be refused rather than read past its end.
 */
#include "paths.h"
#include "proto.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char	*path, *format, *filter;
	const char	*roots[4];
} task_cases[] = {
	{ "/var/log/a.log", "default", "{}", { "/", NULL } },
	{ "/x", "%h %l %u %t \"%r\" %>s %b", "{\"under\":\"/book\"}", { NULL } },
	{ "/with space/f.gz", "regex:(?<request>.*)", "{\"status\":[\"2xx\"]}",
	    { "/var/log", "/srv/logs", "/tmp", NULL } },
	{ "", "", "", { "", NULL } },
};

/* Round trip, then every truncation and a few corruptions of each task. */
static void
test_tasks(void)
{
	struct proto_task	 t, d;
	struct proto_hdr	 h;
	uint8_t			*msg, *bad;
	size_t			 len, i, cut, n;
	int			 r, refused;

	for (i = 0; i < sizeof task_cases / sizeof task_cases[0]; i++) {
		memset(&t, 0, sizeof t);
		t.task = 1000 + i;
		t.line_max = 4096;
		t.path = task_cases[i].path;
		t.format = task_cases[i].format;
		t.filter = task_cases[i].filter;
		t.roots = task_cases[i].roots[0] != NULL ?
		    (char **)(uintptr_t)task_cases[i].roots : NULL;
		msg = proto_task_encode(&t, &len);
		if (!ok(msg != NULL, "task %zu: encoded", i))
			continue;
		memcpy(&h, msg, sizeof h);
		ok(h.type == PROTO_TASK && h.len == len - sizeof h,
		    "task %zu: header type and length", i);
		r = proto_task_decode(msg + sizeof h, h.len, &d);
		ok(r == 0 && d.task == t.task && d.line_max == 4096 &&
		    strcmp(d.path, t.path) == 0 && strcmp(d.format, t.format) == 0 &&
		    strcmp(d.filter, t.filter) == 0, "task %zu: round trip", i);
		for (n = 0; t.roots != NULL && t.roots[n] != NULL; n++)
			if (d.roots == NULL || d.roots[n] == NULL ||
			    strcmp(d.roots[n], t.roots[n]) != 0)
				break;
		ok(r == 0 && (t.roots == NULL ? d.roots == NULL :
		    d.roots != NULL && t.roots[n] == NULL && d.roots[n] == NULL),
		    "task %zu: roots round trip", i);
		if (r == 0)
			proto_task_clear(&d);

		refused = 1;
		for (cut = 0; cut < h.len; cut++) {
			/* Copy so that ASan sees any read past the end. */
			if ((bad = malloc(cut + 1)) == NULL)
				break;
			memcpy(bad, msg + sizeof h, cut);
			if (proto_task_decode(bad, cut, &d) == 0) {
				refused = 0;
				proto_task_clear(&d);
			}
			free(bad);
		}
		if (!ok(refused, "task %zu: every truncation refused", i))
			diag("a truncated task was accepted");

		/* A length one too big, or a huge one, in each field. */
		refused = 1;
		for (n = 0; n < 4; n++) {
			struct proto_task_fixed f;
			uint32_t *fld[4] = { &f.path_len, &f.format_len,
			    &f.filter_len, &f.roots_len };
			uint32_t vals[2] = { 0, 0xffffffffu };
			size_t k;

			for (k = 0; k < 2; k++) {
				memcpy(&f, msg + sizeof h, sizeof f);
				vals[0] = *fld[n] + 1;
				*fld[n] = vals[k];
				if ((bad = malloc(h.len)) == NULL)
					break;
				memcpy(bad, msg + sizeof h, h.len);
				memcpy(bad, &f, sizeof f);
				if (proto_task_decode(bad, h.len, &d) == 0) {
					refused = 0;
					proto_task_clear(&d);
				}
				free(bad);
			}
		}
		ok(refused, "task %zu: corrupted lengths refused", i);
		free(msg);
	}
}

static const struct {
	const char	*error;
	size_t		 counts_len;
} result_cases[] = {
	{ "", 0 },
	{ "", 100 },
	{ "gzip: corrupt at byte 1234", 17 },
	{ "worker killed by signal 9 (twice)", 0 },
};

static void
test_results(void)
{
	struct proto_result_fixed	 f;
	struct proto_result		 r;
	struct proto_hdr		 h;
	uint8_t				 counts[128], *msg, *bad;
	size_t				 len, i, cut;
	int				 refused;

	for (i = 0; i < sizeof counts; i++)
		counts[i] = (uint8_t)(i * 7);
	for (i = 0; i < sizeof result_cases / sizeof result_cases[0]; i++) {
		memset(&f, 0, sizeof f);
		f.task = 77 + i;
		f.lines = 1000 * i;
		f.counted = 10 * i;
		f.flags = (uint32_t)i & PROTO_F_PARTIAL;
		msg = proto_result_encode(&f, result_cases[i].error, counts,
		    result_cases[i].counts_len, &len);
		if (!ok(msg != NULL, "result %zu: encoded", i))
			continue;
		memcpy(&h, msg, sizeof h);
		ok(h.type == PROTO_RESULT && h.len == len - sizeof h,
		    "result %zu: header", i);
		ok(proto_result_decode(msg + sizeof h, h.len, &r) == 0 &&
		    r.f.task == f.task && r.f.lines == f.lines &&
		    r.f.counted == f.counted && r.f.flags == f.flags &&
		    r.f.error_len == strlen(result_cases[i].error) &&
		    memcmp(r.error, result_cases[i].error, r.f.error_len) == 0 &&
		    r.f.counts_len == result_cases[i].counts_len &&
		    memcmp(r.counts, counts, r.f.counts_len) == 0,
		    "result %zu: round trip", i);
		refused = 1;
		for (cut = 0; cut < h.len; cut++) {
			if ((bad = malloc(cut + 1)) == NULL)
				break;
			memcpy(bad, msg + sizeof h, cut);
			if (proto_result_decode(bad, cut, &r) == 0)
				refused = 0;
			free(bad);
		}
		ok(refused, "result %zu: every truncation refused", i);
		memcpy(&f, msg + sizeof h, sizeof f);
		f.counts_len = 0xfffffff0u;
		memcpy(msg + sizeof h, &f, sizeof f);
		ok(proto_result_decode(msg + sizeof h, h.len, &r) == -1,
		    "result %zu: a huge counts length refused", i);
		free(msg);
	}
}

static const struct {
	const char	*clfd_socket, *xdg;
	const char	*want;		/* NULL: /tmp/clfd-UID/clfd.sock */
} path_cases[] = {
	{ "/run/x/clfd.sock", "/run/user/1", "/run/x/clfd.sock" },
	{ NULL, "/run/user/1", "/run/user/1/clfd.sock" },
	{ "", "/run/user/1", "/run/user/1/clfd.sock" },
	{ NULL, NULL, NULL },
	{ NULL, "relative", NULL },
};

static void
test_paths(void)
{
	char	buf[200], want[64], longp[300];
	size_t	i;

	for (i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
		if (path_cases[i].clfd_socket != NULL)
			setenv("CLFD_SOCKET", path_cases[i].clfd_socket, 1);
		else
			unsetenv("CLFD_SOCKET");
		if (path_cases[i].xdg != NULL)
			setenv("XDG_RUNTIME_DIR", path_cases[i].xdg, 1);
		else
			unsetenv("XDG_RUNTIME_DIR");
		snprintf(want, sizeof want, "/tmp/clfd-%lu/clfd.sock",
		    (unsigned long)getuid());
		ok(paths_default_socket(buf, sizeof buf) == 0 &&
		    strcmp(buf, path_cases[i].want != NULL ? path_cases[i].want :
		    want) == 0, "default socket, case %zu: %s", i, buf);
	}
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	setenv("CLFD_SOCKET", longp, 1);
	ok(paths_default_socket(buf, sizeof buf) == -1,
	    "a socket path too long is refused");
	setenv("CLFD_SOCKET", "/run/x/clfd.sock", 1);
	ok(paths_default_socket(buf, 8) == -1, "a buffer too small is refused");
}

int
main(void)
{
	test_tasks();
	test_results();
	test_paths();
	return tap_done();
}
