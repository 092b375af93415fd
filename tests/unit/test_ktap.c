/* test_ktap.c: the KTAP parser against kunit_tool's corpus table, the kt_ golden output, any chunking, garbage, cut-off logs and callbacks. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/ktap.h>

#include "../vm/ktap_check.h"

/* ---- helpers ---- */

static char *read_file(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

static const char *env_dir(const char *var)
{
	const char *d = getenv(var);

	if (!d || !*d)
		fail_msg("%s is not set (meson sets it)", var);
	return d;
}

static void sig_node(FILE *f, const struct ks_ktap_test *t, bool logs)
{
	fprintf(f, "%*s%u '%s' %s '%s' '%s' plan=%ld counted=%d result=%d [%u %u %u %u %u]\n",
		(int)t->depth * 2, "", t->number, t->name, ks_ktap_status_name(t->status),
		t->directive, t->reason, t->plan, t->counted, t->has_result, t->counts.passed,
		t->counts.failed, t->counts.crashed, t->counts.skipped, t->counts.errors);
	for (size_t i = 0; i < t->nattrs; i++)
		fprintf(f, "%*s  @%s=%s\n", (int)t->depth * 2, "", t->attrs[i].key,
			t->attrs[i].value);
	for (size_t i = 0; logs && i < t->nlog; i++)
		fprintf(f, "%*s  | %s\n", (int)t->depth * 2, "", t->log[i]);
	for (size_t i = 0; i < t->nchildren; i++)
		sig_node(f, t->children[i], logs);
}

/* Everything the parser found, as text; logs and line numbers only when asked. */
static char *signature(const struct ks_ktap *p, bool logs)
{
	struct ks_ktap_counts c;
	const struct ks_ktap_error *e;
	char *s = NULL;
	size_t n = 0, ne;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	ks_ktap_counts(p, &c);
	fprintf(f, "%s %u/%u/%u/%u/%u\n", ks_ktap_outcome_name(ks_ktap_outcome(p)), c.passed,
		c.failed, c.crashed, c.skipped, c.errors);
	if (ks_ktap_root(p))
		sig_node(f, ks_ktap_root(p), logs);
	e = ks_ktap_errors(p, &ne);
	for (size_t i = 0; i < ne; i++)
		fprintf(f, "E %s: %s\n", e[i].test, e[i].msg);
	fclose(f);
	return s;
}

enum feed { WHOLE, BYTES, CHUNKS };

static struct ks_ktap *parse(const char *buf, size_t len, enum feed how, unsigned seed)
{
	struct ks_ktap *p = ks_ktap_new();

	assert_non_null(p);
	srand(seed);
	for (size_t at = 0; at < len;) {
		size_t n = how == WHOLE ? len : how == BYTES ? 1 : 1 + (size_t)rand() % 97;

		if (n > len - at)
			n = len - at;
		assert_int_equal(ks_ktap_feed(p, buf + at, n), 0);
		at += n;
	}
	assert_int_equal(ks_ktap_finish(p), 0);
	return p;
}

static const struct ks_ktap_test *child(const struct ks_ktap_test *t, size_t i)
{
	assert_non_null(t);
	if (i >= t->nchildren)
		fail_msg("'%s' has %zu children, no [%zu]", t->name, t->nchildren, i);
	return t->children[i];
}

/* ---- the corpus table ---- */

static const char *const columns[] = { "passed", "failed", "crashed", "skipped", "errors" };

static void check_count(const char *file, const char *col, const char *want, unsigned got)
{
	if (!strcmp(want, "-"))
		return;
	if (!strncmp(want, ">=", 2)) {
		if (got < strtoul(want + 2, NULL, 10))
			fail_msg("%s: %s %u, want %s", file, col, got, want);
	} else if (got != strtoul(want, NULL, 10)) {
		fail_msg("%s: %s %u, want %s", file, col, got, want);
	}
}

/* "subtests[N].name=NAME" in the notes: the top-level test N has that name. */
static void check_names(const struct ks_ktap *p, const char *file, const char *notes)
{
	for (const char *s = notes; (s = strstr(s, "subtests[")); s++) {
		char *end;
		unsigned long i = strtoul(s + 9, &end, 10);
		size_t n;

		if (strncmp(end, "].name=", 7))
			continue;
		end += 7;
		n = strcspn(end, ",; \t");
		if (strncmp(child(ks_ktap_root(p), i)->name, end, n) ||
		    child(ks_ktap_root(p), i)->name[n])
			fail_msg("%s: subtests[%lu] is '%s', want '%.*s'", file, i,
				 child(ks_ktap_root(p), i)->name, (int)n, end);
	}
}

static void check_row(const char *dir, char **f)
{
	size_t len;
	char *log = read_file(dir, f[0], &len);
	struct ks_ktap *p = parse(log, len, WHOLE, 0);
	struct ks_ktap_counts c;
	unsigned got[5];
	char *whole = signature(p, true);

	ks_ktap_counts(p, &c);
	got[0] = c.passed, got[1] = c.failed, got[2] = c.crashed, got[3] = c.skipped;
	got[4] = c.errors;
	if (strcmp(f[1], "-") && strcmp(f[1], ks_ktap_outcome_name(ks_ktap_outcome(p))))
		fail_msg("%s: status %s, want %s", f[0], ks_ktap_outcome_name(ks_ktap_outcome(p)),
			 f[1]);
	for (int i = 0; i < 5; i++)
		check_count(f[0], columns[i], f[2 + i], got[i]);
	check_names(p, f[0], f[7]);
	/* However the bytes arrive, the same tree, logs included. */
	for (enum feed how = BYTES; how <= CHUNKS; how++) {
		for (unsigned seed = 1; seed <= (how == CHUNKS ? 5u : 1u); seed++) {
			struct ks_ktap *q = parse(log, len, how, seed);
			char *s = signature(q, true);

			if (strcmp(s, whole))
				fail_msg("%s: fed in pieces (%d/%u):\n%s\nwhole:\n%s", f[0], how,
					 seed, s, whole);
			free(s);
			ks_ktap_free(q);
		}
	}
	free(whole);
	ks_ktap_free(p);
	free(log);
}

static void corpus_table(void **state)
{
	const char *dir = env_dir("KSCOPE_KTAP_CORPUS");
	size_t len, rows = 0;
	char *tsv = read_file(dir, "expected.tsv", &len), *save = NULL;

	(void)state;
	for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[8] = { 0 }, *s2 = NULL;
		int n = 0;

		if (!strncmp(line, "file\t", 5))
			continue;
		for (char *t = strtok_r(line, "\t", &s2); t && n < 8; t = strtok_r(NULL, "\t", &s2))
			f[n++] = t;
		if (n < 7)
			fail_msg("expected.tsv: short row '%s'", line);
		if (!f[7])
			f[7] = "";
		check_row(dir, f);
		rows++;
	}
	print_message("# %zu rows of expected.tsv checked\n", rows);
	assert_true(rows >= 20);
	free(tsv);
}

/* A corpus log, parsed whole. */
static struct ks_ktap *corpus_log(const char *name)
{
	size_t len;
	char *log = read_file(env_dir("KSCOPE_KTAP_CORPUS"), name, &len);
	struct ks_ktap *p = parse(log, len, WHOLE, 0);

	free(log);
	return p;
}

/* What kunit_tool's own tests assert about the trees, beyond the table's columns. */
static void trees_nested(void **state)
{
	struct ks_ktap *p = corpus_log("test_is_test_passed-failure-nested.log");
	const struct ks_ktap_test *r = ks_ktap_root(p), *t;

	(void)state;
	assert_int_equal(child(r, 0)->status, KS_KTAP_FAIL);
	assert_int_equal(child(child(r, 0), 0)->status, KS_KTAP_PASS);
	assert_int_equal(child(r, 1)->status, KS_KTAP_FAIL);
	assert_int_equal(child(child(r, 1), 0)->status, KS_KTAP_FAIL);
	assert_string_equal(child(r, 0)->name, "subtest 1");
	ks_ktap_free(p);

	p = corpus_log("test_is_test_passed-all_passed_nested.log");
	t = child(child(child(ks_ktap_root(p), 0), 1), 0);
	assert_string_equal(t->name, "example_simple_test");
	assert_int_equal(t->status, KS_KTAP_PASS);
	ks_ktap_free(p);

	p = corpus_log("test_parse_attributes.log");
	t = child(ks_ktap_root(p), 0);
	assert_string_equal(ks_ktap_attr(t, "module"), "example");
	assert_null(ks_ktap_attr(t, "test.speed"));
	assert_string_equal(ks_ktap_attr(child(t, 0), "test.speed"), "slow");
	assert_string_equal(t->log[t->nlog - 1], "  # module: example");
	ks_ktap_free(p);
}

static void trees_missing_and_skipped(void **state)
{
	struct ks_ktap *p = corpus_log("test_is_test_passed-no_tests_no_plan.log");
	const struct ks_ktap_test *t = child(child(ks_ktap_root(p), 0), 0);

	(void)state;
	assert_string_equal(t->name, "case");
	assert_int_equal(t->status, KS_KTAP_NO_TESTS);
	assert_int_equal(t->nchildren, 0);
	ks_ktap_free(p);

	p = corpus_log("test_kernel_panic_interrupt.log");
	t = child(child(ks_ktap_root(p), 2), 1);
	assert_string_equal(t->name, "");
	assert_int_equal(t->number, 2);
	assert_int_equal(t->status, KS_KTAP_CRASHED);
	assert_false(t->has_result);
	ks_ktap_free(p);

	p = corpus_log("test_skip_tests.log");
	t = child(child(ks_ktap_root(p), 1), 1);
	assert_string_equal(t->name, "example_skip_test");
	assert_int_equal(t->status, KS_KTAP_SKIP);
	assert_string_equal(t->reason, "this test should be skipped");
	ks_ktap_free(p);
}

static void trees_logs(void **state)
{
	struct ks_ktap *p = corpus_log("test_is_test_passed-failure.log");
	const struct ks_ktap_test *t = child(child(ks_ktap_root(p), 1), 0);

	(void)state;
	assert_string_equal(t->name, "example_simple_test");
	assert_int_equal(t->status, KS_KTAP_FAIL);
	assert_int_equal(t->nlog, 7);
	assert_string_equal(t->log[0], "init_suite");
	assert_string_equal(t->log[2], "\t# example_simple_test: EXPECTATION FAILED at "
			    "lib/kunit/example-test.c:30");
	ks_ktap_free(p);

	/* Stray lines with '#' are kept, with the prefix gone. */
	p = corpus_log("test_pound_sign.log");
	t = child(child(ks_ktap_root(p), 0), 3);
	assert_string_equal(t->log[0], " foo bar \t#");
	t = child(ks_ktap_root(p), 1);
	assert_string_equal(t->log[0], " foo bar \t# non-kunit output");
	ks_ktap_free(p);
}

/* ---- the kt_ golden output ---- */

/* A parent's "# name: pass:P fail:F skip:S total:T" agrees with its children's results. */
static void check_kt_tally(const struct ks_ktap_test *t, unsigned tot[4])
{
	unsigned pass = 0, fail = 0, skip = 0, p, f, s, n;
	char want[128];
	bool found = false;

	for (size_t i = 0; i < t->nchildren; i++) {
		enum ks_ktap_status st = t->children[i]->status;

		pass += st == KS_KTAP_PASS;
		fail += st == KS_KTAP_FAIL;
		skip += st == KS_KTAP_SKIP;
		if (t->children[i]->nchildren)
			check_kt_tally(t->children[i], NULL);
	}
	snprintf(want, sizeof(want), "# %s: pass:%%u fail:%%u skip:%%u total:%%u", t->name);
	for (size_t i = 0; i < t->nlog && !found; i++) {
		const char *l = t->log[i] + strspn(t->log[i], " ");

		found = sscanf(l, want, &p, &f, &s, &n) == 4;
	}
	if (!found)
		fail_msg("%s: no tally line", t->name);
	assert_int_equal(p, pass);
	assert_int_equal(f, fail);
	assert_int_equal(s, skip);
	assert_int_equal(n, t->nchildren);
	if (tot) {
		tot[0] += pass, tot[1] += fail, tot[2] += skip, tot[3] += n;
	}
}

static void kt_golden(void **state)
{
	size_t len;
	char *log = read_file(env_dir("KSCOPE_TEST_DATA"), "ktest_basic.ktap", &len);
	struct ks_ktap *p = parse(log, len, WHOLE, 0);
	const struct ks_ktap_test *r = ks_ktap_root(p), *t;
	struct ks_ktap_counts c;
	unsigned tot[4] = { 0 }, want[4];
	struct kc_run *kc = calloc(1, sizeof(*kc));

	(void)state;
	ks_ktap_counts(p, &c);
	assert_int_equal(ks_ktap_outcome(p), KS_KTAP_OUT_FAILURE);
	assert_int_equal(c.passed, 21);
	/* 17 failing cases, and the 5 suites they fail count a failure each. */
	assert_int_equal(c.failed, 22);
	assert_int_equal(c.crashed, 0);
	assert_int_equal(c.skipped, 7);
	assert_int_equal(c.errors, 0);
	assert_int_equal(r->nchildren, 8);
	/* kt_ tallies a parameterized case once; its totals line must agree with the tree. */
	for (size_t i = 0; i < r->nchildren; i++)
		check_kt_tally(r->children[i], tot);
	assert_int_equal(sscanf(strstr(log, "# Totals:"),
				"# Totals: pass:%u fail:%u skip:%u total:%u", &want[0], &want[1],
				&want[2], &want[3]), 4);
	assert_memory_equal(tot, want, sizeof(tot));
	t = child(r, 6);
	assert_string_equal(t->name, "kt_wipe");
	assert_string_equal(ks_ktap_attr(t, "destructive"), "true");
	assert_string_equal(ks_ktap_attr(child(child(r, 5), 1), "destructive"), "true");
	assert_null(ks_ktap_attr(child(child(r, 5), 0), "destructive"));
	assert_int_equal(child(r, 0)->nattrs + child(child(r, 1), 0)->nattrs, 0);
	assert_string_equal(child(child(r, 2), 2)->reason, "not supported on this machine");
	/* The VM tests' strict checker reads the same suites and results. */
	assert_non_null(kc);
	assert_true(kc_check(log, kc));
	assert_int_equal(kc->nsuites, (int)r->nchildren);
	for (int s = 0; s < kc->nsuites; s++) {
		t = child(r, (size_t)s);
		assert_string_equal(kc->suites[s].name, t->name);
		assert_int_equal(kc->suites[s].ncases, (int)t->nchildren);
		for (int k = 0; k < kc->suites[s].ncases; k++) {
			const struct ks_ktap_test *ct = child(t, (size_t)k);
			enum kc_result kr = kc->suites[s].cases[k].result;

			assert_string_equal(kc->suites[s].cases[k].name, ct->name);
			assert_int_equal(kr, ct->status == KS_KTAP_PASS ? KC_OK
					 : ct->status == KS_KTAP_SKIP ? KC_SKIP : KC_NOT_OK);
		}
	}
	free(kc);
	ks_ktap_free(p);
	free(log);
}

/* ---- garbage between lines ---- */

/* Bytes a noisy serial line produces: NULs, invalid UTF-8, escapes, blanks, anything. */
static const unsigned char nasty[] = { 0, 0xff, 0xfe, 0xc3, 0x80, 0xed, 0xa0, 0x1b, '\r',
				       '\t', ' ', '#', '[', ']', 0xe2, 0x82 };

/* clean with seeded random garbage lines after some of its newlines (and before its
 * first line); each garbage chunk ends with a newline so no KTAP line is touched. */
static char *with_garbage(const char *clean, size_t len, unsigned seed, size_t *out_len)
{
	char *out = malloc(len * 4 + 4096);
	size_t o = 0;

	assert_non_null(out);
	srand(seed);
	for (size_t i = 0; i <= len; i++) {
		if ((i == 0 || clean[i - 1] == '\n') && rand() % 2) {
			size_t n = (size_t)rand() % 60;

			for (size_t k = 0; k < n; k++)
				out[o++] = rand() % 3 ? (char)(rand() % 256)
						      : (char)nasty[(size_t)rand() % sizeof(nasty)];
			out[o++] = '\n';
		}
		if (i < len)
			out[o++] = clean[i];
	}
	*out_len = o;
	return out;
}

static void garbage_check(const char *name, const char *log, size_t len)
{
	struct ks_ktap *p = parse(log, len, WHOLE, 0);
	char *clean = signature(p, false);

	for (unsigned seed = 1; seed <= 4; seed++) {
		size_t glen;
		char *g = with_garbage(log, len, seed * 7919u, &glen);

		for (enum feed how = WHOLE; how <= CHUNKS; how++) {
			struct ks_ktap *q = parse(g, glen, how, seed);
			char *s = signature(q, false);

			if (strcmp(s, clean))
				fail_msg("%s with garbage (seed %u, feed %d):\n%s\nclean:\n%s",
					 name, seed, how, s, clean);
			free(s);
			ks_ktap_free(q);
		}
		free(g);
	}
	free(clean);
	ks_ktap_free(p);
}

static void garbage_between_lines(void **state)
{
	const char *dir = env_dir("KSCOPE_KTAP_CORPUS");
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t len, n = 0;
	char *log;

	(void)state;
	if (!d)
		fail_msg("%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);

		if (nl < 4 || strcmp(de->d_name + nl - 4, ".log"))
			continue;
		log = read_file(dir, de->d_name, &len);
		garbage_check(de->d_name, log, len);
		free(log);
		n++;
	}
	closedir(d);
	assert_true(n >= 20);
	log = read_file(env_dir("KSCOPE_TEST_DATA"), "ktest_basic.ktap", &len);
	garbage_check("ktest_basic.ktap", log, len);
	free(log);
}

/* ---- a log cut off ---- */

static struct ks_ktap *parse_until(const char *log, const char *cut, size_t extra)
{
	const char *at = strstr(log, cut);

	if (!at)
		fail_msg("no '%s' in the golden log", cut);
	return parse(log, (size_t)(at - log) + extra, BYTES, 0);
}

static void cut_off(void **state)
{
	size_t len;
	char *log = read_file(env_dir("KSCOPE_TEST_DATA"), "ktest_basic.ktap", &len);
	struct ks_ktap *p;
	const struct ks_ktap_test *r, *t;
	struct ks_ktap_counts c;

	(void)state;
	/* The VM died while kt_flow's third case ran. */
	p = parse_until(log, "    ok 3 skip # SKIP", 0);
	r = ks_ktap_root(p);
	ks_ktap_counts(p, &c);
	assert_int_equal(ks_ktap_outcome(p), KS_KTAP_OUT_CRASHED);
	t = child(r, 2);
	assert_string_equal(t->name, "kt_flow");
	assert_int_equal(t->status, KS_KTAP_CRASHED);
	assert_int_equal(child(t, 1)->status, KS_KTAP_PASS);
	assert_int_equal(t->nchildren, 8);
	for (size_t i = 2; i < 8; i++) {
		assert_int_equal(child(t, i)->status, KS_KTAP_CRASHED);
		assert_int_equal(child(t, i)->number, i + 1);
		assert_false(child(t, i)->has_result);
	}
	assert_int_equal(r->nchildren, 8);
	for (size_t i = 3; i < 8; i++)
		assert_int_equal(child(r, i)->status, KS_KTAP_CRASHED);
	assert_int_equal(c.passed, 10);
	assert_int_equal(c.failed, 13);
	assert_int_equal(c.crashed, 11);
	assert_int_equal(c.skipped, 0);
	assert_int_equal(c.errors, 12);
	ks_ktap_free(p);

	/* Cut in the middle of a diagnostic: the crashed case keeps what it printed. */
	p = parse_until(log, "    # int_signs: EXPECTATION FAILED at ktest_fixtures.c:207", 25);
	t = child(child(ks_ktap_root(p), 1), 1);
	assert_int_equal(t->status, KS_KTAP_CRASHED);
	assert_int_equal(t->number, 2);
	assert_int_equal(t->nlog, 1);
	assert_string_equal(t->log[0], "    # int_signs: EXPECTAT");
	assert_int_equal(child(child(ks_ktap_root(p), 1), 0)->status, KS_KTAP_FAIL);
	ks_ktap_free(p);

	/* Every case of kt_flow came but not its own result: never a pass. */
	p = parse_until(log, "not ok 3 kt_flow", 0);
	t = child(ks_ktap_root(p), 2);
	assert_int_equal(t->status, KS_KTAP_CRASHED);
	assert_true(t->counted);
	assert_int_equal(t->counts.crashed, 1);
	assert_int_equal(t->counts.failed, 2);
	ks_ktap_free(p);
	free(log);
}

/* ---- callbacks ---- */

static const char events_log[] =
	"boot noise\n"
	"KTAP version 1\n"
	"1..2\n"
	"  KTAP version 1\n"
	"  # Subtest: alpha\n"
	"  # speed: slow\n"
	"  1..2\n"
	"  ok 1 a1\n"
	"  # a2: EXPECTATION FAILED\n"
	"  not ok 2 a2\n"
	"not ok 1 alpha\n"
	"  # Subtest: beta\n"
	"  ok 1 b1\n"
	"ok 2 beta\n"
	"trailing noise\n";

struct events {
	struct ks_ktap *p;
	char seq[512];
	unsigned n;
};

static void ev_start(const struct ks_ktap_test *t, void *data)
{
	struct events *e = data;
	char *end = e->seq + strlen(e->seq);

	snprintf(end, sizeof(e->seq) - (size_t)(end - e->seq), "S:%s(%ld%s) ", t->name, t->plan,
		 ks_ktap_attr(t, "speed") ? ",slow" : "");
	e->n++;
}

static void ev_end(const struct ks_ktap_test *t, void *data)
{
	struct events *e = data;
	struct ks_ktap_counts c;
	char *end = e->seq + strlen(e->seq);

	/* The counts are live: what has ended so far. */
	ks_ktap_counts(e->p, &c);
	snprintf(end, sizeof(e->seq) - (size_t)(end - e->seq), "E:%s=%s[%u/%u] ", t->name,
		 ks_ktap_status_name(t->status), c.passed, c.failed);
	e->n++;
}

static void callbacks(void **state)
{
	static const char want[] =
		"S:main(2) S:alpha(2,slow) E:a1=PASS[1/0] E:a2=FAIL[1/1] E:alpha=FAIL[1/2] "
		"S:beta(-1) E:b1=PASS[2/2] E:beta=PASS[2/2] E:main=FAIL[2/2] ";
	const char *a1 = strstr(events_log, "  ok 1 a1\n") + strlen("  ok 1 a1\n");

	(void)state;
	for (enum feed how = WHOLE; how <= BYTES; how++) {
		struct events e = { .p = ks_ktap_new() };
		struct ks_ktap_callbacks cb = { .start = ev_start, .end = ev_end, .data = &e };

		assert_non_null(e.p);
		ks_ktap_set_callbacks(e.p, &cb);
		for (const char *s = events_log; *s;) {
			size_t n = how == WHOLE ? strlen(s) : 1;

			assert_int_equal(ks_ktap_feed(e.p, s, n), 0);
			s += n;
			/* a1 ends the moment its line does, not later. */
			if (how == BYTES && s == a1)
				assert_int_equal(e.n, 3);
		}
		assert_true(ks_ktap_done(e.p));
		assert_int_equal(ks_ktap_finish(e.p), 0);
		assert_string_equal(e.seq, want);
		ks_ktap_free(e.p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(corpus_table),
		cmocka_unit_test(trees_nested),
		cmocka_unit_test(trees_missing_and_skipped),
		cmocka_unit_test(trees_logs),
		cmocka_unit_test(kt_golden),
		cmocka_unit_test(garbage_between_lines),
		cmocka_unit_test(cut_off),
		cmocka_unit_test(callbacks),
	};

	return cmocka_run_group_tests_name("ktap", tests, NULL, NULL);
}
