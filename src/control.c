/*
 * control.c: the clients' side of clfd.
 *
 * The listening socket is systemd's when it passed one, else our own
 * (a stale socket file is replaced, a live daemon's never). Each client is
 * a bufferevent speaking JSON lines: a request per line, replies in
 * order. A submit holds the connection until a worker has expanded its
 * patterns (its reply comes then), a submit with "wait", or a wait, until
 * the job's "done" event; requests sent meanwhile wait their turn. Bad input
 * from one client gets that client an error (and for an oversized or
 * stalled line, a close), never anything else.
 *
 * Depends on: jobqueue (jobs), request (a submit's fields checked),
 * reply (the job queue's data as JSON), pool (a kick after a submit,
 * the workers' stats), proto, config, systemd, paths, log. Used by:
 * supervisor, which it never calls: the start time comes with
 * control_start, the stop with control_stop_accepting.
 */
#include <config.h>

#include "control.h"

#include "config.h"
#include "errcode.h"
#include "jobqueue.h"
#include "log.h"
#include "paths.h"
#include "pool.h"
#include "proto.h"
#include "reply.h"
#include "request.h"
#include "systemd.h"

#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#define CTL_OUT_PAUSE	(1u << 20)	/* stop reading requests past this */
#define CTL_OUT_MAX	(64u << 20)	/* drop a client that lets this pile up */
#define CTL_PROGRESS_MAX (64u << 10)	/* skip progress when output is behind */
#define CTL_LINGER_SEC	2		/* read and drop input before a close */
#define CTL_TURN_MAX	16		/* requests of one client per turn */

struct client {
	TAILQ_ENTRY(client)	 entry;
	struct bufferevent	*bev;
	int			 fd;
	uid_t			 uid;
	pid_t			 pid;
	struct jobqueue_waiter	*waiter;	/* holds the connection */
	struct job		*submit;	/* so does a submit expanding */
	int			 submit_wait;	/* its "wait" and "progress" */
	int			 submit_progress;
	struct event		*idle;		/* no complete request in time */
	struct event		*stall;		/* output not drained in time */
	struct event		*resume;	/* deferred processing */
	struct event		*yield;		/* the same, after others' turn */
	struct evbuffer_cb_entry *outcb;	/* output read: progress */
	size_t			 streamed;	/* file bytes queued since empty */
	int			 eof;		/* peer will send no more */
	int			 closing;	/* close once output is written */
	int			 lingering;	/* written, shut down, draining */
	int			 dead;		/* free at the next chance */
};

static struct {
	struct event_base	*base;
	const struct config	*cfg;
	int			 fd;
	struct event		*accept_ev;
	struct event		*pause_ev;
	char			 path[sizeof ((struct sockaddr_un *)0)->sun_path];
	int			 own_path;
	int			 from_systemd;	/* path is the passed socket's */
	int			 lock_fd;	/* PATH.lock, held while we run */
	dev_t			 dev;
	ino_t			 ino;
	TAILQ_HEAD(, client)	 clients;
	size_t			 nclients;
	size_t			 nlingering;	/* of them, answered and closing */
	int			 reserve_fd;	/* given up to refuse when out of fds */
	int			 stopping;	/* the daemon is stopping */
	struct timeval		 started;	/* the daemon's start, for stats */
} ctl = { .fd = -1, .lock_fd = -1, .reserve_fd = -1 };

static void	client_process(struct client *);
static void	client_free(struct client *);
static void	client_error(struct client *, enum errcode, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* 1 when something accepts connections on path. */
static int
control_probe(const char *path)
{
	struct sockaddr_un	sun;
	int			fd, r;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	return r == 0 || (errno != ECONNREFUSED && errno != ENOENT &&
	    errno != ENOTSOCK);
}

/*
 * Name the socket systemd passed, for the log: its path from
 * getsockname(2), "@name" for an abstract one, or a note that it has none.
 */
static void
control_name_passed(int fd)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = sizeof sun;
	size_t			 n;

	memset(&sun, 0, sizeof sun);
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == -1 ||
	    len <= offsetof(struct sockaddr_un, sun_path)) {
		snprintf(ctl.path, sizeof ctl.path, "an unnamed socket");
		return;
	}
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (n > sizeof sun.sun_path)
		n = sizeof sun.sun_path;
	if (sun.sun_path[0] == '\0')	/* abstract: NULs are not the end */
		snprintf(ctl.path, sizeof ctl.path, "@%.*s", (int)(n - 1),
		    sun.sun_path + 1);
	else
		snprintf(ctl.path, sizeof ctl.path, "%.*s", (int)n,
		    sun.sun_path);
}

/*
 * One clfd per socket path: take PATH.lock (flock) and hold it for as long
 * as clfd runs. Without it, two clfds starting at once could each take the
 * other's bound but not yet listening socket for a stale one and both run.
 * The lock file stays behind: removing it would let a third clfd lock a
 * new file while the first still holds the old one.
 */
static int
control_lock(const char *path, int *live, char *err, size_t errlen)
{
	char	lock[sizeof ctl.path + sizeof ".lock"];
	int	fd;

	snprintf(lock, sizeof lock, "%s.lock", path);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1) {
		snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			*live = 1;
			snprintf(err, errlen, "clfd already running on %s "
			    "(%s is locked)", path, lock);
		} else
			snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		close(fd);
		return -1;
	}
	ctl.lock_fd = fd;
	return 0;
}

const char *
control_where(char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", ctl.path,
	    ctl.from_systemd ? " (passed by systemd)" : "");
	return buf;
}

int
control_open(const char *path, const struct config *cfg, int *live,
    char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	struct group		*gr;
	mode_t			 old;
	int			 fd = -1, tries;

	TAILQ_INIT(&ctl.clients);
	ctl.cfg = cfg;
	*live = 0;
	if ((fd = systemd_listen_fd()) >= 0) {
		evutil_make_socket_nonblocking(fd);
		ctl.fd = fd;
		ctl.own_path = 0;
		ctl.from_systemd = 1;
		control_name_passed(fd);
		return 0;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (paths_prepare_dir(path, err, errlen) == -1 ||
	    control_lock(path, live, err, errlen) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	for (tries = 0;; tries++) {
		old = umask(~cfg->socket_mode & 0777);
		if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
			umask(old);
			break;
		}
		umask(old);
		if (errno != EADDRINUSE || tries > 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		/* Something is there: a live daemon, or a stale socket. */
		if (control_probe(path)) {
			*live = 1;
			snprintf(err, errlen, "clfd already running on %s", path);
			goto fail;
		}
		if (lstat(path, &st) == -1 || !S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket",
			    path);
			goto fail;
		}
		log_info("replacing stale socket %s", path);
		if (unlink(path) == -1 && errno != ENOENT) {
			snprintf(err, errlen, "unlink %s: %s", path,
			    strerror(errno));
			goto fail;
		}
	}
	if (chmod(path, cfg->socket_mode) == -1)
		log_warn("chmod %s", path);
	if (cfg->socket_group != NULL) {
		if ((gr = getgrnam(cfg->socket_group)) == NULL) {
			snprintf(err, errlen, "socket_group %s: no such group",
			    cfg->socket_group);
			unlink(path);
			goto fail;
		}
		if (chown(path, (uid_t)-1, gr->gr_gid) == -1) {
			snprintf(err, errlen, "chown %s: %s", path,
			    strerror(errno));
			unlink(path);
			goto fail;
		}
	}
	if (listen(fd, 512) == -1 || stat(path, &st) == -1) {
		snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	ctl.fd = fd;
	ctl.own_path = 1;
	ctl.dev = st.st_dev;
	ctl.ino = st.st_ino;
	snprintf(ctl.path, sizeof ctl.path, "%s", path);
	return 0;
fail:
	close(fd);
	close(ctl.lock_fd);
	ctl.lock_fd = -1;
	return -1;
}

/*
 * Give our own socket file the configured mode and group (after a
 * reload), as long as it is still the file we made. systemd's socket
 * keeps what its unit says.
 */
static void
control_socket_perms(const struct config *cfg)
{
	struct stat	 st;
	struct group	*gr;
	gid_t		 gid = getegid();

	if (!ctl.own_path)
		return;
	if (stat(ctl.path, &st) == -1 || st.st_dev != ctl.dev ||
	    st.st_ino != ctl.ino) {
		log_warnx("%s is no longer our socket; mode and group left "
		    "alone", ctl.path);
		return;
	}
	if (cfg->socket_group != NULL) {
		if ((gr = getgrnam(cfg->socket_group)) == NULL) {
			log_warnx("socket_group %s: no such group; %s keeps "
			    "group %lu", cfg->socket_group, ctl.path,
			    (unsigned long)st.st_gid);
			gid = st.st_gid;
		} else
			gid = gr->gr_gid;
	}
	if (gid != st.st_gid && chown(ctl.path, (uid_t)-1, gid) == -1)
		log_warn("chown %s", ctl.path);
	if ((st.st_mode & 07777) != cfg->socket_mode &&
	    chmod(ctl.path, cfg->socket_mode) == -1)
		log_warn("chmod %s", ctl.path);
}

void
control_set_config(const struct config *cfg)
{
	struct client	*c;

	control_socket_perms(cfg);
	ctl.cfg = cfg;
	TAILQ_FOREACH(c, &ctl.clients, entry)
		bufferevent_setwatermark(c->bev, EV_READ, 0,
		    cfg->request_max + 2);
}

void
control_stop_accepting(void)
{
	struct stat	st;

	ctl.stopping = 1;
	if (ctl.accept_ev != NULL) {
		event_free(ctl.accept_ev);
		ctl.accept_ev = NULL;
	}
	if (ctl.pause_ev != NULL) {
		event_free(ctl.pause_ev);
		ctl.pause_ev = NULL;
	}
	if (ctl.fd != -1) {
		close(ctl.fd);
		ctl.fd = -1;
	}
	/* Remove the socket file only while it is still the one we made. */
	if (ctl.own_path && stat(ctl.path, &st) == 0 && st.st_dev == ctl.dev &&
	    st.st_ino == ctl.ino)
		unlink(ctl.path);
	ctl.own_path = 0;
}

size_t
control_clients(void)
{
	return ctl.nclients;
}

size_t
control_pending_output(void)
{
	struct client	*c;
	size_t		 n = 0;

	TAILQ_FOREACH(c, &ctl.clients, entry)
		if (!c->dead)
			n += evbuffer_get_length(bufferevent_get_output(c->bev));
	return n;
}

/*
 * Start the stall clock when output starts to wait (or, with again, from
 * now: the client read some). Fresh time, not the loop's cached time,
 * which is stale after a long callback.
 */
static void
client_stall_arm(struct client *c, int again)
{
	struct timeval	tv = { ctl.cfg->idle_timeout, 0 };

	if (ctl.cfg->idle_timeout <= 0)
		return;
	if (!again && (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
	    evtimer_pending(c->stall, NULL)))
		return;
	event_base_update_cache_time(ctl.base);
	evtimer_add(c->stall, &tv);
}

/* The client read part of its output: progress, so a new stall clock. */
static void
client_out_cb(struct evbuffer *out, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct client	*c = arg;

	if (info->n_deleted == 0 || c->dead)
		return;
	if (evbuffer_get_length(out) == 0)
		c->streamed = 0;
	else
		client_stall_arm(c, 1);
}

/*
 * Queue bytes for the client; a client that stopped reading is dropped.
 * Output that starts to pile up starts the stall clock: it must all be
 * written within idle_timeout (whatever the client is doing, waiting on
 * a job included), else the client is dropped.
 */
static void
client_send(struct client *c, const char *buf, size_t len)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	if (c->dead)
		return;
	client_stall_arm(c, 0);
	/* (result files queued count apart: they are not in memory) */
	if (evbuffer_get_length(out) > CTL_OUT_MAX + c->streamed ||
	    bufferevent_write(c->bev, buf, len) == -1) {
		log_warnx("client pid %ld: not reading its replies; dropped",
		    (long)c->pid);
		c->dead = 1;
		event_active(c->resume, 0, 0);
	}
}

/*
 * Queue a job's result: its text, or its file (sent from the file by the
 * kernel as the client reads, never copied into our memory; every reader
 * gets its own descriptor of the one file). As the "done" event of a
 * wait when done is set, else as the reply to "result".
 */
static void
client_send_result(struct client *c, const struct jq_result *res, int done)
{
	static const char		 oom[] = "{\"ok\":false,\"error\":"
	    "{\"code\":\"internal\",\"message\":\"out of memory\"}}";
	struct evbuffer_file_segment	*seg;
	struct evbuffer			*out = bufferevent_get_output(c->bev);
	struct jq_result		 made;
	struct stat			 st;
	int				 fd;

	if (res->text == NULL && res->path == NULL) {
		/* The result could not be made: it is this error. */
		memset(&made, 0, sizeof made);
		made.text = oom;
		made.len = sizeof oom - 1;
		res = &made;
	}
	if (res->path != NULL) {
		if ((fd = open(res->path, O_RDONLY | O_CLOEXEC)) == -1 ||
		    fstat(fd, &st) == -1 || (uint64_t)st.st_size != res->size ||
		    res->size < 2) {
			log_warn("%s", res->path);
			if (fd != -1)
				close(fd);
			client_error(c, ERRC_INTERNAL, "the result file is gone");
			return;
		}
		if ((seg = evbuffer_file_segment_new(fd, 0, st.st_size,
		    EVBUF_FS_CLOSE_ON_FREE)) == NULL) {
			close(fd);
			client_error(c, ERRC_INTERNAL, "out of memory");
			return;
		}
	} else
		seg = NULL;
	if (done)
		client_send(c, "{\"event\":\"done\",", 16);
	if (seg != NULL) {
		if (!c->dead) {
			client_stall_arm(c, 0);
			if (evbuffer_add_file_segment(out, seg, done ? 1 : 0,
			    (ev_off_t)res->size - (done ? 1 : 0)) == -1) {
				c->dead = 1;
				event_active(c->resume, 0, 0);
			} else
				c->streamed += res->size;
		}
		evbuffer_file_segment_free(seg);	/* the buffer holds it */
		/*
		 * The newline by reference: evbuffer_add would give it a
		 * new chain as big as the file's, for one byte.
		 */
		if (!c->dead && evbuffer_add_reference(out, "\n", 1, NULL,
		    NULL) == -1) {
			c->dead = 1;
			event_active(c->resume, 0, 0);
		}
		return;
	}
	client_send(c, res->text + (done ? 1 : 0), res->len - (done ? 1 : 0));
	client_send(c, "\n", 1);
}

static void
client_send_json(struct client *c, json_t *o)
{
	char	*s;

	if (o == NULL || (s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6))) == NULL) {
		static const char oom[] = "{\"ok\":false,\"error\":{\"code\":"
		    "\"internal\",\"message\":\"out of memory\"}}\n";

		client_send(c, oom, sizeof oom - 1);
		json_decref(o);
		return;
	}
	client_send(c, s, strlen(s));
	client_send(c, "\n", 1);
	free(s);
	json_decref(o);
}

static void
client_error(struct client *c, enum errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Make a message valid UTF-8 for json_pack: a cut (by a buffer's size or
 * a "%.64s") may leave half a character at the end, which is trimmed; any
 * other bad byte becomes '?'.
 */
static void
client_utf8_fix(char *s)
{
	unsigned char	*p = (unsigned char *)s;
	size_t		 i = 0, n, k;

	while (p[i] != '\0') {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			n = 1;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			n = 2;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			n = 3;
		else {
			p[i++] = '?';
			continue;
		}
		for (k = 1; k <= n && (p[i + k] & 0xc0) == 0x80; k++)
			;
		if (k <= n && p[i + k] == '\0') {
			p[i] = '\0';		/* half a character at the end */
			return;
		}
		if (k <= n || (n == 2 && ((p[i] == 0xe0 && p[i + 1] < 0xa0) ||
		    (p[i] == 0xed && p[i + 1] > 0x9f))) ||
		    (n == 3 && ((p[i] == 0xf0 && p[i + 1] < 0x90) ||
		    (p[i] == 0xf4 && p[i + 1] > 0x8f)))) {
			p[i++] = '?';
			continue;
		}
		i += n + 1;
	}
}

static void
client_error(struct client *c, enum errcode code, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	client_utf8_fix(msg);
	client_send_json(c, json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error",
	    "code", errcode_name(code), "message", msg));
}

/* Close after the pending output is written; read nothing more. */
static void
client_close_after(struct client *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);

	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	evbuffer_drain(in, evbuffer_get_length(in));
	event_del(c->idle);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		event_active(c->resume, 0, 0);
}

/*
 * The output is written: end our side (the client reads a clean EOF after
 * the last reply) and read and drop whatever it still sends for a moment,
 * since closing with unread input would reset the connection. The client's
 * EOF, an error or the linger timer frees it.
 */
static void
client_linger(struct client *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	struct timeval	 tv = { CTL_LINGER_SEC, 0 };

	if (c->eof || c->lingering || shutdown(c->fd, SHUT_WR) == -1) {
		if (!c->lingering)
			client_free(c);
		return;
	}
	c->lingering = 1;
	ctl.nlingering++;
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->idle, &tv);
}

/* A job event for a waiting client (called from the job queue). */
static void
client_job_cb(int kind, const struct jq_info *info,
    const struct jq_result *res, void *arg)
{
	struct client	*c = arg;
	char		 line[256];
	size_t		 n;

	if (kind == JQ_DONE) {
		c->waiter = NULL;
		if (res != NULL)
			client_send_result(c, res, 1);
		else {
			n = reply_stopped(line, sizeof line, info);
			client_send(c, line, n);
		}
		/* Go on with requests sent meanwhile, outside this call. */
		event_active(c->resume, 0, 0);
	} else if (evbuffer_get_length(bufferevent_get_output(c->bev)) <
	    CTL_PROGRESS_MAX) {
		n = reply_progress(line, sizeof line, info);
		client_send(c, line, n);
	}
}

/* Send the done event now if the job is finished, else wait for it. */
static void
client_wait(struct client *c, int64_t id, int progress)
{
	struct jq_error		 err;
	struct jq_result	 res;

	if (jobqueue_result(id, c->uid, &res, &err) == 0) {
		client_send_result(c, &res, 1);
		return;
	}
	if (err.code != ERRC_NOT_FINISHED) {
		client_error(c, err.code, "%s", err.message);
		return;
	}
	if ((c->waiter = jobqueue_wait(id, c->uid, progress,
	    client_job_cb, c, &err)) == NULL)
		client_error(c, err.code, "%s", err.message);
}

/* Optional boolean field; -1 (with the error sent) on a wrong type. */
static int
req_bool(struct client *c, const json_t *req, const char *key, int *out)
{
	json_t	*v = json_object_get(req, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		client_error(c, ERRC_BAD_FIELD, "%s: true or false is required", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* The "job" field; -1 (with the error sent) when missing or bad. */
static int
req_job(struct client *c, const json_t *req, int64_t *id)
{
	json_t	*v = json_object_get(req, "job");

	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		client_error(c, ERRC_BAD_FIELD, "job: a positive integer is "
		    "required");
		return -1;
	}
	*id = json_integer_value(v);
	return 0;
}

static void
op_ping(struct client *c, const json_t *req)
{
	(void)req;
	client_send_json(c, json_pack("{s:b,s:s,s:i,s:I}", "ok", 1, "version",
	    PACKAGE_VERSION, "protocol", PROTO_CLIENT_VERSION, "pid",
	    (json_int_t)getpid()));
}

/* A submit's patterns are expanded: its reply, then maybe the wait. */
static void
client_submitted(int64_t id, size_t files, const struct jq_error *err,
    void *arg)
{
	struct client	*c = arg;

	c->submit = NULL;
	if (id == -1)
		client_error(c, err->code, "%s", err->message);
	else {
		client_send_json(c, json_pack("{s:b,s:I,s:I}", "ok", 1, "job",
		    (json_int_t)id, "files_total", (json_int_t)files));
		if (c->submit_wait)
			client_wait(c, id, c->submit_progress);
	}
	/* Go on with requests sent meanwhile, outside this call. */
	event_active(c->resume, 0, 0);
}

static void
op_submit(struct client *c, const json_t *req)
{
	struct submit_req	sr;
	struct jq_error		err;
	enum errcode		code;
	int			wait, progress;

	if (req_bool(c, req, "wait", &wait) == -1 ||
	    req_bool(c, req, "progress", &progress) == -1)
		return;
	c->submit_wait = wait;
	c->submit_progress = progress;
	/* (the limits first: a daemon that is full says so) */
	if (jobqueue_admit(c->uid, &err) == -1) {
		client_error(c, err.code, "%s", err.message);
		return;
	}
	if ((code = request_submit(req, ctl.cfg, &sr, err.message,
	    sizeof err.message)) != ERRC_NONE) {
		client_error(c, code, "%s", err.message);
		return;
	}
	if ((c->submit = jobqueue_submit(&sr, c->uid, c->pid, client_submitted,
	    c, &err)) == NULL) {
		client_error(c, err.code, "%s", err.message);
		return;
	}
	/* Only now: a failed hand-over calls client_submitted at once. */
	pool_kick();
}

static void
op_wait(struct client *c, const json_t *req)
{
	int64_t	id;
	int	progress;

	if (req_job(c, req, &id) == -1 ||
	    req_bool(c, req, "progress", &progress) == -1)
		return;
	client_wait(c, id, progress);
}

static void
op_result(struct client *c, const json_t *req)
{
	struct jq_error		 err;
	struct jq_result	 res;
	int64_t			 id;

	if (req_job(c, req, &id) == -1)
		return;
	if (jobqueue_result(id, c->uid, &res, &err) == -1) {
		client_error(c, err.code, "%s", err.message);
		return;
	}
	client_send_result(c, &res, 0);
}

static void
op_list(struct client *c, const json_t *req)
{
	const struct job	*j = NULL;
	struct jq_info		 info;
	json_t			*r, *a;

	(void)req;
	if ((r = json_pack("{s:b,s:[]}", "ok", 1, "jobs")) != NULL) {
		a = json_object_get(r, "jobs");
		while ((j = jobqueue_list(c->uid, j, &info)) != NULL)
			json_array_append_new(a, reply_job(&info, 0));
	}
	client_send_json(c, r);
}

static void
op_status(struct client *c, const json_t *req)
{
	struct jq_error	 err;
	struct jq_info	 info;
	json_t		*o, *r;
	int64_t		 id;

	if (json_object_get(req, "job") == NULL ||
	    json_is_null(json_object_get(req, "job"))) {
		op_list(c, req);
		return;
	}
	if (req_job(c, req, &id) == -1)
		return;
	if (jobqueue_info(id, c->uid, &info, &err) == -1) {
		client_error(c, err.code, "%s", err.message);
		return;
	}
	if ((r = json_pack("{s:b}", "ok", 1)) == NULL ||
	    (o = reply_job(&info, 1)) == NULL) {
		json_decref(r);
		client_error(c, ERRC_INTERNAL, "out of memory");
		return;
	}
	json_object_update(r, o);
	json_decref(o);
	client_send_json(c, r);
}

static void
op_cancel(struct client *c, const json_t *req)
{
	struct jq_error	 err;
	int64_t		 id;

	if (req_job(c, req, &id) == -1)
		return;
	if (jobqueue_cancel(id, c->uid, c->pid, &err) == -1)
		client_error(c, err.code, "%s", err.message);
	else
		client_send_json(c, json_pack("{s:b,s:I,s:s}", "ok", 1, "job",
		    (json_int_t)id, "state", "cancelled"));
}

/* Seconds since the daemon started. */
static double
control_uptime(void)
{
	struct timeval	now, d;

	gettimeofday(&now, NULL);
	timersub(&now, &ctl.started, &d);
	return (double)d.tv_sec + (double)d.tv_usec / 1e6;
}

static void
op_stats(struct client *c, const json_t *req)
{
	struct jq_stats	 st;
	json_t		*r;

	(void)req;
	r = json_pack("{s:b,s:s,s:I,s:f,s:o}", "ok", 1, "version",
	    PACKAGE_VERSION, "pid", (json_int_t)getpid(), "uptime",
	    control_uptime(), "workers", pool_workers_json(c->uid));
	if (r != NULL) {
		jobqueue_stats(&st);
		reply_stats(r, &st);
		json_object_set_new(r, "connections",
		    json_integer((json_int_t)ctl.nclients));
	}
	client_send_json(c, r);
}

static void
op_cache_clear(struct client *c, const json_t *req)
{
	struct jq_error	 err;

	(void)req;
	if (jobqueue_cache_clear(&err) == -1)
		client_error(c, err.code, "%s", err.message);
	else
		client_send_json(c, json_pack("{s:b}", "ok", 1));
}

/*
 * The ops and the fields each takes besides "op": a field not listed is
 * refused (a misspelt "fromat" would otherwise be ignored in silence).
 */
static const struct {
	const char	*name;
	void		(*fn)(struct client *, const json_t *);
	const char	*fields[9];
} control_ops[] = {
	{ "ping",	op_ping,	{ NULL } },
	{ "submit",	op_submit,	{ "patterns", "filter", "format", "top",
	    "cache", "wait", "progress", NULL } },
	{ "wait",	op_wait,	{ "job", "progress", NULL } },
	{ "result",	op_result,	{ "job", NULL } },
	{ "status",	op_status,	{ "job", NULL } },
	{ "list",	op_list,	{ NULL } },
	{ "cancel",	op_cancel,	{ "job", NULL } },
	{ "stats",	op_stats,	{ NULL } },
	{ "cache_clear", op_cache_clear, { NULL } },
};

/*
 * A field of req that op i does not take: the error sent (naming the
 * fields it does take), and -1.
 */
static int
client_check_fields(struct client *c, const json_t *req, size_t i)
{
	const char *const	*f = control_ops[i].fields;
	const char		*key;
	json_t			*v;
	char			 list[128];
	size_t			 k, n = 0;

	json_object_foreach((json_t *)(uintptr_t)req, key, v) {
		if (strcmp(key, "op") == 0)
			continue;
		for (k = 0; f[k] != NULL && strcmp(key, f[k]) != 0; k++)
			;
		if (f[k] != NULL)
			continue;
		list[0] = '\0';
		/* (the lists above are short: list holds the longest) */
		for (k = 0; f[k] != NULL && n < sizeof list; k++)
			n += (size_t)snprintf(list + n, sizeof list - n,
			    "%s%s", k > 0 ? ", " : "", f[k]);
		if (f[0] == NULL)
			client_error(c, ERRC_BAD_FIELD, "%.64s: unknown field "
			    "(%s takes none but op)", key, control_ops[i].name);
		else
			client_error(c, ERRC_BAD_FIELD, "%.64s: unknown field "
			    "(%s takes %s)", key, control_ops[i].name, list);
		return -1;
	}
	return 0;
}

/* Parse one request line and answer it. */
static void
client_request(struct client *c, const char *line, size_t len)
{
	json_error_t	 jerr;
	json_t		*req, *op;
	const char	*name;
	size_t		 i;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	/* Any JSON value loads, so that a scalar is told it is no object. */
	if ((req = json_loadb(line, len, JSON_DECODE_ANY, &jerr)) == NULL) {
		client_error(c, ERRC_BAD_JSON, "line %d column %d: %s", jerr.line,
		    jerr.column, jerr.text);
		return;
	}
	if (!json_is_object(req)) {
		client_error(c, ERRC_BAD_REQUEST, "a request is a JSON object");
		goto out;
	}
	if ((op = json_object_get(req, "op")) == NULL || !json_is_string(op)) {
		client_error(c, ERRC_BAD_REQUEST, "\"op\" (a string) is required");
		goto out;
	}
	name = json_string_value(op);
	if (ctl.stopping) {
		client_error(c, ERRC_SHUTTING_DOWN, "clfd is stopping");
		goto out;
	}
	for (i = 0; i < sizeof control_ops / sizeof control_ops[0]; i++) {
		if (strcmp(name, control_ops[i].name) == 0) {
			if (client_check_fields(c, req, i) == 0)
				control_ops[i].fn(c, req);
			goto out;
		}
	}
	client_error(c, ERRC_UNKNOWN_OP, "unknown op \"%.64s\"", name);
out:
	json_decref(req);
}

/*
 * Answer the complete lines in the input, one at a time, unless a wait
 * holds the connection or the client is behind reading replies.
 */
static void
client_process(struct client *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct evbuffer_ptr	 eol;
	size_t			 max = ctl.cfg->request_max, len;
	char			*line;
	int			 lines = 0;

	while (!c->dead && !c->closing && c->waiter == NULL &&
	    c->submit == NULL && evbuffer_get_length(out) < CTL_OUT_PAUSE &&
	    evbuffer_get_length(in) > 0) {
		if (lines == CTL_TURN_MAX) {
			/*
			 * Pipelined requests: the rest after everyone else
			 * has had a turn (a timer runs after the next poll).
			 */
			struct timeval now = { 0, 0 };

			evtimer_add(c->yield, &now);
			return;
		}
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (eol.pos == -1) {
			len = evbuffer_get_length(in);
			if (len <= max && !c->eof)
				break;		/* wait for the rest */
			if (len > max) {
				client_error(c, ERRC_TOO_LARGE, "request longer than "
				    "%zu bytes", max);
				client_close_after(c);
				break;
			}
		} else
			len = (size_t)eol.pos;
		if (len > max) {
			client_error(c, ERRC_TOO_LARGE, "request longer than %zu "
			    "bytes", max);
			client_close_after(c);
			break;
		}
		if ((line = malloc(len + 1)) == NULL) {
			client_error(c, ERRC_INTERNAL, "out of memory");
			client_close_after(c);
			break;
		}
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol.pos == -1 ? 0 : 1);
		client_request(c, line, len);
		free(line);
		lines++;
	}
	if (c->dead || c->closing)
		return;
	/*
	 * A client not held by a job must send a complete request within
	 * idle_timeout: of its connecting, of its last request, or of its
	 * job's end. More bytes of a line do not restart the clock, so that a
	 * client trickling a byte at a time cannot hold the connection
	 * forever; nor does silence. A client behind reading its replies is
	 * left to the stall clock.
	 */
	if (c->waiter == NULL && c->submit == NULL &&
	    evbuffer_get_length(out) < CTL_OUT_PAUSE) {
		struct timeval tv = { ctl.cfg->idle_timeout, 0 };

		if (ctl.cfg->idle_timeout > 0 && (lines > 0 ||
		    !evtimer_pending(c->idle, NULL)))
			evtimer_add(c->idle, &tv);
	} else
		evtimer_del(c->idle);
	if (c->eof && evbuffer_get_length(in) == 0 && c->waiter == NULL &&
	    c->submit == NULL)
		client_close_after(c);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	if (c->closing)
		evbuffer_drain(in, evbuffer_get_length(in));
	else
		client_process(c);
}

/* Output drained: close if asked, else go on with queued requests. */
static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;

	(void)bev;
	evtimer_del(c->stall);		/* all written */
	if (c->dead)
		client_free(c);
	else if (c->closing)
		client_linger(c);
	else
		client_process(c);
}

/* 1 when the peer closed both directions (not just its writing side). */
static int
client_hung_up(struct client *c)
{
	struct pollfd	pfd = { .fd = c->fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client	*c = arg;

	(void)bev;
	if ((what & BEV_EVENT_ERROR) || client_hung_up(c)) {
		client_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* Half-closed: answer what was sent, then close. */
		c->eof = 1;
		if (c->lingering)
			client_free(c);
		else
			client_process(c);
	}
}

static void
client_idle_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct client	*c = arg;

	(void)fd;
	(void)ev;
	if (c->lingering) {
		client_free(c);
		return;
	}
	client_error(c, ERRC_IDLE_TIMEOUT, "no complete request within %d "
	    "seconds", ctl.cfg->idle_timeout);
	client_close_after(c);
}

/* Output has waited idle_timeout to be read: the client is gone or stuck. */
static void
client_stall_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct client	*c = arg;

	(void)fd;
	(void)ev;
	log_warnx("client pid %ld: replies unread for %d second%s; dropped",
	    (long)c->pid, ctl.cfg->idle_timeout,
	    ctl.cfg->idle_timeout == 1 ? "" : "s");
	c->dead = 1;
	client_free(c);
}

static void
client_resume_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct client	*c = arg;

	(void)fd;
	(void)ev;
	if (c->dead)
		client_free(c);
	else if (c->closing &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		client_linger(c);
	else
		client_process(c);
}

static void
client_free(struct client *c)
{
	jobqueue_unwait(c->waiter);
	jobqueue_submit_forget(c->submit);
	TAILQ_REMOVE(&ctl.clients, c, entry);
	ctl.nclients--;
	if (c->lingering)
		ctl.nlingering--;
	event_free(c->idle);
	event_free(c->stall);
	event_free(c->resume);
	event_free(c->yield);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->outcb);
	bufferevent_free(c->bev);
	free(c);
}

/*
 * Refuse a connection with one error line, without blocking. What the
 * client sent already is read and dropped first (a bounded amount):
 * closing with unread input would reset the connection, and the client
 * could miss the line.
 */
static void
control_refuse(int fd, enum errcode code, const char *msg)
{
	char	line[4096];
	int	n, i;

	n = snprintf(line, sizeof line, "{\"ok\":false,\"error\":{\"code\":"
	    "\"%s\",\"message\":\"%s\"}}\n", errcode_name(code), msg);
	(void)!send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)shutdown(fd, SHUT_WR);
	for (i = 0; i < 16 && recv(fd, line, sizeof line, MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

/*
 * Out of descriptors: give up the reserve to accept one connection and
 * refuse it with limit, so that the client gets an answer, not silence;
 * then take the reserve back. 0 when one was refused, 1 when none was
 * waiting after all, -1 when there is no reserve to give up or accept
 * still fails.
 */
static int
control_refuse_nofd(int lfd)
{
	int	fd, saved;

	if (ctl.reserve_fd == -1)
		return -1;
	close(ctl.reserve_fd);
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	saved = errno;
	if (fd != -1)
		control_refuse(fd, ERRC_LIMIT, "out of file descriptors");
	ctl.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd != -1)
		return 0;
	errno = saved;
	return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
}

static void
control_new_client(int fd)
{
	struct client	*c;
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;

	if ((c = calloc(1, sizeof *c)) == NULL)
		goto fail;
	c->fd = fd;
	c->uid = (uid_t)-1;
	c->pid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->uid = cred.uid;
		c->pid = cred.pid;
	}
	if ((c->bev = bufferevent_socket_new(ctl.base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(c);
		goto fail;
	}
	if ((c->idle = evtimer_new(ctl.base, client_idle_cb, c)) == NULL ||
	    (c->stall = evtimer_new(ctl.base, client_stall_cb, c)) == NULL ||
	    (c->resume = event_new(ctl.base, -1, 0, client_resume_cb,
	    c)) == NULL ||
	    (c->yield = evtimer_new(ctl.base, client_resume_cb, c)) == NULL) {
		if (c->idle != NULL)
			event_free(c->idle);
		if (c->stall != NULL)
			event_free(c->stall);
		if (c->resume != NULL)
			event_free(c->resume);
		bufferevent_free(c->bev);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	if ((c->outcb = evbuffer_add_cb(bufferevent_get_output(c->bev),
	    client_out_cb, c)) == NULL) {
		event_free(c->idle);
		event_free(c->stall);
		event_free(c->resume);
		event_free(c->yield);
		bufferevent_free(c->bev);
		free(c);
		goto fail;
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0, ctl.cfg->request_max + 2);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&ctl.clients, c, entry);
	ctl.nclients++;
	if (ctl.cfg->idle_timeout > 0) {
		struct timeval tv = { ctl.cfg->idle_timeout, 0 };

		evtimer_add(c->idle, &tv);	/* silence counts too */
	}
	return;
fail:
	log_warnx("out of memory accepting a client");
	close(fd);
}

static void
control_pause_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (ctl.accept_ev != NULL)
		event_add(ctl.accept_ev, NULL);
}

/* Accept every pending connection; survive what can be survived. */
static void
control_accept_cb(evutil_socket_t lfd, short ev, void *arg)
{
	struct timeval	one = { 1, 0 };
	int		fd, refused = 0;

	(void)ev;
	(void)arg;
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE) {
				switch (control_refuse_nofd(lfd)) {
				case 0:
					if (refused++ == 0)
						log_warnx("accept: out of file "
						    "descriptors: clients "
						    "refused with limit");
					continue;
				case 1:
					return;
				default:
					break;
				}
			}
			log_warn("accept");
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: pause for a second. */
				event_del(ctl.accept_ev);
				evtimer_add(ctl.pause_ev, &one);
			}
			return;
		}
		if (ctl.stopping)
			control_refuse(fd, ERRC_SHUTTING_DOWN, "clfd is stopping");
		else if (ctl.nclients - ctl.nlingering >=
		    ctl.cfg->connections_max)
			control_refuse(fd, ERRC_LIMIT, "too many connections "
			    "(connections_max)");
		else
			control_new_client(fd);
	}
}

void
control_start(struct event_base *base, const struct timeval *started)
{
	ctl.base = base;
	ctl.started = *started;
	/* Kept to be given up when out of descriptors (see above). */
	if (ctl.reserve_fd == -1)
		ctl.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((ctl.accept_ev = event_new(base, ctl.fd, EV_READ | EV_PERSIST,
	    control_accept_cb, NULL)) == NULL ||
	    (ctl.pause_ev = evtimer_new(base, control_pause_cb, NULL)) == NULL ||
	    event_add(ctl.accept_ev, NULL) == -1)
		fatalx("cannot listen for clients");
}

void
control_free(void)
{
	struct client	*c;

	while ((c = TAILQ_FIRST(&ctl.clients)) != NULL)
		client_free(c);
	if (ctl.lock_fd != -1) {
		close(ctl.lock_fd);
		ctl.lock_fd = -1;
	}
	if (ctl.reserve_fd != -1) {
		close(ctl.reserve_fd);
		ctl.reserve_fd = -1;
	}
}
