/* signals.c: SIGINT, SIGTERM and SIGHUP turned into a call on the event loop (a self-pipe). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <kscope/cleanup.h>

#include "signals.h"

static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_count;
static volatile sig_atomic_t sig_second_exits;
static cli_signal_fn sig_fn;

/* Async-signal-safe: counts, and wakes the loop through the pipe. */
static void on_signal_async(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	if (++sig_count > 1 && sig_second_exits) {
		ks_cleanup_run();
		_exit(2);
	}
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], &b, 1);
	errno = saved;
}

static void on_pipe(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	unsigned char b;

	(void)l, (void)events;
	if (read(fd, &b, 1) == 1 && sig_fn)
		sig_fn(b, data);
}

int cli_signals_catch(struct ks_loop *loop, cli_signal_fn fn, void *data, bool second_exits)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal_async };
	int rc;

	if ((rc = ks_cleanup_install()) < 0)
		return rc;
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sig_fn = fn;
	sig_second_exits = second_exits;
	if ((rc = ks_loop_add_fd(loop, sig_pipe[0], KS_LOOP_IN, on_pipe, data)) < 0)
		return rc;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int cli_signals_count(void)
{
	return sig_count;
}

void cli_signals_release(struct ks_loop *loop)
{
	if (sig_pipe[0] < 0)
		return;
	ks_loop_del_fd(loop, sig_pipe[0]);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
}
