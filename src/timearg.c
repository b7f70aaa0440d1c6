/*
 * timearg.c: --since/--until values to UTC seconds, in the forms
 * journalctl(1) takes (see timearg.h). A time without a zone is local
 * time, as there; "Z", "UTC" or an offset name the zone.
 */
#include "timearg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define TA_SPAN_MAX	((int64_t)1 << 40)	/* 35,000 years, in seconds */

/* Relative units, as systemd's parse_sec() names them (months, years
 * as it counts them: 30.44 and 365.25 days). */
static const struct {
	const char	*name;
	int64_t		 secs;
} ta_units[] = {
	{ "", 1 }, { "s", 1 }, { "sec", 1 }, { "second", 1 },
	{ "seconds", 1 },
	{ "m", 60 }, { "min", 60 }, { "minute", 60 }, { "minutes", 60 },
	{ "h", 3600 }, { "hr", 3600 }, { "hour", 3600 }, { "hours", 3600 },
	{ "d", 86400 }, { "day", 86400 }, { "days", 86400 },
	{ "w", 604800 }, { "week", 604800 }, { "weeks", 604800 },
	{ "M", 2629800 }, { "month", 2629800 }, { "months", 2629800 },
	{ "y", 31557600 }, { "year", 31557600 }, { "years", 31557600 },
};

/* Exactly n digits at *p, as a number (p moved past them); -1 if not. */
static int
ta_digits(const char **p, int n)
{
	int	v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return v;
}

static int
ta_mdays(int y, int m)
{
	static const int	days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/*
 * "-1h30min", "+2d", "1 week ago", "3d left": seconds from now into *t.
 * -1 when s is not such a span.
 */
static int
ta_relative(const char *s, time_t now, int64_t *t)
{
	const char	*p = s, *w;
	int64_t		 sum = 0, n;
	size_t		 i, len;
	int		 sign = 0, parts = 0;

	if (*p == '+' || *p == '-')
		sign = *p++ == '+' ? 1 : -1;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!isdigit((unsigned char)*p))
			break;
		for (n = 0; isdigit((unsigned char)*p); p++)
			if ((n = n * 10 + (*p - '0')) > TA_SPAN_MAX)
				return -1;
		while (*p == ' ')
			p++;
		for (w = p; isalpha((unsigned char)*p); p++)
			;
		len = (size_t)(p - w);
		/* "ago" and "left" end the span, they are no unit */
		if ((len == 3 && strncmp(w, "ago", 3) == 0) ||
		    (len == 4 && strncmp(w, "left", 4) == 0)) {
			p = w;
			len = 0;
		}
		for (i = 0; i < sizeof ta_units / sizeof ta_units[0]; i++)
			if (strlen(ta_units[i].name) == len &&
			    strncmp(ta_units[i].name, w, len) == 0)
				break;
		if (i == sizeof ta_units / sizeof ta_units[0] ||
		    n > TA_SPAN_MAX / ta_units[i].secs ||
		    (sum += n * ta_units[i].secs) > TA_SPAN_MAX)
			return -1;
		parts++;
	}
	if (parts == 0)
		return -1;
	if (sign == 0 && strcmp(p, "ago") == 0)
		sign = -1;
	else if (sign == 0 && strcmp(p, "left") == 0)
		sign = 1;
	else if (sign == 0 || *p != '\0')
		return -1;
	*t = (int64_t)now + sign * sum;
	return 0;
}

/*
 * The zone at the end of a timestamp: "", "Z", "UTC", "+HH", "+HHMM",
 * "+HH:MM" (or '-'), after one optional space. *off is seconds east of
 * UTC; *local is set for "". -1 when p is none of these.
 */
static int
ta_zone(const char *p, int *local, int *off)
{
	int	sign, h, m = 0;

	*local = 0;
	*off = 0;
	if (*p == '\0') {
		*local = 1;
		return 0;
	}
	if (*p == ' ')
		p++;
	if (strcmp(p, "Z") == 0 || strcmp(p, "UTC") == 0)
		return 0;
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '+' ? 1 : -1;
	if ((h = ta_digits(&p, 2)) == -1 || h > 23)
		return -1;
	if (*p == ':')
		p++;
	if (*p != '\0' && ((m = ta_digits(&p, 2)) == -1 || m > 59))
		return -1;
	if (*p != '\0')
		return -1;
	*off = sign * (h * 3600 + m * 60);
	return 0;
}

/*
 * [YYYY-MM-DD][( |T)HH:MM[:SS[.frac]]][zone], with a date or a time or
 * both; a time alone is today's (in its zone). -1 when s is not one.
 */
static int
ta_absolute(const char *s, time_t now, int64_t *t)
{
	struct tm	 tm;
	const char	*p = s;
	time_t		 day;
	int		 y = -1, mo = 0, d = 0, h = 0, mi = 0, se = 0;
	int		 local, off;

	if (strlen(p) >= 5 && isdigit((unsigned char)p[0]) && p[4] == '-') {
		if ((y = ta_digits(&p, 4)) == -1 || *p++ != '-' ||
		    (mo = ta_digits(&p, 2)) == -1 || *p++ != '-' ||
		    (d = ta_digits(&p, 2)) == -1)
			return -1;
		if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > ta_mdays(y, mo))
			return -1;
		if ((*p == ' ' || *p == 'T') && isdigit((unsigned char)p[1]))
			p++;
		else if (*p == 'T' || isdigit((unsigned char)*p))
			return -1;	/* (a time right after the day) */
	}
	if (isdigit((unsigned char)*p)) {
		if ((h = ta_digits(&p, 2)) == -1 || *p++ != ':' ||
		    (mi = ta_digits(&p, 2)) == -1 || h > 23 || mi > 59)
			return -1;
		if (*p == ':') {
			p++;
			if ((se = ta_digits(&p, 2)) == -1 || se > 59)
				return -1;
		}
		/* a fraction of a second: the filter counts whole ones */
		if (*p == '.' && isdigit((unsigned char)p[1]))
			for (p++; isdigit((unsigned char)*p); p++)
				;
	} else if (y == -1)
		return -1;
	if (ta_zone(p, &local, &off) == -1)
		return -1;
	memset(&tm, 0, sizeof tm);
	if (y == -1) {
		/* today, where the zone is */
		day = now + off;
		if (local ? localtime_r(&now, &tm) == NULL :
		    gmtime_r(&day, &tm) == NULL)
			return -1;
	} else {
		tm.tm_year = y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
	}
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	if (local) {
		tm.tm_isdst = -1;
		*t = (int64_t)mktime(&tm);
	} else
		*t = (int64_t)timegm(&tm) - off;
	return 0;
}

/* Local midnight days away from today's. */
static int
ta_midnight(time_t now, int days, int64_t *t)
{
	struct tm	tm;

	if (localtime_r(&now, &tm) == NULL)
		return -1;
	tm.tm_mday += days;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	*t = (int64_t)mktime(&tm);
	return 0;
}

int
timearg_parse(const char *s, time_t now, int64_t *t)
{
	const char	*p, *end;

	if (strcmp(s, "now") == 0) {
		*t = (int64_t)now;
		return 0;
	}
	if (strcmp(s, "today") == 0)
		return ta_midnight(now, 0, t);
	if (strcmp(s, "yesterday") == 0)
		return ta_midnight(now, -1, t);
	if (strcmp(s, "tomorrow") == 0)
		return ta_midnight(now, 1, t);
	p = s[0] == '@' ? s + 1 : s;
	for (end = p; isdigit((unsigned char)*end); end++)
		;
	if (end > p && *end == '\0') {
		if (end - p > 15)
			return -1;
		*t = (int64_t)strtoll(p, NULL, 10);
		return 0;
	}
	if (s[0] == '@')
		return -1;
	if (ta_relative(s, now, t) == 0)
		return 0;
	return ta_absolute(s, now, t);
}
