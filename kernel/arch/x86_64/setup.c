/* setup.c: the BSP's C entry: PVH start info, then every subsystem in order, then kmain. */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/boot.h>
#include <arch/clock.h>
#include <arch/cpu.h>
#include <arch/paging.h>
#include <arch/serial.h>
#include <arch/smp.h>
#include <arch/trap.h>
#include <arch/x86.h>
#include <kern/kmain.h>
#include <kern/palloc.h>
#include <kern/string.h>
#include <kt/ktest.h>

#define HVM_START_MAGIC 0x336ec578
/* palloc hands out RAM below 3 GiB only: the direct map's last GiB is mapped uncached. */
#define PALLOC_LIMIT 0xc0000000ull

/* struct hvm_start_info (Xen's arch-x86/hvm/start_info.h), version 1. */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

extern char _kernel_phys_start[], _kernel_phys_end[];

static struct boot_info info;

const struct boot_info *boot_info(void)
{
	return &info;
}

uint64_t boot_kernel_phys_start(void)
{
	return (uint64_t)_kernel_phys_start;
}

uint64_t boot_kernel_phys_end(void)
{
	return (uint64_t)_kernel_phys_end;
}

/* Copies what we need out of the start info (it lives in memory palloc will reuse). */
static void boot_info_parse(uint32_t pa)
{
	const struct hvm_start_info *si = phys_to_virt(pa);

	if (!pa || si->magic != HVM_START_MAGIC)
		panic("no PVH start info (booted with -kernel through PVH?)");
	if (si->cmdline_paddr)
		strlcpy(info.cmdline, phys_to_virt(si->cmdline_paddr), sizeof(info.cmdline));
	if (si->version < 1 || !si->memmap_paddr)
		panic("PVH start info version %u has no memory map", si->version);
	const struct boot_mem *m = phys_to_virt(si->memmap_paddr);
	for (uint32_t i = 0; i < si->memmap_entries && info.nmem < BOOT_MEMMAP_MAX; i++)
		info.mem[info.nmem++] = m[i];
}

/* The page allocator gets the RAM of the map minus low memory (the AP start-up page, BIOS
 * data) and the kernel image with its boot page tables. */
static void mem_init(void)
{
	struct palloc_range ram[BOOT_MEMMAP_MAX];
	size_t nram = 0;
	const struct palloc_range reserved[] = {
		{ 0, 0x100000 },
		{ boot_kernel_phys_start(), boot_kernel_phys_end() - boot_kernel_phys_start() },
	};

	for (unsigned int i = 0; i < info.nmem; i++)
		if (info.mem[i].type == BOOT_MEM_RAM)
			ram[nram++] = (struct palloc_range){ info.mem[i].addr, info.mem[i].size };
	palloc_init(ram, nram, reserved, sizeof(reserved) / sizeof(reserved[0]), PALLOC_LIMIT);
}

static void boot_report(void)
{
	/* The newline ends whatever firmware printed on the line before (SeaBIOS on pc). */
	kt_printf("\nkscope-demo: %u CPU(s), %zu MiB free, TSC %lu MHz, APIC timer %lu kHz "
		  "(calibrated against the %s), %s%s\n",
		  smp_cpu_count(), palloc_free_pages() / 256, clock_tsc_hz() / 1000000,
		  lapic_timer_hz() / 1000, clock_used_pit() ? "PIT" : "APIC timer at 1 GHz",
		  cpu_nx_enabled() ? "NX" : "no NX", cpu_smap_enabled() ? ", SMAP" : "");
}

void arch_main(uint32_t start_info_pa)
{
	cpu_early_init();
	serial_init();
	trap_init();
	trap_load_idt(); /* early faults get a report, not a triple fault */
	boot_info_parse(start_info_pa);
	paging_init();
	mem_init();
	cpu_setup(cpu_get(0));
	cpu_get(0)->online = 1;
	clock_init();
	lapic_timer_start(TIMER_HZ);
	irq_enable();
	smp_init();
	paging_drop_identity();
	boot_report();
	/* The tests run on a stack with a guard page (the boot stack in .bss has none). */
	call_on_stack(cpu_alloc_stack(STACK_SIZE), kmain, info.cmdline);
}
