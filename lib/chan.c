/* chan.c: serial channels: reading, line splitting, timestamps, the ring, the log, callbacks, writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <kscope/chan.h>
#include <kscope/unixsock.h>

#include "chan_internal.h"

#define READ_CHUNK 16384
#define READS_PER_WAKEUP 16          /* so that a flooding guest cannot starve the loop */
#define PIPE_BYTES (1 << 20)         /* a pipe pair's buffer: what the guest may say unread */
#define LINE_MAX_LIMIT (1u << 20)

static int64_t wall_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t chan_remaining(uint64_t start, int64_t timeout_ns)
{
	int64_t spent = (int64_t)(ks_loop_now_ns() - start);

	if (timeout_ns < 0)
		return -1;
	return spent < timeout_ns ? timeout_ns - spent : 0;
}

static void rec_put(struct rec *r)
{
	if (r && --r->refs == 0)
		free(r);
}

/* ---- the log ---- */

static void log_failed(struct ks_chan *ch, int code)
{
	ch->st.log_error = code ? code : -EIO;
	fclose(ch->log);
	ch->log = NULL;
}

__attribute__((format(printf, 2, 3)))
static void log_note(struct ks_chan *ch, const char *fmt, ...)
{
	int64_t wall = wall_now_ns();
	time_t sec = (time_t)(wall / 1000000000);
	char when[64], zone[8];
	struct tm tm;
	va_list ap;

	if (!ch->log)
		return;
	localtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	fprintf(ch->log, "# kscope %s: %s.%06lld%s ", ch->name, when,
		(long long)(wall % 1000000000 / 1000), zone);
	va_start(ap, fmt);
	vfprintf(ch->log, fmt, ap);
	va_end(ap);
	fputc('\n', ch->log);
	if (fflush(ch->log) != 0)
		log_failed(ch, -errno);
}

int chan_format_line(FILE *f, const char *prefix, const struct ks_chan_line *l,
		     uint64_t origin)
{
	uint64_t rel = l->ts_ns > origin ? l->ts_ns - origin : 0;

	fprintf(f, "%s%s[%5llu.%06llu]%c", prefix ? prefix : "", prefix ? " " : "",
		(unsigned long long)(rel / 1000000000),
		(unsigned long long)(rel % 1000000000 / 1000),
		l->flags & KS_CHAN_PARTIAL ? '+' : ' ');
	fwrite(l->text, 1, l->len, f);
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}

/* ---- delivery ---- */

static void dispatch(struct ks_chan *ch, const struct rec *r)
{
	size_t n = ch->ncbs;

	/* By index, re-reading the array: a callback may add callbacks (and move it). */
	for (size_t i = 0; i < n && i < ch->ncbs; i++) {
		struct line_cb c = ch->cbs[i];

		if (c.cb)
			c.cb(ch, &r->line, c.data);
	}
}

static void compact_cbs(struct ks_chan *ch)
{
	size_t j = 0;

	for (size_t i = 0; i < ch->ncbs; i++)
		if (ch->cbs[i].cb)
			ch->cbs[j++] = ch->cbs[i];
	ch->ncbs = j;
}

/*
 * Hands queued lines to the log and the callbacks, then reports the close. A callback that
 * runs the loop may queue more lines: the outermost call delivers them, in order.
 */
static void deliver(struct ks_chan *ch)
{
	struct rec *r;

	if (ch->delivering)
		return;
	ch->delivering = true;
	while ((r = ch->q_head)) {
		ch->q_head = r->next;
		if (!ch->q_head)
			ch->q_tail = &ch->q_head;
		if (ch->log && chan_format_line(ch->log, NULL, &r->line, ch->st.open_ns) < 0)
			log_failed(ch, -EIO);
		if (!ch->quiet)
			dispatch(ch, r);
		rec_put(r);
	}
	if (ch->log && fflush(ch->log) != 0)
		log_failed(ch, -errno);
	if (ch->closed && !ch->close_notified) {
		ch->close_notified = true;
		log_note(ch, "closed: %s", ch->reason.msg);
		if (ch->close_cb && !ch->quiet)
			ch->close_cb(ch, &ch->reason, ch->close_data);
	}
	compact_cbs(ch);
	ch->delivering = false;
}

static void ring_push(struct ks_chan *ch, struct rec *r)
{
	size_t slot = (ch->ring_head + ch->ring_count) % ch->ring_cap;

	if (ch->ring_count == ch->ring_cap) {
		rec_put(ch->ring[ch->ring_head]);
		ch->ring_head = (ch->ring_head + 1) % ch->ring_cap;
		ch->ring_count--;
	}
	ch->ring[slot] = r;
	ch->ring_count++;
}

static void close_chan(struct ks_chan *ch, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Numbers a line and puts it in the ring and the delivery queue. */
static void emit(struct ks_chan *ch, const char *b, size_t len, unsigned flags, uint64_t ts,
		 int64_t wall)
{
	struct rec *r;

	if (ch->after_partial) {
		flags |= KS_CHAN_CONT;
		/* A newline right after a partial line only ends it. */
		if (len == 0 && !(flags & KS_CHAN_PARTIAL)) {
			ch->after_partial = false;
			return;
		}
	}
	r = malloc(sizeof(*r) + len + 1);
	if (!r) {
		close_chan(ch, -ENOMEM, "%s: out of memory for a line", ch->name);
		return;
	}
	ch->after_partial = flags & KS_CHAN_PARTIAL;
	if (len)
		memcpy(r->text, b, len);
	r->text[len] = '\0';
	r->refs = 2;
	r->next = NULL;
	r->line = (struct ks_chan_line){ .chan = ch->name, .text = r->text, .len = len,
		.ts_ns = ts, .wall_ns = wall, .lineno = ++ch->st.lines, .flags = flags };
	if (flags & KS_CHAN_PARTIAL)
		ch->st.partial++;
	ring_push(ch, r);
	*ch->q_tail = r;
	ch->q_tail = &r->next;
}

/* Emits the unfinished line: complete (its newline came) or partial. */
static void emit_pending(struct ks_chan *ch, unsigned flags)
{
	size_t len = ch->plen;

	if (!(flags & KS_CHAN_PARTIAL) && len && ch->pend[len - 1] == '\r')
		len--;
	ch->plen = 0;
	emit(ch, ch->pend, len, flags, ch->pts, ch->pwall);
}

static int append(struct ks_chan *ch, const char *p, size_t n)
{
	if (ch->pcap - ch->plen < n) {
		size_t cap = ch->pcap ? ch->pcap : 256;
		char *b;

		while (cap - ch->plen < n)
			cap *= 2;
		b = realloc(ch->pend, cap);
		if (!b)
			return -ENOMEM;
		ch->pend = b;
		ch->pcap = cap;
	}
	if (n)
		memcpy(ch->pend + ch->plen, p, n);
	ch->plen += n;
	return 0;
}

/* Cuts bytes read at time t into lines; what is left waits in pend. */
static void split(struct ks_chan *ch, const char *p, size_t n, uint64_t t, int64_t wall)
{
	while (n > 0 && !ch->closed) {
		size_t room = ch->plen < ch->line_max ? ch->line_max - ch->plen : 0;
		/* One byte past the room: a line exactly at the cap may still end properly. */
		const char *nl = memchr(p, '\n', n < room + 1 ? n : room + 1);
		size_t take;

		if (ch->plen == 0) {
			ch->pts = t;
			ch->pwall = wall;
		}
		if (!nl && room == 0) {
			emit_pending(ch, KS_CHAN_PARTIAL);
			continue;
		}
		take = nl ? (size_t)(nl - p) : n < room ? n : room;
		if (append(ch, p, take) < 0) {
			close_chan(ch, -ENOMEM, "%s: out of memory for input", ch->name);
			return;
		}
		p += take;
		n -= take;
		if (nl) {
			emit_pending(ch, 0);
			p++;
			n--;
		}
	}
}

/* ---- closing, reading, writing ---- */

static void close_chan(struct ks_chan *ch, int code, const char *fmt, ...)
{
	va_list ap;

	if (ch->closed)
		return;
	ch->closed = true;
	ch->reason.code = code;
	va_start(ap, fmt);
	vsnprintf(ch->reason.msg, sizeof(ch->reason.msg), fmt, ap);
	va_end(ap);
	if (ch->fd >= 0) {
		ks_loop_del_fd(ch->loop, ch->fd);
		close(ch->fd);
		ch->fd = -1;
	}
	if (ch->wfd >= 0) {
		if (ch->wfd_watched)
			ks_loop_del_fd(ch->loop, ch->wfd);
		close(ch->wfd);
		ch->wfd = -1;
	}
	if (ch->gap_timer)
		ks_loop_del_timer(ch->loop, ch->gap_timer);
	ch->gap_timer = 0;
	ch->lost_output = ch->wlen > 0;
	ch->wlen = 0;
	if (ch->timer)
		ks_loop_del_timer(ch->loop, ch->timer);
	ch->timer = 0;
	/* The guest may have died mid-line: keep what it said. */
	if (ch->plen)
		emit_pending(ch, KS_CHAN_PARTIAL);
}

static void on_timer(struct ks_loop *l, int64_t id, void *data);

static void arm_timer(struct ks_chan *ch, int64_t delay_ns)
{
	int64_t id = ks_loop_add_timer(ch->loop, (uint64_t)delay_ns, 0, on_timer, ch);

	/* Without a timer the line still comes out with the next bytes, the cap or the end. */
	ch->timer = id > 0 ? id : 0;
}

static void on_timer(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_chan *ch = data;
	int64_t idle;

	(void)l, (void)id;
	ch->timer = 0;
	if (ch->closed || ch->plen == 0)
		return;
	/* The timer is not moved on every read: it checks, on firing, how long it has been. */
	idle = (int64_t)(ks_loop_now_ns() - ch->last_byte_ns);
	if (idle < ch->partial_ns) {
		arm_timer(ch, ch->partial_ns - idle);
		return;
	}
	emit_pending(ch, KS_CHAN_PARTIAL);
	deliver(ch);
}

static void on_rested(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_chan *ch = data;

	(void)l, (void)id;
	ch->gap_timer = 0;
	if (!ch->closed && ks_loop_mod_fd(ch->loop, ch->fd, KS_LOOP_IN) == 0)
		ch->resting = false;
}

/*
 * A UART makes QEMU write the console one byte at a time, and an eager reader wakes for
 * nearly every byte: over a thousand wake-ups for a few KiB, which slow the guest by 10% or
 * more. A pipe pair's reading may therefore rest a while after each read (ks_chan_set_read_gap()),
 * so that the bytes pile up in the pipe (PIPE_BYTES of room: QEMU does not wait for the reader)
 * and the next read takes them all; their lines are stamped up to that much late. Not for sockets: one
 * holds only a few hundred one-byte writes, and the guest's UART would stall. The end of the
 * writer is still seen at once (epoll reports a hang-up whatever the interest).
 */
static void rest(struct ks_chan *ch)
{
	int64_t id;

	if (ch->wfd < 0 || !ch->gap_ns || ch->closed || ch->gap_timer)
		return;
	id = ks_loop_add_timer(ch->loop, (uint64_t)ch->gap_ns, 0, on_rested, ch);
	if (id <= 0)
		return;
	ch->gap_timer = id;
	if (ks_loop_mod_fd(ch->loop, ch->fd, 0) == 0)
		ch->resting = true;
}

static void read_input(struct ks_chan *ch)
{
	char buf[READ_CHUNK];
	bool got = false;

	for (int i = 0; i < READS_PER_WAKEUP && !ch->closed; i++) {
		ssize_t n = read(ch->fd, buf, sizeof(buf));
		uint64_t t;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			close_chan(ch, -ECONNRESET, "%s: read: %s", ch->name, strerror(errno));
			break;
		}
		if (n == 0) {
			close_chan(ch, -ECONNRESET, "%s: closed by peer", ch->name);
			break;
		}
		t = ks_loop_now_ns();
		got = true;
		ch->st.bytes_in += (uint64_t)n;
		ch->last_byte_ns = t;
		split(ch, buf, (size_t)n, t, wall_now_ns());
	}
	if (ch->plen && !ch->timer && !ch->closed)
		arm_timer(ch, ch->partial_ns);
	if (got)
		rest(ch);
	deliver(ch);
}

static ssize_t send_some(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	return n < 0 && errno == ENOTSOCK ? write(fd, buf, len) : n;
}

static void on_wfd(struct ks_loop *l, int fd, uint32_t events, void *data);

static void want_out(struct ks_chan *ch, bool on)
{
	if (ch->want_out == on)
		return;
	if (ch->wfd < 0) {
		if (ks_loop_mod_fd(ch->loop, ch->fd, KS_LOOP_IN | (on ? KS_LOOP_OUT : 0)) == 0)
			ch->want_out = on;
		return;
	}
	/* A pipe pair's write end is watched only while something waits to go. */
	if (on && ks_loop_add_fd(ch->loop, ch->wfd, KS_LOOP_OUT, on_wfd, ch) == 0)
		ch->wfd_watched = ch->want_out = true;
	else if (!on && ks_loop_del_fd(ch->loop, ch->wfd) == 0)
		ch->wfd_watched = ch->want_out = false;
}

/*
 * Sends what is queued. A failure closes the channel only from the loop (from_loop), so
 * that ks_chan_write() never runs callbacks; otherwise the loop retries and finds it.
 */
static void flush_output(struct ks_chan *ch, bool from_loop)
{
	while (!ch->closed && ch->wlen) {
		ssize_t n = send_some(ch->wfd >= 0 ? ch->wfd : ch->fd, ch->wbuf, ch->wlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && from_loop) {
			close_chan(ch, -ECONNRESET, "%s: write: %s", ch->name, strerror(errno));
			return;
		}
		if (n < 0)
			break;
		memmove(ch->wbuf, ch->wbuf + n, ch->wlen - (size_t)n);
		ch->wlen -= (size_t)n;
		ch->st.bytes_out += (uint64_t)n;
	}
	if (!ch->closed)
		want_out(ch, ch->wlen > 0);
}

static void on_io(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_chan *ch = data;

	(void)l, (void)fd;
	if (events & KS_LOOP_OUT)
		flush_output(ch, true);
	if (!ch->closed && (events & (KS_LOOP_IN | KS_LOOP_HUP | KS_LOOP_ERR)))
		read_input(ch);
	else
		deliver(ch);
}

static void on_wfd(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct ks_chan *ch = data;

	(void)l, (void)fd;
	if (events & (KS_LOOP_OUT | KS_LOOP_ERR))
		flush_output(ch, true);
	deliver(ch);
}

/* ---- creating and freeing ---- */

static struct ks_chan *chan_new(struct ks_loop *loop, const char *name, const char *log_path,
				struct ks_error *err)
{
	struct ks_chan *ch;

	if (!loop || !name) {
		ks_error_set(err, -EINVAL, "chan: no loop or no name");
		return NULL;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->name = strdup(name)) ||
	    !(ch->ring = calloc(KS_CHAN_RING_LINES, sizeof(*ch->ring)))) {
		ks_error_set(err, -ENOMEM, "chan: out of memory");
		goto fail;
	}
	ch->loop = loop;
	ch->fd = ch->wfd = -1;
	ch->ring_cap = KS_CHAN_RING_LINES;
	ch->q_tail = &ch->q_head;
	ch->partial_ns = KS_CHAN_PARTIAL_NS;
	ch->line_max = KS_CHAN_LINE_MAX;
	ch->next_cb_id = 1;
	ch->st.open_ns = ks_loop_now_ns();
	if (log_path && !(ch->log = fopen(log_path, "ae"))) {
		int e = errno;

		ks_error_set(err, -e, "chan: %s: cannot open log %s: %s", name, log_path,
			     strerror(e));
		goto fail;
	}
	log_note(ch, "opened");
	return ch;
fail:
	ks_chan_free(ch);
	return NULL;
}

struct ks_chan *ks_chan_attach(struct ks_loop *loop, const char *name, int fd,
			       const char *log_path, struct ks_error *err)
{
	struct ks_chan *ch = chan_new(loop, name, log_path, err);
	int fl = fcntl(fd, F_GETFL), r;

	if (!ch) {
		close(fd);
		return NULL;
	}
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		ks_error_set(err, r, "chan: %s: fcntl: %s", name, strerror(-r));
		goto fail;
	}
	r = ks_loop_add_fd(loop, fd, KS_LOOP_IN, on_io, ch);
	if (r < 0) {
		close(fd);
		ks_error_set(err, r, "chan: %s: cannot watch the fd: %s", name, strerror(-r));
		goto fail;
	}
	ch->fd = fd;
	return ch;
fail:
	ks_chan_free(ch);
	return NULL;
}

struct ks_chan *ks_chan_open(struct ks_loop *loop, const char *name, const char *socket_path,
			     const char *log_path, int64_t connect_timeout_ns,
			     struct ks_error *err)
{
	int fd;

	if (!loop || !name) {
		ks_error_set(err, -EINVAL, "chan: no loop or name");
		return NULL;
	}
	fd = ks_unix_connect(loop, socket_path, connect_timeout_ns, name, err);
	if (fd < 0)
		return NULL;
	return ks_chan_attach(loop, name, fd, log_path, err);
}

void ks_chan_free(struct ks_chan *ch)
{
	struct rec *r;

	if (!ch)
		return;
	ch->quiet = true;
	close_chan(ch, -ECONNRESET, "%s: channel freed", ch->name ? ch->name : "chan");
	deliver(ch);
	while ((r = ch->q_head)) {
		ch->q_head = r->next;
		rec_put(r);
	}
	for (size_t i = 0; ch->ring && i < ch->ring_count; i++)
		rec_put(ch->ring[(ch->ring_head + i) % ch->ring_cap]);
	if (ch->log)
		fclose(ch->log);
	free(ch->ring);
	free(ch->cbs);
	free(ch->wbuf);
	free(ch->pend);
	free(ch->name);
	free(ch);
}

struct ks_chan *ks_chan_attach_pipes(struct ks_loop *loop, const char *name, int rfd, int wfd,
				     const char *log_path, struct ks_error *err)
{
	struct ks_chan *ch;
	int fl = fcntl(wfd, F_GETFL);

	if (fl < 0 || fcntl(wfd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ks_error_set(err, -errno, "chan: %s: fcntl: %s", name, strerror(errno));
		close(rfd);
		close(wfd);
		return NULL;
	}
	/* Room for what the guest says while reading rests (see rest()); the default 64 KiB
	 * will do where the limit is lower. */
	fcntl(rfd, F_SETPIPE_SZ, PIPE_BYTES);
	if (!(ch = ks_chan_attach(loop, name, rfd, log_path, err))) {
		close(wfd);
		return NULL;
	}
	ch->wfd = wfd;
	return ch;
}

int ks_chan_set_read_gap(struct ks_chan *ch, int64_t ns)
{
	if (ns < 0)
		return -EINVAL;
	if (ch->wfd < 0 && ns)
		return -EOPNOTSUPP;
	ch->gap_ns = ns;
	return 0;
}

void ks_chan_drain(struct ks_chan *ch)
{
	if (ch && !ch->closed && ch->fd >= 0)
		read_input(ch);
}

/* ---- settings and state ---- */

const char *ks_chan_name(const struct ks_chan *ch)
{
	return ch->name;
}

int ks_chan_set_partial_timeout(struct ks_chan *ch, int64_t ns)
{
	int64_t idle;

	if (ns <= 0)
		return -EINVAL;
	ch->partial_ns = ns;
	if (!ch->timer)
		return 0;
	/* An armed timer may be far later than the new limit allows. */
	ks_loop_del_timer(ch->loop, ch->timer);
	idle = (int64_t)(ks_loop_now_ns() - ch->last_byte_ns);
	arm_timer(ch, idle < ns ? ns - idle : 1);
	return 0;
}

int ks_chan_set_line_max(struct ks_chan *ch, size_t bytes)
{
	if (bytes == 0 || bytes > LINE_MAX_LIMIT)
		return -EINVAL;
	ch->line_max = bytes;
	return 0;
}

int ks_chan_set_ring_size(struct ks_chan *ch, size_t lines)
{
	struct rec **ring;
	size_t keep;

	if (lines == 0 || lines > SIZE_MAX / sizeof(*ring))
		return -EINVAL;
	ring = calloc(lines, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	keep = ch->ring_count < lines ? ch->ring_count : lines;
	for (size_t i = 0; i < ch->ring_count; i++) {
		struct rec *r = ch->ring[(ch->ring_head + i) % ch->ring_cap];

		if (i < ch->ring_count - keep)
			rec_put(r);
		else
			ring[i - (ch->ring_count - keep)] = r;
	}
	free(ch->ring);
	ch->ring = ring;
	ch->ring_cap = lines;
	ch->ring_head = 0;
	ch->ring_count = keep;
	return 0;
}

int ks_chan_on_line(struct ks_chan *ch, ks_chan_line_cb cb, void *data)
{
	struct line_cb *cbs;

	if (!cb || ch->next_cb_id == INT32_MAX)
		return -EINVAL;
	cbs = realloc(ch->cbs, (ch->ncbs + 1) * sizeof(*cbs));
	if (!cbs)
		return -ENOMEM;
	ch->cbs = cbs;
	cbs[ch->ncbs++] = (struct line_cb){ .id = ch->next_cb_id, .cb = cb, .data = data };
	return ch->next_cb_id++;
}

int ks_chan_off_line(struct ks_chan *ch, int id)
{
	for (size_t i = 0; i < ch->ncbs; i++) {
		if (ch->cbs[i].id != id || !ch->cbs[i].cb)
			continue;
		/* Leave the slot while a delivery walks the array; deliver() compacts it. */
		ch->cbs[i].cb = NULL;
		if (!ch->delivering)
			compact_cbs(ch);
		return 0;
	}
	return -ENOENT;
}

void ks_chan_on_close(struct ks_chan *ch, ks_chan_close_cb cb, void *data)
{
	ch->close_cb = cb;
	ch->close_data = data;
}

bool ks_chan_closed(const struct ks_chan *ch)
{
	return ch->closed;
}

const struct ks_error *ks_chan_close_reason(const struct ks_chan *ch)
{
	return ch->closed ? &ch->reason : NULL;
}

void ks_chan_stats(const struct ks_chan *ch, struct ks_chan_stats *st)
{
	*st = ch->st;
}

/* ---- writing ---- */

int ks_chan_write(struct ks_chan *ch, const void *buf, size_t len)
{
	if (ch->closed)
		return -ENOTCONN;
	if (len > KS_CHAN_WRITE_MAX - ch->wlen)
		return -ENOBUFS;
	if (ch->wcap - ch->wlen < len) {
		size_t cap = ch->wlen + len + 4096;
		char *b = realloc(ch->wbuf, cap);

		if (!b)
			return -ENOMEM;
		ch->wbuf = b;
		ch->wcap = cap;
	}
	memcpy(ch->wbuf + ch->wlen, buf, len);
	ch->wlen += len;
	flush_output(ch, false);
	return 0;
}

int ks_chan_flush(struct ks_chan *ch, int64_t timeout_ns)
{
	uint64_t start = ks_loop_now_ns();

	for (bool first = true;; first = false) {
		int64_t left;
		int r;

		if (ch->closed)
			return ch->lost_output ? -ECONNRESET : 0;
		if (ch->wlen == 0)
			return 0;
		left = chan_remaining(start, timeout_ns);
		if (left == 0 && !first)
			return -ETIMEDOUT;
		r = ks_loop_run_once(ch->loop, left);
		if (r < 0)
			return r;
	}
}
