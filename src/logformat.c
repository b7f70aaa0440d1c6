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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "logformat.h"

#define WS	"[\\t-\\r \\x1c-\\x1f]"
#define NWS	"[^\\t-\\r \\x1c-\\x1f]"

/* The fields the engine reads from a match. */
enum { G_REQUEST, G_TIME, G_STATUS, G_REFERER, G_PATH, G_MAX };
static const char *const logformat_groups[G_MAX] = {
	"request", "time", "status", "referer", "path"
};

struct logformat {
	char			*spec;
	pcre2_code		*code;
	pcre2_match_data	*md;
	int			 jit;
	int			 group[G_MAX];	/* capture numbers, 0: absent */
};

/* The default: the seed's any_pat. */
static const char logformat_default[] =
	"(?<host>" NWS "+)" WS "+(?<ident>" NWS "+)" WS "+(?<user>" NWS "+)"
	WS "+\\[(?<time>.+?)\\]" WS "+\"(?<request>.+?)\"" WS "+"
	"(?<status>\\d+)" WS "+(?<bytes>" NWS "+)"
	"(?:" WS "+\"(?<referer>.*?)\"" WS "+\"(?<user_agent>.+?)\")?";

static const struct {
	const char	*name;
	const char	*format;
} logformat_presets[] = {
	{ "common", "%h %l %u %t \"%r\" %>s %b" },
	{ "combined", "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" "
	    "\"%{User-Agent}i\"" },
	{ "vhost_common", "%v %h %l %u %t \"%r\" %>s %b" },
	{ "vhost_combined", "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" "
	    "\"%{User-Agent}i\"" },
	{ "referer", "%{Referer}i -> %U" },
	{ "agent", "%{User-agent}i" },
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
 * Translate an Apache LogFormat string. A run of literal white space
 * matches one or more white space characters; directives become groups
 * (see logformat.h); %{Name}i, %{Name}e and friends match ".*?" inside
 * double quotes (Referer may be empty; User-Agent uses ".+?" as the seed
 * does) and a single token outside them.
 */
static int
logformat_translate(const char *fmt, struct buf *b, char *err, size_t errlen)
{
	const char	*p = fmt, *name = NULL;
	size_t		 namelen = 0;
	int		 quoted = 0, seen[G_MAX] = { 0 };
	char		 d;

	while (*p != '\0') {
		if (*p == ' ' || *p == '\t') {
			while (*p == ' ' || *p == '\t')
				p++;
			logformat_puts(b, WS "+");
			continue;
		}
		if (*p != '%') {
			if (*p == '"')
				quoted = !quoted;
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
		switch (d) {
		case '%':
			logformat_puts(b, "%");
			continue;
		case 'h':
			logformat_puts(b, "(?<host>" NWS "+)");
			continue;
		case 'l':
			logformat_puts(b, "(?<ident>" NWS "+)");
			continue;
		case 'u':
			logformat_puts(b, "(?<user>" NWS "+)");
			continue;
		case 'a': case 'A': case 'V': case 'L': case 'R': case 'f':
		case 'H': case 'm':
			logformat_puts(b, NWS "+");
			continue;
		case 'v':
			logformat_puts(b, "(?<vhost>" NWS "+)");
			continue;
		case 'b':
			logformat_puts(b, "(?<bytes>" NWS "+)");
			continue;
		case 'B': case 'D': case 'T': case 'p': case 'P': case 'I':
		case 'O': case 'S': case 'k':
			logformat_puts(b, "\\d+");
			continue;
		case 'X':
			logformat_puts(b, "[-+X]");
			continue;
		case 'q':
			logformat_puts(b, NWS "*");
			continue;
		case 't':
			if (name != NULL) {
				logformat_puts(b, ".+?");
				continue;
			}
			if (seen[G_TIME]++)
				break;
			logformat_puts(b, "\\[(?<time>.+?)\\]");
			continue;
		case 'r':
			if (seen[G_REQUEST]++)
				break;
			/* Last in the format: nothing to stop a lazy match. */
			logformat_puts(b, *p == '\0' ? "(?<request>.+)" :
			    "(?<request>.+?)");
			continue;
		case 's':
			if (seen[G_STATUS]++)
				break;
			logformat_puts(b, "(?<status>\\d+)");
			continue;
		case 'U':
			if (seen[G_PATH]++)
				break;
			logformat_puts(b, "(?<path>" NWS "+)");
			continue;
		case 'i': case 'e': case 'n': case 'o': case 'C':
			if (name == NULL)
				break;
			if (d == 'i' && logformat_name_is(name, namelen,
			    "Referer") && !seen[G_REFERER]++)
				logformat_puts(b, quoted ? "(?<referer>.*?)" :
				    "(?<referer>" NWS "+)");
			else if (d == 'i' && logformat_name_is(name, namelen,
			    "User-Agent"))
				logformat_puts(b, quoted ?
				    "(?<user_agent>.+?)" : NWS "+");
			else
				logformat_puts(b, quoted ? ".*?" : NWS "+");
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
	    == NULL) {
		snprintf(err, errlen, "regex: %s", strerror(ENOMEM));
		return -1;
	}
	return 0;
}

struct logformat *
logformat_compile(const char *spec, char *err, size_t errlen)
{
	struct logformat	*lf;
	struct buf		 b = { NULL, 0, 0, 0 };
	const char		*pattern = NULL, *fmt = NULL;
	size_t			 i;

	if (spec == NULL)
		spec = "";
	if ((lf = calloc(1, sizeof *lf)) == NULL ||
	    (lf->spec = strdup(spec)) == NULL) {
		snprintf(err, errlen, "format: %s", strerror(errno));
		goto fail;
	}
	if (*spec == '\0' || strcmp(spec, "default") == 0)
		pattern = logformat_default;
	else if (strncmp(spec, "regex:", 6) == 0)
		pattern = spec + 6;
	else if (strchr(spec, '%') != NULL)
		fmt = spec;
	else {
		for (i = 0; i < sizeof logformat_presets /
		    sizeof logformat_presets[0]; i++)
			if (strcmp(spec, logformat_presets[i].name) == 0)
				fmt = logformat_presets[i].format;
		if (fmt == NULL) {
			snprintf(err, errlen, "format \"%s\": not a preset "
			    "(default, common, combined, vhost_common, "
			    "vhost_combined, referer, agent), a LogFormat or "
			    "regex:PATTERN", spec);
			goto fail;
		}
	}
	if (fmt != NULL) {
		if (logformat_translate(fmt, &b, err, errlen) == -1)
			goto fail;
		pattern = b.s != NULL ? b.s : "";
	}
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

int
logformat_match(struct logformat *lf, const char *line, size_t len,
    struct access *a)
{
	PCRE2_SIZE	*ov;
	int		 rc;

	if (lf->jit)
		rc = pcre2_jit_match(lf->code, (PCRE2_SPTR)line, len, 0, 0,
		    lf->md, NULL);
	else
		rc = pcre2_match(lf->code, (PCRE2_SPTR)line, len, 0, 0, lf->md,
		    NULL);
	if (rc == PCRE2_ERROR_NOMATCH)
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
