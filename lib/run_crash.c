/* run_crash.c: the end of a pass: dumps of a stopped VM, blame, and what runs next (restore, reboot, give up). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/evfilter.h>
#include <kscope/monitor.h>
#include <kscope/vmmem.h>

#include "run_internal.h"

#define TAIL_LINES 25
#define GIVE_UP_AFTER 3   /* boots in a row that ran none of a batch's tests */

/* ---- the dump ---- */

/* A gdb client on a stopped VM: the one the run holds, or a new one. */
static struct ks_gdb *dump_gdb(struct run_vm *v, struct ks_error *err)
{
	if (!v->vm || ks_vm_state(v->vm) == KS_VM_ENDED) {
		ks_error_set(err, -ENOTCONN, "QEMU has ended");
		return NULL;
	}
	if (v->gdb && ks_gdb_connected(v->gdb)) {
		if (ks_gdb_state(v->gdb) != KS_GDB_STOPPED &&
		    ks_gdb_wait_stop(v->gdb, NULL, RUN_SEC) < 0 &&
		    ks_gdb_interrupt(v->gdb, NULL, err) < 0)
			return NULL;
		return v->gdb;
	}
	ks_gdb_free(v->gdb);
	v->gdb = ks_gdb_connect(v->run->loop, ks_vm_gdb_socket(v->vm), 5 * RUN_SEC, err);
	return v->gdb;
}

static void on_dump(struct ks_monitor *m, const struct ks_monitor_dump *d, void *data)
{
	(void)m;
	*(char **)data = ks_monitor_dump_format(d);
}

/*
 * Registers of every vCPU and their backtraces, as the event monitor dumps them (gdb, else
 * QEMU's register dump): a monitor with no rules arms nothing, so one made for the dump
 * costs the VM nothing. Its event history is empty: the run's own follows (dump_events()).
 */
static void dump_regs(FILE *f, struct run_vm *v)
{
	struct ks_error err = { 0 };
	struct ks_gdb *g = dump_gdb(v, &err);
	struct ks_evrules *rules = g ? ks_evrules_new(&err) : NULL;
	struct ks_monitor_opts o;
	struct ks_monitor *m = NULL;
	char *text = NULL, *tail;

	if (!v->mem && v->vm)
		v->mem = ks_vmmem_map(v->vm, NULL);
	ks_monitor_opts_init(&o);
	o.on_dump = on_dump;
	o.dump_data = &text;
	o.dump_events = 0;
	if (rules && (m = ks_monitor_new(v->run->loop, v->vm, g, v->mem, v->run->k.syms, rules,
					 &o, &err)))
		ks_monitor_dump(m, &err);
	ks_monitor_free(m);
	ks_evrules_free(rules);
	if (g)
		run_vm_gdb_attach(v);  /* the monitor took the stop callback, and gave it back empty */
	if (!text) {
		fprintf(f, "registers: not available (%s)\n", err.msg[0] ? err.msg : "no dump");
		return;
	}
	if ((tail = strstr(text, "last 0 events:\n")))
		*tail = 0;
	fputs(strncmp(text, "dump\n", 5) ? text : text + 5, f);
	free(text);
}

static void dump_events(FILE *f, struct run_vm *v)
{
	unsigned n = v->nevents < RUN_EVENTS ? v->nevents : RUN_EVENTS;

	fprintf(f, "last events:\n");
	for (unsigned i = v->nevents - n; i < v->nevents; i++) {
		const struct run_evline *e = &v->events[i % RUN_EVENTS];

		fprintf(f, "  %9.3f s  %s\n", (double)(e->ns - v->run->t0) / 1e9, e->text);
	}
}

static void dump_console(FILE *f, struct run_vm *v)
{
	struct ks_chan *c = v->vm ? ks_vm_chan(v->vm, 0) : NULL;
	struct ks_chan_line *lines = NULL;
	size_t n = 0;

	if (!c || ks_chan_tail(c, TAIL_LINES, &lines, &n) < 0)
		return;
	fprintf(f, "console (last %zu lines):\n", n);
	for (size_t i = 0; i < n; i++) {
		uint64_t t = lines[i].ts_ns - v->run->t0;
		size_t k = 0;

		fprintf(f, "  [%5llu.%06llu] ", (unsigned long long)(t / RUN_SEC),
			(unsigned long long)(t % RUN_SEC / 1000));
		/* Control bytes would garble a terminal or a report. */
		for (; k < lines[i].len; k++)
			fputc((unsigned char)lines[i].text[k] < 0x20 ||
			      (unsigned char)lines[i].text[k] == 0x7f ? '.' : lines[i].text[k], f);
		fputc('\n', f);
	}
	free(lines);
}

char *run_dump(struct run_vm *v, const char *title)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "== %s ==\n", title);
	if (v->vm)
		fprintf(f, "vm%u, boot %u, accel %s\n", v->num, v->boots,
			ks_accel_name(ks_vm_accel(v->vm)));
	dump_regs(f, v);
	dump_events(f, v);
	dump_console(f, v);
	fclose(f);
	return buf;
}

/* ---- what runs next ---- */

static int by_index(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* The tests still owed to this VM's round: those a pass did not start, and the rest of the
 * batch. Sorted, in *out (malloc'd). */
static size_t remaining(struct run_vm *v, const size_t *left, size_t nleft, size_t **out)
{
	size_t nb = v->batch ? v->batch->ntests : 0, n = 0;

	if (!(*out = malloc((nleft + nb + 1) * sizeof(size_t))))
		return 0;
	for (size_t i = 0; i < nleft; i++)
		(*out)[n++] = left[i];
	for (size_t i = 0; i < nb; i++)
		(*out)[n++] = v->batch->tests[i];
	qsort(*out, n, sizeof(size_t), by_index);
	return n;
}

static void give_up(struct ks_run *r, unsigned round, const size_t *tests, size_t n,
		    enum ks_run_status st, const char *why)
{
	for (size_t i = 0; i < n; i++)
		run_result_set(r, round, tests[i], 0, st, why);
}

/* Back to READY from the snapshot, the owed tests as the VM's batch. */
static int restore(struct run_vm *v, size_t *rest, size_t n, struct ks_error *err)
{
	int rc;

	if ((rc = ks_vm_snapshot_load(v->vm, RUN_SNAPSHOT_TAG, err)) < 0)
		return rc;
	v->run->restores++;
	run_vm_event(v, "snapshot restored: back at READY");
	memcpy(v->batch->tests, rest, n * sizeof(*rest));
	v->batch->ntests = n;
	v->stopped = false;
	return run_vm_next_pass(v, err);
}

/* A title for the dump: the VM and how the pass stopped. */
static void title_of(struct run_vm *v, char *buf, size_t size)
{
	snprintf(buf, size, "vm%u: %s", v->num, v->stop_why);
}

/* Ends the pass: dump if it stopped badly, results; the tests still owed go to *rest. */
static size_t end_pass(struct run_vm *v, bool bad, size_t **rest, size_t *nrest)
{
	struct ks_run *r = v->run;
	enum ks_run_status st = v->stop == RUN_STOP_HANG || v->stop == RUN_STOP_TIMEOUT
				? KS_RUN_TIMEOUT : KS_RUN_CRASHED;
	size_t *left = NULL, nleft = 0, got;
	char title[700], *dump = NULL;

	title_of(v, title, sizeof(title));
	if (bad && v->in_seg && v->seg.ntests + (r->k.kt ? 0 : 1))
		dump = run_dump(v, title);
	got = run_seg_finish(r, v, bad ? st : KS_RUN_NOTRUN, v->stop_why, dump, &left, &nleft);
	v->in_seg = false;
	free(dump);
	*nrest = remaining(v, left, nleft, rest);
	free(left);
	/* A run that ends while a kernel boots says so as "no KTAP output" (run.c). */
	if (bad && r->k.kt && !v->kt_ready && v->stop != RUN_STOP_TIMEOUT) {
		snprintf(r->early_why, sizeof(r->early_why), "%s", v->stop_why);
		run_note(r, v->num, "vm%u: the kernel stopped before its tests started: %s", v->num,
			 v->stop_why);
	}
	return got;
}

/* Runs the tests still owed: from the snapshot on this VM when it can, else in a new boot. */
static void go_on(struct run_vm *v, bool bad, size_t *rest, size_t nrest, unsigned attempts)
{
	struct ks_run *r = v->run;
	unsigned round = v->seg.round;
	struct ks_error err = { 0 };
	const char *s = nrest == 1 ? "" : "s";

	if (nrest && v->snapshot && v->vm && ks_vm_state(v->vm) == KS_VM_PAUSED &&
	    (v->stop == RUN_STOP_DONE || v->stop == RUN_STOP_HANG || v->stop == RUN_STOP_PANIC)) {
		if (bad)
			run_note(r, v->num, "vm%u: restoring the READY snapshot for the %zu test%s "
				 "left", v->num, nrest, s);
		v->batch->attempts = attempts;
		if (restore(v, rest, nrest, &err) == 0)
			return;
		run_note(r, v->num, "vm%u: cannot restore the snapshot (%s): booting again", v->num,
			 err.msg);
	}
	run_batch_free(v->batch);
	v->batch = NULL;
	run_vm_teardown(v);
	if (nrest && r->k.kt) {
		if (bad)
			run_note(r, v->num, "vm%u: booting again for the %zu test%s left", v->num,
				 nrest, s);
		run_requeue(r, round, rest, nrest, attempts);
	}
}

void run_crash_handle(struct run_vm *v)
{
	struct ks_run *r = v->run;
	bool bad = v->stop != RUN_STOP_DONE && v->stop != RUN_STOP_EXIT;
	unsigned round = v->seg.round, attempts = v->batch ? v->batch->attempts : 0;
	size_t *rest = NULL, nrest, got;

	if (r->k.kt && !v->kt_ready && v->in_seg && v->seg.saw_version)
		run_degrade(r, v);
	got = end_pass(v, bad, &rest, &nrest);

	if (v->stop == RUN_STOP_TIMEOUT || (r->stopping && nrest)) {
		give_up(r, round, rest, nrest, KS_RUN_NOTRUN, r->stop_why);
		nrest = 0;
	}
	/* A kernel that keeps stopping before any test of the batch runs would loop for ever. */
	attempts = got ? 0 : attempts + (bad || nrest);
	if (nrest && attempts >= GIVE_UP_AFTER) {
		run_note(r, v->num, "vm%u: %u boots in a row ran none of %zu tests: giving up on "
			 "them", v->num, attempts, nrest);
		give_up(r, round, rest, nrest, KS_RUN_CRASHED, "not run: the kernel kept stopping "
			"before it (see the tests that crashed before)");
		nrest = 0;
	}
	go_on(v, bad, rest, nrest, attempts);
	free(rest);
}
