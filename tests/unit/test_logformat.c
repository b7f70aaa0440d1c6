/*
 * test_logformat.c: presets, LogFormat strings, directives, raw regexes
 * and their errors, and the fields a match yields, as tables; then the
 * cache of compiled formats.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logformat.h"
#include "tap.h"

#define COMBINED_LINE \
	"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif " \
	"HTTP/1.0\" 200 2326 \"http://www.example.com/s.html\" " \
	"\"Mozilla/4.08 [en] (Win98; I ;Nav)\""
#define COMMON_LINE \
	"::1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 404 -"

/* A spec, a line, and the fields it must give (request NULL: no match). */
static const struct {
	const char	*spec;
	const char	*line;
	const char	*request;
	const char	*time;
	const char	*status;
	const char	*referer;
} cases[] = {
	{ "combined", COMBINED_LINE, "GET /a.gif HTTP/1.0",
	    "10/Oct/2000:13:55:36 -0700", "200", "http://www.example.com/s.html" },
	{ "combined", COMMON_LINE, NULL, NULL, NULL, NULL },
	{ "combined", COMBINED_LINE " extra fields", "GET /a.gif HTTP/1.0",
	    "10/Oct/2000:13:55:36 -0700", "200", "http://www.example.com/s.html" },
	{ "combined", "h l u [t] \"r\" 200 1 \"\" \"\"", NULL, NULL, NULL,
	    NULL },
	{ "combined", "h l u [t] \"r\" 200 1 \"\" \"a\"", "r", "t", "200", "" },
	{ "combined", "h l u [t] \"GET /a\\\" b HTTP/1.1\" 200 1 \"-\" \"ua\"",
	    "GET /a\\\" b HTTP/1.1", "t", "200", "-" },
	{ "combined", "h\x1cl\x1fu\t[t]\v\"r\"\f200 1 \"-\" \"ua\"", "r", "t",
	    "200", "-" },
	{ "combined", " h l u [t] \"r\" 200 1 \"-\" \"ua\"", NULL, NULL, NULL,
	    NULL },
	{ "combined", "x h l u [t] \"r\" 200 1 \"-\" \"ua\"", NULL, NULL, NULL,
	    NULL },
	{ "combined", "h l u [t] \"r\" 2x0 1 \"-\" \"ua\"", NULL, NULL, NULL,
	    NULL },
	{ "combined", "h l u [a\rb] \"r\" 200 1 \"-\" \"ua\"", "r", "a\rb",
	    "200", "-" },
	{ "default", COMMON_LINE, "GET / HTTP/1.1",
	    "10/Oct/2000:13:55:36 -0700", "404", NULL },
	{ "", COMBINED_LINE, "GET /a.gif HTTP/1.0",
	    "10/Oct/2000:13:55:36 -0700", "200", "http://www.example.com/s.html" },
	{ "default", COMMON_LINE " \"ref\"", "GET / HTTP/1.1",
	    "10/Oct/2000:13:55:36 -0700", "404", NULL },
	{ "default", "garbage line without structure", NULL, NULL, NULL, NULL },
	{ "default", "", NULL, NULL, NULL, NULL },
	{ "common", COMMON_LINE, "GET / HTTP/1.1",
	    "10/Oct/2000:13:55:36 -0700", "404", NULL },
	{ "common", COMBINED_LINE, "GET /a.gif HTTP/1.0",
	    "10/Oct/2000:13:55:36 -0700", "200", NULL },
	{ "vhost_combined", "www.example.com:80 " COMBINED_LINE,
	    "GET /a.gif HTTP/1.0", "10/Oct/2000:13:55:36 -0700", "200",
	    "http://www.example.com/s.html" },
	{ "vhost_combined", COMBINED_LINE, NULL, NULL, NULL, NULL },
	{ "vhost_common", "www.example.com " COMMON_LINE, "GET / HTTP/1.1",
	    "10/Oct/2000:13:55:36 -0700", "404", NULL },
	{ "%h %l %u %t \"%r\" %>s %b", COMMON_LINE, "GET / HTTP/1.1",
	    "10/Oct/2000:13:55:36 -0700", "404", NULL },
	{ "%h %t \"%r\" %s %D", "1.2.3.4 [t] \"GET /x HTTP/1.1\" 200 1234",
	    "GET /x HTTP/1.1", "t", "200", NULL },
	{ "%h %t \"%r\" %s %D", "1.2.3.4 [t] \"GET /x HTTP/1.1\" 200 -", NULL,
	    NULL, NULL, NULL },
	{ "%v %h \"%r\" %B %T", "vh 1.2.3.4 \"GET /x HTTP/1.1\" 12 0",
	    "GET /x HTTP/1.1", NULL, NULL, NULL },
	{ "[%h] (%r) %%", "[1.2.3.4] (GET /y HTTP/1.1) %", "GET /y HTTP/1.1",
	    NULL, NULL, NULL },
	{ "%h \"%{X-Forwarded-For}i\" \"%r\"", "h \"\" \"GET /z HTTP/1.1\"",
	    "GET /z HTTP/1.1", NULL, NULL, NULL },
	{ "%h %{Referer}i %r", "h http://r/ GET /u HTTP/1.1", "GET /u HTTP/1.1",
	    NULL, NULL, "http://r/" },
	{ "%h.%r", "h.GET / H", "GET / H", NULL, NULL, NULL },
	{ "%h.%r", "hxGET / H", NULL, NULL, NULL, NULL },
	{ "regex:(?<request>\\S+) (?<status>\\d+)", "GET 200", "GET", NULL,
	    "200", NULL },
	{ "regex:(?<request>\\S+) (?<status>\\d+)", "x GET 200", NULL, NULL,
	    NULL, NULL },
	{ "regex:.*?req=(?<request>[^ ]+)", "a b req=/p", "/p", NULL, NULL,
	    NULL },
};

/* Specs that must be refused, and a word the error must contain. */
static const struct {
	const char	*spec;
	const char	*word;
} errors[] = {
	{ "nosuchpreset", "nosuchpreset" },
	{ "%h %Z %r", "%Z" },
	{ "%h %{Foo}x %r", "%{Foo}x" },
	{ "%h %t", "request" },
	{ "%h %r %r", "twice" },
	{ "%h %{Referer %r", "unterminated" },
	{ "%r %", "end" },
	{ "agent", "not a preset" },
	{ "regex:(?<host>\\S+)", "request" },
	{ "regex:(?<request>", "regex" },
	{ "regex:", "request" },
};

#define RX_WS	"[\\t-\\r \\x1c-\\x1f]"
#define RX_NWS	"[^\\t-\\r \\x1c-\\x1f]"
#define RX_COMMON \
	"(?<host>" RX_NWS "+)" RX_WS "+(?<identity>" RX_NWS "+)" RX_WS "+" \
	"(?<user>" RX_NWS "+)" RX_WS "+\\[(?<time>.+?)\\]" RX_WS "+" \
	"\"(?<request>.+?)\"" RX_WS "+(?<status>\\d+)" RX_WS "+" \
	"(?<bytes>" RX_NWS "+)"
#define RX_TAIL \
	RX_WS "+\"(?<referer>.*?)\"" RX_WS "+\"(?<user_agent>.+?)\""

/*
 * Formats whose fast matcher is checked against PCRE2 alone running the
 * regex written out by hand (the seed's format_pat and any_pat, and a few
 * LogFormats): same verdict and same fields on every line of a corpus.
 */
static const struct {
	const char	*spec;
	const char	*regex;
	int		 fast;		/* 2: the presets' matcher written out */
} pairs[] = {
	{ "combined", "regex:" RX_COMMON RX_TAIL, 2 },
	{ "nginx", "regex:" RX_COMMON RX_TAIL, 2 },
	{ "default", "regex:" RX_COMMON "(?:" RX_TAIL ")?", 2 },
	{ "common", "regex:" RX_COMMON, 2 },
	{ "%h %l %u %t \"%r\" %>s %b", "regex:" RX_COMMON, 2 },
	{ "%h \"%{X}i\" \"%r\" %>s \"%{User-Agent}i\" %D",
	    "regex:" RX_NWS "+" RX_WS "+\".*?\"" RX_WS
	    "+\"(?<request>.+?)\"" RX_WS "+(?<status>\\d+)" RX_WS
	    "+\"(?<user_agent>.+?)\"" RX_WS "+\\d+", 1 },
	{ "%t %q %r", "regex:\\[(?<time>.+?)\\]" RX_WS "+" RX_NWS "*"
	    RX_WS "+(?<request>.+)", 1 },
	{ "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\"",
	    "regex:" RX_COMMON RX_WS "+\"(?<referer>.*?)\"", 1 },
};

/* Lines to mutate for the comparison. */
static const char *const bases[] = {
	COMBINED_LINE,
	COMMON_LINE,
	"h l u [01/Mar/2024:00:00:00 +0100] \"GET /a\\\" b HTTP/1.1\" 200 1 "
	    "\"-\" \"u\\\"a\" x",
	"h \"x\" \"GET /y HTTP/1.1\" 404 \"ua\" 77",
	"h \"\" \"GET /y\" \"1\" 404 \"ua\" 7 \"ua\" 77",
	"[t] ?q=1 GET /z HTTP/1.1",
};

/* A small deterministic generator for the mutations. */
static unsigned long
rnd(unsigned long *state)
{
	*state = *state * 6364136223846793005UL + 1442695040888963407UL;
	return *state >> 33;
}

/* Both formats on one line: 1 when they agree. */
static int
agree(struct logformat *x, struct logformat *y, const char *line,
    size_t len)
{
	struct access	 a, b;
	int		 rx, ry;

	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	rx = logformat_match(x, line, len, &a);
	ry = logformat_match(y, line, len, &b);
	if (rx != ry)
		return 0;
	if (rx != 1)
		return 1;
	return a.request == b.request && a.request_len == b.request_len &&
	    a.time == b.time && a.time_len == b.time_len &&
	    a.status == b.status && a.status_len == b.status_len &&
	    a.referer == b.referer && a.referer_len == b.referer_len;
}

static void
differential(void)
{
	static const char noise[] = " \t\v\x1c\"[]-0aZ\\\x00\xff";
	struct logformat	*x, *y;
	char			 line[512], err[256];
	unsigned long		 st = 12345;

	/*
	 * PCRE2's JIT scans with aligned vector loads that may touch bytes
	 * after the subject (never past the aligned block): harmless, but
	 * valgrind reports them when those bytes were never written.
	 */
	memset(line, 0, sizeof line);
	size_t			 i, k, len, pos, m, bad, matched;

	for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		x = logformat_compile(pairs[i].spec, err, sizeof err);
		y = logformat_compile(pairs[i].regex, err, sizeof err);
		if (!ok(x != NULL && y != NULL &&
		    logformat_fast(x) == pairs[i].fast && !logformat_fast(y),
		    "%s: fast matcher (%s) and regex compile", pairs[i].spec,
		    pairs[i].fast == 2 ? "the presets', written out" :
		    "the program")) {
			logformat_free(x);
			logformat_free(y);
			continue;
		}
		bad = matched = 0;
		for (k = 0; k < 20000; k++) {
			const char *base = bases[rnd(&st) % (sizeof bases /
			    sizeof bases[0])];

			len = strlen(base);
			memcpy(line, base, len);
			for (m = rnd(&st) % 4; m > 0; m--) {
				pos = rnd(&st) % (len + 1);
				if (rnd(&st) % 2 == 0 && len + 1 < sizeof line) {
					memmove(line + pos + 1, line + pos,
					    len - pos);
					len++;
				} else if (pos == len)
					continue;
				line[pos] = noise[rnd(&st) %
				    (sizeof noise - 1)];
			}
			if (!agree(x, y, line, len) && bad++ < 3)
				diag("differs on \"%.*s\"", (int)len, line);
			if (logformat_match(y, line, len, &(struct access){ 0 })
			    == 1)
				matched++;
		}
		ok(bad == 0 && matched > 1000, "%s: fast matcher agrees with "
		    "PCRE2 on 20000 lines (%zu matched)", pairs[i].spec,
		    matched);
		logformat_free(x);
		logformat_free(y);
	}
}

/*
 * PCRE2's work on a line is bounded: a pattern that backtracks without
 * end gives up quickly (no match: the line is malformed), and a line that
 * would match only after some million steps (under PCRE2's own default
 * limit) does not match either.
 */
static void
bounded(void)
{
	struct logformat	*lf;
	struct timespec		 t0, t1;
	char			 line[64], err[256];
	double			 ms;
	int			 rc;

	memset(line, 'a', 40);
	line[40] = 'b';
	lf = logformat_compile("regex:^(?<request>(a+)+)$", err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = lf == NULL ? -2 : logformat_match(lf, line, 41,
	    &(struct access){ 0 });
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	ok(rc == 0 && ms < 1000, "catastrophic backtracking on 40 'a' then "
	    "'b': no match after %.2f ms", ms);
	logformat_free(lf);

	/* 18 'a' then 'c': (a+)+b fails after about 2^18 tries, then '.'. */
	memset(line, 'a', 18);
	line[18] = 'c';
	lf = logformat_compile("regex:(?:(a+)+b|(?<request>.))", err,
	    sizeof err);
	ok(lf != NULL && logformat_match(lf, line, 19,
	    &(struct access){ 0 }) == 0, "a match found only after the step "
	    "bound is no match");
	ok(lf != NULL && logformat_match(lf, line + 17, 2,
	    &(struct access){ 0 }) == 1, "the same pattern matches when it "
	    "backtracks little");
	logformat_free(lf);
}

/* 1 when the field s/len equals want (both NULL counts as equal). */
static int
same(const char *s, size_t len, const char *want)
{
	if (want == NULL || s == NULL)
		return want == NULL && s == NULL;
	return len == strlen(want) && memcmp(s, want, len) == 0;
}

int
main(void)
{
	struct logformat	*lf, *lf2;
	struct logformat_cache	*c;
	struct access		 a;
	char			 err[256];
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if ((lf = logformat_compile(cases[i].spec, err, sizeof err))
		    == NULL) {
			ok(0, "compile %s: %s", cases[i].spec, err);
			continue;
		}
		memset(&a, 0, sizeof a);
		rc = logformat_match(lf, cases[i].line, strlen(cases[i].line),
		    &a);
		if (cases[i].request == NULL)
			ok(rc == 0, "%s: no match for \"%s\"", cases[i].spec,
			    cases[i].line);
		else
			ok(rc == 1 && same(a.request, a.request_len,
			    cases[i].request) && same(a.time, a.time_len,
			    cases[i].time) && same(a.status, a.status_len,
			    cases[i].status) && same(a.referer, a.referer_len,
			    cases[i].referer), "%s: \"%s\" -> request \"%s\"",
			    cases[i].spec, cases[i].line, cases[i].request);
		logformat_free(lf);
	}
	for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
		err[0] = '\0';
		lf = logformat_compile(errors[i].spec, err, sizeof err);
		ok(lf == NULL && strstr(err, errors[i].word) != NULL,
		    "refused \"%s\" (%s)", errors[i].spec, err);
		logformat_free(lf);
	}

	/* Presets and what they hold. */
	lf = logformat_compile("combined", err, sizeof err);
	ok(lf != NULL && logformat_has_time(lf) && logformat_has_status(lf) &&
	    strcmp(logformat_spec(lf), "combined") == 0,
	    "combined has time and status");
	if (lf != NULL && !logformat_jit(lf))
		diag("PCRE2 JIT not available: the interpreter runs");
	logformat_free(lf);
	lf = logformat_compile("regex:(?<request>.*)", err, sizeof err);
	ok(lf != NULL && !logformat_has_time(lf) && !logformat_has_status(lf),
	    "a regex without time or status has neither");
	logformat_free(lf);
#define CL_COMMON	"h - - [10/Oct/2024:13:55:36 +0000] \"GET /n HTTP/1.1\" 200 5"
#define CL_COMBINED	CL_COMMON " \"-\" \"curl\""
	lf = logformat_compile("nginx", err, sizeof err);
	memset(&a, 0, sizeof a);
	ok(lf != NULL && logformat_has_status(lf) && logformat_match(lf,
	    CL_COMBINED, sizeof CL_COMBINED - 1, &a) == 1 && logformat_match(lf,
	    CL_COMMON, sizeof CL_COMMON - 1, &a) != 1,
	    "nginx is combined: a Common line does not match");
	logformat_free(lf);
	/* \" and \\ in a LogFormat are " and \ */
	lf = logformat_compile("%h %l %u %t \\\"%r\\\" %>s %b", err,
	    sizeof err);
	ok(lf != NULL && logformat_match(lf, "h - - [10/Oct/2024:13:55:36 "
	    "+0000] \"GET /n HTTP/1.1\" 200 5", 58, &a) == 1 &&
	    same(a.request, a.request_len, "GET /n HTTP/1.1"),
	    "a LogFormat with \\\" matches the quotes");
	logformat_free(lf);
	/* the preset list is never cut: the spec is */
	{
		char	 big[300], small[200];

		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		lf = logformat_compile(big, small, sizeof small);
		ok(lf == NULL && strstr(small, "referer), a LogFormat or "
		    "regex:PATTERN") != NULL &&
		    strstr(small, "x...\": not a preset") != NULL,
		    "an unknown long name: the whole preset list (%s)", small);
	}
	lf = logformat_compile("referer", err, sizeof err);
	memset(&a, 0, sizeof a);
	ok(lf != NULL && logformat_match(lf, "http://x/ -> /p/q", 17, &a) == 1 &&
	    a.request == NULL && same(a.path, a.path_len, "/p/q"),
	    "referer preset gives the path from %%U");
	logformat_free(lf);
	lf = logformat_compile(NULL, err, sizeof err);
	ok(lf != NULL && strcmp(logformat_spec(lf), "") == 0,
	    "NULL spec is the default");
	logformat_free(lf);

	differential();
	bounded();
	lf = logformat_compile("vhost_combined", err, sizeof err);
	ok(lf != NULL && !logformat_fast(lf), "vhost_combined (%%v:%%p) runs "
	    "on PCRE2 alone");
	logformat_free(lf);

	/* The cache: the same spec gives the same compiled format. */
	c = logformat_cache_new(2);
	lf = logformat_cache_get(c, "combined", err, sizeof err);
	lf2 = logformat_cache_get(c, "combined", err, sizeof err);
	ok(lf != NULL && lf == lf2, "cache hit returns the same format");
	ok(logformat_cache_get(c, "%Q", err, sizeof err) == NULL &&
	    strstr(err, "%Q") != NULL, "cache passes compile errors on");
	lf2 = logformat_cache_get(c, "common", err, sizeof err);
	ok(lf2 != NULL && lf2 != lf, "second spec cached");
	lf = logformat_cache_get(c, "combined", err, sizeof err);
	ok(logformat_cache_get(c, "default", err, sizeof err) != NULL &&
	    logformat_cache_get(c, "combined", err, sizeof err) == lf,
	    "least recently used entry evicted, recent one kept");
	logformat_cache_free(c);
	return tap_done();
}
