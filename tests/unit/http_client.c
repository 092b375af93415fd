/* http_client.c: a raw HTTP client for tests, pumped together with the server's ks_loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_client.h"

#define MS 1000000ll

struct client *cl_open(uint16_t port, int rcvbuf)
{
	struct client *c = calloc(1, sizeof(*c));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	assert_non_null(c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	/* Set before connecting, so the window the server sees is small from the start. */
	if (rcvbuf)
		assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	/* Loopback connects at once, through the listen backlog. */
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
	return c;
}

void cl_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

void cl_pump(struct ks_loop *l, struct client *c)
{
	ssize_t n;

	assert_true(ks_loop_run_once(l, 2 * MS) >= 0);
	while (c && !c->eof && c->len < sizeof(c->buf) - 1) {
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			c->eof = true;  /* EOF or reset: the server is done with us */
			break;
		}
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
	}
}

void cl_send(struct ks_loop *l, struct client *c, const char *s, size_t n)
{
	uint64_t end = ks_loop_now_ns() + CLIENT_DEADLINE_NS;

	while (n && ks_loop_now_ns() < end) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return;  /* the server may close early (413): what it said is still read */
		if (w > 0) {
			s += w;
			n -= (size_t)w;
		}
		cl_pump(l, c);
	}
	assert_int_equal(n, 0);
}

void cl_until_eof(struct ks_loop *l, struct client *c)
{
	uint64_t end = ks_loop_now_ns() + CLIENT_DEADLINE_NS;

	while (!c->eof && ks_loop_now_ns() < end)
		cl_pump(l, c);
	assert_true(c->eof);
}

/* Decodes the chunks received whole since last time: a stream is read in a loop. */
const char *cl_text(struct client *c)
{
	const char *end = c->buf + c->len, *p = c->buf + c->parsed;

	if (!c->parsed) {
		const char *head_end = strstr(c->buf, "\r\n\r\n");

		if (!head_end)
			return "";
		p = head_end + 4;
	}
	while (p < end) {
		char *q;
		unsigned long sz = strtoul(p, &q, 16);

		if (q == p || q + 2 > end || (size_t)(end - (q + 2)) < sz + 2 || !sz)
			break;
		memcpy(c->text + c->text_len, q + 2, sz);
		c->text_len += sz;
		p = q + 2 + sz + 2;
	}
	c->text[c->text_len] = '\0';
	c->parsed = (size_t)(p - c->buf);
	return c->text;
}

void cl_until_event(struct ks_loop *l, struct client *c, const char *what)
{
	uint64_t end = ks_loop_now_ns() + CLIENT_DEADLINE_NS;
	size_t from = 0, w = strlen(what);

	/* Only the new text is searched (with an overlap): the stream may be megabytes. */
	while (!strstr(cl_text(c) + from, what) && ks_loop_now_ns() < end) {
		from = c->text_len > w ? c->text_len - w : 0;
		cl_pump(l, c);
	}
	if (!strstr(cl_text(c) + from, what))
		fail_msg("no '%s' in: %.400s", what, c->buf);
}

/* ---- whole requests ---- */


void answer_free(struct answer *a)
{
	cl_close(a->c);
}

struct answer cl_raw_request(struct ks_loop *l, uint16_t port, const char *raw, size_t len)
{
	struct answer a = { .c = cl_open(port, 0) };
	const char *sep;

	cl_send(l, a.c, raw, len);
	cl_until_eof(l, a.c);
	sep = strstr(a.c->buf, "\r\n\r\n");
	if (sscanf(a.c->buf, "HTTP/1.%*d %d", &a.status) != 1 || !sep)
		return a;  /* status 0: no answer */
	snprintf(a.head, sizeof(a.head), "%.*s", (int)(sep - a.c->buf), a.c->buf);
	a.body = sep + 4;
	a.body_len = a.c->len - (size_t)(a.body - a.c->buf);
	return a;
}

struct answer cl_request(struct ks_loop *l, uint16_t port, const char *method,
			 const char *target, const char *extra, const char *body)
{
	char host[64] = "", *raw;
	struct answer a;
	int n;

	if (!extra || !strstr(extra, "Host:"))
		snprintf(host, sizeof(host), "Host: 127.0.0.1:%u\r\n", port);
	n = asprintf(&raw, "%s %s HTTP/1.1\r\n%sConnection: close\r\n%s\r\n%s", method, target,
		     host, extra ? extra : "", body ? body : "");
	assert_true(n > 0);
	a = cl_raw_request(l, port, raw, (size_t)n);
	free(raw);
	return a;
}

json_t *answer_json(const struct answer *a)
{
	json_error_t e;
	json_t *v = json_loadb(a->body, a->body_len, 0, &e);

	if (!v)
		fail_msg("not JSON (%s): %.200s", e.text, a->body);
	return v;
}
