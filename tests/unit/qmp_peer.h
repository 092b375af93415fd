/* qmp_peer.h: a fake QEMU for QMP tests: plays a transcript on a socket, in a thread. */
#ifndef KSCOPE_TESTS_QMP_PEER_H
#define KSCOPE_TESTS_QMP_PEER_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

/*
 * A script is a transcript: "<- LINE" is sent (with "\r\n", as QEMU does), "-> LINE" must
 * be what the client sends next (compared as JSON, ids aside), "<~ TEXT" is sent without a
 * newline, "!sleep MS" pauses, "!big N" sends a line of about N bytes, "!wait" waits for the
 * client to hang up, "!close" hangs up; the peer hangs up at the end. Lines starting with
 * "#" are comments. Ids in "<-" lines are rewritten to the ids the client really used.
 */

/* How the peer cuts what it sends: line by line, byte by byte, or lines joined. */
enum peer_mode { WHOLE, BYTES, JOINED };

struct peer {
	int fd;
	const char *script;
	enum peer_mode mode;
	char failure[512];
	pthread_t thread;
	char in[1 << 16];  /* what the client sent, not yet consumed */
	size_t inlen;
	char out[1 << 16];  /* JOINED: lines not yet sent */
	size_t outlen;
	json_int_t ids[64][2];  /* recorded id -> client's id */
	int nids;
};

/* Starts a peer playing script on one end of a socketpair; returns the client's end. */
int peer_start(struct peer *p, const char *script, enum peer_mode mode);

/* Waits for the peer to finish; fails the current test if the client strayed from script. */
void peer_join(struct peer *p);

/* Plays p->script on p->fd (already connected), then closes it; for pthread_create(). */
void *peer_main(void *arg);

#endif
