/* inspect.h: parsing and formatting for the memory-introspection commands (peek, poke, vtop...). */
#ifndef KSCOPE_INSPECT_H
#define KSCOPE_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/sym.h>

/*
 * What `kscope peek`, `poke`, `vtop`, `pagemap` and `dump` share between the command line and
 * a VM's supervisor: the text forms of widths, values, lengths, byte strings and output
 * formats, the hex that carries guest bytes over the control protocol, and a vCPU's page
 * tables found in HMP's register dump. Pure: no I/O, nothing global.
 */

/* The most bytes one read moves over the control protocol; more is `kscope dump`'s job. */
#define KS_INSPECT_MAX_READ (256u * 1024)

/* How peek shows the bytes it read. */
enum ks_inspect_format {
	KS_INSPECT_HEX,   /* hex dump: address, 16 bytes, their ASCII */
	KS_INSPECT_U8,    /* little-endian values of 1, 2, 4 or 8 bytes, in hex */
	KS_INSPECT_U16,
	KS_INSPECT_U32,
	KS_INSPECT_U64,
	KS_INSPECT_STR,   /* a NUL-terminated string, escaped where not printable */
	KS_INSPECT_KT,    /* the kt_ test state (ktstate.h), decoded by the supervisor */
};

/*
 * Parses a format name ("hex", "u8", "u16", "u32", "u64", "str", "kt") into *f. Returns 0, or
 * -EINVAL with err saying which names exist.
 */
int ks_inspect_format_parse(const char *name, enum ks_inspect_format *f, struct ks_error *err);

/* The value width of f in bytes: 1, 2, 4 or 8 for the uN formats, 1 for hex and str, 0 for kt. */
unsigned ks_inspect_format_width(enum ks_inspect_format f);

/* Parses a store width: "1", "2", "4" or "8". Returns 0, or -EINVAL with err filled. */
int ks_inspect_parse_width(const char *text, unsigned *width, struct ks_error *err);

/*
 * Parses a value to store in width bytes (1, 2, 4 or 8): "0x" and hex digits, or decimal,
 * or a negative decimal (stored in two's complement). Returns 0 with *value set (truncated to
 * width bytes), or -EINVAL (not a number) or -ERANGE (does not fit in width bytes: "value
 * 0x1ff does not fit in 1 byte") with err filled.
 */
int ks_inspect_parse_value(const char *text, unsigned width, uint64_t *value,
			   struct ks_error *err);

/*
 * Parses a length or address: decimal, or hex after "0x". Returns 0 with *value set, or
 * -EINVAL (not a number) or -ERANGE (above max) with err filled; what names it there
 * ("length", "start").
 */
int ks_inspect_parse_u64(const char *text, const char *what, uint64_t max, uint64_t *value,
			 struct ks_error *err);

/*
 * Parses a byte string written as hex digits, two per byte, optionally separated by blanks,
 * ':' or '-' between bytes ("6b73636f7065", "6b 73 63"). Returns 0 with *bytes (malloc'd,
 * caller frees) and *len > 0, or -EINVAL with err naming the bad character, or -ENOMEM.
 */
int ks_inspect_parse_bytes(const char *text, uint8_t **bytes, size_t *len,
			   struct ks_error *err);

/* len bytes as lowercase hex digits, two per byte, in a malloc'd string (NULL: no memory). */
char *ks_inspect_hex_encode(const void *buf, size_t len);

/*
 * Decodes a string of hex digits (an even number, nothing else) into *bytes (malloc'd,
 * caller frees; not NULL even for an empty string) and *len. Returns 0, -EINVAL or -ENOMEM.
 */
int ks_inspect_hex_decode(const char *hex, uint8_t **bytes, size_t *len);

/*
 * Formats len bytes read at addr as format f for a terminal, in a malloc'd string (caller
 * frees) of lines each ending in "\n" (NULL: no memory):
 * - hex: "0x<addr>: 4b 53 43 4f 50 45 4b 54 01 00 00 00 d0 04 00 00  |KSCOPEKT........|", 16
 *   bytes a line, the last one padded so that the ASCII column stays aligned;
 * - uN: one value "0x6b73636f7066" when len is the width, else lines "0x<addr>: v v ..."
 *   with 16 bytes of values each; trailing bytes short of a whole value are left out;
 * - str: the bytes up to the first NUL (or all), with \n, \t, \\ and other bytes outside
 *   printable ASCII escaped as \xNN, then "\n";
 * - kt: empty (the supervisor decodes that one).
 */
char *ks_inspect_format_bytes(enum ks_inspect_format f, uint64_t addr, const uint8_t *buf,
			      size_t len);

/*
 * Finds CR3 and CR4.LA57 of vCPU cpu in the text of HMP's "info registers -a" (sections
 * that start with a "CPU#<n>" line). Returns 0, or -ENOENT when the text has no section for
 * cpu, or -EINVAL when its section has no CR3 or CR4.
 */
int ks_inspect_hmp_cpu(const char *text, unsigned cpu, uint64_t *cr3, bool *la57);

/* The number of "CPU#<n>" sections in the text of "info registers -a". */
unsigned ks_inspect_hmp_cpu_count(const char *text);

/* How far past a symbol of unknown size an address still counts as inside it. */
#define KS_INSPECT_SYM_REACH (64u * 1024)

/*
 * Writes addr as "name+0xoff" into buf, like ks_sym_format(), for the symbol that holds it,
 * but only within KS_INSPECT_SYM_REACH bytes of a symbol of unknown size (every one in a
 * System.map): past the last label of an image everything would otherwise be "inside" it.
 * t may be NULL. Returns 0, or -ENOENT (buf then empty).
 */
int ks_inspect_symbolize(const struct ks_symtab *t, uint64_t addr, char *buf, size_t size);

/*
 * Writes a byte count for humans into buf ("4 KiB", "2 MiB", "1 GiB", "12 KiB", "1536 B";
 * the largest unit that divides it exactly, else bytes). Always NUL-terminated. Returns buf.
 */
char *ks_inspect_size_format(uint64_t bytes, char *buf, size_t size);

#endif
