/* monitor_internal.h: the event monitor's shared state, and its pure helpers (for unit tests). */
#ifndef KSCOPE_MONITOR_INTERNAL_H
#define KSCOPE_MONITOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/dtrace.h>
#include <kscope/monitor.h>
#include <kscope/sites.h>
#include <kscope/vtop.h>

/* ---- pure helpers ---- */

/* True for the exception vectors whose delivery pushes an error code (8, 10-14, 17, 21,
 * 29, 30). */
bool ks_mon_has_error_code(unsigned vector);

/* The kind an event on vector gets: an exception for 0-31 but NMI (2), else an interrupt,
 * as the -d int trace classes them. */
enum ks_event_kind ks_mon_vector_kind(unsigned vector);

/* What the CPU pushed when it entered a handler. */
struct ks_mon_irq_frame {
	bool has_error;
	uint64_t error_code;
	uint64_t rip;
	uint16_t cs;
	uint64_t rflags;
	bool from_user;   /* CS RPL 3 */
};

/*
 * Decodes the interrupt frame at a handler's first instruction: raw holds the len bytes at
 * RSP, in slots of width bytes (8 in long mode, 4 in 32-bit protected mode): the error code
 * for vectors that push one, then RIP, CS, RFLAGS. Returns 0, or -EINVAL when len is too
 * short or width is neither 4 nor 8.
 */
int ks_mon_decode_frame(unsigned vector, const uint8_t *raw, size_t len, unsigned width,
			struct ks_mon_irq_frame *f);

/* One IDT gate. */
struct ks_mon_gate {
	bool present;
	unsigned type;      /* 0xe interrupt gate, 0xf trap gate (0x6, 0x7 in 16-bit), 0x5 task */
	unsigned dpl;
	uint16_t selector;
	ks_gva_t offset;    /* the handler */
};

/*
 * Decodes the gate of size bytes at raw: 16 in long mode, 8 in 32-bit protected mode.
 * Returns 1 when it leads to a handler (present interrupt or trap gate), 0 when not (a task
 * gate, a gate not present or of another type), -EINVAL for another size.
 */
int ks_mon_decode_gate(const uint8_t *raw, unsigned size, struct ks_mon_gate *g);

/* One vCPU of HMP's "info registers -a". */
struct ks_mon_hmp_cpu {
	unsigned index;            /* from "CPU#n" */
	struct ks_x86_regs regs;   /* general registers, RIP, RFLAGS, selectors and bases,
				    * CR0/2/3/4, EFER; the rest zero */
	ks_gva_t idt_base;
	uint32_t idt_limit;
	bool halted;               /* HLT=1 */
	uint64_t dr7;              /* the guest's own debug registers: enabled in bits 0-7 */
};

/*
 * Parses HMP's "info registers" or "info registers -a" text (64-bit "RAX=" or 32-bit
 * "EAX=" forms) into at most max entries of cpus, in the order printed. Returns how many
 * vCPUs it found, or -EINVAL when the text holds none.
 */
int ks_mon_parse_hmp_regs(const char *text, struct ks_mon_hmp_cpu *cpus, size_t max);

/*
 * Walks a frame-pointer chain: frame 0 is rip, then each frame's return address is the
 * quadword after the saved frame pointer at rbp, read through read(ctx, ...). Stops at a
 * zero frame pointer, one that does not grow (a loop or a switch of stacks), an address that
 * does not read, a zero return address, or max frames. Fills frames' pc and fp (not sym).
 * Returns the number of frames and in why (size bytes) the reason it stopped.
 */
size_t ks_mon_backtrace(ks_read_gva_fn read, void *ctx, ks_gva_t rip, ks_gva_t rbp,
			struct ks_monitor_frame *frames, size_t max, char *why, size_t size);

/* ---- getting past a breakpoint by emulating its instruction ---- */

/* capstone decoders for 64-, 32- and 16-bit code. */
struct ks_mon_x86;

/* Opens the decoders; NULL with err filled when capstone cannot (not loadable, out of
 * memory). Free with ks_mon_x86_free(), which takes NULL. */
struct ks_mon_x86 *ks_mon_x86_new(struct ks_error *err);
void ks_mon_x86_free(struct ks_mon_x86 *x);

#define KS_MON_EMUL_REGS 3   /* registers one emulated instruction writes at most, RIP aside */

/* What executing one instruction changes, for the host to apply. */
struct ks_mon_emul {
	const char *what;         /* the form: "nop", "xchg", "mov", "push", "add", "sub",
				   * "swapgs" */
	unsigned len;             /* its bytes: the vCPU goes on at RIP + len */
	size_t nregs;             /* registers that change, each once, RIP aside */
	struct ks_gdb_reg_write regs[KS_MON_EMUL_REGS];
	bool store;               /* a push: 8 bytes at store_gva (the new RSP) */
	ks_gva_t store_gva;
	uint64_t store_value;
};

/*
 * Works out what the instruction in the len bytes at code (those at r->rip) does to the
 * vCPU with registers r, when the host can apply that exactly: nop, pause, endbr64 and
 * multi-byte nops; xchg and mov between general registers, mov of an immediate; push of a
 * general register or an immediate (64-bit); add and sub of an immediate to a general
 * register, with CF, PF, AF, ZF, SF and OF computed as the CPU does; swapgs at CPL 0.
 * mode64 says the vCPU is known to run 64-bit code; otherwise only instructions that change
 * nothing in every mode the vCPU could be in (64-bit, compatibility or 32/16-bit protected
 * mode) qualify. The memory of a push is not checked here (ks_mon_emul_access()). Returns 0
 * with *e filled; -ENOTSUP for anything else (other instructions, prefixes that change them,
 * memory operands, a vCPU in real mode or single-stepping itself with TF), -EINVAL when the
 * bytes do not decode.
 */
int ks_mon_emulate(struct ks_mon_x86 *x, const uint8_t *code, size_t len,
		   const struct ks_x86_regs *r, bool mode64, struct ks_mon_emul *e);

/*
 * Checks that the vCPU with registers r could access len bytes at gva (write: a store,
 * else an instruction fetch) without a fault and without the CPU changing the page tables:
 * the page translates through r's CR3, the range lies in one page of guest RAM, every level
 * has its accessed bit (and the leaf its dirty bit, for a store), and the permissions allow
 * it (writable; user pages for CPL 3; no user page under SMEP or SMAP for CPL 0-2; no page
 * under protection keys; executable for a fetch). With paging off the address is physical.
 * Returns 0 with the physical address in *gpa, -EFAULT when the access would fault or set a
 * bit, or a read error of mem.
 */
int ks_mon_emul_access(struct ks_mem *mem, const struct ks_x86_regs *r, ks_gva_t gva,
		       size_t len, bool write, ks_gpa_t *gpa);

/* The value of register reg in r, for the registers an emulated instruction may write. */
uint64_t ks_mon_emul_reg(const struct ks_x86_regs *r, enum ks_x86_reg reg);

/* Applies e to a copy of the registers, as the vCPU would see them after the instruction
 * (RIP included); the store is the caller's. For tests and for messages. */
void ks_mon_emul_apply(const struct ks_mon_emul *e, struct ks_x86_regs *r);

/* One rule's share of breakpoints, for the KVM message. */
struct ks_mon_need {
	const char *what;  /* "magic", a rule's spec */
	size_t count;
};

/*
 * Writes KVM's refusal of total breakpoints and watchpoints, n needs saying whose they are,
 * into buf (size bytes, always NUL-terminated): "events: 37 breakpoints needed (magic: 35,
 * exception:14: 2) but KVM allows 4 hardware breakpoints; run with --accel tcg".
 */
void ks_mon_kvm_message(const struct ks_mon_need *needs, size_t n, size_t total,
			unsigned slots, char *buf, size_t size);

/* ---- the monitor ---- */

/* What a breakpoint address is for (a bit set: one address may serve several). */
enum mon_role {
	ROLE_MAGIC = 1u << 0,
	ROLE_HANDLER = 1u << 1,
	ROLE_SYSCALL = 1u << 2,
	ROLE_SYSRET = 1u << 3,
	ROLE_LIDT = 1u << 4,
	ROLE_BREAK = 1u << 5,
};

struct mon_bp {
	ks_gva_t addr;
	unsigned roles;
	uint64_t vectors[4];     /* ROLE_HANDLER: the vectors asked for whose gate is here */
	bool armed;
	char sym[KS_EVENT_SYM];
};

struct mon_wp {
	ks_gva_t addr;
	unsigned len;
	enum ks_gdb_bp_type type;
	bool armed;
};

/* What the rules ask for. */
struct mon_want {
	bool magic, test, syscall, sysret, syscall_nr, serial, vm;
	uint64_t vectors[4];     /* handler entries to break on (none in passive mode) */
	bool trace;              /* passive: some rule wants interrupts or exceptions */
};

struct mon_suite {
	char *name;
	size_t ncases;
	char **cases;
};

/* Per vCPU: the syscall in flight, so that its sysret can name it. */
struct mon_sys {
	bool valid;
	uint64_t nr, rcx;
};

struct ks_monitor {
	struct ks_loop *loop;
	struct ks_vm *vm;
	struct ks_gdb *g;
	struct ks_mem *mem;
	struct ks_mem *own_mem;          /* a reader over gdb when no mem was given */
	const struct ks_symtab *syms;
	struct ks_evrules *rules;
	struct ks_monitor_opts o;
	struct ks_vtop *vt;
	struct ks_sites *sites;
	bool kvm;
	enum ks_gdb_bp_type bp_type;     /* SW under TCG, HW under KVM */
	unsigned nvcpus;
	struct mon_want want;

	struct mon_bp *bps;              /* by ascending address */
	size_t nbps, capbps;
	bool defer;                      /* collecting: arm once all is known */
	struct mon_wp *wps;
	size_t nwps;
	size_t nmagic, nsysret, nlidt;   /* sites armed per role, for describe() */
	ks_gva_t syscall_entry;
	const char *magic_from;          /* "kt_magic_sites" or "disassembly" */

	/* the stream */
	uint64_t seq, t0;
	struct ks_event *hist;           /* ring of shown events */
	size_t hist_cap, hist_n, hist_next;

	/* run control */
	struct ks_gdb_stop stop;         /* the stop being handled */
	int64_t work_timer, vmstop_timer;
	unsigned busy;                   /* inside a cycle: nothing else may continue the VM */
	bool paused, halted, ended, started;
	bool want_pause, want_dump, want_stop;
	struct ks_event dump_ev;
	/* QEMU 7.2 stops again at once when a vCPU continues from a breakpoint: the one that
	 * stopped must get past its site first (a step, or for the no-op magic instruction a
	 * move of RIP). */
	bool skip, stepping;              /* stepping: the step's stop reply is the step's */
	unsigned skip_vcpu, skip_len;    /* skip_len 0: emulate or step */
	ks_gva_t skip_rip;
	/* Getting past other sites by emulating their instruction (monitor_hit.c): from the
	 * registers read at the stop, while nothing held the VM since (skip_fresh). */
	struct ks_mon_x86 *x86;
	struct ks_x86_regs skip_regs;
	unsigned skip_roles;
	bool skip_fresh;
	bool dr7_known, dr7_armed;       /* the guest's own debug registers, at the last HMP read */
	uint64_t p_ok;                   /* registers (by number) the stub took a P write for */
	uint64_t lost_seen;              /* ks_gdb_lost_writes() when last looked at */
	bool qmp_stop_inflight, freeing;
	bool expect_sigint;              /* the stop sent may still come as a stop reply */
	bool stop_ours;                  /* the stop being handled is the monitor's doing */
	struct ks_qmp *qmp_stop_q;       /* where the stop in flight went */
	int64_t qmp_stop_id;
	uint64_t own_stops, own_resumes, qmp_stops;

	struct mon_sys *sys;             /* nvcpus of them */

	/* tests */
	bool tests_loaded;
	size_t nsuites;
	struct mon_suite *suites;
	bool case_running;
	int cur_suite, cur_case, cur_vcpu;

	/* other sources */
	int *chan_ids;                   /* line callback id per serial port, 0 for none */
	unsigned nchans;
	struct ks_dtrace_follow *trace;

	struct ks_monitor_stats st;
	char warning[256];
};

/* monitor.c */
/* True when a breakpoint might be passed by emulating a push, which needs the guest's debug
 * registers known (mon_dr7_refresh()). */
bool mon_wants_dr7(const struct ks_monitor *m);
__attribute__((format(printf, 2, 3)))
void mon_warn(struct ks_monitor *m, const char *fmt, ...);
/* Numbers and stamps ev (ts: ks_loop_now_ns() of when it happened), applies the rules,
 * keeps and reports it when selected, and notes what its action asks for. Returns it. */
enum ks_evaction mon_emit(struct ks_monitor *m, struct ks_event *ev, uint64_t ts);
/* Acts on what the events asked for once the VM is stopped, and continues it unless it is
 * to stay stopped. Does nothing inside a cycle. Returns 0 or the error of continuing. */
int mon_settle(struct ks_monitor *m, struct ks_error *err);
/* Formats addr with the symbols into buf (KS_EVENT_SYM); "" when none holds it. */
void mon_sym(const struct ks_monitor *m, ks_gva_t addr, char *buf);
/* Points the translator at the address space of regs (identity when paging is off);
 * returns the reader to use and its context. */
ks_read_gva_fn mon_reader(struct ks_monitor *m, const struct ks_x86_regs *regs, void **ctx);

/* monitor_arm.c */
int mon_plan(struct ks_monitor *m, struct ks_error *err);
int mon_arm_static(struct ks_monitor *m, struct ks_error *err);
struct mon_bp *mon_bp_find(struct ks_monitor *m, ks_gva_t addr);
/* Gives addr the roles in add (creating its entry), arms or disarms it to match. */
int mon_bp_update(struct ks_monitor *m, ks_gva_t addr, unsigned add, unsigned remove,
		  struct ks_error *err);
void mon_disarm_all(struct ks_monitor *m);
size_t mon_hw_used(const struct ks_monitor *m);

/* monitor_idt.c */
int mon_idt_refresh(struct ks_monitor *m, struct ks_error *err);
/* Reads whether the guest has debug registers enabled (HMP), as mon_idt_refresh() does too:
 * until then no push is emulated. 0 or -errno. */
int mon_dr7_refresh(struct ks_monitor *m, struct ks_error *err);

/* monitor_hit.c */
/* Steps vcpu one instruction; the stop is the step's, not an event. 0 or -errno. */
int mon_step(struct ks_monitor *m, unsigned vcpu, struct ks_gdb_stop *st,
	     struct ks_error *err);
void mon_on_stop(struct ks_gdb *g, const struct ks_gdb_stop *stop, void *data);
void mon_handle_trap(struct ks_monitor *m);


/* monitor_test.c */
void mon_test_magic(struct ks_monitor *m, const struct ks_event *magic,
		    const struct ks_x86_regs *regs);
void mon_test_crash(struct ks_monitor *m, uint64_t ts);
void mon_test_free(struct ks_monitor *m);

/* monitor_dump.c */
int mon_dump(struct ks_monitor *m, const struct ks_event *ev, struct ks_error *err);

/* monitor_src.c */
int mon_sources_start(struct ks_monitor *m, struct ks_error *err);
void mon_sources_stop(struct ks_monitor *m);
/* Stops a running VM with QMP so that what the events asked for can be done. */
void mon_request_stop(struct ks_monitor *m);

#endif
