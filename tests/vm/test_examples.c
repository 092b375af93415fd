/* test_examples.c: the demo kernel's misbehaving examples fail and crash exactly as they promise. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/kt_abi.h>

#include "ktap_check.h"
#include "vmboot.h"

#define TIMEOUT_S 120.0

static int need_qemu(void **state)
{
	(void)state;
	if (!vm_have_qemu())
		skip();
	return 0;
}

static void dump(const struct vm_result *r)
{
	print_message("---- console (%zu bytes, status %d%s) ----\n%s\n---- end ----\n", r->len,
		      r->status, r->timed_out ? ", timed out" : "", r->out ? r->out : "");
}

/* Boots with `-append filter` plus extra args; checks the KTAP parses. */
static void boot_filtered(const char *filter, const char *const *extra, double timeout,
			  struct vm_result *r, struct kc_run *run)
{
	const char *argv[16] = { "-append", filter };
	int n = 2;

	for (int i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	assert_int_equal(vm_boot(vm_demo_kernel(), argv, timeout, r), 0);
	if (!kc_check(r->out, run)) {
		dump(r);
		fail_msg("invalid KTAP: %s", run->error);
	}
}

static void expect_and_assert_failures(void **state)
{
	struct vm_result r;
	struct kc_run run;
	(void)state;

	boot_filtered("kt.filter=example_fail", NULL, TIMEOUT_S, &r, &run);
	if (r.status != KT_EXIT_STATUS(KT_EXIT_FAIL) || !run.complete)
		dump(&r);
	assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_FAIL));
	assert_true(run.complete);
	assert_int_equal(run.nsuites, 1);
	assert_int_equal(run.suites[0].result, KC_NOT_OK);
	assert_int_equal(kc_case(&run, "example_fail", "expect_fail")->result, KC_NOT_OK);
	assert_int_equal(kc_case(&run, "example_fail", "assert_fail")->result, KC_NOT_OK);
	assert_non_null(strstr(r.out, "EXPECTATION FAILED at"));
	assert_non_null(strstr(r.out, "ASSERTION FAILED at"));
	vm_result_free(&r);
}

/* The running case has no result, the panic report names the page fault, and the kernel tells
 * QEMU it crashed (isa-debug-exit, no pvpanic device here). */
static void page_fault_crashes(void **state)
{
	struct vm_result r;
	struct kc_run run;
	(void)state;

	boot_filtered("kt.filter=example_crash.page_fault", NULL, TIMEOUT_S, &r, &run);
	if (r.status != KT_EXIT_STATUS(KT_EXIT_PANIC))
		dump(&r);
	assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_PANIC));
	assert_false(run.complete);
	assert_int_equal(run.nsuites, 1);
	assert_int_equal(run.suites[0].ncases, 0);
	assert_non_null(strstr(r.out, "Page Fault"));
	assert_non_null(strstr(r.out, "CR2"));
	vm_result_free(&r);
}

/* With a pvpanic device the kernel reports through it: QEMU powers off with status 0. */
static void page_fault_uses_pvpanic(void **state)
{
	struct vm_result r;
	struct kc_run run;
	(void)state;

	boot_filtered("kt.filter=example_crash.page_fault",
		      (const char *const[]){ "-device", "pvpanic", NULL }, TIMEOUT_S, &r, &run);
	if (r.status != 0 || r.timed_out)
		dump(&r);
	assert_false(r.timed_out);
	assert_int_equal(r.status, 0);
	assert_false(run.complete);
	assert_non_null(strstr(r.out, "Page Fault"));
	vm_result_free(&r);
}

/* A triple fault resets the machine; with -no-reboot QEMU exits 0 and its cpu_reset log says
 * why. */
static void triple_fault_resets(void **state)
{
	struct vm_result r;
	struct kc_run run;
	char log[] = "/tmp/kscope-test-resetXXXXXX";
	(void)state;

	int fd = mkstemp(log);
	assert_true(fd >= 0);
	close(fd);
	boot_filtered("kt.filter=example_crash.triple_fault",
		      (const char *const[]){ "-d", "cpu_reset", "-D", log, NULL }, TIMEOUT_S, &r,
		      &run);
	FILE *f = fopen(log, "r");
	char line[512];
	bool triple = false;
	while (f && fgets(line, sizeof(line), f))
		triple |= strstr(line, "Triple fault") != NULL;
	if (f)
		fclose(f);
	unlink(log);
	if (r.status != 0 || !triple)
		dump(&r);
	assert_int_equal(r.status, 0);
	assert_true(triple);
	assert_false(run.complete);
	vm_result_free(&r);
}

/* A hang never ends by itself: the case started, no result came, QEMU is still up. */
static void hang_hangs(void **state)
{
	struct vm_result r;
	struct kc_run run;
	(void)state;

	boot_filtered("kt.filter=example_crash.hang", NULL, 4.0, &r, &run);
	if (!r.timed_out)
		dump(&r);
	assert_true(r.timed_out);
	assert_false(run.complete);
	assert_int_equal(run.nsuites, 1);
	assert_string_equal(run.suites[0].name, "example_crash");
	assert_int_equal(run.suites[0].ncases, 0);
	vm_result_free(&r);
}

static void destructive_is_reported(void **state)
{
	struct vm_result r;
	struct kc_run run;
	(void)state;

	boot_filtered("kt.filter=example_destructive", NULL, TIMEOUT_S, &r, &run);
	if (r.status != KT_EXIT_STATUS(KT_EXIT_PASS))
		dump(&r);
	assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_PASS));
	const struct kc_case *c = kc_case(&run, "example_destructive", "break_timer");
	assert_non_null(c);
	assert_int_equal(c->result, KC_OK);
	assert_true(c->destructive);
	vm_result_free(&r);
}

static void many_magic_messages_pass(void **state)
{
	struct vm_result r;
	struct kc_run run;
	(void)state;

	boot_filtered("kt.filter=example_magic", NULL, TIMEOUT_S, &r, &run);
	assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_PASS));
	assert_int_equal(kc_case(&run, "example_magic", "many_messages")->result, KC_OK);
	vm_result_free(&r);
}

/* example_host with no host: each case gives up after the time the command line sets, fails
 * saying so, and the kernel goes on to its exit; on one CPU and on two. */
static const struct host_timeout {
	const char *append;
	const char *smp;
	const char *name;              /* the case */
	const char *expect[4];         /* in the console, NULL-terminated */
} host_timeouts[] = {
#define MAILBOX_200 "kt.filter=example_host.mailbox demo.mailbox_timeout_ms=200"
#define MAILBOX_EXPECT                                                                     \
	{ "# mailbox: waiting", "# mailbox: 0x0",                                          \
	  "no value from the host in demo_mailbox within 200 ms", NULL }
#define SPIN_200 "kt.filter=example_host.ring3_spin demo.spin_timeout_ms=200"
#define SPIN_EXPECT                                                                        \
	{ "# ring3_spin: code va 0x4", "# ring3_spin: flag 0x0",                           \
	  "no value from the host in the flag at 0x600000 within 200 ms", NULL }
	{ MAILBOX_200, "1", "mailbox", MAILBOX_EXPECT },
	{ MAILBOX_200, "2", "mailbox", MAILBOX_EXPECT },
	{ SPIN_200, "1", "ring3_spin", SPIN_EXPECT },
	{ SPIN_200, "2", "ring3_spin", SPIN_EXPECT },
};

static void host_cases_time_out(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(host_timeouts) / sizeof(host_timeouts[0]); i++) {
		const struct host_timeout *h = &host_timeouts[i];
		struct vm_result r;
		struct kc_run run;

		print_message("# %s, -smp %s\n", h->append, h->smp);
		boot_filtered(h->append, (const char *const[]){ "-smp", h->smp, NULL }, TIMEOUT_S,
			      &r, &run);
		const struct kc_case *c = kc_case(&run, "example_host", h->name);
		bool seen = true;
		for (int j = 0; h->expect[j]; j++)
			seen &= strstr(r.out, h->expect[j]) != NULL;
		/* Well under the 20 s default: the option took effect. */
		if (r.status != KT_EXIT_STATUS(KT_EXIT_FAIL) || !run.complete || !c || !seen ||
		    r.seconds > 15.0)
			dump(&r);
		assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_FAIL));
		assert_true(run.complete);
		assert_int_equal(run.nsuites, 1);
		assert_int_equal(run.suites[0].ncases, 1);
		assert_non_null(c);
		assert_int_equal(c->result, KC_NOT_OK);
		assert_true(seen);
		assert_true(r.seconds < 15.0);
		vm_result_free(&r);
	}
}

/* The flag line names the user page and a physical page the kernel mapped it to. */
static void ring3_spin_reports_flag_page(void **state)
{
	struct vm_result r;
	struct kc_run run;
	unsigned long long pa = 0;
	(void)state;

	boot_filtered(SPIN_200, NULL, TIMEOUT_S, &r, &run);
	const char *line = strstr(r.out, "# ring3_spin: flag va 0x600000 pa 0x");
	if (!line || sscanf(line, "# ring3_spin: flag va 0x600000 pa 0x%llx", &pa) != 1)
		dump(&r);
	assert_non_null(line);
	assert_int_equal(sscanf(line, "# ring3_spin: flag va 0x600000 pa 0x%llx", &pa), 1);
	assert_int_not_equal(pa, 0);
	assert_int_equal(pa & 0xfff, 0);
	assert_true(pa < 128ull << 20);
	vm_result_free(&r);
}

/* Finds "kscope-demo: <name> va 0x<hex> pa 0x<hex>" before the KTAP version line. */
static bool boot_address(const char *out, const char *name, unsigned long long *va,
			 unsigned long long *pa)
{
	char prefix[96], fmt[128];
	const char *ktap = strstr(out, "KTAP version 1");

	snprintf(prefix, sizeof(prefix), "kscope-demo: %s va 0x", name);
	const char *line = strstr(out, prefix);
	if (!line || !ktap || line > ktap)
		return false;
	snprintf(fmt, sizeof(fmt), "kscope-demo: %s va 0x%%llx pa 0x%%llx", name);
	return sscanf(line, fmt, va, pa) == 2;
}

/* The kernel's own page-table walk: image symbols at KERNEL_VMA + physical, and kt_state's
 * direct-map alias on the same physical address. */
static void boot_reports_addresses(void **state)
{
	static const char *const image_syms[] = { "kt_state", "demo_mailbox",
						   "demo_mailbox_ack" };
	const unsigned long long kernel_vma = 0xffffffff80000000ull;
	const unsigned long long direct_map = 0xffff800000000000ull;
	struct vm_result r;
	struct kc_run run;
	unsigned long long va, pa, state_pa = 0;
	(void)state;

	boot_filtered("kt.filter=example_magic", NULL, TIMEOUT_S, &r, &run);
	for (size_t i = 0; i < sizeof(image_syms) / sizeof(image_syms[0]); i++) {
		if (!boot_address(r.out, image_syms[i], &va, &pa))
			dump(&r);
		assert_true(boot_address(r.out, image_syms[i], &va, &pa));
		assert_true(va >= kernel_vma);
		assert_int_equal(pa, va - kernel_vma);
		if (i == 0)
			state_pa = pa;
	}
	assert_true(boot_address(r.out, "kt_state@direct_map", &va, &pa));
	assert_int_equal(pa, state_pa);
	assert_int_equal(va, direct_map + pa);
	vm_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(expect_and_assert_failures, need_qemu),
		cmocka_unit_test_setup(page_fault_crashes, need_qemu),
		cmocka_unit_test_setup(page_fault_uses_pvpanic, need_qemu),
		cmocka_unit_test_setup(triple_fault_resets, need_qemu),
		cmocka_unit_test_setup(hang_hangs, need_qemu),
		cmocka_unit_test_setup(destructive_is_reported, need_qemu),
		cmocka_unit_test_setup(many_magic_messages_pass, need_qemu),
		cmocka_unit_test_setup(host_cases_time_out, need_qemu),
		cmocka_unit_test_setup(ring3_spin_reports_flag_page, need_qemu),
		cmocka_unit_test_setup(boot_reports_addresses, need_qemu),
	};

	return cmocka_run_group_tests_name("examples", tests, NULL, NULL);
}
