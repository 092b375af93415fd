/* test_vtop.c: page-table walks over synthetic x86-64 tables built in a memfd "guest". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/mem.h>
#include <kscope/vtop.h>

#define RAM_SIZE (16u << 20)
#define P   0x001ull
#define W   0x002ull
#define U   0x004ull
#define PWT 0x008ull
#define PCD 0x010ull
#define A   0x020ull
#define D   0x040ull
#define PS  0x080ull
#define G   0x100ull
#define NX  (1ull << 63)
#define ADDR 0x000ffffffffff000ull

struct guest {
	int fd;
	uint8_t *ram;          /* the test's own view of guest RAM */
	struct ks_ram_file file;
	struct ks_ram_region region;
	struct ks_ram_layout layout;
	struct ks_mem *m;
	ks_gpa_t next_table;   /* bump allocator for tables, from 1 MiB */
	ks_gpa_t root;
	bool la57;
};

static uint64_t *at(struct guest *g, ks_gpa_t gpa)
{
	return (uint64_t *)(g->ram + gpa);
}

static ks_gpa_t new_table(struct guest *g)
{
	ks_gpa_t t = g->next_table;

	g->next_table += 4096;
	assert_true(g->next_table <= 0x200000);
	memset(g->ram + t, 0, 4096);
	return t;
}

static unsigned idx(ks_gva_t va, int level)
{
	return (va >> (12 + 9 * (level - 1))) & 511;
}

/* The entry for va at level, through tables that exist; NULL where the walk cannot go. */
static uint64_t *entry(struct guest *g, ks_gva_t va, int level)
{
	ks_gpa_t table = g->root;

	for (int l = g->la57 ? 5 : 4; l > level; l--) {
		uint64_t e = *at(g, table + idx(va, l) * 8);
		if (!(e & P) || (l <= 3 && (e & PS)))
			return NULL;
		table = e & ADDR;
	}
	return at(g, table + idx(va, level) * 8);
}

/* Maps va to pa with the leaf at leaf_level (1: 4 KiB, 2: 2 MiB, 3: 1 GiB). New tables on
 * the way get mid flags; existing ones are left as they are. */
static void map(struct guest *g, ks_gva_t va, ks_gpa_t pa, int leaf_level, uint64_t leaf,
		uint64_t mid)
{
	ks_gpa_t table = g->root;

	for (int l = g->la57 ? 5 : 4; l > leaf_level; l--) {
		uint64_t *e = at(g, table + idx(va, l) * 8);
		if (!(*e & P))
			*e = new_table(g) | P | mid;
		table = *e & ADDR;
	}
	*at(g, table + idx(va, leaf_level) * 8) = pa | P | leaf | (leaf_level > 1 ? PS : 0);
}

static struct guest *guest_new(bool la57)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct ks_error err = { 0 };

	g->fd = memfd_create("kscope-test-vtop", MFD_CLOEXEC);
	assert_true(g->fd >= 0);
	assert_int_equal(ftruncate(g->fd, RAM_SIZE), 0);
	g->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	assert_true(g->ram != MAP_FAILED);
	g->file = (struct ks_ram_file){ .path = "ram", .size = RAM_SIZE };
	g->region = (struct ks_ram_region){ .file = 0, .gpa = 0, .size = RAM_SIZE };
	g->layout = (struct ks_ram_layout){ .files = &g->file, .nfiles = 1,
					    .regions = &g->region, .nregions = 1 };
	g->m = ks_mem_new_mapped(&g->layout, &g->fd, &err);
	if (!g->m)
		fail_msg("%s", err.msg);
	g->next_table = 0x100000;
	g->la57 = la57;
	g->root = new_table(g);
	return g;
}

static void guest_free(struct guest *g)
{
	ks_mem_free(g->m);
	munmap(g->ram, RAM_SIZE);
	close(g->fd);
	free(g);
}

static int setup4(void **state)
{
	*state = guest_new(false);
	return 0;
}

static int setup5(void **state)
{
	*state = guest_new(true);
	return 0;
}

static int teardown(void **state)
{
	guest_free(*state);
	return 0;
}

/* ---- walks ---- */

static void four_level_4k(void **state)
{
	struct guest *g = *state;
	struct ks_vtop_result r;
	ks_gva_t va = 0xffffc00000123000ull;
	static const enum ks_vtop_level levels[] = { KS_VTOP_PML4, KS_VTOP_PDPT, KS_VTOP_PD,
						     KS_VTOP_PT };

	map(g, va, 0x345000, 1, W | A | D | G, W);
	/* PCID bits in CR3 are not part of the table address. */
	assert_int_equal(ks_vtop_walk(g->m, g->root | 0x5, false, va + 0xabc, &r), 0);
	assert_int_equal(r.fault, KS_VTOP_OK);
	assert_true(r.gpa == 0x345abc);
	assert_true(r.page_size == 4096);
	assert_int_equal(r.flags, KS_VTOP_PRESENT | KS_VTOP_WRITABLE | KS_VTOP_ACCESSED |
					  KS_VTOP_DIRTY | KS_VTOP_GLOBAL);
	assert_int_equal(r.nentries, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.entries[i].level, levels[i]);
		assert_int_equal(r.entries[i].index, idx(va, 4 - i));
		assert_true(r.entries[i].value == *at(g, r.entries[i].addr));
		assert_true(r.entries[i].flags & KS_VTOP_PRESENT);
	}
	assert_true(r.entries[0].addr == g->root + idx(va, 4) * 8);
	/* D and G mean nothing above the leaf; bit 7 of a PTE is PAT, not a large page. */
	*entry(g, va, 2) |= D | G;
	*entry(g, va, 1) |= PS;
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, va, &r), 0);
	assert_false(r.entries[2].flags & (KS_VTOP_DIRTY | KS_VTOP_GLOBAL));
	assert_false(r.flags & KS_VTOP_LARGE);
	assert_true(r.page_size == 4096);
	assert_string_equal(ks_vtop_level_name(r.entries[0].level), "PML4");
	assert_string_equal(ks_vtop_level_name(KS_VTOP_PT), "PT");
}

static void large_pages(void **state)
{
	struct guest *g = *state;
	struct ks_vtop_result r;

	map(g, 0xffff800000200000ull, 0x400000, 2, W | A, W);
	map(g, 0xffff800040000000ull, 0x40000000, 3, W | NX, W);
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0xffff8000002fedcbull, &r), 0);
	assert_true(r.gpa == 0x4fedcb);
	assert_true(r.page_size == 2ull << 20);
	assert_int_equal(r.nentries, 3);
	assert_int_equal(r.flags, KS_VTOP_PRESENT | KS_VTOP_WRITABLE | KS_VTOP_ACCESSED |
					  KS_VTOP_LARGE);
	/* A leaf outside RAM (MMIO, say) still translates. */
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0xffff80005abcdef0ull, &r), 0);
	assert_true(r.gpa == 0x5abcdef0);
	assert_true(r.page_size == 1ull << 30);
	assert_int_equal(r.nentries, 2);
	assert_true(r.flags & KS_VTOP_NX);
	assert_true(r.entries[1].flags & KS_VTOP_LARGE);
	/* The PAT bit (12) of a large page is not part of its address. */
	*entry(g, 0xffff800000200000ull, 2) |= 1ull << 12;
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0xffff800000200010ull, &r), 0);
	assert_true(r.gpa == 0x400010);
}

static void five_level(void **state)
{
	struct guest *g = *state;
	struct ks_vtop_result r;
	ks_gva_t va = 0x00ff123456789000ull; /* needs 57 bits */
	ks_gva_t hi = 0xff80000000200000ull; /* the upper half with LA57 */

	map(g, va, 0x222000, 1, W | U, W | U);
	map(g, hi, 0x600000, 2, W, W);
	assert_int_equal(ks_vtop_walk(g->m, g->root, true, va + 0x10, &r), 0);
	assert_true(r.gpa == 0x222010);
	assert_int_equal(r.nentries, 5);
	assert_int_equal(r.entries[0].level, KS_VTOP_PML5);
	assert_int_equal(r.entries[0].index, 0xff);
	assert_string_equal(ks_vtop_level_name(KS_VTOP_PML5), "PML5");
	assert_int_equal(r.flags, KS_VTOP_PRESENT | KS_VTOP_WRITABLE | KS_VTOP_USER);
	assert_int_equal(ks_vtop_walk(g->m, g->root, true, hi + 0x1234, &r), 0);
	assert_true(r.gpa == 0x601234);
	assert_int_equal(r.nentries, 4);
	/* The same address is not canonical with 4 levels. */
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, va, &r), -EFAULT);
	assert_int_equal(r.fault, KS_VTOP_NONCANONICAL);
	assert_int_equal(r.fault_level, KS_VTOP_PML4);
	assert_int_equal(r.nentries, 0);
}

/* A cleared entry at each level stops the walk there, and says so. */
static void not_present_at_each_level(void **state)
{
	struct guest *g = *state;
	ks_gva_t va = 0x00007f0000401000ull;

	for (int level = g->la57 ? 5 : 4; level >= 1; level--) {
		struct ks_vtop_result r;

		map(g, va, 0x300000, 1, W, W);
		assert_int_equal(ks_vtop_walk(g->m, g->root, g->la57, va, &r), 0);
		uint64_t *e = entry(g, va, level);
		uint64_t saved = *e;
		*e &= ~P;
		assert_int_equal(ks_vtop_walk(g->m, g->root, g->la57, va, &r), -EFAULT);
		assert_int_equal(r.fault, KS_VTOP_NOT_PRESENT);
		assert_int_equal(r.fault_level, level);
		assert_int_equal(r.nentries, (g->la57 ? 5 : 4) - level + 1);
		assert_int_equal(r.entries[r.nentries - 1].flags, 0);
		assert_true(r.entries[r.nentries - 1].value == (saved & ~P));
		assert_string_equal(ks_vtop_fault_name(r.fault), "not present");
		*e = saved;
	}
}

static void not_present_at_each_level_la57(void **state)
{
	not_present_at_each_level(state);
}

/* Writable and user need every level; NX at any level forbids execution. */
static void flags_combine_across_levels(void **state)
{
	static const struct {
		int level;         /* where the bit changes */
		uint64_t clear, set;
		unsigned want;     /* effective flags */
	} cases[] = {
		{ 0, 0, 0, KS_VTOP_WRITABLE | KS_VTOP_USER },
		{ 4, W, 0, KS_VTOP_USER },
		{ 3, U, 0, KS_VTOP_WRITABLE },
		{ 2, W | U, 0, 0 },
		{ 1, W, 0, KS_VTOP_USER },
		{ 4, 0, NX, KS_VTOP_WRITABLE | KS_VTOP_USER | KS_VTOP_NX },
		{ 2, 0, NX, KS_VTOP_WRITABLE | KS_VTOP_USER | KS_VTOP_NX },
		{ 1, 0, NX | PWT | PCD, KS_VTOP_WRITABLE | KS_VTOP_USER | KS_VTOP_NX |
					    KS_VTOP_PWT | KS_VTOP_PCD },
		{ 3, 0, A | PCD, KS_VTOP_WRITABLE | KS_VTOP_USER }, /* A, PCD of the leaf only */
	};
	struct guest *g = *state;
	ks_gva_t va = 0x0000000000400000ull;

	map(g, va, 0x500000, 1, W | U, W | U);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ks_vtop_result r;
		uint64_t *e = cases[i].level ? entry(g, va, cases[i].level) : NULL;
		uint64_t saved = e ? *e : 0;

		if (e)
			*e = (*e & ~cases[i].clear) | cases[i].set;
		assert_int_equal(ks_vtop_walk(g->m, g->root, false, va, &r), 0);
		if (r.flags != (KS_VTOP_PRESENT | cases[i].want))
			fail_msg("case %zu: flags 0x%x, want 0x%x", i, r.flags,
				 KS_VTOP_PRESENT | cases[i].want);
		if (e)
			*e = saved;
	}
}

static void reserved_bits(void **state)
{
	struct guest *g = *state;
	struct ks_vtop_result r;

	/* PS in a PML4E. */
	map(g, 0x0000008000000000ull, 0x700000, 1, W, W);
	*entry(g, 0x0000008000000000ull, 4) |= PS;
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0x0000008000000000ull, &r), -EFAULT);
	assert_int_equal(r.fault, KS_VTOP_RESERVED);
	assert_int_equal(r.fault_level, KS_VTOP_PML4);
	/* A 2 MiB page whose address is not 2 MiB aligned; and a 1 GiB one. */
	map(g, 0x0000000000200000ull, 0x400000 | 0x2000, 2, W, W);
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0x200000, &r), -EFAULT);
	assert_int_equal(r.fault, KS_VTOP_RESERVED);
	assert_int_equal(r.fault_level, KS_VTOP_PD);
	map(g, 0x0000004000000000ull, 0x40000000 | 0x200000, 3, W, W);
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0x0000004000000000ull, &r), -EFAULT);
	assert_int_equal(r.fault_level, KS_VTOP_PDPT);
	assert_string_equal(ks_vtop_fault_name(r.fault), "reserved bits set");
}

static void noncanonical_addresses(void **state)
{
	static const struct { ks_gva_t va; bool la57; } cases[] = {
		{ 0x0000800000000000ull, false }, { 0xffff7fffffffffffull, false },
		{ 0x8000000000000000ull, false }, { 0x0100000000000000ull, true },
		{ 0xfeffffffffffffffull, true },
	};
	struct guest *g = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ks_vtop_result r;

		assert_int_equal(ks_vtop_walk(g->m, g->root, cases[i].la57, cases[i].va, &r),
				 -EFAULT);
		assert_int_equal(r.fault, KS_VTOP_NONCANONICAL);
		assert_int_equal(r.fault_level, cases[i].la57 ? KS_VTOP_PML5 : KS_VTOP_PML4);
		assert_true(r.gva == cases[i].va);
	}
}

/* A table pointer outside RAM stops the walk at the level that would read it. */
static void table_outside_ram(void **state)
{
	struct guest *g = *state;
	struct ks_vtop_result r;

	map(g, 0x1000, 0x300000, 1, W, W);
	*entry(g, 0x1000, 3) = 0x80000000ull | P | W;
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0x1000, &r), -EFAULT);
	assert_int_equal(r.fault, KS_VTOP_BAD_TABLE);
	assert_int_equal(r.fault_level, KS_VTOP_PD);
	assert_int_equal(r.nentries, 2);
	assert_int_equal(ks_vtop_walk(g->m, 0x7fff000, false, 0x1000, &r), -EFAULT);
	assert_int_equal(r.fault_level, KS_VTOP_PML4);
}

/* The same walk through a memory that only has a reader (the gdbstub's way). */
static int ram_read(void *ctx, ks_gpa_t gpa, void *buf, size_t len)
{
	struct guest *g = ctx;

	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return -EFAULT;
	memcpy(buf, g->ram + gpa, len);
	return 0;
}

static void walk_through_reader(void **state)
{
	struct guest *g = *state;
	struct ks_mem_reader_ops ops = { .read = ram_read };
	struct ks_mem *m = ks_mem_new_reader(&ops, g, NULL);
	struct ks_vtop_result r1, r2;

	map(g, 0xffffffff80001000ull, 0x101000, 1, W | G, W);
	assert_int_equal(ks_vtop_walk(m, g->root, false, 0xffffffff80001234ull, &r1), 0);
	assert_int_equal(ks_vtop_walk(g->m, g->root, false, 0xffffffff80001234ull, &r2), 0);
	assert_memory_equal(&r1, &r2, sizeof(r1));
	ks_mem_free(m);
}

/* ---- the translator ---- */

static void reads_and_writes_span_pages(void **state)
{
	struct guest *g = *state;
	struct ks_vtop *t = ks_vtop_new(g->m, NULL);
	struct ks_error err = { 0 };
	ks_gva_t va = 0xffffc00000010000ull;
	uint8_t in[64], out[64];

	/* Two virtually adjacent pages, physically apart; the third page is not mapped. */
	map(g, va, 0x304000, 1, W, W);
	map(g, va + 0x1000, 0x301000, 1, W, W);
	ks_vtop_set_cr3(t, g->root, false);
	for (int i = 0; i < 64; i++)
		in[i] = (uint8_t)(0x40 + i);
	assert_int_equal(ks_vtop_write(t, va + 0xfe0, in, 64, &err), 0);
	assert_memory_equal(g->ram + 0x304fe0, in, 32);
	assert_memory_equal(g->ram + 0x301000, in + 32, 32);
	assert_int_equal(ks_vtop_read(t, va + 0xfe0, out, 64, &err), 0);
	assert_memory_equal(out, in, 64);
	assert_int_equal(ks_vtop_read_gva(t, va + 0xfe0, out, 64), 0);

	/* Into the unmapped page: fails whole; nothing copied, nothing written. */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(ks_vtop_read(t, va + 0x1fe0, out, 64, &err), -EFAULT);
	assert_non_null(strstr(err.msg, "0xffffc00000012000"));
	assert_non_null(strstr(err.msg, "not present at PT"));
	for (int i = 0; i < 64; i++)
		assert_int_equal(out[i], 0xaa);
	memset(g->ram + 0x301fe0, 0, 32);
	assert_int_equal(ks_vtop_write(t, va + 0x1fe0, in, 64, &err), -EFAULT);
	for (int i = 0; i < 32; i++)
		assert_int_equal(g->ram[0x301fe0 + i], 0);
	/* A page mapped to a physical address outside RAM: the same. */
	map(g, va + 0x2000, 0x4000000, 1, W, W);
	assert_int_equal(ks_vtop_read(t, va + 0x1fe0, out, 64, &err), -EFAULT);
	assert_non_null(strstr(err.msg, "0x4000000 is not RAM"));
	assert_int_equal(ks_vtop_read(t, va, out, 0, &err), 0);
	ks_vtop_free(t);
}

static void translator_needs_cr3(void **state)
{
	struct guest *g = *state;
	struct ks_vtop *t = ks_vtop_new(g->m, NULL);
	struct ks_error err = { 0 };
	ks_gpa_t gpa;
	char c;

	assert_int_equal(ks_vtop_translate(t, 0x1000, &gpa, NULL), -EINVAL);
	assert_int_equal(ks_vtop_read(t, 0x1000, &c, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "CR3"));
	ks_vtop_free(t);
	ks_vtop_free(NULL);
}

static void cache_on_off(void **state)
{
	struct guest *g = *state;
	struct ks_vtop *t = ks_vtop_new(g->m, NULL);
	ks_gva_t va = 0xffffc00000400000ull;
	ks_gpa_t gpa = 0;
	unsigned flags = 0;

	map(g, va, 0x310000, 1, W, W);
	ks_vtop_set_cr3(t, g->root, false);
	/* Off: every translation walks, so a change shows at once. */
	assert_int_equal(ks_vtop_translate(t, va + 8, &gpa, &flags), 0);
	assert_true(gpa == 0x310008);
	*entry(g, va, 1) = 0x311000 | P;
	assert_int_equal(ks_vtop_translate(t, va + 8, &gpa, &flags), 0);
	assert_true(gpa == 0x311008);
	assert_int_equal(flags, KS_VTOP_PRESENT);

	/* On: the first translation is kept, whatever the tables say later. */
	ks_vtop_cache(t, true);
	assert_int_equal(ks_vtop_translate(t, va + 8, &gpa, NULL), 0);
	*entry(g, va, 1) = 0x312000 | P | W;
	assert_int_equal(ks_vtop_translate(t, va + 0x10, &gpa, &flags), 0);
	assert_true(gpa == 0x311010);
	assert_int_equal(flags, KS_VTOP_PRESENT);
	/* Setting the same CR3 keeps the cache; turning it off empties it. */
	ks_vtop_set_cr3(t, g->root, false);
	assert_int_equal(ks_vtop_translate(t, va, &gpa, NULL), 0);
	assert_true(gpa == 0x311000);
	ks_vtop_cache(t, false);
	ks_vtop_cache(t, true);
	assert_int_equal(ks_vtop_translate(t, va, &gpa, &flags), 0);
	assert_true(gpa == 0x312000);
	assert_int_equal(flags, KS_VTOP_PRESENT | KS_VTOP_WRITABLE);

	/* Another CR3 empties it: the new walk sees the leaf as it is now. */
	ks_gpa_t root2 = new_table(g);
	memcpy(g->ram + root2, g->ram + g->root, 4096);
	*entry(g, va, 1) = 0x313000 | P;
	ks_vtop_set_cr3(t, root2, false);
	assert_int_equal(ks_vtop_translate(t, va, &gpa, NULL), 0);
	assert_true(gpa == 0x313000);

	/* Failures are not cached: a page mapped later translates. */
	assert_int_equal(ks_vtop_translate(t, va + 0x1000, &gpa, NULL), -EFAULT);
	*entry(g, va + 0x1000, 1) = 0x314000 | P;
	assert_int_equal(ks_vtop_translate(t, va + 0x1000, &gpa, NULL), 0);
	assert_true(gpa == 0x314000);
	ks_vtop_free(t);
}

/* ---- pagemap ---- */

static void pagemap_coalesces(void **state)
{
	struct guest *g = *state;
	struct ks_error err = { 0 };
	const unsigned PWU = KS_VTOP_PRESENT | KS_VTOP_WRITABLE | KS_VTOP_USER;
	static const struct ks_vtop_range want_tmpl[] = {
		{ 0x400000, 0x200000, 0x4000, 0x1000, 0 },  /* 4 pages, A/D differ */
		{ 0x404000, 0x206000, 0x1000, 0x1000, 4 },  /* physically apart */
		{ 0x405000, 0x207000, 0x1000, 0x1000, 1 },  /* flags differ */
		{ 0xffff800000000000ull, 0, 0x400000, 0x200000, 2 },
		{ 0xffff800000400000ull, 0x400000, 0x1000, 0x1000, 3 }, /* page size differs */
		{ 0xffffffffc0000000ull, 0x40000000, 0x40000000, 0x40000000, 2 },
	};
	unsigned flag_sets[] = { PWU | KS_VTOP_ACCESSED | KS_VTOP_DIRTY, PWU | KS_VTOP_NX,
				 KS_VTOP_PRESENT | KS_VTOP_WRITABLE | KS_VTOP_LARGE,
				 KS_VTOP_PRESENT | KS_VTOP_WRITABLE, PWU };

	for (int i = 0; i < 4; i++)
		map(g, 0x400000 + i * 0x1000, 0x200000 + i * 0x1000, 1,
		    W | U | (i == 1 ? A : 0) | (i == 2 ? D : 0), W | U);
	map(g, 0x404000, 0x206000, 1, W | U, W | U);
	map(g, 0x405000, 0x207000, 1, W | U | NX, W | U);
	map(g, 0xffff800000000000ull, 0, 2, W, W);
	map(g, 0xffff800000200000ull, 0x200000, 2, W, W);
	map(g, 0xffff800000400000ull, 0x400000, 1, W, W);
	map(g, 0xffffffffc0000000ull, 0x40000000, 3, W, W);
	/* Skipped and counted: a reserved PS in a PML4E, a PDPT outside RAM. */
	*at(g, g->root + 5 * 8) = 0x600000 | P | PS;
	*at(g, g->root + 6 * 8) = 0x80000000ull | P;

	struct ks_vtop_iter *it = ks_vtop_iter_new(g->m, g->root, false, &err);
	struct ks_vtop_range r;
	size_t n = 0;
	assert_non_null(it);
	while (ks_vtop_iter_next(it, &r, &err) == 1) {
		assert_true(n < sizeof(want_tmpl) / sizeof(want_tmpl[0]));
		struct ks_vtop_range w = want_tmpl[n];
		w.flags = flag_sets[w.flags];
		if (r.gva != w.gva || r.gpa != w.gpa || r.size != w.size ||
		    r.page_size != w.page_size || r.flags != w.flags)
			fail_msg("range %zu: %llx->%llx +%llx ps %llx flags %x", n,
				 (unsigned long long)r.gva, (unsigned long long)r.gpa,
				 (unsigned long long)r.size, (unsigned long long)r.page_size, r.flags);
		n++;
	}
	assert_int_equal(n, sizeof(want_tmpl) / sizeof(want_tmpl[0]));
	assert_int_equal(ks_vtop_iter_next(it, &r, &err), 0);
	assert_int_equal(ks_vtop_iter_skipped(it), 2);
	ks_vtop_iter_free(it);
	ks_vtop_iter_free(NULL);
}

static void pagemap_five_level_and_empty(void **state)
{
	struct guest *g = *state;
	struct ks_vtop_range r;

	struct ks_vtop_iter *it = ks_vtop_iter_new(g->m, g->root, true, NULL);
	assert_int_equal(ks_vtop_iter_next(it, &r, NULL), 0);
	ks_vtop_iter_free(it);
	map(g, 0xff80000000200000ull, 0x600000, 2, W, W);
	map(g, 0x00ff000000000000ull, 0x700000, 1, W, W);
	it = ks_vtop_iter_new(g->m, g->root, true, NULL);
	assert_int_equal(ks_vtop_iter_next(it, &r, NULL), 1);
	assert_true(r.gva == 0x00ff000000000000ull && r.gpa == 0x700000 && r.size == 0x1000);
	assert_int_equal(ks_vtop_iter_next(it, &r, NULL), 1);
	assert_true(r.gva == 0xff80000000200000ull && r.gpa == 0x600000);
	assert_int_equal(ks_vtop_iter_next(it, &r, NULL), 0);
	ks_vtop_iter_free(it);
	struct ks_error err = { 0 };
	assert_null(ks_vtop_iter_new(g->m, 0x7fff000, false, &err));
	assert_int_equal(err.code, -EFAULT);
}

/* ---- text ---- */

static void registers_from_hmp(void **state)
{
	static const char text[] =
		"RAX=0000000000000000 RBX=0000000000000000\r\n"
		"CR0=80050033 CR2=0000000000000000 CR3=000000000010b000 CR4=000006a0\r\n"
		"DR0=0000000000000000\r\n";
	static const char la57[] = "CR0=80050033 CR2=0 CR3=0000000012345000 CR4=00001020\r\n";
	uint64_t cr3 = 0;
	bool l = true;
	(void)state;

	assert_int_equal(ks_vtop_regs_from_hmp(text, &cr3, &l), 0);
	assert_true(cr3 == 0x10b000);
	assert_false(l);
	assert_int_equal(ks_vtop_regs_from_hmp(la57, &cr3, &l), 0);
	assert_true(cr3 == 0x12345000);
	assert_true(l);
	assert_int_equal(ks_vtop_regs_from_hmp("XCR3=5 CR4=0", &cr3, &l), -EINVAL);
	assert_int_equal(ks_vtop_regs_from_hmp("", &cr3, &l), -EINVAL);
}

static void names_and_flags_text(void **state)
{
	char buf[64];
	(void)state;

	assert_string_equal(ks_vtop_flags_format(KS_VTOP_PRESENT | KS_VTOP_WRITABLE |
						 KS_VTOP_NX | KS_VTOP_LARGE, buf, sizeof(buf)),
			    "P W PS NX");
	assert_string_equal(ks_vtop_flags_format(0, buf, sizeof(buf)), "-");
	assert_string_equal(ks_vtop_flags_format(0x3ff, buf, 8), "P W U");
	assert_string_equal(ks_vtop_level_name(0), "?");
	assert_string_equal(ks_vtop_fault_name(KS_VTOP_NONCANONICAL), "non-canonical address");
	assert_string_equal(ks_vtop_fault_name(KS_VTOP_BAD_TABLE), "table not in RAM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(four_level_4k, setup4, teardown),
		cmocka_unit_test_setup_teardown(large_pages, setup4, teardown),
		cmocka_unit_test_setup_teardown(five_level, setup5, teardown),
		cmocka_unit_test_setup_teardown(not_present_at_each_level, setup4, teardown),
		cmocka_unit_test_setup_teardown(not_present_at_each_level_la57, setup5, teardown),
		cmocka_unit_test_setup_teardown(flags_combine_across_levels, setup4, teardown),
		cmocka_unit_test_setup_teardown(reserved_bits, setup4, teardown),
		cmocka_unit_test_setup_teardown(noncanonical_addresses, setup4, teardown),
		cmocka_unit_test_setup_teardown(table_outside_ram, setup4, teardown),
		cmocka_unit_test_setup_teardown(walk_through_reader, setup4, teardown),
		cmocka_unit_test_setup_teardown(reads_and_writes_span_pages, setup4, teardown),
		cmocka_unit_test_setup_teardown(translator_needs_cr3, setup4, teardown),
		cmocka_unit_test_setup_teardown(cache_on_off, setup4, teardown),
		cmocka_unit_test_setup_teardown(pagemap_coalesces, setup4, teardown),
		cmocka_unit_test_setup_teardown(pagemap_five_level_and_empty, setup5, teardown),
		cmocka_unit_test(registers_from_hmp),
		cmocka_unit_test(names_and_flags_text),
	};

	return cmocka_run_group_tests_name("vtop", tests, NULL, NULL);
}
