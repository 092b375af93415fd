/* dlib.c: opening a shared library on first use (capstone, libmicrohttpd: see their _dl.c). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <kscope/dlib.h>

bool ks_dlib_load(const char *soname, const struct ks_dlib_sym *syms, size_t n, char *why,
		  size_t size)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	size_t i = 0;

	for (; h && i < n; i++) {
		void *p = dlsym(h, syms[i].name);

		if (!p)
			break;
		/* POSIX makes dlsym()'s pointer a function pointer's bytes; memcpy avoids aliasing it. */
		memcpy(syms[i].slot, &p, sizeof(p));
	}
	if (h && i == n)
		return true;
	snprintf(why, size, "cannot load %s: %s", soname, dlerror());
	if (h)
		dlclose(h);
	return false;
}
