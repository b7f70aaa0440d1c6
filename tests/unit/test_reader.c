/*
 * test_reader: the reader's CRC-32 against zlib's crc32(), over every
 * length up to a few hundred bytes, at every alignment, with and without
 * a running value, and across chained calls. Then, when the build has
 * ISA-L, its inflater against zlib's on gzip streams whole, cut at every
 * offset of their headers and trailers and at many in their data, with
 * bytes flipped, with header fields and several members: the same lines,
 * the same end, the same error word for word. Each of them is also read
 * with the inflater in its own thread (reader_ahead), which must make no
 * difference either, down to the content digest; and so must a stream
 * of many chunks, with lines and an overlong line across them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "reader.h"
#include "tap.h"

static char	 tmpl[] = "/tmp/test_reader.XXXXXX";
static char	 path[64];
static size_t	 threads;	/* reads that had their inflating thread */

/* What the reader makes of a file: its lines joined, its end. */
struct outcome {
	char		*text;
	size_t		 len;
	int		 rc;
	uint64_t	 bytes, raw, digest;
	char		 error[256];
};

static void
read_all(int which, int ahead, struct outcome *o)
{
	struct reader	 r;
	XXH3_state_t	*hs;
	const char	*line;
	size_t		 len, cap = 1 << 16;
	int		 rc;

	memset(o, 0, sizeof *o);
	if ((o->text = malloc(cap)) == NULL || (hs = XXH3_createState()) ==
	    NULL || XXH3_64bits_reset(hs) == XXH_ERROR)
		abort();
	reader_inflater = which;
	reader_ahead = ahead ? 1 : 0;
	if (reader_open(&r, path, NULL, 1 << 20, 0) == -1) {
		o->rc = -2;
		snprintf(o->error, sizeof o->error, "%s", r.error);
		reader_close(&r);
		XXH3_freeState(hs);
		return;
	}
	(void)XXH3_64bits_update(hs, r.o.buf + r.o.start, r.o.end - r.o.start);
	r.hash = hs;
	while ((rc = reader_next(&r, &line, &len)) > 0) {
		while (o->len + len + 2 > cap)
			if ((o->text = realloc(o->text, cap *= 2)) == NULL)
				abort();
		memcpy(o->text + o->len, line, len);
		o->len += len;
		o->text[o->len++] = rc == READER_LINE ? '\n' : '!';
	}
	o->rc = rc;
	o->bytes = r.bytes;
	o->raw = r.raw_bytes;
	o->digest = XXH3_64bits_digest(hs);
	threads += r.pipe != NULL;
	snprintf(o->error, sizeof o->error, "%s", r.error);
	reader_close(&r);
	XXH3_freeState(hs);
}

/* 1 when a and b are the same outcome (what says which, if not). */
static int
outcome_eq(const struct outcome *a, const struct outcome *b, const char *what,
    const char *an, const char *bn)
{
	int	 eq;

	eq = a->rc == b->rc && a->len == b->len && a->bytes == b->bytes &&
	    a->raw == b->raw &&
	    /* the digest is used only of a stream read to its end */
	    (a->rc != READER_END || a->digest == b->digest) &&
	    memcmp(a->text, b->text, a->len) == 0 &&
	    strcmp(a->error, b->error) == 0;
	if (!eq)
		diag("%s: %s rc %d len %zu raw %llu \"%s\"; %s rc %d "
		    "len %zu raw %llu \"%s\"", what, an, a->rc, a->len,
		    (unsigned long long)a->raw, a->error, bn, b->rc, b->len,
		    (unsigned long long)b->raw, b->error);
	return eq;
}

/* data as a file, read with both inflaters: 1 when they agree exactly. */
static int
same(const unsigned char *data, size_t len, const char *what)
{
	struct outcome	 z, i, za, ia;
	FILE		*f;
	int		 eq;

	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
	read_all(READER_INFLATE_ZLIB, 0, &z);
	read_all(READER_INFLATE_ISAL, 0, &i);
	read_all(READER_INFLATE_ZLIB, 1, &za);
	read_all(READER_INFLATE_ISAL, 1, &ia);
	eq = outcome_eq(&z, &i, what, "zlib", "isal") &&
	    outcome_eq(&z, &za, what, "zlib", "zlib ahead") &&
	    outcome_eq(&i, &ia, what, "isal", "isal ahead");
	free(z.text);
	free(i.text);
	free(za.text);
	free(ia.text);
	return eq;
}

/* One gzip member of src (zlib's own header), at level. */
static size_t
member(unsigned char *out, size_t cap, const unsigned char *src,
    size_t len, int level)
{
	z_stream	 zs;
	size_t		 n;

	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zs.next_in = (unsigned char *)(uintptr_t)src;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	n = zs.total_out;
	deflateEnd(&zs);
	return n;
}

/* The cases: each a stream, then cut, flipped, garbled. */
static void
test_inflaters(void)
{
	static unsigned char	 text[600000], gz[700000], buf[700000];
	unsigned char		 hdr[64];
	size_t			 i, n, len, m1, h, bad, cases;
	unsigned int		 seed = 7;
	uint32_t		 c;

	/* Log-like text: lines of varying words, some repeated. */
	for (i = 0, n = 0; n + 80 < sizeof text; i++) {
		seed = seed * 1103515245u + 12345u;
		n += (size_t)snprintf((char *)text + n, sizeof text - n,
		    "10.0.%u.%u - - [01/Jan/2024:00:%02u:%02u +0000] \"GET "
		    "/p%u/%x HTTP/1.1\" 200 %u\n", (seed >> 8) & 255,
		    (seed >> 16) & 255, (unsigned)(i / 60) % 60,
		    (unsigned)i % 60, (seed >> 20) & 15, seed & 0xfff,
		    (seed >> 4) & 4095);
	}
	len = n;

	/* Two members, then zero padding; the first at level 1. */
	m1 = member(gz, sizeof gz, text, len / 3, 1);
	n = m1 + member(gz + m1, sizeof gz - m1, text + len / 3,
	    len - len / 3, 6);
	memset(gz + n, 0, 16);
	ok(same(gz, n + 16, "two members"), "two members and padding: "
	    "the same with both inflaters");

	bad = cases = 0;
	/* Cut: every offset near the ends of each member, some within. */
	for (i = 0; i <= n; i += (i < 40 || (i > m1 - 20 && i < m1 + 40) ||
	    i > n - 20) ? 1 : 977) {
		cases++;
		bad += !same(gz, i, "cut");
	}
	ok(bad == 0, "cut at %zu offsets: the same lines, the same error",
	    cases);
	/* Flipped bytes (headers, data, trailers) and garbage after. */
	bad = cases = 0;
	for (i = 0; i < n; i += i < 24 || i > n - 12 ? 1 : 1499) {
		memcpy(buf, gz, n);
		buf[i] ^= (unsigned char)(0x41 + i % 7);
		cases++;
		bad += !same(buf, n, "flip");
	}
	memcpy(buf, gz, n);
	memcpy(buf + n, "garbage", 7);
	cases++;
	bad += !same(buf, n + 7, "garbage");
	ok(bad == 0, "%zu damaged streams: the same lines, the same error",
	    cases);

	/* A header with every optional field and a header CRC, right and wrong. */
	h = 0;
	memcpy(hdr, "\\x1f\\x8b\\x08\\x1e\\0\\0\\0\\0\\0\\x03\\x04\\0abcd"
	    "name\\0comment\\0", 30);
	h = 30;
	c = (uint32_t)crc32_z(0, hdr, h);
	hdr[h++] = (unsigned char)c;
	hdr[h++] = (unsigned char)(c >> 8);
	n = member(buf, sizeof buf, text, 100000, 6);
	memcpy(gz, hdr, h);
	memcpy(gz + h, buf + 10, n - 10);
	ok(same(gz, h + n - 10, "fields"), "FEXTRA, FNAME, FCOMMENT, FHCRC");
	bad = cases = 0;
	for (i = 0; i <= h + 4; i++) {
		cases++;
		bad += !same(gz, i, "header cut");
	}
	gz[h - 1] ^= 1;
	cases++;
	bad += !same(gz, h + n - 10, "header crc");
	gz[h - 1] ^= 1;
	gz[3] |= 0x20;
	cases++;
	bad += !same(gz, h + n - 10, "reserved flag");
	gz[3] &= (unsigned char)~0x20;
	gz[2] = 7;
	cases++;
	bad += !same(gz, h + n - 10, "method");
	ok(bad == 0, "%zu header cases: the same with both inflaters", cases);

	/* Stored blocks: members whose trailer crosses the 256 KiB reads. */
	bad = cases = 0;
	for (i = 262144 - 120; i < 262144 + 16; i++) {
		n = member(gz, sizeof gz, text, i, 0);
		if (n <= 262144 || n > 262144 + 8)
			continue;
		m1 = member(gz + n, sizeof gz - n, text, 5000, 6);
		cases++;
		bad += !same(gz, n + m1, "straddle");
	}
	ok(cases == 8 && bad == 0, "a trailer across two reads, at each of "
	    "%zu places: the same", cases);
}

/*
 * Many chunks of the inflating thread: members of the log text and one
 * of a line longer than line_max, then a cut; the same with and without
 * the thread.
 */
static void
test_ahead(void)
{
	static unsigned char	 text[600000];
	unsigned char		*gz, *big;
	size_t			 i, n = 0, len, cap = 16 << 20, bigl = 3 << 20;
	size_t			 t0 = threads;
	unsigned int		 seed = 11;

	for (i = 0, len = 0; len + 80 < sizeof text; i++) {
		seed = seed * 1103515245u + 12345u;
		len += (size_t)snprintf((char *)text + len, sizeof text - len,
		    "line %zu /x/%08x%s\n", i, seed, i % 7 == 0 ? "\r" : "");
	}
	if ((gz = malloc(cap)) == NULL || (big = malloc(bigl)) == NULL)
		abort();
	memset(big, 'y', bigl);
	big[bigl - 1] = '\n';
	for (i = 0; i < 12; i++) {
		n += member(gz + n, cap - n, text, len, 1);
		if (i == 5)
			n += member(gz + n, cap - n, big, bigl, 1);
	}
	ok(same(gz, n, "many chunks"), "%zu bytes of gzip in %d members, an "
	    "overlong line among them: the same in a thread", n, 13);
	ok(same(gz, n - 3, "many chunks, cut"), "the same cut short: the same "
	    "lines, the same error");
	gz[n / 2] ^= 0x55;
	ok(same(gz, n, "many chunks, damaged"), "the same damaged half-way");
	ok(threads - t0 == 6, "each of the 6 reads ahead had its thread (%zu)",
	    threads - t0);
	free(gz);
	free(big);
}

int
main(void)
{
	static unsigned char	 buf[70000];
	size_t			 i, off, len, bad = 0, n = 0;
	uint32_t		 init, a, z;
	unsigned int		 seed = 12345;

	for (i = 0; i < sizeof buf; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (unsigned char)(seed >> 16);
	}
	for (off = 0; off < 16; off++) {
		for (len = 0; len + off <= sizeof buf;
		    len += len < 400 ? 1 : 4099) {
			init = len % 3 == 0 ? 0 : (uint32_t)(len * 2654435761u);
			a = reader_crc32(init, buf + off, len);
			z = (uint32_t)crc32_z(init, buf + off, len);
			if (a != z && bad++ < 5)
				diag("off %zu len %zu: %08x, zlib %08x", off,
				    len, a, z);
			n++;
		}
	}
	ok(bad == 0, "equal to zlib's crc32 in %zu cases", n);

	/* A CRC over pieces equals the CRC over the whole. */
	a = 0;
	for (i = 0; i < sizeof buf; i += len) {
		len = 1 + (i * 7919) % 1000;
		if (len > sizeof buf - i)
			len = sizeof buf - i;
		a = reader_crc32(a, buf + i, len);
	}
	ok(a == (uint32_t)crc32_z(0, buf, sizeof buf), "chained in pieces");
	ok(reader_crc32(0, "123456789", 9) == 0xcbf43926u,
	    "check value of \"123456789\"");

	if (!reader_have_isal()) {
		printf("ok %d # SKIP built without ISA-L\n", ++tap_n);
		return tap_done();
	}
	if (mkdtemp(tmpl) == NULL)
		abort();
	snprintf(path, sizeof path, "%s/f.gz", tmpl);
	test_inflaters();
	test_ahead();
	unlink(path);
	rmdir(tmpl);
	return tap_done();
}
