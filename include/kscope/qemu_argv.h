/* qemu_argv.h: QEMU's command line for a validated vmspec, and where its guest RAM lives. */
#ifndef KSCOPE_QEMU_ARGV_H
#define KSCOPE_QEMU_ARGV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/types.h>
#include <kscope/vmspec.h>

/*
 * What the caller chose for one run: the runtime paths and the optional devices. Paths
 * may hold any characters (commas are escaped for QEMU); Unix socket paths must be shorter
 * than 108 bytes.
 */
struct ks_qemu_paths {
	enum ks_accel accel;       /* kvm or tcg; auto takes the spec's, which must not be auto */
	const char *ram;           /* guest RAM file, in /dev/shm (required); with NUMA nodes,
				    * node N's file is "<ram>.node<N>" (ks_qemu_ram_layout()) */
	const char *const *ram_open; /* NULL, or for each RAM file (ks_qemu_ram_layout() order)
				    * the path QEMU opens instead, e.g. "/proc/self/fd/N" for a
				    * file the caller created, unlinked and passes as fd N */
	const char *qmp;           /* QMP Unix socket (QEMU listens), or NULL for none */
	const char *gdb;           /* gdbstub Unix socket (QEMU listens), or NULL for none */
	const char *const *serial; /* one Unix socket per serial port (spec->serial of them),
				    * COM1 first; QEMU listens, output before a client connects
				    * is dropped, so start paused and connect first */
	bool serial_pipes;         /* serial[] are FIFO base paths instead: QEMU opens
				    * <path>.in and <path>.out, which must exist (chardev pipe) */
	const char *vmstate;       /* qcow2 image that savevm/loadvm use, or NULL */
	const char *pidfile;       /* or NULL */
	const char *log;           /* file for QEMU's -d output (-D), or NULL */
	const char *log_items;     /* -d items, e.g. "int,cpu_reset", or NULL */
	bool paused;               /* -S: vCPUs wait for QMP "cont" */
	bool no_reboot;            /* -no-reboot: a guest reset makes QEMU exit */
	bool shutdown_pause;       /* -action reboot=shutdown,shutdown=pause: a guest reset (a
				    * triple fault too) or power-off pauses the VM, CPU state
				    * intact, instead of ending or resetting it */
	bool pvpanic;              /* pvpanic device (port 0x505), and a panic pauses the VM */
	bool debug_exit;           /* isa-debug-exit at port 0xf4: QEMU exits with (v << 1) | 1 */
};

/* I/O port and IRQ of serial port i (0 to 3): COM1 0x3f8/4, COM2 0x2f8/3, COM3 0x3e8/4,
 * COM4 0x2e8/3. Returns 0, or -EINVAL for i out of range. */
int ks_qemu_serial_port(unsigned i, uint16_t *iobase, unsigned *irq);

/*
 * Builds QEMU's argv for s (which must have passed ks_vmspec_validate()) and the caller's
 * choices p. On success *argv_out is a NULL-terminated array the caller frees with
 * ks_qemu_argv_free(), argv[0] the QEMU binary, for execvp(). Returns 0, or -EINVAL with err
 * naming the field (accel left auto, a missing path, a socket path too long, a topology tcg
 * cannot run), or -ENOMEM, or the error of reading a disk image's header.
 */
int ks_qemu_argv_build(const struct ks_vmspec *s, const struct ks_qemu_paths *p,
		       char ***argv_out, struct ks_error *err);

/* Frees an argv from ks_qemu_argv_build(); NULL is fine. */
void ks_qemu_argv_free(char **argv);

/*
 * Returns argv as one line a shell would split back into the same words (for logs and
 * dry runs), to be freed by the caller, or NULL when out of memory.
 */
char *ks_qemu_argv_format(char *const *argv);

/* One file backing guest RAM: the whole RAM, or one NUMA node's memory. */
struct ks_ram_file {
	char *path;
	unsigned node;   /* NUMA node, 0 without NUMA */
	uint64_t size;   /* bytes */
};

/* A guest-physical range backed by a file range: gpa + i is at offset + i in the file. */
struct ks_ram_region {
	size_t file;     /* index into files */
	uint64_t offset;
	ks_gpa_t gpa;
	uint64_t size;
};

/*
 * Where guest RAM is. QEMU puts the nodes' memory one after another (node order), and maps
 * that RAM at guest-physical 0 up to the machine's low-memory limit, the rest from 4 GiB:
 * microvm keeps up to 3 GiB low; pc keeps all below 3.5 GiB, else 3 GiB; q35 all below
 * 2.75 GiB, else 2 GiB. (Low ranges also hold ROM and VGA windows at 0xa0000-0xfffff, so
 * the file there is not what the guest sees.)
 */
struct ks_ram_layout {
	struct ks_ram_file *files;
	size_t nfiles;
	struct ks_ram_region *regions; /* by ascending gpa */
	size_t nregions;
};

/*
 * Computes the RAM files and ranges ks_qemu_argv_build() uses for s and p->ram. Returns a
 * layout to free with ks_ram_layout_free(), or NULL with err filled (-EINVAL, -ENOMEM).
 * The owner removes the files after QEMU exits (QEMU leaves them).
 */
struct ks_ram_layout *ks_qemu_ram_layout(const struct ks_vmspec *s,
					 const struct ks_qemu_paths *p, struct ks_error *err);

/* Frees a layout; NULL is fine. */
void ks_ram_layout_free(struct ks_ram_layout *l);

/* The region that holds gpa, or NULL if no RAM is there. Borrowed from l. */
const struct ks_ram_region *ks_ram_layout_find(const struct ks_ram_layout *l, ks_gpa_t gpa);

#endif
