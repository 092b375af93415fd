/* entry.S: interrupt and exception stubs, the syscall entry, ring-3 entry, the AP's 64-bit entry. */
#include <arch/cpu.h>
#include <arch/layout.h>

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || (v) == 13 || \
		      (v) == 14 || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

/*
 * One 16-byte stub per vector at isr_stubs + 16 * vector: push a zero error code where the
 * CPU pushes none, push the vector, go to the common path.
 */
	.text
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.if !HAS_ERROR(vec)
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	/* Pads to the next stub; fails to assemble if a stub outgrew 16 bytes. */
	.org isr_stubs + 16 * (vec + 1), 0xcc
	.set vec, vec + 1
	.endr

/*
 * Saves the general registers as struct trap_frame and calls trap_dispatch(frame). From ring 3
 * (CS RPL 3) swapgs on the way in and out so GS always holds the per-CPU base in the kernel.
 * The frame is 22 quadwords on a 16-byte aligned stack: the call is ABI-aligned.
 */
isr_common:
	testb $3, 24(%rsp)
	jz 1f
	swapgs
1:	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld
	mov %rsp, %rdi
	call trap_dispatch
	.globl isr_return
isr_return:
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	testb $3, 24(%rsp)
	jz 2f
	swapgs
2:	add $16, %rsp
	iretq

/*
 * SYSCALL: RCX = user RIP, R11 = user RFLAGS, IF cleared by SFMASK. Switch to the per-CPU
 * kernel stack, keep every register but RAX (the result), RCX and R11 (which SYSCALL itself
 * clobbers), and call syscall_dispatch(nr, a0, a1, a2).
 */
	.globl syscall_entry
syscall_entry:
	swapgs
	mov %rsp, %gs:PCPU_USER_RSP
	mov %gs:PCPU_KSTACK, %rsp
	pushq %gs:PCPU_USER_RSP
	push %rcx
	push %r11
	push %rdi
	push %rsi
	push %rdx
	push %r8
	push %r9
	push %r10
	push %rbp
	xor %ebp, %ebp
	mov %rdx, %rcx
	mov %rsi, %rdx
	mov %rdi, %rsi
	mov %rax, %rdi
	call syscall_dispatch
	.globl syscall_return
syscall_return:
	pop %rbp
	pop %r10
	pop %r9
	pop %r8
	pop %rdx
	pop %rsi
	pop %rdi
	pop %r11
	pop %rcx
	pop %rsp
	swapgs
	sysretq

/*
 * user_enter(rip, rsp, arg): first entry into ring 3 with SYSRET (user CS/SS from STAR),
 * RFLAGS = IF, arg in RDI and every other register cleared. Does not return: the task comes
 * back through SYS_EXIT or a fault, which longjmp to user_run().
 */
	.globl user_enter
user_enter:
	cli
	mov %rdi, %rcx
	mov %rsi, %rax
	mov %rdx, %rdi
	mov $0x202, %r11d
	xor %ebx, %ebx
	xor %edx, %edx
	xor %esi, %esi
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	mov %rax, %rsp
	xor %eax, %eax
	swapgs
	sysretq

/*
 * The APs arrive here from the start-up code (in long mode, on the boot page tables). Each
 * takes the next CPU index, the stack smp_init() prepared for it, and enters C.
 */
	.globl ap_entry64
ap_entry64:
	mov $1, %eax
	lock xadd %eax, ap_next_index(%rip)
	cmp ap_index_limit(%rip), %eax
	jae 2f
	mov %eax, %edi
	lea ap_stack_tops(%rip), %rdx
	mov (%rdx, %rdi, 8), %rsp
	xor %ebp, %ebp
	call smp_ap_main
2:	cli
	hlt
	jmp 2b

/* call_on_stack(stack_top, fn, arg): fn(arg) on another stack, for good (no return). */
	.globl call_on_stack
call_on_stack:
	mov %rdi, %rsp
	xor %ebp, %ebp
	mov %rdx, %rdi
	call *%rsi
	ud2
