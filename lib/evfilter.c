/* evfilter.c: parsing and matching event filters (grammar in docs/events.md), and rule sets. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/evfilter.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KIND_ANY KS_EV_KIND_COUNT

/* Test selections; the first two are phases, the rest end statuses. */
static const char *const test_words[] = { "start", "end", "pass", "fail", "skip", "crash" };
enum { T_START = 1, T_END = 2 };
static const char *const vm_words[] = { "stop", "resume", "reset", "shutdown", "panic" };
static const char *const action_names[] = { "none", "log", "pause", "dump", "stop" };

struct ks_evfilter {
	char *spec;
	enum ks_event_kind kind;   /* KIND_ANY for any */
	struct ks_evrange *ranges; /* none: every value */
	size_t nranges;
	uint64_t vectors[4];
	unsigned words;            /* test or vm: bit i for word i; 0 = every */
	char *glob;                /* test: over "suite.case"; NULL = every */
	int port;                  /* serial: -1 = every */
	char *re_src;              /* serial: NULL = every line */
	bool icase;
	regex_t re;
	char *expr;                /* break, watch: the target as written */
	char *name;                /* ... its symbol, NULL for a number */
	bool minus;                /* ... SYMBOL-OFF rather than SYMBOL+OFF */
	uint64_t off;
	char *canon;               /* ... as ks_sym_format() would print it; NULL if it cannot */
	bool resolved;
	ks_gva_t addr;
	unsigned len;
	enum ks_evaccess access;
};

/* One parse: text is what the user typed (quoted whole in messages); the spec is text[0..end),
 * a rule's "=ACTION" follows it. */
struct parser {
	const char *text;
	size_t end;
	struct ks_error *err;
	size_t col, len;           /* the bad part, for carets: 1-based column and length */
	struct ks_evfilter *f;
};

/* Records the bad part [at, at + len) and fills err; returns -EINVAL. */
__attribute__((format(printf, 4, 5)))
static int fail(struct parser *p, size_t at, size_t len, const char *fmt, ...)
{
	size_t tlen = strlen(p->text);
	char msg[140];
	va_list ap;

	p->col = at + 1;
	p->len = len ? len : 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!tlen)
		return ks_error_set(p->err, -EINVAL, "%s", msg);
	/* The quote is cut so that the column always fits in the message. */
	return ks_error_set(p->err, -EINVAL, "%.*s%s: %s (column %zu)",
			    (int)(tlen > 80 ? 77 : tlen), p->text, tlen > 80 ? "..." : "", msg, p->col);
}

static int oom(struct parser *p)
{
	p->col = p->len = 0;
	return ks_error_set(p->err, -ENOMEM, "out of memory");
}

/* A number in decimal or 0x hex filling all of s[0..n): no sign, blanks or octal. */
static int parse_num(const char *s, size_t n, uint64_t *v)
{
	bool hex = n > 2 && s[0] == '0' && tolower(s[1]) == 'x';
	char buf[32];

	if (!n || n >= sizeof(buf))
		return -EINVAL;
	for (size_t i = hex ? 2 : 0; i < n; i++)
		if (!(hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i])))
			return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*v = strtoull(buf, NULL, hex ? 16 : 10);
	return errno ? -ERANGE : 0;
}

/* The vector named s[0..n) ("#PF", "pf", "NMI"), or -1. */
static int vector_by_name(const char *s, size_t n)
{
	if (n && s[0] == '#')
		s++, n--;
	for (unsigned v = 0; n && v < 32; v++) {
		const char *name = ks_event_vector_name(v);
		if (name[0] == '#')
			name++;
		if (strlen(name) == n && strncasecmp(name, s, n) == 0)
			return (int)v;
	}
	return -1;
}

/* ---- numbers and sets ---- */

/* What a kind's numbers are called and how far they go. */
struct numkind {
	const char *label;
	uint64_t max;
	bool names;  /* vector names are allowed */
};

static int parse_value(struct parser *p, size_t a, size_t b, const struct numkind *k,
		       uint64_t *v)
{
	const char *s = p->text + a;
	int vec;

	if (a == b)
		return fail(p, a, 0, "missing %s", k->label);
	if (parse_num(s, b - a, v) == 0) {
		if (*v <= k->max)
			return 0;
		return fail(p, a, b - a, "%s '%.*s' not in 0-%" PRIu64, k->label, (int)(b - a), s,
			    k->max);
	}
	if (k->names && (vec = vector_by_name(s, b - a)) >= 0 && (uint64_t)vec <= k->max) {
		*v = (uint64_t)vec;
		return 0;
	}
	return fail(p, a, b - a, "bad %s '%.*s'", k->label, (int)(b - a), s);
}

static int add_range(struct parser *p, uint64_t lo, uint64_t hi)
{
	struct ks_evfilter *f = p->f;
	struct ks_evrange *r = realloc(f->ranges, (f->nranges + 1) * sizeof(*r));

	if (!r)
		return oom(p);
	f->ranges = r;
	r[f->nranges++] = (struct ks_evrange){ lo, hi };
	return 0;
}

/* SET = "*" | ITEM {"," ITEM}, ITEM = VALUE ["-" VALUE], over text[at..end). */
static int parse_set(struct parser *p, size_t at, size_t end, const struct numkind *k)
{
	const char *s = p->text;
	uint64_t lo, hi;
	int rc;

	if (end - at == 1 && s[at] == '*')
		return 0;
	for (;;) {
		size_t e = at, dash;
		while (e < end && s[e] != ',')
			e++;
		for (dash = at; dash < e && s[dash] != '-'; dash++)
			;
		if ((rc = parse_value(p, at, dash, k, &lo)) < 0)
			return rc;
		hi = lo;
		if (dash < e && (rc = parse_value(p, dash + 1, e, k, &hi)) < 0)
			return rc;
		if (lo > hi)
			return fail(p, at, e - at, "reversed range '%.*s'", (int)(e - at), s + at);
		if ((rc = add_range(p, lo, hi)) < 0)
			return rc;
		if (e == end)
			return 0;
		at = e + 1;
	}
}

/* A choice among words: what it is called, and the words as a message lists them. */
struct wordkind {
	const char *label, *hint;
	const char *const *words;
	size_t n;
};

static const struct wordkind test_kind = { "test event", "start, end, pass, fail, skip, crash",
					   test_words, ARRAY_SIZE(test_words) };
static const struct wordkind vm_kind = { "vm event", "stop, resume, reset, shutdown, panic",
					 vm_words, ARRAY_SIZE(vm_words) };

/* WORDS = "*" | WORD {"," WORD} over text[at..end), into a bit mask (0 = every). */
static int parse_words(struct parser *p, size_t at, size_t end, const struct wordkind *k,
		       unsigned *mask)
{
	const char *s = p->text;

	if (end - at == 1 && s[at] == '*')
		return 0;
	for (;;) {
		size_t e = at, i;
		while (e < end && s[e] != ',')
			e++;
		for (i = 0; i < k->n; i++)
			if (strlen(k->words[i]) == e - at && strncmp(k->words[i], s + at, e - at) == 0)
				break;
		if (e == at)
			return fail(p, at, 0, "missing %s", k->label);
		if (i == k->n)
			return fail(p, at, e - at, "unknown %s '%.*s': use %s or *", k->label,
				    (int)(e - at), s + at, k->hint);
		*mask |= 1u << i;
		if (e == end)
			return 0;
		at = e + 1;
	}
}

/* ---- kinds with more than numbers ---- */

/* The end of the field that starts at at: the next ':' or the end of the spec. */
static size_t field_end(const struct parser *p, size_t at)
{
	const char *c = memchr(p->text + at, ':', p->end - at);

	return c ? (size_t)(c - p->text) : p->end;
}

/* Whatever is left from at: nothing may follow there. */
static int unexpected(struct parser *p, size_t at)
{
	return fail(p, at, p->end - at, "unexpected '%.*s'", (int)(p->end - at), p->text + at);
}

/* test[:WORDS[:GLOB]] */
static int parse_test(struct parser *p, size_t at)
{
	size_t e = field_end(p, at);
	int rc = parse_words(p, at, e, &test_kind, &p->f->words);

	if (rc < 0 || e == p->end)
		return rc;
	if (e + 1 == p->end)
		return fail(p, e + 1, 0, "missing test name pattern");
	if (!(p->f->glob = strndup(p->text + e + 1, p->end - e - 1)))
		return oom(p);
	return 0;
}

/* serial[:PORT][:/REGEX/[i]]: the regex runs to the last '/', so it may hold ':' and '/'. */
static int parse_serial(struct parser *p, size_t at)
{
	struct ks_evfilter *f = p->f;
	const char *s = p->text;
	size_t close;
	uint64_t port;
	int rc;

	if (s[at] != '/') {
		size_t e = field_end(p, at);
		bool com = e - at > 3 && strncmp(s + at, "com", 3) == 0;
		if (parse_num(s + at + (com ? 3 : 0), e - at - (com ? 3 : 0), &port) < 0 ||
		    (com && port == 0) || port > INT_MAX)
			return fail(p, at, e - at, "bad port '%.*s'", (int)(e - at), s + at);
		f->port = (int)(com ? port - 1 : port);
		if (e == p->end)
			return 0;
		at = e + 1;
		if (at == p->end)
			return fail(p, at, 0, "missing regex");
		if (s[at] != '/')
			return fail(p, at, p->end - at, "bad regex '%.*s': write /REGEX/",
				    (int)(p->end - at), s + at);
	}
	for (close = p->end - 1; close > at && s[close] != '/'; close--)
		;
	if (close == at)
		return fail(p, at, p->end - at, "unterminated regex '%.*s'", (int)(p->end - at),
			    s + at);
	if (close == at + 1)
		return fail(p, at, 2, "empty regex");
	if (close + 1 < p->end && !(close + 2 == p->end && s[close + 1] == 'i'))
		return unexpected(p, close + 1);
	f->icase = close + 1 < p->end;
	if (!(f->re_src = strndup(s + at + 1, close - at - 1)))
		return oom(p);
	rc = regcomp(&f->re, f->re_src, REG_EXTENDED | REG_NOSUB | (f->icase ? REG_ICASE : 0));
	if (rc) {
		char why[64];
		regerror(rc, &f->re, why, sizeof(why));
		/* A failed regcomp() leaves nothing to regfree(); re_src says whether re is live. */
		free(f->re_src);
		f->re_src = NULL;
		if (rc == REG_ESPACE)
			return oom(p);
		return fail(p, at + 1, close - at - 1, "bad regex '%.*s': %s", (int)(close - at - 1),
			    s + at + 1, why);
	}
	return 0;
}

static bool is_sym_char(int c, bool first)
{
	return isalpha(c) || c == '_' || c == '.' || c == '$' || (!first && isdigit(c));
}

/* The symbolic form SYMBOL[+-OFF] at text[at..e). */
static int parse_symbolic(struct parser *p, size_t at, size_t e)
{
	struct ks_evfilter *f = p->f;
	const char *s = p->text;
	size_t n = at, o;

	while (n < e && s[n] != '+' && s[n] != '-')
		n++;
	for (size_t i = at; i < n; i++)
		if (!is_sym_char((unsigned char)s[i], i == at))
			return fail(p, at, n - at, "bad symbol '%.*s'", (int)(n - at), s + at);
	if (n < e) {
		/* Offsets are hex, 0x optional, as kscope prints them and ks_sym_parse() reads. */
		o = n + 1 + (e - n > 2 && s[n + 1] == '0' && tolower(s[n + 2]) == 'x' ? 2 : 0);
		if (o == e)
			return fail(p, n + 1, 0, "missing offset");
		for (size_t i = o; i < e; i++)
			if (!isxdigit((unsigned char)s[i]) || i - o >= 16)
				return fail(p, n + 1, e - n - 1, "bad offset '%.*s'", (int)(e - n - 1),
					    s + n + 1);
		f->off = strtoull(s + o, NULL, 16);
		f->minus = s[n] == '-';
	}
	if (!(f->name = strndup(s + at, n - at)))
		return oom(p);
	if (f->off == 0)
		f->canon = strdup(f->name);
	else if (!f->minus && asprintf(&f->canon, "%s+0x%" PRIx64, f->name, f->off) < 0)
		f->canon = NULL;
	if ((f->off == 0 || !f->minus) && !f->canon)
		return oom(p);
	return 0;
}

/* TARGET = 0xADDR | SYMBOL[+-OFF], at text[at..e). */
static int parse_target(struct parser *p, size_t at, size_t e)
{
	struct ks_evfilter *f = p->f;
	const char *s = p->text;
	int rc;

	if (at == e)
		return fail(p, at, 0, "missing target");
	if (!(f->expr = strndup(s + at, e - at)))
		return oom(p);
	if (!isdigit((unsigned char)s[at]))
		return parse_symbolic(p, at, e);
	/* Only 0x numbers: a bare "1000" would be hex to ks_sym_parse() and decimal elsewhere. */
	rc = e - at > 2 && tolower(s[at + 1]) == 'x' ? parse_num(s + at, e - at, &f->addr)
						       : -EINVAL;
	if (rc < 0)
		return fail(p, at, e - at, "bad address '%.*s': write 0x and hex digits",
			    (int)(e - at), s + at);
	f->resolved = true;
	return 0;
}

/* ACCESS at text[at..e): w, r or rw. */
static int parse_access(struct parser *p, size_t at, size_t e, bool first)
{
	static const char *const acc[] = { "w", "r", "rw" };

	if (at == e)
		return fail(p, at, 0, "missing %s", first ? "length or access" : "access");
	for (size_t i = 0; i < ARRAY_SIZE(acc); i++) {
		if (strlen(acc[i]) == e - at && strncmp(acc[i], p->text + at, e - at) == 0) {
			p->f->access = (enum ks_evaccess)(i + 1);
			return 0;
		}
	}
	return fail(p, at, e - at, "bad access '%.*s': use w, r or rw", (int)(e - at),
		    p->text + at);
}

/* watch:TARGET[:LEN][:ACCESS] */
static int parse_watch(struct parser *p, size_t at)
{
	const char *s = p->text;
	size_t e = field_end(p, at);
	int rc = parse_target(p, at, e);
	uint64_t len;

	p->f->access = KS_EVACC_WRITE;
	if (rc < 0 || e == p->end)
		return rc;
	at = e + 1;
	e = field_end(p, at);
	if (at < e && isdigit((unsigned char)s[at])) {
		if (parse_num(s + at, e - at, &len) < 0 || !len || len > 8 || (len & (len - 1)))
			return fail(p, at, e - at, "bad length '%.*s': use 1, 2, 4 or 8",
				    (int)(e - at), s + at);
		p->f->len = (unsigned)len;
		if (e == p->end)
			return 0;
		at = e + 1;
		e = field_end(p, at);
		rc = parse_access(p, at, e, false);
	} else {
		rc = parse_access(p, at, e, true);
	}
	return rc == 0 && e < p->end ? unexpected(p, e) : rc;
}

/* ---- the spec ---- */

/* The kind called s[0..n): an event kind's name, or break, watch, any or "*". */
static int kind_by_name(const char *s, size_t n)
{
	char name[16];

	if (n >= sizeof(name))
		return -1;
	memcpy(name, s, n);
	name[n] = '\0';
	if (!strcmp(name, "break") || !strcmp(name, "watch"))
		return name[0] == 'b' ? KS_EV_BREAKPOINT : KS_EV_WATCHPOINT;
	if (!strcmp(name, "any") || !strcmp(name, "*"))
		return KIND_ANY;
	return ks_event_kind_by_name(name);
}

/* Vectors as a bit set, for the monitor to arm the right IDT entries. */
static void fill_vectors(struct ks_evfilter *f)
{
	uint64_t max = f->kind == KS_EV_EXCEPTION ? 31 : 255;

	for (size_t i = 0; i < f->nranges || (i == 0 && !f->nranges); i++) {
		uint64_t lo = f->nranges ? f->ranges[i].lo : 0;
		uint64_t hi = f->nranges ? f->ranges[i].hi : max;
		for (uint64_t v = lo; v <= hi; v++)
			f->vectors[v / 64] |= 1ull << (v % 64);
	}
}

/* The kind's argument at text[at..end), after the ':'; it may be empty. */
static int parse_arg(struct parser *p, size_t at)
{
	static const struct numkind nk[] = {
		[KS_EV_MAGIC] = { "id", UINT64_MAX, false },
		[KS_EV_INTERRUPT] = { "vector", 255, true },
		[KS_EV_EXCEPTION] = { "vector", 31, true },
		[KS_EV_SYSCALL] = { "syscall number", UINT64_MAX, false },
		[KS_EV_SYSRET] = { "syscall number", UINT64_MAX, false },
	};
	enum ks_event_kind kind = p->f->kind;
	size_t e = field_end(p, at);
	int rc;

	switch ((int)kind) {
	case KS_EV_MAGIC: case KS_EV_INTERRUPT: case KS_EV_EXCEPTION:
	case KS_EV_SYSCALL: case KS_EV_SYSRET:
		rc = parse_set(p, at, e, &nk[kind]);
		break;
	case KS_EV_TEST:
		return parse_test(p, at);
	case KS_EV_VM:
		rc = parse_words(p, at, e, &vm_kind, &p->f->words);
		break;
	case KS_EV_SERIAL:
		if (at == p->end)
			return fail(p, at, 0, "missing port or regex");
		return parse_serial(p, at);
	case KS_EV_BREAKPOINT:
		rc = parse_target(p, at, e);
		break;
	case KS_EV_WATCHPOINT:
		return parse_watch(p, at);
	default:
		return unexpected(p, at - 1);
	}
	return rc == 0 && e < p->end ? unexpected(p, e) : rc;
}

/* Parses text[0..p->end) into p->f. */
static int parse_spec(struct parser *p)
{
	const char *s = p->text;
	size_t ke = field_end(p, 0);
	struct ks_evfilter *f;
	int kind, rc;

	if (p->end == 0)
		return fail(p, 0, 0, "empty filter spec");
	if (ke == 0)
		return fail(p, 0, 0, "missing event kind");
	if ((kind = kind_by_name(s, ke)) < 0)
		return fail(p, 0, ke, "unknown event kind '%.*s': use magic, interrupt, exception, "
			    "syscall, sysret, test, vm, serial, break, watch or any", (int)ke, s);
	if (!(p->f = f = calloc(1, sizeof(*f))) || !(f->spec = strndup(s, p->end)))
		return oom(p);
	f->kind = (enum ks_event_kind)kind;
	f->port = -1;
	f->len = f->kind == KS_EV_BREAKPOINT ? 1 : 8;
	rc = ke < p->end ? parse_arg(p, ke + 1) : 0;
	if (ke == p->end && (f->kind == KS_EV_BREAKPOINT || f->kind == KS_EV_WATCHPOINT))
		rc = fail(p, ke, 0, "missing target");
	if (rc == 0 && (f->kind == KS_EV_INTERRUPT || f->kind == KS_EV_EXCEPTION))
		fill_vectors(f);
	return rc;
}

/* Parses text as a filter spec or, with_action, as a rule SPEC[=ACTION] into *rule; p tells
 * where the bad part is when it fails. */
static int parse_text(const char *text, bool with_action, struct ks_evrule *rule,
		      struct parser *p, struct ks_error *err)
{
	size_t n, eq;
	int rc, action = KS_EVACT_LOG;

	if (!text)
		text = "";
	n = eq = strlen(text);
	*p = (struct parser){ .text = text, .end = n, .err = err };
	if (with_action) {
		const char *slash = strrchr(text, '/');
		const char *e = strrchr(slash ? slash : text, '=');
		if (e)
			p->end = eq = (size_t)(e - text);
	}
	rc = parse_spec(p);
	if (rc == 0 && eq < n) {
		const char *a = text + eq + 1;
		if (!*a)
			rc = fail(p, eq + 1, 0, "missing action");
		else if ((action = ks_evaction_by_name(a)) < 0)
			rc = fail(p, eq + 1, n - eq - 1,
				  "unknown action '%s': use log, pause, dump or stop", a);
	}
	if (rc < 0) {
		ks_evfilter_free(p->f);
		return rc;
	}
	rule->filter = p->f;
	rule->action = (enum ks_evaction)action;
	return 0;
}

struct ks_evfilter *ks_evfilter_parse(const char *spec, struct ks_error *err)
{
	struct ks_evrule rule;
	struct parser p;

	return parse_text(spec, false, &rule, &p, err) == 0 ? rule.filter : NULL;
}

void ks_evfilter_free(struct ks_evfilter *f)
{
	if (!f)
		return;
	if (f->re_src)
		regfree(&f->re);
	free(f->re_src);
	free(f->glob);
	free(f->expr);
	free(f->name);
	free(f->canon);
	free(f->ranges);
	free(f->spec);
	free(f);
}

int ks_evfilter_caret(const char *text, bool with_action, char *buf, size_t size)
{
	struct ks_evrule rule;
	struct parser p;
	int n;

	if (size)
		buf[0] = '\0';
	if (parse_text(text, with_action, &rule, &p, NULL) == 0) {
		ks_evfilter_free(rule.filter);
		return 0;
	}
	if (!p.col)
		return 0;
	n = snprintf(buf, size, "  %s\n  %*s", p.text, (int)(p.col - 1), "");
	for (size_t i = 0; n >= 0 && i < p.len && n < INT_MAX; i++, n++) {
		if ((size_t)n + 1 < size) {
			buf[n] = '^';
			buf[n + 1] = '\0';
		}
	}
	return n;
}

/* ---- matching ---- */

static bool match_test(const struct ks_evfilter *f, const struct ks_event *ev)
{
	char name[sizeof(ev->test.suite) + sizeof(ev->test.name) + 2];
	unsigned bits = T_START;

	if (ev->test.phase == KS_EV_TEST_END) {
		const char *status = ks_event_test_status_name(ev);
		bits = T_END;
		for (size_t i = 2; i < ARRAY_SIZE(test_words); i++)
			if (strcmp(status, test_words[i]) == 0)
				bits |= 1u << i;
	}
	if (f->words && !(f->words & bits))
		return false;
	if (!f->glob)
		return true;
	snprintf(name, sizeof(name), "%.*s.%.*s",
		 (int)strnlen(ev->test.suite, sizeof(ev->test.suite)), ev->test.suite,
		 (int)strnlen(ev->test.name, sizeof(ev->test.name)), ev->test.name);
	return fnmatch(f->glob, name, 0) == 0;
}

static bool match_vm(const struct ks_evfilter *f, const struct ks_event *ev)
{
	for (size_t i = 0; f->words && i < ARRAY_SIZE(vm_words); i++)
		if (strncmp(ev->vm.what, vm_words[i], sizeof(ev->vm.what)) == 0)
			return f->words & (1u << i);
	return !f->words;
}

static bool match_serial(const struct ks_evfilter *f, const struct ks_event *ev)
{
	char text[sizeof(ev->serial.text) + 1];

	if (f->port >= 0 && ev->serial.port != (unsigned)f->port)
		return false;
	if (!f->re_src)
		return true;
	/* regexec() wants a terminated string, and a careless producer may have filled all. */
	memcpy(text, ev->serial.text, sizeof(ev->serial.text));
	text[sizeof(ev->serial.text)] = '\0';
	return regexec(&f->re, text, 0, NULL, 0) == 0;
}

static bool match_target(const struct ks_evfilter *f, const struct ks_event *ev)
{
	const char *sym = ev->bp.addr_sym;

	if (ev->kind == KS_EV_WATCHPOINT) {
		/* "access" (or nothing said) may be either, so it meets any filter. */
		const char *w = ev->bp.what;
		size_t n = sizeof(ev->bp.what);
		unsigned acc = !strncmp(w, "write", n) ? KS_EVACC_WRITE :
			       !strncmp(w, "read", n) ? KS_EVACC_READ : KS_EVACC_RW;
		if (!(acc & f->access))
			return false;
	}
	if (f->resolved)
		return ev->bp.addr >= f->addr && ev->bp.addr - f->addr < f->len;
	if (!sym[0] && ev->kind == KS_EV_BREAKPOINT && ev->pc == ev->bp.addr)
		sym = ev->sym;
	return f->canon && strncmp(sym, f->canon, KS_EVENT_SYM) == 0;
}

bool ks_evfilter_match(const struct ks_evfilter *f, const struct ks_event *ev)
{
	if (f->kind == KIND_ANY)
		return true;
	if (ev->kind != f->kind)
		return false;
	switch (ev->kind) {
	case KS_EV_MAGIC:
		return ks_evfilter_has(f, ev->magic.id);
	case KS_EV_INTERRUPT:
	case KS_EV_EXCEPTION:
		return ev->irq.vector < 256 &&
		       (f->vectors[ev->irq.vector / 64] >> (ev->irq.vector % 64) & 1);
	case KS_EV_SYSCALL:
		return ks_evfilter_has(f, ev->sys.nr);
	case KS_EV_SYSRET:
		return !f->nranges || (ev->sys.has_nr && ks_evfilter_has(f, ev->sys.nr));
	case KS_EV_TEST:
		return match_test(f, ev);
	case KS_EV_VM:
		return match_vm(f, ev);
	case KS_EV_SERIAL:
		return match_serial(f, ev);
	case KS_EV_BREAKPOINT:
	case KS_EV_WATCHPOINT:
		return match_target(f, ev);
	default:
		return false;
	}
}

/* ---- accessors ---- */

const char *ks_evfilter_spec(const struct ks_evfilter *f)
{
	return f->spec;
}

enum ks_event_kind ks_evfilter_kind(const struct ks_evfilter *f)
{
	return f->kind;
}

size_t ks_evfilter_ranges(const struct ks_evfilter *f, const struct ks_evrange **ranges)
{
	if (ranges)
		*ranges = f->ranges;
	return f->nranges;
}

bool ks_evfilter_has(const struct ks_evfilter *f, uint64_t n)
{
	for (size_t i = 0; i < f->nranges; i++)
		if (n >= f->ranges[i].lo && n <= f->ranges[i].hi)
			return true;
	return f->nranges == 0;
}

void ks_evfilter_vectors(const struct ks_evfilter *f, uint64_t set[4])
{
	memcpy(set, f->vectors, sizeof(f->vectors));
}

int ks_evfilter_target(const struct ks_evfilter *f, struct ks_evtarget *t)
{
	if (f->kind != KS_EV_BREAKPOINT && f->kind != KS_EV_WATCHPOINT)
		return -ENOENT;
	*t = (struct ks_evtarget){ .expr = f->expr, .resolved = f->resolved, .addr = f->addr,
				   .len = f->len, .access = f->access };
	return 0;
}

int ks_evfilter_resolve(struct ks_evfilter *f, const struct ks_symtab *t,
			struct ks_error *err)
{
	const struct ks_sym *sym;

	if (!f->name)
		return 0;
	if (!t || !(sym = ks_sym_find(t, f->name)))
		return ks_error_set(err, -ENOENT, "%s: unknown symbol '%s'", f->spec, f->name);
	if (f->minus ? f->off > sym->addr : sym->addr + f->off < sym->addr)
		return ks_error_set(err, -ERANGE, "%s: '%s' is beyond 64 bits", f->spec, f->expr);
	f->addr = f->minus ? sym->addr - f->off : sym->addr + f->off;
	f->resolved = true;
	return 0;
}

const char *ks_evfilter_regex(const struct ks_evfilter *f, bool *icase)
{
	if (icase)
		*icase = f->icase;
	return f->re_src;
}

int ks_evfilter_serial_port(const struct ks_evfilter *f)
{
	return f->kind == KS_EV_SERIAL ? f->port : -1;
}

/* ---- rules (rule sets are in evfilter_rules.c) ---- */

const char *ks_evaction_name(enum ks_evaction action)
{
	return (unsigned)action < ARRAY_SIZE(action_names) ? action_names[action] : "invalid";
}

int ks_evaction_by_name(const char *name)
{
	for (size_t i = KS_EVACT_LOG; name && i < ARRAY_SIZE(action_names); i++)
		if (strcmp(name, action_names[i]) == 0)
			return (int)i;
	return -1;
}

int ks_evrule_parse(const char *text, struct ks_evrule *rule, struct ks_error *err)
{
	struct parser p;

	return parse_text(text, true, rule, &p, err);
}
