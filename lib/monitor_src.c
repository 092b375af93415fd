/* monitor_src.c: events that come while the VM runs: serial lines, QMP lifecycle, the -d int trace. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/chan.h>
#include <kscope/qmp.h>
#include <kscope/vm.h>

#include "monitor_internal.h"

/* ---- stopping the VM for what an event asked ---- */

static void on_qmp_stopped(struct ks_qmp *q, int status, json_t *reply,
			   const struct ks_error *err, void *data)
{
	struct ks_monitor *m = data;
	(void)q, (void)reply;

	m->qmp_stop_inflight = false;
	/* The VM stopped already (the stop then did nothing), or its stop reply is on its way. */
	if (ks_gdb_state(m->g) == KS_GDB_STOPPED || status < 0)
		m->expect_sigint = false;
	if (status < 0 && !m->ended)
		mon_warn(m, "cannot pause the VM: %s", err ? err->msg : "QMP failed");
	mon_settle(m, NULL);
}

void mon_request_stop(struct ks_monitor *m)
{
	struct ks_qmp *q = ks_vm_qmp(m->vm);
	int64_t id;

	if (m->qmp_stop_inflight || m->ended)
		return;
	if (!q || (id = ks_qmp_call_async(q, "stop", NULL, on_qmp_stopped, m)) < 0) {
		mon_warn(m, "cannot pause the VM: no QMP connection");
		return;
	}
	m->qmp_stop_q = q;
	m->qmp_stop_id = id;
	m->qmp_stop_inflight = m->expect_sigint = true;
}

/* After an event from a source that does not stop the VM: do what it asked. */
static void after_async(struct ks_monitor *m)
{
	if (!m->want_pause && !m->want_dump && !m->want_stop)
		return;
	if (ks_gdb_state(m->g) == KS_GDB_STOPPED) {
		mon_settle(m, NULL);
	} else if (m->want_stop) {
		/* No need to stop a VM first to destroy it. */
		m->want_stop = m->want_dump = m->want_pause = false;
		m->ended = true;
		ks_vm_destroy(m->vm);
	} else {
		mon_request_stop(m);
	}
}

/* ---- serial lines ---- */

static void on_line(struct ks_chan *ch, const struct ks_chan_line *line, void *data)
{
	struct ks_monitor *m = data;
	struct ks_event ev;
	size_t len = line->len < KS_EVENT_TEXT - 1 ? line->len : KS_EVENT_TEXT - 1;

	memset(&ev, 0, sizeof(ev));
	ev.kind = KS_EV_SERIAL;
	ev.vcpu = -1;
	for (unsigned i = 0; i < m->nchans; i++)
		if (ks_vm_chan(m->vm, i) == ch)
			ev.serial.port = i;
	memcpy(ev.serial.text, line->text, len);
	mon_emit(m, &ev, line->ts_ns);
	after_async(m);
}

/* ---- the -d int trace ---- */

static void on_trace(const struct ks_event *tev, void *data)
{
	struct ks_monitor *m = data;
	struct ks_event ev = *tev;

	mon_emit(m, &ev, tev->ts_ns);
	after_async(m);
}

static int follow_trace(struct ks_monitor *m, struct ks_error *err)
{
	char path[4096];
	int rc;

	if (m->o.trace_path)
		snprintf(path, sizeof(path), "%s", m->o.trace_path);
	else
		snprintf(path, sizeof(path), "%s/qemu-debug.log", ks_vm_rundir(m->vm));
	if (!(m->trace = ks_dtrace_follow(m->loop, path, on_trace, m, err)))
		return err ? err->code : -ENOMEM;
	ks_dtrace_set_symbols(ks_dtrace_follow_parser(m->trace), m->syms);
	/* Events from now on, as breakpoints would give them: those of the VM's past are in the
	 * file too, and would come as new ones. */
	if ((rc = ks_dtrace_follow_skip(m->trace)) < 0)
		return ks_error_set(err, rc, "events: cannot read the -d int trace %s: %s", path,
				    strerror(-rc));
	return 0;
}

int mon_sources_start(struct ks_monitor *m, struct ks_error *err)
{
	while (ks_vm_chan(m->vm, m->nchans))
		m->nchans++;
	if (m->want.serial && m->nchans) {
		if (!(m->chan_ids = calloc(m->nchans, sizeof(int))))
			return ks_error_set(err, -ENOMEM, "out of memory");
		for (unsigned i = 0; i < m->nchans; i++) {
			int id = ks_chan_on_line(ks_vm_chan(m->vm, i), on_line, m);

			if (id < 0)
				return ks_error_set(err, id, "serial: cannot follow port %u", i);
			m->chan_ids[i] = id;
		}
	}
	return m->want.trace ? follow_trace(m, err) : 0;
}

void mon_sources_stop(struct ks_monitor *m)
{
	for (unsigned i = 0; m->chan_ids && i < m->nchans; i++)
		if (m->chan_ids[i] > 0 && ks_vm_chan(m->vm, i))
			ks_chan_off_line(ks_vm_chan(m->vm, i), m->chan_ids[i]);
	free(m->chan_ids);
	m->chan_ids = NULL;
	ks_dtrace_follow_free(m->trace);
	m->trace = NULL;
}

/* ---- lifecycle ---- */

static void vm_event(struct ks_monitor *m, const char *what, const char *detail, uint64_t ts)
{
	struct ks_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = KS_EV_VM;
	ev.vcpu = -1;
	snprintf(ev.vm.what, sizeof(ev.vm.what), "%s", what);
	snprintf(ev.vm.detail, sizeof(ev.vm.detail), "%s", detail ? detail : "");
	mon_emit(m, &ev, ts);
}

/* A QMP STOP is the monitor's own when a stop reply it caused came with it: that reply was
 * sent first, and has been read by the time this runs, a loop round later. */
static void on_vmstop(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_monitor *m = data;
	(void)l, (void)id;

	m->vmstop_timer = 0;
	for (; m->qmp_stops > 0; m->qmp_stops--) {
		if (m->own_stops > 0) {
			m->own_stops--;
			continue;
		}
		vm_event(m, "stop", "", ks_loop_now_ns());
	}
	after_async(m);
}

static void vm_ended(struct ks_monitor *m)
{
	uint64_t now = ks_loop_now_ns();

	if (m->trace)
		ks_dtrace_follow_poll(m->trace, 1);
	mon_test_crash(m, now);
	if (m->want_dump && !m->ended)
		mon_warn(m, "dump: the VM ended before it could be dumped");
	m->want_dump = m->want_pause = m->want_stop = false;
	m->ended = true;
}

static void resumed(struct ks_monitor *m, uint64_t now)
{
	if (m->own_resumes > 0) {
		m->own_resumes--;
		return;
	}
	/* Resumed from outside (QMP cont), which gdb does not report. */
	m->paused = false;
	if (ks_gdb_state(m->g) == KS_GDB_STOPPED && !m->busy)
		ks_gdb_note_resumed(m->g);
	vm_event(m, "resume", "", now);
}

void ks_monitor_vm_event(struct ks_monitor *m, const char *name, const char *detail)
{
	uint64_t now = ks_loop_now_ns();

	if (m->freeing)
		return;
	if (!name) {
		vm_ended(m);
		return;
	}
	if (m->ended)
		return;
	if (!strcmp(name, "STOP") || !strcmp(name, "stop")) {
		m->qmp_stops++;
		if (m->vmstop_timer <= 0)
			m->vmstop_timer = ks_loop_add_timer(m->loop, 0, 0, on_vmstop, m);
		return;
	}
	if (!strcmp(name, "RESUME") || !strcmp(name, "resume")) {
		resumed(m, now);
	} else if (!strcmp(name, "SHUTDOWN") || !strcmp(name, "shutdown")) {
		vm_event(m, "shutdown", detail ? detail : ks_vm_shutdown_reason(m->vm), now);
		mon_test_crash(m, now);
	} else if (!strcmp(name, "RESET") || !strcmp(name, "reset")) {
		vm_event(m, "reset", detail, now);
		mon_test_crash(m, now);
	} else if (!strcmp(name, "GUEST_PANICKED") || !strcmp(name, "panic")) {
		vm_event(m, "panic", detail, now);
		mon_test_crash(m, now);
	} else {
		return;
	}
	after_async(m);
}
