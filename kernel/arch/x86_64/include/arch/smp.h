/* smp.h: secondary CPU bring-up (INIT-SIPI-SIPI) and running work on other CPUs. */
#ifndef ARCH_SMP_H
#define ARCH_SMP_H

#include <stdint.h>

/* Starts every CPU QEMU was given (count from fw_cfg); each AP sets itself up and idles with
 * `sti; hlt` until smp_call_on() gives it work. */
void smp_init(void);

/* CPUs online (the BSP included). */
unsigned int smp_cpu_count(void);

/* CPUs the firmware reported (fw_cfg key 0x05); 1 when it says nothing. */
unsigned int smp_expected_cpus(void);

/*
 * Runs fn(arg) on CPU cpu (an index < smp_cpu_count()) and waits for it to return; on the
 * calling CPU it is a plain call. Only the BSP hands out work to other CPUs (so no lock is
 * needed and fn may itself call these functions on the BSP). Interrupts may be on or off.
 * Returns 0, or -EINVAL for a CPU that is not online or a call from an AP to another CPU.
 */
int smp_call_on(unsigned int cpu, void (*fn)(void *arg), void *arg);

/* Runs fn(arg) on every online CPU at once (the caller too) and waits for all of them.
 * Returns 0, or -EINVAL when called from an AP. */
int smp_call_all(void (*fn)(void *arg), void *arg);

/* Invalidates va in the TLBs of the other online CPUs (from the BSP; elsewhere a no-op). */
void smp_flush_tlb_others(uint64_t va);

/* Entry of an AP in C, from the start-up code, on its own stack. */
__attribute__((noreturn)) void smp_ap_main(uint32_t index);

#endif /* ARCH_SMP_H */
