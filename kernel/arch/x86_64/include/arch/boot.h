/* boot.h: what the PVH boot hands over (command line, memory map) and the image bounds. */
#ifndef ARCH_BOOT_H
#define ARCH_BOOT_H

#include <stddef.h>
#include <stdint.h>

#define BOOT_CMDLINE_MAX 1024
#define BOOT_MEMMAP_MAX 64

/* A memory map entry, as in struct hvm_memmap_table_entry. */
struct boot_mem {
	uint64_t addr, size;
	uint32_t type; /* 1 = RAM */
	uint32_t reserved;
};

#define BOOT_MEM_RAM 1

/* The boot information, copied out of the PVH start info at boot. */
struct boot_info {
	char cmdline[BOOT_CMDLINE_MAX];
	struct boot_mem mem[BOOT_MEMMAP_MAX];
	unsigned int nmem;
};

/* The boot information (valid after the BSP's early setup). */
const struct boot_info *boot_info(void);

/* Physical bounds of the loaded kernel image, boot page tables and .bss included. */
uint64_t boot_kernel_phys_start(void);
uint64_t boot_kernel_phys_end(void);

/* C entry of the BSP from boot.S, with the physical address of struct hvm_start_info. */
__attribute__((noreturn)) void arch_main(uint32_t start_info_pa);

#endif /* ARCH_BOOT_H */
