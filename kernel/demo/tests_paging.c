/* tests_paging.c: kt_ tests of 4-level paging: map, translate, unmap, flags and faults. */
#include <stdint.h>

#include <arch/cpu.h>
#include <arch/layout.h>
#include <arch/paging.h>
#include <arch/trap.h>
#include <kern/errno.h>
#include <kern/palloc.h>
#include <kt/ktest.h>

/* A fresh kernel page: a physical page mapped at a new vmap address. */
struct mapping {
	uint64_t va, pa;
	bool mapped;
};

static void mapping_cleanup(void *arg)
{
	struct mapping *m = arg;

	if (m->mapped)
		paging_unmap(m->va, NULL);
	if (m->pa)
		palloc_free(m->pa);
}

/* Maps a zeroed page with flags; aborts the case on failure. Cleans up after the case. */
static void map_fresh(struct kt_test *t, struct mapping *m, uint64_t flags)
{
	m->va = paging_vmap_reserve(1);
	m->pa = palloc_alloc_zeroed();
	m->mapped = false;
	kt_add_cleanup(t, mapping_cleanup, m);
	KT_ASSERT_NE(t, m->va, 0u);
	KT_ASSERT_NE(t, m->pa, 0u);
	KT_ASSERT_EQ(t, paging_map(m->va, m->pa, flags), 0);
	m->mapped = true;
}

static void free_page_cleanup(void *pa)
{
	palloc_free((uint64_t)pa);
}

static void read_u64(void *p)
{
	(void)*(volatile uint64_t *)p;
}

static void write_u64(void *p)
{
	*(volatile uint64_t *)p = 0x1234;
}

static void call_code(void *p)
{
	((void (*)(void))p)();
}

static void map_write_translate(struct kt_test *t)
{
	struct mapping m;
	uint64_t pa = 0, flags = 0;

	map_fresh(t, &m, PTE_W | PTE_NX);
	volatile uint64_t *v = (volatile uint64_t *)m.va;
	v[0] = 0x0123456789abcdefull;
	v[511] = 0xfeedface;
	const uint64_t *d = phys_to_virt(m.pa);
	KT_EXPECT_EQ(t, d[0], 0x0123456789abcdefull); /* same memory through the direct map */
	KT_EXPECT_EQ(t, d[511], 0xfeedfaceu);
	KT_ASSERT_EQ(t, paging_translate(m.va + 0x10, &pa, &flags), 0);
	KT_EXPECT_EQ(t, pa, m.pa + 0x10);
	KT_EXPECT_TRUE(t, (flags & (PTE_P | PTE_W)) == (PTE_P | PTE_W));
	KT_EXPECT_FALSE(t, flags & PTE_U);
	KT_EXPECT_EQ(t, !!(flags & PTE_NX), cpu_nx_enabled());
}

static void unmap_then_access_faults(struct kt_test *t)
{
	struct mapping m;
	struct trap_catch c;
	uint64_t pa = 0;

	map_fresh(t, &m, PTE_W);
	write_u64((void *)m.va);
	KT_ASSERT_EQ(t, paging_unmap(m.va, &pa), 0);
	m.mapped = false;
	KT_EXPECT_EQ(t, pa, m.pa);
	KT_EXPECT_EQ(t, paging_translate(m.va, NULL, NULL), -ENOENT);
	KT_ASSERT_TRUE_MSG(t, trap_run_catching(read_u64, (void *)(m.va + 8), &c),
			   "reading an unmapped page did not fault");
	KT_EXPECT_EQ(t, c.vector, VEC_PF);
	KT_EXPECT_EQ(t, c.cr2, m.va + 8);
	KT_EXPECT_EQ(t, c.error & (PF_PRESENT | PF_WRITE | PF_USER), 0u);
	KT_ASSERT_TRUE(t, trap_run_catching(write_u64, (void *)m.va, &c));
	KT_EXPECT_EQ(t, c.error & (PF_PRESENT | PF_WRITE), (uint64_t)PF_WRITE);
}

static void readonly_write_faults(struct kt_test *t)
{
	struct mapping m;
	struct trap_catch c;

	map_fresh(t, &m, 0);
	KT_EXPECT_FALSE(t, trap_run_catching(read_u64, (void *)m.va, &c));
	/* CR0.WP is set: ring 0 obeys read-only pages too. */
	KT_ASSERT_TRUE(t, trap_run_catching(write_u64, (void *)m.va, &c));
	KT_EXPECT_EQ(t, c.vector, VEC_PF);
	KT_EXPECT_EQ(t, c.cr2, m.va);
	KT_EXPECT_EQ(t, c.error & (PF_PRESENT | PF_WRITE | PF_USER), (uint64_t)(PF_PRESENT | PF_WRITE));
}

static void nx_page_faults_on_fetch(struct kt_test *t)
{
	struct mapping nx, x;
	struct trap_catch c;

	if (!cpu_nx_enabled())
		kt_skip(t, "the CPU has no NX bit");
	map_fresh(t, &nx, PTE_W | PTE_NX);
	*(volatile uint8_t *)nx.va = 0xc3; /* ret */
	KT_ASSERT_TRUE(t, trap_run_catching(call_code, (void *)nx.va, &c));
	KT_EXPECT_EQ(t, c.vector, VEC_PF);
	KT_EXPECT_EQ(t, c.rip, nx.va);
	KT_EXPECT_EQ(t, c.cr2, nx.va);
	KT_EXPECT_EQ(t, c.error & (PF_PRESENT | PF_INSN), (uint64_t)(PF_PRESENT | PF_INSN));
	/* The same code in an executable page runs and returns. */
	map_fresh(t, &x, PTE_W);
	*(volatile uint8_t *)x.va = 0xc3;
	KT_EXPECT_FALSE(t, trap_run_catching(call_code, (void *)x.va, &c));
}

static void bad_requests_rejected(struct kt_test *t)
{
	struct mapping m;
	uint64_t other = palloc_alloc();

	KT_ASSERT_NE(t, other, 0u);
	kt_add_cleanup(t, free_page_cleanup, (void *)other);
	map_fresh(t, &m, PTE_W);
	KT_EXPECT_EQ(t, paging_map(m.va, other, PTE_W), -EEXIST);
	KT_EXPECT_EQ(t, paging_map(m.va + 1, other, PTE_W), -EINVAL);
	KT_EXPECT_EQ(t, paging_map(0x0000900000000000ull, other, PTE_W), -EINVAL); /* hole */
	KT_EXPECT_EQ(t, paging_map(VMAP_BASE + VMAP_SIZE - PAGE_SIZE, other, PTE_U), -EINVAL);
	/* Inside the direct map's 2 MiB pages. */
	KT_EXPECT_EQ(t, paging_map(DIRECT_MAP_BASE + 0x200000, other, PTE_W), -EEXIST);
	KT_EXPECT_EQ(t, paging_unmap(m.va + PAGE_SIZE, NULL), -ENOENT); /* the guard page */
	KT_EXPECT_EQ(t, paging_translate(0x0000900000000000ull, NULL, NULL), -ENOENT);
}

extern char _text_start[];

static void translate_large_pages(struct kt_test *t)
{
	uint64_t pa = 0, flags = 0;

	/* The image: 2 MiB pages at KERNEL_VMA + physical. */
	KT_ASSERT_EQ(t, paging_translate((uint64_t)_text_start, &pa, &flags), 0);
	KT_EXPECT_EQ(t, pa, (uint64_t)_text_start - KERNEL_VMA);
	KT_EXPECT_TRUE(t, flags & PTE_PS);
	KT_ASSERT_EQ(t, paging_translate(DIRECT_MAP_BASE + 0x2345678, &pa, &flags), 0);
	KT_EXPECT_EQ(t, pa, 0x2345678u);
	KT_EXPECT_TRUE(t, flags & PTE_PS);
	/* The APIC's GiB is mapped uncached. */
	KT_ASSERT_EQ(t, paging_translate(DIRECT_MAP_BASE + 0xfee00000, &pa, &flags), 0);
	KT_EXPECT_TRUE(t, flags & PTE_PCD);
}

static void null_page_unmapped(struct kt_test *t)
{
	struct trap_catch c;

	KT_EXPECT_EQ(t, paging_translate(0, NULL, NULL), -ENOENT);
	KT_ASSERT_TRUE_MSG(t, trap_run_catching(read_u64, NULL, &c), "NULL was readable");
	KT_EXPECT_EQ(t, c.vector, VEC_PF);
	KT_EXPECT_EQ(t, c.cr2, 0u);
}

static void user_flag_set_on_user_pages(struct kt_test *t)
{
	const uint64_t va = 0x40000000; /* clear of the user task's code and stacks */
	uint64_t pa = palloc_alloc_zeroed(), flags = 0, got = 0;

	KT_ASSERT_NE(t, pa, 0u);
	kt_add_cleanup(t, free_page_cleanup, (void *)pa);
	KT_ASSERT_EQ(t, paging_map(va, pa, PTE_U | PTE_W), 0);
	KT_EXPECT_EQ(t, paging_translate(va, &got, &flags), 0);
	KT_EXPECT_EQ(t, got, pa);
	KT_EXPECT_TRUE(t, flags & PTE_U);
	KT_EXPECT_EQ(t, paging_unmap(va, NULL), 0);
}

static void tables_shared_within_2m(struct kt_test *t)
{
	uint64_t va = paging_vmap_reserve(512 + 511); /* contains a whole aligned 2 MiB */
	uint64_t base = (va + 0x1fffff) & ~0x1fffffull;
	uint64_t pa = palloc_alloc();

	KT_ASSERT_NE(t, va, 0u);
	KT_ASSERT_NE(t, pa, 0u);
	kt_add_cleanup(t, free_page_cleanup, (void *)pa);
	KT_ASSERT_EQ(t, paging_map(base, pa, PTE_W), 0);
	uint64_t tables = paging_tables_allocated();
	/* Same page table: no new tables for the neighbour or the last page of the 2 MiB. */
	KT_EXPECT_EQ(t, paging_map(base + PAGE_SIZE, pa, PTE_W), 0);
	KT_EXPECT_EQ(t, paging_map(base + 0x1ff000, pa, PTE_W), 0);
	KT_EXPECT_EQ(t, paging_tables_allocated(), tables);
	/* Two names for one page: a write through one shows through the other. */
	*(volatile uint64_t *)base = 77;
	KT_EXPECT_EQ(t, *(volatile uint64_t *)(base + 0x1ff000), 77u);
	KT_EXPECT_EQ(t, paging_unmap(base, NULL), 0);
	KT_EXPECT_EQ(t, paging_unmap(base + PAGE_SIZE, NULL), 0);
	KT_EXPECT_EQ(t, paging_unmap(base + 0x1ff000, NULL), 0);
}

static struct kt_case paging_cases[] = {
	KT_CASE(map_write_translate),
	KT_CASE(unmap_then_access_faults),
	KT_CASE(readonly_write_faults),
	KT_CASE(nx_page_faults_on_fetch),
	KT_CASE(bad_requests_rejected),
	KT_CASE(translate_large_pages),
	KT_CASE(null_page_unmapped),
	KT_CASE(user_flag_set_on_user_pages),
	KT_CASE(tables_shared_within_2m),
	{ .run = NULL },
};

static struct kt_suite paging_suite = { .name = "paging", .cases = paging_cases };
KT_SUITE(paging_suite);
