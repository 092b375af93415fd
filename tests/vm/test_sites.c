/* test_sites.c: event sites and the syscall entry of the demo kernel, found from its ELF file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/sites.h>
#include <kscope/sym.h>

#include "vmboot.h"

struct fix {
	struct ks_symtab *syms;
	struct ks_sites *with, *without;  /* scanned with and without the symbol table */
};

static struct ks_sites *scan(const struct ks_symtab *t, const char *entry)
{
	struct ks_error err = { 0 };
	struct ks_sites *s = ks_sites_scan(vm_demo_kernel(), t, entry, &err);

	if (!s)
		fail_msg("%s", err.msg);
	return s;
}

static int setup(void **state)
{
	static struct fix f;
	struct ks_error err = { 0 };

	if (!(f.syms = ks_sym_load(vm_demo_kernel(), &err))) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	f.with = ks_sites_scan(vm_demo_kernel(), f.syms, NULL, &err);
	f.without = ks_sites_scan(vm_demo_kernel(), NULL, NULL, &err);
	if (!f.with || !f.without) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	ks_sites_free(f->without);
	ks_sites_free(f->with);
	ks_sym_free(f->syms);
	return 0;
}

static const struct ks_sym *sym(const struct fix *f, const char *name)
{
	const struct ks_sym *y = ks_sym_find(f->syms, name);

	if (!y)
		fail_msg("the demo kernel has no symbol %s", name);
	return y;
}

/* True when some site of the kind lies in the named symbol. */
static bool site_in(const struct ks_sites *s, enum ks_site_kind kind, const char *name)
{
	size_t n;
	const struct ks_site *v = ks_sites_list(s, kind, &n);

	for (size_t i = 0; i < n; i++)
		if (v[i].sym && !strcmp(v[i].sym, name))
			return true;
	return false;
}

/* The kt_magic_sites list and the disassembly name the same sites, with or without symbols. */
static void section_and_disassembly_agree(void **state)
{
	struct fix *f = *state;
	size_t n, n2, listed = 0, found = 0;
	const struct ks_site *v = ks_sites_list(f->with, KS_SITE_MAGIC, &n);
	const struct ks_site *w = ks_sites_list(f->without, KS_SITE_MAGIC, &n2);
	uint64_t bytes = sym(f, "__stop_kt_magic_sites")->addr -
			 sym(f, "__start_kt_magic_sites")->addr;
	struct ks_sites_stats st;

	assert_true(ks_sites_have_section(f->with));
	ks_sites_stats(f->with, &st);
	assert_true(st.section_entries == bytes / 8);
	assert_int_equal(st.section_bad, 0);
	assert_int_equal(st.pattern_rejected, 0);
	assert_true(n >= 5);
	for (size_t i = 0; i < n; i++) {
		listed += !!(v[i].flags & KS_SITE_SECTION);
		found += !!(v[i].flags & KS_SITE_DISASM);
		assert_false(v[i].flags & (KS_SITE_BAD | KS_SITE_DATA));
		assert_non_null(v[i].sym);
	}
	assert_int_equal(listed, st.section_entries);
	assert_int_equal(found, listed);
	assert_int_equal(n, listed);
	assert_int_equal(n2, n);
	for (size_t i = 0; i < n; i++)
		assert_true(w[i].addr == v[i].addr && w[i].flags == v[i].flags);
}

/* The first magic site is the boot message at the PVH entry, in 32-bit code. */
static void boot_magic_site(void **state)
{
	struct fix *f = *state;
	size_t n;
	const struct ks_site *v = ks_sites_list(f->with, KS_SITE_MAGIC, &n);
	const struct ks_sym *entry = sym(f, "pvh_start32");

	assert_true(n > 0);
	assert_true(ks_sites_elf_entry(f->with) == entry->addr);
	assert_string_equal(v[0].sym, "pvh_start32");
	/* the first instruction of its own after KT_MAGIC_ASM loads id and arguments (three
	 * 5-byte movs to eax, edi, esi) */
	assert_true(v[0].addr == entry->addr + 15);
	assert_true(v[0].flags & KS_SITE_CODE32);
	for (size_t i = 1; i < n; i++)
		assert_false(v[i].flags & KS_SITE_CODE32);
}

/* The syscall entry is found without naming it, from the wrmsr to IA32_LSTAR. */
static void syscall_entry_found(void **state)
{
	struct fix *f = *state;
	const struct ks_sym *y = sym(f, "syscall_entry");
	const struct ks_syscall_entry *e = ks_sites_syscall_entry(f->with);
	const struct ks_syscall_entry *e2 = ks_sites_syscall_entry(f->without);
	size_t n;
	const struct ks_site *sw = ks_sites_list(f->with, KS_SITE_SWAPGS, &n);
	bool starts_with_swapgs = false;

	assert_non_null(e);
	assert_true(e->addr == y->addr);
	assert_int_equal(e->how, KS_ENTRY_LSTAR);
	assert_string_equal(e->sym, "syscall_entry");
	assert_true(e->off == 0);
	assert_non_null(e2);
	assert_true(e2->addr == y->addr);
	for (size_t i = 0; i < n; i++)
		starts_with_swapgs |= sw[i].addr == y->addr;
	assert_true(starts_with_swapgs);

	struct ks_sites *named = scan(f->syms, "syscall_entry");
	assert_int_equal(ks_sites_syscall_entry(named)->how, KS_ENTRY_NAMED);
	assert_true(ks_sites_syscall_entry(named)->addr == y->addr);
	ks_sites_free(named);
}

/* sysretq in the syscall return path and in the first entry to ring 3; iretq in the
 * interrupt return; swapgs around all of them. */
static void sysret_iret_swapgs(void **state)
{
	struct fix *f = *state;
	size_t n;
	const struct ks_site *v = ks_sites_list(f->with, KS_SITE_SYSRET, &n);
	static const char *const swapgs_in[] = { "isr_common", "isr_return", "syscall_entry",
						 "syscall_return", "user_enter" };

	assert_true(n >= 2);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].size, 3);  /* sysretq, to 64-bit user code */
	assert_true(site_in(f->with, KS_SITE_SYSRET, "syscall_return"));
	assert_true(site_in(f->with, KS_SITE_SYSRET, "user_enter"));
	v = ks_sites_list(f->with, KS_SITE_IRET, &n);
	assert_true(n >= 1);
	assert_true(site_in(f->with, KS_SITE_IRET, "isr_return"));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i].size, 2);  /* iretq */
	for (size_t i = 0; i < sizeof(swapgs_in) / sizeof(*swapgs_in); i++)
		if (!site_in(f->with, KS_SITE_SWAPGS, swapgs_in[i]))
			fail_msg("no swapgs in %s", swapgs_in[i]);
}

/* The ring-3 programs the kernel copies out of .rodata: their syscalls, flagged as data,
 * found through their symbols only. */
static void user_syscalls(void **state)
{
	struct fix *f = *state;
	size_t n, bare;
	const struct ks_site *v = ks_sites_list(f->with, KS_SITE_SYSCALL, &n);
	ks_gva_t lo = sym(f, "user_blob_start")->addr, hi = sym(f, "user_blob_end")->addr;
	static const char *const progs[] = { "user_prog_getcpu", "user_prog_add",
					     "user_prog_efault", "user_prog_badsys" };

	assert_true(n >= 9);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].flags, KS_SITE_DISASM | KS_SITE_DATA);
		assert_true(v[i].addr >= lo && v[i].addr < hi);
	}
	for (size_t i = 0; i < sizeof(progs) / sizeof(*progs); i++)
		if (!site_in(f->with, KS_SITE_SYSCALL, progs[i]))
			fail_msg("no syscall in %s", progs[i]);
	ks_sites_list(f->without, KS_SITE_SYSCALL, &bare);
	assert_int_equal(bare, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(section_and_disassembly_agree),
		cmocka_unit_test(boot_magic_site),
		cmocka_unit_test(syscall_entry_found),
		cmocka_unit_test(sysret_iret_swapgs),
		cmocka_unit_test(user_syscalls),
	};

	return cmocka_run_group_tests_name("sites", tests, setup, teardown);
}
