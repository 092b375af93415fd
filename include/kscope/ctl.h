/* ctl.h: the control protocol between kscope commands and a VM's supervisor (JSON lines). */
#ifndef KSCOPE_CTL_H
#define KSCOPE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include <kscope/error.h>
#include <kscope/loop.h>

/*
 * The supervisor of a VM listens on a Unix stream socket, KS_CTL_SOCKET in the VM's runtime
 * directory. Each message is one JSON object on one line ('\n'; a '\r' before it is
 * ignored):
 *
 *   request   {"id": N, "cmd": "status", ...arguments}
 *   reply     {"id": N, "ok": true, ...results}
 *             {"id": N, "ok": false, "error": "one line"}
 *             {"id": N, "ok": false, "error": "one line", "detail": {...}}  (see handlers)
 *   streamed  {"id": N, ...}  without "ok", sent after the reply of a streaming command
 *             (e.g. console: {"id": N, "line": "...", "ts": ...}) until the client leaves
 *
 * "id" is echoed as given (any JSON value; null if absent), so a client may have several
 * requests and streams on one connection. A line longer than KS_CTL_MAX_LINE gets an error
 * reply with id null and the connection is closed; a line that is not a JSON object, or
 * lacks "cmd", or names an unknown command gets an error reply and the connection stays.
 */

#define KS_CTL_SOCKET "control.sock"
#define KS_CTL_MAX_LINE (1u << 20)     /* bytes per line, without the newline */
#define KS_CTL_MAX_QUEUE (16u << 20)   /* bytes the server queues for a slow client */
#define KS_CTL_MAX_CLIENTS 128

/* A handler's return value meaning "ok, and this request now streams" (see below). */
#define KS_CTL_STREAM 1

/*
 * Finds the first line in buf[0..len). Returns the bytes it takes with its newline (> 0)
 * and stores its length without the newline and a '\r' before it in *line_len; returns 0
 * when no newline has come yet and len <= max (more input is needed); returns -EMSGSIZE
 * when the line is longer than max bytes, newline or not. Pure: no state, no allocation.
 */
ssize_t ks_ctl_frame(const char *buf, size_t len, size_t max, size_t *line_len);

/* ---- server ---- */

struct ks_ctl_server;
struct ks_ctl_conn;

/*
 * Handles one request. req is the whole request object (borrowed); the handler adds its
 * results as members of reply (an empty object it does not own); "id" and "ok" are set by
 * the server. Returns 0 (ok), KS_CTL_STREAM (ok, and the handler keeps c to send more
 * messages with ks_ctl_conn_send(); it learns that c went away through
 * ks_ctl_conn_on_close()), or -errno with err's message as the reply's "error"; of what a
 * failing handler added to reply only an object named "detail" is sent along. A handler
 * may run the loop (e.g. a QMP call); other clients are served meanwhile, but c reads no
 * further requests until it returns.
 */
typedef int (*ks_ctl_handler)(struct ks_ctl_conn *c, json_t *req, json_t *reply,
			      struct ks_error *err, void *data);

/* One entry of a server's command table, which ends with an entry whose name is NULL. */
struct ks_ctl_command {
	const char *name;
	ks_ctl_handler fn;
};

/* Called once when a client connection closes, before the connection is freed. */
typedef void (*ks_ctl_close_cb)(struct ks_ctl_conn *c, void *data);

/*
 * Listens on the Unix socket path (created here; it must not exist) and serves the
 * commands of table (borrowed: it must outlive the server) on loop, passing data to every
 * handler. Returns the server, or NULL with err filled (-EADDRINUSE, -ENAMETOOLONG, ...).
 * Free with ks_ctl_server_free().
 */
struct ks_ctl_server *ks_ctl_server_new(struct ks_loop *loop, const char *path,
					const struct ks_ctl_command *table, void *data,
					struct ks_error *err);

/*
 * Serves fd, an already connected stream socket, as one more client (the server owns fd
 * from the call on, and closes it on failure). Returns 0, -ENOSPC (too many clients) or
 * -errno.
 */
int ks_ctl_server_attach(struct ks_ctl_server *s, int fd);

/*
 * Stops accepting connections and removes the socket file; connected clients are still
 * served. Idempotent.
 */
void ks_ctl_server_shutdown(struct ks_ctl_server *s);

/*
 * Shuts the server down, gives each client up to a short grace period (in all about a
 * tenth of a second) to take what was queued for it, runs the close callbacks, closes every
 * connection and frees the server. Takes NULL. Not from one of its handlers.
 */
void ks_ctl_server_free(struct ks_ctl_server *s);

/* Says whether requests must wait now; data is the server's. */
typedef bool (*ks_ctl_defer_cb)(void *data);

/*
 * Makes requests that would run nested (under another request's handler, or in a round of
 * the loop that a callback runs) wait while defer(data) says so: their clients are not read
 * until ks_ctl_server_run_deferred(), which the owner calls where nothing runs under it (at
 * the top of its loop). For owners whose state cannot serve a request in the middle of other
 * work. defer NULL (the default): requests are handled when they come.
 */
void ks_ctl_server_set_defer(struct ks_ctl_server *s, ks_ctl_defer_cb defer);

/* Lets the requests that waited be read and handled, in the loop's next round. */
void ks_ctl_server_run_deferred(struct ks_ctl_server *s);

/* The number of connected clients. */
size_t ks_ctl_server_clients(const struct ks_ctl_server *s);

/*
 * Queues msg (a JSON object; the reference is stolen in every case) as one line to the
 * client and sends what the socket takes at once; the rest goes out as the loop runs.
 * Returns 0, -EPIPE if the connection is closed or closing, -ENOBUFS if more than
 * KS_CTL_MAX_QUEUE bytes would wait (the client is then dropped: it does not read), -EINVAL
 * or -ENOMEM.
 */
int ks_ctl_conn_send(struct ks_ctl_conn *c, json_t *msg);

/* Sets the one close callback of c (cb NULL: none). */
void ks_ctl_conn_on_close(struct ks_ctl_conn *c, ks_ctl_close_cb cb, void *data);

/* Closes c once what is queued for it has been sent (at most the grace period later). */
void ks_ctl_conn_close(struct ks_ctl_conn *c);

/* The process id of the client (SO_PEERCRED), or -1 if unknown. */
pid_t ks_ctl_conn_peer_pid(const struct ks_ctl_conn *c);

/* ---- client ---- */

struct ks_ctl_client;

/*
 * Connects to KS_CTL_SOCKET in rundir, retrying while the socket does not exist or refuses
 * connections for at most timeout_ns (0: one attempt; < 0: no limit). Returns the client
 * (free with ks_ctl_client_free()) or NULL with err filled with the last attempt's error:
 * -ENOENT or -ECONNREFUSED (no supervisor listens), -ENAMETOOLONG, or another -errno.
 */
struct ks_ctl_client *ks_ctl_connect(const char *rundir, int64_t timeout_ns,
				     struct ks_error *err);

/*
 * A client on fd, an already connected stream socket (owned by the client from the call
 * on, closed on failure). Returns NULL with err filled (-ENOMEM) on failure.
 */
struct ks_ctl_client *ks_ctl_client_attach(int fd, struct ks_error *err);

/* Closes the connection and frees the client; NULL is fine. */
void ks_ctl_client_free(struct ks_ctl_client *c);

/* The connection's socket, e.g. to poll it together with other fds. */
int ks_ctl_client_fd(const struct ks_ctl_client *c);

/*
 * Sends req (a JSON object with a "cmd"; the reference is stolen in every case; an "id" is
 * added when it has none) and waits at most timeout_ns (< 0: no limit) for its reply.
 * Other messages that arrive meanwhile are kept for ks_ctl_read(). Returns 0 and, if reply
 * is not NULL, the whole reply object in *reply (a new reference) when it says ok; -EIO with
 * the server's "error" in err (and *reply set) when it says not ok; -ETIMEDOUT; -ECONNRESET
 * if the server closed the connection first; -EPROTO if it sent something that is not a
 * JSON object; -EINTR if a signal interrupted the wait; -EINVAL, -ENOMEM. *reply is NULL
 * after every failure but -EIO.
 */
int ks_ctl_call(struct ks_ctl_client *c, json_t *req, json_t **reply, int64_t timeout_ns,
		struct ks_error *err);

/*
 * Takes the next message from the server (streamed lines, mostly), waiting at most
 * timeout_ns (< 0: no limit). Returns 0 and *msg (a new reference), -ETIMEDOUT,
 * -ECONNRESET when the server closed the connection, -EPROTO, or -EINTR if a signal
 * interrupted the wait.
 */
int ks_ctl_read(struct ks_ctl_client *c, json_t **msg, int64_t timeout_ns,
		struct ks_error *err);

#endif
