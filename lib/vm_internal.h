/* vm_internal.h: helpers of the vm module (qcow2 images, sparse copies, the KVM probe) shared with its tests. */
#ifndef KSCOPE_VM_INTERNAL_H
#define KSCOPE_VM_INTERNAL_H

#include <stdint.h>

#include <kscope/error.h>

/*
 * Writes an empty qcow2 (version 3, 64 KiB clusters) of `size` virtual bytes at path, the
 * drive savevm stores VM state in. Creating it here rather than with qemu-img keeps a
 * process start off the VM start path. Returns 0 or -errno with err filled.
 */
int ks_qcow2_create(const char *path, uint64_t size, struct ks_error *err);

/*
 * Makes [start, end) of file dst what it is in file src, byte for byte, without writing
 * zeroes: src's data extents (SEEK_DATA/SEEK_HOLE) are copied (copy_file_range(), or
 * pread/pwrite between files it cannot pair), and its holes are punched into dst, so that
 * dst is as sparse there as src. dst must be at least `end` bytes long. *copied (may be NULL)
 * receives the bytes of data copied. Returns 0 or -errno with err filled.
 */
int ks_sparse_copy(int dst, int src, uint64_t start, uint64_t end, uint64_t *copied,
		   struct ks_error *err);

/*
 * Writes a tiny PVH kernel at path that sets up an IDT, executes int3, and from the int3
 * handler writes `code` to the isa-debug-exit port (QEMU then exits with status
 * (code << 1) | 1; 0x11 if int3 did not trap). Returns 0 or -errno.
 */
int ks_probe_kernel_write(const char *path, uint8_t code, struct ks_error *err);

/* Runs the probe kernel under KVM with qemu; 0 when it exited as it should (so KVM runs
 * guests, int3 included), else -errno with err saying what happened. */
int ks_kvm_probe(const char *qemu, struct ks_error *err);

#endif
