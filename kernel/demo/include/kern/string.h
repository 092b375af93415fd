/* string.h: the kernel's string and memory functions (GCC also emits calls to mem*). */
#ifndef KERN_STRING_H
#define KERN_STRING_H

#include <stddef.h>

/* Copies n bytes from src to dst (which must not overlap); returns dst. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n);

/* Copies n bytes from src to dst; the areas may overlap. Returns dst. */
void *memmove(void *dst, const void *src, size_t n);

/* Fills n bytes at dst with (unsigned char)c; returns dst. */
void *memset(void *dst, int c, size_t n);

/* Compares n bytes as unsigned chars: <0, 0 or >0. */
int memcmp(const void *a, const void *b, size_t n);

/* The first byte equal to (unsigned char)c in the n bytes at s, or NULL. */
void *memchr(const void *s, int c, size_t n);

/* Length of s. */
size_t strlen(const char *s);

/* Length of s, at most max. */
size_t strnlen(const char *s, size_t max);

/* Compares strings as unsigned chars: <0, 0 or >0. */
int strcmp(const char *a, const char *b);

/* Compares at most n characters as unsigned chars. */
int strncmp(const char *a, const char *b, size_t n);

/* The first c in s (the terminating NUL counts when c is 0), or NULL. */
char *strchr(const char *s, int c);

/* The last c in s (the terminating NUL counts when c is 0), or NULL. */
char *strrchr(const char *s, int c);

/* Copies src into dst of size bytes, always NUL-terminated when size > 0; returns
 * strlen(src) (truncation happened when that is >= size). */
size_t strlcpy(char *restrict dst, const char *restrict src, size_t size);

#endif /* KERN_STRING_H */
