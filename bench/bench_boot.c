/* bench_boot.c: boot-to-exit time of the demo kernel's default suites next to the floor kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/kt_abi.h>

#include "../tests/vm/vmboot.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One timed boot; returns seconds, or -1 when the kernel did not exit with "all passed". */
static double one_boot(const char *kernel, const char *smp)
{
	struct vm_result r;
	const char *extra[] = { "-smp", smp, NULL };

	if (vm_boot(kernel, extra, 120, &r) < 0)
		return -1;
	double s = r.status == KT_EXIT_STATUS(KT_EXIT_PASS) ? r.seconds : -1;
	if (s < 0)
		fprintf(stderr, "bench_boot: %s exited with status %d%s\n", kernel, r.status,
			r.timed_out ? " (timed out)" : "");
	vm_result_free(&r);
	return s;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_boot DEMO_KERNEL FLOOR_KERNEL [RUNS] [SMP]\n");
		return 2;
	}
	int runs = argc > 3 ? atoi(argv[3]) : 5;
	const char *smp = argc > 4 ? argv[4] : "4";
	if (runs < 1 || runs > 1000) {
		fprintf(stderr, "bench_boot: RUNS must be 1..1000\n");
		return 2;
	}
	double *demo = calloc(runs, sizeof(double)), *floor_ = calloc(runs, sizeof(double));
	/* Alternate the two so that machine noise hits both alike. */
	for (int i = 0; i < runs; i++) {
		floor_[i] = one_boot(argv[2], smp);
		demo[i] = one_boot(argv[1], smp);
		if (floor_[i] < 0 || demo[i] < 0)
			return 1;
	}
	double fmin = floor_[0], dmin = demo[0];
	for (int i = 0; i < runs; i++) {
		fmin = floor_[i] < fmin ? floor_[i] : fmin;
		dmin = demo[i] < dmin ? demo[i] : dmin;
	}
	double fm = median(floor_, runs), dm = median(demo, runs);
	printf("boot to exit, microvm, TCG, -smp %s, 128M, %d runs each, alternating\n", smp, runs);
	printf("%-28s %10s %10s\n", "kernel", "median ms", "min ms");
	printf("%-28s %10.1f %10.1f\n", "floor (exits at once)", fm * 1e3, fmin * 1e3);
	printf("%-28s %10.1f %10.1f\n", "demo (default suites)", dm * 1e3, dmin * 1e3);
	printf("suites add %.1f ms to the floor (target: at most 500 ms); ratio %.2f\n",
	       (dm - fm) * 1e3, dm / fm);
	free(demo);
	free(floor_);
	return 0;
}
