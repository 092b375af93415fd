/* cmdline.c: `key=value` options of the kernel command line (the demo's own, beside kt.*). */
#include <stdint.h>

#include <kern/cmdline.h>
#include <kern/errno.h>
#include <kern/string.h>

static int parse_u64(const char *s, size_t n, uint64_t *val)
{
	uint64_t v = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned int d = (unsigned int)(s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*val = v;
	return 0;
}

int cmdline_get_u64(const char *cmdline, const char *key, uint64_t *val)
{
	size_t klen = strlen(key);
	int r = -ENOENT;
	uint64_t v = 0;

	while (*cmdline) {
		size_t n = 0;

		while (*cmdline == ' ')
			cmdline++;
		while (cmdline[n] && cmdline[n] != ' ')
			n++;
		if (n > klen && cmdline[klen] == '=' && !strncmp(cmdline, key, klen))
			r = parse_u64(cmdline + klen + 1, n - klen - 1, &v);
		cmdline += n;
	}
	if (!r)
		*val = v;
	return r;
}
