/* supervisor_inspect.c: how the supervisor looks inside its VM: symbols, RAM mapping, page tables, gdb registers, kt_ state. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/inspect.h>
#include <kscope/ktstate.h>
#include <kscope/vmmem.h>

#include "inspect_internal.h"

#define SEC 1000000000ll
#define GDB_CONNECT_NS (10 * SEC)
#define GDB_STOP_NS (2 * SEC)   /* for the stub's report of a pause already made */
#define MAX_CPU 4095

struct sup_inspect *sup_inspect_new(const char *kernel, const char *symbols,
				    struct ks_error *err)
{
	struct sup_inspect *in = calloc(1, sizeof(*in));
	struct ks_error e = { 0 };

	if (!in) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	if (symbols) {
		if (!(in->syms = ks_sym_load(symbols, &e))) {
			ks_error_set(err, e.code, "symbols: %s", e.msg);
			free(in);
			return NULL;
		}
		snprintf(in->syms_from, sizeof(in->syms_from), "%s", symbols);
	} else if (kernel && (in->syms = ks_sym_load(kernel, &e))) {
		snprintf(in->syms_from, sizeof(in->syms_from), "%s", kernel);
	} else {
		snprintf(in->syms_why, sizeof(in->syms_why), "%s", kernel ? e.msg : "no kernel");
	}
	return in;
}

void sup_inspect_free(struct sup_inspect *in)
{
	if (!in)
		return;
	ks_gdb_free(in->gdb);
	ks_vtop_free(in->vtop);
	ks_mem_free(in->mem);
	ks_sym_free(in->syms);
	free(in);
}

void sup_inspect_resumed(struct ks_supervisor *s)
{
	/* A step's RESUME may come after its stop reply: the client knows it stopped again. */
	if (s->inspect && s->inspect->own_resumes > 0) {
		s->inspect->own_resumes--;
		return;
	}
	if (s->inspect && s->inspect->gdb)
		ks_gdb_note_resumed(s->inspect->gdb);
}

json_t *sup_hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_string(buf);
}

void sup_add_symbol(struct ks_supervisor *s, json_t *o, uint64_t addr)
{
	char buf[256];

	if (ks_inspect_symbolize(s->inspect->syms, addr, buf, sizeof(buf)) == 0)
		json_object_set_new(o, "symbol", json_string(buf));
}

/* ---- one access ---- */

/* Fails the request when the VM is gone (as every other command does). */
static int need_vm(struct ks_supervisor *s, struct ks_error *err)
{
	if (s->ended || !s->vm || ks_vm_state(s->vm) == KS_VM_ENDED)
		return ks_error_set(err, -ENOTCONN, "the VM has ended (%s)", s->outcome.detail);
	return 0;
}

/* Resolves an address expression: numbers only for physical addresses, symbols otherwise. */
static int resolve(struct ks_supervisor *s, const char *expr, bool phys, uint64_t *addr,
		   struct ks_error *err)
{
	struct sup_inspect *in = s->inspect;
	int rc;

	if (phys || !in->syms) {
		rc = ks_sym_parse(NULL, expr, addr, err);
		if (rc == -ENOENT && phys)
			return ks_error_set(err, -EINVAL, "a physical address must be a number, "
					    "not a symbol ('%.64s')", expr);
		if (rc == -ENOENT)
			return ks_error_set(err, rc, "unknown symbol '%.64s': this VM has no "
					    "symbols (%.160s; give --symbols FILE)", expr,
					    in->syms_why);
		return rc;
	}
	return ks_sym_parse(in->syms, expr, addr, err);
}

int sup_access_parse(struct ks_supervisor *s, json_t *req, const char *cmd, const char *key,
		     struct sup_access *a, struct ks_error *err)
{
	json_t *cpu = json_object_get(req, "cpu"), *addr = key ? json_object_get(req, key) : NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	a->phys = json_is_true(json_object_get(req, "phys"));
	a->pause = json_is_true(json_object_get(req, "pause"));
	if ((rc = need_vm(s, err)) < 0)
		return rc;
	if (cpu && (!json_is_integer(cpu) || json_integer_value(cpu) < 0 ||
		    json_integer_value(cpu) > MAX_CPU))
		return ks_error_set(err, -EINVAL, "%s: \"cpu\" must be a vCPU index", cmd);
	a->cpu = cpu ? (unsigned)json_integer_value(cpu) : 0;
	if (!key)
		return 0;
	if (json_is_integer(addr)) {
		a->addr = (uint64_t)json_integer_value(addr);
		return 0;
	}
	if (!json_is_string(addr))
		return ks_error_set(err, -EINVAL, "%s: \"%s\" must be an address or "
				    "SYMBOL[+OFF]", cmd, key);
	return resolve(s, json_string_value(addr), a->phys, &a->addr, err);
}

/* Maps guest RAM once; the mapping outlives QEMU, so it is never remade. */
int sup_need_mem(struct ks_supervisor *s, struct ks_error *err)
{
	struct sup_inspect *in = s->inspect;

	if (in->mem)
		return 0;
	if (!(in->mem = ks_vmmem_map(s->vm, err)) || !(in->vtop = ks_vtop_new(in->mem, err)))
		return err ? err->code : -ENOMEM;
	return 0;
}

/* CR3 and CR4.LA57 of vCPU cpu, from QEMU's register dump (which needs no pause). */
static int cpu_paging(struct ks_supervisor *s, unsigned cpu, uint64_t *cr3, bool *la57,
		      struct ks_error *err)
{
	int rc = ks_vmmem_cpu_paging(s->vm, cpu, cr3, la57, err);

	if (rc == -EFAULT)
		rc = ks_error_set(err, rc, "vCPU %u has no page tables (CR3 is 0): give a "
				  "physical address (--phys)", cpu);
	return rc;
}

int sup_access_begin(struct ks_supervisor *s, struct sup_access *a, bool force_pause,
		     struct ks_error *err)
{
	struct sup_inspect *in = s->inspect;
	int rc;

	if ((rc = need_vm(s, err)) < 0)
		return rc;
	/* The monitor stops the VM at its breakpoints: only it can tell whether it is paused. */
	if ((a->pause || force_pause) && sup_monitor_attached(s)) {
		if ((rc = sup_monitor_hold(s, &a->paused, err)) < 0)
			return rc;
		a->held = true;
	} else if ((a->pause || force_pause) && ks_vm_state(s->vm) == KS_VM_RUNNING) {
		if ((rc = ks_vm_pause(s->vm, err)) < 0)
			return rc;
		a->paused = true;
		/* The stub reports the pause; its report must be taken before the VM runs
		 * again, or the client would believe the VM stopped after it resumed. */
		if (in->gdb && ks_gdb_connected(in->gdb))
			ks_gdb_wait_stop(in->gdb, NULL, GDB_STOP_NS);
	}
	if ((rc = sup_need_mem(s, err)) < 0)
		return rc;
	if (a->phys)
		return 0;
	if ((rc = cpu_paging(s, a->cpu, &a->cr3, &a->la57, err)) < 0)
		return rc;
	ks_vtop_set_cr3(in->vtop, a->cr3, a->la57);
	return 0;
}

void sup_access_end(struct ks_supervisor *s, struct sup_access *a)
{
	struct ks_error e = { 0 };

	if (a->held) {
		a->held = a->paused = false;
		sup_monitor_release(s);
		return;
	}
	if (!a->paused || s->ended || ks_vm_state(s->vm) != KS_VM_PAUSED)
		return;
	a->paused = false;
	if (ks_vm_resume(s->vm, &e) < 0) {
		sup_log(s, "%s: cannot resume the VM: %s", a->cmd, e.msg);
		return;
	}
	sup_inspect_resumed(s);
}

/* ---- registers ---- */

/*
 * A gdb client whose target is stopped (the VM is paused by now). It is connected at the
 * first use, and again if it lost its connection or its view of the VM.
 */
int sup_gdb_ready(struct ks_supervisor *s, struct ks_error *err)
{
	struct sup_inspect *in = s->inspect;
	const char *path = ks_vm_gdb_socket(s->vm);

	if (in->gdb && ks_gdb_connected(in->gdb) &&
	    ks_gdb_wait_stop(in->gdb, NULL, GDB_STOP_NS) == 0 &&
	    ks_gdb_state(in->gdb) == KS_GDB_STOPPED)
		return 0;
	/* The monitor holds this client: it cannot be replaced under it. */
	if (in->gdb && sup_monitor_attached(s))
		return ks_error_set(err, -EBUSY, "gdb: the VM is not stopped for the event "
				    "monitor's client");
	if (in->gdb) {
		const struct ks_error *why = ks_gdb_disconnect_reason(in->gdb);

		sup_log(s, "gdb: %s: connecting again", why ? why->msg
			: "the stub did not report the pause");
		ks_gdb_free(in->gdb);
		in->gdb = NULL;
	}
	if (!path)
		return ks_error_set(err, -EOPNOTSUPP, "this VM has no gdbstub: its registers "
				    "cannot be read");
	if (!(in->gdb = ks_gdb_connect(s->loop, path, GDB_CONNECT_NS, err)))
		return err ? err->code : -EIO;
	sup_log(s, "gdb: connected, %u vCPUs", ks_gdb_vcpu_count(in->gdb));
	return 0;
}

#define REG(f) { #f, offsetof(struct ks_x86_regs, f), sizeof(((struct ks_x86_regs *)0)->f) }

static const struct { const char *name; size_t off, size; } reg_fields[] = {
	REG(rax), REG(rbx), REG(rcx), REG(rdx), REG(rsi), REG(rdi), REG(rbp), REG(rsp),
	REG(r8), REG(r9), REG(r10), REG(r11), REG(r12), REG(r13), REG(r14), REG(r15),
	REG(rip), REG(rflags), REG(cs), REG(ss), REG(ds), REG(es), REG(fs), REG(gs),
	REG(fs_base), REG(gs_base), REG(k_gs_base), REG(cr0), REG(cr2), REG(cr3), REG(cr4),
	REG(cr8), REG(efer),
};

json_t *sup_regs_json(unsigned cpu, const struct ks_x86_regs *r)
{
	json_t *o = json_object();
	char text[2048];

	for (size_t i = 0; i < sizeof(reg_fields) / sizeof(reg_fields[0]); i++) {
		uint64_t v = 0;
		uint16_t v16;

		if (reg_fields[i].size == 2) {
			memcpy(&v16, (const char *)r + reg_fields[i].off, 2);
			v = v16;
		} else {
			memcpy(&v, (const char *)r + reg_fields[i].off, 8);
		}
		json_object_set_new(o, reg_fields[i].name, sup_hex(v));
	}
	ks_x86_regs_format(r, text, sizeof(text));
	return json_pack("{s:i,s:s,s:o,s:s}", "cpu", (int)cpu, "mode", ks_x86_mode(r),
			 "regs", o, "text", text);
}

/* {"cpu": N (default: every vCPU)}: {"cpus": [{"cpu", "mode", "regs", "text"}], "paused"}. */
int sup_h_regs(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data)
{
	struct ks_supervisor *s = data;
	struct sup_access a;
	struct ks_x86_regs r;
	json_t *cpus = json_array();
	unsigned n = 0, first = 0;
	int rc;

	(void)c;
	json_object_set_new(reply, "cpus", cpus);
	if ((rc = sup_access_parse(s, req, "regs", NULL, &a, err)) < 0)
		return rc;
	a.phys = true;  /* no page tables needed */
	if ((rc = sup_access_begin(s, &a, true, err)) < 0 || (rc = sup_gdb_ready(s, err)) < 0)
		goto out;
	n = ks_gdb_vcpu_count(s->inspect->gdb);
	if (json_object_get(req, "cpu")) {
		if (a.cpu >= n) {
			rc = ks_error_set(err, -ENOENT, "no vCPU %u (the VM has %u)", a.cpu, n);
			goto out;
		}
		first = a.cpu;
		n = a.cpu + 1;
	}
	for (unsigned i = first; i < n; i++) {
		if ((rc = ks_gdb_read_regs(s->inspect->gdb, i, &r, err)) < 0)
			goto out;
		json_array_append_new(cpus, sup_regs_json(i, &r));
	}
	json_object_set_new(reply, "paused", json_boolean(a.paused));
out:
	sup_access_end(s, &a);
	return rc;
}

/* ---- symbols ---- */

static const char *kind_name(enum ks_sym_kind k)
{
	static const char *const names[] = { "function", "object", "label", "absolute" };

	return (unsigned)k < 4 ? names[k] : "?";
}

/* {"expr": SYMBOL[+OFF] | 0xADDR (optional)}: where the symbols come from and, for expr, its
 * address and the symbol that holds it. */
int sup_h_symbol(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		 void *data)
{
	struct ks_supervisor *s = data;
	struct sup_inspect *in = s->inspect;
	const char *expr = json_string_value(json_object_get(req, "expr"));
	const struct ks_sym *sym;
	uint64_t addr, off;
	char buf[256];
	int rc;

	(void)c;
	if (!in->syms)
		return ks_error_set(err, -ENOENT, "this VM has no symbols (%.160s; give --symbols "
				    "FILE)", in->syms_why);
	json_object_set_new(reply, "source", json_string(in->syms_from));
	json_object_set_new(reply, "count", json_integer((json_int_t)ks_sym_count(in->syms)));
	if (!expr)
		return json_object_get(req, "expr") ? ks_error_set(err, -EINVAL, "symbol: "
								  "\"expr\" must be a string") : 0;
	if ((rc = ks_sym_parse(in->syms, expr, &addr, err)) < 0)
		return rc;
	json_object_set_new(reply, "addr", sup_hex(addr));
	if (ks_inspect_symbolize(in->syms, addr, buf, sizeof(buf)) < 0 ||
	    !(sym = ks_sym_at(in->syms, addr, &off)))
		return 0;
	json_object_set_new(reply, "symbol", json_string(buf));
	json_object_set_new(reply, "name", json_string(sym->name));
	json_object_set_new(reply, "offset", json_integer((json_int_t)off));
	json_object_set_new(reply, "type", json_stringn(&sym->type, 1));
	json_object_set_new(reply, "kind", json_string(kind_name(sym->kind)));
	json_object_set_new(reply, "size", json_integer((json_int_t)sym->size));
	return 0;
}

/* ---- kt_ state ---- */

static json_t *kt_case_json(const struct ks_kt_case *k)
{
	json_t *o = json_pack("{s:s,s:s,s:i,s:I,s:i}", "name", k->name, "status",
			      ks_kt_status_name(k->status), "failures", (int)k->failures,
			      "duration_ns", (json_int_t)k->duration_ns, "flags", (int)k->flags);

	if (k->fail_file)
		json_object_set_new(o, "fail_at", json_sprintf("%s:%u", k->fail_file,
								 k->fail_line));
	return o;
}

static json_t *kt_json(const struct ks_kt_state *st)
{
	json_t *suites = json_array();

	for (size_t i = 0; i < st->nsuites; i++) {
		const struct ks_kt_suite *su = &st->suites[i];
		json_t *cases = json_array();

		for (size_t j = 0; j < su->ncases; j++)
			json_array_append_new(cases, kt_case_json(&su->cases[j]));
		json_array_append_new(suites, json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:o}",
							"name", su->name, "status",
							ks_kt_status_name(su->status), "flags",
							(int)su->flags, "pass", (int)su->n_pass,
							"fail", (int)su->n_fail, "skip",
							(int)su->n_skip, "selected",
							(int)su->n_selected, "cases", cases));
	}
	return json_pack("{s:I,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:o}", "seq", (json_int_t)st->seq,
			 "phase", ks_kt_phase_name(st->phase), "cur_suite", (int)st->cur_suite,
			 "cur_case", (int)st->cur_case, "pass", (int)st->n_pass, "fail",
			 (int)st->n_fail, "skip", (int)st->n_skip, "selected",
			 (int)st->n_selected, "now_ns", (json_int_t)st->now_ns, "suites", suites);
}

/* {"addr" (default kt_state), "cpu", "pause"}: {"addr", "kt": the decoded state}. */
int sup_h_ktstate(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		  void *data)
{
	struct ks_supervisor *s = data;
	const char *key = json_object_get(req, "addr") ? "addr" : NULL;
	struct ks_kt_state *st = NULL;
	struct sup_access a;
	int rc;

	(void)c;
	if ((rc = sup_access_parse(s, req, "ktstate", key, &a, err)) < 0 ||
	    (!key && (rc = resolve(s, "kt_state", false, &a.addr, err)) < 0))
		return rc;
	if (a.phys)
		return ks_error_set(err, -EINVAL, "ktstate: the kt_ state is read through virtual "
				    "addresses, not --phys");
	if ((rc = sup_access_begin(s, &a, false, err)) == 0 &&
	    !(st = ks_kt_state_read(ks_vtop_read_gva, s->inspect->vtop, a.addr, err)))
		rc = err ? err->code : -EIO;
	sup_access_end(s, &a);
	if (rc < 0)
		return rc;
	json_object_set_new(reply, "addr", sup_hex(a.addr));
	sup_add_symbol(s, reply, a.addr);
	json_object_set_new(reply, "kt", kt_json(st));
	ks_kt_state_free(st);
	return 0;
}
