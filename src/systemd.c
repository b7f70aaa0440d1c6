/*
 * systemd.c: the daemon's systemd glue: the listening socket handed over by
 * socket activation, sd_notify(3) state changes (READY, STATUS, RELOADING,
 * STOPPING) and the watchdog keep-alive, sent from the supervisor's libevent
 * loop so that a stuck loop really does stop the pings.
 *
 * Outside systemd (no LISTEN_FDS, no NOTIFY_SOCKET) every call is a cheap
 * no-op; built --without-systemd the functions do nothing at all.
 */
#include <config.h>

#include "systemd.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#ifdef HAVE_SYSTEMD
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

static struct event	*systemd_wd_ev;		/* the watchdog timer, once armed */

/*
 * The socket systemd passed (clfd.socket), or -1. Exactly one listening
 * unix stream socket is expected; anything else is logged and ignored so
 * that clfd falls back to creating its own. The LISTEN_* variables are
 * removed so that forked workers never take the fd for theirs.
 */
int
systemd_listen_fd(void)
{
	int	n, r;

	n = sd_listen_fds(1);
	if (n < 0) {
		errno = -n;
		log_warn("sd_listen_fds");
		return -1;
	}
	if (n == 0)
		return -1;
	if (n > 1) {
		log_warnx("systemd passed %d sockets, expected 1", n);
		return -1;
	}
	r = sd_is_socket(SD_LISTEN_FDS_START, AF_UNIX, SOCK_STREAM, 1);
	if (r <= 0) {
		if (r < 0) {
			errno = -r;
			log_warn("sd_is_socket");
		} else
			log_warnx("systemd passed fd %d that is not a listening "
			    "unix stream socket", SD_LISTEN_FDS_START);
		return -1;
	}
	return SD_LISTEN_FDS_START;
}

/* Send one notification; a failure is worth a line, never more. */
static void
systemd_notify(const char *state)
{
	int	r;

	if ((r = sd_notify(0, state)) < 0) {
		errno = -r;
		log_warn("sd_notify(%s)", state);
	}
}

void
systemd_ready(void)
{
	systemd_notify("READY=1");
}

/* STATUS=: one line for `systemctl status`; newlines would end it early. */
void
systemd_status(const char *fmt, ...)
{
	char	buf[512], *p;
	va_list	ap;

	memcpy(buf, "STATUS=", 7);
	va_start(ap, fmt);
	(void)vsnprintf(buf + 7, sizeof buf - 7, fmt, ap);
	va_end(ap);
	for (p = buf; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	systemd_notify(buf);
}

/*
 * RELOADING=1 with the CLOCK_MONOTONIC time in microseconds, as
 * Type=notify-reload expects; the supervisor follows with READY=1.
 */
void
systemd_reloading(void)
{
	char		buf[64];
	struct timespec	ts;
	uint64_t	usec;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1) {
		systemd_notify("RELOADING=1");
		return;
	}
	usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	(void)snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    usec);
	systemd_notify(buf);
}

/*
 * STOPPING=1. The service manager stops watching the watchdog once a
 * service is stopping, so the keep-alive timer goes too (nothing of ours
 * is left on the loop when the supervisor frees it).
 */
void
systemd_stopping(void)
{
	systemd_notify("STOPPING=1");
	if (systemd_wd_ev != NULL) {
		event_free(systemd_wd_ev);
		systemd_wd_ev = NULL;
	}
}

static void
systemd_watchdog_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	systemd_notify("WATCHDOG=1");
}

/*
 * When the service manager asks for keep-alives (WATCHDOG_USEC, and
 * WATCHDOG_PID naming us if set), ping at half the interval from the event
 * loop. Called once; a second call keeps the timer already running.
 */
void
systemd_watchdog_start(struct event_base *base)
{
	uint64_t	usec;
	struct timeval	tv;
	int		r;

	if (systemd_wd_ev != NULL)
		return;
	r = sd_watchdog_enabled(0, &usec);
	if (r < 0) {
		errno = -r;
		log_warn("sd_watchdog_enabled");
		return;
	}
	if (r == 0 || usec == 0)
		return;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	systemd_wd_ev = event_new(base, -1, EV_PERSIST, systemd_watchdog_cb,
	    NULL);
	if (systemd_wd_ev == NULL || event_add(systemd_wd_ev, &tv) == -1) {
		log_warnx("cannot arm the watchdog timer");
		if (systemd_wd_ev != NULL)
			event_free(systemd_wd_ev);
		systemd_wd_ev = NULL;
		return;
	}
	log_debug("watchdog: ping every %" PRIu64 " us", usec);
	systemd_notify("WATCHDOG=1");
}

#else /* !HAVE_SYSTEMD */

int
systemd_listen_fd(void)
{
	return -1;
}

void
systemd_ready(void)
{
}

void
systemd_status(const char *fmt, ...)
{
	(void)fmt;
}

void
systemd_reloading(void)
{
}

void
systemd_stopping(void)
{
}

void
systemd_watchdog_start(struct event_base *base)
{
	(void)base;
}

#endif /* HAVE_SYSTEMD */
