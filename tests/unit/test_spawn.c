/* test_spawn.c: child programs from argv arrays, their output, timeouts, and qcow2 images. */
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

#include <kscope/spawn.h>

#include "vm_internal.h"

static void runs_and_waits(void **state)
{
	char *argv[] = { "sh", "-c", "echo hello; exit 7", NULL };
	char path[] = "/tmp/kscope-spawn-XXXXXX";
	char buf[64] = { 0 };
	int status, fd = mkstemp(path);
	(void)state;

	pid_t pid = ks_spawn(argv, fd, NULL, 0, NULL);
	assert_true(pid > 0);
	assert_int_equal(ks_wait_pid(pid, 5000000000ll, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
	assert_string_equal(buf, "hello\n");
	close(fd);
	unlink(path);
}

static void missing_program_is_127(void **state)
{
	char *argv[] = { "/nonexistent/kscope-program", NULL };
	int status;
	(void)state;

	pid_t pid = ks_spawn(argv, -1, NULL, 0, NULL);
	assert_true(pid > 0);
	assert_int_equal(ks_wait_pid(pid, 5000000000ll, &status), 0);
	assert_int_equal(WEXITSTATUS(status), 127);
}

static void wait_times_out(void **state)
{
	char *argv[] = { "sleep", "10", NULL };
	int status;
	(void)state;

	pid_t pid = ks_spawn(argv, -1, NULL, 0, NULL);
	assert_int_equal(ks_wait_pid(pid, 50000000, &status), -ETIMEDOUT);
	kill(pid, SIGKILL);
	assert_int_equal(ks_wait_pid(pid, -1, &status), 0);
	assert_true(WIFSIGNALED(status));
}

/* The child dies with its parent (here an intermediate process we kill with SIGKILL). */
static void child_dies_with_parent(void **state)
{
	int p[2];
	(void)state;

	assert_int_equal(pipe(p), 0);
	pid_t mid = fork();
	if (mid == 0) {
		char *argv[] = { "sleep", "30", NULL };
		pid_t c = ks_spawn(argv, -1, NULL, 0, NULL);
		if (write(p[1], &c, sizeof(c)) != sizeof(c))
			_exit(1);
		pause();
		_exit(0);
	}
	pid_t child;
	assert_int_equal(read(p[0], &child, sizeof(child)), sizeof(child));
	usleep(20000);
	kill(mid, SIGKILL);
	waitpid(mid, NULL, 0);
	for (int i = 0; i < 200 && kill(child, 0) == 0; i++) {
		char path[64], st = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", child);
		FILE *f = fopen(path, "r");
		if (f && fscanf(f, "%*d %*s %c", &st) == 1 && st == 'Z') {
			fclose(f);
			break;
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	char path[64], st = 'X';
	snprintf(path, sizeof(path), "/proc/%d/stat", child);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%*d %*s %c", &st) != 1)
			st = 'X';
		fclose(f);
	}
	assert_true(st == 'X' || st == 'Z');
	close(p[0]);
	close(p[1]);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void qcow2_image(void **state)
{
	char dir[] = "/tmp/kscope-qcow2-XXXXXX", path[64];
	unsigned char hdr[104];
	struct ks_error err = { 0 };
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.qcow2", dir);
	assert_int_equal(ks_qcow2_create(path, 1ull << 30, &err), 0);
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, hdr, sizeof(hdr)), sizeof(hdr));
	assert_int_equal(lseek(fd, 0, SEEK_END), 4 * 65536);
	close(fd);
	assert_memory_equal(hdr, "QFI\xfb", 4);
	assert_int_equal(be32(hdr + 4), 3);
	assert_int_equal(be32(hdr + 20), 16);
	assert_int_equal(be32(hdr + 36), 2); /* two L2 tables map 1 GiB */
	/* qemu-img, when installed, must find the image clean. */
	if (access("/usr/bin/qemu-img", X_OK) == 0) {
		char *argv[] = { "qemu-img", "check", path, NULL };
		int status;
		pid_t pid = ks_spawn(argv, -1, NULL, 0, NULL);
		assert_int_equal(ks_wait_pid(pid, 10000000000ll, &status), 0);
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_true(ks_qcow2_create(path, 1ull << 30, &err) < 0); /* never overwrites */
	assert_non_null(strstr(err.msg, "cannot create"));
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runs_and_waits),
		cmocka_unit_test(missing_program_is_127),
		cmocka_unit_test(wait_times_out),
		cmocka_unit_test(child_dies_with_parent),
		cmocka_unit_test(qcow2_image),
	};

	return cmocka_run_group_tests_name("spawn", tests, NULL, NULL);
}
