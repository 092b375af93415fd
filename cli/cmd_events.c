/* cmd_events.c: `kscope events`: a VM's events, as the rules select them, streamed from its supervisor. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/ctl.h>
#include <kscope/evfilter.h>

#include "commands.h"
#include "inspect_cli.h"

#define SEC 1000000000ll
#define ARM_NS (60 * SEC)   /* arming scans the kernel and reads every vCPU's IDT */
#define MAX_SPECS 64
#define RECENT 64           /* event lines kept to name the one a pause came at */

static const struct ins_cmd events_cmd = {
	"events", "NAME [--trace SPEC]... [--pause-on SPEC]... [--on SPEC=ACTION]... [--json] "
	"[--passive]",
	"", NULL, 1, 1,
};

static const char help[] =
"usage: kscope events NAME [--trace SPEC]... [--pause-on SPEC]... [--on SPEC=ACTION]...\n"
"                          [--json] [--resume] [--passive] [--syscall-entry SYMBOL]\n"
"\n"
"Streams the events of VM NAME that the rules select, one line each, until the VM ends or\n"
"Ctrl-C. The VM's supervisor arms only what the rules need (breakpoints on the kernel's\n"
"magic sites, interrupt handlers, the syscall entry; watchpoints) and removes it all when\n"
"this command ends. One events command per VM at a time.\n"
"\n"
"options:\n"
"  --trace SPEC           show the events SPEC selects\n"
"  --pause-on SPEC        show them and pause the whole VM at each: regs, peek, poke and\n"
"                         step then act on the paused VM; kscope vm resume NAME continues\n"
"  --on SPEC=ACTION       ACTION is log, pause, dump (every vCPU's registers, backtraces,\n"
"                         the last events) or stop (destroy the VM); SPEC alone is log\n"
"  --resume               run the VM once armed, also when it was paused (start it with\n"
"                         kscope vm start --paused to watch from its first instruction)\n"
"  --passive              interrupts and exceptions from QEMU's -d int trace instead of\n"
"                         breakpoints: every vector, no breakpoint, but without the vCPU\n"
"                         that took them (shown as -) and a little after the fact (a pause\n"
"                         stops the VM then, not at the handler). The VM must have been\n"
"                         started with kscope vm start --trace-interrupts (TCG)\n"
"  --syscall-entry SYMBOL the kernel's syscall entry, when it cannot be found\n"
"  --json                 JSON Lines: each event as an object (schema in docs/events.md),\n"
"                         each dump as {\"dump\": {...}}\n"
"  --help                 print this help\n"
"\n"
"A SPEC is KIND[:ARG], without blanks:\n"
"  magic[:IDS]          interrupt[:VECTORS]     exception[:VECTORS]\n"
"  syscall[:NUMBERS]    sysret[:NUMBERS]        vm[:stop,resume,reset,shutdown,panic]\n"
"  test[:start,end,pass,fail,skip,crash[:GLOB]] serial[:PORT][:/REGEX/[i]]\n"
"  break:TARGET         watch:TARGET[:LEN][:w|r|rw]                any (or *)\n"
"for example exception:14, exception:#PF, interrupt:32-47, magic:0x42, test:fail:mm.*,\n"
"serial:/panic/i, break:kmain+0x10, watch:counter:4:rw. When several rules select an\n"
"event the strongest action wins (stop > dump > pause > log). The whole language is in\n"
"docs/events.md.\n"
"\n"
"The VM should run under TCG (kscope vm start --accel tcg; auto picks TCG where KVM cannot\n"
"take breakpoints): under KVM only 4 hardware breakpoints exist, and rules that need more\n"
"are refused. While events are attached a triple fault or a power-off pauses the VM with\n"
"its state (for a dump) instead of ending it. When this command ends, a VM paused at its\n"
"shutdown ends, one paused with kscope vm pause (or before events came) stays paused, and\n"
"one paused by a rule runs on.\n"
"\n"
"Exit status: 0 the VM ended or Ctrl-C, 1 the operation failed, 2 bad usage (a malformed\n"
"spec, rules the VM's accelerator cannot serve, --passive on a VM without the trace).\n";

struct events_args {
	const char *name;
	const char *trace[MAX_SPECS], *pause_on[MAX_SPECS], *on[MAX_SPECS];
	size_t ntrace, npause, non;
	bool json, resume, passive;
	const char *entry;
};

/* The last event lines, to name the one a pause came at. */
static struct {
	uint64_t seq;
	char *text;
} recent[RECENT];

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Takes the value of option opt (its own "--opt=value", or the next argument). */
static int take_value(int argc, char **argv, int *i, const char *opt, const char **value)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');

	if (eq && (size_t)(eq - arg) == strlen(opt)) {
		*value = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return ins_fail(&events_cmd, 2, "%s needs a value", opt);
	*value = argv[++*i];
	return 0;
}

/* Whether argv[i] is option opt, alone or as "opt=value". */
static bool is_opt(const char *arg, const char *opt)
{
	size_t n = strlen(opt);

	return !strncmp(arg, opt, n) && (arg[n] == 0 || arg[n] == '=');
}

static int add_spec(const char **list, size_t *n, const char *opt, const char *value)
{
	if (*n == MAX_SPECS)
		return ins_fail(&events_cmd, 2, "too many %s rules (at most %d)", opt, MAX_SPECS);
	list[(*n)++] = value;
	return 0;
}

/* One option at argv[*i]. Returns 0, -1 after --help, or 2 after a usage error. */
static int option(struct events_args *a, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *v = NULL;

	if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
		fputs(help, stdout);
		return -1;
	}
	if (!strcmp(arg, "--json") || !strcmp(arg, "--resume") || !strcmp(arg, "--passive")) {
		*(arg[2] == 'j' ? &a->json : arg[2] == 'r' ? &a->resume : &a->passive) = true;
		return 0;
	}
	if (is_opt(arg, "--trace"))
		return take_value(argc, argv, i, "--trace", &v) ? 2
		       : add_spec(a->trace, &a->ntrace, "--trace", v);
	if (is_opt(arg, "--pause-on"))
		return take_value(argc, argv, i, "--pause-on", &v) ? 2
		       : add_spec(a->pause_on, &a->npause, "--pause-on", v);
	if (is_opt(arg, "--on"))
		return take_value(argc, argv, i, "--on", &v) ? 2 : add_spec(a->on, &a->non, "--on", v);
	if (is_opt(arg, "--syscall-entry"))
		return take_value(argc, argv, i, "--syscall-entry", &a->entry) ? 2 : 0;
	return ins_fail(&events_cmd, 2, "unknown option '%s' (kscope events --help lists them)",
			arg);
}

static int parse(struct events_args *a, int argc, char **argv)
{
	bool options = true;
	int rc;

	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		if (options && !strcmp(argv[i], "--")) {
			options = false;
		} else if (options && argv[i][0] == '-' && argv[i][1]) {
			if ((rc = option(a, argc, argv, &i)) != 0)
				return rc;
		} else if (a->name) {
			return ins_fail(&events_cmd, 2, "too many arguments (usage: kscope events "
					"%s)", events_cmd.args);
		} else {
			a->name = argv[i];
		}
	}
	if (!a->name)
		return ins_fail(&events_cmd, 2, "usage: kscope events %s", events_cmd.args);
	if (!a->ntrace && !a->npause && !a->non)
		return ins_fail(&events_cmd, 2, "nothing to watch: give --trace, --pause-on or --on "
				"(kscope events --help)");
	return 0;
}

/* Prints a malformed spec's error with the caret row under its bad part. */
static int bad_spec(const char *msg, const char *spec, bool with_action)
{
	char caret[1024];

	if (spec && ks_evfilter_caret(spec, with_action, caret, sizeof(caret)) > 0)
		return ins_fail(&events_cmd, 2, "%s\n%s", msg, caret);
	return ins_fail(&events_cmd, 2, "%s", msg);
}

/* Checks every spec here, so that a typo needs no VM to be found. */
static int check_specs(const struct events_args *a)
{
	struct ks_error err = { 0 };
	struct ks_evrules *rs = ks_evrules_new(&err);
	int rc = 0;

	for (size_t i = 0; rs && !rc && i < a->ntrace; i++)
		if (ks_evrules_add_trace(rs, a->trace[i], &err) < 0)
			rc = bad_spec(err.msg, a->trace[i], false);
	for (size_t i = 0; rs && !rc && i < a->npause; i++)
		if (ks_evrules_add_pause_on(rs, a->pause_on[i], &err) < 0)
			rc = bad_spec(err.msg, a->pause_on[i], false);
	for (size_t i = 0; rs && !rc && i < a->non; i++)
		if (ks_evrules_add_on(rs, a->on[i], &err) < 0)
			rc = bad_spec(err.msg, a->on[i], true);
	if (!rs)
		rc = ins_fail(&events_cmd, 1, "%s", err.msg);
	ks_evrules_free(rs);
	return rc;
}

static json_t *spec_array(const char *const *specs, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(specs[i]));
	return a;
}

/* ---- the stream ---- */

static void remember(uint64_t seq, const char *text)
{
	size_t i = seq % RECENT;

	free(recent[i].text);
	recent[i].seq = seq;
	recent[i].text = strdup(text);
}

static void forget_all(void)
{
	for (size_t i = 0; i < RECENT; i++) {
		free(recent[i].text);
		recent[i].text = NULL;
	}
}

static void print_json_line(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s)
		puts(s);
	free(s);
}

static void print_event(json_t *m, bool json)
{
	const char *text = json_string_value(json_object_get(m, "text"));
	json_t *ev = json_object_get(m, "event");
	json_int_t seq = json_integer_value(json_object_get(ev, "seq"));

	if (text)
		remember((uint64_t)seq, text);
	if (json)
		print_json_line(ev);
	else if (text)
		puts(text);
}

static void print_dump(json_t *m, bool json)
{
	const char *text = json_string_value(json_object_get(m, "text"));

	if (json) {
		json_t *o = json_pack("{s:O}", "dump", json_object_get(m, "dump"));
		print_json_line(o);
		json_decref(o);
	} else if (text) {
		fputs(text, stdout);
		if (*text && text[strlen(text) - 1] != '\n')
			fputc('\n', stdout);
	}
}

static void print_paused(const char *name, json_t *m)
{
	const char *why = json_string_value(json_object_get(m, "why"));
	json_t *seq = json_object_get(m, "event");
	uint64_t n = (uint64_t)json_integer_value(seq);
	const char *line = json_is_integer(seq) && recent[n % RECENT].seq == n
			   ? recent[n % RECENT].text : NULL;

	fflush(stdout);
	if (why && (!strcmp(why, "shutdown") || !strcmp(why, "panic"))) {
		fprintf(stderr, "kscope events: VM '%s' paused at its %s, which it cannot run past: "
			"its state is readable; kscope vm destroy %s ends it\n", name,
			!strcmp(why, "panic") ? "panic" : "shutdown", name);
		return;
	}
	/* The line without its sequence number, which the note gives already. */
	while (line && *line == ' ')
		line++;
	while (line && *line >= '0' && *line <= '9')
		line++;
	while (line && *line == ' ')
		line++;
	fprintf(stderr, "kscope events: paused at event %llu%s%s; kscope vm resume %s continues\n",
		(unsigned long long)n, line ? ": " : "", line ? line : "", name);
}

/* Prints what the supervisor streams until the VM ends, the connection goes, or Ctrl-C. */
static int follow(const struct events_args *a, struct ks_ctl_client *c)
{
	struct ks_error err = { 0 };
	json_t *m = NULL;
	int rc;

	while ((rc = ks_ctl_read(c, &m, -1, &err)) == 0) {
		if (json_object_get(m, "end")) {
			fflush(stdout);
			fprintf(stderr, "kscope events: VM '%s' ended: %s\n", a->name,
				json_string_value(json_object_get(m, "end")));
			json_decref(m);
			return 0;
		}
		if (json_object_get(m, "paused"))
			print_paused(a->name, m);
		else if (json_object_get(m, "event"))
			print_event(m, a->json);
		else if (json_object_get(m, "dump"))
			print_dump(m, a->json);
		else if (json_object_get(m, "warning"))
			fprintf(stderr, "kscope events: warning: %s\n",
				json_string_value(json_object_get(m, "warning")));
		json_decref(m);
		m = NULL;
		/* A reader that went away (| head) ends the command as Ctrl-C would. */
		if (fflush(stdout) == EOF)
			return 0;
	}
	if (rc == -EINTR && interrupted)
		return 0;
	fflush(stdout);
	fprintf(stderr, "kscope events: %s\n", rc == -ECONNRESET
		? "the VM's supervisor closed the connection" : err.msg);
	return 1;
}

/* Sends the request. Returns 0, -1 on Ctrl-C, or the exit status after printing why it was
 * refused. */
static int request(const struct events_args *a, struct ks_ctl_client *c)
{
	struct ks_error err = { 0 };
	json_t *r = NULL, *detail;
	const char *state, *caret;
	json_t *req = json_pack("{s:s,s:o,s:o,s:o,s:b,s:b,s:s?}", "cmd", "events",
				"trace", spec_array(a->trace, a->ntrace),
				"pause_on", spec_array(a->pause_on, a->npause),
				"on", spec_array(a->on, a->non), "resume", a->resume,
				"passive", a->passive, "syscall_entry", a->entry);
	int rc = ks_ctl_call(c, req, &r, ARM_NS, &err);

	if (rc == -EINTR && interrupted)
		return -1;
	if (rc < 0) {
		detail = json_object_get(r, "detail");
		caret = json_string_value(json_object_get(detail, "caret"));
		rc = json_is_true(json_object_get(detail, "bad_request")) ? 2 : 1;
		if (caret && *caret)
			ins_fail(&events_cmd, rc, "%s\n%s", err.msg, caret);
		else
			ins_fail(&events_cmd, rc, "%s", err.msg);
		json_decref(r);
		return rc;
	}
	state = json_string_value(json_object_get(r, "state"));
	fprintf(stderr, "kscope events: watching VM '%s' (%s, %s): %s\n", a->name,
		json_string_value(json_object_get(r, "accel")), state,
		json_string_value(json_object_get(r, "armed")));
	if (a->passive)
		fprintf(stderr, "kscope events: passive: interrupts and exceptions come from QEMU's "
			"-d int trace as it is written, without the vCPU that took them (shown as "
			"-, null in JSON)\n");
	if (state && !strcmp(state, "paused"))
		fprintf(stderr, "kscope events: the VM is paused; kscope vm resume %s runs it\n",
			a->name);
	json_decref(r);
	return 0;
}

int cmd_events(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	struct events_args a;
	struct ks_ctl_client *c;
	int rc = parse(&a, argc, argv);

	if (rc != 0 || (rc = check_specs(&a)) != 0)
		return rc < 0 ? 0 : rc;
	/* No SA_RESTART: Ctrl-C interrupts the wait, and the command leaves cleanly. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!(c = ins_connect(&events_cmd, a.name, &rc)))
		return rc;
	if ((rc = request(&a, c)) == 0)
		rc = follow(&a, c);
	else if (rc < 0)
		rc = 0;
	ks_ctl_client_free(c);
	forget_all();
	return rc;
}
