/* commands.h: the subcommands of the kscope command. */
#ifndef KSCOPE_CLI_COMMANDS_H
#define KSCOPE_CLI_COMMANDS_H

/* Each returns the process exit status: 0 success, 1 a failure found, 2 usage or setup error. */
int cmd_version(int argc, char **argv);
int cmd_vm(int argc, char **argv);

/* Looking inside a VM (cmd_regs.c, cmd_peek.c, cmd_vtop.c). */
int cmd_regs(int argc, char **argv);
int cmd_peek(int argc, char **argv);
int cmd_poke(int argc, char **argv);
int cmd_vtop(int argc, char **argv);
int cmd_pagemap(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_sym(int argc, char **argv);

/* Events and run control (cmd_events.c, cmd_step.c). */
int cmd_events(int argc, char **argv);
int cmd_step(int argc, char **argv);

/* The live dashboard of a VM (cmd_watch.c). */
int cmd_watch(int argc, char **argv);

/* Test results (cmd_parse.c). */
int cmd_parse(int argc, char **argv);

/* Test runs (cmd_run.c). */
int cmd_run(int argc, char **argv);

#endif
