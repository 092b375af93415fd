/* kt_arch.h (x86-64): what the kt_ library needs from the architecture. */
#ifndef KT_ARCH_X86_64_H
#define KT_ARCH_X86_64_H

#ifndef __ASSEMBLER__
#include <stdint.h>

/* rbx, rbp, r12-r15, rsp, rip: the callee-saved state of the SysV ABI. */
typedef uint64_t kt_jmp_buf[8];

/* setjmp/longjmp for the kernel (arch/x86_64/setjmp.S). kt_longjmp makes kt_setjmp return
 * val (1 when val is 0). */
__attribute__((returns_twice)) int kt_setjmp(kt_jmp_buf buf);
__attribute__((noreturn)) void kt_longjmp(kt_jmp_buf buf, int val);

/*
 * Magic-instruction message: id in RAX, arguments in RDI and RSI, then `xchg %bx,%bx` (a no-op
 * for the CPU). The site's address goes to the `kt_magic_sites` section for hosts that do not
 * disassemble.
 */
#define KT_ARCH_MAGIC(id, a0, a1)                                                          \
	__asm__ volatile("1: xchg %%bx, %%bx\n\t"                                          \
			 ".pushsection kt_magic_sites, \"a\"\n\t"                          \
			 ".balign 8\n\t"                                                   \
			 ".quad 1b\n\t"                                                    \
			 ".popsection"                                                     \
			 :                                                                 \
			 : "a"((uint64_t)(id)), "D"((uint64_t)(a0)), "S"((uint64_t)(a1))   \
			 : "memory")

#else /* __ASSEMBLER__ */

/* The same message from assembly, usable before any memory or stack exists (clobbers
 * eax/rax, edi/rdi, esi/rsi). Works in 32-bit and 64-bit code. */
.macro KT_MAGIC_ASM id, a0=0, a1=0
	mov $\id, %eax
	mov $\a0, %edi
	mov $\a1, %esi
1: xchg %bx, %bx
	.pushsection kt_magic_sites, "a"
	.balign 8
	.quad 1b
	.popsection
.endm

#endif /* __ASSEMBLER__ */
#endif /* KT_ARCH_X86_64_H */
