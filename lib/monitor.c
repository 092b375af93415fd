/* monitor.c: the event monitor's life, its stream of events, the actions rules ask for, and getting past its sites. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/gdb.h>
#include <kscope/mem.h>
#include <kscope/qmp.h>
#include <kscope/vm.h>

#include "monitor_internal.h"

void ks_monitor_opts_init(struct ks_monitor_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->history = KS_MONITOR_HISTORY;
	o->dump_events = KS_MONITOR_DUMP_EVENTS;
}

void mon_warn(struct ks_monitor *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->warning, sizeof(m->warning), fmt, ap);
	va_end(ap);
	m->st.warnings++;
	if (m->o.on_warn)
		m->o.on_warn(m, m->warning, m->o.warn_data);
}

void mon_sym(const struct ks_monitor *m, ks_gva_t addr, char *buf)
{
	buf[0] = '\0';
	if (m->syms && ks_sym_format(m->syms, addr, buf, KS_EVENT_SYM) < 0)
		buf[0] = '\0';
}

ks_read_gva_fn mon_reader(struct ks_monitor *m, const struct ks_x86_regs *regs, void **ctx)
{
	/* Before paging the addresses the vCPU uses are physical ones. */
	if (!(regs->cr0 & KS_X86_CR0_PG)) {
		*ctx = m->mem;
		return ks_mem_read_identity;
	}
	ks_vtop_set_cr3(m->vt, regs->cr3, regs->cr4 & (1ull << 12));
	*ctx = m->vt;
	return ks_vtop_read_gva;
}

/* ---- the stream ---- */

static void keep(struct ks_monitor *m, const struct ks_event *ev)
{
	m->hist[m->hist_next] = *ev;
	m->hist_next = (m->hist_next + 1) % m->hist_cap;
	if (m->hist_n < m->hist_cap)
		m->hist_n++;
}

enum ks_evaction mon_emit(struct ks_monitor *m, struct ks_event *ev, uint64_t ts)
{
	enum ks_evaction act;

	ev->seq = ++m->seq;
	ev->ts_ns = ts > m->t0 ? ts - m->t0 : 0;
	m->st.events++;
	act = ks_evrules_match(m->rules, ev);
	if (act == KS_EVACT_NONE)
		return act;
	m->st.shown++;
	keep(m, ev);
	if (m->o.on_event)
		m->o.on_event(m, ev, act, m->o.event_data);
	if (act == KS_EVACT_PAUSE)
		m->want_pause = true;
	if (act == KS_EVACT_DUMP && !m->want_dump) {
		m->want_dump = true;
		m->dump_ev = *ev;
	}
	if (act == KS_EVACT_STOP)
		m->want_stop = true;
	return act;
}

size_t ks_monitor_history(const struct ks_monitor *m, struct ks_event *out, size_t max)
{
	size_t n = m->hist_n < max ? m->hist_n : max;
	size_t first = (m->hist_next + m->hist_cap - n) % m->hist_cap;

	for (size_t i = 0; i < n; i++)
		out[i] = m->hist[(first + i) % m->hist_cap];
	return n;
}

/* ---- run control ---- */

/* Continues every vCPU, the one that stopped last at pc (one packet: "c ADDR"). */
static int continue_at(struct ks_monitor *m, ks_gva_t pc, struct ks_error *err)
{
	int r;

	m->own_resumes++;
	if ((r = ks_gdb_continue_at(m->g, pc, NULL, 0, err)) < 0)
		m->own_resumes--;
	return r;
}

/* True when "c ADDR" moves the vCPU to skip: the last stop was its own. */
static bool can_continue_at(const struct ks_monitor *m)
{
	const struct ks_gdb_stop *last = ks_gdb_last_stop(m->g);

	return m->skip && m->skip_len && last && last->vcpu == (int)m->skip_vcpu;
}

/*
 * True when the vCPU runs 64-bit code: it is in long mode and at a handler or syscall entry
 * (the CPU enters those in 64-bit mode), or at an address above 4 GiB, which QEMU's gdbstub
 * reports only for a vCPU in 64-bit mode (it cuts RIP to 32 bits in the others).
 */
static bool runs_64bit(const struct ks_monitor *m, const struct ks_x86_regs *r)
{
	if (!(r->efer & KS_X86_EFER_LMA))
		return false;
	return (r->rip >> 32) != 0 || (m->skip_roles & (ROLE_HANDLER | ROLE_SYSCALL));
}

/* Decodes the instruction at the site: at most 15 bytes, not past its 4 KiB page (a fetch
 * from the next one could fault where the host's read would not). */
static int plan(struct ks_monitor *m, struct ks_mon_emul *e)
{
	const struct ks_x86_regs *r = &m->skip_regs;
	size_t n = 0x1000 - (r->rip & 0xfff);
	uint8_t code[15];
	ks_gpa_t gpa;
	int rc;

	if (n > sizeof(code))
		n = sizeof(code);
	if ((rc = ks_mon_emul_access(m->mem, r, r->rip, n, false, &gpa)) < 0 ||
	    (rc = ks_mem_read(m->mem, gpa, code, n, NULL)) < 0)
		return rc;
	return ks_mon_emulate(m->x86, code, n, r, runs_64bit(m, r), e);
}

static bool overlaps(ks_gva_t a, size_t alen, ks_gva_t b, size_t blen)
{
	return a < b + blen && b < a + alen;
}

/* The push's memory: where the vCPU could write it, and nothing would notice the store
 * but the guest's own reads (a watchpoint, the guest's data breakpoints). */
static bool store_ok(struct ks_monitor *m, const struct ks_mon_emul *e, ks_gpa_t *gpa)
{
	if (!m->dr7_known)
		return false;
	for (size_t i = 0; i < m->nwps; i++)
		if (m->wps[i].armed && overlaps(e->store_gva, 8, m->wps[i].addr, m->wps[i].len))
			return false;
	return ks_mon_emul_access(m->mem, &m->skip_regs, e->store_gva, 8, true, gpa) == 0;
}

static int write_store(struct ks_monitor *m, const struct ks_mon_emul *e, ks_gpa_t gpa,
		       struct ks_error *err)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(e->store_value >> (8 * i));
	if (ks_mem_is_mapped(m->mem))
		return ks_mem_write(m->mem, gpa, b, sizeof(b), err);
	return ks_gdb_write_virt(m->g, m->skip_vcpu, e->store_gva, b, sizeof(b), err);
}

/* Writes the registers one request each, learning that the stub takes them; on a refusal
 * puts back those written, so that a step starts from where the vCPU stopped. */
static int write_regs_waiting(struct ks_monitor *m, const struct ks_mon_emul *e)
{
	struct ks_error err = { 0 };
	size_t i;

	for (i = 0; i < e->nregs; i++) {
		if (ks_gdb_write_reg_u64(m->g, m->skip_vcpu, e->regs[i].reg, e->regs[i].value,
					 &err) < 0)
			break;
		m->p_ok |= 1ull << e->regs[i].reg;
	}
	if (i == e->nregs)
		return 0;
	mon_warn(m, "emulating %s: %s; stepping instead", e->what, err.msg);
	while (i-- > 0)
		ks_gdb_write_reg_u64(m->g, m->skip_vcpu, e->regs[i].reg,
				     ks_mon_emul_reg(&m->skip_regs, e->regs[i].reg), NULL);
	return -EIO;
}

bool mon_wants_dr7(const struct ks_monitor *m)
{
	if (m->o.no_emulation)
		return false;
	/* Magic sites are passed without emulation. */
	for (size_t i = 0; i < m->nbps; i++)
		if (m->bps[i].roles & ~(unsigned)ROLE_MAGIC)
			return true;
	return false;
}

/* Whether the site may be passed by emulation at all. */
static bool can_emulate(const struct ks_monitor *m)
{
	const struct ks_gdb_stop *last = ks_gdb_last_stop(m->g);

	/* "c ADDR" moves the vCPU that stopped last; a hold since the stop may have changed
	 * what the registers read then say; the guest's own breakpoints would see the step. */
	return m->skip && !m->skip_len && m->skip_fresh && !m->o.no_emulation && m->x86 &&
	       !m->dr7_armed && last && last->vcpu == (int)m->skip_vcpu;
}

/* Gets the vCPU held at a site past it by emulating the instruction there, and continues the
 * VM. Returns 1 when the VM runs on, 0 when the instruction must be stepped instead (nothing
 * changed), or the error of continuing. */
static int emulate_site(struct ks_monitor *m, struct ks_error *err)
{
	struct ks_mon_emul e;
	ks_gpa_t gpa = 0;
	bool waiting = false;
	int r;

	if (!can_emulate(m) || plan(m, &e) < 0 || (e.store && !store_ok(m, &e, &gpa)))
		return 0;
	/* A stub not yet known to take a register gets it in a request of its own first. */
	for (size_t i = 0; i < e.nregs; i++)
		waiting |= !(m->p_ok >> e.regs[i].reg & 1);
	/* The store first: a step after a failed register write stores the same again. */
	if (e.store && write_store(m, &e, gpa, NULL) < 0)
		return 0;
	if (waiting && write_regs_waiting(m, &e) < 0)
		return 0;
	m->skip = false;
	m->own_resumes++;
	r = ks_gdb_continue_at(m->g, m->skip_rip + e.len, waiting ? NULL : e.regs,
			       waiting ? 0 : e.nregs, err);
	if (r < 0) {
		m->own_resumes--;
		return r;
	}
	m->st.emulated++;
	return 1;
}

/* Gets the vCPU that stopped at a site past it; a step may bring a watchpoint's event. */
static int skip_site(struct ks_monitor *m, struct ks_error *err)
{
	struct ks_gdb_stop st;
	int r;

	m->skip = false;
	if (m->skip_len)
		return ks_gdb_write_reg_u64(m->g, m->skip_vcpu, KS_X86_RIP,
					    m->skip_rip + m->skip_len, err);
	if ((r = mon_step(m, m->skip_vcpu, &st, err)) < 0)
		return r;
	m->st.stepped++;
	if (st.kind == KS_GDB_STOP_SIGNAL && st.watch != KS_GDB_WATCH_NONE) {
		m->stop = st;
		m->busy++;
		mon_handle_trap(m);
		m->busy--;
	}
	return 0;
}

static int resume_vcpus(struct ks_monitor *m, struct ks_error *err)
{
	int r;

	/* QEMU reports the resume over QMP too: that one is not an event. */
	m->own_resumes++;
	if ((r = ks_gdb_continue(m->g, err)) < 0)
		m->own_resumes--;
	return r;
}

static void destroy_vm(struct ks_monitor *m)
{
	m->want_stop = m->want_dump = m->want_pause = false;
	m->ended = true;
	ks_vm_destroy(m->vm);
}

/* Does what the events asked for; true when the VM is to stay stopped. */
static bool act(struct ks_monitor *m)
{
	struct ks_error e = { 0 };

	if (m->want_stop) {
		destroy_vm(m);
		return true;
	}
	if (m->want_dump) {
		m->want_dump = false;
		m->busy++;
		if (mon_dump(m, &m->dump_ev, &e) < 0)
			mon_warn(m, "dump: %s", e.msg);
		m->busy--;
	}
	if (m->want_pause) {
		m->want_pause = false;
		m->paused = true;
	}
	/* A QMP stop still on its way would stop the VM again just after it continued. */
	return m->paused || m->halted || m->ended || !m->started || m->qmp_stop_inflight;
}

int mon_settle(struct ks_monitor *m, struct ks_error *err)
{
	struct ks_error local = { 0 };
	int r = 0;

	if (!err)
		err = &local;
	/* A stop reply not yet looked at may say the VM cannot run: its work settles. */
	if (m->busy || m->ended || m->work_timer > 0 || ks_gdb_state(m->g) != KS_GDB_STOPPED)
		return 0;
	while (!act(m)) {
		if (can_continue_at(m)) {
			m->skip = false;
			r = continue_at(m, m->skip_rip + m->skip_len, err);
			break;
		}
		/* Busy: what runs meanwhile (a pause asked for) waits for this loop. */
		m->busy++;
		r = m->skip ? emulate_site(m, err) : 0;
		if (r == 0 && m->skip)
			r = skip_site(m, err);
		m->busy--;
		if (r != 0) {
			/* Emulated (the VM runs on already), or an error. */
			r = r > 0 ? 0 : r;
			break;
		}
		/* Getting past the site may have made events of its own, even a new site. */
		if (m->want_stop || m->want_dump || m->want_pause || m->skip)
			continue;
		r = resume_vcpus(m, err);
		break;
	}
	if (r < 0 && ks_gdb_connected(m->g))
		mon_warn(m, "cannot continue the VM: %s", err->msg);
	return r;
}

int ks_monitor_resume(struct ks_monitor *m, struct ks_error *err)
{
	if (m->ended || !ks_gdb_connected(m->g))
		return ks_error_set(err, -ENOTCONN, "resume: the VM has ended");
	if (m->halted)
		return ks_error_set(err, -EPIPE, "resume: the VM stopped at its shutdown and "
				    "cannot run again");
	m->started = true;
	m->paused = false;
	/* Held: what the registers said at the stop may have changed since. */
	m->skip_fresh = false;
	if (ks_gdb_state(m->g) != KS_GDB_STOPPED || m->busy)
		return 0;
	if (m->want.vectors[0] | m->want.vectors[1] | m->want.vectors[2] | m->want.vectors[3]) {
		struct ks_error e = { 0 };
		m->busy++;
		if (mon_idt_refresh(m, &e) < 0)
			mon_warn(m, "IDT: %s", e.msg);
		m->busy--;
	} else if (mon_wants_dr7(m)) {
		/* The guest may have set its debug registers while it ran. */
		m->busy++;
		mon_dr7_refresh(m, NULL);
		m->busy--;
	}
	return mon_settle(m, err);
}

int ks_monitor_pause(struct ks_monitor *m, struct ks_error *err)
{
	if (m->ended)
		return ks_error_set(err, -ENOTCONN, "pause: the VM has ended");
	/* Held already: a step under way keeps it held. */
	if (m->paused && (m->busy || ks_gdb_state(m->g) == KS_GDB_STOPPED))
		return 0;
	/* Stopped with work going on or a stop not yet looked at: paused once that is done. */
	if (ks_gdb_state(m->g) == KS_GDB_STOPPED && !m->busy && m->work_timer <= 0) {
		m->paused = true;
		return 0;
	}
	m->want_pause = true;
	if (ks_gdb_state(m->g) != KS_GDB_STOPPED)
		mon_request_stop(m);
	return 0;
}

int ks_monitor_step(struct ks_monitor *m, unsigned vcpu, struct ks_x86_regs *regs,
		    struct ks_error *err)
{
	struct ks_gdb_stop st;
	int r;

	if (ks_monitor_ended(m))
		return ks_error_set(err, -ENOTCONN, "step: the VM has ended");
	if (m->halted)
		return ks_error_set(err, -EPIPE, "step: the VM stopped at its shutdown and cannot "
				    "run again");
	if (!ks_monitor_paused(m))
		return ks_error_set(err, -EBUSY, "step: the VM runs: pause it first");
	if (vcpu >= m->nvcpus)
		return ks_error_set(err, -EINVAL, "step: no vCPU %u (the VM has %u)", vcpu,
				    m->nvcpus);
	/* A vCPU held at a site steps over it: it must not be moved past it again. */
	if (m->skip && m->skip_vcpu == vcpu)
		m->skip = false;
	m->busy++;
	r = mon_step(m, vcpu, &st, err);
	if (r == 0 && st.kind == KS_GDB_STOP_SIGNAL && st.watch != KS_GDB_WATCH_NONE) {
		m->stop = st;
		m->stop.output = NULL;
		mon_handle_trap(m);
	}
	m->busy--;
	if (r < 0)
		return r;
	/* A dump or stop the step's events asked for; paused, the VM stays stopped. */
	mon_settle(m, NULL);
	if (ks_monitor_ended(m))
		return ks_error_set(err, -ENOTCONN, "step: the VM has ended");
	return regs ? ks_gdb_read_regs(m->g, vcpu, regs, err) : 0;
}

bool ks_monitor_paused(const struct ks_monitor *m)
{
	/* A VM continued behind the monitor's back (gdb or QMP) is not paused any more; one the
	 * monitor works on (a step, a dump) is its own until it is done. */
	return m->paused && !m->ended && !m->busy && m->work_timer <= 0 &&
	       ks_gdb_state(m->g) == KS_GDB_STOPPED;
}

bool ks_monitor_ended(const struct ks_monitor *m)
{
	return m->ended || !ks_gdb_connected(m->g) || ks_gdb_state(m->g) == KS_GDB_EXITED;
}

int ks_monitor_dump(struct ks_monitor *m, struct ks_error *err)
{
	int r;

	if (ks_monitor_ended(m))
		return ks_error_set(err, -ENOTCONN, "dump: the VM has ended");
	if (ks_gdb_state(m->g) != KS_GDB_STOPPED)
		return ks_error_set(err, -EBUSY, "dump: the VM runs: pause it first");
	m->busy++;
	r = mon_dump(m, NULL, err);
	m->busy--;
	return r;
}

/* ---- life ---- */

static int gdb_phys_read(void *ctx, ks_gpa_t gpa, void *buf, size_t len)
{
	return ks_gdb_read_phys(ctx, gpa, buf, len, NULL);
}

static int alloc_state(struct ks_monitor *m, struct ks_error *err)
{
	static const struct ks_mem_reader_ops ops = { .read = gdb_phys_read };

	if (!m->mem && !(m->mem = m->own_mem = ks_mem_new_reader(&ops, m->g, err)))
		return err ? err->code : -ENOMEM;
	if (!(m->vt = ks_vtop_new(m->mem, err)))
		return err ? err->code : -ENOMEM;
	if (!(m->x86 = ks_mon_x86_new(err)))
		return err ? err->code : -ENOMEM;
	m->nvcpus = ks_gdb_vcpu_count(m->g);
	m->hist_cap = m->o.history ? m->o.history : 1;
	m->hist = calloc(m->hist_cap, sizeof(*m->hist));
	m->sys = calloc(m->nvcpus ? m->nvcpus : 1, sizeof(*m->sys));
	if (!m->hist || !m->sys)
		return ks_error_set(err, -ENOMEM, "out of memory");
	return 0;
}

struct ks_monitor *ks_monitor_new(struct ks_loop *loop, struct ks_vm *vm, struct ks_gdb *gdb,
				  struct ks_mem *mem, const struct ks_symtab *syms,
				  struct ks_evrules *rules, const struct ks_monitor_opts *opts,
				  struct ks_error *err)
{
	struct ks_monitor *m = calloc(1, sizeof(*m));

	if (!m) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	m->loop = loop;
	m->vm = vm;
	m->g = gdb;
	m->mem = mem;
	m->syms = syms;
	m->rules = rules;
	if (opts)
		m->o = *opts;
	else
		ks_monitor_opts_init(&m->o);
	m->t0 = ks_loop_now_ns();
	if (ks_gdb_state(gdb) != KS_GDB_STOPPED) {
		ks_error_set(err, -EBUSY, "events: the VM must be stopped when the monitor starts");
		goto out;
	}
	if (alloc_state(m, err) < 0 || ks_evrules_resolve(rules, syms, err) < 0 ||
	    mon_plan(m, err) < 0)
		goto out;
	ks_gdb_on_stop(gdb, mon_on_stop, m);
	if (mon_arm_static(m, err) < 0 || mon_sources_start(m, err) < 0)
		goto out;
	return m;
out:
	ks_monitor_free(m);
	return NULL;
}

/* Leaves no breakpoint behind in a VM that goes on without its monitor. */
static void disarm(struct ks_monitor *m)
{
	bool was_running = ks_gdb_state(m->g) == KS_GDB_RUNNING;

	if (m->ended || !ks_gdb_connected(m->g) || ks_vm_state(m->vm) == KS_VM_ENDED)
		return;
	if (was_running && ks_gdb_interrupt(m->g, NULL, NULL) < 0)
		return;
	if (ks_gdb_state(m->g) != KS_GDB_STOPPED)
		return;
	mon_disarm_all(m);
	if (was_running)
		ks_gdb_continue(m->g, NULL);
}

void ks_monitor_free(struct ks_monitor *m)
{
	if (!m)
		return;
	/* Disarming runs the loop: what comes meanwhile is not for this monitor any more. */
	m->freeing = true;
	mon_sources_stop(m);
	if (m->g && m->vt) {
		ks_gdb_on_stop(m->g, NULL, NULL);
		disarm(m);
	}
	if (m->work_timer > 0)
		ks_loop_del_timer(m->loop, m->work_timer);
	if (m->vmstop_timer > 0)
		ks_loop_del_timer(m->loop, m->vmstop_timer);
	if (m->qmp_stop_inflight)
		ks_qmp_cancel(m->qmp_stop_q, m->qmp_stop_id);
	mon_test_free(m);
	ks_sites_free(m->sites);
	ks_mon_x86_free(m->x86);
	ks_vtop_free(m->vt);
	ks_mem_free(m->own_mem);
	free(m->hist);
	free(m->bps);
	free(m->wps);
	free(m->sys);
	free(m);
}

/* ---- what it did ---- */

void ks_monitor_stats(const struct ks_monitor *m, struct ks_monitor_stats *st)
{
	*st = m->st;
	st->breakpoints = st->watchpoints = 0;
	st->handler_entries = st->user_breaks = 0;
	for (size_t i = 0; i < m->nbps; i++) {
		st->breakpoints += m->bps[i].armed;
		st->handler_entries += !!(m->bps[i].roles & ROLE_HANDLER);
		st->user_breaks += !!(m->bps[i].roles & ROLE_BREAK);
	}
	for (size_t i = 0; i < m->nwps; i++)
		st->watchpoints += m->wps[i].armed;
	st->magic_sites = m->nmagic;
	st->sysret_sites = m->nsysret;
	st->lidt_sites = m->nlidt;
	st->syscall_entry = m->syscall_entry != 0;
}

const char *ks_monitor_last_warning(const struct ks_monitor *m)
{
	return m->warning[0] ? m->warning : NULL;
}
