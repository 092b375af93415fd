/* accel.c: choosing KVM or TCG: KVM only when a probe guest really runs under it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/spawn.h>
#include <kscope/vm.h>

#include "vm_internal.h"

#define PROBE_BASE 0x100000u
/* The probe guest exits in tens of ms; a KVM that cannot deliver int3 leaves it stuck. */
#define PROBE_TIMEOUT_NS 2000000000ll

static void le16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void le32(unsigned char *p, uint32_t v) { le16(p, (uint16_t)v); le16(p + 2, (uint16_t)(v >> 16)); }
static void le64(unsigned char *p, uint64_t v) { le32(p, (uint32_t)v); le32(p + 4, (uint32_t)(v >> 32)); }

/* ELF64 program header: type, flags, offset, vaddr = paddr, sizes. */
static void phdr(unsigned char *p, uint32_t type, uint32_t flags, uint64_t off, uint64_t size)
{
	le32(p, type);
	le32(p + 4, flags);
	le64(p + 8, off);
	le64(p + 16, PROBE_BASE + off);
	le64(p + 24, PROBE_BASE + off);
	le64(p + 32, size);
	le64(p + 40, size);
	le64(p + 48, type == 1 ? 0x1000 : 4);
}

/* Little-endian 32-bit immediate or address into the code being assembled. */
static size_t put32(unsigned char *p, size_t at, uint32_t v)
{
	le32(p + at, v);
	return at + 4;
}

/*
 * The probe's 32-bit code. It builds an IDT whose vector 3 leads to the "passed" exit, then
 * executes int3: a KVM that cannot deliver int3 (seen on software-only KVM) never exits, or
 * falls through to the "failed" exit. Layout after the code: idtr (6 bytes), IDT (4 gates),
 * then a stack.
 */
static size_t probe_code(unsigned char *c, uint32_t at, uint8_t code)
{
	enum { IDTR = 80, IDT = 88, STACK_TOP = 88 + 32 + 256 };
	uint32_t handler = at + 64;
	size_t n = 0;

	c[n++] = 0xbc; n = put32(c, n, at + STACK_TOP);                    /* mov $top, %esp */
	c[n++] = 0x8c; c[n++] = 0xc8;                                      /* mov %cs, %eax */
	c[n++] = 0x66; c[n++] = 0xa3; n = put32(c, n, at + IDT + 26);      /* mov %ax, sel */
	const uint16_t words[3][2] = { { 28, 0x8e00 }, { 24, (uint16_t)handler },
				       { 30, (uint16_t)(handler >> 16) } };
	for (int i = 0; i < 3; i++) {                                      /* movw $w, gate+o */
		c[n++] = 0x66; c[n++] = 0xc7; c[n++] = 0x05;
		n = put32(c, n, at + IDT + words[i][0]);
		le16(c + n, words[i][1]);
		n += 2;
	}
	c[n++] = 0x0f; c[n++] = 0x01; c[n++] = 0x1d; n = put32(c, n, at + IDTR); /* lidt */
	c[n++] = 0xcc;                                                     /* int3 */
	const unsigned char fail[] = { 0xb0, 0x11, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd };
	memcpy(c + n, fail, sizeof(fail));                                 /* exit 0x11 */
	const unsigned char pass[] = { 0xb0, code, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd };
	memcpy(c + 64, pass, sizeof(pass));                                /* the handler */
	le16(c + IDTR, 4 * 8 - 1);
	le32(c + IDTR + 2, at + IDT);
	return STACK_TOP;
}

int ks_probe_kernel_write(const char *path, uint8_t code, struct ks_error *err)
{
	/* ELF header, a PT_LOAD and a PT_NOTE header, the Xen PVH entry note, then the code. */
	enum { NOTE = 64 + 2 * 56, NOTE_SIZE = 20, CODE = NOTE + NOTE_SIZE, MAX = CODE + 512 };
	unsigned char img[MAX] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	size_t total = CODE + probe_code(img + CODE, PROBE_BASE + CODE, code);

	le16(img + 16, 2);                 /* ET_EXEC */
	le16(img + 18, 62);                /* EM_X86_64 */
	le32(img + 20, 1);
	le64(img + 24, PROBE_BASE + CODE); /* entry */
	le64(img + 32, 64);                /* phoff */
	le16(img + 52, 64);                /* ehsize */
	le16(img + 54, 56);                /* phentsize */
	le16(img + 56, 2);                 /* phnum */
	phdr(img + 64, 1, 7, 0, total);
	phdr(img + 64 + 56, 4, 4, NOTE, NOTE_SIZE);
	le32(img + NOTE, 4);
	le32(img + NOTE + 4, 4);
	le32(img + NOTE + 8, 18);          /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(img + NOTE + 12, "Xen", 4);
	le32(img + NOTE + 16, PROBE_BASE + CODE);

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ks_error_set(err, -errno, "probe: cannot create %s: %s", path, strerror(errno));
	ssize_t n = write(fd, img, total);
	close(fd);
	return n == (ssize_t)total ? 0 : ks_error_set(err, -EIO, "probe: cannot write %s", path);
}

static int run_probe(const char *qemu, const char *kernel, struct ks_error *err)
{
	char *argv[] = { (char *)qemu, "-M", "microvm", "-accel", "kvm", "-m", "16M",
			 "-nodefaults", "-nographic", "-no-reboot", "-device",
			 "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", (char *)kernel, NULL };
	int status;
	pid_t pid = ks_spawn(argv, -1, NULL, 0, err);

	if (pid < 0)
		return pid;
	int rc = ks_wait_pid(pid, PROBE_TIMEOUT_NS, &status);
	if (rc == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		ks_wait_pid(pid, -1, &status);
		return ks_error_set(err, rc, "a KVM probe guest did not finish in 2 s (this KVM "
				    "cannot deliver int3, as software-only KVM does)");
	}
	if (rc < 0)
		return ks_error_set(err, rc, "cannot wait for the KVM probe: %s", strerror(-rc));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != ((0x10 << 1) | 1))
		return ks_error_set(err, -ENODEV, "a KVM probe guest did not pass (QEMU status %d)",
				    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

int ks_kvm_probe(const char *qemu, struct ks_error *err)
{
	char path[] = "/tmp/kscope-kvm-probe-XXXXXX";
	int fd;

	if (access("/dev/kvm", R_OK | W_OK) < 0)
		return ks_error_set(err, -ENODEV, "/dev/kvm is not usable: %s", strerror(errno));
	if ((fd = mkstemp(path)) < 0)
		return ks_error_set(err, -errno, "probe: %s", strerror(errno));
	close(fd);
	int rc = ks_probe_kernel_write(path, 0x10, err);
	if (rc == 0)
		rc = run_probe(qemu, path, err);
	unlink(path);
	return rc;
}

/* Where `name` (a path or a command looked up in PATH) is, with its mtime; false if not. */
static bool find_binary(const char *name, char *path, size_t size, long long *mtime)
{
	struct stat st;
	const char *env = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(path, size, "%s", name);
		return stat(path, &st) == 0 && (*mtime = (long long)st.st_mtime, true);
	}
	for (const char *d = env ? env : ""; *d;) {
		size_t n = strcspn(d, ":");
		snprintf(path, size, "%.*s/%s", (int)n, d, name);
		if (stat(path, &st) == 0) {
			*mtime = (long long)st.st_mtime;
			return true;
		}
		d += n + (d[n] == ':');
	}
	return false;
}

/*
 * The probe costs a QEMU start; its answer holds until the machine reboots or QEMU changes,
 * so it is kept in the runtime base directory under a key made of the boot id and the QEMU
 * binary. Each `kscope` process then pays for it once per boot at most.
 */
static void cache_key(const char *qemu, char *key, size_t size)
{
	char boot[64] = "", path[PATH_MAX];
	long long mtime = 0;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (f) {
		if (!fgets(boot, sizeof(boot), f))
			boot[0] = 0;
		fclose(f);
		boot[strcspn(boot, "\n")] = 0;
	}
	if (!find_binary(qemu, path, sizeof(path), &mtime))
		snprintf(path, sizeof(path), "%s", qemu);
	snprintf(key, size, "%s %s %lld", boot, path, mtime);
}

static int cache_read(const char *file, const char *key, char *reason, size_t size)
{
	char line[PATH_MAX + 512];
	int result = 0;
	FILE *f = fopen(file, "re");

	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f) && !strncmp(line, key, strlen(key)) &&
	    line[strlen(key)] == '\n' && fscanf(f, "%d ", &result) == 1 &&
	    fgets(reason, (int)size, f))
		reason[strcspn(reason, "\n")] = 0;
	else
		result = 0;
	fclose(f);
	return result == 1 || result == -1 ? result : 0;
}

static void cache_write(const char *file, const char *key, int result, const char *reason)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.%d", file, (int)getpid());
	if (!(f = fopen(tmp, "we")))
		return;
	fprintf(f, "%s\n%d %s\n", key, result, reason);
	/* Rename: readers never see half a file. */
	if (fclose(f) != 0 || rename(tmp, file) != 0)
		unlink(tmp);
}

static int probe_cached(const char *qemu, char *reason, size_t size)
{
	char key[PATH_MAX + 128], file[PATH_MAX];
	struct ks_error err = { 0 };
	int result;

	cache_key(qemu, key, sizeof(key));
	snprintf(file, sizeof(file), "%s/kvm-probe", ks_vm_rundir_base());
	if ((result = cache_read(file, key, reason, size)) != 0)
		return result;
	result = ks_kvm_probe(qemu, &err) == 0 ? 1 : -1;
	if (result > 0)
		snprintf(reason, size, "kvm: a probe guest ran under it, int3 included (faster; -d "
			 "traces are empty)");
	else
		snprintf(reason, size, "tcg: %.200s (slower than KVM; every debug feature works)",
			 err.msg);
	mkdir(ks_vm_rundir_base(), 0700);
	if (access(ks_vm_rundir_base(), W_OK) == 0)
		cache_write(file, key, result, reason);
	return result;
}

enum ks_accel ks_vm_pick_accel(const struct ks_vmspec *spec, const char **why)
{
	static int probed; /* 0 not yet, 1 KVM works, -1 it does not */
	static char reason[320];

	if (spec->accel != KS_ACCEL_AUTO) {
		if (why)
			*why = spec->accel == KS_ACCEL_KVM
				       ? "kvm as asked (software breakpoints may not work under KVM)"
				       : "tcg as asked";
		return spec->accel;
	}
	if (!probed)
		probed = probe_cached(ks_vmspec_qemu_binary(spec), reason, sizeof(reason));
	if (why)
		*why = reason;
	return probed > 0 ? KS_ACCEL_KVM : KS_ACCEL_TCG;
}
