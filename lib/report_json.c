/* report_json.c: a report as JSON: the runs, then their tests as nested suites and cases. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

/* A JSON string of s (NULL: null); jansson takes only valid UTF-8, the console gives
 * anything. */
static json_t *jstr(const char *s)
{
	char *c;
	json_t *j;

	if (!s)
		return json_null();
	if (!(c = report_clean(s, false)))
		return NULL;
	j = json_string(c);
	free(c);
	return j;
}

/* Sets key to v, taking v; a NULL v (out of memory) fails. */
static int set(json_t *obj, const char *key, json_t *v)
{
	return v && !json_object_set_new(obj, key, v) ? 0 : -ENOMEM;
}

static json_t *counts_json(const struct ks_ktap_counts *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "tests",
			 (json_int_t)ks_ktap_counts_total(c), "passed", (json_int_t)c->passed,
			 "failed", (json_int_t)c->failed, "crashed", (json_int_t)c->crashed,
			 "skipped", (json_int_t)c->skipped, "errors", (json_int_t)c->errors);
}

static json_t *attrs_json(const struct ks_ktap_test *t)
{
	json_t *a = json_object();

	for (size_t i = 0; a && i < t->nattrs; i++) {
		char *k = report_clean(t->attrs[i].key, false);

		if (!k || set(a, k, jstr(t->attrs[i].value)) < 0) {
			free(k);
			json_decref(a);
			return NULL;
		}
		free(k);
	}
	return a;
}

/* Its log lines, without the indentation they share. */
static json_t *diagnostics_json(const struct ks_ktap_test *t)
{
	size_t k = report_log_indent(t);
	json_t *a = json_array();

	for (size_t i = 0; a && i < t->nlog; i++) {
		if (json_array_append_new(a, jstr(report_dedent(t->log[i], k)))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int extra_json(json_t *o, const struct ks_report_extra *x, const char *vm)
{
	if (set(o, "duration_ns", x && x->duration_ns >= 0 ? json_integer(x->duration_ns)
							    : json_null()) < 0 ||
	    set(o, "vm", jstr(x && x->vm ? x->vm : vm)) < 0 ||
	    set(o, "log", jstr(x ? x->log : NULL)) < 0 ||
	    set(o, "dump", jstr(x ? x->dump : NULL)) < 0)
		return -ENOMEM;
	return 0;
}

/* What suites and cases both have. */
static json_t *test_json(const struct ks_report *r, int run, const struct ks_ktap_test *t)
{
	const struct ks_report_extra *x = report_extra(r, run, t, report_is_parent(t));
	json_t *o = json_object();

	if (!o || set(o, "name", jstr(report_name(r, run, t))) < 0 ||
	    set(o, "run", json_integer(run)) < 0 || set(o, "number", json_integer(t->number)) < 0 ||
	    set(o, "status", json_string(ks_ktap_status_name(t->status))) < 0 ||
	    set(o, "counted", json_boolean(t->counted)) < 0 ||
	    set(o, "directive", jstr(t->directive)) < 0 || set(o, "reason", jstr(t->reason)) < 0 ||
	    set(o, "line", json_integer((json_int_t)t->first_line)) < 0 ||
	    set(o, "result_line", t->result_line ? json_integer((json_int_t)t->result_line)
						 : json_null()) < 0 ||
	    set(o, "attributes", attrs_json(t)) < 0 ||
	    set(o, "diagnostics", diagnostics_json(t)) < 0 ||
	    extra_json(o, x, r->runs[run].source) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Adds t's children to o: those with children under "suites", the others under "cases". */
static int children_json(const struct ks_report *r, int run, const struct ks_ktap_test *t,
			 json_t *suites, json_t *cases);

static json_t *suite_json(const struct ks_report *r, int run, const struct ks_ktap_test *t)
{
	json_t *o = test_json(r, run, t), *suites, *cases;

	if (set(o, "plan", t->plan >= 0 ? json_integer(t->plan) : json_null()) < 0 ||
	    set(o, "counts", counts_json(&t->counts)) < 0 ||
	    set(o, "suites", suites = json_array()) < 0 ||
	    set(o, "cases", cases = json_array()) < 0 ||
	    children_json(r, run, t, suites, cases) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int children_json(const struct ks_report *r, int run, const struct ks_ktap_test *t,
			 json_t *suites, json_t *cases)
{
	for (size_t i = 0; i < t->nchildren; i++) {
		const struct ks_ktap_test *c = t->children[i];
		bool parent = report_is_parent(c);
		json_t *j = parent ? suite_json(r, run, c) : test_json(r, run, c);

		if (!j || json_array_append_new(parent ? suites : cases, j))
			return -ENOMEM;
	}
	return 0;
}

static json_t *errors_json(const struct ks_ktap *p)
{
	size_t n;
	const struct ks_ktap_error *e = ks_ktap_errors(p, &n);
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_object();

		if (json_array_append_new(a, o) ||
		    set(o, "line", json_integer((json_int_t)e[i].line)) < 0 ||
		    set(o, "test", jstr(e[i].test)) < 0 || set(o, "message", jstr(e[i].msg)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *run_json(const struct ks_report *r, size_t i)
{
	const struct ks_ktap *p = r->runs[i].p;
	struct ks_ktap_counts c;
	json_t *o = json_object();

	ks_ktap_counts(p, &c);
	if (!o || set(o, "source", jstr(r->runs[i].source)) < 0 ||
	    set(o, "status", json_string(ks_ktap_outcome_name(ks_ktap_outcome(p)))) < 0 ||
	    set(o, "counts", counts_json(&c)) < 0 || set(o, "errors", errors_json(p)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *ks_report_json(const struct ks_report *r)
{
	json_t *o = json_object(), *runs, *suites, *cases;
	struct ks_ktap_counts c;

	ks_report_counts(r, &c);
	/* set() takes its value even when it fails, so o owns everything from here. */
	if (set(o, "name", jstr(r->name)) < 0 ||
	    set(o, "status", json_string(ks_ktap_outcome_name(ks_report_outcome(r)))) < 0 ||
	    set(o, "counts", counts_json(&c)) < 0 || set(o, "runs", runs = json_array()) < 0 ||
	    set(o, "suites", suites = json_array()) < 0 ||
	    set(o, "cases", cases = json_array()) < 0)
		goto fail;
	for (size_t i = 0; i < r->nruns; i++) {
		const struct ks_ktap_test *root = ks_ktap_root(r->runs[i].p);

		if (json_array_append_new(runs, run_json(r, i)) ||
		    (root && children_json(r, (int)i, root, suites, cases) < 0))
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

int ks_report_write_json(const struct ks_report *r, FILE *f)
{
	json_t *j = ks_report_json(r);
	int rc;

	if (!j)
		return -ENOMEM;
	rc = json_dumpf(j, f, JSON_INDENT(2)) || fputc('\n', f) == EOF ? -EIO : 0;
	json_decref(j);
	if (!rc && (fflush(f) || ferror(f)))
		rc = -EIO;
	return rc;
}
