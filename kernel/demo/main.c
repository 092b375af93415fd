/* main.c: runs the kt_ tests once the arch has brought every subsystem up, then exits QEMU. */
#include <kscope/kt_abi.h>
#include <arch/trap.h>
#include <kern/host.h>
#include <kern/kmain.h>
#include <kt/ktest.h>

static const char *kmain_args = "";

const char *kmain_cmdline(void)
{
	return kmain_args;
}

void kmain(const char *cmdline)
{
	struct kt_summary sum;

	kmain_args = cmdline;
	host_report_addresses();
	kt_run(cmdline, &sum);
	/* kt.list runs nothing and fails nothing: KT_EXIT_PASS. */
	arch_exit(sum.fail ? KT_EXIT_FAIL : KT_EXIT_PASS);
}
