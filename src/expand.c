/*
 * expand.c: expansion of a job's patterns with glob(3), run by a worker.
 *
 * Each pattern is globbed with GLOB_BRACE; its paths are copied into one
 * list that is sorted and deduplicated whenever it has grown by more than
 * files_max since the last time, so that memory stays near files_max
 * paths and the expansion stops as soon as the job is known to be over
 * its limit.
 */
#include "expand.h"
#include "reader.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
expand_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort v[0..n), free the repeats; the number left. */
static size_t
expand_uniq(char **v, size_t n)
{
	size_t	i, m = 0;

	if (n > 1)
		qsort(v, n, sizeof *v, expand_cmp);
	for (i = 0; i < n; i++) {
		if (m > 0 && strcmp(v[m - 1], v[i]) == 0)
			free(v[i]);
		else
			v[m++] = v[i];
	}
	return m;
}

/* Keep the first keep of n paths. */
static size_t
expand_cut(char **v, size_t n, size_t keep)
{
	while (n > keep)
		free(v[--n]);
	return n;
}

/*
 * 1 when path, symlinks resolved, is under one of roots (or roots is
 * NULL). A path that cannot be resolved (dangling symlink, no access)
 * stays in the list: opening it will fail with its own error, which
 * names nothing beyond the path matched.
 */
static int
expand_in_roots(const char *path, char *const *roots)
{
	char	*rp;
	int	 ok;

	if (roots == NULL)
		return 1;
	if ((rp = realpath(path, NULL)) == NULL)
		return 1;
	ok = reader_in_roots(rp, (const char *const *)roots);
	free(rp);
	return ok;
}

void
expand_result_clear(struct expand_result *r)
{
	size_t	i;

	for (i = 0; i < r->npaths; i++)
		free(r->paths[i]);
	free(r->paths);
	free(r->unmatched);
	memset(r, 0, sizeof *r);
}

int
expand_patterns(char *const *patterns, size_t n, char *const *roots,
    size_t files_max, struct expand_result *r)
{
	glob_t	  g;
	char	**v = NULL, **nv;
	size_t	  i, k, len = 0, cap = 0, ncap, check, kept;
	int	  rc;

	memset(r, 0, sizeof *r);
	if (files_max > SIZE_MAX / 4)
		files_max = SIZE_MAX / 4;
	if (n > 0 && (r->unmatched = calloc(n, sizeof *r->unmatched)) == NULL)
		goto nomem;
	check = files_max + 1;		/* deduplicate past this length */
	for (i = 0; i < n; i++) {
		memset(&g, 0, sizeof g);
		rc = glob(patterns[i], GLOB_BRACE | GLOB_NOSORT, NULL, &g);
		if (rc == GLOB_NOSPACE) {
			globfree(&g);
			goto nomem;
		}
		if (rc != 0 || g.gl_pathc == 0) {
			r->unmatched[r->nunmatched++] = (uint32_t)i;
			globfree(&g);
			continue;
		}
		if (g.gl_pathc > cap - len) {
			ncap = cap * 2 > len + g.gl_pathc ? cap * 2 :
			    len + g.gl_pathc;
			if ((nv = reallocarray(v, ncap, sizeof *v)) == NULL) {
				globfree(&g);
				goto nomem;
			}
			v = nv;
			cap = ncap;
		}
		for (k = kept = 0; k < g.gl_pathc; k++) {
			if (!expand_in_roots(g.gl_pathv[k], roots)) {
				r->noutside++;
				continue;
			}
			if ((v[len] = strdup(g.gl_pathv[k])) == NULL) {
				globfree(&g);
				goto nomem;
			}
			len++;
			kept++;
		}
		globfree(&g);
		if (kept == 0)
			r->unmatched[r->nunmatched++] = (uint32_t)i;
		if (len > check) {
			len = expand_uniq(v, len);
			if (len > files_max) {
				len = expand_cut(v, len, files_max + 1);
				break;
			}
			check = len + files_max + 1;
		}
	}
	len = expand_uniq(v, len);
	if (len > files_max)
		len = expand_cut(v, len, files_max + 1);
	r->paths = v;
	r->npaths = len;
	return 0;
nomem:
	while (len > 0)
		free(v[--len]);
	free(v);
	free(r->unmatched);
	memset(r, 0, sizeof *r);
	snprintf(r->error, sizeof r->error, "out of memory expanding patterns");
	return -1;
}
