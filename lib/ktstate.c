/* ktstate.c: decoding the kt_ in-memory test state from guest memory, consistently. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/ktstate.h>

/* Bounds that no real kernel reaches; past them the memory is garbage, not a state. */
#define MAX_SUITES 4096
#define MAX_CASES 65536
#define MAX_STRING 512
#define MAX_STRIDE 4096
#define MAX_TRIES 200

struct reader {
	ks_read_gva_fn read;
	void *ctx;
	struct ks_error *err;
};

static int rd(struct reader *r, ks_gva_t va, void *buf, size_t len, const char *what)
{
	int rc = r->read(r->ctx, va, buf, len);

	if (rc < 0)
		return ks_error_set(r->err, rc, "cannot read %s at 0x%llx (%zu bytes): %s", what,
				    (unsigned long long)va, len, strerror(-rc));
	return 0;
}

/* Reads a NUL-terminated string a chunk at a time, so a short string near the end of
 * mapped memory still reads. */
static char *rd_string(struct reader *r, ks_gva_t va, const char *what)
{
	char buf[MAX_STRING];
	size_t n = 0;

	if (!va) {
		ks_error_set(r->err, -EINVAL, "%s: null name pointer", what);
		return NULL;
	}
	while (n < sizeof(buf)) {
		size_t chunk = 32 - ((va + n) & 31);

		if (chunk > sizeof(buf) - n)
			chunk = sizeof(buf) - n;
		if (rd(r, va + n, buf + n, chunk, what) < 0)
			return NULL;
		void *nul = memchr(buf + n, 0, chunk);
		if (nul)
			return strdup(buf);
		n += chunk;
	}
	ks_error_set(r->err, -E2BIG, "%s at 0x%llx: no NUL within %d bytes", what,
		     (unsigned long long)va, MAX_STRING);
	return NULL;
}

static int check_header(struct reader *r, const struct kt_abi_state *h)
{
	if (h->magic != KT_ABI_MAGIC)
		return ks_error_set(r->err, -EPROTO, "kt_state: bad magic 0x%016llx",
				    (unsigned long long)h->magic);
	if (h->version != KT_ABI_VERSION)
		return ks_error_set(r->err, -EPROTO, "kt_state: ABI version %u, expected %u",
				    h->version, KT_ABI_VERSION);
	if (h->size < sizeof(*h))
		return ks_error_set(r->err, -EPROTO, "kt_state: size %u smaller than %zu",
				    h->size, sizeof(*h));
	if (h->nsuites > MAX_SUITES)
		return ks_error_set(r->err, -EPROTO, "kt_state: %u suites (max %d)", h->nsuites,
				    MAX_SUITES);
	if (h->nsuites && h->ptr_size != 4 && h->ptr_size != 8)
		return ks_error_set(r->err, -EPROTO, "kt_state: pointer size %u", h->ptr_size);
	return 0;
}

static int read_case(struct reader *r, ks_gva_t va, struct ks_kt_case *c)
{
	struct kt_abi_case a;

	if (rd(r, va, &a, sizeof(a), "case record") < 0)
		return -1;
	c->name = rd_string(r, a.name, "case name");
	if (!c->name)
		return -1;
	c->flags = a.flags;
	c->status = a.status;
	c->start_ns = a.start_ns;
	c->duration_ns = a.duration_ns;
	c->params_total = a.params_total;
	c->params_failed = a.params_failed;
	c->failures = a.failures;
	c->fail_line = a.fail_line;
	if (a.fail_file) {
		c->fail_file = rd_string(r, a.fail_file, "failure file name");
		if (!c->fail_file)
			return -1;
	}
	return 0;
}

static int read_suite(struct reader *r, ks_gva_t va, struct ks_kt_suite *s)
{
	struct kt_abi_suite a;

	if (rd(r, va, &a, sizeof(a), "suite record") < 0)
		return -1;
	s->name = rd_string(r, a.name, "suite name");
	if (!s->name)
		return -1;
	if (a.ncases > MAX_CASES || (a.ncases && (a.case_stride < sizeof(struct kt_abi_case) ||
						  a.case_stride > MAX_STRIDE)))
		return ks_error_set(r->err, -EPROTO, "suite %s: %u cases of stride %u", s->name,
				    a.ncases, a.case_stride);
	s->flags = a.flags;
	s->status = a.status;
	s->n_pass = a.n_pass;
	s->n_fail = a.n_fail;
	s->n_skip = a.n_skip;
	s->n_selected = a.n_selected;
	s->start_ns = a.start_ns;
	s->duration_ns = a.duration_ns;
	s->cases = calloc(a.ncases ? a.ncases : 1, sizeof(*s->cases));
	if (!s->cases)
		return ks_error_set(r->err, -ENOMEM, "out of memory");
	s->ncases = a.ncases;
	for (uint32_t i = 0; i < a.ncases; i++)
		if (read_case(r, a.cases + (uint64_t)i * a.case_stride, &s->cases[i]) < 0)
			return -1;
	return 0;
}

static int read_suites(struct reader *r, const struct kt_abi_state *h, struct ks_kt_state *st)
{
	st->suites = calloc(h->nsuites ? h->nsuites : 1, sizeof(*st->suites));
	if (!st->suites)
		return ks_error_set(r->err, -ENOMEM, "out of memory");
	st->nsuites = h->nsuites;
	for (uint32_t i = 0; i < h->nsuites; i++) {
		uint64_t ptr = 0;

		if (rd(r, h->suites + (uint64_t)i * h->ptr_size, &ptr, h->ptr_size,
		       "suite pointer") < 0)
			return -1;
		if (read_suite(r, ptr, &st->suites[i]) < 0)
			return -1;
	}
	return 0;
}

static void fill_header(struct ks_kt_state *st, const struct kt_abi_state *h)
{
	st->seq = h->seq;
	st->phase = h->phase;
	st->cur_suite = h->cur_suite;
	st->cur_case = h->cur_case;
	st->cur_param = h->cur_param;
	st->n_pass = h->n_pass;
	st->n_fail = h->n_fail;
	st->n_skip = h->n_skip;
	st->n_selected = h->n_selected;
	st->now_ns = h->now_ns;
	st->sites = h->sites;
	st->nsites = h->nsites;
}

/* One attempt: 1 when consistent, 0 when the kernel changed the state meanwhile, <0 on
 * error. A stopped kernel changes nothing: its sequence lock is not looked at. */
static int try_read(struct reader *r, ks_gva_t va, struct ks_kt_state *st, bool stopped)
{
	struct kt_abi_state h;
	uint64_t seq2;

	if (rd(r, va, &h, sizeof(h), "kt_state") < 0 || check_header(r, &h) < 0)
		return -1;
	if ((h.seq & 1) && !stopped)
		return 0;
	fill_header(st, &h);
	if (read_suites(r, &h, st) < 0)
		return -1;
	if (stopped)
		return 1;
	if (rd(r, va + offsetof(struct kt_abi_state, seq), &seq2, sizeof(seq2), "kt_state") < 0)
		return -1;
	return seq2 == h.seq;
}

static void free_suites(struct ks_kt_state *st)
{
	for (size_t i = 0; i < st->nsuites && st->suites; i++) {
		struct ks_kt_suite *s = &st->suites[i];

		for (size_t j = 0; j < s->ncases && s->cases; j++) {
			free(s->cases[j].name);
			free(s->cases[j].fail_file);
		}
		free(s->cases);
		free(s->name);
	}
	free(st->suites);
	st->suites = NULL;
	st->nsuites = 0;
}

static struct ks_kt_state *read_state(ks_read_gva_fn read, void *ctx, ks_gva_t state,
				     bool stopped, struct ks_error *err)
{
	struct reader r = { read, ctx, err };
	struct ks_kt_state *st = calloc(1, sizeof(*st));

	if (!st) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	for (int i = 0; i < MAX_TRIES; i++) {
		int rc = try_read(&r, state, st, stopped);

		if (rc == 1)
			return st;
		free_suites(st);
		if (rc < 0)
			goto fail;
	}
	ks_error_set(err, -EAGAIN, "kt_state kept changing over %d reads", MAX_TRIES);
fail:
	free(st);
	return NULL;
}

struct ks_kt_state *ks_kt_state_read(ks_read_gva_fn read, void *ctx, ks_gva_t state,
				     struct ks_error *err)
{
	return read_state(read, ctx, state, false, err);
}

struct ks_kt_state *ks_kt_state_read_stopped(ks_read_gva_fn read, void *ctx, ks_gva_t state,
					     struct ks_error *err)
{
	return read_state(read, ctx, state, true, err);
}

void ks_kt_state_free(struct ks_kt_state *st)
{
	if (!st)
		return;
	free_suites(st);
	free(st);
}

const char *ks_kt_status_name(uint32_t status)
{
	static const char *const names[] = { "none", "running", "pass", "fail", "skip",
					     "filtered" };

	return status < sizeof(names) / sizeof(names[0]) ? names[status] : "invalid";
}

const char *ks_kt_phase_name(uint32_t phase)
{
	static const char *const names[] = { "boot", "ready", "running", "done", "listed" };

	return phase < sizeof(names) / sizeof(names[0]) ? names[phase] : "invalid";
}
