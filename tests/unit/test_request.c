/*
 * test_request.c: a submit request's fields checked (request.c), as
 * tables: requests that pass with what they make, and requests refused
 * with their code and message word for word, as clients read them.
 */
#include "../../src/config.h"	/* (the build's config.h has the name) */
#include "filter.h"
#include "log.h"
#include "request.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Refused: the request's fields (JSON), the code, the whole message. */
static const struct {
	const char	*req;
	const char	*code;
	const char	*message;
} bad[] = {
	{ "{}", "bad_field",
	    "patterns: a non-empty array of strings is required" },
	{ "{\"patterns\":\"/x/*\"}", "bad_field",
	    "patterns: a non-empty array of strings is required" },
	{ "{\"patterns\":[]}", "bad_field",
	    "patterns: a non-empty array of strings is required" },
	{ "{\"patterns\":[\"/a\",5]}", "bad_field",
	    "patterns[1]: an absolute path pattern is required" },
	{ "{\"patterns\":[\"rel/*.log\"]}", "bad_field",
	    "patterns[0]: an absolute path pattern is required" },
	{ "{\"patterns\":[\"/a\\u0000b\"]}", "bad_field",
	    "patterns[0]: an absolute path pattern is required" },
	{ "{\"patterns\":[\"/1\",\"/2\",\"/3\",\"/4\",\"/5\"]}", "limit",
	    "patterns: more than 4 (patterns_max)" },
	{ "{\"patterns\":[\"/{a,b}{c,d}{e,f}\"]}", "limit",
	    "patterns: brace expansion makes more than 4 patterns "
	    "(patterns_max)" },
	{ "{\"patterns\":[\"/x\",\"/{a,b}{c,d}\"]}", "limit",
	    "patterns: brace expansion makes more than 4 patterns "
	    "(patterns_max)" },
	{ "{\"patterns\":[\"/x\",\"/{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{a}}}}}"
	    "}}}}}}}}}}}}}}}}}}}}}}}}}}}}\"]}", "limit",
	    "patterns[1]: braces nested more than 32 deep" },
	{ "{\"patterns\":[\"/x\"],\"filter\":[1]}", "bad_field",
	    "filter: an object is required" },
	{ "{\"patterns\":[\"/x\"],\"filter\":\"under\"}", "bad_field",
	    "filter: an object is required" },
	{ "{\"patterns\":[\"/x\"],\"filter\":{\"colour\":1}}", "bad_field",
	    "filter.colour: unknown field" },
	{ "{\"patterns\":[\"/x\"],\"format\":7}", "bad_field",
	    "format: a string is required" },
	{ "{\"patterns\":[\"/x\"],\"top\":-1}", "bad_field",
	    "top: an integer >= 0 is required" },
	{ "{\"patterns\":[\"/x\"],\"top\":\"5\"}", "bad_field",
	    "top: an integer >= 0 is required" },
	{ "{\"patterns\":[\"/x\"],\"top\":1.5}", "bad_field",
	    "top: an integer >= 0 is required" },
	{ "{\"patterns\":[\"/x\"],\"cache\":0}", "bad_field",
	    "cache: true or false is required" },
};

/* Taken: the request, and what it makes (filter: the canonical text). */
static const struct {
	const char	*req;
	size_t		 npatterns;
	const char	*last;		/* the last pattern */
	const char	*filter;
	const char	*format;
	size_t		 top;
	int		 no_cache;
} good[] = {
	{ "{\"patterns\":[\"/x/*.log\"]}", 1, "/x/*.log",
	    "{\"exclude_exts\":[\".png\"],\"exclude_names\":[\"robots.txt\"]}",
	    "combined", 0, 0 },
	{ "{\"patterns\":[\"/a\",\"/b\"],\"filter\":null,\"format\":null,"
	    "\"top\":null,\"cache\":null}", 2, "/b",
	    "{\"exclude_exts\":[\".png\"],\"exclude_names\":[\"robots.txt\"]}",
	    "combined", 0, 0 },
	{ "{\"patterns\":[\"/{a,b}{c,d}\"],\"filter\":{\"under\":\"/book\","
	    "\"exclude_names\":[]},\"format\":\"common\",\"top\":10,"
	    "\"cache\":false}", 1, "/{a,b}{c,d}",
	    "{\"exclude_exts\":[\".png\"],\"exclude_names\":[],"
	    "\"under\":\"/book\"}", "common", 10, 1 },
	/* a quoted brace, and one never closed, do not multiply */
	{ "{\"patterns\":[\"/a\\\\{b,c,d,e,f}\",\"/{a,b\"],\"cache\":true}", 2,
	    "/{a,b", "{\"exclude_exts\":[\".png\"],"
	    "\"exclude_names\":[\"robots.txt\"]}", "combined", 0, 0 },
	{ "{\"patterns\":[\"/1\",\"/2\",\"/3\",\"/4\"],\"filter\":"
	    "{\"exclude_exts\":[\".css\"],\"status\":[\"2xx\"]}}", 4, "/4",
	    "{\"exclude_exts\":[\".css\"],\"exclude_names\":[\"robots.txt\"],"
	    "\"status\":[\"2xx\"]}", "combined", 0, 0 },
};

static void
strv_free(char **v)
{
	size_t	i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

int
main(void)
{
	struct config		 cfg;
	struct submit_req	 sr;
	enum errcode		 code;
	json_error_t		 jerr;
	json_t			*req;
	char			 msg[256];
	size_t			 i;

	log_init("test_request", 0);
	config_defaults(&cfg);
	cfg.patterns_max = 4;
	free(cfg.format);
	cfg.format = strdup("combined");
	strv_free(cfg.exclude_names);
	strv_free(cfg.exclude_exts);
	cfg.exclude_names = calloc(2, sizeof *cfg.exclude_names);
	cfg.exclude_exts = calloc(2, sizeof *cfg.exclude_exts);
	if (cfg.format == NULL || cfg.exclude_names == NULL ||
	    cfg.exclude_exts == NULL ||
	    (cfg.exclude_names[0] = strdup("robots.txt")) == NULL ||
	    (cfg.exclude_exts[0] = strdup(".png")) == NULL)
		return 99;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if ((req = json_loads(bad[i].req, JSON_ALLOW_NUL, &jerr)) == NULL) {
			ok(0, "%s: %s", bad[i].req, jerr.text);
			continue;
		}
		msg[0] = '\0';
		code = request_submit(req, &cfg, &sr, msg, sizeof msg);
		ok(strcmp(errcode_name(code), bad[i].code) == 0 &&
		    strcmp(msg, bad[i].message) == 0 && sr.patterns == NULL &&
		    sr.filter == NULL && sr.format == NULL,
		    "refused: %s: %s: %s", bad[i].req, errcode_name(code), msg);
		json_decref(req);
	}

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		if ((req = json_loads(good[i].req, 0, &jerr)) == NULL) {
			ok(0, "%s: %s", good[i].req, jerr.text);
			continue;
		}
		code = request_submit(req, &cfg, &sr, msg, sizeof msg);
		if (!ok(code == ERRC_NONE, "taken: %s", good[i].req)) {
			diag("%s: %s", errcode_name(code), msg);
			json_decref(req);
			continue;
		}
		ok(sr.npatterns == good[i].npatterns &&
		    sr.patterns[sr.npatterns] == NULL &&
		    strcmp(sr.patterns[sr.npatterns - 1], good[i].last) == 0,
		    "%s: %zu patterns, NULL-terminated", good[i].req,
		    good[i].npatterns);
		ok(strcmp(sr.filter, good[i].filter) == 0, "%s: filter %s",
		    good[i].req, sr.filter);
		ok(strcmp(sr.format, good[i].format) == 0 &&
		    sr.top == good[i].top && sr.no_cache == good[i].no_cache,
		    "%s: format %s, top %zu, no_cache %d", good[i].req,
		    sr.format, sr.top, sr.no_cache);
		request_free(&sr);
		ok(sr.patterns == NULL && sr.filter == NULL &&
		    sr.format == NULL, "%s: freed and emptied", good[i].req);
		json_decref(req);
	}

	/* A filter's needs: a status filter needs the status parsed. */
	req = json_pack("{s:[s],s:{s:[s]}}", "patterns", "/x", "filter",
	    "status", "404");
	code = request_submit(req, &cfg, &sr, msg, sizeof msg);
	ok(code == ERRC_NONE && sr.needs == FILTER_NEEDS_STATUS,
	    "a status filter needs the status (%#x)", (unsigned)sr.needs);
	request_free(&sr);
	json_decref(req);
	req = json_pack("{s:[s]}", "patterns", "/x");
	code = request_submit(req, &cfg, &sr, msg, sizeof msg);
	ok(code == ERRC_NONE && sr.needs == 0, "no filter: no needs (%#x)",
	    (unsigned)sr.needs);
	request_free(&sr);
	json_decref(req);

	/* Messages that name the field already are not prefixed again. */
	request_field_msg(msg, sizeof msg, "format", "format \"x\": bad");
	ok(strcmp(msg, "format \"x\": bad") == 0, "field named once: %s", msg);
	request_field_msg(msg, sizeof msg, "filter", "filter.under: bad");
	ok(strcmp(msg, "filter.under: bad") == 0, "field named once: %s", msg);
	request_field_msg(msg, sizeof msg, "format", "formats: bad");
	ok(strcmp(msg, "format: formats: bad") == 0, "field named: %s", msg);
	request_field_msg(msg, sizeof msg, "format", "format");
	ok(strcmp(msg, "format: format") == 0, "field named: %s", msg);

	config_free(&cfg);
	return tap_done();
}
