/* spinlock.h: test-and-test-and-set spinlocks, optionally with interrupts disabled. */
#ifndef ARCH_SPINLOCK_H
#define ARCH_SPINLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <arch/x86.h>

/*
 * Test-and-test-and-set rather than a ticket lock: under TCG there are often more vCPUs than
 * host cores, and a ticket lock stalls every waiter behind a preempted next-in-line vCPU.
 */
typedef struct {
	volatile uint32_t locked;
} spinlock_t;

#define SPINLOCK_INIT { 0 }

/* Tries once to take the lock; true on success. */
static inline bool spin_trylock(spinlock_t *l)
{
	return !l->locked && !__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE);
}

/* Takes the lock, spinning with `pause` (which lets other vCPUs run under TCG). */
static inline void spin_lock(spinlock_t *l)
{
	while (!spin_trylock(l))
		while (l->locked)
			cpu_relax();
}

/* Releases the lock. */
static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* Disables interrupts, then takes the lock; returns the flags for spin_unlock_irqrestore(). */
static inline uint64_t spin_lock_irqsave(spinlock_t *l)
{
	uint64_t flags = irq_save();
	spin_lock(l);
	return flags;
}

/* Releases the lock and restores the interrupt state saved by spin_lock_irqsave(). */
static inline void spin_unlock_irqrestore(spinlock_t *l, uint64_t flags)
{
	spin_unlock(l);
	irq_restore(flags);
}

#endif /* ARCH_SPINLOCK_H */
