/*
 * test_proto.c: the supervisor <-> worker messages (proto.c), their
 * header checks, and the default socket path (paths.c), as tables of
 * cases; how a read of a message cut short fails (errno EPROTO), and that
 * logging leaves errno alone (log.c).
 *
 * Every message must round-trip, and every truncated, extended or
 * corrupted length must be refused rather than read past its end.
 */
#include "log.h"
#include "paths.h"
#include "proto.h"
#include "tap.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
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
		t.flags = (uint32_t)(i / 2) & (PROTO_TASK_NO_CACHE |
		    PROTO_TASK_NO_REF);
		if (i % 3 == 0)
			t.flags |= PROTO_TASK_AHEAD;
		if (i % 2 == 1) {
			/* A byte range of the file, with its listed identity. */
			t.flags |= PROTO_TASK_RANGE;
			t.range.off = 1000 * i;
			t.range.end = 1000 * i + 777;
			t.range.size = 1ULL << 33;
			t.range.dev = 2049;
			t.range.ino = 1ULL << 40;
			t.range.mtime_ns = -5;
		}
		msg = proto_task_encode(&t, &len);
		if (!ok(msg != NULL, "task %zu: encoded", i))
			continue;
		memcpy(&h, msg, sizeof h);
		ok(h.type == PROTO_TASK && h.len == len - sizeof h,
		    "task %zu: header type and length", i);
		r = proto_task_decode(msg + sizeof h, h.len, &d);
		ok(r == 0 && d.task == t.task && d.line_max == 4096 &&
		    strcmp(d.path, t.path) == 0 && strcmp(d.format, t.format) == 0 &&
		    strcmp(d.filter, t.filter) == 0 && d.flags == t.flags &&
		    memcmp(&d.range, &t.range, sizeof d.range) == 0,
		    "task %zu: round trip", i);
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

static const char *const result_errors[] = {
	"",
	"gzip: corrupt at byte 1234",
	"worker killed by signal 9 (twice)",
};

/* A MAP result has a fixed size: anything else is refused. */
static void
test_results(void)
{
	struct proto_result	 f, r;
	struct proto_hdr	 h;
	uint8_t			*msg, *bad;
	size_t			 len, i, cut;
	int			 refused;

	for (i = 0; i < sizeof result_errors / sizeof result_errors[0]; i++) {
		memset(&f, 0, sizeof f);
		f.task = 77 + i;
		f.st.lines = 1000 * i;
		f.st.counted = 10 * i;
		f.st.flags = (uint32_t)i & STATS_PARTIAL;
		f.id.ino = 4242 + i;
		f.nkeys = 3 * i;
		f.size = 100 * i;
		snprintf(f.st.error, sizeof f.st.error, "%s", result_errors[i]);
		msg = proto_result_encode(&f, &len);
		if (!ok(msg != NULL, "result %zu: encoded", i))
			continue;
		memcpy(&h, msg, sizeof h);
		ok(h.type == PROTO_RESULT && h.len == len - sizeof h &&
		    proto_hdr_check(&h) == 0, "result %zu: header", i);
		ok(proto_result_decode(msg + sizeof h, h.len, &r) == 0 &&
		    r.task == f.task && r.st.lines == f.st.lines &&
		    r.st.counted == f.st.counted && r.st.flags == f.st.flags &&
		    strcmp(r.st.error, result_errors[i]) == 0 &&
		    r.id.ino == f.id.ino && r.nkeys == f.nkeys &&
		    r.size == f.size, "result %zu: round trip", i);
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
		/* An error text with no NUL in its array is refused. */
		memset(msg + sizeof h + offsetof(struct proto_result, st) +
		    offsetof(struct file_stats, error), 'x', sizeof f.st.error);
		ok(proto_result_decode(msg + sizeof h, h.len, &r) == -1,
		    "result %zu: an unterminated error refused", i);
		free(msg);
	}
}

/* MERGE: task ids, extra sources and the head round trip; bad lengths not. */
static void
test_merges(void)
{
	struct proto_merge_fixed	 f;
	struct proto_merge		 m;
	struct proto_merged_fixed	 mf;
	struct proto_merged		 md;
	struct proto_extra		 ex[2];
	struct proto_ref		 rf[1];
	struct proto_hdr		 h;
	uint64_t			 in[3] = { 5, 9, 1ULL << 40 };
	uint8_t				*msg, *bad;
	size_t				 len, cut;
	int				 refused;

	memset(&f, 0, sizeof f);
	memset(ex, 0, sizeof ex);
	f.task = 12;
	f.top = 10;
	f.final = 1;
	f.start_usec = 123456789;
	f.ninputs = 3;
	f.nextra = 2;
	ex[0].path = "/var/log/a.log";
	ex[0].path_len = strlen(ex[0].path);
	ex[0].st.flags = STATS_FAILED;
	snprintf(ex[0].st.error, sizeof ex[0].st.error, "worker killed");
	ex[1].path = "/b";
	ex[1].path_len = 2;
	ex[1].off = 1ULL << 35;
	ex[1].end = (1ULL << 35) + 3;
	memset(rf, 0, sizeof rf);
	f.nrefs = 1;
	rf[0].f.input = 1;
	rf[0].f.key = 77;
	rf[0].f.ino = 78;
	rf[0].f.sum = 79;
	rf[0].f.st.lines = 80;
	rf[0].path = "/var/log/c.log";
	rf[0].f.path_len = (uint32_t)strlen(rf[0].path);
	msg = proto_merge_encode(&f, in, ex, rf, "{\"ok\":true", &len);
	if (ok(msg != NULL, "merge: encoded")) {
		memcpy(&h, msg, sizeof h);
		ok(h.type == PROTO_MERGE && proto_hdr_check(&h) == 0,
		    "merge: header");
		ok(proto_merge_decode(msg + sizeof h, h.len, &m) == 0 &&
		    m.f.task == 12 && m.f.top == 10 && m.f.final == 1 &&
		    m.f.start_usec == 123456789 && m.f.ninputs == 3 &&
		    m.inputs[2] == in[2] && m.f.nextra == 2 &&
		    m.extra[0].path_len == ex[0].path_len &&
		    memcmp(m.extra[0].path, ex[0].path, ex[0].path_len) == 0 &&
		    strcmp(m.extra[0].st.error, "worker killed") == 0 &&
		    m.extra[1].path_len == 2 && m.extra[0].off == 0 &&
		    m.extra[1].off == ex[1].off && m.extra[1].end == ex[1].end &&
		    m.f.nrefs == 1 &&
		    m.refs[0].f.input == 1 && m.refs[0].f.key == 77 &&
		    m.refs[0].f.ino == 78 && m.refs[0].f.sum == 79 &&
		    m.refs[0].f.st.lines == 80 &&
		    m.refs[0].f.path_len == rf[0].f.path_len &&
		    memcmp(m.refs[0].path, rf[0].path, rf[0].f.path_len) == 0 &&
		    strcmp(m.head, "{\"ok\":true") == 0, "merge: round trip");
		proto_merge_clear(&m);
		refused = 1;
		for (cut = 0; cut < h.len; cut++) {
			if ((bad = malloc(cut + 1)) == NULL)
				break;
			memcpy(bad, msg + sizeof h, cut);
			if (proto_merge_decode(bad, cut, &m) == 0) {
				refused = 0;
				proto_merge_clear(&m);
			}
			free(bad);
		}
		ok(refused, "merge: every truncation refused");
		memcpy(&f, msg + sizeof h, sizeof f);
		f.nextra = 3;
		memcpy(msg + sizeof h, &f, sizeof f);
		ok(proto_merge_decode(msg + sizeof h, h.len, &m) == -1,
		    "merge: one extra source too many refused");
		f.nextra = 2;
		f.nrefs = 2;
		memcpy(msg + sizeof h, &f, sizeof f);
		ok(proto_merge_decode(msg + sizeof h, h.len, &m) == -1,
		    "merge: one ref too many refused");
		f.nrefs = 1;
		memcpy(msg + sizeof h, &f, sizeof f);
		ok(proto_merge_decode(msg + sizeof h, h.len, &m) == 0,
		    "merge: restored");
		proto_merge_clear(&m);
		rf[0].f.input = 3;	/* of inputs 0 to 2 */
		memcpy(msg + sizeof h + sizeof f + 3 * 8 + f.extra_len, &rf[0].f,
		    sizeof rf[0].f);
		ok(proto_merge_decode(msg + sizeof h, h.len, &m) == -1,
		    "merge: a ref to an input that is not there refused");
		free(msg);
	}
	/* A head holding a NUL would be cut short where it is written. */
	f.nrefs = 0;
	msg = proto_merge_encode(&f, in, ex, rf, "{\"ok\":true,\"job\":1",
	    &len);
	if (ok(msg != NULL, "merge: encoded, a head to corrupt")) {
		memcpy(&h, msg, sizeof h);
		msg[len - 1] = '\0';
		if (!ok(proto_merge_decode(msg + sizeof h, h.len, &m) == -1,
		    "merge: a head holding a NUL refused"))
			proto_merge_clear(&m);
		msg[len - 1] = '1';
		ok(proto_merge_decode(msg + sizeof h, h.len, &m) == 0 &&
		    strcmp(m.head, "{\"ok\":true,\"job\":1") == 0,
		    "merge: the head restored");
		proto_merge_clear(&m);
		free(msg);
	}

	memset(&mf, 0, sizeof mf);
	mf.task = 12;
	mf.bad = 1;
	msg = proto_merged_encode(&mf, "damaged", &len);
	if (ok(msg != NULL, "merged: encoded")) {
		memcpy(&h, msg, sizeof h);
		ok(proto_merged_decode(msg + sizeof h, h.len, &md) == 0 &&
		    md.f.task == 12 && md.f.bad == 1 && md.f.error_len == 7 &&
		    memcmp(md.error, "damaged", 7) == 0, "merged: round trip");
		ok(proto_merged_decode(msg + sizeof h, h.len - 1, &md) == -1,
		    "merged: a short error refused");
		free(msg);
	}
}

static const struct {
	const char	*patterns[4];
	const char	*paths[4];
	uint32_t	 unmatched[2];
	size_t		 nunmatched;
	const char	*error;
} expand_cases[] = {
	{ { "/var/log/*.gz", NULL }, { "/var/log/a.gz", "/var/log/b.gz", NULL },
	    { 0 }, 0, NULL },
	{ { "/a/{x,y}", "/nothing", "/b/*", NULL }, { "/a/x", NULL }, { 1, 2 },
	    2, NULL },
	{ { NULL }, { NULL }, { 0 }, 0, NULL },
	{ { "/x", NULL }, { NULL }, { 0 }, 0, "out of memory expanding patterns" },
};

/* Count a NULL-terminated vector. */
static size_t
vlen(const char *const *v)
{
	size_t	n = 0;

	while (v[n] != NULL)
		n++;
	return n;
}

static const char *const expand_roots[] = { "/var/log", "/", "/srv/a b", NULL };

/* PROTO_EXPAND and PROTO_EXPANDED: round trips and every truncation. */
static void
test_expand(void)
{
	struct proto_expand	 x, dx;
	struct proto_expanded	 e;
	struct proto_hdr	 h;
	struct expand_id	 ids[8], gid;
	uint8_t			*msg, *bad;
	const char		*p;
	size_t			 len, i, k, n, cut;
	uint32_t		 u;
	int			 same, refused;

	for (i = 0; i < sizeof expand_cases / sizeof expand_cases[0]; i++) {
		memset(&x, 0, sizeof x);
		x.task = 500 + i;
		x.files_max = 100000;
		x.split_size = i % 3 ? ((uint64_t)32 << 20) + i : 0;
		x.npatterns = (uint32_t)vlen(expand_cases[i].patterns);
		x.patterns = (char **)(uintptr_t)expand_cases[i].patterns;
		/* every other case with roots */
		x.roots = i % 2 ? (char **)(uintptr_t)expand_roots : NULL;
		msg = proto_expand_encode(&x, &len);
		if (!ok(msg != NULL, "expand %zu: encoded", i))
			continue;
		memcpy(&h, msg, sizeof h);
		ok(h.type == PROTO_EXPAND && h.len == len - sizeof h &&
		    proto_hdr_check(&h) == 0, "expand %zu: header", i);
		same = proto_expand_decode(msg + sizeof h, h.len, &dx) == 0 &&
		    dx.task == x.task && dx.files_max == x.files_max &&
		    dx.split_size == x.split_size &&
		    dx.npatterns == x.npatterns &&
		    dx.patterns[dx.npatterns] == NULL;
		for (k = 0; same && k < x.npatterns; k++)
			same = strcmp(dx.patterns[k], x.patterns[k]) == 0;
		if (same && x.roots == NULL)
			same = dx.roots == NULL;
		for (k = 0; same && x.roots != NULL && k < 3; k++)
			same = dx.roots[k] != NULL &&
			    strcmp(dx.roots[k], x.roots[k]) == 0;
		if (same && x.roots != NULL)
			same = dx.roots[3] == NULL;
		ok(same, "expand %zu: round trip", i);
		proto_expand_clear(&dx);
		refused = 1;
		for (cut = 0; cut < h.len; cut++) {
			if ((bad = malloc(cut + 1)) == NULL)
				break;
			memcpy(bad, msg + sizeof h, cut);
			if (proto_expand_decode(bad, cut, &dx) == 0) {
				refused = 0;
				proto_expand_clear(&dx);
			}
			free(bad);
		}
		ok(refused, "expand %zu: every truncation refused", i);
		free(msg);

		n = vlen(expand_cases[i].paths);
		memset(ids, 0, sizeof ids);
		for (k = 0; k < n && k < 8; k++) {
			ids[k].dev = k;
			ids[k].ino = 1000 + k;
			ids[k].size = (1ULL << 40) + k;
			ids[k].mtime_ns = -(int64_t)k;
			ids[k].flags = k % 2 ? EXPAND_GZIP : 0;
		}
		msg = proto_expanded_encode(x.task,
		    (char **)(uintptr_t)expand_cases[i].paths, ids, n,
		    expand_cases[i].unmatched, expand_cases[i].nunmatched, 0,
		    expand_cases[i].error, &len);
		if (!ok(msg != NULL, "expanded %zu: encoded", i))
			continue;
		memcpy(&h, msg, sizeof h);
		ok(h.type == PROTO_EXPANDED && h.len == len - sizeof h &&
		    proto_hdr_check(&h) == 0, "expanded %zu: header", i);
		same = proto_expanded_decode(msg + sizeof h, h.len, &e) == 0 &&
		    e.f.task == x.task && e.f.npaths == n &&
		    e.f.nunmatched == expand_cases[i].nunmatched &&
		    e.f.error_len == (expand_cases[i].error != NULL ?
		    strlen(expand_cases[i].error) : 0) &&
		    memcmp(e.error, expand_cases[i].error != NULL ?
		    expand_cases[i].error : "", e.f.error_len) == 0;
		for (k = 0, p = e.paths; same && k < n; k++, p += strlen(p) + 1)
			same = strcmp(p, expand_cases[i].paths[k]) == 0;
		for (k = 0; same && k < e.f.nunmatched; k++) {
			memcpy(&u, e.unmatched + k * sizeof u, sizeof u);
			same = u == expand_cases[i].unmatched[k];
		}
		for (k = 0; same && k < n; k++) {
			memcpy(&gid, e.ids + k * sizeof gid, sizeof gid);
			same = memcmp(&gid, &ids[k], sizeof gid) == 0;
		}
		ok(same, "expanded %zu: round trip (each file's flags too)", i);
		refused = 1;
		for (cut = 0; cut < h.len; cut++) {
			if ((bad = malloc(cut + 1)) == NULL)
				break;
			memcpy(bad, msg + sizeof h, cut);
			if (proto_expanded_decode(bad, cut, &e) == 0)
				refused = 0;
			free(bad);
		}
		ok(refused, "expanded %zu: every truncation refused", i);
		/* One path more or less than the bytes hold. */
		refused = 1;
		for (k = 0; k < 2; k++) {
			struct proto_expanded_fixed f;

			memcpy(&f, msg + sizeof h, sizeof f);
			f.npaths = k == 0 ? f.npaths + 1 : f.npaths - 1;
			memcpy(msg + sizeof h, &f, sizeof f);
			if (proto_expanded_decode(msg + sizeof h, h.len, &e) == 0)
				refused = 0;
			f.npaths = k == 0 ? f.npaths - 1 : f.npaths + 1;
			memcpy(msg + sizeof h, &f, sizeof f);
		}
		ok(refused, "expanded %zu: a wrong path count refused", i);
		/* Each file's flags: none but EXPAND_FLAGS, pad 0. */
		refused = 1;
		for (k = 0; k < 2 * n; k++) {
			size_t	at = len - (n - k / 2) * sizeof gid;

			memcpy(&gid, msg + at, sizeof gid);
			if (k % 2)
				gid.pad = 1;
			else
				gid.flags |= EXPAND_FLAGS + 1;
			memcpy(msg + at, &gid, sizeof gid);
			if (proto_expanded_decode(msg + sizeof h, h.len, &e) == 0)
				refused = 0;
			memcpy(msg + at, &ids[k / 2], sizeof gid);
		}
		ok(refused && proto_expanded_decode(msg + sizeof h, h.len,
		    &e) == 0, "expanded %zu: an unknown flag, a pad not 0 "
		    "refused", i);
		free(msg);
	}
}

/* Header lengths checked before any payload is read. */
static const struct {
	uint32_t	 type, len;
	int		 want;
} hdr_cases[] = {
	{ PROTO_READY, sizeof(struct proto_ready), 0 },
	{ PROTO_READY, sizeof(struct proto_ready) + 1, -1 },
	{ PROTO_READY, 0, -1 },
	{ PROTO_RESULT, sizeof(struct proto_result), 0 },
	{ PROTO_RESULT, sizeof(struct proto_result) - 1, -1 },
	{ PROTO_RESULT, sizeof(struct proto_result) + 1, -1 },
	{ PROTO_RESULT, 0xffffffffu, -1 },
	{ PROTO_MERGE, sizeof(struct proto_merge_fixed), 0 },
	{ PROTO_MERGE, sizeof(struct proto_merge_fixed) - 1, -1 },
	{ PROTO_MERGED, sizeof(struct proto_merged_fixed), 0 },
	{ PROTO_MERGED, PROTO_MSG_MAX + 1, -1 },
	{ PROTO_EXPANDED, sizeof(struct proto_expanded_fixed), 0 },
	{ PROTO_EXPANDED, 3, -1 },
	{ PROTO_EXPANDED, PROTO_MSG_MAX + 1, -1 },
	{ PROTO_TASK, sizeof(struct proto_task_fixed) - 1, -1 },
	{ PROTO_EXPAND, sizeof(struct proto_expand_fixed), 0 },
	{ 0, 0, -1 },
	{ PROTO_MERGED + 1, 16, -1 },
	{ 0x41414141u, 0x41414141u, -1 },
};

static void
test_headers(void)
{
	struct proto_hdr	h;
	size_t			i;

	for (i = 0; i < sizeof hdr_cases / sizeof hdr_cases[0]; i++) {
		h.type = hdr_cases[i].type;
		h.len = hdr_cases[i].len;
		ok(proto_hdr_check(&h) == hdr_cases[i].want,
		    "header type %u length %u: %s", h.type, h.len,
		    hdr_cases[i].want == 0 ? "possible" : "refused");
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

/*
 * A message cut short by the peer: after the header, in the payload, or
 * in the header. errno is set beforehand to something else, as a caller's
 * earlier failure would leave it; the read must say EPROTO.
 */
static const struct {
	const char	*name;
	size_t		 keep;		/* bytes of the message written */
} short_cases[] = {
	{ "header only", sizeof(struct proto_hdr) },
	{ "header and 3 payload bytes", sizeof(struct proto_hdr) + 3 },
	{ "half the header", sizeof(struct proto_hdr) / 2 },
};

static void
test_short_reads(void)
{
	struct proto_task	 t;
	struct proto_hdr	 h;
	uint8_t			*msg, *payload;
	size_t			 len, i;
	int			 fds[2], r;

	memset(&t, 0, sizeof t);
	t.task = 1;
	t.path = "/var/log/a.log";
	t.format = "default";
	t.filter = "{}";
	if ((msg = proto_task_encode(&t, &len)) == NULL)
		return;
	for (i = 0; i < sizeof short_cases / sizeof short_cases[0]; i++) {
		if (pipe(fds) == -1)
			break;
		if (write(fds[1], msg, short_cases[i].keep) !=
		    (ssize_t)short_cases[i].keep)
			break;
		close(fds[1]);
		errno = ENOENT;
		r = proto_read(fds[0], &h, &payload);
		ok(r == -1 && errno == EPROTO && payload == NULL,
		    "%s: -1 with EPROTO (%d, %s)", short_cases[i].name, r,
		    strerror(errno));
		close(fds[0]);
	}
	free(msg);
}

/* Logging, even a write that fails (stderr closed), keeps errno. */
static void
test_log_errno(void)
{
	int	fd, e1, e2;

	log_init("test_proto", 1);
	if ((fd = dup(STDERR_FILENO)) == -1)
		return;
	close(STDERR_FILENO);
	errno = ENOENT;
	log_warn("a failure to report");
	e1 = errno;
	errno = EACCES;
	log_debug("a note");
	e2 = errno;
	(void)dup2(fd, STDERR_FILENO);
	close(fd);
	ok(e1 == ENOENT && e2 == EACCES, "log_warn, log_debug keep errno "
	    "(%s, %s)", strerror(e1), strerror(e2));
}

int
main(void)
{
	test_tasks();
	test_results();
	test_merges();
	test_expand();
	test_headers();
	test_paths();
	test_short_reads();
	test_log_errno();
	return tap_done();
}
