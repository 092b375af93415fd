/* trap.c: the IDT, dispatch of exceptions and interrupts, expected-fault recovery. */
#include <stdint.h>

#include <arch/cpu.h>
#include <arch/layout.h>
#include <arch/syscall.h>
#include <arch/trap.h>
#include <arch/x86.h>

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type; /* P | DPL | interrupt gate (0xe): IF is cleared on entry */
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
} __attribute__((packed));

extern char isr_stubs[]; /* entry.S: 256 stubs of 16 bytes */

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_t irq_handlers[256];

static const char *const exception_names[32] = {
	"#DE Divide Error",
	"#DB Debug",
	"NMI Non-Maskable Interrupt",
	"#BP Breakpoint",
	"#OF Overflow",
	"#BR Bound Range Exceeded",
	"#UD Invalid Opcode",
	"#NM Device Not Available",
	"#DF Double Fault",
	"Coprocessor Segment Overrun",
	"#TS Invalid TSS",
	"#NP Segment Not Present",
	"#SS Stack-Segment Fault",
	"#GP General Protection",
	"#PF Page Fault",
	"Reserved (15)",
	"#MF x87 Floating-Point Error",
	"#AC Alignment Check",
	"#MC Machine Check",
	"#XM SIMD Floating-Point Exception",
	"#VE Virtualization Exception",
	"#CP Control Protection",
	"Reserved (22)",
	"Reserved (23)",
	"Reserved (24)",
	"Reserved (25)",
	"Reserved (26)",
	"Reserved (27)",
	"#HV Hypervisor Injection",
	"#VC VMM Communication",
	"#SX Security Exception",
	"Reserved (31)",
};

const char *trap_name(unsigned int vec)
{
	return vec < 32 ? exception_names[vec] : "interrupt";
}

static void idt_set(unsigned int vec, uint64_t handler, unsigned int ist)
{
	idt[vec] = (struct idt_gate){
		.off_lo = handler & 0xffff,
		.sel = SEL_KCODE,
		.ist = ist,
		.type = 0x8e,
		.off_mid = (handler >> 16) & 0xffff,
		.off_hi = handler >> 32,
	};
}

void trap_init(void)
{
	for (unsigned int v = 0; v < 256; v++)
		idt_set(v, (uint64_t)isr_stubs + 16 * v, 0);
	/* A double fault often means a broken stack; an NMI may arrive anywhere. */
	idt[VEC_DF].ist = IST_DOUBLE_FAULT;
	idt[2].ist = IST_NMI;
}

void trap_load_idt(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) ptr = { sizeof(idt) - 1, (uint64_t)idt };

	__asm__ volatile("lidt %0" : : "m"(ptr));
}

void irq_set_handler(unsigned int vec, irq_handler_t h)
{
	if (vec >= 32 && vec < 256)
		__atomic_store_n(&irq_handlers[vec], h, __ATOMIC_RELEASE);
}

void trap_catch_arm(struct trap_catch *c)
{
	struct percpu *cpu = this_cpu();

	c->rflags = read_rflags();
	c->vector = -1;
	c->error = c->cr2 = c->rip = 0;
	c->prev = cpu->catch;
	cpu->catch = c;
}

void trap_catch_disarm(struct trap_catch *c)
{
	struct percpu *cpu = this_cpu();

	if (cpu->catch != c)
		panic("trap_catch_disarm: %p is not the innermost armed record", (void *)c);
	cpu->catch = c->prev;
}

bool trap_run_catching(void (*fn)(void *arg), void *arg, struct trap_catch *c)
{
	if (TRAP_TRY(c)) {
		fn(arg);
		trap_catch_disarm(c);
		return false;
	}
	return true;
}

/* An exception in ring 0 with a record armed: record it and go back to TRAP_TRY. */
static void trap_catch_take(const struct trap_frame *f)
{
	struct percpu *cpu = this_cpu();
	struct trap_catch *c = cpu->catch;

	if (!c || f->vector == 2 || f->vector == VEC_DF || f->vector == 18)
		return;
	cpu->catch = c->prev;
	c->vector = (int)f->vector;
	c->error = f->error;
	c->cr2 = f->vector == VEC_PF ? read_cr2() : 0;
	c->rip = f->rip;
	/* The handler runs with IF clear; give back the state of the moment of arming. */
	irq_restore(c->rflags);
	kt_longjmp(c->jmp, 1);
}

static void irq_dispatch(struct trap_frame *f)
{
	irq_handler_t h = __atomic_load_n(&irq_handlers[f->vector], __ATOMIC_ACQUIRE);

	if (h)
		h(f);
	else
		panic_trap(f);
}

void trap_dispatch(struct trap_frame *f)
{
	if (f->vector >= 32) {
		irq_dispatch(f);
		return;
	}
	if (f->vector == 2 && panic_in_progress())
		cpu_halt_forever(); /* stopped by the panicking CPU */
	if ((f->cs & 3) == 3)
		user_fault(f);
	trap_catch_take(f);
	panic_trap(f);
}
