/*
 * fuzz_crc.c: reader_crc32() against zlib's crc32_z().
 *
 * The reader source is included (READER_SRC, src/reader.c by default) to
 * reach the carry-less multiply code directly; build.sh also builds it
 * over a copy without that code (fuzz_crc_noclmul), the path a CPU
 * without PCLMULQDQ takes. The first run sweeps every length up to 1100
 * at every alignment up to 16 and chained random pieces; then each input
 * is the first byte (alignment), four (starting CRC), one (pieces and a
 * repeat count), then data, the data repeated to reach long lengths.
 * Every buffer is an exact-size allocation, so ASan sees any load past
 * its end.
 */
#ifndef READER_SRC
#define READER_SRC	"reader.c"
#endif
#include READER_SRC

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Check reader_crc32 over p[0..len) from crc, whole and in pieces. */
static void
fuzz_check(uint32_t crc, const unsigned char *p, size_t len, unsigned pieces,
    uint32_t seed)
{
	uint32_t	 want, got;
	size_t		 off, n;

	want = (uint32_t)crc32_z(crc, p, len);
	if ((got = reader_crc32(crc, p, len)) != want) {
		fprintf(stderr, "crc: len %zu align %u init %08x: %08x, zlib "
		    "%08x\n", len, (unsigned)((uintptr_t)p & 63), crc, got,
		    want);
		abort();
	}
#ifdef READER_CLMUL
	if (len >= 64 && __builtin_cpu_supports("pclmul") &&
	    __builtin_cpu_supports("sse4.1")) {
		n = len & ~(size_t)15;
		got = ~reader_crc_clmul(~crc, p, n);
		if (got != (uint32_t)crc32_z(crc, p, n)) {
			fprintf(stderr, "crc: clmul len %zu: %08x\n", n, got);
			abort();
		}
	}
#endif
	/* Chained: pieces of pseudo-random lengths. */
	got = crc;
	for (off = 0; off < len; off += n) {
		seed = seed * 1103515245u + 12345u;
		n = pieces <= 1 ? len - off : (seed >> 8) % (len - off + 1);
		if (pieces > 1 && (seed & 3) == 0)
			n = (len - off) < 200 ? len - off : 64 + (seed >> 4) % 137;
		got = reader_crc32(got, p + off, n);
		if (n == 0)
			n = 1, got = reader_crc32(got, p + off, 1);
	}
	if (got != want) {
		fprintf(stderr, "crc: chained len %zu init %08x: %08x, zlib "
		    "%08x\n", len, crc, got, want);
		abort();
	}
}

/* Copy data to an exact-size allocation at alignment align, check it. */
static void
fuzz_at(const unsigned char *data, size_t len, unsigned align, uint32_t crc,
    unsigned pieces, uint32_t seed)
{
	unsigned char	*base;

	if ((base = malloc(align + len + 1)) == NULL)
		abort();
	/* Exact end: the data ends where the allocation ends. */
	memcpy(base + align + 1, data, len);
	fuzz_check(crc, base + align + 1, len, pieces, seed);
	free(base);
}

static void
fuzz_sweep(void)
{
	unsigned char	 d[1100];
	uint32_t	 seed = 7, crc;
	size_t		 i, len;
	unsigned	 a;

	for (i = 0; i < sizeof d; i++) {
		seed = seed * 1103515245u + 12345u;
		d[i] = (unsigned char)(seed >> 16);
	}
	for (len = 0; len <= sizeof d; len++)
		for (a = 0; a < 16; a++) {
			seed = seed * 1103515245u + 12345u;
			crc = (a & 3) == 0 ? 0 : ((a & 3) == 1 ? 0xffffffffu :
			    seed);
			fuzz_at(d, len, a, crc, 1 + a % 5, seed);
		}
	/* All zeros and all ones, where folding constants matter most. */
	memset(d, 0, sizeof d);
	for (len = 60; len <= 300; len++)
		fuzz_at(d, len, 0, 0, 1, 1);
	memset(d, 0xff, sizeof d);
	for (len = 60; len <= 300; len++)
		fuzz_at(d, len, 3, 0xffffffffu, 1, 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 init;
	unsigned char	*big;
	uint32_t	 crc;
	unsigned	 align, pieces, rep;
	size_t		 i, len;

	if (!init) {
		fuzz_sweep();
		init = 1;
	}
	if (size < 6)
		return 0;
	align = data[0] % 64;
	crc = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
	    (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
	pieces = data[5] & 7;
	rep = 1 + (data[5] >> 3);
	data += 6;
	size -= 6;
	len = size * rep;
	if ((big = malloc(len + 1)) == NULL)
		abort();
	for (i = 0; i < rep; i++)
		memcpy(big + i * size, data, size);
	fuzz_at(big, len, align, crc, pieces, crc ^ (uint32_t)len);
	free(big);
	return 0;
}
