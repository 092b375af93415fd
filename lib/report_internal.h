/* report_internal.h: what the report writers share: the runs, the extras, text helpers. */
#ifndef KSCOPE_REPORT_INTERNAL_H
#define KSCOPE_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <kscope/report.h>

struct report_run {
	const struct ks_ktap *p;
	char *source;              /* NULL when none */
};

struct report_extra {
	int run;                   /* -1: any run */
	char *suite, *kcase;       /* kcase NULL: a test with children */
	struct ks_report_extra x;  /* its strings are owned */
};

struct ks_report {
	char *name;
	struct report_run *runs;
	size_t nruns, runs_cap;
	struct report_extra *extras;
	size_t nextras, extras_cap;
};

/* The extra for t of run as a case (as_suite false) or as a test with children; NULL when
 * none was set. */
const struct ks_report_extra *report_extra(const struct ks_report *r, int run,
					   const struct ks_ktap_test *t, bool as_suite);

/* t's name, or the one its extra gives a test the log left unnamed. */
const char *report_name(const struct ks_report *r, int run, const struct ks_ktap_test *t);

/* t's path below the root ("" for the root), malloc'd; NULL when out of memory. */
char *report_path(const struct ks_ktap_test *t);

/*
 * s as valid UTF-8, malloc'd: bytes that are not UTF-8 and the characters XML 1.0 cannot
 * hold (U+FFFE, U+FFFF, and with controls true the C0 controls but tab, newline and
 * carriage return) become U+FFFD. NULL when out of memory.
 */
char *report_clean(const char *s, bool controls);

/* How many leading blanks t's non-empty "#" log lines share (all its lines' when it has
 * none): the indentation of its level. */
size_t report_log_indent(const struct ks_ktap_test *t);

/* line without up to k of its leading blanks. */
const char *report_dedent(const char *line, size_t k);

/* t's log with that indentation removed, lines joined by '\n'; skip_attrs leaves out its
 * attribute lines. malloc'd ("" when empty), NULL when out of memory. */
char *report_log(const struct ks_ktap_test *t, bool skip_attrs);

/* Whether log line s is one of t's `# key: value` attributes. */
bool report_is_attr_line(const struct ks_ktap_test *t, const char *s);

/* One line saying why t did not pass (its first diagnostic, its directive's reason or its
 * status), malloc'd; NULL when out of memory. */
char *report_message(const struct ks_ktap_test *t);

/* Whether t is written as a parent (it has children, or ran none). */
bool report_is_parent(const struct ks_ktap_test *t);

#endif
