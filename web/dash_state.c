/* dash_state.c: the dashboard's model (VMs, the test tree, console lines) and its JSON. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dash_internal.h"

#define SEC 1000000000ll

const char *ks_dash_vm_state_name(enum ks_dash_vm_state s)
{
	static const char *const names[] = { "booting", "running", "paused", "ended" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *ks_dash_status_name(enum ks_dash_status s)
{
	static const char *const names[] = { "PENDING", "RUNNING", "PASS", "FAIL", "SKIP",
					     "TIMEOUT", "CRASHED", "NOTRUN" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

char *dash_strdup(const char *s, bool *ok)
{
	char *c;

	if (!s)
		return NULL;
	if (!(c = strdup(s)))
		*ok = false;
	return c;
}

bool dash_set_str(char **slot, const char *s, bool *ok)
{
	char *c;

	if ((!*slot && !s) || (*slot && s && !strcmp(*slot, s)))
		return false;
	if (s && !(c = strdup(s))) {
		*ok = false;
		return false;
	}
	free(*slot);
	*slot = s ? c : NULL;
	return true;
}

/* ---- VMs ---- */

struct dash_vm *dash_vm_find(const struct ks_dash *d, unsigned num)
{
	for (size_t i = 0; i < d->nvms; i++)
		if (d->vms[i]->num == num)
			return d->vms[i];
	return NULL;
}

/* VM num, added (in number order) when it is new. */
static struct dash_vm *vm_get(struct ks_dash *d, unsigned num)
{
	struct dash_vm *v = dash_vm_find(d, num), **grown;
	size_t at = 0;

	if (v)
		return v;
	if (!(v = calloc(1, sizeof(*v))) ||
	    !(grown = realloc(d->vms, (d->nvms + 1) * sizeof(*grown)))) {
		free(v);
		return NULL;
	}
	d->vms = grown;
	while (at < d->nvms && d->vms[at]->num < num)
		at++;
	memmove(d->vms + at + 1, d->vms + at, (d->nvms - at) * sizeof(*grown));
	d->vms[at] = v;
	d->nvms++;
	v->num = num;
	v->started_ns = ks_loop_now_ns();
	return v;
}

static void vm_free(struct dash_vm *v)
{
	for (size_t i = 0; i < KS_DASH_CONSOLE_LINES; i++)
		free(v->lines[i].text);
	free(v->name);
	free(v->accel);
	free(v->machine);
	free(v->kernel);
	free(v->outcome);
	free(v);
}

json_t *dash_vm_json(const struct dash_vm *v)
{
	uint64_t end = v->state == KS_DASH_VM_ENDED && v->ended_ns ? v->ended_ns
								  : ks_loop_now_ns();
	double up = end > v->started_ns ? (double)(end - v->started_ns) / SEC : 0;

	return json_pack("{s:i,s:s?,s:s,s:s?,s:s?,s:i,s:i,s:i,s:i,s:I,s:f,s:s?,s:s?}",
			 "vm", (int)v->num, "name", v->name,
			 "state", ks_dash_vm_state_name(v->state), "accel", v->accel,
			 "machine", v->machine, "cpus", (int)v->cpus, "sockets", (int)v->sockets,
			 "cores", (int)v->cores, "threads", (int)v->threads,
			 "memory_mib", (json_int_t)v->memory_mib, "uptime_s", up,
			 "kernel", v->kernel, "outcome", v->outcome);
}

static void push_vm(struct ks_dash *d, const struct dash_vm *v)
{
	dash_broadcast(d, "vm", dash_vm_json(v));
}

/* The fields of v->state that change with it: the end time, the outcome. */
static bool set_state(struct dash_vm *v, enum ks_dash_vm_state state, const char *outcome,
		      bool *ok)
{
	bool changed = v->state != state;

	if (changed && state == KS_DASH_VM_ENDED)
		v->ended_ns = ks_loop_now_ns();
	v->state = state;
	if (outcome || state != KS_DASH_VM_ENDED)
		changed |= dash_set_str(&v->outcome, outcome, ok);
	return changed;
}

int ks_dash_set_vm(struct ks_dash *d, const struct ks_dash_vm *in)
{
	struct dash_vm *v = vm_get(d, in->vm);
	bool ok = true, changed;

	if (!v)
		return -ENOMEM;
	changed = dash_set_str(&v->name, in->name, &ok);
	changed |= dash_set_str(&v->accel, in->accel, &ok);
	changed |= dash_set_str(&v->machine, in->machine, &ok);
	changed |= dash_set_str(&v->kernel, in->kernel, &ok);
	changed |= v->cpus != in->cpus || v->sockets != in->sockets || v->cores != in->cores ||
		   v->threads != in->threads || v->memory_mib != in->memory_mib;
	v->cpus = in->cpus, v->sockets = in->sockets, v->cores = in->cores;
	v->threads = in->threads, v->memory_mib = in->memory_mib;
	/* A VM that booted again is a new machine in the same slot. */
	if (in->started_ns && in->started_ns != v->started_ns) {
		changed |= in->started_ns > v->started_ns + SEC / 10 ||
			   v->started_ns > in->started_ns + SEC / 10;
		v->started_ns = in->started_ns;
	}
	changed |= set_state(v, in->state, in->outcome, &ok);
	if (changed)
		push_vm(d, v);
	return ok ? 0 : -ENOMEM;
}

int ks_dash_set_vm_state(struct ks_dash *d, unsigned vm, enum ks_dash_vm_state state,
			 const char *outcome)
{
	struct dash_vm *v = dash_vm_find(d, vm);
	bool ok = true;

	if (!v)
		return -ENOENT;
	if (set_state(v, state, outcome, &ok))
		push_vm(d, v);
	return ok ? 0 : -ENOMEM;
}

int ks_dash_vm_state(const struct ks_dash *d, unsigned vm)
{
	const struct dash_vm *v = dash_vm_find(d, vm);

	return v ? (int)v->state : -1;
}

void ks_dash_event(struct ks_dash *d, unsigned vm, json_t *ev)
{
	if (!ev)
		return;
	json_object_set_new(ev, "vm", json_integer(vm));
	dash_broadcast(d, "event", ev);
}

void ks_dash_paused(struct ks_dash *d, unsigned vm, const char *why)
{
	ks_dash_set_vm_state(d, vm, KS_DASH_VM_PAUSED, NULL);
	dash_broadcast(d, "paused", json_pack("{s:i,s:s}", "vm", (int)vm, "why",
					      why ? why : "paused"));
}

json_t *ks_dash_vms_json(const struct ks_dash *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->nvms; i++)
		json_array_append_new(a, dash_vm_json(d->vms[i]));
	return a;
}

/* ---- console ---- */

void ks_dash_console(struct ks_dash *d, unsigned vm, const char *text, size_t len, double ts,
		     uint64_t lineno)
{
	struct dash_vm *v = dash_vm_find(d, vm);
	struct dash_line *l;
	char *copy;

	if (!v || !(copy = strndup(text, len)))
		return;
	l = &v->lines[v->nlines++ % KS_DASH_CONSOLE_LINES];
	free(l->text);
	v->last_lineno = lineno ? lineno : v->last_lineno + 1;
	*l = (struct dash_line){ copy, ts, v->last_lineno };
	dash_broadcast(d, "console", json_pack("{s:i,s:s,s:f,s:I}", "vm", (int)vm, "line", copy,
					       "ts", ts, "lineno", (json_int_t)l->lineno));
}

json_t *ks_dash_console_json(const struct ks_dash *d, unsigned vm, size_t tail)
{
	const struct dash_vm *v = dash_vm_find(d, vm);
	uint64_t kept, first;
	json_t *lines;

	if (!v)
		return NULL;
	kept = v->nlines < KS_DASH_CONSOLE_LINES ? v->nlines : KS_DASH_CONSOLE_LINES;
	if (tail > kept)
		tail = (size_t)kept;
	first = v->nlines - tail;
	lines = json_array();
	for (uint64_t i = first; lines && i < v->nlines; i++) {
		const struct dash_line *l = &v->lines[i % KS_DASH_CONSOLE_LINES];

		json_array_append_new(lines, json_pack("{s:s,s:f,s:I}", "line", l->text, "ts",
						       l->ts, "lineno", (json_int_t)l->lineno));
	}
	return json_pack("{s:i,s:o}", "vm", (int)vm, "lines", lines);
}

/* ---- the test tree ---- */

static long find_case(const struct ks_dash *d, const char *suite, const char *name)
{
	for (size_t i = 0; i < d->ncases; i++)
		if (!strcmp(d->cases[i].name, name) && !strcmp(d->cases[i].suite, suite))
			return (long)i;
	return -1;
}

int ks_dash_case_status(const struct ks_dash *d, const char *suite, const char *name)
{
	long id = find_case(d, suite, name);

	return id < 0 ? -1 : (int)d->cases[id].status;
}

static long suite_get(struct ks_dash *d, const char *name)
{
	struct dash_suite *grown;

	for (size_t i = 0; i < d->nsuites; i++)
		if (!strcmp(d->suites[i].name, name))
			return (long)i;
	if (d->nsuites == d->suites_cap) {
		size_t cap = d->suites_cap ? 2 * d->suites_cap : 16;

		if (!(grown = realloc(d->suites, cap * sizeof(*grown))))
			return -ENOMEM;
		d->suites = grown;
		d->suites_cap = cap;
	}
	d->suites[d->nsuites] = (struct dash_suite){ .name = strdup(name) };
	if (!d->suites[d->nsuites].name)
		return -ENOMEM;
	return (long)d->nsuites++;
}

/* A new PENDING case suite.name at the end of its suite. Returns its id or -ENOMEM. */
static long case_add(struct ks_dash *d, const char *suite, const char *name)
{
	long si = suite_get(d, suite);
	struct dash_suite *s;
	struct dash_case *grown;
	size_t *ids;

	if (si < 0)
		return si;
	s = &d->suites[si];
	if (d->ncases == d->cases_cap) {
		size_t cap = d->cases_cap ? 2 * d->cases_cap : 64;

		if (!(grown = realloc(d->cases, cap * sizeof(*grown))))
			return -ENOMEM;
		d->cases = grown;
		d->cases_cap = cap;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;

		if (!(ids = realloc(s->cases, cap * sizeof(*ids))))
			return -ENOMEM;
		s->cases = ids;
		s->cap = cap;
	}
	d->cases[d->ncases] = (struct dash_case){ .suite = strdup(suite), .name = strdup(name),
						  .suite_idx = (size_t)si, .duration_ns = -1 };
	if (!d->cases[d->ncases].suite || !d->cases[d->ncases].name) {
		free(d->cases[d->ncases].suite);
		free(d->cases[d->ncases].name);
		return -ENOMEM;
	}
	s->cases[s->n++] = d->ncases;
	return (long)d->ncases++;
}

long ks_dash_set_case(struct ks_dash *d, const struct ks_dash_case *in)
{
	long id = find_case(d, in->suite, in->name);
	struct dash_case *c;
	bool ok = true, changed = id < 0;

	if (id < 0 && (id = case_add(d, in->suite, in->name)) < 0)
		return id;
	c = &d->cases[id];
	changed |= c->status != in->status || c->vm != in->vm ||
		   c->duration_ns != in->duration_ns;
	c->status = in->status;
	c->vm = in->vm;
	c->duration_ns = in->duration_ns;
	changed |= dash_set_str(&c->reason, in->reason, &ok);
	changed |= dash_set_str(&c->fail_at, in->fail_at, &ok);
	changed |= dash_set_str(&c->diag, in->diag, &ok);
	changed |= dash_set_str(&c->dump, in->dump, &ok);
	if (changed)
		dash_broadcast(d, "test", dash_case_json(d, (size_t)id));
	return ok ? id : -ENOMEM;
}

void ks_dash_settle_running(struct ks_dash *d, unsigned vm, enum ks_dash_status status,
			    const char *reason)
{
	for (size_t i = 0; i < d->ncases; i++) {
		struct dash_case *c = &d->cases[i];
		bool ok = true;

		if (c->status != KS_DASH_RUNNING || (vm && c->vm != vm))
			continue;
		c->status = status;
		dash_set_str(&c->reason, reason, &ok);
		dash_broadcast(d, "test", dash_case_json(d, i));
	}
}

json_t *dash_case_json(const struct ks_dash *d, size_t id)
{
	const struct dash_case *c = &d->cases[id];
	json_t *dur = c->duration_ns >= 0 ? json_real(c->duration_ns / 1e6) : json_null();

	return json_pack("{s:I,s:s,s:s,s:s,s:o,s:o,s:s?,s:s?,s:s?,s:s?}", "id", (json_int_t)id,
			 "suite", c->suite, "name", c->name,
			 "status", ks_dash_status_name(c->status),
			 "vm", c->vm ? json_integer(c->vm) : json_null(), "duration_ms", dur,
			 "reason", c->reason, "fail_at", c->fail_at, "diag", c->diag,
			 "dump", c->dump);
}

/* A suite's status from its cases: RUNNING while one runs, PENDING before any ran, then the
 * worst result (FAIL for a failure, timeout, crash or a case that did not run), SKIP when all
 * skipped, else PASS. */
static const char *suite_status(const struct ks_dash *d, const struct dash_suite *s)
{
	size_t n[KS_DASH_NSTATUS] = { 0 };

	for (size_t i = 0; i < s->n; i++)
		n[d->cases[s->cases[i]].status]++;
	if (n[KS_DASH_RUNNING])
		return "RUNNING";
	if (n[KS_DASH_PENDING] == s->n)
		return "PENDING";
	if (n[KS_DASH_FAIL] || n[KS_DASH_TIMEOUT] || n[KS_DASH_CRASHED] || n[KS_DASH_NOTRUN])
		return n[KS_DASH_PENDING] ? "RUNNING" : "FAIL";
	if (n[KS_DASH_PENDING])
		return "RUNNING";
	return n[KS_DASH_SKIP] == s->n ? "SKIP" : "PASS";
}

static json_t *counts_json(const struct ks_dash *d)
{
	size_t n[KS_DASH_NSTATUS] = { 0 };

	for (size_t i = 0; i < d->ncases; i++)
		n[d->cases[i].status]++;
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "pass", (json_int_t)n[KS_DASH_PASS], "fail", (json_int_t)n[KS_DASH_FAIL],
			 "skip", (json_int_t)n[KS_DASH_SKIP],
			 "timeout", (json_int_t)n[KS_DASH_TIMEOUT],
			 "crashed", (json_int_t)n[KS_DASH_CRASHED],
			 "notrun", (json_int_t)n[KS_DASH_NOTRUN],
			 "running", (json_int_t)n[KS_DASH_RUNNING],
			 "pending", (json_int_t)n[KS_DASH_PENDING]);
}

json_t *ks_dash_tests_json(const struct ks_dash *d)
{
	json_t *suites;

	if (!d->nsuites)
		return json_null();
	suites = json_array();
	for (size_t i = 0; suites && i < d->nsuites; i++) {
		const struct dash_suite *s = &d->suites[i];
		json_t *cases = json_array();

		for (size_t j = 0; cases && j < s->n; j++)
			json_array_append_new(cases, dash_case_json(d, s->cases[j]));
		json_array_append_new(suites, json_pack("{s:s,s:s,s:o}", "name", s->name,
							"status", suite_status(d, s),
							"cases", cases));
	}
	return json_pack("{s:o,s:o}", "suites", suites, "counts", counts_json(d));
}

/* ---- info ---- */

json_t *ks_dash_info_json(const struct ks_dash *d)
{
	return json_pack("{s:s,s:s?,s:s,s:b,s:s?,s:o,s:o,s:I,s:s?,s:s?}",
			 "mode", d->o.mode == KS_DASH_RUN ? "run" : "watch", "title", d->title,
			 "version", KSCOPE_VERSION, "controls", d->o.controls,
			 "controls_why", d->controls_why, "vms", ks_dash_vms_json(d),
			 "tests", ks_dash_tests_json(d), "started", (json_int_t)d->started,
			 "events_why", d->events_why, "end", d->end);
}

void ks_dash_set_events_why(struct ks_dash *d, const char *why)
{
	bool ok = true;

	dash_set_str(&d->events_why, why, &ok);
}

void ks_dash_end(struct ks_dash *d, const char *why)
{
	bool ok = true;

	dash_set_str(&d->end, why ? why : "over", &ok);
	dash_broadcast(d, "end", json_pack("{s:s}", "why", why ? why : "over"));
}

void dash_state_free(struct ks_dash *d)
{
	for (size_t i = 0; i < d->nvms; i++)
		vm_free(d->vms[i]);
	free(d->vms);
	for (size_t i = 0; i < d->ncases; i++) {
		struct dash_case *c = &d->cases[i];

		free(c->suite), free(c->name), free(c->reason);
		free(c->fail_at), free(c->diag), free(c->dump);
	}
	free(d->cases);
	for (size_t i = 0; i < d->nsuites; i++) {
		free(d->suites[i].name);
		free(d->suites[i].cases);
	}
	free(d->suites);
	free(d->title), free(d->controls_why), free(d->events_why), free(d->end);
}
