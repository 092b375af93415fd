/* boot.S: PVH entry (32-bit), boot page tables, switch to long mode, jump to the higher half. */
#include <kscope/kt_abi.h>
#include <kt_arch.h>
#include <arch/layout.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* QEMU's -kernel boots an ELF64 through PVH when it finds this note (and no multiboot
 * header): desc is the 32-bit physical entry point. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long pvh_start32
	.balign 4

/*
 * Entry: 32-bit protected mode, flat segments, paging off, interrupts off,
 * EBX = physical address of struct hvm_start_info. No stack is needed until long mode.
 */
	.section .boot.text, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	KT_MAGIC_ASM KT_MAGIC_BOOT
	cld
	mov %ebx, boot_start_info_pa

	/* Zero the boot page tables. */
	mov $boot_pml4, %edi
	mov $((boot_tables_end - boot_pml4) / 4), %ecx
	xor %eax, %eax
	rep stosl

	/* Four page directories of 2 MiB pages: physical 0 .. 4 GiB. The top GiB (the
	 * MMIO hole of pc/q35, with the local and I/O APICs) is uncached. */
	mov $boot_pd, %edi
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $21, %eax
	or $0x83, %eax			/* present, writable, 2 MiB */
	cmp $1536, %ecx
	jb 2f
	or $0x18, %eax			/* PWT | PCD */
2:	mov %eax, (%edi, %ecx, 8)
	inc %ecx
	cmp $2048, %ecx
	jb 1b

	/* The low PDPT points at them; it serves both the identity map (PML4[0]) and the
	 * direct map (PML4[256]). The kernel's PDPT maps its last-but-one GiB to the first
	 * directory (physical 0 .. 1 GiB at KERNEL_VMA). */
	mov $boot_pdpt_low, %edi
	mov $(boot_pd + 3), %eax
	mov %eax, 0(%edi)
	add $4096, %eax
	mov %eax, 8(%edi)
	add $4096, %eax
	mov %eax, 16(%edi)
	add $4096, %eax
	mov %eax, 24(%edi)
	movl $(boot_pd + 3), boot_pdpt_high + 510 * 8
	movl $(boot_pdpt_low + 3), boot_pml4
	movl $(boot_pdpt_low + 3), boot_pml4 + 256 * 8
	movl $(boot_pdpt_high + 3), boot_pml4 + 511 * 8

	lgdt boot_gdt_ptr
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3

	/* EFER: long mode, and NX when the CPU has it (CPUID 0x80000001 EDX bit 20). */
	mov $0x80000001, %eax
	cpuid
	mov $0x100, %ebx		/* LME */
	bt $20, %edx
	jnc 3f
	or $0x800, %ebx			/* NXE */
3:	mov $0xc0000080, %ecx
	rdmsr
	or %ebx, %eax
	wrmsr

	mov %cr0, %eax
	or $0x80010001, %eax		/* PG | WP | PE */
	mov %eax, %cr0
	ljmp $SEL_KCODE, $boot_long

	.code64
boot_long:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs

	/* Clear .bss (the loader may leave it as it was), then enter C on the boot stack. */
	movabs $__bss_start, %rdi
	movabs $__bss_end, %rcx
	sub %rdi, %rcx
	xor %eax, %eax
	rep stosb
	movabs $boot_stack_top, %rsp
	xor %ebp, %ebp
	mov boot_start_info_pa(%rip), %edi
	movabs $arch_main, %rax
	call *%rax
4:	cli
	hlt
	jmp 4b

	.section .boot.data, "aw"
	.balign 8
	.globl boot_start_info_pa
boot_start_info_pa:
	.long 0
	.long 0
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff		/* SEL_KCODE: 64-bit code */
	.quad 0x00cf92000000ffff		/* SEL_KDATA */
boot_gdt_end:
boot_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt

/* Boot page tables: the BSP keeps using them (paging.c takes them over). */
	.section .boot.bss, "aw", @nobits
	.balign 4096
	.globl boot_pml4
boot_pml4:
	.skip 4096
boot_pdpt_low:
	.skip 4096
boot_pdpt_high:
	.skip 4096
boot_pd:
	.skip 4 * 4096
boot_tables_end:

	.section .bss
	.balign 16
boot_stack:
	.skip STACK_SIZE
	.globl boot_stack_top
boot_stack_top:
