/*
 * fuzz_counts.c: counts_decode_merge() on arbitrary buffers must never
 * crash and return 0 or -1; a buffer it accepts must survive an encode /
 * decode round trip unchanged, and counts_json() of the table must give
 * JSON that jansson can dump and load again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"

/*
 * The result must load the way clfctl loads it (jansson refuses a NUL
 * byte in an object key, whatever the flags); build with -DFUZZ_ALLOW_NUL
 * to look past keys holding NUL bytes.
 */
#ifdef FUZZ_ALLOW_NUL
#define FUZZ_SKIP_LOAD(text)	(strstr((text), "\\u0000") != NULL)
#else
#define FUZZ_SKIP_LOAD(text)	0
#endif

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Every entry of one table is in the other with the same count. */
static int
fuzz_same(const char *key, size_t len, uint64_t n, void *arg)
{
	return counts_get(arg, key, len) != n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct counts	*c, *d;
	uint8_t		*buf, *enc;
	size_t		 elen;
	json_t		*j, *back;
	char		*text;
	int		 rc;

	if ((buf = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	if ((c = counts_new()) == NULL || (d = counts_new()) == NULL)
		abort();
	rc = counts_decode_merge(c, buf, size);
	if (rc != 0 && rc != -1)
		abort();
	/* Even a refused buffer leaves a usable table. */
	if ((enc = counts_encode(c, &elen)) == NULL)
		abort();
	if (counts_decode_merge(d, enc, elen) != 0)
		abort();
	if (counts_size(c) != counts_size(d) ||
	    counts_total(c) != counts_total(d) ||
	    counts_foreach(c, fuzz_same, d) != 0)
		abort();
	if (rc == 0 && counts_size(c) <= 64) {
		/* Wire forms of equal tables decode to equal tables. */
		if ((j = counts_json(c, 0)) == NULL)
			abort();
		if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
			abort();
		if (!FUZZ_SKIP_LOAD(text)) {
			if ((back = json_loads(text, 0, NULL)) == NULL)
				abort();
			json_decref(back);
		}
		free(text);
		json_decref(j);
		if ((j = counts_json(c, 1)) == NULL || json_object_size(j) > 1)
			abort();
		json_decref(j);
	}
	/* Clearing and reusing the table works. */
	counts_clear(c);
	if (counts_size(c) != 0 || counts_total(c) != 0 ||
	    counts_decode_merge(c, enc, elen) != 0 ||
	    counts_size(c) != counts_size(d))
		abort();
	free(enc);
	counts_free(c);
	counts_free(d);
	free(buf);
	return 0;
}
