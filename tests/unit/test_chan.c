/* test_chan.c: serial channels against a socketpair peer: lines, partials, ring, log, writes. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/chan.h>

#define MS 1000000ll
#define S (1000 * MS)
#define MAX_GOT 64

/* What a line callback saw. */
struct got {
	int n;
	char *text[MAX_GOT];
	size_t len[MAX_GOT];
	unsigned flags[MAX_GOT];
	uint64_t lineno[MAX_GOT], ts[MAX_GOT];
	int closes;
	int close_code;
	int lines_at_close;
};

struct fix {
	struct ks_loop *l;
	struct ks_chan *ch;
	int peer;
	struct got got;
	char dir[32];
	char log[64];
};

static void record(struct ks_chan *ch, const struct ks_chan_line *line, void *data)
{
	struct got *g = data;

	assert_string_equal(line->chan, ks_chan_name(ch));
	assert_int_equal(line->text[line->len], '\0');
	if (g->n == MAX_GOT)
		return;
	g->text[g->n] = malloc(line->len + 1);
	memcpy(g->text[g->n], line->text, line->len + 1);
	g->len[g->n] = line->len;
	g->flags[g->n] = line->flags;
	g->lineno[g->n] = line->lineno;
	g->ts[g->n] = line->ts_ns;
	g->n++;
}

static void on_close(struct ks_chan *ch, const struct ks_error *reason, void *data)
{
	struct got *g = data;

	g->closes++;
	g->close_code = reason->code;
	g->lines_at_close = g->n;
	assert_true(ks_chan_closed(ch));
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct ks_error err = {0};
	int sv[2];

	if (!f || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	strcpy(f->dir, "/tmp/ks-chan-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->log, sizeof(f->log), "%s/test.log", f->dir);
	f->l = ks_loop_new(NULL);
	f->ch = ks_chan_attach(f->l, "test", sv[0], f->log, &err);
	if (!f->ch) {
		print_error("attach: %s\n", err.msg);
		return -1;
	}
	f->peer = sv[1];
	/* Timers only fire where a test asks for them. */
	ks_chan_set_partial_timeout(f->ch, 10 * S);
	ks_chan_on_line(f->ch, record, &f->got);
	ks_chan_on_close(f->ch, on_close, &f->got);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	ks_chan_free(f->ch);
	ks_loop_free(f->l);
	if (f->peer >= 0)
		close(f->peer);
	for (int i = 0; i < f->got.n; i++)
		free(f->got.text[i]);
	unlink(f->log);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void put(struct fix *f, const void *buf, size_t len)
{
	assert_int_equal(write(f->peer, buf, len), (ssize_t)len);
}

static void puts_peer(struct fix *f, const char *s)
{
	put(f, s, strlen(s));
}

/* Runs the loop until n lines have come (or the channel closed and reported it). */
static void run_until(struct fix *f, int n, int64_t timeout_ns)
{
	uint64_t end = ks_loop_now_ns() + (uint64_t)timeout_ns;

	while (f->got.n < n && !f->got.closes && ks_loop_now_ns() < end)
		assert_true(ks_loop_run_once(f->l, 10 * MS) >= 0);
}

/* Runs the loop for about ns, whatever arrives. */
static void run_for(struct fix *f, int64_t ns)
{
	uint64_t end = ks_loop_now_ns() + (uint64_t)ns;

	while (ks_loop_now_ns() < end)
		assert_true(ks_loop_run_once(f->l, 5 * MS) >= 0);
}

static void expect_line(struct fix *f, int i, const char *text, unsigned flags)
{
	assert_true(i < f->got.n);
	assert_int_equal(f->got.len[i], strlen(text));
	assert_memory_equal(f->got.text[i], text, strlen(text));
	assert_int_equal(f->got.flags[i], flags);
	assert_int_equal(f->got.lineno[i], (uint64_t)i + 1);
}

static void split_at_every_byte(void **state)
{
	struct fix *f = *state;
	const char *s = "hello\nworld, again\n";

	for (size_t i = 0; s[i]; i++) {
		put(f, s + i, 1);
		assert_true(ks_loop_run_once(f->l, 100 * MS) >= 0);
	}
	run_until(f, 2, S);
	assert_int_equal(f->got.n, 2);
	expect_line(f, 0, "hello", 0);
	expect_line(f, 1, "world, again", 0);
	assert_true(f->got.ts[1] > f->got.ts[0]);
}

static void joined_lines(void **state)
{
	struct fix *f = *state;
	struct ks_chan_stats st;

	puts_peer(f, "a\nbb\n\nccc\n");
	run_until(f, 4, S);
	assert_int_equal(f->got.n, 4);
	expect_line(f, 0, "a", 0);
	expect_line(f, 1, "bb", 0);
	expect_line(f, 2, "", 0);
	expect_line(f, 3, "ccc", 0);
	/* One read: one arrival time. */
	assert_int_equal(f->got.ts[0], f->got.ts[3]);
	ks_chan_stats(f->ch, &st);
	assert_int_equal(st.bytes_in, 10);
	assert_int_equal(st.lines, 4);
	assert_int_equal(st.partial, 0);
}

static void crlf(void **state)
{
	struct fix *f = *state;

	puts_peer(f, "one\r\ntwo\r\r\n\rthree\nfour\r");
	run_until(f, 3, S);
	puts_peer(f, "\n");
	run_until(f, 4, S);
	assert_int_equal(f->got.n, 4);
	expect_line(f, 0, "one", 0);
	expect_line(f, 1, "two\r", 0);   /* only the last \r goes */
	expect_line(f, 2, "\rthree", 0); /* a leading one stays */
	expect_line(f, 3, "four", 0);    /* \r and \n in different reads */
}

static void long_lines_cut_at_cap(void **state)
{
	struct fix *f = *state;
	static char big[10001];

	memset(big, 'a', sizeof(big) - 1);
	big[10000] = '\n';
	put(f, big, sizeof(big));
	memset(big, 'b', KS_CHAN_LINE_MAX);
	big[KS_CHAN_LINE_MAX] = '\n';
	put(f, big, KS_CHAN_LINE_MAX + 1);   /* exactly at the cap: a whole line */
	run_until(f, 4, S);
	assert_int_equal(f->got.n, 4);
	assert_int_equal(f->got.len[0], KS_CHAN_LINE_MAX);
	assert_int_equal(f->got.flags[0], KS_CHAN_PARTIAL);
	assert_int_equal(f->got.len[1], KS_CHAN_LINE_MAX);
	assert_int_equal(f->got.flags[1], KS_CHAN_PARTIAL | KS_CHAN_CONT);
	assert_int_equal(f->got.len[2], 10000 - 2 * KS_CHAN_LINE_MAX);
	assert_int_equal(f->got.flags[2], KS_CHAN_CONT);
	assert_int_equal(f->got.len[3], KS_CHAN_LINE_MAX);
	assert_int_equal(f->got.flags[3], 0);
	assert_int_equal(f->got.text[3][0], 'b');
	/* A smaller cap applies to the next bytes. */
	assert_int_equal(ks_chan_set_line_max(f->ch, 4), 0);
	assert_int_equal(ks_chan_set_line_max(f->ch, 0), -EINVAL);
	puts_peer(f, "123456789\n");
	run_until(f, 7, S);
	expect_line(f, 4, "1234", KS_CHAN_PARTIAL);
	expect_line(f, 5, "5678", KS_CHAN_PARTIAL | KS_CHAN_CONT);
	expect_line(f, 6, "9", KS_CHAN_CONT);
}

static void partial_flushed_by_timer(void **state)
{
	struct fix *f = *state;
	uint64_t sent;

	assert_int_equal(ks_chan_set_partial_timeout(f->ch, 50 * MS), 0);
	assert_int_equal(ks_chan_set_partial_timeout(f->ch, 0), -EINVAL);
	sent = ks_loop_now_ns();
	puts_peer(f, "login: ");
	run_until(f, 1, 2 * S);
	assert_true(ks_loop_now_ns() - sent >= 50 * MS);
	expect_line(f, 0, "login: ", KS_CHAN_PARTIAL);
	puts_peer(f, "root\n");
	run_until(f, 2, S);
	expect_line(f, 1, "root", KS_CHAN_CONT);
	/* A newline alone after a partial line ends it without an empty line. */
	puts_peer(f, "x");
	run_until(f, 3, 2 * S);
	expect_line(f, 2, "x", KS_CHAN_PARTIAL);
	puts_peer(f, "\r\ny\n");
	run_until(f, 4, S);
	assert_int_equal(f->got.n, 4);
	expect_line(f, 3, "y", 0);
	assert_int_equal(f->got.lineno[3], 4);
}

static void partial_waits_while_bytes_trickle(void **state)
{
	struct fix *f = *state;

	assert_int_equal(ks_chan_set_partial_timeout(f->ch, 100 * MS), 0);
	/* A byte every 30 ms keeps the line open: the timeout counts from the last byte. */
	for (int i = 0; i < 8; i++) {
		puts_peer(f, ".");
		run_for(f, 30 * MS);
	}
	assert_int_equal(f->got.n, 0);
	run_until(f, 1, 2 * S);
	expect_line(f, 0, "........", KS_CHAN_PARTIAL);
}

static void partial_timeout_lowered_while_waiting(void **state)
{
	struct fix *f = *state;
	uint64_t start = ks_loop_now_ns();

	puts_peer(f, "waiting");
	run_for(f, 20 * MS);   /* read, with the 10 s timer armed */
	assert_int_equal(f->got.n, 0);
	assert_int_equal(ks_chan_set_partial_timeout(f->ch, 30 * MS), 0);
	run_until(f, 1, 5 * S);
	expect_line(f, 0, "waiting", KS_CHAN_PARTIAL);
	assert_true(ks_loop_now_ns() - start < 2 * S);
}

static void nul_and_escape_bytes(void **state)
{
	struct fix *f = *state;
	static const char s[] = "a\0b\x1b[1mc\xff\n";

	put(f, s, sizeof(s) - 1);
	run_until(f, 1, S);
	assert_int_equal(f->got.len[0], sizeof(s) - 2);
	assert_memory_equal(f->got.text[0], s, sizeof(s) - 2);
}

static void eof_mid_line(void **state)
{
	struct fix *f = *state;
	uint64_t cursor = 0;

	puts_peer(f, "done\nhalf");
	close(f->peer);
	f->peer = -1;
	run_until(f, 2, S);
	assert_int_equal(f->got.closes, 1);
	assert_int_equal(f->got.close_code, -ECONNRESET);
	assert_int_equal(f->got.lines_at_close, 2);  /* the remainder before the close */
	expect_line(f, 0, "done", 0);
	expect_line(f, 1, "half", KS_CHAN_PARTIAL);
	assert_true(ks_chan_closed(f->ch));
	assert_non_null(strstr(ks_chan_close_reason(f->ch)->msg, "closed by peer"));
	assert_int_equal(ks_chan_write(f->ch, "x", 1), -ENOTCONN);
	assert_int_equal(ks_chan_flush(f->ch, S), 0);
	/* Still in the ring; after it, the end of the channel. */
	assert_int_equal(ks_chan_wait_line(f->ch, "half", 0, &cursor, S, NULL), 0);
	assert_int_equal(cursor, 2);
	assert_int_equal(ks_chan_wait_line(f->ch, "more", 0, &cursor, S, NULL), -ECONNRESET);
	run_for(f, 20 * MS);
	assert_int_equal(f->got.closes, 1);
}

static void many_lines_ring_bounded(void **state)
{
	struct fix *f = *state;
	struct ks_chan_line *tail;
	struct ks_chan_stats st;
	char line[32];
	size_t n, bytes = 0;

	for (int i = 1; i <= 2500; i++) {
		int len = snprintf(line, sizeof(line), "line %d\n", i);

		put(f, line, (size_t)len);
		bytes += (size_t)len;
		/* Give the channel the time to read on, or the socket fills and this writer
		 * blocks. */
		if (i % 100 == 0)
			run_for(f, 2 * MS);
	}
	run_for(f, 50 * MS);
	ks_chan_stats(f->ch, &st);
	assert_int_equal(st.lines, 2500);
	assert_int_equal(st.bytes_in, bytes);
	assert_int_equal(ks_chan_tail(f->ch, 3, &tail, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(tail[0].text, "line 2498");
	assert_string_equal(tail[2].text, "line 2500");
	assert_int_equal(tail[2].lineno, 2500);
	assert_string_equal(tail[1].chan, "test");
	free(tail);
	assert_int_equal(ks_chan_tail(f->ch, 5000, &tail, &n), 0);
	assert_int_equal(n, KS_CHAN_RING_LINES);
	assert_string_equal(tail[0].text, "line 1501");
	free(tail);
	assert_int_equal(ks_chan_set_ring_size(f->ch, 10), 0);
	assert_int_equal(ks_chan_set_ring_size(f->ch, 0), -EINVAL);
	assert_int_equal(ks_chan_tail(f->ch, 100, &tail, &n), 0);
	assert_int_equal(n, 10);
	assert_string_equal(tail[0].text, "line 2491");
	free(tail);
	puts_peer(f, "line 2501\n");
	run_for(f, 20 * MS);
	assert_int_equal(ks_chan_tail(f->ch, 100, &tail, &n), 0);
	assert_int_equal(n, 10);
	assert_string_equal(tail[0].text, "line 2492");
	assert_string_equal(tail[9].text, "line 2501");
	free(tail);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	static char buf[8192];
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void assert_matches(const char *text, const char *re_text)
{
	regex_t re;

	assert_int_equal(regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
	if (regexec(&re, text, 0, NULL, 0) != 0)
		fail_msg("log does not match %s:\n%s", re_text, text);
	regfree(&re);
}

static void log_file_format(void **state)
{
	struct fix *f = *state;
	const char *log;

	puts_peer(f, "first\nsecond\r\n");
	run_until(f, 2, S);
	/* Flushed promptly: already in the file. */
	log = slurp(f->log);
	assert_matches(log, "^# kscope test: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}"
		       "[-+][0-9]{4} opened\n"
		       "\\[ {4}0\\.[0-9]{6}\\] first\n"
		       "\\[ {4}0\\.[0-9]{6}\\] second\n$");
	ks_chan_set_partial_timeout(f->ch, 20 * MS);
	puts_peer(f, "pro");
	run_until(f, 3, S);
	ks_chan_set_partial_timeout(f->ch, 10 * S);
	puts_peer(f, "mpt\nunfinished");
	run_until(f, 4, S);
	/* Freeing logs what is left, and why it ended. */
	ks_chan_free(f->ch);
	f->ch = NULL;
	log = slurp(f->log);
	assert_matches(log, "\n\\[ {4}0\\.[0-9]{6}\\]\\+pro\n"
		       "\\[ {4}0\\.[0-9]{6}\\] mpt\n"
		       "\\[ {4}0\\.[0-9]{6}\\]\\+unfinished\n"
		       "# kscope test: [-0-9T:.+]+ closed: test: channel freed\n$");
	assert_int_equal(f->got.n, 4);  /* no callbacks from the free */
	assert_int_equal(f->got.closes, 0);
}

static void log_appends_and_dump(void **state)
{
	struct fix *f = *state;
	struct ks_error err = {0};
	struct ks_chan *ch;
	char buf[256];
	FILE *mem;
	int sv[2];

	puts_peer(f, "kept\n");
	run_until(f, 1, S);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ch = ks_chan_attach(f->l, "again", sv[0], f->log, &err);
	assert_non_null(ch);
	assert_int_equal(write(sv[1], "new\n", 4), 4);
	assert_int_equal(ks_chan_wait_line(ch, "new", 0, &(uint64_t){0}, S, NULL), 0);
	mem = fmemopen(buf, sizeof(buf), "w");
	assert_int_equal(ks_chan_dump(ch, 10, mem), 0);
	fclose(mem);
	assert_matches(buf, "^again \\[ {4}0\\.[0-9]{6}\\] new\n$");
	ks_chan_free(ch);
	close(sv[1]);
	assert_matches(slurp(f->log), "\\] kept\n(.*\n)*# kscope again: .* opened\n(.*\n)*"
		       "\\[ {4}0\\.[0-9]{6}\\] new\n");
	/* A log that cannot be opened fails the constructor and closes the fd. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_null(ks_chan_attach(f->l, "bad", sv[0], "/nonexistent/dir/x.log", &err));
	assert_int_equal(err.code, -ENOENT);
	assert_int_equal(send(sv[1], "x", 1, MSG_NOSIGNAL), -1);  /* the other end is gone */
	close(sv[1]);
	assert_null(ks_chan_attach(f->l, NULL, -1, NULL, &err));
	assert_int_equal(err.code, -EINVAL);
}

static int id_to_remove;

static void remove_self(struct ks_chan *ch, const struct ks_chan_line *line, void *data)
{
	int *calls = data;

	(void)line;
	(*calls)++;
	assert_int_equal(ks_chan_off_line(ch, id_to_remove), 0);
}

static void callbacks_added_and_removed(void **state)
{
	struct fix *f = *state;
	struct got second = {0};
	int id2, self_calls = 0;

	id2 = ks_chan_on_line(f->ch, record, &second);
	assert_true(id2 > 0);
	id_to_remove = ks_chan_on_line(f->ch, remove_self, &self_calls);
	assert_true(id_to_remove > id2);
	assert_int_equal(ks_chan_on_line(f->ch, NULL, NULL), -EINVAL);
	puts_peer(f, "one\n");
	run_until(f, 1, S);
	assert_int_equal(second.n, 1);
	assert_int_equal(self_calls, 1);
	assert_int_equal(ks_chan_off_line(f->ch, id_to_remove), -ENOENT);
	assert_int_equal(ks_chan_off_line(f->ch, id2), 0);
	assert_int_equal(ks_chan_off_line(f->ch, id2), -ENOENT);
	puts_peer(f, "two\n");
	run_until(f, 2, S);
	assert_int_equal(f->got.n, 2);
	assert_int_equal(second.n, 1);
	assert_int_equal(self_calls, 1);
	free(second.text[0]);
}

struct nested {
	struct fix *f;
	int calls;
	uint64_t order[8];
};

/* Runs the loop from inside a callback, as a QMP call would. */
static void run_loop_inside(struct ks_chan *ch, const struct ks_chan_line *line, void *data)
{
	struct nested *n = data;

	(void)ch;
	n->order[n->calls++] = line->lineno;
	if (line->lineno == 1) {
		puts_peer(n->f, "second\nthird\n");
		assert_int_equal(ks_chan_wait_line(ch, "third", 0, NULL, S, NULL), 0);
		assert_int_equal(n->calls, 1);  /* not delivered meanwhile, but in the ring */
	}
}

static void callback_runs_loop(void **state)
{
	struct fix *f = *state;
	struct nested n = { .f = f };

	ks_chan_on_line(f->ch, run_loop_inside, &n);
	puts_peer(f, "first\n");
	run_until(f, 3, S);
	assert_int_equal(n.calls, 3);
	assert_int_equal(n.order[0], 1);
	assert_int_equal(n.order[1], 2);
	assert_int_equal(n.order[2], 3);
	expect_line(f, 2, "third", 0);
}

static void wait_line_patterns(void **state)
{
	struct fix *f = *state;
	struct ks_chan_line *line;
	uint64_t cursor = 0, start;

	puts_peer(f, "KTAP version 1\n1..2\nok 1 alpha\nok 2 beta\n# Totals: pass:2\n");
	run_until(f, 5, S);
	assert_int_equal(ks_chan_wait_line(f->ch, "ok ", 0, &cursor, S, &line), 0);
	assert_int_equal(cursor, 3);
	assert_string_equal(line->text, "ok 1 alpha");
	assert_string_equal(line->chan, "test");
	free(line);
	assert_int_equal(ks_chan_wait_line(f->ch, "ok ", 0, &cursor, S, NULL), 0);
	assert_int_equal(cursor, 4);
	assert_int_equal(ks_chan_wait_line(f->ch, "^# Totals: pass:[0-9]+$",
					   KS_CHAN_MATCH_REGEX, &cursor, S, NULL), 0);
	assert_int_equal(cursor, 5);
	assert_int_equal(ks_chan_wait_line(f->ch, "(", KS_CHAN_MATCH_REGEX, &cursor, S, NULL),
			 -EINVAL);
	/* Without a cursor only newer lines count. */
	start = ks_loop_now_ns();
	assert_int_equal(ks_chan_wait_line(f->ch, "KTAP", 0, NULL, 50 * MS, NULL), -ETIMEDOUT);
	assert_true(ks_loop_now_ns() - start >= 50 * MS);
	assert_int_equal(cursor, 5);
	/* A regex sees past a NUL (though POSIX's '.' does not match one). */
	put(f, "x\0needle\n", 9);
	assert_int_equal(ks_chan_wait_line(f->ch, "^x[^a-z]needle$", KS_CHAN_MATCH_REGEX,
					   &cursor, S, &line), 0);
	assert_int_equal(line->len, 8);
	free(line);
}

/* Drains the peer's end as the loop runs, like a guest reading its UART. */
static void peer_reader(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	char buf[65536];
	ssize_t n;

	(void)l, (void)events;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		*(size_t *)data += (size_t)n;
}

static void write_to_guest(void **state)
{
	struct fix *f = *state;
	static char big[512 * 1024];
	struct ks_chan_stats st;
	size_t got = 0;
	char buf[16];

	assert_int_equal(ks_chan_write(f->ch, "run all\n", 8), 0);
	assert_int_equal(ks_chan_flush(f->ch, S), 0);
	assert_int_equal(read(f->peer, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "run all\n", 8);
	/* More than the socket holds: queued, and sent as the peer reads. */
	memset(big, 'w', sizeof(big));
	assert_int_equal(ks_chan_write(f->ch, big, sizeof(big)), 0);
	assert_int_equal(ks_chan_write(f->ch, big, sizeof(big)), 0);
	assert_int_equal(ks_chan_write(f->ch, big, sizeof(big)), -ENOBUFS);
	assert_int_equal(ks_chan_flush(f->ch, 20 * MS), -ETIMEDOUT);
	assert_int_equal(fcntl(f->peer, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(ks_loop_add_fd(f->l, f->peer, KS_LOOP_IN, peer_reader, &got), 0);
	assert_int_equal(ks_chan_flush(f->ch, 5 * S), 0);
	run_for(f, 20 * MS);
	assert_int_equal(got, 2 * sizeof(big));
	ks_chan_stats(f->ch, &st);
	assert_int_equal(st.bytes_out, 8 + 2 * sizeof(big));
	ks_loop_del_fd(f->l, f->peer);
	/* Unsent bytes when the peer goes away. */
	shutdown(f->peer, SHUT_RD);
	assert_int_equal(ks_chan_write(f->ch, big, sizeof(big)), 0);
	close(f->peer);
	f->peer = -1;
	assert_int_equal(ks_chan_flush(f->ch, 5 * S), -ECONNRESET);
	assert_true(ks_chan_closed(f->ch));
	assert_int_equal(f->got.closes, 1);
}

struct server {
	int fd;
	char path[64];
};

/* Starts listening on the path when the timer fires, as QEMU does some time after exec. */
static void listen_later(struct ks_loop *l, int64_t id, void *data)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct server *srv = data;

	(void)l, (void)id;
	strcpy(sa.sun_path, srv->path);
	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv->fd >= 0);
	assert_int_equal(bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv->fd, 1), 0);
}

static void connect_retries_until_socket_exists(void **state)
{
	struct fix *f = *state;
	struct server srv = { .fd = -1 };
	struct ks_error err = {0};
	struct ks_chan *ch;
	uint64_t start = ks_loop_now_ns();
	int conn;

	snprintf(srv.path, sizeof(srv.path), "%s/com1.sock", f->dir);
	ks_loop_add_timer(f->l, 100 * MS, 0, listen_later, &srv);
	ch = ks_chan_open(f->l, "console", srv.path, NULL, 5 * S, &err);
	if (!ch)
		fail_msg("open: %s", err.msg);
	assert_true(ks_loop_now_ns() - start >= 100 * MS);
	conn = accept(srv.fd, NULL, NULL);
	assert_true(conn >= 0);
	assert_int_equal(write(conn, "Booting\n", 8), 8);
	assert_int_equal(ks_chan_wait_line(ch, "Booting", 0, &(uint64_t){0}, S, NULL), 0);
	ks_chan_free(ch);
	close(conn);
	close(srv.fd);
	unlink(srv.path);
}

static void connect_times_out(void **state)
{
	struct fix *f = *state;
	struct ks_error err = {0};
	char path[128], longpath[200];
	uint64_t start = ks_loop_now_ns();

	snprintf(path, sizeof(path), "%s/never.sock", f->dir);
	assert_null(ks_chan_open(f->l, "com2", path, NULL, 100 * MS, &err));
	assert_int_equal(err.code, -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "never.sock"));
	assert_true(ks_loop_now_ns() - start >= 100 * MS);
	assert_true(ks_loop_now_ns() - start < 2 * S);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_null(ks_chan_open(f->l, "com2", longpath, NULL, S, &err));
	assert_int_equal(err.code, -ENAMETOOLONG);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(split_at_every_byte),
		T(joined_lines),
		T(crlf),
		T(long_lines_cut_at_cap),
		T(partial_flushed_by_timer),
		T(partial_waits_while_bytes_trickle),
		T(partial_timeout_lowered_while_waiting),
		T(nul_and_escape_bytes),
		T(eof_mid_line),
		T(many_lines_ring_bounded),
		T(log_file_format),
		T(log_appends_and_dump),
		T(callbacks_added_and_removed),
		T(callback_runs_loop),
		T(wait_line_patterns),
		T(write_to_guest),
		T(connect_retries_until_socket_exists),
		T(connect_times_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
