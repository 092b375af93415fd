/* fwcfg.c: reads QEMU fw_cfg items through the legacy I/O ports. */
#include <stdint.h>

#include <arch/fwcfg.h>
#include <arch/x86.h>
#include <kern/errno.h>

#define FWCFG_PORT_SEL 0x510
#define FWCFG_PORT_DATA 0x511

static void fwcfg_read_raw(uint16_t key, void *buf, size_t n)
{
	uint8_t *p = buf;

	outw(FWCFG_PORT_SEL, key);
	for (size_t i = 0; i < n; i++)
		p[i] = inb(FWCFG_PORT_DATA);
}

bool fwcfg_present(void)
{
	uint8_t sig[4];

	fwcfg_read_raw(FWCFG_SIGNATURE, sig, sizeof(sig));
	return sig[0] == 'Q' && sig[1] == 'E' && sig[2] == 'M' && sig[3] == 'U';
}

int fwcfg_read(uint16_t key, void *buf, size_t n)
{
	if (!fwcfg_present())
		return -ENODEV;
	fwcfg_read_raw(key, buf, n);
	return 0;
}

unsigned int fwcfg_cpu_count(void)
{
	uint8_t v[2];

	if (fwcfg_read(FWCFG_NB_CPUS, v, sizeof(v)))
		return 0;
	return (unsigned int)(v[0] | v[1] << 8);
}
