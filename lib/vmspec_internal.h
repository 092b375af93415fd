/* vmspec_internal.h: helpers shared by the vmspec setters, validation and config files. */
#ifndef KSCOPE_VMSPEC_INTERNAL_H
#define KSCOPE_VMSPEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/vmspec.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Writes "16 MiB", "3 GiB" or "1 TiB" (the largest unit that divides mib) to buf. */
const char *ks_vmspec_fmt_mib(char *buf, size_t len, uint64_t mib);

/* Checks KS_VMSPEC_MIN_MEMORY_MIB <= mib <= max; what follows "too large" in the message. */
int ks_vmspec_check_memory_range(const char *key, uint64_t mib, uint64_t max,
				 const char *what, struct ks_error *err);

/* Checks the resolved CPU count against the machine's limit and, for accel tcg, the
 * highest APIC id the topology needs. */
int ks_vmspec_check_cpus(const struct ks_vmspec *s, struct ks_error *err);

/* True if the node holds at least one CPU. */
bool ks_vmspec_node_has_cpus(const struct ks_vmspec_numa *n);

/* True if CPU cpu is in the node. */
static inline bool ks_vmspec_node_has_cpu(const struct ks_vmspec_numa *n, unsigned cpu)
{
	return cpu < KS_VMSPEC_MAX_CPUS && (n->cpus[cpu / 64] >> (cpu % 64) & 1);
}

/*
 * Finds the next run of consecutive CPUs in the node, starting at CPU *next: fills *lo and
 * *hi and moves *next past the run. Returns false when there is none.
 */
bool ks_vmspec_next_cpu_range(const struct ks_vmspec_numa *n, unsigned *next, unsigned *lo,
			      unsigned *hi);

#endif
