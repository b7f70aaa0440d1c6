/*
 * request.h: a client's submit request, checked, as plain C.
 *
 * control decodes a request line; request_submit checks its fields
 * (patterns, filter, format, top, cache) against the config and makes a
 * struct submit_req of them, which the job queue takes. The fields an op
 * does not take are control's to refuse, before this.
 *
 * Depends on: filter, config, errcode (and jansson, for the decoded
 * request and the filter's canonical text). Used by: control, jobqueue.
 */
#ifndef CLFD_REQUEST_H
#define CLFD_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "errcode.h"

struct config;
struct json_t;		/* jansson's json_t: only control's side decodes */

/* A submit's settings; every pointer malloc'd (request_free). */
struct submit_req {
	char		**patterns;	/* NULL-terminated, absolute */
	size_t		  npatterns;
	/*
	 * The effective filter as canonical JSON (compact, keys sorted,
	 * exclude_names and exclude_exts from the config when absent), as
	 * a partial's settings and a result's "filter" hold it.
	 */
	char		 *filter;
	uint32_t	  needs;	/* filter_needs() */
	char		 *format;	/* the request's, else the config's */
	size_t		  top;		/* 0: every path */
	int		  no_cache;	/* "cache": false */
};

/*
 * Check a submit request (a JSON object) and fill in sr: ERRC_NONE, or
 * the error's code (bad_field, limit, internal) with its message in msg
 * and sr empty. The log format is checked later, off the loop, by the
 * expansion.
 */
enum errcode	 request_submit(const struct json_t *req,
		    const struct config *, struct submit_req *sr, char *msg,
		    size_t msglen);
/* Free what sr holds and empty it (an empty one is fine). */
void		 request_free(struct submit_req *sr);
/*
 * The bad_field message for field, whose checker wrote why: why as it
 * is when it names the field already ("filter.status[0]: ...",
 * "format \"x\": ..."), else "field: why", so the field is named once.
 */
void		 request_field_msg(char *msg, size_t msglen, const char *field,
		    const char *why);

#endif
