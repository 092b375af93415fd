/* monitor_test.c: test events, from the kt_ magic messages and the names in the kernel's kt_state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/kt_abi.h>
#include <kscope/ktstate.h>

#include "monitor_internal.h"

void mon_test_free(struct ks_monitor *m)
{
	for (size_t i = 0; i < m->nsuites; i++) {
		for (size_t j = 0; j < m->suites[i].ncases; j++)
			free(m->suites[i].cases[j]);
		free(m->suites[i].cases);
		free(m->suites[i].name);
	}
	free(m->suites);
	m->suites = NULL;
	m->nsuites = 0;
	m->tests_loaded = false;
}

/* Keeps the suite and case names of a snapshot; the rest changes as tests run. */
static int keep_names(struct ks_monitor *m, const struct ks_kt_state *st)
{
	m->suites = calloc(st->nsuites ? st->nsuites : 1, sizeof(*m->suites));
	if (!m->suites)
		return -1;
	m->nsuites = st->nsuites;
	for (size_t i = 0; i < st->nsuites; i++) {
		const struct ks_kt_suite *s = &st->suites[i];
		struct mon_suite *d = &m->suites[i];

		d->name = strdup(s->name ? s->name : "");
		d->cases = calloc(s->ncases ? s->ncases : 1, sizeof(char *));
		if (!d->name || !d->cases)
			return -1;
		d->ncases = s->ncases;
		for (size_t j = 0; j < s->ncases; j++)
			if (!(d->cases[j] = strdup(s->cases[j].name ? s->cases[j].name : "")))
				return -1;
	}
	return 0;
}

/* Reads the names once, from the state at va in the address space of regs. */
static void load_names(struct ks_monitor *m, ks_gva_t va, const struct ks_x86_regs *regs)
{
	struct ks_error e = { 0 };
	struct ks_kt_state *st;
	void *ctx;
	ks_read_gva_fn rd = mon_reader(m, regs, &ctx);

	mon_test_free(m);
	m->tests_loaded = true;
	if (!(st = ks_kt_state_read(rd, ctx, va, &e))) {
		mon_warn(m, "test names: kt_state at 0x%llx: %s", (unsigned long long)va, e.msg);
		return;
	}
	if (keep_names(m, st) < 0) {
		mon_test_free(m);
		m->tests_loaded = true;
		mon_warn(m, "test names: out of memory");
	}
	ks_kt_state_free(st);
}

static void test_event(struct ks_monitor *m, enum ks_event_test_phase phase, int vcpu,
		       int suite, int kcase, uint32_t status, uint64_t ts)
{
	struct ks_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = KS_EV_TEST;
	ev.vcpu = vcpu;
	ev.test.phase = phase;
	ev.test.suite_index = suite;
	ev.test.case_index = kcase;
	ev.test.status = status;
	if (suite >= 0 && (size_t)suite < m->nsuites) {
		const struct mon_suite *s = &m->suites[suite];

		snprintf(ev.test.suite, sizeof(ev.test.suite), "%s", s->name);
		if (kcase >= 0 && (size_t)kcase < s->ncases)
			snprintf(ev.test.name, sizeof(ev.test.name), "%s", s->cases[kcase]);
	}
	mon_emit(m, &ev, ts);
}

void mon_test_magic(struct ks_monitor *m, const struct ks_event *magic,
		    const struct ks_x86_regs *regs)
{
	uint64_t ts = m->t0 + magic->ts_ns;
	int suite = (int)(magic->magic.a0 >> 32), kcase = (int)(uint32_t)magic->magic.a0;
	const struct ks_sym *state;

	if (!m->want.test)
		return;
	switch (magic->magic.id) {
	case KT_MAGIC_READY:
		load_names(m, magic->magic.a0, regs);
		break;
	case KT_MAGIC_CASE_START:
		/* Attached after READY: the symbol says where the state is. */
		if (!m->tests_loaded && m->syms && (state = ks_sym_find(m->syms, "kt_state")))
			load_names(m, state->addr, regs);
		m->case_running = true;
		m->cur_suite = suite;
		m->cur_case = kcase;
		m->cur_vcpu = magic->vcpu;
		test_event(m, KS_EV_TEST_START, magic->vcpu, suite, kcase, KT_ST_RUNNING, ts);
		break;
	case KT_MAGIC_CASE_END:
		m->case_running = false;
		test_event(m, KS_EV_TEST_END, magic->vcpu, suite, kcase,
			   (uint32_t)magic->magic.a1, ts);
		break;
	case KT_MAGIC_PANIC:
		mon_test_crash(m, ts);
		break;
	default:
		break;
	}
}

void mon_test_crash(struct ks_monitor *m, uint64_t ts)
{
	if (!m->case_running)
		return;
	m->case_running = false;
	/* An end that is still "running" is a crash. */
	test_event(m, KS_EV_TEST_END, m->cur_vcpu, m->cur_suite, m->cur_case, KT_ST_RUNNING, ts);
}
