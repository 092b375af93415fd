/* run_seg.c: one pass of a kernel's tests: console lines into KTAP, progress from kt_state, results at its end. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/kt_abi.h>

#include "run_internal.h"

#define CONSOLE_GRACE_NS (300 * RUN_MS)

int run_seg_init(struct run_seg *s, unsigned round, const size_t *tests, size_t n,
		 uint64_t now_ns)
{
	memset(s, 0, sizeof(*s));
	s->round = round;
	s->cur = RUN_NONE;
	s->start_ns = s->switch_ns = s->last_line_ns = s->last_result_ns = s->cur_since_ns = now_ns;
	s->cur_start_ns = 0;
	if (!(s->tests = malloc((n ? n : 1) * sizeof(*tests))) || !(s->ktap = ks_ktap_new())) {
		free(s->tests);
		s->tests = NULL;
		return -ENOMEM;
	}
	if (n)
		memcpy(s->tests, tests, n * sizeof(*tests));
	s->ntests = n;
	s->final_seen = calloc(n ? n : 1, sizeof(*s->final_seen));
	return s->final_seen ? 0 : -ENOMEM;
}

void run_seg_free(struct run_seg *s)
{
	ks_ktap_free(s->ktap);
	ks_kt_state_free(s->state);
	free(s->tests);
	free(s->final_seen);
	memset(s, 0, sizeof(*s));
	s->cur = RUN_NONE;
}

/* ---- mapping KTAP and kt_state to the plan ---- */

static const struct ks_ktap_test *child_named(const struct ks_ktap_test *t, const char *name)
{
	for (size_t i = 0; t && i < t->nchildren; i++)
		if (!strcmp(t->children[i]->name, name))
			return t->children[i];
	return NULL;
}

static const struct ks_kt_case *state_case(const struct ks_kt_state *st, const char *suite,
					   const char *name)
{
	for (size_t i = 0; st && i < st->nsuites; i++)
		if (!strcmp(st->suites[i].name, suite))
			for (size_t j = 0; j < st->suites[i].ncases; j++)
				if (!strcmp(st->suites[i].cases[j].name, name))
					return &st->suites[i].cases[j];
	return NULL;
}

/* The plan index of a KTAP case (a test whose parent is a top-level test); with a KTAP-only
 * kernel the plan grows. RUN_NONE when it is not a case or not in the plan. */
static size_t ktap_case_index(struct ks_run *r, const struct ks_ktap_test *t)
{
	if (t->depth != 2 || !t->parent || !t->name[0])
		return RUN_NONE;
	size_t i = run_plan_find(&r->plan, t->parent->name, t->name);

	if (i == RUN_NONE && !r->k.kt) {
		i = run_plan_add(&r->plan, t->parent->name, t->name);
		if (i != RUN_NONE && run_plan_ready(r) < 0)
			i = RUN_NONE;
	}
	return i;
}

static enum ks_run_status ktap_status(const struct ks_ktap_test *t)
{
	switch (t->status) {
	case KS_KTAP_PASS:
	case KS_KTAP_XFAIL:
		return KS_RUN_PASS;
	case KS_KTAP_SKIP:
	case KS_KTAP_TODO:
	case KS_KTAP_NO_TESTS:
		return KS_RUN_SKIP;
	case KS_KTAP_TIMEOUT:
		return KS_RUN_TIMEOUT;
	case KS_KTAP_FAIL:
		return KS_RUN_FAIL;
	default:
		return KS_RUN_CRASHED;
	}
}

static enum ks_run_status state_status(uint32_t st)
{
	return st == KT_ST_PASS ? KS_RUN_PASS : st == KT_ST_FAIL ? KS_RUN_FAIL
	       : st == KT_ST_SKIP ? KS_RUN_SKIP : KS_RUN_NOTRUN;
}

/* Announces a case as soon as its KTAP result line is read. */
static void on_ktap_end(const struct ks_ktap_test *t, void *data)
{
	struct run_vm *v = data;
	struct ks_run *r = v->run;
	size_t i;

	if (!r->k.kt && t->depth == 1 && t->has_result) {
		for (size_t k = 0; k < r->plan.nsuites; k++)
			if (!strcmp(r->plan.suites[k].name, t->name))
				run_suite_end(r, v->seg.round, k);
		return;
	}
	if (!t->has_result || (i = ktap_case_index(r, t)) == RUN_NONE)
		return;
	v->seg.done_tests++;
	v->seg.last_result_ns = ks_loop_now_ns();
	if (!r->k.kt)
		v->seg.cur_since_ns = v->seg.cur_start_ns = v->seg.last_result_ns;
	if (!r->k.kt || v->seg.cur == i)
		v->seg.cur = RUN_NONE;
	run_result_set(r, v->seg.round, i, v->num, ktap_status(t),
		       t->reason && t->reason[0] ? t->reason : NULL);
}

static void on_ktap_start(const struct ks_ktap_test *t, void *data)
{
	struct run_vm *v = data;

	/* Without kt_, a suite's start is the closest the console gives to a test's. */
	if (!v->run->k.kt && t->depth == 1)
		v->seg.cur_since_ns = v->seg.cur_start_ns = ks_loop_now_ns();
}

/* ---- the console ---- */

void run_seg_line(struct ks_run *r, struct run_vm *v, const char *text, size_t len,
		  uint64_t ts_ns)
{
	struct run_seg *s = &v->seg;
	const char *kt;

	if (!v->in_seg || !s->ktap)
		return;
	/* A line that began before a restore ends the output of the pass before it. */
	if (ts_ns < s->switch_ns) {
		if (!(kt = memmem(text, len, "KTAP version", 12)))
			return;
		len -= (size_t)(kt - text);
		text = kt;
	}
	if (!ks_ktap_root(s->ktap)) {
		struct ks_ktap_callbacks cb = { on_ktap_start, on_ktap_end, v };

		ks_ktap_set_callbacks(s->ktap, &cb);
	}
	ks_ktap_feed(s->ktap, text, len);
	ks_ktap_feed(s->ktap, "\n", 1);
	s->last_line_ns = ks_loop_now_ns();
	if (!s->saw_version && ks_ktap_root(s->ktap)) {
		s->saw_version = true;
		r->saw_output = true;
		s->last_result_ns = s->last_line_ns;
	}
}

/* ---- progress ---- */

/* The plan index of the case kt_state says runs now, or RUN_NONE. */
static size_t state_current(struct ks_run *r, const struct ks_kt_state *st)
{
	if (st->cur_suite < 0 || st->cur_case < 0 || (size_t)st->cur_suite >= st->nsuites)
		return RUN_NONE;
	const struct ks_kt_suite *su = &st->suites[st->cur_suite];

	if ((size_t)st->cur_case >= su->ncases)
		return RUN_NONE;
	return run_plan_find(&r->plan, su->name, su->cases[st->cur_case].name);
}

static void fill_from_state(struct ks_run *r, struct run_vm *v, size_t idx,
			    const struct ks_kt_case *kc);

/* Tests kt_state says have ended but the console has not: announced after a grace period
 * (the console usually follows within milliseconds), so that a silent or garbled console
 * still shows progress. */
static void announce_ended(struct ks_run *r, struct run_vm *v, uint64_t now_ns)
{
	struct run_seg *s = &v->seg;

	for (size_t i = 0; s->state && s->final_seen && i < s->ntests; i++) {
		const struct run_test *t = &r->plan.tests[s->tests[i]];
		const struct ks_kt_case *kc = state_case(s->state, t->suite, t->name);
		const struct run_result *res = run_result_at(r, s->round, s->tests[i]);

		if (!kc || !res || res->announced || state_status(kc->status) == KS_RUN_NOTRUN)
			continue;
		if (!s->final_seen[i])
			s->final_seen[i] = now_ns;
		else if (now_ns - s->final_seen[i] >= CONSOLE_GRACE_NS)
			fill_from_state(r, v, s->tests[i], kc);
	}
}

void run_seg_poll(struct ks_run *r, struct run_vm *v, uint64_t now_ns)
{
	struct run_seg *s = &v->seg;
	struct kt_abi_state h;
	struct ks_kt_state *st;
	size_t cur;

	announce_ended(r, v, now_ns);
	if (!r->k.kt || !v->kt_ready || run_state_header(v, &h) < 0 || h.seq == s->state_seq ||
	    (h.seq & 1) || !(st = run_state_read(v, false, NULL)))
		return;
	ks_kt_state_free(s->state);
	s->state = st;
	s->state_seq = st->seq;
	/* Every change of the state is progress: a case or a parameter began or ended. */
	s->cur_since_ns = now_ns;
	cur = state_current(r, st);
	if (cur == s->cur)
		return;
	s->cur = cur;
	s->cur_start_ns = now_ns;
	if (cur != RUN_NONE) {
		run_vm_event(v, "test %s.%s started", r->plan.tests[cur].suite,
			     r->plan.tests[cur].name);
		run_emit(r, KS_RUN_EV_TEST_START, v->num, s->round, cur, KS_RUN_NOTRUN, NULL);
	}
}

/* ---- the end of a pass ---- */

static const char *dedent(const char *s)
{
	return s + strspn(s, " \t");
}

__attribute__((format(printf, 3, 4)))
static void add_line(struct run_result *res, int indent, const char *fmt, ...)
{
	char *body, *full, **v;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&body, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = asprintf(&full, "%*s%s", indent, "", body);
	free(body);
	if (n < 0)
		return;
	if (!(v = realloc(res->diag, (res->ndiag + 1) * sizeof(*v)))) {
		free(full);
		return;
	}
	res->diag = v;
	v[res->ndiag++] = full;
}

static void add_output(struct run_result *res, const char *line)
{
	size_t old = res->output ? strlen(res->output) : 0, n = strlen(line);
	char *o = realloc(res->output, old + n + 2);

	if (!o)
		return;
	memcpy(o + old, line, n);
	o[old + n] = '\n';
	o[old + n + 1] = 0;
	res->output = o;
}

/* The KTAP lines of t's children (parameters), then t's own log, at indentation indent:
 * what the reports write above t's result line. Other console lines go to its output. */
static void take_lines(struct run_result *res, const struct ks_ktap_test *t, int indent)
{
	if (t->nchildren) {
		add_line(res, indent + 4, "KTAP version 1");
		add_line(res, indent + 4, "# Subtest: %s", t->name);
		if (t->plan >= 0)
			add_line(res, indent + 4, "1..%ld", t->plan);
	}
	for (size_t i = 0; i < t->nchildren; i++) {
		const struct ks_ktap_test *c = t->children[i];
		bool dir = c->has_result && c->directive[0];

		take_lines(res, c, indent + 4);
		add_line(res, indent + 4, "%sok %u %s%s%s%s%s",
			 c->has_result && c->ok ? "" : "not ", c->number,
			 c->name[0] ? c->name : "unnamed", dir ? " # " : "",
			 dir ? c->directive : c->has_result ? "" : " # ERROR no result",
			 dir && c->reason[0] ? " " : "", dir ? c->reason : "");
	}
	for (size_t i = 0; i < t->nlog; i++) {
		const char *s = dedent(t->log[i]);

		if (s[0] == '#')
			add_line(res, indent, "%s", s);
		else if (s[0])
			add_output(res, s);
	}
}

/* The first line that says why a case failed: "EXPECTATION FAILED at f.c:12". */
static const char *failure_line(const struct run_result *res)
{
	for (size_t i = 0; i < res->ndiag; i++)
		if (strstr(res->diag[i], "FAILED") || strstr(res->diag[i], "PANIC"))
			return res->diag[i];
	return res->ndiag ? res->diag[0] : NULL;
}

/* The failure line without "# case: " in front. */
static char *reason_of(const struct run_result *res, const char *name)
{
	const char *s = failure_line(res);
	size_t n = strlen(name);

	if (!s)
		return NULL;
	s = dedent(s);
	s += s[0] == '#' ? 1 : 0;
	s = dedent(s);
	if (!strncmp(s, name, n) && s[n] == ':')
		s = dedent(s + n + 1);
	return strdup(s);
}

/* What the pass knows of one test, from both sources. */
struct seen {
	const struct ks_ktap_test *kn;  /* its KTAP node, NULL if the console never named it */
	const struct ks_kt_case *kc;    /* its kt_state record, NULL without kt_ */
	const struct ks_ktap_test *hole; /* the crashed placeholder standing for it */
};

static void fill(struct ks_run *r, struct run_vm *v, size_t idx, enum ks_run_status status,
		 const struct seen *w, const char *why, const char *dump)
{
	struct run_result *res = run_result_at(r, v->seg.round, idx);
	char *reason = NULL;

	if (!res)
		return;
	free(res->output);
	res->output = NULL;
	for (size_t i = 0; i < res->ndiag; i++)
		free(res->diag[i]);
	res->ndiag = 0;
	if (w->kn || w->hole)
		take_lines(res, w->kn ? w->kn : w->hole, 0);
	if (w->kc && w->kc->fail_file && !res->fail_at &&
	    asprintf(&res->fail_at, "%s:%u", w->kc->fail_file, w->kc->fail_line) < 0)
		res->fail_at = NULL;
	if (w->kc && w->kc->duration_ns && status != KS_RUN_CRASHED && status != KS_RUN_TIMEOUT)
		res->duration_ns = (int64_t)w->kc->duration_ns;
	else if ((status == KS_RUN_CRASHED || status == KS_RUN_TIMEOUT) && v->seg.cur == idx &&
		 v->seg.cur_start_ns)
		res->duration_ns = (int64_t)(v->stop_ns - v->seg.cur_start_ns);
	if (dump && !res->dump)
		res->dump = strdup(dump);
	res->from_state = !w->kn && w->kc && !why;
	r->from_state |= res->from_state;
	if (why)
		reason = strdup(why);
	else if (status == KS_RUN_FAIL || status == KS_RUN_SKIP)
		reason = w->kn && w->kn->reason[0] ? strdup(w->kn->reason)
						   : reason_of(res, r->plan.tests[idx].name);
	if (!reason && res->from_state && status == KS_RUN_FAIL && res->fail_at &&
	    asprintf(&reason, "failed at %s", res->fail_at) < 0)
		reason = NULL;
	run_result_set(r, v->seg.round, idx, v->num, status, reason);
	free(reason);
}

static void fill_from_state(struct ks_run *r, struct run_vm *v, size_t idx,
			    const struct ks_kt_case *kc)
{
	struct seen w = { NULL, kc, NULL };

	fill(r, v, idx, state_status(kc->status), &w, NULL, NULL);
}

/* The test to blame for a stop: the case kt_state shows running, else the one the run saw
 * running last, else the first of the current suite that has no result. */
static size_t guilty(struct ks_run *r, struct run_vm *v, const struct ks_kt_state *st)
{
	struct run_seg *s = &v->seg;
	size_t g = st ? state_current(r, st) : RUN_NONE;

	if (g == RUN_NONE)
		g = s->cur;
	if (g != RUN_NONE || !st || st->cur_suite < 0 || (size_t)st->cur_suite >= st->nsuites)
		return g;
	for (size_t i = 0; i < s->ntests; i++) {
		const struct run_test *t = &r->plan.tests[s->tests[i]];
		const struct ks_kt_case *kc = state_case(st, t->suite, t->name);

		if (!strcmp(t->suite, st->suites[st->cur_suite].name) && kc &&
		    kc->status == KT_ST_NONE)
			return s->tests[i];
	}
	return RUN_NONE;
}

/* The suites' measured times, for the partition of later rounds. */
static void learn_costs(struct ks_run *r, const struct ks_kt_state *st)
{
	for (size_t i = 0; st && i < st->nsuites; i++) {
		const struct ks_kt_suite *su = &st->suites[i];

		if (su->duration_ns == 0 || su->status < KT_ST_PASS || su->status > KT_ST_SKIP)
			continue;
		for (size_t k = 0; k < r->plan.nsuites; k++)
			if (!strcmp(r->plan.suites[k].name, su->name) && !r->plan.suites[k].cost_ns)
				r->plan.suites[k].cost_ns = (int64_t)su->duration_ns;
	}
}

/* A kernel without kt_: every case the KTAP tree holds, crashed placeholders named by
 * their place, the first of them blamed for the stop. */
static size_t finish_ktap_only(struct ks_run *r, struct run_vm *v, enum ks_run_status bad,
			       const char *why, const char *dump)
{
	const struct ks_ktap_test *root = ks_ktap_root(v->seg.ktap);
	bool blamed = false;
	size_t got = 0;

	for (size_t i = 0; root && i < root->nchildren; i++) {
		const struct ks_ktap_test *su = root->children[i];

		for (size_t j = 0; j < su->nchildren; j++) {
			const struct ks_ktap_test *c = su->children[j];
			struct seen w = { c->has_result ? c : NULL, NULL, c->has_result ? NULL : c };
			char name[32];
			size_t idx;

			snprintf(name, sizeof(name), "unnamed_%u", c->number);
			idx = run_plan_find(&r->plan, su->name, c->name[0] ? c->name : name);
			if (idx == RUN_NONE && (idx = run_plan_add(&r->plan, su->name, c->name[0]
					? c->name : name)) != RUN_NONE && run_plan_ready(r) < 0)
				idx = RUN_NONE;
			if (idx == RUN_NONE)
				continue;
			if (c->has_result)
				fill(r, v, idx, ktap_status(c), &w, NULL, NULL);
			else
				fill(r, v, idx, blamed || bad == KS_RUN_NOTRUN ? KS_RUN_CRASHED : bad,
				     &w, blamed ? "no result: the kernel stopped before it" : why,
				     blamed ? NULL : dump);
			blamed |= !c->has_result;
			got++;
		}
	}
	return got;
}

size_t run_seg_finish(struct ks_run *r, struct run_vm *v, enum ks_run_status bad,
		      const char *why, const char *dump, size_t **left, size_t *nleft)
{
	struct run_seg *s = &v->seg;
	struct ks_kt_state *fresh = NULL;
	const struct ks_ktap_test *root;
	size_t got = 0, g;

	*nleft = 0;
	*left = malloc((s->ntests ? s->ntests : 1) * sizeof(size_t));
	ks_ktap_finish(s->ktap);
	root = ks_ktap_root(s->ktap);
	if (!r->k.kt)
		return finish_ktap_only(r, v, bad, why, dump);
	/* Every stop leaves the VM paused or ended: a kernel stopped mid-update is read as is. */
	if (v->kt_ready && (fresh = run_state_read(v, true, NULL))) {
		ks_kt_state_free(s->state);
		s->state = fresh;
	}
	g = bad == KS_RUN_NOTRUN ? RUN_NONE : guilty(r, v, s->state);
	for (size_t i = 0; i < s->ntests; i++) {
		const struct run_test *t = &r->plan.tests[s->tests[i]];
		const struct ks_ktap_test *su = child_named(root, t->suite);
		struct seen w = { child_named(su, t->name), state_case(s->state, t->suite, t->name),
				  NULL };

		if (w.kn && !w.kn->has_result)
			w.kn = NULL;
		if (w.kn)
			fill(r, v, s->tests[i], ktap_status(w.kn), &w, NULL, NULL);
		else if (w.kc && state_status(w.kc->status) != KS_RUN_NOTRUN)
			fill(r, v, s->tests[i], state_status(w.kc->status), &w, NULL, NULL);
		else if (s->tests[i] == g)
			w.hole = child_named(su, ""), fill(r, v, s->tests[i], bad, &w, why, dump);
		else if (*left)
			(*left)[(*nleft)++] = s->tests[i];
		got += w.kn || (w.kc && state_status(w.kc->status) != KS_RUN_NOTRUN) ||
		       s->tests[i] == g;
	}
	learn_costs(r, s->state);
	return got;
}

int run_seg_replay(struct ks_run *r, const char *text, size_t len)
{
	struct run_vm *v = &r->vms[0];
	size_t *left = NULL, nleft = 0;
	uint64_t now = ks_loop_now_ns();

	if (run_seg_init(&v->seg, 0, NULL, 0, now) < 0)
		return -ENOMEM;
	v->in_seg = true;
	r->t0 = r->t0 ? r->t0 : now;
	for (size_t at = 0; at < len;) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;

		/* As the channel delivers lines: without the newline, and the '\r' before it. */
		run_seg_line(r, v, text + at, n && text[at + n - 1] == '\r' ? n - 1 : n, now);
		at += n + 1;
	}
	v->stop_ns = ks_loop_now_ns();
	run_seg_finish(r, v, KS_RUN_CRASHED, "the console ended", NULL, &left, &nleft);
	free(left);
	v->in_seg = false;
	run_seg_free(&v->seg);
	return 0;
}
