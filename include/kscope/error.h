/* error.h: readable errors returned by libkscope constructors and calls. */
#ifndef KSCOPE_ERROR_H
#define KSCOPE_ERROR_H

/* Filled by a failing call that takes a `struct ks_error *` (which may be NULL). */
struct ks_error {
	int code;       /* negative errno */
	char msg[256];  /* one line, no trailing newline */
};

/*
 * Sets err (if not NULL) to code and a printf-style message; returns code, so a caller can
 * write `return ks_error_set(err, -EINVAL, "...")`.
 */
__attribute__((format(printf, 3, 4)))
int ks_error_set(struct ks_error *err, int code, const char *fmt, ...);

#endif
