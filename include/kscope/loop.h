/* loop.h: the one event loop (epoll) that multiplexes file descriptors and timers. */
#ifndef KSCOPE_LOOP_H
#define KSCOPE_LOOP_H

#include <stdint.h>

#include <kscope/error.h>

struct ks_loop;

/* Interest (for add/mod) and readiness (passed to callbacks). */
#define KS_LOOP_IN  0x1u  /* readable */
#define KS_LOOP_OUT 0x2u  /* writable */
#define KS_LOOP_HUP 0x4u  /* reported only: the peer hung up (reading gives EOF) */
#define KS_LOOP_ERR 0x8u  /* reported only: an error is pending on the fd */

/* Called with the readiness bits of fd (a subset of its interest, plus HUP/ERR). */
typedef void (*ks_loop_fd_cb)(struct ks_loop *l, int fd, uint32_t events, void *data);

/* Called when timer `id` expires. */
typedef void (*ks_loop_timer_cb)(struct ks_loop *l, int64_t id, void *data);

/*
 * Creates an empty loop. Returns NULL on failure (err filled: -EMFILE, -ENOMEM, ...).
 * Free with ks_loop_free().
 */
struct ks_loop *ks_loop_new(struct ks_error *err);

/*
 * Frees the loop and its timers. Registered fds are not closed: they belong to the caller.
 * Takes NULL. Must not be called from inside one of the loop's callbacks.
 */
void ks_loop_free(struct ks_loop *l);

/*
 * Watches fd for `events` (KS_LOOP_IN | KS_LOOP_OUT, or 0 for HUP/ERR only) and calls
 * cb(l, fd, ready, data) when it is ready (level-triggered). Returns 0, -EEXIST if fd is
 * already watched, -EBADF, -EPERM (fd not pollable, e.g. a regular file), -EINVAL or -ENOMEM.
 */
int ks_loop_add_fd(struct ks_loop *l, int fd, uint32_t events, ks_loop_fd_cb cb, void *data);

/* Changes the interest of a watched fd. Returns 0, -ENOENT if fd is not watched, or -errno. */
int ks_loop_mod_fd(struct ks_loop *l, int fd, uint32_t events);

/*
 * Stops watching fd (does not close it). Returns 0 or -ENOENT. Safe from any callback,
 * including fd's own: readiness already collected for fd is then dropped.
 */
int ks_loop_del_fd(struct ks_loop *l, int fd);

/*
 * Arms a timer that first fires delay_ns from now, then every period_ns (0: once).
 * Timers due at the same time fire in the order they were armed; a periodic timer that
 * falls more than a period behind skips the missed expiries. Returns the timer's id (> 0)
 * or -EINVAL / -ENOMEM. A one-shot timer is gone once its callback has started.
 */
int64_t ks_loop_add_timer(struct ks_loop *l, uint64_t delay_ns, uint64_t period_ns,
			  ks_loop_timer_cb cb, void *data);

/*
 * Disarms and forgets timer id. Returns 0, or -ENOENT if there is no such timer (never
 * armed, already deleted, or a one-shot that has fired). Safe from any callback.
 */
int ks_loop_del_timer(struct ks_loop *l, int64_t id);

/*
 * Waits until an fd is ready, a timer is due, a signal arrives or timeout_ns passes
 * (< 0: no limit; 0: just poll), then runs the callbacks of what is ready. Timers armed by
 * those callbacks wait for the next round. Returns the number of callbacks run (0 on
 * timeout or signal) or -errno; with no fds, no timers and no limit it returns 0 at once.
 * Callbacks may call it again (nested runs).
 */
int ks_loop_run_once(struct ks_loop *l, int64_t timeout_ns);

/*
 * How many rounds are running their callbacks now: 0 outside the loop, 1 in a callback of a
 * round, more when a callback runs the loop again (nested).
 */
int ks_loop_depth(const struct ks_loop *l);

/*
 * Runs rounds until ks_loop_stop() is called or nothing is left to watch. Returns 0, or
 * -errno if waiting failed.
 */
int ks_loop_run(struct ks_loop *l);

/*
 * Makes ks_loop_run() return after the current round (called outside a run: after the
 * first round of the next one).
 */
void ks_loop_stop(struct ks_loop *l);

/* The monotonic clock (CLOCK_MONOTONIC) in nanoseconds, the time base of the timers. */
uint64_t ks_loop_now_ns(void);

#endif
