/* cmdline.h: reading `key=value` options of the kernel command line. */
#ifndef KERN_CMDLINE_H
#define KERN_CMDLINE_H

#include <stdint.h>

/*
 * Finds `key=value` among the space-separated words of cmdline (the last one wins when key
 * is given several times) and stores value, a decimal number, in *val. Returns 0, -ENOENT when
 * key is absent (*val untouched) or -EINVAL when its value is empty, not decimal or does not
 * fit in 64 bits.
 */
int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *val);

#endif /* KERN_CMDLINE_H */
