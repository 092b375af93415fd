/* host.c: the globals a host writes and reads from outside, and where the kernel sees them. */
#include <stdint.h>

#include <arch/paging.h>
#include <kern/host.h>
#include <kt/ktest.h>

volatile uint64_t demo_mailbox;
volatile uint64_t demo_mailbox_ack;

static void report(const char *name, uint64_t va)
{
	uint64_t pa;

	if (paging_translate(va, &pa, NULL))
		kt_printf("kscope-demo: %s va 0x%lx is not mapped\n", name, va);
	else
		kt_printf("kscope-demo: %s va 0x%lx pa 0x%lx\n", name, va, pa);
}

void host_report_addresses(void)
{
	uint64_t pa;

	report("kt_state", (uint64_t)&kt_state);
	report("demo_mailbox", (uint64_t)&demo_mailbox);
	report("demo_mailbox_ack", (uint64_t)&demo_mailbox_ack);
	/* The same bytes through another PML4 entry: the walk has to land on the same page. */
	if (!paging_translate((uint64_t)&kt_state, &pa, NULL))
		report("kt_state@direct_map", (uint64_t)phys_to_virt(pa));
}
