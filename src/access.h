/*
 * access.h: the details of one access line, with no I/O.
 *
 * access_request() splits a request the way the seed does (first word is
 * the method, last word the protocol, the words between, joined by single
 * spaces, the target) and reduces the target to its path: no ?query, no
 * #fragment, no scheme://authority in absolute form; a target starting
 * with "//" is a path. access_time() turns a %t value into UTC seconds and
 * refuses anything that is not a real date and time.
 */
#ifndef CLFD_ACCESS_H
#define CLFD_ACCESS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Byte classes, the engine's one table of white space: ACCESS_WS for
 * Python's str.isspace() on a decoded log byte (\t \n \v \f \r, the
 * separators \x1c-\x1f and the space; bytes >= 0x80 reach Python as
 * surrogates, which are not space), ACCESS_PATH_END for '?' and '#'.
 * Inline, so that a module using it needs nothing else from access.c.
 */
#define ACCESS_WS		1
#define ACCESS_PATH_END		2

static inline unsigned
access_class(unsigned char c)
{
	static const unsigned char	 cls[256] = {
		['\t'] = ACCESS_WS, ['\n'] = ACCESS_WS, ['\v'] = ACCESS_WS,
		['\f'] = ACCESS_WS, ['\r'] = ACCESS_WS, [0x1c] = ACCESS_WS,
		[0x1d] = ACCESS_WS, [0x1e] = ACCESS_WS, [0x1f] = ACCESS_WS,
		[' '] = ACCESS_WS, ['?'] = ACCESS_PATH_END,
		['#'] = ACCESS_PATH_END,
	};

	return cls[c];
}

#define ACCESS_IS_WS(c)	(access_class((unsigned char)(c)) & ACCESS_WS)

struct request {
	const char	*method;
	size_t		 method_len;
	const char	*path;		/* may point into scratch */
	size_t		 path_len;
};

/*
 * 0 on success, -1 when the request cannot be split (no word at all) or the
 * target's authority is invalid. scratch must hold at least len bytes; it
 * is used when the target has to be rebuilt (runs of white space).
 */
int	access_request(const char *req, size_t len, char *scratch, struct request *);

/* 0 and *t set on success, -1 when s is not a valid Apache %t time. */
int	access_time(const char *s, size_t len, int64_t *t);

/* Parse an integer status; -1 when not digits. */
int	access_status(const char *s, size_t len);

/*
 * 1 when a URL (the referer) splits without error the way the seed's
 * urlparse does (an authority with unbalanced brackets, or brackets around
 * something that is not an IPv6 address, is an error: the seed drops such
 * a line). scratch must hold at least len bytes.
 */
int	access_url_ok(const char *s, size_t len, char *scratch);

/* "YYYY-MM-DDTHH:MM:SSZ" to UTC seconds; 0 on success, -1 if invalid. */
int	access_iso_time(const char *s, size_t len, int64_t *t);

#endif
