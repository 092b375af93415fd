/* qmp_peer.c: a fake QEMU for QMP tests: plays a transcript on a socket, in a thread. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "qmp_peer.h"

static void peer_fail(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(p->failure, sizeof(p->failure), fmt, ap);
	va_end(ap);
}

static void send_all(struct peer *p, const char *s, size_t len)
{
	size_t step = p->mode == BYTES ? 1 : len;

	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;

		if (send(p->fd, s + off, n, MSG_NOSIGNAL) != (ssize_t)n)
			return;  /* the client has gone: tests check what it saw */
	}
}

static void flush_joined(struct peer *p)
{
	send_all(p, p->out, p->outlen);
	p->outlen = 0;
}

/* Reads one line from the client (without its newline) into buf; false on EOF/timeout. */
static bool read_line(struct peer *p, char *buf, size_t size)
{
	for (;;) {
		char *nl = memchr(p->in, '\n', p->inlen);
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - p->in);

			snprintf(buf, size, "%.*s", (int)len, p->in);
			memmove(p->in, nl + 1, p->inlen - len - 1);
			p->inlen -= len + 1;
			return true;
		}
		if (poll(&pfd, 1, 5000) != 1)
			return false;
		n = read(p->fd, p->in + p->inlen, sizeof(p->in) - p->inlen);
		if (n <= 0)
			return false;
		p->inlen += (size_t)n;
	}
}

static void expect_line(struct peer *p, const char *want)
{
	char got[4096];
	json_t *g, *w;

	flush_joined(p);
	if (!read_line(p, got, sizeof(got))) {
		peer_fail(p, "client sent nothing, expected %s", want);
		return;
	}
	g = json_loads(got, 0, NULL);
	w = json_loads(want, 0, NULL);
	if (g && w && json_object_get(g, "id") && json_object_get(w, "id") && p->nids < 64) {
		p->ids[p->nids][0] = json_integer_value(json_object_get(w, "id"));
		p->ids[p->nids++][1] = json_integer_value(json_object_get(g, "id"));
		json_object_del(g, "id");
		json_object_del(w, "id");
	}
	if (!g || !w || !json_equal(g, w))
		peer_fail(p, "client sent %s, expected %s", got, want);
	json_decref(g);
	json_decref(w);
}

/* Sends a recorded line, its id mapped to the client's. */
static void send_line(struct peer *p, const char *line)
{
	json_t *j = json_loads(line, 0, NULL), *id = json_object_get(j, "id");
	char *s = NULL, buf[1 << 14];
	int len;

	for (int i = 0; id && i < p->nids; i++)
		if (p->ids[i][0] == json_integer_value(id) && p->ids[i][0] != p->ids[i][1]) {
			json_object_set_new(j, "id", json_integer(p->ids[i][1]));
			line = s = json_dumps(j, 0);
			break;
		}
	len = snprintf(buf, sizeof(buf), "%s\r\n", line);
	if (p->mode == JOINED && p->outlen + (size_t)len <= sizeof(p->out)) {
		memcpy(p->out + p->outlen, buf, (size_t)len);
		p->outlen += (size_t)len;
	} else {
		send_all(p, buf, (size_t)len);
	}
	free(s);
	json_decref(j);
}

static void send_big(struct peer *p, size_t n)
{
	static const char head[] = "{\"return\": \"";
	char chunk[65536];

	flush_joined(p);
	memset(chunk, 'x', sizeof(chunk));
	send_all(p, head, sizeof(head) - 1);
	for (size_t off = 0; off < n; off += sizeof(chunk))
		if (send(p->fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
			return;
	send_all(p, "\"}\r\n", 4);
}

static void wait_hangup(struct peer *p)
{
	char buf[4096];

	flush_joined(p);
	while (read_line(p, buf, sizeof(buf)))
		;
}

static void peer_step(struct peer *p, const char *line)
{
	if (!strncmp(line, "<- ", 3))
		send_line(p, line + 3);
	else if (!strncmp(line, "-> ", 3))
		expect_line(p, line + 3);
	else if (!strncmp(line, "<~ ", 3))
		flush_joined(p), send_all(p, line + 3, strlen(line + 3));
	else if (!strncmp(line, "!sleep ", 7))
		flush_joined(p), usleep((useconds_t)atoi(line + 7) * 1000);
	else if (!strncmp(line, "!big ", 5))
		send_big(p, strtoul(line + 5, NULL, 10));
	else if (!strcmp(line, "!wait"))
		wait_hangup(p);
	else if (line[0] && line[0] != '#' && strcmp(line, "!close"))
		peer_fail(p, "bad script line: %s", line);
}

void *peer_main(void *arg)
{
	struct peer *p = arg;
	char *script = strdup(p->script), *save = NULL;

	for (char *l = strtok_r(script, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		peer_step(p, l);
		if (!strcmp(l, "!close"))
			break;
	}
	flush_joined(p);
	free(script);
	close(p->fd);
	return NULL;
}

int peer_start(struct peer *p, const char *script, enum peer_mode mode)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	p->fd = sv[1];
	p->script = script;
	p->mode = mode;
	assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
	return sv[0];
}

void peer_join(struct peer *p)
{
	pthread_join(p->thread, NULL);
	if (p->failure[0])
		fail_msg("fake QEMU: %s", p->failure);
}
