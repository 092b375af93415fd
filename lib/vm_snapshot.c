/* vm_snapshot.c: internal snapshots of a VM: device state by savevm in the qcow2, RAM in memfds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/qmp.h>

#include "vm_private.h"

#define SEC 1000000000ll
#define SNAP_TIMEOUT_NS (120 * SEC)
#define QMP_TIMEOUT_NS (10 * SEC)

static int check_tag(const char *tag, struct ks_error *err)
{
	size_t n = tag ? strlen(tag) : 0;

	if (n == 0 || n >= sizeof(((struct ks_vm_snapshot *)0)->tag))
		return ks_error_set(err, -EINVAL, "snapshot: a tag has 1 to 63 characters");
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
			    tag[i]))
			return ks_error_set(err, -EINVAL, "snapshot: tag '%s' may hold only letters, "
					    "digits, '_', '.' and '-'", tag);
	return 0;
}

/* Checks what every snapshot call needs: QMP and the qcow2 drive. */
static int check(struct ks_vm *vm, const char *what, struct ks_error *err)
{
	int rc;

	if ((rc = vm_need_qmp(vm, what, err)) < 0)
		return rc;
	if (!vm->opts.snapshots)
		return ks_error_set(err, -EOPNOTSUPP, "%s: this VM was started without a drive "
				    "for snapshots", what);
	return 0;
}

/* check(), and a valid tag: save, load and delete need one (QEMU would make one up). */
static int check_tagged(struct ks_vm *vm, const char *what, const char *tag,
			struct ks_error *err)
{
	int rc = check(vm, what, err);

	return rc < 0 ? rc : check_tag(tag, err);
}

static int hmp_out(struct ks_vm *vm, const char *verb, const char *tag, char **out,
		   struct ks_error *err)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "%s%s%s", verb, tag ? " " : "", tag ? tag : "");
	return ks_qmp_hmp(vm->qmp, cmd, out, SNAP_TIMEOUT_NS, err);
}

static int hmp(struct ks_vm *vm, const char *verb, const char *tag, struct ks_error *err)
{
	char *out = NULL;
	int rc = hmp_out(vm, verb, tag, &out, err);

	free(out);
	return rc;
}

/* QEMU's run state ("running", "paused", "debug"...) into buf. */
static int run_status(struct ks_vm *vm, char *buf, size_t size, struct ks_error *err)
{
	json_t *reply = NULL;
	int rc = ks_qmp_call(vm->qmp, "query-status", NULL, &reply, QMP_TIMEOUT_NS, err);
	const char *st = json_string_value(json_object_get(reply, "status"));

	snprintf(buf, size, "%s", rc == 0 && st ? st : "");
	json_decref(reply);
	return rc;
}

/*
 * Stops the vCPUs for the time the device state and the RAM are taken or put back, so that
 * both are of one instant; *resume says whether they ran. QEMU is asked rather than
 * ks_vm_state() believed: a stop by a gdb client (the READY stop of kscope run) reaches
 * the gdb socket before its STOP event may have been read from QMP.
 */
static int hold(struct ks_vm *vm, bool *resume, struct ks_error *err)
{
	char st[32];
	int rc = run_status(vm, st, sizeof(st), err);

	*resume = rc == 0 && !strcmp(st, "running");
	return *resume ? ks_vm_pause(vm, err) : rc;
}

/*
 * Lets the vCPUs run again if hold() stopped them and nothing else stopped them meanwhile
 * (a panic, a shutdown, a gdb client: their stop is theirs to end). Returns rc, or the
 * resume's failure when rc is 0.
 */
static int release(struct ks_vm *vm, bool resume, int rc, struct ks_error *err)
{
	struct ks_error e = { 0 };
	char st[32];
	int r = resume ? run_status(vm, st, sizeof(st), &e) : 0;

	if (resume && r == 0 && !strcmp(st, "paused"))
		r = ks_vm_resume(vm, &e);
	if (rc == 0 && r < 0 && err)
		*err = e;
	return rc < 0 ? rc : r;
}

/*
 * Has savevm leave out the RAM in shared files (QEMU's x-ignore-shared migration
 * capability), once per VM: kscope copies those files itself. Loads need it as well: the
 * stream records it. The ranges QEMU's reset rewrites are learnt at the same time.
 */
static int ignore_shared(struct ks_vm *vm, struct ks_error *err)
{
	json_t *reply = NULL, *args;
	int rc;

	if (vm->ignore_shared)
		return 0;
	args = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "x-ignore-shared",
			 "state", 1);
	rc = ks_qmp_call(vm->qmp, "migrate-set-capabilities", args, &reply, QMP_TIMEOUT_NS,
			 err);
	json_decref(reply);
	if (rc == 0 && (rc = vm_rom_spans_learn(vm, err)) == 0)
		vm->ignore_shared = true;
	return rc;
}

/* savevm of the device state, then the copy of the RAM, the vCPUs stopped. */
static int save_held(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	int rc;

	if ((rc = ignore_shared(vm, err)) < 0)
		return rc;
	/* A failed savevm may have deleted the old snapshot of that tag already: the RAM
	 * copy goes too, so that a load fails before it touches anything. */
	if ((rc = hmp(vm, "savevm", tag, err)) < 0) {
		vm_ramcopy_drop(vm, tag);
		return rc;
	}
	/* A snapshot without its RAM could never be loaded. */
	if ((rc = vm_ramcopy_take(vm, tag, err)) < 0) {
		vm_ramcopy_drop(vm, tag);
		hmp(vm, "delvm", tag, NULL);
	}
	return rc;
}

int ks_vm_snapshot_save(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	bool resume;
	int rc;

	if ((rc = check_tagged(vm, "snapshot save", tag, err)) < 0)
		return rc;
	if (!vm_ramcopy_possible(vm))
		return hmp(vm, "savevm", tag, err);
	if ((rc = hold(vm, &resume, err)) < 0)
		return rc;
	/* savevm resumes a VM it stopped even when it fails: so does this. */
	return release(vm, resume, save_held(vm, tag, err), err);
}

/*
 * The RAM goes back before loadvm and again after it, the vCPUs stopped all along:
 * - before, because loadvm expects the RAM in place as it loads the devices, some of which
 *   read guest memory then (virtio finds its rings' indexes there);
 * - after, for the ranges QEMU's reset rewrites: loadvm resets the machine first, and the
 *   reset copies the ROM blobs that live in RAM (the -kernel ELF's segments, the kernel's
 *   .data and .bss) back to their pristine bytes. Without x-ignore-shared the RAM in the
 *   stream overwrote them; with it, nothing does but this. (A device whose load read guest
 *   memory inside those blobs would see them pristine: savevm without x-ignore-shared
 *   is the only way around that.)
 * TCG caches code translated from guest pages, and writes behind its back would leave those
 * translations stale. QEMU's own RAM load writes through host pointers too, and has the same
 * cure: each vCPU's state load flushes every translation and the TLB (cpu_common_post_load()
 * in QEMU 7.2's cpu.c). The first pass is written before that flush, as QEMU's RAM load was;
 * the second after it, but no vCPU runs in between to translate anything, so the vCPUs
 * start from an empty cache either way.
 */
static int load_held(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	int rc = vm_ramcopy_put_back(vm, tag, false, err);

	if (rc == 0)
		rc = hmp(vm, "loadvm", tag, err);
	return rc < 0 ? rc : vm_ramcopy_put_back(vm, tag, true, err);
}

int ks_vm_snapshot_load(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	bool resume;
	int rc;

	if ((rc = check_tagged(vm, "snapshot load", tag, err)) < 0)
		return rc;
	if (!vm_ramcopy_possible(vm))
		return hmp(vm, "loadvm", tag, err);
	/* Every snapshot of the VM was saved here, with its RAM: none has no such copy. */
	if (!vm_ramcopy_find(vm, tag))
		return ks_error_set(err, -ENOENT, "snapshot load: no snapshot '%s'", tag);
	if ((rc = hold(vm, &resume, err)) < 0)
		return rc;
	/* As loadvm does, a VM whose load failed stays stopped: its state is half old. */
	rc = load_held(vm, tag, err);
	return rc < 0 ? rc : release(vm, resume, 0, err);
}

int ks_vm_snapshot_delete(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	int rc = check_tagged(vm, "snapshot delete", tag, err);

	if (rc < 0)
		return rc;
	/* Freed even when delvm fails: a snapshot without its RAM copy is never loaded. */
	vm_ramcopy_drop(vm, tag);
	return hmp(vm, "delvm", tag, err);
}

/* "--  TAG  555 KiB 2026-11-26 08:25:53 00:00:01.743 ..." (QEMU 7.2 layout). */
static bool parse_line(const char *line, struct ks_vm_snapshot *s)
{
	char id[32], unit[8], day[16], time[16];
	double size;

	memset(s, 0, sizeof(*s));
	if (sscanf(line, "%31s %63s %lf %7s %15s %15s", id, s->tag, &size, unit, day, time) != 6)
		return false;
	double mult = !strcmp(unit, "KiB") ? 1024.0 : !strcmp(unit, "MiB") ? 1048576.0
		    : !strcmp(unit, "GiB") ? 1073741824.0 : !strcmp(unit, "B") ? 1.0 : -1;
	if (mult < 0)
		return false;
	s->vm_state_size = (uint64_t)(size * mult);
	snprintf(s->date, sizeof(s->date), "%s %s", day, time);
	return true;
}

int ks_vm_snapshot_list(struct ks_vm *vm, struct ks_vm_snapshot **list, size_t *n,
			struct ks_error *err)
{
	char *out = NULL, *save = NULL;
	bool table = false;
	int rc = check(vm, "snapshot list", err);

	*list = NULL;
	*n = 0;
	if (rc < 0 || (rc = hmp_out(vm, "info snapshots", NULL, &out, err)) < 0)
		goto out;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct ks_vm_snapshot s;

		if (!strncmp(line, "ID ", 3)) {
			table = true;
			continue;
		}
		if (!table || !parse_line(line, &s))
			continue;
		const struct vm_ramcopy *c = vm_ramcopy_find(vm, s.tag);
		s.ram_size = c ? c->bytes : 0;
		struct ks_vm_snapshot *grown = realloc(*list, (*n + 1) * sizeof(s));
		if (!grown) {
			rc = ks_error_set(err, -ENOMEM, "out of memory");
			break;
		}
		*list = grown;
		(*list)[(*n)++] = s;
	}
	if (rc < 0) {
		free(*list);
		*list = NULL;
		*n = 0;
	}
out:
	free(out);
	return rc;
}
