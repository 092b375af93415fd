/* vtop.h: guest virtual to physical translation, walking the guest's x86-64 page tables on the host. */
#ifndef KSCOPE_VTOP_H
#define KSCOPE_VTOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/mem.h>
#include <kscope/types.h>

/*
 * The walk follows the Intel SDM's IA-32e paging: 4 levels (PML4, PDPT, PD, PT) with 4 KiB,
 * 2 MiB and 1 GiB pages, and 5 levels (PML5 first) when the guest runs with CR4.LA57. The
 * tables are read from guest physical memory (struct ks_mem). NX is taken as enabled
 * (EFER.NXE), and protection keys are ignored.
 */

/* Paging levels, numbered like the SDM's (the leaf table is level 1). */
enum ks_vtop_level {
	KS_VTOP_PT = 1,
	KS_VTOP_PD = 2,
	KS_VTOP_PDPT = 3,
	KS_VTOP_PML4 = 4,
	KS_VTOP_PML5 = 5,
};

#define KS_VTOP_MAX_LEVELS 5

/* Flags of an entry, and the effective flags of a translation. */
#define KS_VTOP_PRESENT  0x001u
#define KS_VTOP_WRITABLE 0x002u
#define KS_VTOP_USER     0x004u
#define KS_VTOP_PWT      0x008u  /* write-through */
#define KS_VTOP_PCD      0x010u  /* cache disabled */
#define KS_VTOP_ACCESSED 0x020u
#define KS_VTOP_DIRTY    0x040u  /* leaf entries only */
#define KS_VTOP_LARGE    0x080u  /* the entry maps a 2 MiB or 1 GiB page (PS) */
#define KS_VTOP_GLOBAL   0x100u  /* leaf entries only */
#define KS_VTOP_NX       0x200u  /* no execute */

/* Why a walk stopped. */
enum ks_vtop_fault {
	KS_VTOP_OK = 0,
	KS_VTOP_NOT_PRESENT,    /* an entry on the way has P = 0 */
	KS_VTOP_RESERVED,       /* an entry has reserved bits set (PS in PML5E/PML4E, address
				 * bits below a large page's alignment) */
	KS_VTOP_NONCANONICAL,   /* the address is not canonical for 48 (57) bits */
	KS_VTOP_BAD_TABLE,      /* a table is not in guest RAM */
	KS_VTOP_READ_ERROR,     /* the memory's reader failed (not a mapping) */
};

/* One entry the walk read. */
struct ks_vtop_entry {
	enum ks_vtop_level level;
	unsigned index;     /* 0 to 511 */
	ks_gpa_t addr;      /* guest-physical address of the entry */
	uint64_t value;     /* the raw 64-bit entry */
	unsigned flags;     /* KS_VTOP_* of this entry alone */
};

/* The whole story of one translation. */
struct ks_vtop_result {
	ks_gva_t gva;
	ks_gpa_t gpa;               /* the translation (valid when fault is KS_VTOP_OK) */
	uint64_t page_size;         /* 4 KiB, 2 MiB or 1 GiB (valid when fault is KS_VTOP_OK) */
	unsigned flags;             /* effective: WRITABLE and USER when every level allows
				     * it, NX when any level forbids execution; PRESENT,
				     * ACCESSED, DIRTY, GLOBAL, PWT, PCD and LARGE of the leaf */
	size_t nentries;            /* entries read, from the top: entries[0] is the PML5E
				     * or PML4E */
	struct ks_vtop_entry entries[KS_VTOP_MAX_LEVELS];
	enum ks_vtop_fault fault;
	enum ks_vtop_level fault_level; /* where the walk stopped (the top level for a
					 * non-canonical address) */
};

/*
 * Translates gva through the page tables at cr3 (the register's value: PCID and flag bits
 * are ignored), 5-level when la57. Fills *r in every case. Returns 0, or -EFAULT when the
 * address does not translate (r->fault and r->fault_level say why and where), or a read
 * error of mem other than a table outside RAM (say, a gdbstub failure).
 */
int ks_vtop_walk(struct ks_mem *mem, uint64_t cr3, bool la57, ks_gva_t gva,
		 struct ks_vtop_result *r);

/* "PML5", "PML4", "PDPT", "PD", "PT"; "?" for others. Static string. */
const char *ks_vtop_level_name(enum ks_vtop_level level);

/* "ok", "not present", "reserved bits set", "non-canonical address", "table not in RAM",
 * "table unreadable"; "?" for others. Static string. */
const char *ks_vtop_fault_name(enum ks_vtop_fault fault);

/*
 * Writes flags as space-separated words ("P W U PWT PCD A D PS G NX"; "-" for none) into buf
 * of size bytes, always NUL-terminated. Returns buf.
 */
char *ks_vtop_flags_format(unsigned flags, char *buf, size_t size);

/*
 * Finds CR3 and CR4.LA57 of the first vCPU in the text of HMP's "info registers" (QMP's
 * human-monitor-command, ks_qmp_hmp()). Returns 0, or -EINVAL when the text has no CR3 or
 * CR4 (a vCPU not yet started still shows them, as zero).
 */
int ks_vtop_regs_from_hmp(const char *text, uint64_t *cr3, bool *la57);

/* ---- A translator: one address space, an optional cache, virtual reads and writes ---- */

struct ks_vtop;

/*
 * A translator over mem (borrowed; it must outlive the translator), with no CR3 yet and the
 * cache off. Returns it (free with ks_vtop_free()), or NULL with err filled (-ENOMEM).
 */
struct ks_vtop *ks_vtop_new(struct ks_mem *mem, struct ks_error *err);

/* Frees t; NULL is fine. */
void ks_vtop_free(struct ks_vtop *t);

/* Selects the address space to translate in. A different cr3 or la57 empties the cache. */
void ks_vtop_set_cr3(struct ks_vtop *t, uint64_t cr3, bool la57);

/*
 * Turns the translation cache on or off (off at first); off empties it. A cached
 * translation ignores later changes of the page tables, so turn it on only while the VM is
 * paused and off before it runs again. Only successful translations are cached.
 */
void ks_vtop_cache(struct ks_vtop *t, bool on);

/*
 * Translates gva in the current address space: *gpa gets the physical address and *flags
 * (may be NULL) the effective KS_VTOP_* flags. Returns 0, -EFAULT when gva does not
 * translate (ks_vtop_walk() tells why), or -EINVAL when no CR3 was set.
 */
int ks_vtop_translate(struct ks_vtop *t, ks_gva_t gva, ks_gpa_t *gpa, unsigned *flags);

/*
 * Copies len bytes of guest virtual memory at gva to buf, across page boundaries. Every
 * page of the range is translated (and, for mapped memory, checked to be RAM) before
 * anything is copied, so a range that runs into an unmapped page fails as a whole with
 * -EFAULT (err names the first bad virtual address and the level where its walk stopped)
 * and buf is left untouched. Other errors as ks_mem_read(). len 0 is 0.
 */
int ks_vtop_read(struct ks_vtop *t, ks_gva_t gva, void *buf, size_t len,
		 struct ks_error *err);

/*
 * Copies len bytes from buf to guest virtual memory at gva, with the checks of
 * ks_vtop_read(): nothing is written when any page does not translate. Page protections
 * are not enforced: the host writes where the guest itself could not (a read-only page).
 */
int ks_vtop_write(struct ks_vtop *t, ks_gva_t gva, const void *buf, size_t len,
		  struct ks_error *err);

/* A ks_read_gva_fn over a translator (ctx is the struct ks_vtop *), for ks_kt_state_read(). */
int ks_vtop_read_gva(void *ctx, ks_gva_t gva, void *buf, size_t len);

/* ---- The mapped ranges of an address space (`kscope pagemap`) ---- */

/* A run of mapped pages: virtually and physically contiguous, with the same flags. */
struct ks_vtop_range {
	ks_gva_t gva;
	ks_gpa_t gpa;
	uint64_t size;       /* bytes */
	uint64_t page_size;  /* every page of the range has this size */
	unsigned flags;      /* effective flags; ACCESSED and DIRTY when any page has them */
};

struct ks_vtop_iter;

/*
 * An iterator over every mapped range of the address space at cr3 (5-level when la57), by
 * ascending canonical address: the lower half first, then the upper half. Adjacent pages
 * join a range when they follow each other virtually and physically, have the same page
 * size and the same flags apart from ACCESSED and DIRTY (which change with every access and
 * would cut a range into pieces). Non-present entries skip their whole subtree; entries with
 * reserved bits and tables outside RAM are skipped the same way, and counted. mem is
 * borrowed. Returns the iterator (free with ks_vtop_iter_free()), or NULL with err filled
 * (-ENOMEM).
 */
struct ks_vtop_iter *ks_vtop_iter_new(struct ks_mem *mem, uint64_t cr3, bool la57,
				      struct ks_error *err);

/*
 * Gives the next range in *range. Returns 1, 0 when there are no more, or a read error of
 * the memory's reader (then err is filled, and the iterator can go on past that table).
 */
int ks_vtop_iter_next(struct ks_vtop_iter *it, struct ks_vtop_range *range,
		      struct ks_error *err);

/* Entries the iterator skipped so far for reserved bits or a table outside RAM. */
uint64_t ks_vtop_iter_skipped(const struct ks_vtop_iter *it);

/* Frees it; NULL is fine. */
void ks_vtop_iter_free(struct ks_vtop_iter *it);

#endif
