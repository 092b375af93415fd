/* vm.h: one QEMU virtual machine: start, pause, resume, reset, stop, destroy, snapshots, outcome. */
#ifndef KSCOPE_VM_H
#define KSCOPE_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kscope/error.h>
#include <kscope/loop.h>
#include <kscope/qemu_argv.h>
#include <kscope/vmspec.h>

struct ks_vm;
struct ks_qmp;
struct ks_chan;

/* Where the VM is in its life. */
enum ks_vm_state {
	KS_VM_RUNNING,  /* vCPUs run */
	KS_VM_PAUSED,   /* vCPUs stopped (by the host, a breakpoint, or a guest panic) */
	KS_VM_ENDED,    /* QEMU is gone: see ks_vm_outcome() */
};

/* How a VM ended. */
enum ks_vm_end {
	KS_VM_END_NONE,         /* has not ended */
	KS_VM_END_EXIT_CODE,    /* the guest wrote exit_code to isa-debug-exit */
	KS_VM_END_POWEROFF,     /* the guest powered off, or the host stopped it (stop) */
	KS_VM_END_TRIPLE_FAULT, /* a guest reset with no_reboot that QEMU's log calls a triple fault */
	KS_VM_END_GUEST_RESET,  /* a guest reset with no_reboot, cause unknown (no log under KVM) */
	KS_VM_END_PANIC,        /* the guest signalled a panic (pvpanic) and QEMU then ended */
	KS_VM_END_KILLED,       /* QEMU died of a signal the host did not send */
	KS_VM_END_QEMU_ERROR,   /* QEMU failed to start or exited with an error of its own */
	KS_VM_END_DESTROYED,    /* the host destroyed it */
};

/* The outcome record (borrowed from the VM, valid until ks_vm_free()). */
struct ks_vm_outcome {
	enum ks_vm_end end;
	int exit_code;      /* KS_VM_END_EXIT_CODE: the value the guest wrote */
	int qemu_status;    /* QEMU's exit status, or -1 */
	int signal;         /* KS_VM_END_KILLED: the signal */
	bool panicked;      /* a GUEST_PANICKED event came (the VM may still be up, paused) */
	char detail[512];   /* one readable line: reason, QEMU's stderr for errors */
};

/* Options of one start; ks_vm_opts_init() sets the defaults noted here. */
struct ks_vm_opts {
	const char *name;         /* NULL: "vm-<pid>-<n>"; [A-Za-z0-9_.-], at most 32 chars */
	const char *rundir_base;  /* NULL: ks_vm_rundir_base() */
	bool paused;              /* false: true leaves the vCPUs before their first instruction */
	bool no_reboot;           /* false: true makes a guest reset end the VM (reset then
				   * cannot work) */
	bool pause_on_shutdown;   /* false: true makes a guest reset (a triple fault too) or
				   * power-off pause the VM with its CPU state intact, for a
				   * look inside; the outcome still follows the SHUTDOWN
				   * reason when the host then destroys it (reset cannot
				   * work either) */
	bool pvpanic;             /* true: pvpanic device; a guest panic pauses the VM */
	bool debug_exit;          /* true: isa-debug-exit at port 0xf4 */
	bool gdb;                 /* true: a gdbstub socket in the runtime directory */
	bool snapshots;           /* true: a qcow2 drive for the VM state, so savevm works */
	const char *log_items;    /* NULL: extra QEMU -d items (cpu_reset is added under TCG) */
	int64_t start_timeout_ns; /* 10 s: QEMU up, QMP and serial ports connected */
};

/* Fills o with the defaults above. */
void ks_vm_opts_init(struct ks_vm_opts *o);

/*
 * The directory that holds one runtime directory per VM: $KSCOPE_RUNDIR if set, else
 * /run/kscope for root, else $XDG_RUNTIME_DIR/kscope, else /tmp/kscope-<uid>. Static string.
 */
const char *ks_vm_rundir_base(void);

/*
 * Decides the accelerator for spec->accel: kvm and tcg are taken as they are; auto uses KVM
 * only when a probe guest really runs under it (cached for the process). Returns the choice
 * and, in *why (may be NULL), one line that says why and what it changes. Never fails.
 */
enum ks_accel ks_vm_pick_accel(const struct ks_vmspec *spec, const char **why);

/*
 * Validates spec, creates the runtime directory, guest RAM (a /dev/shm file unlinked at
 * once, so no path out can leave it behind: QEMU opens it through /proc/self/fd), starts
 * QEMU from an argv array with -S, connects QMP and every serial port (ks_vm_chan()), then
 * resumes the vCPUs unless o->paused. QEMU gets a parent-death signal and is registered for
 * cleanup at exit and on fatal signals. Runs on loop (not owned) until QEMU is up: this is
 * ks_vm_launch() waited for. Returns the VM, or NULL with err filled: the spec's one-line
 * error, or "QEMU failed to start: <its stderr>", or a timeout, with nothing left behind.
 */
struct ks_vm *ks_vm_start(struct ks_loop *loop, const struct ks_vmspec *spec,
			  const struct ks_vm_opts *o, struct ks_error *err);

/*
 * How a start from ks_vm_launch() ended, called once from loop: rc 0 when QMP and every
 * serial port are connected (and the vCPUs resumed unless o->paused), as ks_vm_start()
 * returns them; else -errno and err (valid for the call only) says why, as ks_vm_start()
 * would ("QEMU failed to start: <its stderr>", a timeout), and QEMU is gone already. The VM
 * still belongs to the caller either way: the callback may free it.
 */
typedef void (*ks_vm_started_cb)(struct ks_vm *vm, int rc, const struct ks_error *err,
				 void *data);

/*
 * Starts a VM as ks_vm_start() does, but returns as soon as QEMU is spawned: connecting QMP
 * and the serial ports, then resuming the vCPUs, happen on loop as QEMU comes up, without
 * polling, so that many VMs start at once. cb(vm, rc, err, data) says when that is done;
 * until then ks_vm_state() is KS_VM_PAUSED and ks_vm_qmp() and ks_vm_chan() are NULL.
 * Returns the VM (free with ks_vm_free(); freeing or destroying it before cb cancels the
 * start, kills QEMU, and cb is not called), or NULL with err filled when the spec, the
 * runtime directory, guest RAM or spawning QEMU fails (cb is not called then).
 */
struct ks_vm *ks_vm_launch(struct ks_loop *loop, const struct ks_vmspec *spec,
			   const struct ks_vm_opts *o, ks_vm_started_cb cb, void *data,
			   struct ks_error *err);

/* Whether a VM from ks_vm_launch() is still starting (its callback has not come yet). */
bool ks_vm_starting(const struct ks_vm *vm);

/* Destroys the VM if still up, removes its runtime directory and frees it; NULL is fine. */
void ks_vm_free(struct ks_vm *vm);

/* Pauses or resumes every vCPU (QMP stop / cont); 0 or -errno with err filled. */
int ks_vm_pause(struct ks_vm *vm, struct ks_error *err);
int ks_vm_resume(struct ks_vm *vm, struct ks_error *err);

/* Resets the machine (QMP system_reset). -EOPNOTSUPP when started with no_reboot, or while
 * pause_on_shutdown is on. */
int ks_vm_reset(struct ks_vm *vm, struct ks_error *err);

/*
 * Turns pause_on_shutdown (see struct ks_vm_opts) on or off while the VM is up (QMP
 * set-action; no_reboot is kept: with it off again, a guest reset ends the VM). Turning it
 * off does not end a VM already paused at its shutdown: destroy that one first, so that its
 * outcome still names what stopped it. Returns 0 (also when nothing changes) or -errno with
 * err filled.
 */
int ks_vm_set_pause_on_shutdown(struct ks_vm *vm, bool on, struct ks_error *err);

/* Asks QEMU to quit and waits for it (at most timeout_ns, then kills it). */
int ks_vm_stop(struct ks_vm *vm, int64_t timeout_ns, struct ks_error *err);

/* Kills QEMU now and waits for it. The runtime directory stays until ks_vm_free(). */
void ks_vm_destroy(struct ks_vm *vm);

/*
 * Internal snapshots, by tag (1 to 63 letters, digits, '_', '.' and '-'). The device state
 * goes into the VM's qcow2 drive (HMP savevm/loadvm/delvm, errors in their text detected);
 * the guest RAM, which is in shared files, is copied into memfds of this process, sparse
 * (the pages in use only), and kept until the tag is saved again or deleted, or the VM ends
 * or is freed. Both parts are taken and put back with the vCPUs stopped: a running VM is
 * paused for the time and resumed after; a VM already stopped (paused, by a gdb client, at
 * a panic) stays as it is. Each returns 0 or -errno with err filled. A load of a tag never
 * saved (so without a RAM copy) fails with -ENOENT before it changes anything ("snapshot
 * load: no snapshot 'TAG'"); a load that fails later leaves the VM paused, as loadvm does.
 */
int ks_vm_snapshot_save(struct ks_vm *vm, const char *tag, struct ks_error *err);
int ks_vm_snapshot_load(struct ks_vm *vm, const char *tag, struct ks_error *err);
int ks_vm_snapshot_delete(struct ks_vm *vm, const char *tag, struct ks_error *err);

/* One internal snapshot. */
struct ks_vm_snapshot {
	char tag[64];
	uint64_t vm_state_size; /* bytes of the qcow2's VM state: the devices' (not the RAM) */
	uint64_t ram_size;      /* bytes of guest RAM kscope keeps for it (0: none, or in the
				 * qcow2 for a VM without shared RAM files) */
	char date[32];          /* as QEMU prints it */
};

/* Lists snapshots into *list (caller frees with free()), *n entries. 0 or -errno. */
int ks_vm_snapshot_list(struct ks_vm *vm, struct ks_vm_snapshot **list, size_t *n,
			struct ks_error *err);

/*
 * Runs the loop until the VM ends or timeout_ns passes (negative: no limit). Returns 0 when
 * it ended, -ETIMEDOUT otherwise.
 */
int ks_vm_wait(struct ks_vm *vm, int64_t timeout_ns);

/* Called on every QMP event and when the VM ends (event NULL then). */
typedef void (*ks_vm_event_cb)(struct ks_vm *vm, const char *event, void *data);
void ks_vm_on_event(struct ks_vm *vm, ks_vm_event_cb cb, void *data);

enum ks_vm_state ks_vm_state(const struct ks_vm *vm);
const struct ks_vm_outcome *ks_vm_outcome(const struct ks_vm *vm);
const char *ks_vm_name(const struct ks_vm *vm);
const char *ks_vm_rundir(const struct ks_vm *vm);
pid_t ks_vm_pid(const struct ks_vm *vm);             /* QEMU's pid, -1 after it ended */
enum ks_accel ks_vm_accel(const struct ks_vm *vm);   /* kvm or tcg, never auto */
const char *ks_vm_accel_reason(const struct ks_vm *vm);
uint64_t ks_vm_started_ns(const struct ks_vm *vm);   /* ks_loop_now_ns() at start */
const struct ks_vmspec *ks_vm_spec(const struct ks_vm *vm);
struct ks_qmp *ks_vm_qmp(struct ks_vm *vm);          /* NULL after the VM ended */
struct ks_chan *ks_vm_chan(struct ks_vm *vm, unsigned port); /* serial port, 0 = COM1 */
const char *ks_vm_gdb_socket(const struct ks_vm *vm);  /* NULL without gdb */
const char *ks_vm_shutdown_reason(const struct ks_vm *vm); /* the last SHUTDOWN event's
							   * reason ("guest-reset"), or NULL */
const struct ks_ram_layout *ks_vm_ram(const struct ks_vm *vm);
int ks_vm_ram_fd(const struct ks_vm *vm, size_t file); /* fd of RAM file `file`, -1 if none */

#endif
