/* vm_private.h: the ks_vm structure, shared by the vm module's files. */
#ifndef KSCOPE_VM_PRIVATE_H
#define KSCOPE_VM_PRIVATE_H

#include <limits.h>

#include <kscope/vm.h>

#define VM_NAME_MAX 32

struct vm_start;

/* One snapshot's guest RAM, kept by kscope rather than in the qcow2 (vm_snapram.c). */
struct vm_ramcopy {
	struct vm_ramcopy *next;
	char tag[64];
	int *fds;                   /* a memfd per RAM file, with that file's data at its offsets */
	uint64_t bytes;             /* of data in them */
};

/* A range of a RAM file that QEMU writes again at every machine reset (a ROM blob). */
struct vm_span {
	size_t file;
	uint64_t offset, size;
};

struct ks_vm {
	struct ks_loop *loop;
	struct ks_vmspec *spec;
	struct ks_vm_opts opts;
	char name[VM_NAME_MAX + 1];
	char rundir[PATH_MAX];
	char shm[PATH_MAX];         /* base name of the guest RAM files (unlinked at once) */
	/* Files in rundir; NULL when not used. */
	char *qmp_path, *gdb_path, *pid_path, *out_path, *dlog_path, *vmstate_path;
	char **serial_paths;        /* each port's FIFO base path: QEMU opens <it>.in, .out */
	char **fifo_paths;          /* serial<N>.in, serial<N>.out for each port */
	int *fifo_fds;              /* per port: read end of .out, write end of .in; -1 once
				     * handed to the port's channel */
	char **chan_logs;
	unsigned nserial;
	struct ks_chan **chans;
	struct ks_ram_layout *ram;
	int *ram_fds;
	char **ram_open;
	pid_t pid;
	int pidfd;
	struct ks_qmp *qmp;
	enum ks_accel accel;
	const char *accel_why;
	enum ks_vm_state state;
	struct ks_vm_outcome outcome;
	bool destroying;
	bool shutdown_seen;
	char shutdown_reason[64];
	uint64_t started_ns;
	ks_vm_event_cb cb;
	void *cb_data;
	struct vm_start *start;     /* the start under way (ks_vm_launch()), or NULL */
	bool starting;              /* launched, its callback not called yet */
	bool connecting;            /* in the start's last, blocking steps (vm.c) */
	bool free_later;            /* ks_vm_free() came during them: they free it */
	bool ignore_shared;         /* x-ignore-shared is on: savevm leaves the RAM files out */
	struct vm_ramcopy *ramcopies; /* the RAM of each snapshot, by tag */
	struct vm_span *rom_spans;  /* where QEMU's reset rewrites RAM (HMP info roms) */
	size_t nrom_spans;
};

/* Records that QEMU exited with wait status `status` (already reaped) and why. */
void vm_ended(struct ks_vm *vm, int status);

/* Ends a start under way without its callback (the VM is being destroyed); no-op without. */
void vm_start_cancel(struct ks_vm *vm);

/* Fails with -ENOTCONN and a message when the VM has ended (no QMP any more). */
int vm_need_qmp(struct ks_vm *vm, const char *what, struct ks_error *err);

/* Whether snapshots keep the RAM themselves: the VM's RAM is in shared files. */
bool vm_ramcopy_possible(const struct ks_vm *vm);

/*
 * Learns the ranges of the RAM files that QEMU's machine reset writes again (HMP info roms:
 * the ROM blobs it loaded into RAM, such as the -kernel ELF's segments). 0 or -errno.
 */
int vm_rom_spans_learn(struct ks_vm *vm, struct ks_error *err);

/* Copies every RAM file into new memfds held as tag's copy (replacing an older one). */
int vm_ramcopy_take(struct ks_vm *vm, const char *tag, struct ks_error *err);

/* tag's copy, or NULL. */
const struct vm_ramcopy *vm_ramcopy_find(const struct ks_vm *vm, const char *tag);

/*
 * Writes tag's copy back into the RAM files: all of them, or with roms_only the spans from
 * vm_rom_spans_learn() alone. 0 or -errno with err filled (-ENOENT: no copy of tag).
 */
int vm_ramcopy_put_back(struct ks_vm *vm, const char *tag, bool roms_only,
			struct ks_error *err);

/* Frees tag's copy (no-op without one), or with tag NULL every copy. */
void vm_ramcopy_drop(struct ks_vm *vm, const char *tag);

#endif
