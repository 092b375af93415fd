/* cpu.h: per-CPU data (reached through the GS base), per-CPU GDT/TSS, CPU features. */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

/* Offsets into struct percpu used by the assembly entry code. */
#define PCPU_SELF 0
#define PCPU_KSTACK 8
#define PCPU_USER_RSP 16

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <arch/layout.h>

/* The 64-bit task-state segment: the stacks the CPU switches to on entry to ring 0. */
struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iopb;
} __attribute__((packed));

#define IST_DOUBLE_FAULT 1
#define IST_NMI 2

struct trap_catch;
struct user_task;

/* One CPU's private data. GS base points here while in the kernel. */
struct percpu {
	struct percpu *self;  /* PCPU_SELF: %gs:0 yields the struct's address */
	uint64_t kstack_top;  /* PCPU_KSTACK: stack for syscalls and entries from ring 3 */
	uint64_t user_rsp;    /* PCPU_USER_RSP: user RSP while a syscall runs */
	uint32_t index;       /* 0 = the boot CPU, then in order of arrival */
	uint32_t apic_id;
	volatile uint32_t online;
	volatile uint64_t ticks;     /* local APIC timer interrupts taken */
	volatile uint64_t pings;     /* IPI_PING interrupts taken */
	struct trap_catch *catch;    /* innermost armed expected-fault record, or NULL */
	struct user_task *user;      /* the user task running on this CPU, or NULL */
	void (*volatile call_fn)(void *arg); /* work posted by smp_call_on(); NULL when idle */
	void *volatile call_arg;
	uint64_t gdt[7] __attribute__((aligned(16)));
	struct tss tss __attribute__((aligned(16)));
};

_Static_assert(offsetof(struct percpu, self) == PCPU_SELF, "PCPU_SELF");
_Static_assert(offsetof(struct percpu, kstack_top) == PCPU_KSTACK, "PCPU_KSTACK");
_Static_assert(offsetof(struct percpu, user_rsp) == PCPU_USER_RSP, "PCPU_USER_RSP");

/* The current CPU's data. Valid once cpu_early_init() (BSP) or the AP entry has run. */
static inline struct percpu *this_cpu(void)
{
	struct percpu *p;
	__asm__ volatile("mov %%gs:0, %0" : "=r"(p));
	return p;
}

/* Points the BSP's GS base at its per-CPU record; first thing at boot. */
void cpu_early_init(void);

/*
 * Loads c's GDT, TSS (with its double-fault and NMI stacks and the ring-0 stack, taken from
 * the page allocator), the IDT and GS base; enables SMEP/SMAP where the CPU has them and the
 * syscall MSRs. Runs on the CPU c describes. Panics when out of memory.
 */
void cpu_setup(struct percpu *c);

/* The per-CPU record of CPU index (0 .. MAX_CPUS-1), whether or not that CPU is online. */
struct percpu *cpu_get(unsigned int index);

/* True when the CPU supports SMAP and it was enabled (user pages unreadable by the kernel
 * outside copy_from_user()). */
bool cpu_smap_enabled(void);

/* True when the CPU supports the NX bit and EFER.NXE is on. */
bool cpu_nx_enabled(void);

/* Allocates a kernel stack of size bytes (a multiple of the page size) in the vmap area,
 * with an unmapped guard page below it, and returns its top (16-byte aligned); panics when
 * out of memory. */
uint64_t cpu_alloc_stack(size_t size);

/* Switches to the stack whose top is stack_top and calls fn(arg) there; never returns. */
__attribute__((noreturn)) void call_on_stack(uint64_t stack_top, void (*fn)(const char *arg),
					     const char *arg);

#endif /* __ASSEMBLER__ */
#endif /* ARCH_CPU_H */
