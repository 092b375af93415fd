/* event.c: names of event kinds and x86 vectors, and events as readable lines and as JSON. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <kscope/event.h>
#include <kscope/kt_abi.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *const kind_names[KS_EV_KIND_COUNT] = {
	[KS_EV_MAGIC] = "magic",
	[KS_EV_INTERRUPT] = "interrupt",
	[KS_EV_EXCEPTION] = "exception",
	[KS_EV_SYSCALL] = "syscall",
	[KS_EV_SYSRET] = "sysret",
	[KS_EV_TEST] = "test",
	[KS_EV_VM] = "vm",
	[KS_EV_SERIAL] = "serial",
	[KS_EV_BREAKPOINT] = "breakpoint",
	[KS_EV_WATCHPOINT] = "watchpoint",
};

/* The Intel SDM's mnemonics; vectors 9 (coprocessor segment overrun, gone since the 486),
 * 15 and 22-27 are reserved and have none. */
static const char *const vector_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "", "#TS", "#NP", "#SS", "#GP", "#PF", "",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "", "",
	"", "", "", "", "#HV", "#VC", "#SX", "",
};

const char *ks_event_kind_name(enum ks_event_kind kind)
{
	if ((unsigned)kind >= KS_EV_KIND_COUNT)
		return "invalid";
	return kind_names[kind];
}

int ks_event_kind_by_name(const char *name)
{
	for (int k = 0; name && k < KS_EV_KIND_COUNT; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return k;
	return -1;
}

const char *ks_event_vector_name(unsigned vector)
{
	return vector < ARRAY_SIZE(vector_names) ? vector_names[vector] : "";
}

const char *ks_event_test_status_name(const struct ks_event *ev)
{
	static const char *const names[] = {
		[KT_ST_NONE] = "none", [KT_ST_RUNNING] = "running", [KT_ST_PASS] = "pass",
		[KT_ST_FAIL] = "fail", [KT_ST_SKIP] = "skip", [KT_ST_FILTERED] = "filtered",
	};
	uint32_t st = ev->test.status;

	if (ev->kind != KS_EV_TEST)
		return "";
	if (ev->test.phase == KS_EV_TEST_END)
		return st == KT_ST_PASS || st == KT_ST_FAIL || st == KT_ST_SKIP ? names[st] : "crash";
	return st < ARRAY_SIZE(names) ? names[st] : "unknown";
}

/* The name kt_abi.h gives a magic id, or NULL for the kernel's own ids. */
static const char *magic_name(uint64_t id)
{
	switch (id) {
	case KT_MAGIC_BOOT: return "boot";
	case KT_MAGIC_READY: return "ready";
	case KT_MAGIC_SUITE_START: return "suite_start";
	case KT_MAGIC_SUITE_END: return "suite_end";
	case KT_MAGIC_CASE_START: return "case_start";
	case KT_MAGIC_CASE_END: return "case_end";
	case KT_MAGIC_DONE: return "done";
	case KT_MAGIC_PANIC: return "panic";
	default: return NULL;
	}
}

/* ---- readable lines ---- */

/* A line being written with snprintf rules: len counts what was wanted, buf stays
 * NUL-terminated. */
struct line {
	char *buf;
	size_t size, len;
};

__attribute__((format(printf, 2, 3)))
static void put(struct line *l, const char *fmt, ...)
{
	size_t room = l->len < l->size ? l->size - l->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? l->buf + l->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n;
}

/* s (at most max bytes) with backslashes and control bytes escaped, so that a line stays one
 * line and a terminal shows what the guest sent rather than acting on it. */
static void put_escaped(struct line *l, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\')
			put(l, "\\\\");
		else if (c == '\t')
			put(l, "\\t");
		else if (c == '\r')
			put(l, "\\r");
		else if (c == '\n')
			put(l, "\\n");
		else if (c < 0x20 || c == 0x7f)
			put(l, "\\x%02x", c);
		else
			put(l, "%c", c);
	}
}

#define PUT_STR(l, field) put_escaped((l), (field), sizeof(field))

/* " <sym>" when the symbol is known. */
static void put_sym(struct line *l, const char *sym, size_t max)
{
	if (!sym[0])
		return;
	put(l, " <");
	put_escaped(l, sym, max);
	put(l, ">");
}

/* " name=0x... <sym>", or nothing when neither address nor symbol is known. */
static void put_addr(struct line *l, const char *name, ks_gva_t addr, const char *sym,
		     size_t max)
{
	if (!addr && !sym[0])
		return;
	put(l, " %s=0x%" PRIx64, name, addr);
	put_sym(l, sym, max);
}

static void put_test_name(struct line *l, const struct ks_event *ev)
{
	if (ev->test.suite[0])
		PUT_STR(l, ev->test.suite);
	else
		put(l, "#%d", ev->test.suite_index);
	put(l, ".");
	if (ev->test.name[0])
		PUT_STR(l, ev->test.name);
	else
		put(l, "#%d", ev->test.case_index);
}

static void format_irq(struct line *l, const struct ks_event *ev)
{
	const char *name = ks_event_vector_name(ev->irq.vector);

	put(l, "%u", ev->irq.vector);
	if (name[0])
		put(l, " %s", name);
	if (ev->irq.has_error)
		put(l, " err=0x%" PRIx64, ev->irq.error_code);
	if (ev->kind == KS_EV_EXCEPTION && ev->irq.vector == 14)
		put(l, " cr2=0x%" PRIx64, ev->irq.cr2);
	put_addr(l, "rip", ev->irq.rip, ev->irq.rip_sym, sizeof(ev->irq.rip_sym));
	if (ev->irq.from_user)
		put(l, " user");
}

static void format_sys(struct line *l, const struct ks_event *ev)
{
	if (ev->kind == KS_EV_SYSCALL) {
		put(l, "nr=%" PRIu64 " args=(", ev->sys.nr);
		for (size_t i = 0; i < ARRAY_SIZE(ev->sys.args); i++)
			put(l, "%s0x%" PRIx64, i ? "," : "", ev->sys.args[i]);
		put(l, ")");
		return;
	}
	if (ev->sys.has_nr)
		put(l, "nr=%" PRIu64 " ", ev->sys.nr);
	put(l, "ret=0x%" PRIx64, ev->sys.ret);
	/* Linux-style kernels return -errno in this range; spell it out. */
	if ((int64_t)ev->sys.ret < 0 && (int64_t)ev->sys.ret >= -4095)
		put(l, " (%" PRId64 ")", (int64_t)ev->sys.ret);
	put_addr(l, "rip", ev->sys.user_rip, "", 1);
}

static void format_bp(struct line *l, const struct ks_event *ev)
{
	if (ev->kind == KS_EV_WATCHPOINT) {
		PUT_STR(l, ev->bp.what);
		put(l, " ");
	}
	put(l, "0x%" PRIx64, ev->bp.addr);
	if (ev->bp.addr_sym[0])
		put_sym(l, ev->bp.addr_sym, sizeof(ev->bp.addr_sym));
	else if (ev->kind == KS_EV_BREAKPOINT && ev->pc == ev->bp.addr)
		put_sym(l, ev->sym, sizeof(ev->sym));
	if (ev->kind == KS_EV_WATCHPOINT)
		put_addr(l, "pc", ev->pc, ev->sym, sizeof(ev->sym));
}

static void format_fields(struct line *l, const struct ks_event *ev)
{
	const char *name;

	switch (ev->kind) {
	case KS_EV_MAGIC:
		put(l, "id=0x%" PRIx64, ev->magic.id);
		if ((name = magic_name(ev->magic.id)))
			put(l, " %s", name);
		put(l, " a0=0x%" PRIx64 " a1=0x%" PRIx64, ev->magic.a0, ev->magic.a1);
		if (ev->sym[0])
			put_sym(l, ev->sym, sizeof(ev->sym));
		else
			put_addr(l, "pc", ev->pc, "", 1);
		break;
	case KS_EV_INTERRUPT:
	case KS_EV_EXCEPTION:
		format_irq(l, ev);
		break;
	case KS_EV_SYSCALL:
	case KS_EV_SYSRET:
		format_sys(l, ev);
		break;
	case KS_EV_TEST:
		put(l, "%s ", ev->test.phase == KS_EV_TEST_START ? "start" : "end");
		put_test_name(l, ev);
		if (ev->test.phase == KS_EV_TEST_END)
			put(l, " %s", ks_event_test_status_name(ev));
		break;
	case KS_EV_VM:
		PUT_STR(l, ev->vm.what);
		if (ev->vm.detail[0]) {
			put(l, " ");
			PUT_STR(l, ev->vm.detail);
		}
		break;
	case KS_EV_SERIAL:
		put(l, "com%u: ", ev->serial.port + 1);
		PUT_STR(l, ev->serial.text);
		break;
	case KS_EV_BREAKPOINT:
	case KS_EV_WATCHPOINT:
		format_bp(l, ev);
		break;
	default:
		break;
	}
}

int ks_event_format(const struct ks_event *ev, char *buf, size_t size)
{
	struct line l = { .buf = buf, .size = size };
	char cpu[16] = "-";

	if (size)
		buf[0] = '\0';
	if (ev->vcpu >= 0)
		snprintf(cpu, sizeof(cpu), "cpu%d", ev->vcpu);
	/* Integer seconds and microseconds: a double would round the last digit. */
	put(&l, "%6" PRIu64 " %3" PRIu64 ".%06" PRIu64 " %-5s %-10s ", ev->seq,
	    ev->ts_ns / 1000000000u, ev->ts_ns % 1000000000u / 1000u, cpu,
	    ks_event_kind_name(ev->kind));
	format_fields(&l, ev);
	return l.len > INT_MAX ? INT_MAX : (int)l.len;
}

/* ---- JSON ---- */

/* The length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and values beyond U+10FFFF are not UTF-8. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* A JSON string of s (at most max bytes); jansson refuses bytes that are not UTF-8, and the
 * guest may send any. */
static json_t *jstr(const char *s, size_t max)
{
	size_t n = strnlen(s, max), o = 0;
	char fixed[3 * KS_EVENT_TEXT + 4];
	json_t *j = json_stringn(s, n);

	if (j || n > KS_EVENT_TEXT)
		return j;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq((const unsigned char *)s + i, n - i);
		if (k) {
			memcpy(fixed + o, s + i, k);
			o += k, i += k;
		} else {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3, i++;
		}
	}
	return json_stringn(fixed, o);
}

#define JSTR(field) jstr((field), sizeof(field))

/* s as a string, or null when empty (an unknown symbol). */
static json_t *jstr_or_null(const char *s, size_t max)
{
	return s[0] ? jstr(s, max) : json_null();
}

static json_t *jhex(uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "0x%" PRIx64, v);
	return json_string(b);
}

/* Sets o[key] = v, taking v; remembers any failure (v NULL from an allocation, or the set)
 * in *ok so that callers check once. */
static void set(json_t *o, const char *key, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		*ok = false;
}

static void json_irq(json_t *o, const struct ks_event *ev, bool *ok)
{
	const char *name = ks_event_vector_name(ev->irq.vector);
	bool pf = ev->kind == KS_EV_EXCEPTION && ev->irq.vector == 14;

	set(o, "vector", json_integer(ev->irq.vector), ok);
	set(o, "vector_name", name[0] ? json_string(name) : json_null(), ok);
	set(o, "error_code", ev->irq.has_error ? jhex(ev->irq.error_code) : json_null(), ok);
	set(o, "cr2", pf ? jhex(ev->irq.cr2) : json_null(), ok);
	set(o, "rip", jhex(ev->irq.rip), ok);
	set(o, "rip_sym", jstr_or_null(ev->irq.rip_sym, sizeof(ev->irq.rip_sym)), ok);
	set(o, "user", json_boolean(ev->irq.from_user), ok);
}

static void json_sys(json_t *o, const struct ks_event *ev, bool *ok)
{
	/* As a signed number: a syscall(-1) reads as -1, not as 2^64 - 1. */
	json_t *nr = json_integer((json_int_t)ev->sys.nr);

	if (ev->kind == KS_EV_SYSCALL) {
		json_t *args = json_array();
		for (size_t i = 0; args && i < ARRAY_SIZE(ev->sys.args); i++)
			if (json_array_append_new(args, jhex(ev->sys.args[i])) < 0)
				*ok = false;
		set(o, "nr", nr, ok);
		set(o, "args", args, ok);
	} else {
		if (!ev->sys.has_nr) {
			json_decref(nr);
			nr = json_null();
		}
		set(o, "nr", nr, ok);
		set(o, "ret", jhex(ev->sys.ret), ok);
	}
	set(o, "user_rip", jhex(ev->sys.user_rip), ok);
}

static void json_test(json_t *o, const struct ks_event *ev, bool *ok)
{
	set(o, "phase", json_string(ev->test.phase == KS_EV_TEST_START ? "start" : "end"), ok);
	set(o, "suite", JSTR(ev->test.suite), ok);
	set(o, "case", JSTR(ev->test.name), ok);
	set(o, "suite_index", json_integer(ev->test.suite_index), ok);
	set(o, "case_index", json_integer(ev->test.case_index), ok);
	set(o, "status", json_string(ks_event_test_status_name(ev)), ok);
}

static void json_fields(json_t *o, const struct ks_event *ev, bool *ok)
{
	switch (ev->kind) {
	case KS_EV_MAGIC:
		set(o, "id", jhex(ev->magic.id), ok);
		set(o, "a0", jhex(ev->magic.a0), ok);
		set(o, "a1", jhex(ev->magic.a1), ok);
		break;
	case KS_EV_INTERRUPT:
	case KS_EV_EXCEPTION:
		json_irq(o, ev, ok);
		break;
	case KS_EV_SYSCALL:
	case KS_EV_SYSRET:
		json_sys(o, ev, ok);
		break;
	case KS_EV_TEST:
		json_test(o, ev, ok);
		break;
	case KS_EV_VM:
		set(o, "what", JSTR(ev->vm.what), ok);
		set(o, "detail", JSTR(ev->vm.detail), ok);
		break;
	case KS_EV_SERIAL:
		set(o, "port", json_integer(ev->serial.port), ok);
		set(o, "text", JSTR(ev->serial.text), ok);
		break;
	case KS_EV_BREAKPOINT:
	case KS_EV_WATCHPOINT:
		set(o, "addr", jhex(ev->bp.addr), ok);
		set(o, "addr_sym", jstr_or_null(ev->bp.addr_sym, sizeof(ev->bp.addr_sym)), ok);
		set(o, "access", JSTR(ev->bp.what), ok);
		break;
	default:
		break;
	}
}

json_t *ks_event_to_json(const struct ks_event *ev)
{
	json_t *o = json_object();
	bool ok = o != NULL;

	if (!o)
		goto out;
	set(o, "seq", json_integer((json_int_t)ev->seq), &ok);
	set(o, "ts_ns", json_integer((json_int_t)ev->ts_ns), &ok);
	set(o, "vcpu", ev->vcpu >= 0 ? json_integer(ev->vcpu) : json_null(), &ok);
	set(o, "kind", json_string(ks_event_kind_name(ev->kind)), &ok);
	set(o, "pc", ev->pc ? jhex(ev->pc) : json_null(), &ok);
	set(o, "sym", jstr_or_null(ev->sym, sizeof(ev->sym)), &ok);
	json_fields(o, ev, &ok);
out:
	if (!ok) {
		json_decref(o);
		o = NULL;
	}
	return o;
}
