/* test_inspect.c: kscope regs, peek, poke, vtop, pagemap, dump and sym on the demo kernel, run as a user would. */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <kscope/inspect.h>
#include <kscope/kt_abi.h>

#include "kscope_run.h"
#include "vmboot.h"

#define KERNEL_BASE 0xffffffff80000000ull  /* the demo's image: VA = PA + this */
#define HANG "kt.filter=example_crash.hang"  /* one case that spins on CPU 0: stays up */
#define RAM_END 0x8000000ull                 /* 128 MiB, the default memory */

static int setup(void **state)
{
	return kscope_fx_setup(state, "kit");
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

/* `kscope vm start NAME --kernel KERNEL --accel tcg EXTRA...`; returns the QEMU pid. */
static pid_t start_vm(const char *name, const char *kernel, const char *const *extra)
{
	const char *args[40] = { "vm", "start", name, "--kernel", kernel, "--accel", "tcg" };
	struct kres r;
	int n = 7;
	pid_t q;

	for (int i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	if (kscope_argv(&r, args) != 0)
		fail_msg("kscope vm start %s: status %d: %s", name, r.status, r.err);
	q = (pid_t)kres_field(r.out, "qemu pid:");
	assert_true(q > 0);
	kres_free(&r);
	return q;
}

static void destroy(const char *name, pid_t qemu)
{
	struct kres r;

	assert_int_equal(kscope(&r, "vm", "destroy", name, NULL), 0);
	kres_free(&r);
	assert_true(pid_gone(qemu, 3));
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

/* Waits (at most 60 s) for text in the file path; returns the file from that text on. */
static char *await_in(const char *path, const char *text)
{
	for (int i = 0; i < 6000; i++) {
		char *c = slurp(path), *at = strstr(c, text);

		if (at) {
			char *rest = strdup(at);
			free(c);
			return rest;
		}
		free(c);
		sleep_ms(10);
	}
	fail_msg("'%s' never came in %s", text, path);
	return NULL;
}

/* Waits for text on the console of VM name (its console.log). */
static char *await(struct kscope_fx *f, const char *name, const char *text)
{
	snprintf(f->path, sizeof(f->path), "%s/%s/console.log", f->dir, name);
	return await_in(f->path, text);
}

/* The va and pa of a "kscope-demo: <what> va 0x.. pa 0x.." boot line. */
static void boot_line(struct kscope_fx *f, const char *name, const char *what, uint64_t *va,
		      uint64_t *pa)
{
	char head[96], *line;

	snprintf(head, sizeof(head), "kscope-demo: %s va ", what);
	line = await(f, name, head);
	assert_int_equal(sscanf(line + strlen(head), "0x%" SCNx64 " pa 0x%" SCNx64, va, pa), 2);
	free(line);
}

static json_t *run_json(const char *const *args)
{
	char *out = run(0, args);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);

	if (!j)
		fail_msg("not JSON (%s): %s", je.text, out);
	free(out);
	return j;
}

static uint64_t hex_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	assert_non_null(s);
	return strtoull(s, NULL, 16);
}

/* The last line of text (without its newline). */
static const char *last_line(char *text)
{
	size_t n = strlen(text);
	char *nl;

	if (n && text[n - 1] == '\n')
		text[--n] = 0;
	nl = strrchr(text, '\n');
	return nl ? nl + 1 : text;
}

/* Starts VM name on the demo kernel in its hang case (it stays up) and waits for the case. */
static pid_t hang_vm(struct kscope_fx *f, const char *name, const char *const *extra)
{
	const char *args[16] = { "--append", HANG };
	int n = 2;

	for (int i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	pid_t q = start_vm(name, vm_demo_kernel(), args);
	free(await(f, name, "# Subtest: example_crash"));
	return q;
}

/* ---- tests ---- */

/* What peek prints for kt_state, in each format, while the VM runs. */
struct peek_case {
	const char *args[8];  /* after "peek", "kt" */
	const char *out;      /* stdout; a leading '^' checks the start only */
};

/* The kt_ state, read by its symbol while the VM runs, raw and decoded. */
static void kt_state_by_symbol(void **state)
{
	static const struct peek_case cases[] = {
		{ { "kt_state", "--format", "u64" }, "0x544b45504f43534b\n" },
		{ { "kt_state+8", "--format", "u32" }, "0x1\n" },  /* KT_ABI_VERSION */
		{ { "kt_state", "8", "--format", "str" }, "KSCOPEKT\n" },
		{ { "kt_state", "--format", "kt" }, "^kt_ state at 0xffffffff8" },
	};
	struct kscope_fx *f = *state;
	uint64_t va, pa;
	char *out, want[96];
	pid_t q;

	need_qemu();
	q = hang_vm(f, "kt", NULL);
	boot_line(f, "kt", "kt_state", &va, &pa);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[12] = { "peek", "kt" };

		for (int j = 0; cases[i].args[j]; j++)
			args[2 + j] = cases[i].args[j];
		out = run(0, args);
		if (cases[i].out[0] == '^')
			assert_memory_equal(out, cases[i].out + 1, strlen(cases[i].out + 1));
		else
			assert_string_equal(out, cases[i].out);
		free(out);
	}
	out = run(0, (const char *const[]){ "peek", "kt", "kt_state", "16", NULL });
	snprintf(want, sizeof(want), "0x%016" PRIx64 ": 4b 53 43 4f 50 45 4b 54 01 00 00 00", va);
	assert_memory_equal(out, want, strlen(want));
	assert_non_null(strstr(out, "|KSCOPEKT"));
	free(out);
	/* The same bytes at the physical address the kernel printed. */
	snprintf(want, sizeof(want), "0x%" PRIx64, pa);
	out = run(0, (const char *const[]){ "peek", "kt", want, "8", "--phys", "--format", "str",
					    NULL });
	assert_string_equal(out, "KSCOPEKT\n");
	free(out);
	destroy("kt", q);
}

/* Decoded: the suite names come through the kernel's own pointers. */
static void kt_state_decoded(void **state)
{
	struct kscope_fx *f = *state;
	bool string = false, crash = false;
	json_t *j, *suite;
	char *out;
	size_t i;
	pid_t q;

	need_qemu();
	q = hang_vm(f, "ktd", NULL);
	out = run(0, (const char *const[]){ "peek", "ktd", "kt_state", "--format", "kt", NULL });
	assert_non_null(strstr(out, "(kt_state): phase running"));
	assert_non_null(strstr(out, "\nsuite example_crash: running"));
	assert_non_null(strstr(out, "\n  running  hang\n"));
	free(out);
	j = run_json((const char *const[]){ "peek", "ktd", "kt_state", "--format", "kt", "--json",
					    NULL });
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "kt"), "phase")),
			    "running");
	json_array_foreach(json_object_get(json_object_get(j, "kt"), "suites"), i, suite) {
		string |= !strcmp(json_string_value(json_object_get(suite, "name")), "string");
		crash |= !strcmp(json_string_value(json_object_get(suite, "name")), "example_crash");
	}
	assert_true(string && crash);
	json_decref(j);
	destroy("ktd", q);
}

/* Registers of a running VM: it is paused for the read, then runs again. */
static void registers_of_a_running_vm(void **state)
{
	struct kscope_fx *f = *state;
	json_t *j, *regs;
	char *out;
	pid_t q;

	need_qemu();
	q = hang_vm(f, "regs", (const char *const[]){ "--cpus", "2", NULL });
	out = run(0, (const char *const[]){ "regs", "regs", NULL });
	assert_memory_equal(out, "vCPU 0:\nrax ", 12);
	assert_non_null(strstr(out, "\nvCPU 1:\nrax "));
	assert_non_null(strstr(out, "\nmode long\n"));
	free(out);
	out = run(0, (const char *const[]){ "vm", "status", "regs", NULL });
	assert_non_null(strstr(out, "state:       running"));
	free(out);
	j = run_json((const char *const[]){ "regs", "regs", "--cpu", "1", "--json", NULL });
	assert_int_equal(json_array_size(json_object_get(j, "cpus")), 1);
	assert_true(json_is_true(json_object_get(j, "paused")));
	regs = json_object_get(json_array_get(json_object_get(j, "cpus"), 0), "regs");
	assert_int_equal(hex_of(regs, "cs") & 3, 0);  /* the kernel: ring 0 */
	assert_true(hex_of(regs, "rip") >= KERNEL_BASE);
	json_decref(j);
	destroy("regs", q);
}

/* A value written into the kernel's mailbox is what it prints and acknowledges. */
static void mailbox(void **state)
{
	struct kscope_fx *f = *state;
	uint64_t va, pa;
	char *out, want[128];
	pid_t q;

	need_qemu();
	/* The ring-3 case follows the mailbox and waits: the VM stays up to be read. */
	q = start_vm("mbox", vm_demo_kernel(), (const char *const[]){ "--append",
		     "kt.filter=example_host demo.spin_timeout_ms=60000", NULL });
	boot_line(f, "mbox", "demo_mailbox", &va, &pa);
	free(await(f, "mbox", "# mailbox: waiting"));
	out = run(0, (const char *const[]){ "poke", "mbox", "demo_mailbox", "0x6b73636f7065",
					    "--width", "8", NULL });
	snprintf(want, sizeof(want), "wrote 8 bytes at 0x%" PRIx64 " (demo_mailbox), pa 0x%"
		 PRIx64 "\n", va, pa);
	assert_string_equal(out, want);
	free(out);
	free(await(f, "mbox", "# mailbox: 0x6b73636f7065"));
	out = run(0, (const char *const[]){ "peek", "mbox", "demo_mailbox_ack", "--format",
					    "u64", NULL });
	assert_string_equal(out, "0x6b73636f7066\n");
	free(out);
	free(await(f, "mbox", "ok 1 mailbox"));
	destroy("mbox", q);
}

/* Pauses VM name until vCPU 0 is in ring 3 (not in a timer tick's handler). */
static void pause_in_ring3(const char *name)
{
	for (int i = 0; i < 50; i++) {
		free(run(0, (const char *const[]){ "vm", "pause", name, NULL }));
		json_t *j = run_json((const char *const[]){ "regs", name, "--cpu", "0", "--json",
							    NULL });
		json_t *cpu = json_array_get(json_object_get(j, "cpus"), 0);
		bool ring3 = hex_of(json_object_get(cpu, "regs"), "cs") == 0x23;

		assert_false(json_is_true(json_object_get(j, "paused"))); /* paused already */
		json_decref(j);
		if (ring3)
			return;
		free(run(0, (const char *const[]){ "vm", "resume", name, NULL }));
		sleep_ms(20);
	}
	fail_msg("vCPU 0 of %s was never found in ring 3", name);
}

/* A user address translates through the user task's tables; the flag a ring-3 program spins
 * on, written through its virtual address, lets the program and the case finish. */
static void ring3_flag(void **state)
{
	struct kscope_fx *f = *state;
	char *out, *line, want[128], saved[160];
	uint64_t flag_pa;
	struct kres r;
	pid_t q, con;

	need_qemu();
	q = start_vm("user", vm_demo_kernel(), (const char *const[]){ "--append",
		     "kt.filter=example_host.ring3_spin demo.spin_timeout_ms=60000", NULL });
	line = await(f, "user", "# ring3_spin: flag va 0x600000 pa ");
	assert_int_equal(sscanf(line, "# ring3_spin: flag va 0x600000 pa 0x%" SCNx64, &flag_pa), 1);
	free(line);
	pause_in_ring3("user");
	out = run(0, (const char *const[]){ "regs", "user", "--cpu", "0", NULL });
	assert_non_null(strstr(out, "\ncs 0023  ss 001b"));
	free(out);
	out = run(0, (const char *const[]){ "vtop", "user", "0x600000", "--cpu", "0", NULL });
	assert_non_null(strstr(out, "\n  4 KiB page\n"));
	snprintf(want, sizeof(want), "0x600000 -> 0x%" PRIx64 " P W U", flag_pa);
	assert_memory_equal(last_line(out), want, strlen(want));
	assert_non_null(strstr(last_line(out), " NX"));
	free(out);
	out = run(0, (const char *const[]){ "poke", "user", "0x600000", "0x5553455253504143",
					    "--cpu", "0", NULL });
	snprintf(want, sizeof(want), "wrote 8 bytes at 0x600000, pa 0x%" PRIx64 "\n", flag_pa);
	assert_string_equal(out, want);
	free(out);
	out = run(0, (const char *const[]){ "peek", "user", "0x600000", "--cpu", "0", "--format",
					    "u64", NULL });
	assert_string_equal(out, "0x5553455253504143\n");
	free(out);
	/* The case passes now and the guest exits, its runtime directory with it: a console
	 * follower keeps what it said. */
	snprintf(saved, sizeof(saved), "%s/console.out", f->dir);
	con = kscope_spawn((const char *const[]){ "vm", "console", "user", NULL }, saved);
	free(await_in(saved, "# ring3_spin: flag va"));  /* it follows from now on */
	/* The guest may exit (isa-debug-exit, from its vCPU thread) before QEMU answers the
	 * resume: that is still a resume, which says how the VM ended. */
	kscope(&r, "vm", "resume", "user", NULL);
	if (r.status != 0 || (strcmp(r.out, "user: running\n") &&
			      strncmp(r.out, "user: resumed, then ended (", 27)))
		fail_msg("vm resume: status %d, out '%s', err '%s'", r.status, r.out, r.err);
	kres_free(&r);
	assert_int_equal(kscope_wait(con, 30), 0);
	assert_true(pid_gone(q, 10));
	out = slurp(saved);
	assert_non_null(strstr(out, "ok 1 ring3_spin"));
	assert_non_null(strstr(out, "ended: the guest exited with code 0x10"));
	free(out);
}

/* vtop ends with the kernel's own translation, for the image and the direct map. */
static void vtop_agrees_with_the_kernel(void **state)
{
	struct kscope_fx *f = *state;
	uint64_t va, pa, dva, dpa;
	char *out, want[96], dm[32];
	struct kres r;
	pid_t q;

	need_qemu();
	q = hang_vm(f, "walk", NULL);
	boot_line(f, "walk", "kt_state", &va, &pa);
	boot_line(f, "walk", "kt_state@direct_map", &dva, &dpa);
	out = run(0, (const char *const[]){ "vtop", "walk", "kt_state", NULL });
	snprintf(want, sizeof(want), "0x%" PRIx64 " (kt_state) on vCPU 0, CR3 0x", va);
	assert_memory_equal(out, want, strlen(want));
	assert_non_null(strstr(out, "\n  PML4[511]  @ 0x"));
	assert_non_null(strstr(out, "\n  2 MiB page\n"));
	snprintf(want, sizeof(want), "0x%" PRIx64 " -> 0x%" PRIx64 " P W", va, pa);
	assert_memory_equal(last_line(out), want, strlen(want));
	free(out);
	snprintf(dm, sizeof(dm), "0x%" PRIx64, dva);
	out = run(0, (const char *const[]){ "vtop", "walk", dm, "--pause", NULL });
	snprintf(want, sizeof(want), "0x%" PRIx64 " -> 0x%" PRIx64 " ", dva, dpa);
	assert_memory_equal(last_line(out), want, strlen(want));
	free(out);
	/* Low memory is not mapped once the kernel runs: the walk says where it stopped. */
	assert_int_equal(kscope(&r, "vtop", "walk", "0x1000", NULL), 1);
	assert_string_equal(r.err, "kscope vtop: 0x1000 does not translate: not present at PML4\n");
	assert_non_null(strstr(r.out, "\n  PML4[0]    @ 0x"));
	assert_null(strstr(r.out, " -> "));
	kres_free(&r);
	destroy("walk", q);
}

/* Runs `nm KERNEL > path` (the System.map format). */
static void nm_to(const char *kernel, const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "nm '%s' > '%s'", kernel, path);
	assert_int_equal(system(cmd), 0);
}

/* A copy of the demo kernel without its symbol table, and nm's System.map of the original. */
static void stripped_kernel(struct kscope_fx *f, char *kernel, char *map, size_t size)
{
	char cmd[512];

	snprintf(kernel, size, "%s/stripped.elf", f->dir);
	snprintf(map, size, "%s/System.map", f->dir);
	nm_to(vm_demo_kernel(), map);
	snprintf(cmd, sizeof(cmd), "objcopy --strip-all '%s' '%s'", vm_demo_kernel(), kernel);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(elf_symbol(kernel, "kt_state"), 0);
}

/* A kernel without a symbol table: addresses work; symbols from a System.map per command. */
static void no_symbol_table(void **state)
{
	struct kscope_fx *f = *state;
	char kernel[128], map[128], *out, want[320];
	uint64_t va, pa;
	struct kres r;
	pid_t q;

	need_qemu();
	stripped_kernel(f, kernel, map, sizeof(kernel));
	q = start_vm("bare", kernel, (const char *const[]){ "--append", HANG, NULL });
	boot_line(f, "bare", "kt_state", &va, &pa);
	snprintf(want, sizeof(want), "kscope peek: unknown symbol 'kt_state': this VM has no "
		 "symbols (%s: no symbol table; give --symbols FILE)\n", kernel);
	fails(1, want, (const char *const[]){ "peek", "bare", "kt_state", NULL });
	snprintf(want, sizeof(want), "0x%" PRIx64, va);
	out = run(0, (const char *const[]){ "peek", "bare", want, "--format", "u64", NULL });
	assert_string_equal(out, "0x544b45504f43534b\n");
	free(out);
	out = run(0, (const char *const[]){ "peek", "bare", "kt_state", "--format", "u64",
					    "--symbols", map, NULL });
	assert_string_equal(out, "0x544b45504f43534b\n");
	free(out);
	out = run(0, (const char *const[]){ "vtop", "bare", "kt_state", "--symbols", map, NULL });
	snprintf(want, sizeof(want), "0x%" PRIx64 " -> 0x%" PRIx64 " ", va, pa);
	assert_memory_equal(last_line(out), want, strlen(want));
	free(out);
	assert_int_equal(kscope(&r, "sym", "bare", NULL), 1);
	assert_non_null(strstr(r.err, "this VM has no symbols"));
	kres_free(&r);
	destroy("bare", q);
}

/* The same kernel started with `--symbols System.map`: one round trip per command again. */
static void system_map_at_start(void **state)
{
	struct kscope_fx *f = *state;
	char kernel[128], map[128], *out, want[128];
	uint64_t va, pa;
	pid_t q;

	need_qemu();
	stripped_kernel(f, kernel, map, sizeof(kernel));
	q = start_vm("mapped", kernel, (const char *const[]){ "--append", HANG, "--symbols", map,
							     NULL });
	boot_line(f, "mapped", "kt_state", &va, &pa);
	free(await(f, "mapped", "# Subtest: example_crash"));
	out = run(0, (const char *const[]){ "peek", "mapped", "kt_state", "--format", "kt", NULL });
	assert_non_null(strstr(out, "\nsuite example_crash: running"));
	free(out);
	out = run(0, (const char *const[]){ "vtop", "mapped", "kt_state", NULL });
	snprintf(want, sizeof(want), "0x%" PRIx64 " -> 0x%" PRIx64 " ", va, pa);
	assert_memory_equal(last_line(out), want, strlen(want));
	free(out);
	out = run(0, (const char *const[]){ "sym", "mapped", "kt_state", "kmain+0x10", NULL });
	snprintf(want, sizeof(want), "0x%016" PRIx64 "  kt_state  D object", va);
	assert_memory_equal(out, want, strlen(want));
	assert_non_null(strstr(out, "  kmain+0x10  T function"));
	free(out);
	destroy("mapped", q);
}

/* One bad input, its exit status and its one line. */
struct bad_case {
	int status;
	const char *err;
	const char *args[10];
};

static const struct bad_case bad_cases[] = {
	{ 1, "kscope peek: unknown symbol 'no_such_symbol'\n",
	  { "peek", "bad", "no_such_symbol" } },
	{ 1, "kscope poke: unknown symbol 'no_such_symbol'\n",
	  { "poke", "bad", "no_such_symbol+4", "1" } },
	{ 1, "kscope peek: guest-physical 0x8000000 is not RAM\n",
	  { "peek", "bad", "0x8000000", "--phys" } },
	{ 1, "kscope peek: guest-physical 0x8000000 is not RAM\n",
	  { "peek", "bad", "0x7fffff8", "16", "--phys" } },
	{ 1, "kscope poke: guest-physical 0x40000000 is not RAM\n",
	  { "poke", "bad", "0x40000000", "1", "--phys" } },
	{ 1, "kscope peek: guest-virtual 0x1000 does not translate: not present at PML4\n",
	  { "peek", "bad", "0x1000" } },
	{ 2, "kscope poke: bad width '3' (use 1, 2, 4 or 8 bytes)\n",
	  { "poke", "bad", "demo_mailbox", "1", "--width", "3" } },
	{ 2, "kscope poke: value 0x100 does not fit in 1 byte\n",
	  { "poke", "bad", "demo_mailbox", "0x100", "--width", "1" } },
	{ 2, "kscope poke: bad value 'ten' (a number: decimal, or hex after 0x)\n",
	  { "poke", "bad", "demo_mailbox", "ten" } },
	{ 2, "kscope poke: --bytes: bad byte string at 'g' (hex digits, two per byte, like 6b73 "
	  "or '6b 73')\n", { "poke", "bad", "demo_mailbox", "--bytes", "6g" } },
	{ 2, "kscope peek: bad format 'u128' (use hex, u8, u16, u32, u64, str or kt)\n",
	  { "peek", "bad", "kt_state", "--format", "u128" } },
	{ 2, "kscope peek: length 6 is not a whole number of 4-byte values\n",
	  { "peek", "bad", "kt_state", "6", "--format", "u32" } },
	{ 2, "kscope peek: length 0x100000 is too large (at most 262144) (kscope dump writes more "
	  "to a file)\n", { "peek", "bad", "kt_state", "0x100000" } },
	{ 2, "kscope peek: a physical address must be a number, not a symbol ('kt_state')\n",
	  { "peek", "bad", "kt_state", "--phys" } },
	{ 2, "kscope peek: bad --cpu 'one' (a vCPU index: 0, 1, ...)\n",
	  { "peek", "bad", "kt_state", "--cpu", "one" } },
	{ 1, "kscope peek: no vCPU 3 (the VM has 1)\n", { "peek", "bad", "kt_state", "--cpu", "3" } },
	{ 1, "kscope regs: no vCPU 3 (the VM has 1)\n", { "regs", "bad", "--cpu", "3" } },
	{ 2, "kscope dump: dump reads guest-physical memory: give --phys START LEN\n",
	  { "dump", "bad", "0", "4096", "-o", "x" } },
	{ 2, "kscope vtop: unknown option '--phys' (kscope vtop --help lists them)\n",
	  { "vtop", "bad", "0x1000", "--phys" } },
	{ 2, "kscope regs: too many arguments (usage: kscope regs NAME [--cpu N])\n",
	  { "regs", "bad", "extra" } },
	{ 1, "kscope peek: no VM named 'nope' (kscope vm list shows the VMs)\n",
	  { "peek", "nope", "kt_state" } },
	{ 2, "kscope peek: bad VM name '../x' (1 to 32 letters, digits, '_', '.' or '-', not "
	  "starting with '.')\n", { "peek", "../x", "kt_state" } },
};

/* Every bad input is one clear line and the right exit status; nothing is half done. */
static void malformed_input(void **state)
{
	struct kscope_fx *f = *state;
	char *out;
	pid_t q;

	need_qemu();
	q = hang_vm(f, "bad", NULL);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		fails(bad_cases[i].status, bad_cases[i].err, bad_cases[i].args);
	/* The refused pokes wrote nothing. */
	out = run(0, (const char *const[]){ "peek", "bad", "demo_mailbox", "--format", "u64",
					    NULL });
	assert_string_equal(out, "0x0\n");
	free(out);
	destroy("bad", q);
	/* A VM that has ended: its name goes with it. */
	fails(1, "kscope peek: no VM named 'bad' (kscope vm list shows the VMs)\n",
	      (const char *const[]){ "peek", "bad", "kt_state", NULL });
}

/* --help says what a running VM means for each command. */
static void help_texts(void **state)
{
	static const char *const says[][2] = {
		{ "peek", "may show half done" }, { "poke", "never sees half of it" },
		{ "regs", "paused briefly" }, { "vtop", "--pause stops it" },
		{ "pagemap", "--pause stops it" }, { "dump", "--pause" },
		{ "sym", "--symbols FILE" },
	};
	struct kres r;

	(void)state;
	for (size_t i = 0; i < sizeof(says) / sizeof(says[0]); i++) {
		char usage[32];

		assert_int_equal(kscope(&r, says[i][0], "--help", NULL), 0);
		snprintf(usage, sizeof(usage), "usage: kscope %s NAME", says[i][0]);
		assert_memory_equal(r.out, usage, strlen(usage));
		assert_non_null(strstr(r.out, says[i][1]));
		kres_free(&r);
	}
	fails(2, "kscope poke: give a VALUE or --bytes HEX (usage: kscope poke NAME "
	      "ADDR|SYMBOL[+OFF] VALUE [--width 1|2|4|8] [--phys] [--cpu N] [--pause]\n"
	      "       kscope poke NAME ADDR|SYMBOL[+OFF] --bytes HEX [--phys] [--cpu N] "
	      "[--pause])\n", (const char *const[]){ "poke", "x", "demo_mailbox", NULL });
	fails(2, "kscope peek: usage: kscope peek NAME ADDR|SYMBOL[+OFF] [LEN] [--format F] "
	      "[--phys] [--cpu N] [--pause]\n", (const char *const[]){ "peek", "x", NULL });
}

/* pagemap lists the kernel image, the direct map and the kernel stacks. */
static void pagemap_lists_the_image(void **state)
{
	struct kscope_fx *f = *state;
	json_t *j;
	char *out;
	pid_t q;

	need_qemu();
	q = hang_vm(f, "pm", NULL);
	out = run(0, (const char *const[]){ "pagemap", "pm", NULL });
	assert_memory_equal(out, "vCPU 0, CR3 0x", 14);
	assert_non_null(strstr(out, "\n0xffffffff80000000-0xffffffffc0000000  0x000000000000"
				"       1 GiB    2 MiB  P W"));
	assert_non_null(strstr(out, "\n0xffff800000000000-"));
	free(out);
	j = run_json((const char *const[]){ "pagemap", "pm", "--pause", "--json", NULL });
	assert_true(json_array_size(json_object_get(j, "ranges")) >= 2);
	assert_int_equal(json_integer_value(json_object_get(j, "skipped")), 0);
	json_decref(j);
	destroy("pm", q);
}

/* Reads len bytes of guest-physical memory at gpa with peek --json. */
static uint8_t *peek_phys(const char *name, uint64_t gpa, size_t len)
{
	char at[32], n[32];
	uint8_t *bytes = NULL;
	size_t got = 0;
	json_t *j;

	snprintf(at, sizeof(at), "0x%" PRIx64, gpa);
	snprintf(n, sizeof(n), "%zu", len);
	j = run_json((const char *const[]){ "peek", name, at, n, "--phys", "--json", NULL });
	assert_int_equal(ks_inspect_hex_decode(json_string_value(json_object_get(j, "data")),
					       &bytes, &got), 0);
	assert_int_equal(got, len);
	json_decref(j);
	return bytes;
}

/* 1 MiB from the kernel's load address holds what peek --phys shows; past RAM, no file. */
static void dump_matches_peek(void **state)
{
	struct kscope_fx *f = *state;
	const size_t mib = 1u << 20, part = KS_INSPECT_MAX_READ;
	char file[128], *out, *text;
	struct stat st;
	struct kres r;
	FILE *fp;
	pid_t q;

	need_qemu();
	q = hang_vm(f, "dump", NULL);
	free(run(0, (const char *const[]){ "vm", "pause", "dump", NULL }));  /* nothing moves */
	snprintf(file, sizeof(file), "%s/ram.bin", f->dir);
	out = run(0, (const char *const[]){ "dump", "dump", "--phys", "0x100000", "1048576", "-o",
					    file, NULL });
	snprintf(f->path, sizeof(f->path), "wrote 1048576 bytes of guest-physical memory "
		 "0x100000-0x200000 to %s\n", file);
	assert_string_equal(out, f->path);
	free(out);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_size, mib);
	assert_non_null(fp = fopen(file, "rb"));
	assert_non_null(text = malloc(mib));
	assert_int_equal(fread(text, 1, mib, fp), mib);
	fclose(fp);
	for (size_t o = 0; o < mib; o += part) {
		uint8_t *image = peek_phys("dump", 0x100000 + o, part);
		assert_memory_equal(text + o, image, part);
		free(image);
	}
	free(text);
	free(run(0, (const char *const[]){ "vm", "resume", "dump", NULL }));
	unlink(file);
	assert_int_equal(kscope(&r, "dump", "dump", "--phys", "0x7ff0000", "0x20000", "-o", file,
				"--pause", NULL), 1);
	assert_string_equal(r.err, "kscope dump: guest-physical 0x8000000 is not RAM\n");
	kres_free(&r);
	assert_int_equal(access(file, F_OK), -1);
	destroy("dump", q);
}

/* --bytes land in the order given; a narrow value lands amid them, little-endian. */
static void poke_bytes_and_widths(void **state)
{
	struct kscope_fx *f = *state;
	char *out;
	pid_t q;

	need_qemu();
	q = hang_vm(f, "bytes", NULL);
	free(run(0, (const char *const[]){ "poke", "bytes", "demo_mailbox", "--bytes",
					   "6b 73 63 6f 70 65 00 00", "--pause", NULL }));
	out = run(0, (const char *const[]){ "peek", "bytes", "demo_mailbox", "--format", "str",
					    NULL });
	assert_string_equal(out, "kscope\n");
	free(out);
	free(run(0, (const char *const[]){ "poke", "bytes", "demo_mailbox+2", "-1", "--width",
					   "2", NULL }));
	out = run(0, (const char *const[]){ "peek", "bytes", "demo_mailbox", "--format", "u64",
					    NULL });
	assert_string_equal(out, "0x6570ffff736b\n");
	free(out);
	out = run(0, (const char *const[]){ "peek", "bytes", "demo_mailbox", "8", "--format",
					    "u16", NULL });
	assert_non_null(strstr(out, ": 0x736b 0xffff 0x6570 0x0\n"));
	free(out);
	destroy("bytes", q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kt_state_by_symbol, setup, teardown),
		cmocka_unit_test_setup_teardown(kt_state_decoded, setup, teardown),
		cmocka_unit_test_setup_teardown(registers_of_a_running_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(mailbox, setup, teardown),
		cmocka_unit_test_setup_teardown(ring3_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(vtop_agrees_with_the_kernel, setup, teardown),
		cmocka_unit_test_setup_teardown(no_symbol_table, setup, teardown),
		cmocka_unit_test_setup_teardown(system_map_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_input, setup, teardown),
		cmocka_unit_test_setup_teardown(help_texts, setup, teardown),
		cmocka_unit_test_setup_teardown(pagemap_lists_the_image, setup, teardown),
		cmocka_unit_test_setup_teardown(dump_matches_peek, setup, teardown),
		cmocka_unit_test_setup_teardown(poke_bytes_and_widths, setup, teardown),
	};

	return cmocka_run_group_tests_name("inspect", tests, NULL, NULL);
}
