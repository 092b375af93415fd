/* test_dash.c: the dashboard's model, its JSON and its API, served for real to socket clients on a real loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
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
#include <jansson.h>

#include "dashboard.h"

#define MS 1000000ll
#define DEADLINE (3000 * MS)
#define TOKEN "00112233445566778899aabbccddeeff"

/* ---- a fake backend: records what it was asked, answers as told ---- */

struct fake {
	char cmds[512];          /* "regs,symbol,read," */
	json_t *last;            /* the last request */
	int fail;                /* -errno to fail every request with, or 0 */
	char *rules[8];
	size_t nrules;
	int pause_on_calls;
};

static int fake_call(void *data, unsigned vm, json_t *req, json_t **reply, struct ks_error *err)
{
	struct fake *f = data;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	assert_int_equal(vm, 1);
	strcat(strcat(f->cmds, cmd), ",");
	json_decref(f->last);
	f->last = json_deep_copy(req);
	if (f->fail)
		return ks_error_set(err, f->fail, "fake says no");
	if (!strcmp(cmd, "symbol"))
		*reply = json_pack("{s:i,s:b,s:s,s:s}", "id", 7, "ok", 1, "addr",
				   "0xffffffff80001000", "name", "kt_state");
	else if (!strcmp(cmd, "read"))
		*reply = json_pack("{s:s,s:s,s:s}", "data", "00112233", "symbol", "kt_state",
				   "pa", "0x1000");
	else if (!strcmp(cmd, "regs"))
		*reply = json_pack("{s:[{s:i,s:{s:s}},{s:i,s:{s:s}}]}", "cpus", "cpu", 0, "regs",
				   "rip", "0x1", "cpu", 1, "regs", "rip", "0x2");
	else
		*reply = json_pack("{s:s}", "state", "whatever");
	return 0;
}

static int fake_pause_on(void *data, unsigned vm, const char *const *rules, size_t n,
			 struct ks_error *err)
{
	struct fake *f = data;

	(void)vm, (void)err;
	for (size_t i = 0; i < f->nrules; i++)
		free(f->rules[i]);
	for (size_t i = 0; i < n && i < 8; i++)
		f->rules[i] = strdup(rules[i]);
	f->nrules = n;
	f->pause_on_calls++;
	return 0;
}

/* ---- the fixture: a watch-mode dashboard with one VM and the fake behind it ---- */

struct fx {
	struct ks_loop *l;
	struct ks_dash *d;
	struct fake fake;
	char host[64];
};

static struct ks_dash *make(struct fx *x, enum ks_dash_mode mode)
{
	struct ks_dash_opts o;
	struct ks_error err = { 0 };
	struct ks_dash *d;

	ks_dash_opts_init(&o);
	o.mode = mode;
	o.title = "dev";
	o.token = TOKEN;
	o.controls = mode == KS_DASH_WATCH;
	o.controls_why = "the run drives its VMs";
	o.call = fake_call;
	o.pause_on = fake_pause_on;
	o.data = &x->fake;
	if (!(d = ks_dash_new(x->l, &o, &err)))
		fail_msg("ks_dash_new: %s", err.msg);
	snprintf(x->host, sizeof(x->host), "127.0.0.1:%u", ks_dash_port(d));
	return d;
}

static const struct ks_dash_vm vm1 = {
	.vm = 1, .name = "dev", .state = KS_DASH_VM_RUNNING, .accel = "tcg",
	.machine = "microvm", .kernel = "/k.elf", .cpus = 2, .sockets = 1, .cores = 2,
	.threads = 1, .memory_mib = 128,
};

static int setup_mode(void **state, enum ks_dash_mode mode)
{
	struct fx *x = calloc(1, sizeof(*x));

	if (!x || !(x->l = ks_loop_new(NULL)))
		return -1;
	x->d = make(x, mode);
	assert_int_equal(ks_dash_set_vm(x->d, &vm1), 0);
	*state = x;
	return 0;
}

static int setup(void **state)
{
	return setup_mode(state, KS_DASH_WATCH);
}

static int setup_run(void **state)
{
	return setup_mode(state, KS_DASH_RUN);
}

static int teardown(void **state)
{
	struct fx *x = *state;

	ks_dash_free(x->d);
	ks_loop_free(x->l);
	json_decref(x->fake.last);
	for (size_t i = 0; i < x->fake.nrules; i++)
		free(x->fake.rules[i]);
	free(x);
	return 0;
}

/* ---- a socket client, served by running the loop between reads ---- */

static int connect_to(const struct fx *x)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(ks_dash_port(x->d)) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

/* Reads what fd has (the loop serving meanwhile) until EOF, or until stop is in the text, or
 * the deadline. Returns the text (free it). */
static char *read_until(struct fx *x, int fd, const char *stop)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	uint64_t end = ks_loop_now_ns() + DEADLINE;

	buf[0] = 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (ks_loop_now_ns() < end && !(stop && strstr(buf, stop))) {
		ssize_t n;

		ks_loop_run_once(x->l, 5 * MS);
		if (len + 4096 > cap)
			buf = realloc(buf, cap *= 2);
		n = read(fd, buf + len, cap - len - 1);
		if (n == 0)
			break;
		if (n > 0)
			buf[len += (size_t)n] = 0;
	}
	return buf;
}

/* One request on a connection of its own; *body points into the returned text. */
static char *request(struct fx *x, const char *method, const char *target, const char *headers,
		     const char *body, int *status, const char **payload)
{
	char head[4096];
	int fd = connect_to(x), n;
	char *text, *sep;

	n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
		     "%sContent-Length: %zu\r\n\r\n", method, target, x->host, headers ? headers : "",
		     body ? strlen(body) : 0);
	send_all(fd, head, (size_t)n);
	if (body)
		send_all(fd, body, strlen(body));
	text = read_until(x, fd, NULL);
	close(fd);
	*status = 0;
	sscanf(text, "HTTP/1.1 %d", status);
	sep = strstr(text, "\r\n\r\n");
	*payload = sep ? sep + 4 : "";
	return text;
}

/* GET or POST target; the JSON answer, with its status checked. */
static json_t *call_json(struct fx *x, const char *method, const char *target,
			 const char *headers, const char *body, int want)
{
	const char *payload;
	int status;
	char *text = request(x, method, target, headers, body, &status, &payload);
	json_error_t je;
	json_t *j = json_loads(payload, 0, &je);

	if (status != want)
		fail_msg("%s %s: status %d, not %d:\n%s", method, target, status, want, text);
	if (!j)
		fail_msg("%s %s: not JSON (%s):\n%s", method, target, je.text, text);
	free(text);
	return j;
}

static json_t *get(struct fx *x, const char *target, int want)
{
	return call_json(x, "GET", target, NULL, NULL, want);
}

/* The "error" of an answer, checked to hold needle. */
static void error_has(json_t *j, const char *needle)
{
	const char *e = json_string_value(json_object_get(j, "error"));

	if (!e || !strstr(e, needle))
		fail_msg("error '%s' does not say '%s'", e ? e : "(none)", needle);
	json_decref(j);
}

static json_t *action(struct fx *x, const char *body, bool token, int want)
{
	return call_json(x, "POST", "/api/action", token ? "X-Kscope-Token: " TOKEN "\r\n" : NULL,
			 body, want);
}

/* ---- the model ---- */

static void vm_json_and_states(void **state)
{
	struct fx *x = *state;
	json_t *vms = ks_dash_vms_json(x->d), *v = json_array_get(vms, 0);
	struct ks_dash_vm two = vm1;

	assert_int_equal(json_array_size(vms), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "vm")), 1);
	assert_string_equal(json_string_value(json_object_get(v, "state")), "running");
	assert_string_equal(json_string_value(json_object_get(v, "machine")), "microvm");
	assert_int_equal(json_integer_value(json_object_get(v, "cpus")), 2);
	assert_int_equal(json_integer_value(json_object_get(v, "memory_mib")), 128);
	assert_true(json_is_null(json_object_get(v, "outcome")));
	assert_true(json_number_value(json_object_get(v, "uptime_s")) >= 0);
	json_decref(vms);
	/* VMs are listed by number, whatever the order they came in. */
	two.vm = 3;
	assert_int_equal(ks_dash_set_vm(x->d, &two), 0);
	two.vm = 2;
	assert_int_equal(ks_dash_set_vm(x->d, &two), 0);
	vms = ks_dash_vms_json(x->d);
	for (int i = 0; i < 3; i++)
		assert_int_equal(json_integer_value(json_object_get(json_array_get(vms, i), "vm")),
				 i + 1);
	json_decref(vms);
	assert_int_equal(ks_dash_set_vm_state(x->d, 2, KS_DASH_VM_ENDED, "exit code 0"), 0);
	assert_int_equal(ks_dash_vm_state(x->d, 2), KS_DASH_VM_ENDED);
	assert_int_equal(ks_dash_set_vm_state(x->d, 9, KS_DASH_VM_ENDED, NULL), -ENOENT);
	assert_int_equal(ks_dash_vm_state(x->d, 9), -1);
	vms = ks_dash_vms_json(x->d);
	assert_string_equal(json_string_value(json_object_get(json_array_get(vms, 1), "outcome")),
			    "exit code 0");
	json_decref(vms);
}

static const struct {
	const char *suite, *name;
	enum ks_dash_status status;
} tree[] = {
	{ "mm", "alloc", KS_DASH_PASS },   { "mm", "free", KS_DASH_FAIL },
	{ "irq", "pf", KS_DASH_RUNNING },  { "mm", "big", KS_DASH_PENDING },
	{ "irq", "gp", KS_DASH_SKIP },     { "str", "a", KS_DASH_SKIP },
};

static void fill_tree(struct ks_dash *d)
{
	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
		struct ks_dash_case c = { tree[i].suite, tree[i].name, tree[i].status, 1, 2500000,
					  tree[i].status == KS_DASH_FAIL ? "EXPECT failed" : NULL,
					  NULL, NULL, NULL };

		assert_int_equal(ks_dash_set_case(d, &c), (long)i);
	}
}

static json_t *suite_of(json_t *tests, const char *name)
{
	size_t i;
	json_t *s;

	json_array_foreach(json_object_get(tests, "suites"), i, s)
		if (!strcmp(json_string_value(json_object_get(s, "name")), name))
			return s;
	fail_msg("no suite %s", name);
	return NULL;
}

static void tests_tree_and_counts(void **state)
{
	struct fx *x = *state;
	json_t *t = ks_dash_tests_json(x->d), *mm, *c, *counts;

	assert_true(json_is_null(t));
	json_decref(t);
	fill_tree(x->d);
	t = ks_dash_tests_json(x->d);
	assert_int_equal(json_array_size(json_object_get(t, "suites")), 3);
	mm = suite_of(t, "mm");
	assert_int_equal(json_array_size(json_object_get(mm, "cases")), 3);
	/* A case in its suite's order, with the fields the page shows. */
	c = json_array_get(json_object_get(mm, "cases"), 1);
	assert_string_equal(json_string_value(json_object_get(c, "name")), "free");
	assert_string_equal(json_string_value(json_object_get(c, "status")), "FAIL");
	assert_string_equal(json_string_value(json_object_get(c, "reason")), "EXPECT failed");
	assert_int_equal(json_integer_value(json_object_get(c, "id")), 1);
	assert_true(json_number_value(json_object_get(c, "duration_ms")) == 2.5);
	assert_string_equal(json_string_value(json_object_get(mm, "status")), "RUNNING");
	assert_string_equal(json_string_value(json_object_get(suite_of(t, "irq"), "status")),
			    "RUNNING");
	assert_string_equal(json_string_value(json_object_get(suite_of(t, "str"), "status")),
			    "SKIP");
	counts = json_object_get(t, "counts");
	assert_int_equal(json_integer_value(json_object_get(counts, "pass")), 1);
	assert_int_equal(json_integer_value(json_object_get(counts, "fail")), 1);
	assert_int_equal(json_integer_value(json_object_get(counts, "skip")), 2);
	assert_int_equal(json_integer_value(json_object_get(counts, "running")), 1);
	assert_int_equal(json_integer_value(json_object_get(counts, "pending")), 1);
	assert_int_equal(json_integer_value(json_object_get(counts, "crashed")), 0);
	json_decref(t);
	/* A VM that ended under its test: the case crashed. */
	ks_dash_settle_running(x->d, 1, KS_DASH_CRASHED, "the VM ended while it ran");
	assert_int_equal(ks_dash_case_status(x->d, "irq", "pf"), KS_DASH_CRASHED);
	assert_int_equal(ks_dash_case_status(x->d, "irq", "nope"), -1);
}

static void suite_status_rules(void **state)
{
	static const struct {
		enum ks_dash_status a, b;
		const char *want;
	} cases[] = {
		{ KS_DASH_PENDING, KS_DASH_PENDING, "PENDING" },
		{ KS_DASH_PASS, KS_DASH_PENDING, "RUNNING" },
		{ KS_DASH_PASS, KS_DASH_PASS, "PASS" },
		{ KS_DASH_PASS, KS_DASH_SKIP, "PASS" },
		{ KS_DASH_SKIP, KS_DASH_SKIP, "SKIP" },
		{ KS_DASH_PASS, KS_DASH_TIMEOUT, "FAIL" },
		{ KS_DASH_NOTRUN, KS_DASH_PASS, "FAIL" },
		{ KS_DASH_CRASHED, KS_DASH_RUNNING, "RUNNING" },
	};
	struct fx *x = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char suite[16];
		struct ks_dash_case a = { suite, "a", cases[i].a, 0, -1, NULL, NULL, NULL, NULL };
		struct ks_dash_case b = { suite, "b", cases[i].b, 0, -1, NULL, NULL, NULL, NULL };
		json_t *t;

		snprintf(suite, sizeof(suite), "s%zu", i);
		ks_dash_set_case(x->d, &a);
		ks_dash_set_case(x->d, &b);
		t = ks_dash_tests_json(x->d);
		assert_string_equal(json_string_value(json_object_get(suite_of(t, suite), "status")),
				    cases[i].want);
		json_decref(t);
	}
}

static void console_ring(void **state)
{
	struct fx *x = *state;
	json_t *c, *lines;
	char text[32];

	assert_null(ks_dash_console_json(x->d, 5, 10));
	for (unsigned i = 1; i <= KS_DASH_CONSOLE_LINES + 20; i++) {
		snprintf(text, sizeof(text), "line %u", i);
		/* The numbers the source gives, else one more than the last. */
		ks_dash_console(x->d, 1, text, strlen(text), 1700000000.0 + i, i <= 3 ? 10 * i : 0);
	}
	c = ks_dash_console_json(x->d, 1, 2);
	lines = json_object_get(c, "lines");
	assert_int_equal(json_array_size(lines), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 1), "line")),
			    "line 1020");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(lines, 1), "lineno")),
			 30 + 1017);
	json_decref(c);
	/* More than is kept: what is kept. */
	c = ks_dash_console_json(x->d, 1, 5000);
	assert_int_equal(json_array_size(json_object_get(c, "lines")), KS_DASH_CONSOLE_LINES);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(
			    c, "lines"), 0), "line")), "line 21");
	json_decref(c);
}

static void info_json(void **state)
{
	struct fx *x = *state;
	json_t *i = ks_dash_info_json(x->d);

	assert_string_equal(json_string_value(json_object_get(i, "mode")), "watch");
	assert_string_equal(json_string_value(json_object_get(i, "title")), "dev");
	assert_string_equal(json_string_value(json_object_get(i, "version")), KSCOPE_VERSION);
	assert_true(json_is_true(json_object_get(i, "controls")));
	assert_true(json_is_null(json_object_get(i, "controls_why")));
	assert_true(json_is_null(json_object_get(i, "tests")));
	assert_true(json_is_null(json_object_get(i, "end")));
	assert_int_equal(json_array_size(json_object_get(i, "vms")), 1);
	assert_true(json_integer_value(json_object_get(i, "started")) > 1600000000);
	json_decref(i);
	ks_dash_set_events_why(x->d, "another events client");
	ks_dash_end(x->d, "VM 'dev' ended");
	i = ks_dash_info_json(x->d);
	assert_string_equal(json_string_value(json_object_get(i, "events_why")),
			    "another events client");
	assert_string_equal(json_string_value(json_object_get(i, "end")), "VM 'dev' ended");
	json_decref(i);
}

static void names(void **state)
{
	(void)state;
	assert_string_equal(ks_dash_vm_state_name(KS_DASH_VM_BOOTING), "booting");
	assert_string_equal(ks_dash_vm_state_name(KS_DASH_VM_ENDED), "ended");
	assert_string_equal(ks_dash_status_name(KS_DASH_PENDING), "PENDING");
	assert_string_equal(ks_dash_status_name(KS_DASH_NOTRUN), "NOTRUN");
	assert_string_equal(ks_dash_status_name((enum ks_dash_status)99), "?");
}

/* ---- the API over HTTP ---- */

static void reads(void **state)
{
	struct fx *x = *state;
	json_t *j;

	fill_tree(x->d);
	j = get(x, "/api/info", 200);
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "watch");
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "tests"), "suites")),
			 3);
	json_decref(j);
	j = get(x, "/api/vms", 200);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")),
			    "dev");
	json_decref(j);
	j = get(x, "/api/tests", 200);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counts"),
							     "pass")), 1);
	json_decref(j);
	ks_dash_console(x->d, 1, "hello", 5, 1.5, 0);
	j = get(x, "/api/console?vm=1&tail=5", 200);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(
			    j, "lines"), 0), "line")), "hello");
	json_decref(j);
	assert_string_equal(x->fake.cmds, "");
}

static void regs_symbol_pagemap(void **state)
{
	struct fx *x = *state;
	json_t *j = get(x, "/api/regs?vm=1", 200);

	assert_int_equal(json_array_size(json_object_get(j, "cpus")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "vm")), 1);
	json_decref(j);
	j = get(x, "/api/symbol?name=kt_state", 200);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "kt_state");
	/* The control protocol's own members stay behind. */
	assert_null(json_object_get(j, "id"));
	assert_null(json_object_get(j, "ok"));
	json_decref(j);
	assert_string_equal(json_string_value(json_object_get(x->fake.last, "expr")), "kt_state");
	json_decref(get(x, "/api/pagemap?cpu=1", 200));
	assert_int_equal(json_integer_value(json_object_get(x->fake.last, "cpu")), 1);
	assert_string_equal(x->fake.cmds, "regs,symbol,pagemap,");
	error_has(get(x, "/api/regs?vm=2", 404), "no VM 2");
	error_has(get(x, "/api/regs?vm=x", 400), "vm must be a number");
	error_has(get(x, "/api/symbol", 400), "needs name=");
	error_has(get(x, "/api/pagemap?cpu=-1", 400), "cpu must be");
}

static void memory(void **state)
{
	struct fx *x = *state;
	json_t *j = get(x, "/api/memory?addr=kt_state&len=4", 200);

	/* A symbol is resolved, then read at its address. */
	assert_string_equal(x->fake.cmds, "symbol,read,");
	assert_string_equal(json_string_value(json_object_get(x->fake.last, "addr")),
			    "0xffffffff80001000");
	assert_int_equal(json_integer_value(json_object_get(x->fake.last, "len")), 4);
	assert_string_equal(json_string_value(json_object_get(j, "addr")), "0xffffffff80001000");
	assert_string_equal(json_string_value(json_object_get(j, "hex")), "00112233");
	assert_string_equal(json_string_value(json_object_get(j, "symbol")), "kt_state");
	assert_string_equal(json_string_value(json_object_get(j, "space")), "virt");
	json_decref(j);
	j = get(x, "/api/memory?addr=0x2000&space=phys&len=4096", 200);
	assert_string_equal(json_string_value(json_object_get(j, "addr")), "0x2000");
	assert_true(json_is_true(json_object_get(x->fake.last, "phys")));
	assert_int_equal(json_integer_value(json_object_get(x->fake.last, "len")), 4096);
	json_decref(j);
	json_decref(get(x, "/api/memory?addr=4096", 200));
	assert_string_equal(json_string_value(json_object_get(x->fake.last, "addr")), "0x1000");
	error_has(get(x, "/api/memory?addr=0x0&len=4097", 400), "len must be a number from 1 to 4096");
	error_has(get(x, "/api/memory?addr=kt_state&space=phys", 400), "must be a number");
	error_has(get(x, "/api/memory?addr=0x0&space=io", 400), "virt or phys");
	error_has(get(x, "/api/memory", 400), "needs addr=");
}

/* The backend's failures, as HTTP statuses. */
static void backend_errors(void **state)
{
	static const struct { int rc, status; } map[] = {
		{ -EINVAL, 400 }, { -ENOENT, 404 }, { -EOPNOTSUPP, 409 }, { -EIO, 409 },
		{ -ENOTCONN, 410 }, { -ETIMEDOUT, 504 }, { -ECONNRESET, 502 },
	};
	struct fx *x = *state;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		x->fake.fail = map[i].rc;
		error_has(get(x, "/api/regs", map[i].status), "fake says no");
		error_has(action(x, "{\"action\": \"pause\"}", true, map[i].status),
			  "pause: fake says no");
	}
	/* A failed pause changes nothing. */
	assert_int_equal(ks_dash_vm_state(x->d, 1), KS_DASH_VM_RUNNING);
}

static void actions_need_the_token(void **state)
{
	struct fx *x = *state;
	json_t *j;

	error_has(action(x, "{\"vm\": 1, \"action\": \"pause\"}", false, 403), "token");
	assert_string_equal(x->fake.cmds, "");
	json_decref(call_json(x, "POST", "/api/action?token=" TOKEN, NULL,
			      "{\"vm\": 1, \"action\": \"pause\"}", 200));
	assert_int_equal(ks_dash_vm_state(x->d, 1), KS_DASH_VM_PAUSED);
	j = action(x, "{\"vm\": 1, \"action\": \"resume\"}", true, 200);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(j, "state")), "whatever");
	json_decref(j);
	assert_int_equal(ks_dash_vm_state(x->d, 1), KS_DASH_VM_RUNNING);
	assert_string_equal(x->fake.cmds, "pause,resume,");
}

/* Each action's request to the backend, and what is refused before it. */
static void action_requests(void **state)
{
	static const struct {
		const char *body, *cmd, *key, *value;
	} ok[] = {
		{ "{\"action\": \"step\", \"cpu\": 1}", "step", NULL, NULL },
		{ "{\"action\": \"snapshot\", \"op\": \"save\", \"tag\": \"t1\"}", "snapshot",
		  "action", "save" },
		{ "{\"action\": \"snapshot\", \"op\": \"load\", \"tag\": \"t1\"}", "snapshot", "tag",
		  "t1" },
		{ "{\"action\": \"poke\", \"addr\": \"demo_mailbox\", \"hex\": \"6b73\"}", "write",
		  "data", "6b73" },
		{ "{\"action\": \"poke\", \"addr\": \"0x1000\", \"hex\": \"00\", \"space\": "
		  "\"phys\"}", "write", "addr", "0x1000" },
	};
	static const struct {
		const char *body, *error;
		int status;
	} bad[] = {
		{ "not json", "must be a JSON object", 400 },
		{ "{\"vm\": 1}", "must be a JSON object", 400 },
		{ "{\"action\": \"pause\", \"vm\": 2}", "no VM 2", 404 },
		{ "{\"action\": \"pause\", \"vm\": \"a\"}", "VM number", 400 },
		{ "{\"action\": \"reboot\"}", "unknown action 'reboot'", 400 },
		{ "{\"action\": \"step\", \"cpu\": -1}", "vCPU index", 400 },
		{ "{\"action\": \"snapshot\", \"op\": \"list\", \"tag\": \"t\"}", "save", 400 },
		{ "{\"action\": \"snapshot\", \"op\": \"save\", \"tag\": \"a b\"}", "tag", 400 },
		{ "{\"action\": \"poke\", \"addr\": \"x\", \"hex\": \"123\"}", "hex", 400 },
		{ "{\"action\": \"poke\", \"hex\": \"12\"}", "addr", 400 },
		{ "{\"action\": \"poke\", \"addr\": \"x\", \"hex\": \"12\", \"space\": \"io\"}",
		  "space", 400 },
		{ "{\"action\": \"pause_on\", \"rules\": [\"exception:1x4\"]}", "bad vector", 400 },
		{ "{\"action\": \"pause_on\", \"rules\": \"exception:14\"}", "array", 400 },
	};
	struct fx *x = *state;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		json_decref(action(x, ok[i].body, true, 200));
		assert_string_equal(json_string_value(json_object_get(x->fake.last, "cmd")),
				    ok[i].cmd);
		if (ok[i].key)
			assert_string_equal(json_string_value(json_object_get(x->fake.last,
									      ok[i].key)),
					    ok[i].value);
	}
	assert_true(json_is_true(json_object_get(x->fake.last, "phys")));
	x->fake.cmds[0] = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		error_has(action(x, bad[i].body, true, bad[i].status), bad[i].error);
	assert_string_equal(x->fake.cmds, "");
	assert_int_equal(x->fake.pause_on_calls, 0);
}

static void pause_on_rules(void **state)
{
	struct fx *x = *state;
	json_t *j = action(x, "{\"action\": \"pause_on\", \"rules\": [\"exception:14\", "
			   "\"test:fail\"]}", true, 200);

	assert_int_equal(json_array_size(json_object_get(j, "rules")), 2);
	json_decref(j);
	assert_int_equal(x->fake.pause_on_calls, 1);
	assert_int_equal(x->fake.nrules, 2);
	assert_string_equal(x->fake.rules[1], "test:fail");
	json_decref(action(x, "{\"action\": \"pause_on\", \"rules\": []}", true, 200));
	assert_int_equal(x->fake.nrules, 0);
}

static void methods_and_paths(void **state)
{
	struct fx *x = *state;

	error_has(get(x, "/api/action", 405), "POST");
	error_has(call_json(x, "POST", "/api/info", "X-Kscope-Token: " TOKEN "\r\n", "{}", 405),
		  "GET");
	error_has(get(x, "/api/nothing", 404), "no such API");
}

/* In a run, actions are refused with the reason; the token still comes first. */
static void run_mode_refuses_actions(void **state)
{
	struct fx *x = *state;
	json_t *i = get(x, "/api/info", 200);

	assert_string_equal(json_string_value(json_object_get(i, "mode")), "run");
	assert_false(json_is_true(json_object_get(i, "controls")));
	assert_string_equal(json_string_value(json_object_get(i, "controls_why")),
			    "the run drives its VMs");
	json_decref(i);
	error_has(action(x, "{\"action\": \"pause\"}", false, 403), "token");
	error_has(action(x, "{\"action\": \"pause\"}", true, 409), "the run drives its VMs");
	assert_string_equal(x->fake.cmds, "");
}

/* ---- the event stream ---- */

/* Opens /api/events; returns the fd after the hello has come (its text in *hello). */
static int open_stream(struct fx *x, char **hello)
{
	char head[256];
	int fd = connect_to(x), n;

	n = snprintf(head, sizeof(head), "GET /api/events HTTP/1.0\r\nHost: %s\r\n\r\n", x->host);
	send_all(fd, head, (size_t)n);
	*hello = read_until(x, fd, "\n\n");
	return fd;
}

/* The data of the first event named name in text, parsed. */
static json_t *event_data(const char *text, const char *name)
{
	char want[64];
	const char *p, *data;

	snprintf(want, sizeof(want), "event: %s\n", name);
	if (!(p = strstr(text, want)) || !(data = strstr(p, "data: ")))
		fail_msg("no event '%s' in:\n%s", name, text);
	return json_loadb(data + 6, strcspn(data + 6, "\n"), 0, NULL);
}

static void stream_hello_then_changes(void **state)
{
	struct fx *x = *state;
	char *hello, *text;
	json_t *j;
	int fd;

	fill_tree(x->d);
	fd = open_stream(x, &hello);
	assert_int_equal(ks_dash_streams(x->d), 1);
	/* The whole state first, as /api/info has it. */
	assert_non_null(strstr(hello, "200 OK"));
	assert_non_null(strstr(hello, "text/event-stream"));
	j = event_data(hello, "hello");
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "watch");
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "tests"), "suites")),
			 3);
	json_decref(j);
	free(hello);
	{
		struct ks_dash_case c = { "mm", "big", KS_DASH_RUNNING, 1, -1, NULL, NULL, NULL,
					  NULL };

		ks_dash_set_case(x->d, &c);
		/* The same again is no news. */
		ks_dash_set_case(x->d, &c);
	}
	ks_dash_console(x->d, 1, "a line", 6, 2.0, 0);
	ks_dash_event(x->d, 1, json_pack("{s:i,s:s}", "seq", 1, "kind", "magic"));
	ks_dash_paused(x->d, 1, "a pause rule");
	ks_dash_end(x->d, "over");
	text = read_until(x, fd, "event: end");
	close(fd);
	j = event_data(text, "test");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "RUNNING");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "big");
	json_decref(j);
	assert_null(strstr(strstr(text, "event: test") + 1, "event: test"));
	j = event_data(text, "console");
	assert_string_equal(json_string_value(json_object_get(j, "line")), "a line");
	json_decref(j);
	j = event_data(text, "event");
	assert_int_equal(json_integer_value(json_object_get(j, "vm")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "magic");
	json_decref(j);
	j = event_data(text, "vm");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "paused");
	json_decref(j);
	j = event_data(text, "paused");
	assert_string_equal(json_string_value(json_object_get(j, "why")), "a pause rule");
	json_decref(j);
	j = event_data(text, "end");
	assert_string_equal(json_string_value(json_object_get(j, "why")), "over");
	json_decref(j);
	free(text);
	/* The page went: the dashboard lets its stream go. */
	for (int i = 0; i < 200 && ks_dash_streams(x->d); i++)
		ks_loop_run_once(x->l, 5 * MS);
	assert_int_equal(ks_dash_streams(x->d), 0);
}

/* A stream open when the dashboard goes is closed with it (ASan sees to the rest). */
static void free_with_a_stream_open(void **state)
{
	struct fx *x = *state;
	char *hello;
	int fd = open_stream(x, &hello);

	free(hello);
	assert_int_equal(ks_dash_streams(x->d), 1);
	ks_dash_free(x->d);
	x->d = NULL;
	close(fd);
}

/* ---- the run's dashboard ---- */

static void run_source(void **state)
{
	struct fx *x = *state;
	struct ks_error err = { 0 };
	struct ks_vmspec *spec = ks_vmspec_new(&err);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct ks_dash_run_opts o = { spec, NULL, 0, TOKEN };
	struct ks_dash_run *dr;
	struct fx rx = { .l = x->l };
	json_t *j;

	assert_true(n > 0);
	self[n] = 0;
	/* This test's own executable stands for the kernel: an ELF file with symbols. */
	spec->kernel = strdup(self);
	dr = ks_dash_run_new(x->l, &o, &err);
	if (!dr)
		fail_msg("ks_dash_run_new: %s", err.msg);
	rx.d = ks_dash_run_dash(dr);
	snprintf(rx.host, sizeof(rx.host), "127.0.0.1:%u", ks_dash_port(rx.d));
	j = get(&rx, "/api/info", 200);
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "run");
	assert_non_null(strstr(json_string_value(json_object_get(j, "controls_why")),
			       "kscope watch"));
	json_decref(j);
	/* No VM yet; then one, as the run's VM_START would make it. */
	error_has(get(&rx, "/api/symbol?name=main", 404), "no VM 1");
	assert_int_equal(ks_dash_set_vm(rx.d, &vm1), 0);
	j = get(&rx, "/api/symbol?name=main", 200);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "main");
	json_decref(j);
	error_has(get(&rx, "/api/symbol?name=no_such_symbol_here", 404), "no_such_symbol_here");
	error_has(get(&rx, "/api/regs", 409), "kscope watch");
	error_has(get(&rx, "/api/memory?addr=main", 409), "has not started");
	error_has(get(&rx, "/api/pagemap", 409), "kscope watch");
	error_has(action(&rx, "{\"action\": \"pause\"}", true, 409), "the run drives its VMs");
	ks_dash_run_finish(dr, "the run is over");
	assert_int_equal(ks_dash_vm_state(rx.d, 1), KS_DASH_VM_ENDED);
	j = get(&rx, "/api/info", 200);
	assert_string_equal(json_string_value(json_object_get(j, "end")), "the run is over");
	json_decref(j);
	ks_dash_run_free(dr);
	ks_vmspec_free(spec);
}

static void port_in_use(void **state)
{
	struct fx *x = *state;
	struct ks_dash_opts o;
	struct ks_error err = { 0 };
	char want[32];

	ks_dash_opts_init(&o);
	o.port = ks_dash_port(x->d);
	assert_null(ks_dash_new(x->l, &o, &err));
	assert_int_equal(err.code, -EADDRINUSE);
	snprintf(want, sizeof(want), "%u", o.port);
	assert_non_null(strstr(err.msg, want));
	o.port = 0;
	o.addr = "not-an-address";
	assert_null(ks_dash_new(x->l, &o, &err));
	assert_int_equal(err.code, -EINVAL);
}

/* On loopback a Host naming another server is refused (DNS rebinding); a dashboard asked to
 * listen beyond loopback is reached under names it cannot know, and takes any Host. */
static void host_check_on_loopback_only(void **state)
{
	struct fx *x = *state;
	struct ks_dash_opts o;
	struct ks_error err = { 0 };
	struct ks_dash *wide;

	snprintf(x->host, sizeof(x->host), "evil.example:%u", ks_dash_port(x->d));
	json_decref(get(x, "/api/vms", 421));
	ks_dash_opts_init(&o);
	o.addr = "0.0.0.0";
	o.call = fake_call;
	o.data = &x->fake;
	if (!(wide = ks_dash_new(x->l, &o, &err)))
		fail_msg("ks_dash_new: %s", err.msg);
	ks_dash_free(x->d);
	x->d = wide;
	snprintf(x->host, sizeof(x->host), "build-box.example:%u", ks_dash_port(wide));
	json_decref(get(x, "/api/info", 200));
	json_decref(call_json(x, "POST", "/api/action", NULL, "{\"action\": \"pause\"}", 403));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(vm_json_and_states, setup, teardown),
		cmocka_unit_test_setup_teardown(tests_tree_and_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(suite_status_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(console_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(info_json, setup, teardown),
		cmocka_unit_test(names),
		cmocka_unit_test_setup_teardown(reads, setup, teardown),
		cmocka_unit_test_setup_teardown(regs_symbol_pagemap, setup, teardown),
		cmocka_unit_test_setup_teardown(memory, setup, teardown),
		cmocka_unit_test_setup_teardown(backend_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(actions_need_the_token, setup, teardown),
		cmocka_unit_test_setup_teardown(action_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(pause_on_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(methods_and_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(run_mode_refuses_actions, setup_run, teardown),
		cmocka_unit_test_setup_teardown(stream_hello_then_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(free_with_a_stream_open, setup, teardown),
		cmocka_unit_test_setup_teardown(run_source, setup, teardown),
		cmocka_unit_test_setup_teardown(port_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(host_check_on_loopback_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
