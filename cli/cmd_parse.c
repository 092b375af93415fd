/* cmd_parse.c: `kscope parse`: summarize a KTAP/TAP log as kunit.py parse does, and write reports. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/ktap.h>
#include <kscope/report.h>

#include "commands.h"

#define CHUNK 65536

static const char usage_text[] =
	"usage: kscope parse FILE|- [--junit FILE] [--json FILE] [--ktap FILE]\n"
	"\n"
	"Reads a console log with KTAP or TAP in it (FILE, or standard input for -) the way\n"
	"the kernel's `kunit.py parse` does, prints each suite and its cases as they end\n"
	"(failures with their diagnostics), the parse errors, and kunit's summary line:\n"
	"  Testing complete. Ran N tests: passed: P, failed: F, crashed: C, skipped: S, errors: E\n"
	"\n"
	"  --junit FILE  also write JUnit XML (for Jenkins, GitLab)\n"
	"  --json FILE   also write the results as JSON\n"
	"  --ktap FILE   also write the results as clean KTAP version 1\n"
	"  -h, --help    print this help\n"
	"\n"
	"Exit status: 0 when the tests passed or were all skipped, 1 when one failed or\n"
	"crashed, 2 when no tests could be parsed (or on a usage or I/O error).\n";

struct parse_opts {
	const char *in, *junit, *json, *ktap;
};

/* kunit's words for a result. */
static const char *word(enum ks_ktap_status s)
{
	switch (s) {
	case KS_KTAP_PASS: return "PASSED";
	case KS_KTAP_FAIL: return "FAILED";
	case KS_KTAP_SKIP: return "SKIPPED";
	case KS_KTAP_CRASHED: return "CRASHED";
	case KS_KTAP_NO_TESTS: return "NO TESTS";
	default: return ks_ktap_status_name(s);
	}
}

static bool shows_log(enum ks_ktap_status s)
{
	return s == KS_KTAP_FAIL || s == KS_KTAP_CRASHED || s == KS_KTAP_TIMEOUT ||
	       s == KS_KTAP_ERROR;
}

static int indent_of(const struct ks_ktap_test *t)
{
	return t->depth > 1 ? 2 * (int)(t->depth - 1) : 0;
}

static void on_start(const struct ks_ktap_test *t, void *data)
{
	(void)data;
	if (!t->depth)
		return;
	printf("%*s== %s", indent_of(t), "", t->name[0] ? t->name : "(unnamed)");
	if (t->plan >= 0)
		printf(" (%ld subtest%s)", t->plan, t->plan == 1 ? "" : "s");
	printf(" ==\n");
}

/* A failed test's log without the indentation of its "#" lines (other output, such as
 * kernel messages, often starts at the margin). */
static void print_log(const struct ks_ktap_test *t, int indent)
{
	size_t k = SIZE_MAX, any = SIZE_MAX;

	for (size_t i = 0; i < t->nlog; i++) {
		size_t n = strspn(t->log[i], " \t");

		if (t->log[i][n] == '#' && n < k)
			k = n;
		if (t->log[i][n] && n < any)
			any = n;
	}
	if (k == SIZE_MAX)
		k = any;
	for (size_t i = 0; i < t->nlog; i++) {
		size_t n = strspn(t->log[i], " \t");

		printf("%*s%s\n", indent, "", t->log[i] + (n < k ? n : k));
	}
}

static void on_end(const struct ks_ktap_test *t, void *data)
{
	(void)data;
	if (!t->depth)
		return;
	if (t->nchildren || t->status == KS_KTAP_NO_TESTS) {
		printf("%*s== [%s] %s ==\n", indent_of(t), "", word(t->status), t->name);
		return;
	}
	printf("%*s[%s] ", indent_of(t), "", word(t->status));
	/* A crashed placeholder has no name: its number says which case it was. */
	if (t->name[0])
		printf("%s", t->name);
	else
		printf("#%u", t->number);
	if (t->reason[0])
		printf(" (%s)", t->reason);
	printf("\n");
	if (shows_log(t->status))
		print_log(t, indent_of(t) + 4);
}

static int read_all(struct ks_ktap *p, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *buf = malloc(CHUNK);
	size_t n;
	int rc = 0;

	if (!f || !buf) {
		fprintf(stderr, "kscope parse: %s: %s\n", path, strerror(f ? ENOMEM : errno));
		rc = -1;
		goto out;
	}
	while (!rc && (n = fread(buf, 1, CHUNK, f)) > 0)
		rc = ks_ktap_feed(p, buf, n);
	if (!rc && ferror(f)) {
		fprintf(stderr, "kscope parse: %s: read error\n", path);
		rc = -1;
	}
	if (!rc)
		rc = ks_ktap_finish(p);
	if (rc < -1)
		fprintf(stderr, "kscope parse: %s\n", strerror(-rc));
out:
	if (f && f != stdin)
		fclose(f);
	free(buf);
	return rc;
}

typedef int (*writer)(const struct ks_report *r, FILE *f);

static int write_report(const struct ks_report *r, const char *path, writer w)
{
	FILE *f;
	int rc;

	if (!path)
		return 0;
	if (!(f = fopen(path, "w"))) {
		fprintf(stderr, "kscope parse: %s: %s\n", path, strerror(errno));
		return -1;
	}
	rc = w(r, f);
	if (fclose(f) && !rc)
		rc = -EIO;
	if (rc)
		fprintf(stderr, "kscope parse: %s: %s\n", path, strerror(-rc));
	return rc;
}

static int write_reports(const struct ks_ktap *p, const struct parse_opts *o)
{
	struct ks_report *r;
	int rc = 0;

	if (!o->junit && !o->json && !o->ktap)
		return 0;
	if (!(r = ks_report_new(NULL)) || ks_report_add(r, p, NULL) < 0) {
		fprintf(stderr, "kscope parse: out of memory\n");
		ks_report_free(r);
		return -1;
	}
	if (write_report(r, o->junit, ks_report_write_junit) < 0)
		rc = -1;
	if (write_report(r, o->json, ks_report_write_json) < 0)
		rc = -1;
	if (write_report(r, o->ktap, ks_report_write_ktap) < 0)
		rc = -1;
	ks_report_free(r);
	return rc;
}

static int parse_args(int argc, char **argv, struct parse_opts *o)
{
	static const struct option longs[] = {
		{ "junit", required_argument, NULL, 'j' },
		{ "json", required_argument, NULL, 'J' },
		{ "ktap", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	/* "-" alone is the input, not an option. */
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'j': o->junit = optarg; break;
		case 'J': o->json = optarg; break;
		case 'k': o->ktap = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "kscope parse: give one FILE, or - for standard input\n%s",
			usage_text);
		return 2;
	}
	o->in = argv[optind];
	return -1;
}

int cmd_parse(int argc, char **argv)
{
	struct parse_opts o = { 0 };
	struct ks_ktap_callbacks cb = { .start = on_start, .end = on_end };
	struct ks_ktap_counts c;
	struct ks_ktap *p = NULL;
	const struct ks_ktap_error *e;
	enum ks_ktap_outcome out;
	char line[256];
	size_t ne;
	int rc;

	if ((rc = parse_args(argc, argv, &o)) >= 0)
		return rc;
	rc = 2;
	if (!(p = ks_ktap_new())) {
		fprintf(stderr, "kscope parse: out of memory\n");
		goto out;
	}
	ks_ktap_set_callbacks(p, &cb);
	if (read_all(p, o.in) < 0)
		goto out;
	e = ks_ktap_errors(p, &ne);
	for (size_t i = 0; i < ne; i++)
		printf("[ERROR] Test: %s: %s\n", e[i].test, e[i].msg);
	ks_ktap_counts(p, &c);
	ks_ktap_summary(&c, line, sizeof(line));
	printf("%s\n", line);
	fflush(stdout);
	if (write_reports(p, &o) < 0)
		goto out;
	out = ks_ktap_outcome(p);
	rc = out == KS_KTAP_OUT_SUCCESS || out == KS_KTAP_OUT_SKIPPED ? 0
	     : out == KS_KTAP_OUT_FAILURE || out == KS_KTAP_OUT_CRASHED ? 1 : 2;
out:
	ks_ktap_free(p);
	return rc;
}
