/* test_ktap_rules.c: the KTAP parser's rules one at a time: directives, names, prefixes, plans, missing results, attributes, limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/ktap.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct rule_case {
	const char *what;
	const char *log;
	enum ks_ktap_outcome outcome;
	unsigned passed, failed, crashed, skipped, errors;
	/* "path=STATUS" checks, path as child indexes ("1.0"); name after ':' if given. */
	const char *checks[6];
};

static const struct rule_case cases[] = {
	{ "directives, any case",
	  "KTAP version 1\n1..6\nok 1 a # SKIP why\nnot ok 2 b # TODO later\nok 3 c # XFAIL\n"
	  "not ok 4 d # TIMEOUT 30 s\nnot ok 5 e # ERROR setup\nok 6 f # skip lower\n",
	  KS_KTAP_OUT_CRASHED, 1, 1, 1, 3, 0,
	  { "0=SKIP:a", "1=TODO:b", "2=XFAIL:c", "3=TIMEOUT:d", "4=ERROR:e", "5=SKIP:f" } },
	{ "kunit_tool takes # SKIPPED for a skip",
	  "TAP version 14\n1..1\nok 1 a # SKIPPED\n", KS_KTAP_OUT_SKIPPED, 0, 0, 0, 1, 0,
	  { "0=SKIP:a" } },
	{ "an unknown directive leaves ok and not ok alone",
	  "KTAP version 1\n1..2\nok 1 a # fast\nnot ok 2 b # slow\n", KS_KTAP_OUT_FAILURE,
	  1, 1, 0, 0, 0, { "0=PASS:a", "1=FAIL:b" } },
	{ "names: hyphen optional, '#' inside a word is part of the name",
	  "KTAP version 1\n1..4\nok 1 - x\nok 2 y#z\nok 3 - - w\nok 4\n", KS_KTAP_OUT_SUCCESS,
	  4, 0, 0, 0, 0, { "0=PASS:x", "1=PASS:y#z", "2=PASS:- w", "3=PASS:" } },
	{ "a result needs a number",
	  "KTAP version 1\nok then, mounted\nnot ok\nok 1 a\n", KS_KTAP_OUT_SUCCESS, 1, 0, 0, 0, 0,
	  { "0=PASS:a" } },
	{ "a wrong number is an error",
	  "KTAP version 1\n1..2\nok 1 a\nok 3 b\n", KS_KTAP_OUT_SUCCESS, 2, 0, 0, 0, 1,
	  { "1=PASS:b" } },
	{ "KTAP version 2 is an error", "KTAP version 2\n1..1\nok 1 a\n", KS_KTAP_OUT_SUCCESS,
	  1, 0, 0, 0, 1, { NULL } },
	{ "TAP version 12 is an error", "TAP version 12\n1..1\nok 1 a\n", KS_KTAP_OUT_SUCCESS,
	  1, 0, 0, 0, 1, { NULL } },
	{ "a not-ok parent over passing cases counts one failure",
	  "KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: s\n  1..1\n  ok 1 a\nnot ok 1 s\n",
	  KS_KTAP_OUT_FAILURE, 1, 1, 0, 0, 0, { "0=FAIL:s", "0.0=PASS:a" } },
	{ "a not-ok parent over skipped cases counts one failure",
	  "KTAP version 1\n1..1\n  # Subtest: s\n  1..1\n  ok 1 a # SKIP\nnot ok 1 s\n",
	  KS_KTAP_OUT_FAILURE, 0, 1, 0, 1, 0, { "0=FAIL:s" } },
	{ "a not-ok parent over a failing case counts its own failure too",
	  "KTAP version 1\n1..1\n  # Subtest: s\n  1..2\n  ok 1 a\n  not ok 2 b\nnot ok 1 s\n",
	  KS_KTAP_OUT_FAILURE, 1, 2, 0, 0, 0, { "0=FAIL:s" } },
	{ "a parent whose result never came crashed, though its cases passed",
	  "KTAP version 1\n1..1\n  # Subtest: s\n  1..1\n  ok 1 a\n", KS_KTAP_OUT_CRASHED,
	  1, 0, 1, 0, 1, { "0=CRASHED:s" } },
	{ "a parent that began and never went on crashed",
	  "KTAP version 1\n1..1\n  # Subtest: s\n", KS_KTAP_OUT_CRASHED, 0, 0, 1, 0, 2,
	  { "0=CRASHED:s" } },
	{ "planned tests that never came crashed",
	  "KTAP version 1\n1..3\nok 1 a\n", KS_KTAP_OUT_CRASHED, 1, 0, 2, 0, 2,
	  { "1=CRASHED:", "2=CRASHED:" } },
	{ "the name of the result ends an unplanned parent",
	  "TAP version 14\n\t# Subtest: s\n\tok 1 a\n\tnot ok 2 b\nok 1 s\n\t# Subtest: t\n"
	  "\tok 1 c\nok 2 t\n", KS_KTAP_OUT_FAILURE, 2, 1, 0, 0, 0,
	  { "0=PASS:s", "0.1=FAIL:b", "1=PASS:t" } },
	{ "the parent's result before its plan is met: the rest crashed",
	  "KTAP version 1\n1..1\n  # Subtest: s\n  1..3\n  ok 1 a\nok 1 s\n", KS_KTAP_OUT_CRASHED,
	  1, 0, 2, 0, 2, { "0=CRASHED:s", "0.1=CRASHED:", "0.2=CRASHED:" } },
	{ "a result of another name after the plan is met: the parent has none",
	  "KTAP version 1\n1..2\n  # Subtest: s\n  1..1\n  ok 1 a\nok 1 t\n", KS_KTAP_OUT_CRASHED,
	  2, 0, 1, 0, 2, { "0=CRASHED:s", "1=PASS:t" } },
	{ "'# Subtest:' before the nested version line: one subtest",
	  "KTAP version 1\n1..1\n  # Subtest: s\n  KTAP version 1\n  1..1\n  ok 1 a\nok 1 s\n",
	  KS_KTAP_OUT_SUCCESS, 1, 0, 0, 0, 0, { "0=PASS:s", "0.0=PASS:a" } },
	{ "output between the version line and '# Subtest:'",
	  "KTAP version 1\n1..1\n  KTAP version 1\n  spurious\n  # Subtest: s\n  1..1\n"
	  "  ok 1 a\nok 1 s\n", KS_KTAP_OUT_SUCCESS, 1, 0, 0, 0, 0, { "0=PASS:s" } },
	{ "three levels",
	  "KTAP version 1\n1..1\n KTAP version 1\n # Subtest: a\n 1..1\n  KTAP version 1\n"
	  "  # Subtest: b\n  1..1\n   KTAP version 1\n   # Subtest: c\n   1..1\n   ok 1 d\n"
	  "  ok 1 c\n ok 1 b\nok 1 a\n", KS_KTAP_OUT_SUCCESS, 1, 0, 0, 0, 0,
	  { "0.0.0.0=PASS:d", "0.0.0=PASS:c" } },
	{ "the root's plan met: nothing after it is read",
	  "KTAP version 1\n1..1\nok 1 a\nnot ok 2 b\n", KS_KTAP_OUT_SUCCESS, 1, 0, 0, 0, 0,
	  { NULL } },
	{ "no plan at all", "TAP version 14\nok 1 a\nnot ok 2 b\n", KS_KTAP_OUT_FAILURE,
	  1, 1, 0, 0, 0, { NULL } },
	{ "1..0 ran nothing", "KTAP version 1\n1..0\n", KS_KTAP_OUT_NO_TESTS, 0, 0, 0, 0, 1,
	  { NULL } },
	{ "no version line", "ok 1 a\n", KS_KTAP_OUT_UNPARSED, 0, 0, 0, 0, 1, { NULL } },
	{ "the kernel halted", "KTAP version 1\n1..2\nok 1 a\nreboot: System halted\nok 2 b\n",
	  KS_KTAP_OUT_CRASHED, 1, 0, 1, 0, 1, { "1=CRASHED:" } },
	{ "CRLF line ends", "KTAP version 1\r\n1..1\r\nok 1 a\r\n", KS_KTAP_OUT_SUCCESS,
	  1, 0, 0, 0, 0, { "0=PASS:a" } },
	{ "printk times that grow wider",
	  "[    9.99] KTAP version 1\n[   10.5] 1..2\n[10000.25] ok 1 a\n"
	  "ok 2 b\n", KS_KTAP_OUT_SUCCESS, 2, 0, 0, 0, 0, { "0=PASS:a", "1=PASS:b" } },
	{ "any other prefix goes by its length",
	  "vm0| KTAP version 1\nvm0| 1..1\nvm1| ok 1 a\n", KS_KTAP_OUT_SUCCESS, 1, 0, 0, 0, 0,
	  { "0=PASS:a" } },
	{ "older kunit's crash message",
	  "TAP version 14\n1..1\n\t# Subtest: s\n\t1..1\n\t# a: kunit test case crashed!\n"
	  "\tnot ok 1 - a\nnot ok 1 - s\n", KS_KTAP_OUT_CRASHED, 0, 0, 1, 0, 0,
	  { "0.0=CRASHED:a", "0=CRASHED:s" } },
	{ "NUL bytes are dropped", "KTAP version 1\n1..1\nok 1 a\0b\n\0", KS_KTAP_OUT_SUCCESS,
	  1, 0, 0, 0, 0, { "0=PASS:ab" } },
};

/* The test at path ("1.0": the root's second child's first child). */
static const struct ks_ktap_test *at_path(const struct ks_ktap_test *t, const char *path,
					  const char *what)
{
	for (const char *s = path; *s && *s != '=';) {
		char *end;
		unsigned long i = strtoul(s, &end, 10);

		if (!t || i >= t->nchildren)
			fail_msg("%s: no test at %s", what, path);
		t = t->children[i];
		s = *end == '.' ? end + 1 : end;
	}
	return t;
}

static void check_case(const struct rule_case *rc, const char *log, size_t len)
{
	struct ks_ktap *p = ks_ktap_parse_buf(log, len);
	struct ks_ktap_counts c;

	assert_non_null(p);
	ks_ktap_counts(p, &c);
	if (ks_ktap_outcome(p) != rc->outcome || c.passed != rc->passed ||
	    c.failed != rc->failed || c.crashed != rc->crashed || c.skipped != rc->skipped ||
	    c.errors != rc->errors)
		fail_msg("%s: %s %u/%u/%u/%u/%u, want %s %u/%u/%u/%u/%u", rc->what,
			 ks_ktap_outcome_name(ks_ktap_outcome(p)), c.passed, c.failed, c.crashed,
			 c.skipped, c.errors, ks_ktap_outcome_name(rc->outcome), rc->passed,
			 rc->failed, rc->crashed, rc->skipped, rc->errors);
	for (size_t i = 0; i < ARRAY_SIZE(rc->checks) && rc->checks[i]; i++) {
		const char *chk = rc->checks[i], *st = strchr(chk, '=') + 1, *nm = strchr(chk, ':');
		const struct ks_ktap_test *t = at_path(ks_ktap_root(p), chk, rc->what);
		size_t sl = (size_t)(nm - st);

		if (strncmp(ks_ktap_status_name(t->status), st, sl) ||
		    ks_ktap_status_name(t->status)[sl] || strcmp(t->name, nm + 1))
			fail_msg("%s: %s is %s:%s", rc->what, chk, ks_ktap_status_name(t->status),
				 t->name);
	}
	ks_ktap_free(p);
}

static void rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *log = cases[i].log;
		/* The NUL case has NULs inside: its length is up to the last newline. */
		size_t len = strlen(log);

		if (strstr(cases[i].what, "NUL"))
			len = sizeof("KTAP version 1\n1..1\nok 1 a\0b\n\0") - 1;
		check_case(&cases[i], log, len);
	}
}

static void reasons_and_directives(void **state)
{
	static const char log[] = "KTAP version 1\n1..3\nok 1 a # SKIP not on this machine\n"
				  "not ok 2 b # TIMEOUT 30 s\nok 3 c # skip\n";
	struct ks_ktap *p = ks_ktap_parse_buf(log, sizeof(log) - 1);
	const struct ks_ktap_test *r = ks_ktap_root(p);

	(void)state;
	assert_string_equal(r->children[0]->directive, "SKIP");
	assert_string_equal(r->children[0]->reason, "not on this machine");
	assert_true(r->children[0]->ok);
	assert_string_equal(r->children[1]->directive, "TIMEOUT");
	assert_string_equal(r->children[1]->reason, "30 s");
	assert_false(r->children[1]->ok);
	assert_string_equal(r->children[2]->directive, "skip");
	assert_string_equal(r->children[2]->reason, "");
	assert_int_equal(r->children[1]->result_line, 4);
	ks_ktap_free(p);
}

static void attributes(void **state)
{
	static const char log[] =
		"KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: s\n  # destructive: true\n"
		"  # s: a message: with colons\n  # bad key: x\n  1..1\n  # speed: slow\n"
		"  # a: initializing\n  # x: y: z\n  # file: a.c\n  ok 1 a\n  # speed: never\n"
		"ok 1 s\n";
	struct ks_ktap *p = ks_ktap_parse_buf(log, sizeof(log) - 1);
	const struct ks_ktap_test *s = ks_ktap_root(p)->children[0], *a = s->children[0];

	(void)state;
	assert_int_equal(s->nattrs, 1);
	assert_string_equal(ks_ktap_attr(s, "destructive"), "true");
	assert_int_equal(a->nattrs, 2);
	assert_string_equal(ks_ktap_attr(a, "speed"), "slow");
	assert_string_equal(ks_ktap_attr(a, "file"), "a.c");
	assert_null(ks_ktap_attr(a, "a"));
	assert_null(ks_ktap_attr(a, "x"));
	/* After the last case, before the parent's result: the parent's log, no attribute. */
	assert_string_equal(s->log[s->nlog - 1], "  # speed: never");
	assert_null(ks_ktap_attr(s, "speed"));
	ks_ktap_free(p);
}

static void limits(void **state)
{
	struct ks_ktap *p = ks_ktap_new();
	struct ks_ktap_stats st;
	struct ks_ktap_counts c;
	char *big = malloc(KS_KTAP_LINE_MAX + 100);

	(void)state;
	assert_non_null(p);
	assert_non_null(big);
	memset(big, 'x', KS_KTAP_LINE_MAX + 99);
	big[KS_KTAP_LINE_MAX + 99] = '\n';
	assert_int_equal(ks_ktap_feed(p, "KTAP version 1\n1..1\n", 20), 0);
	assert_int_equal(ks_ktap_feed(p, big, KS_KTAP_LINE_MAX + 100), 0);
	/* Far more output than a test's log keeps. */
	for (int i = 0; i < 40; i++)
		assert_int_equal(ks_ktap_feed(p, big, KS_KTAP_LINE_MAX + 100), 0);
	assert_int_equal(ks_ktap_feed(p, "ok 1 a\n", 7), 0);
	assert_int_equal(ks_ktap_finish(p), 0);
	ks_ktap_stats(p, &st);
	assert_int_equal(st.overlong, 41);
	assert_true(st.dropped > 0);
	assert_int_equal(st.lines, 44);
	assert_int_equal(st.before, 0);
	assert_true(ks_ktap_root(p)->children[0]->nlog < 20);
	assert_int_equal(strlen(ks_ktap_root(p)->children[0]->log[0]), KS_KTAP_LINE_MAX);
	ks_ktap_counts(p, &c);
	assert_int_equal(c.passed, 1);
	ks_ktap_free(p);
	free(big);
	/* A plan too large to be one is text. */
	p = ks_ktap_parse_buf("KTAP version 1\n1..99999999999\nok 1 a\n", 37);
	assert_int_equal(ks_ktap_root(p)->plan, -1);
	ks_ktap_free(p);
}

static void api(void **state)
{
	struct ks_ktap *p = ks_ktap_new();
	struct ks_ktap_counts c = { 3, 1, 2, 4, 5 };
	char line[160];
	size_t ne;

	(void)state;
	ks_ktap_free(NULL);
	assert_int_equal(ks_ktap_feed(NULL, "x", 1), -EINVAL);
	assert_int_equal(ks_ktap_feed(p, NULL, 1), -EINVAL);
	assert_int_equal(ks_ktap_feed(p, NULL, 0), 0);
	assert_null(ks_ktap_root(p));
	assert_int_equal(ks_ktap_outcome(p), KS_KTAP_OUT_UNPARSED);
	assert_false(ks_ktap_done(p));
	assert_int_equal(ks_ktap_finish(p), 0);
	assert_int_equal(ks_ktap_finish(p), 0);
	assert_int_equal(ks_ktap_feed(p, "x\n", 2), -EINVAL);
	assert_string_equal(ks_ktap_errors(p, &ne)[0].msg,
			    "Could not find any KTAP output. Did any KUnit tests run?");
	assert_int_equal(ne, 1);
	ks_ktap_free(p);
	ks_ktap_summary(&c, line, sizeof(line));
	assert_string_equal(line, "Testing complete. Ran 10 tests: passed: 3, failed: 1, "
			    "crashed: 2, skipped: 4, errors: 5");
	assert_string_equal(ks_ktap_status_name(KS_KTAP_NO_TESTS), "NO_TESTS");
	assert_string_equal(ks_ktap_status_name((enum ks_ktap_status)99), "?");
	assert_string_equal(ks_ktap_outcome_name(KS_KTAP_OUT_UNPARSED), "FAILURE_TO_PARSE_TESTS");
	assert_string_equal(ks_ktap_outcome_name(KS_KTAP_OUT_CRASHED), "TEST_CRASHED");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules),
		cmocka_unit_test(reasons_and_directives),
		cmocka_unit_test(attributes),
		cmocka_unit_test(limits),
		cmocka_unit_test(api),
	};

	return cmocka_run_group_tests_name("ktap_rules", tests, NULL, NULL);
}
