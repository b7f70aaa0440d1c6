/*
 * logformat.c: a log format spec compiled to a JIT-compiled PCRE2 pattern.
 *
 * Presets and Apache LogFormat strings are translated to one regular
 * expression; the Combined preset gives exactly the seed's format_pat and
 * the default gives its any_pat (Common, optionally followed by referer
 * and user agent). Every pattern is matched from the start of the line
 * (like Python's re.match) and need not reach its end. Lines are bytes:
 * no UTF mode, '.' matches every byte (DOTALL), and white space is
 * Python's for str, which adds the separators \x1c-\x1f to \s.
 *
 * A translated format also gets a small program of the same tokens, run
 * first: it follows the path a backtracking matcher tries first (greedy
 * tokens take all they can, a lazy group ends at the first occurrence of
 * the literal after it). When that path reaches the end of the pattern it
 * is exactly the match PCRE2 would return; when it fails anywhere, PCRE2
 * decides (the line may still match after backtracking). Well-formed
 * lines thus never reach the regex engine, odd ones always do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "access.h"
#include "logformat.h"

#define WS	"[\\t-\\r \\x1c-\\x1f]"
#define NWS	"[^\\t-\\r \\x1c-\\x1f]"
#define LF_IS_WS(c)	ACCESS_IS_WS(c)

/*
 * Bounds on PCRE2's work for one line, so that a careless or hostile
 * regex costs at most time linear in the line instead of PCRE2's default
 * 10 million steps a line. The presets take about one step a byte (at most
 * 1341 on the real logs, 60058 on a 60000-byte request) and a backtracking
 * depth of 16; a line over a bound does not match (malformed).
 */
#define LF_MATCH_BASE		100000	/* steps for any line */
#define LF_MATCH_PER_BYTE	16	/* and more for each byte */
#define LF_DEPTH_LIMIT		10000	/* nested backtracking points */

/* The fields the engine reads from a match. */
enum { G_REQUEST, G_TIME, G_STATUS, G_REFERER, G_PATH, G_MAX };
static const char *const logformat_groups[G_MAX] = {
	"request", "time", "status", "referer", "path"
};

/* The fast program's tokens. */
enum {
	OP_WS,		/* WS+ */
	OP_NWS,		/* NWS+ (min 1) or NWS* (min 0), greedy */
	OP_DIGITS,	/* \d+ */
	OP_LIT,		/* one literal byte c */
	OP_LAZY,	/* .+? (min 1) or .*? (min 0), then OP_LIT */
	OP_REST,	/* .+ to the end of the line */
};

struct op {
	unsigned char	 kind;
	unsigned char	 min;
	unsigned char	 c;
	signed char	 group;		/* G_*, -1: none */
};

#define LF_PROG_MAX	64

static int	lf_is_clf(const struct logformat *);

struct logformat {
	char			*spec;
	pcre2_code		*code;
	pcre2_match_data	*md;
	pcre2_match_context	*mc;
	int			 jit;
	int			 group[G_MAX];	/* capture numbers, 0: absent */
	struct op		 prog[LF_PROG_MAX];
	size_t			 nprog;		/* 0: no fast program */
	size_t			 opt;		/* optional tail starts here */
	int			 prog_ok;
	int			 clf;		/* the program is lf_clf's */
};

/* The default: the seed's any_pat, Common then optional referer, agent. */
static const char logformat_default_head[] = "%h %l %u %t \"%r\" %>s %b";
static const char logformat_default_tail[] =
	" \"%{Referer}i\" \"%{User-Agent}i\"";

static const struct {
	const char	*name;
	const char	*format;
} logformat_presets[] = {
	{ "common", "%h %l %u %t \"%r\" %>s %b" },
	{ "combined", "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" "
	    "\"%{User-Agent}i\"" },
	/* nginx's default access_log format is Apache's combined */
	{ "nginx", "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" "
	    "\"%{User-Agent}i\"" },
	{ "vhost_common", "%v %h %l %u %t \"%r\" %>s %b" },
	{ "vhost_combined", "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" "
	    "\"%{User-Agent}i\"" },
	{ "referer", "%{Referer}i -> %U" },
};

/* A growing pattern string. */
struct buf {
	char	*s;
	size_t	 len, cap;
	int	 nomem;
};

static void
logformat_put(struct buf *b, const char *s, size_t len)
{
	char	*ns;
	size_t	 ncap;

	if (b->nomem)
		return;
	if (len >= b->cap - b->len) {
		ncap = (b->cap + len) * 2 + 64;
		if ((ns = realloc(b->s, ncap)) == NULL) {
			b->nomem = 1;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

static void
logformat_puts(struct buf *b, const char *s)
{
	logformat_put(b, s, strlen(s));
}

/* Append one token to the fast program (dropped when it is full). */
static void
logformat_op(struct logformat *lf, int kind, int min, int c, int group)
{
	if (lf->nprog == LF_PROG_MAX) {
		lf->prog_ok = 0;
		return;
	}
	lf->prog[lf->nprog].kind = (unsigned char)kind;
	lf->prog[lf->nprog].min = (unsigned char)min;
	lf->prog[lf->nprog].c = (unsigned char)c;
	lf->prog[lf->nprog].group = (signed char)group;
	lf->nprog++;
}

/* A literal byte of the format, escaped for PCRE2. */
static void
logformat_literal(struct buf *b, unsigned char c)
{
	char	 tmp[8];

	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '"' || c == '/' || c == '-' ||
	    c == ':' || c == ',' || c == '=' || c == ';' || c == '>' ||
	    c == '<' || c == '@' || c == '\'' || c == '_' || c == '!' ||
	    c == '%' || c == '&' || c == '~' || c == '`')
		snprintf(tmp, sizeof tmp, "%c", c);
	else if (c >= 0x21 && c < 0x7f)
		snprintf(tmp, sizeof tmp, "\\%c", c);
	else
		snprintf(tmp, sizeof tmp, "\\x%02x", c);
	logformat_puts(b, tmp);
}

/* Case-insensitive compare of a header name. */
static int
logformat_name_is(const char *s, size_t len, const char *name)
{
	size_t	 i;

	if (strlen(name) != len)
		return 0;
	for (i = 0; i < len; i++)
		if ((s[i] | 0x20) != (name[i] | 0x20))
			return 0;
	return 1;
}

/*
 * Directives that are one token: non-space bytes, or digits. Those with a
 * group name capture it (the unnamed ones are only matched).
 */
static const struct {
	char		 d;
	const char	*group;		/* NULL: not captured */
	int		 digits;
} logformat_tokens[] = {
	{ 'h', "host", 0 }, { 'l', "ident", 0 }, { 'u', "user", 0 },
	{ 'v', "vhost", 0 }, { 'b', "bytes", 0 },
	{ 'a', NULL, 0 }, { 'A', NULL, 0 }, { 'V', NULL, 0 }, { 'L', NULL, 0 },
	{ 'R', NULL, 0 }, { 'f', NULL, 0 }, { 'H', NULL, 0 }, { 'm', NULL, 0 },
	{ 'B', NULL, 1 }, { 'D', NULL, 1 }, { 'T', NULL, 1 }, { 'p', NULL, 1 },
	{ 'P', NULL, 1 }, { 'I', NULL, 1 }, { 'O', NULL, 1 }, { 'S', NULL, 1 },
	{ 'k', NULL, 1 },
};

/* Emit directive d when it is a one-token directive; 0 when it is not. */
static int
logformat_token(struct logformat *lf, struct buf *b, char d)
{
	const size_t	 n = sizeof logformat_tokens / sizeof logformat_tokens[0];
	const char	*cls;
	size_t		 i;

	for (i = 0; i < n && logformat_tokens[i].d != d; i++)
		;
	if (i == n)
		return 0;
	cls = logformat_tokens[i].digits ? "\\d+" : NWS "+";
	if (logformat_tokens[i].group != NULL) {
		logformat_puts(b, "(?<");
		logformat_puts(b, logformat_tokens[i].group);
		logformat_puts(b, ">");
		logformat_puts(b, cls);
		logformat_puts(b, ")");
	} else
		logformat_puts(b, cls);
	logformat_op(lf, logformat_tokens[i].digits ? OP_DIGITS : OP_NWS, 1, 0,
	    -1);
	return 1;
}

/*
 * Translate an Apache LogFormat string. A run of literal white space
 * matches one or more white space characters; directives become groups
 * (see logformat.h); %{Name}i, %{Name}e and friends match ".*?" inside
 * double quotes (Referer may be empty; User-Agent uses ".+?" as the seed
 * does) and a single token outside them.
 */
static int
logformat_translate(struct logformat *lf, const char *fmt, struct buf *b,
    int *seen, char *err, size_t errlen)
{
	const char	*p = fmt, *name = NULL;
	size_t		 namelen = 0;
	int		 quoted = 0, ref, ua;
	char		 d;

	while (*p != '\0') {
		if (*p == ' ' || *p == '\t') {
			while (*p == ' ' || *p == '\t')
				p++;
			logformat_puts(b, WS "+");
			logformat_op(lf, OP_WS, 1, 0, -1);
			continue;
		}
		/*
		 * \" and \\ stand for " and \, as in a LogFormat copied from
		 * an Apache config (whose reader unescapes them).
		 */
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		if (*p != '%') {
			if (*p == '"')
				quoted = !quoted;
			logformat_op(lf, OP_LIT, 1, (unsigned char)*p, -1);
			logformat_literal(b, (unsigned char)*p++);
			continue;
		}
		p++;
		name = NULL;
		/* Modifiers: <, >, and status conditions like !200,304. */
		while (*p == '<' || *p == '>' || *p == '!' || *p == ',' ||
		    (*p >= '0' && *p <= '9'))
			p++;
		if (*p == '{') {
			name = ++p;
			while (*p != '\0' && *p != '}')
				p++;
			if (*p != '}') {
				snprintf(err, errlen, "LogFormat: unterminated "
				    "%%{ in \"%s\"", fmt);
				return -1;
			}
			namelen = (size_t)(p - name);
			p++;
		}
		d = *p;
		if (d == '\0') {
			snprintf(err, errlen, "LogFormat: '%%' at the end of "
			    "\"%s\"", fmt);
			return -1;
		}
		p++;
		if (logformat_token(lf, b, d))
			continue;
		switch (d) {
		case '%':
			logformat_puts(b, "%");
			logformat_op(lf, OP_LIT, 1, '%', -1);
			continue;
		case 'X':
			logformat_puts(b, "[-+X]");
			lf->prog_ok = 0;
			continue;
		case 'q':
			logformat_puts(b, NWS "*");
			logformat_op(lf, OP_NWS, 0, 0, -1);
			continue;
		case 't':
			if (name != NULL) {
				logformat_puts(b, ".+?");
				logformat_op(lf, OP_LAZY, 1, 0, -1);
				continue;
			}
			if (seen[G_TIME]++)
				break;
			logformat_puts(b, "\\[(?<time>.+?)\\]");
			logformat_op(lf, OP_LIT, 1, '[', -1);
			logformat_op(lf, OP_LAZY, 1, 0, G_TIME);
			logformat_op(lf, OP_LIT, 1, ']', -1);
			continue;
		case 'r':
			if (seen[G_REQUEST]++)
				break;
			/* Last in the format: nothing to stop a lazy match. */
			if (*p == '\0') {
				logformat_puts(b, "(?<request>.+)");
				logformat_op(lf, OP_REST, 1, 0, G_REQUEST);
			} else {
				logformat_puts(b, "(?<request>.+?)");
				logformat_op(lf, OP_LAZY, 1, 0, G_REQUEST);
			}
			continue;
		case 's':
			if (seen[G_STATUS]++)
				break;
			logformat_puts(b, "(?<status>\\d+)");
			logformat_op(lf, OP_DIGITS, 1, 0, G_STATUS);
			continue;
		case 'U':
			if (seen[G_PATH]++)
				break;
			logformat_puts(b, "(?<path>" NWS "+)");
			logformat_op(lf, OP_NWS, 1, 0, G_PATH);
			continue;
		case 'i': case 'e': case 'n': case 'o': case 'C':
			if (name == NULL)
				break;
			ref = d == 'i' && logformat_name_is(name, namelen,
			    "Referer") && !seen[G_REFERER]++;
			ua = d == 'i' && logformat_name_is(name, namelen,
			    "User-Agent");
			if (!quoted) {
				logformat_puts(b, ref ? "(?<referer>" NWS "+)" :
				    NWS "+");
				logformat_op(lf, OP_NWS, 1, 0,
				    ref ? G_REFERER : -1);
			} else if (ua) {
				logformat_puts(b, "(?<user_agent>.+?)");
				logformat_op(lf, OP_LAZY, 1, 0, -1);
			} else {
				logformat_puts(b, ref ? "(?<referer>.*?)" :
				    ".*?");
				logformat_op(lf, OP_LAZY, 0, 0,
				    ref ? G_REFERER : -1);
			}
			continue;
		default:
			break;
		}
		if (name != NULL)
			snprintf(err, errlen, "LogFormat: unknown directive "
			    "%%{%.*s}%c", (int)namelen, name, d);
		else if (strchr("trsU", d) != NULL)
			snprintf(err, errlen, "LogFormat: %%%c given twice", d);
		else
			snprintf(err, errlen, "LogFormat: unknown directive "
			    "%%%c", d);
		return -1;
	}
	if (b->nomem) {
		snprintf(err, errlen, "LogFormat: %s", strerror(ENOMEM));
		return -1;
	}
	return 0;
}

/* Compile pattern and find its groups; JIT when the system allows it. */
static int
logformat_pcre(struct logformat *lf, const char *pattern, char *err,
    size_t errlen)
{
	PCRE2_UCHAR	 msg[256];
	PCRE2_SIZE	 off;
	int		 rc, i;

	lf->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	    PCRE2_DOTALL | PCRE2_ANCHORED | PCRE2_DUPNAMES, &rc, &off, NULL);
	if (lf->code == NULL) {
		pcre2_get_error_message(rc, msg, sizeof msg);
		snprintf(err, errlen, "regex: %s at offset %zu", (char *)msg,
		    (size_t)off);
		return -1;
	}
	for (i = 0; i < G_MAX; i++) {
		rc = pcre2_substring_number_from_name(lf->code,
		    (PCRE2_SPTR)logformat_groups[i]);
		lf->group[i] = rc > 0 ? rc : 0;
	}
	if (lf->group[G_REQUEST] == 0 && lf->group[G_PATH] == 0) {
		snprintf(err, errlen, "format has no request field (%%r, or a "
		    "regex group named \"request\")");
		return -1;
	}
	/* Without W+X memory the interpreter does the same work, slower. */
	lf->jit = pcre2_jit_compile(lf->code, PCRE2_JIT_COMPLETE) == 0;
	if ((lf->md = pcre2_match_data_create_from_pattern(lf->code, NULL))
	    == NULL || (lf->mc = pcre2_match_context_create(NULL)) == NULL) {
		snprintf(err, errlen, "regex: %s", strerror(ENOMEM));
		return -1;
	}
	pcre2_set_depth_limit(lf->mc, LF_DEPTH_LIMIT);
	return 0;
}

/*
 * Keep the fast program only when every lazy token is followed by a
 * literal (where its first-choice end is found with memchr).
 */
static void
logformat_prog_check(struct logformat *lf)
{
	size_t	 i;

	for (i = 0; i < lf->nprog && lf->prog_ok; i++) {
		if (lf->prog[i].kind == OP_LAZY && (i + 1 == lf->nprog ||
		    lf->prog[i + 1].kind != OP_LIT))
			lf->prog_ok = 0;
		/*
		 * A greedy token followed by a literal it could swallow (the
		 * ':' of "%v:%p") always fails its first choice: no program.
		 */
		if ((lf->prog[i].kind == OP_NWS ||
		    lf->prog[i].kind == OP_DIGITS) && i + 1 < lf->nprog &&
		    lf->prog[i + 1].kind == OP_LIT &&
		    !LF_IS_WS(lf->prog[i + 1].c))
			lf->prog_ok = 0;
	}
	if (!lf->prog_ok)
		lf->nprog = 0;
}

struct logformat *
logformat_compile(const char *spec, char *err, size_t errlen)
{
	struct logformat	*lf;
	struct buf		 b = { NULL, 0, 0, 0 };
	const char		*pattern = NULL, *fmt = NULL;
	size_t			 i;
	int			 seen[G_MAX] = { 0 };

	if (spec == NULL)
		spec = "";
	if ((lf = calloc(1, sizeof *lf)) == NULL ||
	    (lf->spec = strdup(spec)) == NULL) {
		snprintf(err, errlen, "format: %s", strerror(errno));
		goto fail;
	}
	if (*spec == '\0' || strcmp(spec, "default") == 0) {
		lf->prog_ok = 1;
		if (logformat_translate(lf, logformat_default_head, &b, seen,
		    err, errlen) == -1)
			goto fail;
		lf->opt = lf->nprog;
		logformat_puts(&b, "(?:");
		if (logformat_translate(lf, logformat_default_tail, &b, seen,
		    err, errlen) == -1)
			goto fail;
		logformat_puts(&b, ")?");
		pattern = b.s;
	} else if (strncmp(spec, "regex:", 6) == 0)
		pattern = spec + 6;
	else if (strchr(spec, '%') != NULL)
		fmt = spec;
	else {
		for (i = 0; i < sizeof logformat_presets /
		    sizeof logformat_presets[0]; i++)
			if (strcmp(spec, logformat_presets[i].name) == 0)
				fmt = logformat_presets[i].format;
		if (fmt == NULL) {
			/* a long spec is cut, so that the list never is */
			snprintf(err, errlen, "format \"%.40s%s\": not a preset "
			    "(default, common, combined, nginx, vhost_common, "
			    "vhost_combined, referer), a LogFormat or "
			    "regex:PATTERN", spec, strlen(spec) > 40 ? "..." : "");
			goto fail;
		}
	}
	if (fmt != NULL) {
		lf->prog_ok = 1;
		if (logformat_translate(lf, fmt, &b, seen, err, errlen) == -1)
			goto fail;
		lf->opt = lf->nprog;
		pattern = b.s != NULL ? b.s : "";
	}
	if (b.nomem) {
		snprintf(err, errlen, "format: %s", strerror(ENOMEM));
		goto fail;
	}
	logformat_prog_check(lf);
	lf->clf = lf_is_clf(lf);
	if (logformat_pcre(lf, pattern, err, errlen) == -1)
		goto fail;
	free(b.s);
	return lf;
fail:
	free(b.s);
	logformat_free(lf);
	return NULL;
}

void
logformat_free(struct logformat *lf)
{
	if (lf == NULL)
		return;
	pcre2_match_context_free(lf->mc);
	pcre2_match_data_free(lf->md);
	pcre2_code_free(lf->code);
	free(lf->spec);
	free(lf);
}

const char *
logformat_spec(const struct logformat *lf)
{
	return lf->spec;
}

int
logformat_has_time(const struct logformat *lf)
{
	return lf->group[G_TIME] != 0;
}

int
logformat_has_status(const struct logformat *lf)
{
	return lf->group[G_STATUS] != 0;
}

int
logformat_jit(const struct logformat *lf)
{
	return lf->jit;
}

int
logformat_fast(const struct logformat *lf)
{
	return lf->nprog == 0 ? 0 : lf->clf ? 2 : 1;
}

/* Group g of the last match into *s, *len; NULL when it did not take part. */
static void
logformat_group(const struct logformat *lf, const PCRE2_SIZE *ov, int rc,
    int g, const char *line, const char **s, size_t *len)
{
	int	 n = lf->group[g];

	*s = NULL;
	*len = 0;
	if (n == 0 || n >= rc || ov[2 * n] == PCRE2_UNSET)
		return;
	*s = line + ov[2 * n];
	*len = ov[2 * n + 1] - ov[2 * n];
}

/*
 * Run the fast program: 1 with the groups in gs/ge, or -1 when PCRE2 has
 * to decide. A failure inside the optional tail before any lazy choice
 * was made means the tail cannot match at all: it is then left out.
 * Two steps are taken without a turn of the loop, as they are most of
 * the program: the literal a lazy token stopped at, and the white space
 * after a token.
 */
static int
logformat_run(const struct logformat *lf, const unsigned char *s,
    size_t len, size_t *gs, size_t *ge)
{
	const struct op	*op;
	const unsigned char *q;
	size_t		 pos = 0, start, i;
	int		 chose = 0;

	for (i = 0; i < lf->nprog; i++) {
		op = &lf->prog[i];
		if (i == lf->opt)
			chose = 0;
		start = pos;
		switch (op->kind) {
		case OP_WS:
			while (pos < len && LF_IS_WS(s[pos]))
				pos++;
			if (pos == start)
				goto fail;
			continue;
		case OP_NWS:
			while (pos < len && !LF_IS_WS(s[pos]))
				pos++;
			if (pos - start < op->min)
				goto fail;
			break;
		case OP_DIGITS:
			while (pos < len && s[pos] >= '0' && s[pos] <= '9')
				pos++;
			if (pos == start)
				goto fail;
			break;
		case OP_LIT:
			if (pos >= len || s[pos] != op->c)
				goto fail;
			pos++;
			break;
		case OP_LAZY:
			chose = 1;
			if (len - pos < op->min)
				goto fail;
			if (i + 2 == lf->nprog && op->group < 0) {
				/*
				 * The program's end, its bytes unused (the
				 * user agent): all that counts is that its
				 * literal comes, and it usually ends the line.
				 */
				for (q = s + len; q > s + pos + op->min &&
				    q[-1] != lf->prog[i + 1].c; q--)
					;
				if (q == s + pos + op->min)
					goto fail;
				pos = (size_t)(q - 1 - s);
				break;
			}
			if ((q = memchr(s + pos + op->min, lf->prog[i + 1].c,
			    len - pos - op->min)) == NULL)
				goto fail;
			pos = (size_t)(q - s);
			break;
		case OP_REST:
			if (pos >= len)
				goto fail;
			pos = len;
			break;
		}
		if (op->group >= 0) {
			gs[op->group] = start;
			ge[op->group] = pos;
		}
		if (op->kind == OP_LAZY) {
			/* The literal after it is at pos: memchr found it. */
			if (++i == lf->opt)
				chose = 0;
			pos++;
		}
		if (i + 1 < lf->nprog && lf->prog[i + 1].kind == OP_WS) {
			if (++i == lf->opt)
				chose = 0;
			start = pos;
			while (pos < len && LF_IS_WS(s[pos]))
				pos++;
			if (pos == start)
				goto fail;
		}
	}
	return 1;
fail:
	if (i >= lf->opt && !chose) {
		/* The optional tail cannot start here: the match ends before. */
		for (; i > lf->opt; i--)
			if (lf->prog[i - 1].group >= 0)
				gs[lf->prog[i - 1].group] = SIZE_MAX;
		return 1;
	}
	return -1;
}

/*
 * The Common head and the referer-and-agent tail, the programs of the
 * presets (default, common, combined, nginx) nearly every log is read
 * with: the same steps as logformat_run, written out for them, without
 * a turn of the loop and a switch for each token.
 */
static const struct op lf_clf[] = {
	{ OP_NWS, 1, 0, -1 }, { OP_WS, 1, 0, -1 },
	{ OP_NWS, 1, 0, -1 }, { OP_WS, 1, 0, -1 },
	{ OP_NWS, 1, 0, -1 }, { OP_WS, 1, 0, -1 },
	{ OP_LIT, 1, '[', -1 }, { OP_LAZY, 1, 0, G_TIME },
	{ OP_LIT, 1, ']', -1 }, { OP_WS, 1, 0, -1 },
	{ OP_LIT, 1, '"', -1 }, { OP_LAZY, 1, 0, G_REQUEST },
	{ OP_LIT, 1, '"', -1 }, { OP_WS, 1, 0, -1 },
	{ OP_DIGITS, 1, 0, G_STATUS }, { OP_WS, 1, 0, -1 },
	{ OP_NWS, 1, 0, -1 },
	/* the tail */
	{ OP_WS, 1, 0, -1 }, { OP_LIT, 1, '"', -1 },
	{ OP_LAZY, 0, 0, G_REFERER }, { OP_LIT, 1, '"', -1 },
	{ OP_WS, 1, 0, -1 }, { OP_LIT, 1, '"', -1 },
	{ OP_LAZY, 1, 0, -1 }, { OP_LIT, 1, '"', -1 },
};
#define LF_CLF_HEAD	17
#define LF_CLF_ALL	(sizeof lf_clf / sizeof lf_clf[0])

/* 1 when the program is lf_clf's head, alone or with its tail. */
static int
lf_is_clf(const struct logformat *lf)
{
	size_t	 i;

	if (lf->nprog != LF_CLF_HEAD && lf->nprog != LF_CLF_ALL)
		return 0;
	for (i = 0; i < lf->nprog; i++)
		if (lf->prog[i].kind != lf_clf[i].kind ||
		    lf->prog[i].min != lf_clf[i].min ||
		    lf->prog[i].c != lf_clf[i].c ||
		    lf->prog[i].group != lf_clf[i].group)
			return 0;
	return 1;
}

/* Past a run of white space (ws) or of other bytes; -1 when empty. */
static inline int
lf_step(const unsigned char *s, size_t *pp, size_t len, int ws)
{
	size_t	 p = *pp;

	if (ws)
		while (p < len && LF_IS_WS(s[p]))
			p++;
	else
		while (p < len && !LF_IS_WS(s[p]))
			p++;
	if (p == *pp)
		return -1;
	*pp = p;
	return 0;
}

/*
 * Past "open", one byte or more, then the first "close" after them (a
 * literal, a lazy group and its literal); the group's bounds into *gs,
 * *ge. -1 when the line does not have them.
 */
static inline int
lf_enclosed(const unsigned char *s, size_t *pp, size_t len, int open,
    int close, size_t *gs, size_t *ge)
{
	const unsigned char	*q;
	size_t			 p = *pp;

	if (len - p < 2 || s[p] != open ||
	    (q = memchr(s + p + 2, close, len - p - 2)) == NULL)
		return -1;
	*gs = p + 1;
	*ge = (size_t)(q - s);
	*pp = *ge + 1;
	return 0;
}

/*
 * logformat_run for lf_clf: opt is where the optional part starts
 * (LF_CLF_HEAD: the tail may be missing; the program's length: none).
 */
static int
lf_run_clf(const struct logformat *lf, const unsigned char *s, size_t len,
    size_t *gs, size_t *ge)
{
	const unsigned char	*q;
	size_t			 p = 0, st;
	int			 k;

	for (k = 0; k < 3; k++)
		if (lf_step(s, &p, len, 0) == -1 || lf_step(s, &p, len, 1) == -1)
			return -1;
	if (lf_enclosed(s, &p, len, '[', ']', &gs[G_TIME], &ge[G_TIME]) ==
	    -1 || lf_step(s, &p, len, 1) == -1 ||
	    lf_enclosed(s, &p, len, '"', '"', &gs[G_REQUEST],
	    &ge[G_REQUEST]) == -1 || lf_step(s, &p, len, 1) == -1)
		return -1;
	for (st = p; p < len && s[p] >= '0' && s[p] <= '9'; p++)
		;
	if (p == st)
		return -1;
	gs[G_STATUS] = st;
	ge[G_STATUS] = p;
	if (lf_step(s, &p, len, 1) == -1 || lf_step(s, &p, len, 0) == -1)
		return -1;
	if (lf->nprog == LF_CLF_HEAD)
		return 1;
	/* The tail: missing (when optional) until its first lazy choice. */
	if (lf_step(s, &p, len, 1) == -1 || p == len || s[p] != '"')
		return lf->opt == LF_CLF_HEAD ? 1 : -1;
	p++;
	if ((q = memchr(s + p, '"', len - p)) == NULL)
		return -1;
	gs[G_REFERER] = p;
	ge[G_REFERER] = (size_t)(q - s);
	p = (size_t)(q - s) + 1;
	if (lf_step(s, &p, len, 1) == -1 || p == len || s[p] != '"')
		return -1;
	/* The agent's bytes are not used: only that its '"' comes. */
	for (q = s + len; q > s + p + 2 && q[-1] != '"'; q--)
		;
	return q > s + p + 2 ? 1 : -1;
}

/* Set the fields of a from group bounds (start SIZE_MAX: absent). */
static void
logformat_fields(const struct logformat *lf, const char *line,
    const size_t *gs, const size_t *ge, struct access *a)
{
	const char	**f[G_MAX] = { &a->request, &a->time, &a->status,
	    &a->referer, &a->path };
	size_t		 *l[G_MAX] = { &a->request_len, &a->time_len,
	    &a->status_len, &a->referer_len, &a->path_len };
	int		  g;

	(void)lf;
	for (g = 0; g < G_MAX; g++) {
		if (gs[g] == SIZE_MAX) {
			*f[g] = NULL;
			*l[g] = 0;
		} else {
			*f[g] = line + gs[g];
			*l[g] = ge[g] - gs[g];
		}
	}
}

int
logformat_match(struct logformat *lf, const char *line, size_t len,
    struct access *a)
{
	PCRE2_SIZE	*ov;
	size_t		 gs[G_MAX], ge[G_MAX];
	uint32_t	 steps;
	int		 rc, g;

	if (lf->nprog > 0) {
		for (g = 0; g < G_MAX; g++)
			gs[g] = SIZE_MAX;
		if ((lf->clf ? lf_run_clf(lf, (const unsigned char *)line, len,
		    gs, ge) : logformat_run(lf, (const unsigned char *)line, len,
		    gs, ge)) == 1) {
			logformat_fields(lf, line, gs, ge, a);
			return 1;
		}
	}

	/* Over LF_MATCH_* steps (or too deep): no match, the line is odd. */
	steps = len > (UINT32_MAX - LF_MATCH_BASE) / LF_MATCH_PER_BYTE ?
	    UINT32_MAX : (uint32_t)(LF_MATCH_BASE + LF_MATCH_PER_BYTE * len);
	pcre2_set_match_limit(lf->mc, steps);
	if (lf->jit)
		rc = pcre2_jit_match(lf->code, (PCRE2_SPTR)line, len, 0, 0,
		    lf->md, lf->mc);
	else
		rc = pcre2_match(lf->code, (PCRE2_SPTR)line, len, 0, 0, lf->md,
		    lf->mc);
	if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_MATCHLIMIT ||
	    rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
	    rc == PCRE2_ERROR_JIT_STACKLIMIT)
		return 0;
	if (rc < 0)
		return -1;
	if (rc == 0)
		rc = (int)pcre2_get_ovector_count(lf->md);
	ov = pcre2_get_ovector_pointer(lf->md);
	logformat_group(lf, ov, rc, G_REQUEST, line, &a->request,
	    &a->request_len);
	logformat_group(lf, ov, rc, G_TIME, line, &a->time, &a->time_len);
	logformat_group(lf, ov, rc, G_STATUS, line, &a->status,
	    &a->status_len);
	logformat_group(lf, ov, rc, G_REFERER, line, &a->referer,
	    &a->referer_len);
	logformat_group(lf, ov, rc, G_PATH, line, &a->path, &a->path_len);
	return 1;
}

/* One cached format and when it was last used. */
struct lfc_entry {
	struct logformat	*lf;
	uint64_t		 used;
};

struct logformat_cache {
	struct lfc_entry	*e;
	size_t			 n, max;
	uint64_t		 clock;
};

struct logformat_cache *
logformat_cache_new(size_t max)
{
	struct logformat_cache	*c;

	if (max == 0)
		max = 1;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if ((c->e = calloc(max, sizeof *c->e)) == NULL) {
		free(c);
		return NULL;
	}
	c->max = max;
	return c;
}

void
logformat_cache_free(struct logformat_cache *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		logformat_free(c->e[i].lf);
	free(c->e);
	free(c);
}

/*
 * The compiled format for spec, compiled on first use; when the cache is
 * full the least recently used format is freed (a pointer returned before
 * stays valid until max other specs have been asked for).
 */
struct logformat *
logformat_cache_get(struct logformat_cache *c, const char *spec, char *err,
    size_t errlen)
{
	struct logformat	*lf;
	size_t			 i, victim = 0;

	if (spec == NULL)
		spec = "";
	for (i = 0; i < c->n; i++) {
		if (strcmp(c->e[i].lf->spec, spec) == 0) {
			c->e[i].used = ++c->clock;
			return c->e[i].lf;
		}
	}
	if ((lf = logformat_compile(spec, err, errlen)) == NULL)
		return NULL;
	if (c->n < c->max)
		victim = c->n++;
	else {
		for (i = 1; i < c->n; i++)
			if (c->e[i].used < c->e[victim].used)
				victim = i;
		logformat_free(c->e[victim].lf);
	}
	c->e[victim].lf = lf;
	c->e[victim].used = ++c->clock;
	return lf;
}
