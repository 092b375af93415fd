/* apic.c: local APIC (xAPIC MMIO through the direct map), its timer, IPIs; legacy PIC off. */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/cpu.h>
#include <arch/paging.h>
#include <arch/trap.h>
#include <arch/x86.h>

#define LAPIC_ID 0x020
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0

#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define ICR_PENDING (1u << 12)
#define TIMER_DIV_16 0x3

static volatile uint32_t *lapic;
static uint64_t timer_hz;

static inline uint32_t lapic_read(uint32_t reg)
{
	return lapic[reg / 4];
}

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	lapic[reg / 4] = v;
}

static void timer_irq(struct trap_frame *f)
{
	(void)f;
	this_cpu()->ticks++;
	lapic_eoi();
}

/* Spurious interrupts (APIC or PIC) need no EOI. */
static void spurious_irq(struct trap_frame *f)
{
	(void)f;
}

/* Remaps the 8259 PICs away from the exception vectors, then masks every line: with the
 * firmware's virtual-wire setup their IRQs would otherwise arrive as exceptions. */
static void pic_disable(void)
{
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, VEC_PIC_BASE);
	outb(0xa1, VEC_PIC_BASE + 8);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	for (unsigned int v = VEC_PIC_BASE; v < VEC_PIC_BASE + 16; v++)
		irq_set_handler(v, spurious_irq);
}

void lapic_init(void)
{
	if (!lapic) {
		uint64_t base = rdmsr(MSR_APIC_BASE) & 0xffffff000ull;
		lapic = phys_to_virt(base);
		pic_disable();
		irq_set_handler(VEC_TIMER, timer_irq);
		irq_set_handler(VEC_SPURIOUS, spurious_irq);
	}
	wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | (1u << 11)); /* global enable */
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);              /* software enable */
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

void lapic_send_icr(uint32_t dest, uint32_t cmd)
{
	/* The two writes must not be split by an interrupt that sends an IPI itself. */
	uint64_t flags = irq_save();

	lapic_write(LAPIC_ICR_HI, dest << 24);
	lapic_write(LAPIC_ICR_LO, cmd);
	while (lapic_read(LAPIC_ICR_LO) & ICR_PENDING)
		cpu_relax();
	irq_restore(flags);
}

void lapic_send_ipi(uint32_t apic_id, uint32_t vector)
{
	lapic_send_icr(apic_id, vector & 0xff); /* fixed delivery, physical destination */
}

void lapic_timer_free_run(void)
{
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
}

uint32_t lapic_timer_count(void)
{
	return lapic_read(LAPIC_TIMER_CUR);
}

void lapic_timer_start(unsigned int hz)
{
	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, (uint32_t)(timer_hz / hz));
}

void lapic_timer_stop(void)
{
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 0);
}

bool lapic_timer_running(void)
{
	uint32_t lvt = lapic_read(LAPIC_LVT_TIMER);

	return !(lvt & LVT_MASKED) && (lvt & LVT_PERIODIC) && lapic_read(LAPIC_TIMER_INIT) != 0;
}

uint64_t lapic_timer_hz(void)
{
	return timer_hz;
}

void lapic_set_timer_hz(uint64_t hz)
{
	timer_hz = hz;
}
