/*
 * request.c: a submit request's fields, checked and made plain C.
 *
 * Patterns must be absolute, at most patterns_max of them, and their
 * brace groups may not make more than that (glob(3) expands every
 * alternative, files or not); the filter is checked by compiling it
 * (filter.c) and kept as its canonical text; format, top and cache are
 * checked for their types only. No I/O and no daemon state: the config
 * comes with each call.
 */
#include "request.h"

#include "config.h"
#include "filter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#define REQ_BRACE_DEPTH		32	/* braces nested deeper are refused */

static enum errcode
req_err(char *msg, size_t msglen, enum errcode code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum errcode
req_err(char *msg, size_t msglen, enum errcode code, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return code;
}

void
request_field_msg(char *msg, size_t msglen, const char *field,
    const char *why)
{
	size_t	n = strlen(field);

	if (strncmp(why, field, n) == 0 && strchr(":.[ ", why[n]) != NULL &&
	    why[n] != '\0')
		snprintf(msg, msglen, "%s", why);
	else
		snprintf(msg, msglen, "%s: %s", field, why);
}

/* a + b and a * b, at most max (a, b >= 1). */
static size_t
req_sat_add(size_t a, size_t b, size_t max)
{
	return a >= max || b >= max - a ? max : a + b;
}

static size_t
req_sat_mul(size_t a, size_t b, size_t max)
{
	return a >= max || b >= max || a > max / b ? max : a * b;
}

/*
 * The number of patterns glob(3) makes of p with GLOB_BRACE, up to max:
 * a brace group is the sum of its alternatives, a sequence the product
 * of its groups (glob expands each one, whether or not files exist, so
 * a pattern like "{a,b}{a,b}..." costs 2^N globs). A backslash quotes the
 * next byte; an unclosed brace is counted as if closed at the end (too
 * many at worst). -1 when braces nest deeper than REQ_BRACE_DEPTH.
 */
static ssize_t
req_brace_count(const char *p, size_t max)
{
	size_t	outer[REQ_BRACE_DEPTH], sum[REQ_BRACE_DEPTH], cur = 1;
	size_t	depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '{') {
			if (depth == REQ_BRACE_DEPTH)
				return -1;
			outer[depth] = cur;
			sum[depth++] = 0;
			cur = 1;
		} else if (*p == ',' && depth > 0) {
			sum[depth - 1] = req_sat_add(sum[depth - 1], cur, max);
			cur = 1;
		} else if (*p == '}' && depth > 0) {
			depth--;
			cur = req_sat_mul(outer[depth],
			    req_sat_add(sum[depth], cur, max), max);
		}
	}
	while (depth > 0) {
		depth--;
		cur = req_sat_mul(outer[depth],
		    req_sat_add(sum[depth], cur, max), max);
	}
	return (ssize_t)cur;
}

/* "patterns": absolute, not too many, not by their braces either. */
static enum errcode
req_patterns(const json_t *v, const struct config *cfg,
    struct submit_req *sr, char *msg, size_t msglen)
{
	size_t	 i, n, total = 0, max;
	ssize_t	 k;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return req_err(msg, msglen, ERRC_BAD_FIELD, "patterns: a "
		    "non-empty array of strings is required");
	n = json_array_size(v);
	if (n > cfg->patterns_max)
		return req_err(msg, msglen, ERRC_LIMIT, "patterns: more than "
		    "%zu (patterns_max)", cfg->patterns_max);
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(v, i));

		if (s == NULL || s[0] != '/' ||
		    strlen(s) != json_string_length(json_array_get(v, i)))
			return req_err(msg, msglen, ERRC_BAD_FIELD,
			    "patterns[%zu]: an absolute path pattern is "
			    "required", i);
	}
	/*
	 * Brace expansion multiplies patterns before glob(3) looks at a
	 * single file: count what it would make, here, where it is cheap.
	 */
	max = cfg->patterns_max + 1;
	for (i = 0; i < n; i++) {
		k = req_brace_count(json_string_value(json_array_get(v, i)),
		    max);
		if (k == -1)
			return req_err(msg, msglen, ERRC_LIMIT, "patterns[%zu]: "
			    "braces nested more than %d deep", i,
			    REQ_BRACE_DEPTH);
		total = req_sat_add(total, (size_t)k, max);
	}
	if (total > cfg->patterns_max)
		return req_err(msg, msglen, ERRC_LIMIT, "patterns: brace "
		    "expansion makes more than %zu pattern%s (patterns_max)",
		    cfg->patterns_max, cfg->patterns_max == 1 ? "" : "s");
	if ((sr->patterns = calloc(n + 1, sizeof *sr->patterns)) == NULL)
		return ERRC_INTERNAL;
	for (i = 0; i < n; i++)
		if ((sr->patterns[i] = strdup(json_string_value(
		    json_array_get(v, i)))) == NULL)
			return ERRC_INTERNAL;
	sr->npatterns = n;
	return ERRC_NONE;
}

/*
 * "filter": an object (or none), the config's excludes added where it
 * has none; compiled once to check it, kept as its canonical text.
 */
static enum errcode
req_filter(const json_t *v, const struct config *cfg,
    struct submit_req *sr, char *msg, size_t msglen)
{
	struct filter	*flt;
	json_t		*f;
	char		 why[200];

	if (v != NULL && !json_is_null(v) && !json_is_object(v))
		return req_err(msg, msglen, ERRC_BAD_FIELD, "filter: an object "
		    "is required");
	if ((f = json_is_object(v) ? json_deep_copy(v) : json_object()) == NULL)
		return ERRC_INTERNAL;
	if (filter_add_defaults(f, (const char *const *)cfg->exclude_names,
	    (const char *const *)cfg->exclude_exts) == -1) {
		json_decref(f);
		return ERRC_INTERNAL;
	}
	if ((flt = filter_from_json(f, why, sizeof why)) == NULL) {
		json_decref(f);
		request_field_msg(msg, msglen, "filter", why);
		return ERRC_BAD_FIELD;
	}
	sr->needs = (uint32_t)filter_needs(flt);
	filter_free(flt);
	/*
	 * The filter's members in key order, as a partial's settings hold
	 * them: a result's "filter" is then the same whether a daemon or
	 * clfctl merge (from the partials alone) writes it.
	 */
	sr->filter = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(f);
	return sr->filter != NULL ? ERRC_NONE : ERRC_INTERNAL;
}

/* The fields but patterns and filter: their types only. */
static enum errcode
req_scalars(const json_t *req, const struct config *cfg,
    struct submit_req *sr, char *msg, size_t msglen)
{
	json_t	*v;

	v = json_object_get(req, "format");
	if (v != NULL && !json_is_null(v) && !json_is_string(v))
		return req_err(msg, msglen, ERRC_BAD_FIELD, "format: a string "
		    "is required");
	/* (compiled by the expansion, in a worker: see PROTO_EXPAND) */
	if ((sr->format = strdup(json_is_string(v) ? json_string_value(v) :
	    cfg->format)) == NULL)
		return ERRC_INTERNAL;

	v = json_object_get(req, "top");
	if (v != NULL && !json_is_null(v) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0))
		return req_err(msg, msglen, ERRC_BAD_FIELD, "top: an integer >= "
		    "0 is required");
	sr->top = json_is_integer(v) ? (size_t)json_integer_value(v) : 0;

	v = json_object_get(req, "cache");
	if (v != NULL && !json_is_null(v) && !json_is_boolean(v))
		return req_err(msg, msglen, ERRC_BAD_FIELD, "cache: true or "
		    "false is required");
	sr->no_cache = json_is_false(v);
	return ERRC_NONE;
}

enum errcode
request_submit(const struct json_t *req, const struct config *cfg,
    struct submit_req *sr, char *msg, size_t msglen)
{
	enum errcode	code;

	memset(sr, 0, sizeof *sr);
	if ((code = req_patterns(json_object_get(req, "patterns"), cfg, sr,
	    msg, msglen)) == ERRC_NONE &&
	    (code = req_filter(json_object_get(req, "filter"), cfg, sr, msg,
	    msglen)) == ERRC_NONE)
		code = req_scalars(req, cfg, sr, msg, msglen);
	if (code == ERRC_INTERNAL)
		snprintf(msg, msglen, "out of memory");
	if (code != ERRC_NONE)
		request_free(sr);
	return code;
}

void
request_free(struct submit_req *sr)
{
	size_t	i;

	for (i = 0; sr->patterns != NULL && sr->patterns[i] != NULL; i++)
		free(sr->patterns[i]);
	free(sr->patterns);
	free(sr->filter);
	free(sr->format);
	memset(sr, 0, sizeof *sr);
}
