/* test_ctl.c: the control protocol: framing, and a server in a thread against real clients. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/ctl.h>

#include "../../lib/ctl_internal.h"

#define MS 1000000ll
#define TIMEOUT (5000 * MS)

/* ---- framing ---- */

struct frame_case {
	const char *in;
	size_t max;
	ssize_t ret;
	size_t line_len;
};

static const struct frame_case frame_cases[] = {
	{ "abc\n", 16, 4, 3 },
	{ "abc\r\n", 16, 5, 3 },
	{ "abc\ndef\n", 16, 4, 3 },          /* only the first line */
	{ "\n", 16, 1, 0 },
	{ "\r\n", 16, 2, 0 },
	{ "a\rb\n", 16, 4, 3 },              /* a '\r' inside stays */
	{ "abc", 16, 0, 0 },                 /* more needed */
	{ "", 16, 0, 0 },
	{ "abcd\n", 4, 5, 4 },               /* exactly max */
	{ "abcd\r\n", 4, 6, 4 },             /* exactly max, then CRLF */
	{ "abcd", 4, 0, 0 },                 /* max so far: may still end */
	{ "abcd\r", 4, 0, 0 },               /* max and a '\r': may still end */
	{ "abcde", 4, -EMSGSIZE, 0 },        /* over max, no newline yet */
	{ "abcde\n", 4, -EMSGSIZE, 0 },      /* over max with its newline */
	{ "abcd\rx", 4, -EMSGSIZE, 0 },
	{ "abcdefghij\n", 4, -EMSGSIZE, 0 }, /* the newline lies beyond the scan */
};

static void frame_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
		const struct frame_case *fc = &frame_cases[i];
		size_t len = 999;
		ssize_t r = ks_ctl_frame(fc->in, strlen(fc->in), fc->max, &len);

		if (r != fc->ret)
			fail_msg("case %zu '%s': returned %zd, expected %zd", i, fc->in, r,
				 fc->ret);
		if (r > 0 && len != fc->line_len)
			fail_msg("case %zu '%s': length %zu, expected %zu", i, fc->in, len,
				 fc->line_len);
	}
}

/* Every split of a two-line input into two reads gives the same two lines. */
static void rbuf_split_reads(void **state)
{
	static const char text[] = "{\"id\":1,\"cmd\":\"a\"}\r\n{\"id\":2}\n";
	size_t n = sizeof(text) - 1;

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		struct ks_ctl_rbuf b = { 0 };
		const char *line;
		size_t len;
		int p[2], got = 0;
		char lines[2][64];

		assert_int_equal(pipe2(p, O_NONBLOCK), 0);
		assert_int_equal(write(p[1], text, cut), (ssize_t)cut);
		for (int round = 0; round < 2; round++) {
			ssize_t r = ks_ctl_rbuf_fill(&b, p[0]);

			assert_true(r > 0 || r == -EAGAIN);
			while (ks_ctl_rbuf_next(&b, &line, &len) == 1) {
				assert_true(got < 2 && len < 64);
				memcpy(lines[got], line, len);
				lines[got++][len] = 0;
			}
			if (round == 0)
				assert_int_equal(write(p[1], text + cut, n - cut),
						 (ssize_t)(n - cut));
		}
		assert_int_equal(got, 2);
		assert_string_equal(lines[0], "{\"id\":1,\"cmd\":\"a\"}");
		assert_string_equal(lines[1], "{\"id\":2}");
		assert_int_equal(ks_ctl_rbuf_pending(&b), 0);
		close(p[0]);
		close(p[1]);
		ks_ctl_rbuf_release(&b);
	}
}

/* ---- a server in a thread ---- */

struct srv {
	struct ks_loop *loop;
	struct ks_ctl_server *s;
	pthread_t thread;
	int wake[2];
	bool stop;
	char dir[64];
	char path[128];
	struct ks_ctl_conn *streaming;
	json_t *stream_id;
	int64_t stream_timer;
	int stream_seq;
	int closed;       /* close callbacks run (atomic) */
	int flood_rc;     /* what the flood handler's last send returned (atomic) */
	int defer;        /* requests that would run nested wait (atomic) */
};

static int h_echo(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		  void *data)
{
	(void)c, (void)err, (void)data;
	json_object_set(reply, "echo", json_object_get(req, "arg"));
	json_object_set_new(reply, "answer", json_integer(42));
	return 0;
}

static int h_fail(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		  void *data)
{
	(void)c, (void)req, (void)data;
	json_object_set_new(reply, "half", json_true()); /* dropped with the error */
	if (json_is_true(json_object_get(req, "detail")))
		json_object_set_new(reply, "detail", json_pack("{s:s}", "why", "this"));
	return ks_error_set(err, -EINVAL, "bad thing");
}

/* Runs the loop nested for a while, as a handler making a QMP call does. */
static int h_sleep(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		   void *data)
{
	struct srv *sv = data;
	uint64_t end = ks_loop_now_ns() + 200 * MS;

	(void)c, (void)req, (void)reply, (void)err;
	while (ks_loop_now_ns() < end)
		ks_loop_run_once(sv->loop, 10 * MS);
	return 0;
}

static void on_stream_tick(struct ks_loop *l, int64_t id, void *data)
{
	struct srv *sv = data;

	(void)l, (void)id;
	ks_ctl_conn_send(sv->streaming, json_pack("{s:O,s:s+,s:i}", "id", sv->stream_id, "line",
						  "line ", sv->stream_seq == 0 ? "0" : "n",
						  "ts", sv->stream_seq));
	sv->stream_seq++;
}

static void on_stream_close(struct ks_ctl_conn *c, void *data)
{
	struct srv *sv = data;

	(void)c;
	ks_loop_del_timer(sv->loop, sv->stream_timer);
	json_decref(sv->stream_id);
	sv->streaming = NULL;
	__atomic_add_fetch(&sv->closed, 1, __ATOMIC_SEQ_CST);
}

static int h_stream(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		    void *data)
{
	struct srv *sv = data;

	(void)reply, (void)err;
	sv->streaming = c;
	sv->stream_id = json_incref(json_object_get(req, "id"));
	sv->stream_seq = 0;
	sv->stream_timer = ks_loop_add_timer(sv->loop, MS, 2 * MS, on_stream_tick, sv);
	ks_ctl_conn_on_close(c, on_stream_close, sv);
	return KS_CTL_STREAM;
}

/* Sends far more than a client that does not read can hold. */
static int h_flood(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		   void *data)
{
	struct srv *sv = data;
	char *big = malloc(65536);
	int rc = 0;

	(void)req, (void)reply, (void)err;
	memset(big, 'x', 65535);
	big[65535] = 0;
	for (int i = 0; i < 400 && rc == 0; i++)
		rc = ks_ctl_conn_send(c, json_pack("{s:i,s:s}", "id", i, "line", big));
	free(big);
	__atomic_store_n(&sv->flood_rc, rc, __ATOMIC_SEQ_CST);
	return 0;
}

static const struct ks_ctl_command table[] = {
	{ "echo", h_echo },
	{ "fail", h_fail },
	{ "sleep", h_sleep },
	{ "stream", h_stream },
	{ "flood", h_flood },
	{ NULL, NULL },
};

static void on_wake(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct srv *sv = data;
	char b[8];

	(void)l, (void)events;
	(void)!read(fd, b, sizeof(b));
	sv->stop = true;
}

static bool defer_nested(void *data)
{
	struct srv *sv = data;

	return __atomic_load_n(&sv->defer, __ATOMIC_SEQ_CST);
}

static void *serve(void *arg)
{
	struct srv *sv = arg;

	while (!sv->stop) {
		ks_loop_run_once(sv->loop, -1);
		ks_ctl_server_run_deferred(sv->s);
	}
	return NULL;
}

static int srv_setup(void **state)
{
	struct srv *sv = calloc(1, sizeof(*sv));
	struct ks_error err = { 0 };

	strcpy(sv->dir, "/tmp/ks-ctl-XXXXXX");
	if (!mkdtemp(sv->dir) || pipe2(sv->wake, O_CLOEXEC) < 0)
		return -1;
	snprintf(sv->path, sizeof(sv->path), "%s/%s", sv->dir, KS_CTL_SOCKET);
	sv->loop = ks_loop_new(NULL);
	sv->s = ks_ctl_server_new(sv->loop, sv->path, table, sv, &err);
	if (!sv->s) {
		fprintf(stderr, "server: %s\n", err.msg);
		return -1;
	}
	ks_loop_add_fd(sv->loop, sv->wake[0], KS_LOOP_IN, on_wake, sv);
	ks_ctl_server_set_defer(sv->s, defer_nested);
	pthread_create(&sv->thread, NULL, serve, sv);
	*state = sv;
	return 0;
}

static int srv_teardown(void **state)
{
	struct srv *sv = *state;

	(void)!write(sv->wake[1], "x", 1);
	pthread_join(sv->thread, NULL);
	ks_ctl_server_free(sv->s);
	ks_loop_del_fd(sv->loop, sv->wake[0]);
	ks_loop_free(sv->loop);
	close(sv->wake[0]);
	close(sv->wake[1]);
	assert_int_equal(access(sv->path, F_OK), -1); /* the socket is gone */
	rmdir(sv->dir);
	free(sv);
	return 0;
}

static struct ks_ctl_client *client(struct srv *sv)
{
	struct ks_error err = { 0 };
	struct ks_ctl_client *c = ks_ctl_connect(sv->dir, TIMEOUT, &err);

	if (!c)
		fail_msg("connect: %s", err.msg);
	return c;
}

static void raw_send(struct ks_ctl_client *c, const char *s)
{
	int fd = ks_ctl_client_fd(c);
	size_t len = strlen(s);

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			struct timespec ts = { 0, MS };
			nanosleep(&ts, NULL);
			continue;
		}
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

/* Reads the next message and checks that it is an error reply whose text starts so. */
static void expect_error(struct ks_ctl_client *c, const char *prefix)
{
	struct ks_error err = { 0 };
	json_t *m = NULL;
	const char *e;

	assert_int_equal(ks_ctl_read(c, &m, TIMEOUT, &err), 0);
	assert_true(json_is_false(json_object_get(m, "ok")));
	e = json_string_value(json_object_get(m, "error"));
	assert_non_null(e);
	if (strncmp(e, prefix, strlen(prefix)))
		fail_msg("error '%s' does not start with '%s'", e, prefix);
	json_decref(m);
}

static void call_ok(void **state)
{
	struct ks_ctl_client *c = client(*state);
	struct ks_error err = { 0 };
	json_t *r = NULL;

	assert_int_equal(ks_ctl_call(c, json_pack("{s:s,s:s}", "cmd", "echo", "arg", "hi"), &r,
				     TIMEOUT, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_string_equal(json_string_value(json_object_get(r, "echo")), "hi");
	assert_int_equal(json_integer_value(json_object_get(r, "answer")), 42);
	json_decref(r);
	/* A caller's own id, of any JSON type, comes back as it was. */
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s,s:s}", "cmd", "echo", "id", "mine"), &r,
				     TIMEOUT, &err), 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "mine");
	json_decref(r);
	ks_ctl_client_free(c);
}

static void call_errors(void **state)
{
	struct ks_ctl_client *c = client(*state);
	struct ks_error err = { 0 };
	json_t *r = NULL;

	assert_int_equal(ks_ctl_call(c, json_pack("{s:s}", "cmd", "fail"), &r, TIMEOUT, &err),
			 -EIO);
	assert_string_equal(err.msg, "bad thing");
	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_null(json_object_get(r, "half"));
	assert_null(json_object_get(r, "detail"));
	json_decref(r);
	/* A failing handler's "detail" goes along with its error. */
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s,s:b}", "cmd", "fail", "detail", 1), &r,
				     TIMEOUT, &err), -EIO);
	assert_string_equal(err.msg, "bad thing");
	assert_null(json_object_get(r, "half"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "detail"),
							      "why")), "this");
	json_decref(r);
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s}", "cmd", "nope"), NULL, TIMEOUT, &err),
			 -EIO);
	assert_string_equal(err.msg, "unknown command 'nope'");
	assert_int_equal(ks_ctl_call(c, json_pack("{s:i}", "cmd", 3), NULL, TIMEOUT, &err), -EIO);
	assert_string_equal(err.msg, "the request has no \"cmd\" string");
	assert_int_equal(ks_ctl_call(c, json_array(), NULL, TIMEOUT, &err), -EINVAL);
	ks_ctl_client_free(c);
}

/* Garbage gets an error reply each, and the connection stays usable. */
static void garbage(void **state)
{
	struct ks_ctl_client *c = client(*state);
	struct ks_error err = { 0 };

	raw_send(c, "this is not json\n");
	expect_error(c, "malformed request: ");
	raw_send(c, "[1,2,3]\n\"str\"\n{\"id\":7}\n");
	expect_error(c, "a request must be a JSON object");
	expect_error(c, "a request must be a JSON object");
	expect_error(c, "the request has no \"cmd\"");
	raw_send(c, "{\"cmd\":\"echo\",\"cmd\":\"echo\"}\n{\"cmd\":\"echo\"} trailing\n");
	expect_error(c, "malformed request: ");
	expect_error(c, "malformed request: ");
	raw_send(c, "{\"cmd\":\"echo\",\"s\":\"a\\u0000b\"}\n\xff\xfe\x01\n");
	expect_error(c, "malformed request: ");
	expect_error(c, "malformed request: ");
	raw_send(c, "   \n\r\n\n");  /* blank lines are skipped without a reply */
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s}", "cmd", "echo"), NULL, TIMEOUT, &err), 0);
	ks_ctl_client_free(c);
}

/* A request cut into single bytes, and several requests in one write. */
static void split_and_joined(void **state)
{
	struct ks_ctl_client *c = client(*state);
	static const char req[] = "{\"id\":5,\"cmd\":\"echo\",\"arg\":\"split\"}\r\n";
	struct ks_error err = { 0 };
	json_t *m;

	for (size_t i = 0; req[i]; i++) {
		char one[2] = { req[i], 0 };
		struct timespec ts = { 0, 200000 };

		raw_send(c, one);
		nanosleep(&ts, NULL);
	}
	assert_int_equal(ks_ctl_read(c, &m, TIMEOUT, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(m, "id")), 5);
	assert_string_equal(json_string_value(json_object_get(m, "echo")), "split");
	json_decref(m);
	raw_send(c, "{\"id\":1,\"cmd\":\"echo\"}\n{\"id\":2,\"cmd\":\"fail\"}\n"
		    "{\"id\":3,\"cmd\":\"echo\"}\n");
	for (int id = 1; id <= 3; id++) {
		assert_int_equal(ks_ctl_read(c, &m, TIMEOUT, &err), 0);
		assert_int_equal(json_integer_value(json_object_get(m, "id")), id);
		assert_true(json_is_boolean(json_object_get(m, "ok")));
		json_decref(m);
	}
	ks_ctl_client_free(c);
}

/* A line of exactly 1 MiB is served; one byte more gets an error and a hang-up. */
static void oversized(void **state)
{
	struct ks_ctl_client *c = client(*state);
	struct ks_error err = { 0 };
	char *big = malloc(KS_CTL_MAX_LINE + 16);
	const char *head = "{\"id\":9,\"cmd\":\"echo\"}";
	json_t *m = NULL;

	memset(big, ' ', KS_CTL_MAX_LINE + 16);
	memcpy(big, head, strlen(head));
	strcpy(big + KS_CTL_MAX_LINE, "\n");
	raw_send(c, big);
	assert_int_equal(ks_ctl_read(c, &m, TIMEOUT, &err), 0);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	strcpy(big + KS_CTL_MAX_LINE, " \n");
	raw_send(c, big);
	expect_error(c, "request line longer than 1 MiB");
	assert_int_equal(ks_ctl_read(c, &m, TIMEOUT, &err), -ECONNRESET);
	free(big);
	ks_ctl_client_free(c);
}

static void wait_closed(struct srv *sv, int n)
{
	for (int i = 0; i < 2000 && __atomic_load_n(&sv->closed, __ATOMIC_SEQ_CST) < n; i++) {
		struct timespec ts = { 0, MS };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(__atomic_load_n(&sv->closed, __ATOMIC_SEQ_CST), n);
}

/* A streaming reply; the client leaves in the middle; the server stops and carries on. */
static void stream_then_disconnect(void **state)
{
	struct srv *sv = *state;
	struct ks_ctl_client *c = client(sv), *d;
	struct ks_error err = { 0 };
	json_t *r = NULL, *m;

	assert_int_equal(ks_ctl_call(c, json_pack("{s:s,s:i}", "cmd", "stream", "id", 77), &r,
				     TIMEOUT, &err), 0);
	json_decref(r);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ks_ctl_read(c, &m, TIMEOUT, &err), 0);
		assert_int_equal(json_integer_value(json_object_get(m, "id")), 77);
		assert_null(json_object_get(m, "ok"));
		assert_string_equal(json_string_value(json_object_get(m, "line")),
				    i ? "line n" : "line 0");
		assert_int_equal(json_integer_value(json_object_get(m, "ts")), i);
		json_decref(m);
	}
	/* A call on a streaming connection: stream lines read meanwhile are kept. */
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s}", "cmd", "sleep"), NULL, TIMEOUT, &err),
			 0);
	assert_int_equal(ks_ctl_read(c, &m, 0, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(m, "ts")), 5);
	json_decref(m);
	ks_ctl_client_free(c);
	wait_closed(sv, 1);
	d = client(sv);
	assert_int_equal(ks_ctl_call(d, json_pack("{s:s}", "cmd", "echo"), NULL, TIMEOUT, &err), 0);
	ks_ctl_client_free(d);
}

/* A client that asks for a flood and never reads is dropped, not buffered without end. */
static void slow_client_dropped(void **state)
{
	struct srv *sv = *state;
	struct ks_ctl_client *c = client(sv), *d;
	struct ks_error err = { 0 };

	raw_send(c, "{\"cmd\":\"flood\"}\n");
	for (int i = 0; i < 5000 && !__atomic_load_n(&sv->flood_rc, __ATOMIC_SEQ_CST); i++) {
		struct timespec ts = { 0, MS };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(__atomic_load_n(&sv->flood_rc, __ATOMIC_SEQ_CST), -ENOBUFS);
	d = client(sv);
	assert_int_equal(ks_ctl_call(d, json_pack("{s:s}", "cmd", "echo"), NULL, TIMEOUT, &err), 0);
	ks_ctl_client_free(d);
	ks_ctl_client_free(c);
}

/* While one client's handler runs the loop, others are served. */
static void concurrent_clients(void **state)
{
	struct srv *sv = *state;
	struct ks_ctl_client *slow = client(sv), *c[20];
	struct ks_error err = { 0 };
	json_t *m;

	raw_send(slow, "{\"id\":1,\"cmd\":\"sleep\"}\n");
	for (int i = 0; i < 20; i++) {
		c[i] = client(sv);
		raw_send(c[i], "{\"id\":1,\"cmd\":\"echo\",\"arg\":1}\n");
	}
	for (int i = 0; i < 20; i++) {
		assert_int_equal(ks_ctl_read(c[i], &m, TIMEOUT, &err), 0);
		assert_true(json_is_true(json_object_get(m, "ok")));
		json_decref(m);
		ks_ctl_client_free(c[i]);
	}
	/* The slow one answers later: its handler was still running. */
	assert_int_equal(ks_ctl_read(slow, &m, 0, &err), -ETIMEDOUT);
	assert_int_equal(ks_ctl_read(slow, &m, TIMEOUT, &err), 0);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	ks_ctl_client_free(slow);
}

/* With deferral on, a request that comes while a handler runs the loop waits for it. */
static void deferred_while_nested(void **state)
{
	struct srv *sv = *state;
	struct ks_ctl_client *slow = client(sv), *c = client(sv);
	struct ks_error err = { 0 };
	json_t *m;

	__atomic_store_n(&sv->defer, 1, __ATOMIC_SEQ_CST);
	raw_send(slow, "{\"id\":1,\"cmd\":\"sleep\"}\n");
	nanosleep(&(struct timespec){ 0, 20 * MS }, NULL);
	raw_send(c, "{\"id\":2,\"cmd\":\"echo\"}\n");
	/* Not answered under the sleeping handler: after it. */
	assert_int_equal(ks_ctl_read(c, &m, 100 * MS, &err), -ETIMEDOUT);
	assert_int_equal(ks_ctl_read(slow, &m, TIMEOUT, &err), 0);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	assert_int_equal(ks_ctl_read(c, &m, TIMEOUT, &err), 0);
	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_int_equal(json_integer_value(json_object_get(m, "id")), 2);
	json_decref(m);
	/* A request that comes alone is answered at once. */
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s}", "cmd", "echo"), NULL, 100 * MS, &err),
			 0);
	ks_ctl_client_free(c);
	ks_ctl_client_free(slow);
}

/* A client that leaves while its handler runs: the server frees it only afterwards. */
static void disconnect_during_handler(void **state)
{
	struct srv *sv = *state;
	struct ks_ctl_client *c = client(sv), *d;
	struct ks_error err = { 0 };

	raw_send(c, "{\"id\":1,\"cmd\":\"sleep\"}\n{\"id\":2,\"cmd\":\"sleep\"}\n");
	ks_ctl_client_free(c);
	d = client(sv);
	assert_int_equal(ks_ctl_call(d, json_pack("{s:s}", "cmd", "sleep"), NULL, TIMEOUT, &err),
			 0);
	ks_ctl_client_free(d);
}

static void connect_errors(void **state)
{
	struct srv *sv = *state;
	struct ks_error err = { 0 };
	struct ks_loop *l = ks_loop_new(NULL);
	char dir[160];

	snprintf(dir, sizeof(dir), "%s/nothing-here", sv->dir);
	assert_null(ks_ctl_connect(dir, 0, &err));
	assert_int_equal(err.code, -ENOENT);
	assert_null(ks_ctl_connect(dir, 30 * MS, &err));
	assert_int_equal(err.code, -ENOENT);
	memset(dir, 'a', sizeof(dir) - 1);
	dir[sizeof(dir) - 1] = 0;
	assert_null(ks_ctl_connect(dir, 0, &err));
	assert_int_equal(err.code, -ENAMETOOLONG);
	/* A second server on the same path is refused, and leaves the first one's socket. */
	assert_null(ks_ctl_server_new(l, sv->path, table, NULL, &err));
	assert_int_equal(err.code, -EADDRINUSE);
	assert_int_equal(access(sv->path, F_OK), 0);
	ks_loop_free(l);
}

/* A server handed a socketpair end, driven by hand in this thread. */
static void attached_socketpair(void **state)
{
	struct ks_loop *l = ks_loop_new(NULL);
	struct ks_error err = { 0 };
	struct ks_ctl_server *s;
	struct ks_ctl_client *c;
	json_t *m = NULL;
	char dir[] = "/tmp/ks-ctl-XXXXXX", path[64];
	int sp[2];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	s = ks_ctl_server_new(l, path, table, NULL, &err);
	assert_non_null(s);
	ks_ctl_server_shutdown(s);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(ks_ctl_server_attach(s, sp[0]), 0);
	c = ks_ctl_client_attach(sp[1], &err);
	assert_int_equal(ks_ctl_server_clients(s), 1);
	raw_send(c, "{\"id\":3,\"cmd\":\"echo\"}\n");
	for (int i = 0; i < 10 && ks_ctl_read(c, &m, 0, &err) != 0; i++)
		ks_loop_run_once(l, 10 * MS);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "id")), 3);
	json_decref(m);
	ks_ctl_client_free(c);
	for (int i = 0; i < 10 && ks_ctl_server_clients(s); i++)
		ks_loop_run_once(l, 10 * MS);
	assert_int_equal(ks_ctl_server_clients(s), 0);
	ks_ctl_server_free(s);
	ks_loop_free(l);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frame_table),
		cmocka_unit_test(rbuf_split_reads),
		cmocka_unit_test_setup_teardown(call_ok, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(call_errors, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(garbage, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(split_and_joined, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(oversized, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(stream_then_disconnect, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(slow_client_dropped, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(concurrent_clients, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(deferred_while_nested, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(disconnect_during_handler, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(connect_errors, srv_setup, srv_teardown),
		cmocka_unit_test(attached_socketpair),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
