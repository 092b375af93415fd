/* supervisor_events.c: the supervisor's event monitor: the events stream to one client, pause, resume and step through it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/monitor.h>
#include <kscope/qmp.h>

#include "inspect_internal.h"
#include "monitor_internal.h"

#define SEC 1000000000ll
#define PAUSE_WAIT_NS (5 * SEC)     /* for a pause asked of the monitor to take effect */
#define PAUSE_NOTE_NS (10 * SEC)    /* how long a pause action is watched for its effect */
#define PAUSE_POLL_NS 1000000ll
#define HMP_NS (10 * SEC)

/* The monitor of the one events client, and what the supervisor tracks around it. */
struct sup_monitor {
	struct ks_supervisor *s;
	struct ks_ctl_conn *c;      /* the events client; NULL once it left */
	json_t *id;                 /* of its request, for every streamed message */
	struct ks_evrules *rules;
	struct ks_monitor *m;       /* NULL while it is being set up */
	bool user_paused;           /* paused by the pause command (or before events came): it
				     * stays paused when the client leaves */
	unsigned holds;             /* accesses going on that need it paused */
	bool hold_paused;           /* one of them paused it: the last one resumes it */
	bool leaving;               /* the client left: detach at the top of the loop */
	int64_t pause_timer;        /* watching for a pause to take effect, to tell the client */
	uint64_t pause_deadline, pause_seq;
	const char *pause_why;
};

bool sup_monitor_attached(const struct ks_supervisor *s)
{
	return s->monitor && s->monitor->m;
}

bool sup_monitor_defer(void *data)
{
	const struct ks_supervisor *s = data;

	return s->monitor != NULL;
}

bool sup_monitor_client(const struct ks_supervisor *s, const struct ks_ctl_conn *c)
{
	return s->monitor && s->monitor->c == c;
}

const char *sup_run_state(struct ks_supervisor *s)
{
	if (s->ended || !s->vm || ks_vm_state(s->vm) == KS_VM_ENDED)
		return ks_supervisor_state_name(KS_VM_ENDED);
	if (sup_monitor_attached(s))
		return ks_supervisor_state_name(ks_monitor_paused(s->monitor->m) ? KS_VM_PAUSED
									     : KS_VM_RUNNING);
	return ks_supervisor_state_name(ks_vm_state(s->vm));
}

/* Sends msg (stolen) to the events client, with its request's id. */
static void send_msg(struct sup_monitor *sm, json_t *msg)
{
	if (!sm->c || !msg) {
		json_decref(msg);
		return;
	}
	json_object_set(msg, "id", sm->id);
	ks_ctl_conn_send(sm->c, msg);
}

/* ---- telling the client ---- */

static void on_pause_check(struct ks_loop *l, int64_t id, void *data)
{
	struct sup_monitor *sm = data;
	bool paused = ks_monitor_paused(sm->m);

	if (paused)
		send_msg(sm, json_pack("{s:b,s:o,s:s}", "paused", 1, "event", sm->pause_seq
				       ? json_integer((json_int_t)sm->pause_seq) : json_null(),
				       "why", sm->pause_why));
	if (paused || ks_monitor_ended(sm->m) || ks_loop_now_ns() > sm->pause_deadline) {
		ks_loop_del_timer(l, id);
		sm->pause_timer = 0;
	}
}

/* Tells the client once the VM is paused: a pause takes effect a stop reply or a QMP round
 * trip after the event that asked for it. */
static void watch_pause(struct sup_monitor *sm, uint64_t seq, const char *why)
{
	sm->pause_seq = seq;
	sm->pause_why = why;
	sm->pause_deadline = ks_loop_now_ns() + PAUSE_NOTE_NS;
	if (sm->pause_timer <= 0)
		sm->pause_timer = ks_loop_add_timer(sm->s->loop, 0, PAUSE_POLL_NS, on_pause_check,
						    sm);
}

static void on_event(struct ks_monitor *m, const struct ks_event *ev, enum ks_evaction a,
		     void *data)
{
	struct sup_monitor *sm = data;
	char text[1024];

	(void)m;
	ks_event_format(ev, text, sizeof(text));
	send_msg(sm, json_pack("{s:o,s:s,s:s}", "event", ks_event_to_json(ev), "action",
			       ks_evaction_name(a), "text", text));
	if (a == KS_EVACT_PAUSE)
		watch_pause(sm, ev->seq, "event");
}

static void on_dump(struct ks_monitor *m, const struct ks_monitor_dump *d, void *data)
{
	struct sup_monitor *sm = data;
	char *text = ks_monitor_dump_format(d);

	(void)m;
	send_msg(sm, json_pack("{s:o,s:s?}", "dump", ks_monitor_dump_to_json(d), "text", text));
	free(text);
}

static void on_warn(struct ks_monitor *m, const char *msg, void *data)
{
	struct sup_monitor *sm = data;

	(void)m;
	sup_log(sm->s, "events: %s", msg);
	send_msg(sm, json_pack("{s:s}", "warning", msg));
}

void sup_monitor_vm_event(struct ks_supervisor *s, const char *event)
{
	struct sup_monitor *sm = s->monitor;

	if (!sm || !sm->m)
		return;
	ks_monitor_vm_event(sm->m, event, NULL);
	if (!event) {
		send_msg(sm, json_pack("{s:s,s:s}", "end", s->outcome.detail, "outcome",
				       ks_supervisor_end_name(s->outcome.end)));
		return;
	}
	/* Events keep pause_on_shutdown on: the VM holds still at these for a look. */
	if (!strcmp(event, "SHUTDOWN"))
		watch_pause(sm, 0, "shutdown");
	else if (!strcmp(event, "GUEST_PANICKED"))
		watch_pause(sm, 0, "panic");
}

/* ---- run control through the monitor ---- */

/* The monitor names its call ("resume: ..."); the client names the command already. */
static int unprefix(struct ks_error *err, const char *verb, int rc)
{
	size_t n = strlen(verb);

	if (rc < 0 && err && !strncmp(err->msg, verb, n) && !strncmp(err->msg + n, ": ", 2))
		memmove(err->msg, err->msg + n + 2, strlen(err->msg + n + 2) + 1);
	return rc;
}

/* Runs the loop until the monitor holds the VM paused (or it ended). */
static int await_paused(struct ks_supervisor *s, const char *what, struct ks_error *err)
{
	uint64_t end = ks_loop_now_ns() + PAUSE_WAIT_NS;

	while (s->monitor && s->monitor->m && !ks_monitor_paused(s->monitor->m) &&
	       !ks_monitor_ended(s->monitor->m) && ks_loop_now_ns() < end)
		ks_loop_run_once(s->loop, SEC / 20);
	if (!sup_monitor_attached(s) || ks_monitor_ended(s->monitor->m))
		return ks_error_set(err, -ENOTCONN, "%s: the VM has ended", what);
	if (!ks_monitor_paused(s->monitor->m))
		return ks_error_set(err, -ETIMEDOUT, "%s: the VM did not pause in time", what);
	return 0;
}

int sup_monitor_pause(struct ks_supervisor *s, struct ks_error *err)
{
	int rc = ks_monitor_pause(s->monitor->m, err);

	if (rc < 0)
		return unprefix(err, "pause", rc);
	s->monitor->user_paused = true;
	return await_paused(s, "pause", err);
}

int sup_monitor_resume(struct ks_supervisor *s, struct ks_error *err)
{
	int rc = ks_monitor_resume(s->monitor->m, err);

	if (rc == 0)
		s->monitor->user_paused = false;
	return unprefix(err, "resume", rc);
}

int sup_monitor_hold(struct ks_supervisor *s, bool *paused, struct ks_error *err)
{
	struct sup_monitor *sm = s->monitor;
	int rc;

	*paused = false;
	/* A pause an event asked for is on its way: it is the event's, not ours to undo. */
	if (!ks_monitor_paused(sm->m) && sm->pause_timer <= 0) {
		if ((rc = ks_monitor_pause(sm->m, err)) < 0)
			return rc;
		*paused = true;
	}
	sm->holds++;
	sm->hold_paused |= *paused;
	if ((rc = await_paused(s, "pause", err)) < 0)
		sup_monitor_release(s);
	return rc;
}

void sup_monitor_release(struct ks_supervisor *s)
{
	struct sup_monitor *sm = s->monitor;
	struct ks_error e = { 0 };

	if (!sm || !sm->m || !sm->holds || --sm->holds > 0 || !sm->hold_paused)
		return;
	sm->hold_paused = false;
	if (!sm->user_paused && ks_monitor_paused(sm->m) && ks_monitor_resume(sm->m, &e) < 0)
		sup_log(s, "events: cannot resume the VM: %s", e.msg);
}

/* ---- the events command ---- */

/* Adds the specs of req's array key to rs; a malformed one gets the caret form in detail. */
static int add_specs(json_t *req, const char *key, struct ks_evrules *rs, json_t *reply,
		     struct ks_error *err)
{
	json_t *a = json_object_get(req, key), *v;
	bool on = !strcmp(key, "on");
	char caret[1024];
	size_t i;
	int rc;

	if (a && !json_is_array(a))
		return ks_error_set(err, -EINVAL, "\"%s\" must be an array of filter specs", key);
	json_array_foreach(a, i, v) {
		const char *spec = json_string_value(v);

		if (!spec)
			return ks_error_set(err, -EINVAL, "\"%s\" must hold strings", key);
		rc = on ? ks_evrules_add_on(rs, spec, err)
		     : !strcmp(key, "trace") ? ks_evrules_add_trace(rs, spec, err)
		     : ks_evrules_add_pause_on(rs, spec, err);
		if (rc == -EINVAL) {
			ks_evfilter_caret(spec, on, caret, sizeof(caret));
			json_object_set_new(reply, "detail", json_pack("{s:s,s:s,s:b}", "spec",
								       spec, "caret", caret,
								       "bad_request", 1));
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static struct ks_evrules *parse_rules(json_t *req, json_t *reply, struct ks_error *err)
{
	struct ks_evrules *rs = ks_evrules_new(err);

	if (!rs || add_specs(req, "trace", rs, reply, err) < 0 ||
	    add_specs(req, "pause_on", rs, reply, err) < 0 ||
	    add_specs(req, "on", rs, reply, err) < 0)
		goto fail;
	if (ks_evrules_count(rs))
		return rs;
	ks_error_set(err, -EINVAL, "no rules: give \"trace\", \"pause_on\" or \"on\"");
	json_object_set_new(reply, "detail", json_pack("{s:b}", "bad_request", 1));
fail:
	ks_evrules_free(rs);
	return NULL;
}

/*
 * While events are attached a triple fault or a power-off pauses the VM with its state, for
 * a dump, unless its owner asked for that anyway (then it is left as the owner set it).
 */
static int events_pause_at_shutdown(struct ks_supervisor *s, bool on, struct ks_error *err)
{
	if (s->opts.vm.pause_on_shutdown || s->ended)
		return 0;
	return ks_vm_set_pause_on_shutdown(s->vm, on, err);
}

/* Whether QEMU writes the -d int trace for this VM (log item "int", among others). */
static bool has_int_trace(const struct ks_supervisor *s)
{
	const char *p = s->opts.vm.log_items;

	while (p && *p) {
		if (!strncmp(p, "int", 3) && (p[3] == 0 || p[3] == ','))
			return true;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return false;
}

/* Stops the VM for the monitor (it starts on a stopped VM) and creates it; passive: from the
 * -d int trace. *was_running says whether the VM ran before. */
static int attach(struct ks_supervisor *s, struct sup_monitor *sm, const char *entry,
		  bool passive, bool *was_running, struct ks_error *err)
{
	struct sup_access a = { .cmd = "events", .phys = true };
	struct sup_inspect *in = s->inspect;
	struct ks_monitor_opts mo;
	int rc;

	if ((rc = sup_access_begin(s, &a, true, err)) < 0 || (rc = sup_gdb_ready(s, err)) < 0 ||
	    (rc = sup_need_mem(s, err)) < 0)
		goto out;
	if ((rc = events_pause_at_shutdown(s, true, err)) < 0)
		goto out;
	ks_monitor_opts_init(&mo);
	mo.syscall_entry = entry;
	mo.passive = passive;
	mo.on_event = on_event;
	mo.event_data = sm;
	mo.on_dump = on_dump;
	mo.dump_data = sm;
	mo.on_warn = on_warn;
	mo.warn_data = sm;
	sm->m = ks_monitor_new(s->loop, s->vm, in->gdb, in->mem, in->syms, sm->rules, &mo, err);
	if (!sm->m) {
		rc = err ? err->code : -ENOMEM;
		events_pause_at_shutdown(s, false, NULL);
	}
out:
	*was_running = a.paused;
	/* The monitor now runs the VM; without one it runs again as it did. */
	if (sm->m)
		a.paused = false;
	sup_access_end(s, &a);
	return rc;
}

static void free_monitor(struct sup_monitor *sm)
{
	if (sm->c)
		ks_ctl_conn_on_close(sm->c, NULL, NULL);
	if (sm->pause_timer > 0)
		ks_loop_del_timer(sm->s->loop, sm->pause_timer);
	ks_monitor_free(sm->m);
	ks_evrules_free(sm->rules);
	json_decref(sm->id);
	free(sm);
}

static void on_client_gone(struct ks_ctl_conn *c, void *data)
{
	struct sup_monitor *sm = data;

	(void)c;
	sm->c = NULL;
	sm->leaving = true;
}

/* Runs the VM, or holds it as it was (paused before events came: the user's pause). */
static int start(struct sup_monitor *sm, bool run, struct ks_error *err)
{
	int rc;

	if (run)
		return ks_monitor_resume(sm->m, err);
	if ((rc = ks_monitor_pause(sm->m, err)) == 0)
		sm->user_paused = true;
	return rc;
}

/* Undoes a monitor that could not start: the VM goes on as before events came. */
static void unstart(struct ks_supervisor *s, struct sup_monitor *sm, bool was_running)
{
	struct ks_gdb *g = s->inspect->gdb;

	ks_monitor_free(sm->m);
	sm->m = NULL;
	if (s->ended)
		return;
	events_pause_at_shutdown(s, false, NULL);
	if (was_running && ks_gdb_state(g) == KS_GDB_STOPPED)
		ks_gdb_continue(g, NULL);
}

/* A passive client needs the trace, which only a VM started with it has. */
static int check_passive(struct ks_supervisor *s, json_t *reply, struct ks_error *err)
{
	if (has_int_trace(s))
		return 0;
	json_object_set_new(reply, "detail", json_pack("{s:b}", "bad_request", 1));
	return ks_error_set(err, -EOPNOTSUPP, "passive: VM '%s' was started without the -d int "
			    "trace (kscope vm start --trace-interrupts, under TCG)",
			    ks_vm_name(s->vm));
}

/*
 * {"trace": [SPEC...], "pause_on": [SPEC...], "on": ["SPEC=ACTION"...], "resume": bool,
 * "syscall_entry": SYMBOL, "passive": bool}: arms the monitor, replies {"armed", "state",
 * "accel"} and streams {"event", "action", "text"}, {"dump", "text"}, {"paused", "event",
 * "why"}, {"warning"} and at the VM's end {"end", "outcome"}. With "passive", interrupts and
 * exceptions come from QEMU's -d int trace, which the VM must have been started with. A bad
 * spec fails with "detail": {"spec", "caret", "bad_request"}; rules this VM cannot serve
 * (KVM's four hardware breakpoints, passive without the trace) with "detail":
 * {"bad_request"}.
 */
int sup_h_events(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		 void *data)
{
	struct ks_supervisor *s = data;
	const char *entry = json_string_value(json_object_get(req, "syscall_entry"));
	bool resume = json_is_true(json_object_get(req, "resume")), was_running = false;
	bool passive = json_is_true(json_object_get(req, "passive"));
	struct sup_monitor *sm;
	char armed[2048];
	int rc;

	if (s->ended || !s->vm || ks_vm_state(s->vm) == KS_VM_ENDED)
		return ks_error_set(err, -ENOTCONN, "the VM has ended (%s)", s->outcome.detail);
	if (s->monitor)
		return ks_error_set(err, -EBUSY, "another events client is attached to this VM "
				    "(one at a time)");
	for (struct sup_follower *f = s->followers; f; f = f->next)
		if (f->c == c)
			return ks_error_set(err, -EBUSY, "this connection follows the console: use "
					    "another one");
	if (passive && (rc = check_passive(s, reply, err)) < 0)
		return rc;
	if (!(sm = calloc(1, sizeof(*sm))))
		return ks_error_set(err, -ENOMEM, "out of memory");
	*sm = (struct sup_monitor){ .s = s, .c = c, .id = json_object_get(req, "id") };
	sm->id = json_incref(sm->id ? sm->id : json_null());
	/* Claimed now: setting up runs the loop, and another client may ask meanwhile. */
	s->monitor = sm;
	if (!(sm->rules = parse_rules(req, reply, err)))
		rc = err ? err->code : -ENOMEM;
	else if ((rc = attach(s, sm, entry, passive, &was_running, err)) == -ENOSPC ||
		 rc == -EOPNOTSUPP)
		json_object_set_new(reply, "detail", json_pack("{s:b}", "bad_request", 1));
	if (rc == 0 && (rc = start(sm, was_running || resume, err)) < 0)
		unstart(s, sm, was_running);
	if (rc < 0) {
		sm->c = NULL;
		s->monitor = NULL;
		free_monitor(sm);
		return unprefix(err, "events", rc);
	}
	ks_ctl_conn_on_close(c, on_client_gone, sm);
	ks_monitor_describe(sm->m, armed, sizeof(armed));
	sup_log(s, "events: client pid %d attached: %s", (int)ks_ctl_conn_peer_pid(c), armed);
	json_object_set_new(reply, "armed", json_string(armed));
	json_object_set_new(reply, "state", json_string(sup_run_state(s)));
	json_object_set_new(reply, "accel", json_string(ks_accel_name(ks_vm_accel(s->vm))));
	return KS_CTL_STREAM;
}

/* ---- the client leaves ---- */

/*
 * What the VM does once its events client left: a VM paused at its shutdown ends, as it
 * would have without events (its outcome names the triple fault or power-off); one paused
 * by the user stays paused; one paused by a rule runs on. The monitor's breakpoints go.
 */
static void detach(struct ks_supervisor *s, struct sup_monitor *sm)
{
	bool paused = ks_monitor_paused(sm->m) && !s->ended;
	bool at_shutdown = paused && ks_vm_shutdown_reason(s->vm) &&
			   !s->opts.vm.pause_on_shutdown;
	struct ks_gdb *g = s->inspect->gdb;
	struct ks_error e = { 0 };

	if (sm->pause_timer > 0)
		ks_loop_del_timer(s->loop, sm->pause_timer);
	sm->pause_timer = 0;
	/* s->monitor stays set until the end: removing the breakpoints and resuming talk to
	 * the gdbstub, and a request that comes meanwhile (the next events client, say) must
	 * wait for that (sup_monitor_defer()) rather than send its own packets in between. */
	ks_monitor_free(sm->m);
	sm->m = NULL;
	if (s->ended) {
		sup_log(s, "events: client left");
	} else if (at_shutdown) {
		sup_log(s, "events: client left; the VM paused at its shutdown: ending it");
		ks_vm_destroy(s->vm);
	} else {
		if (events_pause_at_shutdown(s, false, &e) < 0)
			sup_log(s, "events: %s", e.msg);
		if (paused && !sm->user_paused && ks_gdb_state(g) == KS_GDB_STOPPED &&
		    ks_gdb_continue(g, &e) < 0)
			sup_log(s, "events: cannot resume the VM: %s", e.msg);
		sup_log(s, "events: client left; the VM %s", paused && sm->user_paused
			? "stays paused" : "runs on");
	}
	s->monitor = NULL;
	free_monitor(sm);
}

void sup_monitor_reap(struct ks_supervisor *s)
{
	if (s->monitor && s->monitor->leaving && s->monitor->m)
		detach(s, s->monitor);
}

void sup_monitor_free(struct ks_supervisor *s)
{
	if (!s->monitor)
		return;
	free_monitor(s->monitor);
	s->monitor = NULL;
}

/* ---- step ---- */

/* Steps a VM without a monitor: paused, through the gdb client. */
static int step_plain(struct ks_supervisor *s, unsigned cpu, struct ks_x86_regs *r,
		      struct ks_error *err)
{
	struct sup_inspect *in = s->inspect;
	uint64_t end;
	int rc;

	if (ks_vm_state(s->vm) != KS_VM_PAUSED)
		return ks_error_set(err, -EBUSY, "the VM runs: pause it first");
	if ((rc = sup_gdb_ready(s, err)) < 0)
		return rc;
	if (cpu >= ks_gdb_vcpu_count(in->gdb))
		return ks_error_set(err, -EINVAL, "no vCPU %u (the VM has %u)", cpu,
				    ks_gdb_vcpu_count(in->gdb));
	/* QEMU reports the step over QMP as a RESUME and a STOP: the RESUME is no news. */
	in->own_resumes++;
	rc = ks_gdb_step(in->gdb, cpu, NULL, err);
	if (rc == -EBUSY || rc == -ENOTCONN || rc == -EINVAL)
		in->own_resumes--;
	if (rc < 0)
		return rc;
	end = ks_loop_now_ns() + 2 * SEC;
	while (!s->ended && (in->own_resumes || ks_vm_state(s->vm) != KS_VM_PAUSED) &&
	       ks_loop_now_ns() < end)
		ks_loop_run_once(s->loop, SEC / 20);
	return ks_gdb_read_regs(in->gdb, cpu, r, err);
}

/*
 * A halted vCPU (hlt) runs again only at an interrupt, which it may never get while it alone
 * steps: the step would not end. QEMU's register dump says which are halted.
 */
static int need_running_cpu(struct ks_supervisor *s, unsigned cpu, struct ks_error *err)
{
	struct ks_mon_hmp_cpu *cpus = calloc(cpu + 1, sizeof(*cpus));
	char *out = NULL;
	int rc, n;

	if (!cpus)
		return ks_error_set(err, -ENOMEM, "out of memory");
	rc = ks_qmp_hmp(ks_vm_qmp(s->vm), "info registers -a", &out, HMP_NS, err);
	n = rc == 0 ? ks_mon_parse_hmp_regs(out, cpus, cpu + 1) : 0;
	for (int i = 0; i < n; i++)
		if (cpus[i].index == cpu && cpus[i].halted)
			rc = ks_error_set(err, -EAGAIN, "vCPU %u is halted (hlt): it runs again at its "
					  "next interrupt; step another vCPU or resume the VM", cpu);
	free(out);
	free(cpus);
	return rc;
}

/* {"cpu": N (default 0)}: steps that vCPU of the paused VM one instruction; replies {"cpu",
 * "rip", "symbol", "regs": {...}}. */
int sup_h_step(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data)
{
	struct ks_supervisor *s = data;
	struct sup_access a;
	struct ks_x86_regs r;
	int rc;

	(void)c;
	if ((rc = sup_access_parse(s, req, "step", NULL, &a, err)) < 0 ||
	    (rc = need_running_cpu(s, a.cpu, err)) < 0)
		return rc;
	if (sup_monitor_attached(s))
		rc = unprefix(err, "step", ks_monitor_step(s->monitor->m, a.cpu, &r, err));
	else
		rc = step_plain(s, a.cpu, &r, err);
	if (rc < 0)
		return rc;
	json_object_set_new(reply, "cpu", json_integer(a.cpu));
	json_object_set_new(reply, "rip", sup_hex(r.rip));
	sup_add_symbol(s, reply, r.rip);
	json_object_set_new(reply, "regs", sup_regs_json(a.cpu, &r));
	return 0;
}
