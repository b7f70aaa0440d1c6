/*
 * suggest.c: the long option closest to a misspelt one (Levenshtein
 * distance with transpositions counted as one edit, as a typist makes
 * them), so that a usage error can say "did you mean --status?".
 */
#include "suggest.h"

#include <string.h>

#define SUGGEST_LEN	64	/* longer words are not compared */

/* Optimal string alignment distance between a[0..la) and b[0..lb). */
static size_t
suggest_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t	d[SUGGEST_LEN + 1][SUGGEST_LEN + 1], i, j, v;

	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *
suggest_option(const char *arg, const struct option *opts)
{
	const char	*best = NULL, *eq;
	size_t		 len, d, bestd, nlen;

	while (*arg == '-')
		arg++;
	len = (eq = strchr(arg, '=')) != NULL ? (size_t)(eq - arg) :
	    strlen(arg);
	if (len == 0 || len > SUGGEST_LEN)
		return NULL;
	/* a slip: at most a third of the word, and at most 3 edits */
	bestd = len / 3 + 1 < 4 ? len / 3 + 1 : 4;
	for (; opts->name != NULL; opts++) {
		if ((nlen = strlen(opts->name)) > SUGGEST_LEN)
			continue;
		if ((d = suggest_distance(arg, len, opts->name, nlen)) < bestd) {
			bestd = d;
			best = opts->name;
		}
	}
	return best;
}
