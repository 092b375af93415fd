/* sites_internal.h: what sites.c (the ELF side) and sites_x86.c (the capstone side) share. */
#ifndef KSCOPE_SITES_INTERNAL_H
#define KSCOPE_SITES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/sites.h>

/* Bytes of the image at [start, end). */
struct sites_range {
	ks_gva_t start, end;
	const uint8_t *bytes;
	const char *name;
	bool exec;
};

/* A stretch to sweep: from start until end (an instruction may run past end, not past the
 * range). */
struct sites_region {
	ks_gva_t start, end;
	const struct sites_range *range;
	bool code32;
	bool certain;   /* start is known to be an instruction boundary */
	bool data;      /* code in a non-executable section: stop at the first bad byte */
};

struct site_vec {
	struct ks_site *v;
	size_t n, cap;
};

struct ks_sites {
	struct site_vec kind[KS_SITE_KIND_COUNT];
	bool have_section;
	bool has_entry;
	struct ks_syscall_entry entry;
	ks_gva_t elf_entry;
	struct ks_code_range *ranges;
	size_t nranges;
	struct ks_sites_stats st;
	char **names;             /* every string the public structs point to */
	size_t nnames, names_cap;
};

/* Appends a site (merged and sorted later). Returns 0 or -ENOMEM. */
int sites_add(struct ks_sites *s, enum ks_site_kind kind, ks_gva_t addr, unsigned size,
	      unsigned flags);

/* The capstone side: handles, branch targets found by the first pass, wrmsr records. */
struct sites_x86;

/* Opens capstone for 64- and 32-bit code. NULL with err filled on failure. */
struct sites_x86 *sites_x86_new(struct ks_error *err);
void sites_x86_free(struct sites_x86 *x);

/* First pass over rg: collects direct branch targets inside rg's range. 0 or -ENOMEM. */
int sites_x86_targets(struct sites_x86 *x, struct ks_sites *s, const struct sites_region *rg);

/* Sorts the targets; call between the two passes. */
void sites_x86_targets_done(struct sites_x86 *x);

/* Second pass over rg: adds its sites to s, remembers its wrmsr instructions. 0 or -ENOMEM. */
int sites_x86_sweep(struct sites_x86 *x, struct ks_sites *s, const struct sites_region *rg);

/*
 * Values written to IA32_LSTAR by the wrmsr instructions seen so far that can be followed
 * back to constants. Returns how many were stored into out (at most max).
 */
size_t sites_x86_lstar(struct sites_x86 *x, struct ks_sites *s, ks_gva_t *out, size_t max);

/* True when the instruction at addr in range r is `mov %rsp, %gs:...` (64-bit). */
bool sites_x86_saves_rsp(struct sites_x86 *x, const struct sites_range *r, ks_gva_t addr);

#endif
