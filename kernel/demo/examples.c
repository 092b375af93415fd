/* examples.c: opt-in kt_ suites that misbehave on purpose (failures, crashes, a hang...). */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/clock.h>
#include <arch/cpu.h>
#include <arch/x86.h>
#include <kt/ktest.h>

/* Hosts test their handling of each outcome with these exact suite.case names. They run only
 * when a kt.filter selects them. */

static void expect_fail(struct kt_test *t)
{
	KT_EXPECT_EQ(t, 1 + 1, 3);     /* fails, and the case goes on */
	KT_EXPECT_EQ(t, 2 + 2, 4);     /* passes */
}

static void check_zero(struct kt_test *t, int v)
{
	KT_ASSERT_EQ(t, v, 0); /* aborts the whole case from a helper */
}

static void assert_fail(struct kt_test *t)
{
	check_zero(t, 1);
	KT_FAIL(t, "not reached: the assertion above aborts the case");
}

static struct kt_case fail_cases[] = {
	KT_CASE(expect_fail),
	KT_CASE(assert_fail),
	{ .run = NULL },
};

static struct kt_suite example_fail = {
	.name = "example_fail", .cases = fail_cases, .flags = KT_OPT_IN,
};
KT_SUITE(example_fail);

static void page_fault(struct kt_test *t)
{
	(void)t;
	/* Unmapped and not expected: the panic path (report, KT_MAGIC_PANIC, host told). */
	*(volatile uint64_t *)0xdead0000 = 1;
}

static void triple_fault(struct kt_test *t)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty_idt = { 0, 0 };

	(void)t;
	/* #UD finds no gate, nor does the #GP for that, nor the #DF: the CPU resets. */
	__asm__ volatile("cli; lidt %0; ud2" : : "m"(empty_idt));
}

static void hang(struct kt_test *t)
{
	(void)t;
	irq_disable();
	for (;;)
		cpu_relax();
}

static struct kt_case crash_cases[] = {
	KT_CASE(page_fault),
	KT_CASE(triple_fault),
	KT_CASE(hang),
	{ .run = NULL },
};

static struct kt_suite example_crash = {
	.name = "example_crash", .cases = crash_cases, .flags = KT_OPT_IN,
};
KT_SUITE(example_crash);

static void break_timer(struct kt_test *t)
{
	lapic_timer_stop();
	uint64_t before = this_cpu()->ticks;
	irq_enable();
	clock_delay_ns(30000000); /* three periods */
	KT_EXPECT_FALSE(t, lapic_timer_running());
	KT_EXPECT_EQ_MSG(t, this_cpu()->ticks, before, "the timer still ticks");
	/* Left stopped on purpose: later timer tests would fail. */
}

static struct kt_case destructive_cases[] = {
	KT_CASE_FLAGS(break_timer, KT_DESTRUCTIVE),
	{ .run = NULL },
};

static struct kt_suite example_destructive = {
	.name = "example_destructive", .cases = destructive_cases, .flags = KT_OPT_IN,
};
KT_SUITE(example_destructive);

static void many_messages(struct kt_test *t)
{
	for (uint64_t i = 0; i < 1000; i++)
		KT_MAGIC(KT_MAGIC_USER + 1, i);
	KT_EXPECT_TRUE(t, true);
}

static struct kt_case magic_cases[] = {
	KT_CASE(many_messages),
	{ .run = NULL },
};

static struct kt_suite example_magic = {
	.name = "example_magic", .cases = magic_cases, .flags = KT_OPT_IN,
};
KT_SUITE(example_magic);
