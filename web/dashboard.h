/* dashboard.h: the dashboard: its model of VMs, tests and console, its HTTP API and event stream, and its two sources. */
#ifndef KSCOPE_WEB_DASHBOARD_H
#define KSCOPE_WEB_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kscope/chan.h>
#include <kscope/ctl.h>
#include <kscope/error.h>
#include <kscope/loop.h>
#include <kscope/run.h>
#include <kscope/vmspec.h>

/*
 * The dashboard (docs/dashboard.md) is one HTTP server (http.h) on the caller's loop that
 * serves the page's static files and the JSON API under /api/. It keeps a model of what it
 * shows (the VMs, the test tree, each VM's recent console lines) so that any request, and the
 * `hello` of a page that connects late, sees the whole current state; every change to the
 * model is also pushed to each open event stream at once.
 *
 * What the model cannot answer (registers, memory, page tables, symbols, actions) goes to a
 * backend: the VM's supervisor for `kscope watch` (ks_dash_watch_new()), the run for
 * `kscope run --dashboard` (ks_dash_run_new()).
 */

struct ks_dash;

enum ks_dash_mode {
	KS_DASH_RUN,    /* a kscope run: the run drives its VMs; no controls */
	KS_DASH_WATCH,  /* kscope watch: one VM, through its supervisor */
};

/* A VM's state as the page shows it. */
enum ks_dash_vm_state {
	KS_DASH_VM_BOOTING,
	KS_DASH_VM_RUNNING,
	KS_DASH_VM_PAUSED,
	KS_DASH_VM_ENDED,
};

/* A test case's status as the page shows it. */
enum ks_dash_status {
	KS_DASH_PENDING,
	KS_DASH_RUNNING,
	KS_DASH_PASS,
	KS_DASH_FAIL,
	KS_DASH_SKIP,
	KS_DASH_TIMEOUT,
	KS_DASH_CRASHED,
	KS_DASH_NOTRUN,
};
#define KS_DASH_NSTATUS 8

/* Lines of console kept per VM for /api/console (the newest). */
#define KS_DASH_CONSOLE_LINES 1000u
/* Bytes /api/memory reads at most. */
#define KS_DASH_MAX_READ 4096u

/*
 * What the model does not know: supervisor-style requests for VM vm. req is a control
 * request (ctl.h) such as {"cmd": "regs"}, {"cmd": "read", "addr": N, "len": L, "phys": B},
 * {"cmd": "symbol", "expr": S}, {"cmd": "pagemap", "cpu": C}, {"cmd": "pause"},
 * {"cmd": "resume"}, {"cmd": "step", "cpu": C}, {"cmd": "snapshot", "action", "tag"},
 * {"cmd": "write", "addr", "data", "phys"} (borrowed). Returns 0 and the reply in *reply (a
 * new reference), or -errno with err's one line: -EINVAL (400), -ENOENT (404), -EOPNOTSUPP,
 * -EBUSY or -EIO (409: refused), -ENOTCONN (410: the VM ended), -ETIMEDOUT (504), others
 * (502).
 */
typedef int (*ks_dash_call_fn)(void *data, unsigned vm, json_t *req, json_t **reply,
			       struct ks_error *err);

/* Replaces VM vm's pause-on rules (filter specs, already checked; n may be 0). 0 or -errno
 * with err filled, as for ks_dash_call_fn. */
typedef int (*ks_dash_pause_on_fn)(void *data, unsigned vm, const char *const *rules, size_t n,
				   struct ks_error *err);

struct ks_dash_opts {
	enum ks_dash_mode mode;
	const char *title;         /* the page's title: the VM's name, the kernel */
	const char *addr;          /* NULL: 127.0.0.1 */
	uint16_t port;             /* 0: any free port */
	const char *token;         /* NULL: a random one */
	bool controls;             /* whether actions are served */
	const char *controls_why;  /* why not, when they are not */
	ks_dash_call_fn call;      /* NULL: every such request is 409 */
	ks_dash_pause_on_fn pause_on;
	void *data;
};

/* Fills o with the defaults: watch mode, no title, 127.0.0.1, any port, no backend. */
void ks_dash_opts_init(struct ks_dash_opts *o);

/*
 * Listens on o->addr:o->port and serves the dashboard on loop (not owned; it must outlive the
 * dashboard). Returns it (free with ks_dash_free()), or NULL with err filled: -EADDRINUSE
 * ("127.0.0.1:8080 is in use"), -EINVAL (a bad address), -ENOMEM.
 */
struct ks_dash *ks_dash_new(struct ks_loop *loop, const struct ks_dash_opts *o,
			    struct ks_error *err);

/* Closes every stream and connection and frees d; NULL is fine. */
void ks_dash_free(struct ks_dash *d);

/* "http://127.0.0.1:PORT/?token=TOKEN". Borrowed; valid until ks_dash_free(). */
const char *ks_dash_url(const struct ks_dash *d);

/* The port listened on. */
uint16_t ks_dash_port(const struct ks_dash *d);

/* The number of open event streams (pages watching). */
size_t ks_dash_streams(const struct ks_dash *d);

/* Ends every event stream and runs the loop until each has sent what was queued for it
 * (a page is told `end` before the process exits), at most timeout_ns. */
void ks_dash_flush(struct ks_dash *d, int64_t timeout_ns);

/* ---- the model: each call pushes what changed to every event stream ---- */

/* One VM, as ks_dash_set_vm() takes it (strings are copied; NULL: unknown). */
struct ks_dash_vm {
	unsigned vm;               /* 1-based */
	const char *name;
	enum ks_dash_vm_state state;
	const char *accel, *machine, *kernel;
	unsigned cpus, sockets, cores, threads;
	uint64_t memory_mib;
	uint64_t started_ns;       /* ks_loop_now_ns() when it started, for its uptime */
	const char *outcome;       /* how it ended, NULL while it has not */
};

/* Adds VM v->vm or replaces what is known of it; sends `vm` when something changed (the
 * uptime aside). 0 or -ENOMEM. */
int ks_dash_set_vm(struct ks_dash *d, const struct ks_dash_vm *v);

/* Changes only the state (and the outcome, when not NULL) of VM vm; sends `vm` when it
 * changed. 0, -ENOENT (no such VM) or -ENOMEM. */
int ks_dash_set_vm_state(struct ks_dash *d, unsigned vm, enum ks_dash_vm_state state,
			 const char *outcome);

/* The state of VM vm, or -1 if there is no such VM. */
int ks_dash_vm_state(const struct ks_dash *d, unsigned vm);

/* One test case, as ks_dash_set_case() takes it (strings are copied; NULL: none). */
struct ks_dash_case {
	const char *suite, *name;
	enum ks_dash_status status;
	unsigned vm;               /* 0: none */
	int64_t duration_ns;       /* -1: unknown */
	const char *reason, *fail_at, *diag, *dump;
};

/*
 * Adds case suite.name (at the end of its suite; a new suite at the end of the tree) or
 * replaces what is known of it; sends `test` when something changed. From then on the test
 * tree is not null. Returns the case's id (its position in the order cases were added, from
 * 0), or -ENOMEM.
 */
long ks_dash_set_case(struct ks_dash *d, const struct ks_dash_case *c);

/* The status of case suite.name, or -1 if there is no such case. */
int ks_dash_case_status(const struct ks_dash *d, const char *suite, const char *name);

/* Makes every case that is RUNNING on vm (0: on any VM) status, with reason; sends `test`
 * for each. For a VM that ended under its tests. */
void ks_dash_settle_running(struct ks_dash *d, unsigned vm, enum ks_dash_status status,
			    const char *reason);

/* Keeps one console line of VM vm (text of len bytes; ts in Unix seconds; lineno 0: one more
 * than the VM's last) and sends `console`. */
void ks_dash_console(struct ks_dash *d, unsigned vm, const char *text, size_t len, double ts,
		     uint64_t lineno);

/* Sends `event`: a monitor event (events.md's JSON; the reference is stolen) of VM vm. */
void ks_dash_event(struct ks_dash *d, unsigned vm, json_t *ev);

/* Marks VM vm paused (sending `vm` if that is news) and sends `paused` with why. */
void ks_dash_paused(struct ks_dash *d, unsigned vm, const char *why);

/* Sets (why not NULL) or clears the one line /api/info gives as "events_why": why monitor
 * events are not shown. */
void ks_dash_set_events_why(struct ks_dash *d, const char *why);

/* The run or the VM is over: sends `end` with why, which /api/info keeps as "end". The server
 * keeps serving. */
void ks_dash_end(struct ks_dash *d, const char *why);

/* ---- the model as JSON (new references; NULL only without memory) ---- */

json_t *ks_dash_info_json(const struct ks_dash *d);    /* GET /api/info */
json_t *ks_dash_vms_json(const struct ks_dash *d);     /* GET /api/vms */
json_t *ks_dash_tests_json(const struct ks_dash *d);   /* GET /api/tests; null before any case */
/* GET /api/console: the last tail lines of VM vm (NULL: no such VM). */
json_t *ks_dash_console_json(const struct ks_dash *d, unsigned vm, size_t tail);

/* "booting", "running", "paused", "ended". */
const char *ks_dash_vm_state_name(enum ks_dash_vm_state s);

/* "PENDING", "RUNNING", "PASS", "FAIL", "SKIP", "TIMEOUT", "CRASHED", "NOTRUN". */
const char *ks_dash_status_name(enum ks_dash_status s);

/* ---- kscope watch: one VM through its supervisor ---- */

struct ks_dash_watch;

struct ks_dash_watch_opts {
	const char *name;          /* the VM's name (required) */
	const char *rundir;        /* its runtime directory (required) */
	const char *addr;          /* NULL: 127.0.0.1 */
	uint16_t port;             /* 0: any free port */
	const char *token;         /* NULL: a random one */
	int64_t poll_ns;           /* 0: 500 ms between status reads */
};

/*
 * Serves the dashboard of the VM whose supervisor ctl is connected to (the watch owns ctl
 * from the call on, in every case): takes its status, follows its console and its events
 * (test, vm, serial and magic; KVM: vm and serial), reads its status every poll_ns and its
 * kt_ state when that may have changed, and forwards reads and actions to the supervisor.
 * Returns the watch, or NULL with err filled (the port is in use, a bad address, the VM is
 * gone already).
 */
struct ks_dash_watch *ks_dash_watch_new(struct ks_loop *loop, struct ks_ctl_client *ctl,
					const struct ks_dash_watch_opts *o,
					struct ks_error *err);

/* Disconnects from the supervisor (which undoes what the events needed), frees w. NULL ok. */
void ks_dash_watch_free(struct ks_dash_watch *w);

/* The dashboard (borrowed from w). */
struct ks_dash *ks_dash_watch_dash(struct ks_dash_watch *w);

/* True once the VM ended (then `end` was sent, and the dashboard only serves). */
bool ks_dash_watch_ended(const struct ks_dash_watch *w);

/* ---- kscope run --dashboard: the VMs and tests of a run ---- */

struct ks_dash_run;

struct ks_dash_run_opts {
	const struct ks_vmspec *spec;  /* the run's VM (borrowed for the call) */
	const char *addr;          /* NULL: 127.0.0.1 */
	uint16_t port;             /* 0: any free port */
	const char *token;         /* NULL: a random one */
};

/*
 * A dashboard for a run of spec's kernel: VMs from the run's VM events, the test tree from its
 * plan and test events, console lines from its line hook; symbols from the kernel file.
 * Registers, memory, page tables and actions are refused (409): the run drives its VMs.
 * Returns NULL with err filled (the port is in use, a bad address).
 */
struct ks_dash_run *ks_dash_run_new(struct ks_loop *loop, const struct ks_dash_run_opts *o,
				    struct ks_error *err);

/* Frees dr and its dashboard; NULL is fine. */
void ks_dash_run_free(struct ks_dash_run *dr);

/* The run whose plan and results events refer to (set before ks_run_exec()). */
void ks_dash_run_attach(struct ks_dash_run *dr, struct ks_run *r);

/* A ks_run_event_cb: data is the ks_dash_run. */
void ks_dash_run_event(const struct ks_run_event *ev, void *data);

/* A ks_run_line_cb: data is the ks_dash_run. */
void ks_dash_run_line(unsigned vm, const struct ks_chan_line *line, void *data);

/* The run is over: takes every test's final result, marks the VMs ended and sends `end`
 * with why. */
void ks_dash_run_finish(struct ks_dash_run *dr, const char *why);

/* The dashboard (borrowed from dr). */
struct ks_dash *ks_dash_run_dash(struct ks_dash_run *dr);

#endif
