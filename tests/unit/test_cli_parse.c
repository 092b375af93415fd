/* test_cli_parse.c: `kscope parse` run as a program: its summary line, exit statuses and report files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
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
#include <jansson.h>

#include <kscope/ktap.h>

extern char **environ;

static char dir[] = "/tmp/kscope-cli-parse-XXXXXX";
static char out_path[80], err_path[80], junit_path[80], json_path[80], ktap_path[80];

static const char *env(const char *var)
{
	const char *v = getenv(var);

	if (!v || !*v)
		fail_msg("%s is not set (meson sets it)", var);
	return v;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	size_t n;

	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = 0;
	fclose(f);
	if (len)
		*len = n;
	return buf;
}

/* Runs kscope with args (NULL-terminated), stdin from in_path (NULL: /dev/null); its
 * stdout and stderr go to out_path and err_path. Returns its exit status. */
static int kscope(const char *in_path, const char *const *args)
{
	const char *argv[16];
	posix_spawn_file_actions_t fa;
	int n = 0, st, rc;
	pid_t pid;

	argv[n++] = env("KSCOPE");
	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		fail_msg("cannot run %s: %s", argv[0], strerror(rc));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* The last line kscope printed. */
static char *last_line(void)
{
	char *out = read_file(out_path, NULL), *end = out + strlen(out), *s;

	if (end > out && end[-1] == '\n')
		*--end = 0;
	s = strrchr(out, '\n');
	s = strdup(s ? s + 1 : out);
	free(out);
	return s;
}

static int expected_status(enum ks_ktap_outcome o)
{
	if (o == KS_KTAP_OUT_SUCCESS || o == KS_KTAP_OUT_SKIPPED)
		return 0;
	return o == KS_KTAP_OUT_FAILURE || o == KS_KTAP_OUT_CRASHED ? 1 : 2;
}

static void check_log(const char *path, int want_rc, const char *want_line)
{
	const char *args[] = { "parse", path, NULL };
	size_t len;
	char *log = read_file(path, &len), line[256], *got;
	struct ks_ktap *p = ks_ktap_parse_buf(log, len);
	struct ks_ktap_counts c;
	int rc = kscope(NULL, args);

	assert_non_null(p);
	ks_ktap_counts(p, &c);
	ks_ktap_summary(&c, line, sizeof(line));
	if (want_rc < 0)
		want_rc = expected_status(ks_ktap_outcome(p));
	if (rc != want_rc)
		fail_msg("%s: exit status %d, want %d", path, rc, want_rc);
	got = last_line();
	if (strcmp(got, want_line ? want_line : line))
		fail_msg("%s: last line '%s', want '%s'", path, got, want_line ? want_line : line);
	free(got);
	ks_ktap_free(p);
	free(log);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	snprintf(err_path, sizeof(err_path), "%s/err", dir);
	snprintf(junit_path, sizeof(junit_path), "%s/junit.xml", dir);
	snprintf(json_path, sizeof(json_path), "%s/report.json", dir);
	snprintf(ktap_path, sizeof(ktap_path), "%s/merged.ktap", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(out_path);
	unlink(err_path);
	unlink(junit_path);
	unlink(json_path);
	unlink(ktap_path);
	return rmdir(dir);
}

/* Every row of the corpus table: the status it names decides the exit status. */
static void corpus(void **state)
{
	const char *cdir = env("KSCOPE_KTAP_CORPUS");
	char path[1024], *tsv, *save = NULL;
	size_t rows = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/expected.tsv", cdir);
	tsv = read_file(path, NULL);
	for (char *l = strtok_r(tsv, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(l, '\t'), *status;
		int rc = -1;

		if (!strncmp(l, "file\t", 5) || !tab)
			continue;
		*tab = 0;
		status = tab + 1;
		status[strcspn(status, "\t")] = 0;
		if (!strcmp(status, "SUCCESS") || !strcmp(status, "SKIPPED"))
			rc = 0;
		else if (!strcmp(status, "FAILURE") || !strcmp(status, "TEST_CRASHED"))
			rc = 1;
		else if (strcmp(status, "-"))
			rc = 2;
		snprintf(path, sizeof(path), "%s/%s", cdir, l);
		check_log(path, rc, NULL);
		rows++;
	}
	assert_true(rows >= 20);
	free(tsv);
}

/* kunit's words exactly, every count printed. */
static void summary_lines(void **state)
{
	static const struct {
		const char *file;
		int rc;
		const char *line;
	} want[] = {
		{ "test_kernel_panic_interrupt.log", 1,
		  "Testing complete. Ran 10 tests: passed: 8, failed: 0, crashed: 2, skipped: 0, "
		  "errors: 3" },
		{ "test_skip_all_tests.log", 0,
		  "Testing complete. Ran 5 tests: passed: 0, failed: 0, crashed: 0, skipped: 5, "
		  "errors: 0" },
		{ "test_is_test_passed-failure.log", 1,
		  "Testing complete. Ran 11 tests: passed: 9, failed: 2, crashed: 0, skipped: 0, "
		  "errors: 0" },
		{ "test_is_test_passed-no_tests_run_no_header.log", 2,
		  "Testing complete. Ran 0 tests: passed: 0, failed: 0, crashed: 0, skipped: 0, "
		  "errors: 1" },
		{ "test_is_test_passed-no_tests_run_with_header.log", 2,
		  "Testing complete. Ran 0 tests: passed: 0, failed: 0, crashed: 0, skipped: 0, "
		  "errors: 1" },
		{ "test_is_test_passed-all_passed.log", 0,
		  "Testing complete. Ran 10 tests: passed: 10, failed: 0, crashed: 0, skipped: 0, "
		  "errors: 0" },
	};
	char path[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", env("KSCOPE_KTAP_CORPUS"), want[i].file);
		check_log(path, want[i].rc, want[i].line);
	}
}

static void failures_shown(void **state)
{
	char path[1024], *out;
	const char *args[] = { "parse", path, NULL };

	(void)state;
	snprintf(path, sizeof(path), "%s/test_is_test_passed-failure.log",
		 env("KSCOPE_KTAP_CORPUS"));
	assert_int_equal(kscope(NULL, args), 1);
	out = read_file(out_path, NULL);
	assert_non_null(strstr(out, "== example (2 subtests) ==\n"));
	assert_non_null(strstr(out, "  [FAILED] example_simple_test\n"
				    "      init_suite\n"
				    "      # example_simple_test: initializing\n"
				    "      # example_simple_test: EXPECTATION FAILED at "
				    "lib/kunit/example-test.c:30\n"));
	assert_non_null(strstr(out, "  [PASSED] example_mock_test\n== [FAILED] example ==\n"));
	free(out);
	snprintf(path, sizeof(path), "%s/test_kernel_panic_interrupt.log",
		 env("KSCOPE_KTAP_CORPUS"));
	assert_int_equal(kscope(NULL, args), 1);
	out = read_file(out_path, NULL);
	assert_non_null(strstr(out, "  [CRASHED] #2\n  [CRASHED] #3\n"
				    "== [CRASHED] string-stream-test ==\n"));
	assert_non_null(strstr(out, "[ERROR] Test: string-stream-test: "
				    "missing expected subtest!\n"));
	free(out);
}

static void stdin_and_reports(void **state)
{
	char golden[1024], *line, *xml, *kt;
	const char *args[] = { "parse", "-", "--junit", junit_path, "--json", json_path,
			       "--ktap", ktap_path, NULL };
	const char *again[] = { "parse", ktap_path, NULL };
	json_error_t err;
	json_t *j;

	(void)state;
	snprintf(golden, sizeof(golden), "%s/ktest_basic.ktap", env("KSCOPE_TEST_DATA"));
	assert_int_equal(kscope(golden, args), 1);
	line = last_line();
	assert_string_equal(line, "Testing complete. Ran 50 tests: passed: 21, failed: 22, "
			    "crashed: 0, skipped: 7, errors: 0");
	free(line);
	xml = read_file(junit_path, NULL);
	assert_non_null(strstr(xml, "<testsuites name=\"kscope\" tests=\"45\" failures=\"17\""));
	free(xml);
	j = json_load_file(json_path, 0, &err);
	if (!j)
		fail_msg("%s: %s", json_path, err.text);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "FAILURE");
	json_decref(j);
	kt = read_file(ktap_path, NULL);
	assert_int_equal(strncmp(kt, "KTAP version 1\n1..8\n", 20), 0);
	free(kt);
	/* The KTAP it wrote says the same. */
	assert_int_equal(kscope(NULL, again), 1);
	line = last_line();
	assert_string_equal(line, "Testing complete. Ran 50 tests: passed: 21, failed: 22, "
			    "crashed: 0, skipped: 7, errors: 0");
	free(line);
}

static void usage(void **state)
{
	const char *help[] = { "parse", "--help", NULL };
	const char *none[] = { "parse", NULL };
	const char *two[] = { "parse", "a", "b", NULL };
	const char *bad[] = { "parse", "--colour", "x", NULL };
	const char *missing[] = { "parse", "/nonexistent/kscope.log", NULL };
	const char *unwritable[] = { "parse", "-", "--json", "/nonexistent/dir/x.json", NULL };
	const char *top[] = { "help", NULL };
	char *out;

	(void)state;
	assert_int_equal(kscope(NULL, help), 0);
	out = read_file(out_path, NULL);
	assert_int_equal(strncmp(out, "usage: kscope parse FILE|-", 26), 0);
	free(out);
	assert_int_equal(kscope(NULL, none), 2);
	assert_int_equal(kscope(NULL, two), 2);
	assert_int_equal(kscope(NULL, bad), 2);
	assert_int_equal(kscope(NULL, missing), 2);
	out = read_file(err_path, NULL);
	assert_non_null(strstr(out, "/nonexistent/kscope.log"));
	free(out);
	/* Empty input: no KTAP, and the report could not be written either. */
	assert_int_equal(kscope(NULL, unwritable), 2);
	assert_int_equal(kscope(NULL, top), 0);
	out = read_file(out_path, NULL);
	assert_non_null(strstr(out, "  parse "));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(corpus),
		cmocka_unit_test(summary_lines),
		cmocka_unit_test(failures_shown),
		cmocka_unit_test(stdin_and_reports),
		cmocka_unit_test(usage),
	};

	return cmocka_run_group_tests_name("cli_parse", tests, setup, teardown);
}
