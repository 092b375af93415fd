/* ktap.c: the KTAP parser's input side (lines from chunks, the prefix, what each line is) and its API. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ktap_internal.h"

/* Lines after which kunit_tool stops reading: the kernel gave up or halted. */
static const char *const end_marks[] = {
	"List of all partitions:",
	"Kernel panic - not syncing: VFS:",
	"reboot: System halted",
};

static const char *const status_names[] = {
	[KS_KTAP_PASS] = "PASS",         [KS_KTAP_FAIL] = "FAIL",
	[KS_KTAP_SKIP] = "SKIP",         [KS_KTAP_CRASHED] = "CRASHED",
	[KS_KTAP_NO_TESTS] = "NO_TESTS", [KS_KTAP_TODO] = "TODO",
	[KS_KTAP_XFAIL] = "XFAIL",       [KS_KTAP_TIMEOUT] = "TIMEOUT",
	[KS_KTAP_ERROR] = "ERROR",
};

static const char *const outcome_names[] = {
	[KS_KTAP_OUT_SUCCESS] = "SUCCESS",       [KS_KTAP_OUT_FAILURE] = "FAILURE",
	[KS_KTAP_OUT_CRASHED] = "TEST_CRASHED",  [KS_KTAP_OUT_SKIPPED] = "SKIPPED",
	[KS_KTAP_OUT_NO_TESTS] = "NO_TESTS",     [KS_KTAP_OUT_UNPARSED] = "FAILURE_TO_PARSE_TESTS",
};

static char *skip_blanks(const char *s)
{
	while (ktap_blank(*s))
		s++;
	return (char *)s;
}

/* ---- what a line is ---- */

/* Whether s is word followed by digits up to its end (kunit's "KTAP version ([0-9]+)$"). */
static bool version_at(const char *s, const char *word, unsigned long *version)
{
	size_t n = strlen(word);
	const char *d = s + n;

	if (strncmp(s, word, n) || !isdigit((unsigned char)*d))
		return false;
	for (const char *q = d; *q; q++)
		if (!isdigit((unsigned char)*q))
			return false;
	*version = strtoul(d, NULL, 10);
	return true;
}

/* Where a version line starts in line (kunit searches anywhere in it), or -1. */
static long find_version(const char *line)
{
	unsigned long v;

	for (const char *s = line; (s = strstr(s, "TAP version ")); s++) {
		if (s > line && s[-1] == 'K' && version_at(s - 1, "KTAP version ", &v))
			return s - 1 - line;
		if (version_at(s, "TAP version ", &v))
			return s - line;
	}
	return -1;
}

/* "1..N" at s, with anything after it (kunit's "^\s*1\.\.([0-9]+)"). */
static bool parse_plan(const char *s, unsigned long *plan)
{
	if (strncmp(s, "1..", 3) || !isdigit((unsigned char)s[3]))
		return false;
	*plan = strtoul(s + 3, NULL, 10);
	return *plan <= KS_KTAP_PLAN_MAX;
}

/* Splits "name [# DIRECTIVE reason]" in place: the directive starts at a '#' that opens
 * the text or follows a blank, so a name may hold a '#' of its own. */
static void split_name(char *s, struct ktap_line *l)
{
	char *hash = NULL, *end, *d;

	for (char *q = s; *q && !hash; q++)
		if (*q == '#' && (q == s || ktap_blank(q[-1])))
			hash = q;
	l->directive = l->reason = "";
	if (hash) {
		*hash = 0;
		d = skip_blanks(hash + 1);
		l->directive = d;
		while (isalnum((unsigned char)*d) || *d == '_')
			d++;
		l->directive_len = (size_t)(d - l->directive);
		l->reason = skip_blanks(d);
	}
	for (end = s + strlen(s); end > s && ktap_blank(end[-1]); end--)
		;
	*end = 0;
	l->name = s;
}

/* "ok|not ok N [- ]name [# directive]" at s. A number is required: console text such as
 * "ok, mounted" must not pass for a result. */
static bool parse_result(char *s, struct ktap_line *l)
{
	char *end;

	if (!strncmp(s, "ok ", 3)) {
		l->ok = true;
		s += 3;
	} else if (!strncmp(s, "not ok ", 7)) {
		l->ok = false;
		s += 7;
	} else {
		return false;
	}
	if (!isdigit((unsigned char)*s))
		return false;
	l->number = strtoul(s, &end, 10);
	s = end;
	if (*s == ' ')
		s++;
	if (s[0] == '-' && s[1] == ' ')
		s += 2;
	split_name(s, l);
	return true;
}

/* Classifies text (prefix already stripped); may write into it. */
static void classify(char *text, struct ktap_line *l)
{
	char *s = skip_blanks(text);

	memset(l, 0, sizeof(*l));
	l->kind = KL_TEXT;
	l->text = text;
	if (version_at(s, "KTAP version ", &l->version)) {
		l->kind = KL_VERSION;
		l->ktap = true;
	} else if (version_at(s, "TAP version ", &l->version)) {
		l->kind = KL_VERSION;
	} else if (!strncmp(s, "# Subtest:", 10)) {
		l->kind = KL_HEADER;
		l->name = skip_blanks(s + 10);
	} else if (parse_plan(s, &l->plan)) {
		l->kind = KL_PLAN;
	} else if (parse_result(s, l)) {
		l->kind = KL_RESULT;
	}
}

/* ---- the prefix ---- */

static int set_prefix(struct ks_ktap *p, const char *line, size_t len)
{
	const char *s;

	p->prefix = strndup(line, len);
	if (!p->prefix)
		return -ENOMEM;
	p->prefix_len = len;
	p->prefix_blank = true;
	for (size_t i = 0; i < len; i++)
		p->prefix_blank &= ktap_blank(line[i]);
	/* printk times are "[    0.060000] ", or stacked "[..][    T1] "; their width can
	 * change as the clock grows, so strip them by groups, not by length. */
	for (s = p->prefix; *s == '[' && strchr(s, ']'); s = strchr(s, ']') + 1)
		p->prefix_groups++;
	if (*skip_blanks(s))
		p->prefix_groups = 0;
	return 0;
}

static char *strip_prefix(const struct ks_ktap *p, char *line)
{
	size_t n;

	if (!p->prefix_len || !strncmp(line, p->prefix, p->prefix_len))
		return line + p->prefix_len;
	/* Leading blanks mean nothing to the parser. */
	if (p->prefix_blank)
		return line;
	if (p->prefix_groups) {
		char *s = line;

		for (unsigned g = 0; g < p->prefix_groups && *s == '[' && strchr(s, ']'); g++)
			s = strchr(s, ']') + 1;
		return s;
	}
	/* kunit_tool cuts the prefix's length off every line, whatever it holds. */
	n = strlen(line);
	return line + (n < p->prefix_len ? n : p->prefix_len);
}

/* ---- lines ---- */

static int look_for_version(struct ks_ktap *p, char *line)
{
	long at = find_version(line);
	struct ktap_line l;
	int rc;

	if (at < 0) {
		p->st.before++;
		return 0;
	}
	if ((rc = set_prefix(p, line, (size_t)at)) < 0)
		return rc;
	p->started = true;
	classify(line + at, &l);
	return ktap_tree_start(p, &l);
}

static int process_line(struct ks_ktap *p)
{
	char *line = p->line;
	struct ktap_line l;
	size_t n = p->len;

	while (n > 0 && ktap_blank(line[n - 1]))
		n--;
	line[n] = 0;
	p->st.lines++;
	p->st.overlong += p->overlong;
	p->len = 0;
	p->overlong = false;
	if (p->done) {
		p->st.after++;
		return 0;
	}
	if (!p->started)
		return look_for_version(p, line);
	for (size_t i = 0; i < sizeof(end_marks) / sizeof(end_marks[0]); i++) {
		if (strstr(line, end_marks[i])) {
			p->st.after++;
			return ktap_tree_end(p);
		}
	}
	classify(strip_prefix(p, line), &l);
	return ktap_tree_line(p, &l);
}

/* Adds bytes to the line being assembled; NULs are dropped (consoles emit them on
 * resets), bytes past KS_KTAP_LINE_MAX are cut. */
static void append(struct ks_ktap *p, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!b[i])
			continue;
		if (p->len < KS_KTAP_LINE_MAX)
			p->line[p->len++] = b[i];
		else
			p->overlong = true;
	}
}

/* ---- API ---- */

struct ks_ktap *ks_ktap_new(void)
{
	struct ks_ktap *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->line = malloc(KS_KTAP_LINE_MAX + 1);
	if (!p->line) {
		free(p);
		return NULL;
	}
	return p;
}

void ks_ktap_free(struct ks_ktap *p)
{
	if (!p)
		return;
	ktap_tree_free(p);
	free(p->prefix);
	free(p->line);
	free(p);
}

void ks_ktap_set_callbacks(struct ks_ktap *p, const struct ks_ktap_callbacks *cb)
{
	if (cb)
		p->cb = *cb;
	else
		memset(&p->cb, 0, sizeof(p->cb));
}

int ks_ktap_feed(struct ks_ktap *p, const void *buf, size_t len)
{
	const char *b = buf;

	if (!p || (!buf && len) || p->finished)
		return -EINVAL;
	if (p->broken)
		return -ENOMEM;
	while (len) {
		const char *nl = memchr(b, '\n', len);
		size_t n = nl ? (size_t)(nl - b) : len;

		append(p, b, n);
		if (nl) {
			if (process_line(p) < 0) {
				p->broken = true;
				return -ENOMEM;
			}
			n++;
		}
		b += n;
		len -= n;
	}
	return 0;
}

int ks_ktap_finish(struct ks_ktap *p)
{
	int rc = 0;

	if (!p)
		return -EINVAL;
	if (p->finished)
		return 0;
	if (p->broken)
		return -ENOMEM;
	p->finished = true;
	if (p->len || p->overlong)
		rc = process_line(p);
	if (!rc && !p->started)
		rc = ktap_error(p, NULL,
				"Could not find any KTAP output. Did any KUnit tests run?");
	else if (!rc && !p->done)
		rc = ktap_tree_end(p);
	if (rc < 0)
		p->broken = true;
	return rc < 0 ? rc : 0;
}

struct ks_ktap *ks_ktap_parse_buf(const void *buf, size_t len)
{
	struct ks_ktap *p = ks_ktap_new();

	if (p && (ks_ktap_feed(p, buf, len) < 0 || ks_ktap_finish(p) < 0)) {
		ks_ktap_free(p);
		p = NULL;
	}
	return p;
}

const struct ks_ktap_test *ks_ktap_root(const struct ks_ktap *p)
{
	return p->root ? &p->root->t : NULL;
}

bool ks_ktap_done(const struct ks_ktap *p)
{
	return p->done || p->finished;
}

/* Counts of the tests that have ended under n. */
static void live_counts(const struct ktap_node *n, struct ks_ktap_counts *c)
{
	if (n->ended) {
		c->passed += n->t.counts.passed;
		c->failed += n->t.counts.failed;
		c->crashed += n->t.counts.crashed;
		c->skipped += n->t.counts.skipped;
		return;
	}
	for (size_t i = 0; i < n->t.nchildren; i++)
		live_counts((const struct ktap_node *)n->t.children[i], c);
}

void ks_ktap_counts(const struct ks_ktap *p, struct ks_ktap_counts *c)
{
	memset(c, 0, sizeof(*c));
	if (p->root)
		live_counts(p->root, c);
	/* Every error belongs to a test that ends inside the root, or to no KTAP at all. */
	c->errors = (unsigned)p->nerrors;
}

enum ks_ktap_outcome ks_ktap_outcome(const struct ks_ktap *p)
{
	struct ks_ktap_counts c;

	if (!p->started)
		return KS_KTAP_OUT_UNPARSED;
	ks_ktap_counts(p, &c);
	return ks_ktap_counts_outcome(&c);
}

const struct ks_ktap_error *ks_ktap_errors(const struct ks_ktap *p, size_t *n)
{
	*n = p->nerrors;
	return p->errors;
}

void ks_ktap_stats(const struct ks_ktap *p, struct ks_ktap_stats *st)
{
	*st = p->st;
}

const char *ks_ktap_status_name(enum ks_ktap_status s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

const char *ks_ktap_outcome_name(enum ks_ktap_outcome o)
{
	return (unsigned)o < sizeof(outcome_names) / sizeof(outcome_names[0]) ? outcome_names[o]
									   : "?";
}

unsigned ks_ktap_counts_total(const struct ks_ktap_counts *c)
{
	return c->passed + c->failed + c->crashed + c->skipped;
}

enum ks_ktap_outcome ks_ktap_counts_outcome(const struct ks_ktap_counts *c)
{
	if (!ks_ktap_counts_total(c))
		return KS_KTAP_OUT_NO_TESTS;
	if (c->crashed)
		return KS_KTAP_OUT_CRASHED;
	if (c->failed)
		return KS_KTAP_OUT_FAILURE;
	if (c->passed)
		return KS_KTAP_OUT_SUCCESS;
	return KS_KTAP_OUT_SKIPPED;
}

bool ks_ktap_counts_add(struct ks_ktap_counts *c, enum ks_ktap_status s)
{
	switch (s) {
	case KS_KTAP_PASS:
	case KS_KTAP_XFAIL:
		c->passed++;
		return true;
	case KS_KTAP_FAIL:
	case KS_KTAP_TIMEOUT:
		c->failed++;
		return true;
	case KS_KTAP_SKIP:
	case KS_KTAP_TODO:
		c->skipped++;
		return true;
	case KS_KTAP_CRASHED:
	case KS_KTAP_ERROR:
		c->crashed++;
		return true;
	case KS_KTAP_NO_TESTS:
		break;
	}
	return false;
}

int ks_ktap_summary(const struct ks_ktap_counts *c, char *buf, size_t size)
{
	return snprintf(buf, size,
			"Testing complete. Ran %u tests: passed: %u, failed: %u, crashed: %u, "
			"skipped: %u, errors: %u",
			ks_ktap_counts_total(c), c->passed, c->failed, c->crashed, c->skipped,
			c->errors);
}

const char *ks_ktap_attr(const struct ks_ktap_test *t, const char *key)
{
	/* The last one wins, as a later setting does. */
	for (size_t i = t->nattrs; i-- > 0;)
		if (!strcmp(t->attrs[i].key, key))
			return t->attrs[i].value;
	return NULL;
}
