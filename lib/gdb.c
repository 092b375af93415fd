/* gdb.c: QEMU gdbstub client: connection, byte stream, requests, stop replies. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <kscope/gdb.h>
#include <kscope/unixsock.h>

#include "gdb_internal.h"

#define READ_CHUNK 65536
#define MAX_NACKS 3               /* resends of one packet before giving up */
#define MIN_RECV_LIMIT 4096u      /* a stub may send more than its PacketSize: see recv_limit */
#define FREE_DETACH_NS 1000000000ll

/* ---- debug output and disconnection ---- */

static void debug_raw(struct ks_gdb *g, const char *dir, const char *s, size_t len)
{
	if (!g->debug)
		return;
	fprintf(g->debug, "gdb %s ", dir);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			fprintf(g->debug, "\\x%02x", c);
		else
			fputc(c, g->debug);
	}
	fputc('\n', g->debug);
	fflush(g->debug);
}

void ks_gdb_remark(struct ks_gdb *g, const char *fmt, ...)
{
	va_list ap;

	if (!g->debug)
		return;
	fputs("gdb -- ", g->debug);
	va_start(ap, fmt);
	vfprintf(g->debug, fmt, ap);
	va_end(ap);
	fputc('\n', g->debug);
	fflush(g->debug);
}

__attribute__((format(printf, 3, 4)))
static void disconnect(struct ks_gdb *g, int code, const char *fmt, ...)
{
	va_list ap;

	if (!g->connected)
		return;
	g->connected = false;
	g->reason.code = code;
	va_start(ap, fmt);
	vsnprintf(g->reason.msg, sizeof(g->reason.msg), fmt, ap);
	va_end(ap);
	ks_gdb_remark(g, "%s", g->reason.msg);
	ks_loop_del_fd(g->loop, g->fd);
	close(g->fd);
	g->fd = -1;
}

/* A message of ours without its "gdb: ", to quote inside another. */
static const char *unprefixed(const char *msg)
{
	return strncmp(msg, "gdb: ", 5) ? msg : msg + 5;
}

/* ---- output ---- */

static ssize_t send_some(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	return n < 0 && errno == ENOTSOCK ? write(fd, buf, len) : n;
}

static void flush_output(struct ks_gdb *g)
{
	while (g->connected && g->wlen) {
		ssize_t n = send_some(g->fd, g->wbuf, g->wlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			disconnect(g, -ECONNRESET, "gdb: write: %s", strerror(errno));
			return;
		}
		memmove(g->wbuf, g->wbuf + n, g->wlen - (size_t)n);
		g->wlen -= (size_t)n;
	}
	/* Only when it changes: a packet usually leaves in one send, with no loop round. */
	if (g->connected && g->out_armed != (g->wlen > 0)) {
		g->out_armed = g->wlen > 0;
		ks_loop_mod_fd(g->loop, g->fd, g->out_armed ? KS_LOOP_IN | KS_LOOP_OUT : KS_LOOP_IN);
	}
}

/* Queues raw bytes and writes what the socket takes now; failures surface from the loop. */
int ks_gdb_send_raw(struct ks_gdb *g, const char *s, size_t len)
{
	if (!g->connected)
		return -ENOTCONN;
	if (g->wcap - g->wlen < len) {
		size_t cap = g->wlen + len + 4096;
		char *b = realloc(g->wbuf, cap);

		if (!b)
			return -ENOMEM;
		g->wbuf = b;
		g->wcap = cap;
	}
	debug_raw(g, "->", s, len);
	memcpy(g->wbuf + g->wlen, s, len);
	g->wlen += len;
	flush_output(g);
	return 0;
}

int ks_gdb_send_packet(struct ks_gdb *g, const char *data, size_t len)
{
	size_t n = ks_gdb_frame(data, len, NULL, 0);
	char *f = malloc(n);
	int r;

	if (!f)
		return -ENOMEM;
	ks_gdb_frame(data, len, f, n);
	r = ks_gdb_send_raw(g, f, n);
	/* Kept for a "-" from the stub, which asks for it again. */
	free(g->last);
	g->last = f;
	g->last_len = n;
	g->nacks = 0;
	return r;
}

/* ---- input ---- */

/* The vCPU a thread id names, or -1. */
static int vcpu_of(const struct ks_gdb *g, const struct ks_gdb_tid *t)
{
	for (size_t i = 0; i < g->nthreads; i++)
		if (g->threads[i].tid == t->tid && (!t->pid || !g->threads[i].pid ||
						    g->threads[i].pid == t->pid))
			return (int)i;
	return -1;
}

/* Handles a stop reply or console output in p; query: it answers our "?". */
static void take_stop(struct ks_gdb *g, const struct ks_gdb_packet *p, bool query)
{
	char show[KS_GDB_SHOW], *output = NULL;
	struct ks_gdb_stop st;
	struct ks_gdb_tid tid;

	ks_gdb_excerpt(p->data, p->len, show, sizeof(show));
	if (ks_gdb_parse_stop(p->data, p->len, &st, &tid) < 0) {
		disconnect(g, -EPROTO, "gdb: malformed stop reply: %s", show);
		return;
	}
	st.recv_ns = ks_loop_now_ns();
	st.vcpu = tid.tid ? vcpu_of(g, &tid) : -1;
	if (st.kind != KS_GDB_STOP_OUTPUT) {
		g->state = st.kind == KS_GDB_STOP_SIGNAL ? KS_GDB_STOPPED : KS_GDB_EXITED;
		g->last_stop = st;
		/* QEMU makes the stopping vCPU the one "g" and "m" refer to. */
		if (!query)
			g->selected = st.vcpu;
	}
	if (query || !g->stop_cb)
		return;
	/* Its own copy: a request made by the callback reuses the input buffer. */
	if (st.kind == KS_GDB_STOP_OUTPUT && !(st.output = output = strdup(st.output)))
		return;
	g->stop_cb(g, &st, g->stop_data);
	free(output);
}

/* Takes the packet in g->in as the reply of the oldest request sent ahead that has none;
 * false when it is not one (a stop no request asked for, say). */
static bool take_ahead(struct ks_gdb *g, bool stop)
{
	struct ks_gdb_ahead *a = &g->ahead[g->ahead_got];
	struct ks_gdb_packet t;

	if (g->ahead_got >= g->nahead || g->stale || g->unanswered)
		return false;
	if (stop && (g->in.data[0] == 'O' || !a->wants_stop))
		return false;
	t = a->reply;
	a->reply = g->in;
	g->in = t;
	g->ahead_got++;
	return true;
}

static void ahead_clear(struct ks_gdb *g)
{
	for (size_t i = 0; i < g->nahead; i++) {
		free(g->ahead[i].data);
		ks_gdb_packet_clear(&g->ahead[i].reply);
	}
	memset(g->ahead, 0, sizeof(g->ahead));
	g->nahead = g->ahead_got = g->ahead_used = 0;
}

int ks_gdb_send_ahead(struct ks_gdb *g, const char *const *cmds, const bool *wants_stop,
		      size_t n)
{
	int r = 0;

	if (!g->connected)
		return -ENOTCONN;
	if (g->nahead || g->req_pending || g->stale || g->unanswered || n > KS_GDB_MAX_AHEAD ||
	    g->state == KS_GDB_RUNNING)
		return -EBUSY;
	for (size_t i = 0; i < n; i++) {
		g->ahead[i].len = strlen(cmds[i]);
		g->ahead[i].wants_stop = wants_stop[i];
		if (!(g->ahead[i].data = strdup(cmds[i]))) {
			g->nahead = i + 1;
			ahead_clear(g);
			return -ENOMEM;
		}
	}
	/* Recorded before the first byte leaves: a reply can come while the rest is written. */
	g->nahead = n;
	for (size_t i = 0; i < n && r == 0; i++)
		r = ks_gdb_send_packet(g, g->ahead[i].data, g->ahead[i].len);
	return r;
}

static void handle_packet(struct ks_gdb *g)
{
	bool stop = ks_gdb_is_stop(g->in.data, g->in.len);
	char show[KS_GDB_SHOW];
	struct ks_gdb_packet t;

	/* The reply to a write sent without waiting comes once the VM may run again, and any
	 * byte sent to a running VM stops it: QEMU's system-mode stub never waits for the ack,
	 * and our next packet's '$' ends its wait for one anyway. */
	if (g->acks && (stop || g->stale || !g->unanswered))
		ks_gdb_send_raw(g, "+", 1);
	if (g->nahead && take_ahead(g, stop))
		return;
	if (stop && g->in.data[0] != 'O' && g->req_pending && !g->req_done && g->req_wants_stop) {
		take_stop(g, &g->in, true);
	} else if (stop) {
		take_stop(g, &g->in, false);
		return;
	} else if (g->stale) {
		g->stale--;
		ks_gdb_remark(g, "dropped the late reply to a request that timed out");
		return;
	} else if (g->unanswered) {
		g->unanswered--;
		if (g->in.len != 2 || memcmp(g->in.data, "OK", 2)) {
			g->lost_writes++;
			ks_gdb_remark(g, "the stub refused a write sent without waiting: %s",
				      ks_gdb_excerpt(g->in.data, g->in.len, show, sizeof(show)));
		}
		return;
	} else if (!g->req_pending || g->req_done) {
		ks_gdb_remark(g, "dropped a packet nothing asked for: %s",
			      ks_gdb_excerpt(g->in.data, g->in.len, show, sizeof(show)));
		return;
	}
	/* The reply takes the buffer: no copy of a 4 KiB memory read. */
	t = g->reply;
	g->reply = g->in;
	g->in = t;
	g->req_done = true;
}

/* What a stub may send at once: twice its PacketSize, and never less than 4 KiB. */
static size_t recv_limit(const struct ks_gdb *g)
{
	return 2 * g->packet_size > MIN_RECV_LIMIT ? 2 * g->packet_size : MIN_RECV_LIMIT;
}

/* Handles every whole unit received. Units are consumed first: callbacks may re-enter. */
static void process_input(struct ks_gdb *g)
{
	while (g->connected && g->rpos < g->rlen) {
		struct ks_error e;
		size_t used;
		int r = ks_gdb_parse(g->rbuf + g->rpos, g->rlen - g->rpos, recv_limit(g), &used,
				     &g->in, &e);

		if (r == 0)
			return;
		debug_raw(g, "<-", g->rbuf + g->rpos, used);
		g->rpos += used;
		if (r == -EBADMSG && g->acks) {
			ks_gdb_send_raw(g, "-", 1);
			continue;
		}
		if (r < 0) {
			disconnect(g, r, "%s", e.msg);
			return;
		}
		if (g->in.kind == KS_GDB_PKT_DATA) {
			handle_packet(g);
		} else if (g->in.kind == KS_GDB_PKT_NACK && g->last) {
			if (++g->nacks > MAX_NACKS)
				disconnect(g, -EPROTO, "gdb: the stub refused a packet %d times",
					   MAX_NACKS + 1);
			else
				ks_gdb_send_raw(g, g->last, g->last_len);
		} else if (g->in.kind == KS_GDB_PKT_NOTIFY) {
			ks_gdb_remark(g, "ignored a notification");
		}
	}
}

static int reserve_read(struct ks_gdb *g)
{
	if (g->rpos) {
		memmove(g->rbuf, g->rbuf + g->rpos, g->rlen - g->rpos);
		g->rlen -= g->rpos;
		g->rpos = 0;
	}
	if (g->rcap - g->rlen < READ_CHUNK) {
		size_t cap = g->rcap ? g->rcap * 2 : 2 * READ_CHUNK;
		char *b;

		while (cap - g->rlen < READ_CHUNK)
			cap *= 2;
		b = realloc(g->rbuf, cap);
		if (!b)
			return -ENOMEM;
		g->rbuf = b;
		g->rcap = cap;
	}
	return 0;
}

static void read_input(struct ks_gdb *g)
{
	/* Bounded, so that a flooding peer cannot starve the rest of the loop. */
	for (int i = 0; i < 64 && g->connected; i++) {
		size_t room;
		ssize_t n;

		if (reserve_read(g) < 0) {
			disconnect(g, -ENOMEM, "gdb: out of memory for input");
			return;
		}
		room = g->rcap - g->rlen;
		n = read(g->fd, g->rbuf + g->rlen, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			disconnect(g, -ECONNRESET, "gdb: read: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			if (g->rlen > g->rpos)
				disconnect(g, -ECONNRESET, "gdb: connection closed by the stub in "
					   "the middle of a packet (%zu bytes of it)", g->rlen - g->rpos);
			disconnect(g, -ECONNRESET, "gdb: connection closed by the stub");
			return;
		}
		g->rlen += (size_t)n;
		process_input(g);
		/* A short read emptied the socket: no need for a read that says EAGAIN. */
		if ((size_t)n < room)
			return;
	}
}

static void on_io(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_gdb *g = data;

	(void)l, (void)fd;
	if (events & KS_LOOP_OUT)
		flush_output(g);
	if (events & (KS_LOOP_IN | KS_LOOP_HUP | KS_LOOP_ERR))
		read_input(g);
}

/* ---- waiting and requests ---- */

/* What is left of timeout_ns since start: -1 for no limit, else at least 0. */
int64_t ks_gdb_remaining(uint64_t start, int64_t timeout_ns)
{
	int64_t spent = (int64_t)(ks_loop_now_ns() - start);

	if (timeout_ns < 0)
		return -1;
	return spent < timeout_ns ? timeout_ns - spent : 0;
}

typedef bool (*ready_fn)(struct ks_gdb *g);

/* Runs the loop until ready(), the deadline, or (if not ready) the end of the connection. */
static int wait_for(struct ks_gdb *g, ready_fn ready, int64_t timeout_ns)
{
	uint64_t start = ks_loop_now_ns();

	/* At least one round, so that a zero timeout still picks up what has arrived. */
	for (bool first = true;; first = false) {
		int64_t left;
		int r;

		process_input(g);
		if (ready(g))
			return 0;
		if (!g->connected)
			return -ENOTCONN;
		left = ks_gdb_remaining(start, timeout_ns);
		if (left == 0 && !first)
			return -ETIMEDOUT;
		r = ks_loop_run_once(g->loop, left);
		if (r < 0)
			return r;
	}
}

static bool req_done(struct ks_gdb *g)
{
	return g->req_done;
}

static bool not_running(struct ks_gdb *g)
{
	return g->state != KS_GDB_RUNNING;
}

int ks_gdb_not_connected(struct ks_gdb *g, const char *what, struct ks_error *err)
{
	return ks_error_set(err, -ENOTCONN, "gdb: %s: not connected (%s)", what,
			    unprefixed(g->reason.msg));
}

static bool ahead_came(struct ks_gdb *g)
{
	return g->ahead_got >= g->ahead_need;
}

/* The first request sent ahead, from the next one to take on, that is data; or nahead. */
static size_t ahead_find(const struct ks_gdb *g, const char *data, size_t len, bool wants_stop)
{
	size_t i = g->ahead_used;

	while (i < g->nahead && (g->ahead[i].len != len || memcmp(g->ahead[i].data, data, len) ||
				 g->ahead[i].wants_stop != wants_stop))
		i++;
	return i;
}

/*
 * The request data (len bytes) when requests were sent ahead: 1 with the reply in g->reply
 * when it is one of them (the replies of those sent before it are dropped: a guess of more
 * than was needed), else 0 once every reply still due came and was dropped (the caller sends
 * it then). Replies that do not come in time: -errno, err filled.
 */
static int use_ahead(struct ks_gdb *g, const char *data, size_t len, bool wants_stop,
		     const char *what, struct ks_error *err)
{
	size_t at = ahead_find(g, data, len, wants_stop);
	struct ks_gdb_packet t;
	int r;

	g->ahead_need = at < g->nahead ? at + 1 : g->nahead;
	if ((r = wait_for(g, ahead_came, g->timeout_ns)) < 0) {
		/* Late replies are dropped as those of any request that timed out. */
		g->stale += (unsigned)(g->nahead - g->ahead_got);
		ahead_clear(g);
		if (r == -ENOTCONN)
			return ks_error_set(err, g->reason.code, "gdb: %s: %s", what,
					    unprefixed(g->reason.msg));
		return ks_error_set(err, r, "gdb: %s: %s", what, r == -ETIMEDOUT ?
				    "no reply in time" : strerror(-r));
	}
	if (at == g->nahead) {
		ks_gdb_remark(g, "dropped %zu replies sent ahead", g->nahead - g->ahead_used);
		ahead_clear(g);
		return 0;
	}
	if (at > g->ahead_used)
		ks_gdb_remark(g, "dropped %zu replies sent ahead", at - g->ahead_used);
	/* Taken now, not when it came: the thread list it names a vCPU from is known now. */
	if (wants_stop && ks_gdb_is_stop(g->ahead[at].reply.data, g->ahead[at].reply.len))
		take_stop(g, &g->ahead[at].reply, true);
	t = g->reply;
	g->reply = g->ahead[at].reply;
	g->ahead[at].reply = t;
	if ((g->ahead_used = at + 1) == g->nahead)
		ahead_clear(g);
	return 1;
}

/* One request and its reply, whatever the run state (interrupt and step need that). */
int ks_gdb_exchange(struct ks_gdb *g, const char *data, size_t len, bool wants_stop,
		    struct ks_error *err)
{
	char what[KS_GDB_SHOW];
	int r;

	ks_gdb_excerpt(data, len, what, sizeof(what));
	if (!g->connected)
		return ks_gdb_not_connected(g, what, err);
	if (g->req_pending)
		return ks_error_set(err, -EBUSY, "gdb: %s: another request is in flight", what);
	if (g->nahead && (r = use_ahead(g, data, len, wants_stop, what, err)) != 0)
		return r < 0 ? r : 0;
	if (len >= g->packet_size)
		return ks_error_set(err, -EMSGSIZE, "gdb: %s: %zu bytes exceed the stub's "
				    "packet size (%zu)", what, len, g->packet_size);
	r = ks_gdb_send_packet(g, data, len);
	if (r < 0)
		return ks_error_set(err, r, "gdb: %s: %s", what, strerror(-r));
	g->req_pending = true;
	g->req_done = false;
	g->req_wants_stop = wants_stop;
	r = wait_for(g, req_done, g->timeout_ns);
	g->req_pending = false;
	if (r == -ETIMEDOUT && !wants_stop)
		g->stale++;
	if (r == -ENOTCONN)
		return ks_error_set(err, g->reason.code, "gdb: %s: %s", what,
				    unprefixed(g->reason.msg));
	if (r < 0)
		return ks_error_set(err, r, "gdb: %s: %s", what,
				    r == -ETIMEDOUT ? "no reply in time" : strerror(-r));
	return 0;
}

int ks_gdb_request(struct ks_gdb *g, const char *data, size_t len,
		   const struct ks_gdb_packet **reply, struct ks_error *err)
{
	char what[KS_GDB_SHOW];
	int r;

	/* In all-stop mode QEMU takes any byte sent while the VM runs as an interrupt. */
	if (g->connected && g->state == KS_GDB_RUNNING)
		return ks_error_set(err, -EBUSY, "gdb: %s: the target is running",
				    ks_gdb_excerpt(data, len, what, sizeof(what)));
	r = ks_gdb_exchange(g, data, len, false, err);
	if (r == 0)
		*reply = &g->reply;
	return r;
}

int ks_gdb_request_ok(struct ks_gdb *g, const char *data, size_t len, struct ks_error *err)
{
	const struct ks_gdb_packet *rep;
	char what[KS_GDB_SHOW], show[KS_GDB_SHOW];
	int r = ks_gdb_request(g, data, len, &rep, err);

	if (r < 0)
		return r;
	if (rep->len == 2 && !memcmp(rep->data, "OK", 2))
		return 0;
	ks_gdb_excerpt(data, len, what, sizeof(what));
	if (rep->len == 0)
		return ks_error_set(err, -EOPNOTSUPP, "gdb: %s: not supported by the stub", what);
	if (ks_gdb_error_reply(rep->data, rep->len) >= 0)
		return ks_error_set(err, -EIO, "gdb: %s: the stub refused: %s", what, rep->data);
	return ks_error_set(err, -EPROTO, "gdb: %s: unexpected reply %s", what,
			    ks_gdb_excerpt(rep->data, rep->len, show, sizeof(show)));
}

static int handshake(struct ks_gdb *g, int fd, int64_t timeout_ns, struct ks_error *err)
{
	uint64_t start = ks_loop_now_ns();
	int fl = fcntl(fd, F_GETFL), r;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return ks_error_set(err, r, "gdb: fcntl: %s", strerror(-r));
	}
	r = ks_loop_add_fd(g->loop, fd, KS_LOOP_IN, on_io, g);
	if (r < 0) {
		close(fd);
		return ks_error_set(err, r, "gdb: cannot watch the socket: %s", strerror(-r));
	}
	g->fd = fd;
	g->connected = true;
	r = ks_gdb_negotiate(g, start, timeout_ns, err);
	g->ready = r == 0;
	return r;
}

/* ---- creating and freeing ---- */

static struct ks_gdb *client_new(struct ks_loop *loop, struct ks_error *err)
{
	struct ks_gdb *g = calloc(1, sizeof(*g));
	const char *dbg = getenv("KSCOPE_GDB_DEBUG");

	if (!g) {
		ks_error_set(err, -ENOMEM, "gdb: out of memory");
		return NULL;
	}
	g->fd = -1;
	g->acks = true;
	g->selected = -1;
	g->timeout_ns = KS_GDB_DEFAULT_TIMEOUT_NS;
	g->packet_size = KS_GDB_DEFAULT_PACKET_SIZE;
	g->last_stop.vcpu = -1;
	g->debug = dbg && *dbg && strcmp(dbg, "0") ? stderr : NULL;
	g->loop = loop;
	if (!loop) {
		g->loop = ks_loop_new(err);
		g->own_loop = true;
	}
	if (!g->loop) {
		free(g);
		return NULL;
	}
	ks_error_set(&g->reason, -ENOTCONN, "gdb: not connected");
	return g;
}

struct ks_gdb *ks_gdb_attach(struct ks_loop *loop, int fd, int64_t timeout_ns,
			     struct ks_error *err)
{
	struct ks_gdb *g = client_new(loop, err);

	if (!g) {
		close(fd);
		return NULL;
	}
	if (handshake(g, fd, timeout_ns, err) < 0) {
		ks_gdb_free(g);
		return NULL;
	}
	return g;
}

struct ks_gdb *ks_gdb_connect(struct ks_loop *loop, const char *path, int64_t timeout_ns,
			      struct ks_error *err)
{
	struct ks_gdb *g = client_new(loop, err);
	uint64_t start = ks_loop_now_ns();
	int fd;

	if (!g)
		return NULL;
	fd = ks_unix_connect(g->loop, path, timeout_ns, "gdb", err);
	if (fd < 0)
		goto fail;
	if (handshake(g, fd, ks_gdb_remaining(start, timeout_ns), err) < 0)
		goto fail;
	return g;
fail:
	ks_gdb_free(g);
	return NULL;
}

int ks_gdb_detach(struct ks_gdb *g, struct ks_error *err)
{
	int r;

	if (!g->connected)
		return ks_gdb_not_connected(g, "D", err);
	/* Bytes sent to a running VM only stop it: stop it properly first. */
	if (g->state == KS_GDB_RUNNING) {
		r = ks_gdb_interrupt(g, NULL, err);
		if (r < 0)
			return r;
	}
	r = ks_gdb_request_ok(g, g->multiprocess ? "D;1" : "D", g->multiprocess ? 3 : 1, err);
	disconnect(g, -ENOTCONN, "gdb: detached");
	return r;
}

void ks_gdb_free(struct ks_gdb *g)
{
	if (!g)
		return;
	if (g->connected && g->ready && !g->req_pending) {
		/* Left behind, breakpoints would stop a guest that nobody watches. */
		if (g->timeout_ns < 0 || g->timeout_ns > FREE_DETACH_NS)
			g->timeout_ns = FREE_DETACH_NS;
		ks_gdb_detach(g, NULL);
	}
	disconnect(g, -ENOTCONN, "gdb: client closed");
	ahead_clear(g);
	ks_gdb_packet_clear(&g->in);
	ks_gdb_packet_clear(&g->reply);
	free(g->threads);
	free(g->arch);
	free(g->last);
	free(g->rbuf);
	free(g->wbuf);
	if (g->own_loop)
		ks_loop_free(g->loop);
	free(g);
}

/* ---- accessors ---- */

bool ks_gdb_connected(const struct ks_gdb *g)
{
	return g->connected;
}

const struct ks_error *ks_gdb_disconnect_reason(const struct ks_gdb *g)
{
	return g->connected ? NULL : &g->reason;
}

struct ks_loop *ks_gdb_loop(const struct ks_gdb *g)
{
	return g->loop;
}

void ks_gdb_set_debug(struct ks_gdb *g, FILE *f)
{
	g->debug = f;
}

void ks_gdb_set_timeout(struct ks_gdb *g, int64_t timeout_ns)
{
	g->timeout_ns = timeout_ns;
}

size_t ks_gdb_packet_size(const struct ks_gdb *g)
{
	return g->packet_size;
}

size_t ks_gdb_max_read(const struct ks_gdb *g)
{
	/* The reply is hex, two digits a byte, and must fit the stub's packet. */
	return g->packet_size / 2;
}

const char *ks_gdb_arch(const struct ks_gdb *g)
{
	return g->arch;
}

bool ks_gdb_acks(const struct ks_gdb *g)
{
	return g->acks;
}

unsigned ks_gdb_vcpu_count(const struct ks_gdb *g)
{
	return (unsigned)g->nthreads;
}

enum ks_gdb_run_state ks_gdb_state(const struct ks_gdb *g)
{
	return g->state;
}

const struct ks_gdb_stop *ks_gdb_last_stop(const struct ks_gdb *g)
{
	return &g->last_stop;
}

void ks_gdb_on_stop(struct ks_gdb *g, ks_gdb_stop_cb cb, void *data)
{
	g->stop_cb = cb;
	g->stop_data = data;
}

int ks_gdb_wait_stop(struct ks_gdb *g, struct ks_gdb_stop *stop, int64_t timeout_ns)
{
	int r = wait_for(g, not_running, timeout_ns);

	if (r == 0 && stop)
		*stop = g->last_stop;
	return r;
}

void ks_gdb_note_resumed(struct ks_gdb *g)
{
	if (g->state == KS_GDB_STOPPED)
		g->state = KS_GDB_RUNNING;
}

