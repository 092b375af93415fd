/* evfilter.h: the event filter language ("exception:14", "serial:/panic/") and rules of actions. */
#ifndef KSCOPE_EVFILTER_H
#define KSCOPE_EVFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/event.h>
#include <kscope/sym.h>
#include <kscope/types.h>

/*
 * A parsed filter: one SPEC of the language in docs/events.md, KIND[:ARG], e.g. "magic",
 * "magic:0x42", "exception:#PF", "interrupt:32-47", "syscall:0,1,60", "test:fail:mm.*",
 * "vm:panic", "serial:1:/oops|panic/i", "break:kmain+0x10", "watch:counter:4:rw".
 */
struct ks_evfilter;

/* What the monitor does with an event that a rule matches, weakest first: the values
 * compare, so the strongest of several is their maximum. */
enum ks_evaction {
	KS_EVACT_NONE,  /* no rule matched: the event is not shown */
	KS_EVACT_LOG,   /* show it */
	KS_EVACT_PAUSE, /* show it and pause the whole VM */
	KS_EVACT_DUMP,  /* show it, then the registers of every vCPU, a symbolized frame-pointer
			 * backtrace and the last events */
	KS_EVACT_STOP,  /* show it and destroy the VM */
};

/* A watchpoint's access, as bits: KS_EVACC_RW is both. */
enum ks_evaccess {
	KS_EVACC_WRITE = 1, /* "w" */
	KS_EVACC_READ = 2,  /* "r" */
	KS_EVACC_RW = 3,    /* "rw" */
};

/* The values lo..hi, both included. */
struct ks_evrange {
	uint64_t lo, hi;
};

/* A break or watch filter's target, for the monitor to arm. */
struct ks_evtarget {
	const char *expr;        /* as written: "kmain+0x10", "0xffffffff80001000"; borrowed
				  * from the filter */
	bool resolved;           /* addr is valid: a number, or ks_evfilter_resolve() ran */
	ks_gva_t addr;
	unsigned len;            /* watch: 1, 2, 4 or 8 bytes (8 unless given); break: 1 */
	enum ks_evaccess access; /* watch: KS_EVACC_WRITE unless given; break: 0 */
};

/*
 * Parses spec. Returns the filter (free with ks_evfilter_free()), or NULL with err filled:
 * -EINVAL with one line that quotes spec, says what is wrong with which part and gives its
 * 1-based column, e.g. "exception:1x4: bad vector '1x4' (column 11)" (ks_evfilter_caret()
 * draws it), or -ENOMEM.
 */
struct ks_evfilter *ks_evfilter_parse(const char *spec, struct ks_error *err);

/* Frees f; NULL is fine. */
void ks_evfilter_free(struct ks_evfilter *f);

/* Whether ev is one that f selects. */
bool ks_evfilter_match(const struct ks_evfilter *f, const struct ks_event *ev);

/*
 * Writes the caret form of text's parse error for a terminal: two lines, text and a row of
 * carets under the bad part, each indented by two blanks, without a final newline, e.g.
 * "  exception:1x4\n            ^^^". text is a filter spec, or with with_action a rule
 * (SPEC[=ACTION], as ks_evrule_parse() reads it). Always NUL-terminated when size > 0.
 * Returns the length it wanted (snprintf rules), or 0 with buf "" when text parses (or
 * when memory ran out re-parsing it).
 */
int ks_evfilter_caret(const char *text, bool with_action, char *buf, size_t size);

/* The spec f was parsed from (without a rule's "=ACTION"); borrowed from f. */
const char *ks_evfilter_spec(const struct ks_evfilter *f);

/* The kind f selects: a breakpoint for break, a watchpoint for watch; KS_EV_KIND_COUNT
 * for "any". */
enum ks_event_kind ks_evfilter_kind(const struct ks_evfilter *f);

/*
 * The values f selects among its kind's numbers (magic ids, vectors, syscall numbers) as
 * *ranges (borrowed from f), in the order written, names of vectors as their numbers.
 * Returns their count; 0 when f selects every value (no argument, or "*") and for kinds
 * without numbers.
 */
size_t ks_evfilter_ranges(const struct ks_evfilter *f, const struct ks_evrange **ranges);

/* Whether n is in f's numbers; true for every n when f has no ranges. */
bool ks_evfilter_has(const struct ks_evfilter *f, uint64_t n);

/* Fills set with the vectors an interrupt or exception filter selects, vector v as bit
 * v % 64 of set[v / 64] ("exception" alone is 0-31, "interrupt" alone 0-255); all zero for
 * other kinds, "any" included. */
void ks_evfilter_vectors(const struct ks_evfilter *f, uint64_t set[4]);

/* Fills *t for a break or watch filter and returns 0; -ENOENT for other kinds. */
int ks_evfilter_target(const struct ks_evfilter *f, struct ks_evtarget *t);

/*
 * Resolves a break or watch target written as SYMBOL[+-OFF] with t, so that it matches by
 * address (until then it matches events whose address symbol reads the same, "name" or
 * "name+0xoff", as kscope prints it). Returns 0 (also for other filters and numeric
 * targets), or -ENOENT ("break:nosuch: unknown symbol 'nosuch'") or -ERANGE (the offset
 * leaves 64 bits) with err filled. Resolving again uses the new table.
 */
int ks_evfilter_resolve(struct ks_evfilter *f, const struct ks_symtab *t,
			struct ks_error *err);

/* A serial filter's regex as written between the slashes, or NULL when it has none;
 * borrowed from f. *icase (may be NULL) gets whether it ignores case (the "i" flag). */
const char *ks_evfilter_regex(const struct ks_evfilter *f, bool *icase);

/* A serial filter's port (0 = COM1), or -1 when it takes every port (and for other kinds). */
int ks_evfilter_serial_port(const struct ks_evfilter *f);

/* ---- rules ---- */

/* A filter and what to do with the events it selects. */
struct ks_evrule {
	struct ks_evfilter *filter;
	enum ks_evaction action;
};

/* "none", "log", "pause", "dump", "stop"; "invalid" out of range. Static string. */
const char *ks_evaction_name(enum ks_evaction action);

/* The action called name ("log", "pause", "dump" or "stop"; not "none"), or -1. */
int ks_evaction_by_name(const char *name);

/*
 * Parses "SPEC=ACTION" into *rule; "SPEC" alone is a log rule. The action follows the last
 * '=' that comes after every '/', so a serial regex may hold '='. Returns 0 (free
 * rule->filter with ks_evfilter_free()), or -EINVAL with err filled as ks_evfilter_parse()
 * does, quoting the whole text ("exception:14=halt: unknown action 'halt': use log, pause,
 * dump or stop (column 14)"), or -ENOMEM. *rule is untouched on failure.
 */
int ks_evrule_parse(const char *text, struct ks_evrule *rule, struct ks_error *err);

/* An ordered set of rules, as the command line gives them. */
struct ks_evrules;

/* An empty rule set (free with ks_evrules_free()), or NULL with err filled (-ENOMEM). */
struct ks_evrules *ks_evrules_new(struct ks_error *err);

/* Frees rs and its filters; NULL is fine. */
void ks_evrules_free(struct ks_evrules *rs);

/* Adds a log rule for spec (--trace SPEC). Returns 0, or an error of ks_evfilter_parse(). */
int ks_evrules_add_trace(struct ks_evrules *rs, const char *spec, struct ks_error *err);

/* Adds a pause rule for spec (--pause-on SPEC). Returns 0, or an error of
 * ks_evfilter_parse(). */
int ks_evrules_add_pause_on(struct ks_evrules *rs, const char *spec, struct ks_error *err);

/* Adds the rule "SPEC=ACTION" (--on). Returns 0, or an error of ks_evrule_parse(). */
int ks_evrules_add_on(struct ks_evrules *rs, const char *text, struct ks_error *err);

/* The strongest action among the rules that match ev (stop > dump > pause > log), or
 * KS_EVACT_NONE when none does. */
enum ks_evaction ks_evrules_match(const struct ks_evrules *rs, const struct ks_event *ev);

/* The number of rules; ks_evrules_get(rs, i) below it gives them in the order added. */
size_t ks_evrules_count(const struct ks_evrules *rs);

/* Rule i (borrowed from rs), or NULL when i is out of range. */
const struct ks_evrule *ks_evrules_get(const struct ks_evrules *rs, size_t i);

/* Resolves every rule's target with t (see ks_evfilter_resolve()). Returns 0, or the first
 * failure with err filled. */
int ks_evrules_resolve(struct ks_evrules *rs, const struct ks_symtab *t,
		       struct ks_error *err);

#endif
