/* ktap.h: a streaming KTAP/TAP parser that follows the Linux kernel's kunit_tool rules. */
#ifndef KSCOPE_KTAP_H
#define KSCOPE_KTAP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The parser takes a console log in chunks of any size (a byte at a time from a serial
 * port is fine) and builds a tree of tests as their lines arrive. It reads a log the way
 * the kernel's own `kunit.py parse` (tools/testing/kunit/kunit_parser.py) does:
 *
 *   - everything before the first "KTAP version N" or "TAP version N" line is ignored; the
 *     text in front of "KTAP version" on that line (printk times "[    0.060000] ", stacked
 *     "[..][    T1] ", a space) is the prefix, stripped from every later line: the same
 *     number of "[...]" groups when the prefix is made of them, the prefix itself when a
 *     line starts with it, otherwise as many bytes as it has;
 *   - indentation means nothing: structure comes from the lines themselves. A parent test
 *     starts at a "# Subtest: name" line, a nested version line, or both; its plan "1..N"
 *     may follow; then its children; then its own result line;
 *   - results are `ok|not ok N [- ]name [# DIRECTIVE reason]`, directives SKIP, TODO,
 *     XFAIL, TIMEOUT and ERROR (case does not matter);
 *   - "# " lines and any other output (kernel messages, garbage) are kept in the log of the
 *     test they precede, or of the parent when they come after its last child; `# key: value`
 *     lines right after a parent's header and in a case's log are its attributes;
 *   - a line containing "List of all partitions:", "Kernel panic - not syncing: VFS:" or
 *     "reboot: System halted" ends the log, as does the root's plan being met;
 *   - a planned child whose result never came is a CRASHED placeholder with an empty name
 *     and an error; a parent whose result line never came is CRASHED; nothing missing is
 *     ever a pass.
 *
 * Non-KTAP lines never change the structure, so random bytes between lines (NULs, invalid
 * UTF-8, control characters) change nothing: NUL bytes are dropped, other bytes are kept.
 *
 * Counting follows kunit: only cases count, in kunit's five buckets (passed, failed,
 * crashed, skipped; errors are parse problems). A parent counts itself only when nothing
 * below it counted (kunit's leaf rule: a suite of cases that ran nothing), or when its own
 * result is bad, so that it is never swallowed: a failure (not ok, TIMEOUT) when nothing
 * below crashed (the not-ok-parent rule, which the conformance table applies over failing
 * cases too), a crash (ERROR, or its result never came) when nothing below crashed.
 * A parent with a crash below it is CRASHED. The whole log's outcome is kunit's TestStatus
 * of those counts.
 */

/* One test's status. ks_ktap_status_name() gives the word in parentheses. */
enum ks_ktap_status {
	KS_KTAP_PASS,     /* "PASS": ok */
	KS_KTAP_FAIL,     /* "FAIL": not ok */
	KS_KTAP_SKIP,     /* "SKIP": # SKIP */
	KS_KTAP_CRASHED,  /* "CRASHED": its result never came */
	KS_KTAP_NO_TESTS, /* "NO_TESTS": a parent that ran no tests */
	KS_KTAP_TODO,     /* "TODO": # TODO (counted as skipped) */
	KS_KTAP_XFAIL,    /* "XFAIL": # XFAIL, failed as expected (counted as passed) */
	KS_KTAP_TIMEOUT,  /* "TIMEOUT": # TIMEOUT (counted as failed) */
	KS_KTAP_ERROR,    /* "ERROR": # ERROR, could not run (counted as crashed) */
};

/* The whole log's outcome: kunit's TestStatus. ks_ktap_outcome_name() gives the word. */
enum ks_ktap_outcome {
	KS_KTAP_OUT_SUCCESS,   /* "SUCCESS": something passed, nothing failed or crashed */
	KS_KTAP_OUT_FAILURE,   /* "FAILURE": something failed, nothing crashed */
	KS_KTAP_OUT_CRASHED,   /* "TEST_CRASHED": something crashed */
	KS_KTAP_OUT_SKIPPED,   /* "SKIPPED": everything counted was skipped */
	KS_KTAP_OUT_NO_TESTS,  /* "NO_TESTS": nothing counted */
	KS_KTAP_OUT_UNPARSED,  /* "FAILURE_TO_PARSE_TESTS": no version line */
};

/* kunit's TestCounts. errors are parse problems, not results. */
struct ks_ktap_counts {
	unsigned passed, failed, crashed, skipped, errors;
};

/* A `# key: value` attribute. */
struct ks_ktap_attr {
	char *key;
	char *value;
};

/* One test: the root, a parent (suite, parameterized case) or a case. Read-only: the
 * parser owns it; it stays valid until ks_ktap_free(). */
struct ks_ktap_test {
	char *name;                 /* "" when the log gave none (crashed placeholders) */
	unsigned number;            /* its place under its parent, from 1; 0 for the root */
	enum ks_ktap_status status;
	bool has_result;            /* its result line came */
	bool ok;                    /* that line said "ok" */
	bool counted;               /* it is a test of its own in the counts (see above): a
				     * case, or a bad parent whose cases passed */
	char *directive;            /* "SKIP", "TODO", ... as written, "" when none */
	char *reason;               /* the directive's text, "" when none */
	long plan;                  /* from "1..N", -1 when none */
	char **log;                 /* its diagnostics and other output, prefix stripped */
	size_t nlog;
	struct ks_ktap_attr *attrs;
	size_t nattrs;
	struct ks_ktap_test **children;
	size_t nchildren;
	struct ks_ktap_test *parent; /* NULL for the root */
	unsigned depth;             /* 0 for the root, 1 for its children, ... */
	unsigned long first_line;   /* its version, header or result line (from 1) */
	unsigned long result_line;  /* its result line, 0 when none came */
	struct ks_ktap_counts counts; /* its subtree, once it has ended */
};

/* A parse problem, in kunit's words. */
struct ks_ktap_error {
	unsigned long line;  /* input line where it was found */
	char *test;          /* the test it belongs to ("main" for the root) */
	char *msg;
};

/* Called when a parent begins (once its header and plan are read, before its first child)
 * and when any test ends (its result came, or it never will). t is valid until
 * ks_ktap_free(); the callbacks must not feed or free the parser. */
typedef void (*ks_ktap_cb)(const struct ks_ktap_test *t, void *data);

struct ks_ktap_callbacks {
	ks_ktap_cb start;  /* may be NULL */
	ks_ktap_cb end;    /* may be NULL */
	void *data;
};

/* Counters since ks_ktap_new(). */
struct ks_ktap_stats {
	unsigned long lines;      /* input lines */
	unsigned long before;     /* lines before the version line */
	unsigned long after;      /* lines after the end of the KTAP */
	unsigned long overlong;   /* lines longer than KS_KTAP_LINE_MAX, cut there */
	unsigned long dropped;    /* log lines dropped for KS_KTAP_LOG_MAX */
};

#define KS_KTAP_LINE_MAX 65536u     /* bytes kept of one line */
#define KS_KTAP_LOG_MAX (1u << 20)  /* bytes of log kept per test */
#define KS_KTAP_PLAN_MAX 1000000ul  /* a larger "1..N" is not a plan */

struct ks_ktap;

/* A parser for one log. NULL when out of memory. Free with ks_ktap_free(). */
struct ks_ktap *ks_ktap_new(void);

/* Frees p and its tree; NULL is fine. */
void ks_ktap_free(struct ks_ktap *p);

/* Sets the callbacks (copied; NULL: none). */
void ks_ktap_set_callbacks(struct ks_ktap *p, const struct ks_ktap_callbacks *cb);

/*
 * Parses len bytes, which may start and end anywhere; an unfinished line waits for the
 * next call. Calls the callbacks as tests begin and end. Returns 0, -EINVAL for a NULL p
 * or buf with len > 0 or after ks_ktap_finish(), -ENOMEM (after which p only frees).
 */
int ks_ktap_feed(struct ks_ktap *p, const void *buf, size_t len);

/*
 * The input has ended: parses an unfinished last line, then every planned test whose
 * result never came becomes CRASHED and every open parent ends. Calling it again does
 * nothing. Returns 0 or -ENOMEM.
 */
int ks_ktap_finish(struct ks_ktap *p);

/* Parses a whole buffer: ks_ktap_new(), feed, finish. NULL when out of memory. */
struct ks_ktap *ks_ktap_parse_buf(const void *buf, size_t len);

/* The root test, NULL until a version line came (and for ever when none did). */
const struct ks_ktap_test *ks_ktap_root(const struct ks_ktap *p);

/* Whether the KTAP has ended (finish, an end line, or the root's plan met). */
bool ks_ktap_done(const struct ks_ktap *p);

/* The counts so far: those of every test that has ended, and the errors found. */
void ks_ktap_counts(const struct ks_ktap *p, struct ks_ktap_counts *c);

/* The outcome of the counts so far (final once ks_ktap_done()). */
enum ks_ktap_outcome ks_ktap_outcome(const struct ks_ktap *p);

/* The errors found so far, in order; *n gets their number. Owned by p. */
const struct ks_ktap_error *ks_ktap_errors(const struct ks_ktap *p, size_t *n);

/* Copies the counters into *st. */
void ks_ktap_stats(const struct ks_ktap *p, struct ks_ktap_stats *st);

/* "PASS", "FAIL", ... ("?" when out of range). */
const char *ks_ktap_status_name(enum ks_ktap_status s);

/* "SUCCESS", "FAILURE", "TEST_CRASHED", ... ("?" when out of range). */
const char *ks_ktap_outcome_name(enum ks_ktap_outcome o);

/* kunit's outcome for counts: NO_TESTS when none counted, then crashed, failed, passed,
 * and SKIPPED when only skips counted. */
enum ks_ktap_outcome ks_ktap_counts_outcome(const struct ks_ktap_counts *c);

/* passed + failed + crashed + skipped. */
unsigned ks_ktap_counts_total(const struct ks_ktap_counts *c);

/* Adds status s to c as kunit does (NO_TESTS adds nothing); returns whether it counted. */
bool ks_ktap_counts_add(struct ks_ktap_counts *c, enum ks_ktap_status s);

/*
 * Writes kunit's summary line with every count, zeros too, and no newline:
 * "Testing complete. Ran N tests: passed: P, failed: F, crashed: C, skipped: S, errors: E".
 * Returns what snprintf() returns.
 */
int ks_ktap_summary(const struct ks_ktap_counts *c, char *buf, size_t size);

/* The value of attribute key on t, or NULL. */
const char *ks_ktap_attr(const struct ks_ktap_test *t, const char *key);

#endif
