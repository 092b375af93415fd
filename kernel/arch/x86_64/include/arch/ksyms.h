/* ksyms.h: address-to-symbol lookup for panic reports (table generated at link time). */
#ifndef ARCH_KSYMS_H
#define ARCH_KSYMS_H

#include <stdint.h>

/* The text symbol containing addr, with addr's offset from it in *offset; NULL when addr is
 * outside the kernel text or the kernel has no symbol table. */
const char *ksyms_lookup(uint64_t addr, uint64_t *offset);

#endif /* ARCH_KSYMS_H */
