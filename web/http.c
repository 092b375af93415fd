/* http.c: the dashboard's HTTP server: libmicrohttpd driven by a ks_loop, checks, static files. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_internal.h"
#include "mhd_dl.h"

#define MS 1000000ull
#define KEEPALIVE_NS (15000 * MS)
#define COALESCE_MS 40ull        /* see ks_http_opts.coalesce_ms */
#define MAX_TIMEOUT_MS (3600 * 1000ull)  /* re-asking libmicrohttpd hourly costs nothing */
#define MIN_QUEUE 256u          /* room for a "dropped" notice when the queue is below half */
#define CONN_LIMIT 256u
#define CONN_TIMEOUT_S 60u
#define DISCARD_FACTOR 4  /* body bytes read past max_body, in max_bodies, before giving up */
#define LISTEN_BACKLOG 64
#define TOKEN_BYTES 16

static void run_mhd(struct ks_http *h);

/* ---- options, token, names ---- */

void ks_http_opts_init(struct ks_http_opts *o)
{
	*o = (struct ks_http_opts){
		.addr = "127.0.0.1",
		.max_body = KS_HTTP_DEFAULT_MAX_BODY,
		.max_queue = KS_HTTP_DEFAULT_MAX_QUEUE,
	};
}

static int make_token(struct ks_http *h, const char *given, struct ks_error *err)
{
	unsigned char raw[TOKEN_BYTES];

	if (given) {
		if (!*given)
			return ks_error_set(err, -EINVAL, "http: the token is empty");
		h->token = strdup(given);
		return h->token ? 0 : ks_error_set(err, -ENOMEM, "http: out of memory");
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return ks_error_set(err, -errno, "http: getrandom: %s", strerror(errno));
	h->token = malloc(2 * TOKEN_BYTES + 1);
	if (!h->token)
		return ks_error_set(err, -ENOMEM, "http: out of memory");
	for (size_t i = 0; i < TOKEN_BYTES; i++)
		sprintf(h->token + 2 * i, "%02x", raw[i]);
	return 0;
}

/* The token as a query value: a caller's token may hold characters a URL cannot. */
static char *url_escape(const char *s)
{
	char *out = malloc(3 * strlen(s) + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    strchr("-._~", c))
			*p++ = (char)c;
		else
			p += sprintf(p, "%%%02X", c);
	}
	*p = '\0';
	return out;
}

/* "ADDR:PORT" with IPv6 in brackets; "ADDR" alone when bare (port 80 in a Host header). */
static char *host_port(const char *addr, int family, uint16_t port, bool bare)
{
	const char *l = family == AF_INET6 ? "[" : "", *r = family == AF_INET6 ? "]" : "";
	char *s;
	int n;

	if (bare)
		n = asprintf(&s, "%s%s%s", l, addr, r);
	else
		n = asprintf(&s, "%s%s%s:%u", l, addr, r, port);
	return n < 0 ? NULL : s;
}

/* The name to put in the URL: a wildcard address is no place to browse to, the machine's
 * name is (the URL is for someone on another machine then). */
static const char *url_host(const char *addr, int *family, char *buf, size_t size)
{
	if (strcmp(addr, "0.0.0.0") && strcmp(addr, "::"))
		return addr;
	if (gethostname(buf, size) < 0 || !buf[0])
		return addr;
	buf[size - 1] = 0;
	*family = AF_INET;  /* a name: no brackets */
	return buf;
}

static int make_names(struct ks_http *h, const char *addr, struct ks_error *err)
{
	char name[256];
	int family = h->family;
	const char *shown = url_host(addr, &family, name, sizeof(name));
	char *where = host_port(shown, family, h->port, false), *tok = url_escape(h->token);
	bool ok = where && tok && asprintf(&h->url, "http://%s/?token=%s", where, tok) >= 0;
	int n = 0;

	free(where);
	free(tok);
	/* Browsers leave ":80" out of the Host header. */
	for (int bare = 0; bare <= (h->port == 80); bare++) {
		h->hosts[n++] = host_port("127.0.0.1", AF_INET, h->port, bare);
		h->hosts[n++] = host_port("localhost", AF_INET, h->port, bare);
		h->hosts[n++] = host_port(addr, h->family, h->port, bare);
	}
	for (int i = 0; i < n; i++)
		ok = ok && h->hosts[i];
	return ok ? 0 : ks_error_set(err, -ENOMEM, "http: out of memory");
}

/* ---- driving libmicrohttpd from the loop ---- */

static void on_timeout(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_http *h = data;

	(void)l;
	(void)id;
	h->timeout_timer = 0;
	run_mhd(h);
}

static void on_kick(struct ks_loop *l, int64_t id, void *data)
{
	struct ks_http *h = data;

	(void)l;
	(void)id;
	h->kick_timer = 0;
	run_mhd(h);
}

static void on_mhd_fd(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	(void)l;
	(void)fd;
	(void)events;
	run_mhd(data);
}

void ks_http_kick(struct ks_http *h)
{
	int64_t id;

	if (h->kick_timer)
		return;
	id = ks_loop_add_timer(h->loop, 0, 0, on_kick, h);
	/* Without a timer the resume still wakes libmicrohttpd's epoll fd: only later. */
	h->kick_timer = id > 0 ? id : 0;
}

static void rearm(struct ks_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	int64_t id;

	if (h->timeout_timer)
		ks_loop_del_timer(h->loop, h->timeout_timer);
	h->timeout_timer = 0;
	if (MHD_get_timeout(h->mhd, &ms) != MHD_YES)
		return;
	ms = ms < MAX_TIMEOUT_MS ? ms : MAX_TIMEOUT_MS;
	id = ks_loop_add_timer(h->loop, ms * MS, 0, on_timeout, h);
	h->timeout_timer = id > 0 ? id : 0;
}

/*
 * libmicrohttpd is not reentrant: a handler that runs the loop (nested) must not run it
 * again. Its fd is muted meanwhile (it is level-triggered and would spin the nested loop)
 * and a run is made once the outer one is over.
 */
static void run_mhd(struct ks_http *h)
{
	if (h->running) {
		h->missed = true;
		if (!h->muted && h->epfd >= 0)
			h->muted = ks_loop_mod_fd(h->loop, h->epfd, 0) == 0;
		return;
	}
	h->running++;
	MHD_run(h->mhd);
	h->running--;
	if (h->muted) {
		h->muted = false;
		ks_loop_mod_fd(h->loop, h->epfd, KS_LOOP_IN);
	}
	if (h->missed) {
		h->missed = false;
		ks_http_kick(h);
	}
	rearm(h);
}

/* ---- checks made before a request is routed ---- */

static bool contains_ci(const char *s, size_t n, const char *what)
{
	size_t w = strlen(what);

	for (size_t i = 0; i + w <= n; i++)
		if (!strncasecmp(s + i, what, w))
			return true;
	return false;
}

/* Whether a raw path (still percent-encoded) names nothing outside the served tree. */
static bool path_ok(const char *p, size_t n)
{
	static const char *const bad[] = { "..", "//", "\\", "%2f", "%2e", "%5c", "%00" };

	if (n == 0 || p[0] != '/')
		return false;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (contains_ci(p, n, bad[i]))
			return false;
	return true;
}

static bool host_ok(const struct ks_http *h, const char *host)
{
	if (h->any_host)
		return true;
	for (int i = 0; host && i < KS_HTTP_MAX_HOSTS && h->hosts[i]; i++)
		if (!strcasecmp(host, h->hosts[i]))
			return true;
	return false;
}

static bool method_ok(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "POST");
}

/* A declared Content-Length over the limit is refused before a byte of the body is read. */
static bool body_too_big(const struct ks_http_req *rq)
{
	const char *cl = ks_http_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return cl && strtoull(cl, NULL, 10) > rq->h->max_body;
}

/* Called with the raw target as soon as the request line is read: the request starts here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct ks_http_req *rq = calloc(1, sizeof(*rq));

	if (!rq)
		return NULL;
	rq->h = cls;
	rq->conn = conn;
	rq->target_len = strlen(uri);
	rq->bad_path = !path_ok(uri, strcspn(uri, "?"));
	return rq;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ctx,
		    enum MHD_RequestTerminationCode toe)
{
	struct ks_http_req *rq = *ctx;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*ctx = NULL;
}

/* ---- answers ---- */

int ks_http_queue_answer(struct ks_http_req *rq, unsigned status, const char *type,
			struct MHD_Response *resp)
{
	bool ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) &&
		  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") &&
		  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") &&
		  /* The URL carries the token: keep it out of Referer headers. */
		  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") &&
		  MHD_add_response_header(resp, "X-Frame-Options", "DENY");

	if (ok && status == MHD_HTTP_METHOD_NOT_ALLOWED)
		ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
	ok = ok && MHD_queue_response(rq->conn, status, resp) == MHD_YES;
	MHD_destroy_response(resp);
	if (!ok)
		return -ENOMEM;
	rq->answered = true;
	return 0;
}

int ks_http_reply(struct ks_http_req *rq, unsigned status, const char *content_type,
		  const void *body, size_t len)
{
	struct MHD_Response *resp;

	if (rq->answered)
		return -EALREADY;
	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return -ENOMEM;
	return ks_http_queue_answer(rq, status, content_type, resp);
}

int ks_http_reply_json(struct ks_http_req *rq, unsigned status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	int r;

	json_decref(v);
	if (!s) {
		ks_http_reply_error(rq, 500, "out of memory");
		return -ENOMEM;
	}
	r = ks_http_reply(rq, status, "application/json", s, strlen(s));
	free(s);
	return r;
}

/* The message as a JSON string on one line, whatever bytes the caller formatted. */
static json_t *one_line(char *msg)
{
	json_t *s;

	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	s = json_string(msg);
	if (s)
		return s;
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	return json_string(msg);
}

int ks_http_reply_error(struct ks_http_req *rq, unsigned status, const char *fmt, ...)
{
	char msg[512];
	json_t *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s = one_line(msg);
	return ks_http_reply_json(rq, status, s ? json_pack("{s:o}", "error", s) : NULL);
}

/* ---- requests ---- */

const char *ks_http_method(const struct ks_http_req *rq)
{
	return rq->method;
}

const char *ks_http_path(const struct ks_http_req *rq)
{
	return rq->path;
}

const char *ks_http_query(const struct ks_http_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ks_http_header(const struct ks_http_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *ks_http_body(const struct ks_http_req *rq, size_t *len)
{
	if (len)
		*len = rq->body_len;
	return rq->body ? rq->body : "";
}

/* Compares in time that depends on the length of want only, never on where they differ. */
static bool same_secret(const char *given, const char *want)
{
	size_t n = strlen(want), m = strlen(given);
	volatile unsigned char diff = n != m;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? given[i] : 0);
	return diff == 0;
}

bool ks_http_token_ok(const struct ks_http_req *rq)
{
	const char *hdr = ks_http_header(rq, KS_HTTP_TOKEN_HEADER);
	const char *q = ks_http_query(rq, "token");
	bool ok = false;

	/* Both are compared, so that which one was sent does not show in the time taken. */
	ok |= hdr && same_secret(hdr, rq->h->token);
	ok |= q && same_secret(q, rq->h->token);
	return ok;
}

/* ---- routing ---- */

/* The first call, headers read: refuses what no handler should see. */
static void check_request(struct ks_http_req *rq)
{
	struct ks_http *h = rq->h;

	if (rq->target_len > KS_HTTP_MAX_TARGET)
		ks_http_reply_error(rq, 414, "request target over %u bytes", KS_HTTP_MAX_TARGET);
	else if (!method_ok(rq->method))
		ks_http_reply_error(rq, 405, "method not allowed (GET, HEAD and POST are)");
	else if (!host_ok(h, ks_http_header(rq, MHD_HTTP_HEADER_HOST)))
		ks_http_reply_error(rq, 421, "Host header names another server");
	else if (rq->bad_path)
		ks_http_reply_error(rq, 400, "path refused");
	else if (body_too_big(rq))
		ks_http_reply_error(rq, 413, "body over %zu bytes", h->max_body);
}

/*
 * Keeps the body; false when the connection is to be closed. A chunked body has no length
 * to check first: it is caught here, and as libmicrohttpd cannot answer before the body
 * ends, the rest is read and dropped for the 413, up to a bound.
 */
static bool take_body(struct ks_http_req *rq, const char *data, size_t n)
{
	size_t max = rq->h->max_body, cap;
	char *p;

	if (rq->too_big || n > max - rq->body_len) {
		rq->too_big = true;
		rq->discarded += n;
		return rq->discarded <= DISCARD_FACTOR * max;
	}
	if (rq->answered)
		return true;
	if (rq->body_len + n + 1 > rq->body_cap) {
		cap = rq->body_cap ? rq->body_cap : 1024;
		while (cap < rq->body_len + n + 1)
			cap *= 2;
		cap = cap < max + 1 ? cap : max + 1;
		if (!(p = realloc(rq->body, cap)))
			return false;
		rq->body = p;
		rq->body_cap = cap;
	}
	memcpy(rq->body + rq->body_len, data, n);
	rq->body_len += n;
	rq->body[rq->body_len] = '\0';
	return true;
}

static const struct ks_http_file *find_file(const struct ks_http *h, const char *path)
{
	if (!strcmp(path, "/"))
		path = "/index.html";
	for (const struct ks_http_file *f = h->files; f && f->path; f++)
		if (!strcmp(f->path, path))
			return f;
	return NULL;
}

static void serve_file(struct ks_http_req *rq)
{
	const struct ks_http_file *f = find_file(rq->h, rq->path);
	struct MHD_Response *resp;

	if (!f) {
		ks_http_reply_error(rq, 404, "not found");
		return;
	}
	if (!strcmp(rq->method, "POST")) {
		ks_http_reply_error(rq, 405, "a static file takes GET or HEAD");
		return;
	}
	resp = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
	if (resp)
		ks_http_queue_answer(rq, 200, f->content_type, resp);
}

/* The last call, body read: a static file, or the handler for "/api/". */
static void route(struct ks_http_req *rq)
{
	struct ks_http *h = rq->h;

	if (rq->too_big)
		ks_http_reply_error(rq, 413, "body over %zu bytes", h->max_body);
	else if (strncmp(rq->path, "/api/", 5))
		serve_file(rq);
	else if (h->handler)
		h->handler(rq, h->data);
	else
		ks_http_reply_error(rq, 404, "no API here");
	if (!rq->answered)
		ks_http_reply_error(rq, 500, "the request got no answer");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **ctx)
{
	struct ks_http_req *rq = *ctx;

	(void)cls;
	(void)conn;
	(void)version;
	if (!rq)
		return MHD_NO;  /* out of memory when the request began */
	if (!rq->started) {
		rq->started = true;
		rq->method = method;
		rq->path = url;
		check_request(rq);
		return MHD_YES;
	}
	if (*upload_size) {
		bool keep = take_body(rq, upload, *upload_size);

		*upload_size = 0;
		return keep ? MHD_YES : MHD_NO;
	}
	if (!rq->answered)
		route(rq);
	/* Still unanswered: not even a 500 could be queued, so the connection goes. */
	return rq->answered ? MHD_YES : MHD_NO;
}

/* ---- the server ---- */

static int listen_on(struct ks_http *h, const char *addr, uint16_t port, struct ks_error *err)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM }, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char serv[8];
	int fd, one = 1, e;

	snprintf(serv, sizeof(serv), "%u", port);
	if (getaddrinfo(addr, serv, &hints, &ai) != 0)
		return ks_error_set(err, -EINVAL, "http: '%s' is not an IPv4 or IPv6 address", addr);
	h->family = ai->ai_family;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
			(h->family == AF_INET6 &&
			 setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
			bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ||
			getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)) {
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return ks_error_set(err, -errno, "http: cannot listen on %s%s%s:%u: %s%s",
				    h->family == AF_INET6 ? "[" : "", addr,
				    h->family == AF_INET6 ? "]" : "", port, strerror(errno),
				    errno == EADDRINUSE ? " (choose another port, or 0 for any)" : "");
	h->port = ntohs(h->family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* Why MHD_start_daemon() failed: libmicrohttpd missing (then fd is closed), or refusing. */
static int mhd_start_error(int fd, struct ks_error *err)
{
	const char *why = ks_mhd_load_error();

	if (!why)
		return ks_error_set(err, -EIO, "http: libmicrohttpd did not start");
	close(fd);
	return ks_error_set(err, -ENOTSUP, "http: %s", why);
}

static int start_mhd(struct ks_http *h, int fd, struct ks_error *err)
{
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			 (h->family == AF_INET6 ? MHD_USE_IPv6 : 0);
	const union MHD_DaemonInfo *info;
	int r;

	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
				  MHD_OPTION_NOTIFY_COMPLETED, on_done, h,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
				  MHD_OPTION_END);
	/*
	 * A failed start leaves fd open, unless libmicrohttpd could not be loaded and never saw
	 * it: the library closes a socket it was given on some failure paths and not on others,
	 * and a leak is safer than closing a number now reused.
	 */
	if (!h->mhd)
		return mhd_start_error(fd, err);
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		return ks_error_set(err, -EIO, "http: libmicrohttpd has no epoll fd");
	r = ks_loop_add_fd(h->loop, info->epoll_fd, KS_LOOP_IN, on_mhd_fd, h);
	if (r < 0)
		return ks_error_set(err, r, "http: cannot watch libmicrohttpd's fd: %s", strerror(-r));
	h->epfd = info->epoll_fd;
	rearm(h);
	return 0;
}

static void copy_opts(struct ks_http *h, struct ks_loop *loop, const struct ks_http_opts *o)
{
	h->loop = loop;
	h->epfd = -1;
	h->any_host = o->any_host;
	h->max_body = o->max_body ? o->max_body : KS_HTTP_DEFAULT_MAX_BODY;
	h->max_queue = o->max_queue ? o->max_queue : KS_HTTP_DEFAULT_MAX_QUEUE;
	h->keepalive_ns = o->keepalive_ms ? o->keepalive_ms * MS : KEEPALIVE_NS;
	h->coalesce_ns = (o->coalesce_ms ? o->coalesce_ms : COALESCE_MS) * MS;
	h->files = o->files;
	h->handler = o->handler;
	h->data = o->data;
}

struct ks_http *ks_http_new(struct ks_loop *loop, const struct ks_http_opts *opts,
			    struct ks_error *err)
{
	const char *addr = opts->addr ? opts->addr : "127.0.0.1";
	struct ks_http *h = calloc(1, sizeof(*h));
	int fd;

	if (!h) {
		ks_error_set(err, -ENOMEM, "http: out of memory");
		return NULL;
	}
	copy_opts(h, loop, opts);
	if (h->max_queue < MIN_QUEUE) {
		ks_error_set(err, -EINVAL, "http: max_queue under %u bytes", MIN_QUEUE);
		goto out;
	}
	if (make_token(h, opts->token, err) < 0)
		goto out;
	fd = listen_on(h, addr, opts->port, err);
	if (fd < 0)
		goto out;
	if (make_names(h, addr, err) < 0) {
		close(fd);
		goto out;
	}
	if (start_mhd(h, fd, err) < 0)
		goto out;
	return h;
out:
	ks_http_free(h);
	return NULL;
}

void ks_http_free(struct ks_http *h)
{
	if (!h)
		return;
	/* Close callbacks first, and no connection left suspended: libmicrohttpd forbids it. */
	ks_http_streams_close(h);
	if (h->epfd >= 0)
		ks_loop_del_fd(h->loop, h->epfd);
	if (h->timeout_timer)
		ks_loop_del_timer(h->loop, h->timeout_timer);
	if (h->kick_timer)
		ks_loop_del_timer(h->loop, h->kick_timer);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	for (int i = 0; i < KS_HTTP_MAX_HOSTS; i++)
		free(h->hosts[i]);
	free(h->url);
	free(h->token);
	free(h);
}

uint16_t ks_http_port(const struct ks_http *h)
{
	return h->port;
}

const char *ks_http_token(const struct ks_http *h)
{
	return h->token;
}

const char *ks_http_url(const struct ks_http *h)
{
	return h->url;
}
