/* cmd_regs.c: `kscope regs`, `kscope dump` and `kscope sym`: a VM's registers, memory to a file, its symbols. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/inspect.h>

#include "commands.h"
#include "inspect_cli.h"

#define SEC 1000000000ll
#define CALL_NS (15 * SEC)
#define DUMP_NS (300 * SEC)
#define DUMP_MAX (1ull << 40)

static const struct ins_opt regs_opts[] = {
	{ "cpu", 0, "N", "only vCPU N (default: every vCPU)", &ins_flags.cpu },
	{ "json", 0, NULL, "print the registers as JSON", &ins_flags.json },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd regs_cmd = {
	"regs", "NAME [--cpu N]",
	"Prints the registers of VM NAME's vCPUs, read through QEMU's gdbstub: the general\n"
	"registers, rip and rflags, segment selectors (cs 0023 is ring 3) and bases, control\n"
	"registers and EFER with their flags, and the CPU mode.\n\n"
	"The gdbstub answers only while the VM is paused: a running VM is paused briefly for\n"
	"the read (milliseconds) and then resumed; a paused VM stays paused.",
	regs_opts, 1, 1,
};

static const struct ins_opt dump_opts[] = {
	{ "phys", 0, NULL, "START is guest-physical (required: dump reads physical memory)",
	  &ins_flags.phys },
	{ "output", 'o', "FILE", "write the bytes to FILE (created or truncated)",
	  &ins_flags.out },
	{ "pause", 0, NULL, "pause the VM around the copy, for a consistent image",
	  &ins_flags.pause },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd dump_cmd = {
	"dump", "NAME --phys START LEN -o FILE [--pause]",
	"Copies LEN bytes of VM NAME's guest-physical memory from START (decimal, or hex after\n"
	"0x) into FILE, as they are. The VM's supervisor writes FILE straight from the RAM\n"
	"mapping, so it must be able to write there (it runs as you). A range that is not all\n"
	"RAM fails before anything is written, naming the first address outside it.\n\n"
	"A running VM keeps running: the image may hold a guest's change half done. --pause\n"
	"stops it around the copy.",
	dump_opts, 3, 3,
};

static const struct ins_opt sym_opts[] = {
	{ "symbols", 0, "FILE", "look up FILE (ELF or System.map) instead of the VM's symbols",
	  &ins_flags.symbols },
	{ "json", 0, NULL, "print the supervisor's replies as JSON", &ins_flags.json },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd sym_cmd = {
	"sym", "NAME [SYMBOL[+OFF]|ADDR...] [--symbols FILE]",
	"Looks up kernel symbols of VM NAME, one line per argument: the address, the symbol\n"
	"that holds it with the offset, the symbol's nm type letter, kind and size. With no\n"
	"argument, tells where the symbols come from. The supervisor takes them from the\n"
	"kernel's ELF symbol table, or from the --symbols FILE given to `kscope vm start`.",
	sym_opts, 1, 8,
};

/* ---- regs ---- */

int cmd_regs(int argc, char **argv)
{
	struct ins_args a;
	json_t *req, *r, *cpu;
	long n;
	size_t i;
	int rc = ins_parse(&regs_cmd, argc, argv, &a);

	if (rc != 0 || (rc = ins_cpu(&regs_cmd, &n)) != 0)
		return rc < 0 ? 0 : rc;
	req = json_pack("{s:s}", "cmd", "regs");
	if (n >= 0)
		json_object_set_new(req, "cpu", json_integer(n));
	if (!(r = ins_call(&regs_cmd, a.pos[0], req, CALL_NS, &rc)))
		return rc;
	if (ins_flags.json) {
		ins_print_json(r);
	} else {
		json_array_foreach(json_object_get(r, "cpus"), i, cpu)
			printf("%svCPU %lld:\n%s", i ? "\n" : "",
			       json_integer_value(json_object_get(cpu, "cpu")),
			       json_string_value(json_object_get(cpu, "text")));
	}
	json_decref(r);
	return 0;
}

/* ---- dump ---- */

/* FILE as an absolute path: the supervisor has a working directory of its own. */
static int absolute(const char *path, char *buf, size_t size)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return (size_t)snprintf(buf, size, "%s", path) < size ? 0 : -1;
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	return (size_t)snprintf(buf, size, "%s/%s", cwd, path) < size ? 0 : -1;
}

int cmd_dump(int argc, char **argv)
{
	struct ks_error err = { 0 };
	char path[PATH_MAX];
	struct ins_args a;
	uint64_t start, len;
	json_t *r;
	int rc = ins_parse(&dump_cmd, argc, argv, &a);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if (!ins_flags.phys)
		return ins_fail(&dump_cmd, 2, "dump reads guest-physical memory: give --phys "
				"START LEN");
	if (!ins_flags.out)
		return ins_fail(&dump_cmd, 2, "where to? give -o FILE");
	if (ks_inspect_parse_u64(a.pos[1], "start", UINT64_MAX, &start, &err) < 0 ||
	    ks_inspect_parse_u64(a.pos[2], "length", DUMP_MAX, &len, &err) < 0)
		return ins_fail(&dump_cmd, 2, "%s", err.msg);
	if (!len)
		return ins_fail(&dump_cmd, 2, "length 0: nothing to dump");
	if (absolute(ins_flags.out, path, sizeof(path)) < 0)
		return ins_fail(&dump_cmd, 2, "%s: path too long", ins_flags.out);
	r = ins_call(&dump_cmd, a.pos[0], json_pack("{s:s,s:o,s:I,s:s,s:b,s:b}", "cmd", "dump",
						       "addr", json_sprintf("0x%llx",
									    (unsigned long long)start),
						       "len", (json_int_t)len, "path", path, "phys", 1,
						       "pause", ins_flags.pause != NULL),
		     DUMP_NS, &rc);
	if (!r)
		return rc;
	printf("wrote %llu bytes of guest-physical memory 0x%llx-0x%llx to %s\n",
	       (unsigned long long)len, (unsigned long long)start,
	       (unsigned long long)(start + len), ins_flags.out);
	json_decref(r);
	return 0;
}

/* ---- sym ---- */

/* One line for an answer: address, symbol+offset, type, kind, size. */
static void print_sym(json_t *r)
{
	const char *sym = json_string_value(json_object_get(r, "symbol"));

	printf("0x%016llx  %s", (unsigned long long)ins_hex(r, "addr"), sym ? sym : "(no symbol)");
	if (sym)
		printf("  %s %s, %lld bytes", json_string_value(json_object_get(r, "type")),
		       json_string_value(json_object_get(r, "kind")),
		       json_integer_value(json_object_get(r, "size")));
	printf("\n");
}

/* The answer the supervisor would give, from the --symbols table. */
static json_t *lookup_here(const struct ks_symtab *t, const char *expr, int *rc)
{
	static const char *const kinds[] = { "function", "object", "label", "absolute" };
	struct ks_error err = { 0 };
	const struct ks_sym *s;
	ks_gva_t addr;
	uint64_t off;
	char buf[256];

	if (ks_sym_parse(t, expr, &addr, &err) < 0) {
		*rc = ins_fail(&sym_cmd, 1, "%s", err.msg);
		return NULL;
	}
	json_t *r = json_pack("{s:o}", "addr", json_sprintf("0x%llx", (unsigned long long)addr));
	if ((s = ks_sym_at(t, addr, &off)) && ks_inspect_symbolize(t, addr, buf, sizeof(buf)) == 0) {
		json_object_set_new(r, "symbol", json_string(buf));
		json_object_set_new(r, "name", json_string(s->name));
		json_object_set_new(r, "offset", json_integer((json_int_t)off));
		json_object_set_new(r, "type", json_stringn(&s->type, 1));
		json_object_set_new(r, "kind", json_string(kinds[s->kind & 3]));
		json_object_set_new(r, "size", json_integer((json_int_t)s->size));
	}
	return r;
}

int cmd_sym(int argc, char **argv)
{
	struct ks_symtab *t = NULL;
	struct ins_args a;
	json_t *r;
	int rc = ins_parse(&sym_cmd, argc, argv, &a), status = 0;

	if (rc != 0 || (rc = ins_symbols(&sym_cmd, &t)) != 0)
		return rc < 0 ? 0 : rc;
	if (a.npos == 1 && t) {
		printf("%s: %zu symbols\n", ins_flags.symbols, ks_sym_count(t));
	} else if (a.npos == 1 && (r = ins_call(&sym_cmd, a.pos[0], json_pack("{s:s}", "cmd",
									     "symbol"), CALL_NS,
						  &status))) {
		printf("%s: %lld symbols\n", json_string_value(json_object_get(r, "source")),
		       json_integer_value(json_object_get(r, "count")));
		json_decref(r);
	}
	for (int i = 1; i < a.npos; i++) {
		r = t ? lookup_here(t, a.pos[i], &rc)
		      : ins_call(&sym_cmd, a.pos[0], json_pack("{s:s,s:s}", "cmd", "symbol",
							       "expr", a.pos[i]), CALL_NS, &rc);
		if (!r) {
			status = status ? status : rc;
			continue;
		}
		if (ins_flags.json)
			ins_print_json(r);
		else
			print_sym(r);
		json_decref(r);
	}
	ks_sym_free(t);
	return status;
}
