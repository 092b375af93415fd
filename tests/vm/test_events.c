/* test_events.c: kscope events and kscope step on the demo kernel, run as a user would (TCG, 2 vCPUs, VMs started paused). */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <kscope/ctl.h>
#include <kscope/kt_abi.h>

#include "kscope_run.h"
#include "vmboot.h"

#define SEC 1000000000ll
#define VEC_PF 14
#define STUB_SIZE 16       /* the demo's interrupt stubs: isr_stubs + 16 * vector */
#define PASSED "kscope events: VM '%s' ended: the guest exited with code 0x10\n"

static int setup(void **state)
{
	return kscope_fx_setup(state, "kev");
}

static int teardown(void **state)
{
	return kscope_fx_teardown(state);
}

static void need_qemu(void)
{
	if (!vm_have_qemu())
		skip(); /* the only reason a VM test may skip */
}

/* kscope with args, expected to exit with status: its stdout (free it). */
static char *run(int status, const char *const *args)
{
	return kscope_expect_out(status, args);
}

/* kscope with args, expected to exit with status saying exactly err on stderr. */
static void fails(int status, const char *err, const char *const *args)
{
	kscope_expect_err(status, err, args);
}

/* `kscope vm start NAME --kernel DEMO --accel tcg --cpus 2 --paused [--append APPEND]`. */
static pid_t start_vm(const char *name, const char *append)
{
	const char *args[16] = { "vm", "start", name, "--kernel", vm_demo_kernel(), "--accel",
				 "tcg", "--cpus", "2", "--paused", append ? "--append" : NULL,
				 append };
	struct kres r;
	pid_t q;

	if (kscope_argv(&r, args) != 0)
		fail_msg("kscope vm start %s: status %d: %s", name, r.status, r.err);
	q = (pid_t)kres_field(r.out, "qemu pid:");
	assert_true(q > 0);
	kres_free(&r);
	return q;
}

/* The VM's runtime directory is gone, its QEMU too. */
static void assert_gone(struct kscope_fx *f, const char *name, pid_t qemu)
{
	assert_true(pid_gone(qemu, 5));
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	for (int i = 0; i < 300 && access(f->path, F_OK) == 0; i++)
		sleep_ms(10);
	assert_int_equal(access(f->path, F_OK), -1);
}

/* What the file path holds so far, NUL-terminated; caller frees. */
static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	if ((fp = fopen(path, "r"))) {
		if (getdelim(&text, &len, 0, fp) < 0 && text)
			text[0] = 0;
		fclose(fp);
	}
	return text ? text : strdup("");
}

/* Waits (at most 60 s) for the nth occurrence of text in the file path; returns the file
 * from there on (caller frees). */
static char *await_nth(const char *path, const char *text, int nth)
{
	for (int i = 0; i < 6000; i++) {
		char *c = slurp(path), *at = c;
		int seen = 0;

		while ((at = strstr(at, text)) && ++seen < nth)
			at += strlen(text);
		if (at) {
			char *rest = strdup(at);
			free(c);
			return rest;
		}
		free(c);
		sleep_ms(10);
	}
	fail_msg("'%s' (%d) never came in %s", text, nth, path);
	return NULL;
}

/* `kscope events` in the background, stdout and stderr to out_path. */
static pid_t spawn_events(const char *out_path, const char *const *args)
{
	const char *argv[24] = { "events" };
	int n = 1;

	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return kscope_spawn(argv, out_path);
}

/* The value after "name " in a regs dump ("rip ffffffff80109...") */
static uint64_t reg(const char *regs, const char *name)
{
	char key[16];
	const char *at;

	snprintf(key, sizeof(key), "%s ", name);
	assert_non_null(at = strstr(regs, key));
	return strtoull(at + strlen(key), NULL, 16);
}

static uint64_t demo_sym(const char *name)
{
	uint64_t v = elf_symbol(vm_demo_kernel(), name);

	if (!v)
		fail_msg("the demo kernel has no symbol %s", name);
	return v;
}

/* ---- tests ---- */

/* The 1000 messages of example_magic as JSON Lines, in order, from the vCPU that sent them. */
static void magic_messages_as_json(void **state)
{
	struct kscope_fx *f = *state;
	char *out, *line, *save = NULL, want[128];
	uint64_t next = 0, last_seq = 0;
	struct kres r;
	pid_t q;

	need_qemu();
	q = start_vm("mg", "kt.filter=example_magic");
	assert_int_equal(kscope(&r, "events", "mg", "--trace", "magic", "--json", "--resume", NULL),
			 0);
	out = r.out;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *ev = json_loads(line, 0, NULL);
		uint64_t seq;

		if (!ev)
			fail_msg("not JSON: %s", line);
		assert_string_equal(json_string_value(json_object_get(ev, "kind")), "magic");
		seq = (uint64_t)json_integer_value(json_object_get(ev, "seq"));
		assert_true(seq > last_seq);
		last_seq = seq;
		if (strtoull(json_string_value(json_object_get(ev, "id")), NULL, 16) ==
		    KT_MAGIC_USER + 1) {
			assert_int_equal(strtoull(json_string_value(json_object_get(ev, "a0")),
						  NULL, 16), next);
			assert_int_equal(json_integer_value(json_object_get(ev, "vcpu")), 0);
			assert_memory_equal(json_string_value(json_object_get(ev, "sym")),
					    "many_messages+", 14);
			next++;
		}
		json_decref(ev);
	}
	assert_int_equal(next, 1000);
	assert_non_null(strstr(r.err, "kscope events: watching VM 'mg' (tcg, running): magic: "
			       "10 magic sites (kt_magic_sites)"));
	snprintf(want, sizeof(want), PASSED, "mg");
	assert_non_null(strstr(r.err, want));
	kres_free(&r);
	assert_gone(f, "mg", q);
}

/* In the whole default run, the irq suite's page faults: read then write, cr2 and rip. */
static void page_faults_of_the_default_run(void **state)
{
	struct kscope_fx *f = *state;
	char *start, *end, *rd, *wr, cr2[40];
	struct kres r;
	pid_t q;

	need_qemu();
	q = start_vm("pfs", NULL);
	assert_int_equal(kscope(&r, "events", "pfs", "--trace", "exception:14", "--trace",
				"test:*:irq.page_fault_recovered", "--resume", NULL), 0);
	assert_non_null(start = strstr(r.out, " start irq.page_fault_recovered\n"));
	assert_non_null(end = strstr(start, " end irq.page_fault_recovered pass\n"));
	assert_non_null(rd = strstr(start, "cpu0  exception  14 #PF err=0x0 cr2=0xffffc"));
	assert_non_null(wr = strstr(start, "cpu0  exception  14 #PF err=0x2 cr2=0xffffc"));
	assert_true(rd < wr && wr < end);
	/* The same unmapped address both times, from the case's helpers. */
	assert_int_equal(sscanf(rd, "cpu0  exception  14 #PF err=0x0 cr2=%39s", cr2), 1);
	assert_non_null(strstr(rd, "<read_u64>\n"));
	assert_non_null(strstr(wr, cr2));
	assert_non_null(strstr(wr, "<write_u64>\n"));
	assert_non_null(strstr(r.err, "ended: the guest exited with code 0x10\n"));
	kres_free(&r);
	assert_gone(f, "pfs", q);
}

/* VM pf, held at its #PF handler on vCPU cpu: what regs, sym, peek and step show. */
static void inspect_the_held_fault(const char *cpu, uint64_t fault_rip)
{
	char addr[32], frame[96], *out;
	uint64_t rsp;

	out = run(0, (const char *const[]){ "regs", "pf", "--cpu", cpu, NULL });
	assert_true(reg(out, "rip") == demo_sym("isr_stubs") + STUB_SIZE * VEC_PF);
	rsp = reg(out, "rsp");
	snprintf(addr, sizeof(addr), "0x%" PRIx64, reg(out, "rip"));
	free(out);
	out = run(0, (const char *const[]){ "sym", "pf", addr, NULL });
	assert_non_null(strstr(out, "  isr_stubs+0xe0  "));
	free(out);
	/* Error code, RIP and CS, as the CPU pushed them. */
	snprintf(addr, sizeof(addr), "0x%" PRIx64, rsp);
	out = run(0, (const char *const[]){ "peek", "pf", addr, "24", "--format", "u64", "--cpu",
					    cpu, NULL });
	snprintf(frame, sizeof(frame), ": 0x0 0x%" PRIx64 "\n", fault_rip);
	assert_non_null(strstr(out, frame));
	assert_non_null(strstr(out, ": 0x8\n"));
	free(out);
	out = run(0, (const char *const[]){ "step", "pf", "--cpu", cpu, NULL });
	assert_non_null(strstr(out, " <isr_stubs+0x"));
	free(out);
}

/* Held at the #PF handler: regs, peek and step act on the paused VM; vm resume continues. */
static void pause_on_page_fault(void **state)
{
	struct kscope_fx *f = *state;
	char log[128], *out, *note, *at, cpu[8], want[96];
	uint64_t fault_rip;
	unsigned vcpu;
	pid_t q, ev;

	need_qemu();
	q = start_vm("pf", "kt.filter=irq.page_fault_recovered");
	snprintf(log, sizeof(log), "%s/events.out", f->dir);
	ev = spawn_events(log, (const char *const[]){ "pf", "--pause-on", "exception:14", NULL });
	/* Armed before the first instruction; the VM waits for the user. */
	free(await_nth(log, "the VM is paused; kscope vm resume pf runs it\n", 1));
	fails(1, "kscope events: another events client is attached to this VM (one at a time)\n",
	      (const char *const[]){ "events", "pf", "--trace", "magic", NULL });
	free(run(0, (const char *const[]){ "vm", "resume", "pf", NULL }));
	note = await_nth(log, "kscope events: paused at event ", 1);
	assert_int_equal(sscanf(note, "kscope events: paused at event %*u: %*s cpu%u", &vcpu), 1);
	assert_non_null(strstr(note, "exception  14 #PF err=0x0 cr2=0xffffc"));
	assert_non_null(strstr(note, "<read_u64>; kscope vm resume pf continues\n"));
	assert_non_null(at = strstr(note, " rip=0x"));
	fault_rip = strtoull(at + 5, NULL, 16);
	free(note);
	out = run(0, (const char *const[]){ "vm", "status", "pf", NULL });
	assert_non_null(strstr(out, "state:       paused"));
	free(out);
	snprintf(cpu, sizeof(cpu), "%u", vcpu);
	inspect_the_held_fault(cpu, fault_rip);
	/* The case reads, then writes: two pauses. */
	free(run(0, (const char *const[]){ "vm", "resume", "pf", NULL }));
	note = await_nth(log, "kscope events: paused at event ", 2);
	assert_non_null(strstr(note, "#PF err=0x2"));
	free(note);
	free(run(0, (const char *const[]){ "vm", "resume", "pf", NULL }));
	assert_int_equal(kscope_wait(ev, 60), 0);
	out = slurp(log);
	snprintf(want, sizeof(want), PASSED, "pf");
	assert_non_null(strstr(out, want));
	free(out);
	assert_gone(f, "pf", q);
}

/* A triple fault pauses the VM at its shutdown: the dump's backtrace names the test; when
 * the events client leaves, the VM ends in its triple fault. */
static void triple_fault_dump(void **state)
{
	struct kscope_fx *f = *state;
	char log[128], con[128], *out, *bt;
	pid_t q, ev, follower;
	struct kres r;

	need_qemu();
	q = start_vm("tf", "kt.filter=example_crash.triple_fault");
	snprintf(log, sizeof(log), "%s/events.out", f->dir);
	snprintf(con, sizeof(con), "%s/console.out", f->dir);
	follower = kscope_spawn((const char *const[]){ "vm", "console", "tf", NULL }, con);
	ev = spawn_events(log, (const char *const[]){ "tf", "--on", "vm:shutdown=dump",
							 "--trace", "test", "--resume", NULL });
	free(await_nth(log, "kscope events: VM 'tf' paused at its shutdown", 1));
	out = slurp(log);
	assert_non_null(strstr(out, " start example_crash.triple_fault\n"));
	assert_non_null(strstr(out, "dump for: "));
	assert_non_null(bt = strstr(out, "cpu0 backtrace:\n  #0 0x"));
	assert_non_null(strstr(bt, "<triple_fault+"));
	assert_non_null(strstr(bt, "<kt_run+"));
	assert_non_null(strstr(out, " end example_crash.triple_fault crash\n"));
	free(out);
	/* Its state is there to read; it cannot run again. */
	out = run(0, (const char *const[]){ "regs", "tf", "--cpu", "0", NULL });
	assert_true(reg(out, "rip") - demo_sym("triple_fault") < 0x40);
	free(out);
	assert_int_equal(kscope(&r, "vm", "resume", "tf", NULL), 1);
	assert_string_equal(r.err, "kscope vm resume: the VM stopped at its shutdown and cannot "
			    "run again\n");
	kres_free(&r);
	kill(ev, SIGINT);
	assert_int_equal(kscope_wait(ev, 20), 0);
	assert_int_equal(kscope_wait(follower, 20), 0);
	out = slurp(con);
	assert_non_null(strstr(out, "kscope vm console: VM 'tf' ended: triple fault (the CPU "
			       "reset itself)\n"));
	free(out);
	assert_gone(f, "tf", q);
}

/* A watchpoint on kt_state's sequence number fires on each write the runner makes. */
static void watchpoint_on_a_kernel_variable(void **state)
{
	struct kscope_fx *f = *state;
	char want[96];
	const char *at;
	size_t n = 0;
	struct kres r;
	pid_t q;

	need_qemu();
	q = start_vm("wp", "kt.filter=example_magic");
	assert_int_equal(kscope(&r, "events", "wp", "--trace", "watch:kt_state+0x10", "--resume",
				NULL), 0);
	snprintf(want, sizeof(want), "watchpoint write 0x%" PRIx64 " <kt_state+0x10> pc=0x",
		 demo_sym("kt_state") + 0x10);
	for (at = r.out; (at = strstr(at, want)); at += strlen(want)) {
		assert_non_null(strstr(at, " <kt_"));
		n++;
	}
	/* Each change of the state is a pair of writes: odd while it changes, even again. */
	assert_true(n >= 4 && n % 2 == 0);
	kres_free(&r);
	assert_gone(f, "wp", q);
}

/* Malformed specs: exit 2, the message and a caret row under the bad part; no VM needed. */
static void malformed_specs(void **state)
{
	static const struct { const char *opt, *spec, *err; } cases[] = {
		{ "--trace", "exception:1x4", "kscope events: exception:1x4: bad vector '1x4' "
		  "(column 11)\n  exception:1x4\n            ^^^\n" },
		{ "--on", "exception:14=halt", "kscope events: exception:14=halt: unknown action "
		  "'halt': use log, pause, dump or stop (column 14)\n  exception:14=halt\n"
		  "               ^^^^\n" },
		{ "--pause-on", "interrupt:47-32", "kscope events: interrupt:47-32: reversed range "
		  "'47-32' (column 11)\n  interrupt:47-32\n            ^^^^^\n" },
		{ "--trace", "watch:kt_state:3", "kscope events: watch:kt_state:3: bad length '3': "
		  "use 1, 2, 4 or 8 (column 16)\n  watch:kt_state:3\n                 ^\n" },
		{ "--trace", NULL, "kscope events: --trace needs a value\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		fails(2, cases[i].err, (const char *const[]){ "events", "nosuch", cases[i].opt,
							      cases[i].spec, NULL });
	fails(2, "kscope events: nothing to watch: give --trace, --pause-on or --on (kscope "
	      "events --help)\n", (const char *const[]){ "events", "nosuch", NULL });
	fails(2, "kscope events: unknown option '--bogus' (kscope events --help lists them)\n",
	      (const char *const[]){ "events", "nosuch", "--bogus", NULL });
	fails(1, "kscope events: no VM named 'nosuch' (kscope vm list shows the VMs)\n",
	      (const char *const[]){ "events", "nosuch", "--trace", "magic", NULL });
	free(run(0, (const char *const[]){ "events", "--help", NULL }));
	free(run(0, (const char *const[]){ "step", "--help", NULL }));
}

/* The supervisor checks specs too, and says where a spec is bad in its reply. */
static void supervisor_refuses_bad_requests(void **state)
{
	struct kscope_fx *f = *state;
	struct ks_error err = { 0 };
	struct ks_ctl_client *c;
	json_t *r = NULL, *detail;
	pid_t q;

	need_qemu();
	q = start_vm("bad", NULL);
	snprintf(f->path, sizeof(f->path), "%s/bad", f->dir);
	assert_non_null(c = ks_ctl_connect(f->path, 5 * SEC, &err));
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s,s:[s]}", "cmd", "events", "trace",
						  "exception:1x4"), &r, 10 * SEC, &err), -EIO);
	assert_string_equal(err.msg, "exception:1x4: bad vector '1x4' (column 11)");
	detail = json_object_get(r, "detail");
	assert_string_equal(json_string_value(json_object_get(detail, "caret")),
			    "  exception:1x4\n            ^^^");
	assert_true(json_is_true(json_object_get(detail, "bad_request")));
	json_decref(r);
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s}", "cmd", "events"), &r, 10 * SEC, &err),
			 -EIO);
	assert_string_equal(err.msg, "no rules: give \"trace\", \"pause_on\" or \"on\"");
	json_decref(r);
	assert_int_equal(ks_ctl_call(c, json_pack("{s:s,s:[s]}", "cmd", "events", "trace",
						  "break:nosuch"), &r, 10 * SEC, &err), -EIO);
	assert_non_null(strstr(err.msg, "'nosuch'"));
	json_decref(r);
	ks_ctl_client_free(c);
	/* Nothing was left behind: the VM runs as before, and resets (no pause at shutdown). */
	free(run(0, (const char *const[]){ "vm", "resume", "bad", NULL }));
	free(run(0, (const char *const[]){ "vm", "reset", "bad", NULL }));
	free(run(0, (const char *const[]){ "vm", "destroy", "bad", NULL }));
	assert_gone(f, "bad", q);
}

/* A VM the user paused stays paused when the events client leaves; step works on it with
 * and without events; a halted vCPU is refused. */
static void user_pause_outlives_the_client(void **state)
{
	struct kscope_fx *f = *state;
	char log[128], *out;
	struct kres r;
	pid_t q, ev;

	need_qemu();
	q = start_vm("up", "kt.filter=example_crash.hang");
	snprintf(log, sizeof(log), "%s/events.out", f->dir);
	ev = spawn_events(log, (const char *const[]){ "up", "--trace", "test", "--resume",
							 NULL });
	free(await_nth(log, " start example_crash.hang\n", 1));
	free(run(0, (const char *const[]){ "vm", "pause", "up", NULL }));
	out = run(0, (const char *const[]){ "step", "up", "--cpu", "0", NULL });
	assert_non_null(strstr(out, "vCPU 0: rip 0x"));
	assert_non_null(strstr(out, " <hang+0x"));
	free(out);
	kill(ev, SIGINT);
	assert_int_equal(kscope_wait(ev, 20), 0);
	out = run(0, (const char *const[]){ "vm", "status", "up", NULL });
	assert_non_null(strstr(out, "state:       paused"));
	free(out);
	/* Without events: through the gdb client. The idle AP sleeps in hlt. */
	out = run(0, (const char *const[]){ "step", "up", NULL });
	assert_non_null(strstr(out, " <hang+0x"));
	free(out);
	assert_int_equal(kscope(&r, "step", "up", "--cpu", "1", NULL), 1);
	assert_string_equal(r.err, "kscope step: vCPU 1 is halted (hlt): it runs again at its "
			    "next interrupt; step another vCPU or resume the VM\n");
	kres_free(&r);
	free(run(0, (const char *const[]){ "vm", "resume", "up", NULL }));
	fails(1, "kscope step: the VM runs: pause it first\n",
	      (const char *const[]){ "step", "up", NULL });
	free(run(0, (const char *const[]){ "vm", "destroy", "up", NULL }));
	assert_gone(f, "up", q);
}

/* A VM started with the -d int trace: its exceptions and interrupts through events --passive,
 * with no breakpoint armed, from its first instructions on (it is started paused). */
static void passive_events_from_the_trace(void **state)
{
	struct kscope_fx *f = *state;
	const char *start[] = { "vm", "start", "tr", "--kernel", vm_demo_kernel(), "--accel",
				"tcg", "--cpus", "2", "--paused", "--trace-interrupts", "--append",
				"kt.filter=irq", NULL };
	static const unsigned vecs[] = { 0, 3, 6, 13, 14 };   /* #DE #BP #UD #GP #PF */
	unsigned exc[32] = { 0 }, irqs = 0, boot_irqs = 0;
	char *line, *save = NULL, want[128];
	struct kres r;
	pid_t q;

	need_qemu();
	if (kscope_argv(&r, start) != 0)
		fail_msg("kscope vm start tr: status %d: %s", r.status, r.err);
	q = (pid_t)kres_field(r.out, "qemu pid:");
	kres_free(&r);
	assert_int_equal(kscope(&r, "events", "tr", "--passive", "--trace", "exception", "--trace",
				"interrupt", "--json", "--resume", NULL), 0);
	assert_non_null(strstr(r.err, "kscope events: watching VM 'tr' (tcg, running): exception: "
			       "the -d int trace (passive); no breakpoints\n"));
	assert_non_null(strstr(r.err, "without the vCPU that took them (shown as -, null in "
			       "JSON)\n"));
	for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *kind = json_string_value(json_object_get(ev, "kind"));
		unsigned v = (unsigned)json_integer_value(json_object_get(ev, "vector"));

		if (!ev || !kind)
			fail_msg("not an event: %s", line);
		assert_true(json_is_null(json_object_get(ev, "vcpu")));
		if (!strcmp(kind, "exception")) {
			assert_true(v < 32);
			exc[v]++;
		} else {
			assert_string_equal(kind, "interrupt");
			irqs++;
			/* Before the suite's first fault: the boot's timer ticks and IPIs. */
			boot_irqs += exc[3] + exc[6] + exc[0] + exc[13] + exc[14] == 0;
		}
		json_decref(ev);
	}
	for (size_t i = 0; i < sizeof(vecs) / sizeof(*vecs); i++)
		if (!exc[vecs[i]])
			fail_msg("no exception %u from the trace", vecs[i]);
	print_message("# %u interrupts, %u of them before the first exception\n", irqs,
		      boot_irqs);
	assert_true(boot_irqs > 0);
	snprintf(want, sizeof(want), PASSED, "tr");
	assert_non_null(strstr(r.err, want));
	kres_free(&r);
	assert_gone(f, "tr", q);
}

/* Passive mode needs the trace, and the trace needs TCG: both refused with exit 2. */
static void passive_needs_the_trace(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	pid_t q;

	need_qemu();
	q = start_vm("nt", NULL);
	fails(2, "kscope events: passive: VM 'nt' was started without the -d int trace (kscope "
	      "vm start --trace-interrupts, under TCG)\n",
	      (const char *const[]){ "events", "nt", "--passive", "--trace", "exception", NULL });
	free(run(0, (const char *const[]){ "vm", "destroy", "nt", NULL }));
	assert_gone(f, "nt", q);
	assert_int_equal(kscope(&r, "vm", "start", "kv", "--kernel", vm_demo_kernel(), "--accel",
				"kvm", "--trace-interrupts", NULL), 2);
	assert_non_null(strstr(r.err, "kscope vm start: --trace-interrupts: QEMU writes the -d "
			       "int trace under TCG only, and this VM would run under KVM"));
	assert_non_null(strstr(r.err, "; add --accel tcg\n"));
	kres_free(&r);
	snprintf(f->path, sizeof(f->path), "%s/kv", f->dir);
	assert_int_equal(access(f->path, F_OK), -1);
}

/* Under KVM there are 4 hardware breakpoints: events that need more are refused, exit 2. */
static void kvm_refuses_too_many_breakpoints(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	pid_t q;

	need_qemu();
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		print_message("# no /dev/kvm here: nothing to refuse\n");
		return;
	}
	assert_int_equal(kscope(&r, "vm", "start", "kvm", "--kernel", vm_demo_kernel(),
				"--accel", "kvm", "--paused", NULL), 0);
	q = (pid_t)kres_field(r.out, "qemu pid:");
	kres_free(&r);
	fails(2, "kscope events: 11 breakpoints needed (magic: 10, break:kmain: 1) but KVM "
	      "allows 4 hardware breakpoints; run with --accel tcg\n",
	      (const char *const[]){ "events", "kvm", "--trace", "magic", "--trace",
				     "break:kmain", NULL });
	free(run(0, (const char *const[]){ "vm", "destroy", "kvm", NULL }));
	assert_gone(f, "kvm", q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(magic_messages_as_json, setup, teardown),
		cmocka_unit_test_setup_teardown(page_faults_of_the_default_run, setup, teardown),
		cmocka_unit_test_setup_teardown(pause_on_page_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(triple_fault_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(watchpoint_on_a_kernel_variable, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_specs, setup, teardown),
		cmocka_unit_test_setup_teardown(supervisor_refuses_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(user_pause_outlives_the_client, setup, teardown),
		cmocka_unit_test_setup_teardown(passive_events_from_the_trace, setup, teardown),
		cmocka_unit_test_setup_teardown(passive_needs_the_trace, setup, teardown),
		cmocka_unit_test_setup_teardown(kvm_refuses_too_many_breakpoints, setup, teardown),
	};

	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
