/* serial.h: the 16550 UARTs: COM1 is the console (and KTAP), COM2 a second channel for tests. */
#ifndef ARCH_SERIAL_H
#define ARCH_SERIAL_H

#include <stdbool.h>
#include <stddef.h>

#define COM1_PORT 0x3f8
#define COM2_PORT 0x2f8

/* Initializes COM1 (115200 8N1, FIFOs on, no interrupts) and probes and initializes COM2. */
void serial_init(void);

/* True when a UART answers at port (scratch-register test). */
bool serial_probe(unsigned int port);

/* True when COM2 was found by serial_init(). */
bool serial_com2_present(void);

/* Writes n bytes to COM2. Returns 0, or -ENODEV when there is no COM2. */
int serial_com2_write(const char *s, size_t n);

/* Writes to COM1 for the panic path: takes the console lock if it can within a short time,
 * and writes anyway otherwise (a CPU that died holding it must not silence the report). */
void serial_panic_write(const char *s, size_t n);

#endif /* ARCH_SERIAL_H */
