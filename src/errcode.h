/*
 * errcode.h: the error codes of the client protocol. A reply that is not
 * ok carries {"code": errcode_name(code), "message": ...}; clfd(8) lists
 * them under "Error codes", and clfctl maps them to its exit statuses.
 */
#ifndef CLFD_ERRCODE_H
#define CLFD_ERRCODE_H

enum errcode {
	ERRC_NONE,		/* no error */
	ERRC_BAD_JSON,		/* the line is not JSON */
	ERRC_BAD_REQUEST,	/* not an object, or no "op" string */
	ERRC_UNKNOWN_OP,
	ERRC_BAD_FIELD,		/* the message names the field */
	ERRC_TOO_LARGE,		/* a line over request_max */
	ERRC_LIMIT,		/* a configured bound reached */
	ERRC_NOT_FOUND,		/* no such job (or not the client's) */
	ERRC_NOT_FINISHED,	/* its result is not there yet */
	ERRC_FINISHED,		/* cancel of a job that has its result */
	ERRC_CANCELLED,		/* the result of a cancelled job */
	ERRC_SHUTTING_DOWN,
	ERRC_IDLE_TIMEOUT,
	ERRC_INTERNAL,
	ERRC_MAX
};

/* The code's name on the wire ("bad_field", ...); "internal" when unknown. */
const char	*errcode_name(enum errcode);

#endif
