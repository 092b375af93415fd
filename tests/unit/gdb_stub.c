/* gdb_stub.c: a fake gdbstub for the gdb client's tests: plays a transcript, in a thread. */
#include <poll.h>
#include <sched.h>
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

#include "gdb_internal.h"
#include "gdb_stub.h"
#include "test_data.h"

#define LINE_MAX_BYTES (1 << 15)

static void stub_fail(struct stub *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
	va_end(ap);
}

static int hexval(char c)
{
	const char *d = "0123456789abcdef", *p = c ? strchr(d, c) : NULL;

	return p ? (int)(p - d) : -1;
}

size_t stub_unescape(const char *line, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\\' && i + 3 < len && line[i + 1] == 'x' &&
		    hexval(line[i + 2]) >= 0 && hexval(line[i + 3]) >= 0) {
			out[n++] = (char)(hexval(line[i + 2]) << 4 | hexval(line[i + 3]));
			i += 3;
		} else {
			out[n++] = line[i];
		}
	}
	return n;
}

static void send_all(struct stub *s, const char *b, size_t len)
{
	size_t step = s->mode == STUB_BYTES ? 1 : len;

	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;

		if (send(s->fd, b + off, n, MSG_NOSIGNAL) != (ssize_t)n)
			return;  /* the client has gone: tests check what it saw */
		if (s->mode == STUB_BYTES)
			sched_yield();
	}
}

static void flush_joined(struct stub *s)
{
	send_all(s, s->out, s->outlen);
	s->outlen = 0;
}

static void send_unit(struct stub *s, const char *b, size_t len)
{
	if (s->mode == STUB_JOINED && s->outlen + len <= sizeof(s->out)) {
		memcpy(s->out + s->outlen, b, len);
		s->outlen += len;
	} else {
		send_all(s, b, len);
	}
}

/* Reads exactly len bytes from the client; false on EOF or after 5 s of silence. */
static bool read_exact(struct stub *s, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 5000) != 1)
			return false;
		n = read(s->fd, buf + got, len - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static void expect(struct stub *s, const char *want, size_t len)
{
	char *got = malloc(len + 1), show[2][KS_GDB_SHOW];

	flush_joined(s);
	if (!read_exact(s, got, len))
		stub_fail(s, "client sent too little, expected %s",
			  ks_gdb_excerpt(want, len, show[0], sizeof(show[0])));
	else if (memcmp(got, want, len))
		stub_fail(s, "client sent %s, expected %s",
			  ks_gdb_excerpt(got, len, show[0], sizeof(show[0])),
			  ks_gdb_excerpt(want, len, show[1], sizeof(show[1])));
	free(got);
}

/* "$DATA#xx" with DATA as it is (no escapes added). */
static size_t frame_raw(const char *data, size_t len, char *out)
{
	unsigned sum = 0;

	out[0] = '$';
	memcpy(out + 1, data, len);
	for (size_t i = 0; i < len; i++)
		sum += (unsigned char)data[i];
	snprintf(out + 1 + len, 4, "#%02x", sum & 0xff);
	return len + 4;
}

/* Plays one line; false when the script must stop. */
static bool play_line(struct stub *s, const char *line, size_t len, char *buf, char *framed)
{
	size_t n;

	if (len >= 4 && !memcmp(line, "gdb ", 4)) {
		line += 4;
		len -= 4;
	}
	if (len == 0 || line[0] == '#' || (len >= 2 && !memcmp(line, "--", 2)))
		return true;
	if (len >= 7 && !memcmp(line, "!sleep ", 7)) {
		flush_joined(s);
		usleep((useconds_t)atoi(line + 7) * 1000);
		return true;
	}
	if (len >= 6 && !memcmp(line, "!close", 6))
		return false;
	if (len < 3 || line[2] != ' ') {
		stub_fail(s, "bad script line: %.*s", (int)len, line);
		return false;
	}
	n = stub_unescape(line + 3, len - 3, buf);
	if (!memcmp(line, "<-", 2))
		send_unit(s, buf, n);
	else if (!memcmp(line, "->", 2))
		expect(s, buf, n);
	else if (!memcmp(line, "<=", 2))
		send_unit(s, framed, ks_gdb_frame(buf, n, framed, 2 * n + 4));
	else if (!memcmp(line, "<~", 2))
		send_unit(s, framed, frame_raw(buf, n, framed));
	else if (!memcmp(line, "=>", 2))
		expect(s, framed, ks_gdb_frame(buf, n, framed, 2 * n + 4));
	else
		stub_fail(s, "bad script line: %.*s", (int)len, line);
	return !s->failure[0];
}

static void *stub_main(void *arg)
{
	struct stub *s = arg;
	char *buf = malloc(LINE_MAX_BYTES), *framed = malloc(2 * LINE_MAX_BYTES + 8);

	for (const char *p = s->script; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len >= LINE_MAX_BYTES) {
			stub_fail(s, "script line too long");
			break;
		}
		if (!play_line(s, p, len, buf, framed))
			break;
		p += len + (nl ? 1 : 0);
	}
	flush_joined(s);
	free(buf);
	free(framed);
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	return NULL;
}

void stub_play(struct stub *s, int fd, const char *script, enum stub_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->script = script;
	s->mode = mode;
	stub_main(s);
}

int stub_start(struct stub *s, const char *script, enum stub_mode mode)
{
	int sv[2];

	memset(s, 0, sizeof(*s));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	s->fd = sv[1];
	s->script = script;
	s->mode = mode;
	assert_int_equal(pthread_create(&s->thread, NULL, stub_main, s), 0);
	return sv[0];
}

void stub_join(struct stub *s)
{
	pthread_join(s->thread, NULL);
	if (s->failure[0])
		fail_msg("stub: %s", s->failure);
}

char *stub_slurp(const char *name)
{
	return test_data_slurp("KSCOPE_GDB_DATA", "tests/data/gdb", name);
}

char *stub_recorded_reply(const char *script, const char *request, int n)
{
	char want[256];
	const char *p = script;

	snprintf(want, sizeof(want), "gdb -> %s\n", request);
	while ((p = strstr(p, want))) {
		const char *r = strstr(p, "gdb <- $"), *end;

		p += strlen(want);
		if (n-- > 0)
			continue;
		assert_non_null(r);
		end = strchr(r, '\n');
		return strndup(r + 8, (size_t)(end - r - 8 - 3));
	}
	fail_msg("no reply to %s in the transcript", request);
	return NULL;
}
