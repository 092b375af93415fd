/* floor.S: the boot-time floor kernel: its first instructions exit QEMU with KT_EXIT_PASS. */
#include <kscope/kt_abi.h>

	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long 18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long floor_start
	.balign 4

	.text
	.code32
	.globl floor_start
floor_start:
	mov $KT_EXIT_PASS, %al
	out %al, $0xf4			/* isa-debug-exit */
1:	cli				/* no debug-exit device: stay here */
	hlt
	jmp 1b
