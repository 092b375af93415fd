/* run_report.c: a run's results as reports: KTAP made from the merged results, then report.h's KTAP, JUnit, JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/kt_abi.h>

#include "report_internal.h"
#include "run_internal.h"

/* One line of text for KTAP: control bytes become '?', newlines blanks. */
static void put_clean(FILE *f, const char *s)
{
	for (; s && *s; s++)
		fputc(*s == '\n' || *s == '\r' ? ' ' : (unsigned char)*s < 0x20 && *s != '\t' ? '?'
		      : *s, f);
}

static bool bad(enum ks_run_status s)
{
	return s == KS_RUN_FAIL || s == KS_RUN_TIMEOUT || s == KS_RUN_CRASHED ||
	       s == KS_RUN_NOTRUN;
}

/* "ok 3 name # SKIP why" and the others; a crash is an ERROR, as report.h writes it. */
static void result_line(FILE *f, int indent, size_t num, const char *name,
			const struct run_result *res)
{
	static const char *const dir[] = { "ERROR", "", "", "SKIP", "TIMEOUT", "ERROR" };
	const char *why = res->reason ? res->reason : "";

	fprintf(f, "%*s%sok %zu ", indent, "", bad(res->status) ? "not " : "", num);
	put_clean(f, name);
	if (dir[res->status][0]) {
		fprintf(f, " # %s", dir[res->status]);
		if (res->status == KS_RUN_CRASHED)
			fprintf(f, " crashed:");
		else if (res->status == KS_RUN_NOTRUN && strncmp(why, "not run", 7))
			fprintf(f, " not run:");
		if (why[0])
			fputc(' ', f);
		put_clean(f, why);
	}
	fputc('\n', f);
}

static void suite_text(FILE *f, const struct ks_run *r, unsigned round, size_t s, size_t num)
{
	const struct run_suite *su = &r->plan.suites[s];
	bool failed = false, skipped = true;

	fprintf(f, "    KTAP version 1\n    # Subtest: ");
	put_clean(f, su->name);
	fprintf(f, "\n    1..%zu\n", su->n);
	for (size_t j = 0; j < su->n; j++) {
		const struct run_result *res = &r->results[round][su->first + j];

		for (size_t k = 0; k < res->ndiag; k++) {
			fprintf(f, "    ");
			put_clean(f, res->diag[k]);
			fputc('\n', f);
		}
		result_line(f, 4, j + 1, r->plan.tests[su->first + j].name, res);
		failed |= bad(res->status);
		skipped &= res->status == KS_RUN_SKIP;
	}
	fprintf(f, "%sok %zu ", failed ? "not " : "", num);
	put_clean(f, su->name);
	fprintf(f, "%s\n", !failed && skipped && su->n ? " # SKIP" : "");
}

int run_report_ktap_text(const struct ks_run *r, unsigned round, char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "KTAP version 1\n1..%zu\n", r->plan.nsuites);
	for (size_t s = 0; s < r->plan.nsuites; s++)
		suite_text(f, r, round, s, s + 1);
	return fclose(f) ? -ENOMEM : 0;
}

/* ---- the report ---- */

static int add_extras(struct ks_run *r, int run, unsigned round)
{
	for (size_t i = 0; i < r->results_n; i++) {
		const struct run_result *res = &r->results[round][i];
		struct ks_report_extra x = KS_REPORT_EXTRA_INIT;
		char vm[16];
		int rc;

		snprintf(vm, sizeof(vm), "vm%u", res->vm);
		x.duration_ns = res->duration_ns;
		x.log = res->output;
		x.dump = res->dump;
		x.vm = res->vm ? vm : NULL;
		if ((rc = ks_report_set_extra(r->report, run, r->plan.tests[i].suite,
					      r->plan.tests[i].name, &x)) < 0)
			return rc;
		const struct run_suite *su = &r->plan.suites[r->plan.tests[i].suite_idx];
		struct ks_report_extra sx = KS_REPORT_EXTRA_INIT;

		sx.vm = x.vm;
		if (su->first == i && (rc = ks_report_set_extra(r->report, run, su->name, NULL,
								 &sx)) < 0)
			return rc;
	}
	return 0;
}

static int build(struct ks_run *r)
{
	if (r->report)
		return 0;
	if (!(r->report = ks_report_new("kscope run")) ||
	    !(r->ktaps = calloc(r->o.repeat, sizeof(*r->ktaps))))
		return -ENOMEM;
	for (unsigned k = 0; k < r->o.repeat; k++) {
		char *text = NULL, source[32];
		size_t len = 0;
		int run, rc;

		if ((rc = run_report_ktap_text(r, k, &text, &len)) < 0)
			return rc;
		r->ktaps[k] = ks_ktap_parse_buf(text, len);
		free(text);
		if (!r->ktaps[k])
			return -ENOMEM;
		snprintf(source, sizeof(source), r->o.repeat > 1 ? "round %u" : "kscope run", k + 1);
		if ((run = ks_report_add(r->report, r->ktaps[k], source)) < 0)
			return run;
		if ((rc = add_extras(r, run, k)) < 0)
			return rc;
	}
	return 0;
}

void run_report_free(struct ks_run *r)
{
	ks_report_free(r->report);
	for (unsigned k = 0; r->ktaps && k < r->o.repeat; k++)
		ks_ktap_free(r->ktaps[k]);
	free(r->ktaps);
	r->report = NULL;
	r->ktaps = NULL;
}

int ks_run_write_ktap(const struct ks_run *r, FILE *f)
{
	int rc = build((struct ks_run *)r);

	return rc < 0 ? rc : ks_report_write_ktap(r->report, f);
}

int ks_run_write_junit(const struct ks_run *r, FILE *f)
{
	int rc = build((struct ks_run *)r);

	return rc < 0 ? rc : ks_report_write_junit(r->report, f);
}

/* ---- JSON ---- */

static const char *source(const struct run_result *res)
{
	if (res->status == KS_RUN_NOTRUN)
		return "none";
	if (res->status == KS_RUN_CRASHED || res->status == KS_RUN_TIMEOUT)
		return res->ndiag ? "run+ktap" : "run";
	return res->from_state ? "kt_state" : "ktap";
}

/* A JSON string of console text, which need not be UTF-8 (NULL: null). */
static json_t *jtext(const char *s)
{
	char *c = s ? report_clean(s, false) : NULL;
	json_t *j = c ? json_string(c) : json_null();

	free(c);
	return j;
}

static json_t *result_json(const struct ks_run *r, unsigned k, const struct run_result *res)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:I}", "round", (int)k + 1, "status",
			      ks_run_status_name(res->status), "source", source(res),
			      "duration_ns", (json_int_t)res->duration_ns);

	(void)r;
	if (o && res->reason)
		json_object_set_new(o, "reason", jtext(res->reason));
	if (o && res->fail_at)
		json_object_set_new(o, "fail_at", jtext(res->fail_at));
	if (o && res->vm)
		json_object_set_new(o, "vm", json_sprintf("vm%u", res->vm));
	return o;
}

static json_t *flags_json(uint32_t f)
{
	json_t *a = json_array();

	if (f & KT_ABI_F_DESTRUCTIVE)
		json_array_append_new(a, json_string("destructive"));
	if (f & KT_ABI_F_PARAM)
		json_array_append_new(a, json_string("param"));
	if (f & KT_ABI_F_OPT_IN)
		json_array_append_new(a, json_string("opt-in"));
	return a;
}

static json_t *run_json(const struct ks_run *r)
{
	struct ks_run_summary s;
	json_t *tests = json_array(), *flaky = json_array(), *logs = json_array();

	ks_run_summary(r, &s);
	for (size_t i = 0; i < r->results_n; i++) {
		json_t *res = json_array();

		for (unsigned k = 0; k < r->o.repeat; k++)
			json_array_append_new(res, result_json(r, k, &r->results[k][i]));
		json_array_append_new(tests, json_pack("{s:o, s:o, s:o, s:b, s:o}", "suite",
						       jtext(r->plan.tests[i].suite), "case",
						       jtext(r->plan.tests[i].name), "flags",
						       flags_json(r->plan.tests[i].flags), "flaky",
						       ks_run_flaky(r, i), "results", res));
		if (ks_run_flaky(r, i))
			json_array_append_new(flaky, json_sprintf("%s.%s", r->plan.tests[i].suite,
								  r->plan.tests[i].name));
	}
	for (unsigned i = 1; ks_run_log_path(r, i); i++)
		json_array_append_new(logs, json_string(ks_run_log_path(r, i)));
	return json_pack("{s:i, s:i, s:b, s:I, s:i, s:i, s:b, s:b, s:I, s:o, s:o, s:o}", "rounds",
			 (int)s.rounds, "jobs", (int)r->o.jobs, "shuffle", r->o.shuffle, "seed",
			 (json_int_t)s.seed, "boots", (int)s.boots, "restores", (int)s.restores,
			 "kt", s.kt, "from_state", s.from_state, "elapsed_ns",
			 (json_int_t)s.elapsed_ns, "console_logs", logs, "flaky", flaky, "tests",
			 tests);
}

/* The report's cases say ERROR for a crash, as KTAP must; here they get the run's word. */
static void case_status(const struct ks_run *r, json_t *suites)
{
	size_t i, j;
	json_t *su, *c;

	json_array_foreach(suites, i, su) {
		const char *sname = json_string_value(json_object_get(su, "name"));
		json_int_t run = json_integer_value(json_object_get(su, "run"));

		json_array_foreach(json_object_get(su, "cases"), j, c) {
			const char *cname = json_string_value(json_object_get(c, "name"));
			size_t t = sname && cname ? run_plan_find(&r->plan, sname, cname) : RUN_NONE;
			const struct run_result *res;

			if (t == RUN_NONE || run < 0 || run >= (json_int_t)r->o.repeat)
				continue;
			res = &r->results[run][t];
			json_object_set_new(c, "status", json_string(ks_run_status_name(res->status)));
			json_object_set_new(c, "source", json_string(source(res)));
			if (res->fail_at)
				json_object_set_new(c, "fail_at", jtext(res->fail_at));
		}
		case_status(r, json_object_get(su, "suites"));
	}
}

int ks_run_write_json(const struct ks_run *r, FILE *f)
{
	int rc = build((struct ks_run *)r);
	json_t *o;

	if (rc < 0)
		return rc;
	if (!(o = ks_report_json(r->report)))
		return -ENOMEM;
	case_status(r, json_object_get(o, "suites"));
	json_object_set_new(o, "kscope_run", run_json(r));
	rc = json_dumpf(o, f, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0 || fputc('\n', f) == EOF
	     ? -EIO : 0;
	json_decref(o);
	return rc;
}
