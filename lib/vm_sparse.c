/* vm_sparse.c: copying a range of one file onto another, data extents only, holes kept. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm_internal.h"

#define BOUNCE (1u << 20)

/* One ks_sparse_copy(): the files, and how their extents are moved. */
struct sparse {
	int dst, src;
	bool bounce;      /* copy_file_range() cannot pair these files: pread/pwrite */
	char *buf;        /* the bounce buffer, allocated on first use */
	struct ks_error *err;
};

/* Whether copy_file_range() failed only because it cannot copy between these two files. */
static bool cannot_offload(int e)
{
	return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP;
}

static int short_file(struct sparse *sp, uint64_t off)
{
	return ks_error_set(sp->err, -EIO, "copy: the file ends before its data at %llu",
			    (unsigned long long)off);
}

/* Copies [off, off + len) through a buffer, for files copy_file_range() cannot pair. */
static int bounce(struct sparse *sp, uint64_t off, uint64_t len)
{
	if (!sp->buf && !(sp->buf = malloc(BOUNCE)))
		return ks_error_set(sp->err, -ENOMEM, "out of memory");
	while (len) {
		ssize_t n = pread(sp->src, sp->buf, len < BOUNCE ? len : BOUNCE, (off_t)off);

		if (n < 0)
			return ks_error_set(sp->err, -errno, "copy: read at %llu: %s",
					    (unsigned long long)off, strerror(errno));
		if (n == 0)
			return short_file(sp, off);
		for (ssize_t done = 0, w; done < n; done += w)
			if ((w = pwrite(sp->dst, sp->buf + done, (size_t)(n - done),
					(off_t)off + done)) < 0)
				return ks_error_set(sp->err, -errno, "copy: write at %llu: %s",
						    (unsigned long long)off + done,
						    strerror(errno));
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Copies [off, off + len) in the kernel, or through a buffer where it cannot. */
static int copy_extent(struct sparse *sp, uint64_t off, uint64_t len)
{
	while (len && !sp->bounce) {
		loff_t in = (loff_t)off, out = (loff_t)off;
		ssize_t n = copy_file_range(sp->src, &in, sp->dst, &out, len, 0);

		/* Two tmpfs mounts (/dev/shm and memfds) are two file systems to it. */
		if (n < 0 && cannot_offload(errno))
			sp->bounce = true;
		else if (n < 0)
			return ks_error_set(sp->err, -errno, "copy: at %llu: %s",
					    (unsigned long long)off, strerror(errno));
		else if (n == 0)
			return short_file(sp, off);
		else
			off += (uint64_t)n, len -= (uint64_t)n;
	}
	return len ? bounce(sp, off, len) : 0;
}

/* Zeroes [off, off + len) of dst and frees its pages, as a hole of the source is. */
static int punch(int dst, uint64_t off, uint64_t len, struct ks_error *err)
{
	if (len && fallocate(dst, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			     (off_t)len) < 0)
		return ks_error_set(err, -errno, "copy: cannot punch a hole at %llu: %s",
				    (unsigned long long)off, strerror(errno));
	return 0;
}

/* Where the next extent of kind `whence` (SEEK_DATA, SEEK_HOLE) starts, at most end. */
static int next_edge(int fd, uint64_t from, int whence, uint64_t end, uint64_t *at,
		     struct ks_error *err)
{
	off_t o = lseek(fd, (off_t)from, whence);

	/* ENXIO: no data from there to the end of the file. */
	if (o < 0 && errno != ENXIO)
		return ks_error_set(err, -errno, "copy: cannot find the file's %s: %s",
				    whence == SEEK_DATA ? "data" : "holes", strerror(errno));
	*at = o < 0 || (uint64_t)o > end ? end : (uint64_t)o;
	return 0;
}

int ks_sparse_copy(int dst, int src, uint64_t start, uint64_t end, uint64_t *copied,
		   struct ks_error *err)
{
	struct sparse sp = { .dst = dst, .src = src, .err = err };
	uint64_t at = start, data, hole;
	int rc = 0;

	if (copied)
		*copied = 0;
	while (rc == 0 && at < end) {
		if ((rc = next_edge(src, at, SEEK_DATA, end, &data, err)) < 0 ||
		    (rc = punch(dst, at, data - at, err)) < 0 || data == end)
			break;
		if ((rc = next_edge(src, data, SEEK_HOLE, end, &hole, err)) < 0 ||
		    (rc = copy_extent(&sp, data, hole - data)) < 0)
			break;
		if (copied)
			*copied += hole - data;
		at = hole;
	}
	free(sp.buf);
	return rc;
}
