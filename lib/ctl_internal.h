/* ctl_internal.h: the buffered line reader shared by the control server and client. */
#ifndef KSCOPE_CTL_INTERNAL_H
#define KSCOPE_CTL_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

/* Input read from a socket, cut into lines with ks_ctl_frame(). Zero-initialise it. */
struct ks_ctl_rbuf {
	char *buf;
	size_t start;  /* first byte not yet taken as a line */
	size_t len;    /* bytes in buf */
	size_t cap;
};

/*
 * Reads once from fd into b. Returns the bytes read (> 0), 0 at end of file, -EAGAIN when
 * nothing is there now, -EMSGSIZE when the unfinished line already fills the buffer,
 * -ENOMEM, or the -errno of read(). Lines returned before become invalid.
 */
ssize_t ks_ctl_rbuf_fill(struct ks_ctl_rbuf *b, int fd);

/*
 * Takes the next complete line: returns 1 with *line (not NUL-terminated; valid until the
 * next fill) and *len, 0 when no complete line is buffered, or -EMSGSIZE when the line
 * exceeds KS_CTL_MAX_LINE.
 */
int ks_ctl_rbuf_next(struct ks_ctl_rbuf *b, const char **line, size_t *len);

/* Bytes buffered but not yet taken as a line. */
size_t ks_ctl_rbuf_pending(const struct ks_ctl_rbuf *b);

/* Frees the buffer (b itself belongs to the caller). */
void ks_ctl_rbuf_release(struct ks_ctl_rbuf *b);

#endif
