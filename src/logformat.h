/*
 * logformat.h: a log format spec compiled to a JIT-compiled PCRE2 pattern.
 *
 * A spec is one of
 *   NULL, "" or "default"  Common or Combined, extra trailing fields ignored
 *   a preset name          "common", "combined" (and its alias "nginx"),
 *                          "vhost_combined", "vhost_common", "referer"
 *   an Apache LogFormat    anything containing '%', e.g.
 *                          "%h %l %u %t \"%r\" %>s %b"
 *   "regex:PATTERN"        a raw PCRE2 pattern with named groups
 * The pattern must yield a "request" group (the %r field); "time" (%t),
 * "status" (%s, %>s), "host", "bytes" and others are used when present.
 * Spaces in a LogFormat match one or more white space characters; a
 * match starts at the beginning of the line (like Python's re.match) and
 * need not reach its end (extra fields are ignored). A format without
 * %r but with %U (the "referer" preset) takes the path from %U; one with
 * neither is refused. \" and \\ in a LogFormat stand for " and \.
 */
#ifndef CLFD_LOGFORMAT_H
#define CLFD_LOGFORMAT_H

#include <stddef.h>
#include <stdint.h>

struct logformat;

/* One parsed line; pointers point into the line or into lf's scratch. */
struct access {
	const char	*request;	/* %r as logged */
	size_t		 request_len;
	const char	*time;		/* %t without brackets, NULL if absent */
	size_t		 time_len;
	const char	*status;	/* NULL if absent */
	size_t		 status_len;
	const char	*referer;	/* %{Referer}i, NULL if absent */
	size_t		 referer_len;
	const char	*path;		/* %U when the format has no %r */
	size_t		 path_len;
};

/* Compile spec; NULL with a message in err on error. */
struct logformat	*logformat_compile(const char *spec, char *err, size_t errlen);
void			 logformat_free(struct logformat *);
const char		*logformat_spec(const struct logformat *);
int			 logformat_has_time(const struct logformat *);
int			 logformat_has_status(const struct logformat *);
/* 1 when the pattern is JIT-compiled, 0 when the interpreter runs it. */
int			 logformat_jit(const struct logformat *);
/*
 * Nonzero when a translated format's fast matcher runs before PCRE2: 2
 * when it is the presets' (Common, with or without the referer and agent
 * tail) written out, 1 for any other program.
 */
int			 logformat_fast(const struct logformat *);

/*
 * 1 when line matches (fields filled in), 0 when not (also when PCRE2 gives
 * up: a bounded number of steps a line, linear in its length), -1 on error.
 */
int			 logformat_match(struct logformat *, const char *line, size_t len,
			    struct access *);

/* A small cache of compiled formats keyed by spec, for long-lived workers. */
struct logformat_cache;
struct logformat_cache	*logformat_cache_new(size_t max);
void			 logformat_cache_free(struct logformat_cache *);
struct logformat	*logformat_cache_get(struct logformat_cache *, const char *spec,
			    char *err, size_t errlen);

#endif
