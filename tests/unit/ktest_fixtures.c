/* ktest_fixtures.c: real kt_ suites that exercise every feature of the runner and assertions. */
/* The golden KTAP names this file: keep __FILE__ the same whatever the build directory. */
#line 4 "ktest_fixtures.c"
#include <stdio.h>
#include <string.h>

#include "ktest_fixtures.h"

struct fx_record fx;

void fx_reset(void)
{
	memset(&fx, 0, sizeof(fx));
}

static void fx_trace(const char *word)
{
	size_t len = strlen(fx.trace);

	snprintf(fx.trace + len, sizeof(fx.trace) - len, "%s;", word);
}

static int fx_bump(void)
{
	return ++fx.evals;
}

/* Checks, from inside a running case, that kt_state describes this very case. */
static void fx_live(struct kt_test *t)
{
	struct kt_suite *const *suites = (struct kt_suite *const *)(uintptr_t)kt_state.suites;
	bool ok = kt_state.seq % 2 == 0 && kt_state.phase == KT_PHASE_RUNNING &&
		  kt_state.cur_suite >= 0 && (uint32_t)kt_state.cur_suite < kt_state.nsuites &&
		  suites[kt_state.cur_suite] == t->suite && kt_state.cur_case >= 0 &&
		  &t->suite->cases[kt_state.cur_case] == t->kcase &&
		  t->kcase->abi.status == KT_ST_RUNNING &&
		  t->suite->abi.status == KT_ST_RUNNING &&
		  (t->param ? kt_state.cur_param >= 0 : kt_state.cur_param == -1);

	fx.live_checks++;
	fx.live_failures += !ok;
}

/* ---- kt_pass: every assertion family, passing ---- */

enum fx_color { FX_RED, FX_BLUE };

static void ints(struct kt_test *t)
{
	int a = 3;
	unsigned int u = 3;
	long long minus_one = -1;
	unsigned long long all_ones = ~0ULL;
	signed char sc = -2;
	unsigned char uc = 200;
	short sh = -300;
	size_t sz = 5;
	bool b = true;
	enum fx_color color = FX_BLUE;

	KT_EXPECT_EQ(t, a, 3);
	KT_EXPECT_EQ(t, a, u);
	KT_EXPECT_NE(t, minus_one, all_ones); /* equal bits, different values */
	KT_EXPECT_LT(t, -1, 0u);
	KT_EXPECT_LT(t, sc, uc);
	KT_EXPECT_LE(t, sh, sc);
	KT_EXPECT_LE(t, a, 3);
	KT_EXPECT_GT(t, 0u, -1);
	KT_EXPECT_GT(t, all_ones, minus_one);
	KT_EXPECT_GE(t, sz, 5);
	KT_EXPECT_GE(t, sz, sz);
	KT_EXPECT_EQ(t, b, 1);
	KT_EXPECT_EQ(t, color, FX_BLUE);
	KT_EXPECT_EQ(t, (long long)-9223372036854775807LL - 1, -9223372036854775807LL - 1);
}

static void bools(struct kt_test *t)
{
	int a = 3;

	KT_EXPECT_TRUE(t, a == 3);
	KT_EXPECT_FALSE(t, a == 4);
	KT_EXPECT_TRUE(t, a); /* any non-zero scalar */
	KT_ASSERT_TRUE(t, a);
	KT_ASSERT_FALSE(t, 0);
}

static void pointers(struct kt_test *t)
{
	int a = 0;
	int *p = &a, *np = NULL;

	KT_EXPECT_NULL(t, np);
	KT_EXPECT_NOT_NULL(t, p);
	KT_EXPECT_PTR_EQ(t, p, &a);
	KT_ASSERT_NULL(t, np);
	KT_ASSERT_NOT_NULL(t, p);
	KT_ASSERT_PTR_EQ(t, np, NULL);
}

static void strings(struct kt_test *t)
{
	char buf[8] = "hello";
	const char *nul = NULL;

	KT_EXPECT_STR_EQ(t, buf, "hello");
	KT_EXPECT_STR_NE(t, buf, "world");
	KT_EXPECT_STR_EQ(t, nul, NULL); /* NULL equals only NULL */
	KT_EXPECT_STR_NE(t, nul, "");
	KT_ASSERT_STR_EQ(t, "", "");
	KT_ASSERT_STR_NE(t, "a", "ab");
}

static void memory(struct kt_test *t)
{
	const unsigned char x[4] = { 1, 2, 3, 4 }, y[4] = { 1, 2, 3, 4 };

	KT_EXPECT_MEM_EQ(t, x, y, sizeof(x));
	KT_EXPECT_MEM_EQ(t, x, NULL, 0); /* nothing to compare */
	KT_ASSERT_MEM_EQ(t, "abc", "abd", 2);
}

static void messages(struct kt_test *t)
{
	int a = 1;

	KT_EXPECT_EQ_MSG(t, a, 1, "a is %d", a);
	KT_EXPECT_NE_MSG(t, a, 2, "no args");
	KT_EXPECT_LT_MSG(t, a, 2, "%s", "lt");
	KT_EXPECT_LE_MSG(t, a, 1, "le");
	KT_EXPECT_GT_MSG(t, a, 0, "gt");
	KT_EXPECT_GE_MSG(t, a, 1, "ge");
	KT_EXPECT_TRUE_MSG(t, a, "true");
	KT_EXPECT_FALSE_MSG(t, !a, "false");
	KT_EXPECT_NULL_MSG(t, NULL, "null");
	KT_EXPECT_NOT_NULL_MSG(t, &a, "not null");
	KT_EXPECT_PTR_EQ_MSG(t, &a, &a, "ptr");
	KT_EXPECT_STR_EQ_MSG(t, "x", "x", "str");
	KT_EXPECT_STR_NE_MSG(t, "x", "y", "str");
	KT_EXPECT_MEM_EQ_MSG(t, "ab", "ab", 2, "mem %zu", (size_t)2);
}

static void asserts(struct kt_test *t)
{
	int a = 1;

	KT_ASSERT_EQ(t, a, 1);
	KT_ASSERT_NE(t, a, 2);
	KT_ASSERT_LT(t, a, 2);
	KT_ASSERT_LE(t, a, 1);
	KT_ASSERT_GT(t, a, 0);
	KT_ASSERT_GE(t, a, 1);
	KT_ASSERT_EQ_MSG(t, a, 1, "m");
	KT_ASSERT_NE_MSG(t, a, 2, "m");
	KT_ASSERT_LT_MSG(t, a, 2, "m");
	KT_ASSERT_LE_MSG(t, a, 1, "m");
	KT_ASSERT_GT_MSG(t, a, 0, "m");
	KT_ASSERT_GE_MSG(t, a, 1, "m");
	KT_ASSERT_TRUE_MSG(t, a, "m");
	KT_ASSERT_FALSE_MSG(t, !a, "m");
	KT_ASSERT_NULL_MSG(t, NULL, "m");
	KT_ASSERT_NOT_NULL_MSG(t, &a, "m");
	KT_ASSERT_PTR_EQ_MSG(t, &a, &a, "m");
	KT_ASSERT_STR_EQ_MSG(t, "x", "x", "m");
	KT_ASSERT_STR_NE_MSG(t, "x", "y", "m");
	KT_ASSERT_MEM_EQ_MSG(t, "ab", "ab", 2, "m");
}

/* Each operand is evaluated exactly once: the counter says how often. */
static void once(struct kt_test *t)
{
	fx.evals = 0;
	KT_EXPECT_EQ(t, fx_bump(), 1);
	KT_EXPECT_LT(t, fx_bump(), 100 + fx_bump());
	KT_EXPECT_TRUE(t, fx_bump() == 4);
	KT_EXPECT_NOT_NULL(t, fx_bump() ? &fx : NULL);
	KT_EXPECT_PTR_EQ(t, fx_bump() ? &fx : NULL, fx_bump() ? &fx : NULL);
	KT_EXPECT_STR_EQ(t, fx_bump() ? "a" : "b", fx_bump() ? "a" : "b");
	KT_EXPECT_MEM_EQ(t, fx_bump() ? "ab" : "", fx_bump() ? "ab" : "", (size_t)(fx_bump() - 9));
	KT_ASSERT_EQ(t, fx_bump(), 13);
	KT_EXPECT_EQ(t, fx.evals, 13);
}

static struct kt_case pass_cases[] = {
	KT_CASE(ints), KT_CASE(bools), KT_CASE(pointers), KT_CASE(strings),
	KT_CASE(memory), KT_CASE(messages), KT_CASE(asserts), KT_CASE(once),
	{},
};
static struct kt_suite pass_suite = { .name = "kt_pass", .cases = pass_cases };
KT_SUITE(pass_suite);

/* ---- kt_fail: every assertion family, failing; the golden KTAP shows what they print ---- */

static void int_eq(struct kt_test *t)
{
	int a = 3, b = 4;

	KT_EXPECT_EQ(t, a, 4);
	KT_EXPECT_EQ(t, a, b);
}

static void int_signs(struct kt_test *t)
{
	long v = -5;
	unsigned int u = 7;

	KT_EXPECT_GT(t, v, u);
	KT_EXPECT_LT(t, 0u, -1);
	KT_EXPECT_NE(t, 18446744073709551615ULL, ~0ULL);
}

static void bool_fails(struct kt_test *t)
{
	int a = 3;

	KT_EXPECT_TRUE(t, a > 5);
	KT_EXPECT_FALSE(t, a == 3);
}

static void ptr_fails(struct kt_test *t)
{
	void *p = (void *)0x1000, *q = (void *)0x2000, *np = NULL;

	KT_EXPECT_PTR_EQ(t, p, q);
	KT_EXPECT_NULL(t, p);
	KT_EXPECT_NOT_NULL(t, np);
}

static void str_fails(struct kt_test *t)
{
	const char *s = "hello", *nul = NULL;

	KT_EXPECT_STR_EQ(t, s, "world");
	KT_EXPECT_STR_NE(t, s, "hello");
	KT_EXPECT_STR_EQ(t, nul, s);
}

static void mem_fails(struct kt_test *t)
{
	static const unsigned char x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const unsigned char y[8] = { 1, 2, 3, 0xff, 5, 6, 7, 8 };
	unsigned char big1[40] = { 0 }, big2[40] = { 0 };

	big2[35] = 0xaa;
	KT_EXPECT_MEM_EQ(t, x, y, sizeof(x));
	KT_EXPECT_MEM_EQ(t, big1, big2, sizeof(big1));
	KT_EXPECT_MEM_EQ(t, x, NULL, 2);
}

static void msg_fails(struct kt_test *t)
{
	int a = 3;

	KT_EXPECT_EQ_MSG(t, a, 4, "a was %d, wanted %d", a, 4);
	KT_FAIL(t, "plain failure: %s", "details");
	KT_FAIL(t, "line one\nline two");
}

static void assert_aborts(struct kt_test *t)
{
	KT_ASSERT_EQ(t, 1 + 1, 3);
	fx.reached++;
}

static void assert_fail(struct kt_test *t)
{
	KT_ASSERT_FAIL(t, "fatal %d", 7);
	fx.reached++;
}

static void fx_helper(struct kt_test *t)
{
	KT_ASSERT_TRUE_MSG(t, fx.reached > 100, "helper gave up");
	fx.reached++;
}

static void helper_aborts(struct kt_test *t)
{
	fx_helper(t);
	fx.reached++;
}

/* Failing assertions evaluate their operands once too. */
static void once_fail(struct kt_test *t)
{
	fx.evals = 0;
	KT_EXPECT_EQ(t, fx_bump(), 0);
	KT_EXPECT_GT(t, fx_bump(), 100 + fx_bump());
	KT_EXPECT_FALSE(t, fx_bump());
	KT_EXPECT_NULL(t, fx_bump() ? (void *)0x10 : NULL);
	KT_EXPECT_STR_EQ(t, fx_bump() ? "a" : "b", fx_bump() ? "c" : "d");
	KT_EXPECT_MEM_EQ(t, fx_bump() ? "ab" : "", fx_bump() ? "ac" : "", (size_t)(fx_bump() - 8));
	fx.fail_evals = fx.evals;
}

static void skip_then_fail(struct kt_test *t)
{
	kt_mark_skipped(t, "marked first");
	KT_EXPECT_EQ(t, 1, 2);
}

static struct kt_case fail_cases[] = {
	KT_CASE(int_eq), KT_CASE(int_signs), KT_CASE(bool_fails), KT_CASE(ptr_fails),
	KT_CASE(str_fails), KT_CASE(mem_fails), KT_CASE(msg_fails), KT_CASE(assert_aborts),
	KT_CASE(assert_fail), KT_CASE(helper_aborts), KT_CASE(once_fail), KT_CASE(skip_then_fail),
	{},
};
static struct kt_suite fail_suite = { .name = "kt_fail", .cases = fail_cases };
KT_SUITE(fail_suite);

/* ---- kt_flow: hooks, cleanups, skips, kt_info ---- */

static int flow_init(struct kt_test *t)
{
	fx_trace("init");
	t->priv = &fx;
	return strcmp(t->kcase->name, "init_fails") == 0 ? -7 : 0;
}

static void flow_exit(struct kt_test *t)
{
	(void)t;
	fx_trace("exit");
}

static void priv(struct kt_test *t)
{
	fx_trace("priv");
	KT_EXPECT_PTR_EQ(t, t->priv, &fx);
	KT_EXPECT_NULL(t, t->param);
}

static void info(struct kt_test *t)
{
	kt_info(t, "hello %d", 42);
}

static void skip(struct kt_test *t)
{
	kt_skip(t, "not supported on %s", "this machine");
	fx.reached++;
}

static void mark_skipped(struct kt_test *t)
{
	kt_mark_skipped(t, "partly");
	fx_trace("after-mark");
}

static void init_fails(struct kt_test *t)
{
	(void)t;
	fx.reached++;
}

static void cleanup_word(void *data)
{
	fx_trace(data);
}

static void cleanup_aborts(void *data)
{
	fx_trace("c2");
	KT_ASSERT_FAIL((struct kt_test *)data, "cleanup gave up");
	fx.reached++;
}

/* Cleanups run newest first after exit, even after an ASSERT, each under its own abort point. */
static void cleanup_order(struct kt_test *t)
{
	fx_trace("body");
	KT_EXPECT_EQ(t, kt_add_cleanup(t, cleanup_word, "c1"), 0);
	KT_EXPECT_EQ(t, kt_add_cleanup(t, cleanup_aborts, t), 0);
	KT_EXPECT_EQ(t, kt_add_cleanup(t, cleanup_word, "c3"), 0);
	KT_ASSERT_FAIL(t, "stop here");
	fx.reached++;
}

static void cleanup_count(void *data)
{
	(void)data;
	fx.cleanups_run++;
	fx.cleanup_early += !fx.body_done;
}

static void cleanup_overflow(struct kt_test *t)
{
	for (int i = 0; i <= KT_MAX_CLEANUPS; i++)
		fx.cleanup_rc[i] = kt_add_cleanup(t, cleanup_count, NULL);
	fx.body_done = true;
}

static void state_live(struct kt_test *t)
{
	fx_live(t);
}

static struct kt_case flow_cases[] = {
	KT_CASE(priv), KT_CASE(info), KT_CASE(skip), KT_CASE(mark_skipped),
	KT_CASE(init_fails), KT_CASE(cleanup_order), KT_CASE(cleanup_overflow),
	KT_CASE(state_live), {},
};
static struct kt_suite flow_suite = {
	.name = "kt_flow", .cases = flow_cases, .init = flow_init, .exit = flow_exit,
};
KT_SUITE(flow_suite);

/* ---- kt_suite_init: suite_init fails, every case fails without running ---- */

static int failing_suite_init(struct kt_suite *s)
{
	(void)s;
	fx.suite_inits++;
	return -5;
}

static void counting_suite_exit(struct kt_suite *s)
{
	(void)s;
	fx.suite_exits++;
}

static void never_one(struct kt_test *t)
{
	(void)t;
	fx.case_bodies++;
}

static void never_two(struct kt_test *t)
{
	(void)t;
	fx.case_bodies++;
}

static struct kt_case suite_init_cases[] = { KT_CASE(never_one), KT_CASE(never_two), {} };
static struct kt_suite suite_init_suite = {
	.name = "kt_suite_init", .cases = suite_init_cases,
	.suite_init = failing_suite_init, .suite_exit = counting_suite_exit,
};
KT_SUITE(suite_init_suite);

/* ---- kt_param: parameterized cases ---- */

static int param_init(struct kt_test *t)
{
	(void)t;
	fx.param_inits++;
	return 0;
}

static void param_exit(struct kt_test *t)
{
	(void)t;
	fx.param_exits++;
}

/* Not const: KT_ARRAY_PARAM must take writable arrays too. */
static int width_values[] = { 8, 16, 32 };

static void width_desc(const int *w, char *desc)
{
	snprintf(desc, KT_PARAM_DESC_SIZE, "width %d", *w);
}

KT_ARRAY_PARAM(width, width_values, width_desc);

static void widths(struct kt_test *t)
{
	const int *w = t->param;

	fx_live(t);
	fx.params_seen += w == &width_values[kt_state.cur_param];
	KT_EXPECT_EQ(t, *w % 8, 0);
}

static const int counted_values[] = { 0, 1, 2, 3 };

/* A hand-written generator, without descriptions. */
static const void *counted_gen(const void *prev, char *desc)
{
	const int *p = prev ? (const int *)prev + 1 : counted_values;

	(void)desc;
	return p < counted_values + 4 ? p : NULL;
}

static void counted(struct kt_test *t)
{
	const int *v = t->param;

	KT_EXPECT_NE(t, *v, 2);
}

static const char *const skipped_names[] = { "alpha", "beta" };

KT_ARRAY_PARAM(skipped, skipped_names, NULL);

static void all_skipped(struct kt_test *t)
{
	kt_skip(t, "%s unsupported", *(const char *const *)t->param);
}

static const void *empty_gen(const void *prev, char *desc)
{
	(void)prev;
	(void)desc;
	return NULL;
}

static void no_params(struct kt_test *t)
{
	(void)t;
	fx.reached++;
}

static struct kt_case param_cases[] = {
	KT_CASE_PARAM(widths, width_gen_params),
	KT_CASE_PARAM(counted, counted_gen),
	KT_CASE_PARAM(all_skipped, skipped_gen_params),
	KT_CASE_PARAM(no_params, empty_gen),
	{},
};
static struct kt_suite param_suite = {
	.name = "kt_param", .cases = param_cases, .init = param_init, .exit = param_exit,
};
KT_SUITE(param_suite);

/* ---- Flags: destructive cases and suites, opt-in suites ---- */

static void plain(struct kt_test *t)
{
	(void)t;
}

static void wipes_disk(struct kt_test *t)
{
	(void)t;
}

static struct kt_case attr_cases[] = {
	KT_CASE(plain), KT_CASE_FLAGS(wipes_disk, KT_DESTRUCTIVE), {},
};
static struct kt_suite attr_suite = { .name = "kt_attrs", .cases = attr_cases };
KT_SUITE(attr_suite);

static void reboots(struct kt_test *t)
{
	(void)t;
}

static struct kt_case wipe_cases[] = { KT_CASE(reboots), {} };
static struct kt_suite wipe_suite = {
	.name = "kt_wipe", .cases = wipe_cases, .flags = KT_DESTRUCTIVE,
};
KT_SUITE(wipe_suite);

static void runs(struct kt_test *t)
{
	(void)t;
	fx_trace("optin");
}

static struct kt_case optin_cases[] = { KT_CASE(runs), {} };
static struct kt_suite optin_suite = { .name = "kt_optin", .cases = optin_cases,
				       .flags = KT_OPT_IN };
KT_SUITE(optin_suite);

/* ---- kt_allskip: a suite whose cases all skip is itself skipped ---- */

static void first(struct kt_test *t)
{
	kt_skip(t, "not here");
}

static void second(struct kt_test *t)
{
	kt_skip(t, "nor here");
}

static struct kt_case allskip_cases[] = { KT_CASE(first), KT_CASE(second), {} };
static struct kt_suite allskip_suite = { .name = "kt_allskip", .cases = allskip_cases };
KT_SUITE(allskip_suite);

/* ---- kt_empty: no cases, so never printed ---- */

static struct kt_case empty_cases[] = { {} };
static struct kt_suite empty_suite = { .name = "kt_empty", .cases = empty_cases };
KT_SUITE(empty_suite);
