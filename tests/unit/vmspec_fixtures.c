/* vmspec_fixtures.c: the fixture files for the vmspec and argv tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmspec_fixtures.h"

static char dir[64];

static int write_file(const char *name, const void *data, size_t len, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -1;
	if (len && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	if (fclose(f) != 0)
		return -1;
	return chmod(path, mode);
}

/* An ELF header with only what the kernel check reads: magic, class, data, e_machine. */
static int write_elf(const char *name, unsigned char class, unsigned short machine)
{
	unsigned char h[64] = { 0x7f, 'E', 'L', 'F', class, 1, 1 };

	h[16] = 2; /* ET_EXEC */
	h[18] = machine & 0xff;
	h[19] = machine >> 8;
	return write_file(name, h, sizeof(h), 0644);
}

const char *fx_setup(void)
{
	static unsigned char bz[1024];
	char sub[128];

	snprintf(dir, sizeof(dir), "/tmp/kscope-vmspec-XXXXXX");
	if (!mkdtemp(dir))
		return NULL;
	memcpy(bz + 0x202, "HdrS", 4);
	snprintf(sub, sizeof(sub), "%s/subdir", dir);
	if (write_elf("kernel.elf", 2, 62) || write_elf("kernel32.elf", 1, 3) ||
	    write_elf("arm.elf", 2, 183) || write_file("bzImage", bz, sizeof(bz), 0644) ||
	    write_file("notes.txt", "not a kernel\n", 13, 0644) ||
	    write_file("empty", "", 0, 0644) || write_file("disk.raw", bz, sizeof(bz), 0644) ||
	    write_file("disk.qcow2", "QFI\xfb\0\0\0\3", 8, 0644) ||
	    write_file("a,b.img", bz, 512, 0644) ||
	    write_file("qemu", "#!/bin/sh\nexit 0\n", 17, 0755) ||
	    write_file("noexec", "#!/bin/sh\n", 10, 0644) || mkdir(sub, 0755))
		return NULL;
	return dir;
}

void fx_teardown(void)
{
	static const char *const names[] = {
		"kernel.elf", "kernel32.elf", "arm.elf", "bzImage", "notes.txt", "empty",
		"disk.raw", "disk.qcow2", "a,b.img", "qemu", "noexec",
	};
	char path[128];

	if (!dir[0])
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/subdir", dir);
	rmdir(path);
	rmdir(dir);
	dir[0] = 0;
}

char *fx_subst(const char *text)
{
	size_t n = 0, dlen = strlen(dir);
	const char *p;
	char *out, *q;

	for (p = text; (p = strstr(p, "@DIR@")); p += 5)
		n++;
	out = malloc(strlen(text) + n * dlen + 1);
	if (!out)
		return NULL;
	for (q = out, p = text; *p;) {
		if (!strncmp(p, "@DIR@", 5)) {
			memcpy(q, dir, dlen);
			q += dlen;
			p += 5;
		} else {
			*q++ = *p++;
		}
	}
	*q = 0;
	return out;
}
