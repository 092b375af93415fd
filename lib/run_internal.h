/* run_internal.h: what the files of the run engine share (run*.c): plan, batches, VMs, segments, results. */
#ifndef KSCOPE_RUN_INTERNAL_H
#define KSCOPE_RUN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kscope/chan.h>
#include <kscope/gdb.h>
#include <kscope/ktap.h>
#include <kscope/ktstate.h>
#include <kscope/mem.h>
#include <kscope/report.h>
#include <kscope/run.h>
#include <kscope/sym.h>
#include <kscope/vm.h>
#include <kscope/vtop.h>

#define RUN_SEC 1000000000ll
#define RUN_MS 1000000ll
#define RUN_NONE ((size_t)-1)
#define RUN_SNAPSHOT_TAG "kscope-ready"  /* the snapshot taken at READY */

/* ---- the plan (run_plan.c) ---- */

struct run_test {
	char *suite, *name;
	uint32_t flags;          /* KT_ABI_F_* */
	size_t suite_idx;
	struct ks_run_test pub;  /* what ks_run_test() hands out */
};

struct run_suite {
	char *name;
	uint32_t flags;
	size_t first, n;
	int64_t cost_ns;         /* partition weight: measured duration once known */
	struct ks_run_suite pub;
};

struct run_plan {
	struct run_test *tests;
	size_t ntests;
	struct run_suite *suites;
	size_t nsuites;
};

/* Builds the plan from a kt_state read at READY: every case the kernel selected (status
 * not FILTERED), suites in the kernel's order. 0 or -ENOMEM; an empty plan is no error. */
int run_plan_from_state(struct run_plan *p, const struct ks_kt_state *st);

/* Adds a test named suite.name at the end (KTAP-only kernels find their tests as they
 * run). Returns its index, or RUN_NONE when out of memory. */
size_t run_plan_add(struct run_plan *p, const char *suite, const char *name);

/* The index of suite.name, or RUN_NONE. */
size_t run_plan_find(const struct run_plan *p, const char *suite, const char *name);

void run_plan_free(struct run_plan *p);

/* One boot's worth of tests of one round (plan indices in plan order). */
struct run_batch {
	unsigned round;
	size_t *tests;
	size_t ntests;
	unsigned attempts;       /* boots that ran none of these tests (see run.c) */
	struct run_batch *next;
};

struct run_batch *run_batch_new(unsigned round, const size_t *tests, size_t n);
void run_batch_free(struct run_batch *b);

/*
 * Splits round `round` of plan p into at most `ways` batches, whole suites each, balanced by
 * the suites' cost (longest first onto the lightest batch; ties to the lower index), and
 * returns them as a list in batch order. Suites with a destructive test all go to the first
 * batch, which alone then needs a snapshot; with isolate REBOOT each destructive test gets a
 * batch of its own instead. NULL when out of memory (or for an empty plan).
 */
struct run_batch *run_partition(const struct run_plan *p, unsigned round, unsigned ways,
				enum ks_run_isolate isolate);

/* Puts tests (plan indices) in the shuffled order of round: suites, and the cases of each
 * suite, each in a permutation of seed and round. 0 or -ENOMEM. */
int run_order(const struct run_plan *p, size_t *tests, size_t n, uint64_t seed,
	      unsigned round);

/* A permutation of n items for the shuffle: the same seed and salt give the same order. */
void run_shuffle(size_t *items, size_t n, uint64_t seed, uint64_t salt);

/* ---- results (run_result.c) ---- */

struct run_result {
	enum ks_run_status status;
	char *reason;
	char **diag;             /* KTAP lines of the case's span, relative indentation */
	size_t ndiag;
	char *output;            /* other console lines of its span, '\n'-joined */
	char *fail_at;
	char *dump;
	int64_t duration_ns;
	unsigned vm;
	bool from_state;
	bool announced;          /* TEST_END sent */
	struct ks_run_result pub;   /* what ks_run_result() hands out */
	char *diag_text;
};

/* ---- one VM slot (run_vm.c, run_crash.c) ---- */

enum run_phase {
	RUN_VM_IDLE,      /* no VM */
	RUN_VM_START,     /* QEMU spawned, its QMP and console not connected yet */
	RUN_VM_BOOT,      /* started, heading for READY (or, KTAP-only, running) */
	RUN_VM_TESTS,     /* a segment runs */
	RUN_VM_DRAIN,     /* stopped or ended: waiting for the last console lines */
};

/* Why a segment stopped. */
enum run_stop {
	RUN_STOP_NONE,
	RUN_STOP_DONE,    /* at KT_MAGIC_DONE, VM paused: more segments follow */
	RUN_STOP_EXIT,    /* QEMU exited through isa-debug-exit with a kt_ code */
	RUN_STOP_PANIC,   /* pvpanic: the VM is paused */
	RUN_STOP_RESET,   /* triple fault or reset: the VM is paused at its shutdown */
	RUN_STOP_ENDED,   /* QEMU ended otherwise (killed, error, power-off) */
	RUN_STOP_HANG,    /* the test timeout passed: paused by the run */
	RUN_STOP_TIMEOUT, /* the run's timeout or ks_run_stop(): paused by the run */
};

/* A line of the VM's recent history, for dumps. */
#define RUN_EVENTS 32
struct run_evline {
	uint64_t ns;
	char text[120];
};

/* One pass of kt_run from READY: the tests chosen for it and what came out. */
struct run_seg {
	struct ks_ktap *ktap;
	size_t *tests;           /* the selection, in the order the kernel runs it */
	size_t ntests;
	unsigned round;
	uint64_t start_ns;
	uint64_t switch_ns;      /* lines that began before this belong to the last one */
	size_t cur;              /* plan index running now, RUN_NONE */
	uint64_t cur_start_ns;   /* host time it was first seen running */
	uint64_t cur_since_ns;   /* host time of the last progress (kt_state changed) */
	uint64_t last_line_ns;
	uint64_t last_result_ns;
	bool saw_version;
	struct ks_kt_state *state;  /* the last consistent read, or NULL */
	uint64_t state_seq;
	size_t done_tests;       /* results seen so far (for progress without kt_) */
	uint64_t *final_seen;    /* per test: when kt_state first showed it ended */
};

struct run_vm {
	struct ks_run *run;
	unsigned num;            /* 1-based */
	enum run_phase phase;
	struct ks_vm *vm;
	bool start_done;         /* the VM's start ended; start_err says how */
	struct ks_error start_err;
	struct ks_gdb *gdb;
	bool gdb_running;        /* continued through gdb; a stop will come */
	bool stopped;            /* the gdb client saw a stop we have not handled */
	struct ks_mem *mem;
	struct ks_vtop *vtop;
	uint64_t cr3;
	bool la57, have_cr3;
	uint64_t next_cr3_ns;
	FILE *log;
	uint64_t log_t0;
	int line_cb;
	struct run_batch *batch; /* the tests this VM owns, not yet in a segment */
	bool snapshot;           /* a READY snapshot exists */
	bool kt_ready;           /* this boot reached READY */
	struct ks_kt_state *ready_state; /* kt_state as the kernel left it at READY */
	bool watching;           /* a write watchpoint on kt_state.phase is armed */
	struct run_seg seg;
	bool in_seg;
	enum run_stop stop;
	char stop_why[600];
	uint64_t stop_ns;
	uint64_t next_poll_ns;
	bool qmp_panic, qmp_shutdown, ended;
	char shutdown_reason[32];
	struct run_evline events[RUN_EVENTS];
	unsigned nevents;
	unsigned boots;
};

/* ---- the run (run.c) ---- */

struct run_kernel {
	char *path;
	struct ks_symtab *syms;  /* NULL: no symbol table */
	ks_gva_t kt_state;       /* 0: not a kt_ kernel */
	bool kt;                 /* kt_state is there: the READY stop works */
};

struct ks_run {
	struct ks_run_opts o;
	struct ks_vmspec *spec;  /* with the filters appended */
	char **filters;
	struct run_kernel k;
	struct ks_loop *loop;
	struct run_plan plan;
	bool have_plan;
	struct run_result **results;  /* [round][test] */
	size_t results_n;        /* tests each round's array holds */
	bool *suite_done;        /* [round * nsuites + suite]: SUITE_END sent */
	struct run_batch *queue;
	bool queued;             /* the rounds were partitioned */
	struct run_vm *vms;
	unsigned nvms;
	uint64_t t0, t_end, deadline;
	bool stopping;
	char stop_why[600];
	bool saw_output;         /* a KTAP version line or a READY came */
	unsigned boots, restores;
	bool from_state;
	char last_end[600];      /* how the last VM ended */
	char early_why[600];     /* how the last boot that never got to READY stopped */
	struct ks_error failed;  /* a VM that could not be started or driven ends the run */
	unsigned next_round;     /* the next round to partition */
	char **log_paths;
	uint64_t next_tick_ns;
	struct ks_report *report;     /* built for the writers (run_report.c) */
	struct ks_ktap **ktaps;       /* one per round */
};

/* Sends an event to the caller. */
void run_emit(struct ks_run *r, enum ks_run_event_kind kind, unsigned vm, unsigned round,
	      size_t test, enum ks_run_status status, const char *text);

__attribute__((format(printf, 3, 4)))
void run_note(struct ks_run *r, unsigned vm, const char *fmt, ...);

/* The result slot of test in round (allocating rounds as needed), NULL out of range. */
struct run_result *run_result_at(struct ks_run *r, unsigned round, size_t test);

/* Records a final result and announces it (once). Takes reason etc. as they are in res. */
void run_result_set(struct ks_run *r, unsigned round, size_t test, unsigned vm,
		    enum ks_run_status status, const char *reason);

/* Frees the strings of one result. */
void run_result_clear(struct run_result *res);

/* The kernel has kt_ but v's boot ran its tests without stopping at READY: from now on the
 * run follows KTAP alone (each boot a whole round), and says why. */
void run_degrade(struct ks_run *r, struct run_vm *v);

/* Sends SUITE_END for suite s of round once every test of it has a result (once). */
void run_suite_end(struct ks_run *r, unsigned round, size_t s);

/* The plan became known: allocate per-round bookkeeping. 0 or -ENOMEM. */
int run_plan_ready(struct ks_run *r);

/* Puts tests back at the front of the queue (a crash cut their boot short). */
void run_requeue(struct ks_run *r, unsigned round, const size_t *tests, size_t n,
		 unsigned attempts);

/* Takes the next batch for a VM, or NULL. */
struct run_batch *run_take_batch(struct ks_run *r);

/* ---- the kernel file and its memory (run_kernel.c) ---- */

/* Loads the symbols of path and finds kt_state. 0, or -ENOMEM (a kernel without them is no
 * error: it runs on KTAP alone). */
int run_kernel_load(struct run_kernel *k, const char *path, struct ks_error *err);
void run_kernel_free(struct run_kernel *k);

/* Reads kt_state through v's translator; stopped: the VM is paused or ended, so the read
 * is taken as it is (ks_kt_state_read_stopped()). NULL with err filled when it cannot. */
struct ks_kt_state *run_state_read(struct run_vm *v, bool stopped, struct ks_error *err);

/* Reads only the header: seq, phase, current suite and case. 0 or -errno. */
int run_state_header(struct run_vm *v, struct kt_abi_state *h);

/*
 * Chooses the tests of the next pass at READY: every case of st (read at READY, with the
 * kernel's own selection) that is in `tests` runs, every other case is marked
 * KT_ST_FILTERED, counts follow; with order (shuffle), suites and their cases are put in
 * the order of `tests` too. The VM must be paused at READY. 0 or -errno with err filled.
 */
int run_state_select(struct run_vm *v, const struct ks_kt_state *st, const size_t *tests,
		     size_t n, bool order, struct ks_error *err);

/* ---- a VM slot (run_vm.c) ---- */

/*
 * Boots a VM for the slot (the batch may still be unknown): spawns QEMU and returns, the
 * slot in RUN_VM_START; run_vm_step() goes on once QEMU is up, and a start that fails there
 * sets r->failed. 0 or -errno with err filled.
 */
int run_vm_boot(struct run_vm *v, struct ks_error *err);

/* Does what the slot's state calls for now; called after every loop round. */
void run_vm_step(struct run_vm *v);

/* Ends what the VM does for ks_run_stop(): pauses it; its tests become TIMEOUT or NOTRUN. */
void run_vm_halt(struct run_vm *v);

/* Gives up on the VM after a failure of the run's own (what, why: a note): its batch goes
 * back to the queue, or after three such boots its tests are NOTRUN. */
void run_vm_abandon(struct run_vm *v, const char *what, const char *why);

/* Destroys the slot's VM and closes what belongs to that boot. */
void run_vm_teardown(struct run_vm *v);

/* Notes a line in the VM's history (for dumps). */
__attribute__((format(printf, 2, 3)))
void run_vm_event(struct run_vm *v, const char *fmt, ...);

/* Makes the run's handler take v's gdb stops (again, after a monitor had them). */
void run_vm_gdb_attach(struct run_vm *v);

/* Resumes the VM through gdb (or QMP without a client). 0 or -errno. */
int run_vm_continue(struct run_vm *v, struct ks_error *err);

/* Stops a running VM and waits for the stop. 0 or -errno. */
int run_vm_pause(struct run_vm *v);

/* Starts the next pass of the VM's batch on a VM paused at READY. 0 or -errno. */
int run_vm_next_pass(struct run_vm *v, struct ks_error *err);

/* Starts a segment with the given tests on a VM paused at READY. 0 or -errno. */
int run_seg_begin(struct run_vm *v, const size_t *tests, size_t n, bool final,
		  struct ks_error *err);

/* ---- segments: console, progress, results (run_seg.c) ---- */

/* Sets up seg for tests (copied) of round. 0 or -ENOMEM. */
int run_seg_init(struct run_seg *s, unsigned round, const size_t *tests, size_t n,
		 uint64_t now_ns);
void run_seg_free(struct run_seg *s);

/* One console line of the running segment (flags as ks_chan_line's). */
void run_seg_line(struct ks_run *r, struct run_vm *v, const char *text, size_t len,
		  uint64_t ts_ns);

/* Follows kt_state: progress events, the test timeout. Called every poll period. */
void run_seg_poll(struct ks_run *r, struct run_vm *v, uint64_t now_ns);

/*
 * Ends the segment: reconciles KTAP with the final kt_state read; the test running at a stop
 * other than DONE or EXIT gets status bad (TIMEOUT or CRASHED) with why and dump; results go
 * to the run. Puts in *left (malloc'd, caller frees) the selected tests that never started,
 * *nleft of them, and returns how many tests got a result.
 */
size_t run_seg_finish(struct ks_run *r, struct run_vm *v, enum ks_run_status bad,
		      const char *why, const char *dump, size_t **left, size_t *nleft);

/*
 * Follows a recorded console (text, len bytes) as one pass of a kernel without kt_: the
 * console path of a run without a VM, for tests. A test whose result never came is CRASHED.
 * 0 or -ENOMEM.
 */
int run_seg_replay(struct ks_run *r, const char *text, size_t len);

/* ---- crashes, hangs and dumps (run_crash.c) ---- */

/* Handles a segment stopped for v->stop: dump, results, and what runs next. */
void run_crash_handle(struct run_vm *v);

/* The dump of a stopped (or ended) VM as text, malloc'd; NULL when out of memory. */
char *run_dump(struct run_vm *v, const char *title);

/* ---- reports (run_report.c) ---- */

/* The run's results as KTAP text for round (plan order), malloc'd in *text. 0 or -ENOMEM. */
int run_report_ktap_text(const struct ks_run *r, unsigned round, char **text, size_t *len);

/* Frees the report the writers built. */
void run_report_free(struct ks_run *r);

#endif
