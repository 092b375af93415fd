/* run_plan.c: the run's plan (tests and suites), batches, the partition across VMs, the shuffle. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/kt_abi.h>

#include "run_internal.h"

static int grow(void **arr, size_t n, size_t size)
{
	/* Room for 8, then doubling: n is the count before the new element. */
	if (n && (n < 8 || (n & (n - 1))))
		return 0;
	void *p = realloc(*arr, (n ? n * 2 : 8) * size);

	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

static size_t add_suite(struct run_plan *p, const char *name, uint32_t flags)
{
	struct run_suite *s;

	if (grow((void **)&p->suites, p->nsuites, sizeof(*p->suites)) < 0)
		return RUN_NONE;
	s = &p->suites[p->nsuites];
	memset(s, 0, sizeof(*s));
	if (!(s->name = strdup(name)))
		return RUN_NONE;
	s->flags = flags;
	s->first = p->ntests;
	return p->nsuites++;
}

static size_t add_test(struct run_plan *p, size_t suite, const char *name, uint32_t flags)
{
	struct run_test *t;

	if (grow((void **)&p->tests, p->ntests, sizeof(*p->tests)) < 0)
		return RUN_NONE;
	t = &p->tests[p->ntests];
	memset(t, 0, sizeof(*t));
	t->suite = strdup(p->suites[suite].name);
	t->name = strdup(name);
	if (!t->suite || !t->name) {
		free(t->suite);
		free(t->name);
		return RUN_NONE;
	}
	t->flags = flags;
	t->suite_idx = suite;
	p->suites[suite].n++;
	return p->ntests++;
}

int run_plan_from_state(struct run_plan *p, const struct ks_kt_state *st)
{
	for (size_t i = 0; i < st->nsuites; i++) {
		const struct ks_kt_suite *su = &st->suites[i];
		size_t si = RUN_NONE;

		for (size_t j = 0; j < su->ncases; j++) {
			if (su->cases[j].status == KT_ST_FILTERED)
				continue;
			if (si == RUN_NONE && (si = add_suite(p, su->name, su->flags)) == RUN_NONE)
				return -ENOMEM;
			if (add_test(p, si, su->cases[j].name, su->cases[j].flags) == RUN_NONE)
				return -ENOMEM;
		}
	}
	return 0;
}

size_t run_plan_find(const struct run_plan *p, const char *suite, const char *name)
{
	for (size_t i = 0; i < p->ntests; i++)
		if (!strcmp(p->tests[i].suite, suite) && !strcmp(p->tests[i].name, name))
			return i;
	return RUN_NONE;
}

size_t run_plan_add(struct run_plan *p, const char *suite, const char *name)
{
	size_t si = p->nsuites;

	/* KTAP-only plans grow in the order the kernel ran them: a suite's cases are together. */
	if (!si || strcmp(p->suites[si - 1].name, suite))
		si = add_suite(p, suite, 0);
	else
		si--;
	return si == RUN_NONE ? RUN_NONE : add_test(p, si, name, 0);
}

void run_plan_free(struct run_plan *p)
{
	for (size_t i = 0; i < p->ntests; i++) {
		free(p->tests[i].suite);
		free(p->tests[i].name);
	}
	for (size_t i = 0; i < p->nsuites; i++)
		free(p->suites[i].name);
	free(p->tests);
	free(p->suites);
	memset(p, 0, sizeof(*p));
}

/* ---- batches ---- */

struct run_batch *run_batch_new(unsigned round, const size_t *tests, size_t n)
{
	struct run_batch *b = calloc(1, sizeof(*b));

	if (!b || !(b->tests = malloc((n ? n : 1) * sizeof(*tests)))) {
		free(b);
		return NULL;
	}
	if (n)
		memcpy(b->tests, tests, n * sizeof(*tests));
	b->ntests = n;
	b->round = round;
	return b;
}

void run_batch_free(struct run_batch *b)
{
	while (b) {
		struct run_batch *next = b->next;

		free(b->tests);
		free(b);
		b = next;
	}
}

/* ---- the partition ---- */

static bool has_destructive(const struct run_plan *p, size_t s)
{
	for (size_t i = 0; i < p->suites[s].n; i++)
		if (p->tests[p->suites[s].first + i].flags & KT_ABI_F_DESTRUCTIVE)
			return true;
	return false;
}

/* Each suite's weight: its measured time, or its case count at the measured time per case
 * (a case count alone before anything was measured). */
static void weights(const struct run_plan *p, int64_t *w)
{
	int64_t ns = 0;
	size_t cases = 0;

	for (size_t s = 0; s < p->nsuites; s++)
		if (p->suites[s].cost_ns > 0) {
			ns += p->suites[s].cost_ns;
			cases += p->suites[s].n;
		}
	for (size_t s = 0; s < p->nsuites; s++) {
		int64_t per = cases ? ns / (int64_t)cases : 1;

		w[s] = p->suites[s].cost_ns > 0 ? p->suites[s].cost_ns
						: (int64_t)(p->suites[s].n + 1) * (per ? per : 1);
	}
}

static int by_weight(const void *a, const void *b, void *weights)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	const int64_t *w = weights;

	if (w[x] != w[y])
		return w[x] > w[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int by_index(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* Which batch (0 .. ways-1) each suite goes to; destructive suites to batch 0 when
 * isolating by snapshot. */
static void assign(const struct run_plan *p, unsigned ways, enum ks_run_isolate isolate,
		   const int64_t *w, size_t *order, unsigned *to)
{
	int64_t load[ways];

	memset(load, 0, sizeof(load));
	for (size_t s = 0; s < p->nsuites; s++)
		order[s] = s;
	qsort_r(order, p->nsuites, sizeof(*order), by_weight, (void *)w);
	for (size_t k = 0; k < p->nsuites; k++) {
		size_t s = order[k];
		unsigned best = 0;

		if (!(isolate == KS_RUN_ISOLATE_SNAPSHOT && has_destructive(p, s)))
			for (unsigned b = 1; b < ways; b++)
				best = load[b] < load[best] ? b : best;
		to[s] = best;
		load[best] += w[s];
	}
}

/* Appends b to the list ending at *tail. */
static void append(struct run_batch ***tail, struct run_batch *b)
{
	**tail = b;
	*tail = &b->next;
}

struct run_batch *run_partition(const struct run_plan *p, unsigned round, unsigned ways,
				enum ks_run_isolate isolate)
{
	size_t n = p->nsuites ? p->nsuites : 1, *order = malloc(n * sizeof(size_t));
	size_t *buf = malloc((p->ntests ? p->ntests : 1) * sizeof(size_t));
	int64_t *w = malloc(n * sizeof(*w));
	unsigned *to = malloc(n * sizeof(*to));
	struct run_batch *head = NULL, **tail = &head, *b;
	bool oom = !order || !buf || !w || !to;

	ways = ways ? ways : 1;
	if (!oom) {
		weights(p, w);
		assign(p, ways, isolate, w, order, to);
	}
	for (unsigned k = 0; !oom && k <= ways; k++) {
		size_t m = 0;

		/* Batches 0 .. ways-1, then (k == ways) one per destructive test to reboot. */
		for (size_t t = 0; t < p->ntests && k < ways; t++) {
			bool d = p->tests[t].flags & KT_ABI_F_DESTRUCTIVE;

			if (to[p->tests[t].suite_idx] == k &&
			    !(d && isolate == KS_RUN_ISOLATE_REBOOT))
				buf[m++] = t;
		}
		for (size_t t = 0; t < p->ntests && k == ways; t++) {
			if (!(p->tests[t].flags & KT_ABI_F_DESTRUCTIVE) ||
			    isolate != KS_RUN_ISOLATE_REBOOT)
				continue;
			if (!(b = run_batch_new(round, &t, 1)))
				oom = true;
			else
				append(&tail, b);
		}
		if (m && !oom && !(b = run_batch_new(round, buf, m)))
			oom = true;
		else if (m && !oom)
			append(&tail, b);
	}
	free(order);
	free(buf);
	free(w);
	free(to);
	if (oom) {
		run_batch_free(head);
		return NULL;
	}
	return head;
}

/* ---- the shuffle ---- */

/* splitmix64: small, and the same sequence on every host for a given seed. */
static uint64_t next_rand(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void run_shuffle(size_t *items, size_t n, uint64_t seed, uint64_t salt)
{
	uint64_t x = seed ^ (salt * 0xd1b54a32d192ed03ull);

	qsort(items, n, sizeof(*items), by_index);
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(next_rand(&x) % i), t = items[i - 1];

		items[i - 1] = items[j];
		items[j] = t;
	}
}

static int by_rank(const void *a, const void *b, void *ranks)
{
	const size_t *rank = ranks;
	size_t x = rank[*(const size_t *)a], y = rank[*(const size_t *)b];

	return x < y ? -1 : x > y;
}

int run_order(const struct run_plan *p, size_t *tests, size_t n, uint64_t seed,
	      unsigned round)
{
	size_t *rank = malloc((p->ntests ? p->ntests : 1) * sizeof(*rank));
	size_t *perm = malloc((p->nsuites ? p->nsuites : 1) * sizeof(*perm));
	size_t *cases = malloc((p->ntests ? p->ntests : 1) * sizeof(*cases));

	if (!rank || !perm || !cases) {
		free(rank);
		free(perm);
		free(cases);
		return -ENOMEM;
	}
	for (size_t s = 0; s < p->nsuites; s++)
		perm[s] = s;
	run_shuffle(perm, p->nsuites, seed, round);
	/* A test's rank: its suite's place in the shuffled suites, then its own among its
	 * suite's shuffled cases. */
	for (size_t k = 0; k < p->nsuites; k++) {
		const struct run_suite *su = &p->suites[perm[k]];

		for (size_t i = 0; i < su->n; i++)
			cases[i] = su->first + i;
		run_shuffle(cases, su->n, seed, ((uint64_t)round << 32) + perm[k] + 1);
		for (size_t i = 0; i < su->n; i++)
			rank[cases[i]] = k * (p->ntests + 1) + i;
	}
	qsort_r(tests, n, sizeof(*tests), by_rank, rank);
	free(rank);
	free(perm);
	free(cases);
	return 0;
}
