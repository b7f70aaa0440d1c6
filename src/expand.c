/*
 * expand.c: expansion of a job's patterns, run by the expander.
 *
 * glob(3) cannot be bounded: it collects every match before returning,
 * follows symlinks anywhere and walks wherever a pattern leads. So the
 * patterns are walked here instead. Brace groups are expanded first, by
 * glob's own rules (GLOB_BRACE), one alternative at a time; each
 * alternative is then matched one path component at a time with
 * fnmatch(3), as glob matches (FNM_PERIOD: a leading dot only by a dot),
 * and looked up with the *at() calls from a directory already open.
 *
 * The walk starts at the roots, never above them: the leading components
 * of a pattern are matched against each root's own components, without
 * touching the filesystem, and a pattern that cannot lead into a root is
 * not walked at all (it matches nothing, like any pattern whose matches
 * all lie outside the roots). Below a root, a symlink is followed only
 * when it resolves inside a root, and a ".." only while its parent is
 * inside one; a directory is checked, once open, for what it really is
 * (/proc/self/fd), so one swapped for a symlink meanwhile is not walked.
 * A directory already walked for the same component of the same pattern
 * is not walked again: symlink loops and symlinked trees cost what their
 * directories do (times the pattern's components), not the number of
 * paths through them, and match the files glob(3) would match. The
 * directories of pseudo-filesystems (/proc, /sys, ...) are never listed.
 *
 * Files are kept by (device, inode): however many spellings match a
 * file, it is named once, by the one with the fewest components, the
 * first in byte order among those. The walk
 * stops at files_max + 1 files, walk_max entries looked at, or
 * memory_max bytes held, whichever comes first.
 *
 * A file the job would split into byte ranges (a regular one over
 * split_size) is opened, from the directory it was found in, and its
 * first two bytes read: a gzip file cannot be split, and is one task.
 * No other file is opened.
 */
#include <config.h>

#include "expand.h"
#include "reader.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XP_BRACE_GROUPS	1024	/* brace groups in one pattern, at most */
#define XP_NODE		(4 * sizeof(void *))	/* a tsearch node, about */
/* A file looked at for gzip: as the reader opens it, never followed. */
#define XP_OPEN		(O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | \
			    O_NOFOLLOW)

enum xp_state {
	XP_GO,		/* walking */
	XP_FULL,	/* files_max + 1 files found */
	XP_LIMIT,	/* walk_max or memory_max reached: error set */
	XP_NOMEM	/* out of memory: error set */
};

/* One component of the pattern being walked. */
struct xcomp {
	char	*s;		/* unescaped when literal */
	int	 magic;		/* has *, ? or [...]: fnmatch, else strcmp */
};

/* A place the walk may start: a root, as spelled and resolved. */
struct xstart {
	char		 *spell;	/* without a trailing '/': "" for "/" */
	char		 *real;		/* realpath of the root */
	char		**comp;		/* spell's components */
	size_t		  ncomp;
	int		  dropped;	/* under another start's spelling */
	int		  fd;		/* open once, -1 before */
	struct stat	  st;
};

/*
 * A directory reached by a literal component, kept open for the next
 * alternative: brace alternatives share their leading directories, which
 * are then looked up once, not once per alternative.
 */
struct xcache {
	char		*spell;		/* its path as spelled; NULL: empty */
	char		*real;
	int		 fd;
	struct stat	 st;
};

struct xfile {
	dev_t	 dev;
	ino_t	 ino;
	off_t	 size;
	int64_t	 mtime_ns;
	uint32_t flags;		/* EXPAND_* */
	char	*path;		/* its first spelling (xp_spell_cmp) */
};

struct xdir {
	dev_t	 dev;
	ino_t	 ino;
	size_t	 level;		/* the pattern component it is walked for */
};

struct xp {
	const struct expand_limits	 *lim;
	char				**rroots;	/* resolved; NULL: any */
	struct xstart			 *starts;
	size_t				  nstarts;
	struct xcomp			 *comp;		/* the alternative */
	size_t				  ncomp;
	int				  dironly;	/* it ends in '/' */
	void				 *files;	/* struct xfile by inode */
	struct xfile			**vfiles;
	size_t				  nfiles, capfiles;
	void				 *dirs;		/* struct xdir walked */
	struct xcache			 *cache;	/* by component */
	size_t				  ncache;
	size_t				  walked;	/* entries looked at */
	size_t				  mem;		/* bytes held, about */
	enum xp_state			  state;
	int				  found;	/* the pattern named a file */
	char				  error[128];
	char				  spell[PATH_MAX];	/* path walked */
};

static void	xp_walk(struct xp *, int, const char *, size_t);

static void __attribute__((format(printf, 3, 4)))
xp_stop(struct xp *x, enum xp_state st, const char *fmt, ...)
{
	va_list	ap;

	if (x->state != XP_GO)
		return;
	x->state = st;
	va_start(ap, fmt);
	vsnprintf(x->error, sizeof x->error, fmt, ap);
	va_end(ap);
}

static void
xp_nomem(struct xp *x)
{
	xp_stop(x, XP_NOMEM, "out of memory expanding patterns");
}

/* Account n more bytes held; -1 (and stop) past memory_max. */
static int
xp_hold(struct xp *x, size_t n)
{
	x->mem += n;
	if (x->mem > x->lim->memory_max) {
		xp_stop(x, XP_LIMIT, "patterns: more than %zuM of memory to "
		    "expand", x->lim->memory_max >> 20);
		return -1;
	}
	return 0;
}

static void
xp_release(struct xp *x, size_t n)
{
	x->mem = n < x->mem ? x->mem - n : 0;
}

/* One more entry looked at; -1 (and stop) past walk_max. */
static int
xp_visit(struct xp *x)
{
	if (++x->walked > x->lim->walk_max) {
		xp_stop(x, XP_LIMIT, "patterns: more than %zu directory "
		    "entries to look at (walk_max)", x->lim->walk_max);
		return -1;
	}
	return 0;
}

/* 1 when real (resolved) is one of the roots or below one. */
static int
xp_in_roots(const struct xp *x, const char *real)
{
	size_t	i, len;

	if (x->rroots == NULL)
		return 1;
	for (i = 0; x->rroots[i] != NULL; i++) {
		len = strlen(x->rroots[i]);
		if (len == 1 && x->rroots[i][0] == '/')
			return real[0] == '/';
		if (strncmp(real, x->rroots[i], len) == 0 &&
		    (real[len] == '\0' || real[len] == '/'))
			return 1;
	}
	return 0;
}

static int
xf_cmp(const void *a, const void *b)
{
	const struct xfile	*fa = a, *fb = b;

	if (fa->dev != fb->dev)
		return fa->dev < fb->dev ? -1 : 1;
	if (fa->ino != fb->ino)
		return fa->ino < fb->ino ? -1 : 1;
	return 0;
}

static int
xd_cmp(const void *a, const void *b)
{
	const struct xdir	*da = a, *db = b;

	if (da->dev != db->dev)
		return da->dev < db->dev ? -1 : 1;
	if (da->ino != db->ino)
		return da->ino < db->ino ? -1 : 1;
	if (da->level != db->level)
		return da->level < db->level ? -1 : 1;
	return 0;
}

/*
 * The order of a file's spellings: fewer components first (the most
 * direct path: no "..", no detour), then byte order.
 */
static int
xp_spell_cmp(const char *a, const char *b)
{
	size_t	na = 0, nb = 0;
	const char *p;

	for (p = a; *p != '\0'; p++)
		na += *p == '/';
	for (p = b; *p != '\0'; p++)
		nb += *p == '/';
	if (na != nb)
		return na < nb ? -1 : 1;
	return strcmp(a, b);
}

/*
 * The file st is matched by x->spell: kept (returned, when it is new), or
 * its name maybe changed (NULL).
 */
static struct xfile *
xp_file(struct xp *x, const struct stat *st)
{
	struct xfile	 key, *f, **v;
	void		*slot;
	char		*p;
	size_t		 len = strlen(x->spell) + 1;

	x->found = 1;
	key.dev = st->st_dev;
	key.ino = st->st_ino;
	if ((slot = tfind(&key, &x->files, xf_cmp)) != NULL) {
		f = *(struct xfile **)slot;
		if (xp_spell_cmp(x->spell, f->path) >= 0)
			return NULL;
		if (xp_hold(x, len) == -1)
			return NULL;
		if ((p = strdup(x->spell)) == NULL) {
			xp_nomem(x);
			return NULL;
		}
		xp_release(x, strlen(f->path) + 1);
		free(f->path);
		f->path = p;
		return NULL;
	}
	if (xp_hold(x, sizeof *f + len + XP_NODE + sizeof f) == -1)
		return NULL;
	if (x->nfiles == x->capfiles) {
		if (xp_hold(x, (x->capfiles + 16) * sizeof *v) == -1)
			return NULL;
		if ((v = reallocarray(x->vfiles, x->capfiles * 2 + 16,
		    sizeof *v)) == NULL) {
			xp_nomem(x);
			return NULL;
		}
		x->vfiles = v;
		x->capfiles = x->capfiles * 2 + 16;
	}
	if ((f = malloc(sizeof *f)) == NULL ||
	    (f->path = strdup(x->spell)) == NULL) {
		free(f);
		xp_nomem(x);
		return NULL;
	}
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
	    st->st_mtim.tv_nsec;
	f->flags = 0;
	if (tsearch(f, &x->files, xf_cmp) == NULL) {
		free(f->path);
		free(f);
		xp_nomem(x);
		return NULL;
	}
	x->vfiles[x->nfiles++] = f;
	if (x->nfiles > x->lim->files_max)
		x->state = XP_FULL;
	return f;
}

/*
 * 1 when the directory st was walked already for component level of
 * this alternative (then the same files lie below it); else it is
 * remembered and 0. -1 when out of memory or over memory_max.
 */
static int
xp_dir_seen(struct xp *x, const struct stat *st, size_t level)
{
	struct xdir	 key, *d;
	void		*slot;

	key.dev = st->st_dev;
	key.ino = st->st_ino;
	key.level = level;
	if (tfind(&key, &x->dirs, xd_cmp) != NULL)
		return 1;
	if (xp_hold(x, sizeof *d + XP_NODE) == -1)
		return -1;
	if ((d = malloc(sizeof *d)) == NULL) {
		xp_nomem(x);
		return -1;
	}
	*d = key;
	if ((slot = tsearch(d, &x->dirs, xd_cmp)) == NULL) {
		free(d);
		xp_nomem(x);
		return -1;
	}
	return 0;
}

/* dir "/" name into buf; -1 when it does not fit. */
static int
xp_join(char *buf, size_t len, const char *dir, const char *name)
{
	int	n;

	n = snprintf(buf, len, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir,
	    name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/*
 * What directory fd really is, from /proc/self/fd, in place of *real
 * (what the walk expected). Without /proc, *real stands.
 */
static int
xp_fd_real(int fd, char **real)
{
	char	 link[64], buf[PATH_MAX], *p;
	ssize_t	 n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	if ((n = readlink(link, buf, sizeof buf - 1)) <= 0 || buf[0] != '/')
		return 0;
	buf[n] = '\0';
	if (strcmp(buf, *real) == 0)
		return 0;
	if ((p = strdup(buf)) == NULL)
		return -1;
	free(*real);
	*real = p;
	return 0;
}

/* Forget the directories kept for components level and deeper. */
static void
xp_cache_drop(struct xp *x, size_t level)
{
	size_t	i;

	for (i = level; i < x->ncache; i++) {
		if (x->cache[i].spell == NULL)
			continue;
		close(x->cache[i].fd);
		free(x->cache[i].spell);
		free(x->cache[i].real);
		x->cache[i].spell = NULL;
	}
}

/* The directory kept for component level when it is x->spell, or NULL. */
static struct xcache *
xp_cache_get(struct xp *x, size_t level)
{
	if (level < x->ncache && x->cache[level].spell != NULL &&
	    strcmp(x->cache[level].spell, x->spell) == 0)
		return &x->cache[level];
	return NULL;
}

/*
 * Keep directory fd (real, st), x->spell, for component level; 0 when
 * kept (the cache owns fd now), -1 when not (the caller closes it).
 */
static int
xp_cache_put(struct xp *x, size_t level, int fd, const char *real,
    const struct stat *st)
{
	struct xcache	*c;
	size_t		 n;

	if (level >= x->ncache) {
		n = level + 16;
		if ((c = reallocarray(x->cache, n, sizeof *c)) == NULL)
			return -1;
		memset(c + x->ncache, 0, (n - x->ncache) * sizeof *c);
		x->cache = c;
		x->ncache = n;
	}
	xp_cache_drop(x, level);
	c = &x->cache[level];
	if ((c->spell = strdup(x->spell)) == NULL ||
	    (c->real = strdup(real)) == NULL) {
		free(c->spell);
		c->spell = NULL;
		return -1;
	}
	c->fd = fd;
	c->st = *st;
	return 0;
}

/*
 * 1 when the file st, just listed, is to be looked at for gzip: a
 * regular file over split_size (and with no_hardlinks, of one link).
 * Nothing else is opened: the common file costs no system call more.
 */
static int
xp_big(const struct xp *x, const struct stat *st)
{
	return x->state == XP_GO && x->lim->split_size > 0 &&
	    S_ISREG(st->st_mode) &&
	    (uint64_t)st->st_size > x->lim->split_size &&
	    (!x->lim->no_hardlinks || st->st_nlink <= 1);
}

/*
 * Flag f EXPAND_GZIP when fd, the file opened as the walk reached it (-1
 * when it could not be), starts with gzip's magic. Read only when it is
 * still the regular file st and, as the reader would have it, on no
 * pseudo-filesystem; one reached through a symlink (*real its resolved
 * path) is checked to be inside the roots still. fd is closed.
 */
static void
xp_gzip(const struct xp *x, struct xfile *f, int fd, const struct stat *st,
    char **real)
{
	struct stat	 fst;

	if (fd == -1)
		return;
	if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) &&
	    fst.st_dev == st->st_dev && fst.st_ino == st->st_ino &&
	    (!x->lim->no_hardlinks || fst.st_nlink <= 1) &&
	    (real == NULL || (xp_fd_real(fd, real) == 0 &&
	    xp_in_roots(x, *real))) &&
	    reader_pseudo_fs(fd) == NULL && reader_fd_gzip(fd))
		f->flags |= EXPAND_GZIP;
	close(fd);
}

/*
 * The last component matched name in directory dfd (real), its path in
 * x->spell: a file of the list when it resolves inside the roots.
 */
static void
xp_match(struct xp *x, int dfd, const char *real, const char *name,
    const struct stat *lst)
{
	struct stat	 st;
	struct xfile	*f;
	char		 buf[PATH_MAX], *rp;

	if (!S_ISLNK(lst->st_mode) && strcmp(name, "..") != 0) {
		if ((!x->dironly || S_ISDIR(lst->st_mode)) &&
		    (f = xp_file(x, lst)) != NULL && xp_big(x, lst))
			xp_gzip(x, f, openat(dfd, name, XP_OPEN), lst, NULL);
		return;
	}
	if (xp_join(buf, sizeof buf, real, name) == -1 ||
	    (rp = realpath(buf, NULL)) == NULL)
		return;		/* dangling, or no access: never named */
	if (xp_in_roots(x, rp) && stat(rp, &st) == 0 &&
	    (!x->dironly || S_ISDIR(st.st_mode)) &&
	    (f = xp_file(x, &st)) != NULL && xp_big(x, &st))
		xp_gzip(x, f, open(rp, XP_OPEN), &st, &rp);
	free(rp);
}

/*
 * Walk component level in directory fd (real, st), x->spell, unless it
 * was walked for that component already.
 */
static void
xp_into(struct xp *x, int fd, const char *real, const struct stat *st,
    size_t level)
{
	if (xp_dir_seen(x, st, level) == 0)
		xp_walk(x, fd, real, level);
}

/*
 * Walk on into name, in directory dfd (real), for component level; a
 * directory reached by a literal name is kept open for the alternatives
 * after this one.
 */
static void
xp_descend(struct xp *x, int dfd, const char *real, const char *name,
    const struct stat *lst, size_t level, int literal)
{
	struct stat	 st;
	char		 buf[PATH_MAX], *nreal = NULL, *slash;
	int		 fd = -1, link = 0;

	if (strcmp(name, "..") == 0) {
		if ((nreal = strdup(real)) == NULL)
			goto nomem;
		if ((slash = strrchr(nreal, '/')) != NULL)
			slash[slash == nreal ? 1 : 0] = '\0';
		if (!xp_in_roots(x, nreal))
			goto out;	/* never above a root */
		fd = openat(dfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else if (S_ISDIR(lst->st_mode)) {
		if (xp_join(buf, sizeof buf, real, name) == -1)
			goto out;
		if ((nreal = strdup(buf)) == NULL)
			goto nomem;
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	} else if (S_ISLNK(lst->st_mode)) {
		if (xp_join(buf, sizeof buf, real, name) == -1 ||
		    (nreal = realpath(buf, NULL)) == NULL ||
		    !xp_in_roots(x, nreal))
			goto out;
		fd = open(nreal, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		link = 1;
	} else
		goto out;
	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE)
			xp_stop(x, XP_LIMIT, "patterns: directories nested "
			    "too deep to walk");
		goto out;
	}
	/* Opened by its path: check what it is now. */
	if (link && xp_fd_real(fd, &nreal) == -1)
		goto nomem;
	if (!xp_in_roots(x, nreal) || fstat(fd, &st) == -1)
		goto out;
	if (literal && strcmp(name, "..") != 0 &&
	    xp_cache_put(x, level, fd, nreal, &st) == 0) {
		xp_into(x, fd, x->cache[level].real, &st, level);
		fd = -1;	/* (the cache's now) */
		goto out;
	}
	xp_into(x, fd, nreal, &st, level);
	goto out;
nomem:
	xp_nomem(x);
out:
	if (fd != -1)
		close(fd);
	free(nreal);
}

/*
 * name in directory dfd (real) matched component level (a literal one,
 * or a wildcard: then name was read from the directory, and counted).
 */
static void
xp_entry(struct xp *x, int dfd, const char *real, const char *name,
    size_t level, int literal)
{
	struct stat	 lst;
	struct xcache	*c;
	size_t		 slen = strlen(x->spell), nlen = strlen(name);
	int		 last = level + 1 == x->ncomp;

	if (slen + 1 + nlen >= sizeof x->spell)
		return;		/* too long to be opened by its name */
	x->spell[slen] = '/';
	memcpy(x->spell + slen + 1, name, nlen + 1);
	if (literal && !last && (c = xp_cache_get(x, level + 1)) != NULL)
		xp_into(x, c->fd, c->real, &c->st, level + 1);
	else if ((!literal || xp_visit(x) == 0) &&
	    fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0) {
		if (last)
			xp_match(x, dfd, real, name, &lst);
		else
			xp_descend(x, dfd, real, name, &lst, level + 1,
			    literal);
	}
	x->spell[slen] = '\0';
}

static int
xp_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
xp_names_free(struct xp *x, char **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		xp_release(x, strlen(v[i]) + 1 + sizeof *v);
		free(v[i]);
	}
	free(v);
}

/*
 * The entries of directory dfd that pat matches, sorted ("." and ".."
 * never). Each entry read counts towards walk_max; NULL with *np 0 when
 * none match or the walk stopped.
 */
static char **
xp_list(struct xp *x, int dfd, const char *pat, size_t *np)
{
	DIR		 *d;
	struct dirent	 *e;
	char		**v = NULL, **nv;
	size_t		  n = 0, cap = 0, len;
	int		  fd;

	*np = 0;
	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		if (errno == EMFILE || errno == ENFILE)
			xp_stop(x, XP_LIMIT, "patterns: directories nested "
			    "too deep to walk");
		return NULL;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return NULL;
	}
	while ((e = readdir(d)) != NULL) {
		if (xp_visit(x) == -1)
			break;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    fnmatch(pat, e->d_name, FNM_PERIOD) != 0)
			continue;
		len = strlen(e->d_name) + 1;
		if (xp_hold(x, len + sizeof *v) == -1)
			break;
		if (n == cap) {
			if ((nv = reallocarray(v, cap * 2 + 16,
			    sizeof *v)) == NULL) {
				xp_nomem(x);
				break;
			}
			v = nv;
			cap = cap * 2 + 16;
		}
		if ((v[n] = strdup(e->d_name)) == NULL) {
			xp_nomem(x);
			break;
		}
		n++;
	}
	closedir(d);
	if (x->state != XP_GO) {
		xp_names_free(x, v, n);
		return NULL;
	}
	if (n > 1)
		qsort(v, n, sizeof *v, xp_strcmp);
	*np = n;
	return v;
}

/* Match component level in directory dfd (real), x->spell its path. */
static void
xp_walk(struct xp *x, int dfd, const char *real, size_t level)
{
	const struct xcomp	 *c = &x->comp[level];
	char			**v;
	size_t			  n, i;

	if (!c->magic) {
		xp_entry(x, dfd, real, c->s, level, 1);
		return;
	}
	if (reader_pseudo_fs(dfd) != NULL)
		return;		/* never list /proc, /sys, ... */
	if ((v = xp_list(x, dfd, c->s, &n)) == NULL)
		return;
	for (i = 0; i < n && x->state == XP_GO; i++)
		xp_entry(x, dfd, real, v[i], level, 0);
	xp_names_free(x, v, n);
}

/* 1 when component c matches name (a root's component). */
static int
xp_comp_match(const struct xcomp *c, const char *name)
{
	if (c->magic)
		return fnmatch(c->s, name, FNM_PERIOD) == 0;
	return strcmp(c->s, name) == 0;
}

/*
 * 1 when a component has glob magic (as glob(3) decides: '*', '?', or a
 * '[' with a ']' after it, none of them escaped); else it is unescaped in
 * place and 0.
 */
static int
xp_magic(char *s)
{
	char	*p, *q;
	int	 bracket = 0;

	for (p = s; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '*' || *p == '?')
			return 1;
		else if (*p == '[')
			bracket = 1;
		else if (*p == ']' && bracket)
			return 1;
	}
	for (p = q = s; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		*q++ = *p;
	}
	*q = '\0';
	return 0;
}

/*
 * Walk one alternative (no braces left to expand) from every root its
 * leading components can lead into.
 */
static void
xp_alt(struct xp *x, const char *alt)
{
	struct xstart	*s;
	char		*copy, *p, *tok;
	size_t		 len = strlen(alt) + 1, n = 0, i, k;
	int		 fd;

	if (xp_hold(x, len * (1 + sizeof *x->comp)) == -1)
		return;
	if ((copy = strdup(alt)) == NULL ||
	    (x->comp = calloc(len, sizeof *x->comp)) == NULL) {
		free(copy);
		xp_nomem(x);
		goto out;
	}
	for (p = copy; (tok = strsep(&p, "/")) != NULL; ) {
		if (tok[0] == '\0' || strcmp(tok, ".") == 0)
			continue;
		x->comp[n].s = tok;
		x->comp[n].magic = xp_magic(tok);
		n++;
	}
	x->ncomp = n;
	x->dironly = len > 1 && alt[len - 2] == '/';	/* as glob(3) */
	for (k = 0; k < x->nstarts && x->state == XP_GO; k++) {
		s = &x->starts[k];
		if (s->dropped || n < s->ncomp)
			continue;
		for (i = 0; i < s->ncomp; i++)
			if (!xp_comp_match(&x->comp[i], s->comp[i]))
				break;
		if (i < s->ncomp)
			continue;	/* cannot lead into this root */
		if (s->fd == -1) {
			if (xp_visit(x) == -1)
				break;
			if ((fd = open(s->real, O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC)) == -1)
				continue;
			if (fstat(fd, &s->st) == -1) {
				close(fd);
				continue;
			}
			s->fd = fd;
		}
		snprintf(x->spell, sizeof x->spell, "%s",
		    s->spell[0] != '\0' || n > 0 ? s->spell : "/");
		if (n == s->ncomp)
			xp_file(x, &s->st);	/* the root itself */
		else
			xp_into(x, s->fd, s->real, &s->st, s->ncomp);
	}
out:
	if (x->dirs != NULL)
		tdestroy(x->dirs, free);
	x->dirs = NULL;
	free(x->comp);
	free(copy);
	x->comp = NULL;
	x->ncomp = 0;
	xp_release(x, len * (1 + sizeof *x->comp));
}

/*
 * The end of the brace alternative starting at p: the ',' or '}' that
 * ends it outside nested braces, or NULL when there is none. glibc's
 * next_brace_sub(), so that patterns expand as they did with glob(3).
 */
static const char *
xp_brace_next(const char *p)
{
	size_t	depth = 0;

	while (*p != '\0') {
		if (*p == '\\') {
			if (*++p == '\0')
				break;
			p++;
		} else {
			if ((*p == '}' && depth-- == 0) ||
			    (*p == ',' && depth == 0))
				break;
			if (*p++ == '{')
				depth++;
		}
	}
	return *p != '\0' ? p : NULL;
}

/*
 * Expand the first brace group of p and recurse on each alternative (the
 * groups after it and nested in it), as glob(3) does with GLOB_BRACE: a
 * group that does not close leaves the braces of that alternative as
 * plain characters.
 */
static void
xp_brace(struct xp *x, const char *p, size_t groups)
{
	const char	*begin, *next, *rest, *q;
	char		*alt;
	size_t		 len, pre, restlen;

	for (begin = p; *begin != '\0'; begin++) {
		if (*begin == '\\' && begin[1] != '\0')
			begin++;
		else if (*begin == '{')
			break;
	}
	if (*begin == '\0' || (next = xp_brace_next(begin + 1)) == NULL) {
		xp_alt(x, p);
		return;
	}
	for (rest = next; *rest != '}'; )
		if ((rest = xp_brace_next(rest + 1)) == NULL) {
			xp_alt(x, p);
			return;
		}
	if (groups == XP_BRACE_GROUPS) {
		xp_stop(x, XP_LIMIT, "patterns: more than %d brace groups in "
		    "a pattern", XP_BRACE_GROUPS);
		return;
	}
	rest++;
	len = strlen(p) + 1;
	pre = (size_t)(begin - p);
	restlen = strlen(rest) + 1;
	if (xp_hold(x, len) == -1)
		return;
	if ((alt = malloc(len)) == NULL) {
		xp_nomem(x);
		return;
	}
	memcpy(alt, p, pre);
	for (q = begin + 1; x->state == XP_GO; ) {
		memcpy(alt + pre, q, (size_t)(next - q));
		memcpy(alt + pre + (size_t)(next - q), rest, restlen);
		xp_brace(x, alt, groups + 1);
		if (*next == '}')
			break;
		q = next + 1;
		next = xp_brace_next(q);
	}
	free(alt);
	xp_release(x, len);
}

/* The components of path spelled without empty and "." ones. */
static int
xp_start_add(struct xp *x, const char *path, const char *real)
{
	struct xstart	*s = &x->starts[x->nstarts];
	char		*copy, *p, *tok;
	size_t		 n = 0, len = strlen(path), i;

	memset(s, 0, sizeof *s);
	s->fd = -1;
	if ((copy = strdup(path)) == NULL ||
	    (s->comp = calloc(len + 1, sizeof *s->comp)) == NULL ||
	    (s->spell = calloc(1, len + 2)) == NULL ||
	    (s->real = strdup(real)) == NULL)
		goto fail;
	for (p = copy; (tok = strsep(&p, "/")) != NULL; ) {
		if (tok[0] == '\0' || strcmp(tok, ".") == 0)
			continue;
		if ((s->comp[n] = strdup(tok)) == NULL)
			goto fail;
		strcat(strcat(s->spell, "/"), tok);
		n++;
	}
	free(copy);
	s->ncomp = n;
	/* A spelling met already, or below another one, adds nothing. */
	for (i = 0; i < x->nstarts; i++) {
		if (x->starts[i].spell[0] == '\0' ||
		    (strncmp(s->spell, x->starts[i].spell,
		    strlen(x->starts[i].spell)) == 0 &&
		    (s->spell[strlen(x->starts[i].spell)] == '\0' ||
		    s->spell[strlen(x->starts[i].spell)] == '/')))
			s->dropped = 1;
		else if (s->spell[0] == '\0' ||
		    (strncmp(x->starts[i].spell, s->spell, strlen(s->spell)) ==
		    0 && x->starts[i].spell[strlen(s->spell)] == '/'))
			x->starts[i].dropped = 1;
	}
	x->nstarts++;
	return 0;
fail:
	for (i = 0; s->comp != NULL && s->comp[i] != NULL; i++)
		free(s->comp[i]);
	free(s->comp);
	free(s->spell);
	free(s->real);
	free(copy);
	return -1;
}

/*
 * The places to start from: each root as configured and as resolved (a
 * pattern may spell either). A root that does not resolve has nothing
 * to walk.
 */
static int
xp_starts(struct xp *x, char *const *roots)
{
	size_t	n = 0, i, k = 0;
	char	*rp;

	if (roots == NULL) {
		if ((x->starts = calloc(1, sizeof *x->starts)) == NULL)
			return -1;
		return xp_start_add(x, "/", "/");
	}
	while (roots[n] != NULL)
		n++;
	if ((x->rroots = calloc(n + 1, sizeof *x->rroots)) == NULL ||
	    (x->starts = calloc(2 * n + 1, sizeof *x->starts)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((rp = realpath(roots[i], NULL)) == NULL) {
			if (errno == ENOMEM)
				return -1;
			continue;
		}
		x->rroots[k++] = rp;
		if (xp_start_add(x, roots[i], rp) == -1 ||
		    xp_start_add(x, rp, rp) == -1)
			return -1;
	}
	return 0;
}

static void
xp_free(struct xp *x)
{
	size_t	i, k;

	for (i = 0; x->rroots != NULL && x->rroots[i] != NULL; i++)
		free(x->rroots[i]);
	free(x->rroots);
	for (i = 0; i < x->nstarts; i++) {
		for (k = 0; k < x->starts[i].ncomp; k++)
			free(x->starts[i].comp[k]);
		free(x->starts[i].comp);
		free(x->starts[i].spell);
		free(x->starts[i].real);
		if (x->starts[i].fd != -1)
			close(x->starts[i].fd);
	}
	free(x->starts);
	xp_cache_drop(x, 0);
	free(x->cache);
	if (x->files != NULL)
		tdestroy(x->files, free);	/* the paths were handed on */
	free(x->vfiles);
}

static int
xf_path_cmp(const void *a, const void *b)
{
	return strcmp((*(struct xfile *const *)a)->path,
	    (*(struct xfile *const *)b)->path);
}

void
expand_result_clear(struct expand_result *r)
{
	size_t	i;

	for (i = 0; i < r->npaths; i++)
		free(r->paths[i]);
	free(r->paths);
	free(r->ids);
	free(r->unmatched);
	memset(r, 0, sizeof *r);
}

int
expand_patterns(char *const *patterns, size_t n, char *const *roots,
    const struct expand_limits *lim, struct expand_result *r)
{
	struct xp	*x;
	size_t		 i, m;
	int		 rc = -1;

	memset(r, 0, sizeof *r);
	if ((x = calloc(1, sizeof *x)) == NULL)
		goto nomem;
	x->lim = lim;
	if (xp_starts(x, roots) == -1 ||
	    (n > 0 && (r->unmatched = calloc(n, sizeof *r->unmatched)) ==
	    NULL)) {
		xp_free(x);
		free(x);
		goto nomem;
	}
	for (i = 0; i < n && x->state == XP_GO; i++) {
		x->found = 0;
		xp_brace(x, patterns[i], 0);
		if (!x->found)
			r->unmatched[r->nunmatched++] = (uint32_t)i;
	}
	if (x->state == XP_LIMIT || x->state == XP_NOMEM) {
		r->limit = x->state == XP_LIMIT;
		snprintf(r->error, sizeof r->error, "%s", x->error);
		for (i = 0; i < x->nfiles; i++)
			free(x->vfiles[i]->path);
		free(r->unmatched);
		r->unmatched = NULL;
		r->nunmatched = 0;
		goto out;
	}
	/* Sorted by name; two files never share one (renamed meanwhile). */
	if (x->nfiles > 1)
		qsort(x->vfiles, x->nfiles, sizeof *x->vfiles, xf_path_cmp);
	if (x->nfiles > 0 && ((r->paths = calloc(x->nfiles,
	    sizeof *r->paths)) == NULL || (r->ids = calloc(x->nfiles,
	    sizeof *r->ids)) == NULL)) {
		free(r->paths);
		r->paths = NULL;
		for (i = 0; i < x->nfiles; i++)
			free(x->vfiles[i]->path);
		free(r->unmatched);
		r->unmatched = NULL;
		r->nunmatched = 0;
		xp_free(x);
		free(x);
		goto nomem;
	}
	for (i = m = 0; i < x->nfiles; i++) {
		if (m > 0 && strcmp(r->paths[m - 1], x->vfiles[i]->path) == 0)
			free(x->vfiles[i]->path);
		else {
			r->ids[m].dev = (uint64_t)x->vfiles[i]->dev;
			r->ids[m].ino = (uint64_t)x->vfiles[i]->ino;
			r->ids[m].size = (uint64_t)x->vfiles[i]->size;
			r->ids[m].mtime_ns = x->vfiles[i]->mtime_ns;
			r->ids[m].flags = x->vfiles[i]->flags;
			r->paths[m++] = x->vfiles[i]->path;
		}
	}
	r->npaths = m;
	rc = 0;
out:
	xp_free(x);
	free(x);
	return rc;
nomem:
	snprintf(r->error, sizeof r->error, "out of memory expanding patterns");
	return -1;
}
