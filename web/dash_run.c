/* dash_run.c: the dashboard of `kscope run`: VMs, tests and console lines from the run's events and hooks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/inspect.h>
#include <kscope/sym.h>
#include <kscope/vm.h>

#include "dash_internal.h"

#define WHY_NO_CONTROLS "in a kscope run the run drives its VMs; use kscope vm start and " \
			"kscope watch to control a VM"
#define WHY_NO_INSPECT "a kscope run does not serve registers or page tables (it drives " \
		       "its VMs through gdb); use kscope vm start and kscope watch"

struct ks_dash_run {
	struct ks_dash *d;
	struct ks_run *run;           /* for its results, and memory reads */
	struct ks_vmspec_topology topo;
	struct ks_vmspec *spec;       /* a copy, for the accelerator's choice and the VM cards */
	struct ks_symtab *syms;       /* the kernel's, for /api/symbol; NULL when it has none */
	char syms_why[256];
	size_t planned;               /* tests of the run's plan already in the model */
};

/* ---- the backend: symbols from the kernel file; nothing that needs the VM ---- */

static int symbol(struct ks_dash_run *dr, json_t *req, json_t **reply, struct ks_error *err)
{
	const char *expr = json_string_value(json_object_get(req, "expr"));
	const struct ks_sym *sym;
	ks_gva_t addr;
	uint64_t off;
	char buf[256];
	int rc;

	if (!dr->syms)
		return ks_error_set(err, -ENOENT, "the kernel has no symbols (%s)", dr->syms_why);
	if ((rc = ks_sym_parse(dr->syms, expr ? expr : "", &addr, err)) < 0)
		return rc;
	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)addr);
	*reply = json_pack("{s:s,s:I}", "addr", buf, "count", (json_int_t)ks_sym_count(dr->syms));
	if ((sym = ks_sym_at(dr->syms, addr, &off)) &&
	    ks_inspect_symbolize(dr->syms, addr, buf, sizeof(buf)) == 0) {
		json_object_set_new(*reply, "symbol", json_string(buf));
		json_object_set_new(*reply, "name", json_string(sym->name));
		json_object_set_new(*reply, "offset", json_integer((json_int_t)off));
		json_object_set_new(*reply, "size", json_integer((json_int_t)sym->size));
	}
	return *reply ? 0 : ks_error_set(err, -ENOMEM, "out of memory");
}

/*
 * Memory straight from the VM's RAM mapping, as the supervisor's `read` answers: the run
 * drives the VM through gdb, but reading its RAM needs neither a stop nor the gdbstub.
 */
static int read_mem(struct ks_dash_run *dr, unsigned vm, json_t *req, json_t **reply,
		    struct ks_error *err)
{
	const char *addr_s = json_string_value(json_object_get(req, "addr"));
	json_int_t len = json_integer_value(json_object_get(req, "len"));
	bool phys = json_is_true(json_object_get(req, "phys"));
	uint64_t addr, pa = 0;
	uint8_t buf[KS_DASH_MAX_READ];
	char *hex, pa_s[24], sym[256];
	int rc;

	if (!dr->run)
		return ks_error_set(err, -ENODEV, "the run has not started yet");
	if (!addr_s || len < 1 || len > KS_DASH_MAX_READ)
		return ks_error_set(err, -EINVAL, "read: needs addr and a len of 1 to %u",
				    KS_DASH_MAX_READ);
	addr = strtoull(addr_s, NULL, 0);
	if ((rc = ks_run_read(dr->run, vm, addr, phys, buf, (size_t)len, &pa, err)) < 0)
		return rc;
	if (!(hex = ks_inspect_hex_encode(buf, (size_t)len)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	snprintf(pa_s, sizeof(pa_s), "0x%llx", (unsigned long long)pa);
	*reply = json_pack("{s:s,s:s,s:s}", "addr", addr_s, "data", hex, "pa", pa_s);
	free(hex);
	if (*reply && !phys && dr->syms && ks_inspect_symbolize(dr->syms, addr, sym,
								sizeof(sym)) == 0)
		json_object_set_new(*reply, "symbol", json_string(sym));
	return *reply ? 0 : ks_error_set(err, -ENOMEM, "out of memory");
}

static int run_call(void *data, unsigned vm, json_t *req, json_t **reply, struct ks_error *err)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (cmd && !strcmp(cmd, "symbol"))
		return symbol(data, req, reply, err);
	if (cmd && !strcmp(cmd, "read"))
		return read_mem(data, vm, req, reply, err);
	return ks_error_set(err, -EOPNOTSUPP, "%s", WHY_NO_INSPECT);
}

/* ---- life ---- */

struct ks_dash_run *ks_dash_run_new(struct ks_loop *loop, const struct ks_dash_run_opts *o,
				    struct ks_error *err)
{
	struct ks_dash_run *dr = calloc(1, sizeof(*dr));
	struct ks_dash_opts dopts;
	const char *base;
	struct ks_error e = { 0 };

	if (!dr) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	if (!(dr->spec = ks_vmspec_dup(o->spec, err)))
		goto fail;
	ks_vmspec_topology(o->spec, &dr->topo, NULL);
	if (!(dr->syms = ks_sym_load(o->spec->kernel, &e)))
		snprintf(dr->syms_why, sizeof(dr->syms_why), "%s", e.msg);
	base = strrchr(o->spec->kernel, '/');
	ks_dash_opts_init(&dopts);
	dopts.mode = KS_DASH_RUN;
	dopts.title = base ? base + 1 : o->spec->kernel;
	dopts.addr = o->addr;
	dopts.port = o->port;
	dopts.token = o->token;
	dopts.controls_why = WHY_NO_CONTROLS;
	dopts.call = run_call;
	dopts.data = dr;
	if (!(dr->d = ks_dash_new(loop, &dopts, err)))
		goto fail;
	return dr;
fail:
	ks_dash_run_free(dr);
	return NULL;
}

void ks_dash_run_free(struct ks_dash_run *dr)
{
	if (!dr)
		return;
	ks_dash_free(dr->d);
	ks_sym_free(dr->syms);
	ks_vmspec_free(dr->spec);
	free(dr);
}

void ks_dash_run_attach(struct ks_dash_run *dr, struct ks_run *r)
{
	dr->run = r;
}

struct ks_dash *ks_dash_run_dash(struct ks_dash_run *dr)
{
	return dr->d;
}

/* ---- the model from the run's events ---- */

static enum ks_dash_status status_of(enum ks_run_status s)
{
	switch (s) {
	case KS_RUN_PASS: return KS_DASH_PASS;
	case KS_RUN_FAIL: return KS_DASH_FAIL;
	case KS_RUN_SKIP: return KS_DASH_SKIP;
	case KS_RUN_TIMEOUT: return KS_DASH_TIMEOUT;
	case KS_RUN_CRASHED: return KS_DASH_CRASHED;
	default: return KS_DASH_NOTRUN;
	}
}

/* Every test of the plan not in the model yet, PENDING (a kernel without kt_ makes its plan
 * known as its KTAP comes). */
static void sync_plan(struct ks_dash_run *dr)
{
	size_t n = dr->run ? ks_run_ntests(dr->run) : 0;

	for (; dr->planned < n; dr->planned++) {
		const struct ks_run_test *t = ks_run_test(dr->run, dr->planned);
		struct ks_dash_case c = { t->suite, t->name, KS_DASH_PENDING, 0, -1, NULL, NULL,
					  NULL, NULL };

		ks_dash_set_case(dr->d, &c);
	}
}

/* Test i as the run knows it in round. */
static void take_result(struct ks_dash_run *dr, unsigned round, size_t i)
{
	const struct ks_run_test *t = ks_run_test(dr->run, i);
	const struct ks_run_result *res = ks_run_result(dr->run, round, i);
	struct ks_dash_case c;

	if (!t || !res)
		return;
	c = (struct ks_dash_case){ t->suite, t->name, status_of(res->status), res->vm,
				   res->duration_ns, res->reason, res->fail_at, res->diag,
				   res->dump };
	ks_dash_set_case(dr->d, &c);
}

/* A test that ran is RUNNING before it has its result, also when it was too quick for the
 * run to see it start: a page always sees PENDING, RUNNING, then the result. */
static void test_end(struct ks_dash_run *dr, const struct ks_run_event *ev)
{
	const struct ks_run_test *t = ks_run_test(dr->run, ev->test);
	struct ks_dash_case c;

	if (t && ev->status != KS_RUN_NOTRUN &&
	    ks_dash_case_status(dr->d, t->suite, t->name) != KS_DASH_RUNNING) {
		c = (struct ks_dash_case){ t->suite, t->name, KS_DASH_RUNNING, ev->vm, -1, NULL,
					   NULL, NULL, NULL };
		ks_dash_set_case(dr->d, &c);
	}
	take_result(dr, ev->round, ev->test);
}

static void test_start(struct ks_dash_run *dr, const struct ks_run_event *ev)
{
	const struct ks_run_test *t = ks_run_test(dr->run, ev->test);
	struct ks_dash_case c;

	if (!t)
		return;
	c = (struct ks_dash_case){ t->suite, t->name, KS_DASH_RUNNING, ev->vm, -1, NULL, NULL,
				   NULL, NULL };
	ks_dash_set_case(dr->d, &c);
	if (ks_dash_vm_state(dr->d, ev->vm) == KS_DASH_VM_BOOTING)
		ks_dash_set_vm_state(dr->d, ev->vm, KS_DASH_VM_RUNNING, NULL);
}

static void vm_start(struct ks_dash_run *dr, const struct ks_run_event *ev)
{
	struct ks_dash_vm v = {
		.vm = ev->vm, .name = ev->text, .state = KS_DASH_VM_BOOTING,
		/* The run has made its choice by now: this asks the process's cache. */
		.accel = ks_accel_name(ks_vm_pick_accel(dr->spec, NULL)),
		.machine = ks_machine_name(dr->spec->machine), .kernel = dr->spec->kernel,
		.cpus = dr->topo.cpus, .sockets = dr->topo.sockets, .cores = dr->topo.cores,
		.threads = dr->topo.threads, .memory_mib = ks_vmspec_memory_mib(dr->spec),
		.started_ns = ks_loop_now_ns(),
	};

	ks_dash_set_vm(dr->d, &v);
}

void ks_dash_run_event(const struct ks_run_event *ev, void *data)
{
	struct ks_dash_run *dr = data;

	if (!dr->run)
		return;
	switch (ev->kind) {
	case KS_RUN_EV_PLAN:
		sync_plan(dr);
		break;
	case KS_RUN_EV_VM_START:
		vm_start(dr, ev);
		break;
	case KS_RUN_EV_PASS:
		ks_dash_set_vm_state(dr->d, ev->vm, KS_DASH_VM_RUNNING, NULL);
		break;
	case KS_RUN_EV_TEST_START:
		sync_plan(dr);
		test_start(dr, ev);
		break;
	case KS_RUN_EV_TEST_END:
		sync_plan(dr);
		test_end(dr, ev);
		break;
	case KS_RUN_EV_VM_END:
		ks_dash_set_vm_state(dr->d, ev->vm, KS_DASH_VM_ENDED, ev->text);
		break;
	default:
		break;
	}
}

void ks_dash_run_line(unsigned vm, const struct ks_chan_line *line, void *data)
{
	struct ks_dash_run *dr = data;

	/* Numbered by the dashboard: a slot's lines go on counting across its boots. */
	ks_dash_console(dr->d, vm, line->text, line->len, line->wall_ns / 1e9, 0);
}

void ks_dash_run_finish(struct ks_dash_run *dr, const char *why)
{
	struct ks_run_summary s;

	if (dr->run) {
		ks_run_summary(dr->run, &s);
		sync_plan(dr);
		/* A result may change after it was announced (a crash blamed later): the last
		 * round's results are the final ones. */
		for (size_t i = 0; s.rounds && i < ks_run_ntests(dr->run); i++)
			take_result(dr, s.rounds - 1, i);
	}
	for (size_t i = 0; i < dr->d->nvms; i++)
		if (dr->d->vms[i]->state != KS_DASH_VM_ENDED)
			ks_dash_set_vm_state(dr->d, dr->d->vms[i]->num, KS_DASH_VM_ENDED,
					     "the run ended");
	ks_dash_end(dr->d, why);
}
