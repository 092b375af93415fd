/* test_qemu_argv.c: QEMU accepts the argv libkscope builds, on every machine, and boots it. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/kt_abi.h>
#include <kscope/qemu_argv.h>
#include <kscope/vmspec.h>

#include "vmboot.h"

#define KERNEL_LOAD 0x100000u
#define KERNEL_CODE 0x100u      /* file offset of the code; entry is KERNEL_LOAD + this */
#define MAGIC_GPA 0x5000000u    /* 80 MiB: in NUMA node 1 when each node has 64 MiB */
#define MAGIC 0x6b73636fu
#define EXIT_STATUS ((0x2a << 1) | 1)

/*
 * 32-bit code entered through PVH: prints "kscope comN\n" on COM1..COM4, stores MAGIC at
 * MAGIC_GPA, then writes 0x2a to isa-debug-exit. Assembled from:
 *   mov $0x90000,%esp; for each port: mov $port,%dx; mov $string,%esi; call puts
 *   movl $MAGIC,MAGIC_GPA; mov $0x2a,%al; out %al,$0xf4; 1: hlt; jmp 1b
 *   puts: lodsb; test %al,%al; jz 2f; out %al,(%dx); jmp puts; 2: ret
 */
static const unsigned char kernel_code[] = {
	0xbc, 0x00, 0x00, 0x09, 0x00, 0x66, 0xba, 0xf8, 0x03, 0xbe, 0x57, 0x01, 0x10, 0x00,
	0xe8, 0x3b, 0x00, 0x00, 0x00, 0x66, 0xba, 0xf8, 0x02, 0xbe, 0x64, 0x01, 0x10, 0x00,
	0xe8, 0x2d, 0x00, 0x00, 0x00, 0x66, 0xba, 0xe8, 0x03, 0xbe, 0x71, 0x01, 0x10, 0x00,
	0xe8, 0x1f, 0x00, 0x00, 0x00, 0x66, 0xba, 0xe8, 0x02, 0xbe, 0x7e, 0x01, 0x10, 0x00,
	0xe8, 0x11, 0x00, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x00, 0x00, 0x05, 0x6f, 0x63, 0x73,
	0x6b, 0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee,
	0xeb, 0xf8, 0xc3, 'k', 's', 'c', 'o', 'p', 'e', ' ', 'c', 'o', 'm', '1', '\n', 0,
	'k', 's', 'c', 'o', 'p', 'e', ' ', 'c', 'o', 'm', '2', '\n', 0,
	'k', 's', 'c', 'o', 'p', 'e', ' ', 'c', 'o', 'm', '3', '\n', 0,
	'k', 's', 'c', 'o', 'p', 'e', ' ', 'c', 'o', 'm', '4', '\n', 0,
};

/* The Xen note QEMU looks for to boot an ELF through PVH: its 32-bit entry point. */
struct pvh_note {
	Elf64_Nhdr hdr;
	char name[4];
	uint32_t entry;
};

struct ctx {
	char dir[64];
	char ram[96];
	char *qmp;
	struct ks_vmspec *spec;
	struct ks_ram_layout *layout;
	pid_t pid;
	char *paths[16]; /* files in dir to remove */
	size_t npaths;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *in_dir(struct ctx *c, const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", c->dir, name) > 0);
	assert_true(c->npaths < sizeof(c->paths) / sizeof(c->paths[0]));
	c->paths[c->npaths++] = p;
	return p;
}

static void write_kernel(const char *path)
{
	unsigned char img[KERNEL_CODE + sizeof(kernel_code)] = { 0 };
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*eh));
	size_t note_off = sizeof(*eh) + 2 * sizeof(*ph);
	struct pvh_note note = { { 4, 4, 18 }, "Xen", KERNEL_LOAD + KERNEL_CODE };
	FILE *f;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = KERNEL_LOAD + KERNEL_CODE;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 2;
	ph[0] = (Elf64_Phdr){ PT_LOAD, PF_R | PF_W | PF_X, 0, KERNEL_LOAD, KERNEL_LOAD,
			      sizeof(img), sizeof(img), 0x1000 };
	ph[1] = (Elf64_Phdr){ PT_NOTE, PF_R, note_off, KERNEL_LOAD + note_off,
			      KERNEL_LOAD + note_off, sizeof(note), sizeof(note), 4 };
	memcpy(img + note_off, &note, sizeof(note));
	memcpy(img + KERNEL_CODE, kernel_code, sizeof(kernel_code));
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(img, 1, sizeof(img), f), sizeof(img));
	assert_int_equal(fclose(f), 0);
}

/* Runs a command to completion (qemu-img), without a shell; true if it exited 0. */
static bool run(char *const argv[])
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void make_image(const char *path, const char *size)
{
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", (char *)path, (char *)size,
			 NULL };

	if (!run(argv)) {
		/* Without qemu-img, a raw image exercises the same argv. */
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 1 << 20), 0);
		close(fd);
	}
}

static void set(struct ks_vmspec *s, const char *key, const char *value)
{
	struct ks_error err = { 0 };

	if (ks_vmspec_set(s, key, value, &err) < 0)
		fail_msg("%s", err.msg);
}

/* The spec of every test: 2 sockets x 2 cores, two NUMA nodes, a network and a disk; the
 * test kernel unless another is given. */
static void make_spec(struct ctx *c, const char *machine, const char *serial,
		      const char *kernel)
{
	const char *q = getenv("QEMU");
	char *disk = in_dir(c, "disk.qcow2");
	struct ks_error err = { 0 };

	if (!kernel) {
		kernel = in_dir(c, "kernel.elf");
		write_kernel(kernel);
	}
	make_image(disk, "16M");
	c->spec = ks_vmspec_new(NULL);
	assert_non_null(c->spec);
	set(c->spec, "machine", machine);
	set(c->spec, "accel", "tcg");
	set(c->spec, "cpus", "4");
	set(c->spec, "sockets", "2");
	set(c->spec, "cores", "2");
	set(c->spec, "numa", "64M,0-1");
	set(c->spec, "numa", "64M,2-3");
	set(c->spec, "serial", serial);
	set(c->spec, "net", "user");
	set(c->spec, "disk", disk);
	set(c->spec, "kernel", kernel);
	set(c->spec, "append", "console=ttyS0");
	if (q && *q)
		set(c->spec, "qemu", q);
	if (ks_vmspec_validate(c->spec, &err) < 0)
		fail_msg("%s", err.msg);
}

static pid_t spawn(char **argv, const char *log)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid;
	/* QEMU must not outlive the test, whatever ends the test. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int in = open("/dev/null", O_RDONLY);
	int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	dup2(in, 0);
	dup2(out, 1);
	dup2(out, 2);
	execvp(argv[0], argv);
	_exit(127);
}

/* Builds the argv for c->spec with every runtime path in c->dir and starts QEMU paused. */
static void start(struct ctx *c, char **serial)
{
	struct ks_qemu_paths p = {
		.accel = KS_ACCEL_TCG, .ram = c->ram, .serial = (const char *const *)serial,
		.log_items = "guest_errors", .paused = true, .no_reboot = true, .pvpanic = true,
		.debug_exit = true,
	};
	struct ks_error err = { 0 };
	char **argv = NULL;

	c->qmp = in_dir(c, "qmp.sock");
	p.qmp = c->qmp;
	p.gdb = in_dir(c, "gdb.sock");
	p.vmstate = in_dir(c, "vmstate.qcow2");
	p.pidfile = in_dir(c, "qemu.pid");
	p.log = in_dir(c, "qemu-d.log");
	for (unsigned i = 0; i < c->spec->serial; i++) {
		char name[32];

		snprintf(name, sizeof(name), "serial%u.sock", i);
		serial[i] = in_dir(c, name);
	}
	make_image(p.vmstate, "64M");
	c->layout = ks_qemu_ram_layout(c->spec, &p, &err);
	assert_non_null(c->layout);
	if (ks_qemu_argv_build(c->spec, &p, &argv, &err) < 0)
		fail_msg("%s", err.msg);
	c->pid = spawn(argv, in_dir(c, "qemu.stderr"));
	ks_qemu_argv_free(argv);
	assert_true(c->pid > 0);
}

static char *slurp(struct ctx *c, const char *name)
{
	char path[160], *buf = calloc(1, 65536);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	assert_non_null(buf);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, 65535);

		buf[n > 0 ? n : 0] = 0;
		close(fd);
	}
	return buf;
}

/* Waits at most timeout_s for QEMU to exit; returns its wait status, or -1 if it runs on. */
static int wait_exit(struct ctx *c, double timeout_s)
{
	double end = now_s() + timeout_s;
	int status;

	while (now_s() < end) {
		pid_t r = waitpid(c->pid, &status, WNOHANG);

		if (r == c->pid) {
			c->pid = 0;
			return status;
		}
		usleep(5000);
	}
	return -1;
}

static int connect_unix(const char *path, double timeout_s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double end = now_s() + timeout_s;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	while (now_s() < end) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		usleep(10000);
	}
	return -1;
}

/* Reads from fd until buf holds until (or, with until NULL, a '\n') or the time is up;
 * returns buf's length. */
static size_t read_until(int fd, char *buf, size_t len, const char *until, double timeout_s)
{
	double end = now_s() + timeout_s;
	size_t n = 0;

	buf[0] = 0;
	while (n + 1 < len && !strstr(buf, until ? until : "\n") && now_s() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		r = read(fd, buf + n, len - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = 0;
	}
	return n;
}

static size_t read_line(int fd, char *buf, size_t len, double timeout_s)
{
	return read_until(fd, buf, len, NULL, timeout_s);
}

/* Sends one QMP command and reads lines until its reply ("return" or "error"). */
static void qmp(int fd, const char *cmd, char *reply, size_t len)
{
	assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	do {
		assert_true(read_line(fd, reply, len, 30.0) > 0);
	} while (!strstr(reply, "\"return\"") && !strstr(reply, "\"error\""));
}

/* Resumes a guest that may run to its exit at once: QEMU can then close QMP before the
 * reply to "cont" is read, which is fine here; the exit status is checked later. */
static void qmp_cont(int fd, char *reply, size_t len)
{
	static const char cmd[] = "{\"execute\":\"cont\"}\n";

	assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	while (read_line(fd, reply, len, 30.0) > 0 && !strstr(reply, "\"return\""))
		assert_null(strstr(reply, "\"error\""));
}

static int setup(void **state)
{
	struct ctx *c;

	if (!vm_have_qemu())
		skip(); /* the only reason a VM test may skip */
	c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/kscope-argv-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->ram, sizeof(c->ram), "/dev/shm/kscope-test-argv-%d", (int)getpid());
	*state = c;
	return 0;
}

/* Whatever the test did: no QEMU left, no file left, in the directory or in /dev/shm. */
static int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	for (size_t i = 0; c->layout && i < c->layout->nfiles; i++)
		unlink(c->layout->files[i].path);
	for (size_t i = 0; i < c->npaths; i++) {
		unlink(c->paths[i]);
		free(c->paths[i]);
	}
	rmdir(c->dir);
	ks_ram_layout_free(c->layout);
	ks_vmspec_free(c->spec);
	free(c);
	return 0;
}

/* Starts paused for half a second: QEMU must still be running, with QMP answering. */
static void paused(void **state, const char *machine)
{
	struct ctx *c = *state;
	char *serial[4] = { 0 }, buf[4096], *err, *pid;
	int fd;

	make_spec(c, machine, "2", NULL);
	start(c, serial);
	usleep(500000);
	if (wait_exit(c, 0) != -1) {
		err = slurp(c, "qemu.stderr");
		fail_msg("QEMU (%s) exited at once: %s", machine, err);
	}
	fd = connect_unix(c->qmp, 30.0);
	assert_true(fd >= 0);
	assert_true(read_line(fd, buf, sizeof(buf), 30.0) > 0);
	assert_non_null(strstr(buf, "\"QMP\""));
	qmp(fd, "{\"execute\":\"qmp_capabilities\"}\n", buf, sizeof(buf));
	qmp(fd, "{\"execute\":\"query-status\"}\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"prelaunch\""));
	close(fd);
	pid = slurp(c, "qemu.pid");
	assert_int_equal(atoi(pid), c->pid);
	free(pid);
	err = slurp(c, "qemu.stderr");
	assert_string_equal(err, "");
	free(err);
}

/* Boots the test kernel: each serial port's line reaches its own socket, the magic reaches
 * the RAM file where the layout says, and isa-debug-exit gives QEMU's status. */
static void boot(void **state, const char *machine)
{
	struct ctx *c = *state;
	char *serial[4] = { 0 }, buf[4096], want[32];
	int fds[4], qfd, status;
	const struct ks_ram_region *r;
	uint32_t magic = 0;

	make_spec(c, machine, "4", NULL);
	start(c, serial);
	for (int i = 0; i < 4; i++) {
		fds[i] = connect_unix(serial[i], 30.0);
		assert_true(fds[i] >= 0);
	}
	qfd = connect_unix(c->qmp, 30.0);
	assert_true(qfd >= 0);
	assert_true(read_line(qfd, buf, sizeof(buf), 30.0) > 0);
	qmp(qfd, "{\"execute\":\"qmp_capabilities\"}\n", buf, sizeof(buf));
	qmp_cont(qfd, buf, sizeof(buf));
	/* On pc and q35, SeaBIOS writes its banner to COM1 first. */
	for (int i = 0; i < 4; i++) {
		const char *line;

		snprintf(want, sizeof(want), "kscope com%d\n", i + 1);
		read_until(fds[i], buf, sizeof(buf), want, 30.0);
		line = strstr(buf, want);
		if (!line)
			fail_msg("COM%d: '%s', expected '%s'", i + 1, buf, want);
		if (i > 0)
			assert_string_equal(buf, want);
		close(fds[i]);
	}
	status = wait_exit(c, 30.0);
	close(qfd);
	assert_true(status != -1 && WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), EXIT_STATUS);
	r = ks_ram_layout_find(c->layout, MAGIC_GPA);
	assert_non_null(r);
	assert_int_equal(r->file, 1); /* node 1's file */
	fds[0] = open(c->layout->files[r->file].path, O_RDONLY);
	assert_true(fds[0] >= 0);
	assert_int_equal(pread(fds[0], &magic, 4, (off_t)(r->offset + MAGIC_GPA - r->gpa)), 4);
	close(fds[0]);
	assert_int_equal(magic, MAGIC);
}

/* Reads fd until the peer closes it or the time is up; returns what came (caller frees). */
static char *read_all(int fd, double timeout_s)
{
	double end = now_s() + timeout_s;
	size_t n = 0, cap = 1 << 16;
	char *buf = malloc(cap);

	assert_non_null(buf);
	while (now_s() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (n + 1 == cap) {
			buf = realloc(buf, cap *= 2);
			assert_non_null(buf);
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	return buf;
}

/* The demo kernel, on the same 2-socket, 2-node machine: all its tests pass. */
static void demo(void **state, const char *machine)
{
	struct ctx *c = *state;
	char *serial[4] = { 0 }, buf[4096], *console;
	int fd, qfd, status;

	if (access(vm_demo_kernel(), R_OK) < 0)
		fail_msg("no demo kernel at %s", vm_demo_kernel());
	make_spec(c, machine, "1", vm_demo_kernel());
	start(c, serial);
	fd = connect_unix(serial[0], 30.0);
	qfd = connect_unix(c->qmp, 30.0);
	assert_true(fd >= 0 && qfd >= 0);
	assert_true(read_line(qfd, buf, sizeof(buf), 30.0) > 0);
	qmp(qfd, "{\"execute\":\"qmp_capabilities\"}\n", buf, sizeof(buf));
	qmp_cont(qfd, buf, sizeof(buf));
	console = read_all(fd, 60.0);
	status = wait_exit(c, 30.0);
	close(fd);
	close(qfd);
	if (status == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != KT_EXIT_STATUS(KT_EXIT_PASS))
		fail_msg("%s: status 0x%x, console:\n%s", machine, status, console);
	assert_non_null(strstr(console, "KTAP version 1"));
	free(console);
}

static void test_paused_microvm(void **state) { paused(state, "microvm"); }
static void test_paused_pc(void **state) { paused(state, "pc"); }
static void test_paused_q35(void **state) { paused(state, "q35"); }
static void test_boot_microvm(void **state) { boot(state, "microvm"); }
static void test_boot_pc(void **state) { boot(state, "pc"); }
static void test_boot_q35(void **state) { boot(state, "q35"); }
static void test_demo_microvm(void **state) { demo(state, "microvm"); }
static void test_demo_pc(void **state) { demo(state, "pc"); }
static void test_demo_q35(void **state) { demo(state, "q35"); }

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_paused_microvm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paused_pc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paused_q35, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_microvm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_pc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_q35, setup, teardown),
		cmocka_unit_test_setup_teardown(test_demo_microvm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_demo_pc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_demo_q35, setup, teardown),
	};

	return cmocka_run_group_tests_name("qemu_argv", tests, NULL, NULL);
}
