/* test_gdb.c: the gdb client against QEMU's gdbstub on the demo kernel (TCG, 2 vCPUs). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/gdb.h>
#include <kscope/kt_abi.h>
#include <kscope/loop.h>
#include <kscope/vm.h>

#include "vmboot.h"
#include "leftovers.h"

#define SEC 1000000000ll
#define KERNEL_VA_BASE 0xffffffff80000000ull  /* the demo kernel's higher half: PA + this */

extern char **environ;

struct fixture {
	struct ks_loop *loop;
	char base[64];
	struct ks_vm *vm;
	struct ks_gdb *g;
};

/* ---- the kernel's symbols, from nm ---- */

/* The address of symbol name in the demo kernel, as `nm` prints it. */
static uint64_t sym(const char *name)
{
	char *argv[] = { "nm", (char *)vm_demo_kernel(), NULL };
	char line[512], type, found[256];
	posix_spawn_file_actions_t fa;
	unsigned long long addr = 0;
	int pfd[2], status;
	bool hit = false;
	pid_t pid;
	FILE *f;

	assert_int_equal(pipe(pfd), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	assert_int_equal(posix_spawnp(&pid, "nm", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %255s", &addr, &type, found) == 3 &&
		    !strcmp(found, name)) {
			hit = true;
			break;
		}
	while (fgets(line, sizeof(line), f))
		;
	fclose(f);
	waitpid(pid, &status, 0);
	if (!hit)
		fail_msg("no symbol %s in %s", name, vm_demo_kernel());
	return addr;
}

/* ---- fixture: one paused VM with 2 vCPUs, and a client on its gdbstub ---- */

static int start(void **state, bool paused)
{
	static struct fixture f;
	struct ks_vm_opts o;
	struct ks_error err = { 0 };
	struct ks_vmspec *s;

	if (!vm_have_qemu())
		skip();
	memset(&f, 0, sizeof(f));
	f.loop = ks_loop_new(NULL);
	snprintf(f.base, sizeof(f.base), "/tmp/kscope-test-gdb-XXXXXX");
	assert_non_null(mkdtemp(f.base));
	s = ks_vmspec_new(NULL);
	assert_int_equal(ks_vmspec_set(s, "kernel", vm_demo_kernel(), &err), 0);
	assert_int_equal(ks_vmspec_set(s, "accel", "tcg", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "cpus", "2", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "append", "kt.filter=example_crash.hang", &err), 0);
	ks_vm_opts_init(&o);
	o.rundir_base = f.base;
	o.paused = paused;
	f.vm = ks_vm_start(f.loop, s, &o, &err);
	ks_vmspec_free(s);
	if (!f.vm)
		fail_msg("start: %s", err.msg);
	f.g = ks_gdb_connect(f.loop, ks_vm_gdb_socket(f.vm), 10 * SEC, &err);
	if (!f.g) {
		ks_vm_free(f.vm);
		fail_msg("connect: %s", err.msg);
	}
	*state = &f;
	return 0;
}

static int setup(void **state)
{
	return start(state, true);
}

static int setup_running(void **state)
{
	return start(state, false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ks_gdb_free(f->g);
	ks_vm_free(f->vm);
	ks_loop_free(f->loop);
	expect_no_leftovers(f->base);
	return 0;
}

/* Fails the test with the client's message when call r failed. */
#define OK(r, err) do { if ((r) < 0) fail_msg("%s:%d: %s", __FILE__, __LINE__, (err).msg); } \
	while (0)

/* Runs vCPUs until a breakpoint of type at addr stops one; returns that stop. */
static struct ks_gdb_stop run_to(struct fixture *f, enum ks_gdb_bp_type type, uint64_t addr)
{
	struct ks_error err = { 0 };
	struct ks_gdb_stop st;

	OK(ks_gdb_set_breakpoint(f->g, type, addr, 1, &err), err);
	OK(ks_gdb_continue(f->g, &err), err);
	assert_int_equal(ks_gdb_state(f->g), KS_GDB_RUNNING);
	assert_int_equal(ks_gdb_wait_stop(f->g, &st, 30 * SEC), 0);
	OK(ks_gdb_clear_breakpoint(f->g, type, addr, 1, &err), err);
	assert_int_equal(st.kind, KS_GDB_STOP_SIGNAL);
	assert_int_equal(st.code, KS_GDB_SIGTRAP);
	return st;
}

/* ---- tests ---- */

static void threads_and_first_registers(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_x86_regs r;
	char text[2048];

	assert_int_equal(ks_gdb_vcpu_count(f->g), 2);
	assert_string_equal(ks_gdb_arch(f->g), "i386:x86-64");
	assert_int_equal(ks_gdb_packet_size(f->g), 4096);
	assert_int_equal(ks_gdb_max_read(f->g), 2048);
	assert_int_equal(ks_gdb_state(f->g), KS_GDB_STOPPED);
	assert_int_equal(ks_gdb_last_stop(f->g)->vcpu, 0);
	/* Paused before the first instruction: the reset vector, in real mode. */
	OK(ks_gdb_read_regs(f->g, 0, &r, &err), err);
	assert_int_equal(r.rip, 0xfff0);
	assert_int_equal(r.cs, 0xf000);
	assert_string_equal(ks_x86_mode(&r), "real");
	OK(ks_gdb_read_regs(f->g, 1, &r, &err), err);
	assert_int_equal(r.rip, 0xfff0);
	assert_true(ks_x86_regs_format(&r, text, sizeof(text)) < (int)sizeof(text));
	assert_non_null(strstr(text, "rip 000000000000fff0"));
	assert_int_equal(ks_gdb_select_vcpu(f->g, 2, &err), -EINVAL);
}

static void pvh_entry_in_32_bit_mode(void **state)
{
	struct fixture *f = *state;
	uint64_t entry = sym("pvh_start32"), rip;
	struct ks_error err = { 0 };
	struct ks_gdb_stop st = run_to(f, KS_GDB_BP_HW, entry);
	struct ks_x86_regs r;

	assert_int_equal(st.vcpu, 0);
	OK(ks_gdb_read_regs(f->g, 0, &r, &err), err);
	assert_int_equal(r.rip, entry);
	assert_true(r.cr0 & KS_X86_CR0_PE);
	assert_false(r.cr0 & KS_X86_CR0_PG);
	assert_false(r.efer & KS_X86_EFER_LMA);
	assert_string_equal(ks_x86_mode(&r), "protected");
	/* One register by number agrees with the whole block. */
	OK(ks_gdb_read_reg_u64(f->g, 0, KS_X86_RIP, &rip, &err), err);
	assert_int_equal(rip, entry);
	/* vCPU 1 waits for its SIPI, still at the reset vector. */
	OK(ks_gdb_read_regs(f->g, 1, &r, &err), err);
	assert_int_equal(r.rip, 0xfff0);
}

static void breakpoint_memory_and_phys_mode(void **state)
{
	struct fixture *f = *state;
	uint64_t kmain = sym("kmain"), kt = sym("kt_state");
	struct ks_error err = { 0 };
	struct ks_gdb_stop st = run_to(f, KS_GDB_BP_HW, kmain);
	struct ks_x86_regs r;
	char magic[8], back[8];

	assert_int_equal(st.vcpu, 0);
	OK(ks_gdb_read_regs(f->g, 0, &r, &err), err);
	assert_int_equal(r.rip, kmain);
	assert_string_equal(ks_x86_mode(&r), "long");
	OK(ks_gdb_read_virt(f->g, 0, kt, magic, 8, &err), err);
	assert_memory_equal(magic, "KSCOPEKT", 8);
	/* The same bytes through physical mode, which the client then remembers. */
	memset(back, 0, sizeof(back));
	OK(ks_gdb_read_phys(f->g, kt - KERNEL_VA_BASE, back, 8, &err), err);
	assert_true(ks_gdb_phys_mode(f->g));
	assert_memory_equal(back, "KSCOPEKT", 8);
	/* Written through one view, read through the other, then put back. */
	OK(ks_gdb_write_virt(f->g, 0, kt, "kscopekt", 8, &err), err);
	assert_false(ks_gdb_phys_mode(f->g));
	OK(ks_gdb_read_phys(f->g, kt - KERNEL_VA_BASE, back, 8, &err), err);
	assert_memory_equal(back, "kscopekt", 8);
	OK(ks_gdb_write_phys(f->g, kt - KERNEL_VA_BASE, "KSCOPEKT", 8, &err), err);
	OK(ks_gdb_read_virt(f->g, 0, kt, back, 8, &err), err);
	assert_memory_equal(back, "KSCOPEKT", 8);
	/* Unmapped memory is an error, not a crash. */
	assert_int_equal(ks_gdb_read_virt(f->g, 0, 0xdead0000, back, 8, &err), -EFAULT);
}

/* Reads len bytes at virtual address va from the demo kernel's file (its PT_LOAD segments). */
static void elf_bytes(uint64_t va, void *buf, size_t len)
{
	FILE *f = fopen(vm_demo_kernel(), "rb");
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	assert_non_null(f);
	assert_int_equal(fread(&eh, sizeof(eh), 1, f), 1);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		assert_int_equal(fseek(f, (long)(eh.e_phoff + i * eh.e_phentsize), SEEK_SET), 0);
		assert_int_equal(fread(&ph, sizeof(ph), 1, f), 1);
		if (ph.p_type != PT_LOAD || va < ph.p_vaddr || va + len > ph.p_vaddr + ph.p_filesz)
			continue;
		assert_int_equal(fseek(f, (long)(ph.p_offset + va - ph.p_vaddr), SEEK_SET), 0);
		assert_int_equal(fread(buf, 1, len, f), len);
		fclose(f);
		return;
	}
	fail_msg("0x%" PRIx64 "+%zu is not in one loaded segment of the kernel file", va, len);
}

/* A read over several chunks returns what the kernel's file holds (its code, unchanged). */
static void chunked_read_matches_the_elf(void **state)
{
	struct fixture *f = *state;
	uint64_t text = sym("kmain") & ~0xfffull;
	size_t len = 3 * 2048 + 123;
	struct ks_error err = { 0 };
	uint8_t *got = malloc(len), *want = malloc(len);

	run_to(f, KS_GDB_BP_HW, sym("kmain"));
	elf_bytes(text, want, len);
	OK(ks_gdb_read_phys(f->g, text - KERNEL_VA_BASE, got, len, &err), err);
	assert_memory_equal(got, want, len);
	memset(got, 0, len);
	OK(ks_gdb_read_virt(f->g, 0, text, got, len, &err), err);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
}

static void write_watchpoint_on_seq(void **state)
{
	struct fixture *f = *state;
	uint64_t seq = sym("kt_state") + offsetof(struct kt_abi_state, seq);
	struct ks_error err = { 0 };
	struct ks_gdb_stop st;

	/* Software breakpoints work under TCG (not under the KVM of these machines). */
	st = run_to(f, KS_GDB_BP_SW, sym("kt_run"));
	assert_int_equal(st.vcpu, 0);
	OK(ks_gdb_set_breakpoint(f->g, KS_GDB_WP_WRITE, seq, 8, &err), err);
	OK(ks_gdb_continue(f->g, &err), err);
	assert_int_equal(ks_gdb_wait_stop(f->g, &st, 30 * SEC), 0);
	OK(ks_gdb_clear_breakpoint(f->g, KS_GDB_WP_WRITE, seq, 8, &err), err);
	assert_int_equal(st.kind, KS_GDB_STOP_SIGNAL);
	assert_int_equal(st.code, KS_GDB_SIGTRAP);
	assert_int_equal(st.watch, KS_GDB_WATCH_WRITE);
	assert_int_equal(st.watch_addr, seq);
	assert_int_equal(st.vcpu, 0);
}

static void single_step_and_registers(void **state)
{
	struct fixture *f = *state;
	uint64_t kmain = sym("kmain"), rax;
	struct ks_error err = { 0 };
	struct ks_gdb_stop st;
	struct ks_x86_regs r, r2;

	run_to(f, KS_GDB_BP_HW, kmain);
	OK(ks_gdb_step(f->g, 0, &st, &err), err);
	assert_int_equal(st.kind, KS_GDB_STOP_SIGNAL);
	assert_int_equal(st.vcpu, 0);
	OK(ks_gdb_read_regs(f->g, 0, &r, &err), err);
	assert_int_not_equal(r.rip, kmain);
	assert_true(r.rip > kmain && r.rip < kmain + 16);
	/* One register written by number, then all of them at once. */
	OK(ks_gdb_write_reg_u64(f->g, 0, KS_X86_RAX, 0x1122334455667788ull, &err), err);
	OK(ks_gdb_read_reg_u64(f->g, 0, KS_X86_RAX, &rax, &err), err);
	assert_int_equal(rax, 0x1122334455667788ull);
	r.r12 = 0xfeedfacecafebeefull;
	OK(ks_gdb_write_regs(f->g, 0, &r, &err), err);
	OK(ks_gdb_read_regs(f->g, 0, &r2, &err), err);
	assert_int_equal(r2.r12, 0xfeedfacecafebeefull);
	assert_int_equal(r2.rip, r.rip);
	assert_int_equal(r2.rax, r.rax);
}

static void interrupt_a_running_vm(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_gdb_stop st;
	uint64_t phase = 0;

	OK(ks_gdb_continue(f->g, &err), err);
	/* Let the kernel boot into the hanging test. */
	assert_int_equal(ks_gdb_wait_stop(f->g, NULL, SEC / 2), -ETIMEDOUT);
	assert_int_equal(ks_gdb_read_regs(f->g, 0, &(struct ks_x86_regs){ 0 }, &err), -EBUSY);
	OK(ks_gdb_interrupt(f->g, &st, &err), err);
	assert_int_equal(ks_gdb_state(f->g), KS_GDB_STOPPED);
	assert_int_equal(st.kind, KS_GDB_STOP_SIGNAL);
	assert_int_equal(st.code, KS_GDB_SIGINT);
	assert_true(st.vcpu == 0 || st.vcpu == 1);
	/* Stopped for real: memory reads work again. */
	OK(ks_gdb_read_virt(f->g, 0, sym("kt_state") + offsetof(struct kt_abi_state, phase),
			    &phase, 4, &err), err);
	assert_true(phase == KT_PHASE_RUNNING || phase == KT_PHASE_READY);
	/* Interrupting a stopped VM answers at once with its stop. */
	OK(ks_gdb_interrupt(f->g, &st, &err), err);
	assert_int_equal(st.kind, KS_GDB_STOP_SIGNAL);
}

/* QEMU pauses a running VM when a client connects; its stop may come amid the negotiation. */
static void attach_to_a_running_vm(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_gdb_stop st;
	struct ks_x86_regs r;

	assert_int_equal(ks_gdb_state(f->g), KS_GDB_STOPPED);
	assert_int_equal(ks_gdb_vcpu_count(f->g), 2);
	OK(ks_gdb_read_regs(f->g, 0, &r, &err), err);
	OK(ks_gdb_continue(f->g, &err), err);
	assert_int_equal(ks_gdb_wait_stop(f->g, NULL, SEC / 2), -ETIMEDOUT);
	OK(ks_gdb_interrupt(f->g, &st, &err), err);
	assert_int_equal(st.code, KS_GDB_SIGINT);
	/* By now the kernel runs its hanging test, in long mode. */
	OK(ks_gdb_read_regs(f->g, st.vcpu, &r, &err), err);
	assert_string_equal(ks_x86_mode(&r), "long");
}

/* A pause through QMP reaches the client as a stop; a QMP resume must be told to it. */
static void qmp_pause_and_resume(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_gdb_stop st;

	OK(ks_gdb_continue(f->g, &err), err);
	OK(ks_vm_pause(f->vm, &err), err);
	assert_int_equal(ks_gdb_wait_stop(f->g, &st, 10 * SEC), 0);
	assert_int_equal(st.code, KS_GDB_SIGINT);
	OK(ks_vm_resume(f->vm, &err), err);
	ks_gdb_note_resumed(f->g);
	assert_int_equal(ks_gdb_state(f->g), KS_GDB_RUNNING);
	OK(ks_gdb_interrupt(f->g, &st, &err), err);
	assert_int_equal(st.code, KS_GDB_SIGINT);
	assert_int_equal(ks_gdb_state(f->g), KS_GDB_STOPPED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(threads_and_first_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(pvh_entry_in_32_bit_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(breakpoint_memory_and_phys_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(chunked_read_matches_the_elf, setup, teardown),
		cmocka_unit_test_setup_teardown(write_watchpoint_on_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(single_step_and_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(interrupt_a_running_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(attach_to_a_running_vm, setup_running, teardown),
		cmocka_unit_test_setup_teardown(qmp_pause_and_resume, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
