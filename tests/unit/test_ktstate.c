/* test_ktstate.c: decoding kt_state, from a real kt_ run in this process and from broken images. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/ktstate.h>
#include <kt/ktest.h>

/* ---- A few real suites, run by the kt_ runner inside this process ---- */

static void passes(struct kt_test *t) { KT_EXPECT_EQ(t, 2 + 2, 4); }
static void fails(struct kt_test *t) { KT_EXPECT_EQ(t, 2 + 2, 5); }
static void skips(struct kt_test *t) { kt_skip(t, "not here"); }
static const int squares[] = { 0, 1, 4 };
KT_ARRAY_PARAM(squares, squares, NULL);
static void is_square(struct kt_test *t)
{
	const int *p = t->param;

	KT_EXPECT_GE(t, *p, 0);
}

static struct kt_case alpha_cases[] = { KT_CASE(passes), KT_CASE(fails), KT_CASE(skips), {} };
static struct kt_suite alpha = { .name = "alpha", .cases = alpha_cases };
KT_SUITE(alpha);

static struct kt_case beta_cases[] = {
	KT_CASE_PARAM(is_square, squares_gen_params),
	KT_CASE_FLAGS(passes, KT_DESTRUCTIVE),
	{},
};
static struct kt_suite beta = { .name = "beta", .cases = beta_cases };
KT_SUITE(beta);

static struct kt_case gamma_cases[] = { KT_CASE(passes), {} };
static struct kt_suite gamma_suite = { .name = "gamma", .cases = gamma_cases,
				       .flags = KT_OPT_IN };
KT_SUITE(gamma_suite);

static char console[1 << 16];
static size_t console_len;

void kt_arch_write(const char *s, size_t n)
{
	if (n > sizeof(console) - console_len)
		n = sizeof(console) - console_len;
	memcpy(console + console_len, s, n);
	console_len += n;
}

uint64_t kt_arch_now_ns(void)
{
	static uint64_t now;

	return now += 1000;
}

void kt_host_magic(uint64_t id, uint64_t a0, uint64_t a1)
{
	(void)id, (void)a0, (void)a1;
}

/* Suites come in link order, which the compiler may change: look them up by name. */
static const struct ks_kt_suite *find_suite(const struct ks_kt_state *st, const char *name)
{
	for (size_t i = 0; i < st->nsuites; i++)
		if (!strcmp(st->suites[i].name, name))
			return &st->suites[i];
	fail_msg("no suite %s", name);
	return NULL;
}

/*
 * The guest is this process: virtual addresses are host pointers. The decoder reads names in
 * aligned 32-byte chunks, as it may from guest memory (a chunk never crosses a page), which
 * can run past the end of a string object here: fine for the hardware, not for ASan's view
 * of objects, hence the unsanitized byte copy.
 */
__attribute__((no_sanitize_address)) static int read_self(void *ctx, ks_gva_t va, void *buf,
							  size_t len)
{
	const volatile unsigned char *src = (const volatile unsigned char *)(uintptr_t)va;
	unsigned char *dst = buf;

	(void)ctx;
	for (size_t i = 0; i < len; i++)
		dst[i] = src[i];
	return 0;
}

static void decodes_a_real_run(void **state)
{
	struct kt_summary sum;
	struct ks_error err = { 0 };
	(void)state;

	kt_run("vmlinux console=ttyS0", &sum);
	struct ks_kt_state *st = ks_kt_state_read(read_self, NULL, (uintptr_t)&kt_state, &err);
	assert_non_null(st);
	assert_int_equal(st->phase, KT_PHASE_DONE);
	assert_int_equal(st->seq % 2, 0);
	assert_true(st->seq > 0);
	assert_int_equal(st->nsuites, 3);
	assert_int_equal(st->n_pass, sum.pass);
	assert_int_equal(st->n_fail, sum.fail);
	assert_int_equal(st->n_skip, sum.skip);
	assert_int_equal(st->n_selected, 5);

	const struct ks_kt_suite *a = find_suite(st, "alpha"), *b = find_suite(st, "beta");
	const struct ks_kt_suite *g = find_suite(st, "gamma");
	assert_int_equal(a->ncases, 3);
	assert_string_equal(a->cases[0].name, "passes");
	assert_int_equal(a->cases[0].status, KT_ST_PASS);
	assert_int_equal(a->cases[1].status, KT_ST_FAIL);
	assert_int_equal(a->cases[1].failures, 1);
	assert_non_null(a->cases[1].fail_file);
	assert_non_null(strstr(a->cases[1].fail_file, "test_ktstate.c"));
	assert_true(a->cases[1].fail_line > 0);
	assert_int_equal(a->cases[2].status, KT_ST_SKIP);
	assert_int_equal(a->status, KT_ST_FAIL);
	assert_int_equal(a->n_pass, 1);
	assert_int_equal(a->n_fail, 1);
	assert_int_equal(a->n_skip, 1);
	assert_true(a->cases[0].duration_ns > 0);

	assert_true(b->cases[0].flags & KT_ABI_F_PARAM);
	assert_int_equal(b->cases[0].params_total, 3);
	assert_int_equal(b->cases[0].params_failed, 0);
	assert_true(b->cases[1].flags & KT_ABI_F_DESTRUCTIVE);
	assert_int_equal(b->status, KT_ST_PASS);

	assert_true(g->flags & KT_ABI_F_OPT_IN);
	assert_int_equal(g->cases[0].status, KT_ST_FILTERED);
	ks_kt_state_free(st);
}

static void follows_a_filter(void **state)
{
	struct ks_error err = { 0 };
	(void)state;

	kt_run("kt.filter=gamma kt.filter=alpha.pass*", NULL);
	struct ks_kt_state *st = ks_kt_state_read(read_self, NULL, (uintptr_t)&kt_state, &err);
	assert_non_null(st);
	assert_int_equal(st->n_selected, 2);
	assert_int_equal(find_suite(st, "alpha")->cases[0].status, KT_ST_PASS);
	assert_int_equal(find_suite(st, "alpha")->cases[1].status, KT_ST_FILTERED);
	assert_int_equal(find_suite(st, "beta")->cases[0].status, KT_ST_FILTERED);
	assert_int_equal(find_suite(st, "gamma")->cases[0].status, KT_ST_PASS);
	ks_kt_state_free(st);
}

/* ---- Broken memory images: a fake guest with a few mapped pages ---- */

#define IMG_BASE 0xffff800000100000ull
#define IMG_SIZE 8192

struct image {
	unsigned char mem[IMG_SIZE];
	int reads;      /* calls so far */
	int bump_until; /* make seq move on the first reads, as a running kernel would */
};

static int read_image(void *ctx, ks_gva_t va, void *buf, size_t len)
{
	struct image *img = ctx;

	img->reads++;
	if (va < IMG_BASE || va - IMG_BASE > IMG_SIZE || len > IMG_SIZE - (va - IMG_BASE))
		return -EFAULT;
	memcpy(buf, img->mem + (va - IMG_BASE), len);
	if (img->reads < img->bump_until) {
		struct kt_abi_state *h = (struct kt_abi_state *)img->mem;
		h->seq += 2;
	}
	return 0;
}

/* Builds a valid image: one suite "s" with one passing case "c". */
static void build_image(struct image *img)
{
	memset(img, 0, sizeof(*img));
	struct kt_abi_state *h = (struct kt_abi_state *)img->mem;
	struct kt_abi_suite *s = (struct kt_abi_suite *)(img->mem + 1024);
	struct kt_abi_case *c = (struct kt_abi_case *)(img->mem + 2048);
	uint64_t *ptrs = (uint64_t *)(img->mem + 512);

	h->magic = KT_ABI_MAGIC;
	h->version = KT_ABI_VERSION;
	h->size = sizeof(*h);
	h->seq = 10;
	h->suites = IMG_BASE + 512;
	h->nsuites = 1;
	h->ptr_size = 8;
	h->phase = KT_PHASE_RUNNING;
	h->cur_suite = 0;
	h->cur_case = 0;
	h->cur_param = -1;
	ptrs[0] = IMG_BASE + 1024;
	s->name = IMG_BASE + 4096;
	s->cases = IMG_BASE + 2048;
	s->ncases = 1;
	s->case_stride = 96;
	c->name = IMG_BASE + 4100;
	c->status = KT_ST_RUNNING;
	memcpy(img->mem + 4096, "s\0\0\0c", 6);
}

static void expect_error(struct image *img, const char *needle)
{
	struct ks_error err = { 0 };
	struct ks_kt_state *st = ks_kt_state_read(read_image, img, IMG_BASE, &err);

	assert_null(st);
	assert_true(err.code < 0);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void decodes_an_image(void **state)
{
	struct image img;
	struct ks_error err = { 0 };
	(void)state;

	build_image(&img);
	struct ks_kt_state *st = ks_kt_state_read(read_image, &img, IMG_BASE, &err);
	assert_non_null(st);
	assert_int_equal(st->nsuites, 1);
	assert_string_equal(st->suites[0].name, "s");
	assert_string_equal(st->suites[0].cases[0].name, "c");
	assert_int_equal(st->suites[0].cases[0].status, KT_ST_RUNNING);
	assert_null(st->suites[0].cases[0].fail_file);
	assert_int_equal(st->cur_param, -1);
	ks_kt_state_free(st);
}

static void refuses_garbage(void **state)
{
	struct image img;
	(void)state;

	build_image(&img);
	((struct kt_abi_state *)img.mem)->magic ^= 1;
	expect_error(&img, "bad magic");

	build_image(&img);
	((struct kt_abi_state *)img.mem)->version = 99;
	expect_error(&img, "ABI version 99");

	build_image(&img);
	((struct kt_abi_state *)img.mem)->nsuites = 100000;
	expect_error(&img, "100000 suites");

	build_image(&img);
	((struct kt_abi_state *)img.mem)->ptr_size = 3;
	expect_error(&img, "pointer size 3");

	build_image(&img);
	((uint64_t *)(img.mem + 512))[0] = 0x1000;
	expect_error(&img, "cannot read suite record at 0x1000");

	build_image(&img);
	((struct kt_abi_suite *)(img.mem + 1024))->case_stride = 8;
	expect_error(&img, "stride 8");

	build_image(&img);
	memset(img.mem + 4096, 'x', IMG_SIZE - 4096);
	expect_error(&img, "suite name");
}

static void retries_while_changing(void **state)
{
	struct image img;
	struct ks_error err = { 0 };
	(void)state;

	build_image(&img);
	img.bump_until = 12;
	struct ks_kt_state *st = ks_kt_state_read(read_image, &img, IMG_BASE, &err);
	assert_non_null(st);
	assert_true(img.reads > 12);
	ks_kt_state_free(st);

	build_image(&img);
	((struct kt_abi_state *)img.mem)->seq = 11; /* a writer that never finishes */
	expect_error(&img, "kept changing");
}

/* A kernel stopped between its two updates of seq (at a watchpoint on its phase) is read
 * once, as it is, by the reader for stopped kernels. */
static void reads_a_stopped_kernel_mid_update(void **state)
{
	struct image img;
	struct ks_error err = { 0 };
	(void)state;

	build_image(&img);
	((struct kt_abi_state *)img.mem)->seq = 11;
	((struct kt_abi_state *)img.mem)->phase = KT_PHASE_READY;
	struct ks_kt_state *st = ks_kt_state_read_stopped(read_image, &img, IMG_BASE, &err);
	assert_non_null(st);
	assert_int_equal(st->seq, 11);
	assert_int_equal(st->phase, KT_PHASE_READY);
	assert_string_equal(st->suites[0].cases[0].name, "c");
	ks_kt_state_free(st);

	/* It checks the header all the same. */
	build_image(&img);
	((struct kt_abi_state *)img.mem)->magic ^= 1;
	assert_null(ks_kt_state_read_stopped(read_image, &img, IMG_BASE, &err));
	assert_non_null(strstr(err.msg, "bad magic"));
}

static void names(void **state)
{
	(void)state;
	assert_string_equal(ks_kt_status_name(KT_ST_PASS), "pass");
	assert_string_equal(ks_kt_status_name(KT_ST_FILTERED), "filtered");
	assert_string_equal(ks_kt_status_name(77), "invalid");
	assert_string_equal(ks_kt_phase_name(KT_PHASE_DONE), "done");
	assert_string_equal(ks_kt_phase_name(12), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_a_real_run),
		cmocka_unit_test(follows_a_filter),
		cmocka_unit_test(decodes_an_image),
		cmocka_unit_test(refuses_garbage),
		cmocka_unit_test(retries_while_changing),
		cmocka_unit_test(reads_a_stopped_kernel_mid_update),
		cmocka_unit_test(names),
	};

	return cmocka_run_group_tests_name("ktstate", tests, NULL, NULL);
}
