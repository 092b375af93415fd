/* tests_smp.c: kt_ tests of SMP: every CPU runs work, per-CPU data, spinlocks, IPIs. */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/clock.h>
#include <arch/cpu.h>
#include <arch/fwcfg.h>
#include <arch/smp.h>
#include <arch/spinlock.h>
#include <arch/trap.h>
#include <arch/x86.h>
#include <kern/errno.h>
#include <kern/palloc.h>
#include <kt/ktest.h>

#define INCREMENTS 20000
#define PAGES_PER_CPU 32

static void need_aps(struct kt_test *t)
{
	if (smp_cpu_count() < 2)
		kt_skip(t, "only one CPU (boot with -smp 2 or more)");
}

static void cpu_count_matches_firmware(struct kt_test *t)
{
	unsigned int fw = fwcfg_cpu_count();

	KT_EXPECT_EQ(t, smp_cpu_count(), smp_expected_cpus());
	if (fw)
		KT_EXPECT_EQ(t, smp_cpu_count(), fw);
	kt_info(t, "%u CPU(s) online, fw_cfg says %u", smp_cpu_count(), fw);
}

struct cpu_report {
	volatile uint32_t ran, apic_id, index;
	volatile uint64_t gs_base, self, tr;
};

static struct cpu_report reports[MAX_CPUS];

static void report_self(void *arg)
{
	(void)arg;
	struct percpu *c = this_cpu();
	struct cpu_report *r = &reports[c->index];
	uint16_t tr;

	__asm__ volatile("str %0" : "=r"(tr));
	r->apic_id = lapic_id();
	r->index = c->index;
	r->gs_base = rdmsr(MSR_GS_BASE);
	r->self = (uint64_t)c;
	r->tr = tr;
	r->ran = 1;
}

static void every_cpu_reports_apic_id(struct kt_test *t)
{
	unsigned int n = smp_cpu_count(), ran = 0, dup = 0;

	for (unsigned int i = 0; i < MAX_CPUS; i++)
		reports[i] = (struct cpu_report){ 0 };
	KT_ASSERT_EQ(t, smp_call_all(report_self, NULL), 0);
	for (unsigned int i = 0; i < n; i++) {
		ran += reports[i].ran;
		KT_EXPECT_EQ(t, reports[i].apic_id, cpu_get(i)->apic_id);
		for (unsigned int j = i + 1; j < n; j++)
			dup += reports[i].apic_id == reports[j].apic_id;
		kt_info(t, "CPU %u: APIC id %u", i, reports[i].apic_id);
	}
	KT_EXPECT_EQ(t, ran, n);
	KT_EXPECT_EQ(t, dup, 0u);
}

static void percpu_data_per_cpu(struct kt_test *t)
{
	unsigned int n = smp_cpu_count();

	KT_ASSERT_EQ(t, smp_call_all(report_self, NULL), 0);
	for (unsigned int i = 0; i < n; i++) {
		KT_EXPECT_EQ(t, reports[i].index, i);
		KT_EXPECT_EQ(t, reports[i].gs_base, (uint64_t)cpu_get(i));
		KT_EXPECT_EQ(t, reports[i].self, (uint64_t)cpu_get(i));
		KT_EXPECT_EQ(t, reports[i].tr, (uint64_t)SEL_TSS); /* its own TSS is loaded */
	}
}

static void call_on_each_cpu(struct kt_test *t)
{
	for (unsigned int i = 0; i < smp_cpu_count(); i++) {
		reports[i].ran = 0;
		KT_EXPECT_EQ(t, smp_call_on(i, report_self, NULL), 0);
		KT_EXPECT_EQ(t, reports[i].ran, 1u);
		KT_EXPECT_EQ(t, reports[i].index, i);
	}
	KT_EXPECT_EQ(t, smp_call_on(smp_cpu_count(), report_self, NULL), -EINVAL);
	KT_EXPECT_EQ(t, smp_call_on(MAX_CPUS + 5, report_self, NULL), -EINVAL);
}

static spinlock_t counter_lock = SPINLOCK_INIT;
static uint64_t counter; /* a plain increment: only the lock makes it exact */

static void count_up(void *arg)
{
	(void)arg;
	for (int i = 0; i < INCREMENTS; i++) {
		spin_lock(&counter_lock);
		uint64_t v = *(volatile uint64_t *)&counter;
		*(volatile uint64_t *)&counter = v + 1;
		spin_unlock(&counter_lock);
	}
}

static void spinlock_counter_exact(struct kt_test *t)
{
	counter = 0;
	uint64_t t0 = clock_now_ns();
	KT_ASSERT_EQ(t, smp_call_all(count_up, NULL), 0);
	kt_info(t, "%u CPUs x %d increments in %lu us", smp_cpu_count(), INCREMENTS,
		(clock_now_ns() - t0) / 1000);
	KT_EXPECT_EQ(t, counter, (uint64_t)INCREMENTS * smp_cpu_count());
}

static void ipi_reaches_each_ap(struct kt_test *t)
{
	need_aps(t);
	for (unsigned int i = 1; i < smp_cpu_count(); i++) {
		struct percpu *c = cpu_get(i);
		uint64_t before = c->pings, end = clock_now_ns() + 500000000ull;
		lapic_send_ipi(c->apic_id, VEC_PING);
		while (c->pings == before && clock_now_ns() < end)
			cpu_relax();
		KT_EXPECT_EQ_MSG(t, c->pings, before + 1, "CPU %u (APIC id %u)", i, c->apic_id);
	}
}

static volatile uint64_t stamps[MAX_CPUS];

static void stamp_clock(void *arg)
{
	(void)arg;
	stamps[this_cpu()->index] = clock_now_ns();
}

static void clock_monotonic_across_cpus(struct kt_test *t)
{
	need_aps(t);
	/* One CPU after the other: each reading must follow the previous one's. */
	for (int round = 0; round < 3; round++) {
		uint64_t prev = clock_now_ns();
		for (unsigned int i = 1; i < smp_cpu_count(); i++) {
			smp_call_on(i, stamp_clock, NULL);
			KT_EXPECT_GE_MSG(t, stamps[i], prev, "CPU %u", i);
			prev = stamps[i];
		}
		KT_EXPECT_GE(t, clock_now_ns(), prev);
	}
}

static uint64_t grabbed[MAX_CPUS][PAGES_PER_CPU];

static void grab_pages(void *arg)
{
	(void)arg;
	for (int i = 0; i < PAGES_PER_CPU; i++)
		grabbed[this_cpu()->index][i] = palloc_alloc();
}

static void free_grabbed(void *arg)
{
	(void)arg;
	for (int i = 0; i < PAGES_PER_CPU; i++)
		if (grabbed[this_cpu()->index][i])
			palloc_free(grabbed[this_cpu()->index][i]);
}

static void palloc_concurrent(struct kt_test *t)
{
	unsigned int n = smp_cpu_count(), total = n * PAGES_PER_CPU, dup = 0, none = 0;
	const uint64_t *all = &grabbed[0][0];
	size_t before = palloc_free_pages();

	KT_ASSERT_EQ(t, smp_call_all(grab_pages, NULL), 0);
	for (unsigned int i = 0; i < total; i++) {
		none += all[i] == 0;
		for (unsigned int j = i + 1; j < total; j++)
			dup += all[i] && all[i] == all[j];
	}
	KT_EXPECT_EQ(t, none, 0u);
	KT_EXPECT_EQ_MSG(t, dup, 0u, "pages handed to two CPUs at once");
	KT_EXPECT_EQ(t, palloc_free_pages(), before - (total - none));
	smp_call_all(free_grabbed, NULL);
	KT_EXPECT_EQ(t, palloc_free_pages(), before);
}

static struct kt_case smp_cases[] = {
	KT_CASE(cpu_count_matches_firmware),
	KT_CASE(every_cpu_reports_apic_id),
	KT_CASE(percpu_data_per_cpu),
	KT_CASE(call_on_each_cpu),
	KT_CASE(spinlock_counter_exact),
	KT_CASE(ipi_reaches_each_ap),
	KT_CASE(clock_monotonic_across_cpus),
	KT_CASE(palloc_concurrent),
	{ .run = NULL },
};

static struct kt_suite smp_suite = { .name = "smp", .cases = smp_cases };
KT_SUITE(smp_suite);
