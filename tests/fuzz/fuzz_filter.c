/*
 * fuzz_filter.c: filter_from_json() on arbitrary JSON text (any value,
 * not only objects). A filter that builds is then asked about a few
 * fixed paths and about the input bytes themselves as a path, and its
 * line checks run with and without each field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const fuzz_paths[] = {
	"", "/", "//", "/book/a.html", "/book/", "/a/b/c/d.png",
	"/favicon.ico", "/x/_images/y", "/.js", "/js", "/book//x", NULL
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct filter	*f;
	json_error_t	 jerr;
	json_t		*spec;
	char		 err[128], *path;
	size_t		 i;
	int		 k;

	spec = json_loadb((const char *)data, size, JSON_DECODE_ANY |
	    JSON_ALLOW_NUL, &jerr);
	if (spec == NULL)
		return 0;
	memset(err, 0, sizeof err);
	f = filter_from_json(spec, err, sizeof err);
	if (f == NULL) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
			abort();
		json_decref(spec);
		return 0;
	}
	if (!json_is_object(spec))
		abort();
	(void)filter_needs(f);
	for (i = 0; fuzz_paths[i] != NULL; i++)
		(void)filter_path(f, fuzz_paths[i], strlen(fuzz_paths[i]));
	if ((path = malloc(size ? size : 1)) != NULL) {
		memcpy(path, data, size);
		k = filter_path(f, path, size);
		if (k != 0 && k != 1)
			abort();
		free(path);
	}
	(void)filter_line(f, NULL, 0, -1, INT64_MIN);
	(void)filter_line(f, "GET", 3, 404, 0);
	(void)filter_line(f, "POST", 4, 200, INT64_MAX);
	(void)filter_line(f, "X", 1, 999, INT64_MIN + 1);
	filter_free(f);
	json_decref(spec);
	return 0;
}
