/*
 * analysis.h: one file task, the whole pipeline.
 *
 * open (regular files only, under the allowed roots after resolving
 * symlinks) -> read, inflating gzip found by its magic bytes -> lines ->
 * parse -> request path -> filters -> count. The counts go into a table
 * the caller owns; the statistics say what happened to every line.
 */
#ifndef CLFD_ANALYSIS_H
#define CLFD_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct counts;
struct logformat;
struct filter;

#define ANALYSIS_LINE_MAX	65536	/* default cap on one line, bytes */

struct analysis_opts {
	struct logformat	*fmt;
	const struct filter	*flt;
	size_t			 line_max;	/* 0: ANALYSIS_LINE_MAX */
	const char *const	*roots;		/* NULL-terminated; NULL: any path */
	int			 no_hardlinks;	/* refuse files with st_nlink > 1 */
};

struct file_stats {
	uint64_t	bytes;		/* bytes read from the file */
	uint64_t	raw_bytes;	/* bytes after inflating */
	uint64_t	lines;
	uint64_t	matched;	/* parsed with a valid request and time */
	uint64_t	malformed;	/* no match, bad time, overlong, ... */
	uint64_t	filtered;	/* parsed but dropped by a filter */
	uint64_t	counted;
	int		gzip;
	int		partial;	/* stopped early; lines before still count */
	int		failed;		/* nothing could be read */
	char		error[256];	/* "" when none */
};

/*
 * Run the pipeline on path, adding to out. Returns 0 when the whole file
 * was read, -1 when it failed or stopped early (st->error says why,
 * st->failed or st->partial says how much counts).
 */
int	 analysis_file(const char *path, const struct analysis_opts *,
	    struct counts *out, struct file_stats *st);

/* The per-file entry of a result: path, bytes, lines, ..., error, partial. */
json_t	*analysis_stats_json(const char *path, const struct file_stats *);

#endif
