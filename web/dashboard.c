/* dashboard.c: the dashboard's server: its lifetime, the page's event streams and what is pushed to them. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dash_internal.h"
#include "web_files.h"

void ks_dash_opts_init(struct ks_dash_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = KS_DASH_WATCH;
}

/* Whether addr (an IP literal) is a loopback address. */
static bool loopback(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

struct ks_dash *ks_dash_new(struct ks_loop *loop, const struct ks_dash_opts *o,
			    struct ks_error *err)
{
	struct ks_dash *d = calloc(1, sizeof(*d));
	struct ks_http_opts ho;
	bool ok = true;

	if (!d) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->o = *o;
	d->title = dash_strdup(o->title, &ok);
	d->controls_why = dash_strdup(o->controls ? NULL : o->controls_why, &ok);
	d->started = time(NULL);
	/* The options keep no pointer into the caller's memory. */
	d->o.title = d->o.controls_why = d->o.addr = d->o.token = NULL;
	if (!ok) {
		ks_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	ks_http_opts_init(&ho);
	ho.addr = o->addr ? o->addr : "127.0.0.1";
	/* Listening beyond loopback was asked for explicitly: the page is then reached under
	 * names kscope cannot know, so the Host check would refuse it; the token still guards
	 * every action. On loopback the check stops DNS rebinding. */
	ho.any_host = !loopback(ho.addr);
	ho.port = o->port;
	ho.token = o->token;
	ho.files = ks_web_files;
	ho.handler = dash_api_handle;
	ho.data = d;
	if (!(d->http = ks_http_new(loop, &ho, err)))
		goto fail;
	return d;
fail:
	ks_dash_free(d);
	return NULL;
}

void ks_dash_free(struct ks_dash *d)
{
	if (!d)
		return;
	/* Its streams' close callbacks take them off the list. */
	ks_http_free(d->http);
	dash_state_free(d);
	free(d);
}

const char *ks_dash_url(const struct ks_dash *d)
{
	return ks_http_url(d->http);
}

uint16_t ks_dash_port(const struct ks_dash *d)
{
	return ks_http_port(d->http);
}

size_t ks_dash_streams(const struct ks_dash *d)
{
	size_t n = 0;

	for (const struct dash_client *c = d->clients; c; c = c->next)
		n++;
	return n;
}

void dash_broadcast(struct ks_dash *d, const char *name, json_t *data)
{
	struct dash_client *c, *next;

	if (!data)
		return;
	for (c = d->clients; c; c = next) {
		next = c->next;
		/* A page that cannot keep up loses events, counted: never the VM's time. */
		ks_http_stream_send(c->st, name, json_incref(data));
	}
	json_decref(data);
}

void ks_dash_flush(struct ks_dash *d, int64_t timeout_ns)
{
	uint64_t end = ks_loop_now_ns() + (uint64_t)(timeout_ns > 0 ? timeout_ns : 0);

	/* Ending the streams makes libmicrohttpd finish each response once its queue is out:
	 * only then are the last events (the VM's end, `end`) on their way to the pages. */
	ks_http_streams_close(d->http);
	while (ks_http_streams_closing(d->http) && ks_loop_now_ns() < end)
		if (ks_loop_run_once(d->loop, 10000000) < 0)
			break;
}
