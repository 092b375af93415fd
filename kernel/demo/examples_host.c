/* examples_host.c: the opt-in example_host suite: cases that wait for a host to act on them. */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/clock.h>
#include <arch/cpu.h>
#include <arch/layout.h>
#include <arch/paging.h>
#include <arch/syscall.h>
#include <arch/x86.h>
#include <kern/cmdline.h>
#include <kern/errno.h>
#include <kern/host.h>
#include <kern/kmain.h>
#include <kt/ktest.h>

/* Hosts test their introspection with these: each case waits until the host writes memory
 * from outside, or fails after a timeout (20 s unless the command line says otherwise). */

#define DEFAULT_TIMEOUT_MS 20000
#define MAX_TIMEOUT_MS 86400000 /* a day: keeps ms * TSC rate far from overflowing */

extern char user_blob_start[], user_prog_spin[];

/* The timeout the command line sets with key=MS, else DEFAULT_TIMEOUT_MS. A bad value fails
 * the case rather than waiting for a surprising time. */
static uint64_t timeout_ms(struct kt_test *t, const char *key)
{
	uint64_t ms = DEFAULT_TIMEOUT_MS;

	if (cmdline_get_u64(kmain_cmdline(), key, &ms) == -EINVAL)
		KT_ASSERT_FAIL(t, "%s wants a decimal number of milliseconds", key);
	KT_ASSERT_LE_MSG(t, ms, MAX_TIMEOUT_MS, "%s is longer than a day", key);
	return ms;
}

static uint64_t mailbox_wait(uint64_t ms)
{
	uint64_t deadline = kt_arch_now_ns() + ms * 1000000;
	uint64_t v;

	/* A write from the host raises no interrupt: the next timer tick ends each hlt. */
	while (!(v = demo_mailbox) && kt_arch_now_ns() < deadline)
		sti_hlt();
	return v;
}

static void mailbox(struct kt_test *t)
{
	uint64_t ms = timeout_ms(t, "demo.mailbox_timeout_ms");

	KT_ASSERT_TRUE_MSG(t, lapic_timer_running(), "the timer is stopped: no tick would wake "
			   "the wait");
	demo_mailbox = 0;
	demo_mailbox_ack = 0;
	kt_info(t, "waiting");
	uint64_t v = mailbox_wait(ms);
	/* Before the line below: a host that saw the value printed finds the ack written. */
	if (v)
		demo_mailbox_ack = v + 1;
	kt_info(t, "0x%lx", v);
	if (!v)
		KT_ASSERT_FAIL(t, "no value from the host in demo_mailbox within %lu ms", ms);
	KT_EXPECT_EQ_MSG(t, v, DEMO_MAILBOX_MAGIC, "the host wrote 0x%lx, not 0x%llx", v,
			 DEMO_MAILBOX_MAGIC);
}

/* Prints where the flag and the spinning code are, virtual and physical (the kernel's own
 * walk); returns the flag's physical address. */
static uint64_t ring3_spin_report(struct kt_test *t, uint64_t code_va)
{
	uint64_t flag_pa, code_pa, flags;
	uint64_t nx = cpu_nx_enabled() ? PTE_NX : 0;

	KT_ASSERT_EQ(t, paging_translate(USER_DATA_VA, &flag_pa, &flags), 0);
	KT_ASSERT_EQ(t, flag_pa, user_data_pa());
	KT_ASSERT_EQ(t, flags & (PTE_U | PTE_W | PTE_NX), PTE_U | PTE_W | nx);
	KT_ASSERT_EQ(t, paging_translate(code_va, &code_pa, NULL), 0);
	/* The flag line last: a host may act as soon as it sees it. */
	kt_info(t, "code va 0x%lx pa 0x%lx", code_va, code_pa);
	kt_info(t, "flag va 0x%lx pa 0x%lx", USER_DATA_VA, flag_pa);
	return flag_pa;
}

static void ring3_spin(struct kt_test *t)
{
	uint64_t ms = timeout_ms(t, "demo.spin_timeout_ms");
	uint64_t code_va = USER_CODE_VA + (uint64_t)(user_prog_spin - user_blob_start);
	struct user_result r;

	uint64_t flag_pa = ring3_spin_report(t, code_va);
	*(volatile uint64_t *)phys_to_virt(flag_pa) = 0;
	/* The deadline is in TSC ticks: the program reads the TSC itself and never has to leave
	 * ring 3 (no syscall) until the flag is set or time is up. */
	uint64_t deadline = rdtsc() + ms * (clock_tsc_hz() / 1000);
	KT_ASSERT_EQ(t, user_run(USER_SPIN, deadline, &r), 0);
	KT_ASSERT_EQ_MSG(t, r.killed, 0, "the task died: vector %d at rip 0x%lx", r.vector, r.rip);
	uint64_t v = (uint64_t)r.code;
	kt_info(t, "flag 0x%lx", v);
	if (!v)
		KT_ASSERT_FAIL(t, "no value from the host in the flag at 0x%lx within %lu ms",
			       USER_DATA_VA, ms);
	KT_EXPECT_EQ_MSG(t, v, DEMO_SPIN_MAGIC, "the host wrote 0x%lx, not 0x%llx", v,
			 DEMO_SPIN_MAGIC);
}

static int host_suite_init(struct kt_suite *s)
{
	(void)s;
	return user_space_init();
}

static void host_suite_exit(struct kt_suite *s)
{
	(void)s;
	user_space_fini();
}

static struct kt_case host_cases[] = {
	KT_CASE(mailbox),
	KT_CASE(ring3_spin),
	{ .run = NULL },
};

static struct kt_suite example_host = {
	.name = "example_host",
	.cases = host_cases,
	.suite_init = host_suite_init,
	.suite_exit = host_suite_exit,
	.flags = KT_OPT_IN,
};
KT_SUITE(example_host);
