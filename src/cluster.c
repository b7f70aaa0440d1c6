/*
 * cluster.c: the MAP and MERGE steps without a daemon (see cluster.h).
 *
 * map runs the pipeline clfd's workers run (analysis_file with the same
 * settings text, counts sorted into a partial), but over all its files
 * into one table and one partial listing every file; with -j N the files
 * are dealt to N forked processes by size and their partials merged into
 * one. merge is merge_run with a head made from the partials' settings,
 * its output in memory for clfctl to print as it prints a submit's
 * result. Errors go to stderr as "clfctl: ...", naming the file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* memfd_create */
#endif
#include <config.h>

#include "cluster.h"

#include "analysis.h"
#include "counts.h"
#include "filter.h"
#include "logformat.h"
#include "merge.h"
#include "partial.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
cluster_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
cluster_warn(const char *fmt, ...)
{
	va_list	ap;

	fputs("clfctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * The settings text of a map: the format (clfd's default when none), the
 * filter with clfd's default exclusions where the options name none (as
 * jobqueue's submit adds them), the default line cap. Both checked by
 * compiling them, the format compiled into *fmt and the filter into
 * *flt. NULL after a message.
 */
static char *
cluster_settings(const struct cluster_map_opts *o, struct logformat **fmt,
    struct filter **flt)
{
	const char	*format = o->format != NULL ? o->format : "default";
	json_t		*f;
	char		*ftext = NULL, *settings = NULL, err[256];

	*fmt = NULL;
	*flt = NULL;
	f = o->filter != NULL ? json_deep_copy(o->filter) : json_object();
	if (f == NULL || filter_add_defaults(f, filter_default_names,
	    filter_default_exts) == -1)
		goto nomem;
	if ((*flt = filter_from_json(f, err, sizeof err)) == NULL) {
		cluster_warn("map: filter: %s", err);
		goto out;
	}
	if ((*fmt = logformat_compile(format, err, sizeof err)) == NULL) {
		cluster_warn("map: format: %s", err);
		goto out;
	}
	if ((ftext = json_dumps(f, JSON_COMPACT)) == NULL ||
	    (settings = partial_settings(format, ftext,
	    ANALYSIS_LINE_MAX)) == NULL)
		goto nomem;
	goto out;
nomem:
	cluster_warn("map: out of memory");
out:
	if (settings == NULL) {
		filter_free(*flt);
		logformat_free(*fmt);
		*flt = NULL;
		*fmt = NULL;
	}
	free(ftext);
	json_decref(f);
	return settings;
}

/* Open a temporary file beside path, for a rename into place. */
static int
cluster_tmp_open(const char *path, char *tmp, size_t len)
{
	int	fd;

	if ((size_t)snprintf(tmp, len, "%s.%ld.tmp", path,
	    (long)getpid()) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0666);
	return fd;
}

/* Close fd and rename tmp to path; -1 (tmp removed) with errno. */
static int
cluster_tmp_commit(int fd, const char *tmp, const char *path)
{
	int	e;

	if (fsync(fd) == -1 && errno != EINVAL && errno != EROFS) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * Analyse files[idx[0..n)] into one partial at path. CLUSTER_OK,
 * CLUSTER_FILES (a file failed or stopped early: told), -1 after a
 * message (nothing written).
 */
/* The CPUs this process may run on (a Slurm allocation, a cpuset). */
static int
cluster_cpus(void)
{
	cpu_set_t	 set;
	long		 n;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return (n = sysconf(_SC_NPROCESSORS_ONLN)) > 0 ? (int)n : 1;
}

static int
cluster_map_some(char *const *files, const size_t *idx, size_t n,
    const char *settings, struct logformat *fmt, const struct filter *flt,
    const char *path, int no_ahead)
{
	struct analysis_opts	 opts;
	struct partial_source	*src = NULL;
	struct partial_writer	*pw = NULL;
	struct counts		*counts = NULL;
	struct counts_sorted	 cs;
	struct counts_entry	 ce;
	char			 tmp[PATH_MAX + 32];
	uint64_t		 nkeys;
	size_t			 i;
	int			 fd = -1, rc = -1, failed = 0, done;

	memset(&cs, 0, sizeof cs);
	memset(&opts, 0, sizeof opts);
	opts.fmt = fmt;
	opts.flt = flt;
	opts.line_max = ANALYSIS_LINE_MAX;
	/* (a big gzip file's second thread, only with a core free for it) */
	opts.no_ahead = no_ahead;
	if ((counts = counts_new()) == NULL ||
	    (src = calloc(n + 1, sizeof *src)) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		struct partial_source	*s = &src[i];
		struct file_stats	*st;

		s->path = files[idx[i]];
		s->path_len = strlen(s->path);
		/* the statistics live in the source (struct copy is fine) */
		st = &s->st;
		(void)analysis_file(s->path, &opts, counts, st, &s->id);
		if (st->flags & STATS_FAILED)
			st->flags &= ~STATS_PARTIAL;
		/* read here, no cache of clfd's involved */
		st->flags = STATS_CACHE_SET(st->flags, STATS_CACHE_OFF);
		st->error[sizeof st->error - 1] = '\0';
		if (st->error[0] != '\0') {
			cluster_warn("%s: %s", s->path, st->error);
			failed = 1;
		}
	}
	if (counts_sort(counts, &cs) == -1)
		goto nomem;
	if ((fd = cluster_tmp_open(path, tmp, sizeof tmp)) == -1) {
		cluster_warn("map: %s: %s", path, strerror(errno));
		goto out;
	}
	if ((pw = partial_writer_new(fd, settings, strlen(settings), src,
	    n)) == NULL)
		goto nomem;
	for (i = 0; i < cs.n; i++) {
		counts_sorted_at(&cs, i, &ce);
		if (partial_put(pw, ce.key, ce.len, ce.n) == -1)
			break;
	}
	done = partial_finish(pw, &nkeys);
	pw = NULL;
	if (done == -1) {
		cluster_warn("map: writing %s: %s", path, strerror(errno));
		goto out;
	}
	done = cluster_tmp_commit(fd, tmp, path);
	fd = -1;
	if (done == -1) {
		cluster_warn("map: writing %s: %s", path, strerror(errno));
		goto out;
	}
	rc = failed ? CLUSTER_FILES : CLUSTER_OK;
	goto out;
nomem:
	cluster_warn("map: out of memory (%zu path%s)", counts_size(counts),
	    counts_size(counts) == 1 ? "" : "s");
out:
	partial_abort(pw);
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	counts_sorted_free(&cs);
	counts_free(counts);
	free(src);
	return rc;
}

/* A file of the map: where it is in the list, its identity and size. */
struct cfile {
	size_t		idx;
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	int		known;		/* stat worked */
};

static int
cfile_by_id(const void *x, const void *y)
{
	const struct cfile	*a = x, *b = y;

	if (a->known != b->known)
		return a->known < b->known ? -1 : 1;
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

static int
cfile_by_size(const void *x, const void *y)
{
	const struct cfile	*a = x, *b = y;

	if (a->size != b->size)
		return a->size > b->size ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

static int
cfile_by_idx(const void *x, const void *y)
{
	const struct cfile	*a = x, *b = y;

	return (a->idx > b->idx) - (a->idx < b->idx);
}

/*
 * The files to analyse: each file once (by device and inode, the first
 * name given for it, as clfd names a file matched twice once), a file
 * that cannot be looked at kept (its analysis says why). *n on return.
 */
static struct cfile *
cluster_files(char *const *files, size_t nfiles, size_t *n)
{
	struct cfile	*f;
	struct stat	 sb;
	size_t		 i, k;

	if ((f = calloc(nfiles + 1, sizeof *f)) == NULL)
		return NULL;
	for (i = 0; i < nfiles; i++) {
		f[i].idx = i;
		if (stat(files[i], &sb) == 0) {
			f[i].known = 1;
			f[i].dev = sb.st_dev;
			f[i].ino = sb.st_ino;
			f[i].size = sb.st_size;
		}
	}
	qsort(f, nfiles, sizeof *f, cfile_by_id);
	for (i = 0, k = 0; i < nfiles; i++) {
		if (k > 0 && f[i].known && f[k - 1].known &&
		    f[i].dev == f[k - 1].dev && f[i].ino == f[k - 1].ino)
			continue;
		f[k++] = f[i];
	}
	*n = k;
	return f;
}

/*
 * -j N: deal the files, biggest first, to the group with the fewest
 * bytes; a process a group, each writing a partial beside the output;
 * their partials merged into the output.
 */
static int
cluster_map_jobs(char *const *files, struct cfile *f, size_t n,
    unsigned jobs, const char *settings, struct logformat *fmt,
    const struct filter *flt, const char *out)
{
	struct merge_opts	  mo;
	struct merge_result	  mr;
	size_t			**groups = NULL, *ng = NULL, i, g, best;
	uint64_t		 *bytes = NULL;
	pid_t			 *pids = NULL;
	char			**parts = NULL, tmp[PATH_MAX + 32];
	int			  rc = -1, st, failed = 0, broken = 0, fd;

	if (jobs > n)
		jobs = (unsigned)n;
	if ((groups = calloc(jobs, sizeof *groups)) == NULL ||
	    (ng = calloc(jobs, sizeof *ng)) == NULL ||
	    (bytes = calloc(jobs, sizeof *bytes)) == NULL ||
	    (pids = calloc(jobs, sizeof *pids)) == NULL ||
	    (parts = calloc(jobs + 1, sizeof *parts)) == NULL)
		goto nomem;
	for (g = 0; g < jobs; g++)
		if ((groups[g] = calloc(n, sizeof *groups[g])) == NULL ||
		    asprintf(&parts[g], "%s.%ld-%zu.part", out,
		    (long)getpid(), g) == -1) {
			parts[g] = NULL;
			goto nomem;
		}
	qsort(f, n, sizeof *f, cfile_by_size);
	for (i = 0; i < n; i++) {
		for (g = 1, best = 0; g < jobs; g++)
			if (bytes[g] < bytes[best])
				best = g;
		groups[best][ng[best]++] = f[i].idx;
		bytes[best] += f[i].size > 0 ? (uint64_t)f[i].size : 0;
	}
	for (g = 0; g < jobs; g++) {
		fflush(stdout);
		fflush(stderr);
		if ((pids[g] = fork()) == 0) {
			/* the child: its group, then exit with the map's code */
			rc = cluster_map_some(files, groups[g], ng[g], settings,
			    fmt, flt, parts[g], (int)jobs >= cluster_cpus());
			for (i = 0; i < jobs; i++) {
				free(groups[i]);
				free(parts[i]);
			}
			free(groups);
			free(ng);
			free(bytes);
			free(pids);
			free(parts);
			fflush(stderr);
			_exit(rc == -1 ? 3 : rc);
		}
		if (pids[g] == -1) {
			cluster_warn("map: fork: %s", strerror(errno));
			broken = 1;
		}
	}
	for (g = 0; g < jobs; g++) {
		if (pids[g] <= 0)
			continue;
		while (waitpid(pids[g], &st, 0) == -1 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == CLUSTER_FILES)
			failed = 1;
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (WIFSIGNALED(st))
				cluster_warn("map: process %zu killed by signal "
				    "%d", g, WTERMSIG(st));
			broken = 1;
		}
	}
	if (broken)
		goto out;

	if ((fd = cluster_tmp_open(out, tmp, sizeof tmp)) == -1) {
		cluster_warn("map: %s: %s", out, strerror(errno));
		goto out;
	}
	memset(&mo, 0, sizeof mo);
	mo.inputs = parts;
	mo.ninputs = jobs;
	mo.fd = fd;
	if (merge_run(&mo, &mr) == -1) {
		cluster_warn("map: merging: %s", mr.error);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (cluster_tmp_commit(fd, tmp, out) == -1) {
		cluster_warn("map: writing %s: %s", out, strerror(errno));
		goto out;
	}
	rc = failed ? CLUSTER_FILES : CLUSTER_OK;
	goto out;
nomem:
	cluster_warn("map: out of memory");
out:
	for (g = 0; parts != NULL && g < jobs; g++) {
		if (parts[g] != NULL)
			unlink(parts[g]);
		free(parts[g]);
	}
	for (g = 0; groups != NULL && g < jobs; g++)
		free(groups[g]);
	free(groups);
	free(ng);
	free(bytes);
	free(pids);
	free(parts);
	return rc;
}

int
cluster_map(const struct cluster_map_opts *o)
{
	struct logformat	*fmt;
	struct filter		*flt;
	struct cfile		*f = NULL;
	size_t			*idx = NULL, n = 0, i;
	char			*settings;
	int			 rc = CLUSTER_REFUSED;

	if ((settings = cluster_settings(o, &fmt, &flt)) == NULL)
		return CLUSTER_REFUSED;
	rc = CLUSTER_FILES;
	if ((f = cluster_files(o->files, o->nfiles, &n)) == NULL) {
		cluster_warn("map: out of memory");
		goto out;
	}
	if (o->jobs > 1 && n > 1) {
		if ((rc = cluster_map_jobs(o->files, f, n, o->jobs, settings,
		    fmt, flt, o->out)) == -1)
			rc = CLUSTER_FILES;
		goto out;
	}
	/* one process: the files in the order given */
	qsort(f, n, sizeof *f, cfile_by_idx);
	if ((idx = calloc(n + 1, sizeof *idx)) == NULL) {
		cluster_warn("map: out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		idx[i] = f[i].idx;
	if ((rc = cluster_map_some(o->files, idx, n, settings, fmt, flt,
	    o->out, cluster_cpus() < 2)) == -1)
		rc = CLUSTER_FILES;
out:
	free(idx);
	free(f);
	free(settings);
	filter_free(flt);
	logformat_free(fmt);
	return rc;
}

/*
 * The head of a merge's result from a partial's settings text ("format
 * F\nfilter JSON\nline_max N\n"): ok, job (null: no daemon's job), state,
 * patterns (the partials), unmatched (none), format, filter, submitted
 * (now), without the closing brace. NULL after a message.
 */
static char *
cluster_head(const struct partial *p, const char *name, char *const *partials,
    size_t n, int64_t now)
{
	static const char	 fl[] = "\nfilter ", lm[] = "\nline_max ";
	const char		*s = p->settings, *end = s + p->settings_len;
	const char		*fpos = NULL, *lpos = NULL, *q;
	json_t			*r = NULL, *filter = NULL, *pats;
	json_error_t		 jerr;
	char			*format = NULL, *text = NULL;
	size_t			 i, len;

	/* the last "\nline_max ", the last "\nfilter " before it */
	for (q = s; q + sizeof lm - 1 <= end; q++)
		if (memcmp(q, lm, sizeof lm - 1) == 0)
			lpos = q;
	for (q = s; lpos != NULL && q + sizeof fl - 1 <= lpos; q++)
		if (memcmp(q, fl, sizeof fl - 1) == 0)
			fpos = q;
	if (p->settings_len < 7 || memcmp(s, "format ", 7) != 0 ||
	    fpos == NULL) {
		cluster_warn("merge: %s: settings not understood", name);
		return NULL;
	}
	if ((format = strndup(s + 7, (size_t)(fpos - s - 7))) == NULL)
		goto nomem;
	filter = json_loadb(fpos + sizeof fl - 1,
	    (size_t)(lpos - fpos) - (sizeof fl - 1), 0, &jerr);
	if (filter == NULL) {
		cluster_warn("merge: %s: settings' filter: %s", name, jerr.text);
		goto out;
	}
	if ((r = json_object()) == NULL || (pats = json_array()) == NULL)
		goto nomem;
	for (i = 0; i < n; i++)
		json_array_append_new(pats, json_string(partials[i]));
	json_object_set_new(r, "ok", json_true());
	json_object_set_new(r, "job", json_null());
	json_object_set_new(r, "state", json_string("done"));
	json_object_set_new(r, "patterns", pats);
	json_object_set_new(r, "unmatched", json_array());
	json_object_set_new(r, "format", json_string(format));
	json_object_set(r, "filter", filter);
	json_object_set_new(r, "submitted", json_integer(now));
	if ((text = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(6))) ==
	    NULL)
		goto nomem;
	if ((len = strlen(text)) > 0 && text[len - 1] == '}')
		text[len - 1] = '\0';
	goto out;
nomem:
	cluster_warn("merge: out of memory");
out:
	json_decref(r);
	json_decref(filter);
	free(format);
	return text;
}

/* A file for the merge's output, in memory where the system allows. */
static int
cluster_memfile(void)
{
	FILE	*f;
	int	 fd;

#ifdef MFD_CLOEXEC
	if ((fd = memfd_create("clfctl-merge", MFD_CLOEXEC)) != -1)
		return fd;
#endif
	if ((f = tmpfile()) == NULL)
		return -1;
	fd = dup(fileno(f));
	fclose(f);
	return fd;
}

int
cluster_merge(char *const *partials, size_t n, size_t top, char **text,
    size_t *len)
{
	struct merge_opts	 mo;
	struct merge_result	 mr;
	struct partial		*p0;
	struct timeval		 tv;
	struct stat		 sb;
	char			*head = NULL, why[200], *buf = NULL;
	size_t			 off;
	ssize_t			 r;
	int			 fd = -1, rc = CLUSTER_REFUSED;

	*text = NULL;
	*len = 0;
	gettimeofday(&tv, NULL);
	/* The head is the first partial's; merge_run checks the rest agree. */
	if ((p0 = partial_open(partials[0], why, sizeof why)) == NULL) {
		cluster_warn("merge: %s: %s", partials[0], why);
		return CLUSTER_REFUSED;
	}
	head = cluster_head(p0, partials[0], partials, n, (int64_t)tv.tv_sec);
	partial_close(p0);
	if (head == NULL)
		return CLUSTER_REFUSED;
	rc = CLUSTER_FILES;
	if ((fd = cluster_memfile()) == -1) {
		cluster_warn("merge: a file for the result: %s", strerror(errno));
		goto out;
	}
	memset(&mo, 0, sizeof mo);
	mo.inputs = partials;
	mo.ninputs = n;
	mo.fd = fd;
	mo.final = 1;
	mo.top = top;
	mo.head = head;
	mo.start_usec = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	if (merge_run(&mo, &mr) == -1) {
		cluster_warn("merge: %s", mr.error);
		rc = mr.bad != SIZE_MAX || strstr(mr.error, "the same source") !=
		    NULL ? CLUSTER_REFUSED : CLUSTER_FILES;
		goto out;
	}
	if (fstat(fd, &sb) == -1 || (buf = malloc((size_t)sb.st_size +
	    1)) == NULL) {
		cluster_warn("merge: reading the result: %s", strerror(errno));
		goto out;
	}
	for (off = 0; off < (size_t)sb.st_size; off += (size_t)r) {
		r = pread(fd, buf + off, (size_t)sb.st_size - off, (off_t)off);
		if (r == -1 && errno == EINTR) {
			r = 0;
			continue;
		}
		if (r <= 0) {
			cluster_warn("merge: reading the result: %s",
			    r == 0 ? "short read" : strerror(errno));
			goto out;
		}
	}
	buf[off] = '\0';
	*text = buf;
	*len = off;
	buf = NULL;
	rc = CLUSTER_OK;
out:
	if (fd != -1)
		close(fd);
	free(buf);
	free(head);
	return rc;
}

int
cluster_read_list(const char *path, char ***files, size_t *n)
{
	FILE	*f;
	char	*line = NULL, **v = NULL, **nv;
	size_t	 cap = 0, lcap = 0, k = 0;
	ssize_t	 len;
	int	 e;

	*files = NULL;
	*n = 0;
	if ((f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re")) == NULL)
		return -1;
	while ((len = getline(&line, &lcap, f)) != -1) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (k + 1 >= cap) {
			cap = cap * 2 + 64;
			if ((nv = reallocarray(v, cap, sizeof *v)) == NULL)
				goto fail;
			v = nv;
		}
		if ((v[k] = strdup(line)) == NULL)
			goto fail;
		v[++k] = NULL;
	}
	if (ferror(f))
		goto fail;
	if (v == NULL && (v = calloc(1, sizeof *v)) == NULL)
		goto fail;
	free(line);
	if (f != stdin)
		fclose(f);
	*files = v;
	*n = k;
	return 0;
fail:
	e = errno;
	free(line);
	if (v != NULL)
		v[k] = NULL;
	cluster_free_list(v);
	if (f != stdin)
		fclose(f);
	errno = e;
	return -1;
}

void
cluster_free_list(char **files)
{
	size_t	i;

	for (i = 0; files != NULL && files[i] != NULL; i++)
		free(files[i]);
	free(files);
}
