/*
 * errcode.c: the names of the client protocol's error codes.
 */
#include <config.h>

#include <stddef.h>

#include "errcode.h"

static const char *const errcode_names[ERRC_MAX] = {
	[ERRC_NONE] = "none",
	[ERRC_BAD_JSON] = "bad_json",
	[ERRC_BAD_REQUEST] = "bad_request",
	[ERRC_UNKNOWN_OP] = "unknown_op",
	[ERRC_BAD_FIELD] = "bad_field",
	[ERRC_TOO_LARGE] = "too_large",
	[ERRC_LIMIT] = "limit",
	[ERRC_NOT_FOUND] = "not_found",
	[ERRC_NOT_FINISHED] = "not_finished",
	[ERRC_FINISHED] = "finished",
	[ERRC_CANCELLED] = "cancelled",
	[ERRC_SHUTTING_DOWN] = "shutting_down",
	[ERRC_IDLE_TIMEOUT] = "idle_timeout",
	[ERRC_INTERNAL] = "internal",
};

const char *
errcode_name(enum errcode code)
{
	if ((unsigned)code >= ERRC_MAX || errcode_names[code] == NULL)
		return "internal";
	return errcode_names[code];
}
