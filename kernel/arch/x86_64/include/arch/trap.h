/* trap.h: the IDT, interrupt handlers, expected-fault recovery and the panic report. */
#ifndef ARCH_TRAP_H
#define ARCH_TRAP_H

#include <stdbool.h>
#include <stdint.h>

#include <kt_arch.h>

/* Interrupt vectors the kernel uses besides the 32 exceptions. */
#define VEC_PIC_BASE 0x30 /* the legacy 8259 PICs, remapped here and masked */
#define VEC_TIMER 0x40    /* local APIC timer */
#define VEC_CALL 0xf0     /* IPI: work was posted by smp_call_on() */
#define VEC_PING 0xf1     /* IPI: counts in percpu.pings (for tests) */
#define VEC_SPURIOUS 0xff /* local APIC spurious vector */

/* Exception vectors with a name of their own in tests. */
#define VEC_DE 0
#define VEC_BP 3
#define VEC_UD 6
#define VEC_DF 8
#define VEC_GP 13
#define VEC_PF 14

/* Page-fault error code bits. */
#define PF_PRESENT 0x1
#define PF_WRITE 0x2
#define PF_USER 0x4
#define PF_INSN 0x10

/* What the entry stubs save: general registers, then vector and error code (0 when the CPU
 * pushes none), then the CPU's own interrupt frame. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

/* A handler for an interrupt vector (32..255); it must send the EOI itself. */
typedef void (*irq_handler_t)(struct trap_frame *f);

/* Builds the shared IDT (every vector gets a stub; #DF and NMI use their own IST stacks). */
void trap_init(void);

/* Loads the IDT on this CPU. */
void trap_load_idt(void);

/* Routes vector vec (32..255) to h; NULL makes it unexpected again (a panic). */
void irq_set_handler(unsigned int vec, irq_handler_t h);

/* The exception's mnemonic and name ("#PF Page Fault"), or "interrupt" for vectors >= 32. */
const char *trap_name(unsigned int vec);

/*
 * Expected-fault record. Arm it, run code that may fault, disarm it:
 *
 *   struct trap_catch c;
 *   if (TRAP_TRY(&c)) {
 *           risky();
 *           trap_catch_disarm(&c);
 *   } else {
 *           ... c.vector, c.error, c.cr2, c.rip say what happened ...
 *   }
 *
 * An exception (other than NMI, #DF and #MC) taken in ring 0 on this CPU while a record is
 * armed is recorded there; the handler disarms it, restores the interrupt state of the moment
 * it was armed and longjmps back so TRAP_TRY yields false. Records nest (innermost first).
 */
struct trap_catch {
	kt_jmp_buf jmp;
	struct trap_catch *prev;
	uint64_t rflags; /* when armed */
	int vector;      /* -1 until an exception was caught */
	uint64_t error, cr2, rip;
};

#define TRAP_TRY(c) (trap_catch_arm(c), kt_setjmp((c)->jmp) == 0)

/* Arms c on this CPU (see struct trap_catch). */
void trap_catch_arm(struct trap_catch *c);

/* Disarms c, which must be the innermost armed record of this CPU. */
void trap_catch_disarm(struct trap_catch *c);

/* Runs fn(arg) with c armed. Returns true when it faulted (c says how), false when it
 * returned normally. */
bool trap_run_catching(void (*fn)(void *arg), void *arg, struct trap_catch *c);

/* Called by the entry stubs for every vector. */
void trap_dispatch(struct trap_frame *f);

/* Cause passed in KT_MAGIC_PANIC for a software panic (not an exception vector). */
#define PANIC_CAUSE_SOFTWARE 0x100

/*
 * Reports an unexpected exception or interrupt on COM1 (vector, name, error code, RIP, CR2,
 * CR3, general registers, frame-pointer backtrace), sends KT_MAGIC_PANIC, stops the other
 * CPUs, tells the host (pvpanic, else isa-debug-exit with KT_EXIT_PANIC) and halts.
 */
__attribute__((noreturn)) void panic_trap(const struct trap_frame *f);

/* The same for a kernel bug found in software: prints the message and a backtrace. */
__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

/* True once a panic has started on some CPU (the others stop when they see it). */
bool panic_in_progress(void);

/* Leaves QEMU through isa-debug-exit with value (a KT_EXIT_*); halts if there is no such
 * device. */
__attribute__((noreturn)) void arch_exit(unsigned int value);

#endif /* ARCH_TRAP_H */
