/* clock.c: TSC-based monotonic clock and APIC timer rate, calibrated against the PIT. */
#include <stdint.h>

#include <arch/apic.h>
#include <arch/clock.h>
#include <arch/x86.h>
#include <kt/ktest.h>

#define CALIBRATE_PIT_TICKS 5966 /* 5 ms */
#define BRACKET_TICKS 60         /* 50 us */
/* Without a PIT: QEMU's APIC timer counts at 1 GHz before the divider (TCG and KVM). */
#define QEMU_APIC_BUS_HZ 1000000000ull

static uint64_t tsc_hz;
static uint64_t tsc_base;
static uint64_t ns_mult; /* nanoseconds per TSC tick, times 2^32 */
static bool used_pit;

/* Channel 0, lobyte/hibyte, mode 0 (interrupt on terminal count: masked anyway), from 0xffff.
 * The count then runs down and wraps, which the readers below tolerate. */
static void pit_start(void)
{
	outb(0x43, 0x30);
	outb(0x40, 0xff);
	outb(0x40, 0xff);
}

static uint16_t pit_read(void)
{
	outb(0x43, 0x00); /* latch channel 0 */
	uint8_t lo = inb(0x40);
	uint8_t hi = inb(0x40);
	return (uint16_t)(lo | hi << 8);
}

/* A missing PIT reads 0xffff forever. */
static bool pit_counts(void)
{
	pit_start();
	uint16_t first = pit_read();
	for (int i = 0; i < 100000; i++)
		if (pit_read() != first)
			return true;
	return false;
}

/*
 * Calls sample() between two PIT reads, again while those lie more than BRACKET_TICKS apart:
 * a vCPU preempted by the host between the PIT and the other clock would skew the pair by
 * milliseconds. Returns the PIT count at the middle of the bracket.
 */
static uint16_t bracketed_sample(void (*sample)(int end, void *ctx), int end, void *ctx)
{
	uint16_t a = 0, b = 0;

	for (int i = 0; i < 100; i++) {
		a = pit_read();
		sample(end, ctx);
		b = pit_read();
		if ((uint16_t)(a - b) <= BRACKET_TICKS)
			break;
	}
	return (uint16_t)(a - (uint16_t)(a - b) / 2);
}

/* Waits until at least ticks PIT periods passed; returns how many passed between the two
 * calls of sample() (start and end of the window). */
static uint32_t pit_window(uint32_t ticks, void (*sample)(int end, void *ctx), void *ctx)
{
	uint32_t elapsed = 0;

	pit_start();
	uint16_t last = bracketed_sample(sample, 0, ctx);
	while (elapsed < ticks) {
		uint16_t now = pit_read();
		elapsed += (uint16_t)(last - now);
		last = now;
	}
	uint16_t end = bracketed_sample(sample, 1, ctx);
	return elapsed + (uint16_t)(last - end);
}

struct calib {
	uint64_t tsc[2];
	uint32_t apic[2];
};

static void calib_sample(int end, void *ctx)
{
	struct calib *c = ctx;
	c->tsc[end] = rdtsc();
	c->apic[end] = lapic_timer_count();
}

static void set_tsc_hz(uint64_t hz)
{
	tsc_hz = hz;
	ns_mult = (uint64_t)(((unsigned __int128)1000000000u << 32) / hz);
	tsc_base = rdtsc();
}

void clock_init(void)
{
	struct calib c;

	lapic_timer_free_run();
	if (pit_counts()) {
		uint32_t n = pit_window(CALIBRATE_PIT_TICKS, calib_sample, &c);
		used_pit = true;
		set_tsc_hz((c.tsc[1] - c.tsc[0]) * PIT_HZ / n);
		lapic_set_timer_hz((uint64_t)(c.apic[0] - c.apic[1]) * PIT_HZ / n);
		return;
	}
	/* No PIT: time 5 ms of the APIC timer at QEMU's bus rate, divided by 16. */
	uint64_t apic_hz = QEMU_APIC_BUS_HZ / 16;
	uint32_t want = (uint32_t)(apic_hz / 200);
	calib_sample(0, &c);
	while (c.apic[0] - lapic_timer_count() < want)
		cpu_relax();
	calib_sample(1, &c);
	lapic_set_timer_hz(apic_hz);
	set_tsc_hz((c.tsc[1] - c.tsc[0]) * apic_hz / (c.apic[0] - c.apic[1]));
}

uint64_t clock_now_ns(void)
{
	uint64_t now = rdtsc();

	if (!tsc_hz || now < tsc_base) /* a CPU whose TSC lags the BSP's: clamp */
		return 0;
	return (uint64_t)(((unsigned __int128)(now - tsc_base) * ns_mult) >> 32);
}

uint64_t kt_arch_now_ns(void)
{
	return clock_now_ns();
}

uint64_t clock_tsc_hz(void)
{
	return tsc_hz;
}

bool clock_used_pit(void)
{
	return used_pit;
}

void clock_delay_ns(uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;

	while (clock_now_ns() < end)
		cpu_relax();
}

static void clock_sample(int end, void *ctx)
{
	((uint64_t *)ctx)[end] = clock_now_ns();
}

uint64_t clock_measure_pit(uint32_t pit_ticks, uint64_t *pit_ns)
{
	uint64_t ns[2];

	if (!used_pit)
		return 0;
	uint32_t n = pit_window(pit_ticks, clock_sample, ns);
	*pit_ns = (uint64_t)n * 1000000000u / PIT_HZ;
	return ns[1] - ns[0];
}
