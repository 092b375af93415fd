/* http.h: the dashboard's HTTP layer: libmicrohttpd on the kscope loop, static files, a token, SSE. */
#ifndef KSCOPE_WEB_HTTP_H
#define KSCOPE_WEB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kscope/error.h>
#include <kscope/loop.h>

/*
 * One HTTP/1.1 server that runs on the caller's ks_loop (libmicrohttpd in external-epoll
 * mode: its epoll fd is one fd of the loop, its timeout one timer), so that HTTP, QMP, gdb,
 * serial and timers share one thread and nothing needs a lock.
 *
 * What it enforces before a handler sees a request, each refused with a JSON body
 * {"error": "one line"}:
 *   - methods other than GET, HEAD and POST: 405;
 *   - a request target longer than KS_HTTP_MAX_TARGET: 414; a body longer than
 *     opts.max_body: 413 (refused from its Content-Length before it is read; a chunked
 *     one is read to its end for the 413, or the connection is closed once it passes
 *     4 x max_body); headers beyond libmicrohttpd's memory limit: 431 (or the
 *     connection is closed);
 *   - a Host header that is not the address the server listens on, "localhost:PORT" or
 *     "127.0.0.1:PORT" (DNS-rebinding defence), unless opts.any_host: 421;
 *   - paths containing "..", "//", a backslash, a NUL or a percent-encoded '/' or '.': 400.
 * Static files are only those of the table given at creation (exact paths; "/" is served
 * as "/index.html"); any other path not under "/api/" is 404. Paths under "/api/" go to
 * the handler.
 *
 * Server-Sent Events: a handler may turn its request into an event stream. Each stream
 * has a bounded queue (opts.max_queue bytes); an event that does not fit is dropped and
 * counted, and when the client has taken enough that the queue is below half, the
 * server sends "event: dropped" with {"dropped": total} before anything else, so the page
 * can show it. A slow browser therefore costs memory up to the bound and never blocks the
 * loop. Events sent to an idle stream wait opts.coalesce_ms before they are written, so that
 * a flood of them reaches the browser in a few writes a second, not one write (and one
 * wake-up of the browser's network and renderer processes) per event: the browser then
 * costs the VMs sharing its CPUs little. A stream gets a ": keep-alive" comment every 15 s of silence
 * (opts.keepalive_ms).
 */

#define KS_HTTP_MAX_TARGET 2048u         /* bytes of the request target */
#define KS_HTTP_DEFAULT_MAX_BODY 65536u  /* bytes of a request body */
#define KS_HTTP_DEFAULT_MAX_QUEUE (256u << 10) /* bytes queued per event stream */
#define KS_HTTP_TOKEN_HEADER "X-Kscope-Token"

/* One static file, served as is with its content type. */
struct ks_http_file {
	const char *path;          /* "/index.html" */
	const char *content_type;  /* "text/html; charset=utf-8" */
	const unsigned char *data;
	size_t len;
};

struct ks_http;
struct ks_http_req;
struct ks_http_stream;

/*
 * Handles one request under "/api/". Answer with ks_http_reply*() or ks_http_stream_open()
 * before returning (exactly once); returning without an answer gives a 500. rq and the
 * strings it gives are valid until the handler returns. A handler may run the loop
 * (nested); the server then serves nothing else until it returns.
 */
typedef void (*ks_http_handler)(struct ks_http_req *rq, void *data);

/* Called once when a stream ends (client gone, server freed), before it is freed. */
typedef void (*ks_http_stream_close_cb)(struct ks_http_stream *st, void *data);

struct ks_http_opts {
	const char *addr;      /* "127.0.0.1" (default); an IPv4 or IPv6 literal */
	uint16_t port;         /* 0 (default): any free port */
	bool any_host;         /* false: check the Host header (see above) */
	size_t max_body;       /* KS_HTTP_DEFAULT_MAX_BODY (also when 0) */
	size_t max_queue;      /* KS_HTTP_DEFAULT_MAX_QUEUE (also when 0); at least 256 */
	unsigned keepalive_ms; /* 0 (default): 15000, the silence before a ": keep-alive" */
	unsigned coalesce_ms;  /* 0 (default): 40; events of this long go out in one write */
	const char *token;     /* NULL: one is made (32 hex digits from getrandom) */
	const struct ks_http_file *files;  /* the static files, ending with path NULL */
	ks_http_handler handler;
	void *data;
};

/* Fills o with the defaults above (no files, no handler). */
void ks_http_opts_init(struct ks_http_opts *o);

/*
 * Listens on opts->addr:opts->port and serves on loop (not owned; it must outlive the
 * server). Returns the server, or NULL with err filled (-EADDRINUSE naming the address,
 * -EADDRNOTAVAIL, -EINVAL for a bad address, ...).
 */
struct ks_http *ks_http_new(struct ks_loop *loop, const struct ks_http_opts *opts,
			    struct ks_error *err);

/* Ends every stream (running their close callbacks), closes every connection and the
 * listening socket, and frees the server. Takes NULL. */
void ks_http_free(struct ks_http *h);

/* The port it listens on (the chosen one when opts.port was 0). */
uint16_t ks_http_port(const struct ks_http *h);

/* The token actions must carry (32 hex digits, or opts.token). Borrowed. */
const char *ks_http_token(const struct ks_http *h);

/* "http://127.0.0.1:PORT/?token=TOKEN" (the address as listened on; IPv6 in brackets).
 * Borrowed; valid until ks_http_free(). */
const char *ks_http_url(const struct ks_http *h);

/* ---- requests ---- */

const char *ks_http_method(const struct ks_http_req *rq);   /* "GET", "HEAD", "POST" */
const char *ks_http_path(const struct ks_http_req *rq);     /* decoded, without the query */
/* A query parameter (decoded), or NULL. */
const char *ks_http_query(const struct ks_http_req *rq, const char *name);
/* A request header (case-insensitive name), or NULL. */
const char *ks_http_header(const struct ks_http_req *rq, const char *name);
/* The request body (NUL-terminated; len may be 0). */
const char *ks_http_body(const struct ks_http_req *rq, size_t *len);

/* Whether the request carries the server's token, in the X-Kscope-Token header or as the
 * "token" query parameter; compared in constant time. */
bool ks_http_token_ok(const struct ks_http_req *rq);

/* ---- answers ---- */

/* Answers with status and body (copied). 0, -ENOMEM, or -EALREADY when rq has its answer. */
int ks_http_reply(struct ks_http_req *rq, unsigned status, const char *content_type,
		  const void *body, size_t len);

/* Answers with status and the JSON of v (the reference is stolen; NULL, as from a failed
 * json_pack(), answers 500 and returns -ENOMEM). */
int ks_http_reply_json(struct ks_http_req *rq, unsigned status, json_t *v);

/* Answers with status and {"error": message}. */
__attribute__((format(printf, 3, 4)))
int ks_http_reply_error(struct ks_http_req *rq, unsigned status, const char *fmt, ...);

/* ---- event streams ---- */

/*
 * Answers rq with 200 text/event-stream and returns the stream, which lives until the
 * client goes or the server is freed (close_cb then, with data). NULL when out of memory
 * (a 500 is sent) or when rq already has its answer.
 */
struct ks_http_stream *ks_http_stream_open(struct ks_http_req *rq, ks_http_stream_close_cb cb,
					   void *data);

/*
 * Queues one event ("event: NAME\ndata: JSON\n\n"; the reference to data is stolen).
 * Returns 0, -ENOBUFS when it was dropped for lack of queue (counted), -EPIPE when the
 * stream is closing, -EINVAL for an empty event name or one with a line break, -ENOMEM
 * (also for data NULL, as from a failed json_pack()).
 */
int ks_http_stream_send(struct ks_http_stream *st, const char *event, json_t *data);

/* Events dropped on st so far. */
uint64_t ks_http_stream_dropped(const struct ks_http_stream *st);

/* Bytes waiting in st's queue. */
size_t ks_http_stream_queued(const struct ks_http_stream *st);

/* Ends the stream: its close callback runs now; what is queued is still sent, then the
 * answer ends. Takes NULL. */
void ks_http_stream_close(struct ks_http_stream *st);

/* The number of open streams. */
size_t ks_http_streams(const struct ks_http *h);

/*
 * Ends every stream (their close callbacks run); each still sends what was queued for it,
 * then its response ends. Until libmicrohttpd is done with them, they count in
 * ks_http_streams_closing(): a process about to exit runs the loop until that is 0, so that
 * the pages get the last events.
 */
void ks_http_streams_close(struct ks_http *h);

/* The number of ended streams whose last bytes libmicrohttpd has not finished with. */
size_t ks_http_streams_closing(const struct ks_http *h);

#endif
