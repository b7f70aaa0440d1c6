/*
 * systemd.h: the daemon's systemd glue. Every function is a no-op (or
 * returns -1) when clfd runs outside systemd or is built --without-systemd.
 */
#ifndef CLFD_SYSTEMD_H
#define CLFD_SYSTEMD_H

struct event_base;

int	systemd_listen_fd(void);	/* the socket systemd passed, or -1 */
void	systemd_ready(void);		/* READY=1 */
void	systemd_status(const char *, ...) __attribute__((format(printf, 1, 2)));
void	systemd_reloading(void);	/* RELOADING=1 + MONOTONIC_USEC */
void	systemd_stopping(void);		/* STOPPING=1 */
/* Arm a timer sending WATCHDOG=1 at half of WATCHDOG_USEC, if set. */
void	systemd_watchdog_start(struct event_base *);

#endif
