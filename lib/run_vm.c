/* run_vm.c: one VM of a run: boot, the stop at READY, passes of tests, and watching for the end of each. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/kt_abi.h>
#include <kscope/vmmem.h>

#include "run_internal.h"

#define GDB_CONNECT_NS (5 * RUN_SEC)
#define POLL_NS (50 * RUN_MS)        /* kt_state reads: progress ten to twenty times a second */
#define DRAIN_IDLE_NS (30 * RUN_MS)  /* console quiet this long after a stop: all lines are in */
#define DRAIN_MAX_NS (500 * RUN_MS)

void run_vm_event(struct run_vm *v, const char *fmt, ...)
{
	struct run_evline *e = &v->events[v->nevents++ % RUN_EVENTS];
	va_list ap;

	e->ns = ks_loop_now_ns();
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

/* ---- callbacks: they only note what happened; run_vm_step() acts on it ---- */

static void on_line(struct ks_chan *ch, const struct ks_chan_line *l, void *data)
{
	struct run_vm *v = data;
	uint64_t t = l->ts_ns - v->log_t0;

	(void)ch;
	if (v->log)
		fprintf(v->log, "[%5llu.%06llu]%c%.*s\n", (unsigned long long)(t / RUN_SEC),
			(unsigned long long)(t % RUN_SEC / 1000), l->flags & KS_CHAN_PARTIAL ? '+' : ' ',
			(int)l->len, l->text);
	run_seg_line(v->run, v, l->text, l->len, l->ts_ns);
	if (v->run->o.on_line)
		v->run->o.on_line(v->num, l, v->run->o.line_data);
}

static void on_vm_event(struct ks_vm *vm, const char *event, void *data)
{
	struct run_vm *v = data;
	const char *why;

	if (!event) {
		v->ended = true;
		run_vm_event(v, "vm ended: %s", ks_vm_outcome(vm)->detail);
	} else if (!strcmp(event, "GUEST_PANICKED")) {
		v->qmp_panic = true;
		run_vm_event(v, "vm GUEST_PANICKED");
	} else if (!strcmp(event, "SHUTDOWN")) {
		why = ks_vm_shutdown_reason(vm);
		v->qmp_shutdown = true;
		snprintf(v->shutdown_reason, sizeof(v->shutdown_reason), "%s", why ? why : "");
		run_vm_event(v, "vm SHUTDOWN %s", v->shutdown_reason);
	}
}

static void on_stop(struct ks_gdb *g, const struct ks_gdb_stop *stop, void *data)
{
	struct run_vm *v = data;

	(void)g;
	if (stop->kind == KS_GDB_STOP_OUTPUT)
		return;
	v->stopped = true;
	v->gdb_running = false;
}

void run_vm_gdb_attach(struct run_vm *v)
{
	if (v->gdb)
		ks_gdb_on_stop(v->gdb, on_stop, v);
}

/* ---- starting and stopping ---- */

int run_vm_continue(struct run_vm *v, struct ks_error *err)
{
	int rc;

	v->stopped = false;
	if (v->gdb && ks_gdb_connected(v->gdb)) {
		if ((rc = ks_gdb_continue(v->gdb, err)) == 0)
			v->gdb_running = true;
		return rc;
	}
	return ks_vm_resume(v->vm, err);
}

int run_vm_pause(struct run_vm *v)
{
	if (!v->vm || ks_vm_state(v->vm) == KS_VM_ENDED)
		return -ENOTCONN;
	if (v->gdb && ks_gdb_connected(v->gdb) && v->gdb_running) {
		v->gdb_running = false;
		return ks_gdb_interrupt(v->gdb, NULL, NULL);
	}
	if (ks_vm_state(v->vm) == KS_VM_RUNNING && ks_vm_pause(v->vm, NULL) < 0)
		return -EIO;
	if (v->gdb && ks_gdb_connected(v->gdb))
		ks_gdb_wait_stop(v->gdb, NULL, 2 * RUN_SEC);
	return 0;
}

static void open_log(struct run_vm *v)
{
	const char *path = ks_run_log_path(v->run, v->num);

	if (v->log || !path)
		return;
	v->log = fopen(path, "we");
	v->log_t0 = ks_loop_now_ns();
}

/*
 * A write watchpoint on kt_state.phase: the kernel writes it at READY (records filled) and
 * at DONE (every result printed). A watchpoint costs the guest only on accesses to that one
 * page of data, unlike a breakpoint on code (above).
 */
static int watch_phase(struct run_vm *v, bool on, struct ks_error *err)
{
	ks_gva_t at = v->run->k.kt_state + offsetof(struct kt_abi_state, phase);
	int rc;

	if (v->watching == on)
		return 0;
	rc = on ? ks_gdb_set_breakpoint(v->gdb, KS_GDB_WP_WRITE, at, 4, err)
		: ks_gdb_clear_breakpoint(v->gdb, KS_GDB_WP_WRITE, at, 4, err);
	if (rc == 0)
		v->watching = on;
	return rc;
}

/* The phase the kernel just wrote, read through gdb (no page tables known before READY). */
static int read_phase(struct run_vm *v, unsigned cpu, uint32_t *phase)
{
	return ks_gdb_read_virt(v->gdb, cpu, v->run->k.kt_state +
				offsetof(struct kt_abi_state, phase), phase, 4, NULL);
}

/* The gdb side of a kt_ boot: connect, watch the phase, let it run. */
static int boot_gdb(struct run_vm *v, struct ks_error *err)
{
	int rc;

	if (!(v->gdb = ks_gdb_connect(v->run->loop, ks_vm_gdb_socket(v->vm), GDB_CONNECT_NS,
				      err)))
		return err ? err->code : -EIO;
	run_vm_gdb_attach(v);
	v->watching = false;
	if ((rc = watch_phase(v, true, err)) < 0)
		return rc;
	return run_vm_continue(v, err);
}

/* The VM's start is over: run_vm_step() goes on from here. */
static void on_started(struct ks_vm *vm, int rc, const struct ks_error *err, void *data)
{
	struct run_vm *v = data;

	(void)vm;
	v->start_done = true;
	v->start_err.code = rc;
	snprintf(v->start_err.msg, sizeof(v->start_err.msg), "%s", rc < 0 && err ? err->msg : "");
}

int run_vm_boot(struct run_vm *v, struct ks_error *err)
{
	struct ks_run *r = v->run;
	struct ks_vm_opts o;
	char name[40];

	snprintf(name, sizeof(name), "run-%d-%u-%u", (int)getpid(), v->num, v->boots + 1);
	ks_vm_opts_init(&o);
	o.name = name;
	o.rundir_base = r->o.rundir_base;
	o.paused = r->k.kt;
	o.no_reboot = true;
	o.pause_on_shutdown = true;
	o.snapshots = r->k.kt && r->o.isolate == KS_RUN_ISOLATE_SNAPSHOT;
	v->ended = v->qmp_panic = v->qmp_shutdown = v->stopped = v->gdb_running = false;
	v->kt_ready = v->snapshot = v->have_cr3 = v->start_done = false;
	v->stop = RUN_STOP_NONE;
	if (!(v->vm = ks_vm_launch(r->loop, r->spec, &o, on_started, v, err)))
		return err ? err->code : -EIO;
	v->boots++;
	r->boots++;
	v->phase = RUN_VM_START;
	/* QEMU starts meanwhile: what is left here costs it nothing. */
	open_log(v);
	if (v->log)
		fprintf(v->log, "# kscope run: vm%u boot %u: qemu pid %d, accel %s\n", v->num,
			v->boots, (int)ks_vm_pid(v->vm), ks_accel_name(ks_vm_accel(v->vm)));
	run_vm_event(v, "boot %u", v->boots);
	return 0;
}

/* QEMU is up, its console connected: follow it, and for kt_ arm the watch on READY. */
static int started(struct run_vm *v, struct ks_error *err)
{
	struct ks_run *r = v->run;
	int rc;

	if (v->start_err.code < 0)
		return ks_error_set(err, v->start_err.code, "%s", v->start_err.msg);
	/* The console is followed from the first line: without kt_ the one pass is the whole
	 * boot; with it, a kernel that never stops at READY can still be read (run_degrade()). */
	if ((rc = run_seg_init(&v->seg, v->batch ? v->batch->round : 0, NULL, 0,
			       ks_loop_now_ns())) < 0)
		return ks_error_set(err, rc, "out of memory");
	v->in_seg = true;
	ks_vm_on_event(v->vm, on_vm_event, v);
	/* A VM without serial ports still has kt_state to follow. */
	if (ks_vm_chan(v->vm, 0))
		v->line_cb = ks_chan_on_line(ks_vm_chan(v->vm, 0), on_line, v);
	/* The console is read at most once a millisecond (the guest runs faster that way);
	 * run_vm_step() drains it at every stop, so no line comes after what followed it. */
	if (ks_vm_chan(v->vm, 0))
		ks_chan_set_read_gap(ks_vm_chan(v->vm, 0), RUN_MS);
	v->phase = r->k.kt ? RUN_VM_BOOT : RUN_VM_TESTS;
	v->next_poll_ns = ks_loop_now_ns();
	run_emit(r, KS_RUN_EV_VM_START, v->num, v->batch ? v->batch->round : 0, 0,
		 KS_RUN_NOTRUN, ks_vm_name(v->vm));
	return r->k.kt ? boot_gdb(v, err) : 0;
}

/* A VM that cannot be started or driven ends the run, as when QEMU is missing. */
static void start_step(struct run_vm *v)
{
	struct ks_run *r = v->run;
	struct ks_error err = { 0 };

	if (!v->start_done || started(v, &err) == 0)
		return;
	if (!r->failed.code)
		r->failed = err;
	run_vm_teardown(v);
}

void run_vm_abandon(struct run_vm *v, const char *what, const char *why)
{
	struct ks_run *r = v->run;
	struct run_batch *b = v->batch;

	run_note(r, v->num, "vm%u: %s: %s", v->num, what, why);
	v->batch = NULL;
	run_vm_teardown(v);
	if (!b)
		return;
	if (b->attempts + 1 >= 3) {
		for (size_t i = 0; i < b->ntests; i++)
			run_result_set(r, b->round, b->tests[i], 0, KS_RUN_NOTRUN,
				       "not run: the run could not drive the VM (see the notes)");
	} else {
		run_requeue(r, b->round, b->tests, b->ntests, b->attempts + 1);
	}
	run_batch_free(b);
}

void run_vm_teardown(struct run_vm *v)
{
	struct ks_run *r = v->run;
	char why[sizeof(((struct ks_vm_outcome *)0)->detail)] = "";

	if (v->vm) {
		if (ks_vm_state(v->vm) != KS_VM_ENDED)
			ks_vm_destroy(v->vm);
		snprintf(why, sizeof(why), "%s", v->ended || v->stop == RUN_STOP_EXIT
			 ? ks_vm_outcome(v->vm)->detail : "destroyed by the run");
	}
	ks_gdb_free(v->gdb);
	ks_vm_free(v->vm);
	ks_vtop_free(v->vtop);
	ks_mem_free(v->mem);
	v->gdb = NULL;
	v->vm = NULL;
	v->vtop = NULL;
	v->mem = NULL;
	ks_kt_state_free(v->ready_state);
	v->ready_state = NULL;
	v->watching = false;
	run_seg_free(&v->seg);
	v->in_seg = false;
	if (v->log)
		fflush(v->log);
	if (v->phase != RUN_VM_IDLE) {
		snprintf(r->last_end, sizeof(r->last_end), "%s", why);
		run_emit(r, KS_RUN_EV_VM_END, v->num, 0, 0, KS_RUN_NOTRUN, why);
	}
	v->phase = RUN_VM_IDLE;
}

/* ---- READY and the passes ---- */

/* The next tests of the VM's batch for one pass: a destructive test alone when a snapshot
 * will restore the machine after it, else everything left. Removed from the batch. */
static size_t next_chunk(struct run_vm *v, size_t *out)
{
	struct run_batch *b = v->batch;
	size_t n = 0, pick = RUN_NONE;

	for (size_t i = 0; v->snapshot && i < b->ntests && pick == RUN_NONE; i++)
		if (v->run->plan.tests[b->tests[i]].flags & KT_ABI_F_DESTRUCTIVE)
			pick = i;
	if (pick != RUN_NONE) {
		out[n++] = b->tests[pick];
		memmove(&b->tests[pick], &b->tests[pick + 1],
			(b->ntests - pick - 1) * sizeof(*b->tests));
		b->ntests--;
		return n;
	}
	memcpy(out, b->tests, b->ntests * sizeof(*out));
	n = b->ntests;
	b->ntests = 0;
	return n;
}

static int log_pass(struct run_vm *v, const size_t *tests, size_t n)
{
	const struct run_plan *p = &v->run->plan;

	if (!v->log)
		return 0;
	fprintf(v->log, "# kscope run: pass of %zu test%s (round %u):", n, n == 1 ? "" : "s",
		v->seg.round + 1);
	for (size_t i = 0; i < n && i < 8; i++)
		fprintf(v->log, " %s.%s", p->tests[tests[i]].suite, p->tests[tests[i]].name);
	fprintf(v->log, "%s\n", n > 8 ? " ..." : "");
	return 0;
}

int run_seg_begin(struct run_vm *v, const size_t *tests, size_t n, bool final,
		  struct ks_error *err)
{
	struct ks_run *r = v->run;
	size_t *order = malloc((n ? n : 1) * sizeof(*order));
	int rc;

	if (!order)
		return ks_error_set(err, -ENOMEM, "out of memory");
	memcpy(order, tests, n * sizeof(*order));
	if (r->o.shuffle && (rc = run_order(&r->plan, order, n, r->o.seed, v->batch->round)) < 0)
		goto out;
	if ((rc = run_state_select(v, v->ready_state, order, n, r->o.shuffle, err)) < 0)
		goto out;
	/* The phase watched for DONE only while another pass follows on this VM. */
	if ((rc = watch_phase(v, !final, err)) < 0)
		goto out;
	run_seg_free(&v->seg);
	if ((rc = run_seg_init(&v->seg, v->batch->round, order, n, ks_loop_now_ns())) < 0) {
		ks_error_set(err, rc, "out of memory");
		goto out;
	}
	v->in_seg = true;
	v->stop = RUN_STOP_NONE;
	v->stop_why[0] = 0;
	v->qmp_panic = v->qmp_shutdown = false;
	log_pass(v, order, n);
	if ((rc = run_vm_continue(v, err)) == 0) {
		char text[32];

		snprintf(text, sizeof(text), "%zu test%s", n, n == 1 ? "" : "s");
		v->phase = RUN_VM_TESTS;
		run_emit(r, KS_RUN_EV_PASS, v->num, v->seg.round, 0, KS_RUN_NOTRUN, text);
	}
out:
	free(order);
	return rc;
}

/* Starts the next pass of the VM's batch at READY (after a restore, or the first). */
int run_vm_next_pass(struct run_vm *v, struct ks_error *err)
{
	size_t *chunk = malloc((v->batch->ntests ? v->batch->ntests : 1) * sizeof(size_t));
	size_t n;
	int rc;

	if (!chunk)
		return ks_error_set(err, -ENOMEM, "out of memory");
	n = next_chunk(v, chunk);
	rc = run_seg_begin(v, chunk, n, v->batch->ntests == 0, err);
	free(chunk);
	return rc;
}

/* Whether the batch has a destructive test that a snapshot should isolate. */
static bool wants_snapshot(const struct run_vm *v)
{
	const struct ks_run *r = v->run;

	if (r->o.isolate != KS_RUN_ISOLATE_SNAPSHOT || v->batch->ntests < 2)
		return false;
	for (size_t i = 0; i < v->batch->ntests; i++)
		if (r->plan.tests[v->batch->tests[i]].flags & KT_ABI_F_DESTRUCTIVE)
			return true;
	return false;
}

/* The plan, the first time a VM gets to READY. */
static int learn_plan(struct run_vm *v, struct ks_error *err)
{
	struct ks_run *r = v->run;

	if (r->have_plan)
		return 0;
	if (run_plan_from_state(&r->plan, v->ready_state) < 0 || run_plan_ready(r) < 0)
		return ks_error_set(err, -ENOMEM, "out of memory");
	r->have_plan = true;
	run_emit(r, KS_RUN_EV_PLAN, v->num, 0, 0, KS_RUN_NOTRUN, NULL);
	return 0;
}

/* At READY: the state, the plan, a batch, maybe a snapshot, then the first pass. Returns
 * 1 when the VM has nothing to do. */
static int at_ready(struct run_vm *v, struct ks_error *err)
{
	struct ks_run *r = v->run;
	int rc;

	v->kt_ready = true;
	r->saw_output = true;
	run_vm_event(v, "READY: tests about to start");
	if (!v->mem && (!(v->mem = ks_vmmem_map(v->vm, err)) || !(v->vtop = ks_vtop_new(v->mem, err))))
		return err->code;
	ks_vtop_set_cr3(v->vtop, v->cr3, v->la57);
	if (!(v->ready_state = run_state_read(v, true, err)) || (rc = learn_plan(v, err)) < 0)
		return v->ready_state ? rc : err->code;
	if (r->o.list || r->stopping || (!v->batch && !(v->batch = run_take_batch(r))))
		return 1;
	if (wants_snapshot(v)) {
		if ((rc = ks_vm_snapshot_save(v->vm, RUN_SNAPSHOT_TAG, err)) < 0)
			return rc;
		v->snapshot = true;
		run_vm_event(v, "snapshot saved at READY");
	}
	return run_vm_next_pass(v, err);
}

/* The paging registers of the vCPU that wrote the phase: kt_state is read through them. */
static int ready_paging(struct run_vm *v, unsigned cpu, struct ks_error *err)
{
	uint64_t cr3, cr4;
	int rc;

	if ((rc = ks_gdb_read_reg_u64(v->gdb, cpu, KS_X86_CR3, &cr3, err)) < 0 ||
	    (rc = ks_gdb_read_reg_u64(v->gdb, cpu, KS_X86_CR4, &cr4, err)) < 0)
		return rc;
	v->cr3 = cr3;
	v->la57 = cr4 & (1ull << 12);
	v->have_cr3 = true;
	return 0;
}

/*
 * A stop before READY. The watchpoint on kt_state.phase stops the vCPU right after the
 * kernel's store of READY: its records are filled, and it reads the selection only after its
 * READY message, which follows (kt_abi.h). So this stop is READY: nothing else needs to
 * stop the VM (breakpoints on the message's site would make TCG run that page one
 * instruction at a time). Other stops (an earlier phase, stores QEMU counts as near the
 * watched word) go on.
 */
static void boot_stop(struct run_vm *v)
{
	struct ks_error err = { 0 };
	const struct ks_gdb_stop *st = ks_gdb_last_stop(v->gdb);
	unsigned cpu = st && st->vcpu >= 0 ? (unsigned)st->vcpu : 0;
	uint32_t phase = 0;
	int rc = 0;

	v->stopped = false;
	if (st && st->watch != KS_GDB_WATCH_NONE && (rc = read_phase(v, cpu, &phase)) < 0) {
		run_vm_abandon(v, "at the kernel's phase READY", "kt_state.phase does not read");
		return;
	}
	if (phase != KT_PHASE_READY) {
		if (run_vm_continue(v, &err) < 0)
			run_vm_abandon(v, "before READY", err.msg);
		return;
	}
	if ((rc = ready_paging(v, cpu, &err)) == 0)
		rc = at_ready(v, &err);
	if (rc < 0)
		run_vm_abandon(v, "at READY", err.msg);
	else if (rc > 0)
		run_vm_teardown(v);
}

/* ---- watching a pass ---- */

static void set_stop(struct run_vm *v, enum run_stop why, const char *fmt, const char *a)
{
	v->stop = why;
	v->stop_ns = ks_loop_now_ns();
	snprintf(v->stop_why, sizeof(v->stop_why), fmt, a);
	v->phase = RUN_VM_DRAIN;
}

void run_vm_halt(struct run_vm *v)
{
	/* Nothing ran on a VM still starting: it goes, its tests become NOTRUN. */
	if (v->phase == RUN_VM_START)
		run_vm_teardown(v);
	if (v->phase != RUN_VM_BOOT && v->phase != RUN_VM_TESTS)
		return;
	run_vm_pause(v);
	set_stop(v, RUN_STOP_TIMEOUT, "%s", v->run->stop_why);
}

/* How QEMU ending reads: a kt_ exit code ends the pass, anything else cut it short. */
static void ended(struct run_vm *v)
{
	const struct ks_vm_outcome *o = ks_vm_outcome(v->vm);

	if (o->end == KS_VM_END_EXIT_CODE && o->exit_code == KT_EXIT_PANIC)
		set_stop(v, RUN_STOP_PANIC, "the kernel panicked (exit code 0x12)%s", "");
	else if (o->end == KS_VM_END_EXIT_CODE &&
		 (o->exit_code == KT_EXIT_PASS || o->exit_code == KT_EXIT_FAIL))
		set_stop(v, RUN_STOP_EXIT, "%s", o->detail);
	else if (o->end == KS_VM_END_TRIPLE_FAULT || o->end == KS_VM_END_GUEST_RESET)
		set_stop(v, RUN_STOP_RESET, "%s", o->detail);
	else if (o->end == KS_VM_END_PANIC)
		set_stop(v, RUN_STOP_PANIC, "%s", o->detail);
	else
		set_stop(v, RUN_STOP_ENDED, "QEMU ended: %s", o->detail);
}

/* Whether QEMU's cpu_reset log (TCG) calls the reset a triple fault. */
static bool triple_fault_logged(struct run_vm *v)
{
	char path[PATH_MAX + 32], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/qemu-debug.log", ks_vm_rundir(v->vm));
	if (!(f = fopen(path, "re")))
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "Triple fault") != NULL;
	fclose(f);
	return found;
}

/* A gdb stop during a pass: the phase written (DONE ends the pass), or one QMP explains. */
static void tests_stop(struct run_vm *v)
{
	const struct ks_gdb_stop *st = ks_gdb_last_stop(v->gdb);
	unsigned cpu = st && st->vcpu >= 0 ? (unsigned)st->vcpu : 0;
	uint32_t phase = 0;

	if (v->qmp_panic || v->qmp_shutdown || v->ended)
		return;  /* the checks below name it */
	v->stopped = false;
	if (st && st->watch != KS_GDB_WATCH_NONE && read_phase(v, cpu, &phase) == 0 &&
	    phase == KT_PHASE_DONE) {
		set_stop(v, RUN_STOP_DONE, "%s", "the pass is complete");
		return;
	}
	if (ks_gdb_state(v->gdb) == KS_GDB_STOPPED && run_vm_continue(v, NULL) < 0)
		set_stop(v, RUN_STOP_ENDED, "%s", "the VM could not be resumed");
}

static bool hung(struct run_vm *v, uint64_t now)
{
	const struct ks_run *r = v->run;
	int64_t limit = r->o.test_timeout_ns;

	if (limit < 0 || !v->in_seg || (int64_t)(now - v->seg.cur_since_ns) < limit)
		return false;
	/* Without kt_, only while the KTAP has begun and not ended. */
	return r->k.kt || (v->seg.saw_version && !ks_ktap_done(v->seg.ktap));
}

static void watch_tests(struct run_vm *v, uint64_t now)
{
	struct ks_run *r = v->run;
	char t[64];

	if (v->stopped && v->gdb)
		tests_stop(v);
	if (v->phase != RUN_VM_TESTS)
		return;
	if (v->ended) {
		ended(v);
	} else if (v->qmp_panic) {
		set_stop(v, RUN_STOP_PANIC, "%s", "the kernel panicked (pvpanic)");
	} else if (v->qmp_shutdown && !strcmp(v->shutdown_reason, "guest-reset")) {
		set_stop(v, RUN_STOP_RESET, "%s", triple_fault_logged(v)
			 ? "triple fault (the CPU reset itself)"
			 : "the machine reset itself (a reset request, or a triple fault)");
	} else if (v->qmp_shutdown) {
		set_stop(v, RUN_STOP_ENDED, "the kernel shut the machine down (%s)",
			 v->shutdown_reason);
	}
	if (v->phase != RUN_VM_TESTS)
		return;
	if (now >= v->next_poll_ns) {
		v->next_poll_ns = now + POLL_NS;
		run_seg_poll(r, v, now);
	}
	if (hung(v, now)) {
		snprintf(t, sizeof(t), "%.1f", r->o.test_timeout_ns / 1e9);
		run_vm_pause(v);
		set_stop(v, RUN_STOP_HANG, "no progress for %s s (--test-timeout)", t);
	}
}

/* After a stop, the console may still hold lines the kernel wrote before it. */
static bool drained(struct run_vm *v, uint64_t now)
{
	struct ks_chan *c = v->vm ? ks_vm_chan(v->vm, 0) : NULL;

	if (now - v->stop_ns >= DRAIN_MAX_NS)
		return true;
	/* A pass that ended as planned has printed its whole KTAP once the root plan is met. */
	if ((v->stop == RUN_STOP_DONE || v->stop == RUN_STOP_EXIT) && v->seg.ktap &&
	    ks_ktap_done(v->seg.ktap))
		return true;
	if (!c || ks_chan_closed(c))
		return true;
	return now - v->stop_ns >= DRAIN_IDLE_NS && now - v->seg.last_line_ns >= DRAIN_IDLE_NS;
}

void run_vm_step(struct run_vm *v)
{
	uint64_t now = ks_loop_now_ns();

	/* Stopped, the guest says no more: what it said before the stop must be in (and
	 * stamped before anything the run does now), though the console's reading rests. */
	if (v->stopped && v->vm)
		ks_chan_drain(ks_vm_chan(v->vm, 0));

	switch (v->phase) {
	case RUN_VM_IDLE:
		break;
	case RUN_VM_START:
		start_step(v);
		break;
	case RUN_VM_BOOT:
		if (v->stopped && v->gdb && !v->qmp_panic && !v->qmp_shutdown && !v->ended) {
			boot_stop(v);
			break;
		}
		/* A kernel that ends before READY: the boot's own pass tells why. */
		if (v->ended || v->qmp_panic || v->qmp_shutdown) {
			v->phase = RUN_VM_TESTS;
			watch_tests(v, now);
		}
		break;
	case RUN_VM_TESTS:
		watch_tests(v, now);
		/* A stop whose lines are all in goes on at once, not a loop round later. */
		if (v->phase == RUN_VM_DRAIN && drained(v, now))
			run_crash_handle(v);
		break;
	case RUN_VM_DRAIN:
		if (drained(v, now))
			run_crash_handle(v);
		break;
	}
}
