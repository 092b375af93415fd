/* gdb_stub.h: a fake gdbstub for the gdb client's tests: plays a transcript, in a thread. */
#ifndef KSCOPE_TESTS_GDB_STUB_H
#define KSCOPE_TESTS_GDB_STUB_H

#include <pthread.h>
#include <stddef.h>

/*
 * A script is a transcript as the client's debug output writes it, one unit a line, bytes
 * outside printable ASCII and "\" as \xNN; the "gdb " before each line is optional:
 *   "<- RAW"   the stub sends RAW as it is;
 *   "-> RAW"   the client must send exactly RAW next;
 *   "<= DATA"  the stub sends DATA framed ("$DATA#xx", with escapes);
 *   "<~ DATA"  the stub sends "$DATA#xx" without escaping DATA (run-length marks, escapes);
 *   "=> DATA"  the client must send DATA framed;
 *   "!sleep MS" pauses; "!close" hangs up at once; "-- ..." and "#..." lines are ignored.
 * The stub hangs up at the end of the script.
 */

/* How the stub cuts what it sends: unit by unit, byte by byte, or units joined. */
enum stub_mode { STUB_WHOLE, STUB_BYTES, STUB_JOINED };

struct stub {
	int fd;
	const char *script;
	enum stub_mode mode;
	char failure[512];
	pthread_t thread;
	char out[1 << 16];  /* STUB_JOINED: units not yet sent */
	size_t outlen;
};

/* Starts a stub playing script on one end of a socketpair; returns the client's end. */
int stub_start(struct stub *s, const char *script, enum stub_mode mode);

/* Plays script on fd (already connected) in the calling thread, then closes fd. */
void stub_play(struct stub *s, int fd, const char *script, enum stub_mode mode);

/* Waits for the stub to finish; fails the current test if the client strayed from script. */
void stub_join(struct stub *s);

/* Decodes \xNN escapes of a transcript line into out (at least strlen(line) bytes). */
size_t stub_unescape(const char *line, size_t len, char *out);

/* The contents of tests/data/gdb/name ($KSCOPE_GDB_DATA/name); caller frees. */
char *stub_slurp(const char *name);

/*
 * The data (unframed) of the stub's reply to the n-th (from 0) "gdb -> request" line of a
 * recorded transcript; caller frees.
 */
char *stub_recorded_reply(const char *script, const char *request, int n);

#endif
