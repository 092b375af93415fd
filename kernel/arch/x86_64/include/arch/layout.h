/* layout.h: the demo kernel's virtual and physical memory layout and GDT selectors (C and asm). */
#ifndef ARCH_LAYOUT_H
#define ARCH_LAYOUT_H

#ifdef __ASSEMBLER__
#define LAYOUT_UL(x) x
#else
#define LAYOUT_UL(x) x##UL
#endif

/*
 * Physical: the image loads at 1 MiB (the 32-bit PVH entry and the boot page tables first,
 * in the identity-mapped .boot sections), everything else follows. Virtual:
 *   0x0000000000000000  user space (and, until SMP is up, the identity map of 4 GiB)
 *   0xffff800000000000  direct map of physical 0 .. 4 GiB (2 MiB pages, 3-4 GiB uncached)
 *   0xffffc00000000000  vmap area: 4 KiB pages made by paging_map()
 *   0xffffffff80000000  the kernel image: physical 0 .. 1 GiB (2 MiB pages)
 */
#define KERNEL_PHYS_BASE LAYOUT_UL(0x100000)
#define KERNEL_VMA LAYOUT_UL(0xffffffff80000000)
#define DIRECT_MAP_BASE LAYOUT_UL(0xffff800000000000)
#define DIRECT_MAP_SIZE LAYOUT_UL(0x100000000)
#define VMAP_BASE LAYOUT_UL(0xffffc00000000000)
#define VMAP_SIZE LAYOUT_UL(0x8000000000)
#define USER_TOP LAYOUT_UL(0x0000800000000000)

/* The user task: code at USER_CODE_VA, CPU n's stack page ends at USER_STACK_TOP - n * 64 KiB.
 * One data page (user, writable, NX) at USER_DATA_VA is shared by every CPU's task; its first
 * quadword is the flag the example_host.ring3_spin program waits on. */
#define USER_CODE_VA LAYOUT_UL(0x400000)
#define USER_DATA_VA LAYOUT_UL(0x600000)
#define USER_STACK_TOP LAYOUT_UL(0x7fff00000000)
#define USER_STACK_STRIDE LAYOUT_UL(0x10000)

/* Where the AP start-up code is copied (below 1 MiB, page-aligned: SIPI vector 0x08). */
#define TRAMP_BASE 0x8000

#define PAGE_SIZE 4096
#define STACK_SIZE 16384 /* kernel stacks: boot, per-CPU main and syscall stacks */
#define IST_SIZE 8192    /* double-fault and NMI stacks */
#define MAX_CPUS 64

/* GDT layout (the same on every CPU). SYSRET needs user data right below user code. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b /* 0x18 | RPL 3 */
#define SEL_UCODE 0x23 /* 0x20 | RPL 3 */
#define SEL_TSS 0x28

#endif /* ARCH_LAYOUT_H */
