/* test_monitor.c: the event monitor's pure parts: frames, gates, HMP registers, backtraces, dumps. */
#include <errno.h>
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
	char path[512];
	const char *dir = getenv("KSCOPE_MONITOR_DATA");
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/data/monitor", name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
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
		cmocka_unit_test(kvm_message),
		cmocka_unit_test(dump_forms),
		cmocka_unit_test(shutdown_pause_in_argv),
	};

	return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
