/* loop.c: the epoll event loop: fds by number, timers in a min-heap by deadline. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <kscope/loop.h>

#define MAX_EVENTS 64

struct fd_entry {
	ks_loop_fd_cb cb;
	void *data;
	uint32_t events;
	uint32_t gen;  /* registration number: 0 = free slot */
};

struct timer {
	int64_t id;
	uint64_t deadline;
	uint64_t period;
	uint64_t seq;  /* arming order: breaks ties between equal deadlines */
	ks_loop_timer_cb cb;
	void *data;
	size_t idx;    /* position in the heap */
};

struct ks_loop {
	int epfd;
	struct fd_entry *fds;  /* indexed by fd */
	int nfds;              /* slots in fds */
	int nwatched;
	uint32_t gen;
	struct timer **heap;
	size_t nheap, heap_cap;
	int64_t next_id;
	uint64_t seq;
	bool stop;
	int depth;             /* ks_loop_run_once() calls under way */
};

uint64_t ks_loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct ks_loop *ks_loop_new(struct ks_error *err)
{
	struct ks_loop *l = calloc(1, sizeof(*l));

	if (!l) {
		ks_error_set(err, -ENOMEM, "loop: out of memory");
		return NULL;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		ks_error_set(err, -errno, "loop: epoll_create1: %s", strerror(errno));
		free(l);
		return NULL;
	}
	l->next_id = 1;
	return l;
}

void ks_loop_free(struct ks_loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nheap; i++)
		free(l->heap[i]);
	free(l->heap);
	free(l->fds);
	close(l->epfd);
	free(l);
}

/* ---- fds ---- */

static uint32_t to_epoll(uint32_t events)
{
	return (events & KS_LOOP_IN ? EPOLLIN | EPOLLRDHUP : 0) |
	       (events & KS_LOOP_OUT ? EPOLLOUT : 0);
}

static uint32_t from_epoll(uint32_t ev)
{
	return (ev & EPOLLIN ? KS_LOOP_IN : 0) | (ev & EPOLLOUT ? KS_LOOP_OUT : 0) |
	       (ev & (EPOLLHUP | EPOLLRDHUP) ? KS_LOOP_HUP : 0) | (ev & EPOLLERR ? KS_LOOP_ERR : 0);
}

static struct fd_entry *find_fd(struct ks_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds || !l->fds[fd].gen)
		return NULL;
	return &l->fds[fd];
}

static int grow_fds(struct ks_loop *l, int fd)
{
	int n = l->nfds ? l->nfds : 16;
	struct fd_entry *fds;

	while (n <= fd)
		n *= 2;
	fds = realloc(l->fds, (size_t)n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	memset(fds + l->nfds, 0, (size_t)(n - l->nfds) * sizeof(*fds));
	l->fds = fds;
	l->nfds = n;
	return 0;
}

int ks_loop_add_fd(struct ks_loop *l, int fd, uint32_t events, ks_loop_fd_cb cb, void *data)
{
	struct epoll_event ev = { .events = to_epoll(events) };
	uint32_t gen;

	if (fd < 0)
		return -EBADF;
	if (!cb || events & ~(KS_LOOP_IN | KS_LOOP_OUT))
		return -EINVAL;
	if (find_fd(l, fd))
		return -EEXIST;
	if (fd >= l->nfds && grow_fds(l, fd) < 0)
		return -ENOMEM;
	gen = ++l->gen ? l->gen : ++l->gen;
	/* The event carries fd and registration, so stale readiness is recognised. */
	ev.data.u64 = (uint64_t)gen << 32 | (uint32_t)fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	l->fds[fd] = (struct fd_entry){ .cb = cb, .data = data, .events = events, .gen = gen };
	l->nwatched++;
	return 0;
}

int ks_loop_mod_fd(struct ks_loop *l, int fd, uint32_t events)
{
	struct fd_entry *e = find_fd(l, fd);
	struct epoll_event ev = { .events = to_epoll(events) };

	if (!e)
		return -ENOENT;
	if (events & ~(KS_LOOP_IN | KS_LOOP_OUT))
		return -EINVAL;
	ev.data.u64 = (uint64_t)e->gen << 32 | (uint32_t)fd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	e->events = events;
	return 0;
}

int ks_loop_del_fd(struct ks_loop *l, int fd)
{
	struct fd_entry *e = find_fd(l, fd);

	if (!e)
		return -ENOENT;
	/* Fails only if fd was already closed, which removed it from epoll anyway. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(e, 0, sizeof(*e));
	l->nwatched--;
	return 0;
}

/* ---- timers ---- */

/* a + b, stopping at the end of time rather than wrapping to the past. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool before(const struct timer *a, const struct timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(struct ks_loop *l, size_t i, struct timer *t)
{
	l->heap[i] = t;
	t->idx = i;
}

static void heap_up(struct ks_loop *l, size_t i)
{
	struct timer *t = l->heap[i];

	while (i > 0 && before(t, l->heap[(i - 1) / 2])) {
		heap_set(l, i, l->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(l, i, t);
}

static void heap_down(struct ks_loop *l, size_t i)
{
	struct timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!before(l->heap[c], t))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

static void heap_remove(struct ks_loop *l, size_t i)
{
	struct timer *last = l->heap[--l->nheap];

	if (i == l->nheap)
		return;
	heap_set(l, i, last);
	heap_down(l, i);
	heap_up(l, last->idx);
}

int64_t ks_loop_add_timer(struct ks_loop *l, uint64_t delay_ns, uint64_t period_ns,
			  ks_loop_timer_cb cb, void *data)
{
	struct timer *t;

	if (!cb)
		return -EINVAL;
	if (l->nheap == l->heap_cap) {
		size_t cap = l->heap_cap ? 2 * l->heap_cap : 16;
		struct timer **h = realloc(l->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->heap_cap = cap;
	}
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = (struct timer){ .id = l->next_id++, .deadline = add_sat(ks_loop_now_ns(), delay_ns),
			     .period = period_ns, .seq = l->seq++, .cb = cb, .data = data };
	heap_set(l, l->nheap++, t);
	heap_up(l, t->idx);
	return t->id;
}

int ks_loop_del_timer(struct ks_loop *l, int64_t id)
{
	/* Few timers are armed at once: a scan is cheaper than an index to keep. */
	for (size_t i = 0; i < l->nheap; i++) {
		struct timer *t = l->heap[i];

		if (t->id == id) {
			heap_remove(l, i);
			free(t);
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- running ---- */

/* epoll's timeout in ms (rounded up, so a timer is never found early): -1 for none. */
static int wait_ms(struct ks_loop *l, int64_t timeout_ns)
{
	int64_t ns = timeout_ns;

	if (l->nheap) {
		uint64_t now = ks_loop_now_ns(), due = l->heap[0]->deadline;
		uint64_t left = due > now ? due - now : 0;

		if (ns < 0 || left < (uint64_t)ns)
			ns = left > INT64_MAX ? INT64_MAX : (int64_t)left;
	}
	if (ns < 0)
		return -1;
	if (ns / 1000000 >= INT_MAX)
		return INT_MAX;
	return (int)((ns + 999999) / 1000000);
}

static int dispatch_fds(struct ks_loop *l, const struct epoll_event *evs, int n)
{
	int ran = 0;

	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		struct fd_entry *e = find_fd(l, fd);
		uint32_t ready;

		/* Deleted or re-registered by an earlier callback of this round. */
		if (!e || e->gen != (uint32_t)(evs[i].data.u64 >> 32))
			continue;
		ready = from_epoll(evs[i].events) & (e->events | KS_LOOP_HUP | KS_LOOP_ERR);
		if (!ready)
			continue;
		e->cb(l, fd, ready, e->data);
		ran++;
	}
	return ran;
}

static int dispatch_timers(struct ks_loop *l)
{
	uint64_t now = ks_loop_now_ns(), round = l->seq;
	int ran = 0;

	/* Only timers armed before this round: a callback re-arming itself cannot starve fds. */
	while (l->nheap && l->heap[0]->deadline <= now && l->heap[0]->seq < round) {
		struct timer *t = l->heap[0];
		ks_loop_timer_cb cb = t->cb;
		void *data = t->data;
		int64_t id = t->id;

		if (t->period) {
			t->deadline = add_sat(t->deadline, t->period);
			if (t->deadline <= now)
				t->deadline = add_sat(now, t->period);
			t->seq = l->seq++;
			heap_down(l, 0);
		} else {
			heap_remove(l, 0);
			free(t);
		}
		cb(l, id, data);
		ran++;
	}
	return ran;
}

int ks_loop_run_once(struct ks_loop *l, int64_t timeout_ns)
{
	struct epoll_event evs[MAX_EVENTS];
	int n, ran;

	if (timeout_ns < 0 && !l->nwatched && !l->nheap)
		return 0;
	n = epoll_wait(l->epfd, evs, MAX_EVENTS, wait_ms(l, timeout_ns));
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	l->depth++;
	ran = dispatch_fds(l, evs, n);
	ran += dispatch_timers(l);
	l->depth--;
	return ran;
}

int ks_loop_depth(const struct ks_loop *l)
{
	return l->depth;
}

int ks_loop_run(struct ks_loop *l)
{
	int r = 0;

	while (l->nwatched || l->nheap) {
		r = ks_loop_run_once(l, -1);
		if (r < 0 || l->stop)
			break;
	}
	l->stop = false;
	return r < 0 ? r : 0;
}

void ks_loop_stop(struct ks_loop *l)
{
	l->stop = true;
}
