/* qmp_internal.h: the pure parts of the QMP client, exposed to its unit tests. */
#ifndef KSCOPE_QMP_INTERNAL_H
#define KSCOPE_QMP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <kscope/error.h>

enum ks_qmp_kind {
	KS_QMP_GREETING,  /* {"QMP": {...}} */
	KS_QMP_RETURN,    /* {"return": ..., "id": ...} */
	KS_QMP_ERROR,     /* {"error": {"class": ..., "desc": ...}, "id": ...} */
	KS_QMP_EVENT,     /* {"event": ..., "data": ..., "timestamp": ...} */
};

/* One message received from the peer. Pointers other than obj are borrowed from obj. */
struct ks_qmp_msg {
	enum ks_qmp_kind kind;
	json_t *obj;            /* the whole message, owned */
	json_t *id;             /* NULL if absent */
	json_t *body;           /* greeting's "QMP", return value, error object or event data */
	const char *event;      /* KS_QMP_EVENT: its name */
	const char *err_class;  /* KS_QMP_ERROR: "GenericError", "CommandNotFound", ... */
	const char *err_desc;   /* KS_QMP_ERROR: QEMU's description */
	int64_t ts_us;          /* KS_QMP_EVENT: timestamp in us since the epoch, -1 if absent */
};

/*
 * Parses one received line (without its newline; a trailing "\r" and blanks are fine) into
 * msg. Returns 0, or -EPROTO with err naming what was wrong: malformed JSON, not an object,
 * or an object that is none of the four kinds (or one of them with ill-typed members).
 * On success free msg with ks_qmp_msg_clear().
 */
int ks_qmp_parse_line(const char *line, size_t len, struct ks_qmp_msg *msg,
		      struct ks_error *err);

/* Releases what ks_qmp_parse_line() filled. */
void ks_qmp_msg_clear(struct ks_qmp_msg *msg);

/* Bytes of a bad line quoted in an error message (buffer size for ks_qmp_excerpt()). */
#define KS_QMP_SHOW 72

/* Copies the start of line into buf (size bytes), printable, with "..." if cut; returns buf. */
const char *ks_qmp_excerpt(const char *line, size_t len, char *buf, size_t size);

#endif
