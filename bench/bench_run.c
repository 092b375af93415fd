/* bench_run.c: kscope run next to raw QEMU, --jobs 2 next to --jobs 1, snapshot restores next to reboots. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/loop.h>
#include <kscope/qemu_argv.h>
#include <kscope/spawn.h>
#include <kscope/unixsock.h>
#include <kscope/vmspec.h>

#include "vm_internal.h"

#define SEC 1000000000ll
#define MAXRUNS 101

static char dir[] = "/tmp/kscope-bench-run-XXXXXX";

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Reads the Unix socket at path to its end, connecting as soon as it is there. */
static void read_socket(const char *path)
{
	int fd = ks_unix_connect(NULL, path, 10 * SEC, "console", NULL);
	char buf[16384];

	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
	if (fd >= 0)
		close(fd);
}

/* Runs argv to its end, output thrown away, reading the console socket `console` meanwhile
 * when not NULL; the wall time in ms, or -1 when it failed (an exit status other than want). */
static double timed_reading(char *const *argv, int want, const char *console)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC), status;
	uint64_t t0 = ks_loop_now_ns();
	pid_t pid = ks_spawn(argv, null, NULL, 0, NULL);
	double ms;

	close(null);
	if (pid > 0 && console)
		read_socket(console);
	if (pid < 0 || ks_wait_pid(pid, 120 * SEC, &status) < 0)
		return -1;
	ms = (double)(ks_loop_now_ns() - t0) / 1e6;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != want) {
		fprintf(stderr, "bench_run: %s ... exited with status %d\n", argv[0],
			WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -1;
	}
	return ms;
}

static double timed(char *const *argv, int want)
{
	return timed_reading(argv, want, NULL);
}

/*
 * QEMU as kscope run starts it for the demo kernel's default suites (microvm, TCG, 4 CPUs,
 * 128 MiB in a shared /dev/shm file, QMP, gdbstub and serial sockets, pvpanic, a qcow2 drive
 * for snapshots, the cpu_reset log, no-reboot and pause at shutdown), run to its exit. With
 * `reader`, a client reads COM1 as kscope does (from when its socket is there: QEMU does not
 * wait for it, the kernel's first line comes later); without, QEMU drops what the kernel
 * prints, without a write.
 */
static double raw_qemu(const char *kernel, bool reader)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	char qmp[128], gdb[128], ser[128], qcow2[128], dlog[128], ram[96], **argv = NULL;
	const char *serial[] = { ser, NULL };
	struct ks_qemu_paths p = { .accel = KS_ACCEL_TCG, .ram = ram, .qmp = qmp, .gdb = gdb,
				   .serial = serial, .vmstate = qcow2, .log = dlog,
				   .log_items = "cpu_reset", .no_reboot = true,
				   .shutdown_pause = true, .pvpanic = true, .debug_exit = true };
	double ms = -1;

	snprintf(qmp, sizeof(qmp), "%s/qmp.sock", dir);
	snprintf(gdb, sizeof(gdb), "%s/gdb.sock", dir);
	snprintf(ser, sizeof(ser), "%s/serial0.sock", dir);
	snprintf(qcow2, sizeof(qcow2), "%s/vmstate.qcow2", dir);
	snprintf(dlog, sizeof(dlog), "%s/qemu-debug.log", dir);
	snprintf(ram, sizeof(ram), "/dev/shm/kscope-bench-run-%d", (int)getpid());
	ks_vmspec_set(s, "kernel", kernel, NULL);
	ks_vmspec_set(s, "accel", "tcg", NULL);
	ks_vmspec_set(s, "cpus", "4", NULL);
	if (ks_qcow2_create(qcow2, 1ull << 30, NULL) == 0 && ks_qemu_argv_build(s, &p, &argv, NULL) == 0)
		ms = timed_reading(argv, (0x10 << 1) | 1, reader ? ser : NULL);
	ks_qemu_argv_free(argv);
	ks_vmspec_free(s);
	unlink(ram);
	unlink(qcow2);
	unlink(dlog);
	unlink(qmp);
	unlink(gdb);
	unlink(ser);
	return ms;
}

/* The plain QEMU command that `make run` used before kscope run: COM1 to a pipe (read to
 * the end here), no sockets, no shared RAM file; the extra arguments append. */
static pid_t plain_qemu(const char *kernel, const char *cpus, const char *append, int out)
{
	char *argv[] = { "qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-smp",
			 (char *)cpus, "-m", "128M", "-nodefaults", "-nographic", "-no-reboot",
			 "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
			 "-kernel", (char *)kernel, append[0] ? "-append" : NULL, (char *)append,
			 NULL };

	return ks_spawn(argv, out, NULL, 0, NULL);
}

/* Runs the plain QEMUs of the appends at once (together) or one after the other; ms. */
static double plain_runs(const char *kernel, const char *cpus, const char *const *appends,
			 bool together)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC), status;
	pid_t pids[4];
	size_t n = 0;
	uint64_t t0 = ks_loop_now_ns();

	for (; appends[n] && n < 4; n++) {
		pids[n] = plain_qemu(kernel, cpus, appends[n], null);
		if (!together && (pids[n] < 0 || ks_wait_pid(pids[n], 120 * SEC, &status) < 0))
			return -1;
	}
	for (size_t i = 0; together && i < n; i++)
		if (pids[i] < 0 || ks_wait_pid(pids[i], 120 * SEC, &status) < 0)
			return -1;
	close(null);
	return (double)(ks_loop_now_ns() - t0) / 1e6;
}

/* kscope run KERNEL --accel tcg --plain --log-dir DIR/logs ARGS... (NULL-terminated). */
static double kscope_run(const char *kscope, const char *kernel, int want, ...)
{
	char logs[96];
	const char *argv[40] = { kscope, "run", kernel, "--accel", "tcg", "--plain", "--log-dir",
				 logs };
	int n = 8;
	va_list ap;

	snprintf(logs, sizeof(logs), "%s/logs", dir);
	va_start(ap, want);
	while (n < 39 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	return timed((char *const *)argv, want);
}

/* One comparison: a and b alternate, runs times each; prints both medians and how they
 * compare. Returns false when a run failed. */
struct side {
	const char *name;
	double (*fn)(const void *arg);
	const void *arg;
};

static bool compare(const char *what, const struct side *a, const struct side *b, int runs,
		    double *ma, double *mb)
{
	double va[MAXRUNS], vb[MAXRUNS];

	for (int i = 0; i < runs; i++) {
		if ((va[i] = a->fn(a->arg)) < 0 || (vb[i] = b->fn(b->arg)) < 0)
			return false;
	}
	*ma = median(va, runs);
	*mb = median(vb, runs);
	printf("%-44s %-26s %9.1f ms   %-26s %9.1f ms   ratio %.2f\n", what, a->name, *ma,
	       b->name, *mb, *ma / *mb);
	fflush(stdout);
	return true;
}

struct args {
	const char *kscope, *demo, *bench;
};

static double raw_demo(const void *x)
{
	return raw_qemu(((const struct args *)x)->demo, false);
}

static double raw_demo_reader(const void *x)
{
	return raw_qemu(((const struct args *)x)->demo, true);
}

static double run_demo(const void *x)
{
	const struct args *a = x;

	return kscope_run(a->kscope, a->demo, 0, "--cpus", "4", "--jobs", "1", NULL);
}

/* The demo kernel without kt_ (no symbols, no kt_magic_sites): followed by KTAP alone. */
static char ktap_only[128];

static double run_ktap_only(const void *x)
{
	const struct args *a = x;

	return kscope_run(a->kscope, ktap_only, 0, "--cpus", "4", "--jobs", "1", NULL);
}

static bool make_ktap_only(const char *demo)
{
	char *argv[] = { "objcopy", "--strip-all", "--remove-section=kt_magic_sites",
			 (char *)demo, ktap_only, NULL };

	snprintf(ktap_only, sizeof(ktap_only), "%s/demo-ktap-only.elf", dir);
	return timed(argv, 0) >= 0;
}

static double plain_demo(const void *x)
{
	const char *const one[] = { "", NULL };

	return plain_runs(((const struct args *)x)->demo, "4", one, false);
}

/* Raw QEMU's own gain on this machine: the 16 suites in one VM, or in two halves of 8 in two
 * VMs at once (the split --jobs 2 makes). */
static const char *const halves[] = {
	"kt.filter=bench_s00,bench_s02,bench_s04,bench_s06,bench_s08,bench_s10,bench_s12,bench_s14",
	"kt.filter=bench_s01,bench_s03,bench_s05,bench_s07,bench_s09,bench_s11,bench_s13,bench_s15",
	NULL,
};

static double raw_together(const void *x)
{
	return plain_runs(((const struct args *)x)->bench, "2", halves, true);
}

static double raw_one_vm(const void *x)
{
	const char *const all[] = { "kt.filter=bench_s*", NULL };

	return plain_runs(((const struct args *)x)->bench, "2", all, false);
}

static double run_jobs(const struct args *a, const char *jobs)
{
	return kscope_run(a->kscope, a->bench, 0, "--cpus", "2", "--filter", "bench_s*",
			  "--jobs", jobs, NULL);
}

static double jobs1(const void *x) { return run_jobs(x, "1"); }
static double jobs2(const void *x) { return run_jobs(x, "2"); }

static double isolate(const struct args *a, const char *kernel, const char *suite,
		      const char *how)
{
	return kscope_run(a->kscope, kernel, 0, "--cpus", "2", "--jobs", "1", "--filter", suite,
			  "--filter", "irq", "--isolate", how, NULL);
}

static double demo_snapshot(const void *x)
{
	return isolate(x, ((const struct args *)x)->demo, "example_destructive", "snapshot");
}

static double demo_reboot(const void *x)
{
	return isolate(x, ((const struct args *)x)->demo, "example_destructive", "reboot");
}

static double bench_snapshot(const void *x)
{
	return isolate(x, ((const struct args *)x)->bench, "bench_destructive", "snapshot");
}

static double bench_reboot(const void *x)
{
	return isolate(x, ((const struct args *)x)->bench, "bench_destructive", "reboot");
}

/* Whether comparison `name` is in the comma-separated list `which` (NULL: every one). */
static bool wanted(const char *which, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = which; p && *p; p += strcspn(p, ","), p += *p == ',')
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return true;
	return !which;
}

/* kscope run next to raw QEMU: same argv, a console reader, -serial stdio, without kt_. */
static bool demo_pairs(const struct args *a, const char *which, int runs)
{
	const struct side run = { "kscope run --jobs 1", run_demo, a },
			  raw = { "raw QEMU, same argv", raw_demo, a },
			  rdr = { "raw QEMU + COM1 reader", raw_demo_reader, a },
			  plain = { "raw QEMU, -serial stdio", plain_demo, a },
			  ktap = { "kscope run, KTAP only", run_ktap_only, a };
	const char *what = "demo kernel, default suites, -smp 4";
	double m1, m2;
	bool ok = true;

	if (wanted(which, "demo") && (ok = compare(what, &run, &raw, runs, &m1, &m2)))
		printf("  kscope run adds %.1f%% (target: at most 15%%)\n", (m1 / m2 - 1) * 100);
	if (ok && wanted(which, "reader") && (ok = compare(what, &rdr, &raw, runs, &m1, &m2)))
		printf("  reading COM1 as it comes adds %.1f%% to raw QEMU\n", (m1 / m2 - 1) * 100);
	if (ok && wanted(which, "plain") && (ok = compare(what, &run, &plain, runs, &m1, &m2)))
		printf("  kscope run adds %.1f%% to the command make run used before\n",
		       (m1 / m2 - 1) * 100);
	if (ok && wanted(which, "ktap") && !make_ktap_only(a->demo)) {
		printf("  (no objcopy: kscope run on the demo kernel without kt_ not measured)\n");
	} else if (ok && wanted(which, "ktap") && (ok = compare(what, &run, &ktap, runs, &m1,
								 &m2))) {
		printf("  following kt_ (the READY stop, kt_state) adds %.1f ms\n", m1 - m2);
	}
	return ok;
}

int main(int argc, char **argv)
{
	struct args a;
	int runs = argc > 4 ? atoi(argv[4]) : 11;
	const char *which = argc > 5 ? argv[5] : NULL;
	double m1, m2;
	bool ok = true;

	if (argc < 4 || runs < 1 || runs > MAXRUNS) {
		fprintf(stderr, "usage: bench_run KSCOPE DEMO_KERNEL BENCH_KERNEL [RUNS [WHICH]]\n"
			"  WHICH: comma-separated, from demo,reader,plain,ktap,jobs,raw,isolate "
			"(default: all)\n");
		return 2;
	}
	a = (struct args){ argv[1], argv[2], argv[3] };
	if (!mkdtemp(dir))
		return 1;
	setenv("KSCOPE_RUNDIR", dir, 1);
	printf("bench_run: %d runs each, alternating; medians\n", runs);
	ok = demo_pairs(&a, which, runs);
	const struct side j2 = { "--jobs 2", jobs2, &a }, j1 = { "--jobs 1", jobs1, &a };
	if (ok && wanted(which, "jobs") &&
	    (ok = compare("16 suites of fixed work (kscope-bench.elf)", &j2, &j1, runs, &m1, &m2)))
		printf("  --jobs 2 is %.2fx as fast as --jobs 1 (target: at least 1.6x)\n", m2 / m1);
	const struct side rt = { "raw QEMU, 2 VMs of 8", raw_together, &a },
			  ri = { "raw QEMU, 1 VM of 16", raw_one_vm, &a };
	if (ok && wanted(which, "raw") &&
	    (ok = compare("the same 16 suites without kscope", &rt, &ri, runs, &m1, &m2)))
		printf("  raw QEMU itself gains %.2fx from two VMs on this machine\n", m2 / m1);
	const struct side ds = { "--isolate snapshot", demo_snapshot, &a },
			  dr = { "--isolate reboot", demo_reboot, &a },
			  bs = { "--isolate snapshot", bench_snapshot, &a },
			  br = { "--isolate reboot", bench_reboot, &a };
	if (ok && wanted(which, "isolate"))
		ok = compare("1 destructive test + irq (demo)", &ds, &dr, runs, &m1, &m2) &&
		     compare("4 destructive tests + irq (kscope-bench.elf)", &bs, &br, runs, &m1,
			     &m2);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		ok = false;
	return ok ? 0 : 1;
}
