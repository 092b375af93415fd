/* ktap_tree.c: the KTAP parser's test tree: parents, cases, crashed placeholders and kunit's counting. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ktap_internal.h"

#define NODE(t) ((struct ktap_node *)(t))

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

static const char *skip_blanks(const char *s)
{
	while (ktap_blank(*s))
		s++;
	return s;
}

/* ---- errors ---- */

int ktap_error(struct ks_ktap *p, struct ktap_node *n, const char *fmt, ...)
{
	struct ks_ktap_error *e;
	char msg[256];
	va_list ap;

	if (grow(&p->errors, &p->errors_cap, p->nerrors + 1, sizeof(*e)) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = &p->errors[p->nerrors];
	e->line = p->st.lines;
	e->test = strdup(n ? n->t.name : "<missing>");
	e->msg = strdup(msg);
	if (!e->test || !e->msg) {
		free(e->test);
		free(e->msg);
		return -ENOMEM;
	}
	p->nerrors++;
	if (n)
		n->own_errors++;
	return 0;
}

/* ---- nodes ---- */

static struct ktap_node *node_new(struct ks_ktap *p, struct ktap_node *parent, unsigned long number,
				  const char *name)
{
	struct ktap_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->t.name = strdup(name);
	n->t.directive = strdup("");
	n->t.reason = strdup("");
	if (!n->t.name || !n->t.directive || !n->t.reason)
		goto fail;
	n->t.number = (unsigned)number;
	n->t.plan = -1;
	n->t.status = KS_KTAP_CRASHED;
	n->t.first_line = p->st.lines;
	if (parent) {
		struct ks_ktap_test *pt = &parent->t;

		if (grow(&pt->children, &parent->children_cap, pt->nchildren + 1,
			 sizeof(*pt->children)) < 0)
			goto fail;
		pt->children[pt->nchildren++] = &n->t;
		n->t.parent = pt;
		n->t.depth = pt->depth + 1;
	}
	return n;
fail:
	free(n->t.name);
	free(n->t.directive);
	free(n->t.reason);
	free(n);
	return NULL;
}

static void node_free(struct ktap_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->t.nchildren; i++)
		node_free(NODE(n->t.children[i]));
	for (size_t i = 0; i < n->t.nlog; i++)
		free(n->t.log[i]);
	for (size_t i = 0; i < n->t.nattrs; i++) {
		free(n->t.attrs[i].key);
		free(n->t.attrs[i].value);
	}
	free(n->t.children);
	free(n->t.log);
	free(n->t.attrs);
	free(n->t.name);
	free(n->t.directive);
	free(n->t.reason);
	free(n);
}

static int set_string(char **dst, const char *s, size_t len)
{
	char *v = strndup(s, len);

	if (!v)
		return -ENOMEM;
	free(*dst);
	*dst = v;
	return 0;
}

/* Takes s (owned) into n's log; past KS_KTAP_LOG_MAX it is dropped, so that a console
 * that never stops talking cannot exhaust memory. */
static int log_take(struct ks_ktap *p, struct ktap_node *n, char *s)
{
	size_t len = strlen(s) + 1;

	if (n->log_bytes + len > KS_KTAP_LOG_MAX) {
		free(s);
		p->st.dropped++;
		return 0;
	}
	if (grow(&n->t.log, &n->log_cap, n->t.nlog + 1, sizeof(char *)) < 0) {
		free(s);
		return -ENOMEM;
	}
	n->t.log[n->t.nlog++] = s;
	n->log_bytes += len;
	return 0;
}

static int pending_add(struct ks_ktap *p, struct ktap_frame *f, const char *text)
{
	size_t len = strlen(text) + 1;
	char *s;

	if (f->pending.bytes + len > KS_KTAP_LOG_MAX) {
		p->st.dropped++;
		return 0;
	}
	if (grow(&f->pending.v, &f->pending.cap, f->pending.n + 1, sizeof(char *)) < 0 ||
	    !(s = strdup(text)))
		return -ENOMEM;
	f->pending.v[f->pending.n++] = s;
	f->pending.bytes += len;
	return 0;
}

/* The lines waiting in f now belong to n. */
static int pending_to(struct ks_ktap *p, struct ktap_frame *f, struct ktap_node *n)
{
	int rc = 0;

	for (size_t i = 0; i < f->pending.n; i++)
		if (rc >= 0)
			rc = log_take(p, n, f->pending.v[i]);
		else
			free(f->pending.v[i]);
	f->pending.n = 0;
	f->pending.bytes = 0;
	return rc;
}

/* ---- attributes ---- */

/* Whether key (len bytes) is the name of t or of a parent: kunit's messages read
 * "# case: EXPECTATION FAILED ...", the kt_ summary "# suite: pass:1 ...". */
static bool names_a_test(const struct ks_ktap_test *t, const char *key, size_t len)
{
	for (; t; t = t->parent)
		if (strlen(t->name) == len && !strncmp(t->name, key, len))
			return true;
	return false;
}

/* "# key: value" makes an attribute of n unless the key names a test or the value holds
 * another ": " (kselftest's "# selftests: dir: test" is a message). */
static int attr_from(struct ktap_node *n, const char *line)
{
	const char *s = skip_blanks(line), *k, *c, *v;
	struct ks_ktap_attr *a;

	if (s[0] != '#' || s[1] != ' ')
		return 0;
	k = s + 2;
	for (c = k; isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-'; c++)
		;
	if (c == k || c[0] != ':' || c[1] != ' ')
		return 0;
	v = skip_blanks(c + 2);
	if (!*v || strstr(v, ": ") || names_a_test(&n->t, k, (size_t)(c - k)))
		return 0;
	if (grow(&n->t.attrs, &n->attrs_cap, n->t.nattrs + 1, sizeof(*a)) < 0)
		return -ENOMEM;
	a = &n->t.attrs[n->t.nattrs];
	a->key = strndup(k, (size_t)(c - k));
	a->value = strdup(v);
	if (!a->key || !a->value) {
		free(a->key);
		free(a->value);
		return -ENOMEM;
	}
	n->t.nattrs++;
	return 0;
}

static int attrs_from(struct ktap_node *n, size_t from)
{
	for (size_t i = from; i < n->t.nlog; i++)
		if (attr_from(n, n->t.log[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* ---- results ---- */

static bool word_is(const struct ktap_line *l, const char *w)
{
	return l->directive_len == strlen(w) && !strncasecmp(l->directive, w, l->directive_len);
}

static enum ks_ktap_status result_status(const struct ktap_line *l)
{
	/* kunit_tool takes "# SKIP" followed by anything, "# SKIPPED" included. */
	if (l->directive_len >= 4 && !strncasecmp(l->directive, "SKIP", 4))
		return KS_KTAP_SKIP;
	if (word_is(l, "TODO"))
		return KS_KTAP_TODO;
	if (word_is(l, "XFAIL"))
		return KS_KTAP_XFAIL;
	if (word_is(l, "TIMEOUT"))
		return KS_KTAP_TIMEOUT;
	if (word_is(l, "ERROR"))
		return KS_KTAP_ERROR;
	return l->ok ? KS_KTAP_PASS : KS_KTAP_FAIL;
}

static int set_result(struct ks_ktap *p, struct ktap_node *n, const struct ktap_line *l)
{
	n->t.has_result = true;
	n->t.ok = l->ok;
	n->t.status = result_status(l);
	n->t.result_line = p->st.lines;
	if (set_string(&n->t.directive, l->directive, l->directive_len) < 0 ||
	    set_string(&n->t.reason, l->reason, strlen(l->reason)) < 0)
		return -ENOMEM;
	/* A parent named by nothing but its result line takes that name (kunit does). */
	if (!n->t.name[0] && set_string(&n->t.name, l->name, strlen(l->name)) < 0)
		return -ENOMEM;
	if (l->number != n->t.number)
		return ktap_error(p, n, "Expected test number %u but found %lu", n->t.number,
				  l->number);
	return 0;
}

/* Older kunit announced a crash in the case's log, then printed "not ok". */
static bool crash_announced(const struct ktap_node *n)
{
	for (size_t i = 0; i < n->t.nlog; i++) {
		const char *s = skip_blanks(n->t.log[i]), *c;

		if (s[0] == '#' && s[1] == ' ' && (c = strstr(s, ": ")) &&
		    !strcmp(c + 2, "kunit test case crashed!"))
			return true;
	}
	return false;
}

/*
 * Whether a parent's own result must count: it is bad, and nothing below it crashed. A
 * `not ok` parent counts one failure of its own even over failing cases: the conformance
 * table (failure-nested: failed=3) counts it so, and a suite's own verdict (its exit
 * checks, its init) is a result the developer must see in the totals.
 */
static bool own_result_counts(enum ks_ktap_status s, const struct ks_ktap_counts *c)
{
	if (s == KS_KTAP_CRASHED || s == KS_KTAP_ERROR || s == KS_KTAP_FAIL ||
	    s == KS_KTAP_TIMEOUT)
		return !c->crashed;
	return false;
}

/* kunit's bubble_up_test_results(), and a not-ok parent never vanishing. */
static void bubble(struct ktap_node *n)
{
	struct ks_ktap_counts c = { 0 };

	for (size_t i = 0; i < n->t.nchildren; i++) {
		const struct ks_ktap_counts *cc = &n->t.children[i]->counts;

		c.passed += cc->passed;
		c.failed += cc->failed;
		c.crashed += cc->crashed;
		c.skipped += cc->skipped;
		c.errors += cc->errors;
	}
	c.errors += n->own_errors;
	if (!n->t.parent) {
		/* The root has no result line of its own: its counts are its children's. */
	} else if (!ks_ktap_counts_total(&c)) {
		n->t.counted = ks_ktap_counts_add(&c, n->t.status);
	} else if (own_result_counts(n->t.status, &c)) {
		/* It failed, or its result never came: that must show in the counts. A
		 * failure over failing cases is no test of its own in the reports (they
		 * show why); a missing result is. */
		bool over_failures = c.failed > 0 && (n->t.status == KS_KTAP_FAIL ||
						      n->t.status == KS_KTAP_TIMEOUT);

		n->t.counted = ks_ktap_counts_add(&c, n->t.status) && !over_failures;
	} else if (c.crashed) {
		n->t.status = KS_KTAP_CRASHED;
	}
	n->t.counts = c;
}

static void end_test(struct ks_ktap *p, struct ktap_node *n)
{
	bubble(n);
	n->ended = true;
	if (p->cb.end)
		p->cb.end(&n->t, p->cb.data);
}

/* ---- parents ---- */

static struct ktap_frame *top(struct ks_ktap *p)
{
	return &p->stack[p->depth - 1];
}

static int push_frame(struct ks_ktap *p, struct ktap_node *n, bool version, bool header)
{
	struct ktap_frame *f;

	if (grow(&p->stack, &p->stack_cap, p->depth + 1, sizeof(*f)) < 0)
		return -ENOMEM;
	f = &p->stack[p->depth++];
	memset(f, 0, sizeof(*f));
	f->n = n;
	f->expected = -1;
	f->next = 1;
	f->header_open = true;
	f->has_version = version;
	f->has_header = header;
	f->header_from = n->t.nlog;
	return 0;
}

static void pop_frame(struct ks_ktap *p)
{
	struct ktap_frame *f = top(p);

	for (size_t i = 0; i < f->pending.n; i++)
		free(f->pending.v[i]);
	free(f->pending.v);
	p->depth--;
}

/* The parent's version, header, attributes and plan are read: it has begun. */
static int close_header(struct ks_ktap *p, struct ktap_frame *f)
{
	if (!f->header_open)
		return 0;
	f->header_open = false;
	f->n->t.plan = f->expected;
	if (attrs_from(f->n, f->header_from) < 0)
		return -ENOMEM;
	if (p->cb.start)
		p->cb.start(&f->n->t, p->cb.data);
	return 0;
}

static bool plan_met(const struct ktap_frame *f)
{
	return f->expected >= 0 && f->next > (unsigned long)f->expected;
}

static int open_child(struct ks_ktap *p, bool version, const char *name)
{
	struct ktap_frame *f = top(p);
	struct ktap_node *n;

	if (close_header(p, f) < 0 || !(n = node_new(p, f->n, f->next, name ? name : "")))
		return -ENOMEM;
	if (pending_to(p, f, n) < 0)
		return -ENOMEM;
	return push_frame(p, n, version, name != NULL);
}

/* Planned children that never came: CRASHED placeholders with empty names, the first
 * with the lines that came instead (often the crash itself). */
static int add_missing(struct ks_ktap *p, struct ktap_frame *f)
{
	struct ktap_node *n;

	while (f->expected >= 0 && !plan_met(f)) {
		if (!(n = node_new(p, f->n, f->next, "")) || pending_to(p, f, n) < 0 ||
		    ktap_error(p, f->n, "missing expected subtest!") < 0)
			return -ENOMEM;
		f->next++;
		end_test(p, n);
	}
	return 0;
}

/* The open parent ends with result l, or without one (then missing says why, or NULL
 * when kunit_tool says nothing). */
static int close_frame(struct ks_ktap *p, const struct ktap_line *l, const char *missing)
{
	struct ktap_frame *f = top(p);
	struct ktap_node *n = f->n;
	int rc;

	if (close_header(p, f) < 0 || pending_to(p, f, n) < 0)
		return -ENOMEM;
	if (l)
		rc = set_result(p, n, l);
	else
		rc = missing ? ktap_error(p, n, "%s", missing) : 0;
	if (!rc && !n->t.nchildren &&
	    (n->t.status == KS_KTAP_PASS || n->t.status == KS_KTAP_CRASHED)) {
		/* A parent that ran nothing: kunit's NO_TESTS, unless its result never came. */
		if (n->t.status == KS_KTAP_PASS)
			n->t.status = KS_KTAP_NO_TESTS;
		rc = ktap_error(p, n, "0 tests run!");
	}
	if (rc < 0)
		return rc;
	pop_frame(p);
	top(p)->next++;
	end_test(p, n);
	return 0;
}

static int close_root(struct ks_ktap *p)
{
	struct ktap_frame *f = &p->stack[0];
	struct ktap_node *n = f->n;

	if (close_header(p, f) < 0 || pending_to(p, f, n) < 0)
		return -ENOMEM;
	if (!n->t.nchildren && ktap_error(p, n, "0 tests run!") < 0)
		return -ENOMEM;
	pop_frame(p);
	p->done = true;
	bubble(n);
	switch (ks_ktap_counts_outcome(&n->t.counts)) {
	case KS_KTAP_OUT_SUCCESS: n->t.status = KS_KTAP_PASS; break;
	case KS_KTAP_OUT_FAILURE: n->t.status = KS_KTAP_FAIL; break;
	case KS_KTAP_OUT_CRASHED: n->t.status = KS_KTAP_CRASHED; break;
	case KS_KTAP_OUT_SKIPPED: n->t.status = KS_KTAP_SKIP; break;
	default: n->t.status = KS_KTAP_NO_TESTS; break;
	}
	n->ended = true;
	if (p->cb.end)
		p->cb.end(&n->t, p->cb.data);
	return 0;
}

/* kunit_tool reads nothing after the root's plan is met. */
static int check_root_done(struct ks_ktap *p)
{
	if (p->depth == 1 && !p->done && plan_met(&p->stack[0]))
		return close_root(p);
	return 0;
}

/* A structural line that is no result: a subtest whose plan is met has ended without its
 * result line (kunit: "missing subtest result line!" when it has a name). */
static int close_completed(struct ks_ktap *p)
{
	int rc = 0;

	while (!rc && p->depth > 1 && plan_met(top(p)))
		rc = close_frame(p, NULL,
				 top(p)->n->t.name[0] ? "missing subtest result line!" : NULL);
	return rc ? rc : check_root_done(p);
}

/* ---- lines ---- */

static int check_version(struct ks_ktap *p, struct ktap_node *n, const struct ktap_line *l)
{
	const char *kind = l->ktap ? "KTAP" : "TAP";
	unsigned long lo = l->ktap ? 1 : 13, hi = l->ktap ? 1 : 14;

	if (l->version < lo)
		return ktap_error(p, n, "%s version lower than expected!", kind);
	if (l->version > hi)
		return ktap_error(p, n, "%s version higher than expected!", kind);
	return 0;
}

static int on_version(struct ks_ktap *p, const struct ktap_line *l)
{
	struct ktap_frame *f = top(p);

	/* "# Subtest: x" then "KTAP version 1": one subtest, whichever came first. */
	if (p->depth > 1 && f->header_open && f->has_header && !f->has_version) {
		f->has_version = true;
		return check_version(p, f->n, l);
	}
	if (open_child(p, true, NULL) < 0)
		return -ENOMEM;
	return check_version(p, top(p)->n, l);
}

static int on_header(struct ks_ktap *p, const struct ktap_line *l)
{
	struct ktap_frame *f = top(p);

	if (p->depth > 1 && f->header_open && !f->has_header) {
		f->has_header = true;
		return set_string(&f->n->t.name, l->name, strlen(l->name));
	}
	return open_child(p, false, l->name);
}

static int on_text(struct ks_ktap *p, const char *text)
{
	struct ktap_frame *f = top(p);
	char *s;

	if (!f->header_open)
		return pending_add(p, f, text);
	if (!(s = strdup(text)))
		return -ENOMEM;
	return log_take(p, f->n, s);
}

static int add_case(struct ks_ktap *p, struct ktap_frame *f, const struct ktap_line *l)
{
	struct ktap_node *n = node_new(p, f->n, f->next, l->name);

	if (!n || pending_to(p, f, n) < 0 || set_result(p, n, l) < 0 || attrs_from(n, 0) < 0)
		return -ENOMEM;
	if (crash_announced(n))
		n->t.status = KS_KTAP_CRASHED;
	f->next++;
	end_test(p, n);
	return check_root_done(p);
}

/* A result line: a case of the open parent, or that parent's own result. */
static int on_result(struct ks_ktap *p, const struct ktap_line *l)
{
	for (;;) {
		struct ktap_frame *f = top(p);
		const char *name = f->n->t.name;

		if (close_header(p, f) < 0)
			return -ENOMEM;
		if (p->depth == 1)
			return add_case(p, f, l);
		if (plan_met(f)) {
			if (!name[0] || !strcmp(l->name, name))
				break;
			/* Not its result: it ended without one; the line is its parent's. */
			if (close_frame(p, NULL, "missing subtest result line!") < 0 ||
			    check_root_done(p) < 0)
				return -ENOMEM;
			if (p->done)
				return 0;
			continue;
		}
		if (!name[0] || strcmp(l->name, name))
			return add_case(p, f, l);
		if (add_missing(p, f) < 0)
			return -ENOMEM;
		break;
	}
	if (close_frame(p, l, NULL) < 0)
		return -ENOMEM;
	return check_root_done(p);
}

int ktap_tree_start(struct ks_ktap *p, const struct ktap_line *l)
{
	if (!(p->root = node_new(p, NULL, 0, "main")) || push_frame(p, p->root, true, false) < 0)
		return -ENOMEM;
	return check_version(p, p->root, l);
}

int ktap_tree_line(struct ks_ktap *p, const struct ktap_line *l)
{
	int rc;

	switch (l->kind) {
	case KL_VERSION:
	case KL_HEADER:
		if ((rc = close_completed(p)) < 0 || p->done)
			return rc;
		return l->kind == KL_VERSION ? on_version(p, l) : on_header(p, l);
	case KL_PLAN:
		if (top(p)->header_open) {
			top(p)->expected = (long)l->plan;
			rc = close_header(p, top(p));
			return rc < 0 ? rc : check_root_done(p);
		}
		/* A plan out of place is kept as text, as kunit_tool swallows it. */
		return on_text(p, l->text);
	case KL_RESULT:
		return on_result(p, l);
	case KL_TEXT:
		break;
	}
	return on_text(p, l->text);
}

int ktap_tree_end(struct ks_ktap *p)
{
	while (p->depth > 1) {
		struct ktap_frame *f = top(p);
		const char *why = f->n->t.name[0] ? "missing subtest result line!"
						  : "No more test results!";

		if (add_missing(p, f) < 0 || close_frame(p, NULL, why) < 0)
			return -ENOMEM;
	}
	if (p->depth == 1 && (add_missing(p, &p->stack[0]) < 0 || close_root(p) < 0))
		return -ENOMEM;
	p->done = true;
	return 0;
}

void ktap_tree_free(struct ks_ktap *p)
{
	while (p->depth > 0)
		pop_frame(p);
	free(p->stack);
	node_free(p->root);
	for (size_t i = 0; i < p->nerrors; i++) {
		free(p->errors[i].test);
		free(p->errors[i].msg);
	}
	free(p->errors);
}
