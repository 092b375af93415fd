/* run_display.h: what `kscope run` shows: a live block on a terminal, plain lines otherwise, the summary. */
#ifndef KSCOPE_CLI_RUN_DISPLAY_H
#define KSCOPE_CLI_RUN_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kscope/run.h>

/* Counts by status, indexed by enum ks_run_status. */
#define RUN_NSTATUS 6

struct run_display;

/*
 * A display writing to out. live: redraw a status block at the bottom (a terminal: the
 * suites, counts, each VM's running test, the elapsed time); otherwise only plain lines,
 * one per finished suite, failure or note. title names the kernel. NULL when out of memory.
 */
struct run_display *run_display_new(FILE *out, bool live, const char *title);

/* Frees d (the run it watched is not touched); NULL is fine. */
void run_display_free(struct run_display *d);

/* The run whose plan and results the display reads (set before ks_run_exec()). */
void run_display_attach(struct run_display *d, const struct ks_run *r);

/* A ks_run_event_cb: data is the display. */
void run_display_event(const struct ks_run_event *ev, void *data);

/* Clears the live block, for the summary or an error message. */
void run_display_end(struct run_display *d);

/* Prints, for each test that did not pass, why (diagnostics, the dump), then the flaky
 * tests, kunit's totals line and one line on the run itself. */
void run_display_summary(struct run_display *d, const struct ks_run *r);

/* ---- pure formatting, tested on its own ---- */

/* "0.4 ms", "12 ms", "1.25 s", "2 min 5 s"; "-" for a negative time. Returns buf. */
char *run_fmt_duration(int64_t ns, char *buf, size_t size);

/* "[#####.....]" of width cells (plus the brackets) for done of total. Returns buf. */
char *run_fmt_bar(size_t done, size_t total, unsigned width, char *buf, size_t size);

/* "12 passed, 1 failed, 2 crashed" (the non-zero counts, in a fixed order: passed, failed,
 * timed out, crashed, skipped, not run), or "no tests". Returns buf. */
char *run_fmt_counts(const size_t counts[RUN_NSTATUS], char *buf, size_t size);

/*
 * A finished suite: "ok      string               12 passed" or "FAILED  example_fail  2 failed"
 * (SKIPPED when every test skipped), with " (round 2 of 3)" when rounds > 1. Returns buf.
 */
char *run_fmt_suite(const char *suite, const size_t counts[RUN_NSTATUS], unsigned round,
		    unsigned rounds, char *buf, size_t size);

#endif
