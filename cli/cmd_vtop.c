/* cmd_vtop.c: `kscope vtop` and `kscope pagemap`: a VM's page tables, walked on the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/inspect.h>

#include "commands.h"
#include "inspect_cli.h"

#define SEC 1000000000ll
#define CALL_NS (15 * SEC)

static const struct ins_opt vtop_opts[] = {
	{ "cpu", 0, "N", "walk vCPU N's page tables (its CR3; default 0)", &ins_flags.cpu },
	{ "pause", 0, NULL, "pause the VM around the walk, for a consistent view",
	  &ins_flags.pause },
	{ "symbols", 0, "FILE", "symbols from FILE (ELF or System.map), not the VM's",
	  &ins_flags.symbols },
	{ "json", 0, NULL, "print the supervisor's reply as JSON", &ins_flags.json },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd vtop_cmd = {
	"vtop", "NAME VADDR|SYMBOL[+OFF] [--cpu N] [--pause]",
	"Translates a virtual address of VM NAME through the page tables of vCPU N, walked on\n"
	"the host from its CR3. Prints the vCPU and CR3, one line per level read\n"
	"(\"PML4[511] @ 0x1ff8 = 0x2003  P W\": index, the entry's physical address, its value\n"
	"and flags), the page size, and ends with \"VADDR -> PADDR FLAGS\", both in hex with 0x;\n"
	"FLAGS are the effective ones (P W U PWT PCD A D PS G NX). An address that does not\n"
	"translate prints the levels read, says at which level the walk stopped and why, and\n"
	"exits 1.\n\n"
	"The CR3 of a running vCPU is read from QEMU without pausing it; the guest may change\n"
	"its tables during the walk. --pause stops it around the walk.",
	vtop_opts, 2, 2,
};

static const struct ins_opt pagemap_opts[] = {
	{ "cpu", 0, "N", "list vCPU N's address space (its CR3; default 0)", &ins_flags.cpu },
	{ "pause", 0, NULL, "pause the VM around the listing, for a consistent view",
	  &ins_flags.pause },
	{ "json", 0, NULL, "print the ranges as JSON", &ins_flags.json },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd pagemap_cmd = {
	"pagemap", "NAME [--cpu N] [--pause]",
	"Lists the mapped virtual ranges of vCPU N's address space, one line each: virtual\n"
	"start-end, physical start, size, page size and effective flags. Pages that follow each\n"
	"other virtually and physically, with the same page size and flags (accessed and dirty\n"
	"aside), make one range.\n\n"
	"A running VM keeps running: the guest may change its tables during the listing.\n"
	"--pause stops it around the listing (around each part of it for address spaces of\n"
	"more than 4096 ranges).",
	pagemap_opts, 1, 1,
};

/* ---- vtop ---- */

static void print_walk(const struct ks_symtab *t, json_t *r)
{
	uint64_t va = ins_hex(r, "va");
	const char *fault = json_string_value(json_object_get(r, "fault"));
	char buf[256], size[32];
	const char *sym = ins_symbol(t, r, va, buf, sizeof(buf));
	json_t *l;
	size_t i;

	printf("0x%llx%s%s%s on vCPU %lld, CR3 0x%llx%s\n", (unsigned long long)va,
	       sym ? " (" : "", sym ? sym : "", sym ? ")" : "",
	       json_integer_value(json_object_get(r, "cpu")),
	       (unsigned long long)ins_hex(r, "cr3"),
	       json_is_true(json_object_get(r, "la57")) ? ", 5-level" : "");
	json_array_foreach(json_object_get(r, "levels"), i, l) {
		char where[32];

		snprintf(where, sizeof(where), "%s[%lld]",
			 json_string_value(json_object_get(l, "level")),
			 json_integer_value(json_object_get(l, "index")));
		printf("  %-10s @ 0x%-10llx = 0x%016llx  %s\n", where,
		       (unsigned long long)ins_hex(l, "addr"),
		       (unsigned long long)ins_hex(l, "value"),
		       json_string_value(json_object_get(l, "flags")));
	}
	if (fault)
		return;
	ks_inspect_size_format((uint64_t)json_integer_value(json_object_get(r, "page_size")),
			       size, sizeof(size));
	printf("  %s page\n", size);
	printf("0x%llx -> 0x%llx %s\n", (unsigned long long)va,
	       (unsigned long long)ins_hex(r, "pa"),
	       json_string_value(json_object_get(r, "flags")));
}

int cmd_vtop(int argc, char **argv)
{
	struct ks_symtab *t = NULL;
	struct ins_args a;
	json_t *addr, *req, *r;
	const char *fault;
	long cpu;
	int rc = ins_parse(&vtop_cmd, argc, argv, &a);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = ins_cpu(&vtop_cmd, &cpu)) != 0 || (rc = ins_symbols(&vtop_cmd, &t)) != 0)
		goto out;
	if (!(addr = ins_addr(&vtop_cmd, t, a.pos[1], false, &rc)))
		goto out;
	req = json_pack("{s:s,s:o,s:b}", "cmd", "vtop", "addr", addr, "pause",
			ins_flags.pause != NULL);
	if (cpu >= 0)
		json_object_set_new(req, "cpu", json_integer(cpu));
	if (!(r = ins_call(&vtop_cmd, a.pos[0], req, CALL_NS, &rc)))
		goto out;
	if (ins_flags.json)
		ins_print_json(r);
	else
		print_walk(t, r);
	if ((fault = json_string_value(json_object_get(r, "fault"))))
		rc = ins_fail(&vtop_cmd, 1, "0x%llx does not translate: %s at %s",
			      (unsigned long long)ins_hex(r, "va"), fault,
			      json_string_value(json_object_get(r, "fault_level")));
	json_decref(r);
out:
	ks_sym_free(t);
	return rc;
}

/* ---- pagemap ---- */

static void print_range(json_t *g)
{
	uint64_t va = ins_hex(g, "va"), len = (uint64_t)json_integer_value(json_object_get(g, "size"));
	char size[32], page[32];

	ks_inspect_size_format(len, size, sizeof(size));
	ks_inspect_size_format((uint64_t)json_integer_value(json_object_get(g, "page_size")),
			       page, sizeof(page));
	printf("0x%016llx-0x%016llx  0x%012llx  %10s  %7s  %s\n", (unsigned long long)va,
	       (unsigned long long)(va + len), (unsigned long long)ins_hex(g, "pa"), size, page,
	       json_string_value(json_object_get(g, "flags")));
}

/* Asks for the ranges from start on; NULL after printing the error. */
static json_t *ranges_from(const struct ins_args *a, long cpu, const char *start, int *rc)
{
	json_t *req = json_pack("{s:s,s:b}", "cmd", "pagemap", "pause", ins_flags.pause != NULL);

	if (start)
		json_object_set_new(req, "start", json_string(start));
	if (cpu >= 0)
		json_object_set_new(req, "cpu", json_integer(cpu));
	return ins_call(&pagemap_cmd, a->pos[0], req, CALL_NS, rc);
}

/* Every range, over as many requests as the supervisor's replies need (one reply holds
 * thousands of ranges). */
static int all_ranges(const struct ins_args *a, long cpu, json_t *all, json_t **first)
{
	const char *more;
	char next[24] = "";
	json_t *r;
	int rc = 0;

	do {
		if (!(r = ranges_from(a, cpu, next[0] ? next : NULL, &rc)))
			return rc;
		json_array_extend(all, json_object_get(r, "ranges"));
		more = json_string_value(json_object_get(r, "next"));
		snprintf(next, sizeof(next), "%s", more ? more : "");
		if (!*first)
			*first = json_incref(r);
		json_decref(r);
	} while (next[0]);
	return 0;
}

int cmd_pagemap(int argc, char **argv)
{
	struct ins_args a;
	json_t *all = json_array(), *first = NULL, *g;
	long cpu;
	size_t i;
	int rc = ins_parse(&pagemap_cmd, argc, argv, &a);

	if (rc != 0 || (rc = ins_cpu(&pagemap_cmd, &cpu)) != 0 ||
	    (rc = all_ranges(&a, cpu, all, &first)) != 0)
		goto out;
	if (ins_flags.json) {
		json_object_set(first, "ranges", all);
		json_object_del(first, "next");
		ins_print_json(first);
	} else {
		printf("vCPU %lld, CR3 0x%llx: %zu ranges\n",
		       json_integer_value(json_object_get(first, "cpu")),
		       (unsigned long long)ins_hex(first, "cr3"), json_array_size(all));
		printf("%-37s  %-14s  %10s  %7s  %s\n", "VIRTUAL", "PHYSICAL", "SIZE", "PAGES",
		       "FLAGS");
		json_array_foreach(all, i, g)
			print_range(g);
	}
out:
	json_decref(first);
	json_decref(all);
	return rc < 0 ? 0 : rc;
}
