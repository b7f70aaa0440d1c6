/*
 * log.c: clfd's logging, on stderr.
 *
 * When the journal reads our stderr (JOURNAL_STREAM names stderr's
 * device and inode) each line starts with a "<N>" syslog priority, which
 * journald turns into the entry's priority; otherwise lines carry the
 * time and a "clfd[pid]: " or "clfd worker N: " prefix.
 */
#include "log.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char	log_name[64] = "clfd";
static int	log_journal;
static int	log_verbose;

/* 1 when JOURNAL_STREAM is "dev:ino" of our stderr. */
static int
log_is_journal(void)
{
	const char		*s;
	unsigned long long	 dev, ino;
	struct stat		 st;

	if ((s = getenv("JOURNAL_STREAM")) == NULL)
		return 0;
	if (sscanf(s, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *procname, int debug)
{
	log_journal = log_is_journal();
	log_verbose = debug;
	log_procname(procname);
}

void
log_procname(const char *procname)
{
	snprintf(log_name, sizeof log_name, "%s", procname);
}

/*
 * "2024-03-01T10:20:30.123+01:00 " (local time, RFC 3339) into buf: a log
 * file of its own needs the time the journal would have added. Its length.
 */
static size_t
log_stamp(char *buf, size_t len)
{
	struct timespec	ts;
	struct tm	tm;
	char		z[8];
	size_t		n;
	int		r;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (localtime_r(&ts.tv_sec, &tm) == NULL ||
	    (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0 ||
	    strftime(z, sizeof z, "%z", &tm) != 5)
		return 0;
	r = snprintf(buf + n, len - n, ".%03ld%.3s:%.2s ",
	    (long)(ts.tv_nsec / 1000000), z, z + 3);
	return r > 0 && (size_t)r < len - n ? n + (size_t)r : 0;
}

/*
 * Format one line and write it to stderr in a single write. errno is
 * left as it was: callers log a failure, then look at why it failed.
 */
static void
log_vlog(int pri, const char *err, const char *fmt, va_list ap)
{
	char	line[2048];
	size_t	n;
	int	r, saved = errno;

	n = 0;
	if (log_journal)
		r = snprintf(line, sizeof line, "<%d>", pri);
	else {
		n = log_stamp(line, sizeof line);
		if (strcmp(log_name, "clfd") == 0)
			r = snprintf(line + n, sizeof line - n, "clfd[%ld]: ",
			    (long)getpid());
		else
			r = snprintf(line + n, sizeof line - n, "clfd %s: ",
			    log_name);
	}
	n += r > 0 ? (size_t)r : 0;
	if (log_journal && strcmp(log_name, "clfd") != 0) {
		r = snprintf(line + n, sizeof line - n, "%s: ", log_name);
		n += r > 0 ? (size_t)r : 0;
	}
	/* Leave room for ": strerror" and the newline. */
	r = vsnprintf(line + n, sizeof line - n - 128, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof line - n - 128 ? (size_t)r :
		    sizeof line - n - 129;
	r = snprintf(line + n, sizeof line - n, "%s%s\n",
	    err != NULL ? ": " : "", err != NULL ? err : "");
	n += r > 0 ? (size_t)r : 0;
	if (n >= sizeof line)
		n = sizeof line - 1;
	(void)!write(STDERR_FILENO, line, n);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	const char	*err = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_vlog(LOG_WARNING, err, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_errx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(LOG_ERR, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vlog(LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char	*err = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
