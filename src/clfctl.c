/*
 * clfctl.c: the command-line client of clfd.
 *
 * Turns a command line into JSON-line requests on clfd's Unix socket (see
 * clfctl(1) and the protocol in clfd(8)), prints the replies -- a job's
 * RESULT as indented JSON, compact JSON or count<TAB>path lines -- draws a
 * progress bar on a terminal. It talks to the clfd system service when
 * its socket exists, else, like tmux with its server, to a per-user clfd
 * that it starts when nothing listens on the per-user default socket.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* ppoll */
#endif

#include "cluster.h"
#include "paths.h"
#include "suggest.h"
#include "timearg.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLFCTL_VERSION
#define CLFCTL_VERSION	"unknown"
#endif
/* The system service's socket (configure --with-system-socket). */
#ifndef CLFCTL_SYSTEM_SOCKET
#define CLFCTL_SYSTEM_SOCKET	"/run/clfd/clfd.sock"
#endif

/* Exit codes (clfctl(1)). */
#define EXIT_OK		0	/* success */
#define EXIT_FILES	1	/* job done with file errors, or cancelled */
#define EXIT_USAGE	2	/* bad command line */
#define EXIT_DOWN	3	/* daemon unreachable or gone mid-reply */
#define EXIT_REJECT	4	/* the daemon answered with an error */
#define EXIT_NOMATCH	5	/* no pattern matched a file */
#define EXIT_MALFORMED	6	/* most lines of a file were malformed */

#define REPLY_MAX	(256u << 20)	/* longest reply line accepted */
#define SHORT_TIMEOUT	30000		/* ms to wait for an immediate reply */
#define START_TIMEOUT	10000		/* ms to wait for an autostarted clfd */
#define IDLE_EXIT	"300"		/* autostarted clfd's idle exit, s */
#define SAMPLE_MAX	120		/* bytes of a malformed_example */

/* OUT_AUTO: a table for a result on a terminal, else JSON. */
enum output { OUT_JSON, OUT_COMPACT, OUT_TSV, OUT_NONE, OUT_TABLE, OUT_AUTO };
#define TABLE_ROWS	20	/* paths a table shows */

/* One connection to clfd, with a line buffer for its replies. */
struct conn {
	int	 fd;
	char	*buf;
	size_t	 off;		/* start of unread data */
	size_t	 len;		/* end of data */
	size_t	 cap;
};

/* What the command line asked for, across commands. */
struct opts {
	const char	*socket;	/* -s, else NULL */
	enum output	 output;
	int		 progress;	/* -1 default, 0 off, 1 on */
	int		 wait;		/* submit: wait for the result */
	int		 literal;	/* submit: names, not patterns */
	unsigned	 jobs;		/* map: -j */
	const char	*out_path;	/* map: -O */
	const char	*files_from;	/* map: --files-from */
	size_t		 top;		/* merge: --top */
};

static const char	*socket_path;	/* the socket in use */
static volatile sig_atomic_t interrupted;
static sigset_t		 waitmask;	/* the mask while blocked in ppoll */
static int		 sigint_caught;	/* SIGINT blocked but for ppoll */
static int		 bar_shown;	/* a progress bar is on the tty */

static void
usage_text(FILE *f)
{
	fprintf(f,
"usage: clfctl [-s SOCKET] COMMAND [ARGS]\n"
"  submit [--under P] [--status S] [--method M] [--since T] [--until T]\n"
"         [--exclude-name N] [--exclude-ext E] [--no-default-excludes]\n"
"         [--count-root] [--literal]\n"
"         [--format F] [--top N] [--no-wait] [--progress|--no-progress]\n"
"         [--no-cache] [-o json|compact|tsv|table] PATTERN...\n"
"         T: '2024-03-01 [10:20[:30]]' local time, ...Z or ...+02:00,\n"
"            @EPOCH, -1h, -30min, +2d, now, today, yesterday, tomorrow\n"
"  map [submit's --under ... --format options] [-j N] [--files-from LIST]\n"
"         -O PARTIAL [FILE...]    (no daemon: the files into one partial)\n"
"  merge [--top N] [-o json|compact|tsv|table] PARTIAL... (partials: a result)\n"
"  wait [--progress|--no-progress] [-o json|compact|tsv|table] ID\n"
"  result [-o json|compact|tsv|table] ID\n"
"  (a result is a table on a terminal, JSON elsewhere)\n"
"  status [-o json|compact|tsv|table] [ID]\n"
"  list [-o json|compact|tsv|table]    (on a terminal: a table)\n"
"  cancel ID    stats [-o json|compact]    ping [-o json|compact]\n"
"  cache clear\n"
"  -s SOCKET  clfd's socket (default: $CLFD_SOCKET, else the system\n"
"             service's " CLFCTL_SYSTEM_SOCKET " when it exists, else the\n"
"             per-user socket, where a clfd is started when none answers)\n"
"  -h  this help    -V  version\n"
"exit: 0 ok, 1 file errors or cancelled, 2 usage, 3 daemon unreachable,\n"
"      4 request rejected, 5 no file matched any pattern,\n"
"      6 most lines of a file malformed (the wrong --format?),\n"
"      130 interrupted while waiting (the job goes on)\n");
}

/* Print "clfctl: MESSAGE" on stderr, clearing a progress bar first. */
static void __attribute__((format(printf, 1, 2)))
warnx_(const char *fmt, ...)
{
	va_list	ap;

	if (bar_shown) {
		fputs("\r\033[K", stderr);
		bar_shown = 0;
	}
	fputs("clfctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list	ap;

	fputs("clfctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'clfctl -h'.\n", stderr);
	return EXIT_USAGE;
}

/*
 * An unknown option of cmd (NULL: a global one), named with the closest
 * long option when it looks misspelt: "did you mean --status?".
 */
static int
bad_option(const char *cmd, const char *arg, const struct option *opts)
{
	const char	*best = NULL;

	if (strncmp(arg, "--", 2) == 0)
		best = suggest_option(arg, opts);
	if (best != NULL)
		return usage_error("%s%sunknown option: %s; did you mean --%s?",
		    cmd != NULL ? cmd : "", cmd != NULL ? ": " : "", arg, best);
	return usage_error("%s%sunknown option: %s", cmd != NULL ? cmd : "",
	    cmd != NULL ? ": " : "", arg);
}

/* SIGINT while waiting for a job: only note it (see catch_sigint). */
static void
on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/*
 * While waiting for a job, ^C ends the wait (not the job, which outlives
 * the connection). SIGINT stays blocked except inside ppoll, so it cannot
 * slip in between a check and the wait: ppoll returns EINTR.
 */
static void
catch_sigint(void)
{
	struct sigaction	sa;
	sigset_t		block;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGINT);
	sigint_caught = 1;
}

/* Connect to a Unix socket; the fd, or -1 with errno set. */
static int
conn_connect(const char *path)
{
	struct sockaddr_un	sun;
	int			fd, saved;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Close a connection and free its buffer; c can be reused. */
static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

/* Send one request as a JSON line. 0, or -1 with a message printed. */
static int
conn_send(struct conn *c, json_t *req)
{
	char	*s;
	size_t	 len, done = 0;
	ssize_t	 n;
	int	 rc = -1;

	if ((s = json_dumps(req, JSON_COMPACT)) == NULL) {
		warnx_("cannot encode the request");
		return -1;
	}
	len = strlen(s);
	s[len++] = '\n';	/* json_dumps's NUL becomes the newline */
	while (done < len) {
		n = send(c->fd, s + done, len - done, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		/*
		 * Refused before the daemon read us (limit): its one line
		 * is waiting to be read, and says why.
		 */
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			break;
		if (n == -1) {
			warnx_("%s: send: %s", socket_path, strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	rc = 0;
out:
	free(s);
	return rc;
}

/*
 * Read the next reply line (at most REPLY_MAX bytes), without its newline;
 * it points into the connection's buffer, valid until the next read.
 * timeout is in ms, -1 for none. NULL with a message printed (daemon
 * closed mid-reply, timeout, interrupted).
 */
static char *
conn_line(struct conn *c, int timeout, size_t *lenp)
{
	struct pollfd	 pfd;
	struct timespec	 ts, *tsp = NULL;
	char		*nl, *p, *line;
	size_t		 ncap, seen = c->off;
	ssize_t		 n;
	int		 r;

	for (;;) {
		/* (only the new bytes: a 60 MB line comes in 4000 reads) */
		nl = c->len > seen ? memchr(c->buf + seen, '\n',
		    c->len - seen) : NULL;
		if (nl != NULL)
			break;
		seen = c->len;
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			seen -= c->off;
			c->off = 0;
		}
		if (c->len == c->cap) {
			if (c->cap >= REPLY_MAX) {
				warnx_("reply longer than %u bytes", REPLY_MAX);
				return NULL;
			}
			ncap = c->cap == 0 ? 65536 : c->cap * 2;
			if (ncap > REPLY_MAX)
				ncap = REPLY_MAX;
			if ((p = realloc(c->buf, ncap)) == NULL) {
				warnx_("out of memory");
				return NULL;
			}
			c->buf = p;
			c->cap = ncap;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if (timeout >= 0) {
			ts.tv_sec = timeout / 1000;
			ts.tv_nsec = (long)(timeout % 1000) * 1000000;
			tsp = &ts;
		}
		r = ppoll(&pfd, 1, tsp, sigint_caught ? &waitmask : NULL);
		if (r == -1 && errno == EINTR && !interrupted)
			continue;
		if (r == -1) {
			if (errno != EINTR)
				warnx_("ppoll: %s", strerror(errno));
			return NULL;
		}
		if (r == 0) {
			warnx_("%s: no reply within %d.%03d s", socket_path,
			    timeout / 1000, timeout % 1000);
			return NULL;
		}
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n == -1 && errno == EINTR && !interrupted)
			continue;
		if (n == -1 && errno == EINTR)
			return NULL;
		if (n == -1) {
			warnx_("%s: read: %s", socket_path, strerror(errno));
			return NULL;
		}
		if (n == 0) {
			warnx_("%s: daemon closed the connection%s",
			    socket_path, c->len > 0 ? " mid-reply" : "");
			return NULL;
		}
		c->len += (size_t)n;
	}
	line = c->buf + c->off;
	*lenp = (size_t)(nl - line);
	c->off = (size_t)(nl - c->buf) + 1;
	return line;
}

/* Parse a reply line as a JSON object; NULL with a message printed. */
static json_t *
conn_parse(const char *line, size_t len)
{
	json_error_t	 jerr;
	json_t		*msg;

	msg = json_loadb(line, len, 0, &jerr);
	if (msg == NULL || !json_is_object(msg)) {
		warnx_("bad reply from the daemon: %s",
		    msg == NULL ? jerr.text : "not an object");
		json_decref(msg);
		return NULL;
	}
	return msg;
}

/*
 * Read the next reply line (at most REPLY_MAX bytes) and parse it as a
 * JSON object. timeout is in ms, -1 for none. Returns the object, or NULL
 * with a message printed (daemon closed mid-reply, timeout, garbage,
 * interrupted).
 */
static json_t *
conn_read(struct conn *c, int timeout)
{
	char		*line;
	size_t		 len;

	if ((line = conn_line(c, timeout, &len)) == NULL)
		return NULL;
	return conn_parse(line, len);
}

/*
 * How long (ms) to wait for the reply of an op the daemon answers at once
 * (ping, stats, list, status, result, cancel): SHORT_TIMEOUT, or
 * $CLFCTL_REPLY_TIMEOUT ms when that is a positive number (for tests).
 * A submit is answered only once its patterns are expanded, which may take
 * any time: its reply is waited for without a timeout.
 */
static int
reply_timeout(void)
{
	const char	*env = getenv("CLFCTL_REPLY_TIMEOUT");
	char		*end;
	long		 v;

	if (env == NULL || *env == '\0')
		return SHORT_TIMEOUT;
	errno = 0;
	v = strtol(env, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0 || v > INT_MAX)
		return SHORT_TIMEOUT;
	return (int)v;
}

/* Send req and read one reply; NULL with a message printed on failure. */
static json_t *
conn_call(struct conn *c, json_t *req, int timeout)
{
	if (conn_send(c, req) == -1)
		return NULL;
	return conn_read(c, timeout);
}

/*
 * An error reply or result: print "clfctl: CODE: message" and say how to
 * exit. A cancelled job is exit 1, a daemon stopping under us exit 3,
 * any other refusal exit 4.
 */
static int
reply_error(json_t *msg)
{
	json_t		*err = json_object_get(msg, "error");
	const char	*code, *text;

	code = json_string_value(json_object_get(err, "code"));
	text = json_string_value(json_object_get(err, "message"));
	warnx_("%s: %s", code != NULL ? code : "error",
	    text != NULL ? text : "(no message)");
	if (code != NULL && strcmp(code, "cancelled") == 0)
		return EXIT_FILES;
	if (code != NULL && strcmp(code, "shutting_down") == 0)
		return EXIT_DOWN;
	return EXIT_REJECT;
}

/* The log of the autostarted clfd on path: clfd.log beside its socket. */
static void
autostart_log(const char *path, char *logf, size_t len)
{
	char	*slash;

	snprintf(logf, len, "%s", path);
	if ((slash = strrchr(logf, '/')) != NULL &&
	    (size_t)(slash - logf) + sizeof "/clfd.log" <= len)
		memcpy(slash + 1, "clfd.log", sizeof "clfd.log");
}

/* Start clfd on path, detached in its own session; its pid or -1. */
static pid_t
autostart_spawn(const char *path, const char *logf)
{
	char	 exe[PATH_MAX], *slash;
	ssize_t	 n;
	pid_t	 pid;
	int	 fd;

	exe[0] = '\0';
	n = readlink("/proc/self/exe", exe, sizeof exe - 16);
	if (n > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL)
			memcpy(slash + 1, "clfd", sizeof "clfd");
		if (access(exe, X_OK) == -1)
			exe[0] = '\0';
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		warnx_("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		return pid;
	setsid();
	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	fd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1)
		fd = open("/dev/null", O_WRONLY);
	if (fd != -1) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	signal(SIGINT, SIG_DFL);
	if (exe[0] != '\0')
		execl(exe, "clfd", "-s", path, "-i", IDLE_EXIT, (char *)NULL);
	execlp("clfd", "clfd", "-s", path, "-i", IDLE_EXIT, (char *)NULL);
	fprintf(stderr, "clfctl: cannot run clfd: %s\n", strerror(errno));
	_exit(127);
}

/* Monotonic milliseconds, for the autostart deadline. */
static long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Connect to a clfd that answers ping on path, trying until the deadline
 * (ms, monotonic). The pid that answered (ours, or one that won a start
 * race) with c connected, or -1.
 */
static pid_t
autostart_wait(struct conn *c, const char *path, pid_t pid, long deadline)
{
	struct timespec	 ts;
	json_t		*req, *rep;
	long		 delay = 10;
	pid_t		 answered = -1;
	int		 st, exited = 0, ok = 0;

	req = json_pack("{s:s}", "op", "ping");
	while (!ok) {
		if ((c->fd = conn_connect(path)) != -1) {
			rep = conn_call(c, req, START_TIMEOUT);
			ok = rep != NULL && json_is_true(json_object_get(rep,
			    "ok"));
			if (ok)
				answered = (pid_t)json_integer_value(
				    json_object_get(rep, "pid"));
			json_decref(rep);
			if (ok)
				break;
			conn_close(c);
		}
		if (exited || now_ms() >= deadline)
			break;
		/* A clfd that lost a start race to another exits: try once more. */
		if (waitpid(pid, &st, WNOHANG) == pid)
			exited = 1;
		ts.tv_sec = 0;
		ts.tv_nsec = delay * 1000000;
		nanosleep(&ts, NULL);
		if (delay < 200)
			delay *= 2;
	}
	json_decref(req);
	return ok ? answered : -1;
}

/*
 * Connect c to the system service's socket. 1 when there is none (no
 * such file), 0 connected, or an exit code: a system service that is
 * there but refuses us is never bypassed by a per-user clfd.
 */
static int
connect_system(struct conn *c)
{
	struct stat	 st;
	struct group	*gr;
	int		 saved;

	socket_path = CLFCTL_SYSTEM_SOCKET;
	if ((c->fd = conn_connect(socket_path)) != -1)
		return 0;
	saved = errno;
	if (saved == ENOENT || saved == ENOTDIR)
		return 1;
	if (saved == EACCES || saved == EPERM) {
		gr = stat(socket_path, &st) == 0 ? getgrgid(st.st_gid) : NULL;
		warnx_("%s is the clfd system service; you need to be in group "
		    "%s", socket_path, gr != NULL ? gr->gr_name : "adm");
	} else
		warnx_("cannot connect to the clfd system service on %s: %s",
		    socket_path, strerror(saved));
	return EXIT_DOWN;
}

/*
 * Connect c to clfd. With -s or $CLFD_SOCKET, that socket or exit 3; else
 * the system service's socket when it exists; else the per-user default
 * socket, starting a clfd there when none answers (the order of clfctl(1)).
 * Returns 0 or an exit code.
 */
static int
connect_daemon(struct conn *c, const char *opt_socket)
{
	static char	 defpath[PATH_MAX];
	char		 err[PATH_MAX + 128], logf[PATH_MAX + 16];
	const char	*env = getenv("CLFD_SOCKET");
	pid_t		 pid, up;
	int		 saved, rc;

	c->fd = -1;
	if (opt_socket != NULL || (env != NULL && *env != '\0')) {
		socket_path = opt_socket != NULL ? opt_socket : env;
		if ((c->fd = conn_connect(socket_path)) == -1) {
			warnx_("cannot connect to %s: %s", socket_path,
			    strerror(errno));
			return EXIT_DOWN;
		}
		return 0;
	}
	if ((rc = connect_system(c)) != 1)
		return rc;
	if (paths_default_socket(defpath, sizeof defpath) == -1) {
		warnx_("cannot find the default socket");
		return EXIT_DOWN;
	}
	socket_path = defpath;
	if ((c->fd = conn_connect(defpath)) != -1)
		return 0;
	saved = errno;
	if (saved != ENOENT && saved != ECONNREFUSED) {
		warnx_("cannot connect to %s: %s", defpath, strerror(saved));
		return EXIT_DOWN;
	}
	if (paths_prepare_dir(defpath, err, sizeof err) == -1) {
		warnx_("cannot start clfd: %s", err);
		return EXIT_DOWN;
	}
	autostart_log(defpath, logf, sizeof logf);
	if ((pid = autostart_spawn(defpath, logf)) == -1)
		return EXIT_DOWN;
	if ((up = autostart_wait(c, defpath, pid, now_ms() +
	    START_TIMEOUT)) == -1) {
		warnx_("started clfd pid %ld but it does not answer on %s "
		    "(see %s)", (long)pid, defpath, logf);
		return EXIT_DOWN;
	}
	/* (another clfctl's clfd may have won the race: it says nothing) */
	if (up == pid)
		warnx_("started clfd pid %ld on %s, log %s; it exits after "
		    "%s s idle with no result kept", (long)pid, defpath, logf,
		    IDLE_EXIT);
	return 0;
}

/* Human-readable byte count into buf. */
static void
fmt_bytes(char *buf, size_t len, double b)
{
	const char	*u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t		 i = 0;

	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(buf, len, i == 0 ? "%.0f %s" : "%.1f %s", b, u[i]);
}

/*
 * Show one progress state: a bar redrawn in place on a terminal, a line per
 * event elsewhere (only when asked with --progress).
 */
static void
progress_show(json_int_t job, json_int_t done, json_int_t total,
    json_int_t bytes)
{
	char	bar[31], size[32];
	size_t	i, fill;

	fmt_bytes(size, sizeof size, (double)bytes);
	if (!isatty(STDERR_FILENO)) {
		fprintf(stderr, "clfctl: job %lld: %lld/%lld files, %lld bytes\n",
		    (long long)job, (long long)done, (long long)total,
		    (long long)bytes);
		return;
	}
	fill = total > 0 && done <= total ?
	    (size_t)(done * (json_int_t)(sizeof bar - 1) / total) : 0;
	for (i = 0; i < sizeof bar - 1; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[sizeof bar - 1] = '\0';
	fprintf(stderr, "\r\033[Kjob %lld [%s] %lld/%lld files, %s",
	    (long long)job, bar, (long long)done, (long long)total, size);
	bar_shown = 1;
}

/* Wipe the progress bar so that the next output starts a clean line. */
static void
progress_clear(void)
{
	if (bar_shown) {
		fputs("\r\033[K", stderr);
		bar_shown = 0;
	}
}

/* Write one TSV field, control bytes as \xHH so a line stays a line. */
static void
tsv_put(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	}
}

/*
 * Warn that most lines of a file are malformed, with the first of them as
 * the daemon kept it (control bytes as \xHH, '"' and '\' escaped, cut).
 */
static void
warn_malformed(json_t *file, const char *format)
{
	const char	*ex, *s;
	char		 buf[4 * SAMPLE_MAX + 8];
	size_t		 o = 0;

	ex = json_string_value(json_object_get(file, "malformed_example"));
	for (s = ex; s != NULL && *s != '\0' && o + 5 < sizeof buf; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x",
			    (unsigned char)*s);
		else {
			if (*s == '"' || *s == '\\')
				buf[o++] = '\\';
			buf[o++] = *s;
		}
	}
	buf[o] = '\0';
	warnx_("%s: %lld of %lld lines malformed for format \"%s\"%s%s%s%s",
	    json_string_value(json_object_get(file, "path")),
	    (long long)json_integer_value(json_object_get(file, "malformed")),
	    (long long)json_integer_value(json_object_get(file, "lines")),
	    format != NULL ? format : "default",
	    ex != NULL ? "; the first: \"" : "", buf,
	    ex != NULL && strlen(ex) >= SAMPLE_MAX ? "..." : "",
	    ex != NULL ? "\"" : "");
}

/* n with thousands separators, into buf. */
static const char *
fmt_count(char *buf, size_t len, json_int_t n)
{
	char	tmp[32];
	size_t	i, k, o = 0, l;

	l = (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)n);
	for (i = 0; i < l && o + 2 < len; i++) {
		k = l - i;
		if (i > 0 && tmp[i - 1] != '-' && k % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

/*
 * A result for a person at a terminal: the biggest counts (TABLE_ROWS of
 * them), then one line of totals; control bytes in paths as \xHH.
 */
static void
print_table(json_t *res)
{
	json_t		*counts, *tot, *v;
	const char	*key;
	char		 a[32], b[32], c[32], d[32], e[32];
	size_t		 n = 0, total;
	int		 width = 5;

	counts = json_object_get(res, "counts");
	tot = json_object_get(res, "totals");
	total = json_object_size(counts);
	json_object_foreach(counts, key, v) {
		if (n++ == TABLE_ROWS)
			break;
		if ((int)strlen(fmt_count(a, sizeof a,
		    json_integer_value(v))) > width)
			width = (int)strlen(a);
	}
	if (total > 0)
		printf("%*s  PATH\n", width, "COUNT");
	n = 0;
	json_object_foreach(counts, key, v) {
		if (n++ == TABLE_ROWS)
			break;
		printf("%*s  ", width, fmt_count(a, sizeof a,
		    json_integer_value(v)));
		tsv_put(key);
		putchar('\n');
	}
	if (total > TABLE_ROWS)
		printf("%*s  (%zu more paths: -o json or -o tsv for all)\n",
		    width, "...", total - TABLE_ROWS);
	printf("%s file%s, %s lines: %s counted, %s malformed, %s excluded; "
	    "%lld paths\n", fmt_count(a, sizeof a, json_integer_value(
	    json_object_get(tot, "files"))), json_integer_value(
	    json_object_get(tot, "files")) == 1 ? "" : "s",
	    fmt_count(b, sizeof b, json_integer_value(json_object_get(tot,
	    "lines"))), fmt_count(c, sizeof c, json_integer_value(
	    json_object_get(tot, "counted"))), fmt_count(d, sizeof d,
	    json_integer_value(json_object_get(tot, "malformed"))),
	    fmt_count(e, sizeof e, json_integer_value(json_object_get(tot,
	    "filtered"))), (long long)json_integer_value(json_object_get(tot,
	    "distinct")));
}

/* A time from the daemon (UTC seconds) as local ISO 8601, else "-". */
static const char *
fmt_time(char *buf, size_t len, const json_t *v)
{
	struct tm	 tm;
	time_t		 t;
	char		 z[8];
	size_t		 n;

	if (!json_is_integer(v))
		return "-";
	t = (time_t)json_integer_value(v);
	if (localtime_r(&t, &tm) == NULL || (n = strftime(buf, len,
	    "%Y-%m-%dT%H:%M:%S", &tm)) == 0 ||
	    strftime(z, sizeof z, "%z", &tm) != 5)
		return "-";
	/* "+0100" as RFC 3339 has it, "+01:00" (as --since takes it too) */
	snprintf(buf + n, len - n, "%.3s:%.2s", z, z + 3);
	return buf;
}

/* A job's patterns, space-separated, control bytes as \xHH. */
static void
put_patterns(const json_t *job)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(json_object_get(job, "patterns"), i, v) {
		if (i > 0)
			putchar(' ');
		tsv_put(json_string_value(v) != NULL ? json_string_value(v) :
		    "?");
	}
}

/* The jobs of a list reply for a person: one line each, times local. */
static void
print_jobs_table(const json_t *jobs)
{
	json_t	*v;
	char	 a[64], b[40];
	size_t	 i;
	int	 wid = 3, wfiles = 5, n;

	if (json_array_size(jobs) == 0) {
		printf("no jobs\n");
		return;
	}
	json_array_foreach(jobs, i, v) {
		n = snprintf(a, sizeof a, "%lld", (long long)
		    json_integer_value(json_object_get(v, "job")));
		wid = n > wid ? n : wid;
		n = snprintf(a, sizeof a, "%lld/%lld", (long long)
		    json_integer_value(json_object_get(v, "files_done")),
		    (long long)json_integer_value(json_object_get(v,
		    "files_total")));
		wfiles = n > wfiles ? n : wfiles;
	}
	printf("%*s  %-9s  %*s  %-25s  PATTERNS\n", wid, "JOB", "STATE",
	    wfiles, "FILES", "SUBMITTED");
	json_array_foreach(jobs, i, v) {
		snprintf(a, sizeof a, "%lld/%lld", (long long)
		    json_integer_value(json_object_get(v, "files_done")),
		    (long long)json_integer_value(json_object_get(v,
		    "files_total")));
		printf("%*lld  %-9s  %*s  %-25s  ", wid, (long long)
		    json_integer_value(json_object_get(v, "job")),
		    json_string_value(json_object_get(v, "state")), wfiles, a,
		    fmt_time(b, sizeof b, json_object_get(v, "submitted")));
		put_patterns(v);
		putchar('\n');
	}
}

/* One job's status for a person: a field a line, times local. */
static void
print_status_table(const json_t *st)
{
	char	a[40];

	printf("job        %lld\n", (long long)json_integer_value(
	    json_object_get(st, "job")));
	printf("state      %s\n", json_string_value(json_object_get(st,
	    "state")));
	printf("files      %lld of %lld done, %lld failed\n",
	    (long long)json_integer_value(json_object_get(st, "files_done")),
	    (long long)json_integer_value(json_object_get(st, "files_total")),
	    (long long)json_integer_value(json_object_get(st,
	    "files_failed")));
	printf("bytes      %s\n", fmt_count(a, sizeof a, json_integer_value(
	    json_object_get(st, "bytes_done"))));
	printf("submitted  %s\n", fmt_time(a, sizeof a, json_object_get(st,
	    "submitted")));
	printf("finished   %s\n", fmt_time(a, sizeof a, json_object_get(st,
	    "finished")));
	printf("patterns   ");
	put_patterns(st);
	putchar('\n');
}

/* A job of a list or status reply as a TSV line. */
static void
print_job_tsv(const json_t *v)
{
	printf("%lld\t%s\t%lld\t%lld\t%lld\n",
	    (long long)json_integer_value(json_object_get(v, "job")),
	    json_string_value(json_object_get(v, "state")),
	    (long long)json_integer_value(json_object_get(v, "files_done")),
	    (long long)json_integer_value(json_object_get(v, "files_total")),
	    (long long)json_integer_value(json_object_get(v, "submitted")));
}

/* Print a JSON document in the chosen style. */
static void
print_json(json_t *doc, enum output out)
{
	json_dumpf(doc, stdout, JSON_REAL_PRECISION(6) |
	    (out == OUT_COMPACT ? JSON_COMPACT : JSON_INDENT(2)));
	putchar('\n');
}

/*
 * Print a job's RESULT and return the exit code it means: 0 done and
 * clean, 1 done with a file error (or partial file) or cancelled, 5 when
 * every pattern was unmatched (a typo in a cron job must not pass as an
 * empty success).
 */
static int
print_result(json_t *res, enum output out)
{
	json_t		*v, *files;
	const char	*key, *state;
	json_int_t	 lines;
	size_t		 i;
	int		 rc = EXIT_OK, malformed = 0;

	json_object_del(res, "event");
	state = json_string_value(json_object_get(res, "state"));
	if (out == OUT_TABLE)
		print_table(res);
	else if (out == OUT_TSV) {
		json_object_foreach(json_object_get(res, "counts"), key, v) {
			printf("%lld\t", (long long)json_integer_value(v));
			tsv_put(key);
			putchar('\n');
		}
	} else if (out != OUT_NONE)
		print_json(res, out);
	json_array_foreach(json_object_get(res, "unmatched"), i, v)
		warnx_("no file matches %s", json_string_value(v));
	v = json_object_get(res, "unmatched");
	if (json_array_size(v) > 0 && json_array_size(v) ==
	    json_array_size(json_object_get(res, "patterns"))) {
		warnx_("error: no pattern matched a file");
		return EXIT_NOMATCH;
	}
	files = json_object_get(res, "files");
	json_array_foreach(files, i, v) {
		if (json_is_string(json_object_get(v, "error"))) {
			warnx_("%s: %s", json_string_value(json_object_get(v,
			    "path")), json_string_value(json_object_get(v,
			    "error")));
			rc = EXIT_FILES;
		}
		lines = json_integer_value(json_object_get(v, "lines"));
		if (lines > 0 && json_integer_value(json_object_get(v,
		    "malformed")) > lines / 2) {
			warn_malformed(v, json_string_value(json_object_get(res,
			    "format")));
			malformed = 1;
		}
	}
	if (json_integer_value(json_object_get(json_object_get(res, "totals"),
	    "failed")) > 0)
		rc = EXIT_FILES;
	if (state != NULL && strcmp(state, "cancelled") == 0)
		warnx_("job %lld was cancelled: partial, the counts of the %lld "
		    "of %lld files done before", (long long)json_integer_value(
		    json_object_get(res, "job")), (long long)json_integer_value(
		    json_object_get(res, "files_done")), (long long)
		    json_integer_value(json_object_get(res, "files_total")));
	if (state != NULL && strcmp(state, "done") != 0)
		rc = EXIT_FILES;
	if (rc == EXIT_OK && malformed)
		rc = EXIT_MALFORMED;
	return rc;
}

/*
 * Write compact JSON text indented as jansson's JSON_INDENT(2) writes it,
 * a byte at a time with no tree: a result of millions of paths is printed
 * as fast as it is read.
 */
static void
print_indented(const char *s, size_t len)
{
	size_t	i, depth = 0, k;
	int	instr = 0, esc = 0;
	char	c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (instr) {
			putchar(c);
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				instr = 0;
			continue;
		}
		switch (c) {
		case '"':
			instr = 1;
			putchar(c);
			break;
		case '{':
		case '[':
			putchar(c);
			if (i + 1 < len && (s[i + 1] == '}' || s[i + 1] == ']')) {
				putchar(s[++i]);
				break;
			}
			depth++;
			putchar('\n');
			for (k = 0; k < depth * 2; k++)
				putchar(' ');
			break;
		case '}':
		case ']':
			putchar('\n');
			depth = depth > 0 ? depth - 1 : 0;
			for (k = 0; k < depth * 2; k++)
				putchar(' ');
			putchar(c);
			break;
		case ',':
			putchar(',');
			putchar('\n');
			for (k = 0; k < depth * 2; k++)
				putchar(' ');
			break;
		case ':':
			fputs(": ", stdout);
			break;
		default:
			putchar(c);
		}
	}
	putchar('\n');
}

/*
 * Print a RESULT line (a "done" event's or a result reply's) and return
 * the exit code it means, as print_result does. Only what comes before
 * "counts" (always the last member) is parsed, for the warnings and the
 * exit code; the text itself is printed as it came (compact), indented
 * on the fly (json), or parsed whole only for -o tsv.
 */
static int
print_result_line(char *line, size_t len, enum output out)
{
	static const char	 ev[] = "{\"event\":\"done\",";
	static const char	 cm[] = ",\"counts\":";
	json_t			*head;
	const char		*p;
	char			*h, *body = line;
	size_t			 blen = len, hlen;
	int			 rc;

	if (out == OUT_TSV || out == OUT_TABLE || len < sizeof ev) {
		if ((head = conn_parse(line, len)) == NULL)
			return EXIT_DOWN;
		rc = print_result(head, out);
		json_decref(head);
		return rc;
	}
	/* {"event":"done",REST -> {REST */
	if (memcmp(line, ev, sizeof ev - 1) == 0) {
		body = line + sizeof ev - 2;
		blen = len - (sizeof ev - 2);
		body[0] = '{';
	}
	p = memmem(body, blen, cm, sizeof cm - 1);
	hlen = p != NULL ? (size_t)(p - body) : blen;
	if ((h = malloc(hlen + 2)) == NULL) {
		warnx_("out of memory");
		return EXIT_DOWN;
	}
	memcpy(h, body, hlen);
	if (p != NULL) {
		h[hlen++] = '}';
	}
	head = conn_parse(h, hlen);
	free(h);
	if (head == NULL)
		return EXIT_DOWN;
	if (out == OUT_COMPACT) {
		putchar('{');
		fwrite(body + 1, 1, blen - 1, stdout);
		putchar('\n');
	} else
		print_indented(body, blen);
	rc = print_result(head, OUT_NONE);
	json_decref(head);
	return rc;
}

/*
 * Read events of job until its "done" event and print the result. Progress
 * events are shown if asked. Returns the exit code.
 */
static int
await_done(struct conn *c, json_int_t job, int progress, enum output out,
    const char *sockopt)
{
	static const char	 done[] = "{\"event\":\"done\",\"ok\":true,";
	json_t			*msg, *ev;
	const char		*name;
	char			*line;
	size_t			 len;
	int			 rc, prc;

	for (;;) {
		line = conn_line(c, -1, &len);
		if (line != NULL && len >= sizeof done - 1 &&
		    memcmp(line, done, sizeof done - 1) == 0) {
			/* A result: printed without parsing its counts. */
			progress_clear();
			return print_result_line(line, len, out);
		}
		if ((msg = line != NULL ? conn_parse(line, len) : NULL) == NULL) {
			if (interrupted) {
				progress_clear();
				/* the hint names the socket -s named */
				warnx_("interrupted; job %lld goes on: "
				    "'clfctl%s%s wait %lld' or "
				    "'clfctl%s%s cancel %lld'", (long long)job,
				    sockopt != NULL ? " -s " : "",
				    sockopt != NULL ? sockopt : "", (long long)job,
				    sockopt != NULL ? " -s " : "",
				    sockopt != NULL ? sockopt : "", (long long)job);
				return 130;
			}
			return EXIT_DOWN;
		}
		ev = json_object_get(msg, "event");
		name = json_string_value(ev);
		if (ev == NULL) {
			/* an error reply to the wait itself */
			if (!json_is_true(json_object_get(msg, "ok"))) {
				rc = reply_error(msg);
				json_decref(msg);
				return rc;
			}
		} else if (name != NULL && strcmp(name, "progress") == 0) {
			if (progress)
				progress_show(job, json_integer_value(
				    json_object_get(msg, "files_done")),
				    json_integer_value(json_object_get(msg,
				    "files_total")), json_integer_value(
				    json_object_get(msg, "bytes_done")));
		} else if (name != NULL && strcmp(name, "done") == 0) {
			progress_clear();
			if (!json_is_true(json_object_get(msg, "ok")) &&
			    json_object_get(msg, "state") == NULL) {
				rc = reply_error(msg);	/* e.g. shutting_down */
				json_decref(msg);
				return rc;
			}
			rc = json_is_true(json_object_get(msg, "ok")) ?
			    EXIT_OK : reply_error(msg);
			prc = print_result(msg, out);
			if (prc != EXIT_OK && rc == EXIT_OK)
				rc = prc;
			json_decref(msg);
			return rc;
		}
		json_decref(msg);
	}
}

/* Append s to buf (escaping glob metacharacters if esc); -1 if too long. */
static int
pat_append(char *buf, size_t len, size_t *at, const char *s, int esc)
{
	for (; *s != '\0'; s++) {
		if (esc && strchr("*?[]{}\\", *s) != NULL) {
			if (*at + 1 >= len)
				return -1;
			buf[(*at)++] = '\\';
		}
		if (*at + 1 >= len)
			return -1;
		buf[(*at)++] = *s;
	}
	buf[*at] = '\0';
	return 0;
}

/*
 * Make a pattern absolute as a shell would read it: "~/x" and "~user/x"
 * against the home directory, "x" against the working directory, the
 * directory's own glob metacharacters escaped so that only the user's
 * part of the pattern globs. NULL if it does not fit.
 */
static char *
pattern_absolute(const char *pat, const char *cwd, int literal)
{
	struct passwd	*pw;
	char		 name[256], *buf;
	const char	*home = NULL, *rest = pat, *end;
	size_t		 len = PATH_MAX * 2, at = 0;

	if (pat[0] == '/' && !literal)
		return strdup(pat);
	if (pat[0] == '/') {
		/* a name: every glob character escaped */
		if ((buf = malloc(len)) == NULL)
			return NULL;
		if (pat_append(buf, len, &at, pat, 1) == -1) {
			free(buf);
			return NULL;
		}
		return buf;
	}
	if (pat[0] == '~' && !literal) {
		end = strchr(pat, '/');
		if (end == NULL)
			end = pat + strlen(pat);
		if (end == pat + 1) {
			home = getenv("HOME");
			if ((home == NULL || *home == '\0') &&
			    (pw = getpwuid(getuid())) != NULL)
				home = pw->pw_dir;
		} else if ((size_t)(end - pat) < sizeof name) {
			memcpy(name, pat + 1, (size_t)(end - pat) - 1);
			name[end - pat - 1] = '\0';
			if ((pw = getpwnam(name)) != NULL)
				home = pw->pw_dir;
		}
		if (home != NULL)
			rest = *end == '/' ? end + 1 : end;
	}
	if (home == NULL) {
		home = cwd;
		while (rest[0] == '.' && rest[1] == '/')
			rest += 2;
		while (rest[0] == '/')
			rest++;
		if (strcmp(rest, ".") == 0)
			rest = "";
	}
	if ((buf = malloc(len)) == NULL)
		return NULL;
	if (pat_append(buf, len, &at, home, 1) == -1)
		goto fail;
	while (at > 0 && buf[at - 1] == '/')	/* '/' is never escaped */
		buf[--at] = '\0';
	if ((*rest != '\0' || at == 0) &&
	    pat_append(buf, len, &at, "/", 0) == -1)
		goto fail;
	if (pat_append(buf, len, &at, rest, literal) == -1)
		goto fail;
	return buf;
fail:
	free(buf);
	return NULL;
}

/* A job id argument: a positive integer, else -1. */
static json_int_t
parse_id(const char *s)
{
	char		*end;
	long long	 v;

	if (*s == '\0' || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	return (json_int_t)v;
}

/* A digits-only string as an integer, anything else as a string. */
static json_t *
int_or_string(const char *s)
{
	const char	*p = s;

	while (isdigit((unsigned char)*p))
		p++;
	if (*s != '\0' && *p == '\0' && p - s < 18)
		return json_integer(strtoll(s, NULL, 10));
	return json_string(s);
}

/* Append each comma-separated item of s to arr (digits as integers if num). */
static int
add_items(json_t *arr, const char *s, int num)
{
	char	*copy, *tok, *save = NULL;
	int	 rc = 0;

	if ((copy = strdup(s)) == NULL)
		return -1;
	/* "2xx, 3xx": white space around an item is no part of it */
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save))
		if (json_array_append_new(arr, num ? int_or_string(tok) :
		    json_string(tok)) == -1)
			rc = -1;
	free(copy);
	return rc;
}

/* A --since/--until value as sent (seconds or "...Z") as UTC seconds, or -1. */
static int
time_value(const json_t *v, long long *t)
{
	struct tm	 tm;
	const char	*s, *end;

	if (json_is_integer(v)) {
		*t = json_integer_value(v);
		return 0;
	}
	if ((s = json_string_value(v)) == NULL)
		return -1;
	memset(&tm, 0, sizeof tm);
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL ||
	    *end != '\0')
		return -1;
	*t = (long long)timegm(&tm);
	return 0;
}

/*
 * A --since/--until argument as the daemon takes it: digits as they are
 * (UTC seconds), any other form timearg_parse() reads as a UTC timestamp
 * (or seconds, before 1970 or after 9999). NULL when it reads none.
 */
static json_t *
time_json(const char *s, time_t now)
{
	struct tm	 tm;
	time_t		 tt;
	int64_t		 t;
	char		 buf[32];

	if (timearg_parse(s, now, &t) == -1)
		return NULL;
	if (strspn(s, "0123456789") == strlen(s))
		return json_integer((json_int_t)t);
	tt = (time_t)t;
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year < 70 ||
	    tm.tm_year > 9999 - 1900 || strftime(buf, sizeof buf,
	    "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_integer((json_int_t)t);
	return json_string(buf);
}

/* --since later than --until: a usage error (-1), as it counts nothing. */
static int
since_later(const json_t *filter)
{
	const json_t	*a, *b;
	long long	 since, until;

	if (filter == NULL || (a = json_object_get(filter, "since")) == NULL ||
	    (b = json_object_get(filter, "until")) == NULL ||
	    time_value(a, &since) == -1 || time_value(b, &until) == -1 ||
	    since <= until)
		return 0;
	usage_error("--since is later than --until: nothing can be counted");
	return -1;
}

/* The -o argument: json, compact, tsv or table; -1 for anything else. */
static int
parse_output(const char *s, enum output *out)
{
	if (strcmp(s, "table") == 0)
		*out = OUT_TABLE;
	else if (strcmp(s, "json") == 0)
		*out = OUT_JSON;
	else if (strcmp(s, "compact") == 0)
		*out = OUT_COMPACT;
	else if (strcmp(s, "tsv") == 0)
		*out = OUT_TSV;
	else
		return -1;
	return 0;
}

enum {
	OPT_UNDER = 256, OPT_STATUS, OPT_METHOD, OPT_SINCE, OPT_UNTIL,
	OPT_XNAME, OPT_XEXT, OPT_NOXDEF, OPT_FORMAT, OPT_TOP, OPT_NOWAIT,
	OPT_PROGRESS, OPT_NOPROGRESS, OPT_COUNTROOT, OPT_LITERAL, OPT_NOCACHE,
	OPT_FILESFROM
};

static const struct option long_opts[] = {
	{ "under", required_argument, NULL, OPT_UNDER },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "exclude-name", required_argument, NULL, OPT_XNAME },
	{ "exclude-ext", required_argument, NULL, OPT_XEXT },
	{ "no-default-excludes", no_argument, NULL, OPT_NOXDEF },
	{ "count-root", no_argument, NULL, OPT_COUNTROOT },
	{ "literal", no_argument, NULL, OPT_LITERAL },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "top", required_argument, NULL, OPT_TOP },
	{ "no-wait", no_argument, NULL, OPT_NOWAIT },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NOPROGRESS },
	{ "no-cache", no_argument, NULL, OPT_NOCACHE },
	{ "files-from", required_argument, NULL, OPT_FILESFROM },
	{ "output", required_argument, NULL, 'o' },
	{ "socket", required_argument, NULL, 's' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/*
 * Parse a command's options into o (and, for submit, into the request's
 * filter object and req). allowed lists the long option codes the command
 * takes besides -s, -o and -h. Returns 0, or EXIT_USAGE with a message.
 */
static int
parse_cmd_opts(int argc, char **argv, const int *allowed, struct opts *o,
    json_t *req, json_t *filter)
{
	json_t		*names = NULL, *exts = NULL, *arr, *v;
	const char	*key;
	char		*end;
	long long	 top;
	time_t		 now = time(NULL);
	int		 ch, i, ok, noxdef = 0, countroot = 0, rc = EXIT_USAGE;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":ho:s:j:O:", long_opts,
	    NULL)) != -1) {
		ok = ch == 'h' || ch == 's' || ch == 'o';
		for (i = 0; allowed[i] != 0 && !ok; i++)
			ok = allowed[i] == ch;
		if (ch == ':') {
			usage_error("%s: %s needs an argument", argv[0],
			    argv[optind - 1]);
			goto out;
		}
		if (ch == '?') {
			bad_option(argv[0], argv[optind - 1], long_opts);
			goto out;
		}
		if (!ok && ch < 256) {
			usage_error("%s: -%c is not an option of %s", argv[0],
			    ch, argv[0]);
			goto out;
		}
		if (!ok) {
			for (i = 0; long_opts[i].name != NULL &&
			    long_opts[i].val != ch; i++)
				;
			usage_error("%s: --%s is not an option of %s", argv[0],
			    long_opts[i].name != NULL ? long_opts[i].name : "?",
			    argv[0]);
			goto out;
		}
		switch (ch) {
		case 'h':
			usage_text(stdout);
			exit(EXIT_OK);
		case 's':
			o->socket = optarg;
			break;
		case 'o':
			if (parse_output(optarg, &o->output) == -1) {
				usage_error("-o: json, compact, tsv or table, "
				    "not %s", optarg);
				goto out;
			}
			break;
		case OPT_UNDER:
			json_object_set_new(filter, "under",
			    json_string(optarg));
			break;
		case OPT_SINCE:
		case OPT_UNTIL:
			key = ch == OPT_SINCE ? "since" : "until";
			if ((v = time_json(optarg, now)) == NULL) {
				usage_error("--%s: not a time: \"%s\" (try "
				    "2024-03-01, '2024-03-01 10:00', "
				    "'...Z' or '...+02:00' for UTC or an "
				    "offset, @EPOCH, -1h, now, today, "
				    "yesterday; see clfctl(1))", key, optarg);
				goto out;
			}
			json_object_set_new(filter, key, v);
			break;
		case OPT_STATUS:
		case OPT_METHOD:
			key = ch == OPT_STATUS ? "status" : "methods";
			if ((arr = json_object_get(filter, key)) == NULL) {
				arr = json_array();
				json_object_set_new(filter, key, arr);
			}
			add_items(arr, optarg, ch == OPT_STATUS);
			break;
		case OPT_XNAME:
		case OPT_XEXT:
			if (strchr(optarg, '/') != NULL || *optarg == '\0') {
				usage_error("%s: \"%s\": one path segment, "
				    "without '/'%s", ch == OPT_XNAME ?
				    "--exclude-name" : "--exclude-ext", optarg,
				    ch == OPT_XNAME ? " (--under selects by "
				    "leading segments)" : "");
				goto out;
			}
			arr = ch == OPT_XNAME ? names : exts;
			if (arr == NULL) {
				arr = json_array();
				json_object_set_new(filter, ch == OPT_XNAME ?
				    "exclude_names" : "exclude_exts", arr);
				*(ch == OPT_XNAME ? &names : &exts) = arr;
			}
			json_array_append_new(arr, json_string(optarg));
			break;
		case OPT_NOXDEF:
			noxdef = 1;
			break;
		case OPT_COUNTROOT:
			countroot = 1;
			break;
		case OPT_LITERAL:
			o->literal = 1;
			break;
		case OPT_FORMAT:
			json_object_set_new(req, "format", json_string(optarg));
			break;
		case OPT_TOP:
			errno = 0;
			top = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    top < 0) {
				usage_error("--top: a number of paths, 0 for "
				    "all, not %s", optarg);
				goto out;
			}
			json_object_set_new(req, "top", json_integer(top));
			o->top = (size_t)top;
			break;
		case 'j':
			errno = 0;
			top = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    top < 1 || top > 1024) {
				usage_error("-j: not a count from 1 to 1024: %s",
				    optarg);
				goto out;
			}
			o->jobs = (unsigned)top;
			break;
		case 'O':
			o->out_path = optarg;
			break;
		case OPT_FILESFROM:
			o->files_from = optarg;
			break;
		case OPT_NOWAIT:
			o->wait = 0;
			break;
		case OPT_NOCACHE:
			json_object_set_new(req, "cache", json_false());
			break;
		case OPT_PROGRESS:
			o->progress = 1;
			break;
		case OPT_NOPROGRESS:
			o->progress = 0;
			break;
		}
	}
	if (since_later(filter) == -1)
		goto out;
	if (noxdef && names == NULL)
		json_object_set_new(filter, "exclude_names", json_array());
	if (noxdef && exts == NULL)
		json_object_set_new(filter, "exclude_exts", json_array());
	if (noxdef || countroot)
		json_object_set_new(filter, "exclude_root", json_false());
	rc = 0;
out:
	return rc;
}

/* How a result is printed: as asked, else a table on a terminal. */
static enum output
result_output(enum output out)
{
	if (out != OUT_AUTO)
		return out;
	return isatty(STDOUT_FILENO) ? OUT_TABLE : OUT_JSON;
}

/* The progress setting in force: asked, or by default on a terminal. */
static int
want_progress(const struct opts *o)
{
	if (o->progress >= 0)
		return o->progress;
	return isatty(STDERR_FILENO);
}

/*
 * submit: build the request from the options and patterns (made absolute),
 * then print the job id (--no-wait) or wait for the result and print it.
 */
static int
cmd_submit(int argc, char **argv, struct opts *o)
{
	static const int allowed[] = { OPT_UNDER, OPT_STATUS, OPT_METHOD,
	    OPT_SINCE, OPT_UNTIL, OPT_XNAME, OPT_XEXT, OPT_NOXDEF, OPT_FORMAT,
	    OPT_TOP, OPT_NOWAIT, OPT_PROGRESS, OPT_NOPROGRESS, OPT_COUNTROOT,
	    OPT_NOCACHE, OPT_LITERAL, 0 };
	struct conn	 c = { .fd = -1 };
	json_t		*req, *filter, *pats, *rep = NULL;
	const char	*msg;
	char		 cwd[PATH_MAX], *abs;
	json_int_t	 job;
	int		 i, rc, progress;

	req = json_object();
	filter = json_object();
	pats = json_array();
	json_object_set_new(req, "op", json_string("submit"));
	json_object_set_new(req, "patterns", pats);
	o->wait = 1;
	if ((rc = parse_cmd_opts(argc, argv, allowed, o, req, filter)) != 0)
		goto out;
	o->output = result_output(o->output);
	rc = EXIT_USAGE;
	if (optind >= argc) {
		usage_error("submit: no PATTERN");
		goto out;
	}
	if (getcwd(cwd, sizeof cwd) == NULL) {
		/* only needed for a relative pattern */
		cwd[0] = '\0';
	}
	for (i = optind; i < argc; i++) {
		if (argv[i][0] == '\0') {
			usage_error("submit: empty PATTERN");
			goto out;
		}
		if (argv[i][0] != '/' && cwd[0] == '\0') {
			usage_error("submit: %s: cannot find the working "
			    "directory", argv[i]);
			goto out;
		}
		if ((abs = pattern_absolute(argv[i], cwd, o->literal)) == NULL) {
			usage_error("submit: %s: pattern too long", argv[i]);
			goto out;
		}
		json_array_append_new(pats, json_string(abs));
		free(abs);
	}
	if (json_object_size(filter) > 0)
		json_object_set(req, "filter", filter);
	progress = o->wait && want_progress(o);
	json_object_set_new(req, "wait", json_boolean(o->wait));
	json_object_set_new(req, "progress", json_boolean(progress));

	if ((rc = connect_daemon(&c, o->socket)) != 0)
		goto out;
	rc = EXIT_DOWN;
	/* the reply comes after the expansion: no timeout */
	if ((rep = conn_call(&c, req, -1)) == NULL)
		goto out;
	if (!json_is_true(json_object_get(rep, "ok"))) {
		rc = reply_error(rep);
		msg = json_string_value(json_object_get(json_object_get(rep,
		    "error"), "message"));
		if (msg != NULL && strstr(msg, "patterns_max") != NULL &&
		    !o->literal)
			warnx_("hint: a glob left unquoted is expanded by the "
			    "shell into one pattern a file; quote it "
			    "('/var/log/nginx/*.gz') for clfd to expand");
		goto out;
	}
	job = json_integer_value(json_object_get(rep, "job"));
	if (!o->wait) {
		json_object_del(rep, "ok");
		print_json(rep, o->output == OUT_TSV ? OUT_COMPACT :
		    o->output == OUT_TABLE ? OUT_JSON : o->output);
		rc = EXIT_OK;
		/* no file at all: every pattern was unmatched */
		if (json_integer_value(json_object_get(rep,
		    "files_total")) == 0) {
			warnx_("error: no pattern matched a file");
			rc = EXIT_NOMATCH;
		}
		goto out;
	}
	if (progress && isatty(STDERR_FILENO))
		progress_show(job, 0, json_integer_value(json_object_get(rep,
		    "files_total")), 0);
	catch_sigint();
	rc = await_done(&c, job, progress, o->output, o->socket);
out:
	json_decref(rep);
	json_decref(filter);
	json_decref(req);
	conn_close(&c);
	return rc;
}

/*
 * map: the files (arguments, then --files-from's), made absolute, into
 * one partial with no daemon (cluster_map). The exit code is the map's.
 */
static int
cmd_map(int argc, char **argv, struct opts *o)
{
	static const int allowed[] = { OPT_UNDER, OPT_STATUS, OPT_METHOD,
	    OPT_SINCE, OPT_UNTIL, OPT_XNAME, OPT_XEXT, OPT_NOXDEF, OPT_FORMAT,
	    OPT_COUNTROOT, 'j', 'O', OPT_FILESFROM, 0 };
	struct cluster_map_opts	 m;
	json_t			*req, *filter;
	char			**list = NULL, **files = NULL, cwd[PATH_MAX];
	size_t			 nlist = 0, n = 0, i;
	int			 rc;

	req = json_object();
	filter = json_object();
	if ((rc = parse_cmd_opts(argc, argv, allowed, o, req, filter)) != 0)
		goto out;
	rc = EXIT_USAGE;
	if (o->out_path == NULL || *o->out_path == '\0') {
		usage_error("map: -O PARTIAL is required");
		goto out;
	}
	if (o->files_from != NULL &&
	    cluster_read_list(o->files_from, &list, &nlist) == -1) {
		warnx_("map: %s: %s", o->files_from, strerror(errno));
		rc = EXIT_FILES;
		goto out;
	}
	if (optind >= argc && nlist == 0) {
		usage_error("map: no FILE");
		goto out;
	}
	if (getcwd(cwd, sizeof cwd) == NULL)
		cwd[0] = '\0';
	if ((files = calloc((size_t)(argc - optind) + nlist + 1,
	    sizeof *files)) == NULL) {
		warnx_("out of memory");
		rc = EXIT_FILES;
		goto out;
	}
	for (i = 0; i < (size_t)(argc - optind) + nlist; i++) {
		const char *f = i < (size_t)(argc - optind) ?
		    argv[optind + (int)i] : list[i - (size_t)(argc - optind)];

		if (*f == '\0' || (*f != '/' && cwd[0] == '\0')) {
			usage_error("map: %s: cannot make the path absolute", f);
			goto out;
		}
		if ((*f == '/' ? (files[n] = strdup(f)) == NULL :
		    asprintf(&files[n], "%s%s%s", cwd, strcmp(cwd, "/") == 0 ?
		    "" : "/", f) == -1)) {
			files[n] = NULL;
			warnx_("out of memory");
			rc = EXIT_FILES;
			goto out;
		}
		n++;
	}
	memset(&m, 0, sizeof m);
	m.format = json_string_value(json_object_get(req, "format"));
	m.filter = filter;
	m.files = files;
	m.nfiles = n;
	m.out = o->out_path;
	m.jobs = o->jobs;
	rc = cluster_map(&m);
out:
	cluster_free_list(files);
	cluster_free_list(list);
	json_decref(filter);
	json_decref(req);
	return rc;
}

/*
 * merge: partials into the result `submit` prints for the same files,
 * printed as submit prints it; the exit code is submit's, or 4 when a
 * partial is refused.
 */
static int
cmd_merge(int argc, char **argv, struct opts *o)
{
	static const int allowed[] = { OPT_TOP, 0 };
	json_t		*req, *filter;
	char		*text = NULL;
	size_t		 len;
	int		 rc;

	req = json_object();
	filter = json_object();
	if ((rc = parse_cmd_opts(argc, argv, allowed, o, req, filter)) != 0)
		goto out;
	o->output = result_output(o->output);
	if (optind >= argc) {
		rc = usage_error("merge: no PARTIAL");
		goto out;
	}
	if ((rc = cluster_merge(argv + optind, (size_t)(argc - optind), o->top,
	    &text, &len)) != 0)
		goto out;
	rc = print_result_line(text, len, o->output);
out:
	free(text);
	json_decref(filter);
	json_decref(req);
	return rc;
}

/* The ID argument of wait/result/cancel/status: -1 after a usage message. */
static json_int_t
one_id(int argc, char **argv, int optional)
{
	json_int_t	id;

	if (optind == argc && optional)
		return 0;
	if (optind != argc - 1) {
		usage_error("%s: one job ID expected", argv[0]);
		return -1;
	}
	if ((id = parse_id(argv[optind])) == -1) {
		usage_error("%s: not a job ID: %s", argv[0], argv[optind]);
		return -1;
	}
	return id;
}

/* wait ID: the result of a job submitted earlier, once it is finished. */
static int
cmd_wait(int argc, char **argv, struct opts *o)
{
	static const int allowed[] = { OPT_PROGRESS, OPT_NOPROGRESS, 0 };
	struct conn	 c = { .fd = -1 };
	json_t		*req;
	json_int_t	 id;
	int		 rc, progress;

	if ((rc = parse_cmd_opts(argc, argv, allowed, o, NULL, NULL)) != 0)
		return rc;
	o->output = result_output(o->output);
	if ((id = one_id(argc, argv, 0)) == -1)
		return EXIT_USAGE;
	progress = want_progress(o);
	if ((rc = connect_daemon(&c, o->socket)) != 0)
		return rc;
	req = json_pack("{s:s,s:I,s:b}", "op", "wait", "job", id, "progress",
	    progress);
	rc = EXIT_DOWN;
	catch_sigint();
	if (conn_send(&c, req) == 0)
		rc = await_done(&c, id, progress, o->output, o->socket);
	json_decref(req);
	conn_close(&c);
	return rc;
}

/*
 * The simple one-request commands: result, status, list, cancel, stats,
 * ping. result prints the RESULT like submit; status and list print a
 * table on a terminal (times local, the jobs' patterns), JSON elsewhere,
 * or TSV: job, state, files done, files total, submitted.
 */
static int
cmd_simple(int argc, char **argv, struct opts *o)
{
	static const int allowed[] = { 0 };
	struct conn	 c = { .fd = -1 };
	json_t		*req, *rep = NULL, *v;
	const char	*cmd = argv[0];
	json_int_t	 id = 0;
	size_t		 i;
	int		 rc, takes_id, list, jobs;

	if ((rc = parse_cmd_opts(argc, argv, allowed, o, NULL, NULL)) != 0)
		return rc;
	takes_id = strcmp(cmd, "result") == 0 || strcmp(cmd, "cancel") == 0 ||
	    strcmp(cmd, "status") == 0;
	if (takes_id) {
		if ((id = one_id(argc, argv, strcmp(cmd, "status") == 0)) == -1)
			return EXIT_USAGE;
	} else if (optind != argc)
		return usage_error("%s: no arguments expected", cmd);
	list = strcmp(cmd, "list") == 0 || (strcmp(cmd, "status") == 0 &&
	    id == 0);
	jobs = list || strcmp(cmd, "status") == 0;
	if (o->output == OUT_TSV && !jobs && strcmp(cmd, "result") != 0)
		return usage_error("%s: -o tsv is for submit, wait, result, "
		    "status and list", cmd);
	if (o->output == OUT_TABLE && !jobs && strcmp(cmd, "result") != 0)
		return usage_error("%s: -o table is for submit, wait, result, "
		    "status and list", cmd);
	/* what a person reads: a table on a terminal, else JSON */
	o->output = strcmp(cmd, "result") == 0 || jobs ?
	    result_output(o->output) : o->output == OUT_AUTO ? OUT_JSON :
	    o->output;
	req = json_pack("{s:s}", "op", cmd);
	if (id > 0)
		json_object_set_new(req, "job", json_integer(id));
	if ((rc = connect_daemon(&c, o->socket)) != 0)
		goto out;
	rc = EXIT_DOWN;
	if (strcmp(cmd, "result") == 0) {
		char		*line;
		size_t		 len;

		if (conn_send(&c, req) == -1 ||
		    (line = conn_line(&c, reply_timeout(), &len)) == NULL)
			goto out;
		if (len > 12 && memcmp(line, "{\"ok\":true,", 11) == 0) {
			rc = print_result_line(line, len, o->output);
			goto out;
		}
		rep = conn_parse(line, len);
	} else
		rep = conn_call(&c, req, reply_timeout());
	if (rep == NULL)
		goto out;
	if (!json_is_true(json_object_get(rep, "ok"))) {
		rc = reply_error(rep);
		/* a cancelled job's result still says what it had */
		if (rc == EXIT_FILES && json_object_get(rep, "job") != NULL)
			print_result(rep, o->output);
		goto out;
	}
	rc = EXIT_OK;
	if (strcmp(cmd, "result") == 0)
		rc = print_result(rep, o->output);
	else if (list && o->output == OUT_TSV) {
		json_array_foreach(json_object_get(rep, "jobs"), i, v)
			print_job_tsv(v);
	} else if (list && o->output == OUT_TABLE)
		print_jobs_table(json_object_get(rep, "jobs"));
	else if (jobs && o->output == OUT_TSV)
		print_job_tsv(rep);
	else if (jobs && o->output == OUT_TABLE)
		print_status_table(rep);
	else
		print_json(rep, o->output);
out:
	json_decref(rep);
	json_decref(req);
	conn_close(&c);
	return rc;
}

/* cache clear: empty the daemon's cache of per-file partials. */
static int
cmd_cache(int argc, char **argv, struct opts *o)
{
	char	 name[] = "cache_clear", *op[] = { name, NULL };

	if (argc != 2 || strcmp(argv[1], "clear") != 0)
		return usage_error("cache: clear expected");
	return cmd_simple(1, op, o);
}

/* Global options (-s, -h, -V), then hand off to the command. */
int
main(int argc, char **argv)
{
	static const struct {
		const char	*name;
		int		(*fn)(int, char **, struct opts *);
	} cmds[] = {
		{ "submit", cmd_submit }, { "wait", cmd_wait },
		{ "result", cmd_simple }, { "status", cmd_simple },
		{ "list", cmd_simple }, { "cancel", cmd_simple },
		{ "stats", cmd_simple }, { "ping", cmd_simple },
		{ "cache", cmd_cache },
		{ "map", cmd_map }, { "merge", cmd_merge },
	};
	static const struct option top_opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "socket", required_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts	o = { .output = OUT_AUTO, .progress = -1 };
	size_t		i;
	int		ch, rc;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:hs:V", top_opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage_text(stdout);
			return EXIT_OK;
		case 's':
			o.socket = optarg;
			break;
		case 'V':
			printf("clfctl %s\n", CLFCTL_VERSION);
			return EXIT_OK;
		case ':':
			return usage_error("%s needs an argument",
			    argv[optind - 1]);
		default:
			if (optopt != 0)
				return usage_error("unknown option: -%c", optopt);
			return bad_option(NULL, argv[optind - 1], top_opts);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return usage_error("no command");
	if (o.socket != NULL && *o.socket == '\0')
		return usage_error("-s: empty socket path");

	for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[0], cmds[i].name) != 0)
			continue;
		rc = cmds[i].fn(argc, argv, &o);
		if (fflush(stdout) == EOF || ferror(stdout)) {
			warnx_("stdout: %s", strerror(errno));
			if (rc == EXIT_OK)
				rc = EXIT_FILES;
		}
		return rc;
	}
	return usage_error("unknown command: %s", argv[0]);
}
