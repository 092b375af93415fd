/* error.c: filling struct ks_error. */
#include <stdarg.h>
#include <stdio.h>

#include <kscope/error.h>

int ks_error_set(struct ks_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}
