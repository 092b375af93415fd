/* supervisor.c: the owner of one VM: start, pid-file lock, console, end, and what is left over. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kscope/cleanup.h>

#include "supervisor_private.h"

#define SEC 1000000000ll
#define YOUNG_S 30  /* a runtime directory without pid file this young may be starting */

void ks_supervisor_opts_init(struct ks_supervisor_opts *o)
{
	memset(o, 0, sizeof(*o));
	ks_vm_opts_init(&o->vm);
	o->timeout_ns = -1;
}

void sup_log(struct ks_supervisor *s, const char *fmt, ...)
{
	va_list ap;
	struct timespec ts;
	struct tm tm;
	char when[32];

	if (!s->opts.log)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(s->opts.log, "%s.%03ld kscope supervisor[%d]: ", when, ts.tv_nsec / 1000000,
		(int)getpid());
	va_start(ap, fmt);
	vfprintf(s->opts.log, fmt, ap);
	va_end(ap);
	fputc('\n', s->opts.log);
	fflush(s->opts.log);
}

json_t *sup_text(const char *text, size_t len)
{
	json_t *j;
	char *copy;

	if (!memchr(text, 0, len) && (j = json_stringn(text, len)))
		return j;
	/* Not UTF-8, or holds NULs: keep the printable ASCII, the client must parse it. */
	if (!(copy = malloc(len + 1)))
		return NULL;
	for (size_t i = 0; i < len; i++)
		copy[i] = (text[i] >= 0x20 && text[i] < 0x7f) || text[i] == '\t' ? text[i] : '?';
	j = json_stringn(copy, len);
	free(copy);
	return j;
}

const char *ks_supervisor_state_name(enum ks_vm_state st)
{
	switch (st) {
	case KS_VM_RUNNING: return "running";
	case KS_VM_PAUSED: return "paused";
	case KS_VM_ENDED: return "ended";
	}
	return "invalid";
}

const char *ks_supervisor_end_name(enum ks_vm_end e)
{
	static const char *const names[] = {
		[KS_VM_END_NONE] = "none", [KS_VM_END_EXIT_CODE] = "exit-code",
		[KS_VM_END_POWEROFF] = "poweroff", [KS_VM_END_TRIPLE_FAULT] = "triple-fault",
		[KS_VM_END_GUEST_RESET] = "guest-reset", [KS_VM_END_PANIC] = "panic",
		[KS_VM_END_KILLED] = "killed", [KS_VM_END_QEMU_ERROR] = "qemu-error",
		[KS_VM_END_DESTROYED] = "destroyed",
	};

	return (unsigned)e < sizeof(names) / sizeof(names[0]) ? names[e] : "invalid";
}

/* Tells console followers how the VM ended; they are closed when the supervisor exits. */
static void end_followers(struct ks_supervisor *s)
{
	for (struct sup_follower *f = s->followers; f; f = f->next)
		ks_ctl_conn_send(f->c, json_pack("{s:O,s:s,s:s}", "id", f->id, "end",
						 s->outcome.detail, "outcome",
						 ks_supervisor_end_name(s->outcome.end)));
}

static void on_vm_event(struct ks_vm *vm, const char *event, void *data)
{
	struct ks_supervisor *s = data;
	struct sup_event *e;
	struct timespec ts;

	if (!event) {
		s->outcome = *ks_vm_outcome(vm);
		s->ended = true;
		sup_log(s, "VM %s ended: %s", ks_vm_name(vm), s->outcome.detail);
		end_followers(s);
		sup_monitor_vm_event(s, NULL);
		return;
	}
	/* An event monitor tells its own resumes (each breakpoint hit) from others'. */
	if (sup_monitor_attached(s))
		sup_monitor_vm_event(s, event);
	else if (!strcmp(event, "RESUME"))
		sup_inspect_resumed(s);
	clock_gettime(CLOCK_REALTIME, &ts);
	e = &s->events[s->nevents++ % SUP_EVENTS];
	snprintf(e->name, sizeof(e->name), "%s", event);
	e->wall_ns = (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
	sup_log(s, "event %s", event);
}

static void on_console_line(struct ks_chan *ch, const struct ks_chan_line *line, void *data)
{
	struct ks_supervisor *s = data;

	(void)ch;
	if (s->opts.console) {
		fwrite(line->text, 1, line->len, s->opts.console);
		fputc('\n', s->opts.console);
		fflush(s->opts.console);
	}
	for (struct sup_follower *f = s->followers; f; f = f->next)
		ks_ctl_conn_send(f->c, json_pack("{s:O,s:o,s:f,s:I}", "id", f->id, "line",
						 sup_text(line->text, line->len), "ts",
						 line->wall_ns / 1e9, "lineno",
						 (json_int_t)line->lineno));
}

static void on_timeout(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_supervisor *s = data;

	(void)l, (void)id;
	s->timer = 0;
	s->timed_out = true;
	sup_log(s, "timed out: destroying the VM");
	ks_vm_destroy(s->vm);
}

/*
 * Writes our pid to the pid file under a lock held for our whole life. The file is locked
 * before it gets its name, so nobody can see it unlocked while we live.
 */
static int take_pidfile(struct ks_supervisor *s, struct ks_error *err)
{
	char tmp[PATH_MAX + 40], pid[24];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

	snprintf(tmp, sizeof(tmp), "%s.tmp", s->pid_path);
	s->lock_fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX) < 0 ||
	    write(s->lock_fd, pid, (size_t)n) != n || rename(tmp, s->pid_path) < 0) {
		ks_error_set(err, -errno, "%s: %s", s->pid_path, strerror(errno));
		unlink(tmp);
		return err ? err->code : -EIO;
	}
	ks_cleanup_add_file(s->pid_path);
	return 0;
}

/* What follows the VM's start: the pid file, the control socket, the console, the timer. */
static int serve(struct ks_supervisor *s, struct ks_error *err)
{
	int rc;

	snprintf(s->rundir, sizeof(s->rundir), "%s", ks_vm_rundir(s->vm));
	snprintf(s->pid_path, sizeof(s->pid_path), "%s/%s", s->rundir, KS_SUPERVISOR_PIDFILE);
	snprintf(s->ctl_path, sizeof(s->ctl_path), "%s/%s", s->rundir, KS_CTL_SOCKET);
	ks_vm_on_event(s->vm, on_vm_event, s);
	if ((rc = take_pidfile(s, err)) < 0)
		return rc;
	if ((s->console = ks_vm_chan(s->vm, 0)) &&
	    (s->console_cb = ks_chan_on_line(s->console, on_console_line, s)) < 0)
		return ks_error_set(err, s->console_cb, "console: %s", strerror(-s->console_cb));
	if (s->opts.timeout_ns >= 0)
		s->timer = ks_loop_add_timer(s->loop, (uint64_t)s->opts.timeout_ns, 0, on_timeout,
					     s);
	return s->timer < 0 ? ks_error_set(err, (int)s->timer, "timer: %s",
					    strerror((int)-s->timer)) : 0;
}

struct ks_supervisor *ks_supervisor_new(struct ks_loop *loop, const struct ks_vmspec *spec,
					const struct ks_supervisor_opts *o, struct ks_error *err)
{
	struct ks_supervisor *s = calloc(1, sizeof(*s));
	struct ks_vm_opts vo;

	if (!s) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->lock_fd = -1;
	if (o)
		s->opts = *o;
	else
		ks_supervisor_opts_init(&s->opts);
	/* Paused until every console callback is in place, so that no line is missed. */
	vo = s->opts.vm;
	vo.paused = true;
	if (!(s->vm = ks_vm_start(loop, spec, &vo, err)))
		goto fail;
	if (serve(s, err) < 0)
		goto fail;
	if (!s->opts.vm.paused && ks_vm_resume(s->vm, err) < 0)
		goto fail;
	/* Symbols are for the commands that come later: reading them must not delay the
	 * guest's start. Commands are taken once they are there. */
	if (!(s->inspect = sup_inspect_new(spec->kernel, s->opts.symbols, err)))
		goto fail;
	ks_cleanup_add_file(s->ctl_path);
	s->server = ks_ctl_server_new(s->loop, s->ctl_path, ks_supervisor_commands, s, err);
	if (!s->server)
		goto fail;
	ks_ctl_server_set_defer(s->server, sup_monitor_defer);
	sup_log(s, "VM %s started: QEMU pid %d, accel %s, %s", ks_vm_name(s->vm),
		(int)ks_vm_pid(s->vm), ks_accel_name(ks_vm_accel(s->vm)), s->rundir);
	return s;
fail:
	ks_supervisor_free(s);
	return NULL;
}

/* Removes every entry of dir (one level: a runtime directory holds files only) and dir. */
static int remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno == EISDIR)
				unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	closedir(d);
	return rmdir(dir) < 0 && errno != ENOENT ? -errno : 0;
}

/* Ends the VM and removes the runtime directory, then lets the clients go. */
static void finish(struct ks_supervisor *s)
{
	char log[PATH_MAX + 32];

	if (s->finished)
		return;
	s->finished = true;
	if (s->timer > 0)
		ks_loop_del_timer(s->loop, s->timer);
	if (s->vm && !s->ended)
		ks_vm_destroy(s->vm);
	if (s->server)
		ks_ctl_server_shutdown(s->server);
	/* Before the gdb client it holds goes. */
	sup_monitor_free(s);
	if (s->rundir[0]) {
		ks_cleanup_del_path(s->ctl_path);
		unlink(s->pid_path);
		ks_cleanup_del_path(s->pid_path);
		snprintf(log, sizeof(log), "%s/%s", s->rundir, KS_SUPERVISOR_LOG);
		unlink(log);
		ks_cleanup_del_path(log);
	}
	sup_inspect_free(s->inspect);
	s->inspect = NULL;
	ks_vm_free(s->vm);
	s->vm = NULL;
	/* Whatever else was left there (ks_vm_free() removed its own files). */
	if (s->rundir[0])
		remove_tree(s->rundir);
	ks_ctl_server_free(s->server);
	s->server = NULL;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
}

int ks_supervisor_run(struct ks_supervisor *s)
{
	int rc = 0;

	while (!s->ended) {
		rc = ks_loop_run_once(s->loop, -1);
		if (rc < 0 && rc != -EINTR) {
			sup_log(s, "loop failed: %s; destroying the VM", strerror(-rc));
			break;
		}
		rc = 0;
		/* Nothing runs under this point: a monitor can go, requests that waited come. */
		sup_monitor_reap(s);
		if (s->server)
			ks_ctl_server_run_deferred(s->server);
	}
	finish(s);
	return rc;
}

void ks_supervisor_shutdown(struct ks_supervisor *s, const char *why)
{
	if (!s->vm || s->ended)
		return;
	sup_log(s, "%s: destroying the VM", why ? why : "shutdown");
	ks_vm_destroy(s->vm);
}

struct ks_vm *ks_supervisor_vm(struct ks_supervisor *s)
{
	return s->finished ? NULL : s->vm;
}

const struct ks_vm_outcome *ks_supervisor_outcome(const struct ks_supervisor *s)
{
	return &s->outcome;
}

bool ks_supervisor_timed_out(const struct ks_supervisor *s)
{
	return s->timed_out;
}

void ks_supervisor_free(struct ks_supervisor *s)
{
	if (!s)
		return;
	finish(s);
	free(s);
}

/* ---- what is left of VMs whose supervisor died ---- */

/* The pid of the QEMU that runs for rundir, or -1: its pid file names a live process (not
 * a zombie) whose command line mentions rundir, so a reused pid does not count. */
static pid_t qemu_of(const char *rundir)
{
	char path[PATH_MAX + 16], buf[8192];
	long pid = -1;
	FILE *f;
	size_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/qemu.pid", rundir);
	if (!(f = fopen(path, "re")))
		return -1;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = -1;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (pid < 0 || !(f = fopen(path, "re")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (strstr(buf, ") Z ") || strstr(buf, ") X "))
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = 0;
	for (ssize_t r; n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0;)
		n += (size_t)r;
	close(fd);
	for (size_t i = 0; i < n; i++)
		buf[i] = buf[i] ? buf[i] : ' ';
	buf[n] = 0;
	return strstr(buf, rundir) ? (pid_t)pid : -1;
}

enum ks_supervisor_liveness ks_supervisor_probe(const char *rundir, pid_t *pid)
{
	char path[PATH_MAX + 32];
	struct stat st;
	long p = -1;
	FILE *f;
	int fd;
	bool locked;

	if (pid)
		*pid = -1;
	snprintf(path, sizeof(path), "%s/%s", rundir, KS_SUPERVISOR_PIDFILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* Between the directory's creation and the pid file: starting, or died then. */
		if (qemu_of(rundir) > 0)
			return KS_SUPERVISOR_STARTING;
		return stat(rundir, &st) == 0 && time(NULL) - st.st_mtime < YOUNG_S
		       ? KS_SUPERVISOR_STARTING : KS_SUPERVISOR_DEAD;
	}
	locked = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	if ((f = fdopen(fd, "r"))) {
		if (fscanf(f, "%ld", &p) == 1 && pid)
			*pid = (pid_t)p;
		fclose(f);
	} else {
		close(fd);
	}
	return locked ? KS_SUPERVISOR_ALIVE : KS_SUPERVISOR_DEAD;
}

int ks_supervisor_cleanup_dead(const char *rundir, pid_t *qemu_killed, struct ks_error *err)
{
	pid_t q;
	int rc;

	if (qemu_killed)
		*qemu_killed = -1;
	if (ks_supervisor_probe(rundir, NULL) == KS_SUPERVISOR_ALIVE)
		return ks_error_set(err, -EBUSY, "%s: its supervisor is alive", rundir);
	/* QEMU dies with its supervisor (parent-death signal), unless that failed. */
	if ((q = qemu_of(rundir)) > 0) {
		kill(q, SIGKILL);
		if (qemu_killed)
			*qemu_killed = q;
		for (int i = 0; i < 200 && qemu_of(rundir) > 0; i++) {
			struct timespec ts = { 0, 10000000 };
			nanosleep(&ts, NULL);
		}
	}
	if ((rc = remove_tree(rundir)) < 0)
		return ks_error_set(err, rc, "cannot remove %s: %s", rundir, strerror(-rc));
	return 0;
}
