/* cmd_vm_start.c: `kscope vm start` (a supervisor daemon) and `kscope vm run` (in-process). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/cleanup.h>
#include <kscope/kt_abi.h>
#include <kscope/supervisor.h>

#include "signals.h"
#include "vm_cli.h"

#define SEC 1000000000ll
#define REPORT_TIMEOUT_MS (120 * 1000)  /* a KVM probe and QEMU's start, with room to spare */

/* Signals become bytes on a pipe, handled by the loop: the VM is destroyed cleanly. */
static struct ks_supervisor *sig_sup;
static int sig_pending;

static void on_signal(int sig, void *data)
{
	char why[64];

	(void)data;
	snprintf(why, sizeof(why), "signal %s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	if (sig_sup)
		ks_supervisor_shutdown(sig_sup, why);
	else
		sig_pending = sig;
}

/* If the VM's name is taken by a live VM, says so and returns busy; cleans up a dead one. */
static int claim_name(const struct vm_cmd *cmd, const char *name, int busy)
{
	char dir[PATH_MAX], note[PATH_MAX + 128];
	int r;

	vm_rundir(name, dir, sizeof(dir));
	if (access(dir, F_OK) < 0)
		return 0;
	r = vm_reap_if_dead(name, note, sizeof(note));
	if (r == 1)
		fprintf(stderr, "kscope vm %s: note: VM '%s': %s\n", cmd->name, name, note);
	if (r == 0)
		fprintf(stderr, "kscope vm %s: a VM named '%s' already exists (kscope vm destroy "
			"%s ends it)\n", cmd->name, name, name);
	if (r < 0)
		fprintf(stderr, "kscope vm %s: %s\n", cmd->name, note);
	return r == 1 ? 0 : r == 0 ? busy : 1;
}

/* Parses the command line shared by start and run: NAME, the spec. Returns 0 or 2. */
static int parse_start(const struct vm_cmd *cmd, int argc, char **argv, struct vm_args *a,
		       struct ks_vmspec **spec)
{
	int rc;

	memset(&vm_flags, 0, sizeof(vm_flags));
	if ((rc = vm_parse(cmd, argc, argv, a)) != 0)
		return rc;
	if (a->help)
		return 0;
	if (a->npos != 1) {
		fprintf(stderr, "kscope vm %s: needs one NAME (usage: kscope vm %s %s)\n",
			cmd->name, cmd->name, cmd->args);
		return 2;
	}
	if ((rc = vm_check_name(cmd, a->pos[0])) != 0)
		return rc;
	return (*spec = vm_build_spec(cmd, a)) ? 0 : 2;
}

/* ---- start ---- */

static void report(int fd, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);

	if (s)
		(void)!write(fd, s, strlen(s));
	free(s);
	json_decref(msg);
	close(fd);
}

/* Sends stdout and stderr to the runtime directory's supervisor.log. */
static void log_to_rundir(struct ks_vm *vm)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", ks_vm_rundir(vm), KS_SUPERVISOR_LOG);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ks_cleanup_add_file(path);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* The daemon: owns the VM until it ends. Never returns. */
static void daemon_main(const char *name, struct ks_vmspec *spec, int report_fd)
{
	struct ks_error err = { 0 };
	struct ks_supervisor_opts o;
	struct ks_loop *loop;
	int null = open("/dev/null", O_RDWR);

	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	close(null);
	if (!(loop = ks_loop_new(&err)) || cli_signals_catch(loop, on_signal, NULL, false) < 0) {
		report(report_fd, json_pack("{s:b,s:s}", "ok", 0, "error", "cannot set up the "
					    "supervisor's event loop"));
		exit(1);
	}
	ks_supervisor_opts_init(&o);
	o.vm.name = name;
	o.vm.paused = vm_flags.paused != NULL;
	o.vm.log_items = vm_flags.trace_interrupts ? "int" : NULL;
	o.log = stderr;
	o.symbols = vm_flags.symbols;
	if (!(sig_sup = ks_supervisor_new(loop, spec, &o, &err))) {
		report(report_fd, json_pack("{s:b,s:s}", "ok", 0, "error", err.msg));
		exit(1);
	}
	struct ks_vm *vm = ks_supervisor_vm(sig_sup);
	log_to_rundir(vm);
	fprintf(stderr, "kscope supervisor[%d]: VM %s started: QEMU pid %d, accel %s\n",
		(int)getpid(), name, (int)ks_vm_pid(vm), ks_accel_name(ks_vm_accel(vm)));
	report(report_fd, json_pack("{s:b,s:s,s:s,s:s?,s:i,s:i,s:s,s:s}", "ok", 1,
				    "name", ks_vm_name(vm), "accel", ks_accel_name(ks_vm_accel(vm)),
				    "accel_reason", ks_vm_accel_reason(vm), "qemu_pid",
				    (int)ks_vm_pid(vm), "supervisor_pid", (int)getpid(),
				    "rundir", ks_vm_rundir(vm), "state", o.vm.paused ? "paused"
				    : "running"));
	if (sig_pending)
		ks_supervisor_shutdown(sig_sup, "signal before start");
	ks_supervisor_run(sig_sup);
	ks_supervisor_free(sig_sup);
	ks_loop_free(loop);
	exit(0);
}

/* Reads the daemon's one-line report until it closes the pipe. NULL if none came. */
static json_t *read_report(int fd)
{
	char buf[4096];
	size_t len = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (len < sizeof(buf) - 1 && poll(&p, 1, REPORT_TIMEOUT_MS) > 0) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	return len ? json_loadb(buf, len, 0, NULL) : NULL;
}

static void print_started(json_t *r)
{
	const char *why = json_string_value(json_object_get(r, "accel_reason"));

	printf("name:        %s\n", json_string_value(json_object_get(r, "name")));
	printf("state:       %s\n", json_string_value(json_object_get(r, "state")));
	printf("accel:       %s%s%s%s\n", json_string_value(json_object_get(r, "accel")),
	       why ? " (" : "", why ? why : "", why ? ")" : "");
	printf("qemu pid:    %d\n", (int)json_integer_value(json_object_get(r, "qemu_pid")));
	printf("supervisor:  %d\n",
	       (int)json_integer_value(json_object_get(r, "supervisor_pid")));
	printf("rundir:      %s\n", json_string_value(json_object_get(r, "rundir")));
}

/* Forks the daemon (double fork, new session) and waits for its report. */
static int spawn_daemon(const struct vm_cmd *cmd, const char *name, struct ks_vmspec *spec)
{
	int p[2], status = 1;
	pid_t pid;
	json_t *r;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "kscope vm %s: cannot start the supervisor: %s\n", cmd->name,
			strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		pid = fork();
		if (pid != 0)
			_exit(pid < 0);
		daemon_main(name, spec, p[1]);
	}
	close(p[1]);
	waitpid(pid, NULL, 0);
	r = read_report(p[0]);
	close(p[0]);
	if (!r)
		fprintf(stderr, "kscope vm %s: the supervisor of '%s' died while starting it\n",
			cmd->name, name);
	else if (!json_is_true(json_object_get(r, "ok")))
		fprintf(stderr, "kscope vm %s: %s\n", cmd->name,
			json_string_value(json_object_get(r, "error")));
	else
		status = (print_started(r), 0);
	json_decref(r);
	return status;
}

/* The -d int trace exists under TCG only: refused before anything starts. The choice of
 * accelerator is cached, so the daemon forked next does not probe KVM again. */
static int check_trace(const struct vm_cmd *cmd, const struct ks_vmspec *spec)
{
	const char *why = NULL;

	if (!vm_flags.trace_interrupts || ks_vm_pick_accel(spec, &why) != KS_ACCEL_KVM)
		return 0;
	fprintf(stderr, "kscope vm %s: --trace-interrupts: QEMU writes the -d int trace under "
		"TCG only, and this VM would run under KVM%s%s%s; add --accel tcg\n", cmd->name,
		why ? " (" : "", why ? why : "", why ? ")" : "");
	return 2;
}

int vm_cmd_start(const struct vm_cmd *cmd, int argc, char **argv)
{
	struct ks_vmspec *spec = NULL;
	struct vm_args a;
	int rc = parse_start(cmd, argc, argv, &a, &spec);

	if (rc == 0 && a.help)
		vm_usage(cmd, stdout);
	if (rc != 0 || a.help)
		goto out;
	if ((rc = check_trace(cmd, spec)) != 0 || (rc = claim_name(cmd, a.pos[0], 1)) != 0)
		goto out;
	fflush(NULL);
	rc = spawn_daemon(cmd, a.pos[0], spec);
out:
	ks_vmspec_free(spec);
	return rc;
}

/* ---- run ---- */

static int parse_timeout(const struct vm_cmd *cmd, int64_t *ns)
{
	char *end;
	double s;

	*ns = -1;
	if (!vm_flags.timeout)
		return 0;
	s = strtod(vm_flags.timeout, &end);
	if (end == vm_flags.timeout || *end || !(s > 0) || s > 1e6) {
		fprintf(stderr, "kscope vm %s: --timeout: expected seconds, e.g. 30 or 0.5 (got "
			"'%s')\n", cmd->name, vm_flags.timeout);
		return 2;
	}
	*ns = (int64_t)(s * SEC);
	return 0;
}

/* Runs the VM to its end; returns the exit status from its outcome. */
static int run_vm(const struct vm_cmd *cmd, const char *name, struct ks_vmspec *spec,
		  int64_t timeout_ns)
{
	struct ks_error err = { 0 };
	struct ks_supervisor_opts o;
	struct ks_loop *loop = ks_loop_new(&err);
	const struct ks_vm_outcome *out;
	int status = 2;

	if (!loop || cli_signals_catch(loop, on_signal, NULL, false) < 0) {
		fprintf(stderr, "kscope vm %s: cannot set up the event loop\n", cmd->name);
		goto out;
	}
	ks_supervisor_opts_init(&o);
	o.vm.name = name;
	o.vm.no_reboot = true;  /* a test run ends on a triple fault rather than loop on it */
	o.console = stdout;
	o.timeout_ns = timeout_ns;
	o.symbols = vm_flags.symbols;
	if (!(sig_sup = ks_supervisor_new(loop, spec, &o, &err))) {
		fprintf(stderr, "kscope vm %s: %s\n", cmd->name, err.msg);
		goto out;
	}
	struct ks_vm *vm = ks_supervisor_vm(sig_sup);
	const char *why = ks_vm_accel_reason(vm);
	fprintf(stderr, "kscope vm %s: %s: accel %s%s%s%s, qemu pid %d, rundir %s\n", cmd->name,
		name, ks_accel_name(ks_vm_accel(vm)), why ? " (" : "", why ? why : "",
		why ? ")" : "", (int)ks_vm_pid(vm), ks_vm_rundir(vm));
	if (sig_pending)
		ks_supervisor_shutdown(sig_sup, "signal before start");
	ks_supervisor_run(sig_sup);
	out = ks_supervisor_outcome(sig_sup);
	fprintf(stderr, "kscope vm %s: %s ended: %s%s\n", cmd->name, name, out->detail,
		ks_supervisor_timed_out(sig_sup) ? " (timed out)" : "");
	status = out->end == KS_VM_END_EXIT_CODE && out->exit_code == KT_EXIT_PASS ? 0 : 1;
out:
	ks_supervisor_free(sig_sup);
	sig_sup = NULL;
	ks_loop_free(loop);
	return status;
}

int vm_cmd_run(const struct vm_cmd *cmd, int argc, char **argv)
{
	struct ks_vmspec *spec = NULL;
	struct vm_args a;
	int64_t timeout_ns;
	int rc = parse_start(cmd, argc, argv, &a, &spec);

	if (rc == 0 && a.help)
		vm_usage(cmd, stdout);
	if (rc != 0 || a.help)
		goto out;
	if ((rc = parse_timeout(cmd, &timeout_ns)) != 0 || (rc = claim_name(cmd, a.pos[0], 2)))
		goto out;
	rc = run_vm(cmd, a.pos[0], spec, timeout_ns);
out:
	ks_vmspec_free(spec);
	return rc;
}
