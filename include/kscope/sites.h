/* sites.h: event sites of an x86 kernel image (magic, syscall, sysret, iret, swapgs, lidt), its syscall entry. */
#ifndef KSCOPE_SITES_H
#define KSCOPE_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/sym.h>
#include <kscope/types.h>

/*
 * Where a monitor can set breakpoints to see events the kernel does not report itself. The
 * scan reads the ELF file only: nothing runs. It disassembles the executable sections
 * (SHF_EXECINSTR; the executable PT_LOAD segments when there are no section headers) with
 * capstone, in 64-bit mode, except for code that is recognisably 32-bit: all of an i386 ELF,
 * the PVH entry point named by a Xen ELF note (XEN_ELFNOTE_PHYS32_ENTRY) and symbols whose
 * names end in "32" or contain "_32" (pvh_start32, startup_32); a far jump out of such code
 * is taken to enter long mode, so its target is decoded as 64-bit code again.
 *
 * The sweep is linear from every function and label start (from the section start without
 * symbols). After an unconditional jump, return, ud2 or int3 the next bytes may be data or
 * padding, so decoding there is "uncertain" until the next symbol or direct branch target,
 * where it restarts. The magic instruction `66 87 db` is also searched as a byte pattern: a
 * match that the sweep did not decode is accepted when the instruction that swallowed it
 * was uncertain (KS_SITE_PATTERN), or when decoding in the other mode from the region start
 * lands on it; a match inside an instruction reached by plain fall-through is an immediate
 * or displacement, not the magic, and is only counted.
 *
 * Code kept in non-executable sections (the demo kernel's ring-3 programs, which it copies
 * to user pages) is disassembled too when symbols are given: from each function or label
 * in such a section to the next symbol, stopping at the first undecodable byte. Sites there
 * carry KS_SITE_DATA; their address is where the bytes are in the image, not where they run.
 */
struct ks_sites;

/* What an instruction at a site does. */
enum ks_site_kind {
	KS_SITE_MAGIC,    /* `xchg %bx,%bx` (66 87 db): a kt_ magic message */
	KS_SITE_SYSCALL,  /* `syscall` (0f 05) */
	KS_SITE_SYSRET,   /* `sysretq` (48 0f 07) or `sysretl` (0f 07) */
	KS_SITE_IRET,     /* `iretq` (48 cf), `iretl` (cf) */
	KS_SITE_SWAPGS,   /* `swapgs` (0f 01 f8) */
	KS_SITE_LIDT,     /* `lidt` (0f 01 /3): the kernel loads an IDT */
	KS_SITE_KIND_COUNT
};

/* Site flags. */
#define KS_SITE_SECTION 0x01u /* listed in the kernel's kt_magic_sites section */
#define KS_SITE_DISASM  0x02u /* found by disassembly */
#define KS_SITE_BAD     0x04u /* listed in kt_magic_sites, but the bytes there are not
			       * 66 87 db, or the address is outside the executable code */
#define KS_SITE_CODE32  0x08u /* decoded as 32-bit code */
#define KS_SITE_DATA    0x10u /* in a non-executable section (see above) */
#define KS_SITE_PATTERN 0x20u /* magic found by its byte pattern where the sweep was off
			       * the instruction boundaries (with KS_SITE_DISASM) */

/* One site. */
struct ks_site {
	ks_gva_t addr;
	enum ks_site_kind kind;
	unsigned int size;   /* instruction length in bytes; 0 for a KS_SITE_BAD entry */
	unsigned int flags;  /* KS_SITE_* */
	const char *sym;     /* symbol holding addr (owned by the ks_sites), NULL if unknown */
	uint64_t off;        /* addr - that symbol's address */
};

/* How the syscall entry point was found (see ks_sites_scan()). */
enum ks_entry_how {
	KS_ENTRY_NAMED,       /* the caller named its symbol */
	KS_ENTRY_LSTAR,       /* the constant the kernel writes to IA32_LSTAR with wrmsr */
	KS_ENTRY_SYMBOL,      /* a symbol with a well-known entry name */
	KS_ENTRY_SWAPGS_RSP,  /* `swapgs` then `mov %rsp, %gs:...` (saves the user stack) */
	KS_ENTRY_SWAPGS_FUNC, /* the only function that starts with `swapgs` */
};

/* The syscall entry point. */
struct ks_syscall_entry {
	ks_gva_t addr;
	enum ks_entry_how how;
	const char *sym;     /* symbol holding addr (owned by the ks_sites), NULL if unknown */
	uint64_t off;
};

/* One executable range of the image: a section, or a segment without section headers. */
struct ks_code_range {
	ks_gva_t start, end; /* [start, end) */
	const char *name;    /* section name, or "LOAD" (owned by the ks_sites) */
};

/* What the scan did. */
struct ks_sites_stats {
	size_t insns;            /* instructions decoded (both passes, all modes) */
	size_t bad_bytes;        /* bytes skipped because they did not decode */
	size_t section_entries;  /* addresses listed in kt_magic_sites */
	size_t section_bad;      /* of those, not the magic instruction (KS_SITE_BAD) */
	size_t pattern_hits;     /* 66 87 db byte sequences in executable code */
	size_t pattern_rejected; /* of those, inside another instruction: not a site */
	size_t lstar_writes;     /* wrmsr to IA32_LSTAR with a constant value */
};

/*
 * Scans the kernel at elf_path (an x86-64 or i386 ELF). syms (may be NULL; it is only read
 * during the call) gives the symbols: the sweep starts at each of them, sites get names and
 * code in data sections is found. Load them with ks_sym_load() from the ELF itself or from a
 * System.map.
 *
 * Magic sites come from both sources: every kt_magic_sites entry (KS_SITE_SECTION; each
 * address is checked to hold 66 87 db in executable code, else KS_SITE_BAD) and every site
 * the disassembly finds (KS_SITE_DISASM); a site found both ways has both flags. A monitor
 * sets its breakpoints on the listed, not-bad sites when ks_sites_have_section() says the
 * kernel has the section, and on the disassembled ones otherwise.
 *
 * The syscall entry is, in this order: the symbol syscall_entry names when not NULL (an
 * unknown name or no symbols is an error); the constant the kernel loads into IA32_LSTAR
 * (0xc0000082), when a wrmsr's ECX, EAX and EDX can be followed back to immediates or to a
 * RIP-relative lea over the 16 instructions before it (the first such value in executable
 * code, preferring one at a symbol start); a symbol named entry_SYSCALL_64, system_call,
 * syscall_entry, syscall_entry64, entry_syscall, entry_syscall64 or fast_syscall; a swapgs
 * immediately followed by `mov %rsp, %gs:...`, which a syscall entry needs first because
 * SYSCALL leaves RSP on the user stack while interrupt entries get their stack from the CPU;
 * the only function that starts with swapgs. None of these: no entry (not an error).
 *
 * Returns the scan (free with ks_sites_free()), or NULL with err filled: the file's open or
 * read error, -EINVAL for a file that is not ELF, -ENOTSUP for a machine other than x86,
 * -ENOENT for an unknown syscall_entry symbol, -ENOMEM.
 */
struct ks_sites *ks_sites_scan(const char *elf_path, const struct ks_symtab *syms,
			       const char *syscall_entry, struct ks_error *err);

/* Frees s; NULL is fine. */
void ks_sites_free(struct ks_sites *s);

/*
 * The sites of one kind by ascending address (one entry per address); *n gets their number.
 * The array belongs to s. Returns NULL with *n = 0 for none or a bad kind.
 */
const struct ks_site *ks_sites_list(const struct ks_sites *s, enum ks_site_kind kind,
				    size_t *n);

/* True when the image has a kt_magic_sites section (even an empty one). */
bool ks_sites_have_section(const struct ks_sites *s);

/* The syscall entry point (owned by s), or NULL when none was found. */
const struct ks_syscall_entry *ks_sites_syscall_entry(const struct ks_sites *s);

/* The ELF header's entry point (e_entry). */
ks_gva_t ks_sites_elf_entry(const struct ks_sites *s);

/* The executable ranges by ascending address, *n of them; the array belongs to s. */
const struct ks_code_range *ks_sites_code_ranges(const struct ks_sites *s, size_t *n);

/* Copies the scan's counters into *st. */
void ks_sites_stats(const struct ks_sites *s, struct ks_sites_stats *st);

/* "magic", "syscall", "sysret", "iret", "swapgs", "lidt"; "invalid" out of range. Static
 * string. */
const char *ks_site_kind_name(enum ks_site_kind kind);

/* "named", "lstar", "symbol", "swapgs-rsp", "swapgs-func"; "invalid" otherwise. Static. */
const char *ks_entry_how_name(enum ks_entry_how how);

#endif
