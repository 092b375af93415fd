/* clock.h: the monotonic nanosecond clock (TSC, calibrated against the PIT at boot). */
#ifndef ARCH_CLOCK_H
#define ARCH_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define PIT_HZ 1193182

/*
 * Calibrates the TSC and the local APIC timer against PIT channel 0 over about 5 ms. Without a
 * PIT (e.g. `-M microvm,pit=off`) it falls back to the APIC timer and QEMU's fixed APIC bus
 * rate of 1 GHz.
 */
void clock_init(void);

/* Nanoseconds since clock_init(); 0 before it. Monotonic on every CPU. */
uint64_t clock_now_ns(void);

/* TSC ticks per second as calibrated. */
uint64_t clock_tsc_hz(void);

/* True when calibration used the PIT. */
bool clock_used_pit(void);

/* Busy-waits for ns nanoseconds (interrupts untouched). */
void clock_delay_ns(uint64_t ns);

/*
 * Waits for at least pit_ticks periods of PIT channel 0 (restarting it) while reading the
 * clock: returns the clock's nanoseconds over that window and stores the PIT's own count of
 * it in *pit_ns. Returns 0 without a PIT. For tests that compare the clock with an
 * independent source.
 */
uint64_t clock_measure_pit(uint32_t pit_ticks, uint64_t *pit_ns);

#endif /* ARCH_CLOCK_H */
