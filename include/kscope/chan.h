/* chan.h: serial channels (console, test port) captured line by line with timestamps. */
#ifndef KSCOPE_CHAN_H
#define KSCOPE_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kscope/error.h>
#include <kscope/loop.h>

/*
 * A channel reads one byte stream from the guest (a QEMU serial port's Unix socket) on a
 * ks_loop, cuts it into lines at '\n' (a '\r' just before the '\n' is dropped; every other
 * byte, NULs and escape sequences included, is kept), stamps each line with the host time
 * its first byte was read, and delivers it to callbacks, to an optional log file and to a
 * ring of the most recent lines.
 *
 * A line that does not end is not held forever: it is delivered as a partial line
 * (KS_CHAN_PARTIAL) once no byte has come for the partial timeout, once it reaches the line
 * cap, or when the channel closes. What comes after a partial line is a new line marked
 * KS_CHAN_CONT; a bare newline right after a partial line only ends it and is not delivered
 * as an empty line. Every delivered line gets the next line number (1, 2, ...).
 *
 * The log file gets one line per delivered line, flushed after every batch:
 *     [   12.345678] text        a line that ended with its newline
 *     [   12.345678]+text        a partial line (no newline: cut, idle, or at the end)
 * The time is seconds since the channel was opened. Lines starting with "# kscope " say when
 * (local wall-clock time) the channel was opened and closed, and why it closed. The log is
 * appended to, never truncated.
 */
struct ks_chan;

/* Defaults, each changeable per channel. */
#define KS_CHAN_PARTIAL_NS (200 * 1000000ll) /* idle time before a partial line is delivered */
#define KS_CHAN_LINE_MAX   4096u             /* bytes; a longer line is cut into partial ones */
#define KS_CHAN_RING_LINES 1000u             /* lines kept for ks_chan_tail() */
#define KS_CHAN_WRITE_MAX  (1u << 20)        /* bytes ks_chan_write() may queue unsent */

/* Line flags. */
#define KS_CHAN_PARTIAL 0x1u /* the line did not end with a newline */
#define KS_CHAN_CONT    0x2u /* the line continues the previous, partial, line */

/* ks_chan_wait_line() flags. */
#define KS_CHAN_MATCH_REGEX 0x1u /* pattern is a POSIX extended regex, not a plain substring */

/* One line as delivered. */
struct ks_chan_line {
	const char *chan;   /* the channel's name ("console", "com2", ...) */
	const char *text;   /* len bytes, followed by a NUL that len does not count */
	size_t len;
	uint64_t ts_ns;     /* ks_loop_now_ns() (CLOCK_MONOTONIC) when its first byte was read */
	int64_t wall_ns;    /* CLOCK_REALTIME at the same moment, ns since the Unix epoch */
	uint64_t lineno;    /* 1 for the channel's first line, then one more per line */
	unsigned flags;     /* KS_CHAN_PARTIAL, KS_CHAN_CONT */
};

/* Totals since the channel was opened. */
struct ks_chan_stats {
	uint64_t bytes_in;   /* bytes read from the guest */
	uint64_t bytes_out;  /* bytes written to the guest (sent, not just queued) */
	uint64_t lines;      /* lines delivered so far: also the newest line's number */
	uint64_t partial;    /* how many of them were partial */
	uint64_t open_ns;    /* ks_loop_now_ns() at open: the log's time origin */
	int log_error;       /* 0, or the -errno that made the channel stop logging */
};

/*
 * Called for each line, in order, while the loop runs. line and its text are valid during
 * the call only. The callback may add or remove line callbacks and write to the channel; it
 * may run the loop (e.g. a QMP call), but lines arriving meanwhile reach callbacks and the
 * log only after it returns (they do reach the ring and ks_chan_wait_line() at once).
 */
typedef void (*ks_chan_line_cb)(struct ks_chan *ch, const struct ks_chan_line *line,
				void *data);

/*
 * Called once when the channel closes (peer closed the socket, read or write error), after
 * its last line has been delivered. reason is borrowed for the call (see
 * ks_chan_close_reason()).
 */
typedef void (*ks_chan_close_cb)(struct ks_chan *ch, const struct ks_error *reason,
				 void *data);

/*
 * Connects to the Unix socket at socket_path (a QEMU serial chardev in server mode),
 * retrying while it does not exist yet or refuses connections, for at most
 * connect_timeout_ns (< 0: no limit; the loop keeps running meanwhile), then reads from it
 * on loop, which must outlive the channel. name labels lines and messages. If log_path is not
 * NULL, lines are appended to that file (created if needed). Returns the channel (free with
 * ks_chan_free()) or NULL with err filled: -ETIMEDOUT, -ENAMETOOLONG, -EINVAL, -ENOMEM, or
 * the -errno of connecting or opening the log.
 */
struct ks_chan *ks_chan_open(struct ks_loop *loop, const char *name, const char *socket_path,
			     const char *log_path, int64_t connect_timeout_ns,
			     struct ks_error *err);

/*
 * Like ks_chan_open() on fd, an already connected stream socket or pipe-like fd (made
 * non-blocking here). The channel owns fd from the call on: it closes it when the channel
 * closes or is freed, and on failure here.
 */
struct ks_chan *ks_chan_attach(struct ks_loop *loop, const char *name, int fd,
			       const char *log_path, struct ks_error *err);

/*
 * Like ks_chan_attach() on a pair of pipes: the guest's output is read from rfd and input
 * written to wfd (QEMU's `pipe` chardev: FIFOs <path>.out and <path>.in). The channel owns
 * both from the call on (and closes them on failure). The pipe is grown to 1 MiB, so that
 * reading may rest between reads (ks_chan_set_read_gap()) without the guest waiting.
 */
struct ks_chan *ks_chan_attach_pipes(struct ks_loop *loop, const char *name, int rfd, int wfd,
				     const char *log_path, struct ks_error *err);

/*
 * Lets a pipe pair's reading rest ns after each read (0, the default: it reads as bytes
 * come). A UART makes QEMU write one byte at a time, and a reader that wakes for each slows
 * the guest (by 10% or more for a short test run); resting lets the bytes pile up in the
 * pipe and one read take them, and stamps lines up to ns late. Returns 0, -EINVAL (ns < 0)
 * or -EOPNOTSUPP (a socket: it holds only a few hundred one-byte writes, and the guest
 * would wait).
 */
int ks_chan_set_read_gap(struct ks_chan *ch, int64_t ns);

/*
 * Reads what the guest has written so far at once, even while a pipe pair's reading rests,
 * and delivers its lines. For a caller that has just stopped the guest and must see all it
 * said before going on. Takes NULL.
 */
void ks_chan_drain(struct ks_chan *ch);

/*
 * Closes the socket and the log and frees the channel. Lines not yet delivered and an
 * unfinished line still go to the log (not to callbacks, and the close callback does not
 * run). Takes NULL. Not from one of the channel's callbacks.
 */
void ks_chan_free(struct ks_chan *ch);

/* The name given at open. Borrowed. */
const char *ks_chan_name(const struct ks_chan *ch);

/* Sets how long an unfinished line may wait for more bytes (ns, > 0). Returns 0 or -EINVAL. */
int ks_chan_set_partial_timeout(struct ks_chan *ch, int64_t ns);

/*
 * Sets the line cap in bytes (1 to 1 MiB): a line reaching it without a newline is delivered
 * as partial and the rest continues on the next line. Returns 0 or -EINVAL.
 */
int ks_chan_set_line_max(struct ks_chan *ch, size_t bytes);

/* Sets how many recent lines are kept (>= 1); older ones are dropped. Returns 0 or -EINVAL. */
int ks_chan_set_ring_size(struct ks_chan *ch, size_t lines);

/*
 * Adds cb to the callbacks every line goes to (in the order they were added). Returns its id
 * (> 0) for ks_chan_off_line(), or -EINVAL (cb NULL) or -ENOMEM.
 */
int ks_chan_on_line(struct ks_chan *ch, ks_chan_line_cb cb, void *data);

/* Removes line callback id; safe from any callback. Returns 0 or -ENOENT. */
int ks_chan_off_line(struct ks_chan *ch, int id);

/* Sets the one close callback (cb NULL: none). It runs only if set before the channel closes. */
void ks_chan_on_close(struct ks_chan *ch, ks_chan_close_cb cb, void *data);

/* True once the peer has closed the socket or it failed; reading and writing have stopped. */
bool ks_chan_closed(const struct ks_chan *ch);

/*
 * Why the channel closed: -ECONNRESET with "closed by peer" or the read/write error, or
 * -ENOMEM. NULL while it is open. Borrowed: valid until ks_chan_free().
 */
const struct ks_error *ks_chan_close_reason(const struct ks_chan *ch);

/* Fills *st with the channel's totals. */
void ks_chan_stats(const struct ks_chan *ch, struct ks_chan_stats *st);

/*
 * Sends len bytes to the guest without blocking: what the socket does not take at once is
 * queued and sent as the loop runs (ks_chan_flush() waits for it). A failure to send closes
 * the channel from the loop, like a read error. Returns 0, -ENOTCONN if the channel is
 * closed, -ENOBUFS if more than KS_CHAN_WRITE_MAX bytes would be waiting, or -ENOMEM.
 */
int ks_chan_write(struct ks_chan *ch, const void *buf, size_t len);

/*
 * Runs the loop until everything queued by ks_chan_write() has been sent, for at most
 * timeout_ns (< 0: no limit). Returns 0, -ETIMEDOUT, -ECONNRESET if the channel closed with
 * bytes unsent, or a failure of the loop.
 */
int ks_chan_flush(struct ks_chan *ch, int64_t timeout_ns);

/*
 * Waits for a line whose number is above *cursor and that contains pattern: a plain
 * substring of its bytes, or with KS_CHAN_MATCH_REGEX a POSIX extended regex (the whole line
 * is searched, past any NUL). Partial lines count. Lines still in the ring count too, so
 * with the cursor of an earlier wait (or 0: from the first line) nothing that came in
 * between is missed; cursor NULL means only lines newer than the call. Runs the loop for at
 * most timeout_ns (< 0: no limit). On success *cursor (if given) becomes the line's number
 * and *line (if not NULL) a copy of it in one block the caller free()s. Returns 0,
 * -ETIMEDOUT, -ECONNRESET when the channel closed without such a line, -EINVAL (bad regex
 * or flags), -ENOMEM, or a failure of the loop. Works from a line callback too: lines reach
 * the ring as soon as they are read.
 */
int ks_chan_wait_line(struct ks_chan *ch, const char *pattern, unsigned flags,
		      uint64_t *cursor, int64_t timeout_ns, struct ks_chan_line **line);

/*
 * Copies the last n lines in the ring (fewer if it holds fewer), oldest first, into one
 * block: *lines (free() it; NULL when *count is 0) with *count entries whose text and chan
 * point inside the block. Returns 0 or -ENOMEM.
 */
int ks_chan_tail(const struct ks_chan *ch, size_t n, struct ks_chan_line **lines,
		 size_t *count);

/*
 * Prints the last n lines in the ring to f in the log file's format, each prefixed with
 * "<name> " (for a failure report). Returns 0, or -EIO if writing to f failed.
 */
int ks_chan_dump(const struct ks_chan *ch, size_t n, FILE *f);

#endif
