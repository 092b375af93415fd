/* vm_snapram.c: the guest RAM of internal snapshots, copied into memfds of the owning process. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kscope/qmp.h>

#include "vm_internal.h"
#include "vm_private.h"

#define HMP_TIMEOUT_NS (10 * 1000000000ll)

bool vm_ramcopy_possible(const struct ks_vm *vm)
{
	return vm->ram && vm->ram->nfiles && vm->ram_fds;
}

/* Adds the part of guest-physical [gpa, gpa + size) that lies in region r, if any. */
static int add_span(struct ks_vm *vm, const struct ks_ram_region *r, uint64_t gpa,
		    uint64_t size)
{
	uint64_t lo = gpa > r->gpa ? gpa : r->gpa;
	uint64_t hi = gpa + size < r->gpa + r->size ? gpa + size : r->gpa + r->size;
	struct vm_span *grown;

	if (lo >= hi)
		return 0;
	grown = realloc(vm->rom_spans, (vm->nrom_spans + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	vm->rom_spans = grown;
	grown[vm->nrom_spans++] = (struct vm_span){ r->file, r->offset + (lo - r->gpa), hi - lo };
	return 0;
}

/*
 * "addr=0000000000100000 size=0x00014c mem=ram name=..." (QEMU 7.2): a blob rom_reset()
 * copies to guest-physical addr at every reset. mem=rom ones are written once, and the
 * lines without addr= are blobs in memory regions of their own, saved by savevm.
 */
static int add_rom_line(struct ks_vm *vm, const char *line)
{
	uint64_t gpa, size;
	char mem[8];
	int rc = 0;

	if (sscanf(line, "addr=%" SCNx64 " size=0x%" SCNx64 " mem=%7s", &gpa, &size, mem) != 3 ||
	    strcmp(mem, "ram") || size > UINT64_MAX - gpa)
		return 0;
	for (size_t i = 0; rc == 0 && i < vm->ram->nregions; i++)
		rc = add_span(vm, &vm->ram->regions[i], gpa, size);
	return rc;
}

int vm_rom_spans_learn(struct ks_vm *vm, struct ks_error *err)
{
	char *out = NULL, *save = NULL;
	int rc = ks_qmp_hmp(vm->qmp, "info roms", &out, HMP_TIMEOUT_NS, err);

	free(vm->rom_spans);
	vm->rom_spans = NULL;
	vm->nrom_spans = 0;
	for (char *l = rc == 0 ? strtok_r(out, "\n", &save) : NULL; l && rc == 0;
	     l = strtok_r(NULL, "\n", &save))
		if ((rc = add_rom_line(vm, l)) < 0)
			ks_error_set(err, rc, "out of memory");
	free(out);
	return rc;
}

static void copy_free(struct ks_vm *vm, struct vm_ramcopy *c)
{
	for (size_t i = 0; c->fds && i < vm->ram->nfiles; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	free(c->fds);
	free(c);
}

/* A memfd as long as RAM file i, holding its data; -errno with err filled. */
static int copy_file(struct ks_vm *vm, size_t i, const char *tag, uint64_t *bytes,
		     struct ks_error *err)
{
	char name[96];
	uint64_t size = vm->ram->files[i].size;
	int fd, rc;

	snprintf(name, sizeof(name), "kscope-snapshot-%s-%zu", tag, i);
	if ((fd = memfd_create(name, MFD_CLOEXEC)) < 0)
		return ks_error_set(err, -errno, "snapshot save: memfd_create: %s", strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0)
		rc = ks_error_set(err, -errno, "snapshot save: cannot size a RAM copy to %" PRIu64
				  " bytes: %s", size, strerror(errno));
	else
		rc = ks_sparse_copy(fd, vm->ram_fds[i], 0, size, bytes, err);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Takes tag's copy out of the list; NULL without one. */
static struct vm_ramcopy *unlink_copy(struct ks_vm *vm, const char *tag)
{
	for (struct vm_ramcopy **pp = &vm->ramcopies; *pp; pp = &(*pp)->next) {
		struct vm_ramcopy *c = *pp;

		if (!strcmp(c->tag, tag)) {
			*pp = c->next;
			return c;
		}
	}
	return NULL;
}

int vm_ramcopy_take(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	struct vm_ramcopy *c = calloc(1, sizeof(*c));
	int rc = 0;

	if (!c || !(c->fds = malloc(vm->ram->nfiles * sizeof(int)))) {
		free(c);
		return ks_error_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < vm->ram->nfiles; i++)
		c->fds[i] = -1;
	for (size_t i = 0; rc >= 0 && i < vm->ram->nfiles; i++) {
		uint64_t bytes = 0;

		rc = c->fds[i] = copy_file(vm, i, tag, &bytes, err);
		c->bytes += bytes;
	}
	if (rc < 0) {
		copy_free(vm, c);
		return rc;
	}
	snprintf(c->tag, sizeof(c->tag), "%s", tag);
	vm_ramcopy_drop(vm, tag);
	c->next = vm->ramcopies;
	vm->ramcopies = c;
	return 0;
}

const struct vm_ramcopy *vm_ramcopy_find(const struct ks_vm *vm, const char *tag)
{
	for (const struct vm_ramcopy *c = vm->ramcopies; c; c = c->next)
		if (!strcmp(c->tag, tag))
			return c;
	return NULL;
}

int vm_ramcopy_put_back(struct ks_vm *vm, const char *tag, bool roms_only,
			struct ks_error *err)
{
	const struct vm_ramcopy *c = vm_ramcopy_find(vm, tag);
	int rc = 0;

	if (!c)
		return ks_error_set(err, -ENOENT, "snapshot load: no RAM copy of snapshot '%s'",
				    tag);
	for (size_t i = 0; !roms_only && rc == 0 && i < vm->ram->nfiles; i++)
		rc = ks_sparse_copy(vm->ram_fds[i], c->fds[i], 0, vm->ram->files[i].size, NULL,
				    err);
	for (size_t i = 0; roms_only && rc == 0 && i < vm->nrom_spans; i++) {
		const struct vm_span *s = &vm->rom_spans[i];

		rc = ks_sparse_copy(vm->ram_fds[s->file], c->fds[s->file], s->offset,
				    s->offset + s->size, NULL, err);
	}
	return rc;
}

void vm_ramcopy_drop(struct ks_vm *vm, const char *tag)
{
	struct vm_ramcopy *c;

	if (tag) {
		if ((c = unlink_copy(vm, tag)))
			copy_free(vm, c);
		return;
	}
	while ((c = vm->ramcopies)) {
		vm->ramcopies = c->next;
		copy_free(vm, c);
	}
}
