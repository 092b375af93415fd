/* run_display.c: `kscope run` on screen: the live block, plain progress lines, failures and totals. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/ktap.h>

#include "run_display.h"

#define MAX_VMS 64
#define SEC 1000000000ll

struct vm_now {
	bool busy;
	size_t test;           /* running now, or (size_t)-1 */
	uint64_t since_ns;
	char pass[32];         /* what its pass runs ("12 tests"), "" while it boots */
};

struct run_display {
	FILE *out;
	bool live;
	char *title;
	const struct ks_run *run;
	unsigned block;        /* lines of the live block on screen */
	size_t counts[RUN_NSTATUS];
	size_t done, total;            /* tests */
	size_t suites_done, suites;
	uint64_t elapsed_ns;
	struct vm_now vms[MAX_VMS + 1];
};

/* ---- formatting ---- */

char *run_fmt_duration(int64_t ns, char *buf, size_t size)
{
	if (ns < 0)
		snprintf(buf, size, "-");
	else if (ns < 10000000)
		snprintf(buf, size, "%.1f ms", ns / 1e6);
	else if (ns < SEC)
		snprintf(buf, size, "%lld ms", (long long)(ns / 1000000));
	else if (ns < 60 * SEC)
		snprintf(buf, size, "%.2f s", ns / 1e9);
	else
		snprintf(buf, size, "%lld min %lld s", (long long)(ns / (60 * SEC)),
			 (long long)(ns / SEC % 60));
	return buf;
}

char *run_fmt_bar(size_t done, size_t total, unsigned width, char *buf, size_t size)
{
	unsigned full = total ? (unsigned)((done > total ? total : done) * width / total) : 0;

	if (size < width + 3) {
		if (size)
			buf[0] = 0;
		return buf;
	}
	buf[0] = '[';
	for (unsigned i = 0; i < width; i++)
		buf[1 + i] = i < full ? '#' : '.';
	buf[width + 1] = ']';
	buf[width + 2] = 0;
	return buf;
}

char *run_fmt_counts(const size_t c[RUN_NSTATUS], char *buf, size_t size)
{
	static const struct { enum ks_run_status s; const char *word; } order[] = {
		{ KS_RUN_PASS, "passed" }, { KS_RUN_FAIL, "failed" },
		{ KS_RUN_TIMEOUT, "timed out" }, { KS_RUN_CRASHED, "crashed" },
		{ KS_RUN_SKIP, "skipped" }, { KS_RUN_NOTRUN, "not run" },
	};
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!c[order[i].s] || len >= size)
			continue;
		len += (size_t)snprintf(buf + len, size - len, "%s%zu %s", len ? ", " : "",
					c[order[i].s], order[i].word);
	}
	if (!buf[0])
		snprintf(buf, size, "no tests");
	return buf;
}

char *run_fmt_suite(const char *suite, const size_t c[RUN_NSTATUS], unsigned round,
		    unsigned rounds, char *buf, size_t size)
{
	char counts[160], r[40] = "";
	size_t n = 0;
	bool failed = c[KS_RUN_FAIL] || c[KS_RUN_TIMEOUT] || c[KS_RUN_CRASHED] || c[KS_RUN_NOTRUN];

	for (int i = 0; i < RUN_NSTATUS; i++)
		n += c[i];
	if (rounds > 1)
		snprintf(r, sizeof(r), " (round %u of %u)", round + 1, rounds);
	snprintf(buf, size, "%-7s %-24s %s%s", failed ? "FAILED" : n && c[KS_RUN_SKIP] == n
		 ? "SKIPPED" : "ok", suite, run_fmt_counts(c, counts, sizeof(counts)), r);
	return buf;
}

/* ---- the live block ---- */

struct run_display *run_display_new(FILE *out, bool live, const char *title)
{
	struct run_display *d = calloc(1, sizeof(*d));

	if (!d || !(d->title = strdup(title ? title : ""))) {
		free(d);
		return NULL;
	}
	d->out = out;
	d->live = live;
	for (int i = 0; i <= MAX_VMS; i++)
		d->vms[i].test = (size_t)-1;
	return d;
}

void run_display_free(struct run_display *d)
{
	if (!d)
		return;
	free(d->title);
	free(d);
}

void run_display_attach(struct run_display *d, const struct ks_run *r)
{
	d->run = r;
}

void run_display_end(struct run_display *d)
{
	if (d->live && d->block) {
		/* Up to the block's first line, then clear to the end of the screen. */
		fprintf(d->out, "\r\033[%uA\033[J", d->block);
		d->block = 0;
	}
	fflush(d->out);
}

static void draw(struct run_display *d)
{
	char bar[48], t[32], counts[200];

	if (!d->live)
		return;
	run_display_end(d);
	run_fmt_counts(d->counts, counts, sizeof(counts));
	fprintf(d->out, "%8s %s %zu/%zu tests, %zu/%zu suites  %s\n",
		run_fmt_duration((int64_t)d->elapsed_ns, t, sizeof(t)),
		run_fmt_bar(d->done, d->total, 30, bar, sizeof(bar)), d->done, d->total,
		d->suites_done, d->suites, d->done ? counts : "");
	d->block = 1;
	for (unsigned i = 1; i <= MAX_VMS; i++) {
		const struct ks_run_test *x;

		if (!d->vms[i].busy)
			continue;
		x = d->vms[i].test != (size_t)-1 ? ks_run_test(d->run, d->vms[i].test) : NULL;
		if (x)
			fprintf(d->out, "  vm%-3u %s.%s  (%s)\n", i, x->suite, x->name,
				run_fmt_duration((int64_t)(d->elapsed_ns - d->vms[i].since_ns), t,
						 sizeof(t)));
		else if (d->vms[i].pass[0])
			fprintf(d->out, "  vm%-3u running %s\n", i, d->vms[i].pass);
		else
			fprintf(d->out, "  vm%-3u booting\n", i);
		d->block++;
	}
	fflush(d->out);
}

/* A line that stays: above the live block, or plain with the time in front. */
__attribute__((format(printf, 2, 3)))
static void line(struct run_display *d, const char *fmt, ...)
{
	char t[32];
	va_list ap;

	run_display_end(d);
	fprintf(d->out, "[%8s] ", run_fmt_duration((int64_t)d->elapsed_ns, t, sizeof(t)));
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
	draw(d);
}

/* ---- events ---- */

static void on_plan(struct run_display *d)
{
	struct ks_run_summary s;

	ks_run_summary(d->run, &s);
	d->total = s.tests * s.rounds;
	d->suites = ks_run_nsuites(d->run) * s.rounds;

	char rounds[32] = "";

	if (s.rounds > 1)
		snprintf(rounds, sizeof(rounds), ", %u rounds", s.rounds);
	line(d, "%s: %zu test%s in %zu suite%s%s", d->title, s.tests, s.tests == 1 ? "" : "s",
	     ks_run_nsuites(d->run), ks_run_nsuites(d->run) == 1 ? "" : "s", rounds);
}

static void on_suite(struct run_display *d, const struct ks_run_event *ev)
{
	const struct ks_run_suite *su = ks_run_suite(d->run, ev->suite);
	size_t c[RUN_NSTATUS] = { 0 };
	struct ks_run_summary s;
	char buf[300];

	if (!su)
		return;
	d->suites_done++;
	if (d->suites < d->suites_done)
		d->suites = d->suites_done;
	ks_run_summary(d->run, &s);
	for (size_t i = 0; i < su->n; i++) {
		const struct ks_run_result *res = ks_run_result(d->run, ev->round, su->first + i);

		if (res)
			c[res->status]++;
	}
	line(d, "%s", run_fmt_suite(su->name, c, ev->round, s.rounds, buf, sizeof(buf)));
}

static void on_test_end(struct run_display *d, const struct ks_run_event *ev)
{
	const struct ks_run_test *t = ks_run_test(d->run, ev->test);

	d->counts[ev->status]++;
	d->done++;
	if (d->total < d->done)
		d->total = d->done;
	if (ev->vm && ev->vm <= MAX_VMS && d->vms[ev->vm].test == ev->test)
		d->vms[ev->vm].test = (size_t)-1;
	if (t && (ev->status == KS_RUN_FAIL || ev->status == KS_RUN_TIMEOUT ||
		  ev->status == KS_RUN_CRASHED))
		line(d, "  %-7s %s.%s%s%s", ks_run_status_name(ev->status), t->suite, t->name,
		     ev->text ? ": " : "", ev->text ? ev->text : "");
}

void run_display_event(const struct ks_run_event *ev, void *data)
{
	struct run_display *d = data;
	struct vm_now *v = ev->vm && ev->vm <= MAX_VMS ? &d->vms[ev->vm] : NULL;

	d->elapsed_ns = ev->elapsed_ns;
	switch (ev->kind) {
	case KS_RUN_EV_PLAN:
		on_plan(d);
		break;
	case KS_RUN_EV_VM_START:
		if (v)
			*v = (struct vm_now){ true, (size_t)-1, ev->elapsed_ns, "" };
		draw(d);
		break;
	case KS_RUN_EV_PASS:
		if (v)
			snprintf(v->pass, sizeof(v->pass), "%s", ev->text ? ev->text : "");
		break;
	case KS_RUN_EV_TEST_START:
		if (v) {
			v->test = ev->test;
			v->since_ns = ev->elapsed_ns;
		}
		break;
	case KS_RUN_EV_TEST_END:
		on_test_end(d, ev);
		break;
	case KS_RUN_EV_SUITE_END:
		on_suite(d, ev);
		break;
	case KS_RUN_EV_VM_END:
		if (v)
			v->busy = false;
		draw(d);
		break;
	case KS_RUN_EV_NOTE:
		line(d, "%s", ev->text);
		break;
	case KS_RUN_EV_TICK:
		draw(d);
		break;
	}
}

/* ---- the summary ---- */

static void indented(FILE *f, const char *text, const char *pad, size_t max_lines)
{
	size_t n = 0;

	for (const char *l = text; l && *l && n < max_lines; n++) {
		const char *nl = strchr(l, '\n');
		int len = nl ? (int)(nl - l) : (int)strlen(l);

		fprintf(f, "%s%.*s\n", pad, len, l);
		l = nl ? nl + 1 : l + len;
	}
	if (n == max_lines)
		fprintf(f, "%s...\n", pad);
}

static void failure(struct run_display *d, const struct ks_run_test *t,
		    const struct ks_run_result *res, unsigned round, unsigned rounds)
{
	char dur[32], where[64] = "", r[32] = "";

	if (res->vm)
		snprintf(where, sizeof(where), "vm%u, ", res->vm);
	if (rounds > 1)
		snprintf(r, sizeof(r), ", round %u", round + 1);
	fprintf(d->out, "%-8s %s.%s  (%s%s%s)\n", ks_run_status_name(res->status), t->suite,
		t->name, where, run_fmt_duration(res->duration_ns, dur, sizeof(dur)), r);
	if (res->reason)
		fprintf(d->out, "    why: %s\n", res->reason);
	if (res->fail_at && (!res->reason || !strstr(res->reason, res->fail_at)))
		fprintf(d->out, "    at:  %s\n", res->fail_at);
	if (res->from_state)
		fprintf(d->out, "    (no KTAP result on the console: taken from kt_state)\n");
	indented(d->out, res->diag, "    ", 24);
	if (res->dump) {
		fprintf(d->out, "    dump:\n");
		indented(d->out, res->dump, "      ", 400);
	}
}

/* Tests that never ran are many lines of one cause: one line says it. */
static void not_run(struct run_display *d, const struct ks_run *r, unsigned rounds)
{
	size_t n = 0;
	const char *why = NULL;

	for (unsigned k = 0; k < rounds; k++)
		for (size_t i = 0; i < ks_run_ntests(r); i++) {
			const struct ks_run_result *res = ks_run_result(r, k, i);

			if (res && res->status == KS_RUN_NOTRUN) {
				why = why ? why : res->reason;
				n++;
			}
		}
	if (n)
		fprintf(d->out, "NOT RUN  %zu test%s: %s\n", n, n == 1 ? "" : "s",
			why ? why : "the run ended first");
}

static void flaky(struct run_display *d, const struct ks_run *r, unsigned rounds)
{
	for (size_t i = 0; i < ks_run_ntests(r); i++) {
		const struct ks_run_test *t = ks_run_test(r, i);
		unsigned pass = 0;

		if (!ks_run_flaky(r, i))
			continue;
		for (unsigned k = 0; k < rounds; k++)
			pass += ks_run_result(r, k, i)->status == KS_RUN_PASS;
		fprintf(d->out, "FLAKY    %s.%s: passed %u of %u rounds\n", t->suite, t->name, pass,
			rounds);
	}
}

void run_display_summary(struct run_display *d, const struct ks_run *r)
{
	struct ks_run_summary s;
	struct ks_ktap_counts kc;
	char buf[256], t[32];
	size_t c[RUN_NSTATUS];

	run_display_end(d);
	ks_run_summary(r, &s);
	for (unsigned k = 0; k < s.rounds; k++)
		for (size_t i = 0; i < s.tests; i++) {
			const struct ks_run_result *res = ks_run_result(r, k, i);

			if (res->status == KS_RUN_FAIL || res->status == KS_RUN_TIMEOUT ||
			    res->status == KS_RUN_CRASHED)
				failure(d, ks_run_test(r, i), res, k, s.rounds);
		}
	not_run(d, r, s.rounds);
	flaky(d, r, s.rounds);
	/* kunit's words: a timeout is a failure, a test that never ran a crash. */
	kc = (struct ks_ktap_counts){ s.pass, s.fail + s.timeout, s.crashed + s.notrun, s.skip, 0 };
	ks_ktap_summary(&kc, buf, sizeof(buf));
	fprintf(d->out, "%s\n", buf);
	c[KS_RUN_NOTRUN] = s.notrun, c[KS_RUN_PASS] = s.pass, c[KS_RUN_FAIL] = s.fail;
	c[KS_RUN_SKIP] = s.skip, c[KS_RUN_TIMEOUT] = s.timeout, c[KS_RUN_CRASHED] = s.crashed;
	fprintf(d->out, "kscope run: %s in %s: %s", s.fail + s.timeout + s.crashed + s.notrun
		? "FAILED" : "PASSED", run_fmt_duration((int64_t)s.elapsed_ns, t, sizeof(t)),
		run_fmt_counts(c, buf, sizeof(buf)));
	fprintf(d->out, " (%u VM%s, %u boot%s, %u restore%s%s)\n", s.vms, s.vms == 1 ? "" : "s",
		s.boots, s.boots == 1 ? "" : "s", s.restores, s.restores == 1 ? "" : "s",
		s.kt ? "" : "; followed KTAP alone, without kt_state");
	if (s.flaky)
		fprintf(d->out, "kscope run: %zu flaky test%s\n", s.flaky, s.flaky == 1 ? "" : "s");
	fflush(d->out);
}
