/* gdb_x86.c: QEMU's x86-64 gdbstub register layout: decoding, encoding, names, flags, text. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <kscope/gdb.h>

#include "gdb_internal.h"

/* How a register sits in struct ks_x86_regs. */
enum field_kind { F_INT, F_ST, F_XMM };

struct reg_info {
	const char *name;
	unsigned size;         /* bytes on the wire */
	enum field_kind kind;
	size_t off;            /* offset of the field (of st[i] / xmm[i] for F_ST / F_XMM) */
	unsigned fsize;        /* F_INT: size of the field */
};

#define INT(n, s, f) { #n, s, F_INT, offsetof(struct ks_x86_regs, f), \
		       sizeof(((struct ks_x86_regs *)0)->f) }
#define GPR(n) INT(n, 8, n)
#define ST(i) { "st" #i, 10, F_ST, offsetof(struct ks_x86_regs, st[i]), 0 }
#define XMM(i) { "xmm" #i, 16, F_XMM, offsetof(struct ks_x86_regs, xmm[i]), 0 }

/*
 * The order and sizes of QEMU 7.2's target/i386/gdbstub.c for TARGET_X86_64 (the same as
 * its i386-64bit.xml): 64-bit values stay 64-bit in 32-bit and real mode too.
 */
static const struct reg_info regs[KS_X86_NREGS] = {
	GPR(rax), GPR(rbx), GPR(rcx), GPR(rdx), GPR(rsi), GPR(rdi), GPR(rbp), GPR(rsp),
	GPR(r8), GPR(r9), GPR(r10), GPR(r11), GPR(r12), GPR(r13), GPR(r14), GPR(r15),
	GPR(rip), INT(eflags, 4, rflags),
	INT(cs, 4, cs), INT(ss, 4, ss), INT(ds, 4, ds), INT(es, 4, es), INT(fs, 4, fs),
	INT(gs, 4, gs),
	GPR(fs_base), GPR(gs_base), GPR(k_gs_base),
	GPR(cr0), GPR(cr2), GPR(cr3), GPR(cr4), GPR(cr8), GPR(efer),
	ST(0), ST(1), ST(2), ST(3), ST(4), ST(5), ST(6), ST(7),
	INT(fctrl, 4, fctrl), INT(fstat, 4, fstat), INT(ftag, 4, ftag), INT(fiseg, 4, fiseg),
	INT(fioff, 4, fioff), INT(foseg, 4, foseg), INT(fooff, 4, fooff), INT(fop, 4, fop),
	XMM(0), XMM(1), XMM(2), XMM(3), XMM(4), XMM(5), XMM(6), XMM(7),
	XMM(8), XMM(9), XMM(10), XMM(11), XMM(12), XMM(13), XMM(14), XMM(15),
	INT(mxcsr, 4, mxcsr),
};

const char *ks_x86_reg_name(unsigned reg)
{
	return reg < KS_X86_NREGS ? regs[reg].name : NULL;
}

unsigned ks_x86_reg_size(unsigned reg)
{
	return reg < KS_X86_NREGS ? regs[reg].size : 0;
}

int ks_x86_reg_by_name(const char *name)
{
	for (unsigned i = 0; name && i < KS_X86_NREGS; i++)
		if (!strcmp(regs[i].name, name))
			return (int)i;
	return -ENOENT;
}

/* ---- the register block ---- */

static uint64_t load_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void store_le(uint8_t *p, unsigned n, uint64_t v)
{
	for (unsigned i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Integer fields are read and written through their size: no aliasing tricks. */
static void set_field(struct ks_x86_regs *r, const struct reg_info *ri, uint64_t v)
{
	char *f = (char *)r + ri->off;

	if (ri->fsize == 8)
		memcpy(f, &v, 8);
	else if (ri->fsize == 4)
		memcpy(f, &(uint32_t){ (uint32_t)v }, 4);
	else
		memcpy(f, &(uint16_t){ (uint16_t)v }, 2);
}

static uint64_t get_field(const struct ks_x86_regs *r, const struct reg_info *ri)
{
	const char *f = (const char *)r + ri->off;
	uint64_t v8;
	uint32_t v4;
	uint16_t v2;

	if (ri->fsize == 8)
		return memcpy(&v8, f, 8), v8;
	if (ri->fsize == 4)
		return memcpy(&v4, f, 4), v4;
	return memcpy(&v2, f, 2), v2;
}

int ks_x86_regs_decode(const uint8_t *raw, size_t len, struct ks_x86_regs *r)
{
	if (len < KS_X86_REGS_SIZE)
		return -EPROTO;
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < KS_X86_NREGS; i++) {
		const struct reg_info *ri = &regs[i];
		unsigned k;

		switch (ri->kind) {
		case F_INT:
			set_field(r, ri, load_le(raw, ri->size));
			break;
		case F_ST:
			k = i - KS_X86_ST0;
			r->st[k].mantissa = load_le(raw, 8);
			r->st[k].sign_exp = (uint16_t)load_le(raw + 8, 2);
			break;
		case F_XMM:
			/* Low quadword first, as QEMU's gdb_get_reg128() writes it. */
			k = i - KS_X86_XMM0;
			r->xmm[k].lo = load_le(raw, 8);
			r->xmm[k].hi = load_le(raw + 8, 8);
			break;
		}
		raw += ri->size;
	}
	return 0;
}

void ks_x86_regs_encode(const struct ks_x86_regs *r, uint8_t *raw)
{
	for (unsigned i = 0; i < KS_X86_NREGS; i++) {
		const struct reg_info *ri = &regs[i];

		switch (ri->kind) {
		case F_INT:
			store_le(raw, ri->size, get_field(r, ri));
			break;
		case F_ST:
			store_le(raw, 8, r->st[i - KS_X86_ST0].mantissa);
			store_le(raw + 8, 2, r->st[i - KS_X86_ST0].sign_exp);
			break;
		case F_XMM:
			store_le(raw, 8, r->xmm[i - KS_X86_XMM0].lo);
			store_le(raw + 8, 8, r->xmm[i - KS_X86_XMM0].hi);
			break;
		}
		raw += ri->size;
	}
}

/* ---- flags ---- */

struct bit_name {
	unsigned bit;
	const char *name;
};

/* Highest bit first, the order they are printed in. */
static const struct bit_name rflags_bits[] = {
	{ 21, "ID" }, { 20, "VIP" }, { 19, "VIF" }, { 18, "AC" }, { 17, "VM" }, { 16, "RF" },
	{ 14, "NT" }, { 11, "OF" }, { 10, "DF" }, { 9, "IF" }, { 8, "TF" }, { 7, "SF" },
	{ 6, "ZF" }, { 4, "AF" }, { 2, "PF" }, { 0, "CF" }, { 0, NULL },
};
static const struct bit_name cr0_bits[] = {
	{ 31, "PG" }, { 30, "CD" }, { 29, "NW" }, { 18, "AM" }, { 16, "WP" }, { 5, "NE" },
	{ 4, "ET" }, { 3, "TS" }, { 2, "EM" }, { 1, "MP" }, { 0, "PE" }, { 0, NULL },
};
static const struct bit_name cr4_bits[] = {
	{ 24, "PKS" }, { 23, "CET" }, { 22, "PKE" }, { 21, "SMAP" }, { 20, "SMEP" },
	{ 18, "OSXSAVE" }, { 17, "PCIDE" }, { 16, "FSGSBASE" }, { 14, "SMXE" }, { 13, "VMXE" },
	{ 12, "LA57" }, { 11, "UMIP" }, { 10, "OSXMMEXCPT" }, { 9, "OSFXSR" }, { 8, "PCE" },
	{ 7, "PGE" }, { 6, "MCE" }, { 5, "PAE" }, { 4, "PSE" }, { 3, "DE" }, { 2, "TSD" },
	{ 1, "PVI" }, { 0, "VME" }, { 0, NULL },
};
static const struct bit_name efer_bits[] = {
	{ 15, "TCE" }, { 14, "FFXSR" }, { 13, "LMSLE" }, { 12, "SVME" }, { 11, "NXE" },
	{ 10, "LMA" }, { 8, "LME" }, { 0, "SCE" }, { 0, NULL },
};

/* Text appended to a fixed buffer, counting what did not fit, like snprintf. */
struct out {
	char *buf;
	size_t size;
	size_t len;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
		      o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void put_flags(struct out *o, enum ks_x86_flags_reg reg, uint64_t v)
{
	static const struct bit_name *const tables[] = {
		[KS_X86_FLAGS_RFLAGS] = rflags_bits, [KS_X86_FLAGS_CR0] = cr0_bits,
		[KS_X86_FLAGS_CR4] = cr4_bits, [KS_X86_FLAGS_EFER] = efer_bits,
	};
	const struct bit_name *b = tables[reg];
	const char *sep = "";

	for (; b->name; b++) {
		if (reg == KS_X86_FLAGS_RFLAGS && b->bit == 11 && (v >> 12 & 3)) {
			put(o, "%sIOPL=%u", sep, (unsigned)(v >> 12 & 3));
			sep = " ";
		}
		if (v >> b->bit & 1) {
			put(o, "%s%s", sep, b->name);
			sep = " ";
		}
	}
}

int ks_x86_flags_format(enum ks_x86_flags_reg reg, uint64_t value, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };

	if (size)
		buf[0] = '\0';
	if (reg > KS_X86_FLAGS_EFER)
		return 0;
	put_flags(&o, reg, value);
	return (int)o.len;
}

const char *ks_x86_mode(const struct ks_x86_regs *r)
{
	if (!(r->cr0 & KS_X86_CR0_PE))
		return "real";
	return r->efer & KS_X86_EFER_LMA ? "long" : "protected";
}

int ks_x86_regs_format(const struct ks_x86_regs *r, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };

	if (size)
		buf[0] = '\0';
	for (unsigned i = KS_X86_RAX; i <= KS_X86_R15; i++)
		put(&o, "%-3s %016" PRIx64 "%s", regs[i].name, get_field(r, &regs[i]),
		    i % 4 == 3 ? "\n" : "  ");
	put(&o, "rip %016" PRIx64 "  rflags %08" PRIx64 " [ ", r->rip, r->rflags);
	put_flags(&o, KS_X86_FLAGS_RFLAGS, r->rflags);
	put(&o, " ]\n");
	put(&o, "cs %04x  ss %04x  ds %04x  es %04x  fs %04x  gs %04x\n", r->cs, r->ss, r->ds,
	    r->es, r->fs, r->gs);
	put(&o, "fs_base %016" PRIx64 "  gs_base %016" PRIx64 "  k_gs_base %016" PRIx64 "\n",
	    r->fs_base, r->gs_base, r->k_gs_base);
	put(&o, "cr0 %016" PRIx64 " [ ", r->cr0);
	put_flags(&o, KS_X86_FLAGS_CR0, r->cr0);
	put(&o, " ]\ncr2 %016" PRIx64 "  cr3 %016" PRIx64 "  cr8 %016" PRIx64 "\n", r->cr2,
	    r->cr3, r->cr8);
	put(&o, "cr4 %016" PRIx64 " [ ", r->cr4);
	put_flags(&o, KS_X86_FLAGS_CR4, r->cr4);
	put(&o, " ]\nefer %016" PRIx64 " [ ", r->efer);
	put_flags(&o, KS_X86_FLAGS_EFER, r->efer);
	put(&o, " ]\nmode %s\n", ks_x86_mode(r));
	return (int)o.len;
}

/* ---- register requests ---- */

int ks_gdb_read_regs(struct ks_gdb *g, unsigned vcpu, struct ks_x86_regs *out,
		     struct ks_error *err)
{
	const struct ks_gdb_packet *rep;
	uint8_t raw[KS_X86_REGS_SIZE];
	char show[KS_GDB_SHOW];
	int r;

	r = ks_gdb_select_vcpu(g, vcpu, err);
	if (r < 0)
		return r;
	r = ks_gdb_request(g, "g", 1, &rep, err);
	if (r < 0)
		return r;
	if (ks_gdb_error_reply(rep->data, rep->len) >= 0)
		return ks_error_set(err, -EIO, "gdb: g: the stub refused: %s", rep->data);
	if (rep->len < 2 * KS_X86_REGS_SIZE || rep->len % 2 ||
	    ks_gdb_hex_decode(rep->data, KS_X86_REGS_SIZE, raw) < 0)
		return ks_error_set(err, -EPROTO, "gdb: g: not an x86-64 register block "
				    "(%zu hex digits): %s", rep->len,
				    ks_gdb_excerpt(rep->data, rep->len, show, sizeof(show)));
	return ks_x86_regs_decode(raw, sizeof(raw), out);
}

int ks_gdb_write_regs(struct ks_gdb *g, unsigned vcpu, const struct ks_x86_regs *in,
		      struct ks_error *err)
{
	uint8_t raw[KS_X86_REGS_SIZE];
	char cmd[1 + 2 * KS_X86_REGS_SIZE];
	int r;

	r = ks_gdb_select_vcpu(g, vcpu, err);
	if (r < 0)
		return r;
	cmd[0] = 'G';
	ks_x86_regs_encode(in, raw);
	ks_gdb_hex_encode(raw, sizeof(raw), cmd + 1);
	return ks_gdb_request_ok(g, cmd, sizeof(cmd), err);
}

int ks_gdb_read_reg(struct ks_gdb *g, unsigned vcpu, unsigned regno, void *buf, size_t size,
		    struct ks_error *err)
{
	const struct ks_gdb_packet *rep;
	char cmd[16];
	int r, e;

	r = ks_gdb_select_vcpu(g, vcpu, err);
	if (r < 0)
		return r;
	snprintf(cmd, sizeof(cmd), "p%x", regno);
	r = ks_gdb_request(g, cmd, strlen(cmd), &rep, err);
	if (r < 0)
		return r;
	if ((e = ks_gdb_error_reply(rep->data, rep->len)) >= 0 || rep->len == 0)
		return ks_error_set(err, rep->len ? -EIO : -EOPNOTSUPP, "gdb: %s: %s", cmd,
				    rep->len ? "the stub refused (no such register?)" :
				    "not supported by the stub");
	if (rep->len % 2)
		return ks_error_set(err, -EPROTO, "gdb: %s: odd number of hex digits", cmd);
	if (rep->len / 2 > size)
		return ks_error_set(err, -ENOSPC, "gdb: %s: %zu bytes do not fit in %zu", cmd,
				    rep->len / 2, size);
	if (ks_gdb_hex_decode(rep->data, rep->len / 2, buf) < 0)
		return ks_error_set(err, -EPROTO, "gdb: %s: reply is not hex", cmd);
	return (int)(rep->len / 2);
}

int ks_gdb_write_reg(struct ks_gdb *g, unsigned vcpu, unsigned regno, const void *buf,
		     size_t len, struct ks_error *err)
{
	char cmd[16 + 2 * 64];
	int n, r;

	if (len == 0 || len > 64)
		return ks_error_set(err, -EINVAL, "gdb: P%x: a register of %zu bytes", regno,
				    len);
	r = ks_gdb_select_vcpu(g, vcpu, err);
	if (r < 0)
		return r;
	n = snprintf(cmd, sizeof(cmd), "P%x=", regno);
	ks_gdb_hex_encode(buf, len, cmd + n);
	return ks_gdb_request_ok(g, cmd, (size_t)n + 2 * len, err);
}

int ks_gdb_read_reg_u64(struct ks_gdb *g, unsigned vcpu, enum ks_x86_reg reg,
			uint64_t *value, struct ks_error *err)
{
	uint8_t raw[16];
	int n;

	if ((unsigned)reg >= KS_X86_NREGS || regs[reg].size > 8)
		return ks_error_set(err, -EINVAL, "gdb: register %u is not an integer", reg);
	n = ks_gdb_read_reg(g, vcpu, reg, raw, sizeof(raw), err);
	if (n < 0)
		return n;
	*value = load_le(raw, n < 8 ? (unsigned)n : 8);
	return 0;
}

int ks_gdb_write_reg_u64(struct ks_gdb *g, unsigned vcpu, enum ks_x86_reg reg,
			 uint64_t value, struct ks_error *err)
{
	uint8_t raw[8];

	if ((unsigned)reg >= KS_X86_NREGS || regs[reg].size > 8)
		return ks_error_set(err, -EINVAL, "gdb: register %u is not an integer", reg);
	store_le(raw, regs[reg].size, value);
	return ks_gdb_write_reg(g, vcpu, reg, raw, regs[reg].size, err);
}

/* ---- register writes and a continue in one go ---- */

/* Queues "P<reg>=<value>" without waiting for its reply. */
static int send_write(struct ks_gdb *g, const struct ks_gdb_reg_write *w, struct ks_error *err)
{
	uint8_t raw[8];
	char cmd[48];
	int n, r;

	if ((unsigned)w->reg >= KS_X86_NREGS || regs[w->reg].size > 8)
		return ks_error_set(err, -EINVAL, "gdb: register %u is not an integer", w->reg);
	store_le(raw, regs[w->reg].size, w->value);
	n = snprintf(cmd, sizeof(cmd), "P%x=", (unsigned)w->reg);
	ks_gdb_hex_encode(raw, regs[w->reg].size, cmd + n);
	n += 2 * (int)regs[w->reg].size;
	if ((r = ks_gdb_send_packet(g, cmd, (size_t)n)) < 0)
		return ks_error_set(err, r, "gdb: %.*s: %s", n, cmd, strerror(-r));
	g->unanswered++;
	return 0;
}

int ks_gdb_continue_at(struct ks_gdb *g, ks_gva_t pc, const struct ks_gdb_reg_write *w,
		       size_t n, struct ks_error *err)
{
	char cmd[32];
	int r;

	if (!g->connected)
		return ks_gdb_not_connected(g, "c", err);
	if (g->state != KS_GDB_STOPPED || g->req_pending)
		return ks_error_set(err, -EBUSY, "gdb: c: the target is not stopped");
	if (g->last_stop.vcpu < 0)
		return ks_error_set(err, -ESRCH, "gdb: c: the last stop named no vCPU");
	for (size_t i = 0; i < n; i++)
		if ((unsigned)w[i].reg >= KS_X86_NREGS || regs[w[i].reg].size > 8)
			return ks_error_set(err, -EINVAL, "gdb: register %u is not an integer",
					    w[i].reg);
	/* P writes the registers of the Hg thread: the stopping vCPU, as for "c ADDR". */
	if (n && (r = ks_gdb_select_vcpu(g, (unsigned)g->last_stop.vcpu, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if ((r = send_write(g, &w[i], err)) < 0)
			return r;
	snprintf(cmd, sizeof(cmd), "c%" PRIx64, pc);
	if ((r = ks_gdb_send_packet(g, cmd, strlen(cmd))) < 0)
		return ks_error_set(err, r, "gdb: %s: %s", cmd, strerror(-r));
	g->state = KS_GDB_RUNNING;
	return 0;
}

uint64_t ks_gdb_lost_writes(const struct ks_gdb *g)
{
	return g->lost_writes;
}
