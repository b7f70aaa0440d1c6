/*
 * control.h: the client side of clfd: the listening socket (its own or
 * systemd's), client sessions speaking JSON lines, request dispatch.
 */
#ifndef CLFD_CONTROL_H
#define CLFD_CONTROL_H

#include <stddef.h>

struct config;
struct event_base;
struct timeval;

/*
 * Open the listening socket: systemd's if it passed one, else bind path
 * (replacing a stale socket, never a live one). -1 with err filled in;
 * *live is set when another daemon answers on path.
 */
int	control_open(const char *path, const struct config *, int *live,
	    char *err, size_t errlen);
/*
 * What the socket is, for the log, in buf: its path, with "(passed by
 * systemd)" when it came from there.
 */
const char *control_where(char *buf, size_t len);
/* Start accepting clients on the loop; stats count uptime from started. */
void	control_start(struct event_base *, const struct timeval *started);
/* New settings (reload): limits, and our own socket's mode and group. */
void	control_set_config(const struct config *);
/*
 * Stop accepting and remove our socket file (if still ours); requests
 * from then on are answered shutting_down.
 */
void	control_stop_accepting(void);
/* Close every client (after pending output, up to the loop's end). */
void	control_free(void);
/* Connected clients; and bytes of replies not yet written. */
size_t	control_clients(void);
size_t	control_pending_output(void);

#endif
