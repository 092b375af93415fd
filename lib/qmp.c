/* qmp.c: QMP client: line framing, command ids and replies, events, HMP, on a ks_loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <kscope/qmp.h>
#include <kscope/unixsock.h>

#include "qmp_internal.h"

#define READ_CHUNK 65536

struct pending {
	int64_t id;
	char *cmd;
	ks_qmp_reply_cb cb;
	void *data;
	struct pending *next;
};

struct evnode {
	struct ks_qmp_event *ev;
	struct evnode *next;
};

struct ks_qmp {
	struct ks_loop *loop;
	bool own_loop;
	int fd;
	bool connected;
	struct ks_error reason;        /* why not connected */
	char *rbuf;                    /* received bytes: [rpos, rlen) not yet consumed */
	size_t rpos, rlen, rcap, scan; /* scan: no newline in [rpos, scan) */
	char *wbuf;
	size_t wlen, wcap;
	json_t *greeting;
	int64_t next_id;
	struct pending *pend, **pend_tail;
	struct evnode *evq, **evq_tail;
	ks_qmp_event_cb ev_cb;
	void *ev_data;
	FILE *debug;
};

/* ---- connection state ---- */

static void debug_line(struct ks_qmp *q, const char *dir, const char *s, size_t len)
{
	while (len && (s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	if (q->debug) {
		fprintf(q->debug, "qmp %s %.*s\n", dir, (int)len, s);
		fflush(q->debug);
	}
}

static struct pending *take_pending(struct ks_qmp *q, int64_t id, bool oldest)
{
	struct pending **pp = &q->pend, *p;

	while ((p = *pp) && !oldest && p->id != id)
		pp = &p->next;
	if (!p)
		return NULL;
	*pp = p->next;
	if (q->pend_tail == &p->next)
		q->pend_tail = pp;
	return p;
}

/* A message of ours without its "qmp: ", to quote inside another. */
static const char *unprefixed(const char *msg)
{
	return strncmp(msg, "qmp: ", 5) ? msg : msg + 5;
}

/* Fails every pending command with code; their callbacks may call back into q. */
static void fail_pending(struct ks_qmp *q, int code, const char *why)
{
	struct pending *p;
	struct ks_error e;

	while ((p = take_pending(q, 0, true))) {
		ks_error_set(&e, code, "qmp: %s: %s", p->cmd, unprefixed(why));
		p->cb(q, code, NULL, &e, p->data);
		free(p->cmd);
		free(p);
	}
}

__attribute__((format(printf, 3, 4)))
static void disconnect(struct ks_qmp *q, int code, const char *fmt, ...)
{
	va_list ap;

	if (!q->connected)
		return;
	q->connected = false;
	q->reason.code = code;
	va_start(ap, fmt);
	vsnprintf(q->reason.msg, sizeof(q->reason.msg), fmt, ap);
	va_end(ap);
	if (q->debug)
		fprintf(q->debug, "qmp -- %s\n", q->reason.msg);
	ks_loop_del_fd(q->loop, q->fd);
	close(q->fd);
	q->fd = -1;
	fail_pending(q, code, q->reason.msg);
}

/* ---- dispatching messages ---- */

static void complete(struct ks_qmp *q, struct ks_qmp_msg *m)
{
	/* QEMU answers a command it could not parse without an id: that is the oldest one. */
	struct pending *p = take_pending(q, json_integer_value(m->id), !m->id);
	struct ks_error e = {0};
	int status = 0;

	if (!p) {
		if (q->debug)
			fprintf(q->debug, "qmp -- dropped a reply to no pending command\n");
		return;
	}
	if (m->kind == KS_QMP_ERROR) {
		status = strcmp(m->err_class, "CommandNotFound") ? -EIO : -EOPNOTSUPP;
		ks_error_set(&e, status, "qmp: %s: %s: %s", p->cmd, m->err_class, m->err_desc);
	}
	p->cb(q, status, m->body, &e, p->data);
	free(p->cmd);
	free(p);
}

static void queue_event(struct ks_qmp *q, struct ks_qmp_event *ev)
{
	struct evnode *n = malloc(sizeof(*n));

	if (!n) {
		ks_qmp_event_free(ev);
		return;
	}
	n->ev = ev;
	n->next = NULL;
	*q->evq_tail = n;
	q->evq_tail = &n->next;
}

static void deliver_event(struct ks_qmp *q, struct ks_qmp_msg *m)
{
	struct ks_qmp_event *ev = calloc(1, sizeof(*ev));

	if (!ev || !(ev->name = strdup(m->event))) {
		free(ev);
		return;
	}
	ev->data = json_is_object(m->body) ? json_incref(m->body) : json_object();
	ev->ts_us = m->ts_us;
	ev->recv_ns = ks_loop_now_ns();
	if (!q->ev_cb) {
		queue_event(q, ev);
		return;
	}
	q->ev_cb(q, ev, q->ev_data);
	ks_qmp_event_free(ev);
}

static void dispatch(struct ks_qmp *q, struct ks_qmp_msg *m)
{
	char show[KS_QMP_SHOW];

	if (!q->greeting && m->kind != KS_QMP_GREETING) {
		char *s = json_dumps(m->obj, JSON_COMPACT);

		disconnect(q, -EPROTO, "qmp: expected the QMP greeting, got %s",
			   s ? ks_qmp_excerpt(s, strlen(s), show, sizeof(show)) : "something else");
		free(s);
		return;
	}
	switch (m->kind) {
	case KS_QMP_GREETING:
		if (!q->greeting)
			q->greeting = json_incref(m->body);
		break;
	case KS_QMP_EVENT:
		deliver_event(q, m);
		break;
	case KS_QMP_RETURN:
	case KS_QMP_ERROR:
		complete(q, m);
		break;
	}
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/*
 * Handles every complete line in the buffer. Each line is consumed before it is
 * dispatched, so callbacks may run the loop and re-enter here.
 */
static void process_lines(struct ks_qmp *q)
{
	while (q->connected && q->rbuf) {
		char *start = q->rbuf + q->rpos, *nl;
		size_t len;
		struct ks_qmp_msg m;
		struct ks_error e;

		nl = q->scan < q->rlen ? memchr(q->rbuf + q->scan, '\n', q->rlen - q->scan) : NULL;
		len = nl ? (size_t)(nl - start) : q->rlen - q->rpos;
		if (len > KS_QMP_MAX_LINE) {
			disconnect(q, -EPROTO, "qmp: line longer than %u bytes", KS_QMP_MAX_LINE);
			return;
		}
		if (!nl) {
			q->scan = q->rlen;
			return;
		}
		q->rpos += len + 1;
		q->scan = q->rpos;
		if (blank(start, len))
			continue;
		debug_line(q, "<-", start, len);
		if (ks_qmp_parse_line(start, len, &m, &e) < 0) {
			disconnect(q, e.code, "%s", e.msg);
			return;
		}
		dispatch(q, &m);
		ks_qmp_msg_clear(&m);
	}
}

/* ---- I/O ---- */

static int reserve_read(struct ks_qmp *q)
{
	if (q->rpos) {
		memmove(q->rbuf, q->rbuf + q->rpos, q->rlen - q->rpos);
		q->rlen -= q->rpos;
		q->scan -= q->rpos;
		q->rpos = 0;
	}
	if (q->rcap - q->rlen < READ_CHUNK) {
		size_t cap = q->rcap ? q->rcap * 2 : 2 * READ_CHUNK;
		char *b;

		while (cap - q->rlen < READ_CHUNK)
			cap *= 2;
		b = realloc(q->rbuf, cap);
		if (!b)
			return -ENOMEM;
		q->rbuf = b;
		q->rcap = cap;
	}
	return 0;
}

static void read_input(struct ks_qmp *q)
{
	/* Bounded, so that a flooding peer cannot starve the rest of the loop. */
	for (int i = 0; i < 64 && q->connected; i++) {
		ssize_t n;

		if (reserve_read(q) < 0) {
			disconnect(q, -ENOMEM, "qmp: out of memory for input");
			return;
		}
		n = read(q->fd, q->rbuf + q->rlen, q->rcap - q->rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			disconnect(q, -ECONNRESET, "qmp: read: %s", strerror(errno));
			return;
		}
		if (n == 0 && q->rlen > q->rpos)
			disconnect(q, -ECONNRESET, "qmp: connection closed by peer in the middle "
				   "of a message (%zu bytes of an unfinished line)", q->rlen - q->rpos);
		if (n == 0) {
			disconnect(q, -ECONNRESET, "qmp: connection closed by peer");
			return;
		}
		q->rlen += (size_t)n;
		process_lines(q);
	}
}

static ssize_t send_some(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	return n < 0 && errno == ENOTSOCK ? write(fd, buf, len) : n;
}

static void flush_output(struct ks_qmp *q)
{
	while (q->connected && q->wlen) {
		ssize_t n = send_some(q->fd, q->wbuf, q->wlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			disconnect(q, -ECONNRESET, "qmp: write: %s", strerror(errno));
			return;
		}
		memmove(q->wbuf, q->wbuf + n, q->wlen - (size_t)n);
		q->wlen -= (size_t)n;
	}
	if (q->connected)
		ks_loop_mod_fd(q->loop, q->fd, KS_LOOP_IN);
}

static void on_io(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_qmp *q = data;

	(void)l, (void)fd;
	if (events & KS_LOOP_OUT)
		flush_output(q);
	if (events & (KS_LOOP_IN | KS_LOOP_HUP | KS_LOOP_ERR))
		read_input(q);
}

/* Queues a line for the loop to write, so that failures surface from the loop only. */
static int queue_line(struct ks_qmp *q, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len;
	int r = -ENOMEM;

	if (!s)
		return -ENOMEM;
	len = strlen(s);
	if (q->wcap - q->wlen < len + 1) {
		size_t cap = q->wlen + len + 1 + 4096;
		char *b = realloc(q->wbuf, cap);

		if (!b)
			goto out;
		q->wbuf = b;
		q->wcap = cap;
	}
	debug_line(q, "->", s, len);
	memcpy(q->wbuf + q->wlen, s, len);
	q->wbuf[q->wlen + len] = '\n';
	q->wlen += len + 1;
	/* Usually the socket takes the whole line at once: no loop round for the write. */
	if (q->wlen == len + 1) {
		ssize_t n = send_some(q->fd, q->wbuf, q->wlen);

		if (n > 0) {
			memmove(q->wbuf, q->wbuf + n, q->wlen - (size_t)n);
			q->wlen -= (size_t)n;
		}
	}
	r = q->wlen ? ks_loop_mod_fd(q->loop, q->fd, KS_LOOP_IN | KS_LOOP_OUT) : 0;
out:
	free(s);
	return r;
}

/* ---- waiting ---- */

/* What is left of timeout_ns since start: -1 for no limit, else at least 0. */
static int64_t remaining(uint64_t start, int64_t timeout_ns)
{
	int64_t spent = (int64_t)(ks_loop_now_ns() - start);

	if (timeout_ns < 0)
		return -1;
	return spent < timeout_ns ? timeout_ns - spent : 0;
}

typedef bool (*ready_fn)(struct ks_qmp *q, void *arg);

/* Runs the loop until ready(), the deadline, or (if not ready) the end of the connection. */
static int wait_for(struct ks_qmp *q, ready_fn ready, void *arg, int64_t timeout_ns)
{
	uint64_t start = ks_loop_now_ns();

	/* At least one round, so that a zero timeout still picks up what has arrived. */
	for (bool first = true;; first = false) {
		int64_t left;
		int r;

		process_lines(q);
		if (ready(q, arg))
			return 0;
		if (!q->connected)
			return -ENOTCONN;
		left = remaining(start, timeout_ns);
		if (left == 0 && !first)
			return -ETIMEDOUT;
		r = ks_loop_run_once(q->loop, left);
		if (r < 0)
			return r;
	}
}

static bool have_greeting(struct ks_qmp *q, void *arg)
{
	(void)arg;
	return q->greeting != NULL;
}

static bool flag_set(struct ks_qmp *q, void *arg)
{
	(void)q;
	return *(bool *)arg;
}

/* ---- creating and freeing ---- */

static struct ks_qmp *client_new(struct ks_loop *loop, struct ks_error *err)
{
	struct ks_qmp *q = calloc(1, sizeof(*q));
	const char *dbg = getenv("KSCOPE_QMP_DEBUG");

	if (!q) {
		ks_error_set(err, -ENOMEM, "qmp: out of memory");
		return NULL;
	}
	q->fd = -1;
	q->next_id = 1;
	q->pend_tail = &q->pend;
	q->evq_tail = &q->evq;
	q->debug = dbg && *dbg && strcmp(dbg, "0") ? stderr : NULL;
	q->loop = loop;
	if (!loop) {
		q->loop = ks_loop_new(err);
		q->own_loop = true;
	}
	if (!q->loop) {
		free(q);
		return NULL;
	}
	ks_error_set(&q->reason, -ENOTCONN, "qmp: not connected");
	return q;
}

/* Takes fd, reads the greeting and negotiates capabilities. */
static int handshake(struct ks_qmp *q, int fd, int64_t timeout_ns, struct ks_error *err)
{
	uint64_t start = ks_loop_now_ns();
	int fl = fcntl(fd, F_GETFL), r;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return ks_error_set(err, r, "qmp: fcntl: %s", strerror(-r));
	}
	r = ks_loop_add_fd(q->loop, fd, KS_LOOP_IN, on_io, q);
	if (r < 0) {
		close(fd);
		return ks_error_set(err, r, "qmp: cannot watch the socket: %s", strerror(-r));
	}
	q->fd = fd;
	q->connected = true;
	r = wait_for(q, have_greeting, NULL, timeout_ns);
	if (r == -ENOTCONN)
		return ks_error_set(err, q->reason.code, "%s (waiting for the greeting)",
				    q->reason.msg);
	if (r < 0)
		return ks_error_set(err, r, "qmp: no greeting: %s", strerror(-r));
	return ks_qmp_call(q, "qmp_capabilities", NULL, NULL, remaining(start, timeout_ns), err);
}

struct ks_qmp *ks_qmp_attach(struct ks_loop *loop, int fd, int64_t timeout_ns,
			     struct ks_error *err)
{
	struct ks_qmp *q = client_new(loop, err);

	if (!q) {
		close(fd);
		return NULL;
	}
	if (handshake(q, fd, timeout_ns, err) < 0) {
		ks_qmp_free(q);
		return NULL;
	}
	return q;
}

struct ks_qmp *ks_qmp_connect(struct ks_loop *loop, const char *path, int64_t timeout_ns,
			      struct ks_error *err)
{
	struct ks_qmp *q = client_new(loop, err);
	uint64_t start = ks_loop_now_ns();
	int fd;

	if (!q)
		return NULL;
	fd = ks_unix_connect(q->loop, path, timeout_ns, "qmp", err);
	if (fd < 0)
		goto fail;
	if (handshake(q, fd, remaining(start, timeout_ns), err) < 0)
		goto fail;
	return q;
fail:
	ks_qmp_free(q);
	return NULL;
}

void ks_qmp_free(struct ks_qmp *q)
{
	if (!q)
		return;
	disconnect(q, -ECONNRESET, "qmp: client closed");
	while (q->evq) {
		struct evnode *n = q->evq;

		q->evq = n->next;
		ks_qmp_event_free(n->ev);
		free(n);
	}
	json_decref(q->greeting);
	free(q->rbuf);
	free(q->wbuf);
	if (q->own_loop)
		ks_loop_free(q->loop);
	free(q);
}

/* ---- accessors ---- */

bool ks_qmp_connected(const struct ks_qmp *q)
{
	return q->connected;
}

const struct ks_error *ks_qmp_disconnect_reason(const struct ks_qmp *q)
{
	return q->connected ? NULL : &q->reason;
}

json_t *ks_qmp_greeting(const struct ks_qmp *q)
{
	return q->greeting;
}

struct ks_loop *ks_qmp_loop(const struct ks_qmp *q)
{
	return q->loop;
}

void ks_qmp_set_debug(struct ks_qmp *q, FILE *f)
{
	q->debug = f;
}

/* ---- commands ---- */

int64_t ks_qmp_call_async(struct ks_qmp *q, const char *cmd, json_t *args,
			  ks_qmp_reply_cb cb, void *data)
{
	struct pending *p = NULL;
	json_t *msg = NULL;
	int64_t r = -EINVAL;

	if (!cmd || !cb || (args && !json_is_object(args)))
		goto out;
	r = -ENOTCONN;
	if (!q->connected)
		goto out;
	r = -ENOMEM;
	p = calloc(1, sizeof(*p));
	msg = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)q->next_id);
	if (!p || !msg || !(p->cmd = strdup(cmd)))
		goto out;
	if (args && json_object_set(msg, "arguments", args) < 0)
		goto out;
	r = queue_line(q, msg);
	if (r < 0)
		goto out;
	p->id = q->next_id++;
	p->cb = cb;
	p->data = data;
	*q->pend_tail = p;
	q->pend_tail = &p->next;
	r = p->id;
	p = NULL;
out:
	if (p)
		free(p->cmd);
	free(p);
	json_decref(msg);
	json_decref(args);
	return r;
}

int ks_qmp_cancel(struct ks_qmp *q, int64_t id)
{
	struct pending *p = take_pending(q, id, false);

	if (!p)
		return -ENOENT;
	free(p->cmd);
	free(p);
	return 0;
}

struct sync_call {
	bool done;
	int status;
	json_t *reply;
	struct ks_error err;
};

static void on_sync_reply(struct ks_qmp *q, int status, json_t *reply,
			  const struct ks_error *err, void *data)
{
	struct sync_call *c = data;

	(void)q;
	c->done = true;
	c->status = status;
	c->reply = json_incref(reply);
	if (status < 0)
		c->err = *err;
}

int ks_qmp_call(struct ks_qmp *q, const char *cmd, json_t *args, json_t **reply,
		int64_t timeout_ns, struct ks_error *err)
{
	struct sync_call c = {0};
	int64_t id;
	int r;

	if (reply)
		*reply = NULL;
	id = ks_qmp_call_async(q, cmd, args, on_sync_reply, &c);
	if (id == -ENOTCONN)
		return ks_error_set(err, -ENOTCONN, "qmp: %s: not connected (%s)", cmd,
				    unprefixed(q->reason.msg));
	if (id < 0)
		return ks_error_set(err, (int)id, "qmp: %s: %s", cmd ? cmd : "(null)",
				    strerror((int)-id));
	r = wait_for(q, flag_set, &c.done, timeout_ns);
	if (r < 0) {
		ks_qmp_cancel(q, id);
		return ks_error_set(err, r, "qmp: %s: %s", cmd, r == -ETIMEDOUT ?
				    "no reply in time" : strerror(-r));
	}
	if (c.status < 0 && err)
		*err = c.err;
	if (reply && (c.status == 0 || c.status == -EIO || c.status == -EOPNOTSUPP))
		*reply = c.reply;
	else
		json_decref(c.reply);
	return c.status;
}

/* ---- HMP ---- */

/* Copies s with "\r\n" turned into "\n". */
static char *unix_lines(const char *s)
{
	char *out = malloc(strlen(s) + 1), *d = out;

	if (!out)
		return NULL;
	for (; *s; s++)
		if (!(s[0] == '\r' && s[1] == '\n'))
			*d++ = *s;
	*d = '\0';
	return out;
}

int ks_qmp_hmp(struct ks_qmp *q, const char *cmdline, char **output, int64_t timeout_ns,
	       struct ks_error *err)
{
	json_t *reply = NULL;
	char *text = NULL;
	int r;

	if (output)
		*output = NULL;
	if (!cmdline)
		return ks_error_set(err, -EINVAL, "qmp: hmp: no command line");
	r = ks_qmp_call(q, "human-monitor-command", json_pack("{s:s}", "command-line",
			cmdline), &reply, timeout_ns, err);
	if (r < 0)
		goto out;
	r = -EPROTO;
	if (!json_is_string(reply)) {
		ks_error_set(err, r, "qmp: hmp '%s': reply is not a string", cmdline);
		goto out;
	}
	r = -ENOMEM;
	if (!(text = unix_lines(json_string_value(reply))))
		goto out;
	r = 0;
	if (ks_qmp_hmp_failed(text))
		r = ks_error_set(err, -EIO, "qmp: hmp '%s': %.*s", cmdline,
				 (int)strcspn(text, "\n"), text + strspn(text, " \t\n"));
out:
	if (output)
		*output = text;
	else
		free(text);
	json_decref(reply);
	return r;
}

/* ---- events ---- */

void ks_qmp_on_event(struct ks_qmp *q, ks_qmp_event_cb cb, void *data)
{
	q->ev_cb = cb;
	q->ev_data = data;
}

/* The queue link before the oldest event named name (any event if name is NULL). */
static struct evnode **find_event(struct ks_qmp *q, const char *name)
{
	struct evnode **pp = &q->evq;

	while (*pp && name && strcmp((*pp)->ev->name, name))
		pp = &(*pp)->next;
	return *pp ? pp : NULL;
}

static bool have_event(struct ks_qmp *q, void *name)
{
	return find_event(q, name) != NULL;
}

int ks_qmp_wait_event(struct ks_qmp *q, const char *name, struct ks_qmp_event **ev,
		      int64_t timeout_ns)
{
	struct evnode **pp, *n;
	int r;

	if (ev)
		*ev = NULL;
	r = wait_for(q, have_event, (void *)name, timeout_ns);
	if (r < 0)
		return r;
	pp = find_event(q, name);
	n = *pp;
	*pp = n->next;
	if (q->evq_tail == &n->next)
		q->evq_tail = pp;
	if (ev)
		*ev = n->ev;
	else
		ks_qmp_event_free(n->ev);
	free(n);
	return 0;
}

int ks_qmp_next_event(struct ks_qmp *q, struct ks_qmp_event **ev, int64_t timeout_ns)
{
	return ks_qmp_wait_event(q, NULL, ev, timeout_ns);
}

void ks_qmp_event_free(struct ks_qmp_event *ev)
{
	if (!ev)
		return;
	free(ev->name);
	json_decref(ev->data);
	free(ev);
}
