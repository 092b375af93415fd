/* test_sparse.c: ks_sparse_copy() makes a file range the same as another's, holes kept. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm_internal.h"

#define PAGE 4096u
#define SIZE (64 * PAGE)

/* The source's data pages: one at each end, runs in between; the rest are holes. */
static const struct { unsigned first, count; } data_runs[] = {
	{ 0, 1 }, { 5, 3 }, { 9, 1 }, { 20, 12 }, { 63, 1 },
};

static int new_memfd(void)
{
	int fd = memfd_create("test-sparse", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SIZE), 0);
	return fd;
}

/* An unlinked file on /dev/shm: another tmpfs than memfds', which copy_file_range() refuses
 * to pair with them (the pread/pwrite path); a memfd where /dev/shm is missing. */
static int new_shm_file(void)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/shm/kscope-test-sparse-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return new_memfd();
	unlink(path);
	assert_int_equal(ftruncate(fd, SIZE), 0);
	return fd;
}

/* Writes a pattern that differs on every byte of every data run (zero bytes included). */
static uint64_t fill_source(int fd)
{
	static unsigned char page[PAGE];
	uint64_t bytes = 0;

	for (size_t r = 0; r < sizeof(data_runs) / sizeof(data_runs[0]); r++)
		for (unsigned p = data_runs[r].first; p < data_runs[r].first + data_runs[r].count;
		     p++) {
			for (unsigned i = 0; i < PAGE; i++)
				page[i] = (unsigned char)(i * 7 + p);
			assert_int_equal(pwrite(fd, page, PAGE, (off_t)p * PAGE), PAGE);
			bytes += PAGE;
		}
	return bytes;
}

/* Every byte of fd written with v: no holes at all. */
static void fill_all(int fd, unsigned char v)
{
	static unsigned char buf[SIZE];

	memset(buf, v, sizeof(buf));
	assert_int_equal(pwrite(fd, buf, SIZE, 0), SIZE);
}

static unsigned char *contents(int fd)
{
	unsigned char *buf = malloc(SIZE);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, SIZE, 0), SIZE);
	return buf;
}

/* The data extents of fd as "start-end," pairs (SEEK_DATA / SEEK_HOLE). */
static void extents(int fd, char *out, size_t size)
{
	size_t n = 0;

	out[0] = 0;
	for (off_t at = 0, data, hole; at < SIZE; at = hole) {
		if ((data = lseek(fd, at, SEEK_DATA)) < 0) {
			assert_int_equal(errno, ENXIO);
			break;
		}
		hole = lseek(fd, data, SEEK_HOLE);
		assert_true(hole > data);
		n += (size_t)snprintf(out + n, size - n, "%lld-%lld,", (long long)data,
				      (long long)hole);
		assert_true(n < size);
	}
}

/* dst equals src byte for byte and has the same data extents. */
static void assert_same(int dst, int src)
{
	unsigned char *a = contents(dst), *b = contents(src);
	char ea[512], eb[512];

	assert_memory_equal(a, b, SIZE);
	extents(dst, ea, sizeof(ea));
	extents(src, eb, sizeof(eb));
	assert_string_equal(ea, eb);
	free(a);
	free(b);
}

/* Into an empty file (a snapshot's new copy): the data, and nothing else allocated. */
static void copies_data_into_empty_file(void **state)
{
	int src = new_shm_file(), dst = new_memfd();
	uint64_t want = fill_source(src), got = 0;
	struct ks_error err = { 0 };

	(void)state;
	assert_int_equal(ks_sparse_copy(dst, src, 0, SIZE, &got, &err), 0);
	assert_int_equal(got, want);
	assert_same(dst, src);
	close(src);
	close(dst);
}

/* Over a file full of other bytes (RAM the guest wrote since): the source's holes become
 * holes again, its data overwrites. Both directions between the two kinds of tmpfs file,
 * and memfd to memfd, which copy_file_range() can pair. */
static void restores_over_written_file(void **state)
{
	int (*const kinds[3][2])(void) = {
		{ new_memfd, new_shm_file }, { new_shm_file, new_memfd }, { new_memfd, new_memfd },
	};
	struct ks_error err = { 0 };

	(void)state;
	for (int k = 0; k < 3; k++) {
		int src = kinds[k][0](), dst = kinds[k][1]();
		uint64_t got = 0, want = fill_source(src);

		fill_all(dst, 0xaa);
		assert_int_equal(ks_sparse_copy(dst, src, 0, SIZE, &got, &err), 0);
		assert_int_equal(got, want);
		assert_same(dst, src);
		close(src);
		close(dst);
	}
}

/* A range that starts and ends inside pages (a ROM blob's bytes): only it changes. */
static void unaligned_range_changes_only_it(void **state)
{
	const uint64_t start = 4 * PAGE + 100, end = 21 * PAGE + 7;
	int src = new_memfd(), dst = new_shm_file();
	unsigned char *s, *d;
	struct ks_error err = { 0 };

	(void)state;
	fill_source(src);
	fill_all(dst, 0x55);
	assert_int_equal(ks_sparse_copy(dst, src, start, end, NULL, &err), 0);
	s = contents(src);
	d = contents(dst);
	for (uint64_t i = 0; i < SIZE; i++)
		if (d[i] != (i >= start && i < end ? s[i] : 0x55))
			fail_msg("byte %llu: 0x%02x", (unsigned long long)i, d[i]);
	free(s);
	free(d);
	close(src);
	close(dst);
}

/* All holes in the source: the destination is emptied, nothing is copied. */
static void empty_source_empties(void **state)
{
	int src = new_memfd(), dst = new_memfd();
	uint64_t got = 1;
	struct ks_error err = { 0 };

	(void)state;
	fill_all(dst, 0x11);
	assert_int_equal(ks_sparse_copy(dst, src, 0, SIZE, &got, &err), 0);
	assert_int_equal(got, 0);
	assert_same(dst, src);
	close(src);
	close(dst);
}

static void bad_file_is_an_error(void **state)
{
	int src = new_memfd();
	struct ks_error err = { 0 };

	(void)state;
	fill_source(src);
	assert_int_equal(ks_sparse_copy(-1, src, 0, SIZE, NULL, &err), -EBADF);
	assert_non_null(strstr(err.msg, "copy: "));
	close(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(copies_data_into_empty_file),
		cmocka_unit_test(restores_over_written_file),
		cmocka_unit_test(unaligned_range_changes_only_it),
		cmocka_unit_test(empty_source_empties),
		cmocka_unit_test(bad_file_is_an_error),
	};

	return cmocka_run_group_tests_name("sparse", tests, NULL, NULL);
}
