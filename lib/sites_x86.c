/* sites_x86.c: the capstone side of sites.c: a two-pass linear sweep, constants traced back from wrmsr. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "sites_internal.h"
#include "x86_cs.h"

#define MAX_INSN 15        /* bytes in the longest x86 instruction */
#define BACK_INSNS 16      /* instructions traced back from a wrmsr */
#define MSR_LSTAR 0xc0000082u

static const uint8_t magic[3] = { 0x66, 0x87, 0xdb };

/* A place decoding may restart at: a direct branch target. */
struct anchor {
	ks_gva_t addr;
	bool code32;
};

/* A wrmsr, and the instruction BACK_INSNS before it where tracing starts. */
struct wrmsr_rec {
	ks_gva_t from, addr;
	const struct sites_range *range;
	bool code32;
};

struct sites_x86 {
	csh cs[2], dcs[2];        /* [0] 64-bit, [1] 32-bit; dcs with operand details */
	cs_insn *insn[2], *dinsn[2];
	bool open[4];
	struct anchor *a;
	size_t na, acap;
	struct wrmsr_rec *w;
	size_t nw, wcap;
};

/* ---- set-up ---- */

static int open_one(struct sites_x86 *x, int i, struct ks_error *err)
{
	int mode = (i & 1) ? CS_MODE_32 : CS_MODE_64;
	bool detail = i >= 2;
	csh *h = detail ? &x->dcs[i & 1] : &x->cs[i & 1];
	cs_err e = cs_open(CS_ARCH_X86, mode, h);

	if (e != CS_ERR_OK)
		return ks_error_set(err, -ENOTSUP, "capstone: %s", cs_strerror(e));
	x->open[i] = true;
	if (detail && cs_option(*h, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK)
		return ks_error_set(err, -ENOTSUP, "capstone: no instruction details");
	cs_insn **in = detail ? &x->dinsn[i & 1] : &x->insn[i & 1];
	if (!(*in = cs_malloc(*h)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	return 0;
}

struct sites_x86 *sites_x86_new(struct ks_error *err)
{
	struct sites_x86 *x = calloc(1, sizeof(*x));

	if (!x) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	for (int i = 0; i < 4; i++) {
		if (open_one(x, i, err) < 0) {
			sites_x86_free(x);
			return NULL;
		}
	}
	return x;
}

void sites_x86_free(struct sites_x86 *x)
{
	if (!x)
		return;
	for (int i = 0; i < 2; i++) {
		if (x->dinsn[i])
			cs_free(x->dinsn[i], 1);
		if (x->insn[i])
			cs_free(x->insn[i], 1);
		if (x->open[2 + i])
			cs_close(&x->dcs[i]);
		if (x->open[i])
			cs_close(&x->cs[i]);
	}
	free(x->a);
	free(x->w);
	free(x);
}

/* Decodes one instruction at pc (it may run past the region, never past the range). */
static const cs_insn *decode(struct sites_x86 *x, bool detail, bool code32,
			     const struct sites_range *r, ks_gva_t pc)
{
	const uint8_t *code = r->bytes + (pc - r->start);
	size_t size = r->end - pc < MAX_INSN ? (size_t)(r->end - pc) : MAX_INSN;
	uint64_t addr = pc;
	cs_insn *in = detail ? x->dinsn[code32] : x->insn[code32];

	if (!cs_disasm_iter(detail ? x->dcs[code32] : x->cs[code32], &code, &size, &addr, in))
		return NULL;
	return in;
}

/* ---- pass 1: branch targets ---- */

/* The target of a direct jump, call or loop; a far jump out of 32-bit code is taken to be
 * the switch to long mode that boot code makes. */
static bool branch_target(const cs_insn *in, bool code32, struct anchor *a)
{
	const char *op = in->op_str;
	char *end;

	if (in->id == X86_INS_LJMP || in->id == X86_INS_LCALL) {
		const char *colon = strchr(op, ':');
		if (!colon)
			return false;
		a->addr = strtoull(colon + 1, &end, 0);
		a->code32 = in->id == X86_INS_LJMP ? false : code32;
		return *end == 0;
	}
	if (in->mnemonic[0] != 'j' && in->id != X86_INS_CALL && strncmp(in->mnemonic, "loop", 4))
		return false;
	if (strncmp(op, "0x", 2))
		return false;
	a->addr = strtoull(op, &end, 16);
	a->code32 = code32;
	return *end == 0;
}

int sites_x86_targets(struct sites_x86 *x, struct ks_sites *s, const struct sites_region *rg)
{
	const struct sites_range *r = rg->range;
	struct anchor a;

	for (ks_gva_t pc = rg->start; pc < rg->end;) {
		const cs_insn *in = decode(x, false, rg->code32, r, pc);
		if (!in) {
			pc++;
			continue;
		}
		s->st.insns++;
		pc += in->size;
		if (!branch_target(in, rg->code32, &a) || a.addr < r->start || a.addr >= r->end)
			continue;
		if (x->na == x->acap) {
			size_t cap = x->acap ? x->acap * 2 : 1024;
			struct anchor *n = realloc(x->a, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			x->a = n;
			x->acap = cap;
		}
		x->a[x->na++] = a;
	}
	return 0;
}

static int cmp_anchor(const void *pa, const void *pb)
{
	const struct anchor *a = pa, *b = pb;

	return (a->addr > b->addr) - (a->addr < b->addr);
}

void sites_x86_targets_done(struct sites_x86 *x)
{
	size_t n = 0;

	if (!x->na)
		return;
	qsort(x->a, x->na, sizeof(*x->a), cmp_anchor);
	for (size_t i = 1; i < x->na; i++)
		if (x->a[i].addr != x->a[n].addr)
			x->a[++n] = x->a[i];
	x->na = n + 1;
}

/* ---- pass 2: sites ---- */

/* The sweep's position and what it knows there. */
struct sweep {
	const struct sites_region *rg;
	ks_gva_t pc;
	bool code32, certain;
	size_t ai;                 /* next anchor at or after pc */
	ks_gva_t hit;              /* next 66 87 db at or after the last one handled; 0: none */
	ks_gva_t ring[BACK_INSNS]; /* the last instruction starts, for wrmsr tracing */
	size_t nring;
};

static ks_gva_t next_hit(const struct sites_region *rg, ks_gva_t from)
{
	const struct sites_range *r = rg->range;
	ks_gva_t stop = rg->end + 2 < r->end ? rg->end + 2 : r->end;

	if (from + 3 > stop)
		return 0;
	const uint8_t *p = memmem(r->bytes + (from - r->start), stop - from, magic, 3);
	return p ? r->start + (ks_gva_t)(p - r->bytes) : 0;
}

static bool terminates(unsigned id)
{
	switch (id) {
	case X86_INS_JMP: case X86_INS_LJMP: case X86_INS_RET: case X86_INS_RETF:
	case X86_INS_RETFQ: case X86_INS_IRET: case X86_INS_IRETD: case X86_INS_IRETQ:
	case X86_INS_SYSRET: case X86_INS_SYSEXIT: case X86_INS_UD2: case X86_INS_UD2B:
	case X86_INS_INT3:
		return true;
	default:
		return false;
	}
}

static int site_kind(const cs_insn *in)
{
	switch (in->id) {
	case X86_INS_XCHG:
		return in->size == 3 && !memcmp(in->bytes, magic, 3) ? KS_SITE_MAGIC : -1;
	case X86_INS_SYSCALL:
		return KS_SITE_SYSCALL;
	case X86_INS_SYSRET:
		return KS_SITE_SYSRET;
	case X86_INS_IRET: case X86_INS_IRETD: case X86_INS_IRETQ:
		return KS_SITE_IRET;
	case X86_INS_SWAPGS:
		return KS_SITE_SWAPGS;
	case X86_INS_LIDT:
		return KS_SITE_LIDT;
	default:
		return -1;
	}
}

static unsigned base_flags(const struct sites_region *rg, bool code32)
{
	return KS_SITE_DISASM | (code32 ? KS_SITE_CODE32 : 0) | (rg->data ? KS_SITE_DATA : 0);
}

/* A pattern hit inside an instruction reached by fall-through: true when decoding the region
 * in the other mode lands on it (32-bit code taken for 64-bit, or the reverse). */
static bool other_mode_lands(struct sites_x86 *x, const struct sites_region *rg, bool code32,
			     ks_gva_t hit)
{
	ks_gva_t pc = rg->start;

	while (pc < hit) {
		const cs_insn *in = decode(x, false, !code32, rg->range, pc);
		pc += in ? in->size : 1;
	}
	return pc == hit;
}

/*
 * Handles the pattern hits before `upto` other than one the instruction at w->pc (of length
 * len; 0 when the sweep dropped it) starts with. A hit inside that instruction, or one behind
 * pc (it runs into a branch target the sweep restarted at), is swallowed by real code when
 * the sweep was certain there, unless the other mode decodes it; one in uncertain bytes is
 * taken.
 */
static int handle_hits(struct sites_x86 *x, struct ks_sites *s, struct sweep *w, ks_gva_t upto,
		       unsigned len)
{
	const struct sites_region *rg = w->rg;

	for (; w->hit && w->hit < upto; w->hit = next_hit(rg, w->hit + 1)) {
		ks_gva_t h = w->hit;
		s->st.pattern_hits++;
		if (len && h == w->pc)
			continue;
		bool code32 = w->code32;
		if (h < w->pc || (len && w->certain)) {
			if (!other_mode_lands(x, rg, w->code32, h)) {
				s->st.pattern_rejected++;
				continue;
			}
			code32 = !code32;
		}
		int rc = sites_add(s, KS_SITE_MAGIC, h, 3,
				   base_flags(rg, code32) | KS_SITE_PATTERN);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int note_wrmsr(struct sites_x86 *x, const struct sweep *w)
{
	if (x->nw == x->wcap) {
		size_t cap = x->wcap ? x->wcap * 2 : 64;
		struct wrmsr_rec *n = realloc(x->w, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		x->w = n;
		x->wcap = cap;
	}
	size_t back = w->nring < BACK_INSNS ? w->nring : BACK_INSNS;
	ks_gva_t from = back ? w->ring[(w->nring - back) % BACK_INSNS] : w->pc;
	x->w[x->nw++] = (struct wrmsr_rec){ .from = from, .addr = w->pc, .range = w->rg->range,
					    .code32 = w->code32 };
	return 0;
}

/* Moves the sweep onto an anchor at pc, if there is one, and skips the ones behind it. */
static void at_anchor(struct sites_x86 *x, struct sweep *w)
{
	while (w->ai < x->na && x->a[w->ai].addr < w->pc)
		w->ai++;
	if (w->ai < x->na && x->a[w->ai].addr == w->pc) {
		w->certain = true;
		w->code32 = x->a[w->ai].code32;
		w->ai++;
	}
}

/* One decoded instruction: its pattern hits, its site, its wrmsr, what follows it. */
static int step(struct sites_x86 *x, struct ks_sites *s, struct sweep *w, const cs_insn *in)
{
	int kind = site_kind(in), rc;

	if ((rc = handle_hits(x, s, w, w->pc + in->size, in->size)) < 0)
		return rc;
	if (kind >= 0 && (rc = sites_add(s, kind, w->pc, in->size, base_flags(w->rg, w->code32))))
		return rc;
	if (in->id == X86_INS_WRMSR && !w->rg->data && (rc = note_wrmsr(x, w)) < 0)
		return rc;
	w->ring[w->nring++ % BACK_INSNS] = w->pc;
	if (terminates(in->id))
		w->certain = false;
	w->pc += in->size;
	return 0;
}

int sites_x86_sweep(struct sites_x86 *x, struct ks_sites *s, const struct sites_region *rg)
{
	struct sweep w = { .rg = rg, .pc = rg->start, .code32 = rg->code32,
			   .certain = rg->certain };
	int rc = 0;

	size_t lo = 0, hi = x->na;

	while (lo < hi) {       /* the first anchor at or after the start */
		size_t mid = lo + (hi - lo) / 2;
		if (x->a[mid].addr < rg->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	w.ai = lo;
	if (!rg->data)
		w.hit = next_hit(rg, rg->start);
	while (w.pc < rg->end && rc == 0) {
		at_anchor(x, &w);
		const cs_insn *in = decode(x, false, w.code32, rg->range, w.pc);
		if (!in) {
			if (rg->data)
				break;
			s->st.bad_bytes++;
			w.certain = false;
			w.pc++;
			continue;
		}
		s->st.insns++;
		if (!w.certain && w.ai < x->na && x->a[w.ai].addr < w.pc + in->size) {
			/* An uncertain instruction runs over a branch target: trust the target. */
			rc = handle_hits(x, s, &w, x->a[w.ai].addr - 2, 0);
			w.pc = x->a[w.ai].addr;
			continue;
		}
		rc = step(x, s, &w, in);
	}
	if (rc == 0 && !rg->data)
		rc = handle_hits(x, s, &w, rg->end, 0);
	return rc;
}

/* ---- constants written to IA32_LSTAR ---- */

/* General registers: value and whether it is known. */
struct regs {
	uint64_t v[16];
	uint32_t known;
};

/* Index (RAX = 0 ... R15 = 15, encoding order) and width in bits of a general register;
 * -1 for anything else. */
static int gpr(unsigned r, unsigned *bits)
{
	unsigned num, bytes, shift;

	*bits = 0;
	if (!ks_cs_gpr(r, &num, &bytes, &shift))
		return -1;
	*bits = bytes * 8;
	return (int)num;
}

/* The value of an operand: an immediate or a known 32- or 64-bit register. */
static bool op_value(const struct regs *g, const cs_x86_op *o, uint64_t *v)
{
	unsigned bits;
	int i;

	if (o->type == X86_OP_IMM) {
		*v = (uint64_t)o->imm;
		return true;
	}
	if (o->type != X86_OP_REG || (i = gpr(o->reg, &bits)) < 0 || bits < 32 ||
	    !(g->known & (1u << i)))
		return false;
	*v = bits == 32 ? (uint32_t)g->v[i] : g->v[i];
	return true;
}

/* What the instruction leaves in its destination register, when that is a constant. */
static bool result(const struct regs *g, const cs_insn *in, uint64_t *v)
{
	const cs_x86 *d = &in->detail->x86;
	const cs_x86_op *o0 = &d->operands[0], *o1 = &d->operands[1];
	uint64_t a, b = 1;
	unsigned bits;

	if (d->op_count < 1 || o0->type != X86_OP_REG || gpr(o0->reg, &bits) < 0 || bits < 32)
		return false;
	if (in->id == X86_INS_MOV || in->id == X86_INS_MOVABS)
		return d->op_count == 2 && op_value(g, o1, v);
	if (in->id == X86_INS_LEA) {
		const x86_op_mem *m = &o1->mem;
		bool rip = m->base == X86_REG_RIP || m->base == X86_REG_EIP;
		if (d->op_count != 2 || o1->type != X86_OP_MEM || m->index != X86_REG_INVALID ||
		    (!rip && m->base != X86_REG_INVALID))
			return false;
		*v = (rip ? in->address + in->size : 0) + (uint64_t)m->disp;
		return true;
	}
	if (in->id == X86_INS_XOR && d->op_count == 2 && o1->type == X86_OP_REG && o1->reg == o0->reg) {
		*v = 0;
		return true;
	}
	if (!op_value(g, o0, &a) || (d->op_count == 2 && !op_value(g, o1, &b)))
		return false;
	unsigned sh = (unsigned)b & (bits == 64 ? 63 : 31);
	switch (in->id) {
	case X86_INS_OR: *v = a | b; return true;
	case X86_INS_AND: *v = a & b; return true;
	case X86_INS_XOR: *v = a ^ b; return true;
	case X86_INS_ADD: *v = a + b; return true;
	case X86_INS_SUB: *v = a - b; return true;
	case X86_INS_SHL: *v = a << sh; return true;
	case X86_INS_SHR: *v = a >> sh; return true;
	default: return false;
	}
}

/* Follows one instruction's effect on the registers. */
static void track(struct sites_x86 *x, bool code32, struct regs *g, const cs_insn *in)
{
	cs_regs rd, wr;
	uint8_t nrd, nwr;
	uint64_t v = 0;
	unsigned bits;
	bool ok = result(g, in, &v);

	if (in->id == X86_INS_CALL || in->id == X86_INS_LCALL || terminates(in->id)) {
		g->known = 0;   /* what follows is reached from elsewhere, or after a call */
		return;
	}
	if (cs_regs_access(x->dcs[code32], in, rd, &nrd, wr, &nwr) != CS_ERR_OK) {
		g->known = 0;
		return;
	}
	for (uint8_t k = 0; k < nwr; k++) {
		int i = gpr(wr[k], &bits);
		if (i >= 0)
			g->known &= ~(1u << i);
	}
	if (ok) {
		int i = gpr(in->detail->x86.operands[0].reg, &bits);
		g->v[i] = bits == 32 ? (uint32_t)v : v;
		g->known |= 1u << i;
	}
}

/* Traces one wrmsr; true with *target when it writes a constant to IA32_LSTAR. */
static bool trace_wrmsr(struct sites_x86 *x, const struct wrmsr_rec *r, ks_gva_t *target)
{
	struct regs g = { .known = 0 };
	ks_gva_t pc = r->from;

	while (pc < r->addr) {
		const cs_insn *in = decode(x, true, r->code32, r->range, pc);
		if (!in)
			return false;
		track(x, r->code32, &g, in);
		pc += in->size;
	}
	if (pc != r->addr || (g.known & 7u) != 7u || (uint32_t)g.v[1] != MSR_LSTAR)
		return false;
	*target = (uint64_t)(uint32_t)g.v[2] << 32 | (uint32_t)g.v[0];
	return true;
}

size_t sites_x86_lstar(struct sites_x86 *x, struct ks_sites *s, ks_gva_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < x->nw; i++) {
		ks_gva_t t;
		if (!trace_wrmsr(x, &x->w[i], &t))
			continue;
		s->st.lstar_writes++;
		if (n < max)
			out[n++] = t;
	}
	return n;
}

bool sites_x86_saves_rsp(struct sites_x86 *x, const struct sites_range *r, ks_gva_t addr)
{
	if (addr < r->start || addr >= r->end)
		return false;
	const cs_insn *in = decode(x, true, false, r, addr);
	if (!in || in->id != X86_INS_MOV || in->detail->x86.op_count != 2)
		return false;
	const cs_x86_op *o = in->detail->x86.operands;
	return o[0].type == X86_OP_MEM && o[0].mem.segment == X86_REG_GS &&
	       o[1].type == X86_OP_REG && o[1].reg == X86_REG_RSP;
}
