/* inspect_internal.h: what the supervisor's introspection files share (supervisor_inspect.c, supervisor_memory.c). */
#ifndef KSCOPE_INSPECT_INTERNAL_H
#define KSCOPE_INSPECT_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <kscope/gdb.h>
#include <kscope/mem.h>
#include <kscope/sym.h>
#include <kscope/vtop.h>

#include "supervisor_private.h"

/* What the supervisor holds to look inside its VM. */
struct sup_inspect {
	struct ks_mem *mem;          /* guest RAM, mapped at the first access */
	struct ks_vtop *vtop;        /* over mem */
	struct ks_symtab *syms;      /* NULL: syms_why says why */
	char syms_from[PATH_MAX];
	char syms_why[320];
	struct ks_gdb *gdb;          /* connected at the first register read */
	unsigned own_resumes;        /* QMP RESUMEs still to come of steps made through gdb */
};

/* One request's view of guest memory, from its common members. */
struct sup_access {
	const char *cmd;         /* for messages */
	uint64_t addr;           /* resolved "addr" */
	bool phys;               /* "phys": addr is guest-physical */
	bool pause;              /* "pause": hold the VM paused during the access */
	unsigned cpu;            /* "cpu": whose page tables (default 0) */
	uint64_t cr3;            /* of that vCPU, once selected */
	bool la57;
	bool paused;             /* the request paused the VM and resumes it at the end */
	bool held;               /* it holds the VM through the event monitor */
};

/*
 * Reads "cpu", "phys" and "pause" of req into *a, and "addr" when key is not NULL (a
 * SYMBOL[+OFF] or 0xADDR expression, or a JSON number; a physical address must be a
 * number). Fails (-EINVAL, -ENOENT) with err naming what is wrong.
 */
int sup_access_parse(struct ks_supervisor *s, json_t *req, const char *cmd, const char *key,
		     struct sup_access *a, struct ks_error *err);

/*
 * Starts the access: the VM must be up; it is paused when a->pause (or force_pause) and it
 * runs; the RAM is mapped; for a virtual access the page tables of a->cpu are selected in
 * the translator. Call sup_access_end() afterwards in every case.
 */
int sup_access_begin(struct ks_supervisor *s, struct sup_access *a, bool force_pause,
		     struct ks_error *err);

/* Resumes the VM if sup_access_begin() paused it. */
void sup_access_end(struct ks_supervisor *s, struct sup_access *a);

/*
 * Makes the gdb client ready for requests: connected (at the first use, or again when it lost
 * its connection or its view of the VM) and the VM stopped, which the caller has made sure
 * of. While the event monitor holds the client it is never replaced: -EBUSY then.
 */
int sup_gdb_ready(struct ks_supervisor *s, struct ks_error *err);

/* Maps guest RAM (once) and makes the translator over it. 0 or -errno with err filled. */
int sup_need_mem(struct ks_supervisor *s, struct ks_error *err);

/* One vCPU's registers as the regs command replies them: {"cpu", "mode", "regs", "text"}. */
json_t *sup_regs_json(unsigned cpu, const struct ks_x86_regs *r);

/* "0x..." for a 64-bit value (JSON integers are signed). */
json_t *sup_hex(uint64_t v);

/* Adds "symbol": "name+0xoff" to o when a symbol holds addr. */
void sup_add_symbol(struct ks_supervisor *s, json_t *o, uint64_t addr);

#endif
