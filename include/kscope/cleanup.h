/* cleanup.h: a process-wide list of child processes and files to get rid of on every way out. */
#ifndef KSCOPE_CLEANUP_H
#define KSCOPE_CLEANUP_H

#include <sys/types.h>

/*
 * kscope must never leave a QEMU process, a socket or a /dev/shm file behind, whether it
 * returns from main, calls exit(), or dies of SIGINT, SIGTERM, SIGHUP or SIGQUIT. Owners
 * register what they create here and unregister it when they have released it themselves;
 * whatever is still registered is killed (SIGKILL) and unlinked at exit or on those signals,
 * after which the signal takes its default course. (SIGKILL cannot be caught: children are
 * started with a parent-death signal for that case.)
 *
 * The list has a fixed size and the handler uses only async-signal-safe calls.
 */

#define KS_CLEANUP_MAX 256

/* Installs the exit and signal handlers (idempotent). Returns 0 or -errno. */
int ks_cleanup_install(void);

/* Registers a child process to kill. Returns 0, or -ENOSPC when the list is full. */
int ks_cleanup_add_pid(pid_t pid);
/* Unregisters it (it was reaped or handed over). Unknown pids are ignored. */
void ks_cleanup_del_pid(pid_t pid);

/* Registers a file or socket path to unlink (copied). Returns 0, -ENOSPC or -ENAMETOOLONG. */
int ks_cleanup_add_file(const char *path);
/* Registers an (empty by then) directory to remove after the files. Same returns. */
int ks_cleanup_add_dir(const char *path);
/* Unregisters a file or directory path. Unknown paths are ignored. */
void ks_cleanup_del_path(const char *path);

/* Kills, unlinks and removes everything registered now, and empties the list. */
void ks_cleanup_run(void);

#endif
