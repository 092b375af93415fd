/* cmd_vm.c: `kscope vm`: finds the subcommand; finding a VM and talking to its supervisor. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <kscope/supervisor.h>
#include <kscope/vm.h>

#include "commands.h"
#include "vm_cli.h"

#define SEC 1000000000ll
#define CONNECT_NS (2 * SEC)
#define CONNECT_STARTING_NS (15 * SEC)

struct vm_flags vm_flags;

static const struct vm_opt start_opts[] = {
	{ "paused", NULL, "leave the vCPUs stopped before their first instruction",
	  &vm_flags.paused },
	{ "trace-interrupts", NULL, "QEMU logs every interrupt and exception, for events "
	  "--passive (TCG)", &vm_flags.trace_interrupts },
	{ "symbols", "FILE", "kernel symbols from FILE (ELF or System.map) for kscope peek, "
	  "vtop, sym...", &vm_flags.symbols },
	{ NULL, NULL, NULL, NULL },
};

static const struct vm_opt run_opts[] = {
	{ "timeout", "S", "destroy the VM after S seconds (it then counts as failed)",
	  &vm_flags.timeout },
	{ "symbols", "FILE", "kernel symbols from FILE (ELF or System.map) for kscope peek, "
	  "vtop, sym...", &vm_flags.symbols },
	{ NULL, NULL, NULL, NULL },
};

static const struct vm_opt json_opts[] = {
	{ "json", NULL, "print JSON instead of text", &vm_flags.json },
	{ NULL, NULL, NULL, NULL },
};

static const struct vm_opt console_opts[] = {
	{ "tail", "N", "first print the last N lines (default 100)", &vm_flags.tail },
	{ "no-follow", NULL, "print the last lines and return", &vm_flags.no_follow },
	{ NULL, NULL, NULL, NULL },
};

static const struct vm_cmd vm_cmds[] = {
	{ "start", "NAME [SPEC FLAGS | --config FILE] [--paused] [--trace-interrupts] "
	  "[--symbols FILE]",
	  "Starts a VM that keeps running, owned by a supervisor process, until it is "
	  "destroyed\nor ends by itself.", true, start_opts, vm_cmd_start },
	{ "run", "NAME [SPEC FLAGS | --config FILE] [--timeout S] [--symbols FILE]",
	  "Runs a VM in this process, copying its console (COM1) to stdout, until it ends.\n"
	  "Exits 0 if the guest exited with code 0x10 (all tests passed), else 1.\n"
	  "Ctrl-C destroys the VM.", true, run_opts, vm_cmd_run },
	{ "list", "[--json]", "Lists the VMs, and cleans up after those whose supervisor died.",
	  false, json_opts, vm_cmd_list },
	{ "status", "NAME [--json]", "Shows a VM's state, CPUs, memory and recent events.",
	  false, json_opts, vm_cmd_status },
	{ "pause", "NAME", "Stops every vCPU.", false, NULL, vm_cmd_simple },
	{ "resume", "NAME", "Lets the vCPUs run again.", false, NULL, vm_cmd_simple },
	{ "reset", "NAME", "Resets the machine (the guest reboots).", false, NULL, vm_cmd_simple },
	{ "stop", "NAME", "Asks QEMU to quit (a clean power-off), then cleans up.", false, NULL,
	  vm_cmd_simple },
	{ "destroy", "NAME", "Kills the VM at once and removes its runtime directory.", false,
	  NULL, vm_cmd_simple },
	{ "snapshot", "NAME save|load|delete TAG | NAME list [--json]",
	  "Saves, restores, deletes or lists internal snapshots of the whole VM.", false,
	  json_opts, vm_cmd_snapshot },
	{ "console", "NAME [--tail N] [--no-follow]",
	  "Follows the VM's serial console (COM1) until Ctrl-C or the VM ends.", false,
	  console_opts, vm_cmd_console },
	{ "qmp", "NAME 'JSON'",
	  "Sends one QMP command, e.g. '{\"execute\":\"query-status\"}', and prints QEMU's "
	  "reply.\nExits 1 if QEMU answered with an error.", false, NULL, vm_cmd_qmp },
};

#define NCMDS (sizeof(vm_cmds) / sizeof(vm_cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: kscope vm COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < NCMDS; i++) {
		const char *nl = strchr(vm_cmds[i].summary, '\n');

		fprintf(f, "  %-9s %.*s\n", vm_cmds[i].name,
			nl ? (int)(nl - vm_cmds[i].summary) : (int)strlen(vm_cmds[i].summary),
			vm_cmds[i].summary);
	}
	fprintf(f, "\nkscope vm COMMAND --help describes each one. VMs live in %s.\n",
		ks_vm_rundir_base());
}

int cmd_vm(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NCMDS; i++)
		if (!strcmp(argv[1], vm_cmds[i].name))
			return vm_cmds[i].run(&vm_cmds[i], argc - 1, argv + 1);
	fprintf(stderr, "kscope vm: unknown command '%s' (kscope vm --help lists them)\n",
		argv[1]);
	return 2;
}

void vm_rundir(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", ks_vm_rundir_base(), name);
}

struct ks_ctl_client *vm_connect(const struct vm_cmd *cmd, const char *name, int *status)
{
	char dir[PATH_MAX];
	struct ks_error err = { 0 };
	struct ks_ctl_client *c;
	enum ks_supervisor_liveness live;
	struct stat st;

	if ((*status = vm_check_name(cmd, name)) != 0)
		return NULL;
	*status = 1;
	vm_rundir(name, dir, sizeof(dir));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "kscope vm %s: no VM named '%s' (kscope vm list shows the VMs)\n",
			cmd->name, name);
		return NULL;
	}
	live = ks_supervisor_probe(dir, NULL);
	if (live == KS_SUPERVISOR_DEAD) {
		fprintf(stderr, "kscope vm %s: VM '%s' is gone: its supervisor died (kscope vm "
			"list cleans up after it)\n", cmd->name, name);
		return NULL;
	}
	c = ks_ctl_connect(dir, live == KS_SUPERVISOR_STARTING ? CONNECT_STARTING_NS
							     : CONNECT_NS, &err);
	if (!c)
		fprintf(stderr, "kscope vm %s: cannot reach the supervisor of VM '%s': %s\n",
			cmd->name, name, err.msg);
	else
		*status = 0;
	return c;
}

json_t *vm_request(const struct vm_cmd *cmd, const char *name, json_t *request,
		   int64_t timeout_ns, int *status, struct ks_ctl_client **client)
{
	struct ks_ctl_client *c = vm_connect(cmd, name, status);
	struct ks_error err = { 0 };
	json_t *reply = NULL;

	if (!c) {
		json_decref(request);
		return NULL;
	}
	if (ks_ctl_call(c, request, &reply, timeout_ns, &err) < 0) {
		fprintf(stderr, "kscope vm %s: %s\n", cmd->name, err.msg);
		*status = 1;
		json_decref(reply);
		ks_ctl_client_free(c);
		return NULL;
	}
	if (client)
		*client = c;
	else
		ks_ctl_client_free(c);
	return reply;
}

int vm_reap_if_dead(const char *name, char *note, size_t size)
{
	char dir[PATH_MAX];
	struct ks_error err = { 0 };
	pid_t killed = -1;
	struct stat st;

	vm_rundir(name, dir, sizeof(dir));
	note[0] = 0;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    ks_supervisor_probe(dir, NULL) != KS_SUPERVISOR_DEAD)
		return 0;
	if (ks_supervisor_cleanup_dead(dir, &killed, &err) < 0) {
		snprintf(note, size, "%s", err.msg);
		return -1;
	}
	if (killed > 0)
		snprintf(note, size, "its supervisor had died; killed its QEMU (pid %d) and "
			 "removed %s", (int)killed, dir);
	else
		snprintf(note, size, "its supervisor had died; removed %s", dir);
	return 1;
}
