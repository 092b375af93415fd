/* test_sym_mem.c: symbols of the demo kernel, and its memory and page tables seen from the host while it runs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/chan.h>
#include <kscope/kt_abi.h>
#include <kscope/ktstate.h>
#include <kscope/loop.h>
#include <kscope/mem.h>
#include <kscope/qmp.h>
#include <kscope/spawn.h>
#include <kscope/sym.h>
#include <kscope/vm.h>
#include <kscope/vtop.h>

#include "vmboot.h"

#define SEC 1000000000ll
#define KERNEL_VMA 0xffffffff80000000ull  /* the image: virtual = KERNEL_VMA + physical */
#define DIRECT_MAP 0xffff800000000000ull  /* physical 0-4 GiB */

static struct ks_symtab *load(const char *path)
{
	struct ks_error err = { 0 };
	struct ks_symtab *t = ks_sym_load(path, &err);

	if (!t)
		fail_msg("%s", err.msg);
	return t;
}

/* ---- symbols (no VM) ---- */

/* Writes what `nm` prints for the kernel to path: the System.map format. */
static void nm_to(const char *kernel, const char *path)
{
	char *argv[] = { "nm", (char *)kernel, NULL };
	int status, fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	pid_t pid = ks_spawn(argv, fd, NULL, 0, NULL);
	close(fd);
	assert_true(pid > 0);
	assert_int_equal(ks_wait_pid(pid, 30 * SEC, &status), 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("nm %s failed (status 0x%x)", kernel, status);
}

static void demo_kernel_symbols(void **state)
{
	struct ks_symtab *t = load(vm_demo_kernel());
	const struct ks_sym *st = ks_sym_find(t, "kt_state"), *km = ks_sym_find(t, "kmain");
	char buf[128];
	ks_gva_t back;
	uint64_t off;
	(void)state;

	assert_non_null(st);
	assert_non_null(km);
	assert_int_equal(st->kind, KS_SYM_OBJECT);
	assert_true(st->size == sizeof(struct kt_abi_state));
	assert_int_equal(km->kind, KS_SYM_FUNC);
	assert_int_equal(km->type, 'T');
	assert_true(km->addr >= KERNEL_VMA && st->addr >= KERNEL_VMA);
	/* name+offset both ways, across kt_state and kmain */
	for (uint64_t o = 0; o < st->size; o += 8) {
		assert_int_equal(ks_sym_format(t, st->addr + o, buf, sizeof(buf)), 0);
		assert_int_equal(ks_sym_parse(t, buf, &back, NULL), 0);
		assert_true(back == st->addr + o);
	}
	assert_int_equal(ks_sym_format(t, km->addr + 5, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "kmain+0x5");
	assert_int_equal(ks_sym_parse(t, "kt_state+0x10", &back, NULL), 0);
	assert_true(back == st->addr + 0x10);
	assert_ptr_equal(ks_sym_at(t, km->addr + km->size - 1, &off), km);
	assert_true(off == km->size - 1);
	ks_sym_free(t);
}

/* Inside a sized symbol the ELF and the map find the same place, by the same name or by
 * another name for the same address (nm's letters cannot tell __start_kt_suites, a label,
 * from the object it starts). */
static void same_place(const struct ks_symtab *elf, const struct ks_symtab *map, ks_gva_t addr)
{
	uint64_t o1, o2;
	const struct ks_sym *x = ks_sym_at(elf, addr, &o1), *y = ks_sym_at(map, addr, &o2);
	char a[128], b[128];

	assert_non_null(x);
	assert_non_null(y);
	assert_true(x->addr == y->addr && o1 == o2);
	ks_sym_format(elf, addr, a, sizeof(a));
	ks_sym_format(map, addr, b, sizeof(b));
	if (strcmp(a, b) && ks_sym_find(elf, y->name)->addr != x->addr)
		fail_msg("ELF says %s, System.map %s", a, b);
}

/* A System.map made by nm from the same kernel answers as the ELF does. */
static void demo_kernel_system_map(void **state)
{
	char path[] = "/tmp/kscope-test-sysmap-XXXXXX";
	int fd = mkstemp(path);
	size_t compared = 0;
	ks_gva_t x1, x2;
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	nm_to(vm_demo_kernel(), path);
	struct ks_symtab *elf = load(vm_demo_kernel()), *map = load(path);
	for (size_t i = 0; i < ks_sym_count(elf); i++) {
		const struct ks_sym *s = ks_sym_get(elf, i), *m;

		if (s->kind == KS_SYM_ABS || ks_sym_find(elf, s->name) != s)
			continue;
		if (!(m = ks_sym_find(map, s->name)))
			fail_msg("%s is in the ELF, not in nm's map", s->name);
		assert_true(m->addr == s->addr);
		assert_int_equal(m->type, s->type);
		if (s->size > 1)
			same_place(elf, map, s->addr + s->size / 2);
		compared++;
	}
	assert_true(compared > 100);
	assert_int_equal(ks_sym_parse(elf, "kmain+0x20", &x1, NULL), 0);
	assert_int_equal(ks_sym_parse(map, "kmain+0x20", &x2, NULL), 0);
	assert_true(x1 == x2);
	ks_sym_free(elf);
	ks_sym_free(map);
	unlink(path);
}

/* ---- the running kernel ---- */

struct live {
	struct ks_loop *loop;
	char base[64];
	struct ks_vm *vm;
	struct ks_mem *mem;
	struct ks_vtop *vtop;
	struct ks_symtab *syms;
	uint64_t cr3;
	bool la57;
	ks_gva_t kt_state;
};

static struct live live;

static struct ks_vm *start_vm(struct ks_loop *loop, const char *base, const char *name,
			      const char *const *kv)
{
	struct ks_error err = { 0 };
	struct ks_vmspec *s = ks_vmspec_new(NULL);
	struct ks_vm_opts o;

	assert_int_equal(ks_vmspec_set(s, "kernel", vm_demo_kernel(), &err), 0);
	assert_int_equal(ks_vmspec_set(s, "accel", "tcg", &err), 0);
	assert_int_equal(ks_vmspec_set(s, "append", "kt.filter=example_crash.hang", &err), 0);
	for (int i = 0; kv && kv[i]; i += 2)
		if (ks_vmspec_set(s, kv[i], kv[i + 1], &err) < 0)
			fail_msg("%s", err.msg);
	ks_vm_opts_init(&o);
	o.name = name;
	o.rundir_base = base;
	struct ks_vm *vm = ks_vm_start(loop, s, &o, &err);
	ks_vmspec_free(s);
	if (!vm)
		fail_msg("start: %s", err.msg);
	/* The hang case runs once its suite's plan is out; the identity map is gone by then. */
	struct ks_chan *con = ks_vm_chan(vm, 0);
	uint64_t cursor = 0;
	if (ks_chan_wait_line(con, "# Subtest: example_crash", 0, &cursor, 60 * SEC, NULL) ||
	    ks_chan_wait_line(con, "1..1", 0, &cursor, 10 * SEC, NULL)) {
		ks_chan_dump(con, 50, stderr);
		fail_msg("the demo kernel did not reach example_crash.hang");
	}
	if (ks_vm_pause(vm, &err) < 0)
		fail_msg("pause: %s", err.msg);
	return vm;
}

static struct ks_mem *map_ram(struct ks_vm *vm)
{
	const struct ks_ram_layout *l = ks_vm_ram(vm);
	struct ks_error err = { 0 };
	int fds[16];

	assert_true(l->nfiles <= 16);
	for (size_t i = 0; i < l->nfiles; i++)
		fds[i] = ks_vm_ram_fd(vm, i);
	struct ks_mem *m = ks_mem_new_mapped(l, fds, &err);
	if (!m)
		fail_msg("map RAM: %s", err.msg);
	return m;
}

/* CR3 and CR4.LA57 of vCPU 0, from HMP until the gdb client can give registers. */
static void vcpu_paging(struct ks_vm *vm, uint64_t *cr3, bool *la57)
{
	struct ks_error err = { 0 };
	char *out = NULL;

	if (ks_qmp_hmp(ks_vm_qmp(vm), "info registers", &out, 10 * SEC, &err) < 0)
		fail_msg("info registers: %s", err.msg);
	assert_int_equal(ks_vtop_regs_from_hmp(out, cr3, la57), 0);
	free(out);
}

static int live_setup(void **state)
{
	struct ks_error err = { 0 };

	if (!vm_have_qemu())
		skip();
	if (!live.vm) {
		live.loop = ks_loop_new(NULL);
		snprintf(live.base, sizeof(live.base), "/tmp/kscope-test-symmem-XXXXXX");
		assert_non_null(mkdtemp(live.base));
		live.vm = start_vm(live.loop, live.base, "symmem", NULL);
		live.mem = map_ram(live.vm);
		vcpu_paging(live.vm, &live.cr3, &live.la57);
		live.vtop = ks_vtop_new(live.mem, &err);
		ks_vtop_set_cr3(live.vtop, live.cr3, live.la57);
		ks_vtop_cache(live.vtop, true); /* paused, so translations stay true */
		live.syms = load(vm_demo_kernel());
		live.kt_state = ks_sym_find(live.syms, "kt_state")->addr;
	}
	*state = &live;
	return 0;
}

static int live_teardown_group(void **state)
{
	(void)state;
	if (!live.vm)
		return 0;
	ks_vtop_free(live.vtop);
	ks_mem_free(live.mem);
	ks_sym_free(live.syms);
	ks_vm_free(live.vm);
	ks_loop_free(live.loop);
	rmdir(live.base);
	return 0;
}

static void kt_state_through_page_tables(void **state)
{
	struct live *l = *state;
	struct ks_error err = { 0 };
	uint64_t magic = 0;

	assert_false(l->la57);
	assert_true((l->cr3 & 0xfff) == 0 && l->cr3 != 0);
	assert_int_equal(ks_vtop_read(l->vtop, l->kt_state, &magic, sizeof(magic), &err), 0);
	assert_true(magic == KT_ABI_MAGIC);
	struct ks_kt_state *st = ks_kt_state_read(ks_vtop_read_gva, l->vtop, l->kt_state, &err);
	if (!st)
		fail_msg("kt_state: %s", err.msg);
	assert_int_equal(st->phase, KT_PHASE_RUNNING);
	bool string = false, crash = false;
	for (size_t i = 0; i < st->nsuites; i++) {
		string |= !strcmp(st->suites[i].name, "string");
		crash |= !strcmp(st->suites[i].name, "example_crash");
	}
	assert_true(string && crash);
	assert_true(st->cur_suite >= 0);
	assert_string_equal(st->suites[st->cur_suite].name, "example_crash");
	ks_kt_state_free(st);
}

/* The image is linked at KERNEL_VMA + physical: the walk must agree with the linker. */
static void kernel_image_translates(void **state)
{
	struct live *l = *state;
	struct ks_vtop_result r;
	const char *names[] = { "kt_state", "kmain", "kt_state" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ks_gva_t va = ks_sym_find(l->syms, names[i])->addr;
		ks_gpa_t gpa;
		unsigned flags;

		assert_int_equal(ks_vtop_walk(l->mem, l->cr3, false, va, &r), 0);
		assert_true(r.gpa == va - KERNEL_VMA);
		assert_int_equal(r.nentries, 3); /* 2 MiB pages */
		assert_int_equal(r.entries[2].level, KS_VTOP_PD);
		assert_true(r.page_size == 2u << 20);
		assert_true(r.flags & KS_VTOP_PRESENT);
		assert_false(r.flags & KS_VTOP_USER);
		assert_int_equal(ks_vtop_translate(l->vtop, va, &gpa, &flags), 0);
		assert_true(gpa == va - KERNEL_VMA);
		assert_int_equal(flags, r.flags);
	}
	/* The same bytes through the physical address. */
	uint8_t v[64], p[64];
	assert_int_equal(ks_vtop_read(l->vtop, l->kt_state, v, sizeof(v), NULL), 0);
	assert_int_equal(ks_mem_read(l->mem, l->kt_state - KERNEL_VMA, p, sizeof(p), NULL), 0);
	assert_memory_equal(v, p, sizeof(v));
}

static void direct_map_translates(void **state)
{
	struct live *l = *state;
	const ks_gpa_t xs[] = { 0, 0x1000, l->kt_state - KERNEL_VMA, 0x7654321, 0xbfffffff };

	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		ks_gpa_t gpa;

		assert_int_equal(ks_vtop_translate(l->vtop, DIRECT_MAP + xs[i], &gpa, NULL), 0);
		assert_true(gpa == xs[i]);
	}
	uint64_t a, b;
	assert_int_equal(ks_vtop_read(l->vtop, DIRECT_MAP + l->kt_state - KERNEL_VMA, &a, 8,
				      NULL), 0);
	assert_int_equal(ks_vtop_read(l->vtop, l->kt_state, &b, 8, NULL), 0);
	assert_true(a == b);
}

/* The low identity map is dropped after boot: 0x1000 no longer translates. */
static void low_addresses_unmapped(void **state)
{
	struct live *l = *state;
	struct ks_vtop_result r;
	struct ks_error err = { 0 };
	char c;

	assert_int_equal(ks_vtop_walk(l->mem, l->cr3, false, 0x1000, &r), -EFAULT);
	assert_int_equal(r.fault, KS_VTOP_NOT_PRESENT);
	assert_true(r.nentries >= 1);
	assert_int_equal(r.entries[r.nentries - 1].level, r.fault_level);
	assert_int_equal(r.entries[r.nentries - 1].flags, 0);
	assert_int_equal(ks_vtop_read(l->vtop, 0x1000, &c, 1, &err), -EFAULT);
	assert_non_null(strstr(err.msg, "not present at"));
	assert_int_equal(ks_vtop_walk(l->mem, l->cr3, false, 0x0000800000000000ull, &r), -EFAULT);
	assert_int_equal(r.fault, KS_VTOP_NONCANONICAL);
}

/* pagemap: the image is one range from KERNEL_VMA, physical 0, covering every symbol. */
static void pagemap_has_kernel_image(void **state)
{
	struct live *l = *state;
	struct ks_error err = { 0 };
	struct ks_vtop_iter *it = ks_vtop_iter_new(l->mem, l->cr3, false, &err);
	struct ks_vtop_range r, image = { 0 };
	ks_gva_t prev_end = 0;
	int n = 0, rc;

	assert_non_null(it);
	while ((rc = ks_vtop_iter_next(it, &r, &err)) == 1) {
		assert_true(r.gva >= prev_end);
		prev_end = r.gva + r.size;
		if (r.gva <= l->kt_state && l->kt_state - r.gva < r.size)
			image = r;
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(ks_vtop_iter_skipped(it), 0);
	ks_vtop_iter_free(it);
	assert_true(n >= 2);
	assert_true(image.gva == KERNEL_VMA);
	assert_true(image.gpa == 0);
	ks_gva_t end = ks_sym_get(l->syms, ks_sym_count(l->syms) - 1)->addr;
	assert_true(image.size > end - KERNEL_VMA);
	assert_true(image.page_size == 2u << 20);
}

/* Above 4 GiB on q35: a value the host writes through the mapping is what QEMU shows at that
 * physical address, so the layout put it at the right file offset. */
static void high_ram_matches_qemu(void **state)
{
	struct live *l = *state;
	struct ks_error err = { 0 };
	char base[64], *out = NULL;

	snprintf(base, sizeof(base), "/tmp/kscope-test-symmem-q35-XXXXXX");
	assert_non_null(mkdtemp(base));
	struct ks_loop *loop = ks_loop_new(NULL);
	struct ks_vm *vm = start_vm(loop, base, "q35",
				    (const char *const[]){ "machine", "q35", "memory", "4G", NULL });
	struct ks_mem *m = map_ram(vm);
	const struct ks_ram_region *hi = ks_ram_layout_find(ks_vm_ram(vm), 0x100000000ull);
	assert_non_null(hi);
	assert_null(ks_ram_layout_find(ks_vm_ram(vm), 0xc0000000ull)); /* the hole */
	ks_gpa_t at = 0x100000000ull + 0x12345678;
	assert_int_equal(ks_mem_write_u64(m, at, 0x0123456789abcdefull), 0);
	assert_int_equal(ks_mem_read(m, 0xc0000000ull, &(uint64_t){0}, 8, &err), -EFAULT);
	assert_int_equal(ks_qmp_hmp(ks_vm_qmp(vm), "xp /1gx 0x112345678", &out, 10 * SEC, &err), 0);
	if (!strstr(out, "0x0123456789abcdef"))
		fail_msg("QEMU shows: %s", out);
	free(out);
	/* And the other way: what QEMU's view holds in low RAM is what the mapping holds. */
	uint64_t v = 0;
	assert_int_equal(ks_mem_read_u64(m, l->kt_state - KERNEL_VMA, &v), 0);
	assert_true(v == KT_ABI_MAGIC);
	ks_mem_free(m);
	ks_vm_free(vm);
	ks_loop_free(loop);
	rmdir(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(demo_kernel_symbols),
		cmocka_unit_test(demo_kernel_system_map),
		cmocka_unit_test_setup(kt_state_through_page_tables, live_setup),
		cmocka_unit_test_setup(kernel_image_translates, live_setup),
		cmocka_unit_test_setup(direct_map_translates, live_setup),
		cmocka_unit_test_setup(low_addresses_unmapped, live_setup),
		cmocka_unit_test_setup(pagemap_has_kernel_image, live_setup),
		cmocka_unit_test_setup(high_ram_matches_qemu, live_setup),
	};
	/* One VM serves every live test; it goes when the group ends. */
	return cmocka_run_group_tests_name("sym_mem", tests, NULL, live_teardown_group);
}
