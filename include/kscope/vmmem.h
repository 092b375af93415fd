/* vmmem.h: the memory of a running ks_vm: its RAM mapped on the host, a vCPU's page tables. */
#ifndef KSCOPE_VMMEM_H
#define KSCOPE_VMMEM_H

#include <stdbool.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/mem.h>
#include <kscope/vm.h>

/*
 * What every host-side reader of a VM's memory needs first (the supervisor's introspection
 * commands, `kscope run` following kt_state): the guest's RAM mapped through the VM's RAM
 * files, and the page tables a vCPU runs on, found without pausing it.
 */

/*
 * Maps every RAM file of vm (ks_vm_ram(), ks_vm_ram_fd()). The mapping stays valid after
 * QEMU has ended and after ks_vm_free(): the RAM of a VM that died can still be read.
 * Returns the memory (free with ks_mem_free()), or NULL with err filled: -ENODEV when the VM
 * has no RAM files to map, -ENOMEM, or mmap's error.
 */
struct ks_mem *ks_vmmem_map(struct ks_vm *vm, struct ks_error *err);

/*
 * CR3 and CR4.LA57 of vCPU cpu, from QEMU's register dump (HMP "info registers -a"), which
 * needs no pause. Returns 0, -ENOENT for a vCPU that does not exist ("no vCPU 4 (the VM has
 * 2)"), -EFAULT when that vCPU has no page tables yet (CR3 is 0), -EINVAL when its section
 * shows no CR3, or the error of the QMP call; err filled.
 */
int ks_vmmem_cpu_paging(struct ks_vm *vm, unsigned cpu, uint64_t *cr3, bool *la57,
			struct ks_error *err);

#endif
