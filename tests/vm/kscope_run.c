/* kscope_run.c: run the real kscope binary from a VM test, and check what a VM leaves behind. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kscope_run.h"

#define MAX_ARGS 64
#define RUN_TIMEOUT_MS 60000

const char *kscope_path(void)
{
	const char *k = getenv("KSCOPE");

	return k && *k ? k : "build/cli/kscope";
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Forks kscope with args; its stdout and stderr go to out_fd and err_fd. */
static pid_t spawn(const char *const *args, int out_fd, int err_fd)
{
	const char *argv[MAX_ARGS + 2];
	pid_t parent = getpid(), pid;
	int n = 0;

	argv[n++] = kscope_path();
	for (int i = 0; args[i] && n < MAX_ARGS; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(NULL);
	if ((pid = fork()) != 0)
		return pid;
	/* Whatever kills the test kills this kscope too (its daemons detach on purpose). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int in = open("/dev/null", O_RDONLY);
	dup2(in, 0);
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int status_of(int ws)
{
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static void take(int fd, char **buf, size_t *len, bool *open_)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n <= 0) {
		*open_ = false;
		return;
	}
	*buf = realloc(*buf, *len + (size_t)n + 1);
	memcpy(*buf + *len, chunk, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = 0;
}

int kscope_argv(struct kres *r, const char *const *args)
{
	int o[2], e[2], ws;
	size_t olen = 0, elen = 0;
	bool oo = true, eo = true;
	double end = now_s() + RUN_TIMEOUT_MS / 1000.0;
	pid_t pid;

	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)
		return r->status = -1;
	pid = spawn(args, o[1], e[1]);
	close(o[1]);
	close(e[1]);
	while ((oo || eo) && now_s() < end) {
		struct pollfd p[2] = { { .fd = oo ? o[0] : -1, .events = POLLIN },
				       { .fd = eo ? e[0] : -1, .events = POLLIN } };

		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			take(o[0], &r->out, &olen, &oo);
		if (p[1].revents)
			take(e[0], &r->err, &elen, &eo);
	}
	close(o[0]);
	close(e[0]);
	if (oo || eo)
		kill(pid, SIGKILL);
	waitpid(pid, &ws, 0);
	return r->status = status_of(ws);
}

int kscope(struct kres *r, ...)
{
	const char *args[MAX_ARGS + 1];
	va_list ap;
	int n = 0;

	va_start(ap, r);
	while (n < MAX_ARGS && (args[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	args[n] = NULL;
	return kscope_argv(r, args);
}

pid_t kscope_spawn(const char *const *args, const char *out_path)
{
	int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid_t pid = spawn(args, fd, fd);

	close(fd);
	return pid;
}

int kscope_wait(pid_t pid, double timeout_s)
{
	double end = now_s() + timeout_s;
	int ws;

	while (now_s() < end) {
		pid_t r = waitpid(pid, &ws, WNOHANG);

		if (r == pid)
			return status_of(ws);
		if (r < 0)
			return -1;
		sleep_ms(5);
	}
	return -1;
}

void kres_free(struct kres *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

long long kres_field(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, n))
			return strtoll(l + n, NULL, 10);
	return -1;
}

/* 'R', 'S', 'Z', ... from /proc/pid/stat, or 0 if there is no such process. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "re")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

bool pid_gone(pid_t pid, double timeout_s)
{
	double end = now_s() + timeout_s;

	do {
		char st = proc_state(pid);

		if (st == 0 || st == 'Z' || st == 'X')
			return true;
		sleep_ms(5);
	} while (now_s() < end);
	return false;
}

pid_t process_mentioning(const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	while (d && !found && (e = readdir(d))) {
		char path[300], buf[8192];
		pid_t pid = (pid_t)atoi(e->d_name);
		ssize_t n;
		int fd;

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		for (ssize_t i = 0; i < n; i++)
			buf[i] = buf[i] ? buf[i] : ' ';
		buf[n > 0 ? n : 0] = 0;
		if (n > 0 && strstr(buf, needle) && !pid_gone(pid, 0))
			found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

uint64_t elf_symbol(const char *path, const char *name)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	const unsigned char *m;
	uint64_t value = 0;

	if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr))
		goto out;
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		goto out;
	const Elf64_Ehdr *eh = (const void *)m;
	const Elf64_Shdr *sh = (const void *)(m + eh->e_shoff);
	for (int i = 0; eh->e_ident[EI_CLASS] == ELFCLASS64 && i < eh->e_shnum && !value; i++) {
		if (sh[i].sh_type != SHT_SYMTAB)
			continue;
		const Elf64_Sym *sym = (const void *)(m + sh[i].sh_offset);
		const char *strs = (const char *)m + sh[sh[i].sh_link].sh_offset;
		for (size_t j = 0; j < sh[i].sh_size / sizeof(*sym) && !value; j++)
			if (!strcmp(strs + sym[j].st_name, name))
				value = sym[j].st_value;
	}
	munmap((void *)m, (size_t)st.st_size);
out:
	if (fd >= 0)
		close(fd);
	return value;
}

int kscope_rundir_new(char *dir, size_t size, const char *prefix)
{
	if ((size_t)snprintf(dir, size, "/tmp/%s-XXXXXX", prefix) >= size || !mkdtemp(dir))
		return -1;
	setenv("KSCOPE_RUNDIR", dir, 1);
	return 0;
}

/* Kills the supervisor and QEMU of every VM directory in dir, by their pid files. */
static void kill_by_pidfiles(const char *dir)
{
	static const char *const pidfiles[] = { "supervisor.pid", "qemu.pid" };
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		for (size_t i = 0; e->d_name[0] != '.' && i < 2; i++) {
			char p[600];
			FILE *pf;
			int pid;

			snprintf(p, sizeof(p), "%s/%s/%s", dir, e->d_name, pidfiles[i]);
			if ((pf = fopen(p, "r")) && fscanf(pf, "%d", &pid) == 1 && pid > 1)
				kill(pid, SIGKILL);
			if (pf)
				fclose(pf);
		}
	}
	if (d)
		closedir(d);
}

int kscope_rundir_cleanup(const char *dir)
{
	char cmd[600];
	pid_t q;
	int rc = 0;

	kill_by_pidfiles(dir);
	/* A supervisor may still be on its way out after its last client left. */
	for (int i = 0; i < 200 && process_mentioning(dir) > 0; i++)
		sleep_ms(10);
	if ((q = process_mentioning(dir)) > 0) {
		fprintf(stderr, "# a process of this test was left: pid %d\n", (int)q);
		kill(q, SIGKILL);
		rc = -1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	rc |= system(cmd);
	unsetenv("KSCOPE_RUNDIR");
	return rc ? -1 : 0;
}

int kscope_fx_setup(void **state, const char *prefix)
{
	struct kscope_fx *f = calloc(1, sizeof(*f));

	if (!f || kscope_rundir_new(f->dir, sizeof(f->dir), prefix) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

int kscope_fx_teardown(void **state)
{
	struct kscope_fx *f = *state;
	int rc = kscope_rundir_cleanup(f->dir);

	free(f);
	return rc;
}

char *kscope_expect_out(int status, const char *const *args)
{
	struct kres r;
	char *out;

	if (kscope_argv(&r, args) != status)
		fail_msg("kscope %s %s %s: status %d, expected %d: %s%s", args[0], args[1],
			 args[2] ? args[2] : "", r.status, status, r.out, r.err);
	out = r.out;
	r.out = NULL;
	kres_free(&r);
	return out;
}

void kscope_expect_err(int status, const char *err, const char *const *args)
{
	struct kres r;

	if (kscope_argv(&r, args) != status)
		fail_msg("kscope %s %s %s: status %d, expected %d: %s", args[0], args[1],
			 args[2] ? args[2] : "", r.status, status, r.err);
	assert_string_equal(r.err, err);
	kres_free(&r);
}
