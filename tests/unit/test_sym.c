/* test_sym.c: symbol tables from a generated ELF64, a generated System.map and this test's own executable. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/sym.h>

#define TB 0xffffffff80001000ull /* .text */
#define DB 0xffffffff80002000ull /* .data */
#define BB 0xffffffff80003000ull /* .bss */
#define RB 0xffffffff80004000ull /* .rodata */

enum { S_NULL, S_TEXT, S_DATA, S_BSS, S_RODATA, S_SYMTAB, S_STRTAB, S_SHSTRTAB, S_COUNT };

/* The fixture's symbols, locals first as ELF wants them. */
static const struct fsym {
	const char *name;
	unsigned char bind, type;
	uint16_t shndx;
	uint64_t value, size;
} fsyms[] = {
	{ "", STB_LOCAL, STT_NOTYPE, SHN_UNDEF, 0, 0 },
	{ "demo.c", STB_LOCAL, STT_FILE, SHN_ABS, 0, 0 },
	{ "", STB_LOCAL, STT_SECTION, S_TEXT, TB, 0 },
	{ "helper", STB_LOCAL, STT_FUNC, S_TEXT, TB + 0x40, 0x20 },
	{ "counter", STB_LOCAL, STT_OBJECT, S_BSS, BB, 8 },
	{ "dup", STB_LOCAL, STT_FUNC, S_TEXT, TB + 0xb0, 0x10 },
	{ "helper", STB_LOCAL, STT_FUNC, S_TEXT, TB + 0xa0, 0x10 },
	{ "$x", STB_LOCAL, STT_NOTYPE, S_TEXT, TB, 0 },
	{ "kmain", STB_GLOBAL, STT_FUNC, S_TEXT, TB, 0x40 },
	{ "_text", STB_GLOBAL, STT_NOTYPE, S_TEXT, TB, 0 },
	{ "entry_label", STB_GLOBAL, STT_NOTYPE, S_TEXT, TB + 0x80, 0 },
	{ "kt_state", STB_GLOBAL, STT_OBJECT, S_DATA, DB, 0x100 },
	{ "dup", STB_GLOBAL, STT_OBJECT, S_DATA, DB + 0x100, 0x10 },
	{ "table", STB_GLOBAL, STT_OBJECT, S_RODATA, RB, 0x10 },
	{ "ABS_CONST", STB_GLOBAL, STT_NOTYPE, SHN_ABS, 0x1234, 0 },
	{ "weak_fn", STB_WEAK, STT_FUNC, S_TEXT, TB + 0x60, 0x10 },
	{ "undefined_ref", STB_GLOBAL, STT_NOTYPE, SHN_UNDEF, 0, 0 },
};
#define NLOCAL 8
#define NFSYMS (sizeof(fsyms) / sizeof(fsyms[0]))

/* A growing file image. */
struct img {
	uint8_t buf[8192];
	size_t len;
};

static size_t put(struct img *im, const void *p, size_t n, size_t align)
{
	im->len = (im->len + align - 1) & ~(align - 1);
	assert_true(im->len + n <= sizeof(im->buf));
	if (p)
		memcpy(im->buf + im->len, p, n);
	im->len += n;
	return im->len - n;
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Puts the symbols and their names into the image; fills the two section headers. */
static void put_symbols(struct img *im, Elf64_Shdr *symtab, Elf64_Shdr *strtab)
{
	char names[512] = "";
	size_t len = 1;
	Elf64_Sym syms[NFSYMS];

	for (size_t i = 0; i < NFSYMS; i++) {
		size_t nl = strlen(fsyms[i].name);
		syms[i] = (Elf64_Sym){ .st_name = nl ? (Elf64_Word)len : 0,
				       .st_info = ELF64_ST_INFO(fsyms[i].bind, fsyms[i].type),
				       .st_shndx = fsyms[i].shndx, .st_value = fsyms[i].value,
				       .st_size = fsyms[i].size };
		if (nl) {
			memcpy(names + len, fsyms[i].name, nl + 1);
			len += nl + 1;
		}
	}
	*symtab = (Elf64_Shdr){ .sh_type = SHT_SYMTAB, .sh_offset = put(im, syms, sizeof(syms), 8),
				.sh_size = sizeof(syms), .sh_link = S_STRTAB, .sh_info = NLOCAL,
				.sh_addralign = 8, .sh_entsize = sizeof(Elf64_Sym) };
	*strtab = (Elf64_Shdr){ .sh_type = SHT_STRTAB, .sh_offset = put(im, names, len, 1),
				.sh_size = len, .sh_addralign = 1 };
}

/* A section of size bytes at addr (NOBITS when no contents are written). */
static Elf64_Shdr section(struct img *im, uint32_t type, uint64_t flags, uint64_t addr,
			  uint64_t size)
{
	static const uint8_t zeros[0x200];

	return (Elf64_Shdr){ .sh_type = type, .sh_flags = flags, .sh_addr = addr,
			     .sh_offset = type == SHT_NOBITS ? im->len : put(im, zeros, size, 16),
			     .sh_size = size, .sh_addralign = 16 };
}

/* Writes an ET_EXEC ELF64 with .text, .data, .bss, .rodata and the symbols above. */
static void write_elf(const char *path)
{
	static const char shstr[] = "\0.text\0.data\0.bss\0.rodata\0.symtab\0.strtab\0.shstrtab";
	static const unsigned shname[S_COUNT] = { 0, 1, 7, 13, 18, 26, 34, 42 };
	struct img *im = calloc(1, sizeof(*im));
	Elf64_Shdr sh[S_COUNT] = { { 0 } };

	put(im, NULL, sizeof(Elf64_Ehdr), 1);
	sh[S_TEXT] = section(im, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB, 0x100);
	sh[S_DATA] = section(im, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, DB, 0x200);
	sh[S_BSS] = section(im, SHT_NOBITS, SHF_ALLOC | SHF_WRITE, BB, 0x100);
	sh[S_RODATA] = section(im, SHT_PROGBITS, SHF_ALLOC, RB, 0x20);
	put_symbols(im, &sh[S_SYMTAB], &sh[S_STRTAB]);
	sh[S_SHSTRTAB] = (Elf64_Shdr){ .sh_type = SHT_STRTAB,
				       .sh_offset = put(im, shstr, sizeof(shstr), 1),
				       .sh_size = sizeof(shstr), .sh_addralign = 1 };
	for (int i = 0; i < S_COUNT; i++)
		sh[i].sh_name = shname[i];
	size_t shoff = put(im, sh, sizeof(sh), 8);
	Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			  .e_entry = TB, .e_shoff = shoff, .e_ehsize = sizeof(Elf64_Ehdr),
			  .e_shentsize = sizeof(Elf64_Shdr), .e_shnum = S_COUNT,
			  .e_shstrndx = S_SHSTRTAB };
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(im->buf, &eh, sizeof(eh));
	write_file(path, im->buf, im->len);
	free(im);
}

/* The same symbols as nm would print them, as a System.map (plus what nm adds). */
static const char system_map[] =
	"0000000000001234 A ABS_CONST\n"
	"ffffffff80001000 T _text\n"
	"ffffffff80001000 T kmain\n"
	"ffffffff80001040 t helper\n"
	"ffffffff80001060 W weak_fn\n"
	"ffffffff80001080 T entry_label\n"
	"ffffffff800010a0 t helper\n"
	"ffffffff800010b0 t dup\n"
	"\n"
	"ffffffff80002000 D kt_state\n"
	"ffffffff80002100 D dup\n"
	"ffffffff80003000 b counter\n"
	"                 U undefined_ref\n"
	"                 w weak_undefined\n"
	"ffffffff80004000 R table\t[demo_module]\r\n";

struct fixture {
	char dir[64], elf[96], map[96];
	struct ks_symtab *t_elf, *t_map;
};

static int setup(void **state)
{
	static struct fixture f;
	struct ks_error err = { 0 };

	snprintf(f.dir, sizeof(f.dir), "/tmp/kscope-test-sym-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.elf, sizeof(f.elf), "%s/demo.elf", f.dir);
	snprintf(f.map, sizeof(f.map), "%s/System.map", f.dir);
	write_elf(f.elf);
	write_file(f.map, system_map, strlen(system_map));
	if (!(f.t_elf = ks_sym_load(f.elf, &err)))
		fail_msg("%s", err.msg);
	if (!(f.t_map = ks_sym_load(f.map, &err)))
		fail_msg("%s", err.msg);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ks_sym_free(f->t_elf);
	ks_sym_free(f->t_map);
	unlink(f->elf);
	unlink(f->map);
	rmdir(f->dir);
	return 0;
}

static void elf_names_types_sizes(void **state)
{
	static const struct { const char *name; ks_gva_t addr; uint64_t size; char type;
			      enum ks_sym_kind kind; } want[] = {
		{ "kmain", TB, 0x40, 'T', KS_SYM_FUNC },
		{ "_text", TB, 0, 'T', KS_SYM_LABEL },
		{ "helper", TB + 0x40, 0x20, 't', KS_SYM_FUNC },  /* two locals: the lower */
		{ "weak_fn", TB + 0x60, 0x10, 'W', KS_SYM_FUNC },
		{ "entry_label", TB + 0x80, 0, 'T', KS_SYM_LABEL },
		{ "dup", DB + 0x100, 0x10, 'D', KS_SYM_OBJECT },  /* the global wins */
		{ "kt_state", DB, 0x100, 'D', KS_SYM_OBJECT },
		{ "counter", BB, 8, 'b', KS_SYM_OBJECT },
		{ "table", RB, 0x10, 'R', KS_SYM_OBJECT },
		{ "ABS_CONST", 0x1234, 0, 'A', KS_SYM_ABS },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct ks_sym *s = ks_sym_find(f->t_elf, want[i].name);
		if (!s)
			fail_msg("%s not found", want[i].name);
		assert_string_equal(s->name, want[i].name);
		assert_true(s->addr == want[i].addr);
		assert_true(s->size == want[i].size);
		assert_int_equal(s->type, want[i].type);
		assert_int_equal(s->kind, want[i].kind);
	}
	/* File, section, undefined and mapping-marker symbols are not loaded. */
	assert_null(ks_sym_find(f->t_elf, "demo.c"));
	assert_null(ks_sym_find(f->t_elf, "undefined_ref"));
	assert_null(ks_sym_find(f->t_elf, "$x"));
	assert_null(ks_sym_find(f->t_elf, ""));
	assert_null(ks_sym_find(f->t_elf, "zzz"));
	assert_int_equal(ks_sym_count(f->t_elf), 12);
}

/* Iteration is by address, and each symbol appears once. */
static void iteration_in_address_order(void **state)
{
	struct fixture *f = *state;
	const struct ks_symtab *tabs[] = { f->t_elf, f->t_map };

	for (int k = 0; k < 2; k++) {
		size_t n = ks_sym_count(tabs[k]);
		for (size_t i = 1; i < n; i++)
			assert_true(ks_sym_get(tabs[k], i - 1)->addr <= ks_sym_get(tabs[k], i)->addr);
		assert_null(ks_sym_get(tabs[k], n));
	}
	assert_string_equal(ks_sym_get(f->t_elf, 0)->name, "ABS_CONST");
	assert_string_equal(ks_sym_get(f->t_elf, 1)->name, "kmain");
	assert_int_equal(ks_sym_count(f->t_map), 12);
}

/* Address to name+offset: the same answers from the ELF and from the System.map, except
 * where only the ELF's sizes can tell that an address is in no symbol. */
static void address_to_name(void **state)
{
	static const struct { ks_gva_t addr; const char *elf, *map; } cases[] = {
		{ TB, "kmain", "kmain" },
		{ TB + 0x10, "kmain+0x10", "kmain+0x10" },
		{ TB + 0x40, "helper", "helper" },
		{ TB + 0x5f, "helper+0x1f", "helper+0x1f" },
		{ TB + 0x60, "weak_fn", "weak_fn" },
		{ TB + 0x70, NULL, "weak_fn+0x10" },      /* past weak_fn's end */
		{ TB + 0x90, "entry_label+0x10", "entry_label+0x10" },
		{ TB + 0xa8, "helper+0x8", "helper+0x8" },
		{ DB + 0x80, "kt_state+0x80", "kt_state+0x80" },
		{ DB + 0x108, "dup+0x8", "dup+0x8" },
		{ BB + 4, "counter+0x4", "counter+0x4" },
		{ RB, "table", "table" },
		{ RB + 0x10, NULL, NULL },                /* beyond the highest symbol */
		{ 0x1234, NULL, NULL },                   /* absolute symbols are not places */
		{ 0x1000, NULL, NULL },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *want[2] = { cases[i].elf, cases[i].map };
		const struct ks_symtab *tabs[2] = { f->t_elf, f->t_map };

		for (int k = 0; k < 2; k++) {
			char buf[64], hex[32];
			int rc = ks_sym_format(tabs[k], cases[i].addr, buf, sizeof(buf));

			snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)cases[i].addr);
			if (rc != (want[k] ? 0 : -ENOENT) || strcmp(buf, want[k] ? want[k] : hex))
				fail_msg("case %zu (%s): got '%s' (%d)", i, k ? "map" : "elf", buf, rc);
		}
	}
	uint64_t off = 0;
	const struct ks_sym *s = ks_sym_at(f->t_elf, TB + 0x12, &off);
	assert_string_equal(s->name, "kmain");
	assert_true(off == 0x12);
	assert_non_null(ks_sym_at(f->t_elf, TB + 0x12, NULL));
	char small[6];
	ks_sym_format(f->t_elf, TB + 0x12, small, sizeof(small));
	assert_string_equal(small, "kmain");
}

static void system_map_types(void **state)
{
	struct fixture *f = *state;
	const struct ks_sym *s;

	assert_non_null(s = ks_sym_find(f->t_map, "kmain"));
	assert_int_equal(s->kind, KS_SYM_FUNC);
	assert_true(s->size == 0);
	assert_non_null(s = ks_sym_find(f->t_map, "counter"));
	assert_int_equal(s->type, 'b');
	assert_int_equal(s->kind, KS_SYM_OBJECT);
	assert_non_null(s = ks_sym_find(f->t_map, "ABS_CONST"));
	assert_int_equal(s->kind, KS_SYM_ABS);
	assert_non_null(s = ks_sym_find(f->t_map, "dup"));
	assert_int_equal(s->type, 'D');
	assert_non_null(s = ks_sym_find(f->t_map, "table"));  /* the [module] field is dropped */
	assert_int_equal(s->type, 'R');
	assert_null(ks_sym_find(f->t_map, "undefined_ref"));
	assert_null(ks_sym_find(f->t_map, "weak_undefined"));
}

/* Every symbol with a name of its own: the addresses inside it format and parse back. (A
 * name two static symbols share parses to the one ks_sym_find() prefers.) */
static void name_offset_round_trip(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < ks_sym_count(f->t_elf); i++) {
		const struct ks_sym *s = ks_sym_get(f->t_elf, i);
		char buf[64];
		ks_gva_t back = 0;

		if (s->kind == KS_SYM_ABS || ks_sym_find(f->t_elf, s->name) != s)
			continue;
		for (uint64_t off = 0; off < (s->size ? s->size : 1); off += 3) {
			assert_int_equal(ks_sym_format(f->t_elf, s->addr + off, buf, sizeof(buf)), 0);
			assert_int_equal(ks_sym_parse(f->t_elf, buf, &back, NULL), 0);
			if (back != s->addr + off)
				fail_msg("%s+%llu: '%s' parsed to 0x%llx", s->name,
					 (unsigned long long)off, buf, (unsigned long long)back);
		}
	}
}

static void expressions(void **state)
{
	static const struct { const char *expr; int rc; ks_gva_t addr; const char *msg; } cases[] = {
		{ "kmain", 0, TB, NULL },
		{ "kmain+0x10", 0, TB + 0x10, NULL },
		{ "kmain+10", 0, TB + 0x10, NULL },            /* hex, as printed */
		{ "  kt_state + 0x8 ", 0, DB + 8, NULL },
		{ " kt_state+0x8\n", 0, DB + 8, NULL },
		{ "kmain-0x8", 0, TB - 8, NULL },
		{ "kmain+0x1c/0x40", 0, TB + 0x1c, NULL },
		{ "0xffffffff80001000", 0, TB, NULL },
		{ "ffffffff80001000", 0, TB, NULL },
		{ "1000", 0, 0x1000, NULL },
		{ "0X1f+0x1", 0, 0x20, NULL },
		{ "ABS_CONST", 0, 0x1234, NULL },
		{ "foo", -ENOENT, 0, "unknown symbol 'foo'" },
		{ "foo+0x10", -ENOENT, 0, "unknown symbol 'foo'" },
		{ "kmain+zz", -EINVAL, 0, "bad offset 'zz'" },
		{ "kmain+", -EINVAL, 0, "bad offset" },
		{ "kmain+0x1c/zz", -EINVAL, 0, "bad offset" },
		{ "", -EINVAL, 0, "empty" },
		{ "   ", -EINVAL, 0, "empty" },
		{ "0x", -EINVAL, 0, "bad address '0x'" },
		{ "0xfffffffffffffffff", -ERANGE, 0, "beyond 64 bits" },
		{ "ffffffffffffffff+1", -ERANGE, 0, "beyond 64 bits" },
		{ "0-1", -ERANGE, 0, "beyond 64 bits" },
		{ "0xzz", -EINVAL, 0, "bad address" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ks_error err = { 0 };
		ks_gva_t addr = 0;
		int rc = ks_sym_parse(f->t_elf, cases[i].expr, &addr, &err);

		if (rc != cases[i].rc)
			fail_msg("'%s': %d, want %d (%s)", cases[i].expr, rc, cases[i].rc, err.msg);
		if (rc == 0 && addr != cases[i].addr)
			fail_msg("'%s': 0x%llx", cases[i].expr, (unsigned long long)addr);
		if (cases[i].msg && !strstr(err.msg, cases[i].msg))
			fail_msg("'%s': '%s' lacks '%s'", cases[i].expr, err.msg, cases[i].msg);
	}
}

/* A symbol whose name is also a hex number is the symbol; 0x makes it the number. */
static void symbol_names_that_look_like_numbers(void **state)
{
	struct fixture *f = *state;
	char path[128];
	ks_gva_t a = 0;

	snprintf(path, sizeof(path), "%s/hex.map", f->dir);
	static const char map[] = "ffffffff81000000 T add\nffffffff81000100 T cafe\n";
	write_file(path, map, strlen(map));
	struct ks_symtab *t = ks_sym_load(path, NULL);
	assert_non_null(t);
	assert_int_equal(ks_sym_parse(t, "add", &a, NULL), 0);
	assert_true(a == 0xffffffff81000000ull);
	assert_int_equal(ks_sym_parse(t, "cafe+10", &a, NULL), 0);
	assert_true(a == 0xffffffff81000110ull);
	assert_int_equal(ks_sym_parse(t, "0xadd", &a, NULL), 0);
	assert_true(a == 0xadd);
	assert_int_equal(ks_sym_parse(NULL, "add", &a, NULL), 0);
	assert_true(a == 0xadd);
	struct ks_error err = { 0 };
	assert_int_equal(ks_sym_parse(NULL, "kmain", &a, &err), -ENOENT);
	assert_string_equal(err.msg, "unknown symbol 'kmain'");
	ks_sym_free(t);
	unlink(path);
}

static void load_errors(void **state)
{
	static const struct { const char *text; int code; const char *msg; } cases[] = {
		{ "ffffffff81000000 T kmain\nnot a symbol line\n", -EINVAL, ":2: expected" },
		{ "ffffffff81000000 T\n", -EINVAL, ":1: expected" },
		{ "ffffffff81000000Tkmain\n", -EINVAL, ":1: expected" },
		{ "ffffffff81000000 TT kmain\n", -EINVAL, ":1: expected" },
		{ "1ffffffff810000000 T kmain\n", -EINVAL, ":1: expected" },
		{ "", -ENOENT, "no symbols" },
		{ "\n\n                 U only_undefined\n", -ENOENT, "no symbols" },
		{ "\x7f" "ELF garbage", -EINVAL, "not a readable ELF" },
	};
	struct fixture *f = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/bad.map", f->dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ks_error err = { 0 };

		write_file(path, cases[i].text, strlen(cases[i].text));
		assert_null(ks_sym_load(path, &err));
		if (err.code != cases[i].code || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: %d '%s'", i, err.code, err.msg);
	}
	unlink(path);
	struct ks_error err = { 0 };
	assert_null(ks_sym_load("/nonexistent/System.map", &err));
	assert_int_equal(err.code, -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/System.map"));
	ks_sym_free(NULL);
}

/* A real executable from the real toolchain: this test itself. */
static void own_executable(void **state)
{
	struct ks_error err = { 0 };
	struct ks_symtab *t = ks_sym_load("/proc/self/exe", &err);
	const struct ks_sym *s;
	char buf[64];
	(void)state;

	if (!t)
		fail_msg("%s", err.msg);
	assert_non_null(s = ks_sym_find(t, "main"));
	assert_int_equal(s->kind, KS_SYM_FUNC);
	assert_int_equal(s->type, 'T');
	assert_true(s->size > 0);
	assert_int_equal(ks_sym_format(t, s->addr + 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "main+0x1");
	assert_non_null(s = ks_sym_find(t, "ks_sym_load"));
	assert_int_equal(s->kind, KS_SYM_FUNC);
	assert_non_null(s = ks_sym_find(t, "fsyms"));
	assert_int_equal(s->kind, KS_SYM_OBJECT);
	assert_true(s->size == sizeof(fsyms));
	ks_sym_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(elf_names_types_sizes),
		cmocka_unit_test(iteration_in_address_order),
		cmocka_unit_test(address_to_name),
		cmocka_unit_test(system_map_types),
		cmocka_unit_test(name_offset_round_trip),
		cmocka_unit_test(expressions),
		cmocka_unit_test(symbol_names_that_look_like_numbers),
		cmocka_unit_test(load_errors),
		cmocka_unit_test(own_executable),
	};

	return cmocka_run_group_tests_name("sym", tests, setup, teardown);
}
