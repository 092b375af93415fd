/* monitor_dump.c: dumps: every vCPU's registers, frame-pointer backtraces, the last events. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/qmp.h>
#include <kscope/vm.h>

#include "monitor_internal.h"

#define SEC 1000000000ll

size_t ks_mon_backtrace(ks_read_gva_fn read, void *ctx, ks_gva_t rip, ks_gva_t rbp,
			struct ks_monitor_frame *frames, size_t max, char *why, size_t size)
{
	size_t n = 0;
	ks_gva_t fp = rbp;

	if (max == 0)
		return 0;
	memset(&frames[n], 0, sizeof(frames[n]));
	frames[n++].pc = rip;
	snprintf(why, size, "frame limit");
	while (n < max) {
		uint64_t q[2];

		if (!fp) {
			snprintf(why, size, "end of chain");
			break;
		}
		if (fp & 7) {
			snprintf(why, size, "frame pointer 0x%llx is misaligned",
				 (unsigned long long)fp);
			break;
		}
		if (read(ctx, fp, q, sizeof(q)) < 0) {
			snprintf(why, size, "frame pointer 0x%llx does not read",
				 (unsigned long long)fp);
			break;
		}
		if (!q[1]) {
			snprintf(why, size, "end of chain");
			break;
		}
		memset(&frames[n], 0, sizeof(frames[n]));
		frames[n].pc = q[1];
		frames[n++].fp = fp;
		/* Frames of one stack lie at growing addresses; anything else is a loop. */
		if (q[0] && q[0] <= fp) {
			snprintf(why, size, "frame pointer 0x%llx does not grow",
				 (unsigned long long)q[0]);
			break;
		}
		fp = q[0];
	}
	return n;
}

/* ---- registers ---- */

/* Fills what gdb could not give from HMP's dump; true when anything came from there. */
static bool regs_from_hmp(struct ks_monitor *m, struct ks_monitor_cpu *cpus, unsigned n)
{
	struct ks_qmp *q = ks_vm_qmp(m->vm);
	struct ks_mon_hmp_cpu *h = calloc(n, sizeof(*h));
	char *out = NULL;
	bool used = false;
	int got;

	if (h && q && ks_qmp_hmp(q, "info registers -a", &out, 5 * SEC, NULL) == 0 &&
	    (got = ks_mon_parse_hmp_regs(out, h, n)) > 0)
		for (int i = 0; i < got; i++) {
			unsigned v = h[i].index;

			if (v < n && !cpus[v].have_regs) {
				cpus[v].regs = h[i].regs;
				cpus[v].have_regs = used = true;
			}
		}
	free(out);
	free(h);
	return used;
}

static void walk(struct ks_monitor *m, struct ks_monitor_cpu *c, const struct ks_event *ev)
{
	const struct ks_x86_regs *r = &c->regs;
	ks_gva_t rip = r->rip;
	size_t first = 0;
	void *ctx;

	if (!(r->efer & KS_X86_EFER_LMA)) {
		c->frames[0] = (struct ks_monitor_frame){ .pc = rip };
		c->nframes = 1;
		snprintf(c->bt_end, sizeof(c->bt_end), "not in long mode");
		goto names;
	}
	/* At a handler's entry RBP is still the interrupted code's: the frame RIP starts it. */
	if (ev && (ev->kind == KS_EV_EXCEPTION || ev->kind == KS_EV_INTERRUPT) &&
	    ev->pc == rip && ev->irq.rip && !ev->irq.from_user) {
		c->frames[0] = (struct ks_monitor_frame){ .pc = rip };
		first = 1;
		rip = ev->irq.rip;
	}
	ks_read_gva_fn rd = mon_reader(m, r, &ctx);
	c->nframes = first + ks_mon_backtrace(rd, ctx, rip, r->rbp, c->frames + first,
					      KS_MONITOR_MAX_FRAMES - first, c->bt_end,
					      sizeof(c->bt_end));
names:
	for (size_t i = 0; i < c->nframes; i++)
		mon_sym(m, c->frames[i].pc, c->frames[i].sym);
}

int mon_dump(struct ks_monitor *m, const struct ks_event *ev, struct ks_error *err)
{
	unsigned n = m->nvcpus ? m->nvcpus : 1;
	struct ks_monitor_cpu *cpus = calloc(n, sizeof(*cpus));
	size_t want = m->o.dump_events;
	struct ks_event *events = calloc(want ? want : 1, sizeof(*events));
	struct ks_monitor_dump d = { .event = ev, .regs_from = "gdb", .ncpus = n, .cpus = cpus };
	unsigned missing = 0;
	int r = 0;

	if (!cpus || !events) {
		r = ks_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		cpus[i].vcpu = i;
		cpus[i].have_regs = ks_gdb_connected(m->g) &&
				    ks_gdb_read_regs(m->g, i, &cpus[i].regs, NULL) == 0;
		missing += !cpus[i].have_regs;
	}
	/* gdb may be unable to talk (the VM stopped in a state it does not report). */
	if (missing && regs_from_hmp(m, cpus, n))
		d.regs_from = "hmp";
	for (unsigned i = 0; i < n; i++)
		if (cpus[i].have_regs && (!ev || ev->vcpu < 0 || (unsigned)ev->vcpu == i))
			walk(m, &cpus[i], ev);
	d.events = events;
	d.nevents = ks_monitor_history(m, events, want);
	m->st.dumps++;
	if (missing == n && strcmp(d.regs_from, "hmp"))
		mon_warn(m, "dump: no registers from gdb or HMP");
	if (m->o.on_dump)
		m->o.on_dump(m, &d, m->o.dump_data);
out:
	free(events);
	free(cpus);
	return r;
}

/* ---- text and JSON ---- */

struct sbuf {
	char *s;
	size_t n, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
static void put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->oom || len < 0)
		return;
	if (b->n + (size_t)len + 1 > b->cap) {
		size_t cap = (b->cap + (size_t)len + 1) * 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
	va_end(ap);
	b->n += (size_t)len;
}

static void format_cpu(struct sbuf *b, const struct ks_monitor_cpu *c)
{
	char regs[4096];

	if (!c->have_regs) {
		put(b, "cpu%u: no registers\n", c->vcpu);
		return;
	}
	ks_x86_regs_format(&c->regs, regs, sizeof(regs));
	put(b, "cpu%u:\n%s", c->vcpu, regs);
	if (!c->nframes)
		return;
	put(b, "cpu%u backtrace:\n", c->vcpu);
	for (size_t i = 0; i < c->nframes; i++)
		put(b, "  #%zu 0x%016llx%s%s%s\n", i, (unsigned long long)c->frames[i].pc,
		    c->frames[i].sym[0] ? " <" : "", c->frames[i].sym,
		    c->frames[i].sym[0] ? ">" : "");
	put(b, "  (%s)\n", c->bt_end);
}

char *ks_monitor_dump_format(const struct ks_monitor_dump *d)
{
	struct sbuf b = { 0 };
	char line[1024];

	if (d->event) {
		ks_event_format(d->event, line, sizeof(line));
		put(&b, "dump for: %s\n", line);
	} else {
		put(&b, "dump\n");
	}
	put(&b, "registers from %s\n", d->regs_from);
	for (unsigned i = 0; i < d->ncpus; i++)
		format_cpu(&b, &d->cpus[i]);
	put(&b, "last %zu events:\n", d->nevents);
	for (size_t i = 0; i < d->nevents; i++) {
		ks_event_format(&d->events[i], line, sizeof(line));
		put(&b, "%s\n", line);
	}
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* Register reg (KS_X86_RAX to KS_X86_EFER) of r. */
static uint64_t reg_value(const struct ks_x86_regs *r, unsigned reg)
{
	const uint64_t gp[] = { r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->rsp,
				r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15,
				r->rip, r->rflags, r->cs, r->ss, r->ds, r->es, r->fs, r->gs,
				r->fs_base, r->gs_base, r->k_gs_base, r->cr0, r->cr2, r->cr3,
				r->cr4, r->cr8, r->efer };

	return reg < sizeof(gp) / sizeof(*gp) ? gp[reg] : 0;
}

static json_t *hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_string(buf);
}

static json_t *cpu_json(const struct ks_monitor_cpu *c)
{
	json_t *o = json_object(), *regs = json_null(), *bt = json_array();

	if (c->have_regs) {
		regs = json_object();
		for (unsigned i = KS_X86_RAX; i <= KS_X86_EFER; i++)
			json_object_set_new(regs, ks_x86_reg_name(i), hex(reg_value(&c->regs, i)));
	}
	for (size_t i = 0; i < c->nframes; i++)
		json_array_append_new(bt, json_pack("{s:o, s:s?}", "pc", hex(c->frames[i].pc),
						    "sym", c->frames[i].sym[0] ?
						    c->frames[i].sym : NULL));
	json_object_set_new(o, "vcpu", json_integer(c->vcpu));
	json_object_set_new(o, "regs", regs);
	json_object_set_new(o, "backtrace", bt);
	json_object_set_new(o, "bt_end", c->nframes ? json_string(c->bt_end) : json_null());
	return o;
}

json_t *ks_monitor_dump_to_json(const struct ks_monitor_dump *d)
{
	json_t *o = json_object(), *cpus = json_array(), *events = json_array();

	if (!o || !cpus || !events) {
		json_decref(o);
		json_decref(cpus);
		json_decref(events);
		return NULL;
	}
	for (unsigned i = 0; i < d->ncpus; i++)
		json_array_append_new(cpus, cpu_json(&d->cpus[i]));
	for (size_t i = 0; i < d->nevents; i++)
		json_array_append_new(events, ks_event_to_json(&d->events[i]));
	json_object_set_new(o, "event", d->event ? ks_event_to_json(d->event) : json_null());
	json_object_set_new(o, "regs_from", json_string(d->regs_from));
	json_object_set_new(o, "cpus", cpus);
	json_object_set_new(o, "events", events);
	return o;
}
