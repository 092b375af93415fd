/* kt_format.c: printf-style formatting without libc, and whole-line KTAP output. */
#include "kt_internal.h"

#define KT__F_LEFT 0x01  /* '-' */
#define KT__F_ZERO 0x02  /* '0' */
#define KT__F_ALT 0x04   /* '#' */
#define KT__F_PLUS 0x08  /* '+' */
#define KT__F_SPACE 0x10 /* ' ' */

enum kt__len { KT__LEN_INT, KT__LEN_HH, KT__LEN_H, KT__LEN_L, KT__LEN_LL, KT__LEN_Z, KT__LEN_J,
	       KT__LEN_T };

/* One parsed conversion specification. */
struct kt__spec {
	unsigned int flags;
	int width;
	int prec; /* -1 when none was given */
	enum kt__len len;
	char conv;
};

/*
 * Where formatted characters go. total counts every character produced, so the C99 return
 * value survives truncation. With flush set, a full buffer is written to the console instead
 * of cutting the output short (kt_printf).
 */
struct kt__sink {
	char *buf;
	size_t size;
	size_t pos;
	size_t total;
	bool flush;
};

size_t kt__strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

bool kt__streq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static void kt__put(struct kt__sink *o, char c)
{
	o->total++;
	if (o->pos + 1 >= o->size) {
		if (!o->flush)
			return;
		kt_arch_write(o->buf, o->pos);
		o->pos = 0;
	}
	o->buf[o->pos++] = c;
}

static void kt__pad(struct kt__sink *o, char c, int n)
{
	while (n-- > 0)
		kt__put(o, c);
}

static bool kt__isdigit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads a decimal number or '*' (an int argument) at *f; negative '*' values yield -1. */
static int kt__parse_num(const char **f, va_list *ap)
{
	int v = 0;

	if (**f == '*') {
		(*f)++;
		v = va_arg(*ap, int);
		return v < 0 ? -1 : v;
	}
	while (kt__isdigit(**f)) {
		if (v < 100000) /* keeps absurd widths from overflowing */
			v = v * 10 + (**f - '0');
		(*f)++;
	}
	return v;
}

static const char *kt__parse_flags(const char *f, struct kt__spec *sp)
{
	for (;; f++) {
		switch (*f) {
		case '-': sp->flags |= KT__F_LEFT; break;
		case '0': sp->flags |= KT__F_ZERO; break;
		case '#': sp->flags |= KT__F_ALT; break;
		case '+': sp->flags |= KT__F_PLUS; break;
		case ' ': sp->flags |= KT__F_SPACE; break;
		default: return f;
		}
	}
}

/* Parses the specification after '%' at f; returns the position after its conversion. */
static const char *kt__parse_spec(const char *f, struct kt__spec *sp, va_list *ap)
{
	*sp = (struct kt__spec){ .prec = -1 };
	f = kt__parse_flags(f, sp);
	if (*f == '*') {
		/* A negative '*' width means '-' with its absolute value (C99 7.19.6.1). */
		int w = va_arg(*ap, int);

		f++;
		if (w < 0) {
			sp->flags |= KT__F_LEFT;
			w = w < -100000 ? 100000 : -w;
		}
		sp->width = w;
	} else {
		sp->width = kt__parse_num(&f, ap);
	}
	if (*f == '.') {
		f++;
		sp->prec = kt__parse_num(&f, ap);
	}
	switch (*f) {
	case 'h':
		sp->len = f[1] == 'h' ? KT__LEN_HH : KT__LEN_H;
		f += f[1] == 'h' ? 2 : 1;
		break;
	case 'l':
		sp->len = f[1] == 'l' ? KT__LEN_LL : KT__LEN_L;
		f += f[1] == 'l' ? 2 : 1;
		break;
	case 'z': sp->len = KT__LEN_Z; f++; break;
	case 'j': sp->len = KT__LEN_J; f++; break;
	case 't': sp->len = KT__LEN_T; f++; break;
	default: break;
	}
	sp->conv = *f;
	return *f ? f + 1 : f;
}

static unsigned long long kt__arg_unsigned(va_list *ap, enum kt__len len)
{
	switch (len) {
	case KT__LEN_HH: return (unsigned char)va_arg(*ap, unsigned int);
	case KT__LEN_H: return (unsigned short)va_arg(*ap, unsigned int);
	case KT__LEN_L: return va_arg(*ap, unsigned long);
	case KT__LEN_LL: return va_arg(*ap, unsigned long long);
	case KT__LEN_Z: return va_arg(*ap, size_t);
	case KT__LEN_J: return va_arg(*ap, uintmax_t);
	case KT__LEN_T: return (unsigned long long)va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, unsigned int);
	}
}

static long long kt__arg_signed(va_list *ap, enum kt__len len)
{
	switch (len) {
	case KT__LEN_HH: return (signed char)va_arg(*ap, int);
	case KT__LEN_H: return (short)va_arg(*ap, int);
	case KT__LEN_L: return va_arg(*ap, long);
	case KT__LEN_LL: return va_arg(*ap, long long);
	case KT__LEN_Z: return va_arg(*ap, ptrdiff_t); /* the signed type of size_t's width */
	case KT__LEN_J: return va_arg(*ap, intmax_t);
	case KT__LEN_T: return va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, int);
	}
}

/* Writes n characters of s padded to the spec's width. */
static void kt__emit_chars(struct kt__sink *o, const struct kt__spec *sp, const char *s, size_t n)
{
	int pad = sp->width > (int)n ? sp->width - (int)n : 0;

	if (!(sp->flags & KT__F_LEFT))
		kt__pad(o, ' ', pad);
	for (size_t i = 0; i < n; i++)
		kt__put(o, s[i]);
	if (sp->flags & KT__F_LEFT)
		kt__pad(o, ' ', pad);
}

static void kt__emit_str(struct kt__sink *o, const struct kt__spec *sp, const char *s)
{
	size_t n = 0;

	if (!s)
		s = "(null)";
	while (s[n] && (sp->prec < 0 || n < (size_t)sp->prec))
		n++;
	kt__emit_chars(o, sp, s, n);
}

/* Chooses the sign or base prefix of a number; returns its length. */
static int kt__num_prefix(const struct kt__spec *sp, bool neg, bool nonzero, char *prefix)
{
	bool is_signed = sp->conv == 'd' || sp->conv == 'i';

	if (neg)
		prefix[0] = '-';
	else if (is_signed && (sp->flags & KT__F_PLUS))
		prefix[0] = '+';
	else if (is_signed && (sp->flags & KT__F_SPACE))
		prefix[0] = ' ';
	else if (nonzero && (sp->flags & KT__F_ALT) && (sp->conv == 'x' || sp->conv == 'X')) {
		prefix[0] = '0';
		prefix[1] = sp->conv;
		return 2;
	} else
		return 0;
	return 1;
}

/* Formats the magnitude v (negative when neg) by the spec: base, prefix, precision, width. */
static void kt__emit_num(struct kt__sink *o, const struct kt__spec *sp, unsigned long long v,
			 bool neg)
{
	const char *digit = sp->conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
	unsigned int base = sp->conv == 'o' ? 8 : (sp->conv == 'x' || sp->conv == 'X') ? 16 : 10;
	char rev[24], prefix[2];
	int n = 0, np = kt__num_prefix(sp, neg, v != 0, prefix), zeros, pad;

	/* C99: a zero with precision 0 has no digits at all. */
	if (v != 0 || sp->prec != 0) {
		do {
			rev[n++] = digit[v % base];
			v /= base;
		} while (v);
	}
	zeros = sp->prec > n ? sp->prec - n : 0;
	if (sp->conv == 'o' && (sp->flags & KT__F_ALT) && zeros == 0 && (n == 0 || rev[n - 1] != '0'))
		zeros = 1;
	if (sp->prec < 0 && (sp->flags & KT__F_ZERO) && !(sp->flags & KT__F_LEFT) &&
	    sp->width - np - n > zeros)
		zeros = sp->width - np - n;
	pad = sp->width - np - zeros - n;
	if (!(sp->flags & KT__F_LEFT))
		kt__pad(o, ' ', pad);
	for (int i = 0; i < np; i++)
		kt__put(o, prefix[i]);
	kt__pad(o, '0', zeros);
	while (n > 0)
		kt__put(o, rev[--n]);
	if (sp->flags & KT__F_LEFT)
		kt__pad(o, ' ', pad);
}

static void kt__emit_ptr(struct kt__sink *o, struct kt__spec *sp, const void *p)
{
	if (!p) {
		sp->prec = -1;
		kt__emit_str(o, sp, "(null)");
		return;
	}
	sp->conv = 'x';
	sp->flags |= KT__F_ALT;
	kt__emit_num(o, sp, (uintptr_t)p, false);
}

/* Performs one conversion; unknown ones are copied as written. */
static void kt__convert(struct kt__sink *o, struct kt__spec *sp, va_list *ap)
{
	char c;

	switch (sp->conv) {
	case 'd':
	case 'i': {
		long long v = kt__arg_signed(ap, sp->len);

		/* -(v + 1) + 1 avoids overflowing on the most negative value. */
		kt__emit_num(o, sp, v < 0 ? (unsigned long long)-(v + 1) + 1 : (unsigned long long)v,
			     v < 0);
		break;
	}
	case 'u': case 'x': case 'X': case 'o':
		kt__emit_num(o, sp, kt__arg_unsigned(ap, sp->len), false);
		break;
	case 'p': kt__emit_ptr(o, sp, va_arg(*ap, const void *)); break;
	case 's': kt__emit_str(o, sp, va_arg(*ap, const char *)); break;
	case 'c':
		c = (char)va_arg(*ap, int);
		kt__emit_chars(o, sp, &c, 1);
		break;
	case '%': kt__put(o, '%'); break;
	case '\0': kt__put(o, '%'); break;
	default:
		kt__put(o, '%');
		kt__put(o, sp->conv);
		break;
	}
}

static void kt__format(struct kt__sink *o, const char *fmt, va_list *ap)
{
	struct kt__spec sp;

	while (*fmt) {
		if (*fmt != '%') {
			kt__put(o, *fmt++);
			continue;
		}
		fmt = kt__parse_spec(fmt + 1, &sp, ap);
		kt__convert(o, &sp, ap);
	}
}

int kt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct kt__sink o = { .buf = buf, .size = size };
	va_list aq;

	/* A copy, because a va_list parameter cannot portably be passed on by address. */
	va_copy(aq, ap);
	kt__format(&o, fmt ? fmt : "", &aq);
	va_end(aq);
	if (size > 0)
		buf[o.pos] = '\0';
	return o.total > (size_t)__INT_MAX__ ? __INT_MAX__ : (int)o.total;
}

int kt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void kt_printf(const char *fmt, ...)
{
	char buf[128];
	struct kt__sink o = { .buf = buf, .size = sizeof(buf), .flush = true };
	va_list ap;

	va_start(ap, fmt);
	kt__format(&o, fmt ? fmt : "", &ap);
	va_end(ap);
	if (o.pos)
		kt_arch_write(buf, o.pos);
}

void kt__emit(int indent, const char *prefix, const char *text)
{
	char line[KT__LINE_MAX];
	size_t plen = kt__strlen(prefix);

	do {
		size_t n = 0;

		for (int i = 0; i < indent * KT__INDENT && n < 64; i++)
			line[n++] = ' ';
		for (size_t i = 0; i < plen && n < sizeof(line) - 1; i++)
			line[n++] = prefix[i];
		/* "# " alone would end in a space: a blank diagnostic is just "#". */
		if (*text == '\n' || *text == '\0')
			while (n > 0 && line[n - 1] == ' ' && plen > 0)
				n--;
		for (; *text && *text != '\n'; text++)
			if (n < sizeof(line) - 1)
				line[n++] = *text;
		line[n++] = '\n';
		kt_arch_write(line, n);
		if (*text == '\n')
			text++;
	} while (*text);
}

void kt__line(int indent, const char *fmt, ...)
{
	char text[KT__LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	kt_vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	kt__emit(indent, "", text);
}

void kt__vdiag(int indent, const char *fmt, va_list ap)
{
	char text[KT__LINE_MAX];

	kt_vsnprintf(text, sizeof(text), fmt, ap);
	kt__emit(indent, "# ", text);
}

void kt__diag(int indent, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kt__vdiag(indent, fmt, ap);
	va_end(ap);
}
