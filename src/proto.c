/*
 * proto.c: encoding, decoding and blocking I/O of the supervisor <-> worker
 * messages of proto.h. Every length is checked before it is used; a
 * message that does not add up is refused whole.
 */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Allocate a message of payload size plen with its header filled in. */
static uint8_t *
proto_alloc(uint32_t type, size_t plen, size_t *lenp)
{
	struct proto_hdr	 h;
	uint8_t			*buf;

	if (plen > PROTO_MSG_MAX) {
		errno = EMSGSIZE;
		return NULL;
	}
	if ((buf = malloc(sizeof h + plen)) == NULL)
		return NULL;
	h.type = type;
	h.len = (uint32_t)plen;
	memcpy(buf, &h, sizeof h);
	*lenp = sizeof h + plen;
	return buf;
}

int
proto_hdr_check(const struct proto_hdr *h)
{
	size_t	min;

	switch (h->type) {
	case PROTO_READY:
		return h->len == sizeof(struct proto_ready) ? 0 : -1;
	case PROTO_TASK:
		min = sizeof(struct proto_task_fixed);
		break;
	case PROTO_RESULT:
		min = sizeof(struct proto_result_fixed);
		break;
	case PROTO_EXPAND:
		min = sizeof(struct proto_expand_fixed);
		break;
	case PROTO_EXPANDED:
		min = sizeof(struct proto_expanded_fixed);
		break;
	default:
		return -1;
	}
	return h->len >= min && h->len <= PROTO_MSG_MAX ? 0 : -1;
}

/*
 * 0 when the len bytes at p are exactly n NUL-terminated strings (none
 * when len is 0 and n is 0), -1 otherwise.
 */
static int
proto_strings(const uint8_t *p, size_t len, uint32_t n)
{
	const uint8_t	*e, *end = p + len;
	uint32_t	 i = 0;

	while (p < end) {
		if ((e = memchr(p, '\0', (size_t)(end - p))) == NULL ||
		    i == n)
			return -1;
		p = e + 1;
		i++;
	}
	return i == n ? 0 : -1;
}

uint8_t *
proto_task_encode(const struct proto_task *t, size_t *lenp)
{
	struct proto_task_fixed	 f;
	size_t			 plen, rlen = 0, n, i;
	uint8_t			*buf, *p;

	memset(&f, 0, sizeof f);
	for (i = 0; t->roots != NULL && t->roots[i] != NULL; i++)
		rlen += strlen(t->roots[i]) + 1;
	f.task = t->task;
	f.line_max = t->line_max;
	f.nroots = (uint32_t)i;
	n = strlen(t->path);
	plen = sizeof f + n + strlen(t->format) + strlen(t->filter) + rlen;
	if (plen > PROTO_MSG_MAX) {
		errno = EMSGSIZE;
		return NULL;
	}
	f.path_len = (uint32_t)n;
	f.format_len = (uint32_t)strlen(t->format);
	f.filter_len = (uint32_t)strlen(t->filter);
	f.roots_len = (uint32_t)rlen;
	if ((buf = proto_alloc(PROTO_TASK, plen, lenp)) == NULL)
		return NULL;
	p = buf + sizeof(struct proto_hdr);
	memcpy(p, &f, sizeof f);
	p += sizeof f;
	memcpy(p, t->path, f.path_len);
	p += f.path_len;
	memcpy(p, t->format, f.format_len);
	p += f.format_len;
	memcpy(p, t->filter, f.filter_len);
	p += f.filter_len;
	for (i = 0; i < f.nroots; i++) {
		n = strlen(t->roots[i]) + 1;
		memcpy(p, t->roots[i], n);
		p += n;
	}
	return buf;
}

/*
 * The task's strings live in one allocation: the roots vector, then
 * path, format and filter each NUL-terminated, then the roots' bytes.
 */
int
proto_task_decode(const uint8_t *buf, size_t len, struct proto_task *t)
{
	struct proto_task_fixed	 f;
	const uint8_t		*v;
	size_t			 vlen, vecsz, need;
	char			*mem, *s, **roots;
	uint32_t		 i;

	memset(t, 0, sizeof *t);
	if (len < sizeof f)
		return -1;
	memcpy(&f, buf, sizeof f);
	v = buf + sizeof f;
	vlen = len - sizeof f;
	/* Each length is at most PROTO_MSG_MAX, so the sum cannot wrap. */
	if ((uint64_t)f.path_len + f.format_len + f.filter_len + f.roots_len !=
	    vlen || f.nroots > f.roots_len)
		return -1;
	if (memchr(v, '\0', vlen - f.roots_len) != NULL)
		return -1;
	/* The roots part must be exactly nroots NUL-terminated strings. */
	for (i = 0, need = 0; need < f.roots_len; i++) {
		s = memchr(v + vlen - f.roots_len + need, '\0', f.roots_len - need);
		if (s == NULL)
			return -1;
		need = (size_t)((const uint8_t *)s - (v + vlen - f.roots_len)) + 1;
	}
	if (i != f.nroots)
		return -1;

	vecsz = f.nroots > 0 ? (f.nroots + 1) * sizeof(char *) : 0;
	if ((mem = malloc(vecsz + vlen + 3)) == NULL)
		return -1;
	roots = f.nroots > 0 ? (char **)(void *)mem : NULL;
	s = mem + vecsz;
	t->task = f.task;
	t->line_max = f.line_max;
	t->path = s;
	memcpy(s, v, f.path_len);
	s += f.path_len;
	*s++ = '\0';
	v += f.path_len;
	t->format = s;
	memcpy(s, v, f.format_len);
	s += f.format_len;
	*s++ = '\0';
	v += f.format_len;
	t->filter = s;
	memcpy(s, v, f.filter_len);
	s += f.filter_len;
	*s++ = '\0';
	v += f.filter_len;
	memcpy(s, v, f.roots_len);
	for (i = 0; i < f.nroots; i++) {
		roots[i] = s;
		s += strlen(s) + 1;
	}
	if (roots != NULL)
		roots[f.nroots] = NULL;
	t->roots = roots;
	return 0;
}

void
proto_task_clear(struct proto_task *t)
{
	/* The block starts at the roots vector when there is one, else at path. */
	if (t->roots != NULL)
		free(t->roots);
	else
		free((void *)(uintptr_t)t->path);
	memset(t, 0, sizeof *t);
}

uint8_t *
proto_result_encode(const struct proto_result_fixed *rf, const char *error,
    const uint8_t *counts, size_t counts_len, size_t *lenp)
{
	struct proto_result_fixed	 f = *rf;
	size_t				 elen = error != NULL ? strlen(error) : 0;
	size_t				 plen;
	uint8_t				*buf, *p;

	if (counts_len > PROTO_MSG_MAX || elen > PROTO_MSG_MAX ||
	    (plen = sizeof f + elen + counts_len) > PROTO_MSG_MAX) {
		errno = EMSGSIZE;
		return NULL;
	}
	f.error_len = (uint32_t)elen;
	f.counts_len = (uint32_t)counts_len;
	f.pad = 0;
	if ((buf = proto_alloc(PROTO_RESULT, plen, lenp)) == NULL)
		return NULL;
	p = buf + sizeof(struct proto_hdr);
	memcpy(p, &f, sizeof f);
	p += sizeof f;
	if (elen > 0)
		memcpy(p, error, elen);
	p += elen;
	if (counts_len > 0)
		memcpy(p, counts, counts_len);
	return buf;
}

int
proto_result_decode(const uint8_t *buf, size_t len, struct proto_result *r)
{
	memset(r, 0, sizeof *r);
	if (len < sizeof r->f)
		return -1;
	memcpy(&r->f, buf, sizeof r->f);
	if ((uint64_t)r->f.error_len + r->f.counts_len != len - sizeof r->f)
		return -1;
	r->error = (const char *)buf + sizeof r->f;
	r->counts = buf + sizeof r->f + r->f.error_len;
	return 0;
}

uint8_t *
proto_expand_encode(const struct proto_expand *x, size_t *lenp)
{
	struct proto_expand_fixed	 f;
	size_t				 plen = 0, rlen = 0, n, i, nroots = 0;
	uint8_t				*buf, *p;

	memset(&f, 0, sizeof f);
	for (i = 0; i < x->npatterns; i++) {
		plen += strlen(x->patterns[i]) + 1;
		if (plen > PROTO_MSG_MAX)
			goto toobig;
	}
	for (; x->roots != NULL && x->roots[nroots] != NULL; nroots++) {
		rlen += strlen(x->roots[nroots]) + 1;
		if (rlen > PROTO_MSG_MAX || plen + rlen > PROTO_MSG_MAX)
			goto toobig;
	}
	f.task = x->task;
	f.files_max = x->files_max;
	f.npatterns = x->npatterns;
	f.patterns_len = (uint32_t)plen;
	f.nroots = (uint32_t)nroots;
	f.roots_len = (uint32_t)rlen;
	if ((buf = proto_alloc(PROTO_EXPAND, sizeof f + plen + rlen,
	    lenp)) == NULL)
		return NULL;
	p = buf + sizeof(struct proto_hdr);
	memcpy(p, &f, sizeof f);
	p += sizeof f;
	for (i = 0; i < x->npatterns; i++) {
		n = strlen(x->patterns[i]) + 1;
		memcpy(p, x->patterns[i], n);
		p += n;
	}
	for (i = 0; i < nroots; i++) {
		n = strlen(x->roots[i]) + 1;
		memcpy(p, x->roots[i], n);
		p += n;
	}
	return buf;
toobig:
	errno = EMSGSIZE;
	return NULL;
}

/*
 * One allocation: the patterns vector, the roots vector, then the
 * patterns' and the roots' bytes.
 */
int
proto_expand_decode(const uint8_t *buf, size_t len, struct proto_expand *x)
{
	struct proto_expand_fixed	 f;
	size_t				 vecsz, rvecsz, slen;
	char				*mem, *s, **v, **r;
	uint32_t			 i;

	memset(x, 0, sizeof *x);
	if (len < sizeof f)
		return -1;
	memcpy(&f, buf, sizeof f);
	if ((uint64_t)f.patterns_len + f.roots_len != len - sizeof f ||
	    proto_strings(buf + sizeof f, f.patterns_len, f.npatterns) == -1 ||
	    proto_strings(buf + sizeof f + f.patterns_len, f.roots_len,
	    f.nroots) == -1)
		return -1;
	/* n <= its strings' length <= PROTO_MSG_MAX: no overflow. */
	vecsz = ((size_t)f.npatterns + 1) * sizeof(char *);
	rvecsz = ((size_t)f.nroots + 1) * sizeof(char *);
	slen = (size_t)f.patterns_len + f.roots_len;
	if ((mem = malloc(vecsz + rvecsz + slen)) == NULL)
		return -1;
	v = (char **)(void *)mem;
	r = (char **)(void *)(mem + vecsz);
	s = mem + vecsz + rvecsz;
	memcpy(s, buf + sizeof f, slen);
	for (i = 0; i < f.npatterns; i++) {
		v[i] = s;
		s += strlen(s) + 1;
	}
	v[f.npatterns] = NULL;
	for (i = 0; i < f.nroots; i++) {
		r[i] = s;
		s += strlen(s) + 1;
	}
	r[f.nroots] = NULL;
	x->task = f.task;
	x->files_max = f.files_max;
	x->npatterns = f.npatterns;
	x->patterns = v;
	x->roots = f.nroots > 0 ? r : NULL;
	return 0;
}

void
proto_expand_clear(struct proto_expand *x)
{
	free(x->patterns);
	memset(x, 0, sizeof *x);
}

uint8_t *
proto_expanded_encode(uint64_t task, char *const *paths, size_t npaths,
    const uint32_t *unmatched, size_t nunmatched, int limit,
    const char *error, size_t *lenp)
{
	struct proto_expanded_fixed	 f;
	size_t				 elen, plen = 0, n, i;
	uint8_t				*buf, *p;

	memset(&f, 0, sizeof f);
	elen = error != NULL ? strlen(error) : 0;
	if (npaths > UINT32_MAX ||
	    nunmatched > PROTO_MSG_MAX / 4 ||
	    elen > PROTO_MSG_MAX)
		goto toobig;
	for (i = 0; i < npaths; i++) {
		plen += strlen(paths[i]) + 1;
		if (plen > PROTO_MSG_MAX)
			goto toobig;
	}
	if (sizeof f + nunmatched * 4 + elen + plen > PROTO_MSG_MAX)
		goto toobig;
	f.task = task;
	f.npaths = (uint32_t)npaths;
	f.paths_len = (uint32_t)plen;
	f.nunmatched = (uint32_t)nunmatched;
	f.error_len = (uint32_t)elen;
	f.limit = limit != 0;
	if ((buf = proto_alloc(PROTO_EXPANDED, sizeof f + nunmatched * 4 +
	    elen + plen, lenp)) == NULL)
		return NULL;
	p = buf + sizeof(struct proto_hdr);
	memcpy(p, &f, sizeof f);
	p += sizeof f;
	if (nunmatched > 0)
		memcpy(p, unmatched, nunmatched * 4);
	p += nunmatched * 4;
	if (elen > 0)
		memcpy(p, error, elen);
	p += elen;
	for (i = 0; i < npaths; i++) {
		n = strlen(paths[i]) + 1;
		memcpy(p, paths[i], n);
		p += n;
	}
	return buf;
toobig:
	errno = EMSGSIZE;
	return NULL;
}

int
proto_expanded_decode(const uint8_t *buf, size_t len, struct proto_expanded *x)
{
	const uint8_t	*p;

	memset(x, 0, sizeof *x);
	if (len < sizeof x->f)
		return -1;
	memcpy(&x->f, buf, sizeof x->f);
	if ((uint64_t)x->f.nunmatched * 4 + x->f.error_len + x->f.paths_len !=
	    len - sizeof x->f)
		return -1;
	p = buf + sizeof x->f;
	x->unmatched = p;
	p += (size_t)x->f.nunmatched * 4;
	x->error = (const char *)p;
	if (memchr(p, '\0', x->f.error_len) != NULL)
		return -1;
	p += x->f.error_len;
	x->paths = (const char *)p;
	if (proto_strings(p, x->f.paths_len, x->f.npaths) == -1)
		return -1;
	return 0;
}

int
proto_write(int fd, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes; 1 done, 0 EOF at the start, -1 error/short. */
static int
proto_read_full(int fd, void *buf, size_t len)
{
	uint8_t	*p = buf;
	size_t	 got = 0;
	ssize_t	 n;

	while (got < len) {
		if ((n = read(fd, p + got, len - got)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			if (got == 0)
				return 0;
			errno = EPROTO;
			return -1;
		}
		got += (size_t)n;
	}
	return 1;
}

int
proto_read(int fd, struct proto_hdr *h, uint8_t **payload)
{
	uint8_t	*p;
	int	 r;

	*payload = NULL;
	if ((r = proto_read_full(fd, h, sizeof *h)) <= 0)
		return r;
	if (proto_hdr_check(h) == -1) {
		errno = EPROTO;
		return -1;
	}
	if ((p = malloc(h->len > 0 ? h->len : 1)) == NULL)
		return -1;
	if (h->len > 0 && (r = proto_read_full(fd, p, h->len)) != 1) {
		if (r == 0)
			errno = EPROTO;		/* the peer closed after the header */
		free(p);
		return -1;
	}
	*payload = p;
	return 1;
}
