/* vm_ops.c: acting on a VM (pause, resume, reset, stop, destroy), waiting for its start or its end, freeing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/chan.h>
#include <kscope/cleanup.h>
#include <kscope/qmp.h>
#include <kscope/spawn.h>

#include "vm_private.h"

#define SEC 1000000000ll
#define QMP_TIMEOUT_NS (10 * SEC)

int vm_need_qmp(struct ks_vm *vm, const char *what, struct ks_error *err)
{
	if (vm->state == KS_VM_ENDED || !vm->qmp)
		return ks_error_set(err, -ENOTCONN, "%s: the VM has ended (%s)", what,
				    vm->outcome.detail);
	return 0;
}

static int simple(struct ks_vm *vm, const char *cmd, const char *what, struct ks_error *err)
{
	json_t *reply = NULL;
	int rc = vm_need_qmp(vm, what, err);

	if (rc == 0)
		rc = ks_qmp_call(vm->qmp, cmd, NULL, &reply, QMP_TIMEOUT_NS, err);
	json_decref(reply);
	return rc;
}

int ks_vm_pause(struct ks_vm *vm, struct ks_error *err)
{
	int rc = simple(vm, "stop", "pause", err);

	if (rc == 0)
		vm->state = KS_VM_PAUSED;
	return rc;
}

int ks_vm_resume(struct ks_vm *vm, struct ks_error *err)
{
	int rc = simple(vm, "cont", "resume", err);

	if (rc == 0)
		vm->state = KS_VM_RUNNING;
	return rc;
}

int ks_vm_set_pause_on_shutdown(struct ks_vm *vm, bool on, struct ks_error *err)
{
	json_t *reply = NULL, *args;
	int rc = vm_need_qmp(vm, "set-action", err);

	if (rc < 0 || on == vm->opts.pause_on_shutdown)
		return rc;
	/* -no-reboot is QEMU's reboot=shutdown: a reset then ends the VM, or with this, pauses it. */
	args = json_pack("{s:s,s:s}", "reboot", on || vm->opts.no_reboot ? "shutdown" : "reset",
			 "shutdown", on ? "pause" : "poweroff");
	rc = ks_qmp_call(vm->qmp, "set-action", args, &reply, QMP_TIMEOUT_NS, err);
	json_decref(reply);
	if (rc == 0)
		vm->opts.pause_on_shutdown = on;
	return rc;
}

int ks_vm_reset(struct ks_vm *vm, struct ks_error *err)
{
	/* With -no-reboot QEMU turns every reset into its exit. */
	if (vm->opts.no_reboot)
		return ks_error_set(err, -EOPNOTSUPP, "reset: this VM was started with no_reboot, "
				    "where a reset ends it");
	/* reboot=shutdown turns a reset into the pause at shutdown. */
	if (vm->opts.pause_on_shutdown)
		return ks_error_set(err, -EOPNOTSUPP, "reset: this VM pauses at its shutdown "
				    "(pause_on_shutdown), where a reset pauses it");
	return simple(vm, "system_reset", "reset", err);
}

/* What ks_vm_start() waits for. */
struct start_wait {
	bool done;
	int rc;
	struct ks_error *err;
};

static void start_waited(struct ks_vm *vm, int rc, const struct ks_error *e, void *data)
{
	struct start_wait *w = data;

	(void)vm;
	w->done = true;
	w->rc = rc;
	if (rc < 0 && w->err)
		*w->err = *e;
}

struct ks_vm *ks_vm_start(struct ks_loop *loop, const struct ks_vmspec *spec,
			  const struct ks_vm_opts *o, struct ks_error *err)
{
	struct start_wait w = { false, 0, err };
	struct ks_vm *vm = ks_vm_launch(loop, spec, o, start_waited, &w, err);
	int rc = 0;

	/* The start's own deadline ends the wait whatever QEMU does. */
	while (vm && !w.done && rc >= 0)
		rc = ks_loop_run_once(loop, SEC);
	if (vm && rc < 0)
		ks_error_set(err, rc, "start: event loop: %s", strerror(-rc));
	if (vm && (rc < 0 || w.rc < 0)) {
		ks_vm_free(vm);
		return NULL;
	}
	return vm;
}

int ks_vm_wait(struct ks_vm *vm, int64_t timeout_ns)
{
	int64_t deadline = timeout_ns < 0 ? -1 : (int64_t)ks_loop_now_ns() + timeout_ns;

	while (vm->state != KS_VM_ENDED) {
		int64_t left = deadline < 0 ? SEC : deadline - (int64_t)ks_loop_now_ns();

		if (left <= 0)
			return -ETIMEDOUT;
		ks_loop_run_once(vm->loop, left < SEC ? left : SEC);
	}
	return 0;
}

int ks_vm_stop(struct ks_vm *vm, int64_t timeout_ns, struct ks_error *err)
{
	json_t *reply = NULL;

	if (vm->state == KS_VM_ENDED)
		return 0;
	/* The reply may not come: QEMU can close the socket as it quits. */
	ks_qmp_call(vm->qmp, "quit", NULL, &reply, timeout_ns, NULL);
	json_decref(reply);
	if (ks_vm_wait(vm, timeout_ns) == 0)
		return 0;
	ks_vm_destroy(vm);
	return ks_error_set(err, -ETIMEDOUT, "stop: QEMU did not quit in time and was killed");
}

void ks_vm_destroy(struct ks_vm *vm)
{
	int status;

	if (vm)
		vm_start_cancel(vm);
	if (!vm || vm->state == KS_VM_ENDED || vm->pid <= 0)
		return;
	vm->destroying = true;
	kill(vm->pid, SIGKILL);
	if (ks_wait_pid(vm->pid, 10 * SEC, &status) == 0)
		vm_ended(vm, status);
}

static void free_strv(char **v, unsigned n, bool unlink_them)
{
	for (unsigned i = 0; v && i < n; i++) {
		if (v[i] && unlink_them) {
			unlink(v[i]);
			ks_cleanup_del_path(v[i]);
		}
		free(v[i]);
	}
	free(v);
}

static void remove_file(char *path)
{
	if (!path)
		return;
	unlink(path);
	ks_cleanup_del_path(path);
	free(path);
}

void ks_vm_free(struct ks_vm *vm)
{
	if (!vm)
		return;
	ks_vm_destroy(vm);
	/* The start's last steps are below on the stack, on this VM: they free it. */
	if (vm->connecting) {
		vm->free_later = true;
		return;
	}
	for (unsigned i = 0; vm->chans && i < vm->nserial; i++)
		ks_chan_free(vm->chans[i]);
	free(vm->chans);
	ks_qmp_free(vm->qmp);
	vm_ramcopy_drop(vm, NULL);
	free(vm->rom_spans);
	for (size_t i = 0; vm->ram && vm->ram_fds && i < vm->ram->nfiles; i++)
		if (vm->ram_fds[i] >= 0)
			close(vm->ram_fds[i]);
	free(vm->ram_fds);
	free_strv(vm->ram_open, vm->ram ? (unsigned)vm->ram->nfiles : 0, false);
	ks_ram_layout_free(vm->ram);
	for (unsigned i = 0; vm->fifo_fds && i < 2 * vm->nserial; i++)
		if (vm->fifo_fds[i] >= 0)
			close(vm->fifo_fds[i]);
	free(vm->fifo_fds);
	free_strv(vm->fifo_paths, 2 * vm->nserial, true);
	free_strv(vm->serial_paths, vm->nserial, true);
	free_strv(vm->chan_logs, vm->nserial, true);
	remove_file(vm->qmp_path);
	remove_file(vm->gdb_path);
	remove_file(vm->pid_path);
	remove_file(vm->out_path);
	remove_file(vm->dlog_path);
	remove_file(vm->vmstate_path);
	if (vm->rundir[0]) {
		rmdir(vm->rundir);
		ks_cleanup_del_path(vm->rundir);
	}
	ks_vmspec_free(vm->spec);
	free((char *)vm->opts.log_items);
	free((char *)vm->opts.rundir_base);
	free(vm);
}

void ks_vm_on_event(struct ks_vm *vm, ks_vm_event_cb cb, void *data)
{
	vm->cb = cb;
	vm->cb_data = data;
}

enum ks_vm_state ks_vm_state(const struct ks_vm *vm) { return vm->state; }
bool ks_vm_starting(const struct ks_vm *vm) { return vm->starting; }
const struct ks_vm_outcome *ks_vm_outcome(const struct ks_vm *vm) { return &vm->outcome; }
const char *ks_vm_name(const struct ks_vm *vm) { return vm->name; }
const char *ks_vm_rundir(const struct ks_vm *vm) { return vm->rundir; }
pid_t ks_vm_pid(const struct ks_vm *vm) { return vm->pid; }
enum ks_accel ks_vm_accel(const struct ks_vm *vm) { return vm->accel; }
const char *ks_vm_accel_reason(const struct ks_vm *vm) { return vm->accel_why; }
uint64_t ks_vm_started_ns(const struct ks_vm *vm) { return vm->started_ns; }
const struct ks_vmspec *ks_vm_spec(const struct ks_vm *vm) { return vm->spec; }
const char *ks_vm_gdb_socket(const struct ks_vm *vm) { return vm->gdb_path; }
const char *ks_vm_shutdown_reason(const struct ks_vm *vm)
{
	return vm->shutdown_seen ? vm->shutdown_reason : NULL;
}
const struct ks_ram_layout *ks_vm_ram(const struct ks_vm *vm) { return vm->ram; }

struct ks_qmp *ks_vm_qmp(struct ks_vm *vm)
{
	return vm->state == KS_VM_ENDED ? NULL : vm->qmp;
}

struct ks_chan *ks_vm_chan(struct ks_vm *vm, unsigned port)
{
	return port < vm->nserial ? vm->chans[port] : NULL;
}

int ks_vm_ram_fd(const struct ks_vm *vm, size_t file)
{
	return vm->ram && file < vm->ram->nfiles ? vm->ram_fds[file] : -1;
}
