/* test_dtrace.c: the -d int parser: golden traces in any chunks, interleaved vCPUs, junk, a followed file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/dtrace.h>
#include <kscope/loop.h>
#include <kscope/sym.h>

#define MS 1000000ull
#define MAX_EVENTS 64

static char dir[] = "/tmp/kscope-dtrace-XXXXXX";

/* What the callback saw. */
struct seen {
	struct ks_event ev[MAX_EVENTS];
	uint64_t at[MAX_EVENTS];     /* ks_loop_now_ns() at delivery */
	size_t n;
};

static void collect(const struct ks_event *ev, void *data)
{
	struct seen *s = data;

	assert_true(s->n < MAX_EVENTS);
	assert_int_equal(ev->vcpu, -1);
	s->at[s->n] = ks_loop_now_ns();
	s->ev[s->n++] = *ev;
}

static char *read_golden(const char *name, size_t *len)
{
	const char *base = getenv("KSCOPE_DTRACE_DATA");
	char path[512];
	FILE *f;
	char *buf = malloc(1 << 20);

	assert_non_null(base);
	assert_non_null(buf);
	snprintf(path, sizeof(path), "%s/%s", base, name);
	assert_non_null(f = fopen(path, "r"));
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

/* ---- golden traces ---- */

#define I KS_EV_INTERRUPT
#define X KS_EV_EXCEPTION
#define V KS_EV_VM

struct want {
	enum ks_event_kind kind;
	unsigned vector;
	int has_error;
	uint64_t error, cr2, rip;
	int user;
};

static const struct want irq_suite[] = {
	{ I, 0x40, 0, 0, 0, 0xffffffff8010a8c2, 0 },  /* APIC timer, announced */
	{ I, 0xf0, 0, 0, 0, 0xffffffff8010c0ea, 0 },  /* an IPI */
	{ X, 3, 0, 0, 0, 0xffffffff801137e0, 0 },     /* int3 (i=1) */
	{ X, 6, 0, 0, 0, 0xffffffff801137e2, 0 },     /* ud2 */
	{ X, 0, 0, 0, 0, 0xffffffff801137ee, 0 },     /* div by 0 */
	{ X, 13, 1, 0, 0, 0xffffffff801137fb, 0 },    /* non-canonical access */
	{ X, 14, 1, 0, 0xffffc00000434238, 0xffffffff80113810, 0 },
	{ X, 14, 1, 2, 0xffffc00000434238, 0xffffffff80113820, 0 },
	{ X, 6, 0, 0, 0, 0xffffffff801137e2, 0 },
	{ X, 6, 0, 0, 0, 0xffffffff801137e2, 0 },
	{ X, 3, 0, 0, 0, 0xffffffff801137e0, 0 },
	{ X, 14, 1, 0, 0x1000, 0xffffffff8010da08, 0 },
	{ X, 14, 1, 0, 0x401000, 0xffffffff8010d9e0, 0 },
	{ X, 14, 1, 5, 0xffffffff80109000, 0x40010f, 1 },  /* ring 3 reads the kernel */
	{ X, 13, 1, 0, 0, 0x400123, 1 },                   /* ring 3 privileged insn */
};

static const struct want page_fault[] = {
	{ I, 0x40, 0, 0, 0, 0xffffffff8010a8c2, 0 },
	{ I, 0xf0, 0, 0, 0, 0xffffffff8010c0ea, 0 },
	{ X, 14, 1, 2, 0xdead0000, 0xffffffff80117115, 0 },
	{ I, 2, 0, 0, 0, 0xffffffff8010c0ea, 0 },     /* NMI: interrupt, never announced */
};

static const struct want triple_fault[] = {
	{ I, 0x40, 0, 0, 0, 0xffffffff8010a8c2, 0 },
	{ I, 0xf0, 0, 0, 0, 0xffffffff8010c0ea, 0 },
	{ X, 6, 0, 0, 0, 0xffffffff80117128, 0 },
	{ X, 13, 1, 0x62, 0, 0xffffffff80117128, 0 }, /* loading a bad IDT entry */
	{ X, 8, 1, 0, 0, 0xffffffff80117128, 0 },     /* double fault */
	{ V, 0, 0, 0, 0, 0, 0 },                      /* then the triple fault */
};

static const struct want pc_smm[] = {
	{ I, 0x40, 0, 0, 0, 0xffffffff8010a8c2, 0 },
	{ I, 0xf0, 0, 0, 0, 0xffffffff8010c0ea, 0 },
	{ X, 14, 1, 2, 0xdead0000, 0xffffffff80117115, 0 },
};

static const struct golden {
	const char *file;
	const struct want *want;
	size_t n;
	struct ks_dtrace_stats st;   /* the counters that must match (events filled in) */
} goldens[] = {
	{ "irq_suite.log", irq_suite, 15,
	  { .lines = 356, .hw_announced = 2, .check_exception = 11, .resets = 1, .dump_lines = 327 } },
	{ "page_fault.log", page_fault, 4,
	  { .lines = 115, .hw_announced = 2, .check_exception = 1, .resets = 1, .dump_lines = 107 } },
	{ "triple_fault.log", triple_fault, 6,
	  { .lines = 140, .hw_announced = 2, .check_exception = 4, .resets = 1, .dump_lines = 127,
	    .triple_faults = 1 } },
	{ "pc_smm.log", pc_smm, 3,
	  { .lines = 104, .hw_announced = 2, .check_exception = 1, .smm = 2, .dump_lines = 96 } },
};

static void check_events(const struct seen *s, const struct want *w, size_t n)
{
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++) {
		const struct ks_event *e = &s->ev[i];
		assert_int_equal(e->kind, w[i].kind);
		if (e->kind == KS_EV_VM) {
			assert_string_equal(e->vm.what, "reset");
			assert_string_equal(e->vm.detail, "triple fault");
			continue;
		}
		assert_int_equal(e->irq.vector, w[i].vector);
		assert_int_equal(e->irq.has_error, w[i].has_error);
		assert_true(e->irq.error_code == w[i].error);
		assert_true(e->irq.cr2 == w[i].cr2);
		assert_true(e->irq.rip == w[i].rip);
		assert_true(e->pc == w[i].rip);
		assert_int_equal(e->irq.from_user, w[i].user);
		assert_string_equal(e->sym, "");
		assert_true(e->ts_ns > 0);
	}
}

static void check_stats(const struct ks_dtrace *t, const struct golden *g)
{
	struct ks_dtrace_stats st;

	ks_dtrace_stats(t, &st);
	assert_true(st.events == g->n);
	assert_true(st.lines == g->st.lines);
	assert_true(st.hw_announced == g->st.hw_announced);
	assert_true(st.check_exception == g->st.check_exception);
	assert_true(st.resets == g->st.resets);
	assert_true(st.smm == g->st.smm);
	assert_true(st.dump_lines == g->st.dump_lines);
	assert_true(st.triple_faults == g->st.triple_faults);
	assert_true(st.interrupts + st.exceptions + st.triple_faults == st.events);
	assert_true(st.skipped == 0 && st.malformed == 0 && st.overlong == 0 && st.held == 0);
}

/* Feeds buf in chunks: 0 = whole, 1 = byte by byte, else random sizes from that seed. */
static void feed_chunked(struct ks_dtrace *t, const char *buf, size_t len, unsigned how,
			 struct seen *s)
{
	size_t off = 0;
	int total = 0;

	srand(how);
	while (off < len) {
		size_t n = how == 0 ? len : how == 1 ? 1 : 1 + (size_t)rand() % 3000;
		n = n < len - off ? n : len - off;
		int rc = ks_dtrace_feed(t, buf + off, n, collect, s);
		assert_true(rc >= 0);
		total += rc;
		off += n;
	}
	total += ks_dtrace_finish(t, collect, s);
	assert_int_equal(total, s->n);
}

static void golden_traces(void **state)
{
	(void)state;

	for (size_t g = 0; g < sizeof(goldens) / sizeof(*goldens); g++) {
		size_t len;
		char *buf = read_golden(goldens[g].file, &len);
		for (unsigned how = 0; how < 8; how++) {
			struct ks_dtrace *t = ks_dtrace_new();
			struct seen *s = calloc(1, sizeof(*s));
			assert_non_null(t);
			feed_chunked(t, buf, len, how, s);
			check_events(s, goldens[g].want, goldens[g].n);
			check_stats(t, &goldens[g]);
			ks_dtrace_reset(t);     /* a second run gives the same */
			memset(s, 0, sizeof(*s));
			feed_chunked(t, buf, len, how, s);
			check_events(s, goldens[g].want, goldens[g].n);
			free(s);
			ks_dtrace_free(t);
		}
		free(buf);
	}
	ks_dtrace_free(NULL);
}

/* ---- single records ---- */

static void kinds_and_fields(void **state)
{
	static const struct {
		const char *text;
		enum ks_event_kind kind;
		unsigned vector;
		int has_error;
		uint64_t error, cr2;
	} cases[] = {
		/* int $0x80 from ring 3: interrupt, no error code */
		{ "     7: v=80 e=0000 i=1 cpl=3 IP=0023:0000000000400010 pc=0000000000400010 "
		  "SP=002b:00007fff00000000 env->regs[R_EAX]=0000000000000001\n", I, 0x80, 0, 0, 0 },
		/* a legacy PIC interrupt on vector 14 is no page fault */
		{ "Servicing hardware INT=0x0e\n     8: v=0e e=0000 i=0 cpl=0 IP=0008:0000000000001000 "
		  "pc=0000000000001000 SP=0010:0000000000002000 CR2=0000000000000000\n", I, 14, 0, 0, 0 },
		/* int $14 by software: no error code pushed, no CR2 meaning */
		{ "     9: v=0e e=0000 i=1 cpl=0 IP=0008:0000000000001000 pc=0000000000001000 "
		  "SP=0010:0000000000002000 CR2=0000000000000042\n", X, 14, 0, 0, 0 },
		/* #GP with a selector error code wider than four digits */
		{ "    10: v=0d e=1fff0 i=0 cpl=0 IP=0008:0000000000001000 pc=0000000000001000 "
		  "SP=0010:0000000000002000 env->regs[R_EAX]=0000000000000000\n", X, 13, 1, 0x1fff0, 0 },
		/* 32-bit protected mode, count past six digits, no pc= (IP offset used) */
		{ "1234567: v=06 e=0000 i=0 cpl=0 IP=0008:00100012 SP=0010:00200000 "
		  "env->regs[R_EAX]=00000001\n", X, 6, 0, 0, 0 },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		struct ks_dtrace *t = ks_dtrace_new();
		struct seen s = { .n = 0 };
		assert_int_equal(ks_dtrace_feed(t, cases[c].text, strlen(cases[c].text), collect, &s),
				 1);
		assert_int_equal(s.ev[0].kind, cases[c].kind);
		assert_int_equal(s.ev[0].irq.vector, cases[c].vector);
		assert_int_equal(s.ev[0].irq.has_error, cases[c].has_error);
		assert_true(s.ev[0].irq.error_code == cases[c].error);
		assert_true(s.ev[0].irq.cr2 == cases[c].cr2);
		ks_dtrace_free(t);
	}
	struct ks_dtrace *t = ks_dtrace_new();
	struct seen s = { .n = 0 };
	const char *rec = "     1: v=06 e=0000 i=0 cpl=0 IP=0008:0000000000100012 pc=0000000000100012 "
			  "SP=0010:0000000000200000 env->regs[R_EAX]=0000000000000001\n";
	assert_int_equal(ks_dtrace_feed(t, rec, strlen(rec), NULL, NULL), 1);  /* cb may be NULL */
	assert_true(s.ev[0].irq.rip == 0 && s.n == 0);
	assert_int_equal(ks_dtrace_feed(NULL, rec, 1, NULL, NULL), -EINVAL);
	assert_int_equal(ks_dtrace_feed(t, NULL, 1, NULL, NULL), -EINVAL);
	assert_int_equal(ks_dtrace_feed(t, NULL, 0, NULL, NULL), 0);
	ks_dtrace_free(t);
}

/* Symbols name kernel addresses, never ring-3 ones. */
static void symbol_names(void **state)
{
	char path[256];
	FILE *f;
	size_t len;
	char *buf = read_golden("irq_suite.log", &len);
	struct ks_dtrace *t = ks_dtrace_new();
	struct seen *s = calloc(1, sizeof(*s));
	(void)state;

	snprintf(path, sizeof(path), "%s/System.map", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("0000000000400000 T user_code\nffffffff80100000 T text_start\n"
	      "ffffffff801137e0 T irqt_int3\n"
	      "ffffffff801137e2 T irqt_ud2\nffffffff801137f0 T irqt_after\n", f);
	fclose(f);
	struct ks_symtab *syms = ks_sym_load(path, NULL);
	assert_non_null(syms);
	ks_dtrace_set_symbols(t, syms);
	feed_chunked(t, buf, len, 0, s);
	assert_string_equal(s->ev[2].sym, "irqt_int3");
	assert_string_equal(s->ev[2].irq.rip_sym, "irqt_int3");
	assert_string_equal(s->ev[4].sym, "irqt_ud2+0xc");
	assert_string_equal(s->ev[13].sym, "");   /* ring 3 */
	assert_string_equal(s->ev[0].sym, "text_start+0xa8c2");
	ks_dtrace_free(t);
	ks_sym_free(syms);
	unlink(path);
	free(s);
	free(buf);
}

/* ---- vCPUs writing into each other's records ---- */

static const char pf_head[] = "     2: v=0e e=0002 i=0 cpl=0 IP=0008:ffffffff80117115 "
			      "pc=ffffffff80117115 SP=0010:ffffc00000026c18";
static const char pf_tail[] = " CR2=00000000dead0000\n";
static const char timer_head[] = "     3: v=40 e=0000 i=0 cpl=0 IP=0008:ffffffff8010a8c2 "
				 "pc=ffffffff8010a8c2 SP=0010:ffffffff80127f88";
static const char timer_tail[] = " env->regs[R_EAX]=00000000009a6805\n";
static const char dump[] = "RAX=00000000009a6805 RBX=0000000000000002 RCX=00000000009a6805 "
			   "RDX=0000000000000000\nRSI=00000000009d8989 RDI=0000000000989680 "
			   "RBP=ffffffff80127fa0 RSP=ffffffff80127f88\n";

static void interleaved(void **state)
{
	char buf[4096];
	const struct {
		const char *what;
		uint64_t pf_cr2;         /* the #PF's CR2 as delivered */
		size_t first;            /* index of the #PF among the two events */
		uint64_t held, skipped;
	} cases[] = {
		/* a whole announced timer record between the #PF's line and its tail */
		{ "announced", 0xdead0000, 1, 1, 0 },
		/* another vCPU's dump glued to the #PF's line */
		{ "dump", 0xdead0000, 0, 1, 0 },
		/* two records cut short: the timer's line takes the #PF's tail, the #PF goes
		 * without it at the end and the timer's own tail is left over */
		{ "two heads", 0, 1, 1, 1 },
	};
	(void)state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		if (c == 0)
			snprintf(buf, sizeof(buf), "%sServicing hardware INT=0x40\n%s%s%s%s%s", pf_head,
				 timer_head, timer_tail, dump, pf_tail, dump);
		else if (c == 1)
			snprintf(buf, sizeof(buf), "%s%s%s%s%s%s", pf_head, dump, pf_tail, dump,
				 timer_head, timer_tail);
		else
			snprintf(buf, sizeof(buf), "%s%s%s%s", pf_head, timer_head, pf_tail,
				 timer_tail);
		for (unsigned how = 0; how < 4; how++) {
			struct ks_dtrace *t = ks_dtrace_new();
			struct seen s = { .n = 0 };
			struct ks_dtrace_stats st;
			feed_chunked(t, buf, strlen(buf), how, &s);
			assert_int_equal(s.n, 2);
			const struct ks_event *pf = &s.ev[cases[c].first];
			const struct ks_event *tm = &s.ev[1 - cases[c].first];
			assert_int_equal(pf->irq.vector, 14);
			assert_true(pf->irq.cr2 == cases[c].pf_cr2);
			assert_true(pf->irq.error_code == 2);
			assert_int_equal(tm->irq.vector, 0x40);
			assert_int_equal(tm->kind, KS_EV_INTERRUPT);
			ks_dtrace_stats(t, &st);
			assert_true(st.held == cases[c].held);
			assert_true(st.skipped == cases[c].skipped);
			assert_true(st.malformed == 0);
			ks_dtrace_free(t);
		}
	}
}

/* A record whose tail never comes is delivered at the end of the input. */
static void held_until_finish(void **state)
{
	struct ks_dtrace *t = ks_dtrace_new();
	struct seen s = { .n = 0 };
	char buf[512];
	(void)state;

	snprintf(buf, sizeof(buf), "%s\n", pf_head);
	assert_int_equal(ks_dtrace_feed(t, buf, strlen(buf), collect, &s), 0);
	assert_int_equal(ks_dtrace_finish(t, collect, &s), 1);
	assert_int_equal(s.n, 1);
	assert_true(s.ev[0].irq.cr2 == 0);
	/* and a last line without its newline */
	assert_int_equal(ks_dtrace_feed(t, timer_head, strlen(timer_head), collect, &s), 0);
	assert_int_equal(ks_dtrace_feed(t, timer_tail, strlen(timer_tail) - 1, collect, &s), 0);
	assert_int_equal(ks_dtrace_finish(t, collect, &s), 1);
	assert_int_equal(s.ev[1].irq.vector, 0x40);
	assert_int_equal(ks_dtrace_finish(t, collect, &s), 0);
	ks_dtrace_free(t);
}

/* ---- junk ---- */

static void malformed_input(void **state)
{
	static const char *const lines[] = {
		"", ": v=", "    1: v=", "    1: v=zz pc=", "    1: v=0e", "    1: v=1ff pc=1 CR2=1",
		"    1: v=0e e= i= cpl= IP= pc= SP= CR2=", "    1: v=0e IP=0008 CR2=5",
		"check_exception old:", "check_exception old: 0x8", "Servicing hardware INT=0x",
		"Servicing hardware INT=0xzz", " CR2=", " CR2=zz", " env->regs[R_EAX]=", "RAX",
		"=", "Triple fault", "x: v=1 pc=2", "1: v=1: v=2: v=3 pc=4",
	};
	static char big[3 * KS_DTRACE_LINE_MAX];
	struct ks_dtrace *t = ks_dtrace_new();
	struct seen s = { .n = 0 };
	struct ks_dtrace_stats st;
	(void)state;

	for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
		ks_dtrace_feed(t, lines[i], strlen(lines[i]), collect, &s);
		ks_dtrace_feed(t, "\n", 1, collect, &s);
	}
	ks_dtrace_finish(t, collect, &s);
	ks_dtrace_stats(t, &st);
	assert_true(st.malformed >= 4);
	assert_true(s.n <= 6);
	memset(big, 'x', sizeof(big));
	memcpy(big + sizeof(big) - 40, "     1: v=0e pc=1 CR2=2\n", 24);
	ks_dtrace_feed(t, big, sizeof(big), collect, &s);
	ks_dtrace_stats(t, &st);
	assert_true(st.overlong == 1);

	/* random bytes, then golden text with random damage, in random chunks */
	size_t len;
	char *gold = read_golden("irq_suite.log", &len);
	static const char alphabet[] = " :=\nv0e9xCR2pc-\0\xff";
	char *copy = malloc(len);
	srand(99);
	for (int round = 0; round < 300; round++) {
		memcpy(copy, gold, len);
		for (int k = 0; k < 40; k++)
			copy[(size_t)rand() % len] = round < 50 ? (char)rand()
					   : alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
		struct seen *junk = calloc(1, sizeof(*junk));
		struct ks_dtrace *u = ks_dtrace_new();
		for (size_t off = 0; off < len;) {
			size_t n = 1 + (size_t)rand() % 500;
			n = n < len - off ? n : len - off;
			assert_true(ks_dtrace_feed(u, copy + off, n, NULL, junk) >= 0);
			off += n;
		}
		ks_dtrace_finish(u, NULL, NULL);
		ks_dtrace_stats(u, &st);
		assert_true(st.lines > 0 && st.events <= 40);
		ks_dtrace_free(u);
		free(junk);
	}
	free(copy);
	free(gold);
	ks_dtrace_free(t);
}

/* ---- following a file ---- */

struct writer {
	struct ks_loop *loop;
	const char *path;
	const char *buf;
	size_t len, off, piece;
	struct seen *seen;
	size_t want;
};

/* Appends the next piece of the trace, as QEMU would. */
static void write_piece(struct ks_loop *l, int64_t id, void *data)
{
	struct writer *w = data;
	int fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	size_t n = w->len - w->off < w->piece ? w->len - w->off : w->piece;
	(void)id;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, w->buf + w->off, n), (ssize_t)n);
	close(fd);
	w->off += n;
	if (w->off < w->len)
		ks_loop_add_timer(l, MS, 0, write_piece, w);
}

static void run_until(struct ks_loop *l, const struct seen *s, size_t want, uint64_t limit_ns)
{
	uint64_t end = ks_loop_now_ns() + limit_ns;

	while (s->n < want && ks_loop_now_ns() < end)
		ks_loop_run_once(l, 10 * (int64_t)MS);
}

static void follow_file(void **state)
{
	char path[256];
	size_t len;
	char *buf = read_golden("irq_suite.log", &len);
	struct ks_loop *l = ks_loop_new(NULL);
	struct seen *s = calloc(1, sizeof(*s));
	struct ks_error err = { 0 };
	(void)state;

	snprintf(path, sizeof(path), "%s/qemu-debug.log", dir);
	unlink(path);
	struct ks_dtrace_follow *f = ks_dtrace_follow(l, path, collect, s, &err);
	if (!f)
		fail_msg("%s", err.msg);
	assert_int_equal(ks_dtrace_follow_poll(f, 0), -ENOENT);
	run_until(l, s, 1, 20 * MS);            /* nothing there yet: nothing comes */
	assert_int_equal(s->n, 0);

	struct writer w = { .loop = l, .path = path, .buf = buf, .len = len, .piece = 997 };
	ks_loop_add_timer(l, MS, 0, write_piece, &w);
	run_until(l, s, 15, 5000 * MS);
	check_events(s, irq_suite, 15);

	/* truncated and written again: a new trace from its beginning */
	memset(s, 0, sizeof(*s));
	assert_int_equal(truncate(path, 0), 0);
	w.off = 0;
	w.piece = len;
	run_until(l, s, 1, 150 * MS);
	ks_loop_add_timer(l, MS, 0, write_piece, &w);
	run_until(l, s, 15, 5000 * MS);
	check_events(s, irq_suite, 15);
	struct ks_dtrace_stats st;
	ks_dtrace_stats(ks_dtrace_follow_parser(f), &st);
	assert_true(st.events == 15);

	/* latency: one record at a time, each seen soon after its write */
	memset(s, 0, sizeof(*s));
	uint64_t worst = 0;
	for (int i = 0; i < 5; i++) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		char rec[512];
		int n = snprintf(rec, sizeof(rec), "%s%s", timer_head, timer_tail);
		uint64_t t0 = ks_loop_now_ns();
		assert_int_equal(write(fd, rec, (size_t)n), n);
		close(fd);
		run_until(l, s, (size_t)i + 1, 1000 * MS);
		assert_int_equal(s->n, i + 1);
		worst = s->at[i] - t0 > worst ? s->at[i] - t0 : worst;
	}
	print_message("# worst latency of 5 records: %.3f ms\n", (double)worst / MS);
	assert_true(worst < KS_DTRACE_POLL_NS + 50 * MS);
	assert_int_equal(ks_dtrace_follow_poll(f, 1), 0);
	ks_dtrace_follow_free(f);
	ks_dtrace_follow_free(NULL);
	ks_loop_free(l);
	unlink(path);
	free(s);
	free(buf);
}

/* Joining a trace that holds events already: only what comes after counts, a line cut in
 * the middle included. */
static void follow_skips_the_past(void **state)
{
	char path[256], rec[512];
	size_t len;
	char *buf = read_golden("irq_suite.log", &len);
	struct ks_loop *l = ks_loop_new(NULL);
	struct seen *s = calloc(1, sizeof(*s));
	struct ks_error err = { 0 };
	int n = snprintf(rec, sizeof(rec), "%s%s", timer_head, timer_tail), fd;
	struct ks_dtrace_follow *f;
	(void)state;

	snprintf(path, sizeof(path), "%s/qemu-debug.log", dir);
	unlink(path);
	/* No file yet: nothing to skip, it is read from its start once it comes. */
	assert_non_null(f = ks_dtrace_follow(l, path, collect, s, &err));
	assert_int_equal(ks_dtrace_follow_skip(f), 0);
	ks_dtrace_follow_free(f);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	/* The start of a record that is still being written. */
	assert_int_equal(write(fd, rec, 20), 20);
	if (!(f = ks_dtrace_follow(l, path, collect, s, &err)))
		fail_msg("%s", err.msg);
	assert_int_equal(ks_dtrace_follow_skip(f), 0);
	run_until(l, s, 1, 150 * MS);
	assert_int_equal(s->n, 0);
	assert_int_equal(write(fd, rec + 20, (size_t)n - 20), n - 20);
	assert_int_equal(write(fd, rec, (size_t)n), n);
	run_until(l, s, 2, 1000 * MS);
	assert_int_equal(s->n, 2);
	assert_int_equal(s->ev[0].irq.vector, s->ev[1].irq.vector);
	close(fd);
	ks_dtrace_follow_free(f);
	ks_loop_free(l);
	unlink(path);
	free(s);
	free(buf);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(golden_traces),
		cmocka_unit_test(kinds_and_fields),
		cmocka_unit_test(symbol_names),
		cmocka_unit_test(interleaved),
		cmocka_unit_test(held_until_finish),
		cmocka_unit_test(malformed_input),
		cmocka_unit_test(follow_file),
		cmocka_unit_test(follow_skips_the_past),
	};

	return cmocka_run_group_tests_name("dtrace", tests, setup, teardown);
}
