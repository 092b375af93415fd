/* vmspec.c: the VM specification: its defaults, its keys, and setting a field by key. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <kscope/vmspec.h>

#include "vmspec_internal.h"

struct keydef {
	struct ks_vmspec_key info;
	int (*set)(struct ks_vmspec *s, const char *key, const char *v, struct ks_error *err);
};

static const char *const arch_names[] = { "x86_64" };
static const char *const machine_names[] = { "microvm", "pc", "q35" };
static const char *const accel_names[] = { "auto", "kvm", "tcg" };
static const char *const net_names[] = { "none", "user" };

static const char *name_of(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : "invalid";
}

const char *ks_arch_name(enum ks_arch a)
{
	return name_of(arch_names, ARRAY_SIZE(arch_names), (int)a);
}

const char *ks_machine_name(enum ks_machine m)
{
	return name_of(machine_names, ARRAY_SIZE(machine_names), (int)m);
}

const char *ks_accel_name(enum ks_accel a)
{
	return name_of(accel_names, ARRAY_SIZE(accel_names), (int)a);
}

const char *ks_net_name(enum ks_net n)
{
	return name_of(net_names, ARRAY_SIZE(net_names), (int)n);
}

static int lookup(const char *const *names, size_t n, const char *v)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], v))
			return (int)i;
	return -1;
}

const char *ks_vmspec_fmt_mib(char *buf, size_t len, uint64_t mib)
{
	if (mib && mib % (1024 * 1024) == 0)
		snprintf(buf, len, "%" PRIu64 " TiB", mib / (1024 * 1024));
	else if (mib && mib % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 " GiB", mib / 1024);
	else
		snprintf(buf, len, "%" PRIu64 " MiB", mib);
	return buf;
}

static bool all_digits(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (*v < '0' || *v > '9')
			return false;
	return true;
}

/* A decimal count in [min, max]; unit names what is counted in the message ("" or " ports"). */
static int parse_count(const char *key, const char *v, unsigned min, unsigned max,
		       const char *unit, unsigned *out, struct ks_error *err)
{
	if (v[0] == '-' && all_digits(v + 1))
		return ks_error_set(err, -EINVAL, "%s: must be at least %u (got %s)", key, min, v);
	if (!all_digits(v))
		return ks_error_set(err, -EINVAL, "%s: bad number '%s'", key, v);
	errno = 0;
	unsigned long long n = strtoull(v, NULL, 10);
	if (errno == ERANGE || n > max)
		return ks_error_set(err, -EINVAL, "%s: at most %u%s (got %s)", key, max, unit, v);
	if (n < min)
		return ks_error_set(err, -EINVAL, "%s: must be at least %u (got %s)", key, min, v);
	*out = (unsigned)n;
	return 0;
}

static int bad_size(const char *key, const char *v, struct ks_error *err)
{
	return ks_error_set(err, -EINVAL,
			    "%s: bad size '%s' (use MiB, or a suffix M, G or T, e.g. 256M)", key, v);
}

/* A size: a whole number of MiB, or a number with a suffix M, G or T (MiB, GiB, TiB). */
static int parse_size(const char *key, const char *v, uint64_t *mib, struct ks_error *err)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "", 1 }, { "m", 1 }, { "mb", 1 }, { "mib", 1 },
		{ "g", 1024 }, { "gb", 1024 }, { "gib", 1024 },
		{ "t", 1024 * 1024 }, { "tb", 1024 * 1024 }, { "tib", 1024 * 1024 },
	};
	unsigned long long n;
	char *end;

	if (v[0] == '-')
		return ks_error_set(err, -EINVAL, "%s: must not be negative (got %s)", key, v);
	/* strtoull() would take blanks and a sign: only a digit may start a size. */
	if (v[0] < '0' || v[0] > '9')
		return bad_size(key, v, err);
	errno = 0;
	n = strtoull(v, &end, 10);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].suffix))
			continue;
		/* Bytes must fit in 64 bits; the range checks come after. */
		if (errno == ERANGE || n > (UINT64_MAX >> 20) / units[i].mult)
			return ks_error_set(err, -EINVAL, "%s: %s is too large (maximum 1 TiB)",
					    key, v);
		*mib = n * units[i].mult;
		return 0;
	}
	return bad_size(key, v, err);
}

/* The keys whose value is one of a few names: the name's index is the enum value. */
struct choice {
	const char *key;
	const char *const *names;
	size_t n;
	const char *unknown; /* the message for any other value (%s: the value) */
};

static const struct choice choices[] = {
	{ "arch", arch_names, ARRAY_SIZE(arch_names),
	  "arch: unknown architecture '%s' (only x86_64)" },
	{ "machine", machine_names, ARRAY_SIZE(machine_names),
	  "machine: unknown machine '%s' (use microvm, pc or q35)" },
	{ "accel", accel_names, ARRAY_SIZE(accel_names),
	  "accel: unknown accelerator '%s' (use auto, kvm or tcg)" },
	{ "net", net_names, ARRAY_SIZE(net_names), "net: only 'user' is supported (got '%s')" },
};

static int set_choice(struct ks_vmspec *s, const char *key, const char *v,
		      struct ks_error *err)
{
	const struct choice *c = choices;
	int i;

	while (strcmp(c->key, key))
		c++;
	i = lookup(c->names, c->n, v);
	if (i < 0 && c->names == arch_names && !strcmp(v, "aarch64"))
		return ks_error_set(err, -EINVAL,
				    "arch: aarch64 is not supported yet (only x86_64)");
	if (i < 0)
		return ks_error_set(err, -EINVAL, c->unknown, v);
	if (c->names == arch_names)
		s->arch = (enum ks_arch)i;
	else if (c->names == machine_names)
		s->machine = (enum ks_machine)i;
	else if (c->names == accel_names)
		s->accel = (enum ks_accel)i;
	else
		s->net = (enum ks_net)i;
	return 0;
}

static unsigned *count_field(struct ks_vmspec *s, const char *key)
{
	if (!strcmp(key, "cpus"))
		return &s->cpus;
	if (!strcmp(key, "sockets"))
		return &s->sockets;
	if (!strcmp(key, "cores"))
		return &s->cores;
	return &s->threads;
}

static int set_cpu_count(struct ks_vmspec *s, const char *key, const char *v,
			 struct ks_error *err)
{
	return parse_count(key, v, 1, KS_VMSPEC_MAX_CPUS, "", count_field(s, key), err);
}

static int set_serial(struct ks_vmspec *s, const char *key, const char *v,
		      struct ks_error *err)
{
	return parse_count(key, v, 0, KS_VMSPEC_MAX_SERIAL, " ports", &s->serial, err);
}

int ks_vmspec_check_memory_range(const char *key, uint64_t mib, uint64_t max,
				 const char *what, struct ks_error *err)
{
	char a[32], b[32];

	if (mib < KS_VMSPEC_MIN_MEMORY_MIB)
		return ks_error_set(err, -EINVAL, "%s: %s is too small (minimum %s)", key,
				    ks_vmspec_fmt_mib(a, sizeof(a), mib),
				    ks_vmspec_fmt_mib(b, sizeof(b), KS_VMSPEC_MIN_MEMORY_MIB));
	if (mib > max)
		return ks_error_set(err, -EINVAL, "%s: %s is too large%s (maximum %s)", key,
				    ks_vmspec_fmt_mib(a, sizeof(a), mib), what,
				    ks_vmspec_fmt_mib(b, sizeof(b), max));
	return 0;
}

static int set_memory(struct ks_vmspec *s, const char *key, const char *v,
		      struct ks_error *err)
{
	uint64_t mib;
	int rc = parse_size(key, v, &mib, err);

	if (rc == 0)
		rc = ks_vmspec_check_memory_range(key, mib, KS_VMSPEC_MAX_MEMORY_MIB, "", err);
	if (rc == 0)
		s->memory_mib = mib;
	return rc;
}

static int set_string(char **field, const char *key, const char *v, bool may_be_empty,
		      struct ks_error *err)
{
	char *copy = NULL;

	if (!*v && !may_be_empty)
		return ks_error_set(err, -EINVAL, "%s: needs a value", key);
	if (*v && !(copy = strdup(v)))
		return ks_error_set(err, -ENOMEM, "%s: out of memory", key);
	free(*field);
	*field = copy;
	return 0;
}

static int set_path(struct ks_vmspec *s, const char *key, const char *v, struct ks_error *err)
{
	char **field = !strcmp(key, "kernel") ? &s->kernel
		       : !strcmp(key, "initrd") ? &s->initrd : &s->qemu;

	return set_string(field, key, v, false, err);
}

static int set_append(struct ks_vmspec *s, const char *key, const char *v,
		      struct ks_error *err)
{
	return set_string(&s->append, key, v, true, err);
}

static void free_list(char **list, size_t n)
{
	/* A copy that failed half way has a NULL list, or NULL entries. */
	for (size_t i = 0; list && i < n; i++)
		free(list[i]);
	free(list);
}

/* Appends v to a string list; an empty v empties the list. */
static int list_add(char ***list, size_t *n, const char *key, const char *v,
		    struct ks_error *err)
{
	if (!*v) {
		free_list(*list, *n);
		*list = NULL;
		*n = 0;
		return 0;
	}
	char **grown = realloc(*list, (*n + 1) * sizeof(**list));
	if (!grown)
		return ks_error_set(err, -ENOMEM, "%s: out of memory", key);
	*list = grown;
	if (!(grown[*n] = strdup(v)))
		return ks_error_set(err, -ENOMEM, "%s: out of memory", key);
	(*n)++;
	return 0;
}

static int set_disk(struct ks_vmspec *s, const char *key, const char *v, struct ks_error *err)
{
	return list_add(&s->disks, &s->ndisks, key, v, err);
}

static int set_qemu_arg(struct ks_vmspec *s, const char *key, const char *v,
			struct ks_error *err)
{
	return list_add(&s->qemu_args, &s->nqemu_args, key, v, err);
}

static int parse_cpu(const char *item, const char *p, size_t len, unsigned *cpu,
		     struct ks_error *err)
{
	char num[16];

	if (len == 0 || len >= sizeof(num))
		return ks_error_set(err, -EINVAL, "numa: bad cpu list '%s' (use e.g. 0-1,4)",
				    item);
	memcpy(num, p, len);
	num[len] = 0;
	if (!all_digits(num))
		return ks_error_set(err, -EINVAL, "numa: bad cpu list '%s' (use e.g. 0-1,4)",
				    item);
	unsigned long n = strtoul(num, NULL, 10);
	if (n >= KS_VMSPEC_MAX_CPUS)
		return ks_error_set(err, -EINVAL, "numa: cpu %s is out of range (at most %u)",
				    num, KS_VMSPEC_MAX_CPUS - 1);
	*cpu = (unsigned)n;
	return 0;
}

/* A Linux-style CPU list: "0-1,4,6-7". */
static int parse_cpulist(const char *list, uint64_t *bits, struct ks_error *err)
{
	const char *p = list;
	unsigned lo, hi;
	int rc;

	for (;;) {
		size_t len = strcspn(p, ",");
		const char *dash = memchr(p, '-', len);
		size_t lo_len = dash ? (size_t)(dash - p) : len;

		rc = parse_cpu(list, p, lo_len, &lo, err);
		if (rc == 0)
			rc = dash ? parse_cpu(list, dash + 1, len - lo_len - 1, &hi, err)
				  : (hi = lo, 0);
		if (rc < 0)
			return rc;
		if (hi < lo)
			return ks_error_set(err, -EINVAL, "numa: bad cpu range '%.*s'", (int)len,
					    p);
		for (unsigned c = lo; c <= hi; c++)
			bits[c / 64] |= 1ull << (c % 64);
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

bool ks_vmspec_node_has_cpus(const struct ks_vmspec_numa *n)
{
	for (size_t i = 0; i < KS_VMSPEC_CPU_WORDS; i++)
		if (n->cpus[i])
			return true;
	return false;
}

bool ks_vmspec_next_cpu_range(const struct ks_vmspec_numa *n, unsigned *next, unsigned *lo,
			      unsigned *hi)
{
	unsigned c = *next;

	while (c < KS_VMSPEC_MAX_CPUS && !ks_vmspec_node_has_cpu(n, c))
		c++;
	if (c >= KS_VMSPEC_MAX_CPUS)
		return false;
	*lo = c;
	while (c + 1 < KS_VMSPEC_MAX_CPUS && ks_vmspec_node_has_cpu(n, c + 1))
		c++;
	*hi = c;
	*next = c + 1;
	return true;
}

/* "MEM[,CPUS]": a node's memory (0 for none) and its CPU list. */
static int set_numa(struct ks_vmspec *s, const char *key, const char *v, struct ks_error *err)
{
	struct ks_vmspec_numa node = { 0 };
	char mem[64];
	size_t len = strcspn(v, ",");
	int rc;

	(void)key;
	if (!*v) {
		free(s->numa);
		s->numa = NULL;
		s->nnuma = 0;
		return 0;
	}
	if (s->nnuma >= KS_VMSPEC_MAX_NUMA)
		return ks_error_set(err, -EINVAL, "numa: at most %d nodes", KS_VMSPEC_MAX_NUMA);
	if (len >= sizeof(mem))
		return ks_error_set(err, -EINVAL, "numa: bad node '%s' (use MEM[,CPUS])", v);
	memcpy(mem, v, len);
	mem[len] = 0;
	rc = parse_size("numa", mem, &node.memory_mib, err);
	if (rc == 0 && node.memory_mib > KS_VMSPEC_MAX_MEMORY_MIB)
		rc = ks_vmspec_check_memory_range("numa", node.memory_mib, KS_VMSPEC_MAX_MEMORY_MIB,
						  "", err);
	if (rc == 0 && v[len])
		rc = parse_cpulist(v + len + 1, node.cpus, err);
	if (rc < 0)
		return rc;
	if (!node.memory_mib && !ks_vmspec_node_has_cpus(&node))
		return ks_error_set(err, -EINVAL, "numa: node %zu has neither memory nor cpus",
				    s->nnuma);
	struct ks_vmspec_numa *grown = realloc(s->numa, (s->nnuma + 1) * sizeof(*grown));
	if (!grown)
		return ks_error_set(err, -ENOMEM, "numa: out of memory");
	s->numa = grown;
	s->numa[s->nnuma++] = node;
	return 0;
}

/* Every key, in the documented order: X(name, metavar, help, repeatable, setter). */
#define KEYS(X)                                                                              \
	X("arch", "ARCH", "guest architecture: x86_64", false, set_choice)                    \
	X("machine", "NAME", "QEMU machine: microvm (default), pc or q35", false, set_choice) \
	X("accel", "NAME", "accelerator: auto (default), kvm or tcg", false, set_choice)      \
	X("cpus", "N", "number of CPUs (default: the topology's product, or 1)", false,        \
	  set_cpu_count)                                                                      \
	X("sockets", "N", "CPU sockets (derived when not given)", false, set_cpu_count)       \
	X("cores", "N", "cores per socket (derived when not given)", false, set_cpu_count)    \
	X("threads", "N", "threads per core (derived when not given)", false, set_cpu_count)  \
	X("numa", "MEM[,CPUS]", "add a NUMA node: its memory and CPU list, e.g. 128M,0-1",     \
	  true, set_numa)                                                                     \
	X("memory", "SIZE", "guest memory, e.g. 256M or 1G (plain number: MiB)", false,       \
	  set_memory)                                                                         \
	X("kernel", "FILE", "kernel image: x86 ELF or bzImage (required)", false, set_path)   \
	X("append", "STR", "kernel command line", false, set_append)                          \
	X("initrd", "FILE", "initial ramdisk", false, set_path)                               \
	X("serial", "N", "number of serial ports, 0 to 4 (default 1)", false, set_serial)     \
	X("net", "user", "user-mode network with a virtio NIC (default: none)", false,        \
	  set_choice)                                                                         \
	X("disk", "FILE", "add a virtio disk image (raw or qcow2)", true, set_disk)           \
	X("qemu", "PATH", "QEMU binary (default: qemu-system-x86_64 from PATH)", false,       \
	  set_path)                                                                           \
	X("qemu-arg", "ARG", "add a raw QEMU argument, passed last", true, set_qemu_arg)

#define KEYDEF(name, metavar, help, repeatable, set) { { name, metavar, help, repeatable }, set },
#define KEYNAME(name, metavar, help, repeatable, set) name,

static const struct keydef keydefs[] = { KEYS(KEYDEF) };
static const char *const key_names[] = { KEYS(KEYNAME) NULL };

static const struct keydef *find_key(const char *key)
{
	for (size_t i = 0; key && i < ARRAY_SIZE(keydefs); i++)
		if (!strcmp(keydefs[i].info.name, key))
			return &keydefs[i];
	return NULL;
}

const char *const *ks_vmspec_keys(void)
{
	return key_names;
}

const struct ks_vmspec_key *ks_vmspec_key_info(const char *key)
{
	const struct keydef *k = find_key(key);

	return k ? &k->info : NULL;
}

bool ks_vmspec_key_takes_value(const char *key)
{
	return find_key(key) != NULL;
}

int ks_vmspec_set(struct ks_vmspec *s, const char *key, const char *value,
		  struct ks_error *err)
{
	const struct keydef *k = find_key(key);

	if (!k)
		return ks_error_set(err, -EINVAL, "unknown key '%s'", key ? key : "(null)");
	/* Only the command line may be empty; a list's empty value clears it. */
	if (!value || (!*value && !k->info.repeatable && strcmp(key, "append")))
		return ks_error_set(err, -EINVAL, "%s: needs a value", key);
	return k->set(s, key, value, err);
}

struct ks_vmspec *ks_vmspec_new(struct ks_error *err)
{
	struct ks_vmspec *s = calloc(1, sizeof(*s));

	if (!s) {
		ks_error_set(err, -ENOMEM, "vmspec: out of memory");
		return NULL;
	}
	s->arch = KS_ARCH_X86_64;
	s->machine = KS_MACHINE_MICROVM;
	s->accel = KS_ACCEL_AUTO;
	s->serial = 1;
	s->net = KS_NET_NONE;
	return s;
}

void ks_vmspec_free(struct ks_vmspec *s)
{
	if (!s)
		return;
	free(s->kernel);
	free(s->append);
	free(s->initrd);
	free(s->qemu);
	free_list(s->disks, s->ndisks);
	free_list(s->qemu_args, s->nqemu_args);
	free(s->numa);
	free(s);
}

static bool dup_string(char **dst, const char *src)
{
	return !src || (*dst = strdup(src)) != NULL;
}

static bool dup_list(char ***dst, char *const *src, size_t n)
{
	if (!n)
		return true;
	if (!(*dst = calloc(n, sizeof(**dst))))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((*dst)[i] = strdup(src[i])))
			return false;
	return true;
}

struct ks_vmspec *ks_vmspec_dup(const struct ks_vmspec *s, struct ks_error *err)
{
	struct ks_vmspec *d = malloc(sizeof(*d));
	bool ok;

	if (!d)
		goto out;
	*d = *s;
	d->kernel = d->append = d->initrd = d->qemu = NULL;
	d->disks = d->qemu_args = NULL;
	d->numa = NULL;
	ok = dup_string(&d->kernel, s->kernel) && dup_string(&d->append, s->append) &&
	     dup_string(&d->initrd, s->initrd) && dup_string(&d->qemu, s->qemu) &&
	     dup_list(&d->disks, s->disks, s->ndisks) &&
	     dup_list(&d->qemu_args, s->qemu_args, s->nqemu_args);
	if (ok && s->nnuma) {
		ok = (d->numa = malloc(s->nnuma * sizeof(*d->numa))) != NULL;
		if (ok)
			memcpy(d->numa, s->numa, s->nnuma * sizeof(*d->numa));
	}
	if (ok)
		return d;
	ks_vmspec_free(d);
out:
	ks_error_set(err, -ENOMEM, "vmspec: out of memory");
	return NULL;
}
