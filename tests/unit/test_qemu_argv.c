/* test_qemu_argv.c: QEMU argv built from specs, compared word for word; RAM layouts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/qemu_argv.h>
#include <kscope/vmspec.h>

#include "vmspec_fixtures.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIB (1ull << 20)
#define GIB (1ull << 30)

static const char *const serial_paths[] = { "/run/k/s0", "/run/k/s1", "/run/k/s2", "/run/k/s3" };

/* The common head of every argv: binary, fixed flags, then what the case adds. */
#define HEAD "qemu-system-x86_64", "-nodefaults", "-nographic", "-no-user-config"
#define COM1 "-chardev", "socket,id=serial0,path=/run/k/s0,server=on,wait=off", \
	     "-serial", "chardev:serial0"

struct argv_case {
	const char *name;
	const char *spec;               /* config text; @DIR@ is the fixture directory */
	struct ks_qemu_paths paths;
	const char *const *want;        /* NULL-terminated; @DIR@ as above */
};

static const char *const want_minimal[] = {
	HEAD, "-machine", "microvm,memory-backend=mem0", "-accel", "tcg", "-m", "128M",
	"-smp", "1,sockets=1,cores=1,threads=1",
	"-object", "memory-backend-file,id=mem0,size=128M,mem-path=/dev/shm/r,share=on",
	COM1, "-kernel", "@DIR@/kernel.elf", NULL,
};

static const char *const want_no_serial[] = {
	HEAD, "-machine", "microvm,memory-backend=mem0", "-accel", "kvm", "-m", "16M",
	"-smp", "2,sockets=1,cores=2,threads=1",
	"-object", "memory-backend-file,id=mem0,size=16M,mem-path=/dev/shm/r,share=on",
	"-kernel", "@DIR@/bzImage", NULL,
};

static const char *const want_full[] = {
	"@DIR@/qemu", "-nodefaults", "-nographic", "-no-user-config", "-S", "-no-reboot",
	"-machine", "q35", "-accel", "tcg", "-m", "256M",
	"-smp", "4,sockets=2,cores=2,threads=1",
	"-object", "memory-backend-file,id=mem0,size=128M,mem-path=/dev/shm/r.node0,share=on",
	"-object", "memory-backend-file,id=mem1,size=128M,mem-path=/dev/shm/r.node1,share=on",
	"-numa", "node,nodeid=0,cpus=0-1,memdev=mem0",
	"-numa", "node,nodeid=1,cpus=2-3,memdev=mem1",
	"-chardev", "socket,id=qmp,path=/run/k/qmp,server=on,wait=off",
	"-mon", "chardev=qmp,mode=control",
	"-chardev", "socket,id=gdb,path=/run/k/gdb,server=on,wait=off", "-gdb", "chardev:gdb",
	COM1,
	"-chardev", "socket,id=serial1,path=/run/k/s1,server=on,wait=off",
	"-device", "isa-serial,chardev=serial1,iobase=0x2f8,irq=3",
	"-chardev", "socket,id=serial2,path=/run/k/s2,server=on,wait=off",
	"-device", "isa-serial,chardev=serial2,iobase=0x3e8,irq=4",
	"-chardev", "socket,id=serial3,path=/run/k/s3,server=on,wait=off",
	"-device", "isa-serial,chardev=serial3,iobase=0x2e8,irq=3",
	"-device", "pvpanic", "-action", "panic=pause",
	"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
	"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile=",
	"-drive", "file=@DIR@/disk.raw,format=raw,if=none,id=disk0",
	"-device", "virtio-blk-pci,drive=disk0",
	"-drive", "file=@DIR@/disk.qcow2,format=qcow2,if=none,id=disk1",
	"-device", "virtio-blk-pci,drive=disk1",
	"-drive", "if=none,id=vmstate0,format=qcow2,file=/run/k/vmstate.qcow2",
	"-pidfile", "/run/k/pid", "-D", "/run/k/qemu.log", "-d", "int,cpu_reset",
	"-kernel", "@DIR@/kernel.elf", "-append", "console=ttyS0 kt.filter=mem*",
	"-initrd", "@DIR@/notes.txt", "-cpu", "max", "-icount", "shift=auto", NULL,
};

static const char *const want_microvm_devices[] = {
	HEAD, "-machine", "microvm,memory-backend=mem0", "-accel", "tcg", "-m", "128M",
	"-smp", "1,sockets=1,cores=1,threads=1",
	"-object", "memory-backend-file,id=mem0,size=128M,mem-path=/dev/shm/r,share=on",
	COM1,
	"-chardev", "socket,id=serial1,path=/run/k/s1,server=on,wait=off",
	"-device", "isa-serial,chardev=serial1,iobase=0x2f8,irq=3",
	"-netdev", "user,id=net0", "-device", "virtio-net-device,netdev=net0",
	"-drive", "file=@DIR@/disk.qcow2,format=qcow2,if=none,id=disk0",
	"-device", "virtio-blk-device,drive=disk0",
	"-kernel", "@DIR@/kernel.elf", NULL,
};

static const char *const want_pc[] = {
	HEAD, "-machine", "pc,memory-backend=mem0", "-accel", "kvm", "-m", "1024M",
	"-smp", "8,sockets=2,cores=2,threads=2",
	"-object", "memory-backend-file,id=mem0,size=1024M,mem-path=/dev/shm/r,share=on",
	COM1, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel",
	"@DIR@/kernel32.elf", NULL,
};

static const char *const want_commas[] = {
	HEAD, "-machine", "microvm,memory-backend=mem0", "-accel", "tcg", "-m", "128M",
	"-smp", "1,sockets=1,cores=1,threads=1",
	"-object", "memory-backend-file,id=mem0,size=128M,mem-path=/dev/shm/a,,b,share=on",
	"-chardev", "socket,id=qmp,path=/run/a,,b/qmp,server=on,wait=off",
	"-mon", "chardev=qmp,mode=control",
	"-drive", "file=@DIR@/a,,b.img,format=raw,if=none,id=disk0",
	"-device", "virtio-blk-device,drive=disk0",
	"-drive", "if=none,id=vmstate0,format=qcow2,file=/run/a,,b/vm,,state",
	"-pidfile", "/run/a,b/pid", "-kernel", "@DIR@/kernel.elf", "-append", "a,b", NULL,
};

static const char *const want_numa_sparse[] = {
	HEAD, "-machine", "microvm", "-accel", "tcg", "-m", "128M",
	"-smp", "4,sockets=2,cores=2,threads=1",
	"-object", "memory-backend-file,id=mem0,size=128M,mem-path=/dev/shm/r.node0,share=on",
	"-numa", "node,nodeid=0,cpus=0,cpus=2,memdev=mem0",
	"-numa", "node,nodeid=1,cpus=1,cpus=3",
	"-kernel", "@DIR@/kernel.elf", NULL,
};

#define TCG(...) { .accel = KS_ACCEL_TCG, .ram = "/dev/shm/r", .serial = serial_paths, __VA_ARGS__ }

static const struct argv_case argv_cases[] = {
	{ "minimal", "", TCG(), want_minimal },
	{ "accel from spec, no serial", "accel = kvm\ncpus = 2\nmemory = 16\nserial = 0\n"
	  "kernel = @DIR@/bzImage", { .ram = "/dev/shm/r" }, want_no_serial },
	{ "q35 with everything",
	  "machine = q35\ncpus = 4\nsockets = 2\nnuma = 128M,0-1\nnuma = 128M,2-3\n"
	  "memory = 256M\nserial = 4\nnet = user\ndisk = @DIR@/disk.raw\n"
	  "disk = @DIR@/disk.qcow2\nappend = console=ttyS0 kt.filter=mem*\n"
	  "initrd = @DIR@/notes.txt\nqemu = @DIR@/qemu\nqemu-arg = -cpu\nqemu-arg = max\n"
	  "qemu-arg = -icount\nqemu-arg = shift=auto",
	  TCG(.qmp = "/run/k/qmp", .gdb = "/run/k/gdb", .vmstate = "/run/k/vmstate.qcow2",
	      .pidfile = "/run/k/pid", .log = "/run/k/qemu.log", .log_items = "int,cpu_reset",
	      .paused = true, .no_reboot = true, .pvpanic = true, .debug_exit = true),
	  want_full },
	{ "microvm devices", "serial = 2\nnet = user\ndisk = @DIR@/disk.qcow2", TCG(),
	  want_microvm_devices },
	{ "pc", "machine = pc\nsockets = 2\ncores = 2\nthreads = 2\nmemory = 1G\n"
	  "kernel = @DIR@/kernel32.elf",
	  { .accel = KS_ACCEL_KVM, .ram = "/dev/shm/r", .serial = serial_paths,
	    .debug_exit = true }, want_pc },
	{ "commas escaped", "serial = 0\ndisk = @DIR@/a,b.img\nappend = a,b",
	  { .accel = KS_ACCEL_TCG, .ram = "/dev/shm/a,b", .qmp = "/run/a,b/qmp",
	    .vmstate = "/run/a,b/vm,state", .pidfile = "/run/a,b/pid" }, want_commas },
	{ "numa sparse", "cpus = 4\nsockets = 2\nserial = 0\nnuma = 128M,0,2\nnuma = 0,1,3", TCG(),
	  want_numa_sparse },
};

static struct ks_vmspec *load(const char *spec)
{
	static const char base[] = "kernel = @DIR@/kernel.elf\nqemu = @DIR@/qemu\n";
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_error err = { 0 };
	char *b = fx_subst(base), *t = fx_subst(spec);

	assert_non_null(s);
	assert_int_equal(ks_vmspec_load_string(s, b, "base", &err), 0);
	/* The base names a qemu; cases that want the default name leave it alone. */
	if (!strstr(spec, "qemu =")) {
		free(s->qemu);
		s->qemu = NULL;
	}
	if (ks_vmspec_load_string(s, t, "case", &err) < 0)
		fail_msg("%s", err.msg);
	/* Only the host may lack what a valid spec asks for: QEMU itself, /dev/kvm. */
	if (ks_vmspec_validate(s, &err) < 0 && strncmp(err.msg, "qemu:", 5) &&
	    strncmp(err.msg, "accel:", 6))
		fail_msg("spec does not validate: %s", err.msg);
	free(b);
	free(t);
	return s;
}

static void test_argv(void **state)
{
	const struct argv_case *c = *state;
	struct ks_vmspec *s = load(c->spec);
	struct ks_error err = { 0 };
	char **argv = NULL;
	size_t i;

	if (ks_qemu_argv_build(s, &c->paths, &argv, &err) < 0)
		fail_msg("%s: %s", c->name, err.msg);
	for (i = 0; c->want[i]; i++) {
		char *want = fx_subst(c->want[i]);

		if (!argv[i])
			fail_msg("argv ends at %zu, expected '%s'", i, want);
		if (strcmp(argv[i], want))
			fail_msg("argv[%zu] is '%s', expected '%s'", i, argv[i], want);
		free(want);
	}
	if (argv[i])
		fail_msg("argv[%zu] is '%s', expected the end", i, argv[i]);
	ks_qemu_argv_free(argv);
	ks_vmspec_free(s);
}

struct argv_error {
	const char *spec;
	struct ks_qemu_paths paths;
	const char *want;
};

/* 12 + 100 + 9 = 121 bytes: longer than a Unix socket address holds. */
static const char long_path[] = "/run/kscope/"
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	"dddddddddddddddd/qmp.sock";

static const struct argv_error argv_errors[] = {
	{ "", { .ram = "/dev/shm/r", .serial = serial_paths },
	  "accel: 'auto' must be resolved to kvm or tcg before starting QEMU" },
	{ "", { .accel = KS_ACCEL_TCG, .serial = serial_paths }, "ram: no file path given" },
	{ "", { .accel = KS_ACCEL_TCG, .ram = "/dev/shm/r" },
	  "serial: no socket paths given (the spec has 1)" },
	{ "serial = 2", { .accel = KS_ACCEL_TCG, .ram = "/dev/shm/r",
			  .serial = (const char *const[]){ "/run/s0", NULL } },
	  "serial 1: no socket path given" },
	{ "", TCG(.qmp = long_path), "qmp: socket path too long (121 bytes, at most 107)" },
	{ "", TCG(.gdb = ""), "gdb: no socket path given" },
	{ "cpus = 256", TCG(),
	  "topology: needs APIC ids up to 255, but tcg supports at most 254 (use kvm or fewer cpus)" },
	{ "disk = @DIR@/disk.raw", TCG(),
	  "disk: @DIR@/gone.img: cannot read: No such file or directory" },
};

static void test_argv_error(void **state)
{
	const struct argv_error *c = *state;
	struct ks_vmspec *s = load(c->spec);
	struct ks_error err = { 0 };
	char *untouched[] = { NULL }, **argv = untouched, *want = fx_subst(c->want);

	/* A disk that vanished between validation and the build: its header is read. */
	if (s->ndisks) {
		free(s->disks[0]);
		s->disks[0] = fx_subst("@DIR@/gone.img");
	}
	assert_true(ks_qemu_argv_build(s, &c->paths, &argv, &err) < 0);
	assert_null(argv);
	assert_string_equal(err.msg, want);
	free(want);
	ks_vmspec_free(s);
}

/* ---- RAM layout ---- */

struct layout_case {
	const char *spec;
	size_t nfiles;
	const char *paths[3];
	struct ks_ram_region regions[4];
	size_t nregions;
};

static const struct layout_case layout_cases[] = {
	{ "", 1, { "/dev/shm/r" }, { { 0, 0, 0, 128 * MIB } }, 1 },
	{ "memory = 3G", 1, { "/dev/shm/r" }, { { 0, 0, 0, 3 * GIB } }, 1 },
	{ "memory = 4G", 1, { "/dev/shm/r" },
	  { { 0, 0, 0, 3 * GIB }, { 0, 3 * GIB, 4 * GIB, GIB } }, 2 },
	{ "machine = pc\nmemory = 3328M", 1, { "/dev/shm/r" }, { { 0, 0, 0, 3328 * MIB } }, 1 },
	{ "machine = pc\nmemory = 3584M", 1, { "/dev/shm/r" },
	  { { 0, 0, 0, 3 * GIB }, { 0, 3 * GIB, 4 * GIB, 512 * MIB } }, 2 },
	{ "machine = q35\nmemory = 2560M", 1, { "/dev/shm/r" }, { { 0, 0, 0, 2560 * MIB } }, 1 },
	{ "machine = q35\nmemory = 2816M", 1, { "/dev/shm/r" },
	  { { 0, 0, 0, 2 * GIB }, { 0, 2 * GIB, 4 * GIB, 768 * MIB } }, 2 },
	{ "machine = q35\ncpus = 2\nnuma = 1G,0\nnuma = 3G,1", 2,
	  { "/dev/shm/r.node0", "/dev/shm/r.node1" },
	  { { 0, 0, 0, GIB }, { 1, 0, GIB, GIB }, { 1, GIB, 4 * GIB, 2 * GIB } }, 3 },
	{ "machine = pc\ncpus = 2\nnuma = 1G,0\nnuma = 3G,1", 2,
	  { "/dev/shm/r.node0", "/dev/shm/r.node1" },
	  { { 0, 0, 0, GIB }, { 1, 0, GIB, 2 * GIB }, { 1, 2 * GIB, 4 * GIB, GIB } }, 3 },
	{ "cpus = 3\nnuma = 0,0\nnuma = 64M,1\nnuma = 64M,2", 2,
	  { "/dev/shm/r.node1", "/dev/shm/r.node2" },
	  { { 0, 0, 0, 64 * MIB }, { 1, 0, 64 * MIB, 64 * MIB } }, 2 },
};

static void test_layout(void **state)
{
	const struct layout_case *c = *state;
	struct ks_vmspec *s = load(c->spec);
	struct ks_qemu_paths p = TCG();
	struct ks_error err = { 0 };
	struct ks_ram_layout *l = ks_qemu_ram_layout(s, &p, &err);

	assert_non_null(l);
	assert_int_equal(l->nfiles, c->nfiles);
	for (size_t i = 0; i < c->nfiles; i++)
		assert_string_equal(l->files[i].path, c->paths[i]);
	assert_int_equal(l->nregions, c->nregions);
	for (size_t i = 0; i < c->nregions; i++) {
		assert_int_equal(l->regions[i].file, c->regions[i].file);
		assert_int_equal(l->regions[i].offset, c->regions[i].offset);
		assert_int_equal(l->regions[i].gpa, c->regions[i].gpa);
		assert_int_equal(l->regions[i].size, c->regions[i].size);
	}
	ks_ram_layout_free(l);
	ks_vmspec_free(s);
}

static void test_layout_find(void **state)
{
	struct ks_vmspec *s = load("memory = 4G");
	struct ks_qemu_paths p = TCG();
	struct ks_ram_layout *l = ks_qemu_ram_layout(s, &p, NULL);
	const struct ks_ram_region *r;

	(void)state;
	assert_non_null(l);
	assert_ptr_equal(ks_ram_layout_find(l, 0), &l->regions[0]);
	assert_ptr_equal(ks_ram_layout_find(l, 3 * GIB - 1), &l->regions[0]);
	assert_null(ks_ram_layout_find(l, 3 * GIB));
	assert_null(ks_ram_layout_find(l, 4 * GIB - 1));
	r = ks_ram_layout_find(l, 4 * GIB + 5);
	assert_ptr_equal(r, &l->regions[1]);
	assert_int_equal(4 * GIB + 5 - r->gpa + r->offset, 3 * GIB + 5);
	assert_null(ks_ram_layout_find(l, 5 * GIB));
	ks_ram_layout_free(l);
	ks_ram_layout_free(NULL);
	ks_vmspec_free(s);
}

static void test_format(void **state)
{
	char *const argv[] = { "qemu", "-append", "a b", "it's", "", "x,y=z", "$HOME", NULL };
	char *text = ks_qemu_argv_format(argv);

	(void)state;
	assert_string_equal(text, "qemu -append 'a b' 'it'\\''s' '' x,y=z '$HOME'");
	free(text);
	ks_qemu_argv_free(NULL);
}

static void test_serial_ports(void **state)
{
	static const uint16_t iobase[] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
	static const unsigned irq[] = { 4, 3, 4, 3 };
	uint16_t b;
	unsigned q;

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(ks_qemu_serial_port(i, &b, &q), 0);
		assert_int_equal(b, iobase[i]);
		assert_int_equal(q, irq[i]);
	}
	assert_int_equal(ks_qemu_serial_port(4, &b, &q), -EINVAL);
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

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_layout_find),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_serial_ports),
	};
	struct CMUnitTest tests[ARRAY_SIZE(fixed) + ARRAY_SIZE(argv_cases) +
				ARRAY_SIZE(argv_errors) + ARRAY_SIZE(layout_cases)];
	char *names[ARRAY_SIZE(tests)] = { 0 };
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < ARRAY_SIZE(argv_cases); i++)
		tests[n++] = (struct CMUnitTest){ argv_cases[i].name, test_argv, NULL, NULL,
						  (void *)&argv_cases[i] };
	for (size_t i = 0; i < ARRAY_SIZE(argv_errors); i++) {
		if (asprintf(&names[n], "argv error: %s", argv_errors[i].want) < 0)
			return 1;
		tests[n] = (struct CMUnitTest){ names[n], test_argv_error, NULL, NULL,
						(void *)&argv_errors[i] };
		n++;
	}
	for (size_t i = 0; i < ARRAY_SIZE(layout_cases); i++) {
		if (asprintf(&names[n], "layout %zu", i) < 0)
			return 1;
		tests[n] = (struct CMUnitTest){ names[n], test_layout, NULL, NULL,
						(void *)&layout_cases[i] };
		n++;
	}
	rc = _cmocka_run_group_tests("qemu_argv", tests, n, group_setup, group_teardown);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return rc;
}
