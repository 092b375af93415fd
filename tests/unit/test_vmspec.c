/* test_vmspec.c: the VM spec's setters, validation, topology rule and config files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/vmspec.h>

#include "vmspec_fixtures.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- one key at a time ---- */

struct set_case {
	const char *key, *value;
	const char *want; /* the error, or for a valid value a line of ks_vmspec_to_config() */
};

static const struct set_case set_errors[] = {
	{ "colour", "red", "unknown key 'colour'" },
	{ NULL, "x", "unknown key '(null)'" },
	{ "--cpus", "2", "unknown key '--cpus'" },
	{ "cpus", "0", "cpus: must be at least 1 (got 0)" },
	{ "cpus", "-1", "cpus: must be at least 1 (got -1)" },
	{ "cpus", "four", "cpus: bad number 'four'" },
	{ "cpus", "4x", "cpus: bad number '4x'" },
	{ "cpus", " 4", "cpus: bad number ' 4'" },
	{ "cpus", "+4", "cpus: bad number '+4'" },
	{ "cpus", "0x10", "cpus: bad number '0x10'" },
	{ "cpus", "", "cpus: needs a value" },
	{ "cpus", "289", "cpus: at most 288 (got 289)" },
	{ "cpus", "99999999999999999999", "cpus: at most 288 (got 99999999999999999999)" },
	{ "sockets", "0", "sockets: must be at least 1 (got 0)" },
	{ "cores", "x", "cores: bad number 'x'" },
	{ "threads", "-2", "threads: must be at least 1 (got -2)" },
	{ "threads", "300", "threads: at most 288 (got 300)" },
	{ "memory", "8M", "memory: 8 MiB is too small (minimum 16 MiB)" },
	{ "memory", "0", "memory: 0 MiB is too small (minimum 16 MiB)" },
	{ "memory", "15", "memory: 15 MiB is too small (minimum 16 MiB)" },
	{ "memory", "-5M", "memory: must not be negative (got -5M)" },
	{ "memory", "2T", "memory: 2 TiB is too large (maximum 1 TiB)" },
	{ "memory", "1025G", "memory: 1025 GiB is too large (maximum 1 TiB)" },
	{ "memory", "1048577", "memory: 1048577 MiB is too large (maximum 1 TiB)" },
	{ "memory", "99999999999999999999T",
	  "memory: 99999999999999999999T is too large (maximum 1 TiB)" },
	{ "memory", "1.5G", "memory: bad size '1.5G' (use MiB, or a suffix M, G or T, e.g. 256M)" },
	{ "memory", "256K", "memory: bad size '256K' (use MiB, or a suffix M, G or T, e.g. 256M)" },
	{ "memory", "lots", "memory: bad size 'lots' (use MiB, or a suffix M, G or T, e.g. 256M)" },
	{ "memory", "M", "memory: bad size 'M' (use MiB, or a suffix M, G or T, e.g. 256M)" },
	{ "memory", "", "memory: needs a value" },
	{ "serial", "5", "serial: at most 4 ports (got 5)" },
	{ "serial", "-1", "serial: must be at least 0 (got -1)" },
	{ "net", "tap", "net: only 'user' is supported (got 'tap')" },
	{ "net", "bridge", "net: only 'user' is supported (got 'bridge')" },
	{ "machine", "foo", "machine: unknown machine 'foo' (use microvm, pc or q35)" },
	{ "machine", "PC", "machine: unknown machine 'PC' (use microvm, pc or q35)" },
	{ "accel", "hvf", "accel: unknown accelerator 'hvf' (use auto, kvm or tcg)" },
	{ "arch", "aarch64", "arch: aarch64 is not supported yet (only x86_64)" },
	{ "arch", "mips", "arch: unknown architecture 'mips' (only x86_64)" },
	{ "kernel", "", "kernel: needs a value" },
	{ "initrd", "", "initrd: needs a value" },
	{ "qemu", "", "qemu: needs a value" },
	{ "numa", "x,0", "numa: bad size 'x' (use MiB, or a suffix M, G or T, e.g. 256M)" },
	{ "numa", ",0", "numa: bad size '' (use MiB, or a suffix M, G or T, e.g. 256M)" },
	{ "numa", "-1M,0", "numa: must not be negative (got -1M)" },
	{ "numa", "2T,0", "numa: 2 TiB is too large (maximum 1 TiB)" },
	{ "numa", "128M,a", "numa: bad cpu list 'a' (use e.g. 0-1,4)" },
	{ "numa", "128M,", "numa: bad cpu list '' (use e.g. 0-1,4)" },
	{ "numa", "128M,0-", "numa: bad cpu list '0-' (use e.g. 0-1,4)" },
	{ "numa", "128M,-1", "numa: bad cpu list '-1' (use e.g. 0-1,4)" },
	{ "numa", "128M,0,,1", "numa: bad cpu list '0,,1' (use e.g. 0-1,4)" },
	{ "numa", "128M,0:1", "numa: bad cpu list '0:1' (use e.g. 0-1,4)" },
	{ "numa", "128M,3-1", "numa: bad cpu range '3-1'" },
	{ "numa", "128M,0,5-2", "numa: bad cpu range '5-2'" },
	{ "numa", "128M,288", "numa: cpu 288 is out of range (at most 287)" },
	{ "numa", "128M,0-1000", "numa: cpu 1000 is out of range (at most 287)" },
	{ "numa", "0", "numa: node 0 has neither memory nor cpus" },
	{ "numa", "0M", "numa: node 0 has neither memory nor cpus" },
};

static const struct set_case set_valid[] = {
	{ "memory", "256", "memory = 256M" },
	{ "memory", "16", "memory = 16M" },
	{ "memory", "1G", "memory = 1G" },
	{ "memory", "1024M", "memory = 1G" },
	{ "memory", "2gib", "memory = 2G" },
	{ "memory", "1536MiB", "memory = 1536M" },
	{ "memory", "1T", "memory = 1T" },
	{ "memory", "1024g", "memory = 1T" },
	{ "numa", "128M,0-1,4", "numa = 128M,0-1,4" },
	{ "numa", "64M", "numa = 64M" },
	{ "numa", "0,2-3", "numa = 0M,2-3" },
	{ "numa", "1G,0,1,2", "numa = 1G,0-2" },
	{ "numa", "16M,287", "numa = 16M,287" },
	{ "numa", "16M,3,1,2-3", "numa = 16M,1-3" },
	{ "cpus", "288", "cpus = 288" },
	{ "cpus", "007", "cpus = 7" },
	{ "sockets", "2", "sockets = 2" },
	{ "cores", "3", "cores = 3" },
	{ "threads", "2", "threads = 2" },
	{ "serial", "0", "serial = 0" },
	{ "serial", "4", "serial = 4" },
	{ "net", "user", "net = user" },
	{ "net", "none", "net = none" },
	{ "machine", "q35", "machine = q35" },
	{ "machine", "pc", "machine = pc" },
	{ "accel", "tcg", "accel = tcg" },
	{ "accel", "kvm", "accel = kvm" },
	{ "arch", "x86_64", "arch = x86_64" },
	{ "kernel", "/boot/vmlinuz", "kernel = /boot/vmlinuz" },
	{ "append", "console=ttyS0 quiet", "append = console=ttyS0 quiet" },
	{ "append", " padded ", "append = \" padded \"" },
	{ "append", "\"quoted\"", "append = \"\"quoted\"\"" },
	{ "initrd", "rd.img", "initrd = rd.img" },
	{ "disk", "a.img", "disk = a.img" },
	{ "qemu", "/opt/qemu/bin/qemu-system-x86_64", "qemu = /opt/qemu/bin/qemu-system-x86_64" },
	{ "qemu-arg", "-cpu", "qemu-arg = -cpu" },
};

static void test_set_error(void **state)
{
	const struct set_case *c = *state;
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };

	assert_non_null(s);
	assert_int_equal(ks_vmspec_set(s, c->key, c->value, &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(err.msg, c->want);
	/* A failed set leaves the spec as it was (the defaults). */
	assert_int_equal(s->cpus, 0);
	assert_int_equal(s->memory_mib, 0);
	assert_int_equal(s->nnuma, 0);
	assert_int_equal(s->serial, 1);
	ks_vmspec_free(s);
}

static void test_set_valid(void **state)
{
	const struct set_case *c = *state;
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	char *text, *lines = NULL, *want = NULL;

	assert_non_null(s);
	assert_int_equal(ks_vmspec_set(s, c->key, c->value, &err), 0);
	text = ks_vmspec_to_config(s, &err);
	assert_non_null(text);
	/* Framed by newlines, so that only whole lines match. */
	assert_true(asprintf(&lines, "\n%s", text) > 0);
	assert_true(asprintf(&want, "\n%s\n", c->want) > 0);
	if (!strstr(lines, want))
		fail_msg("'%s = %s': no line '%s' in:\n%s", c->key, c->value, c->want, text);
	free(lines);
	free(want);
	free(text);
	ks_vmspec_free(s);
}

static void test_defaults(void **state)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_vmspec_topology t;

	(void)state;
	assert_non_null(s);
	assert_int_equal(s->arch, KS_ARCH_X86_64);
	assert_int_equal(s->machine, KS_MACHINE_MICROVM);
	assert_int_equal(s->accel, KS_ACCEL_AUTO);
	assert_int_equal(s->serial, 1);
	assert_int_equal(s->net, KS_NET_NONE);
	assert_null(s->kernel);
	assert_int_equal(ks_vmspec_memory_mib(s), 128);
	assert_int_equal(ks_vmspec_topology(s, &t, NULL), 0);
	assert_int_equal(t.cpus, 1);
	assert_int_equal(t.sockets * t.cores * t.threads, 1);
	assert_string_equal(ks_vmspec_qemu_binary(s), "qemu-system-x86_64");
	ks_vmspec_free(s);
	ks_vmspec_free(NULL);
}

static void test_repeatable(void **state)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };

	(void)state;
	assert_int_equal(ks_vmspec_set(s, "disk", "a.img", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "disk", "b.img", &err), 0);
	assert_int_equal(s->ndisks, 2);
	assert_string_equal(s->disks[1], "b.img");
	assert_int_equal(ks_vmspec_set(s, "disk", "", &err), 0);
	assert_int_equal(s->ndisks, 0);
	assert_null(s->disks);
	assert_int_equal(ks_vmspec_set(s, "qemu-arg", "-cpu", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "qemu-arg", "max", &err), 0);
	assert_int_equal(s->nqemu_args, 2);
	assert_string_equal(s->qemu_args[0], "-cpu");
	for (int i = 0; i < KS_VMSPEC_MAX_NUMA; i++)
		assert_int_equal(ks_vmspec_set(s, "numa", "16M", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "numa", "16M", &err), -EINVAL);
	assert_string_equal(err.msg, "numa: at most 32 nodes");
	assert_int_equal(ks_vmspec_set(s, "numa", "", &err), 0);
	assert_int_equal(s->nnuma, 0);
	/* Others replace; append alone may be emptied. */
	assert_int_equal(ks_vmspec_set(s, "memory", "1G", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "memory", "2G", &err), 0);
	assert_int_equal(s->memory_mib, 2048);
	assert_int_equal(ks_vmspec_set(s, "append", "quiet", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "append", "", &err), 0);
	assert_null(s->append);
	assert_int_equal(ks_vmspec_set(s, "kernel", NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "kernel: needs a value");
	ks_vmspec_free(s);
}

static void test_keys(void **state)
{
	static const char *const want[] = {
		"arch", "machine", "accel", "cpus", "sockets", "cores", "threads", "numa",
		"memory", "kernel", "append", "initrd", "serial", "net", "disk", "qemu",
		"qemu-arg",
	};
	const char *const *keys = ks_vmspec_keys();
	size_t n = 0;

	(void)state;
	for (; keys[n]; n++) {
		const struct ks_vmspec_key *k = ks_vmspec_key_info(keys[n]);

		assert_true(n < ARRAY_SIZE(want));
		assert_string_equal(keys[n], want[n]);
		assert_non_null(k);
		assert_non_null(k->metavar);
		assert_non_null(k->help);
		assert_true(ks_vmspec_key_takes_value(keys[n]));
		assert_int_equal(k->repeatable, !strcmp(keys[n], "numa") ||
						!strcmp(keys[n], "disk") ||
						!strcmp(keys[n], "qemu-arg"));
	}
	assert_int_equal(n, ARRAY_SIZE(want));
	assert_null(ks_vmspec_key_info("colour"));
	assert_null(ks_vmspec_key_info(NULL));
	assert_false(ks_vmspec_key_takes_value("colour"));
	assert_string_equal(ks_machine_name(KS_MACHINE_Q35), "q35");
	assert_string_equal(ks_accel_name(KS_ACCEL_TCG), "tcg");
	assert_string_equal(ks_net_name(KS_NET_USER), "user");
	assert_string_equal(ks_arch_name(KS_ARCH_X86_64), "x86_64");
	assert_string_equal(ks_machine_name((enum ks_machine)9), "invalid");
}

/* ---- whole specs ---- */

/* Validation cases: config text loaded over a base that names a valid kernel and QEMU. */
struct check_case {
	const char *text;
	const char *want;   /* the error; NULL for a valid spec */
	bool bare;          /* leave out the base lines */
	struct ks_vmspec_topology topo; /* for valid specs */
	uint64_t memory_mib;
};

#define ERR(text, want) { text, want, false, { 0, 0, 0, 0 }, 0 }
#define ERR_BARE(text, want) { text, want, true, { 0, 0, 0, 0 }, 0 }
#define OK(text, c, so, co, th, mem) { text, NULL, false, { c, so, co, th }, mem }

static const char base_text[] = "kernel = @DIR@/kernel.elf\nqemu = @DIR@/qemu\n";

static const struct check_case check_errors[] = {
	ERR("cpus = 4\nsockets = 2\ncores = 3\nthreads = 1",
	  "topology: sockets 2 x cores 3 x threads 1 = 6, but cpus is 4"),
	ERR("cpus = 8\nsockets = 2\ncores = 2\nthreads = 1",
	  "topology: sockets 2 x cores 2 x threads 1 = 4, but cpus is 8"),
	ERR("cpus = 5\nsockets = 2", "topology: cpus 5 is not divisible by sockets 2 x threads 1"),
	ERR("cpus = 4\nsockets = 8", "topology: cpus 4 is not divisible by sockets 8 x threads 1"),
	ERR("cpus = 6\ncores = 4", "topology: cpus 6 is not divisible by cores 4 x threads 1"),
	ERR("cpus = 6\ncores = 2\nthreads = 2",
	  "topology: cpus 6 is not divisible by cores 2 x threads 2"),
	ERR("cpus = 6\nsockets = 2\ncores = 2",
	  "topology: cpus 6 is not divisible by sockets 2 x cores 2"),
	ERR("sockets = 16\ncores = 16\nthreads = 2",
	  "topology: sockets 16 x cores 16 x threads 2 = 512, but at most 288 cpus are supported"),
	ERR("machine = pc\ncpus = 256", "cpus: machine pc supports at most 255 (got 256)"),
	ERR("accel = tcg\ncpus = 256",
	  "topology: needs APIC ids up to 255, but tcg supports at most 254 (use kvm or fewer cpus)"),
	ERR("accel = tcg\ncpus = 200\nsockets = 40\ncores = 5",
	  "topology: needs APIC ids up to 316, but tcg supports at most 254 (use kvm or fewer cpus)"),
	ERR("machine = pc\nmemory = 961G",
	  "memory: 961 GiB is too large for machine pc (maximum 960 GiB)"),
	ERR("machine = q35\nmemory = 1T",
	  "memory: 1 TiB is too large for machine q35 (maximum 960 GiB)"),
	ERR("numa = 8M,0", "memory: 8 MiB is too small (minimum 16 MiB)"),
	ERR("memory = 256M\nnuma = 128M,0\nnuma = 64M",
	  "numa: nodes add up to 192 MiB but memory is 256 MiB"),
	ERR("memory = 1G\nnuma = 1G,0\nnuma = 1G",
	  "numa: nodes add up to 2 GiB but memory is 1 GiB"),
	ERR("cpus = 4\nnuma = 64M,0-2\nnuma = 64M", "numa: cpu 3 is in no node"),
	ERR("cpus = 4\nnuma = 64M,1-3\nnuma = 64M", "numa: cpu 0 is in no node"),
	ERR("cpus = 4\nnuma = 64M,0-1\nnuma = 64M,1-3", "numa: cpu 1 is in nodes 0 and 1"),
	ERR("cpus = 4\nnuma = 64M,0-3\nnuma = 64M\nnuma = 0,3", "numa: cpu 3 is in nodes 0 and 2"),
	ERR("cpus = 4\nnuma = 64M,0-1\nnuma = 64M,2-3,7", "numa: cpu 7 does not exist (cpus is 4)"),
	ERR("sockets = 2\nnuma = 64M,0-3", "numa: cpu 2 does not exist (cpus is 2)"),
	ERR_BARE("memory = 256M", "kernel: required, but not given"),
	ERR("kernel = /nonexistent/vmlinuz", "kernel: /nonexistent/vmlinuz: no such file"),
	ERR("kernel = @DIR@/kernel.elf/x", "kernel: @DIR@/kernel.elf/x: no such file"),
	ERR("kernel = /etc/passwd",
	  "kernel: /etc/passwd: not a kernel image (expected an ELF file or a Linux bzImage)"),
	ERR("kernel = @DIR@/notes.txt",
	  "kernel: @DIR@/notes.txt: not a kernel image (expected an ELF file or a Linux bzImage)"),
	ERR("kernel = @DIR@/empty",
	  "kernel: @DIR@/empty: not a kernel image (expected an ELF file or a Linux bzImage)"),
	ERR("kernel = @DIR@/arm.elf",
	  "kernel: @DIR@/arm.elf: ELF file for another architecture (e_machine 183, expected x86)"),
	ERR("kernel = @DIR@/subdir", "kernel: @DIR@/subdir: is a directory"),
	ERR("kernel = /dev/null", "kernel: /dev/null: not a regular file"),
	ERR("initrd = @DIR@/nope", "initrd: @DIR@/nope: no such file"),
	ERR("initrd = @DIR@/subdir", "initrd: @DIR@/subdir: is a directory"),
	ERR("disk = @DIR@/disk.raw\ndisk = @DIR@/missing.img",
	  "disk: @DIR@/missing.img: no such file"),
	ERR("disk = /dev/null", "disk: /dev/null: not a regular file"),
	ERR("qemu = @DIR@/noexec", "qemu: @DIR@/noexec: not executable"),
	ERR("qemu = @DIR@/subdir", "qemu: @DIR@/subdir: not executable"),
	ERR("qemu = @DIR@/nothere", "qemu: @DIR@/nothere: no such file"),
	ERR("qemu = kscope-no-such-qemu", "qemu: kscope-no-such-qemu not found in PATH"),
};

static const struct check_case check_valid[] = {
	OK("", 1, 1, 1, 1, 128),
	OK("cpus = 4", 4, 1, 4, 1, 128),
	OK("cpus = 4\nsockets = 2", 4, 2, 2, 1, 128),
	OK("cpus = 8\ncores = 2", 8, 4, 2, 1, 128),
	OK("cpus = 8\nthreads = 2", 8, 1, 4, 2, 128),
	OK("cpus = 8\nsockets = 2\ncores = 2", 8, 2, 2, 2, 128),
	OK("cpus = 8\nsockets = 2\nthreads = 2", 8, 2, 2, 2, 128),
	OK("cpus = 8\ncores = 2\nthreads = 2", 8, 2, 2, 2, 128),
	OK("sockets = 2\ncores = 2\nthreads = 2", 8, 2, 2, 2, 128),
	OK("sockets = 2", 2, 2, 1, 1, 128),
	OK("threads = 2", 2, 1, 1, 2, 128),
	OK("cpus = 6\nsockets = 3\ncores = 2\nthreads = 1", 6, 3, 2, 1, 128),
	OK("cpus = 288", 288, 1, 288, 1, 128),
	OK("machine = pc\ncpus = 255", 255, 1, 255, 1, 128),
	OK("accel = tcg\ncpus = 255", 255, 1, 255, 1, 128),
	OK("accel = tcg\ncpus = 192\nsockets = 64\ncores = 3", 192, 64, 3, 1, 128),
	OK("accel = tcg\ncpus = 160\nsockets = 32\ncores = 5", 160, 32, 5, 1, 128),
	OK("cpus = 4\nnuma = 64M,0-1\nnuma = 64M,2-3", 4, 1, 4, 1, 128),
	OK("cpus = 4\nsockets = 2\nmemory = 256M\nnuma = 128M,0-1\nnuma = 128M,2-3",
	   4, 2, 2, 1, 256),
	OK("cpus = 4\nmemory = 128M\nnuma = 128M,0-1\nnuma = 0,2-3", 4, 1, 4, 1, 128),
	OK("cpus = 4\nnuma = 64M,0,2\nnuma = 64M,1,3\nnuma = 1G", 4, 1, 4, 1, 1152),
	OK("memory = 16M", 1, 1, 1, 1, 16),
	OK("memory = 1T", 1, 1, 1, 1, 1024 * 1024),
	OK("machine = q35\nmemory = 960G", 1, 1, 1, 1, 960 * 1024),
	OK("kernel = @DIR@/bzImage", 1, 1, 1, 1, 128),
	OK("kernel = @DIR@/kernel32.elf", 1, 1, 1, 1, 128),
	OK("disk = @DIR@/disk.raw\ndisk = @DIR@/a,b.img\ninitrd = @DIR@/notes.txt\nnet = user\n"
	  "serial = 4\nserial = 0\nappend = console=ttyS0", 1, 1, 1, 1, 128),
	OK("qemu = sh", 1, 1, 1, 1, 128),
};

static struct ks_vmspec *load_case(const struct check_case *c)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	char *base = fx_subst(base_text), *text = fx_subst(c->text);

	assert_non_null(s);
	if (!c->bare && ks_vmspec_load_string(s, base, "base", &err) < 0)
		fail_msg("base: %s", err.msg);
	if (ks_vmspec_load_string(s, text, "case", &err) < 0)
		fail_msg("'%s': %s", c->text, err.msg);
	free(base);
	free(text);
	return s;
}

static void test_check_error(void **state)
{
	const struct check_case *c = *state;
	struct ks_vmspec *s = load_case(c);
	struct ks_error err = { 0 };
	char *want = fx_subst(c->want);
	int rc = ks_vmspec_validate(s, &err);

	if (rc == 0)
		fail_msg("'%s': valid, expected '%s'", c->text, want);
	assert_int_equal(rc, err.code);
	assert_string_equal(err.msg, want);
	assert_null(strchr(err.msg, '\n'));
	free(want);
	ks_vmspec_free(s);
}

static void test_check_valid(void **state)
{
	const struct check_case *c = *state;
	struct ks_vmspec *s = load_case(c);
	struct ks_vmspec_topology t;
	struct ks_error err = { 0 };

	if (ks_vmspec_validate(s, &err) < 0)
		fail_msg("'%s': %s", c->text, err.msg);
	assert_int_equal(ks_vmspec_topology(s, &t, &err), 0);
	assert_int_equal(t.cpus, c->topo.cpus);
	assert_int_equal(t.sockets, c->topo.sockets);
	assert_int_equal(t.cores, c->topo.cores);
	assert_int_equal(t.threads, c->topo.threads);
	assert_int_equal(ks_vmspec_memory_mib(s), c->memory_mib);
	ks_vmspec_free(s);
}

/* Fields set directly, past the setters, are still checked. */
static void test_check_direct(void **state)
{
	struct ks_vmspec *s = load_case(&check_valid[0]);
	struct ks_error err = { 0 };

	(void)state;
	s->serial = 7;
	assert_int_equal(ks_vmspec_validate(s, &err), -EINVAL);
	assert_string_equal(err.msg, "serial: at most 4 ports (got 7)");
	s->serial = 1;
	s->machine = (enum ks_machine)9;
	assert_int_equal(ks_vmspec_validate(s, &err), -EINVAL);
	assert_string_equal(err.msg, "machine: invalid value 9");
	s->machine = KS_MACHINE_MICROVM;
	s->cpus = 300;
	assert_int_equal(ks_vmspec_validate(s, &err), -EINVAL);
	assert_string_equal(err.msg, "cpus: at most 288 (got 300)");
	s->cpus = 0;
	s->memory_mib = 4;
	assert_int_equal(ks_vmspec_validate(s, &err), -EINVAL);
	assert_string_equal(err.msg, "memory: 4 MiB is too small (minimum 16 MiB)");
	ks_vmspec_free(s);
}

/* ---- config files ---- */

static char *data_path(const char *name)
{
	const char *dir = getenv("KSCOPE_VMSPEC_DATA");
	char *p = NULL;

	assert_non_null(dir);
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void test_file_good(void **state)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	char *path = data_path("good.conf"), *kernel = data_path("kernel.elf");
	char *disk0 = data_path("disk0.img");

	(void)state;
	if (ks_vmspec_load_file(s, path, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(s->machine, KS_MACHINE_Q35);
	assert_int_equal(s->accel, KS_ACCEL_TCG);
	assert_int_equal(s->cpus, 4);
	assert_int_equal(s->sockets, 2);
	assert_int_equal(s->cores, 2);
	assert_int_equal(s->threads, 1);
	assert_int_equal(s->nnuma, 2);
	assert_int_equal(s->numa[1].memory_mib, 128);
	assert_int_equal(s->numa[1].cpus[0], 0xc);
	assert_int_equal(s->memory_mib, 256);
	assert_string_equal(s->kernel, kernel); /* relative to the file */
	assert_string_equal(s->append, "console=ttyS0 root=/dev/vda  # not a comment ");
	assert_string_equal(s->initrd, "/boot/initrd.img");
	assert_int_equal(s->serial, 4);
	assert_int_equal(s->net, KS_NET_USER);
	assert_int_equal(s->ndisks, 2);
	assert_string_equal(s->disks[0], disk0);
	assert_string_equal(s->disks[1], "/var/tmp/disk1.qcow2");
	assert_string_equal(s->qemu, "qemu-system-x86_64"); /* a name: looked up in PATH */
	assert_int_equal(s->nqemu_args, 2);
	assert_string_equal(s->qemu_args[1], "max");
	free(path);
	free(kernel);
	free(disk0);
	ks_vmspec_free(s);
}

struct file_case {
	const char *name;
	const char *want; /* after "PATH" */
};

static const struct file_case file_errors[] = {
	{ "unknown-key.conf", ":4: unknown key 'colour'" },
	{ "no-equals.conf", ":2: expected 'key = value', got 'memory 256M'" },
	{ "bad-number.conf", ":3: cpus: bad number 'two'" },
	{ "bad-numa.conf", ":5: numa: bad cpu range '3-1'" },
	{ "empty-key.conf", ":1: missing key before '='" },
	{ "bad-machine.conf", ":2: machine: unknown machine 'foo' (use microvm, pc or q35)" },
	{ "empty-value.conf", ":1: kernel: needs a value" },
	{ "too-small.conf", ":2: memory: 8 MiB is too small (minimum 16 MiB)" },
	{ "no-such-file.conf", ": cannot open: No such file or directory" },
	{ ".", ": cannot read: Is a directory" },
};

static void test_file_error(void **state)
{
	const struct file_case *c = *state;
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	char *path = data_path(c->name), want[512];

	snprintf(want, sizeof(want), "%s%s", path, c->want);
	assert_true(ks_vmspec_load_file(s, path, &err) < 0);
	assert_string_equal(err.msg, want);
	free(path);
	ks_vmspec_free(s);
}

/* A file that parses can still describe an impossible VM: validation says so. */
static void test_file_invalid(void **state)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	char *path = data_path("invalid-topology.conf");

	(void)state;
	assert_int_equal(ks_vmspec_load_file(s, path, &err), 0);
	assert_int_equal(ks_vmspec_validate(s, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "topology: sockets 2 x cores 3 x threads 1 = 6, but cpus is 4");
	free(path);
	ks_vmspec_free(s);
}

static void test_file_crlf(void **state)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	char *path = data_path("crlf.conf"), *kernel = data_path("vmlinuz");

	(void)state;
	assert_int_equal(ks_vmspec_load_file(s, path, &err), 0);
	assert_int_equal(s->memory_mib, 256);
	assert_int_equal(s->cpus, 2);
	assert_string_equal(s->kernel, kernel);
	free(path);
	free(kernel);
	ks_vmspec_free(s);
}

static void test_string_syntax(void **state)
{
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };

	(void)state;
	assert_int_equal(ks_vmspec_load_string(s, "append = root=/dev/vda console=ttyS0\n"
						"\t# indented comment\n  kernel=k # kept\n"
						"disk = rel.img\ncpus = 2", "t", &err), 0);
	assert_string_equal(s->append, "root=/dev/vda console=ttyS0");
	assert_string_equal(s->kernel, "k # kept");
	assert_string_equal(s->disks[0], "rel.img"); /* no directory: kept as is */
	assert_int_equal(s->cpus, 2);
	assert_int_equal(ks_vmspec_load_string(s, "", "t", &err), 0);
	assert_int_equal(ks_vmspec_load_string(s, "\n\n# x\ncpus = 0\n", "inline", &err),
			 -EINVAL);
	assert_string_equal(err.msg, "inline:4: cpus: must be at least 1 (got 0)");
	assert_int_equal(ks_vmspec_load_string(s, "append = \"\"", NULL, &err), 0);
	assert_null(s->append);
	assert_int_equal(ks_vmspec_load_string(s, "cpus = \"3\"", NULL, &err), 0);
	assert_int_equal(s->cpus, 3);
	ks_vmspec_free(s);
}

/* Writing a spec and reading it back gives the same spec; so does a copy. */
static void test_round_trip(void **state)
{
	struct ks_vmspec *a = ks_vmspec_new(NULL), *b = ks_vmspec_new(NULL), *c;
	struct ks_error err = { 0 };
	char *path = data_path("good.conf"), *ta, *tb, *tc;

	(void)state;
	assert_int_equal(ks_vmspec_load_file(a, path, &err), 0);
	assert_int_equal(ks_vmspec_set(a, "numa", "0,4,6-7", &err), 0);
	ta = ks_vmspec_to_config(a, &err);
	assert_non_null(ta);
	assert_int_equal(ks_vmspec_load_string(b, ta, "written", &err), 0);
	tb = ks_vmspec_to_config(b, &err);
	assert_string_equal(ta, tb);
	c = ks_vmspec_dup(a, &err);
	assert_non_null(c);
	tc = ks_vmspec_to_config(c, &err);
	assert_string_equal(ta, tc);
	assert_ptr_not_equal(c->kernel, a->kernel);
	assert_int_equal(ks_vmspec_set(a, "append", "a\nb", &err), 0);
	assert_null(ks_vmspec_to_config(a, &err));
	assert_string_equal(err.msg, "append: a value with a newline cannot be written");
	free(ta);
	free(tb);
	free(tc);
	free(path);
	ks_vmspec_free(a);
	ks_vmspec_free(b);
	ks_vmspec_free(c);
}

static int group_setup(void **state)
{
	(void)state;
	return fx_setup() ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	fx_teardown();
	return 0;
}

/* The text of a case on one line, for its test name (static storage, one at a time). */
static const char *one_line(const char *text)
{
	static char buf[256];
	size_t n = 0;

	for (; *text && n + 3 < sizeof(buf); text++) {
		if (*text != '\n') {
			buf[n++] = *text;
			continue;
		}
		buf[n++] = ';';
		buf[n++] = ' ';
	}
	buf[n] = 0;
	return n ? buf : "(defaults)";
}

#define ADD(fn, st, fmt, ...)                                                      \
	do {                                                                       \
		char *name_ = NULL;                                                \
		if (asprintf(&name_, fmt, __VA_ARGS__) < 0)                        \
			return 1;                                                  \
		tests[n++] = (struct CMUnitTest){ name_, fn, NULL, NULL, (void *)(st) }; \
	} while (0)

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_defaults),      cmocka_unit_test(test_repeatable),
		cmocka_unit_test(test_keys),          cmocka_unit_test(test_check_direct),
		cmocka_unit_test(test_file_good),     cmocka_unit_test(test_file_invalid),
		cmocka_unit_test(test_file_crlf),     cmocka_unit_test(test_string_syntax),
		cmocka_unit_test(test_round_trip),
	};
	struct CMUnitTest tests[ARRAY_SIZE(fixed) + ARRAY_SIZE(set_errors) + ARRAY_SIZE(set_valid) +
				ARRAY_SIZE(check_errors) + ARRAY_SIZE(check_valid) +
				ARRAY_SIZE(file_errors)];
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		ADD(fixed[i].test_func, NULL, "%s", fixed[i].name);
	for (size_t i = 0; i < ARRAY_SIZE(set_errors); i++)
		ADD(test_set_error, &set_errors[i], "set error: %s = '%s'",
		    set_errors[i].key ? set_errors[i].key : "(null)", set_errors[i].value);
	for (size_t i = 0; i < ARRAY_SIZE(set_valid); i++)
		ADD(test_set_valid, &set_valid[i], "set: %s = '%s'", set_valid[i].key,
		    set_valid[i].value);
	for (size_t i = 0; i < ARRAY_SIZE(check_errors); i++)
		ADD(test_check_error, &check_errors[i], "invalid: %s", check_errors[i].want);
	for (size_t i = 0; i < ARRAY_SIZE(check_valid); i++)
		ADD(test_check_valid, &check_valid[i], "valid: %s", one_line(check_valid[i].text));
	for (size_t i = 0; i < ARRAY_SIZE(file_errors); i++)
		ADD(test_file_error, &file_errors[i], "config file %s", file_errors[i].name);
	rc = _cmocka_run_group_tests("vmspec", tests, n, group_setup, group_teardown);
	for (size_t i = 0; i < n; i++)
		free((char *)tests[i].name);
	return rc;
}
