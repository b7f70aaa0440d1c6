/*
 * proto.h: the messages between the supervisor and its workers.
 *
 * Each message on the socketpair is a fixed header (type, payload length)
 * followed by the payload. Payloads are a fixed part in host byte order
 * (both ends are the same binary on the same host) followed by
 * variable-length byte strings whose lengths the fixed part gives. Every
 * length is checked against the message length before it is used.
 *
 * Bump PROTO_VERSION if any of these change.
 */
#ifndef CLFD_PROTO_H
#define CLFD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "analysis.h"
#include "expand.h"

#define PROTO_VERSION		9	/* supervisor <-> worker messages */
#define PROTO_CLIENT_VERSION	1	/* the JSON-lines client protocol */

#define PROTO_MSG_MAX		(512u << 20)	/* largest payload, bytes */

enum proto_type {
	PROTO_READY = 1,	/* worker -> supervisor: set up, idle */
	PROTO_TASK,		/* supervisor -> worker: analyse one file */
	PROTO_RESULT,		/* worker -> supervisor: the task's result */
	PROTO_EXPAND,		/* supervisor -> worker: expand a job's patterns */
	PROTO_EXPANDED,		/* worker -> supervisor: the job's file list */
	PROTO_MERGE,		/* supervisor -> worker: merge partials */
	PROTO_MERGED,		/* worker -> supervisor: the merge is written */
};

struct proto_hdr {
	uint32_t	type;
	uint32_t	len;		/* payload bytes after the header */
};

/* PROTO_READY payload. */
struct proto_ready {
	uint32_t	version;	/* PROTO_VERSION of the worker */
	uint32_t	pid;
};

/*
 * PROTO_TASK: one file, with everything the worker needs to analyse it,
 * so that a job keeps its own settings whatever the worker's config.
 * Variable part: path, format spec, filter JSON, roots (each root
 * followed by a NUL byte).
 */
#define PROTO_TASK_NO_CACHE	0x1	/* neither read nor write the cache */
#define PROTO_TASK_RANGE	0x2	/* a byte range of the file: range */
#define PROTO_TASK_NO_REF	0x4	/* a hit too writes its partial */
#define PROTO_TASK_AHEAD	0x8	/* a core is free for a second thread */

struct proto_task_fixed {
	uint64_t	task;		/* id, echoed in the result */
	uint32_t	line_max;
	uint32_t	path_len;
	uint32_t	format_len;
	uint32_t	filter_len;
	uint32_t	roots_len;
	uint32_t	nroots;
	uint32_t	flags;		/* PROTO_TASK_* */
	uint32_t	pad;
	struct analysis_range range;	/* with PROTO_TASK_RANGE */
};

struct proto_task {
	uint64_t	 task;
	uint32_t	 line_max;
	uint32_t	 flags;
	struct analysis_range range;	/* with PROTO_TASK_RANGE: off < end
					   <= size */
	const char	*path;		/* NUL-terminated copies when decoded */
	const char	*format;
	const char	*filter;	/* JSON object text */
	char		**roots;	/* NULL-terminated, NULL for any path */
};

/*
 * PROTO_RESULT: a MAP task is over. Its partial (counts and all) is in
 * the spool as the task's file (proto_spool_path); the message holds
 * only what the supervisor keeps: the statistics and the source's
 * identity. Counts never travel through the supervisor. A partial is
 * written whole before this is sent, so a worker that dies never leaves
 * half a result behind a reply. The size is fixed.
 */
struct proto_result {
	uint64_t		task;
	struct file_stats	st;
	struct source_id	id;
	uint64_t		nkeys;		/* distinct keys in the partial */
	uint64_t		size;		/* bytes of the partial, 0: none */
	/* The worker's cache since its last result (the status is in st). */
	uint64_t		cache_stored;	/* bytes */
	uint64_t		cache_evicted;	/* entries */
	/*
	 * ref (a hit): the partial is not in the spool, it is the cache
	 * entry of settings' digest ref_key, id.dev and id.ino, whose
	 * checksum the worker found to be ref_sum (a merge checks it).
	 */
	uint64_t		ref_key;
	uint64_t		ref_sum;
	uint32_t		ref;
	uint32_t		pad;
};

/*
 * PROTO_MERGE: merge the partials of earlier tasks (named by their task
 * ids: proto_spool_path) into this task's own file: a partial, or with
 * final the job's result JSON, whose opening members are head (see
 * merge.h). Sources whose file has no partial (its worker died twice)
 * come as extra: each a u32 path length, the path, a file_stats and the
 * byte range's u64 off and end (0, 0 for a whole file). An input may be
 * a cache entry instead (a MAP task's ref): its file's path and
 * statistics now replace the entry's. Variable part: ninputs u64 task
 * ids, the extras, the refs (each a struct proto_ref then its path), the
 * head.
 */
struct proto_merge_fixed {
	uint64_t	task;
	uint64_t	top;
	int64_t		start_usec;
	uint32_t	final;
	uint32_t	ninputs;
	uint32_t	nextra;
	uint32_t	extra_len;
	uint32_t	head_len;
	uint32_t	nrefs;
	uint32_t	refs_len;
	uint32_t	pad;
};

struct proto_ref_fixed {
	uint32_t		input;		/* which input it is */
	uint32_t		path_len;
	uint64_t		key;		/* the entry: cache_get's */
	uint64_t		dev;
	uint64_t		ino;
	uint64_t		sum;		/* its checksum */
	uint64_t		off;		/* the task's byte range: */
	uint64_t		end;		/* 0, 0 for a whole file */
	struct file_stats	st;		/* the file's, now */
};

struct proto_ref {
	struct proto_ref_fixed	 f;
	const char		*path;	/* points into the message: keep it */
};

struct proto_extra {
	const char		*path;	/* points into the message: keep it */
	size_t			 path_len;
	struct file_stats	 st;
	uint64_t		 off, end;
};

#define PROTO_EXTRA_FIXED	(4 + sizeof(struct file_stats) + 16)

struct proto_merge {
	struct proto_merge_fixed	 f;
	uint64_t			*inputs;	/* malloc'd copies */
	struct proto_extra		*extra;		/* malloc'd */
	struct proto_ref		*refs;		/* malloc'd */
	const char			*head;		/* NUL-terminated copy */
};

/* PROTO_MERGED: the merge's output is written, or why not. */
#define PROTO_NO_INPUT	UINT32_MAX

struct proto_merged_fixed {
	uint64_t	task;
	uint64_t	nkeys;
	uint64_t	size;		/* bytes written */
	uint32_t	bad;		/* the input refused, or PROTO_NO_INPUT */
	uint32_t	error_len;	/* "" when the output is complete */
};

struct proto_merged {
	struct proto_merged_fixed	 f;
	const char			*error;		/* points into the message */
};

/*
 * PROTO_EXPAND: a job's patterns, to be expanded (brace groups, then
 * wildcards, as glob(3) would) by a worker, so that a slow filesystem or
 * a huge brace pattern never stalls the supervisor, and the job's allowed
 * roots: the walk never leaves them (expand.c). The job's log format is
 * compiled there first, for the same reason: a regex compile is work the
 * supervisor does not do. A regular file over split_size (0: none) is
 * looked at for gzip (expand.h). Variable part: npatterns NUL-terminated
 * patterns, then nroots NUL-terminated roots, then the format
 * (format_len bytes, no NUL).
 */
struct proto_expand_fixed {
	uint64_t	task;
	uint64_t	files_max;	/* list at most files_max + 1 paths */
	uint64_t	split_size;	/* the job's */
	uint32_t	npatterns;
	uint32_t	patterns_len;
	uint32_t	nroots;
	uint32_t	roots_len;
	uint32_t	format_len;	/* the job's format, after the roots */
	uint32_t	needs;		/* FILTER_NEEDS_* the format must serve */
};

struct proto_expand {
	uint64_t	  task;
	uint64_t	  files_max;
	uint64_t	  split_size;
	uint32_t	  npatterns;
	char		**patterns;	/* NULL-terminated; copies when decoded */
	char		**roots;	/* NULL-terminated, NULL for any path */
	const char	 *format;	/* to check (compile) first; copy */
	uint32_t	  needs;	/* the filter's FILTER_NEEDS_* */
};

/*
 * PROTO_EXPANDED: the job's file list, sorted with each path once, at
 * most files_max + 1 paths (one more than files_max says "too many");
 * the indexes of the patterns that matched nothing; an error text when
 * the expansion failed, with limit set when it stopped at a limit
 * (walk_max, memory) rather than failed. Variable part: nunmatched uint32_t indexes, the
 * error text, then npaths NUL-terminated paths, then npaths struct
 * expand_id (each file as stat(2) saw it, with its EXPAND_* flags: no
 * other bit, pad 0).
 */
struct proto_expanded_fixed {
	uint64_t	task;
	uint32_t	npaths;
	uint32_t	paths_len;
	uint32_t	nunmatched;
	uint32_t	error_len;
	uint32_t	code;		/* with an error: PROTO_X_* */
	uint32_t	limit;		/* 1: the error is a limit reached */
};

#define PROTO_X_INTERNAL	0	/* the expansion failed */
#define PROTO_X_FORMAT		1	/* the format does not compile */

struct proto_expanded {
	struct proto_expanded_fixed	 f;
	const uint8_t			*unmatched;	/* unaligned: memcpy */
	const char			*error;		/* points into the message */
	const char			*paths;		/* npaths strings */
	const uint8_t			*ids;		/* unaligned: memcpy */
};

/*
 * Whether a header's length is possible for its type: at least the fixed
 * part (exactly it for READY), at most PROTO_MSG_MAX. 0 when it is, -1
 * for an unknown type or an impossible length. Checked as soon as a
 * header is in, before any of the payload is read.
 */
int	 proto_hdr_check(const struct proto_hdr *);

/*
 * Encode a message (header included) into a malloc'd buffer; NULL with
 * errno set (ENOMEM, EMSGSIZE) on failure.
 */
uint8_t	*proto_task_encode(const struct proto_task *, size_t *lenp);
uint8_t	*proto_result_encode(const struct proto_result *, size_t *lenp);
uint8_t	*proto_merge_encode(const struct proto_merge_fixed *,
	    const uint64_t *inputs, const struct proto_extra *extra,
	    const struct proto_ref *refs,
	    const char *head, size_t *lenp);
uint8_t	*proto_merged_encode(const struct proto_merged_fixed *,
	    const char *error, size_t *lenp);
uint8_t	*proto_expand_encode(const struct proto_expand *, size_t *lenp);
uint8_t	*proto_expanded_encode(uint64_t task, char *const *paths,
	    const struct expand_id *ids, size_t npaths,
	    const uint32_t *unmatched, size_t nunmatched, int limit,
	    const char *error, size_t *lenp);
/* The answer of an expansion whose format does not compile: why. */
uint8_t	*proto_expanded_format_error(uint64_t task, const char *error,
	    size_t *lenp);

/*
 * Decode a payload (header stripped). The task's strings are copied
 * into one allocation, released with proto_task_clear(); the result's
 * point into buf. -1 when any length does not add up.
 */
int	 proto_task_decode(const uint8_t *buf, size_t len, struct proto_task *);
void	 proto_task_clear(struct proto_task *);
int	 proto_result_decode(const uint8_t *buf, size_t len, struct proto_result *);
/* Copies into allocations released with proto_merge_clear. */
int	 proto_merge_decode(const uint8_t *buf, size_t len, struct proto_merge *);
void	 proto_merge_clear(struct proto_merge *);
int	 proto_merged_decode(const uint8_t *buf, size_t len,
	    struct proto_merged *);

/*
 * The spool file of a task: DIR/tID.part, or DIR/tID.json for a final
 * merge's result. -1 when it does not fit in len.
 */
int	 proto_spool_path(char *buf, size_t len, const char *dir, uint64_t task,
	    int result);
/* Patterns and roots are copied (proto_expand_clear); the list points into buf. */
int	 proto_expand_decode(const uint8_t *buf, size_t len, struct proto_expand *);
void	 proto_expand_clear(struct proto_expand *);
int	 proto_expanded_decode(const uint8_t *buf, size_t len,
	    struct proto_expanded *);

/*
 * Blocking I/O for the worker: write all of buf (retrying EINTR), and
 * read one message into a malloc'd payload. proto_read returns 1 with a
 * message, 0 on EOF before a header, -1 on error or a bad header
 * (proto_hdr_check).
 */
int	 proto_write(int fd, const void *buf, size_t len);
int	 proto_read(int fd, struct proto_hdr *, uint8_t **payload);

#endif
