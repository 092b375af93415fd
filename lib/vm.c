/* vm.c: one QEMU virtual machine: its runtime directory, start, end, and how it ended. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/chan.h>
#include <kscope/cleanup.h>
#include <kscope/qmp.h>
#include <kscope/spawn.h>

#include "vm_internal.h"
#include "vm_private.h"

#define SEC 1000000000ll
#define QMP_TIMEOUT_NS (10 * SEC)
#define VMSTATE_SIZE (1ull << 30)

void ks_vm_opts_init(struct ks_vm_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pvpanic = true;
	o->debug_exit = true;
	o->gdb = true;
	o->snapshots = true;
	o->start_timeout_ns = 10 * SEC;
}

const char *ks_vm_rundir_base(void)
{
	static char base[PATH_MAX];
	const char *env = getenv("KSCOPE_RUNDIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(base, sizeof(base), "%s", env);
	else if (geteuid() == 0)
		snprintf(base, sizeof(base), "/run/kscope");
	else if (xdg && *xdg)
		snprintf(base, sizeof(base), "%s/kscope", xdg);
	else
		snprintf(base, sizeof(base), "/tmp/kscope-%u", (unsigned)geteuid());
	return base;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int check_name(const char *name, struct ks_error *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > VM_NAME_MAX || name[0] == '.')
		return ks_error_set(err, -EINVAL, "name: '%s' must be 1 to %d characters, not "
				    "starting with '.'", name, VM_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
			    name[i]))
			return ks_error_set(err, -EINVAL, "name: '%s' may hold only letters, digits, "
					    "'_', '.' and '-'", name);
	return 0;
}

/* Creates <base>/<name>, failing if another VM has that name. */
static int make_rundir(struct ks_vm *vm, const char *name, struct ks_error *err)
{
	static unsigned counter;
	const char *base = vm->opts.rundir_base ? vm->opts.rundir_base : ks_vm_rundir_base();
	int rc;

	if (name && (rc = check_name(name, err)) < 0)
		return rc;
	if (name)
		snprintf(vm->name, sizeof(vm->name), "%s", name);
	else
		snprintf(vm->name, sizeof(vm->name), "vm-%d-%u", (int)getpid(), counter++);
	if ((rc = mkdir_p(base)) < 0)
		return ks_error_set(err, rc, "cannot create %s: %s", base, strerror(-rc));
	snprintf(vm->rundir, sizeof(vm->rundir), "%s/%s", base, vm->name);
	if (mkdir(vm->rundir, 0700) < 0) {
		rc = -errno;
		vm->rundir[0] = 0;
		if (rc == -EEXIST)
			return ks_error_set(err, rc, "name: a VM named '%s' already exists (%s/%s)",
					    vm->name, base, vm->name);
		return ks_error_set(err, rc, "cannot create %s/%s: %s", base, vm->name,
				    strerror(-rc));
	}
	ks_cleanup_add_dir(vm->rundir);
	return 0;
}

/* A path in the runtime directory, registered for cleanup; NULL when out of memory. */
static char *rd_path(struct ks_vm *vm, const char *fmt, unsigned i)
{
	char leaf[64], *path;

	snprintf(leaf, sizeof(leaf), fmt, i);
	if (asprintf(&path, "%s/%s", vm->rundir, leaf) < 0)
		return NULL;
	ks_cleanup_add_file(path);
	return path;
}

static int make_paths(struct ks_vm *vm, struct ks_error *err)
{
	vm->nserial = vm->spec->serial;
	vm->serial_paths = calloc(vm->nserial + 1, sizeof(char *));
	vm->fifo_paths = calloc(2 * vm->nserial + 1, sizeof(char *));
	vm->fifo_fds = malloc((2 * vm->nserial + 1) * sizeof(int));
	vm->chan_logs = calloc(vm->nserial + 1, sizeof(char *));
	vm->chans = calloc(vm->nserial + 1, sizeof(*vm->chans));
	if (!vm->serial_paths || !vm->fifo_paths || !vm->fifo_fds || !vm->chan_logs || !vm->chans)
		return ks_error_set(err, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < 2 * vm->nserial; i++)
		vm->fifo_fds[i] = -1;
	vm->qmp_path = rd_path(vm, "qmp.sock", 0);
	vm->pid_path = rd_path(vm, "qemu.pid", 0);
	vm->out_path = rd_path(vm, "qemu.log", 0);
	vm->dlog_path = rd_path(vm, "qemu-debug.log", 0);
	if (vm->opts.gdb)
		vm->gdb_path = rd_path(vm, "gdb.sock", 0);
	if (vm->opts.snapshots)
		vm->vmstate_path = rd_path(vm, "vmstate.qcow2", 0);
	for (unsigned i = 0; i < vm->nserial; i++) {
		vm->serial_paths[i] = rd_path(vm, "serial%u", i);
		vm->fifo_paths[2 * i] = rd_path(vm, "serial%u.out", i);
		vm->fifo_paths[2 * i + 1] = rd_path(vm, "serial%u.in", i);
		vm->chan_logs[i] = rd_path(vm, i ? "com%u.log" : "console.log", i + 1);
		if (!vm->serial_paths[i] || !vm->fifo_paths[2 * i] || !vm->fifo_paths[2 * i + 1] ||
		    !vm->chan_logs[i])
			return ks_error_set(err, -ENOMEM, "out of memory");
	}
	if (!vm->qmp_path || !vm->pid_path || !vm->out_path || !vm->dlog_path ||
	    (vm->opts.gdb && !vm->gdb_path) || (vm->opts.snapshots && !vm->vmstate_path))
		return ks_error_set(err, -ENOMEM, "out of memory");
	if (strlen(vm->rundir) + 16 > 107)
		return ks_error_set(err, -ENAMETOOLONG, "runtime directory %s is too long for "
				    "Unix sockets (set KSCOPE_RUNDIR to a shorter path)", vm->rundir);
	return 0;
}

/*
 * Creates each guest RAM file in /dev/shm and unlinks it at once: QEMU opens it through
 * /proc/self/fd/N (the fd is inherited), the host maps it through the same fd, and no way out
 * of this process, SIGKILL included, can leave the file behind.
 */
static int make_ram(struct ks_vm *vm, struct ks_qemu_paths *p, struct ks_error *err)
{
	/* p->ram is read again when the argv is built: it must outlive this function. */
	snprintf(vm->shm, sizeof(vm->shm), "/dev/shm/kscope-%d-%s", (int)getpid(), vm->name);
	p->ram = vm->shm;
	if (!(vm->ram = ks_qemu_ram_layout(vm->spec, p, err)))
		return err ? err->code : -EINVAL;
	vm->ram_fds = malloc(vm->ram->nfiles * sizeof(int));
	vm->ram_open = calloc(vm->ram->nfiles + 1, sizeof(char *));
	if (!vm->ram_fds || !vm->ram_open)
		return ks_error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < vm->ram->nfiles; i++)
		vm->ram_fds[i] = -1;
	for (size_t i = 0; i < vm->ram->nfiles; i++) {
		const struct ks_ram_file *f = &vm->ram->files[i];
		int fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd < 0)
			return ks_error_set(err, -errno, "memory: cannot create %s: %s", f->path,
					    strerror(errno));
		unlink(f->path);
		vm->ram_fds[i] = fd;
		if (ftruncate(fd, (off_t)f->size) < 0)
			return ks_error_set(err, -errno, "memory: cannot size %s to %llu bytes: %s",
					    f->path, (unsigned long long)f->size, strerror(errno));
		if (asprintf(&vm->ram_open[i], "/proc/self/fd/%d", fd) < 0)
			return ks_error_set(err, -ENOMEM, "out of memory");
	}
	p->ram_open = (const char *const *)vm->ram_open;
	return 0;
}

/* The last lines QEMU wrote to its stdout/stderr, squeezed onto one line. */
static void qemu_output_tail(struct ks_vm *vm, char *buf, size_t size)
{
	char raw[1024];
	int fd = vm->out_path ? open(vm->out_path, O_RDONLY | O_CLOEXEC) : -1;
	ssize_t n = 0;

	buf[0] = 0;
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > (off_t)sizeof(raw) - 1 ? end - (off_t)sizeof(raw) + 1 : 0, SEEK_SET);
	n = read(fd, raw, sizeof(raw) - 1);
	close(fd);
	raw[n > 0 ? n : 0] = 0;
	size_t o = 0;
	for (char *s = raw; *s && o + 1 < size; s++)
		if (*s != '\r')
			buf[o++] = *s == '\n' ? (s[1] ? ' ' : 0) : *s;
	buf[o < size ? o : size - 1] = 0;
}

static bool debug_log_has(struct ks_vm *vm, const char *needle)
{
	FILE *f = vm->dlog_path ? fopen(vm->dlog_path, "re") : NULL;
	char line[512];
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* Tells how QEMU ended from its wait status and the SHUTDOWN event that came before. */
static void classify(struct ks_vm *vm, int status)
{
	struct ks_vm_outcome *o = &vm->outcome;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	/* A VM paused at its shutdown ended there: the host only clears it away. */
	bool ended_before = vm->destroying && vm->opts.pause_on_shutdown && vm->shutdown_seen;
	char tail[400];

	o->qemu_status = code;
	qemu_output_tail(vm, tail, sizeof(tail));
	if (vm->destroying && !ended_before) {
		o->end = KS_VM_END_DESTROYED;
		snprintf(o->detail, sizeof(o->detail), "destroyed by the host");
	} else if (WIFSIGNALED(status) && !ended_before) {
		o->end = KS_VM_END_KILLED;
		o->signal = WTERMSIG(status);
		snprintf(o->detail, sizeof(o->detail), "QEMU was killed by signal %d (%s)",
			 o->signal, strsignal(o->signal));
	} else if (vm->shutdown_seen && !strcmp(vm->shutdown_reason, "guest-reset")) {
		bool triple = debug_log_has(vm, "Triple fault");
		o->end = triple ? KS_VM_END_TRIPLE_FAULT : KS_VM_END_GUEST_RESET;
		snprintf(o->detail, sizeof(o->detail), "%s", triple ? "triple fault (the CPU reset "
			 "itself)" : "the guest reset the machine (triple fault or reset request)");
	} else if (o->panicked || !strcmp(vm->shutdown_reason, "guest-panic")) {
		o->end = KS_VM_END_PANIC;
		snprintf(o->detail, sizeof(o->detail), "the guest signalled a panic (pvpanic)");
	} else if (vm->shutdown_seen) {
		o->end = KS_VM_END_POWEROFF;
		snprintf(o->detail, sizeof(o->detail), "shut down (%s)", vm->shutdown_reason);
	} else if (vm->opts.debug_exit && (code & 1) && !(code == 1 && tail[0])) {
		/* isa-debug-exit exits straight away, without a SHUTDOWN event. */
		o->end = KS_VM_END_EXIT_CODE;
		o->exit_code = code >> 1;
		snprintf(o->detail, sizeof(o->detail), "the guest exited with code 0x%x",
			 o->exit_code);
	} else {
		o->end = KS_VM_END_QEMU_ERROR;
		snprintf(o->detail, sizeof(o->detail), "QEMU exited with status %d%s%s", code,
			 tail[0] ? ": " : "", tail);
	}
}

static void start_failed(struct ks_vm *vm, const char *what);

void vm_ended(struct ks_vm *vm, int status)
{
	ks_cleanup_del_pid(vm->pid);
	if (vm->pidfd >= 0) {
		ks_loop_del_fd(vm->loop, vm->pidfd);
		close(vm->pidfd);
		vm->pidfd = -1;
	}
	vm->pid = -1;
	/* Nothing can load the snapshots' RAM any more: its memory goes back to the host now. */
	vm_ramcopy_drop(vm, NULL);
	classify(vm, status);
	vm->state = KS_VM_ENDED;
	/* A VM that ends while it starts failed to start: its start callback says so. */
	if (vm->start)
		start_failed(vm, "start");
	else if (vm->cb)
		vm->cb(vm, NULL, vm->cb_data);
}

static void on_pidfd(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_vm *vm = data;
	int status;
	(void)l, (void)fd, (void)events;

	if (vm->pid > 0 && waitpid(vm->pid, &status, WNOHANG) == vm->pid)
		vm_ended(vm, status);
}

static void on_qmp_event(struct ks_qmp *q, const struct ks_qmp_event *ev, void *data)
{
	struct ks_vm *vm = data;
	(void)q;

	if (vm->state == KS_VM_ENDED)
		return;
	if (!strcmp(ev->name, "STOP")) {
		vm->state = KS_VM_PAUSED;
	} else if (!strcmp(ev->name, "RESUME")) {
		vm->state = KS_VM_RUNNING;
	} else if (!strcmp(ev->name, "GUEST_PANICKED")) {
		json_t *a = ev->data ? json_object_get(ev->data, "action") : NULL;
		vm->outcome.panicked = true;
		/* With panic=pause the STOP event follows; the VM is paused from now on. */
		if (json_is_string(a) && !strcmp(json_string_value(a), "pause"))
			vm->state = KS_VM_PAUSED;
	} else if (!strcmp(ev->name, "SHUTDOWN")) {
		json_t *r = ev->data ? json_object_get(ev->data, "reason") : NULL;
		vm->shutdown_seen = true;
		snprintf(vm->shutdown_reason, sizeof(vm->shutdown_reason), "%s",
			 json_is_string(r) ? json_string_value(r) : "unknown");
	}
	if (vm->cb)
		vm->cb(vm, ev->name, vm->cb_data);
}

static int spawn_qemu(struct ks_vm *vm, char **argv, struct ks_error *err)
{
	int out = open(vm->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (out < 0)
		return ks_error_set(err, -errno, "cannot create %s: %s", vm->out_path,
				    strerror(errno));
	vm->pid = ks_spawn(argv, out, vm->ram_fds, vm->ram->nfiles, err);
	close(out);
	if (vm->pid < 0)
		return vm->pid;
	ks_cleanup_add_pid(vm->pid);
	vm->pidfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	if (vm->pidfd < 0)
		return ks_error_set(err, -errno, "pidfd_open: %s", strerror(errno));
	fcntl(vm->pidfd, F_SETFD, FD_CLOEXEC);
	return ks_loop_add_fd(vm->loop, vm->pidfd, KS_LOOP_IN, on_pidfd, vm);
}

static int failed_to_start(struct ks_vm *vm, struct ks_error *err, const char *what)
{
	char tail[400];

	/* Give QEMU a moment to finish writing why it gave up. */
	if (vm->pid > 0 && vm->state != KS_VM_ENDED) {
		int status;
		if (ks_wait_pid(vm->pid, SEC / 5, &status) == 0)
			vm_ended(vm, status);
	}
	qemu_output_tail(vm, tail, sizeof(tail));
	if (vm->state == KS_VM_ENDED || tail[0])
		return ks_error_set(err, -ECHILD, "QEMU failed to start: %s",
				    tail[0] ? tail : vm->outcome.detail);
	return ks_error_set(err, -ETIMEDOUT, "QEMU did not %s in time", what);
}

/*
 * Makes each port's FIFO pair and opens kscope's ends before QEMU starts (neither open waits:
 * the read end is non-blocking, the write end read-write), so that QEMU, which opens both
 * read-write, finds them. Pipes rather than sockets: QEMU writes the UART's output a byte
 * at a time, and a pipe packs those bytes into pages where a socket spends a buffer on each,
 * so a pipe's reader can let them pile up and read them in a few gulps (ks_chan_attach_pipes()).
 */
static int make_fifos(struct ks_vm *vm, struct ks_error *err)
{
	static const int modes[2] = { O_RDONLY | O_NONBLOCK | O_CLOEXEC, O_RDWR | O_CLOEXEC };

	for (unsigned i = 0; i < 2 * vm->nserial; i++) {
		const char *path = vm->fifo_paths[i];

		if (mkfifo(path, 0600) < 0)
			return ks_error_set(err, -errno, "cannot make the FIFO %s: %s", path,
					    strerror(errno));
		if ((vm->fifo_fds[i] = open(path, modes[i % 2])) < 0)
			return ks_error_set(err, -errno, "cannot open the FIFO %s: %s", path,
					    strerror(errno));
	}
	return 0;
}

static int connect_serial(struct ks_vm *vm, struct ks_error *err)
{
	for (unsigned i = 0; i < vm->nserial; i++) {
		char name[16];

		snprintf(name, sizeof(name), i ? "com%u" : "console", i + 1);
		vm->chans[i] = ks_chan_attach_pipes(vm->loop, name, vm->fifo_fds[2 * i],
						    vm->fifo_fds[2 * i + 1], vm->chan_logs[i], err);
		vm->fifo_fds[2 * i] = vm->fifo_fds[2 * i + 1] = -1;  /* the channel's now */
		if (!vm->chans[i])
			return err ? err->code : -EIO;
	}
	return 0;
}

/* ---- the start: QMP and the serial ports connected as QEMU comes up ---- */

/*
 * Sent on QMP before the greeting is read: QEMU answers it (refusing it, as nothing but
 * qmp_capabilities is taken before negotiation) from its main loop, that is once its
 * start-up is over, whereas the greeting comes as soon as the socket accepts. The answer
 * tells when the handshake can be done without waiting; ks_qmp_attach() drops it, as it
 * answers no command of its own.
 */
#define START_PROBE "{\"execute\":\"query-status\",\"id\":\"kscope-start\"}\r\n"
#define START_TOKEN "\"kscope-start\""
#define REFUSED_RETRY_NS (SEC / 2000) /* bind() done, listen() not yet: microseconds apart */
#define NO_NOTIFY_RETRY_NS (SEC / 1000)

struct vm_start {
	struct ks_vm *vm;
	ks_vm_started_cb cb;
	void *data;
	int64_t deadline;   /* ks_loop_now_ns() */
	/*
	 * An epoll set watched through the loop, holding the process's inotify fd and then the
	 * QMP socket, edge-triggered: the greeting must stay unread until the probe's answer
	 * comes, and a level-triggered watch would wake the loop on every round meanwhile.
	 */
	int ep;
	int wd;             /* the runtime directory's inotify watch, or -1: a timer retries */
	int qmp;            /* connected QMP socket before its handshake, or -1 */
	int64_t deadline_timer, retry_timer;
	struct vm_start *next;
};

/*
 * One inotify instance for the process, kept open: closing one waits for a grace period of
 * the kernel's (14 ms here), longer than the whole wait it saves. A file created in any
 * runtime directory makes every start under way try its QMP socket. A child made by fork()
 * gets its own instance and list: its parent reads the inherited one.
 */
static int notify_fd = -1;
static pid_t notify_pid;
static struct vm_start *starts;

static void start_free(struct ks_vm *vm)
{
	struct vm_start *st = vm->start, **pp = &starts;

	if (!st)
		return;
	while (*pp && *pp != st)
		pp = &(*pp)->next;
	if (*pp)
		*pp = st->next;
	if (st->wd >= 0)
		inotify_rm_watch(notify_fd, st->wd);
	if (st->ep >= 0) {
		ks_loop_del_fd(vm->loop, st->ep);
		close(st->ep);
	}
	if (st->qmp >= 0)
		close(st->qmp);
	if (st->deadline_timer > 0)
		ks_loop_del_timer(vm->loop, st->deadline_timer);
	if (st->retry_timer > 0)
		ks_loop_del_timer(vm->loop, st->retry_timer);
	free(st);
	vm->start = NULL;
}

void vm_start_cancel(struct ks_vm *vm)
{
	start_free(vm);
	vm->starting = false;
}

/* Tells the caller how the start went; a failed one kills QEMU first. */
static void start_report(struct ks_vm *vm, ks_vm_started_cb cb, void *data, int rc,
			 const struct ks_error *e)
{
	vm->starting = false;
	if (rc < 0)
		ks_vm_destroy(vm);
	cb(vm, rc, rc < 0 ? e : NULL, data);
}

/* The start cannot go on: QEMU's own reason when it ended, else that it did not `what`. */
static void start_failed(struct ks_vm *vm, const char *what)
{
	ks_vm_started_cb cb = vm->start->cb;
	void *data = vm->start->data;
	struct ks_error e = { 0 };

	start_free(vm);
	start_report(vm, cb, data, failed_to_start(vm, &e, what), &e);
}

static int attach_qmp(struct ks_vm *vm, int fd, int64_t deadline, struct ks_error *err)
{
	int64_t left = deadline - (int64_t)ks_loop_now_ns();

	vm->qmp = ks_qmp_attach(vm->loop, fd, left > 0 ? left : 0, err);
	if (!vm->qmp)
		return failed_to_start(vm, err, "answer on QMP");
	ks_qmp_on_event(vm->qmp, on_qmp_event, vm);
	return 0;
}

/*
 * QEMU runs its main loop: the QMP handshake, the serial ports and resuming the vCPUs take
 * a few round trips now. They run the loop themselves, where anything may destroy or free
 * the VM: the start is over for them, and `connecting` makes ks_vm_free() wait for them.
 */
static void start_connect(struct ks_vm *vm)
{
	ks_vm_started_cb cb = vm->start->cb;
	void *data = vm->start->data;
	int64_t deadline = vm->start->deadline;
	int fd = vm->start->qmp, rc;
	struct ks_error e = { 0 };

	vm->start->qmp = -1;
	start_free(vm);
	vm->connecting = true;
	rc = attach_qmp(vm, fd, deadline, &e);
	if (rc == 0)
		rc = connect_serial(vm, &e);
	vm->started_ns = ks_loop_now_ns();
	if (rc == 0 && !vm->opts.paused && vm->starting && (rc = ks_vm_resume(vm, &e)) < 0 &&
	    (rc == -ECONNRESET || rc == -EPIPE)) {
		/* A guest that ends right after `cont` (isa-debug-exit in its first instructions)
		 * can take QMP down before QEMU answers: it did run, and its end comes the way
		 * every end does, from QEMU's exit. */
		vm->state = KS_VM_RUNNING;
		rc = 0;
	}
	vm->connecting = false;
	if (vm->free_later)
		ks_vm_free(vm);
	else if (vm->starting)
		start_report(vm, cb, data, rc, &e);
}

/* Whether QEMU has answered the probe: the greeting and the answer are only peeked at. */
static void start_peek(struct ks_vm *vm)
{
	char buf[8192];
	ssize_t n = recv(vm->start->qmp, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);

	/* At EOF QEMU is going away: its end, coming through the pidfd, says why. */
	if (n <= 0)
		return;
	buf[n] = 0;
	if (strstr(buf, START_TOKEN) || (size_t)n == sizeof(buf) - 1)
		start_connect(vm);
}

static void start_retry(struct ks_loop *l, int64_t id, void *data);

static void start_retry_in(struct ks_vm *vm, int64_t ns)
{
	struct vm_start *st = vm->start;

	if (st->retry_timer <= 0)
		st->retry_timer = ks_loop_add_timer(vm->loop, (uint64_t)ns, 0, start_retry, vm);
}

/* Connects to QMP's socket once QEMU listens there, and sends the probe. */
static void start_try_qmp(struct ks_vm *vm)
{
	struct vm_start *st = vm->start;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), e;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vm->qmp_path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, START_PROBE, strlen(START_PROBE), MSG_NOSIGNAL) ==
	    (ssize_t)strlen(START_PROBE)) {
		ev.data.fd = fd;
		if (epoll_ctl(st->ep, EPOLL_CTL_ADD, fd, &ev) == 0) {
			st->qmp = fd;
			return;
		}
	}
	e = errno;
	if (fd >= 0)
		close(fd);
	/* Refused: bound, not listening yet. Missing: inotify tells when it is there. */
	if (e == ECONNREFUSED || e == EAGAIN || st->wd < 0)
		start_retry_in(vm, st->wd < 0 ? NO_NOTIFY_RETRY_NS : REFUSED_RETRY_NS);
}

static void start_retry(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_vm *vm = data;

	(void)l, (void)id;
	vm->start->retry_timer = 0;
	if (vm->start->qmp < 0)
		start_try_qmp(vm);
}

static void start_deadline(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_vm *vm = data;

	(void)l, (void)id;
	vm->start->deadline_timer = 0;
	start_failed(vm, vm->start->qmp < 0 ? "open its QMP socket" : "answer on QMP");
}

/* Files appeared in runtime directories: every start still without QMP tries again. */
static void start_notified(void)
{
	char buf[4096];

	while (read(notify_fd, buf, sizeof(buf)) > 0)
		;
	for (struct vm_start *st = starts; st; st = st->next)
		if (st->qmp < 0)
			start_try_qmp(st->vm);
}

/* A runtime directory changed, or QMP has news. */
static void start_io(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_vm *vm = data;
	struct vm_start *st = vm->start;
	struct epoll_event ev[2];
	int n = epoll_wait(st->ep, ev, 2, 0);
	bool peek = false;

	(void)l, (void)fd, (void)events;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == notify_fd)
			start_notified();
		else if (ev[i].data.fd == st->qmp)
			peek = true;
	}
	/* Last: it may end the start, and with it st. */
	if (peek || (n == 0 && st->qmp >= 0))
		start_peek(vm);
}

/* Watches the runtime directory through the process's inotify instance; -1 without. */
static int watch_rundir(struct vm_start *st, const char *rundir)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int wd;

	if (notify_fd < 0)
		notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (notify_fd < 0 || (wd = inotify_add_watch(notify_fd, rundir, IN_CREATE)) < 0)
		return -1;
	ev.data.fd = notify_fd;
	if (epoll_ctl(st->ep, EPOLL_CTL_ADD, notify_fd, &ev) < 0) {
		inotify_rm_watch(notify_fd, wd);
		return -1;
	}
	return wd;
}

/* Sets up the start before QEMU is spawned, so that its QMP socket cannot be missed. */
static int vm_start_begin(struct ks_vm *vm, ks_vm_started_cb cb, void *data,
			  struct ks_error *err)
{
	struct vm_start *st = calloc(1, sizeof(*st));
	int rc;

	if (!st)
		return ks_error_set(err, -ENOMEM, "out of memory");
	if (notify_pid != getpid()) {
		if (notify_fd >= 0)
			close(notify_fd);
		notify_fd = -1;
		notify_pid = getpid();
		starts = NULL;
	}
	*st = (struct vm_start){ .vm = vm, .cb = cb, .data = data, .ep = -1, .wd = -1, .qmp = -1,
				 .deadline = (int64_t)ks_loop_now_ns() + vm->opts.start_timeout_ns,
				 .next = starts };
	vm->start = starts = st;
	vm->starting = true;
	if ((st->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return ks_error_set(err, -errno, "start: epoll: %s", strerror(errno));
	/* Without inotify (no instance left, say) a timer looks for the socket instead. */
	if ((st->wd = watch_rundir(st, vm->rundir)) < 0)
		start_retry_in(vm, NO_NOTIFY_RETRY_NS);
	st->deadline_timer = ks_loop_add_timer(vm->loop, (uint64_t)vm->opts.start_timeout_ns, 0,
					       start_deadline, vm);
	if (st->deadline_timer < 0 || (st->wd < 0 && st->retry_timer < 0))
		return ks_error_set(err, -ENOMEM, "out of memory");
	rc = ks_loop_add_fd(vm->loop, st->ep, KS_LOOP_IN, start_io, vm);
	return rc < 0 ? ks_error_set(err, rc, "start: cannot watch: %s", strerror(-rc)) : 0;
}

static char *log_items(struct ks_vm *vm)
{
	static char items[256];
	const char *extra = vm->opts.log_items;

	/* Under TCG, cpu_reset tells a triple fault from a reset request. */
	snprintf(items, sizeof(items), "%s%s%s", vm->accel == KS_ACCEL_TCG ? "cpu_reset" : "",
		 vm->accel == KS_ACCEL_TCG && extra && *extra ? "," : "", extra ? extra : "");
	return items[0] ? items : NULL;
}

static int launch(struct ks_vm *vm, struct ks_error *err)
{
	struct ks_qemu_paths p = { 0 };
	char **argv = NULL;
	int rc;

	p.accel = vm->accel;
	p.qmp = vm->qmp_path;
	p.gdb = vm->gdb_path;
	p.serial = (const char *const *)vm->serial_paths;
	p.serial_pipes = true;
	p.vmstate = vm->vmstate_path;
	p.pidfile = vm->pid_path;
	p.log_items = log_items(vm);
	p.log = p.log_items ? vm->dlog_path : NULL;
	p.paused = true; /* always: the serial ports must be connected before the guest talks */
	p.no_reboot = vm->opts.no_reboot;
	p.shutdown_pause = vm->opts.pause_on_shutdown;
	p.pvpanic = vm->opts.pvpanic;
	p.debug_exit = vm->opts.debug_exit;
	if ((rc = make_ram(vm, &p, err)) < 0 || (rc = make_fifos(vm, err)) < 0)
		return rc;
	if (vm->vmstate_path && (rc = ks_qcow2_create(vm->vmstate_path, VMSTATE_SIZE, err)) < 0)
		return rc;
	if ((rc = ks_qemu_argv_build(vm->spec, &p, &argv, err)) < 0)
		return rc;
	rc = spawn_qemu(vm, argv, err);
	ks_qemu_argv_free(argv);
	return rc;
}

static struct ks_vm *vm_alloc(struct ks_loop *loop, const struct ks_vmspec *spec,
			      const struct ks_vm_opts *o, struct ks_error *err)
{
	struct ks_vm *vm = calloc(1, sizeof(*vm));

	if (!vm) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	vm->loop = loop;
	vm->pid = -1;
	vm->pidfd = -1;
	vm->state = KS_VM_PAUSED;
	vm->outcome.qemu_status = -1;
	if (o)
		vm->opts = *o;
	else
		ks_vm_opts_init(&vm->opts);
	vm->opts.name = NULL; /* make_rundir copies it into vm->name */
	vm->opts.log_items = vm->opts.log_items ? strdup(vm->opts.log_items) : NULL;
	vm->opts.rundir_base = vm->opts.rundir_base ? strdup(vm->opts.rundir_base) : NULL;
	vm->spec = ks_vmspec_dup(spec, err);
	if (!vm->spec) {
		free(vm);
		return NULL;
	}
	return vm;
}

struct ks_vm *ks_vm_launch(struct ks_loop *loop, const struct ks_vmspec *spec,
			   const struct ks_vm_opts *o, ks_vm_started_cb cb, void *data,
			   struct ks_error *err)
{
	struct ks_vm *vm;

	if (!cb) {
		ks_error_set(err, -EINVAL, "launch: no callback to report the start to");
		return NULL;
	}
	if (ks_vmspec_validate(spec, err) < 0 || !(vm = vm_alloc(loop, spec, o, err)))
		return NULL;
	vm->accel = ks_vm_pick_accel(spec, &vm->accel_why);
	/* The start watches the runtime directory before QEMU can create its socket there. */
	if (make_rundir(vm, o ? o->name : NULL, err) < 0 || make_paths(vm, err) < 0 ||
	    vm_start_begin(vm, cb, data, err) < 0 || launch(vm, err) < 0) {
		ks_vm_free(vm);
		return NULL;
	}
	return vm;
}
