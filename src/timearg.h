/*
 * timearg.h: clfctl's --since/--until values, read as journalctl(1)
 * reads them, to UTC seconds.
 */
#ifndef CLFD_TIMEARG_H
#define CLFD_TIMEARG_H

#include <stdint.h>
#include <time.h>

/*
 * s as UTC seconds into *t, now being the time it is relative to:
 *   1709251200			UTC seconds (digits alone)
 *   @1709251200		the same, as journalctl writes it
 *   2024-03-01			midnight, local time
 *   2024-03-01 10:20[:30]	('T' for the space too), local time
 *   10:20[:30]			today, local time
 *   ... Z, ... UTC, ... +02:00, ... -0500, ... +02
 *				a timestamp in UTC or at that offset
 *   now, today, yesterday, tomorrow	(midnights, local time)
 *   -1h, +2d, -1h30min, "1 week ago", "3d left"	relative to now
 * Returns 0, or -1 when s is none of these (or not a real date).
 */
int	timearg_parse(const char *s, time_t now, int64_t *t);

#endif
