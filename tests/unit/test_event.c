/* test_event.c: event kind and vector names, and one event of every kind as a line and as JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/event.h>
#include <kscope/kt_abi.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define K 0xffffffff80000000ull

struct golden {
	struct ks_event ev;
	const char *line, *json;
};

static const struct golden goldens[] = {
	{ { .seq = 1, .ts_ns = 1500000, .vcpu = 0, .kind = KS_EV_MAGIC, .pc = K + 0x1010,
	    .sym = "kt_case_begin+0x10",
	    .magic = { .id = KT_MAGIC_CASE_START, .a0 = 0x100000002, .a1 = 0 } },
	  "     1   0.001500 cpu0  magic      id=0x12 case_start a0=0x100000002 a1=0x0 "
	  "<kt_case_begin+0x10>",
	  "{\"seq\":1,\"ts_ns\":1500000,\"vcpu\":0,\"kind\":\"magic\",\"pc\":\"0xffffffff80001010\","
	  "\"sym\":\"kt_case_begin+0x10\",\"id\":\"0x12\",\"a0\":\"0x100000002\",\"a1\":\"0x0\"}" },
	{ { .seq = 2, .ts_ns = 2000000, .vcpu = 1, .kind = KS_EV_MAGIC, .pc = K + 0x2000,
	    .magic = { .id = 0x142, .a0 = 7, .a1 = 0xffffffffffffffff } },
	  "     2   0.002000 cpu1  magic      id=0x142 a0=0x7 a1=0xffffffffffffffff "
	  "pc=0xffffffff80002000",
	  "{\"seq\":2,\"ts_ns\":2000000,\"vcpu\":1,\"kind\":\"magic\",\"pc\":\"0xffffffff80002000\","
	  "\"sym\":null,\"id\":\"0x142\",\"a0\":\"0x7\",\"a1\":\"0xffffffffffffffff\"}" },
	{ { .seq = 3, .ts_ns = 2999999, .vcpu = 1, .kind = KS_EV_INTERRUPT, .pc = K + 0x3000,
	    .sym = "irq_entry_32",
	    .irq = { .vector = 32, .rip = K + 0x4004, .rip_sym = "idle+0x4" } },
	  "     3   0.002999 cpu1  interrupt  32 rip=0xffffffff80004004 <idle+0x4>",
	  "{\"seq\":3,\"ts_ns\":2999999,\"vcpu\":1,\"kind\":\"interrupt\","
	  "\"pc\":\"0xffffffff80003000\",\"sym\":\"irq_entry_32\",\"vector\":32,"
	  "\"vector_name\":null,\"error_code\":null,\"cr2\":null,\"rip\":\"0xffffffff80004004\","
	  "\"rip_sym\":\"idle+0x4\",\"user\":false}" },
	{ { .seq = 4, .ts_ns = 1000000000, .vcpu = 3, .kind = KS_EV_EXCEPTION, .pc = K + 0x5000,
	    .sym = "isr_pf",
	    .irq = { .vector = 14, .has_error = true, .error_code = 6, .cr2 = 0xdead0000,
		     .rip = 0x401000, .from_user = true } },
	  "     4   1.000000 cpu3  exception  14 #PF err=0x6 cr2=0xdead0000 rip=0x401000 user",
	  "{\"seq\":4,\"ts_ns\":1000000000,\"vcpu\":3,\"kind\":\"exception\","
	  "\"pc\":\"0xffffffff80005000\",\"sym\":\"isr_pf\",\"vector\":14,\"vector_name\":\"#PF\","
	  "\"error_code\":\"0x6\",\"cr2\":\"0xdead0000\",\"rip\":\"0x401000\",\"rip_sym\":null,"
	  "\"user\":true}" },
	{ { .seq = 5, .ts_ns = 1000000001, .vcpu = 0, .kind = KS_EV_EXCEPTION,
	    .irq = { .vector = 3, .rip = K + 0x1234, .rip_sym = "kmain+0x234" } },
	  "     5   1.000000 cpu0  exception  3 #BP rip=0xffffffff80001234 <kmain+0x234>",
	  "{\"seq\":5,\"ts_ns\":1000000001,\"vcpu\":0,\"kind\":\"exception\",\"pc\":null,"
	  "\"sym\":null,\"vector\":3,\"vector_name\":\"#BP\",\"error_code\":null,\"cr2\":null,"
	  "\"rip\":\"0xffffffff80001234\",\"rip_sym\":\"kmain+0x234\",\"user\":false}" },
	{ { .seq = 6, .ts_ns = 61500000000, .vcpu = 0, .kind = KS_EV_SYSCALL, .pc = K + 0x6000,
	    .sym = "syscall_entry",
	    .sys = { .nr = 1, .args = { 1, 0x402000, 12 }, .user_rip = 0x401010 } },
	  "     6  61.500000 cpu0  syscall    nr=1 args=(0x1,0x402000,0xc,0x0,0x0,0x0)",
	  "{\"seq\":6,\"ts_ns\":61500000000,\"vcpu\":0,\"kind\":\"syscall\","
	  "\"pc\":\"0xffffffff80006000\",\"sym\":\"syscall_entry\",\"nr\":1,\"args\":[\"0x1\","
	  "\"0x402000\",\"0xc\",\"0x0\",\"0x0\",\"0x0\"],\"user_rip\":\"0x401010\"}" },
	{ { .seq = 7, .ts_ns = 61500001000, .vcpu = 0, .kind = KS_EV_SYSRET, .pc = K + 0x6100,
	    .sym = "syscall_exit+0x20",
	    .sys = { .nr = 1, .has_nr = true, .ret = 12, .user_rip = 0x401010 } },
	  "     7  61.500001 cpu0  sysret     nr=1 ret=0xc rip=0x401010",
	  "{\"seq\":7,\"ts_ns\":61500001000,\"vcpu\":0,\"kind\":\"sysret\","
	  "\"pc\":\"0xffffffff80006100\",\"sym\":\"syscall_exit+0x20\",\"nr\":1,\"ret\":\"0xc\","
	  "\"user_rip\":\"0x401010\"}" },
	{ { .seq = 8, .ts_ns = 61500002000, .vcpu = 0, .kind = KS_EV_SYSRET,
	    .sys = { .ret = (uint64_t)-14, .user_rip = 0x401020 } },
	  "     8  61.500002 cpu0  sysret     ret=0xfffffffffffffff2 (-14) rip=0x401020",
	  "{\"seq\":8,\"ts_ns\":61500002000,\"vcpu\":0,\"kind\":\"sysret\",\"pc\":null,\"sym\":null,"
	  "\"nr\":null,\"ret\":\"0xfffffffffffffff2\",\"user_rip\":\"0x401020\"}" },
	{ { .seq = 9, .ts_ns = 70000000000, .vcpu = 2, .kind = KS_EV_TEST,
	    .test = { .phase = KS_EV_TEST_START, .suite_index = 1, .case_index = 4,
		      .suite = "mm", .name = "alloc_free", .status = KT_ST_RUNNING } },
	  "     9  70.000000 cpu2  test       start mm.alloc_free",
	  "{\"seq\":9,\"ts_ns\":70000000000,\"vcpu\":2,\"kind\":\"test\",\"pc\":null,\"sym\":null,"
	  "\"phase\":\"start\",\"suite\":\"mm\",\"case\":\"alloc_free\",\"suite_index\":1,"
	  "\"case_index\":4,\"status\":\"running\"}" },
	{ { .seq = 10, .ts_ns = 70100000000, .vcpu = 2, .kind = KS_EV_TEST,
	    .test = { .phase = KS_EV_TEST_END, .suite_index = 1, .case_index = 4,
		      .suite = "mm", .name = "alloc_free", .status = KT_ST_FAIL } },
	  "    10  70.100000 cpu2  test       end mm.alloc_free fail",
	  "{\"seq\":10,\"ts_ns\":70100000000,\"vcpu\":2,\"kind\":\"test\",\"pc\":null,\"sym\":null,"
	  "\"phase\":\"end\",\"suite\":\"mm\",\"case\":\"alloc_free\",\"suite_index\":1,"
	  "\"case_index\":4,\"status\":\"fail\"}" },
	{ { .seq = 11, .ts_ns = 71000000000, .vcpu = -1, .kind = KS_EV_TEST,
	    .test = { .phase = KS_EV_TEST_END, .suite_index = 2, .case_index = 0,
		      .status = KT_ST_RUNNING } },
	  "    11  71.000000 -     test       end #2.#0 crash",
	  "{\"seq\":11,\"ts_ns\":71000000000,\"vcpu\":null,\"kind\":\"test\",\"pc\":null,"
	  "\"sym\":null,\"phase\":\"end\",\"suite\":\"\",\"case\":\"\",\"suite_index\":2,"
	  "\"case_index\":0,\"status\":\"crash\"}" },
	{ { .seq = 12, .ts_ns = 72345678901, .vcpu = -1, .kind = KS_EV_VM,
	    .vm = { .what = "shutdown", .detail = "guest-reset" } },
	  "    12  72.345678 -     vm         shutdown guest-reset",
	  "{\"seq\":12,\"ts_ns\":72345678901,\"vcpu\":null,\"kind\":\"vm\",\"pc\":null,\"sym\":null,"
	  "\"what\":\"shutdown\",\"detail\":\"guest-reset\"}" },
	{ { .seq = 13, .ts_ns = 80000000000, .vcpu = -1, .kind = KS_EV_VM, .vm = { .what = "stop" } },
	  "    13  80.000000 -     vm         stop",
	  "{\"seq\":13,\"ts_ns\":80000000000,\"vcpu\":null,\"kind\":\"vm\",\"pc\":null,\"sym\":null,"
	  "\"what\":\"stop\",\"detail\":\"\"}" },
	{ { .seq = 14, .ts_ns = 81000000000, .vcpu = -1, .kind = KS_EV_SERIAL,
	    .serial = { .port = 0, .text = "ok\t\x1b[32mgreen\x1b[0m \\o/ caf\xc3\xa9\r" } },
	  "    14  81.000000 -     serial     com1: ok\\t\\x1b[32mgreen\\x1b[0m \\\\o/ caf\xc3\xa9\\r",
	  "{\"seq\":14,\"ts_ns\":81000000000,\"vcpu\":null,\"kind\":\"serial\",\"pc\":null,"
	  "\"sym\":null,\"port\":0,\"text\":\"ok\\t\\u001B[32mgreen\\u001B[0m \\\\o/ caf\xc3\xa9\\r\"}" },
	{ { .seq = 15, .ts_ns = 82000000000, .vcpu = -1, .kind = KS_EV_SERIAL,
	    .serial = { .port = 1, .text = "bad \xff\xc3 utf-8 \xe2\x82" } },
	  "    15  82.000000 -     serial     com2: bad \xff\xc3 utf-8 \xe2\x82",
	  "{\"seq\":15,\"ts_ns\":82000000000,\"vcpu\":null,\"kind\":\"serial\",\"pc\":null,"
	  "\"sym\":null,\"port\":1,\"text\":\"bad \xef\xbf\xbd\xef\xbf\xbd utf-8 "
	  "\xef\xbf\xbd\xef\xbf\xbd\"}" },
	{ { .seq = 123456, .ts_ns = 999000000000, .vcpu = 12, .kind = KS_EV_BREAKPOINT,
	    .pc = K + 0x1000, .sym = "kmain",
	    .bp = { .addr = K + 0x1000, .what = "exec" } },
	  "123456 999.000000 cpu12 breakpoint 0xffffffff80001000 <kmain>",
	  "{\"seq\":123456,\"ts_ns\":999000000000,\"vcpu\":12,\"kind\":\"breakpoint\","
	  "\"pc\":\"0xffffffff80001000\",\"sym\":\"kmain\",\"addr\":\"0xffffffff80001000\","
	  "\"addr_sym\":null,\"access\":\"exec\"}" },
	{ { .seq = 1234567, .ts_ns = 1234000000000, .vcpu = 0, .kind = KS_EV_WATCHPOINT,
	    .pc = K + 0x1234, .sym = "kmain+0x234",
	    .bp = { .addr = K + 0x5008, .addr_sym = "counter+0x8", .what = "write" } },
	  "1234567 1234.000000 cpu0  watchpoint write 0xffffffff80005008 <counter+0x8> "
	  "pc=0xffffffff80001234 <kmain+0x234>",
	  "{\"seq\":1234567,\"ts_ns\":1234000000000,\"vcpu\":0,\"kind\":\"watchpoint\","
	  "\"pc\":\"0xffffffff80001234\",\"sym\":\"kmain+0x234\",\"addr\":\"0xffffffff80005008\","
	  "\"addr_sym\":\"counter+0x8\",\"access\":\"write\"}" },
};

static void names(void **state)
{
	(void)state;
	for (int k = 0; k < KS_EV_KIND_COUNT; k++)
		assert_int_equal(ks_event_kind_by_name(ks_event_kind_name((enum ks_event_kind)k)), k);
	assert_string_equal(ks_event_kind_name(KS_EV_WATCHPOINT), "watchpoint");
	assert_string_equal(ks_event_kind_name(KS_EV_KIND_COUNT), "invalid");
	assert_string_equal(ks_event_kind_name((enum ks_event_kind)-1), "invalid");
	assert_int_equal(ks_event_kind_by_name("break"), -1);
	assert_int_equal(ks_event_kind_by_name("invalid"), -1);
	assert_int_equal(ks_event_kind_by_name(NULL), -1);

	static const char *const vectors[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "", "#TS", "#NP",
		"#SS", "#GP", "#PF", "", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "", "", "", "",
		"", "", "#HV", "#VC", "#SX", "",
	};
	for (unsigned v = 0; v < 32; v++)
		assert_string_equal(ks_event_vector_name(v), vectors[v]);
	assert_string_equal(ks_event_vector_name(32), "");
	assert_string_equal(ks_event_vector_name(255), "");
	assert_string_equal(ks_event_vector_name(~0u), "");
}

static void test_status_names(void **state)
{
	static const struct {
		enum ks_event_test_phase phase;
		uint32_t status;
		const char *want;
	} cases[] = {
		{ KS_EV_TEST_START, KT_ST_RUNNING, "running" },
		{ KS_EV_TEST_START, KT_ST_NONE, "none" },
		{ KS_EV_TEST_START, 99, "unknown" },
		{ KS_EV_TEST_END, KT_ST_PASS, "pass" },
		{ KS_EV_TEST_END, KT_ST_FAIL, "fail" },
		{ KS_EV_TEST_END, KT_ST_SKIP, "skip" },
		{ KS_EV_TEST_END, KT_ST_RUNNING, "crash" },
		{ KS_EV_TEST_END, KT_ST_NONE, "crash" },
		{ KS_EV_TEST_END, KT_ST_FILTERED, "crash" },
	};
	struct ks_event ev = { .kind = KS_EV_TEST };
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ev.test.phase = cases[i].phase;
		ev.test.status = cases[i].status;
		assert_string_equal(ks_event_test_status_name(&ev), cases[i].want);
	}
	ev.kind = KS_EV_VM;
	assert_string_equal(ks_event_test_status_name(&ev), "");
}

static void format_goldens(void **state)
{
	char buf[512];
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		int n = ks_event_format(&goldens[i].ev, buf, sizeof(buf));
		if (strcmp(buf, goldens[i].line) != 0)
			fail_msg("event %zu:\n got  '%s'\n want '%s'", i, buf, goldens[i].line);
		assert_int_equal(n, strlen(goldens[i].line));
	}
}

static void json_goldens(void **state)
{
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		json_t *j = ks_event_to_json(&goldens[i].ev);
		assert_non_null(j);
		char *s = json_dumps(j, JSON_COMPACT);
		assert_non_null(s);
		if (strcmp(s, goldens[i].json) != 0)
			fail_msg("event %zu:\n got  %s\n want %s", i, s, goldens[i].json);
		free(s);
		json_decref(j);
	}
}

/* snprintf rules: the length wanted comes back whatever the room, and the text is cut. */
static void format_truncates(void **state)
{
	const struct ks_event *ev = &goldens[0].ev;
	size_t want = strlen(goldens[0].line);
	char buf[16];
	(void)state;

	assert_int_equal(ks_event_format(ev, NULL, 0), want);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(ks_event_format(ev, buf, 1), want);
	assert_string_equal(buf, "");
	assert_int_equal(ks_event_format(ev, buf, sizeof(buf)), want);
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	assert_memory_equal(buf, goldens[0].line, sizeof(buf) - 1);
}

/* Fields filled to the last byte (no NUL) are read no further than their arrays. */
static void unterminated_fields(void **state)
{
	struct ks_event ev = { .seq = 1, .vcpu = -1, .kind = KS_EV_SERIAL };
	char line[1024];
	(void)state;

	memset(ev.serial.text, 'a', sizeof(ev.serial.text));
	memset(ev.sym, 'b', sizeof(ev.sym));
	assert_int_equal(ks_event_format(&ev, line, sizeof(line)),
			 strlen("     1   0.000000 -     serial     com1: ") + KS_EVENT_TEXT);
	json_t *j = ks_event_to_json(&ev);
	assert_non_null(j);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "text"))), KS_EVENT_TEXT);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "sym"))), KS_EVENT_SYM);
	json_decref(j);
}

/* A #PF field only on #PF exceptions; an error code wherever the CPU pushed one. */
static void irq_fields(void **state)
{
	struct ks_event ev = { .kind = KS_EV_INTERRUPT, .vcpu = 0,
			       .irq = { .vector = 14, .cr2 = 0x1000, .has_error = true,
					.error_code = 0 } };
	char line[256];
	(void)state;

	ks_event_format(&ev, line, sizeof(line));
	assert_string_equal(line, "     0   0.000000 cpu0  interrupt  14 #PF err=0x0");
	ev.kind = KS_EV_EXCEPTION;
	ev.irq.vector = 13;
	ks_event_format(&ev, line, sizeof(line));
	assert_string_equal(line, "     0   0.000000 cpu0  exception  13 #GP err=0x0");
	ev.irq.vector = 14;
	ev.irq.has_error = false;
	ks_event_format(&ev, line, sizeof(line));
	assert_string_equal(line, "     0   0.000000 cpu0  exception  14 #PF cr2=0x1000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(format_goldens),
		cmocka_unit_test(json_goldens),
		cmocka_unit_test(format_truncates),
		cmocka_unit_test(unterminated_fields),
		cmocka_unit_test(irq_fields),
	};

	return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
