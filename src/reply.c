/*
 * reply.c: the job queue's plain data as the JSON clients read.
 *
 * Each member is where it was before the job queue stopped speaking
 * JSON: clients and tests compare replies byte for byte. Objects are
 * dumped compact, in the order members are set here.
 */
#include "reply.h"

#include "jobqueue.h"

#include <stdio.h>
#include <string.h>

/* A NULL-terminated vector as an array of strings. */
static json_t *
reply_strv(char *const *v)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; a != NULL && v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *
reply_job(const struct jq_info *info, int full)
{
	json_t	*o;

	o = json_pack("{s:I,s:s,s:I,s:I}", "job", (json_int_t)info->id,
	    "state", info->state,
	    "files_total", (json_int_t)info->files_total,
	    "files_done", (json_int_t)info->files_done);
	if (o == NULL)
		return NULL;
	if (full) {
		json_object_set_new(o, "files_failed",
		    json_integer((json_int_t)info->files_failed));
		json_object_set_new(o, "bytes_done",
		    json_integer((json_int_t)info->bytes_done));
	}
	json_object_set_new(o, "submitted", json_integer(info->submitted));
	json_object_set_new(o, "finished", info->has_result ?
	    json_integer(info->finished) : json_null());
	json_object_set_new(o, "patterns", reply_strv(info->patterns));
	return o;
}

void
reply_stats(json_t *reply, const struct jq_stats *st)
{
	json_object_set_new(reply, "queue", json_pack("{s:I,s:I,s:I,s:I}",
	    "jobs_expanding", (json_int_t)st->jobs_expanding,
	    "jobs_queued", (json_int_t)st->jobs_queued, "jobs_running",
	    (json_int_t)st->jobs_running, "tasks_pending",
	    (json_int_t)st->tasks_pending));
	json_object_set_new(reply, "jobs", json_pack("{s:I,s:I,s:I,s:I}",
	    "submitted", (json_int_t)st->submitted, "done",
	    (json_int_t)st->done, "cancelled", (json_int_t)st->cancelled,
	    "kept", (json_int_t)st->kept));
	json_object_set_new(reply, "totals", json_pack("{s:I,s:I,s:I}",
	    "files", (json_int_t)st->files, "lines", (json_int_t)st->lines,
	    "bytes", (json_int_t)st->bytes));
	json_object_set_new(reply, "cache", json_pack("{s:I,s:I,s:I,s:I,s:I,"
	    "s:I,s:I}", "hits", (json_int_t)st->cache_hits,
	    "content", (json_int_t)st->cache_content,
	    "resumed", (json_int_t)st->cache_resumed,
	    "misses", (json_int_t)st->cache_misses,
	    "off", (json_int_t)st->cache_off,
	    "bytes_stored", (json_int_t)st->cache_stored,
	    "evictions", (json_int_t)st->cache_evicted));
}

size_t
reply_progress(char *line, size_t len, const struct jq_info *info)
{
	int	n;

	n = snprintf(line, len, "{\"event\":\"progress\",\"job\":%lld,"
	    "\"files_done\":%zu,\"files_total\":%zu,\"bytes_done\":%llu}\n",
	    (long long)info->id, info->files_done, info->files_total,
	    (unsigned long long)info->bytes_done);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

size_t
reply_stopped(char *line, size_t len, const struct jq_info *info)
{
	int	n;

	n = snprintf(line, len, "{\"event\":\"done\",\"ok\":false,"
	    "\"error\":{\"code\":\"shutting_down\",\"message\":"
	    "\"clfd is stopping\"},\"job\":%lld,\"state\":\"%s\"}\n",
	    (long long)info->id, info->state);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* The members every result opens with, up to "submitted". */
static json_t *
reply_result_object(const struct jq_info *info, int ok, enum errcode code,
    const char *msg, const char *state)
{
	json_t	*r, *filter;

	/* (the canonical text, loaded: its members keep their order) */
	if ((filter = json_loads(info->filter, 0, NULL)) == NULL)
		return NULL;
	if ((r = json_object()) == NULL) {
		json_decref(filter);
		return NULL;
	}
	json_object_set_new(r, "ok", json_boolean(ok));
	if (!ok)
		json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code",
		    errcode_name(code), "message", msg));
	json_object_set_new(r, "job", json_integer(info->id));
	json_object_set_new(r, "state", json_string(state));
	json_object_set_new(r, "patterns", reply_strv(info->patterns));
	json_object_set_new(r, "unmatched", reply_strv(info->unmatched));
	json_object_set_new(r, "format", json_string(info->format));
	json_object_set_new(r, "filter", filter);
	json_object_set_new(r, "submitted", json_integer(info->submitted));
	return r;
}

/* How far a job got: "files_total", then "files_done". */
static void
reply_files(json_t *r, const struct jq_info *info)
{
	json_object_set_new(r, "files_total", json_integer(
	    (json_int_t)info->files_total));
	json_object_set_new(r, "files_done", json_integer(
	    (json_int_t)info->files_done));
}

char *
reply_result_head(const struct jq_info *info)
{
	json_t	*r;
	char	*s;
	size_t	 n;

	if ((r = reply_result_object(info, 1, ERRC_NONE, NULL,
	    info->cancelling ? "cancelled" : "done")) == NULL)
		return NULL;
	/* A cancelled job's counts are of the files done before it. */
	if (info->cancelling) {
		json_object_set_new(r, "partial", json_true());
		reply_files(r, info);
	}
	s = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(r);
	if (s != NULL && (n = strlen(s)) > 0 && s[n - 1] == '}')
		s[n - 1] = '\0';
	return s;
}

char *
reply_result_text(const struct jq_info *info, enum errcode code,
    const char *msg)
{
	json_t	*r;
	char	*s;

	if ((r = reply_result_object(info, 0, code, msg, info->state)) == NULL)
		return NULL;
	json_object_set_new(r, "finished", json_integer(info->finished));
	json_object_set_new(r, "elapsed", json_real(info->elapsed));
	reply_files(r, info);
	s = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(r);
	return s;
}
