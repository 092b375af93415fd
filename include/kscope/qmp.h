/* qmp.h: a client of QEMU's machine protocol (QMP) on a Unix socket, driven by a ks_loop. */
#ifndef KSCOPE_QMP_H
#define KSCOPE_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <kscope/error.h>
#include <kscope/loop.h>

struct ks_qmp;

/* The longest line accepted from the peer; a longer one is a protocol error. */
#define KS_QMP_MAX_LINE (16u << 20)

/* An asynchronous event from QEMU ({"event": ..., "data": ..., "timestamp": ...}). */
struct ks_qmp_event {
	char *name;        /* "STOP", "RESUME", "SHUTDOWN", ... */
	json_t *data;      /* the event's "data" object (an empty object if it had none) */
	int64_t ts_us;     /* QEMU's timestamp, microseconds since the Unix epoch; -1 if absent
			    * or invalid */
	uint64_t recv_ns;  /* ks_loop_now_ns() when the client read it */
};

/*
 * Called for each event, in arrival order, while the loop runs. ev and its members are
 * valid during the call only (json_incref(ev->data) to keep the data).
 */
typedef void (*ks_qmp_event_cb)(struct ks_qmp *q, const struct ks_qmp_event *ev, void *data);

/*
 * Called once when the reply to an asynchronous command arrives or can no longer come.
 * status: 0 (reply is the "return" value), -EIO or -EOPNOTSUPP (QEMU refused: reply is its
 * "error" object {"class", "desc"}), -ECONNRESET or -EPROTO (connection lost or broken:
 * reply is NULL). reply is borrowed for the call; err says what happened when status < 0.
 */
typedef void (*ks_qmp_reply_cb)(struct ks_qmp *q, int status, json_t *reply,
				const struct ks_error *err, void *data);

/*
 * Connects to QEMU's QMP socket at path, retrying while the socket does not exist yet or
 * refuses connections (QEMU creates it some time after it starts), reads the greeting and
 * negotiates capabilities, all within timeout_ns (< 0: no limit). Runs on loop, which must
 * outlive the client; with loop NULL the client makes and owns a private one.
 * Returns NULL on failure with err filled (-ETIMEDOUT, -ENAMETOOLONG, -ECONNRESET, -EPROTO,
 * ...). Free with ks_qmp_free(). Setting KSCOPE_QMP_DEBUG=1 in the environment turns on
 * ks_qmp_set_debug(q, stderr) from the start.
 */
struct ks_qmp *ks_qmp_connect(struct ks_loop *loop, const char *path, int64_t timeout_ns,
			      struct ks_error *err);

/*
 * Like ks_qmp_connect() on fd, an already connected stream socket, whose ownership passes
 * to the client (it is closed by ks_qmp_free(), and on failure here).
 */
struct ks_qmp *ks_qmp_attach(struct ks_loop *loop, int fd, int64_t timeout_ns,
			     struct ks_error *err);

/*
 * Closes the connection and frees the client and its queued events. Pending asynchronous
 * commands get their callbacks with -ECONNRESET first. Takes NULL. Not from a callback.
 */
void ks_qmp_free(struct ks_qmp *q);

/* False once the peer has closed the connection or broken the protocol. */
bool ks_qmp_connected(const struct ks_qmp *q);

/*
 * Why the client is disconnected (code -ECONNRESET or -EPROTO and a message), or NULL while
 * it is connected. Borrowed: valid until ks_qmp_free().
 */
const struct ks_error *ks_qmp_disconnect_reason(const struct ks_qmp *q);

/* The greeting's "QMP" object ({"version": ..., "capabilities": ...}). Borrowed. */
json_t *ks_qmp_greeting(const struct ks_qmp *q);

/* The loop the client runs on. */
struct ks_loop *ks_qmp_loop(const struct ks_qmp *q);

/*
 * Copies all traffic to f, one line per message, "qmp -> " before what the client sends
 * and "qmp <- " before what it receives ("qmp -- " before the client's own remarks, such as
 * why it disconnected). NULL turns it off. f must outlive the client.
 */
void ks_qmp_set_debug(struct ks_qmp *q, FILE *f);

/*
 * Runs command cmd with arguments args (a JSON object, or NULL for none; the reference is
 * stolen in every case, even on failure) and waits at most timeout_ns (< 0: no limit) for
 * its reply, running the loop meanwhile (so other callbacks and events keep flowing).
 * On success returns 0 and, if reply is not NULL, stores the "return" value there (a new
 * reference: json_decref it). Errors:
 * - -EIO when QEMU refuses the command, or -EOPNOTSUPP when its error class is
 *   CommandNotFound; err's message holds the command, class and desc, and *reply (if
 *   asked) receives QEMU's "error" object so the caller can read "class" and "desc";
 * - -ETIMEDOUT when no reply came in time (a late reply is then dropped);
 * - -ECONNRESET when the peer closed the connection before replying, -EPROTO when it sent
 *   something that is not QMP (err names what was wrong); the client is then disconnected;
 * - -ENOTCONN when it already was, -EINVAL, -ENOMEM, or a failure of the loop.
 * *reply is NULL after every failure other than -EIO / -EOPNOTSUPP.
 */
int ks_qmp_call(struct ks_qmp *q, const char *cmd, json_t *args, json_t **reply,
		int64_t timeout_ns, struct ks_error *err);

/*
 * Sends cmd with args (stolen, may be NULL) and returns at once. cb runs exactly once,
 * from the loop, with the reply or the failure (see ks_qmp_reply_cb), unless the command
 * is cancelled first. Returns the command's id (> 0) for ks_qmp_cancel(), or -ENOTCONN,
 * -EINVAL, -ENOMEM (cb is not called then).
 */
int64_t ks_qmp_call_async(struct ks_qmp *q, const char *cmd, json_t *args,
			  ks_qmp_reply_cb cb, void *data);

/*
 * Forgets asynchronous command id: its callback will not run and its reply, if it comes,
 * is dropped. Returns 0 or -ENOENT if it is not pending.
 */
int ks_qmp_cancel(struct ks_qmp *q, int64_t id);

/*
 * Runs a human-monitor (HMP) command line such as "info registers" through
 * human-monitor-command and stores its text output in *output (malloc'd, caller frees; may
 * be NULL to discard; "\r\n" turned into "\n"). HMP reports many failures only as text in
 * a successful reply, so the output also counts as a failure (-EIO, first line of the
 * output in err) when it starts with "Error:" or with one of HMP's known failure phrases
 * (see ks_qmp_hmp_failed()); *output is still filled then. Other errors as ks_qmp_call().
 */
int ks_qmp_hmp(struct ks_qmp *q, const char *cmdline, char **output, int64_t timeout_ns,
	       struct ks_error *err);

/*
 * The rule ks_qmp_hmp() applies to HMP output text: it is a failure when
 * - its first line (leading blanks ignored) starts with "Error" (QEMU's own marking) or
 *   with a phrase HMP prints unmarked: "unknown command:", "invalid ", "Invalid ",
 *   "unexpected end of expression", "Could not ", "could not ", "Failed to ",
 *   "failed to ", "Device '", "No block device", "no block device", "Parameter '";
 * - any line starts with "Error:" or with "Try \"help " (HMP's hint after a bad argument);
 * - it contains "Cannot access memory" (a partly failed x/xp) or "Could not open".
 * Register dumps, memory dumps and "info" tables do not match it.
 */
bool ks_qmp_hmp_failed(const char *output);

/*
 * Delivers every event from now on to cb instead of queueing it (cb NULL: queue again).
 * Events queued before stay queued for ks_qmp_next_event().
 */
void ks_qmp_on_event(struct ks_qmp *q, ks_qmp_event_cb cb, void *data);

/*
 * Takes the oldest queued event, running the loop for at most timeout_ns (< 0: no limit)
 * if none is queued. Returns 0 and *ev (free with ks_qmp_event_free()), -ETIMEDOUT, or
 * -ENOTCONN once the connection is gone and the queue is empty.
 */
int ks_qmp_next_event(struct ks_qmp *q, struct ks_qmp_event **ev, int64_t timeout_ns);

/*
 * Like ks_qmp_next_event() for the oldest event named `name`; events with other names stay
 * queued in their order. ev may be NULL to discard the event.
 */
int ks_qmp_wait_event(struct ks_qmp *q, const char *name, struct ks_qmp_event **ev,
		      int64_t timeout_ns);

/* Frees an event taken from the queue. Takes NULL. */
void ks_qmp_event_free(struct ks_qmp_event *ev);

#endif
