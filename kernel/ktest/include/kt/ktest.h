/* ktest.h: the kt_ in-kernel test API (cases, suites, assertions, skips, params, cleanups). */
#ifndef KT_KTEST_H
#define KT_KTEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/kt_abi.h>
#include <kt_arch.h> /* the arch's kt_jmp_buf, kt_setjmp, kt_longjmp, KT_ARCH_MAGIC */

/*
 * A test file defines cases, gathers them in a suite and registers the suite:
 *
 *   static void add_works(struct kt_test *t) { KT_EXPECT_EQ(t, 1 + 1, 2); }
 *   static struct kt_case math_cases[] = { KT_CASE(add_works), {} };
 *   static struct kt_suite math_suite = { .name = "math", .cases = math_cases };
 *   KT_SUITE(math_suite);
 *
 * The kernel calls kt_run() once, with its command line; the runner prints KTAP version 1
 * through kt_arch_write() and keeps the state described in <kscope/kt_abi.h> at `kt_state`.
 * The runner is single-threaded: call it from one CPU.
 *
 * End case arrays with {} (or { .run = NULL }): {0} draws -Wmissing-braces, because a case
 * begins with a struct.
 */

#define KT_MAX_CLEANUPS 16   /* cleanups one case may register */
#define KT_PARAM_DESC_SIZE 64 /* bytes for a parameter's description */

/* Flags for struct kt_case.flags and struct kt_suite.flags. */
#define KT_DESTRUCTIVE KT_ABI_F_DESTRUCTIVE /* leaves the kernel unusable afterwards */
#define KT_OPT_IN KT_ABI_F_OPT_IN           /* suite: runs only when a filter selects it */

struct kt_test;
struct kt_suite;

/* A test case: a function and a name; optionally parameterized. */
struct kt_case {
	struct kt_abi_case abi; /* filled by the runner; must stay the first member */
	const char *name;
	void (*run)(struct kt_test *t);
	/*
	 * Parameter generator: called with NULL for the first parameter and with the previous
	 * one after that; returns NULL when done. It may write a description into desc
	 * (KT_PARAM_DESC_SIZE bytes); an empty one becomes "param-N".
	 */
	const void *(*gen_params)(const void *prev, char *desc);
	unsigned int flags; /* KT_DESTRUCTIVE */
};

/* A suite: cases (ended by an entry whose run is NULL) and optional hooks. */
struct kt_suite {
	struct kt_abi_suite abi; /* filled by the runner; must stay the first member */
	const char *name;
	struct kt_case *cases;
	int (*suite_init)(struct kt_suite *s); /* non-zero: every case fails, suite_exit runs */
	void (*suite_exit)(struct kt_suite *s);
	int (*init)(struct kt_test *t);  /* before each case; non-zero fails the case */
	void (*exit)(struct kt_test *t); /* after each case, even when init failed or aborted */
	unsigned int flags;              /* KT_DESTRUCTIVE, KT_OPT_IN */
	void *priv;                      /* for the suite's own use */
};

struct kt_cleanup {
	void (*fn)(void *data);
	void *data;
};

/* The context of one running case (or one parameter of it). */
struct kt_test {
	struct kt_suite *suite;
	struct kt_case *kcase;
	const void *param; /* the current parameter; NULL for a plain case */
	void *priv;        /* for init, the case and exit to share */
	/* Internal to the runner. */
	int status;        /* KT_ST_PASS, KT_ST_FAIL or KT_ST_SKIP */
	int indent;        /* KTAP nesting depth of this result */
	kt_jmp_buf abort_jmp;
	struct kt_cleanup cleanups[KT_MAX_CLEANUPS];
	unsigned int ncleanups;
	char skip_reason[96];
};

/* What kt_run() did. */
struct kt_summary {
	unsigned int pass, fail, skip, total; /* cases with each result; total = selected
						 (with kt.list: listed) */
	bool listed;                          /* kt.list was given: names printed, nothing ran */
};

#define KT_CASE(fn) { .name = #fn, .run = fn }
#define KT_CASE_FLAGS(fn, fl) { .name = #fn, .run = fn, .flags = (fl) }
#define KT_CASE_PARAM(fn, gen) { .name = #fn, .run = fn, .gen_params = gen }

/*
 * Registers a suite: places a pointer to it in the `kt_suites` linker section. Suites run in
 * the order they are registered in a file (no_reorder keeps GCC from reversing them), and
 * files in link order.
 */
#define KT_SUITE(s)                                                                        \
	static struct kt_suite *kt__suite_ptr_##s __attribute__((                          \
		used, no_reorder, section("kt_suites"), aligned(sizeof(void *)))) = &(s)

/*
 * Defines `name##_gen_params`, a generator over the array `array` (a real array, not a
 * pointer). desc_fn(const T *param, char *desc) may describe each; pass NULL for none.
 */
#define KT_ARRAY_PARAM(name, array, desc_fn)                                               \
	static const void *name##_gen_params(const void *prev, char *desc)                 \
	{                                                                                  \
		const __typeof__((array)[0]) *kt__p = prev;                                \
		kt__p = kt__p ? kt__p + 1 : &(array)[0];                                   \
		if (kt__p >= &(array)[sizeof(array) / sizeof((array)[0])])                \
			return NULL;                                                       \
		void (*kt__d)(__typeof__(kt__p), char *) = desc_fn;                        \
		if (kt__d)                                                                 \
			kt__d(kt__p, desc);                                                \
		return kt__p;                                                              \
	}

/* Magic-instruction message to the host (see KT_MAGIC_* in <kscope/kt_abi.h>). */
#define KT_MAGIC(id, arg) KT_ARCH_MAGIC((id), (arg), 0)
#define KT_MAGIC2(id, a0, a1) KT_ARCH_MAGIC((id), (a0), (a1))

/* ---- Functions the arch or kernel provides ---- */

/* Writes n bytes to the console serial port. May be called with interrupts on or off. */
void kt_arch_write(const char *s, size_t n);
/* Monotonic nanoseconds since some point at boot; 0 when the kernel has no clock. */
uint64_t kt_arch_now_ns(void);

/* ---- The runner ---- */

/* The in-memory state a host reads (see <kscope/kt_abi.h>); valid from boot, filled by kt_run. */
extern struct kt_abi_state kt_state;

/*
 * Runs the registered suites as the command line says (`kt.filter=GLOB`, several allowed,
 * each GLOB over "suite.case" or over "suite" alone; `kt.list`), printing KTAP on the console.
 * Other tokens are ignored. A value may hold several globs separated by commas; a glob splits
 * at its first '.'. With no filter, every suite runs except the KT_OPT_IN ones.
 *
 * kt.list runs nothing: it prints "# kt.list: N tests", then one "suite.case" line per case
 * (the filter's selection, or with no filter every case, opt-in ones included), followed by
 * " # " and the tags that apply ("destructive", "opt-in", "param"), e.g.
 * "mm.wipe_all # destructive param".
 *
 * Fills *out (may be NULL). Each call starts afresh (records, counters, output numbering).
 */
void kt_run(const char *cmdline, struct kt_summary *out);

/* Aborts the running case as skipped; reason is printf-style. Never returns. */
__attribute__((noreturn, format(printf, 2, 3)))
void kt_skip(struct kt_test *t, const char *fmt, ...);
/* Marks the running case skipped and lets it continue (a later failure still fails it). */
__attribute__((format(printf, 2, 3)))
void kt_mark_skipped(struct kt_test *t, const char *fmt, ...);
/*
 * Registers fn(data) to run after the case, in reverse order of registration, even after an
 * ASSERT abort. Returns 0, or -1 when KT_MAX_CLEANUPS are taken (fn is then called at once).
 */
int kt_add_cleanup(struct kt_test *t, void (*fn)(void *data), void *data);
/* Prints a diagnostic line ("# ...") at the running case's indentation. */
__attribute__((format(printf, 2, 3)))
void kt_info(struct kt_test *t, const char *fmt, ...);

/* ---- Formatting, for the kernel too (no libc) ---- */

/* printf-style formatting into buf; %d %i %u %x %X %o %p %s %c %% with l, ll, z, j, t, h, hh,
 * width, '0', '-', '+', ' ', '#' and precision ('*' for either). %p prints 0x<hex>, or (null).
 * Returns the length it wanted (C99 rules); buf is NUL-terminated whenever size > 0. */
int kt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
__attribute__((format(printf, 3, 4)))
int kt_snprintf(char *buf, size_t size, const char *fmt, ...);
/* Formats and writes to the console through kt_arch_write(). */
__attribute__((format(printf, 1, 2)))
void kt_printf(const char *fmt, ...);
/* Shell-style glob: '*', '?', and [set] with ranges and '!'. */
bool kt_glob_match(const char *pattern, const char *str);

/* ---- Assertions ----
 * KT_EXPECT_* records a failure and goes on; KT_ASSERT_* records it and aborts the case (also
 * from helper functions given the same struct kt_test). Each operand is evaluated once. The
 * _MSG forms add a printf-style message. Integer comparisons are exact whatever the operand
 * types' signedness (-1 < 0u holds).
 */

#define KT_EXPECT_EQ(t, a, b) KT__INT(t, 0, a, ==, b, #a, #b, NULL)
#define KT_EXPECT_NE(t, a, b) KT__INT(t, 0, a, !=, b, #a, #b, NULL)
#define KT_EXPECT_LT(t, a, b) KT__INT(t, 0, a, <, b, #a, #b, NULL)
#define KT_EXPECT_LE(t, a, b) KT__INT(t, 0, a, <=, b, #a, #b, NULL)
#define KT_EXPECT_GT(t, a, b) KT__INT(t, 0, a, >, b, #a, #b, NULL)
#define KT_EXPECT_GE(t, a, b) KT__INT(t, 0, a, >=, b, #a, #b, NULL)
#define KT_EXPECT_TRUE(t, c) KT__BOOL(t, 0, c, #c, true, NULL)
#define KT_EXPECT_FALSE(t, c) KT__BOOL(t, 0, c, #c, false, NULL)
#define KT_EXPECT_NULL(t, p) KT__PTR(t, 0, p, ==, NULL, #p, "NULL", NULL)
#define KT_EXPECT_NOT_NULL(t, p) KT__PTR(t, 0, p, !=, NULL, #p, "NULL", NULL)
#define KT_EXPECT_PTR_EQ(t, a, b) KT__PTR(t, 0, a, ==, b, #a, #b, NULL)
#define KT_EXPECT_STR_EQ(t, a, b) KT__STR(t, 0, a, ==, b, #a, #b, NULL)
#define KT_EXPECT_STR_NE(t, a, b) KT__STR(t, 0, a, !=, b, #a, #b, NULL)
#define KT_EXPECT_MEM_EQ(t, a, b, n) KT__MEM(t, 0, a, b, n, #a, #b, #n, NULL)

#define KT_EXPECT_EQ_MSG(t, a, b, ...) KT__INT(t, 0, a, ==, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_NE_MSG(t, a, b, ...) KT__INT(t, 0, a, !=, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_LT_MSG(t, a, b, ...) KT__INT(t, 0, a, <, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_LE_MSG(t, a, b, ...) KT__INT(t, 0, a, <=, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_GT_MSG(t, a, b, ...) KT__INT(t, 0, a, >, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_GE_MSG(t, a, b, ...) KT__INT(t, 0, a, >=, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_TRUE_MSG(t, c, ...) KT__BOOL(t, 0, c, #c, true, __VA_ARGS__)
#define KT_EXPECT_FALSE_MSG(t, c, ...) KT__BOOL(t, 0, c, #c, false, __VA_ARGS__)
#define KT_EXPECT_NULL_MSG(t, p, ...) KT__PTR(t, 0, p, ==, NULL, #p, "NULL", __VA_ARGS__)
#define KT_EXPECT_NOT_NULL_MSG(t, p, ...) KT__PTR(t, 0, p, !=, NULL, #p, "NULL", __VA_ARGS__)
#define KT_EXPECT_PTR_EQ_MSG(t, a, b, ...) KT__PTR(t, 0, a, ==, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_STR_EQ_MSG(t, a, b, ...) KT__STR(t, 0, a, ==, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_STR_NE_MSG(t, a, b, ...) KT__STR(t, 0, a, !=, b, #a, #b, __VA_ARGS__)
#define KT_EXPECT_MEM_EQ_MSG(t, a, b, n, ...) KT__MEM(t, 0, a, b, n, #a, #b, #n, __VA_ARGS__)

#define KT_ASSERT_EQ(t, a, b) KT__INT(t, 1, a, ==, b, #a, #b, NULL)
#define KT_ASSERT_NE(t, a, b) KT__INT(t, 1, a, !=, b, #a, #b, NULL)
#define KT_ASSERT_LT(t, a, b) KT__INT(t, 1, a, <, b, #a, #b, NULL)
#define KT_ASSERT_LE(t, a, b) KT__INT(t, 1, a, <=, b, #a, #b, NULL)
#define KT_ASSERT_GT(t, a, b) KT__INT(t, 1, a, >, b, #a, #b, NULL)
#define KT_ASSERT_GE(t, a, b) KT__INT(t, 1, a, >=, b, #a, #b, NULL)
#define KT_ASSERT_TRUE(t, c) KT__BOOL(t, 1, c, #c, true, NULL)
#define KT_ASSERT_FALSE(t, c) KT__BOOL(t, 1, c, #c, false, NULL)
#define KT_ASSERT_NULL(t, p) KT__PTR(t, 1, p, ==, NULL, #p, "NULL", NULL)
#define KT_ASSERT_NOT_NULL(t, p) KT__PTR(t, 1, p, !=, NULL, #p, "NULL", NULL)
#define KT_ASSERT_PTR_EQ(t, a, b) KT__PTR(t, 1, a, ==, b, #a, #b, NULL)
#define KT_ASSERT_STR_EQ(t, a, b) KT__STR(t, 1, a, ==, b, #a, #b, NULL)
#define KT_ASSERT_STR_NE(t, a, b) KT__STR(t, 1, a, !=, b, #a, #b, NULL)
#define KT_ASSERT_MEM_EQ(t, a, b, n) KT__MEM(t, 1, a, b, n, #a, #b, #n, NULL)

#define KT_ASSERT_EQ_MSG(t, a, b, ...) KT__INT(t, 1, a, ==, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_NE_MSG(t, a, b, ...) KT__INT(t, 1, a, !=, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_LT_MSG(t, a, b, ...) KT__INT(t, 1, a, <, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_LE_MSG(t, a, b, ...) KT__INT(t, 1, a, <=, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_GT_MSG(t, a, b, ...) KT__INT(t, 1, a, >, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_GE_MSG(t, a, b, ...) KT__INT(t, 1, a, >=, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_TRUE_MSG(t, c, ...) KT__BOOL(t, 1, c, #c, true, __VA_ARGS__)
#define KT_ASSERT_FALSE_MSG(t, c, ...) KT__BOOL(t, 1, c, #c, false, __VA_ARGS__)
#define KT_ASSERT_NULL_MSG(t, p, ...) KT__PTR(t, 1, p, ==, NULL, #p, "NULL", __VA_ARGS__)
#define KT_ASSERT_NOT_NULL_MSG(t, p, ...) KT__PTR(t, 1, p, !=, NULL, #p, "NULL", __VA_ARGS__)
#define KT_ASSERT_PTR_EQ_MSG(t, a, b, ...) KT__PTR(t, 1, a, ==, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_STR_EQ_MSG(t, a, b, ...) KT__STR(t, 1, a, ==, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_STR_NE_MSG(t, a, b, ...) KT__STR(t, 1, a, !=, b, #a, #b, __VA_ARGS__)
#define KT_ASSERT_MEM_EQ_MSG(t, a, b, n, ...) KT__MEM(t, 1, a, b, n, #a, #b, #n, __VA_ARGS__)

/* Records an unconditional failure (KT_FAIL) or aborts the case with one (KT_ASSERT_FAIL). */
#define KT_FAIL(t, ...) kt__fail_msg(t, 0, __FILE__, __LINE__, __VA_ARGS__)
#define KT_ASSERT_FAIL(t, ...)                                                             \
	do {                                                                               \
		kt__fail_msg(t, 1, __FILE__, __LINE__, __VA_ARGS__);                       \
		kt__abort(t);                                                              \
	} while (0)

/* ---- Internals of the assertion macros ---- */

struct kt__site {
	const char *file;
	int line;
	bool fatal;
	const char *expr;  /* the whole comparison as written */
	const char *left;  /* the operands as written */
	const char *right;
};

#define KT__SITE(fat, ex, l, r)                                                            \
	(&(const struct kt__site){ __FILE__, __LINE__, (fat), (ex), (l), (r) })
/* Compares with 1, not 0, so that unsigned types do not trigger -Wtype-limits. */
#define KT__IS_SIGNED(x) (((__typeof__(x))-1) < (__typeof__(x))1)

/* Three-way comparison of two integers by value, whatever their signedness. */
int kt__cmp_int(bool ls, unsigned long long l, bool rs, unsigned long long r);

/* The reporters print the failure and record it; fmt is the _MSG message, NULL for none. */
__attribute__((noreturn)) void kt__abort(struct kt_test *t);
__attribute__((format(printf, 7, 8)))
void kt__fail_int(struct kt_test *t, const struct kt__site *s, bool ls, unsigned long long l,
		  bool rs, unsigned long long r, const char *fmt, ...);
__attribute__((format(printf, 3, 4)))
void kt__fail_bool(struct kt_test *t, const struct kt__site *s, const char *fmt, ...);
__attribute__((format(printf, 5, 6)))
void kt__fail_ptr(struct kt_test *t, const struct kt__site *s, const void *l, const void *r,
		  const char *fmt, ...);
__attribute__((format(printf, 5, 6)))
void kt__fail_str(struct kt_test *t, const struct kt__site *s, const char *l, const char *r,
		  const char *fmt, ...);
__attribute__((format(printf, 6, 7)))
void kt__fail_mem(struct kt_test *t, const struct kt__site *s, const void *l, const void *r,
		  size_t n, const char *fmt, ...);
__attribute__((format(printf, 5, 6)))
void kt__fail_msg(struct kt_test *t, bool fatal, const char *file, int line, const char *fmt,
		  ...);
bool kt__str_eq(const char *a, const char *b);
bool kt__mem_eq(const void *a, const void *b, size_t n);

/*
 * The public macros stringify their operands themselves (la, lb, ...), before any macro in
 * them is expanded, so that failures show the expression as written (NULL, not ((void *)0)).
 */
#define KT__INT(t, fat, a, op, b, la, lb, ...)                                             \
	do {                                                                               \
		const __typeof__(a) kt__a = (a);                                           \
		const __typeof__(b) kt__b = (b);                                           \
		if (!(kt__cmp_int(KT__IS_SIGNED(kt__a), (unsigned long long)kt__a,          \
				  KT__IS_SIGNED(kt__b), (unsigned long long)kt__b) op 0)) { \
			kt__fail_int(t, KT__SITE(fat, la " " #op " " lb, la, lb),          \
				     KT__IS_SIGNED(kt__a), (unsigned long long)kt__a,      \
				     KT__IS_SIGNED(kt__b), (unsigned long long)kt__b,      \
				     __VA_ARGS__);                                         \
			if (fat)                                                           \
				kt__abort(t);                                              \
		}                                                                          \
	} while (0)

#define KT__BOOL(t, fat, c, lc, want, ...)                                                 \
	do {                                                                               \
		const bool kt__c = (c);                                                    \
		if (kt__c != (want)) {                                                     \
			kt__fail_bool(t, KT__SITE(fat, lc, #want, NULL), __VA_ARGS__);     \
			if (fat)                                                           \
				kt__abort(t);                                              \
		}                                                                          \
	} while (0)

#define KT__PTR(t, fat, a, op, b, la, lb, ...)                                             \
	do {                                                                               \
		const void *const kt__a = (a);                                             \
		const void *const kt__b = (b);                                             \
		if (!(kt__a op kt__b)) {                                                   \
			kt__fail_ptr(t, KT__SITE(fat, la " " #op " " lb, la, lb), kt__a,   \
				     kt__b, __VA_ARGS__);                                  \
			if (fat)                                                           \
				kt__abort(t);                                              \
		}                                                                          \
	} while (0)

#define KT__STR(t, fat, a, op, b, la, lb, ...)                                             \
	do {                                                                               \
		const char *const kt__a = (a);                                             \
		const char *const kt__b = (b);                                             \
		if (!(kt__str_eq(kt__a, kt__b) op true)) {                                 \
			kt__fail_str(t, KT__SITE(fat, la " " #op " " lb, la, lb), kt__a,   \
				     kt__b, __VA_ARGS__);                                  \
			if (fat)                                                           \
				kt__abort(t);                                              \
		}                                                                          \
	} while (0)

#define KT__MEM(t, fat, a, b, n, la, lb, ln, ...)                                          \
	do {                                                                               \
		const void *const kt__a = (a);                                             \
		const void *const kt__b = (b);                                             \
		const size_t kt__n = (n);                                                  \
		if (!kt__mem_eq(kt__a, kt__b, kt__n)) {                                    \
			kt__fail_mem(t, KT__SITE(fat, "memcmp(" la ", " lb ", " ln ") == 0", \
						 la, lb),                                  \
				     kt__a, kt__b, kt__n, __VA_ARGS__);                    \
			if (fat)                                                           \
				kt__abort(t);                                              \
		}                                                                          \
	} while (0)

#endif /* KT_KTEST_H */
