/* smp.c: AP bring-up with INIT-SIPI-SIPI, the AP idle loop, running work on other CPUs. */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/clock.h>
#include <arch/cpu.h>
#include <arch/fwcfg.h>
#include <arch/layout.h>
#include <arch/paging.h>
#include <arch/smp.h>
#include <arch/trap.h>
#include <arch/x86.h>
#include <kern/errno.h>
#include <kern/string.h>
#include <kt/ktest.h>

#define ICR_INIT_ALL_BUT_SELF 0x000c4500 /* INIT, level assert, shorthand all-but-self */
#define ICR_SIPI_ALL_BUT_SELF 0x000c4600 /* start-up; the vector is the page number */
#define AP_WAIT_NS 1000000000ull

extern char tramp_start[], tramp_end[], tramp_cr3[], tramp_efer[], tramp_entry[];
extern char ap_entry64[];

/* Read by ap_entry64 (entry.S). */
volatile uint32_t ap_next_index = 1;
uint32_t ap_index_limit;
uint64_t ap_stack_tops[MAX_CPUS];

static unsigned int expected_cpus = 1;
static volatile uint32_t online_cpus = 1;

static void call_irq(struct trap_frame *f)
{
	(void)f;
	lapic_eoi(); /* only wakes the AP from hlt: the idle loop runs the work */
}

static void ping_irq(struct trap_frame *f)
{
	(void)f;
	this_cpu()->pings++;
	lapic_eoi();
}

unsigned int smp_cpu_count(void)
{
	return online_cpus;
}

unsigned int smp_expected_cpus(void)
{
	return expected_cpus;
}

/* Copies the start-up code below 1 MiB and fills in its parameters. */
static void tramp_install(void)
{
	uint8_t *t = phys_to_virt(TRAMP_BASE);

	memcpy(t, tramp_start, (size_t)(tramp_end - tramp_start));
	*(uint64_t *)(t + (tramp_entry - tramp_start)) = (uint64_t)ap_entry64;
	*(uint32_t *)(t + (tramp_cr3 - tramp_start)) = (uint32_t)read_cr3();
	*(uint32_t *)(t + (tramp_efer - tramp_start)) =
		EFER_LME | (uint32_t)(rdmsr(MSR_EFER) & EFER_NXE);
}

void smp_init(void)
{
	unsigned int n = fwcfg_cpu_count();

	irq_set_handler(VEC_CALL, call_irq);
	irq_set_handler(VEC_PING, ping_irq);
	expected_cpus = n == 0 ? 1 : n > MAX_CPUS ? MAX_CPUS : n;
	if (expected_cpus == 1)
		return;
	for (unsigned int i = 1; i < expected_cpus; i++)
		ap_stack_tops[i] = cpu_alloc_stack(STACK_SIZE);
	ap_index_limit = expected_cpus;
	tramp_install();

	/* Broadcast: every AP (whatever its APIC id) starts; each takes the next index. */
	lapic_send_icr(0, ICR_INIT_ALL_BUT_SELF);
	clock_delay_ns(10000000);
	lapic_send_icr(0, ICR_SIPI_ALL_BUT_SELF | (TRAMP_BASE >> 12));
	clock_delay_ns(200000);
	if (online_cpus < expected_cpus)
		lapic_send_icr(0, ICR_SIPI_ALL_BUT_SELF | (TRAMP_BASE >> 12));
	uint64_t deadline = clock_now_ns() + AP_WAIT_NS;
	while (online_cpus < expected_cpus && clock_now_ns() < deadline)
		cpu_relax();
	if (online_cpus < expected_cpus)
		kt_printf("smp: only %u of %u CPUs came up\n", online_cpus, expected_cpus);
}

/* Idle: wait with `sti; hlt` (no busy polling: TCG would give it host CPU time). IF is off
 * while checking so a wake-up IPI between the check and hlt is not lost. */
__attribute__((noreturn)) static void ap_idle(struct percpu *c)
{
	for (;;) {
		irq_disable();
		void (*fn)(void *) = __atomic_load_n(&c->call_fn, __ATOMIC_ACQUIRE);
		if (fn) {
			irq_enable();
			fn(c->call_arg);
			__atomic_store_n(&c->call_fn, NULL, __ATOMIC_RELEASE);
			continue;
		}
		sti_hlt();
	}
}

void smp_ap_main(uint32_t index)
{
	struct percpu *c = cpu_get(index);

	c->self = c;
	c->index = index;
	wrmsr(MSR_GS_BASE, (uint64_t)c);
	cpu_setup(c);
	c->online = 1;
	__atomic_add_fetch(&online_cpus, 1, __ATOMIC_SEQ_CST);
	ap_idle(c);
}

/* Hands fn to an AP once it is idle, and wakes it. */
static void post(struct percpu *c, void (*fn)(void *), void *arg)
{
	while (__atomic_load_n(&c->call_fn, __ATOMIC_ACQUIRE))
		cpu_relax();
	c->call_arg = arg;
	__atomic_store_n(&c->call_fn, fn, __ATOMIC_RELEASE);
	lapic_send_ipi(c->apic_id, VEC_CALL);
}

static void wait_done(struct percpu *c)
{
	while (__atomic_load_n(&c->call_fn, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static bool cpu_is_online(unsigned int cpu)
{
	struct percpu *c = cpu_get(cpu);
	return c && c->online;
}

int smp_call_on(unsigned int cpu, void (*fn)(void *arg), void *arg)
{
	if (!cpu_is_online(cpu))
		return -EINVAL;
	if (cpu == this_cpu()->index) {
		fn(arg);
		return 0;
	}
	if (this_cpu()->index != 0)
		return -EINVAL;
	post(cpu_get(cpu), fn, arg);
	wait_done(cpu_get(cpu));
	return 0;
}

int smp_call_all(void (*fn)(void *arg), void *arg)
{
	if (this_cpu()->index != 0)
		return -EINVAL;
	for (unsigned int i = 1; i < MAX_CPUS; i++)
		if (cpu_is_online(i))
			post(cpu_get(i), fn, arg);
	fn(arg);
	for (unsigned int i = 1; i < MAX_CPUS; i++)
		if (cpu_is_online(i))
			wait_done(cpu_get(i));
	return 0;
}

static void flush_one(void *arg)
{
	invlpg(*(const uint64_t *)arg);
}

void smp_flush_tlb_others(uint64_t va)
{
	if (this_cpu()->index != 0 || online_cpus == 1)
		return;
	for (unsigned int i = 1; i < MAX_CPUS; i++)
		if (cpu_is_online(i))
			post(cpu_get(i), flush_one, &va);
	for (unsigned int i = 1; i < MAX_CPUS; i++)
		if (cpu_is_online(i))
			wait_done(cpu_get(i));
}
