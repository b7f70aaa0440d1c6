/*
 * supervisor.c: clfd's main process.
 *
 * One libevent loop owns everything: the worker slots, the signals
 * (SIGTERM/SIGINT stop, SIGHUP reload, SIGCHLD reap, all as libevent
 * signal events so that the handlers themselves do nothing), the client
 * socket (control.c) and the job queue (jobqueue.c). Each slot is one
 * pre-forked worker on a socketpair, with its state written down: pid,
 * starting/idle/busy/exiting, whether it may be respawned, the task it
 * runs, how often it crashed and when it may be spawned again. One more
 * slot, the expander, runs nothing but pattern expansions, so that a
 * submit is answered promptly even while every worker is on a long file;
 * idle workers take expansions too, ahead of file tasks.
 */
#include <config.h>

#include "supervisor.h"

#include "config.h"
#include "control.h"
#include "jobqueue.h"
#include "log.h"
#include "paths.h"
#include "proto.h"
#include "systemd.h"
#include "worker.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#define SV_BACKOFF_MIN_MS	100	/* first respawn delay after a crash */
#define SV_BACKOFF_MAX_MS	10000
#define SV_STOP_GRACE_SEC	3	/* then SIGKILL what is left */
#define SV_TASK_GRACE_SEC	2	/* past task_timeout: the worker is killed */
#define SV_READ_CHUNK		(256 * 1024)
#define SV_READ_CHUNKS		16	/* per callback: others get their turn */

enum slot_state {
	SLOT_DEAD,		/* no process; maybe a respawn timer */
	SLOT_STARTING,		/* forked, no READY yet */
	SLOT_IDLE,
	SLOT_BUSY,		/* running task */
	SLOT_EXITING,		/* told to go (reload, stop) */
};

static const char *const slot_state_names[] = {
	"dead", "starting", "idle", "busy", "exiting"
};

struct slot {
	int		 idx;		/* -1: the expander */
	char		 name[24];	/* "worker 3", "expander" */
	pid_t		 pid;
	enum slot_state	 state;
	int		 respawn;	/* 0 after a setup failure */
	int		 retire;	/* replace once idle (reload) */
	int		 removed;	/* beyond a reload's smaller count */
	int		 bad;		/* sent nonsense, being killed */
	char		 bad_why[96];	/* what it sent, for its task's error */
	int		 cancelled;	/* killed for a cancel: no crash */
	int		 fd;
	struct event	*rev, *wev;
	struct event	*timer;		/* respawn back-off */
	struct evbuffer	*in, *out;
	struct task	*task;
	uint64_t	 task_id;
	time_t		 deadline;	/* kill it then, if still on task; 0: none */
	int		 crashes;	/* in a row, reset by a success */
	struct timeval	 next_spawn;
};

static struct {
	struct event_base		*base;
	struct config			*cfg;
	const struct supervisor_opts	*opts;
	struct slot			**slots;	/* stable: events point at them */
	int				 nslots;	/* slots[] in use */
	struct slot			 *xslot;	/* the expander */
	int				 want;		/* workers configured */
	struct event			*sig[5];
	struct event			*tick;
	int				 stopping;
	int				 failed;	/* exit 1: no worker could run */
	int				 ready_sent;
	struct timeval			 started;
	uint64_t			 restarts;	/* after crashes */
	uint64_t			 replaced;	/* stopped on purpose */
	uint64_t			 next_task;
	int				 idle_secs;
	time_t				 idle_since;
	time_t				 stop_deadline;
	char				 spool[PATH_MAX];	/* "" until made */
} sv;

static void	slot_spawn(struct slot *);
static void	slot_stop(struct slot *);
static void	sv_check_done(void);
static void	sv_trim(void);
static int	sv_nworkers(void);

static time_t
sv_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

double
supervisor_uptime(void)
{
	struct timeval	now, d;

	gettimeofday(&now, NULL);
	timersub(&now, &sv.started, &d);
	return (double)d.tv_sec + (double)d.tv_usec / 1e6;
}

int
supervisor_stopping(void)
{
	return sv.stopping;
}

/*
 * Tell systemd (when it listens) what we are doing; only when that
 * changed, as this runs after every message from a worker.
 */
static void
sv_status(void)
{
	static char	last[160];
	char		text[sizeof last];
	int		i, alive = 0, busy = 0;

	for (i = 0; i < sv.nslots; i++) {
		if (sv.slots[i]->state == SLOT_IDLE || sv.slots[i]->state == SLOT_BUSY)
			alive++;
		if (sv.slots[i]->state == SLOT_BUSY)
			busy++;
	}
	snprintf(text, sizeof text, "%d worker%s (%d busy), %zu job%s active, "
	    "%zu client%s", alive, alive == 1 ? "" : "s", busy,
	    jobqueue_active(), jobqueue_active() == 1 ? "" : "s",
	    control_clients(), control_clients() == 1 ? "" : "s");
	if (strcmp(text, last) == 0)
		return;
	memcpy(last, text, sizeof last);
	systemd_status("%s", text);
}

/*
 * READY=1 once every slot's first worker is up (or has failed its setup
 * for good), so that systemd starts clients against a working daemon.
 */
static void
sv_check_ready(void)
{
	int	i, up = 0, done = 0;

	if (sv.ready_sent || sv.stopping)
		return;
	for (i = 0; i < sv.nslots; i++) {
		if (sv.slots[i]->state == SLOT_IDLE ||
		    sv.slots[i]->state == SLOT_BUSY)
			up++;
		else if (!sv.slots[i]->respawn)
			done++;
	}
	if (up + done < sv.want)
		return;
	sv.ready_sent = 1;
	log_info("%d worker%s ready", up, up == 1 ? "" : "s");
	systemd_ready();
}

/* Queue a message to a worker. */
static int
slot_send(struct slot *s, const uint8_t *msg, size_t len)
{
	if (evbuffer_add(s->out, msg, len) == -1)
		return -1;
	return event_add(s->wev, NULL);
}

/* Hand a task to an idle slot. */
static void
slot_give(struct slot *s, struct task *t)
{
	uint8_t	*msg;
	size_t	 len;

	s->task_id = ++sv.next_task;
	if ((msg = jobqueue_task_message(t, s->task_id, &len)) == NULL ||
	    slot_send(s, msg, len) == -1) {
		free(msg);
		jobqueue_task_lost(t, "could not be sent the task");
		return;
	}
	free(msg);
	s->task = t;
	s->state = SLOT_BUSY;
	s->deadline = sv.cfg->task_timeout > 0 ? sv_now() +
	    sv.cfg->task_timeout + SV_TASK_GRACE_SEC : 0;
	switch (jobqueue_task_kind(t)) {
	case JQ_TASK_EXPAND:
		log_debug("%s: expanding patterns", s->name);
		break;
	case JQ_TASK_MERGE:
		log_debug("%s: job %lld: merging", s->name,
		    (long long)jobqueue_task_job(t));
		break;
	default:
		log_debug("%s: job %lld: %s", s->name,
		    (long long)jobqueue_task_job(t), jobqueue_task_path(t));
	}
}

void
supervisor_kick(void)
{
	struct slot	*s;
	struct task	*t;
	int		 i;

	if (sv.stopping)
		return;
	/* The expander first: it keeps the workers on their files. */
	s = sv.xslot;
	if (s != NULL && s->state == SLOT_IDLE && !s->retire &&
	    (t = jobqueue_next_expansion()) != NULL)
		slot_give(s, t);
	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (s->state != SLOT_IDLE || s->retire)
			continue;
		if ((t = jobqueue_next_task()) == NULL)
			break;
		slot_give(s, t);
	}
}

/*
 * A message from a worker that makes no sense: a bug, so kill it. Its
 * task is retried (once) when it is reaped, with why as the reason.
 */
static void
slot_bad(struct slot *s, const char *why)
{
	log_warnx("%s (pid %ld): %s; killing it", s->name, (long)s->pid, why);
	snprintf(s->bad_why, sizeof s->bad_why, "%s", why);
	s->bad = 1;
	if (s->pid > 0)
		kill(s->pid, SIGKILL);
	if (s->rev != NULL)
		event_del(s->rev);
}

/*
 * The slot's task is answered: the worker is free again (unless it is on
 * its way out) and has shown it works, so its crash count starts over.
 */
static void
slot_task_over(struct slot *s)
{
	if (s->state == SLOT_BUSY)
		s->state = SLOT_IDLE;
	s->crashes = 0;
	s->task = NULL;
	s->deadline = 0;
}

/*
 * The supervisor's own deadline for a task: a worker's alarm(2) is of no
 * use if it is stopped (SIGSTOP) or stuck in the kernel, so a worker
 * still on its task task_timeout + a grace after it was handed over is
 * killed, whatever its state. Its task is retried or failed at once, as
 * if it had died: a worker in uninterruptible sleep may take a while to
 * be reaped, and its job need not wait for that. The slot, exiting, is
 * spawned again once the process is reaped; whatever it still sends is
 * ignored.
 */
static void
sv_check_deadlines(time_t now)
{
	struct slot	*s;
	struct task	*t;
	char		 why[sizeof ((struct slot *)0)->bad_why];
	int		 i, lost = 0;

	for (i = -1; i < sv.nslots; i++) {
		s = i < 0 ? sv.xslot : sv.slots[i];
		if (s == NULL || s->task == NULL || s->deadline == 0 ||
		    now < s->deadline || s->pid <= 0)
			continue;
		snprintf(why, sizeof why, "gave no answer within task_timeout "
		    "(%d s), killed", sv.cfg->task_timeout);
		log_warnx("%s (pid %ld): no answer %d s after task_timeout; "
		    "killing it", s->name, (long)s->pid, SV_TASK_GRACE_SEC);
		snprintf(s->bad_why, sizeof s->bad_why, "%s", why);
		s->bad = 1;
		kill(s->pid, SIGKILL);
		if (s->rev != NULL)
			event_del(s->rev);
		t = s->task;
		s->task = NULL;
		s->deadline = 0;
		s->state = SLOT_EXITING;
		jobqueue_task_lost(t, why);
		lost++;
	}
	if (lost > 0)
		supervisor_kick();
}

/*
 * Check a message as soon as its header is in, before its payload is
 * read: a type and length possible (proto_hdr_check), a type the slot
 * can send in its state, and, once the fixed part is in too, its lengths
 * adding up to the header's and its task id. NULL when fine, else what
 * is wrong.
 */
static const char *
slot_check(struct slot *s, const struct proto_hdr *h)
{
	union {
		struct proto_merged_fixed	m;
		struct proto_expanded_fixed	x;
	} f;
	uint8_t		buf[sizeof(struct proto_hdr) + sizeof f];
	size_t		have = evbuffer_get_length(s->in);
	uint64_t	sum;

	if (proto_hdr_check(h) == -1)
		return h->len > PROTO_MSG_MAX ? "sent an oversized message" :
		    "sent a garbled message header";
	switch (h->type) {
	case PROTO_READY:
		if (s->state != SLOT_STARTING &&
		    !(s->state == SLOT_EXITING && s->task == NULL))
			return "sent an unexpected READY";
		return NULL;
	case PROTO_RESULT:
		if (s->task == NULL || jobqueue_task_kind(s->task) != JQ_TASK_MAP)
			return "sent an unexpected result";
		return NULL;
	case PROTO_MERGED:
		if (s->task == NULL ||
		    jobqueue_task_kind(s->task) != JQ_TASK_MERGE)
			return "sent an unexpected merge answer";
		if (have < sizeof *h + sizeof f.m)
			return NULL;
		evbuffer_copyout(s->in, buf, sizeof *h + sizeof f.m);
		memcpy(&f.m, buf + sizeof *h, sizeof f.m);
		sum = (uint64_t)sizeof f.m + f.m.error_len;
		if (f.m.task != s->task_id || sum != h->len)
			return "sent a garbled merge answer";
		return NULL;
	case PROTO_EXPANDED:
		if (s->task == NULL ||
		    jobqueue_task_kind(s->task) != JQ_TASK_EXPAND)
			return "sent an unexpected file list";
		if (have < sizeof *h + sizeof f.x)
			return NULL;
		evbuffer_copyout(s->in, buf, sizeof *h + sizeof f.x);
		memcpy(&f.x, buf + sizeof *h, sizeof f.x);
		sum = (uint64_t)sizeof f.x + (uint64_t)f.x.nunmatched * 4 +
		    f.x.error_len + f.x.paths_len +
		    (uint64_t)f.x.npaths * sizeof(struct expand_id);
		if (f.x.task != s->task_id || sum != h->len)
			return "sent a garbled file list";
		return NULL;
	default:
		return "sent a message of a supervisor's type";
	}
}

/* Handle every complete message in the slot's input buffer. */
static void
slot_messages(struct slot *s)
{
	const char		*why;
	struct proto_hdr	 h;
	struct proto_result	 r;
	struct proto_merged	 m;
	struct proto_expanded	 x;
	struct proto_ready	 ready;
	uint8_t			*p;

	while (!s->bad && evbuffer_get_length(s->in) >= sizeof h) {
		evbuffer_copyout(s->in, &h, sizeof h);
		if ((why = slot_check(s, &h)) != NULL) {
			slot_bad(s, why);
			return;
		}
		if (evbuffer_get_length(s->in) < sizeof h + h.len)
			return;
		if ((p = evbuffer_pullup(s->in, (ev_ssize_t)(sizeof h + h.len))) == NULL) {
			slot_bad(s, "out of memory reading a message");
			return;
		}
		p += sizeof h;
		switch (h.type) {
		case PROTO_READY:
			/* (one stopped while starting still says READY) */
			if (h.len == sizeof ready && s->state == SLOT_EXITING &&
			    s->task == NULL)
				break;
			if (h.len != sizeof ready || s->state != SLOT_STARTING) {
				slot_bad(s, "unexpected READY");
				return;
			}
			memcpy(&ready, p, sizeof ready);
			if (ready.version != PROTO_VERSION) {
				slot_bad(s, "protocol version mismatch");
				return;
			}
			s->state = SLOT_IDLE;
			log_debug("%s (pid %ld) ready", s->name, (long)s->pid);
			break;
		case PROTO_RESULT: {
			struct task *t = s->task;

			/* (an exiting worker may finish its task first) */
			if (t == NULL || jobqueue_task_kind(t) != JQ_TASK_MAP ||
			    proto_result_decode(p, h.len, &r) == -1 ||
			    r.task != s->task_id) {
				slot_bad(s, "unexpected or malformed result");
				return;
			}
			if (jobqueue_task_done(t, &r) == -1) {
				slot_bad(s, "malformed result");
				return;
			}
			slot_task_over(s);
			break;
		}
		case PROTO_MERGED: {
			struct task *t = s->task;

			if (t == NULL || jobqueue_task_kind(t) != JQ_TASK_MERGE ||
			    proto_merged_decode(p, h.len, &m) == -1 ||
			    m.f.task != s->task_id) {
				slot_bad(s, "unexpected or malformed merge answer");
				return;
			}
			if (jobqueue_task_merged(t, &m) == -1) {
				slot_bad(s, "malformed merge answer");
				return;
			}
			slot_task_over(s);
			break;
		}
		case PROTO_EXPANDED: {
			struct task *t = s->task;

			if (t == NULL || jobqueue_task_kind(t) != JQ_TASK_EXPAND ||
			    proto_expanded_decode(p, h.len, &x) == -1 ||
			    x.f.task != s->task_id) {
				slot_bad(s, "unexpected or malformed file list");
				return;
			}
			/* A bad list: the expansion is lost with the worker. */
			if (jobqueue_task_expanded(t, &x) == -1) {
				slot_bad(s, "malformed file list");
				return;
			}
			slot_task_over(s);
			break;
		}
		default:
			slot_bad(s, "unknown message type");
			return;
		}
		evbuffer_drain(s->in, sizeof h + h.len);
	}
}

static void
slot_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct slot	*s = arg;
	int		 n, chunks;

	(void)ev;
	/*
	 * A chunk at a time, each checked before the next is read, so that
	 * a bad header stops the reading; a bounded number per call, so
	 * that a worker sending a big result does not hold up the loop.
	 */
	for (chunks = 0; chunks < SV_READ_CHUNKS && !s->bad; chunks++) {
		n = evbuffer_read(s->in, fd, SV_READ_CHUNK);
		if (n > 0) {
			slot_messages(s);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			/* EOF: the worker is going; the reaper does the rest. */
			event_del(s->rev);
		}
		break;
	}
	if (s->state == SLOT_IDLE && (s->retire || sv.stopping))
		slot_stop(s);
	supervisor_kick();
	sv_check_ready();
	sv_status();
}

static void
slot_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct slot	*s = arg;

	(void)ev;
	if (evbuffer_write(s->out, fd) == -1 && errno != EAGAIN &&
	    errno != EINTR) {
		/* The worker is gone; reaping will follow. */
		evbuffer_drain(s->out, evbuffer_get_length(s->out));
	}
	if (evbuffer_get_length(s->out) > 0)
		event_add(s->wev, NULL);
}

/* Release the slot's channel (the process is gone or going). */
static void
slot_close(struct slot *s)
{
	if (s->rev != NULL)
		event_free(s->rev);
	if (s->wev != NULL)
		event_free(s->wev);
	if (s->in != NULL)
		evbuffer_free(s->in);
	if (s->out != NULL)
		evbuffer_free(s->out);
	if (s->fd != -1)
		close(s->fd);
	s->rev = s->wev = NULL;
	s->in = s->out = NULL;
	s->fd = -1;
}

/* Ask a worker to go: closing its channel makes it exit when idle. */
static void
slot_stop(struct slot *s)
{
	if (s->pid <= 0 || s->state == SLOT_EXITING)
		return;
	s->state = SLOT_EXITING;
	if (s->fd != -1)
		shutdown(s->fd, SHUT_WR);
}

static void
slot_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	slot_spawn(arg);
}

/* Fork the slot's worker on a fresh socketpair. */
static void
slot_spawn(struct slot *s)
{
	int	sp[2], fd;
	pid_t	pid, parent = getpid();

	if (sv.stopping || !s->respawn || s->state != SLOT_DEAD)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("socketpair");
		goto retry;
	}
	/* Everything the slot needs first: out of memory is a retry. */
	evutil_make_socket_nonblocking(sp[0]);
	if ((s->in = evbuffer_new()) == NULL || (s->out = evbuffer_new()) == NULL ||
	    (s->rev = event_new(sv.base, sp[0], EV_READ | EV_PERSIST,
	    slot_read_cb, s)) == NULL ||
	    (s->wev = event_new(sv.base, sp[0], EV_WRITE, slot_write_cb,
	    s)) == NULL) {
		log_warnx("out of memory setting up %s", s->name);
		goto undo;
	}
	switch ((pid = fork())) {
	case -1:
		log_warn("fork");
		goto undo;
	case 0:
		/* Keep stdio and our end of the pair, nothing else. */
		fd = sp[1];
		if (fd != 3) {
			if (dup2(fd, 3) == -1)
				_exit(WORKER_EXIT_SETUP);
			fd = 3;
		}
		closefrom(4);
		worker_main(fd, s->idx, parent, sv.cfg, sv.spool);
	default:
		break;
	}
	close(sp[1]);
	s->fd = sp[0];
	s->pid = pid;
	s->state = SLOT_STARTING;
	s->retire = 0;
	s->bad = 0;
	s->cancelled = 0;
	if (event_add(s->rev, NULL) == -1) {
		/* Reaped and spawned again, like a crash. */
		log_warnx("%s: cannot watch its channel", s->name);
		kill(pid, SIGKILL);
	}
	log_debug("%s: pid %ld", s->name, (long)pid);
	return;
undo:
	if (s->rev != NULL)
		event_free(s->rev);
	if (s->wev != NULL)
		event_free(s->wev);
	if (s->in != NULL)
		evbuffer_free(s->in);
	if (s->out != NULL)
		evbuffer_free(s->out);
	s->rev = s->wev = NULL;
	s->in = s->out = NULL;
	close(sp[0]);
	close(sp[1]);
retry:
	s->crashes++;
	s->next_spawn.tv_sec = 1;
	s->next_spawn.tv_usec = 0;
	evtimer_add(s->timer, &s->next_spawn);
}

/* Describe a wait status: "exited with code 1", "killed by signal 9". */
static void
sv_describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d%s", WTERMSIG(status),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "stopped with status %#x", status);
}

/* A worker is gone: fail or retry its task, then respawn with back-off. */
static void
slot_reaped(struct slot *s, int status)
{
	struct task	*t;
	char		 why[sizeof s->bad_why];
	int		 asked = s->state == SLOT_EXITING, ms;

	/* A result it sent before dying still counts. */
	while (s->fd != -1 && !s->bad &&
	    evbuffer_read(s->in, s->fd, SV_READ_CHUNK) > 0)
		slot_messages(s);
	/* Killed for sending nonsense: that is what its task is told. */
	if (s->bad)
		snprintf(why, sizeof why, "%s", s->bad_why);
	else
		sv_describe(status, why, sizeof why);
	t = s->task;
	s->task = NULL;
	slot_close(s);
	if (asked)
		log_debug("%s (pid %ld) %s", s->name, (long)s->pid, why);
	else
		log_warnx("%s (pid %ld) %s", s->name, (long)s->pid, why);
	s->pid = 0;
	s->state = SLOT_DEAD;
	if (t != NULL)
		jobqueue_task_lost(t, why);
	if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_SETUP) {
		log_warnx("%s failed its setup; not respawning", s->name);
		s->respawn = 0;
	}
	if (sv.stopping || !s->respawn)
		return;		/* (a removed slot has respawn 0) */
	/*
	 * Stopped on purpose (a reload, or killed because its job was
	 * cancelled): replaced at once, not a crash, no back-off.
	 */
	if (s->cancelled ||
	    (asked && WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		sv.replaced++;
		slot_spawn(s);
		return;
	}
	sv.restarts++;
	/* Crashes in a row double the delay: 0.1 s, 0.2 s, ... 10 s. */
	ms = SV_BACKOFF_MIN_MS << (s->crashes < 7 ? s->crashes : 7);
	if (ms > SV_BACKOFF_MAX_MS)
		ms = SV_BACKOFF_MAX_MS;
	s->crashes++;
	s->next_spawn.tv_sec = ms / 1000;
	s->next_spawn.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->timer, &s->next_spawn);
}

/* SIGCHLD: reap until there is nothing left. */
static void
sv_reap(void)
{
	pid_t	pid;
	int	status, i, alive = 0;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < sv.nslots; i++)
			if (sv.slots[i]->pid == pid)
				break;
		if (i == sv.nslots && sv.xslot->pid == pid) {
			slot_reaped(sv.xslot, status);
			continue;
		}
		if (i == sv.nslots) {
			log_debug("reaped unknown child %ld", (long)pid);
			continue;
		}
		slot_reaped(sv.slots[i], status);
	}
	sv_trim();
	for (i = 0; i < sv.nslots; i++)
		alive += sv.slots[i]->pid > 0 || sv.slots[i]->respawn;
	if (alive == 0 && !sv.stopping) {
		log_warnx("no worker can be started");
		sv.failed = 1;
		supervisor_stop("no workers");
	}
	supervisor_kick();
	sv_check_ready();
	sv_status();
	sv_check_done();
}

/* A new slot, dead, with its respawn timer; idx -1 is the expander. */
static struct slot *
slot_new(int idx)
{
	struct slot	*s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->idx = idx;
	if (idx < 0)
		snprintf(s->name, sizeof s->name, "expander");
	else
		snprintf(s->name, sizeof s->name, "worker %d", idx);
	s->fd = -1;
	s->state = SLOT_DEAD;
	if ((s->timer = evtimer_new(sv.base, slot_timer_cb, s)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

/*
 * Set the number of workers: new slots are spawned at once; slots beyond
 * n are removed, their idle workers stopped now and busy ones after their
 * task (slot_read_cb), and freed once reaped (sv_trim). A slot below n
 * that could not run (setup failure, or being removed) may run again.
 */
static int
sv_resize(int n)
{
	struct slot	**v, *s;
	int		  i;

	if (n > sv.nslots) {
		if ((v = reallocarray(sv.slots, (size_t)n, sizeof *v)) == NULL)
			return -1;
		sv.slots = v;
		for (i = sv.nslots; i < n; i++) {
			if ((s = slot_new(i)) == NULL)
				break;
			sv.slots[sv.nslots++] = s;
		}
		if (sv.nslots < n)
			return -1;
	}
	sv.want = n;
	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (i < n) {
			if (!s->respawn || s->removed) {
				s->respawn = 1;
				s->removed = 0;
				s->crashes = 0;
			}
			if (s->state == SLOT_DEAD) {
				evtimer_del(s->timer);
				slot_spawn(s);
			}
			continue;
		}
		s->respawn = 0;
		s->removed = 1;
		s->retire = 1;
		evtimer_del(s->timer);
		if (s->state == SLOT_IDLE || s->state == SLOT_STARTING)
			slot_stop(s);
	}
	sv_trim();
	return 0;
}

/* Free the removed slots at the end whose workers are gone. */
static void
sv_trim(void)
{
	struct slot	*s;

	while (sv.nslots > sv.want &&
	    (s = sv.slots[sv.nslots - 1])->state == SLOT_DEAD) {
		slot_close(s);
		event_free(s->timer);
		free(s);
		sv.nslots--;
	}
}

/* Two optional strings are the same. */
static int
sv_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * SIGHUP: load the config file again; keep the old one when it is bad.
 * Workers take only worker_memory, task_timeout, walk_max,
 * refuse_hardlinks, cache_dir and cache_max from the config when they
 * start (the rest comes with
 * each task), so they are replaced only when one of those changed.
 * READY=1 follows once the workers are back.
 */
static void
sv_reload(void)
{
	struct config	*c;
	char		 err[512];
	int		 i, replace;

	if (sv.opts->config_file == NULL) {
		log_info("SIGHUP: no config file to reload");
		return;
	}
	systemd_reloading();
	if ((c = calloc(1, sizeof *c)) == NULL) {
		log_warnx("reload: out of memory");
		goto out;
	}
	config_defaults(c);
	if (config_load(c, sv.opts->config_file, err, sizeof err) == -1) {
		log_errx("reload failed, keeping the old config: %s", err);
		config_free(c);
		free(c);
		goto out;
	}
	if (sv.opts->socket_path == NULL && !sv_same(sv.cfg->socket_path,
	    c->socket_path))
		log_warnx("reload: socket_path changed to %s: a restart is needed "
		    "to listen there; still on the old socket",
		    c->socket_path != NULL ? c->socket_path : "(the default)");
	replace = c->worker_memory != sv.cfg->worker_memory ||
	    c->task_timeout != sv.cfg->task_timeout ||
	    c->walk_max != sv.cfg->walk_max ||
	    c->refuse_hardlinks != sv.cfg->refuse_hardlinks ||
	    c->cache_max != sv.cfg->cache_max ||
	    !sv_same(c->cache_dir, sv.cfg->cache_dir);
	jobqueue_set_config(c);
	control_set_config(c);
	config_free(sv.cfg);
	free(sv.cfg);
	sv.cfg = c;
	/* Replaced once idle: busy ones finish their task first. */
	for (i = -1; replace && i < sv.nslots; i++) {
		struct slot *s = i < 0 ? sv.xslot : sv.slots[i];

		s->retire = 1;
		if (s->state == SLOT_IDLE)
			slot_stop(s);
	}
	if (sv_nworkers() != sv.want) {
		log_info("reload: %d worker%s, was %d", sv_nworkers(),
		    sv_nworkers() == 1 ? "" : "s", sv.want);
		if (sv_resize(sv_nworkers()) == -1)
			log_warnx("reload: out of memory; still %d worker%s",
			    sv.want, sv.want == 1 ? "" : "s");
	}
	log_info("reloaded %s%s", sv.opts->config_file,
	    replace ? "; replacing the workers" : "");
out:
	sv.ready_sent = 0;
	sv_check_ready();
}

/*
 * A job was cancelled: its running tasks' results would be thrown away,
 * so the workers running them are stopped now rather than left busy.
 */
void
supervisor_cancel_job(int64_t job)
{
	struct slot	*s;
	int		 i;

	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (s->state != SLOT_BUSY || s->task == NULL ||
		    jobqueue_task_job(s->task) != job)
			continue;
		log_debug("worker %d (pid %ld): job %lld cancelled, stopping it",
		    s->idx, (long)s->pid, (long long)job);
		slot_stop(s);
		s->cancelled = 1;
		kill(s->pid, SIGKILL);
	}
}

/* Stopping is over once every worker is reaped and replies are written. */
static void
sv_check_done(void)
{
	int	i;

	if (!sv.stopping)
		return;
	for (i = 0; i < sv.nslots; i++)
		if (sv.slots[i]->pid > 0 && sv_now() < sv.stop_deadline)
			return;
	if (sv.xslot->pid > 0 && sv_now() < sv.stop_deadline)
		return;
	if (control_pending_output() > 0 && sv_now() < sv.stop_deadline)
		return;
	event_base_loopbreak(sv.base);
}

void
supervisor_stop(const char *why)
{
	int	i;

	if (sv.stopping)
		return;
	sv.stopping = 1;
	sv.stop_deadline = sv_now() + SV_STOP_GRACE_SEC;
	log_info("stopping: %s", why);
	systemd_stopping();
	control_stop_accepting();
	jobqueue_shutdown();
	for (i = -1; i < sv.nslots; i++) {
		struct slot *s = i < 0 ? sv.xslot : sv.slots[i];

		evtimer_del(s->timer);
		if (s->pid > 0) {
			/* Idle workers leave on EOF; busy ones are stopped. */
			if (s->state == SLOT_BUSY)
				kill(s->pid, SIGTERM);
			slot_stop(s);
		}
	}
	sv_check_done();
}

static void
sv_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	(void)arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		supervisor_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGHUP:
		if (!sv.stopping)
			sv_reload();
		break;
	case SIGCHLD:
		sv_reap();
		break;
	default:
		break;
	}
}

/* SIGKILL the workers still there, and with reap wait for them too. */
static void
sv_kill_left(int reap)
{
	struct slot	*s;
	int		 i;

	for (i = -1; i < sv.nslots; i++) {
		s = i == -1 ? sv.xslot : sv.slots[i];
		if (s == NULL || s->pid <= 0)
			continue;
		if (!reap)
			log_warnx("%s (pid %ld) still there; killing it",
			    s->name, (long)s->pid);
		kill(s->pid, SIGKILL);
		if (reap)
			waitpid(s->pid, NULL, 0);
	}
}

/* Once a second: tasks' deadlines, idle exit; while stopping, its deadline. */
static void
sv_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	time_t	now = sv_now();

	(void)fd;
	(void)ev;
	(void)arg;
	if (sv.stopping) {
		if (now >= sv.stop_deadline)
			sv_kill_left(0);
		sv_check_done();
		return;
	}
	sv_check_deadlines(now);
	if (sv.idle_secs <= 0)
		return;
	if (jobqueue_active() > 0 || control_clients() > 0) {
		sv.idle_since = 0;
		return;
	}
	if (sv.idle_since == 0)
		sv.idle_since = now;
	else if (now - sv.idle_since >= sv.idle_secs)
		supervisor_stop("idle");
}

json_t *
supervisor_workers_json(uid_t uid)
{
	json_t	*o, *slots, *pids;
	int	 i, alive = 0, busy = 0;

	if ((slots = json_array()) == NULL)
		return NULL;
	if ((pids = json_array()) == NULL) {
		json_decref(slots);
		return NULL;
	}
	for (i = 0; i < sv.nslots; i++) {
		struct slot	*s = sv.slots[i];
		json_t		*e;

		if (s->state == SLOT_IDLE || s->state == SLOT_BUSY)
			alive++;
		if (s->state == SLOT_BUSY)
			busy++;
		if (s->pid > 0)
			json_array_append_new(pids, json_integer(s->pid));
		e = json_pack("{s:i,s:I,s:s,s:i}", "slot", i, "pid",
		    (json_int_t)s->pid, "state", slot_state_names[s->state],
		    "crashes", s->crashes);
		if (e != NULL && s->task != NULL &&
		    jobqueue_task_kind(s->task) == JQ_TASK_EXPAND)
			json_object_set_new(e, "expanding", json_true());
		else if (e != NULL && s->task != NULL && (uid == 0 ||
		    jobqueue_task_uid(s->task) == uid)) {
			json_object_set_new(e, "job", json_integer(
			    jobqueue_task_job(s->task)));
			if (jobqueue_task_kind(s->task) == JQ_TASK_MERGE)
				json_object_set_new(e, "merging", json_true());
			else
				json_object_set_new(e, "path", json_string(
				    jobqueue_task_path(s->task)));
		}
		json_array_append_new(slots, e);
	}
	o = json_pack("{s:i,s:i,s:i,s:I,s:I,s:o,s:o}", "configured", sv.want,
	    "alive", alive, "busy", busy, "restarts", (json_int_t)sv.restarts,
	    "replaced", (json_int_t)sv.replaced, "pids", pids, "slots", slots);
	if (o != NULL)
		json_object_set_new(o, "expander", json_pack("{s:I,s:s,s:b}",
		    "pid", (json_int_t)sv.xslot->pid, "state",
		    slot_state_names[sv.xslot->state], "expanding",
		    sv.xslot->task != NULL));
	return o;
}

/* The number of workers: -w, else the config, else the online CPUs. */
static int
sv_nworkers(void)
{
	long	n;

	if (sv.opts->workers > 0)
		return sv.opts->workers;
	if (sv.opts->workers == 0 && sv.cfg->workers > 0)
		return sv.cfg->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* Remove a spool directory and the files in it (it has no subdirectories). */
static void
sv_spool_rmdir(int basefd, const char *name)
{
	struct dirent	*d;
	DIR		*dir;
	int		 dfd;

	if ((dfd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	if ((dir = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((d = readdir(dir)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0 &&
		    unlinkat(dfd, d->d_name, 0) == -1)
			log_warn("%s/%s", name, d->d_name);
	closedir(dir);
	if (unlinkat(basefd, name, AT_REMOVEDIR) == -1)
		log_warn("%s", name);
}

/*
 * Spools of daemons of ours that died without cleaning up (their "pid"
 * file names a process that is gone): removed at start, so crashes do
 * not pile up results in the spool directory. Only our own uid's, only
 * clfd.XXXXXX names, only with a pid file: anything else is left alone.
 */
static void
sv_spool_sweep(const char *base)
{
	struct dirent	*d;
	struct stat	 st;
	DIR		*dir;
	char		 buf[32];
	long		 pid;
	ssize_t		 n;
	int		 bfd, fd;

	if ((dir = opendir(base)) == NULL)
		return;
	bfd = dirfd(dir);
	while ((d = readdir(dir)) != NULL) {
		if (strncmp(d->d_name, "clfd.", 5) != 0 ||
		    strlen(d->d_name) != 11 ||
		    fstatat(bfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
			continue;
		snprintf(buf, sizeof buf, "%s/pid", d->d_name);
		if ((fd = openat(bfd, buf, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			continue;
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if ((pid = strtol(buf, NULL, 10)) <= 0 || pid == getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		log_info("removing the spool of clfd pid %ld, gone: %s/%s",
		    pid, base, d->d_name);
		sv_spool_rmdir(bfd, d->d_name);
	}
	closedir(dir);
}

/*
 * The spool: a private directory for the workers' partials and the
 * jobs' result files, made afresh at each start (with a pid file, so a
 * later start can tell it was left by a crash) and removed at the end.
 */
static int
sv_spool_make(void)
{
	const char	*base = sv.cfg->spool_dir;
	char		 pid[PATH_MAX + 8];
	int		 n, fd;

	if (base == NULL || *base == '\0')
		base = getenv("TMPDIR");
	if (base == NULL || *base != '/')
		base = "/tmp";
	sv_spool_sweep(base);
	n = snprintf(sv.spool, sizeof sv.spool, "%s/clfd.XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof sv.spool - 32) {
		log_warnx("spool directory %s: path too long", base);
		sv.spool[0] = '\0';
		return -1;
	}
	if (mkdtemp(sv.spool) == NULL) {
		log_warn("spool directory in %s", base);
		sv.spool[0] = '\0';
		return -1;
	}
	snprintf(pid, sizeof pid, "%s/pid", sv.spool);
	if ((fd = open(pid, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) != -1) {
		n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		if (write(fd, pid, (size_t)n) != n)
			log_warn("spool pid file");
		close(fd);
	}
	log_debug("spool %s", sv.spool);
	return 0;
}

static void
sv_spool_remove(void)
{
	char	*slash;

	if (sv.spool[0] == '\0')
		return;
	if ((slash = strrchr(sv.spool, '/')) != NULL) {
		int	bfd;

		*slash = '\0';
		bfd = open(slash == sv.spool ? "/" : sv.spool, O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC);
		*slash = '/';
		if (bfd != -1) {
			sv_spool_rmdir(bfd, slash + 1);
			close(bfd);
		}
	}
	sv.spool[0] = '\0';
}

int
supervisor_main(struct config *cfg, const struct supervisor_opts *opts)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	sigset_t		 block;
	struct timeval		 one = { 1, 0 };
	char			 path[sizeof ((struct sockaddr_un *)0)->sun_path];
	char			 where[sizeof path + 32], err[512];
	int			 i, live = 0, rc = 1;

	memset(&sv, 0, sizeof sv);
	sv.cfg = cfg;
	sv.opts = opts;
	gettimeofday(&sv.started, NULL);
	sv.idle_secs = opts->idle_exit > 0 ? opts->idle_exit : cfg->exit_idle;
	signal(SIGPIPE, SIG_IGN);

	if (opts->socket_path != NULL)
		snprintf(path, sizeof path, "%s", opts->socket_path);
	else if (cfg->socket_path != NULL)
		snprintf(path, sizeof path, "%s", cfg->socket_path);
	else if (paths_default_socket(path, sizeof path) == -1) {
		log_warnx("the default socket path is too long");
		goto out;
	}
	if ((sv.base = event_base_new()) == NULL) {
		log_warnx("event_base_new failed");
		goto out;
	}
	if (control_open(path, cfg, &live, err, sizeof err) == -1) {
		if (live)
			log_warnx("clfd already running on %s", path);
		else
			log_warnx("%s", err);
		goto out;
	}
	for (i = 0; i < (int)(sizeof sigs / sizeof sigs[0]); i++)
		if ((sv.sig[i] = evsignal_new(sv.base, sigs[i], sv_signal_cb,
		    NULL)) == NULL || evsignal_add(sv.sig[i], NULL) == -1)
			fatalx("cannot set up signal %d", sigs[i]);
	if ((sv.tick = event_new(sv.base, -1, EV_PERSIST, sv_tick_cb,
	    NULL)) == NULL || event_add(sv.tick, &one) == -1)
		fatalx("cannot set up the timer");

	if (sv_spool_make() == -1)
		goto out;
	jobqueue_init(sv.base, cfg, sv.spool);
	if ((sv.xslot = slot_new(-1)) == NULL)
		fatalx("out of memory");
	sv.xslot->respawn = 1;
	slot_spawn(sv.xslot);
	if (sv_resize(sv_nworkers()) == -1)
		fatalx("out of memory");
	control_start(sv.base);
	systemd_watchdog_start(sv.base);
	log_info("listening on %s, %d worker%s", control_where(where,
	    sizeof where), sv.nslots, sv.nslots == 1 ? "" : "s");

	event_base_dispatch(sv.base);
	rc = sv.failed ? 1 : 0;
	/*
	 * Stopping already: a second SIGTERM (or ^C, SIGHUP) while we tear
	 * down is held, not let kill us once the signal events are freed.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, NULL);

	/* Whatever is still there after the grace period is killed. */
	sv_kill_left(1);
	for (i = 0; i < sv.nslots; i++) {
		slot_close(sv.slots[i]);
		event_free(sv.slots[i]->timer);
		free(sv.slots[i]);
	}
	slot_close(sv.xslot);
	event_free(sv.xslot->timer);
	free(sv.xslot);
	sv.xslot = NULL;
	log_info("stopped");
out:
	control_stop_accepting();
	control_free();
	jobqueue_free();
	free(sv.slots);
	for (i = 0; i < (int)(sizeof sv.sig / sizeof sv.sig[0]); i++)
		if (sv.sig[i] != NULL)
			event_free(sv.sig[i]);
	if (sv.tick != NULL)
		event_free(sv.tick);
	if (sv.base != NULL)
		event_base_free(sv.base);
	sv_spool_remove();
	config_free(sv.cfg);
	free(sv.cfg);
	return rc;
}
