/* test_mem.c: guest physical memory over memfd "RAM" laid out like pc (a hole below 4 GiB), and the reader fallback. */
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

#include <kscope/mem.h>

#define GIB (1ull << 30)
#define LOW_SIZE (3 * GIB)      /* pc with more than 3.5 GiB: 3 GiB low, the rest from 4 GiB */
#define HIGH_SIZE 0x10000ull
#define NODE1_SIZE 0x10000ull

/*
 * Node 0's file (sparse, 3 GiB + 64 KiB): gpa 0 .. 3 GiB, then its last 64 KiB at 4 GiB.
 * Node 1's file (64 KiB) follows at 4 GiB + 64 KiB: two regions of different files touch.
 */
struct fake {
	int fds[2];
	struct ks_ram_file files[2];
	struct ks_ram_region regions[3];
	struct ks_ram_layout layout;
	struct ks_mem *m;
};

static int memfd(uint64_t size)
{
	int fd = memfd_create("kscope-test-ram", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static void fake_layout(struct fake *f)
{
	f->fds[0] = memfd(LOW_SIZE + HIGH_SIZE);
	f->fds[1] = memfd(NODE1_SIZE);
	f->files[0] = (struct ks_ram_file){ .path = "node0", .node = 0, .size = LOW_SIZE + HIGH_SIZE };
	f->files[1] = (struct ks_ram_file){ .path = "node1", .node = 1, .size = NODE1_SIZE };
	f->regions[0] = (struct ks_ram_region){ .file = 0, .offset = 0, .gpa = 0, .size = LOW_SIZE };
	f->regions[1] = (struct ks_ram_region){ .file = 0, .offset = LOW_SIZE, .gpa = 4 * GIB,
						.size = HIGH_SIZE };
	f->regions[2] = (struct ks_ram_region){ .file = 1, .offset = 0,
						.gpa = 4 * GIB + HIGH_SIZE, .size = NODE1_SIZE };
	f->layout = (struct ks_ram_layout){ .files = f->files, .nfiles = 2,
					    .regions = f->regions, .nregions = 3 };
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct ks_error err = { 0 };

	fake_layout(f);
	f->m = ks_mem_new_mapped(&f->layout, f->fds, &err);
	if (!f->m)
		fail_msg("ks_mem_new_mapped: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	ks_mem_free(f->m);
	close(f->fds[0]);
	close(f->fds[1]);
	free(f);
	return 0;
}

/* What the file holds at off, read past the mapping. */
static void file_bytes(int fd, uint64_t off, void *buf, size_t len)
{
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
}

static void reads_and_writes_low_ram(void **state)
{
	struct fake *f = *state;
	char out[32], in[32] = "low memory, gpa 0x1000";

	assert_true(ks_mem_is_mapped(f->m));
	assert_int_equal(ks_mem_write(f->m, 0x1000, in, sizeof(in), NULL), 0);
	file_bytes(f->fds[0], 0x1000, out, sizeof(out));
	assert_memory_equal(out, in, sizeof(in));
	memset(out, 0, sizeof(out));
	assert_int_equal(ks_mem_read(f->m, 0x1000, out, sizeof(out), NULL), 0);
	assert_memory_equal(out, in, sizeof(in));
	/* The last bytes below the hole. */
	assert_int_equal(ks_mem_write(f->m, LOW_SIZE - 4, "end", 4, NULL), 0);
	file_bytes(f->fds[0], LOW_SIZE - 4, out, 4);
	assert_string_equal(out, "end");
	assert_int_equal(ks_mem_read(f->m, 0x1000, out, 0, NULL), 0);
}

/* RAM above the hole lives at the file offset the layout says, not at its gpa. */
static void high_ram_maps_to_file_offsets(void **state)
{
	struct fake *f = *state;
	char out[8];

	assert_int_equal(ks_mem_write(f->m, 4 * GIB, "high", 5, NULL), 0);
	file_bytes(f->fds[0], LOW_SIZE, out, 5);
	assert_string_equal(out, "high");
	assert_int_equal(ks_mem_write(f->m, 4 * GIB + HIGH_SIZE + 8, "node1", 6, NULL), 0);
	file_bytes(f->fds[1], 8, out, 6);
	assert_string_equal(out, "node1");
	/* A write through the file shows in the mapping (MAP_SHARED). */
	assert_int_equal(pwrite(f->fds[1], "fromfd", 7, 0x100), 7);
	assert_int_equal(ks_mem_read(f->m, 4 * GIB + HIGH_SIZE + 0x100, out, 7, NULL), 0);
	assert_string_equal(out, "fromfd");
}

static void crosses_region_boundaries(void **state)
{
	struct fake *f = *state;
	uint8_t in[64], out[64], a[32], b[32];
	ks_gpa_t at = 4 * GIB + HIGH_SIZE - 32;

	for (int i = 0; i < 64; i++)
		in[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(ks_mem_write(f->m, at, in, sizeof(in), NULL), 0);
	file_bytes(f->fds[0], LOW_SIZE + HIGH_SIZE - 32, a, 32);
	file_bytes(f->fds[1], 0, b, 32);
	assert_memory_equal(a, in, 32);
	assert_memory_equal(b, in + 32, 32);
	assert_int_equal(ks_mem_read(f->m, at, out, sizeof(out), NULL), 0);
	assert_memory_equal(out, in, sizeof(in));
	assert_int_equal(ks_mem_check(f->m, at, sizeof(in), NULL), 0);
}

/* Reads and writes that reach outside RAM fail whole, naming the first bad address. */
static void outside_ram_fails_whole(void **state)
{
	static const struct { ks_gpa_t gpa; size_t len; ks_gpa_t bad; } cases[] = {
		{ LOW_SIZE, 4, LOW_SIZE },                      /* in the hole */
		{ LOW_SIZE - 16, 32, LOW_SIZE },                /* into the hole */
		{ 4 * GIB - 1, 2, 4 * GIB - 1 },                /* just below high RAM */
		{ 4 * GIB + HIGH_SIZE + NODE1_SIZE - 8, 16, 4 * GIB + HIGH_SIZE + NODE1_SIZE },
		{ 0xfffffffffffff000ull, 0x2000, 0xfffffffffffff000ull }, /* wraps */
		{ 1ull << 52, 1, 1ull << 52 },
	};
	struct fake *f = *state;
	uint8_t buf[0x2000], zero[0x2000] = { 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ks_error err = { 0 };
		char want[64];

		memset(buf, 0xaa, sizeof(buf));
		assert_int_equal(ks_mem_read(f->m, cases[i].gpa, buf, cases[i].len, &err), -EFAULT);
		snprintf(want, sizeof(want), "0x%llx is not RAM", (unsigned long long)cases[i].bad);
		if (!strstr(err.msg, want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, want);
		for (size_t j = 0; j < cases[i].len; j++)
			assert_int_equal(buf[j], 0xaa);
		assert_int_equal(ks_mem_write(f->m, cases[i].gpa, buf, cases[i].len, NULL), -EFAULT);
		assert_int_equal(ks_mem_check(f->m, cases[i].gpa, cases[i].len, NULL), -EFAULT);
		assert_null(ks_mem_ptr(f->m, cases[i].gpa, cases[i].len));
	}
	/* The writes that failed changed nothing inside RAM either. */
	file_bytes(f->fds[0], LOW_SIZE - 16, buf, 16);
	assert_memory_equal(buf, zero, 16);
	file_bytes(f->fds[1], NODE1_SIZE - 8, buf, 8);
	assert_memory_equal(buf, zero, 8);
}

static void fixed_widths(void **state)
{
	struct fake *f = *state;
	uint8_t raw[15], v8 = 0;
	uint16_t v16 = 0;
	uint32_t v32 = 0;
	uint64_t v64 = 0;
	static const uint8_t want[15] = { 0x5a, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 0xef, 0xcd,
					  0xab, 0x89, 0x67, 0x45, 0x23, 0x01 };

	/* Unaligned on purpose, little-endian in guest memory. */
	ks_gpa_t at = 4 * GIB + 0x101;
	assert_int_equal(ks_mem_write_u8(f->m, at, 0x5a), 0);
	assert_int_equal(ks_mem_write_u16(f->m, at + 1, 0x1234), 0);
	assert_int_equal(ks_mem_write_u32(f->m, at + 3, 0x12345678), 0);
	assert_int_equal(ks_mem_write_u64(f->m, at + 7, 0x0123456789abcdefull), 0);
	file_bytes(f->fds[0], LOW_SIZE + 0x101, raw, sizeof(raw));
	assert_memory_equal(raw, want, sizeof(want));
	assert_int_equal(ks_mem_read_u8(f->m, at, &v8), 0);
	assert_int_equal(ks_mem_read_u16(f->m, at + 1, &v16), 0);
	assert_int_equal(ks_mem_read_u32(f->m, at + 3, &v32), 0);
	assert_int_equal(ks_mem_read_u64(f->m, at + 7, &v64), 0);
	assert_int_equal(v8, 0x5a);
	assert_int_equal(v16, 0x1234);
	assert_int_equal(v32, 0x12345678);
	assert_true(v64 == 0x0123456789abcdefull);
	/* Straddling two files. */
	ks_gpa_t edge = 4 * GIB + HIGH_SIZE - 3;
	assert_int_equal(ks_mem_write_u64(f->m, edge, 0x1122334455667788ull), 0);
	assert_int_equal(ks_mem_read_u64(f->m, edge, &v64), 0);
	assert_true(v64 == 0x1122334455667788ull);
	/* Outside RAM: an error, the value untouched. */
	v64 = 42;
	assert_int_equal(ks_mem_read_u64(f->m, LOW_SIZE - 4, &v64), -EFAULT);
	assert_true(v64 == 42);
	assert_int_equal(ks_mem_read_u8(f->m, LOW_SIZE, &v8), -EFAULT);
	assert_int_equal(ks_mem_write_u32(f->m, 4 * GIB - 2, 1), -EFAULT);
	assert_int_equal(ks_mem_write_u16(f->m, LOW_SIZE, 1), -EFAULT);
}

static void direct_pointers(void **state)
{
	struct fake *f = *state;
	char buf[8];

	char *p = ks_mem_ptr(f->m, 4 * GIB + 0x200, 16);
	assert_non_null(p);
	memcpy(p, "direct", 7);
	assert_int_equal(ks_mem_read(f->m, 4 * GIB + 0x200, buf, 7, NULL), 0);
	assert_string_equal(buf, "direct");
	assert_non_null(ks_mem_ptr(f->m, 0, LOW_SIZE));
	assert_null(ks_mem_ptr(f->m, 0, LOW_SIZE + 1));
	/* Two regions next to each other are still two mappings. */
	assert_null(ks_mem_ptr(f->m, 4 * GIB + HIGH_SIZE - 8, 16));
	assert_null(ks_mem_ptr(f->m, 0x1000, 0));
}

static void identity_reader(void **state)
{
	struct fake *f = *state;
	char buf[8];

	assert_int_equal(ks_mem_write(f->m, 0x2000, "ident", 6, NULL), 0);
	assert_int_equal(ks_mem_read_identity(f->m, 0x2000, buf, 6), 0);
	assert_string_equal(buf, "ident");
	assert_int_equal(ks_mem_read_identity(f->m, LOW_SIZE, buf, 1), -EFAULT);
}

static void bad_layouts_refused(void **state)
{
	struct fake f;
	struct ks_error err = { 0 };
	(void)state;

	fake_layout(&f);
	/* The file is smaller than the layout says: mapping it would SIGBUS later. */
	assert_int_equal(ftruncate(f.fds[1], 0x1000), 0);
	assert_null(ks_mem_new_mapped(&f.layout, f.fds, &err));
	assert_int_equal(err.code, -EINVAL);
	assert_non_null(strstr(err.msg, "RAM file 1"));
	assert_int_equal(ftruncate(f.fds[1], NODE1_SIZE), 0);
	/* Overlapping regions. */
	f.regions[2].gpa = 4 * GIB + 0x8000;
	assert_null(ks_mem_new_mapped(&f.layout, f.fds, &err));
	assert_non_null(strstr(err.msg, "overlap"));
	/* A region beyond its file. */
	f.regions[2].gpa = 4 * GIB + HIGH_SIZE;
	f.regions[2].offset = 0x8000;
	assert_null(ks_mem_new_mapped(&f.layout, f.fds, &err));
	assert_non_null(strstr(err.msg, "outside its file"));
	/* Regions given in any order are sorted. */
	f.regions[2].offset = 0;
	struct ks_ram_region r0 = f.regions[0];
	f.regions[0] = f.regions[2];
	f.regions[2] = r0;
	struct ks_mem *m = ks_mem_new_mapped(&f.layout, f.fds, &err);
	assert_non_null(m);
	assert_int_equal(ks_mem_write(m, 4 * GIB + HIGH_SIZE - 2, "xyz", 4, NULL), 0);
	ks_mem_free(m);
	ks_mem_free(NULL);
	close(f.fds[0]);
	close(f.fds[1]);
}

/* A viewer that could only open the RAM read-only still reads; writes say why they fail. */
static void read_only_files(void **state)
{
	struct fake *f = *state;
	char path[64], buf[8];
	int ro[2];
	struct ks_error err = { 0 };

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fds[i]);
		ro[i] = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(ro[i] >= 0);
	}
	struct ks_mem *m = ks_mem_new_mapped(&f->layout, ro, &err);
	assert_non_null(m);
	close(ro[0]);
	close(ro[1]);
	assert_int_equal(ks_mem_write(f->m, 0x3000, "rw", 3, NULL), 0);
	assert_int_equal(ks_mem_read(m, 0x3000, buf, 3, NULL), 0);
	assert_string_equal(buf, "rw");
	assert_int_equal(ks_mem_write(m, 0x3000, "no", 3, &err), -EROFS);
	assert_non_null(strstr(err.msg, "read-only"));
	ks_mem_free(m);
}

/* ---- the reader fallback ---- */

struct backing {
	ks_gpa_t base;
	uint8_t bytes[0x2000];
	int reads, writes;
};

static int back_read(void *ctx, ks_gpa_t gpa, void *buf, size_t len)
{
	struct backing *b = ctx;

	b->reads++;
	if (gpa < b->base || gpa - b->base > sizeof(b->bytes) ||
	    len > sizeof(b->bytes) - (gpa - b->base))
		return -EFAULT;
	memcpy(buf, b->bytes + (gpa - b->base), len);
	return 0;
}

static int back_write(void *ctx, ks_gpa_t gpa, const void *buf, size_t len)
{
	struct backing *b = ctx;

	b->writes++;
	if (gpa < b->base || gpa - b->base > sizeof(b->bytes) ||
	    len > sizeof(b->bytes) - (gpa - b->base))
		return -EFAULT;
	memcpy(b->bytes + (gpa - b->base), buf, len);
	return 0;
}

static void reader_fallback(void **state)
{
	static struct backing b = { .base = 0x100000 };
	struct ks_mem_reader_ops ops = { .read = back_read, .write = back_write };
	struct ks_error err = { 0 };
	uint64_t v = 0;
	char buf[8];
	(void)state;

	struct ks_mem *m = ks_mem_new_reader(&ops, &b, &err);
	assert_non_null(m);
	assert_false(ks_mem_is_mapped(m));
	assert_int_equal(ks_mem_write_u64(m, 0x100010, 0x1122334455667788ull), 0);
	assert_int_equal(b.bytes[0x10], 0x88);
	assert_int_equal(ks_mem_read_u64(m, 0x100010, &v), 0);
	assert_true(v == 0x1122334455667788ull);
	assert_int_equal(ks_mem_read(m, 0x0ff000, buf, 4, &err), -EFAULT);
	assert_non_null(strstr(err.msg, "0xff000"));
	assert_int_equal(ks_mem_read_identity(m, 0x100010, buf, 1), 0);
	assert_null(ks_mem_ptr(m, 0x100000, 8));
	assert_int_equal(ks_mem_check(m, 0, 8, NULL), 0);
	int reads = b.reads;
	assert_int_equal(ks_mem_read(m, 0x100000, buf, 0, NULL), 0);
	assert_int_equal(b.reads, reads);
	ks_mem_free(m);

	/* Read-only: no write callback. */
	ops.write = NULL;
	m = ks_mem_new_reader(&ops, &b, NULL);
	assert_int_equal(ks_mem_write_u8(m, 0x100000, 1), -EOPNOTSUPP);
	ks_mem_free(m);
	ops.read = NULL;
	assert_null(ks_mem_new_reader(&ops, &b, &err));
	assert_int_equal(err.code, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reads_and_writes_low_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(high_ram_maps_to_file_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(crosses_region_boundaries, setup, teardown),
		cmocka_unit_test_setup_teardown(outside_ram_fails_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(fixed_widths, setup, teardown),
		cmocka_unit_test_setup_teardown(direct_pointers, setup, teardown),
		cmocka_unit_test_setup_teardown(identity_reader, setup, teardown),
		cmocka_unit_test(bad_layouts_refused),
		cmocka_unit_test_setup_teardown(read_only_files, setup, teardown),
		cmocka_unit_test(reader_fallback),
	};

	return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}
