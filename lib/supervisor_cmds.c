/* supervisor_cmds.c: the control commands a VM's supervisor serves (status, pause, console...). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kscope/qmp.h>

#include "supervisor_private.h"

#define SEC 1000000000ll
#define QMP_TIMEOUT_NS (10 * SEC)
#define STOP_TIMEOUT_NS (10 * SEC)
#define TAIL_DEFAULT 100

/* Fails the request when the VM is gone; every handler that acts on it starts here. */
static int need_vm(struct ks_supervisor *s, struct ks_error *err)
{
	if (s->ended || !s->vm || ks_vm_state(s->vm) == KS_VM_ENDED)
		return ks_error_set(err, -ENOTCONN, "the VM has ended (%s)", s->outcome.detail);
	return 0;
}

/* Writes the CPUs set in mask as a Linux CPU list ("0-1,4") into buf. */
static void cpu_list(const uint64_t *mask, unsigned ncpus, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < ncpus && o < size; i++) {
		unsigned j = i;

		if (!(mask[i / 64] >> (i % 64) & 1))
			continue;
		while (j + 1 < ncpus && mask[(j + 1) / 64] >> ((j + 1) % 64) & 1)
			j++;
		o += (size_t)snprintf(buf + o, size - o, j > i ? "%s%u-%u" : "%s%u", o ? "," : "",
				      i, j);
		i = j;
	}
}

static json_t *spec_json(const struct ks_vmspec *sp)
{
	struct ks_vmspec_topology t = { 0 };
	json_t *numa = json_array();
	char cpus[512];

	ks_vmspec_topology(sp, &t, NULL);
	for (size_t i = 0; i < sp->nnuma; i++) {
		cpu_list(sp->numa[i].cpus, t.cpus, cpus, sizeof(cpus));
		json_array_append_new(numa, json_pack("{s:i,s:I,s:s}", "node", (int)i, "memory_mib",
						      (json_int_t)sp->numa[i].memory_mib, "cpus",
						      cpus));
	}
	return json_pack("{s:s,s:{s:i,s:i,s:i,s:i},s:I,s:o,s:s?,s:s?}",
			 "machine", ks_machine_name(sp->machine),
			 "topology", "cpus", (int)t.cpus, "sockets", (int)t.sockets, "cores",
			 (int)t.cores, "threads", (int)t.threads,
			 "memory_mib", (json_int_t)ks_vmspec_memory_mib(sp), "numa", numa,
			 "kernel", sp->kernel, "append", sp->append);
}

static json_t *events_json(const struct ks_supervisor *s)
{
	json_t *a = json_array();
	unsigned first = s->nevents > SUP_EVENTS ? s->nevents - SUP_EVENTS : 0;

	for (unsigned i = first; i < s->nevents; i++) {
		const struct sup_event *e = &s->events[i % SUP_EVENTS];

		json_array_append_new(a, json_pack("{s:s,s:f}", "event", e->name, "ts",
						   e->wall_ns / 1e9));
	}
	return a;
}

/* Adds QEMU's own view: its run state and query-cpus-fast, as QEMU reports them. */
static void qemu_view(struct ks_supervisor *s, json_t *reply)
{
	struct ks_qmp *q = ks_vm_qmp(s->vm);
	struct ks_error e = { 0 };
	json_t *r = NULL;

	if (q && ks_qmp_call(q, "query-status", NULL, &r, QMP_TIMEOUT_NS, &e) == 0)
		json_object_set(reply, "qemu_status", json_object_get(r, "status"));
	json_decref(r);
	r = NULL;
	if (q && ks_qmp_call(q, "query-cpus-fast", NULL, &r, QMP_TIMEOUT_NS, &e) == 0)
		json_object_set_new(reply, "cpus", r);
	else
		json_object_set_new(reply, "cpus_error", json_string(e.msg));
}

static int h_status(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		    void *data)
{
	struct ks_supervisor *s = data;
	struct ks_vm *vm = s->vm;
	const struct ks_vm_outcome *o;
	json_t *base;
	int rc;

	(void)c, (void)req;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	o = ks_vm_outcome(vm);
	base = json_pack("{s:s,s:s,s:s,s:s?,s:i,s:i,s:f,s:s,s:o,s:o,s:{s:s,s:s,s:b}}",
			 "name", ks_vm_name(vm), "state", sup_run_state(s),
			 "accel", ks_accel_name(ks_vm_accel(vm)), "accel_reason",
			 ks_vm_accel_reason(vm), "qemu_pid", (int)ks_vm_pid(vm),
			 "supervisor_pid", (int)getpid(),
			 "uptime_s", (ks_loop_now_ns() - ks_vm_started_ns(vm)) / 1e9,
			 "rundir", s->rundir, "spec", spec_json(ks_vm_spec(vm)),
			 "events", events_json(s), "outcome", "end",
			 ks_supervisor_end_name(o->end), "detail", o->detail, "panicked",
			 o->panicked);
	if (!base)
		return ks_error_set(err, -ENOMEM, "out of memory");
	json_object_update(reply, base);
	json_decref(base);
	qemu_view(s, reply);
	/* It may have ended during those QMP calls. */
	return need_vm(s, err);
}

/* Whether a QMP call failed because the connection went (QEMU exiting, most likely). */
static bool lost_qmp(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == -ENOTCONN || rc == -ESHUTDOWN;
}

/* Waits (running the loop, at most 2 s) until the VM reaches state, as the QMP events report
 * it, or ends. */
static void await_state(struct ks_supervisor *s, enum ks_vm_state want)
{
	uint64_t end = ks_loop_now_ns() + 2 * SEC;

	while (!s->ended && ks_vm_state(s->vm) != want && ks_loop_now_ns() < end)
		ks_loop_run_once(s->loop, 50000000);
}

static int h_pause(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		   void *data)
{
	struct ks_supervisor *s = data;
	int rc;

	(void)c, (void)req;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	/* Through the monitor, which tells its breakpoint stops from a pause. */
	if (sup_monitor_attached(s))
		rc = sup_monitor_pause(s, err);
	else if ((rc = ks_vm_pause(s->vm, err)) == 0)
		await_state(s, KS_VM_PAUSED);
	if (rc < 0 || (rc = need_vm(s, err)) < 0)
		return rc;
	json_object_set_new(reply, "state", json_string(sup_run_state(s)));
	return 0;
}

static int h_resume(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		    void *data)
{
	struct ks_supervisor *s = data;
	int rc;

	(void)c, (void)req;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	/* Continuing otherwise would stop again at the breakpoint the monitor holds it at. */
	if (sup_monitor_attached(s))
		rc = sup_monitor_resume(s, err);
	else if ((rc = ks_vm_resume(s->vm, err)) == 0)
		await_state(s, KS_VM_RUNNING);
	else if (lost_qmp(rc))
		await_state(s, KS_VM_ENDED);  /* QMP went with QEMU: wait for its end */
	/* A guest that ends right after `cont` may take QMP down before QEMU answers (its
	 * RESUME event may come first, or not): it did run, so that is a resume, and the reply
	 * says how the VM ended. */
	if (s->ended || ks_vm_state(s->vm) == KS_VM_ENDED) {
		json_object_set_new(reply, "state", json_string("ended"));
		json_object_set_new(reply, "outcome", json_string(s->outcome.detail));
		return 0;
	}
	if (rc < 0)
		return rc;
	json_object_set_new(reply, "state", json_string(sup_run_state(s)));
	return 0;
}

static int h_reset(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		   void *data)
{
	struct ks_supervisor *s = data;
	int rc;

	(void)c, (void)req, (void)reply;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	return ks_vm_reset(s->vm, err);
}

static int h_stop(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		  void *data)
{
	struct ks_supervisor *s = data;
	int rc;

	(void)c, (void)req;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	sup_log(s, "stop requested by pid %d", (int)ks_ctl_conn_peer_pid(c));
	rc = ks_vm_stop(s->vm, STOP_TIMEOUT_NS, err);
	json_object_set_new(reply, "outcome", json_string(s->outcome.detail));
	return rc;
}

static int h_destroy(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		     void *data)
{
	struct ks_supervisor *s = data;
	int rc;

	(void)req;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	sup_log(s, "destroy requested by pid %d", (int)ks_ctl_conn_peer_pid(c));
	ks_vm_destroy(s->vm);
	json_object_set_new(reply, "outcome", json_string(s->outcome.detail));
	return 0;
}

static int snapshot_list(struct ks_supervisor *s, json_t *reply, struct ks_error *err)
{
	struct ks_vm_snapshot *list = NULL;
	size_t n = 0;
	json_t *a = json_array();
	int rc = ks_vm_snapshot_list(s->vm, &list, &n, err);

	for (size_t i = 0; rc == 0 && i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:I,s:I,s:s}", "tag", list[i].tag,
						   "vm_state_size",
						   (json_int_t)list[i].vm_state_size, "ram_size",
						   (json_int_t)list[i].ram_size, "date", list[i].date));
	free(list);
	json_object_set_new(reply, "snapshots", a);
	return rc;
}

static int h_snapshot(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		      void *data)
{
	struct ks_supervisor *s = data;
	const char *action = json_string_value(json_object_get(req, "action"));
	const char *tag = json_string_value(json_object_get(req, "tag"));
	int rc;

	(void)c;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	if (!action)
		return ks_error_set(err, -EINVAL, "snapshot: no \"action\" (save, load, list or "
				    "delete)");
	if (!strcmp(action, "list"))
		return snapshot_list(s, reply, err);
	if (strcmp(action, "save") && strcmp(action, "load") && strcmp(action, "delete"))
		return ks_error_set(err, -EINVAL, "snapshot: unknown action '%.32s' (use save, "
				    "load, list or delete)", action);
	if (!tag)
		return ks_error_set(err, -EINVAL, "snapshot %s: needs a \"tag\"", action);
	if (!strcmp(action, "save"))
		rc = ks_vm_snapshot_save(s->vm, tag, err);
	else if (!strcmp(action, "load"))
		rc = ks_vm_snapshot_load(s->vm, tag, err);
	else
		rc = ks_vm_snapshot_delete(s->vm, tag, err);
	if (rc == 0)
		sup_log(s, "snapshot %s %s", action, tag);
	return rc;
}

static void unfollow(struct ks_ctl_conn *c, void *data)
{
	struct sup_follower *f = data;
	struct sup_follower **pp = &f->s->followers;

	(void)c;
	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	json_decref(f->id);
	free(f);
}

/* Puts the last n console lines into the array lines, as streamed messages of request id. */
static int tail_lines(struct ks_supervisor *s, json_t *id, size_t n, json_t *lines)
{
	struct ks_chan_line *tail = NULL;
	size_t count = 0;
	int rc = ks_chan_tail(s->console, n, &tail, &count);

	for (size_t i = 0; rc == 0 && i < count; i++)
		json_array_append_new(lines, json_pack("{s:O,s:o,s:f,s:I}", "id", id, "line",
						       sup_text(tail[i].text, tail[i].len), "ts",
						       tail[i].wall_ns / 1e9, "lineno",
						       (json_int_t)tail[i].lineno));
	free(tail);
	return rc;
}

/*
 * The reply holds the last "tail" lines; with "follow" every later line is streamed. Both
 * happen without running the loop, so no line falls between them.
 */
static int h_console(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		     void *data)
{
	struct ks_supervisor *s = data;
	json_t *tail = json_object_get(req, "tail"), *id = json_object_get(req, "id"), *lines;
	bool follow = json_is_true(json_object_get(req, "follow"));
	json_int_t n = tail ? json_integer_value(tail) : TAIL_DEFAULT;
	struct sup_follower *f;
	int rc;

	id = id ? id : json_null();
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	if (!s->console)
		return ks_error_set(err, -ENODEV, "console: the VM has no serial port");
	if ((tail && !json_is_integer(tail)) || n < 0)
		return ks_error_set(err, -EINVAL, "console: \"tail\" must be a number of lines");
	lines = json_array();
	json_object_set_new(reply, "lines", lines);
	if (n > 0 && (rc = tail_lines(s, id, (size_t)n, lines)) < 0)
		return ks_error_set(err, rc, "console: %s", strerror(-rc));
	if (!follow)
		return 0;
	for (f = s->followers; f; f = f->next)
		if (f->c == c)
			return ks_error_set(err, -EBUSY, "console: this connection already "
					    "follows the console");
	if (sup_monitor_client(s, c))
		return ks_error_set(err, -EBUSY, "console: this connection streams events: use "
				    "another one");
	if (!(f = calloc(1, sizeof(*f))))
		return ks_error_set(err, -ENOMEM, "out of memory");
	*f = (struct sup_follower){ .s = s, .c = c, .id = json_incref(id), .next = s->followers };
	s->followers = f;
	ks_ctl_conn_on_close(c, unfollow, f);
	return KS_CTL_STREAM;
}

/* {"command": {"execute": NAME, "arguments": {...}}}: QEMU's reply, as "reply". */
static int h_qmp(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		 void *data)
{
	struct ks_supervisor *s = data;
	json_t *cmd = json_object_get(req, "command"), *args, *r = NULL;
	const char *execute = json_string_value(json_object_get(cmd, "execute"));
	struct ks_qmp *q;
	int rc;

	(void)c;
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	if (!json_is_object(cmd) || !execute)
		return ks_error_set(err, -EINVAL, "qmp: \"command\" must be an object like "
				    "{\"execute\": \"query-status\"}");
	args = json_object_get(cmd, "arguments");
	if (args && !json_is_object(args))
		return ks_error_set(err, -EINVAL, "qmp: \"arguments\" must be an object");
	if (!strcmp(execute, "qmp_capabilities"))
		return ks_error_set(err, -EINVAL, "qmp: capabilities are already negotiated");
	if (!(q = ks_vm_qmp(s->vm)))
		return ks_error_set(err, -ENOTCONN, "qmp: no QMP connection");
	rc = ks_qmp_call(q, execute, json_incref(args), &r, QMP_TIMEOUT_NS, err);
	if (rc == -EIO || rc == -EOPNOTSUPP)
		json_object_set_new(reply, "reply", json_pack("{s:o}", "error", r));
	else if (rc == 0)
		json_object_set_new(reply, "reply", json_pack("{s:o}", "return",
							      r ? r : json_object()));
	return rc == -EIO || rc == -EOPNOTSUPP ? 0 : rc;
}

const struct ks_ctl_command ks_supervisor_commands[] = {
	{ "status", h_status },
	{ "pause", h_pause },
	{ "resume", h_resume },
	{ "reset", h_reset },
	{ "stop", h_stop },
	{ "destroy", h_destroy },
	{ "snapshot", h_snapshot },
	{ "console", h_console },
	{ "qmp", h_qmp },
	{ "regs", sup_h_regs },
	{ "read", sup_h_read },
	{ "write", sup_h_write },
	{ "vtop", sup_h_vtop },
	{ "pagemap", sup_h_pagemap },
	{ "dump", sup_h_dump },
	{ "symbol", sup_h_symbol },
	{ "ktstate", sup_h_ktstate },
	{ "events", sup_h_events },
	{ "step", sup_h_step },
	{ NULL, NULL },
};
