/* leftovers.c: nothing of a test's VMs may remain: no /dev/shm file, no runtime directory. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "leftovers.h"

void expect_no_leftovers(const char *base)
{
	char prefix[64];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	snprintf(prefix, sizeof(prefix), "kscope-%d-", (int)getpid());
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			fail_msg("/dev/shm/%s left behind", e->d_name);
	if (d)
		closedir(d);
	if (rmdir(base) < 0)
		fail_msg("%s not empty: a runtime directory was left behind", base);
}
