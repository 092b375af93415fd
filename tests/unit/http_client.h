/* http_client.h: a raw HTTP client for tests, pumped together with the server's ks_loop. */
#ifndef KSCOPE_TESTS_HTTP_CLIENT_H
#define KSCOPE_TESTS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kscope/loop.h>

/* Room for all a stuffed socket pair holds (megabytes on loopback) and more. */
#define CLIENT_BUF (16u << 20)

/* Every wait gives up (failing the test) after this long. */
#define CLIENT_DEADLINE_NS (2000 * 1000000ll)

struct client {
	int fd;
	char buf[CLIENT_BUF];   /* all received, NUL-terminated */
	size_t len;
	bool eof;
	char text[CLIENT_BUF];  /* a chunked body, de-chunked so far (cl_text()) */
	size_t text_len;
	size_t parsed;          /* bytes of buf that text accounts for */
};

/* Connects to 127.0.0.1:port (rcvbuf: SO_RCVBUF first, 0 to leave it), non-blocking. */
struct client *cl_open(uint16_t port, int rcvbuf);

void cl_close(struct client *c);

/* One round of l, then whatever c (may be NULL) can read. */
void cl_pump(struct ks_loop *l, struct client *c);

/* Sends all of s, pumping meanwhile; stops early if the server closed. */
void cl_send(struct ks_loop *l, struct client *c, const char *s, size_t n);

/* Pumps until the server closes. */
void cl_until_eof(struct ks_loop *l, struct client *c);

/* The de-chunked body of a chunked answer (an event stream), as received so far. */
const char *cl_text(struct client *c);

/* Pumps until the de-chunked body holds what. */
void cl_until_event(struct ks_loop *l, struct client *c, const char *what);

/* A whole answer, read to EOF. */
struct answer {
	int status;        /* 0: none came */
	char head[4096];
	const char *body;  /* into the client's buffer */
	size_t body_len;
	struct client *c;
};

void answer_free(struct answer *a);

/* Sends raw bytes on a new connection, reads to EOF and splits the answer. */
struct answer cl_raw_request(struct ks_loop *l, uint16_t port, const char *raw, size_t len);

/*
 * "method target HTTP/1.1" with "Connection: close", the right Host unless extra has one
 * (extra: header lines, each ending with "\r\n"), then body.
 */
struct answer cl_request(struct ks_loop *l, uint16_t port, const char *method,
			 const char *target, const char *extra, const char *body);

/* The body as JSON (failing the test if it is not). */
json_t *answer_json(const struct answer *a);

#endif
