/* test_vm_cli.c: the `kscope vm` commands, run as a user would, against the demo kernel. */
#include <dirent.h>
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <kscope/kt_abi.h>

#include "kscope_run.h"
#include "vmboot.h"

#define KERNEL_BASE 0xffffffff80000000ull  /* the demo's image: VA = PA + this */

/* The demo kernel then runs one case that spins with interrupts off on CPU 0: it stays up. */
#define HANG "kt.filter=example_crash.hang"

static int setup(void **state)
{
	return kscope_fx_setup(state, "kvt");
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

static bool rundir_exists(struct kscope_fx *f, const char *name)
{
	struct stat st;

	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	return stat(f->path, &st) == 0;
}

/* True if a guest RAM file of VM name exists in /dev/shm. */
static bool shm_left(const char *name)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d)))
		found = !strncmp(e->d_name, "kscope-", 7) && strstr(e->d_name, name);
	if (d)
		closedir(d);
	return found;
}

/* `kscope vm start NAME --kernel DEMO --accel tcg EXTRA...`; returns the QEMU pid. */
static pid_t start_vm(const char *name, const char *const *extra, pid_t *supervisor)
{
	const char *args[40] = { "vm", "start", name, "--kernel", vm_demo_kernel(), "--accel",
				 "tcg" };
	struct kres r;
	int n = 7;
	pid_t q;

	for (int i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	if (kscope_argv(&r, args) != 0)
		fail_msg("kscope vm start %s: status %d: %s", name, r.status, r.err);
	q = (pid_t)kres_field(r.out, "qemu pid:");
	if (supervisor)
		*supervisor = (pid_t)kres_field(r.out, "supervisor:");
	assert_true(q > 0);
	assert_non_null(strstr(r.out, "accel:       tcg"));
	kres_free(&r);
	return q;
}

/* Runs `kscope vm ARGS...`, expects exit status 0, and parses its stdout as JSON. */
static json_t *vm_json(const char *const *args)
{
	struct kres r;
	json_error_t je;
	json_t *j;

	if (kscope_argv(&r, args) != 0)
		fail_msg("kscope %s %s: status %d: %s", args[1], args[2], r.status, r.err);
	j = json_loads(r.out, 0, &je);
	if (!j)
		fail_msg("not JSON (%s): %s", je.text, r.out);
	kres_free(&r);
	return j;
}

static json_t *status_of(const char *name)
{
	return vm_json((const char *const[]){ "vm", "status", name, "--json", NULL });
}

/* Destroys VM name and checks that nothing of it is left. */
static void destroy_clean(struct kscope_fx *f, const char *name, pid_t qemu)
{
	struct kres r;
	pid_t left;

	assert_int_equal(kscope(&r, "vm", "destroy", name, NULL), 0);
	assert_non_null(strstr(r.out, "destroyed"));
	kres_free(&r);
	assert_true(pid_gone(qemu, 3));
	assert_false(rundir_exists(f, name));
	assert_false(shm_left(name));
	strcat(f->path, "/");  /* QEMU's sockets are in there */
	left = process_mentioning(f->path);
	if (left > 0) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "ps -o pid,ppid,stat,cmd -p %d >&2", (int)left);
		(void)!system(cmd);
		fail_msg("process %d mentions %s after destroy", (int)left, f->path);
	}
}

/* ---- tests ---- */

struct spec_case {
	const char *args[12];
	const char *err;
};

static void spec_errors(void **state)
{
	static const struct spec_case cases[] = {
		{ { "--cpus", "0" }, "cpus: must be at least 1 (got 0)" },
		{ { "--cpus", "4", "--sockets", "2", "--cores", "2", "--threads", "2" },
		  "topology: sockets 2 x cores 2 x threads 2 = 8, but cpus is 4" },
		{ { "--cpus", "4", "--sockets", "3" },
		  "topology: cpus 4 is not divisible by sockets 3 x threads 1" },
		{ { "--memory", "8M" }, "memory: 8 MiB is too small (minimum 16 MiB)" },
		{ { "--kernel", "" }, NULL },  /* the kernel flag left out: see below */
		{ { "--kernel", "/etc/passwd" },
		  "kernel: /etc/passwd: not a kernel image (expected an ELF file or a Linux "
		  "bzImage)" },
		{ { "--machine", "foo" },
		  "machine: unknown machine 'foo' (use microvm, pc or q35)" },
		{ { "--memory", "256M", "--numa", "128M,0", "--numa", "64M" },
		  "numa: nodes add up to 192 MiB but memory is 256 MiB" },
		{ { "--cpus", "0x4" }, "cpus: bad number '0x4'" },
	};
	struct kscope_fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[20] = { "vm", i % 2 ? "run" : "start", "bad" };
		bool no_kernel = !cases[i].err, own_kernel = !strcmp(cases[i].args[0], "--kernel");
		char want[256];
		struct kres r;
		int n = 3;

		if (!own_kernel) {
			args[n++] = "--kernel";
			args[n++] = vm_demo_kernel();
		}
		for (int j = 0; !no_kernel && cases[i].args[j]; j++)
			args[n++] = cases[i].args[j];
		args[n] = NULL;
		snprintf(want, sizeof(want), "kscope vm %s: %s\n", args[1],
			 no_kernel ? "kernel: required, but not given" : cases[i].err);
		assert_int_equal(kscope_argv(&r, args), 2);
		assert_string_equal(r.err, want);
		assert_string_equal(r.out, "");
		kres_free(&r);
	}
	assert_false(rundir_exists(f, "bad"));
}

static void usage_errors(void **state)
{
	static const char *const subs[] = { "start", "run", "list", "status", "pause",
					     "resume", "reset", "stop", "destroy", "snapshot",
					     "console", "qmp" };
	struct kres r;

	(void)state;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char want[64];

		assert_int_equal(kscope(&r, "vm", subs[i], "--help", NULL), 0);
		snprintf(want, sizeof(want), "usage: kscope vm %s ", subs[i]);
		assert_non_null(strstr(r.out, want));
		kres_free(&r);
	}
	assert_int_equal(kscope(&r, "vm", "--help", NULL), 0);
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "frobnicate", NULL), 2);
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "start", "x", "--bogus", "1", NULL), 2);
	assert_string_equal(r.err, "kscope vm start: unknown option '--bogus' (kscope vm start "
			    "--help lists them)\n");
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "pause", "nope", NULL), 1);
	assert_string_equal(r.err, "kscope vm pause: no VM named 'nope' (kscope vm list shows "
			    "the VMs)\n");
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "status", "../etc", NULL), 2);
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "qmp", "nope", "{not json", NULL), 2);
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "snapshot", "nope", "save", NULL), 2);
	kres_free(&r);
}

static const char *const numa_vm[] = {
	"--cpus", "4", "--sockets", "2", "--cores", "2", "--memory", "256M",
	"--numa", "128M,0-1", "--numa", "128M,2-3", "--append", HANG, NULL,
};

/* 4 CPUs in 2 sockets of 2 cores, one NUMA node per socket, as QEMU itself reports. */
static void topology(void **state)
{
	struct kscope_fx *f = *state;
	pid_t sup, q;
	json_t *st, *cpus, *cpu, *reply;
	size_t i;

	need_qemu();
	q = start_vm("topo", numa_vm, &sup);
	st = status_of("topo");
	assert_string_equal(json_string_value(json_object_get(st, "name")), "topo");
	assert_string_equal(json_string_value(json_object_get(st, "state")), "running");
	assert_string_equal(json_string_value(json_object_get(st, "accel")), "tcg");
	assert_int_equal(json_integer_value(json_object_get(st, "qemu_pid")), q);
	assert_int_equal(json_integer_value(json_object_get(st, "supervisor_pid")), sup);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "spec"),
							    "memory_mib")), 256);
	cpus = json_object_get(st, "cpus");
	assert_int_equal(json_array_size(cpus), 4);
	json_array_foreach(cpus, i, cpu) {
		json_t *p = json_object_get(cpu, "props");
		json_int_t idx = json_integer_value(json_object_get(cpu, "cpu-index"));

		assert_int_equal(json_integer_value(json_object_get(p, "socket-id")), idx / 2);
		assert_int_equal(json_integer_value(json_object_get(p, "core-id")), idx % 2);
		assert_int_equal(json_integer_value(json_object_get(p, "node-id")), idx / 2);
	}
	json_decref(st);
	/* The same through the raw QMP passthrough. */
	reply = vm_json((const char *const[]){ "vm", "qmp", "topo",
					       "{\"execute\":\"query-cpus-fast\"}", NULL });
	assert_int_equal(json_array_size(json_object_get(reply, "return")), 4);
	json_decref(reply);
	destroy_clean(f, "topo", q);
}

static const char *last_event(json_t *st)
{
	json_t *ev = json_object_get(st, "events");

	return json_string_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1),
						 "event"));
}

static void pause_resume(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	json_t *st;
	pid_t q;

	need_qemu();
	q = start_vm("pr", (const char *const[]){ "--append", HANG, NULL }, NULL);
	assert_int_equal(kscope(&r, "vm", "pause", "pr", NULL), 0);
	assert_string_equal(r.out, "pr: paused\n");
	kres_free(&r);
	st = status_of("pr");
	assert_string_equal(json_string_value(json_object_get(st, "state")), "paused");
	assert_string_equal(json_string_value(json_object_get(st, "qemu_status")), "paused");
	assert_string_equal(last_event(st), "STOP");
	json_decref(st);
	assert_int_equal(kscope(&r, "vm", "resume", "pr", NULL), 0);
	assert_string_equal(r.out, "pr: running\n");
	kres_free(&r);
	st = status_of("pr");
	assert_string_equal(json_string_value(json_object_get(st, "state")), "running");
	assert_string_equal(last_event(st), "RESUME");
	json_decref(st);
	destroy_clean(f, "pr", q);
}

/* kt_state's seq, read from guest-physical memory through HMP `xp`. */
static uint64_t read_seq(const char *name, uint64_t gpa)
{
	char cmd[160];
	json_t *r;
	const char *text, *colon;
	uint64_t v;

	snprintf(cmd, sizeof(cmd), "{\"execute\":\"human-monitor-command\",\"arguments\":"
		 "{\"command-line\":\"xp /1gx 0x%" PRIx64 "\"}}", gpa);
	r = vm_json((const char *const[]){ "vm", "qmp", name, cmd, NULL });
	text = json_string_value(json_object_get(r, "return"));
	assert_non_null(text);
	colon = strchr(text, ':');
	assert_non_null(colon);
	v = strtoull(colon + 1, NULL, 16);
	json_decref(r);
	return v;
}

/* A snapshot taken before the first instruction brings the guest's memory back there. */
static void snapshot_roundtrip(void **state)
{
	struct kscope_fx *f = *state;
	uint64_t sym = elf_symbol(vm_demo_kernel(), "kt_state"), gpa, seq0, seq1;
	struct kres r;
	json_t *st;
	pid_t q;

	need_qemu();
	assert_true(sym > KERNEL_BASE);
	gpa = sym - KERNEL_BASE + offsetof(struct kt_abi_state, seq);
	q = start_vm("snap", (const char *const[]){ "--append", HANG, "--paused", NULL }, NULL);
	st = status_of("snap");
	assert_string_equal(json_string_value(json_object_get(st, "state")), "paused");
	json_decref(st);
	seq0 = read_seq("snap", gpa);
	assert_int_equal(kscope(&r, "vm", "snapshot", "snap", "save", "boot", NULL), 0);
	assert_string_equal(r.out, "snap: saved snapshot 'boot'\n");
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "resume", "snap", NULL), 0);
	kres_free(&r);
	/* Runs until the hang case has started: kt_state changed and settled. */
	for (int i = 0; i < 500 && (seq1 = read_seq("snap", gpa)) < seq0 + 4; i++)
		sleep_ms(10);
	assert_true(seq1 >= seq0 + 4);
	assert_int_equal(kscope(&r, "vm", "pause", "snap", NULL), 0);
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "snapshot", "snap", "list", NULL), 0);
	assert_non_null(strstr(r.out, "boot"));
	assert_non_null(strstr(r.out, " DEVICES ") && strstr(r.out, " RAM "));
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "snapshot", "snap", "load", "boot", NULL), 0);
	kres_free(&r);
	assert_int_equal(read_seq("snap", gpa), seq0);
	assert_int_equal(kscope(&r, "vm", "snapshot", "snap", "delete", "boot", NULL), 0);
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "snapshot", "snap", "list", NULL), 0);
	assert_string_equal(r.out, "no snapshots\n");
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "snapshot", "snap", "load", "boot", NULL), 1);
	kres_free(&r);
	destroy_clean(f, "snap", q);
}

/* `vm list` finds a VM whose supervisor was SIGKILLed and cleans up after it. */
static void list_reaps_dead(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	pid_t sup, q;

	need_qemu();
	q = start_vm("alive", (const char *const[]){ "--append", HANG, NULL }, NULL);
	start_vm("doomed", (const char *const[]){ "--append", HANG, NULL }, &sup);
	assert_int_equal(kill(sup, SIGKILL), 0);
	assert_true(pid_gone(sup, 3));
	assert_int_equal(kscope(&r, "vm", "status", "doomed", NULL), 1);
	assert_non_null(strstr(r.err, "its supervisor died"));
	kres_free(&r);
	/* Files of the runtime base that are not VMs (a KVM probe cache) are left alone. */
	snprintf(f->path, sizeof(f->path), "%s/not-a-vm", f->dir);
	fclose(fopen(f->path, "w"));
	assert_int_equal(kscope(&r, "vm", "list", NULL), 0);
	assert_null(strstr(r.out, "not-a-vm"));
	assert_int_equal(access(f->path, F_OK), 0);
	assert_non_null(strstr(r.out, "alive "));
	assert_non_null(strstr(r.out, "running"));
	assert_non_null(strstr(r.out, "doomed "));
	assert_non_null(strstr(r.out, "dead"));
	kres_free(&r);
	assert_false(rundir_exists(f, "doomed"));
	strcat(f->path, "/");
	assert_int_equal(process_mentioning(f->path), 0);
	assert_true(rundir_exists(f, "alive"));
	assert_int_equal(kscope(&r, "vm", "list", NULL), 0);
	assert_null(strstr(r.out, "doomed"));
	kres_free(&r);
	destroy_clean(f, "alive", q);
}

/* Two VMs at once, and a name that is taken. */
static void two_vms(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	json_t *a, *b;
	pid_t qa, qb;
	FILE *cf;

	need_qemu();
	qa = start_vm("one", (const char *const[]){ "--append", HANG, NULL }, NULL);
	/* The second from a config file, as docs/vm-config.md describes it. */
	snprintf(f->path, sizeof(f->path), "%s/conf-of-two", f->dir);
	cf = fopen(f->path, "w");
	assert_non_null(cf);
	fprintf(cf, "# two CPUs\ncpus = 2\nappend = %s\n", HANG);
	fclose(cf);
	qb = start_vm("two", (const char *const[]){ "--config", f->path, NULL }, NULL);
	assert_true(qa != qb);
	assert_int_equal(kscope(&r, "vm", "start", "one", "--kernel", vm_demo_kernel(), NULL), 1);
	assert_string_equal(r.err, "kscope vm start: a VM named 'one' already exists (kscope vm "
			    "destroy one ends it)\n");
	kres_free(&r);
	a = status_of("one");
	b = status_of("two");
	assert_int_equal(json_integer_value(json_object_get(a, "qemu_pid")), qa);
	assert_int_equal(json_integer_value(json_object_get(b, "qemu_pid")), qb);
	assert_int_equal(json_array_size(json_object_get(a, "cpus")), 1);
	assert_int_equal(json_array_size(json_object_get(b, "cpus")), 2);
	json_decref(a);
	json_decref(b);
	destroy_clean(f, "one", qa);
	b = status_of("two");
	assert_string_equal(json_string_value(json_object_get(b, "state")), "running");
	json_decref(b);
	destroy_clean(f, "two", qb);
}

/* A VM whose guest exits by itself takes its supervisor and runtime directory with it. */
static void ends_by_itself(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	pid_t sup, q;

	need_qemu();
	q = start_vm("brief", (const char *const[]){ "--append", "kt.filter=string.*", NULL },
		     &sup);
	assert_true(pid_gone(q, 10));
	assert_true(pid_gone(sup, 5));
	assert_false(rundir_exists(f, "brief"));
	assert_int_equal(kscope(&r, "vm", "status", "brief", NULL), 1);
	kres_free(&r);
}

/* A console follower sees the boot and is told when `vm stop` ends the VM. */
static void console_and_stop(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	char out[160], *text = NULL;
	size_t len = 0;
	FILE *fp;
	pid_t q, con;

	need_qemu();
	q = start_vm("con", (const char *const[]){ "--append", HANG, NULL }, NULL);
	snprintf(out, sizeof(out), "%s/console.out", f->dir);
	con = kscope_spawn((const char *const[]){ "vm", "console", "con", NULL }, out);
	/* Following, and the guest is in its hanging case (lines from the tail or the stream). */
	for (int i = 0; i < 1000 && !(text && strstr(text, "# Subtest: example_crash")); i++) {
		sleep_ms(10);
		if ((fp = fopen(out, "r"))) {
			if (getdelim(&text, &len, 0, fp) <= 0 && text)
				text[0] = 0;
			fclose(fp);
		}
	}
	assert_int_equal(kscope(&r, "vm", "stop", "con", NULL), 0);
	assert_non_null(strstr(r.out, "con: stopped"));
	kres_free(&r);
	assert_true(pid_gone(q, 3));
	assert_false(rundir_exists(f, "con"));
	assert_int_equal(kscope_wait(con, 5), 0);
	fp = fopen(out, "r");
	assert_non_null(fp);
	assert_true(getdelim(&text, &len, 0, fp) > 0);
	fclose(fp);
	assert_non_null(strstr(text, "kscope-demo:"));
	assert_non_null(strstr(text, "# Subtest: example_crash"));
	assert_non_null(strstr(text, "kscope vm console: VM 'con' ended: "));
	free(text);
	unlink(out);
}

/* `vm run`: the console on stdout, the exit status from the guest's verdict. */
static void run_verdicts(void **state)
{
	struct kscope_fx *f = *state;
	struct kres r;
	const char *k = vm_demo_kernel();

	need_qemu();
	assert_int_equal(kscope(&r, "vm", "run", "ok", "--kernel", k, "--accel", "tcg", "--cpus",
				"2", NULL), 0);
	assert_non_null(strstr(r.out, "KTAP version 1"));
	assert_non_null(strstr(r.out, "# Totals: pass:"));
	assert_non_null(strstr(r.err, "ended: the guest exited with code 0x10"));
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "run", "bad", "--kernel", k, "--accel", "tcg",
				"--append", "kt.filter=example_fail.*", NULL), 1);
	assert_non_null(strstr(r.out, "not ok"));
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "run", "slow", "--kernel", k, "--accel", "tcg",
				"--append", HANG, "--timeout", "0.5", NULL), 1);
	assert_non_null(strstr(r.err, "(timed out)"));
	kres_free(&r);
	assert_int_equal(kscope(&r, "vm", "run", "t", "--kernel", k, "--timeout", "soon", NULL),
			 2);
	kres_free(&r);
	assert_false(rundir_exists(f, "ok") || rundir_exists(f, "bad") ||
		     rundir_exists(f, "slow"));
	assert_false(shm_left("slow"));
}

/* SIGKILL cannot be caught: QEMU must still go (parent-death signal); SIGTERM is clean. */
static void run_killed(void **state)
{
	struct kscope_fx *f = *state;
	const char *args[] = { "vm", "run", "victim", "--kernel", vm_demo_kernel(), "--accel",
			       "tcg", "--append", HANG, NULL };
	char out[160], *text = NULL;
	size_t len = 0;
	FILE *fp;
	pid_t run, q = -1;
	struct kres r;

	need_qemu();
	snprintf(out, sizeof(out), "%s/run.out", f->dir);
	for (int sig = 0; sig < 2; sig++) {
		run = kscope_spawn(args, out);
		for (int i = 0; i < 500 && q <= 0; i++) {
			sleep_ms(10);
			if ((fp = fopen(out, "r"))) {
				if (getdelim(&text, &len, 0, fp) > 0 && strstr(text, "qemu pid "))
					q = (pid_t)strtol(strstr(text, "qemu pid ") + 9, NULL, 10);
				fclose(fp);
			}
		}
		assert_true(q > 0);
		kill(run, sig ? SIGTERM : SIGKILL);
		assert_int_equal(kscope_wait(run, 5), sig ? 1 : 128 + SIGKILL);
		assert_true(pid_gone(q, 3));
		q = -1;
		if (!sig) {
			/* Only the runtime directory stays; `vm list` takes it away. */
			assert_int_equal(kscope(&r, "vm", "list", NULL), 0);
			assert_non_null(strstr(r.out, "victim"));
			kres_free(&r);
		}
		assert_false(rundir_exists(f, "victim"));
	}
	free(text);
	unlink(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(spec_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(topology, setup, teardown),
		cmocka_unit_test_setup_teardown(pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshot_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(list_reaps_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(two_vms, setup, teardown),
		cmocka_unit_test_setup_teardown(ends_by_itself, setup, teardown),
		cmocka_unit_test_setup_teardown(console_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(run_verdicts, setup, teardown),
		cmocka_unit_test_setup_teardown(run_killed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
