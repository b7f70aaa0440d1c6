/*
 * test_access.c: request splitting, target -> path, %t times, statuses,
 * referer URLs and ISO times, as tables of cases. The expected values are
 * what the seed's Python (str.split, urllib.parse.urlsplit of 3.11,
 * strptime) gives for the same input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "tap.h"

/* A request and the method and path it must give (path NULL: invalid). */
static const struct {
	const char	*req;
	const char	*method;
	const char	*path;
} requests[] = {
	{ "GET /index.html HTTP/1.1", "GET", "/index.html" },
	{ "GET /a?b=c HTTP/1.1", "GET", "/a" },
	{ "GET /a#frag HTTP/1.1", "GET", "/a" },
	{ "GET /a#f?g HTTP/1.1", "GET", "/a" },
	{ "GET /a?q#f HTTP/1.1", "GET", "/a" },
	{ "GET /p;params?x HTTP/1.1", "GET", "/p;params" },
	{ "GET http://example.com/p/q?x HTTP/1.1", "GET", "/p/q" },
	{ "GET https://user@example.com:8443/p HTTP/1.1", "GET", "/p" },
	{ "GET http://example.com HTTP/1.1", "GET", "" },
	{ "GET http://example.com?x HTTP/1.1", "GET", "" },
	{ "GET //double/slash?x HTTP/1.1", "GET", "//double/slash" },
	{ "GET // HTTP/1.1", "GET", "//" },
	{ "GET / HTTP/1.1", "GET", "/" },
	{ "GET HTTP/1.1", "GET", "" },
	{ "GET", "GET", "" },
	{ "  GET   /a   HTTP/1.1  ", "GET", "/a" },
	{ "GET /a b c HTTP/1.1", "GET", "/a b c" },
	{ "GET /a \t b\x1c c HTTP/1.1", "GET", "/a b c" },
	{ "GET\t/tab\tHTTP/1.0", "GET", "/tab" },
	{ "", NULL, NULL },
	{ "   ", NULL, NULL },
	{ "\x1c\x1f", NULL, NULL },
	{ "OPTIONS * HTTP/1.1", "OPTIONS", "*" },
	{ "CONNECT example.com:443 HTTP/1.1", "CONNECT", "443" },
	{ "GET mailto:x@y HTTP/1.1", "GET", "x@y" },
	{ "GET 1http:/x HTTP/1.1", "GET", "1http:/x" },
	{ "GET a_b:/x HTTP/1.1", "GET", "a_b:/x" },
	{ "GET :/x HTTP/1.1", "GET", ":/x" },
	{ "GET \x01/ctl HTTP/1.1", "GET", "/ctl" },
	{ "GET \x01//host/p HTTP/1.1", "GET", "/p" },
	{ "GET http://[::1]/v6 HTTP/1.1", "GET", "/v6" },
	{ "GET http://[::1]:8080/v6?x HTTP/1.1", "GET", "/v6" },
	{ "GET http://[fe80::1%eth0]/s HTTP/1.1", "GET", "/s" },
	{ "GET http://[fe80::1%]/s HTTP/1.1", NULL, NULL },
	{ "GET http://[v1.fut]/f HTTP/1.1", "GET", "/f" },
	{ "GET http://[v1.]/f HTTP/1.1", NULL, NULL },
	{ "GET http://[1.2.3.4]/p HTTP/1.1", NULL, NULL },
	{ "GET http://[nothost]/p HTTP/1.1", NULL, NULL },
	{ "GET http://[::1/p HTTP/1.1", NULL, NULL },
	{ "GET http://::1]/p HTTP/1.1", NULL, NULL },
	{ "GET //[::1/p HTTP/1.1", "GET", "//[::1/p" },
	{ "GET http://h/[x HTTP/1.1", "GET", "/[x" },
	{ "GET /\xff\xfe HTTP/1.1", "GET", "/\xff\xfe" },
	{ "\\x16\\x03\\x01", "\\x16\\x03\\x01", "" },
	{ "GET /a\\\"b HTTP/1.1", "GET", "/a\\\"b" },
	/* '?' and '#' found in the same pass as the white space. */
	{ "GET /a b?c d#e HTTP/1.1", "GET", "/a b" },
	{ "GET /a\t?b HTTP/1.1", "GET", "/a " },
	{ "GET /?x HTTP/1.1", "GET", "/" },
	{ "GET /#?x HTTP/1.1", "GET", "/" },
	{ "GET /a?b\tc  d HTTP/1.1", "GET", "/a" },
	{ "GET /a?b HTTP/1.1 extra", "GET", "/a" },
};

/* A %t value and whether it is valid, with its UTC seconds. */
static const struct {
	const char	*s;
	int		 valid;
	int64_t		 t;
} times[] = {
	{ "10/Oct/2000:13:55:36 -0700", 1, 971211336 },
	{ "01/Jan/1970:00:00:00 +0000", 1, 0 },
	{ "01/Jan/1970:00:00:00 Z", 1, 0 },
	{ "01/Jan/1970:00:00:00 z", 0, 0 },
	{ "31/Dec/1969:23:59:59 +0000", 1, -1 },
	{ "01/Jan/1970:01:00:00 +01:00", 1, 0 },
	{ "01/Jan/1970:01:00:01 +010001", 1, 0 },
	{ "01/Jan/1970:01:00:01 +01:00:01", 1, 0 },
	{ "01/Jan/1970:01:00:01 +01:00:01.5", 1, 0 },
	{ "01/Jan/1970:01:00:01 +01:0001", 0, 0 },
	{ "01/Jan/1970:01:00:01 +0100:01", 0, 0 },
	{ "01/Jan/1970:00:00:00 +2400", 0, 0 },
	{ "02/Jan/1970:00:00:00 +2359", 1, 86400 - 86340 },
	{ "01/Jan/1970:00:00:00 +0060", 0, 0 },
	{ "01/Jan/1970:00:00:00 +000", 0, 0 },
	{ "01/Jan/1970:00:00:00 +00000", 0, 0 },
	{ "01/Jan/1970:00:00:00 +0000 ", 0, 0 },
	{ "01/Jan/1970:00:00:00  \t+0000", 1, 0 },
	{ "01/Jan/1970:00:00:00\x1c+0000", 1, 0 },
	{ "01/Jan/1970:00:00:00+0000", 0, 0 },
	{ "1/jan/1970:0:0:0 +0000", 1, 0 },
	{ " 1/JAN/1970:00:00:00 +0000", 1, 0 },
	{ " 0/Jan/1970:00:00:00 +0000", 0, 0 },
	{ "00/Jan/1970:00:00:00 +0000", 0, 0 },
	{ "32/Jan/1970:00:00:00 +0000", 0, 0 },
	{ "31/Feb/2023:00:00:00 +0000", 0, 0 },
	{ "29/Feb/2023:00:00:00 +0000", 0, 0 },
	{ "29/Feb/2024:00:00:00 +0000", 1, 1709164800 },
	{ "29/Feb/2000:00:00:00 +0000", 1, 951782400 },
	{ "29/Feb/1900:00:00:00 +0000", 0, 0 },
	{ "31/Apr/2024:00:00:00 +0000", 0, 0 },
	{ "30/Apr/2024:00:00:00 +0000", 1, 1714435200 },
	{ "01/Foo/2024:00:00:00 +0000", 0, 0 },
	{ "99/Foo/2024:00:00:00 +0000", 0, 0 },
	{ "01/Jan/0000:00:00:00 +0000", 0, 0 },
	{ "01/Jan/0001:00:00:00 +0000", 1, -62135596800LL },
	{ "31/Dec/9999:23:59:59 +0000", 1, 253402300799LL },
	{ "01/Jan/10000:00:00:00 +0000", 0, 0 },
	{ "01/Jan/970:00:00:00 +0000", 0, 0 },
	{ "01/Jan/2024:24:00:00 +0000", 0, 0 },
	{ "01/Jan/2024:23:60:00 +0000", 0, 0 },
	{ "01/Jan/2024:23:59:60 +0000", 0, 0 },
	{ "01/Jan/2024:23:59:61 +0000", 0, 0 },
	{ "01/Jan/2024:23:59:62 +0000", 0, 0 },
	{ "01/Jan/2024:23:59 +0000", 0, 0 },
	{ "01/Jan/2024:7:5:3 -0000", 1, 1704092703 },
	{ "01/Mar/2024:00:00:00.5 -0400", 0, 0 },
	{ "", 0, 0 },
	{ "01/Jan/2024", 0, 0 },
};

static const struct {
	const char	*s;
	int		 status;
} statuses[] = {
	{ "200", 200 }, { "404", 404 }, { "0", 0 }, { "", -1 }, { "2x0", -1 },
	{ "-", -1 }, { "1234567890", -1 },
};

/* A referer and whether the seed's urlparse accepts it. */
static const struct {
	const char	*s;
	int		 ok;
} referers[] = {
	{ "-", 1 },
	{ "", 1 },
	{ "https://www.google.com/", 1 },
	{ "http://[::1]/x", 1 },
	{ "http://[::1/x", 0 },
	{ "http://x]/", 0 },
	{ "http://[1.2.3.4]/", 0 },
	{ "http://h/p?[x", 1 },
	{ "[weird]", 1 },
	{ "//[bad]/x", 0 },
	{ "\t http://[\r::1]/x", 1 },
};

static const struct {
	const char	*s;
	int		 valid;
	int64_t		 t;
} isos[] = {
	{ "2024-03-01T00:00:00Z", 1, 1709251200 },
	{ "1970-01-01T00:00:00Z", 1, 0 },
	{ "2023-02-29T00:00:00Z", 0, 0 },
	{ "2024-13-01T00:00:00Z", 0, 0 },
	{ "2024-03-01 00:00:00Z", 0, 0 },
	{ "2024-03-01T00:00:00", 0, 0 },
	{ "2024-03-01T24:00:00Z", 0, 0 },
};

int
main(void)
{
	struct request	 r;
	char		*scratch;
	size_t		 i, len;
	int64_t		 t;
	int		 rc;

	if ((scratch = malloc(4096)) == NULL)
		return 1;
	for (i = 0; i < sizeof requests / sizeof requests[0]; i++) {
		len = strlen(requests[i].req);
		rc = access_request(requests[i].req, len, scratch, &r);
		if (requests[i].path == NULL) {
			ok(rc == -1, "request \"%s\" is invalid",
			    requests[i].req);
			continue;
		}
		ok(rc == 0 && r.method_len == strlen(requests[i].method) &&
		    memcmp(r.method, requests[i].method, r.method_len) == 0 &&
		    r.path_len == strlen(requests[i].path) &&
		    memcmp(r.path, requests[i].path, r.path_len) == 0,
		    "request \"%s\" -> %s \"%s\"", requests[i].req,
		    requests[i].method, requests[i].path);
		if (rc == 0 && !(r.path_len == strlen(requests[i].path) &&
		    memcmp(r.path, requests[i].path, r.path_len) == 0))
			diag("got \"%.*s\"", (int)r.path_len, r.path);
	}
	for (i = 0; i < sizeof times / sizeof times[0]; i++) {
		t = 12345;
		rc = access_time(times[i].s, strlen(times[i].s), &t);
		if (times[i].valid) {
			ok(rc == 0 && t == times[i].t, "time \"%s\" = %lld",
			    times[i].s, (long long)times[i].t);
			if (rc != 0 || t != times[i].t)
				diag("got rc %d, %lld", rc, (long long)t);
		} else
			ok(rc == -1, "time \"%s\" is invalid", times[i].s);
	}
	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		ok(access_status(statuses[i].s, strlen(statuses[i].s)) ==
		    statuses[i].status, "status \"%s\" = %d", statuses[i].s,
		    statuses[i].status);
	for (i = 0; i < sizeof referers / sizeof referers[0]; i++)
		ok(access_url_ok(referers[i].s, strlen(referers[i].s),
		    scratch) == referers[i].ok, "referer \"%s\" %s",
		    referers[i].s, referers[i].ok ? "accepted" : "refused");
	for (i = 0; i < sizeof isos / sizeof isos[0]; i++) {
		rc = access_iso_time(isos[i].s, strlen(isos[i].s), &t);
		ok(isos[i].valid ? rc == 0 && t == isos[i].t : rc == -1,
		    "iso time \"%s\" %s", isos[i].s, isos[i].valid ? "valid" :
		    "invalid");
	}
	/* A time with a NUL byte in it is not a time. */
	ok(access_time("01/Jan/1970:00:00:00 +0000\0", 27, &t) == -1,
	    "time with a trailing NUL is invalid");
	free(scratch);
	return tap_done();
}
