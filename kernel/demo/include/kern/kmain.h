/* kmain.h: the arch-independent part of the demo kernel's start. */
#ifndef KERN_KMAIN_H
#define KERN_KMAIN_H

/* Runs the kt_ tests selected by cmdline and leaves QEMU with the KT_EXIT_* result. Called by
 * the arch once every subsystem is up. */
__attribute__((noreturn)) void kmain(const char *cmdline);

/* The command line kmain() was given, for the kernel's own options (demo.*); "" before. */
const char *kmain_cmdline(void);

#endif /* KERN_KMAIN_H */
