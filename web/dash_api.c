/* dash_api.c: the dashboard's read routes under /api/ and its event stream. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash_internal.h"

#define MEMORY_DEFAULT_LEN 64
#define CONSOLE_DEFAULT_TAIL 100

unsigned dash_http_status(int rc)
{
	switch (rc) {
	case -EINVAL:
	case -ERANGE:
	case -EFAULT:   /* an address that is not mapped, or not RAM */
		return 400;
	case -ENOENT:
		return 404;
	case -EOPNOTSUPP:
	case -EBUSY:
	case -EIO:
	case -EPERM:
	case -EAGAIN:   /* not yet: a run's VM whose page tables are not known */
	case -ENODEV:   /* no VM in that run slot now */
		return 409;
	case -ENOTCONN:
		return 410;
	case -ETIMEDOUT:
		return 504;
	default:
		return 502;
	}
}

/* ---- parameters ---- */

/* Query parameter name as a number in [min, max], or def when absent. Answers 400 and
 * returns false when it is not one. */
static bool query_num(struct ks_http_req *rq, const char *name, unsigned long def,
		      unsigned long min, unsigned long max, unsigned long *out)
{
	const char *v = ks_http_query(rq, name);
	char *end;

	*out = def;
	if (!v)
		return true;
	errno = 0;
	*out = strtoul(v, &end, 0);
	if (end == v || *end || errno || *out < min || *out > max || v[0] == '-') {
		ks_http_reply_error(rq, 400, "%s must be a number from %lu to %lu (got '%.40s')",
				    name, min, max, v);
		return false;
	}
	return true;
}

/* The vm= parameter (default 1), which must name a VM the dashboard knows. */
static bool query_vm(struct ks_dash *d, struct ks_http_req *rq, unsigned *vm)
{
	unsigned long n;

	if (!query_num(rq, "vm", 1, 1, 4096, &n))
		return false;
	*vm = (unsigned)n;
	if (dash_vm_find(d, *vm))
		return true;
	ks_http_reply_error(rq, 404, "no VM %u%s", *vm, d->nvms ? "" : " yet: none has started");
	return false;
}

/* A number as the API takes one: 0x and hex digits, or decimal digits. */
static bool parse_number(const char *s, uint64_t *v)
{
	const char *p = s;
	char *end;

	if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2))
		p = s + 2;
	if (!*p || strspn(p, p == s ? "0123456789" : "0123456789abcdefABCDEF") != strlen(p))
		return false;
	errno = 0;
	*v = strtoull(s, &end, p == s ? 10 : 16);
	return !errno && !*end;
}

/* ---- the backend ---- */

/* Asks the backend (req is stolen); answers rq with the error and returns NULL on failure.
 * The reply loses the control protocol's "id" and "ok". */
static json_t *backend(struct ks_dash *d, struct ks_http_req *rq, unsigned vm, json_t *req)
{
	struct ks_error err = { 0 };
	json_t *reply = NULL;
	int rc;

	if (!req)
		rc = ks_error_set(&err, -ENOMEM, "out of memory");
	else if (!d->o.call)
		rc = ks_error_set(&err, -EOPNOTSUPP, "%s", d->controls_why ? d->controls_why
				  : "this dashboard has no VM to ask");
	else
		rc = d->o.call(d->o.data, vm, req, &reply, &err);
	json_decref(req);
	if (rc < 0) {
		json_decref(reply);
		ks_http_reply_error(rq, dash_http_status(rc), "%s", err.msg[0] ? err.msg
				    : "the request failed");
		return NULL;
	}
	if (!reply)
		reply = json_object();
	json_object_del(reply, "id");
	json_object_del(reply, "ok");
	return reply;
}

/* Answers with reply (stolen) plus "vm". */
static void reply_vm(struct ks_http_req *rq, unsigned vm, json_t *reply)
{
	json_object_set_new(reply, "vm", json_integer(vm));
	ks_http_reply_json(rq, 200, reply);
}

/* ---- routes ---- */

static void api_info(struct ks_dash *d, struct ks_http_req *rq)
{
	ks_http_reply_json(rq, 200, ks_dash_info_json(d));
}

static void api_vms(struct ks_dash *d, struct ks_http_req *rq)
{
	ks_http_reply_json(rq, 200, ks_dash_vms_json(d));
}

static void api_tests(struct ks_dash *d, struct ks_http_req *rq)
{
	ks_http_reply_json(rq, 200, ks_dash_tests_json(d));
}

static void api_regs(struct ks_dash *d, struct ks_http_req *rq)
{
	unsigned vm;
	json_t *r;

	if (query_vm(d, rq, &vm) && (r = backend(d, rq, vm, json_pack("{s:s}", "cmd", "regs"))))
		reply_vm(rq, vm, r);
}

static void api_symbol(struct ks_dash *d, struct ks_http_req *rq)
{
	const char *name = ks_http_query(rq, "name");
	unsigned vm;
	json_t *r;

	if (!query_vm(d, rq, &vm))
		return;
	if (!name || !*name) {
		ks_http_reply_error(rq, 400, "symbol: needs name= (a symbol, SYMBOL+OFF or an "
				    "address)");
		return;
	}
	if ((r = backend(d, rq, vm, json_pack("{s:s,s:s}", "cmd", "symbol", "expr", name))))
		reply_vm(rq, vm, r);
}

static void api_pagemap(struct ks_dash *d, struct ks_http_req *rq)
{
	const char *start = ks_http_query(rq, "start");
	unsigned long cpu;
	unsigned vm;
	json_t *req, *r;

	if (!query_vm(d, rq, &vm) || !query_num(rq, "cpu", 0, 0, 4095, &cpu))
		return;
	req = json_pack("{s:s,s:i}", "cmd", "pagemap", "cpu", (int)cpu);
	if (req && start)
		json_object_set_new(req, "start", json_string(start));
	if ((r = backend(d, rq, vm, req)))
		reply_vm(rq, vm, r);
}

static void api_console(struct ks_dash *d, struct ks_http_req *rq)
{
	unsigned long tail;
	unsigned vm;

	if (query_vm(d, rq, &vm) &&
	    query_num(rq, "tail", CONSOLE_DEFAULT_TAIL, 0, KS_DASH_CONSOLE_LINES, &tail))
		ks_http_reply_json(rq, 200, ks_dash_console_json(d, vm, tail));
}

/* The address of a memory request: a number, or a symbol the backend resolves. */
static bool memory_addr(struct ks_dash *d, struct ks_http_req *rq, unsigned vm,
			const char *expr, bool phys, uint64_t *addr)
{
	json_t *r;

	if (parse_number(expr, addr))
		return true;
	if (phys) {
		ks_http_reply_error(rq, 400, "memory: a physical address must be a number, not "
				    "'%.64s'", expr);
		return false;
	}
	if (!(r = backend(d, rq, vm, json_pack("{s:s,s:s}", "cmd", "symbol", "expr", expr))))
		return false;
	*addr = strtoull(json_string_value(json_object_get(r, "addr")) ? json_string_value(
				 json_object_get(r, "addr")) : "0", NULL, 0);
	json_decref(r);
	return true;
}

static void api_memory(struct ks_dash *d, struct ks_http_req *rq)
{
	const char *expr = ks_http_query(rq, "addr"), *space = ks_http_query(rq, "space");
	bool phys = space && !strcmp(space, "phys");
	unsigned long len;
	uint64_t addr;
	char hex[24];
	unsigned vm;
	json_t *r;

	if (!query_vm(d, rq, &vm) || !query_num(rq, "len", MEMORY_DEFAULT_LEN, 1,
						 KS_DASH_MAX_READ, &len))
		return;
	if (space && !phys && strcmp(space, "virt")) {
		ks_http_reply_error(rq, 400, "memory: space is virt or phys (got '%.32s')", space);
		return;
	}
	if (!expr || !*expr) {
		ks_http_reply_error(rq, 400, "memory: needs addr= (a number such as 0x1000, or a "
				    "symbol)");
		return;
	}
	if (!memory_addr(d, rq, vm, expr, phys, &addr))
		return;
	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)addr);
	if (!(r = backend(d, rq, vm, json_pack("{s:s,s:s,s:i,s:b}", "cmd", "read", "addr", hex,
					       "len", (int)len, "phys", phys))))
		return;
	ks_http_reply_json(rq, 200, json_pack("{s:i,s:s,s:s,s:O?,s:O?,s:O?}", "vm", (int)vm,
					      "addr", hex, "space", phys ? "phys" : "virt",
					      "symbol", json_object_get(r, "symbol"),
					      "hex", json_object_get(r, "data"),
					      "pa", json_object_get(r, "pa")));
	json_decref(r);
}

/* ---- the event stream ---- */

static void on_stream_close(struct ks_http_stream *st, void *data)
{
	struct dash_client *c = data;

	(void)st;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->d->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void api_events(struct ks_dash *d, struct ks_http_req *rq)
{
	struct dash_client *c;

	/* A stream without a body would be a page that never hears anything. */
	if (!strcmp(ks_http_method(rq), "HEAD")) {
		ks_http_reply_error(rq, 405, "/api/events takes GET");
		return;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		ks_http_reply_error(rq, 500, "out of memory");
		return;
	}
	c->d = d;
	if (!(c->st = ks_http_stream_open(rq, on_stream_close, c))) {
		free(c);
		return;
	}
	c->next = d->clients;
	if (d->clients)
		d->clients->prev = c;
	d->clients = c;
	/* The whole state first: a page that connects late, or again, is up to date at once. */
	ks_http_stream_send(c->st, "hello", ks_dash_info_json(d));
}

/* ---- dispatch ---- */

static const struct {
	const char *path;
	void (*fn)(struct ks_dash *d, struct ks_http_req *rq);
} routes[] = {
	{ "/api/info", api_info },
	{ "/api/vms", api_vms },
	{ "/api/tests", api_tests },
	{ "/api/regs", api_regs },
	{ "/api/memory", api_memory },
	{ "/api/symbol", api_symbol },
	{ "/api/pagemap", api_pagemap },
	{ "/api/console", api_console },
	{ "/api/events", api_events },
};

void dash_api_handle(struct ks_http_req *rq, void *data)
{
	struct ks_dash *d = data;
	const char *path = ks_http_path(rq), *method = ks_http_method(rq);
	bool post = !strcmp(method, "POST");

	if (!strcmp(path, "/api/action")) {
		if (post)
			dash_action(d, rq);
		else
			ks_http_reply_error(rq, 405, "/api/action takes POST");
		return;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path))
			continue;
		if (post)
			ks_http_reply_error(rq, 405, "%s takes GET", routes[i].path);
		else
			routes[i].fn(d, rq);
		return;
	}
	ks_http_reply_error(rq, 404, "no such API: %.200s", path);
}
