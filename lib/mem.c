/* mem.c: guest physical memory through the mapped RAM files, or through reader callbacks. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <kscope/mem.h>

/* One guest-physical range and where it is in the host's address space. */
struct mreg {
	ks_gpa_t gpa;
	uint64_t size;
	uint8_t *host;
	bool writable;
};

struct mmapping {
	void *addr;
	size_t len;
	bool writable;
};

struct ks_mem {
	/* mapped */
	struct mreg *regs;      /* by ascending gpa, not overlapping */
	size_t nregs;
	struct mmapping *maps;  /* one per RAM file; addr NULL for an empty file */
	size_t nmaps;
	/* reader */
	struct ks_mem_reader_ops ops;
	void *ctx;
};

/* ---- mapping ---- */

static int cmp_reg(const void *a, const void *b)
{
	const struct mreg *x = a, *y = b;

	return (x->gpa > y->gpa) - (x->gpa < y->gpa);
}

/* Maps one RAM file whole. A file opened O_RDONLY cannot be mapped writable: map it read-only
 * then, so a viewer with read access still reads at memory speed. */
static int map_file(struct ks_mem *m, size_t i, int fd, uint64_t size, struct ks_error *err)
{
	struct stat st;
	int prot = PROT_READ | PROT_WRITE;

	if (size == 0)
		return 0;
	if (fstat(fd, &st) < 0)
		return ks_error_set(err, -errno, "RAM file %zu: %s", i, strerror(errno));
	/* A page beyond the end of the file would raise SIGBUS on access: refuse instead. */
	if ((uint64_t)st.st_size < size)
		return ks_error_set(err, -EINVAL, "RAM file %zu holds %lld bytes, the layout says %llu",
				    i, (long long)st.st_size, (unsigned long long)size);
	if (size > SIZE_MAX)
		return ks_error_set(err, -EINVAL, "RAM file %zu too large to map", i);
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_ACCMODE) == O_RDONLY)
		prot = PROT_READ;
	void *p = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return ks_error_set(err, -errno, "cannot map RAM file %zu (%llu bytes): %s", i,
				    (unsigned long long)size, strerror(errno));
	m->maps[i].addr = p;
	m->maps[i].len = size;
	m->maps[i].writable = prot & PROT_WRITE;
	return 0;
}

static int add_regions(struct ks_mem *m, const struct ks_ram_layout *l, struct ks_error *err)
{
	for (size_t i = 0; i < l->nregions; i++) {
		const struct ks_ram_region *r = &l->regions[i];
		struct mreg *d = &m->regs[i];

		if (r->file >= l->nfiles || r->size == 0 || r->offset > l->files[r->file].size ||
		    r->size > l->files[r->file].size - r->offset)
			return ks_error_set(err, -EINVAL, "RAM region %zu lies outside its file", i);
		if (r->gpa + r->size - 1 < r->gpa)
			return ks_error_set(err, -EINVAL, "RAM region %zu wraps past 2^64", i);
		d->gpa = r->gpa;
		d->size = r->size;
		d->host = (uint8_t *)m->maps[r->file].addr + r->offset;
		d->writable = m->maps[r->file].writable;
	}
	m->nregs = l->nregions;
	qsort(m->regs, m->nregs, sizeof(*m->regs), cmp_reg);
	for (size_t i = 1; i < m->nregs; i++)
		if (m->regs[i - 1].gpa + m->regs[i - 1].size > m->regs[i].gpa)
			return ks_error_set(err, -EINVAL, "RAM regions overlap at 0x%llx",
					    (unsigned long long)m->regs[i].gpa);
	return 0;
}

struct ks_mem *ks_mem_new_mapped(const struct ks_ram_layout *layout, const int *fds,
				 struct ks_error *err)
{
	struct ks_mem *m = calloc(1, sizeof(*m));
	int rc = -ENOMEM;

	if (!m)
		goto out;
	m->maps = calloc(layout->nfiles ? layout->nfiles : 1, sizeof(*m->maps));
	m->regs = calloc(layout->nregions ? layout->nregions : 1, sizeof(*m->regs));
	if (!m->maps || !m->regs)
		goto out;
	m->nmaps = layout->nfiles;
	for (size_t i = 0; i < layout->nfiles; i++) {
		rc = map_file(m, i, fds[i], layout->files[i].size, err);
		if (rc < 0)
			goto out;
	}
	rc = add_regions(m, layout, err);
	if (rc < 0)
		goto out;
	return m;
out:
	if (rc == -ENOMEM)
		ks_error_set(err, rc, "out of memory");
	ks_mem_free(m);
	return NULL;
}

struct ks_mem *ks_mem_new_reader(const struct ks_mem_reader_ops *ops, void *ctx,
				 struct ks_error *err)
{
	struct ks_mem *m;

	if (!ops || !ops->read) {
		ks_error_set(err, -EINVAL, "a memory reader needs a read callback");
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	m->ops = *ops;
	m->ctx = ctx;
	return m;
}

void ks_mem_free(struct ks_mem *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nmaps; i++)
		if (m->maps[i].addr)
			munmap(m->maps[i].addr, m->maps[i].len);
	free(m->maps);
	free(m->regs);
	free(m);
}

bool ks_mem_is_mapped(const struct ks_mem *m)
{
	return m->maps != NULL;
}

/* ---- access ---- */

/* The region holding gpa, or NULL. Binary search: NUMA layouts can have many regions. */
static const struct mreg *find(const struct ks_mem *m, ks_gpa_t gpa)
{
	size_t lo = 0, hi = m->nregs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (gpa < m->regs[mid].gpa)
			hi = mid;
		else if (gpa - m->regs[mid].gpa >= m->regs[mid].size)
			lo = mid + 1;
		else
			return &m->regs[mid];
	}
	return NULL;
}

/* Checks [gpa, gpa + len) region by region; for writes also that every part is writable. */
static int check_range(const struct ks_mem *m, ks_gpa_t gpa, size_t len, bool write,
		       struct ks_error *err)
{
	while (len) {
		const struct mreg *r = find(m, gpa);

		if (!r)
			return ks_error_set(err, -EFAULT, "guest-physical 0x%llx is not RAM",
					    (unsigned long long)gpa);
		if (write && !r->writable)
			return ks_error_set(err, -EROFS,
					    "guest-physical 0x%llx is mapped read-only",
					    (unsigned long long)gpa);
		uint64_t avail = r->size - (gpa - r->gpa);
		if (avail >= len)
			return 0;
		gpa += avail;
		len -= avail;
		if (gpa == 0)
			return ks_error_set(err, -EFAULT, "guest-physical range wraps past 2^64");
	}
	return 0;
}

int ks_mem_check(const struct ks_mem *m, ks_gpa_t gpa, size_t len, struct ks_error *err)
{
	if (!ks_mem_is_mapped(m))
		return 0;
	return check_range(m, gpa, len, false, err);
}

/* Copies between buf and [gpa, gpa + len), which check_range() accepted. */
static void copy_range(struct ks_mem *m, ks_gpa_t gpa, void *buf, size_t len, bool write)
{
	uint8_t *b = buf;

	while (len) {
		const struct mreg *r = find(m, gpa);
		uint64_t off = gpa - r->gpa;
		size_t n = r->size - off < len ? (size_t)(r->size - off) : len;

		if (write)
			memcpy(r->host + off, b, n);
		else
			memcpy(b, r->host + off, n);
		b += n;
		gpa += n;
		len -= n;
	}
}

int ks_mem_read(struct ks_mem *m, ks_gpa_t gpa, void *buf, size_t len, struct ks_error *err)
{
	if (!len)
		return 0;
	if (!ks_mem_is_mapped(m)) {
		int rc = m->ops.read(m->ctx, gpa, buf, len);
		return rc < 0 ? ks_error_set(err, rc, "cannot read guest-physical 0x%llx: %s",
					     (unsigned long long)gpa, strerror(-rc)) : 0;
	}
	/* The common case, one region, without a second search. */
	const struct mreg *r = find(m, gpa);
	if (r && r->size - (gpa - r->gpa) >= len) {
		memcpy(buf, r->host + (gpa - r->gpa), len);
		return 0;
	}
	int rc = check_range(m, gpa, len, false, err);
	if (rc < 0)
		return rc;
	copy_range(m, gpa, buf, len, false);
	return 0;
}

int ks_mem_write(struct ks_mem *m, ks_gpa_t gpa, const void *buf, size_t len,
		 struct ks_error *err)
{
	if (!len)
		return 0;
	if (!ks_mem_is_mapped(m)) {
		if (!m->ops.write)
			return ks_error_set(err, -EOPNOTSUPP, "this guest memory is read-only");
		int rc = m->ops.write(m->ctx, gpa, buf, len);
		return rc < 0 ? ks_error_set(err, rc, "cannot write guest-physical 0x%llx: %s",
					     (unsigned long long)gpa, strerror(-rc)) : 0;
	}
	int rc = check_range(m, gpa, len, true, err);
	if (rc < 0)
		return rc;
	copy_range(m, gpa, (void *)buf, len, true);
	return 0;
}

void *ks_mem_ptr(struct ks_mem *m, ks_gpa_t gpa, size_t len)
{
	const struct mreg *r;

	if (!len || !ks_mem_is_mapped(m) || !(r = find(m, gpa)))
		return NULL;
	if (r->size - (gpa - r->gpa) < len)
		return NULL;
	return r->host + (gpa - r->gpa);
}

int ks_mem_read_identity(void *ctx, ks_gva_t addr, void *buf, size_t len)
{
	return ks_mem_read(ctx, addr, buf, len, NULL);
}

/* ---- fixed widths ---- */

int ks_mem_read_u8(struct ks_mem *m, ks_gpa_t gpa, uint8_t *val)
{
	return ks_mem_read(m, gpa, val, 1, NULL);
}

#define READ_LE(bits)                                                        \
	int ks_mem_read_u##bits(struct ks_mem *m, ks_gpa_t gpa, uint##bits##_t *val) \
	{                                                                    \
		uint##bits##_t v;                                            \
		int rc = ks_mem_read(m, gpa, &v, sizeof(v), NULL);           \
		if (rc == 0)                                                 \
			*val = le##bits##toh(v);                             \
		return rc;                                                   \
	}

#define WRITE_LE(bits)                                                       \
	int ks_mem_write_u##bits(struct ks_mem *m, ks_gpa_t gpa, uint##bits##_t val) \
	{                                                                    \
		uint##bits##_t v = htole##bits(val);                         \
		return ks_mem_write(m, gpa, &v, sizeof(v), NULL);            \
	}

READ_LE(16)
READ_LE(32)
READ_LE(64)

int ks_mem_write_u8(struct ks_mem *m, ks_gpa_t gpa, uint8_t val)
{
	return ks_mem_write(m, gpa, &val, 1, NULL);
}

WRITE_LE(16)
WRITE_LE(32)
WRITE_LE(64)
