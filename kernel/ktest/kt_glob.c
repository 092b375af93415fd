/* kt_glob.c: shell-style wildcard matching, for the runner's test filters. */
#include "kt_internal.h"

/*
 * Matches c against the set that starts just after a '[' at *pp and advances *pp past its
 * closing ']'. Returns 1 on a match, 0 on none, -1 when the set is never closed (the '[' is
 * then an ordinary character). A ']' right after '[' or '[!' belongs to the set.
 */
static int kt__set_match(const char **pp, const char *end, char c)
{
	const char *p = *pp, *first;
	bool negate = false, hit = false;

	if (p < end && (*p == '!' || *p == '^')) {
		negate = true;
		p++;
	}
	first = p;
	for (;;) {
		if (p >= end)
			return -1;
		if (*p == ']' && p != first)
			break;
		if (end - p >= 3 && p[1] == '-' && p[2] != ']') {
			if ((unsigned char)c >= (unsigned char)p[0] &&
			    (unsigned char)c <= (unsigned char)p[2])
				hit = true;
			p += 3;
		} else {
			if (*p == c)
				hit = true;
			p++;
		}
	}
	*pp = p + 1;
	return hit != negate;
}

/* Whether the pattern element at *pp matches the character c (not NUL); advances *pp. */
static bool kt__elem_match(const char **pp, const char *end, char c)
{
	const char *p = *pp;

	if (*p == '?') {
		*pp = p + 1;
		return true;
	}
	if (*p == '[') {
		const char *q = p + 1;
		int m = kt__set_match(&q, end, c);

		if (m >= 0) {
			*pp = q;
			return m == 1;
		}
	}
	*pp = p + 1;
	return *p == c;
}

bool kt__glob_match_n(const char *pattern, size_t n, const char *str)
{
	const char *p = pattern, *end = pattern + n, *s = str;
	const char *back_p = NULL, *back_s = NULL;

	/*
	 * Backtracking to the last '*' is enough: an earlier '*' could only absorb what the last
	 * one can absorb too, so this stays linear in practice and never recurses.
	 */
	for (;;) {
		if (p < end && *p == '*') {
			while (p < end && *p == '*')
				p++;
			if (p == end)
				return true;
			back_p = p;
			back_s = s;
			continue;
		}
		if (p == end && *s == '\0')
			return true;
		if (p < end && *s != '\0') {
			const char *q = p;

			if (kt__elem_match(&q, end, *s)) {
				p = q;
				s++;
				continue;
			}
		}
		if (!back_p || *back_s == '\0')
			return false;
		p = back_p;
		s = ++back_s;
	}
}

bool kt_glob_match(const char *pattern, const char *str)
{
	if (!pattern || !str)
		return false;
	return kt__glob_match_n(pattern, kt__strlen(pattern), str);
}
