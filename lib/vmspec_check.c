/* vmspec_check.c: resolving and checking a whole VM specification before QEMU starts. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kscope/vmspec.h>

#include "vmspec_internal.h"

/* An x86 kernel is an ELF file for EM_386 or EM_X86_64, or a bzImage ("HdrS" at 0x202). */
#define EM_386_ 3
#define EM_X86_64_ 62
#define BZIMAGE_MAGIC_OFF 0x202

uint64_t ks_vmspec_memory_mib(const struct ks_vmspec *s)
{
	uint64_t sum = 0;

	if (s->memory_mib)
		return s->memory_mib;
	for (size_t i = 0; i < s->nnuma; i++)
		sum += s->numa[i].memory_mib;
	return s->nnuma ? sum : KS_VMSPEC_DEFAULT_MEMORY_MIB;
}

const char *ks_vmspec_qemu_binary(const struct ks_vmspec *s)
{
	return s->qemu ? s->qemu : "qemu-system-x86_64";
}

/* Derives *missing as cpus / (a x b); a and b name the known factors in the message. */
static int derive(unsigned cpus, const char *an, unsigned a, const char *bn, unsigned b,
		  unsigned *missing, struct ks_error *err)
{
	unsigned long long ab = (unsigned long long)a * b;

	if (cpus % ab)
		return ks_error_set(err, -EINVAL,
				    "topology: cpus %u is not divisible by %s %u x %s %u", cpus, an,
				    a, bn, b);
	*missing = (unsigned)(cpus / ab);
	return 0;
}

/* Values set past the setters can be anything: keep the arithmetic below in range. */
static int check_counts(const struct ks_vmspec *s, struct ks_error *err)
{
	const struct { const char *name; unsigned v; } counts[] = {
		{ "cpus", s->cpus }, { "sockets", s->sockets },
		{ "cores", s->cores }, { "threads", s->threads },
	};

	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		if (counts[i].v > KS_VMSPEC_MAX_CPUS)
			return ks_error_set(err, -EINVAL, "%s: at most %u (got %u)", counts[i].name,
					    KS_VMSPEC_MAX_CPUS, counts[i].v);
	return 0;
}

int ks_vmspec_topology(const struct ks_vmspec *s, struct ks_vmspec_topology *t,
		       struct ks_error *err)
{
	unsigned long long product;
	int rc = check_counts(s, err);

	if (rc < 0)
		return rc;
	*t = (struct ks_vmspec_topology){ s->cpus, s->sockets, s->cores, s->threads };
	if (!t->cpus) {
		t->sockets = t->sockets ? t->sockets : 1;
		t->cores = t->cores ? t->cores : 1;
		t->threads = t->threads ? t->threads : 1;
	} else if (!t->cores) {
		t->sockets = t->sockets ? t->sockets : 1;
		t->threads = t->threads ? t->threads : 1;
		rc = derive(t->cpus, "sockets", t->sockets, "threads", t->threads, &t->cores, err);
	} else if (!t->sockets) {
		t->threads = t->threads ? t->threads : 1;
		rc = derive(t->cpus, "cores", t->cores, "threads", t->threads, &t->sockets, err);
	} else if (!t->threads) {
		rc = derive(t->cpus, "sockets", t->sockets, "cores", t->cores, &t->threads, err);
	}
	if (rc < 0)
		return rc;
	product = (unsigned long long)t->sockets * t->cores * t->threads;
	if (!t->cpus && product > KS_VMSPEC_MAX_CPUS)
		return ks_error_set(err, -EINVAL, "topology: sockets %u x cores %u x threads %u = "
				    "%llu, but at most %u cpus are supported", t->sockets, t->cores,
				    t->threads, product, KS_VMSPEC_MAX_CPUS);
	if (!t->cpus)
		t->cpus = (unsigned)product;
	if (product != t->cpus)
		return ks_error_set(err, -EINVAL, "topology: sockets %u x cores %u x threads %u = "
				    "%llu, but cpus is %u", t->sockets, t->cores, t->threads,
				    product, t->cpus);
	return 0;
}

/* ---- validation ---- */

/* Enums and counts that only a direct write to the record can put out of range. */
static int check_values(const struct ks_vmspec *s, struct ks_error *err)
{
	if (!strcmp(ks_arch_name(s->arch), "invalid"))
		return ks_error_set(err, -EINVAL, "arch: invalid value %d", (int)s->arch);
	if (!strcmp(ks_machine_name(s->machine), "invalid"))
		return ks_error_set(err, -EINVAL, "machine: invalid value %d", (int)s->machine);
	if (!strcmp(ks_accel_name(s->accel), "invalid"))
		return ks_error_set(err, -EINVAL, "accel: invalid value %d", (int)s->accel);
	if (!strcmp(ks_net_name(s->net), "invalid"))
		return ks_error_set(err, -EINVAL, "net: invalid value %d", (int)s->net);
	if (s->serial > KS_VMSPEC_MAX_SERIAL)
		return ks_error_set(err, -EINVAL, "serial: at most %d ports (got %u)",
				    KS_VMSPEC_MAX_SERIAL, s->serial);
	return 0;
}

static unsigned id_bits(unsigned count)
{
	return count <= 1 ? 0 : 32 - (unsigned)__builtin_clz(count - 1);
}

/* The highest APIC id QEMU gives this topology: x86 packs thread, core and socket ids into
 * bit fields, each as wide as its count needs, so ids can exceed cpus - 1. */
static unsigned max_apic_id(const struct ks_vmspec_topology *t)
{
	unsigned tb = id_bits(t->threads), cb = id_bits(t->cores);

	return ((t->sockets - 1) << (cb + tb)) | ((t->cores - 1) << tb) | (t->threads - 1);
}

int ks_vmspec_check_cpus(const struct ks_vmspec *s, struct ks_error *err)
{
	struct ks_vmspec_topology t;
	int rc = ks_vmspec_topology(s, &t, err);

	if (rc < 0)
		return rc;
	if (t.cpus > KS_VMSPEC_MAX_CPUS)
		return ks_error_set(err, -EINVAL, "cpus: at most %u (got %u)", KS_VMSPEC_MAX_CPUS,
				    t.cpus);
	/* An APIC id is 8 bits wide in xAPIC mode, and TCG has no x2APIC ids above 254. */
	if (s->machine == KS_MACHINE_PC && t.cpus > KS_VMSPEC_MAX_CPUS_PC)
		return ks_error_set(err, -EINVAL, "cpus: machine pc supports at most %u (got %u)",
				    KS_VMSPEC_MAX_CPUS_PC, t.cpus);
	if (s->accel == KS_ACCEL_TCG && max_apic_id(&t) > KS_VMSPEC_MAX_TCG_APIC_ID)
		return ks_error_set(err, -EINVAL, "topology: needs APIC ids up to %u, but tcg "
				    "supports at most %u (use kvm or fewer cpus)", max_apic_id(&t),
				    KS_VMSPEC_MAX_TCG_APIC_ID);
	return 0;
}

/* pc and q35 reserve 64-bit PCI space above RAM, inside the default CPU's 40 address bits. */
static int check_memory(const struct ks_vmspec *s, struct ks_error *err)
{
	uint64_t mib = ks_vmspec_memory_mib(s);

	if (s->machine == KS_MACHINE_MICROVM)
		return ks_vmspec_check_memory_range("memory", mib, KS_VMSPEC_MAX_MEMORY_MIB, "",
						    err);
	return ks_vmspec_check_memory_range("memory", mib, KS_VMSPEC_MAX_MEMORY_MIB_PC,
					    s->machine == KS_MACHINE_PC ? " for machine pc"
									: " for machine q35",
					    err);
}

/* Every CPU that exists is in exactly one node, and no node names one that does not. */
static int check_numa_cpus(const struct ks_vmspec *s, unsigned cpus, struct ks_error *err)
{
	for (unsigned c = 0; c < KS_VMSPEC_MAX_CPUS; c++) {
		size_t first = SIZE_MAX;

		for (size_t i = 0; i < s->nnuma; i++) {
			if (!ks_vmspec_node_has_cpu(&s->numa[i], c))
				continue;
			if (c >= cpus)
				return ks_error_set(err, -EINVAL,
						    "numa: cpu %u does not exist (cpus is %u)", c,
						    cpus);
			if (first != SIZE_MAX)
				return ks_error_set(err, -EINVAL, "numa: cpu %u is in nodes "
						    "%zu and %zu", c, first, i);
			first = i;
		}
		if (c < cpus && first == SIZE_MAX)
			return ks_error_set(err, -EINVAL, "numa: cpu %u is in no node", c);
	}
	return 0;
}

static int check_numa(const struct ks_vmspec *s, struct ks_error *err)
{
	struct ks_vmspec_topology t;
	uint64_t sum = 0;
	char a[32], b[32];

	if (!s->nnuma)
		return 0;
	if (s->nnuma > KS_VMSPEC_MAX_NUMA)
		return ks_error_set(err, -EINVAL, "numa: at most %d nodes", KS_VMSPEC_MAX_NUMA);
	for (size_t i = 0; i < s->nnuma; i++) {
		if (!s->numa[i].memory_mib && !ks_vmspec_node_has_cpus(&s->numa[i]))
			return ks_error_set(err, -EINVAL,
					    "numa: node %zu has neither memory nor cpus", i);
		sum += s->numa[i].memory_mib;
	}
	if (s->memory_mib && sum != s->memory_mib)
		return ks_error_set(err, -EINVAL, "numa: nodes add up to %s but memory is %s",
				    ks_vmspec_fmt_mib(a, sizeof(a), sum),
				    ks_vmspec_fmt_mib(b, sizeof(b), s->memory_mib));
	if (ks_vmspec_topology(s, &t, err) < 0)
		return -EINVAL;
	return check_numa_cpus(s, t.cpus, err);
}

/* Checks that path names a file QEMU can open: regular (or a block device when allowed),
 * readable, and writable when asked. */
static int check_file(const char *field, const char *path, bool block_ok, bool writable,
		      struct ks_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int e = errno;

		if (e == ENOENT || e == ENOTDIR)
			return ks_error_set(err, -ENOENT, "%s: %s: no such file", field, path);
		if (e == EACCES)
			return ks_error_set(err, -EACCES, "%s: %s: permission denied", field, path);
		return ks_error_set(err, -e, "%s: %s: %s", field, path, strerror(e));
	}
	if (S_ISDIR(st.st_mode))
		return ks_error_set(err, -EISDIR, "%s: %s: is a directory", field, path);
	if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode)))
		return ks_error_set(err, -EINVAL, "%s: %s: not a regular file", field, path);
	if (access(path, R_OK) < 0)
		return ks_error_set(err, -EACCES, "%s: %s: not readable", field, path);
	if (writable && access(path, W_OK) < 0)
		return ks_error_set(err, -EACCES, "%s: %s: not writable", field, path);
	return 0;
}

/* An x86 ELF file (32- or 64-bit) or a Linux bzImage. */
static int check_kernel_image(const char *path, struct ks_error *err)
{
	unsigned char h[BZIMAGE_MAGIC_OFF + 4] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, h, sizeof(h), 0);
	int e = errno;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return ks_error_set(err, -e, "kernel: %s: cannot read: %s", path, strerror(e));
	if (n >= 20 && !memcmp(h, "\x7f" "ELF", 4)) {
		unsigned machine = h[5] == 2 ? (unsigned)h[18] << 8 | h[19]
					     : (unsigned)h[19] << 8 | h[18];

		if (machine == EM_386_ || machine == EM_X86_64_)
			return 0;
		return ks_error_set(err, -EINVAL, "kernel: %s: ELF file for another architecture "
				    "(e_machine %u, expected x86)", path, machine);
	}
	if (n == (ssize_t)sizeof(h) && !memcmp(h + BZIMAGE_MAGIC_OFF, "HdrS", 4))
		return 0;
	return ks_error_set(err, -EINVAL, "kernel: %s: not a kernel image (expected an ELF file "
			    "or a Linux bzImage)", path);
}

static int check_files(const struct ks_vmspec *s, struct ks_error *err)
{
	int rc;

	if (!s->kernel)
		return ks_error_set(err, -EINVAL, "kernel: required, but not given");
	rc = check_file("kernel", s->kernel, false, false, err);
	if (rc == 0)
		rc = check_kernel_image(s->kernel, err);
	if (rc == 0 && s->initrd)
		rc = check_file("initrd", s->initrd, false, false, err);
	for (size_t i = 0; rc == 0 && i < s->ndisks; i++)
		rc = check_file("disk", s->disks[i], true, true, err);
	return rc;
}

static bool executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Finds the QEMU binary as execvp() would: a name with a slash as is, others in $PATH. */
static int check_qemu(const struct ks_vmspec *s, struct ks_error *err)
{
	const char *q = ks_vmspec_qemu_binary(s);
	const char *env = getenv("PATH");
	char path[PATH_MAX];

	if (strchr(q, '/')) {
		if (access(q, F_OK) < 0)
			return ks_error_set(err, -ENOENT, "qemu: %s: no such file", q);
		if (!executable(q))
			return ks_error_set(err, -EACCES, "qemu: %s: not executable", q);
		return 0;
	}
	for (const char *d = env ? env : "/usr/local/bin:/usr/bin:/bin"; ;) {
		size_t len = strcspn(d, ":");

		if (snprintf(path, sizeof(path), "%.*s/%s", (int)len, len ? d : ".", q) <
			    (int)sizeof(path) && executable(path))
			return 0;
		if (!d[len])
			break;
		d += len + 1;
	}
	return ks_error_set(err, -ENOENT, "qemu: %s not found in PATH", q);
}

static int check_kvm(const struct ks_vmspec *s, struct ks_error *err)
{
	int e;

	if (s->accel != KS_ACCEL_KVM || access("/dev/kvm", R_OK | W_OK) == 0)
		return 0;
	e = errno;
	return ks_error_set(err, -e, "accel: kvm needs /dev/kvm (%s)", strerror(e));
}

int ks_vmspec_validate(const struct ks_vmspec *s, struct ks_error *err)
{
	static int (*const checks[])(const struct ks_vmspec *, struct ks_error *) = {
		check_values, ks_vmspec_check_cpus, check_memory, check_numa,
		check_files, check_qemu, check_kvm,
	};

	for (size_t i = 0; i < ARRAY_SIZE(checks); i++) {
		int rc = checks[i](s, err);

		if (rc < 0)
			return rc;
	}
	return 0;
}
