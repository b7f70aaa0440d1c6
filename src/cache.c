/*
 * cache.c: the persistent cache of per-file partials (see cache.h).
 *
 * Entries are whole partials, so the cache needs no format of its own: a
 * partial carries its settings, its source's identity and a checksum,
 * and partial_open checks all of it. What this file owns is the
 * directory: names, atomic stores, use times and the bound in bytes.
 * Names in v1/: <settings digest>-<dev>-<ino> for an entry (.r its gzip
 * companion), i<settings digest>-<size> the content index, m<settings
 * digest>-<set> a memo, *.tmp while being written.
 */
#include <config.h>

#include "cache.h"

#include "log.h"
#include "partial.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CACHE_SUB	"v1"		/* bump with the entries' layout */
#define CACHE_AGE	(30 * 86400)	/* unused this long: gone */
#define CACHE_TMP_AGE	3600		/* a temporary left by a dead worker */

static struct partial	*cache_open(struct cache *, const char *);

struct cache {
	char		 dir[PATH_MAX];		/* cache_dir */
	char		 sub[PATH_MAX];		/* cache_dir/v1 */
	uint64_t	 max;
	uint64_t	 since_scan;		/* bytes stored since the last scan */
	int		 scanned;
	int		 ready;			/* checked (made) and ours */
	uint64_t	 stored, evicted;	/* to report */
};

int
cache_default_dir(char *buf, size_t len)
{
	const char	*s;
	struct passwd	*pw;
	int		 n;

	/* systemd's CacheDirectory=clfd: the directory itself. */
	if ((s = getenv("CACHE_DIRECTORY")) != NULL && *s == '/' &&
	    strchr(s, ':') == NULL)
		n = snprintf(buf, len, "%s", s);
	else if ((s = getenv("XDG_CACHE_HOME")) != NULL && *s == '/')
		n = snprintf(buf, len, "%s/clfd", s);
	else {
		if ((s = getenv("HOME")) == NULL || *s != '/') {
			if ((pw = getpwuid(getuid())) == NULL ||
			    pw->pw_dir == NULL || *pw->pw_dir != '/')
				return -1;
			s = pw->pw_dir;
		}
		n = snprintf(buf, len, "%s/.cache/clfd", s);
	}
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* mkdir -p with mode 0700 for what it makes. */
static int
cache_mkdirs(const char *path)
{
	char	 tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * The cache directory, ours and 0700, made when missing if create (else
 * -1 quietly: nothing was ever stored).
 */
static int
cache_prepare(struct cache *c, int create)
{
	struct stat	st;

	if (!create && lstat(c->sub, &st) == -1 && errno == ENOENT)
		return -1;
	/* (cache_dir itself may be a symlink: systemd's with DynamicUser=) */
	if (cache_mkdirs(c->dir) == -1 || stat(c->dir, &st) == -1) {
		log_warn("cache_dir %s", c->dir);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		log_warnx("cache_dir %s: not a directory of ours", c->dir);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(c->dir, 0700) == -1) {
		log_warn("cache_dir %s", c->dir);
		return -1;
	}
	if (mkdir(c->sub, 0700) == -1 && errno != EEXIST) {
		log_warn("cache_dir %s", c->sub);
		return -1;
	}
	if (lstat(c->sub, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_warnx("cache_dir %s: not a directory", c->sub);
		return -1;
	}
	c->ready = 1;
	return 0;
}

struct cache *
cache_new(const char *dir, uint64_t max)
{
	struct cache	*c;

	if (max == 0)
		return NULL;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		log_warn("cache");
		return NULL;
	}
	c->max = max;
	if (dir != NULL) {
		if (snprintf(c->dir, sizeof c->dir, "%s", dir) >=
		    (int)sizeof c->dir)
			goto toolong;
	} else if (cache_default_dir(c->dir, sizeof c->dir) == -1) {
		log_warnx("cache: no cache_dir and no home directory: off");
		free(c);
		return NULL;
	}
	if (snprintf(c->sub, sizeof c->sub, "%s/" CACHE_SUB, c->dir) >=
	    (int)sizeof c->sub)
		goto toolong;
	/* (made when the first entry is stored) */
	return c;
toolong:
	log_warnx("cache_dir: path too long: off");
	free(c);
	return NULL;
}

void
cache_free(struct cache *c)
{
	free(c);
}

static int
cache_name(const struct cache *c, char *buf, size_t len, uint64_t sdigest,
    uint64_t dev, uint64_t ino, const char *suffix)
{
	int	n;

	n = snprintf(buf, len, "%s/%016llx-%llx-%llx%s", c->sub,
	    (unsigned long long)sdigest, (unsigned long long)dev,
	    (unsigned long long)ino, suffix);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

struct partial *
cache_get(struct cache *c, uint64_t sdigest, uint64_t dev, uint64_t ino)
{
	char	path[PATH_MAX];

	if (cache_name(c, path, sizeof path, sdigest, dev, ino, "") == -1)
		return NULL;
	return cache_open(c, path);
}

int
cache_entry_path(const struct cache *c, uint64_t sdigest, uint64_t dev,
    uint64_t ino, char *buf, size_t len)
{
	return cache_name(c, buf, len, sdigest, dev, ino, "");
}

void
cache_drop(struct cache *c, uint64_t sdigest, uint64_t dev, uint64_t ino)
{
	char	path[PATH_MAX];

	if (cache_name(c, path, sizeof path, sdigest, dev, ino, "") == 0 &&
	    unlink(path) == -1 && errno != ENOENT)
		log_warn("cache: %s", path);
}

struct centry {
	char		name[64];
	uint64_t	size;
	int64_t		used;
};

static int
centry_cmp(const void *a, const void *b)
{
	const struct centry	*x = a, *y = b;

	if (x->used != y->used)
		return x->used < y->used ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Remove a directory set aside by cache_clear, and what is in it. */
static void
cache_remove_tree(const char *path)
{
	DIR		*d;
	struct dirent	*e;

	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	if (rmdir(path) == -1 && errno != ENOENT)
		log_warn("cache: %s", path);
}

/*
 * Look over the entries: what is not a regular file goes, so do
 * temporaries left behind and entries unused for CACHE_AGE (their file
 * is most likely gone), then the least recently used until the rest fits
 * in seven eighths of the bound. Directories set aside by a clear go too.
 */
static void
cache_scan(struct cache *c)
{
	DIR		*d;
	struct dirent	*e;
	struct stat	 st;
	struct centry	*v = NULL, *nv;
	size_t		 n = 0, cap = 0, i, len;
	uint64_t	 total = 0, keep;
	time_t		 now = time(NULL);
	char		 path[PATH_MAX];

	c->scanned = 1;
	c->since_scan = 0;
	if ((d = opendir(c->dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "old.", 4) != 0)
				continue;
			if (snprintf(path, sizeof path, "%s/%s", c->dir,
			    e->d_name) < (int)sizeof path)
				cache_remove_tree(path);
		}
		closedir(d);
	}
	if ((d = opendir(c->sub)) == NULL) {
		if (errno != ENOENT)
			log_warn("cache: %s", c->sub);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		len = strlen(e->d_name);
		if (!S_ISREG(st.st_mode) || len >= sizeof v->name ||
		    now - st.st_mtime > CACHE_AGE ||
		    (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0 &&
		    now - st.st_mtime > CACHE_TMP_AGE)) {
			if (unlinkat(dirfd(d), e->d_name, 0) == 0 &&
			    S_ISREG(st.st_mode))
				c->evicted++;
			continue;
		}
		if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 256 : 2 * cap;
			if ((nv = reallocarray(v, cap, sizeof *v)) == NULL) {
				log_warn("cache: scan");
				goto out;
			}
			v = nv;
		}
		memcpy(v[n].name, e->d_name, len + 1);
		/* (an inode with two names counts half under each) */
		v[n].size = (uint64_t)st.st_size / (st.st_nlink > 1 ?
		    (uint64_t)st.st_nlink : 1);
		v[n].used = (int64_t)st.st_mtim.tv_sec * 1000000000 +
		    st.st_mtim.tv_nsec;
		total += v[n].size;
		n++;
	}
	if (total > c->max) {
		qsort(v, n, sizeof *v, centry_cmp);
		keep = c->max - c->max / 8;
		for (i = 0; i < n && total > keep; i++) {
			if (unlinkat(dirfd(d), v[i].name, 0) == -1)
				continue;
			total -= v[i].size;
			c->evicted++;
		}
	}
out:
	free(v);
	closedir(d);
}

int
cache_put_begin(struct cache *c, uint64_t sdigest, uint64_t dev,
    uint64_t ino, struct cache_put *cp)
{
	struct stat	 a, b;

	cp->fd = -1;
	if (cache_name(c, cp->path, sizeof cp->path, sdigest, dev, ino,
	    "") == -1 || cache_name(c, cp->tmp, sizeof cp->tmp, sdigest, dev,
	    ino, ".tmp") == -1 || (!c->ready && cache_prepare(c, 1) == -1))
		return -1;
	if ((cp->fd = open(cp->tmp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1 && errno == ENOENT) {
		/* cleared meanwhile: v1/ again, and what was set aside goes */
		c->scanned = 0;
		if (cache_prepare(c, 1) == 0)
			cp->fd = open(cp->tmp, O_RDWR | O_CREAT | O_CLOEXEC |
			    O_NOFOLLOW, 0600);
	}
	if (cp->fd == -1) {
		log_warn("cache: %s", cp->tmp);
		return -1;
	}
	/*
	 * One writer an entry: another one storing it holds the lock, and
	 * the name must still be the file locked (not renamed into place
	 * by the writer before).
	 */
	if (flock(cp->fd, LOCK_EX | LOCK_NB) == -1 ||
	    fstat(cp->fd, &a) == -1 || lstat(cp->tmp, &b) == -1 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(cp->fd);
		cp->fd = -1;
		return -1;
	}
	if (ftruncate(cp->fd, 0) == -1) {
		log_warn("cache: %s", cp->tmp);
		cache_put_abort(cp);
		return -1;
	}
	return 0;
}

int
cache_put_commit(struct cache *c, struct cache_put *cp, uint64_t bytes)
{
	if (rename(cp->tmp, cp->path) == -1) {
		log_warn("cache: %s", cp->path);
		cache_put_abort(cp);
		return -1;
	}
	close(cp->fd);
	cp->fd = -1;
	c->stored += bytes;
	c->since_scan += bytes;
	if (!c->scanned || c->since_scan > c->max / 16)
		cache_scan(c);
	return 0;
}

void
cache_put_abort(struct cache_put *cp)
{
	if (cp->fd == -1)
		return;
	(void)unlink(cp->tmp);
	close(cp->fd);
	cp->fd = -1;
}

static int
cache_index_name(const struct cache *c, char *buf, size_t len,
    uint64_t sdigest, uint32_t raw_low, const char *suffix)
{
	int	n;

	n = snprintf(buf, len, "%s/i%016llx-%08x%s", c->sub,
	    (unsigned long long)sdigest, (unsigned)raw_low, suffix);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
cache_index_put(struct cache *c, uint64_t sdigest, uint32_t raw_low,
    uint64_t dev, uint64_t ino)
{
	char	path[PATH_MAX], ipath[PATH_MAX], tmp[PATH_MAX + 32];

	if (!c->ready || cache_name(c, path, sizeof path, sdigest, dev, ino,
	    "") == -1 || cache_index_name(c, ipath, sizeof ipath, sdigest,
	    raw_low, "") == -1)
		return -1;
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", ipath, (long)getpid());
	(void)unlink(tmp);
	if (link(path, tmp) == -1)
		return -1;
	if (rename(tmp, ipath) == -1) {
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/* Open, check and touch the entry at path; NULL when unusable. */
static struct partial *
cache_open(struct cache *c, const char *path)
{
	struct partial	*p;
	struct stat	 st;
	char		 err[256];

	if (!c->ready && cache_prepare(c, 0) == -1)
		return NULL;
	if (lstat(path, &st) == -1) {
		if (errno != ENOENT)
			log_warn("cache: %s", path);
		return NULL;
	}
	if ((p = partial_open(path, err, sizeof err)) == NULL) {
		log_warnx("cache: %s: %s: removed", path, err);
		if (unlink(path) == -1 && errno != ENOENT)
			log_warn("cache: %s", path);
		return NULL;
	}
	/* Used now: the last to be evicted. */
	if (utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) == -1)
		log_debug("cache: touching %s: %s", path, strerror(errno));
	return p;
}

struct partial *
cache_index_get(struct cache *c, uint64_t sdigest, uint32_t raw_low)
{
	char	path[PATH_MAX];

	if (cache_index_name(c, path, sizeof path, sdigest, raw_low, "") == -1)
		return NULL;
	return cache_open(c, path);
}

int
cache_rawsum_put(struct cache *c, uint64_t sdigest, uint64_t dev,
    uint64_t ino, uint64_t entry_sum, uint64_t rawsum)
{
	char		path[PATH_MAX], tmp[PATH_MAX + 32];
	uint64_t	v[2] = { entry_sum, rawsum };
	int		fd;

	if (!c->ready || cache_name(c, path, sizeof path, sdigest, dev, ino,
	    ".r") == -1)
		return -1;
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		return -1;
	if (write(fd, v, sizeof v) != (ssize_t)sizeof v || close(fd) == -1 ||
	    rename(tmp, path) == -1) {
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

int
cache_rawsum_get(struct cache *c, uint64_t sdigest, uint64_t dev,
    uint64_t ino, uint64_t entry_sum, uint64_t *rawsum)
{
	char		path[PATH_MAX];
	uint64_t	v[2];
	ssize_t		n;
	int		fd;

	if (cache_name(c, path, sizeof path, sdigest, dev, ino, ".r") == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	n = read(fd, v, sizeof v);
	close(fd);
	if (n != (ssize_t)sizeof v || v[0] != entry_sum)
		return -1;
	*rawsum = v[1];
	return 0;
}

int
cache_memo_path(const struct cache *c, uint64_t sdigest, uint64_t set,
    char *buf, size_t len)
{
	int	n;

	n = snprintf(buf, len, "%s/m%016llx-%016llx", c->sub,
	    (unsigned long long)sdigest, (unsigned long long)set);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
cache_memo_open_tmp(struct cache *c, uint64_t sdigest, uint64_t set,
    char *tmp, size_t len)
{
	char	path[PATH_MAX];
	int	fd, n;

	if ((!c->ready && cache_prepare(c, 1) == -1) ||
	    cache_memo_path(c, sdigest, set, path, sizeof path) == -1)
		return -1;
	n = snprintf(tmp, len, "%s.%ld.tmp", path, (long)getpid());
	if (n < 0 || (size_t)n >= len)
		return -1;
	(void)unlink(tmp);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		log_warn("cache: %s", tmp);
	return fd;
}

int
cache_memo_commit(struct cache *c, const char *tmp, uint64_t sdigest,
    uint64_t set, uint64_t bytes)
{
	char	path[PATH_MAX];

	if (cache_memo_path(c, sdigest, set, path, sizeof path) == -1 ||
	    rename(tmp, path) == -1) {
		(void)unlink(tmp);
		return -1;
	}
	c->stored += bytes;
	c->since_scan += bytes;
	if (!c->scanned || c->since_scan > c->max / 16)
		cache_scan(c);
	return 0;
}

void
cache_take_counts(struct cache *c, uint64_t *stored, uint64_t *evicted)
{
	*stored = c->stored;
	*evicted = c->evicted;
	c->stored = c->evicted = 0;
}

int
cache_clear(const char *dir)
{
	static unsigned	 seq;
	char		 base[PATH_MAX], sub[PATH_MAX], old[PATH_MAX];
	int		 n;

	if (dir == NULL) {
		if (cache_default_dir(base, sizeof base) == -1) {
			errno = ENOENT;
			return -1;
		}
		dir = base;
	}
	n = snprintf(sub, sizeof sub, "%s/" CACHE_SUB, dir);
	if (n < 0 || (size_t)n >= sizeof sub) {
		errno = ENAMETOOLONG;
		return -1;
	}
	n = snprintf(old, sizeof old, "%s/old.%ld.%lld.%u", dir, (long)getpid(),
	    (long long)time(NULL), seq++);
	if (n < 0 || (size_t)n >= sizeof old) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (rename(sub, old) == -1 && errno != ENOENT)
		return -1;
	return 0;
}
