/*
 * test_lazy_load.c: capstone and libmicrohttpd are opened on first use, not at startup.
 *
 * The real kscope binary, run under glibc's loader trace, must not list them. This program is
 * also built with lib/capstone_dl.c and web/mhd_dl.c pointed at libraries that do not exist
 * (meson defines the SONAMEs), to check that the errors then name the missing library.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <capstone/capstone.h>

#include <kscope/error.h>
#include <kscope/loop.h>

#include "http.h"
#include "mhd_dl.h"
#include "monitor_internal.h"
#include "sites_internal.h"

extern char **environ;

/* ---- kscope --version under LD_TRACE_LOADED_OBJECTS ---- */

/* environ plus one variable; the strings are borrowed. */
static char **env_with(const char *var)
{
	size_t n = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	assert_non_null(env);
	memcpy(env, environ, n * sizeof(*env));
	env[n] = (char *)var;
	return env;
}

/* Everything the program at argv[0] writes on stdout, run with env; its exit status in *st. */
static char *run_output(char *const argv[], char **env, int *st)
{
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	posix_spawn_file_actions_t fa;
	int fds[2];
	ssize_t r;
	pid_t pid;

	assert_non_null(out);
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, env), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while (len < cap - 1 && ((r = read(fds[0], out + len, cap - 1 - len)) > 0 ||
				 (r < 0 && errno == EINTR)))
		len += r > 0 ? (size_t)r : 0;
	out[len] = 0;
	close(fds[0]);
	assert_int_equal(waitpid(pid, st, 0), pid);
	return out;
}

/*
 * With LD_TRACE_LOADED_OBJECTS set, glibc's loader lists every library it loads for the
 * program and exits without running it. libc must be listed, which proves the list is real
 * (a kscope that ignored the variable would print its version instead).
 */
static void version_loads_neither(void **state)
{
	const char *kscope = getenv("KSCOPE");
	char **env = env_with("LD_TRACE_LOADED_OBJECTS=1");
	char *out;
	int st;
	(void)state;

	if (!kscope || !*kscope)
		fail_msg("KSCOPE is not set (meson sets it)");
	out = run_output((char *const[]){ (char *)kscope, "--version", NULL }, env, &st);
	if (!strstr(out, "libc.so") || strstr(out, "libcapstone") ||
	    strstr(out, "libmicrohttpd") || strstr(out, "libgnutls"))
		fail_msg("%s loads at startup:\n%s", kscope, out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(out);
	free(env);
}

/* ---- libraries that cannot be loaded ---- */

/* "capstone: cannot load <KS_CAPSTONE_SONAME>: ", as the callers' messages begin. */
static void assert_names_capstone(const char *msg)
{
	char want[128];

	snprintf(want, sizeof(want), "capstone: cannot load %s: ", KS_CAPSTONE_SONAME);
	if (strncmp(msg, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want it to begin with \"%s\"", msg, want);
}

static void missing_capstone_is_named(void **state)
{
	struct ks_error err = { 0 };
	char msg[320];
	csh h = 1;
	(void)state;

	assert_int_not_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &h), CS_ERR_OK);
	assert_int_equal(h, 0);
	snprintf(msg, sizeof(msg), "capstone: %s", cs_strerror(CS_ERR_ARCH));
	assert_names_capstone(msg);
	assert_null(cs_malloc(h));
	assert_false(cs_disasm_iter(h, NULL, NULL, NULL, NULL));
	assert_int_equal(cs_close(&h), CS_ERR_CSH);

	assert_null(ks_mon_x86_new(&err));
	assert_int_equal(err.code, -ENOTSUP);
	assert_names_capstone(err.msg);
	memset(&err, 0, sizeof(err));
	assert_null(sites_x86_new(&err));
	assert_int_equal(err.code, -ENOTSUP);
	assert_names_capstone(err.msg);
}

/* The process's open file descriptors. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ks_http_new() says which library is missing, and closes the socket it made. */
static void missing_microhttpd_is_named(void **state)
{
	struct ks_error err = { 0 };
	struct ks_loop *l = ks_loop_new(&err);
	struct ks_http_opts o;
	char want[128];
	int fds;
	(void)state;

	assert_non_null(l);
	ks_http_opts_init(&o);
	fds = count_fds();
	assert_null(ks_http_new(l, &o, &err));
	assert_int_equal(count_fds(), fds);
	assert_int_equal(err.code, -ENOTSUP);
	snprintf(want, sizeof(want), "http: cannot load %s: ", KS_MHD_SONAME);
	if (strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want it to begin with \"%s\"", err.msg, want);
	assert_non_null(ks_mhd_load_error());
	assert_non_null(strstr(ks_mhd_load_error(), KS_MHD_SONAME));
	ks_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_loads_neither),
		cmocka_unit_test(missing_capstone_is_named),
		cmocka_unit_test(missing_microhttpd_is_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
