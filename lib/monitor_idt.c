/* monitor_idt.c: the IDT's handler entries, from HMP's register dump and guest memory. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/qmp.h>
#include <kscope/vm.h>

#include "monitor_internal.h"

#define SEC 1000000000ll
#define HMP_TIMEOUT_NS (5 * SEC)

int ks_mon_decode_gate(const uint8_t *raw, unsigned size, struct ks_mon_gate *g)
{
	uint8_t attr;

	if (size != 16 && size != 8)
		return -EINVAL;
	attr = raw[5];
	g->present = attr & 0x80;
	g->type = attr & 0x0f;
	g->dpl = (attr >> 5) & 3;
	g->selector = (uint16_t)(raw[2] | raw[3] << 8);
	g->offset = (uint64_t)raw[0] | (uint64_t)raw[1] << 8 | (uint64_t)raw[6] << 16 |
		    (uint64_t)raw[7] << 24;
	if (size == 16)
		g->offset |= (uint64_t)raw[8] << 32 | (uint64_t)raw[9] << 40 |
			     (uint64_t)raw[10] << 48 | (uint64_t)raw[11] << 56;
	if (!g->present)
		return 0;
	if (size == 16)
		return g->type == 0xe || g->type == 0xf;
	return g->type == 0xe || g->type == 0xf || g->type == 0x6 || g->type == 0x7;
}

/* ---- HMP's "info registers" ---- */

struct hmp_reg {
	const char *name;      /* as printed, 64-bit and 32-bit forms */
	size_t off;            /* in struct ks_x86_regs */
	unsigned size;
};

#define R(n, f) { n, offsetof(struct ks_x86_regs, f), sizeof(((struct ks_x86_regs *)0)->f) }
static const struct hmp_reg hmp_regs[] = {
	R("RAX", rax), R("RBX", rbx), R("RCX", rcx), R("RDX", rdx), R("RSI", rsi), R("RDI", rdi),
	R("RBP", rbp), R("RSP", rsp), R("R8", r8), R("R9", r9), R("R10", r10), R("R11", r11),
	R("R12", r12), R("R13", r13), R("R14", r14), R("R15", r15), R("RIP", rip),
	R("RFL", rflags), R("EAX", rax), R("EBX", rbx), R("ECX", rcx), R("EDX", rdx),
	R("ESI", rsi), R("EDI", rdi), R("EBP", rbp), R("ESP", rsp), R("EIP", rip),
	R("EFL", rflags), R("CR0", cr0), R("CR2", cr2), R("CR3", cr3), R("CR4", cr4),
	R("EFER", efer), R("CS", cs), R("SS", ss), R("DS", ds), R("ES", es), R("FS", fs),
	R("GS", gs),
};
#undef R

static void store(struct ks_x86_regs *r, const struct hmp_reg *d, uint64_t v)
{
	uint8_t *p = (uint8_t *)r + d->off;

	if (d->size == 2) {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, 2);
	} else {
		memcpy(p, &v, 8);
	}
}

/* Reads the hex number after "=" (blanks allowed) at *s; moves *s past it. */
static bool hex_at(const char **s, uint64_t *v)
{
	char *end;

	while (**s == ' ')
		(*s)++;
	if (!isxdigit((unsigned char)**s))
		return false;
	*v = strtoull(*s, &end, 16);
	*s = end;
	return true;
}

/* Handles one "NAME=value ..." field of a line; name is name_len bytes. */
static void take_field(struct ks_mon_hmp_cpu *c, const char *name, size_t len, const char **s)
{
	uint64_t v, base;

	if (len == 3 && !memcmp(name, "IDT", 3)) {
		if (hex_at(s, &c->idt_base) && hex_at(s, &v))
			c->idt_limit = (uint32_t)v;
		return;
	}
	if (len == 3 && !memcmp(name, "HLT", 3)) {
		c->halted = hex_at(s, &v) && v;
		return;
	}
	if (len == 3 && !memcmp(name, "DR7", 3)) {
		if (hex_at(s, &v))
			c->dr7 = v;
		return;
	}
	for (size_t i = 0; i < sizeof(hmp_regs) / sizeof(*hmp_regs); i++) {
		const struct hmp_reg *d = &hmp_regs[i];

		if (strlen(d->name) != len || memcmp(d->name, name, len) || !hex_at(s, &v))
			continue;
		store(&c->regs, d, v);
		/* "FS =0000 <base> <limit> <flags>": the bases matter for per-CPU data. */
		if (d->off == offsetof(struct ks_x86_regs, fs) && hex_at(s, &base))
			c->regs.fs_base = base;
		if (d->off == offsetof(struct ks_x86_regs, gs) && hex_at(s, &base))
			c->regs.gs_base = base;
		return;
	}
}

static void parse_line(struct ks_mon_hmp_cpu *c, const char *line, const char *end)
{
	const char *s = line;

	while (s < end) {
		const char *eq = memchr(s, '=', (size_t)(end - s)), *n;

		if (!eq)
			return;
		n = eq;
		while (n > s && n[-1] == ' ')
			n--;
		const char *name_end = n;
		while (n > s && isalnum((unsigned char)n[-1]))
			n--;
		s = eq + 1;
		take_field(c, n, (size_t)(name_end - n), &s);
	}
}

int ks_mon_parse_hmp_regs(const char *text, struct ks_mon_hmp_cpu *cpus, size_t max)
{
	struct ks_mon_hmp_cpu *c = NULL;
	size_t n = 0;

	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');

		if (!end)
			end = line + strlen(line);
		/* "info registers" alone prints no "CPU#" header: its vCPU is the first. */
		bool header = !strncmp(line, "CPU#", 4);
		if ((header || (!c && memchr(line, '=', (size_t)(end - line)))) && n < max) {
			c = &cpus[n++];
			memset(c, 0, sizeof(*c));
			c->index = header ? (unsigned)strtoul(line + 4, NULL, 10) : 0;
		} else if (header) {
			c = NULL;
		}
		if (c && !header)
			parse_line(c, line, end);
		line = *end ? end + 1 : end;
	}
	return n ? (int)n : -EINVAL;
}

/* ---- the handler map ---- */

struct handler {
	ks_gva_t addr;
	uint64_t vectors[4];
};

struct hmap {
	struct handler *h;
	size_t n, cap;
};

static int hmap_add(struct hmap *hm, ks_gva_t addr, unsigned v)
{
	for (size_t i = 0; i < hm->n; i++)
		if (hm->h[i].addr == addr) {
			hm->h[i].vectors[v / 64] |= 1ull << (v % 64);
			return 0;
		}
	if (hm->n == hm->cap) {
		size_t cap = hm->cap ? hm->cap * 2 : 32;
		struct handler *h = realloc(hm->h, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		hm->h = h;
		hm->cap = cap;
	}
	hm->h[hm->n] = (struct handler){ .addr = addr };
	hm->h[hm->n++].vectors[v / 64] = 1ull << (v % 64);
	return 0;
}

/* Adds the handlers of the asked-for vectors in the IDT c loaded; 0 or -errno. */
static int read_idt(struct ks_monitor *m, const struct ks_mon_hmp_cpu *c, struct hmap *hm,
		    struct ks_error *err)
{
	unsigned gsz = c->regs.efer & KS_X86_EFER_LMA ? 16 : 8;
	uint8_t table[256 * 16];
	size_t len = (size_t)c->idt_limit + 1;
	void *ctx;
	int r;

	/* Real mode has an interrupt vector table, not gates; a protected-mode CPU that still
	 * has the reset IDTR (an AP on its way up) has loaded no IDT: nothing to break on. */
	if (!(c->regs.cr0 & KS_X86_CR0_PE) || c->idt_limit < gsz - 1 ||
	    (c->idt_base == 0 && c->idt_limit == 0xffff))
		return 0;
	if (len > 256 * gsz)
		len = 256 * gsz;
	ks_read_gva_fn rd = mon_reader(m, &c->regs, &ctx);
	if ((r = rd(ctx, c->idt_base, table, len)) < 0)
		return ks_error_set(err, r, "cannot read the IDT of vCPU %u at 0x%llx: %s",
				    c->index, (unsigned long long)c->idt_base, strerror(-r));
	for (unsigned v = 0; v < len / gsz; v++) {
		struct ks_mon_gate g;

		if (!(m->want.vectors[v / 64] >> (v % 64) & 1) ||
		    ks_mon_decode_gate(table + v * gsz, gsz, &g) != 1)
			continue;
		if (hmap_add(hm, g.offset, v) < 0)
			return ks_error_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

/* Gives the handler role to the map's addresses and takes it from the others. */
static int apply(struct ks_monitor *m, const struct hmap *hm, struct ks_error *err)
{
	int r = 0;

	for (size_t i = m->nbps; i-- > 0;) {
		struct mon_bp *bp = &m->bps[i];
		bool keep = false;

		for (size_t j = 0; j < hm->n && !keep; j++)
			keep = hm->h[j].addr == bp->addr;
		if ((bp->roles & ROLE_HANDLER) && !keep && r == 0)
			r = mon_bp_update(m, bp->addr, 0, ROLE_HANDLER, err);
	}
	for (size_t j = 0; j < hm->n && r == 0; j++) {
		r = mon_bp_update(m, hm->h[j].addr, ROLE_HANDLER, 0, err);
		struct mon_bp *bp = mon_bp_find(m, hm->h[j].addr);
		if (bp)
			memcpy(bp->vectors, hm->h[j].vectors, sizeof(bp->vectors));
	}
	return r;
}

/*
 * Every vCPU's registers from HMP into cpus (max of them); notes whether the guest has debug
 * registers enabled, which would see what an emulated instruction does not do. Returns how
 * many vCPUs it found, or -errno with err filled.
 */
static int read_cpus(struct ks_monitor *m, struct ks_mon_hmp_cpu *cpus, size_t max,
		     struct ks_error *err)
{
	struct ks_qmp *q = ks_vm_qmp(m->vm);
	char *out = NULL;
	int r, n;

	/* Unknown until read: a failed read leaves pushes to the CPU. */
	m->dr7_known = false;
	if (!q)
		return ks_error_set(err, -ENOTCONN, "the VM has ended");
	if ((r = ks_qmp_hmp(q, "info registers -a", &out, HMP_TIMEOUT_NS, err)) < 0)
		return r;
	n = ks_mon_parse_hmp_regs(out, cpus, max);
	free(out);
	if (n < 0)
		return ks_error_set(err, -EPROTO, "no registers in HMP's answer");
	m->dr7_known = true;
	m->dr7_armed = false;
	for (int i = 0; i < n; i++)
		m->dr7_armed |= (cpus[i].dr7 & 0xff) != 0;
	return n;
}

int mon_dr7_refresh(struct ks_monitor *m, struct ks_error *err)
{
	size_t max = m->nvcpus ? m->nvcpus : 1;
	struct ks_mon_hmp_cpu *cpus = calloc(max, sizeof(*cpus));
	int r;

	if (!cpus)
		return ks_error_set(err, -ENOMEM, "out of memory");
	r = read_cpus(m, cpus, max, err);
	free(cpus);
	return r < 0 ? r : 0;
}

int mon_idt_refresh(struct ks_monitor *m, struct ks_error *err)
{
	size_t max = m->nvcpus ? m->nvcpus : 1;
	struct ks_mon_hmp_cpu *cpus = calloc(max, sizeof(*cpus));
	struct hmap hm = { 0 };
	struct ks_error he = { 0 };
	int r = 0, n;

	if (!cpus)
		return ks_error_set(err, -ENOMEM, "out of memory");
	m->st.idt_reads++;
	if ((n = read_cpus(m, cpus, max, &he)) < 0) {
		r = ks_error_set(err, n, "IDT: %s", he.msg);
		goto out;
	}
	for (int i = 0; i < n && r == 0; i++) {
		bool seen = false;

		/* Most kernels share one IDT among their CPUs: read it once. */
		for (int j = 0; j < i && !seen; j++)
			seen = cpus[j].idt_base == cpus[i].idt_base &&
			       cpus[j].idt_limit == cpus[i].idt_limit &&
			       cpus[j].regs.cr3 == cpus[i].regs.cr3;
		struct ks_error e = { 0 };

		/* One CPU's table out of reach must not hide the others'. */
		if (!seen && (r = read_idt(m, &cpus[i], &hm, &e)) == -EFAULT) {
			mon_warn(m, "IDT: %s", e.msg);
			r = 0;
		} else if (r < 0) {
			ks_error_set(err, r, "%s", e.msg);
		}
	}
	if (r == 0)
		r = apply(m, &hm, err);
out:
	free(hm.h);
	free(cpus);
	return r;
}
