/* monitor_emul.c: the instruction at a breakpoint, emulated on the host so the vCPU continues past it in one packet. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include <kscope/gdb.h>
#include <kscope/mem.h>

#include "monitor_internal.h"
#include "x86_cs.h"

/* ---- the instruction at a site, emulated ---- */

enum { MODE64, MODE32, MODE16, NMODES };

struct ks_mon_x86 {
	csh cs[NMODES];
	cs_insn *in[NMODES];
};

void ks_mon_x86_free(struct ks_mon_x86 *x)
{
	if (!x)
		return;
	for (int i = 0; i < NMODES; i++) {
		if (x->in[i])
			cs_free(x->in[i], 1);
		if (x->cs[i])
			cs_close(&x->cs[i]);
	}
	free(x);
}

/* Opens the decoder for one mode, with details; err says why not (capstone not loadable...). */
static int open_mode(struct ks_mon_x86 *x, int i, cs_mode mode, struct ks_error *err)
{
	cs_err e = cs_open(CS_ARCH_X86, mode, &x->cs[i]);

	if (e != CS_ERR_OK)
		return ks_error_set(err, -ENOTSUP, "capstone: %s", cs_strerror(e));
	if (cs_option(x->cs[i], CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK)
		return ks_error_set(err, -ENOTSUP, "capstone: no instruction details");
	if (!(x->in[i] = cs_malloc(x->cs[i])))
		return ks_error_set(err, -ENOMEM, "out of memory for the x86 decoder");
	return 0;
}

struct ks_mon_x86 *ks_mon_x86_new(struct ks_error *err)
{
	static const cs_mode modes[NMODES] = { CS_MODE_64, CS_MODE_32, CS_MODE_16 };
	struct ks_mon_x86 *x = calloc(1, sizeof(*x));

	if (!x) {
		ks_error_set(err, -ENOMEM, "out of memory for the x86 decoder");
		return NULL;
	}
	for (int i = 0; i < NMODES; i++) {
		if (open_mode(x, i, modes[i], err) < 0) {
			ks_mon_x86_free(x);
			return NULL;
		}
	}
	return x;
}

/* The one instruction at code in mode, or NULL when the bytes do not make one. */
static const cs_insn *decode_one(struct ks_mon_x86 *x, int mode, const uint8_t *code,
				 size_t len, uint64_t addr)
{
	const uint8_t *p = code;
	size_t n = len;

	return cs_disasm_iter(x->cs[mode], &p, &n, &addr, x->in[mode]) ? x->in[mode] : NULL;
}

/* A general register as an operand names it: which one, how wide, at which bit. */
struct gpr {
	unsigned num;     /* enum ks_x86_reg: KS_X86_RAX to KS_X86_R15 */
	unsigned width;   /* bytes */
	unsigned shift;   /* 8 for AH, BH, CH, DH */
};

static bool gpr_of(const cs_x86_op *op, struct gpr *g)
{
	/* The encoding's order (x86_cs.h) in gdb's (enum ks_x86_reg). */
	static const unsigned char to_gdb[16] = {
		KS_X86_RAX, KS_X86_RCX, KS_X86_RDX, KS_X86_RBX,
		KS_X86_RSP, KS_X86_RBP, KS_X86_RSI, KS_X86_RDI,
		KS_X86_R8, KS_X86_R9, KS_X86_R10, KS_X86_R11,
		KS_X86_R12, KS_X86_R13, KS_X86_R14, KS_X86_R15,
	};
	unsigned num, bytes, shift;

	if (op->type != X86_OP_REG || !ks_cs_gpr(op->reg, &num, &bytes, &shift))
		return false;
	*g = (struct gpr){ to_gdb[num], bytes, shift };
	return true;
}

/* The registers an emulated instruction may change, and where struct ks_x86_regs has them. */
static const struct { enum ks_x86_reg reg; size_t off; } tracked[] = {
	{ KS_X86_RAX, offsetof(struct ks_x86_regs, rax) },
	{ KS_X86_RBX, offsetof(struct ks_x86_regs, rbx) },
	{ KS_X86_RCX, offsetof(struct ks_x86_regs, rcx) },
	{ KS_X86_RDX, offsetof(struct ks_x86_regs, rdx) },
	{ KS_X86_RSI, offsetof(struct ks_x86_regs, rsi) },
	{ KS_X86_RDI, offsetof(struct ks_x86_regs, rdi) },
	{ KS_X86_RBP, offsetof(struct ks_x86_regs, rbp) },
	{ KS_X86_RSP, offsetof(struct ks_x86_regs, rsp) },
	{ KS_X86_R8, offsetof(struct ks_x86_regs, r8) },
	{ KS_X86_R9, offsetof(struct ks_x86_regs, r9) },
	{ KS_X86_R10, offsetof(struct ks_x86_regs, r10) },
	{ KS_X86_R11, offsetof(struct ks_x86_regs, r11) },
	{ KS_X86_R12, offsetof(struct ks_x86_regs, r12) },
	{ KS_X86_R13, offsetof(struct ks_x86_regs, r13) },
	{ KS_X86_R14, offsetof(struct ks_x86_regs, r14) },
	{ KS_X86_R15, offsetof(struct ks_x86_regs, r15) },
	{ KS_X86_EFLAGS, offsetof(struct ks_x86_regs, rflags) },
	{ KS_X86_GS_BASE, offsetof(struct ks_x86_regs, gs_base) },
	{ KS_X86_K_GS_BASE, offsetof(struct ks_x86_regs, k_gs_base) },
};

#define NTRACKED (sizeof(tracked) / sizeof(*tracked))

static uint64_t *field(struct ks_x86_regs *r, size_t i)
{
	return (uint64_t *)((char *)r + tracked[i].off);
}

static uint64_t value_of(const struct ks_x86_regs *r, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)r + tracked[i].off, sizeof(v));
	return v;
}

static uint64_t get(struct ks_x86_regs *r, const struct gpr *g)
{
	uint64_t v = *field(r, g->num) >> g->shift;

	return g->width == 8 ? v : v & ((1ull << (8 * g->width)) - 1);
}

/* Writes as the CPU does in 64-bit mode: a 32-bit result clears the upper half, 8- and 16-bit
 * ones leave the rest of the register alone. */
static void put(struct ks_x86_regs *r, const struct gpr *g, uint64_t v)
{
	uint64_t *f = field(r, g->num), mask;

	if (g->width == 8) {
		*f = v;
	} else if (g->width == 4) {
		*f = v & 0xffffffffull;
	} else {
		mask = ((1ull << (8 * g->width)) - 1) << g->shift;
		*f = (*f & ~mask) | ((v << g->shift) & mask);
	}
}

#define FL_CF 0x001ull
#define FL_PF 0x004ull
#define FL_AF 0x010ull
#define FL_ZF 0x040ull
#define FL_SF 0x080ull
#define FL_OF 0x800ull
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

/* The flags an add (or sub) of b to a with result res sets, at width bytes. */
static uint64_t arith_flags(bool sub, uint64_t a, uint64_t b, uint64_t res, unsigned width)
{
	uint64_t mask = width == 8 ? ~0ull : (1ull << (8 * width)) - 1;
	uint64_t sign = 1ull << (8 * width - 1), f = 0;

	a &= mask;
	b &= mask;
	res &= mask;
	if (sub ? a < b : res < a)
		f |= FL_CF;
	if (!__builtin_parityll(res & 0xff))
		f |= FL_PF;
	if ((a ^ b ^ res) & 0x10)
		f |= FL_AF;
	if (!res)
		f |= FL_ZF;
	if (res & sign)
		f |= FL_SF;
	if ((sub ? (a ^ b) & (a ^ res) : ~(a ^ b) & (a ^ res)) & sign)
		f |= FL_OF;
	return f;
}

static int emul_xchg(const cs_x86 *d, struct ks_x86_regs *w)
{
	struct gpr a, b;
	uint64_t va, vb;

	if (d->op_count != 2 || !gpr_of(&d->operands[0], &a) || !gpr_of(&d->operands[1], &b))
		return -ENOTSUP;
	va = get(w, &a);
	vb = get(w, &b);
	put(w, &a, vb);
	put(w, &b, va);
	return 0;
}

static int emul_mov(const cs_x86 *d, struct ks_x86_regs *w)
{
	struct gpr dst, src;

	if (d->op_count != 2 || !gpr_of(&d->operands[0], &dst))
		return -ENOTSUP;
	if (d->operands[1].type == X86_OP_IMM)
		put(w, &dst, (uint64_t)d->operands[1].imm);
	else if (gpr_of(&d->operands[1], &src))
		put(w, &dst, get(w, &src));
	else
		return -ENOTSUP;
	return 0;
}

/* A 64-bit push; the 16-bit form (66 prefix) is not emulated. */
static int emul_push(const cs_x86 *d, struct ks_x86_regs *w, struct ks_mon_emul *e)
{
	const cs_x86_op *op = &d->operands[0];
	struct gpr src;
	uint64_t v;

	if (d->op_count != 1 || op->size != 8)
		return -ENOTSUP;
	if (op->type == X86_OP_IMM)
		v = (uint64_t)op->imm;   /* sign-extended to 64 bits by capstone, as by the CPU */
	else if (gpr_of(op, &src) && src.width == 8)
		v = get(w, &src);        /* push %rsp pushes its value from before */
	else
		return -ENOTSUP;
	w->rsp -= 8;
	e->store = true;
	e->store_gva = w->rsp;
	e->store_value = v;
	return 0;
}

static int emul_arith(const cs_x86 *d, struct ks_x86_regs *w, bool sub)
{
	struct gpr dst;
	uint64_t a, b, res;

	if (d->op_count != 2 || !gpr_of(&d->operands[0], &dst) ||
	    d->operands[1].type != X86_OP_IMM)
		return -ENOTSUP;
	a = get(w, &dst);
	b = (uint64_t)d->operands[1].imm;
	res = sub ? a - b : a + b;
	w->rflags = (w->rflags & ~FL_ARITH) | arith_flags(sub, a, b, res, dst.width);
	put(w, &dst, res);
	return 0;
}

/* swapgs exchanges GS.base with IA32_KERNEL_GS_BASE; outside ring 0 it faults. */
static int emul_swapgs(struct ks_x86_regs *w)
{
	uint64_t t = w->gs_base;

	if (w->cs & 3)
		return -ENOTSUP;
	w->gs_base = w->k_gs_base;
	w->k_gs_base = t;
	return 0;
}

static bool is_nop(unsigned id)
{
	return id == X86_INS_NOP || id == X86_INS_PAUSE || id == X86_INS_ENDBR64 ||
	       id == X86_INS_ENDBR32;
}

/* The instruction's effect on w in 64-bit mode. Lock and rep prefixes, and segment and
 * address-size prefixes on anything but a nop (whose memory operand is never accessed),
 * are not emulated. */
static int emulate64(const cs_insn *in, struct ks_x86_regs *w, struct ks_mon_emul *e)
{
	const cs_x86 *d = &in->detail->x86;

	if (d->prefix[0] || ((d->prefix[1] || d->prefix[3]) && !is_nop(in->id)))
		return -ENOTSUP;
	switch (in->id) {
	case X86_INS_NOP: case X86_INS_PAUSE: case X86_INS_ENDBR64: case X86_INS_ENDBR32:
		e->what = "nop";
		return 0;
	case X86_INS_XCHG:
		e->what = "xchg";
		return emul_xchg(d, w);
	case X86_INS_MOV: case X86_INS_MOVABS:
		e->what = "mov";
		return emul_mov(d, w);
	case X86_INS_PUSH:
		e->what = "push";
		return emul_push(d, w, e);
	case X86_INS_ADD: case X86_INS_SUB:
		e->what = in->id == X86_INS_ADD ? "add" : "sub";
		return emul_arith(d, w, in->id == X86_INS_SUB);
	case X86_INS_SWAPGS:
		e->what = "swapgs";
		return emul_swapgs(w);
	default:
		return -ENOTSUP;
	}
}

/* Lists the registers that differ between before and after as the writes of e. */
static int list_writes(const struct ks_x86_regs *before, const struct ks_x86_regs *after,
		       struct ks_mon_emul *e)
{
	for (size_t i = 0; i < NTRACKED; i++) {
		uint64_t v = value_of(after, i);

		if (v == value_of(before, i))
			continue;
		if (e->nregs == KS_MON_EMUL_REGS)
			return -ENOTSUP;
		e->regs[e->nregs++] = (struct ks_gdb_reg_write){ tracked[i].reg, v };
	}
	return 0;
}

/* True when the instruction changes nothing in mode: a nop, or an exchange of a register's
 * 8 or 16 bits with themselves (wider ones may clear an upper half). */
static bool changes_nothing(const cs_insn *in)
{
	const cs_x86 *d = &in->detail->x86;
	struct gpr a, b;

	if (d->prefix[0] || ((d->prefix[1] || d->prefix[3]) && !is_nop(in->id)))
		return false;
	if (is_nop(in->id))
		return true;
	return in->id == X86_INS_XCHG && d->op_count == 2 && gpr_of(&d->operands[0], &a) &&
	       gpr_of(&d->operands[1], &b) && a.num == b.num && a.shift == b.shift &&
	       a.width <= 2;
}

/* Where the mode is not known: the same length and no effect in every mode it may be. */
static int nop_in_every_mode(struct ks_mon_x86 *x, const uint8_t *code, size_t len,
			     const struct ks_x86_regs *r, struct ks_mon_emul *e)
{
	int first = r->efer & KS_X86_EFER_LMA ? MODE64 : MODE32;

	for (int mode = first; mode < NMODES; mode++) {
		const cs_insn *in = decode_one(x, mode, code, len, r->rip);

		if (!in)
			return -EINVAL;
		if (!changes_nothing(in) || (e->len && e->len != in->size))
			return -ENOTSUP;
		e->len = in->size;
	}
	e->what = "nop";
	return 0;
}

int ks_mon_emulate(struct ks_mon_x86 *x, const uint8_t *code, size_t len,
		   const struct ks_x86_regs *r, bool mode64, struct ks_mon_emul *e)
{
	struct ks_x86_regs w = *r;
	const cs_insn *in;
	int rc;

	memset(e, 0, sizeof(*e));
	/* A vCPU that single-steps itself takes a #DB after the instruction. */
	if ((r->rflags & KS_X86_RFLAGS_TF) || !(r->cr0 & KS_X86_CR0_PE))
		return -ENOTSUP;
	if (!mode64)
		return nop_in_every_mode(x, code, len, r, e);
	if (!(r->efer & KS_X86_EFER_LMA))
		return -ENOTSUP;
	if (!(in = decode_one(x, MODE64, code, len, r->rip)))
		return -EINVAL;
	if ((rc = emulate64(in, &w, e)) < 0)
		return rc;
	e->len = in->size;
	return list_writes(r, &w, e);
}

void ks_mon_emul_apply(const struct ks_mon_emul *e, struct ks_x86_regs *r)
{
	for (size_t k = 0; k < e->nregs; k++)
		for (size_t i = 0; i < NTRACKED; i++)
			if (tracked[i].reg == e->regs[k].reg)
				*field(r, i) = e->regs[k].value;
	r->rip += e->len;
}

#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define CR4_PKE (1ull << 22)
#define CR4_PKS (1ull << 24)
#define CR4_LA57 (1ull << 12)

/* What the page's permissions allow the vCPU (its CPL from CS). */
static bool allowed(const struct ks_x86_regs *r, unsigned flags, bool write)
{
	bool user_mode = (r->cs & 3) == 3, user_page = flags & KS_VTOP_USER;

	if (user_mode ? !user_page : user_page && (r->cr4 & (write ? CR4_SMAP : CR4_SMEP)))
		return false;
	/* Protection keys are not read: a page they may guard is left to the CPU. */
	if (r->cr4 & (user_page ? CR4_PKE : CR4_PKS))
		return false;
	return write ? (flags & KS_VTOP_WRITABLE) && (flags & KS_VTOP_DIRTY)
		     : !(flags & KS_VTOP_NX);
}

int ks_mon_emul_access(struct ks_mem *mem, const struct ks_x86_regs *r, ks_gva_t gva,
		       size_t len, bool write, ks_gpa_t *gpa)
{
	struct ks_vtop_result res;
	int rc;

	if (!(r->cr0 & KS_X86_CR0_PG)) {
		*gpa = gva;
		return ks_mem_check(mem, gva, len, NULL) < 0 ? -EFAULT : 0;
	}
	/* The walk knows IA-32e paging only. */
	if (!(r->efer & KS_X86_EFER_LMA))
		return -EFAULT;
	if ((rc = ks_vtop_walk(mem, r->cr3, r->cr4 & CR4_LA57, gva, &res)) < 0)
		return rc;
	if ((gva & (res.page_size - 1)) + len > res.page_size || !allowed(r, res.flags, write))
		return -EFAULT;
	/* An access that finds a bit clear sets it: the host would have to do it as well. */
	for (size_t i = 0; i < res.nentries; i++)
		if (!(res.entries[i].flags & KS_VTOP_ACCESSED))
			return -EFAULT;
	*gpa = res.gpa;
	return ks_mem_check(mem, res.gpa, len, NULL) < 0 ? -EFAULT : 0;
}

uint64_t ks_mon_emul_reg(const struct ks_x86_regs *r, enum ks_x86_reg reg)
{
	for (size_t i = 0; i < NTRACKED; i++)
		if (tracked[i].reg == reg)
			return value_of(r, i);
	return 0;
}
