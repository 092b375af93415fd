/* monitor_hit.c: a vCPU stopped at one of the monitor's breakpoints: what happened there. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/gdb.h>

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
