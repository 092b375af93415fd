/* vm_cli.h: what the `kscope vm` subcommands share: argument parsing, spec flags, VM lookup. */
#ifndef KSCOPE_CLI_VM_CLI_H
#define KSCOPE_CLI_VM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include <kscope/ctl.h>
#include <kscope/vmspec.h>

#define VM_MAX_POS 8
#define VM_MAX_SPEC 128

/* One option of a subcommand besides the spec flags. */
struct vm_opt {
	const char *name;     /* without the dashes */
	const char *metavar;  /* NULL for a flag without a value */
	const char *help;
	const char **value;   /* receives the value, or "1" for a flag */
};

/* One subcommand: its usage line, description and options, for parsing and --help. */
struct vm_cmd {
	const char *name;       /* "start" */
	const char *args;       /* "NAME [SPEC FLAGS] [--paused]" */
	const char *summary;    /* one line */
	bool spec_flags;        /* takes the VM spec flags and --config */
	const struct vm_opt *opts;  /* ends with name NULL; may be NULL */
	int (*run)(const struct vm_cmd *cmd, int argc, char **argv);
};

/* Where the subcommands' own options land (each command reads the ones it declares). */
struct vm_flags {
	const char *paused, *timeout, *json, *tail, *no_follow, *symbols, *trace_interrupts;
};
extern struct vm_flags vm_flags;

/* The parsed command line of a subcommand. */
struct vm_args {
	const char *pos[VM_MAX_POS];
	int npos;
	bool help;
	const char *config;
	const char *spec_key[VM_MAX_SPEC];
	const char *spec_value[VM_MAX_SPEC];
	size_t nspec;
};

/*
 * Parses argv (argv[0] is the subcommand) into a: "--key value" and "--key=value" for the
 * spec keys (when cmd->spec_flags) and cmd's options, --help/-h, "--" ending options, and
 * positional arguments. Returns 0, or 2 after printing a usage error.
 */
int vm_parse(const struct vm_cmd *cmd, int argc, char **argv, struct vm_args *a);

/* Prints cmd's usage, description and options (spec flags included) to f. */
void vm_usage(const struct vm_cmd *cmd, FILE *f);

/*
 * Builds and validates the spec: the config file first, then the flags in order. Returns
 * the spec, or NULL after printing "kscope vm CMD: <the one-line error>".
 */
struct ks_vmspec *vm_build_spec(const struct vm_cmd *cmd, const struct vm_args *a);

/* Checks a VM name the way the library does; prints the error and returns 2 if bad, else 0. */
int vm_check_name(const struct vm_cmd *cmd, const char *name);

/* <rundir base>/<name> into buf. */
void vm_rundir(const char *name, char *buf, size_t size);

/*
 * Connects to the supervisor of VM name. Returns the client, or NULL after printing why
 * (no such VM, its supervisor died, ...) with *status set to the exit status to use.
 */
struct ks_ctl_client *vm_connect(const struct vm_cmd *cmd, const char *name, int *status);

/*
 * Sends request (stolen) to VM name's supervisor and returns its reply (caller decrefs),
 * or NULL after printing the error with *status set (1: the operation failed, 2: usage).
 * *client (if not NULL) receives the still-open connection, for streams.
 */
json_t *vm_request(const struct vm_cmd *cmd, const char *name, json_t *request,
		   int64_t timeout_ns, int *status, struct ks_ctl_client **client);

/*
 * If the VM in `name`'s runtime directory has lost its supervisor, cleans it up. Returns 1
 * (cleaned: what was found is in note), 0 (alive or starting: nothing done), or -1 (failed,
 * note says why).
 */
int vm_reap_if_dead(const char *name, char *note, size_t size);

/* Subcommands (cmd_vm.c, cmd_vm_ctl.c). */
int vm_cmd_start(const struct vm_cmd *cmd, int argc, char **argv);
int vm_cmd_run(const struct vm_cmd *cmd, int argc, char **argv);
int vm_cmd_list(const struct vm_cmd *cmd, int argc, char **argv);
int vm_cmd_status(const struct vm_cmd *cmd, int argc, char **argv);
int vm_cmd_simple(const struct vm_cmd *cmd, int argc, char **argv);
int vm_cmd_snapshot(const struct vm_cmd *cmd, int argc, char **argv);
int vm_cmd_console(const struct vm_cmd *cmd, int argc, char **argv);
int vm_cmd_qmp(const struct vm_cmd *cmd, int argc, char **argv);

#endif
