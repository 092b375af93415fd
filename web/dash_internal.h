/* dash_internal.h: the ks_dash structure, shared by the dashboard's files. */
#ifndef KSCOPE_WEB_DASH_INTERNAL_H
#define KSCOPE_WEB_DASH_INTERNAL_H

#include <time.h>

#include "dashboard.h"
#include "http.h"

/* One console line kept for /api/console. */
struct dash_line {
	char *text;
	double ts;
	uint64_t lineno;
};

struct dash_vm {
	unsigned num;
	char *name, *accel, *machine, *kernel, *outcome;
	enum ks_dash_vm_state state;
	unsigned cpus, sockets, cores, threads;
	uint64_t memory_mib;
	uint64_t started_ns, ended_ns;
	struct dash_line lines[KS_DASH_CONSOLE_LINES];  /* a ring */
	uint64_t nlines;                                /* lines kept in all */
	uint64_t last_lineno;
};

struct dash_case {
	char *suite, *name;
	size_t suite_idx;
	enum ks_dash_status status;
	unsigned vm;
	int64_t duration_ns;
	char *reason, *fail_at, *diag, *dump;
};

struct dash_suite {
	char *name;
	size_t *cases;      /* ids into ks_dash.cases, in the suite's order */
	size_t n, cap;
};

/* An open event stream. */
struct dash_client {
	struct ks_dash *d;
	struct ks_http_stream *st;
	struct dash_client *prev, *next;
};

struct ks_dash {
	struct ks_loop *loop;
	struct ks_http *http;
	struct ks_dash_opts o;
	char *title, *controls_why, *events_why, *end;
	time_t started;
	struct dash_vm **vms;       /* sorted by number */
	size_t nvms;
	struct dash_case *cases;
	size_t ncases, cases_cap;
	struct dash_suite *suites;
	size_t nsuites, suites_cap;
	struct dash_client *clients;
};

/* The VM numbered num, or NULL. */
struct dash_vm *dash_vm_find(const struct ks_dash *d, unsigned num);

/* JSON of one VM and one case (new references). */
json_t *dash_vm_json(const struct dash_vm *v);
json_t *dash_case_json(const struct ks_dash *d, size_t id);

/* Sends event name with data (stolen) to every open stream. */
void dash_broadcast(struct ks_dash *d, const char *name, json_t *data);

/* Frees the model (VMs, cases, suites, strings). */
void dash_state_free(struct ks_dash *d);

/* The HTTP handler of every /api/ request (dash_api.c); data is the dashboard. */
void dash_api_handle(struct ks_http_req *rq, void *data);

/* POST /api/action (dash_action.c). */
void dash_action(struct ks_dash *d, struct ks_http_req *rq);

/* The HTTP status for a backend's -errno (see ks_dash_call_fn). */
unsigned dash_http_status(int rc);

/* A copy of s (NULL for NULL); *ok turns false when out of memory. */
char *dash_strdup(const char *s, bool *ok);

/* Replaces *slot with a copy of s; true when the value changed. */
bool dash_set_str(char **slot, const char *s, bool *ok);

#endif
