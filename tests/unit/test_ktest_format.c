/* test_ktest_format.c: host tests of the kt_ library's kt_vsnprintf, kt_printf and kt_glob_match. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kt/ktest.h>

/* kt_printf's console: everything written, in order. */
static char out[2048];
static size_t out_len;

void kt_arch_write(const char *s, size_t n)
{
	assert_true(out_len + n < sizeof(out));
	memcpy(out + out_len, s, n);
	out_len += n;
	out[out_len] = '\0';
}

static void clear_output(void)
{
	out_len = 0;
	out[0] = '\0';
}

/* ---- kt_vsnprintf ---- */

#define FMT(want, ...)                                                                     \
	do {                                                                               \
		char b_[256];                                                              \
		int n_ = kt_snprintf(b_, sizeof(b_), __VA_ARGS__);                         \
		assert_string_equal(b_, want);                                             \
		assert_int_equal(n_, strlen(want));                                        \
	} while (0)

/* Same result as the C library (for everything except %p, which is ours). */
#define LIBC(...)                                                                          \
	do {                                                                               \
		char a_[256], b_[256];                                                     \
		int na_ = snprintf(a_, sizeof(a_), __VA_ARGS__);                           \
		int nb_ = kt_snprintf(b_, sizeof(b_), __VA_ARGS__);                        \
		assert_string_equal(b_, a_);                                               \
		assert_int_equal(nb_, na_);                                                \
	} while (0)

static void test_format_conversions(void **state)
{
	(void)state;
	FMT("", "%s", "");
	FMT("plain text", "plain text");
	FMT("100%", "100%%");
	FMT("-42 42 42", "%d %i %u", -42, 42, 42u);
	FMT("ff FF 377", "%x %X %o", 255u, 255u, 255u);
	FMT("0xff 0XFF 0377 0 0", "%#x %#X %#o %#x %#o", 255u, 255u, 255u, 0u, 0u);
	FMT("-2147483648 4294967295", "%d %u", (int)0x80000000u, 0xffffffffu);
	FMT("-9223372036854775808", "%lld", (long long)(-9223372036854775807LL - 1));
	FMT("18446744073709551615", "%llu", ~0ULL);
	FMT("ffffffffffffffff", "%lx", ~0UL);
	FMT("-1 255 -1 65535", "%hhd %hhu %hd %hu", -1, 255, -1, 65535);
	FMT("44 -3 7 -8", "%hhd %zd %zu %td", 300, (ptrdiff_t)-3, (size_t)7, (ptrdiff_t)-8);
	FMT("[   42] [42   ] [00042] [-0042]", "[%5d] [%-5d] [%05d] [%05d]", 42, 42, 42, -42);
	FMT("[  abc] [abc  ] [ab] [a]", "[%5s] [%-5s] [%.2s] [%.*s]", "abc", "abc", "abc", 1, "abc");
	FMT("[   ab]", "[%*.*s]", 5, 2, "abc");
	FMT("[ab   ]", "[%*s]", -5, "ab");
	FMT("x|  y|z  ", "%c|%3c|%-3c", 'x', 'y', 'z');
	FMT("0x1000 (null)", "%p %p", (void *)0x1000, (void *)NULL);
	FMT("[    0x10]", "[%8p]", (void *)0x10);
	FMT("+5 -5  5", "%+d %+d % d", 5, -5, 5);
	FMT("00042 42", "%.5d %.1d", 42, 42);
	FMT("[] [0]", "[%.0d] [%#.0o]", 0, 0u);
}

/* kt_vsnprintf without the format attribute, for formats the compiler would reject. */
static int unchecked(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* Unknown conversions are copied as written; a lone '%' at the end stays. */
static void test_format_bad_conversions(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(unchecked(buf, sizeof(buf), "a%yb"), 4);
	assert_string_equal(buf, "a%yb");
	assert_int_equal(unchecked(buf, sizeof(buf), "end%"), 4);
	assert_string_equal(buf, "end%");
	assert_int_equal(unchecked(buf, sizeof(buf), "%s|%5.2s", (char *)NULL, (char *)NULL), 12);
	assert_string_equal(buf, "(null)|   (n");
	assert_int_equal(unchecked(buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "");
}

static void test_format_matches_libc(void **state)
{
	(void)state;
	LIBC("%d|%5d|%-5d|%05d|%+d|% d|%.3d|%8.3d|%-8.3d|", 7, -7, 7, -7, 7, 7, 7, -7, 7);
	LIBC("%u|%x|%X|%o|%#x|%#o|%#10x|%-#10x|%010x|", 1u, 0xabcu, 0xabcu, 8u, 1u, 8u, 1u, 1u, 1u);
	LIBC("%ld|%lu|%lx|%lld|%llu|%llx|", -1L, 1UL, 0xdeadUL, -1LL, 2ULL, 0xbeefULL);
	LIBC("%hd|%hu|%hhd|%hhu|%hx|%hhx|", 70000, 70000, 200, 300, 0x12345, 0x123);
	LIBC("%zu|%zx|%jd|%ju|%td|", (size_t)12, (size_t)255, (intmax_t)-3, (uintmax_t)3,
	     (ptrdiff_t)-4);
	LIBC("%s|%10s|%-10s|%.1s|%10.2s|%-10.2s|%.0s|", "kt", "kt", "kt", "kt", "kt", "kt", "kt");
	LIBC("%c|%5c|%-5c|%%|", 'a', 'b', 'c');
	LIBC("%*d|%-*d|%.*d|%*.*d|", 6, 1, 6, 1, 4, 1, 8, 3, 1);
	LIBC("%.*s|%.*s|", -1, "negative precision", 3, "abcdef");
	LIBC("%x|%o|%d|%i|", 0u, 0u, 0, 0);
	LIBC("%#.3o|%#5o|%#o|%#x|", 8u, 8u, 0u, 0u);
}

static void test_format_truncation(void **state)
{
	char buf[8];

	(void)state;
	assert_int_equal(kt_snprintf(NULL, 0, "hello %s", "world"), 11);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(kt_snprintf(buf, 1, "hello"), 5);
	assert_string_equal(buf, "");
	assert_int_equal(kt_snprintf(buf, 5, "hello %d", 123), 9);
	assert_string_equal(buf, "hell");
	assert_int_equal(kt_snprintf(buf, sizeof(buf), "%s", "1234567"), 7);
	assert_string_equal(buf, "1234567");
	assert_int_equal(kt_snprintf(buf, sizeof(buf), "%s", "12345678"), 8);
	assert_string_equal(buf, "1234567");
	assert_int_equal(kt_snprintf(buf, sizeof(buf), "%20d", 5), 20);
	assert_string_equal(buf, "       ");
}

static void test_printf(void **state)
{
	char want[1024];

	(void)state;
	clear_output();
	kt_printf("value %d, %s\n", 42, "ok");
	assert_string_equal(out, "value 42, ok\n");
	/* Longer than kt_printf's buffer: written in pieces, nothing lost. */
	clear_output();
	snprintf(want, sizeof(want), "%0600d|%s", 7, "tail");
	kt_printf("%0600d|%s", 7, "tail");
	assert_string_equal(out, want);
}

/* ---- kt_glob_match ---- */

static const struct {
	const char *pattern, *str;
	bool match;
} glob_cases[] = {
	{ "", "", true },
	{ "", "a", false },
	{ "abc", "abc", true },
	{ "abc", "abd", false },
	{ "abc", "ab", false },
	{ "ab", "abc", false },
	{ "*", "", true },
	{ "*", "anything", true },
	{ "a*", "a", true },
	{ "a*", "abc", true },
	{ "a*", "ba", false },
	{ "*c", "abc", true },
	{ "*c", "abcd", false },
	{ "a*c", "ac", true },
	{ "a*c", "abbbc", true },
	{ "a*c", "abcb", false },
	{ "a*b*c", "axxbyyc", true },
	{ "a*b*c", "axxcyyb", false },
	{ "*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
	{ "**", "x", true },
	{ "?", "a", true },
	{ "?", "", false },
	{ "??", "a", false },
	{ "a?c", "abc", true },
	{ "*?", "", false },
	{ "[abc]", "b", true },
	{ "[abc]", "d", false },
	{ "[a-z]x", "qx", true },
	{ "[a-z]x", "Qx", false },
	{ "[!a-z]", "Q", true },
	{ "[!a-z]", "q", false },
	{ "[^a]", "b", true },
	{ "[]]", "]", true },
	{ "[!]]", "]", false },
	{ "[!]]", "a", true },
	{ "[a-]", "-", true },
	{ "[0-9][0-9]", "42", true },
	{ "[", "[", true },
	{ "[ab", "[ab", true },
	{ "[ab", "a", false },
	{ "mm_*.alloc_[0-9]*", "mm_buddy.alloc_4k", true },
	{ "mm_*.alloc_[0-9]*", "mm_buddy.free_4k", false },
};

static void test_glob(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++) {
		const char *pattern = glob_cases[i].pattern, *str = glob_cases[i].str;

		if (kt_glob_match(pattern, str) != glob_cases[i].match)
			fail_msg("glob \"%s\" on \"%s\": want %d", pattern, str, glob_cases[i].match);
	}
	assert_false(kt_glob_match(NULL, "a"));
	assert_false(kt_glob_match("a", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_conversions),
		cmocka_unit_test(test_format_matches_libc),
		cmocka_unit_test(test_format_bad_conversions),
		cmocka_unit_test(test_format_truncation),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_glob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
