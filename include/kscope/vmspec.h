/* vmspec.h: what a VM is made of (machine, CPUs, NUMA, memory, kernel, devices), set by key. */
#ifndef KSCOPE_VMSPEC_H
#define KSCOPE_VMSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>

/* Limits every spec is checked against (some machines have lower ones; see validate). */
#define KS_VMSPEC_MAX_CPUS 288
#define KS_VMSPEC_MAX_CPUS_PC 255
#define KS_VMSPEC_MAX_TCG_APIC_ID 254
#define KS_VMSPEC_MIN_MEMORY_MIB 16ull
#define KS_VMSPEC_MAX_MEMORY_MIB (1024ull * 1024)     /* 1 TiB, microvm */
#define KS_VMSPEC_MAX_MEMORY_MIB_PC (960ull * 1024)   /* 960 GiB, pc and q35 */
#define KS_VMSPEC_MAX_SERIAL 4
#define KS_VMSPEC_MAX_NUMA 32
#define KS_VMSPEC_DEFAULT_MEMORY_MIB 128ull
#define KS_VMSPEC_CPU_WORDS ((KS_VMSPEC_MAX_CPUS + 63) / 64)

enum ks_arch { KS_ARCH_X86_64 };
enum ks_machine { KS_MACHINE_MICROVM, KS_MACHINE_PC, KS_MACHINE_Q35 };
enum ks_accel { KS_ACCEL_AUTO, KS_ACCEL_KVM, KS_ACCEL_TCG };
enum ks_net { KS_NET_NONE, KS_NET_USER };

/* One NUMA node: its memory (0 for a memory-less node) and the CPUs it holds. */
struct ks_vmspec_numa {
	uint64_t memory_mib;
	uint64_t cpus[KS_VMSPEC_CPU_WORDS]; /* bit i set: CPU i is in this node */
};

/*
 * A VM specification: a plain record. Read its fields directly; change them through
 * ks_vmspec_set() (or ks_vmspec_load_file()), which keeps every string owned by the spec.
 * A numeric field of 0 means "not given": cpus and the topology are then derived
 * (ks_vmspec_topology()), memory defaults (ks_vmspec_memory_mib()).
 */
struct ks_vmspec {
	enum ks_arch arch;          /* x86_64 */
	enum ks_machine machine;    /* microvm */
	enum ks_accel accel;        /* auto: the caller probes and picks kvm or tcg */
	unsigned cpus, sockets, cores, threads;
	uint64_t memory_mib;
	char *kernel;               /* required */
	char *append;               /* kernel command line, or NULL */
	char *initrd;               /* or NULL */
	unsigned serial;            /* number of serial ports, 1 by default */
	enum ks_net net;            /* none by default */
	char **disks;
	size_t ndisks;
	struct ks_vmspec_numa *numa;
	size_t nnuma;
	char *qemu;                 /* QEMU binary; NULL: qemu-system-<arch> from PATH */
	char **qemu_args;           /* raw arguments passed last */
	size_t nqemu_args;
};

/* CPU topology with every value resolved. */
struct ks_vmspec_topology {
	unsigned cpus, sockets, cores, threads;
};

/* Describes one key: `--NAME VALUE` on the command line, `NAME = VALUE` in a file. */
struct ks_vmspec_key {
	const char *name;      /* "kernel", "qemu-arg", ... */
	const char *metavar;   /* "FILE", "N", ... for usage lines */
	const char *help;      /* one line */
	bool repeatable;       /* each use appends; an empty value clears the list */
};

/*
 * Returns a new spec with the defaults (x86_64, microvm, accel auto, 1 serial port, no
 * network, everything else unset), or NULL with err filled (-ENOMEM). Free with
 * ks_vmspec_free().
 */
struct ks_vmspec *ks_vmspec_new(struct ks_error *err);

/* Returns a deep copy of s, or NULL with err filled (-ENOMEM). Free with ks_vmspec_free(). */
struct ks_vmspec *ks_vmspec_dup(const struct ks_vmspec *s, struct ks_error *err);

/* Frees a spec and everything it owns; NULL is fine. */
void ks_vmspec_free(struct ks_vmspec *s);

/*
 * Sets key (a name from ks_vmspec_keys(), without dashes) to value, checking its syntax and
 * its own range: a repeatable key appends, others replace. Returns 0, or -EINVAL with err
 * holding one line "KEY: reason" (unknown key, bad number, out of range, ...), or -ENOMEM.
 * On failure s is unchanged. Checks that involve other keys or files wait for
 * ks_vmspec_validate().
 */
int ks_vmspec_set(struct ks_vmspec *s, const char *key, const char *value,
		  struct ks_error *err);

/* The key names, in the documented order, NULL-terminated. Static storage. */
const char *const *ks_vmspec_keys(void);

/* The description of key, or NULL if there is no such key. Static storage. */
const struct ks_vmspec_key *ks_vmspec_key_info(const char *key);

/* True if key exists and takes a value (as every current key does), for getopt_long. */
bool ks_vmspec_key_takes_value(const char *key);

/*
 * Checks s as a whole, before QEMU is started: ranges, the topology against cpus, NUMA
 * nodes against memory and cpus, the kernel (an x86 ELF file or a Linux bzImage), initrd
 * and disk files, the QEMU binary, /dev/kvm for accel kvm. Returns 0, or a negative errno
 * (-EINVAL, -ENOENT, -EACCES, ...) with err holding one line "FIELD: reason" for the first
 * problem found.
 */
int ks_vmspec_validate(const struct ks_vmspec *s, struct ks_error *err);

/*
 * Resolves the CPU topology the way QEMU 7.2 does: with cpus given, a missing cores is
 * cpus / (sockets x threads) (missing sockets and threads count as 1), else a missing
 * sockets is cpus / (cores x threads), else a missing threads is cpus / (sockets x cores);
 * with cpus missing, cpus is the product (missing values count as 1). Returns 0 and fills
 * *t, or -EINVAL with err naming the mismatch.
 */
int ks_vmspec_topology(const struct ks_vmspec *s, struct ks_vmspec_topology *t,
		       struct ks_error *err);

/* The memory size to use: memory_mib if given, else the sum of the NUMA nodes if any,
 * else KS_VMSPEC_DEFAULT_MEMORY_MIB. */
uint64_t ks_vmspec_memory_mib(const struct ks_vmspec *s);

/* The QEMU binary to run: s->qemu, or "qemu-system-x86_64" for x86_64. Borrowed. */
const char *ks_vmspec_qemu_binary(const struct ks_vmspec *s);

/*
 * Reads a config file of `key = value` lines into s (see docs/vm-config.md): `#` starts a
 * comment line, blank lines are skipped, relative paths are taken from the file's
 * directory. Returns 0, or a negative errno with err holding "PATH:LINE: KEY: reason" (or
 * "PATH: reason" when the file cannot be read). On failure s holds the lines before the
 * bad one: discard it.
 */
int ks_vmspec_load_file(struct ks_vmspec *s, const char *path, struct ks_error *err);

/*
 * Like ks_vmspec_load_file() on text in memory; name labels error messages and relative
 * paths are kept as they are.
 */
int ks_vmspec_load_string(struct ks_vmspec *s, const char *text, const char *name,
			  struct ks_error *err);

/*
 * Writes s in the config format, one key per line, so that loading the text gives an equal
 * spec. Returns a string the caller frees, or NULL with err filled (-ENOMEM).
 */
char *ks_vmspec_to_config(const struct ks_vmspec *s, struct ks_error *err);

/* "x86_64", or "invalid" for a value out of range. Static string. */
const char *ks_arch_name(enum ks_arch a);

/* "microvm", "pc" or "q35", or "invalid" for a value out of range. Static string. */
const char *ks_machine_name(enum ks_machine m);

/* "auto", "kvm" or "tcg", or "invalid" for a value out of range. Static string. */
const char *ks_accel_name(enum ks_accel a);

/* "none" or "user", or "invalid" for a value out of range. Static string. */
const char *ks_net_name(enum ks_net n);

#endif
