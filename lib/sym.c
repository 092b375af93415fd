/* sym.c: symbol tables from ELF files (libelf) and System.map files, lookups both ways, expressions. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/sym.h>

/* Binding, in the order a lookup by name prefers. */
enum bind { BIND_GLOBAL, BIND_WEAK, BIND_LOCAL };

struct entry {
	struct ks_sym s;
	size_t name_off;       /* into the pool while loading; s.name is set at the end */
	unsigned char bind;
};

struct ks_symtab {
	struct entry *e;       /* by address */
	size_t n, cap;
	char *pool;            /* every name, NUL-terminated */
	size_t pool_len, pool_cap;
	const struct entry **byname;  /* by name, then binding, then address */
	const struct entry **byaddr;  /* e without absolute symbols, by address */
	size_t naddr;
};

/* ---- building ---- */

static int add(struct ks_symtab *t, const char *name, ks_gva_t addr, uint64_t size, char type,
	       enum ks_sym_kind kind, enum bind bind)
{
	size_t len = strlen(name) + 1;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct entry *e = realloc(t->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		t->e = e;
		t->cap = cap;
	}
	if (t->pool_len + len > t->pool_cap) {
		size_t cap = t->pool_cap ? t->pool_cap * 2 : 16384;
		while (cap < t->pool_len + len)
			cap *= 2;
		char *p = realloc(t->pool, cap);
		if (!p)
			return -ENOMEM;
		t->pool = p;
		t->pool_cap = cap;
	}
	memcpy(t->pool + t->pool_len, name, len);
	t->e[t->n++] = (struct entry){ .s = { .addr = addr, .size = size, .type = type,
					      .kind = kind },
				       .name_off = t->pool_len, .bind = (unsigned char)bind };
	t->pool_len += len;
	return 0;
}

/* Within one address: functions, objects, labels, absolutes; global before local; names
 * without a leading underscore (kmain, not _text: markers such as _text share addresses with
 * real functions, and a System.map cannot tell them apart by type); then by name. */
static int cmp_addr(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->s.addr != y->s.addr)
		return x->s.addr < y->s.addr ? -1 : 1;
	if (x->s.kind != y->s.kind)
		return (int)x->s.kind - (int)y->s.kind;
	if (x->bind != y->bind)
		return (int)x->bind - (int)y->bind;
	if ((x->s.name[0] == '_') != (y->s.name[0] == '_'))
		return x->s.name[0] == '_' ? 1 : -1;
	return strcmp(x->s.name, y->s.name);
}

static int cmp_name(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;
	int c = strcmp(x->s.name, y->s.name);

	if (c)
		return c;
	if (x->bind != y->bind)
		return (int)x->bind - (int)y->bind;
	return (x->s.addr > y->s.addr) - (x->s.addr < y->s.addr);
}

/* Sorts the table and builds both indexes once every symbol is in. */
static int finish(struct ks_symtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		t->e[i].s.name = t->pool + t->e[i].name_off;
	qsort(t->e, t->n, sizeof(*t->e), cmp_addr);
	t->byname = malloc((t->n ? t->n : 1) * sizeof(*t->byname));
	t->byaddr = malloc((t->n ? t->n : 1) * sizeof(*t->byaddr));
	if (!t->byname || !t->byaddr)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		t->byname[i] = &t->e[i];
		if (t->e[i].s.kind != KS_SYM_ABS)
			t->byaddr[t->naddr++] = &t->e[i];
	}
	qsort(t->byname, t->n, sizeof(*t->byname), cmp_name);
	return 0;
}

/* ---- ELF ---- */

/* nm's letter for a defined ELF symbol, from its binding and its section's kind. */
static char elf_type(const GElf_Sym *s, Elf *elf)
{
	unsigned bind = GELF_ST_BIND(s->st_info), type = GELF_ST_TYPE(s->st_info);
	GElf_Shdr sh;
	char c = 'N';

	if (s->st_shndx == SHN_ABS)
		c = 'A';
	else if (s->st_shndx == SHN_COMMON)
		c = 'C';
	else if (gelf_getshdr(elf_getscn(elf, s->st_shndx), &sh)) {
		if (sh.sh_flags & SHF_EXECINSTR)
			c = 'T';
		else if (sh.sh_type == SHT_NOBITS && (sh.sh_flags & SHF_ALLOC))
			c = 'B';
		else if (sh.sh_flags & SHF_WRITE)
			c = 'D';
		else if (sh.sh_flags & SHF_ALLOC)
			c = 'R';
	}
	if (bind == STB_WEAK)
		c = type == STT_OBJECT ? 'V' : 'W';
	return bind == STB_LOCAL ? (char)tolower((unsigned char)c) : c;
}

static enum ks_sym_kind sym_kind(const GElf_Sym *s)
{
	if (s->st_shndx == SHN_ABS)
		return KS_SYM_ABS;
	switch (GELF_ST_TYPE(s->st_info)) {
	case STT_FUNC:
	case STT_GNU_IFUNC:
		return KS_SYM_FUNC;
	case STT_OBJECT:
	case STT_TLS:
	case STT_COMMON:
		return KS_SYM_OBJECT;
	default:
		return KS_SYM_LABEL;
	}
}

/* Section and file names, undefined references, and ARM's $x/$d mapping markers are not
 * symbols anyone looks for. */
static bool elf_wanted(const GElf_Sym *s, const char *name)
{
	unsigned type = GELF_ST_TYPE(s->st_info);

	if (!name || !*name || s->st_shndx == SHN_UNDEF || type == STT_SECTION ||
	    type == STT_FILE)
		return false;
	return !(name[0] == '$' && (name[1] == 0 || name[2] == 0 || name[2] == '.'));
}

static Elf_Scn *elf_symtab(Elf *elf, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL, *dyn = NULL;
	GElf_Shdr dsh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, sh))
			continue;
		if (sh->sh_type == SHT_SYMTAB)
			return scn;
		if (sh->sh_type == SHT_DYNSYM && !dyn) {
			dyn = scn;
			dsh = *sh;
		}
	}
	if (dyn)
		*sh = dsh;
	return dyn;
}

static int elf_read_syms(struct ks_symtab *t, Elf *elf, const char *path, struct ks_error *err)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elf_symtab(elf, &sh);
	Elf_Data *data;

	if (!scn)
		return ks_error_set(err, -ENOENT, "%s: no symbol table", path);
	if (!(data = elf_getdata(scn, NULL)) || !sh.sh_entsize)
		return ks_error_set(err, -EINVAL, "%s: unreadable symbol table: %s", path,
				    elf_errmsg(-1));
	size_t count = sh.sh_size / sh.sh_entsize;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym s;
		if (!gelf_getsym(data, (int)i, &s))
			continue;
		const char *name = elf_strptr(elf, sh.sh_link, s.st_name);
		if (!elf_wanted(&s, name))
			continue;
		unsigned b = GELF_ST_BIND(s.st_info);
		enum bind bind = b == STB_LOCAL ? BIND_LOCAL : b == STB_WEAK ? BIND_WEAK
									    : BIND_GLOBAL;
		if (add(t, name, s.st_value, s.st_size, elf_type(&s, elf), sym_kind(&s), bind) < 0)
			return ks_error_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int load_elf(struct ks_symtab *t, int fd, const char *path, struct ks_error *err)
{
	Elf *elf = NULL;
	int rc;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return ks_error_set(err, -EINVAL, "libelf: %s", elf_errmsg(-1));
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		rc = ks_error_set(err, -EINVAL, "%s: not a readable ELF file: %s", path,
				  elf_errmsg(-1));
		goto out;
	}
	rc = elf_read_syms(t, elf, path, err);
out:
	elf_end(elf);
	return rc;
}

/* ---- System.map ---- */

static enum ks_sym_kind map_kind(char c)
{
	switch (c) {
	case 'T': case 't': case 'W':
		return KS_SYM_FUNC;
	case 'D': case 'd': case 'B': case 'b': case 'R': case 'r': case 'V':
	case 'G': case 'g': case 'S': case 's': case 'C':
		return KS_SYM_OBJECT;
	case 'A': case 'a':
		return KS_SYM_ABS;
	default:
		return KS_SYM_LABEL;
	}
}

/* Undefined symbols have no address: nm prints "                 U name" for them. */
static bool undefined(char type)
{
	return type == 'U' || type == 'w' || type == 'v';
}

/* Parses one "ADDRESS TYPE NAME [extra]" line. Returns 1 for a symbol, 0 for a line to skip
 * (blank, or an undefined or weak undefined symbol), -EINVAL for garbage. */
static int map_line(char *line, ks_gva_t *addr, char *type, char **name)
{
	char *p = line, *end;

	while (isspace((unsigned char)*p))
		p++;
	if (!*p || (undefined(*p) && isblank((unsigned char)p[1])))
		return 0;
	if (!isxdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	*addr = strtoull(p, &end, 16);
	if (errno || !isblank((unsigned char)*end))
		return -EINVAL;
	p = end + strspn(end, " \t");
	if (!isalpha((unsigned char)*p) && *p != '?' && *p != '-')
		return -EINVAL;
	*type = *p++;
	if (!isblank((unsigned char)*p))
		return -EINVAL;
	p += strspn(p, " \t");
	*name = p;
	p += strcspn(p, " \t\r\n");
	if (p == *name)
		return -EINVAL;
	*p = 0;
	return !undefined(*type);
}

static int load_map(struct ks_symtab *t, FILE *f, const char *path, struct ks_error *err)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	int rc = 0;

	while (getline(&line, &cap, f) >= 0) {
		ks_gva_t addr;
		char type, *name;
		int r = map_line(line, &addr, &type, &name);

		lineno++;
		if (r < 0) {
			rc = ks_error_set(err, -EINVAL,
					  "%s:%lu: expected 'ADDRESS TYPE NAME' (System.map format)",
					  path, lineno);
			goto out;
		}
		enum bind bind = islower((unsigned char)type) ? BIND_LOCAL
				 : type == 'W' || type == 'V' ? BIND_WEAK : BIND_GLOBAL;
		if (r && add(t, name, addr, 0, type, map_kind(type), bind) < 0) {
			rc = ks_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (ferror(f))
		rc = ks_error_set(err, -EIO, "%s: read error", path);
out:
	free(line);
	return rc;
}

/* ---- loading ---- */

static int load_file(struct ks_symtab *t, const char *path, struct ks_error *err)
{
	unsigned char magic[4] = { 0 };
	FILE *f = NULL;
	int rc, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ks_error_set(err, -errno, "%s: %s", path, strerror(errno));
	ssize_t n = pread(fd, magic, sizeof(magic), 0);
	if (n == (ssize_t)sizeof(magic) && !memcmp(magic, ELFMAG, SELFMAG)) {
		rc = load_elf(t, fd, path, err);
		goto out;
	}
	f = fdopen(fd, "r");
	if (!f) {
		rc = ks_error_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	rc = load_map(t, f, path, err);
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return rc;
}

struct ks_symtab *ks_sym_load(const char *path, struct ks_error *err)
{
	struct ks_symtab *t = calloc(1, sizeof(*t));
	int rc;

	if (!t) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	rc = load_file(t, path, err);
	if (rc == 0 && t->n == 0)
		rc = ks_error_set(err, -ENOENT, "%s: no symbols", path);
	if (rc == 0 && finish(t) < 0)
		rc = ks_error_set(err, -ENOMEM, "out of memory");
	if (rc < 0) {
		ks_sym_free(t);
		return NULL;
	}
	return t;
}

void ks_sym_free(struct ks_symtab *t)
{
	if (!t)
		return;
	free(t->byname);
	free(t->byaddr);
	free(t->pool);
	free(t->e);
	free(t);
}

/* ---- lookups ---- */

size_t ks_sym_count(const struct ks_symtab *t)
{
	return t->n;
}

const struct ks_sym *ks_sym_get(const struct ks_symtab *t, size_t i)
{
	return i < t->n ? &t->e[i].s : NULL;
}

const struct ks_sym *ks_sym_find(const struct ks_symtab *t, const char *name)
{
	size_t lo = 0, hi = t->n;

	/* The first entry with this name: the sort put the preferred one there. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(t->byname[mid]->s.name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->n && !strcmp(t->byname[lo]->s.name, name))
		return &t->byname[lo]->s;
	return NULL;
}

const struct ks_sym *ks_sym_at(const struct ks_symtab *t, ks_gva_t addr, uint64_t *offset)
{
	size_t lo = 0, hi = t->naddr;

	/* lo: the first symbol above addr; the group below it holds addr, if any does. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->byaddr[mid]->s.addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	size_t last = lo - 1, first = last;
	ks_gva_t at = t->byaddr[last]->s.addr;
	uint64_t size = 0;
	while (first > 0 && t->byaddr[first - 1]->s.addr == at)
		first--;
	for (size_t i = first; i <= last; i++)
		if (t->byaddr[i]->s.size > size)
			size = t->byaddr[i]->s.size;
	if (size ? addr - at >= size : lo == t->naddr && addr != at)
		return NULL;
	if (offset)
		*offset = addr - at;
	return &t->byaddr[first]->s;
}

int ks_sym_format(const struct ks_symtab *t, ks_gva_t addr, char *buf, size_t size)
{
	uint64_t off;
	const struct ks_sym *s = t ? ks_sym_at(t, addr, &off) : NULL;

	if (!s) {
		snprintf(buf, size, "0x%" PRIx64, addr);
		return -ENOENT;
	}
	if (off)
		snprintf(buf, size, "%s+0x%" PRIx64, s->name, off);
	else
		snprintf(buf, size, "%s", s->name);
	return 0;
}

/* ---- expressions ---- */

/* A hex number, 0x optional, that spans all of [s, s + len). */
static int parse_hex(const char *s, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (!len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (!isxdigit(c))
			return -EINVAL;
		if (x >> 60)
			return -ERANGE;
		x = x << 4 | (uint64_t)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
	}
	*v = x;
	return 0;
}

/* The base of an expression: a symbol (preferred) or a number. */
static int parse_base(const struct ks_symtab *t, const char *s, size_t len, uint64_t *v,
		      struct ks_error *err)
{
	bool prefixed = len > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	char *name = NULL;
	int rc;

	if (!prefixed && t) {
		if (!(name = strndup(s, len)))
			return ks_error_set(err, -ENOMEM, "out of memory");
		const struct ks_sym *sym = ks_sym_find(t, name);
		free(name);
		if (sym) {
			*v = sym->addr;
			return 0;
		}
	}
	rc = parse_hex(s, len, v);
	if (rc == -ERANGE)
		return ks_error_set(err, rc, "address '%.*s' beyond 64 bits", (int)len, s);
	if (rc < 0 && prefixed)
		return ks_error_set(err, rc, "bad address '%.*s'", (int)len, s);
	if (rc < 0)
		return ks_error_set(err, -ENOENT, "unknown symbol '%.*s'", (int)len, s);
	return 0;
}

/* [s, e) without blanks at either end. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* The offset after the operator, with an optional "/SIZE" (as Linux prints
 * "func+0x1c/0x80"): the size is checked, not used. */
static int parse_offset(const char *o, const char *e, uint64_t *off)
{
	const char *slash = memchr(o, '/', (size_t)(e - o));
	const char *oe = slash ? slash : e;
	uint64_t ignored;

	trim(&o, &oe);
	if (parse_hex(o, (size_t)(oe - o), off) < 0)
		return -EINVAL;
	if (slash) {
		const char *z = slash + 1, *ze = e;
		trim(&z, &ze);
		if (parse_hex(z, (size_t)(ze - z), &ignored) < 0)
			return -EINVAL;
	}
	return 0;
}

int ks_sym_parse(const struct ks_symtab *t, const char *expr, ks_gva_t *addr,
		 struct ks_error *err)
{
	const char *s = expr, *e = expr + strlen(expr);
	uint64_t base, off = 0;
	int rc;

	trim(&s, &e);
	if (s == e)
		return ks_error_set(err, -EINVAL, "empty address expression");
	const char *op = s + 1 + strcspn(s + 1, "+-");
	if (op > e)
		op = e;
	const char *be = op;
	trim(&s, &be);
	rc = parse_base(t, s, (size_t)(be - s), &base, err);
	if (rc < 0 || op == e)
		goto out;
	if (parse_offset(op + 1, e, &off) < 0) {
		rc = ks_error_set(err, -EINVAL, "bad offset '%.*s' in '%.*s'", (int)(e - op - 1),
				  op + 1, (int)(e - s), s);
		goto out;
	}
	if (*op == '+' ? base + off < base : off > base) {
		rc = ks_error_set(err, -ERANGE, "'%.*s' is beyond 64 bits", (int)(e - s), s);
		goto out;
	}
	base = *op == '+' ? base + off : base - off;
out:
	if (rc == 0)
		*addr = base;
	return rc;
}
