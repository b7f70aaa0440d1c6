/*
 * fuzz_proto.c: the decoders of the supervisor <-> worker messages
 * (proto.c) on arbitrary payloads.
 *
 * The first byte picks the message type (its value modulo 8: 0 is a
 * header, checked with proto_hdr_check, then the rest as PROTO_READY ..
 * PROTO_MERGED); the other bytes are the payload, in an exact-size copy.
 * A decoder returns 0 or -1 and never reads past the payload; what it
 * accepts has a header proto_hdr_check accepts too, and encodes again to
 * the very same payload, but for what the encoder sets itself: padding,
 * a range without PROTO_TASK_RANGE, the last byte of an error array, an
 * expansion's limit as 0 or 1 (and its code, which only
 * proto_expanded_format_error sets), a merge answer's error beyond 4096
 * bytes or holding a NUL (it is read with its length).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The encoded message msg/mlen is a header of type t, then want/wlen. */
static void
fz_same(uint8_t *msg, size_t mlen, uint32_t type, const uint8_t *want,
    size_t wlen)
{
	struct proto_hdr	h;
	size_t			i;

	if (msg == NULL || mlen < sizeof h)
		abort();
	memcpy(&h, msg, sizeof h);
	if (h.type != type || h.len != wlen || mlen != sizeof h + wlen ||
	    proto_hdr_check(&h) != 0)
		abort();
	for (i = 0; i < wlen; i++)
		if (msg[sizeof h + i] != want[i]) {
			fprintf(stderr, "type %u: byte %zu of %zu differs\n",
			    type, i, wlen);
			abort();
		}
	free(msg);
}

/* What a decoder took must have a possible header. */
static void
fz_hdr_ok(uint32_t type, size_t len)
{
	struct proto_hdr	h;

	h.type = type;
	h.len = (uint32_t)len;
	if (proto_hdr_check(&h) != 0)
		abort();
}

static void
fz_task(uint8_t *buf, size_t len)
{
	struct proto_task	 t;
	struct proto_task_fixed	 f;
	uint8_t			*msg;
	size_t			 mlen;

	if (proto_task_decode(buf, len, &t) == -1)
		return;
	fz_hdr_ok(PROTO_TASK, len);
	msg = proto_task_encode(&t, &mlen);
	memcpy(&f, buf, sizeof f);
	f.pad = 0;
	if (!(f.flags & PROTO_TASK_RANGE))
		memset(&f.range, 0, sizeof f.range);
	memcpy(buf, &f, sizeof f);
	fz_same(msg, mlen, PROTO_TASK, buf, len);
	proto_task_clear(&t);
}

static void
fz_result(uint8_t *buf, size_t len)
{
	struct proto_result	 r;
	uint8_t			*msg;
	size_t			 mlen;

	if (proto_result_decode(buf, len, &r) == -1)
		return;
	fz_hdr_ok(PROTO_RESULT, len);
	msg = proto_result_encode(&r, &mlen);
	r.st.pad = 0;
	r.st.error[sizeof r.st.error - 1] = '\0';
	memcpy(buf, &r, sizeof r);
	fz_same(msg, mlen, PROTO_RESULT, buf, len);
}

static void
fz_merge(uint8_t *buf, size_t len)
{
	struct proto_merge	 m;
	struct proto_ref_fixed	 rf;
	uint8_t			*msg, *p;
	size_t			 mlen, i;

	if (proto_merge_decode(buf, len, &m) == -1)
		return;
	fz_hdr_ok(PROTO_MERGE, len);
	for (i = 0; i < m.f.nextra; i++)
		if (m.extra[i].path_len > 0 && ((const uint8_t *)m.extra[i].path
		    < buf || m.extra[i].path_len > len - (size_t)
		    ((const uint8_t *)m.extra[i].path - buf)))
			abort();
	msg = proto_merge_encode(&m.f, m.inputs, m.extra, m.refs, m.head,
	    &mlen);
	/* The payload as the encoder writes it: no padding, error arrays
	 * ending in NUL. */
	p = buf + offsetof(struct proto_merge_fixed, pad);
	memset(p, 0, sizeof m.f.pad);
	for (i = 0; i < m.f.nrefs; i++) {
		p = (uint8_t *)(uintptr_t)m.refs[i].path - sizeof rf;
		memcpy(&rf, p, sizeof rf);
		rf.st.error[sizeof rf.st.error - 1] = '\0';
		memcpy(p, &rf, sizeof rf);
	}
	fz_same(msg, mlen, PROTO_MERGE, buf, len);
	proto_merge_clear(&m);
}

static void
fz_merged(uint8_t *buf, size_t len)
{
	struct proto_merged	 m;
	uint8_t			*msg;
	char			*error;
	size_t			 mlen;

	if (proto_merged_decode(buf, len, &m) == -1)
		return;
	fz_hdr_ok(PROTO_MERGED, len);
	if ((const uint8_t *)m.error < buf ||
	    m.f.error_len > len - (size_t)((const uint8_t *)m.error - buf))
		abort();
	/* (an error is read with its length: a NUL in it is its business) */
	if (m.f.error_len > 4096 || memchr(m.error, '\0', m.f.error_len) != NULL)
		return;
	if ((error = malloc((size_t)m.f.error_len + 1)) == NULL)
		abort();
	memcpy(error, m.error, m.f.error_len);
	error[m.f.error_len] = '\0';
	msg = proto_merged_encode(&m.f, error, &mlen);
	fz_same(msg, mlen, PROTO_MERGED, buf, len);
	free(error);
}

static void
fz_expand(uint8_t *buf, size_t len)
{
	struct proto_expand	 x;
	uint8_t			*msg;
	size_t			 mlen, i;

	if (proto_expand_decode(buf, len, &x) == -1)
		return;
	fz_hdr_ok(PROTO_EXPAND, len);
	for (i = 0; i < x.npatterns; i++)
		if (x.patterns[i] == NULL)
			abort();
	if (x.patterns[x.npatterns] != NULL)
		abort();
	msg = proto_expand_encode(&x, &mlen);
	fz_same(msg, mlen, PROTO_EXPAND, buf, len);
	proto_expand_clear(&x);
}

static void
fz_expanded(uint8_t *buf, size_t len)
{
	struct proto_expanded		 x;
	struct proto_expanded_fixed	 f;
	struct expand_id		*ids = NULL;
	uint32_t			*unmatched = NULL;
	uint8_t				*msg;
	char				**paths = NULL, *error = NULL;
	const char			*s;
	size_t				 mlen, i;

	if (proto_expanded_decode(buf, len, &x) == -1)
		return;
	fz_hdr_ok(PROTO_EXPANDED, len);
	if ((paths = calloc((size_t)x.f.npaths + 1, sizeof *paths)) == NULL ||
	    (ids = calloc((size_t)x.f.npaths + 1, sizeof *ids)) == NULL ||
	    (unmatched = calloc((size_t)x.f.nunmatched + 1,
	    sizeof *unmatched)) == NULL ||
	    (error = malloc((size_t)x.f.error_len + 1)) == NULL)
		abort();
	for (i = 0, s = x.paths; i < x.f.npaths; i++) {
		paths[i] = (char *)(uintptr_t)s;
		s += strlen(s) + 1;
	}
	if (s != x.paths + x.f.paths_len)
		abort();
	memcpy(ids, x.ids, (size_t)x.f.npaths * sizeof *ids);
	memcpy(unmatched, x.unmatched, (size_t)x.f.nunmatched * 4);
	memcpy(error, x.error, x.f.error_len);
	error[x.f.error_len] = '\0';
	memcpy(&f, buf, sizeof f);
	if (f.code == PROTO_X_FORMAT && x.f.error_len > 0 && x.f.npaths == 0 &&
	    x.f.nunmatched == 0 && f.limit == 0)
		msg = proto_expanded_format_error(x.f.task, error, &mlen);
	else {
		msg = proto_expanded_encode(x.f.task, paths, ids, x.f.npaths,
		    unmatched, x.f.nunmatched, x.f.limit != 0,
		    x.f.error_len > 0 ? error : NULL, &mlen);
		f.code = 0;
	}
	f.limit = f.limit != 0;
	memcpy(buf, &f, sizeof f);
	fz_same(msg, mlen, PROTO_EXPANDED, buf, len);
	free(paths);
	free(ids);
	free(unmatched);
	free(error);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_hdr	 h;
	uint8_t			*buf;
	size_t			 len;

	if (size == 0)
		return 0;
	len = size - 1;
	if ((buf = malloc(len ? len : 1)) == NULL)
		return 0;
	memcpy(buf, data + 1, len);
	switch (data[0] % 8) {
	case 0:
		if (len >= sizeof h) {
			memcpy(&h, buf, sizeof h);
			if (proto_hdr_check(&h) == 0 && (h.len > PROTO_MSG_MAX ||
			    (h.type == PROTO_READY &&
			    h.len != sizeof(struct proto_ready)) ||
			    (h.type == PROTO_RESULT &&
			    h.len != sizeof(struct proto_result))))
				abort();
		}
		break;
	case PROTO_TASK:
		fz_task(buf, len);
		break;
	case PROTO_RESULT:
		fz_result(buf, len);
		break;
	case PROTO_EXPAND:
		fz_expand(buf, len);
		break;
	case PROTO_EXPANDED:
		fz_expanded(buf, len);
		break;
	case PROTO_MERGE:
		fz_merge(buf, len);
		break;
	case PROTO_MERGED:
		fz_merged(buf, len);
		break;
	default:	/* PROTO_READY: no decoder, a fixed size */
		h.type = PROTO_READY;
		h.len = (uint32_t)len;
		if ((proto_hdr_check(&h) == 0) !=
		    (len == sizeof(struct proto_ready)))
			abort();
		break;
	}
	free(buf);
	return 0;
}
