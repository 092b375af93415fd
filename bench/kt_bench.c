/* kt_bench.c: opt-in kt_ suites of fixed CPU work for bench_run: 16 suites to share out, 4 destructive tests. */
#include <stdint.h>

#include <kt/ktest.h>

/* Iterations of one case: about 25 ms under TCG on the project's machines. */
#define CHURN 8000000u

static uint64_t churn(uint64_t seed)
{
	volatile uint64_t x = seed;

	for (uint32_t i = 0; i < CHURN; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x;
}

static void work_a(struct kt_test *t) { KT_EXPECT_NE(t, churn(1), 0); }
static void work_b(struct kt_test *t) { KT_EXPECT_NE(t, churn(2), 0); }
static void work_c(struct kt_test *t) { KT_EXPECT_NE(t, churn(3), 0); }
static void work_d(struct kt_test *t) { KT_EXPECT_NE(t, churn(4), 0); }

/* Sixteen identical suites, bench_s00 to bench_s15, each of four cases. */
#define BENCH_SUITE(n)                                                                      \
	static struct kt_case bench_cases_##n[] = {                                        \
		KT_CASE(work_a), KT_CASE(work_b), KT_CASE(work_c), KT_CASE(work_d), {}      \
	};                                                                                 \
	static struct kt_suite bench_s##n = {                                              \
		.name = "bench_s" #n, .cases = bench_cases_##n, .flags = KT_OPT_IN,         \
	};                                                                                 \
	KT_SUITE(bench_s##n)

BENCH_SUITE(00); BENCH_SUITE(01); BENCH_SUITE(02); BENCH_SUITE(03);
BENCH_SUITE(04); BENCH_SUITE(05); BENCH_SUITE(06); BENCH_SUITE(07);
BENCH_SUITE(08); BENCH_SUITE(09); BENCH_SUITE(10); BENCH_SUITE(11);
BENCH_SUITE(12); BENCH_SUITE(13); BENCH_SUITE(14); BENCH_SUITE(15);

/* Four tests a run must isolate: each leaves a mark that the next one would trip on. */
static volatile uint64_t poisoned;

static void poison(struct kt_test *t)
{
	KT_EXPECT_EQ(t, poisoned, 0);
	poisoned = churn(5) | 1;
}

static struct kt_case destructive_cases[] = {
	{ .name = "poison_1", .run = poison, .flags = KT_DESTRUCTIVE },
	{ .name = "poison_2", .run = poison, .flags = KT_DESTRUCTIVE },
	{ .name = "poison_3", .run = poison, .flags = KT_DESTRUCTIVE },
	{ .name = "poison_4", .run = poison, .flags = KT_DESTRUCTIVE },
	{}
};

static struct kt_suite bench_destructive = {
	.name = "bench_destructive", .cases = destructive_cases, .flags = KT_OPT_IN,
};
KT_SUITE(bench_destructive);
