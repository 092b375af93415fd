/* cmd_version.c: `kscope version`, the version and the kt_ ABI this build speaks. */
#include <stdio.h>

#include <kscope/kt_abi.h>

#include "commands.h"

int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "kscope version: takes no arguments\n");
		return 2;
	}
	printf("kscope %s (kt_ ABI version %d)\n", KSCOPE_VERSION, KT_ABI_VERSION);
	return 0;
}
