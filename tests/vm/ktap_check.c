/* ktap_check.c: a strict checker of the KTAP a kt_ kernel prints (two levels: suites, cases). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ktap_check.h"

struct parser {
	struct kc_run *run;
	struct kc_suite *cur;  /* the open suite, NULL between suites */
	bool pending_destructive;
	int lineno;
};

static bool fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->run->error, sizeof(p->run->error), "line %d: ", p->lineno);

	va_start(ap, fmt);
	vsnprintf(p->run->error + n, sizeof(p->run->error) - n, fmt, ap);
	va_end(ap);
	return false;
}

/* Parses "ok N name[ # DIRECTIVE]" or "not ok ..."; returns false if it is not one. */
static bool parse_result(const char *s, enum kc_result *res, int *num, char *name)
{
	bool ok = strncmp(s, "ok ", 3) == 0;

	if (!ok && strncmp(s, "not ok ", 7))
		return false;
	s += ok ? 3 : 7;
	char *end;
	*num = (int)strtol(s, &end, 10);
	if (end == s)
		return false;
	s = end;
	while (*s == ' ' || *s == '-')
		s++;
	const char *hash = strstr(s, " #");
	size_t n = hash ? (size_t)(hash - s) : strlen(s);
	if (n >= KC_NAME)
		n = KC_NAME - 1;
	memcpy(name, s, n);
	name[n] = 0;
	*res = !ok ? KC_NOT_OK : (hash && strstr(hash, "# SKIP")) ? KC_SKIP : KC_OK;
	return true;
}

static bool close_suite(struct parser *p, enum kc_result res, int num, const char *name)
{
	struct kc_suite *s = p->cur;
	int fails = 0;

	if (!s)
		return fail(p, "suite result '%s' without a subtest", name);
	if (num != p->run->nsuites)
		return fail(p, "suite %s numbered %d, expected %d", name, num, p->run->nsuites);
	if (strcmp(name, s->name))
		return fail(p, "result for %s closes subtest %s", name, s->name);
	if (s->plan != s->ncases)
		return fail(p, "suite %s planned %d cases, printed %d", name, s->plan, s->ncases);
	if (s->n_total < 0)
		return fail(p, "suite %s has no pass/fail count line", name);
	for (int i = 0; i < s->ncases; i++)
		fails += s->cases[i].result == KC_NOT_OK;
	if ((fails > 0) != (res == KC_NOT_OK))
		return fail(p, "suite %s is %s with %d failed cases", name,
			    res == KC_NOT_OK ? "not ok" : "ok", fails);
	s->result = res;
	p->cur = NULL;
	p->run->complete = p->run->nsuites == p->run->plan;
	return true;
}

static bool counts_line(struct parser *p, const char *s)
{
	struct kc_suite *st = p->cur;
	int pass = 0, failc = 0, skip = 0;

	if (sscanf(s, "pass:%d fail:%d skip:%d total:%d", &st->n_pass, &st->n_fail, &st->n_skip,
		   &st->n_total) != 4)
		return fail(p, "malformed count line for %s", st->name);
	for (int i = 0; i < st->ncases; i++) {
		pass += st->cases[i].result == KC_OK;
		failc += st->cases[i].result == KC_NOT_OK;
		skip += st->cases[i].result == KC_SKIP;
	}
	if (pass != st->n_pass || failc != st->n_fail || skip != st->n_skip ||
	    st->ncases != st->n_total)
		return fail(p, "counts of %s say %d/%d/%d/%d, results say %d/%d/%d/%d", st->name,
			    st->n_pass, st->n_fail, st->n_skip, st->n_total, pass, failc, skip,
			    st->ncases);
	return true;
}

static bool case_result(struct parser *p, enum kc_result res, int num, const char *name)
{
	struct kc_suite *s = p->cur;

	if (num != s->ncases + 1)
		return fail(p, "case %s numbered %d, expected %d", name, num, s->ncases + 1);
	if (s->ncases == KC_MAX_CASES)
		return fail(p, "too many cases in %s", s->name);
	struct kc_case *c = &s->cases[s->ncases++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->result = res;
	c->destructive = p->pending_destructive;
	p->pending_destructive = false;
	return true;
}

/* A line indented by one level: inside a suite. */
static bool suite_line(struct parser *p, const char *s)
{
	enum kc_result res;
	int num;
	char name[KC_NAME];

	if (!strcmp(s, "KTAP version 1")) {
		if (p->cur)
			return fail(p, "new subtest while %s is open", p->cur->name);
		if (p->run->nsuites == KC_MAX_SUITES)
			return fail(p, "too many suites");
		p->cur = &p->run->suites[p->run->nsuites++];
		memset(p->cur, 0, sizeof(*p->cur));
		p->cur->plan = p->cur->n_pass = p->cur->n_fail = p->cur->n_skip = -1;
		p->cur->n_total = -1;
		return true;
	}
	if (!p->cur)
		return fail(p, "indented line outside a subtest: %s", s);
	if (!strncmp(s, "# Subtest: ", 11)) {
		snprintf(p->cur->name, sizeof(p->cur->name), "%.*s", KC_NAME - 1, s + 11);
		return true;
	}
	if (!strncmp(s, "1..", 3)) {
		p->cur->plan = atoi(s + 3);
		return true;
	}
	if (!strcmp(s, "# destructive: true")) {
		p->pending_destructive = p->cur->plan >= 0;
		return true;
	}
	size_t n = strlen(p->cur->name);
	if (!strncmp(s, "# ", 2) && !strncmp(s + 2, p->cur->name, n) && !strncmp(s + 2 + n, ": pass:", 7))
		return counts_line(p, s + 4 + n);
	if (s[0] == '#')
		return true;
	if (parse_result(s, &res, &num, name))
		return case_result(p, res, num, name);
	return fail(p, "unexpected line in suite %s: %s", p->cur->name, s);
}

static bool top_line(struct parser *p, const char *s)
{
	enum kc_result res;
	int num;
	char name[KC_NAME];

	if (p->run->plan < 0) {
		if (strncmp(s, "1..", 3))
			return fail(p, "expected the plan, got: %s", s);
		p->run->plan = atoi(s + 3);
		return true;
	}
	if (parse_result(s, &res, &num, name))
		return close_suite(p, res, num, name);
	return true; /* diagnostics, totals and unknown lines are ignored, as KTAP says */
}

static bool line(struct parser *p, const char *s)
{
	int spaces = 0;

	while (s[spaces] == ' ')
		spaces++;
	if (spaces >= 8)
		return true; /* parameter results: the case line after them says it all */
	if (spaces == 4)
		return suite_line(p, s + 4);
	if (spaces == 0)
		return top_line(p, s);
	return fail(p, "odd indentation (%d spaces)", spaces);
}

bool kc_check(const char *text, struct kc_run *run)
{
	struct parser p = { .run = run };
	const char *v = strstr(text, "KTAP version 1\n");

	memset(run, 0, sizeof(*run));
	run->plan = -1;
	while (v && v != text && v[-1] != '\n')
		v = strstr(v + 1, "KTAP version 1\n");
	if (!v) {
		snprintf(run->error, sizeof(run->error), "no 'KTAP version 1' line");
		return false;
	}
	for (const char *s = v + 15; *s && !run->complete;) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		char buf[512];

		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, s, n);
		buf[n] = 0;
		if (n && buf[n - 1] == '\r')
			buf[n - 1] = 0;
		p.lineno++;
		if (!line(&p, buf))
			return false;
		if (!nl)
			break;
		s = nl + 1;
	}
	if (run->plan < 0) {
		snprintf(run->error, sizeof(run->error), "no plan after the version line");
		return false;
	}
	return true;
}

const struct kc_suite *kc_suite(const struct kc_run *run, const char *name)
{
	for (int i = 0; i < run->nsuites; i++)
		if (!strcmp(run->suites[i].name, name))
			return &run->suites[i];
	return NULL;
}

const struct kc_case *kc_case(const struct kc_run *run, const char *suite, const char *name)
{
	const struct kc_suite *s = kc_suite(run, suite);

	for (int i = 0; s && i < s->ncases; i++)
		if (!strcmp(s->cases[i].name, name))
			return &s->cases[i];
	return NULL;
}
