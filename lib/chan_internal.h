/* chan_internal.h: what chan.c (reading, delivering, writing) and chan_read.c (waits, tails, dumps) share. */
#ifndef KSCOPE_CHAN_INTERNAL_H
#define KSCOPE_CHAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kscope/chan.h>

/* A line, shared by the ring and the delivery queue (hence the count). */
struct rec {
	unsigned refs;
	struct rec *next;  /* in the delivery queue */
	struct ks_chan_line line;
	char text[];
};

struct line_cb {
	int id;
	ks_chan_line_cb cb;  /* NULL: removed during a delivery, compacted after it */
	void *data;
};

struct ks_chan {
	struct ks_loop *loop;
	char *name;
	int fd;                    /* read from (and written to, but for a pipe pair) */
	int wfd;                   /* a pipe pair's write end, else -1 */
	bool wfd_watched;          /* wfd is in the loop, for KS_LOOP_OUT */
	int64_t gap_timer;         /* a pipe pair's reading rests until it fires */
	int64_t gap_ns;            /* how long it rests after each read; 0: never */
	bool resting;              /* KS_LOOP_IN is off meanwhile */
	bool closed, close_notified, lost_output;
	bool quiet;                /* being freed: log only, no callbacks */
	struct ks_error reason;
	ks_chan_close_cb close_cb;
	void *close_data;

	char *pend;                /* the unfinished line */
	size_t plen, pcap;
	uint64_t pts, last_byte_ns;
	int64_t pwall;
	bool after_partial;        /* the last line delivered was partial */
	int64_t timer;             /* the partial-line timer, 0 when not armed */
	int64_t partial_ns;
	size_t line_max;

	struct rec **ring;         /* ring[(head + i) % cap], i < count, oldest first */
	size_t ring_cap, ring_head, ring_count;
	struct rec *q_head, **q_tail;
	bool delivering;
	struct line_cb *cbs;
	size_t ncbs;
	int next_cb_id;

	char *wbuf;
	size_t wlen, wcap;
	bool want_out;

	FILE *log;
	struct ks_chan_stats st;
};

/* What is left of timeout_ns since start: -1 for no limit, else at least 0. */
int64_t chan_remaining(uint64_t start, int64_t timeout_ns);

/* Writes one line in the log format ("[secs.micros] text"), prefix first if not NULL. */
int chan_format_line(FILE *f, const char *prefix, const struct ks_chan_line *l,
		     uint64_t origin);

#endif
