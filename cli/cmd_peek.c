/* cmd_peek.c: `kscope peek` and `kscope poke`: read and write a VM's memory by address or symbol. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/inspect.h>

#include "commands.h"
#include "inspect_cli.h"

#define SEC 1000000000ll
#define CALL_NS (15 * SEC)
#define HEX_LEN 64
#define STR_LEN 4096

static const struct ins_opt peek_opts[] = {
	{ "format", 0, "F", "hex (default), u8, u16, u32, u64, str, or kt (decode the kt_ "
	  "test state)", &ins_flags.format },
	{ "phys", 0, NULL, "ADDR is guest-physical (a number)", &ins_flags.phys },
	{ "cpu", 0, "N", "translate through vCPU N's page tables (default 0)", &ins_flags.cpu },
	{ "pause", 0, NULL, "pause the VM around the read, for a consistent view",
	  &ins_flags.pause },
	{ "symbols", 0, "FILE", "symbols from FILE (ELF or System.map), not the VM's",
	  &ins_flags.symbols },
	{ "json", 0, NULL, "print the supervisor's reply as JSON", &ins_flags.json },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd peek_cmd = {
	"peek", "NAME ADDR|SYMBOL[+OFF] [LEN] [--format F] [--phys] [--cpu N] [--pause]",
	"Reads LEN bytes of VM NAME's memory and prints them: at a virtual address, through the\n"
	"page tables of vCPU N, or with --phys at a guest-physical one. ADDR is hex (0x1000 or\n"
	"1000) or a symbol of the kernel, with an offset (kt_state+0x10). LEN (decimal, or hex\n"
	"after 0x) defaults to 64 bytes for hex, one value for u8..u64, and up to the NUL (at\n"
	"most 4096 bytes) for str. --format kt decodes the kt_ test state (ADDR: kt_state).\n"
	"Values print as 0x<hex>: one alone, else 16 bytes' worth a line after the address.\n\n"
	"A running VM keeps running: what the guest changes during the read may show half done.\n"
	"--pause stops it around the read (it resumes afterwards).",
	peek_opts, 2, 3,
};

static const struct ins_opt poke_opts[] = {
	{ "width", 0, "1|2|4|8", "bytes of VALUE (default: the size of the symbol at ADDR if "
	  "1, 2 or 4, else 8)", &ins_flags.width },
	{ "bytes", 0, "HEX", "write these bytes, in order, instead of a VALUE ('6b73' or "
	  "'6b 73')", &ins_flags.bytes },
	{ "phys", 0, NULL, "ADDR is guest-physical (a number)", &ins_flags.phys },
	{ "cpu", 0, "N", "translate through vCPU N's page tables (default 0)", &ins_flags.cpu },
	{ "pause", 0, NULL, "pause the VM around the write", &ins_flags.pause },
	{ "symbols", 0, "FILE", "symbols from FILE (ELF or System.map), not the VM's",
	  &ins_flags.symbols },
	{ "json", 0, NULL, "print the supervisor's reply as JSON", &ins_flags.json },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd poke_cmd = {
	"poke", "NAME ADDR|SYMBOL[+OFF] VALUE [--width 1|2|4|8] [--phys] [--cpu N] [--pause]\n"
	"       kscope poke NAME ADDR|SYMBOL[+OFF] --bytes HEX [--phys] [--cpu N] [--pause]",
	"Writes VALUE (0x<hex>, decimal, or a negative decimal in two's complement) little-endian\n"
	"into VM NAME's memory at a virtual address, through the page tables of vCPU N, or with\n"
	"--phys at a guest-physical one. An aligned value of 2, 4 or 8 bytes is one store, so a\n"
	"running guest never sees half of it. Page protections do not apply: read-only pages are\n"
	"written too.",
	poke_opts, 2, 3,
};

/* ---- peek ---- */

/* LEN, or the format's default; 0 after printing a usage error. */
static uint64_t peek_len(const struct ins_args *a, enum ks_inspect_format f)
{
	unsigned width = ks_inspect_format_width(f);
	struct ks_error err = { 0 };
	uint64_t len;

	if (f == KS_INSPECT_KT && a->npos == 3) {
		ins_fail(&peek_cmd, 2, "--format kt reads the whole state: no LEN");
		return 0;
	}
	if (a->npos < 3)
		return f == KS_INSPECT_HEX ? HEX_LEN : f == KS_INSPECT_STR ? STR_LEN
		       : f == KS_INSPECT_KT ? 1 : width;
	if (ks_inspect_parse_u64(a->pos[2], "length", KS_INSPECT_MAX_READ, &len, &err) < 0) {
		ins_fail(&peek_cmd, 2, "%s (kscope dump writes more to a file)", err.msg);
		return 0;
	}
	if (len == 0 || len % width) {
		ins_fail(&peek_cmd, 2, "length %s is not a whole number of %u-byte values",
			 a->pos[2], width);
		return 0;
	}
	return len;
}

static void print_kt_suite(json_t *su)
{
	json_t *k;
	size_t i;

	printf("suite %s: %s (pass %lld, fail %lld, skip %lld of %lld)\n",
	       json_string_value(json_object_get(su, "name")),
	       json_string_value(json_object_get(su, "status")),
	       json_integer_value(json_object_get(su, "pass")),
	       json_integer_value(json_object_get(su, "fail")),
	       json_integer_value(json_object_get(su, "skip")),
	       json_integer_value(json_object_get(su, "selected")));
	json_array_foreach(json_object_get(su, "cases"), i, k) {
		const char *st = json_string_value(json_object_get(k, "status"));
		const char *at = json_string_value(json_object_get(k, "fail_at"));

		if (strcmp(st, "filtered"))
			printf("  %-8s %s%s%s\n", st, json_string_value(json_object_get(k, "name")),
			       at ? "  first failure at " : "", at ? at : "");
	}
}

/* The decoded kt_ state: a summary line, then the suites that run or ran. */
static void print_kt(const struct ks_symtab *t, json_t *r)
{
	json_t *kt = json_object_get(r, "kt"), *su;
	uint64_t addr = ins_hex(r, "addr");
	char buf[256];
	const char *sym = ins_symbol(t, r, addr, buf, sizeof(buf));
	size_t i;

	printf("kt_ state at 0x%llx%s%s%s: phase %s, seq %lld\n", (unsigned long long)addr,
	       sym ? " (" : "", sym ? sym : "", sym ? ")" : "",
	       json_string_value(json_object_get(kt, "phase")),
	       json_integer_value(json_object_get(kt, "seq")));
	printf("totals: pass %lld, fail %lld, skip %lld of %lld selected\n",
	       json_integer_value(json_object_get(kt, "pass")),
	       json_integer_value(json_object_get(kt, "fail")),
	       json_integer_value(json_object_get(kt, "skip")),
	       json_integer_value(json_object_get(kt, "selected")));
	json_array_foreach(json_object_get(kt, "suites"), i, su)
		if (strcmp(json_string_value(json_object_get(su, "status")), "filtered"))
			print_kt_suite(su);
}

static int print_bytes(enum ks_inspect_format f, json_t *r)
{
	const char *hex = json_string_value(json_object_get(r, "data"));
	uint8_t *bytes = NULL;
	size_t len = 0;
	char *text;

	if (!hex || ks_inspect_hex_decode(hex, &bytes, &len) < 0)
		return ins_fail(&peek_cmd, 1, "the supervisor sent no readable data");
	text = ks_inspect_format_bytes(f, ins_hex(r, "addr"), bytes, len);
	if (text)
		fputs(text, stdout);
	free(text);
	free(bytes);
	return text ? 0 : ins_fail(&peek_cmd, 1, "out of memory");
}

int cmd_peek(int argc, char **argv)
{
	enum ks_inspect_format f = KS_INSPECT_HEX;
	struct ks_error err = { 0 };
	struct ks_symtab *t = NULL;
	struct ins_args a;
	json_t *addr, *req, *r;
	uint64_t len;
	long cpu;
	int rc = ins_parse(&peek_cmd, argc, argv, &a);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if (ins_flags.format && ks_inspect_format_parse(ins_flags.format, &f, &err) < 0)
		return ins_fail(&peek_cmd, 2, "%s", err.msg);
	if (f == KS_INSPECT_KT && ins_flags.phys)
		return ins_fail(&peek_cmd, 2, "--format kt reads virtual memory: no --phys");
	if (!(len = peek_len(&a, f)))
		return 2;
	if ((rc = ins_cpu(&peek_cmd, &cpu)) != 0 || (rc = ins_symbols(&peek_cmd, &t)) != 0)
		goto out;
	if (!(addr = ins_addr(&peek_cmd, t, a.pos[1], ins_flags.phys, &rc)))
		goto out;
	req = json_pack("{s:s,s:o,s:b,s:b}", "cmd", f == KS_INSPECT_KT ? "ktstate" : "read",
			"addr", addr, "phys", ins_flags.phys != NULL, "pause",
			ins_flags.pause != NULL);
	if (cpu >= 0)
		json_object_set_new(req, "cpu", json_integer(cpu));
	if (f != KS_INSPECT_KT) {
		json_object_set_new(req, "len", json_integer((json_int_t)len));
		json_object_set_new(req, "to_nul", json_boolean(f == KS_INSPECT_STR));
	}
	if (!(r = ins_call(&peek_cmd, a.pos[0], req, CALL_NS, &rc)))
		goto out;
	if (ins_flags.json)
		ins_print_json(r);
	else if (f == KS_INSPECT_KT)
		print_kt(t, r);
	else
		rc = print_bytes(f, r);
	json_decref(r);
out:
	ks_sym_free(t);
	return rc;
}

/* ---- poke ---- */

/* The "data" or "value"/"width" members of the write request; 2 after a usage error. */
static int poke_payload(const struct ins_args *a, json_t *req)
{
	struct ks_error err = { 0 };
	unsigned width = 8;
	uint8_t *bytes;
	size_t len;
	uint64_t v;
	char *hex;

	if ((a->npos == 3) == (ins_flags.bytes != NULL))
		return ins_fail(&poke_cmd, 2, "give a VALUE or --bytes HEX (usage: kscope poke "
				"%s)", poke_cmd.args);
	if (ins_flags.bytes && ins_flags.width)
		return ins_fail(&poke_cmd, 2, "--width is for a VALUE, not --bytes");
	if (ins_flags.bytes) {
		if (ks_inspect_parse_bytes(ins_flags.bytes, &bytes, &len, &err) < 0)
			return ins_fail(&poke_cmd, 2, "--bytes: %s", err.msg);
		if (len > KS_INSPECT_MAX_READ || !(hex = ks_inspect_hex_encode(bytes, len))) {
			free(bytes);
			return ins_fail(&poke_cmd, 2, "--bytes: at most %u bytes at once",
					KS_INSPECT_MAX_READ);
		}
		json_object_set_new(req, "data", json_string(hex));
		free(hex);
		free(bytes);
		return 0;
	}
	if (ins_flags.width && ks_inspect_parse_width(ins_flags.width, &width, &err) < 0)
		return ins_fail(&poke_cmd, 2, "%s", err.msg);
	/* Checked here against the width given, or the widest; the supervisor checks again
	 * against a symbol's own size. */
	if (ks_inspect_parse_value(a->pos[2], width, &v, &err) < 0)
		return ins_fail(&poke_cmd, 2, "%s", err.msg);
	json_object_set_new(req, "value", json_string(a->pos[2]));
	if (ins_flags.width)
		json_object_set_new(req, "width", json_integer(width));
	return 0;
}

int cmd_poke(int argc, char **argv)
{
	struct ks_symtab *t = NULL;
	struct ins_args a;
	json_t *addr, *req = NULL, *r;
	char buf[256];
	const char *sym;
	long cpu;
	int rc = ins_parse(&poke_cmd, argc, argv, &a);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	req = json_pack("{s:s,s:b,s:b}", "cmd", "write", "phys", ins_flags.phys != NULL,
			"pause", ins_flags.pause != NULL);
	if ((rc = poke_payload(&a, req)) != 0 || (rc = ins_cpu(&poke_cmd, &cpu)) != 0 ||
	    (rc = ins_symbols(&poke_cmd, &t)) != 0)
		goto out;
	if (!(addr = ins_addr(&poke_cmd, t, a.pos[1], ins_flags.phys, &rc)))
		goto out;
	json_object_set_new(req, "addr", addr);
	if (cpu >= 0)
		json_object_set_new(req, "cpu", json_integer(cpu));
	r = ins_call(&poke_cmd, a.pos[0], req, CALL_NS, &rc);
	req = NULL;
	if (!r)
		goto out;
	sym = ins_flags.phys ? NULL : ins_symbol(t, r, ins_hex(r, "addr"), buf, sizeof(buf));
	if (ins_flags.json)
		ins_print_json(r);
	else
		printf("wrote %lld bytes at 0x%llx%s%s%s, pa 0x%llx\n",
		       json_integer_value(json_object_get(r, "len")),
		       (unsigned long long)ins_hex(r, "addr"), sym ? " (" : "", sym ? sym : "",
		       sym ? ")" : "", (unsigned long long)ins_hex(r, "pa"));
	json_decref(r);
out:
	json_decref(req);
	ks_sym_free(t);
	return rc;
}
