/* main.c: the kscope command: finds the subcommand and hands it the arguments. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "version", cmd_version, "print the version and the kt_ ABI version" },
	{ "vm", cmd_vm, "start, run, list, inspect and control VMs (kscope vm --help)" },
	{ "regs", cmd_regs, "show the registers of a VM's vCPUs" },
	{ "peek", cmd_peek, "read a VM's memory by address or symbol" },
	{ "poke", cmd_poke, "write a VM's memory by address or symbol" },
	{ "vtop", cmd_vtop, "translate a VM's virtual address, level by level" },
	{ "pagemap", cmd_pagemap, "list the mapped virtual ranges of a vCPU" },
	{ "dump", cmd_dump, "copy guest-physical memory to a file" },
	{ "sym", cmd_sym, "look up a VM kernel's symbols" },
	{ "events", cmd_events, "stream a VM's events; pause, dump or stop it on them" },
	{ "step", cmd_step, "execute one instruction on a vCPU of a paused VM" },
	{ "watch", cmd_watch, "serve a VM's live dashboard: tests, events, registers, memory" },
	{ "parse", cmd_parse, "summarize a KTAP/TAP log; write JUnit, JSON, KTAP reports" },
	{ "run", cmd_run, "boot a kernel, run its tests, report (kscope run --help)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: kscope COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "  %-10s %s\n", "help", "print this help");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "kscope: unknown command '%s' (try 'kscope help')\n", argv[1]);
	return 2;
}
