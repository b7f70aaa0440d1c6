/*
 * reply.h: the JSON of what the job queue tells, for clients: the
 * replies to status, list and stats, a waiter's events, and the texts
 * of results (the head a final merge goes on from, a result with no
 * counts), built from the job queue's plain data.
 *
 * Depends on: jobqueue (its types only), errcode; jansson. Used by:
 * control (replies, events), supervisor (which registers
 * reply_result_head and reply_result_text as jobqueue_hooks).
 */
#ifndef CLFD_REPLY_H
#define CLFD_REPLY_H

#include <stddef.h>
#include <jansson.h>

#include "errcode.h"

struct jq_info;
struct jq_stats;

/*
 * A job's members for status (full: with files_failed and bytes_done)
 * or for an entry of list's "jobs"; NULL on ENOMEM.
 */
json_t	*reply_job(const struct jq_info *, int full);
/* Add "queue", "jobs", "totals" and "cache" to a stats reply. */
void	 reply_stats(json_t *reply, const struct jq_stats *);
/*
 * A waiter's event line, newline included, in line (256 bytes hold
 * either): its progress, or the "done" event of a job the stopping
 * daemon leaves unfinished. The line's length.
 */
size_t	 reply_progress(char *line, size_t len, const struct jq_info *);
size_t	 reply_stopped(char *line, size_t len, const struct jq_info *);
/* The result texts of struct jobqueue_hooks (see jobqueue.h). */
char	*reply_result_head(const struct jq_info *);
char	*reply_result_text(const struct jq_info *, enum errcode,
	    const char *msg);

#endif
