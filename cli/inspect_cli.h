/* inspect_cli.h: what the introspection commands (regs, peek, poke, vtop, pagemap, dump, sym) share. */
#ifndef KSCOPE_CLI_INSPECT_CLI_H
#define KSCOPE_CLI_INSPECT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <kscope/ctl.h>
#include <kscope/sym.h>

#define INS_MAX_POS 8

/* The options of every introspection command; each command declares the ones it takes. */
struct ins_flags {
	const char *cpu, *phys, *pause, *format, *width, *bytes, *symbols, *json, *out;
};
extern struct ins_flags ins_flags;

/* One option of a command. */
struct ins_opt {
	const char *name;      /* without the dashes */
	char short_name;       /* 'o' for -o, or 0 */
	const char *metavar;   /* NULL for a flag */
	const char *help;
	const char **value;    /* where the value lands ("1" for a flag) */
};

/* One command: usage, description, options and its number of arguments. */
struct ins_cmd {
	const char *name;      /* "peek" */
	const char *args;      /* "NAME ADDR|SYMBOL[+OFF] [LEN]" */
	const char *summary;   /* what it does; may span lines */
	const struct ins_opt *opts;  /* ends with name NULL */
	int min_pos, max_pos;  /* positional arguments, NAME included */
};

/* A parsed command line. */
struct ins_args {
	const char *pos[INS_MAX_POS];
	int npos;
};

/*
 * Parses argv (argv[0] is the command) into a and ins_flags (cleared first): "--opt value",
 * "--opt=value", "-o FILE", "--", --help. A word that starts with '-' and a digit is an argument (a negative
 * VALUE). Returns 0, -1 after printing the help (exit 0), or 2 after a usage error.
 */
int ins_parse(const struct ins_cmd *cmd, int argc, char **argv, struct ins_args *a);

/* Prints "kscope CMD: " and the message to stderr; returns status. */
__attribute__((format(printf, 3, 4)))
int ins_fail(const struct ins_cmd *cmd, int status, const char *fmt, ...);

/* --cpu into *cpu (-1 when not given). Returns 0, or 2 after printing why it is bad. */
int ins_cpu(const struct ins_cmd *cmd, long *cpu);

/*
 * Loads --symbols FILE into *t (NULL when not given). Returns 0, or 2 after printing why it
 * cannot be loaded.
 */
int ins_symbols(const struct ins_cmd *cmd, struct ks_symtab **t);

/*
 * The "addr" of a request for expr: a physical address is parsed here (a number: else
 * *status 2); a virtual one is resolved here with t (--symbols) when given (unknown symbol:
 * *status 1), else sent as it is for the supervisor to resolve with the VM's symbols.
 * Returns NULL after printing why.
 */
json_t *ins_addr(const struct ins_cmd *cmd, const struct ks_symtab *t, const char *expr,
		 bool phys, int *status);

/*
 * Connects to the supervisor of VM name, after checking the name and that the VM has a live
 * supervisor. Returns the client (free with ks_ctl_client_free()), or NULL after printing
 * why, with *status 1 (no such VM, its supervisor died or does not answer) or 2 (a bad name).
 */
struct ks_ctl_client *ins_connect(const struct ins_cmd *cmd, const char *name, int *status);

/*
 * Sends req (stolen) to the supervisor of VM name and returns its reply (caller decrefs), or
 * NULL after printing the error, with *status 1 (failed: no such VM, the VM ended, the
 * supervisor's error) or 2 (a bad VM name).
 */
json_t *ins_call(const struct ins_cmd *cmd, const char *name, json_t *req, int64_t timeout_ns,
		 int *status);

/* The "0x..." member key of o as a number (0 when absent). */
uint64_t ins_hex(json_t *o, const char *key);

/*
 * The symbol for addr: from t when given, else o's "symbol" member; NULL when none. The text
 * is in buf or borrowed from o.
 */
const char *ins_symbol(const struct ks_symtab *t, json_t *o, uint64_t addr, char *buf,
		       size_t size);

/* Prints o as indented JSON, without the protocol's "id" and "ok". */
void ins_print_json(json_t *o);

#endif
