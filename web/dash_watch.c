/* dash_watch.c: the dashboard of `kscope watch`: one VM followed through its supervisor's control socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash_internal.h"

#define SEC 1000000000ll
#define MS 1000000ll
#define POLL_NS (500 * MS)
#define CONNECT_NS (2 * SEC)
#define CALL_NS (10 * SEC)
#define SLOW_CALL_NS (60 * SEC)      /* snapshots; arming events scans the kernel */
#define REATTACH_NS (30 * SEC)       /* for the supervisor to let the old events client go */
#define CONSOLE_TAIL 200
#define RECENT 64                    /* event lines kept to say which one paused the VM */
#define MAX_RULES 64

/* Pause-on rules (filter specs). */
struct rules {
	char *spec[MAX_RULES];
	size_t n;
};

struct ks_dash_watch {
	struct ks_loop *loop;
	struct ks_dash *d;
	char *name, *rundir;
	struct ks_ctl_client *ctl;      /* requests: status, reads, actions */
	struct ks_ctl_client *console;  /* the console, followed */
	struct ks_ctl_client *events;   /* the event stream, or NULL */
	struct rules want, armed;       /* the page's pause-on rules; those last armed */
	bool want_events;               /* the stream is to be attached (again) when it can be */
	uint64_t dropped_ns;            /* when the watch let its own stream go */
	int64_t poll_ns, timer;
	bool ended;
	bool kt_none;                   /* the kernel has no kt_state: stop asking */
	bool kt_dirty;                  /* a test event came: read kt_state at the next poll */
	struct {
		uint64_t seq;
		char *text;
	} recent[RECENT];
};

static void watch_end(struct ks_dash_watch *w, const char *outcome);
static void on_events(struct ks_loop *l, int fd, uint32_t events, void *data);
static void try_events(struct ks_dash_watch *w);

/* ---- control calls ---- */

/* A request (stolen) on the control connection, with -EIO made more telling for reads. */
static int call(struct ks_dash_watch *w, json_t *req, json_t **reply, int64_t timeout_ns,
		struct ks_error *err)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	char what[16];
	int rc;

	snprintf(what, sizeof(what), "%s", cmd ? cmd : "");
	if (w->ended) {
		json_decref(req);
		return ks_error_set(err, -ENOTCONN, "VM '%s' has ended", w->name);
	}
	rc = ks_ctl_call(w->ctl, req, reply, timeout_ns, err);
	if (rc == -ECONNRESET || rc == -EPIPE)
		return ks_error_set(err, -ENOTCONN, "VM '%s': its supervisor closed the "
				    "connection (the VM ended)", w->name);
	if (rc == -EIO && strstr(err->msg, "the VM has ended"))
		return -ENOTCONN;
	if (rc == -EIO && !strcmp(what, "symbol"))
		return -ENOENT;
	if (rc == -EIO && (!strcmp(what, "read") || !strcmp(what, "write") ||
			   !strcmp(what, "pagemap")))
		return -EINVAL;
	return rc;
}

/* The dashboard's backend: supervisor requests, as they are. */
static int watch_call(void *data, unsigned vm, json_t *req, json_t **reply,
		      struct ks_error *err)
{
	struct ks_dash_watch *w = data;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	bool slow = cmd && (!strcmp(cmd, "snapshot") || !strcmp(cmd, "step"));

	(void)vm;
	return call(w, json_incref(req), reply, slow ? SLOW_CALL_NS : CALL_NS, err);
}

/* ---- status and kt_ state ---- */

static enum ks_dash_vm_state state_of(const char *s)
{
	if (s && !strcmp(s, "paused"))
		return KS_DASH_VM_PAUSED;
	if (s && !strcmp(s, "ended"))
		return KS_DASH_VM_ENDED;
	return KS_DASH_VM_RUNNING;
}

/* The VM card from a status reply. */
static void take_status(struct ks_dash_watch *w, json_t *st)
{
	json_t *spec = json_object_get(st, "spec"), *topo = json_object_get(spec, "topology");
	double up = json_number_value(json_object_get(st, "uptime_s"));
	enum ks_dash_vm_state state = state_of(json_string_value(json_object_get(st, "state")));
	int before = ks_dash_vm_state(w->d, 1);
	struct ks_dash_vm v = {
		.vm = 1, .name = w->name, .state = state,
		.accel = json_string_value(json_object_get(st, "accel")),
		.machine = json_string_value(json_object_get(spec, "machine")),
		.kernel = json_string_value(json_object_get(spec, "kernel")),
		.cpus = (unsigned)json_integer_value(json_object_get(topo, "cpus")),
		.sockets = (unsigned)json_integer_value(json_object_get(topo, "sockets")),
		.cores = (unsigned)json_integer_value(json_object_get(topo, "cores")),
		.threads = (unsigned)json_integer_value(json_object_get(topo, "threads")),
		.memory_mib = (uint64_t)json_integer_value(json_object_get(spec, "memory_mib")),
		.started_ns = ks_loop_now_ns() - (uint64_t)(up * SEC),
	};

	/* Paused by someone else (kscope vm pause, a command's brief hold that lasted). */
	if (before >= 0 && before != KS_DASH_VM_PAUSED && state == KS_DASH_VM_PAUSED)
		ks_dash_paused(w->d, 1, "a command (kscope vm pause)");
	ks_dash_set_vm(w->d, &v);
}

static enum ks_dash_status kt_status(const char *s)
{
	static const struct { const char *name; enum ks_dash_status st; } map[] = {
		{ "none", KS_DASH_PENDING }, { "running", KS_DASH_RUNNING },
		{ "pass", KS_DASH_PASS }, { "fail", KS_DASH_FAIL }, { "skip", KS_DASH_SKIP },
	};

	for (size_t i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(s, map[i].name))
			return map[i].st;
	return KS_DASH_NSTATUS;  /* filtered out, or unknown: not shown */
}

/* One case of kt_state into the model. A final status the events gave (a crash, say) is not
 * taken back by kt_state, which still says the case runs. */
static void take_kt_case(struct ks_dash_watch *w, const char *suite, json_t *kc)
{
	const char *name = json_string_value(json_object_get(kc, "name"));
	enum ks_dash_status st = kt_status(json_string_value(json_object_get(kc, "status")));
	int now = name ? ks_dash_case_status(w->d, suite, name) : -1;
	json_int_t dur = json_integer_value(json_object_get(kc, "duration_ns"));
	struct ks_dash_case c = { suite, name, st, 1, st >= KS_DASH_PASS ? dur : -1, NULL,
				  json_string_value(json_object_get(kc, "fail_at")), NULL, NULL };

	if (!name || st == KS_DASH_NSTATUS)
		return;
	if (now >= KS_DASH_PASS && st <= KS_DASH_RUNNING)
		return;
	if (now == KS_DASH_CRASHED || now == KS_DASH_TIMEOUT)
		return;
	c.vm = st == KS_DASH_PENDING ? 0 : 1;
	ks_dash_set_case(w->d, &c);
}

/* The test tree from kt_state (the kernel's own records; nothing to arm). */
static void read_kt(struct ks_dash_watch *w)
{
	struct ks_error err = { 0 };
	json_t *r = NULL, *kt, *su, *kc;
	size_t i, j;
	int rc = call(w, json_pack("{s:s}", "cmd", "ktstate"), &r, CALL_NS, &err);

	w->kt_dirty = false;
	if (rc == -EIO && strstr(err.msg, "unknown symbol"))
		w->kt_none = true;
	kt = json_object_get(r, "kt");
	/* At boot the records are not filled in yet. */
	if (rc == 0 && json_is_string(json_object_get(kt, "phase")) &&
	    strcmp(json_string_value(json_object_get(kt, "phase")), "boot"))
		json_array_foreach(json_object_get(kt, "suites"), i, su)
			json_array_foreach(json_object_get(su, "cases"), j, kc)
				take_kt_case(w, json_string_value(json_object_get(su, "name")),
					     kc);
	json_decref(r);
}

static void poll_status(struct ks_dash_watch *w)
{
	struct ks_error err = { 0 };
	json_t *st = NULL;
	int rc = call(w, json_pack("{s:s}", "cmd", "status"), &st, CALL_NS, &err);

	/* A pause rule's own word on why the VM paused comes first, if it is in. */
	if (rc == 0 && w->events)
		on_events(w->loop, ks_ctl_client_fd(w->events), KS_LOOP_IN, w);
	if (rc == 0 && !w->ended)
		take_status(w, st);
	json_decref(st);
	if (rc == -ENOTCONN) {
		watch_end(w, NULL);
		return;
	}
	if (!w->ended && !w->kt_none &&
	    (w->kt_dirty || ks_dash_vm_state(w->d, 1) == KS_DASH_VM_RUNNING))
		read_kt(w);
}

static void on_poll(struct ks_loop *l, int64_t id, void *data)
{
	(void)l, (void)id;
	poll_status(data);
	try_events(data);
}

/* ---- the console ---- */

static void on_console(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_dash_watch *w = data;
	struct ks_error err = { 0 };
	json_t *m;
	int rc;

	(void)l, (void)fd, (void)events;
	while ((rc = ks_ctl_read(w->console, &m, 0, &err)) == 0) {
		const char *line = json_string_value(json_object_get(m, "line"));
		json_t *end = json_object_get(m, "end");

		if (line)
			ks_dash_console(w->d, 1, line, strlen(line),
					json_number_value(json_object_get(m, "ts")),
					(uint64_t)json_integer_value(json_object_get(m, "lineno")));
		if (end)
			watch_end(w, json_string_value(end));
		json_decref(m);
		if (w->ended)
			return;
	}
	if (rc != -ETIMEDOUT)
		watch_end(w, NULL);
}

static int follow_console(struct ks_dash_watch *w, struct ks_error *err)
{
	json_t *r = NULL, *l;
	size_t i;
	int rc;

	if (!(w->console = ks_ctl_connect(w->rundir, CONNECT_NS, err)))
		return err->code;
	rc = ks_ctl_call(w->console, json_pack("{s:s,s:i,s:b}", "cmd", "console", "tail",
					       CONSOLE_TAIL, "follow", 1), &r, CALL_NS, err);
	json_array_foreach(json_object_get(r, "lines"), i, l) {
		const char *text = json_string_value(json_object_get(l, "line"));

		if (text)
			ks_dash_console(w->d, 1, text, strlen(text),
					json_number_value(json_object_get(l, "ts")),
					(uint64_t)json_integer_value(json_object_get(l, "lineno")));
	}
	json_decref(r);
	/* A VM without a serial port has no console to follow: not a reason to give up. */
	if (rc < 0) {
		ks_ctl_client_free(w->console);
		w->console = NULL;
		return rc == -EIO ? 0 : rc;
	}
	return ks_loop_add_fd(w->loop, ks_ctl_client_fd(w->console), KS_LOOP_IN, on_console, w);
}

/* ---- events ---- */

static void remember(struct ks_dash_watch *w, json_t *m)
{
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(json_object_get(m, "event"),
								    "seq"));
	const char *text = json_string_value(json_object_get(m, "text"));

	free(w->recent[seq % RECENT].text);
	w->recent[seq % RECENT].seq = seq;
	w->recent[seq % RECENT].text = text ? strdup(text) : NULL;
}

/* A test event makes its case RUNNING or gives its result at once; kt_state adds the rest. */
static void test_event(struct ks_dash_watch *w, json_t *ev)
{
	const char *suite = json_string_value(json_object_get(ev, "suite"));
	const char *name = json_string_value(json_object_get(ev, "case"));
	const char *s = json_string_value(json_object_get(ev, "status"));
	enum ks_dash_status st = !s ? KS_DASH_NSTATUS : !strcmp(s, "crash") ? KS_DASH_CRASHED
				 : kt_status(s);
	struct ks_dash_case c = { suite, name, st, 1, -1, NULL, NULL, NULL, NULL };

	if (!suite || !name || st == KS_DASH_NSTATUS || st == KS_DASH_PENDING)
		return;
	if (st == KS_DASH_CRASHED)
		c.reason = "the kernel crashed while it ran";
	ks_dash_set_case(w->d, &c);
	w->kt_dirty = true;
}

/* "paused" from the stream: a rule's event, or the VM held at its shutdown or panic. */
static void paused_msg(struct ks_dash_watch *w, json_t *m)
{
	const char *why = json_string_value(json_object_get(m, "why"));
	json_t *jseq = json_object_get(m, "event");
	uint64_t seq = (uint64_t)json_integer_value(jseq);
	char text[600];
	const char *line = json_is_integer(jseq) && w->recent[seq % RECENT].seq == seq
			   ? w->recent[seq % RECENT].text : NULL;

	if (why && !strcmp(why, "event"))
		snprintf(text, sizeof(text), "a pause rule, at event %llu%s%s",
			 (unsigned long long)seq, line ? ": " : "", line ? line : "");
	else
		snprintf(text, sizeof(text), "its %s, which it cannot run past",
			 why && !strcmp(why, "panic") ? "panic" : "shutdown");
	ks_dash_paused(w->d, 1, text);
}

static void event_msg(struct ks_dash_watch *w, json_t *m)
{
	json_t *ev = json_object_get(m, "event");
	const char *kind = json_string_value(json_object_get(ev, "kind"));

	if (json_object_get(m, "end")) {
		watch_end(w, json_string_value(json_object_get(m, "end")));
	} else if (json_object_get(m, "paused")) {
		paused_msg(w, m);
	} else if (json_is_object(ev)) {
		remember(w, m);
		if (kind && !strcmp(kind, "test"))
			test_event(w, ev);
		ks_dash_event(w->d, 1, json_incref(ev));
	}
}

static void drop_events(struct ks_dash_watch *w)
{
	if (!w->events)
		return;
	ks_loop_del_fd(w->loop, ks_ctl_client_fd(w->events));
	ks_ctl_client_free(w->events);
	w->events = NULL;
}

static void on_events(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_dash_watch *w = data;
	struct ks_error err = { 0 };
	json_t *m;
	int rc = -ETIMEDOUT;

	(void)l, (void)fd, (void)events;
	while (w->events && (rc = ks_ctl_read(w->events, &m, 0, &err)) == 0) {
		event_msg(w, m);
		json_decref(m);
		if (w->ended)
			return;
	}
	if (w->events && rc != -ETIMEDOUT) {
		drop_events(w);
		ks_dash_set_events_why(w->d, "the event stream closed");
	}
}

/* The events request: cheap traces, and the page's pause rules. */
static json_t *events_req(const struct ks_dash_watch *w, bool full)
{
	json_t *trace = json_array(), *pause = json_array();

	/* test and magic need breakpoints on the magic sites, which KVM may not have; vm and
	 * serial cost nothing. Interrupts and exceptions would cost a breakpoint per vector. */
	if (full) {
		json_array_append_new(trace, json_string("test"));
		json_array_append_new(trace, json_string("magic"));
	}
	json_array_append_new(trace, json_string("vm"));
	json_array_append_new(trace, json_string("serial"));
	for (size_t i = 0; i < w->want.n; i++)
		json_array_append_new(pause, json_string(w->want.spec[i]));
	return json_pack("{s:s,s:o,s:o}", "cmd", "events", "trace", trace, "pause_on", pause);
}

/* Sends the events request on c: full traces, else (the accelerator cannot) the cheap ones. */
static int arm(struct ks_dash_watch *w, struct ks_ctl_client *c, bool *lite,
	       struct ks_error *err)
{
	json_t *r = NULL;
	int rc = ks_ctl_call(c, events_req(w, true), &r, SLOW_CALL_NS, err);

	*lite = false;
	if (rc == -EIO && json_is_true(json_object_get(json_object_get(r, "detail"),
						       "bad_request")) &&
	    !json_object_get(json_object_get(r, "detail"), "spec")) {
		json_decref(r);
		r = NULL;
		*lite = true;
		rc = ks_ctl_call(c, events_req(w, false), &r, SLOW_CALL_NS, err);
	}
	if (rc == -EIO && json_is_true(json_object_get(json_object_get(r, "detail"),
						       "bad_request")))
		rc = -EINVAL;
	json_decref(r);
	return rc;
}

/* One attempt at attaching the event stream: 0, -EBUSY while another client (or the one the
 * watch let go, until the supervisor has seen it leave) is attached, or -errno refused. */
static int attach_events(struct ks_dash_watch *w, struct ks_error *err)
{
	struct ks_ctl_client *c = ks_ctl_connect(w->rundir, CONNECT_NS, err);
	bool lite;
	int rc;

	if (!c)
		return err->code;
	if ((rc = arm(w, c, &lite, err)) < 0) {
		ks_ctl_client_free(c);
		return rc == -EIO && strstr(err->msg, "another events client") ? -EBUSY : rc;
	}
	if ((rc = ks_loop_add_fd(w->loop, ks_ctl_client_fd(c), KS_LOOP_IN, on_events, w)) < 0) {
		ks_ctl_client_free(c);
		return ks_error_set(err, rc, "out of memory");
	}
	w->events = c;
	ks_dash_set_events_why(w->d, lite ? "the accelerator cannot spare the breakpoints that "
			       "test and magic events need: only vm and serial events are shown"
			       : NULL);
	return 0;
}

static void set_rules(struct rules *r, const char *const *spec, size_t n)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->spec[i]);
	r->n = 0;
	for (size_t i = 0; i < n && i < MAX_RULES; i++)
		if ((r->spec[r->n] = strdup(spec[i])))
			r->n++;
}

static bool same_rules(const struct rules *a, const struct rules *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->spec[i], b->spec[i]))
			return false;
	return true;
}

/* Why there is no stream while another client holds it: ours on its way out, or another. */
static void note_busy(struct ks_dash_watch *w)
{
	bool ours = w->dropped_ns && ks_loop_now_ns() - w->dropped_ns < REATTACH_NS;

	ks_dash_set_events_why(w->d, ours ? "the event stream is being attached again, with "
			       "the new pause rules" : "another events client is attached to "
			       "this VM (kscope events): its events are not shown here until it "
			       "leaves");
}

/*
 * Attaches the stream if it is wanted and not there, from the poll: another events client is
 * no failure (the watch goes on without events, says why, and takes the stream when the
 * other leaves); rules the supervisor refuses give way to the ones armed before.
 */
static void try_events(struct ks_dash_watch *w)
{
	struct ks_error err = { 0 };
	char why[300];
	int rc;

	if (w->events || !w->want_events || w->ended)
		return;
	if ((rc = attach_events(w, &err)) == 0) {
		set_rules(&w->armed, (const char *const *)w->want.spec, w->want.n);
		return;
	}
	if (rc == -EBUSY) {
		note_busy(w);
		return;
	}
	snprintf(why, sizeof(why), "the event stream could not be attached: %s", err.msg);
	ks_dash_set_events_why(w->d, why);
	if (same_rules(&w->want, &w->armed))
		w->want_events = false;
	else
		set_rules(&w->want, (const char *const *)w->armed.spec, w->armed.n);
}

/* The backend's pause_on: the stream again, with the new rules. A refusal that comes at once
 * is the answer; one that comes later (the supervisor still letting the old stream go) is
 * in events_why, and the rules armed before come back. */
static int watch_pause_on(void *data, unsigned vm, const char *const *rules, size_t n,
			  struct ks_error *err)
{
	struct ks_dash_watch *w = data;
	int rc;

	(void)vm;
	if (w->ended)
		return ks_error_set(err, -ENOTCONN, "VM '%s' has ended", w->name);
	if (n > MAX_RULES)
		return ks_error_set(err, -EINVAL, "at most %d rules", MAX_RULES);
	drop_events(w);
	w->dropped_ns = ks_loop_now_ns();
	set_rules(&w->want, rules, n);
	w->want_events = true;
	if ((rc = attach_events(w, err)) == 0) {
		set_rules(&w->armed, rules, n);
		return 0;
	}
	if (rc == -EBUSY) {
		note_busy(w);
		return 0;
	}
	/* The poll attaches the stream again with the rules armed before. */
	set_rules(&w->want, (const char *const *)w->armed.spec, w->armed.n);
	return rc;
}

/* ---- the end ---- */

/* The VM ended (outcome: how, when known): `vm`, `end`, and the dashboard serves on. */
static void watch_end(struct ks_dash_watch *w, const char *outcome)
{
	char why[400];

	if (w->ended)
		return;
	w->ended = true;
	if (w->timer > 0)
		ks_loop_del_timer(w->loop, w->timer);
	w->timer = 0;
	drop_events(w);
	if (w->console) {
		ks_loop_del_fd(w->loop, ks_ctl_client_fd(w->console));
		ks_ctl_client_free(w->console);
		w->console = NULL;
	}
	snprintf(why, sizeof(why), "VM '%s' ended%s%s", w->name, outcome ? ": " : "",
		 outcome ? outcome : "");
	ks_dash_settle_running(w->d, 1, KS_DASH_CRASHED, "the VM ended while it ran");
	ks_dash_set_vm_state(w->d, 1, KS_DASH_VM_ENDED, outcome ? outcome : "ended");
	ks_dash_end(w->d, why);
}

/* ---- life ---- */

/* The first status: the VM must be there. */
static int first_status(struct ks_dash_watch *w, struct ks_error *err)
{
	json_t *st = NULL;
	int rc = call(w, json_pack("{s:s}", "cmd", "status"), &st, CALL_NS, err);

	if (rc == 0)
		take_status(w, st);
	json_decref(st);
	return rc;
}

static struct ks_dash *make_dash(struct ks_dash_watch *w, const struct ks_dash_watch_opts *o,
				 struct ks_error *err)
{
	struct ks_dash_opts dopts;

	ks_dash_opts_init(&dopts);
	dopts.mode = KS_DASH_WATCH;
	dopts.title = o->name;
	dopts.addr = o->addr;
	dopts.port = o->port;
	dopts.token = o->token;
	dopts.controls = true;
	dopts.call = watch_call;
	dopts.pause_on = watch_pause_on;
	dopts.data = w;
	return ks_dash_new(w->loop, &dopts, err);
}

struct ks_dash_watch *ks_dash_watch_new(struct ks_loop *loop, struct ks_ctl_client *ctl,
					const struct ks_dash_watch_opts *o,
					struct ks_error *err)
{
	struct ks_dash_watch *w = calloc(1, sizeof(*w));
	struct ks_error local = { 0 };

	if (!err)
		err = &local;
	if (!w) {
		ks_ctl_client_free(ctl);
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	w->loop = loop;
	w->ctl = ctl;
	if (!(w->name = strdup(o->name)) || !(w->rundir = strdup(o->rundir))) {
		ks_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	w->poll_ns = o->poll_ns > 0 ? o->poll_ns : POLL_NS;
	if (!(w->d = make_dash(w, o, err)) || first_status(w, err) < 0 ||
	    follow_console(w, err) < 0)
		goto fail;
	w->want_events = true;
	try_events(w);
	read_kt(w);
	w->timer = ks_loop_add_timer(loop, (uint64_t)w->poll_ns, (uint64_t)w->poll_ns, on_poll,
				     w);
	if (w->timer < 0) {
		ks_error_set(err, (int)w->timer, "out of memory");
		goto fail;
	}
	return w;
fail:
	ks_dash_watch_free(w);
	return NULL;
}

void ks_dash_watch_free(struct ks_dash_watch *w)
{
	if (!w)
		return;
	if (w->timer > 0)
		ks_loop_del_timer(w->loop, w->timer);
	drop_events(w);
	if (w->console)
		ks_loop_del_fd(w->loop, ks_ctl_client_fd(w->console));
	ks_ctl_client_free(w->console);
	ks_ctl_client_free(w->ctl);
	ks_dash_free(w->d);
	set_rules(&w->want, NULL, 0);
	set_rules(&w->armed, NULL, 0);
	for (size_t i = 0; i < RECENT; i++)
		free(w->recent[i].text);
	free(w->name);
	free(w->rundir);
	free(w);
}

struct ks_dash *ks_dash_watch_dash(struct ks_dash_watch *w)
{
	return w->d;
}

bool ks_dash_watch_ended(const struct ks_dash_watch *w)
{
	return w->ended;
}
