/* test_sites.c: event sites and the syscall entry found in small hand-assembled ELF files. */
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

#include <kscope/sites.h>
#include <kscope/sym.h>

#define TB 0xffffffff80001000ull /* .text */
#define TB2 0xffffffff80002000ull /* a second function area in .text tests */
#define RB 0xffffffff80004000ull /* .rodata */
#define BOOT 0x100000ull         /* low 32-bit boot code */

#define MAGIC 0x66, 0x87, 0xdb
#define SYSCALL 0x0f, 0x05
#define SYSRETQ 0x48, 0x0f, 0x07
#define IRETQ 0x48, 0xcf
#define SWAPGS 0x0f, 0x01, 0xf8
#define RET 0xc3
#define LE32(v) (uint8_t)(v), (uint8_t)((v) >> 8), (uint8_t)((v) >> 16), (uint8_t)((v) >> 24)
#define LE64(v) LE32(v), LE32((uint64_t)(v) >> 32)

static char dir[] = "/tmp/kscope-sites-XXXXXX";

/* ---- a tiny ELF writer ---- */

struct fsec {
	const char *name;
	uint32_t type;
	uint64_t flags, addr;
	const uint8_t *data;
	size_t size;
};

struct fsym {
	const char *name;
	int sec;               /* index into the fixture's sections */
	unsigned char type;    /* STT_* */
	uint64_t value, size;
};

struct fixture {
	uint16_t machine;      /* 0: EM_X86_64 */
	uint64_t entry;
	const struct fsec *secs;
	size_t nsecs;
	const struct fsym *syms;
	size_t nsyms;
	bool segments_only;    /* no section headers: one PT_LOAD per executable section */
};

struct img {
	uint8_t buf[16384];
	size_t len;
};

static size_t put(struct img *im, const void *p, size_t n, size_t align)
{
	im->len = (im->len + align - 1) & ~(align - 1);
	assert_true(im->len + n <= sizeof(im->buf));
	if (p)
		memcpy(im->buf + im->len, p, n);
	else
		memset(im->buf + im->len, 0, n);
	im->len += n;
	return im->len - n;
}

static uint32_t add_name(char *tab, size_t *len, const char *name)
{
	size_t at = *len;

	strcpy(tab + at, name);
	*len += strlen(name) + 1;
	return (uint32_t)at;
}

/* Symbols into .symtab/.strtab; returns their headers' contents. */
static void put_syms(struct img *im, const struct fixture *f, Elf64_Shdr *sh, size_t first)
{
	char str[1024] = "";
	size_t slen = 1;
	Elf64_Sym st[32] = { { 0 } };

	assert_true(f->nsyms < 32);
	for (size_t i = 0; i < f->nsyms; i++)
		st[i + 1] = (Elf64_Sym){ .st_name = add_name(str, &slen, f->syms[i].name),
					 .st_info = ELF64_ST_INFO(STB_GLOBAL, f->syms[i].type),
					 .st_shndx = (uint16_t)(first + (size_t)f->syms[i].sec),
					 .st_value = f->syms[i].value, .st_size = f->syms[i].size };
	sh[0].sh_offset = put(im, st, (f->nsyms + 1) * sizeof(*st), 8);
	sh[0].sh_size = (f->nsyms + 1) * sizeof(*st);
	sh[1].sh_offset = put(im, str, slen, 1);
	sh[1].sh_size = slen;
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

/* Writes the fixture to a file in dir; returns its path (static buffer). */
static const char *write_elf(const char *name, const struct fixture *f)
{
	static char path[256];
	static struct img im;
	Elf64_Shdr sh[24] = { { 0 } };
	Elf64_Phdr ph[8] = { { 0 } };
	char shstr[512] = "";
	size_t slen = 1, n = 1, nph = 0;

	im.len = 0;
	put(&im, NULL, sizeof(Elf64_Ehdr), 1);
	for (size_t i = 0; f->segments_only && i < f->nsecs; i++)
		if (f->secs[i].flags & SHF_EXECINSTR)
			nph++;
	put(&im, NULL, nph * sizeof(Elf64_Phdr), 8);
	nph = 0;
	for (size_t i = 0; i < f->nsecs; i++, n++) {
		const struct fsec *s = &f->secs[i];
		sh[n] = (Elf64_Shdr){ .sh_name = add_name(shstr, &slen, s->name), .sh_type = s->type,
				      .sh_flags = s->flags, .sh_addr = s->addr, .sh_size = s->size,
				      .sh_addralign = 1 };
		sh[n].sh_offset = put(&im, s->data, s->size, 16);
		if (f->segments_only && (s->flags & SHF_EXECINSTR))
			ph[nph++] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_X,
						  .p_offset = sh[n].sh_offset, .p_vaddr = s->addr,
						  .p_paddr = s->addr, .p_filesz = s->size,
						  .p_memsz = s->size, .p_align = 16 };
	}
	if (f->nsyms) {
		sh[n] = (Elf64_Shdr){ .sh_name = add_name(shstr, &slen, ".symtab"),
				      .sh_type = SHT_SYMTAB, .sh_link = (uint32_t)n + 1, .sh_info = 1,
				      .sh_entsize = sizeof(Elf64_Sym), .sh_addralign = 8 };
		sh[n + 1] = (Elf64_Shdr){ .sh_name = add_name(shstr, &slen, ".strtab"),
					  .sh_type = SHT_STRTAB, .sh_addralign = 1 };
		put_syms(&im, f, &sh[n], 1);
		n += 2;
	}
	sh[n] = (Elf64_Shdr){ .sh_name = add_name(shstr, &slen, ".shstrtab"),
			      .sh_type = SHT_STRTAB, .sh_addralign = 1 };
	sh[n].sh_offset = put(&im, shstr, slen, 1);
	sh[n].sh_size = slen;
	size_t shoff = put(&im, sh, (n + 1) * sizeof(*sh), 8);
	memcpy(im.buf + sizeof(Elf64_Ehdr), ph, nph * sizeof(*ph));

	Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = f->machine ? f->machine : EM_X86_64,
			  .e_version = EV_CURRENT, .e_entry = f->entry,
			  .e_phoff = nph ? sizeof(Elf64_Ehdr) : 0, .e_ehsize = sizeof(Elf64_Ehdr),
			  .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (uint16_t)nph,
			  .e_shentsize = sizeof(Elf64_Shdr) };
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	if (!f->segments_only) {
		eh.e_shoff = shoff;
		eh.e_shnum = (uint16_t)(n + 1);
		eh.e_shstrndx = (uint16_t)n;
	}
	memcpy(im.buf, &eh, sizeof(eh));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	write_file(path, im.buf, im.len);
	return path;
}

/* ---- helpers ---- */

static struct ks_symtab *syms_of(const char *path)
{
	struct ks_error err = { 0 };
	struct ks_symtab *t = ks_sym_load(path, &err);

	if (!t)
		fail_msg("%s", err.msg);
	return t;
}

static struct ks_sites *scan(const char *path, const struct ks_symtab *t, const char *entry)
{
	struct ks_error err = { 0 };
	struct ks_sites *s = ks_sites_scan(path, t, entry, &err);

	if (!s)
		fail_msg("%s: %s", path, err.msg);
	return s;
}

/* The one site of a kind; fails unless there is exactly one. */
static const struct ks_site *only(const struct ks_sites *s, enum ks_site_kind kind)
{
	size_t n;
	const struct ks_site *v = ks_sites_list(s, kind, &n);

	if (n != 1)
		fail_msg("%zu %s sites, wanted 1", n, ks_site_kind_name(kind));
	return v;
}

static size_t count(const struct ks_sites *s, enum ks_site_kind kind)
{
	size_t n;

	ks_sites_list(s, kind, &n);
	return n;
}

static const uint8_t every_kind[] = {
	0x55,                   /* 0x00 push %rbp */
	MAGIC,                  /* 0x01 */
	SYSCALL,                /* 0x04 */
	SYSRETQ,                /* 0x06 */
	IRETQ,                  /* 0x09 */
	SWAPGS,                 /* 0x0b */
	RET,                    /* 0x0e */
};

/* ---- tests ---- */

/* Each kind at its address, by disassembly alone; no section, no symbols. */
static void every_kind_by_disassembly(void **state)
{
	const struct fsec secs[] = { { ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB,
				       every_kind, sizeof(every_kind) } };
	struct fixture f = { .entry = TB, .secs = secs, .nsecs = 1 };
	struct ks_sites *s = scan(write_elf("kinds", &f), NULL, NULL);
	static const struct { enum ks_site_kind kind; uint64_t off; unsigned size; } want[] = {
		{ KS_SITE_MAGIC, 1, 3 }, { KS_SITE_SYSCALL, 4, 2 }, { KS_SITE_SYSRET, 6, 3 },
		{ KS_SITE_IRET, 9, 2 }, { KS_SITE_SWAPGS, 0xb, 3 },
	};
	size_t n;
	(void)state;

	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
		const struct ks_site *v = only(s, want[i].kind);
		assert_true(v->addr == TB + want[i].off);
		assert_int_equal(v->size, want[i].size);
		assert_int_equal(v->flags, KS_SITE_DISASM);
		assert_null(v->sym);
	}
	assert_false(ks_sites_have_section(s));
	assert_true(ks_sites_elf_entry(s) == TB);
	const struct ks_code_range *r = ks_sites_code_ranges(s, &n);
	assert_int_equal(n, 1);
	assert_true(r->start == TB && r->end == TB + sizeof(every_kind));
	assert_string_equal(r->name, ".text");
	assert_null(ks_sites_list(s, KS_SITE_KIND_COUNT, &n));
	assert_int_equal(n, 0);
	ks_sites_free(s);
	ks_sites_free(NULL);
}

/* The kt_magic_sites list: a good entry, one off by a byte, one outside the code. */
static void magic_section_checked(void **state)
{
	const uint8_t list_ok[] = { LE64(TB + 1) };
	const uint8_t list_bad[] = { LE64(TB + 1), LE64(TB + 2), LE64(0x1234) };
	const struct { const uint8_t *list; size_t len; size_t n, bad; } cases[] = {
		{ list_ok, sizeof(list_ok), 1, 0 },
		{ list_bad, sizeof(list_bad), 3, 2 },
		{ list_ok, 0, 1, 0 },   /* an empty section: only the disassembled site */
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		const struct fsec secs[] = {
			{ ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB, every_kind,
			  sizeof(every_kind) },
			{ "kt_magic_sites", SHT_PROGBITS, SHF_ALLOC, RB, cases[c].list, cases[c].len },
		};
		struct fixture f = { .entry = TB, .secs = secs, .nsecs = 2 };
		struct ks_sites *s = scan(write_elf("listed", &f), NULL, NULL);
		struct ks_sites_stats st;
		size_t n;
		const struct ks_site *v = ks_sites_list(s, KS_SITE_MAGIC, &n);

		assert_true(ks_sites_have_section(s));
		ks_sites_stats(s, &st);
		assert_int_equal(st.section_entries, cases[c].len / 8);
		assert_int_equal(st.section_bad, cases[c].bad);
		assert_int_equal(n, cases[c].n);
		for (size_t i = 0; i < n; i++) {
			bool good = v[i].addr == TB + 1;
			unsigned want = good ? (cases[c].len ? KS_SITE_SECTION : 0) | KS_SITE_DISASM
					     : KS_SITE_SECTION | KS_SITE_BAD;
			assert_int_equal(v[i].flags, want);
			assert_int_equal(v[i].size, good ? 3 : 0);
		}
		ks_sites_free(s);
	}
}

/* Data in code: bytes after an unconditional jump swallow the magic in a linear sweep. */
static void data_in_code(void **state)
{
	/* jmp to the magic over a movabs opcode that is data: the branch target restarts. */
	const uint8_t jumped[] = { 0xeb, 0x04, 0x48, 0xb8, 0, 0, MAGIC, SYSCALL, RET, RET, RET };
	/* reached only indirectly: found by its byte pattern (the syscall after it is lost) */
	const uint8_t hidden[] = { RET, 0x48, 0xb8, 0, 0, MAGIC, SYSCALL, RET, RET, RET, RET };
	/* fall-through code whose immediate holds 66 87 db: not a site */
	const uint8_t immediate[] = { 0x48, 0xb8, MAGIC, 0, 0, 0, 0, 0, RET };
	const struct {
		const uint8_t *code;
		size_t len;
		size_t magic, syscalls;
		uint64_t at;
		unsigned flags;
		size_t rejected;
	} cases[] = {
		{ jumped, sizeof(jumped), 1, 1, 6, KS_SITE_DISASM, 0 },
		{ hidden, sizeof(hidden), 1, 0, 5, KS_SITE_DISASM | KS_SITE_PATTERN, 0 },
		{ immediate, sizeof(immediate), 0, 0, 0, 0, 1 },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		for (int with_syms = 0; with_syms < 2; with_syms++) {
			const struct fsec secs[] = { { ".text", SHT_PROGBITS,
						       SHF_ALLOC | SHF_EXECINSTR, TB, cases[c].code,
						       cases[c].len } };
			const struct fsym syms[] = { { "func", 0, STT_FUNC, TB, cases[c].len } };
			struct fixture f = { .secs = secs, .nsecs = 1, .syms = syms,
					     .nsyms = (size_t)with_syms };
			const char *path = write_elf("data", &f);
			struct ks_symtab *t = with_syms ? syms_of(path) : NULL;
			struct ks_sites *s = scan(path, t, NULL);
			struct ks_sites_stats st;
			size_t n;
			const struct ks_site *v = ks_sites_list(s, KS_SITE_MAGIC, &n);

			assert_int_equal(n, cases[c].magic);
			if (n) {
				assert_true(v->addr == TB + cases[c].at);
				assert_int_equal(v->flags, cases[c].flags);
				if (with_syms) {
					assert_string_equal(v->sym, "func");
					assert_true(v->off == cases[c].at);
				}
			}
			assert_int_equal(count(s, KS_SITE_SYSCALL), cases[c].syscalls);
			ks_sites_stats(s, &st);
			assert_int_equal(st.pattern_hits, 1);
			assert_int_equal(st.pattern_rejected, cases[c].rejected);
			ks_sites_free(s);
			ks_sym_free(t);
		}
	}
}

/* 32-bit boot code: the magic in it, and a far jump into 64-bit code with a sysretq. Known
 * as 32-bit by its symbol's name, or without symbols by the PVH note. */
static void boot_code_32(void **state)
{
	const uint8_t boot[] = {
		0xb8, LE32(1),                          /* 0x00 mov $1, %eax */
		MAGIC,                                  /* 0x05 */
		0xea, LE32(BOOT + 0x10), 0x08, 0x00,    /* 0x08 ljmp $8, $BOOT+0x10 */
		0xcc,                                   /* 0x0f padding */
		SYSRETQ,                                /* 0x10 (64-bit) */
		RET,
	};
	const uint8_t note[] = { LE32(4), LE32(4), LE32(18), 'X', 'e', 'n', 0, LE32(BOOT) };
	const struct fsec secs[] = {
		{ ".boot", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, BOOT, boot, sizeof(boot) },
		{ ".note.Xen", SHT_NOTE, SHF_ALLOC, BOOT + 0x100, note, sizeof(note) },
	};
	const struct fsym syms[] = { { "pvh_start32", 0, STT_NOTYPE, BOOT, 0 },
				     { "boot_end", 0, STT_NOTYPE, BOOT + sizeof(boot), 0 } };
	(void)state;

	for (int variant = 0; variant < 2; variant++) {
		/* 0: symbol name, no note; 1: note, no symbols */
		struct fixture f = { .entry = BOOT, .secs = secs, .nsecs = variant ? 2 : 1,
				     .syms = syms, .nsyms = variant ? 0 : 2 };
		const char *path = write_elf("boot", &f);
		struct ks_symtab *t = variant ? NULL : syms_of(path);
		struct ks_sites *s = scan(path, t, NULL);
		struct ks_sites_stats st;

		const struct ks_site *m = only(s, KS_SITE_MAGIC);
		assert_true(m->addr == BOOT + 5);
		assert_int_equal(m->flags, KS_SITE_DISASM | KS_SITE_CODE32);
		if (!variant) {
			assert_string_equal(m->sym, "pvh_start32");
			assert_true(m->off == 5);
		}
		const struct ks_site *r = only(s, KS_SITE_SYSRET);
		assert_true(r->addr == BOOT + 0x10);
		assert_int_equal(r->flags, KS_SITE_DISASM);
		ks_sites_stats(s, &st);
		assert_int_equal(st.bad_bytes, 0);
		ks_sites_free(s);
		ks_sym_free(t);
	}
}

/* A syscall entry (swapgs; mov %rsp,%gs:0x10; ...; sysretq) at TB2, and set-up code at TB
 * that loads it into IA32_LSTAR in one of the ways compilers write it. */
#define ENTRY_CODE SWAPGS, 0x65, 0x48, 0x89, 0x24, 0x25, LE32(0x10), SYSRETQ
#define LSTAR_ECX 0xb9, LE32(0xc0000082u)

static void entry_from_lstar(void **state)
{
	const uint8_t sext[] = { 0x48, 0xc7, 0xc0, LE32(TB2), LSTAR_ECX, 0x48, 0x89, 0xc2,
				 0x48, 0xc1, 0xea, 0x20, 0x0f, 0x30, RET };
	/* lea TB2(%rip), %rax at TB: rip after it is TB + 7 */
	const uint8_t lea[] = { 0x48, 0x8d, 0x05, LE32(TB2 - (TB + 7)), LSTAR_ECX, 0x48, 0x89,
				0xc2, 0x48, 0xc1, 0xea, 0x20, 0x0f, 0x30, RET };
	const uint8_t halves[] = { 0xb8, LE32(TB2), 0xba, LE32(TB2 >> 32), LSTAR_ECX, 0x0f, 0x30,
				   RET };
	/* another MSR (STAR): no entry from it */
	const uint8_t star[] = { 0xb8, LE32(TB2), 0xba, LE32(TB2 >> 32), 0xb9, LE32(0xc0000081u),
				 0x0f, 0x30, RET };
	const uint8_t entry[] = { ENTRY_CODE };
	const struct { const uint8_t *code; size_t len; enum ks_entry_how how; } cases[] = {
		{ sext, sizeof(sext), KS_ENTRY_LSTAR },
		{ lea, sizeof(lea), KS_ENTRY_LSTAR },
		{ halves, sizeof(halves), KS_ENTRY_LSTAR },
		{ star, sizeof(star), KS_ENTRY_SWAPGS_RSP },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		const struct fsec secs[] = {
			{ ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB, cases[c].code,
			  cases[c].len },
			{ ".text.entry", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB2, entry,
			  sizeof(entry) },
		};
		struct fixture f = { .secs = secs, .nsecs = 2 };
		struct ks_sites *s = scan(write_elf("lstar", &f), NULL, NULL);
		const struct ks_syscall_entry *e = ks_sites_syscall_entry(s);
		struct ks_sites_stats st;

		assert_non_null(e);
		assert_true(e->addr == TB2);
		assert_int_equal(e->how, cases[c].how);
		ks_sites_stats(s, &st);
		assert_int_equal(st.lstar_writes, cases[c].how == KS_ENTRY_LSTAR);
		ks_sites_free(s);
	}
}

/* Without a wrmsr: a named symbol, a well-known name, a function starting with swapgs. */
static void entry_by_symbols(void **state)
{
	/* TB: a plain function; TB + 8: starts with swapgs but saves no stack; TB2: the entry */
	const uint8_t text[] = { 0x90, RET, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, SWAPGS, SYSRETQ };
	const uint8_t entry[] = { ENTRY_CODE };
	const struct fsec secs[] = {
		{ ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB, text, sizeof(text) },
		{ ".text.entry", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB2, entry, sizeof(entry) },
	};
	const struct fsym named[] = { { "plain", 0, STT_FUNC, TB, 2 },
				      { "other_entry", 0, STT_FUNC, TB + 8, 6 },
				      { "entry_SYSCALL_64", 1, STT_NOTYPE, TB2, 0 } };
	const struct fsym anon[] = { { "plain", 0, STT_FUNC, TB, 2 },
				     { "other_entry", 0, STT_FUNC, TB + 8, 6 } };
	const struct {
		const struct fsym *syms;
		size_t nsyms, nsecs;
		const char *name;
		uint64_t addr;
		enum ks_entry_how how;
		const char *sym;
	} cases[] = {
		{ named, 3, 2, "plain", TB, KS_ENTRY_NAMED, "plain" },
		{ named, 3, 2, NULL, TB2, KS_ENTRY_SYMBOL, "entry_SYSCALL_64" },
		{ anon, 2, 2, NULL, TB2, KS_ENTRY_SWAPGS_RSP, NULL },
		{ anon, 2, 1, NULL, TB + 8, KS_ENTRY_SWAPGS_FUNC, "other_entry" },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		struct fixture f = { .secs = secs, .nsecs = cases[c].nsecs, .syms = cases[c].syms,
				     .nsyms = cases[c].nsyms };
		const char *path = write_elf("entry", &f);
		struct ks_symtab *t = syms_of(path);
		struct ks_sites *s = scan(path, t, cases[c].name);
		const struct ks_syscall_entry *e = ks_sites_syscall_entry(s);

		assert_non_null(e);
		assert_true(e->addr == cases[c].addr);
		assert_int_equal(e->how, cases[c].how);
		if (cases[c].sym)
			assert_string_equal(e->sym, cases[c].sym);
		else
			assert_null(e->sym);
		assert_true(e->off == 0);
		ks_sites_free(s);
		ks_sym_free(t);
	}
}

/* Ring-3 code kept in .rodata: found through its label, flagged as data. */
static void code_in_data(void **state)
{
	const uint8_t text[] = { 0x90, RET };
	const uint8_t ro[] = { 0xb8, LE32(1), SYSCALL, 0x0f, 0x0b, 'h', 'i', '\n', 0 };
	const struct fsec secs[] = {
		{ ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB, text, sizeof(text) },
		{ ".rodata", SHT_PROGBITS, SHF_ALLOC, RB, ro, sizeof(ro) },
	};
	const struct fsym syms[] = { { "user_prog", 1, STT_NOTYPE, RB, 0 },
				     { "msg", 1, STT_OBJECT, RB + 9, 4 } };
	struct fixture f = { .secs = secs, .nsecs = 2, .syms = syms, .nsyms = 2 };
	const char *path = write_elf("user", &f);
	struct ks_symtab *t = syms_of(path);
	struct ks_sites *s = scan(path, t, NULL);
	struct ks_sites *bare = scan(path, NULL, NULL);
	size_t n;
	(void)state;

	const struct ks_site *v = only(s, KS_SITE_SYSCALL);
	assert_true(v->addr == RB + 5);
	assert_int_equal(v->flags, KS_SITE_DISASM | KS_SITE_DATA);
	assert_string_equal(v->sym, "user_prog");
	assert_int_equal(count(bare, KS_SITE_SYSCALL), 0);
	ks_sites_code_ranges(s, &n);
	assert_int_equal(n, 1);     /* data sections are not code ranges */
	assert_null(ks_sites_syscall_entry(s));
	ks_sites_free(bare);
	ks_sites_free(s);
	ks_sym_free(t);
}

/* No section headers: the executable PT_LOAD segments. */
static void segments_only(void **state)
{
	const struct fsec secs[] = { { ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB,
				       every_kind, sizeof(every_kind) } };
	struct fixture f = { .entry = TB, .secs = secs, .nsecs = 1, .segments_only = true };
	struct ks_sites *s = scan(write_elf("phdrs", &f), NULL, NULL);
	size_t n;
	(void)state;

	const struct ks_code_range *r = ks_sites_code_ranges(s, &n);
	assert_int_equal(n, 1);
	assert_string_equal(r->name, "LOAD");
	assert_true(only(s, KS_SITE_MAGIC)->addr == TB + 1);
	assert_true(only(s, KS_SITE_SWAPGS)->addr == TB + 0xb);
	ks_sites_free(s);
}

/* Errors: not ELF, missing, not x86, an unknown or unusable entry name. */
static void errors(void **state)
{
	const struct fsec secs[] = { { ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TB,
				       every_kind, sizeof(every_kind) } };
	const struct fsym syms[] = { { "f", 0, STT_FUNC, TB, 1 } };
	struct fixture arm = { .machine = EM_AARCH64, .secs = secs, .nsecs = 1 };
	struct fixture x86 = { .secs = secs, .nsecs = 1, .syms = syms, .nsyms = 1 };
	struct ks_error err = { 0 };
	char path[256];
	(void)state;

	snprintf(path, sizeof(path), "%s/text", dir);
	write_file(path, "not an ELF file\n", 16);
	assert_null(ks_sites_scan(path, NULL, NULL, &err));
	assert_int_equal(err.code, -EINVAL);
	assert_non_null(strstr(err.msg, "not an ELF file"));
	assert_non_null(strstr(err.msg, path));
	assert_null(ks_sites_scan("/nonexistent/vmlinux", NULL, NULL, &err));
	assert_int_equal(err.code, -ENOENT);
	assert_null(ks_sites_scan(dir, NULL, NULL, &err));
	assert_int_equal(err.code, -EINVAL);
	assert_null(ks_sites_scan(write_elf("arm", &arm), NULL, NULL, &err));
	assert_int_equal(err.code, -ENOTSUP);
	assert_null(ks_sites_scan(path, NULL, NULL, NULL));     /* err may be NULL */

	const char *elf = write_elf("x86", &x86);
	struct ks_symtab *t = syms_of(elf);
	assert_null(ks_sites_scan(elf, t, "no_such_entry", &err));
	assert_int_equal(err.code, -ENOENT);
	assert_non_null(strstr(err.msg, "no_such_entry"));
	assert_null(ks_sites_scan(elf, NULL, "f", &err));
	assert_int_equal(err.code, -EINVAL);
	ks_sym_free(t);
}

/* Random bytes as code: whatever comes out, nothing crashes and the counts add up. */
static void random_code(void **state)
{
	static uint8_t junk[8192];
	(void)state;

	srand(7);
	for (int round = 0; round < 8; round++) {
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rand();
		memcpy(junk + 100 + round, (const uint8_t[]){ MAGIC }, 3);
		const struct fsec secs[] = { { ".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR,
					       TB, junk, sizeof(junk) } };
		struct fixture f = { .secs = secs, .nsecs = 1 };
		struct ks_sites *s = scan(write_elf("junk", &f), NULL, NULL);
		struct ks_sites_stats st;

		ks_sites_stats(s, &st);
		assert_true(st.pattern_hits >= 1);
		assert_int_equal(count(s, KS_SITE_MAGIC) + st.pattern_rejected, st.pattern_hits);
		ks_sites_free(s);
	}
}

/* Names. */
static void names(void **state)
{
	(void)state;
	assert_string_equal(ks_site_kind_name(KS_SITE_MAGIC), "magic");
	assert_string_equal(ks_site_kind_name(KS_SITE_SWAPGS), "swapgs");
	assert_string_equal(ks_site_kind_name(KS_SITE_KIND_COUNT), "invalid");
	assert_string_equal(ks_entry_how_name(KS_ENTRY_LSTAR), "lstar");
	assert_string_equal(ks_entry_how_name(KS_ENTRY_SWAPGS_FUNC), "swapgs-func");
	assert_string_equal(ks_entry_how_name((enum ks_entry_how)99), "invalid");
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	static const char *const files[] = { "kinds", "listed", "data", "boot", "lstar", "entry",
					     "user", "phdrs", "text", "arm", "x86", "junk" };
	char path[256];
	(void)state;

	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_kind_by_disassembly),
		cmocka_unit_test(magic_section_checked),
		cmocka_unit_test(data_in_code),
		cmocka_unit_test(boot_code_32),
		cmocka_unit_test(entry_from_lstar),
		cmocka_unit_test(entry_by_symbols),
		cmocka_unit_test(code_in_data),
		cmocka_unit_test(segments_only),
		cmocka_unit_test(errors),
		cmocka_unit_test(random_code),
		cmocka_unit_test(names),
	};

	return cmocka_run_group_tests_name("sites", tests, setup, teardown);
}
