/* ktest_fixtures.h: what the kt_ fixture suites record while they run, for test_ktest.c. */
#ifndef KTEST_FIXTURES_H
#define KTEST_FIXTURES_H

#include <kt/ktest.h>

struct fx_record {
	char trace[2048];   /* hooks, bodies and cleanups append "word;" in the order they ran */
	int evals;          /* operand evaluations counted by the "once" cases */
	int fail_evals;     /* the same, over kt_fail.once_fail's failing assertions */
	int reached;        /* code after an abort that ran anyway: must stay 0 */
	int suite_inits;    /* kt_suite_init's suite_init calls */
	int suite_exits;    /* kt_suite_init's suite_exit calls */
	int case_bodies;    /* kt_suite_init's case bodies that ran: must stay 0 */
	int param_inits;    /* kt_param's init calls (one per parameter) */
	int param_exits;    /* kt_param's exit calls */
	int params_seen;    /* parameters of kt_param.widths whose t->param was right */
	int live_checks;    /* kt_state checks made from inside running cases */
	int live_failures;  /* ... and how many of them failed */
	int cleanup_rc[KT_MAX_CLEANUPS + 1]; /* kt_add_cleanup's results in cleanup_overflow */
	int cleanups_run;   /* cleanup_overflow's cleanups that ran */
	int cleanup_early;  /* ... of which before the case body finished */
	bool body_done;
};

extern struct fx_record fx;

/* Clears the record before a run. */
void fx_reset(void);

#endif
