/* gdb_packet.c: GDB remote protocol framing, escapes, run-length decoding and reply parsing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb_internal.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

const char *ks_gdb_excerpt(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = len < size - 4 ? len : size - 4;

	for (size_t i = 0; i < n; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	strcpy(buf + n, len > n ? "..." : "");
	return buf;
}

/* ---- framing ---- */

static int reserve(struct ks_gdb_packet *pkt, size_t need)
{
	char *d;
	size_t cap;

	if (need <= pkt->cap)
		return 0;
	cap = pkt->cap ? pkt->cap : 256;
	while (cap < need)
		cap *= 2;
	d = realloc(pkt->data, cap);
	if (!d)
		return -ENOMEM;
	pkt->data = d;
	pkt->cap = cap;
	return 0;
}

void ks_gdb_packet_clear(struct ks_gdb_packet *pkt)
{
	free(pkt->data);
	memset(pkt, 0, sizeof(*pkt));
}

/* Undoes escapes and run-length encoding of raw (between "$" and "#") into pkt. */
static int decode(const char *raw, size_t n, size_t max, struct ks_gdb_packet *pkt,
		  struct ks_error *err)
{
	size_t out = 0;

	if (reserve(pkt, n + 1) < 0)
		return ks_error_set(err, -ENOMEM, "gdb: out of memory for a packet");
	for (size_t i = 0; i < n; i++) {
		char c = raw[i];
		size_t rep;

		if (c == '}') {
			if (++i == n)
				return ks_error_set(err, -EPROTO, "gdb: packet ends in an escape");
			pkt->data[out++] = (char)(raw[i] ^ 0x20);
			continue;
		}
		if (c != '*') {
			pkt->data[out++] = c;
			continue;
		}
		/* "X*n" repeats X n - 29 more times; n is printable, so 3..97 repeats. */
		if (out == 0 || ++i == n || raw[i] < ' ' || raw[i] > '~')
			return ks_error_set(err, -EPROTO, "gdb: run-length mark %s",
					    out == 0 ? "with nothing to repeat" : "without a count");
		rep = (size_t)(raw[i] - 29);
		if (out + rep > max)
			return ks_error_set(err, -EMSGSIZE, "gdb: packet longer than %zu bytes "
					    "once run-length decoded", max);
		if (reserve(pkt, out + rep + (n - i)) < 0)
			return ks_error_set(err, -ENOMEM, "gdb: out of memory for a packet");
		memset(pkt->data + out, pkt->data[out - 1], rep);
		out += rep;
	}
	pkt->data[out] = '\0';
	pkt->len = out;
	return 0;
}

/* Garbage: how many bytes until something that can start a unit. */
static size_t garbage_len(const char *buf, size_t len)
{
	size_t i = 1;

	while (i < len && !strchr("$%+-", buf[i]))
		i++;
	return i;
}

static int parse_frame(const char *buf, size_t len, size_t max, size_t *consumed,
		       struct ks_gdb_packet *pkt, struct ks_error *err)
{
	const char *hash = memchr(buf + 1, '#', len - 1);
	size_t n = hash ? (size_t)(hash - buf - 1) : len - 1;
	char show[KS_GDB_SHOW];
	unsigned sum = 0;
	int hi, lo, r;

	pkt->kind = buf[0] == '$' ? KS_GDB_PKT_DATA : KS_GDB_PKT_NOTIFY;
	if (n > max) {
		*consumed = hash && len > n + 4 ? n + 4 : len;
		return ks_error_set(err, -EMSGSIZE, "gdb: packet longer than %zu bytes: %s", max,
				    ks_gdb_excerpt(buf, len, show, sizeof(show)));
	}
	if (!hash || len < n + 4)
		return 0;
	*consumed = n + 4;
	hi = hexval(hash[1]);
	lo = hexval(hash[2]);
	if (hi < 0 || lo < 0)
		return ks_error_set(err, -EPROTO, "gdb: checksum is not hex: %s",
				    ks_gdb_excerpt(buf, n + 4, show, sizeof(show)));
	for (size_t i = 1; i <= n; i++)
		sum += (unsigned char)buf[i];
	if ((sum & 0xff) != (unsigned)(hi << 4 | lo))
		return ks_error_set(err, -EBADMSG, "gdb: bad checksum (computed %02x): %s",
				    sum & 0xff, ks_gdb_excerpt(buf, n + 4, show, sizeof(show)));
	r = decode(buf + 1, n, max, pkt, err);
	return r < 0 ? r : 1;
}

int ks_gdb_parse(const char *buf, size_t len, size_t max, size_t *consumed,
		 struct ks_gdb_packet *pkt, struct ks_error *err)
{
	char show[KS_GDB_SHOW];

	*consumed = 0;
	if (len == 0)
		return 0;
	switch (buf[0]) {
	case '+':
	case '-':
		pkt->kind = buf[0] == '+' ? KS_GDB_PKT_ACK : KS_GDB_PKT_NACK;
		pkt->len = 0;
		*consumed = 1;
		return 1;
	case '$':
	case '%':
		return parse_frame(buf, len, max, consumed, pkt, err);
	default:
		*consumed = garbage_len(buf, len);
		return ks_error_set(err, -EPROTO, "gdb: garbage between packets: %s",
				    ks_gdb_excerpt(buf, *consumed, show, sizeof(show)));
	}
}

size_t ks_gdb_frame(const void *data, size_t len, char *out, size_t cap)
{
	const unsigned char *d = data;
	size_t o = 0;
	unsigned sum = 0;

#define PUT(c) do { if (o < cap) out[o] = (char)(c); o++; } while (0)
	PUT('$');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = d[i];

		if (c == '#' || c == '$' || c == '}' || c == '*') {
			PUT('}');
			sum += '}';
			c ^= 0x20;
		}
		PUT(c);
		sum += c;
	}
	PUT('#');
	PUT("0123456789abcdef"[(sum >> 4) & 0xf]);
	PUT("0123456789abcdef"[sum & 0xf]);
#undef PUT
	return o;
}

/* ---- hex ---- */

int ks_gdb_hex_decode(const char *hex, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EPROTO;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void ks_gdb_hex_encode(const void *in, size_t n, char *out)
{
	const uint8_t *b = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = "0123456789abcdef"[b[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[b[i] & 0xf];
	}
}

int ks_gdb_error_reply(const char *data, size_t len)
{
	if (len != 3 || data[0] != 'E' || hexval(data[1]) < 0 || hexval(data[2]) < 0)
		return -1;
	return hexval(data[1]) << 4 | hexval(data[2]);
}

/* Parses hex digits at *s (before end) into *v; at least one, at most 16. */
static int parse_hex(const char **s, const char *end, uint64_t *v)
{
	const char *p = *s;

	*v = 0;
	while (p < end && hexval(*p) >= 0 && p - *s < 16)
		*v = *v << 4 | (uint64_t)hexval(*p++);
	if (p == *s || (p < end && hexval(*p) >= 0))
		return -EPROTO;
	*s = p;
	return 0;
}

/* ---- thread ids ---- */

/* One part of a thread id: hex, or "-1" for all. */
static int parse_id_part(const char **s, const char *end, int64_t *v)
{
	uint64_t u;

	if (end - *s >= 2 && (*s)[0] == '-' && (*s)[1] == '1') {
		*s += 2;
		*v = -1;
		return 0;
	}
	if (parse_hex(s, end, &u) < 0 || u > INT64_MAX)
		return -EPROTO;
	*v = (int64_t)u;
	return 0;
}

int ks_gdb_parse_tid(const char **s, const char *end, struct ks_gdb_tid *t)
{
	const char *p = *s;

	t->pid = 0;
	if (p < end && *p == 'p') {
		p++;
		if (parse_id_part(&p, end, &t->pid) < 0)
			return -EPROTO;
		if (p == end || *p != '.') {
			/* "p<pid>" alone means every thread of the process. */
			t->tid = -1;
			*s = p;
			return 0;
		}
		p++;
	}
	if (parse_id_part(&p, end, &t->tid) < 0)
		return -EPROTO;
	*s = p;
	return 0;
}

const char *ks_gdb_format_tid(const struct ks_gdb_tid *t, bool multiprocess, char *buf,
			      size_t size)
{
	char tid[24];

	if (t->tid < 0)
		snprintf(tid, sizeof(tid), "-1");
	else
		snprintf(tid, sizeof(tid), "%" PRIx64, (uint64_t)t->tid);
	if (multiprocess && t->pid > 0)
		snprintf(buf, size, "p%" PRIx64 ".%s", (uint64_t)t->pid, tid);
	else
		snprintf(buf, size, "%s", tid);
	return buf;
}

int ks_gdb_parse_thread_list(const char *data, size_t len, struct ks_gdb_tid **list,
			     size_t *n)
{
	const char *p = data + 1, *end = data + len;

	if (len == 1 && data[0] == 'l')
		return 0;
	if (len < 2 || data[0] != 'm')
		return -EPROTO;
	for (;;) {
		struct ks_gdb_tid t, *l;

		if (ks_gdb_parse_tid(&p, end, &t) < 0)
			return -EPROTO;
		l = realloc(*list, (*n + 1) * sizeof(**list));
		if (!l)
			return -ENOMEM;
		*list = l;
		l[(*n)++] = t;
		if (p == end)
			return 1;
		if (*p++ != ',')
			return -EPROTO;
	}
}

/* ---- stop replies ---- */

bool ks_gdb_is_stop(const char *data, size_t len)
{
	if (len == 0)
		return false;
	switch (data[0]) {
	case 'T':
	case 'S':
	case 'W':
	case 'X':
		return len >= 3 && hexval(data[1]) >= 0 && hexval(data[2]) >= 0;
	case 'O':
		/* "OK" is not output: K is no hex digit. */
		for (size_t i = 1; i < len; i++)
			if (hexval(data[i]) < 0)
				return false;
		return len % 2 == 1;
	default:
		return false;
	}
}

/* One "name:value" pair of a T reply (value without its ";"). */
static int stop_pair(const char *name, size_t nlen, const char *v, const char *vend,
		     struct ks_gdb_stop *stop, struct ks_gdb_tid *tid)
{
	static const struct { const char *name; enum ks_gdb_watch w; } watches[] = {
		{ "watch", KS_GDB_WATCH_WRITE }, { "rwatch", KS_GDB_WATCH_READ },
		{ "awatch", KS_GDB_WATCH_ACCESS },
	};
	uint64_t addr;

	if (nlen == 6 && !memcmp(name, "thread", 6))
		return ks_gdb_parse_tid(&v, vend, tid) < 0 || v != vend ? -EPROTO : 0;
	for (size_t i = 0; i < sizeof(watches) / sizeof(watches[0]); i++) {
		if (strlen(watches[i].name) != nlen || memcmp(name, watches[i].name, nlen))
			continue;
		if (parse_hex(&v, vend, &addr) < 0 || v != vend)
			return -EPROTO;
		stop->watch = watches[i].w;
		stop->watch_addr = addr;
		return 0;
	}
	if (nlen == 7 && !memcmp(name, "swbreak", 7))
		stop->swbreak = true;
	if (nlen == 7 && !memcmp(name, "hwbreak", 7))
		stop->hwbreak = true;
	return 0;
}

/* The "n:r;" pairs after T and its signal. */
static int stop_pairs(const char *p, const char *end, struct ks_gdb_stop *stop,
		      struct ks_gdb_tid *tid)
{
	while (p < end) {
		const char *colon = memchr(p, ':', (size_t)(end - p)), *semi;

		if (!colon)
			return -EPROTO;
		semi = memchr(colon, ';', (size_t)(end - colon));
		if (!semi)
			semi = end;  /* GDB accepts a last pair without its ";" */
		if (stop_pair(p, (size_t)(colon - p), colon + 1, semi, stop, tid) < 0)
			return -EPROTO;
		p = semi < end ? semi + 1 : end;
	}
	return 0;
}

int ks_gdb_parse_stop(char *data, size_t len, struct ks_gdb_stop *stop,
		      struct ks_gdb_tid *tid)
{
	memset(stop, 0, sizeof(*stop));
	stop->vcpu = -1;
	tid->pid = tid->tid = 0;
	if (!ks_gdb_is_stop(data, len))
		return -EPROTO;
	if (data[0] == 'O') {
		size_t n = (len - 1) / 2;

		stop->kind = KS_GDB_STOP_OUTPUT;
		/* In place: byte i is written after digits 2i+1 and 2i+2 were read. */
		for (size_t i = 0; i < n; i++)
			data[i] = (char)(hexval(data[1 + 2 * i]) << 4 | hexval(data[2 + 2 * i]));
		data[n] = '\0';
		stop->output = data;
		return 0;
	}
	stop->code = hexval(data[1]) << 4 | hexval(data[2]);
	stop->kind = data[0] == 'W' ? KS_GDB_STOP_EXITED :
		     data[0] == 'X' ? KS_GDB_STOP_TERMINATED : KS_GDB_STOP_SIGNAL;
	if (data[0] == 'T')
		return stop_pairs(data + 3, data + len, stop, tid);
	/* W and X may carry ";process:pid"; S carries nothing more. */
	if (data[0] == 'S' && len != 3)
		return -EPROTO;
	return 0;
}

/* ---- qSupported ---- */

static bool is_feature(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && !memcmp(p, name, n);
}

size_t ks_gdb_parse_supported(const char *data, size_t len, bool *multiprocess, bool *xml)
{
	const char *p = data, *end = data + len;
	size_t size = 0;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		size_t n = semi ? (size_t)(semi - p) : (size_t)(end - p);
		const char *v = p + 11;
		uint64_t val;

		if (n > 11 && !memcmp(p, "PacketSize=", 11) &&
		    parse_hex(&v, p + n, &val) == 0 && v == p + n)
			size = val > SIZE_MAX ? SIZE_MAX : (size_t)val;
		if (is_feature(p, n, "multiprocess+"))
			*multiprocess = true;
		if (is_feature(p, n, "qXfer:features:read+"))
			*xml = true;
		p += n + (semi ? 1 : 0);
	}
	return size;
}
