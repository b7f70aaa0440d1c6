/*
 * paths.c: the default socket path, and the checks on the private
 * directory under /tmp that holds it when there is no runtime directory.
 */
#include "paths.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATHS_TMP_FMT	"/tmp/clfd-%lu"

/*
 * Check what snprintf returned for a path formatted into a buffer of len
 * bytes: 0 when the whole path is there and fits a socket address, else
 * -1 (ENAMETOOLONG).
 */
static int
paths_fit(size_t len, int n)
{
	struct sockaddr_un	sun;

	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
paths_default_socket(char *buf, size_t len)
{
	const char	*s;

	if ((s = getenv("CLFD_SOCKET")) != NULL && *s != '\0')
		return paths_fit(len, snprintf(buf, len, "%s", s));
	if ((s = getenv("XDG_RUNTIME_DIR")) != NULL && *s == '/')
		return paths_fit(len, snprintf(buf, len, "%s/clfd.sock", s));
	return paths_fit(len, snprintf(buf, len, PATHS_TMP_FMT
	    "/clfd.sock", (unsigned long)getuid()));
}

int
paths_prepare_dir(const char *sockpath, char *err, size_t errlen)
{
	char		 dir[sizeof ((struct sockaddr_un *)0)->sun_path];
	char		 tmpdir[64];
	const char	*slash;
	struct stat	 st;
	size_t		 n;

	if ((slash = strrchr(sockpath, '/')) == NULL)
		return 0;		/* relative to the working directory */
	n = (size_t)(slash - sockpath);
	if (n == 0)
		return 0;		/* in "/" */
	if (n >= sizeof dir) {
		snprintf(err, errlen, "%s: path too long", sockpath);
		return -1;
	}
	memcpy(dir, sockpath, n);
	dir[n] = '\0';
	snprintf(tmpdir, sizeof tmpdir, PATHS_TMP_FMT, (unsigned long)getuid());

	if (strcmp(dir, tmpdir) != 0) {
		if (stat(dir, &st) == -1) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: not a directory", dir);
			return -1;
		}
		return 0;
	}

	/* The shared /tmp fallback: ours alone, or not at all. */
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if (st.st_uid != getuid()) {
		snprintf(err, errlen, "%s: owned by uid %lu, not by us", dir,
		    (unsigned long)st.st_uid);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(err, errlen, "%s: writable by group or others", dir);
		return -1;
	}
	return 0;
}
