/* vmboot.c: boot a kernel under QEMU for a test, capture its console, and wait with a timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmboot.h"

#define MAX_ARGS 64

static const char *qemu_binary(void)
{
	const char *q = getenv("QEMU");

	return q && *q ? q : "qemu-system-x86_64";
}

bool vm_have_qemu(void)
{
	const char *q = qemu_binary();
	char path[4096];

	if (strchr(q, '/'))
		return access(q, X_OK) == 0;
	const char *env = getenv("PATH");
	if (!env)
		return false;
	char *dirs = strdup(env), *save = NULL;
	bool found = false;
	for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/%s", d, q);
		found = access(path, X_OK) == 0;
	}
	free(dirs);
	return found;
}

const char *vm_demo_kernel(void)
{
	const char *k = getenv("KSCOPE_DEMO_KERNEL");

	return k ? k : "build/kernel/kscope-demo.elf";
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int build_argv(const char *kernel, const char *const *extra, const char **argv)
{
	static const char *const base[] = {
		"-M", "microvm", "-accel", "tcg", "-m", "128M", "-nodefaults", "-nographic",
		"-no-reboot", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
	};
	int n = 0;

	argv[n++] = qemu_binary();
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		argv[n++] = base[i];
	argv[n++] = "-kernel";
	argv[n++] = kernel;
	for (int i = 0; extra && extra[i]; i++) {
		if (n >= MAX_ARGS - 1)
			return -1;
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	return 0;
}

static pid_t spawn(const char **argv, int out_fd)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* QEMU must not outlive the test, whatever kills the test. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int in = open("/dev/null", O_RDONLY);
	dup2(in, 0);
	dup2(out_fd, 1);
	dup2(out_fd, 2);
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "vmboot: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int append(struct vm_result *res, size_t *cap, const char *buf, size_t n)
{
	if (res->len + n + 1 > *cap) {
		size_t ncap = (*cap ? *cap * 2 : 65536) + n;
		char *p = realloc(res->out, ncap);
		if (!p)
			return -1;
		res->out = p;
		*cap = ncap;
	}
	memcpy(res->out + res->len, buf, n);
	res->len += n;
	res->out[res->len] = 0;
	return 0;
}

/* Reads QEMU's output until it closes the pipe or the deadline passes. */
static void collect(int fd, double deadline, struct vm_result *res)
{
	size_t cap = 0;
	char buf[8192];

	append(res, &cap, "", 0);
	for (;;) {
		double left = deadline - now_s();
		if (left <= 0) {
			res->timed_out = true;
			return;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int rc = poll(&p, 1, (int)(left * 1000) + 1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		append(res, &cap, buf, (size_t)n);
	}
}

int vm_boot(const char *kernel, const char *const *extra, double timeout_s,
	    struct vm_result *res)
{
	const char *argv[MAX_ARGS];
	int pipefd[2], wstatus = 0;

	memset(res, 0, sizeof(*res));
	if (build_argv(kernel, extra, argv) < 0 || pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	double start = now_s();
	pid_t pid = spawn(argv, pipefd[1]);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return -1;
	}
	collect(pipefd[0], start + timeout_s, res);
	close(pipefd[0]);
	/* QEMU closed its output: it is exiting, but still honour the deadline. */
	while (!res->timed_out && waitpid(pid, &wstatus, WNOHANG) == 0) {
		if (now_s() > start + timeout_s)
			res->timed_out = true;
		else
			usleep(1000);
	}
	if (res->timed_out) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
			;
	}
	res->seconds = now_s() - start;
	res->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
	return 0;
}

void vm_result_free(struct vm_result *res)
{
	free(res->out);
	res->out = NULL;
	res->len = 0;
}
