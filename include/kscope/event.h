/* event.h: one event of the ordered stream the monitor produces, and how to print it. */
#ifndef KSCOPE_EVENT_H
#define KSCOPE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kscope/types.h>

/* What happened. The names in comments are ks_event_kind_name()'s, which JSON uses;
 * filters use the same names, and `break` and `watch` for the last two. */
enum ks_event_kind {
	KS_EV_MAGIC,      /* "magic": the kernel executed the magic instruction */
	KS_EV_INTERRUPT,  /* "interrupt": a hardware or software interrupt was delivered */
	KS_EV_EXCEPTION,  /* "exception": a CPU exception (vectors 0-31) */
	KS_EV_SYSCALL,    /* "syscall": a system call entered the kernel */
	KS_EV_SYSRET,     /* "sysret": the kernel returned to user mode */
	KS_EV_TEST,       /* "test": a kt_ test started or ended */
	KS_EV_VM,         /* "vm": a lifecycle event (stop, resume, reset, shutdown, panic) */
	KS_EV_SERIAL,     /* "serial": a line on a serial port */
	KS_EV_BREAKPOINT, /* "breakpoint": a user breakpoint was hit */
	KS_EV_WATCHPOINT, /* "watchpoint": a user watchpoint fired */
	KS_EV_KIND_COUNT
};

#define KS_EVENT_SYM 96
#define KS_EVENT_TEXT 256

/* A test event's phase. */
enum ks_event_test_phase { KS_EV_TEST_START, KS_EV_TEST_END };

/* One event. A plain record: fill the common part and the member of the union that the
 * kind names; leave the rest zero. */
struct ks_event {
	uint64_t seq;            /* position in the stream, from 1 */
	uint64_t ts_ns;          /* host CLOCK_MONOTONIC since the stream began */
	int vcpu;                /* vCPU index, -1 when unknown (vm, serial, the -d int trace) */
	enum ks_event_kind kind;
	ks_gva_t pc;             /* the site: magic site, handler entry, faulting RIP, ...; 0 if none */
	char sym[KS_EVENT_SYM];  /* pc as "name+0xoff", "" when unknown */
	union {
		struct {
			uint64_t id, a0, a1;        /* RAX, RDI, RSI at the site */
		} magic;
		struct {
			unsigned vector;
			bool has_error;             /* exceptions that push an error code */
			uint64_t error_code;
			uint64_t cr2;               /* page faults: the faulting address */
			ks_gva_t rip;               /* where the CPU was when it happened */
			char rip_sym[KS_EVENT_SYM]; /* rip as "name+0xoff", "" when unknown */
			bool from_user;             /* CPL 3 at the time */
		} irq;                              /* KS_EV_INTERRUPT and KS_EV_EXCEPTION */
		struct {
			uint64_t nr;                /* syscall: RAX; sysret: the call returning */
			bool has_nr;                /* sysret: the monitor knew nr (RAX is the
						     * result by then, so it may not) */
			uint64_t args[6];           /* RDI, RSI, RDX, R10, R8, R9 */
			uint64_t ret;               /* sysret: RAX on the way out */
			ks_gva_t user_rip;          /* RCX: where user mode resumes */
		} sys;                              /* KS_EV_SYSCALL and KS_EV_SYSRET */
		struct {
			enum ks_event_test_phase phase;
			int suite_index, case_index;
			char suite[64], name[64];
			uint32_t status;            /* KT_ST_* of kt_abi.h; an end without a result
						     * (still KT_ST_RUNNING: the kernel crashed or
						     * the VM ended) is a crash */
		} test;
		struct {
			char what[32];              /* "stop", "resume", "reset", "shutdown", "panic" */
			char detail[128];           /* reason as QEMU gave it */
		} vm;
		struct {
			unsigned port;              /* 0 = COM1 */
			char text[KS_EVENT_TEXT];   /* the line, cut at KS_EVENT_TEXT - 1 bytes */
		} serial;
		struct {
			ks_gva_t addr;              /* the breakpoint, or the address accessed */
			char addr_sym[KS_EVENT_SYM]; /* addr as "name+0xoff", "" when unknown */
			char what[16];              /* "write", "read", "access" (either),
						     * "exec" (breakpoints) */
		} bp;                               /* KS_EV_BREAKPOINT and KS_EV_WATCHPOINT */
	};
};

/* "magic", "interrupt", ... for a kind; "invalid" out of range. Static string. */
const char *ks_event_kind_name(enum ks_event_kind kind);

/* The kind ks_event_kind_name() calls name, or -1. */
int ks_event_kind_by_name(const char *name);

/* The x86 name of an exception vector ("#PF"), or "" for other vectors. Static string. */
const char *ks_event_vector_name(unsigned vector);

/*
 * A test event's status by name: at the start "running" (or the KT_ST_* name it has: "none",
 * "pass", "fail", "skip", "filtered", else "unknown"); at the end "pass", "fail", "skip", or
 * "crash" for an end without a result. "" for other kinds. Static string.
 */
const char *ks_event_test_status_name(const struct ks_event *ev);

/*
 * Writes ev as one readable line without a newline: sequence number, seconds, vCPU and kind
 * in aligned columns, then the kind's fields, e.g.
 * "  1042   0.123456 cpu1  exception  14 #PF err=0x2 cr2=0xdead0000 rip=0xffffffff80001234
 * <kmain+0x34>" (one line). Control bytes in strings are escaped. Always NUL-terminated when
 * size > 0. Returns the length it wanted (snprintf rules).
 */
int ks_event_format(const struct ks_event *ev, char *buf, size_t size);

/* ev as a JSON object (one line of JSON Lines with json_dumps(JSON_COMPACT)); the schema is
 * in docs/events.md. New reference, NULL when out of memory. Addresses and register values
 * are "0x..." strings, so no precision is lost; strings that are not UTF-8 get U+FFFD for
 * each bad byte. */
json_t *ks_event_to_json(const struct ks_event *ev);

#endif
