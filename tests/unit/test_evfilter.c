/* test_evfilter.c: the filter language: what each spec selects, errors and carets, rule sets. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/evfilter.h>
#include <kscope/kt_abi.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define K 0xffffffff80000000ull

/* ---- a sample of every kind ---- */

enum {
	MAGIC_BOOT, MAGIC_42, MAGIC_USER,
	INT_32, INT_47, INT_48,
	EXC_DE, EXC_GP, EXC_PF,
	SYSCALL_1, SYSCALL_60, SYSRET_1, SYSRET_ANON,
	TEST_START, TEST_PASS, TEST_FAIL_MM, TEST_FAIL_SCHED, TEST_SKIP, TEST_CRASH,
	VM_STOP, VM_PANIC, VM_SHUTDOWN,
	SER0_PANIC, SER1_COLON, SER0_OK,
	BP_KMAIN, BP_KMAIN_10,
	WP_W_COUNTER, WP_R_COUNTER_4, WP_A_COUNTER, WP_W_OTHER,
	NSAMPLES
};

#define MAGIC(i) { .kind = KS_EV_MAGIC, .magic = { .id = (i) } }
#define IRQ(k, v) { .kind = (k), .irq = { .vector = (v) } }
#define TEST(ph, s, c, st) \
	{ .kind = KS_EV_TEST, .test = { .phase = (ph), .suite = s, .name = c, .status = (st) } }
#define VM(w) { .kind = KS_EV_VM, .vm = { .what = w } }
#define SERIAL(p, t) { .kind = KS_EV_SERIAL, .serial = { .port = (p), .text = t } }
#define BP(a, s) { .kind = KS_EV_BREAKPOINT, .pc = (a), .bp = { .addr = (a), .addr_sym = s, \
							        .what = "exec" } }
#define WP(a, s, w) { .kind = KS_EV_WATCHPOINT, .pc = K + 0x1234, \
		      .bp = { .addr = (a), .addr_sym = s, .what = w } }

static const struct ks_event samples[NSAMPLES] = {
	[MAGIC_BOOT] = MAGIC(KT_MAGIC_BOOT),
	[MAGIC_42] = MAGIC(0x42),
	[MAGIC_USER] = MAGIC(KT_MAGIC_USER),
	[INT_32] = IRQ(KS_EV_INTERRUPT, 32),
	[INT_47] = IRQ(KS_EV_INTERRUPT, 47),
	[INT_48] = IRQ(KS_EV_INTERRUPT, 48),
	[EXC_DE] = IRQ(KS_EV_EXCEPTION, 0),
	[EXC_GP] = IRQ(KS_EV_EXCEPTION, 13),
	[EXC_PF] = IRQ(KS_EV_EXCEPTION, 14),
	[SYSCALL_1] = { .kind = KS_EV_SYSCALL, .sys = { .nr = 1 } },
	[SYSCALL_60] = { .kind = KS_EV_SYSCALL, .sys = { .nr = 60 } },
	[SYSRET_1] = { .kind = KS_EV_SYSRET, .sys = { .nr = 1, .has_nr = true, .ret = 5 } },
	[SYSRET_ANON] = { .kind = KS_EV_SYSRET, .sys = { .ret = 1 } },
	[TEST_START] = TEST(KS_EV_TEST_START, "mm", "alloc", KT_ST_RUNNING),
	[TEST_PASS] = TEST(KS_EV_TEST_END, "mm", "alloc", KT_ST_PASS),
	[TEST_FAIL_MM] = TEST(KS_EV_TEST_END, "mm", "map", KT_ST_FAIL),
	[TEST_FAIL_SCHED] = TEST(KS_EV_TEST_END, "sched", "yield", KT_ST_FAIL),
	[TEST_SKIP] = TEST(KS_EV_TEST_END, "sched", "smp", KT_ST_SKIP),
	[TEST_CRASH] = TEST(KS_EV_TEST_END, "mm", "oom", KT_ST_RUNNING),
	[VM_STOP] = VM("stop"),
	[VM_PANIC] = VM("panic"),
	[VM_SHUTDOWN] = VM("shutdown"),
	[SER0_PANIC] = SERIAL(0, "Kernel panic: not syncing"),
	[SER1_COLON] = SERIAL(1, "a=b: c/d"),
	[SER0_OK] = SERIAL(0, "all OK"),
	[BP_KMAIN] = BP(K + 0x1000, "kmain"),
	[BP_KMAIN_10] = BP(K + 0x1010, "kmain+0x10"),
	[WP_W_COUNTER] = WP(K + 0x5000, "counter", "write"),
	[WP_R_COUNTER_4] = WP(K + 0x5004, "counter+0x4", "read"),
	[WP_A_COUNTER] = WP(K + 0x5000, "counter", "access"),
	[WP_W_OTHER] = WP(K + 0x6000, "other", "write"),
};

/* ---- what each spec selects ---- */

#define END -1
#define ALL -2

struct select_case {
	const char *spec;
	int match[NSAMPLES + 1]; /* the samples it selects, up to END; ALL for every one */
};

static const struct select_case selects[] = {
	{ "magic", { MAGIC_BOOT, MAGIC_42, MAGIC_USER, END } },
	{ "magic:*", { MAGIC_BOOT, MAGIC_42, MAGIC_USER, END } },
	{ "magic:0x42", { MAGIC_42, END } },
	{ "magic:66", { MAGIC_42, END } },
	{ "magic:1,0x100-0x1ff", { MAGIC_BOOT, MAGIC_USER, END } },
	{ "exception:14", { EXC_PF, END } },
	{ "exception:#PF", { EXC_PF, END } },
	{ "exception:pf", { EXC_PF, END } },
	{ "exception:*", { EXC_DE, EXC_GP, EXC_PF, END } },
	{ "exception", { EXC_DE, EXC_GP, EXC_PF, END } },
	{ "exception:#DE-#GP", { EXC_DE, EXC_GP, END } },
	{ "exception:0,13", { EXC_DE, EXC_GP, END } },
	{ "exception:0x0-0xd", { EXC_DE, EXC_GP, END } },
	{ "interrupt:32-47", { INT_32, INT_47, END } },
	{ "interrupt", { INT_32, INT_47, INT_48, END } },
	{ "interrupt:48,0x20", { INT_32, INT_48, END } },
	{ "interrupt:14", { END } },
	{ "syscall:1", { SYSCALL_1, END } },
	{ "syscall", { SYSCALL_1, SYSCALL_60, END } },
	{ "syscall:0-59", { SYSCALL_1, END } },
	{ "sysret", { SYSRET_1, SYSRET_ANON, END } },
	{ "sysret:1", { SYSRET_1, END } },
	{ "test", { TEST_START, TEST_PASS, TEST_FAIL_MM, TEST_FAIL_SCHED, TEST_SKIP, TEST_CRASH,
		    END } },
	{ "test:fail", { TEST_FAIL_MM, TEST_FAIL_SCHED, END } },
	{ "test:start", { TEST_START, END } },
	{ "test:end", { TEST_PASS, TEST_FAIL_MM, TEST_FAIL_SCHED, TEST_SKIP, TEST_CRASH, END } },
	{ "test:crash", { TEST_CRASH, END } },
	{ "test:fail,crash", { TEST_FAIL_MM, TEST_FAIL_SCHED, TEST_CRASH, END } },
	{ "test:fail:mm.*", { TEST_FAIL_MM, END } },
	{ "test:*:mm.*", { TEST_START, TEST_PASS, TEST_FAIL_MM, TEST_CRASH, END } },
	{ "test:pass,skip:*", { TEST_PASS, TEST_SKIP, END } },
	{ "test:end:sched.y?eld", { TEST_FAIL_SCHED, END } },
	{ "vm", { VM_STOP, VM_PANIC, VM_SHUTDOWN, END } },
	{ "vm:panic", { VM_PANIC, END } },
	{ "vm:stop,shutdown", { VM_STOP, VM_SHUTDOWN, END } },
	{ "serial", { SER0_PANIC, SER1_COLON, SER0_OK, END } },
	{ "serial:/panic/", { SER0_PANIC, END } },
	{ "serial:/PANIC/i", { SER0_PANIC, END } },
	{ "serial:/PANIC/", { END } },
	{ "serial:/^all|^a=b/", { SER1_COLON, SER0_OK, END } },
	{ "serial:1", { SER1_COLON, END } },
	{ "serial:com2", { SER1_COLON, END } },
	{ "serial:0:/O[Kk]$/", { SER0_OK, END } },
	{ "serial:com1:/: /", { SER0_PANIC, END } },
	{ "serial:1:/b: c/d/", { SER1_COLON, END } },
	{ "break:kmain", { BP_KMAIN, END } },
	{ "breakpoint:kmain", { BP_KMAIN, END } },
	{ "break:kmain+0x10", { BP_KMAIN_10, END } },
	{ "break:kmain+10", { BP_KMAIN_10, END } },
	{ "break:kmain+0", { BP_KMAIN, END } },
	{ "break:kmain-0x10", { END } },
	{ "break:0xffffffff80001010", { BP_KMAIN_10, END } },
	{ "watch:counter", { WP_W_COUNTER, WP_A_COUNTER, END } },
	{ "watch:counter:4:rw", { WP_W_COUNTER, WP_A_COUNTER, END } },
	{ "watch:counter:r", { WP_A_COUNTER, END } },
	{ "watchpoint:counter+0x4:4:r", { WP_R_COUNTER_4, END } },
	{ "watch:0xffffffff80005000:8:rw", { WP_W_COUNTER, WP_R_COUNTER_4, WP_A_COUNTER, END } },
	{ "watch:0xffffffff80005000:4:r", { WP_A_COUNTER, END } },
	{ "watch:0xffffffff80005000:w", { WP_W_COUNTER, WP_A_COUNTER, END } },
	{ "any", { ALL } },
	{ "*", { ALL } },
};

static bool wanted(const int *match, int sample)
{
	for (; *match != END; match++)
		if (*match == ALL || *match == sample)
			return true;
	return false;
}

static void selects_the_right_events(void **state)
{
	struct ks_error err = { 0 };
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(selects); i++) {
		struct ks_evfilter *f = ks_evfilter_parse(selects[i].spec, &err);
		if (!f)
			fail_msg("'%s': %s", selects[i].spec, err.msg);
		assert_string_equal(ks_evfilter_spec(f), selects[i].spec);
		for (int s = 0; s < NSAMPLES; s++) {
			bool want = wanted(selects[i].match, s);
			if (ks_evfilter_match(f, &samples[s]) != want)
				fail_msg("'%s' %s sample %d", selects[i].spec,
					 want ? "misses" : "wrongly selects", s);
		}
		ks_evfilter_free(f);
	}
}

/* ---- malformed specs ---- */

struct error_case {
	const char *spec;
	const char *msg;
	const char *caret; /* the second line of ks_evfilter_caret() */
};

static const struct error_case errors[] = {
	{ "", "empty filter spec", "  ^" },
	{ "foo", "foo: unknown event kind 'foo': use magic, interrupt, exception, syscall, sysret, "
		 "test, vm, serial, break, watch or any (column 1)", "  ^^^" },
	{ "Exception:14", "Exception:14: unknown event kind 'Exception': use magic, interrupt, "
			  "exception, syscall, sysret, test, vm, serial, break, watch or any "
			  "(column 1)", "  ^^^^^^^^^" },
	{ ":14", ":14: missing event kind (column 1)", "  ^" },
	{ "exception:1x4", "exception:1x4: bad vector '1x4' (column 11)", "            ^^^" },
	{ "exception:", "exception:: missing vector (column 11)", "            ^" },
	{ "exception:32", "exception:32: vector '32' not in 0-31 (column 11)", "            ^^" },
	{ "exception:#XX", "exception:#XX: bad vector '#XX' (column 11)", "            ^^^" },
	{ "exception:13,#PF-40", "exception:13,#PF-40: vector '40' not in 0-31 (column 18)",
	  "                   ^^" },
	{ "interrupt:256", "interrupt:256: vector '256' not in 0-255 (column 11)",
	  "            ^^^" },
	{ "interrupt:47-32", "interrupt:47-32: reversed range '47-32' (column 11)",
	  "            ^^^^^" },
	{ "interrupt:32-", "interrupt:32-: missing vector (column 14)", "               ^" },
	{ "interrupt:1,,2", "interrupt:1,,2: missing vector (column 13)", "              ^" },
	{ "interrupt:1,", "interrupt:1,: missing vector (column 13)", "              ^" },
	{ "interrupt:1 ", "interrupt:1 : bad vector '1 ' (column 11)", "            ^^" },
	{ "magic:0x", "magic:0x: bad id '0x' (column 7)", "        ^^" },
	{ "magic:99999999999999999999", "magic:99999999999999999999: bad id "
	  "'99999999999999999999' (column 7)", "        ^^^^^^^^^^^^^^^^^^^^" },
	{ "magic:pf", "magic:pf: bad id 'pf' (column 7)", "        ^^" },
	{ "magic:*,1", "magic:*,1: bad id '*' (column 7)", "        ^" },
	{ "syscall:-1", "syscall:-1: missing syscall number (column 9)", "          ^" },
	{ "syscall:1:2", "syscall:1:2: unexpected ':2' (column 10)", "           ^^" },
	{ "sysret:x", "sysret:x: bad syscall number 'x' (column 8)", "         ^" },
	{ "any:1", "any:1: unexpected ':1' (column 4)", "     ^^" },
	{ "*:", "*:: unexpected ':' (column 2)", "   ^" },
	{ "test:bogus", "test:bogus: unknown test event 'bogus': use start, end, pass, fail, skip, "
			"crash or * (column 6)", "       ^^^^^" },
	{ "test:mm.*", "test:mm.*: unknown test event 'mm.*': use start, end, pass, fail, skip, "
		       "crash or * (column 6)", "       ^^^^" },
	{ "test:", "test:: missing test event (column 6)", "       ^" },
	{ "test:fail:", "test:fail:: missing test name pattern (column 11)", "            ^" },
	{ "vm:halt", "vm:halt: unknown vm event 'halt': use stop, resume, reset, shutdown, panic "
		     "or * (column 4)", "     ^^^^" },
	{ "vm:stop:x", "vm:stop:x: unexpected ':x' (column 8)", "         ^^" },
	{ "serial:/abc", "serial:/abc: unterminated regex '/abc' (column 8)", "         ^^^^" },
	{ "serial:/a(/", "serial:/a(/: bad regex 'a(': Unmatched ( or \\( (column 9)",
	  "          ^^" },
	{ "serial://", "serial://: empty regex (column 8)", "         ^^" },
	{ "serial:/a/x", "serial:/a/x: unexpected 'x' (column 11)", "            ^" },
	{ "serial:/a/ii", "serial:/a/ii: unexpected 'ii' (column 11)", "            ^^" },
	{ "serial:x:/a/", "serial:x:/a/: bad port 'x' (column 8)", "         ^" },
	{ "serial:com0", "serial:com0: bad port 'com0' (column 8)", "         ^^^^" },
	{ "serial:0:", "serial:0:: missing regex (column 10)", "           ^" },
	{ "serial:0:abc", "serial:0:abc: bad regex 'abc': write /REGEX/ (column 10)",
	  "           ^^^" },
	{ "serial:", "serial:: missing port or regex (column 8)", "         ^" },
	{ "break", "break: missing target (column 6)", "       ^" },
	{ "break:", "break:: missing target (column 7)", "        ^" },
	{ "break:1000", "break:1000: bad address '1000': write 0x and hex digits (column 7)",
	  "        ^^^^" },
	{ "break:0xzz", "break:0xzz: bad address '0xzz': write 0x and hex digits (column 7)",
	  "        ^^^^" },
	{ "break:k main", "break:k main: bad symbol 'k main' (column 7)", "        ^^^^^^" },
	{ "break:kmain+", "break:kmain+: missing offset (column 13)", "              ^" },
	{ "break:kmain+zz", "break:kmain+zz: bad offset 'zz' (column 13)", "              ^^" },
	{ "break:kmain:x", "break:kmain:x: unexpected ':x' (column 12)", "             ^^" },
	{ "watch", "watch: missing target (column 6)", "       ^" },
	{ "watch:counter:3", "watch:counter:3: bad length '3': use 1, 2, 4 or 8 (column 15)",
	  "                ^" },
	{ "watch:counter:16", "watch:counter:16: bad length '16': use 1, 2, 4 or 8 (column 15)",
	  "                ^^" },
	{ "watch:counter:4:x", "watch:counter:4:x: bad access 'x': use w, r or rw (column 17)",
	  "                  ^" },
	{ "watch:counter:wr", "watch:counter:wr: bad access 'wr': use w, r or rw (column 15)",
	  "                ^^" },
	{ "watch:counter:", "watch:counter:: missing length or access (column 15)",
	  "                ^" },
	{ "watch:counter:4:", "watch:counter:4:: missing access (column 17)",
	  "                  ^" },
	{ "watch:counter:4:w:x", "watch:counter:4:w:x: unexpected ':x' (column 18)",
	  "                   ^^" },
	{ "watch:counter:w:4", "watch:counter:w:4: unexpected ':4' (column 16)",
	  "                 ^^" },
};

static void malformed_specs(void **state)
{
	char caret[256], want[256];
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(errors); i++) {
		struct ks_error err = { 0 };
		const char *spec = errors[i].spec;
		if (ks_evfilter_parse(spec, &err))
			fail_msg("'%s' parsed", spec);
		assert_int_equal(err.code, -EINVAL);
		if (strcmp(err.msg, errors[i].msg) != 0)
			fail_msg("'%s':\n got  %s\n want %s", spec, err.msg, errors[i].msg);
		snprintf(want, sizeof(want), "  %s\n%s", spec, errors[i].caret);
		assert_int_equal(ks_evfilter_caret(spec, false, caret, sizeof(caret)), strlen(want));
		if (strcmp(caret, want) != 0)
			fail_msg("'%s':\n got  caret\n%s\n want\n%s", spec, caret, want);
	}
}

/* A NULL err is fine, a NULL spec is an empty one, and a long spec keeps its column. */
static void error_edges(void **state)
{
	struct ks_error err = { 0 };
	char spec[300], msg[256];
	(void)state;

	assert_null(ks_evfilter_parse("nope", NULL));
	assert_null(ks_evfilter_parse(NULL, &err));
	assert_string_equal(err.msg, "empty filter spec");
	memset(spec, 'a', sizeof(spec));
	memcpy(spec, "magic:1,", 8);
	spec[sizeof(spec) - 1] = '\0';
	assert_null(ks_evfilter_parse(spec, &err));
	snprintf(msg, sizeof(msg), "%.77s...: bad id '%.100s", spec, spec + 8);
	assert_memory_equal(err.msg, msg, strlen(msg));
	assert_non_null(strstr(err.msg, "(column 9)"));
}

static void carets(void **state)
{
	char buf[64];
	(void)state;

	assert_int_equal(ks_evfilter_caret("exception:14", false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(ks_evfilter_caret("exception:1x4", false, buf, sizeof(buf)), 31);
	assert_string_equal(buf, "  exception:1x4\n            ^^^");
	assert_int_equal(ks_evfilter_caret("exception:1x4", false, buf, 20), 31);
	assert_string_equal(buf, "  exception:1x4\n   ");
	assert_int_equal(ks_evfilter_caret("exception:1x4", false, buf, 31), 31);
	assert_string_equal(buf, "  exception:1x4\n            ^^");
	assert_int_equal(ks_evfilter_caret("exception:1x4", false, NULL, 0), 31);
	assert_int_equal(ks_evfilter_caret("exception:14=halt", true, buf, sizeof(buf)), 39);
	assert_string_equal(buf, "  exception:14=halt\n               ^^^^");
	/* Without the action, '=' is part of the vector list. */
	assert_int_equal(ks_evfilter_caret("exception:14=halt", false, buf, sizeof(buf)), 39);
	assert_string_equal(buf, "  exception:14=halt\n            ^^^^^^^");
}

/* ---- what the monitor reads back ---- */

static struct ks_evfilter *parse(const char *spec)
{
	struct ks_error err = { 0 };
	struct ks_evfilter *f = ks_evfilter_parse(spec, &err);

	if (!f)
		fail_msg("'%s': %s", spec, err.msg);
	return f;
}

static void kinds_and_numbers(void **state)
{
	static const struct {
		const char *spec;
		enum ks_event_kind kind;
	} kinds[] = {
		{ "magic", KS_EV_MAGIC }, { "interrupt", KS_EV_INTERRUPT },
		{ "exception", KS_EV_EXCEPTION }, { "syscall", KS_EV_SYSCALL },
		{ "sysret", KS_EV_SYSRET }, { "test", KS_EV_TEST }, { "vm", KS_EV_VM },
		{ "serial", KS_EV_SERIAL }, { "break:f", KS_EV_BREAKPOINT },
		{ "breakpoint:f", KS_EV_BREAKPOINT }, { "watch:f", KS_EV_WATCHPOINT },
		{ "watchpoint:f", KS_EV_WATCHPOINT }, { "any", KS_EV_KIND_COUNT },
		{ "*", KS_EV_KIND_COUNT },
	};
	const struct ks_evrange *r;
	struct ks_evfilter *f;
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		f = parse(kinds[i].spec);
		assert_int_equal(ks_evfilter_kind(f), kinds[i].kind);
		assert_int_equal(ks_evfilter_ranges(f, &r), 0);
		assert_true(ks_evfilter_has(f, 12345));
		ks_evfilter_free(f);
	}
	f = parse("magic:0x42,0x100-0x1ff");
	assert_int_equal(ks_evfilter_ranges(f, &r), 2);
	assert_true(r[0].lo == 0x42 && r[0].hi == 0x42);
	assert_true(r[1].lo == 0x100 && r[1].hi == 0x1ff);
	assert_true(ks_evfilter_has(f, 0x180));
	assert_false(ks_evfilter_has(f, 0x43));
	ks_evfilter_free(f);
	f = parse("syscall:18446744073709551615");
	assert_int_equal(ks_evfilter_ranges(f, &r), 1);
	assert_true(r[0].lo == UINT64_MAX);
	ks_evfilter_free(f);
}

static void vector_sets(void **state)
{
	static const struct {
		const char *spec;
		uint64_t set[4];
	} cases[] = {
		{ "interrupt", { ~0ull, ~0ull, ~0ull, ~0ull } },
		{ "interrupt:*", { ~0ull, ~0ull, ~0ull, ~0ull } },
		{ "exception", { 0xffffffff } },
		{ "exception:*", { 0xffffffff } },
		{ "exception:#PF,#GP,nmi", { 1u << 14 | 1u << 13 | 1u << 2 } },
		{ "interrupt:32-47", { 0xffffull << 32 } },
		{ "interrupt:0x40,255,128-129", { 0, 1, 3, 1ull << 63 } },
		{ "magic", { 0 } },
		{ "any", { 0 } },
	};
	uint64_t set[4];
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ks_evfilter *f = parse(cases[i].spec);
		memset(set, 0xaa, sizeof(set));
		ks_evfilter_vectors(f, set);
		for (int w = 0; w < 4; w++)
			if (set[w] != cases[i].set[w])
				fail_msg("'%s' word %d: 0x%" PRIx64, cases[i].spec, w, set[w]);
		ks_evfilter_free(f);
	}
}

static void targets_regexes_ports(void **state)
{
	struct ks_evtarget t;
	struct ks_evfilter *f;
	bool icase;
	(void)state;

	f = parse("break:kmain+0x10");
	assert_int_equal(ks_evfilter_target(f, &t), 0);
	assert_string_equal(t.expr, "kmain+0x10");
	assert_false(t.resolved);
	assert_int_equal(t.len, 1);
	assert_int_equal(t.access, 0);
	assert_null(ks_evfilter_regex(f, NULL));
	assert_int_equal(ks_evfilter_serial_port(f), -1);
	ks_evfilter_free(f);

	f = parse("watch:0xffffffff80005000");
	assert_int_equal(ks_evfilter_target(f, &t), 0);
	assert_true(t.resolved);
	assert_true(t.addr == K + 0x5000);
	assert_int_equal(t.len, 8);
	assert_int_equal(t.access, KS_EVACC_WRITE);
	ks_evfilter_free(f);

	f = parse("watch:counter:2:rw");
	assert_int_equal(ks_evfilter_target(f, &t), 0);
	assert_int_equal(t.len, 2);
	assert_int_equal(t.access, KS_EVACC_RW);
	ks_evfilter_free(f);

	f = parse("serial:com3:/a:b/i");
	assert_int_equal(ks_evfilter_target(f, &t), -ENOENT);
	assert_string_equal(ks_evfilter_regex(f, &icase), "a:b");
	assert_true(icase);
	assert_int_equal(ks_evfilter_serial_port(f), 2);
	ks_evfilter_free(f);

	f = parse("serial");
	assert_null(ks_evfilter_regex(f, &icase));
	assert_int_equal(ks_evfilter_serial_port(f), -1);
	ks_evfilter_free(f);
}

/* Symbolic targets resolved against a System.map match by address, over the watched length. */
static void resolved_targets(void **state)
{
	static const char map[] = "ffffffff80001000 T kmain\nffffffff80005000 D counter\n";
	char path[] = "/tmp/test_evfilter_XXXXXX";
	struct ks_error err = { 0 };
	struct ks_event ev = { .kind = KS_EV_BREAKPOINT, .bp = { .addr = K + 0x1010 } };
	struct ks_evtarget t;
	struct ks_symtab *tab;
	struct ks_evfilter *f;
	int fd = mkstemp(path);
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, map, sizeof(map) - 1), sizeof(map) - 1);
	close(fd);
	tab = ks_sym_load(path, &err);
	unlink(path);
	if (!tab)
		fail_msg("%s", err.msg);

	f = parse("break:kmain+0x10");
	assert_false(ks_evfilter_match(f, &ev)); /* no symbol in the event, not resolved yet */
	assert_int_equal(ks_evfilter_resolve(f, tab, &err), 0);
	assert_int_equal(ks_evfilter_target(f, &t), 0);
	assert_true(t.resolved && t.addr == K + 0x1010);
	assert_true(ks_evfilter_match(f, &ev));
	ev.bp.addr++;
	assert_false(ks_evfilter_match(f, &ev));
	ks_evfilter_free(f);

	f = parse("break:kmain-0x1000");
	assert_int_equal(ks_evfilter_resolve(f, tab, &err), 0);
	assert_int_equal(ks_evfilter_target(f, &t), 0);
	assert_true(t.addr == K);
	ks_evfilter_free(f);

	ev = (struct ks_event){ .kind = KS_EV_WATCHPOINT, .bp = { .what = "read" } };
	f = parse("watch:counter:4:r");
	assert_int_equal(ks_evfilter_resolve(f, tab, &err), 0);
	for (uint64_t a = K + 0x4fff; a <= K + 0x5004; a++) {
		ev.bp.addr = a;
		assert_int_equal(ks_evfilter_match(f, &ev), a >= K + 0x5000 && a < K + 0x5004);
	}
	ks_evfilter_free(f);

	f = parse("break:nosuch");
	assert_int_equal(ks_evfilter_resolve(f, tab, &err), -ENOENT);
	assert_string_equal(err.msg, "break:nosuch: unknown symbol 'nosuch'");
	assert_int_equal(ks_evfilter_resolve(f, NULL, &err), -ENOENT);
	ks_evfilter_free(f);
	f = parse("break:kmain+0xffffffffffffffff");
	assert_int_equal(ks_evfilter_resolve(f, tab, &err), -ERANGE);
	assert_string_equal(err.msg, "break:kmain+0xffffffffffffffff: 'kmain+0xffffffffffffffff' "
			    "is beyond 64 bits");
	ks_evfilter_free(f);
	f = parse("exception:14");
	assert_int_equal(ks_evfilter_resolve(f, tab, &err), 0);
	ks_evfilter_free(f);
	ks_sym_free(tab);
}

/* ---- rules ---- */

static void actions_and_rules(void **state)
{
	static const struct {
		const char *text;
		const char *spec;
		enum ks_evaction action;
	} rules[] = {
		{ "exception:14=stop", "exception:14", KS_EVACT_STOP },
		{ "exception:14=dump", "exception:14", KS_EVACT_DUMP },
		{ "vm:panic=pause", "vm:panic", KS_EVACT_PAUSE },
		{ "test:fail=log", "test:fail", KS_EVACT_LOG },
		{ "test:fail", "test:fail", KS_EVACT_LOG },
		{ "serial:/a=b/", "serial:/a=b/", KS_EVACT_LOG },
		{ "serial:/a=b/=dump", "serial:/a=b/", KS_EVACT_DUMP },
		{ "serial:/x/=y/=stop", "serial:/x/=y/", KS_EVACT_STOP },
	};
	struct ks_error err = { 0 };
	struct ks_evrule rule;
	(void)state;

	for (int a = KS_EVACT_NONE; a <= KS_EVACT_STOP; a++)
		assert_int_equal(ks_evaction_by_name(ks_evaction_name(a)),
				 a == KS_EVACT_NONE ? -1 : a);
	assert_string_equal(ks_evaction_name(KS_EVACT_DUMP), "dump");
	assert_string_equal(ks_evaction_name((enum ks_evaction)9), "invalid");
	assert_int_equal(ks_evaction_by_name("halt"), -1);
	assert_int_equal(ks_evaction_by_name(NULL), -1);

	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		if (ks_evrule_parse(rules[i].text, &rule, &err) < 0)
			fail_msg("'%s': %s", rules[i].text, err.msg);
		assert_string_equal(ks_evfilter_spec(rule.filter), rules[i].spec);
		assert_int_equal(rule.action, rules[i].action);
		ks_evfilter_free(rule.filter);
	}
}

static void rule_errors(void **state)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{ "exception:14=halt", "exception:14=halt: unknown action 'halt': use log, pause, "
				       "dump or stop (column 14)" },
		{ "exception:14=none", "exception:14=none: unknown action 'none': use log, pause, "
				       "dump or stop (column 14)" },
		{ "exception:14=", "exception:14=: missing action (column 14)" },
		{ "=stop", "=stop: empty filter spec (column 1)" },
		{ "exception:1x4=stop", "exception:1x4=stop: bad vector '1x4' (column 11)" },
		{ "serial:/a=stop", "serial:/a=stop: unterminated regex '/a' (column 8)" },
	};
	struct ks_evrule rule = { .filter = NULL, .action = KS_EVACT_NONE };
	struct ks_error err = { 0 };
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(ks_evrule_parse(cases[i].text, &rule, &err), -EINVAL);
		if (strcmp(err.msg, cases[i].msg) != 0)
			fail_msg("'%s':\n got  %s\n want %s", cases[i].text, err.msg, cases[i].msg);
		assert_null(rule.filter);
	}
}

static void rule_sets_pick_the_strongest(void **state)
{
	struct ks_error err = { 0 };
	struct ks_evrules *rs = ks_evrules_new(&err);
	static const struct {
		int sample;
		enum ks_evaction want;
	} cases[] = {
		{ EXC_PF, KS_EVACT_STOP },      /* trace, pause-on, dump and stop all match */
		{ EXC_GP, KS_EVACT_DUMP },      /* trace and dump */
		{ EXC_DE, KS_EVACT_LOG },       /* trace only */
		{ VM_PANIC, KS_EVACT_PAUSE },
		{ VM_STOP, KS_EVACT_NONE },
		{ TEST_FAIL_MM, KS_EVACT_DUMP },
		{ TEST_FAIL_SCHED, KS_EVACT_LOG },
		{ SER0_PANIC, KS_EVACT_PAUSE },
		{ SER1_COLON, KS_EVACT_NONE },
		{ MAGIC_42, KS_EVACT_NONE },
	};
	(void)state;

	assert_non_null(rs);
	assert_int_equal(ks_evrules_match(rs, &samples[EXC_PF]), KS_EVACT_NONE);
	assert_int_equal(ks_evrules_add_trace(rs, "exception", &err), 0);
	assert_int_equal(ks_evrules_add_on(rs, "exception:14=stop", &err), 0);
	assert_int_equal(ks_evrules_add_pause_on(rs, "exception:#PF", &err), 0);
	assert_int_equal(ks_evrules_add_on(rs, "exception:13,14=dump", &err), 0);
	assert_int_equal(ks_evrules_add_pause_on(rs, "vm:panic", &err), 0);
	assert_int_equal(ks_evrules_add_on(rs, "test:fail:mm.*=dump", &err), 0);
	assert_int_equal(ks_evrules_add_trace(rs, "test:fail", &err), 0);
	assert_int_equal(ks_evrules_add_on(rs, "serial:0:/panic/=pause", &err), 0);
	assert_int_equal(ks_evrules_add_trace(rs, "exception:1x4", &err), -EINVAL);
	assert_string_equal(err.msg, "exception:1x4: bad vector '1x4' (column 11)");
	assert_int_equal(ks_evrules_add_on(rs, "test=halt", &err), -EINVAL);
	assert_int_equal(ks_evrules_add_on(rs, "test=halt", NULL), -EINVAL);
	assert_int_equal(ks_evrules_add_trace(rs, "bad", NULL), -EINVAL);
	/* --trace and --pause-on take a spec: '=' is not an action there. */
	assert_int_equal(ks_evrules_add_pause_on(rs, "vm=stop", &err), -EINVAL);
	assert_string_equal(err.msg, "vm=stop: unknown event kind 'vm=stop': use magic, interrupt, "
			    "exception, syscall, sysret, test, vm, serial, break, watch or any "
			    "(column 1)");

	assert_int_equal(ks_evrules_count(rs), 8);
	assert_string_equal(ks_evfilter_spec(ks_evrules_get(rs, 1)->filter), "exception:14");
	assert_int_equal(ks_evrules_get(rs, 1)->action, KS_EVACT_STOP);
	assert_int_equal(ks_evrules_get(rs, 2)->action, KS_EVACT_PAUSE);
	assert_int_equal(ks_evrules_get(rs, 6)->action, KS_EVACT_LOG);
	assert_null(ks_evrules_get(rs, 8));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (ks_evrules_match(rs, &samples[cases[i].sample]) != cases[i].want)
			fail_msg("sample %d: %s, want %s", cases[i].sample,
				 ks_evaction_name(ks_evrules_match(rs, &samples[cases[i].sample])),
				 ks_evaction_name(cases[i].want));
	assert_int_equal(ks_evrules_resolve(rs, NULL, &err), 0);
	assert_int_equal(ks_evrules_add_trace(rs, "break:kmain", &err), 0);
	assert_int_equal(ks_evrules_resolve(rs, NULL, &err), -ENOENT);
	ks_evrules_free(rs);
	ks_evrules_free(NULL);
	ks_evfilter_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(selects_the_right_events),
		cmocka_unit_test(malformed_specs),
		cmocka_unit_test(error_edges),
		cmocka_unit_test(carets),
		cmocka_unit_test(kinds_and_numbers),
		cmocka_unit_test(vector_sets),
		cmocka_unit_test(targets_regexes_ports),
		cmocka_unit_test(resolved_targets),
		cmocka_unit_test(actions_and_rules),
		cmocka_unit_test(rule_errors),
		cmocka_unit_test(rule_sets_pick_the_strongest),
	};

	return cmocka_run_group_tests_name("evfilter", tests, NULL, NULL);
}
