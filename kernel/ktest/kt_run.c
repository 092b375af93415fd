/* kt_run.c: the kt_ runner: selection, KTAP output, magic messages and the kt_state records. */
#include "kt_internal.h"

/* The root a host looks for; initialized so that it sits in .data, valid before kt_run. */
struct kt_abi_state kt_state = {
	.magic = KT_ABI_MAGIC,
	.version = KT_ABI_VERSION,
	.size = sizeof(struct kt_abi_state),
	.ptr_size = sizeof(void *),
	.phase = KT_PHASE_BOOT,
	.cur_suite = -1,
	.cur_case = -1,
	.cur_param = -1,
};

/* The linker defines these for sections named like C identifiers; weak, so that a kernel
 * with no suites or no magic sites still links (they are then NULL). */
extern struct kt_suite *__start_kt_suites[] __attribute__((weak));
extern struct kt_suite *__stop_kt_suites[] __attribute__((weak));
extern const uint64_t __start_kt_magic_sites[] __attribute__((weak));
extern const uint64_t __stop_kt_magic_sites[] __attribute__((weak));

#define KT__FILTER "kt.filter="
#define KT__FILTER_LEN (sizeof(KT__FILTER) - 1)

/* What the current kt_run() call was asked to do, and its running totals. */
struct kt__run {
	const char *cmdline;
	bool filtered;          /* at least one non-empty kt.filter glob */
	bool list;              /* kt.list */
	unsigned int suite_num; /* KTAP number of the last suite printed */
	struct kt_summary sum;
};

static struct kt__run kt__r;

/* The case being run and where it sits: indices for the magic messages, number for KTAP. */
struct kt__where {
	struct kt_suite *suite;
	struct kt_case *kcase;
	uint32_t si, ci;
	unsigned int num;
	int suite_rc; /* suite_init's result */
};

/* Results of a parameterized case's parameters. */
struct kt__tally {
	unsigned int pass, fail, skip;
};

void kt__state_begin(void)
{
	uint64_t seq = __atomic_load_n(&kt_state.seq, __ATOMIC_RELAXED);

	__atomic_store_n(&kt_state.seq, seq + 1, __ATOMIC_RELAXED);
	/* A host must see the odd seq before any field it protects changes. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	kt_state.now_ns = kt_arch_now_ns();
}

void kt__state_end(void)
{
	uint64_t seq = __atomic_load_n(&kt_state.seq, __ATOMIC_RELAXED);

	__atomic_store_n(&kt_state.seq, seq + 1, __ATOMIC_RELEASE);
}

static uint32_t kt__nsuites(void)
{
	/* Integer arithmetic: both bounds are NULL when no suite exists. */
	return (uint32_t)(((uintptr_t)__stop_kt_suites - (uintptr_t)__start_kt_suites) /
			  sizeof(struct kt_suite *));
}

static uint32_t kt__nsites(void)
{
	return (uint32_t)(((uintptr_t)__stop_kt_magic_sites - (uintptr_t)__start_kt_magic_sites) /
			  sizeof(uint64_t));
}

static const char *kt__str(const char *s)
{
	return s ? s : "";
}

/* ---- Command line ---- */

static bool kt__isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Finds the next whitespace-separated token after *p; returns its length, 0 at the end. */
static size_t kt__token(const char **p, const char **tok)
{
	const char *s = *p;

	while (kt__isspace(*s))
		s++;
	*tok = s;
	while (*s && !kt__isspace(*s))
		s++;
	*p = s;
	return (size_t)(s - *tok);
}

static bool kt__token_is(const char *tok, size_t n, const char *word, bool prefix)
{
	size_t len = kt__strlen(word);

	if (n < len || (!prefix && n != len))
		return false;
	for (size_t i = 0; i < len; i++)
		if (tok[i] != word[i])
			return false;
	return true;
}

/* Whether glob g (n bytes, "suite" or "suite.case") selects the case. */
static bool kt__glob_selects(const char *g, size_t n, const char *suite, const char *kcase)
{
	size_t dot = 0;

	while (dot < n && g[dot] != '.')
		dot++;
	if (!kt__glob_match_n(g, dot, suite))
		return false;
	return dot == n || kt__glob_match_n(g + dot + 1, n - dot - 1, kcase);
}

/* Whether any kt.filter glob selects the case; with s NULL, whether any glob exists. */
static bool kt__filter_selects(const struct kt_suite *s, const struct kt_case *c)
{
	const char *p = kt__r.cmdline, *tok;
	size_t n;

	while ((n = kt__token(&p, &tok)) > 0) {
		const char *g, *end = tok + n;

		if (!kt__token_is(tok, n, KT__FILTER, true))
			continue;
		for (g = tok + KT__FILTER_LEN; g < end;) {
			const char *comma = g;

			while (comma < end && *comma != ',')
				comma++;
			if (comma > g &&
			    (!s || kt__glob_selects(g, (size_t)(comma - g), kt__str(s->name),
						    kt__str(c->name))))
				return true;
			g = comma + 1;
		}
	}
	return false;
}

static void kt__parse_cmdline(void)
{
	const char *p = kt__r.cmdline, *tok;
	size_t n;

	while ((n = kt__token(&p, &tok)) > 0)
		if (kt__token_is(tok, n, "kt.list", false))
			kt__r.list = true;
	kt__r.filtered = kt__filter_selects(NULL, NULL);
}

/* The run's selection: the filter if there is one, otherwise all but opt-in suites. */
static bool kt__selected(const struct kt_suite *s, const struct kt_case *c)
{
	if (kt__r.filtered)
		return kt__filter_selects(s, c);
	return !(s->flags & KT_OPT_IN);
}

/* ---- Records ---- */

/* A case's ABI flags: its own, what it inherits from its suite, and PARAM. */
static uint32_t kt__case_flags(const struct kt_suite *s, const struct kt_case *c)
{
	uint32_t f = (c->flags | s->flags) & (KT_ABI_F_DESTRUCTIVE | KT_ABI_F_OPT_IN);

	if (c->gen_params)
		f |= KT_ABI_F_PARAM;
	return f;
}

static void kt__fill_suite(struct kt_suite *s)
{
	uint32_t n = 0, selected = 0;

	s->abi = (struct kt_abi_suite){
		.name = kt__va(s->name),
		.cases = kt__va(s->cases),
		.case_stride = sizeof(struct kt_case),
		.flags = s->flags & (KT_ABI_F_DESTRUCTIVE | KT_ABI_F_OPT_IN),
	};
	for (struct kt_case *c = s->cases; c && c->run; c++, n++) {
		bool on = kt__selected(s, c);

		c->abi = (struct kt_abi_case){
			.name = kt__va(c->name),
			.flags = kt__case_flags(s, c),
			.status = on ? KT_ST_NONE : KT_ST_FILTERED,
		};
		selected += on;
	}
	s->abi.ncases = n;
	s->abi.n_selected = selected;
	s->abi.status = selected ? KT_ST_NONE : KT_ST_FILTERED;
}

/* Resets kt_state and fills every record; leaves the phase at READY. */
static void kt__prepare(void)
{
	uint32_t n = kt__nsuites(), selected = 0;

	kt__state_begin();
	/* A first run finds the phase at BOOT already: one watchpoint stop (READY), not two. */
	if (kt_state.phase != KT_PHASE_BOOT)
		KT__SET(kt_state.phase, KT_PHASE_BOOT);
	KT__SET(kt_state.size, sizeof(kt_state));
	KT__SET(kt_state.ptr_size, sizeof(void *));
	kt_state.suites = n ? kt__va(__start_kt_suites) : 0;
	KT__SET(kt_state.nsuites, n);
	kt_state.sites = kt__nsites() ? kt__va(__start_kt_magic_sites) : 0;
	KT__SET(kt_state.nsites, kt__nsites());
	KT__SET(kt_state.cur_suite, -1);
	KT__SET(kt_state.cur_case, -1);
	KT__SET(kt_state.cur_param, -1);
	KT__SET(kt_state.n_pass, 0);
	KT__SET(kt_state.n_fail, 0);
	KT__SET(kt_state.n_skip, 0);
	for (uint32_t i = 0; i < n; i++) {
		struct kt_suite *s = __start_kt_suites[i];

		if (!s)
			continue;
		kt__fill_suite(s);
		selected += s->abi.n_selected;
	}
	KT__SET(kt_state.n_selected, selected);
	/* Last: a host stopped by a watchpoint right after this store finds every record
	 * filled, and may choose the tests until the READY message returns. */
	KT__SET(kt_state.phase, KT_PHASE_READY);
	kt__state_end();
}

/* ---- KTAP output ---- */

static void kt__result(int indent, int status, unsigned int num, const char *name,
		       const char *reason)
{
	if (status == KT_ST_FAIL)
		kt__line(indent, "not ok %u %s", num, name);
	else if (status == KT_ST_SKIP)
		kt__line(indent, "ok %u %s # SKIP%s%s", num, name, reason[0] ? " " : "", reason);
	else
		kt__line(indent, "ok %u %s", num, name);
}

/* ---- One test: a case, or one parameter of it ---- */

static void kt__test_init(struct kt_test *t, const struct kt__where *w, const void *param,
			  int indent)
{
	t->suite = w->suite;
	t->kcase = w->kcase;
	t->param = param;
	t->priv = NULL;
	t->status = KT_ST_PASS;
	t->indent = indent;
	t->ncleanups = 0;
	t->skip_reason[0] = '\0';
}

static void kt__body(struct kt_test *t)
{
	int rc = t->suite->init ? t->suite->init(t) : 0;

	if (rc) {
		kt__fail_note(t, "failed to initialize: %d", rc);
		return;
	}
	t->kcase->run(t);
}

/*
 * Each stage gets its own abort point, so that an ASSERT in the case, in exit or in one
 * cleanup never skips the stages after it. Kept out of line so that no caller's locals live
 * across a setjmp.
 */
static __attribute__((noinline)) void kt__guarded_body(struct kt_test *t)
{
	if (kt_setjmp(t->abort_jmp) == 0)
		kt__body(t);
}

static __attribute__((noinline)) void kt__guarded_exit(struct kt_test *t)
{
	if (kt_setjmp(t->abort_jmp) == 0)
		t->suite->exit(t);
}

static __attribute__((noinline)) void kt__guarded_cleanup(struct kt_test *t, unsigned int i)
{
	if (kt_setjmp(t->abort_jmp) == 0)
		t->cleanups[i].fn(t->cleanups[i].data);
}

/* Runs init, the case, exit and the cleanups (newest first); returns the test's KT_ST_*. */
static int kt__run_test(struct kt_test *t, const struct kt__where *w, const void *param,
			int indent)
{
	kt__test_init(t, w, param, indent);
	kt__guarded_body(t);
	if (w->suite->exit)
		kt__guarded_exit(t);
	while (t->ncleanups > 0) {
		t->ncleanups--;
		kt__guarded_cleanup(t, t->ncleanups);
	}
	return t->status;
}

/* ---- Cases ---- */

static uint64_t kt__pair(const struct kt__where *w)
{
	return (uint64_t)w->si << 32 | w->ci;
}

static void kt__case_start(const struct kt__where *w)
{
	kt__state_begin();
	w->kcase->abi.status = KT_ST_RUNNING;
	w->kcase->abi.start_ns = kt_state.now_ns;
	KT__SET(kt_state.cur_case, (int32_t)w->ci);
	KT__SET(kt_state.cur_param, -1);
	kt__state_end();
	KT_MAGIC(KT_MAGIC_CASE_START, kt__pair(w));
}

static void kt__case_end(const struct kt__where *w, int status, const char *reason)
{
	struct kt_abi_suite *s = &w->suite->abi;
	struct kt_case *c = w->kcase;

	kt__state_begin();
	c->abi.status = (uint32_t)status;
	c->abi.duration_ns = kt_state.now_ns - c->abi.start_ns;
	if (status == KT_ST_FAIL) {
		s->n_fail++;
		kt_state.n_fail++;
	} else if (status == KT_ST_SKIP) {
		s->n_skip++;
		kt_state.n_skip++;
	} else {
		s->n_pass++;
		kt_state.n_pass++;
	}
	KT__SET(kt_state.cur_case, -1);
	KT__SET(kt_state.cur_param, -1);
	kt__state_end();
	KT_MAGIC2(KT_MAGIC_CASE_END, kt__pair(w), status);
	kt__result(1, status, w->num, c->name, reason);
}

static void kt__param_start(int32_t i)
{
	kt__state_begin();
	KT__SET(kt_state.cur_param, i);
	kt__state_end();
}

static void kt__param_end(struct kt_case *c, int status)
{
	kt__state_begin();
	c->abi.params_total++;
	if (status == KT_ST_FAIL)
		c->abi.params_failed++;
	kt__state_end();
}

/* Runs every parameter as a nested KTAP subtest; reason gets the last skip reason. */
static int kt__run_params(const struct kt__where *w, struct kt__tally *ty, char *reason,
			  size_t size)
{
	struct kt_case *c = w->kcase;
	char desc[KT_PARAM_DESC_SIZE] = "";
	const void *p = c->gen_params(NULL, desc);
	struct kt_test t;
	int32_t i = 0;

	/* No nested subtest without results: parsers count an empty one as an error. */
	if (!p) {
		kt_snprintf(reason, size, "no parameters");
		return KT_ST_SKIP;
	}
	kt__line(2, "KTAP version 1");
	kt__diag(2, "Subtest: %s", kt__str(c->name));
	for (; p; i++) {
		int status;

		kt__param_start(i);
		status = kt__run_test(&t, w, p, 2);
		desc[sizeof(desc) - 1] = '\0';
		if (!desc[0]) /* KUnit numbers unnamed parameters from 0 */
			kt_snprintf(desc, sizeof(desc), "param-%d", (int)i);
		kt__param_end(c, status);
		ty->fail += status == KT_ST_FAIL;
		ty->skip += status == KT_ST_SKIP;
		ty->pass += status == KT_ST_PASS;
		if (status == KT_ST_SKIP)
			kt_snprintf(reason, size, "%s", t.skip_reason);
		kt__result(2, status, (unsigned int)i + 1, desc, t.skip_reason);
		desc[0] = '\0';
		p = c->gen_params(p, desc);
	}
	if (ty->fail)
		return KT_ST_FAIL;
	return ty->skip == (unsigned int)i ? KT_ST_SKIP : KT_ST_PASS;
}

static int kt__run_plain(const struct kt__where *w, char *reason, size_t size)
{
	struct kt_test t;
	int status;

	if (w->suite_rc) {
		kt__test_init(&t, w, NULL, 1);
		kt__fail_note(&t, "suite_init failed: %d", w->suite_rc);
		return KT_ST_FAIL;
	}
	status = kt__run_test(&t, w, NULL, 1);
	kt_snprintf(reason, size, "%s", t.skip_reason);
	return status;
}

static void kt__run_case(const struct kt__where *w)
{
	char reason[sizeof(((struct kt_test *)0)->skip_reason)] = "";
	struct kt__tally ty = { 0 };
	bool params = w->kcase->gen_params && !w->suite_rc;
	int status;

	kt__case_start(w);
	if (params)
		status = kt__run_params(w, &ty, reason, sizeof(reason));
	else
		status = kt__run_plain(w, reason, sizeof(reason));
	if (w->kcase->flags & KT_DESTRUCTIVE)
		kt__diag(1, "destructive: true");
	if (params)
		kt__diag(1, "%s: pass:%u fail:%u skip:%u total:%u", kt__str(w->kcase->name),
			 ty.pass, ty.fail, ty.skip, ty.pass + ty.fail + ty.skip);
	kt__case_end(w, status, reason);
}

/* ---- Suites ---- */

static void kt__suite_start(uint32_t si, struct kt_suite *s)
{
	kt__state_begin();
	s->abi.status = KT_ST_RUNNING;
	s->abi.start_ns = kt_state.now_ns;
	KT__SET(kt_state.cur_suite, (int32_t)si);
	kt__state_end();
	KT_MAGIC(KT_MAGIC_SUITE_START, si);
	kt__line(1, "KTAP version 1");
	kt__diag(1, "Subtest: %s", kt__str(s->name));
	if (s->flags & KT_DESTRUCTIVE)
		kt__diag(1, "destructive: true");
	kt__line(1, "1..%u", s->abi.n_selected);
}

static void kt__suite_end(uint32_t si, struct kt_suite *s)
{
	int status = s->abi.n_fail ? KT_ST_FAIL
		     : s->abi.n_skip == s->abi.n_selected ? KT_ST_SKIP : KT_ST_PASS;

	kt__diag(1, "%s: pass:%u fail:%u skip:%u total:%u", kt__str(s->name), s->abi.n_pass,
		 s->abi.n_fail, s->abi.n_skip, s->abi.n_selected);
	kt__state_begin();
	s->abi.status = (uint32_t)status;
	s->abi.duration_ns = kt_state.now_ns - s->abi.start_ns;
	KT__SET(kt_state.cur_suite, -1);
	kt__state_end();
	KT_MAGIC2(KT_MAGIC_SUITE_END, si, status);
	kt__result(0, status, ++kt__r.suite_num, kt__str(s->name), "");
}

static void kt__run_suite(uint32_t si, struct kt_suite *s)
{
	struct kt__where w = { .suite = s, .si = si };
	uint32_t ci = 0;

	kt__suite_start(si, s);
	w.suite_rc = s->suite_init ? s->suite_init(s) : 0;
	for (struct kt_case *c = s->cases; c->run; c++, ci++) {
		if (c->abi.status == KT_ST_FILTERED)
			continue;
		w.kcase = c;
		w.ci = ci;
		w.num++;
		kt__run_case(&w);
	}
	if (s->suite_exit)
		s->suite_exit(s);
	kt__suite_end(si, s);
}

/* ---- The two modes ---- */

static void kt__set_phase(uint32_t phase)
{
	kt__state_begin();
	KT__SET(kt_state.phase, phase);
	kt__state_end();
}

static void kt__run_all(void)
{
	uint32_t n = kt__nsuites();
	unsigned int printed = 0;

	for (uint32_t i = 0; i < n; i++)
		printed += __start_kt_suites[i] && __start_kt_suites[i]->abi.n_selected;
	kt__set_phase(KT_PHASE_RUNNING);
	kt__line(0, "KTAP version 1");
	kt__line(0, "1..%u", printed);
	for (uint32_t i = 0; i < n; i++)
		if (__start_kt_suites[i] && __start_kt_suites[i]->abi.n_selected)
			kt__run_suite(i, __start_kt_suites[i]);
	kt__r.sum.pass = kt_state.n_pass;
	kt__r.sum.fail = kt_state.n_fail;
	kt__r.sum.skip = kt_state.n_skip;
	kt__r.sum.total = kt_state.n_selected;
	kt__diag(0, "Totals: pass:%u fail:%u skip:%u total:%u", kt__r.sum.pass, kt__r.sum.fail,
		 kt__r.sum.skip, kt__r.sum.total);
	kt__set_phase(KT_PHASE_DONE);
}

/* Counts (print false) or prints (print true) the cases kt.list shows: the filter's
 * selection, or with no filter every case, opt-in suites included. */
static unsigned int kt__list_pass(bool print)
{
	uint32_t n = kt__nsuites();
	unsigned int count = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct kt_suite *s = __start_kt_suites[i];

		for (struct kt_case *c = s ? s->cases : NULL; c && c->run; c++) {
			uint32_t f = kt__case_flags(s, c);

			if (kt__r.filtered && c->abi.status == KT_ST_FILTERED)
				continue;
			count++;
			if (print)
				kt__line(0, "%s.%s%s%s%s%s", kt__str(s->name), kt__str(c->name),
					 f ? " #" : "", f & KT_ABI_F_DESTRUCTIVE ? " destructive" : "",
					 f & KT_ABI_F_OPT_IN ? " opt-in" : "",
					 f & KT_ABI_F_PARAM ? " param" : "");
		}
	}
	return count;
}

static void kt__list(void)
{
	unsigned int count = kt__list_pass(false);

	kt__diag(0, "kt.list: %u tests", count);
	kt__list_pass(true);
	kt__r.sum.total = count;
	kt__r.sum.listed = true;
	kt__set_phase(KT_PHASE_LISTED);
}

void kt_run(const char *cmdline, struct kt_summary *out)
{
	kt__r = (struct kt__run){ .cmdline = cmdline ? cmdline : "" };
	kt__parse_cmdline();
	kt__prepare();
	KT_MAGIC(KT_MAGIC_READY, &kt_state);
	if (kt__r.list)
		kt__list();
	else
		kt__run_all();
	KT_MAGIC(KT_MAGIC_DONE, kt__r.sum.fail);
	if (out)
		*out = kt__r.sum;
}
