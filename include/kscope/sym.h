/* sym.h: kernel symbols from an ELF symbol table or a System.map: by name, by address, in expressions. */
#ifndef KSCOPE_SYM_H
#define KSCOPE_SYM_H

#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/types.h>

/* What a symbol names. */
enum ks_sym_kind {
	KS_SYM_FUNC,     /* code: ELF STT_FUNC, System.map T/t/W */
	KS_SYM_OBJECT,   /* data: ELF STT_OBJECT, System.map D/d/B/b/R/r/V/G/g/S/s */
	KS_SYM_LABEL,    /* an untyped ELF symbol in a section (assembly labels), or another
			  * System.map letter */
	KS_SYM_ABS,      /* an absolute value, not an address: ELF SHN_ABS, System.map A/a */
};

/* One symbol (borrowed from its table). */
struct ks_sym {
	const char *name;
	ks_gva_t addr;
	uint64_t size;          /* bytes; 0 when unknown (always in a System.map) */
	char type;              /* nm's letter: T t D d B b R r W w V A a ...; upper case for
				 * global symbols */
	enum ks_sym_kind kind;
};

/*
 * A symbol table. Loaded from an ELF file's .symtab (.dynsym when it has none) or from a
 * System.map ("ffffffff81000000 T _text" lines, /proc/kallsyms' optional "[module]" field
 * ignored). ELF section and file symbols, undefined symbols, and System.map's U, w and v
 * entries are left out.
 */
struct ks_symtab;

/*
 * Loads path: ELF when it starts with the ELF magic, else a System.map. Returns the table
 * (free with ks_sym_free()), or NULL with err filled: the file's open or read error, an ELF
 * libelf cannot read or without a symbol table (-ENOENT), a System.map line that does not
 * parse (-EINVAL, with its line number), no symbols at all (-ENOENT), -ENOMEM.
 */
struct ks_symtab *ks_sym_load(const char *path, struct ks_error *err);

/* Frees t; NULL is fine. */
void ks_sym_free(struct ks_symtab *t);

/* The number of symbols; ks_sym_get(t, i) for i below it gives them by ascending address. */
size_t ks_sym_count(const struct ks_symtab *t);

/* Symbol i by ascending address (ties: functions, then objects, global before local), or
 * NULL when i is out of range. */
const struct ks_sym *ks_sym_get(const struct ks_symtab *t, size_t i);

/*
 * The symbol called name, or NULL. When several have the name (static symbols of different
 * files), a global one wins, then weak, then the lowest address.
 */
const struct ks_sym *ks_sym_find(const struct ks_symtab *t, const char *name);

/*
 * The function, object or label that holds addr: the nearest symbol at or below it,
 * absolute symbols excepted. A symbol with a size holds only [addr, addr + size); one
 * without holds everything up to the next symbol, except the highest symbol, which holds
 * its own address only (nothing bounds it). *offset (may be NULL) gets addr - sym->addr.
 * Returns NULL when no symbol holds addr.
 */
const struct ks_sym *ks_sym_at(const struct ks_symtab *t, ks_gva_t addr, uint64_t *offset);

/*
 * Writes addr as "name+0xoff" ("name" at offset 0) into buf of size bytes, or as "0x..."
 * when no symbol holds it. Always NUL-terminated. Returns 0 when a symbol was found,
 * -ENOENT otherwise (buf then holds the hex form). ks_sym_parse() reads it back to addr,
 * unless the name is one that several (static) symbols share.
 */
int ks_sym_format(const struct ks_symtab *t, ks_gva_t addr, char *buf, size_t size);

/*
 * Parses an address expression: "SYMBOL", "SYMBOL+OFF", "SYMBOL-OFF", "0xADDR" or "ADDR".
 * Numbers are hexadecimal, with or without 0x (as ks_sym_format() prints them); a
 * "/SIZE" suffix, as Linux prints "func+0x1c/0x80", is accepted and ignored. A word that
 * is both a symbol and a hex number ("add", "cafe") is the symbol; write 0xcafe for the
 * number. t may be NULL (numbers only). Blanks around are ignored. Returns 0 with *addr
 * set, or -ENOENT ("unknown symbol 'foo'"), -EINVAL ("bad offset '...'", "bad address
 * '...'", empty expression) or -ERANGE (beyond 64 bits) with err filled.
 */
int ks_sym_parse(const struct ks_symtab *t, const char *expr, ks_gva_t *addr,
		 struct ks_error *err);

#endif
