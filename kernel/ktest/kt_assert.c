/* kt_assert.c: what a failed expectation prints and records; skips, cleanups and kt_info. */
#include "kt_internal.h"

/* Bytes of each side that a failed KT_*_MEM_EQ shows. */
#define KT__MEM_SHOW 32

static const char *kt__name(const struct kt_test *t)
{
	return t && t->kcase && t->kcase->name ? t->kcase->name : "?";
}

static int kt__indent(const struct kt_test *t)
{
	return t ? t->indent : 0;
}

/* Marks the test failed and publishes the failure (the first one's location too). */
static void kt__record(struct kt_test *t, const char *file, int line)
{
	struct kt_case *c = t ? t->kcase : NULL;

	if (!t)
		return;
	t->status = KT_ST_FAIL;
	if (!c)
		return;
	kt__state_begin();
	c->abi.failures++;
	if (file && !c->abi.fail_file) {
		c->abi.fail_file = kt__va(file);
		c->abi.fail_line = line > 0 ? (uint32_t)line : 0;
	}
	kt__state_end();
}

/* Records the failure and prints its first line. */
static void kt__head(struct kt_test *t, const struct kt__site *s)
{
	kt__record(t, s->file, s->line);
	kt__diag(kt__indent(t), "%s: %s FAILED at %s:%d", kt__name(t),
		 s->fatal ? "ASSERTION" : "EXPECTATION", s->file, s->line);
}

/* Prints the user's _MSG message, if any. */
static void kt__tail(struct kt_test *t, const char *fmt, va_list ap)
{
	if (fmt)
		kt__vdiag(kt__indent(t), fmt, ap);
}

/* One "<operand> == <value>" line; a right operand written as its own value is left out. */
static void kt__operand(struct kt_test *t, const char *text, const char *value, bool right)
{
	if (right && kt__streq(text, value))
		return;
	kt__diag(kt__indent(t), "    %s == %s", text, value);
}

int kt__cmp_int(bool ls, unsigned long long l, bool rs, unsigned long long r)
{
	bool lneg = ls && (long long)l < 0, rneg = rs && (long long)r < 0;

	if (lneg != rneg)
		return lneg ? -1 : 1;
	/* Same sign: two's complement order equals unsigned order. */
	return l < r ? -1 : l > r;
}

bool kt__str_eq(const char *a, const char *b)
{
	return kt__streq(a, b);
}

bool kt__mem_eq(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	if (n == 0 || a == b)
		return true;
	if (!a || !b)
		return false;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

void kt__abort(struct kt_test *t)
{
	kt_longjmp(t->abort_jmp, 1);
}

void kt__fail_int(struct kt_test *t, const struct kt__site *s, bool ls, unsigned long long l,
		  bool rs, unsigned long long r, const char *fmt, ...)
{
	char dec[24], value[48];
	va_list ap;

	kt__head(t, s);
	kt__diag(kt__indent(t), "Expected %s, but", s->expr);
	kt_snprintf(value, sizeof(value), ls ? "%lld (0x%llx)" : "%llu (0x%llx)", l, l);
	kt__operand(t, s->left, value, false);
	kt_snprintf(dec, sizeof(dec), rs ? "%lld" : "%llu", r);
	if (!kt__streq(s->right, dec)) {
		kt_snprintf(value, sizeof(value), "%s (0x%llx)", dec, r);
		kt__operand(t, s->right, value, true);
	}
	va_start(ap, fmt);
	kt__tail(t, fmt, ap);
	va_end(ap);
}

void kt__fail_bool(struct kt_test *t, const struct kt__site *s, const char *fmt, ...)
{
	/* The macro passes the wanted value as the "left" text: "true" or "false". */
	bool want = kt__streq(s->left, "true");
	va_list ap;

	kt__head(t, s);
	kt__diag(kt__indent(t), "Expected %s to be %s, but", s->expr, want ? "true" : "false");
	kt__diag(kt__indent(t), "    %s is %s", s->expr, want ? "false" : "true");
	va_start(ap, fmt);
	kt__tail(t, fmt, ap);
	va_end(ap);
}

void kt__fail_ptr(struct kt_test *t, const struct kt__site *s, const void *l, const void *r,
		  const char *fmt, ...)
{
	char value[32];
	va_list ap;

	kt__head(t, s);
	kt__diag(kt__indent(t), "Expected %s, but", s->expr);
	kt_snprintf(value, sizeof(value), "%p", l);
	kt__operand(t, s->left, value, false);
	kt_snprintf(value, sizeof(value), "%p", r);
	if (!(r == NULL && kt__streq(s->right, "NULL")))
		kt__operand(t, s->right, value, true);
	va_start(ap, fmt);
	kt__tail(t, fmt, ap);
	va_end(ap);
}

/* A string as the failure shows it: quoted, or (null). */
static void kt__quote(char *buf, size_t size, const char *s)
{
	if (s)
		kt_snprintf(buf, size, "\"%s\"", s);
	else
		kt_snprintf(buf, size, "(null)");
}

void kt__fail_str(struct kt_test *t, const struct kt__site *s, const char *l, const char *r,
		  const char *fmt, ...)
{
	char value[KT__LINE_MAX / 2];
	va_list ap;

	kt__head(t, s);
	kt__diag(kt__indent(t), "Expected %s, but", s->expr);
	kt__quote(value, sizeof(value), l);
	kt__operand(t, s->left, value, false);
	kt__quote(value, sizeof(value), r);
	kt__operand(t, s->right, value, true);
	va_start(ap, fmt);
	kt__tail(t, fmt, ap);
	va_end(ap);
}

/* Hex dump of the first KT__MEM_SHOW bytes of p, the byte at offset mark in <>. */
static void kt__hexdump(char *buf, size_t size, const unsigned char *p, size_t n, size_t mark)
{
	size_t len = 0;

	if (!p) {
		kt_snprintf(buf, size, "(null)");
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < n && i < KT__MEM_SHOW && len < size; i++)
		len += (size_t)kt_snprintf(buf + len, size - len,
					   i == mark ? "%s<%02x>" : "%s%02x", i ? " " : "", p[i]);
	if (n > KT__MEM_SHOW && len < size)
		kt_snprintf(buf + len, size - len, " ...");
}

void kt__fail_mem(struct kt_test *t, const struct kt__site *s, const void *l, const void *r,
		  size_t n, const char *fmt, ...)
{
	const unsigned char *x = l, *y = r;
	char dump[KT__MEM_SHOW * 4 + 16];
	size_t diff = (size_t)-1; /* no mark when a side is NULL */
	va_list ap;

	if (x && y) {
		diff = 0;
		while (diff < n && x[diff] == y[diff])
			diff++;
	}
	kt__head(t, s);
	kt__diag(kt__indent(t), "Expected %s, but", s->expr);
	kt__hexdump(dump, sizeof(dump), x, n, diff);
	kt__operand(t, s->left, dump, false);
	kt__hexdump(dump, sizeof(dump), y, n, diff);
	kt__operand(t, s->right, dump, false);
	if (x && y)
		kt__diag(kt__indent(t), "    first difference at offset %zu of %zu", diff, n);
	va_start(ap, fmt);
	kt__tail(t, fmt, ap);
	va_end(ap);
}

void kt__fail_msg(struct kt_test *t, bool fatal, const char *file, int line, const char *fmt,
		  ...)
{
	const struct kt__site s = { .file = file, .line = line, .fatal = fatal };
	va_list ap;

	kt__head(t, &s);
	va_start(ap, fmt);
	kt__tail(t, fmt, ap);
	va_end(ap);
}

void kt__fail_note(struct kt_test *t, const char *fmt, ...)
{
	char text[KT__LINE_MAX];
	va_list ap;

	kt__record(t, NULL, 0);
	va_start(ap, fmt);
	kt_vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	kt__diag(kt__indent(t), "%s: %s", kt__name(t), text);
}

/* Records a skip reason; a failure already recorded keeps the test failed. */
static void kt__set_skipped(struct kt_test *t, const char *fmt, va_list ap)
{
	kt_vsnprintf(t->skip_reason, sizeof(t->skip_reason), fmt, ap);
	/* The reason ends up inside a result line: keep it on one line. */
	for (char *p = t->skip_reason; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (t->status != KT_ST_FAIL)
		t->status = KT_ST_SKIP;
}

void kt_skip(struct kt_test *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kt__set_skipped(t, fmt, ap);
	va_end(ap);
	kt__abort(t);
}

void kt_mark_skipped(struct kt_test *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kt__set_skipped(t, fmt, ap);
	va_end(ap);
}

int kt_add_cleanup(struct kt_test *t, void (*fn)(void *data), void *data)
{
	if (t->ncleanups >= KT_MAX_CLEANUPS) {
		fn(data);
		return -1;
	}
	t->cleanups[t->ncleanups].fn = fn;
	t->cleanups[t->ncleanups].data = data;
	t->ncleanups++;
	return 0;
}

void kt_info(struct kt_test *t, const char *fmt, ...)
{
	char text[KT__LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	kt_vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (t)
		kt__diag(t->indent, "%s: %s", kt__name(t), text);
	else
		kt__diag(0, "%s", text);
}
