/* cpu.c: per-CPU records, their GDT and TSS, CPU features (NX, SMEP, SMAP). */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/paging.h>
#include <arch/syscall.h>
#include <arch/trap.h>
#include <arch/x86.h>
#include <kern/palloc.h>
#include <kern/string.h>

static struct percpu cpus[MAX_CPUS];
static bool smap_on;

struct percpu *cpu_get(unsigned int index)
{
	return index < MAX_CPUS ? &cpus[index] : NULL;
}

void cpu_early_init(void)
{
	cpus[0].self = &cpus[0];
	wrmsr(MSR_GS_BASE, (uint64_t)&cpus[0]);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
}

bool cpu_smap_enabled(void)
{
	return smap_on;
}

bool cpu_nx_enabled(void)
{
	return (rdmsr(MSR_EFER) & EFER_NXE) != 0;
}

uint64_t cpu_alloc_stack(size_t size)
{
	uint64_t npages = size / PAGE_SIZE;
	/* The lowest page stays unmapped: an overflow faults there instead of corrupting
	 * memory, and the #PF that cannot be delivered on that stack becomes a #DF on IST. */
	uint64_t va = paging_vmap_reserve(npages + 1);

	if (!va)
		panic("no virtual space for a %zu-byte stack", size);
	for (uint64_t i = 1; i <= npages; i++) {
		uint64_t pa = palloc_alloc();
		if (!pa || paging_map(va + i * PAGE_SIZE, pa, PTE_W | (cpu_nx_enabled() ? PTE_NX : 0)))
			panic("out of memory for a %zu-byte stack", size);
	}
	return va + (npages + 1) * PAGE_SIZE;
}

/* Fills the GDT: flat kernel and user segments (SYSRET wants user data just below user
 * code) and the 16-byte TSS descriptor. */
static void gdt_fill(struct percpu *c)
{
	uint64_t base = (uint64_t)&c->tss;
	uint64_t limit = sizeof(c->tss) - 1;

	c->gdt[0] = 0;
	c->gdt[1] = 0x00af9a000000ffff; /* SEL_KCODE: 64-bit, DPL 0 */
	c->gdt[2] = 0x00cf92000000ffff; /* SEL_KDATA */
	c->gdt[3] = 0x00cff2000000ffff; /* SEL_UDATA: DPL 3 */
	c->gdt[4] = 0x00affa000000ffff; /* SEL_UCODE: 64-bit, DPL 3 */
	c->gdt[5] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
		    ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	c->gdt[6] = base >> 32;
}

/* Loads the GDT, reloads every segment register (CS through a far return) and the TSS. */
static void gdt_load(struct percpu *c)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) ptr = { sizeof(c->gdt) - 1, (uint64_t)c->gdt };

	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "lea 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "mov %2, %%eax\n\t"
			 "mov %%eax, %%ds\n\t"
			 "mov %%eax, %%es\n\t"
			 "mov %%eax, %%ss\n\t"
			 "xor %%eax, %%eax\n\t"
			 "mov %%eax, %%fs\n\t"
			 "mov %%eax, %%gs\n\t"
			 "ltr %w3"
			 :
			 : "m"(ptr), "i"(SEL_KCODE), "i"(SEL_KDATA), "r"(SEL_TSS)
			 : "rax", "memory");
}

/* SMEP and SMAP where the CPU has them: the kernel then neither runs nor (outside
 * copy_from_user) reads user pages. */
static void cr4_features(void)
{
	uint32_t r[4];
	uint64_t cr4 = read_cr4();

	cpuid(0, 0, r);
	if (r[0] < 7)
		return;
	cpuid(7, 0, r);
	if (r[1] & (1u << 7))
		cr4 |= CR4_SMEP;
	if (r[1] & (1u << 20)) {
		cr4 |= CR4_SMAP;
		smap_on = true;
	}
	write_cr4(cr4);
}

void cpu_setup(struct percpu *c)
{
	c->self = c;
	if (!c->kstack_top)
		c->kstack_top = cpu_alloc_stack(STACK_SIZE);
	memset(&c->tss, 0, sizeof(c->tss));
	c->tss.rsp[0] = c->kstack_top;
	c->tss.ist[IST_DOUBLE_FAULT - 1] = cpu_alloc_stack(IST_SIZE);
	c->tss.ist[IST_NMI - 1] = cpu_alloc_stack(IST_SIZE);
	c->tss.iopb = sizeof(c->tss); /* no I/O bitmap: port access from ring 3 faults */
	gdt_fill(c);
	gdt_load(c);
	/* Loading GS zeroed its base: point it at this CPU's record again. */
	wrmsr(MSR_GS_BASE, (uint64_t)c);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
	trap_load_idt();
	cr4_features();
	syscall_cpu_init();
	lapic_init();
	c->apic_id = lapic_id();
}
