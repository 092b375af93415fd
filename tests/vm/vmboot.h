/* vmboot.h: boot a kernel under QEMU for a test, capture its console, and wait with a timeout. */
#ifndef KSCOPE_TESTS_VMBOOT_H
#define KSCOPE_TESTS_VMBOOT_H

#include <stdbool.h>
#include <stddef.h>

struct vm_result {
	int status;      /* QEMU's exit status; -1 when killed */
	bool timed_out;  /* still running at the deadline, then killed */
	char *out;       /* everything QEMU wrote to stdout and stderr (NUL-terminated) */
	size_t len;
	double seconds;  /* wall time from start to exit or kill */
};

/* True when the QEMU binary ($QEMU or qemu-system-x86_64) can be found. */
bool vm_have_qemu(void);

/* The demo kernel's path ($KSCOPE_DEMO_KERNEL, set by meson). */
const char *vm_demo_kernel(void);

/*
 * Boots `kernel` on microvm under TCG with the demo's standard devices (COM1 on stdout,
 * isa-debug-exit), plus `extra` (NULL-terminated QEMU arguments, may be NULL). Waits at most
 * timeout_s seconds, then kills QEMU. Returns 0 and fills *res (free with vm_result_free), or
 * -1 if QEMU could not be started. QEMU dies with the test process (parent-death signal).
 */
int vm_boot(const char *kernel, const char *const *extra, double timeout_s,
	    struct vm_result *res);

/* Frees what vm_boot() filled. */
void vm_result_free(struct vm_result *res);

#endif
