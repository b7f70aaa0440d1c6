/*
 * engine-run: the analysis engine over files, in one process, for tests
 * and the bench.
 *
 * usage: engine-run [--format F] [--under P] [--filter JSON] [--line-max N]
 *                   [--top N] [--roots DIR:DIR...] [--stage S] FILE...
 * Prints {"files":[...],"totals":{...},"counts":{...}}. --stage stops the
 * pipeline early to measure where the time goes: "lines" (read, inflate,
 * split), "match" (+ the regex), "parse" (+ request path and time), "full"
 * (the default: analysis_file, filters and counting); the early stages
 * print only {"stage":S,"lines":N,...}.
 * CLFD_INFLATE=zlib or isal in the environment picks the gzip inflater
 * (the default: ISA-L's when built with it); isal where the build has no
 * ISA-L is an error (exit 3), so that a test can skip.
 * CLFD_AHEAD=N inflates gzip files of N bytes or more in a second thread
 * (reader_ahead; 0 never, 1 always).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "analysis.h"
#include "counts.h"
#include "filter.h"
#include "logformat.h"
#include "reader.h"

static void
usage(void)
{
	fprintf(stderr, "usage: engine-run [--format F] [--under P] "
	    "[--filter JSON] [--line-max N] [--top N] [--roots A:B] "
	    "[--stage lines|match|parse|full] FILE...\n");
	exit(2);
}

/* Split "a:b:c" into a NULL-terminated list (the string is modified). */
static char **
split_roots(char *s)
{
	char	**v;
	size_t	  n = 1, i = 0;
	char	 *p;

	for (p = s; *p != '\0'; p++)
		n += *p == ':';
	if ((v = calloc(n + 1, sizeof *v)) == NULL)
		return NULL;
	for (p = strtok(s, ":"); p != NULL; p = strtok(NULL, ":"))
		v[i++] = p;
	return v;
}

/* An early stage over one file: lines, matches and parsed lines counted. */
static int
run_stage(const char *stage, const char *path, struct logformat *lf,
    size_t line_max, uint64_t tot[3])
{
	struct reader	 r;
	struct access	 a;
	struct request	 req;
	const char	*line;
	char		*scratch;
	size_t		 len;
	int64_t		 t;
	int		 rc, deep = strcmp(stage, "lines") != 0;
	int		 parse = strcmp(stage, "parse") == 0;

	if ((scratch = malloc(line_max + 1)) == NULL)
		return -1;
	if (reader_open(&r, path, NULL, line_max, 0) == -1) {
		fprintf(stderr, "%s: %s\n", path, r.error);
		reader_close(&r);
		free(scratch);
		return -1;
	}
	while ((rc = reader_next(&r, &line, &len)) > 0) {
		tot[0]++;
		if (!deep || rc != READER_LINE ||
		    logformat_match(lf, line, len, &a) != 1)
			continue;
		tot[1]++;
		if (parse && a.request != NULL &&
		    access_request(a.request, a.request_len, scratch, &req) == 0 &&
		    (a.time == NULL || access_time(a.time, a.time_len, &t) == 0))
			tot[2]++;
	}
	if (rc == READER_ERROR)
		fprintf(stderr, "%s: %s\n", path, r.error);
	reader_close(&r);
	free(scratch);
	return 0;
}

int
main(int argc, char **argv)
{
	struct analysis_opts	 o;
	struct file_stats	 st;
	struct logformat	*lf = NULL;
	struct filter		*flt = NULL;
	struct counts		*c = NULL;
	json_t			*spec = NULL, *doc = NULL, *files, *totals;
	json_error_t		 jerr;
	const char		*format = NULL, *under = NULL, *stage = "full";
	const char		*inflate;
	char			*filter_text = NULL, **roots = NULL, err[256];
	size_t			 top = 0, line_max = 0;
	uint64_t		 sum[10] = { 0 }, tot[3] = { 0 };
	int			 i, rc = 1;

	if ((inflate = getenv("CLFD_INFLATE")) != NULL && *inflate != '\0') {
		if (strcmp(inflate, "zlib") == 0)
			reader_inflater = READER_INFLATE_ZLIB;
		else if (strcmp(inflate, "isal") == 0 && reader_have_isal())
			reader_inflater = READER_INFLATE_ISAL;
		else {
			fprintf(stderr, "engine-run: CLFD_INFLATE=%s: not in "
			    "this build\n", inflate);
			return 3;
		}
	}
	if ((inflate = getenv("CLFD_AHEAD")) != NULL && *inflate != '\0') {
		char *end;

		errno = 0;
		reader_ahead = strtoull(inflate, &end, 10);
		if (errno != 0 || *end != '\0' || *inflate == '-') {
			fprintf(stderr, "engine-run: CLFD_AHEAD=%s: a byte count "
			    "is required\n", inflate);
			return 2;
		}
	}
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--format") == 0)
			format = argv[++i];
		else if (strcmp(argv[i], "--under") == 0)
			under = argv[++i];
		else if (strcmp(argv[i], "--filter") == 0)
			filter_text = argv[++i];
		else if (strcmp(argv[i], "--line-max") == 0)
			line_max = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--top") == 0)
			top = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--roots") == 0) {
			if ((roots = split_roots(argv[++i])) == NULL)
				goto out;
		} else if (strcmp(argv[i], "--stage") == 0)
			stage = argv[++i];
		else
			usage();
	}
	if ((lf = logformat_compile(format, err, sizeof err)) == NULL) {
		fprintf(stderr, "engine-run: %s\n", err);
		goto out;
	}
	if (strcmp(stage, "full") != 0) {
		for (; i < argc; i++)
			run_stage(stage, argv[i], lf, line_max ? line_max :
			    ANALYSIS_LINE_MAX, tot);
		printf("{\"stage\":\"%s\",\"lines\":%llu,\"matched\":%llu,"
		    "\"parsed\":%llu}\n", stage, (unsigned long long)tot[0],
		    (unsigned long long)tot[1], (unsigned long long)tot[2]);
		rc = 0;
		goto out;
	}
	if (filter_text != NULL &&
	    (spec = json_loads(filter_text, 0, &jerr)) == NULL) {
		fprintf(stderr, "engine-run: --filter: %s\n", jerr.text);
		goto out;
	}
	if (under != NULL) {
		if (spec == NULL)
			spec = json_object();
		if (spec == NULL || json_object_set_new(spec, "under",
		    json_string(under)) == -1)
			goto out;
	}
	if ((flt = filter_from_json(spec, err, sizeof err)) == NULL) {
		fprintf(stderr, "engine-run: %s\n", err);
		goto out;
	}
	if ((c = counts_new()) == NULL || (files = json_array()) == NULL)
		goto out;
	doc = json_pack("{s:o}", "files", files);
	memset(&o, 0, sizeof o);
	o.fmt = lf;
	o.flt = flt;
	o.line_max = line_max;
	o.roots = (const char *const *)roots;
	for (; i < argc; i++) {
		analysis_file(argv[i], &o, c, &st, NULL);
		json_array_append_new(files, analysis_stats_json(argv[i], &st));
		sum[0]++;
		sum[1] += (st.flags & STATS_FAILED) != 0;
		sum[2] += (st.flags & STATS_PARTIAL) != 0;
		sum[3] += st.bytes;
		sum[4] += st.raw_bytes;
		sum[5] += st.lines;
		sum[6] += st.matched;
		sum[7] += st.malformed;
		sum[8] += st.filtered;
		sum[9] += st.counted;
	}
	totals = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
	    "files", (json_int_t)sum[0], "failed", (json_int_t)sum[1],
	    "partial", (json_int_t)sum[2], "bytes", (json_int_t)sum[3],
	    "raw_bytes", (json_int_t)sum[4], "lines", (json_int_t)sum[5],
	    "matched", (json_int_t)sum[6], "malformed", (json_int_t)sum[7],
	    "filtered", (json_int_t)sum[8], "counted", (json_int_t)sum[9],
	    "distinct", (json_int_t)counts_size(c));
	json_object_set_new(doc, "totals", totals);
	json_object_set_new(doc, "counts", counts_json(c, top));
	if (json_dumpf(doc, stdout, JSON_COMPACT) == -1)
		goto out;
	putchar('\n');
	rc = 0;
out:
	json_decref(doc);
	json_decref(spec);
	counts_free(c);
	filter_free(flt);
	logformat_free(lf);
	free(roots);
	return rc;
}
