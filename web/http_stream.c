/* http_stream.c: the HTTP server's event streams (SSE): bounded queues, suspension, drops. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "http_internal.h"

#define STREAM_BLOCK 16384u

/* The queue is a ring: count bytes from head, in a buffer that grows up to max_queue. */
struct ks_http_stream {
	struct ks_http *h;
	struct MHD_Connection *conn;  /* NULL once libmicrohttpd has let go of the response */
	struct ks_http_stream *prev, *next;
	ks_http_stream_close_cb cb;
	void *data;
	char *buf;
	size_t cap, head, count;
	uint64_t dropped;
	uint64_t last_queued;         /* ns, for the keep-alive */
	int64_t ka_timer;
	int64_t co_timer;             /* a wake-up after the coalescing delay */
	int fd;                       /* the client's socket, watched while suspended */
	bool open;                    /* in h->streams, close callback owed */
	bool released;                /* libmicrohttpd freed the response */
	bool suspended, watching, peer_gone, notice_owed;
};

/* ---- event streams: the queue ---- */

static int queue_grow(struct ks_http_stream *st, size_t need)
{
	size_t max = st->h->max_queue, cap = st->cap ? st->cap : 4096;
	char *p;

	while (cap < need)
		cap *= 2;
	cap = cap < max ? cap : max;
	if (!(p = malloc(cap)))
		return -ENOMEM;
	/* Copied out in order, so the new ring starts at 0. */
	for (size_t i = 0; i < st->count; i++)
		p[i] = st->buf[(st->head + i) % st->cap];
	free(st->buf);
	st->buf = p;
	st->cap = cap;
	st->head = 0;
	return 0;
}

/* Appends n bytes the caller has checked fit within max_queue. */
static int queue_put(struct ks_http_stream *st, const char *src, size_t n)
{
	size_t tail, first;

	if (st->cap - st->count < n && queue_grow(st, st->count + n) < 0)
		return -ENOMEM;
	tail = (st->head + st->count) % st->cap;
	first = n < st->cap - tail ? n : st->cap - tail;
	memcpy(st->buf + tail, src, first);
	memcpy(st->buf, src + first, n - first);
	st->count += n;
	st->last_queued = ks_loop_now_ns();
	return 0;
}

static size_t queue_take(struct ks_http_stream *st, char *dst, size_t max)
{
	size_t n = st->count < max ? st->count : max;
	size_t first = n < st->cap - st->head ? n : st->cap - st->head;

	memcpy(dst, st->buf + st->head, first);
	memcpy(dst + first, st->buf, n - first);
	st->head = (st->head + n) % st->cap;
	st->count -= n;
	return n;
}

/* ---- event streams: suspension ---- */

static void unwatch(struct ks_http_stream *st)
{
	if (st->watching)
		ks_loop_del_fd(st->h->loop, st->fd);
	st->watching = false;
}

/* Resumes a suspended stream so that libmicrohttpd asks for its queue (or sees it end). */
static void wake(struct ks_http_stream *st)
{
	if (!st->suspended)
		return;
	unwatch(st);
	st->suspended = false;
	MHD_resume_connection(st->conn);
	ks_http_kick(st->h);
}

/*
 * libmicrohttpd does not look at a suspended connection, so a client that goes away
 * would stay unnoticed until the next event: its socket is watched here meanwhile.
 */
static void on_idle_socket(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_http_stream *st = data;
	char c;
	ssize_t n;

	(void)l;
	if (!(events & (KS_LOOP_HUP | KS_LOOP_ERR))) {
		n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n > 0) {
			/* Bytes the client sent: libmicrohttpd reads them once resumed. */
			unwatch(st);
			return;
		}
	}
	st->peer_gone = true;
	wake(st);
}

static void suspend(struct ks_http_stream *st)
{
	const union MHD_ConnectionInfo *ci;

	MHD_suspend_connection(st->conn);
	st->suspended = true;
	ci = MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	st->fd = ci->connect_fd;
	st->watching = ks_loop_add_fd(st->h->loop, st->fd, KS_LOOP_IN, on_idle_socket, st) == 0;
}

/* ---- event streams: events ---- */

/* The "dropped" notice, owed since a drop, goes out once the queue is below half. */
static void pay_notice(struct ks_http_stream *st)
{
	char msg[64];
	int n;

	if (!st->notice_owed || st->count >= st->h->max_queue / 2)
		return;
	n = snprintf(msg, sizeof(msg), "event: dropped\ndata: {\"dropped\":%llu}\n\n",
		     (unsigned long long)st->dropped);
	if (queue_put(st, msg, (size_t)n) == 0) {
		st->notice_owed = false;
		wake(st);
	}
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct ks_http_stream *st = cls;
	size_t n;

	(void)pos;
	if (st->peer_gone)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (!st->count) {
		if (!st->open)
			return MHD_CONTENT_READER_END_OF_STREAM;
		/* Nothing to send: wait off the loop until an event is queued. */
		suspend(st);
		return 0;
	}
	n = queue_take(st, buf, max);
	pay_notice(st);
	return (ssize_t)n;
}

static void stream_free(struct ks_http_stream *st)
{
	free(st->buf);
	free(st);
}

/* Runs the close callback once; the memory goes when libmicrohttpd is done with it too. */
static void end_stream(struct ks_http_stream *st)
{
	struct ks_http *h = st->h;

	if (!st->open)
		return;
	st->open = false;
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	h->nstreams--;
	if (st->ka_timer)
		ks_loop_del_timer(h->loop, st->ka_timer);
	st->ka_timer = 0;
	if (st->co_timer)
		ks_loop_del_timer(h->loop, st->co_timer);
	st->co_timer = 0;
	if (st->cb)
		st->cb(st, st->data);
	if (st->released) {
		stream_free(st);
	} else {
		h->nclosing++;
		wake(st);  /* the reader ends the response once the queue is sent */
	}
}

/* libmicrohttpd's free callback of the response: the client is gone or the answer done. */
static void stream_released(void *cls)
{
	struct ks_http_stream *st = cls;

	st->released = true;
	st->conn = NULL;
	unwatch(st);
	if (st->open) {
		end_stream(st);
	} else {
		st->h->nclosing--;
		stream_free(st);
	}
}

static void on_coalesced(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_http_stream *st = data;

	(void)l, (void)id;
	st->co_timer = 0;
	wake(st);
}

/* Wakes st once the coalescing delay is over; at once if no timer can be had. */
static void wake_soon(struct ks_http_stream *st)
{
	int64_t id;

	if (!st->suspended || st->co_timer)
		return;
	id = ks_loop_add_timer(st->h->loop, st->h->coalesce_ns, 0, on_coalesced, st);
	if (id > 0)
		st->co_timer = id;
	else
		wake(st);
}

static void on_keepalive(struct ks_loop *l, int64_t id, void *data)
{
	static const char ka[] = ": keep-alive\n\n";
	struct ks_http_stream *st = data;
	uint64_t now = ks_loop_now_ns(), quiet = now - st->last_queued, left;

	(void)id;
	st->ka_timer = 0;
	if (quiet >= st->h->keepalive_ns) {
		/* A full queue is not silence: the client is just behind. */
		if (!st->count && queue_put(st, ka, sizeof(ka) - 1) == 0)
			wake(st);
		st->last_queued = now;
		quiet = 0;
	}
	left = st->h->keepalive_ns - quiet;
	id = ks_loop_add_timer(l, left, 0, on_keepalive, st);
	st->ka_timer = id > 0 ? id : 0;
}

struct ks_http_stream *ks_http_stream_open(struct ks_http_req *rq, ks_http_stream_close_cb cb,
					   void *data)
{
	struct ks_http *h = rq->h;
	struct ks_http_stream *st;
	struct MHD_Response *resp = NULL;
	int64_t id;

	if (rq->answered)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (st)
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read,
							 st, stream_released);
	if (!resp) {
		free(st);
		ks_http_reply_error(rq, 500, "out of memory");
		return NULL;
	}
	*st = (struct ks_http_stream){ .h = h, .conn = rq->conn, .cb = cb, .data = data,
				       .fd = -1, .last_queued = ks_loop_now_ns() };
	/* On failure the response is destroyed, and its free callback frees st. */
	if (ks_http_queue_answer(rq, 200, "text/event-stream", resp) < 0) {
		ks_http_reply_error(rq, 500, "out of memory");
		return NULL;
	}
	st->open = true;
	st->next = h->streams;
	if (h->streams)
		h->streams->prev = st;
	h->streams = st;
	h->nstreams++;
	id = ks_loop_add_timer(h->loop, h->keepalive_ns, 0, on_keepalive, st);
	st->ka_timer = id > 0 ? id : 0;
	return st;
}

int ks_http_stream_send(struct ks_http_stream *st, const char *event, json_t *data)
{
	char *json = NULL, *msg = NULL;
	int n, r = -ENOMEM;

	if (!st->open || st->peer_gone) {
		json_decref(data);
		return -EPIPE;
	}
	if (!event || !*event || strpbrk(event, "\r\n")) {
		json_decref(data);
		return -EINVAL;
	}
	if (data)
		json = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(data);
	if (!json)
		return -ENOMEM;
	n = asprintf(&msg, "event: %s\ndata: %s\n\n", event, json);
	free(json);
	if (n < 0)
		return -ENOMEM;
	pay_notice(st);
	/* Owing a notice, nothing else goes first: the page sees the gap where it was. */
	if (st->notice_owed || (size_t)n > st->h->max_queue - st->count) {
		st->dropped++;
		st->notice_owed = true;
		r = -ENOBUFS;
	} else if (queue_put(st, msg, (size_t)n) == 0) {
		wake_soon(st);
		r = 0;
	}
	free(msg);
	return r;
}

uint64_t ks_http_stream_dropped(const struct ks_http_stream *st)
{
	return st->dropped;
}

size_t ks_http_stream_queued(const struct ks_http_stream *st)
{
	return st->count;
}

void ks_http_stream_close(struct ks_http_stream *st)
{
	if (st)
		end_stream(st);
}

size_t ks_http_streams(const struct ks_http *h)
{
	return h->nstreams;
}

size_t ks_http_streams_closing(const struct ks_http *h)
{
	return h->nclosing;
}

void ks_http_streams_close(struct ks_http *h)
{
	while (h->streams)
		end_stream(h->streams);
}
