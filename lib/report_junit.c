/* report_junit.c: a report as JUnit XML, the dialect Jenkins' and GitLab's test report readers take. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

struct jout {
	const struct ks_report *r;
	FILE *f;
	int run;
	int err;        /* the first -errno met */
};

/* Writes s escaped for XML text (attr false) or a double-quoted attribute value. */
static void xml(struct jout *o, const char *s, bool attr)
{
	char *c = report_clean(s ? s : "", true);

	if (!c) {
		o->err = -ENOMEM;
		return;
	}
	for (const char *q = c; *q; q++) {
		switch (*q) {
		case '&': fputs("&amp;", o->f); break;
		case '<': fputs("&lt;", o->f); break;
		case '>': fputs("&gt;", o->f); break;
		case '"': fputs(attr ? "&quot;" : "\"", o->f); break;
		/* A parser would make spaces of these in attributes, and \n of \r\n anywhere. */
		case '\r': fputs("&#13;", o->f); break;
		case '\n': fputs(attr ? "&#10;" : "\n", o->f); break;
		case '\t': fputs(attr ? "&#9;" : "\t", o->f); break;
		default: fputc(*q, o->f); break;
		}
	}
	free(c);
}

static void xml_attr(struct jout *o, const char *name, const char *value)
{
	fprintf(o->f, " %s=\"", name);
	xml(o, value, true);
	fputc('"', o->f);
}

/* JUnit times are seconds with a decimal point, whatever the locale. */
static void xml_time(struct jout *o, long long ns)
{
	fprintf(o->f, " time=\"%lld.%06lld\"", ns / 1000000000, ns % 1000000000 / 1000);
}

static void counts_attrs(struct jout *o, const struct ks_ktap_counts *c)
{
	fprintf(o->f, " tests=\"%u\" failures=\"%u\" errors=\"%u\" skipped=\"%u\"",
		ks_ktap_counts_total(c), c->failed, c->crashed, c->skipped);
}

/*
 * The counts of the <testcase> elements under t (t included): the counted tests. They
 * differ from kunit's counts only by the failures of `not ok` parents over failing cases,
 * which kunit counts but which are no test case of their own.
 */
static void case_counts(const struct ks_ktap_test *t, struct ks_ktap_counts *c)
{
	if (t->counted)
		ks_ktap_counts_add(c, t->status);
	for (size_t i = 0; i < t->nchildren; i++)
		case_counts(t->children[i], c);
}

/* Whether a <failure> or <error> (which carries the KTAP log) is written for t. */
static bool fails(const struct ks_ktap_test *t)
{
	return t->status == KS_KTAP_FAIL || t->status == KS_KTAP_TIMEOUT ||
	       t->status == KS_KTAP_CRASHED || t->status == KS_KTAP_ERROR;
}

/* A test's own text: its console output from the run layer, else (with ktap_log) its KTAP
 * log; and its dump. */
static void system_out(struct jout *o, const struct ks_ktap_test *t,
		       const struct ks_report_extra *x, const char *indent, bool ktap_log)
{
	char *log = NULL;
	const char *out = x && x->log ? x->log : NULL;

	if (!out && ktap_log) {
		if (!(log = report_log(t, false))) {
			o->err = -ENOMEM;
			return;
		}
		out = log;
	}
	if (out && out[0]) {
		fprintf(o->f, "%s<system-out>", indent);
		xml(o, out, false);
		fprintf(o->f, "</system-out>\n");
	}
	if (x && x->dump && x->dump[0]) {
		fprintf(o->f, "%s<system-err>", indent);
		xml(o, x->dump, false);
		fprintf(o->f, "</system-err>\n");
	}
	free(log);
}

/* Whether t's <testcase> has anything inside. */
static bool has_content(const struct ks_ktap_test *t, const struct ks_report_extra *x)
{
	return t->status != KS_KTAP_PASS || t->nlog || (x && ((x->log && x->log[0]) ||
							      (x->dump && x->dump[0])));
}

/* <failure>, <error> or <skipped> for a test that did not pass. */
static void outcome(struct jout *o, const struct ks_ktap_test *t)
{
	const char *el = NULL;
	char *msg, *body;

	if (t->status == KS_KTAP_FAIL || t->status == KS_KTAP_TIMEOUT)
		el = "failure";
	else if (fails(t))
		el = "error";
	else if (t->status != KS_KTAP_SKIP && t->status != KS_KTAP_TODO)
		return;
	if (!(msg = report_message(t)) || !(body = report_log(t, true))) {
		free(msg);
		o->err = -ENOMEM;
		return;
	}
	if (!el) {
		fprintf(o->f, "      <skipped");
		xml_attr(o, "message", msg);
		fprintf(o->f, "/>\n");
	} else {
		fprintf(o->f, "      <%s", el);
		xml_attr(o, "message", msg);
		xml_attr(o, "type", ks_ktap_status_name(t->status));
		fprintf(o->f, ">");
		xml(o, body, false);
		fprintf(o->f, "</%s>\n", el);
	}
	free(msg);
	free(body);
}

static void testcase(struct jout *o, const struct ks_ktap_test *t, const char *suite)
{
	const struct ks_report_extra *x = report_extra(o->r, o->run, t, false);
	const char *name = report_name(o->r, o->run, t);
	char *cls = report_path(t->parent), num[24];

	if (!cls) {
		o->err = -ENOMEM;
		return;
	}
	/* An empty name says nothing in a test list; the number at least finds it. */
	snprintf(num, sizeof(num), "#%u", t->number);
	fprintf(o->f, "    <testcase");
	xml_attr(o, "name", name[0] ? name : num);
	xml_attr(o, "classname", cls[0] ? cls : suite);
	if (x && x->duration_ns >= 0)
		xml_time(o, x->duration_ns);
	if (!has_content(t, x)) {
		fprintf(o->f, "/>\n");
	} else {
		fprintf(o->f, ">\n");
		outcome(o, t);
		/* A <failure> or <error> already holds the KTAP log. */
		system_out(o, t, x, "      ", !fails(t));
		fprintf(o->f, "    </testcase>\n");
	}
	free(cls);
}

/* Every counted test under t (t included), in order. */
static void testcases(struct jout *o, const struct ks_ktap_test *t, const char *suite)
{
	if (t->counted)
		testcase(o, t, suite);
	for (size_t i = 0; i < t->nchildren; i++)
		testcases(o, t->children[i], suite);
}

/* The durations known under t (suite extras first), in ns. */
static long long duration(struct jout *o, const struct ks_ktap_test *t)
{
	const struct ks_report_extra *x;
	long long ns = 0;

	if (report_is_parent(t) && (x = report_extra(o->r, o->run, t, true)) && x->duration_ns >= 0)
		return x->duration_ns;
	if (t->counted && (x = report_extra(o->r, o->run, t, false)) && x->duration_ns >= 0)
		ns += x->duration_ns;
	for (size_t i = 0; i < t->nchildren; i++)
		ns += duration(o, t->children[i]);
	return ns;
}

static void properties(struct jout *o, const struct ks_ktap_test *t, const char *vm)
{
	if (!t->nattrs && !vm)
		return;
	fprintf(o->f, "    <properties>\n");
	for (size_t i = 0; i < t->nattrs; i++) {
		fprintf(o->f, "      <property");
		xml_attr(o, "name", t->attrs[i].key);
		xml_attr(o, "value", t->attrs[i].value);
		fprintf(o->f, "/>\n");
	}
	if (vm) {
		fprintf(o->f, "      <property");
		xml_attr(o, "name", "vm");
		xml_attr(o, "value", vm);
		fprintf(o->f, "/>\n");
	}
	fprintf(o->f, "    </properties>\n");
}

/* One <testsuite> for the top-level test s. */
static void testsuite(struct jout *o, const struct ks_ktap_test *s, unsigned id)
{
	const struct ks_report_extra *x = report_extra(o->r, o->run, s, true);
	const char *vm = x && x->vm ? x->vm : o->r->runs[o->run].source;
	const char *name = report_name(o->r, o->run, s);
	struct ks_ktap_counts c = { 0 };
	char num[24];

	if (!name[0]) {
		snprintf(num, sizeof(num), "#%u", s->number);
		name = num;
	}
	case_counts(s, &c);
	fprintf(o->f, "  <testsuite");
	xml_attr(o, "name", name);
	counts_attrs(o, &c);
	xml_time(o, duration(o, s));
	fprintf(o->f, " id=\"%u\"", id);
	if (vm)
		xml_attr(o, "hostname", vm);
	fprintf(o->f, ">\n");
	properties(o, s, vm);
	testcases(o, s, name);
	system_out(o, s, x, "    ", true);
	fprintf(o->f, "  </testsuite>\n");
}

/* The counted tests at the top level of a run, gathered in one suite named after it. */
static void top_cases(struct jout *o, const struct ks_ktap_test *root, unsigned id)
{
	struct ks_ktap_counts c = { 0 };
	const char *src = o->r->runs[o->run].source, *name = src ? src : root->name;
	long long ns = 0;

	for (size_t i = 0; i < root->nchildren; i++) {
		const struct ks_ktap_test *t = root->children[i];

		if (!report_is_parent(t) && t->counted) {
			ks_ktap_counts_add(&c, t->status);
			ns += duration(o, t);
		}
	}
	if (!ks_ktap_counts_total(&c))
		return;
	fprintf(o->f, "  <testsuite");
	xml_attr(o, "name", name);
	counts_attrs(o, &c);
	xml_time(o, ns);
	fprintf(o->f, " id=\"%u\"", id);
	if (src)
		xml_attr(o, "hostname", src);
	fprintf(o->f, ">\n");
	for (size_t i = 0; i < root->nchildren; i++)
		if (!report_is_parent(root->children[i]))
			testcases(o, root->children[i], name);
	fprintf(o->f, "  </testsuite>\n");
}

int ks_report_write_junit(const struct ks_report *r, FILE *f)
{
	struct jout o = { .r = r, .f = f };
	struct ks_ktap_counts c = { 0 };
	long long ns = 0;
	unsigned id = 0;

	for (size_t i = 0; i < r->nruns; i++) {
		const struct ks_ktap_test *root = ks_ktap_root(r->runs[i].p);

		o.run = (int)i;
		if (root)
			case_counts(root, &c);
		ns += root ? duration(&o, root) : 0;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites");
	xml_attr(&o, "name", r->name);
	counts_attrs(&o, &c);
	xml_time(&o, ns);
	fprintf(f, ">\n");
	for (size_t i = 0; i < r->nruns; i++) {
		const struct ks_ktap_test *root = ks_ktap_root(r->runs[i].p);

		o.run = (int)i;
		for (size_t j = 0; root && j < root->nchildren; j++)
			if (report_is_parent(root->children[j]))
				testsuite(&o, root->children[j], id++);
		if (root)
			top_cases(&o, root, id++);
	}
	fprintf(f, "</testsuites>\n");
	if (o.err)
		return o.err;
	return fflush(f) || ferror(f) ? -EIO : 0;
}
