/*
 * reader.c: a plain or gzip log file as a sequence of lines.
 *
 * Decoded bytes land in one large buffer and lines are handed out in
 * place; only the incomplete line at the end of the buffer is moved (to
 * the front) before the next fill. Gzip is found by its magic bytes and
 * may have several members, with zero padding after the last. A corrupt
 * or truncated stream stops the file with an error naming the compressed
 * byte offset; the bytes decoded before it are still handed out, the
 * incomplete last line included (it is what the stream held).
 *
 * zlib's own CRC check of the data is turned off and done here instead,
 * over each member's output against its trailer, with carry-less
 * multiplication (PCLMULQDQ) where the CPU has it: the same check, about
 * four times cheaper than zlib 1.2's table code, which cost a tenth of a
 * whole run. zlib still checks each member's header, the optional header
 * CRC (FHCRC) included: its check stays on until the header is read.
 *
 * Built with ISA-L (configure finds libisal), gzip goes through its igzip
 * inflater instead, about 2.5 times faster than zlib. The member header is
 * read here, byte by byte, with zlib's checks and words (so an error names
 * the same offset either way); igzip inflates the raw deflate data and
 * computes the CRC-32 of what it writes (no second pass over the output);
 * the trailer is checked here against it, as for zlib. zlib stays, chosen
 * by reader_inflater: the tests run both and compare them.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <sys/stat.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include "reader.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define READER_CLMUL	1
#endif

#define READER_IN_SIZE	(256 * 1024)

/*
 * The buffers of the last reader closed, kept for the next one (a
 * process reads one file at a time): zeroing a fresh megabyte for every
 * file, and faulting its pages in, cost more than a small file's lines.
 */
static struct {
	unsigned char	*in;
	char		*buf;
	size_t		 cap;
} reader_spare;
#define READER_OUT_SIZE	(1024 * 1024)
#define READER_HDR_OUT	64	/* output allowed while zlib reads a header */

#ifdef HAVE_ISAL
/* Where reader_isal_header is in a member header (RFC 1952). */
enum {
	HDR_ID1, HDR_ID2, HDR_CM, HDR_FLG, HDR_FIXED, HDR_XLEN, HDR_EXTRA,
	HDR_NAME, HDR_COMMENT, HDR_HCRC, HDR_DONE
};
#define GZ_FHCRC	0x02
#define GZ_FEXTRA	0x04
#define GZ_FNAME	0x08
#define GZ_FCOMMENT	0x10

int	 reader_inflater = READER_INFLATE_ISAL;
#else
int	 reader_inflater = READER_INFLATE_ZLIB;
#endif

uint64_t	 reader_ahead = READER_AHEAD_DEFAULT;

/*
 * The inflating thread hands decoded bytes over in NSLOT chunks of
 * CHUNK bytes: while the parser works through one, it fills the others.
 * Once they are all full it sleeps until half of them are free again,
 * so that it is woken once per NSLOT/2 chunks, not for every one.
 */
#define READER_NSLOT	6
#define READER_CHUNK	(1024 * 1024)

struct reader_slot {
	char		*buf;
	size_t		 len;
	int		 last;		/* nothing comes after it */
};

struct reader_pipe {
	pthread_t	 thread;
	int		 running;	/* thread is to be joined */
	pthread_mutex_t	 mu;
	pthread_cond_t	 full;		/* a slot was filled */
	pthread_cond_t	 empty;		/* a slot was given back, or stop */
	struct reader_slot slot[READER_NSLOT];
	size_t		 head, nfull;	/* the filled slots, in order */
	int		 stop;		/* the reader is being closed */
	size_t		 off;		/* consumed of slot[head] */
	struct reader_buf lines;	/* the parser's side */
};

const char *
reader_inflater_name(int which)
{
	return which == READER_INFLATE_ISAL ? "isal" : "zlib";
}

int
reader_have_isal(void)
{
#ifdef HAVE_ISAL
	return 1;
#else
	return 0;
#endif
}

#ifdef READER_CLMUL
/*
 * The bit-reflected CRC-32 of buf (len >= 64, a multiple of 16) folded
 * with carry-less multiplies, 64 bytes a turn, then reduced with Barrett;
 * crc is the running value without zlib's inversions. The constants are
 * x^n mod P for the folding distances, P itself and floor(x^64 / P).
 */
__attribute__((target("pclmul,sse4.1")))
static uint32_t
reader_crc_clmul(uint32_t crc, const unsigned char *p, size_t len)
{
	const __m128i	 k12 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
	const __m128i	 k34 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
	const __m128i	 k5 = _mm_set_epi64x(0, 0x163cd6124LL);
	const __m128i	 pu = _mm_set_epi64x(0x1f7011641LL, 0x1db710641LL);
	const __m128i	 m32 = _mm_set_epi32(0, 0, 0, -1);
	__m128i		 x0, x1, x2, x3, t0, t1, t2, t3;

	x0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p),
	    _mm_cvtsi32_si128((int)crc));
	x1 = _mm_loadu_si128((const __m128i *)(p + 16));
	x2 = _mm_loadu_si128((const __m128i *)(p + 32));
	x3 = _mm_loadu_si128((const __m128i *)(p + 48));
	p += 64;
	len -= 64;
#define FOLD(x, k, d)	_mm_xor_si128(_mm_xor_si128(			\
	    _mm_clmulepi64_si128((x), (k), 0x00),				\
	    _mm_clmulepi64_si128((x), (k), 0x11)), (d))
	for (; len >= 64; p += 64, len -= 64) {
		t0 = _mm_loadu_si128((const __m128i *)p);
		t1 = _mm_loadu_si128((const __m128i *)(p + 16));
		t2 = _mm_loadu_si128((const __m128i *)(p + 32));
		t3 = _mm_loadu_si128((const __m128i *)(p + 48));
		x0 = FOLD(x0, k12, t0);
		x1 = FOLD(x1, k12, t1);
		x2 = FOLD(x2, k12, t2);
		x3 = FOLD(x3, k12, t3);
	}
	/* Four lanes into one, then the remaining 16-byte blocks. */
	x0 = FOLD(x0, k34, x1);
	x0 = FOLD(x0, k34, x2);
	x0 = FOLD(x0, k34, x3);
	for (; len >= 16; p += 16, len -= 16)
		x0 = FOLD(x0, k34, _mm_loadu_si128((const __m128i *)p));
#undef FOLD
	/* 128 -> 64 bits (appending 32 zero bits), then -> 32 bits. */
	x0 = _mm_xor_si128(_mm_clmulepi64_si128(k34, x0, 0x01),
	    _mm_srli_si128(x0, 8));
	x1 = _mm_srli_si128(x0, 4);
	x0 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x0, m32), k5,
	    0x00), x1);
	/* Barrett reduction, bit-reflected. */
	x1 = x0;
	x0 = _mm_clmulepi64_si128(_mm_and_si128(x0, m32), pu, 0x10);
	x0 = _mm_clmulepi64_si128(_mm_and_si128(x0, m32), pu, 0x00);
	x0 = _mm_xor_si128(x0, x1);
	return (uint32_t)_mm_extract_epi32(x0, 1);
}
#endif

uint32_t
reader_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
#ifdef READER_CLMUL
	size_t			 n;

	if (len >= 64 && __builtin_cpu_supports("pclmul") &&
	    __builtin_cpu_supports("sse4.1")) {
		n = len & ~(size_t)15;
		crc = ~reader_crc_clmul(~crc, p, n);
		p += n;
		len -= n;
	}
#endif
	while (len > 0) {
		/* zlib's length is an unsigned int: big buffers in pieces. */
		uInt chunk = len > UINT_MAX ? UINT_MAX : (uInt)len;

		crc = (uint32_t)crc32_z(crc, p, chunk);
		p += chunk;
		len -= chunk;
	}
	return crc;
}

/* What kind of file st is, for the error message. */
static const char *
reader_kind(const struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		return "directory";
	if (S_ISFIFO(st->st_mode))
		return "fifo";
	if (S_ISCHR(st->st_mode))
		return "character device";
	if (S_ISBLK(st->st_mode))
		return "block device";
	if (S_ISSOCK(st->st_mode))
		return "socket";
	return "special file";
}

/*
 * The kernel's pseudo-filesystems, by statfs(2) f_type (linux/magic.h):
 * their "files" are views of kernel or process state, never logs, and
 * some never end (/proc/self/pagemap) or block.
 */
static const struct {
	unsigned long	 type;
	const char	*name;
} reader_pseudo[] = {
	{ 0x9fa0, "proc" },		{ 0x62656572, "sysfs" },
	{ 0x64626720, "debugfs" },	{ 0x74726163, "tracefs" },
	{ 0x27e0eb, "cgroup" },		{ 0x63677270, "cgroup2" },
	{ 0x73636673, "securityfs" },	{ 0xf97cff8c, "selinuxfs" },
	{ 0x43415d53, "smackfs" },	{ 0x6165676c, "pstore" },
	{ 0xde5e81e4, "efivarfs" },	{ 0xcafe4a11, "bpf" },
	{ 0x62656570, "configfs" },	{ 0x1cd1, "devpts" },
	{ 0x42494e4d, "binfmt_misc" },	{ 0x6e736673, "nsfs" },
	{ 0x65735543, "fusectl" },	{ 0x19800202, "mqueue" },
	{ 0x67596969, "rpc_pipefs" },	{ 0x6e667364, "nfsd" },
	{ 0x0187, "autofs" },
};

const char *
reader_pseudo_fs(int fd)
{
#ifdef __linux__
	struct statfs	 sf;
	unsigned long	 type;
	size_t		 i;

	if (fstatfs(fd, &sf) == -1)
		return NULL;
	type = (unsigned long)(unsigned int)sf.f_type;
	for (i = 0; i < sizeof reader_pseudo / sizeof reader_pseudo[0]; i++)
		if (reader_pseudo[i].type == type)
			return reader_pseudo[i].name;
#else
	(void)fd;
#endif
	return NULL;
}

/* 1 when path (resolved) is root or below it, component by component. */
static int
reader_under(const char *path, const char *root)
{
	char	*rr;
	size_t	 len;
	int	 ok;

	if ((rr = realpath(root, NULL)) == NULL)
		return 0;
	len = strlen(rr);
	while (len > 1 && rr[len - 1] == '/')
		len--;
	if (len == 1 && rr[0] == '/')
		ok = path[0] == '/';
	else
		ok = strncmp(path, rr, len) == 0 &&
		    (path[len] == '\0' || path[len] == '/');
	free(rr);
	return ok;
}

/*
 * 1 when path (already resolved) is one of roots or under one, component by
 * component. The job queue's expansion uses it too.
 */
int
reader_in_roots(const char *path, const char *const *roots)
{
	size_t	 i;

	for (i = 0; roots[i] != NULL; i++)
		if (reader_under(path, roots[i]))
			return 1;
	return 0;
}

/*
 * Check again what was actually opened, through /proc: the path resolved
 * before open() may have changed meanwhile. Without /proc, the check made
 * before open() stands.
 */
static int
reader_fd_under(int fd, const char *const *roots)
{
	char	 link[64], path[PATH_MAX];
	ssize_t	 n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof path - 1)) <= 0 ||
	    path[0] != '/')
		return 1;
	path[n] = '\0';
	return reader_in_roots(path, roots);
}

/*
 * A gzip member starts: zlib reads and checks its header (FHCRC included)
 * with its own check on; reader_inflate turns that off once the header is
 * done, as the data's CRC and length are checked against the trailer here.
 */
static int
reader_member(struct reader *r)
{
	memset(&r->hdr, 0, sizeof r->hdr);
	r->hdr_ok = 0;
	if (inflateValidate(&r->zs, 1) != Z_OK ||
	    inflateGetHeader(&r->zs, &r->hdr) != Z_OK) {
		snprintf(r->error, sizeof r->error, "gzip: cannot initialise zlib");
		return -1;
	}
	return 0;
}

/* read() that retries on EINTR. */
static ssize_t
reader_read(int fd, void *buf, size_t len)
{
	ssize_t	 n;

	do
		n = read(fd, buf, len);
	while (n == -1 && errno == EINTR);
	return n;
}

int
reader_gzip_magic(const unsigned char *buf, size_t n)
{
	return n >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

int
reader_fd_gzip(int fd)
{
	unsigned char	magic[2];
	ssize_t		n;

	do
		n = pread(fd, magic, sizeof magic, 0);
	while (n == -1 && errno == EINTR);
	return n > 0 && reader_gzip_magic(magic, (size_t)n);
}

int
reader_open(struct reader *r, const char *path, const char *const *roots,
    size_t line_max, int flags)
{
	struct stat	 st;
	char		*resolved = NULL;
	const char	*open_path = path, *fs;

	memset(r, 0, sizeof *r);
	r->ahead_tried = (flags & READER_NO_AHEAD) != 0;
	r->fd = -1;
	r->line_max = line_max;
	if (roots != NULL) {
		if ((resolved = realpath(path, NULL)) == NULL) {
			snprintf(r->error, sizeof r->error, "%s",
			    strerror(errno));
			goto fail;
		}
		if (!reader_in_roots(resolved, roots)) {
			/* Never the resolved target: it may be anywhere. */
			snprintf(r->error, sizeof r->error, "outside the "
			    "allowed roots");
			goto fail;
		}
		open_path = resolved;
	}
	r->fd = open(open_path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC |
	    (roots != NULL ? O_NOFOLLOW : 0));
	if (r->fd == -1) {
		snprintf(r->error, sizeof r->error, "%s", strerror(errno));
		goto fail;
	}
	if (roots != NULL && !reader_fd_under(r->fd, roots)) {
		/* A directory was swapped for a symlink after the check. */
		snprintf(r->error, sizeof r->error, "outside the allowed "
		    "roots");
		goto fail;
	}
	if (fstat(r->fd, &st) == -1) {
		snprintf(r->error, sizeof r->error, "%s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(r->error, sizeof r->error, "not a regular file (%s)",
		    reader_kind(&st));
		goto fail;
	}
	if ((fs = reader_pseudo_fs(r->fd)) != NULL) {
		snprintf(r->error, sizeof r->error, "on a pseudo-filesystem "
		    "(%s)", fs);
		goto fail;
	}
	if ((flags & READER_NO_HARDLINKS) && st.st_nlink > 1) {
		snprintf(r->error, sizeof r->error, "has %ju hard links "
		    "(refuse_hardlinks)", (uintmax_t)st.st_nlink);
		goto fail;
	}
	r->st = st;
	free(resolved);
	resolved = NULL;
	if (flags & READER_DEFER) {
		r->gzip = reader_fd_gzip(r->fd);
		return 0;
	}
	return reader_start(r);
fail:
	free(resolved);
	return -1;
}

int
reader_start(struct reader *r)
{
	size_t	line_max = r->line_max;
	ssize_t	n;

	r->gzip = 0;
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	if (line_max > SIZE_MAX / 2 - READER_OUT_SIZE) {
		snprintf(r->error, sizeof r->error, "line limit too large");
		return -1;
	}
	r->in_cap = READER_IN_SIZE;
	r->o.cap = line_max + READER_OUT_SIZE;
	/*
	 * The line buffer is zeroed: PCRE2's JIT may load a few bytes past
	 * the end of a subject, which must not be uninitialised memory (a
	 * spare one was zeroed when made, and written since).
	 */
	if (reader_spare.in != NULL && reader_spare.cap == r->o.cap) {
		r->in = reader_spare.in;
		r->o.buf = reader_spare.buf;
		reader_spare.in = NULL;
		reader_spare.buf = NULL;
	} else if ((r->in = malloc(r->in_cap)) == NULL ||
	    (r->o.buf = calloc(1, r->o.cap)) == NULL) {
		snprintf(r->error, sizeof r->error, "%s", strerror(errno));
		return -1;
	}
	if ((n = reader_read(r->fd, r->in, r->in_cap)) == -1) {
		snprintf(r->error, sizeof r->error, "read: %s",
		    strerror(errno));
		return -1;
	}
	r->bytes = (uint64_t)n;
	if (reader_gzip_magic(r->in, (size_t)n)) {
		r->gzip = 1;
		r->in_len = (size_t)n;
		r->zs.next_in = r->in;
		r->zs.avail_in = (uInt)n;
#ifdef HAVE_ISAL
		if (reader_inflater == READER_INFLATE_ISAL) {
			if ((r->is = malloc(sizeof *r->is)) == NULL) {
				snprintf(r->error, sizeof r->error, "%s",
				    strerror(errno));
				return -1;
			}
			isal_inflate_init(r->is);
			r->isal = 1;
			r->hstate = HDR_ID1;
			return 0;
		}
#endif
		if (inflateInit2(&r->zs, 15 + 16) != Z_OK) {
			snprintf(r->error, sizeof r->error, "gzip: cannot "
			    "initialise zlib");
			return -1;
		}
		r->zinit = 1;
		if (reader_member(r) == -1)
			return -1;
	} else {
		memcpy(r->o.buf, r->in, (size_t)n);
		r->o.end = (size_t)n;
		r->raw_bytes = (uint64_t)n;
		if (n == 0)
			r->in_eof = 1;
	}
	return 0;
}

void
reader_warm(size_t line_max)
{
	size_t	cap;

	if (reader_spare.in != NULL || line_max == 0 ||
	    line_max > SIZE_MAX / 2 - READER_OUT_SIZE)
		return;
	cap = line_max + READER_OUT_SIZE;
	if ((reader_spare.in = malloc(READER_IN_SIZE)) == NULL ||
	    (reader_spare.buf = malloc(cap)) == NULL) {
		free(reader_spare.in);
		reader_spare.in = NULL;
		return;
	}
	/* (zeroed as reader_start's own are: touched now, not by a job) */
	memset(reader_spare.in, 0, READER_IN_SIZE);
	memset(reader_spare.buf, 0, cap);
	reader_spare.cap = cap;
}

void
reader_close(struct reader *r)
{
	struct reader_pipe	*p = r->pipe;
	size_t			 i;

	if (p != NULL) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->empty);
		pthread_mutex_unlock(&p->mu);
		reader_join(r);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->full);
		pthread_cond_destroy(&p->empty);
		for (i = 0; i < READER_NSLOT; i++)
			free(p->slot[i].buf);
		/* The parser's buffer is the one open made. */
		r->o = p->lines;
		free(p);
		r->pipe = NULL;
	}
	if (r->zinit)
		inflateEnd(&r->zs);
	if (r->fd != -1)
		close(r->fd);
	if (r->in != NULL && r->o.buf != NULL && reader_spare.in == NULL) {
		reader_spare.in = r->in;
		reader_spare.buf = r->o.buf;
		reader_spare.cap = r->o.cap;
	} else {
		free(r->in);
		free(r->o.buf);
	}
	free(r->is);
	r->in = NULL;
	r->o.buf = NULL;
	r->is = NULL;
	r->fd = -1;
	r->zinit = 0;
}

/*
 * Refill the gzip input buffer; 0 at end of file, -1 on a read error. The
 * last 8 bytes before the new ones are kept: a member's trailer may
 * straddle two reads.
 */
static int
reader_fill_in(struct reader *r)
{
	ssize_t	 n;
	size_t	 k = r->in_len;

	if (k >= sizeof r->prev)
		memcpy(r->prev, r->in + k - sizeof r->prev, sizeof r->prev);
	else if (k > 0) {
		memmove(r->prev, r->prev + k, sizeof r->prev - k);
		memcpy(r->prev + sizeof r->prev - k, r->in, k);
	}
	r->in_len = 0;
	if ((n = reader_read(r->fd, r->in, r->in_cap)) == -1) {
		snprintf(r->error, sizeof r->error, "read: %s",
		    strerror(errno));
		return -1;
	}
	if (n == 0)
		r->in_eof = 1;
	r->bytes += (uint64_t)n;
	r->in_len = (size_t)n;
	r->zs.next_in = r->in;
	r->zs.avail_in = (uInt)n;
	return n > 0;
}

/*
 * A member's trailer t (CRC-32 and length, little-endian; it starts at
 * compressed offset off) against what was decoded: crc and r->isize. -1
 * with the error set when they differ.
 */
static int
reader_check_trailer(struct reader *r, const unsigned char *t, uint32_t crc,
    uint64_t off)
{
	uint32_t	 want, isize;

	want = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
	    (uint32_t)t[3] << 24;
	isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
	    (uint32_t)t[7] << 24;
	if (want != crc) {
		snprintf(r->error, sizeof r->error, "gzip: incorrect data "
		    "check at compressed byte offset %llu",
		    (unsigned long long)off);
		return -1;
	}
	if (isize != r->isize) {
		snprintf(r->error, sizeof r->error, "gzip: incorrect length "
		    "check at compressed byte offset %llu",
		    (unsigned long long)off + 4);
		return -1;
	}
	return 0;
}

/*
 * At the end of a member zlib inflated: its trailer is the 8 bytes inflate
 * just read, the last of in[] or, across a read, some of prev[].
 */
static int
reader_trailer(struct reader *r)
{
	unsigned char	 t[8];
	size_t		 k = (size_t)(r->zs.next_in - r->in), j;

	for (j = 0; j < 8; j++)
		t[j] = k + j >= 8 ? r->in[k + j - 8] : r->prev[k + j];
	return reader_check_trailer(r, t, r->crc,
	    r->bytes - r->zs.avail_in - 8);
}

/* Inflate into buf[end..cap); bytes added, 0 at the end, -1 on error. */
static ssize_t
reader_inflate(struct reader *r)
{
	size_t	 room, give, made;
	int	 rc;

	for (;;) {
		if (r->zs.avail_in == 0 && !r->in_eof &&
		    reader_fill_in(r) == -1)
			return -1;
		if (r->zend) {
			/* Between members: zero padding, then maybe another. */
			while (r->zs.avail_in > 0 && *r->zs.next_in == 0) {
				r->zs.next_in++;
				r->zs.avail_in--;
			}
			if (r->zs.avail_in == 0) {
				if (r->in_eof)
					return 0;
				continue;
			}
			inflateReset(&r->zs);
			if (reader_member(r) == -1)
				return -1;
			r->zend = 0;
			r->crc = 0;
			r->isize = 0;
		}
		if (r->zs.avail_in == 0 && r->in_eof) {
			snprintf(r->error, sizeof r->error, "gzip: truncated "
			    "stream at compressed byte offset %llu",
			    (unsigned long long)r->bytes);
			return -1;
		}
		room = r->o.cap - r->o.end;
		r->zs.next_out = (unsigned char *)r->o.buf + r->o.end;
		/* Until the header is read, little output: zlib checks it. */
		give = room > UINT_MAX ? UINT_MAX : room;
		if (!r->hdr_ok && give > READER_HDR_OUT)
			give = READER_HDR_OUT;
		r->zs.avail_out = (uInt)give;
		rc = inflate(&r->zs, Z_NO_FLUSH);
		made = give - r->zs.avail_out;
		if (!r->hdr_ok && r->hdr.done != 0) {
			/* The CRC and length are checked here, against the trailer. */
			(void)inflateValidate(&r->zs, 0);
			r->hdr_ok = 1;
		}
		r->crc = reader_crc32(r->crc, r->o.buf + r->o.end, made);
		r->isize += (uint32_t)made;
		if (r->skip > 0) {
			/* Decoded again after igzip: handed out already. */
			size_t d = r->skip < made ? (size_t)r->skip : made;

			memmove(r->o.buf + r->o.end, r->o.buf + r->o.end + d, made - d);
			made -= d;
			r->skip -= d;
		}
		if (r->hash != NULL) {
			/* Decoded again after igzip: hashed already. */
			size_t h = r->nohash < made ? (size_t)r->nohash : made;

			r->nohash -= h;
			(void)XXH3_64bits_update(r->hash, r->o.buf + r->o.end + h,
			    made - h);
		}
		r->o.end += made;
		r->raw_bytes += made;
		if (rc == Z_STREAM_END) {
			r->zend = 1;
			/* Hand out what was decoded before the error first. */
			if (reader_trailer(r) == -1)
				return made > 0 ? (ssize_t)made : -1;
		} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			snprintf(r->error, sizeof r->error, "gzip: %s at "
			    "compressed byte offset %llu", r->zs.msg != NULL ?
			    r->zs.msg : zError(rc), (unsigned long long)
			    (r->bytes - r->zs.avail_in));
			/* Hand out what was decoded before the error first. */
			return made > 0 ? (ssize_t)made : -1;
		}
		if (made > 0)
			return (ssize_t)made;
	}
}

#ifdef HAVE_ISAL
/* The header field after the one that ended, by the flags. */
static int
reader_hdr_next(struct reader *r, int after)
{
	if (after < HDR_XLEN && (r->hflags & GZ_FEXTRA)) {
		r->hleft = 2;
		return HDR_XLEN;
	}
	if (after < HDR_NAME && (r->hflags & GZ_FNAME))
		return HDR_NAME;
	if (after < HDR_COMMENT && (r->hflags & GZ_FCOMMENT))
		return HDR_COMMENT;
	if (after < HDR_HCRC && (r->hflags & GZ_FHCRC)) {
		r->hleft = 2;
		return HDR_HCRC;
	}
	return HDR_DONE;
}

/*
 * Read a member header from the input, a byte at a time, as zlib does and
 * with its checks and words: the magic, the method, the reserved flags,
 * the optional fields and the header CRC (FHCRC). 1 when the header is
 * read, 0 when more input is needed, -1 with the error set.
 */
static int
reader_isal_header(struct reader *r)
{
	const char	*bad = NULL;
	unsigned char	 c;

	while (r->hstate != HDR_DONE && r->zs.avail_in > 0) {
		c = *r->zs.next_in++;
		r->zs.avail_in--;
		switch (r->hstate) {
		case HDR_ID1:
			r->hcrc = (uint32_t)crc32_z(0, &c, 1);
			r->trl[0] = c;
			r->hstate = HDR_ID2;
			continue;
		case HDR_ID2:
			if (r->trl[0] != 0x1f || c != 0x8b)
				bad = "incorrect header check";
			r->hstate = HDR_CM;
			break;
		case HDR_CM:
			r->trl[0] = c;
			r->hstate = HDR_FLG;
			break;
		case HDR_FLG:
			if (r->trl[0] != 8)
				bad = "unknown compression method";
			else if (c & 0xe0)
				bad = "unknown header flags set";
			r->hflags = c;
			r->hleft = 6;	/* MTIME, XFL, OS */
			r->hstate = HDR_FIXED;
			break;
		case HDR_FIXED:
			if (--r->hleft == 0)
				r->hstate = reader_hdr_next(r, HDR_FIXED);
			break;
		case HDR_XLEN:
			r->trl[2 - r->hleft] = c;
			if (--r->hleft == 0) {
				r->hleft = (size_t)r->trl[0] |
				    (size_t)r->trl[1] << 8;
				r->hstate = r->hleft > 0 ? HDR_EXTRA :
				    reader_hdr_next(r, HDR_EXTRA);
			}
			break;
		case HDR_EXTRA:
			if (--r->hleft == 0)
				r->hstate = reader_hdr_next(r, HDR_EXTRA);
			break;
		case HDR_NAME:
		case HDR_COMMENT:
			if (c == 0)
				r->hstate = reader_hdr_next(r, r->hstate);
			break;
		case HDR_HCRC:
			r->trl[2 - r->hleft] = c;
			if (--r->hleft == 0) {
				if (((uint32_t)r->trl[0] |
				    (uint32_t)r->trl[1] << 8) !=
				    (r->hcrc & 0xffff))
					bad = "header crc mismatch";
				r->hstate = HDR_DONE;
			}
			if (bad == NULL)
				continue;	/* not part of its own CRC */
			break;
		}
		if (bad != NULL) {
			snprintf(r->error, sizeof r->error, "gzip: %s at "
			    "compressed byte offset %llu", bad,
			    (unsigned long long)(r->bytes - r->zs.avail_in));
			return -1;
		}
		r->hcrc = (uint32_t)crc32_z(r->hcrc, &c, 1);
	}
	return r->hstate == HDR_DONE;
}

/*
 * igzip gave up on this member (bad deflate data, a truncated stream, a
 * trailer that does not match): it is decoded again from its start with
 * zlib, the bytes igzip already handed out skipped, so that the file ends
 * exactly as with zlib alone: its words and offset, and every byte zlib
 * decodes before it (igzip may hold back the last few at a cut). Only a
 * damaged file pays for the second pass. -1 with the error set.
 */
static int
reader_isal_fallback(struct reader *r)
{
	uint64_t	 base;
	size_t		 w;
	ssize_t		 n;

	/*
	 * The incomplete line at the end of buf is not handed out yet: zlib
	 * decodes it again (igzip may have decoded a few bytes more than
	 * zlib does before an error).
	 */
	w = r->o.end - r->o.start;
	if (w > r->isize)
		w = r->isize;
	r->o.end -= w;
	r->raw_bytes -= w;
	r->skip = r->isize - w;
	r->nohash = w;
	r->isal = 0;
	r->error[0] = '\0';
	/* The same reads as zlib alone made: whole buffers from 0. */
	base = r->mstart - r->mstart % r->in_cap;
	if (lseek(r->fd, (off_t)base, SEEK_SET) == -1) {
		snprintf(r->error, sizeof r->error, "lseek: %s",
		    strerror(errno));
		return -1;
	}
	r->bytes = base;
	r->in_len = 0;
	r->in_eof = 0;
	if ((n = reader_fill_in(r)) == -1)
		return -1;
	if (r->mstart - base > r->in_len) {
		snprintf(r->error, sizeof r->error, "read: the file shrank");
		return -1;
	}
	r->zs.next_in = r->in + (r->mstart - base);
	r->zs.avail_in = (uInt)(r->in_len - (r->mstart - base));
	r->crc = 0;
	r->isize = 0;
	if (inflateInit2(&r->zs, 15 + 16) != Z_OK) {
		snprintf(r->error, sizeof r->error, "gzip: cannot "
		    "initialise zlib");
		return -1;
	}
	r->zinit = 1;
	return reader_member(r);
}

/*
 * Gather a member's trailer after igzip's end of its deflate data: first
 * the whole bytes igzip read ahead into its bit buffer (past the padding
 * bits of the last byte), then the input. 1 when all 8 are in trl[].
 */
static int
reader_isal_trailer(struct reader *r)
{
	struct inflate_state	*s = r->is;

	if (s->read_in_length > 0) {
		s->read_in >>= s->read_in_length % 8;
		s->read_in_length -= s->read_in_length % 8;
	}
	while (s->read_in_length >= 8 && r->ntrl < 8) {
		r->trl[r->ntrl++] = (unsigned char)s->read_in;
		s->read_in >>= 8;
		s->read_in_length -= 8;
	}
	while (r->ntrl < 8 && r->zs.avail_in > 0) {
		r->trl[r->ntrl++] = *r->zs.next_in++;
		r->zs.avail_in--;
	}
	return r->ntrl == 8;
}

/* reader_inflate with igzip: the same contract. */
static ssize_t
reader_inflate_isal(struct reader *r)
{
	struct inflate_state	*s = r->is;
	size_t			 room, give, made = 0;
	int			 rc;

	for (;;) {
		made = 0;
		if (r->zs.avail_in == 0 && !r->in_eof &&
		    reader_fill_in(r) == -1)
			return -1;
		if (r->zend) {
			/* Between members: zero padding, then maybe another. */
			while (r->zs.avail_in > 0 && *r->zs.next_in == 0) {
				r->zs.next_in++;
				r->zs.avail_in--;
			}
			if (r->zs.avail_in == 0) {
				if (r->in_eof)
					return 0;
				continue;
			}
			r->zend = 0;
			r->hstate = HDR_ID1;
			r->ntrl = 0;
			r->isize = 0;
			r->mstart = r->bytes - r->zs.avail_in;
		}
		if (r->hstate != HDR_DONE) {
			if ((rc = reader_isal_header(r)) == -1)
				return -1;
			if (rc == 1) {
				isal_inflate_reset(s);
				s->crc_flag = ISAL_GZIP_NO_HDR;
			}
		} else if (s->block_state == ISAL_BLOCK_FINISH) {
			if (reader_isal_trailer(r)) {
				r->zend = 1;
				if (reader_check_trailer(r, r->trl, s->crc,
				    r->bytes - r->zs.avail_in - 8) == -1)
					break;
				continue;
			}
		} else if (r->zs.avail_in > 0 || !r->in_eof) {
			room = r->o.cap - r->o.end;
			give = room > UINT32_MAX ? UINT32_MAX : room;
			s->next_in = r->zs.next_in;
			s->avail_in = r->zs.avail_in;
			s->next_out = (uint8_t *)r->o.buf + r->o.end;
			s->avail_out = (uint32_t)give;
			rc = isal_inflate(s);
			made = give - s->avail_out;
			r->zs.next_in = s->next_in;
			r->zs.avail_in = s->avail_in;
			r->isize += (uint32_t)made;
			if (r->hash != NULL)
				(void)XXH3_64bits_update(r->hash,
				    r->o.buf + r->o.end, made);
			r->o.end += made;
			r->raw_bytes += made;
			if (rc < 0)
				break;
			if (made > 0)
				return (ssize_t)made;
			continue;
		} else
			break;	/* the deflate data is cut short */
		if (r->zs.avail_in == 0 && r->in_eof) {
			snprintf(r->error, sizeof r->error, "gzip: truncated "
			    "stream at compressed byte offset %llu",
			    (unsigned long long)r->bytes);
			return -1;
		}
	}
	/* zlib from the member's start, what was handed out skipped. */
	if (reader_isal_fallback(r) == -1)
		return -1;
	return reader_inflate(r);
}
#endif

/* More decoded bytes at buf[end..); 0 at the end of data, -1 on error. */
static ssize_t
reader_fill(struct reader *r)
{
	ssize_t	 n;
	size_t	 want;

	if (r->error[0] != '\0')
		return -1;
#ifdef HAVE_ISAL
	if (r->isal)
		return reader_inflate_isal(r);
#endif
	if (r->gzip)
		return reader_inflate(r);
	if (r->in_eof)
		return 0;
	want = r->o.cap - r->o.end;
	if (r->ranged && r->limit - r->bytes < want)
		want = (size_t)(r->limit - r->bytes);
	if (want == 0) {
		r->in_eof = 1;
		return 0;
	}
	if ((n = reader_read(r->fd, r->o.buf + r->o.end, want)) == -1) {
		snprintf(r->error, sizeof r->error, "read: %s",
		    strerror(errno));
		return -1;
	}
	if (n == 0)
		r->in_eof = 1;
	r->bytes += (uint64_t)n;
	r->raw_bytes += (uint64_t)n;
	if (r->hash != NULL)
		(void)XXH3_64bits_update(r->hash, r->o.buf + r->o.end, (size_t)n);
	r->o.end += (size_t)n;
	return n;
}

/*
 * The inflating thread: fills free slots through reader_fill(), its
 * output buffer pointed at each in turn, until the end of the data, an
 * error or stop. Only it touches the decoding state while it runs.
 */
static void *
reader_ahead_main(void *arg)
{
	struct reader		*r = arg;
	struct reader_pipe	*p = r->pipe;
	struct reader_slot	*sl;
	ssize_t			 n;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->nfull == READER_NSLOT)
			while (p->nfull > READER_NSLOT / 2 && !p->stop)
				pthread_cond_wait(&p->empty, &p->mu);
		if (p->stop) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		sl = &p->slot[(p->head + p->nfull) % READER_NSLOT];
		pthread_mutex_unlock(&p->mu);

		r->o.buf = sl->buf;
		r->o.cap = READER_CHUNK;
		r->o.start = r->o.end = 0;
		n = 1;
		while (r->o.end < READER_CHUNK / 2 && (n = reader_fill(r)) > 0)
			;
		sl->len = r->o.end;
		sl->last = n <= 0;

		pthread_mutex_lock(&p->mu);
		p->nfull++;
		pthread_cond_signal(&p->full);
		pthread_mutex_unlock(&p->mu);
		if (sl->last)
			return NULL;
	}
}

/*
 * Start the inflating thread; what open decoded stays with the parser.
 * -1 when it cannot start (the reader goes on without it).
 */
static int
reader_ahead_start(struct reader *r)
{
	static int		 arenas;
	struct reader_pipe	*p;
	pthread_attr_t		 attr;
	size_t			 i;
	int			 rc;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return -1;
	for (i = 0; i < READER_NSLOT; i++)
		if ((p->slot[i].buf = malloc(READER_CHUNK)) == NULL)
			goto fail;
	/*
	 * One malloc arena for the process: a thread's own would reserve
	 * 64 MB of address space, which worker_memory (RLIMIT_AS) counts.
	 */
	if (!arenas) {
		(void)mallopt(M_ARENA_MAX, 1);
		arenas = 1;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->full, NULL);
	pthread_cond_init(&p->empty, NULL);
	p->lines = r->o;
	r->o.buf = NULL;
	r->o.cap = r->o.start = r->o.end = 0;
	r->pipe = p;
	pthread_attr_init(&attr);
	(void)pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&p->thread, &attr, reader_ahead_main, r);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		r->o = p->lines;
		r->pipe = NULL;
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->full);
		pthread_cond_destroy(&p->empty);
		goto fail;
	}
	p->running = 1;
	return 0;
fail:
	for (i = 0; i < READER_NSLOT; i++)
		free(p->slot[i].buf);
	free(p);
	return -1;
}

void
reader_join(struct reader *r)
{
	if (r->pipe != NULL && r->pipe->running) {
		pthread_join(r->pipe->thread, NULL);
		r->pipe->running = 0;
	}
}

/*
 * reader_fill() for the parser when a thread inflates: the next bytes of
 * its slots into lines. 0 at the end of the data, -1 after an error (the
 * thread is joined then, and its error in r->error).
 */
static ssize_t
reader_take(struct reader *r)
{
	struct reader_pipe	*p = r->pipe;
	struct reader_buf	*b = &p->lines;
	struct reader_slot	*sl;
	size_t			 n;

	pthread_mutex_lock(&p->mu);
	while (p->nfull == 0)
		pthread_cond_wait(&p->full, &p->mu);
	sl = &p->slot[p->head];
	pthread_mutex_unlock(&p->mu);
	if (p->off == sl->len && sl->last) {
		reader_join(r);
		return r->error[0] != '\0' ? -1 : 0;
	}
	n = sl->len - p->off;
	if (n > b->cap - b->end)
		n = b->cap - b->end;
	memcpy(b->buf + b->end, sl->buf + p->off, n);
	b->end += n;
	p->off += n;
	if (p->off == sl->len && !sl->last) {
		pthread_mutex_lock(&p->mu);
		p->head = (p->head + 1) % READER_NSLOT;
		p->nfull--;
		p->off = 0;
		if (p->nfull == READER_NSLOT / 2)
			pthread_cond_signal(&p->empty);
		pthread_mutex_unlock(&p->mu);
	}
	return (ssize_t)n;
}

/* More bytes at the end of the parser's buffer: from the thread or here. */
static ssize_t
reader_more(struct reader *r)
{
	if (r->pipe == NULL && r->gzip && reader_ahead > 0 &&
	    (uint64_t)r->st.st_size >= reader_ahead && !r->ahead_tried) {
		r->ahead_tried = 1;
		(void)reader_ahead_start(r);
	}
	if (r->pipe != NULL)
		return reader_take(r);
	return reader_fill(r);
}

int
reader_seek(struct reader *r, uint64_t off)
{
	if (r->gzip || off > INT64_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (lseek(r->fd, (off_t)off, SEEK_SET) == -1)
		return -1;
	r->o.start = r->o.end = 0;
	r->in_eof = 0;
	r->skipping = 0;
	r->bytes = r->raw_bytes = off;
	return 0;
}

int
reader_range(struct reader *r, uint64_t a, uint64_t b, uint64_t z)
{
	if (r->gzip || a >= b || b > z || z > INT64_MAX) {
		errno = EINVAL;
		return -1;
	}
	/* From a - 1: its newline, if it is one, says a starts a line. */
	if (reader_seek(r, a > 0 ? a - 1 : 0) == -1)
		return -1;
	r->ranged = 1;
	r->align = a > 0;
	r->stop = b;
	r->limit = z;
	r->first = a;
	return 0;
}

uint64_t
reader_tell(const struct reader *r)
{
	return r->raw_bytes - (r->o.end - r->o.start);
}

int
reader_next(struct reader *r, const char **line, size_t *len)
{
	struct reader_buf *b;
	char		*p, *nl;
	size_t		 n;

	for (;;) {
		b = r->pipe != NULL ? &r->pipe->lines : &r->o;
		p = b->buf + b->start;
		n = b->end - b->start;
		if (r->align) {
			/* A range's first bytes, up to its first line start. */
			if ((nl = memchr(p, '\n', n)) != NULL) {
				b->start = (size_t)(nl + 1 - b->buf);
				r->align = 0;
				r->first = reader_tell(r);
				continue;
			}
			b->start = b->end = 0;
			/*
			 * No newline before b - 1: no line starts in the
			 * range (and a long line is not read to its end by
			 * every range it crosses).
			 */
			if (r->raw_bytes >= r->stop) {
				r->align = 0;
				r->stopped = 1;
				r->first = reader_tell(r);
				continue;
			}
			if (r->out_eof || reader_fill(r) <= 0) {
				r->out_eof = 1;
				r->align = 0;
				r->first = reader_tell(r);
			}
			continue;
		}
		if (r->ranged && !r->skipping && r->error[0] == '\0' &&
		    (r->stopped || reader_tell(r) >= r->stop)) {
			r->stopped = 1;
			return READER_END;
		}
		if (r->skipping) {
			if ((nl = memchr(p, '\n', n)) != NULL) {
				b->start = (size_t)(nl + 1 - b->buf);
				r->skipping = 0;
				return READER_OVERLONG;
			}
			b->start = b->end = 0;
			if (r->out_eof || reader_more(r) <= 0) {
				r->out_eof = 1;
				r->skipping = 0;
				return READER_OVERLONG;
			}
			continue;
		}
		if ((nl = memchr(p, '\n', n)) != NULL) {
			n = (size_t)(nl - p);
			b->start += n + 1;
			if (n > 0 && p[n - 1] == '\r')
				n--;
			if (n > r->line_max)
				return READER_OVERLONG;
			*line = p;
			*len = n;
			return READER_LINE;
		}
		/* One byte more than line_max may be a '\r' to drop. */
		if (n > r->line_max + 1) {
			r->skipping = 1;
			continue;
		}
		if (r->out_eof) {
			if (n == 0)
				return r->error[0] != '\0' ? READER_ERROR :
				    READER_END;
			b->start = b->end;
			if (p[n - 1] == '\r')
				n--;
			if (n > r->line_max)
				return READER_OVERLONG;
			*line = p;
			*len = n;
			return READER_LINE;
		}
		/* Move the incomplete line to the front and read more. */
		if (b->start > 0) {
			memmove(b->buf, p, n);
			b->start = 0;
			b->end = n;
		}
		if (reader_more(r) <= 0)
			r->out_eof = 1;
	}
}
