/* run_kernel.c: what a run reads from the kernel file (symbols) and from its memory (kt_state). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/kt_abi.h>
#include <kscope/vmmem.h>

#include "run_internal.h"

int run_kernel_load(struct run_kernel *k, const char *path, struct ks_error *err)
{
	struct ks_error e = { 0 };
	const struct ks_sym *sym;

	memset(k, 0, sizeof(*k));
	if (!(k->path = strdup(path)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	/* A kernel without a symbol table (a bzImage, a stripped ELF) runs on KTAP alone. */
	k->syms = ks_sym_load(path, &e);
	if (k->syms && (sym = ks_sym_find(k->syms, "kt_state")) && sym->kind != KS_SYM_ABS)
		k->kt_state = sym->addr;
	k->kt = k->kt_state != 0;
	return 0;
}

void run_kernel_free(struct run_kernel *k)
{
	ks_sym_free(k->syms);
	free(k->path);
	memset(k, 0, sizeof(*k));
}

/* ---- kt_state in guest memory ---- */

/* The translator over the VM's RAM, with a CR3 (taken from QEMU's register dump when none is
 * known yet, or when the last one stopped working, at most five times a second). */
static int need_vtop(struct run_vm *v, bool refresh)
{
	struct ks_error e = { 0 };
	uint64_t now = ks_loop_now_ns();

	if (!v->mem && v->vm) {
		if (!(v->mem = ks_vmmem_map(v->vm, &e)) || !(v->vtop = ks_vtop_new(v->mem, &e)))
			return e.code ? e.code : -ENOMEM;
	}
	if (!v->vtop)
		return -ENODEV;
	if ((!v->have_cr3 || refresh) && v->vm && ks_vm_state(v->vm) != KS_VM_ENDED &&
	    now >= v->next_cr3_ns) {
		v->next_cr3_ns = now + 200 * RUN_MS;
		if (ks_vmmem_cpu_paging(v->vm, 0, &v->cr3, &v->la57, NULL) == 0) {
			v->have_cr3 = true;
			ks_vtop_set_cr3(v->vtop, v->cr3, v->la57);
		}
	}
	return v->have_cr3 ? 0 : -EAGAIN;
}

int ks_run_read(struct ks_run *r, unsigned n, uint64_t addr, bool phys, void *buf, size_t len,
		uint64_t *pa, struct ks_error *err)
{
	struct run_vm *v = n >= 1 && n <= r->nvms ? &r->vms[n - 1] : NULL;
	unsigned flags;
	ks_gpa_t gpa = addr;
	int rc;

	if (!v || !v->vm || ks_vm_state(v->vm) == KS_VM_ENDED || ks_vm_starting(v->vm))
		return ks_error_set(err, -ENODEV, "VM %u is not running now", n);
	if ((rc = need_vtop(v, false)) < 0)
		return ks_error_set(err, rc, rc == -EAGAIN ? "VM %u: its page tables are not known "
				    "yet" : "VM %u: its memory cannot be mapped", n);
	if (!phys) {
		if (ks_vtop_translate(v->vtop, addr, &gpa, &flags) < 0)
			return ks_error_set(err, -EFAULT, "0x%llx is not mapped",
					    (unsigned long long)addr);
		rc = ks_vtop_read(v->vtop, addr, buf, len, err);
	} else {
		rc = ks_mem_read(v->mem, gpa, buf, len, err);
	}
	if (rc == 0 && pa)
		*pa = gpa;
	return rc;
}

int run_state_header(struct run_vm *v, struct kt_abi_state *h)
{
	ks_gva_t va = v->run->k.kt_state;
	int rc;

	if ((rc = need_vtop(v, false)) < 0)
		return rc;
	rc = ks_vtop_read(v->vtop, va, h, sizeof(*h), NULL);
	if (rc < 0 || h->magic != KT_ABI_MAGIC) {
		/* The kernel may have moved to other page tables since. */
		if (need_vtop(v, true) < 0 || ks_vtop_read(v->vtop, va, h, sizeof(*h), NULL) < 0)
			return rc < 0 ? rc : -EPROTO;
	}
	return h->magic == KT_ABI_MAGIC ? 0 : -EPROTO;
}

struct ks_kt_state *run_state_read(struct run_vm *v, bool stopped, struct ks_error *err)
{
	struct kt_abi_state h;
	int rc;

	if ((rc = run_state_header(v, &h)) < 0) {
		ks_error_set(err, rc, "kt_state is not readable (%s)", strerror(-rc));
		return NULL;
	}
	if (stopped)
		return ks_kt_state_read_stopped(ks_vtop_read_gva, v->vtop, v->run->k.kt_state, err);
	return ks_kt_state_read(ks_vtop_read_gva, v->vtop, v->run->k.kt_state, err);
}

/* ---- choosing the tests of a pass ---- */

static int wr32(struct run_vm *v, ks_gva_t va, uint32_t x, struct ks_error *err)
{
	return ks_vtop_write(v->vtop, va, &x, sizeof(x), err);
}

/* Where test (suite, case) sits in tests[], or RUN_NONE. */
static size_t place(const struct run_plan *p, const size_t *tests, size_t n, const char *suite,
		    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(p->tests[tests[i]].suite, suite) && !strcmp(p->tests[tests[i]].name, name))
			return i;
	return RUN_NONE;
}

/* Writes the case records back with the selected ones first, in the order of tests. */
static int reorder_cases(struct run_vm *v, const struct kt_abi_suite *a, const size_t *at,
			 size_t n, struct ks_error *err)
{
	size_t bytes = (size_t)a->ncases * a->case_stride, k = 0;
	uint8_t *recs = malloc(bytes ? bytes : 1);
	int rc;

	if (!recs)
		return ks_error_set(err, -ENOMEM, "out of memory");
	rc = ks_vtop_read(v->vtop, a->cases, recs, bytes, err);
	/* want == n: the cases not selected, at the end as they were. */
	for (size_t want = 0; want <= n && rc == 0; want++)
		for (size_t j = 0; j < a->ncases && rc == 0; j++)
			if ((want < n && at[j] == want) || (want == n && at[j] == RUN_NONE))
				rc = ks_vtop_write(v->vtop, a->cases + k++ * a->case_stride,
						   recs + j * a->case_stride, a->case_stride, err);
	free(recs);
	return rc;
}

/* Marks suite su's cases selected (KT_ST_NONE) or FILTERED, and with order puts the selected
 * case records first, in the order of tests. Returns the number selected, or -errno. */
static int select_suite(struct run_vm *v, const struct ks_kt_suite *su, ks_gva_t sva,
			const size_t *tests, size_t n, bool order, struct ks_error *err)
{
	struct kt_abi_suite a;
	size_t *at = calloc(su->ncases + 1, sizeof(*at)), sel = 0;
	int rc;

	if (!at)
		return ks_error_set(err, -ENOMEM, "out of memory");
	if ((rc = ks_vtop_read(v->vtop, sva, &a, sizeof(a), err)) == 0 && a.ncases != su->ncases)
		rc = ks_error_set(err, -EPROTO, "suite %s changed under the run", su->name);
	for (size_t j = 0; j < su->ncases && rc == 0; j++) {
		at[j] = place(&v->run->plan, tests, n, su->name, su->cases[j].name);
		sel += at[j] != RUN_NONE;
		rc = wr32(v, a.cases + j * a.case_stride + offsetof(struct kt_abi_case, status),
			  at[j] != RUN_NONE ? KT_ST_NONE : KT_ST_FILTERED, err);
	}
	if (rc == 0 && order && sel > 1)
		rc = reorder_cases(v, &a, at, n, err);
	if (rc == 0)
		rc = wr32(v, sva + offsetof(struct kt_abi_suite, n_selected), (uint32_t)sel, err);
	if (rc == 0)
		rc = wr32(v, sva + offsetof(struct kt_abi_suite, status),
			  sel ? KT_ST_NONE : KT_ST_FILTERED, err);
	free(at);
	return rc < 0 ? rc : (int)sel;
}

/* The first place of any of suite su's tests in tests[] (suites run in that order). */
static size_t suite_place(const struct run_plan *p, const size_t *tests, size_t n,
			  const char *su)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(p->tests[tests[i]].suite, su))
			return i;
	return RUN_NONE;
}

/* Rewrites the suite pointer array so that suites run in the order of tests. */
static int order_suites(struct run_vm *v, const struct ks_kt_state *st, const uint64_t *ptrs,
			ks_gva_t arr, const size_t *tests, size_t n, struct ks_error *err)
{
	size_t k = 0;
	int rc = 0;

	for (size_t want = 0; want <= n && rc == 0; want++)
		for (size_t i = 0; i < st->nsuites && rc == 0; i++) {
			size_t at = suite_place(&v->run->plan, tests, n, st->suites[i].name);

			/* want == n: the suites with nothing selected, at the end. */
			if ((want < n && at == want) || (want == n && at == RUN_NONE))
				rc = ks_vtop_write(v->vtop, arr + 8 * k++, &ptrs[i], 8, err);
		}
	return rc;
}

int run_state_select(struct run_vm *v, const struct ks_kt_state *st, const size_t *tests,
		     size_t n, bool order, struct ks_error *err)
{
	struct kt_abi_state h;
	uint64_t *ptrs = NULL;
	uint32_t total = 0;
	int rc;

	if ((rc = run_state_header(v, &h)) < 0)
		return ks_error_set(err, rc, "kt_state is not readable");
	if (h.nsuites != st->nsuites || (h.nsuites && h.ptr_size != 8))
		return ks_error_set(err, -EPROTO, "kt_state changed under the run");
	if (!(ptrs = calloc(h.nsuites + 1, sizeof(*ptrs))))
		return ks_error_set(err, -ENOMEM, "out of memory");
	/* The sequence lock is odd while the records change, as when the kernel writes. Stopped
	 * at its phase READY, the kernel has it odd already, and makes it even itself. */
	bool own_seq = !(h.seq & 1);
	uint64_t seq = h.seq + own_seq;
	if ((own_seq && (rc = ks_vtop_write(v->vtop, v->run->k.kt_state +
					    offsetof(struct kt_abi_state, seq), &seq, 8, err)) < 0) ||
	    (h.nsuites && (rc = ks_vtop_read(v->vtop, h.suites, ptrs, 8 * h.nsuites, err)) < 0))
		goto out;
	for (uint32_t i = 0; i < h.nsuites; i++) {
		if ((rc = select_suite(v, &st->suites[i], ptrs[i], tests, n, order, err)) < 0)
			goto out;
		total += (uint32_t)rc;
	}
	if (order && (rc = order_suites(v, st, ptrs, h.suites, tests, n, err)) < 0)
		goto out;
	seq += own_seq;
	if ((rc = wr32(v, v->run->k.kt_state + offsetof(struct kt_abi_state, n_selected), total,
		       err)) == 0 && own_seq)
		rc = ks_vtop_write(v->vtop, v->run->k.kt_state + offsetof(struct kt_abi_state, seq),
				   &seq, 8, err);
out:
	free(ptrs);
	return rc < 0 ? rc : 0;
}
