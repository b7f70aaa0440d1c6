/*
 * paths.h: where clfd's socket lives when nobody says.
 *
 * Shared by clfd and clfctl so that both agree on the per-user default:
 * $CLFD_SOCKET, else $XDG_RUNTIME_DIR/clfd.sock, else
 * /tmp/clfd-$UID/clfd.sock (a private directory, mode 0700).
 */
#ifndef CLFD_PATHS_H
#define CLFD_PATHS_H

#include <stddef.h>

/*
 * Write the default socket path into buf. Returns 0, or -1 (errno
 * ENAMETOOLONG) when it does not fit in len or in a sockaddr_un.
 */
int	paths_default_socket(char *buf, size_t len);

/*
 * Make sure the directory that holds sockpath may be used. For the
 * /tmp/clfd-$UID fallback the directory is created (mode 0700) when
 * missing and refused when it is not a directory, is owned by another
 * user or is writable by group or others. Other directories must exist.
 * Returns 0, or -1 with a message in err.
 */
int	paths_prepare_dir(const char *sockpath, char *err, size_t errlen);

#endif
