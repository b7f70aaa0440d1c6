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

#include <sys/stat.h>

#include <stddef.h>
#include <stdint.h>

struct counts;
struct logformat;
struct filter;
struct json_t;		/* jansson's json_t */

#define ANALYSIS_LINE_MAX	65536	/* default cap on one line, bytes */

/*
 * What to do with a file once it is open: read it from byte off (plain
 * files only; 0 for all of it), or only hash its decompressed content
 * into the identity's digest, with no parse (hash_only).
 */
struct analysis_plan {
	uint64_t	off;
	int		hash_only;
	int		digest;		/* fill the identity's digest */
};

#define ANALYSIS_SERVED	1	/* opened() answered the file: nothing read */
#define ANALYSIS_NOTHING 2	/* a gzip file's range past 0: not its part */

/*
 * One byte range of a big plain file: the lines whose first byte lies in
 * [off, end) of the file's first size bytes (reader_range), the file as
 * the job listed it (device, inode, size, mtime). The file must still be
 * that one: the same device and inode, at least size bytes, and the same
 * mtime if it has exactly size bytes (grown is fine: the bytes past size
 * are not read); else the range fails. A gzip file is not split: its
 * range at offset 0 reads it whole, as a task without a range would (opened()
 * is told it is gzip), and the others return ANALYSIS_NOTHING at once.
 * opened() may resume a range: plan.off is then where the lines it was
 * given end (a line start); with plan.off at or past the range's end the
 * range owns no more than those.
 */
struct analysis_range {
	uint64_t	off;
	uint64_t	end;
	uint64_t	size;
	uint64_t	dev;
	uint64_t	ino;
	int64_t		mtime_ns;
};

struct analysis_opts {
	struct logformat	*fmt;
	const struct filter	*flt;
	size_t			 line_max;	/* 0: ANALYSIS_LINE_MAX */
	const char *const	*roots;		/* NULL-terminated; NULL: any path */
	int			 no_hardlinks;	/* refuse files with st_nlink > 1 */
	int			 no_ahead;	/* no second inflating thread */
	int			 digest;	/* fill the identity's digest */
	const struct analysis_range *range;	/* NULL: the whole file */
	/*
	 * Called, when not NULL, once the file is open and checked (roots,
	 * type) and before any line is read, with the open descriptor and
	 * its fstat: ANALYSIS_SERVED stops there, 0 goes on as plan says
	 * (zeroed before the call).
	 */
	int			(*opened)(void *arg, int fd, const struct stat *,
				    int gzip, struct analysis_plan *plan);
	void			*arg;
};

/*
 * What happened to a file's lines: the one record of per-file statistics,
 * used by the engine, the worker messages, the partials and the result
 * (both ends of a message are the same binary; partials encode it field
 * by field).
 */
#define STATS_GZIP	0x1
#define STATS_PARTIAL	0x2	/* stopped early; lines before still count */
#define STATS_FAILED	0x4	/* nothing could be read */
/*
 * How the cache answered (a field of flags, not bits: summing ranges
 * keeps the least cached). 0: no cache status at all (clfctl map).
 */
#define STATS_CACHE_SHIFT	8
#define STATS_CACHE_MASK	(0x7u << STATS_CACHE_SHIFT)
#define STATS_CACHE_OFF		1
#define STATS_CACHE_MISS	2
#define STATS_CACHE_RESUMED	3
#define STATS_CACHE_CONTENT	4
#define STATS_CACHE_HIT		5
#define STATS_CACHE(flags)	(((flags) & STATS_CACHE_MASK) >> STATS_CACHE_SHIFT)
#define STATS_CACHE_SET(flags, c) \
	(((flags) & ~STATS_CACHE_MASK) | ((uint32_t)(c) << STATS_CACHE_SHIFT))
#define STATS_SAMPLE	120	/* bytes kept of the first malformed line */

struct file_stats {
	uint64_t	bytes;		/* bytes read from the file */
	uint64_t	raw_bytes;	/* bytes after inflating */
	uint64_t	lines;
	uint64_t	matched;	/* parsed with a valid request and time */
	uint64_t	malformed;	/* no match, bad time, overlong, ... */
	uint64_t	filtered;	/* parsed but dropped by a filter */
	uint64_t	counted;
	uint32_t	flags;		/* STATS_* */
	uint32_t	pad;
	char		error[256];	/* "" when none */
	uint64_t	not_request;	/* of filtered: the request was not
					   METHOD TARGET PROTOCOL ("-", TLS) */
	uint32_t	sample_len;	/* whole length of the first
					   malformed line; 0: none */
	uint32_t	pad2;
	char		sample[STATS_SAMPLE];	/* its first bytes */
};

/*
 * Which bytes were analysed: the file's identity when it was opened and
 * the byte range read, with a fingerprint of the bytes just before the
 * range's end (XXH3-64 of up to ANALYSIS_FPRINT bytes) and a digest of
 * the decompressed content (0: not computed).
 */
#define ANALYSIS_FPRINT	4096

struct source_id {
	uint64_t	dev;
	uint64_t	ino;
	uint64_t	size;
	int64_t		mtime_ns;
	int64_t		ctime_ns;
	uint64_t	off;
	uint64_t	end;
	uint64_t	fingerprint;
	uint64_t	digest;
};

/*
 * Run the pipeline on path, adding to out. With a range, id's off and end
 * are the range's, its digest where its last line ends (where a resume
 * goes on from), its fingerprint that of the bytes before that, and st's
 * bytes the bytes of the lines the range owns: a file's ranges add up to
 * it. Returns 0 when the whole file
 * was read, -1 when it failed or stopped early (st->error says why,
 * STATS_FAILED or STATS_PARTIAL says how much counts), ANALYSIS_SERVED
 * when opts' opened() said so (st and id then zero). id, when not NULL,
 * gets the source's identity (zero when it could not be opened).
 */
int	 analysis_file(const char *path, const struct analysis_opts *,
	    struct counts *out, struct file_stats *st, struct source_id *id);

/*
 * Add the counters of b (another byte range of the same file) to a: the
 * line counts and the first malformed example; flags and error are the
 * caller's to combine.
 */
void	 analysis_stats_add(struct file_stats *a, const struct file_stats *b);

/*
 * The per-file entry of a result: path, bytes, lines, ..., error, partial,
 * then not_request and malformed_example (the first STATS_SAMPLE bytes of
 * the first malformed line, or null), and cache when the flags carry a
 * cache status.
 */
struct json_t	*analysis_stats_json(const char *path,
		    const struct file_stats *);

#endif
