/* paging.c: 4-level page tables, walked and grown through the direct map. */
#include <stdint.h>

#include <arch/cpu.h>
#include <arch/paging.h>
#include <arch/smp.h>
#include <arch/spinlock.h>
#include <arch/x86.h>
#include <kern/errno.h>
#include <kern/palloc.h>

#define PTE_LEAF_FLAGS (PTE_W | PTE_U | PTE_PWT | PTE_PCD | PTE_G | PTE_NX)

static uint64_t *root; /* the PML4, through the direct map */
static spinlock_t lock = SPINLOCK_INIT;
static uint64_t vmap_next = VMAP_BASE;
static uint64_t tables_allocated;

void paging_init(void)
{
	root = phys_to_virt(read_cr3() & PTE_ADDR);
}

uint64_t paging_tables_allocated(void)
{
	return tables_allocated;
}

static bool canonical(uint64_t va)
{
	int64_t top = (int64_t)va >> 47;
	return top == 0 || top == -1;
}

static unsigned int index_at(uint64_t va, int level)
{
	return (va >> (12 + 9 * level)) & 511;
}

/*
 * Finds the level-0 entry for va, creating missing tables when create is set. user (PTE_U or
 * 0) is added to every intermediate entry on the way: a user page needs it at every level.
 */
static int walk(uint64_t va, bool create, uint64_t user, uint64_t **pte)
{
	uint64_t *table = root;

	for (int level = 3; level > 0; level--) {
		uint64_t *e = &table[index_at(va, level)];
		if (!(*e & PTE_P)) {
			if (!create)
				return -ENOENT;
			uint64_t pa = palloc_alloc_zeroed();
			if (!pa)
				return -ENOMEM;
			tables_allocated++;
			*e = pa | PTE_P | PTE_W | user;
		} else if (*e & PTE_PS) {
			return create ? -EEXIST : -ENOENT;
		} else {
			*e |= user;
		}
		table = phys_to_virt(*e & PTE_ADDR);
	}
	*pte = &table[index_at(va, 0)];
	return 0;
}

int paging_map(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *pte;

	if ((va | pa) & (PAGE_SIZE - 1) || !canonical(va) || (pa & ~PTE_ADDR))
		return -EINVAL;
	if ((flags & PTE_NX) && !cpu_nx_enabled())
		return -EINVAL;
	if ((flags & PTE_U) && va >= USER_TOP)
		return -EINVAL;
	flags &= PTE_LEAF_FLAGS;
	uint64_t irq = spin_lock_irqsave(&lock);
	int r = walk(va, true, flags & PTE_U, &pte);
	if (!r && (*pte & PTE_P))
		r = -EEXIST;
	if (!r)
		*pte = pa | flags | PTE_P;
	spin_unlock_irqrestore(&lock, irq);
	return r;
}

int paging_unmap(uint64_t va, uint64_t *pa)
{
	uint64_t *pte;

	if ((va & (PAGE_SIZE - 1)) || !canonical(va))
		return -EINVAL;
	uint64_t irq = spin_lock_irqsave(&lock);
	int r = walk(va, false, 0, &pte);
	if (!r && !(*pte & PTE_P))
		r = -ENOENT;
	if (!r) {
		if (pa)
			*pa = *pte & PTE_ADDR;
		*pte = 0;
		invlpg(va);
	}
	spin_unlock_irqrestore(&lock, irq);
	if (!r)
		smp_flush_tlb_others(va);
	return r;
}

int paging_translate(uint64_t va, uint64_t *pa, uint64_t *flags)
{
	const uint64_t *table = root;

	if (!canonical(va))
		return -ENOENT;
	for (int level = 3; level >= 0; level--) {
		uint64_t e = table[index_at(va, level)];
		if (!(e & PTE_P))
			return -ENOENT;
		if (level == 0 || (e & PTE_PS)) {
			uint64_t size = 1ull << (12 + 9 * level);
			if (pa)
				*pa = (e & PTE_ADDR & ~(size - 1)) + (va & (size - 1));
			if (flags)
				*flags = e & ~PTE_ADDR;
			return 0;
		}
		table = phys_to_virt(e & PTE_ADDR);
	}
	return -ENOENT;
}

uint64_t paging_vmap_reserve(uint64_t npages)
{
	uint64_t va = 0;
	uint64_t irq = spin_lock_irqsave(&lock);

	/* One unmapped guard page after each range. */
	if (npages && npages < VMAP_SIZE / PAGE_SIZE &&
	    vmap_next + (npages + 1) * PAGE_SIZE <= VMAP_BASE + VMAP_SIZE) {
		va = vmap_next;
		vmap_next += (npages + 1) * PAGE_SIZE;
	}
	spin_unlock_irqrestore(&lock, irq);
	return va;
}

static void reload_cr3(void *arg)
{
	(void)arg;
	write_cr3(read_cr3());
}

void paging_drop_identity(void)
{
	root[0] = 0;
	smp_call_all(reload_cr3, NULL);
}
