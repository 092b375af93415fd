/* test_cleanup.c: registered processes and files are gone after exit and after fatal signals. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/cleanup.h>

struct victim {
	pid_t grandchild;
	char file[80];
	char dir[64];
};

/* In a child: registers a sleeping process, a file and a directory, reports them through the
 * pipe, then ends by `how` (0: return from main via exit, else: wait for that signal). */
static void child(int fd, int how)
{
	struct victim v;

	ks_cleanup_install();
	v.grandchild = fork();
	if (v.grandchild == 0) {
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	snprintf(v.dir, sizeof(v.dir), "/tmp/kscope-cleanup-%d", getpid());
	mkdir(v.dir, 0700);
	snprintf(v.file, sizeof(v.file), "%s/sock", v.dir);
	close(open(v.file, O_CREAT | O_WRONLY, 0600));
	ks_cleanup_add_pid(v.grandchild);
	ks_cleanup_add_file(v.file);
	ks_cleanup_add_dir(v.dir);
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		_exit(1);
	if (!how)
		exit(0);
	for (;;)
		pause();
}

static void check_gone(const struct victim *v)
{
	struct stat st;

	/* The grandchild was reparented; it must be dead (kill fails with ESRCH once reaped by
	 * init, or it is a zombie at most: check /proc state). */
	for (int i = 0; i < 200 && kill(v->grandchild, 0) == 0; i++) {
		char path[64], state = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", v->grandchild);
		FILE *f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%*d %*s %c", &state) != 1)
				state = 0;
			fclose(f);
		}
		if (state == 'Z' || !f)
			break;
		usleep(10000);
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", v->grandchild);
	FILE *f = fopen(path, "r");
	char state = 'X';
	if (f) {
		if (fscanf(f, "%*d %*s %c", &state) != 1)
			state = 'X';
		fclose(f);
	}
	assert_true(state == 'X' || state == 'Z');
	assert_int_equal(stat(v->file, &st), -1);
	assert_int_equal(stat(v->dir, &st), -1);
}

static void run_case(int sig)
{
	int p[2];
	struct victim v;

	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(p[1], sig);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &v, sizeof(v)), sizeof(v));
	close(p[0]);
	if (sig)
		kill(pid, sig);
	int status;
	waitpid(pid, &status, 0);
	if (sig) {
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), sig);
	} else {
		assert_true(WIFEXITED(status));
	}
	check_gone(&v);
}

static void on_exit_path(void **state) { (void)state; run_case(0); }
static void on_sigterm(void **state) { (void)state; run_case(SIGTERM); }
static void on_sigint(void **state) { (void)state; run_case(SIGINT); }
static void on_sighup(void **state) { (void)state; run_case(SIGHUP); }

static void unregistered_things_stay(void **state)
{
	char file[] = "/tmp/kscope-cleanup-keepXXXXXX";
	struct stat st;
	(void)state;

	int fd = mkstemp(file);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ks_cleanup_add_file(file), 0);
	ks_cleanup_del_path(file);
	ks_cleanup_run();
	assert_int_equal(stat(file, &st), 0);
	unlink(file);
	char longpath[400];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(ks_cleanup_add_file(longpath), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(on_exit_path),
		cmocka_unit_test(on_sigterm),
		cmocka_unit_test(on_sigint),
		cmocka_unit_test(on_sighup),
		cmocka_unit_test(unregistered_things_stay),
	};

	return cmocka_run_group_tests_name("cleanup", tests, NULL, NULL);
}
