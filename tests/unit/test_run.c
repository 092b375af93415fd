/* test_run.c: the run's pure parts: partition, shuffle, merged order, flaky tests, the console path with garbage, progress text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/kt_abi.h>
#include <kscope/ktap.h>
#include <kscope/run.h>

#include "run_display.h"
#include "run_internal.h"

/* A run of a "kernel" that is not ELF: it follows KTAP alone, and nothing boots here. */
static struct ks_run *new_run(unsigned jobs, unsigned repeat)
{
	struct ks_error err = { 0 };
	struct ks_vmspec *spec = ks_vmspec_new(&err);
	struct ks_run_opts o;
	struct ks_run *r;

	assert_non_null(spec);
	assert_int_equal(ks_vmspec_set(spec, "kernel", "/dev/null", &err), 0);
	ks_run_opts_init(&o);
	o.spec = spec;
	o.jobs = jobs;
	o.repeat = repeat;
	r = ks_run_new(&o, &err);
	ks_vmspec_free(spec);
	assert_non_null(r);
	assert_false(r->k.kt);
	return r;
}

/* Suites named a, b, c, ... with the given numbers of cases; flags on some cases. */
static void make_plan(struct ks_run *r, const size_t *sizes, size_t n)
{
	for (size_t s = 0; s < n; s++)
		for (size_t c = 0; c < sizes[s]; c++) {
			char suite[8], name[32];

			snprintf(suite, sizeof(suite), "%c", (char)('a' + s));
			snprintf(name, sizeof(name), "case%zu", c);
			assert_int_not_equal(run_plan_add(&r->plan, suite, name), RUN_NONE);
		}
	assert_int_equal(run_plan_ready(r), 0);
}

static size_t batch_count(const struct run_batch *b)
{
	size_t n = 0;

	for (; b; b = b->next)
		n++;
	return n;
}

/* ---- the partition ---- */

static void partition_balances_whole_suites(void **state)
{
	static const size_t sizes[] = { 10, 1, 4, 4, 3, 2, 8 };
	struct ks_run *r = new_run(1, 1);
	size_t seen[32] = { 0 }, load[2] = { 0 };

	(void)state;
	make_plan(r, sizes, 7);
	struct run_batch *b = run_partition(&r->plan, 0, 2, KS_RUN_ISOLATE_SNAPSHOT);
	assert_int_equal(batch_count(b), 2);
	size_t k = 0;
	for (struct run_batch *x = b; x; x = x->next, k++) {
		for (size_t i = 0; i < x->ntests; i++) {
			seen[x->tests[i]]++;
			/* Plan order inside a batch, and whole suites only. */
			if (i)
				assert_true(x->tests[i] > x->tests[i - 1]);
		}
		load[k] = x->ntests;
	}
	for (size_t i = 0; i < r->plan.ntests; i++)
		assert_int_equal(seen[i], 1);
	for (struct run_batch *x = b; x; x = x->next)
		for (size_t i = 0; i < x->ntests; i++)
			for (struct run_batch *y = x->next; y; y = y->next)
				for (size_t j = 0; j < y->ntests; j++)
					assert_int_not_equal(r->plan.tests[x->tests[i]].suite_idx,
							     r->plan.tests[y->tests[j]].suite_idx);
	/* Weights are cases + 1: 11 2 5 5 4 3 9 (39) split as evenly as whole suites allow. */
	assert_true(load[0] + load[1] == 32);
	assert_true(labs((long)load[0] - (long)load[1]) <= 4);
	/* The same input gives the same split. */
	struct run_batch *again = run_partition(&r->plan, 0, 2, KS_RUN_ISOLATE_SNAPSHOT);
	assert_int_equal(again->ntests, b->ntests);
	assert_memory_equal(again->tests, b->tests, b->ntests * sizeof(size_t));
	run_batch_free(again);
	run_batch_free(b);
	ks_run_free(r);
}

static void partition_uses_measured_times(void **state)
{
	static const size_t sizes[] = { 2, 2, 2, 2 };
	struct ks_run *r = new_run(1, 1);

	(void)state;
	make_plan(r, sizes, 4);
	/* Suite a takes as long as the three others together. */
	r->plan.suites[0].cost_ns = 900;
	r->plan.suites[1].cost_ns = r->plan.suites[2].cost_ns = r->plan.suites[3].cost_ns = 300;
	struct run_batch *b = run_partition(&r->plan, 0, 2, KS_RUN_ISOLATE_SNAPSHOT);
	assert_int_equal(batch_count(b), 2);
	assert_int_equal(b->ntests, 2);           /* a alone */
	assert_int_equal(b->tests[0], 0);
	assert_int_equal(b->next->ntests, 6);     /* b, c, d */
	run_batch_free(b);
	ks_run_free(r);
}

static void partition_destructive(void **state)
{
	static const size_t sizes[] = { 3, 2, 2, 3 };
	struct ks_run *r = new_run(1, 1);

	(void)state;
	make_plan(r, sizes, 4);
	r->plan.tests[3].flags = KT_ABI_F_DESTRUCTIVE;   /* b.case0 */
	r->plan.tests[9].flags = KT_ABI_F_DESTRUCTIVE;   /* d.case2 */
	/* Snapshot: every suite with a destructive test in the first batch (one snapshot). */
	struct run_batch *b = run_partition(&r->plan, 0, 3, KS_RUN_ISOLATE_SNAPSHOT);
	bool has3 = false, has9 = false;
	for (size_t i = 0; i < b->ntests; i++) {
		has3 |= b->tests[i] == 3;
		has9 |= b->tests[i] == 9;
	}
	assert_true(has3 && has9);
	run_batch_free(b);
	/* Reboot: each destructive test in a batch of its own, the rest shared out. */
	b = run_partition(&r->plan, 0, 2, KS_RUN_ISOLATE_REBOOT);
	assert_int_equal(batch_count(b), 4);
	struct run_batch *x = b->next->next;
	assert_int_equal(x->ntests, 1);
	assert_int_equal(x->tests[0], 3);
	assert_int_equal(x->next->ntests, 1);
	assert_int_equal(x->next->tests[0], 9);
	assert_int_equal(b->ntests + b->next->ntests, 8);
	run_batch_free(b);
	ks_run_free(r);
}

/* ---- the shuffle ---- */

static void shuffle_is_a_seeded_permutation(void **state)
{
	size_t a[20], b[20], c[20];
	int differs = 0;

	(void)state;
	for (size_t i = 0; i < 20; i++)
		a[i] = b[i] = c[i] = 19 - i;
	run_shuffle(a, 20, 42, 1);
	run_shuffle(b, 20, 42, 1);
	run_shuffle(c, 20, 43, 1);
	assert_memory_equal(a, b, sizeof(a));
	for (size_t i = 0; i < 20; i++)
		differs += a[i] != c[i];
	assert_true(differs > 0);
	for (size_t i = 0; i < 20; i++) {
		size_t k = 0;

		for (size_t j = 0; j < 20; j++)
			k += a[j] == i;
		assert_int_equal(k, 1);
	}
}

static int by_size(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;

	return a < b ? -1 : a > b;
}

static void order_keeps_suites_together(void **state)
{
	static const size_t sizes[] = { 3, 4, 1, 5 };
	struct ks_run *r = new_run(1, 2);
	size_t t[13], u[13], sorted[13];

	(void)state;
	make_plan(r, sizes, 4);
	for (size_t i = 0; i < 13; i++)
		t[i] = u[i] = i;
	assert_int_equal(run_order(&r->plan, t, 13, 7, 0), 0);
	assert_int_equal(run_order(&r->plan, u, 13, 7, 1), 0);
	assert_memory_not_equal(t, u, sizeof(t));  /* another round, another order */
	memcpy(sorted, t, sizeof(t));
	qsort(sorted, 13, sizeof(size_t), by_size);
	for (size_t i = 0; i < 13; i++)
		assert_int_equal(sorted[i], i);       /* a permutation */
	/* A suite's cases are never split by another suite's. */
	for (size_t i = 1; i < 13; i++)
		for (size_t j = i + 1; j < 13; j++)
			if (r->plan.tests[t[j]].suite_idx == r->plan.tests[t[i - 1]].suite_idx)
				assert_int_equal(r->plan.tests[t[i]].suite_idx,
						 r->plan.tests[t[i - 1]].suite_idx);
	ks_run_free(r);
}

/* ---- results: merged order, flaky tests ---- */

static void set(struct ks_run *r, unsigned round, size_t t, enum ks_run_status st,
		const char *why)
{
	run_result_set(r, round, t, 1, st, why);
}

/* Results arrive in any order (VMs finish when they finish); the report is in plan order. */
static void merged_ktap_in_plan_order(void **state)
{
	static const size_t sizes[] = { 2, 3 };
	struct ks_run *r = new_run(2, 1);
	struct ks_ktap_counts c;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	make_plan(r, sizes, 2);
	set(r, 0, 4, KS_RUN_CRASHED, "the kernel panicked (pvpanic)");
	set(r, 0, 2, KS_RUN_PASS, NULL);
	set(r, 0, 1, KS_RUN_TIMEOUT, "no progress for 3 s");
	set(r, 0, 3, KS_RUN_SKIP, "no COM2");
	set(r, 0, 0, KS_RUN_FAIL, NULL);
	assert_int_equal(run_report_ktap_text(r, 0, &text, &len), 0);
	assert_string_equal(text,
		"KTAP version 1\n1..2\n"
		"    KTAP version 1\n    # Subtest: a\n    1..2\n"
		"    not ok 1 case0\n"
		"    not ok 2 case1 # TIMEOUT no progress for 3 s\n"
		"not ok 1 a\n"
		"    KTAP version 1\n    # Subtest: b\n    1..3\n"
		"    ok 1 case0\n"
		"    ok 2 case1 # SKIP no COM2\n"
		"    not ok 3 case2 # ERROR crashed: the kernel panicked (pvpanic)\n"
		"not ok 2 b\n");
	struct ks_ktap *p = ks_ktap_parse_buf(text, len);
	ks_ktap_counts(p, &c);
	assert_int_equal(c.passed, 1);
	assert_int_equal(c.failed, 3);  /* two cases, and suite a's own not ok */
	assert_int_equal(c.crashed, 1);
	assert_int_equal(c.skipped, 1);
	assert_int_equal(c.errors, 0);
	ks_ktap_free(p);
	free(text);
	ks_run_free(r);
}

static void flaky_across_rounds(void **state)
{
	static const size_t sizes[] = { 3 };
	struct ks_run *r = new_run(1, 3);
	struct ks_run_summary s;

	(void)state;
	make_plan(r, sizes, 1);
	for (unsigned k = 0; k < 3; k++) {
		set(r, k, 0, KS_RUN_PASS, NULL);                       /* steady */
		set(r, k, 1, k == 1 ? KS_RUN_TIMEOUT : KS_RUN_PASS, NULL); /* flaky */
		set(r, k, 2, k == 2 ? KS_RUN_SKIP : KS_RUN_FAIL, NULL);    /* never passes */
	}
	assert_false(ks_run_flaky(r, 0));
	assert_true(ks_run_flaky(r, 1));
	assert_false(ks_run_flaky(r, 2));
	ks_run_summary(r, &s);
	assert_int_equal(s.flaky, 1);
	assert_int_equal(s.pass, 5);
	assert_int_equal(s.timeout, 1);
	assert_int_equal(s.fail, 2);
	assert_int_equal(s.skip, 1);
	assert_int_equal(s.rounds, 3);
	ks_run_free(r);
}

/* ---- the console path ---- */

static char *read_data(const char *name, size_t *len)
{
	const char *dir = getenv("KSCOPE_TEST_DATA");
	char path[1024];
	FILE *f;
	char *buf;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/run/%s", dir, name);
	assert_non_null(f = fopen(path, "rb"));
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(*len + 1);
	assert_int_equal(fread(buf, 1, *len, f), *len);
	fclose(f);
	buf[*len] = 0;
	return buf;
}

/* Random bytes, newlines included, between the lines of text. */
static char *garble(const char *text, size_t len, unsigned seed, size_t *out_len)
{
	char *o = malloc(len * 40 + 64);
	size_t n = 0;

	srand(seed);
	for (size_t i = 0; i < len; i++) {
		o[n++] = text[i];
		if (text[i] != '\n')
			continue;
		size_t junk = (size_t)(rand() % 40);
		for (size_t j = 0; j < junk; j++)
			o[n++] = (char)(rand() & 0xff);
		/* Garbage ends with its own newline, so KTAP lines stay whole. */
		o[n++] = '\n';
	}
	*out_len = n;
	return o;
}

/* The statuses of the plan after replaying text, as "suite.case=STATUS;..." */
static char *replay(const char *text, size_t len)
{
	struct ks_run *r = new_run(1, 1);
	char *out = calloc(1, 8192);

	assert_int_equal(run_seg_replay(r, text, len), 0);
	for (size_t i = 0; i < ks_run_ntests(r); i++) {
		const struct ks_run_test *t = ks_run_test(r, i);

		snprintf(out + strlen(out), 8192 - strlen(out), "%s.%s=%s;", t->suite, t->name,
			 ks_run_status_name(ks_run_result(r, 0, i)->status));
	}
	ks_run_free(r);
	return out;
}

static void console_garbage_changes_nothing(void **state)
{
	size_t len, glen;
	char *text = read_data("demo-console.log", &len), *clean = replay(text, len);

	(void)state;
	assert_string_equal(clean,
		"string.memcpy_alignments=PASS;string.memcpy_zero_length=PASS;"
		"string.memmove_overlap=PASS;string.memcmp_order=PASS;string.memchr_finds=PASS;"
		"serial.com1_answers=PASS;"
		"serial.com2_known_line=SKIP;example_fail.expect_fail=FAIL;"
		"example_fail.assert_fail=FAIL;example_crash.unnamed_1=CRASHED;");
	for (unsigned seed = 1; seed <= 20; seed++) {
		char *g = garble(text, len, seed, &glen), *got = replay(g, glen);

		assert_string_equal(got, clean);
		free(got);
		free(g);
	}
	free(clean);
	free(text);
}

/* The failure's diagnostics and reason survive the trip through the console path. */
static void console_failure_details(void **state)
{
	size_t len;
	char *text = read_data("demo-console.log", &len);
	struct ks_run *r = new_run(1, 1);

	(void)state;
	assert_int_equal(run_seg_replay(r, text, len), 0);
	size_t i = run_plan_find(&r->plan, "example_fail", "expect_fail");
	const struct ks_run_result *res = ks_run_result(r, 0, i);
	assert_string_equal(res->reason, "EXPECTATION FAILED at ../kernel/demo/examples.c:15");
	assert_non_null(strstr(res->diag, "#     1 + 1 == 2 (0x2)"));
	i = run_plan_find(&r->plan, "example_crash", "unnamed_1");
	res = ks_run_result(r, 0, i);
	assert_int_equal(res->status, KS_RUN_CRASHED);
	assert_non_null(strstr(res->diag, "# PANIC: CPU 0: exception 14 (#PF Page Fault)"));
	ks_run_free(r);
	free(text);
}

/* ---- progress text ---- */

static void format_durations(void **state)
{
	static const struct { int64_t ns; const char *text; } cases[] = {
		{ -1, "-" }, { 0, "0.0 ms" }, { 420000, "0.4 ms" }, { 12000000, "12 ms" },
		{ 999999999, "999 ms" }, { 1250000000, "1.25 s" }, { 125000000000, "2 min 5 s" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(run_fmt_duration(cases[i].ns, buf, sizeof(buf)), cases[i].text);
}

static void format_bar_and_counts(void **state)
{
	size_t c[RUN_NSTATUS] = { 0 };
	char buf[128];

	(void)state;
	assert_string_equal(run_fmt_bar(0, 10, 10, buf, sizeof(buf)), "[..........]");
	assert_string_equal(run_fmt_bar(5, 10, 10, buf, sizeof(buf)), "[#####.....]");
	assert_string_equal(run_fmt_bar(12, 10, 4, buf, sizeof(buf)), "[####]");
	assert_string_equal(run_fmt_bar(3, 0, 4, buf, sizeof(buf)), "[....]");
	assert_string_equal(run_fmt_counts(c, buf, sizeof(buf)), "no tests");
	c[KS_RUN_PASS] = 12;
	c[KS_RUN_CRASHED] = 2;
	c[KS_RUN_FAIL] = 1;
	c[KS_RUN_NOTRUN] = 3;
	assert_string_equal(run_fmt_counts(c, buf, sizeof(buf)),
			    "12 passed, 1 failed, 2 crashed, 3 not run");
}

static void format_suite_lines(void **state)
{
	size_t ok[RUN_NSTATUS] = { 0 }, bad[RUN_NSTATUS] = { 0 }, skip[RUN_NSTATUS] = { 0 };
	char buf[160];

	(void)state;
	ok[KS_RUN_PASS] = 12;
	bad[KS_RUN_PASS] = 1;
	bad[KS_RUN_TIMEOUT] = 1;
	skip[KS_RUN_SKIP] = 2;
	assert_string_equal(run_fmt_suite("string", ok, 0, 1, buf, sizeof(buf)),
			    "ok      string                   12 passed");
	assert_string_equal(run_fmt_suite("example_crash", bad, 1, 3, buf, sizeof(buf)),
			    "FAILED  example_crash            1 passed, 1 timed out (round 2 of 3)");
	assert_string_equal(run_fmt_suite("serial", skip, 0, 1, buf, sizeof(buf)),
			    "SKIPPED serial                   2 skipped");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(partition_balances_whole_suites),
		cmocka_unit_test(partition_uses_measured_times),
		cmocka_unit_test(partition_destructive),
		cmocka_unit_test(shuffle_is_a_seeded_permutation),
		cmocka_unit_test(order_keeps_suites_together),
		cmocka_unit_test(merged_ktap_in_plan_order),
		cmocka_unit_test(flaky_across_rounds),
		cmocka_unit_test(console_garbage_changes_nothing),
		cmocka_unit_test(console_failure_details),
		cmocka_unit_test(format_durations),
		cmocka_unit_test(format_bar_and_counts),
		cmocka_unit_test(format_suite_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
