/* kt_arch.h (host): runs the kt_ library inside a host process for its unit tests. */
#ifndef KT_ARCH_HOST_H
#define KT_ARCH_HOST_H

#include <setjmp.h>
#include <stdint.h>

typedef jmp_buf kt_jmp_buf;
#define kt_setjmp(b) setjmp(b)
#define kt_longjmp(b, v) longjmp((b), (v))

/* Magic messages become calls the test program records. */
void kt_host_magic(uint64_t id, uint64_t a0, uint64_t a1);
#define KT_ARCH_MAGIC(id, a0, a1) kt_host_magic((uint64_t)(id), (uint64_t)(a0), (uint64_t)(a1))

#endif
