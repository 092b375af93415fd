/* dash_action.c: POST /api/action: what the page may do to a VM, checked, then asked of the backend. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/evfilter.h>

#include "dash_internal.h"

#define MAX_RULES 64
#define MAX_TAG 64

/* One action: builds the backend's request from the body, or answers 400 and returns NULL. */
struct action {
	const char *name;
	json_t *(*request)(struct ks_http_req *rq, json_t *body);
};

static const char *member_str(json_t *body, const char *key)
{
	return json_string_value(json_object_get(body, key));
}

static json_t *bad(struct ks_http_req *rq, const char *msg)
{
	ks_http_reply_error(rq, 400, "%s", msg);
	return NULL;
}

static json_t *req_pause(struct ks_http_req *rq, json_t *body)
{
	(void)rq, (void)body;
	return json_pack("{s:s}", "cmd", "pause");
}

static json_t *req_resume(struct ks_http_req *rq, json_t *body)
{
	(void)rq, (void)body;
	return json_pack("{s:s}", "cmd", "resume");
}

static json_t *req_step(struct ks_http_req *rq, json_t *body)
{
	json_t *cpu = json_object_get(body, "cpu");

	if (cpu && (!json_is_integer(cpu) || json_integer_value(cpu) < 0 ||
		    json_integer_value(cpu) > 4095))
		return bad(rq, "step: \"cpu\" must be a vCPU index");
	return json_pack("{s:s,s:I}", "cmd", "step", "cpu", cpu ? json_integer_value(cpu) : 0);
}

static json_t *req_snapshot(struct ks_http_req *rq, json_t *body)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	const char *op = member_str(body, "op"), *tag = member_str(body, "tag");

	if (!op || (strcmp(op, "save") && strcmp(op, "load")))
		return bad(rq, "snapshot: \"op\" must be \"save\" or \"load\"");
	if (!tag || !*tag || strlen(tag) > MAX_TAG || strspn(tag, ok) != strlen(tag))
		return bad(rq, "snapshot: \"tag\" must be 1 to 64 letters, digits, '_', '.' or '-'");
	return json_pack("{s:s,s:s,s:s}", "cmd", "snapshot", "action", op, "tag", tag);
}

static json_t *req_poke(struct ks_http_req *rq, json_t *body)
{
	json_t *addr = json_object_get(body, "addr");
	const char *hex = member_str(body, "hex"), *space = member_str(body, "space");
	size_t n = hex ? strlen(hex) : 0;

	if (!json_is_string(addr) || !*json_string_value(addr))
		return bad(rq, "poke: \"addr\" must be an address (\"0x1000\") or a symbol");
	if (!n || n % 2 || n > 2 * KS_DASH_MAX_READ ||
	    strspn(hex, "0123456789abcdefABCDEF") != n)
		return bad(rq, "poke: \"hex\" must be 1 to 4096 bytes as hex digits, two per byte");
	if (space && strcmp(space, "virt") && strcmp(space, "phys"))
		return bad(rq, "poke: \"space\" is \"virt\" or \"phys\"");
	return json_pack("{s:s,s:O,s:s,s:b}", "cmd", "write", "addr", addr, "data", hex, "phys",
			 space && !strcmp(space, "phys"));
}

static const struct action actions[] = {
	{ "pause", req_pause },
	{ "resume", req_resume },
	{ "step", req_step },
	{ "snapshot", req_snapshot },
	{ "poke", req_poke },
};

/* What the model learns from an action that worked. */
static void after(struct ks_dash *d, unsigned vm, const char *action)
{
	if (!strcmp(action, "pause"))
		ks_dash_paused(d, vm, "the page");
	else if (!strcmp(action, "resume"))
		ks_dash_set_vm_state(d, vm, KS_DASH_VM_RUNNING, NULL);
}

/* Sends req (stolen) to the backend and answers with its reply as {"ok": true, ...}. */
static void forward(struct ks_dash *d, struct ks_http_req *rq, unsigned vm, const char *action,
		    json_t *req)
{
	struct ks_error err = { 0 };
	json_t *reply = NULL;
	int rc = d->o.call ? d->o.call(d->o.data, vm, req, &reply, &err)
			   : ks_error_set(&err, -EOPNOTSUPP, "this dashboard has no VM to act on");

	json_decref(req);
	if (rc < 0) {
		json_decref(reply);
		ks_http_reply_error(rq, dash_http_status(rc), "%s: %s", action, err.msg);
		return;
	}
	if (!reply)
		reply = json_object();
	json_object_del(reply, "id");
	json_object_set_new(reply, "ok", json_true());
	json_object_set_new(reply, "vm", json_integer(vm));
	after(d, vm, action);
	ks_http_reply_json(rq, 200, reply);
}

/* The rules of a pause_on action, each checked here so that a typo gets its column. */
static void pause_on(struct ks_dash *d, struct ks_http_req *rq, unsigned vm, json_t *body)
{
	json_t *rules = json_object_get(body, "rules"), *v;
	const char *specs[MAX_RULES];
	struct ks_error err = { 0 };
	struct ks_evrules *rs;
	size_t i, n = json_array_size(rules);
	int rc = 0;

	if (!json_is_array(rules) || n > MAX_RULES) {
		ks_http_reply_error(rq, 400, "pause_on: \"rules\" must be an array of at most %d "
				    "filter specs ([] clears them)", MAX_RULES);
		return;
	}
	if (!(rs = ks_evrules_new(&err))) {
		ks_http_reply_error(rq, 500, "%s", err.msg);
		return;
	}
	json_array_foreach(rules, i, v) {
		if (!(specs[i] = json_string_value(v)))
			rc = ks_error_set(&err, -EINVAL, "rules must be strings");
		else
			rc = ks_evrules_add_pause_on(rs, specs[i], &err);
		if (rc < 0)
			break;
	}
	ks_evrules_free(rs);
	if (rc == 0)
		rc = d->o.pause_on ? d->o.pause_on(d->o.data, vm, specs, n, &err)
		     : ks_error_set(&err, -EOPNOTSUPP, "this dashboard cannot set pause rules");
	if (rc < 0) {
		ks_http_reply_error(rq, dash_http_status(rc), "pause_on: %s", err.msg);
		return;
	}
	/* Whether the stream is back with them yet: the page shows events_why until it is. */
	ks_http_reply_json(rq, 200, json_pack("{s:b,s:i,s:O,s:s?}", "ok", 1, "vm", (int)vm,
					      "rules", rules, "events_why", d->events_why));
}

/* The body as a JSON object with a known VM; answers the error and returns NULL if not. */
static json_t *parse_body(struct ks_dash *d, struct ks_http_req *rq, unsigned *vm)
{
	size_t len = 0;
	const char *text = ks_http_body(rq, &len);
	json_t *body = json_loadb(text ? text : "", len, 0, NULL), *jvm;

	if (!json_is_object(body) || !json_is_string(json_object_get(body, "action"))) {
		json_decref(body);
		ks_http_reply_error(rq, 400, "the body must be a JSON object like {\"vm\": 1, "
				    "\"action\": \"pause\"}");
		return NULL;
	}
	jvm = json_object_get(body, "vm");
	if (jvm && (!json_is_integer(jvm) || json_integer_value(jvm) < 1 ||
		    json_integer_value(jvm) > 4096)) {
		json_decref(body);
		ks_http_reply_error(rq, 400, "\"vm\" must be a VM number (1, 2, ...)");
		return NULL;
	}
	*vm = jvm ? (unsigned)json_integer_value(jvm) : 1;
	if (!dash_vm_find(d, *vm)) {
		json_decref(body);
		ks_http_reply_error(rq, 404, "no VM %u", *vm);
		return NULL;
	}
	return body;
}

void dash_action(struct ks_dash *d, struct ks_http_req *rq)
{
	unsigned vm;
	const char *name;
	json_t *body, *req;

	if (!ks_http_token_ok(rq)) {
		ks_http_reply_error(rq, 403, "actions need the dashboard's token: open the URL "
				    "kscope printed (it ends in ?token=...)");
		return;
	}
	if (!d->o.controls) {
		ks_http_reply_error(rq, 409, "%s", d->controls_why ? d->controls_why
				    : "this dashboard has no controls");
		return;
	}
	if (!(body = parse_body(d, rq, &vm)))
		return;
	name = member_str(body, "action");
	if (!strcmp(name, "pause_on")) {
		pause_on(d, rq, vm, body);
		json_decref(body);
		return;
	}
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(name, actions[i].name))
			continue;
		if ((req = actions[i].request(rq, body)))
			forward(d, rq, vm, actions[i].name, req);
		json_decref(body);
		return;
	}
	ks_http_reply_error(rq, 400, "unknown action '%.32s': use pause, resume, step, snapshot, "
			    "poke or pause_on", name);
	json_decref(body);
}
