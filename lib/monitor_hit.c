/* monitor_hit.c: a vCPU stopped at one of the monitor's breakpoints: what happened there, and its instruction emulated. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include <kscope/gdb.h>
#include <kscope/mem.h>

#include "monitor_internal.h"

int ks_mon_decode_frame(unsigned vector, const uint8_t *raw, size_t len, unsigned width,
			struct ks_mon_irq_frame *f)
{
	uint64_t slot[4] = { 0 };
	size_t first = ks_mon_has_error_code(vector) ? 1 : 0;

	if ((width != 4 && width != 8) || len < (first + 3) * width)
		return -EINVAL;
	for (size_t i = 0; i < first + 3; i++)
		memcpy(&slot[i], raw + i * width, width);
	memset(f, 0, sizeof(*f));
	f->has_error = first;
	f->error_code = first ? slot[0] : 0;
	f->rip = slot[first];
	f->cs = (uint16_t)slot[first + 1];
	f->rflags = slot[first + 2];
	f->from_user = (f->cs & 3) == 3;
	return 0;
}

/* ---- the stop reply ---- */

static void on_work(struct ks_loop *l, int64_t id, void *data);

void mon_on_stop(struct ks_gdb *g, const struct ks_gdb_stop *stop, void *data)
{
	struct ks_monitor *m = data;
	(void)g;

	if (stop->kind == KS_GDB_STOP_OUTPUT || m->stepping)
		return;
	if (stop->kind != KS_GDB_STOP_SIGNAL) {
		m->ended = true;
		return;
	}
	/* QEMU reports each of these stops over QMP as well: they are not vm events. */
	m->stop_ours = stop->code == KS_GDB_SIGTRAP ||
		       (stop->code == KS_GDB_SIGINT && m->expect_sigint);
	if (stop->code == KS_GDB_SIGINT)
		m->expect_sigint = false;
	m->own_stops += m->stop_ours;
	m->stop = *stop;
	m->stop.output = NULL;
	/* The client cannot take requests from its callback: the work waits a loop round. */
	if (m->work_timer <= 0)
		m->work_timer = ks_loop_add_timer(m->loop, 0, 0, on_work, m);
}

static void on_work(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_monitor *m = data;
	int code = m->stop.code;
	(void)l, (void)id;

	m->work_timer = 0;
	if (m->ended || !ks_gdb_connected(m->g) || ks_gdb_state(m->g) != KS_GDB_STOPPED)
		return;
	m->busy++;
	if (code == KS_GDB_SIGTRAP) {
		m->st.hits++;
		mon_handle_trap(m);
	} else if (code == KS_GDB_SIGINT) {
		/* Not the monitor's own QMP stop: someone paused the VM, and it stays so. */
		if (!m->stop_ours)
			m->paused = true;
	} else {
		/* Shutdown (with pause_on_shutdown), a guest panic, an internal error: QEMU
		 * will not run this VM again, whatever gdb is told. */
		m->halted = m->paused = true;
	}
	m->busy--;
	mon_settle(m, NULL);
}

/* ---- events at the site ---- */

static void base_event(struct ks_event *ev, enum ks_event_kind kind, unsigned vcpu,
		       const struct mon_bp *bp)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->vcpu = (int)vcpu;
	if (bp) {
		ev->pc = bp->addr;
		memcpy(ev->sym, bp->sym, sizeof(ev->sym));
	}
}

static void magic_event(struct ks_monitor *m, const struct mon_bp *bp, unsigned vcpu,
			const struct ks_x86_regs *r, uint64_t ts)
{
	struct ks_event ev;

	base_event(&ev, KS_EV_MAGIC, vcpu, bp);
	ev.magic.id = r->rax;
	ev.magic.a0 = r->rdi;
	ev.magic.a1 = r->rsi;
	mon_emit(m, &ev, ts);
	mon_test_magic(m, &ev, r);
}

/* The vector of a handler entry; the lowest when vectors share one entry. */
static unsigned entry_vector(const struct mon_bp *bp)
{
	for (unsigned v = 0; v < 256; v++)
		if (bp->vectors[v / 64] >> (v % 64) & 1)
			return v;
	return 0;
}

static void irq_event(struct ks_monitor *m, const struct mon_bp *bp, unsigned vcpu,
		      const struct ks_x86_regs *r, uint64_t ts)
{
	unsigned v = entry_vector(bp), width = r->efer & KS_X86_EFER_LMA ? 8 : 4;
	struct ks_mon_irq_frame f = { 0 };
	struct ks_event ev;
	uint8_t raw[32];
	void *ctx;
	ks_read_gva_fn rd = mon_reader(m, r, &ctx);
	int rc = rd(ctx, r->rsp, raw, 4 * width);

	if (rc < 0 || ks_mon_decode_frame(v, raw, sizeof(raw), width, &f) < 0)
		mon_warn(m, "vector %u: cannot read the interrupt frame at 0x%llx: %s", v,
			 (unsigned long long)r->rsp, strerror(rc < 0 ? -rc : EINVAL));
	base_event(&ev, ks_mon_vector_kind(v), vcpu, bp);
	ev.irq.vector = v;
	ev.irq.has_error = f.has_error;
	ev.irq.error_code = f.error_code;
	ev.irq.cr2 = v == 14 ? r->cr2 : 0;
	ev.irq.rip = f.rip;
	ev.irq.from_user = f.from_user;
	if (!f.from_user && f.rip)
		mon_sym(m, f.rip, ev.irq.rip_sym);
	mon_emit(m, &ev, ts);
}

static void syscall_event(struct ks_monitor *m, const struct mon_bp *bp, unsigned vcpu,
			  const struct ks_x86_regs *r, uint64_t ts)
{
	struct ks_event ev;

	base_event(&ev, KS_EV_SYSCALL, vcpu, bp);
	ev.sys.nr = r->rax;
	ev.sys.has_nr = true;
	ev.sys.args[0] = r->rdi;
	ev.sys.args[1] = r->rsi;
	ev.sys.args[2] = r->rdx;
	ev.sys.args[3] = r->r10;
	ev.sys.args[4] = r->r8;
	ev.sys.args[5] = r->r9;
	ev.sys.user_rip = r->rcx;
	if (vcpu < m->nvcpus)
		m->sys[vcpu] = (struct mon_sys){ .valid = true, .nr = r->rax, .rcx = r->rcx };
	mon_emit(m, &ev, ts);
}

static void sysret_event(struct ks_monitor *m, const struct mon_bp *bp, unsigned vcpu,
			 const struct ks_x86_regs *r, uint64_t ts)
{
	struct mon_sys *s = vcpu < m->nvcpus ? &m->sys[vcpu] : NULL;
	struct ks_event ev;

	base_event(&ev, KS_EV_SYSRET, vcpu, bp);
	ev.sys.ret = r->rax;
	ev.sys.user_rip = r->rcx;
	/* The return of the call in flight goes back to where that call came from; a sysret
	 * elsewhere (a first entry to user mode, a call that never returned) is another. */
	if (s && s->valid && s->rcx == r->rcx) {
		ev.sys.has_nr = true;
		ev.sys.nr = s->nr;
	}
	if (s)
		s->valid = false;
	mon_emit(m, &ev, ts);
}

static void break_event(struct ks_monitor *m, const struct mon_bp *bp, unsigned vcpu,
			uint64_t ts)
{
	struct ks_event ev;

	base_event(&ev, KS_EV_BREAKPOINT, vcpu, bp);
	ev.bp.addr = bp->addr;
	memcpy(ev.bp.addr_sym, bp->sym, sizeof(ev.bp.addr_sym));
	snprintf(ev.bp.what, sizeof(ev.bp.what), "exec");
	mon_emit(m, &ev, ts);
}

static void watch_event(struct ks_monitor *m, unsigned vcpu, const struct ks_x86_regs *r,
			uint64_t ts)
{
	static const char *const what[] = { "access", "write", "read", "access" };
	struct ks_event ev;

	base_event(&ev, KS_EV_WATCHPOINT, vcpu, NULL);
	/* QEMU stops after the accessing instruction: pc is the next one. */
	ev.pc = r->rip;
	mon_sym(m, r->rip, ev.sym);
	ev.bp.addr = m->stop.watch_addr;
	mon_sym(m, ev.bp.addr, ev.bp.addr_sym);
	snprintf(ev.bp.what, sizeof(ev.bp.what), "%s", what[m->stop.watch & 3]);
	mon_emit(m, &ev, ts);
}

int mon_step(struct ks_monitor *m, unsigned vcpu, struct ks_gdb_stop *st,
	     struct ks_error *err)
{
	int r;

	/* The step resumes and stops the VM, which QMP reports too, while it is waited for. */
	m->own_resumes++;
	m->own_stops++;
	m->stepping = true;
	r = ks_gdb_step(m->g, vcpu, st, err);
	m->stepping = false;
	if (r == -EBUSY || r == -ENOTCONN || r == -EINVAL) {
		m->own_resumes--;
		m->own_stops--;
	}
	return r;
}

/* Steps vcpu over its `lidt` and reads the IDT it loaded. */
static void lidt_step(struct ks_monitor *m, unsigned vcpu)
{
	struct ks_error e = { 0 };

	if (mon_step(m, vcpu, NULL, &e) < 0) {
		mon_warn(m, "lidt: cannot step vCPU %u: %s", vcpu, e.msg);
		return;
	}
	m->st.stepped++;
	m->skip = false;
	if (mon_idt_refresh(m, &e) < 0)
		mon_warn(m, "IDT: %s", e.msg);
}

void mon_handle_trap(struct ks_monitor *m)
{
	unsigned vcpu = m->stop.vcpu >= 0 ? (unsigned)m->stop.vcpu : 0;
	uint64_t ts = m->stop.recv_ns;
	struct ks_error e = { 0 };
	struct ks_x86_regs r;
	struct mon_bp bp;

	if (ks_gdb_read_regs(m->g, vcpu, &r, &e) < 0) {
		mon_warn(m, "cannot read the registers of vCPU %u: %s", vcpu, e.msg);
		return;
	}
	if (ks_gdb_lost_writes(m->g) != m->lost_seen) {
		/* Written without waiting, and refused: from now on each waits for its answer. */
		m->lost_seen = ks_gdb_lost_writes(m->g);
		m->p_ok = 0;
		mon_warn(m, "the gdbstub refused a register write of an emulated instruction: "
			 "a vCPU may have gone on in the wrong state");
	}
	if (m->stop.watch != KS_GDB_WATCH_NONE)
		watch_event(m, vcpu, &r, ts);
	const struct mon_bp *found = mon_bp_find(m, r.rip);
	if (!found) {
		m->st.unknown_stops += m->stop.watch == KS_GDB_WATCH_NONE;
		return;
	}
	/* A copy: what the events do may change the table (an IDT read). */
	bp = *found;
	m->skip = true;
	m->skip_vcpu = vcpu;
	m->skip_rip = r.rip;
	/* The magic instruction, xchg %bx,%bx, changes nothing: moving RIP past its 3 bytes
	 * costs one register write instead of a step. */
	m->skip_len = bp.roles & ROLE_MAGIC ? 3 : 0;
	m->skip_regs = r;
	m->skip_roles = bp.roles;
	m->skip_fresh = true;
	if (bp.roles & ROLE_MAGIC)
		magic_event(m, &bp, vcpu, &r, ts);
	if (bp.roles & ROLE_HANDLER)
		irq_event(m, &bp, vcpu, &r, ts);
	if (bp.roles & ROLE_SYSCALL)
		syscall_event(m, &bp, vcpu, &r, ts);
	if (bp.roles & ROLE_SYSRET)
		sysret_event(m, &bp, vcpu, &r, ts);
	if (bp.roles & ROLE_BREAK)
		break_event(m, &bp, vcpu, ts);
	if ((bp.roles & ROLE_LIDT) && !m->want_pause && !m->want_stop && !m->ended)
		lidt_step(m, vcpu);
}

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

struct ks_mon_x86 *ks_mon_x86_new(void)
{
	static const cs_mode modes[NMODES] = { CS_MODE_64, CS_MODE_32, CS_MODE_16 };
	struct ks_mon_x86 *x = calloc(1, sizeof(*x));

	for (int i = 0; x && i < NMODES; i++) {
		if (cs_open(CS_ARCH_X86, modes[i], &x->cs[i]) != CS_ERR_OK ||
		    cs_option(x->cs[i], CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK ||
		    !(x->in[i] = cs_malloc(x->cs[i]))) {
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

/* capstone's names of each register at 8, 4, 2 and 1 bytes, in gdb's order. */
static const x86_reg gpr_names[16][4] = {
	{ X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL },
	{ X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL },
	{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL },
	{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL },
	{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL },
	{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL },
	{ X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL },
	{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL },
	{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B },
	{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B },
	{ X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B },
	{ X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B },
	{ X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B },
	{ X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B },
	{ X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B },
	{ X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B },
};

static bool gpr_of(const cs_x86_op *op, struct gpr *g)
{
	static const x86_reg high[4] = { X86_REG_AH, X86_REG_BH, X86_REG_CH, X86_REG_DH };
	static const unsigned widths[4] = { 8, 4, 2, 1 };

	if (op->type != X86_OP_REG)
		return false;
	for (unsigned i = 0; i < 16; i++)
		for (unsigned k = 0; k < 4; k++)
			if (gpr_names[i][k] == op->reg) {
				*g = (struct gpr){ i, widths[k], 0 };
				return true;
			}
	for (unsigned i = 0; i < 4; i++)
		if (high[i] == op->reg) {
			*g = (struct gpr){ i, 1, 8 };
			return true;
		}
	return false;
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
