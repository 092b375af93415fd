/* test_monitor.c: the event monitor's pure parts: frames, gates, HMP registers, backtraces, dumps, emulated instructions. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/mem.h>
#include <kscope/monitor.h>
#include <kscope/qemu_argv.h>
#include <kscope/vmspec.h>
#include <kscope/vtop.h>

#include "monitor_internal.h"
#include "test_data.h"

/* ---- interrupt frames ---- */

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static void frames_with_and_without_error_code(void **state)
{
	static const struct { unsigned vector; bool error; } vecs[] = {
		{ 0, false }, { 2, false }, { 3, false }, { 6, false }, { 8, true }, { 10, true },
		{ 13, true }, { 14, true }, { 16, false }, { 17, true }, { 18, false },
		{ 21, true }, { 29, true }, { 30, true }, { 31, false }, { 32, false },
		{ 0x40, false }, { 255, false },
	};
	uint8_t raw[48];
	struct ks_mon_irq_frame f;
	(void)state;

	for (size_t i = 0; i < sizeof(vecs) / sizeof(*vecs); i++) {
		unsigned v = vecs[i].vector;
		size_t o = 0;

		assert_int_equal(ks_mon_has_error_code(v), vecs[i].error);
		memset(raw, 0xee, sizeof(raw));
		if (vecs[i].error)
			put64(raw + (o++) * 8, 0x6);
		put64(raw + (o++) * 8, 0x401000);
		put64(raw + (o++) * 8, 0x23);
		put64(raw + (o++) * 8, 0x202);
		assert_int_equal(ks_mon_decode_frame(v, raw, o * 8, 8, &f), 0);
		assert_int_equal(f.has_error, vecs[i].error);
		assert_int_equal(f.error_code, vecs[i].error ? 6 : 0);
		assert_int_equal(f.rip, 0x401000);
		assert_int_equal(f.cs, 0x23);
		assert_int_equal(f.rflags, 0x202);
		assert_true(f.from_user);
		/* One slot short is refused. */
		assert_int_equal(ks_mon_decode_frame(v, raw, o * 8 - 1, 8, &f), -EINVAL);
	}
	/* 32-bit protected mode: 4-byte slots, a kernel CS. */
	put32(raw, 0x2);
	put32(raw + 4, 0xc0101234);
	put32(raw + 8, 0x08);
	put32(raw + 12, 0x46);
	assert_int_equal(ks_mon_decode_frame(14, raw, 16, 4, &f), 0);
	assert_true(f.has_error && f.error_code == 2 && f.rip == 0xc0101234 && f.cs == 8);
	assert_false(f.from_user);
	assert_int_equal(ks_mon_decode_frame(14, raw, 16, 2, &f), -EINVAL);
}

static void vector_kinds(void **state)
{
	(void)state;
	assert_int_equal(ks_mon_vector_kind(0), KS_EV_EXCEPTION);
	assert_int_equal(ks_mon_vector_kind(2), KS_EV_INTERRUPT);  /* NMI, as the trace has it */
	assert_int_equal(ks_mon_vector_kind(14), KS_EV_EXCEPTION);
	assert_int_equal(ks_mon_vector_kind(31), KS_EV_EXCEPTION);
	assert_int_equal(ks_mon_vector_kind(32), KS_EV_INTERRUPT);
	assert_int_equal(ks_mon_vector_kind(255), KS_EV_INTERRUPT);
}

/* ---- IDT gates ---- */

static void gate64(uint8_t *g, uint64_t off, uint8_t attr, uint16_t sel)
{
	memset(g, 0, 16);
	g[0] = off & 0xff;
	g[1] = (off >> 8) & 0xff;
	g[2] = sel & 0xff;
	g[3] = sel >> 8;
	g[4] = 1; /* IST 1: ignored */
	g[5] = attr;
	g[6] = (off >> 16) & 0xff;
	g[7] = (off >> 24) & 0xff;
	for (int i = 0; i < 4; i++)
		g[8 + i] = (off >> (32 + 8 * i)) & 0xff;
}

static void gates(void **state)
{
	uint8_t raw[16];
	struct ks_mon_gate g;
	(void)state;

	gate64(raw, 0xffffffff80109040ull, 0x8e, 0x08);
	assert_int_equal(ks_mon_decode_gate(raw, 16, &g), 1);
	assert_true(g.present);
	assert_int_equal(g.type, 0xe);
	assert_int_equal(g.dpl, 0);
	assert_int_equal(g.selector, 8);
	assert_true(g.offset == 0xffffffff80109040ull);
	gate64(raw, 0xffffffff80109030ull, 0xef, 0x08);   /* trap gate, DPL 3 */
	assert_int_equal(ks_mon_decode_gate(raw, 16, &g), 1);
	assert_int_equal(g.type, 0xf);
	assert_int_equal(g.dpl, 3);
	gate64(raw, 0xffffffff80109030ull, 0x0e, 0x08);   /* not present */
	assert_int_equal(ks_mon_decode_gate(raw, 16, &g), 0);
	assert_false(g.present);
	gate64(raw, 0, 0x85, 0x28);                        /* a task gate has no handler */
	assert_int_equal(ks_mon_decode_gate(raw, 8, &g), 0);
	/* 32-bit: the offset's high half is in bytes 6-7 and nothing follows. */
	gate64(raw, 0xc0105000, 0x8e, 0x08);
	memset(raw + 8, 0xff, 8);
	assert_int_equal(ks_mon_decode_gate(raw, 8, &g), 1);
	assert_true(g.offset == 0xc0105000);
	assert_int_equal(ks_mon_decode_gate(raw, 4, &g), -EINVAL);
}

/* ---- HMP's register dump ---- */

static char *slurp(const char *name)
{
	return test_data_slurp("KSCOPE_MONITOR_DATA", "tests/data/monitor", name);
}

/* Two vCPUs after the demo kernel's triple fault (QEMU 7.2, long mode). */
static void hmp_long_mode(void **state)
{
	char *text = slurp("regs_triple_fault.txt");
	struct ks_mon_hmp_cpu c[4];
	(void)state;

	assert_int_equal(ks_mon_parse_hmp_regs(text, c, 4), 2);
	assert_int_equal(c[0].index, 0);
	assert_true(c[0].regs.rip == 0xffffffff80117128ull);
	assert_true(c[0].regs.rbp == 0xffffc00000026c30ull);
	assert_true(c[0].regs.rsp == 0xffffc00000026c18ull);
	assert_true(c[0].regs.rax == 0xffffffff80122d78ull);
	assert_true(c[0].regs.r8 == 0x3f8 && c[0].regs.r15 == 1);
	assert_true(c[0].regs.rflags == 0x46);
	assert_int_equal(c[0].regs.cs, 8);
	assert_int_equal(c[0].regs.ss, 0x10);
	assert_true(c[0].regs.gs_base == 0xffffffff80128060ull);
	assert_true(c[0].regs.cr0 == 0x80010011 && c[0].regs.cr3 == 0x102000);
	assert_true(c[0].regs.cr4 == 0x20 && c[0].regs.efer == 0xd01);
	assert_true(c[0].idt_base == 0 && c[0].idt_limit == 0);   /* the empty IDT it loaded */
	assert_false(c[0].halted);
	assert_int_equal(c[1].index, 1);
	assert_true(c[1].regs.rip == 0xffffffff8010c0eaull);
	assert_true(c[1].idt_base == 0xffffffff80131d20ull && c[1].idt_limit == 0xfff);
	assert_true(c[1].halted);
	/* Room for one only: the first. */
	assert_int_equal(ks_mon_parse_hmp_regs(text, c, 1), 1);
	assert_true(c[0].regs.rip == 0xffffffff80117128ull);
	free(text);
}

/* Two vCPUs at reset: the 32-bit form, real mode. */
static void hmp_reset_and_plain(void **state)
{
	char *text = slurp("regs_reset.txt");
	struct ks_mon_hmp_cpu c[2];
	(void)state;

	assert_int_equal(ks_mon_parse_hmp_regs(text, c, 2), 2);
	assert_true(c[0].regs.rip == 0xfff0 && c[0].regs.rdx == 0x60fb1);
	assert_int_equal(c[0].regs.cs, 0xf000);
	assert_true(c[0].regs.cr0 == 0x60000010);
	assert_true(c[0].idt_base == 0 && c[0].idt_limit == 0xffff);
	assert_true(c[1].halted);
	free(text);
	/* "info registers" of one vCPU has no header. */
	assert_int_equal(ks_mon_parse_hmp_regs("RAX=0000000000000001 RBX=0000000000000002\n"
					       "RIP=ffffffff80001000 RFL=00000202\n"
					       "IDT=     ffffffff80005000 00000fff\n", c, 2), 1);
	assert_true(c[0].regs.rax == 1 && c[0].regs.rbx == 2);
	assert_true(c[0].idt_base == 0xffffffff80005000ull);
	assert_int_equal(ks_mon_parse_hmp_regs("no registers here\n", c, 2), -EINVAL);
	assert_int_equal(ks_mon_parse_hmp_regs("", c, 2), -EINVAL);
}

/* ---- backtraces in a memfd guest ---- */

#define RAM_SIZE (4u << 20)
#define STACK_VA 0xffffc00000200000ull  /* mapped by one 2 MiB page to physical 2 MiB */

struct guest {
	int fd;
	uint8_t *ram;
	struct ks_ram_file file;
	struct ks_ram_region region;
	struct ks_ram_layout layout;
	struct ks_mem *m;
	struct ks_vtop *vt;
};

static int guest_setup(void **state)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct ks_error err = { 0 };
	uint64_t *pml4, *pdpt, *pd;

	g->fd = memfd_create("kscope-test-monitor", MFD_CLOEXEC);
	assert_true(g->fd >= 0);
	assert_int_equal(ftruncate(g->fd, RAM_SIZE), 0);
	g->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	assert_true(g->ram != MAP_FAILED);
	g->file = (struct ks_ram_file){ .path = "ram", .size = RAM_SIZE };
	g->region = (struct ks_ram_region){ .file = 0, .gpa = 0, .size = RAM_SIZE };
	g->layout = (struct ks_ram_layout){ .files = &g->file, .nfiles = 1,
					    .regions = &g->region, .nregions = 1 };
	if (!(g->m = ks_mem_new_mapped(&g->layout, &g->fd, &err)))
		fail_msg("%s", err.msg);
	/* Tables at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD). */
	pml4 = (uint64_t *)(g->ram + 0x1000);
	pdpt = (uint64_t *)(g->ram + 0x2000);
	pd = (uint64_t *)(g->ram + 0x3000);
	pml4[(STACK_VA >> 39) & 511] = 0x2000 | 3;
	pdpt[(STACK_VA >> 30) & 511] = 0x3000 | 3;
	pd[(STACK_VA >> 21) & 511] = 0x200000 | 0x83;
	g->vt = ks_vtop_new(g->m, &err);
	ks_vtop_set_cr3(g->vt, 0x1000, false);
	*state = g;
	return 0;
}

static int guest_teardown(void **state)
{
	struct guest *g = *state;

	ks_vtop_free(g->vt);
	ks_mem_free(g->m);
	munmap(g->ram, RAM_SIZE);
	close(g->fd);
	free(g);
	return 0;
}

/* Writes a frame at va: the saved frame pointer, then the return address. */
static void frame_at(struct guest *g, uint64_t va, uint64_t saved, uint64_t ret)
{
	uint8_t *p = g->ram + 0x200000 + (va - STACK_VA);

	put64(p, saved);
	put64(p + 8, ret);
}

static void backtrace_follows_rbp(void **state)
{
	struct guest *g = *state;
	struct ks_monitor_frame f[8];
	char why[96];
	size_t n;

	frame_at(g, STACK_VA + 0x100, STACK_VA + 0x180, 0xffffffff80001111ull);
	frame_at(g, STACK_VA + 0x180, STACK_VA + 0x200, 0xffffffff80002222ull);
	frame_at(g, STACK_VA + 0x200, 0, 0xffffffff80003333ull);
	n = ks_mon_backtrace(ks_vtop_read_gva, g->vt, 0xffffffff80000abcull, STACK_VA + 0x100,
			     f, 8, why, sizeof(why));
	assert_int_equal(n, 4);
	assert_true(f[0].pc == 0xffffffff80000abcull && f[0].fp == 0);
	assert_true(f[1].pc == 0xffffffff80001111ull && f[1].fp == STACK_VA + 0x100);
	assert_true(f[2].pc == 0xffffffff80002222ull);
	assert_true(f[3].pc == 0xffffffff80003333ull && f[3].fp == STACK_VA + 0x200);
	assert_string_equal(why, "end of chain");
	/* The frame limit cuts it. */
	n = ks_mon_backtrace(ks_vtop_read_gva, g->vt, 1, STACK_VA + 0x100, f, 2, why,
			     sizeof(why));
	assert_int_equal(n, 2);
	assert_string_equal(why, "frame limit");
	/* Physical reads (paging off) walk the same chain at its physical address. */
	frame_at(g, STACK_VA + 0x300, 0, 0x1234);
	n = ks_mon_backtrace(ks_mem_read_identity, g->m, 0x1000, 0x200300, f, 8, why,
			     sizeof(why));
	assert_int_equal(n, 2);
	assert_true(f[1].pc == 0x1234);
}

static void backtrace_stops_at_bad_frames(void **state)
{
	struct guest *g = *state;
	struct ks_monitor_frame f[8];
	char why[96];
	size_t n;

	/* A loop: the second frame points back at the first. */
	frame_at(g, STACK_VA + 0x100, STACK_VA + 0x180, 0xffffffff80001111ull);
	frame_at(g, STACK_VA + 0x180, STACK_VA + 0x100, 0xffffffff80002222ull);
	n = ks_mon_backtrace(ks_vtop_read_gva, g->vt, 7, STACK_VA + 0x100, f, 8, why,
			     sizeof(why));
	assert_int_equal(n, 3);
	assert_non_null(strstr(why, "does not grow"));
	/* Off the mapped page. */
	frame_at(g, STACK_VA + 0x100, 0xffffc00000800000ull, 0xffffffff80001111ull);
	n = ks_mon_backtrace(ks_vtop_read_gva, g->vt, 7, STACK_VA + 0x100, f, 8, why,
			     sizeof(why));
	assert_int_equal(n, 2);
	assert_string_equal(why, "frame pointer 0xffffc00000800000 does not read");
	/* Misaligned, and a zero return address. */
	n = ks_mon_backtrace(ks_vtop_read_gva, g->vt, 7, STACK_VA + 0x104, f, 8, why,
			     sizeof(why));
	assert_int_equal(n, 1);
	assert_non_null(strstr(why, "misaligned"));
	frame_at(g, STACK_VA + 0x100, STACK_VA + 0x180, 0);
	n = ks_mon_backtrace(ks_vtop_read_gva, g->vt, 7, STACK_VA + 0x100, f, 8, why,
			     sizeof(why));
	assert_int_equal(n, 1);
	assert_string_equal(why, "end of chain");
	assert_int_equal(ks_mon_backtrace(ks_vtop_read_gva, g->vt, 7, 0, f, 0, why, 8), 0);
}

/* ---- getting past a site: the instruction, emulated ---- */

/* The vCPU every case starts from: 64-bit kernel code, IF set. */
static struct ks_x86_regs emul_regs(void)
{
	struct ks_x86_regs r = { 0 };

	r.rax = 0x0123456789abcdefull;
	r.rbx = 0x1122334455667788ull;
	r.rcx = 0x100;
	r.rdx = ~0ull;
	r.rsi = 0x7fffffffffffffffull;
	r.rdi = 0x3e7;
	r.rbp = 0xffffc00000026c30ull;
	r.rsp = 0xffffc00000026c18ull;
	r.r8 = 0x8888;
	r.r13 = 0xd13;
	r.rip = 0xffffffff80109040ull;
	r.rflags = 0x202;
	r.cs = 0x08;
	r.k_gs_base = 0xffffffff80128060ull;
	r.cr0 = KS_X86_CR0_PE | KS_X86_CR0_PG;
	r.efer = KS_X86_EFER_LME | KS_X86_EFER_LMA;
	return r;
}

struct emul_case {
	const char *hex;          /* the instruction */
	int rc;
	const char *what;
	unsigned len;
	size_t nregs;             /* the registers that change, in gdb's order */
	struct ks_gdb_reg_write regs[3];
	bool store;               /* 8 bytes at RSP - 8 */
	uint64_t store_value;
};

#define R(reg, v) { KS_X86_##reg, v }
static const struct emul_case emul_cases[] = {
	{ "90", 0, "nop", 1, 0, { { 0 } }, false, 0 },
	{ "f390", 0, "nop", 2, 0, { { 0 } }, false, 0 },                   /* pause */
	{ "f30f1efa", 0, "nop", 4, 0, { { 0 } }, false, 0 },               /* endbr64 */
	{ "0f1f440000", 0, "nop", 5, 0, { { 0 } }, false, 0 },             /* not an access */
	{ "662e0f1f840000000000", 0, "nop", 10, 0, { { 0 } }, false, 0 },
	/* The magic instruction; 32-bit exchanges clear the upper halves. */
	{ "6687db", 0, "xchg", 3, 0, { { 0 } }, false, 0 },
	{ "87db", 0, "xchg", 2, 1, { R(RBX, 0x55667788) }, false, 0 },
	{ "4990", 0, "xchg", 2, 2, { R(RAX, 0x8888), R(R8, 0x0123456789abcdefull) }, false, 0 },
	{ "4889e5", 0, "mov", 3, 1, { R(RBP, 0xffffc00000026c18ull) }, false, 0 },
	{ "89c7", 0, "mov", 2, 1, { R(RDI, 0x89abcdef) }, false, 0 },
	{ "88e0", 0, "mov", 2, 1, { R(RAX, 0x0123456789abcdcdull) }, false, 0 },    /* al = ah */
	{ "6689c3", 0, "mov", 3, 1, { R(RBX, 0x112233445566cdefull) }, false, 0 },
	{ "48c7c0ffffffff", 0, "mov", 7, 1, { R(RAX, ~0ull) }, false, 0 },
	{ "b801000000", 0, "mov", 5, 1, { R(RAX, 1) }, false, 0 },
	{ "48b80102030405060708", 0, "mov", 10, 1, { R(RAX, 0x0807060504030201ull) }, false, 0 },
	/* Handler entries: push $0, push $vector (imm8 sign-extended; imm32 from 128 on). */
	{ "6a00", 0, "push", 2, 1, { R(RSP, 0xffffc00000026c10ull) }, true, 0 },
	{ "6a0e", 0, "push", 2, 1, { R(RSP, 0xffffc00000026c10ull) }, true, 0xe },
	{ "6a80", 0, "push", 2, 1, { R(RSP, 0xffffc00000026c10ull) }, true, ~0x7full },
	{ "6880000000", 0, "push", 5, 1, { R(RSP, 0xffffc00000026c10ull) }, true, 0x80 },
	{ "6800000080", 0, "push", 5, 1, { R(RSP, 0xffffc00000026c10ull) }, true,
	  0xffffffff80000000ull },
	{ "55", 0, "push", 1, 1, { R(RSP, 0xffffc00000026c10ull) }, true, 0xffffc00000026c30ull },
	{ "4155", 0, "push", 2, 1, { R(RSP, 0xffffc00000026c10ull) }, true, 0xd13 },
	{ "54", 0, "push", 1, 1, { R(RSP, 0xffffc00000026c10ull) }, true, 0xffffc00000026c18ull },
	{ "6650", -ENOTSUP, "push", 0, 0, { { 0 } }, false, 0 },          /* 16-bit push */
	/* Flags as the CPU computes them; IF stays. */
	{ "4883c701", 0, "add", 4, 2, { R(RDI, 0x3e8), R(EFLAGS, 0x206) }, false, 0 },
	{ "4883c601", 0, "add", 4, 2, { R(RSI, 1ull << 63), R(EFLAGS, 0xa96) }, false, 0 },
	{ "4883c201", 0, "add", 4, 2, { R(RDX, 0), R(EFLAGS, 0x257) }, false, 0 },
	{ "4883ec10", 0, "sub", 4, 2, { R(RSP, 0xffffc00000026c08ull), R(EFLAGS, 0x282) },
	  false, 0 },
	{ "4883c4f0", 0, "add", 4, 2, { R(RSP, 0xffffc00000026c08ull), R(EFLAGS, 0x283) },
	  false, 0 },
	{ "4881ec00010000", 0, "sub", 7, 2, { R(RSP, 0xffffc00000026b18ull), R(EFLAGS, 0x286) },
	  false, 0 },
	{ "83e901", 0, "sub", 3, 2, { R(RCX, 0xff), R(EFLAGS, 0x216) }, false, 0 },
	{ "0480", 0, "add", 2, 2, { R(RAX, 0x0123456789abcd6full), R(EFLAGS, 0xa07) }, false, 0 },
	{ "664183e801", 0, "sub", 5, 2, { R(R8, 0x8887), R(EFLAGS, 0x286) }, false, 0 },
	/* The syscall entry. */
	{ "0f01f8", 0, "swapgs", 3, 2, { R(GS_BASE, 0xffffffff80128060ull), R(K_GS_BASE, 0) },
	  false, 0 },
	/* What is stepped instead. */
	{ "c3", -ENOTSUP, NULL, 0, 0, { { 0 } }, false, 0 },               /* ret */
	{ "e800000000", -ENOTSUP, NULL, 0, 0, { { 0 } }, false, 0 },       /* call */
	{ "48cf", -ENOTSUP, NULL, 0, 0, { { 0 } }, false, 0 },             /* iretq */
	{ "480f07", -ENOTSUP, NULL, 0, 0, { { 0 } }, false, 0 },           /* sysretq */
	{ "cc", -ENOTSUP, NULL, 0, 0, { { 0 } }, false, 0 },               /* int3 */
	{ "fb", -ENOTSUP, NULL, 0, 0, { { 0 } }, false, 0 },               /* sti */
	{ "488b18", -ENOTSUP, "mov", 0, 0, { { 0 } }, false, 0 },          /* from memory */
	{ "48891d00000000", -ENOTSUP, "mov", 0, 0, { { 0 } }, false, 0 },  /* to memory */
	{ "8ed8", -ENOTSUP, "mov", 0, 0, { { 0 } }, false, 0 },            /* to DS */
	{ "0f22d8", -ENOTSUP, "mov", 0, 0, { { 0 } }, false, 0 },          /* to CR3 */
	{ "644889e5", -ENOTSUP, NULL, 0, 0, { { 0 } }, false, 0 },         /* fs: prefix */
	{ "4801c7", -ENOTSUP, "add", 0, 0, { { 0 } }, false, 0 },          /* add reg, reg */
	{ "f04883c701", -EINVAL, NULL, 0, 0, { { 0 } }, false, 0 },        /* lock: #UD */
	{ "06", -EINVAL, NULL, 0, 0, { { 0 } }, false, 0 },                /* not in 64-bit */
};
#undef R

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2)
		sscanf(hex, "%2hhx", &out[n++]);
	return n;
}

static void emulated_forms(void **state)
{
	struct ks_mon_x86 *x = ks_mon_x86_new(NULL);
	(void)state;

	assert_non_null(x);
	for (size_t i = 0; i < sizeof(emul_cases) / sizeof(*emul_cases); i++) {
		const struct emul_case *c = &emul_cases[i];
		struct ks_x86_regs r = emul_regs(), after = r, want = r;
		struct ks_mon_emul e;
		uint8_t code[16];
		size_t n = unhex(c->hex, code);
		int rc = ks_mon_emulate(x, code, n, &r, true, &e);

		if (rc != c->rc)
			fail_msg("%s: %d, not %d", c->hex, rc, c->rc);
		if (c->what && rc != -EINVAL && strcmp(e.what ? e.what : "", c->what))
			fail_msg("%s: '%s', not '%s'", c->hex, e.what ? e.what : "", c->what);
		if (rc < 0)
			continue;
		assert_int_equal(e.len, c->len);
		if (e.nregs != c->nregs)
			fail_msg("%s: %zu registers change, not %zu", c->hex, e.nregs, c->nregs);
		for (size_t k = 0; k < c->nregs; k++) {
			if (e.regs[k].reg != c->regs[k].reg || e.regs[k].value != c->regs[k].value)
				fail_msg("%s: write %zu: %s = 0x%" PRIx64 ", not %s = 0x%" PRIx64,
					 c->hex, k, ks_x86_reg_name(e.regs[k].reg), e.regs[k].value,
					 ks_x86_reg_name(c->regs[k].reg), c->regs[k].value);
		}
		assert_int_equal(e.store, c->store);
		if (c->store) {
			assert_true(e.store_gva == r.rsp - 8);
			if (e.store_value != c->store_value)
				fail_msg("%s: pushes 0x%" PRIx64 ", not 0x%" PRIx64, c->hex,
					 e.store_value, c->store_value);
		}
		/* Applied, the writes are the whole change: the rest stays, RIP moves on. */
		ks_mon_emul_apply(&e, &after);
		for (size_t k = 0; k < c->nregs; k++)
			ks_mon_emul_apply(&(struct ks_mon_emul){ .nregs = 1,
				.regs = { c->regs[k] } }, &want);
		want.rip += c->len;
		assert_memory_equal(&after, &want, sizeof(want));
	}
	ks_mon_x86_free(x);
}

#if defined(__x86_64__)
/* The host CPU's own result and flags of an add or sub of b to a at width bytes. */
static uint64_t host_arith(bool sub, unsigned width, uint64_t a, uint64_t b, uint64_t *flags)
{
	uint64_t f;

#define RUN(op, mod) asm volatile("push $0x202; popf; " op " %" mod "2, %" mod "0; pushf; pop %1" \
				  : "+r"(a), "=r"(f) : "r"(b) : "cc")
	switch (width * 2 + sub) {
	case 2: RUN("add", "b"); break;
	case 3: RUN("sub", "b"); break;
	case 4: RUN("add", "w"); break;
	case 5: RUN("sub", "w"); break;
	case 8: RUN("add", "k"); break;
	case 9: RUN("sub", "k"); break;
	case 16: RUN("add", "q"); break;
	default: RUN("sub", "q"); break;
	}
#undef RUN
	*flags = f & 0xfff;
	return a;
}

/* add and sub of an immediate to RAX at every width, against the host CPU. */
static void arith_flags_match_the_host_cpu(void **state)
{
	struct ks_mon_x86 *x = ks_mon_x86_new(NULL);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	(void)state;

	for (int i = 0; i < 4000; i++) {
		static const unsigned widths[] = { 1, 2, 4, 8 };
		unsigned width = widths[i % 4];
		bool sub = i & 4, imm8 = width == 1 || (i & 8);
		struct ks_x86_regs r = emul_regs(), after;
		uint8_t code[16];
		size_t n = 0;
		struct ks_mon_emul e;
		uint64_t want_flags, want, imm;
		int32_t raw;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		r.rax = seed;
		/* Small values and edges come often: carries and overflows near them. */
		raw = i % 3 ? (int32_t)(seed >> 17) : (int32_t)(i % 7) - 3;
		if (imm8 || width == 2)
			raw = imm8 ? (int8_t)raw : (int16_t)raw;
		imm = (uint64_t)(int64_t)raw;
		if (width == 2)
			code[n++] = 0x66;
		if (width == 8)
			code[n++] = 0x48;
		code[n++] = width == 1 ? 0x80 : imm8 ? 0x83 : 0x81;
		code[n++] = sub ? 0xe8 : 0xc0;
		for (unsigned k = 0; k < (imm8 ? 1u : width == 2 ? 2u : 4u); k++)
			code[n++] = (uint8_t)(imm >> (8 * k));
		want = host_arith(sub, width, r.rax, imm, &want_flags);
		assert_int_equal(ks_mon_emulate(x, code, n, &r, true, &e), 0);
		after = r;
		ks_mon_emul_apply(&e, &after);
		if (after.rax != want || after.rflags != want_flags)
			fail_msg("%s $0x%" PRIx64 " to 0x%" PRIx64 " (%u bytes): 0x%" PRIx64
				 " flags 0x%" PRIx64 ", the CPU says 0x%" PRIx64 " flags 0x%" PRIx64,
				 sub ? "sub" : "add", imm, r.rax, width, after.rax, after.rflags, want,
				 want_flags);
	}
	ks_mon_x86_free(x);
}
#endif

/* Where the CPU would not simply run it, or the mode is not known. */
static void emulation_refused(void **state)
{
	struct ks_mon_x86 *x = ks_mon_x86_new(NULL);
	struct ks_x86_regs r = emul_regs();
	struct ks_mon_emul e;
	uint8_t code[16];
	(void)state;

	/* swapgs in ring 3 faults; a vCPU with TF set takes a #DB after any instruction. */
	r.cs = 0x33;
	assert_int_equal(ks_mon_emulate(x, code, unhex("0f01f8", code), &r, true, &e), -ENOTSUP);
	r = emul_regs();
	r.rflags |= KS_X86_RFLAGS_TF;
	assert_int_equal(ks_mon_emulate(x, code, unhex("90", code), &r, true, &e), -ENOTSUP);
	/* Mode unknown in long mode (compatibility mode may be 32- or 16-bit): nops only. */
	r = emul_regs();
	assert_int_equal(ks_mon_emulate(x, code, unhex("90", code), &r, false, &e), 0);
	assert_int_equal(e.len, 1);
	assert_int_equal(ks_mon_emulate(x, code, unhex("0f1f00", code), &r, false, &e), 0);
	assert_int_equal(e.len, 3);
	assert_int_equal(ks_mon_emulate(x, code, unhex("4889e5", code), &r, false, &e), -ENOTSUP);
	assert_int_equal(ks_mon_emulate(x, code, unhex("6a00", code), &r, false, &e), -ENOTSUP);
	/* 66 87 db is xchg %ebx,%ebx in 16-bit code; 0f 1f 44 00 00 is 4 bytes there. */
	assert_int_equal(ks_mon_emulate(x, code, unhex("6687db", code), &r, false, &e), -ENOTSUP);
	assert_int_equal(ks_mon_emulate(x, code, unhex("0f1f440000", code), &r, false, &e),
			 -ENOTSUP);
	/* 64-bit claimed outside long mode; real mode. */
	r.efer = 0;
	assert_int_equal(ks_mon_emulate(x, code, unhex("90", code), &r, true, &e), -ENOTSUP);
	assert_int_equal(ks_mon_emulate(x, code, unhex("90", code), &r, false, &e), 0);
	r.cr0 = 0;
	assert_int_equal(ks_mon_emulate(x, code, unhex("90", code), &r, false, &e), -ENOTSUP);
	/* Bytes that end inside the instruction. */
	r = emul_regs();
	assert_int_equal(ks_mon_emulate(x, code, unhex("68000000", code), &r, true, &e), -EINVAL);
	ks_mon_x86_free(x);
	ks_mon_x86_free(NULL);
}

/* Page tables in the memfd guest, 4 KiB pages at EMUL_VA + i * 4096 to EMUL_PA + i * 4096,
 * each leaf with its own flags; the second page table's PD entry lacks its accessed bit. */
#define EMUL_VA 0xffffc00000000000ull
#define EMUL_PA 0x100000ull
#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_NX (1ull << 63)

static const uint64_t emul_pages[] = {
	PTE_P | PTE_W | PTE_A | PTE_D,           /* 0: a kernel stack page */
	PTE_P | PTE_A | PTE_D,                   /* 1: read-only */
	PTE_P | PTE_W | PTE_A,                   /* 2: never written: no dirty bit */
	0,                                       /* 3: not present */
	PTE_P | PTE_W | PTE_U | PTE_A | PTE_D,   /* 4: a user page */
	PTE_P | PTE_W | PTE_A | PTE_D | PTE_NX,  /* 5: data, not code */
	PTE_P | PTE_W | PTE_D,                   /* 6: never touched: no accessed bit */
};

static void emul_tables(struct guest *g)
{
	uint64_t *pml4 = (uint64_t *)(g->ram + 0x10000), *pdpt = (uint64_t *)(g->ram + 0x11000);
	uint64_t *pd = (uint64_t *)(g->ram + 0x12000), *pt = (uint64_t *)(g->ram + 0x13000);
	uint64_t *pt2 = (uint64_t *)(g->ram + 0x14000);
	const uint64_t table = PTE_P | PTE_W | PTE_U | PTE_A;

	pml4[(EMUL_VA >> 39) & 511] = 0x11000 | table;
	pdpt[(EMUL_VA >> 30) & 511] = 0x12000 | table;
	pd[0] = 0x13000 | table;
	pd[1] = 0x14000 | (table & ~PTE_A);
	for (size_t i = 0; i < sizeof(emul_pages) / sizeof(*emul_pages); i++)
		pt[i] = emul_pages[i] ? (EMUL_PA + i * 0x1000) | emul_pages[i] : 0;
	pt2[0] = EMUL_PA | PTE_P | PTE_W | PTE_A | PTE_D;
}

static void emulated_access(void **state)
{
	struct guest *g = *state;
	struct ks_x86_regs r = emul_regs();
	ks_gpa_t gpa = 0;
	(void)state;

	emul_tables(g);
	r.cr3 = 0x10000;
#define ACCESS(page, off, len, write) \
	ks_mon_emul_access(g->m, &r, EMUL_VA + (page) * 0x1000 + (off), len, write, &gpa)
	assert_int_equal(ACCESS(0, 0xff8, 8, true), 0);
	assert_true(gpa == EMUL_PA + 0xff8);
	assert_int_equal(ACCESS(0, 0xffc, 8, true), -EFAULT);   /* into the next page */
	assert_int_equal(ACCESS(1, 0x10, 8, true), -EFAULT);    /* read-only */
	assert_int_equal(ACCESS(1, 0x10, 8, false), 0);         /* ... fetched fine */
	assert_int_equal(ACCESS(2, 0x10, 8, true), -EFAULT);    /* would set D */
	assert_int_equal(ACCESS(3, 0x10, 8, false), -EFAULT);   /* not present */
	assert_int_equal(ACCESS(5, 0x10, 8, true), 0);
	assert_int_equal(ACCESS(5, 0x10, 8, false), -EFAULT);   /* NX */
	assert_int_equal(ACCESS(6, 0x10, 8, false), -EFAULT);   /* would set A */
	assert_int_equal(ks_mon_emul_access(g->m, &r, EMUL_VA + 0x200000, 8, true, &gpa),
			 -EFAULT);                               /* A clear in the PD entry */
	/* User pages: fine for ring 0 until SMAP and SMEP; kernel pages never for ring 3. */
	assert_int_equal(ACCESS(4, 0x10, 8, true), 0);
	r.cr4 = 3ull << 20;
	assert_int_equal(ACCESS(4, 0x10, 8, true), -EFAULT);
	assert_int_equal(ACCESS(4, 0x10, 8, false), -EFAULT);
	assert_int_equal(ACCESS(0, 0x10, 8, true), 0);
	r.cs = 0x33;
	assert_int_equal(ACCESS(4, 0x10, 8, true), 0);
	assert_int_equal(ACCESS(0, 0x10, 8, true), -EFAULT);
	r.cr4 |= 1ull << 22;                                    /* protection keys */
	assert_int_equal(ACCESS(4, 0x10, 8, true), -EFAULT);
	/* Paging off: the address is physical and must be RAM; 32-bit paging is not walked. */
	r = emul_regs();
	r.cr0 = KS_X86_CR0_PE;
	assert_int_equal(ks_mon_emul_access(g->m, &r, 0x1000, 8, false, &gpa), 0);
	assert_true(gpa == 0x1000);
	assert_int_equal(ks_mon_emul_access(g->m, &r, RAM_SIZE - 4, 8, false, &gpa), -EFAULT);
	r.cr0 |= KS_X86_CR0_PG;
	r.efer = 0;
	assert_int_equal(ks_mon_emul_access(g->m, &r, 0x1000, 8, false, &gpa), -EFAULT);
#undef ACCESS
}

/* The guest's debug registers from HMP: DR7 0x400 has none enabled. */
static void hmp_dr7(void **state)
{
	char *text = slurp("regs_triple_fault.txt");
	struct ks_mon_hmp_cpu c[2];
	(void)state;

	assert_int_equal(ks_mon_parse_hmp_regs(text, c, 2), 2);
	assert_true(c[0].dr7 == 0x400 && c[1].dr7 == 0x400);
	assert_int_equal(ks_mon_parse_hmp_regs("RAX=0000000000000001\nDR6=00000000ffff0ff0 "
					       "DR7=0000000000000403\n", c, 1), 1);
	assert_true(c[0].dr7 == 0x403);
	free(text);
}

/* ---- KVM's refusal ---- */

static void kvm_message(void **state)
{
	const struct ks_mon_need needs[] = { { "magic", 35 }, { "exception:14", 2 } };
	char buf[256];
	(void)state;

	ks_mon_kvm_message(needs, 2, 37, 4, buf, sizeof(buf));
	assert_string_equal(buf, "events: 37 breakpoints needed (magic: 35, exception:14: 2) but "
			    "KVM allows 4 hardware breakpoints; run with --accel tcg");
	ks_mon_kvm_message(needs, 1, 35, 4, buf, 20);
	assert_int_equal(strlen(buf), 19);
}

/* ---- a dump as text and JSON ---- */

static void dump_forms(void **state)
{
	struct ks_monitor_cpu cpus[2] = { 0 };
	struct ks_event evs[2] = { 0 };
	struct ks_monitor_dump d = { .event = &evs[1], .regs_from = "gdb", .ncpus = 2,
				     .cpus = cpus, .nevents = 2, .events = evs };
	(void)state;

	evs[0] = (struct ks_event){ .seq = 1, .vcpu = 0, .kind = KS_EV_MAGIC };
	evs[0].magic.id = 0x101;
	evs[1] = (struct ks_event){ .seq = 2, .vcpu = -1, .kind = KS_EV_VM };
	snprintf(evs[1].vm.what, sizeof(evs[1].vm.what), "shutdown");
	snprintf(evs[1].vm.detail, sizeof(evs[1].vm.detail), "guest-reset");
	cpus[0].have_regs = true;
	cpus[0].regs.rip = 0xffffffff80117128ull;
	cpus[0].regs.efer = 0xd01;
	cpus[0].nframes = 2;
	cpus[0].frames[0].pc = 0xffffffff80117128ull;
	snprintf(cpus[0].frames[0].sym, KS_EVENT_SYM, "triple_fault+0x8");
	cpus[0].frames[1].pc = 0xffffffff8011b367ull;
	snprintf(cpus[0].frames[1].sym, KS_EVENT_SYM, "kt_run+0x3c7");
	snprintf(cpus[0].bt_end, sizeof(cpus[0].bt_end), "end of chain");
	cpus[1].vcpu = 1;

	char *text = ks_monitor_dump_format(&d);
	assert_non_null(text);
	assert_non_null(strstr(text, "dump for:"));
	assert_non_null(strstr(text, "shutdown guest-reset"));
	assert_non_null(strstr(text, "  #0 0xffffffff80117128 <triple_fault+0x8>\n"));
	assert_non_null(strstr(text, "  #1 0xffffffff8011b367 <kt_run+0x3c7>\n"));
	assert_non_null(strstr(text, "  (end of chain)\n"));
	assert_non_null(strstr(text, "cpu1: no registers\n"));
	assert_non_null(strstr(text, "last 2 events:\n"));
	free(text);

	json_t *j = ks_monitor_dump_to_json(&d);
	assert_non_null(j);
	json_t *c0 = json_array_get(json_object_get(j, "cpus"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c0, "regs"),
							      "rip")), "0xffffffff80117128");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(c0, "backtrace"), 1), "sym")), "kt_run+0x3c7");
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(j, "cpus"), 1),
						 "regs")));
	assert_int_equal(json_array_size(json_object_get(j, "events")), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "event"),
							      "kind")), "vm");
	json_decref(j);
}

/* ---- the VM option dumps rely on ---- */

static void shutdown_pause_in_argv(void **state)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_qemu_paths p = { .accel = KS_ACCEL_TCG, .ram = "/dev/shm/r" };
	struct ks_error err = { 0 };
	char **argv = NULL;
	size_t hits = 0;
	(void)state;

	assert_int_equal(ks_vmspec_set(s, "kernel", "/boot/vmlinuz", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "serial", "0", &err), 0);
	for (int pass = 0; pass < 2; pass++) {
		p.shutdown_pause = pass;
		if (ks_qemu_argv_build(s, &p, &argv, &err) < 0)
			fail_msg("%s", err.msg);
		for (size_t i = 0; argv[i]; i++)
			if (!strcmp(argv[i], "-action") && argv[i + 1] &&
			    !strcmp(argv[i + 1], "reboot=shutdown,shutdown=pause"))
				hits++;
		assert_int_equal(hits, (size_t)pass);
		ks_qemu_argv_free(argv);
	}
	ks_vmspec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_with_and_without_error_code),
		cmocka_unit_test(vector_kinds),
		cmocka_unit_test(gates),
		cmocka_unit_test(hmp_long_mode),
		cmocka_unit_test(hmp_reset_and_plain),
		cmocka_unit_test_setup_teardown(backtrace_follows_rbp, guest_setup, guest_teardown),
		cmocka_unit_test_setup_teardown(backtrace_stops_at_bad_frames, guest_setup,
						guest_teardown),
		cmocka_unit_test(emulated_forms),
#if defined(__x86_64__)
		cmocka_unit_test(arith_flags_match_the_host_cpu),
#endif
		cmocka_unit_test(emulation_refused),
		cmocka_unit_test_setup_teardown(emulated_access, guest_setup, guest_teardown),
		cmocka_unit_test(hmp_dr7),
		cmocka_unit_test(kvm_message),
		cmocka_unit_test(dump_forms),
		cmocka_unit_test(shutdown_pause_in_argv),
	};

	return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
