/* test_vm_start.c: starting VMs on the loop (ks_vm_launch), against a fake QEMU that speaks QMP. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/chan.h>
#include <kscope/loop.h>
#include <kscope/qmp.h>
#include <kscope/vm.h>

#include "leftovers.h"

#define SEC 1000000000ll
#define MS 1000000ll
#define NVM 4

struct fixture {
	struct ks_loop *loop;
	char base[64];
	char kernel[PATH_MAX];  /* any x86-64 ELF passes the spec's check: this program */
	const char *qemu;
};

/* What a start's callback saw. */
struct started {
	int calls;
	int rc;
	char msg[256];
	uint64_t at_ns;
	bool free_it;           /* the callback frees the VM */
};

static int setup(void **state)
{
	static struct fixture f;

	f.qemu = getenv("KSCOPE_FAKE_QEMU");
	if (!f.qemu)
		fail_msg("KSCOPE_FAKE_QEMU is not set (meson test sets it)");
	f.loop = ks_loop_new(NULL);
	assert_non_null(f.loop);
	snprintf(f.base, sizeof(f.base), "/tmp/kscope-test-vmstart-XXXXXX");
	assert_non_null(mkdtemp(f.base));
	assert_non_null(realpath("/proc/self/exe", f.kernel));
	*state = &f;
	return 0;
}

/* Nothing may remain: no runtime directory, no /dev/shm file of ours. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	ks_loop_free(f->loop);
	expect_no_leftovers(f->base);
	return 0;
}

/* A spec for the fake QEMU, with its own options (NULL-terminated) passed last. */
static struct ks_vmspec *spec_of(struct fixture *f, ...)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	const char *arg;
	va_list ap;

	assert_int_equal(ks_vmspec_set(s, "kernel", f->kernel, &err), 0);
	assert_int_equal(ks_vmspec_set(s, "qemu", f->qemu, &err), 0);
	assert_int_equal(ks_vmspec_set(s, "accel", "tcg", &err), 0);
	va_start(ap, f);
	while ((arg = va_arg(ap, const char *)))
		if (ks_vmspec_set(s, "qemu-arg", arg, &err) < 0)
			fail_msg("%s", err.msg);
	va_end(ap);
	return s;
}

static void on_started(struct ks_vm *vm, int rc, const struct ks_error *err, void *data)
{
	struct started *st = data;

	st->calls++;
	st->rc = rc;
	st->at_ns = ks_loop_now_ns();
	snprintf(st->msg, sizeof(st->msg), "%s", rc < 0 && err ? err->msg : "");
	if (st->free_it)
		ks_vm_free(vm);
}

static struct ks_vm *launch(struct fixture *f, const char *name, struct ks_vmspec *s,
			    struct ks_vm_opts *o, struct started *st)
{
	struct ks_vm_opts def;
	struct ks_error err = { 0 };
	struct ks_vm *vm;

	if (!o) {
		ks_vm_opts_init(&def);
		o = &def;
	}
	o->name = name;
	o->rundir_base = f->base;
	vm = ks_vm_launch(f->loop, s, o, on_started, st, &err);
	if (!vm)
		fail_msg("launch %s: %s", name, err.msg);
	return vm;
}

/* Runs the loop until every start in st[0..n) has called back, or timeout_ns. */
static void run_until_started(struct fixture *f, struct started *st, int n, int64_t timeout_ns)
{
	uint64_t end = ks_loop_now_ns() + (uint64_t)timeout_ns;

	for (;;) {
		int done = 0;

		for (int i = 0; i < n; i++)
			done += st[i].calls > 0;
		if (done == n || ks_loop_now_ns() > end)
			return;
		ks_loop_run_once(f->loop, 50 * MS);
	}
}

/* Whether a process with that pid is gone (reaped: not even a zombie is left). */
static bool gone(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* VMs launched together start together: each start-up takes 500 ms, all four not 2 s. */
static void several_start_at_once(void **state)
{
	struct fixture *f = *state;
	struct ks_vmspec *s = spec_of(f, "-fake-up", "20", "-fake-init", "500", NULL);
	struct started st[NVM] = { 0 };
	struct ks_vm *vm[NVM];
	uint64_t t0 = ks_loop_now_ns();
	char name[16];

	for (int i = 0; i < NVM; i++) {
		snprintf(name, sizeof(name), "many%d", i);
		vm[i] = launch(f, name, s, NULL, &st[i]);
		assert_true(ks_vm_starting(vm[i]));
		assert_null(ks_vm_qmp(vm[i]));
	}
	/* Launching only spawns: not one start-up of 500 ms has been waited for yet. */
	assert_true(ks_loop_now_ns() - t0 < 400 * MS);
	run_until_started(f, st, NVM, 20 * SEC);
	for (int i = 0; i < NVM; i++) {
		struct ks_chan *con = ks_vm_chan(vm[i], 0);
		uint64_t from_first = 0;

		assert_int_equal(st[i].calls, 1);
		if (st[i].rc != 0)
			fail_msg("vm %d: %s", i, st[i].msg);
		assert_false(ks_vm_starting(vm[i]));
		assert_non_null(ks_vm_qmp(vm[i]));
		assert_int_equal(ks_vm_state(vm[i]), KS_VM_RUNNING);
		/* The console was connected before the vCPUs ran: the fake's first line is in. */
		assert_non_null(con);
		assert_int_equal(ks_chan_wait_line(con, "fake-qemu: running", 0, &from_first, 5 * SEC,
						   NULL), 0);
		print_message("# vm %d up after %.0f ms\n", i, (st[i].at_ns - t0) / 1e6);
	}
	/* One after the other they would have needed 4 x 500 ms. */
	assert_true(ks_loop_now_ns() - t0 < 3 * 500 * MS);
	for (int i = 0; i < NVM; i++) {
		struct ks_error err = { 0 };

		assert_int_equal(ks_vm_stop(vm[i], 5 * SEC, &err), 0);
		assert_int_equal(ks_vm_outcome(vm[i])->end, KS_VM_END_POWEROFF);
		ks_vm_free(vm[i]);
	}
	ks_vmspec_free(s);
}

/* A QEMU that gives up says why through the callback, and nothing of it is left. */
static void failure_comes_through_callback(void **state)
{
	struct fixture *f = *state;
	struct ks_vmspec *s = spec_of(f, "-fake-up", "30", "-fake-fail", "-bogus: invalid option",
				      NULL);
	struct started st = { 0 };
	struct ks_vm *vm = launch(f, "broken", s, NULL, &st);
	pid_t pid = ks_vm_pid(vm);

	assert_true(pid > 0);
	run_until_started(f, &st, 1, 10 * SEC);
	assert_int_equal(st.calls, 1);
	assert_true(st.rc < 0);
	print_message("# %s\n", st.msg);
	assert_non_null(strstr(st.msg, "QEMU failed to start"));
	assert_non_null(strstr(st.msg, "-bogus: invalid option"));
	assert_false(ks_vm_starting(vm));
	assert_int_equal(ks_vm_state(vm), KS_VM_ENDED);
	assert_int_equal(ks_vm_pid(vm), -1);
	assert_true(gone(pid));
	ks_vm_free(vm);
	/* The blocking start says the same. */
	struct ks_error err = { 0 };
	struct ks_vm_opts o;
	ks_vm_opts_init(&o);
	o.name = "broken2";
	o.rundir_base = f->base;
	assert_null(ks_vm_start(f->loop, s, &o, &err));
	assert_non_null(strstr(err.msg, "-bogus: invalid option"));
	ks_vmspec_free(s);
}

/* A QEMU that never gets to its main loop is killed at the start's deadline. */
static void timeout_kills_qemu(void **state)
{
	struct fixture *f = *state;
	struct ks_vmspec *s = spec_of(f, "-fake-hang", NULL);
	struct ks_vm_opts o;
	struct started st = { 0 };
	struct ks_vm *vm;
	pid_t pid;

	ks_vm_opts_init(&o);
	o.start_timeout_ns = 300 * MS;
	vm = launch(f, "hung", s, &o, &st);
	pid = ks_vm_pid(vm);
	run_until_started(f, &st, 1, 10 * SEC);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.rc, -ETIMEDOUT);
	print_message("# %s\n", st.msg);
	assert_non_null(strstr(st.msg, "QEMU did not answer on QMP in time"));
	assert_true(gone(pid));
	ks_vm_free(vm);
	ks_vmspec_free(s);
}

/* Destroyed or freed at any point of its start: no process, socket or RAM file is left,
 * and the callback never comes. */
static void destroyed_mid_start(void **state)
{
	struct fixture *f = *state;
	struct ks_vmspec *s = spec_of(f, "-fake-up", "50", "-fake-init", "400", NULL);
	/* Before QEMU listens; connected, the greeting in, its main loop not there yet. */
	const int64_t after_ms[] = { 0, 150 };
	char name[32], sock[PATH_MAX];

	for (size_t i = 0; i < 2 * sizeof(after_ms) / sizeof(after_ms[0]); i++) {
		struct started st = { 0 };
		bool destroy = i % 2;
		struct ks_vm *vm;
		pid_t pid;

		snprintf(name, sizeof(name), "cut%zu", i);
		vm = launch(f, name, s, NULL, &st);
		pid = ks_vm_pid(vm);
		snprintf(sock, sizeof(sock), "%s/qmp.sock", ks_vm_rundir(vm));
		for (uint64_t end = ks_loop_now_ns() + (uint64_t)after_ms[i / 2] * MS;
		     ks_loop_now_ns() < end;)
			ks_loop_run_once(f->loop, 5 * MS);
		assert_true(ks_vm_starting(vm));
		if (destroy) {
			ks_vm_destroy(vm);
			assert_false(ks_vm_starting(vm));
			assert_int_equal(ks_vm_state(vm), KS_VM_ENDED);
			assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_DESTROYED);
		}
		ks_vm_free(vm);
		assert_true(gone(pid));
		assert_int_not_equal(access(sock, F_OK), 0);
		/* The loop no longer knows the start: running it calls nothing back. */
		for (uint64_t end = ks_loop_now_ns() + 600 * MS; ks_loop_now_ns() < end;)
			ks_loop_run_once(f->loop, 50 * MS);
		assert_int_equal(st.calls, 0);
	}
	ks_vmspec_free(s);
}

static void free_vm(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_vm **vm = data;

	(void)l, (void)id;
	ks_vm_free(*vm);
	*vm = NULL;
}

/* Freed from elsewhere while its QMP handshake is under way (a nested loop run): the start
 * finishes the free, and its callback does not come. */
static void freed_during_handshake(void **state)
{
	struct fixture *f = *state;
	struct ks_vmspec *s = spec_of(f, "-fake-init", "100", "-fake-caps", "400", NULL);
	struct started st = { 0 };
	struct ks_vm *vm = launch(f, "nested", s, NULL, &st);
	pid_t pid = ks_vm_pid(vm);
	uint64_t end = ks_loop_now_ns() + 5 * SEC;

	/* The handshake waits for the answer to qmp_capabilities in the loop: the timer fires
	 * in there. */
	ks_loop_add_timer(f->loop, 300 * MS, 0, free_vm, &vm);
	while (vm && ks_loop_now_ns() < end)
		ks_loop_run_once(f->loop, 50 * MS);
	assert_null(vm);
	assert_true(gone(pid));
	assert_int_equal(st.calls, 0);
	ks_vmspec_free(s);
}

/* The callback may free the VM; a paused start leaves the vCPUs waiting. */
static void callback_frees_and_paused(void **state)
{
	struct fixture *f = *state;
	struct ks_vmspec *s = spec_of(f, "-fake-init", "50", NULL);
	struct ks_vm_opts o;
	struct started a = { .free_it = true }, b = { 0 };
	struct ks_vm *va, *vb;
	pid_t pa;

	va = launch(f, "freed", s, NULL, &a);
	pa = ks_vm_pid(va);
	ks_vm_opts_init(&o);
	o.paused = true;
	vb = launch(f, "paused", s, &o, &b);
	for (uint64_t end = ks_loop_now_ns() + 10 * SEC; (!a.calls || !b.calls) &&
	     ks_loop_now_ns() < end;)
		ks_loop_run_once(f->loop, 50 * MS);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, 0);
	assert_true(gone(pa));
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.rc, 0);
	assert_int_equal(ks_vm_state(vb), KS_VM_PAUSED);
	ks_vm_free(vb);
	ks_vmspec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(several_start_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(failure_comes_through_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(timeout_kills_qemu, setup, teardown),
		cmocka_unit_test_setup_teardown(destroyed_mid_start, setup, teardown),
		cmocka_unit_test_setup_teardown(freed_during_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(callback_frees_and_paused, setup, teardown),
	};

	return cmocka_run_group_tests_name("vm_start", tests, NULL, NULL);
}
