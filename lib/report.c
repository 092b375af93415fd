/* report.c: a report's runs and extras, and the text helpers its KTAP, JUnit and JSON writers share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static int grow(void *arrp, size_t *cap, size_t need, size_t elem)
{
	void **arr = arrp;
	size_t ncap = *cap ? *cap : 8;
	void *v;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if (!(v = realloc(*arr, ncap * elem)))
		return -ENOMEM;
	*arr = v;
	*cap = ncap;
	return 0;
}

/* ---- runs and extras ---- */

struct ks_report *ks_report_new(const char *name)
{
	struct ks_report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (!(r->name = strdup(name ? name : "kscope"))) {
		free(r);
		return NULL;
	}
	return r;
}

static void extra_clear(struct ks_report_extra *x)
{
	free((char *)x->log);
	free((char *)x->dump);
	free((char *)x->vm);
	free((char *)x->name);
}

void ks_report_free(struct ks_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nruns; i++)
		free(r->runs[i].source);
	for (size_t i = 0; i < r->nextras; i++) {
		free(r->extras[i].suite);
		free(r->extras[i].kcase);
		extra_clear(&r->extras[i].x);
	}
	free(r->runs);
	free(r->extras);
	free(r->name);
	free(r);
}

int ks_report_add(struct ks_report *r, const struct ks_ktap *p, const char *source)
{
	struct report_run *run;

	if (!r || !p)
		return -EINVAL;
	if (grow(&r->runs, &r->runs_cap, r->nruns + 1, sizeof(*run)) < 0)
		return -ENOMEM;
	run = &r->runs[r->nruns];
	run->p = p;
	run->source = NULL;
	if (source && !(run->source = strdup(source)))
		return -ENOMEM;
	return (int)r->nruns++;
}

static int dup_opt(const char *s, const char **dst)
{
	*dst = NULL;
	return s && !(*dst = strdup(s)) ? -ENOMEM : 0;
}

static struct report_extra *extra_find(const struct ks_report *r, int run, const char *suite,
				       const char *kcase)
{
	for (size_t i = 0; i < r->nextras; i++) {
		struct report_extra *e = &r->extras[i];

		if (e->run == run && !strcmp(e->suite, suite) &&
		    (e->kcase && kcase ? !strcmp(e->kcase, kcase) : e->kcase == kcase))
			return e;
	}
	return NULL;
}

int ks_report_set_extra(struct ks_report *r, int run, const char *suite, const char *kcase,
			const struct ks_report_extra *x)
{
	struct ks_report_extra copy = { .duration_ns = x ? x->duration_ns : -1 };
	struct report_extra *e;

	if (!r || !suite || !x)
		return -EINVAL;
	if (dup_opt(x->log, &copy.log) < 0 || dup_opt(x->dump, &copy.dump) < 0 ||
	    dup_opt(x->vm, &copy.vm) < 0 || dup_opt(x->name, &copy.name) < 0)
		goto nomem;
	if (!(e = extra_find(r, run, suite, kcase))) {
		if (grow(&r->extras, &r->extras_cap, r->nextras + 1, sizeof(*e)) < 0)
			goto nomem;
		e = &r->extras[r->nextras];
		e->run = run;
		e->suite = strdup(suite);
		e->kcase = kcase ? strdup(kcase) : NULL;
		if (!e->suite || (kcase && !e->kcase)) {
			free(e->suite);
			free(e->kcase);
			goto nomem;
		}
		r->nextras++;
	} else {
		extra_clear(&e->x);
	}
	e->x = copy;
	return 0;
nomem:
	extra_clear(&copy);
	return -ENOMEM;
}

char *report_path(const struct ks_ktap_test *t)
{
	size_t len = 0, at;
	char *s;

	/* Names from the root's children down to t, joined by '.'; the root adds nothing. */
	for (const struct ks_ktap_test *a = t; a && a->parent; a = a->parent)
		len += strlen(a->name) + (a->parent->parent ? 1 : 0);
	if (!(s = malloc(len + 1)))
		return NULL;
	s[len] = 0;
	at = len;
	for (const struct ks_ktap_test *a = t; a && a->parent; a = a->parent) {
		size_t n = strlen(a->name);

		at -= n;
		memcpy(s + at, a->name, n);
		if (a->parent->parent)
			s[--at] = '.';
	}
	return s;
}

int ks_report_path(const struct ks_ktap_test *t, char *buf, size_t size)
{
	char *s = report_path(t);
	int n;

	if (!s)
		return -ENOMEM;
	n = snprintf(buf, size, "%s", s);
	free(s);
	return n;
}

static const struct ks_report_extra *lookup(const struct ks_report *r, int run, const char *suite,
					    const char *kcase)
{
	const struct report_extra *e = extra_find(r, run, suite, kcase);

	if (!e)
		e = extra_find(r, -1, suite, kcase);
	return e ? &e->x : NULL;
}

const struct ks_report_extra *report_extra(const struct ks_report *r, int run,
					   const struct ks_ktap_test *t, bool as_suite)
{
	const struct ks_report_extra *x = NULL;
	char *path = report_path(as_suite ? t : t->parent), num[24];

	if (!path)
		return NULL;
	if (as_suite) {
		x = lookup(r, run, path, NULL);
	} else {
		x = lookup(r, run, path, t->name);
		if (!x && !t->name[0]) {
			snprintf(num, sizeof(num), "#%u", t->number);
			x = lookup(r, run, path, num);
		}
	}
	free(path);
	return x;
}

const char *report_name(const struct ks_report *r, int run, const struct ks_ktap_test *t)
{
	const struct ks_report_extra *x;

	if (t->name[0] || !t->parent || !(x = report_extra(r, run, t, false)) || !x->name)
		return t->name;
	return x->name;
}

void ks_report_counts(const struct ks_report *r, struct ks_ktap_counts *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < r->nruns; i++) {
		struct ks_ktap_counts rc;

		ks_ktap_counts(r->runs[i].p, &rc);
		c->passed += rc.passed;
		c->failed += rc.failed;
		c->crashed += rc.crashed;
		c->skipped += rc.skipped;
		c->errors += rc.errors;
	}
}

enum ks_ktap_outcome ks_report_outcome(const struct ks_report *r)
{
	struct ks_ktap_counts c;
	bool any = false;

	for (size_t i = 0; i < r->nruns; i++)
		any |= ks_ktap_root(r->runs[i].p) != NULL;
	if (!any)
		return KS_KTAP_OUT_UNPARSED;
	ks_report_counts(r, &c);
	return ks_ktap_counts_outcome(&c);
}

bool report_is_parent(const struct ks_ktap_test *t)
{
	return t->nchildren || t->status == KS_KTAP_NO_TESTS;
}

/* ---- text ---- */

/* The length of the UTF-8 character at s (n bytes left), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	/* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

char *report_clean(const char *s, bool controls)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), o = 0;
	char *out = malloc(3 * n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_len(u + i, n - i);
		bool nonchar = len == 3 && u[i] == 0xef && u[i + 1] == 0xbf && u[i + 2] >= 0xbe;
		bool control = controls && len == 1 && u[i] < 0x20 && u[i] != '\t' &&
			       u[i] != '\n' && u[i] != '\r';
		bool bad = !len || nonchar || control;

		if (bad) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i += len ? len : 1;
			continue;
		}
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	out[o] = 0;
	return out;
}

size_t report_log_indent(const struct ks_ktap_test *t)
{
	const char *first = NULL;
	size_t k = 0;
	bool diag = false;

	/* The "#" lines set the indentation when there are any: other output (kernel
	 * messages) often starts at the margin. */
	for (size_t i = 0; i < t->nlog && !diag; i++)
		diag = t->log[i][strspn(t->log[i], " \t")] == '#';
	for (size_t i = 0; i < t->nlog; i++) {
		const char *s = t->log[i];
		size_t j = 0;

		if (!s[0] || (diag && s[strspn(s, " \t")] != '#'))
			continue;
		if (!first) {
			first = s;
			while (blank(s[k]))
				k++;
			continue;
		}
		while (j < k && s[j] == first[j])
			j++;
		k = j;
	}
	return k;
}

const char *report_dedent(const char *line, size_t k)
{
	size_t n = strspn(line, " \t");

	return line + (n < k ? n : k);
}

bool report_is_attr_line(const struct ks_ktap_test *t, const char *s)
{
	while (blank(*s))
		s++;
	if (s[0] != '#' || s[1] != ' ')
		return false;
	s += 2;
	for (size_t i = 0; i < t->nattrs; i++) {
		size_t k = strlen(t->attrs[i].key);
		const char *v = s + k + 2;

		if (!strncmp(s, t->attrs[i].key, k) && s[k] == ':' && s[k + 1] == ' ') {
			while (blank(*v))
				v++;
			if (!strcmp(v, t->attrs[i].value))
				return true;
		}
	}
	return false;
}

char *report_log(const struct ks_ktap_test *t, bool skip_attrs)
{
	size_t k = report_log_indent(t), len = 1, o = 0;
	char *out;

	for (size_t i = 0; i < t->nlog; i++)
		len += strlen(t->log[i]) + 1;
	if (!(out = malloc(len)))
		return NULL;
	for (size_t i = 0; i < t->nlog; i++) {
		const char *s = t->log[i];
		size_t n = strlen(s);

		if (skip_attrs && report_is_attr_line(t, s))
			continue;
		s = report_dedent(s, k);
		n = strlen(s);
		if (o)
			out[o++] = '\n';
		memcpy(out + o, s, n);
		o += n;
	}
	out[o] = 0;
	return out;
}

/* The first diagnostic of t that is no attribute, without "# " and "name: ". */
static const char *first_diagnostic(const struct ks_ktap_test *t)
{
	size_t nl = strlen(t->name);

	for (size_t i = 0; i < t->nlog; i++) {
		const char *s = t->log[i];

		while (blank(*s))
			s++;
		if (*s != '#' || report_is_attr_line(t, s))
			continue;
		for (s++; blank(*s); s++)
			;
		if (nl && !strncmp(s, t->name, nl) && s[nl] == ':')
			for (s += nl + 1; blank(*s); s++)
				;
		if (*s)
			return s;
	}
	return NULL;
}

char *report_message(const struct ks_ktap_test *t)
{
	const char *d = first_diagnostic(t), *why;
	char *m;

	switch (t->status) {
	case KS_KTAP_SKIP:
	case KS_KTAP_TODO:
		if (t->reason[0])
			return strdup(t->reason);
		return strdup(t->status == KS_KTAP_SKIP ? "skipped" : "todo");
	case KS_KTAP_CRASHED:
		return strdup(t->has_result ? "crashed" : "crashed: its result never came");
	case KS_KTAP_TIMEOUT:
		why = "timed out";
		break;
	case KS_KTAP_ERROR:
		why = "error";
		break;
	default:
		if (d)
			return strdup(d);
		return strdup(t->nchildren ? "not ok, though its subtests passed" : "not ok");
	}
	if (!t->reason[0])
		return strdup(d ? d : why);
	return asprintf(&m, "%s: %s", why, t->reason) < 0 ? NULL : m;
}
