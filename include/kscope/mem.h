/* mem.h: guest physical memory, read and written through the shared RAM mapping or a reader. */
#ifndef KSCOPE_MEM_H
#define KSCOPE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/qemu_argv.h>
#include <kscope/types.h>

/*
 * Guest physical memory. A mapped one maps every RAM file of a ks_ram_layout (MAP_SHARED, so
 * the host sees the guest's stores and the guest the host's) and translates a physical
 * address to its file offset with the layout, holes included (pc and q35 move RAM above the
 * low-memory limit to 4 GiB). Addresses outside RAM are errors, never a fault in the host.
 * A reader-backed one forwards every access to callbacks, for a VM whose RAM cannot be
 * mapped (a remote host): the gdbstub client provides them.
 *
 * Guest values are little-endian (x86-64); the width helpers convert.
 */
struct ks_mem;

/*
 * Physical access without a mapping. Each callback moves len bytes at gpa, or returns a
 * negative errno and should use -EFAULT for an address that is not RAM. write may be NULL
 * for a read-only backend. The callbacks are only ever called with len > 0.
 */
struct ks_mem_reader_ops {
	int (*read)(void *ctx, ks_gpa_t gpa, void *buf, size_t len);
	int (*write)(void *ctx, ks_gpa_t gpa, const void *buf, size_t len);
};

/*
 * Maps RAM file i of layout through fds[i] (one per layout->files, borrowed: the mapping
 * stays valid after the caller closes them) and copies what it needs of layout. A file
 * that opens read-only is mapped read-only, and writes to it then fail with -EROFS.
 * Returns the memory (free with ks_mem_free()), or NULL with err filled: -EINVAL for a
 * layout whose regions overlap or lie outside their file, or a file smaller than the layout
 * says (it could not be read without SIGBUS); -ENOMEM; or mmap's error.
 */
struct ks_mem *ks_mem_new_mapped(const struct ks_ram_layout *layout, const int *fds,
				 struct ks_error *err);

/*
 * Physical memory through ops (copied) and ctx (borrowed; it must outlive the memory).
 * Returns the memory (free with ks_mem_free()), or NULL with err filled: -EINVAL when
 * ops->read is missing, -ENOMEM.
 */
struct ks_mem *ks_mem_new_reader(const struct ks_mem_reader_ops *ops, void *ctx,
				 struct ks_error *err);

/* Unmaps and frees m; NULL is fine. Pointers from ks_mem_ptr() die with it. */
void ks_mem_free(struct ks_mem *m);

/* True when m maps guest RAM (ks_mem_ptr() can succeed), false for a reader. */
bool ks_mem_is_mapped(const struct ks_mem *m);

/*
 * Checks that all of [gpa, gpa + len) is RAM. Returns 0, or -EFAULT with err naming the
 * first address that is not (a range that wraps past 2^64 is not RAM either). A reader
 * cannot tell in advance: for it every range passes and its callbacks decide later.
 */
int ks_mem_check(const struct ks_mem *m, ks_gpa_t gpa, size_t len, struct ks_error *err);

/*
 * Copies len bytes of guest physical memory at gpa to buf, across region boundaries. A
 * mapped memory checks the whole range first: a range partly outside RAM fails as a whole
 * with -EFAULT (err names the first address that is not RAM) and buf is left untouched.
 * A reader's error is returned as it is (buf may then hold part of the data). len 0 is 0.
 */
int ks_mem_read(struct ks_mem *m, ks_gpa_t gpa, void *buf, size_t len, struct ks_error *err);

/*
 * Copies len bytes from buf to guest physical memory at gpa, across region boundaries, with
 * the same checks as ks_mem_read(): nothing is written when any part is outside RAM.
 * -EROFS for a read-only mapping, -EOPNOTSUPP for a reader without write.
 */
int ks_mem_write(struct ks_mem *m, ks_gpa_t gpa, const void *buf, size_t len,
		 struct ks_error *err);

/*
 * Reads or writes one little-endian value at gpa (any alignment). Return 0 or the errors of
 * ks_mem_read() / ks_mem_write(); *val is untouched on failure.
 */
int ks_mem_read_u8(struct ks_mem *m, ks_gpa_t gpa, uint8_t *val);
int ks_mem_read_u16(struct ks_mem *m, ks_gpa_t gpa, uint16_t *val);
int ks_mem_read_u32(struct ks_mem *m, ks_gpa_t gpa, uint32_t *val);
int ks_mem_read_u64(struct ks_mem *m, ks_gpa_t gpa, uint64_t *val);
int ks_mem_write_u8(struct ks_mem *m, ks_gpa_t gpa, uint8_t val);
int ks_mem_write_u16(struct ks_mem *m, ks_gpa_t gpa, uint16_t val);
int ks_mem_write_u32(struct ks_mem *m, ks_gpa_t gpa, uint32_t val);
int ks_mem_write_u64(struct ks_mem *m, ks_gpa_t gpa, uint64_t val);

/*
 * A direct pointer to [gpa, gpa + len) in the mapping, for scans without copies, or NULL
 * when the range is not all inside one mapped region (it crosses a region boundary or a
 * hole, is not RAM, or m is a reader), or len is 0. The pointer is borrowed from m: valid
 * until ks_mem_free(), and the guest may change what it points to while it runs.
 */
void *ks_mem_ptr(struct ks_mem *m, ks_gpa_t gpa, size_t len);

/*
 * A ks_read_gva_fn over physical memory (ctx is the struct ks_mem *): reads the address as
 * physical, for guests that run with an identity map or paging off, e.g. early boot.
 */
int ks_mem_read_identity(void *ctx, ks_gva_t addr, void *buf, size_t len);

#endif
