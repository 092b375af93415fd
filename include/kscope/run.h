/* run.h: a test run: boot a kernel in VMs, follow its tests, survive its crashes and hangs, report. */
#ifndef KSCOPE_RUN_H
#define KSCOPE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <kscope/chan.h>
#include <kscope/error.h>
#include <kscope/loop.h>
#include <kscope/vmspec.h>

/*
 * A run boots the kernel of a VM spec under QEMU, in one or more VMs at once, and follows
 * its tests through two sources that it reconciles:
 *
 *   - KTAP on the console (COM1), parsed as it comes (ktap.h): results and diagnostics;
 *   - the kt_ in-memory state (kt_abi.h), read through the guest's RAM mapping: which test
 *     runs now, results even when the console is silent or garbled, and the exact test that
 *     was running when the kernel crashed or hung.
 *
 * A kernel that links kt_ (it has the symbol `kt_state`) is stopped once at READY, where its
 * records are filled and no test has started: the run watches writes to kt_state.phase
 * through QEMU's gdbstub, and the store of READY is the stop (kt_abi.h: the kernel reads its
 * selection only after the READY message that follows). There the run reads the plan (every
 * test the kernel's filter selected), may save a snapshot, and chooses which of those tests
 * this boot runs, in which order, by writing the records' status (KT_ST_FILTERED or
 * KT_ST_NONE) and, for shuffle, the order of the suite pointers and case records. That
 * choice is what lets VMs share the suites, a boot after a crash run only the tests that did
 * not run yet, and a restored snapshot run the next destructive test. A pass that another
 * follows on the same VM is stopped when the kernel writes the phase DONE.
 *
 * A kernel without kt_ (Linux with KUnit, say) runs on KTAP alone in one VM: no sharding, no
 * recovery after a crash.
 *
 * Everything happens on the caller's loop, in ks_run_exec(). The library never prints:
 * progress goes to the event callback, results to the accessors and report writers below.
 */
struct ks_run;

/* The outcome of one test in one round. */
enum ks_run_status {
	KS_RUN_NOTRUN,   /* never started: the run ended (timeout, interrupt) before it */
	KS_RUN_PASS,
	KS_RUN_FAIL,
	KS_RUN_SKIP,
	KS_RUN_TIMEOUT,  /* still running at its deadline (--test-timeout, or the run's) */
	KS_RUN_CRASHED,  /* running when the kernel crashed, or QEMU died */
};

/* How destructive tests (KT_ABI_F_DESTRUCTIVE) are kept from the tests after them. */
enum ks_run_isolate {
	KS_RUN_ISOLATE_SNAPSHOT, /* restore the snapshot taken at READY after each one */
	KS_RUN_ISOLATE_REBOOT,   /* each in a boot of its own */
	KS_RUN_ISOLATE_NONE,     /* none: they run among the others (to see what they break) */
};

/* What happened; the event callback gets these as they happen. */
enum ks_run_event_kind {
	KS_RUN_EV_PLAN,       /* the tests are known: ks_run_ntests() and friends work */
	KS_RUN_EV_VM_START,   /* a VM booted (vm, text: its name) */
	KS_RUN_EV_PASS,       /* a pass of tests began on vm from READY (text: "12 tests") */
	KS_RUN_EV_TEST_START, /* test began on vm */
	KS_RUN_EV_TEST_END,   /* test ended with status (reason says why when not PASS) */
	KS_RUN_EV_SUITE_END,  /* every test of suite has a result in round */
	KS_RUN_EV_VM_END,     /* a VM was destroyed or ended (text: how it ended) */
	KS_RUN_EV_NOTE,       /* something worth a line (text): a crash, a restore, ... */
	KS_RUN_EV_TICK,       /* about ten times a second, for clocks */
};
/* (New kinds may be added: a callback ignores the ones it does not know.) */

struct ks_run_event {
	enum ks_run_event_kind kind;
	unsigned vm;               /* 1-based VM number (slot), 0 when none */
	unsigned round;            /* 0-based repeat */
	size_t test;               /* TEST_*: the test's index (ks_run_test()) */
	size_t suite;              /* SUITE_END: the suite's index (ks_run_suite()) */
	enum ks_run_status status; /* TEST_END */
	const char *text;          /* VM_*, NOTE; and TEST_END: the reason, or NULL */
	uint64_t elapsed_ns;       /* since ks_run_exec() began */
};

typedef void (*ks_run_event_cb)(const struct ks_run_event *ev, void *data);

/* Called with each line of VM vm's console (COM1) as it comes (line is valid for the call
 * only), on every boot of that VM. */
typedef void (*ks_run_line_cb)(unsigned vm, const struct ks_chan_line *line, void *data);

/* Options; ks_run_opts_init() sets the defaults noted here. */
struct ks_run_opts {
	const struct ks_vmspec *spec;   /* the VM and its kernel (copied; required) */
	const char *const *filters;     /* kt.filter globs passed to the kernel (copied) */
	size_t nfilters;
	unsigned jobs;                  /* 1: VMs at once */
	int64_t timeout_ns;             /* 300 s: the whole run; < 0: none */
	int64_t test_timeout_ns;        /* 60 s: one test; < 0: none */
	unsigned repeat;                /* 1: rounds of the whole plan */
	bool shuffle;                   /* false: run suites and cases in a random order */
	uint64_t seed;                  /* 0: the shuffle's seed (0: one from the clock) */
	bool list;                      /* false: only find the plan (ks_run_exec() then stops;
					 * -EOPNOTSUPP for a kernel without kt_) */
	enum ks_run_isolate isolate;    /* KS_RUN_ISOLATE_SNAPSHOT */
	const char *log_dir;            /* NULL: no console logs; else vm<N>.log there */
	const char *rundir_base;        /* NULL: ks_vm_rundir_base() */
	ks_run_event_cb on_event;       /* NULL: none */
	void *event_data;
	ks_run_line_cb on_line;         /* NULL: none */
	void *line_data;
};

/* Fills o with the defaults above. */
void ks_run_opts_init(struct ks_run_opts *o);

/*
 * A run of o->spec's kernel. Reads what it needs of the kernel file (its symbols and magic
 * sites), nothing starts yet. Returns the run (free with ks_run_free()), or NULL with err
 * filled: a bad option, a log directory that cannot be made, -ENOMEM.
 */
struct ks_run *ks_run_new(const struct ks_run_opts *o, struct ks_error *err);

/* Destroys every VM still up and frees r; NULL is fine. */
void ks_run_free(struct ks_run *r);

/*
 * Runs the whole thing on loop (not owned) until every test of every round has a result, or
 * the run's timeout, or ks_run_stop(). Returns 0 when the run was done (whatever the tests
 * did: see ks_run_summary()), or -errno with err filled when it could not be: QEMU could not
 * start, no KTAP output and no kt_ state came from the kernel ("no KTAP output from the
 * kernel within 30 s"), the kernel stopped before its tests started, or its KTAP held no
 * tests. VMs are gone when it returns.
 */
int ks_run_exec(struct ks_run *r, struct ks_loop *loop, struct ks_error *err);

/* Ends the run soon (a signal, say): the tests still running become TIMEOUT with why as
 * reason, those not started NOTRUN. Safe from a loop callback. */
void ks_run_stop(struct ks_run *r, const char *why);

/* One test of the plan, in the kernel's order. */
struct ks_run_test {
	const char *suite;
	const char *name;
	uint32_t flags;   /* KT_ABI_F_DESTRUCTIVE, KT_ABI_F_PARAM, KT_ABI_F_OPT_IN */
	size_t suite_idx; /* its suite, for ks_run_suite() */
};

/* One suite of the plan: tests [first, first + n). */
struct ks_run_suite {
	const char *name;
	size_t first, n;
};

/* The plan, once known (after KS_RUN_EV_PLAN). Borrowed from r; NULL out of range. */
size_t ks_run_ntests(const struct ks_run *r);
const struct ks_run_test *ks_run_test(const struct ks_run *r, size_t i);
size_t ks_run_nsuites(const struct ks_run *r);
const struct ks_run_suite *ks_run_suite(const struct ks_run *r, size_t i);

/* What is known of one test in one round. Borrowed from r. */
struct ks_run_result {
	enum ks_run_status status;
	const char *reason;      /* one line for a test that did not pass, or NULL */
	const char *diag;        /* its KTAP diagnostics, lines joined by '\n', or NULL */
	const char *fail_at;     /* "file:line" of its first failure (kt_state), or NULL */
	const char *dump;        /* registers, backtraces, events, console tail; or NULL */
	int64_t duration_ns;     /* -1 when unknown */
	unsigned vm;             /* the VM it ran on, 0 if none */
	bool from_state;         /* the result came from kt_state: the console never gave it */
};

/* The result of test i in round (0-based), or NULL out of range. */
const struct ks_run_result *ks_run_result(const struct ks_run *r, unsigned round, size_t i);

/* The whole run in numbers. */
struct ks_run_summary {
	unsigned rounds;
	size_t tests;                 /* plan size */
	size_t pass, fail, skip, timeout, crashed, notrun; /* over every round */
	size_t flaky;                 /* tests that passed in a round and failed in another */
	unsigned vms;                 /* slots used */
	unsigned boots;               /* VMs booted in all */
	unsigned restores;            /* snapshot restores */
	bool kt;                      /* the kernel has kt_: the run followed kt_state too */
	bool from_state;              /* some result came from kt_state alone */
	uint64_t elapsed_ns;
	uint64_t seed;                /* the shuffle's seed */
};

void ks_run_summary(const struct ks_run *r, struct ks_run_summary *s);

/* Whether test i passed in some round and failed, timed out or crashed in another. */
bool ks_run_flaky(const struct ks_run *r, size_t i);

/*
 * Reads len bytes of the memory of the VM in slot n (1-based) at addr: guest-physical when
 * phys, else virtual, through the page tables of the CR3 the run last took from the VM. It
 * reads the VM's RAM mapping, so the VM runs on meanwhile (the bytes may be changing). Fills
 * *pa (not NULL) with the physical address of the first byte. Returns 0, or -ENODEV (no VM in
 * that slot now), -EAGAIN (no page tables known yet), -EFAULT (not mapped, or not RAM), with
 * err filled.
 */
int ks_run_read(struct ks_run *r, unsigned n, uint64_t addr, bool phys, void *buf, size_t len,
		uint64_t *pa, struct ks_error *err);

/* The console log of VM n (1-based), or NULL without --log-dir. Borrowed. */
const char *ks_run_log_path(const struct ks_run *r, unsigned vm);

/*
 * Writes the reports: merged KTAP (every round one after the other, valid KTAP version 1),
 * JUnit XML, JSON (report.h's, plus "kscope_run": per test and round its status, reason,
 * fail_at, source, and the flaky tests). Return 0, -ENOMEM or -EIO.
 */
int ks_run_write_ktap(const struct ks_run *r, FILE *f);
int ks_run_write_junit(const struct ks_run *r, FILE *f);
int ks_run_write_json(const struct ks_run *r, FILE *f);

/* "NOTRUN", "PASS", "FAIL", "SKIP", "TIMEOUT", "CRASHED" ("?" out of range). */
const char *ks_run_status_name(enum ks_run_status s);

#endif
