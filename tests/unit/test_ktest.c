/* test_ktest.c: host tests of the kt_ library: formatting, globs, and the runner on real suites. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ktest_fixtures.h"

#ifndef KT_TEST_DATA
#define KT_TEST_DATA "tests/data"
#endif

/* ---- What the test program provides to the library: console, clock, magic ---- */

struct magic {
	uint64_t id, a0, a1;
	uint32_t phase;
};

static char *out;
static size_t out_len, out_cap;
static int partial_writes; /* writes that were not exactly one whole line */
static int odd_seq_events; /* output or magic while kt_state was half-changed */
static uint64_t fake_clock;
static struct magic magics[1024];
static int nmagic;

void kt_arch_write(const char *s, size_t n)
{
	if (out_len + n + 1 > out_cap) {
		out_cap = (out_len + n + 1) * 2;
		out = realloc(out, out_cap);
		assert_non_null(out);
	}
	memcpy(out + out_len, s, n);
	out_len += n;
	out[out_len] = '\0';
	if (n == 0 || memchr(s, '\n', n) != s + n - 1)
		partial_writes++;
	odd_seq_events += kt_state.seq & 1;
}

uint64_t kt_arch_now_ns(void)
{
	return fake_clock += 1000;
}

void kt_host_magic(uint64_t id, uint64_t a0, uint64_t a1)
{
	assert_true(nmagic < (int)(sizeof(magics) / sizeof(magics[0])));
	magics[nmagic++] = (struct magic){ id, a0, a1, kt_state.phase };
	odd_seq_events += kt_state.seq & 1;
}

/* ---- Helpers ---- */

static void clear_output(void)
{
	out_len = 0;
	if (out)
		out[0] = '\0';
	partial_writes = 0;
	odd_seq_events = 0;
	nmagic = 0;
}

/* Runs the fixtures with cmdline; returns the KTAP they printed. */
static const char *run(const char *cmdline, struct kt_summary *sum)
{
	struct kt_summary local;

	clear_output();
	fx_reset();
	kt_run(cmdline, sum ? sum : &local);
	assert_int_equal(partial_writes, 0);
	assert_int_equal(odd_seq_events, 0);
	assert_int_equal(kt_state.seq % 2, 0);
	return out ? out : "";
}

static struct kt_suite *suite_at(uint32_t i)
{
	return ((struct kt_suite **)(uintptr_t)kt_state.suites)[i];
}

static const char *va_str(uint64_t va)
{
	return (const char *)(uintptr_t)va;
}

/* The suite named name, through the ABI records only; its index in *index. */
static struct kt_suite *find_suite(const char *name, uint32_t *index)
{
	for (uint32_t i = 0; i < kt_state.nsuites; i++) {
		if (strcmp(va_str(suite_at(i)->abi.name), name) == 0) {
			if (index)
				*index = i;
			return suite_at(i);
		}
	}
	fail_msg("no suite %s", name);
	return NULL;
}

/* Case i of s, through abi.cases and abi.case_stride as a host would find it. */
static struct kt_case *case_at(struct kt_suite *s, uint32_t i)
{
	return (struct kt_case *)((char *)(uintptr_t)s->abi.cases + (size_t)i * s->abi.case_stride);
}

/* "suite.case" (index in *index) through the ABI records. */
static struct kt_case *find_case(const char *suite, const char *name, uint32_t *index)
{
	struct kt_suite *s = find_suite(suite, NULL);

	for (uint32_t i = 0; i < s->abi.ncases; i++) {
		if (strcmp(va_str(case_at(s, i)->abi.name), name) == 0) {
			if (index)
				*index = i;
			return case_at(s, i);
		}
	}
	fail_msg("no case %s.%s", suite, name);
	return NULL;
}

static uint32_t case_status(const char *suite, const char *name)
{
	return find_case(suite, name, NULL)->abi.status;
}

/* The cases the last run selected, as "suite.case suite.case ...". */
static const char *selection(void)
{
	static char buf[4096];
	size_t len = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < kt_state.nsuites; i++) {
		struct kt_suite *s = suite_at(i);

		for (uint32_t j = 0; j < s->abi.ncases; j++)
			if (case_at(s, j)->abi.status != KT_ST_FILTERED)
				len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s.%s",
							len ? " " : "", va_str(s->abi.name),
							va_str(case_at(s, j)->abi.name));
	}
	return buf;
}

/* Copy of text with every "ktest_fixtures.c:<line>" made "ktest_fixtures.c:N". */
static char *without_lines(const char *text)
{
	static const char tag[] = "ktest_fixtures.c:";
	char *copy = malloc(strlen(text) + 1), *w = copy;

	assert_non_null(copy);
	while (*text) {
		if (strncmp(text, tag, sizeof(tag) - 1) == 0) {
			memcpy(w, tag, sizeof(tag) - 1);
			w += sizeof(tag) - 1;
			text += sizeof(tag) - 1;
			while (*text >= '0' && *text <= '9')
				text++;
			*w++ = 'N';
		} else {
			*w++ = *text++;
		}
	}
	*w = '\0';
	return copy;
}

/* Out of line: once inlined, GCC -fsanitize builds warn of a NULL %s argument. */
static __attribute__((noinline)) void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("missing:\n%s\n---- in:\n%s", needle, haystack);
}

static __attribute__((noinline)) void assert_lacks(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle))
		fail_msg("unexpected:\n%s\n---- in:\n%s", needle, haystack);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Compares text with tests/data/name exactly; KT_UPDATE_GOLDEN=1 rewrites the file instead. */
static void check_golden(const char *name, const char *text)
{
	const char *dir = getenv("KT_TEST_DATA") ? getenv("KT_TEST_DATA") : KT_TEST_DATA;
	char path[1024];
	char *want;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (getenv("KT_UPDATE_GOLDEN") && strcmp(getenv("KT_UPDATE_GOLDEN"), "1") == 0) {
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		fputs(text, f);
		fclose(f);
	}
	want = read_text(path);
	if (!want)
		fail_msg("cannot read %s", path);
	if (strcmp(want, text) != 0) {
		size_t i = 0, line = 1;

		while (want[i] && want[i] == text[i])
			line += want[i++] == '\n';
		fail_msg("%s differs at line %zu:\n---- want:\n%.200s\n---- got:\n%.200s", path, line,
			 want + i, text + i);
	}
	free(want);
}

/* ---- The runner ---- */

/* Runs before any kt_run: the root must already be findable. */
static void test_state_before_run(void **state)
{
	(void)state;
	assert_int_equal(kt_state.magic, KT_ABI_MAGIC);
	assert_memory_equal(&kt_state.magic, "KSCOPEKT", 8);
	assert_int_equal(kt_state.version, KT_ABI_VERSION);
	assert_int_equal(kt_state.size, sizeof(struct kt_abi_state));
	assert_int_equal(kt_state.ptr_size, sizeof(void *));
	assert_int_equal(kt_state.phase, KT_PHASE_BOOT);
	assert_int_equal(kt_state.seq, 0);
	assert_int_equal(kt_state.cur_suite, -1);
	assert_int_equal(kt_state.cur_case, -1);
	assert_int_equal(kt_state.cur_param, -1);
}

static void test_golden_full_run(void **state)
{
	struct kt_summary sum;
	const char *text = run("", &sum);

	(void)state;
	check_golden("ktest_basic.ktap", text);
	assert_false(sum.listed);
	assert_int_equal(sum.total, sum.pass + sum.fail + sum.skip);
	assert_int_equal(sum.total, 8 + 12 + 8 + 2 + 4 + 2 + 1 + 2);
	assert_int_equal(sum.fail, 12 + 2 + 2 + 1);
	assert_int_equal(sum.skip, 2 + 2 + 2);
}

static void test_rerun_is_identical(void **state)
{
	char *first;
	uint64_t seq;

	(void)state;
	first = strdup(run("", NULL));
	seq = kt_state.seq;
	assert_string_equal(run("", NULL), first);
	assert_true(kt_state.seq > seq);
	free(first);
}

static void test_passing_assertions(void **state)
{
	struct kt_summary sum;
	const char *text = run("kt.filter=kt_pass", &sum);

	(void)state;
	assert_int_equal(sum.pass, 8);
	assert_int_equal(sum.fail, 0);
	assert_int_equal(sum.total, 8);
	assert_lacks(text, "FAILED");
	assert_contains(text, "    ok 8 once\n    # kt_pass: pass:8 fail:0 skip:0 total:8\nok 1 kt_pass\n");
	assert_int_equal(fx.evals, 13);
}

/* What kt_fail's failures print, with line numbers made N. */
static const char *const failure_blocks[] = {
	"    # int_eq: EXPECTATION FAILED at ktest_fixtures.c:N\n"
	"    # Expected a == 4, but\n"
	"    #     a == 3 (0x3)\n"
	"    # int_eq: EXPECTATION FAILED at ktest_fixtures.c:N\n"
	"    # Expected a == b, but\n"
	"    #     a == 3 (0x3)\n"
	"    #     b == 4 (0x4)\n"
	"    not ok 1 int_eq\n",
	"    # Expected v > u, but\n"
	"    #     v == -5 (0xfffffffffffffffb)\n"
	"    #     u == 7 (0x7)\n",
	"    # Expected 0u < -1, but\n"
	"    #     0u == 0 (0x0)\n"
	"    # int_signs: EXPECTATION FAILED",
	"    # Expected a > 5 to be true, but\n"
	"    #     a > 5 is false\n",
	"    # Expected a == 3 to be false, but\n"
	"    #     a == 3 is true\n",
	"    # Expected p == q, but\n"
	"    #     p == 0x1000\n"
	"    #     q == 0x2000\n",
	"    # Expected p == NULL, but\n"
	"    #     p == 0x1000\n"
	"    # ptr_fails: EXPECTATION FAILED",
	"    # Expected np != NULL, but\n"
	"    #     np == (null)\n"
	"    not ok 4 ptr_fails\n",
	"    # Expected s == \"world\", but\n"
	"    #     s == \"hello\"\n"
	"    # str_fails: EXPECTATION FAILED",
	"    # Expected nul == s, but\n"
	"    #     nul == (null)\n"
	"    #     s == \"hello\"\n",
	"    # Expected memcmp(x, y, sizeof(x)) == 0, but\n"
	"    #     x == 01 02 03 <04> 05 06 07 08\n"
	"    #     y == 01 02 03 <ff> 05 06 07 08\n"
	"    #     first difference at offset 3 of 8\n",
	"    #     first difference at offset 35 of 40\n",
	"    #     x == 01 02\n"
	"    #     NULL == (null)\n"
	"    not ok 6 mem_fails\n",
	"    #     a == 3 (0x3)\n"
	"    # a was 3, wanted 4\n"
	"    # msg_fails: EXPECTATION FAILED at ktest_fixtures.c:N\n"
	"    # plain failure: details\n"
	"    # msg_fails: EXPECTATION FAILED at ktest_fixtures.c:N\n"
	"    # line one\n"
	"    # line two\n"
	"    not ok 7 msg_fails\n",
	"    # assert_aborts: ASSERTION FAILED at ktest_fixtures.c:N\n"
	"    # Expected 1 + 1 == 3, but\n"
	"    #     1 + 1 == 2 (0x2)\n"
	"    not ok 8 assert_aborts\n",
	"    # assert_fail: ASSERTION FAILED at ktest_fixtures.c:N\n"
	"    # fatal 7\n"
	"    not ok 9 assert_fail\n",
	"    # helper_aborts: ASSERTION FAILED at ktest_fixtures.c:N\n"
	"    # Expected fx.reached > 100 to be true, but\n"
	"    #     fx.reached > 100 is false\n"
	"    # helper gave up\n"
	"    not ok 10 helper_aborts\n",
	"    not ok 12 skip_then_fail\n"
	"    # kt_fail: pass:0 fail:12 skip:0 total:12\n"
	"not ok 1 kt_fail\n",
};

static void test_failure_texts(void **state)
{
	struct kt_summary sum;
	char *text = without_lines(run("kt.filter=kt_fail", &sum));
	char big[200];

	(void)state;
	for (size_t i = 0; i < sizeof(failure_blocks) / sizeof(failure_blocks[0]); i++)
		assert_contains(text, failure_blocks[i]);
	/* Only the first 32 bytes are shown, then "...". */
	snprintf(big, sizeof(big), "    #     big2 == %s ...\n",
		 "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
		 "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
	assert_contains(text, big);
	assert_int_equal(sum.fail, 12);
	free(text);
}

static void test_failure_records(void **state)
{
	struct kt_case *c;

	(void)state;
	run("kt.filter=kt_fail", NULL);
	c = find_case("kt_fail", "int_eq", NULL);
	assert_int_equal(c->abi.failures, 2);
	assert_string_equal(va_str(c->abi.fail_file), "ktest_fixtures.c");
	assert_true(c->abi.fail_line > 0);
	c = find_case("kt_fail", "msg_fails", NULL);
	assert_int_equal(c->abi.failures, 3);
	c = find_case("kt_fail", "assert_aborts", NULL);
	assert_int_equal(c->abi.failures, 1);
	assert_int_equal(c->abi.status, KT_ST_FAIL);
	/* A case marked skipped that also fails is a failure. */
	assert_int_equal(case_status("kt_fail", "skip_then_fail"), KT_ST_FAIL);
	c = find_case("kt_pass", "ints", NULL);
	assert_int_equal(c->abi.status, KT_ST_FILTERED);
	assert_int_equal(c->abi.failures, 0);
	assert_int_equal(c->abi.fail_file, 0);
}

static void test_operands_evaluated_once(void **state)
{
	(void)state;
	run("kt.filter=kt_pass.once,kt_fail.once_fail", NULL);
	assert_int_equal(case_status("kt_pass", "once"), KT_ST_PASS);
	assert_int_equal(case_status("kt_fail", "once_fail"), KT_ST_FAIL);
	assert_int_equal(fx.fail_evals, 10);
	assert_int_equal(find_case("kt_fail", "once_fail", NULL)->abi.failures, 6);
}

static void test_assert_aborts(void **state)
{
	(void)state;
	run("kt.filter=kt_fail.assert_*,kt_fail.helper_aborts kt.filter=kt_flow.skip", NULL);
	assert_string_equal(selection(), "kt_fail.assert_aborts kt_fail.assert_fail "
					 "kt_fail.helper_aborts kt_flow.skip");
	assert_int_equal(case_status("kt_fail", "assert_aborts"), KT_ST_FAIL);
	assert_int_equal(case_status("kt_fail", "assert_fail"), KT_ST_FAIL);
	assert_int_equal(case_status("kt_fail", "helper_aborts"), KT_ST_FAIL);
	assert_int_equal(case_status("kt_flow", "skip"), KT_ST_SKIP);
	assert_int_equal(fx.reached, 0);
}

static void test_cleanups(void **state)
{
	struct kt_case *c;
	const char *text;

	(void)state;
	text = run("kt.filter=kt_flow.cleanup_*", NULL);
	/* exit, then cleanups newest first; the aborting one does not stop the rest. */
	assert_string_equal(fx.trace, "init;body;exit;c3;c2;c1;init;exit;");
	assert_int_equal(fx.reached, 0);
	c = find_case("kt_flow", "cleanup_order", NULL);
	assert_int_equal(c->abi.status, KT_ST_FAIL);
	assert_int_equal(c->abi.failures, 2);
	assert_contains(text, "    # cleanup_order: ASSERTION FAILED");
	assert_contains(text, "    # cleanup gave up\n");
	/* One more than KT_MAX_CLEANUPS: refused, and run at once. */
	for (int i = 0; i < KT_MAX_CLEANUPS; i++)
		assert_int_equal(fx.cleanup_rc[i], 0);
	assert_int_equal(fx.cleanup_rc[KT_MAX_CLEANUPS], -1);
	assert_int_equal(fx.cleanups_run, KT_MAX_CLEANUPS + 1);
	assert_int_equal(fx.cleanup_early, 1);
	assert_int_equal(case_status("kt_flow", "cleanup_overflow"), KT_ST_PASS);
}

static void test_init_failure(void **state)
{
	const char *text;

	(void)state;
	text = run("kt.filter=kt_flow.init_fails", NULL);
	assert_string_equal(fx.trace, "init;exit;");
	assert_int_equal(fx.reached, 0);
	assert_int_equal(case_status("kt_flow", "init_fails"), KT_ST_FAIL);
	assert_contains(text, "    # init_fails: failed to initialize: -7\n    not ok 1 init_fails\n");
}

static void test_suite_init_failure(void **state)
{
	struct kt_summary sum;
	const char *text;

	(void)state;
	text = run("kt.filter=kt_suite_init", &sum);
	assert_int_equal(fx.suite_inits, 1);
	assert_int_equal(fx.suite_exits, 1);
	assert_int_equal(fx.case_bodies, 0);
	assert_int_equal(sum.fail, 2);
	assert_int_equal(case_status("kt_suite_init", "never_one"), KT_ST_FAIL);
	assert_int_equal(find_suite("kt_suite_init", NULL)->abi.status, KT_ST_FAIL);
	assert_contains(text, "    # never_one: suite_init failed: -5\n    not ok 1 never_one\n"
			      "    # never_two: suite_init failed: -5\n    not ok 2 never_two\n");
	assert_contains(text, "not ok 1 kt_suite_init\n");
}

static void test_skips(void **state)
{
	struct kt_summary sum;
	const char *text;

	(void)state;
	text = run("kt.filter=kt_flow.skip,kt_flow.mark_skipped,kt_allskip", &sum);
	assert_int_equal(sum.skip, 4);
	assert_int_equal(sum.total, 4);
	assert_int_equal(fx.reached, 0);
	/* kt_mark_skipped lets the case go on; kt_skip does not. */
	assert_string_equal(fx.trace, "init;exit;init;after-mark;exit;");
	assert_contains(text, "    ok 1 skip # SKIP not supported on this machine\n"
			      "    ok 2 mark_skipped # SKIP partly\n");
	assert_contains(text, "ok 1 kt_flow # SKIP\n");
	assert_contains(text, "    ok 2 second # SKIP nor here\n"
			      "    # kt_allskip: pass:0 fail:0 skip:2 total:2\n"
			      "ok 2 kt_allskip # SKIP\n");
	assert_int_equal(find_suite("kt_allskip", NULL)->abi.status, KT_ST_SKIP);
}

static void test_info(void **state)
{
	(void)state;
	assert_contains(run("kt.filter=kt_flow.info", NULL),
			"    # info: hello 42\n    ok 1 info\n");
}

static void test_params(void **state)
{
	struct kt_case *c;
	const char *text;

	(void)state;
	text = run("kt.filter=kt_param", NULL);
	assert_contains(text, "    1..4\n"
			      "        KTAP version 1\n"
			      "        # Subtest: widths\n"
			      "        ok 1 width 8\n"
			      "        ok 2 width 16\n"
			      "        ok 3 width 32\n"
			      "    # widths: pass:3 fail:0 skip:0 total:3\n"
			      "    ok 1 widths\n");
	assert_contains(text, "        ok 2 param-1\n"
			      "        # counted: EXPECTATION FAILED at ktest_fixtures.c:");
	assert_contains(text, "        #     *v == 2 (0x2)\n"
			      "        not ok 3 param-2\n"
			      "        ok 4 param-3\n"
			      "    # counted: pass:3 fail:1 skip:0 total:4\n"
			      "    not ok 2 counted\n");
	assert_contains(text, "        ok 2 param-1 # SKIP beta unsupported\n"
			      "    # all_skipped: pass:0 fail:0 skip:2 total:2\n"
			      "    ok 3 all_skipped # SKIP beta unsupported\n");
	assert_contains(text, "    ok 3 all_skipped # SKIP beta unsupported\n"
			      "    # no_params: pass:0 fail:0 skip:0 total:0\n"
			      "    ok 4 no_params # SKIP no parameters\n");
	assert_lacks(text, "# Subtest: no_params");
	c = find_case("kt_param", "counted", NULL);
	assert_int_equal(c->abi.status, KT_ST_FAIL);
	assert_int_equal(c->abi.params_total, 4);
	assert_int_equal(c->abi.params_failed, 1);
	assert_true(c->abi.flags & KT_ABI_F_PARAM);
	c = find_case("kt_param", "widths", NULL);
	assert_int_equal(c->abi.status, KT_ST_PASS);
	assert_int_equal(c->abi.params_total, 3);
	assert_int_equal(case_status("kt_param", "all_skipped"), KT_ST_SKIP);
	assert_int_equal(case_status("kt_param", "no_params"), KT_ST_SKIP);
	/* Each parameter has its own init and exit, and sees its own t->param. */
	assert_int_equal(fx.param_inits, 3 + 4 + 2);
	assert_int_equal(fx.param_exits, 3 + 4 + 2);
	assert_int_equal(fx.params_seen, 3);
	assert_int_equal(fx.reached, 0);
	assert_int_equal(find_suite("kt_param", NULL)->abi.status, KT_ST_FAIL);
}

static void test_live_state(void **state)
{
	(void)state;
	run("kt.filter=kt_flow.state_live,kt_param.widths", NULL);
	assert_int_equal(fx.live_checks, 1 + 3);
	assert_int_equal(fx.live_failures, 0);
}

static void test_destructive(void **state)
{
	const char *text;

	(void)state;
	text = run("kt.filter=kt_attrs,kt_wipe", NULL);
	assert_contains(text, "    ok 1 plain\n    # destructive: true\n    ok 2 wipes_disk\n");
	assert_contains(text, "    # Subtest: kt_wipe\n    # destructive: true\n    1..1\n"
			      "    ok 1 reboots\n");
	assert_int_equal(find_case("kt_attrs", "plain", NULL)->abi.flags, 0);
	assert_int_equal(find_case("kt_attrs", "wipes_disk", NULL)->abi.flags, KT_ABI_F_DESTRUCTIVE);
	assert_int_equal(find_suite("kt_attrs", NULL)->abi.flags, 0);
	assert_int_equal(find_suite("kt_wipe", NULL)->abi.flags, KT_ABI_F_DESTRUCTIVE);
	/* A case inherits its suite's flag in the records. */
	assert_int_equal(find_case("kt_wipe", "reboots", NULL)->abi.flags, KT_ABI_F_DESTRUCTIVE);
}

static void test_opt_in(void **state)
{
	(void)state;
	assert_lacks(run("", NULL), "kt_optin");
	assert_null(strstr(fx.trace, "optin"));
	assert_int_equal(case_status("kt_optin", "runs"), KT_ST_FILTERED);
	assert_int_equal(find_suite("kt_optin", NULL)->abi.status, KT_ST_FILTERED);
	assert_int_equal(find_suite("kt_optin", NULL)->abi.flags, KT_ABI_F_OPT_IN);
	assert_int_equal(find_case("kt_optin", "runs", NULL)->abi.flags, KT_ABI_F_OPT_IN);

	assert_contains(run("kt.filter=kt_optin", NULL), "ok 1 kt_optin\n");
	assert_string_equal(fx.trace, "optin;");
	run("kt.filter=kt_opt?n.r[a-z]ns", NULL);
	assert_string_equal(fx.trace, "optin;");
}

static void test_filters(void **state)
{
	static const struct {
		const char *cmdline, *selected;
	} cases[] = {
		{ "kt.filter=kt_allskip", "kt_allskip.first kt_allskip.second" },
		{ "kt.filter=kt_flow.skip", "kt_flow.skip" },
		{ "kt.filter=kt_flow.*skip*", "kt_flow.skip kt_flow.mark_skipped" },
		{ "kt.filter=kt_flow.skip kt.filter=kt_allskip",
		  "kt_flow.skip kt_allskip.first kt_allskip.second" },
		{ "kt.filter=kt_allskip,kt_flow.skip",
		  "kt_flow.skip kt_allskip.first kt_allskip.second" },
		{ "kt.filter=,kt_allskip.s*,", "kt_allskip.second" },
		{ "kt.filter=*.priv", "kt_flow.priv" },
		{ "kt.filter=kt_[a-f]*.*_fails", "kt_fail.bool_fails kt_fail.ptr_fails "
						 "kt_fail.str_fails kt_fail.mem_fails kt_fail.msg_fails "
						 "kt_flow.init_fails" },
		{ "kt.filter=kt_suite_init.never_two kt.filter=kt_flow.priv",
		  "kt_flow.priv kt_suite_init.never_two" },
		{ "BOOT_IMAGE=/boot/kernel root=/dev/sda kt.filter=kt_allskip quiet kt.listx",
		  "kt_allskip.first kt_allskip.second" },
		{ "  kt.filter=kt_wipe\tkt.filter=kt_empty\n", "kt_wipe.reboots" },
		{ "kt.filter=nomatch", "" },
		{ "kt.filter=kt_allskip.", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(cases[i].cmdline, NULL);
		if (strcmp(selection(), cases[i].selected) != 0)
			fail_msg("\"%s\": selected \"%s\", want \"%s\"", cases[i].cmdline,
				 selection(), cases[i].selected);
	}
}

static void test_no_filter_forms(void **state)
{
	char *all;

	(void)state;
	run("", NULL);
	all = strdup(selection());
	/* Empty filters and look-alike tokens select nothing special: the default set runs. */
	run("kt.filter=", NULL);
	assert_string_equal(selection(), all);
	run("kt.filter=, kt.filterx=kt_wipe kt.filter", NULL);
	assert_string_equal(selection(), all);
	run(NULL, NULL);
	assert_string_equal(selection(), all);
	assert_null(strstr(all, "kt_optin"));
	free(all);
}

static void test_nothing_selected(void **state)
{
	struct kt_summary sum;

	(void)state;
	assert_string_equal(run("kt.filter=nomatch", &sum),
			    "KTAP version 1\n1..0\n# Totals: pass:0 fail:0 skip:0 total:0\n");
	assert_int_equal(sum.total, 0);
	assert_int_equal(kt_state.phase, KT_PHASE_DONE);
}

static void test_list(void **state)
{
	struct kt_summary sum;
	const char *text;

	(void)state;
	text = run("kt.list", &sum);
	check_golden("ktest_list.txt", text);
	assert_true(sum.listed);
	assert_int_equal(sum.total, 8 + 12 + 8 + 2 + 4 + 2 + 1 + 1 + 2);
	assert_int_equal(kt_state.phase, KT_PHASE_LISTED);
	assert_string_equal(fx.trace, "");
	assert_int_equal(nmagic, 2);
	assert_int_equal(magics[0].id, KT_MAGIC_READY);
	assert_int_equal(magics[1].id, KT_MAGIC_DONE);
	assert_int_equal(magics[1].a0, 0);

	text = run("console=ttyS0 kt.list kt.filter=kt_param.*d,kt_wipe", &sum);
	assert_string_equal(text, "# kt.list: 3 tests\n"
				  "kt_param.counted # param\n"
				  "kt_param.all_skipped # param\n"
				  "kt_wipe.reboots # destructive\n");
	assert_int_equal(sum.total, 3);
	assert_int_equal(fx.param_inits, 0);
}

static void test_magic_sequence(void **state)
{
	uint32_t flow = 0, allskip = 0, priv = 0, info = 0, second = 0;
	struct {
		uint64_t id, a0, a1;
		uint32_t phase;
	} want[12];
	int n = 0;

	(void)state;
	run("kt.filter=kt_flow.priv,kt_flow.info kt.filter=kt_allskip.second", NULL);
	find_suite("kt_flow", &flow);
	find_suite("kt_allskip", &allskip);
	find_case("kt_flow", "priv", &priv);
	find_case("kt_flow", "info", &info);
	find_case("kt_allskip", "second", &second);
	assert_true(flow < allskip);
	assert_int_equal(second, 1); /* numbering counts the filtered "first" */
#define W(i, x, y, ph) want[n++] = (typeof(want[0])){ (i), (x), (y), (ph) }
	W(KT_MAGIC_READY, (uintptr_t)&kt_state, 0, KT_PHASE_READY);
	W(KT_MAGIC_SUITE_START, flow, 0, KT_PHASE_RUNNING);
	W(KT_MAGIC_CASE_START, (uint64_t)flow << 32 | priv, 0, KT_PHASE_RUNNING);
	W(KT_MAGIC_CASE_END, (uint64_t)flow << 32 | priv, KT_ST_PASS, KT_PHASE_RUNNING);
	W(KT_MAGIC_CASE_START, (uint64_t)flow << 32 | info, 0, KT_PHASE_RUNNING);
	W(KT_MAGIC_CASE_END, (uint64_t)flow << 32 | info, KT_ST_PASS, KT_PHASE_RUNNING);
	W(KT_MAGIC_SUITE_END, flow, KT_ST_PASS, KT_PHASE_RUNNING);
	W(KT_MAGIC_SUITE_START, allskip, 0, KT_PHASE_RUNNING);
	W(KT_MAGIC_CASE_START, (uint64_t)allskip << 32 | second, 0, KT_PHASE_RUNNING);
	W(KT_MAGIC_CASE_END, (uint64_t)allskip << 32 | second, KT_ST_SKIP, KT_PHASE_RUNNING);
	W(KT_MAGIC_SUITE_END, allskip, KT_ST_SKIP, KT_PHASE_RUNNING);
	W(KT_MAGIC_DONE, 0, 0, KT_PHASE_DONE);
#undef W
	assert_int_equal(nmagic, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(magics[i].id, want[i].id);
		assert_int_equal(magics[i].a0, want[i].a0);
		assert_int_equal(magics[i].a1, want[i].a1);
		assert_int_equal(magics[i].phase, want[i].phase);
	}
	/* DONE carries the number of failed cases. */
	run("kt.filter=kt_suite_init", NULL);
	assert_int_equal(magics[nmagic - 1].id, KT_MAGIC_DONE);
	assert_int_equal(magics[nmagic - 1].a0, 2);
}

static void test_state_after_run(void **state)
{
	struct kt_summary sum;
	uint64_t seq_before = kt_state.seq;
	struct kt_suite *s;
	struct kt_case *c;

	(void)state;
	run("", &sum);
	assert_int_equal(kt_state.magic, KT_ABI_MAGIC);
	assert_int_equal(kt_state.phase, KT_PHASE_DONE);
	assert_int_equal(kt_state.seq % 2, 0);
	assert_true(kt_state.seq >= seq_before + 2 * (2 + 2 * sum.total));
	assert_int_equal(kt_state.nsuites, 10);
	assert_int_equal(kt_state.ptr_size, sizeof(void *));
	assert_int_equal(kt_state.cur_suite, -1);
	assert_int_equal(kt_state.cur_case, -1);
	assert_int_equal(kt_state.cur_param, -1);
	assert_int_equal(kt_state.n_pass, sum.pass);
	assert_int_equal(kt_state.n_fail, sum.fail);
	assert_int_equal(kt_state.n_skip, sum.skip);
	assert_int_equal(kt_state.n_selected, sum.total);
	assert_true(kt_state.now_ns > 0);
	/* The host shim emits no magic sites: an empty table. */
	assert_int_equal(kt_state.nsites, 0);

	s = find_suite("kt_flow", NULL);
	assert_ptr_equal((void *)(uintptr_t)s->abi.cases, s->cases);
	assert_int_equal(s->abi.ncases, 8);
	assert_int_equal(s->abi.case_stride, sizeof(struct kt_case));
	assert_int_equal(s->abi.n_selected, 8);
	assert_int_equal(s->abi.n_pass, 4);
	assert_int_equal(s->abi.n_fail, 2);
	assert_int_equal(s->abi.n_skip, 2);
	assert_int_equal(s->abi.status, KT_ST_FAIL);
	assert_true(s->abi.duration_ns > 0);
	c = find_case("kt_flow", "priv", NULL);
	assert_ptr_equal(c, &s->cases[0]);
	assert_int_equal(c->abi.status, KT_ST_PASS);
	assert_true(c->abi.start_ns >= s->abi.start_ns);
	assert_true(c->abi.duration_ns > 0);
	assert_int_equal(c->abi.failures, 0);
	assert_int_equal(case_status("kt_flow", "skip"), KT_ST_SKIP);
	assert_int_equal(case_status("kt_flow", "init_fails"), KT_ST_FAIL);
	assert_int_equal(find_suite("kt_pass", NULL)->abi.status, KT_ST_PASS);
	assert_int_equal(find_suite("kt_empty", NULL)->abi.status, KT_ST_FILTERED);
	assert_int_equal(find_suite("kt_empty", NULL)->abi.ncases, 0);
	assert_int_equal(find_suite("kt_allskip", NULL)->abi.status, KT_ST_SKIP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_before_run), /* first: nothing has run yet */
		cmocka_unit_test(test_golden_full_run),
		cmocka_unit_test(test_rerun_is_identical),
		cmocka_unit_test(test_passing_assertions),
		cmocka_unit_test(test_failure_texts),
		cmocka_unit_test(test_failure_records),
		cmocka_unit_test(test_operands_evaluated_once),
		cmocka_unit_test(test_assert_aborts),
		cmocka_unit_test(test_cleanups),
		cmocka_unit_test(test_init_failure),
		cmocka_unit_test(test_suite_init_failure),
		cmocka_unit_test(test_skips),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_live_state),
		cmocka_unit_test(test_destructive),
		cmocka_unit_test(test_opt_in),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_no_filter_forms),
		cmocka_unit_test(test_nothing_selected),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_magic_sequence),
		cmocka_unit_test(test_state_after_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
