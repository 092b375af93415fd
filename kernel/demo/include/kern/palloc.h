/* palloc.h: the physical page allocator (a bitmap over the RAM of the boot memory map). */
#ifndef KERN_PALLOC_H
#define KERN_PALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PALLOC_PAGE 4096

/* A physical address range [base, base + size). */
struct palloc_range {
	uint64_t base, size;
};

/*
 * Manages the pages of ram (up to limit, exclusive) except those overlapping reserved. The
 * bitmap takes the first free pages big enough for it (above 1 MiB). Call once; later calls
 * start afresh (tests do not).
 */
void palloc_init(const struct palloc_range *ram, size_t nram,
		 const struct palloc_range *reserved, size_t nreserved, uint64_t limit);

/* One free page (its physical address), or 0 when none is left (page 0 is never handed out). */
uint64_t palloc_alloc(void);

/* Like palloc_alloc(), and the page is filled with zeros. */
uint64_t palloc_alloc_zeroed(void);

/* npages physically contiguous free pages, or 0. */
uint64_t palloc_alloc_contig(size_t npages);

/* Frees a page from palloc_alloc*(). Returns 0, or -EINVAL for an unaligned address, one
 * outside the managed RAM, or a page that is already free. */
int palloc_free(uint64_t pa);

/* Frees npages contiguous pages starting at pa; all or none (-EINVAL as palloc_free()). */
int palloc_free_contig(uint64_t pa, size_t npages);

/* Pages free now. */
size_t palloc_free_pages(void);

/* Pages the allocator manages (free or allocated; reserved ones excluded). */
size_t palloc_total_pages(void);

/* True when pa's page is managed and free. */
bool palloc_is_free(uint64_t pa);

/* Physical address and size of the allocator's bitmap (reserved for itself). */
struct palloc_range palloc_bitmap_range(void);

#endif /* KERN_PALLOC_H */
