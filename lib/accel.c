/* accel.c: choosing KVM or TCG: KVM only when a probe guest really runs under it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/spawn.h>
#include <kscope/vm.h>

#include "vm_internal.h"

#define PROBE_BASE 0x100000u
#define PROBE_TIMEOUT_NS 5000000000ll

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

int ks_probe_kernel_write(const char *path, uint8_t code, struct ks_error *err)
{
	/* ELF header, a PT_LOAD and a PT_NOTE header, the Xen PVH entry note, then 32-bit code:
	 * mov $code, %al; out %al, $0xf4; hlt; jmp .-1 */
	enum { NOTE = 64 + 2 * 56, NOTE_SIZE = 20, CODE = NOTE + NOTE_SIZE, TOTAL = CODE + 7 };
	unsigned char img[TOTAL] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	const unsigned char insns[7] = { 0xb0, code, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd };

	le16(img + 16, 2);                 /* ET_EXEC */
	le16(img + 18, 62);                /* EM_X86_64 */
	le32(img + 20, 1);
	le64(img + 24, PROBE_BASE + CODE); /* entry */
	le64(img + 32, 64);                /* phoff */
	le16(img + 52, 64);                /* ehsize */
	le16(img + 54, 56);                /* phentsize */
	le16(img + 56, 2);                 /* phnum */
	phdr(img + 64, 1, 5, 0, TOTAL);
	phdr(img + 64 + 56, 4, 4, NOTE, NOTE_SIZE);
	le32(img + NOTE, 4);
	le32(img + NOTE + 4, 4);
	le32(img + NOTE + 8, 18);          /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(img + NOTE + 12, "Xen", 4);
	le32(img + NOTE + 16, PROBE_BASE + CODE);
	memcpy(img + CODE, insns, sizeof(insns));

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ks_error_set(err, -errno, "probe: cannot create %s: %s", path, strerror(errno));
	ssize_t n = write(fd, img, sizeof(img));
	close(fd);
	return n == (ssize_t)sizeof(img) ? 0 : ks_error_set(err, -EIO, "probe: cannot write %s", path);
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
		return ks_error_set(err, rc, "a KVM probe guest did not finish in 5 s");
	}
	if (rc < 0)
		return ks_error_set(err, rc, "cannot wait for the KVM probe: %s", strerror(-rc));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != ((0x10 << 1) | 1))
		return ks_error_set(err, -ENODEV, "a KVM probe guest did not run (QEMU status %d)",
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

enum ks_accel ks_vm_pick_accel(const struct ks_vmspec *spec, const char **why)
{
	static int probed; /* 0 not yet, 1 KVM works, -1 it does not */
	static char reason[320];
	struct ks_error err = { 0 };

	if (spec->accel != KS_ACCEL_AUTO) {
		if (why)
			*why = spec->accel == KS_ACCEL_KVM
				       ? "kvm as asked (software breakpoints may not work under KVM)"
				       : "tcg as asked";
		return spec->accel;
	}
	if (!probed) {
		probed = ks_kvm_probe(ks_vmspec_qemu_binary(spec), &err) == 0 ? 1 : -1;
		if (probed > 0)
			snprintf(reason, sizeof(reason),
				 "kvm: a probe guest ran under it (faster; -d traces are empty "
				 "and software breakpoints may not work)");
		else
			snprintf(reason, sizeof(reason),
				 "tcg: %.200s (slower than KVM; every debug feature works)", err.msg);
	}
	if (why)
		*why = reason;
	return probed > 0 ? KS_ACCEL_KVM : KS_ACCEL_TCG;
}
