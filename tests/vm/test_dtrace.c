/* test_dtrace.c: the demo kernel's interrupts and exceptions in QEMU's -d int trace, live and afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/dtrace.h>
#include <kscope/kt_abi.h>
#include <kscope/loop.h>
#include <kscope/spawn.h>
#include <kscope/sym.h>

#include "vmboot.h"

#define SEC 1000000000ll
/* The demo kernel's local APIC timer vector (kernel/arch/x86_64/include/arch/trap.h). */
#define VEC_TIMER 0x40

static char dir[] = "/tmp/kscope-vm-dtrace-XXXXXX";
static struct ks_symtab *syms;

/* Every event, in order. */
struct events {
	struct ks_event *v;
	size_t n, cap;
};

static void collect(const struct ks_event *ev, void *data)
{
	struct events *e = data;

	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 256;
		assert_non_null(e->v = realloc(e->v, e->cap * sizeof(*e->v)));
	}
	e->v[e->n++] = *ev;
}

static const char *qemu(void)
{
	const char *q = getenv("QEMU");

	return q && *q ? q : "qemu-system-x86_64";
}

/* Starts the demo kernel on two vCPUs with -d int,cpu_reset -D trace. */
static pid_t start(const char *trace, const char *append)
{
	char *argv[32] = {
		(char *)qemu(), "-M", "microvm", "-accel", "tcg", "-smp", "2", "-m", "128M",
		"-nodefaults", "-nographic", "-no-reboot", "-serial", "null",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-kernel", (char *)vm_demo_kernel(), "-d", "int,cpu_reset", "-D", (char *)trace,
	};
	size_t n = 22;
	struct ks_error err = { 0 };

	if (append) {
		argv[n++] = "-append";
		argv[n++] = (char *)append;
	}
	argv[n] = NULL;
	pid_t pid = ks_spawn(argv, -1, NULL, 0, &err);
	if (pid < 0)
		fail_msg("%s", err.msg);
	return pid;
}

/* Waits for QEMU; returns its exit status. */
static int finish(pid_t pid)
{
	int status;

	if (ks_wait_pid(pid, 120 * SEC, &status) < 0) {
		kill(pid, SIGKILL);
		ks_wait_pid(pid, -1, &status);
		fail_msg("QEMU did not exit in time");
	}
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The trace file parsed whole, after QEMU has exited. */
static void parse_file(const char *path, struct events *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct ks_dtrace *t = ks_dtrace_new();
	char buf[65536];
	ssize_t n;

	assert_true(fd >= 0);
	ks_dtrace_set_symbols(t, syms);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_true(ks_dtrace_feed(t, buf, (size_t)n, collect, e) >= 0);
	ks_dtrace_finish(t, collect, e);
	close(fd);
	ks_dtrace_free(t);
}

static const struct ks_event *find(const struct events *e, enum ks_event_kind kind,
				   unsigned vector, size_t *count)
{
	const struct ks_event *first = NULL;

	*count = 0;
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].kind == kind && (kind == KS_EV_VM || e->v[i].irq.vector == vector)) {
			first = first ? first : &e->v[i];
			++*count;
		}
	return first;
}

static ks_gva_t addr_of(const char *name)
{
	const struct ks_sym *y = ks_sym_find(syms, name);

	if (!y)
		fail_msg("the demo kernel has no symbol %s", name);
	return y->addr;
}

/* The default run, followed while QEMU writes it: the irq suite's exceptions, each at the
 * instruction that raised it, and timer interrupts. */
static void irq_suite_followed(void **state)
{
	char trace[300];
	struct events live = { 0 }, after = { 0 };
	struct ks_loop *l = ks_loop_new(NULL);
	struct ks_error err = { 0 };
	size_t n;
	int status, exit_code = -1;
	(void)state;

	snprintf(trace, sizeof(trace), "%s/default.log", dir);
	struct ks_dtrace_follow *f = ks_dtrace_follow(l, trace, collect, &live, &err);
	if (!f)
		fail_msg("%s", err.msg);
	ks_dtrace_set_symbols(ks_dtrace_follow_parser(f), syms);
	pid_t pid = start(trace, NULL);
	for (int64_t end = (int64_t)ks_loop_now_ns() + 120 * SEC;
	     exit_code < 0 && (int64_t)ks_loop_now_ns() < end;) {
		ks_loop_run_once(l, 5 * 1000000ll);
		if (ks_wait_pid(pid, 0, &status) == 0)
			exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 256;
	}
	if (exit_code < 0)
		exit_code = finish(pid);
	assert_int_equal(exit_code, KT_EXIT_STATUS(KT_EXIT_PASS));
	assert_true(ks_dtrace_follow_poll(f, 1) >= 0);
	print_message("# %zu events followed live\n", live.n);

	const struct ks_event *bp = find(&live, KS_EV_EXCEPTION, 3, &n);
	assert_non_null(bp);
	assert_true(bp->pc == addr_of("irqt_int3"));
	assert_string_equal(bp->sym, "irqt_int3");
	const struct ks_event *ud = find(&live, KS_EV_EXCEPTION, 6, &n);
	assert_non_null(ud);
	assert_true(ud->pc == addr_of("irqt_ud2"));
	const struct ks_event *de = find(&live, KS_EV_EXCEPTION, 0, &n);
	assert_non_null(de);
	assert_true(de->pc == addr_of("irqt_div0_at"));
	const struct ks_event *gp = find(&live, KS_EV_EXCEPTION, 13, &n);
	assert_non_null(gp);
	assert_true(gp->pc == addr_of("irqt_gp_at") && gp->irq.has_error);
	const struct ks_event *pf = find(&live, KS_EV_EXCEPTION, 14, &n);
	assert_non_null(pf);
	assert_true(pf->irq.has_error && pf->irq.cr2 != 0);
	const struct ks_event *tick = find(&live, KS_EV_INTERRUPT, VEC_TIMER, &n);
	assert_non_null(tick);
	assert_true(n >= 2);
	for (size_t i = 0; i < live.n; i++)
		assert_int_equal(live.v[i].vcpu, -1);

	/* the same events as the finished file read at once */
	parse_file(trace, &after);
	assert_int_equal(after.n, live.n);
	for (size_t i = 0; i < live.n; i++)
		assert_true(after.v[i].kind == live.v[i].kind && after.v[i].pc == live.v[i].pc &&
			    after.v[i].irq.vector == live.v[i].irq.vector);
	ks_dtrace_follow_free(f);
	ks_loop_free(l);
	free(live.v);
	free(after.v);
	unlink(trace);
}

/* example_crash.page_fault writes to 0xdead0000 from the function page_fault. */
static void page_fault_crash(void **state)
{
	char trace[300];
	struct events e = { 0 };
	size_t n;
	uint64_t off;
	(void)state;

	snprintf(trace, sizeof(trace), "%s/page_fault.log", dir);
	assert_int_equal(finish(start(trace, "kt.filter=example_crash.page_fault")),
			 KT_EXIT_STATUS(KT_EXIT_PANIC));
	parse_file(trace, &e);
	const struct ks_event *pf = find(&e, KS_EV_EXCEPTION, 14, &n);
	assert_non_null(pf);
	assert_int_equal(n, 1);
	assert_true(pf->irq.cr2 == 0xdead0000);
	assert_true(pf->irq.has_error && (pf->irq.error_code & 2));  /* a write */
	assert_false(pf->irq.from_user);
	const struct ks_sym *y = ks_sym_at(syms, pf->irq.rip, &off);
	assert_non_null(y);
	assert_string_equal(y->name, "page_fault");
	assert_non_null(strstr(pf->irq.rip_sym, "page_fault+0x"));
	free(e.v);
	unlink(trace);
}

/* example_crash.triple_fault: #UD with no usable IDT, #GP, #DF, then the triple fault. */
static void triple_fault_crash(void **state)
{
	char trace[300];
	struct events e = { 0 };
	size_t n;
	(void)state;

	snprintf(trace, sizeof(trace), "%s/triple_fault.log", dir);
	assert_int_equal(finish(start(trace, "kt.filter=example_crash.triple_fault")), 0);
	parse_file(trace, &e);
	const struct ks_event *df = find(&e, KS_EV_EXCEPTION, 8, &n);
	assert_non_null(df);
	const struct ks_event *tf = find(&e, KS_EV_VM, 0, &n);
	assert_non_null(tf);
	assert_int_equal(n, 1);
	assert_true(tf > df);
	assert_string_equal(tf->vm.detail, "triple fault");
	free(e.v);
	unlink(trace);
}

static int setup(void **state)
{
	struct ks_error err = { 0 };
	(void)state;

	if (!vm_have_qemu()) {
		fprintf(stderr, "QEMU not found\n");
		exit(77);
	}
	if (!mkdtemp(dir) || !(syms = ks_sym_load(vm_demo_kernel(), &err))) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ks_sym_free(syms);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(irq_suite_followed),
		cmocka_unit_test(page_fault_crash),
		cmocka_unit_test(triple_fault_crash),
	};

	return cmocka_run_group_tests_name("dtrace", tests, setup, teardown);
}
