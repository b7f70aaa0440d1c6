/*
 * test_filter.c: the seed's path filter (defaults and replaced lists),
 * under, status, methods, since/until, and JSON errors, as tables.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "tap.h"

/* A filter spec (JSON, NULL for the defaults), a path, and the verdict. */
static const struct {
	const char	*spec;
	const char	*path;
	int		 keep;
} paths[] = {
	{ NULL, "/book/intro.html", 1 },
	{ NULL, "/", 0 },
	{ NULL, "", 0 },
	{ NULL, "//", 0 },
	{ NULL, "///", 0 },
	{ NULL, "/favicon.ico", 0 },
	{ NULL, "/a/favicon.ico", 0 },
	{ NULL, "/favicon.ico/x", 0 },
	{ NULL, "/Favicon.ico", 1 },
	{ NULL, "/robots.txt", 0 },
	{ NULL, "/humans.txt", 0 },
	{ NULL, "/crossdomain.xml", 0 },
	{ NULL, "/_images/x.svg", 0 },
	{ NULL, "/book/_images/fig.jpg", 0 },
	{ NULL, "/search.html", 0 },
	{ NULL, "/genindex.html", 0 },
	{ NULL, "/searchindex.js", 0 },
	{ NULL, "/modindex.html", 0 },
	{ NULL, "/py-modindex.html", 0 },
	{ NULL, "/x/search.html.bak", 1 },
	{ NULL, "/img/a.png", 0 },
	{ NULL, "/a.PNG", 1 },
	{ NULL, "/app.js", 0 },
	{ NULL, "/site.css", 0 },
	{ NULL, "/site.css/", 1 },
	{ NULL, "/x.css/y", 1 },
	{ NULL, ".png", 0 },
	{ NULL, "/.js", 0 },
	{ NULL, "/js", 1 },
	{ NULL, "relative", 1 },
	{ "{\"exclude_names\":[\"x\"]}", "/favicon.ico", 1 },
	{ "{\"exclude_names\":[\"x\"]}", "/a/x/b", 0 },
	{ "{\"exclude_names\":[]}", "/robots.txt", 1 },
	{ "{\"exclude_exts\":[\".html\"]}", "/a.html", 0 },
	{ "{\"exclude_exts\":[\".html\"]}", "/a.png", 1 },
	{ "{\"exclude_exts\":[]}", "/", 0 },
	{ "{\"under\":\"/book\"}", "/book/a.html", 1 },
	{ "{\"under\":\"/book\"}", "/book", 0 },
	{ "{\"under\":\"/book\"}", "/book/", 0 },
	{ "{\"under\":\"/book\"}", "//book//a", 1 },
	{ "{\"under\":\"/book\"}", "/books/a", 0 },
	{ "{\"under\":\"/book\"}", "/a/book/b", 0 },
	{ "{\"under\":\"/book\"}", "/book/favicon.ico", 0 },
	{ "{\"under\":\"book/\"}", "/book/x", 1 },
	{ "{\"under\":\"/book/ch1\"}", "/book/ch1/s1", 1 },
	{ "{\"under\":\"/book/ch1\"}", "/book/ch2/s1", 0 },
	{ "{\"under\":\"/book/ch1\"}", "/book/ch1", 0 },
	{ "{\"under\":\"/\"}", "/a", 1 },
	/* the root path: its own rule, which can be turned off */
	{ "{\"exclude_root\":false}", "/", 1 },
	{ "{\"exclude_root\":false}", "//", 1 },
	{ "{\"exclude_root\":false}", "", 0 },
	{ "{\"exclude_root\":false}", "/favicon.ico", 0 },
	{ "{\"exclude_root\":true}", "/", 0 },
	{ "{\"exclude_root\":false,\"exclude_names\":[],"
	    "\"exclude_exts\":[]}", "/", 1 },
	{ "{\"exclude_root\":false,\"under\":\"/book\"}", "/", 0 },
};

/* A spec, a line's method, status and time, and the verdict. */
static const struct {
	const char	*spec;
	const char	*method;
	int		 status;
	int64_t		 time;
	int		 keep;
} lines[] = {
	{ NULL, "GET", 200, 0, 1 },
	{ NULL, NULL, -1, INT64_MIN, 1 },
	{ "{\"status\":[404]}", "GET", 404, 0, 1 },
	{ "{\"status\":[404]}", "GET", 200, 0, 0 },
	{ "{\"status\":[404]}", "GET", -1, 0, 0 },
	{ "{\"status\":[\"404\"]}", "GET", 404, 0, 1 },
	{ "{\"status\":[\"2xx\"]}", "GET", 204, 0, 1 },
	{ "{\"status\":[\"2xx\"]}", "GET", 304, 0, 0 },
	{ "{\"status\":[\"2XX\",301]}", "GET", 301, 0, 1 },
	{ "{\"status\":[]}", "GET", 500, 0, 1 },
	{ "{\"methods\":[\"GET\",\"HEAD\"]}", "HEAD", 200, 0, 1 },
	{ "{\"methods\":[\"GET\",\"HEAD\"]}", "POST", 200, 0, 0 },
	{ "{\"methods\":[\"GET\"]}", "get", 200, 0, 0 },
	{ "{\"methods\":[\"GET\"]}", "GETX", 200, 0, 0 },
	{ "{\"methods\":[\"GET\"]}", NULL, 200, 0, 0 },
	{ "{\"since\":100}", "GET", 200, 100, 1 },
	{ "{\"since\":100}", "GET", 200, 99, 0 },
	{ "{\"until\":100}", "GET", 200, 99, 1 },
	{ "{\"until\":100}", "GET", 200, 100, 0 },
	{ "{\"since\":100}", "GET", 200, INT64_MIN, 0 },
	{ "{\"since\":\"2024-03-01T00:00:00Z\"}", "GET", 200, 1709251200, 1 },
	{ "{\"since\":\"2024-03-01T00:00:00Z\"}", "GET", 200, 1709251199, 0 },
	{ "{\"since\":10,\"until\":20,\"methods\":[\"GET\"],\"status\":[\"2xx\"]}",
	    "GET", 200, 15, 1 },
	{ "{\"since\":10,\"until\":20,\"methods\":[\"GET\"],\"status\":[\"2xx\"]}",
	    "GET", 404, 15, 0 },
};

/* Specs that must be refused, and a word the error must contain. */
static const struct {
	const char	*spec;
	const char	*word;
} errors[] = {
	{ "[]", "object" },
	{ "{\"bogus\":1}", "bogus" },
	{ "{\"under\":1}", "under" },
	{ "{\"exclude_root\":0}", "exclude_root" },
	{ "{\"exclude_names\":[\"a\",\"/api\"]}", "exclude_names[1]" },
	{ "{\"exclude_exts\":[\".x/y\"]}", "exclude_exts[0]" },
	{ "{\"exclude_names\":\"x\"}", "exclude_names" },
	{ "{\"exclude_names\":[1]}", "exclude_names[0]" },
	{ "{\"exclude_exts\":[\"\"]}", "exclude_exts[0]" },
	{ "{\"methods\":[\"GET\",2]}", "methods[1]" },
	{ "{\"status\":\"404\"}", "status" },
	{ "{\"status\":[\"4x4\"]}", "status[0]" },
	{ "{\"status\":[99]}", "status[0]" },
	{ "{\"status\":[\"abc\"]}", "status[0]" },
	{ "{\"since\":\"yesterday\"}", "since" },
	{ "{\"until\":1.5}", "until" },
	{ "{\"until\":\"2023-02-29T00:00:00Z\"}", "until" },
};

static struct filter *
make(const char *spec, char *err, size_t errlen)
{
	json_t		*j = NULL;
	json_error_t	 jerr;
	struct filter	*f;

	if (spec != NULL && (j = json_loads(spec, 0, &jerr)) == NULL) {
		diag("bad test JSON %s: %s", spec, jerr.text);
		return NULL;
	}
	f = filter_from_json(j, err, errlen);
	json_decref(j);
	return f;
}

int
main(void)
{
	struct filter	*f;
	char		 err[256];
	size_t		 i, n;

	for (n = 0; filter_default_names[n] != NULL; n++)
		;
	ok(n == 10, "ten default names");
	for (n = 0; filter_default_exts[n] != NULL; n++)
		;
	ok(n == 3, "three default extensions");

	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		size_t len = strlen(paths[i].path);

		if ((f = make(paths[i].spec, err, sizeof err)) == NULL) {
			ok(0, "filter %s: %s", paths[i].spec, err);
			continue;
		}
		ok(filter_path(f, paths[i].path, len) == paths[i].keep,
		    "%s: path \"%s\" %s", paths[i].spec ? paths[i].spec :
		    "defaults", paths[i].path, paths[i].keep ? "kept" :
		    "dropped");
		filter_free(f);
	}
	for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if ((f = make(lines[i].spec, err, sizeof err)) == NULL) {
			ok(0, "filter %s: %s", lines[i].spec, err);
			continue;
		}
		ok(filter_line(f, lines[i].method, lines[i].method ?
		    strlen(lines[i].method) : 0, lines[i].status,
		    lines[i].time) == lines[i].keep, "%s: %s %d %lld %s",
		    lines[i].spec ? lines[i].spec : "defaults",
		    lines[i].method ? lines[i].method : "-", lines[i].status,
		    (long long)lines[i].time, lines[i].keep ? "kept" :
		    "dropped");
		filter_free(f);
	}
	for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
		err[0] = '\0';
		f = make(errors[i].spec, err, sizeof err);
		ok(f == NULL && strstr(err, errors[i].word) != NULL,
		    "refused %s (%s)", errors[i].spec, err);
		filter_free(f);
	}

	f = make(NULL, err, sizeof err);
	ok(f != NULL && filter_needs(f) == 0, "defaults need nothing");
	{
		static const char nul[4] = { '/', 'a', '\0', 'b' };

		ok(f != NULL && filter_path(f, nul, sizeof nul) == 1,
		    "a path with a NUL byte is kept");
	}
	ok(f != NULL && filter_path(f, NULL, 0) == 0,
	    "no path at all (NULL, 0) is dropped");
	filter_free(f);
	f = make("{\"status\":[\"2xx\"],\"since\":1}", err, sizeof err);
	ok(f != NULL && filter_needs(f) == (FILTER_NEEDS_STATUS |
	    FILTER_NEEDS_TIME), "status and since need status and time");
	filter_free(f);
	return tap_done();
}
