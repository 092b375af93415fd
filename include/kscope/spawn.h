/* spawn.h: start a child program from an argv array, tied to our life, and wait with a timeout. */
#ifndef KSCOPE_SPAWN_H
#define KSCOPE_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kscope/error.h>

/*
 * Starts argv[0] (looked up in PATH) with argv, never through a shell. Its stdin is
 * /dev/null; stdout and stderr go to out_fd (or /dev/null when out_fd < 0). The fds in
 * keep[0..nkeep) stay open in the child under the same numbers; every other fd of ours is
 * close-on-exec as libkscope opens them. The child gets SIGKILL when this thread's process
 * dies (parent-death signal), so it can never outlive us. Returns the pid, or -errno with
 * err filled (fork failed). A program that cannot be executed exits with status 127 and
 * says why on out_fd.
 */
pid_t ks_spawn(char *const *argv, int out_fd, const int *keep, size_t nkeep,
	       struct ks_error *err);

/*
 * Waits for pid to exit for at most timeout_ns (< 0: no limit). Returns 0 with the raw wait
 * status in *status, or -ETIMEDOUT (the child still runs), or -errno.
 */
int ks_wait_pid(pid_t pid, int64_t timeout_ns, int *status);

#endif
