/*
 * filter.c: which parsed lines are counted.
 *
 * A filter is built once per job from JSON and then only read: the path
 * checks walk the path's '/'-segments in place and allocate nothing, the
 * line checks compare a method, a status and a time against short lists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "filter.h"

const char *const filter_default_names[] = {
	"favicon.ico", "robots.txt", "humans.txt", "crossdomain.xml",
	"_images", "search.html", "genindex.html", "searchindex.js",
	"modindex.html", "py-modindex.html", NULL
};

const char *const filter_default_exts[] = { ".png", ".js", ".css", NULL };

/* A list of byte strings with their lengths. */
struct strv {
	char	**v;
	size_t	 *len;
	size_t	  n;
};

/* A status code (404) or a class (4xx: code 4, cls 1). */
struct status {
	int	code;
	int	cls;
};

struct filter {
	struct strv	 names;
	uint64_t	 name_lens;	/* bit n: a name of length n (< 64) */
	int		 long_names;	/* a name of 64 bytes or more */
	struct strv	 exts;
	struct strv	 under;		/* the non-empty segments of under */
	int		 has_under;
	int		 keep_root;	/* exclude_root: false */
	struct strv	 methods;
	struct status	*status;
	size_t		 nstatus;
	int		 has_since, has_until;
	int64_t		 since, until;
	int		 needs;
};

static void
filter_strv_free(struct strv *sv)
{
	size_t	 i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	free(sv->len);
	memset(sv, 0, sizeof *sv);
}

/* Append a copy of s[0..len) to sv. */
static int
filter_strv_add(struct strv *sv, const char *s, size_t len)
{
	char	**nv;
	size_t	 *nl;

	if ((nv = realloc(sv->v, (sv->n + 1) * sizeof *nv)) == NULL)
		return -1;
	sv->v = nv;
	if ((nl = realloc(sv->len, (sv->n + 1) * sizeof *nl)) == NULL)
		return -1;
	sv->len = nl;
	if ((sv->v[sv->n] = malloc(len + 1)) == NULL)
		return -1;
	memcpy(sv->v[sv->n], s, len);
	sv->v[sv->n][len] = '\0';
	sv->len[sv->n++] = len;
	return 0;
}

static int
filter_strv_from_list(struct strv *sv, const char *const *list)
{
	for (; *list != NULL; list++)
		if (filter_strv_add(sv, *list, strlen(*list)) == -1)
			return -1;
	return 0;
}

/* A JSON array of the strings of a NULL-terminated vector; NULL on ENOMEM. */
static json_t *
filter_list_json(const char *const *v)
{
	json_t	*a;
	size_t	 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; v != NULL && v[i] != NULL; i++)
		if (json_array_append_new(a, json_string(v[i])) == -1) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int
filter_add_defaults(json_t *spec, const char *const *names,
    const char *const *exts)
{
	if (json_object_get(spec, "exclude_names") == NULL &&
	    json_object_set_new(spec, "exclude_names",
	    filter_list_json(names)) == -1)
		return -1;
	if (json_object_get(spec, "exclude_exts") == NULL &&
	    json_object_set_new(spec, "exclude_exts",
	    filter_list_json(exts)) == -1)
		return -1;
	return 0;
}

/*
 * An array of non-empty strings from field name of spec into sv; when the
 * field is absent, the default list (if any).
 */
static int
filter_strv_json(struct strv *sv, const json_t *spec, const char *name,
    const char *const *def, char *err, size_t errlen)
{
	const json_t	*a, *s;
	size_t		 i;

	if ((a = json_object_get(spec, name)) == NULL) {
		if (def != NULL && filter_strv_from_list(sv, def) == -1)
			goto nomem;
		return 0;
	}
	if (!json_is_array(a)) {
		snprintf(err, errlen, "filter.%s: must be an array of strings",
		    name);
		return -1;
	}
	json_array_foreach(a, i, s) {
		if (!json_is_string(s) || json_string_length(s) == 0) {
			snprintf(err, errlen,
			    "filter.%s[%zu]: must be a non-empty string", name, i);
			return -1;
		}
		/* a segment never holds '/': such a name would match nothing */
		if (def != NULL && memchr(json_string_value(s), '/',
		    json_string_length(s)) != NULL) {
			snprintf(err, errlen, "filter.%s[%zu]: \"%s\" has a '/' "
			    "(a name is one path segment; see under)", name, i,
			    json_string_value(s));
			return -1;
		}
		if (filter_strv_add(sv, json_string_value(s),
		    json_string_length(s)) == -1)
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "filter.%s: %s", name, strerror(errno));
	return -1;
}

/* "/book/x" -> its non-empty segments "book", "x". */
static int
filter_under(struct filter *f, const char *s, size_t len)
{
	size_t	 i = 0, j;

	f->has_under = 1;
	while (i < len) {
		if (s[i] == '/') {
			i++;
			continue;
		}
		for (j = i; j < len && s[j] != '/'; j++)
			;
		if (filter_strv_add(&f->under, s + i, j - i) == -1)
			return -1;
		i = j;
	}
	return 0;
}

/* One status entry: 404, "404" or "4xx". */
static int
filter_status_one(struct status *st, const json_t *v)
{
	const char	*s;
	json_int_t	 n;

	if (json_is_integer(v)) {
		n = json_integer_value(v);
		if (n < 100 || n > 999)
			return -1;
		st->code = (int)n;
		st->cls = 0;
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) != 3)
		return -1;
	s = json_string_value(v);
	if (s[0] < '1' || s[0] > '9')
		return -1;
	if ((s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X')) {
		st->code = s[0] - '0';
		st->cls = 1;
		return 0;
	}
	if (s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
		return -1;
	st->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	st->cls = 0;
	return 0;
}

static int
filter_status(struct filter *f, const json_t *a, char *err, size_t errlen)
{
	const json_t	*v;
	size_t		 i;

	if (!json_is_array(a)) {
		snprintf(err, errlen, "filter.status: must be an array");
		return -1;
	}
	if ((f->status = calloc(json_array_size(a) + 1, sizeof *f->status))
	    == NULL) {
		snprintf(err, errlen, "filter.status: %s", strerror(errno));
		return -1;
	}
	json_array_foreach(a, i, v) {
		if (filter_status_one(&f->status[i], v) == -1) {
			snprintf(err, errlen, "filter.status[%zu]: must be a "
			    "status code like 404 or \"404\" or a class like "
			    "\"4xx\"", i);
			return -1;
		}
	}
	f->nstatus = json_array_size(a);
	return 0;
}

/* since/until: integer UTC seconds or "YYYY-MM-DDTHH:MM:SSZ". */
static int
filter_time(const json_t *v, int64_t *t)
{
	if (json_is_integer(v)) {
		*t = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v))
		return access_iso_time(json_string_value(v),
		    json_string_length(v), t);
	return -1;
}

struct filter *
filter_from_json(const json_t *spec, char *err, size_t errlen)
{
	static const char *const known[] = { "under", "exclude_names",
	    "exclude_exts", "exclude_root", "status", "methods", "since",
	    "until", NULL };
	struct filter	*f;
	const char	*key;
	const json_t	*v;
	size_t		 i;

	if ((f = calloc(1, sizeof *f)) == NULL) {
		snprintf(err, errlen, "filter: %s", strerror(errno));
		return NULL;
	}
	if (spec != NULL && !json_is_object(spec)) {
		snprintf(err, errlen, "filter: must be an object");
		goto fail;
	}
	json_object_foreach((json_t *)(uintptr_t)spec, key, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (known[i] == NULL) {
			snprintf(err, errlen, "filter.%s: unknown field", key);
			goto fail;
		}
	}
	if (filter_strv_json(&f->names, spec, "exclude_names",
	    filter_default_names, err, errlen) == -1 ||
	    filter_strv_json(&f->exts, spec, "exclude_exts",
	    filter_default_exts, err, errlen) == -1 ||
	    filter_strv_json(&f->methods, spec, "methods", NULL, err,
	    errlen) == -1)
		goto fail;
	for (i = 0; i < f->names.n; i++) {
		if (f->names.len[i] < 64)
			f->name_lens |= 1ULL << f->names.len[i];
		else
			f->long_names = 1;
	}
	if ((v = json_object_get(spec, "exclude_root")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(err, errlen,
			    "filter.exclude_root: must be true or false");
			goto fail;
		}
		f->keep_root = json_is_false(v);
	}
	if ((v = json_object_get(spec, "under")) != NULL) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "filter.under: must be a string");
			goto fail;
		}
		if (filter_under(f, json_string_value(v),
		    json_string_length(v)) == -1) {
			snprintf(err, errlen, "filter.under: %s",
			    strerror(errno));
			goto fail;
		}
	}
	if ((v = json_object_get(spec, "status")) != NULL) {
		if (filter_status(f, v, err, errlen) == -1)
			goto fail;
		if (f->nstatus > 0)
			f->needs |= FILTER_NEEDS_STATUS;
	}
	if ((v = json_object_get(spec, "since")) != NULL) {
		if (filter_time(v, &f->since) == -1) {
			snprintf(err, errlen, "filter.since: must be UTC seconds "
			    "or \"YYYY-MM-DDTHH:MM:SSZ\"");
			goto fail;
		}
		f->has_since = 1;
		f->needs |= FILTER_NEEDS_TIME;
	}
	if ((v = json_object_get(spec, "until")) != NULL) {
		if (filter_time(v, &f->until) == -1) {
			snprintf(err, errlen, "filter.until: must be UTC seconds "
			    "or \"YYYY-MM-DDTHH:MM:SSZ\"");
			goto fail;
		}
		f->has_until = 1;
		f->needs |= FILTER_NEEDS_TIME;
	}
	return f;
fail:
	filter_free(f);
	return NULL;
}

void
filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	filter_strv_free(&f->names);
	filter_strv_free(&f->exts);
	filter_strv_free(&f->under);
	filter_strv_free(&f->methods);
	free(f->status);
	free(f);
}

int
filter_needs(const struct filter *f)
{
	return f->needs;
}

/* 1 when s[0..len) is one of the strings of sv. */
static int
filter_in(const struct strv *sv, const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < sv->n; i++)
		if (sv->len[i] == len && memcmp(sv->v[i], s, len) == 0)
			return 1;
	return 0;
}

/*
 * The seed's path_filter, then its book_filter generalised to under:
 * segments are split on '/', the root path is every segment empty (kept
 * only with exclude_root false); an empty path, a request with no target,
 * is never kept.
 */
int
filter_path(const struct filter *f, const char *path, size_t len)
{
	const char	*seg, *end = path + len, *p = path;
	size_t		 slen, i, nonempty = 0;
	int		 under_ok = 1;

	if (len == 0)
		return 0;
	/* Segments are short: a loop, not a call to memchr for each. */
	for (;;) {
		for (seg = p; p < end && *p != '/'; p++)
			;
		slen = (size_t)(p - seg);
		if (slen > 0) {
			/* Most segments have no name's length: skip them. */
			if ((slen < 64 ? (f->name_lens >> slen) & 1 :
			    (uint64_t)f->long_names) &&
			    filter_in(&f->names, seg, slen))
				return 0;
			if (nonempty < f->under.n &&
			    (f->under.len[nonempty] != slen ||
			    memcmp(f->under.v[nonempty], seg, slen) != 0))
				under_ok = 0;
			nonempty++;
		}
		if (p == end)
			break;
		p++;
	}
	if (nonempty == 0 && !f->keep_root)
		return 0;
	/* seg is now the last segment; its last byte rules out most. */
	for (i = 0; i < f->exts.n; i++)
		if (slen >= f->exts.len[i] &&
		    seg[slen - 1] == f->exts.v[i][f->exts.len[i] - 1] &&
		    memcmp(seg + slen - f->exts.len[i], f->exts.v[i],
		    f->exts.len[i]) == 0)
			return 0;
	if (f->has_under && (!under_ok || nonempty <= f->under.n))
		return 0;
	return 1;
}

int
filter_line(const struct filter *f, const char *method, size_t mlen,
    int status, int64_t time)
{
	size_t	 i;

	if (f->methods.n > 0 && (method == NULL ||
	    !filter_in(&f->methods, method, mlen)))
		return 0;
	if (f->nstatus > 0) {
		if (status < 0)
			return 0;
		for (i = 0; i < f->nstatus; i++) {
			if (f->status[i].cls ? status / 100 == f->status[i].code :
			    status == f->status[i].code)
				break;
		}
		if (i == f->nstatus)
			return 0;
	}
	if (f->has_since && (time == INT64_MIN || time < f->since))
		return 0;
	if (f->has_until && (time == INT64_MIN || time >= f->until))
		return 0;
	return 1;
}
