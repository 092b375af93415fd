/* sites.c: event sites of an x86 kernel image: code ranges, the kt_magic_sites list, the syscall entry. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sites_internal.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MAGIC_SECTION "kt_magic_sites"
#define MAX_LSTAR 64

/* Everything the scan needs while it runs; nothing here outlives ks_sites_scan(). */
struct scan {
	const char *path;
	uint8_t *file;
	size_t size;
	Elf *elf;
	const struct ks_symtab *syms;
	bool is32;                   /* i386: 32-bit code unless a symbol says otherwise */
	ks_gva_t pvh_entry;          /* 0: no PVH note */
	const uint8_t *list;         /* kt_magic_sites, NULL when absent */
	size_t list_len;
	struct sites_range *r;       /* executable ranges first, then data ranges */
	size_t nexec, nr;
	struct sites_x86 *x;
};

/* Names syscall entries have (Linux, old Linux, hobby kernels, FreeBSD), in preference order. */
static const char *const entry_names[] = {
	"entry_SYSCALL_64", "system_call", "syscall_entry", "syscall_entry64",
	"entry_syscall", "entry_syscall64", "fast_syscall",
};

/* ---- small helpers ---- */

static char *keep(struct ks_sites *s, const char *str)
{
	if (s->nnames == s->names_cap) {
		size_t cap = s->names_cap ? s->names_cap * 2 : 64;
		char **n = realloc(s->names, cap * sizeof(*n));
		if (!n)
			return NULL;
		s->names = n;
		s->names_cap = cap;
	}
	char *copy = strdup(str);
	if (copy)
		s->names[s->nnames++] = copy;
	return copy;
}

int sites_add(struct ks_sites *s, enum ks_site_kind kind, ks_gva_t addr, unsigned size,
	      unsigned flags)
{
	struct site_vec *v = &s->kind[kind];

	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct ks_site *n = realloc(v->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = (struct ks_site){ .addr = addr, .kind = kind, .size = size, .flags = flags };
	return 0;
}

static const struct sites_range *range_at(const struct scan *c, ks_gva_t addr, size_t len,
					  bool exec_only)
{
	size_t n = exec_only ? c->nexec : c->nr;

	for (size_t i = 0; i < n; i++)
		if (addr >= c->r[i].start && addr < c->r[i].end && len <= c->r[i].end - addr)
			return &c->r[i];
	return NULL;
}

/* Names that mark 32-bit code: pvh_start32, startup_32, tramp_32. */
static bool name_says_32(const char *name)
{
	size_t n = strlen(name);

	return (n >= 3 && !strcmp(name + n - 3, "_32")) ||
	       (n >= 7 && !strcmp(name + n - 7, "start32"));
}

/* ---- the ELF file ---- */

static int read_file(struct scan *c, struct ks_error *err)
{
	struct stat st;
	int rc = 0, fd = open(c->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ks_error_set(err, -errno, "%s: %s", c->path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = ks_error_set(err, -errno, "%s: %s", c->path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ks_error_set(err, -EINVAL, "%s: not a regular file", c->path);
		goto out;
	}
	c->size = (size_t)st.st_size;
	if (!(c->file = malloc(c->size ? c->size : 1))) {
		rc = ks_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t got = 0; got < c->size;) {
		ssize_t n = read(fd, c->file + got, c->size - got);
		if (n <= 0) {
			rc = ks_error_set(err, n < 0 ? -errno : -EIO, "%s: read: %s", c->path,
					  n < 0 ? strerror(errno) : "short file");
			goto out;
		}
		got += (size_t)n;
	}
out:
	close(fd);
	return rc;
}

static int add_range(struct scan *c, ks_gva_t start, uint64_t off, uint64_t len,
		     const char *name, bool exec)
{
	if (!len || off > c->size || len > c->size - off || start + len < start)
		return 0;       /* empty, or not (wholly) in the file: nothing to read */
	struct sites_range *n = realloc(c->r, (c->nr + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	c->r = n;
	c->r[c->nr++] = (struct sites_range){ .start = start, .end = start + len,
					      .bytes = c->file + off, .name = name, .exec = exec };
	return 0;
}

/* Sections: executable ones, then loaded data that may hold code; kt_magic_sites. */
static int read_sections(struct scan *c, bool exec)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	if (elf_getshdrstrndx(c->elf, &shstrndx) < 0)
		return 0;
	while ((scn = elf_nextscn(c->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC))
			continue;
		const char *name = elf_strptr(c->elf, shstrndx, sh.sh_name);
		name = name ? name : "?";
		if (exec && !strcmp(name, MAGIC_SECTION) && sh.sh_offset <= c->size &&
		    sh.sh_size <= c->size - sh.sh_offset) {
			c->list = c->file + sh.sh_offset;
			c->list_len = sh.sh_size;
		}
		if (!(sh.sh_flags & SHF_EXECINSTR) != !exec)
			continue;
		if ((exec || sh.sh_type == SHT_PROGBITS) &&
		    add_range(c, sh.sh_addr, sh.sh_offset, sh.sh_size, name, exec) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Without executable sections: the executable PT_LOAD segments. */
static int read_segments(struct scan *c)
{
	size_t n;
	GElf_Phdr ph;

	if (elf_getphdrnum(c->elf, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (gelf_getphdr(c->elf, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
		    add_range(c, ph.p_vaddr, ph.p_offset, ph.p_filesz, "LOAD", true) < 0)
			return -ENOMEM;
	return 0;
}

/* The PVH entry (Xen note type 18): 32-bit code, wherever the kernel keeps it. */
static void read_pvh_note(struct scan *c)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(c->elf, scn))) {
		Elf_Data *d;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || !(d = elf_getdata(scn, NULL)))
			continue;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			const char *nm = (const char *)d->d_buf + name_off;
			if (nh.n_type != XEN_ELFNOTE_PHYS32_ENTRY || nh.n_namesz != 4 ||
			    memcmp(nm, "Xen", 4) || (nh.n_descsz != 4 && nh.n_descsz != 8))
				continue;
			uint64_t v = 0;
			memcpy(&v, (const char *)d->d_buf + desc_off, nh.n_descsz);
			c->pvh_entry = v;
		}
	}
}

static int open_elf(struct scan *c, struct ks_sites *s, struct ks_error *err)
{
	GElf_Ehdr eh;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return ks_error_set(err, -EINVAL, "libelf: %s", elf_errmsg(-1));
	c->elf = elf_memory((char *)c->file, c->size);
	if (!c->elf || elf_kind(c->elf) != ELF_K_ELF || !gelf_getehdr(c->elf, &eh))
		return ks_error_set(err, -EINVAL, "%s: not an ELF file", c->path);
	if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_386)
		return ks_error_set(err, -ENOTSUP, "%s: not an x86 kernel (ELF machine %u)",
				    c->path, (unsigned)eh.e_machine);
	c->is32 = eh.e_machine == EM_386;
	s->elf_entry = eh.e_entry;
	if (read_sections(c, true) < 0)
		return ks_error_set(err, -ENOMEM, "out of memory");
	if (!c->nr && read_segments(c) < 0)
		return ks_error_set(err, -ENOMEM, "out of memory");
	c->nexec = c->nr;
	if (c->syms && read_sections(c, false) < 0)
		return ks_error_set(err, -ENOMEM, "out of memory");
	read_pvh_note(c);
	return 0;
}

/* ---- regions ---- */

enum { CUT_CODE, CUT_DATA, CUT_GAP };  /* at one address the lower one wins */

struct cut {
	ks_gva_t addr;
	int type;
	bool code32;
};

static int cmp_cut(const void *pa, const void *pb)
{
	const struct cut *a = pa, *b = pb;

	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	return a->type - b->type;
}

static int push_cut(struct cut **v, size_t *n, size_t *cap, struct cut cut)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct cut *p = realloc(*v, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = cut;
	return 0;
}

/* Where decoding in an executable range starts (symbols, the range start, the entry points)
 * and the data objects it skips. Returns the number of cuts, sorted, or -ENOMEM. */
static ssize_t code_cuts(const struct scan *c, const struct sites_range *r, struct cut **out)
{
	struct cut *v = NULL;
	size_t n = 0, cap = 0, count = c->syms ? ks_sym_count(c->syms) : 0;
	int rc = push_cut(&v, &n, &cap, (struct cut){ r->start, CUT_CODE,
						     c->is32 || r->start == c->pvh_entry });

	if (rc == 0 && c->pvh_entry > r->start && c->pvh_entry < r->end)
		rc = push_cut(&v, &n, &cap, (struct cut){ c->pvh_entry, CUT_CODE, true });
	for (size_t i = 0; i < count && rc == 0; i++) {
		const struct ks_sym *y = ks_sym_get(c->syms, i);
		if (y->addr < r->start || y->addr >= r->end || y->kind == KS_SYM_ABS)
			continue;
		bool obj = y->kind == KS_SYM_OBJECT;
		if (obj && !y->size)
			continue;
		bool c32 = c->is32 || name_says_32(y->name) || y->addr == c->pvh_entry;
		rc = push_cut(&v, &n, &cap, (struct cut){ y->addr, obj ? CUT_DATA : CUT_CODE, c32 });
		if (rc == 0 && y->size && y->addr + y->size < r->end)
			rc = push_cut(&v, &n, &cap, (struct cut){ y->addr + y->size, CUT_GAP, c32 });
	}
	if (rc < 0) {
		free(v);
		return rc;
	}
	qsort(v, n, sizeof(*v), cmp_cut);
	size_t m = 0;
	for (size_t i = 1; i < n; i++) {
		if (v[i].addr != v[m].addr)
			v[++m] = v[i];
		else if (v[i].type == v[m].type)
			v[m].code32 |= v[i].code32;     /* one name saying 32-bit is enough */
	}
	*out = v;
	return (ssize_t)m + 1;
}

/* Runs one pass (targets or sweep) over every region of an executable range. */
static int pass_code(struct scan *c, struct ks_sites *s, const struct sites_range *r, bool sweep)
{
	struct cut *v = NULL;
	ssize_t n = code_cuts(c, r, &v);
	int rc = 0;
	bool c32 = false;

	if (n < 0)
		return (int)n;
	for (ssize_t i = 0; i < n && rc == 0; i++) {
		/* A gap after a function keeps the mode of the code before it. */
		c32 = v[i].type == CUT_GAP ? c32 : v[i].code32;
		if (v[i].type == CUT_DATA)
			continue;
		struct sites_region rg = { .start = v[i].addr,
					   .end = i + 1 < n ? v[i + 1].addr : r->end, .range = r,
					   .code32 = c32, .certain = v[i].type == CUT_CODE };
		rc = sweep ? sites_x86_sweep(c->x, s, &rg) : sites_x86_targets(c->x, s, &rg);
	}
	free(v);
	return rc;
}

/* Code kept in a data section: from each function or label to the next symbol. */
static int pass_data(struct scan *c, struct ks_sites *s, const struct sites_range *r)
{
	size_t count = ks_sym_count(c->syms);
	int rc = 0;

	for (size_t i = 0; i < count && rc == 0; i++) {
		const struct ks_sym *y = ks_sym_get(c->syms, i);
		if (y->addr < r->start || y->addr >= r->end ||
		    (y->kind != KS_SYM_FUNC && y->kind != KS_SYM_LABEL))
			continue;
		ks_gva_t end = r->end;
		for (size_t k = i + 1; k < count; k++) {
			const struct ks_sym *z = ks_sym_get(c->syms, k);
			if (z->addr > y->addr && z->kind != KS_SYM_ABS) {
				end = z->addr < r->end ? z->addr : r->end;
				break;
			}
		}
		struct sites_region rg = { .start = y->addr, .end = end, .range = r,
					   .code32 = c->is32 || name_says_32(y->name),
					   .certain = true, .data = true };
		rc = sites_x86_sweep(c->x, s, &rg);
	}
	return rc;
}

static int disassemble(struct scan *c, struct ks_sites *s)
{
	int rc = 0;

	for (size_t i = 0; i < c->nexec && rc == 0; i++)
		rc = pass_code(c, s, &c->r[i], false);
	sites_x86_targets_done(c->x);
	for (size_t i = 0; i < c->nexec && rc == 0; i++)
		rc = pass_code(c, s, &c->r[i], true);
	for (size_t i = c->nexec; i < c->nr && rc == 0; i++)
		rc = pass_data(c, s, &c->r[i]);
	return rc;
}

/* ---- the kt_magic_sites list ---- */

static int check_list(struct scan *c, struct ks_sites *s)
{
	static const uint8_t magic[3] = { 0x66, 0x87, 0xdb };

	s->have_section = c->list != NULL;
	for (size_t off = 0; c->list && off + 8 <= c->list_len; off += 8) {
		uint64_t addr = 0;
		for (int b = 7; b >= 0; b--)    /* little-endian, whatever the host */
			addr = addr << 8 | c->list[off + (size_t)b];
		const struct sites_range *r = range_at(c, addr, 3, true);
		bool ok = r && !memcmp(r->bytes + (addr - r->start), magic, 3);
		s->st.section_entries++;
		s->st.section_bad += !ok;
		if (sites_add(s, KS_SITE_MAGIC, addr, ok ? 3 : 0,
			      KS_SITE_SECTION | (ok ? 0 : KS_SITE_BAD)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- results ---- */

static int cmp_site(const void *pa, const void *pb)
{
	const struct ks_site *a = pa, *b = pb;

	return (a->addr > b->addr) - (a->addr < b->addr);
}

/* Sorts a kind's sites, merges those at one address, names them. */
static int finish_kind(struct ks_sites *s, const struct ks_symtab *syms, struct site_vec *v)
{
	const struct ks_sym *last = NULL;
	const char *last_name = NULL;
	size_t m = 0;

	if (!v->n)
		return 0;
	qsort(v->v, v->n, sizeof(*v->v), cmp_site);
	for (size_t i = 1; i < v->n; i++) {
		if (v->v[i].addr == v->v[m].addr) {
			v->v[m].flags |= v->v[i].flags;
			if (v->v[i].size > v->v[m].size)
				v->v[m].size = v->v[i].size;
			continue;
		}
		v->v[++m] = v->v[i];
	}
	v->n = m + 1;
	for (size_t i = 0; syms && i < v->n; i++) {
		const struct ks_sym *y = ks_sym_at(syms, v->v[i].addr, &v->v[i].off);
		if (y && y != last) {
			if (!(last_name = keep(s, y->name)))
				return -ENOMEM;
			last = y;
		}
		v->v[i].sym = y ? last_name : NULL;
		v->v[i].off = y ? v->v[i].off : 0;
	}
	return 0;
}

static int set_entry(struct ks_sites *s, const struct ks_symtab *syms, ks_gva_t addr,
		     enum ks_entry_how how)
{
	uint64_t off = 0;
	const struct ks_sym *y = syms ? ks_sym_at(syms, addr, &off) : NULL;

	s->has_entry = true;
	s->entry = (struct ks_syscall_entry){ .addr = addr, .how = how, .off = y ? off : 0 };
	if (y && !(s->entry.sym = keep(s, y->name)))
		return -ENOMEM;
	return 0;
}

static bool at_symbol_start(const struct ks_symtab *syms, ks_gva_t addr)
{
	uint64_t off = 1;

	return syms && ks_sym_at(syms, addr, &off) && off == 0;
}

/* The LSTAR value, then well-known names, then the swapgs shapes (see sites.h). */
static int discover_entry(struct scan *c, struct ks_sites *s)
{
	ks_gva_t t[MAX_LSTAR], pick = 0;
	size_t n = sites_x86_lstar(c->x, s, t, MAX_LSTAR);
	const struct site_vec *sw = &s->kind[KS_SITE_SWAPGS];

	for (size_t i = 0; i < n; i++) {
		if (!range_at(c, t[i], 1, true))
			continue;
		if (at_symbol_start(c->syms, t[i])) {
			pick = t[i];
			break;
		}
		pick = pick ? pick : t[i];
	}
	if (pick)
		return set_entry(s, c->syms, pick, KS_ENTRY_LSTAR);
	for (size_t i = 0; c->syms && i < sizeof(entry_names) / sizeof(*entry_names); i++) {
		const struct ks_sym *y = ks_sym_find(c->syms, entry_names[i]);
		if (y && range_at(c, y->addr, 1, true))
			return set_entry(s, c->syms, y->addr, KS_ENTRY_SYMBOL);
	}
	for (size_t i = 0; i < sw->n; i++) {
		const struct ks_site *w = &sw->v[i];
		const struct sites_range *r = range_at(c, w->addr, 1, true);
		if (r && !(w->flags & KS_SITE_DATA) && sites_x86_saves_rsp(c->x, r, w->addr + w->size))
			return set_entry(s, c->syms, w->addr, KS_ENTRY_SWAPGS_RSP);
	}
	size_t starts = 0;
	for (size_t i = 0; i < sw->n; i++) {
		if ((sw->v[i].flags & KS_SITE_DATA) || !sw->v[i].sym || sw->v[i].off)
			continue;
		if (starts++ == 0)
			pick = sw->v[i].addr;
	}
	return starts == 1 ? set_entry(s, c->syms, pick, KS_ENTRY_SWAPGS_FUNC) : 0;
}

static int find_entry(struct scan *c, struct ks_sites *s, const char *named,
		      struct ks_error *err)
{
	if (!named)
		return discover_entry(c, s) < 0 ? ks_error_set(err, -ENOMEM, "out of memory") : 0;
	if (!c->syms)
		return ks_error_set(err, -EINVAL, "syscall entry '%s': no symbols to look it up in",
				    named);
	const struct ks_sym *y = ks_sym_find(c->syms, named);
	if (!y)
		return ks_error_set(err, -ENOENT, "syscall entry: unknown symbol '%s'", named);
	if (set_entry(s, c->syms, y->addr, KS_ENTRY_NAMED) < 0)
		return ks_error_set(err, -ENOMEM, "out of memory");
	return 0;
}

static int export_ranges(const struct scan *c, struct ks_sites *s)
{
	s->ranges = calloc(c->nexec ? c->nexec : 1, sizeof(*s->ranges));
	if (!s->ranges)
		return -ENOMEM;
	for (size_t i = 0; i < c->nexec; i++) {
		const char *name = keep(s, c->r[i].name);
		if (!name)
			return -ENOMEM;
		s->ranges[s->nranges++] = (struct ks_code_range){ c->r[i].start, c->r[i].end, name };
	}
	for (size_t i = 1; i < s->nranges; i++)     /* by address: insertion sort, few ranges */
		for (size_t k = i; k > 0 && s->ranges[k].start < s->ranges[k - 1].start; k--) {
			struct ks_code_range t = s->ranges[k];
			s->ranges[k] = s->ranges[k - 1];
			s->ranges[k - 1] = t;
		}
	return 0;
}

/* ---- public ---- */

static int scan_all(struct scan *c, struct ks_sites *s, const char *named, struct ks_error *err)
{
	int rc;

	if ((rc = read_file(c, err)) < 0 || (rc = open_elf(c, s, err)) < 0)
		return rc;
	if (!(c->x = sites_x86_new(err)))
		return err ? err->code : -ENOMEM;
	if (disassemble(c, s) < 0 || check_list(c, s) < 0 || export_ranges(c, s) < 0)
		return ks_error_set(err, -ENOMEM, "out of memory");
	for (int k = 0; k < KS_SITE_KIND_COUNT; k++)
		if (finish_kind(s, c->syms, &s->kind[k]) < 0)
			return ks_error_set(err, -ENOMEM, "out of memory");
	return find_entry(c, s, named, err);
}

struct ks_sites *ks_sites_scan(const char *elf_path, const struct ks_symtab *syms,
			       const char *syscall_entry, struct ks_error *err)
{
	struct scan c = { .path = elf_path, .syms = syms };
	struct ks_sites *s = calloc(1, sizeof(*s));
	int rc = s ? 0 : ks_error_set(err, -ENOMEM, "out of memory");

	if (rc == 0)
		rc = scan_all(&c, s, syscall_entry, err);
	sites_x86_free(c.x);
	free(c.r);
	if (c.elf)
		elf_end(c.elf);
	free(c.file);
	if (rc < 0) {
		ks_sites_free(s);
		return NULL;
	}
	return s;
}

void ks_sites_free(struct ks_sites *s)
{
	if (!s)
		return;
	for (int k = 0; k < KS_SITE_KIND_COUNT; k++)
		free(s->kind[k].v);
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
	free(s->ranges);
	free(s);
}

const struct ks_site *ks_sites_list(const struct ks_sites *s, enum ks_site_kind kind, size_t *n)
{
	if ((unsigned)kind >= KS_SITE_KIND_COUNT || !s->kind[kind].n) {
		*n = 0;
		return NULL;
	}
	*n = s->kind[kind].n;
	return s->kind[kind].v;
}

bool ks_sites_have_section(const struct ks_sites *s)
{
	return s->have_section;
}

const struct ks_syscall_entry *ks_sites_syscall_entry(const struct ks_sites *s)
{
	return s->has_entry ? &s->entry : NULL;
}

ks_gva_t ks_sites_elf_entry(const struct ks_sites *s)
{
	return s->elf_entry;
}

const struct ks_code_range *ks_sites_code_ranges(const struct ks_sites *s, size_t *n)
{
	*n = s->nranges;
	return s->ranges;
}

void ks_sites_stats(const struct ks_sites *s, struct ks_sites_stats *st)
{
	*st = s->st;
}

const char *ks_site_kind_name(enum ks_site_kind kind)
{
	static const char *const names[] = { "magic", "syscall", "sysret", "iret", "swapgs",
					     "lidt" };

	return (unsigned)kind < KS_SITE_KIND_COUNT ? names[kind] : "invalid";
}

const char *ks_entry_how_name(enum ks_entry_how how)
{
	static const char *const names[] = { "named", "lstar", "symbol", "swapgs-rsp",
					     "swapgs-func" };

	return (unsigned)how < sizeof(names) / sizeof(*names) ? names[how] : "invalid";
}
