/* vmconfig.c: VM config files of `key = value` lines, read into and written from a vmspec. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/vmspec.h>

#include "vmspec_internal.h"

struct source {
	const char *name; /* for messages: the path, or the caller's label */
	const char *dir;  /* relative paths in values are taken from here; NULL: kept */
	unsigned line;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims blanks at both ends in place; returns the new start. */
static char *trim(char *p)
{
	size_t n;

	while (is_blank(*p))
		p++;
	n = strlen(p);
	while (n && is_blank(p[n - 1]))
		p[--n] = 0;
	return p;
}

/* True for keys whose value is a file path; qemu only when it is a path, not a name. */
static bool is_path_key(const char *key, const char *value)
{
	if (!strcmp(key, "qemu"))
		return strchr(value, '/') != NULL;
	return !strcmp(key, "kernel") || !strcmp(key, "initrd") || !strcmp(key, "disk");
}

/* Applies one `key = value` pair, prefixing any error with "name:line: ". */
static int apply(struct ks_vmspec *s, const struct source *src, const char *key,
		 const char *value, struct ks_error *err)
{
	struct ks_error e = { 0 };
	char *joined = NULL;
	int rc;

	if (src->dir && *value && value[0] != '/' && is_path_key(key, value)) {
		if (asprintf(&joined, "%s/%s", src->dir, value) < 0)
			return ks_error_set(err, -ENOMEM, "%s:%u: out of memory", src->name,
					    src->line);
		value = joined;
	}
	rc = ks_vmspec_set(s, key, value, &e);
	free(joined);
	if (rc < 0)
		return ks_error_set(err, rc, "%s:%u: %s", src->name, src->line, e.msg);
	return 0;
}

/* Parses one line (modified in place): blank, `# comment`, or `key = value`. */
static int parse_line(struct ks_vmspec *s, const struct source *src, char *line,
		      struct ks_error *err)
{
	char *p = trim(line), *eq, *key, *value;
	size_t n;

	if (!*p || *p == '#')
		return 0;
	eq = strchr(p, '=');
	if (!eq)
		return ks_error_set(err, -EINVAL, "%s:%u: expected 'key = value', got '%s'",
				    src->name, src->line, p);
	*eq = 0;
	key = trim(p);
	value = trim(eq + 1);
	if (!*key)
		return ks_error_set(err, -EINVAL, "%s:%u: missing key before '='", src->name,
				    src->line);
	/* Quotes keep blanks at the ends of a value; only the outer pair is removed. */
	n = strlen(value);
	if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
		value[n - 1] = 0;
		value++;
	}
	return apply(s, src, key, value, err);
}

static int load_stream(struct ks_vmspec *s, FILE *f, struct source *src, struct ks_error *err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	errno = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		src->line++;
		if ((size_t)n != strlen(line))
			rc = ks_error_set(err, -EINVAL, "%s:%u: NUL byte in line", src->name,
					  src->line);
		else
			rc = parse_line(s, src, line, err);
	}
	if (rc == 0 && ferror(f)) {
		int e = errno ? errno : EIO;

		rc = ks_error_set(err, -e, "%s: cannot read: %s", src->name, strerror(e));
	}
	free(line);
	return rc;
}

int ks_vmspec_load_file(struct ks_vmspec *s, const char *path, struct ks_error *err)
{
	struct source src = { .name = path };
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	FILE *f = NULL;
	int rc;

	if (slash) {
		dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
		if (!dir) {
			rc = ks_error_set(err, -ENOMEM, "%s: out of memory", path);
			goto out;
		}
		/* "/kernel" under "/" reads as "//kernel", which is still the same file. */
		src.dir = dir;
	}
	f = fopen(path, "re");
	if (!f) {
		rc = ks_error_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	rc = load_stream(s, f, &src, err);
out:
	if (f)
		fclose(f);
	free(dir);
	return rc;
}

int ks_vmspec_load_string(struct ks_vmspec *s, const char *text, const char *name,
			  struct ks_error *err)
{
	struct source src = { .name = name ? name : "(string)" };
	int rc = 0;

	for (const char *p = text; rc == 0 && *p;) {
		size_t len = strcspn(p, "\n");
		char *line = strndup(p, len);

		if (!line)
			return ks_error_set(err, -ENOMEM, "%s: out of memory", src.name);
		src.line++;
		rc = parse_line(s, &src, line, err);
		free(line);
		p += len + (p[len] == '\n');
	}
	return rc;
}

/* ---- writing ---- */

static bool needs_quotes(const char *v)
{
	size_t n = strlen(v);

	return n && (is_blank(v[0]) || is_blank(v[n - 1]) ||
		     (n >= 2 && v[0] == '"' && v[n - 1] == '"'));
}

static int put(FILE *f, const char *key, const char *v, struct ks_error *err)
{
	if (!v)
		return 0;
	if (strchr(v, '\n'))
		return ks_error_set(err, -EINVAL, "%s: a value with a newline cannot be written",
				    key);
	if (needs_quotes(v))
		fprintf(f, "%s = \"%s\"\n", key, v);
	else
		fprintf(f, "%s = %s\n", key, v);
	return 0;
}

static void put_count(FILE *f, const char *key, unsigned n)
{
	if (n)
		fprintf(f, "%s = %u\n", key, n);
}

static const char *size_text(char *buf, size_t len, uint64_t mib)
{
	if (mib && mib % (1024 * 1024) == 0)
		snprintf(buf, len, "%lluT", (unsigned long long)(mib / (1024 * 1024)));
	else if (mib && mib % 1024 == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(mib / 1024));
	else
		snprintf(buf, len, "%lluM", (unsigned long long)mib);
	return buf;
}

static void put_numa(FILE *f, const struct ks_vmspec_numa *n)
{
	unsigned next = 0, lo, hi;
	char size[32];

	fprintf(f, "numa = %s", size_text(size, sizeof(size), n->memory_mib));
	while (ks_vmspec_next_cpu_range(n, &next, &lo, &hi)) {
		if (lo == hi)
			fprintf(f, ",%u", lo);
		else
			fprintf(f, ",%u-%u", lo, hi);
	}
	fputc('\n', f);
}

static int put_all(FILE *f, const struct ks_vmspec *s, struct ks_error *err)
{
	char size[32];
	int rc;

	fprintf(f, "arch = %s\nmachine = %s\naccel = %s\n", ks_arch_name(s->arch),
		ks_machine_name(s->machine), ks_accel_name(s->accel));
	put_count(f, "cpus", s->cpus);
	put_count(f, "sockets", s->sockets);
	put_count(f, "cores", s->cores);
	put_count(f, "threads", s->threads);
	for (size_t i = 0; i < s->nnuma; i++)
		put_numa(f, &s->numa[i]);
	if (s->memory_mib)
		fprintf(f, "memory = %s\n", size_text(size, sizeof(size), s->memory_mib));
	rc = put(f, "kernel", s->kernel, err);
	rc = rc ? rc : put(f, "append", s->append, err);
	rc = rc ? rc : put(f, "initrd", s->initrd, err);
	fprintf(f, "serial = %u\nnet = %s\n", s->serial, ks_net_name(s->net));
	for (size_t i = 0; rc == 0 && i < s->ndisks; i++)
		rc = put(f, "disk", s->disks[i], err);
	rc = rc ? rc : put(f, "qemu", s->qemu, err);
	for (size_t i = 0; rc == 0 && i < s->nqemu_args; i++)
		rc = put(f, "qemu-arg", s->qemu_args[i], err);
	return rc;
}

char *ks_vmspec_to_config(const struct ks_vmspec *s, struct ks_error *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int rc;

	if (!f) {
		ks_error_set(err, -ENOMEM, "vmspec: out of memory");
		return NULL;
	}
	rc = put_all(f, s, err);
	if (fclose(f) != 0 && rc == 0)
		rc = ks_error_set(err, -ENOMEM, "vmspec: out of memory");
	if (rc < 0) {
		free(text);
		return NULL;
	}
	return text;
}
