/* monitor_arm.c: what the rules need, and the breakpoints and watchpoints that provide it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/vm.h>
#include <kscope/vmspec.h>

#include "monitor_internal.h"

bool ks_mon_has_error_code(unsigned vector)
{
	return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 ||
	       vector == 29 || vector == 30;
}

enum ks_event_kind ks_mon_vector_kind(unsigned vector)
{
	return vector < 32 && vector != 2 ? KS_EV_EXCEPTION : KS_EV_INTERRUPT;
}

static bool any_vector(const uint64_t v[4])
{
	return (v[0] | v[1] | v[2] | v[3]) != 0;
}

/* Adds the vectors f selects that make events of f's kind. */
static void add_vectors(struct mon_want *w, const struct ks_evfilter *f, enum ks_event_kind kind)
{
	uint64_t set[4];

	ks_evfilter_vectors(f, set);
	for (unsigned v = 0; v < 256; v++)
		if ((set[v / 64] >> (v % 64) & 1) && ks_mon_vector_kind(v) == kind)
			w->vectors[v / 64] |= 1ull << (v % 64);
}

static void want_all(struct mon_want *w)
{
	w->magic = w->test = w->syscall = w->sysret = w->serial = w->vm = true;
	memset(w->vectors, 0xff, sizeof(w->vectors));
}

int mon_plan(struct ks_monitor *m, struct ks_error *err)
{
	struct mon_want *w = &m->want;

	m->kvm = ks_vm_accel(m->vm) == KS_ACCEL_KVM;
	m->bp_type = m->kvm ? KS_GDB_BP_HW : KS_GDB_BP_SW;
	for (size_t i = 0; i < ks_evrules_count(m->rules); i++) {
		const struct ks_evfilter *f = ks_evrules_get(m->rules, i)->filter;
		enum ks_event_kind kind = ks_evfilter_kind(f);

		switch (kind) {
		case KS_EV_MAGIC: w->magic = true; break;
		case KS_EV_TEST: w->test = true; break;
		case KS_EV_INTERRUPT: case KS_EV_EXCEPTION: add_vectors(w, f, kind); break;
		case KS_EV_SYSCALL: w->syscall = true; break;
		case KS_EV_SYSRET:
			w->sysret = true;
			/* Only the entry can tell which call a sysret returns from. */
			w->syscall_nr |= ks_evfilter_ranges(f, NULL) > 0;
			break;
		case KS_EV_VM: w->vm = true; break;
		case KS_EV_SERIAL: w->serial = true; break;
		case KS_EV_KIND_COUNT: want_all(w); break;
		default: break;
		}
	}
	if (m->o.passive) {
		if (m->kvm)
			return ks_error_set(err, -EOPNOTSUPP, "events: passive mode follows QEMU's "
					    "-d int trace, which KVM does not write; run with "
					    "--accel tcg");
		w->trace = any_vector(w->vectors);
		memset(w->vectors, 0, sizeof(w->vectors));
	}
	return 0;
}

/* ---- the breakpoint table ---- */

struct mon_bp *mon_bp_find(struct ks_monitor *m, ks_gva_t addr)
{
	size_t lo = 0, hi = m->nbps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->bps[mid].addr == addr)
			return &m->bps[mid];
		if (m->bps[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct mon_bp *bp_insert(struct ks_monitor *m, ks_gva_t addr)
{
	size_t i = 0;

	if (m->nbps == m->capbps) {
		size_t cap = m->capbps ? m->capbps * 2 : 64;
		struct mon_bp *b = realloc(m->bps, cap * sizeof(*b));
		if (!b)
			return NULL;
		m->bps = b;
		m->capbps = cap;
	}
	while (i < m->nbps && m->bps[i].addr < addr)
		i++;
	memmove(&m->bps[i + 1], &m->bps[i], (m->nbps - i) * sizeof(*m->bps));
	m->nbps++;
	memset(&m->bps[i], 0, sizeof(m->bps[i]));
	m->bps[i].addr = addr;
	mon_sym(m, addr, m->bps[i].sym);
	return &m->bps[i];
}

size_t mon_hw_used(const struct ks_monitor *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nbps; i++)
		n += m->bps[i].armed;
	for (size_t i = 0; i < m->nwps; i++)
		n += m->wps[i].armed;
	return n;
}

/* Makes the stub's breakpoint at bp match its roles; drops an entry left without any. */
static int bp_sync(struct ks_monitor *m, struct mon_bp *bp, struct ks_error *err)
{
	int r = 0;

	if (bp->roles && !bp->armed) {
		if (m->kvm && mon_hw_used(m) >= KS_MONITOR_KVM_SLOTS)
			return ks_error_set(err, -ENOSPC, "breakpoint at 0x%llx: KVM's %d hardware "
					    "breakpoints are taken", (unsigned long long)bp->addr,
					    KS_MONITOR_KVM_SLOTS);
		r = ks_gdb_set_breakpoint(m->g, m->bp_type, bp->addr, 1, err);
		bp->armed = r == 0;
	} else if (!bp->roles) {
		if (bp->armed)
			r = ks_gdb_clear_breakpoint(m->g, m->bp_type, bp->addr, 1, err);
		size_t i = (size_t)(bp - m->bps);
		memmove(bp, bp + 1, (m->nbps - i - 1) * sizeof(*bp));
		m->nbps--;
	}
	return r;
}

int mon_bp_update(struct ks_monitor *m, ks_gva_t addr, unsigned add, unsigned remove,
		  struct ks_error *err)
{
	struct mon_bp *bp = mon_bp_find(m, addr);

	if (!bp && !add)
		return 0;
	if (!bp && !(bp = bp_insert(m, addr)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	bp->roles = (bp->roles | add) & ~remove;
	if (!(bp->roles & ROLE_HANDLER))
		memset(bp->vectors, 0, sizeof(bp->vectors));
	return m->defer ? 0 : bp_sync(m, bp, err);
}

void mon_disarm_all(struct ks_monitor *m)
{
	for (size_t i = 0; i < m->nbps; i++)
		if (m->bps[i].armed &&
		    ks_gdb_clear_breakpoint(m->g, m->bp_type, m->bps[i].addr, 1, NULL) == 0)
			m->bps[i].armed = false;
	for (size_t i = 0; i < m->nwps; i++)
		if (m->wps[i].armed && ks_gdb_clear_breakpoint(m->g, m->wps[i].type,
							       m->wps[i].addr, m->wps[i].len,
							       NULL) == 0)
			m->wps[i].armed = false;
}

/* ---- the static sites: magic, syscall entry, sysret, lidt, the user's targets ---- */

/* The spec of the first rule of kind (or "any"), for messages; fallback when none. */
static const char *rule_named(const struct ks_monitor *m, enum ks_event_kind a,
			      enum ks_event_kind b, const char *fallback)
{
	for (size_t i = 0; i < ks_evrules_count(m->rules); i++) {
		const struct ks_evfilter *f = ks_evrules_get(m->rules, i)->filter;
		enum ks_event_kind k = ks_evfilter_kind(f);

		if (k == a || k == b || k == KS_EV_KIND_COUNT)
			return ks_evfilter_spec(f);
	}
	return fallback;
}

static bool usable_magic(const struct ks_sites *s, const struct ks_site *site)
{
	if (site->flags & KS_SITE_DATA)
		return false;
	if (ks_sites_have_section(s))
		return (site->flags & KS_SITE_SECTION) && !(site->flags & KS_SITE_BAD);
	return site->flags & KS_SITE_DISASM;
}

/* Gives every usable site of kind the role; returns how many, or -errno. */
static int add_sites(struct ks_monitor *m, enum ks_site_kind kind, unsigned role,
		     struct ks_error *err)
{
	size_t n;
	const struct ks_site *v = ks_sites_list(m->sites, kind, &n);
	int count = 0, r;

	for (size_t i = 0; i < n; i++) {
		if (kind == KS_SITE_MAGIC ? !usable_magic(m->sites, &v[i]) :
		    (v[i].flags & KS_SITE_DATA) != 0)
			continue;
		if ((r = mon_bp_update(m, v[i].addr, role, 0, err)) < 0)
			return r;
		count++;
	}
	return count;
}

static int scan_sites(struct ks_monitor *m, struct ks_error *err)
{
	const char *kernel = m->o.kernel ? m->o.kernel : ks_vm_spec(m->vm)->kernel;
	struct ks_error e = { 0 };

	m->sites = ks_sites_scan(kernel, m->syms, m->o.syscall_entry, &e);
	if (!m->sites)
		return ks_error_set(err, e.code, "events: %s", e.msg);
	return 0;
}

static int arm_syscall(struct ks_monitor *m, struct ks_error *err)
{
	const struct ks_syscall_entry *en = ks_sites_syscall_entry(m->sites);

	if (!en)
		return ks_error_set(err, -ENOENT, "%s: no syscall entry found in the kernel; name "
				    "it with --syscall-entry SYMBOL",
				    rule_named(m, KS_EV_SYSCALL, KS_EV_SYSRET, "syscall"));
	m->syscall_entry = en->addr;
	return mon_bp_update(m, en->addr, ROLE_SYSCALL, 0, err);
}

static int arm_sites(struct ks_monitor *m, struct ks_error *err)
{
	const struct mon_want *w = &m->want;
	int r = 0;

	if (!w->magic && !w->test && !w->syscall && !w->syscall_nr && !w->sysret &&
	    !any_vector(w->vectors))
		return 0;
	if ((r = scan_sites(m, err)) < 0)
		return r;
	if ((w->magic || w->test) && (r = add_sites(m, KS_SITE_MAGIC, ROLE_MAGIC, err)) >= 0) {
		m->nmagic = (size_t)r;
		m->magic_from = ks_sites_have_section(m->sites) ? "kt_magic_sites" : "disassembly";
	}
	if (r >= 0 && (w->syscall || w->syscall_nr))
		r = arm_syscall(m, err);
	if (r >= 0 && w->sysret && (r = add_sites(m, KS_SITE_SYSRET, ROLE_SYSRET, err)) >= 0)
		m->nsysret = (size_t)r;
	/* The IDT must be read again whenever the kernel loads another. */
	if (r >= 0 && any_vector(w->vectors) &&
	    (r = add_sites(m, KS_SITE_LIDT, ROLE_LIDT, err)) >= 0)
		m->nlidt = (size_t)r;
	return r < 0 ? r : 0;
}

static enum ks_gdb_bp_type watch_type(enum ks_evaccess a)
{
	return a == KS_EVACC_WRITE ? KS_GDB_WP_WRITE :
	       a == KS_EVACC_READ ? KS_GDB_WP_READ : KS_GDB_WP_ACCESS;
}

static int add_watch(struct ks_monitor *m, const char *spec, const struct ks_evtarget *t,
		     struct ks_error *err)
{
	struct mon_wp *w;

	if (t->addr % t->len)
		return ks_error_set(err, -EINVAL, "%s: 0x%llx is not aligned to its length %u",
				    spec, (unsigned long long)t->addr, t->len);
	w = realloc(m->wps, (m->nwps + 1) * sizeof(*w));
	if (!w)
		return ks_error_set(err, -ENOMEM, "out of memory");
	m->wps = w;
	m->wps[m->nwps++] = (struct mon_wp){ .addr = t->addr, .len = t->len,
					     .type = watch_type(t->access) };
	return 0;
}

static int arm_targets(struct ks_monitor *m, struct ks_error *err)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < ks_evrules_count(m->rules); i++) {
		const struct ks_evfilter *f = ks_evrules_get(m->rules, i)->filter;
		struct ks_evtarget t;

		if (ks_evfilter_target(f, &t) < 0)
			continue;
		if (!t.resolved)
			return ks_error_set(err, -ENOENT, "%s: no symbols to find '%s' in",
					    ks_evfilter_spec(f), t.expr);
		if (ks_evfilter_kind(f) == KS_EV_BREAKPOINT)
			r = mon_bp_update(m, t.addr, ROLE_BREAK, 0, err);
		else
			r = add_watch(m, ks_evfilter_spec(f), &t, err);
	}
	return r;
}

/* ---- arming it all, within KVM's debug registers ---- */

void ks_mon_kvm_message(const struct ks_mon_need *needs, size_t n, size_t total,
			unsigned slots, char *buf, size_t size)
{
	size_t o = 0;

	o += (size_t)snprintf(buf, size, "events: %zu breakpoints needed (", total);
	for (size_t i = 0; i < n && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s: %zu", i ? ", " : "", needs[i].what,
				      needs[i].count);
	if (o < size)
		snprintf(buf + o, size - o, ") but KVM allows %u hardware breakpoints; run with "
			 "--accel tcg", slots);
}

static size_t count_roles(const struct ks_monitor *m, unsigned roles)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nbps; i++)
		n += (m->bps[i].roles & roles) != 0;
	return n;
}

/* Whose breakpoints they are, for the refusal. */
static size_t kvm_needs(const struct ks_monitor *m, struct ks_mon_need *needs, size_t max)
{
	size_t n = 0;

	if (m->nmagic && n < max)
		needs[n++] = (struct ks_mon_need){ rule_named(m, KS_EV_MAGIC, KS_EV_TEST, "magic"),
						   m->nmagic };
	if (count_roles(m, ROLE_HANDLER | ROLE_LIDT) && n < max)
		needs[n++] = (struct ks_mon_need){
			rule_named(m, KS_EV_EXCEPTION, KS_EV_INTERRUPT, "interrupt"),
			count_roles(m, ROLE_HANDLER | ROLE_LIDT) };
	if (m->syscall_entry && n < max)
		needs[n++] = (struct ks_mon_need){ rule_named(m, KS_EV_SYSCALL, KS_EV_SYSRET,
							      "syscall"), 1 };
	if (m->nsysret && n < max)
		needs[n++] = (struct ks_mon_need){ rule_named(m, KS_EV_SYSRET, KS_EV_SYSRET,
							      "sysret"), m->nsysret };
	for (size_t i = 0; i < ks_evrules_count(m->rules) && n < max; i++) {
		const struct ks_evfilter *f = ks_evrules_get(m->rules, i)->filter;
		struct ks_evtarget t;

		if (ks_evfilter_target(f, &t) == 0)
			needs[n++] = (struct ks_mon_need){ ks_evfilter_spec(f), 1 };
	}
	return n;
}

static int arm_collected(struct ks_monitor *m, struct ks_error *err)
{
	size_t total = m->nbps + m->nwps;
	int r = 0;

	if (m->kvm && total > KS_MONITOR_KVM_SLOTS) {
		struct ks_mon_need needs[16];
		char msg[sizeof(err->msg)];
		size_t n = kvm_needs(m, needs, 16);

		ks_mon_kvm_message(needs, n, total, KS_MONITOR_KVM_SLOTS, msg, sizeof(msg));
		return ks_error_set(err, -ENOSPC, "%s", msg);
	}
	m->defer = false;
	for (size_t i = 0; r == 0 && i < m->nbps; i++)
		r = bp_sync(m, &m->bps[i], err);
	for (size_t i = 0; r == 0 && i < m->nwps; i++) {
		struct mon_wp *w = &m->wps[i];

		r = ks_gdb_set_breakpoint(m->g, w->type, w->addr, w->len, err);
		w->armed = r == 0;
	}
	return r;
}

int mon_arm_static(struct ks_monitor *m, struct ks_error *err)
{
	int r;

	m->defer = true;
	if ((r = arm_sites(m, err)) < 0 || (r = arm_targets(m, err)) < 0)
		return r;
	if (any_vector(m->want.vectors) && (r = mon_idt_refresh(m, err)) < 0)
		return r;
	/* Without it pushes are stepped: not worth failing for. */
	if (!any_vector(m->want.vectors) && mon_wants_dr7(m))
		mon_dr7_refresh(m, NULL);
	return arm_collected(m, err);
}

/* ---- saying what is armed ---- */

int ks_monitor_describe(const struct ks_monitor *m, char *buf, size_t size)
{
	const struct ks_syscall_entry *en = m->sites ? ks_sites_syscall_entry(m->sites) : NULL;
	char tmp[2048];
	size_t o = 0;

#define PUT(...) (o += (size_t)snprintf(tmp + o, o < sizeof(tmp) ? sizeof(tmp) - o : 0, \
					__VA_ARGS__))
	if (m->nmagic)
		PUT("%s: %zu magic sites (%s); ", rule_named(m, KS_EV_MAGIC, KS_EV_TEST, "magic"),
		    m->nmagic, m->magic_from);
	if (any_vector(m->want.vectors))
		PUT("%s: %zu handler entries, %zu lidt sites; ",
		    rule_named(m, KS_EV_EXCEPTION, KS_EV_INTERRUPT, "interrupt"),
		    count_roles(m, ROLE_HANDLER), m->nlidt);
	if (m->want.trace)
		PUT("%s: the -d int trace (passive); ",
		    rule_named(m, KS_EV_EXCEPTION, KS_EV_INTERRUPT, "interrupt"));
	if (en && m->syscall_entry)
		PUT("%s: entry %s (%s); ", rule_named(m, KS_EV_SYSCALL, KS_EV_SYSRET, "syscall"),
		    en->sym ? en->sym : "?", ks_entry_how_name(en->how));
	if (m->nsysret)
		PUT("%s: %zu sysret sites; ", rule_named(m, KS_EV_SYSRET, KS_EV_SYSRET, "sysret"),
		    m->nsysret);
	for (size_t i = 0; i < ks_evrules_count(m->rules); i++) {
		const struct ks_evfilter *f = ks_evrules_get(m->rules, i)->filter;
		struct ks_evtarget t;

		if (ks_evfilter_target(f, &t) == 0)
			PUT("%s: 0x%llx; ", ks_evfilter_spec(f), (unsigned long long)t.addr);
	}
	if (m->want.serial)
		PUT("%s: %u serial ports; ", rule_named(m, KS_EV_SERIAL, KS_EV_SERIAL, "serial"),
		    m->nchans);
	if (m->want.vm)
		PUT("%s: QMP events; ", rule_named(m, KS_EV_VM, KS_EV_VM, "vm"));
	PUT("%s", !m->nbps && !m->nwps ? "no breakpoints" :
	    m->kvm ? "KVM: hardware breakpoints" : "TCG: software breakpoints");
#undef PUT
	return snprintf(buf, size, "%s", tmp);
}
