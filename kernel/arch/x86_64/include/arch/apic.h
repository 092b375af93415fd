/* apic.h: the local APIC (xAPIC, through the direct map): EOI, IPIs and the timer. */
#ifndef ARCH_APIC_H
#define ARCH_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_HZ 100 /* periodic timer rate: low, since TCG pays for every interrupt */

/* Enables this CPU's local APIC (spurious vector, LINT0 masked, timer masked). */
void lapic_init(void);

/* This CPU's local APIC id. */
uint32_t lapic_id(void);

/* Signals end of interrupt. */
void lapic_eoi(void);

/* Sends a fixed interrupt with vector to the CPU with apic_id. */
void lapic_send_ipi(uint32_t apic_id, uint32_t vector);

/* Writes the interrupt command register (dest in the high word, command in the low one) and
 * waits until the APIC has sent it. */
void lapic_send_icr(uint32_t dest, uint32_t cmd);

/* Starts the one-shot timer, masked, with the divider at 16 and the largest count; the count
 * then runs down at lapic_timer_hz(). For calibration. */
void lapic_timer_free_run(void);

/* The timer's current count (counts down). */
uint32_t lapic_timer_count(void);

/* Starts the periodic timer at hz interrupts per second on this CPU (vector VEC_TIMER). */
void lapic_timer_start(unsigned int hz);

/* Stops (masks) this CPU's timer. */
void lapic_timer_stop(void);

/* True when this CPU's timer is running periodically and unmasked. */
bool lapic_timer_running(void);

/* Counts per second of the timer after the divide-by-16 (from clock calibration). */
uint64_t lapic_timer_hz(void);

/* Records the calibrated timer rate (called by the clock). */
void lapic_set_timer_hz(uint64_t hz);

#endif /* ARCH_APIC_H */
