/* kt_internal.h: interfaces shared by the kt_ library's own files, not by its users. */
#ifndef KT_INTERNAL_H
#define KT_INTERNAL_H

#include <kt/ktest.h>

/* Longest KTAP line the library writes; longer ones are cut, never split. */
#define KT__LINE_MAX 512

/* Spaces per KTAP nesting level (as KUnit prints them). */
#define KT__INDENT 4

/* ---- kt_run.c ---- */

/*
 * Stores one 32-bit field of kt_state on its own. The compiler would merge stores to
 * neighbouring fields into 8-byte ones, half of them misaligned, and QEMU's watchpoint on
 * kt_state.phase (how a host finds READY and DONE) stops the VM for such stores near the
 * phase too: each a needless round trip to the host.
 */
#define KT__SET(field, value) (*(volatile __typeof__(field) *)&(field) = (value))

/* Opens a change of kt_state (seq becomes odd) and stamps now_ns. Pair with kt__state_end. */
void kt__state_begin(void);
/* Closes a change of kt_state (seq becomes even again). */
void kt__state_end(void);

/* ---- kt_format.c ---- */

/*
 * Writes text as KTAP lines at nesting depth indent, each line of it (split at '\n') prefixed
 * with prefix, through one kt_arch_write() call per line.
 */
void kt__emit(int indent, const char *prefix, const char *text);
/* Formats and writes one or more plain KTAP lines at depth indent. */
__attribute__((format(printf, 2, 3)))
void kt__line(int indent, const char *fmt, ...);
/* Formats and writes diagnostic lines ("# ...") at depth indent. */
__attribute__((format(printf, 2, 3)))
void kt__diag(int indent, const char *fmt, ...);
/* kt__diag with a va_list. */
void kt__vdiag(int indent, const char *fmt, va_list ap);

/* Length of a NUL-terminated string (the library has no libc). */
size_t kt__strlen(const char *s);
/* True when two NUL-terminated strings are equal; NULL equals only NULL. */
bool kt__streq(const char *a, const char *b);

/* ---- kt_glob.c ---- */

/* kt_glob_match() over the first n bytes of pattern (which need not be NUL-terminated). */
bool kt__glob_match_n(const char *pattern, size_t n, const char *str);

/* ---- kt_assert.c ---- */

/* Records a failure of the running test that has no source location (a hook's result) and
 * prints "# <case>: <message>". */
__attribute__((format(printf, 2, 3)))
void kt__fail_note(struct kt_test *t, const char *fmt, ...);

/* A guest virtual address as the ABI stores it. */
static inline uint64_t kt__va(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

#endif /* KT_INTERNAL_H */
