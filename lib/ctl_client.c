/* ctl_client.c: the client side of the control protocol, for kscope commands (blocking). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <limits.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <kscope/ctl.h>
#include <kscope/unixsock.h>

#include "ctl_internal.h"


struct ks_ctl_client {
	int fd;
	struct ks_ctl_rbuf in;
	json_t *held;      /* messages read while waiting for a reply, for ks_ctl_read() */
	json_int_t next_id;
};

static int64_t remaining(uint64_t start, int64_t timeout_ns)
{
	uint64_t spent = ks_loop_now_ns() - start;

	if (timeout_ns < 0)
		return -1;
	return spent >= (uint64_t)timeout_ns ? 0 : timeout_ns - (int64_t)spent;
}

static int poll_ms(int64_t left_ns)
{
	if (left_ns < 0)
		return -1;
	return (int)(left_ns / 1000000 + (left_ns % 1000000 != 0));
}

struct ks_ctl_client *ks_ctl_client_attach(int fd, struct ks_error *err)
{
	struct ks_ctl_client *c = calloc(1, sizeof(*c));

	if (!c || !(c->held = json_array())) {
		free(c);
		close(fd);
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->fd = fd;
	return c;
}

struct ks_ctl_client *ks_ctl_connect(const char *rundir, int64_t timeout_ns,
				     struct ks_error *err)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", rundir, KS_CTL_SOCKET);
	fd = ks_unix_connect(NULL, path, timeout_ns, "control", err);
	if (fd == -ETIMEDOUT) {
		/* Callers tell "no such VM" (no socket) from "its supervisor is gone" (nobody
		 * listens) by the error: give the one the last attempt met. */
		int e = access(path, F_OK) == 0 ? -ECONNREFUSED : -ENOENT;
		ks_error_set(err, e, "cannot connect to %s: %s", path, strerror(-e));
	}
	if (fd < 0)
		return NULL;
	return ks_ctl_client_attach(fd, err);
}

void ks_ctl_client_free(struct ks_ctl_client *c)
{
	if (!c)
		return;
	close(c->fd);
	ks_ctl_rbuf_release(&c->in);
	json_decref(c->held);
	free(c);
}

int ks_ctl_client_fd(const struct ks_ctl_client *c)
{
	return c->fd;
}

/* Parses the next buffered line: 1 and *msg, 0 when none is complete, or -EPROTO. */
static int next_buffered(struct ks_ctl_client *c, json_t **msg, struct ks_error *err)
{
	const char *line;
	size_t len;
	json_error_t je;
	int r;

	while ((r = ks_ctl_rbuf_next(&c->in, &line, &len)) == 1) {
		if (len == 0)
			continue;
		*msg = json_loadb(line, len, 0, &je);
		if (!*msg)
			return ks_error_set(err, -EPROTO, "control: bad message from the "
					    "supervisor: %s", je.text);
		if (!json_is_object(*msg)) {
			json_decref(*msg);
			return ks_error_set(err, -EPROTO, "control: message from the supervisor "
					    "is not a JSON object");
		}
		return 1;
	}
	return r < 0 ? ks_error_set(err, -EPROTO, "control: line from the supervisor longer "
				    "than 1 MiB") : 0;
}

/* Reads the next message from the socket, held ones aside. */
static int receive(struct ks_ctl_client *c, json_t **msg, uint64_t start, int64_t timeout_ns,
		   struct ks_error *err)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = next_buffered(c, msg, err);
		ssize_t n;

		if (r != 0)
			return r < 0 ? r : 0;
		r = poll(&p, 1, poll_ms(remaining(start, timeout_ns)));
		if (r < 0)
			return ks_error_set(err, -errno, "control: %s", strerror(errno));
		if (r == 0)
			return ks_error_set(err, -ETIMEDOUT, "control: no answer from the "
					    "supervisor in time");
		n = ks_ctl_rbuf_fill(&c->in, c->fd);
		if (n == 0)
			return ks_error_set(err, -ECONNRESET, "control: the supervisor closed "
					    "the connection");
		if (n < 0 && n != -EAGAIN)
			return ks_error_set(err, n == -EMSGSIZE ? -EPROTO : (int)n,
					    "control: read: %s", strerror((int)-n));
	}
}

int ks_ctl_read(struct ks_ctl_client *c, json_t **msg, int64_t timeout_ns,
		struct ks_error *err)
{
	*msg = NULL;
	if (json_array_size(c->held)) {
		*msg = json_incref(json_array_get(c->held, 0));
		json_array_remove(c->held, 0);
		return 0;
	}
	return receive(c, msg, ks_loop_now_ns(), timeout_ns, err);
}

static int send_all(struct ks_ctl_client *c, const char *s, size_t len, uint64_t start,
		    int64_t timeout_ns, struct ks_error *err)
{
	while (len) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		ssize_t n = send(c->fd, s, len, MSG_NOSIGNAL);
		int r;

		if (n > 0) {
			s += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return ks_error_set(err, errno == EPIPE ? -ECONNRESET : -errno,
					    "control: send: %s", strerror(errno));
		r = poll(&p, 1, poll_ms(remaining(start, timeout_ns)));
		if (r < 0)
			return ks_error_set(err, -errno, "control: %s", strerror(errno));
		if (r == 0)
			return ks_error_set(err, -ETIMEDOUT, "control: the supervisor does not "
					    "take requests");
	}
	return 0;
}

/* Sends req as one line, giving it an id if it has none; *id borrows the request's id. */
static int send_request(struct ks_ctl_client *c, json_t *req, json_t **id, uint64_t start,
			int64_t timeout_ns, struct ks_error *err)
{
	char *s;
	size_t len;
	int rc;

	if (!json_object_get(req, "id"))
		json_object_set_new(req, "id", json_integer(++c->next_id));
	*id = json_object_get(req, "id");
	if (!(s = json_dumps(req, JSON_COMPACT)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	len = strlen(s);
	s[len] = '\n';  /* replaces the NUL, which send_all does not need */
	rc = send_all(c, s, len + 1, start, timeout_ns, err);
	free(s);
	return rc;
}

int ks_ctl_call(struct ks_ctl_client *c, json_t *req, json_t **reply, int64_t timeout_ns,
		struct ks_error *err)
{
	uint64_t start = ks_loop_now_ns();
	json_t *id, *msg = NULL;
	int rc;

	if (reply)
		*reply = NULL;
	if (!json_is_object(req)) {
		json_decref(req);
		return ks_error_set(err, -EINVAL, "control: a request must be a JSON object");
	}
	if ((rc = send_request(c, req, &id, start, timeout_ns, err)) < 0)
		goto out;
	while ((rc = receive(c, &msg, start, timeout_ns, err)) == 0) {
		json_t *ok = json_object_get(msg, "ok");

		/* id null: the supervisor could not read the request at all. */
		if (ok && (json_equal(json_object_get(msg, "id"), id) ||
			   json_is_null(json_object_get(msg, "id"))))
			break;
		json_array_append_new(c->held, msg);
		msg = NULL;
	}
	if (rc < 0)
		goto out;
	if (!json_is_true(json_object_get(msg, "ok"))) {
		const char *e = json_string_value(json_object_get(msg, "error"));

		rc = ks_error_set(err, -EIO, "%s", e ? e : "the supervisor refused the request");
	}
	if (reply) {
		*reply = msg;
		msg = NULL;
	}
out:
	json_decref(msg);
	json_decref(req);
	return rc;
}
