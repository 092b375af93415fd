/* host.h: what the demo kernel offers a host that reads and writes it from outside. */
#ifndef KERN_HOST_H
#define KERN_HOST_H

#include <stdint.h>

/* The values the example_host cases wait for (ASCII "kscope" and "USERSPAC" as integers). */
#define DEMO_MAILBOX_MAGIC 0x6b73636f7065ull
#define DEMO_SPIN_MAGIC 0x5553455253504143ull

/*
 * example_host.mailbox clears both, prints "# mailbox: waiting" and waits for the host to
 * write a non-zero value into demo_mailbox; it then sets demo_mailbox_ack to that value + 1
 * before printing it. Plain globals (in .bss) so that the host finds them by symbol.
 */
extern volatile uint64_t demo_mailbox;
extern volatile uint64_t demo_mailbox_ack;

/*
 * Prints "kscope-demo: <name> va 0x<hex> pa 0x<hex>", one line per object (kt_state,
 * demo_mailbox, demo_mailbox_ack, and kt_state@direct_map: kt_state's page through the direct
 * map), each translated by the kernel's own page-table walk, for the host to check its own.
 */
void host_report_addresses(void);

#endif /* KERN_HOST_H */
