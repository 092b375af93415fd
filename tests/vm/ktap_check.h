/* ktap_check.h: a strict checker of the KTAP a kt_ kernel prints (two levels: suites, cases). */
#ifndef KSCOPE_TESTS_KTAP_CHECK_H
#define KSCOPE_TESTS_KTAP_CHECK_H

#include <stdbool.h>

#define KC_MAX_SUITES 64
#define KC_MAX_CASES 128
#define KC_NAME 64

enum kc_result { KC_NONE, KC_OK, KC_NOT_OK, KC_SKIP };

struct kc_case {
	char name[KC_NAME];
	enum kc_result result;
	bool destructive; /* "# destructive: true" before its result line */
};

struct kc_suite {
	char name[KC_NAME];
	int plan;                 /* from "1..N"; -1 when none */
	int ncases;
	struct kc_case cases[KC_MAX_CASES];
	enum kc_result result;    /* the suite's own line at the top level; KC_NONE if missing */
	int n_pass, n_fail, n_skip, n_total; /* from "# name: pass:P ...", -1 when none */
};

struct kc_run {
	int plan;                 /* top-level "1..N" */
	int nsuites;
	struct kc_suite suites[KC_MAX_SUITES];
	bool complete;            /* every planned suite has its result line */
	char error[256];          /* the first rule broken, "" when none */
};

/*
 * Checks `text` (a console log: anything before "KTAP version 1" is ignored) and fills *run.
 * Returns true when the KTAP is well formed so far: version and plans present, results
 * numbered in order, per-suite counts agreeing with the results. An incomplete log (a crash)
 * is well formed with complete == false. On false, run->error says what was wrong.
 */
bool kc_check(const char *text, struct kc_run *run);

/* The suite called name, or NULL. */
const struct kc_suite *kc_suite(const struct kc_run *run, const char *name);

/* The case suite.name, or NULL. */
const struct kc_case *kc_case(const struct kc_run *run, const char *suite, const char *name);

#endif
