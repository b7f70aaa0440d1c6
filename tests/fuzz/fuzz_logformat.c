/*
 * fuzz_logformat.c: logformat_compile() on arbitrary specs, then
 * logformat_match() on arbitrary lines, with a differential check: when
 * a translated format's fast matcher accepts a line, PCRE2 must accept it
 * too and give the very same fields.
 *
 * Input: the spec up to the first '\n' (cut at a NUL), then lines split
 * on '\n'. logformat.c is included so that the check can turn the fast
 * matcher off.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logformat.c"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The fields of a as (offset, length) pairs relative to line. */
static void
fuzz_fields(const struct access *a, const char *line, long *out)
{
	const char	*p[5] = { a->request, a->time, a->status, a->referer,
	    a->path };
	size_t		 l[5] = { a->request_len, a->time_len, a->status_len,
	    a->referer_len, a->path_len };
	int		 i;

	for (i = 0; i < 5; i++) {
		out[2 * i] = p[i] == NULL ? -1 : (long)(p[i] - line);
		out[2 * i + 1] = p[i] == NULL ? 0 : (long)l[i];
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logformat	*lf;
	struct access		 a, b;
	const uint8_t		*nl, *end = data + size, *p;
	char			*spec, *line, err[256];
	size_t			 slen, len, nprog;
	long			 fa[10], fb[10];
	int			 ra, rb, i;

	nl = memchr(data, '\n', size);
	slen = nl != NULL ? (size_t)(nl - data) : size;
	if ((spec = malloc(slen + 1)) == NULL)
		return 0;
	memcpy(spec, data, slen);
	spec[slen] = '\0';
	lf = logformat_compile(spec, err, sizeof err);
	free(spec);
	if (lf == NULL) {
		if (memchr(err, '\0', sizeof err) == NULL)
			abort();
		return 0;
	}
	(void)logformat_spec(lf);
	(void)logformat_has_time(lf);
	(void)logformat_has_status(lf);
	nprog = lf->nprog;
	for (p = nl != NULL ? nl + 1 : end; p < end; p += len + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		/* An exact copy, so that ASan sees any read past the line. */
		if ((line = malloc(len ? len : 1)) == NULL)
			break;
		memcpy(line, p, len);
		memset(&a, 0xa5, sizeof a);
		ra = logformat_match(lf, line, len, &a);
		if (ra != 0 && ra != 1 && ra != -1)
			abort();
		if (ra == 1) {
			fuzz_fields(&a, line, fa);
			for (i = 0; i < 5; i++)
				if (fa[2 * i] != -1 && (fa[2 * i] < 0 ||
				    (size_t)(fa[2 * i] + fa[2 * i + 1]) > len))
					abort();
		}
		if (nprog > 0) {
			/* The same line through PCRE2 only. */
			lf->nprog = 0;
			memset(&b, 0x5a, sizeof b);
			rb = logformat_match(lf, line, len, &b);
			lf->nprog = nprog;
			if (ra != rb)
				abort();
			if (ra == 1) {
				fuzz_fields(&b, line, fb);
				if (memcmp(fa, fb, sizeof fa) != 0)
					abort();
			}
		}
		free(line);
		if (nl == NULL)
			break;
	}
	logformat_free(lf);
	return 0;
}
