/* ksyms.c: looks addresses up in the symbol table that the second link adds (ksyms.py). */
#include <stddef.h>
#include <stdint.h>

#include <arch/ksyms.h>

/* Weak: the first link has no table (all NULL); the second fills them without moving any
 * symbol, since the table is placed after everything else. */
extern const uint64_t ksyms_count __attribute__((weak));
extern const uint64_t ksyms_addrs[] __attribute__((weak));
extern const char *const ksyms_names[] __attribute__((weak));
extern char _text_start[], _text_end[];

const char *ksyms_lookup(uint64_t addr, uint64_t *offset)
{
	if (!&ksyms_count || ksyms_count == 0 || addr < (uint64_t)_text_start ||
	    addr >= (uint64_t)_text_end || addr < ksyms_addrs[0])
		return NULL;
	/* The last symbol at or below addr. */
	uint64_t lo = 0, hi = ksyms_count - 1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		if (ksyms_addrs[mid] <= addr)
			lo = mid;
		else
			hi = mid - 1;
	}
	*offset = addr - ksyms_addrs[lo];
	return ksyms_names[lo];
}
