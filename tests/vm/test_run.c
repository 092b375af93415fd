/* test_run.c: `kscope run` on the demo kernel's tests and misbehaving examples, run as a user would. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "kscope_run.h"
#include "vmboot.h"

struct fx {
	char dir[64];        /* this test's scratch: rundir/, logs/, reports */
	char rundir[96];
	char logs[96];
	char path[160];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/krun-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->rundir, sizeof(f->rundir), "%s/rd", f->dir);
	snprintf(f->logs, sizeof(f->logs), "%s/logs", f->dir);
	setenv("KSCOPE_RUNDIR", f->rundir, 1);
	*state = f;
	return 0;
}

/* Nothing of a run may be left: no process mentioning its runtime base, no VM directory in
 * it, no RAM file in /dev/shm named after this process's VMs. */
static int teardown(void **state)
{
	struct fx *f = *state;
	DIR *d = opendir(f->rundir);
	struct dirent *e;
	int rc = 0;
	char cmd[128];

	for (int i = 0; i < 200 && process_mentioning(f->rundir) > 0; i++)
		sleep_ms(10);
	if (process_mentioning(f->rundir) > 0) {
		fprintf(stderr, "# a process of this test was left\n");
		rc = -1;
	}
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			fprintf(stderr, "# left in the runtime base: %s\n", e->d_name);
			rc = -1;
		}
	if (d)
		closedir(d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	rc |= system(cmd);
	unsetenv("KSCOPE_RUNDIR");
	free(f);
	return rc ? -1 : 0;
}

static void need_qemu(void)
{
	if (!vm_have_qemu())
		skip(); /* the only reason a VM test may skip */
}

/* `kscope run --accel tcg --cpus 2 --plain --log-dir LOGS ARGS...`; returns the status. */
static int run(struct fx *f, struct kres *r, const char *const *extra)
{
	const char *args[48] = { "run", "--accel", "tcg", "--cpus", "2", "--plain", "--log-dir",
				 f->logs };
	int n = 8;

	for (int i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	return kscope_argv(r, args);
}

static void has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("no '%s' in:\n%s", needle, text);
}

static json_t *load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);

	if (!j)
		fail_msg("%s: not JSON: %s", path, je.text);
	return j;
}

/* The kscope_run.tests entry of suite.case in a --json report, or fail. */
static json_t *test_of(json_t *report, const char *suite, const char *kcase)
{
	size_t i;
	json_t *t;

	json_array_foreach(json_object_get(json_object_get(report, "kscope_run"), "tests"), i, t)
		if (!strcmp(json_string_value(json_object_get(t, "suite")), suite) &&
		    !strcmp(json_string_value(json_object_get(t, "case")), kcase))
			return t;
	fail_msg("no %s.%s in the report", suite, kcase);
	return NULL;
}

/* Round 1's result of suite.case. */
static json_t *result_of(json_t *report, const char *suite, const char *kcase)
{
	return json_array_get(json_object_get(test_of(report, suite, kcase), "results"), 0);
}

static const char *status_of(json_t *report, const char *suite, const char *kcase)
{
	return json_string_value(json_object_get(result_of(report, suite, kcase), "status"));
}

/* "suite.case=STATUS;" for every test of a report, in the report's order. */
static char *statuses(json_t *report)
{
	char *out = calloc(1, 16384);
	size_t i;
	json_t *t;

	json_array_foreach(json_object_get(json_object_get(report, "kscope_run"), "tests"), i, t)
		snprintf(out + strlen(out), 16384 - strlen(out), "%s.%s=%s;",
			 json_string_value(json_object_get(t, "suite")),
			 json_string_value(json_object_get(t, "case")),
			 json_string_value(json_object_get(json_array_get(
				 json_object_get(t, "results"), 0), "status")));
	return out;
}

static const char *path(struct fx *f, const char *name)
{
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	return f->path;
}

/* ---- the README's examples ---- */

/* A time: digits and a point, then " ms", " s" or the "]" of a console timestamp. */
static size_t time_len(const char *s)
{
	size_t n = strspn(s, "0123456789.");

	if (!n || !isdigit((unsigned char)*s))
		return 0;
	return !strncmp(s + n, " ms", 3) || !strncmp(s + n, " s", 2) || s[n] == ']' ? n : 0;
}

/* Times, addresses, counts of console lines and the accelerator as wildcards: what varies
 * between runs and builds. Other numbers stay as they are. */
static void shape(const char *in, char *out, size_t size)
{
	size_t o = 0, hex, t;

	while (*in && o + 8 < size) {
		hex = strspn(in, "0123456789abcdef");
		if (!strncmp(in, "0x", 2) && strspn(in + 2, "0123456789abcdef")) {
			in += 2 + strspn(in + 2, "0123456789abcdef");
			out[o++] = 'H';
		} else if (hex >= 8 && strcspn(in, "0123456789") < hex) {
			in += hex;
			out[o++] = 'H';
		} else if ((t = time_len(in))) {
			in += t;
			out[o++] = 'T';
		} else if (!strncmp(in, "(last ", 6) && isdigit((unsigned char)in[6])) {
			in += 6 + strspn(in + 6, "0123456789");
			o += (size_t)snprintf(out + o, size - o, "(last N");
		} else if (!strncmp(in, "tcg", 3) || !strncmp(in, "kvm", 3)) {
			in += 3;
			o += (size_t)snprintf(out + o, size - o, "ACCEL");
		} else {
			out[o++] = *in++;
		}
	}
	out[o] = 0;
}

/* The fenced block of README.md after the line that holds marker. */
static char *readme_block(const char *marker)
{
	char path[512], *text = NULL, *at, *start, *end;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/README.md", getenv("KSCOPE_SOURCE_ROOT"));
	assert_non_null(f = fopen(path, "r"));
	assert_true(getdelim(&text, &len, 0, f) > 0);
	fclose(f);
	assert_non_null(at = strstr(text, marker));
	assert_non_null(start = strstr(at, "```\n"));
	start += 4;
	assert_non_null(end = strstr(start, "```"));
	memmove(text, start, (size_t)(end - start));
	text[end - start] = 0;
	return text;
}

/* Every line of the README block (but "..." ones) is a line of out, in shape. */
static void readme_holds(const char *marker, const char *out)
{
	char *block = readme_block(marker), *save = NULL, want[512], got[512];

	for (char *l = strtok_r(block, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		bool found = false;

		if (strstr(l, "..."))
			continue;
		shape(l, want, sizeof(want));
		for (const char *o = out; *o && !found;) {
			const char *nl = strchr(o, '\n');
			char line[512];

			snprintf(line, sizeof(line), "%.*s", nl ? (int)(nl - o) : (int)strlen(o), o);
			shape(line, got, sizeof(got));
			found = !strcmp(got, want);
			o = nl ? nl + 1 : o + strlen(o);
		}
		if (!found)
			fail_msg("README line no longer true: '%s'\noutput:\n%s", l, out);
	}
	free(block);
}

/* ---- tests ---- */

/* With no KERNEL, the demo kernel's default suites: what `make run` shows. */
static void default_suites_pass(void **state)
{
	struct fx *f = *state;
	struct kres r;
	char log[128];

	need_qemu();
	if (run(f, &r, NULL) != 0)
		fail_msg("status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
	has(r.out, "kscope-demo.elf: ");
	has(r.out, "ok      string ");
	has(r.out, "ok      syscall ");
	has(r.out, "Testing complete. Ran ");
	has(r.out, "kscope run: PASSED in ");
	has(r.out, "console logs: ");
	snprintf(log, sizeof(log), "%s/vm1.log", f->logs);
	assert_int_equal(access(log, R_OK), 0);
	kres_free(&r);
}

/* An EXPECT and an ASSERT failure: file:line, the expression and its value (README). */
static void failures_name_file_line_and_values(void **state)
{
	struct fx *f = *state;
	struct kres r;

	need_qemu();
	assert_int_equal(run(f, &r, (const char *const[]){ "--filter", "example_fail", "--jobs",
			 "1", "--json", path(f, "r.json"), NULL }), 1);
	has(r.out, "FAIL     example_fail.expect_fail  (vm1, ");
	has(r.out, "    why: EXPECTATION FAILED at ../kernel/demo/examples.c:15\n");
	has(r.out, "    # Expected 1 + 1 == 3, but\n    #     1 + 1 == 2 (0x2)\n");
	has(r.out, "FAIL     example_fail.assert_fail  (vm1, ");
	has(r.out, "    why: ASSERTION FAILED at ../kernel/demo/examples.c:21\n");
	has(r.out, "    # Expected v == 0, but\n    #     v == 1 (0x1)\n");
	has(r.out, "kscope run: FAILED in ");
	json_t *j = load_json(path(f, "r.json"));
	json_t *x = result_of(j, "example_fail", "expect_fail");
	readme_holds("An EXPECT and an ASSERT failure", r.out);
	assert_string_equal(json_string_value(json_object_get(x, "fail_at")),
			    "../kernel/demo/examples.c:15");
	assert_string_equal(json_string_value(json_object_get(x, "source")), "ktap");
	json_decref(j);
	kres_free(&r);
}

/* A page fault, a triple fault and a hang each mark exactly the guilty test; every other
 * test still runs, before and after them. */
static void crashes_mark_exactly_the_guilty_test(void **state)
{
	struct fx *f = *state;
	struct kres r;
	struct kres clean;

	need_qemu();
	assert_int_equal(run(f, &clean, (const char *const[]){ "--filter", "palloc",
			 "--filter", "serial", "--filter", "example_magic", "--json",
			 path(f, "clean.json"), NULL }), 0);
	assert_int_equal(run(f, &r, (const char *const[]){ "--filter", "palloc", "--filter",
			 "example_crash", "--filter", "serial", "--filter", "example_magic",
			 "--test-timeout", "2", "--json", path(f, "r.json"), NULL }), 1);
	json_t *j = load_json(path(f, "r.json")), *c = load_json(path(f, "clean.json"));
	assert_string_equal(status_of(j, "example_crash", "page_fault"), "CRASHED");
	assert_string_equal(status_of(j, "example_crash", "triple_fault"), "CRASHED");
	assert_string_equal(status_of(j, "example_crash", "hang"), "TIMEOUT");
	/* The others, example_magic after the crashes too, as in a run without them. */
	char *all = statuses(j), *clean_all = statuses(c);
	char *cut = strstr(all, "example_crash.page_fault"), *after = strstr(all, "example_magic.");
	assert_non_null(cut);
	assert_non_null(after);
	memmove(cut, after, strlen(after) + 1);
	assert_string_equal(all, clean_all);
	/* Each with a dump: registers of every vCPU, a symbolized backtrace ending in the test. */
	static const char *const guilty[][2] = { { "page_fault", "<page_fault" },
						 { "triple_fault", "<triple_fault+" },
						 { "hang", "<hang+" } };
	for (int i = 0; i < 3; i++) {
		const char *why = json_string_value(json_object_get(result_of(j, "example_crash",
							guilty[i][0]), "reason"));
		assert_non_null(why);
		has(r.out, guilty[i][1]);
	}
	has(r.out, "why: the kernel panicked (pvpanic)");
	has(r.out, "why: triple fault (the CPU reset itself)");
	has(r.out, "why: no progress for 2.0 s (--test-timeout)");
	has(r.out, "cpu1:");
	has(r.out, "cpu0 backtrace:");
	has(r.out, "last events:");
	has(r.out, "console (last ");
	free(all);
	free(clean_all);
	json_decref(j);
	json_decref(c);
	kres_free(&r);
	kres_free(&clean);
}

/*
 * example_destructive.break_timer stops the APIC timer for good. The shuffle with seed 2 runs
 * it before the irq suite, in one VM: left among the others it breaks irq.timer_ticks_advance;
 * run from the READY snapshot (restored after it) or in a boot of its own, it changes
 * nothing.
 */
static void destructive_test_changes_nothing_after_it(void **state)
{
	static const char *const modes[] = { "none", "snapshot", "reboot" };
	struct fx *f = *state;

	need_qemu();
	for (int i = 0; i < 3; i++) {
		struct kres r;
		int st = run(f, &r, (const char *const[]){ "--filter", "example_destructive",
			     "--filter", "irq", "--shuffle=2", "--jobs", "1", "--isolate", modes[i],
			     "--json",
			     path(f, "r.json"), NULL });
		json_t *j = load_json(path(f, "r.json"));
		json_t *kr = json_object_get(j, "kscope_run");

		assert_string_equal(status_of(j, "example_destructive", "break_timer"), "PASS");
		assert_string_equal(status_of(j, "irq", "timer_ticks_advance"),
				    i == 0 ? "FAIL" : "PASS");
		assert_int_equal(st, i == 0 ? 1 : 0);
		has(r.out, "kscope run: shuffle seed 2 ");
		/* One boot: a restore that failed would boot again, and pass as well. */
		if (i == 1) {
			assert_true(json_integer_value(json_object_get(kr, "restores")) >= 1);
			assert_int_equal(json_integer_value(json_object_get(kr, "boots")), 1);
			assert_null(strstr(r.out, "cannot restore"));
		}
		if (i == 2)
			assert_int_equal(json_integer_value(json_object_get(kr, "boots")), 2);
		json_decref(j);
		kres_free(&r);
	}
}

/* VMs share the suites; the results and their order are those of one VM. */
static void two_jobs_same_results(void **state)
{
	const char *const filters[] = { "--filter", "string", "--filter", "palloc", "--filter",
					"paging", "--filter", "irq", "--filter", "example_fail",
					"--filter", "serial" };
	struct fx *f = *state;
	char *got[2];

	need_qemu();
	for (int jobs = 1; jobs <= 2; jobs++) {
		const char *args[24];
		struct kres r;
		int n = 0;

		for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
			args[n++] = filters[i];
		args[n++] = "--jobs";
		args[n++] = jobs == 1 ? "1" : "2";
		args[n++] = "--json";
		args[n++] = path(f, "r.json");
		args[n] = NULL;
		assert_int_equal(run(f, &r, args), 1);
		json_t *j = load_json(path(f, "r.json"));
		got[jobs - 1] = statuses(j);
		if (jobs == 2)
			has(r.out, "(2 VMs, ");
		json_decref(j);
		kres_free(&r);
	}
	assert_string_equal(got[0], got[1]);
	has(got[0], "string.memcpy_alignments=PASS;");
	has(got[0], "example_fail.expect_fail=FAIL;");
	free(got[0]);
	free(got[1]);
}

/* The console silent (no serial port): the results come from kt_state alone. */
static void silent_console_results_from_kt_state(void **state)
{
	struct fx *f = *state;
	struct kres r;

	need_qemu();
	assert_int_equal(run(f, &r, (const char *const[]){ "--serial", "0", "--filter",
			 "example_fail", "--filter", "string.memc*", "--json",
			 path(f, "r.json"), NULL }), 1);
	json_t *j = load_json(path(f, "r.json"));
	json_t *x = result_of(j, "example_fail", "assert_fail");
	assert_string_equal(json_string_value(json_object_get(x, "status")), "FAIL");
	assert_string_equal(json_string_value(json_object_get(x, "source")), "kt_state");
	assert_string_equal(json_string_value(json_object_get(x, "fail_at")),
			    "../kernel/demo/examples.c:21");
	assert_string_equal(status_of(j, "string", "memcpy_alignments"), "PASS");
	has(r.out, "(no KTAP result on the console: taken from kt_state)");
	json_decref(j);
	kres_free(&r);
}

/* A kernel that starts and prints nothing: `cli; hlt` forever, a PVH ELF of 200 bytes. */
static void write_silent_kernel(const char *file)
{
	unsigned char img[256] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	const uint64_t base = 0x100000, note = 64 + 2 * 56, code = note + 20;
	FILE *f;

#define LE(p, v, n) for (int _i = 0; _i < (n); _i++) (p)[_i] = (unsigned char)((uint64_t)(v) >> (8 * _i))
	LE(img + 16, 2, 2);               /* ET_EXEC */
	LE(img + 18, 62, 2);              /* EM_X86_64 */
	LE(img + 20, 1, 4);
	LE(img + 24, base + code, 8);     /* entry */
	LE(img + 32, 64, 8);              /* phoff */
	LE(img + 52, 64, 2);
	LE(img + 54, 56, 2);
	LE(img + 56, 2, 2);               /* PT_LOAD, PT_NOTE */
	for (int i = 0; i < 2; i++) {
		unsigned char *p = img + 64 + 56 * i;

		LE(p, i ? 4 : 1, 4);
		LE(p + 4, i ? 4 : 7, 4);
		LE(p + 8, i ? note : 0, 8);
		LE(p + 16, base + (i ? note : 0), 8);
		LE(p + 24, base + (i ? note : 0), 8);
		LE(p + 32, i ? 20 : code + 4, 8);
		LE(p + 40, i ? 20 : code + 4, 8);
		LE(p + 48, i ? 4 : 0x1000, 8);
	}
	LE(img + note, 4, 4);
	LE(img + note + 4, 4, 4);
	LE(img + note + 8, 18, 4);        /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(img + note + 12, "Xen", 4);
	LE(img + note + 16, base + code, 4);
#undef LE
	memcpy(img + code, "\xfa\xf4\xeb\xfd", 4);  /* 1: cli; hlt; jmp 1b */
	assert_non_null(f = fopen(file, "wb"));
	assert_int_equal(fwrite(img, 1, code + 4, f), code + 4);
	fclose(f);
}

/* Nothing on the console: exit 2 and a message, within the timeout. */
static void kernel_that_prints_nothing(void **state)
{
	struct fx *f = *state;
	char floor[512], *dir;
	struct kres r;
	struct timespec a, b;

	need_qemu();
	write_silent_kernel(path(f, "silent.elf"));
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(run(f, &r, (const char *const[]){ path(f, "silent.elf"), "--timeout",
			 "3", NULL }), 2);
	clock_gettime(CLOCK_MONOTONIC, &b);
	has(r.err, "kscope run: no KTAP output from the kernel within 3 s\n");
	assert_true(b.tv_sec - a.tv_sec < 8);
	kres_free(&r);
	/* One that exits at once (the boot-time floor). */
	snprintf(floor, sizeof(floor), "%s", vm_demo_kernel());
	dir = dirname(floor);
	snprintf(f->path, sizeof(f->path), "%s/kscope-floor.elf", dir);
	assert_int_equal(run(f, &r, (const char *const[]){ f->path, NULL }), 2);
	has(r.err, "kscope run: no KTAP output from the kernel (the guest exited with code 0x10)");
	kres_free(&r);
}

/* The README's dump, from the command it names. */
static void readme_dump(void **state)
{
	struct fx *f = *state;
	struct kres r;

	need_qemu();
	assert_int_equal(kscope(&r, "run", "--filter", "example_crash.hang", "--test-timeout", "3",
				"--cpus", "1", "--jobs", "1", "--plain", "--log-dir", f->logs, "--accel",
				"tcg", NULL), 1);
	readme_holds("A test that crashed or hung comes with a dump", r.out);
	kres_free(&r);
}

static void list_and_repeat(void **state)
{
	struct fx *f = *state;
	struct kres r;

	need_qemu();
	assert_int_equal(run(f, &r, (const char *const[]){ "--list", "--filter", "example_crash",
			 "--filter", "example_destructive", NULL }), 0);
	assert_string_equal(r.out, "example_crash.page_fault  # opt-in\n"
			    "example_crash.triple_fault  # opt-in\n"
			    "example_crash.hang  # opt-in\n"
			    "example_destructive.break_timer  # destructive  # opt-in\n"
			    "4 tests in 2 suites\n");
	kres_free(&r);
	assert_int_equal(run(f, &r, (const char *const[]){ "--filter", "string.memc*",
			 "--repeat", "3", "--jobs", "2", "--json", path(f, "r.json"), NULL }), 0);
	has(r.out, "(round 3 of 3)");
	json_t *j = load_json(path(f, "r.json"));
	json_t *t = test_of(j, "string", "memcpy_alignments");
	assert_int_equal(json_array_size(json_object_get(t, "results")), 3);
	assert_false(json_is_true(json_object_get(t, "flaky")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "kscope_run"),
							    "rounds")), 3);
	json_decref(j);
	kres_free(&r);
}

/* The run's own deadline: the test running then is TIMEOUT, those after it NOTRUN. */
static void run_timeout(void **state)
{
	struct fx *f = *state;
	struct kres r;

	need_qemu();
	assert_int_equal(run(f, &r, (const char *const[]){ "--filter", "example_crash.hang",
			 "--filter", "example_magic", "--timeout", "1.5", "--jobs", "1", "--json",
			 path(f, "r.json"), NULL }), 1);
	json_t *j = load_json(path(f, "r.json"));
	json_t *x = result_of(j, "example_crash", "hang");
	assert_string_equal(json_string_value(json_object_get(x, "status")), "TIMEOUT");
	assert_string_equal(json_string_value(json_object_get(x, "reason")),
			    "the run's --timeout of 1.5 s passed");
	assert_string_equal(status_of(j, "example_magic", "many_messages"), "NOTRUN");
	has(r.out, "NOT RUN  1 test: the run's --timeout of 1.5 s passed");
	json_decref(j);
	kres_free(&r);
}

static void usage_errors(void **state)
{
	static const struct { const char *args[6]; const char *err; } cases[] = {
		{ { "--jobs", "0" }, "kscope run: --jobs: expected a number from 1 to 64 (got '0')" },
		{ { "--bogus" }, "kscope run: unknown option '--bogus'" },
		{ { "--isolate", "maybe" }, "kscope run: --isolate: snapshot, reboot or none" },
		{ { "--shuffle=x" }, "kscope run: --shuffle=SEED: SEED is a number above 0" },
		{ { "--list=1" }, "kscope run: --list=1 takes no value" },
		{ { "--cpus", "0" }, "kscope run: cpus: must be at least 1 (got 0)" },
		{ { "/etc/passwd" }, "kscope run: kernel: /etc/passwd: not a kernel image" },
		{ { "a", "b" }, "kscope run: one KERNEL only (got 'b' too)" },
		{ { "--qemu", "/nonexistent/qemu" }, "kscope run: qemu: /nonexistent/qemu: no such "
		  "file" },
	};
	struct fx *f = *state;
	struct kres r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(run(f, &r, cases[i].args), 2);
		has(r.err, cases[i].err);
		kres_free(&r);
	}
	assert_int_equal(kscope(&r, "run", "--help", NULL), 0);
	has(r.out, "usage: kscope run [KERNEL]");
	kres_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(default_suites_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(failures_name_file_line_and_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(crashes_mark_exactly_the_guilty_test, setup,
						teardown),
		cmocka_unit_test_setup_teardown(destructive_test_changes_nothing_after_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(two_jobs_same_results, setup, teardown),
		cmocka_unit_test_setup_teardown(silent_console_results_from_kt_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(kernel_that_prints_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(readme_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(list_and_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(run_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(usage_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
