/*
 * config.c: clfd's settings: the built-in defaults and the clfd.conf
 * reader (key = value, '#' comments).
 */
#include "config.h"
#include "filter.h"
#include "logformat.h"
#include "reader.h"

#include <ctype.h>
#include <grp.h>
#include <stddef.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char **
strv_dup(const char *const *v)
{
	size_t	  n = 0, i;
	char	**r;

	while (v[n] != NULL)
		n++;
	if ((r = calloc(n + 1, sizeof *r)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if ((r[i] = strdup(v[i])) == NULL)
			goto fail;
	return r;
fail:
	while (i > 0)
		free(r[--i]);
	free(r);
	return NULL;
}

static void
strv_free(char **v)
{
	size_t	i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

void
config_defaults(struct config *c)
{
	static const char *const root[] = { "/", NULL };

	memset(c, 0, sizeof *c);
	c->workers = 0;
	c->socket_mode = 0600;
	c->roots = strv_dup(root);
	c->format = strdup("default");
	c->exclude_names = strv_dup(filter_default_names);
	c->exclude_exts = strv_dup(filter_default_exts);
	c->line_max = 65536;
	c->request_max = 1 << 20;
	c->patterns_max = 1024;
	c->files_max = 100000;
	c->walk_max = 1000000;
	c->jobs_max = 256;
	c->jobs_per_user = 64;
	c->connections_max = 512;
	c->idle_timeout = 60;
	c->result_ttl = 3600;
	c->result_memory = (size_t)64 << 20;
	c->result_disk = (size_t)1 << 30;
	c->cache_max = (size_t)1 << 30;
	c->split_size = (size_t)32 << 20;
	c->worker_memory = (size_t)1 << 30;
	c->inflate_ahead = READER_AHEAD_DEFAULT;
	c->refuse_hardlinks = 0;
	c->task_timeout = 3600;
	c->exit_idle = 0;
	if (c->roots == NULL || c->format == NULL || c->exclude_names == NULL ||
	    c->exclude_exts == NULL)
		abort();	/* out of memory at startup */
}

void
config_free(struct config *c)
{
	free(c->file);
	free(c->socket_path);
	free(c->socket_group);
	free(c->spool_dir);
	free(c->cache_dir);
	strv_free(c->roots);
	free(c->format);
	strv_free(c->exclude_names);
	strv_free(c->exclude_exts);
	memset(c, 0, sizeof *c);
}

/* How a key's value is read and where it is stored. */
enum conftype {
	C_GROUP, C_INT, C_COUNT, C_SECS, C_SIZE, C_MODE, C_PATH, C_LIST, C_PATHS,
	C_FORMAT, C_BOOL
};

struct confkey {
	const char	*name;
	enum conftype	 type;
	size_t		 off;
	long long	 min, max;	/* C_INT, C_SECS, C_SIZE */
};

#define K(n, t, lo, hi)	{ #n, t, offsetof(struct config, n), lo, hi }
static const struct confkey confkeys[] = {
	K(workers,		C_INT,	0, 256),
	K(socket_path,		C_PATH,	0, 0),
	K(socket_mode,		C_MODE,	0, 0777),
	K(socket_group,		C_GROUP, 0, 0),
	K(roots,		C_PATHS, 0, 0),
	K(format,		C_FORMAT, 0, 0),
	K(exclude_names,	C_LIST,	0, 0),
	K(exclude_exts,		C_LIST,	0, 0),
	K(line_max,		C_SIZE,	256, (long long)1 << 30),
	/* a request must fit, with room, in one worker message */
	K(request_max,		C_SIZE,	4096, (long long)64 << 20),
	K(patterns_max,		C_COUNT,	1, 1000000),
	K(files_max,		C_COUNT,	1, 100000000),
	K(walk_max,		C_COUNT,	1000, 1000000000),
	K(jobs_max,		C_COUNT,	1, 1000000),
	K(jobs_per_user,	C_COUNT,	1, 1000000),
	K(connections_max,	C_COUNT,	1, 1000000),
	K(idle_timeout,		C_SECS,	1, 86400),
	K(result_ttl,		C_SECS,	0, 86400 * 366),
	K(result_memory,	C_SIZE,	0, (long long)1 << 40),
	K(result_disk,		C_SIZE,	0, (long long)1 << 50),
	K(spool_dir,		C_PATH,	0, 0),
	K(cache_dir,		C_PATH,	0, 0),
	K(cache_max,		C_SIZE,	0, (long long)1 << 50),
	K(split_size,		C_SIZE,	0, (long long)1 << 50),
	K(worker_memory,	C_SIZE,	0, (long long)1 << 40),
	K(inflate_ahead,	C_SIZE,	0, (long long)1 << 50),
	K(refuse_hardlinks,	C_BOOL,	0, 1),
	K(task_timeout,		C_SECS,	0, 86400),
	K(exit_idle,		C_SECS,	0, 86400 * 366),
};
#undef K

static int
parse_number(const char *v, int suffixes, long long *out)
{
	char		*end;
	long long	 n, mul = 1;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0)
		return -1;
	if (suffixes && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'k': case 'K': mul = 1LL << 10; break;
		case 'm': case 'M': mul = 1LL << 20; break;
		case 'g': case 'G': mul = 1LL << 30; break;
		default: return -1;
		}
		end++;
	}
	if (*end != '\0' || n > LLONG_MAX / mul)
		return -1;
	*out = n * mul;
	return 0;
}

/* Split v on white space into a NULL-terminated vector. */
static char **
split_list(const char *v)
{
	char	**r = NULL, **nr;
	size_t	  n = 0, len;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	for (;;) {
		while (isspace((unsigned char)*v))
			v++;
		if (*v == '\0')
			return r;
		for (len = 0; v[len] != '\0' && !isspace((unsigned char)v[len]); len++)
			;
		if ((nr = reallocarray(r, n + 2, sizeof *r)) == NULL)
			break;
		r = nr;
		if ((r[n] = strndup(v, len)) == NULL)
			break;
		r[++n] = NULL;
		v += len;
	}
	strv_free(r);
	return NULL;
}

/* Replace the string at field with a copy of v. */
static int
config_string(char **field, const char *v)
{
	char	*s;

	if ((s = strdup(v)) == NULL)
		return -1;
	free(*field);
	*field = s;
	return 0;
}

/* Check that v is a list of absolute paths, at least one. */
static int
config_paths_ok(const struct confkey *k, char *const *list, char *err,
    size_t errlen)
{
	size_t	i;

	if (list[0] == NULL) {
		snprintf(err, errlen, "%s: needs at least one path", k->name);
		return -1;
	}
	for (i = 0; list[i] != NULL; i++) {
		if (list[i][0] != '/') {
			snprintf(err, errlen, "%s: \"%s\" is not an absolute "
			    "path", k->name, list[i]);
			return -1;
		}
	}
	return 0;
}

/* Check v as a value of k (groups, formats and paths are checked now, so
 * that clfd -t says what starting would); -1 with the reason in err. */
static int
config_check(const struct confkey *k, const char *v, char *err, size_t errlen)
{
	struct logformat	*lf;

	switch (k->type) {
	case C_GROUP:
		if (getgrnam(v) == NULL) {
			snprintf(err, errlen, "%s: no such group \"%s\"",
			    k->name, v);
			return -1;
		}
		return 0;
	case C_FORMAT:
		if ((lf = logformat_compile(v, err, errlen)) == NULL)
			return -1;
		logformat_free(lf);
		return 0;
	case C_PATH:
		if (v[0] != '/') {
			snprintf(err, errlen, "%s: \"%s\" is not an absolute "
			    "path", k->name, v);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* Store one value; -1 with the reason in err. */
static int
config_set(struct config *c, const struct confkey *k, const char *v,
    char *err, size_t errlen)
{
	void		 *field = (char *)c + k->off;
	long long	  n;
	char		 *end, **list;

	switch (k->type) {
	case C_INT:
	case C_COUNT:
	case C_SECS:
	case C_SIZE:
		if (parse_number(v, k->type == C_SIZE, &n) == -1 ||
		    n < k->min || n > k->max) {
			snprintf(err, errlen, "%s: \"%s\" is not a %s from %lld "
			    "to %lld", k->name, v, k->type == C_SIZE ? "size" :
			    "number", k->min, k->max);
			return -1;
		}
		if (k->type == C_SIZE || k->type == C_COUNT)
			*(size_t *)field = (size_t)n;
		else
			*(int *)field = (int)n;
		return 0;
	case C_MODE:
		errno = 0;
		n = strtoll(v, &end, 8);
		if (!isdigit((unsigned char)*v) || *end != '\0' || errno != 0 ||
		    n > k->max) {
			snprintf(err, errlen, "%s: \"%s\" is not an octal mode",
			    k->name, v);
			return -1;
		}
		*(mode_t *)field = (mode_t)n;
		return 0;
	case C_BOOL:
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
			snprintf(err, errlen, "%s: \"%s\" is not yes or no",
			    k->name, v);
			return -1;
		}
		*(int *)field = strcmp(v, "yes") == 0;
		return 0;
	case C_GROUP:
	case C_FORMAT:
	case C_PATH:
		if (config_check(k, v, err, errlen) == -1)
			return -1;
		if (config_string(field, v) == -1)
			break;
		return 0;
	case C_LIST:
	case C_PATHS:
		if ((list = split_list(v)) == NULL)
			break;
		if (k->type == C_PATHS &&
		    config_paths_ok(k, list, err, errlen) == -1) {
			strv_free(list);
			return -1;
		}
		/* exclude_names, exclude_exts: within one path segment */
		for (n = 0; k->type == C_LIST && list[n] != NULL; n++)
			if (strchr(list[n], '/') != NULL) {
				snprintf(err, errlen, "%s: \"%s\" has a '/' (a "
				    "name is one path segment)", k->name,
				    list[n]);
				strv_free(list);
				return -1;
			}
		strv_free(*(char ***)field);
		*(char ***)field = list;
		return 0;
	}
	snprintf(err, errlen, "%s: out of memory", k->name);
	return -1;
}

/*
 * A value, in place, from its first byte that is not white space: in
 * double quotes, it loses them, and \" and \\ in it become " and \ (as
 * Apache's config reader has it: a LogFormat line copied from there
 * reads the same); else it ends at a '#' that starts it or follows white
 * space (a comment), its trailing white space removed. -1 with the reason
 * for a quote left open or text after the closing quote.
 */
static int
config_value(char *v, const char **why)
{
	char	*r, *w, *e;

	if (*v == '"') {
		for (r = v + 1, w = v; *r != '\0' && *r != '"'; r++) {
			if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
				r++;
			*w++ = *r;
		}
		if (*r != '"') {
			*why = "the value's quote is not closed";
			return -1;
		}
		for (r++; isspace((unsigned char)*r); r++)
			;
		if (*r != '\0' && *r != '#') {
			*why = "text after the value's closing quote";
			return -1;
		}
		*w = '\0';
		return 0;
	}
	for (r = v; *r != '\0'; r++)
		if (*r == '#' && (r == v || isspace((unsigned char)r[-1]))) {
			*r = '\0';
			break;
		}
	for (e = r; e > v && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	return 0;
}

/*
 * Read path into c: the defaults, then the file's keys. A line is "key =
 * value", blank, or a comment starting with '#'; see config_value for
 * the value (a '#' after white space starts a comment there too). On error c is left as it was (the caller's
 * old settings keep running: a reload must not half-apply a bad file).
 */
int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct config	 new;
	FILE		*f;
	char		*line = NULL, *p, *key, *val, *e, why[512];
	const char	*bad;
	size_t		 cap = 0, i;
	ssize_t		 len;
	unsigned	 lineno = 0;
	int		 rc = -1;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	config_defaults(&new);
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (memchr(line, '\0', (size_t)len) != NULL) {
			snprintf(err, errlen, "%s:%u: NUL byte in line", path, lineno);
			goto out;
		}
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		key = p;
		while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
			p++;
		e = p;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			snprintf(err, errlen, "%s:%u: expected \"key = value\"", path, lineno);
			goto out;
		}
		*e = '\0';
		for (val = p + 1; isspace((unsigned char)*val); val++)
			;
		if (config_value(val, &bad) == -1) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, bad);
			goto out;
		}
		for (i = 0; i < sizeof confkeys / sizeof confkeys[0]; i++)
			if (strcmp(confkeys[i].name, key) == 0)
				break;
		if (i == sizeof confkeys / sizeof confkeys[0]) {
			snprintf(err, errlen, "%s:%u: unknown key \"%s\"", path, lineno, key);
			goto out;
		}
		if (config_set(&new, &confkeys[i], val, why, sizeof why) == -1) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((new.file = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	config_free(c);
	*c = new;
	memset(&new, 0, sizeof new);
	rc = 0;
out:
	config_free(&new);
	free(line);
	fclose(f);
	return rc;
}
