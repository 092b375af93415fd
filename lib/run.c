/* run.c: a test run: options, the loop that drives its VMs, the queue of batches, results and events. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kscope/kt_abi.h>

#include "run_internal.h"

#define ROUND_NS (10 * RUN_MS)   /* the longest the loop waits before looking at the VMs */
#define TICK_NS (100 * RUN_MS)

void ks_run_opts_init(struct ks_run_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->jobs = 1;
	o->timeout_ns = 300 * RUN_SEC;
	o->test_timeout_ns = 60 * RUN_SEC;
	o->repeat = 1;
	o->isolate = KS_RUN_ISOLATE_SNAPSHOT;
}

const char *ks_run_status_name(enum ks_run_status s)
{
	static const char *const names[] = { "NOTRUN", "PASS", "FAIL", "SKIP", "TIMEOUT",
					     "CRASHED" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* ---- events ---- */

void run_emit(struct ks_run *r, enum ks_run_event_kind kind, unsigned vm, unsigned round,
	      size_t test, enum ks_run_status status, const char *text)
{
	struct ks_run_event ev = { kind, vm, round, test, 0, status, text,
				   ks_loop_now_ns() - r->t0 };

	if (kind == KS_RUN_EV_SUITE_END)
		ev.suite = test, ev.test = 0;
	if (r->o.on_event)
		r->o.on_event(&ev, r->o.event_data);
}

void run_note(struct ks_run *r, unsigned vm, const char *fmt, ...)
{
	char text[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	run_emit(r, KS_RUN_EV_NOTE, vm, 0, 0, KS_RUN_NOTRUN, text);
}

/* ---- results ---- */

int run_plan_ready(struct ks_run *r)
{
	size_t n = r->plan.ntests, ns = r->plan.nsuites;

	for (unsigned k = 0; k < r->o.repeat; k++) {
		struct run_result *a = realloc(r->results[k], (n ? n : 1) * sizeof(*a));

		if (!a)
			return -ENOMEM;
		for (size_t i = r->results_n; i < n; i++) {
			memset(&a[i], 0, sizeof(a[i]));
			a[i].duration_ns = -1;
		}
		r->results[k] = a;
	}
	r->results_n = n;
	/* Suites end (SUITE_END) only with kt_, whose plan is made once. */
	free(r->suite_done);
	if (!(r->suite_done = calloc((ns ? ns : 1) * r->o.repeat, sizeof(bool))))
		return -ENOMEM;
	r->have_plan = true;
	return 0;
}

struct run_result *run_result_at(struct ks_run *r, unsigned round, size_t test)
{
	if (round >= r->o.repeat || test >= r->results_n)
		return NULL;
	return &r->results[round][test];
}

void run_result_clear(struct run_result *res)
{
	for (size_t i = 0; i < res->ndiag; i++)
		free(res->diag[i]);
	free(res->diag);
	free(res->reason);
	free(res->output);
	free(res->fail_at);
	free(res->dump);
	free(res->diag_text);
	memset(res, 0, sizeof(*res));
}

void run_suite_end(struct ks_run *r, unsigned round, size_t s)
{
	const struct run_suite *su = &r->plan.suites[s];

	/* Without kt_ the plan grows as the console names tests, and the table with it. */
	if (!r->k.kt) {
		for (size_t i = 0; i < su->n; i++)
			if (!r->results[round][su->first + i].announced)
				return;
		run_emit(r, KS_RUN_EV_SUITE_END, 0, round, s, KS_RUN_NOTRUN, NULL);
		return;
	}
	bool *done = &r->suite_done[round * r->plan.nsuites + s];

	if (*done)
		return;
	for (size_t i = 0; i < su->n; i++)
		if (!r->results[round][su->first + i].announced)
			return;
	*done = true;
	run_emit(r, KS_RUN_EV_SUITE_END, 0, round, s, KS_RUN_NOTRUN, NULL);
}

void run_result_set(struct ks_run *r, unsigned round, size_t test, unsigned vm,
		    enum ks_run_status status, const char *reason)
{
	struct run_result *res = run_result_at(r, round, test);

	if (!res)
		return;
	res->status = status;
	if (vm)
		res->vm = vm;
	if (reason && (!res->reason || strcmp(res->reason, reason))) {
		free(res->reason);
		res->reason = strdup(reason);
	}
	if (res->announced)
		return;
	res->announced = true;
	run_emit(r, KS_RUN_EV_TEST_END, res->vm, round, test, status, res->reason);
	if (r->k.kt)
		run_suite_end(r, round, r->plan.tests[test].suite_idx);
}

/* ---- the queue ---- */

struct run_batch *run_take_batch(struct ks_run *r)
{
	struct run_batch *b;

	/* Rounds are split when the first of their batches is wanted: by then the suites'
	 * measured times from the rounds before balance the split. */
	if (!r->queue && r->k.kt && r->have_plan && r->next_round < r->o.repeat && !r->stopping)
		r->queue = run_partition(&r->plan, r->next_round++, r->o.jobs, r->o.isolate);
	if (!(b = r->queue))
		return NULL;
	r->queue = b->next;
	b->next = NULL;
	return b;
}

void run_requeue(struct ks_run *r, unsigned round, const size_t *tests, size_t n,
		 unsigned attempts)
{
	struct run_batch *b = run_batch_new(round, tests, n);

	if (!b) {
		for (size_t i = 0; i < n; i++)
			run_result_set(r, round, tests[i], 0, KS_RUN_NOTRUN, "not run: out of memory");
		return;
	}
	b->attempts = attempts;
	b->next = r->queue;
	r->queue = b;
}

/* ---- a run ---- */

/* The spec with the filters appended to the kernel's command line, as kt_ reads them. */
static int make_spec(struct ks_run *r, struct ks_error *err)
{
	const struct ks_vmspec *s = r->o.spec;
	size_t len = s->append ? strlen(s->append) + 1 : 1;
	char *append;
	int rc;

	if (!(r->spec = ks_vmspec_dup(s, err)))
		return err ? err->code : -ENOMEM;
	if (!r->o.nfilters)
		return 0;
	for (size_t i = 0; i < r->o.nfilters; i++)
		len += strlen(r->o.filters[i]) + 11;
	if (!(append = malloc(len)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	strcpy(append, s->append ? s->append : "");
	for (size_t i = 0; i < r->o.nfilters; i++)
		strcat(strcat(strcat(append, append[0] ? " " : ""), "kt.filter="), r->o.filters[i]);
	rc = ks_vmspec_set(r->spec, "append", append, err);
	free(append);
	return rc;
}

static int make_logs(struct ks_run *r, struct ks_error *err)
{
	if (!r->o.log_dir)
		return 0;
	if (mkdir(r->o.log_dir, 0755) < 0 && errno != EEXIST)
		return ks_error_set(err, -errno, "cannot create %s: %s", r->o.log_dir,
				    strerror(errno));
	if (!(r->log_paths = calloc(r->nvms, sizeof(char *))))
		return ks_error_set(err, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < r->nvms; i++)
		if (asprintf(&r->log_paths[i], "%s/vm%u.log", r->o.log_dir, i + 1) < 0)
			return ks_error_set(err, -ENOMEM, "out of memory");
	return 0;
}

struct ks_run *ks_run_new(const struct ks_run_opts *o, struct ks_error *err)
{
	struct ks_run *r = calloc(1, sizeof(*r));

	if (!r) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	r->o = *o;
	if (!o->spec || !o->spec->kernel || !o->jobs || !o->repeat) {
		ks_error_set(err, -EINVAL, "a run needs a kernel, at least one job and one round");
		goto fail;
	}
	r->o.on_event = o->on_event;
	if (r->o.shuffle && !r->o.seed)
		r->o.seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	if (make_spec(r, err) < 0 || run_kernel_load(&r->k, r->spec->kernel, err) < 0)
		goto fail;
	/* Without kt_ there is no plan to share out: each VM runs a whole round. */
	r->nvms = r->k.kt ? o->jobs : (o->jobs < o->repeat ? o->jobs : o->repeat);
	if (o->list)
		r->nvms = 1;  /* the first READY has the whole plan */
	if (!(r->vms = calloc(r->nvms, sizeof(*r->vms))) ||
	    !(r->results = calloc(o->repeat, sizeof(*r->results)))) {
		ks_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < r->nvms; i++) {
		r->vms[i].run = r;
		r->vms[i].num = i + 1;
		r->vms[i].seg.cur = RUN_NONE;
	}
	if (make_logs(r, err) < 0)
		goto fail;
	/* Options point into the caller's memory: the run keeps only its own copies. */
	r->o.spec = NULL;
	r->o.filters = NULL;
	return r;
fail:
	ks_run_free(r);
	return NULL;
}

void ks_run_free(struct ks_run *r)
{
	if (!r)
		return;
	for (unsigned i = 0; r->vms && i < r->nvms; i++) {
		run_vm_teardown(&r->vms[i]);
		run_batch_free(r->vms[i].batch);
		if (r->vms[i].log)
			fclose(r->vms[i].log);
	}
	for (unsigned k = 0; r->results && k < r->o.repeat; k++) {
		for (size_t i = 0; r->results[k] && i < r->results_n; i++)
			run_result_clear(&r->results[k][i]);
		free(r->results[k]);
	}
	for (unsigned i = 0; r->log_paths && i < r->nvms; i++)
		free(r->log_paths[i]);
	run_report_free(r);
	free(r->log_paths);
	free(r->results);
	free(r->suite_done);
	free(r->vms);
	run_batch_free(r->queue);
	run_plan_free(&r->plan);
	run_kernel_free(&r->k);
	ks_vmspec_free(r->spec);
	free(r);
}

void run_degrade(struct ks_run *r, struct run_vm *v)
{
	run_note(r, v->num, "vm%u: the kernel ran its tests without stopping at READY (%s): "
		 "following its KTAP alone", v->num, v->vm && ks_vm_accel(v->vm) == KS_ACCEL_KVM
		 ? "under KVM the gdbstub's watchpoint may not fire: --accel tcg avoids it"
		 : "the watchpoint on kt_state.phase did not fire");
	r->k.kt = false;
	/* Without kt_ each boot runs a whole round: the others queue as such. */
	for (unsigned k = r->o.repeat; k-- > 1;)
		run_requeue(r, k, NULL, 0, 0);
}

void ks_run_stop(struct ks_run *r, const char *why)
{
	if (r->stopping)
		return;
	r->stopping = true;
	snprintf(r->stop_why, sizeof(r->stop_why), "%s", why);
}

static bool busy(const struct ks_run *r)
{
	for (unsigned i = 0; i < r->nvms; i++)
		if (r->vms[i].phase != RUN_VM_IDLE)
			return true;
	return false;
}

/* Whether a kt_ VM is booting without a batch yet: it will take one at READY. */
static bool waiting_boot(const struct ks_run *r)
{
	for (unsigned i = 0; r->k.kt && i < r->nvms; i++)
		if ((r->vms[i].phase == RUN_VM_START || r->vms[i].phase == RUN_VM_BOOT) &&
		    !r->vms[i].batch)
			return true;
	return false;
}

/*
 * Gives idle VMs work. Before the plan is known every VM boots at once (the first at READY
 * finds the plan, each takes its share there); a boot that finds nothing left ends at READY.
 * Booting only spawns QEMU: the VMs' start-ups run side by side on the loop.
 */
static int schedule(struct ks_run *r, struct ks_error *err)
{
	for (unsigned i = 0; i < r->nvms && !r->stopping; i++) {
		struct run_vm *v = &r->vms[i];
		struct run_batch *b = NULL;
		int rc;

		if (v->phase != RUN_VM_IDLE)
			continue;
		if (r->k.kt && !r->have_plan) {
			if (v->boots)
				continue;
		} else if (waiting_boot(r) || !(b = run_take_batch(r))) {
			/* A VM on its way to READY takes the next batch there. */
			return 0;
		}
		v->batch = b;
		if ((rc = run_vm_boot(v, err)) < 0) {
			v->batch = NULL;
			if (b)
				b->next = r->queue, r->queue = b;
			run_vm_teardown(v);
			return rc;
		}
	}
	return 0;
}

static bool finished(const struct ks_run *r)
{
	if (busy(r))
		return false;
	if (r->stopping || (r->k.kt && !r->have_plan && r->boots >= r->nvms) ||
	    (r->o.list && r->have_plan))
		return true;
	if (r->k.kt && !r->have_plan)
		return false;  /* the first boot is yet to find the plan */
	return !r->queue && !(r->k.kt && r->have_plan && r->next_round < r->o.repeat);
}

/* Whatever never got a result when the run ended. */
static void settle(struct ks_run *r)
{
	const char *why = r->stopping ? r->stop_why : "not run";

	for (unsigned k = 0; k < r->o.repeat; k++)
		for (size_t i = 0; i < r->results_n; i++)
			if (!r->results[k][i].announced)
				run_result_set(r, k, i, 0, KS_RUN_NOTRUN, why);
}

/* Why a run gave nothing to report: the messages the command prints. */
static int no_results(struct ks_run *r, struct ks_error *err)
{
	double t = r->o.timeout_ns / 1e9;

	if (r->early_why[0])
		return ks_error_set(err, -EIO, "the kernel stopped before its tests started: %s",
				    r->early_why);
	if (!r->saw_output && r->stopping && r->deadline && ks_loop_now_ns() >= r->deadline)
		return ks_error_set(err, -ETIMEDOUT, "no KTAP output from the kernel within %g s",
				    t);
	if (!r->saw_output)
		return ks_error_set(err, -ENODATA, "no KTAP output from the kernel (%s)",
				    r->last_end[0] ? r->last_end : "it ended");
	return ks_error_set(err, -ENODATA, "the kernel's KTAP output held no tests");
}

int ks_run_exec(struct ks_run *r, struct ks_loop *loop, struct ks_error *err)
{
	int rc = 0;

	if (r->o.list && !r->k.kt)
		return ks_error_set(err, -EOPNOTSUPP, "--list needs a kernel with kt_ (the symbol "
				    "kt_state); %s has none", r->k.path);
	r->loop = loop;
	r->t0 = r->next_tick_ns = ks_loop_now_ns();
	r->deadline = r->o.timeout_ns >= 0 ? r->t0 + (uint64_t)r->o.timeout_ns : 0;
	for (unsigned k = r->o.repeat; !r->k.kt && k-- > 0;)
		run_requeue(r, k, NULL, 0, 0);
	while (rc == 0 && !finished(r)) {
		uint64_t now;

		if ((rc = schedule(r, err)) < 0 || finished(r))
			break;
		if ((rc = ks_loop_run_once(loop, ROUND_NS)) < 0) {
			ks_error_set(err, rc, "event loop: %s", strerror(-rc));
			break;
		}
		rc = 0;
		now = ks_loop_now_ns();
		if (r->deadline && now >= r->deadline && !r->stopping) {
			char why[96];

			snprintf(why, sizeof(why), "the run's --timeout of %g s passed",
				 r->o.timeout_ns / 1e9);
			ks_run_stop(r, why);
		}
		for (unsigned i = 0; i < r->nvms; i++) {
			if (r->stopping)
				run_vm_halt(&r->vms[i]);
			run_vm_step(&r->vms[i]);
		}
		if (r->failed.code < 0) {
			rc = r->failed.code;
			if (err)
				*err = r->failed;
			break;
		}
		if (now >= r->next_tick_ns) {
			r->next_tick_ns = now + TICK_NS;
			run_emit(r, KS_RUN_EV_TICK, 0, 0, 0, KS_RUN_NOTRUN, NULL);
		}
	}
	for (unsigned i = 0; i < r->nvms; i++)
		run_vm_teardown(&r->vms[i]);
	r->t_end = ks_loop_now_ns();
	if (rc < 0)
		return rc;
	if (r->o.list)
		return r->have_plan ? 0 : no_results(r, err);
	settle(r);
	if (!r->plan.ntests)
		return no_results(r, err);
	return 0;
}

/* ---- what the caller reads ---- */

size_t ks_run_ntests(const struct ks_run *r)
{
	return r->plan.ntests;
}

const struct ks_run_test *ks_run_test(const struct ks_run *r, size_t i)
{
	struct run_test *t = i < r->plan.ntests ? &r->plan.tests[i] : NULL;

	if (!t)
		return NULL;
	t->pub = (struct ks_run_test){ t->suite, t->name, t->flags, t->suite_idx };
	return &t->pub;
}

size_t ks_run_nsuites(const struct ks_run *r)
{
	return r->plan.nsuites;
}

const struct ks_run_suite *ks_run_suite(const struct ks_run *r, size_t i)
{
	struct run_suite *s = i < r->plan.nsuites ? &r->plan.suites[i] : NULL;

	if (!s)
		return NULL;
	s->pub = (struct ks_run_suite){ s->name, s->first, s->n };
	return &s->pub;
}

/* The diagnostics as one string, made when first asked for. */
static const char *diag_text(struct run_result *res)
{
	size_t len = 1;

	if (res->diag_text || !res->ndiag)
		return res->diag_text;
	for (size_t i = 0; i < res->ndiag; i++)
		len += strlen(res->diag[i]) + 1;
	if (!(res->diag_text = malloc(len)))
		return NULL;
	res->diag_text[0] = 0;
	for (size_t i = 0; i < res->ndiag; i++)
		strcat(strcat(res->diag_text, res->diag[i]), i + 1 < res->ndiag ? "\n" : "");
	return res->diag_text;
}

const struct ks_run_result *ks_run_result(const struct ks_run *r, unsigned round, size_t i)
{
	struct run_result *res = run_result_at((struct ks_run *)r, round, i);

	if (!res)
		return NULL;
	res->pub = (struct ks_run_result){ res->status, res->reason, diag_text(res), res->fail_at,
					   res->dump, res->duration_ns, res->vm, res->from_state };
	return &res->pub;
}

bool ks_run_flaky(const struct ks_run *r, size_t i)
{
	bool pass = false, bad = false;

	for (unsigned k = 0; i < r->results_n && k < r->o.repeat; k++) {
		enum ks_run_status s = r->results[k][i].status;

		pass |= s == KS_RUN_PASS;
		bad |= s == KS_RUN_FAIL || s == KS_RUN_TIMEOUT || s == KS_RUN_CRASHED;
	}
	return pass && bad;
}

void ks_run_summary(const struct ks_run *r, struct ks_run_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->rounds = r->o.repeat;
	s->tests = r->plan.ntests;
	for (unsigned k = 0; k < r->o.repeat; k++)
		for (size_t i = 0; i < r->results_n; i++) {
			size_t *slot[] = { &s->notrun, &s->pass, &s->fail, &s->skip, &s->timeout,
					   &s->crashed };

			(*slot[r->results[k][i].status])++;
		}
	for (size_t i = 0; i < r->results_n; i++)
		s->flaky += ks_run_flaky(r, i);
	for (unsigned i = 0; i < r->nvms; i++)
		s->vms += r->vms[i].boots > 0;
	s->boots = r->boots;
	s->restores = r->restores;
	s->kt = r->k.kt;
	s->from_state = r->from_state;
	s->elapsed_ns = (r->t_end ? r->t_end : r->t0 ? ks_loop_now_ns() : 0) - r->t0;
	s->seed = r->o.seed;
}

const char *ks_run_log_path(const struct ks_run *r, unsigned vm)
{
	return r->log_paths && vm >= 1 && vm <= r->nvms ? r->log_paths[vm - 1] : NULL;
}
