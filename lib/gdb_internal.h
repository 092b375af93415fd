/* gdb_internal.h: the GDB client's pure parts (for unit tests) and its shared state. */
#ifndef KSCOPE_GDB_INTERNAL_H
#define KSCOPE_GDB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/gdb.h>
#include <kscope/loop.h>

/* What one unit of the byte stream from the stub is. */
enum ks_gdb_pkt_kind {
	KS_GDB_PKT_DATA,    /* $data#xx: a reply or a stop reply */
	KS_GDB_PKT_NOTIFY,  /* %data#xx: a notification (non-stop mode only) */
	KS_GDB_PKT_ACK,     /* + */
	KS_GDB_PKT_NACK,    /* - : the peer wants the last packet again */
};

/*
 * One packet, decoded (escapes and run-length encoding undone). data is NUL-terminated
 * (binary replies may hold NULs too: use len) and belongs to the packet, which is reused
 * from one ks_gdb_parse() call to the next; free it with ks_gdb_packet_clear().
 */
struct ks_gdb_packet {
	enum ks_gdb_pkt_kind kind;
	char *data;
	size_t len, cap;
};

/*
 * Takes the first unit (packet, notification, ack or nack) from the len bytes at buf.
 * Returns:
 * - 1: *pkt is filled and *consumed says how many bytes it took;
 * - 0: buf holds only the start of a unit: call again with more bytes (*consumed is 0);
 * - -EBADMSG: a whole packet whose checksum is wrong: *consumed covers it and pkt->kind
 *   says its kind (in ack mode, answer "-" and the peer sends it again);
 * - -EPROTO: a checksum that is not two hex digits (the frame is consumed), an escape or
 *   a run-length mark with nothing to apply to, or garbage before the next unit (*consumed
 *   covers the garbage, up to the next "$", "%", "+" or "-");
 * - -EMSGSIZE: more than max bytes of data, on the wire or once decoded (*consumed covers
 *   what was seen);
 * - -ENOMEM.
 * err (may be NULL) names the error and quotes the bytes. Never reads outside buf.
 */
int ks_gdb_parse(const char *buf, size_t len, size_t max, size_t *consumed,
		 struct ks_gdb_packet *pkt, struct ks_error *err);

/* Frees what ks_gdb_parse() put in pkt. */
void ks_gdb_packet_clear(struct ks_gdb_packet *pkt);

/*
 * Frames len bytes of data as "$data#xx" into out (cap bytes), escaping "#", "$", "}" and
 * "*". Returns the frame's length (out is then filled when it is <= cap), so a caller can
 * size out by calling with cap 0.
 */
size_t ks_gdb_frame(const void *data, size_t len, char *out, size_t cap);

/* A thread id as the stub writes it: "p<pid>.<tid>", or "<tid>"; -1 means all. */
struct ks_gdb_tid {
	int64_t pid;  /* 0 when the id had no process part */
	int64_t tid;
};

/*
 * Parses a thread id at *s (before end) and moves *s past it. Returns 0 or -EPROTO.
 */
int ks_gdb_parse_tid(const char **s, const char *end, struct ks_gdb_tid *t);

/* Writes a thread id (with a process part when multiprocess) into buf; returns buf. */
const char *ks_gdb_format_tid(const struct ks_gdb_tid *t, bool multiprocess, char *buf,
			      size_t size);

/*
 * Appends the thread ids of one qfThreadInfo/qsThreadInfo reply ("m<id>,<id>..." or "l")
 * to *list (*n entries, grown with realloc; the caller frees it). Returns 1 when more may
 * follow ("m"), 0 at the end ("l"), or -EPROTO / -ENOMEM.
 */
int ks_gdb_parse_thread_list(const char *data, size_t len, struct ks_gdb_tid **list,
			     size_t *n);

/* True when a reply is a stop reply or console output (T, S, W, X, O packets). */
bool ks_gdb_is_stop(const char *data, size_t len);

/*
 * Parses a stop reply ("T05thread:p01.02;watch:ffffffff80001000;", "S05", "W00", "X09")
 * or console output ("O<hex>") into *stop, with vcpu -1 and the thread in *tid ({0, 0}
 * when none is named). Unknown "name:value;" pairs are skipped. Console output is decoded
 * in place: stop->output then points into data (NUL-terminated). Returns 0 or -EPROTO.
 */
int ks_gdb_parse_stop(char *data, size_t len, struct ks_gdb_stop *stop,
		      struct ks_gdb_tid *tid);

/*
 * Reads the PacketSize from a qSupported reply ("PacketSize=1000;..."): the value in
 * bytes, or 0 if it is missing or not a hex number. Sets *feature flags as it finds
 * "multiprocess+" and "qXfer:features:read+".
 */
size_t ks_gdb_parse_supported(const char *data, size_t len, bool *multiprocess, bool *xml);

/* Decodes 2*n hex digits at hex into n bytes; returns 0, or -EPROTO on a non-hex digit. */
int ks_gdb_hex_decode(const char *hex, size_t n, uint8_t *out);

/* Writes n bytes as 2*n lowercase hex digits at out (not NUL-terminated). */
void ks_gdb_hex_encode(const void *in, size_t n, char *out);

/* The QEMU-style error reply "Exx" (two hex digits): its number, or -1 if data is not one. */
int ks_gdb_error_reply(const char *data, size_t len);

/* ---- the client, shared by gdb.c, gdb_ops.c and gdb_x86.c ---- */

#define KS_GDB_MAX_AHEAD 12

/* A request sent ahead of its turn (ks_gdb_send_ahead()) and, once it came, its reply. */
struct ks_gdb_ahead {
	char *data;
	size_t len;
	bool wants_stop;               /* answered by a stop reply, as "?" is */
	struct ks_gdb_packet reply;
};

struct ks_gdb {
	struct ks_loop *loop;
	bool own_loop;
	int fd;
	bool connected;
	struct ks_error reason;        /* why not connected */
	char *rbuf;                    /* received bytes: [rpos, rlen) not yet parsed */
	size_t rpos, rlen, rcap;
	char *wbuf;                    /* bytes not yet written */
	size_t wlen, wcap;
	bool out_armed;                /* the loop watches fd for writing */
	char *last;                    /* the last packet sent, framed, for a nack */
	size_t last_len;
	int nacks;
	FILE *debug;
	int64_t timeout_ns;
	size_t packet_size;
	bool ready;                    /* negotiated: ks_gdb_free() detaches */
	bool acks, multiprocess, xml, phys_mode, phys_known;
	char *arch;
	struct ks_gdb_tid *threads;    /* thread i is vCPU i */
	size_t nthreads;
	int selected;                  /* vCPU of the last Hg, -1 if unknown */
	bool req_pending, req_done, req_wants_stop;
	unsigned stale;                /* replies still due to requests that timed out */
	unsigned unanswered;           /* replies still due to writes sent without waiting */
	uint64_t lost_writes;          /* of those, replies that were not "OK" */
	struct ks_gdb_packet in;       /* the unit being handled */
	struct ks_gdb_packet reply;    /* the reply to the request in flight */
	struct ks_gdb_ahead ahead[KS_GDB_MAX_AHEAD];
	size_t nahead;                 /* requests sent ahead */
	size_t ahead_got;              /* of those, replies received (in order) */
	size_t ahead_used;             /* of those, replies taken by ks_gdb_exchange() */
	size_t ahead_need;             /* what a wait for them waits for */
	enum ks_gdb_run_state state;
	struct ks_gdb_stop last_stop;
	ks_gdb_stop_cb stop_cb;
	void *stop_data;
};

/*
 * Sends len bytes of data as one packet and waits (at most the client's request timeout)
 * for its reply, which *reply then points to (borrowed: valid until the next request).
 * Returns 0; -EBUSY while the target runs or another request is in flight (from a stop
 * callback); -EMSGSIZE when data does not fit the stub's PacketSize; -ETIMEDOUT (the late
 * reply is dropped when it comes); -ENOTCONN or -ECONNRESET / -EPROTO when the connection
 * ended; err filled.
 */
int ks_gdb_request(struct ks_gdb *g, const char *data, size_t len,
		   const struct ks_gdb_packet **reply, struct ks_error *err);

/*
 * Like ks_gdb_request() for a command answered "OK": -EOPNOTSUPP for an empty reply (the
 * stub does not know the command), -EIO for an error reply "Exx", -EPROTO for anything else.
 */
int ks_gdb_request_ok(struct ks_gdb *g, const char *data, size_t len, struct ks_error *err);

/*
 * ks_gdb_request() whatever the run state; with wants_stop, the first stop reply (not
 * console output) is the answer (as to "?"), and a timeout leaves nothing to drop later.
 * The reply is in g->reply.
 */
int ks_gdb_exchange(struct ks_gdb *g, const char *data, size_t len, bool wants_stop,
		    struct ks_error *err);

/*
 * Sends n requests at once, before their turn, to save a round trip each: a stub answers
 * them in order, and the ks_gdb_exchange() that later sends the same packet (the same bytes
 * and wants_stop) takes its reply instead, dropping those of the requests sent ahead of it
 * (a guess of more than was needed). An exchange of anything else first waits for and drops
 * every reply still due, so a wrong guess costs one wait and nothing more. Only on a stopped
 * target with nothing else in flight, as in the negotiation. 0 or -errno (nothing sent on
 * -EBUSY or -ENOMEM).
 */
int ks_gdb_send_ahead(struct ks_gdb *g, const char *const *cmds, const bool *wants_stop,
		      size_t n);

/* Frames and queues one packet (kept for a resend on "-"); 0 or -errno. */
int ks_gdb_send_packet(struct ks_gdb *g, const char *data, size_t len);

/* Queues raw bytes (acks, 0x03); 0 or -errno. */
int ks_gdb_send_raw(struct ks_gdb *g, const char *s, size_t len);

/* Fills err for a call on a disconnected client; returns -ENOTCONN. */
int ks_gdb_not_connected(struct ks_gdb *g, const char *what, struct ks_error *err);

/* What is left of timeout_ns since start: -1 for no limit, else at least 0. */
int64_t ks_gdb_remaining(uint64_t start, int64_t timeout_ns);

/* Writes "gdb -- <remark>" to the debug stream, if any. */
__attribute__((format(printf, 2, 3)))
void ks_gdb_remark(struct ks_gdb *g, const char *fmt, ...);

/*
 * The negotiation after connecting (qSupported, QStartNoAckMode, "?", threads, target.xml,
 * physical-memory mode), within timeout_ns of start. 0 or -errno, err filled.
 */
int ks_gdb_negotiate(struct ks_gdb *g, uint64_t start, int64_t timeout_ns,
		     struct ks_error *err);

/* Bytes of wire traffic quoted in an error message (buffer size for ks_gdb_excerpt()). */
#define KS_GDB_SHOW 64

/* Copies the start of s into buf (size bytes), printable, with "..." if cut; returns buf. */
const char *ks_gdb_excerpt(const char *s, size_t len, char *buf, size_t size);

#endif
