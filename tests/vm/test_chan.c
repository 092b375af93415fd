/* test_chan.c: the console and COM2 of the demo kernel captured as channels, under QEMU. */
#include <errno.h>
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

#include <kscope/chan.h>
#include <kscope/kt_abi.h>
#include <kscope/qmp.h>

#include "vmboot.h"

#define S 1000000000ll
#define CONNECT_TIMEOUT (10 * S)
#define BOOT_TIMEOUT (120 * S)
#define MAX_TS 4096

/* What kernel/demo/tests_serial.c writes to COM2. */
#define COM2_LINE "kscope-demo: hello on COM2"

struct vm {
	pid_t pid;
	char dir[32];
	char qmp[64], com1[64], com2[64], log1[64], log2[64];
	struct ks_loop *loop;
	struct ks_qmp *q;
	struct ks_chan *console, *com2_ch;
	uint64_t ts[MAX_TS];  /* console line times, in arrival order */
	size_t nts;
	uint64_t cursor;      /* console lines checked so far */
};

static const char *qemu_binary(void)
{
	const char *q = getenv("QEMU");

	return q && *q ? q : "qemu-system-x86_64";
}

/* Starts QEMU paused, its serial ports and QMP on Unix sockets; it dies with this process. */
static pid_t start_qemu(const struct vm *vm)
{
	char qmp[128], ser0[128], ser1[128];
	pid_t parent = getpid(), pid;

	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", vm->qmp);
	snprintf(ser0, sizeof(ser0), "socket,id=ser0,path=%s,server=on,wait=off", vm->com1);
	snprintf(ser1, sizeof(ser1), "socket,id=ser1,path=%s,server=on,wait=off", vm->com2);
	pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	/* QEMU's stdout would mix with the TAP stream. */
	dup2(2, 1);
	execlp(qemu_binary(), qemu_binary(), "-M", "microvm", "-accel", "tcg", "-smp", "2",
	       "-m", "128M", "-nodefaults", "-nographic", "-no-reboot", "-S",
	       "-qmp", qmp,
	       "-chardev", ser0, "-serial", "chardev:ser0",
	       "-chardev", ser1, "-device", "isa-serial,chardev=ser1,iobase=0x2f8,irq=3",
	       "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
	       "-kernel", vm_demo_kernel(), (char *)NULL);
	_exit(127);
}

static void stop_vm(struct vm *vm)
{
	ks_chan_free(vm->console);
	ks_chan_free(vm->com2_ch);
	ks_qmp_free(vm->q);
	ks_loop_free(vm->loop);
	vm->console = vm->com2_ch = NULL;
	vm->q = NULL;
	vm->loop = NULL;
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		waitpid(vm->pid, NULL, 0);
		vm->pid = 0;
	}
	unlink(vm->qmp);
	unlink(vm->com1);
	unlink(vm->com2);
	unlink(vm->log1);
	unlink(vm->log2);
	rmdir(vm->dir);
}

static void note_time(struct ks_chan *ch, const struct ks_chan_line *line, void *data)
{
	struct vm *vm = data;

	(void)ch;
	if (vm->nts < MAX_TS)
		vm->ts[vm->nts++] = line->ts_ns;
}

static void set_paths(struct vm *vm)
{
	snprintf(vm->qmp, sizeof(vm->qmp), "%s/qmp.sock", vm->dir);
	snprintf(vm->com1, sizeof(vm->com1), "%s/com1.sock", vm->dir);
	snprintf(vm->com2, sizeof(vm->com2), "%s/com2.sock", vm->dir);
	snprintf(vm->log1, sizeof(vm->log1), "%s/console.log", vm->dir);
	snprintf(vm->log2, sizeof(vm->log2), "%s/com2.log", vm->dir);
}

/* Connects QMP and both ports while the vCPUs wait, then lets them run. */
static int connect_and_resume(struct vm *vm)
{
	struct ks_error err = {0};

	vm->loop = ks_loop_new(&err);
	if (vm->loop)
		vm->q = ks_qmp_connect(vm->loop, vm->qmp, CONNECT_TIMEOUT, &err);
	if (vm->q)
		vm->console = ks_chan_open(vm->loop, "console", vm->com1, vm->log1,
					   CONNECT_TIMEOUT, &err);
	if (vm->console)
		vm->com2_ch = ks_chan_open(vm->loop, "com2", vm->com2, vm->log2, CONNECT_TIMEOUT,
					   &err);
	if (vm->com2_ch && ks_chan_on_line(vm->console, note_time, vm) > 0 &&
	    ks_qmp_call(vm->q, "cont", NULL, NULL, CONNECT_TIMEOUT, &err) == 0)
		return 0;
	print_error("setup: %s\n", err.msg);
	return -1;
}

static int group_setup(void **state)
{
	static struct vm vm;

	*state = NULL;
	if (!vm_have_qemu())
		return 0;
	strcpy(vm.dir, "/tmp/ks-chan-XXXXXX");
	if (!mkdtemp(vm.dir))
		return -1;
	set_paths(&vm);
	vm.pid = start_qemu(&vm);
	if (vm.pid < 0 || connect_and_resume(&vm) < 0) {
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

static struct vm *need_vm(void **state)
{
	if (!*state)
		skip(); /* the only reason a VM test may skip: no QEMU */
	return *state;
}

/* Waits for a console line; on failure shows what the console said. */
static void wait_console(struct vm *vm, const char *text, struct ks_chan_line **line)
{
	int r = ks_chan_wait_line(vm->console, text, 0, &vm->cursor, BOOT_TIMEOUT, line);

	if (r != 0) {
		ks_chan_dump(vm->console, 100, stderr);
		fail_msg("waiting for \"%s\" on the console: %s", text, strerror(-r));
	}
}

static void console_ktap_with_timestamps(void **state)
{
	struct vm *vm = need_vm(state);
	struct ks_chan_line *first, *last;

	wait_console(vm, "KTAP version 1", &first);
	assert_int_equal(first->flags & KS_CHAN_PARTIAL, 0);
	wait_console(vm, "# Totals:", &last);
	assert_true(strstr(last->text, "fail:0") != NULL);
	assert_true(last->lineno > first->lineno);
	assert_true(last->ts_ns > first->ts_ns);
	assert_true(last->wall_ns > first->wall_ns);
	for (size_t i = 1; i < vm->nts; i++)
		assert_true(vm->ts[i] >= vm->ts[i - 1]);
	assert_true(vm->nts >= last->lineno - first->lineno);
	free(first);
	free(last);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	assert_non_null(f);
	assert_non_null(buf = malloc(1 << 20));
	len = fread(buf, 1, (1 << 20) - 1, f);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static void console_log_file(void **state)
{
	struct vm *vm = need_vm(state);
	char *log = slurp(vm->log1);
	char *ktap = strstr(log, "] KTAP version 1\n"), *totals = strstr(log, "] # Totals: ");
	size_t len = strlen(log);

	/* A line may be in the log as partial ("]+"): a guest stalled in the middle of it for
	 * longer than the partial timeout (a loaded host) has it cut there. */
	if (!totals)
		totals = strstr(log, "]+# Totals: ");
	/* The end of the log: cmocka cuts long messages, and the end is what tells. */
	if (!ktap || !totals)
		fail_msg("console log lacks the KTAP header or totals; it ends with:\n%s",
			 log + (len > 1500 ? len - 1500 : 0));
	assert_true(totals > ktap);
	assert_memory_equal(log, "# kscope console: ", 18);
	/* "[    s.micros] " before each line. */
	assert_true(ktap - log >= 13);
	assert_int_equal(ktap[-7], '.');
	free(log);
}

static void com2_known_line(void **state)
{
	struct vm *vm = need_vm(state);
	struct ks_chan_line *line;
	int r = ks_chan_wait_line(vm->com2_ch, COM2_LINE, 0, &(uint64_t){0}, BOOT_TIMEOUT, &line);
	char *log;

	if (r != 0) {
		ks_chan_dump(vm->console, 100, stderr);
		fail_msg("no \"%s\" on COM2: %s", COM2_LINE, strerror(-r));
	}
	assert_int_equal(line->len, strlen(COM2_LINE));
	assert_int_equal(line->flags, 0);
	assert_string_equal(line->chan, "com2");
	free(line);
	log = slurp(vm->log2);
	assert_non_null(strstr(log, "] " COM2_LINE "\n"));
	free(log);
}

/* The kernel leaves through isa-debug-exit: QEMU exits and both channels see the end. */
static void qemu_exit_closes_channels(void **state)
{
	struct vm *vm = need_vm(state);
	uint64_t c2 = 0;
	int status;

	assert_int_equal(ks_chan_wait_line(vm->console, "never printed", 0, &vm->cursor,
					   BOOT_TIMEOUT, NULL), -ECONNRESET);
	assert_true(ks_chan_closed(vm->console));
	assert_int_equal(ks_chan_close_reason(vm->console)->code, -ECONNRESET);
	assert_int_equal(ks_chan_wait_line(vm->com2_ch, "never printed", 0, &c2, BOOT_TIMEOUT,
					   NULL), -ECONNRESET);
	assert_int_equal(waitpid(vm->pid, &status, 0), vm->pid);
	vm->pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), KT_EXIT_STATUS(KT_EXIT_PASS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(console_ktap_with_timestamps),
		cmocka_unit_test(console_log_file),
		cmocka_unit_test(com2_known_line),
		cmocka_unit_test(qemu_exit_closes_channels),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
