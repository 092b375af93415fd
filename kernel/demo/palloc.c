/* palloc.c: physical page allocator: one bit per page (1 = in use) over the boot memory map. */
#include <stdint.h>

#include <arch/paging.h>
#include <arch/spinlock.h>
#include <arch/trap.h>
#include <kern/errno.h>
#include <kern/palloc.h>
#include <kern/string.h>

#define MAX_RANGES 64
#define LOW_MEMORY 0x100000

static spinlock_t lock = SPINLOCK_INIT;
static uint64_t *bitmap; /* through the direct map */
static struct palloc_range bitmap_range;
static uint64_t npages;  /* pages the bitmap covers (page 0 up to the top of RAM) */
static size_t nfree, ntotal;
static uint64_t hint;    /* word where the last allocation was found */

/* What palloc_free() accepts: inside RAM and outside every reserved range. */
static struct palloc_range ram_ranges[MAX_RANGES], res_ranges[MAX_RANGES + 1];
static size_t nram_ranges, nres_ranges;

static uint64_t align_up(uint64_t v)
{
	return (v + PALLOC_PAGE - 1) & ~(uint64_t)(PALLOC_PAGE - 1);
}

static bool overlaps(uint64_t base, uint64_t size, const struct palloc_range *r)
{
	return base < r->base + r->size && r->base < base + size;
}

static bool managed(uint64_t pa)
{
	bool in_ram = false;

	for (size_t i = 0; i < nram_ranges; i++)
		in_ram |= pa >= ram_ranges[i].base &&
			  pa + PALLOC_PAGE <= ram_ranges[i].base + ram_ranges[i].size;
	for (size_t i = 0; in_ram && i < nres_ranges; i++)
		if (overlaps(pa, PALLOC_PAGE, &res_ranges[i]))
			return false;
	return in_ram && pa / PALLOC_PAGE < npages;
}

static bool bit_get(uint64_t page)
{
	return bitmap[page / 64] >> (page % 64) & 1;
}

static void bit_set(uint64_t page, bool used)
{
	if (used)
		bitmap[page / 64] |= 1ull << (page % 64);
	else
		bitmap[page / 64] &= ~(1ull << (page % 64));
}

/* Marks n pages from first, a whole word at a time where it can (boot time matters). */
static void range_mark(uint64_t first, uint64_t n, bool used)
{
	for (; n && first % 64; first++, n--)
		bit_set(first, used);
	for (; n >= 64; first += 64, n -= 64)
		bitmap[first / 64] = used ? ~0ull : 0;
	for (; n; first++, n--)
		bit_set(first, used);
}

static unsigned int popcount64(uint64_t w)
{
	w = w - ((w >> 1) & 0x5555555555555555ull);
	w = (w & 0x3333333333333333ull) + ((w >> 2) & 0x3333333333333333ull);
	w = (w + (w >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned int)((w * 0x0101010101010101ull) >> 56);
}

/* Pages marked in use in [0, npages). */
static uint64_t count_used(void)
{
	uint64_t used = 0, nwords = (npages + 63) / 64;

	for (uint64_t w = 0; w < nwords; w++)
		used += popcount64(bitmap[w]);
	/* The last word's bits past npages stay set: not pages. */
	return used - (nwords * 64 - npages);
}

/* The first spot for size bytes above low memory, inside RAM, clear of the reserved ranges. */
static uint64_t find_bitmap_home(uint64_t size)
{
	for (size_t i = 0; i < nram_ranges; i++) {
		uint64_t end = ram_ranges[i].base + ram_ranges[i].size;
		uint64_t at = align_up(ram_ranges[i].base < LOW_MEMORY ? LOW_MEMORY
								       : ram_ranges[i].base);
		for (size_t j = 0; j < nres_ranges && at + size <= end; j++) {
			if (overlaps(at, size, &res_ranges[j])) {
				at = align_up(res_ranges[j].base + res_ranges[j].size);
				j = (size_t)-1; /* check every range again */
			}
		}
		if (at + size <= end)
			return at;
	}
	panic("palloc: no room for a %lu-byte bitmap", size);
}

/* Copies the ranges, clipping RAM to limit and to whole pages. */
static void keep_ranges(const struct palloc_range *ram, size_t nram,
			const struct palloc_range *reserved, size_t nreserved, uint64_t limit)
{
	nram_ranges = nres_ranges = 0;
	for (size_t i = 0; i < nram && nram_ranges < MAX_RANGES; i++) {
		uint64_t base = align_up(ram[i].base);
		uint64_t end = (ram[i].base + ram[i].size) & ~(uint64_t)(PALLOC_PAGE - 1);
		if (end > limit)
			end = limit;
		if (end > base)
			ram_ranges[nram_ranges++] = (struct palloc_range){ base, end - base };
	}
	for (size_t i = 0; i < nreserved && nres_ranges < MAX_RANGES; i++)
		res_ranges[nres_ranges++] = reserved[i];
}

void palloc_init(const struct palloc_range *ram, size_t nram,
		 const struct palloc_range *reserved, size_t nreserved, uint64_t limit)
{
	uint64_t top = 0;

	keep_ranges(ram, nram, reserved, nreserved, limit);
	for (size_t i = 0; i < nram_ranges; i++)
		if (ram_ranges[i].base + ram_ranges[i].size > top)
			top = ram_ranges[i].base + ram_ranges[i].size;
	npages = top / PALLOC_PAGE;
	uint64_t bytes = align_up((npages + 63) / 64 * 8);
	bitmap_range = (struct palloc_range){ find_bitmap_home(bytes), bytes };
	res_ranges[nres_ranges++] = bitmap_range;
	bitmap = phys_to_virt(bitmap_range.base);
	memset(bitmap, 0xff, bytes);
	for (size_t i = 0; i < nram_ranges; i++)
		range_mark(ram_ranges[i].base / PALLOC_PAGE, ram_ranges[i].size / PALLOC_PAGE, false);
	for (size_t i = 0; i < nres_ranges; i++) {
		uint64_t first = res_ranges[i].base / PALLOC_PAGE;
		uint64_t last = align_up(res_ranges[i].base + res_ranges[i].size) / PALLOC_PAGE;
		if (first < npages)
			range_mark(first, (last < npages ? last : npages) - first, true);
	}
	nfree = npages - count_used();
	ntotal = nfree;
	hint = 0;
}

uint64_t palloc_alloc(void)
{
	uint64_t nwords = (npages + 63) / 64;
	uint64_t irq = spin_lock_irqsave(&lock);

	for (uint64_t i = 0; i < nwords; i++) {
		uint64_t w = (hint + i) % nwords;
		if (bitmap[w] == ~0ull)
			continue;
		uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(~bitmap[w]);
		bit_set(page, true);
		nfree--;
		hint = w;
		spin_unlock_irqrestore(&lock, irq);
		return page * PALLOC_PAGE;
	}
	spin_unlock_irqrestore(&lock, irq);
	return 0;
}

uint64_t palloc_alloc_zeroed(void)
{
	uint64_t pa = palloc_alloc();

	if (pa)
		memset(phys_to_virt(pa), 0, PALLOC_PAGE);
	return pa;
}

uint64_t palloc_alloc_contig(size_t n)
{
	uint64_t run = 0;
	uint64_t irq = spin_lock_irqsave(&lock);

	for (uint64_t p = 0; n && p < npages; p++) {
		run = bit_get(p) ? 0 : run + 1;
		if (run < n)
			continue;
		uint64_t first = p + 1 - n;
		for (uint64_t q = first; q <= p; q++)
			bit_set(q, true);
		nfree -= n;
		spin_unlock_irqrestore(&lock, irq);
		return first * PALLOC_PAGE;
	}
	spin_unlock_irqrestore(&lock, irq);
	return 0;
}

int palloc_free_contig(uint64_t pa, size_t n)
{
	int r = 0;

	if (pa & (PALLOC_PAGE - 1) || n == 0)
		return -EINVAL;
	uint64_t irq = spin_lock_irqsave(&lock);
	for (size_t i = 0; i < n && !r; i++) {
		uint64_t a = pa + i * PALLOC_PAGE;
		if (!managed(a) || !bit_get(a / PALLOC_PAGE))
			r = -EINVAL;
	}
	for (size_t i = 0; i < n && !r; i++)
		bit_set(pa / PALLOC_PAGE + i, false);
	if (!r)
		nfree += n;
	spin_unlock_irqrestore(&lock, irq);
	return r;
}

int palloc_free(uint64_t pa)
{
	return palloc_free_contig(pa, 1);
}

size_t palloc_free_pages(void)
{
	return nfree;
}

size_t palloc_total_pages(void)
{
	return ntotal;
}

bool palloc_is_free(uint64_t pa)
{
	return managed(pa & ~(uint64_t)(PALLOC_PAGE - 1)) && !bit_get(pa / PALLOC_PAGE);
}

struct palloc_range palloc_bitmap_range(void)
{
	return bitmap_range;
}
