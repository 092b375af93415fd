/* vmmem.c: a running VM's RAM mapped on the host, and the page tables of one of its vCPUs. */
#include <errno.h>
#include <stdlib.h>

#include <kscope/inspect.h>
#include <kscope/qmp.h>
#include <kscope/vmmem.h>

#define HMP_TIMEOUT_NS (10 * 1000000000ll)

struct ks_mem *ks_vmmem_map(struct ks_vm *vm, struct ks_error *err)
{
	const struct ks_ram_layout *l = ks_vm_ram(vm);
	struct ks_mem *m;
	int *fds;

	if (!l || !l->nfiles) {
		ks_error_set(err, -ENODEV, "the VM's RAM cannot be mapped");
		return NULL;
	}
	if (!(fds = calloc(l->nfiles, sizeof(*fds)))) {
		ks_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < l->nfiles; i++)
		fds[i] = ks_vm_ram_fd(vm, i);
	m = ks_mem_new_mapped(l, fds, err);
	free(fds);
	return m;
}

int ks_vmmem_cpu_paging(struct ks_vm *vm, unsigned cpu, uint64_t *cr3, bool *la57,
			struct ks_error *err)
{
	struct ks_qmp *q = ks_vm_qmp(vm);
	char *out = NULL;
	int rc;

	if (!q)
		return ks_error_set(err, -ENOTCONN, "the VM has ended");
	rc = ks_qmp_hmp(q, "info registers -a", &out, HMP_TIMEOUT_NS, err);
	if (rc == 0) {
		rc = ks_inspect_hmp_cpu(out, cpu, cr3, la57);
		if (rc == -ENOENT)
			rc = ks_error_set(err, rc, "no vCPU %u (the VM has %u)", cpu,
					  ks_inspect_hmp_cpu_count(out));
		else if (rc < 0)
			rc = ks_error_set(err, rc, "vCPU %u: no CR3 in QEMU's register dump", cpu);
		else if (!*cr3)
			rc = ks_error_set(err, -EFAULT, "vCPU %u has no page tables (CR3 is 0)", cpu);
	}
	free(out);
	return rc;
}
