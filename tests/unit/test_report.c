/* test_report.c: reports from parsed KTAP: JUnit validated by xmllint, JSON read back, merged KTAP parsed again. */
#include <dirent.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <kscope/ktap.h>
#include <kscope/report.h>

extern char **environ;

static char dir[] = "/tmp/kscope-report-XXXXXX";
static char xml_path[64], out_path[64];

/* Control characters, bytes that are not UTF-8, XML's specials, a CDATA end. */
static const char nasty_log[] =
	"KTAP version 1\n"
	"1..3\n"
	"    KTAP version 1\n"
	"    # Subtest: we<ird>&\"suite'\n"
	"    # owner: a<b>&c\n"
	"    1..3\n"
	"    # case<1>: EXPECTATION FAILED at x.c:1 ]]> \x01\x1b[31mred\x1b[0m \xff\xfe\xc3(\n"
	"    not ok 1 case<1>\n"
	"    ok 2 quote\"d'&amp; # SKIP because <reasons> & \x02\n"
	"    \x03garbage \xed\xa0\x80 \xef\xbf\xbe end\n"
	"    ok 3 tab\there\n"
	"not ok 1 we<ird>&\"suite'\n"
	"ok 2 caf\xc3\xa9 \xe2\x9c\x93\n"
	"    KTAP version 1\n"
	"    # Subtest: cut\n"
	"    1..2\n"
	"    ok 1 first\n"
	"Oops: general protection fault\x07\n";

static const char *env_dir(const char *var)
{
	const char *d = getenv(var);

	if (!d || !*d)
		fail_msg("%s is not set (meson sets it)", var);
	return d;
}

static char *read_file(const char *d, const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf = malloc(1 << 20);

	snprintf(path, sizeof(path), "%s%s%s", d ? d : "", d ? "/" : "", name);
	if (!(f = fopen(path, "rb")))
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

/* Runs argv (found on PATH) with stdout and stderr to out_path; returns its exit status.
 * A tool that is missing fails the test: these checks are never skipped. */
static int run(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		fail_msg("cannot run %s: %s (install libxml2-utils: scripts/setup.sh)", argv[0],
			 strerror(rc));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		fail_msg("%s is not installed (install libxml2-utils: scripts/setup.sh)", argv[0]);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *output(void)
{
	size_t len;
	char *s = read_file(NULL, out_path, &len);

	while (len && s[len - 1] == '\n')
		s[--len] = 0;
	return s;
}

static void validate(const char *what)
{
	char xsd[1024];
	char *argv[] = { "xmllint", "--noout", "--schema", xsd, xml_path, NULL };

	snprintf(xsd, sizeof(xsd), "%s/junit.xsd", env_dir("KSCOPE_TEST_DATA"));
	if (run(argv)) {
		char *o = output();

		fail_msg("%s: JUnit XML does not validate:\n%s", what, o);
	}
}

/* An XPath expression's value in the JUnit file, as xmllint prints it. */
static char *xpath(const char *expr)
{
	char *argv[] = { "xmllint", "--xpath", (char *)expr, xml_path, NULL };

	if (run(argv))
		fail_msg("xpath %s failed: %s", expr, output());
	return output();
}

static void xpath_is(const char *expr, const char *want)
{
	char *got = xpath(expr);

	if (strcmp(got, want))
		fail_msg("%s = '%s', want '%s'", expr, got, want);
	free(got);
}

static void xpath_count(const char *expr, unsigned want)
{
	char e[256];
	char *got;

	snprintf(e, sizeof(e), "count(%s)", expr);
	got = xpath(e);
	if (strtoul(got, NULL, 10) != want)
		fail_msg("%s = %s, want %u", e, got, want);
	free(got);
}

static void write_junit(const struct ks_report *r)
{
	FILE *f = fopen(xml_path, "w");

	assert_non_null(f);
	assert_int_equal(ks_report_write_junit(r, f), 0);
	fclose(f);
}

static char *ktap_text(const struct ks_report *r)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	assert_int_equal(ks_report_write_ktap(r, f), 0);
	fclose(f);
	return s;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(xml_path, sizeof(xml_path), "%s/junit.xml", dir);
	snprintf(out_path, sizeof(out_path), "%s/out.txt", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(xml_path);
	unlink(out_path);
	return rmdir(dir);
}

/* Every log the parser has a table for, the kt_ golden output, and the nasty one. */
struct log {
	char name[256];
	char *text;
	size_t len;
};

static size_t all_logs(struct log *logs, size_t max)
{
	const char *cdir = env_dir("KSCOPE_KTAP_CORPUS");
	DIR *d = opendir(cdir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		fail_msg("%s: %s", cdir, strerror(errno));
	while ((de = readdir(d)) && n < max - 2) {
		size_t nl = strlen(de->d_name);

		if (nl < 4 || strcmp(de->d_name + nl - 4, ".log"))
			continue;
		snprintf(logs[n].name, sizeof(logs[n].name), "%s", de->d_name);
		logs[n].text = read_file(cdir, de->d_name, &logs[n].len);
		n++;
	}
	closedir(d);
	snprintf(logs[n].name, sizeof(logs[n].name), "ktest_basic.ktap");
	logs[n].text = read_file(env_dir("KSCOPE_TEST_DATA"), "ktest_basic.ktap", &logs[n].len);
	n++;
	snprintf(logs[n].name, sizeof(logs[n].name), "nasty");
	logs[n].text = strdup(nasty_log);
	logs[n].len = sizeof(nasty_log) - 1;
	return n + 1;
}

/* ---- JUnit ---- */

/* The schema is no rubber stamp: what Jenkins or GitLab would choke on fails it. */
static void xsd_rejects(void **state)
{
	static const char *const bad[] = {
		"<testsuites><testsuite name=\"s\" tests=\"1\"><testcase name=\"a\"/>"
		"</testsuite></testsuites>",
		"<testsuites><testsuite name=\"s\" tests=\"1\"><testcase name=\"a\" "
		"classname=\"s\" time=\"1,5\"/></testsuite></testsuites>",
		"<testsuites><testsuite name=\"s\"><testcase name=\"a\" classname=\"s\"/>"
		"</testsuite></testsuites>",
		"<testsuites><testsuite name=\"s\" tests=\"-1\"/></testsuites>",
		"<testsuites><testsuite name=\"s\" tests=\"1\"><testcase name=\"a\" "
		"classname=\"s\"><system-out/><failure/></testcase></testsuite></testsuites>",
		"<testsuites><testcase name=\"a\" classname=\"s\"/></testsuites>",
		"<testsuites><testsuite name=\"s\" tests=\"0\" colour=\"red\"/></testsuites>",
		"<testsuites><testsuite name=\"s\" tests=\"0\">\x01</testsuite></testsuites>",
	};
	char xsd[1024];
	char *argv[] = { "xmllint", "--noout", "--schema", xsd, xml_path, NULL };

	(void)state;
	snprintf(xsd, sizeof(xsd), "%s/junit.xsd", env_dir("KSCOPE_TEST_DATA"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(xml_path, "w");

		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		if (!run(argv))
			fail_msg("the schema accepts %s", bad[i]);
	}
}

/* The counts of the counted tests under t: what JUnit has a <testcase> for. */
static void case_counts(const struct ks_ktap_test *t, struct ks_ktap_counts *c)
{
	if (t->counted)
		ks_ktap_counts_add(c, t->status);
	for (size_t i = 0; i < t->nchildren; i++)
		case_counts(t->children[i], c);
}

static void junit_validates(void **state)
{
	struct log logs[40];
	size_t n = all_logs(logs, 40);

	(void)state;
	assert_true(n >= 22);
	for (size_t i = 0; i < n; i++) {
		struct ks_ktap *p = ks_ktap_parse_buf(logs[i].text, logs[i].len);
		struct ks_report *r = ks_report_new(NULL);
		struct ks_ktap_counts c = { 0 };

		assert_non_null(p);
		assert_non_null(r);
		assert_int_equal(ks_report_add(r, p, NULL), 0);
		write_junit(r);
		validate(logs[i].name);
		/* One <testcase> per counted test; <failure>, <error>, <skipped> per bucket. */
		if (ks_ktap_root(p))
			case_counts(ks_ktap_root(p), &c);
		xpath_count("//testcase", ks_ktap_counts_total(&c));
		xpath_count("//testcase/failure", c.failed);
		xpath_count("//testcase/error", c.crashed);
		xpath_count("//testcase/skipped", c.skipped);
		if (ks_ktap_counts_total(&c)) {
			char want[16];

			snprintf(want, sizeof(want), "%u", c.failed);
			xpath_is("string(/testsuites/@failures)", want);
		}
		ks_report_free(r);
		ks_ktap_free(p);
		free(logs[i].text);
	}
}

static struct ks_report *nasty_report(struct ks_ktap **pp)
{
	struct ks_ktap *p = ks_ktap_parse_buf(nasty_log, sizeof(nasty_log) - 1);
	struct ks_report *r = ks_report_new("nightly <x86>");
	struct ks_report_extra x = KS_REPORT_EXTRA_INIT;

	assert_non_null(p);
	assert_non_null(r);
	assert_int_equal(ks_report_add(r, p, "vm<1>"), 0);
	x.duration_ns = 1500000000;
	assert_int_equal(ks_report_set_extra(r, 0, "we<ird>&\"suite'", "case<1>", &x), 0);
	x = (struct ks_report_extra){ .duration_ns = 2500000000ll, .name = "crashy_case",
				      .log = "console: \x01 boom <here>\n\xff",
				      .dump = "RIP: 0010:foo+0x1 ]]>", .vm = "vm-case" };
	assert_int_equal(ks_report_set_extra(r, -1, "cut", "#2", &x), 0);
	x = (struct ks_report_extra){ .duration_ns = 3000000000ll, .vm = "vm-z" };
	assert_int_equal(ks_report_set_extra(r, 0, "cut", NULL, &x), 0);
	*pp = p;
	return r;
}

static void junit_escapes_and_extras(void **state)
{
	struct ks_ktap *p;
	struct ks_report *r = nasty_report(&p);

	(void)state;
	write_junit(r);
	validate("nasty");
	xpath_is("string(/testsuites/@name)", "nightly <x86>");
	xpath_is("string(//testsuite[1]/@name)", "we<ird>&\"suite'");
	xpath_is("string(//testsuite[1]/@time)", "1.500000");
	xpath_is("string(//testsuite[1]/@hostname)", "vm<1>");
	xpath_is("string(//testsuite[1]/properties/property[@name='owner']/@value)", "a<b>&c");
	xpath_is("string((//testcase)[1]/@name)", "case<1>");
	xpath_is("string((//testcase)[1]/@time)", "1.500000");
	xpath_is("string((//testcase)[1]/failure/@type)", "FAIL");
	xpath_is("string((//testcase)[1]/failure/@message)",
		 "EXPECTATION FAILED at x.c:1 ]]> \xef\xbf\xbd\xef\xbf\xbd[31mred\xef\xbf\xbd[0m "
		 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(");
	xpath_is("string((//testcase)[2]/skipped/@message)", "because <reasons> & \xef\xbf\xbd");
	xpath_is("string((//testcase)[3]/@name)", "tab\there");
	xpath_is("string((//testcase)[6]/@name)", "caf\xc3\xa9 \xe2\x9c\x93");
	xpath_is("string((//testcase)[6]/@classname)", "vm<1>");
	xpath_is("string(//testsuite[@name='cut']/@hostname)", "vm-z");
	xpath_is("string(//testsuite[@name='cut']/@time)", "3.000000");
	xpath_is("string(//testcase[@name='crashy_case']/error/@type)", "CRASHED");
	xpath_is("string(//testcase[@name='crashy_case']/error/@message)",
		 "crashed: its result never came");
	xpath_is("string(//testcase[@name='crashy_case']/error)",
		 "Oops: general protection fault\xef\xbf\xbd");
	xpath_is("string(//testcase[@name='crashy_case']/system-out)",
		 "console: \xef\xbf\xbd boom <here>\n\xef\xbf\xbd");
	xpath_is("string(//testcase[@name='crashy_case']/system-err)", "RIP: 0010:foo+0x1 ]]>");
	xpath_is("string(//testcase[@name='crashy_case']/@time)", "2.500000");
	xpath_is("string(//testcase[@name='crashy_case']/@classname)", "cut");
	xpath_count("//testcase", 6);
	ks_report_free(r);
	ks_ktap_free(p);
}

/* ---- JSON ---- */

static json_t *load_json(const struct ks_report *r)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	json_error_t err;
	json_t *j;

	assert_non_null(f);
	assert_int_equal(ks_report_write_json(r, f), 0);
	fclose(f);
	if (!(j = json_loads(s, 0, &err)))
		fail_msg("JSON does not parse: %s (line %d)\n%s", err.text, err.line, s);
	free(s);
	return j;
}

/* The value at path in j: keys and array indexes joined by '.' ("suites.1.cases.0"). */
static json_t *jat(json_t *j, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = json_is_array(j) ? json_array_get(j, strtoul(k, NULL, 10))
				     : json_object_get(j, k);
	if (!j)
		fail_msg("no '%s' in the JSON", path);
	return j;
}

static const char *jstring(json_t *j, const char *path)
{
	json_t *v = jat(j, path);

	if (!json_is_string(v))
		fail_msg("'%s' is no string", path);
	return json_string_value(v);
}

static long long jint(json_t *j, const char *path)
{
	json_t *v = jat(j, path);

	if (!json_is_integer(v))
		fail_msg("'%s' is no integer", path);
	return json_integer_value(v);
}

static void json_nasty(void **state)
{
	struct ks_ktap *p;
	struct ks_report *r = nasty_report(&p);
	json_t *j = load_json(r);

	(void)state;
	assert_string_equal(jstring(j, "status"), "TEST_CRASHED");
	/* kunit's counts: 5 tests, and the suite's own not ok over its failing case. */
	assert_int_equal(jint(j, "counts.tests"), 7);
	assert_int_equal(jint(j, "counts.errors"), 2);
	assert_int_equal(json_array_size(jat(j, "runs")), 1);
	assert_string_equal(jstring(j, "runs.0.source"), "vm<1>");
	assert_int_equal(json_array_size(jat(j, "runs.0.errors")), 2);
	assert_string_equal(jstring(j, "runs.0.errors.0.message"), "missing expected subtest!");
	assert_string_equal(jstring(j, "suites.0.name"), "we<ird>&\"suite'");
	assert_string_equal(jstring(j, "suites.0.status"), "FAIL");
	assert_string_equal(jstring(j, "suites.0.attributes.owner"), "a<b>&c");
	assert_string_equal(jstring(j, "suites.0.cases.0.name"), "case<1>");
	assert_int_equal(jint(j, "suites.0.cases.0.duration_ns"), 1500000000);
	/* Bytes that are not UTF-8 become U+FFFD; control characters stay, escaped. */
	assert_string_equal(jstring(j, "suites.0.cases.0.diagnostics.0"),
			    "# case<1>: EXPECTATION FAILED at x.c:1 ]]> \x01\x1b[31mred\x1b[0m "
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(");
	assert_string_equal(jstring(j, "suites.0.cases.1.status"), "SKIP");
	assert_true(json_is_null(jat(j, "suites.0.cases.2.duration_ns")));
	assert_string_equal(jstring(j, "cases.0.name"), "caf\xc3\xa9 \xe2\x9c\x93");
	assert_string_equal(jstring(j, "suites.1.status"), "CRASHED");
	assert_string_equal(jstring(j, "suites.1.vm"), "vm-z");
	assert_string_equal(jstring(j, "suites.1.cases.1.name"), "crashy_case");
	assert_string_equal(jstring(j, "suites.1.cases.1.status"), "CRASHED");
	assert_string_equal(jstring(j, "suites.1.cases.1.log"),
			    "console: \x01 boom <here>\n\xef\xbf\xbd");
	assert_string_equal(jstring(j, "suites.1.cases.1.dump"), "RIP: 0010:foo+0x1 ]]>");
	assert_string_equal(jstring(j, "suites.1.cases.1.vm"), "vm-case");
	assert_int_equal(jint(j, "suites.1.cases.1.duration_ns"), 2500000000ll);
	assert_true(json_is_null(jat(j, "suites.1.cases.1.result_line")));
	assert_string_equal(jstring(j, "suites.1.cases.1.diagnostics.0"),
			    "Oops: general protection fault\x07");
	json_decref(j);
	ks_report_free(r);
	ks_ktap_free(p);
}

static void json_golden(void **state)
{
	size_t len;
	char *log = read_file(env_dir("KSCOPE_TEST_DATA"), "ktest_basic.ktap", &len);
	struct ks_ktap *p = ks_ktap_parse_buf(log, len);
	struct ks_report *r = ks_report_new(NULL);
	json_t *j;

	(void)state;
	assert_int_equal(ks_report_add(r, p, NULL), 0);
	j = load_json(r);
	assert_string_equal(jstring(j, "status"), "FAILURE");
	assert_int_equal(json_array_size(jat(j, "suites")), 8);
	assert_int_equal(json_array_size(jat(j, "cases")), 0);
	assert_string_equal(jstring(j, "suites.6.name"), "kt_wipe");
	assert_string_equal(jstring(j, "suites.6.attributes.destructive"), "true");
	assert_string_equal(jstring(j, "suites.1.cases.0.status"), "FAIL");
	assert_string_equal(jstring(j, "suites.1.cases.0.diagnostics.0"),
			    "# int_eq: EXPECTATION FAILED at ktest_fixtures.c:198");
	assert_string_equal(jstring(j, "suites.4.name"), "kt_param");
	assert_int_equal(json_array_size(jat(j, "suites.4.suites")), 3);
	assert_int_equal(json_array_size(jat(j, "suites.4.cases")), 1);
	assert_string_equal(jstring(j, "suites.4.suites.0.name"), "widths");
	assert_true(json_is_null(jat(j, "suites.4.suites.0.plan")));
	assert_string_equal(jstring(j, "suites.4.suites.0.cases.2.name"), "width 32");
	assert_int_equal(jint(j, "suites.4.counts.skipped"), 3);
	assert_int_equal(jint(j, "suites.4.plan"), 4);
	json_decref(j);
	ks_report_free(r);
	ks_ktap_free(p);
	free(log);
}

/* ---- merged KTAP ---- */

static void same_counts(const char *what, const struct ks_ktap_counts *a,
			const struct ks_ktap_counts *b)
{
	if (a->passed != b->passed || a->failed != b->failed || a->crashed != b->crashed ||
	    a->skipped != b->skipped)
		fail_msg("%s: KTAP parses back as %u/%u/%u/%u, was %u/%u/%u/%u", what, b->passed,
			 b->failed, b->crashed, b->skipped, a->passed, a->failed, a->crashed,
			 a->skipped);
}

/* Written, parsed, written again: the same counts, the same text, and no parse errors
 * but kunit's complaint about tests that ran nothing. */
static void ktap_round_trip(void **state)
{
	struct log logs[40];
	size_t n = all_logs(logs, 40);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct ks_ktap *p = ks_ktap_parse_buf(logs[i].text, logs[i].len), *q;
		struct ks_report *r = ks_report_new(NULL), *r2 = ks_report_new(NULL);
		struct ks_ktap_counts a, b;
		const struct ks_ktap_error *e;
		char *k1, *k2;
		size_t ne;

		assert_int_equal(ks_report_add(r, p, NULL), 0);
		k1 = ktap_text(r);
		q = ks_ktap_parse_buf(k1, strlen(k1));
		ks_ktap_counts(p, &a);
		ks_ktap_counts(q, &b);
		same_counts(logs[i].name, &a, &b);
		if (ks_ktap_root(p))
			assert_int_equal(ks_ktap_outcome(p), ks_ktap_outcome(q));
		e = ks_ktap_errors(q, &ne);
		for (size_t k = 0; k < ne; k++)
			if (strcmp(e[k].msg, "0 tests run!"))
				fail_msg("%s: KTAP parses back with error %s: %s\n%s", logs[i].name,
					 e[k].test, e[k].msg, k1);
		assert_int_equal(ks_report_add(r2, q, NULL), 0);
		k2 = ktap_text(r2);
		/* A run with no KTAP at all is noted in the first text only. */
		if (ks_ktap_root(p) && strcmp(k1, k2))
			fail_msg("%s: KTAP changes when written again:\n%s\n---\n%s", logs[i].name,
				 k1, k2);
		free(k1);
		free(k2);
		ks_report_free(r);
		ks_report_free(r2);
		ks_ktap_free(q);
		ks_ktap_free(p);
		free(logs[i].text);
	}
}

static void merged_runs(void **state)
{
	size_t len1, len2;
	char *gold = read_file(env_dir("KSCOPE_TEST_DATA"), "ktest_basic.ktap", &len1);
	char *fail = read_file(env_dir("KSCOPE_KTAP_CORPUS"), "test_is_test_passed-failure.log",
			       &len2);
	struct ks_ktap *a = ks_ktap_parse_buf(gold, len1), *b = ks_ktap_parse_buf(fail, len2), *q;
	struct ks_ktap *none = ks_ktap_parse_buf("no KTAP here\n", 13);
	struct ks_report *r = ks_report_new(NULL);
	struct ks_ktap_counts c, sum;
	char *k;
	json_t *j;

	(void)state;
	assert_int_equal(ks_report_add(r, a, "vm-a"), 0);
	assert_int_equal(ks_report_add(r, b, "vm-b"), 1);
	assert_int_equal(ks_report_add(r, none, "vm-c"), 2);
	ks_report_counts(r, &sum);
	assert_int_equal(sum.passed, 21 + 9);
	assert_int_equal(sum.failed, 22 + 2);  /* cases, and the not-ok suites over them */
	assert_int_equal(sum.errors, 1);
	assert_int_equal(ks_report_outcome(r), KS_KTAP_OUT_FAILURE);
	k = ktap_text(r);
	assert_non_null(strstr(k, "KTAP version 1\n# run 2 on vm-c: no KTAP output\n1..10\n"));
	assert_non_null(strstr(k, "    # Subtest: kt_pass\n    # vm: vm-a\n"));
	assert_non_null(strstr(k, "    # Subtest: example\n    # vm: vm-b\n"));
	assert_non_null(strstr(k, "\nnot ok 10 example\n"));
	q = ks_ktap_parse_buf(k, strlen(k));
	ks_ktap_counts(q, &c);
	same_counts("merged", &sum, &c);
	assert_int_equal(c.errors, 0);
	assert_string_equal(ks_ktap_attr(ks_ktap_root(q)->children[8], "vm"), "vm-b");
	write_junit(r);
	validate("merged");
	xpath_count("//testsuite", 10);
	xpath_is("string(//testsuite[@name='example']/@hostname)", "vm-b");
	xpath_is("string(/testsuites/@tests)", "55");
	j = load_json(r);
	assert_int_equal(json_array_size(jat(j, "runs")), 3);
	assert_string_equal(jstring(j, "runs.2.status"), "FAILURE_TO_PARSE_TESTS");
	assert_int_equal(json_array_size(jat(j, "suites")), 10);
	assert_int_equal(jint(j, "suites.9.run"), 1);
	assert_string_equal(jstring(j, "suites.9.vm"), "vm-b");
	json_decref(j);
	ks_ktap_free(q);
	free(k);
	ks_report_free(r);
	ks_ktap_free(a);
	ks_ktap_free(b);
	ks_ktap_free(none);
	free(gold);
	free(fail);
}

/* An extra names the case that crashed, and the KTAP says which it was. */
static void crashed_case_named(void **state)
{
	struct ks_ktap *p, *q;
	struct ks_report *r = nasty_report(&p);
	char *k = ktap_text(r);
	const struct ks_ktap_test *cut;

	(void)state;
	/* Console output goes back as a diagnostic, its control characters replaced. */
	assert_null(strstr(k, "\n    Oops:"));
	assert_non_null(strstr(k, "    # Oops: general protection fault\xef\xbf\xbd\n"
				  "    not ok 2 crashy_case # ERROR crashed: its result never "
				  "came\nnot ok 3 cut # ERROR crashed: its result never came\n"));
	q = ks_ktap_parse_buf(k, strlen(k));
	cut = ks_ktap_root(q)->children[2];
	assert_string_equal(cut->children[1]->name, "crashy_case");
	assert_int_equal(cut->children[1]->status, KS_KTAP_ERROR);
	assert_int_equal(cut->status, KS_KTAP_CRASHED);
	assert_string_equal(ks_ktap_attr(cut, "vm"), "vm-z");
	ks_ktap_free(q);
	free(k);
	ks_report_free(r);
	ks_ktap_free(p);
}

static void api(void **state)
{
	static const char log[] = "KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: s\n"
				  "  1..1\n    KTAP version 1\n    # Subtest: p\n    ok 1 x\n"
				  "  ok 1 p\nok 1 s\n";
	struct ks_ktap *p = ks_ktap_parse_buf(log, sizeof(log) - 1);
	struct ks_report *r = ks_report_new(NULL);
	struct ks_report_extra x = KS_REPORT_EXTRA_INIT;
	const struct ks_ktap_test *t;
	char path[64];
	json_t *j;

	(void)state;
	ks_report_free(NULL);
	assert_int_equal(ks_report_add(NULL, p, NULL), -EINVAL);
	assert_int_equal(ks_report_add(r, NULL, NULL), -EINVAL);
	assert_int_equal(ks_report_set_extra(r, 0, NULL, "x", &x), -EINVAL);
	assert_int_equal(ks_report_set_extra(r, 0, "s.p", "x", NULL), -EINVAL);
	assert_int_equal(ks_report_outcome(r), KS_KTAP_OUT_UNPARSED);
	assert_int_equal(ks_report_add(r, p, NULL), 0);
	t = ks_ktap_root(p)->children[0]->children[0]->children[0];
	assert_string_equal(t->name, "x");
	assert_int_equal(ks_report_path(t, path, sizeof(path)), 5);
	assert_string_equal(path, "s.p.x");
	assert_int_equal(ks_report_path(ks_ktap_root(p), path, sizeof(path)), 0);
	/* A later extra for the same key replaces the earlier one. */
	x.duration_ns = 5;
	x.log = "first";
	assert_int_equal(ks_report_set_extra(r, 0, "s.p", "x", &x), 0);
	x.duration_ns = 7;
	x.log = NULL;
	assert_int_equal(ks_report_set_extra(r, 0, "s.p", "x", &x), 0);
	j = ks_report_json(r);
	assert_non_null(j);
	assert_string_equal(jstring(j, "suites.0.suites.0.cases.0.name"), "x");
	assert_int_equal(jint(j, "suites.0.suites.0.cases.0.duration_ns"), 7);
	assert_true(json_is_null(jat(j, "suites.0.suites.0.cases.0.log")));
	json_decref(j);
	ks_report_free(r);
	ks_ktap_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(xsd_rejects),
		cmocka_unit_test(junit_validates),
		cmocka_unit_test(junit_escapes_and_extras),
		cmocka_unit_test(json_nasty),
		cmocka_unit_test(json_golden),
		cmocka_unit_test(ktap_round_trip),
		cmocka_unit_test(merged_runs),
		cmocka_unit_test(crashed_case_named),
		cmocka_unit_test(api),
	};

	return cmocka_run_group_tests_name("report", tests, setup, teardown);
}
