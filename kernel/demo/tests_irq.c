/* tests_irq.c: kt_ tests of exceptions (recovered), the APIC timer, IPIs and the clock. */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/clock.h>
#include <arch/cpu.h>
#include <arch/layout.h>
#include <arch/paging.h>
#include <arch/trap.h>
#include <arch/x86.h>
#include <kt/ktest.h>

#define MS 1000000ull

/* Faulting instructions at known addresses (the *_at labels) for the RIP checks. */
__asm__(".pushsection .text\n"
	".globl irqt_int3, irqt_int3_after, irqt_ud2, irqt_div0, irqt_div0_at, irqt_gp, irqt_gp_at\n"
	"irqt_int3:\n\tint3\nirqt_int3_after:\n\tret\n"
	"irqt_ud2:\n\tud2\n\tret\n"
	"irqt_div0:\n\txor %ecx, %ecx\n\tmov $1, %eax\n\txor %edx, %edx\n"
	"irqt_div0_at:\n\tdiv %ecx\n\tret\n"
	"irqt_gp:\n\tmovabs $0x8000000000000000, %rax\n"
	"irqt_gp_at:\n\tmov (%rax), %rax\n\tret\n"
	".popsection");

void irqt_int3(void), irqt_ud2(void), irqt_div0(void), irqt_gp(void);
extern char irqt_int3_after[], irqt_div0_at[], irqt_gp_at[];

static void call_fn(void *fn)
{
	((void (*)(void))fn)();
}

/* Runs fn, which must fault with vector at rip (error code error). */
static void expect_fault(struct kt_test *t, void (*fn)(void), int vector, const void *rip,
			 uint64_t error)
{
	struct trap_catch c;

	KT_ASSERT_TRUE_MSG(t, trap_run_catching(call_fn, (void *)fn, &c), "no exception");
	KT_EXPECT_EQ(t, c.vector, vector);
	KT_EXPECT_EQ(t, c.rip, (uint64_t)rip);
	KT_EXPECT_EQ(t, c.error, error);
}

static void int3_recovered(struct kt_test *t)
{
	/* A trap: the saved RIP is the instruction after int3. */
	expect_fault(t, irqt_int3, VEC_BP, irqt_int3_after, 0);
}

static void ud2_recovered(struct kt_test *t)
{
	expect_fault(t, irqt_ud2, VEC_UD, (const void *)irqt_ud2, 0);
}

static void divide_error_recovered(struct kt_test *t)
{
	expect_fault(t, irqt_div0, VEC_DE, irqt_div0_at, 0);
}

static void general_protection_recovered(struct kt_test *t)
{
	/* A non-canonical address: #GP with error code 0. */
	expect_fault(t, irqt_gp, VEC_GP, irqt_gp_at, 0);
}

static void read_u64(void *p)
{
	(void)*(volatile uint64_t *)p;
}

static void write_u64(void *p)
{
	*(volatile uint64_t *)p = 1;
}

static void page_fault_recovered(struct kt_test *t)
{
	struct trap_catch c;
	uint64_t va = paging_vmap_reserve(1) + 0x238; /* reserved, never mapped */

	KT_ASSERT_TRUE(t, trap_run_catching(read_u64, (void *)va, &c));
	KT_EXPECT_EQ(t, c.vector, VEC_PF);
	KT_EXPECT_EQ(t, c.cr2, va);
	KT_EXPECT_EQ(t, c.error, 0u); /* supervisor read of a not-present page */
	KT_ASSERT_TRUE(t, trap_run_catching(write_u64, (void *)va, &c));
	KT_EXPECT_EQ(t, c.cr2, va);
	KT_EXPECT_EQ(t, c.error, (uint64_t)PF_WRITE);
}

static void fault_restores_irq_state(struct kt_test *t)
{
	struct trap_catch outer, inner;

	irq_enable();
	KT_EXPECT_TRUE(t, trap_run_catching(call_fn, (void *)irqt_ud2, &inner));
	KT_EXPECT_TRUE(t, irq_enabled());
	irq_disable();
	KT_EXPECT_TRUE(t, trap_run_catching(call_fn, (void *)irqt_ud2, &inner));
	KT_EXPECT_FALSE(t, irq_enabled());
	irq_enable();
	/* Nested records: the innermost catches, the outer stays armed. */
	if (TRAP_TRY(&outer)) {
		bool caught = trap_run_catching(call_fn, (void *)irqt_int3, &inner);
		trap_catch_disarm(&outer);
		KT_EXPECT_TRUE(t, caught);
		KT_EXPECT_EQ(t, inner.vector, VEC_BP);
		KT_EXPECT_EQ(t, outer.vector, -1);
	} else {
		KT_FAIL(t, "the outer record caught vector %d", outer.vector);
	}
}

/* Waits (halting) until this CPU's tick count reaches target or timeout_ns passes. */
static bool wait_ticks(uint64_t target, uint64_t timeout_ns)
{
	uint64_t end = clock_now_ns() + timeout_ns;

	while (this_cpu()->ticks < target && clock_now_ns() < end)
		sti_hlt();
	return this_cpu()->ticks >= target;
}

static void timer_ticks_advance(struct kt_test *t)
{
	irq_enable();
	KT_ASSERT_TRUE(t, lapic_timer_running());
	/* Start on a tick edge, then time three periods of 10 ms. */
	KT_ASSERT_TRUE_MSG(t, wait_ticks(this_cpu()->ticks + 1, 500 * MS), "no timer interrupt");
	uint64_t t0 = clock_now_ns(), first = this_cpu()->ticks;
	KT_ASSERT_TRUE(t, wait_ticks(first + 3, 1000 * MS));
	uint64_t elapsed = clock_now_ns() - t0;
	kt_info(t, "3 ticks in %lu us (timer %lu Hz after the divider)", elapsed / 1000,
		lapic_timer_hz());
	KT_EXPECT_GE(t, elapsed, 20 * MS);
	KT_EXPECT_LE(t, elapsed, 200 * MS);
}

static void clock_monotonic(struct kt_test *t)
{
	uint64_t first = clock_now_ns(), prev = first;
	unsigned int backwards = 0;

	for (int i = 0; i < 10000; i++) {
		uint64_t now = clock_now_ns();
		backwards += now < prev;
		prev = now;
	}
	KT_EXPECT_EQ(t, backwards, 0u);
	KT_EXPECT_GT(t, prev, first);
	KT_EXPECT_GE(t, kt_arch_now_ns(), prev);
}

static void clock_matches_pit(struct kt_test *t)
{
	uint64_t pit_ns = 0;

	if (!clock_used_pit())
		kt_skip(t, "no PIT to compare with");
	uint64_t ns = clock_measure_pit(5966, &pit_ns); /* 5 ms */
	kt_info(t, "PIT %lu ns, clock %lu ns", pit_ns, ns);
	/* Within 10%: TCG adds jitter but no drift. */
	KT_EXPECT_GE(t, ns * 10, pit_ns * 9);
	KT_EXPECT_LE(t, ns * 10, pit_ns * 11);
}

static void self_ipi_delivered(struct kt_test *t)
{
	uint64_t before = this_cpu()->pings;
	uint64_t end = clock_now_ns() + 100 * MS;

	irq_enable();
	lapic_send_ipi(this_cpu()->apic_id, VEC_PING);
	while (this_cpu()->pings == before && clock_now_ns() < end)
		cpu_relax();
	KT_EXPECT_EQ(t, this_cpu()->pings, before + 1);
}

/* Every case leaves interrupts on, as the kernel runs, whatever it did. */
static void irq_case_exit(struct kt_test *t)
{
	(void)t;
	irq_enable();
}

static struct kt_case irq_cases[] = {
	KT_CASE(int3_recovered),
	KT_CASE(ud2_recovered),
	KT_CASE(divide_error_recovered),
	KT_CASE(general_protection_recovered),
	KT_CASE(page_fault_recovered),
	KT_CASE(fault_restores_irq_state),
	KT_CASE(timer_ticks_advance),
	KT_CASE(clock_monotonic),
	KT_CASE(clock_matches_pit),
	KT_CASE(self_ipi_delivered),
	{ .run = NULL },
};

static struct kt_suite irq_suite = { .name = "irq", .cases = irq_cases, .exit = irq_case_exit };
KT_SUITE(irq_suite);
