/*
 * worker.c: a worker process.
 *
 * A blocking loop with no event library: read a task and run it. A MAP
 * task runs the analysis pipeline on its file with a cached compiled
 * format and the task's filter, writes the counts as a partial into the
 * spool and sends back the statistics only. A MERGE task merges earlier
 * tasks' partials into a partial or into the job's result file.
 * A job's patterns are expanded here too (glob(3) may block on a slow
 * filesystem; the supervisor must not), answered with the file list.
 * The worker dies with the supervisor (PR_SET_PDEATHSIG, or EOF on the
 * socketpair). worker_memory caps its address space, task_timeout arms
 * alarm(2) so that a task that runs too long kills the worker, which the
 * supervisor sees, retries once and then reports.
 */
#include <config.h>

#include "worker.h"

#include "analysis.h"
#include "cache.h"
#include "config.h"
#include "counts.h"
#include "expand.h"
#include "filter.h"
#include "log.h"
#include "logformat.h"
#include "merge.h"
#include "partial.h"
#include "proto.h"
#include "reader.h"

#include <sys/resource.h>
#include <sys/stat.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#define WORKER_FORMATS	16	/* compiled formats cached */

struct worker {
	int			 fd;
	const char		*spool;		/* where partials and results go */
	int			 timeout;
	size_t			 walk_max;	/* expansions: entries read */
	int			 no_hardlinks;	/* refuse_hardlinks */
	struct logformat_cache	*formats;
	struct counts		*counts;
	char			*filter_text;	/* the cached filter's spec */
	struct filter		*filter;
	struct cache		*cache;		/* NULL: no cache */
};

/*
 * One MAP task's dealings with the cache: the key, the entry found, and
 * what it allows (a STATS_CACHE_* status and the plan).
 */
struct wcache {
	struct worker		*w;
	const char		*settings;
	uint64_t		 sdigest;
	uint64_t		 key;		/* its entry's digest: sdigest, or
						   a range's (worker_range_key) */
	const struct analysis_range *range;	/* a range task's, or NULL */
	int			 ranged;	/* the range's own entry is used */
	struct partial		*entry;		/* the cached partial, or NULL */
	int			 status;
	int			 gzip;		/* the file as opened is gzip */
	int			 have_raw;	/* rawsum computed */
	uint64_t		 rawsum;	/* XXH3 of a gzip file's bytes */
	struct source_id	 now;		/* the file as opened */
};

/*
 * The supervisor's argument strings (contiguous, as the kernel lays them
 * out), which a worker overwrites with its own title for ps(1).
 */
static char	*worker_argv_area;
static size_t	 worker_argv_len;

void
worker_title_init(int argc, char **argv)
{
	char	*end;
	int	 i;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc && argv[i] == end; i++)
		end += strlen(argv[i]) + 1;
	worker_argv_area = argv[0];
	worker_argv_len = (size_t)(end - argv[0]);
}

/*
 * Name the process: comm (ps -o comm, top) as comm, and the command line
 * (ps -o args) as title when it fits in the supervisor's arguments, the
 * rest of them cleared; else the command line is left as it was.
 */
static void
worker_title(const char *comm, const char *title)
{
	size_t	n = strlen(title);

#ifdef HAVE_PRCTL
	if (prctl(PR_SET_NAME, comm, 0, 0, 0) == -1)
		log_warn("prctl PR_SET_NAME");
#else
	(void)comm;
#endif
	if (worker_argv_area == NULL || n >= worker_argv_len)
		return;
	memcpy(worker_argv_area, title, n);
	memset(worker_argv_area + n, '\0', worker_argv_len - n);
}

/* Set up the process: signals, parent death, limits. -1 on failure. */
static int
worker_setup(pid_t parent, const struct config *cfg)
{
	signal(SIGINT, SIG_IGN);	/* ^C is for the supervisor */
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
#ifdef HAVE_PRCTL
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) {
		log_warn("prctl");
		return -1;
	}
#endif
	/* The supervisor may have died before prctl took effect. */
	if (getppid() != parent)
		return -1;
	if (cfg->worker_memory > 0) {
#ifdef __SANITIZE_ADDRESS__
		/* ASan reserves terabytes of address space: a limit breaks it. */
		log_debug("worker_memory ignored in a sanitizer build");
#else
		struct rlimit	rl;

		rl.rlim_cur = rl.rlim_max = cfg->worker_memory;
		if (setrlimit(RLIMIT_AS, &rl) == -1) {
			log_warn("setrlimit");
			return -1;
		}
#endif
	}
	return 0;
}

/* The filter for a task: the cached one when the spec is the same. */
static struct filter *
worker_filter(struct worker *w, const char *text, char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*spec;
	struct filter	*f;
	char		*copy;

	if (w->filter != NULL && strcmp(w->filter_text, text) == 0)
		return w->filter;
	if ((spec = json_loads(text, 0, &jerr)) == NULL) {
		snprintf(err, errlen, "filter: %s", jerr.text);
		return NULL;
	}
	f = filter_from_json(spec, err, errlen);
	json_decref(spec);
	if (f == NULL)
		return NULL;
	/* (the copy first: out of memory leaves the cached pair as it was) */
	if ((copy = strdup(text)) == NULL) {
		filter_free(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	filter_free(w->filter);
	free(w->filter_text);
	w->filter = f;
	w->filter_text = copy;
	return f;
}

/*
 * Write the task's counts, merged with base's keys when base is not NULL
 * (a cached partial: resumed), as a whole partial to fd: r->nkeys and
 * r->size on success; -1 with errno.
 */
static int
worker_partial_to(struct worker *w, const struct proto_task *t,
    const char *settings, const struct partial *base, struct proto_result *r,
    size_t nsrc, int fd)
{
	struct partial_source	 src;
	struct partial_writer	*pw;
	struct partial_cursor	 pc;
	struct counts_sorted	 cs;
	struct counts_entry	 ce;
	size_t			 i;
	off_t			 size;
	int			 rc = -1, more, c;

	memset(&cs, 0, sizeof cs);
	if (settings == NULL || counts_sort(w->counts, &cs) == -1)
		return -1;
	memset(&src, 0, sizeof src);
	src.path = t->path;
	src.path_len = strlen(t->path);
	src.id = r->id;
	src.st = r->st;
	if ((pw = partial_writer_new(fd, settings, strlen(settings), &src,
	    nsrc)) == NULL)
		goto out;
	/* Both in key order: a two-way merge, equal keys summed. */
	more = 0;
	if (base != NULL) {
		partial_cursor_init(&pc, base);
		more = partial_cursor_next(&pc);
	}
	for (i = 0; i < cs.n || more;) {
		if (i < cs.n)
			counts_sorted_at(&cs, i, &ce);
		c = !more ? -1 : i == cs.n ? 1 : partial_keycmp(ce.key,
		    ce.len, pc.key, pc.len);
		if (c < 0) {
			if (partial_put(pw, ce.key, ce.len, ce.n) == -1)
				break;
			i++;
		} else if (c > 0) {
			if (partial_put(pw, pc.key, pc.len, pc.n) == -1)
				break;
			more = partial_cursor_next(&pc);
		} else {
			if (partial_put(pw, pc.key, pc.len, pc.n + ce.n) == -1)
				break;
			i++;
			more = partial_cursor_next(&pc);
		}
	}
	if (partial_finish(pw, &r->nkeys) == -1 ||
	    (size = lseek(fd, 0, SEEK_CUR)) == -1)
		goto out;
	r->size = (uint64_t)size;
	rc = 0;
out:
	counts_sorted_free(&cs);
	return rc;
}

/*
 * The task's partial in the spool, under a temporary name renamed into
 * place once complete: a partial under its task's name is always whole.
 * -1 with st's error set (the file is then failed: none of its counts
 * reach the job).
 */
static int
worker_write_partial(struct worker *w, const struct proto_task *t,
    const char *settings, const struct partial *base, struct proto_result *r,
    size_t nsrc)
{
	char	path[PATH_MAX], tmp[PATH_MAX + 8];
	int	fd = -1, e;

	tmp[0] = '\0';
	if (proto_spool_path(path, sizeof path, w->spool, t->task, 0) == -1) {
		e = ENAMETOOLONG;
		goto fail;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		e = errno;
		goto fail;
	}
	if (worker_partial_to(w, t, settings, base, r, nsrc, fd) == -1) {
		e = errno;
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		e = errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		e = errno;
		goto fail;
	}
	return 0;
fail:
	if (fd != -1)
		close(fd);
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	r->st.flags = (r->st.flags | STATS_FAILED) & ~STATS_PARTIAL;
	r->st.counted = 0;
	r->nkeys = r->size = 0;
	snprintf(r->st.error, sizeof r->st.error, "writing its partial "
	    "(%zu path%s): %s", counts_size(w->counts),
	    counts_size(w->counts) == 1 ? "" : "s", strerror(e));
	return -1;
}

/* The identity of an open file as fstat sees it (no range yet). */
static void
worker_stat_id(const struct stat *st, struct source_id *id)
{
	memset(id, 0, sizeof *id);
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
	    st->st_mtim.tv_nsec;
	id->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 +
	    st->st_ctim.tv_nsec;
}

/*
 * Whether the plain file in fd still holds, just before end, the bytes
 * the cached fingerprint was taken of, ending with a newline (so that
 * [end, EOF) starts a line: a last line still without its newline is
 * never resumed from).
 */
static int
worker_same_prefix(int fd, uint64_t end, uint64_t fingerprint)
{
	unsigned char	buf[ANALYSIS_FPRINT];
	uint64_t	from;
	ssize_t		n;

	from = end > sizeof buf ? end - sizeof buf : 0;
	do
		n = pread(fd, buf, (size_t)(end - from), (off_t)from);
	while (n == -1 && errno == EINTR);
	return n > 0 && n == (ssize_t)(end - from) && buf[n - 1] == '\n' &&
	    XXH3_64bits(buf, (size_t)n) == fingerprint;
}

/*
 * The key of a range's entry: the settings' digest mixed with where the
 * range starts, so that each range of a file has an entry of its own
 * (and none is taken for the whole file's).
 */
static uint64_t
worker_range_key(uint64_t sdigest, uint64_t off)
{
	return XXH3_64bits_withSeed(&off, sizeof off, sdigest ^
	    0x72616e6765ULL);
}


/* 1 when a cache entry is one source's, made under this task's settings. */
static int
worker_entry_fits(const struct wcache *wc, const struct partial *p)
{
	return p->nsources == 1 && p->settings_len == strlen(wc->settings) &&
	    memcmp(p->settings, wc->settings, p->settings_len) == 0;
}

/*
 * A range of a plain file, its own entry: the lines that start in
 * [off, end) where that entry's range was [off, e->end) and its last line
 * ended at e->digest (T). The file unchanged and the same range: a hit.
 * Unchanged up to T (the same inode, grown, the bytes before T the same
 * by fingerprint and ending a line) and a range that ends no earlier:
 * the entry plus the lines from T on (none when T is past the end).
 * Anything else (a range cut otherwise) is a miss, its entry replaced.
 */
static int
worker_cache_range(struct wcache *wc, int fd, struct analysis_plan *plan)
{
	const struct analysis_range	*rg = wc->range;
	const struct partial_source	*s;
	const struct source_id		*e;
	int				 same;

	wc->key = worker_range_key(wc->sdigest, rg->off);
	wc->ranged = 1;
	if ((wc->entry = cache_get(wc->w->cache, wc->key, wc->now.dev,
	    wc->now.ino)) == NULL)
		return 0;
	s = &wc->entry->sources[0];
	e = &s->id;
	if (!worker_entry_fits(wc, wc->entry) ||
	    e->dev != wc->now.dev || e->ino != wc->now.ino ||
	    e->off != rg->off || e->end > rg->end || e->digest < e->off ||
	    e->digest > rg->size ||
	    (s->st.flags & (STATS_FAILED | STATS_PARTIAL | STATS_GZIP)) != 0)
		goto miss;
	same = e->size == wc->now.size && e->mtime_ns == wc->now.mtime_ns &&
	    e->ctime_ns == wc->now.ctime_ns && e->size == rg->size;
	if (same && e->end == rg->end) {
		wc->status = STATS_CACHE_HIT;
		return ANALYSIS_SERVED;
	}
	if ((same || wc->now.size > e->size) && e->digest > e->off &&
	    worker_same_prefix(fd, e->digest, e->fingerprint)) {
		wc->status = STATS_CACHE_RESUMED;
		plan->off = e->digest;
		return 0;
	}
miss:
	partial_close(wc->entry);
	wc->entry = NULL;
	return 0;
}

/* XXH3 of all the bytes of fd (no inflate); -1 when unreadable. */
static int
worker_rawsum(int fd, uint64_t size, uint64_t *sum)
{
	XXH3_state_t	*hs;
	char		 buf[65536];
	uint64_t	 off = 0;
	ssize_t		 n;
	int		 rc = -1;

	if ((hs = XXH3_createState()) == NULL || XXH3_64bits_reset(hs) ==
	    XXH_ERROR)
		goto out;
	while (off < size) {
		n = pread(fd, buf, sizeof buf, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		(void)XXH3_64bits_update(hs, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (off != size)
		goto out;
	*sum = XXH3_64bits_digest(hs);
	rc = 0;
out:
	XXH3_freeState(hs);
	return rc;
}

/* The checksum of a partial: its last 8 bytes, little-endian. */
static uint64_t
worker_partial_sum(const uint8_t *end)
{
	uint64_t	v = 0;
	int		i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | end[i - 8];
	return v;
}

/*
 * An entry of the same content under another inode (a copy, a rotated
 * file, compressed or not), found by the content index: the decompressed
 * size must match (a gzip file's trailer has it modulo 2^32), and then
 * a hash pass decides. NULL when there is no candidate.
 */
static struct partial *
worker_cache_same_content(struct wcache *wc, int fd)
{
	struct partial	*p;
	unsigned char	 b[4];
	uint64_t	 raw;
	uint32_t	 low;

	if (wc->gzip) {
		if (wc->now.size < 18 || pread(fd, b, 4, (off_t)wc->now.size -
		    4) != 4)
			return NULL;
		low = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
		    (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	} else
		low = (uint32_t)wc->now.size;
	if ((p = cache_index_get(wc->w->cache, wc->sdigest, low)) == NULL)
		return NULL;
	raw = p->nsources == 1 ? p->sources[0].st.raw_bytes : 0;
	if (!worker_entry_fits(wc, p) || p->sources[0].id.digest == 0 ||
	    (uint32_t)raw != low || (!wc->gzip && raw != wc->now.size) ||
	    (p->sources[0].st.flags & (STATS_FAILED | STATS_PARTIAL)) != 0) {
		partial_close(p);
		return NULL;
	}
	return p;
}

/*
 * analysis_file's opened(): the file is open (under the roots, a regular
 * file), nothing read yet. Look its entry up and decide: unchanged is a
 * hit, answered without reading; only the ctime changed is a hash pass;
 * a plain file that only grew is read from where the entry ends.
 */
static int
worker_cache_opened(void *arg, int fd, const struct stat *st, int gzip,
    struct analysis_plan *plan)
{
	struct wcache			*wc = arg;
	const struct partial_source	*s;
	const struct source_id		*e;
	uint64_t			 raw;

	worker_stat_id(st, &wc->now);
	wc->gzip = gzip;
	/*
	 * The content digest of a plain file (a gzip file has the sum of its
	 * bytes instead: one inflate pass less on a miss).
	 */
	plan->digest = !gzip;
	wc->status = STATS_CACHE_MISS;
	if (wc->entry != NULL) {
		/* (the second open, after a hash pass that did not match) */
		partial_close(wc->entry);
		wc->entry = NULL;
		return 0;
	}
	/* (a gzip file's range at 0 is the whole file, its usual entry) */
	wc->key = wc->sdigest;
	if (wc->range != NULL && !gzip) {
		plan->digest = 0;
		return worker_cache_range(wc, fd, plan);
	}
	if ((wc->entry = cache_get(wc->w->cache, wc->sdigest, wc->now.dev,
	    wc->now.ino)) == NULL)
		goto content;
	s = &wc->entry->sources[0];
	e = &s->id;
	if (!worker_entry_fits(wc, wc->entry) ||
	    e->dev != wc->now.dev || e->ino != wc->now.ino ||
	    e->off != 0 || e->end != e->size ||
	    (s->st.flags & (STATS_FAILED | STATS_PARTIAL)) != 0) {
		log_warnx("cache: the entry for %s does not belong to it: "
		    "removed", s->path);
		cache_drop(wc->w->cache, wc->sdigest, wc->now.dev, wc->now.ino);
		goto miss;
	}
	if (e->size == wc->now.size && e->mtime_ns == wc->now.mtime_ns) {
		if (e->ctime_ns == wc->now.ctime_ns) {
			wc->status = STATS_CACHE_HIT;
			return ANALYSIS_SERVED;
		}
		/* A gzip file's own bytes, hashed, stand for its content. */
		if (gzip && worker_rawsum(fd, wc->now.size, &raw) == 0) {
			if (cache_rawsum_get(wc->w->cache, wc->sdigest,
			    wc->now.dev, wc->now.ino, worker_partial_sum(
			    wc->entry->base + wc->entry->size), &wc->rawsum) ==
			    0 && raw == wc->rawsum) {
				wc->have_raw = 1;
				wc->status = STATS_CACHE_CONTENT;
				return ANALYSIS_SERVED;
			}
			wc->rawsum = raw;
			wc->have_raw = 1;
		}
		if (e->digest != 0) {
			wc->status = STATS_CACHE_CONTENT;
			plan->hash_only = 1;
			return 0;
		}
	} else if (!gzip && (s->st.flags & STATS_GZIP) == 0 &&
	    wc->now.size > e->size && worker_same_prefix(fd, e->end,
	    e->fingerprint)) {
		wc->status = STATS_CACHE_RESUMED;
		plan->off = e->end;
		return 0;
	}
miss:
	partial_close(wc->entry);
	wc->entry = NULL;
content:
	if ((wc->entry = worker_cache_same_content(wc, fd)) != NULL) {
		wc->status = STATS_CACHE_CONTENT;
		plan->hash_only = 1;
		plan->off = 0;
	}
	/* (a gzip file read whole: its bytes' sum goes with its entry) */
	if (gzip && !wc->have_raw && worker_rawsum(fd, wc->now.size,
	    &wc->rawsum) == 0)
		wc->have_raw = 1;
	return 0;
}

/*
 * The partial of a file served from its entry (hit, content) or from
 * its entry and the new bytes (resumed): the entry's statistics (with
 * the new ones), the file's identity now.
 */
static void
worker_cache_result(struct wcache *wc, struct proto_result *r)
{
	const struct partial_source	*s = &wc->entry->sources[0];
	struct file_stats		 more = r->st;
	struct source_id		 id = r->id;

	r->st = s->st;
	/* What a read of the file now would say: its size, gzip or not. */
	r->st.flags = wc->gzip ? STATS_GZIP : 0;
	if (wc->ranged) {
		/* A range: its entry's lines, and those read after them. */
		r->st.error[0] = '\0';
		r->id = wc->now;
		r->id.off = wc->range->off;
		r->id.end = wc->range->end;
		r->id.fingerprint = s->id.fingerprint;
		r->id.digest = s->id.digest;
		if (wc->status == STATS_CACHE_RESUMED) {
			analysis_stats_add(&r->st, &more);
			r->id.fingerprint = id.fingerprint;
			r->id.digest = id.digest;
		}
		return;
	}
	if (wc->status != STATS_CACHE_RESUMED)
		r->st.bytes = wc->now.size;
	r->st.error[0] = '\0';
	r->id = wc->now;
	r->id.end = r->id.size;
	r->id.fingerprint = s->id.fingerprint;
	r->id.digest = s->id.digest;
	if (wc->status == STATS_CACHE_RESUMED) {
		analysis_stats_add(&r->st, &more);
		r->id.end = id.end;
		r->id.fingerprint = id.fingerprint;
		r->id.digest = 0;	/* (the new bytes only were read) */
	}
}

/*
 * Write the task's partial into the cache entry begun in cp and commit
 * it, with its companions (content index, gzip bytes' sum): r->ref_sum
 * is the entry's checksum. -1 when it could not be stored (cp aborted).
 */
static int
worker_store(struct worker *w, const struct wcache *wc,
    const struct proto_task *t, const char *settings, struct proto_result *r,
    struct cache_put *cp)
{
	uint8_t	sumb[8];

	if (worker_partial_to(w, t, settings, wc->entry, r, 1, cp->fd) == -1 ||
	    r->size < 8 || pread(cp->fd, sumb, 8, (off_t)r->size - 8) != 8 ||
	    cache_put_commit(w->cache, cp, r->size) == -1) {
		cache_put_abort(cp);
		return -1;
	}
	r->ref_sum = worker_partial_sum(sumb + 8);
	if (r->id.digest != 0 && !wc->ranged)
		(void)cache_index_put(w->cache, wc->sdigest,
		    (uint32_t)r->st.raw_bytes, r->id.dev, r->id.ino);
	if (wc->have_raw)
		(void)cache_rawsum_put(w->cache, wc->sdigest, r->id.dev,
		    r->id.ino, r->ref_sum, wc->rawsum);
	return 0;
}

/*
 * Run one MAP task and send its result; -1 when the supervisor is gone.
 * With the cache: served from the entry (hit, content), from the entry
 * and the file's new bytes (resumed), or a miss analysed whole and
 * stored; the partial in the spool is the same either way but for the
 * cache status in its statistics.
 */
static int
worker_task(struct worker *w, const struct proto_task *t)
{
	struct proto_result		 r;
	struct analysis_opts		 opts;
	struct wcache			 wc;
	uint8_t				*msg = NULL;
	size_t				 mlen;
	char				 err[256], *settings;
	struct proto_result		 keep;
	struct cache_put		 cp;
	int				 rc = -1, a = -1, store;

	memset(&r, 0, sizeof r);
	memset(&opts, 0, sizeof opts);
	memset(&wc, 0, sizeof wc);
	counts_clear(w->counts);
	err[0] = '\0';
	r.task = t->task;
	wc.status = STATS_CACHE_OFF;
	settings = partial_settings(t->format, t->filter, t->line_max);
	opts.line_max = t->line_max;
	opts.roots = (const char *const *)t->roots;
	opts.no_hardlinks = w->no_hardlinks;
	opts.no_ahead = (t->flags & PROTO_TASK_AHEAD) == 0;
	if (t->flags & PROTO_TASK_RANGE)
		opts.range = &t->range;
	if (settings != NULL && w->cache != NULL &&
	    (t->flags & PROTO_TASK_NO_CACHE) == 0) {
		wc.w = w;
		wc.settings = settings;
		wc.sdigest = wc.key = partial_digest(settings, strlen(settings));
		wc.range = opts.range;
		opts.opened = worker_cache_opened;
		opts.arg = &wc;
	}
	if ((opts.fmt = logformat_cache_get(w->formats, t->format, err,
	    sizeof err)) == NULL ||
	    (opts.flt = worker_filter(w, t->filter, err, sizeof err)) == NULL) {
		r.st.flags = STATS_FAILED;
		snprintf(r.st.error, sizeof r.st.error, "%s", err);
	} else {
		if (w->timeout > 0)
			alarm((unsigned)w->timeout);
		a = analysis_file(t->path, &opts, w->counts, &r.st, &r.id);
		if ((a == 0 && wc.status == STATS_CACHE_CONTENT &&
		    r.id.digest != wc.entry->sources[0].id.digest) ||
		    (a == -1 && wc.entry != NULL)) {
			/*
			 * Changed behind the same size and mtime, or the hash
			 * pass or the new bytes failed: read it whole, as
			 * without a cache (the second open drops the entry).
			 */
			memset(&r.st, 0, sizeof r.st);
			counts_clear(w->counts);
			a = analysis_file(t->path, &opts, w->counts, &r.st,
			    &r.id);
		}
		alarm(0);
		if (wc.entry != NULL && (a == ANALYSIS_SERVED || a == 0))
			worker_cache_result(&wc, &r);
		if (wc.entry == NULL && wc.status != STATS_CACHE_OFF)
			wc.status = STATS_CACHE_MISS;
	}
	if (r.st.flags & STATS_FAILED)
		r.st.flags &= ~STATS_PARTIAL;
	r.st.flags = STATS_CACHE_SET(r.st.flags, wc.status);
	/*
	 * Stored: what was read whole at the size it had when opened; an
	 * entry that was a hit is only touched.
	 */
	store = wc.status != STATS_CACHE_OFF && wc.status != STATS_CACHE_HIT &&
	    a != ANALYSIS_NOTHING &&
	    (r.st.flags & (STATS_FAILED | STATS_PARTIAL)) == 0 &&
	    r.id.ino != 0 && (wc.ranged ? r.id.size == wc.range->size :
	    r.id.off == 0 && r.id.end == r.id.size);
	/*
	 * A hit's partial is its entry, merged from where it is (checked
	 * again there, and read again from the file should it have changed).
	 * So is a partial stored, written once, into the cache. Every other
	 * file gets a partial in the spool, a failed one too: it lists the
	 * file.
	 */
	if (a == ANALYSIS_SERVED && wc.status == STATS_CACHE_HIT &&
	    (t->flags & PROTO_TASK_NO_REF) == 0) {
		r.ref = 1;
		r.ref_key = wc.key;
		r.ref_sum = worker_partial_sum(wc.entry->base +
		    wc.entry->size);
		r.size = wc.entry->size;
		r.nkeys = wc.entry->nkeys;
	} else if (store && (t->flags & PROTO_TASK_NO_REF) == 0 &&
	    cache_put_begin(w->cache, wc.key, r.id.dev, r.id.ino,
	    &cp) == 0) {
		keep = r;
		if (worker_store(w, &wc, t, settings, &r, &cp) == 0) {
			r.ref = 1;
			r.ref_key = wc.key;
		} else {
			/* (not stored: a partial in the spool, as uncached) */
			r = keep;
			(void)worker_write_partial(w, t, settings, wc.entry,
			    &r, 1);
		}
	} else if (worker_write_partial(w, t, settings, wc.entry, &r,
	    a == ANALYSIS_NOTHING ? 0 : 1) == 0 &&
	    store && cache_put_begin(w->cache, wc.key, r.id.dev, r.id.ino,
	    &cp) == 0) {
		/* (read again after a ref failed: in the spool, and stored) */
		keep = r;
		(void)worker_store(w, &wc, t, settings, &r, &cp);
		r = keep;
	}
	if (w->cache != NULL)
		cache_take_counts(w->cache, &r.cache_stored, &r.cache_evicted);
	if ((msg = proto_result_encode(&r, &mlen)) == NULL) {
		log_warn("%s: result", t->path);
		goto out;
	}
	if (proto_write(w->fd, msg, mlen) == -1)
		goto out;
	rc = 0;
out:
	if (wc.entry != NULL)
		partial_close(wc.entry);
	free(settings);
	free(msg);
	counts_clear(w->counts);
	return rc;
}

/* For qsort: checksums in increasing order. */
static int
worker_u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * A merge's cache entries as one memo: their merged counts, kept in the
 * cache under the settings' digest and a digest of the entries'
 * checksums (so the same unchanged files are merged once, however often
 * they are queried), made here when missing or unsound. The memo's one
 * source is a marker holding that digest and the number of entries.
 * What the merge then takes is mo: the other inputs, the memo last, and
 * the entries' files as extra sources; map[k] is the merge's input of
 * mo's input k (the memo: SIZE_MAX). 0 when mo is ready; -1 when the
 * merge goes without a memo; -2 when an entry was refused while making
 * it (mr says which, as the merge would).
 */
struct wmemo {
	struct merge_opts	 mo;
	char			**inputs;	/* borrowed but for the memo's */
	struct merge_entry	*entries;
	struct partial_source	*extra;
	size_t			*map;
	char			 path[PATH_MAX];
};

static void
worker_memo_free(struct wmemo *wm)
{
	free(wm->inputs);
	free(wm->entries);
	free(wm->extra);
	free(wm->map);
	memset(wm, 0, sizeof *wm);
}

static int
worker_memo(struct worker *w, const struct proto_merge *m,
    const struct merge_opts *o, struct wmemo *wm, struct merge_result *mr)
{
	struct merge_opts	 b;
	struct merge_result	 bmr;
	struct merge_entry	*be = NULL;
	struct partial_source	 marker;
	struct partial		*p;
	char			**bin = NULL, tmp[PATH_MAX + 32], why[200];
	uint64_t		*sums = NULL, key, set;
	size_t			 i, k, e, n = m->f.nrefs, *bmap = NULL;
	int			 fd, rc = -1;
	struct stat		 st;
	off_t			 size;

	memset(wm, 0, sizeof *wm);
	/* (a final merge's set of files is the one asked for again) */
	if (w->cache == NULL || n < 2 || !m->f.final)
		return -1;
	key = m->refs[0].f.key;
	if ((sums = calloc(n, sizeof *sums)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (m->refs[i].f.key != key)
			goto out;
		sums[i] = m->refs[i].f.sum;
	}
	qsort(sums, n, sizeof *sums, worker_u64_cmp);
	for (i = 1; i < n; i++)
		if (sums[i] == sums[i - 1])
			goto out;	/* (one entry twice: not a set) */
	set = XXH3_64bits_withSeed(sums, n * sizeof *sums, key) | 1;
	if (cache_memo_path(w->cache, key, set, wm->path, sizeof wm->path) ==
	    -1)
		goto out;
	p = partial_open(wm->path, why, sizeof why);
	if (p != NULL && (p->nsources != 1 || p->sources[0].path_len != 0 ||
	    p->sources[0].id.digest != set ||
	    p->sources[0].id.fingerprint != n)) {
		partial_close(p);
		p = NULL;
		snprintf(why, sizeof why, "not the memo of its entries");
	}
	if (p == NULL && lstat(wm->path, &st) == 0) {
		log_warnx("cache: %s: %s: removed", wm->path, why);
		(void)unlink(wm->path);
	}
	if (p != NULL) {
		partial_close(p);
		(void)utimensat(AT_FDCWD, wm->path, NULL, AT_SYMLINK_NOFOLLOW);
	} else {
		/* Made: the entries alone merged into a partial of no file. */
		if ((bin = calloc(n + 1, sizeof *bin)) == NULL ||
		    (be = calloc(n + 1, sizeof *be)) == NULL ||
		    (bmap = calloc(n + 1, sizeof *bmap)) == NULL)
			goto out;
		for (i = 0, k = 0; i < o->ninputs; i++) {
			if (!o->entries[i].on)
				continue;
			bin[k] = o->inputs[i];
			be[k] = o->entries[i];
			bmap[k++] = i;
		}
		memset(&marker, 0, sizeof marker);
		marker.path = "";
		marker.id.digest = set;
		marker.id.fingerprint = n;
		if ((fd = cache_memo_open_tmp(w->cache, key, set, tmp,
		    sizeof tmp)) == -1)
			goto out;
		memset(&b, 0, sizeof b);
		b.inputs = bin;
		b.ninputs = k;
		b.entries = be;
		b.extra = &marker;
		b.nextra = 1;
		b.no_sources = 1;
		b.fd = fd;
		if (merge_run(&b, &bmr) == -1) {
			close(fd);
			(void)unlink(tmp);
			if (bmr.bad < k) {
				*mr = bmr;
				mr->bad = bmap[bmr.bad];
				rc = -2;
			} else
				log_warnx("cache: a memo: %s", bmr.error);
			goto out;
		}
		size = lseek(fd, 0, SEEK_CUR);
		if (close(fd) == -1 || size <= 0 || cache_memo_commit(w->cache,
		    tmp, key, set, (uint64_t)size) == -1) {
			log_warn("cache: %s", tmp);
			(void)unlink(tmp);
			goto out;
		}
	}
	/* The merge's inputs but the entries, then the memo. */
	k = o->ninputs - n + 1;
	if ((wm->inputs = calloc(k + 1, sizeof *wm->inputs)) == NULL ||
	    (wm->entries = calloc(k + 1, sizeof *wm->entries)) == NULL ||
	    (wm->map = calloc(k + 1, sizeof *wm->map)) == NULL ||
	    (wm->extra = calloc(o->nextra + n + 1, sizeof *wm->extra)) == NULL)
		goto out;
	for (i = 0, k = 0; i < o->ninputs; i++) {
		if (o->entries[i].on)
			continue;
		wm->inputs[k] = o->inputs[i];
		wm->map[k++] = i;
	}
	wm->inputs[k] = wm->path;
	wm->entries[k].memo = 1;
	wm->entries[k].sum = set;
	wm->map[k++] = SIZE_MAX;
	for (e = 0; e < o->nextra; e++)
		wm->extra[e] = o->extra[e];
	for (i = 0; i < o->ninputs; i++) {
		if (!o->entries[i].on)
			continue;
		wm->extra[e].path = o->entries[i].path;
		wm->extra[e].path_len = o->entries[i].path_len;
		wm->extra[e].id.off = o->entries[i].off;
		wm->extra[e].id.end = o->entries[i].end;
		wm->extra[e++].st = o->entries[i].st;
	}
	wm->mo = *o;
	wm->mo.inputs = wm->inputs;
	wm->mo.ninputs = k;
	wm->mo.entries = wm->entries;
	wm->mo.extra = wm->extra;
	wm->mo.nextra = e;
	rc = 0;
out:
	if (rc != 0)
		worker_memo_free(wm);
	free(sums);
	free(bin);
	free(be);
	free(bmap);
	return rc;
}

/*
 * Run one MERGE task: its inputs are earlier tasks' partials, its output
 * this task's file, a partial or (final) the job's result, written to a
 * temporary name and renamed when whole. -1 when the supervisor is gone.
 */
static int
worker_merge(struct worker *w, const struct proto_merge *m)
{
	struct proto_merged_fixed	 mf;
	struct merge_opts		 o;
	struct merge_result		 mr;
	struct partial_source		*extra = NULL;
	struct merge_entry		*entries = NULL;
	const struct proto_ref		*rf;
	char				**inputs = NULL, path[PATH_MAX];
	char				 tmp[PATH_MAX + 8];
	struct wmemo			 wm;
	uint8_t				*msg;
	size_t				 mlen, i;
	int				 fd = -1, rc, mrc;

	memset(&o, 0, sizeof o);
	memset(&mr, 0, sizeof mr);
	memset(&wm, 0, sizeof wm);
	mr.bad = SIZE_MAX;
	if ((inputs = calloc((size_t)m->f.ninputs + 1, sizeof *inputs)) == NULL ||
	    (extra = calloc((size_t)m->f.nextra + 1, sizeof *extra)) == NULL ||
	    (m->f.nrefs > 0 && (entries = calloc((size_t)m->f.ninputs + 1,
	    sizeof *entries)) == NULL)) {
		snprintf(mr.error, sizeof mr.error, "out of memory");
		goto reply;
	}
	/* Cache entries (hits) are read where they are, checked as found. */
	for (i = 0; i < m->f.nrefs; i++) {
		rf = &m->refs[i];
		if (entries[rf->f.input].on)
			continue;
		entries[rf->f.input].on = 1;
		entries[rf->f.input].sum = rf->f.sum;
		entries[rf->f.input].path = rf->path;
		entries[rf->f.input].path_len = rf->f.path_len;
		entries[rf->f.input].off = rf->f.off;
		entries[rf->f.input].end = rf->f.end;
		entries[rf->f.input].st = rf->f.st;
		if (w->cache == NULL || cache_entry_path(w->cache, rf->f.key,
		    rf->f.dev, rf->f.ino, path, sizeof path) == -1) {
			/* (refused as if damaged: its file is read again) */
			snprintf(mr.error, sizeof mr.error, "input %u: no cache "
			    "entry", rf->f.input);
			mr.bad = rf->f.input;
			goto reply;
		}
		if ((inputs[rf->f.input] = strdup(path)) == NULL) {
			snprintf(mr.error, sizeof mr.error, "out of memory");
			goto reply;
		}
	}
	for (i = 0; i < m->f.ninputs; i++) {
		if (inputs[i] != NULL)
			continue;
		if (proto_spool_path(path, sizeof path, w->spool,
		    m->inputs[i], 0) == -1 ||
		    (inputs[i] = strdup(path)) == NULL) {
			snprintf(mr.error, sizeof mr.error, "out of memory");
			goto reply;
		}
	}
	for (i = 0; i < m->f.nextra; i++) {
		extra[i].path = m->extra[i].path;
		extra[i].path_len = m->extra[i].path_len;
		extra[i].st = m->extra[i].st;
		extra[i].id.off = m->extra[i].off;
		extra[i].id.end = m->extra[i].end;
	}
	if (proto_spool_path(path, sizeof path, w->spool, m->f.task,
	    m->f.final) == -1) {
		snprintf(mr.error, sizeof mr.error, "spool path too long");
		goto reply;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		snprintf(mr.error, sizeof mr.error, "creating the output in the "
		    "spool: %s", strerror(errno));
		goto reply;
	}
	o.inputs = inputs;
	o.ninputs = m->f.ninputs;
	o.entries = entries;
	o.extra = extra;
	o.nextra = m->f.nextra;
	o.fd = fd;
	o.final = m->f.final != 0;
	o.top = (size_t)m->f.top;
	o.head = m->f.head_len > 0 ? m->head : NULL;
	o.start_usec = m->f.start_usec;
	if (w->timeout > 0)
		alarm((unsigned)w->timeout);
	mrc = entries != NULL ? worker_memo(w, m, &o, &wm, &mr) : -1;
	rc = -1;
	if (mrc == 0) {
		rc = merge_run(&wm.mo, &mr);
		if (rc == -1 && mr.bad != SIZE_MAX &&
		    wm.map[mr.bad] == SIZE_MAX) {
			/* The memo went bad meanwhile: without it. */
			log_warnx("cache: %s: %s: removed", wm.path, mr.error);
			(void)unlink(wm.path);
			mrc = -1;
			if (lseek(fd, 0, SEEK_SET) == -1 ||
			    ftruncate(fd, 0) == -1) {
				mrc = -2;
				mr.bad = SIZE_MAX;
			}
		} else if (rc == -1 && mr.bad != SIZE_MAX)
			mr.bad = wm.map[mr.bad];
	}
	if (mrc == -1)
		rc = merge_run(&o, &mr);
	worker_memo_free(&wm);
	alarm(0);
	if (rc == 0) {
		rc = close(fd);
		fd = -1;
		if (rc == 0)
			rc = rename(tmp, path);
		if (rc == -1) {
			snprintf(mr.error, sizeof mr.error, "writing the output "
			    "in the spool: %s", strerror(errno));
			unlink(tmp);
		}
	}
	else if (mr.error[0] == '\0')
		snprintf(mr.error, sizeof mr.error, "merge failed");
reply:
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	for (i = 0; inputs != NULL && i < m->f.ninputs; i++)
		free(inputs[i]);
	free(inputs);
	free(extra);
	free(entries);
	memset(&mf, 0, sizeof mf);
	mf.task = m->f.task;
	mf.nkeys = mr.nkeys;
	mf.size = mr.bytes;
	mf.bad = mr.bad < m->f.ninputs ? (uint32_t)mr.bad : PROTO_NO_INPUT;
	if (mr.error[0] != '\0')
		log_warnx("merge: %s", mr.error);
	if ((msg = proto_merged_encode(&mf, mr.error[0] != '\0' ? mr.error :
	    NULL, &mlen)) == NULL)
		return -1;
	rc = proto_write(w->fd, msg, mlen);
	free(msg);
	return rc;
}

/*
 * Whether a format yields what the job's filters need: a status filter
 * on a format with no status field would drop every line, and a time
 * range on one with no time the same. -1 with the reason in err.
 */
static int
worker_format_serves(const struct logformat *lf, uint32_t needs, char *err,
    size_t errlen)
{
	if ((needs & FILTER_NEEDS_STATUS) && !logformat_has_status(lf)) {
		snprintf(err, errlen, "it has no status field (%%>s, or a "
		    "regex: group named status): the status filter cannot "
		    "apply");
		return -1;
	}
	if ((needs & FILTER_NEEDS_TIME) && !logformat_has_time(lf)) {
		snprintf(err, errlen, "it has no time field (%%t, or a regex: "
		    "group named time): since and until cannot apply");
		return -1;
	}
	return 0;
}

/*
 * Expand a job's patterns and send the file list; an expansion that
 * fails, or whose list is too big for one message, sends its error.
 * -1 when the supervisor is gone.
 */
static int
worker_expand(struct worker *w, const struct proto_expand *x)
{
	struct expand_result	 r;
	struct expand_limits	 lim;
	struct logformat	*lf = NULL;
	uint8_t			*msg;
	size_t			 mlen;
	char			 ferr[256];
	int			 rc;

	if (x->format != NULL && ((lf = logformat_cache_get(w->formats,
	    x->format, ferr, sizeof ferr)) == NULL ||
	    worker_format_serves(lf, x->needs, ferr, sizeof ferr) == -1)) {
		/* Refused with the compiler's words, before any file is read. */
		if ((msg = proto_expanded_format_error(x->task, ferr,
		    &mlen)) == NULL)
			return -1;
		rc = proto_write(w->fd, msg, mlen);
		free(msg);
		return rc;
	}
	if (w->timeout > 0)
		alarm((unsigned)w->timeout);
	memset(&lim, 0, sizeof lim);
	lim.files_max = (size_t)(x->files_max > SIZE_MAX / 4 ? SIZE_MAX / 4 :
	    x->files_max);
	lim.walk_max = w->walk_max;
	lim.memory_max = EXPAND_MEMORY_MAX;
	lim.split_size = x->split_size;
	lim.no_hardlinks = w->no_hardlinks;
	(void)expand_patterns(x->patterns, x->npatterns, x->roots, &lim, &r);
	alarm(0);
	msg = proto_expanded_encode(x->task, r.paths, r.ids, r.npaths, r.unmatched,
	    r.nunmatched, r.limit, r.error[0] != '\0' ? r.error : NULL,
	    &mlen);
	if (msg == NULL) {
		log_warn("expanding %u pattern%s", x->npatterns,
		    x->npatterns == 1 ? "" : "s");
		snprintf(r.error, sizeof r.error, "%s (%zu path%s)", errno ==
		    EMSGSIZE ? "file list too long for one message" :
		    "out of memory sending the file list", r.npaths,
		    r.npaths == 1 ? "" : "s");
		if ((msg = proto_expanded_encode(x->task, NULL, NULL, 0, NULL, 0, 0,
		    r.error, &mlen)) == NULL) {
			expand_result_clear(&r);
			return -1;
		}
	}
	expand_result_clear(&r);
	rc = proto_write(w->fd, msg, mlen);
	free(msg);
	return rc;
}

void
worker_main(int fd, int slot, pid_t parent, const struct config *cfg,
    const char *spool)
{
	struct worker		 w;
	struct proto_ready	 ready;
	struct proto_hdr	 h;
	struct proto_task	 t;
	struct proto_expand	 x;
	struct proto_merge	 m;
	uint8_t			*payload, *msg;
	char			 name[32], title[48], err[256];
	int			 r, code = 0;

	if (slot < 0)
		snprintf(name, sizeof name, "expander");
	else
		snprintf(name, sizeof name, "worker %d", slot);
	log_procname(name);
	snprintf(title, sizeof title, "clfd: %s", name);
	worker_title(slot < 0 ? "clfd-expander" : "clfd-worker", title);
	memset(&w, 0, sizeof w);
	w.fd = fd;
	w.spool = spool;
	w.timeout = cfg->task_timeout;
	reader_ahead = cfg->inflate_ahead;
	w.walk_max = cfg->walk_max;
	w.no_hardlinks = cfg->refuse_hardlinks;
	if (worker_setup(parent, cfg) == -1)
		_exit(WORKER_EXIT_SETUP);
	/* (the expander never analyses a file) */
	if (slot >= 0)
		w.cache = cache_new(cfg->cache_dir, cfg->cache_max);
	if ((w.formats = logformat_cache_new(WORKER_FORMATS)) == NULL ||
	    (w.counts = counts_new()) == NULL) {
		log_warnx("out of memory");
		_exit(WORKER_EXIT_SETUP);
	}
	/*
	 * Ready before the first job, not during it: the default format
	 * compiled (the expander checks every job's), the reader's buffers
	 * made.
	 */
	if (cfg->format != NULL)
		(void)logformat_cache_get(w.formats, cfg->format, err,
		    sizeof err);
	if (slot >= 0)
		reader_warm(cfg->line_max != 0 ? cfg->line_max :
		    ANALYSIS_LINE_MAX);

	memset(&h, 0, sizeof h);
	h.type = PROTO_READY;
	h.len = sizeof ready;
	ready.version = PROTO_VERSION;
	ready.pid = (uint32_t)getpid();
	if ((msg = malloc(sizeof h + sizeof ready)) == NULL)
		_exit(WORKER_EXIT_SETUP);
	memcpy(msg, &h, sizeof h);
	memcpy(msg + sizeof h, &ready, sizeof ready);
	r = proto_write(fd, msg, sizeof h + sizeof ready);
	free(msg);
	if (r == -1)
		goto out;

	for (;;) {
		if ((r = proto_read(fd, &h, &payload)) == 0)
			break;		/* supervisor closed: exit quietly */
		if (r == -1) {
			log_warn("read from supervisor");
			code = 1;
			break;
		}
		if (h.type == PROTO_EXPAND &&
		    proto_expand_decode(payload, h.len, &x) == 0) {
			free(payload);
			r = worker_expand(&w, &x);
			proto_expand_clear(&x);
		} else if (h.type == PROTO_TASK &&
		    proto_task_decode(payload, h.len, &t) == 0) {
			free(payload);
			r = worker_task(&w, &t);
			proto_task_clear(&t);
		} else if (h.type == PROTO_MERGE &&
		    proto_merge_decode(payload, h.len, &m) == 0) {
			/* (its extra sources' paths point into the payload) */
			r = worker_merge(&w, &m);
			proto_merge_clear(&m);
			free(payload);
		} else {
			log_warnx("bad message from supervisor (type %u, %u "
			    "bytes)", h.type, h.len);
			free(payload);
			code = 1;
			break;
		}
		if (r == -1)
			break;
	}
out:
	logformat_cache_free(w.formats);
	cache_free(w.cache);
	counts_free(w.counts);
	filter_free(w.filter);
	free(w.filter_text);
	close(fd);
	exit(code);
}
