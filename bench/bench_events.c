/* bench_events.c: the event monitor next to bare gdbstub stops, its message rate, and what idle breakpoints cost. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/gdb.h>
#include <kscope/kt_abi.h>
#include <kscope/loop.h>
#include <kscope/mem.h>
#include <kscope/monitor.h>
#include <kscope/sites.h>
#include <kscope/sym.h>
#include <kscope/vm.h>

#define SEC 1000000000ll
#define MESSAGES "example_magic.many_messages"

struct run {
	struct ks_loop *loop;
	struct ks_vm *vm;
	struct ks_gdb *g;
	struct ks_mem *mem;
	struct ks_evrules *rules;
	struct ks_monitor *m;
	uint64_t *stops;      /* stop times of the events counted */
	size_t nstops, cap;
};

static const char *kernel;
static char base[64];
static struct ks_symtab *syms;

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v and returns its q-quantile (0.5: the median). */
static double quantile(double *v, size_t n, double q)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void die(const char *what, const struct ks_error *err)
{
	fprintf(stderr, "bench_events: %s: %s\n", what, err ? err->msg : strerror(errno));
	exit(1);
}

/* The demo kernel, paused before its first instruction, with gdb attached. */
static void boot(struct run *r, const char *filter, const char *cpus)
{
	struct ks_error err = { 0 };
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_vm_opts o;
	char append[128];

	memset(r, 0, sizeof(*r));
	r->loop = ks_loop_new(NULL);
	snprintf(append, sizeof(append), "kt.filter=%s", filter);
	if (ks_vmspec_set(s, "kernel", kernel, &err) < 0 ||
	    ks_vmspec_set(s, "accel", "tcg", &err) < 0 ||
	    ks_vmspec_set(s, "cpus", cpus, &err) < 0 ||
	    (filter && ks_vmspec_set(s, "append", append, &err) < 0))
		die("spec", &err);
	ks_vm_opts_init(&o);
	o.rundir_base = base;
	o.paused = true;
	if (!(r->vm = ks_vm_start(r->loop, s, &o, &err)))
		die("start", &err);
	ks_vmspec_free(s);
	if (!(r->g = ks_gdb_connect(r->loop, ks_vm_gdb_socket(r->vm), 10 * SEC, &err)))
		die("gdb", &err);
}

static void on_event(struct ks_monitor *m, const struct ks_event *ev, enum ks_evaction a,
		     void *data)
{
	struct run *r = data;
	(void)m, (void)a;

	if (r->nstops == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 1024;
		if (!(r->stops = realloc(r->stops, r->cap * sizeof(*r->stops))))
			die("memory", NULL);
	}
	r->stops[r->nstops++] = ev->ts_ns;
}

/* Attaches a monitor with one rule. Returns the time ks_monitor_new() took, in ms. */
static double attach_opts(struct run *r, const char *rule, bool no_emulation)
{
	struct ks_error err = { 0 };
	struct ks_monitor_opts mo;
	int fd = ks_vm_ram_fd(r->vm, 0);

	if (!(r->mem = ks_mem_new_mapped(ks_vm_ram(r->vm), &fd, &err)))
		die("mem", &err);
	r->rules = ks_evrules_new(NULL);
	if (ks_evrules_add_on(r->rules, rule, &err) < 0)
		die("rule", &err);
	ks_monitor_opts_init(&mo);
	mo.no_emulation = no_emulation;
	mo.on_event = on_event;
	mo.event_data = r;
	uint64_t t0 = ks_loop_now_ns();
	if (!(r->m = ks_monitor_new(r->loop, r->vm, r->g, r->mem, syms, r->rules, &mo, &err)))
		die("monitor", &err);
	return (double)(ks_loop_now_ns() - t0) / 1e6;
}

static double attach(struct run *r, const char *rule)
{
	return attach_opts(r, rule, false);
}

static void finish(struct run *r)
{
	ks_monitor_free(r->m);
	ks_gdb_free(r->g);
	ks_vm_free(r->vm);
	ks_mem_free(r->mem);
	ks_evrules_free(r->rules);
	ks_loop_free(r->loop);
	free(r->stops);
}

/* Resumes and waits for the guest to exit; returns the time in ms. */
static double run_to_exit(struct run *r)
{
	struct ks_error err = { 0 };
	uint64_t t0 = ks_loop_now_ns();

	if ((r->m ? ks_monitor_resume(r->m, &err) : ks_gdb_continue(r->g, &err)) < 0)
		die("resume", &err);
	if (ks_vm_wait(r->vm, 120 * SEC) < 0)
		die("the guest did not exit in time", NULL);
	double ms = (double)(ks_loop_now_ns() - t0) / 1e6;
	const struct ks_vm_outcome *o = ks_vm_outcome(r->vm);
	if (o->end != KS_VM_END_EXIT_CODE || o->exit_code != KT_EXIT_PASS) {
		fprintf(stderr, "bench_events: the run failed: %s\n", o->detail);
		exit(1);
	}
	return ms;
}

/* The magic site in many_messages: hit 1000 times in a tight loop. */
static ks_gva_t loop_site(void)
{
	struct ks_error err = { 0 };
	struct ks_sites *s = ks_sites_scan(kernel, syms, NULL, &err);
	const struct ks_site *v;
	ks_gva_t addr = 0;
	size_t n;

	if (!s)
		die("sites", &err);
	v = ks_sites_list(s, KS_SITE_MAGIC, &n);
	for (size_t i = 0; i < n && !addr; i++)
		if (v[i].sym && !strcmp(v[i].sym, "many_messages"))
			addr = v[i].addr;
	ks_sites_free(s);
	if (!addr)
		die("no magic site in many_messages", NULL);
	return addr;
}

/* The floor: a breakpoint on the site, continue, the stop, again (QEMU stops at once again
 * at the same breakpoint: nothing but the stop and the continue). */
static size_t floor_rt(ks_gva_t site, double *us, size_t n)
{
	struct ks_error err = { 0 };
	struct run r;

	boot(&r, MESSAGES, "2");
	if (ks_gdb_set_breakpoint(r.g, KS_GDB_BP_SW, site, 1, &err) < 0 ||
	    ks_gdb_continue(r.g, &err) < 0 || ks_gdb_wait_stop(r.g, NULL, 30 * SEC) < 0)
		die("floor", &err);
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = ks_loop_now_ns();

		if (ks_gdb_continue(r.g, &err) < 0 || ks_gdb_wait_stop(r.g, NULL, 10 * SEC) < 0)
			die("floor", &err);
		us[i] = (double)(ks_loop_now_ns() - t0) / 1e3;
	}
	finish(&r);
	return n;
}

/* One way to watch the loop: a rule, and whether the monitor may emulate. */
struct way {
	const char *label;
	char rule[64];
	bool no_emulation;
	double *us;           /* round trips of all rounds */
	size_t n;
	double per_s;         /* events per second, mean of the rounds */
	uint64_t emulated, stepped;
};

/* One event per pass of the loop: the time from one stop to the next is one round trip. */
static void monitor_rt(struct way *w, size_t max, int rounds)
{
	struct ks_monitor_stats st;
	struct run r;
	size_t n = 0;

	boot(&r, MESSAGES, "2");
	attach_opts(&r, w->rule, w->no_emulation);
	run_to_exit(&r);
	if (r.nstops < 2)
		die("too few events", NULL);
	for (size_t i = 1; i < r.nstops && n < max; i++)
		w->us[w->n + n++] = (double)(r.stops[i] - r.stops[i - 1]) / 1e3;
	w->n += n;
	w->per_s += (double)(r.nstops - 1) * 1e9 /
		    (double)(r.stops[r.nstops - 1] - r.stops[0]) / rounds;
	ks_monitor_stats(r.m, &st);
	w->emulated += st.emulated;
	w->stepped += st.stepped;
	finish(&r);
}

static void print_row(const char *label, double *v, size_t n, double f50, double f99)
{
	double m50 = quantile(v, n, 0.5), m99 = quantile(v, n, 0.99);

	printf("%-52s %8.1f %8.1f %8.2f %8.2f\n", label, m50, m99, m50 / f50, m99 / f99);
}

static void round_trips(int rounds)
{
	enum { N = 999, NWAYS = 4 };
	ks_gva_t site = loop_site();
	/* The loop is `xchg %bx,%bx; add $1,%rdi; cmp; jne`: a breakpoint on the magic
	 * instruction's address is passed as a nop, one on the add writes RDI and EFLAGS. */
	struct way ways[NWAYS] = {
		{ .label = "magic event (RIP moved past the site)" },
		{ .label = "breakpoint, nop emulated (xchg %bx,%bx)" },
		{ .label = "breakpoint, add emulated (RDI, EFLAGS written)" },
		{ .label = "breakpoint, single step (emulation off)", .no_emulation = true },
	};
	double *fl = calloc((size_t)rounds * N, sizeof(double));
	size_t nf = 0;

	snprintf(ways[0].rule, sizeof(ways[0].rule), "magic:0x101");
	snprintf(ways[1].rule, sizeof(ways[1].rule), "break:0x%llx", (unsigned long long)site);
	snprintf(ways[2].rule, sizeof(ways[2].rule), "break:0x%llx",
		 (unsigned long long)site + 3);
	snprintf(ways[3].rule, sizeof(ways[3].rule), "break:0x%llx", (unsigned long long)site);
	for (int k = 0; k < NWAYS; k++)
		if (!(ways[k].us = calloc((size_t)rounds * N, sizeof(double))))
			die("memory", NULL);
	if (!fl)
		die("memory", NULL);
	/* Rounds alternate, so that the machine's noise hits all of them alike. */
	for (int i = 0; i < rounds; i++) {
		nf += floor_rt(site, fl + nf, N);
		for (int k = 0; k < NWAYS; k++)
			monitor_rt(&ways[k], N, rounds);
	}
	double f50 = quantile(fl, nf, 0.5), f99 = quantile(fl, nf, 0.99);

	printf("one event's round trip: stop, registers, host callback, continue (us), "
	       "%d rounds of %d\n", rounds, N);
	printf("%-52s %8s %8s %8s %8s\n", "", "median", "p99", "x floor", "p99 x");
	printf("%-52s %8.1f %8.1f %8s %8s\n", "floor: bare gdbstub stop and continue", f50, f99,
	       "1.00", "1.00");
	for (int k = 0; k < NWAYS; k++)
		print_row(ways[k].label, ways[k].us, ways[k].n, f50, f99);
	for (int k = 0; k < NWAYS; k++) {
		printf("%s: %.0f events/s, sites emulated %llu, stepped %llu\n", ways[k].label,
		       ways[k].per_s, (unsigned long long)ways[k].emulated,
		       (unsigned long long)ways[k].stepped);
		free(ways[k].us);
	}
	printf("\n");
	free(fl);
}

/* Boot to exit of the default suites, without a monitor and with one breakpoint armed on a
 * function the suites never call (the opt-in triple_fault example). */
static void idle_cost(int runs, const char *rule)
{
	double *bare = calloc((size_t)runs, sizeof(double));
	double *armed = calloc((size_t)runs, sizeof(double));
	double setup = 0;

	for (int i = 0; i < runs; i++) {
		struct run r;

		/* Alternating, so that noise hits both alike. */
		boot(&r, NULL, "2");
		bare[i] = run_to_exit(&r);
		finish(&r);
		boot(&r, NULL, "2");
		setup += attach(&r, rule);
		armed[i] = run_to_exit(&r);
		finish(&r);
	}
	double b = quantile(bare, (size_t)runs, 0.5), a = quantile(armed, (size_t)runs, 0.5);

	printf("default suites, resume to exit, 2 vCPUs, median of %d (ms)\n", runs);
	printf("%-44s %8.1f\n", "gdb attached, no monitor", b);
	char what[96];
	snprintf(what, sizeof(what), "monitor, %s armed (idle)", rule);
	printf("%-44s %8.1f  %+.1f%%\n", what, a, (a - b) / b * 100);
	printf("%-44s %8.1f\n", "ks_monitor_new() for that rule (mean)", setup / runs);
	free(bare);
	free(armed);
}

int main(int argc, char **argv)
{
	struct ks_error err = { 0 };
	int runs = argc > 2 ? atoi(argv[2]) : 7;
	const char *idle_rule = argc > 3 ? argv[3] : "break:triple_fault";

	kernel = argc > 1 ? argv[1] : getenv("KSCOPE_DEMO_KERNEL");
	if (!kernel || runs < 1 || runs > 100) {
		fprintf(stderr, "usage: bench_events DEMO_KERNEL [RUNS [IDLE_RULE]]\n");
		return 2;
	}
	if (!(syms = ks_sym_load(kernel, &err)))
		die(kernel, &err);
	snprintf(base, sizeof(base), "/tmp/kscope-bench-events-XXXXXX");
	if (!mkdtemp(base))
		die("mkdtemp", NULL);
	printf("microvm, TCG, demo kernel %s\n\n", kernel);
	round_trips(runs < 3 ? runs : 3);
	idle_cost(runs, idle_rule);
	rmdir(base);
	ks_sym_free(syms);
	return 0;
}
