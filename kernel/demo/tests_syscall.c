/* tests_syscall.c: kt_ tests of ring 3: syscall/sysret, checked copies, faults that kill. */
#include <stdint.h>

#include <arch/cpu.h>
#include <arch/layout.h>
#include <arch/smp.h>
#include <arch/syscall.h>
#include <arch/trap.h>
#include <kern/errno.h>
#include <kern/string.h>
#include <kt/ktest.h>

static int syscall_suite_init(struct kt_suite *s)
{
	(void)s;
	return user_space_init();
}

static void syscall_suite_exit(struct kt_suite *s)
{
	(void)s;
	user_space_fini();
}

extern char user_blob_start[], user_prog_kread[], user_prog_priv[];

/* Where a label of the user blob (arch/x86_64/user.S) is in the task's address space. */
static uint64_t user_va(const char *label)
{
	return USER_CODE_VA + (uint64_t)(label - user_blob_start);
}

/* Runs prog on this CPU; aborts the case if it could not start. */
static void run(struct kt_test *t, enum user_prog prog, uint64_t arg, struct user_result *r)
{
	KT_ASSERT_EQ(t, user_run(prog, arg, r), 0);
}

static void hello_from_ring3(struct kt_test *t)
{
	struct user_result r;

	run(t, USER_HELLO, 0, &r);
	KT_EXPECT_EQ(t, r.killed, 0);
	KT_EXPECT_EQ(t, r.code, 42); /* add(40, 2) */
	KT_EXPECT_STR_EQ(t, user_log(), "hello from ring 3\n");
}

struct getcpu_run {
	struct user_result r;
	int rc;
};

static struct getcpu_run getcpu_runs[MAX_CPUS];

static void run_getcpu(void *arg)
{
	(void)arg;
	struct getcpu_run *g = &getcpu_runs[this_cpu()->index];
	g->rc = user_run(USER_GETCPU, 0, &g->r);
}

static void getcpu_on_every_cpu(struct kt_test *t)
{
	for (unsigned int i = 0; i < smp_cpu_count(); i++) {
		getcpu_runs[i].rc = -1;
		KT_ASSERT_EQ(t, smp_call_on(i, run_getcpu, NULL), 0);
		KT_EXPECT_EQ_MSG(t, getcpu_runs[i].rc, 0, "CPU %u", i);
		KT_EXPECT_EQ_MSG(t, getcpu_runs[i].r.killed, 0, "CPU %u", i);
		KT_EXPECT_EQ_MSG(t, getcpu_runs[i].r.code, (long)i, "CPU %u", i);
	}
}

static void add_returns_sum(struct kt_test *t)
{
	static const uint64_t args[] = { 0, 21, 1ull << 40, (uint64_t)-5 };
	struct user_result r;

	for (unsigned int i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		run(t, USER_ADD, args[i], &r);
		KT_EXPECT_EQ_MSG(t, (uint64_t)r.code, args[i] + args[i], "add(%ld, %ld)",
				 (long)args[i], (long)args[i]);
	}
}

static void bad_pointers_get_efault(struct kt_test *t)
{
	static const char secret[] = "kernel data";
	struct user_result r;

	/* Exit code 0: write() said -EFAULT for a kernel pointer, an unmapped page, a
	 * non-canonical address, a range that runs out of user space and one that starts in
	 * the code page and runs into the unmapped page after it (a fault in the copy). */
	run(t, USER_EFAULT, (uint64_t)secret, &r);
	KT_EXPECT_EQ(t, r.killed, 0);
	KT_EXPECT_EQ_MSG(t, r.code, 0, "bad pointer number %ld was accepted", r.code);
	KT_EXPECT_STR_EQ(t, user_log(), "");
}

static void kernel_access_kills_task(struct kt_test *t)
{
	extern char _text_start[];
	uint64_t target = (uint64_t)_text_start;
	struct user_result r;

	run(t, USER_KREAD, target, &r);
	KT_EXPECT_EQ(t, r.killed, 1);
	KT_EXPECT_EQ(t, r.vector, VEC_PF);
	KT_EXPECT_EQ(t, r.cr2, target);
	/* A user-mode read of a present supervisor page. */
	KT_EXPECT_EQ(t, r.error & (PF_PRESENT | PF_WRITE | PF_USER),
		     (uint64_t)(PF_PRESENT | PF_USER));
	KT_EXPECT_EQ(t, r.rip, user_va(user_prog_kread)); /* its first instruction */
	kt_info(t, "task killed: vector %d, error 0x%lx, rip 0x%lx", r.vector, r.error, r.rip);
	/* The kernel goes on, and so does the next task. */
	run(t, USER_HELLO, 0, &r);
	KT_EXPECT_EQ(t, r.killed, 0);
	KT_EXPECT_EQ(t, r.code, 42);
}

static void privileged_insn_kills_task(struct kt_test *t)
{
	struct user_result r;

	run(t, USER_PRIV, 0, &r);
	KT_EXPECT_EQ(t, r.killed, 1);
	KT_EXPECT_EQ(t, r.vector, VEC_GP);
	KT_EXPECT_EQ(t, r.error, 0u);
	KT_EXPECT_EQ(t, r.rip, user_va(user_prog_priv)); /* the cli itself */
}

static void registers_preserved(struct kt_test *t)
{
	struct user_result r;

	run(t, USER_REGS, 0, &r);
	KT_EXPECT_EQ(t, r.killed, 0);
	KT_EXPECT_EQ_MSG(t, r.code, 0, "register check %ld failed after syscall", r.code);
}

static void unknown_syscall_enosys(struct kt_test *t)
{
	struct user_result r;

	run(t, USER_BADSYS, 999, &r);
	KT_EXPECT_EQ(t, r.killed, 0);
	KT_EXPECT_EQ(t, r.code, -ENOSYS);
}

static void read_user_code(void *arg)
{
	(void)arg;
	(void)*(volatile const uint8_t *)USER_CODE_VA;
}

static void smap_blocks_kernel_reads(struct kt_test *t)
{
	struct trap_catch c;

	if (!cpu_smap_enabled())
		kt_skip(t, "this CPU model has no SMAP (boot with -cpu max to run it)");
	KT_ASSERT_TRUE_MSG(t, trap_run_catching(read_user_code, NULL, &c),
			   "the kernel read a user page outside copy_from_user");
	KT_EXPECT_EQ(t, c.vector, VEC_PF);
	KT_EXPECT_EQ(t, c.cr2, USER_CODE_VA);
	char buf[4];
	KT_EXPECT_EQ(t, copy_from_user(buf, USER_CODE_VA, sizeof(buf)), 0);
}

static struct kt_case syscall_cases[] = {
	KT_CASE(hello_from_ring3),
	KT_CASE(getcpu_on_every_cpu),
	KT_CASE(add_returns_sum),
	KT_CASE(bad_pointers_get_efault),
	KT_CASE(kernel_access_kills_task),
	KT_CASE(privileged_insn_kills_task),
	KT_CASE(registers_preserved),
	KT_CASE(unknown_syscall_enosys),
	KT_CASE(smap_blocks_kernel_reads),
	{ .run = NULL },
};

static struct kt_suite syscall_suite = {
	.name = "syscall",
	.cases = syscall_cases,
	.suite_init = syscall_suite_init,
	.suite_exit = syscall_suite_exit,
};
KT_SUITE(syscall_suite);
