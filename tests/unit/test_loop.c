/* test_loop.c: the event loop: fds, timers, changes made from callbacks, timeouts, signals. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/loop.h>

#define MS 1000000ll

struct rec {
	int calls;
	uint32_t events;
	int order[16];
	uint64_t at[16];
	int n;
	int64_t other;  /* a timer or fd for the callback to act on */
	int fds[2];
	struct rec *peer;
};

static int setup(void **state)
{
	*state = ks_loop_new(NULL);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	ks_loop_free(*state);
	return 0;
}

static void on_fd(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct rec *r = data;
	char buf[64];

	(void)l;
	r->calls++;
	r->events = events;
	if (events & KS_LOOP_IN)
		(void)!read(fd, buf, sizeof(buf));
}

static void pipe_readable(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(ks_loop_add_fd(l, p[0], KS_LOOP_IN, on_fd, &r), 0);
	assert_int_equal(ks_loop_run_once(l, 0), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(ks_loop_run_once(l, 1000 * MS), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.events, KS_LOOP_IN);
	/* Drained by the callback: nothing more to report. */
	assert_int_equal(ks_loop_run_once(l, 0), 0);
	close(p[1]);
	assert_int_equal(ks_loop_run_once(l, 1000 * MS), 1);
	assert_true(r.events & KS_LOOP_HUP);
	assert_int_equal(ks_loop_del_fd(l, p[0]), 0);
	close(p[0]);
}

static void pipe_writable_then_mod(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(ks_loop_add_fd(l, p[1], KS_LOOP_OUT, on_fd, &r), 0);
	assert_int_equal(ks_loop_run_once(l, 1000 * MS), 1);
	assert_int_equal(r.events, KS_LOOP_OUT);
	assert_int_equal(ks_loop_mod_fd(l, p[1], 0), 0);
	assert_int_equal(ks_loop_run_once(l, 0), 0);
	assert_int_equal(ks_loop_mod_fd(l, p[1], KS_LOOP_OUT), 0);
	assert_int_equal(ks_loop_run_once(l, 0), 1);
	assert_int_equal(ks_loop_del_fd(l, p[1]), 0);
	close(p[0]);
	close(p[1]);
}

static void fd_errors(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int p[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(ks_loop_add_fd(l, -1, KS_LOOP_IN, on_fd, &r), -EBADF);
	assert_int_equal(ks_loop_add_fd(l, p[0], KS_LOOP_IN, NULL, &r), -EINVAL);
	assert_int_equal(ks_loop_add_fd(l, p[0], 0x100, on_fd, &r), -EINVAL);
	assert_int_equal(ks_loop_add_fd(l, devnull, KS_LOOP_IN, on_fd, &r), -EPERM);
	assert_int_equal(ks_loop_add_fd(l, p[0], KS_LOOP_IN, on_fd, &r), 0);
	assert_int_equal(ks_loop_add_fd(l, p[0], KS_LOOP_IN, on_fd, &r), -EEXIST);
	assert_int_equal(ks_loop_del_fd(l, p[0]), 0);
	assert_int_equal(ks_loop_del_fd(l, p[0]), -ENOENT);
	assert_int_equal(ks_loop_mod_fd(l, p[0], KS_LOOP_IN), -ENOENT);
	assert_int_equal(ks_loop_del_timer(l, 12345), -ENOENT);
	assert_int_equal(ks_loop_add_timer(l, 0, 0, NULL, NULL), -EINVAL);
	close(devnull);
	close(p[0]);
	close(p[1]);
}

static void high_fd_numbers(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(dup3(p[0], 200, O_CLOEXEC), 200);
	assert_int_equal(ks_loop_add_fd(l, p[0], KS_LOOP_IN, on_fd, &r), 0);
	assert_int_equal(ks_loop_add_fd(l, 200, KS_LOOP_IN, on_fd, &r), 0);
	assert_int_equal(write(p[1], "xy", 2), 2);
	/* Both watch the same pipe: the first callback drains it, the second may still run. */
	assert_true(ks_loop_run_once(l, 1000 * MS) >= 1);
	assert_int_equal(ks_loop_del_fd(l, 200), 0);
	assert_int_equal(ks_loop_del_fd(l, p[0]), 0);
	close(200);
	close(p[0]);
	close(p[1]);
}

/* Each callback deletes the other pipe, closes it and puts a fresh pipe in its place. */
static struct ks_loop *swap_loop;
static void on_swap(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct rec *r = data, *o = r->peer;
	char c;

	(void)events;
	r->calls++;
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(ks_loop_del_fd(l, o->fds[0]), 0);
	close(o->fds[0]);
	close(o->fds[1]);
	assert_int_equal(pipe2(o->fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(ks_loop_add_fd(l, o->fds[0], KS_LOOP_IN, on_swap, o), 0);
	assert_ptr_equal(l, swap_loop);
}

static void del_and_readd_fd_in_callback(void **state)
{
	struct ks_loop *l = swap_loop = *state;
	struct rec a = {0}, b = {0};

	a.peer = &b;
	b.peer = &a;
	assert_int_equal(pipe2(a.fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(pipe2(b.fds, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(ks_loop_add_fd(l, a.fds[0], KS_LOOP_IN, on_swap, &a), 0);
	assert_int_equal(ks_loop_add_fd(l, b.fds[0], KS_LOOP_IN, on_swap, &b), 0);
	assert_int_equal(write(a.fds[1], "x", 1), 1);
	assert_int_equal(write(b.fds[1], "x", 1), 1);
	/* Only the first runs: the other's readiness belonged to the pipe it replaced. */
	assert_int_equal(ks_loop_run_once(l, 1000 * MS), 1);
	assert_int_equal(a.calls + b.calls, 1);
	/* The fresh pipe is empty, and its number may equal the old one's. */
	assert_int_equal(ks_loop_run_once(l, 0), 0);
	ks_loop_del_fd(l, a.fds[0]);
	ks_loop_del_fd(l, b.fds[0]);
	close(a.fds[0]), close(a.fds[1]), close(b.fds[0]), close(b.fds[1]);
}

static void on_fd_del_self(struct ks_loop *l, int fd, uint32_t events, void *data)
{
	struct rec *r = data;

	(void)events;
	r->calls++;
	assert_int_equal(ks_loop_del_fd(l, fd), 0);
}

static void del_self_fd(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(ks_loop_add_fd(l, p[0], KS_LOOP_IN, on_fd_del_self, &r), 0);
	assert_int_equal(ks_loop_run_once(l, 1000 * MS), 1);
	assert_int_equal(ks_loop_run_once(l, 0), 0);
	assert_int_equal(r.calls, 1);
	close(p[0]);
	close(p[1]);
}

/* ---- timers ---- */

static void on_timer(struct ks_loop *l, int64_t id, void *data)
{
	struct rec *r = data;

	(void)l;
	r->order[r->n++] = (int)id;
	r->calls++;
}

static void run_until(struct ks_loop *l, struct rec *r, int calls)
{
	uint64_t end = ks_loop_now_ns() + 5000 * MS;

	while (r->calls < calls && ks_loop_now_ns() < end)
		assert_true(ks_loop_run_once(l, 100 * MS) >= 0);
	assert_int_equal(r->calls, calls);
}

static void timers_fire_in_order(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	uint64_t t0 = ks_loop_now_ns();
	int64_t late = ks_loop_add_timer(l, 30 * MS, 0, on_timer, &r);
	int64_t early = ks_loop_add_timer(l, 10 * MS, 0, on_timer, &r);
	int64_t mid = ks_loop_add_timer(l, 20 * MS, 0, on_timer, &r);
	int64_t now1 = ks_loop_add_timer(l, 0, 0, on_timer, &r);
	int64_t now2 = ks_loop_add_timer(l, 0, 0, on_timer, &r);

	assert_true(late > 0 && early > 0 && mid > 0 && now1 > 0 && now2 > 0);
	run_until(l, &r, 5);
	assert_true(ks_loop_now_ns() - t0 >= 30 * MS);
	assert_int_equal(r.order[0], now1);
	assert_int_equal(r.order[1], now2);
	assert_int_equal(r.order[2], early);
	assert_int_equal(r.order[3], mid);
	assert_int_equal(r.order[4], late);
	/* One-shots are gone once fired. */
	assert_int_equal(ks_loop_del_timer(l, early), -ENOENT);
	assert_int_equal(ks_loop_run_once(l, 0), 0);
}

static void on_periodic(struct ks_loop *l, int64_t id, void *data)
{
	struct rec *r = data;

	r->at[r->n++] = ks_loop_now_ns();
	if (++r->calls == 4)
		assert_int_equal(ks_loop_del_timer(l, id), 0);
}

static void periodic_timer(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	uint64_t t0 = ks_loop_now_ns();

	assert_true(ks_loop_add_timer(l, 5 * MS, 10 * MS, on_periodic, &r) > 0);
	run_until(l, &r, 4);
	/* Never early: expiry i is due at 5 + 10 * i ms. */
	for (int i = 0; i < 4; i++)
		assert_true(r.at[i] - t0 >= (uint64_t)(5 + 10 * i) * MS);
	/* Deleted itself on the fourth expiry: the loop is empty again. */
	assert_int_equal(ks_loop_run_once(l, 30 * MS), 0);
	assert_int_equal(r.calls, 4);
}

static void on_timer_del_other(struct ks_loop *l, int64_t id, void *data)
{
	struct rec *r = data;

	on_timer(l, id, data);
	assert_int_equal(ks_loop_del_timer(l, r->other), 0);
	/* A one-shot is no longer armed in its own callback. */
	assert_int_equal(ks_loop_del_timer(l, id), -ENOENT);
}

static void del_timer_in_callback(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int64_t first = ks_loop_add_timer(l, 5 * MS, 0, on_timer_del_other, &r);

	/* Due in the same round as `first`, but deleted by it. */
	r.other = ks_loop_add_timer(l, 5 * MS, 0, on_timer, &r);
	assert_true(first > 0 && r.other > 0);
	run_until(l, &r, 1);
	assert_int_equal(ks_loop_run_once(l, 20 * MS), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.order[0], first);
}

static void on_timer_rearm(struct ks_loop *l, int64_t id, void *data)
{
	struct rec *r = data;

	on_timer(l, id, data);
	if (r->calls < 3)
		assert_true(ks_loop_add_timer(l, 0, 0, on_timer_rearm, r) > 0);
}

static void add_timer_in_callback(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};

	assert_true(ks_loop_add_timer(l, 0, 0, on_timer_rearm, &r) > 0);
	/* Each round runs only the timers armed before it started. */
	assert_int_equal(ks_loop_run_once(l, 100 * MS), 1);
	assert_int_equal(ks_loop_run_once(l, 100 * MS), 1);
	assert_int_equal(ks_loop_run_once(l, 100 * MS), 1);
	assert_int_equal(ks_loop_run_once(l, 0), 0);
	assert_int_equal(r.calls, 3);
}

static void run_once_timeout(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int p[2];
	uint64_t t0;

	/* Nothing to wait for and no limit: returns at once rather than sleeping forever. */
	assert_int_equal(ks_loop_run_once(l, -1), 0);
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(ks_loop_add_fd(l, p[0], KS_LOOP_IN, on_fd, &r), 0);
	t0 = ks_loop_now_ns();
	assert_int_equal(ks_loop_run_once(l, 0), 0);
	assert_true(ks_loop_now_ns() - t0 < 200 * MS);
	t0 = ks_loop_now_ns();
	assert_int_equal(ks_loop_run_once(l, 50 * MS), 0);
	assert_true(ks_loop_now_ns() - t0 >= 50 * MS);
	assert_true(ks_loop_now_ns() - t0 < 1000 * MS);
	/* A later timer does not stretch the wait. */
	assert_true(ks_loop_add_timer(l, 500 * MS, 0, on_timer, &r) > 0);
	t0 = ks_loop_now_ns();
	assert_int_equal(ks_loop_run_once(l, 30 * MS), 0);
	assert_true(ks_loop_now_ns() - t0 >= 30 * MS);
	assert_true(ks_loop_now_ns() - t0 < 1000 * MS);
	/* Nor does one at the end of time turn it into an endless one. */
	assert_true(ks_loop_add_timer(l, UINT64_MAX, 0, on_timer, &r) > 0);
	t0 = ks_loop_now_ns();
	assert_int_equal(ks_loop_run_once(l, 20 * MS), 0);
	assert_true(ks_loop_now_ns() - t0 < 1000 * MS);
	assert_int_equal(r.calls, 0);
	ks_loop_del_fd(l, p[0]);
	close(p[0]);
	close(p[1]);
}

static void on_alarm(int sig) { (void)sig; }

static void signal_interrupts_wait(void **state)
{
	struct ks_loop *l = *state;
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct itimerval it = { .it_value = { .tv_usec = 20000 } };
	struct rec r = {0};
	uint64_t t0;

	assert_true(ks_loop_add_timer(l, 2000 * MS, 0, on_timer, &r) > 0);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	t0 = ks_loop_now_ns();
	assert_int_equal(ks_loop_run_once(l, -1), 0);
	assert_true(ks_loop_now_ns() - t0 < 1500 * MS);
	sigaction(SIGALRM, &old, NULL);
}

static void on_timer_stop(struct ks_loop *l, int64_t id, void *data)
{
	on_timer(l, id, data);
	if (((struct rec *)data)->calls == 3)
		ks_loop_stop(l);
}

static void run_until_stop(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};
	int64_t id = ks_loop_add_timer(l, 1 * MS, 2 * MS, on_timer_stop, &r);

	assert_true(id > 0);
	assert_int_equal(ks_loop_run(l), 0);
	assert_int_equal(r.calls, 3);
	assert_int_equal(ks_loop_del_timer(l, id), 0);
	/* Nothing left to watch: returns once the last one-shot has fired. */
	assert_true(ks_loop_add_timer(l, 1 * MS, 0, on_timer, &r) > 0);
	assert_int_equal(ks_loop_run(l), 0);
	assert_int_equal(r.calls, 4);
}

static void on_timer_nested(struct ks_loop *l, int64_t id, void *data)
{
	struct rec *r = data;

	/* One round under way, or two once nested. */
	assert_int_equal(ks_loop_depth(l), r->calls + 1);
	on_timer(l, id, data);
	if (r->calls == 1) {
		assert_true(ks_loop_add_timer(l, 1 * MS, 0, on_timer, r) > 0);
		while (r->calls < 2)
			assert_true(ks_loop_run_once(l, 100 * MS) >= 0);
	}
}

static void nested_run_once(void **state)
{
	struct ks_loop *l = *state;
	struct rec r = {0};

	assert_int_equal(ks_loop_depth(l), 0);
	assert_true(ks_loop_add_timer(l, 0, 0, on_timer_nested, &r) > 0);
	assert_int_equal(ks_loop_run_once(l, 100 * MS), 1);
	assert_int_equal(r.calls, 2);
	assert_int_equal(ks_loop_depth(l), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pipe_readable, setup, teardown),
		cmocka_unit_test_setup_teardown(pipe_writable_then_mod, setup, teardown),
		cmocka_unit_test_setup_teardown(fd_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(high_fd_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(del_and_readd_fd_in_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(del_self_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(timers_fire_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(periodic_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(del_timer_in_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(add_timer_in_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(run_once_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(signal_interrupts_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(run_until_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(nested_run_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
