/* user.S: the ring-3 programs, position-independent; syscall.c copies them to USER_CODE_VA. */
#include <arch/layout.h>
#include <arch/syscall.h>

#define EFAULT 14

.macro EXIT_WITH reg
	mov \reg, %rdi
	mov $SYS_EXIT, %eax
	syscall
	ud2				/* exit does not return */
.endm

/* Compares reg with val; on a difference exits with n. RCX and R11 are scratch (SYSCALL
 * clobbers them anyway). */
.macro CHECK reg, val, n
	movabs $\val, %rcx
	mov $\n, %r11d
	cmp %rcx, \reg
	jne regs_bad
.endm

	.section .rodata.user, "a"
	.balign 16
	.globl user_blob_start
user_blob_start:

	.globl user_prog_hello
user_prog_hello:
	lea hello_msg(%rip), %rdi
	mov $(hello_msg_end - hello_msg), %esi
	mov $SYS_WRITE, %eax
	syscall
	mov $SYS_GETCPU, %eax
	syscall
	mov $40, %edi
	mov $2, %esi
	mov $SYS_ADD, %eax
	syscall
	EXIT_WITH %rax

	.globl user_prog_getcpu
user_prog_getcpu:
	mov $SYS_GETCPU, %eax
	syscall
	EXIT_WITH %rax

	.globl user_prog_add
user_prog_add:
	mov %rdi, %rsi
	mov $SYS_ADD, %eax
	syscall
	EXIT_WITH %rax

/* arg = a kernel address. Each bad buffer must give -EFAULT; the exit code names the first
 * that did not. */
	.globl user_prog_efault
user_prog_efault:
	mov %rdi, %rbx
	mov %rbx, %rdi			/* 1: a kernel address */
	mov $8, %esi
	mov $SYS_WRITE, %eax
	syscall
	mov $1, %r12d
	cmp $-EFAULT, %rax
	jne 1f
	mov $0x1000, %edi		/* 2: an unmapped user page */
	mov $4, %esi
	mov $SYS_WRITE, %eax
	syscall
	mov $2, %r12d
	cmp $-EFAULT, %rax
	jne 1f
	movabs $0x8000000000000000, %rdi	/* 3: non-canonical */
	mov $4, %esi
	mov $SYS_WRITE, %eax
	syscall
	mov $3, %r12d
	cmp $-EFAULT, %rax
	jne 1f
	movabs $0x7ffffffffff8, %rdi	/* 4: runs off the end of user space */
	mov $16, %esi
	mov $SYS_WRITE, %eax
	syscall
	mov $4, %r12d
	cmp $-EFAULT, %rax
	jne 1f
	mov $(USER_CODE_VA + PAGE_SIZE - 8), %edi	/* 5: runs off the code page */
	mov $16, %esi
	mov $SYS_WRITE, %eax
	syscall
	mov $5, %r12d
	cmp $-EFAULT, %rax
	jne 1f
	xor %r12d, %r12d
1:	EXIT_WITH %r12

/* arg = a kernel address: reading it from ring 3 must fault. */
	.globl user_prog_kread
user_prog_kread:
	mov (%rdi), %rax
	mov $0x77, %eax
	EXIT_WITH %rax

/* cli is privileged at IOPL 0: #GP. */
	.globl user_prog_priv
user_prog_priv:
	cli
	mov $0x77, %eax
	EXIT_WITH %rax

/* Fills the registers with patterns, makes a syscall, checks them (and the stack) after. */
	.globl user_prog_regs
user_prog_regs:
	pushq $0x5a5a
	movabs $0x1111111111111111, %rbx
	movabs $0x2222222222222222, %rbp
	movabs $0x3333333333333333, %r12
	movabs $0x4444444444444444, %r13
	movabs $0x5555555555555555, %r14
	movabs $0x6666666666666666, %r15
	movabs $0x7777777777777777, %rdi
	movabs $0x8888888888888888, %rsi
	movabs $0x9999999999999999, %rdx
	movabs $0xaaaaaaaaaaaaaaaa, %r8
	movabs $0xbbbbbbbbbbbbbbbb, %r9
	movabs $0xcccccccccccccccc, %r10
	mov $SYS_GETCPU, %eax
	syscall
	CHECK %rbx, 0x1111111111111111, 1
	CHECK %rbp, 0x2222222222222222, 2
	CHECK %r12, 0x3333333333333333, 3
	CHECK %r13, 0x4444444444444444, 4
	CHECK %r14, 0x5555555555555555, 5
	CHECK %r15, 0x6666666666666666, 6
	CHECK %rdi, 0x7777777777777777, 7
	CHECK %rsi, 0x8888888888888888, 8
	CHECK %rdx, 0x9999999999999999, 9
	CHECK %r8, 0xaaaaaaaaaaaaaaaa, 10
	CHECK %r9, 0xbbbbbbbbbbbbbbbb, 11
	CHECK %r10, 0xcccccccccccccccc, 12
	pop %rax
	mov $13, %r11d
	cmp $0x5a5a, %rax
	jne regs_bad
	xor %r11d, %r11d
regs_bad:
	EXIT_WITH %r11

	.globl user_prog_badsys
user_prog_badsys:
	mov %rdi, %rax
	syscall
	EXIT_WITH %rax

/* arg = a TSC deadline. Waits for the host to write the flag (the first quadword of the data
 * page) without leaving ring 3; exits with the flag, or with 0 once the TSC passes arg. */
	.globl user_prog_spin
user_prog_spin:
	mov %rdi, %rbx
	mov $USER_DATA_VA, %r12d
1:	mov (%r12), %rax
	test %rax, %rax
	jnz 2f
	pause
	rdtsc
	shl $32, %rdx
	or %rdx, %rax
	cmp %rbx, %rax
	jb 1b
	xor %eax, %eax
2:	EXIT_WITH %rax

hello_msg:
	.ascii "hello from ring 3\n"
hello_msg_end:

	.balign 16
	.globl user_blob_end
user_blob_end:
