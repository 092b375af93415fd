/* vm_spec_flags.c: `kscope vm` argument parsing: the spec flags (from the vmspec keys) and more. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm_cli.h"

static const struct vm_opt *find_opt(const struct vm_cmd *cmd, const char *name, size_t len)
{
	for (const struct vm_opt *o = cmd->opts; o && o->name; o++)
		if (strlen(o->name) == len && !strncmp(o->name, name, len))
			return o;
	return NULL;
}

/* The spec key named by name[0..len), or NULL. */
static const char *find_key(const char *name, size_t len)
{
	for (const char *const *k = ks_vmspec_keys(); *k; k++)
		if (strlen(*k) == len && !strncmp(*k, name, len))
			return *k;
	if (len == 6 && !strncmp(name, "config", 6))
		return "config";
	return NULL;
}

static int usage_error(const struct vm_cmd *cmd, const char *fmt, const char *what)
{
	fprintf(stderr, "kscope vm %s: ", cmd->name);
	fprintf(stderr, fmt, what);
	fprintf(stderr, " (kscope vm %s --help lists them)\n", cmd->name);
	return 2;
}

/* Takes the value of an option: after '=' or the next argument. */
static const char *take_value(const struct vm_cmd *cmd, const char *eq, int argc, char **argv,
			      int *i)
{
	if (eq)
		return eq + 1;
	if (*i + 1 >= argc) {
		fprintf(stderr, "kscope vm %s: %s needs a value (kscope vm %s --help)\n",
			cmd->name, argv[*i], cmd->name);
		return NULL;
	}
	return argv[++*i];
}

/* Handles one "--name[=value]" argument at argv[*i]. Returns 0 or 2. */
static int parse_long(const struct vm_cmd *cmd, int argc, char **argv, int *i, struct vm_args *a)
{
	const char *name = argv[*i] + 2, *eq = strchr(name, '='), *key, *v;
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct vm_opt *o = find_opt(cmd, name, len);

	if (len == 4 && !strncmp(name, "help", 4)) {
		a->help = true;
		return 0;
	}
	if (o && !o->metavar) {
		if (eq)
			return usage_error(cmd, "%s takes no value", argv[*i]);
		*o->value = "1";
		return 0;
	}
	if (o) {
		if (!(v = take_value(cmd, eq, argc, argv, i)))
			return 2;
		*o->value = v;
		return 0;
	}
	if (!cmd->spec_flags || !(key = find_key(name, len)))
		return usage_error(cmd, "unknown option '%s'", argv[*i]);
	if (!(v = take_value(cmd, eq, argc, argv, i)))
		return 2;
	if (!strcmp(key, "config")) {
		a->config = v;
		return 0;
	}
	if (a->nspec == VM_MAX_SPEC)
		return usage_error(cmd, "too many options at '%s'", argv[*i]);
	a->spec_key[a->nspec] = key;
	a->spec_value[a->nspec++] = v;
	return 0;
}

int vm_parse(const struct vm_cmd *cmd, int argc, char **argv, struct vm_args *a)
{
	bool options = true;
	int rc;

	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && !strcmp(arg, "--")) {
			options = false;
		} else if (options && (!strcmp(arg, "-h") || !strcmp(arg, "--help"))) {
			a->help = true;
		} else if (options && !strncmp(arg, "--", 2)) {
			if ((rc = parse_long(cmd, argc, argv, &i, a)) != 0)
				return rc;
		} else if (options && arg[0] == '-' && arg[1]) {
			return usage_error(cmd, "unknown option '%s'", arg);
		} else if (a->npos == VM_MAX_POS) {
			fprintf(stderr, "kscope vm %s: too many arguments (kscope vm %s --help)\n",
				cmd->name, cmd->name);
			return 2;
		} else {
			a->pos[a->npos++] = arg;
		}
	}
	return 0;
}

static void print_opt(FILE *f, const char *name, const char *metavar, const char *help,
		      bool repeatable)
{
	char left[48];

	snprintf(left, sizeof(left), "--%s%s%s", name, metavar ? " " : "", metavar ? metavar : "");
	fprintf(f, "  %-24s %s%s\n", left, help, repeatable ? " (repeatable)" : "");
}

void vm_usage(const struct vm_cmd *cmd, FILE *f)
{
	fprintf(f, "usage: kscope vm %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
	if (cmd->opts && cmd->opts->name) {
		fprintf(f, "\noptions:\n");
		for (const struct vm_opt *o = cmd->opts; o->name; o++)
			print_opt(f, o->name, o->metavar, o->help, false);
	}
	if (cmd->spec_flags) {
		fprintf(f, "\nVM spec flags (docs/vm-config.md; a --config file first, then the "
			"flags in order):\n");
		print_opt(f, "config", "FILE", "read `key = value` lines from FILE", false);
		for (const char *const *k = ks_vmspec_keys(); *k; k++) {
			const struct ks_vmspec_key *info = ks_vmspec_key_info(*k);

			print_opt(f, info->name, info->metavar, info->help, info->repeatable);
		}
	}
	fprintf(f, "  %-24s %s\n", "--help", "print this help");
}

struct ks_vmspec *vm_build_spec(const struct vm_cmd *cmd, const struct vm_args *a)
{
	struct ks_error err = { 0 };
	struct ks_vmspec *spec = ks_vmspec_new(&err);
	int rc = spec ? 0 : -ENOMEM;

	if (rc == 0 && a->config)
		rc = ks_vmspec_load_file(spec, a->config, &err);
	for (size_t i = 0; rc == 0 && i < a->nspec; i++)
		rc = ks_vmspec_set(spec, a->spec_key[i], a->spec_value[i], &err);
	if (rc == 0)
		rc = ks_vmspec_validate(spec, &err);
	if (rc < 0) {
		fprintf(stderr, "kscope vm %s: %s\n", cmd->name, err.msg);
		ks_vmspec_free(spec);
		return NULL;
	}
	return spec;
}

int vm_check_name(const struct vm_cmd *cmd, const char *name)
{
	size_t n = strlen(name);

	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

	if (n == 0 || n > 32 || name[0] == '.' || strspn(name, ok) != n) {
		fprintf(stderr, "kscope vm %s: bad VM name '%s' (1 to 32 letters, digits, '_', "
			"'.' or '-', not starting with '.')\n", cmd->name, name);
		return 2;
	}
	return 0;
}
