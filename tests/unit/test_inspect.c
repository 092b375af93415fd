/* test_inspect.c: the text forms of the introspection commands: widths, values, bytes, dumps, HMP registers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/inspect.h>
#include <kscope/sym.h>

static void formats(void **state)
{
	static const struct { const char *name; enum ks_inspect_format f; unsigned width; } ok[] = {
		{ "hex", KS_INSPECT_HEX, 1 }, { "u8", KS_INSPECT_U8, 1 },
		{ "u16", KS_INSPECT_U16, 2 }, { "u32", KS_INSPECT_U32, 4 },
		{ "u64", KS_INSPECT_U64, 8 }, { "str", KS_INSPECT_STR, 1 },
		{ "kt", KS_INSPECT_KT, 0 },
	};
	static const char *const bad[] = { "", "U64", "u128", "hexx", "x" };
	struct ks_error err = { 0 };
	enum ks_inspect_format f;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(ks_inspect_format_parse(ok[i].name, &f, NULL), 0);
		assert_int_equal(f, ok[i].f);
		assert_int_equal(ks_inspect_format_width(f), ok[i].width);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ks_inspect_format_parse(bad[i], &f, &err), -EINVAL);
	assert_string_equal(err.msg, "bad format 'x' (use hex, u8, u16, u32, u64, str or kt)");
}

static void widths(void **state)
{
	static const char *const bad[] = { "", "0", "3", "16", "8 ", "-1", "0x8" };
	struct ks_error err = { 0 };
	unsigned w = 0;

	(void)state;
	for (unsigned i = 1; i <= 8; i *= 2) {
		char s[2] = { (char)('0' + i), 0 };

		assert_int_equal(ks_inspect_parse_width(s, &w, NULL), 0);
		assert_int_equal(w, i);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ks_inspect_parse_width(bad[i], &w, &err), -EINVAL);
	assert_string_equal(err.msg, "bad width '0x8' (use 1, 2, 4 or 8 bytes)");
}

struct value_case {
	const char *text;
	unsigned width;
	int rc;
	uint64_t value;
};

static void values(void **state)
{
	static const struct value_case cases[] = {
		{ "0x6b73636f7065", 8, 0, 0x6b73636f7065ull },
		{ "0X10", 1, 0, 0x10 },
		{ "255", 1, 0, 255 },
		{ "256", 1, -ERANGE, 0 },
		{ "0x1ff", 1, -ERANGE, 0 },
		{ "-1", 1, 0, 0xff },
		{ "-128", 1, 0, 0x80 },
		{ "-129", 1, -ERANGE, 0 },
		{ "-1", 8, 0, UINT64_MAX },
		{ "-9223372036854775808", 8, 0, 0x8000000000000000ull },
		{ "-9223372036854775809", 8, -ERANGE, 0 },
		{ "18446744073709551615", 8, 0, UINT64_MAX },
		{ "18446744073709551616", 8, -ERANGE, 0 },
		{ "0xffffffffffffffff", 8, 0, UINT64_MAX },
		{ "0x10000000000000000", 8, -ERANGE, 0 },
		{ "65535", 2, 0, 0xffff },
		{ "0xffffffff", 4, 0, 0xffffffff },
		{ "0x100000000", 4, -ERANGE, 0 },
		{ "", 8, -EINVAL, 0 },
		{ "0x", 8, -EINVAL, 0 },
		{ "12ab", 8, -EINVAL, 0 },
		{ "-0x1", 8, -EINVAL, 0 },
		{ "- 1", 8, -EINVAL, 0 },
		{ "+1", 8, -EINVAL, 0 },
	};
	struct ks_error err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0xdead;
		int rc = ks_inspect_parse_value(cases[i].text, cases[i].width, &v, &err);

		if (rc != cases[i].rc)
			fail_msg("'%s' in %u: %d, expected %d", cases[i].text, cases[i].width, rc,
				 cases[i].rc);
		if (rc == 0)
			assert_true(v == cases[i].value);
		else
			assert_true(v == 0xdead);
	}
	assert_int_equal(ks_inspect_parse_value("0x1ff", 1, &(uint64_t){ 0 }, &err), -ERANGE);
	assert_string_equal(err.msg, "value 0x1ff does not fit in 1 byte");
	assert_int_equal(ks_inspect_parse_value("1x", 4, &(uint64_t){ 0 }, &err), -EINVAL);
	assert_string_equal(err.msg, "bad value '1x' (a number: decimal, or hex after 0x)");
}

static void lengths(void **state)
{
	struct ks_error err = { 0 };
	uint64_t v = 0;

	(void)state;
	assert_int_equal(ks_inspect_parse_u64("4096", "length", 1 << 20, &v, NULL), 0);
	assert_true(v == 4096);
	assert_int_equal(ks_inspect_parse_u64("0x100000", "length", 1 << 20, &v, NULL), 0);
	assert_true(v == 1 << 20);
	assert_int_equal(ks_inspect_parse_u64("0x100001", "length", 1 << 20, &v, &err), -ERANGE);
	assert_string_equal(err.msg, "length 0x100001 is too large (at most 1048576)");
	assert_int_equal(ks_inspect_parse_u64("1M", "length", 1 << 20, &v, &err), -EINVAL);
	assert_string_equal(err.msg, "bad length '1M' (a number: decimal, or hex after 0x)");
	assert_int_equal(ks_inspect_parse_u64("99999999999999999999", "start", UINT64_MAX, &v,
					      NULL), -ERANGE);
	assert_int_equal(ks_inspect_parse_u64("-1", "start", UINT64_MAX, &v, NULL), -EINVAL);
}

static void byte_strings(void **state)
{
	struct ks_error err = { 0 };
	uint8_t *b = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(ks_inspect_parse_bytes("6b73636f7065", &b, &n, NULL), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(b, "kscope", 6);
	free(b);
	assert_int_equal(ks_inspect_parse_bytes("6B 73:63-6f  70\t65", &b, &n, NULL), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(b, "kscope", 6);
	free(b);
	assert_int_equal(ks_inspect_parse_bytes("6b7", &b, &n, &err), -EINVAL);
	assert_int_equal(ks_inspect_parse_bytes("6 b", &b, &n, &err), -EINVAL);
	assert_int_equal(ks_inspect_parse_bytes(" 6b", &b, &n, &err), -EINVAL);
	assert_int_equal(ks_inspect_parse_bytes("0x6b", &b, &n, &err), -EINVAL);
	assert_string_equal(err.msg, "bad byte string at 'x6b' (hex digits, two per byte, like "
			    "6b73 or '6b 73')");
	assert_int_equal(ks_inspect_parse_bytes("", &b, &n, &err), -EINVAL);
	assert_string_equal(err.msg, "empty byte string");
}

static void hex_round_trip(void **state)
{
	uint8_t all[256], *back = NULL;
	size_t n = 0;
	char *hex;

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	hex = ks_inspect_hex_encode(all, sizeof(all));
	assert_non_null(hex);
	assert_int_equal(strlen(hex), 512);
	assert_memory_equal(hex, "000102", 6);
	assert_string_equal(hex + 506, "fdfeff");
	assert_int_equal(ks_inspect_hex_decode(hex, &back, &n), 0);
	assert_int_equal(n, 256);
	assert_memory_equal(back, all, 256);
	free(back);
	free(hex);
	assert_int_equal(ks_inspect_hex_decode("", &back, &n), 0);
	assert_int_equal(n, 0);
	free(back);
	assert_int_equal(ks_inspect_hex_decode("abc", &back, &n), -EINVAL);
	assert_int_equal(ks_inspect_hex_decode("zz", &back, &n), -EINVAL);
	assert_int_equal(ks_inspect_hex_decode("0x", &back, &n), -EINVAL);
}

struct dump_case {
	enum ks_inspect_format f;
	uint64_t addr;
	size_t len;
	const char *want;
};

static void dumps(void **state)
{
	static const uint8_t mem[40] = "KSCOPEKT\x01\0\0\0\x60\0\0\0\x08\0\0\0\0\0\0\0"
				       "\x20\x32\x12\x80\xff\xff\xff\xff";
	static const struct dump_case cases[] = {
		{ KS_INSPECT_HEX, 0xffffffff801231c0ull, 20,
		  "0xffffffff801231c0: 4b 53 43 4f 50 45 4b 54 01 00 00 00 60 00 00 00"
		  "  |KSCOPEKT....`...|\n"
		  "0xffffffff801231d0: 08 00 00 00"
		  "                                      |....|\n" },
		{ KS_INSPECT_U64, 0x1000, 8, "0x544b45504f43534b\n" },
		{ KS_INSPECT_U64, 0x1000, 32,
		  "0x0000000000001000: 0x544b45504f43534b 0x6000000001\n"
		  "0x0000000000001010: 0x8 0xffffffff80123220\n" },
		{ KS_INSPECT_U32, 0x10, 12, "0x0000000000000010: 0x4f43534b 0x544b4550 0x1\n" },
		{ KS_INSPECT_U16, 0x10, 2, "0x534b\n" },
		{ KS_INSPECT_U8, 0x10, 1, "0x4b\n" },
		{ KS_INSPECT_U64, 0x10, 12, "0x0000000000000010: 0x544b45504f43534b\n" },
		{ KS_INSPECT_STR, 0, 12, "KSCOPEKT\\x01\n" },
		{ KS_INSPECT_STR, 0, 4, "KSCO\n" },
		{ KS_INSPECT_KT, 0, 8, "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = ks_inspect_format_bytes(cases[i].f, cases[i].addr, mem, cases[i].len);

		assert_non_null(text);
		assert_string_equal(text, cases[i].want);
		free(text);
	}
	char *t = ks_inspect_format_bytes(KS_INSPECT_STR, 0, (const uint8_t *)"a\n\tb\\\x7f", 6);
	assert_string_equal(t, "a\\n\\tb\\\\\\x7f\n");
	free(t);
}

/* Two vCPUs as "info registers -a" prints them (abridged), the second in ring 3. */
static const char hmp_two[] =
	"\nCPU#0\nRAX=0000000000000000 RBX=0000000000000000\n"
	"CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]\n"
	"CR0=80010011 CR2=0000000000000000 CR3=0000000000102000 CR4=00000020\n"
	"XCR3=1 EFER=0000000000000d01\n"
	"\nCPU#1\nRAX=0000000000000001 RBX=0000000000000000\n"
	"CS =0023 0000000000000000 ffffffff 00a0fb00 DPL=3 CS64 [-RA]\n"
	"CR0=80010011 CR2=0000000000000000 CR3=000000000014e000 CR4=00001020\n";

static void hmp_vcpus(void **state)
{
	uint64_t cr3 = 0;
	bool la57 = true;

	(void)state;
	assert_int_equal(ks_inspect_hmp_cpu_count(hmp_two), 2);
	assert_int_equal(ks_inspect_hmp_cpu(hmp_two, 0, &cr3, &la57), 0);
	assert_true(cr3 == 0x102000);
	assert_false(la57);
	assert_int_equal(ks_inspect_hmp_cpu(hmp_two, 1, &cr3, &la57), 0);
	assert_true(cr3 == 0x14e000);
	assert_true(la57);
	assert_int_equal(ks_inspect_hmp_cpu(hmp_two, 2, &cr3, &la57), -ENOENT);
	/* CPU#1 is not CPU#10, nor the start of CPU#12. */
	assert_int_equal(ks_inspect_hmp_cpu("\nCPU#10\nCR3=1 CR4=0\n", 1, &cr3, &la57),
			 -ENOENT);
	assert_int_equal(ks_inspect_hmp_cpu("CPU#0\nRAX=0\n", 0, &cr3, &la57), -EINVAL);
	assert_int_equal(ks_inspect_hmp_cpu_count("no registers"), 0);
	/* QEMU's own line ends, as QMP carries them before the client turns them into \n. */
	assert_int_equal(ks_inspect_hmp_cpu("\r\nCPU#0\r\nCR3=00000000000ab000 CR4=0\r\n", 0,
					    &cr3, &la57), 0);
	assert_true(cr3 == 0xab000);
}

static void sizes(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(ks_inspect_size_format(4096, buf, sizeof(buf)), "4 KiB");
	assert_string_equal(ks_inspect_size_format(2u << 20, buf, sizeof(buf)), "2 MiB");
	assert_string_equal(ks_inspect_size_format(3ull << 30, buf, sizeof(buf)), "3 GiB");
	assert_string_equal(ks_inspect_size_format(12288, buf, sizeof(buf)), "12 KiB");
	assert_string_equal(ks_inspect_size_format(1536, buf, sizeof(buf)), "1536 B");
	assert_string_equal(ks_inspect_size_format(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(ks_inspect_size_format(1ull << 62, buf, sizeof(buf)), "4 EiB");
}

/* A System.map's symbols have no size: past its reach an address belongs to none. */
static void symbolize(void **state)
{
	char path[] = "/tmp/kscope-test-inspect-XXXXXX", buf[64];
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	struct ks_symtab *t;

	(void)state;
	assert_non_null(f);
	fprintf(f, "ffffffff80100000 T kmain\nffffffff80101000 D kt_state\n"
		"ffffffff80200000 B _end\n");
	fclose(f);
	t = ks_sym_load(path, NULL);
	unlink(path);
	assert_non_null(t);
	assert_int_equal(ks_inspect_symbolize(t, 0xffffffff80100010ull, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "kmain+0x10");
	assert_int_equal(ks_inspect_symbolize(t, 0xffffffff80101000ull, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "kt_state");
	assert_int_equal(ks_inspect_symbolize(t, 0xffffffff80101000ull + KS_INSPECT_SYM_REACH,
					      buf, sizeof(buf)), 0);
	assert_int_equal(ks_inspect_symbolize(t, 0xffffffff80101001ull + KS_INSPECT_SYM_REACH,
					      buf, sizeof(buf)), -ENOENT);
	assert_string_equal(buf, "");
	assert_int_equal(ks_inspect_symbolize(t, 0x600000, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(ks_inspect_symbolize(NULL, 0x600000, buf, sizeof(buf)), -ENOENT);
	ks_sym_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(formats),
		cmocka_unit_test(widths),
		cmocka_unit_test(values),
		cmocka_unit_test(lengths),
		cmocka_unit_test(byte_strings),
		cmocka_unit_test(hex_round_trip),
		cmocka_unit_test(dumps),
		cmocka_unit_test(hmp_vcpus),
		cmocka_unit_test(sizes),
		cmocka_unit_test(symbolize),
	};

	return cmocka_run_group_tests_name("inspect", tests, NULL, NULL);
}
