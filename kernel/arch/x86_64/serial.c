/* serial.c: 16550 UART driver: COM1 console behind a lock (kt_arch_write), COM2 for tests. */
#include <stddef.h>

#include <arch/cpu.h>
#include <arch/serial.h>
#include <arch/spinlock.h>
#include <arch/x86.h>
#include <kern/errno.h>
#include <kt/ktest.h>

#define UART_DATA 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_SCR 7
#define LSR_THRE 0x20

/* One lock per port so that lines written by different CPUs never interleave. */
static spinlock_t com1_lock = SPINLOCK_INIT;
static spinlock_t com2_lock = SPINLOCK_INIT;
static volatile int com1_owner = -1; /* CPU index holding com1_lock, for the panic path */
static bool com2_found;

bool serial_probe(unsigned int port)
{
	/* A missing port reads as 0xff whatever was written. */
	outb(port + UART_SCR, 0x5a);
	if (inb(port + UART_SCR) != 0x5a)
		return false;
	outb(port + UART_SCR, 0xa5);
	return inb(port + UART_SCR) == 0xa5;
}

static void uart_init(unsigned int port)
{
	outb(port + UART_IER, 0x00);  /* polled: no interrupts */
	outb(port + UART_LCR, 0x80);  /* DLAB: set the divisor */
	outb(port + UART_DATA, 0x01); /* 115200 baud */
	outb(port + UART_IER, 0x00);
	outb(port + UART_LCR, 0x03);  /* 8N1 */
	outb(port + UART_FCR, 0x07);  /* FIFOs on and cleared */
	outb(port + UART_MCR, 0x03);  /* DTR, RTS */
}

static void uart_write(unsigned int port, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		while (!(inb(port + UART_LSR) & LSR_THRE))
			cpu_relax();
		outb(port + UART_DATA, (uint8_t)s[i]);
	}
}

void serial_init(void)
{
	uart_init(COM1_PORT);
	com2_found = serial_probe(COM2_PORT);
	if (com2_found)
		uart_init(COM2_PORT);
}

bool serial_com2_present(void)
{
	return com2_found;
}

int serial_com2_write(const char *s, size_t n)
{
	if (!com2_found)
		return -ENODEV;
	uint64_t flags = spin_lock_irqsave(&com2_lock);
	uart_write(COM2_PORT, s, n);
	spin_unlock_irqrestore(&com2_lock, flags);
	return 0;
}

void kt_arch_write(const char *s, size_t n)
{
	uint64_t flags = spin_lock_irqsave(&com1_lock);
	com1_owner = (int)this_cpu()->index;
	uart_write(COM1_PORT, s, n);
	com1_owner = -1;
	spin_unlock_irqrestore(&com1_lock, flags);
}

void serial_panic_write(const char *s, size_t n)
{
	bool locked = false;

	/* Not when this CPU faulted inside kt_arch_write: it would wait for itself. */
	if (com1_owner != (int)this_cpu()->index) {
		for (int i = 0; i < 1000000 && !locked; i++) {
			locked = spin_trylock(&com1_lock);
			if (!locked)
				cpu_relax();
		}
	}
	uart_write(COM1_PORT, s, n);
	if (locked)
		spin_unlock(&com1_lock);
}
