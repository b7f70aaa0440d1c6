/*
 * fuzz_timearg.c: timearg_parse() (clfctl's --since/--until) on
 * arbitrary strings, with a few fixed "now"s, in UTC and in a zone with
 * daylight saving time (when the system has it).
 *
 * It must never crash or overflow (UBSan), return 0 or -1, leave *t alone
 * when it refuses, and give an accepted value in a sane range: within
 * TA_SPAN_MAX (2^40 s) of now for a span, the years 1 to 9999 give or
 * take a day for a date, at most 15 digits for seconds. The input is cut
 * at its first NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timearg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_UNSET	((int64_t)0x5a5a5a5a5a5a5a5aLL)
#define FZ_LOW		(-62135596800LL - 86400)	/* 0001-01-01, a day early */
#define FZ_HIGH		(253402300800LL + 86400)	/* 10000-01-01, a day late */
#define FZ_SPAN		((int64_t)1 << 40)
#define FZ_DIGITS	999999999999999LL		/* 15 digits */

static const time_t fz_now[] = {
	1709251200,	/* 2024-03-01 */
	0,
	-86400 * 365,
	4102444800,	/* 2100-01-01 */
	1711846800,	/* 2024-03-31 01:00 UTC: a DST change in Europe */
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const zones[] = { "UTC", "Europe/Berlin" };
	const char	*p;
	char		*s;
	int64_t		 t;
	size_t		 i, z;
	int		 rc;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (z = 0; z < sizeof zones / sizeof zones[0]; z++) {
		setenv("TZ", zones[z], 1);
		tzset();
		for (i = 0; i < sizeof fz_now / sizeof fz_now[0]; i++) {
			t = FZ_UNSET;
			rc = timearg_parse(s, fz_now[i], &t);
			if (rc == -1) {
				if (t != FZ_UNSET)
					abort();
				continue;
			}
			if (rc != 0)
				abort();
			/* now +- a span, a date of years 1-9999, or digits */
			if (t >= (int64_t)fz_now[i] - FZ_SPAN &&
			    t <= (int64_t)fz_now[i] + FZ_SPAN)
				continue;
			if (t >= FZ_LOW && t <= FZ_HIGH)
				continue;
			p = s[0] == '@' ? s + 1 : s;
			if (t < 0 || t > FZ_DIGITS || strspn(p, "0123456789") !=
			    strlen(p))
				abort();
		}
	}
	free(s);
	return 0;
}
