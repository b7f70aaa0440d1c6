/*
 * merge.h: the MERGE step: partials in, one partial or a result out.
 *
 * A streaming k-way merge of sorted partials (each checked whole first).
 * An intermediate merge writes a partial listing every input's sources,
 * so merges can form a tree. The final merge orders the counts (count
 * descending, then key bytes; or the top N with a bounded heap) and
 * writes the result JSON with a streaming writer, byte for byte as a
 * jansson dump of the same object would be.
 */
#ifndef CLFD_MERGE_H
#define CLFD_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "partial.h"

/*
 * An input that is a cache entry: its checksum must still be the one the
 * MAP task found, and it holds one source, whose name and statistics are
 * replaced by the file's as the job saw it (path, cache status). Or
 * (memo) the merged counts of a set of entries: its one source is a
 * marker, with no name, whose digest is sum; it is left out (the files
 * come as extra sources).
 */
struct merge_entry {
	int			 on;		/* this input is an entry */
	int			 memo;		/* this input is a memo */
	uint64_t		 sum;
	const char		*path;
	size_t			 path_len;
	uint64_t		 off, end;	/* its byte range: 0, 0 whole */
	struct file_stats	 st;
};

struct merge_opts {
	char *const			*inputs;	/* partial files */
	size_t				 ninputs;
	const struct merge_entry	*entries;	/* NULL, or per input */
	/* Sources with no partial (their file failed): listed, not counted. */
	const struct partial_source	*extra;
	size_t				 nextra;
	int				 no_sources;	/* only extra's listed */
	/* Settings for an output with no input to take them from. */
	const char			*settings;
	size_t				 settings_len;
	int				 fd;		/* output */
	int				 final;		/* result JSON, not a partial */
	size_t				 top;		/* final: 0 for all */
	/*
	 * final: the result's opening members, "{...,\"submitted\":N"
	 * without the closing brace; "finished" and "elapsed" (since
	 * start_usec, wall clock) follow, then files, totals, counts.
	 */
	const char			*head;
	int64_t				 start_usec;
};

struct merge_result {
	uint64_t	nkeys;		/* distinct keys merged */
	uint64_t	bytes;		/* written */
	size_t		bad;		/* the input refused, or SIZE_MAX */
	char		error[256];
};

/* 0 when the output is complete; -1 with mr->error (and mr->bad). */
int	merge_run(const struct merge_opts *, struct merge_result *mr);

/*
 * Append s/len to a JSON string's body as jansson writes it: '"' and
 * '\\' escaped, control characters as \b \f \n \r \t or \u00XX, all
 * else as it is (s is valid UTF-8). out needs room for 6 * len bytes.
 * Returns the bytes written.
 */
size_t	merge_json_escape(char *out, const char *s, size_t len);

#endif
