/* bench_mem.c: guest-physical reads through the RAM mapping, the gdbstub and a host memcpy; page-table walks per second; whole kscope peek commands. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kscope/chan.h>
#include <kscope/gdb.h>
#include <kscope/loop.h>
#include <kscope/mem.h>
#include <kscope/qmp.h>
#include <kscope/spawn.h>
#include <kscope/vm.h>
#include <kscope/vtop.h>

#define SEC 1000000000ll
#define MIB (1ull << 20)
#define READ_SIZE (64 * MIB)
#define READ_AT (16 * MIB)        /* guest-physical start of the 64 MiB read */
#define NADDR 4096                /* distinct pages translated, cycled */
#define NTRANS 1000000            /* translations per run */
#define MAX_RUNS 51
#define GDB_RUNS 3                /* 64 MiB through the gdbstub takes seconds */
#define CMD_RUNS 11               /* whole kscope commands, after one to warm up */
#define CMD_TARGET_MS 20.0
#define HANG "kt.filter=example_crash.hang"

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

/* What is measured: guest memory, and page tables with two sets of addresses in them. */
struct target {
	const char *what;
	struct ks_mem *mem;
	uint64_t cr3;
	bool la57;
	ks_gva_t small[NADDR], large[NADDR];  /* on 4 KiB pages, on 2 MiB or 1 GiB pages */
	size_t nsmall, nlarge;
	/* synthetic */
	int fd;
	struct ks_ram_file file;
	struct ks_ram_region region;
	struct ks_ram_layout layout;
	/* the demo kernel */
	struct ks_loop *loop;
	struct ks_vm *vm;
	struct ks_gdb *gdb;       /* on the demo kernel's gdbstub, for the fallback reader */
	char base[64];
};

/* ---- the demo kernel, paused in its hang case ---- */

static int boot_demo(struct target *t, const char *kernel)
{
	struct ks_error err = { 0 };
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_vm_opts o;
	char *out = NULL;
	int fds[16];

	ks_vmspec_set(s, "kernel", kernel, NULL);
	ks_vmspec_set(s, "accel", "tcg", NULL);
	ks_vmspec_set(s, "memory", "256M", NULL);
	ks_vmspec_set(s, "append", HANG, NULL);
	ks_vm_opts_init(&o);
	snprintf(t->base, sizeof(t->base), "/tmp/kscope-bench-mem-XXXXXX");
	if (!mkdtemp(t->base) || !(t->loop = ks_loop_new(&err)))
		goto fail;
	o.rundir_base = t->base;
	o.name = "bench";
	t->vm = ks_vm_start(t->loop, s, &o, &err);
	if (!t->vm)
		goto fail;
	if (ks_chan_wait_line(ks_vm_chan(t->vm, 0), "# Subtest: example_crash", 0, &(uint64_t){ 0 },
			      60 * SEC, NULL) < 0 ||
	    ks_vm_pause(t->vm, &err) < 0 ||
	    ks_qmp_hmp(ks_vm_qmp(t->vm), "info registers", &out, 10 * SEC, &err) < 0 ||
	    ks_vtop_regs_from_hmp(out, &t->cr3, &t->la57) < 0)
		goto fail;
	free(out);
	const struct ks_ram_layout *l = ks_vm_ram(t->vm);
	for (size_t i = 0; i < l->nfiles && i < 16; i++)
		fds[i] = ks_vm_ram_fd(t->vm, i);
	t->mem = ks_mem_new_mapped(l, fds, &err);
	if (!t->mem)
		goto fail;
	/* The VM is paused, as the gdbstub needs it to be for every request. */
	t->gdb = ks_gdb_connect(t->loop, ks_vm_gdb_socket(t->vm), 10 * SEC, &err);
	if (!t->gdb)
		goto fail;
	ks_vmspec_free(s);
	t->what = "demo kernel (microvm, TCG, 256 MiB, paused)";
	return 0;
fail:
	fprintf(stderr, "bench_mem: demo kernel: %s\n", err.msg[0] ? err.msg : "did not boot");
	free(out);
	ks_vmspec_free(s);
	return -1;
}

/* Picks the addresses to translate from the kernel's own mappings: up to NADDR pages of
 * each kind, the 4 KiB ones (kernel stacks, the user task) needing all four levels. */
static int pick_addresses(struct target *t)
{
	struct ks_error err = { 0 };
	struct ks_vtop_iter *it = ks_vtop_iter_new(t->mem, t->cr3, t->la57, &err);
	struct ks_vtop_range r;

	if (!it) {
		fprintf(stderr, "bench_mem: %s\n", err.msg);
		return -1;
	}
	while (ks_vtop_iter_next(it, &r, &err) == 1) {
		for (uint64_t off = 0; off < r.size; off += r.page_size) {
			if (r.page_size == 4096 && t->nsmall < NADDR)
				t->small[t->nsmall++] = r.gva + off + 0x123;
			else if (r.page_size > 4096 && t->nlarge < NADDR)
				t->large[t->nlarge++] = r.gva + off + 0x12345;
		}
	}
	ks_vtop_iter_free(it);
	return 0;
}

/* ---- synthetic: a memfd guest with 4 KiB and 2 MiB mappings of its own ---- */

static void put(uint8_t *ram, uint64_t gpa, uint64_t v)
{
	memcpy(ram + gpa, &v, 8);
}

static int synthetic(struct target *t)
{
	const uint64_t size = READ_AT + READ_SIZE + 16 * MIB, P = 1, W = 2, PS = 0x80;
	struct ks_error err = { 0 };

	t->fd = memfd_create("kscope-bench-ram", MFD_CLOEXEC);
	if (t->fd < 0 || ftruncate(t->fd, (off_t)size) < 0)
		return -1;
	uint8_t *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (ram == MAP_FAILED)
		return -1;
	/* PML4 at 1 MiB; PML4[0] -> PDPT; PDPT[0] -> PD; PD[0..7] -> 8 PTs (4096 pages at
	 * 0..16 MiB); PD[8..] 2 MiB pages. */
	uint64_t pml4 = 0x100000, pdpt = 0x101000, pd = 0x102000, pt = 0x103000;
	put(ram, pml4, pdpt | P | W);
	put(ram, pdpt, pd | P | W);
	for (unsigned i = 0; i < 8; i++)
		put(ram, pd + i * 8, (pt + i * 0x1000) | P | W);
	for (unsigned i = 0; i < NADDR; i++) {
		put(ram, pt + i * 8, ((uint64_t)i * 0x1000) | P | W);
		t->small[t->nsmall++] = (uint64_t)i * 0x1000 + 0x123;
	}
	for (unsigned i = 8; i < 512; i++)
		put(ram, pd + i * 8, ((uint64_t)i << 21) | P | W | PS);
	for (unsigned i = 0; i < NADDR; i++)
		t->large[t->nlarge++] = ((uint64_t)(8 + i % 504) << 21) + 0x12345;
	munmap(ram, size);
	t->cr3 = pml4;
	t->file = (struct ks_ram_file){ .path = "memfd", .size = size };
	t->region = (struct ks_ram_region){ .file = 0, .gpa = 0, .size = size };
	t->layout = (struct ks_ram_layout){ .files = &t->file, .nfiles = 1,
					    .regions = &t->region, .nregions = 1 };
	t->mem = ks_mem_new_mapped(&t->layout, &t->fd, &err);
	t->what = "synthetic (memfd guest, 96 MiB, tables built by the benchmark)";
	return t->mem ? 0 : -1;
}

/* ---- measurements ---- */

static double ms(uint64_t t0)
{
	return (double)(ks_loop_now_ns() - t0) / 1e6;
}

/* The gdbstub as a memory reader: what a VM whose RAM cannot be mapped falls back to. */
static int gdb_read(void *ctx, ks_gpa_t gpa, void *buf, size_t len)
{
	return ks_gdb_read_phys(ctx, gpa, buf, len, NULL);
}

/* Median ms of reading READ_SIZE bytes through the gdbstub, runs times; < 0 on failure. */
static double gdb_reads(struct target *t, uint8_t *dst, int runs)
{
	static const struct ks_mem_reader_ops ops = { .read = gdb_read };
	struct ks_error err = { 0 };
	struct ks_mem *m = ks_mem_new_reader(&ops, t->gdb, &err);
	double v[MAX_RUNS], result = -1;
	int i;

	for (i = 0; m && i < runs; i++) {
		uint64_t t0 = ks_loop_now_ns();
		if (ks_mem_read(m, READ_AT, dst, READ_SIZE, &err) < 0)
			break;
		v[i] = ms(t0);
	}
	if (m && i == runs)
		result = median(v, runs);
	else
		fprintf(stderr, "bench_mem: gdbstub read: %s\n", err.msg);
	ks_mem_free(m);
	return result;
}

static void bench_reads(struct target *t, int runs)
{
	double mapped[MAX_RUNS], host[MAX_RUNS], g = -1;
	uint8_t *dst = malloc(READ_SIZE), *src = malloc(READ_SIZE);
	int gruns = runs < GDB_RUNS ? runs : GDB_RUNS;

	if (!dst || !src)
		goto out;
	/* Touch everything once, so no run pays for first faults. */
	memset(src, 1, READ_SIZE);
	memset(dst, 0, READ_SIZE);
	ks_mem_read(t->mem, READ_AT, dst, READ_SIZE, NULL);
	for (int i = 0; i < runs; i++) {
		uint64_t t0 = ks_loop_now_ns();
		if (ks_mem_read(t->mem, READ_AT, dst, READ_SIZE, NULL) < 0)
			fprintf(stderr, "bench_mem: read failed\n");
		mapped[i] = ms(t0);
		t0 = ks_loop_now_ns();
		memcpy(dst, src, READ_SIZE);
		__asm__ volatile("" : : "r"(dst) : "memory");
		host[i] = ms(t0);
	}
	if (t->gdb)
		g = gdb_reads(t, dst, gruns);
	double m = median(mapped, runs), h = median(host, runs);
	printf("read 64 MiB of guest-physical memory        median ms     MiB/s\n");
	printf("  ks_mem_read (RAM mapping)                %10.2f %9.0f\n", m, 64 / (m / 1e3));
	if (g > 0)
		printf("  gdbstub (ks_gdb_read_phys, %zu B a read) %10.2f %9.1f   %d runs, %.0fx "
		       "the mapping\n", ks_gdb_max_read(t->gdb), g, 64 / (g / 1e3), gruns, g / m);
	else
		printf("  gdbstub (ks_gdb_read_phys)                        -         -   %s\n",
		       t->gdb ? "failed" : "no VM");
	printf("  memcpy host to host (the limit)          %10.2f %9.0f\n", h, 64 / (h / 1e3));
out:
	free(dst);
	free(src);
}

/* Translations per second over addrs, cycled, with the cache off or on. */
static double rate(struct target *t, const ks_gva_t *addrs, size_t n, bool cached)
{
	struct ks_vtop *v = ks_vtop_new(t->mem, NULL);
	ks_gpa_t gpa, sum = 0;
	int bad = 0;

	ks_vtop_set_cr3(v, t->cr3, t->la57);
	ks_vtop_cache(v, cached);
	for (size_t i = 0; i < n; i++)  /* warms the cache when it is on */
		ks_vtop_translate(v, addrs[i], &gpa, NULL);
	uint64_t t0 = ks_loop_now_ns();
	for (size_t i = 0; i < NTRANS; i++) {
		bad |= ks_vtop_translate(v, addrs[i % n], &gpa, NULL);
		sum += gpa;
	}
	double s = (double)(ks_loop_now_ns() - t0) / 1e9;
	__asm__ volatile("" : : "r"(sum));
	if (bad)
		fprintf(stderr, "bench_mem: a translation failed\n");
	ks_vtop_free(v);
	return NTRANS / s;
}

static void bench_translations(struct target *t, const char *what, const ks_gva_t *addrs,
			       size_t n, int runs)
{
	double off[MAX_RUNS], on[MAX_RUNS];

	if (!n) {
		printf("  %-40s none mapped\n", what);
		return;
	}
	for (int i = 0; i < runs; i++) {
		off[i] = rate(t, addrs, n, false);
		on[i] = rate(t, addrs, n, true);
	}
	double a = median(off, runs), b = median(on, runs);
	printf("  %-24s %5zu pages  %8.2f M/s %7.1f ns %8.2f M/s %7.1f ns\n", what, n, a / 1e6,
	       1e9 / a, b / 1e6, 1e9 / b);
}

/* ---- whole commands ---- */

/* Runs argv to its end with its output discarded; its exit status, or -1. */
static int run_cmd(char **argv)
{
	int status;
	pid_t pid = ks_spawn(argv, -1, NULL, 0, NULL);

	if (pid < 0 || ks_wait_pid(pid, 60 * SEC, &status) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* True once the console log of the VM in dir has the hang case's plan line. */
static bool in_hang_case(const char *log)
{
	char buf[16384];
	FILE *f = fopen(log, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = 0;
	return strstr(buf, "# Subtest: example_crash") != NULL;
}

/* Median ms of `kscope ARGS...` over CMD_RUNS runs after a first one; < 0 if one failed. */
static double time_cmd(char **argv)
{
	double v[CMD_RUNS];

	if (run_cmd(argv) != 0)
		return -1;
	for (int i = 0; i < CMD_RUNS; i++) {
		uint64_t t0 = ks_loop_now_ns();
		if (run_cmd(argv) != 0)
			return -1;
		v[i] = ms(t0);
	}
	return median(v, CMD_RUNS);
}

static void report_cmd(const char *what, double v, bool target)
{
	if (v < 0)
		printf("  %-40s   failed\n", what);
	else if (target)
		printf("  %-40s %8.2f ms   target %.0f ms: %s\n", what, v, CMD_TARGET_MS,
		       v <= CMD_TARGET_MS ? "met" : "MISSED");
	else
		printf("  %-40s %8.2f ms\n", what, v);
}

/*
 * `kscope peek NAME kt_state` and its kin as a user runs them, against a VM started by
 * `kscope vm start` in base (running, in the hang case): process start, connection to the
 * supervisor, symbol lookup, CR3 from QEMU, the walk, the read, the output.
 */
static void bench_commands(char *kscope, char *kernel, const char *base)
{
	char *start[] = { kscope, "vm", "start", "peekbench", "--kernel", kernel, "--accel",
			  "tcg", "--append", HANG, NULL };
	char *peek[] = { kscope, "peek", "peekbench", "kt_state", NULL };
	char *kt[] = { kscope, "peek", "peekbench", "kt_state", "--format", "kt", NULL };
	char *vtop[] = { kscope, "vtop", "peekbench", "kt_state", NULL };
	char *regs[] = { kscope, "regs", "peekbench", NULL };
	char *destroy[] = { kscope, "vm", "destroy", "peekbench", NULL };
	char log[256], image[256];
	char *dump[] = { kscope, "dump", "peekbench", "--phys", "0x1000000", "0x4000000", "-o",
			 image, NULL };

	setenv("KSCOPE_RUNDIR", base, 1);
	snprintf(image, sizeof(image), "%s/image.bin", base);
	snprintf(log, sizeof(log), "%s/peekbench/console.log", base);
	printf("\nwhole commands on a running VM (%d runs after a first, medians)\n", CMD_RUNS);
	uint64_t t0 = ks_loop_now_ns();
	if (run_cmd(start) != 0) {
		printf("  kscope vm start failed\n");
		goto out;
	}
	while (!in_hang_case(log) && ks_loop_now_ns() - t0 < 60 * SEC)
		usleep(10000);
	report_cmd("kscope peek NAME kt_state", time_cmd(peek), true);
	report_cmd("kscope peek NAME kt_state --format kt", time_cmd(kt), false);
	report_cmd("kscope vtop NAME kt_state", time_cmd(vtop), false);
	report_cmd("kscope regs NAME (pause, gdb, resume)", time_cmd(regs), false);
	report_cmd("kscope dump NAME --phys 16M 64M -o FILE", time_cmd(dump), false);
	unlink(image);
out:
	run_cmd(destroy);
	unsetenv("KSCOPE_RUNDIR");
}

int main(int argc, char **argv)
{
	const char *kernel = argc > 1 ? argv[1] : getenv("KSCOPE_DEMO_KERNEL");
	int runs = argc > 2 ? atoi(argv[2]) : 7;
	struct target t = { .fd = -1 };
	int rc = 1;

	char *kscope = argc > 3 ? argv[3] : NULL;

	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: bench_mem [KERNEL|-] [RUNS (1-%d)] [KSCOPE_BINARY]\n",
			MAX_RUNS);
		return 2;
	}
	if (kernel && strcmp(kernel, "-") && *kernel) {
		if (boot_demo(&t, kernel) < 0 || pick_addresses(&t) < 0)
			goto out;
	} else if (synthetic(&t) < 0) {
		fprintf(stderr, "bench_mem: synthetic guest: %s\n", strerror(errno));
		goto out;
	}
	printf("bench_mem: %s; %d runs, medians\n\n", t.what, runs);
	bench_reads(&t, runs);
	printf("\ntranslations (%d per run)                 uncached              cached\n", NTRANS);
	bench_translations(&t, "4 KiB pages (4 levels)", t.small, t.nsmall, runs);
	bench_translations(&t, "large pages (2-3 levels)", t.large, t.nlarge, runs);
	if (kscope && t.vm)
		bench_commands(kscope, (char *)kernel, t.base);
	rc = 0;
out:
	ks_gdb_free(t.gdb);
	ks_mem_free(t.mem);
	ks_vm_free(t.vm);
	ks_loop_free(t.loop);
	if (t.base[0])
		rmdir(t.base);
	if (t.fd >= 0)
		close(t.fd);
	return rc;
}
