/* panic.c: the panic report (registers, backtrace), stopping the CPUs, telling the host. */
#include <stdarg.h>
#include <stdint.h>

#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/ksyms.h>
#include <arch/layout.h>
#include <arch/paging.h>
#include <arch/serial.h>
#include <arch/smp.h>
#include <arch/trap.h>
#include <arch/x86.h>
#include <kt/ktest.h>

#define PVPANIC_PORT 0x505
#define DEBUG_EXIT_PORT 0xf4
#define BACKTRACE_MAX 16

static volatile int panic_cpu = -1;

bool panic_in_progress(void)
{
	return panic_cpu >= 0;
}

/* Report lines start with "# " so the KTAP on the same port stays valid. */
__attribute__((format(printf, 1, 2))) static void pr(const char *fmt, ...)
{
	char buf[160];
	va_list ap;

	va_start(ap, fmt);
	int n = kt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	serial_panic_write(buf, (size_t)n);
}

/* A frame pointer we can follow without faulting: aligned and mapped (vmap stacks have
 * unmapped guard pages), in the kernel half. */
static bool frame_ok(uint64_t p)
{
	uint64_t pa;

	if (p & 7 || p < DIRECT_MAP_BASE)
		return false;
	return paging_translate(p, &pa, NULL) == 0 && paging_translate(p + 8, &pa, NULL) == 0;
}

/* One backtrace line: the address and, when known, symbol+offset. */
static void pr_addr(const char *prefix, uint64_t addr)
{
	uint64_t off;
	const char *sym = ksyms_lookup(addr, &off);

	if (sym)
		pr("%s0x%016lx <%s+0x%lx>\n", prefix, addr, sym, off);
	else
		pr("%s0x%016lx\n", prefix, addr);
}

static void backtrace(uint64_t rip, uint64_t rbp)
{
	pr("#  backtrace:\n");
	pr_addr("#   ", rip);
	for (int i = 0; i < BACKTRACE_MAX && frame_ok(rbp); i++) {
		const uint64_t *frame = (const uint64_t *)rbp;
		if (!frame[1])
			break;
		pr_addr("#   ", frame[1]);
		if (frame[0] <= rbp) /* stacks grow down: callers' frames are above */
			break;
		rbp = frame[0];
	}
}

/* Claims the panic for this CPU. Another CPU's panic in progress: stop here quietly. */
static void panic_begin(void)
{
	int me = (int)this_cpu()->index;
	int none = -1;

	irq_disable();
	if (!__atomic_compare_exchange_n(&panic_cpu, &none, me, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST)) {
		if (none != me)
			cpu_halt_forever();
		pr("# PANIC: recursive panic on CPU %d\n", me);
		arch_exit(KT_EXIT_PANIC);
	}
}

/* NMIs stop the other CPUs; then pvpanic if present, else isa-debug-exit. */
__attribute__((noreturn)) static void panic_end(void)
{
	if (smp_cpu_count() > 1)
		lapic_send_icr(0, 0x000c0400); /* NMI to all but self */
	uint8_t caps = inb(PVPANIC_PORT);
	if (caps != 0xff && (caps & 1)) {
		pr("# PANIC: reported through pvpanic\n");
		outb(PVPANIC_PORT, 1);
		cpu_halt_forever();
	}
	arch_exit(KT_EXIT_PANIC);
}

void panic_trap(const struct trap_frame *f)
{
	panic_begin();
	pr("# PANIC: CPU %u: %s %lu (%s), error code 0x%lx\n", this_cpu()->index,
	   f->vector < 32 ? "exception" : "unexpected interrupt", f->vector,
	   trap_name((unsigned int)f->vector), f->error);
	pr_addr("#  RIP ", f->rip);
	pr("#  CS  0x%04lx  RFLAGS 0x%08lx\n", f->cs, f->rflags);
	pr("#  RSP 0x%016lx  SS  0x%04lx\n", f->rsp, f->ss);
	pr("#  CR2 0x%016lx  CR3 0x%016lx\n", read_cr2(), read_cr3());
	pr("#  RAX 0x%016lx  RBX 0x%016lx  RCX 0x%016lx\n", f->rax, f->rbx, f->rcx);
	pr("#  RDX 0x%016lx  RSI 0x%016lx  RDI 0x%016lx\n", f->rdx, f->rsi, f->rdi);
	pr("#  RBP 0x%016lx  R8  0x%016lx  R9  0x%016lx\n", f->rbp, f->r8, f->r9);
	pr("#  R10 0x%016lx  R11 0x%016lx  R12 0x%016lx\n", f->r10, f->r11, f->r12);
	pr("#  R13 0x%016lx  R14 0x%016lx  R15 0x%016lx\n", f->r13, f->r14, f->r15);
	backtrace(f->rip, f->rbp);
	KT_MAGIC2(KT_MAGIC_PANIC, f->vector, f->rip);
	panic_end();
}

void panic(const char *fmt, ...)
{
	char msg[128];
	va_list ap;
	uint64_t rip = (uint64_t)__builtin_return_address(0);

	panic_begin();
	va_start(ap, fmt);
	kt_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr("# PANIC: CPU %u: %s\n", this_cpu()->index, msg);
	pr("#  CR3 0x%016lx\n", read_cr3());
	backtrace(rip, *(const uint64_t *)__builtin_frame_address(0));
	KT_MAGIC2(KT_MAGIC_PANIC, PANIC_CAUSE_SOFTWARE, rip);
	panic_end();
}

void arch_exit(unsigned int value)
{
	outb(DEBUG_EXIT_PORT, (uint8_t)value);
	cpu_halt_forever();
}
