/* unixsock.h: connecting to a Unix socket whose server may still be starting. */
#ifndef KSCOPE_UNIXSOCK_H
#define KSCOPE_UNIXSOCK_H

#include <stdint.h>

#include <kscope/error.h>
#include <kscope/loop.h>

/*
 * Connects a stream socket to the Unix socket at path, retrying every millisecond while the
 * path does not exist yet or nobody accepts (QEMU creates its sockets while it starts), for at
 * most timeout_ns (< 0: no limit). With a loop, the loop keeps running between attempts;
 * without one the thread sleeps. `who` starts every message ("qmp", "gdb", "console").
 * Returns the connected fd (blocking, close-on-exec), or -errno with err filled: -EINVAL (no
 * path), -ENAMETOOLONG, -ETIMEDOUT, the loop's error, or connect's.
 */
int ks_unix_connect(struct ks_loop *loop, const char *path, int64_t timeout_ns,
		    const char *who, struct ks_error *err);

#endif
