/* tests_palloc.c: kt_ tests of the physical page allocator. */
#include <stdint.h>

#include <arch/boot.h>
#include <arch/layout.h>
#include <arch/paging.h>
#include <kern/errno.h>
#include <kern/palloc.h>
#include <kern/string.h>
#include <kt/ktest.h>

#define NPAGES 64

static bool in_boot_ram(uint64_t pa)
{
	const struct boot_info *bi = boot_info();

	for (unsigned int i = 0; i < bi->nmem; i++)
		if (bi->mem[i].type == BOOT_MEM_RAM && pa >= bi->mem[i].addr &&
		    pa + PALLOC_PAGE <= bi->mem[i].addr + bi->mem[i].size)
			return true;
	return false;
}

static void free_page_cleanup(void *pa)
{
	palloc_free((uint64_t)pa);
}

static void alloc_is_aligned_ram(struct kt_test *t)
{
	uint64_t pa = palloc_alloc();

	KT_ASSERT_NE(t, pa, 0u);
	kt_add_cleanup(t, free_page_cleanup, (void *)pa);
	KT_EXPECT_EQ(t, pa % PALLOC_PAGE, 0u);
	KT_EXPECT_TRUE_MSG(t, in_boot_ram(pa), "pa 0x%lx is not RAM in the PVH memory map", pa);
	KT_EXPECT_GE(t, pa, 0x100000u);
	KT_EXPECT_FALSE(t, palloc_is_free(pa));
}

static void alloc_distinct_pages(struct kt_test *t)
{
	uint64_t pages[NPAGES];
	size_t before = palloc_free_pages();
	unsigned int dup = 0, bad = 0;

	for (int i = 0; i < NPAGES; i++) {
		pages[i] = palloc_alloc();
		KT_ASSERT_NE(t, pages[i], 0u);
		*(volatile uint64_t *)phys_to_virt(pages[i]) = pages[i] ^ 0x5a5a;
	}
	for (int i = 0; i < NPAGES; i++) {
		for (int j = i + 1; j < NPAGES; j++)
			dup += pages[i] == pages[j];
		bad += *(volatile uint64_t *)phys_to_virt(pages[i]) != (pages[i] ^ 0x5a5a);
	}
	KT_EXPECT_EQ(t, dup, 0u);
	KT_EXPECT_EQ_MSG(t, bad, 0u, "pages whose tag was overwritten by another page");
	KT_EXPECT_EQ(t, palloc_free_pages(), before - NPAGES);
	for (int i = 0; i < NPAGES; i++)
		KT_EXPECT_EQ(t, palloc_free(pages[i]), 0);
	KT_EXPECT_EQ(t, palloc_free_pages(), before);
}

static void free_count_tracks(struct kt_test *t)
{
	size_t before = palloc_free_pages();
	uint64_t pa = palloc_alloc();

	KT_ASSERT_NE(t, pa, 0u);
	KT_EXPECT_EQ(t, palloc_free_pages(), before - 1);
	KT_EXPECT_EQ(t, palloc_free(pa), 0);
	KT_EXPECT_EQ(t, palloc_free_pages(), before);
	KT_EXPECT_TRUE(t, palloc_is_free(pa));
	KT_EXPECT_LE(t, palloc_free_pages(), palloc_total_pages());
}

static void bad_frees_rejected(struct kt_test *t)
{
	uint64_t pa = palloc_alloc();
	size_t before;

	KT_ASSERT_NE(t, pa, 0u);
	KT_EXPECT_EQ(t, palloc_free(pa + 8), -EINVAL); /* unaligned */
	KT_EXPECT_EQ(t, palloc_free(pa), 0);
	before = palloc_free_pages();
	KT_EXPECT_EQ(t, palloc_free(pa), -EINVAL);     /* double free */
	KT_EXPECT_EQ(t, palloc_free(boot_kernel_phys_start()), -EINVAL);
	KT_EXPECT_EQ(t, palloc_free(0), -EINVAL);
	KT_EXPECT_EQ(t, palloc_free(0x4000000000ull), -EINVAL); /* far beyond RAM */
	KT_EXPECT_EQ(t, palloc_free_pages(), before);
}

/* Low memory, the image and the bitmap are never handed out. */
static bool reserved(uint64_t pa)
{
	struct palloc_range bm = palloc_bitmap_range();

	return pa < 0x100000 || (pa >= boot_kernel_phys_start() && pa < boot_kernel_phys_end()) ||
	       (pa >= bm.base && pa < bm.base + bm.size);
}

static void reserved_never_handed_out(struct kt_test *t)
{
	uint64_t pages[256];
	unsigned int hits = 0;

	KT_EXPECT_FALSE(t, palloc_is_free(TRAMP_BASE));
	KT_EXPECT_FALSE(t, palloc_is_free(boot_kernel_phys_start()));
	KT_EXPECT_FALSE(t, palloc_is_free(boot_kernel_phys_end() - PALLOC_PAGE));
	KT_EXPECT_FALSE(t, palloc_is_free(palloc_bitmap_range().base));
	for (int i = 0; i < 256; i++) {
		pages[i] = palloc_alloc();
		hits += pages[i] && reserved(pages[i]);
	}
	for (int i = 0; i < 256; i++)
		if (pages[i])
			palloc_free(pages[i]);
	KT_EXPECT_EQ(t, hits, 0u);
}

static void contiguous_alloc(struct kt_test *t)
{
	size_t before = palloc_free_pages();
	uint64_t pa = palloc_alloc_contig(8);
	unsigned int busy = 0;

	KT_ASSERT_NE(t, pa, 0u);
	for (int i = 0; i < 8; i++)
		busy += !palloc_is_free(pa + i * PALLOC_PAGE);
	KT_EXPECT_EQ(t, busy, 8u);
	KT_EXPECT_EQ(t, palloc_free_pages(), before - 8);
	KT_EXPECT_EQ(t, palloc_free_contig(pa, 8), 0);
	KT_EXPECT_EQ(t, palloc_free_pages(), before);
	/* More than there is: fails and changes nothing. */
	KT_EXPECT_EQ(t, palloc_alloc_contig(palloc_total_pages() + 1), 0u);
	KT_EXPECT_EQ(t, palloc_free_pages(), before);
}

static void zeroed_alloc(struct kt_test *t)
{
	uint64_t pa = palloc_alloc();

	KT_ASSERT_NE(t, pa, 0u);
	memset(phys_to_virt(pa), 0xcc, PALLOC_PAGE);
	palloc_free(pa);
	/* The allocator resumes where it last found a page: likely the same dirty one. */
	uint64_t z = palloc_alloc_zeroed();
	KT_ASSERT_NE(t, z, 0u);
	kt_add_cleanup(t, free_page_cleanup, (void *)z);
	const unsigned char *p = phys_to_virt(z);
	unsigned int nonzero = 0;
	for (int i = 0; i < PALLOC_PAGE; i++)
		nonzero += p[i] != 0;
	KT_EXPECT_EQ(t, nonzero, 0u);
}

static struct kt_case palloc_cases[] = {
	KT_CASE(alloc_is_aligned_ram),
	KT_CASE(alloc_distinct_pages),
	KT_CASE(free_count_tracks),
	KT_CASE(bad_frees_rejected),
	KT_CASE(reserved_never_handed_out),
	KT_CASE(contiguous_alloc),
	KT_CASE(zeroed_alloc),
	{ .run = NULL },
};

static struct kt_suite palloc_suite = { .name = "palloc", .cases = palloc_cases };
KT_SUITE(palloc_suite);
