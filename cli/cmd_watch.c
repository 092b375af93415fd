/* cmd_watch.c: `kscope watch`: the live dashboard of a VM that kscope vm start started. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/vm.h>

#include "commands.h"
#include "dashboard.h"
#include "inspect_cli.h"
#include "signals.h"

static const char *opt_port, *opt_listen;

static const struct ins_opt watch_opts[] = {
	{ "port", 0, "PORT", "serve on PORT (default 0: any free port)", &opt_port },
	{ "listen", 0, "ADDR", "listen on ADDR (default 127.0.0.1; an IPv4 or IPv6 address)",
	  &opt_listen },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd watch_cmd = {
	"watch", "NAME [--port PORT] [--listen ADDR]",
	"Serves the live dashboard of VM NAME (docs/dashboard.md) and prints its URL on stderr:\n"
	"the machine, its vCPUs' registers, the test tree (from kt_state and test events), the\n"
	"event timeline (test, vm, serial and magic events), memory, page tables and the\n"
	"console, with controls to pause, resume, step, snapshot, poke and set pause rules.\n"
	"Actions need the token of the URL. The page follows the VM through its supervisor,\n"
	"which streams its events to one client at a time: with kscope events attached, the\n"
	"page shows no events. While the page watches, a triple fault or a power-off pauses the\n"
	"VM with its state (as with kscope events) instead of ending it.\n"
	"\n"
	"Runs until the VM ends, then keeps serving (the page says the VM ended) until Ctrl-C.\n"
	"Over SSH: ssh -L PORT:127.0.0.1:PORT host, then open the URL locally.",
	watch_opts, 1, 1,
};

/* Parses --port and --listen. Returns 0, or 2 after saying what is wrong. */
static int check_opts(uint16_t *port)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char *end;
	unsigned long p = 0;

	*port = 0;
	if (opt_port) {
		p = strtoul(opt_port, &end, 10);
		if (end == opt_port || *end || p > 65535 || opt_port[0] == '-')
			return ins_fail(&watch_cmd, 2, "bad --port '%s' (0 to 65535; 0 picks a free "
					"one)", opt_port);
		*port = (uint16_t)p;
	}
	if (opt_listen && inet_pton(AF_INET, opt_listen, addr) != 1 &&
	    inet_pton(AF_INET6, opt_listen, addr) != 1)
		return ins_fail(&watch_cmd, 2, "bad --listen '%s' (an IPv4 or IPv6 address, such "
				"as 127.0.0.1 or ::1)", opt_listen);
	return 0;
}

static void on_signal(int sig, void *data)
{
	(void)sig;
	*(bool *)data = true;
}

/* Serves until a signal; says once when the VM ended. */
static void serve(struct ks_loop *loop, struct ks_dash_watch *w, const char *name,
		  const bool *stop)
{
	bool told = false;

	while (!*stop) {
		if (ks_loop_run_once(loop, -1) < 0)
			break;
		if (!told && ks_dash_watch_ended(w)) {
			fprintf(stderr, "kscope watch: VM '%s' ended; the dashboard stays until "
				"Ctrl-C\n", name);
			told = true;
		}
	}
}

int cmd_watch(int argc, char **argv)
{
	struct ks_dash_watch_opts o = { 0 };
	struct ks_error err = { 0 };
	struct ins_args a;
	struct ks_loop *loop = NULL;
	struct ks_dash_watch *w = NULL;
	struct ks_ctl_client *c;
	char rundir[PATH_MAX];
	bool stop = false;
	int rc;

	opt_port = opt_listen = NULL;
	rc = ins_parse(&watch_cmd, argc, argv, &a);
	if (rc != 0 || (rc = check_opts(&o.port)) != 0)
		return rc < 0 ? 0 : rc;
	if (!(c = ins_connect(&watch_cmd, a.pos[0], &rc)))
		return rc;
	snprintf(rundir, sizeof(rundir), "%s/%s", ks_vm_rundir_base(), a.pos[0]);
	o.name = a.pos[0];
	o.rundir = rundir;
	o.addr = opt_listen;
	rc = 1;
	if (!(loop = ks_loop_new(&err)) || cli_signals_catch(loop, on_signal, &stop, true) < 0) {
		ks_ctl_client_free(c);
		ins_fail(&watch_cmd, 1, "%s", err.msg[0] ? err.msg : "cannot set up the loop");
		goto out;
	}
	if (!(w = ks_dash_watch_new(loop, c, &o, &err))) {
		ins_fail(&watch_cmd, 1, "%s", err.msg);
		goto out;
	}
	fprintf(stderr, "kscope: dashboard at %s\n", ks_dash_url(ks_dash_watch_dash(w)));
	serve(loop, w, a.pos[0], &stop);
	rc = 0;
out:
	ks_dash_watch_free(w);
	if (loop)
		cli_signals_release(loop);
	ks_loop_free(loop);
	return rc;
}
