/* test_dashboard.c: kscope watch and kscope run --dashboard on the demo kernel, read over plain sockets as a page would. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "kscope_run.h"
#include "vmboot.h"

#define HANG "kt.filter=example_crash.hang"  /* one case that spins on CPU 0: stays up */
#define TOKEN_LEN 32

struct fx {
	char dir[64];            /* this test's KSCOPE_RUNDIR, also its scratch directory */
	char out[128];           /* the background kscope's stdout and stderr */
	char logs[128];
	char path[160];          /* scratch */
	pid_t bg;                /* a background kscope (watch, run), or 0 */
	pid_t events;            /* a background kscope events, or 0 */
	int pty;                 /* the master of its terminal, or -1 */
	const char *vm;          /* a VM to destroy at the end, or NULL */
	unsigned port;
	char token[TOKEN_LEN + 1];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || kscope_rundir_new(f->dir, sizeof(f->dir), "kdash") < 0) {
		free(f);
		return -1;
	}
	snprintf(f->out, sizeof(f->out), "%s/bg.out", f->dir);
	snprintf(f->logs, sizeof(f->logs), "%s/logs", f->dir);
	f->pty = -1;
	*state = f;
	return 0;
}

/* Whatever a failed test left: the background kscope, the VM, the runtime directory. */
static int teardown(void **state)
{
	struct fx *f = *state;
	struct kres r;
	int rc;

	if (f->bg > 0) {
		kill(f->bg, SIGKILL);
		waitpid(f->bg, NULL, 0);
	}
	if (f->events > 0) {
		kill(f->events, SIGKILL);
		waitpid(f->events, NULL, 0);
	}
	if (f->vm) {
		kscope(&r, "vm", "destroy", f->vm, NULL);
		kres_free(&r);
	}
	if (f->pty >= 0)
		close(f->pty);
	rc = kscope_rundir_cleanup(f->dir);
	free(f);
	return rc;
}

static void need_qemu(void)
{
	if (!vm_have_qemu())
		skip(); /* the only reason a VM test may skip */
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n = fp ? fread(buf, 1, (1 << 20) - 1, fp) : 0;

	buf[n] = 0;
	if (fp)
		fclose(fp);
	return buf;
}

/* Waits at most timeout_s for needle in the background kscope's output; returns it. */
static char *wait_output(struct fx *f, const char *needle, double timeout_s)
{
	double end = now_s() + timeout_s;
	char *text;

	for (;;) {
		text = slurp(f->out);
		if (strstr(text, needle))
			return text;
		if (now_s() > end)
			fail_msg("no '%s' in the output of kscope:\n%s", needle, text);
		free(text);
		sleep_ms(50);
	}
}

/* Waits at most 30 s for needle in the file at path. */
static void wait_file(const char *path, const char *needle)
{
	double end = now_s() + 30;
	char *text;

	while ((text = slurp(path)), !strstr(text, needle)) {
		if (now_s() > end)
			fail_msg("no '%s' in %s:\n%s", needle, path, text);
		free(text);
		sleep_ms(50);
	}
	free(text);
}

/* The port and token of "kscope: dashboard at http://127.0.0.1:PORT/?token=TOKEN". */
static void wait_url(struct fx *f)
{
	char *text = wait_output(f, "kscope: dashboard at ", 60);
	const char *at = strstr(text, "kscope: dashboard at ");

	if (sscanf(at, "kscope: dashboard at http://127.0.0.1:%u/?token=%32[0-9a-f]", &f->port,
		   f->token) != 2 || strlen(f->token) != TOKEN_LEN)
		fail_msg("no URL in: %s", at);
	free(text);
}

/* ---- a plain HTTP client ---- */

static int tcp_connect(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail_msg("cannot connect to 127.0.0.1:%u: %s", port, strerror(errno));
	return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n <= 0)
			fail_msg("send: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
}

/* Appends what fd gives to *buf until needle is in it, EOF, or timeout_s. True if found. */
static bool read_until(int fd, char **buf, size_t *len, const char *needle, double timeout_s)
{
	double end = now_s() + timeout_s;

	while (!(needle && strstr(*buf, needle))) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double left = end - now_s();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			return false;
		*buf = realloc(*buf, *len + 65536 + 1);
		if ((n = read(fd, *buf + *len, 65536)) <= 0)
			return needle == NULL;
		(*buf)[*len += (size_t)n] = 0;
	}
	return true;
}

/* One request; the answer's JSON, with its status checked. */
static json_t *api(struct fx *f, const char *method, const char *target, bool token,
		   const char *body, int want)
{
	int fd = tcp_connect(f->port), status = 0;
	char head[1024], *buf = calloc(1, 1);
	size_t len = 0;
	const char *payload;
	json_t *j;

	snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
		 "Connection: close\r\n%s%s%sContent-Length: %zu\r\n\r\n%s", method, target,
		 f->port, token ? "X-Kscope-Token: " : "", token ? f->token : "",
		 token ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
	send_all(fd, head, strlen(head));
	read_until(fd, &buf, &len, NULL, 60);
	close(fd);
	sscanf(buf, "HTTP/1.1 %d", &status);
	payload = strstr(buf, "\r\n\r\n");
	j = payload ? json_loads(payload + 4, JSON_DECODE_ANY, NULL) : NULL;
	if (status != want || !j)
		fail_msg("%s %s: status %d (not %d) or not JSON:\n%s", method, target, status, want,
			 buf);
	free(buf);
	return j;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* The state of VM 1 as /api/vms says. */
static char *vm_state(struct fx *f)
{
	json_t *vms = api(f, "GET", "/api/vms", false, NULL, 200);
	char *s = strdup(str(json_array_get(vms, 0), "state"));

	json_decref(vms);
	return s;
}

/* The status of case suite.name in /api/tests, "" when it is not there. */
static char *case_status(struct fx *f, const char *suite, const char *name)
{
	json_t *t = api(f, "GET", "/api/tests", false, NULL, 200), *s, *c;
	char *out = strdup("");
	size_t i, j;

	json_array_foreach(json_object_get(t, "suites"), i, s)
		json_array_foreach(json_object_get(s, "cases"), j, c)
			if (!strcmp(str(c, "suite"), suite) && !strcmp(str(c, "name"), name)) {
				free(out);
				out = strdup(str(c, "status"));
			}
	json_decref(t);
	return out;
}

/* An open event stream and what it gave so far. */
struct sse {
	int fd;
	char *buf;
	size_t len;
};

static void sse_open(struct fx *f, struct sse *s)
{
	char head[256];

	s->fd = tcp_connect(f->port);
	s->buf = calloc(1, 1);
	s->len = 0;
	snprintf(head, sizeof(head), "GET /api/events HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n\r\n",
		 f->port);
	send_all(s->fd, head, strlen(head));
}

static void sse_wait(struct sse *s, const char *needle, double timeout_s)
{
	if (!read_until(s->fd, &s->buf, &s->len, needle, timeout_s))
		fail_msg("no '%s' in the event stream after %g s:\n%.4000s", needle, timeout_s,
			 s->buf);
}

static void sse_close(struct sse *s)
{
	close(s->fd);
	free(s->buf);
}

/* Calls fn(name, data) for each event of the stream's text, in order. */
static void sse_each(const char *text, void (*fn)(const char *name, json_t *data, void *arg),
		     void *arg)
{
	for (const char *p = strstr(text, "event: "); p; p = strstr(p + 1, "\nevent: ")) {
		char name[32] = "";
		const char *data;
		json_t *j;

		if (*p == '\n')
			p++;
		sscanf(p, "event: %31s", name);
		if (!(data = strstr(p, "\ndata: ")))
			break;
		j = json_loadb(data + 7, strcspn(data + 7, "\n"), 0, NULL);
		fn(name, j, arg);
		json_decref(j);
	}
}

/* ---- kscope watch ---- */

static void start_vm(struct fx *f, const char *name)
{
	const char *kernel = getenv("KSCOPE_DEMO_KERNEL");
	struct kres r;

	f->vm = name;
	if (kscope(&r, "vm", "start", name, "--kernel", kernel, "--accel", "tcg", "--cpus", "2",
		   "--append", HANG, "--paused", NULL) != 0)
		fail_msg("kscope vm start %s: %s", name, r.err);
	kres_free(&r);
}

static void start_watch(struct fx *f, const char *name)
{
	f->bg = kscope_spawn((const char *const[]){ "watch", name, "--port", "0", NULL }, f->out);
	wait_url(f);
}

/* The first state, whole, and every vCPU's registers. */
static void check_first_reads(struct fx *f)
{
	json_t *j = api(f, "GET", "/api/info", false, NULL, 200), *cpus;

	assert_string_equal(str(j, "mode"), "watch");
	assert_true(json_is_true(json_object_get(j, "controls")));
	assert_true(json_is_null(json_object_get(j, "events_why")));
	assert_string_equal(str(json_array_get(json_object_get(j, "vms"), 0), "name"), "dash");
	json_decref(j);
	j = api(f, "GET", "/api/vms", false, NULL, 200);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(str(json_array_get(j, 0), "state"), "paused");
	assert_string_equal(str(json_array_get(j, 0), "accel"), "tcg");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "cpus")), 2);
	json_decref(j);
	j = api(f, "GET", "/api/regs?vm=1", false, NULL, 200);
	cpus = json_object_get(j, "cpus");
	assert_int_equal(json_array_size(cpus), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(json_integer_value(json_object_get(json_array_get(cpus, i), "cpu")),
				 i);
		assert_non_null(json_object_get(json_object_get(json_array_get(cpus, i), "regs"),
						"rip"));
	}
	json_decref(j);
}

static void wait_case(struct fx *f, const char *suite, const char *name, const char *want)
{
	double end = now_s() + 90;
	char *s;

	while ((s = case_status(f, suite, name)), strcmp(s, want) && now_s() < end) {
		free(s);
		sleep_ms(100);
	}
	if (strcmp(s, want))
		fail_msg("%s.%s is '%s', not %s", suite, name, s, want);
	free(s);
}

static void check_vm_status(const char *name, const char *want)
{
	struct kres r;

	assert_int_equal(kscope(&r, "vm", "status", name, NULL), 0);
	if (!strstr(r.out, want))
		fail_msg("kscope vm status %s does not say '%s':\n%s", name, want, r.out);
	kres_free(&r);
}

/* /api/memory gives the bytes kscope peek gives. */
static void check_memory(struct fx *f, const char *name)
{
	json_t *m = api(f, "GET", "/api/memory?vm=1&addr=kt_state&len=64", false, NULL, 200);
	struct kres r;
	json_t *p;

	assert_int_equal(kscope(&r, "peek", name, "kt_state", "64", "--json", NULL), 0);
	p = json_loads(r.out, 0, NULL);
	assert_non_null(p);
	assert_int_equal(strlen(str(m, "hex")), 128);
	assert_string_equal(str(m, "hex"), str(p, "data"));
	assert_string_equal(str(m, "addr"), str(p, "addr"));
	assert_string_equal(str(m, "symbol"), "kt_state");
	json_decref(p);
	json_decref(m);
	kres_free(&r);
}

/* A step of the paused VM's vCPU 0, and bytes written where kscope peek reads them. */
static void check_step_and_poke(struct fx *f, const char *name)
{
	json_t *j = api(f, "POST", "/api/action", true, "{\"action\": \"step\", \"cpu\": 0}",
			200);
	struct kres r;

	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_true(strtoull(str(j, "rip"), NULL, 0) >= 0xffffffff80000000ull);
	json_decref(j);
	json_decref(api(f, "POST", "/api/action", true, "{\"action\": \"poke\", \"addr\": "
			"\"demo_mailbox\", \"hex\": \"6b73636f70650000\"}", 200));
	assert_int_equal(kscope(&r, "peek", name, "demo_mailbox", "--format", "u64", NULL), 0);
	if (!strstr(r.out, "0x65706f63736b"))
		fail_msg("peek demo_mailbox: %s", r.out);
	kres_free(&r);
}

/* Waits for the event stream to be attached (events_why null), at most timeout_s. */
static void wait_events_back(struct fx *f, double timeout_s)
{
	double end = now_s() + timeout_s;
	json_t *j;

	for (;;) {
		j = api(f, "GET", "/api/info", false, NULL, 200);
		if (json_is_null(json_object_get(j, "events_why")))
			break;
		if (now_s() > end)
			fail_msg("the event stream is not back: %s", str(j, "events_why"));
		json_decref(j);
		sleep_ms(100);
	}
	json_decref(j);
}

/* Pause rules from the page: the event stream comes back with them; a malformed one changes
 * nothing; a rule the supervisor cannot arm gives way to the rules before. */
static void check_pause_on(struct fx *f)
{
	json_t *j = api(f, "POST", "/api/action", true, "{\"action\": \"pause_on\", "
			"\"rules\": [\"exception:14\"]}", 200);

	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "rules"), 0)),
			    "exception:14");
	json_decref(j);
	wait_events_back(f, 30);
	j = api(f, "POST", "/api/action", true, "{\"action\": \"pause_on\", \"rules\": "
		"[\"exception:1x4\"]}", 400);
	assert_non_null(strstr(str(j, "error"), "bad vector '1x4'"));
	json_decref(j);
	json_decref(api(f, "POST", "/api/action", true, "{\"action\": \"pause_on\", "
			"\"rules\": []}", 200));
	wait_events_back(f, 30);
}

static void destroy_vm(struct fx *f)
{
	struct kres r;

	assert_int_equal(kscope(&r, "vm", "destroy", f->vm, NULL), 0);
	kres_free(&r);
	f->vm = NULL;
}

static void watch_a_vm(void **state)
{
	struct fx *f = *state;
	struct sse s;
	json_t *j;
	char *st;

	need_qemu();
	start_vm(f, "dash");
	start_watch(f, "dash");
	check_first_reads(f);
	sse_open(f, &s);
	sse_wait(&s, "\n\n", 10);
	/* HTTP/1.0: the stream is not chunked, and the hello comes first. */
	assert_non_null(strstr(s.buf, "\r\n\r\nevent: hello\ndata: {"));
	/* Without the token nothing changes; with it the VM runs and its test starts. */
	j = api(f, "POST", "/api/action", false, "{\"vm\": 1, \"action\": \"pause\"}", 403);
	assert_non_null(strstr(str(j, "error"), "token"));
	json_decref(j);
	json_decref(api(f, "POST", "/api/action", true, "{\"vm\": 1, \"action\": \"resume\"}",
			200));
	wait_case(f, "example_crash", "hang", "RUNNING");
	check_vm_status("dash", "state:       running");
	j = api(f, "POST", "/api/action", true, "{\"vm\": 1, \"action\": \"pause\"}", 200);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	check_vm_status("dash", "state:       paused");
	assert_string_equal(st = vm_state(f), "paused");
	free(st);
	sse_wait(&s, "event: paused", 10);
	check_memory(f, "dash");
	check_step_and_poke(f, "dash");
	/* Rules set on the paused VM, then on the running one: the stream comes back both ways
	 * (the old monitor's breakpoints go before the new one arms its own). */
	check_pause_on(f);
	check_vm_status("dash", "state:       paused");
	json_decref(api(f, "POST", "/api/action", true, "{\"vm\": 1, \"action\": \"resume\"}",
			200));
	check_pause_on(f);
	check_vm_status("dash", "state:       running");
	/* The VM's end reaches the page; the dashboard stays until a signal, then exits 0. */
	destroy_vm(f);
	sse_wait(&s, "event: end", 30);
	j = api(f, "GET", "/api/info", false, NULL, 200);
	assert_non_null(strstr(str(j, "end"), "VM 'dash' ended"));
	assert_string_equal(str(json_array_get(json_object_get(j, "vms"), 0), "state"), "ended");
	json_decref(j);
	/* The test the VM ended under crashed. */
	wait_case(f, "example_crash", "hang", "CRASHED");
	sse_close(&s);
	assert_int_equal(kill(f->bg, 0), 0);
	kill(f->bg, SIGTERM);
	assert_int_equal(kscope_wait(f->bg, 20), 0);
	f->bg = 0;
}

/* What kscope watch refuses, each with one line. */
static void watch_errors(void **state)
{
	struct fx *f = *state;
	struct kres r;
	char port[16];
	json_t *j;

	need_qemu();
	assert_int_equal(kscope(&r, "watch", "nosuchvm", NULL), 1);
	assert_string_equal(r.err, "kscope watch: no VM named 'nosuchvm' (kscope vm list shows "
			    "the VMs)\n");
	kres_free(&r);
	assert_int_equal(kscope(&r, "watch", ".bad", NULL), 2);
	assert_non_null(strstr(r.err, "kscope watch: bad VM name '.bad'"));
	kres_free(&r);
	assert_int_equal(kscope(&r, "watch", "x", "--listen", "localhost:1", NULL), 2);
	assert_string_equal(r.err, "kscope watch: bad --listen 'localhost:1' (an IPv4 or IPv6 "
			    "address, such as 127.0.0.1 or ::1)\n");
	kres_free(&r);
	assert_int_equal(kscope(&r, "watch", "x", "--port", "70000", NULL), 2);
	kres_free(&r);
	/* With kscope events attached the page has no events, says why, and takes the stream
	 * once that client has gone. */
	start_vm(f, "busy");
	snprintf(f->path, sizeof(f->path), "%s/events.out", f->dir);
	f->events = kscope_spawn((const char *const[]){ "events", "busy", "--trace", "vm", NULL },
				 f->path);
	wait_file(f->path, "kscope events: watching VM 'busy'");
	start_watch(f, "busy");
	j = api(f, "GET", "/api/info", false, NULL, 200);
	assert_non_null(strstr(str(j, "events_why"), "another events client"));
	json_decref(j);
	kill(f->events, SIGINT);
	assert_int_equal(kscope_wait(f->events, 20), 0);
	f->events = 0;
	wait_events_back(f, 30);
	/* A port another dashboard holds. */
	snprintf(port, sizeof(port), "%u", f->port);
	assert_int_equal(kscope(&r, "watch", "busy", "--port", port, NULL), 1);
	if (!strstr(r.err, "Address already in use") || !strstr(r.err, port))
		fail_msg("unexpected: %s", r.err);
	kres_free(&r);
}

/* ---- kscope run --dashboard ---- */

/* Starts kscope with args and a terminal as its stdin (as when run by hand). */
static pid_t spawn_tty(struct fx *f, const char *const *args)
{
	const char *argv[32] = { kscope_path() };
	int n = 1, out;
	pid_t pid, parent = getpid();

	while (args[n - 1])
		argv[n] = args[n - 1], n++;
	argv[n] = NULL;
	f->pty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(f->pty >= 0 && grantpt(f->pty) == 0 && unlockpt(f->pty) == 0);
	out = open(f->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		int tty = open(ptsname(f->pty), O_RDWR | O_NOCTTY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || tty < 0)
			_exit(127);
		dup2(tty, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out);
	return pid;
}

/* What the stream said of each case: "RUNNING,PASS" by "suite.name". */
static void collect(const char *name, json_t *data, void *arg)
{
	json_t *seen = arg;
	char key[256];
	const char *before;
	char *now;

	if (strcmp(name, "test") || !data)
		return;
	snprintf(key, sizeof(key), "%s.%s", str(data, "suite"), str(data, "name"));
	before = json_string_value(json_object_get(seen, key));
	if (asprintf(&now, "%s%s%s", before ? before : "", before ? "," : "",
		     str(data, "status")) < 0)
		fail();
	json_object_set_new(seen, key, json_string(now));
	free(now);
}

/* The number before word in kscope run's summary line ("53 passed, 4 skipped"), or 0. */
static long long summary_count(const char *line, const char *word)
{
	const char *end = strchr(line, '('), *p = line;
	long long n = 0;

	while ((p = strstr(p, word)) && (!end || p < end)) {
		const char *q = p - 1;

		while (q > line && q[-1] >= '0' && q[-1] <= '9')
			q--;
		if (q < p - 1 && *q >= '0' && *q <= '9')
			n = strtoll(q, NULL, 10);
		p++;
	}
	return n;
}

/* Every case that passed went RUNNING, then PASS; the counts are the summary's. */
static void check_run_results(struct fx *f, json_t *seen)
{
	static const char *const keys[][2] = {
		{ "pass", "passed" }, { "fail", "failed" }, { "skip", "skipped" },
		{ "timeout", "timed out" }, { "crashed", "crashed" }, { "notrun", "not run" },
	};
	json_t *t = api(f, "GET", "/api/tests", false, NULL, 200), *s, *c;
	char *out = slurp(f->out);
	const char *line = strstr(out, "kscope run: PASSED in ");
	size_t i, j, passed = 0;

	json_array_foreach(json_object_get(t, "suites"), i, s)
		json_array_foreach(json_object_get(s, "cases"), j, c) {
			char key[256];
			const char *seq;

			snprintf(key, sizeof(key), "%s.%s", str(c, "suite"), str(c, "name"));
			seq = json_string_value(json_object_get(seen, key));
			if (strcmp(str(c, "status"), "PASS"))
				continue;
			passed++;
			if (!seq || !strstr(seq, "RUNNING,PASS"))
				fail_msg("%s: the stream said '%s', not RUNNING then PASS", key, seq);
		}
	if (!line)
		fail_msg("no PASSED summary in:\n%s", out);
	assert_true(passed >= 40);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_integer_value(json_object_get(json_object_get(t, "counts"), keys[i][0])) !=
		    summary_count(strchr(line, ':') + 1, keys[i][1]))
			fail_msg("counts.%s is not the summary's: %s", keys[i][0], line);
	json_decref(t);
	free(out);
}

static void run_with_dashboard(void **state)
{
	struct fx *f = *state;
	json_t *seen = json_object(), *j;
	struct sse s;

	need_qemu();
	f->bg = spawn_tty(f, (const char *const[]){ "run", "--accel", "tcg", "--cpus", "2",
		"--plain", "--log-dir", f->logs, "--dashboard=0", "--dashboard-wait", NULL });
	wait_url(f);
	free(wait_output(f, "waiting for the dashboard's page", 10));
	/* Nothing boots before the page is there. */
	sleep_ms(300);
	j = api(f, "GET", "/api/vms", false, NULL, 200);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	j = api(f, "GET", "/api/info", false, NULL, 200);
	assert_string_equal(str(j, "mode"), "run");
	assert_false(json_is_true(json_object_get(j, "controls")));
	json_decref(j);
	sse_open(f, &s);
	sse_wait(&s, "event: hello", 10);
	sse_wait(&s, "event: end", 280);
	sse_each(s.buf, collect, seen);
	assert_non_null(strstr(s.buf, "event: vm"));
	assert_non_null(strstr(s.buf, "event: console"));
	sse_close(&s);
	/* At a terminal the dashboard stays after the run, until Ctrl-C. */
	free(wait_output(f, "the dashboard stays at", 30));
	check_run_results(f, seen);
	j = api(f, "POST", "/api/action", true, "{\"vm\": 1, \"action\": \"pause\"}", 409);
	assert_non_null(strstr(str(j, "error"), "kscope watch"));
	json_decref(j);
	json_decref(seen);
	kill(f->bg, SIGINT);
	/* The run's own verdict: the dashboard changes nothing. */
	assert_int_equal(kscope_wait(f->bg, 30), 0);
	f->bg = 0;
}

/* In a run the memory view reads the VM's RAM while the run drives it: kt_state starts with
 * the ABI's magic, read during a test that hangs. */
static void run_memory_view(void **state)
{
	struct fx *f = *state;
	json_t *j;

	need_qemu();
	f->bg = spawn_tty(f, (const char *const[]){ "run", "--accel", "tcg", "--cpus", "1",
		"--jobs", "1", "--plain", "--log-dir", f->logs, "--filter", "example_crash.hang",
		"--test-timeout", "60", "--dashboard=0", NULL });
	wait_url(f);
	wait_case(f, "example_crash", "hang", "RUNNING");
	j = api(f, "GET", "/api/memory?vm=1&addr=kt_state&len=8", false, NULL, 200);
	assert_string_equal(str(j, "hex"), "4b53434f50454b54");  /* KT_ABI_MAGIC, little-endian */
	assert_string_equal(str(j, "symbol"), "kt_state");
	assert_non_null(json_object_get(j, "pa"));
	json_decref(j);
	j = api(f, "GET", "/api/memory?vm=1&addr=0x10&len=8", false, NULL, 400);
	assert_non_null(strstr(str(j, "error"), "not mapped"));
	json_decref(j);
	j = api(f, "GET", "/api/regs?vm=1", false, NULL, 409);
	assert_non_null(strstr(str(j, "error"), "kscope watch"));
	json_decref(j);
	kill(f->bg, SIGINT);
	kscope_wait(f->bg, 30);
	f->bg = 0;
}

/* Without a terminal (a script, CI) the run exits when it is done, dashboard or not. */
static void run_dashboard_no_terminal(void **state)
{
	struct fx *f = *state;
	const char *args[] = { "run", "--accel", "tcg", "--cpus", "2", "--plain", "--log-dir",
			       f->logs, "--dashboard", "--filter", "string", NULL };
	struct kres r;

	need_qemu();
	if (kscope_argv(&r, args) != 0)
		fail_msg("status %d:\n%s%s", r.status, r.out, r.err);
	assert_non_null(strstr(r.err, "kscope: dashboard at http://127.0.0.1:"));
	assert_non_null(strstr(r.out, "kscope run: PASSED"));
	assert_null(strstr(r.err, "stays"));
	kres_free(&r);
	assert_int_equal(kscope(&r, "run", "--listen", "127.0.0.1", NULL), 2);
	assert_non_null(strstr(r.err, "give --dashboard too"));
	kres_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(watch_a_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(watch_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(run_with_dashboard, setup, teardown),
		cmocka_unit_test_setup_teardown(run_dashboard_no_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(run_memory_view, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
