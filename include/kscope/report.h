/* report.h: test reports from parsed KTAP runs: merged KTAP, JUnit XML and JSON. */
#ifndef KSCOPE_REPORT_H
#define KSCOPE_REPORT_H

#include <stdio.h>

#include <jansson.h>

#include <kscope/ktap.h>

/*
 * A report gathers one or more parsed runs (one per VM or job) and what the run layer
 * knows beyond the KTAP: per case its duration, console output, crash dump and VM. It
 * writes them as
 *
 *   - KTAP version 1: the runs' top-level tests renumbered under one plan, every result
 *     present (a crashed test is "not ok N name # ERROR ..."), so that parsing it again
 *     gives the same passed, failed, crashed and skipped counts, with no errors;
 *   - JUnit XML as Jenkins and GitLab read it: <testsuites>, one <testsuite> per top-level
 *     test (top-level cases go in one named after the run), one <testcase> per counted
 *     test with name, classname (its parents' names joined by '.') and time; <failure> for
 *     FAIL and TIMEOUT, <error> for CRASHED and ERROR, <skipped> for SKIP and TODO, each
 *     with a message; <system-out> with the case's console output (or its KTAP log),
 *     <system-err> with its dump;
 *   - JSON: the runs, then the tree as "suites" (tests with children) and "cases".
 *
 * Extras are keyed like JUnit: a case by (suite, case) where suite is its parents' names
 * below the root joined by '.' ("" at the top level) and case its name; a test with
 * children by (its own path, NULL). A crashed placeholder has no name: it is found as
 * "#N", N its number under its parent, and the extra's name then names it.
 */

/* What the run layer knows about a case or a suite. Strings are copied. */
struct ks_report_extra {
	long long duration_ns;  /* -1 when unknown */
	const char *log;        /* its console output, NULL: none */
	const char *dump;       /* a crash dump (registers, backtrace), NULL: none */
	const char *vm;         /* the VM or job it ran on, NULL: the run's source */
	const char *name;       /* for a test the log left unnamed, NULL: none */
};

#define KS_REPORT_EXTRA_INIT { .duration_ns = -1 }

struct ks_report;

/* A report called name (the JUnit <testsuites> name; NULL: "kscope"). NULL when out of
 * memory. Free with ks_report_free(). */
struct ks_report *ks_report_new(const char *name);

/* Frees r (not the parsers it was given); NULL is fine. */
void ks_report_free(struct ks_report *r);

/*
 * Adds the parsed run p (borrowed: it must stay alive and unchanged while r is used),
 * which ran on source (a VM or job name, copied; NULL: none). Returns the run's index,
 * -EINVAL for a NULL r or p, -ENOMEM.
 */
int ks_report_add(struct ks_report *r, const struct ks_ktap *p, const char *source);

/*
 * Attaches x to the test (suite, kcase) of run (an index from ks_report_add(), or -1 for
 * whichever run has that test); see above for the keys. A later call for the same key
 * replaces the earlier one. Returns 0, -EINVAL (NULL r, suite or x), -ENOMEM.
 */
int ks_report_set_extra(struct ks_report *r, int run, const char *suite, const char *kcase,
			const struct ks_report_extra *x);

/* The summed counts of every run. */
void ks_report_counts(const struct ks_report *r, struct ks_ktap_counts *c);

/* The outcome of those counts; FAILURE_TO_PARSE_TESTS when no run had any KTAP. */
enum ks_ktap_outcome ks_report_outcome(const struct ks_report *r);

/* Writes the merged KTAP to f. Returns 0, -ENOMEM, or -EIO when f failed. */
int ks_report_write_ktap(const struct ks_report *r, FILE *f);

/* Writes JUnit XML to f. Returns 0, -ENOMEM, or -EIO when f failed. */
int ks_report_write_junit(const struct ks_report *r, FILE *f);

/* The JSON form (a new reference; NULL when out of memory). */
json_t *ks_report_json(const struct ks_report *r);

/* Writes the JSON form to f, indented. Returns 0, -ENOMEM, or -EIO when f failed. */
int ks_report_write_json(const struct ks_report *r, FILE *f);

/*
 * Writes the path of t below the root (its own name after its parents', joined by '.')
 * into buf, as the extras' keys use it. Returns what snprintf() returns.
 */
int ks_report_path(const struct ks_ktap_test *t, char *buf, size_t size);

#endif
