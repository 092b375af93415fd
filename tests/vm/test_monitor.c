/* test_monitor.c: the event monitor on the demo kernel (TCG, 2-3 vCPUs, each VM started paused), breakpoints passed by emulation included. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/gdb.h>
#include <kscope/kt_abi.h>
#include <kscope/loop.h>
#include <kscope/mem.h>
#include <kscope/monitor.h>
#include <kscope/sites.h>
#include <kscope/sym.h>
#include <kscope/vm.h>

#include "vmboot.h"
#include "leftovers.h"

#define SEC 1000000000ll

/* The demo kernel's vectors (kernel/arch/x86_64/include/arch/trap.h) and system calls
 * (kernel/arch/x86_64/include/arch/syscall.h). */
#define VEC_PF 14
#define VEC_TIMER 0x40
#define VEC_CALL 0xf0
#define SYS_WRITE 1
#define SYS_GETCPU 2
#define SYS_ADD 3
#define SYS_EXIT 4

struct fixture {
	struct ks_loop *loop;
	char base[64];
	struct ks_vm *vm;
	struct ks_gdb *g;
	struct ks_mem *mem;
	struct ks_symtab *syms;
	struct ks_evrules *rules;
	struct ks_monitor *m;
	struct ks_event *ev;       /* every event shown, in order */
	size_t nev, cap;
	char *dump;                /* the last dump, as text */
	unsigned ndumps;
	unsigned warnings;
	/* called with each event, the VM stopped at it (NULL: none) */
	void (*hook)(struct fixture *f, const struct ks_event *ev);
	struct ks_x86_regs seen[3]; /* what a hook saw */
	uint64_t stack[3][2];
	unsigned nseen;
};

static struct fixture fx;

static void on_event(struct ks_monitor *m, const struct ks_event *ev, enum ks_evaction a,
		     void *data)
{
	struct fixture *f = data;
	(void)m, (void)a;

	if (f->nev == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 1024;
		assert_non_null(f->ev = realloc(f->ev, f->cap * sizeof(*f->ev)));
	}
	f->ev[f->nev++] = *ev;
	if (f->hook)
		f->hook(f, ev);
}

static void on_dump(struct ks_monitor *m, const struct ks_monitor_dump *d, void *data)
{
	struct fixture *f = data;
	(void)m;

	free(f->dump);
	f->dump = ks_monitor_dump_format(d);
	f->ndumps++;
}

static void on_warn(struct ks_monitor *m, const char *msg, void *data)
{
	struct fixture *f = data;
	(void)m;

	print_message("# monitor: %s\n", msg);
	f->warnings++;
}

/* The owner of the VM passes its QMP events on. */
static void on_vm(struct ks_vm *vm, const char *event, void *data)
{
	struct fixture *f = data;
	(void)vm;

	if (f->m)
		ks_monitor_vm_event(f->m, event, NULL);
}

static int setup(void **state)
{
	if (!vm_have_qemu())
		skip();
	memset(&fx, 0, sizeof(fx));
	fx.loop = ks_loop_new(NULL);
	snprintf(fx.base, sizeof(fx.base), "/tmp/kscope-test-mon-XXXXXX");
	assert_non_null(mkdtemp(fx.base));
	assert_non_null(fx.syms = ks_sym_load(vm_demo_kernel(), NULL));
	assert_non_null(fx.rules = ks_evrules_new(NULL));
	*state = &fx;
	return 0;
}

/* Nothing may remain: no QEMU, no runtime dir, no /dev/shm file of ours. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	ks_monitor_free(f->m);
	f->m = NULL;
	ks_gdb_free(f->g);
	ks_vm_free(f->vm);
	ks_mem_free(f->mem);
	ks_evrules_free(f->rules);
	ks_sym_free(f->syms);
	ks_loop_free(f->loop);
	free(f->ev);
	free(f->dump);
	expect_no_leftovers(f->base);
	return 0;
}

static void rule(struct fixture *f, const char *text)
{
	struct ks_error err = { 0 };

	if (ks_evrules_add_on(f->rules, text, &err) < 0)
		fail_msg("%s", err.msg);
}

/* Starts the demo kernel paused on cpus vCPUs with kt.filter=filter, attaches gdb and the
 * monitor (opts may be NULL), and runs it. */
static void boot(struct fixture *f, const char *filter, const char *cpus,
		  struct ks_vm_opts *vo, struct ks_monitor_opts *mo)
{
	struct ks_error err = { 0 };
	struct ks_monitor_opts def;
	struct ks_vm_opts vdef;
	char append[128];
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	int fd;

	snprintf(append, sizeof(append), "kt.filter=%s", filter);
	assert_int_equal(ks_vmspec_set(s, "kernel", vm_demo_kernel(), &err), 0);
	assert_int_equal(ks_vmspec_set(s, "accel", "tcg", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "cpus", cpus, &err), 0);
	assert_int_equal(ks_vmspec_set(s, "append", append, &err), 0);
	if (!vo) {
		ks_vm_opts_init(&vdef);
		vo = &vdef;
	}
	vo->rundir_base = f->base;
	vo->paused = true;
	f->vm = ks_vm_start(f->loop, s, vo, &err);
	ks_vmspec_free(s);
	if (!f->vm)
		fail_msg("start: %s", err.msg);
	ks_vm_on_event(f->vm, on_vm, f);
	if (!(f->g = ks_gdb_connect(f->loop, ks_vm_gdb_socket(f->vm), 10 * SEC, &err)))
		fail_msg("gdb: %s", err.msg);
	fd = ks_vm_ram_fd(f->vm, 0);
	if (!(f->mem = ks_mem_new_mapped(ks_vm_ram(f->vm), &fd, &err)))
		fail_msg("mem: %s", err.msg);
	if (!mo) {
		ks_monitor_opts_init(&def);
		mo = &def;
	}
	mo->on_event = on_event;
	mo->event_data = f;
	mo->on_dump = on_dump;
	mo->dump_data = f;
	mo->on_warn = on_warn;
	mo->warn_data = f;
	if (!(f->m = ks_monitor_new(f->loop, f->vm, f->g, f->mem, f->syms, f->rules, mo, &err)))
		fail_msg("monitor: %s", err.msg);
	if (ks_monitor_resume(f->m, &err) < 0)
		fail_msg("resume: %s", err.msg);
}

/* Runs the loop until the VM ends or the monitor holds it paused. */
static void run(struct fixture *f, int64_t timeout_ns)
{
	uint64_t deadline = ks_loop_now_ns() + (uint64_t)timeout_ns;

	while (ks_vm_state(f->vm) != KS_VM_ENDED && !ks_monitor_paused(f->m) &&
	       ks_loop_now_ns() < deadline)
		ks_loop_run_once(f->loop, SEC / 10);
	if (ks_vm_state(f->vm) != KS_VM_ENDED && !ks_monitor_paused(f->m))
		fail_msg("the VM neither ended nor paused in time");
}

static void assert_passed(struct fixture *f)
{
	const struct ks_vm_outcome *o = ks_vm_outcome(f->vm);

	assert_int_equal(ks_vm_state(f->vm), KS_VM_ENDED);
	if (o->end != KS_VM_END_EXIT_CODE || o->exit_code != KT_EXIT_PASS)
		fail_msg("the run did not pass: %s", o->detail);
}

static uint64_t sym(struct fixture *f, const char *name)
{
	const struct ks_sym *s = ks_sym_find(f->syms, name);

	if (!s)
		fail_msg("no symbol %s", name);
	return s->addr;
}

/* Sequence numbers grow, timestamps do not go back much (sources differ in latency). */
static void assert_ordered(const struct fixture *f)
{
	for (size_t i = 1; i < f->nev; i++)
		assert_true(f->ev[i].seq > f->ev[i - 1].seq);
}

/* ---- magic messages ---- */

static void magic_messages_in_order(void **state)
{
	struct fixture *f = *state;
	size_t user = 0, first = 0, end = 0;

	rule(f, "magic");
	boot(f, "example_magic.many_messages", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_passed(f);
	assert_ordered(f);
	/* The first message comes from the first instructions of boot, in 32-bit code. */
	assert_true(f->nev > 1000);
	assert_int_equal(f->ev[0].kind, KS_EV_MAGIC);
	assert_int_equal(f->ev[0].magic.id, KT_MAGIC_BOOT);
	assert_int_equal(f->ev[0].vcpu, 0);
	assert_int_equal(strncmp(f->ev[0].sym, "pvh_start32+", 12), 0);
	for (size_t i = 0; i < f->nev; i++) {
		const struct ks_event *e = &f->ev[i];

		assert_int_equal(e->kind, KS_EV_MAGIC);
		if (e->magic.id == KT_MAGIC_CASE_START)
			first = i;
		if (e->magic.id == KT_MAGIC_CASE_END)
			end = i;
		if (e->magic.id != KT_MAGIC_USER + 1)
			continue;
		/* In order, each once, from the vCPU that runs the tests. */
		assert_int_equal(e->magic.a0, user);
		assert_int_equal(e->vcpu, 0);
		assert_int_equal(strncmp(e->sym, "many_messages+", 14), 0);
		user++;
	}
	assert_int_equal(user, 1000);
	assert_true(first > 0 && end > first);
	assert_int_equal(f->ev[end].magic.a1, KT_ST_PASS);
	assert_int_equal(f->warnings, 0);
}

/* The monitor of a running VM goes; the VM goes on without stopping at its breakpoints, with
 * the gdb client still attached. */
static void freed_while_running_leaves_no_breakpoint(void **state)
{
	struct fixture *f = *state;

	rule(f, "magic:0x101");
	boot(f, "example_magic.many_messages", "2", NULL, NULL);
	for (uint64_t t = ks_loop_now_ns() + 30 * SEC; f->nev < 100 && ks_loop_now_ns() < t;)
		ks_loop_run_once(f->loop, SEC / 10);
	assert_true(f->nev >= 100 && f->nev < 1000);
	assert_int_equal(ks_gdb_state(f->g), KS_GDB_RUNNING);
	ks_monitor_free(f->m);
	f->m = NULL;
	assert_int_equal(ks_vm_wait(f->vm, 30 * SEC), 0);
	assert_passed(f);
}

/* ---- exceptions ---- */

static const struct ks_event *find(const struct fixture *f, enum ks_event_kind kind,
				   unsigned vector)
{
	for (size_t i = 0; i < f->nev; i++)
		if (f->ev[i].kind == kind && f->ev[i].irq.vector == vector)
			return &f->ev[i];
	return NULL;
}

static void page_fault_with_cr2_and_symbol(void **state)
{
	struct fixture *f = *state;
	const struct ks_event *pf, *crash = NULL;

	rule(f, "exception:#PF");
	rule(f, "test:crash");
	boot(f, "example_crash.page_fault", "2", NULL, NULL);
	/* The kernel panics; with pvpanic QEMU then holds the VM paused. */
	run(f, 60 * SEC);
	assert_non_null(pf = find(f, KS_EV_EXCEPTION, VEC_PF));
	assert_int_equal(pf->irq.cr2, 0xdead0000);
	assert_true(pf->irq.has_error);
	assert_true(pf->irq.error_code & 2);      /* a write */
	assert_false(pf->irq.from_user);
	assert_int_equal(strncmp(pf->irq.rip_sym, "page_fault+", 11), 0);
	assert_int_equal(pf->vcpu, 0);
	/* The site is the #PF entry of the IDT: the demo's stubs are 16 bytes apart. */
	assert_true(pf->pc == sym(f, "isr_stubs") + 16 * VEC_PF);
	for (size_t i = 0; i < f->nev; i++)
		if (f->ev[i].kind == KS_EV_TEST)
			crash = &f->ev[i];
	assert_non_null(crash);
	assert_string_equal(ks_event_test_status_name(crash), "crash");
	assert_string_equal(crash->test.name, "page_fault");
	/* The monitor saw the panic's pause, and QEMU cannot run the VM again. */
	assert_true(ks_monitor_paused(f->m));
	assert_true(ks_monitor_resume(f->m, NULL) < 0);
}

static void pause_on_page_fault_then_resume(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_x86_regs r;
	unsigned pauses = 0;
	char seen[512] = "";

	assert_int_equal(ks_evrules_add_pause_on(f->rules, "exception:14", &err), 0);
	boot(f, "irq.page_fault_recovered", "2", NULL, NULL);
	for (;;) {
		run(f, 60 * SEC);
		if (!ks_monitor_paused(f->m))
			break;
		const struct ks_event *ev = &f->ev[f->nev - 1];

		/* Held at the handler's entry, with the fault's state readable. */
		assert_int_equal(ev->kind, KS_EV_EXCEPTION);
		assert_int_equal(ks_gdb_state(f->g), KS_GDB_STOPPED);
		if (ks_gdb_read_regs(f->g, (unsigned)ev->vcpu, &r, &err) < 0)
			fail_msg("regs: %s", err.msg);
		assert_true(r.rip == sym(f, "isr_stubs") + 16 * VEC_PF);
		assert_true(r.rip == ev->pc);
		assert_true(r.cr2 == ev->irq.cr2);
		assert_true(r.cr2 >= 0xffffc00000000000ull);
		/* Paused means paused: the loop runs, the vCPUs do not. */
		ks_loop_run_once(f->loop, SEC / 20);
		assert_true(ks_monitor_paused(f->m));
		pauses++;
		/* Which fault each pause was, should there be one too many. */
		snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen),
			 " [vcpu %d, cr2 %#llx, error %#llx, rip %s, event %zu]", ev->vcpu,
			 (unsigned long long)r.cr2, (unsigned long long)ev->irq.error_code,
			 ev->irq.rip_sym, f->nev);
		if (ks_monitor_resume(f->m, &err) < 0)
			fail_msg("resume: %s", err.msg);
		assert_false(ks_monitor_paused(f->m));
	}
	/* The case reads and then writes an unmapped page. */
	if (pauses != 2)
		fail_msg("%u pauses, not 2:%s", pauses, seen);
	assert_passed(f);
}

static void timer_interrupts_per_vcpu(void **state)
{
	struct fixture *f = *state;
	unsigned timer = 0, call[3] = { 0 };

	rule(f, "interrupt:0x40,0xf0");
	boot(f, "smp", "3", NULL, NULL);
	run(f, 120 * SEC);
	assert_passed(f);
	assert_ordered(f);
	for (size_t i = 0; i < f->nev; i++) {
		const struct ks_event *e = &f->ev[i];

		assert_int_equal(e->kind, KS_EV_INTERRUPT);
		assert_false(e->irq.has_error);
		assert_true(e->vcpu >= 0 && e->vcpu < 3);
		assert_true(e->irq.rip != 0);
		if (e->irq.vector == VEC_TIMER) {
			/* The demo kernel runs its timer on the boot CPU only. */
			assert_int_equal(e->vcpu, 0);
			timer++;
		} else {
			assert_int_equal(e->irq.vector, VEC_CALL);
			call[e->vcpu]++;
		}
	}
	print_message("# %u timer ticks, work IPIs per vCPU: %u %u %u\n", timer, call[0],
		      call[1], call[2]);
	assert_true(timer > 0);
	/* Every AP is handed work by IPI. */
	assert_true(call[1] > 0 && call[2] > 0);
}

/* ---- system calls ---- */

static void syscalls_and_sysrets(void **state)
{
	struct fixture *f = *state;
	static const struct { uint64_t nr, a0, a1, ret; } want[] = {
		{ SYS_WRITE, 0, 18, 18 },     /* "hello from ring 3\n" */
		{ SYS_GETCPU, 0, 0, 0 },
		{ SYS_ADD, 40, 2, 42 },
	};
	size_t w = 0, i;

	rule(f, "syscall");
	rule(f, "sysret");
	boot(f, "syscall.hello_from_ring3", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_passed(f);
	/* Skip the first entry to ring 3, a sysret of no syscall. */
	for (i = 0; i < f->nev && f->ev[i].kind != KS_EV_SYSCALL; i++) {
		assert_int_equal(f->ev[i].kind, KS_EV_SYSRET);
		assert_false(f->ev[i].sys.has_nr);
	}
	for (; w < 3; w++, i += 2) {
		const struct ks_event *call = &f->ev[i], *ret = &f->ev[i + 1];

		assert_true(i + 1 < f->nev);
		assert_int_equal(call->kind, KS_EV_SYSCALL);
		assert_int_equal(call->sys.nr, want[w].nr);
		/* getcpu takes no arguments: its registers hold what write left. */
		if (want[w].nr == SYS_ADD)
			assert_int_equal(call->sys.args[0], want[w].a0);
		if (want[w].nr != SYS_GETCPU)
			assert_int_equal(call->sys.args[1], want[w].a1);
		assert_true(call->sys.user_rip >= 0x400000 && call->sys.user_rip < 0x401000);
		assert_int_equal(ret->kind, KS_EV_SYSRET);
		assert_true(ret->sys.has_nr);
		assert_int_equal(ret->sys.nr, want[w].nr);
		assert_int_equal(ret->sys.ret, want[w].ret);
		assert_int_equal(ret->sys.user_rip, call->sys.user_rip);
		assert_int_equal(ret->vcpu, call->vcpu);
		assert_string_equal(call->sym, "syscall_entry");
	}
	/* exit(42) does not return. */
	assert_int_equal(f->ev[i].kind, KS_EV_SYSCALL);
	assert_int_equal(f->ev[i].sys.nr, SYS_EXIT);
	assert_int_equal(f->ev[i].sys.args[0], 42);
}

/* ---- crashes ---- */

static void triple_fault_dump_names_the_test(void **state)
{
	struct fixture *f = *state;
	struct ks_vm_opts vo;
	const char *bt;

	ks_vm_opts_init(&vo);
	vo.pause_on_shutdown = true;
	rule(f, "vm:shutdown=dump");
	rule(f, "test");
	boot(f, "example_crash.triple_fault", "2", &vo, NULL);
	run(f, 60 * SEC);
	assert_int_equal(ks_vm_state(f->vm), KS_VM_PAUSED);
	assert_true(ks_monitor_paused(f->m));
	assert_int_equal(f->ndumps, 1);
	print_message("# %.*s\n", (int)strcspn(f->dump, "\n"), f->dump);
	assert_non_null(strstr(f->dump, "vm         shutdown guest-reset"));
	assert_non_null(strstr(f->dump, "registers from gdb"));
	/* vCPU 0 ran the case: its backtrace goes from the test function to the runner. */
	assert_non_null(bt = strstr(f->dump, "cpu0 backtrace:\n  #0 0x"));
	assert_non_null(strstr(bt, "<triple_fault+"));
	assert_non_null(strstr(bt, "<kt_run+"));
	assert_non_null(strstr(f->dump, "cpu1 backtrace:"));
	/* The test's end came without a result: a crash. */
	assert_int_equal(f->ev[f->nev - 1].kind, KS_EV_TEST);
	assert_string_equal(ks_event_test_status_name(&f->ev[f->nev - 1]), "crash");
	/* Cleared away by the host, the VM still ended in a triple fault. */
	ks_vm_destroy(f->vm);
	assert_int_equal(ks_vm_outcome(f->vm)->end, KS_VM_END_TRIPLE_FAULT);
	assert_true(ks_monitor_ended(f->m));
}

/* ---- watchpoints ---- */

static void watchpoint_on_kt_state_seq(void **state)
{
	struct fixture *f = *state;
	uint64_t seq = sym(f, "kt_state") + offsetof(struct kt_abi_state, seq);
	size_t n = 0;

	rule(f, "watch:kt_state+0x10");
	boot(f, "example_magic.many_messages", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_passed(f);
	for (size_t i = 0; i < f->nev; i++) {
		const struct ks_event *e = &f->ev[i];

		assert_int_equal(e->kind, KS_EV_WATCHPOINT);
		assert_int_equal(e->bp.addr, seq);
		assert_string_equal(e->bp.addr_sym, "kt_state+0x10");
		assert_string_equal(e->bp.what, "write");
		/* The kt_ runner's code made the write. */
		assert_true(!strncmp(e->sym, "kt_", 3) || !strncmp(e->sym, "kt__", 4));
		n++;
	}
	/* Each change of the state is a pair of writes (odd, then even again). */
	assert_true(n >= 4 && n % 2 == 0);
}

/* ---- tests ---- */

static void test_events_with_names(void **state)
{
	struct fixture *f = *state;
	static const struct { const char *what; } want[] = {
		{ "start string.strlen_strnlen" }, { "end string.strlen_strnlen pass" },
		{ "start example_fail.expect_fail" }, { "end example_fail.expect_fail fail" },
		{ "start example_fail.assert_fail" }, { "end example_fail.assert_fail fail" },
	};
	char got[160];

	rule(f, "test:*:example_fail.*");
	rule(f, "test:*:string.strlen*");
	boot(f, "example_fail,string.strlen_strnlen", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_int_equal(ks_vm_outcome(f->vm)->exit_code, KT_EXIT_FAIL);
	assert_int_equal(f->nev, sizeof(want) / sizeof(*want));
	for (size_t i = 0; i < f->nev; i++) {
		const struct ks_event *e = &f->ev[i];

		snprintf(got, sizeof(got), "%s %s.%s%s%s",
			 e->test.phase == KS_EV_TEST_START ? "start" : "end", e->test.suite,
			 e->test.name, e->test.phase == KS_EV_TEST_END ? " " : "",
			 e->test.phase == KS_EV_TEST_END ? ks_event_test_status_name(e) : "");
		assert_string_equal(got, want[i].what);
		assert_int_equal(e->vcpu, 0);
	}
	assert_int_equal(f->ev[2].test.case_index, 0);
	assert_int_equal(f->ev[4].test.case_index, 1);
}

/* ---- serial lines and lifecycle ---- */

/* A line pauses the VM (QMP stop while it runs); the host answers through guest memory. */
static void serial_line_pauses_for_the_host(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	size_t lines = 0;

	rule(f, "serial:0:/# mailbox: waiting/=pause");
	rule(f, "serial:/^ *ok /");
	boot(f, "example_host.mailbox", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_true(ks_monitor_paused(f->m));
	/* gdb's stop reply comes before QMP's STOP event. */
	for (uint64_t t = ks_loop_now_ns() + 10 * SEC; ks_vm_state(f->vm) != KS_VM_PAUSED &&
	     ks_loop_now_ns() < t;)
		ks_loop_run_once(f->loop, SEC / 10);
	assert_int_equal(ks_vm_state(f->vm), KS_VM_PAUSED);
	assert_string_equal(f->ev[f->nev - 1].serial.text, "    # mailbox: waiting");
	assert_int_equal(f->ev[f->nev - 1].vcpu, -1);
	if (ks_mem_write_u64(f->mem, sym(f, "demo_mailbox") - 0xffffffff80000000ull,
			     0x6b73636f7065ull) < 0)
		fail_msg("cannot write the mailbox");
	if (ks_monitor_resume(f->m, &err) < 0)
		fail_msg("resume: %s", err.msg);
	run(f, 60 * SEC);
	assert_passed(f);
	for (size_t i = 0; i < f->nev; i++) {
		assert_int_equal(f->ev[i].kind, KS_EV_SERIAL);
		assert_int_equal(f->ev[i].serial.port, 0);
		lines += strstr(f->ev[i].serial.text, "ok ") != NULL;
	}
	/* The case, then its suite. */
	assert_int_equal(lines, 2);
}

/* Stops and resumes of the monitor's own making are no vm events; the host's are. */
static void vm_events_are_not_the_monitors_own(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	size_t stops = 0, resumes = 0, magic = 0;

	rule(f, "vm");
	rule(f, "magic:0x12");
	boot(f, "example_crash.hang", "2", NULL, NULL);
	/* Until the hanging case has started (its end will never come). */
	for (uint64_t t = ks_loop_now_ns() + 30 * SEC; f->nev == 0 && ks_loop_now_ns() < t;)
		ks_loop_run_once(f->loop, SEC / 10);
	assert_int_equal(f->nev, 1);
	for (uint64_t t = ks_loop_now_ns() + SEC / 5; ks_loop_now_ns() < t;)
		ks_loop_run_once(f->loop, SEC / 20);
	/* The host pauses it through QMP, behind the monitor's back. */
	assert_int_equal(ks_vm_pause(f->vm, &err), 0);
	run(f, 10 * SEC);
	assert_true(ks_monitor_paused(f->m));
	assert_int_equal(ks_vm_resume(f->vm, &err), 0);
	for (uint64_t t = ks_loop_now_ns() + 10 * SEC; ks_monitor_paused(f->m) &&
	     ks_loop_now_ns() < t;)
		ks_loop_run_once(f->loop, SEC / 10);
	/* And the monitor pauses and resumes it itself. */
	assert_int_equal(ks_monitor_pause(f->m, &err), 0);
	run(f, 10 * SEC);
	assert_int_equal(ks_monitor_resume(f->m, &err), 0);
	for (uint64_t t = ks_loop_now_ns() + SEC / 5; ks_loop_now_ns() < t;)
		ks_loop_run_once(f->loop, SEC / 20);
	for (size_t i = 0; i < f->nev; i++) {
		const struct ks_event *e = &f->ev[i];

		magic += e->kind == KS_EV_MAGIC;
		stops += e->kind == KS_EV_VM && !strcmp(e->vm.what, "stop");
		resumes += e->kind == KS_EV_VM && !strcmp(e->vm.what, "resume");
	}
	/* The case's start was a breakpoint's stop and resume. */
	assert_int_equal(magic, 1);
	assert_int_equal(stops, 1);
	assert_int_equal(resumes, 1);
	assert_false(ks_monitor_paused(f->m));
}

/* ---- the -d int trace ---- */

static void passive_trace_without_breakpoints(void **state)
{
	struct fixture *f = *state;
	static const unsigned vecs[] = { 3, 6, 0, 13, 14 };   /* #BP #UD #DE #GP #PF */
	struct ks_monitor_opts mo;
	struct ks_monitor_stats st;
	struct ks_vm_opts vo;

	ks_vm_opts_init(&vo);
	vo.log_items = "int";
	ks_monitor_opts_init(&mo);
	mo.passive = true;
	rule(f, "exception");
	boot(f, "irq", "2", &vo, &mo);
	ks_monitor_stats(f->m, &st);
	assert_int_equal(st.breakpoints, 0);
	run(f, 60 * SEC);
	assert_passed(f);
	/* What the follower had not read yet came when the VM ended. */
	for (size_t i = 0; i < sizeof(vecs) / sizeof(*vecs); i++) {
		const struct ks_event *e = find(f, KS_EV_EXCEPTION, vecs[i]);

		if (!e)
			fail_msg("no exception %u in the trace", vecs[i]);
		assert_int_equal(e->vcpu, -1);
		assert_true(e->irq.rip >= sym(f, "irqt_int3") - 0x1000);
	}
	assert_ordered(f);
	ks_monitor_stats(f->m, &st);
	assert_int_equal(st.hits, 0);
}

/* ---- getting past breakpoints by emulating the instruction ---- */

/* Ends the VM of a run and forgets its events; the rules stay for another. */
static void end_run(struct fixture *f)
{
	ks_monitor_free(f->m);
	f->m = NULL;
	ks_gdb_free(f->g);
	f->g = NULL;
	ks_vm_free(f->vm);
	f->vm = NULL;
	ks_mem_free(f->mem);
	f->mem = NULL;
	f->nev = 0;
}

/* The default suites with a breakpoint on every handler entry and the syscall entry: */
static void suites_pass_past_every_handler_entry(void **state)
{
	struct fixture *f = *state;
	static const unsigned vecs[] = { 0, 3, 6, 13, 14 };   /* #DE #BP #UD #GP #PF */
	unsigned exc[2][32] = { { 0 } }, irq[2] = { 0 };
	struct ks_monitor_opts mo;
	struct ks_monitor_stats st;

	rule(f, "exception");
	rule(f, "interrupt");
	rule(f, "syscall");
	/* Emulated, then stepped as before: the same exceptions, tests passing both times. */
	for (int pass = 0; pass < 2; pass++) {
		ks_monitor_opts_init(&mo);
		mo.no_emulation = pass == 1;
		boot(f, "", "2", NULL, &mo);
		run(f, 120 * SEC);
		assert_passed(f);
		ks_monitor_stats(f->m, &st);
		print_message("# %s: %llu stops, %llu passed by emulation, %llu by a step\n",
			      pass ? "stepped" : "emulated", (unsigned long long)st.hits,
			      (unsigned long long)st.emulated, (unsigned long long)st.stepped);
		for (size_t i = 0; i < f->nev; i++) {
			const struct ks_event *e = &f->ev[i];

			if (e->kind == KS_EV_EXCEPTION)
				exc[pass][e->irq.vector]++;
			irq[pass] += e->kind == KS_EV_INTERRUPT;
		}
		if (pass == 0) {
			/* Only the lidt sites and the odd stack page not yet dirty are stepped. */
			assert_true(st.emulated > 0 && st.stepped * 10 < st.emulated);
		} else {
			assert_int_equal(st.emulated, 0);
		}
		assert_int_equal(f->warnings, 0);
		end_run(f);
	}
	for (size_t i = 0; i < sizeof(vecs) / sizeof(*vecs); i++)
		assert_true(exc[0][vecs[i]] > 0);
	assert_memory_equal(exc[0], exc[1], sizeof(exc[0]));
	assert_true(irq[0] > 0 && irq[1] > 0);
}

/* At the #BP entry, and at the two instructions after it: push $0 and push $3 done by the
 * host must leave what the CPU would. */
static void see_bp_entry(struct fixture *f, const struct ks_event *ev)
{
	struct ks_error err = { 0 };
	struct ks_x86_regs *r = &f->seen[f->nseen];

	if (f->nseen == 3 || (ev->kind != KS_EV_EXCEPTION && ev->kind != KS_EV_BREAKPOINT))
		return;
	if (ks_gdb_read_regs(f->g, (unsigned)ev->vcpu, r, &err) < 0)
		fail_msg("regs: %s", err.msg);
	if (ks_gdb_read_virt(f->g, (unsigned)ev->vcpu, r->rsp, f->stack[f->nseen], 16, &err) < 0)
		fail_msg("stack: %s", err.msg);
	f->nseen++;
}

static void pushes_at_a_handler_entry(void **state)
{
	struct fixture *f = *state;
	uint64_t entry = sym(f, "isr_stubs") + 16 * 3;
	struct ks_monitor_stats st;
	char spec[64];

	rule(f, "exception:#BP");
	snprintf(spec, sizeof(spec), "break:0x%llx", (unsigned long long)entry + 2);
	rule(f, spec);
	snprintf(spec, sizeof(spec), "break:0x%llx", (unsigned long long)entry + 4);
	rule(f, spec);
	f->hook = see_bp_entry;
	boot(f, "irq.int3_recovered", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_passed(f);
	assert_int_equal(f->nseen, 3);
	assert_true(f->seen[0].rip == entry && f->seen[1].rip == entry + 2 &&
		    f->seen[2].rip == entry + 4);
	assert_true(f->seen[1].rsp == f->seen[0].rsp - 8 && f->seen[2].rsp == f->seen[0].rsp - 16);
	assert_true(f->stack[1][0] == 0);                          /* the error code */
	assert_true(f->stack[2][0] == 3 && f->stack[2][1] == 0);   /* the vector */
	/* The other registers are as they were; the jmp after them is stepped. */
	f->seen[1].rsp = f->seen[2].rsp = f->seen[0].rsp;
	f->seen[1].rip = f->seen[2].rip = f->seen[0].rip;
	assert_memory_equal(&f->seen[1], &f->seen[0], sizeof(f->seen[0]));
	assert_memory_equal(&f->seen[2], &f->seen[0], sizeof(f->seen[0]));
	ks_monitor_stats(f->m, &st);
	assert_int_equal(st.emulated, 2);
}

/* The syscall entry starts with swapgs: GS.base and KERNEL_GS_BASE swapped by the host. */
static void see_syscall_entry(struct fixture *f, const struct ks_event *ev)
{
	struct ks_error err = { 0 };

	if (f->nseen < 2 && ks_gdb_read_regs(f->g, (unsigned)ev->vcpu, &f->seen[f->nseen++],
					     &err) < 0)
		fail_msg("regs: %s", err.msg);
}

static void swapgs_at_the_syscall_entry(void **state)
{
	struct fixture *f = *state;
	struct ks_x86_regs *a = &f->seen[0], *b = &f->seen[1];
	char spec[64];

	rule(f, "syscall:1");
	snprintf(spec, sizeof(spec), "break:0x%llx",
		 (unsigned long long)sym(f, "syscall_entry") + 3);
	rule(f, spec);
	f->hook = see_syscall_entry;
	boot(f, "syscall.hello_from_ring3", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_passed(f);
	assert_int_equal(f->nseen, 2);
	assert_true(a->gs_base == 0 && a->k_gs_base != 0);
	assert_true(b->gs_base == a->k_gs_base && b->k_gs_base == a->gs_base);
	assert_true(b->rip == a->rip + 3 && b->rsp == a->rsp && b->rflags == a->rflags);
}

/* Breakpoints alone, on a function's push %rbp and mov %rsp,%rbp: no IDT is read, the
 * guest's debug registers are, and both are emulated. */
static void function_start_emulated(void **state)
{
	struct fixture *f = *state;
	struct ks_monitor_stats st;

	rule(f, "break:trap_dispatch");
	rule(f, "break:trap_dispatch+1");
	boot(f, "irq", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_passed(f);
	ks_monitor_stats(f->m, &st);
	print_message("# %llu stops, %llu emulated\n", (unsigned long long)st.hits,
		      (unsigned long long)st.emulated);
	assert_true(st.hits > 20 && f->nev == st.hits);
	/* A push onto a stack page not written yet would be stepped: the CPU sets its dirty
	 * bit. The demo's stacks are in use long before. */
	assert_int_equal(st.emulated + st.stepped, st.hits);
	assert_true(st.stepped <= 1);
}

/* A breakpoint on the add of a loop: the flags the host computes steer the jne after it. */
static void add_in_a_loop(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_sites *s = ks_sites_scan(vm_demo_kernel(), f->syms, NULL, &err);
	const struct ks_site *v;
	struct ks_monitor_stats st;
	ks_gva_t add = 0;
	char spec[64];
	size_t n;

	if (!s)
		fail_msg("%s", err.msg);
	v = ks_sites_list(s, KS_SITE_MAGIC, &n);
	for (size_t i = 0; i < n; i++)
		if (v[i].sym && !strcmp(v[i].sym, "many_messages"))
			add = v[i].addr + 3;   /* xchg %bx,%bx; add $1,%rdi; cmp; jne */
	ks_sites_free(s);
	snprintf(spec, sizeof(spec), "break:0x%llx", (unsigned long long)add);
	rule(f, spec);
	boot(f, "example_magic.many_messages", "2", NULL, NULL);
	run(f, 60 * SEC);
	assert_passed(f);
	assert_int_equal(f->nev, 1000);
	ks_monitor_stats(f->m, &st);
	assert_int_equal(st.emulated, 1000);
	assert_int_equal(st.stepped, 0);
}

/* ---- where the IDT is loaded ---- */

static void lidt_sites_of_the_demo_kernel(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_sites *s = ks_sites_scan(vm_demo_kernel(), f->syms, NULL, &err);
	bool trap = false, triple = false;
	const struct ks_site *v;
	size_t n;

	if (!s)
		fail_msg("%s", err.msg);
	assert_string_equal(ks_site_kind_name(KS_SITE_LIDT), "lidt");
	v = ks_sites_list(s, KS_SITE_LIDT, &n);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(v[i].sym);
		assert_true(v[i].size >= 3);
		trap |= !strcmp(v[i].sym, "trap_load_idt");
		triple |= !strcmp(v[i].sym, "triple_fault");
	}
	assert_true(trap && triple);
	ks_sites_free(s);
}

/* ---- what cannot work ---- */

static void kvm_refuses_too_many_breakpoints(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_vm_opts vo;
	struct ks_vmspec *s;

	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		print_message("# no /dev/kvm here: nothing to refuse\n");
		return;
	}
	s = ks_vmspec_new(NULL);
	assert_int_equal(ks_vmspec_set(s, "kernel", vm_demo_kernel(), &err), 0);
	assert_int_equal(ks_vmspec_set(s, "accel", "kvm", &err), 0);
	ks_vm_opts_init(&vo);
	vo.rundir_base = f->base;
	vo.paused = true;
	f->vm = ks_vm_start(f->loop, s, &vo, &err);
	ks_vmspec_free(s);
	if (!f->vm)
		fail_msg("start: %s", err.msg);
	if (!(f->g = ks_gdb_connect(f->loop, ks_vm_gdb_socket(f->vm), 10 * SEC, &err)))
		fail_msg("gdb: %s", err.msg);
	rule(f, "magic");
	rule(f, "break:kmain");
	assert_null(ks_monitor_new(f->loop, f->vm, f->g, NULL, f->syms, f->rules, NULL, &err));
	print_message("# %s\n", err.msg);
	assert_string_equal(err.msg, "events: 11 breakpoints needed (magic: 10, break:kmain: 1) "
			    "but KVM allows 4 hardware breakpoints; run with --accel tcg");
	ks_evrules_free(f->rules);
	f->rules = ks_evrules_new(NULL);
	rule(f, "exception:14");
	struct ks_monitor_opts mo;
	ks_monitor_opts_init(&mo);
	mo.passive = true;
	assert_null(ks_monitor_new(f->loop, f->vm, f->g, NULL, f->syms, f->rules, &mo, &err));
	assert_non_null(strstr(err.msg, "--accel tcg"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(magic_messages_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(freed_while_running_leaves_no_breakpoint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(page_fault_with_cr2_and_symbol, setup, teardown),
		cmocka_unit_test_setup_teardown(pause_on_page_fault_then_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(timer_interrupts_per_vcpu, setup, teardown),
		cmocka_unit_test_setup_teardown(syscalls_and_sysrets, setup, teardown),
		cmocka_unit_test_setup_teardown(triple_fault_dump_names_the_test, setup, teardown),
		cmocka_unit_test_setup_teardown(watchpoint_on_kt_state_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_with_names, setup, teardown),
		cmocka_unit_test_setup_teardown(serial_line_pauses_for_the_host, setup, teardown),
		cmocka_unit_test_setup_teardown(vm_events_are_not_the_monitors_own, setup,
						teardown),
		cmocka_unit_test_setup_teardown(passive_trace_without_breakpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(suites_pass_past_every_handler_entry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(pushes_at_a_handler_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(swapgs_at_the_syscall_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(function_start_emulated, setup, teardown),
		cmocka_unit_test_setup_teardown(add_in_a_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(lidt_sites_of_the_demo_kernel, setup, teardown),
		cmocka_unit_test_setup_teardown(kvm_refuses_too_many_breakpoints, setup, teardown),
	};

	return cmocka_run_group_tests_name("monitor", tests, NULL, NULL);
}
