/*
 * supervisor.c: clfd's main process, at the top of it.
 *
 * One libevent loop owns everything; this module owns the loop and what
 * concerns the whole daemon: the signals (SIGTERM/SIGINT stop, SIGHUP
 * reload, SIGCHLD reap, all as libevent signal events so that the
 * handlers themselves do nothing), the spool directory, readiness and
 * status for systemd, the idle exit and a graceful stop. The worker
 * slots are the pool's (pool.c), the client socket control's
 * (control.c), the jobs the job queue's (jobqueue.c).
 *
 * Depends on: control, pool, jobqueue, reply, config, systemd, paths,
 * log. Nothing depends on it but main(); it wires the modules below
 * together with the hooks it registers (pool_hooks: the pool's news;
 * jobqueue_hooks: a cancel stops the pool's workers on that job, and
 * reply makes the texts of results). Each module calls only those below
 * it:
 *
 *	clfd.c		main() -> supervisor
 *	supervisor.c	-> control, pool, jobqueue, reply
 *	control.c	-> pool, reply, jobqueue, request
 *	pool.c		-> jobqueue, worker (in the child)
 *	reply.c		-> (jobqueue's types: its plain data to JSON)
 *	jobqueue.c	-> request, and the engine's modules
 *	request.c	-> filter, config
 */
#include <config.h>

#include "supervisor.h"

#include "config.h"
#include "control.h"
#include "jobqueue.h"
#include "log.h"
#include "paths.h"
#include "pool.h"
#include "reply.h"
#include "systemd.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>

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

#include <event2/event.h>

#define SV_STOP_GRACE_SEC	3	/* then SIGKILL what is left */

static struct {
	struct event_base		*base;
	struct config			*cfg;
	const struct supervisor_opts	*opts;
	struct event			*sig[5];
	struct event			*tick;
	int				 stopping;
	int				 failed;	/* exit 1: no worker could run */
	int				 ready_sent;
	struct timeval			 started;
	int				 idle_secs;
	time_t				 idle_since;
	time_t				 stop_deadline;
	char				 spool[PATH_MAX];	/* "" until made */
} sv;

static void	sv_check_done(void);
static int	sv_nworkers(void);

static time_t
sv_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
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
	int		alive, busy;

	pool_counts(&alive, &busy);
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
	int	up;

	if (sv.ready_sent || sv.stopping)
		return;
	if (!pool_started(&up))
		return;
	sv.ready_sent = 1;
	log_info("%d worker%s ready", up, up == 1 ? "" : "s");
	systemd_ready();
}

/* The pool's news: workers came up, went, or were busy or idle. */
static void
sv_pool_changed(void)
{
	sv_check_ready();
	sv_status();
	sv_check_done();
}

/* Not one worker can run: stop, and exit 1. */
static void
sv_no_workers(void)
{
	sv.failed = 1;
	supervisor_stop("no workers");
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
 * The pool replaces the workers when a setting they start with changed.
 * READY=1 follows once the workers are back.
 */
static void
sv_reload(void)
{
	struct config	*c;
	char		 err[512];
	int		 replace;

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
	jobqueue_set_config(c);
	control_set_config(c);
	/* Replaced once idle: busy ones finish their task first. */
	replace = pool_set_config(c);
	config_free(sv.cfg);
	free(sv.cfg);
	sv.cfg = c;
	if (sv_nworkers() != pool_want()) {
		log_info("reload: %d worker%s, was %d", sv_nworkers(),
		    sv_nworkers() == 1 ? "" : "s", pool_want());
		if (pool_resize(sv_nworkers()) == -1)
			log_warnx("reload: out of memory; still %d worker%s",
			    pool_want(), pool_want() == 1 ? "" : "s");
	}
	log_info("reloaded %s%s", sv.opts->config_file,
	    replace ? "; replacing the workers" : "");
out:
	sv.ready_sent = 0;
	sv_check_ready();
}

/* Stopping is over once every worker is reaped and replies are written. */
static void
sv_check_done(void)
{
	if (!sv.stopping)
		return;
	if (pool_alive() > 0 && sv_now() < sv.stop_deadline)
		return;
	if (control_pending_output() > 0 && sv_now() < sv.stop_deadline)
		return;
	event_base_loopbreak(sv.base);
}

void
supervisor_stop(const char *why)
{
	if (sv.stopping)
		return;
	sv.stopping = 1;
	sv.stop_deadline = sv_now() + SV_STOP_GRACE_SEC;
	log_info("stopping: %s", why);
	systemd_stopping();
	control_stop_accepting();
	jobqueue_shutdown();
	pool_stop();
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
		pool_reap();
		break;
	default:
		break;
	}
}

/*
 * Once a second: kept results' expiry; tasks' deadlines, idle exit; while
 * stopping, its deadline.
 */
static void
sv_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	time_t	now = sv_now();

	(void)fd;
	(void)ev;
	(void)arg;
	jobqueue_tick();
	if (sv.stopping) {
		if (now >= sv.stop_deadline)
			pool_kill(0);
		sv_check_done();
		return;
	}
	pool_tick(now);
	if (sv.idle_secs <= 0)
		return;
	/* Kept results count as work: a client may come back for them. */
	if (jobqueue_active() > 0 || jobqueue_kept() > 0 ||
	    control_clients() > 0) {
		sv.idle_since = 0;
		return;
	}
	if (sv.idle_since == 0)
		sv.idle_since = now;
	else if (now - sv.idle_since >= sv.idle_secs)
		supervisor_stop("idle");
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

/*
 * Where job ids go on from one daemon to the next on a socket: systemd's
 * StateDirectory= when there is one (the service's socket is in a
 * directory it may not write), else "SOCKET.jobid" beside the socket.
 */
static void
sv_ids(const char *socket_path)
{
	const char	*state = getenv("STATE_DIRECTORY");
	char		 file[PATH_MAX];
	int		 n;

	if (state != NULL && *state == '/')
		n = snprintf(file, sizeof file, "%.*s/jobid",
		    (int)strcspn(state, ":"), state);
	else
		n = snprintf(file, sizeof file, "%s.jobid", socket_path);
	if (n > 0 && (size_t)n < sizeof file)
		jobqueue_ids(file);
	else
		log_warnx("job ids: path too long; ids start from 1");
}

int
supervisor_main(struct config *cfg, const struct supervisor_opts *opts)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	static const struct pool_hooks	 ph = { sv_pool_changed, sv_no_workers };
	static const struct jobqueue_hooks jh = { pool_cancel_job,
	    reply_result_head, reply_result_text };
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
	jobqueue_init(cfg, sv.spool);
	sv_ids(path);
	jobqueue_set_hooks(&jh);
	if (pool_init(sv.base, cfg, sv.spool, &ph) == -1 ||
	    pool_resize(sv_nworkers()) == -1)
		fatalx("out of memory");
	control_start(sv.base, &sv.started);
	systemd_watchdog_start(sv.base);
	log_info("listening on %s, %d worker%s", control_where(where,
	    sizeof where), pool_nworkers(), pool_nworkers() == 1 ? "" : "s");

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
	pool_kill(1);
	log_info("stopped");
out:
	control_stop_accepting();
	control_free();
	pool_free();
	jobqueue_free();
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
