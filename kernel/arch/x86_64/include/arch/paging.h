/* paging.h: 4-level page tables: map, unmap and translate 4 KiB pages; the direct map. */
#ifndef ARCH_PAGING_H
#define ARCH_PAGING_H

#include <stdint.h>

#include <arch/layout.h>

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_U (1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_G (1ull << 8)
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

/* The direct-map address of physical address pa (pa < DIRECT_MAP_SIZE). */
static inline void *phys_to_virt(uint64_t pa)
{
	return (void *)(pa + DIRECT_MAP_BASE);
}

/* Takes over the boot page tables (called once on the BSP). */
void paging_init(void);

/*
 * Maps the 4 KiB page at va to physical pa with flags (PTE_W, PTE_U, PTE_NX, PTE_PCD ...;
 * PTE_P is implied), creating intermediate tables from the page allocator. Returns 0,
 * -EINVAL (unaligned or non-canonical va, or NX without NX support), -EEXIST (va mapped, or
 * inside a large page) or -ENOMEM.
 */
int paging_map(uint64_t va, uint64_t pa, uint64_t flags);

/*
 * Unmaps the 4 KiB page at va and invalidates it in every CPU's TLB (other CPUs only when
 * called from the BSP). Stores the physical address in *pa when pa is not NULL. Returns 0 or
 * -ENOENT. Intermediate tables stay.
 */
int paging_unmap(uint64_t va, uint64_t *pa);

/* Walks the tables for va: the physical address in *pa and the leaf entry's flags in *flags
 * (either may be NULL). Handles 2 MiB and 1 GiB pages. Returns 0 or -ENOENT. */
int paging_translate(uint64_t va, uint64_t *pa, uint64_t *flags);

/* Reserves npages of unused virtual space in the vmap area (never handed out twice); 0 when
 * the area is used up. Nothing is mapped. */
uint64_t paging_vmap_reserve(uint64_t npages);

/* Removes the low identity map of the boot (NULL then faults) on every CPU. */
void paging_drop_identity(void);

/* The number of intermediate tables allocated since boot. */
uint64_t paging_tables_allocated(void);

#endif /* ARCH_PAGING_H */
