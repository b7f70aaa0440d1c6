/*
 * test_timearg.c: clfctl's --since/--until values (timearg.c), as a table
 * of strings and the UTC seconds they give (TZ=UTC, so that local times
 * are UTC too), or -1 where they must be refused.
 */
#include "tap.h"
#include "timearg.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define NOW	1709294400	/* 2024-03-01 12:00:00 UTC */

static const struct {
	const char	*s;
	int		 rc;
	int64_t		 t;
} cases[] = {
	{ "1709251200", 0, 1709251200 },
	{ "@1709251200", 0, 1709251200 },
	{ "999999999999999", 0, 999999999999999LL },
	{ "1000000000000000", -1, 0 },		/* 16 digits */
	{ "@", -1, 0 },
	{ "", -1, 0 },
	{ "2024-03-01", 0, 1709251200 },
	{ "2024-02-29 10:20", 0, 1709202000 },
	{ "2024-03-01T10:20:30", 0, 1709288430 },
	{ "2024-03-01 10:20:30.999", 0, 1709288430 },
	{ "2024-03-01 10:20Z", 0, 1709288400 },
	{ "2024-03-01 10:20 UTC", 0, 1709288400 },
	{ "2024-03-01T10:20:30+02:00", 0, 1709281230 },
	{ "2024-03-01 10:20 -0500", 0, 1709306400 },
	{ "2024-03-01 +02", 0, 1709244000 },
	{ "10:20", 0, 1709288400 },
	{ "10:20:30", 0, 1709288430 },
	{ "0001-01-01 00:00", 0, -62135596800LL },
	{ "9999-12-31 23:59:59", 0, 253402300799LL },
	{ "now", 0, NOW },
	{ "today", 0, 1709251200 },
	{ "yesterday", 0, 1709164800 },
	{ "tomorrow", 0, 1709337600 },
	{ "-1h", 0, NOW - 3600 },
	{ "+2d", 0, NOW + 2 * 86400 },
	{ "-1h30min", 0, NOW - 5400 },
	{ "1 week ago", 0, NOW - 604800 },
	{ "3d left", 0, NOW + 3 * 86400 },
	{ "+5", 0, NOW + 5 },
	/* refused: not a real date or time, or not one of the forms */
	{ "2023-02-29", -1, 0 },
	{ "2024-13-01", -1, 0 },
	{ "2024-03-01T", -1, 0 },
	{ "2024-03-01 ", -1, 0 },
	{ "2024-03-0110:20", -1, 0 },		/* the time glued to the day */
	{ "2024-03-01 24:00", -1, 0 },
	{ "10:60", -1, 0 },
	{ "10:20 +24", -1, 0 },
	{ "1h", -1, 0 },			/* no sign, no "ago" */
	{ "-1 fortnight", -1, 0 },
	{ "last tuesday", -1, 0 },
	{ "-99999999999999999999", -1, 0 },	/* past 2^40 seconds */
};

int
main(void)
{
	int64_t	t;
	size_t	i;
	int	rc;

	setenv("TZ", "UTC", 1);
	tzset();
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		t = 0;
		rc = timearg_parse(cases[i].s, NOW, &t);
		if (cases[i].rc == 0 ? !ok(rc == 0 && t == cases[i].t,
		    "\"%s\": %lld", cases[i].s, (long long)cases[i].t) :
		    !ok(rc == -1, "\"%s\": refused", cases[i].s))
			diag("got %d, %lld", rc, (long long)t);
	}
	return tap_done();
}
