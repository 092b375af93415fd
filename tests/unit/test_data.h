/* test_data.h: golden files of the unit tests, read whole. */
#ifndef KSCOPE_TEST_DATA_H
#define KSCOPE_TEST_DATA_H

/*
 * Reads the file name from the directory that the environment variable env names (meson
 * sets it), else from fallback (relative to the current directory), NUL-terminated. Fails
 * the running cmocka test when it cannot. Free the result.
 */
char *test_data_slurp(const char *env, const char *fallback, const char *name);

#endif
