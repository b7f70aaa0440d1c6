/*
 * proto.c: encoding, decoding and blocking I/O of the supervisor <-> worker
 * messages of proto.h. Every length is checked before it is used; a
 * message that does not add up is refused whole.
 */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
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
		return h->len == sizeof(struct proto_result) ? 0 : -1;
	case PROTO_MERGE:
		min = sizeof(struct proto_merge_fixed);
		break;
	case PROTO_MERGED:
		min = sizeof(struct proto_merged_fixed);
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
	f.flags = t->flags;
	if (t->flags & PROTO_TASK_RANGE)
		f.range = t->range;
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
	    vlen || f.nroots > f.roots_len ||
	    (f.flags & ~(uint32_t)(PROTO_TASK_NO_CACHE | PROTO_TASK_RANGE |
	    PROTO_TASK_NO_REF | PROTO_TASK_AHEAD)) != 0)
		return -1;
	if ((f.flags & PROTO_TASK_RANGE) && (f.range.off >= f.range.end ||
	    f.range.end > f.range.size))
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
	t->flags = f.flags;
	if (f.flags & PROTO_TASK_RANGE)
		t->range = f.range;
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
proto_result_encode(const struct proto_result *r, size_t *lenp)
{
	struct proto_result	 f = *r;
	uint8_t			*buf;

	/* The error text is a NUL-terminated string in a fixed array. */
	f.st.error[sizeof f.st.error - 1] = '\0';
	f.st.pad = 0;
	if ((buf = proto_alloc(PROTO_RESULT, sizeof f, lenp)) == NULL)
		return NULL;
	memcpy(buf + sizeof(struct proto_hdr), &f, sizeof f);
	return buf;
}

int
proto_result_decode(const uint8_t *buf, size_t len, struct proto_result *r)
{
	memset(r, 0, sizeof *r);
	if (len != sizeof *r)
		return -1;
	memcpy(r, buf, sizeof *r);
	if (memchr(r->st.error, '\0', sizeof r->st.error) == NULL)
		return -1;
	return 0;
}

uint8_t *
proto_merge_encode(const struct proto_merge_fixed *mf, const uint64_t *inputs,
    const struct proto_extra *extra, const struct proto_ref *refs,
    const char *head, size_t *lenp)
{
	struct proto_merge_fixed	 f = *mf;
	struct proto_ref_fixed		 rf;
	uint64_t			 plen, elen = 0, rlen = 0, hlen;
	uint32_t			 n;
	size_t				 i;
	uint8_t				*buf, *p;

	hlen = head != NULL ? strlen(head) : 0;
	for (i = 0; i < f.nextra; i++)
		elen += (uint64_t)extra[i].path_len + PROTO_EXTRA_FIXED;
	for (i = 0; i < f.nrefs; i++)
		rlen += sizeof rf + (uint64_t)refs[i].f.path_len;
	plen = sizeof f + (uint64_t)f.ninputs * 8 + elen + rlen + hlen;
	if (plen > PROTO_MSG_MAX) {
		errno = EMSGSIZE;
		return NULL;
	}
	f.extra_len = (uint32_t)elen;
	f.refs_len = (uint32_t)rlen;
	f.head_len = (uint32_t)hlen;
	f.pad = 0;
	if ((buf = proto_alloc(PROTO_MERGE, (size_t)plen, lenp)) == NULL)
		return NULL;
	p = buf + sizeof(struct proto_hdr);
	memcpy(p, &f, sizeof f);
	p += sizeof f;
	if (f.ninputs > 0)
		memcpy(p, inputs, (size_t)f.ninputs * 8);
	p += (size_t)f.ninputs * 8;
	for (i = 0; i < f.nextra; i++) {
		n = (uint32_t)extra[i].path_len;
		memcpy(p, &n, 4);
		memcpy(p + 4, extra[i].path, n);
		memcpy(p + 4 + n, &extra[i].st, sizeof extra[i].st);
		memcpy(p + 4 + n + sizeof extra[i].st, &extra[i].off, 8);
		memcpy(p + 12 + n + sizeof extra[i].st, &extra[i].end, 8);
		p += n + PROTO_EXTRA_FIXED;
	}
	for (i = 0; i < f.nrefs; i++) {
		rf = refs[i].f;
		rf.st.error[sizeof rf.st.error - 1] = '\0';
		memcpy(p, &rf, sizeof rf);
		memcpy(p + sizeof rf, refs[i].path, rf.path_len);
		p += sizeof rf + rf.path_len;
	}
	if (hlen > 0)
		memcpy(p, head, hlen);
	return buf;
}

int
proto_merge_decode(const uint8_t *buf, size_t len, struct proto_merge *m)
{
	const uint8_t	*p, *end;
	char		*head;
	uint32_t	 i, n;

	memset(m, 0, sizeof *m);
	if (len < sizeof m->f)
		return -1;
	memcpy(&m->f, buf, sizeof m->f);
	/* Each length is at most PROTO_MSG_MAX, so the sum cannot wrap. */
	if (sizeof m->f + (uint64_t)m->f.ninputs * 8 + m->f.extra_len +
	    m->f.refs_len + m->f.head_len != len ||
	    (uint64_t)m->f.nextra * PROTO_EXTRA_FIXED > m->f.extra_len ||
	    (uint64_t)m->f.nrefs * sizeof(struct proto_ref_fixed) >
	    m->f.refs_len)
		return -1;
	p = buf + sizeof m->f;
	if ((m->inputs = calloc((size_t)m->f.ninputs + 1, 8)) == NULL ||
	    (m->extra = calloc((size_t)m->f.nextra + 1,
	    sizeof *m->extra)) == NULL ||
	    (m->refs = calloc((size_t)m->f.nrefs + 1,
	    sizeof *m->refs)) == NULL ||
	    (head = malloc((size_t)m->f.head_len + 1)) == NULL)
		goto fail;
	memcpy(m->inputs, p, (size_t)m->f.ninputs * 8);
	p += (size_t)m->f.ninputs * 8;
	end = p + m->f.extra_len;
	for (i = 0; i < m->f.nextra; i++) {
		if ((size_t)(end - p) < 4)
			goto bad;
		memcpy(&n, p, 4);
		if ((size_t)(end - p) - 4 < (uint64_t)n + PROTO_EXTRA_FIXED - 4)
			goto bad;
		m->extra[i].path = (const char *)p + 4;
		m->extra[i].path_len = n;
		memcpy(&m->extra[i].st, p + 4 + n, sizeof m->extra[i].st);
		memcpy(&m->extra[i].off, p + 4 + n + sizeof m->extra[i].st, 8);
		memcpy(&m->extra[i].end, p + 12 + n + sizeof m->extra[i].st, 8);
		if (memchr(m->extra[i].st.error, '\0',
		    sizeof m->extra[i].st.error) == NULL ||
		    m->extra[i].off > m->extra[i].end)
			goto bad;
		p += n + PROTO_EXTRA_FIXED;
	}
	if (p != end)
		goto bad;
	end = p + m->f.refs_len;
	for (i = 0; i < m->f.nrefs; i++) {
		if ((size_t)(end - p) < sizeof m->refs[i].f)
			goto bad;
		memcpy(&m->refs[i].f, p, sizeof m->refs[i].f);
		p += sizeof m->refs[i].f;
		if ((size_t)(end - p) < m->refs[i].f.path_len ||
		    m->refs[i].f.input >= m->f.ninputs ||
		    memchr(m->refs[i].f.st.error, '\0',
		    sizeof m->refs[i].f.st.error) == NULL)
			goto bad;
		m->refs[i].path = (const char *)p;
		p += m->refs[i].f.path_len;
	}
	/* The head is text, written and read as a string: no NUL in it. */
	if (p != end || memchr(p, '\0', m->f.head_len) != NULL)
		goto bad;
	memcpy(head, p, m->f.head_len);
	head[m->f.head_len] = '\0';
	m->head = head;
	return 0;
bad:
	free(head);
fail:
	proto_merge_clear(m);
	return -1;
}

void
proto_merge_clear(struct proto_merge *m)
{
	free(m->inputs);
	free(m->extra);
	free(m->refs);
	free((void *)(uintptr_t)m->head);
	memset(m, 0, sizeof *m);
}

uint8_t *
proto_merged_encode(const struct proto_merged_fixed *mf, const char *error,
    size_t *lenp)
{
	struct proto_merged_fixed	 f = *mf;
	size_t				 elen = error != NULL ? strlen(error) : 0;
	uint8_t				*buf;

	if (elen > 4096)
		elen = 4096;
	f.error_len = (uint32_t)elen;
	if ((buf = proto_alloc(PROTO_MERGED, sizeof f + elen, lenp)) == NULL)
		return NULL;
	memcpy(buf + sizeof(struct proto_hdr), &f, sizeof f);
	if (elen > 0)
		memcpy(buf + sizeof(struct proto_hdr) + sizeof f, error, elen);
	return buf;
}

int
proto_merged_decode(const uint8_t *buf, size_t len, struct proto_merged *m)
{
	memset(m, 0, sizeof *m);
	if (len < sizeof m->f)
		return -1;
	memcpy(&m->f, buf, sizeof m->f);
	if ((uint64_t)m->f.error_len != len - sizeof m->f)
		return -1;
	m->error = (const char *)buf + sizeof m->f;
	return 0;
}

int
proto_spool_path(char *buf, size_t len, const char *dir, uint64_t task,
    int result)
{
	int	n;

	n = snprintf(buf, len, "%s/t%llu.%s", dir, (unsigned long long)task,
	    result ? "json" : "part");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

uint8_t *
proto_expand_encode(const struct proto_expand *x, size_t *lenp)
{
	struct proto_expand_fixed	 f;
	size_t				 plen = 0, rlen = 0, n, i, nroots = 0;
	size_t				 flen;
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
	flen = x->format != NULL ? strlen(x->format) : 0;
	if (flen > PROTO_MSG_MAX || plen + rlen + flen > PROTO_MSG_MAX)
		goto toobig;
	f.format_len = (uint32_t)flen;
	f.task = x->task;
	f.files_max = x->files_max;
	f.split_size = x->split_size;
	f.npatterns = x->npatterns;
	f.needs = x->needs;
	f.patterns_len = (uint32_t)plen;
	f.nroots = (uint32_t)nroots;
	f.roots_len = (uint32_t)rlen;
	if ((buf = proto_alloc(PROTO_EXPAND, sizeof f + plen + rlen + flen,
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
	if (flen > 0)
		memcpy(p, x->format, flen);
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
	if ((uint64_t)f.patterns_len + f.roots_len + f.format_len !=
	    len - sizeof f ||
	    proto_strings(buf + sizeof f, f.patterns_len, f.npatterns) == -1 ||
	    proto_strings(buf + sizeof f + f.patterns_len, f.roots_len,
	    f.nroots) == -1 ||
	    memchr(buf + sizeof f + f.patterns_len + f.roots_len, '\0',
	    f.format_len) != NULL)
		return -1;
	/* n <= its strings' length <= PROTO_MSG_MAX: no overflow. */
	vecsz = ((size_t)f.npatterns + 1) * sizeof(char *);
	rvecsz = ((size_t)f.nroots + 1) * sizeof(char *);
	slen = (size_t)f.patterns_len + f.roots_len;
	if ((mem = malloc(vecsz + rvecsz + slen + f.format_len + 1)) == NULL)
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
	memcpy(s, buf + sizeof f + slen, f.format_len);
	s[f.format_len] = '\0';
	x->format = f.format_len > 0 ? s : NULL;
	x->task = f.task;
	x->files_max = f.files_max;
	x->split_size = f.split_size;
	x->npatterns = f.npatterns;
	x->needs = f.needs;
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
proto_expanded_format_error(uint64_t task, const char *error, size_t *lenp)
{
	uint8_t				*buf;
	struct proto_expanded_fixed	 f;

	if ((buf = proto_expanded_encode(task, NULL, NULL, 0, NULL, 0, 0, error,
	    lenp)) == NULL)
		return NULL;
	memcpy(&f, buf + sizeof(struct proto_hdr), sizeof f);
	f.code = PROTO_X_FORMAT;
	memcpy(buf + sizeof(struct proto_hdr), &f, sizeof f);
	return buf;
}

uint8_t *
proto_expanded_encode(uint64_t task, char *const *paths,
    const struct expand_id *ids, size_t npaths, const uint32_t *unmatched, size_t nunmatched, int limit,
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
	if (npaths > PROTO_MSG_MAX / sizeof *ids || sizeof f + nunmatched * 4 +
	    elen + plen + npaths * sizeof *ids > PROTO_MSG_MAX)
		goto toobig;
	f.task = task;
	f.npaths = (uint32_t)npaths;
	f.paths_len = (uint32_t)plen;
	f.nunmatched = (uint32_t)nunmatched;
	f.error_len = (uint32_t)elen;
	f.limit = limit != 0;
	if ((buf = proto_alloc(PROTO_EXPANDED, sizeof f + nunmatched * 4 +
	    elen + plen + npaths * sizeof *ids, lenp)) == NULL)
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
	if (npaths > 0)
		memcpy(p, ids, npaths * sizeof *ids);
	return buf;
toobig:
	errno = EMSGSIZE;
	return NULL;
}

int
proto_expanded_decode(const uint8_t *buf, size_t len, struct proto_expanded *x)
{
	struct expand_id	 id;
	const uint8_t		*p;
	uint32_t		 i;

	memset(x, 0, sizeof *x);
	if (len < sizeof x->f)
		return -1;
	memcpy(&x->f, buf, sizeof x->f);
	if ((uint64_t)x->f.nunmatched * 4 + x->f.error_len + x->f.paths_len +
	    (uint64_t)x->f.npaths * sizeof(struct expand_id) != len - sizeof x->f)
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
	x->ids = p + x->f.paths_len;
	for (i = 0; i < x->f.npaths; i++) {
		memcpy(&id, x->ids + (size_t)i * sizeof id, sizeof id);
		if ((id.flags & ~(uint32_t)EXPAND_FLAGS) != 0 || id.pad != 0)
			return -1;
	}
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
