/*
 * fuzz_request.c: request_submit() on arbitrary JSON text, the way the
 * daemon's control module hands it a decoded submit request, with a
 * small patterns_max so that the limits are reached. A request refused
 * has a code, a message and an empty submit_req; one taken has absolute
 * patterns within the limit, a filter text that is canonical (loading
 * and dumping it sorted and compact gives it back) and builds a filter,
 * and a format. Submitted again as a request, what it made is taken and
 * makes the very same submit_req.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "filter.h"
#include "request.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct config	fuzz_cfg;
static int		fuzz_ready;

/* 1 when a and b hold the same settings. */
static int
fuzz_same(const struct submit_req *a, const struct submit_req *b)
{
	size_t	 i;

	if (a->npatterns != b->npatterns || a->needs != b->needs ||
	    a->top != b->top || a->no_cache != b->no_cache ||
	    strcmp(a->filter, b->filter) != 0 ||
	    strcmp(a->format, b->format) != 0)
		return 0;
	for (i = 0; i < a->npatterns; i++)
		if (strcmp(a->patterns[i], b->patterns[i]) != 0)
			return 0;
	return a->patterns[a->npatterns] == NULL &&
	    b->patterns[b->npatterns] == NULL;
}

/* The request that sr stands for, as a client would send it. */
static json_t *
fuzz_again(const struct submit_req *sr)
{
	json_t	*req, *pats, *flt;
	size_t	 i;

	if ((flt = json_loads(sr->filter, 0, NULL)) == NULL)
		abort();
	req = json_object();
	pats = json_array();
	for (i = 0; i < sr->npatterns; i++)
		json_array_append_new(pats, json_string(sr->patterns[i]));
	json_object_set_new(req, "op", json_string("submit"));
	json_object_set_new(req, "patterns", pats);
	json_object_set_new(req, "filter", flt);
	json_object_set_new(req, "format", json_string(sr->format));
	json_object_set_new(req, "top", json_integer((json_int_t)sr->top));
	json_object_set_new(req, "cache", json_boolean(!sr->no_cache));
	return req;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct submit_req	 sr, sr2;
	struct filter		*f;
	json_t			*req, *flt;
	enum errcode		 rc;
	char			 msg[256], *text;
	size_t			 i;

	if (!fuzz_ready) {
		config_defaults(&fuzz_cfg);
		fuzz_cfg.patterns_max = 16;
		fuzz_ready = 1;
	}
	req = json_loadb((const char *)data, size, JSON_DECODE_ANY |
	    JSON_ALLOW_NUL, NULL);
	if (req == NULL)
		return 0;
	memset(&sr, 0xa5, sizeof sr);
	memset(msg, 'x', sizeof msg);
	rc = request_submit(req, &fuzz_cfg, &sr, msg, sizeof msg);
	json_decref(req);
	if (rc != ERRC_NONE) {
		/* a message, and nothing held */
		if (memchr(msg, '\0', sizeof msg) == NULL || msg[0] == '\0' ||
		    sr.patterns != NULL || sr.filter != NULL ||
		    sr.format != NULL)
			abort();
		request_free(&sr);
		return 0;
	}
	if (sr.patterns == NULL || sr.npatterns == 0 ||
	    sr.npatterns > fuzz_cfg.patterns_max || sr.filter == NULL ||
	    sr.format == NULL)
		abort();
	for (i = 0; i < sr.npatterns; i++)
		if (sr.patterns[i] == NULL || sr.patterns[i][0] != '/')
			abort();
	/* The filter's text is canonical, and a filter. */
	if ((flt = json_loads(sr.filter, 0, NULL)) == NULL ||
	    !json_is_object(flt) ||
	    (text = json_dumps(flt, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
	    strcmp(text, sr.filter) != 0)
		abort();
	free(text);
	if ((f = filter_from_json(flt, msg, sizeof msg)) == NULL ||
	    (uint32_t)filter_needs(f) != sr.needs)
		abort();
	filter_free(f);
	json_decref(flt);
	/* What it made, submitted again, makes the same. */
	req = fuzz_again(&sr);
	memset(&sr2, 0, sizeof sr2);
	if (request_submit(req, &fuzz_cfg, &sr2, msg, sizeof msg) !=
	    ERRC_NONE || !fuzz_same(&sr, &sr2))
		abort();
	json_decref(req);
	request_free(&sr);
	request_free(&sr2);
	return 0;
}
