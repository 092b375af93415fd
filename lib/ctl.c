/* ctl.c: the control protocol's line framing, and its server: many clients on one ks_loop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <kscope/ctl.h>

#include "ctl_internal.h"

#define READ_CHUNK 65536u
#define GRACE_NS (100 * 1000000ll)

ssize_t ks_ctl_frame(const char *buf, size_t len, size_t max, size_t *line_len)
{
	/* A line of max bytes may still be followed by "\r\n": look no further than that. */
	size_t scan = len < max + 2 ? len : max + 2, n;
	const char *nl = len ? memchr(buf, '\n', scan) : NULL;

	if (!nl) {
		bool cr_pending = len == max + 1 && buf[max] == '\r';
		return len > max + cr_pending ? -EMSGSIZE : 0;
	}
	n = (size_t)(nl - buf);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > max)
		return -EMSGSIZE;
	*line_len = n;
	return nl - buf + 1;
}

ssize_t ks_ctl_rbuf_fill(struct ks_ctl_rbuf *b, int fd)
{
	const size_t limit = KS_CTL_MAX_LINE + READ_CHUNK;
	ssize_t n;

	if (b->start) {
		memmove(b->buf, b->buf + b->start, b->len - b->start);
		b->len -= b->start;
		b->start = 0;
	}
	if (b->cap - b->len < READ_CHUNK / 4 && b->cap < limit) {
		size_t cap = b->cap ? b->cap * 2 : READ_CHUNK;
		char *p;

		cap = cap < limit ? cap : limit;
		if (!(p = realloc(b->buf, cap)))
			return -ENOMEM;
		b->buf = p;
		b->cap = cap;
	}
	if (b->len == b->cap)
		return -EMSGSIZE;
	do
		n = read(fd, b->buf + b->len, b->cap - b->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	b->len += (size_t)n;
	return n;
}

int ks_ctl_rbuf_next(struct ks_ctl_rbuf *b, const char **line, size_t *len)
{
	ssize_t n;

	if (b->start == b->len)
		return 0;
	n = ks_ctl_frame(b->buf + b->start, b->len - b->start, KS_CTL_MAX_LINE, len);
	if (n <= 0)
		return (int)n;
	*line = b->buf + b->start;
	b->start += (size_t)n;
	return 1;
}

size_t ks_ctl_rbuf_pending(const struct ks_ctl_rbuf *b)
{
	return b->len - b->start;
}

void ks_ctl_rbuf_release(struct ks_ctl_rbuf *b)
{
	free(b->buf);
	*b = (struct ks_ctl_rbuf){ 0 };
}

/* ---- server ---- */

struct ks_ctl_conn {
	struct ks_ctl_server *s;
	struct ks_ctl_conn *next;
	int fd;
	pid_t peer;
	struct ks_ctl_rbuf in;
	char *out;
	size_t out_off, out_len, out_cap;
	uint32_t interest;
	bool watched;  /* fd is in the loop */
	bool busy;     /* its requests are being handled: fd kept out of the loop */
	bool closing;  /* reads no more; closed once out is sent or the grace time is up */
	bool dead;     /* freed at the next reap */
	bool deferred; /* its requests wait for ks_ctl_server_run_deferred(): fd out of the loop */
	int64_t grace_timer;
	ks_ctl_close_cb on_close;
	void *close_data;
};

struct ks_ctl_server {
	struct ks_loop *loop;
	const struct ks_ctl_command *table;
	void *data;
	char *path;     /* NULL once shut down */
	int lfd;
	struct ks_ctl_conn *conns;
	size_t nconns;
	int64_t reap_timer;
	ks_ctl_defer_cb defer;
	unsigned handling;  /* requests being handled now (nested when more than one) */
	size_t ndeferred;
};

static void conn_free(struct ks_ctl_conn *c)
{
	struct ks_ctl_server *s = c->s;
	ks_ctl_close_cb cb = c->on_close;

	c->on_close = NULL;
	if (cb)
		cb(c, c->close_data);
	if (c->deferred)
		s->ndeferred--;
	if (c->watched)
		ks_loop_del_fd(s->loop, c->fd);
	if (c->grace_timer > 0)
		ks_loop_del_timer(s->loop, c->grace_timer);
	close(c->fd);
	ks_ctl_rbuf_release(&c->in);
	free(c->out);
	free(c);
	s->nconns--;
}

/* Frees the dead connections that no handler is using. */
static void on_reap(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_ctl_server *s = data;
	struct ks_ctl_conn **pp = &s->conns;

	(void)l, (void)id;
	s->reap_timer = 0;
	while (*pp) {
		struct ks_ctl_conn *c = *pp;

		if (c->dead && !c->busy) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* Marks c dead; it is freed from the loop, never under a caller that may still use it. */
static void conn_kill(struct ks_ctl_conn *c)
{
	struct ks_ctl_server *s = c->s;

	if (c->dead)
		return;
	c->dead = true;
	if (c->watched) {
		ks_loop_del_fd(s->loop, c->fd);
		c->watched = false;
	}
	if (s->reap_timer <= 0)
		s->reap_timer = ks_loop_add_timer(s->loop, 0, 0, on_reap, s);
}

static void on_io(struct ks_loop *l, int fd, uint32_t events, void *data);

/* Puts c's fd in the loop with the interest its state needs. */
static void update_watch(struct ks_ctl_conn *c)
{
	uint32_t ev;

	if (c->dead || c->busy || c->deferred)
		return;
	ev = (c->closing ? 0 : KS_LOOP_IN) | (c->out_len > c->out_off ? KS_LOOP_OUT : 0);
	if (c->watched && ev == c->interest)
		return;
	if ((c->watched ? ks_loop_mod_fd(c->s->loop, c->fd, ev)
			: ks_loop_add_fd(c->s->loop, c->fd, ev, on_io, c)) < 0) {
		conn_kill(c);
		return;
	}
	c->watched = true;
	c->interest = ev;
}

static void flush(struct ks_ctl_conn *c)
{
	while (!c->dead && c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_kill(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->closing && !c->out_len)
		conn_kill(c);
	update_watch(c);
}

static int queue(struct ks_ctl_conn *c, const char *s, size_t n)
{
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + n + 1 > KS_CTL_MAX_QUEUE) {
		/* It does not read what it asked for: drop it rather than grow without bound. */
		conn_kill(c);
		return -ENOBUFS;
	}
	if (c->out_len + n + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + n + 1)
			cap *= 2;
		if (!(p = realloc(c->out, cap)))
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	return 0;
}

int ks_ctl_conn_send(struct ks_ctl_conn *c, json_t *msg)
{
	char *s;
	int rc;

	if (!msg)
		return -EINVAL;
	if (c->dead || c->closing) {
		json_decref(msg);
		return -EPIPE;
	}
	s = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(msg);
	if (!s)
		return -ENOMEM;
	rc = queue(c, s, strlen(s));
	free(s);
	if (rc < 0)
		return rc;
	flush(c);
	return c->dead ? -EPIPE : 0;
}

static void send_error(struct ks_ctl_conn *c, json_t *id, const char *msg)
{
	ks_ctl_conn_send(c, json_pack("{s:O?,s:b,s:s}", "id", id, "ok", 0, "error", msg));
}

static void on_grace(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_ctl_conn *c = data;

	(void)l, (void)id;
	c->grace_timer = 0;
	conn_kill(c);
}

void ks_ctl_conn_close(struct ks_ctl_conn *c)
{
	if (c->dead || c->closing)
		return;
	c->closing = true;
	if (c->out_len == 0) {
		conn_kill(c);
		return;
	}
	c->grace_timer = ks_loop_add_timer(c->s->loop, GRACE_NS, 0, on_grace, c);
	update_watch(c);
}

void ks_ctl_conn_on_close(struct ks_ctl_conn *c, ks_ctl_close_cb cb, void *data)
{
	c->on_close = cb;
	c->close_data = data;
}

pid_t ks_ctl_conn_peer_pid(const struct ks_ctl_conn *c)
{
	return c->peer;
}

/* Finds and runs the handler of req; returns its result. */
static int dispatch(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!cmd)
		return ks_error_set(err, -EINVAL, "the request has no \"cmd\" string");
	for (const struct ks_ctl_command *t = c->s->table; t && t->name; t++)
		if (!strcmp(t->name, cmd))
			return t->fn(c, req, reply, err, c->s->data);
	return ks_error_set(err, -ENOENT, "unknown command '%.64s'", cmd);
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

static void handle_line(struct ks_ctl_conn *c, const char *line, size_t len)
{
	struct ks_error err = { 0 };
	json_error_t je;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	json_t *reply = json_object(), *out, *id;
	int rc;

	if (!req)
		rc = ks_error_set(&err, -EINVAL, "malformed request: %s", je.text);
	else if (!json_is_object(req))
		rc = ks_error_set(&err, -EINVAL, "a request must be a JSON object");
	else if (!reply)
		rc = ks_error_set(&err, -ENOMEM, "out of memory");
	else
		rc = dispatch(c, req, reply, &err);
	id = json_object_get(req, "id");
	if (rc < 0 && json_is_object(json_object_get(reply, "detail"))) {
		/* What the handler says about its failure goes along; the rest is dropped. */
		ks_ctl_conn_send(c, json_pack("{s:O?,s:b,s:s,s:O}", "id", id, "ok", 0, "error",
					      err.msg[0] ? err.msg : strerror(-rc), "detail",
					      json_object_get(reply, "detail")));
	} else if (rc < 0) {
		send_error(c, id, err.msg[0] ? err.msg : strerror(-rc));
	} else {
		out = json_pack("{s:O?,s:b}", "id", id, "ok", 1);
		if (out)
			json_object_update(out, reply);
		ks_ctl_conn_send(c, out);
	}
	json_decref(reply);
	json_decref(req);
}

/* Handles every complete line; c's fd stays out of the loop meanwhile (see handlers). */
static void process_lines(struct ks_ctl_conn *c)
{
	const char *line;
	size_t len;
	int r;

	if (c->watched) {
		ks_loop_del_fd(c->s->loop, c->fd);
		c->watched = false;
	}
	c->busy = true;
	c->s->handling++;
	while (!c->dead && !c->closing && (r = ks_ctl_rbuf_next(&c->in, &line, &len)) != 0) {
		if (r < 0) {
			send_error(c, NULL, "request line longer than 1 MiB");
			ks_ctl_conn_close(c);
			break;
		}
		if (!blank(line, len))
			handle_line(c, line, len);
	}
	c->s->handling--;
	c->busy = false;
	if (c->dead && c->s->reap_timer <= 0)
		c->s->reap_timer = ks_loop_add_timer(c->s->loop, 0, 0, on_reap, c->s);
	update_watch(c);
}

/* Whether a request that comes now must wait: it would run under another one, or under a
 * callback that runs the loop, and the owner says that is not safe now. */
static bool must_defer(struct ks_ctl_server *s)
{
	return s->defer && (s->handling > 0 || ks_loop_depth(s->loop) > 1) && s->defer(s->data);
}

static void on_io(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_ctl_conn *c = data;
	ssize_t n;

	(void)l, (void)fd;
	if (events & KS_LOOP_OUT)
		flush(c);
	if (c->dead)
		return;
	if (c->closing) {
		if (events & (KS_LOOP_HUP | KS_LOOP_ERR))
			conn_kill(c);
		return;
	}
	if (!(events & (KS_LOOP_IN | KS_LOOP_HUP | KS_LOOP_ERR)))
		return;
	if (must_defer(c->s)) {
		/* Out of the loop, or it would wake every nested round. */
		c->deferred = true;
		c->s->ndeferred++;
		ks_loop_del_fd(c->s->loop, c->fd);
		c->watched = false;
		return;
	}
	n = ks_ctl_rbuf_fill(&c->in, c->fd);
	if (n == -EAGAIN)
		return;
	if (n == 0 || (n < 0 && n != -EMSGSIZE)) {
		conn_kill(c);
		return;
	}
	process_lines(c);
}

int ks_ctl_server_attach(struct ks_ctl_server *s, int fd)
{
	struct ks_ctl_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (s->nconns >= KS_CTL_MAX_CLIENTS) {
		static const char busy[] =
			"{\"id\":null,\"ok\":false,\"error\":\"too many clients\"}\n";

		(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return -ENOSPC;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return -ENOMEM;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->s = s;
	c->fd = fd;
	c->peer = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 ? cred.pid : -1;
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	update_watch(c);
	return c->dead ? -ENOMEM : 0;
}

static void on_accept(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_ctl_server *s = data;

	(void)l, (void)events;
	/* Bounded, so that a flood of connections cannot starve the rest of the loop. */
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0 && errno == EINTR)
			continue;
		if (cfd < 0)
			return;
		ks_ctl_server_attach(s, cfd);
	}
}

struct ks_ctl_server *ks_ctl_server_new(struct ks_loop *loop, const char *path,
					const struct ks_ctl_command *table, void *data,
					struct ks_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ks_ctl_server *s = NULL;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ks_error_set(err, -ENAMETOOLONG, "control socket path too long: %s", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	if (!(s = calloc(1, sizeof(*s)))) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	*s = (struct ks_ctl_server){ .loop = loop, .table = table, .data = data, .lfd = -1 };
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ks_error_set(err, -errno, "control socket %s: %s", path, strerror(errno));
		goto out;
	}
	if (!(s->path = strdup(path))) {
		unlink(path);
		ks_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (listen(s->lfd, 64) < 0) {
		ks_error_set(err, -errno, "control socket %s: listen: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = ks_loop_add_fd(loop, s->lfd, KS_LOOP_IN, on_accept, s)) < 0) {
		ks_error_set(err, rc, "control socket: loop: %s", strerror(-rc));
		goto out;
	}
	return s;
out:
	ks_ctl_server_free(s);
	return NULL;
}

void ks_ctl_server_shutdown(struct ks_ctl_server *s)
{
	if (s->lfd >= 0) {
		ks_loop_del_fd(s->loop, s->lfd);
		close(s->lfd);
		s->lfd = -1;
	}
	if (s->path) {
		unlink(s->path);
		free(s->path);
		s->path = NULL;
	}
}

/* Gives the clients with queued output a short time to take it, all at once. */
static void drain(struct ks_ctl_server *s)
{
	uint64_t deadline = ks_loop_now_ns() + GRACE_NS;

	for (;;) {
		struct pollfd pfd[KS_CTL_MAX_CLIENTS];
		struct ks_ctl_conn *map[KS_CTL_MAX_CLIENTS];
		nfds_t n = 0;
		uint64_t now = ks_loop_now_ns();

		for (struct ks_ctl_conn *c = s->conns; c && n < KS_CTL_MAX_CLIENTS; c = c->next)
			if (!c->dead && c->out_len > c->out_off) {
				pfd[n] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
				map[n++] = c;
			}
		if (n == 0 || now >= deadline)
			return;
		if (poll(pfd, n, (int)((deadline - now) / 1000000 + 1)) <= 0)
			return;
		for (nfds_t i = 0; i < n; i++)
			if (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))
				flush(map[i]);
	}
}

void ks_ctl_server_free(struct ks_ctl_server *s)
{
	if (!s)
		return;
	ks_ctl_server_shutdown(s);
	drain(s);
	while (s->conns) {
		struct ks_ctl_conn *c = s->conns;

		s->conns = c->next;
		conn_free(c);
	}
	if (s->reap_timer > 0)
		ks_loop_del_timer(s->loop, s->reap_timer);
	free(s);
}

void ks_ctl_server_set_defer(struct ks_ctl_server *s, ks_ctl_defer_cb defer)
{
	s->defer = defer;
}

void ks_ctl_server_run_deferred(struct ks_ctl_server *s)
{
	for (struct ks_ctl_conn *c = s->conns; c && s->ndeferred; c = c->next) {
		if (!c->deferred)
			continue;
		c->deferred = false;
		s->ndeferred--;
		/* Read and handled in the next round, from the top. */
		update_watch(c);
	}
	s->ndeferred = 0;
}

size_t ks_ctl_server_clients(const struct ks_ctl_server *s)
{
	size_t n = 0;

	for (const struct ks_ctl_conn *c = s->conns; c; c = c->next)
		n += !c->dead;
	return n;
}
