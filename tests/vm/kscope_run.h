/* kscope_run.h: run the real kscope binary from a VM test, and check what a VM leaves behind. */
#ifndef KSCOPE_TESTS_KSCOPE_RUN_H
#define KSCOPE_TESTS_KSCOPE_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What one kscope command did. */
struct kres {
	int status;  /* exit status; 128 + signal if it died of one; -1 if it could not run */
	char *out;   /* its stdout, NUL-terminated (free both with kres_free) */
	char *err;   /* its stderr */
};

/* The kscope binary ($KSCOPE, set by meson). */
const char *kscope_path(void);

/*
 * Runs kscope with the NULL-terminated arguments after argv[0] (so: "vm", "list", NULL) and
 * waits for it, at most 60 s (then it is killed). Returns r->status.
 */
int kscope(struct kres *r, ...) __attribute__((sentinel));

/* Same, with an argv array (args[0] is the first argument after "kscope"). */
int kscope_argv(struct kres *r, const char *const *args);

/*
 * Starts kscope with args in the background, stdout and stderr to the file out_path; it
 * dies with the test (parent-death signal). Returns its pid.
 */
pid_t kscope_spawn(const char *const *args, const char *out_path);

/* Waits at most timeout_s for a background kscope; returns its exit status or -1. */
int kscope_wait(pid_t pid, double timeout_s);

void kres_free(struct kres *r);

/* The number after "key" on the line of text that starts with key, or -1. */
long long kres_field(const char *text, const char *key);

/* True once pid has exited (gone, or a zombie), waiting at most timeout_s. */
bool pid_gone(pid_t pid, double timeout_s);

/* The pid of a live process whose command line mentions needle, or 0. */
pid_t process_mentioning(const char *needle);

/* The value of symbol name in the ELF64 file path, or 0 if it has none. */
uint64_t elf_symbol(const char *path, const char *name);

/* Sleeps for ms milliseconds. */
void sleep_ms(int ms);

/*
 * Makes a fresh directory /tmp/<prefix>-XXXXXX in dir (at least 64 bytes) and sets
 * KSCOPE_RUNDIR to it, so the test's VMs live apart from everyone else's. Returns 0 or -1.
 */
int kscope_rundir_new(char *dir, size_t size, const char *prefix);

/*
 * Ends a test that used dir as its KSCOPE_RUNDIR: kills what a failed test left running there
 * (every VM's supervisor and QEMU, by their pid files), waits for the processes that mention
 * dir to go, removes dir and unsets KSCOPE_RUNDIR. Returns 0, or -1 when a process had to be
 * killed after the wait or dir could not be removed.
 */
int kscope_rundir_cleanup(const char *dir);

/* Runs kscope with args and fails the test unless it exits with status; returns its
 * stdout (free it). */
char *kscope_expect_out(int status, const char *const *args);

/* Runs kscope with args and fails the test unless it exits with status and says exactly err
 * on stderr. */
void kscope_expect_err(int status, const char *err, const char *const *args);

/* The fixture of a VM test that needs no more than its own runtime directory. */
struct kscope_fx {
	char dir[64];    /* this test's KSCOPE_RUNDIR, also its scratch directory */
	char path[320];  /* scratch */
};

/* cmocka setup and teardown for a struct kscope_fx: a new runtime directory named after
 * prefix; whatever a failed test left running under it killed, then the directory removed. */
int kscope_fx_setup(void **state, const char *prefix);
int kscope_fx_teardown(void **state);

#endif
