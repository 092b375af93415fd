/* trampoline.S: AP start-up code, copied to TRAMP_BASE: real mode -> protected -> long mode. */
#include <arch/layout.h>

/* Absolute address of a trampoline label once copied. */
#define T(x) (TRAMP_BASE + (x) - tramp_start)

/*
 * The SIPI starts an AP in real mode at TRAMP_BASE (CS = TRAMP_BASE >> 4, IP = 0). The BSP
 * fills tramp_cr3, tramp_efer and tramp_entry in the copy before sending it.
 */
	.section .rodata.tramp, "a"
	.balign 16
	.globl tramp_start
tramp_start:
	.code16
	cli
	cld
	xor %ax, %ax
	mov %ax, %ds
	lgdtl T(tramp_gdt_ptr)
	mov %cr0, %eax
	or $1, %eax			/* PE */
	mov %eax, %cr0
	ljmpl $0x08, $T(tramp_32)

	.code32
tramp_32:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov T(tramp_cr3), %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx
	rdmsr
	or T(tramp_efer), %eax		/* LME, and NXE when the BSP has it */
	wrmsr
	mov %cr0, %eax
	or $0x80010000, %eax		/* PG | WP */
	mov %eax, %cr0
	ljmp $0x18, $T(tramp_64)

	.code64
tramp_64:
	mov T(tramp_entry), %rax
	jmp *%rax

	.balign 8
	.globl tramp_cr3, tramp_efer, tramp_entry
tramp_entry:
	.quad 0
tramp_cr3:
	.long 0
tramp_efer:
	.long 0
	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00af9a000000ffff	/* 0x18: 64-bit code */
tramp_gdt_end:
tramp_gdt_ptr:
	.word tramp_gdt_end - tramp_gdt - 1
	.long T(tramp_gdt)
	.globl tramp_end
tramp_end:
