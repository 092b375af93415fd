/* monitor.h: the event monitor: one ordered stream of a VM's events, and the rules that act on them. */
#ifndef KSCOPE_MONITOR_H
#define KSCOPE_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kscope/error.h>
#include <kscope/event.h>
#include <kscope/evfilter.h>
#include <kscope/gdb.h>
#include <kscope/loop.h>
#include <kscope/mem.h>
#include <kscope/sym.h>
#include <kscope/types.h>

struct ks_vm;

/*
 * The monitor watches one VM from outside (QEMU 7.2, unmodified) and turns what it sees into
 * the ordered stream of struct ks_event that docs/events.md describes, numbered and stamped
 * with the host's clock. It arms only what its rules ask for, so a kind that no rule names
 * costs the guest nothing:
 *
 *   magic      a breakpoint on every magic site of the kernel image (its kt_magic_sites
 *              section, else found by disassembly), from the first instruction of boot on;
 *   test       the same sites: tests start and end with the kt_ CASE_START and CASE_END
 *              messages, and their names come from the kernel's kt_state, read once when
 *              the kernel sends KT_MAGIC_READY;
 *   interrupt, exception
 *              a breakpoint on the IDT's handler entry of each vector asked for (IDTR and
 *              the gates read from the vCPUs and guest memory; read again at the start,
 *              after a pause and whenever the kernel executes `lidt`); or, in passive mode,
 *              QEMU's -d int trace (TCG only: every vector, early boot included, no
 *              breakpoint, but no vCPU index: vcpu is -1);
 *   syscall    a breakpoint on the syscall entry (--syscall-entry SYMBOL, or discovered);
 *   sysret     breakpoints on the `sysret` sites (and on the syscall entry when a rule
 *              selects sysrets by number, which the monitor can know only from the entry);
 *   break, watch
 *              the user's breakpoint or watchpoint (a symbol resolved with the table given);
 *   vm         the QMP events the VM's owner passes to ks_monitor_vm_event();
 *   serial     every line on the VM's serial ports.
 *
 * At a breakpoint every vCPU stops (all-stop). The monitor reads the stopping vCPU's
 * registers (one gdb round trip), tells the cause from its RIP, builds the events, applies
 * the rules and calls the event callback; then acts on the strongest action: none and log
 * continue at once, pause leaves the VM stopped until ks_monitor_resume(), dump produces a
 * dump (struct ks_monitor_dump) for the dump callback and continues, stop destroys the VM.
 * The vCPU gets past its breakpoint in the packet that continues: the host emulates the
 * instruction there when it can do so exactly (nops, push, mov and xchg of registers, add
 * and sub of an immediate, swapgs: docs/monitor.md lists when), else it is single-stepped
 * first.
 * A vm or serial event, or one from the trace, comes while the VM runs: pause and dump
 * stop it first with QMP.
 *
 * Under TCG every kind works; software breakpoints cost nothing until hit. Under KVM the
 * monitor uses hardware breakpoints, at most KS_MONITOR_KVM_SLOTS of them for breakpoints
 * and watchpoints together, and refuses rules that need more (and passive mode, which has
 * no trace under KVM).
 *
 * Everything runs on the loop the VM and the gdb client run on: callbacks come from it.
 */
struct ks_monitor;

#define KS_MONITOR_HISTORY 256       /* events kept for dumps, by default */
#define KS_MONITOR_DUMP_EVENTS 32    /* of those, how many a dump shows, by default */
#define KS_MONITOR_MAX_FRAMES 32     /* backtrace frames per vCPU at most */
#define KS_MONITOR_KVM_SLOTS 4       /* x86 debug registers: hardware breakpoints under KVM */

/* One frame of a frame-pointer backtrace. */
struct ks_monitor_frame {
	ks_gva_t pc;              /* frame 0: RIP; then return addresses */
	ks_gva_t fp;              /* the frame pointer the return address was found beside
				   * (0 for frame 0) */
	char sym[KS_EVENT_SYM];   /* pc as "name+0xoff", "" when unknown */
};

/* One vCPU in a dump. */
struct ks_monitor_cpu {
	unsigned vcpu;
	bool have_regs;           /* false: neither gdb nor HMP gave its registers */
	struct ks_x86_regs regs;  /* HMP leaves x87, SSE and K_GS_BASE zero */
	size_t nframes;           /* backtrace frames; 0 when none was walked for this vCPU */
	struct ks_monitor_frame frames[KS_MONITOR_MAX_FRAMES];
	char bt_end[96];          /* why the walk stopped: "end of chain" (RBP 0), or what
				   * could not be read; "" when not walked */
};

/* What a dump holds; valid during the dump callback only. */
struct ks_monitor_dump {
	const struct ks_event *event;  /* the event whose rule asked for it, or NULL */
	const char *regs_from;         /* "gdb", or "hmp" when gdb could not give them */
	unsigned ncpus;
	const struct ks_monitor_cpu *cpus;  /* vCPU i at index i; backtraces for the event's
					     * vCPU, or every vCPU when it has none */
	size_t nevents;
	const struct ks_event *events; /* the last events shown, oldest first */
};

/*
 * Called for every event that a rule selects (action above KS_EVACT_NONE), in stream
 * order, before the monitor acts on it. ev is valid during the call only. It may call
 * ks_monitor_* functions except ks_monitor_free(), and make gdb requests when the VM is
 * stopped (breakpoint events: it is).
 */
typedef void (*ks_monitor_event_cb)(struct ks_monitor *m, const struct ks_event *ev,
				    enum ks_evaction action, void *data);

/* Called with each dump; d is valid during the call only. */
typedef void (*ks_monitor_dump_cb)(struct ks_monitor *m, const struct ks_monitor_dump *d,
				   void *data);

/* Called when something went wrong that no call can return: a breakpoint that could not be
 * armed, an unreadable interrupt frame, a dump without registers. One line. */
typedef void (*ks_monitor_warn_cb)(struct ks_monitor *m, const char *msg, void *data);

/* Options; ks_monitor_opts_init() sets the defaults noted here. */
struct ks_monitor_opts {
	const char *kernel;          /* NULL: the ELF file the sites come from is the VM's
				      * kernel (its spec) */
	const char *syscall_entry;   /* NULL: the syscall entry's symbol, else discovered */
	bool passive;                /* false: true takes interrupts and exceptions from the
				      * -d int trace instead of breakpoints (TCG; start the VM
				      * with log_items "int"), those written from
				      * ks_monitor_new() on */
	const char *trace_path;      /* NULL: the trace file, else qemu-debug.log in the VM's
				      * runtime directory */
	bool no_emulation;           /* false: true gets a vCPU past every breakpoint but the
				      * magic ones by a single step, never by emulating the
				      * instruction there (to compare, or to rule it out) */
	size_t history;              /* KS_MONITOR_HISTORY: events kept (at least 1) */
	size_t dump_events;          /* KS_MONITOR_DUMP_EVENTS: events a dump shows */
	ks_monitor_event_cb on_event;  /* NULL: none */
	void *event_data;
	ks_monitor_dump_cb on_dump;    /* NULL: dumps are built and dropped */
	void *dump_data;
	ks_monitor_warn_cb on_warn;    /* NULL: warnings only reach ks_monitor_last_warning() */
	void *warn_data;
};

/* Fills o with the defaults above. */
void ks_monitor_opts_init(struct ks_monitor_opts *o);

/*
 * Creates the monitor of vm and arms what rules need. gdb is a client connected to vm's
 * gdbstub with the VM stopped (as connecting leaves it); the monitor takes its stop
 * callback (ks_gdb_on_stop()) and clears it at ks_monitor_free(). mem is vm's guest
 * memory (interrupt frames, backtraces, the test state; NULL: read through gdb). syms (may
 * be NULL) names addresses and resolves break and watch targets: rules is resolved with it
 * here and must outlive the monitor, as must every argument. The VM stays stopped:
 * ks_monitor_resume() runs it. Returns the monitor (free with ks_monitor_free()), or NULL
 * with err filled: a symbol no table has, a kernel image that cannot be scanned, a rule
 * that cannot work here ("events: 37 breakpoints needed (magic: 35, exception:14: 2) but
 * KVM allows 4 hardware breakpoints; run with --accel tcg"), a gdb failure, -ENOMEM.
 */
struct ks_monitor *ks_monitor_new(struct ks_loop *loop, struct ks_vm *vm, struct ks_gdb *gdb,
				  struct ks_mem *mem, const struct ks_symtab *syms,
				  struct ks_evrules *rules, const struct ks_monitor_opts *opts,
				  struct ks_error *err);

/*
 * Stops watching: removes the serial and trace subscriptions and timers, and the
 * breakpoints and watchpoints when the VM is still up and stopped (a running VM keeps them:
 * gdb cannot talk to it; detaching the client removes them). Call it before freeing the VM
 * or the client. Takes NULL. Not from a monitor callback.
 */
void ks_monitor_free(struct ks_monitor *m);

/*
 * Runs the VM: the first time after ks_monitor_new(), and after a pause (a pause action, a
 * pause from outside, ks_monitor_pause()). The IDT is read again first, and a vCPU held at a
 * breakpoint is moved past it (QEMU stops a vCPU continued from a breakpoint there again at
 * once: a VM continued by other means reports that event a second time). Returns 0 (also
 * when it already runs), -ENOTCONN when the VM has ended, -EPIPE when it stopped at its
 * shutdown or a panic (QEMU cannot run it again), or a gdb error, err filled.
 */
int ks_monitor_resume(struct ks_monitor *m, struct ks_error *err);

/*
 * Pauses the VM (QMP stop; the gdb client learns it from its stop reply; a VM stopped at a
 * breakpoint stays stopped once the monitor is done there). Returns 0 at once;
 * ks_monitor_paused() turns true when it has stopped. -ENOTCONN when the VM has ended.
 */
int ks_monitor_pause(struct ks_monitor *m, struct ks_error *err);

/*
 * Steps vCPU vcpu one instruction while the VM is held paused; the others stay where they
 * are. A vCPU held at one of the monitor's breakpoints is stepped over it (stepping ignores
 * breakpoints), so ks_monitor_resume() does not move it again. An event the step causes (a
 * watchpoint) is handled as any other, and the VM stays paused. Returns 0 with the vCPU's
 * registers after the step in *regs (may be NULL); -EBUSY while the VM runs, -EPIPE at its
 * shutdown or a panic, -ENOTCONN after it ended, -EINVAL for a vCPU it does not have, or a
 * gdb error, err filled.
 */
int ks_monitor_step(struct ks_monitor *m, unsigned vcpu, struct ks_x86_regs *regs,
		    struct ks_error *err);

/* True while the VM is held stopped: by a pause action, ks_monitor_pause(), a pause from
 * outside, or its shutdown (pause_on_shutdown); false while the monitor itself works on the
 * stopped VM (a dump, a step: its gdb client is busy then). */
bool ks_monitor_paused(const struct ks_monitor *m);

/* True once the VM has ended (gdb reported it, the connection closed, or
 * ks_monitor_vm_event() said so). */
bool ks_monitor_ended(const struct ks_monitor *m);

/*
 * Feeds a lifecycle event to the monitor: the VM's owner calls it from its ks_vm_on_event()
 * callback. name is QEMU's event name ("STOP", "RESUME", "RESET", "SHUTDOWN",
 * "GUEST_PANICKED"; the lower-case words of the filter language work too), or NULL when the
 * VM has ended. detail is the reason as QEMU gave it, or NULL (a SHUTDOWN's reason is then
 * taken from the VM). Stops and resumes that the monitor itself caused (every breakpoint
 * hit is one) are not events. Other names are ignored.
 */
void ks_monitor_vm_event(struct ks_monitor *m, const char *name, const char *detail);

/*
 * Produces a dump now for the dump callback (registers of every vCPU, backtraces of all of
 * them, the last events). The VM must be stopped (paused): -EBUSY while it runs, -ENOTCONN
 * after it ended.
 */
int ks_monitor_dump(struct ks_monitor *m, struct ks_error *err);

/* Copies the last events shown, at most max, oldest first, into out. Returns how many. */
size_t ks_monitor_history(const struct ks_monitor *m, struct ks_event *out, size_t max);

/* What the monitor has done so far. */
struct ks_monitor_stats {
	uint64_t events;        /* events built (the last sequence number) */
	uint64_t shown;         /* of those, selected by a rule */
	uint64_t hits;          /* breakpoint and watchpoint stops handled */
	uint64_t emulated;      /* sites passed by emulating their instruction */
	uint64_t stepped;       /* sites passed by a single step (magic sites: neither) */
	uint64_t unknown_stops; /* stops at no address of the monitor's (continued) */
	uint64_t idt_reads;     /* times the IDT was read */
	uint64_t dumps;
	uint64_t warnings;
	size_t breakpoints;     /* armed now (distinct addresses) */
	size_t watchpoints;     /* armed now */
	size_t magic_sites, handler_entries, sysret_sites, lidt_sites, user_breaks;
	bool syscall_entry;     /* armed on the syscall entry */
};

/* Copies the counters into *st. */
void ks_monitor_stats(const struct ks_monitor *m, struct ks_monitor_stats *st);

/*
 * Writes one line saying what is armed for which rule, e.g. "magic: 10 sites (kt_magic_sites);
 * exception:14: 1 handler entry, 2 lidt sites; syscall: entry syscall_entry (lstar)" into buf
 * (always NUL-terminated when size > 0). Returns the length it wanted (snprintf rules).
 */
int ks_monitor_describe(const struct ks_monitor *m, char *buf, size_t size);

/* The last warning (see ks_monitor_warn_cb), or NULL. Borrowed: valid until the next. */
const char *ks_monitor_last_warning(const struct ks_monitor *m);

/*
 * The dump as text for a terminal: for each vCPU its registers and, where walked, the
 * backtrace one frame a line ("  #1 0xffffffff8011afd0 <kt_run+0x30>"), then the last
 * events, one ks_event_format() line each. Returns a malloc'd string (caller frees), or NULL
 * when out of memory.
 */
char *ks_monitor_dump_format(const struct ks_monitor_dump *d);

/* The dump as a JSON object {"event", "regs_from", "cpus": [{"vcpu", "regs": {...},
 * "backtrace": [{"pc", "sym"}], "bt_end"}], "events": [...]}, with values as "0x..." strings.
 * New reference, NULL when out of memory. */
json_t *ks_monitor_dump_to_json(const struct ks_monitor_dump *d);

#endif
