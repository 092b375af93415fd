/* http_internal.h: what the HTTP server's files share: its server and request structs. */
#ifndef KSCOPE_WEB_HTTP_INTERNAL_H
#define KSCOPE_WEB_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "http.h"

#define KS_HTTP_MAX_HOSTS 6

struct ks_http {
	struct ks_loop *loop;
	struct MHD_Daemon *mhd;
	int epfd;               /* libmicrohttpd's epoll fd, one fd of the loop; -1 when not added */
	int64_t timeout_timer;  /* armed from MHD_get_timeout() */
	int64_t kick_timer;     /* zero delay: MHD_run() soon after a resume */
	int running;            /* inside MHD_run() */
	bool missed;            /* a run was due while running: one more after it */
	bool muted;             /* epfd's interest dropped while a nested loop runs */
	int family;
	uint16_t port;
	bool any_host;
	size_t max_body, max_queue;
	uint64_t keepalive_ns;
	uint64_t coalesce_ns;
	char *token, *url;
	char *hosts[KS_HTTP_MAX_HOSTS];  /* Host header values accepted */
	const struct ks_http_file *files;
	ks_http_handler handler;
	void *data;
	struct ks_http_stream *streams;  /* open ones: close callback still owed */
	size_t nstreams;
	size_t nclosing;        /* streams ended, their last bytes not yet handed over */
};

struct ks_http_req {
	struct ks_http *h;
	struct MHD_Connection *conn;
	const char *method, *path;  /* libmicrohttpd's, valid for the request */
	size_t target_len;
	bool bad_path;              /* judged on the raw target: decoding would hide %2f */
	bool started, answered, too_big;
	char *body;
	size_t body_len, body_cap;
	size_t discarded;           /* body bytes read past the limit */
};

/* Queues resp (always consumed) with the headers every answer carries. 0 or -ENOMEM. */
int ks_http_queue_answer(struct ks_http_req *rq, unsigned status, const char *type,
			 struct MHD_Response *resp);

/* Makes MHD_run() happen in the next round of the loop (a resumed connection needs it). */
void ks_http_kick(struct ks_http *h);

#endif
