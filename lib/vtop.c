/* vtop.c: x86-64 page-table walks on the host, a cached translator, virtual reads and writes. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/vtop.h>

/* Bits of an x86-64 paging entry. */
#define PTE_P    (1ull << 0)
#define PTE_PS   (1ull << 7)
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull /* bits 51:12: the next table, or the page */

/* ---- one walk ---- */

/* Bits of address translated below a level: 12 for the PT, 21 for the PD, ... */
static int level_shift(int level)
{
	return 12 + 9 * (level - 1);
}

/* A leaf maps a page: every PTE, and a PDE or PDPTE with PS set (2 MiB, 1 GiB). */
static bool is_leaf(uint64_t e, int level)
{
	return level == 1 || (level <= 3 && (e & PTE_PS));
}

/* Reserved bits of a large page's address field: between the PAT bit (12) and its base. */
static uint64_t large_reserved(int level)
{
	return level == 3 ? 0x3fffe000ull : 0x1fe000ull;
}

static unsigned entry_flags(uint64_t e, int level)
{
	unsigned f;

	if (!(e & PTE_P))
		return 0;
	f = (unsigned)(e & 0x1ff) | (e & PTE_NX ? KS_VTOP_NX : 0);
	if (level == 1)
		f &= ~KS_VTOP_LARGE;          /* bit 7 of a PTE is PAT */
	if (!is_leaf(e, level))
		f &= ~(KS_VTOP_DIRTY | KS_VTOP_GLOBAL); /* ignored above the leaf */
	return f;
}

static bool has_reserved(uint64_t e, int level)
{
	if (level >= 4)
		return e & PTE_PS;
	if (level > 1 && (e & PTE_PS))
		return e & large_reserved(level);
	return false;
}

/* Adds one level's entry to the flags of the levels above: an access is allowed only when
 * every level allows it, and execution is forbidden when any level forbids it. */
static unsigned combine(unsigned acc, unsigned f)
{
	return (acc & f & (KS_VTOP_WRITABLE | KS_VTOP_USER)) | ((acc | f) & KS_VTOP_NX);
}

static unsigned leaf_flags(unsigned acc, unsigned f)
{
	return KS_VTOP_PRESENT | combine(acc, f) |
	       (f & (KS_VTOP_PWT | KS_VTOP_PCD | KS_VTOP_ACCESSED | KS_VTOP_DIRTY |
		     KS_VTOP_LARGE | KS_VTOP_GLOBAL));
}

static bool canonical(ks_gva_t gva, bool la57)
{
	int64_t top = (int64_t)gva >> (la57 ? 56 : 47);

	return top == 0 || top == -1;
}

static int stop(struct ks_vtop_result *r, enum ks_vtop_fault f, int level, int rc)
{
	r->fault = f;
	r->fault_level = (enum ks_vtop_level)level;
	return rc;
}

int ks_vtop_walk(struct ks_mem *mem, uint64_t cr3, bool la57, ks_gva_t gva,
		 struct ks_vtop_result *r)
{
	int levels = la57 ? 5 : 4;
	ks_gpa_t table = cr3 & PTE_ADDR;
	unsigned acc = KS_VTOP_WRITABLE | KS_VTOP_USER;

	memset(r, 0, sizeof(*r));
	r->gva = gva;
	if (!canonical(gva, la57))
		return stop(r, KS_VTOP_NONCANONICAL, levels, -EFAULT);
	for (int level = levels; level >= 1; level--) {
		struct ks_vtop_entry *en = &r->entries[r->nentries];
		unsigned idx = (gva >> level_shift(level)) & 511;
		uint64_t e;
		int rc = ks_mem_read_u64(mem, table + idx * 8, &e);

		if (rc < 0)
			return stop(r, rc == -EFAULT ? KS_VTOP_BAD_TABLE : KS_VTOP_READ_ERROR,
				    level, rc);
		r->nentries++;
		*en = (struct ks_vtop_entry){ .level = (enum ks_vtop_level)level, .index = idx,
					      .addr = table + idx * 8, .value = e,
					      .flags = entry_flags(e, level) };
		if (!(e & PTE_P))
			return stop(r, KS_VTOP_NOT_PRESENT, level, -EFAULT);
		if (has_reserved(e, level))
			return stop(r, KS_VTOP_RESERVED, level, -EFAULT);
		if (is_leaf(e, level)) {
			uint64_t size = 1ull << level_shift(level);
			r->page_size = size;
			r->gpa = (e & PTE_ADDR & ~(size - 1)) | (gva & (size - 1));
			r->flags = leaf_flags(acc, en->flags);
			return 0;
		}
		acc = combine(acc, en->flags);
		table = e & PTE_ADDR;
	}
	return -EFAULT; /* not reached: level 1 is always a leaf */
}

const char *ks_vtop_level_name(enum ks_vtop_level level)
{
	static const char *const names[] = { "?", "PT", "PD", "PDPT", "PML4", "PML5" };

	return level >= 1 && level <= 5 ? names[level] : "?";
}

const char *ks_vtop_fault_name(enum ks_vtop_fault fault)
{
	switch (fault) {
	case KS_VTOP_OK: return "ok";
	case KS_VTOP_NOT_PRESENT: return "not present";
	case KS_VTOP_RESERVED: return "reserved bits set";
	case KS_VTOP_NONCANONICAL: return "non-canonical address";
	case KS_VTOP_BAD_TABLE: return "table not in RAM";
	case KS_VTOP_READ_ERROR: return "table unreadable";
	}
	return "?";
}

char *ks_vtop_flags_format(unsigned flags, char *buf, size_t size)
{
	static const char *const words[] = { "P", "W", "U", "PWT", "PCD", "A", "D", "PS", "G",
					     "NX" };
	size_t n = 0;

	if (!size)
		return buf;
	buf[0] = 0;
	for (unsigned i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!(flags & (1u << i)))
			continue;
		int w = snprintf(buf + n, size - n, "%s%s", n ? " " : "", words[i]);
		if (w < 0 || (size_t)w >= size - n) {
			buf[n] = 0; /* whole words only */
			break;
		}
		n += (size_t)w;
	}
	if (!n)
		snprintf(buf, size, "-");
	return buf;
}

/* The hex value after "NAME=" in text, at a word start (so "CR3=" does not match "XCR3="). */
static int hmp_reg(const char *text, const char *name, uint64_t *val)
{
	size_t n = strlen(name);

	for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
		char *end;

		if ((p != text && p[-1] != ' ' && p[-1] != '\n' && p[-1] != '\r') || p[n] != '=')
			continue;
		errno = 0;
		*val = strtoull(p + n + 1, &end, 16);
		if (end == p + n + 1 || errno)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

int ks_vtop_regs_from_hmp(const char *text, uint64_t *cr3, bool *la57)
{
	uint64_t c3, c4;

	if (hmp_reg(text, "CR3", &c3) < 0 || hmp_reg(text, "CR4", &c4) < 0)
		return -EINVAL;
	*cr3 = c3;
	*la57 = c4 & (1ull << 12);
	return 0;
}

/* ---- the translator ---- */

/* A direct-mapped cache of 4 KiB translations. An entry is valid when its generation is the
 * translator's: emptying the cache is one increment, whatever its size. */
#define CACHE_BITS 12
#define CACHE_SLOTS (1u << CACHE_BITS)

struct slot {
	uint64_t gen;
	uint64_t vpn;
	ks_gpa_t page;
	unsigned flags;
};

struct ks_vtop {
	struct ks_mem *mem;
	uint64_t cr3;
	bool la57, have_cr3, cache_on;
	uint64_t gen;
	struct slot *cache;
};

/* The low bits of the page number, so that consecutive pages never share a slot, mixed with
 * a Fibonacci hash of the rest, so that pages 2 MiB or 1 GiB apart spread too (the low bits
 * alone would give every 2 MiB page one of 8 slots). */
static size_t slot_of(uint64_t vpn)
{
	uint64_t mix = ((vpn >> CACHE_BITS) * 0x9e3779b97f4a7c15ull) >> (64 - CACHE_BITS);

	return (size_t)((vpn ^ mix) & (CACHE_SLOTS - 1));
}

struct ks_vtop *ks_vtop_new(struct ks_mem *mem, struct ks_error *err)
{
	struct ks_vtop *t = calloc(1, sizeof(*t));

	if (!t || !(t->cache = calloc(CACHE_SLOTS, sizeof(*t->cache)))) {
		free(t);
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	t->mem = mem;
	t->gen = 1;
	return t;
}

void ks_vtop_free(struct ks_vtop *t)
{
	if (!t)
		return;
	free(t->cache);
	free(t);
}

void ks_vtop_set_cr3(struct ks_vtop *t, uint64_t cr3, bool la57)
{
	if (!t->have_cr3 || cr3 != t->cr3 || la57 != t->la57)
		t->gen++;
	t->cr3 = cr3;
	t->la57 = la57;
	t->have_cr3 = true;
}

void ks_vtop_cache(struct ks_vtop *t, bool on)
{
	if (!on)
		t->gen++;
	t->cache_on = on;
}

/* Translates through the cache; on failure r (when not NULL) holds the failed walk. */
static int translate(struct ks_vtop *t, ks_gva_t gva, ks_gpa_t *gpa, unsigned *flags,
		     struct ks_vtop_result *r)
{
	struct ks_vtop_result local;
	uint64_t vpn = gva >> 12;
	struct slot *s = &t->cache[slot_of(vpn)];

	if (!t->have_cr3)
		return -EINVAL;
	if (t->cache_on && s->gen == t->gen && s->vpn == vpn) {
		*gpa = s->page | (gva & 0xfff);
		if (flags)
			*flags = s->flags;
		return 0;
	}
	if (!r)
		r = &local;
	int rc = ks_vtop_walk(t->mem, t->cr3, t->la57, gva, r);
	if (rc < 0)
		return rc;
	*gpa = r->gpa;
	if (flags)
		*flags = r->flags;
	if (t->cache_on)
		*s = (struct slot){ .gen = t->gen, .vpn = vpn, .page = r->gpa & ~0xfffull,
				    .flags = r->flags };
	return 0;
}

int ks_vtop_translate(struct ks_vtop *t, ks_gva_t gva, ks_gpa_t *gpa, unsigned *flags)
{
	return translate(t, gva, gpa, flags, NULL);
}

static int translate_err(struct ks_vtop *t, ks_gva_t gva, ks_gpa_t *gpa, struct ks_error *err)
{
	struct ks_vtop_result r;
	int rc = translate(t, gva, gpa, NULL, &r);

	if (rc == -EINVAL)
		return ks_error_set(err, rc, "no page tables selected (CR3)");
	if (rc == -EFAULT)
		return ks_error_set(err, rc, "guest-virtual 0x%llx does not translate: %s at %s",
				    (unsigned long long)gva, ks_vtop_fault_name(r.fault),
				    ks_vtop_level_name(r.fault_level));
	if (rc < 0)
		return ks_error_set(err, rc, "cannot walk the page tables for 0x%llx: %s",
				    (unsigned long long)gva, strerror(-rc));
	return 0;
}

/* The bytes of [gva, gva + len) that are on gva's 4 KiB page. */
static size_t piece(ks_gva_t gva, size_t len)
{
	size_t left = 4096 - (gva & 0xfff);

	return len < left ? len : left;
}

/* Translates every page of the range, and checks the physical side, before any copy. */
static int check_virtual(struct ks_vtop *t, ks_gva_t gva, size_t len, struct ks_error *err)
{
	while (len) {
		size_t n = piece(gva, len);
		ks_gpa_t gpa;
		int rc = translate_err(t, gva, &gpa, err);

		if (rc < 0)
			return rc;
		rc = ks_mem_check(t->mem, gpa, n, err);
		if (rc < 0)
			return rc;
		gva += n;
		len -= n;
	}
	return 0;
}

static int copy_virtual(struct ks_vtop *t, ks_gva_t gva, void *buf, size_t len, bool write,
			struct ks_error *err)
{
	uint8_t *b = buf;
	int rc = check_virtual(t, gva, len, err);

	while (rc == 0 && len) {
		size_t n = piece(gva, len);
		ks_gpa_t gpa;

		rc = translate_err(t, gva, &gpa, err);
		if (rc == 0)
			rc = write ? ks_mem_write(t->mem, gpa, b, n, err)
				   : ks_mem_read(t->mem, gpa, b, n, err);
		b += n;
		gva += n;
		len -= n;
	}
	return rc;
}

int ks_vtop_read(struct ks_vtop *t, ks_gva_t gva, void *buf, size_t len, struct ks_error *err)
{
	return copy_virtual(t, gva, buf, len, false, err);
}

int ks_vtop_write(struct ks_vtop *t, ks_gva_t gva, const void *buf, size_t len,
		  struct ks_error *err)
{
	return copy_virtual(t, gva, (void *)buf, len, true, err);
}

int ks_vtop_read_gva(void *ctx, ks_gva_t gva, void *buf, size_t len)
{
	return ks_vtop_read(ctx, gva, buf, len, NULL);
}

/* ---- the mapped ranges ---- */

/* One table on the way down: a copy of its entries, so a scan costs one read per table. */
struct frame {
	uint64_t e[512];
	unsigned next;    /* the next index to look at */
	ks_gva_t base;    /* the address entry 0 maps (not sign-extended) */
	unsigned acc;     /* combined flags of the entries above */
};

struct ks_vtop_iter {
	struct ks_mem *mem;
	bool la57;
	int levels;
	int depth;        /* frames[depth] is the current table, frames[0] the top one */
	bool done;
	bool have_pending;
	struct ks_vtop_range pending;  /* the range being grown */
	uint64_t skipped;
	struct frame frames[KS_VTOP_MAX_LEVELS];
};

/* Loads the table at gpa into frame depth. */
static int push(struct ks_vtop_iter *it, int depth, ks_gpa_t gpa, ks_gva_t base,
		unsigned acc, struct ks_error *err)
{
	struct frame *f = &it->frames[depth];
	int rc = ks_mem_read(it->mem, gpa, f->e, sizeof(f->e), err);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < 512; i++)
		f->e[i] = le64toh(f->e[i]);
	f->next = 0;
	f->base = base;
	f->acc = acc;
	it->depth = depth;
	return 0;
}

struct ks_vtop_iter *ks_vtop_iter_new(struct ks_mem *mem, uint64_t cr3, bool la57,
				      struct ks_error *err)
{
	struct ks_vtop_iter *it = calloc(1, sizeof(*it));
	int rc;

	if (!it) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	it->mem = mem;
	it->la57 = la57;
	it->levels = la57 ? 5 : 4;
	rc = push(it, 0, cr3 & PTE_ADDR, 0, KS_VTOP_WRITABLE | KS_VTOP_USER, err);
	if (rc < 0) {
		ks_vtop_iter_free(it);
		return NULL;
	}
	return it;
}

void ks_vtop_iter_free(struct ks_vtop_iter *it)
{
	free(it);
}

uint64_t ks_vtop_iter_skipped(const struct ks_vtop_iter *it)
{
	return it->skipped;
}

static ks_gva_t sign_extend(ks_gva_t va, bool la57)
{
	int bits = la57 ? 57 : 48;

	return (ks_gva_t)((int64_t)(va << (64 - bits)) >> (64 - bits));
}

/* Adds a page to the pending range; returns true when that range is complete and the page
 * starts the next one (then *out holds the complete range). */
static bool add_page(struct ks_vtop_iter *it, const struct ks_vtop_range *pg,
		     struct ks_vtop_range *out)
{
	struct ks_vtop_range *p = &it->pending;
	const unsigned ad = KS_VTOP_ACCESSED | KS_VTOP_DIRTY;

	if (it->have_pending && p->gva + p->size == pg->gva && p->gpa + p->size == pg->gpa &&
	    p->page_size == pg->page_size && (p->flags & ~ad) == (pg->flags & ~ad)) {
		p->size += pg->size;
		p->flags |= pg->flags & ad;
		return false;
	}
	bool complete = it->have_pending;
	if (complete)
		*out = *p;
	*p = *pg;
	it->have_pending = true;
	return complete;
}

/* Looks at the next entry of the current table: descends, records a page, or skips. Returns
 * 1 when a range is complete in *out, 0 to go on, or a reader's error. */
static int step(struct ks_vtop_iter *it, struct ks_vtop_range *out, struct ks_error *err)
{
	struct frame *f = &it->frames[it->depth];
	int level = it->levels - it->depth;

	if (f->next == 512) {
		if (--it->depth < 0)
			it->done = true;
		return 0;
	}
	unsigned i = f->next++;
	uint64_t e = f->e[i];
	ks_gva_t va = f->base | ((ks_gva_t)i << level_shift(level));
	unsigned ef = entry_flags(e, level);

	if (!(e & PTE_P))
		return 0;
	if (has_reserved(e, level)) {
		it->skipped++;
		return 0;
	}
	if (!is_leaf(e, level)) {
		int rc = push(it, it->depth + 1, e & PTE_ADDR, va, combine(f->acc, ef), err);
		if (rc == -EFAULT)
			it->skipped++;
		return rc == -EFAULT ? 0 : rc;
	}
	uint64_t size = 1ull << level_shift(level);
	struct ks_vtop_range pg = { .gva = sign_extend(va, it->la57),
				    .gpa = e & PTE_ADDR & ~(size - 1), .size = size,
				    .page_size = size, .flags = leaf_flags(f->acc, ef) };
	return add_page(it, &pg, out) ? 1 : 0;
}

int ks_vtop_iter_next(struct ks_vtop_iter *it, struct ks_vtop_range *range,
		      struct ks_error *err)
{
	while (!it->done) {
		int rc = step(it, range, err);
		if (rc)
			return rc;
	}
	if (!it->have_pending)
		return 0;
	*range = it->pending;
	it->have_pending = false;
	return 1;
}
