/* report_ktap.c: a report as one merged KTAP version 1 document that parses back to the same counts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

#define INDENT 4

/* Labels from the run layer may hold line breaks; a KTAP line cannot. */
static char *one_line(const char *s)
{
	char *c = report_clean(s, true);

	for (char *q = c; q && *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
	return c;
}

struct kout {
	const struct ks_report *r;
	FILE *f;
	int run;
};

static int emit_test(struct kout *o, const struct ks_ktap_test *t, unsigned num, unsigned ind);

/* A log line as a diagnostic: "#" lines as they are, other output behind "# ". */
static int emit_log_line(struct kout *o, const char *line, unsigned ind)
{
	char *c = report_clean(line, true);
	const char *s;

	if (!c)
		return -ENOMEM;
	for (s = c; *s == ' ' || *s == '\t'; s++)
		;
	if (*s == '#')
		fprintf(o->f, "%*s%s\n", ind, "", s);
	else if (!*s)
		fprintf(o->f, "%*s#\n", ind, "");
	else
		/* "# " in front of "Subtest:" would make a subtest header of plain output. */
		fprintf(o->f, "%*s#%s%s\n", ind, "", strncmp(c, "Subtest:", 8) ? " " : "  ", c);
	free(c);
	return 0;
}

static int emit_log(struct kout *o, const struct ks_ktap_test *t, unsigned ind, bool skip_attrs)
{
	size_t k = report_log_indent(t);

	for (size_t i = 0; i < t->nlog; i++) {
		const char *s = t->log[i];

		if (skip_attrs && report_is_attr_line(t, s))
			continue;
		if (emit_log_line(o, report_dedent(s, k), ind) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* "# vm: name" for a top-level test whose VM is known and not already an attribute. */
static int emit_vm(struct kout *o, const struct ks_ktap_test *t, unsigned ind)
{
	const struct ks_report_extra *x = report_extra(o->r, o->run, t, report_is_parent(t));
	const char *vm = x && x->vm ? x->vm : o->r->runs[o->run].source;
	char *c;

	if (t->depth != 1 || !vm || ks_ktap_attr(t, "vm") || strstr(vm, ": "))
		return 0;
	if (!(c = one_line(vm)))
		return -ENOMEM;
	fprintf(o->f, "%*s# vm: %s\n", ind, "", c);
	free(c);
	return 0;
}

/* The result line; a result that never came is written as ERROR, which counts as crashed. */
static int emit_result(struct kout *o, const struct ks_ktap_test *t, unsigned num, unsigned ind)
{
	const char *ok = "ok", *dir = NULL, *reason = t->reason;
	char *name, *why;

	switch (t->status) {
	case KS_KTAP_PASS:
	case KS_KTAP_NO_TESTS:
		reason = "";
		break;
	case KS_KTAP_FAIL:
		ok = "not ok";
		reason = "";
		break;
	case KS_KTAP_SKIP:
		dir = "SKIP";
		break;
	case KS_KTAP_TODO:
		ok = "not ok";
		dir = "TODO";
		break;
	case KS_KTAP_XFAIL:
		ok = t->ok ? "ok" : "not ok";
		dir = "XFAIL";
		break;
	case KS_KTAP_TIMEOUT:
		ok = "not ok";
		dir = "TIMEOUT";
		break;
	case KS_KTAP_ERROR:
		ok = "not ok";
		dir = "ERROR";
		break;
	case KS_KTAP_CRASHED:
		ok = "not ok";
		dir = "ERROR";
		if (!reason[0])
			reason = t->has_result ? "crashed" : "crashed: its result never came";
		break;
	}
	name = report_clean(report_name(o->r, o->run, t), true);
	why = report_clean(reason, true);
	if (name && why) {
		fprintf(o->f, "%*s%s %u%s%s%s", ind, "", ok, num, name[0] ? " " : "",
			strncmp(name, "- ", 2) ? "" : "- ", name);
		if (dir)
			fprintf(o->f, " # %s%s%s", dir, why[0] ? " " : "", why);
		fputc('\n', o->f);
	}
	free(name);
	free(why);
	return name && why ? 0 : -ENOMEM;
}

static int emit_parent(struct kout *o, const struct ks_ktap_test *t, unsigned num, unsigned ind)
{
	unsigned ci = ind + INDENT;
	char *name = report_clean(report_name(o->r, o->run, t), true);

	if (!name)
		return -ENOMEM;
	fprintf(o->f, "%*sKTAP version 1\n", ci, "");
	if (name[0])
		fprintf(o->f, "%*s# Subtest: %s\n", ci, "", name);
	free(name);
	for (size_t i = 0; i < t->nattrs; i++) {
		char *v = one_line(t->attrs[i].value);

		if (!v)
			return -ENOMEM;
		fprintf(o->f, "%*s# %s: %s\n", ci, "", t->attrs[i].key, v);
		free(v);
	}
	if (emit_vm(o, t, ci) < 0)
		return -ENOMEM;
	fprintf(o->f, "%*s1..%zu\n", ci, "", t->nchildren);
	for (size_t i = 0; i < t->nchildren; i++)
		if (emit_test(o, t->children[i], (unsigned)i + 1, ci) < 0)
			return -ENOMEM;
	/* Its other output goes after its children, where it stays out of its attributes. */
	if (emit_log(o, t, ci, true) < 0)
		return -ENOMEM;
	return emit_result(o, t, num, ind);
}

static int emit_test(struct kout *o, const struct ks_ktap_test *t, unsigned num, unsigned ind)
{
	if (report_is_parent(t))
		return emit_parent(o, t, num, ind);
	/* A case's attributes are lines of its log: they go back where they were. */
	if (emit_log(o, t, ind, false) < 0 || emit_vm(o, t, ind) < 0)
		return -ENOMEM;
	return emit_result(o, t, num, ind);
}

int ks_report_write_ktap(const struct ks_report *r, FILE *f)
{
	struct kout o = { .r = r, .f = f };
	size_t total = 0;
	unsigned num = 0;

	fprintf(f, "KTAP version 1\n");
	for (size_t i = 0; i < r->nruns; i++) {
		const struct ks_ktap_test *root = ks_ktap_root(r->runs[i].p);
		char *src;

		if (root) {
			total += root->nchildren;
			continue;
		}
		if (!(src = one_line(r->runs[i].source ? r->runs[i].source : "")))
			return -ENOMEM;
		fprintf(f, "# run %zu%s%s: no KTAP output\n", i, src[0] ? " on " : "", src);
		free(src);
	}
	fprintf(f, "1..%zu\n", total);
	for (size_t i = 0; i < r->nruns; i++) {
		const struct ks_ktap_test *root = ks_ktap_root(r->runs[i].p);

		o.run = (int)i;
		for (size_t j = 0; root && j < root->nchildren; j++)
			if (emit_test(&o, root->children[j], ++num, 0) < 0)
				return -ENOMEM;
	}
	if (fflush(f) || ferror(f))
		return -EIO;
	return 0;
}
