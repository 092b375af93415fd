/* vmspec_fixtures.h: a temporary directory of files the vmspec and argv tests refer to. */
#ifndef KSCOPE_TESTS_VMSPEC_FIXTURES_H
#define KSCOPE_TESTS_VMSPEC_FIXTURES_H

/*
 * Creates a fresh directory holding: kernel.elf (x86-64 ELF header), kernel32.elf (i386),
 * bzImage (setup header "HdrS" at 0x202), arm.elf (an AArch64 ELF), notes.txt (text),
 * empty (0 bytes), disk.raw, disk.qcow2 (qcow2 magic), "a,b.img" (a comma in the name),
 * qemu (an executable script), noexec (not executable), subdir/ (a directory).
 * Returns its path (static storage), or NULL on failure.
 */
const char *fx_setup(void);

/* Removes the directory made by fx_setup() and everything in it. */
void fx_teardown(void);

/* Returns a copy of text with every "@DIR@" replaced by the fixture directory (caller frees). */
char *fx_subst(const char *text);

#endif
