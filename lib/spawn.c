/* spawn.c: start a child program from an argv array, tied to our life, and wait with a timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kscope/spawn.h>

/* Runs in the child between fork and exec: only async-signal-safe calls. */
static void child(char *const *argv, int out_fd, const int *keep, size_t nkeep, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The parent may have died before prctl: then nobody would kill us later. */
	if (getppid() != parent)
		_exit(127);
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(out_fd >= 0 ? out_fd : null, 1);
	dup2(out_fd >= 0 ? out_fd : null, 2);
	for (size_t i = 0; i < nkeep; i++)
		fcntl(keep[i], F_SETFD, 0);
	/* Signals we ignore or block would be inherited by the program. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	const char *msg = strerror(errno);
	if (write(2, "cannot run ", 11) < 0 || write(2, argv[0], strlen(argv[0])) < 0 ||
	    write(2, ": ", 2) < 0 || write(2, msg, strlen(msg)) < 0 || write(2, "\n", 1) < 0)
		_exit(127);
	_exit(127);
}

pid_t ks_spawn(char *const *argv, int out_fd, const int *keep, size_t nkeep,
	       struct ks_error *err)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		return ks_error_set(err, -errno, "cannot start %s: %s", argv[0], strerror(errno));
	if (pid == 0)
		child(argv, out_fd, keep, nkeep, parent);
	return pid;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ks_wait_pid(pid_t pid, int64_t timeout_ns, int *status)
{
	int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			int e = -errno;
			if (pfd >= 0)
				close(pfd);
			return e;
		}
		int64_t left = deadline < 0 ? 1000000000 : deadline - now_ns();
		if (left <= 0) {
			if (pfd >= 0)
				close(pfd);
			return -ETIMEDOUT;
		}
		/* pidfd turns readable when the child exits; without one, poll in short steps. */
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		int ms = pfd >= 0 ? (int)(left / 1000000) + 1 : 1;
		poll(pfd >= 0 ? &p : NULL, pfd >= 0 ? 1 : 0, ms);
	}
	if (pfd >= 0)
		close(pfd);
	return 0;
}
