/* inspect_cli.c: argument parsing, symbols and the supervisor connection of the introspection commands. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <kscope/ctl.h>
#include <kscope/inspect.h>
#include <kscope/supervisor.h>
#include <kscope/vm.h>

#include "inspect_cli.h"

#define SEC 1000000000ll
#define CONNECT_NS (2 * SEC)
#define CONNECT_STARTING_NS (15 * SEC)
#define MAX_CPU 4095

struct ins_flags ins_flags;

int ins_fail(const struct ins_cmd *cmd, int status, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "kscope %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

static void usage(const struct ins_cmd *cmd, FILE *f)
{
	fprintf(f, "usage: kscope %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
	fprintf(f, "\noptions:\n");
	for (const struct ins_opt *o = cmd->opts; o && o->name; o++) {
		char left[48];
		int n = o->short_name ? snprintf(left, sizeof(left), "-%c, ", o->short_name) : 0;

		snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s", o->name,
			 o->metavar ? " " : "", o->metavar ? o->metavar : "");
		fprintf(f, "  %-22s %s\n", left, o->help);
	}
	fprintf(f, "  %-22s %s\n", "--help", "print this help");
	fprintf(f, "\nExit status: 0 done, 1 the operation failed, 2 bad usage.\n");
}

static const struct ins_opt *find(const struct ins_cmd *cmd, const char *name, size_t len,
				  char short_name)
{
	for (const struct ins_opt *o = cmd->opts; o && o->name; o++)
		if (short_name ? o->short_name == short_name
			       : strlen(o->name) == len && !strncmp(o->name, name, len))
			return o;
	return NULL;
}

/* One option at argv[*i] (its value may be the next argument). Returns 0 or 2. */
static int option(const struct ins_cmd *cmd, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *name = arg + (arg[1] == '-' ? 2 : 1);
	const char *eq = arg[1] == '-' ? strchr(name, '=') : NULL;
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct ins_opt *o = arg[1] == '-' ? find(cmd, name, len, 0)
				: len == 1 ? find(cmd, NULL, 0, name[0]) : NULL;

	if (!o)
		return ins_fail(cmd, 2, "unknown option '%s' (kscope %s --help lists them)", arg,
				cmd->name);
	if (!o->metavar) {
		if (eq)
			return ins_fail(cmd, 2, "%.*s takes no value", (int)(eq - arg), arg);
		*o->value = "1";
		return 0;
	}
	if (eq) {
		*o->value = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return ins_fail(cmd, 2, "%s needs a value (%s)", arg, o->metavar);
	*o->value = argv[++*i];
	return 0;
}

int ins_parse(const struct ins_cmd *cmd, int argc, char **argv, struct ins_args *a)
{
	bool options = true;
	int rc;

	memset(&ins_flags, 0, sizeof(ins_flags));
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && !strcmp(arg, "--")) {
			options = false;
		} else if (options && (!strcmp(arg, "--help") || !strcmp(arg, "-h"))) {
			usage(cmd, stdout);
			return -1;
		} else if (options && arg[0] == '-' && arg[1] && !isdigit((unsigned char)arg[1])) {
			if ((rc = option(cmd, argc, argv, &i)) != 0)
				return rc;
		} else if (a->npos == INS_MAX_POS || a->npos == cmd->max_pos) {
			return ins_fail(cmd, 2, "too many arguments (usage: kscope %s %s)",
					cmd->name, cmd->args);
		} else {
			a->pos[a->npos++] = arg;
		}
	}
	if (a->npos < cmd->min_pos)
		return ins_fail(cmd, 2, "usage: kscope %s %s", cmd->name, cmd->args);
	return 0;
}

int ins_cpu(const struct ins_cmd *cmd, long *cpu)
{
	char *end;

	*cpu = -1;
	if (!ins_flags.cpu)
		return 0;
	errno = 0;
	*cpu = strtol(ins_flags.cpu, &end, 10);
	if (end == ins_flags.cpu || *end || errno || *cpu < 0 || *cpu > MAX_CPU)
		return ins_fail(cmd, 2, "bad --cpu '%s' (a vCPU index: 0, 1, ...)", ins_flags.cpu);
	return 0;
}

int ins_symbols(const struct ins_cmd *cmd, struct ks_symtab **t)
{
	struct ks_error err = { 0 };

	*t = NULL;
	if (!ins_flags.symbols)
		return 0;
	if (!(*t = ks_sym_load(ins_flags.symbols, &err)))
		return ins_fail(cmd, 2, "--symbols: %s", err.msg);
	return 0;
}

json_t *ins_addr(const struct ins_cmd *cmd, const struct ks_symtab *t, const char *expr,
		 bool phys, int *status)
{
	struct ks_error err = { 0 };
	ks_gva_t addr;
	int rc;

	if (!t && !phys)
		return json_string(expr);
	rc = ks_sym_parse(phys ? NULL : t, expr, &addr, &err);
	if (rc == -ENOENT && phys) {
		*status = ins_fail(cmd, 2, "a physical address must be a number, not a symbol "
				   "('%s')", expr);
		return NULL;
	}
	if (rc < 0) {
		*status = ins_fail(cmd, phys ? 2 : 1, "%s", err.msg);
		return NULL;
	}
	return json_sprintf("0x%llx", (unsigned long long)addr);
}

struct ks_ctl_client *ins_connect(const struct ins_cmd *cmd, const char *name, int *status)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	size_t n = strlen(name);
	char dir[PATH_MAX];
	struct ks_error err = { 0 };
	enum ks_supervisor_liveness live;
	struct ks_ctl_client *c;
	struct stat st;

	*status = 1;
	if (n == 0 || n > 32 || name[0] == '.' || strspn(name, ok) != n) {
		*status = ins_fail(cmd, 2, "bad VM name '%s' (1 to 32 letters, digits, '_', '.' "
				   "or '-', not starting with '.')", name);
		return NULL;
	}
	snprintf(dir, sizeof(dir), "%s/%s", ks_vm_rundir_base(), name);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		ins_fail(cmd, 1, "no VM named '%s' (kscope vm list shows the VMs)", name);
		return NULL;
	}
	live = ks_supervisor_probe(dir, NULL);
	if (live == KS_SUPERVISOR_DEAD) {
		ins_fail(cmd, 1, "VM '%s' is gone: its supervisor died (kscope vm list cleans up "
			 "after it)", name);
		return NULL;
	}
	c = ks_ctl_connect(dir, live == KS_SUPERVISOR_STARTING ? CONNECT_STARTING_NS
							     : CONNECT_NS, &err);
	if (!c)
		ins_fail(cmd, 1, "cannot reach the supervisor of VM '%s': %s", name, err.msg);
	else
		*status = 0;
	return c;
}

json_t *ins_call(const struct ins_cmd *cmd, const char *name, json_t *req, int64_t timeout_ns,
		 int *status)
{
	struct ks_ctl_client *c = ins_connect(cmd, name, status);
	struct ks_error err = { 0 };
	json_t *reply = NULL;

	if (!c) {
		json_decref(req);
		return NULL;
	}
	if (ks_ctl_call(c, req, &reply, timeout_ns, &err) < 0) {
		*status = ins_fail(cmd, 1, "%s", err.msg);
		json_decref(reply);
		reply = NULL;
	}
	ks_ctl_client_free(c);
	return reply;
}

uint64_t ins_hex(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? strtoull(s, NULL, 0) : 0;
}

const char *ins_symbol(const struct ks_symtab *t, json_t *o, uint64_t addr, char *buf,
		       size_t size)
{
	if (t)
		return ks_inspect_symbolize(t, addr, buf, size) == 0 ? buf : NULL;
	return json_string_value(json_object_get(o, "symbol"));
}

void ins_print_json(json_t *o)
{
	char *s;

	json_object_del(o, "id");
	json_object_del(o, "ok");
	if ((s = json_dumps(o, JSON_INDENT(2))))
		puts(s);
	free(s);
}
