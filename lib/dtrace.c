/* dtrace.c: QEMU's -d int trace: lines cut apart, records turned into events, a file followed on a loop. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kscope/dtrace.h>

#define HOLD_LINES 64         /* lines a record waits for its tail: a whole record and
				 * dump of another vCPU may come first */
#define READ_CHUNK 65536u

struct ks_dtrace {
	char line[KS_DTRACE_LINE_MAX + 1];
	size_t len;
	bool overlong;            /* the current line reached the cap: its rest is dropped */
	int pending_hw;           /* vector of a "Servicing" line not matched yet, -1: none */
	bool held;                /* hold is a record waiting for its " CR2=..." tail */
	unsigned held_age;
	struct ks_event hold;
	bool tf_reported;         /* a triple fault came from check_exception */
	const struct ks_symtab *syms;
	struct ks_dtrace_stats st;
	ks_dtrace_cb cb;          /* of the feed in progress */
	void *data;
	int delivered;
};

/* Where other lines start; QEMU prints each of these with one write(). */
static const char *const line_starts[] = {
	"Servicing ", "check_exception ", "SMM: ", "CPU Reset", "Triple fault", "RAX=", "EAX=",
};

/* ---- events ---- */

static void deliver(struct ks_dtrace *t, struct ks_event *ev)
{
	if (ev->kind == KS_EV_INTERRUPT)
		t->st.interrupts++;
	else if (ev->kind == KS_EV_EXCEPTION)
		t->st.exceptions++;
	t->st.events++;
	t->delivered++;
	if (t->cb)
		t->cb(ev, t->data);
}

static void release_held(struct ks_dtrace *t)
{
	if (!t->held)
		return;
	t->held = false;
	deliver(t, &t->hold);
}

static void triple_fault(struct ks_dtrace *t)
{
	struct ks_event ev = { .vcpu = -1, .kind = KS_EV_VM, .ts_ns = ks_loop_now_ns() };

	snprintf(ev.vm.what, sizeof(ev.vm.what), "reset");
	snprintf(ev.vm.detail, sizeof(ev.vm.detail), "triple fault");
	t->st.triple_faults++;
	deliver(t, &ev);
}

/* Vectors for which the CPU pushes an error code. */
static bool pushes_error(unsigned v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

/* ---- record lines ---- */

static bool hex(const char *s, uint64_t *v)
{
	char *end;

	if (!isxdigit((unsigned char)*s))
		return false;
	*v = strtoull(s, &end, 16);
	return true;
}

/* What a record line says. */
struct record {
	bool have_v, have_pc, have_ip, tail;
	uint64_t v, e, i, cpl, ip, pc, cr2;
};

static void record_field(struct record *r, const char *tok)
{
	const char *colon;

	if (!strncmp(tok, "v=", 2))
		r->have_v = hex(tok + 2, &r->v);
	else if (!strncmp(tok, "e=", 2))
		hex(tok + 2, &r->e);
	else if (!strncmp(tok, "i=", 2))
		hex(tok + 2, &r->i);
	else if (!strncmp(tok, "cpl=", 4))
		hex(tok + 4, &r->cpl);
	else if (!strncmp(tok, "IP=", 3) && (colon = strchr(tok, ':')))
		r->have_ip = hex(colon + 1, &r->ip);
	else if (!strncmp(tok, "pc=", 3))
		r->have_pc = hex(tok + 3, &r->pc);
	else if (!strncmp(tok, "CR2=", 4))
		r->tail = hex(tok + 4, &r->cr2) || r->tail;
	else if (!strncmp(tok, "env->regs[R_EAX]=", 17))
		r->tail = true;
}

static void name_addr(const struct ks_symtab *syms, ks_gva_t addr, char *buf, size_t size)
{
	if (!syms || ks_sym_format(syms, addr, buf, size) < 0)
		buf[0] = 0;
}

static void fill_event(struct ks_dtrace *t, const struct record *r, bool hw, struct ks_event *ev)
{
	unsigned v = (unsigned)r->v;
	bool is_int = r->i != 0;

	*ev = (struct ks_event){ .vcpu = -1, .ts_ns = ks_loop_now_ns() };
	ev->kind = v >= 32 || hw || v == 2 ? KS_EV_INTERRUPT : KS_EV_EXCEPTION;
	ev->irq.vector = v;
	ev->irq.has_error = !hw && !is_int && pushes_error(v);
	ev->irq.error_code = ev->irq.has_error ? r->e : 0;
	ev->irq.cr2 = v == 14 && !hw && !is_int ? r->cr2 : 0;
	ev->irq.rip = r->have_pc ? r->pc : r->ip;
	ev->irq.from_user = r->cpl == 3;
	ev->pc = ev->irq.rip;
	/* The kernel's symbols say nothing about ring-3 code. */
	if (!ev->irq.from_user)
		name_addr(t->syms, ev->pc, ev->sym, sizeof(ev->sym));
	memcpy(ev->irq.rip_sym, ev->sym, sizeof(ev->irq.rip_sym));
}

/* "    N: v=.. e=.. i=. cpl=. IP=..:.. pc=.. SP=..:.. CR2=.. | env->regs[R_EAX]=.." */
static void record_line(struct ks_dtrace *t, char *s)
{
	struct record r = { 0 };
	struct ks_event ev;
	char *save = NULL;

	t->tf_reported = false;
	for (char *tok = strtok_r(strstr(s, ": v=") + 2, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		record_field(&r, tok);
	if (!r.have_v || r.v > 255 || (!r.have_pc && !r.have_ip)) {
		t->st.malformed++;
		return;
	}
	/* The announcement belongs to the next record of its vector that no instruction
	 * raised (i=0). */
	bool hw = !r.i && t->pending_hw == (int)r.v;
	if (hw)
		t->pending_hw = -1;
	fill_event(t, &r, hw, &ev);
	if (r.tail) {
		/* Complete: it goes out now, even ahead of a record still waiting for its tail
		 * (the trace orders vCPUs only roughly anyway). */
		deliver(t, &ev);
		return;
	}
	release_held(t);
	t->hold = ev;
	t->held = true;
	t->held_age = 0;
	t->st.held++;
}

/* " CR2=..." or " env->regs[R_EAX]=..." that another vCPU's line pushed out of its record. */
static void tail_line(struct ks_dtrace *t, const char *s)
{
	uint64_t cr2;
	bool pf = !strncmp(s, " CR2=", 5);

	if (!t->held || pf != (t->hold.irq.vector == 14)) {
		t->st.skipped++;
		return;
	}
	if (pf && hex(s + 5, &cr2) && t->hold.kind == KS_EV_EXCEPTION)
		t->hold.irq.cr2 = cr2;
	t->held = false;
	deliver(t, &t->hold);
}

/* ---- other lines ---- */

static bool is_record(const char *s)
{
	while (*s == ' ')
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s))
		s++;
	return !strncmp(s, ": v=", 4);
}

/* Register dumps: "RAX=...", "R8 =...", "ES =...", "GDT=     ...", "XMM00=...". */
static bool is_dump(const char *s)
{
	if (!isupper((unsigned char)*s))
		return false;
	while (isupper((unsigned char)*s) || isdigit((unsigned char)*s))
		s++;
	while (*s == ' ')
		s++;
	return *s == '=';
}

static void check_exception(struct ks_dtrace *t, const char *s)
{
	unsigned long old, new;

	t->st.check_exception++;
	if (sscanf(s, "check_exception old: %lx new %lx", &old, &new) == 2 && old == 8) {
		t->tf_reported = true;  /* QEMU resets the machine: nothing more from this CPU */
		triple_fault(t);
	}
}

static void hw_announce(struct ks_dtrace *t, const char *s)
{
	const char *eq = strstr(s, "INT=0x");
	uint64_t v;

	t->st.hw_announced++;
	if (eq && hex(eq + 6, &v) && v <= 255)
		t->pending_hw = (int)v;
}

/* One line, already cut apart from any other it was mixed with; NUL-terminated. */
static void piece(struct ks_dtrace *t, char *s, size_t n)
{
	t->st.lines++;
	if (t->held && ++t->held_age > HOLD_LINES)
		release_held(t);
	if (n == 0)
		t->st.skipped++;
	else if (is_record(s))
		record_line(t, s);
	else if (!strncmp(s, "Servicing hardware INT=", 23) ||
		 !strncmp(s, "Servicing virtual hardware INT=", 31))
		hw_announce(t, s);
	else if (!strncmp(s, "check_exception ", 16))
		check_exception(t, s);
	else if (!strncmp(s, "Triple fault", 12)) {
		if (!t->tf_reported)
			triple_fault(t);
		t->tf_reported = false;
	} else if (!strncmp(s, "SMM: ", 5))
		t->st.smm++;
	else if (!strncmp(s, "CPU Reset", 9)) {
		t->st.resets++;
		t->tf_reported = false;
	}
	else if (!strncmp(s, " CR2=", 5) || !strncmp(s, " env->regs[R_EAX]=", 18))
		tail_line(t, s);
	else if (is_dump(s))
		t->st.dump_lines++;
	else
		t->st.skipped++;
}

/* Where the first line that is not s's own starts inside s[0, n), or n. */
static size_t split_point(const char *s, size_t n)
{
	size_t best = n;

	for (size_t k = 0; n > 1 && k < sizeof(line_starts) / sizeof(*line_starts); k++) {
		const char *q = memmem(s + 1, n - 1, line_starts[k], strlen(line_starts[k]));
		if (q && (size_t)(q - s) < best)
			best = (size_t)(q - s);
	}
	for (const char *q = s; (q = memmem(q, n - (size_t)(q - s), ": v=", 4)); q += 4) {
		const char *b = q;
		while (b > s && isdigit((unsigned char)b[-1]))
			b--;
		if (b == q)
			continue;
		while (b > s && b[-1] == ' ')
			b--;
		if (b > s && (size_t)(b - s) < best)
			best = (size_t)(b - s);
		if (b > s || (size_t)(q - s) >= best)
			break;
	}
	return best;
}

static void end_line(struct ks_dtrace *t)
{
	char *s = t->line;
	size_t n = t->len;

	if (t->overlong)
		t->st.overlong++;
	s[n] = 0;
	do {
		size_t p = split_point(s, n);
		char c = s[p];
		s[p] = 0;
		piece(t, s, p);
		s[p] = c;
		s += p;
		n -= p;
	} while (n > 0);
	t->len = 0;
	t->overlong = false;
}

/* ---- the parser's API ---- */

struct ks_dtrace *ks_dtrace_new(void)
{
	struct ks_dtrace *t = calloc(1, sizeof(*t));

	if (t)
		t->pending_hw = -1;
	return t;
}

void ks_dtrace_free(struct ks_dtrace *t)
{
	free(t);
}

void ks_dtrace_set_symbols(struct ks_dtrace *t, const struct ks_symtab *syms)
{
	t->syms = syms;
}

int ks_dtrace_feed(struct ks_dtrace *t, const char *buf, size_t len, ks_dtrace_cb cb,
		   void *data)
{
	if (!t || (!buf && len))
		return -EINVAL;
	t->cb = cb;
	t->data = data;
	t->delivered = 0;
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t seg = nl ? (size_t)(nl - buf) : len;
		size_t room = KS_DTRACE_LINE_MAX - t->len;
		size_t take = seg < room ? seg : room;
		memcpy(t->line + t->len, buf, take);
		t->len += take;
		t->overlong |= take < seg;
		buf += seg + (nl != NULL);
		len -= seg + (nl != NULL);
		if (nl)
			end_line(t);
	}
	return t->delivered;
}

int ks_dtrace_finish(struct ks_dtrace *t, ks_dtrace_cb cb, void *data)
{
	if (!t)
		return -EINVAL;
	t->cb = cb;
	t->data = data;
	t->delivered = 0;
	if (t->len || t->overlong)
		end_line(t);
	release_held(t);
	return t->delivered;
}

void ks_dtrace_reset(struct ks_dtrace *t)
{
	const struct ks_symtab *syms = t->syms;

	memset(t, 0, sizeof(*t));
	t->syms = syms;
	t->pending_hw = -1;
}

void ks_dtrace_stats(const struct ks_dtrace *t, struct ks_dtrace_stats *st)
{
	*st = t->st;
}

/* ---- following a file ---- */

struct ks_dtrace_follow {
	struct ks_loop *loop;
	char *path;
	struct ks_dtrace *t;
	ks_dtrace_cb cb;
	void *data;
	int fd;                 /* -1 until the file exists */
	dev_t dev;
	ino_t ino;
	off_t off;
	int ifd, wd;            /* inotify and its watch on the file; -1 without */
	int64_t timer, more;    /* the periodic poll; a one-shot "read on" (0: none) */
	char *buf;
};

static int open_file(struct ks_dtrace_follow *f)
{
	struct stat st;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->off = 0;
	if (f->ifd >= 0) {
		if (f->wd >= 0)
			inotify_rm_watch(f->ifd, f->wd);
		f->wd = inotify_add_watch(f->ifd, f->path, IN_MODIFY);
	}
	return 0;
}

/* Reads up to limit bytes from the current offset into the parser. *more: the limit cut
 * the read short. Returns events delivered or -errno. */
static int read_some(struct ks_dtrace_follow *f, size_t limit, bool *more)
{
	size_t total = 0;
	int events = 0;

	*more = false;
	for (;;) {
		ssize_t n = pread(f->fd, f->buf, READ_CHUNK, f->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return events;
		f->off += n;
		total += (size_t)n;
		events += ks_dtrace_feed(f->t, f->buf, (size_t)n, f->cb, f->data);
		if (total >= limit) {
			*more = true;
			return events;
		}
	}
}

/* A new file at the path (QEMU started again): finish the old one, start on the new. */
static int check_file(struct ks_dtrace_follow *f)
{
	struct stat st;
	bool more;
	int events = 0;

	if (stat(f->path, &st) == 0 && (st.st_ino != f->ino || st.st_dev != f->dev)) {
		int rc = read_some(f, SIZE_MAX, &more);
		events += rc > 0 ? rc : 0;
		events += ks_dtrace_finish(f->t, f->cb, f->data);
		close(f->fd);
		f->fd = -1;
		ks_dtrace_reset(f->t);
		if ((rc = open_file(f)) < 0)
			return rc;
	} else if (fstat(f->fd, &st) == 0 && st.st_size < f->off) {
		ks_dtrace_reset(f->t);  /* truncated: a new trace in the same file */
		f->off = 0;
	}
	return events;
}

static void read_on(struct ks_loop *l, int64_t id, void *data);

int ks_dtrace_follow_poll(struct ks_dtrace_follow *f, int finish)
{
	int rc, events = 0;
	bool more;

	if (f->fd < 0 && (rc = open_file(f)) < 0)
		return rc;
	if ((rc = check_file(f)) < 0)
		return rc;
	events += rc;
	if ((rc = read_some(f, finish ? SIZE_MAX : KS_DTRACE_READ_MAX, &more)) < 0)
		return rc;
	events += rc;
	if (more && !f->more) {
		int64_t id = ks_loop_add_timer(f->loop, 0, 0, read_on, f);
		f->more = id > 0 ? id : 0;
	}
	if (finish)
		events += ks_dtrace_finish(f->t, f->cb, f->data);
	return events;
}

static void read_on(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_dtrace_follow *f = data;
	(void)l;
	(void)id;

	f->more = 0;
	ks_dtrace_follow_poll(f, 0);
}

/* Also lets go of a record still waiting for its tail after a whole period: the vCPU that
 * would have written it has gone quiet. */
static void tick(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_dtrace_follow *f = data;
	struct ks_dtrace *t = f->t;
	(void)l;
	(void)id;

	ks_dtrace_follow_poll(f, 0);
	if (t->held && ks_loop_now_ns() - t->hold.ts_ns >= KS_DTRACE_POLL_NS) {
		t->cb = f->cb;
		t->data = f->data;
		release_held(t);
	}
}

static void on_inotify(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_dtrace_follow *f = data;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	(void)l;
	(void)events;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ie = (const struct inotify_event *)p;
			if (ie->mask & IN_IGNORED)
				f->wd = -1;     /* the file is gone; the timer finds the next */
			p += sizeof(*ie) + ie->len;
		}
	}
	ks_dtrace_follow_poll(f, 0);
}

struct ks_dtrace_follow *ks_dtrace_follow(struct ks_loop *loop, const char *path,
					  ks_dtrace_cb cb, void *data, struct ks_error *err)
{
	struct ks_dtrace_follow *f = calloc(1, sizeof(*f));

	if (f)
		f->fd = f->wd = f->ifd = -1;
	if (!f || !(f->path = strdup(path)) || !(f->t = ks_dtrace_new()) ||
	    !(f->buf = malloc(READ_CHUNK))) {
		ks_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	f->loop = loop;
	f->cb = cb;
	f->data = data;
	/* Without inotify the periodic timer alone reads: slower, still complete. */
	f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f->ifd >= 0 && ks_loop_add_fd(loop, f->ifd, KS_LOOP_IN, on_inotify, f) < 0) {
		close(f->ifd);
		f->ifd = -1;
	}
	f->timer = ks_loop_add_timer(loop, KS_DTRACE_POLL_NS, KS_DTRACE_POLL_NS, tick, f);
	f->more = ks_loop_add_timer(loop, 0, 0, read_on, f);
	if (f->timer <= 0 || f->more <= 0) {
		ks_error_set(err, f->timer < 0 ? (int)f->timer : (int)f->more,
			     "dtrace %s: cannot arm a timer", path);
		f->timer = f->timer > 0 ? f->timer : 0;
		f->more = f->more > 0 ? f->more : 0;
		goto fail;
	}
	return f;
fail:
	ks_dtrace_follow_free(f);
	return NULL;
}

/* The offset just past the last newline before end, or 0 when there is none. */
static off_t after_last_line(int fd, off_t end, char *buf)
{
	while (end > 0) {
		off_t from = end > (off_t)READ_CHUNK ? end - (off_t)READ_CHUNK : 0;
		ssize_t n = pread(fd, buf, (size_t)(end - from), from);

		if (n <= 0)
			return 0;
		for (ssize_t i = n; i-- > 0;)
			if (buf[i] == '\n')
				return from + i + 1;
		end = from;
	}
	return 0;
}

int ks_dtrace_follow_skip(struct ks_dtrace_follow *f)
{
	struct stat st;
	int rc;

	if (f->fd < 0 && (rc = open_file(f)) < 0)
		return rc == -ENOENT ? 0 : rc;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	f->off = after_last_line(f->fd, st.st_size, f->buf);
	ks_dtrace_reset(f->t);
	return 0;
}

struct ks_dtrace *ks_dtrace_follow_parser(struct ks_dtrace_follow *f)
{
	return f->t;
}

void ks_dtrace_follow_free(struct ks_dtrace_follow *f)
{
	if (!f)
		return;
	if (f->more)
		ks_loop_del_timer(f->loop, f->more);
	if (f->timer)
		ks_loop_del_timer(f->loop, f->timer);
	if (f->ifd >= 0) {
		ks_loop_del_fd(f->loop, f->ifd);
		close(f->ifd);
	}
	if (f->fd >= 0)
		close(f->fd);
	ks_dtrace_free(f->t);
	free(f->buf);
	free(f->path);
	free(f);
}
