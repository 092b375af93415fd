/* signals.h: SIGINT, SIGTERM and SIGHUP turned into a call on the event loop (a self-pipe). */
#ifndef KSCOPE_CLI_SIGNALS_H
#define KSCOPE_CLI_SIGNALS_H

#include <stdbool.h>

#include <kscope/loop.h>

/* Called on the loop with the signal that came. */
typedef void (*cli_signal_fn)(int sig, void *data);

/*
 * Installs the cleanup registry (so QEMU and files go even if the process dies), then makes
 * SIGINT, SIGTERM and SIGHUP call fn(sig, data) from the loop, where it may stop VMs
 * properly, and ignores SIGPIPE. With second_exits, a second signal while the first is being
 * handled cleans up and exits at once (status 2). Returns 0 or -errno.
 */
int cli_signals_catch(struct ks_loop *loop, cli_signal_fn fn, void *data, bool second_exits);

/* How many of those signals came so far. */
int cli_signals_count(void);

/* Takes the pipe off the loop and closes it (the handlers stay, and only count). */
void cli_signals_release(struct ks_loop *loop);

#endif
