/* inspect.c: text forms shared by the introspection commands and the supervisor: widths, values, bytes, dumps, HMP registers. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/inspect.h>
#include <kscope/vtop.h>

static const char *const format_names[] = {
	[KS_INSPECT_HEX] = "hex", [KS_INSPECT_U8] = "u8", [KS_INSPECT_U16] = "u16",
	[KS_INSPECT_U32] = "u32", [KS_INSPECT_U64] = "u64", [KS_INSPECT_STR] = "str",
	[KS_INSPECT_KT] = "kt",
};

int ks_inspect_format_parse(const char *name, enum ks_inspect_format *f, struct ks_error *err)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (!strcmp(name, format_names[i])) {
			*f = (enum ks_inspect_format)i;
			return 0;
		}
	}
	return ks_error_set(err, -EINVAL, "bad format '%.32s' (use hex, u8, u16, u32, u64, str "
			    "or kt)", name);
}

unsigned ks_inspect_format_width(enum ks_inspect_format f)
{
	switch (f) {
	case KS_INSPECT_U16: return 2;
	case KS_INSPECT_U32: return 4;
	case KS_INSPECT_U64: return 8;
	case KS_INSPECT_KT: return 0;
	default: return 1;
	}
}

int ks_inspect_parse_width(const char *text, unsigned *width, struct ks_error *err)
{
	if (text[0] && !text[1] && strchr("1248", text[0])) {
		*width = (unsigned)(text[0] - '0');
		return 0;
	}
	return ks_error_set(err, -EINVAL, "bad width '%.32s' (use 1, 2, 4 or 8 bytes)", text);
}

/* Digits of base 10 or 16 into *v; -EINVAL for none or another character, -ERANGE past 64
 * bits. */
static int digits(const char *s, int base, uint64_t *v)
{
	uint64_t x = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		int c = (unsigned char)*s, d;

		if (isdigit(c))
			d = c - '0';
		else if (base == 16 && isxdigit(c))
			d = tolower(c) - 'a' + 10;
		else
			return -EINVAL;
		if (x > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -ERANGE;
		x = x * (uint64_t)base + (uint64_t)d;
	}
	*v = x;
	return 0;
}

/* "0x..." hex or decimal. */
static int number(const char *s, uint64_t *v)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return digits(s + 2, 16, v);
	return digits(s, 10, v);
}

int ks_inspect_parse_u64(const char *text, const char *what, uint64_t max, uint64_t *value,
			 struct ks_error *err)
{
	uint64_t v;
	int rc = number(text, &v);

	if (rc == -EINVAL)
		return ks_error_set(err, rc, "bad %s '%.32s' (a number: decimal, or hex after 0x)",
				    what, text);
	if (rc < 0 || v > max)
		return ks_error_set(err, -ERANGE, "%s %.32s is too large (at most %" PRIu64 ")",
				    what, text, max);
	*value = v;
	return 0;
}

int ks_inspect_parse_value(const char *text, unsigned width, uint64_t *value,
			   struct ks_error *err)
{
	uint64_t mask = width >= 8 ? UINT64_MAX : (1ull << (8 * width)) - 1, v;
	bool neg = text[0] == '-';
	int rc = number(text + neg, &v);

	if (rc == -EINVAL || (neg && text[1] == '0' && (text[2] == 'x' || text[2] == 'X')))
		return ks_error_set(err, -EINVAL, "bad value '%.32s' (a number: decimal, or hex "
				    "after 0x)", text);
	/* A negative value fits when it is at least the width's most negative number. */
	if (rc < 0 || (!neg && v > mask) || (neg && v > mask / 2 + 1))
		return ks_error_set(err, -ERANGE, "value %.32s does not fit in %u byte%s", text,
				    width, width == 1 ? "" : "s");
	*value = (neg ? (uint64_t)0 - v : v) & mask;
	return 0;
}

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

int ks_inspect_parse_bytes(const char *text, uint8_t **bytes, size_t *len,
			   struct ks_error *err)
{
	size_t n = 0, cap = strlen(text) / 2 + 1;
	uint8_t *b = malloc(cap);

	if (!b)
		return ks_error_set(err, -ENOMEM, "out of memory");
	for (const char *p = text; *p;) {
		int hi = hexval((unsigned char)p[0]), lo = hi < 0 ? -1 : hexval((unsigned char)p[1]);

		if (n && strchr(" \t:-", *p)) {
			p++;
			continue;
		}
		if (hi < 0 || lo < 0) {
			free(b);
			return ks_error_set(err, -EINVAL, "bad byte string at '%.8s' (hex digits, "
					    "two per byte, like 6b73 or '6b 73')", hi < 0 ? p : p + 1);
		}
		b[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	if (!n) {
		free(b);
		return ks_error_set(err, -EINVAL, "empty byte string");
	}
	*bytes = b;
	*len = n;
	return 0;
}

char *ks_inspect_hex_encode(const void *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *b = buf;
	char *s = malloc(2 * len + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		s[2 * i] = hex[b[i] >> 4];
		s[2 * i + 1] = hex[b[i] & 15];
	}
	s[2 * len] = 0;
	return s;
}

int ks_inspect_hex_decode(const char *hex, uint8_t **bytes, size_t *len)
{
	size_t n = strlen(hex);
	uint8_t *b;

	if (n % 2)
		return -EINVAL;
	if (!(b = malloc(n / 2 + 1)))
		return -ENOMEM;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(b);
			return -EINVAL;
		}
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	*bytes = b;
	*len = n / 2;
	return 0;
}

/* ---- output ---- */

/* A growing text. */
struct text {
	char *s;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3)))
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len)
			break;
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *s = realloc(t->s, cap);
		if (!s) {
			t->failed = true;
			return;
		}
		t->s = s;
		t->cap = cap;
	}
	t->len += (size_t)n;
}

static uint64_t le(const uint8_t *b, unsigned width)
{
	uint64_t v = 0;

	for (unsigned i = width; i-- > 0;)
		v = v << 8 | b[i];
	return v;
}

static void hex_lines(struct text *t, uint64_t addr, const uint8_t *buf, size_t len)
{
	for (size_t o = 0; o < len; o += 16) {
		size_t n = len - o < 16 ? len - o : 16;

		put(t, "0x%016" PRIx64 ":", addr + o);
		for (size_t i = 0; i < 16; i++) {
			if (i < n)
				put(t, " %02x", buf[o + i]);
			else
				put(t, "   ");
		}
		put(t, "  |");
		for (size_t i = 0; i < n; i++)
			put(t, "%c", buf[o + i] >= 0x20 && buf[o + i] < 0x7f ? buf[o + i] : '.');
		put(t, "|\n");
	}
}

static void value_lines(struct text *t, unsigned width, uint64_t addr, const uint8_t *buf,
			size_t len)
{
	if (len == width) {
		put(t, "0x%" PRIx64 "\n", le(buf, width));
		return;
	}
	for (size_t o = 0; o + width <= len; o += 16) {
		put(t, "0x%016" PRIx64 ":", addr + o);
		for (size_t i = 0; i < 16 && o + i + width <= len; i += width)
			put(t, " 0x%" PRIx64, le(buf + o + i, width));
		put(t, "\n");
	}
}

static void string_line(struct text *t, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len && buf[i]; i++) {
		uint8_t c = buf[i];

		if (c == '\n')
			put(t, "\\n");
		else if (c == '\t')
			put(t, "\\t");
		else if (c == '\\')
			put(t, "\\\\");
		else if (c >= 0x20 && c < 0x7f)
			put(t, "%c", c);
		else
			put(t, "\\x%02x", c);
	}
	put(t, "\n");
}

char *ks_inspect_format_bytes(enum ks_inspect_format f, uint64_t addr, const uint8_t *buf,
			      size_t len)
{
	struct text t = { 0 };

	put(&t, "%s", "");
	switch (f) {
	case KS_INSPECT_HEX:
		hex_lines(&t, addr, buf, len);
		break;
	case KS_INSPECT_STR:
		string_line(&t, buf, len);
		break;
	case KS_INSPECT_KT:
		break;
	default:
		value_lines(&t, ks_inspect_format_width(f), addr, buf, len);
		break;
	}
	if (t.failed) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

int ks_inspect_symbolize(const struct ks_symtab *t, uint64_t addr, char *buf, size_t size)
{
	const struct ks_sym *sym;
	uint64_t off;

	if (size)
		buf[0] = 0;
	if (!t || !(sym = ks_sym_at(t, addr, &off)) || (!sym->size && off > KS_INSPECT_SYM_REACH))
		return -ENOENT;
	if (ks_sym_format(t, addr, buf, size) < 0) {
		if (size)
			buf[0] = 0;
		return -ENOENT;
	}
	return 0;
}

/* ---- HMP ---- */

/* The start of vCPU cpu's section in "info registers -a" text, or NULL. */
static const char *cpu_section(const char *text, unsigned cpu, const char **end)
{
	char head[24];
	size_t n = (size_t)snprintf(head, sizeof(head), "CPU#%u", cpu);

	for (const char *p = strstr(text, head); p; p = strstr(p + 1, head)) {
		if ((p != text && p[-1] != '\n') || (p[n] != '\n' && p[n] != '\r' && p[n]))
			continue;
		const char *next = strstr(p + n, "\nCPU#");
		*end = next ? next : p + strlen(p);
		return p;
	}
	return NULL;
}

int ks_inspect_hmp_cpu(const char *text, unsigned cpu, uint64_t *cr3, bool *la57)
{
	const char *end, *p = cpu_section(text, cpu, &end);
	char *section;
	int rc;

	if (!p)
		return -ENOENT;
	if (!(section = strndup(p, (size_t)(end - p))))
		return -ENOMEM;
	rc = ks_vtop_regs_from_hmp(section, cr3, la57);
	free(section);
	return rc;
}

unsigned ks_inspect_hmp_cpu_count(const char *text)
{
	unsigned n = 0;
	const char *end;

	while (cpu_section(text, n, &end))
		n++;
	return n;
}

char *ks_inspect_size_format(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes && !(bytes & 1023)) {
		bytes >>= 10;
		u++;
	}
	snprintf(buf, size, "%" PRIu64 " %s", bytes, units[u]);
	return buf;
}
