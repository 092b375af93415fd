/* qemu_argv.c: QEMU's argv for a vmspec, and the layout of the guest RAM files it maps. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <kscope/qemu_argv.h>

#include "vmspec_internal.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

/* A growing argv; the first allocation failure sticks and is reported once at the end. */
struct args {
	char **v;
	size_t n, cap;
	bool oom;
};

static void add_owned(struct args *a, char *s)
{
	if (!s || a->oom) {
		a->oom = true;
		free(s);
		return;
	}
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **v = realloc(a->v, cap * sizeof(*v));

		if (!v) {
			a->oom = true;
			free(s);
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void add(struct args *a, const char *s)
{
	add_owned(a, strdup(s));
}

__attribute__((format(printf, 2, 3)))
static void addf(struct args *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	add_owned(a, s);
}

/* QEMU option values end at a comma; a literal comma is written twice. */
static char *escape(const char *s)
{
	size_t n = strlen(s), commas = 0;
	char *e, *q;

	for (size_t i = 0; i < n; i++)
		commas += s[i] == ',';
	e = malloc(n + commas + 1);
	if (!e)
		return NULL;
	q = e;
	for (size_t i = 0; i <= n; i++) {
		*q++ = s[i];
		if (s[i] == ',')
			*q++ = ',';
	}
	return e;
}

/* Adds the pair `opt prefix<escaped value>suffix`. */
static void add_escaped(struct args *a, const char *opt, const char *prefix, const char *value,
			const char *suffix)
{
	char *e = escape(value);

	if (!e) {
		a->oom = true;
		return;
	}
	add(a, opt);
	addf(a, "%s%s%s", prefix, e, suffix);
	free(e);
}

int ks_qemu_serial_port(unsigned i, uint16_t *iobase, unsigned *irq)
{
	static const struct { uint16_t iobase; unsigned irq; } com[KS_VMSPEC_MAX_SERIAL] = {
		{ 0x3f8, 4 }, { 0x2f8, 3 }, { 0x3e8, 4 }, { 0x2e8, 3 },
	};

	if (i >= KS_VMSPEC_MAX_SERIAL)
		return -EINVAL;
	*iobase = com[i].iobase;
	*irq = com[i].irq;
	return 0;
}

/* ---- RAM layout ---- */

/* How much of the RAM QEMU maps below 4 GiB (the rest goes from 4 GiB up). */
static uint64_t low_ram(enum ks_machine m, uint64_t ram)
{
	switch (m) {
	case KS_MACHINE_PC:
		return ram >= 0xe0000000ull ? 0xc0000000ull : ram;
	case KS_MACHINE_Q35:
		return ram >= 0xb0000000ull ? 0x80000000ull : ram;
	default:
		return ram > 0xc0000000ull ? 0xc0000000ull : ram;
	}
}

static bool add_region(struct ks_ram_layout *l, size_t file, uint64_t offset, ks_gpa_t gpa,
		       uint64_t size)
{
	struct ks_ram_region *r = realloc(l->regions, (l->nregions + 1) * sizeof(*r));

	if (!r)
		return false;
	l->regions = r;
	r[l->nregions++] = (struct ks_ram_region){ file, offset, gpa, size };
	return true;
}

/* Maps file f, which holds RAM offsets [start, start + size), around the 4 GiB hole. */
static bool place_file(struct ks_ram_layout *l, size_t f, uint64_t start, uint64_t low)
{
	uint64_t end = start + l->files[f].size;

	if (start < low && !add_region(l, f, 0, start, (end < low ? end : low) - start))
		return false;
	if (end > low) {
		uint64_t from = start > low ? start : low;

		if (!add_region(l, f, from - start, 4 * GIB + (from - low), end - from))
			return false;
	}
	return true;
}

static bool add_file(struct ks_ram_layout *l, const char *ram, bool numa, unsigned node,
		     uint64_t size)
{
	struct ks_ram_file *f = realloc(l->files, (l->nfiles + 1) * sizeof(*f));
	char *path = NULL;

	if (!f)
		return false;
	l->files = f;
	if (numa ? asprintf(&path, "%s.node%u", ram, node) < 0 : !(path = strdup(ram)))
		return false;
	f[l->nfiles++] = (struct ks_ram_file){ path, node, size };
	return true;
}

struct ks_ram_layout *ks_qemu_ram_layout(const struct ks_vmspec *s,
					 const struct ks_qemu_paths *p, struct ks_error *err)
{
	uint64_t total = ks_vmspec_memory_mib(s) * MIB, start = 0;
	uint64_t low = low_ram(s->machine, total);
	struct ks_ram_layout *l;
	bool ok = true;

	if (!p->ram || !*p->ram) {
		ks_error_set(err, -EINVAL, "ram: no file path given");
		return NULL;
	}
	if (!(l = calloc(1, sizeof(*l))))
		goto oom;
	if (!s->nnuma)
		ok = add_file(l, p->ram, false, 0, total);
	for (size_t i = 0; ok && i < s->nnuma; i++)
		if (s->numa[i].memory_mib)
			ok = add_file(l, p->ram, true, (unsigned)i, s->numa[i].memory_mib * MIB);
	for (size_t f = 0; ok && f < l->nfiles; f++) {
		ok = place_file(l, f, start, low);
		start += l->files[f].size;
	}
	if (ok)
		return l;
oom:
	ks_ram_layout_free(l);
	ks_error_set(err, -ENOMEM, "ram: out of memory");
	return NULL;
}

void ks_ram_layout_free(struct ks_ram_layout *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nfiles; i++)
		free(l->files[i].path);
	free(l->files);
	free(l->regions);
	free(l);
}

const struct ks_ram_region *ks_ram_layout_find(const struct ks_ram_layout *l, ks_gpa_t gpa)
{
	for (size_t i = 0; i < l->nregions; i++)
		if (gpa >= l->regions[i].gpa && gpa - l->regions[i].gpa < l->regions[i].size)
			return &l->regions[i];
	return NULL;
}

/* ---- argv ---- */

static int check_socket(const char *field, const char *path, struct ks_error *err)
{
	if (!path || !*path)
		return ks_error_set(err, -EINVAL, "%s: no socket path given", field);
	if (strlen(path) >= SUN_PATH_MAX)
		return ks_error_set(err, -EINVAL,
				    "%s: socket path too long (%zu bytes, at most %zu)", field,
				    strlen(path), SUN_PATH_MAX - 1);
	return 0;
}

/* What the spec alone cannot say: the accelerator, and paths for every socket; and the
 * kernel, without which QEMU would start a VM with nothing to run. */
static int check_choices(const struct ks_vmspec *s, const struct ks_qemu_paths *p,
			 enum ks_accel *accel, struct ks_error *err)
{
	char name[32];
	int rc = 0;

	*accel = p->accel != KS_ACCEL_AUTO ? p->accel : s->accel;
	if (*accel != KS_ACCEL_KVM && *accel != KS_ACCEL_TCG)
		return ks_error_set(err, -EINVAL, "accel: '%s' must be resolved to kvm or tcg "
				    "before starting QEMU", ks_accel_name(*accel));
	if (!s->kernel)
		return ks_error_set(err, -EINVAL, "kernel: required, but not given");
	if (p->qmp)
		rc = check_socket("qmp", p->qmp, err);
	if (rc == 0 && p->gdb)
		rc = check_socket("gdb", p->gdb, err);
	if (rc == 0 && s->serial && !p->serial)
		rc = ks_error_set(err, -EINVAL, "serial: no socket paths given (the spec has %u)",
				  s->serial);
	for (unsigned i = 0; rc == 0 && i < s->serial; i++) {
		snprintf(name, sizeof(name), "serial %u", i);
		rc = check_socket(name, p->serial[i], err);
	}
	return rc;
}

static void add_machine(struct args *a, const struct ks_vmspec *s, enum ks_accel accel,
			const struct ks_vmspec_topology *t, const struct ks_qemu_paths *p)
{
	add(a, ks_vmspec_qemu_binary(s));
	add(a, "-nodefaults");
	add(a, "-nographic");
	add(a, "-no-user-config");
	if (p->paused)
		add(a, "-S");
	if (p->no_reboot)
		add(a, "-no-reboot");
	if (p->shutdown_pause) {
		add(a, "-action");
		add(a, "reboot=shutdown,shutdown=pause");
	}
	add(a, "-machine");
	addf(a, "%s%s", ks_machine_name(s->machine), s->nnuma ? "" : ",memory-backend=mem0");
	add(a, "-accel");
	add(a, ks_accel_name(accel));
	add(a, "-m");
	addf(a, "%lluM", (unsigned long long)ks_vmspec_memory_mib(s));
	add(a, "-smp");
	addf(a, "%u,sockets=%u,cores=%u,threads=%u", t->cpus, t->sockets, t->cores, t->threads);
}

/* "-numa node,nodeid=N,cpus=A-B,cpus=C,memdev=memN": QEMU takes one cpus= per range. */
static void add_numa_node(struct args *a, const struct ks_vmspec *s, size_t i)
{
	const struct ks_vmspec_numa *n = &s->numa[i];
	unsigned next = 0, lo, hi;
	char buf[4096];
	size_t len;

	len = (size_t)snprintf(buf, sizeof(buf), "node,nodeid=%zu", i);
	while (ks_vmspec_next_cpu_range(n, &next, &lo, &hi) && len < sizeof(buf)) {
		if (lo == hi)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, ",cpus=%u", lo);
		else
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, ",cpus=%u-%u", lo,
						hi);
	}
	if (n->memory_mib && len < sizeof(buf))
		snprintf(buf + len, sizeof(buf) - len, ",memdev=mem%zu", i);
	add(a, "-numa");
	add(a, buf);
}

/* One shared memory-backend-file per RAM file, so the host can map guest RAM. */
static void add_memory(struct args *a, const struct ks_vmspec *s,
		       const struct ks_qemu_paths *p, const struct ks_ram_layout *l)
{
	char prefix[96];

	for (size_t f = 0; f < l->nfiles; f++) {
		snprintf(prefix, sizeof(prefix),
			 "memory-backend-file,id=mem%u,size=%lluM,mem-path=", l->files[f].node,
			 (unsigned long long)(l->files[f].size / MIB));
		add_escaped(a, "-object", prefix, p->ram_open ? p->ram_open[f] : l->files[f].path,
			    ",share=on");
	}
	for (size_t i = 0; i < s->nnuma; i++)
		add_numa_node(a, s, i);
}

static void add_socket(struct args *a, const char *id, const char *path)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "socket,id=%s,path=", id);
	add_escaped(a, "-chardev", prefix, path, ",server=on,wait=off");
}

static void add_pipe(struct args *a, const char *id, const char *path)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "pipe,id=%s,path=", id);
	add_escaped(a, "-chardev", prefix, path, "");
}

static void add_control(struct args *a, const struct ks_vmspec *s,
			const struct ks_qemu_paths *p)
{
	char id[32];
	uint16_t iobase;
	unsigned irq;

	if (p->qmp) {
		add_socket(a, "qmp", p->qmp);
		add(a, "-mon");
		add(a, "chardev=qmp,mode=control");
	}
	if (p->gdb) {
		add_socket(a, "gdb", p->gdb);
		add(a, "-gdb");
		add(a, "chardev:gdb");
	}
	/* Every machine makes COM1 from -serial; microvm makes no more, so the others are
	 * explicit ISA devices at the standard ports on every machine. */
	for (unsigned i = 0; i < s->serial; i++) {
		snprintf(id, sizeof(id), "serial%u", i);
		if (p->serial_pipes)
			add_pipe(a, id, p->serial[i]);
		else
			add_socket(a, id, p->serial[i]);
		if (i == 0) {
			add(a, "-serial");
			add(a, "chardev:serial0");
			continue;
		}
		ks_qemu_serial_port(i, &iobase, &irq);
		add(a, "-device");
		addf(a, "isa-serial,chardev=%s,iobase=0x%x,irq=%u", id, iobase, irq);
	}
}

/* "qcow2" for a qcow2 image (magic "QFI\xfb"), "raw" for anything else. */
static int disk_format(const char *path, const char **fmt, struct ks_error *err)
{
	unsigned char magic[4] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, magic, sizeof(magic), 0);
	int e = errno;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return ks_error_set(err, -e, "disk: %s: cannot read: %s", path, strerror(e));
	*fmt = n == 4 && !memcmp(magic, "QFI\xfb", 4) ? "qcow2" : "raw";
	return 0;
}

static int add_devices(struct args *a, const struct ks_vmspec *s,
		       const struct ks_qemu_paths *p, struct ks_error *err)
{
	bool mmio = s->machine == KS_MACHINE_MICROVM;
	const char *fmt = "raw";
	char suffix[64];

	if (p->pvpanic) {
		add(a, "-device");
		add(a, "pvpanic");
		add(a, "-action");
		add(a, "panic=pause");
	}
	if (p->debug_exit) {
		add(a, "-device");
		add(a, "isa-debug-exit,iobase=0xf4,iosize=0x04");
	}
	if (s->net == KS_NET_USER) {
		add(a, "-netdev");
		add(a, "user,id=net0");
		add(a, "-device");
		/* No option ROM: the kernel is loaded directly, so PXE is never used. */
		add(a, mmio ? "virtio-net-device,netdev=net0"
			    : "virtio-net-pci,netdev=net0,romfile=");
	}
	for (size_t i = 0; i < s->ndisks; i++) {
		int rc = disk_format(s->disks[i], &fmt, err);

		if (rc < 0)
			return rc;
		snprintf(suffix, sizeof(suffix), ",format=%s,if=none,id=disk%zu", fmt, i);
		add_escaped(a, "-drive", "file=", s->disks[i], suffix);
		add(a, "-device");
		addf(a, "%s,drive=disk%zu", mmio ? "virtio-blk-device" : "virtio-blk-pci", i);
	}
	if (p->vmstate)
		add_escaped(a, "-drive", "if=none,id=vmstate0,format=qcow2,file=", p->vmstate, "");
	return 0;
}

static void add_rest(struct args *a, const struct ks_vmspec *s, const struct ks_qemu_paths *p)
{
	const char *const pairs[][2] = {
		{ "-pidfile", p->pidfile }, { "-D", p->log }, { "-d", p->log_items },
		{ "-kernel", s->kernel }, { "-append", s->append }, { "-initrd", s->initrd },
	};

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		if (!pairs[i][1])
			continue;
		add(a, pairs[i][0]);
		add(a, pairs[i][1]);
	}
	for (size_t i = 0; i < s->nqemu_args; i++)
		add(a, s->qemu_args[i]);
}

/* Under TCG, QEMU refuses APIC ids above 254; the spec could not check with accel auto. */
static int check_tcg_topology(const struct ks_vmspec *s, enum ks_accel accel,
			      struct ks_error *err)
{
	struct ks_vmspec tcg = *s;

	if (accel != KS_ACCEL_TCG || s->accel == KS_ACCEL_TCG)
		return 0;
	tcg.accel = KS_ACCEL_TCG;
	return ks_vmspec_check_cpus(&tcg, err);
}

int ks_qemu_argv_build(const struct ks_vmspec *s, const struct ks_qemu_paths *p,
		       char ***argv_out, struct ks_error *err)
{
	struct args a = { 0 };
	struct ks_vmspec_topology t;
	struct ks_ram_layout *l = NULL;
	enum ks_accel accel;
	int rc;

	*argv_out = NULL;
	rc = check_choices(s, p, &accel, err);
	if (rc == 0)
		rc = ks_vmspec_topology(s, &t, err);
	if (rc == 0)
		rc = check_tcg_topology(s, accel, err);
	if (rc < 0)
		goto out;
	if (!(l = ks_qemu_ram_layout(s, p, err))) {
		rc = err ? err->code : -EINVAL;
		goto out;
	}
	add_machine(&a, s, accel, &t, p);
	add_memory(&a, s, p, l);
	add_control(&a, s, p);
	rc = add_devices(&a, s, p, err);
	if (rc < 0)
		goto out;
	add_rest(&a, s, p);
	if (a.oom) {
		rc = ks_error_set(err, -ENOMEM, "qemu argv: out of memory");
		goto out;
	}
	*argv_out = a.v;
	a.v = NULL;
out:
	ks_ram_layout_free(l);
	ks_qemu_argv_free(a.v);
	return rc;
}

void ks_qemu_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

static bool shell_safe(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "_@%+=:,./-", *s))
			return false;
	return true;
}

char *ks_qemu_argv_format(char *const *argv)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; argv && argv[i]; i++) {
		if (i)
			fputc(' ', f);
		if (shell_safe(argv[i])) {
			fputs(argv[i], f);
			continue;
		}
		fputc('\'', f);
		for (const char *c = argv[i]; *c; c++)
			fputs(*c == '\'' ? "'\\''" : (char[]){ *c, 0 }, f);
		fputc('\'', f);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
