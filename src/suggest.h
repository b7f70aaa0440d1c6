/*
 * suggest.h: "did you mean": the long option closest to a misspelt one,
 * for clfd's and clfctl's usage errors.
 */
#ifndef CLFD_SUGGEST_H
#define CLFD_SUGGEST_H

#include <getopt.h>

/*
 * The name of the long option in opts (ending with a NULL name) closest
 * to arg ("--hlep", "--stauts=2xx": what follows '=' is left out), by
 * edit distance, when it is close enough to be a slip; else NULL.
 */
const char	*suggest_option(const char *arg, const struct option *opts);

#endif
