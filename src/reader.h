/*
 * reader.h: a log file as a sequence of lines.
 *
 * reader_open() opens a regular file only (never blocking on a FIFO),
 * checks it against the allowed roots after resolving symlinks, and finds
 * gzip by its magic bytes. reader_next() hands out one line at a time,
 * pointing into a large buffer (no copy per line): split on '\n', one
 * trailing '\r' dropped, a last line without '\n' kept, NUL bytes kept. A
 * line longer than line_max is skipped to its end without being buffered
 * and reported as READER_OVERLONG.
 */
#ifndef CLFD_READER_H
#define CLFD_READER_H

#include <sys/stat.h>

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define READER_LINE	1	/* a line in *line, *len */
#define READER_OVERLONG	2	/* a line over line_max (skipped) */
#define READER_END	0	/* no more lines */
#define READER_ERROR	(-1)	/* stopped early: see error */

struct inflate_state;
struct reader_pipe;

/* Decoded bytes [start, end) of buf, which holds cap. */
struct reader_buf {
	char		*buf;
	size_t		 cap, start, end;
};

struct reader {
	int		 fd;
	struct stat	 st;		/* the file, as opened */
	int		 gzip;
	int		 zinit;		/* zs needs inflateEnd */
	int		 zend;		/* at the end of a gzip member */
	int		 in_eof;	/* read() returned 0 */
	int		 out_eof;	/* no more decoded bytes will come */
	int		 skipping;	/* inside an overlong line */
	int		 ahead_tried;	/* reader_ahead was looked at */
	int		 ranged;	/* reader_range: stop, limit apply */
	int		 align;		/* skip to the first line start */
	int		 stopped;	/* reached a line start >= stop */
	uint64_t	 stop;		/* no line starting here or later */
	uint64_t	 limit;		/* nothing read from here on */
	uint64_t	 first;		/* offset of the first line handed out */
	int		 isal;		/* this file goes through ISA-L */
	struct inflate_state *is;	/* ISA-L's state, when isal */
	int		 hstate;	/* ISA-L: where in the member header */
	unsigned int	 hflags;	/* its FLG byte */
	size_t		 hleft;		/* bytes left in this header field */
	uint32_t	 hcrc;		/* CRC-32 of the header bytes so far */
	unsigned char	 trl[8];	/* ISA-L: the trailer, as it comes */
	size_t		 ntrl;
	uint64_t	 mstart;	/* compressed offset of this member */
	uint64_t	 skip;		/* zlib again: output already handed out */
	uint64_t	 nohash;	/* zlib again: output already hashed */
	z_stream	 zs;		/* zlib's state; its next_in, avail_in
					   are the input cursor of both */
	gz_header	 hdr;		/* this member's header, as zlib reads it */
	int		 hdr_ok;	/* header read and checked (FHCRC too) */
	uint32_t	 crc;		/* CRC-32 of this member's output */
	uint32_t	 isize;		/* its length, modulo 2^32 */
	unsigned char	 prev[8];	/* last 8 input bytes before in[] */
	unsigned char	*in;
	size_t		 in_cap;
	size_t		 in_len;	/* bytes in in[] from the last read */
	struct reader_buf o;		/* what the inflater made */
	struct reader_pipe *pipe;	/* the inflating thread, or NULL */
	size_t		 line_max;
	uint64_t	 bytes;		/* read from the file */
	uint64_t	 raw_bytes;	/* after inflating */
	void		*hash;		/* XXH3 state fed the decoded bytes, or NULL */
	char		 error[256];
};

/*
 * Open path for reading; roots is NULL (any path) or a NULL-terminated
 * list of directories the resolved path must be in. A file on a
 * pseudo-filesystem (proc, sysfs, ...) is refused, and with
 * READER_NO_HARDLINKS in flags one with more than one link. -1 with
 * r->error set when the file cannot be read at all; reader_close() is
 * needed either way.
 */
#define READER_NO_HARDLINKS	0x1
/*
 * With READER_DEFER, open only checks the file and looks at its first two
 * bytes for gzip's magic; nothing is allocated or read until
 * reader_start() (a file answered without reading costs no buffers).
 */
#define READER_DEFER		0x2
/*
 * READER_NO_AHEAD: no second thread for this file, whatever its size
 * (the daemon says so when no core is free for one).
 */
#define READER_NO_AHEAD		0x4

int	reader_open(struct reader *, const char *path,
	    const char *const *roots, size_t line_max, int flags);
int	reader_start(struct reader *);
/*
 * Make (and touch) the buffers a reader of lines up to line_max will
 * take, ahead of the first file: a process that reads files calls it
 * once when it starts.
 */
void	reader_warm(size_t line_max);
int	reader_next(struct reader *, const char **line, size_t *len);
/*
 * Go on from byte off of a plain file (never gzip): what open read is
 * dropped. bytes and raw_bytes count from 0 as if [0, off) had been read.
 * -1 with errno.
 */
int	reader_seek(struct reader *, uint64_t off);
/*
 * Read only the lines of a plain file (never gzip) whose first byte lies
 * in [a, b), as if the file ended at byte z (b <= z): from the first line
 * start at or after a (a itself when a is 0 or byte a - 1 is a newline),
 * up to the end of the last line that starts before b, wherever it ends
 * (at z at the latest). Every line of the file's first z bytes belongs to
 * exactly one of a set of ranges that tile [0, z). -1 with errno.
 */
int	reader_range(struct reader *, uint64_t a, uint64_t b, uint64_t z);
/*
 * The offset in the decoded stream of the first byte not yet handed out:
 * after READER_END of a range, the start of the first line it does not
 * own (or where the reading ended).
 */
uint64_t reader_tell(const struct reader *);
/*
 * Wait for the inflating thread, if there is one: after it, bytes,
 * raw_bytes, hash and error may be read. reader_next() does it at the
 * end of the lines, reader_close() always.
 */
void	reader_join(struct reader *);
void	reader_close(struct reader *);
/*
 * 1 when buf (its first n bytes of a file) starts with gzip's magic, the
 * one test of what is gzip; reader_fd_gzip() reads the two bytes of fd
 * at offset 0 (its offset stays) for it, 0 when it cannot.
 */
int	reader_gzip_magic(const unsigned char *buf, size_t n);
int	reader_fd_gzip(int fd);
/* 1 when the resolved path is one of roots or below one. */
int	reader_in_roots(const char *resolved, const char *const *roots);
/* The name of the pseudo-filesystem fd is on ("proc", ...), else NULL. */
const char *reader_pseudo_fs(int fd);

/*
 * The inflater of gzip files: ISA-L's igzip when clfd is built with it
 * (the default), else zlib. Tests set reader_inflater to compare the two;
 * reader_open() reads it. reader_inflater_name() is "isal" or "zlib".
 */
#define READER_INFLATE_ZLIB	0
#define READER_INFLATE_ISAL	1

extern int	 reader_inflater;
/*
 * A gzip file of at least reader_ahead compressed bytes is inflated by a
 * second thread, ahead of the lines being parsed, so that one big file
 * keeps two cores busy; 0 never does. reader_open() reads it.
 */
#define READER_AHEAD_DEFAULT	(16 * 1024 * 1024)
extern uint64_t	 reader_ahead;
const char	*reader_inflater_name(int);
/* 1 when this build has ISA-L. */
int		 reader_have_isal(void);

/*
 * zlib's crc32() (same value, same chaining), with carry-less multiply
 * where the CPU has it: the reader checks each gzip member's CRC itself.
 */
uint32_t reader_crc32(uint32_t crc, const void *buf, size_t len);

#endif
