/* fwcfg.h: QEMU's fw_cfg device through its I/O ports (0x510 selector, 0x511 data). */
#ifndef ARCH_FWCFG_H
#define ARCH_FWCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FWCFG_SIGNATURE 0x00
#define FWCFG_NB_CPUS 0x05

/* True when the device answers with the "QEMU" signature. */
bool fwcfg_present(void);

/* Reads n bytes of item key into buf. Returns 0, or -ENODEV without the device. */
int fwcfg_read(uint16_t key, void *buf, size_t n);

/* Number of CPUs QEMU started with, or 0 when unknown. */
unsigned int fwcfg_cpu_count(void);

#endif /* ARCH_FWCFG_H */
