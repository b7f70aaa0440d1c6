/*
 * filter.h: which parsed lines are counted.
 *
 * The path filters are the seed's path_filter: drop the root path (every
 * '/'-segment empty: "/", "//"; a rule that can be turned off) and an
 * empty one (always), a path with any segment equal to an excluded name,
 * a path whose last segment ends with an excluded extension. Per-job
 * filters: under (the first non-empty segments equal the given ones and at
 * least one more segment follows), status codes or classes ("404", "2xx"),
 * methods, and a since/until time range [since, until).
 */
#ifndef CLFD_FILTER_H
#define CLFD_FILTER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct filter;

/*
 * Build a filter from a JSON object with the optional keys
 *   under          string        "/book"
 *   exclude_names  array of str  replaces the default list
 *   exclude_exts   array of str  replaces the default list
 *   exclude_root   boolean       false: count "/" (default true)
 *   status         array of str or int: 404, "404", "4xx"
 *   methods        array of str  "GET", "POST" (case-sensitive)
 *   since, until   integer UTC seconds or string "2024-03-01T00:00:00Z"
 * spec may be NULL (defaults only). NULL with err filled on error,
 * err naming the field.
 */
struct filter	*filter_from_json(const json_t *spec, char *err, size_t errlen);
void		 filter_free(struct filter *);

#define FILTER_NEEDS_TIME	0x1
#define FILTER_NEEDS_STATUS	0x2
int		 filter_needs(const struct filter *);

/* 1 when the path is kept. */
int		 filter_path(const struct filter *, const char *path, size_t len);
/*
 * 1 when a line with this method (NULL absent), status (-1 absent) and
 * time (INT64_MIN absent) is kept; an absent field fails its filter.
 */
int		 filter_line(const struct filter *, const char *method, size_t mlen,
		    int status, int64_t time);

/* The seed's default lists, NULL-terminated. */
extern const char *const filter_default_names[];
extern const char *const filter_default_exts[];
/*
 * Give spec (an object) the exclude_names and exclude_exts it lacks:
 * names and exts (NULL-terminated), the defaults of a job's settings
 * (the config's, or the lists above), so that its text says all it does.
 * 0, or -1 on ENOMEM.
 */
int		 filter_add_defaults(json_t *spec, const char *const *names,
		    const char *const *exts);

#endif
