/* vm_snapshot.c: internal snapshots of a VM (savevm, loadvm, delvm, info snapshots over HMP). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/qmp.h>

#include "vm_private.h"

#define SNAP_TIMEOUT_NS (120 * 1000000000ll)

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

static int hmp(struct ks_vm *vm, const char *what, const char *verb, const char *tag,
	       char **out, struct ks_error *err)
{
	char cmd[128];
	int rc;

	if ((rc = vm_need_qmp(vm, what, err)) < 0)
		return rc;
	if (!vm->opts.snapshots)
		return ks_error_set(err, -EOPNOTSUPP, "%s: this VM was started without a drive "
				    "for snapshots", what);
	if (tag && (rc = check_tag(tag, err)) < 0)
		return rc;
	snprintf(cmd, sizeof(cmd), "%s%s%s", verb, tag ? " " : "", tag ? tag : "");
	return ks_qmp_hmp(vm->qmp, cmd, out, SNAP_TIMEOUT_NS, err);
}

int ks_vm_snapshot_save(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	char *out = NULL;
	int rc = hmp(vm, "snapshot save", "savevm", tag, &out, err);

	free(out);
	return rc;
}

int ks_vm_snapshot_load(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	char *out = NULL;
	int rc = hmp(vm, "snapshot load", "loadvm", tag, &out, err);

	free(out);
	return rc;
}

int ks_vm_snapshot_delete(struct ks_vm *vm, const char *tag, struct ks_error *err)
{
	char *out = NULL;
	int rc = hmp(vm, "snapshot delete", "delvm", tag, &out, err);

	free(out);
	return rc;
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
	int rc = hmp(vm, "snapshot list", "info snapshots", NULL, &out, err);

	*list = NULL;
	*n = 0;
	if (rc < 0)
		goto out;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct ks_vm_snapshot s;

		if (!strncmp(line, "ID ", 3)) {
			table = true;
			continue;
		}
		if (!table || !parse_line(line, &s))
			continue;
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
