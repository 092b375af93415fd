/* dlib.h: opening a shared library on first use, with every function it must have. */
#ifndef KSCOPE_DLIB_H
#define KSCOPE_DLIB_H

#include <stdbool.h>
#include <stddef.h>

/* A function to resolve: its name in the library, and the function pointer to set. */
struct ks_dlib_sym {
	const char *name;
	void *slot;  /* the address of a function pointer */
};

/*
 * Opens soname (RTLD_NOW | RTLD_LOCAL) and resolves every sym into its slot. True when all
 * are there; else false, the library closed again, and why (size bytes) says what was
 * missing in dlerror()'s words: "cannot load SONAME: ...". Not thread-safe by itself: call
 * it once, under pthread_once().
 */
bool ks_dlib_load(const char *soname, const struct ks_dlib_sym *syms, size_t n, char *why,
		  size_t size);

#endif
