/* test_ktap_check.c: the VM tests' KTAP checker accepts kt_ output and catches each broken rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../vm/ktap_check.h"

static const char good[] =
	"SeaBIOS junk\n"
	"KTAP version 1\n"
	"1..2\n"
	"    KTAP version 1\n"
	"    # Subtest: alpha\n"
	"    1..3\n"
	"    ok 1 one\n"
	"    # two: EXPECTATION FAILED at a.c:3\n"
	"        Expected 1 == 2\n"
	"    not ok 2 two\n"
	"    # destructive: true\n"
	"    ok 3 three # SKIP not today\n"
	"    # alpha: pass:1 fail:1 skip:1 total:3\n"
	"not ok 1 alpha\n"
	"    KTAP version 1\n"
	"    # Subtest: beta\n"
	"    1..1\n"
	"        KTAP version 1\n"
	"        # Subtest: p\n"
	"        ok 1 param-0\n"
	"    # p: pass:1 fail:0 skip:0 total:1\n"
	"    ok 1 p\n"
	"    # beta: pass:1 fail:0 skip:0 total:1\n"
	"ok 2 beta\n"
	"# Totals: pass:2 fail:1 skip:1 total:4\n";

static void accepts_good_output(void **state)
{
	struct kc_run run;
	(void)state;

	assert_true(kc_check(good, &run));
	assert_true(run.complete);
	assert_int_equal(run.nsuites, 2);
	assert_int_equal(run.suites[0].result, KC_NOT_OK);
	assert_int_equal(kc_case(&run, "alpha", "two")->result, KC_NOT_OK);
	assert_int_equal(kc_case(&run, "alpha", "three")->result, KC_SKIP);
	assert_true(kc_case(&run, "alpha", "three")->destructive);
	assert_false(kc_case(&run, "alpha", "one")->destructive);
	assert_int_equal(kc_case(&run, "beta", "p")->result, KC_OK);
	assert_null(kc_case(&run, "beta", "param-0"));
}

static void incomplete_is_not_complete(void **state)
{
	struct kc_run run;
	char text[sizeof(good)];
	(void)state;

	memcpy(text, good, sizeof(good));
	*strstr(text, "    ok 3 three") = 0; /* the kernel died here */
	assert_true(kc_check(text, &run));
	assert_false(run.complete);
	assert_int_equal(run.suites[0].ncases, 2);
}

/* Replaces `from` by `to` in the good text and expects the checker to name `why`. */
static void broken(const char *from, const char *to, const char *why)
{
	char text[2048];
	struct kc_run run;
	const char *at = strstr(good, from);

	assert_non_null(at);
	size_t head = (size_t)(at - good);
	memcpy(text, good, head);
	strcpy(text + head, to);
	strcat(text, at + strlen(from));
	assert_false(kc_check(text, &run));
	if (!strstr(run.error, why))
		fail_msg("error '%s' does not say '%s'", run.error, why);
}

static void catches_broken_rules(void **state)
{
	(void)state;
	broken("KTAP version 1\n1..2", "KTAP 1\n1..2", "no 'KTAP version 1'");
	broken("    ok 1 one", "    ok 2 one", "numbered 2, expected 1");
	broken("pass:1 fail:1 skip:1", "pass:2 fail:1 skip:1", "counts of alpha");
	broken("    # alpha: pass:1 fail:1 skip:1 total:3\n", "", "no pass/fail count line");
	broken("not ok 1 alpha", "ok 1 alpha", "is ok with 1 failed");
	broken("    1..3", "    1..4", "planned 4 cases, printed 3");
	broken("ok 2 beta", "ok 3 beta", "numbered 3, expected 2");
	broken("    ok 1 one", "    garbage", "unexpected line");
	broken("  KTAP version 1\n        # Subtest: p", "  KTAP version 1\n      # Subtest: p",
	       "odd indentation");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_good_output),
		cmocka_unit_test(incomplete_is_not_complete),
		cmocka_unit_test(catches_broken_rules),
	};

	return cmocka_run_group_tests_name("ktap_check", tests, NULL, NULL);
}
