/* bench_mem.c: guest-physical reads through the RAM mapping next to a host memcpy, and page-table walks per second. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kscope/chan.h>
#include <kscope/loop.h>
#include <kscope/mem.h>
#include <kscope/qmp.h>
#include <kscope/vm.h>
#include <kscope/vtop.h>

#define SEC 1000000000ll
#define MIB (1ull << 20)
#define READ_SIZE (64 * MIB)
#define READ_AT (16 * MIB)        /* guest-physical start of the 64 MiB read */
#define NADDR 4096                /* distinct pages translated, cycled */
#define NTRANS 1000000            /* translations per run */
#define MAX_RUNS 51

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
	ks_vmspec_set(s, "append", "kt.filter=example_crash.hang", NULL);
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

static void bench_reads(struct target *t, int runs)
{
	double mapped[MAX_RUNS], host[MAX_RUNS];
	uint8_t *dst = malloc(READ_SIZE), *src = malloc(READ_SIZE);

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
	double m = median(mapped, runs), h = median(host, runs);
	printf("read 64 MiB of guest-physical memory        median ms     MiB/s\n");
	printf("  ks_mem_read (RAM mapping)                %10.2f %9.0f\n", m, 64 / (m / 1e3));
	printf("  memcpy host to host (the limit)          %10.2f %9.0f\n", h, 64 / (h / 1e3));
	/* The gdbstub fallback (ks_mem_new_reader over the gdb client) goes here. */
	printf("  gdbstub (ks_mem_new_reader)                       -         -   not measured yet\n");
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

int main(int argc, char **argv)
{
	const char *kernel = argc > 1 ? argv[1] : getenv("KSCOPE_DEMO_KERNEL");
	int runs = argc > 2 ? atoi(argv[2]) : 7;
	struct target t = { .fd = -1 };
	int rc = 1;

	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: bench_mem [KERNEL|-] [RUNS (1-%d)]\n", MAX_RUNS);
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
	rc = 0;
out:
	ks_mem_free(t.mem);
	ks_vm_free(t.vm);
	ks_loop_free(t.loop);
	if (t.base[0])
		rmdir(t.base);
	if (t.fd >= 0)
		close(t.fd);
	return rc;
}
