/* dtrace.h: QEMU's `-d int` trace (TCG) as interrupt and exception events, from buffers or a file. */
#ifndef KSCOPE_DTRACE_H
#define KSCOPE_DTRACE_H

#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/event.h>
#include <kscope/loop.h>
#include <kscope/sym.h>

/*
 * Under TCG, `qemu-system-x86_64 -d int -D FILE` logs every interrupt and exception the
 * vCPUs take in protected or long mode, from the first instruction of boot on, with no
 * breakpoint and no help from the kernel (KVM logs nothing). Each is one record line
 *
 *     "    42: v=0e e=0002 i=0 cpl=0 IP=0008:ffffffff80116bc5 pc=ffffffff80116bc5
 *      SP=0010:ffffc00000026c18 CR2=00000000dead0000"          (one line in the file)
 *
 * then a register dump. A hardware interrupt is announced by "Servicing hardware
 * INT=0x40" just before its record; "check_exception old: 0x.. new 0x.." lines come before
 * exceptions and show double and triple faults; -d cpu_reset adds "CPU Reset (CPU n)" with a
 * dump, and "Triple fault"; pc and q35 firmware adds "SMM: enter" / "SMM: after RSM" with
 * dumps. The record's number N counts records over all vCPUs: the trace never says which
 * vCPU took an event.
 *
 * Each record becomes one struct ks_event with vcpu -1:
 *   - kind KS_EV_INTERRUPT for vectors 32-255, for hardware interrupts (announced by a
 *     "Servicing" line) and for NMI (vector 2, never announced); KS_EV_EXCEPTION for the
 *     other vectors 0-31, CPU exceptions and software `int3` / `int $n` alike;
 *   - irq.vector from v=; irq.has_error and irq.error_code from e= only for an exception
 *     the CPU raised (i=0, not hardware) on a vector that pushes an error code (8, 10-14,
 *     17, 21, 29, 30): QEMU prints e=0000 for all others; irq.cr2 from CR2= for a #PF
 *     the CPU raised;
 *   - irq.rip and pc from pc= (CS base + RIP); irq.from_user when cpl=3;
 *   - sym and irq.rip_sym as "name+0xoff" when symbols were given and a kernel symbol holds
 *     the address, else "" (always "" from ring 3);
 *   - ts_ns: ks_loop_now_ns() when the record was parsed; seq 0 (the monitor numbers its
 *     stream).
 * A triple fault (a "check_exception old: 0x8" line, or "Triple fault" alone) becomes a
 * KS_EV_VM event with what "reset" and detail "triple fault". Everything else is counted and
 * otherwise ignored; no input, however malformed, makes the parser fail.
 *
 * QEMU writes each piece of a record with its own write(), so with several vCPU threads
 * (MTTCG) another vCPU's line can land inside a record line, or between a record and its
 * " CR2=..." tail. The parser cuts a line where a known line start appears inside it and
 * holds a record whose tail has not come until it comes (a CR2 tail only for #PF), another
 * record without its tail begins, 64 more lines have passed or the input ends (a follower
 * also lets it go after KS_DTRACE_POLL_NS); such a record is delivered without cr2, and a
 * complete record may overtake it. A tail from another vCPU's record of the same kind can
 * be misattributed.
 */
struct ks_dtrace;

/* Called once per event; ev is valid during the call only. */
typedef void (*ks_dtrace_cb)(const struct ks_event *ev, void *data);

/* Counters since ks_dtrace_new() or the last ks_dtrace_reset(). */
struct ks_dtrace_stats {
	uint64_t lines;        /* lines seen (after cutting interleaved ones apart) */
	uint64_t events;       /* events delivered: interrupts + exceptions + triple faults */
	uint64_t interrupts;
	uint64_t exceptions;
	uint64_t hw_announced; /* "Servicing [virtual] hardware INT" lines */
	uint64_t check_exception; /* "check_exception" lines */
	uint64_t triple_faults;
	uint64_t resets;       /* "CPU Reset" lines */
	uint64_t smm;          /* "SMM: ..." lines */
	uint64_t dump_lines;   /* register-dump lines ("RAX=...", "ES =...", ...) */
	uint64_t skipped;      /* lines not understood, empty ones included */
	uint64_t malformed;    /* record lines without a vector or an address */
	uint64_t overlong;     /* lines longer than KS_DTRACE_LINE_MAX, cut there */
	uint64_t held;         /* records whose tail was not on their line */
};

#define KS_DTRACE_LINE_MAX 4096u  /* bytes; the longest QEMU 7.2 line is about 130 */

/* A parser. NULL when out of memory. Free with ks_dtrace_free(). */
struct ks_dtrace *ks_dtrace_new(void);

/* Frees t; NULL is fine. A held record or unfinished line is dropped: call
 * ks_dtrace_finish() first to have them. */
void ks_dtrace_free(struct ks_dtrace *t);

/* Names addresses in events with syms (borrowed: it must outlive t; NULL: no names). */
void ks_dtrace_set_symbols(struct ks_dtrace *t, const struct ks_symtab *syms);

/*
 * Parses len bytes of trace, which may start and end anywhere: an unfinished line waits in
 * t for the next call. Calls cb (may be NULL) for each event completed. Returns the number
 * of events delivered, or -EINVAL for a NULL t or buf with len > 0.
 */
int ks_dtrace_feed(struct ks_dtrace *t, const char *buf, size_t len, ks_dtrace_cb cb,
		   void *data);

/*
 * The input has ended: parses an unfinished last line and delivers a held record. Returns
 * the number of events delivered. t may be fed again afterwards (a file that grows on).
 */
int ks_dtrace_finish(struct ks_dtrace *t, ks_dtrace_cb cb, void *data);

/* Forgets all state and counters, as for a new trace (a truncated or replaced file). */
void ks_dtrace_reset(struct ks_dtrace *t);

/* Copies the counters into *st. */
void ks_dtrace_stats(const struct ks_dtrace *t, struct ks_dtrace_stats *st);

/*
 * Following a trace file while QEMU writes it. QEMU writes the -D file unbuffered, one
 * write() per piece of a record, as events happen. The follower watches the file with
 * inotify (IN_MODIFY) and reads whatever is new when it changes, so an event reaches the
 * callback one loop round after QEMU wrote it (tens of microseconds); a timer every
 * KS_DTRACE_POLL_NS also reads, which finds a file created after the follower started,
 * notices a truncated or replaced file (the parser restarts from its beginning), and is the
 * only way when inotify is unavailable: latency then up to that period. At most
 * KS_DTRACE_READ_MAX bytes are read per wakeup so that a long trace cannot starve the loop;
 * the rest follows in the next rounds.
 */
struct ks_dtrace_follow;

#define KS_DTRACE_POLL_NS (100 * 1000000ull)
#define KS_DTRACE_READ_MAX (4u << 20)

/*
 * Follows the trace file at path on loop (it need not exist yet), from its first byte,
 * calling cb(ev, data) for each event. Returns the follower (free with
 * ks_dtrace_follow_free()), or NULL with err filled (-ENOMEM, a timer the loop refused).
 * cb must not free the follower.
 */
struct ks_dtrace_follow *ks_dtrace_follow(struct ks_loop *loop, const char *path,
					  ks_dtrace_cb cb, void *data, struct ks_error *err);

/*
 * Reads what the file holds now, without waiting for the loop (for example once QEMU has
 * exited), and with finish != 0 also ends the input (ks_dtrace_finish()). Returns the
 * number of events delivered, or -errno when the file cannot be read (-ENOENT while it
 * does not exist).
 */
int ks_dtrace_follow_poll(struct ks_dtrace_follow *f, int finish);

/*
 * Skips what the file holds now, up to its last complete line: only what QEMU writes from
 * here on becomes events (for a follower that joins a VM that has run a while, whose past
 * events would otherwise come as new ones). A file that does not exist yet is read from its
 * start when it appears. Returns 0, or -errno when the file cannot be read.
 */
int ks_dtrace_follow_skip(struct ks_dtrace_follow *f);

/* The follower's parser: for its counters and ks_dtrace_set_symbols(). Owned by f. */
struct ks_dtrace *ks_dtrace_follow_parser(struct ks_dtrace_follow *f);

/* Stops following: removes f from the loop, closes the file, frees f. NULL is fine. Not
 * from inside f's own callback. */
void ks_dtrace_follow_free(struct ks_dtrace_follow *f);

#endif
