/*
 * test_reader: the reader's CRC-32 against zlib's crc32(), over every
 * length up to a few hundred bytes, at every alignment, with and without
 * a running value, and across chained calls.
 */
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

#include "reader.h"
#include "tap.h"

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
	return tap_done();
}
