/* types.h: guest address types used across libkscope. */
#ifndef KSCOPE_TYPES_H
#define KSCOPE_TYPES_H

#include <stdint.h>

typedef uint64_t ks_gva_t; /* guest virtual address */
typedef uint64_t ks_gpa_t; /* guest physical address */

/*
 * Reads len bytes of guest virtual memory at gva into buf. Returns 0, or a negative errno
 * (-EFAULT for an address that does not translate).
 */
typedef int (*ks_read_gva_fn)(void *ctx, ks_gva_t gva, void *buf, size_t len);

#endif
