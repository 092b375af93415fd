/* setjmp.S: kt_setjmp/kt_longjmp for the kernel (kt_jmp_buf: rbx rbp r12 r13 r14 r15 rsp rip). */

	.text
	.globl kt_setjmp
	.type kt_setjmp, @function
kt_setjmp:
	mov %rbx, 0(%rdi)
	mov %rbp, 8(%rdi)
	mov %r12, 16(%rdi)
	mov %r13, 24(%rdi)
	mov %r14, 32(%rdi)
	mov %r15, 40(%rdi)
	lea 8(%rsp), %rdx		/* the caller's RSP after this call returns */
	mov %rdx, 48(%rdi)
	mov (%rsp), %rdx		/* the return address */
	mov %rdx, 56(%rdi)
	xor %eax, %eax
	ret
	.size kt_setjmp, . - kt_setjmp

	.globl kt_longjmp
	.type kt_longjmp, @function
kt_longjmp:
	mov %esi, %eax
	test %eax, %eax
	jnz 1f
	inc %eax			/* longjmp(buf, 0) makes setjmp return 1 */
1:	mov 0(%rdi), %rbx
	mov 8(%rdi), %rbp
	mov 16(%rdi), %r12
	mov 24(%rdi), %r13
	mov 32(%rdi), %r14
	mov 40(%rdi), %r15
	mov 48(%rdi), %rsp
	jmp *56(%rdi)
	.size kt_longjmp, . - kt_longjmp
