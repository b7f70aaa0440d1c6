/*
 * pool.c: the worker slots: spawn, dispatch, reaping, respawn with
 * back-off (see pool.h).
 *
 * Each slot is one pre-forked worker on a socketpair. Its role says
 * which tasks it takes and whether it counts as one of the configured
 * workers; slots[0] is the expander, the workers follow, so that a kick
 * offers the expander its expansion before the workers take the rest.
 * Every message from a worker is checked as soon as its header is in,
 * before its payload is read.
 *
 * Depends on: jobqueue (tasks, pulled), worker (the child's code),
 * proto, config, log. Used by: supervisor (the top; it also registers
 * pool_cancel_job as the job queue's cancel hook), control (kick,
 * stats). Calls nothing above it: the top registers struct pool_hooks.
 */
#include <config.h>

#include "pool.h"

#include "config.h"
#include "jobqueue.h"
#include "log.h"
#include "proto.h"
#include "worker.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <sched.h>
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

enum slot_role {
	ROLE_EXPANDER,
	ROLE_WORKER,
};

/* What a role's slots take, and whether they are workers. */
static const struct role {
	struct task	*(*next)(void);	/* their next task, or NULL */
	int		  worker;	/* counted in "configured", ready, alive */
} roles[] = {
	[ROLE_EXPANDER] = { jobqueue_next_expansion, 0 },
	[ROLE_WORKER] = { jobqueue_next_task, 1 },
};
#define NROLES	(sizeof roles / sizeof roles[0])

struct slot {
	enum slot_role	 role;
	int		 idx;		/* a worker's number; -1: the expander */
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

/* slots[0] is the expander; worker i is slots[POOL_W0 + i]. */
#define POOL_W0	1

static struct {
	struct event_base	*base;
	const struct config	*cfg;
	const char		*spool;
	struct pool_hooks	 hooks;
	struct slot		**slots;	/* stable: events point at them */
	int			 nslots;	/* slots[] in use */
	int			 want;		/* workers configured */
	int			 stopping;
	uint64_t		 restarts;	/* after crashes */
	uint64_t		 replaced;	/* stopped on purpose */
	uint64_t		 next_task;
	int			 ncpu;		/* cores this process may use */
} sv;

static void	slot_spawn(struct slot *);
static void	slot_stop(struct slot *);
static void	sv_trim(void);

static time_t
sv_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Queue a message to a worker. */
static int
slot_send(struct slot *s, const uint8_t *msg, size_t len)
{
	if (evbuffer_add(s->out, msg, len) == -1)
		return -1;
	return event_add(s->wev, NULL);
}

/*
 * Whether a core is free for a second inflating thread once s runs its
 * task: the cores no busy slot holds, less those that the tasks waiting
 * are about to take on idle workers. Every worker taking a thread on a
 * busy machine would only make them all slower.
 */
static int
sv_core_free(const struct slot *s)
{
	size_t	 waiting = jobqueue_waiting();
	int	 busy = 1, idle = 0, i;

	for (i = 0; i < sv.nslots; i++) {
		if (sv.slots[i] == s)
			continue;
		if (sv.slots[i]->state == SLOT_BUSY)
			busy++;
		else if (sv.slots[i]->state == SLOT_IDLE &&
		    roles[sv.slots[i]->role].worker)
			idle++;
	}
	if (waiting < (size_t)idle)
		idle = (int)waiting;
	return sv.ncpu - busy - idle > 0;
}

/* Hand a task to an idle slot. */
static void
slot_give(struct slot *s, struct task *t)
{
	uint8_t	*msg;
	size_t	 len;
	int	 ahead;

	s->task_id = ++sv.next_task;
	ahead = jobqueue_task_kind(t) == JQ_TASK_MAP && sv_core_free(s);
	if ((msg = jobqueue_task_message(t, s->task_id, ahead, &len)) == NULL ||
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
		log_debug("%s: job %lld: %s%s", s->name,
		    (long long)jobqueue_task_job(t), jobqueue_task_path(t),
		    ahead ? " (a core free)" : "");
	}
}

/*
 * Each idle slot in turn is offered its role's next task: the expander
 * first, which keeps the workers on their files. Once a role has none,
 * its other slots are not asked.
 */
void
pool_kick(void)
{
	struct slot	*s;
	struct task	*t;
	int		 i, none[NROLES] = { 0 };

	if (sv.stopping)
		return;
	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (s->state != SLOT_IDLE || s->retire || none[s->role])
			continue;
		if ((t = roles[s->role].next()) == NULL) {
			none[s->role] = 1;
			continue;
		}
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
void
pool_tick(time_t now)
{
	struct slot	*s;
	struct task	*t;
	char		 why[sizeof ((struct slot *)0)->bad_why];
	int		 i, lost = 0;

	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (s->task == NULL || s->deadline == 0 ||
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
		pool_kick();
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
	pool_kick();
	sv.hooks.changed();
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
void
pool_reap(void)
{
	pid_t	pid;
	int	status, i, alive = 0;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < sv.nslots; i++)
			if (sv.slots[i]->pid == pid)
				break;
		if (i == sv.nslots) {
			log_debug("reaped unknown child %ld", (long)pid);
			continue;
		}
		slot_reaped(sv.slots[i], status);
	}
	sv_trim();
	for (i = 0; i < sv.nslots; i++)
		if (roles[sv.slots[i]->role].worker)
			alive += sv.slots[i]->pid > 0 || sv.slots[i]->respawn;
	if (alive == 0 && !sv.stopping) {
		log_warnx("no worker can be started");
		sv.hooks.no_workers();
	}
	pool_kick();
	sv.hooks.changed();
}

/* A new slot, dead, with its respawn timer; idx -1 for the expander. */
static struct slot *
slot_new(enum slot_role role, int idx)
{
	struct slot	*s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->role = role;
	s->idx = idx;
	if (role == ROLE_EXPANDER)
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
int
pool_resize(int n)
{
	struct slot	**v, *s;
	int		  i;

	if (POOL_W0 + n > sv.nslots) {
		if ((v = reallocarray(sv.slots, (size_t)(POOL_W0 + n),
		    sizeof *v)) == NULL)
			return -1;
		sv.slots = v;
		for (i = sv.nslots; i < POOL_W0 + n; i++) {
			if ((s = slot_new(ROLE_WORKER, i - POOL_W0)) == NULL)
				break;
			sv.slots[sv.nslots++] = s;
		}
		if (sv.nslots < POOL_W0 + n)
			return -1;
	}
	sv.want = n;
	for (i = POOL_W0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (s->idx < n) {
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

	while (sv.nslots > POOL_W0 + sv.want &&
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

int
pool_init(struct event_base *base, const struct config *cfg,
    const char *spool, const struct pool_hooks *hooks)
{
	cpu_set_t	 set;
	long		 n;

	memset(&sv, 0, sizeof sv);
	sv.base = base;
	/* (an affinity mask or a cpuset may leave fewer than are online) */
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		sv.ncpu = CPU_COUNT(&set);
	else if ((n = sysconf(_SC_NPROCESSORS_ONLN)) > 0)
		sv.ncpu = (int)n;
	if (sv.ncpu < 1)
		sv.ncpu = 1;
	sv.cfg = cfg;
	sv.spool = spool;
	sv.hooks = *hooks;
	if ((sv.slots = calloc(POOL_W0, sizeof *sv.slots)) == NULL ||
	    (sv.slots[0] = slot_new(ROLE_EXPANDER, -1)) == NULL)
		return -1;
	sv.nslots = POOL_W0;
	sv.slots[0]->respawn = 1;
	slot_spawn(sv.slots[0]);
	return 0;
}

int
pool_want(void)
{
	return sv.want;
}

int
pool_nworkers(void)
{
	return sv.nslots - POOL_W0;
}

/*
 * Workers take only worker_memory, task_timeout, walk_max,
 * refuse_hardlinks, cache_dir, cache_max and inflate_ahead from the
 * config when they start (the rest comes with each task), so they are
 * replaced only when one of those changed: once idle, busy ones after
 * their task.
 */
int
pool_set_config(const struct config *c)
{
	int	i, replace;

	replace = c->worker_memory != sv.cfg->worker_memory ||
	    c->task_timeout != sv.cfg->task_timeout ||
	    c->walk_max != sv.cfg->walk_max ||
	    c->refuse_hardlinks != sv.cfg->refuse_hardlinks ||
	    c->cache_max != sv.cfg->cache_max ||
	    c->inflate_ahead != sv.cfg->inflate_ahead ||
	    !sv_same(c->cache_dir, sv.cfg->cache_dir);
	sv.cfg = c;
	for (i = 0; replace && i < sv.nslots; i++) {
		struct slot *s = sv.slots[i];

		s->retire = 1;
		if (s->state == SLOT_IDLE)
			slot_stop(s);
	}
	return replace;
}

/*
 * A job was cancelled: its running tasks' results would be thrown away,
 * so the workers running them are stopped now rather than left busy.
 */
void
pool_cancel_job(int64_t job)
{
	struct slot	*s;
	int		 i;

	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		/* (a merge holds files done: it runs to its end) */
		if (s->state != SLOT_BUSY || s->task == NULL ||
		    jobqueue_task_job(s->task) != job ||
		    jobqueue_task_kind(s->task) == JQ_TASK_MERGE)
			continue;
		log_debug("%s (pid %ld): job %lld cancelled, stopping it",
		    s->name, (long)s->pid, (long long)job);
		slot_stop(s);
		s->cancelled = 1;
		kill(s->pid, SIGKILL);
	}
}

void
pool_stop(void)
{
	struct slot	*s;
	int		 i;

	sv.stopping = 1;
	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		evtimer_del(s->timer);
		if (s->pid > 0) {
			/* Idle workers leave on EOF; busy ones are stopped. */
			if (s->state == SLOT_BUSY)
				kill(s->pid, SIGTERM);
			slot_stop(s);
		}
	}
}

int
pool_alive(void)
{
	int	i, n = 0;

	for (i = 0; i < sv.nslots; i++)
		n += sv.slots[i]->pid > 0;
	return n;
}

void
pool_kill(int reap)
{
	struct slot	*s;
	int		 i;

	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (s->pid <= 0)
			continue;
		if (!reap)
			log_warnx("%s (pid %ld) still there; killing it",
			    s->name, (long)s->pid);
		kill(s->pid, SIGKILL);
		if (reap)
			waitpid(s->pid, NULL, 0);
	}
}

void
pool_free(void)
{
	int	i;

	for (i = 0; i < sv.nslots; i++) {
		slot_close(sv.slots[i]);
		event_free(sv.slots[i]->timer);
		free(sv.slots[i]);
	}
	free(sv.slots);
	sv.slots = NULL;
	sv.nslots = 0;
}

void
pool_counts(int *alive, int *busy)
{
	struct slot	*s;
	int		 i;

	*alive = *busy = 0;
	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (!roles[s->role].worker)
			continue;
		if (s->state == SLOT_IDLE || s->state == SLOT_BUSY)
			(*alive)++;
		if (s->state == SLOT_BUSY)
			(*busy)++;
	}
}

int
pool_started(int *up)
{
	struct slot	*s;
	int		 i, done = 0;

	*up = 0;
	for (i = 0; i < sv.nslots; i++) {
		s = sv.slots[i];
		if (!roles[s->role].worker)
			continue;
		if (s->state == SLOT_IDLE || s->state == SLOT_BUSY)
			(*up)++;
		else if (!s->respawn)
			done++;
	}
	return *up + done >= sv.want;
}

json_t *
pool_workers_json(uid_t uid)
{
	json_t	*o, *slots, *pids, *x = NULL;
	int	 i, alive, busy;

	if ((slots = json_array()) == NULL)
		return NULL;
	if ((pids = json_array()) == NULL) {
		json_decref(slots);
		return NULL;
	}
	pool_counts(&alive, &busy);
	for (i = 0; i < sv.nslots; i++) {
		struct slot	*s = sv.slots[i];
		json_t		*e;

		if (!roles[s->role].worker) {
			json_decref(x);
			x = json_pack("{s:I,s:s,s:b}", "pid", (json_int_t)s->pid,
			    "state", slot_state_names[s->state], "expanding",
			    s->task != NULL);
			continue;
		}
		if (s->pid > 0)
			json_array_append_new(pids, json_integer(s->pid));
		e = json_pack("{s:i,s:I,s:s,s:i}", "slot", s->idx, "pid",
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
	if (o != NULL && x != NULL)
		json_object_set_new(o, "expander", x);
	else
		json_decref(x);
	return o;
}
