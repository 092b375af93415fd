/* test_qmp.c: the QMP client against a real QEMU (microvm, TCG, paused at start, no kernel). */
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/qmp.h>

#include "vmboot.h"

#define S 1000000000ll
#define TIMEOUT (10 * S)

struct vm {
	pid_t pid;
	char dir[32];
	char sock[64];
	struct ks_qmp *q;
};

static const char *qemu_binary(void)
{
	const char *q = getenv("QEMU");

	return q && *q ? q : "qemu-system-x86_64";
}

/* Starts QEMU paused with a QMP socket; it dies with this process (parent-death signal). */
static pid_t start_qemu(const char *sock)
{
	char qmp[128];
	pid_t parent = getpid(), pid;

	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", sock);
	pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	/* QEMU's stdout would mix with the TAP stream. */
	dup2(2, 1);
	execlp(qemu_binary(), qemu_binary(), "-M", "microvm", "-accel", "tcg", "-m", "64M",
	       "-nodefaults", "-nographic", "-S", "-qmp", qmp, (char *)NULL);
	_exit(127);
}

static void stop_vm(struct vm *vm)
{
	ks_qmp_free(vm->q);
	vm->q = NULL;
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, NULL, 0);
		vm->pid = 0;
	}
	unlink(vm->sock);
	rmdir(vm->dir);
}

static int group_setup(void **state)
{
	static struct vm vm;
	struct ks_error err = {0};

	*state = NULL;
	if (!vm_have_qemu())
		return 0;
	strcpy(vm.dir, "/tmp/ks-qmp-XXXXXX");
	if (!mkdtemp(vm.dir))
		return -1;
	snprintf(vm.sock, sizeof(vm.sock), "%s/qmp.sock", vm.dir);
	vm.pid = start_qemu(vm.sock);
	if (vm.pid < 0)
		return -1;
	vm.q = ks_qmp_connect(NULL, vm.sock, TIMEOUT, &err);
	if (!vm.q) {
		print_error("connect: %s\n", err.msg);
		stop_vm(&vm);
		return -1;
	}
	*state = &vm;
	return 0;
}

static int group_teardown(void **state)
{
	if (*state)
		stop_vm(*state);
	return 0;
}

static struct ks_qmp *need_vm(void **state)
{
	if (!*state)
		skip(); /* the only reason a VM test may skip: no QEMU */
	return ((struct vm *)*state)->q;
}

static void greeting_and_prelaunch(void **state)
{
	struct ks_qmp *q = need_vm(state);
	json_t *v = json_object_get(json_object_get(ks_qmp_greeting(q), "version"), "qemu");
	json_t *reply;
	struct ks_error err = {0};

	assert_true(json_integer_value(json_object_get(v, "major")) >= 7);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, &reply, TIMEOUT, &err), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "status")), "prelaunch");
	assert_true(json_is_false(json_object_get(reply, "running")));
	json_decref(reply);
}

static void info_registers(void **state)
{
	struct ks_qmp *q = need_vm(state);
	struct ks_error err = {0};
	char *out;

	assert_int_equal(ks_qmp_hmp(q, "info registers", &out, TIMEOUT, &err), 0);
	/* Not yet started: the CPU sits at the reset vector (EIP, in 32-bit register format). */
	assert_non_null(strstr(out, "IP=0000fff0"));
	assert_non_null(strstr(out, "CR0="));
	assert_non_null(strstr(out, "EFER="));
	assert_null(strchr(out, '\r'));
	free(out);
}

static void cont_then_stop(void **state)
{
	struct ks_qmp *q = need_vm(state);
	struct ks_qmp_event *ev;
	json_t *reply;

	assert_int_equal(ks_qmp_call(q, "cont", NULL, NULL, TIMEOUT, NULL), 0);
	assert_int_equal(ks_qmp_wait_event(q, "RESUME", &ev, TIMEOUT), 0);
	assert_true(ev->ts_us > 0);
	ks_qmp_event_free(ev);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, &reply, TIMEOUT, NULL), 0);
	assert_true(json_is_true(json_object_get(reply, "running")));
	json_decref(reply);
	assert_int_equal(ks_qmp_call(q, "stop", NULL, NULL, TIMEOUT, NULL), 0);
	assert_int_equal(ks_qmp_next_event(q, &ev, TIMEOUT), 0);
	assert_string_equal(ev->name, "STOP");
	ks_qmp_event_free(ev);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, &reply, TIMEOUT, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "status")), "paused");
	json_decref(reply);
}

static void qemu_errors(void **state)
{
	struct ks_qmp *q = need_vm(state);
	struct ks_error err = {0};
	json_t *reply;

	assert_int_equal(ks_qmp_call(q, "query-nothing", NULL, &reply, TIMEOUT, &err),
			 -EOPNOTSUPP);
	assert_string_equal(json_string_value(json_object_get(reply, "class")), "CommandNotFound");
	assert_non_null(strstr(json_string_value(json_object_get(reply, "desc")), "query-nothing"));
	assert_non_null(strstr(err.msg, "CommandNotFound"));
	json_decref(reply);
	assert_int_equal(ks_qmp_call(q, "stop", json_pack("{s:i}", "bogus", 1), &reply, TIMEOUT,
				     &err), -EIO);
	assert_string_equal(json_string_value(json_object_get(reply, "class")), "GenericError");
	assert_non_null(strstr(err.msg, "bogus"));
	json_decref(reply);
	/* Still usable after refusals. */
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, NULL, TIMEOUT, &err), 0);
}

static void hmp_failures(void **state)
{
	struct ks_qmp *q = need_vm(state);
	struct ks_error err = {0};
	char *out;

	assert_int_equal(ks_qmp_hmp(q, "savevm kscope-test", &out, TIMEOUT, &err), -EIO);
	assert_non_null(strstr(err.msg, "Error:"));
	assert_non_null(strstr(out, "vmstate"));
	free(out);
	assert_int_equal(ks_qmp_hmp(q, "no-such-command", NULL, TIMEOUT, &err), -EIO);
	assert_non_null(strstr(err.msg, "unknown command"));
	assert_int_equal(ks_qmp_hmp(q, "info status", &out, TIMEOUT, &err), 0);
	assert_non_null(strstr(out, "paused"));
	free(out);
}

static void quit_closes(void **state)
{
	struct ks_qmp *q = need_vm(state);
	struct vm *vm = *state;
	struct ks_qmp_event *ev;
	int status;

	assert_int_equal(ks_qmp_call(q, "quit", NULL, NULL, TIMEOUT, NULL), 0);
	assert_int_equal(ks_qmp_wait_event(q, "SHUTDOWN", &ev, TIMEOUT), 0);
	assert_string_equal(json_string_value(json_object_get(ev->data, "reason")),
			    "host-qmp-quit");
	ks_qmp_event_free(ev);
	assert_int_equal(ks_qmp_next_event(q, &ev, TIMEOUT), -ENOTCONN);
	assert_false(ks_qmp_connected(q));
	assert_int_equal(ks_qmp_disconnect_reason(q)->code, -ECONNRESET);
	assert_int_equal(ks_qmp_call(q, "query-status", NULL, NULL, TIMEOUT, NULL), -ENOTCONN);
	assert_int_equal(waitpid(vm->pid, &status, 0), vm->pid);
	vm->pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(greeting_and_prelaunch),
		cmocka_unit_test(info_registers),
		cmocka_unit_test(cont_then_stop),
		cmocka_unit_test(qemu_errors),
		cmocka_unit_test(hmp_failures),
		cmocka_unit_test(quit_closes),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
