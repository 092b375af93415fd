/* qcow2.c: writing an empty qcow2 image, the drive that holds internal snapshots' VM state. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm_internal.h"

#define CLUSTER_BITS 16
#define CLUSTER (1u << CLUSTER_BITS)
/* Cluster 0 header, 1 refcount table, 2 refcount block, 3 L1 table: what qemu-img makes. */
#define NCLUSTERS 4

static void be32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void be64(unsigned char *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

static void fill_header(unsigned char *img, uint64_t size, uint32_t l1_size)
{
	memcpy(img, "QFI\xfb", 4);
	be32(img + 4, 3);                 /* version */
	be32(img + 20, CLUSTER_BITS);
	be64(img + 24, size);
	be32(img + 36, l1_size);
	be64(img + 40, 3ull * CLUSTER);   /* L1 table */
	be64(img + 48, 1ull * CLUSTER);   /* refcount table */
	be32(img + 56, 1);                /* refcount table clusters */
	be32(img + 96, 4);                /* refcount order: 16-bit refcounts */
	be32(img + 100, 104);             /* header length; extensions end right after */
}

int ks_qcow2_create(const char *path, uint64_t size, struct ks_error *err)
{
	/* One L2 table maps CLUSTER / 8 clusters. */
	uint64_t per_l2 = (uint64_t)CLUSTER / 8 * CLUSTER;
	uint64_t l1_size = (size + per_l2 - 1) / per_l2;
	unsigned char *img;
	int fd, rc = 0;

	if (size == 0 || l1_size * 8 > CLUSTER)
		return ks_error_set(err, -EINVAL, "qcow2: unsupported size %llu",
				    (unsigned long long)size);
	if (!(img = calloc(NCLUSTERS, CLUSTER)))
		return ks_error_set(err, -ENOMEM, "qcow2: out of memory");
	fill_header(img, size, (uint32_t)l1_size);
	be64(img + CLUSTER, 2ull * CLUSTER); /* refcount table -> refcount block */
	for (int c = 0; c < NCLUSTERS; c++)  /* each metadata cluster is used once */
		img[2 * CLUSTER + 2 * c + 1] = 1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = ks_error_set(err, -errno, "qcow2: cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	if (write(fd, img, NCLUSTERS * CLUSTER) != NCLUSTERS * CLUSTER)
		rc = ks_error_set(err, -EIO, "qcow2: cannot write %s", path);
	close(fd);
	if (rc < 0)
		unlink(path);
out:
	free(img);
	return rc;
}
