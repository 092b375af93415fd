/* tests_string.c: kt_ tests of the kernel's string and memory functions and option parsing. */
#include <stdint.h>

#include <kern/cmdline.h>
#include <kern/errno.h>
#include <kern/string.h>
#include <kt/ktest.h>

#define BUF 96
#define GUARD 0xee

/* Byte-at-a-time reference copy through a temporary: right for any overlap. */
static void ref_move(unsigned char *buf, size_t dst, size_t src, size_t n)
{
	unsigned char tmp[BUF];

	for (size_t i = 0; i < n; i++)
		tmp[i] = buf[src + i];
	for (size_t i = 0; i < n; i++)
		buf[dst + i] = tmp[i];
}

static void fill_pattern(unsigned char *buf, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 7 + seed);
}

static void memcpy_alignments(struct kt_test *t)
{
	unsigned char src[BUF], dst[BUF], want[BUF];
	unsigned int bad = 0;

	fill_pattern(src, BUF, 3);
	for (size_t so = 0; so < 8; so++)
		for (size_t d = 0; d < 8; d++)
			for (size_t n = 0; n <= 40; n++) {
				memset(dst, GUARD, BUF);
				memset(want, GUARD, BUF);
				for (size_t i = 0; i < n; i++)
					want[d + i] = src[so + i];
				void *r = memcpy(dst + d, src + so, n);
				bad += r != dst + d || memcmp(dst, want, BUF) != 0;
			}
	KT_EXPECT_EQ_MSG(t, bad, 0u, "of 8 x 8 x 41 offset/length combinations");
}

static void memcpy_zero_length(struct kt_test *t)
{
	char dst[4] = "abc";

	KT_EXPECT_PTR_EQ(t, memcpy(dst, "xyz", 0), dst);
	KT_EXPECT_STR_EQ(t, dst, "abc");
	KT_EXPECT_PTR_EQ(t, memmove(dst, "xyz", 0), dst);
	KT_EXPECT_PTR_EQ(t, memset(dst, 'q', 0), dst);
	KT_EXPECT_STR_EQ(t, dst, "abc");
	KT_EXPECT_EQ(t, memcmp("a", "b", 0), 0);
}

/* memmove over one buffer: destination and source offsets, length. */
struct move_case {
	size_t dst, src, len;
};

static const struct move_case move_cases[] = {
	{ 1, 0, 40 },  /* destination just above the source: must copy downwards */
	{ 0, 1, 40 },  /* just below: upwards */
	{ 8, 0, 64 },  /* a whole word apart, aligned */
	{ 0, 8, 64 },
	{ 3, 10, 50 }, /* unaligned both ways */
	{ 10, 3, 50 },
	{ 5, 5, 30 },  /* onto itself */
	{ 0, 48, 48 }, /* disjoint */
	{ 7, 2, 0 },   /* nothing */
};

static void move_desc(const struct move_case *c, char *desc)
{
	kt_snprintf(desc, KT_PARAM_DESC_SIZE, "dst+%zu src+%zu len %zu", c->dst, c->src, c->len);
}

KT_ARRAY_PARAM(memmove_overlap, move_cases, move_desc)

static void memmove_overlap(struct kt_test *t)
{
	const struct move_case *c = t->param;
	unsigned char buf[BUF], want[BUF];

	fill_pattern(buf, BUF, 11);
	fill_pattern(want, BUF, 11);
	ref_move(want, c->dst, c->src, c->len);
	KT_EXPECT_PTR_EQ(t, memmove(buf + c->dst, buf + c->src, c->len), buf + c->dst);
	KT_EXPECT_MEM_EQ(t, buf, want, BUF);
}

static void memset_patterns(struct kt_test *t)
{
	unsigned char buf[BUF];
	unsigned int bad = 0;

	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n <= 70; n++) {
			memset(buf, GUARD, BUF);
			memset(buf + off, 0x1a5, n); /* only the low byte counts */
			for (size_t i = 0; i < BUF; i++)
				bad += buf[i] != (i >= off && i < off + n ? 0xa5 : GUARD);
		}
	KT_EXPECT_EQ(t, bad, 0u);
}

static void memcmp_order(struct kt_test *t)
{
	KT_EXPECT_EQ(t, memcmp("abc", "abc", 3), 0);
	KT_EXPECT_LT(t, memcmp("abc", "abd", 3), 0);
	KT_EXPECT_GT(t, memcmp("abd", "abc", 3), 0);
	KT_EXPECT_EQ(t, memcmp("abc", "abd", 2), 0);
	/* Bytes compare as unsigned: 0x80 is above 0x7f. */
	KT_EXPECT_GT(t, memcmp("\x80", "\x7f", 1), 0);
	KT_EXPECT_LT(t, memcmp("a\x01", "a\xff", 2), 0);
}

static void memchr_finds(struct kt_test *t)
{
	const char s[] = "kernel\0tail";

	KT_EXPECT_PTR_EQ(t, memchr(s, 'r', 6), s + 2);
	KT_EXPECT_NULL(t, memchr(s, 't', 6));        /* beyond n */
	KT_EXPECT_PTR_EQ(t, memchr(s, 't', 11), s + 7);
	KT_EXPECT_PTR_EQ(t, memchr(s, 0x100 + 'k', 6), s); /* c is converted to a byte */
	KT_EXPECT_NULL(t, memchr(s, 'k', 0));
}

static void strlen_strnlen(struct kt_test *t)
{
	KT_EXPECT_EQ(t, strlen(""), 0u);
	KT_EXPECT_EQ(t, strlen("a"), 1u);
	KT_EXPECT_EQ(t, strlen("kscope demo kernel"), 18u);
	KT_EXPECT_EQ(t, strnlen("kscope", 3), 3u);
	KT_EXPECT_EQ(t, strnlen("kscope", 100), 6u);
	KT_EXPECT_EQ(t, strnlen("", 0), 0u);
}

static void strcmp_strncmp(struct kt_test *t)
{
	KT_EXPECT_EQ(t, strcmp("", ""), 0);
	KT_EXPECT_EQ(t, strcmp("same", "same"), 0);
	KT_EXPECT_LT(t, strcmp("abc", "abcd"), 0); /* a prefix sorts first */
	KT_EXPECT_GT(t, strcmp("abd", "abc"), 0);
	KT_EXPECT_GT(t, strcmp("\xff", "a"), 0);   /* unsigned chars */
	KT_EXPECT_EQ(t, strncmp("abcx", "abcy", 3), 0);
	KT_EXPECT_LT(t, strncmp("abcx", "abcy", 4), 0);
	KT_EXPECT_EQ(t, strncmp("a", "b", 0), 0);
	KT_EXPECT_EQ(t, strncmp("ab", "ab", 10), 0); /* stops at the NUL */
}

static void strchr_strrchr(struct kt_test *t)
{
	const char *s = "a/b/c";

	KT_EXPECT_PTR_EQ(t, strchr(s, '/'), s + 1);
	KT_EXPECT_PTR_EQ(t, strrchr(s, '/'), s + 3);
	KT_EXPECT_NULL(t, strchr(s, 'x'));
	KT_EXPECT_NULL(t, strrchr(s, 'x'));
	KT_EXPECT_PTR_EQ(t, strchr(s, '\0'), s + 5); /* the terminator is part of the string */
	KT_EXPECT_PTR_EQ(t, strrchr(s, '\0'), s + 5);
	KT_EXPECT_PTR_EQ(t, strrchr(s, 'a'), s);
}

static void strlcpy_truncates(struct kt_test *t)
{
	char buf[8];

	KT_EXPECT_EQ(t, strlcpy(buf, "short", sizeof(buf)), 5u);
	KT_EXPECT_STR_EQ(t, buf, "short");
	KT_EXPECT_EQ(t, strlcpy(buf, "much too long", sizeof(buf)), 13u);
	KT_EXPECT_STR_EQ(t, buf, "much to");
	buf[0] = 'x';
	KT_EXPECT_EQ(t, strlcpy(buf, "abc", 0), 3u); /* size 0 writes nothing */
	KT_EXPECT_EQ(t, buf[0], 'x');
	KT_EXPECT_EQ(t, strlcpy(buf, "abc", 1), 3u);
	KT_EXPECT_STR_EQ(t, buf, "");
}

struct big {
	uint64_t words[40];
	char tail[13];
};

/* Struct copies and large zero-initializations become memcpy/memset calls from GCC. */
static void compiler_calls(struct kt_test *t)
{
	volatile unsigned int seed = 5;
	struct big a, b;

	for (unsigned int i = 0; i < 40; i++)
		a.words[i] = i * seed;
	memcpy(a.tail, "thirteen byte", sizeof(a.tail));
	b = a;
	KT_EXPECT_MEM_EQ(t, &a, &b, sizeof(a));
	struct big z = { .tail = { 0 } };
	unsigned int nonzero = 0;
	for (unsigned int i = 0; i < 40; i++)
		nonzero += z.words[i] != 0;
	KT_EXPECT_EQ(t, nonzero, 0u);
}

static const struct {
	const char *cmdline, *key;
	int ret;
	uint64_t val; /* when ret is 0 */
} cmdline_table[] = {
	{ "", "a.b", -ENOENT, 0 },
	{ "a.b=7", "a.b", 0, 7 },
	{ "kt.filter=x  a.b=12 c=3", "a.b", 0, 12 },
	{ "a.b=1 a.b=2", "a.b", 0, 2 },            /* the last one wins */
	{ "xa.b=5 a.bc=6 a.b", "a.b", -ENOENT, 0 }, /* whole words and keys only */
	{ "a.b=", "a.b", -EINVAL, 0 },
	{ "a.b=12ms", "a.b", -EINVAL, 0 },
	{ "a.b=-1", "a.b", -EINVAL, 0 },
	{ "a.b=18446744073709551615", "a.b", 0, UINT64_MAX },
	{ "a.b=18446744073709551616", "a.b", -EINVAL, 0 },
};

static void cmdline_options(struct kt_test *t)
{
	for (size_t i = 0; i < sizeof(cmdline_table) / sizeof(cmdline_table[0]); i++) {
		uint64_t v = 99;
		int r = cmdline_get_u64(cmdline_table[i].cmdline, cmdline_table[i].key, &v);

		KT_EXPECT_EQ_MSG(t, r, cmdline_table[i].ret, "\"%s\"", cmdline_table[i].cmdline);
		KT_EXPECT_EQ_MSG(t, v, r ? 99 : cmdline_table[i].val, "\"%s\"",
				 cmdline_table[i].cmdline);
	}
}

static struct kt_case string_cases[] = {
	KT_CASE(memcpy_alignments),
	KT_CASE(memcpy_zero_length),
	KT_CASE_PARAM(memmove_overlap, memmove_overlap_gen_params),
	KT_CASE(memset_patterns),
	KT_CASE(memcmp_order),
	KT_CASE(memchr_finds),
	KT_CASE(strlen_strnlen),
	KT_CASE(strcmp_strncmp),
	KT_CASE(strchr_strrchr),
	KT_CASE(strlcpy_truncates),
	KT_CASE(compiler_calls),
	KT_CASE(cmdline_options),
	{ .run = NULL },
};

static struct kt_suite string_suite = { .name = "string", .cases = string_cases };
KT_SUITE(string_suite);
