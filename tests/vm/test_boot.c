/* test_boot.c: the demo kernel's default suites pass on every machine shape, with valid KTAP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/kt_abi.h>

#include "ktap_check.h"
#include "vmboot.h"

#define TIMEOUT_S 120.0

static int need_qemu(void **state)
{
	(void)state;
	if (!vm_have_qemu())
		skip(); /* the only reason a VM test may skip */
	return 0;
}

/* Prints the console on failure: a failed boot test is useless without it. */
static void dump(const struct vm_result *r)
{
	print_message("---- console (%zu bytes, status %d%s) ----\n%s\n---- end ----\n", r->len,
		      r->status, r->timed_out ? ", timed out" : "", r->out ? r->out : "");
}

/* Boots with extra args and checks: exit status says "all passed", KTAP complete and valid,
 * every case ok or skipped, at least 40 cases over 6 suites, no opt-in example ran. */
static void boots_and_passes(const char *const *extra)
{
	struct vm_result r;
	struct kc_run run;
	int cases = 0;

	assert_int_equal(vm_boot(vm_demo_kernel(), extra, TIMEOUT_S, &r), 0);
	bool valid = kc_check(r.out, &run);
	if (!valid || !run.complete || r.status != KT_EXIT_STATUS(KT_EXIT_PASS))
		dump(&r);
	assert_true(valid);
	assert_true(run.complete);
	assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_PASS));
	assert_true(run.nsuites >= 6);
	for (int i = 0; i < run.nsuites; i++) {
		const struct kc_suite *s = &run.suites[i];

		assert_int_not_equal(s->result, KC_NOT_OK);
		assert_null(strstr(s->name, "example_"));
		for (int j = 0; j < s->ncases; j++) {
			if (s->cases[j].result == KC_NOT_OK)
				fail_msg("%s.%s failed", s->name, s->cases[j].name);
			cases++;
		}
	}
	assert_true(cases >= 40);
	vm_result_free(&r);
}

static void microvm_smp1(void **state)
{
	(void)state;
	boots_and_passes((const char *const[]){ "-smp", "1", NULL });
}

static void microvm_smp2(void **state)
{
	(void)state;
	boots_and_passes((const char *const[]){ "-smp", "2", NULL });
}

static void microvm_smp4(void **state)
{
	(void)state;
	boots_and_passes((const char *const[]){ "-smp", "4", NULL });
}

static void microvm_smp8_topology(void **state)
{
	(void)state;
	boots_and_passes(
		(const char *const[]){ "-smp", "8,sockets=2,cores=2,threads=2", NULL });
}

static void pc_smp2(void **state)
{
	(void)state;
	boots_and_passes((const char *const[]){ "-M", "pc", "-smp", "2", NULL });
}

static void q35_smp2_512m(void **state)
{
	(void)state;
	boots_and_passes((const char *const[]){ "-M", "q35", "-smp", "2", "-m", "512M", NULL });
}

static void lists_without_running(void **state)
{
	struct vm_result r;
	(void)state;

	assert_int_equal(vm_boot(vm_demo_kernel(), (const char *const[]){ "-append", "kt.list",
									  NULL },
				 TIMEOUT_S, &r),
			 0);
	if (r.status != KT_EXIT_STATUS(KT_EXIT_PASS) || !strstr(r.out, "example_crash.hang"))
		dump(&r);
	assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_PASS));
	/* Opt-in examples are listed too, and nothing ran. */
	assert_non_null(strstr(r.out, "example_crash.hang"));
	assert_non_null(strstr(r.out, "example_fail.expect_fail"));
	assert_null(strstr(r.out, "\nok 1 "));
	vm_result_free(&r);
}

static void filter_selects_one_suite(void **state)
{
	struct vm_result r;
	struct kc_run run;
	(void)state;

	/* The first suite the unfiltered run prints, then only that suite. */
	assert_int_equal(vm_boot(vm_demo_kernel(), NULL, TIMEOUT_S, &r), 0);
	assert_true(kc_check(r.out, &run));
	char arg[96];
	snprintf(arg, sizeof(arg), "kt.filter=%s", run.suites[0].name);
	int ncases = run.suites[0].ncases;
	vm_result_free(&r);

	assert_int_equal(vm_boot(vm_demo_kernel(), (const char *const[]){ "-append", arg, NULL },
				 TIMEOUT_S, &r),
			 0);
	assert_true(kc_check(r.out, &run));
	assert_true(run.complete);
	assert_int_equal(run.nsuites, 1);
	assert_int_equal(run.suites[0].ncases, ncases);
	assert_int_equal(r.status, KT_EXIT_STATUS(KT_EXIT_PASS));
	vm_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(microvm_smp1, need_qemu),
		cmocka_unit_test_setup(microvm_smp2, need_qemu),
		cmocka_unit_test_setup(microvm_smp4, need_qemu),
		cmocka_unit_test_setup(microvm_smp8_topology, need_qemu),
		cmocka_unit_test_setup(pc_smp2, need_qemu),
		cmocka_unit_test_setup(q35_smp2_512m, need_qemu),
		cmocka_unit_test_setup(lists_without_running, need_qemu),
		cmocka_unit_test_setup(filter_selects_one_suite, need_qemu),
	};

	return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
