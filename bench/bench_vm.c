/* bench_vm.c: VM start to first serial byte, and pause/resume round trips: kscope next to raw QEMU. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/chan.h>
#include <kscope/loop.h>
#include <kscope/spawn.h>
#include <kscope/vm.h>

#include "vm_internal.h"

#define SEC 1000000000ll

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double ms_since(uint64_t t0)
{
	return (double)(ks_loop_now_ns() - t0) / 1e6;
}

/*
 * Raw QEMU: spawn, time to the first byte on its stdout (COM1 on stdio), then kill it. With
 * `same` it runs the VM kscope runs (RAM in a shared /dev/shm file, pvpanic, a qcow2 drive for
 * snapshots, a gdbstub socket, QEMU's cpu_reset log), else a bare one.
 */
static double raw_first_byte(const char *kernel, const char *base, bool same)
{
	char qmp[160], gdb[160], ram[96], object[256], drive[256], dlog[160], qcow2[128];
	char *argv[48] = { "qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-m", "128M",
			   "-nodefaults", "-nographic", "-no-reboot", "-serial", "stdio",
			   "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-qmp", qmp,
			   "-kernel", (char *)kernel, "-append", "kt.filter=example_crash.hang" };
	char *extra[] = { "-machine", "microvm,memory-backend=mem0", "-object", object,
			  "-device", "pvpanic", "-action", "panic=pause", "-drive", drive,
			  "-gdb", gdb, "-d", "cpu_reset", "-D", dlog, NULL };
	int p[2], status, n = 20;
	char c;

	snprintf(qmp, sizeof(qmp), "unix:%s/raw-qmp.sock,server=on,wait=off", base);
	snprintf(gdb, sizeof(gdb), "unix:%s/raw-gdb.sock,server=on,wait=off", base);
	snprintf(ram, sizeof(ram), "/dev/shm/kscope-bench-%d", (int)getpid());
	snprintf(object, sizeof(object), "memory-backend-file,id=mem0,size=128M,mem-path=%s,"
		 "share=on", ram);
	snprintf(qcow2, sizeof(qcow2), "%s/raw.qcow2", base);
	snprintf(drive, sizeof(drive), "if=none,id=vmstate0,format=qcow2,file=%s", qcow2);
	snprintf(dlog, sizeof(dlog), "%s/raw-debug.log", base);
	if (same && ks_qcow2_create(qcow2, 1ull << 30, NULL) < 0)
		return -1;
	for (int i = 0; same && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	uint64_t t0 = ks_loop_now_ns();
	pid_t pid = ks_spawn(argv, p[1], NULL, 0, NULL);
	close(p[1]);
	double ms = read(p[0], &c, 1) == 1 ? ms_since(t0) : -1;
	close(p[0]);
	kill(pid, SIGKILL);
	ks_wait_pid(pid, -1, &status);
	unlink(ram);
	unlink(qcow2);
	unlink(dlog);
	snprintf(qmp, sizeof(qmp), "%s/raw-qmp.sock", base);
	snprintf(gdb, sizeof(gdb), "%s/raw-gdb.sock", base);
	unlink(qmp);
	unlink(gdb);
	return ms;
}

static struct ks_vm *start_vm(struct ks_loop *loop, const char *kernel, const char *base,
			      bool debug_exit)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_vm_opts o;
	struct ks_error err = { 0 };

	ks_vmspec_set(s, "kernel", kernel, NULL);
	ks_vmspec_set(s, "accel", "tcg", NULL);
	ks_vmspec_set(s, "append", "kt.filter=example_crash.hang", NULL);
	ks_vm_opts_init(&o);
	o.rundir_base = base;
	o.name = "bench";
	o.debug_exit = debug_exit;
	struct ks_vm *vm = ks_vm_start(loop, s, &o, &err);
	ks_vmspec_free(s);
	if (!vm)
		fprintf(stderr, "bench_vm: %s\n", err.msg);
	return vm;
}

/* kscope: ks_vm_start (validation, runtime dir, RAM file, QMP, serial socket, resume) to the
 * first byte the console channel receives. */
static double kscope_first_byte(struct ks_loop *loop, const char *kernel, const char *base)
{
	uint64_t t0 = ks_loop_now_ns();
	struct ks_vm *vm = start_vm(loop, kernel, base, true);
	struct ks_chan_stats st = { 0 };
	double ms = -1;

	if (!vm)
		return -1;
	while (ks_loop_now_ns() - t0 < 10 * SEC) {
		ks_chan_stats(ks_vm_chan(vm, 0), &st);
		if (st.bytes_in > 0) {
			ms = ms_since(t0);
			break;
		}
		ks_loop_run_once(loop, SEC / 100);
	}
	ks_vm_free(vm);
	return ms;
}

/* True once the console log holds a line of guest output (lines start with "["). */
static bool log_has_output(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return buf[0] == '[' || strstr(buf, "\n[") != NULL;
}

static int run_kscope(char **argv)
{
	int status;
	pid_t pid = ks_spawn(argv, -1, NULL, 0, NULL);

	if (pid < 0 || ks_wait_pid(pid, 30 * SEC, &status) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The whole command: `kscope vm start` (validation, daemon, QEMU, QMP, serial, resume) until
 * the supervisor's console log shows the guest's first output, polled every 0.2 ms. */
static double cli_first_byte(const char *kscope, const char *kernel, const char *base)
{
	char *start[] = { (char *)kscope, "vm", "start", "clibench", "--kernel", (char *)kernel,
			  "--accel", "tcg", "--append", "kt.filter=example_crash.hang", NULL };
	char *destroy[] = { (char *)kscope, "vm", "destroy", "clibench", NULL };
	char log[256];
	double ms = -1;

	setenv("KSCOPE_RUNDIR", base, 1);
	snprintf(log, sizeof(log), "%s/clibench/console.log", base);
	uint64_t t0 = ks_loop_now_ns();
	if (run_kscope(start) == 0) {
		while (ks_loop_now_ns() - t0 < 10 * SEC && !log_has_output(log))
			usleep(200);
		if (log_has_output(log))
			ms = ms_since(t0);
	}
	run_kscope(destroy);
	unsetenv("KSCOPE_RUNDIR");
	return ms;
}

/* Raw QMP over a socket: send, read until the reply line (no events in between here). */
static int raw_cmd(int fd, const char *json)
{
	char buf[4096];
	size_t n = strlen(json);

	if (write(fd, json, n) != (ssize_t)n)
		return -1;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		if (r <= 0)
			return -1;
		buf[r] = 0;
		if (strstr(buf, "\"return\""))
			return 0;
	}
}

static int raw_qmp_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char buf[4096];

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			if (read(fd, buf, sizeof(buf)) > 0 &&
			    raw_cmd(fd, "{\"execute\":\"qmp_capabilities\"}\n") == 0)
				return fd;
		}
		close(fd);
		usleep(1000);
	}
	return -1;
}

/*
 * Pause-to-resume round trips: raw QMP on a QEMU of our own, and ks_vm_pause/resume, both on
 * an idle guest (the probe kernel halts, as there is no exit device), so that no spinning
 * vCPU competes with the measurement for the host's cores.
 */
static int round_trips(struct ks_loop *loop, const char *base, const char *sock, int runs,
		       double *raw, double *ks)
{
	char kernel[128];

	snprintf(kernel, sizeof(kernel), "%s/idle.elf", base);
	if (ks_probe_kernel_write(kernel, 0x10, NULL) < 0)
		return -1;
	char qmp_arg[160];
	char *argv[] = { "qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-m", "128M",
			 "-nodefaults", "-nographic", "-qmp", qmp_arg, "-kernel", kernel, NULL };
	struct ks_error err = { 0 };
	int status, rc = 0;

	snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", sock);
	pid_t pid = ks_spawn(argv, -1, NULL, 0, NULL);
	int fd = raw_qmp_connect(sock);
	struct ks_vm *vm = start_vm(loop, kernel, base, false);
	if (fd < 0 || !vm)
		rc = -1;
	for (int i = 0; rc == 0 && i < runs; i++) {
		uint64_t t0 = ks_loop_now_ns();
		if (raw_cmd(fd, "{\"execute\":\"stop\"}\n") < 0 ||
		    raw_cmd(fd, "{\"execute\":\"cont\"}\n") < 0)
			rc = -1;
		raw[i] = ms_since(t0);
		t0 = ks_loop_now_ns();
		if (ks_vm_pause(vm, &err) < 0 || ks_vm_resume(vm, &err) < 0)
			rc = -1;
		ks[i] = ms_since(t0);
	}
	if (rc < 0)
		fprintf(stderr, "bench_vm: round trip failed: %s\n", err.msg);
	ks_vm_free(vm);
	if (fd >= 0)
		close(fd);
	kill(pid, SIGKILL);
	ks_wait_pid(pid, -1, &status);
	unlink(sock);
	unlink(kernel);
	return rc;
}

static void report(const char *what, double *raw, double *ks, int runs)
{
	double r = median(raw, runs), k = median(ks, runs);

	printf("%-36s %10.2f %10.2f %+9.2f%%\n", what, r, k, (k - r) / r * 100);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_vm DEMO_KERNEL [RUNS [KSCOPE_BINARY]]\n");
		return 2;
	}
	const char *kscope = argc > 3 ? argv[3] : NULL;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	if (runs < 1 || runs > 200) {
		fprintf(stderr, "bench_vm: RUNS must be 1..200\n");
		return 2;
	}
	char base[] = "/tmp/kscope-bench-XXXXXX", sock[96];
	struct ks_loop *loop = ks_loop_new(NULL);
	double bare_start[200], raw_start[200], ks_start[200], cli_start[200];
	double raw_rt[200], ks_rt[200];

	if (!mkdtemp(base) || !loop)
		return 1;
	snprintf(sock, sizeof(sock), "%s/raw-qmp.sock", base);
	/* Alternate the two so that machine noise hits both alike. */
	for (int i = 0; i < runs; i++) {
		bare_start[i] = raw_first_byte(argv[1], base, false);
		raw_start[i] = raw_first_byte(argv[1], base, true);
		ks_start[i] = kscope_first_byte(loop, argv[1], base);
		cli_start[i] = kscope ? cli_first_byte(kscope, argv[1], base) : 0;
		if (bare_start[i] < 0 || raw_start[i] < 0 || ks_start[i] < 0 || cli_start[i] < 0)
			return 1;
	}
	printf("microvm, TCG, 128M, demo kernel, %d runs each, medians in ms\n", runs);
	printf("raw QEMU runs the same VM (shared RAM file, pvpanic, qcow2 drive, gdbstub, "
	       "cpu_reset log);\na bare QEMU without those devices starts in %.2f ms\n",
	       median(bare_start, runs));
	printf("%-36s %10s %10s %10s\n", "", "raw QEMU", "kscope", "added");
	report("start to first serial byte (library)", raw_start, ks_start, runs);
	if (kscope)
		report("`kscope vm start` to first byte", raw_start, cli_start, runs);
	if (round_trips(loop, base, sock, runs, raw_rt, ks_rt) < 0)
		return 1;
	report("pause + resume round trip", raw_rt, ks_rt, runs);
	ks_loop_free(loop);
	rmdir(base);
	return 0;
}
