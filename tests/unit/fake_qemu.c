/* fake_qemu.c: a stand-in for QEMU in VM start tests: listens on the sockets of its argv and speaks QMP. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/*
 * Like QEMU it creates a listening socket for every "-chardev socket,id=ID,path=P,...", opens
 * P.in and P.out of every "-chardev pipe,id=ID,path=P", sends
 * the QMP greeting on the "qmp" one as soon as a client connects, and answers commands only
 * from its "main loop". Options of its own, passed last: -fake-fail MSG (print MSG on stderr
 * and exit 1 before listening), -fake-up MS (start-up time before listening), -fake-init MS
 * (from listening to the main loop), -fake-caps MS (delay of the qmp_capabilities answer),
 * -fake-hang (never reach the main loop). At "cont" it writes a line on serial0.
 */

#define MAXSOCK 8

struct sock {
	char id[32], path[108];
	int listen_fd, fd;
	char in[8192];
	size_t inlen;
};

static struct sock socks[MAXSOCK];
static int nsocks;
static bool paused, negotiated;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The value of "path=" in a chardev spec (commas doubled in it) into out. */
static void chardev_path(const char *p, char *out, size_t size)
{
	size_t n = 0;

	for (p += 5; *p && n + 1 < size; p++) {
		if (*p == ',' && p[1] != ',')
			break;
		out[n++] = *p;
		p += *p == ',';
	}
	out[n] = 0;
}

static int serial0_out = -1;  /* serial0's P.out when it is a pipe chardev */

/* "pipe,id=ID,path=P": like QEMU, open P.in and P.out read-write, and keep them to the end. */
static void open_pipes(const char *spec)
{
	bool serial0 = strstr(spec, "id=serial0,") != NULL;
	int fd;
	const char *p = strstr(spec, "path=");
	char base[200], path[220];

	if (!p)
		return;
	chardev_path(p, base, sizeof(base));
	snprintf(path, sizeof(path), "%s.in", base);
	if (open(path, O_RDWR | O_CLOEXEC) < 0)
		fprintf(stderr, "fake-qemu: %s: %s\n", path, strerror(errno));
	snprintf(path, sizeof(path), "%s.out", base);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		fprintf(stderr, "fake-qemu: %s: %s\n", path, strerror(errno));
	if (serial0)
		serial0_out = fd;
}

/* "socket,id=ID,path=P,server=on,wait=off", commas in P doubled. */
static void add_chardev(const char *spec)
{
	struct sock *s = &socks[nsocks];
	const char *id = strstr(spec, "id="), *p = strstr(spec, "path=");
	size_t n = 0;

	if (!strncmp(spec, "pipe,", 5)) {
		open_pipes(spec);
		return;
	}
	if (strncmp(spec, "socket,", 7) || !id || !p || nsocks == MAXSOCK)
		return;
	snprintf(s->id, sizeof(s->id), "%.*s", (int)strcspn(id + 3, ","), id + 3);
	for (p += 5; *p && n + 1 < sizeof(s->path); p++) {
		if (*p == ',' && p[1] != ',')
			break;
		s->path[n++] = *p;
		p += *p == ',';
	}
	s->path[n] = 0;
	s->listen_fd = s->fd = -1;
	nsocks++;
}

static void listen_all(void)
{
	for (int i = 0; i < nsocks; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socks[i].path);
		unlink(sa.sun_path);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
			fprintf(stderr, "fake-qemu: %s: %s\n", sa.sun_path, strerror(errno));
			exit(1);
		}
		socks[i].listen_fd = fd;
	}
}

static struct sock *by_id(const char *id)
{
	for (int i = 0; i < nsocks; i++)
		if (!strcmp(socks[i].id, id))
			return &socks[i];
	return NULL;
}

static void say(struct sock *s, const char *text)
{
	if (s && s->fd >= 0 && send(s->fd, text, strlen(text), MSG_NOSIGNAL) < 0)
		s->fd = -1;
}

static void reply(struct sock *q, json_t *id, json_t *body, bool error)
{
	json_t *r = json_pack("{s:O}", error ? "error" : "return", body);
	char *text;

	if (id)
		json_object_set(r, "id", id);
	text = json_dumps(r, JSON_COMPACT);
	say(q, text);
	say(q, "\r\n");
	free(text);
	json_decref(r);
	json_decref(body);
}

/* An event, with its data (a JSON object's text) or none. */
static void event(struct sock *q, const char *name, const char *data)
{
	char text[256];

	snprintf(text, sizeof(text), "{\"timestamp\": {\"seconds\": 0, \"microseconds\": 0}, "
		 "\"event\": \"%s\"%s%s}\r\n", name, data ? ", \"data\": " : "",
		 data ? data : "");
	say(q, text);
}

/* One command, as QEMU's main loop answers it. Returns false at quit. */
static bool command(struct sock *q, const char *line, long caps_ms)
{
	json_t *cmd = json_loads(line, 0, NULL), *id = json_object_get(cmd, "id");
	const char *name = json_string_value(json_object_get(cmd, "execute"));
	bool go_on = true;

	if (!name) {
		reply(q, NULL, json_pack("{s:s,s:s}", "class", "GenericError", "desc", "bad"), true);
	} else if (!negotiated && strcmp(name, "qmp_capabilities")) {
		reply(q, id, json_pack("{s:s,s:s}", "class", "CommandNotFound", "desc",
				       "Expecting capabilities negotiation"), true);
	} else if (!strcmp(name, "qmp_capabilities")) {
		sleep_ms(caps_ms);
		negotiated = true;
		reply(q, id, json_object(), false);
	} else if (!strcmp(name, "cont") || !strcmp(name, "stop")) {
		paused = !strcmp(name, "stop");
		reply(q, id, json_object(), false);
		event(q, paused ? "STOP" : "RESUME", NULL);
		if (!paused) {
			say(by_id("serial0"), "fake-qemu: running\n");
			if (serial0_out >= 0 && write(serial0_out, "fake-qemu: running\n", 19) < 0)
				serial0_out = -1;
		}
	} else if (!strcmp(name, "query-status")) {
		reply(q, id, json_pack("{s:b,s:s}", "running", !paused, "status",
				       paused ? "paused" : "running"), false);
	} else {
		go_on = strcmp(name, "quit") != 0;
		reply(q, id, json_object(), false);
		if (!go_on)
			event(q, "SHUTDOWN", "{\"guest\": false, \"reason\": \"host-qmp-quit\"}");
	}
	json_decref(cmd);
	return go_on;
}

static void on_accept(struct sock *s)
{
	if (s->fd >= 0)
		return;
	s->fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (s->fd >= 0 && !strcmp(s->id, "qmp"))
		say(s, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
		    "\"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n");
}

/* Reads what a client sent; the QMP lines are answered once in the main loop. */
static bool on_input(struct sock *s, bool main_loop, long caps_ms)
{
	ssize_t n = recv(s->fd, s->in + s->inlen, sizeof(s->in) - s->inlen - 1, MSG_DONTWAIT);
	char *nl;

	if (n == 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (n > 0)
		s->inlen += (size_t)n;
	while (main_loop && !strcmp(s->id, "qmp") && (nl = memchr(s->in, '\n', s->inlen))) {
		*nl = 0;
		if (!command(s, s->in, caps_ms))
			return false;
		s->inlen -= (size_t)(nl + 1 - s->in);
		memmove(s->in, nl + 1, s->inlen);
	}
	if (!strcmp(s->id, "qmp"))
		return true;
	s->inlen = 0;
	return true;
}

static void serve(long init_ms, long caps_ms, bool hang)
{
	long main_at = now_ms() + init_ms;

	for (;;) {
		struct pollfd p[2 * MAXSOCK];
		bool main_loop = !hang && now_ms() >= main_at;
		int n = 0;

		for (int i = 0; i < nsocks; i++) {
			p[n++] = (struct pollfd){ .fd = socks[i].listen_fd, .events = POLLIN };
			p[n++] = (struct pollfd){ .fd = socks[i].fd, .events = POLLIN };
		}
		poll(p, (nfds_t)n, main_loop || hang ? 1000 : (int)(main_at - now_ms()) + 1);
		main_loop = !hang && now_ms() >= main_at;
		/* Clients first, as QEMU's main loop has them before a command it runs. */
		for (int i = 0; i < nsocks; i++)
			if (p[2 * i].revents & POLLIN)
				on_accept(&socks[i]);
		for (int i = 0; i < nsocks; i++) {
			if (socks[i].fd >= 0 && ((p[2 * i + 1].revents & (POLLIN | POLLHUP)) ||
						 main_loop) &&
			    !on_input(&socks[i], main_loop, caps_ms))
				return;
		}
	}
}

int main(int argc, char **argv)
{
	long up_ms = 0, init_ms = 0, caps_ms = 0;
	bool hang = false;
	const char *fail = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-chardev") && i + 1 < argc)
			add_chardev(argv[++i]);
		else if (!strcmp(argv[i], "-S"))
			paused = true;
		else if (!strcmp(argv[i], "-fake-fail") && i + 1 < argc)
			fail = argv[++i];
		else if (!strcmp(argv[i], "-fake-up") && i + 1 < argc)
			up_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "-fake-init") && i + 1 < argc)
			init_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "-fake-caps") && i + 1 < argc)
			caps_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "-fake-hang"))
			hang = true;
	}
	sleep_ms(up_ms);
	if (fail) {
		fprintf(stderr, "fake-qemu: %s\n", fail);
		return 1;
	}
	listen_all();
	serve(init_ms, caps_ms, hang);
	return 0;
}
