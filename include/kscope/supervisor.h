/* supervisor.h: the one owner of a VM: its loop, QMP, serial ports and control socket. */
#ifndef KSCOPE_SUPERVISOR_H
#define KSCOPE_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <kscope/error.h>
#include <kscope/loop.h>
#include <kscope/vm.h>
#include <kscope/vmspec.h>

/*
 * QEMU's gdbstub takes one client, so each VM has one owner: a supervisor that starts it,
 * holds its connections and serves every other kscope command over the control protocol
 * (ctl.h) on KS_CTL_SOCKET in the VM's runtime directory. `kscope vm start` runs it in a
 * daemon; `kscope vm run` in-process. It writes KS_SUPERVISOR_PIDFILE there and holds a lock
 * on it for as long as it lives, so that others can tell a live VM from a dead one
 * (ks_supervisor_probe()). When the VM ends, however it ends, the supervisor removes the
 * runtime directory, then closes its clients.
 *
 * Control commands: status, pause, resume, reset, stop, destroy, snapshot
 * {"action": save|load|list|delete, "tag"}, console {"tail": N, "follow": bool} (streams
 * {"id","line","ts","lineno"} and, when the VM ends, {"id","end": detail}), and qmp
 * {"command": {"execute", "arguments"}} (returns QEMU's reply as "reply").
 *
 * Introspection commands (docs/inspect.md): regs, read, write, vtop, pagemap, dump, symbol
 * and ktstate. The supervisor maps the guest's RAM, loads the symbols once at start (from
 * opts.symbols, else from the kernel) and connects to the gdbstub when registers are first
 * asked for; it only talks gdb while the VM is paused, pausing it briefly if need be.
 *
 * Events (docs/events.md): events {"trace", "pause_on", "on", "resume", "syscall_entry"}
 * attaches the event monitor for one client at a time and streams what it sees until the
 * client leaves or the VM ends; meanwhile pause, resume and every pause for a command go
 * through the monitor, and pause_on_shutdown is on (a triple fault pauses the VM for a
 * dump). step {"cpu"} single-steps a vCPU of the paused VM.
 */

#define KS_SUPERVISOR_PIDFILE "supervisor.pid"
#define KS_SUPERVISOR_LOG "supervisor.log"

struct ks_supervisor;

struct ks_supervisor_opts {
	struct ks_vm_opts vm;   /* how to start the VM; vm.paused leaves it paused */
	FILE *console;          /* NULL, or a stream every COM1 line is copied to */
	int64_t timeout_ns;     /* < 0 (default): none; else the VM is destroyed this long
				 * after it started */
	FILE *log;              /* NULL, or where the supervisor notes what it does */
	const char *symbols;    /* NULL: the kernel's own symbol table; else an ELF file or a
				 * System.map to take the symbols from */
};

/* Fills o with the defaults: ks_vm_opts_init(), no console copy, no timeout, no log. */
void ks_supervisor_opts_init(struct ks_supervisor_opts *o);

/*
 * Starts the VM for spec on loop (not owned; it must outlive the supervisor), takes the
 * runtime directory's pid file and listens on its control socket. Returns the supervisor
 * (free with ks_supervisor_free()) or NULL with err filled (the spec's one line, QEMU's
 * failure, a name in use, ...) and nothing left behind.
 */
struct ks_supervisor *ks_supervisor_new(struct ks_loop *loop, const struct ks_vmspec *spec,
					const struct ks_supervisor_opts *o, struct ks_error *err);

/*
 * Serves the VM until it ends (guest exit, stop, destroy, timeout, QEMU dying, or
 * ks_supervisor_shutdown()), then removes the runtime directory and closes the control
 * clients. Returns 0, or the -errno of a failing loop (the VM is destroyed then too).
 */
int ks_supervisor_run(struct ks_supervisor *s);

/*
 * Destroys the VM, e.g. from a signal handler's loop callback; ks_supervisor_run() then
 * returns. why is logged. Not from a control handler.
 */
void ks_supervisor_shutdown(struct ks_supervisor *s, const char *why);

/* The VM while it is served (NULL once ks_supervisor_run() returned). */
struct ks_vm *ks_supervisor_vm(struct ks_supervisor *s);

/* How the VM ended (end KS_VM_END_NONE while it runs). Borrowed from s. */
const struct ks_vm_outcome *ks_supervisor_outcome(const struct ks_supervisor *s);

/* True if the VM was destroyed because opts.timeout_ns passed. */
bool ks_supervisor_timed_out(const struct ks_supervisor *s);

/* Destroys the VM if it still runs, cleans up as ks_supervisor_run() does, frees s. NULL ok. */
void ks_supervisor_free(struct ks_supervisor *s);

/* What ks_supervisor_probe() found in a runtime directory. */
enum ks_supervisor_liveness {
	KS_SUPERVISOR_ALIVE,    /* a supervisor holds the pid file's lock */
	KS_SUPERVISOR_STARTING, /* no pid file yet, but the directory is young or QEMU runs */
	KS_SUPERVISOR_DEAD,     /* its supervisor is gone: the directory is left over */
};

/*
 * Tells whether the VM in runtime directory rundir still has its supervisor, and its pid
 * in *pid (may be NULL; -1 when unknown). Does not change anything.
 */
enum ks_supervisor_liveness ks_supervisor_probe(const char *rundir, pid_t *pid);

/*
 * Cleans up after a VM whose supervisor died: kills its QEMU if that still runs (checked
 * against the runtime directory in its command line, so a reused pid is left alone; the
 * pid goes to *qemu_killed, or -1) and removes rundir with everything in it. Returns 0, or
 * -EBUSY if a supervisor is alive after all, or another -errno with err filled.
 */
int ks_supervisor_cleanup_dead(const char *rundir, pid_t *qemu_killed, struct ks_error *err);

/* "running", "paused" or "ended", as the control protocol spells them. Static string. */
const char *ks_supervisor_state_name(enum ks_vm_state s);

/* "exit-code", "poweroff", "triple-fault", ... or "none", as the protocol spells them. */
const char *ks_supervisor_end_name(enum ks_vm_end e);

#endif
