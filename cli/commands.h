/* commands.h: the subcommands of the kscope command. */
#ifndef KSCOPE_CLI_COMMANDS_H
#define KSCOPE_CLI_COMMANDS_H

/* Each returns the process exit status: 0 success, 1 a failure found, 2 usage or setup error. */
int cmd_version(int argc, char **argv);
int cmd_vm(int argc, char **argv);

#endif
