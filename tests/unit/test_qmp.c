/* test_qmp.c: the QMP client against a fake QEMU replaying transcripts over a socketpair. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/qmp.h>

#include "qmp_internal.h"
#include "qmp_peer.h"
#include "test_data.h"

#define MS 1000000ll
#define TIMEOUT (5000 * MS)

#define GREETING \
	"<- {\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " \
	"\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\n" \
	"-> {\"execute\":\"qmp_capabilities\",\"id\":1}\n" \
	"<- {\"return\": {}, \"id\": 1}\n"

static struct ks_qmp *attach(struct peer *p, const char *script, enum peer_mode mode)
{
	struct ks_error err = {0};
	struct ks_qmp *q = ks_qmp_attach(NULL, peer_start(p, script, mode), TIMEOUT, &err);

	if (!q)
		fail_msg("attach: %s", err.msg);
	return q;
}

/* ---- replaying recorded transcripts ---- */

static char *slurp(const char *name)
{
	return test_data_slurp("KSCOPE_QMP_DATA", "tests/data/qmp", name);
}

/* The recorded answer to the command with id in the transcript's lines. */
static json_t *recorded_reply(json_t **lines, int n, json_int_t id)
{
	for (int i = 0; i < n; i++)
		if (json_integer_value(json_object_get(lines[i], "id")) == id &&
		    !json_object_get(lines[i], "execute"))
			return lines[i];
	fail_msg("no recorded reply to id %lld", (long long)id);
	return NULL;
}

static void check_hmp(struct ks_qmp *q, json_t *cmd, json_t *rec)
{
	const char *line = json_string_value(json_object_get(json_object_get(cmd, "arguments"),
							     "command-line"));
	const char *want = json_string_value(json_object_get(rec, "return"));
	struct ks_error err = {0};
	char *out = NULL;
	int r = ks_qmp_hmp(q, line, &out, TIMEOUT, &err);

	char *unix_text = strdup(want), *d = unix_text;

	for (const char *c = want; *c; c++)
		if (!(c[0] == '\r' && c[1] == '\n'))
			*d++ = *c;
	*d = '\0';
	assert_int_equal(r, ks_qmp_hmp_failed(want) ? -EIO : 0);
	assert_string_equal(out, unix_text);
	free(unix_text);
	free(out);
}

static void check_call(struct ks_qmp *q, json_t *cmd, json_t *rec)
{
	const char *name = json_string_value(json_object_get(cmd, "execute"));
	json_t *args = json_object_get(cmd, "arguments"), *reply = NULL, *e;
	struct ks_error err = {0};
	int r;

	if (!strcmp(name, "human-monitor-command")) {
		check_hmp(q, cmd, rec);
		return;
	}
	r = ks_qmp_call(q, name, json_incref(args), &reply, TIMEOUT, &err);
	if ((e = json_object_get(rec, "error"))) {
		const char *cls = json_string_value(json_object_get(e, "class"));

		assert_int_equal(r, strcmp(cls, "CommandNotFound") ? -EIO : -EOPNOTSUPP);
		assert_true(json_equal(reply, e));
		assert_non_null(strstr(err.msg, json_string_value(json_object_get(e, "desc"))));
		assert_non_null(strstr(err.msg, cls));
	} else {
		if (r)
			fail_msg("%s: %s", name, err.msg);
		assert_true(json_equal(reply, json_object_get(rec, "return")));
	}
	json_decref(reply);
}

/* Every event of the transcript, in order, with its data and timestamp. */
static void check_events(struct ks_qmp *q, json_t **lines, int n)
{
	for (int i = 0; i < n; i++) {
		struct ks_qmp_event *ev;
		json_t *data = json_object_get(lines[i], "data");
		json_t *ts = json_object_get(lines[i], "timestamp");

		if (!json_object_get(lines[i], "event"))
			continue;
		assert_int_equal(ks_qmp_next_event(q, &ev, TIMEOUT), 0);
		assert_string_equal(ev->name, json_string_value(json_object_get(lines[i], "event")));
		assert_true(data ? json_equal(ev->data, data) : json_object_size(ev->data) == 0);
		assert_int_equal(ev->ts_us,
				 json_integer_value(json_object_get(ts, "seconds")) * 1000000 +
				 json_integer_value(json_object_get(ts, "microseconds")));
		ks_qmp_event_free(ev);
	}
}

/* Runs the client side of a transcript; returns the client, for more checks. */
static struct ks_qmp *replay(struct peer *p, const char *file, enum peer_mode mode,
			    char **text)
{
	json_t *lines[64];
	int n = 0, ncmds = 0;
	struct ks_qmp *q;

	*text = slurp(file);
	q = attach(p, *text, mode);
	for (char *l = *text; l && *l && n < 64; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, "<- ", 3) || !strncmp(l, "-> ", 3))
			assert_non_null(lines[n++] = json_loadb(l + 3, strcspn(l + 3, "\n"), 0, NULL));
	for (int i = 0; i < n; i++) {
		json_t *id = json_object_get(lines[i], "id");

		/* The first command is qmp_capabilities, sent by ks_qmp_attach(). */
		if (json_object_get(lines[i], "execute") && ncmds++ > 0)
			check_call(q, lines[i], recorded_reply(lines, n, json_integer_value(id)));
	}
	check_events(q, lines, n);
	for (int i = 0; i < n; i++)
		json_decref(lines[i]);
	return q;
}

static const char *const transcripts[] = {
	"status.txt", "stop-cont.txt", "errors.txt", "hmp-info-registers.txt",
	"hmp-savevm.txt", "quit.txt",
};

/* Each transcript in each way of cutting the stream, then the peer's hang-up. */
static void replay_all(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(transcripts) / sizeof(transcripts[0]); i++) {
		for (enum peer_mode m = WHOLE; m <= JOINED; m++) {
			struct peer p;
			struct ks_qmp_event *ev;
			char *text;
			struct ks_qmp *q = replay(&p, transcripts[i], m, &text);

			assert_int_equal(ks_qmp_next_event(q, &ev, TIMEOUT), -ENOTCONN);
			assert_false(ks_qmp_connected(q));
			assert_int_equal(ks_qmp_disconnect_reason(q)->code, -ECONNRESET);
			ks_qmp_free(q);
			peer_join(&p);
			free(text);
		}
	}
}

static void greeting_and_status(void **state)
{
	struct peer p;
	char *text = slurp("status.txt");
	struct ks_qmp *q = attach(&p, text, WHOLE);
	json_t *v = json_object_get(ks_qmp_greeting(q), "version"), *reply;
	struct ks_error err = {0};

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "qemu"), "major")), 7);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, &reply, TIMEOUT, &err), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "status")), "prelaunch");
	assert_false(json_is_true(json_object_get(reply, "running")));
	json_decref(reply);
	ks_qmp_free(q);
	peer_join(&p);
	free(text);
}

static void hmp_info_registers(void **state)
{
	struct peer p;
	char *text = slurp("hmp-info-registers.txt"), *out;
	struct ks_qmp *q = attach(&p, text, BYTES);
	struct ks_error err = {0};

	(void)state;
	assert_int_equal(ks_qmp_hmp(q, "info registers", &out, TIMEOUT, &err), 0);
	assert_non_null(strstr(out, "\nEIP=0000fff0 "));
	assert_non_null(strstr(out, "\nCR0=60000010 "));
	assert_null(strchr(out, '\r'));
	free(out);
	ks_qmp_free(q);
	peer_join(&p);
	free(text);
}

static void hmp_savevm_fails_as_text(void **state)
{
	struct peer p;
	char *text = slurp("hmp-savevm.txt"), *out;
	struct ks_qmp *q = attach(&p, text, WHOLE);
	struct ks_error err = {0};

	(void)state;
	assert_int_equal(ks_qmp_hmp(q, "savevm snap1", &out, TIMEOUT, &err), -EIO);
	assert_int_equal(err.code, -EIO);
	assert_non_null(strstr(err.msg, "savevm snap1"));
	assert_non_null(strstr(err.msg, "Error: no block device can store vmstate"));
	assert_string_equal(out, "Error: no block device can store vmstate for snapshot\n");
	free(out);
	assert_int_equal(ks_qmp_hmp(q, "info status", NULL, TIMEOUT, &err), 0);
	ks_qmp_free(q);
	peer_join(&p);
	free(text);
}

/* ---- broken peers ---- */

#define QUERY_STATUS "-> {\"execute\":\"query-status\",\"id\":2}\n"

static const struct {
	const char *what;
	const char *script;  /* after GREETING and QUERY_STATUS */
	int code;
	const char *phrase;
} broken[] = {
	{ "malformed", "<- {\"return\": {\"status\": \n!wait", -EPROTO, "malformed JSON" },
	{ "two on a line", "<- {\"return\": {}, \"id\": 2} {}\n!wait", -EPROTO, "malformed JSON" },
	{ "array", "<- [1, 2, 3]\n!wait", -EPROTO, "an array, not an object" },
	{ "number", "<- 42\n!wait", -EPROTO, "a number, not an object" },
	{ "not QMP", "<- {\"foo\": 1}\n!wait", -EPROTO, "none of the members" },
	{ "error without desc", "<- {\"error\": {\"class\": \"GenericError\"}, \"id\": 2}\n!wait",
	  -EPROTO, "class and desc" },
	{ "bad event", "<- {\"event\": 7}\n!wait", -EPROTO, "event whose name" },
	{ "truncated", "<~ {\"return\": {\"sta\n!close", -ECONNRESET, "middle of a message" },
	{ "closed", "!close", -ECONNRESET, "closed by peer" },
	{ "oversized", "!big 17000000\n!wait", -EPROTO, "longer than 16777216 bytes" },
};

static void broken_replies(void **state)
{
	char script[512];

	(void)state;
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		for (enum peer_mode m = WHOLE; m <= BYTES; m++) {
			struct peer p;
			struct ks_qmp *q;
			struct ks_error err = {0}, err2 = {0};
			json_t *reply = json_null();

			snprintf(script, sizeof(script), GREETING QUERY_STATUS "%s\n", broken[i].script);
			q = attach(&p, script, m);
			assert_int_equal(ks_qmp_call(q, "query-status", NULL, &reply, TIMEOUT, &err),
					 broken[i].code);
			assert_null(reply);
			if (!strstr(err.msg, broken[i].phrase))
				fail_msg("%s: error \"%s\" lacks \"%s\"", broken[i].what, err.msg,
					 broken[i].phrase);
			assert_non_null(strstr(err.msg, "query-status"));
			assert_false(ks_qmp_connected(q));
			assert_int_equal(ks_qmp_disconnect_reason(q)->code, broken[i].code);
			/* Remembered: later calls fail at once, saying why. */
			assert_int_equal(ks_qmp_call(q, "cont", NULL, NULL, TIMEOUT, &err2), -ENOTCONN);
			assert_non_null(strstr(err2.msg, broken[i].phrase));
			ks_qmp_free(q);
			peer_join(&p);
		}
	}
}

static void bad_greetings(void **state)
{
	static const struct {
		const char *script;
		int code;
		const char *phrase;
	} cases[] = {
		{ "!wait", -ETIMEDOUT, "greeting" },
		{ "!close", -ECONNRESET, "closed by peer" },
		{ "<- {\"return\": {}}\n!wait", -EPROTO, "expected the QMP greeting" },
		{ "<- {\"QMP\": 1}\n!wait", -EPROTO, "greeting whose" },
		{ "<- {\"QMP\": {}}\n-> {\"execute\":\"qmp_capabilities\",\"id\":1}\n"
		  "<- {\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 1}\n!wait",
		  -EIO, "qmp_capabilities: GenericError: no" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct peer p;
		struct ks_error err = {0};
		uint64_t t0 = ks_loop_now_ns();
		struct ks_qmp *q = ks_qmp_attach(NULL, peer_start(&p, cases[i].script, WHOLE),
						 200 * MS, &err);

		assert_null(q);
		assert_int_equal(err.code, cases[i].code);
		if (!strstr(err.msg, cases[i].phrase))
			fail_msg("error \"%s\" lacks \"%s\"", err.msg, cases[i].phrase);
		assert_true(ks_loop_now_ns() - t0 < 2000 * MS);
		peer_join(&p);
	}
}

/* A reply that comes after its call gave up must not be taken for the next one's. */
static void timeout_then_late_reply(void **state)
{
	static const char script[] = GREETING QUERY_STATUS
		"!sleep 300\n"
		"<- {\"return\": {\"late\": true}, \"id\": 2}\n"
		"-> {\"execute\":\"query-name\",\"id\":3}\n"
		"<- {\"return\": {\"name\": \"vm\"}, \"id\": 3}\n"
		"!wait\n";
	struct peer p;
	struct ks_qmp *q = attach(&p, script, WHOLE);
	struct ks_error err = {0};
	json_t *reply = NULL;
	uint64_t t0 = ks_loop_now_ns();

	(void)state;
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, &reply, 100 * MS, &err), -ETIMEDOUT);
	assert_true(ks_loop_now_ns() - t0 >= 100 * MS);
	assert_true(ks_loop_now_ns() - t0 < 2000 * MS);
	assert_non_null(strstr(err.msg, "query-status"));
	assert_true(ks_qmp_connected(q));
	assert_int_equal(ks_qmp_call(q, "query-name", NULL, &reply, TIMEOUT, &err), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "name")), "vm");
	json_decref(reply);
	ks_qmp_free(q);
	peer_join(&p);
}

static void on_tick(struct ks_loop *l, int64_t id, void *data)
{
	(void)l, (void)id;
	(*(int *)data)++;
}

/* While a call waits, the caller's loop keeps running its other work. */
static void call_runs_the_loop(void **state)
{
	static const char script[] = GREETING QUERY_STATUS
		"!sleep 200\n<- {\"return\": {}, \"id\": 2}\n!wait\n";
	struct ks_loop *l = ks_loop_new(NULL);
	struct peer p;
	struct ks_error err = {0};
	struct ks_qmp *q = ks_qmp_attach(l, peer_start(&p, script, WHOLE), TIMEOUT, &err);
	int ticks = 0;

	(void)state;
	assert_non_null(q);
	assert_ptr_equal(ks_qmp_loop(q), l);
	assert_true(ks_loop_add_timer(l, 10 * MS, 20 * MS, on_tick, &ticks) > 0);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, NULL, TIMEOUT, &err), 0);
	assert_true(ticks >= 3);
	ks_qmp_free(q);
	peer_join(&p);
	ks_loop_free(l);
}

/* ---- asynchronous commands and events ---- */

struct log {
	char entries[16][300];
	int n;
	int status[16];
};

static void on_reply(struct ks_qmp *q, int status, json_t *reply, const struct ks_error *err,
		     void *data)
{
	struct log *lg = data;
	char *s = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	(void)q;
	lg->status[lg->n] = status;
	snprintf(lg->entries[lg->n++], sizeof(lg->entries[0]), "%s", status < 0 && !reply ? err->msg : s);
	free(s);
}

static void on_event(struct ks_qmp *q, const struct ks_qmp_event *ev, void *data)
{
	struct log *lg = data;

	(void)q;
	lg->status[lg->n] = 1;
	snprintf(lg->entries[lg->n++], sizeof(lg->entries[0]), "%s@%lld", ev->name, (long long)ev->ts_us);
}

static void run_until(struct ks_qmp *q, struct log *lg, int n)
{
	uint64_t t0 = ks_loop_now_ns();

	while (lg->n < n && ks_loop_now_ns() - t0 < TIMEOUT)
		assert_true(ks_loop_run_once(ks_qmp_loop(q), 100 * MS) >= 0);
	assert_int_equal(lg->n, n);
}

static void interleaved_async(void **state)
{
	static const char script[] = GREETING QUERY_STATUS
		"-> {\"execute\":\"query-name\",\"id\":3}\n"
		"-> {\"execute\":\"stop\",\"id\":4}\n"
		"<- {\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n"
		"<- {\"return\": {\"name\": \"vm\"}, \"id\": 3}\n"
		"<- {\"return\": {}, \"id\": 99}\n"
		"<- {\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 3}}\n"
		"<- {\"return\": {\"status\": \"running\"}, \"id\": 2}\n"
		"<- {\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n"
		"!wait\n";
	static const char *const want[] = {
		"STOP@1000002", "{\"name\":\"vm\"}", "RESUME@1000003", "{\"status\":\"running\"}",
		"{\"class\":\"GenericError\",\"desc\":\"JSON parse error\"}",
	};

	for (enum peer_mode m = WHOLE; m <= JOINED; m++) {
		struct peer p;
		struct ks_qmp *q = attach(&p, script, m);
		struct log lg = {0};

		(void)state;
		ks_qmp_on_event(q, on_event, &lg);
		assert_int_equal(ks_qmp_call_async(q, "query-status", NULL, on_reply, &lg), 2);
		assert_int_equal(ks_qmp_call_async(q, "query-name", NULL, on_reply, &lg), 3);
		assert_int_equal(ks_qmp_call_async(q, "stop", NULL, on_reply, &lg), 4);
		run_until(q, &lg, 5);
		for (int i = 0; i < 5; i++)
			assert_string_equal(lg.entries[i], want[i]);
		/* A reply without id answers the oldest pending command. */
		assert_int_equal(lg.status[4], -EIO);
		ks_qmp_free(q);
		peer_join(&p);
	}
}

static void cancel_and_hangup_fail_pending(void **state)
{
	static const char script[] = GREETING QUERY_STATUS
		"-> {\"execute\":\"query-name\",\"id\":3}\n"
		"-> {\"execute\":\"cont\",\"id\":4}\n"
		"<- {\"return\": {}, \"id\": 2}\n"
		"!close\n";
	struct peer p;
	struct ks_qmp *q = attach(&p, script, WHOLE);
	struct log lg = {0};

	(void)state;
	assert_int_equal(ks_qmp_call_async(q, "query-status", NULL, on_reply, &lg), 2);
	assert_int_equal(ks_qmp_call_async(q, "query-name", NULL, on_reply, &lg), 3);
	assert_int_equal(ks_qmp_call_async(q, "cont", NULL, on_reply, &lg), 4);
	assert_int_equal(ks_qmp_cancel(q, 2), 0);
	assert_int_equal(ks_qmp_cancel(q, 2), -ENOENT);
	run_until(q, &lg, 2);
	assert_int_equal(lg.status[0], -ECONNRESET);
	assert_int_equal(lg.status[1], -ECONNRESET);
	assert_non_null(strstr(lg.entries[0], "query-name"));
	assert_non_null(strstr(lg.entries[1], "cont"));
	assert_int_equal(ks_qmp_call_async(q, "cont", NULL, on_reply, &lg), -ENOTCONN);
	assert_int_equal(ks_qmp_call_async(q, "cont", json_array(), on_reply, &lg), -EINVAL);
	ks_qmp_free(q);
	peer_join(&p);
}

static void events_queued_in_order(void **state)
{
	static const char script[] = GREETING QUERY_STATUS
		"<- {\"event\": \"STOP\", \"timestamp\": {\"seconds\": 5, \"microseconds\": 1}}\n"
		"<- {\"event\": \"RESET\", \"data\": {\"guest\": true, \"reason\": \"guest-reset\"}, "
		"\"timestamp\": {\"seconds\": 5, \"microseconds\": 2}}\n"
		"<- {\"event\": \"RESUME\"}\n"
		"<- {\"return\": {}, \"id\": 2}\n"
		"!wait\n";
	struct peer p;
	struct ks_qmp *q = attach(&p, script, JOINED);
	struct ks_qmp_event *ev;

	(void)state;
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, NULL, TIMEOUT, NULL), 0);
	assert_int_equal(ks_qmp_wait_event(q, "RESUME", &ev, 0), 0);
	assert_int_equal(ev->ts_us, -1);
	assert_int_equal(json_object_size(ev->data), 0);
	ks_qmp_event_free(ev);
	assert_int_equal(ks_qmp_next_event(q, &ev, 0), 0);
	assert_string_equal(ev->name, "STOP");
	assert_int_equal(ev->ts_us, 5000001);
	assert_true(ev->recv_ns > 0 && ev->recv_ns <= ks_loop_now_ns());
	ks_qmp_event_free(ev);
	assert_int_equal(ks_qmp_next_event(q, &ev, 0), 0);
	assert_string_equal(ev->name, "RESET");
	assert_string_equal(json_string_value(json_object_get(ev->data, "reason")), "guest-reset");
	ks_qmp_event_free(ev);
	assert_int_equal(ks_qmp_next_event(q, &ev, 50 * MS), -ETIMEDOUT);
	assert_null(ev);
	assert_int_equal(ks_qmp_wait_event(q, "SHUTDOWN", NULL, 50 * MS), -ETIMEDOUT);
	ks_qmp_free(q);
	peer_join(&p);
}

static void debug_traffic(void **state)
{
	static const char script[] = GREETING QUERY_STATUS "<- {\"return\": {}, \"id\": 2}\n!wait\n";
	struct peer p;
	char *buf = NULL, log[4096] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	FILE *tmp = tmpfile();
	int saved = dup(2);
	struct ks_qmp *q;

	(void)state;
	/* KSCOPE_QMP_DEBUG=1 copies the handshake to stderr... */
	setenv("KSCOPE_QMP_DEBUG", "1", 1);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	q = attach(&p, script, WHOLE);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unsetenv("KSCOPE_QMP_DEBUG");
	rewind(tmp);
	log[fread(log, 1, sizeof(log) - 1, tmp)] = '\0';
	fclose(tmp);
	assert_non_null(strstr(log, "qmp <- {\"QMP\": {\"version\""));
	assert_non_null(strstr(log, "qmp -> {\"execute\":\"qmp_capabilities\",\"id\":1}\n"));
	/* ...and ks_qmp_set_debug() sends it elsewhere. */
	ks_qmp_set_debug(q, f);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, NULL, TIMEOUT, NULL), 0);
	ks_qmp_set_debug(q, NULL);
	fclose(f);
	assert_string_equal(buf, "qmp -> {\"execute\":\"query-status\",\"id\":2}\n"
			    "qmp <- {\"return\": {}, \"id\": 2}\n");
	free(buf);
	ks_qmp_free(q);
	peer_join(&p);
}

/* ---- connecting by path ---- */

struct late_server {
	char path[108];
	struct peer p;
	pthread_t thread;
};

static void *serve_late(void *arg)
{
	struct late_server *s = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* QEMU creates its socket a while after it starts. */
	usleep(200000);
	strcpy(sa.sun_path, s->path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		return NULL;
	s->p.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	return s->p.fd < 0 ? NULL : peer_main(&s->p);
}

static void connect_waits_for_socket(void **state)
{
	struct late_server s = {0};
	struct ks_error err = {0};
	struct ks_qmp *q;
	char dir[] = "/tmp/ks-qmp-XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(s.path, sizeof(s.path), "%s/qmp.sock", dir);
	s.p.script = GREETING QUERY_STATUS "<- {\"return\": {\"status\": \"running\"}, \"id\": 2}\n!wait";
	assert_int_equal(pthread_create(&s.thread, NULL, serve_late, &s), 0);
	q = ks_qmp_connect(NULL, s.path, TIMEOUT, &err);
	if (!q)
		fail_msg("connect: %s", err.msg);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, NULL, TIMEOUT, &err), 0);
	ks_qmp_free(q);
	pthread_join(s.thread, NULL);
	assert_string_equal(s.p.failure, "");
	unlink(s.path);
	rmdir(dir);
}

static void connect_failures(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ks_error err = {0};
	char dir[] = "/tmp/ks-qmp-XXXXXX", path[300];
	uint64_t t0;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/none.sock", dir);
	t0 = ks_loop_now_ns();
	assert_null(ks_qmp_connect(NULL, path, 150 * MS, &err));
	assert_int_equal(err.code, -ETIMEDOUT);
	assert_non_null(strstr(err.msg, path));
	assert_true(ks_loop_now_ns() - t0 >= 150 * MS);
	assert_true(ks_loop_now_ns() - t0 < 2000 * MS);
	/* A socket file nobody listens on (a dead QEMU's) is waited out the same way. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_null(ks_qmp_connect(NULL, path, 50 * MS, &err));
	assert_int_equal(err.code, -ETIMEDOUT);
	unlink(path);
	memset(path, 'a', 200);
	path[200] = '\0';
	assert_null(ks_qmp_connect(NULL, path, 50 * MS, &err));
	assert_int_equal(err.code, -ENAMETOOLONG);
	rmdir(dir);
}

/* ---- the pure parts ---- */

static void parse_lines(void **state)
{
	static const struct {
		const char *line;
		int kind;  /* -1: rejected */
		const char *phrase;
	} cases[] = {
		{ "{\"QMP\": {\"version\": {}, \"capabilities\": []}}", KS_QMP_GREETING, NULL },
		{ "{\"return\": {}, \"id\": 7}\r", KS_QMP_RETURN, NULL },
		{ "  {\"return\": \"text\"}  ", KS_QMP_RETURN, NULL },
		{ "{\"id\": 3, \"error\": {\"class\": \"C\", \"desc\": \"D\"}}", KS_QMP_ERROR, NULL },
		{ "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 2, \"microseconds\": 5}}",
		  KS_QMP_EVENT, NULL },
		{ "", -1, "malformed JSON" },
		{ "{\"return\": ", -1, "malformed JSON" },
		{ "{\"return\": {}} {}", -1, "malformed JSON" },
		{ "{'return': {}}", -1, "malformed JSON" },
		{ "[]", -1, "an array, not an object" },
		{ "\"hello\"", -1, "a string, not an object" },
		{ "null", -1, "null, not an object" },
		{ "{}", -1, "none of the members" },
		{ "{\"QMP\": []}", -1, "greeting whose" },
		{ "{\"event\": null}", -1, "event whose name" },
		{ "{\"error\": \"bad\"}", -1, "class and desc" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ks_qmp_msg m;
		struct ks_error err = {0};
		int r = ks_qmp_parse_line(cases[i].line, strlen(cases[i].line), &m, &err);

		if (cases[i].kind < 0) {
			assert_int_equal(r, -EPROTO);
			assert_null(m.obj);
			if (!strstr(err.msg, cases[i].phrase))
				fail_msg("'%s': \"%s\" lacks \"%s\"", cases[i].line, err.msg,
					 cases[i].phrase);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(m.kind, cases[i].kind);
		ks_qmp_msg_clear(&m);
	}
}

static void parse_fields(void **state)
{
	static const char ev[] = "{\"event\": \"RESET\", \"data\": {\"guest\": true}, "
				 "\"timestamp\": {\"seconds\": 3, \"microseconds\": 4}}";
	static const char er[] = "{\"id\": 9, \"error\": {\"class\": \"GenericError\", "
				 "\"desc\": \"nope\"}}";
	struct ks_qmp_msg m;

	(void)state;
	assert_int_equal(ks_qmp_parse_line(ev, sizeof(ev) - 1, &m, NULL), 0);
	assert_string_equal(m.event, "RESET");
	assert_int_equal(m.ts_us, 3000004);
	assert_true(json_is_true(json_object_get(m.body, "guest")));
	assert_null(m.id);
	ks_qmp_msg_clear(&m);
	assert_int_equal(ks_qmp_parse_line(er, sizeof(er) - 1, &m, NULL), 0);
	assert_string_equal(m.err_class, "GenericError");
	assert_string_equal(m.err_desc, "nope");
	assert_int_equal(json_integer_value(m.id), 9);
	ks_qmp_msg_clear(&m);
}

static void hmp_failure_rule(void **state)
{
	/* Outputs seen from QEMU 7.2's HMP, and whether the command failed. */
	static const struct {
		const char *out;
		bool failed;
	} cases[] = {
		{ "Error: no block device can store vmstate for snapshot\r\n", true },
		{ "unknown command: 'foo'\r\n", true },
		{ "invalid CPU index\r\n", true },
		{ "invalid parameter: zzz\r\n", true },
		{ "invalid char 'n' in expression\r\nTry \"help pmemsave\" for more information\r\n",
		  true },
		{ "unexpected end of expression\r\nTry \"help x\" for more information\r\n", true },
		{ "registers: unsupported option -z\r\nTry \"help info registers\" for more "
		  "information\r\n", true },
		{ "Device 'nothere' not found\r\n", true },
		{ "'bogus:x' is not a valid char driver\r\nCould not open gdbserver on device "
		  "'bogus:x'\r\n", true },
		{ "no block device can store vmstate for snapshot\r\n", true },
		{ "000fffffffffffff: Cannot access memory\r\n", true },
		{ "", false },
		{ "VM status: paused (prelaunch)\r\n", false },
		{ "\r\nCPU#0\r\nEAX=00000000 EBX=00000000 ECX=00000000 EDX=00060fb1\r\n", false },
		{ "0000000000000000: 0xf00004f0 0xf00004f0 0xf00004f0 0xf00004f0\r\n", false },
		{ "0x00000000:  00 00                    addb     %al, (%bx, %si)\r\n", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (ks_qmp_hmp_failed(cases[i].out) != cases[i].failed)
			fail_msg("'%s' should %scount as a failure", cases[i].out,
				 cases[i].failed ? "" : "not ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_lines),
		cmocka_unit_test(parse_fields),
		cmocka_unit_test(hmp_failure_rule),
		cmocka_unit_test(replay_all),
		cmocka_unit_test(greeting_and_status),
		cmocka_unit_test(hmp_info_registers),
		cmocka_unit_test(hmp_savevm_fails_as_text),
		cmocka_unit_test(broken_replies),
		cmocka_unit_test(bad_greetings),
		cmocka_unit_test(timeout_then_late_reply),
		cmocka_unit_test(call_runs_the_loop),
		cmocka_unit_test(interleaved_async),
		cmocka_unit_test(cancel_and_hangup_fail_pending),
		cmocka_unit_test(events_queued_in_order),
		cmocka_unit_test(debug_traffic),
		cmocka_unit_test(connect_waits_for_socket),
		cmocka_unit_test(connect_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
