/* cmd_run.c: `kscope run`: boot a kernel, follow and report its tests; exit 0 passed, 1 failed, 2 could not run. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/cleanup.h>
#include <kscope/kt_abi.h>
#include <kscope/run.h>
#include <kscope/vmspec.h>

#include "commands.h"
#include "dashboard.h"
#include "signals.h"
#include "run_display.h"

#define SEC 1000000000ll
#define MAX_FILTERS 64
#define MAX_SPEC 128
#define DEMO "kscope-demo.elf"

/* What the command line said. */
struct run_args {
	const char *kernel, *config, *ktap, *junit, *json, *log_dir, *isolate, *listen;
	const char *filters[MAX_FILTERS];
	size_t nfilters;
	const char *spec_key[MAX_SPEC], *spec_value[MAX_SPEC];
	size_t nspec;
	double timeout, test_timeout;
	long jobs, repeat;
	bool shuffle, list, plain, help;
	unsigned long long seed;
	bool dashboard, dash_wait;
	long dash_port;
};

static const struct {
	const char *name, *metavar, *help;
} run_opts[] = {
	{ "filter", "GLOB", "run the tests GLOB selects: suite, suite.case (repeatable)" },
	{ "jobs", "N", "VMs at once, sharing the suites (default: the number of cores)" },
	{ "timeout", "S", "end the whole run after S seconds (default 300)" },
	{ "test-timeout", "S", "a test with no progress for S seconds is TIMEOUT (default 60)" },
	{ "ktap", "FILE", "write the merged results as KTAP version 1" },
	{ "junit", "FILE", "write JUnit XML" },
	{ "json", "FILE", "write JSON: suites, cases, status, durations, diagnostics, dumps" },
	{ "repeat", "N", "run every test N times; tests that pass and fail are flaky" },
	{ "shuffle", "[=SEED]", "run suites and cases in a random order (seed printed)" },
	{ "list", NULL, "list the tests the filters select, run nothing" },
	{ "isolate", "HOW", "destructive tests: snapshot (restore after each; the default), "
	  "reboot, or none" },
	{ "log-dir", "DIR", "each VM's console log, vm<N>.log (default: kscope-logs)" },
	{ "plain", NULL, "plain progress lines even on a terminal" },
	{ "dashboard", "[=PORT]", "serve the live dashboard, URL on stderr (default: a free port)" },
	{ "dashboard-wait", NULL, "serve the dashboard, and boot once a page has connected" },
	{ "listen", "ADDR", "the dashboard's address (default 127.0.0.1)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kscope run [KERNEL] [VM SPEC FLAGS | --config FILE] [--filter GLOB]...\n"
		"                  [--jobs N] [--timeout S] [--test-timeout S] [--ktap FILE]\n"
		"                  [--junit FILE] [--json FILE] [--repeat N] [--shuffle[=SEED]] "
		"[--list]\n"
		"                  [--dashboard[=PORT] [--dashboard-wait] [--listen ADDR]]\n\n"
		"Boots KERNEL (default: the demo kernel) under QEMU, follows its tests through the\n"
		"console's KTAP and the kernel's kt_state, survives crashes and hangs, and reports.\n"
		"With --dashboard the page (docs/dashboard.md) shows it live; after the run it\n"
		"stays until Ctrl-C when stdin is a terminal, and never holds up a script.\n"
		"Exit status: 0 every test ran and passed (or skipped), 1 a test failed, crashed,\n"
		"timed out or did not run, 2 the run could not be done.\n\noptions:\n");
	for (size_t i = 0; i < sizeof(run_opts) / sizeof(run_opts[0]); i++) {
		char left[48];

		snprintf(left, sizeof(left), "--%s%s%s", run_opts[i].name,
			 run_opts[i].metavar && run_opts[i].metavar[0] != '[' ? " " : "",
			 run_opts[i].metavar ? run_opts[i].metavar : "");
		fprintf(f, "  %-24s %s\n", left, run_opts[i].help);
	}
	fprintf(f, "\nVM spec flags (docs/vm-config.md; a --config file first, then the flags):\n");
	fprintf(f, "  %-24s %s\n", "--config FILE", "read `key = value` lines from FILE");
	for (const char *const *k = ks_vmspec_keys(); *k; k++) {
		const struct ks_vmspec_key *info = ks_vmspec_key_info(*k);
		char left[48];

		snprintf(left, sizeof(left), "--%s %s", info->name, info->metavar);
		fprintf(f, "  %-24s %s%s\n", left, info->help, info->repeatable ? " (repeatable)" : "");
	}
	fprintf(f, "  %-24s %s\n", "--help", "print this help");
}

static int bad_usage(const char *fmt, const char *what)
{
	fprintf(stderr, "kscope run: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, " (kscope run --help)\n");
	return 2;
}

static int number(const char *opt, const char *v, double lo, double hi, double *out)
{
	char *end;
	double x = strtod(v, &end);

	if (end == v || *end || !(x >= lo) || x > hi) {
		fprintf(stderr, "kscope run: --%s: expected a number from %g to %g (got '%s')\n", opt,
			lo, hi, v);
		return 2;
	}
	*out = x;
	return 0;
}

/* One run option (v is NULL for a flag). Returns 0 or 2. */
static int run_option(struct run_args *a, const char *name, const char *v)
{
	double x;
	char *end;

	if (!strcmp(name, "filter")) {
		if (a->nfilters == MAX_FILTERS)
			return bad_usage("too many --filter options%s", "");
		a->filters[a->nfilters++] = v;
	} else if (!strcmp(name, "jobs") || !strcmp(name, "repeat")) {
		if (number(name, v, 1, name[0] == 'j' ? 64 : 10000, &x) || x != (long)x)
			return x != (long)x ? bad_usage("--%s needs a whole number", name) : 2;
		*(name[0] == 'j' ? &a->jobs : &a->repeat) = (long)x;
	} else if (!strcmp(name, "timeout") || !strcmp(name, "test-timeout")) {
		if (number(name, v, 0.01, 1e6, name[0] == 't' && name[1] == 'i' ? &a->timeout
						: &a->test_timeout))
			return 2;
	} else if (!strcmp(name, "shuffle")) {
		a->shuffle = true;
		if (v && (a->seed = strtoull(v, &end, 0), end == v || *end || !a->seed))
			return bad_usage("--shuffle=SEED: SEED is a number above 0 (got '%s')", v);
	} else if (!strcmp(name, "list") || !strcmp(name, "plain")) {
		*(name[0] == 'l' ? &a->list : &a->plain) = true;
	} else if (!strcmp(name, "dashboard") || !strcmp(name, "dashboard-wait")) {
		a->dashboard = true;
		a->dash_wait |= name[9] == '-';
		if (v && number(name, v, 0, 65535, &x))
			return 2;
		if (v && x != (long)x)
			return bad_usage("--dashboard=PORT: PORT is a whole number (got '%s')", v);
		if (v)
			a->dash_port = (long)x;
	} else if (!strcmp(name, "listen")) {
		a->listen = v;
	} else {
		const char **slot[] = { &a->ktap, &a->junit, &a->json, &a->isolate, &a->log_dir };
		static const char *const names[] = { "ktap", "junit", "json", "isolate", "log-dir" };

		for (size_t i = 0; i < 5; i++)
			if (!strcmp(name, names[i]))
				*slot[i] = v;
	}
	return 0;
}

/* The metavar of run option name, "" for a flag, NULL when there is no such option. */
static const char *opt_metavar(const char *name)
{
	for (size_t i = 0; i < sizeof(run_opts) / sizeof(run_opts[0]); i++)
		if (!strcmp(run_opts[i].name, name))
			return run_opts[i].metavar ? run_opts[i].metavar : "";
	return NULL;
}

/* "--name[=value]" at argv[*i]: a run option, a spec key or --config. Returns 0 or 2. */
static int parse_long(struct run_args *a, int argc, char **argv, int *i)
{
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '='), *meta, *v;
	char name[64];

	snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
	if (!strcmp(name, "help"))
		return a->help = true, 0;
	meta = opt_metavar(name);
	if (meta && (!meta[0] || meta[0] == '[')) {
		if (eq && !meta[0])
			return bad_usage("%s takes no value", argv[*i]);
		return run_option(a, name, eq ? eq + 1 : NULL);
	}
	if (!meta && strcmp(name, "config") && !ks_vmspec_key_info(name))
		return bad_usage("unknown option '%s'", argv[*i]);
	if (!eq && *i + 1 >= argc)
		return bad_usage("%s needs a value", argv[*i]);
	v = eq ? eq + 1 : argv[++*i];
	if (meta)
		return run_option(a, name, v);
	if (!strcmp(name, "config"))
		return a->config = v, 0;
	if (a->nspec == MAX_SPEC)
		return bad_usage("too many options at '%s'", argv[*i]);
	a->spec_key[a->nspec] = ks_vmspec_key_info(name)->name;
	a->spec_value[a->nspec++] = v;
	return 0;
}

static int parse(int argc, char **argv, struct run_args *a)
{
	bool options = true;
	int rc;

	memset(a, 0, sizeof(*a));
	a->timeout = 300;
	a->test_timeout = 60;
	a->repeat = 1;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options && !strcmp(arg, "--"))
			options = false;
		else if (options && !strcmp(arg, "-h"))
			a->help = true;
		else if (options && !strncmp(arg, "--", 2)) {
			if ((rc = parse_long(a, argc, argv, &i)) != 0)
				return rc;
		} else if (options && arg[0] == '-' && arg[1])
			return bad_usage("unknown option '%s'", arg);
		else if (a->kernel)
			return bad_usage("one KERNEL only (got '%s' too)", arg);
		else
			a->kernel = arg;
	}
	if (a->isolate && strcmp(a->isolate, "snapshot") && strcmp(a->isolate, "reboot") &&
	    strcmp(a->isolate, "none"))
		return bad_usage("--isolate: snapshot, reboot or none (got '%s')", a->isolate);
	if (a->listen && !a->dashboard)
		return bad_usage("--listen %s: it is the dashboard's address; give --dashboard too",
				 a->listen);
	return 0;
}

/*
 * The demo kernel beside this kscope: build/cli/kscope finds build/kernel/kscope-demo.elf,
 * an installed <prefix>/bin/kscope finds <prefix>/share/kscope/kscope-demo.elf;
 * $KSCOPE_DEMO_KERNEL comes first.
 */
static bool find_demo(char *path, size_t size)
{
	const char *env = getenv("KSCOPE_DEMO_KERNEL");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (env && *env) {
		snprintf(path, size, "%s", env);
		return access(path, R_OK) == 0;
	}
	if (n <= 0)
		return false;
	exe[n] = 0;
	const char *dir = dirname(exe), *const places[] = { "../kernel", "../share/kscope" };
	char found[PATH_MAX];

	for (size_t i = 0; i < 2; i++) {
		snprintf(path, size, "%s/%s/%s", dir, places[i], DEMO);
		if (realpath(path, found)) {
			snprintf(path, size, "%s", found);
			return true;
		}
	}
	return false;
}

static struct ks_vmspec *build_spec(const struct run_args *a)
{
	struct ks_error err = { 0 };
	struct ks_vmspec *spec = ks_vmspec_new(&err);
	char demo[PATH_MAX];
	int rc = spec ? 0 : -ENOMEM;

	if (rc == 0 && a->config)
		rc = ks_vmspec_load_file(spec, a->config, &err);
	for (size_t i = 0; rc == 0 && i < a->nspec; i++)
		rc = ks_vmspec_set(spec, a->spec_key[i], a->spec_value[i], &err);
	if (rc == 0 && a->kernel && spec->kernel && strcmp(spec->kernel, a->kernel))
		rc = ks_error_set(&err, -EINVAL, "kernel: given twice ('%s' and '%s')",
				  spec->kernel, a->kernel);
	if (rc == 0 && a->kernel)
		rc = ks_vmspec_set(spec, "kernel", a->kernel, &err);
	if (rc == 0 && !spec->kernel && !find_demo(demo, sizeof(demo)))
		rc = ks_error_set(&err, -ENOENT, "no KERNEL given, and the demo kernel is not "
				  "beside kscope (../kernel/%s, ../share/kscope/%s) nor in "
				  "$KSCOPE_DEMO_KERNEL", DEMO, DEMO);
	else if (rc == 0 && !spec->kernel)
		rc = ks_vmspec_set(spec, "kernel", demo, &err);
	if (rc == 0)
		rc = ks_vmspec_validate(spec, &err);
	if (rc < 0) {
		fprintf(stderr, "kscope run: %s\n", err.msg);
		ks_vmspec_free(spec);
		return NULL;
	}
	return spec;
}

/* ---- what the run's callbacks share ---- */

struct run_ctx {
	struct run_display *display;
	struct ks_dash_run *dash;   /* NULL without --dashboard */
	struct ks_run *run;
	bool over;                  /* the run is done: a signal now only ends the dashboard */
	int signals;
};

/* The first signal ends the run cleanly, a second one at once. */
static void on_signal(int sig, void *data)
{
	struct run_ctx *c = data;
	char why[64];

	c->signals++;
	if (c->over || !c->run)
		return;
	snprintf(why, sizeof(why), "interrupted by SIG%s",
		 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	ks_run_stop(c->run, why);
}

static void on_run_event(const struct ks_run_event *ev, void *data)
{
	struct run_ctx *c = data;

	run_display_event(ev, c->display);
	if (c->dash)
		ks_dash_run_event(ev, c->dash);
}

/* ---- the dashboard ---- */

static int dash_start(struct run_ctx *c, const struct run_args *a, const struct ks_vmspec *spec,
		      struct ks_loop *loop)
{
	struct ks_dash_run_opts o = { spec, a->listen, (uint16_t)a->dash_port, NULL };
	struct ks_error err = { 0 };

	if (!a->dashboard)
		return 0;
	if (!(c->dash = ks_dash_run_new(loop, &o, &err))) {
		fprintf(stderr, "kscope run: dashboard: %s\n", err.msg);
		return -1;
	}
	fprintf(stderr, "kscope: dashboard at %s\n", ks_dash_url(ks_dash_run_dash(c->dash)));
	return 0;
}

/* --dashboard-wait: nothing boots until a page follows the event stream (or a signal). */
static void dash_wait(struct run_ctx *c, struct ks_loop *loop)
{
	struct ks_dash *d = ks_dash_run_dash(c->dash);

	fprintf(stderr, "kscope run: waiting for the dashboard's page before booting\n");
	while (!c->signals && !ks_dash_streams(d))
		if (ks_loop_run_once(loop, -1) < 0)
			break;
}

/* "PASSED: 12 passed" or "FAILED: 11 passed, 1 failed", for the page's end. */
static void dash_why(const struct ks_run *r, char *buf, size_t size)
{
	struct ks_run_summary s;
	size_t c[RUN_NSTATUS];
	char counts[200];

	ks_run_summary(r, &s);
	c[KS_RUN_NOTRUN] = s.notrun, c[KS_RUN_PASS] = s.pass, c[KS_RUN_FAIL] = s.fail;
	c[KS_RUN_SKIP] = s.skip, c[KS_RUN_TIMEOUT] = s.timeout, c[KS_RUN_CRASHED] = s.crashed;
	snprintf(buf, size, "the run is over: %s, %s", s.fail + s.timeout + s.crashed + s.notrun
		 ? "FAILED" : "PASSED", run_fmt_counts(c, counts, sizeof(counts)));
}

/*
 * The page learns that the run is over; the dashboard then stays for someone at a terminal
 * until Ctrl-C, and never for a script (stdin not a terminal), so that nothing waits on it.
 */
static void dash_end(struct run_ctx *c, struct ks_loop *loop, const char *why)
{
	int seen = c->signals;

	c->over = true;
	if (!c->dash)
		return;
	ks_dash_run_finish(c->dash, why);
	if (seen || !isatty(STDIN_FILENO)) {
		ks_dash_flush(ks_dash_run_dash(c->dash), SEC / 2);
		return;
	}
	fprintf(stderr, "kscope run: the dashboard stays at %s until Ctrl-C\n",
		ks_dash_url(ks_dash_run_dash(c->dash)));
	while (c->signals == seen)
		if (ks_loop_run_once(loop, -1) < 0)
			break;
}

/* ---- output ---- */

static void print_list(const struct ks_run *r)
{
	for (size_t i = 0; i < ks_run_ntests(r); i++) {
		const struct ks_run_test *t = ks_run_test(r, i);

		printf("%s.%s%s%s%s\n", t->suite, t->name,
		       t->flags & KT_ABI_F_DESTRUCTIVE ? "  # destructive" : "",
		       t->flags & KT_ABI_F_PARAM ? "  # param" : "",
		       t->flags & KT_ABI_F_OPT_IN ? "  # opt-in" : "");
	}
	printf("%zu test%s in %zu suite%s\n", ks_run_ntests(r), ks_run_ntests(r) == 1 ? "" : "s",
	       ks_run_nsuites(r), ks_run_nsuites(r) == 1 ? "" : "s");
}

static int write_report(const struct ks_run *r, const char *path,
			int (*fn)(const struct ks_run *, FILE *))
{
	FILE *f;
	int rc;

	if (!path)
		return 0;
	if (!(f = fopen(path, "we"))) {
		fprintf(stderr, "kscope run: cannot write %s: %s\n", path, strerror(errno));
		return 2;
	}
	rc = fn(r, f);
	if (fclose(f) || rc < 0) {
		fprintf(stderr, "kscope run: cannot write %s: %s\n", path,
			strerror(rc < 0 ? -rc : EIO));
		return 2;
	}
	return 0;
}

static int reports(const struct ks_run *r, const struct run_args *a)
{
	int rc = write_report(r, a->ktap, ks_run_write_ktap);

	rc |= write_report(r, a->junit, ks_run_write_junit);
	rc |= write_report(r, a->json, ks_run_write_json);
	return rc ? 2 : 0;
}

/* 0: every test ran and passed or skipped; 1: one did not. */
static int verdict(const struct ks_run *r)
{
	struct ks_run_summary s;

	ks_run_summary(r, &s);
	return s.fail + s.timeout + s.crashed + s.notrun ? 1 : 0;
}

static void epilogue(const struct ks_run *r, const struct run_args *a)
{
	struct ks_run_summary s;

	ks_run_summary(r, &s);
	if (a->shuffle)
		printf("kscope run: shuffle seed %llu (--shuffle=%llu runs this order again)\n",
		       (unsigned long long)s.seed, (unsigned long long)s.seed);
	for (unsigned i = 1; ks_run_log_path(r, i); i++)
		if (i <= s.vms)
			printf("%s %s", i == 1 ? "kscope run: console logs:" : ",",
			       ks_run_log_path(r, i));
	if (s.vms)
		printf("\n");
}

/* ---- the command ---- */

static void fill_opts(struct ks_run_opts *o, const struct run_args *a,
		      const struct ks_vmspec *spec)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	ks_run_opts_init(o);
	o->spec = spec;
	o->filters = a->filters;
	o->nfilters = a->nfilters;
	o->jobs = a->jobs ? (unsigned)a->jobs : cores > 0 ? (unsigned)cores : 1;
	o->timeout_ns = (int64_t)(a->timeout * SEC);
	o->test_timeout_ns = (int64_t)(a->test_timeout * SEC);
	o->repeat = (unsigned)a->repeat;
	o->shuffle = a->shuffle;
	o->seed = a->seed;
	o->list = a->list;
	o->isolate = !a->isolate || !strcmp(a->isolate, "snapshot") ? KS_RUN_ISOLATE_SNAPSHOT
		     : !strcmp(a->isolate, "reboot") ? KS_RUN_ISOLATE_REBOOT : KS_RUN_ISOLATE_NONE;
	o->log_dir = a->log_dir ? a->log_dir : "kscope-logs";
}

/* After ks_run_exec(): the summary, the reports, the status. */
static int finish(const struct run_args *a, struct run_ctx *c)
{
	int status;

	run_display_end(c->display);
	if (a->list) {
		print_list(c->run);
		return 0;
	}
	run_display_summary(c->display, c->run);
	status = verdict(c->run);
	status = reports(c->run, a) ? 2 : status;
	epilogue(c->run, a);
	return cli_signals_count() ? 2 : status;
}

static int run(const struct run_args *a, struct ks_vmspec *spec)
{
	struct ks_error err = { 0 };
	struct ks_run_opts o;
	struct ks_loop *loop = ks_loop_new(&err);
	const char *term = getenv("TERM");
	bool live = !a->plain && !a->list && isatty(STDOUT_FILENO) && term && strcmp(term, "dumb");
	struct run_ctx c = { .display = run_display_new(stdout, live, spec->kernel) };
	char why[300];
	int status = 2;

	fill_opts(&o, a, spec);
	o.on_event = a->list ? NULL : on_run_event;
	o.event_data = &c;
	if (!loop || !c.display || dash_start(&c, a, spec, loop) < 0)
		goto out;
	o.on_line = c.dash ? ks_dash_run_line : NULL;
	o.line_data = c.dash;
	if (!(c.run = ks_run_new(&o, &err)) || cli_signals_catch(loop, on_signal, &c, true) < 0) {
		fprintf(stderr, "kscope run: %s\n", err.msg[0] ? err.msg : "cannot set up the run");
		goto out;
	}
	run_display_attach(c.display, c.run);
	if (c.dash)
		ks_dash_run_attach(c.dash, c.run);
	if (c.dash && a->dash_wait)
		dash_wait(&c, loop);
	if (c.signals) {
		fprintf(stderr, "kscope run: interrupted before the run began\n");
		goto out;
	}
	if (ks_run_exec(c.run, loop, &err) < 0) {
		run_display_end(c.display);
		fprintf(stderr, "kscope run: %s\n", err.msg);
		snprintf(why, sizeof(why), "the run could not be done: %s", err.msg);
		dash_end(&c, loop, why);
		goto out;
	}
	status = finish(a, &c);
	fflush(stdout);
	dash_why(c.run, why, sizeof(why));
	dash_end(&c, loop, why);
out:
	fflush(stdout);
	if (loop)
		cli_signals_release(loop);
	ks_run_free(c.run);
	ks_dash_run_free(c.dash);
	run_display_free(c.display);
	ks_loop_free(loop);
	return status;
}

int cmd_run(int argc, char **argv)
{
	struct run_args a;
	struct ks_vmspec *spec;
	int rc;

	if ((rc = parse(argc, argv, &a)) != 0)
		return rc;
	if (a.help) {
		usage(stdout);
		return 0;
	}
	if (!(spec = build_spec(&a)))
		return 2;
	rc = run(&a, spec);
	ks_vmspec_free(spec);
	return rc;
}
