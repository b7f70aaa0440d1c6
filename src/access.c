/*
 * access.c: the details of one access line, with no I/O.
 *
 * These functions reproduce, byte for byte, what the seed's Python does
 * with a matched line: str.split() of the request, urllib.parse.urlsplit()
 * of the target (Python 3.11), and strptime("%d/%b/%Y:%H:%M:%S %z") of the
 * time. White space is Python's for str: the ASCII space, \t \n \v \f \r
 * and the separators \x1c-\x1f (bytes >= 0x80 reach Python as surrogates,
 * which are not space). Nothing here allocates.
 */
#include <arpa/inet.h>
#include <string.h>

#include "access.h"

#define IS_WS(c)	ACCESS_IS_WS(c)
#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c)	(((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')
#define IS_HEX(c)	(IS_DIGIT(c) || (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'f'))

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t
access_days(int64_t y, int m, int d)
{
	int64_t	 era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
access_mdays(int y, int m)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return mdays[m - 1];
}

/*
 * The bracketed host of an authority, as Python's _check_bracketed_host:
 * "v<hex>.<anything>" (IPvFuture) or an IPv6 address with an optional
 * non-empty %scope. An IPv4 address in brackets is refused.
 */
static int
access_bracketed_ok(const char *h, size_t len)
{
	char		 addr[64];
	unsigned char	 bin[16];
	const char	*pct;
	size_t		 i, alen;

	if (len > 0 && h[0] == 'v') {
		for (i = 1; i < len && IS_HEX(h[i]); i++)
			;
		if (i == 1 || i >= len || h[i] != '.' || i + 1 >= len)
			return 0;
		return memchr(h + i + 1, '\n', len - i - 1) == NULL;
	}
	alen = len;
	if ((pct = memchr(h, '%', len)) != NULL) {
		alen = (size_t)(pct - h);
		if (alen + 1 == len || memchr(pct + 1, '%', len - alen - 1))
			return 0;
	}
	if (alen == 0 || alen >= sizeof addr)
		return 0;
	memcpy(addr, h, alen);
	addr[alen] = '\0';
	if (memchr(addr, '\0', alen) != NULL)
		return 0;
	return inet_pton(AF_INET6, addr, bin) == 1;
}

/*
 * urlsplit(u).path, for a u with no \t \r \n. -1 when Python would raise
 * (brackets in the authority). The path is a substring of u.
 */
static int
access_urlsplit(const char *u, size_t len, const char **path, size_t *plen)
{
	const char	*end = u + len, *p, *ob, *cb, *nl_end;
	size_t		 i;

	/* lstrip C0 controls and space. */
	while (u < end && (unsigned char)*u <= 0x20)
		u++;
	len = (size_t)(end - u);
	/* A scheme: letter, then [A-Za-z0-9+.-]*, then ':'. */
	if ((p = memchr(u, ':', len)) != NULL && p > u && IS_ALPHA(u[0])) {
		for (i = 1; u + i < p; i++) {
			char c = u[i];

			if (!IS_ALPHA(c) && !IS_DIGIT(c) && c != '+' &&
			    c != '-' && c != '.')
				break;
		}
		if (u + i == p)
			u = p + 1;
	}
	if (end - u >= 2 && u[0] == '/' && u[1] == '/') {
		for (nl_end = u + 2; nl_end < end && *nl_end != '/' &&
		    *nl_end != '?' && *nl_end != '#'; nl_end++)
			;
		ob = memchr(u + 2, '[', (size_t)(nl_end - u - 2));
		cb = memchr(u + 2, ']', (size_t)(nl_end - u - 2));
		if ((ob == NULL) != (cb == NULL))
			return -1;
		if (ob != NULL) {
			cb = memchr(ob + 1, ']', (size_t)(nl_end - ob - 1));
			if (cb == NULL)
				cb = nl_end;
			if (!access_bracketed_ok(ob + 1, (size_t)(cb - ob - 1)))
				return -1;
		}
		u = nl_end;
	}
	for (p = u; p < end && *p != '?' && *p != '#'; p++)
		;
	*path = u;
	*plen = (size_t)(p - u);
	return 0;
}

/*
 * The seed's target_url(): a target starting with "//" is a path (up to
 * ?query or #fragment), anything else goes through urlsplit.
 */
static int
access_target_path(const char *t, size_t len, const char **path,
    size_t *plen)
{
	const char	*p;

	if (len >= 2 && t[0] == '/' && t[1] == '/') {
		for (p = t; p < t + len && *p != '?' && *p != '#'; p++)
			;
		*path = t;
		*plen = (size_t)(p - t);
		return 0;
	}
	return access_urlsplit(t, len, path, plen);
}

int
access_request(const char *req, size_t len, char *scratch,
    struct request *r)
{
	size_t	 a = 0, b, c, e = len, i, o, q = SIZE_MAX;
	int	 simple = 1;
	unsigned char k;

	while (a < len && IS_WS(req[a]))
		a++;
	if (a == len)
		return -1;
	for (b = a; b < len && !IS_WS(req[b]); b++)
		;
	while (e > b && IS_WS(req[e - 1]))
		e--;
	for (c = e; c > b && !IS_WS(req[c - 1]); c--)
		;
	r->method = req + a;
	r->method_len = b - a;
	/* The target: words between the first and the last. */
	while (b < c && IS_WS(req[b]))
		b++;
	while (c > b && IS_WS(req[c - 1]))
		c--;
	if (b >= c) {
		r->path = req + b;
		r->path_len = 0;
		return 0;
	}
	/*
	 * One pass: white space other than single spaces means the target
	 * must be rebuilt; the first '?' or '#' ends an origin-form path.
	 */
	for (i = b; i < c; i++) {
		if ((k = access_class((unsigned char)req[i])) == 0)
			continue;
		if (k == ACCESS_PATH_END) {
			if (q == SIZE_MAX)
				q = i;
		} else if (req[i] != ' ' || IS_WS(req[i + 1])) {
			simple = 0;
			break;
		}
	}
	if (simple) {
		/* "/p?q": no space to strip, no scheme, no authority. */
		if (req[b] == '/' && (c - b < 2 || req[b + 1] != '/')) {
			r->path = req + b;
			r->path_len = (q != SIZE_MAX ? q : c) - b;
			return 0;
		}
		return access_target_path(req + b, c - b, &r->path,
		    &r->path_len);
	}
	/* Runs of white space become one space, as ' '.join(words). */
	for (i = b, o = 0; i < c; i++) {
		if (IS_WS(req[i])) {
			if (!IS_WS(req[i - 1]))
				scratch[o++] = ' ';
		} else
			scratch[o++] = req[i];
	}
	return access_target_path(scratch, o, &r->path, &r->path_len);
}

int
access_url_ok(const char *s, size_t len, char *scratch)
{
	const char	*path;
	size_t		 plen, i, o;

	/* Only an authority with brackets can make urlsplit raise. */
	if (memchr(s, '[', len) == NULL && memchr(s, ']', len) == NULL)
		return 1;
	/* urlsplit first removes every \t \r \n. */
	for (i = 0, o = 0; i < len; i++)
		if (s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			scratch[o++] = s[i];
	return access_urlsplit(scratch, o, &path, &plen) == 0;
}

/* 1-2 digits (or " d" when lead_space) as strptime reads them; -1 if bad. */
static int
access_num(const char *s, size_t len, size_t *pos, int max2, int lead_space)
{
	size_t	 i = *pos;
	int	 v;

	if (lead_space && i + 1 < len && s[i] == ' ' && IS_DIGIT(s[i + 1]) &&
	    s[i + 1] != '0') {
		*pos = i + 2;
		return s[i + 1] - '0';
	}
	if (i >= len || !IS_DIGIT(s[i]))
		return -1;
	v = s[i] - '0';
	if (i + 1 < len && IS_DIGIT(s[i + 1])) {
		/* Two digits only when the pair is in range. */
		int v2 = v * 10 + (s[i + 1] - '0');

		if (v2 <= max2) {
			*pos = i + 2;
			return v2;
		}
	}
	*pos = i + 1;
	return v;
}

/*
 * "%d/%b/%Y:%H:%M:%S %z" as Python 3.11's strptime and datetime accept it:
 * day 01-31, 1-9 or " 1"-" 9"; month abbreviation in any case; year of
 * exactly four digits (not 0); hour, minute, second in one or two digits;
 * white space; zone "Z", [+-]HHMM, [+-]HH:MM, [+-]HHMMSS or [+-]HH:MM:SS
 * (seconds may carry .ffffff), under 24 hours; nothing after.
 */
int
access_time(const char *s, size_t len, int64_t *t)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	size_t	 pos = 0, i;
	int	 day, mon, year, hh, mm, ss, sign, zh, zm, zs = 0, colon;
	int64_t	 off;

	if ((day = access_num(s, len, &pos, 31, 1)) < 1)
		return -1;
	if (pos + 5 > len || s[pos] != '/' || s[pos + 4] != '/')
		return -1;
	for (mon = 0; mon < 12; mon++)
		if ((s[pos + 1] | 0x20) == months[mon * 3] &&
		    (s[pos + 2] | 0x20) == months[mon * 3 + 1] &&
		    (s[pos + 3] | 0x20) == months[mon * 3 + 2])
			break;
	if (mon == 12)
		return -1;
	mon++;
	pos += 5;
	if (pos + 5 > len || s[pos + 4] != ':')
		return -1;
	for (year = 0, i = 0; i < 4; i++) {
		if (!IS_DIGIT(s[pos + i]))
			return -1;
		year = year * 10 + (s[pos + i] - '0');
	}
	pos += 5;
	if (year == 0 || day > access_mdays(year, mon))
		return -1;
	if ((hh = access_num(s, len, &pos, 23, 0)) < 0 || hh > 23 ||
	    pos >= len || s[pos++] != ':')
		return -1;
	if ((mm = access_num(s, len, &pos, 59, 0)) < 0 || pos >= len ||
	    s[pos++] != ':')
		return -1;
	if ((ss = access_num(s, len, &pos, 61, 0)) < 0 || ss > 59)
		return -1;
	if (pos >= len || !IS_WS(s[pos]))
		return -1;
	while (pos < len && IS_WS(s[pos]))
		pos++;
	if (pos + 1 == len && s[pos] == 'Z') {
		off = 0;
		goto done;
	}
	if (pos + 5 > len || (s[pos] != '+' && s[pos] != '-'))
		return -1;
	sign = s[pos] == '-' ? -1 : 1;
	if (!IS_DIGIT(s[pos + 1]) || !IS_DIGIT(s[pos + 2]))
		return -1;
	zh = (s[pos + 1] - '0') * 10 + (s[pos + 2] - '0');
	pos += 3;
	colon = s[pos] == ':';
	pos += colon;
	if (pos + 2 > len || s[pos] < '0' || s[pos] > '5' ||
	    !IS_DIGIT(s[pos + 1]))
		return -1;
	zm = (s[pos] - '0') * 10 + (s[pos + 1] - '0');
	pos += 2;
	if (pos < len) {
		/* Seconds: a colon before them exactly when one follows HH. */
		if ((s[pos] == ':') != colon)
			return -1;
		pos += colon;
		if (pos + 2 > len || s[pos] < '0' || s[pos] > '5' ||
		    !IS_DIGIT(s[pos + 1]))
			return -1;
		zs = (s[pos] - '0') * 10 + (s[pos + 1] - '0');
		pos += 2;
		if (pos < len) {
			if (s[pos] != '.')
				return -1;
			for (i = 1; pos + i < len && IS_DIGIT(s[pos + i]); i++)
				;
			if (i == 1 || i > 7 || pos + i != len)
				return -1;
			pos = len;
		}
	}
	off = (int64_t)zh * 3600 + zm * 60 + zs;
	if (off >= 86400)
		return -1;
	off *= sign;
done:
	*t = access_days(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss -
	    off;
	return 0;
}

int
access_status(const char *s, size_t len)
{
	size_t	 i;
	int	 v = 0;

	if (s == NULL || len == 0 || len > 9)
		return -1;
	for (i = 0; i < len; i++) {
		if (!IS_DIGIT(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
access_iso_time(const char *s, size_t len, int64_t *t)
{
	static const char	 tmpl[] = "dddd-dd-ddTdd:dd:ddZ";
	int			 y, mo, d, h, mi, se;
	size_t			 i;

	if (len != sizeof tmpl - 1)
		return -1;
	for (i = 0; i < len; i++)
		if (tmpl[i] == 'd' ? !IS_DIGIT(s[i]) : s[i] != tmpl[i])
			return -1;
#define D2(k)	((s[k] - '0') * 10 + (s[(k) + 1] - '0'))
	y = D2(0) * 100 + D2(2);
	mo = D2(5);
	d = D2(8);
	h = D2(11);
	mi = D2(14);
	se = D2(17);
#undef D2
	if (y == 0 || mo < 1 || mo > 12 || d < 1 || d > access_mdays(y, mo) ||
	    h > 23 || mi > 59 || se > 59)
		return -1;
	*t = access_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}
