/* cleanup.c: a process-wide list of child processes and files to get rid of on every way out. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/cleanup.h>

#define PATH_LEN 256

enum kind { FREE, PID, FILE_, DIR_ };

/* A slot is published by setting `kind` last and retired by clearing it first, so the signal
 * handler only ever sees complete entries. */
struct slot {
	volatile sig_atomic_t kind;
	pid_t pid;
	char path[PATH_LEN];
};

static struct slot slots[KS_CLEANUP_MAX];
static const int signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
static volatile sig_atomic_t installed;

static int add(enum kind kind, pid_t pid, const char *path)
{
	if (path && strlen(path) >= PATH_LEN)
		return -ENAMETOOLONG;
	for (int i = 0; i < KS_CLEANUP_MAX; i++) {
		if (slots[i].kind != FREE)
			continue;
		slots[i].pid = pid;
		if (path)
			strcpy(slots[i].path, path);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		slots[i].kind = kind;
		return 0;
	}
	return -ENOSPC;
}

int ks_cleanup_add_pid(pid_t pid)
{
	return add(PID, pid, NULL);
}

int ks_cleanup_add_file(const char *path)
{
	return add(FILE_, 0, path);
}

int ks_cleanup_add_dir(const char *path)
{
	return add(DIR_, 0, path);
}

void ks_cleanup_del_pid(pid_t pid)
{
	for (int i = 0; i < KS_CLEANUP_MAX; i++)
		if (slots[i].kind == PID && slots[i].pid == pid)
			slots[i].kind = FREE;
}

void ks_cleanup_del_path(const char *path)
{
	for (int i = 0; i < KS_CLEANUP_MAX; i++)
		if ((slots[i].kind == FILE_ || slots[i].kind == DIR_) &&
		    !strcmp(slots[i].path, path))
			slots[i].kind = FREE;
}

/* Async-signal-safe: kill, waitpid, unlink and rmdir only. */
static void run_kind(int kind)
{
	for (int i = 0; i < KS_CLEANUP_MAX; i++) {
		if (slots[i].kind != kind)
			continue;
		slots[i].kind = FREE;
		if (kind == PID) {
			kill(slots[i].pid, SIGKILL);
			waitpid(slots[i].pid, NULL, 0);
		} else if (kind == FILE_) {
			unlink(slots[i].path);
		} else {
			rmdir(slots[i].path);
		}
	}
}

void ks_cleanup_run(void)
{
	int saved = errno;

	run_kind(PID);
	run_kind(FILE_);
	run_kind(DIR_);
	errno = saved;
}

static void on_signal(int sig)
{
	ks_cleanup_run();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_exit_(void)
{
	ks_cleanup_run();
}

int ks_cleanup_install(void)
{
	struct sigaction sa;

	if (installed)
		return 0;
	if (atexit(on_exit_) != 0)
		return -ENOMEM;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		sigaddset(&sa.sa_mask, signals[i]);
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (sigaction(signals[i], &sa, NULL) < 0)
			return -errno;
	installed = 1;
	return 0;
}
